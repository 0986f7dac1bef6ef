/* sample.h - token sampling and logits processors with mlx-lm's semantics
 * (mlx_lm/sample_utils.py, generate_step in mlx_lm/generate.py, mlx-lm 0.32).
 *
 * One generation step is:
 *   mt_sampler_process(logits, history)    logit_bias, repetition, presence, frequency
 *   mt_sampler_sample(logits)              logits -> logprobs in place, filters
 *                                          (top_p, min_p, xtc, top_k, on the untempered
 *                                          logprobs, in that order) on a scratch copy, then
 *                                          categorical(logprobs / temp) or argmax if temp == 0.
 * The filters reproduce mlx-lm exactly, including the tie rules of mlx's
 * argpartition (top_k keeps the lowest ids among equal values at the boundary,
 * min_tokens_to_keep the highest ids).  The random stream is our own
 * (xoshiro256** seeded from `seed`), not mlx's.  NaN logits are not supported. */
#ifndef MT_SAMPLE_H
#define MT_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "tensor/dtype.h"

typedef struct mt_sampler_params {
    float temp;                 /* 0 = greedy argmax (all other sampling options ignored); >= 0 */
    float top_p;                /* applied only if 0 < top_p < 1; must be in [0, 1] */
    int   top_k;                /* applied if > 0; must be < vocab; >= 0 */
    float min_p;                /* applied if != 0; must be in [0, 1] */
    int   min_tokens_to_keep;   /* >= 1, default 1 (only used by min_p) */
    float xtc_probability;      /* XTC applied if > 0; in [0, 1] */
    float xtc_threshold;        /* in [0, 0.5]; default 0.1 */
    const int32_t *xtc_special; size_t n_xtc_special;  /* never removed by XTC (copied by _new) */
    /* logits processors, applied by mt_sampler_process in this order: */
    const int32_t *bias_ids; const float *bias_vals; size_t n_bias;   /* logit_bias (copied; repeated ids add up) */
    float repetition_penalty;  int repetition_context_size;   /* penalty 0 = off (1 is a no-op); >= 0; context default 20 */
    float presence_penalty;    int presence_context_size;     /* 0 = off; context default 20 */
    float frequency_penalty;   int frequency_context_size;    /* 0 = off; context default 20 */
    /* A context size of 0 means the whole history (Python's tokens[-0:]); negative sizes are rejected. */
    uint64_t seed;
    /* The type of the logits' values (mt_model_logits_dtype): F32 (the default), or F16/BF16 for a
     * model run with mlx's numerics, whose log-probabilities are then computed as mlx-lm's are:
     * logits - logsumexp(logits) in that type (mlx's float32 logsumexp, rounded; each difference
     * rounded), so greedy picks the first of the ids that this rounding ties. */
    mt_dtype logits_dt;
} mt_sampler_params;

/* The random stream (xoshiro256**, seeded through splitmix64): the sampler's, and any other
 * draw that must follow a seed (speculative decoding's rejection rule). */
typedef struct mt_rng { uint64_t s[4]; } mt_rng;
void   mt_rng_seed(mt_rng *r, uint64_t seed);
double mt_rng_uniform(mt_rng *r);   /* [0, 1), 53 random bits */

/* Fill *p with mlx-lm's defaults (greedy, every filter and processor off,
 * min_tokens_to_keep 1, xtc_threshold 0.1, context sizes 20, seed 0). */
void mt_sampler_params_default(mt_sampler_params *p);

/* Validate p for a vocabulary of `vocab` tokens.  Returns MT_OK or MT_EINVAL
 * with a message naming the offending option and its allowed range. */
int mt_sampler_params_check(const mt_sampler_params *p, size_t vocab, mt_err *err);

/* Holds a copy of the parameters, the RNG state and scratch buffers sized for
 * `vocab`.  One sampler per sequence; not thread-safe (process() also uses the
 * scratch buffers). */
typedef struct mt_sampler mt_sampler;

/* Validate p (as mt_sampler_params_check) and create a sampler whose RNG is
 * seeded from p->seed.  Returns MT_OK, MT_EINVAL or MT_ENOMEM. *out is owned by
 * the caller (mt_sampler_free). */
int  mt_sampler_new(mt_sampler **out, const mt_sampler_params *p, size_t vocab, mt_err *err);
void mt_sampler_free(mt_sampler *s);   /* accepts NULL */

/* Apply the logits processors in place (logit_bias, repetition, presence,
 * frequency).  history = tokens seen so far, oldest first (generate_step passes
 * the prompt tokens it has processed + generated tokens; the caller decides).
 * History ids outside [0, vocab) are ignored.  vocab must equal the sampler's. */
void mt_sampler_process(const mt_sampler *s, float *logits, size_t vocab,
                        const int32_t *history, size_t n_hist);

/* Convert logits to logprobs in place (logits - logsumexp(logits)), then pick a
 * token: argmax (lowest id among ties) if temp == 0, else filters + categorical
 * over softmax(logprobs / temp) of the kept tokens.  On return `logits` holds
 * the full, unfiltered logprobs.  *logprob (may be NULL) receives the chosen
 * token's (unfiltered) logprob.  Advances the RNG (one draw for XTC when
 * xtc_probability > 0, one for the categorical draw). */
int32_t mt_sampler_sample(mt_sampler *s, float *logits, size_t vocab, float *logprob);

/* Testing/advanced: apply the filters (top_p, min_p, xtc, top_k, as configured)
 * in place on a logprob vector, setting removed entries to -INFINITY.  XTC is
 * applied (without a random draw) iff xtc_on != 0 and xtc_probability > 0.
 * Does not touch the RNG. */
void mt_sampler_filter(const mt_sampler *s, float *logprobs, size_t vocab, int xtc_on);

/* Argmax with mlx's rule (first index among equal maxima). */
int32_t mt_argmax(const float *x, size_t n);

/* The k largest entries of logprobs (ties: lower id first), sorted descending,
 * into ids[k] / lps[k].  Entries beyond vocab (k > vocab) get id -1, -INFINITY. */
void mt_top_logprobs(const float *logprobs, size_t vocab, size_t k, int32_t *ids, float *lps);

#endif
