/* job.h - mlx-tts's record handler: one JSONL record {"id", "text" | "phonemes", "voice",
 * "speed", "lang"} -> one audio file (or raw PCM on a stream) and the answer
 * {"id", "file", "seconds", "sample_rate", "phonemes", "rtf"}.
 *
 * Per-record failures (the record's message, the batch goes on): empty text, text with
 * nothing to speak, both or neither of text and phonemes, an unknown voice or lang, a
 * voice of the wrong shape, a speed outside [MT_TTS_SPEED_MIN, MT_TTS_SPEED_MAX], an
 * audio file that cannot be written, an id whose file name an earlier record of the run
 * already wrote (ids "a b" and "a_b", or one id twice: the first file is kept).  A raw PCM stream that cannot be written is
 * MT_EFATAL (the run stops). */
#ifndef MT_TTS_JOB_H
#define MT_TTS_JOB_H

#include <stdio.h>
#include <jansson.h>
#include "core/err.h"
#include "models/kokoro.h"
#include "text/g2p.h"
#include "tts/orpheus.h"

#define MT_TTS_MAX_LANGS 16

typedef struct mt_tts_job {
    /* set by the caller */
    const mt_kokoro *k;
    const char *dir;          /* the model folder (voices/) */
    const char *voice;        /* default voice spec */
    const char *lang;         /* default espeak-ng language */
    double speed;             /* default speed */
    mt_kokoro_opts opts;      /* randomness (the seed is the same for every record) */
    const char *out_dir;      /* files go to out_dir/<id>.<ext> */
    const char *out_path;     /* or, when set, to this one path (one record) */
    int format;               /* MT_TTS_WAV, ... */
    FILE *raw;                /* when set: PCM there instead of files */
    int raw_s16;              /* 1 s16le, 0 f32le */
    int reproducible;         /* no "rtf" in the answers */
    mt_orpheus *orph;         /* when set, an Orpheus model instead of k: "text" records only, no
                               * "speed" or "lang"; voice NULL = none; "phonemes" is not answered */
    mt_orpheus_opts oopts;
    /* caches, owned (mt_tts_job_clear frees them) */
    char *voice_spec;
    float *pack;
    size_t rows;
    size_t n_g2p;
    char *g2p_lang[MT_TTS_MAX_LANGS];
    mt_g2p *g2p[MT_TTS_MAX_LANGS];
    char **names;             /* the files written in this run (open-addressing set) */
    size_t n_names, cap_names;
} mt_tts_job;

/* An mt_record_fn (core/jsonl.h); user is an mt_tts_job. */
int mt_tts_record(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err);

/* Opens the job's default language (a bad --lang is a usage error before any record).
 * Errors as mt_g2p_open. */
int mt_tts_job_lang(mt_tts_job *j, const char *lang, mt_g2p **g, mt_err *err);

/* Makes voice spec `spec` the job's current voice (mt_tts_voice; kept until another spec
 * is asked for).  Errors as mt_tts_voice. */
int mt_tts_job_voice(mt_tts_job *j, const char *spec, mt_err *err);

void mt_tts_job_clear(mt_tts_job *j);

#endif
