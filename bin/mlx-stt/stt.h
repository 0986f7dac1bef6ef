/* stt.h - what the parts of mlx-stt share: the loaded model, the decoding
 * defaults, the output choices and the progress line. */
#ifndef MLX_STT_H
#define MLX_STT_H

#include <stdio.h>
#include <jansson.h>

#include "audio/audio.h"
#include "core/err.h"
#include "core/jsonl.h"
#include "core/pool.h"
#include "models/whisper.h"
#include "stt/asr.h"
#include "stt/output.h"
#include "stt/transcribe.h"
#include "stt/wtok.h"

/* Significant digits of floats in JSONL answers: 16 keeps the reference's
 * values (0.9599999999999964, 1.38) as they are written by Python in nearly
 * every case without 17-digit noise (1.3799999999999999). */
#define STT_REAL_PREC 16

/* --raw: the default --max-duration (seconds) */
#define STT_RAW_MAX_DEFAULT 7200.0

typedef struct stt_job {
    mt_whisper *w;           /* a Whisper folder ... */
    mt_wtok tok;
    mt_asr *asr;             /* ... or another recogniser (stt/asr.h); exactly one is set */
    unsigned caps;           /* asr: its family's MT_ASR_* */
    int max_tokens;          /* asr: --max-tokens (0: the family's default) */
    double chunk_s;          /* asr: --chunk-length (0: the family's default) */
    mt_stt_opts base;        /* the command line's decoding options */
    mt_stt_write_opts wo;
    mt_stt_format fmt;
    int all;                 /* -f all: every file format (with -o) */
    const char *outdir;      /* -o DIR, or NULL */
    int vad;
    double vad_db;
    int quiet;
    /* the progress line on stderr (a terminal and not -q) */
    int progress;            /* 1: draw it */
    int drawn;               /* a progress line without its newline is on stderr */
    char prefix[32];         /* drawn before the input's name ("3/10 " in file mode) */
    const char *label;       /* the input being transcribed (its last path component, or "stdin") */
    const mt_jsonl_tick *tick;  /* records mode: the position goes on the record loop's progress line */
    json_t *written;         /* records with -o: the output paths written in this run (a set) */
    size_t shard_k, shard_n; /* --shard K/N (shard_n 0: off) */
    int reproducible;        /* --reproducible: no "rtf" in JSONL answers */
} stt_job;

/* Erase a progress line drawn on stderr (before any other line goes there). */
void stt_progress_clear(stt_job *j);

/* Transcribe one loaded audio with options o (per-input copy of base):
 * applies --vad and the English-only language rule, and draws the progress
 * within the input (j->label) when j->progress is on. */
int stt_run(stt_job *j, const mt_audio *a, mt_stt_opts *o, mt_stt_result *res, mt_err *err);

/* Load path, transcribe it, and (with -o) write DIR/<basename>.<ext>.
 * *out_path (malloc'ed or NULL) is the file written; *rtf the real-time factor. */
int stt_file(stt_job *j, const char *path, mt_stt_opts *o, mt_stt_result *res, double *rtf, char **out_path,
             mt_err *err);

/* The JSONL answer {"text","language","segments","duration","rtf"[,"output"]};
 * out_path is made valid UTF-8 (invalid bytes become U+FFFD).  NULL on OOM. */
json_t *stt_record(stt_job *j, const mt_stt_result *res, double rtf, const char *out_path);

/* The JSONL loop handler: {"id","audio"|"text","language"?,"task"?,"prompt"?}. */
int stt_record_fn(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err);

/* Before any work: the -o DIR and the inputs' output names.  A DIR that exists
 * and is not a folder, or two inputs whose outputs would have the same name, is
 * a usage error (MT_EUSAGE, err naming the folder or both inputs). */
int stt_check_outputs(const stt_job *j, char *const *paths, int n, mt_err *err);

/* mkdir -p dir, then check that files can be made in it (MT_EIO otherwise). */
int stt_make_outdir(const char *dir, mt_err *err);

/* File mode: every path in turn; answers go out (stdout) whole and flushed one
 * input at a time.  Returns the number that failed, or -1 on a fatal write
 * error (err set). */
int stt_files(stt_job *j, char **paths, int n, mt_err *err);

/* --raw: read PCM from stdin (refused past max_s seconds), transcribe, write
 * to stdout.  Returns MT_OK or a fatal error (err set); *status gets 0, or 3
 * when the input was refused or could not be transcribed (reported). */
int stt_raw(stt_job *j, int rate, int channels, int format, double max_s, int *status, mt_err *err);

/* Records on stdin (--text: one path per line), answers to stdout, or with
 * resume appended to that file (compacted at the end).  Returns MT_OK or a
 * fatal error; *status gets the exit status of the records (0 or 3). */
int stt_records(stt_job *j, int text_mode, const char *resume, int *status, mt_err *err);

double stt_now(void);

#endif
