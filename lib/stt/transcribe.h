/* transcribe.h - openai-whisper transcribe() / DecodingTask semantics in C:
 * language detection, transcribe / translate, initial prompt and
 * condition-on-previous-text, greedy (temperature 0), sampling with best_of,
 * beam search (beam size, patience, length penalty), temperature fallback on
 * compression-ratio / avg-logprob thresholds, no-speech threshold, timestamp
 * rules and seek-based long-form decoding, suppress_tokens / suppress_blank,
 * word timestamps from the alignment heads (DTW), clip_timestamps,
 * hallucination_silence_threshold, and an energy VAD that skips silence.
 * ref: openai-whisper transcribe.py, decoding.py, timing.py (mlx-whisper
 * mirrors them). */
#ifndef MT_TRANSCRIBE_H
#define MT_TRANSCRIBE_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "models/whisper.h"
#include "stt/wtok.h"

typedef struct mt_stt_word {
    char *word;
    double start, end;
    double probability;
} mt_stt_word;

typedef struct mt_stt_segment {
    int id, seek;
    double start, end;
    char *text;
    int32_t *tokens;
    size_t n_tokens;
    double temperature, avg_logprob, compression_ratio, no_speech_prob;
    mt_stt_word *words;
    size_t n_words;
} mt_stt_segment;

typedef struct mt_stt_result {
    char *text;
    char language[16];
    mt_stt_segment *segs;
    size_t n_segs;
    double duration;      /* seconds of input audio */
} mt_stt_result;

#define MT_STT_MAX_TEMPS 16
#define MT_STT_MAX_CLIPS 256

/* Progress within one input: called from mt_stt_transcribe's thread before
 * each 30-s window is decoded, with the position reached (seconds from the
 * start of the audio; it grows, though clip timestamps and the no-speech skip
 * may jump it forward) and the audio's duration, then once with pos == total
 * when the transcript is done (not after a failure).  It must not print in
 * the library's name or call back into the transcriber; it may do nothing. */
typedef void (*mt_stt_progress_fn)(void *user, double pos, double total);

typedef struct mt_stt_opts {
    int task;                       /* 0 transcribe, 1 translate */
    const char *language;           /* NULL = detect (multilingual models) */
    double temperatures[MT_STT_MAX_TEMPS];  /* default 0, .2, .4, .6, .8, 1.0 */
    int n_temperatures;
    int best_of;                    /* default 5 (used when temperature > 0) */
    int beam_size;                  /* 0 = greedy (default), else beam search at temperature 0 */
    double patience;                /* default 1.0 */
    double length_penalty;          /* < 0: none (default) */
    const char *suppress_tokens;    /* default "-1" */
    int suppress_blank;             /* default 1 */
    int without_timestamps;         /* default 0 */
    double max_initial_timestamp;   /* default 1.0 */
    const char *initial_prompt;     /* NULL */
    int condition_on_previous_text; /* default 1 */
    double compression_ratio_threshold; /* default 2.4; <= 0 disables */
    double logprob_threshold;       /* default -1.0; NAN disables */
    double no_speech_threshold;     /* default 0.6; NAN disables */
    int word_timestamps;            /* default 0 */
    const char *prepend_punctuations;   /* default "\"'“¿([{-" */
    const char *append_punctuations;    /* default "\"'.。,，!！?？:：”)]}、" */
    double clip_timestamps[MT_STT_MAX_CLIPS];   /* start,end,start,end... seconds */
    int n_clip;                     /* 0 = whole file */
    double hallucination_silence_threshold;    /* <= 0 disables (default); needs word_timestamps */
    int vad;                        /* 1: skip silence (energy VAD sets clip_timestamps; no speech = no segments) */
    double vad_threshold_db;        /* default -45 dBFS */
    uint64_t seed;                  /* sampling at temperature > 0 (our xoshiro256** stream, not torch's) */
    mt_stt_progress_fn progress;    /* NULL (default): no progress calls */
    void *progress_user;
} mt_stt_opts;

void mt_stt_opts_default(mt_stt_opts *o);

/* The reference command line's temperature schedule into o->temperatures:
 * np.arange(t0, 1.0 + 1e-6, inc) for inc > 0 (0, 0.2, ... 1.0 for 0 and 0.2),
 * or [t0] when inc <= 0 (no fallback) or the range is empty (t0 > 1).
 * MT_EINVAL ("a temperature increment of X gives more than 16 temperatures")
 * when the schedule does not fit; o is then unchanged. */
int mt_stt_set_temperatures(mt_stt_opts *o, double t0, double inc, mt_err *err);

/* Transcribe audio[n] (mono, 16 kHz).  res is filled (free with
 * mt_stt_result_free).  Errors: MT_EINVAL (bad option: unknown language,
 * translate on an English-only model, ...), MT_ENOMEM. */
int  mt_stt_transcribe(mt_whisper *w, const mt_wtok *tok, const float *audio, size_t n, const mt_stt_opts *o,
                       mt_stt_result *res, mt_err *err);
void mt_stt_result_free(mt_stt_result *r);   /* accepts a zeroed one */

/* Language detection on one encoded window (decoding.detect_language):
 * probs[n_langs] (softmax over the language tokens; may be NULL); returns the
 * best index, or -1 with err filled (English-only model: MT_EINVAL; MT_ENOMEM). */
int  mt_stt_detect_language(mt_whisper *w, const mt_wtok *tok, const float *xa, double *probs, mt_err *err);

/* zlib compression ratio of text, as the reference computes it
 * (len(bytes) / len(zlib.compress(bytes))). */
double mt_stt_compression_ratio(const char *text);

#endif
