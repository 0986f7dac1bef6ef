/* asr.h - speech recognisers other than Whisper behind one interface.
 *
 * A family (Parakeet, Wav2Vec2/HuBERT CTC, Moonshine, Voxtral, Qwen3-ASR) is
 * one mt_asr_family value: load a folder, transcribe 16-kHz mono audio into an
 * mt_stt_result (text, segments, words: the same result Whisper fills, so the
 * writers in stt/output.h serve every family), free.  The registry (asr.c)
 * picks the family from config.json's model_type the way mlx-audio's loader
 * does; Whisper folders keep their own path (models/whisper.h,
 * stt/transcribe.h) and mt_asr_detect says when a folder is one. */
#ifndef MT_ASR_H
#define MT_ASR_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/pool.h"
#include "io/config.h"
#include "stt/transcribe.h"

/* What a family can do (mt_asr_family.caps). */
enum {
    MT_ASR_SEGMENTS = 1u << 0,     /* segments carry start/end times */
    MT_ASR_WORDS = 1u << 1,        /* word timestamps (mt_asr_opts.word_timestamps) */
    MT_ASR_LANGUAGE = 1u << 2,     /* mt_asr_opts.language is used (multilingual) */
    MT_ASR_TRANSLATE = 1u << 3,    /* task translate */
};

typedef struct mt_asr_opts {
    const char *language;          /* NULL: the model's default (or detection) */
    int task;                      /* 0 transcribe, 1 translate (only with MT_ASR_TRANSLATE) */
    int word_timestamps;           /* fill segments' words (only with MT_ASR_WORDS) */
    double chunk_s;                /* long audio: window length in seconds (0: the family's default) */
    int max_tokens;                /* decoders: tokens at most, per window or per input as the family's
                                    * reference counts them (0: the family's default) */
    mt_stt_progress_fn progress;   /* as in mt_stt_opts; may be NULL */
    void *progress_user;
} mt_asr_opts;

typedef struct mt_asr_family {
    const char *name;                   /* "parakeet" */
    const char *const *model_types;     /* config.json model_type values it runs, NULL-terminated */
    unsigned caps;                      /* MT_ASR_* */
    const char *summary;                /* one line for --help / --list-models */
    /* optional: 1 when a config without a model_type is this family's */
    int  (*claims)(const mt_config *cfg);
    int  (*load)(void **self, const char *dir, const mt_config *cfg, mt_pool *pool, mt_err *err);
    /* audio: 16 kHz mono float; res zeroed by the caller, filled here (text,
     * language, segments, duration); on failure res is left free-able. */
    int  (*transcribe)(void *self, const float *audio, size_t n, const mt_asr_opts *o, mt_stt_result *res,
                       mt_err *err);
    void (*free)(void *self);           /* accepts NULL */
} mt_asr_family;

typedef struct mt_asr mt_asr;

/* The family for folder dir: *fam = NULL for a Whisper folder (model_type
 * "whisper", or none and Whisper's keys), the family otherwise.  MT_EFORMAT
 * with one line naming the model_type found and the ones mlx-stt runs. */
int mt_asr_detect(const char *dir, const mt_asr_family **fam, mt_err *err);

/* The registered families, n of them. */
const mt_asr_family *const *mt_asr_families(size_t *n);

int  mt_asr_load(mt_asr **out, const char *dir, mt_pool *pool, mt_err *err);
void mt_asr_free(mt_asr *a);   /* accepts NULL */
const mt_asr_family *mt_asr_family_of(const mt_asr *a);
/* res is zeroed first; an option the family cannot honour is MT_EINVAL with a
 * message naming the option and the family. */
int  mt_asr_transcribe(mt_asr *a, const float *audio, size_t n, const mt_asr_opts *o, mt_stt_result *res,
                       mt_err *err);

/* The same over the clips start,end,start,end... (seconds; an odd count ends
 * at the end of the audio): each clip transcribed alone, its segments' and
 * words' times moved to the whole audio's clock, texts joined by a space.
 * n_clip 0: the whole audio. */
int  mt_asr_transcribe_clips(mt_asr *a, const float *audio, size_t n, const double *clips, int n_clip,
                             const mt_asr_opts *o, mt_stt_result *res, mt_err *err);

/* ---- shared decoding helpers ---- */

/* Greedy CTC over logits[T][V]: the arg-max per frame (first index on ties,
 * as argmax does), repeats merged, blank dropped.  ids[k], and the first and
 * last frame of each kept token in first[k], last[k] (either may be NULL);
 * all three hold T entries at most.  Returns the number kept. */
size_t mt_ctc_greedy(const float *logits, size_t T, size_t V, int blank, int32_t *ids, int32_t *first,
                     int32_t *last);

#endif
