/* stt.h - what the parts of mlx-stt share: the loaded model, the decoding
 * defaults and the output choices. */
#ifndef MLX_STT_H
#define MLX_STT_H

#include <stdio.h>
#include <jansson.h>

#include "audio/audio.h"
#include "core/err.h"
#include "core/pool.h"
#include "models/whisper.h"
#include "stt/output.h"
#include "stt/transcribe.h"
#include "stt/wtok.h"

/* Significant digits of floats in JSONL answers: 16 keeps the reference's
 * values (0.9599999999999964, 1.38) as they are written by Python in nearly
 * every case without 17-digit noise (1.3799999999999999). */
#define STT_REAL_PREC 16

typedef struct stt_job {
    mt_whisper *w;
    mt_wtok tok;
    mt_stt_opts base;        /* the command line's decoding options */
    mt_stt_write_opts wo;
    mt_stt_format fmt;
    int all;                 /* -f all: every file format (with -o) */
    const char *outdir;      /* -o DIR, or NULL */
    int vad;
    double vad_db;
    int quiet;
} stt_job;

/* Transcribe one loaded audio with options o (per-input copy of base):
 * applies --vad and the English-only language rule.  *secs gets the
 * processing time. */
int stt_run(stt_job *j, const mt_audio *a, mt_stt_opts *o, mt_stt_result *res, mt_err *err);

/* Load path, transcribe it, and (with -o) write DIR/<basename>.<ext>.
 * *out_path (malloc'ed or NULL) is the file written; *rtf the real-time factor. */
int stt_file(stt_job *j, const char *path, mt_stt_opts *o, mt_stt_result *res, double *rtf, char **out_path,
             mt_err *err);

/* The JSONL answer {"text","language","segments","duration","rtf"[,"output"]}. */
json_t *stt_record(stt_job *j, const mt_stt_result *res, double rtf, const char *out_path);

/* The JSONL loop handler: {"id","audio"|"text","language"?,"task"?,"prompt"?}. */
int stt_record_fn(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err);

/* File mode: every path in turn; returns the number that failed, or -1 on a
 * fatal write error (err set). */
int stt_files(stt_job *j, char **paths, int n, mt_err *err);

double stt_now(void);

#endif
