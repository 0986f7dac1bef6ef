/* generate.h - generation loops: one sequence, or several decoding together
 * (--batch), plus scoring (log-probabilities of given text).
 * ref: mlx_lm/generate.py (generate_step, stream_generate), mlx_lm/perplexity.py. */
#ifndef MT_GENERATE_H
#define MT_GENERATE_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/jsonl.h"
#include "gen/sample.h"
#include "models/model.h"
#include "text/tokenizer.h"

typedef struct mt_gen_params {
    int max_tokens;                 /* default 256 */
    mt_sampler_params sp;
    const char *const *stop;        /* stop strings (not emitted), may be NULL */
    size_t n_stop;
    const int32_t *eos; size_t n_eos;  /* end-of-sequence ids (not emitted) */
    int prefill_step;               /* tokens per prefill chunk, default 2048 (mlx-lm's) */
    int trim_first_space;           /* drop one leading space of the text (mlx-lm BPE detokenizer) */
    int logprobs;                   /* K > 0: record the top-K alternatives of each generated token */
    int max_kv_size;                /* > 0: rotating KV cache of this many slots keeping the first 4 (mlx-lm) */
    int kv_f16;                     /* keys/values cached as float16 (1), float32 (0) or, -1 (the
                                       default), as the model's weights: mt_model_kv_f16 */
    const mt_jsonl_tick *tick;      /* optional: progress notes (prompt tokens prefilled, tokens
                                       generated) for the record loop's progress line */
    /* continuing from saved state (kv/kvfile.h, kv/prefix.h) */
    const mt_kvcache *prefix;       /* optional: start from a copy of this cache (a loaded prompt
                                       cache); the prompt given is what follows it, and the cache's
                                       own mode (f16, rotating, quantized) is kept */
    const int32_t *prefix_tokens;   /* the ids it holds (NULL: unknown, as in mlx-lm's files) */
    struct mt_prefix_store *store;  /* optional: shared-prefix reuse across sequences */
    int kv_bits, kv_group_size;     /* KV quantization (mlx-lm's QuantizedKVCache): bits 0 = none */
    int kv_start;                   /* mlx-lm's quantized_kv_start */
    int snapshot;                   /* res->prompt_cache gets a copy of the cache: 1 after the prompt,
                                       2 after generation (prompt + generated tokens fed back) */
    const mt_embed_inject *inject;  /* optional (multimodal models): rows replacing the embeddings of
                                       every inject->token_id in the prompt (a cached prefix's
                                       included: they are counted, not recomputed); their number
                                       must equal the count (MT_EINVAL otherwise); inject->next is
                                       ignored.  No shared-prefix reuse (store) with it. */
    struct mt_grammar_tokens *grammar; /* optional (structured output, gen/constrain.h): only tokens
                                       that keep the text a prefix of a sentence of this grammar are
                                       sampled, and eos only where it can end */
    /* speculative decoding (gen/speculative.h): on when draft && num_draft > 0, or prompt_lookup > 0 */
    mt_model *draft;                /* optional: a small model with the same vocabulary proposing tokens */
    int num_draft;                  /* tokens the draft proposes per round (1..64; 0 = off) */
    int prompt_lookup;              /* N > 0: up to N tokens copied from an n-gram match in the tokens
                                       so far (no draft model needed; tried before the draft) */
} mt_gen_params;

typedef struct mt_gen_result {
    char *text;                     /* malloc'd, NUL-terminated */
    size_t text_len;
    int32_t *tokens;                /* generated ids (malloc'd), eos excluded */
    float *token_logprobs;          /* [n_tokens] log-probability of each generated token */
    int32_t *top_ids;               /* [n_tokens * K] when logprobs = K > 0, else NULL */
    float *top_logprobs;
    size_t n_tokens;
    const char *finish_reason;      /* "stop" or "length" (static string) */
    int eos;                        /* it stopped at an end-of-sequence id */
    size_t prompt_tokens;           /* all of them, the cached ones included */
    size_t cached_tokens;           /* of those, how many came from saved state (not computed) */
    double prefill_s, decode_s;
    double grammar_s;               /* gp->grammar: time spent masking logits (in decode_s) */
    mt_kvcache *prompt_cache;       /* gp->snapshot: the cache after the prompt or generation (owned) */
    int32_t *prompt_ids;            /* gp->snapshot: the ids it holds (owned), or NULL if unknown */
    size_t n_prompt_ids;
    size_t draft_tokens;            /* speculative decoding: tokens proposed (draft or lookup) */
    size_t accepted_tokens;         /* ... and of those, accepted by the model */
} mt_gen_result;

/* Called with each new piece of text as soon as it is final (UTF-8 complete,
 * not part of a possible stop string).  Return non-zero to abort. */
typedef int (*mt_gen_text_fn)(void *user, const char *piece, size_t len);

void mt_gen_params_default(mt_gen_params *p);
/* Errors of a sequence (mt_generate, and per sequence in mt_generate_batch):
 * MT_EINVAL for a prompt longer than the model's context (m->ctx_len; refused
 * before any forward pass: "prompt is N tokens; the model's context is C (...)");
 * generation itself may run past the context.  MT_EFORMAT when the logits to
 * sample from hold a NaN or an infinity ("model produced non-finite logits at
 * token N ..."). */
int mt_generate(mt_model *m, const mt_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                const mt_gen_params *gp, mt_gen_text_fn on_text, void *user, mt_gen_result *res, mt_err *err);

/* B sequences together: each is prefilled alone, then all decode in lockstep
 * with batched products (mt_model_decode_batch) until each stops.  rcs[b] is
 * MT_OK with res[b] filled, or an error with errs[b] set; one sequence's
 * failure does not stop the others.  Greedy results equal mt_generate's up to
 * float reassociation in the batched products. */
void mt_generate_batch(mt_model *m, const mt_tokenizer *tok, const int32_t *const *prompts, const size_t *n_prompts,
                       const mt_gen_params *const *gps, size_t B, mt_gen_result *res, int *rcs, mt_err *errs);
void mt_gen_result_free(mt_gen_result *r);

/* Score ids[0..n): logprobs[i] = log p(ids[i] | ids[<i]) for i >= 1 (logprobs[0] = 0).
 * n past the model's context and non-finite logits are errors, as for mt_generate. */
int mt_score(mt_model *m, const int32_t *ids, size_t n, float *logprobs, mt_err *err);
/* The same with a quantized KV cache (kv_bits 8, 6, 5, 4, 2 affine in groups of kv_group; 3:
 * the rotation scheme; 0: float) whose every row is quantized as it is written, and the float
 * rows' type kv_f16 (1 f16, 0 f32, -1: f32 unless quantizing a 16-bit model or running a float16
 * model with mlx's numerics (mt_model_kv_f16); mt_score: -1). */
int mt_score_kv(mt_model *m, const int32_t *ids, size_t n, int kv_bits, int kv_group, int kv_f16, float *logprobs,
                mt_err *err);
/* The same with image rows for inject->token_id in ids[0..n-1) (their number must match). */
int mt_score_inject(mt_model *m, const int32_t *ids, size_t n, int kv_bits, int kv_group, int kv_f16,
                    const mt_embed_inject *inject, float *logprobs, mt_err *err);

#endif
