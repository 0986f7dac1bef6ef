/* stt_int.h - internals shared by transcribe.c, decode.c and timing.c (not a
 * public interface). */
#ifndef MT_STT_INT_H
#define MT_STT_INT_H

#include <stddef.h>
#include <stdint.h>
#include "stt/transcribe.h"

/* One DecodingTask run (decoding.py) on one encoded window. */
typedef struct stt_dec_opts {
    int lang;                   /* language index, -1 on English-only models */
    int task;                   /* 0 transcribe, 1 translate */
    double temperature;
    int best_of, beam_size;     /* as DecodingOptions after transcribe's pops (0 = None) */
    double patience;            /* <= 0: None */
    int has_length_penalty;
    double length_penalty;
    const int32_t *prompt;      /* previous-text tokens (may be NULL / 0) */
    size_t n_prompt;
    const int32_t *suppress;    /* the complete sorted suppress set (_get_suppress_tokens) */
    size_t n_suppress;
    int suppress_blank;
    int without_timestamps;
    double max_initial_timestamp;   /* 0: None */
    uint64_t *rng;              /* xoshiro256** state [4] for temperature > 0 */
} stt_dec_opts;

typedef struct stt_dec_result {
    int32_t *tokens;            /* sampled tokens (sample_begin .. first eot) */
    size_t n_tokens;
    char *text;                 /* decode(tokens).strip() */
    double avg_logprob, no_speech_prob, temperature, compression_ratio;
} stt_dec_result;

int  stt_decode_window(mt_whisper *w, const mt_wtok *tok, const float *xa, const stt_dec_opts *o,
                       stt_dec_result *r, mt_err *err);
void stt_dec_result_free(stt_dec_result *r);

/* The suppress set of DecodingTask._get_suppress_tokens for the option string
 * ("-1", "", "1,2,3").  Errors: MT_EINVAL (not integers), MT_ENOMEM. */
int  stt_suppress_tokens(const mt_wtok *tok, const char *spec, int32_t **ids, size_t *n, mt_err *err);

/* Python's str.strip() (Unicode whitespace) of UTF-8 s, malloc'ed. */
char *stt_py_strip(const char *s);
/* numpy's round(x, 2) (rint(x * 100) / 100, what round() of a numpy float does)
 * and Python's round(x) (half to even). */
double stt_round2(double x);
double stt_round_half_even(double x);

/* log(sum(exp(x[0..n)))), -inf entries skipped (-inf when all are) */
double   stt_lse_f(const float *x, int n);

/* xoshiro256** */
void     stt_rng_seed(uint64_t s[4], uint64_t seed);
double   stt_rng_uniform(uint64_t s[4]);

/* add_word_timestamps (timing.py) over the segments segs[0..n) of one window
 * (tokens of each segment as transcribe made them); fills their words and may
 * move their start / end.  mel window already encoded into xa; num_frames is
 * the window's segment_size.  *last_speech is read only (the caller updates
 * it as transcribe does). */
int  stt_add_word_timestamps(mt_whisper *w, const mt_wtok *tok, int lang, int task, const float *xa, mt_stt_segment *segs,
                             size_t n, int num_frames, const char *prepend, const char *append,
                             double last_speech, mt_err *err);

#endif
