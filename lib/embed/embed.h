/* embed.h - sentence embeddings as sentence-transformers computes them: a
 * model folder's modules.json pipeline (Transformer -> Pooling -> Dense* ->
 * Normalize), 1_Pooling/config.json (cls / mean / max / mean_sqrt_len /
 * weightedmean / lasttoken), max_seq_length (sentence_bert_config.json), the
 * prompts of config_sentence_transformers.json, and cross-encoder scoring.
 * A folder without modules.json gets mean pooling + normalization.
 * ref: sentence_transformers/models/{Transformer,Pooling,Dense,Normalize}.py. */
#ifndef MT_EMBED_H
#define MT_EMBED_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "core/err.h"
#include "core/pool.h"
#include "models/encoder.h"
#include "text/tokenizer.h"

enum { MT_POOL_MEAN = 1, MT_POOL_CLS = 2, MT_POOL_MAX = 4, MT_POOL_MEAN_SQRT = 8, MT_POOL_WEIGHTED = 16,
       MT_POOL_LAST = 32 };

typedef struct mt_dense {
    mt_linear l;               /* [out, in] */
    int tanh;                  /* activation: 1 tanh, 0 identity */
} mt_dense;

typedef struct mt_embedder {
    mt_encoder *enc;
    mt_tokenizer *tok;
    int pool_modes[6];         /* MT_POOL_* in concatenation order (the order of the config's
                                  "pooling_mode" list; legacy flags: cls, max, mean, mean_sqrt_len,
                                  weightedmean, lasttoken) */
    size_t n_pool;
    int normalize;             /* Normalize module present */
    mt_dense *dense;           /* Dense modules in order */
    size_t n_dense;
    size_t max_seq;            /* tokens, special ones included: sentence_bert_config.json
                                  max_seq_length, else tokenizer_config.json model_max_length, capped
                                  by the model's positions */
    size_t dim;                /* output dimension */
    int do_lower_case;
    json_t *prompts;           /* {"name": "prefix"} or NULL */
    char *default_prompt;      /* default_prompt_name's text, or NULL */
    mt_safetensors **dense_st; /* weights of the Dense modules */
    int score_sigmoid;         /* cross-encoder scores go through a sigmoid (config.json
                                  sentence_transformers.activation_fn; default: 1 label) */
} mt_embedder;

/* Open the embedder of folder dir; pool borrowed (may be NULL).  max_seq > 0
 * overrides the folder's max_seq_length.  Errors as mt_encoder_load, plus
 * MT_EFORMAT / MT_EUNSUPPORTED for the sentence-transformers files. */
int  mt_embedder_open(mt_embedder **out, const char *dir, mt_pool *pool, size_t max_seq, mt_err *err);
void mt_embedder_free(mt_embedder *m);

/* The prefix text of prompt `name` (borrowed), or NULL when the folder has none. */
const char *mt_embedder_prompt(const mt_embedder *m, const char *name);

/* Tokenize like sentence-transformers 6: prefix + text (not stripped),
 * encoded with special tokens and truncated to max_seq
 * (the content is cut, the special tokens kept).  *ids malloc'd; *truncated
 * set when tokens were dropped.  prefix may be NULL.
 * Errors: MT_EINVAL for an empty or all-whitespace text. */
int mt_embedder_tokenize(const mt_embedder *m, const char *prefix, const char *text, size_t len, int32_t **ids,
                         size_t *n, int *truncated, mt_err *err);

/* Tokenize a (query, document) pair for a cross-encoder as the HF pair
 * template does: BERT [CLS] a [SEP] b [SEP] (type ids 0 then 1), RoBERTa
 * <s> a </s></s> b </s> (type ids 0); longest_first truncation to max_seq.
 * *ids and *types malloc'd.  Errors: MT_EINVAL for an empty text. */
int mt_embedder_tokenize_pair(const mt_embedder *m, const char *a, size_t alen, const char *b, size_t blen,
                              int32_t **ids, int32_t **types, size_t *n, int *truncated, mt_err *err);

/* Cross-encoder scores of packed pairs -> scores[nseq, n_labels] (after the
 * model's activation).  Errors: MT_ENOTFOUND when the model has no classifier. */
int mt_embedder_score(mt_embedder *m, const int32_t *ids, const int32_t *types, const size_t *lens, size_t nseq,
                      float *scores, mt_err *err);

/* Embed nseq tokenized sequences (packed ids, lens[nseq]); out[nseq, dim]. */
int mt_embedder_run(mt_embedder *m, const int32_t *ids, const size_t *lens, size_t nseq, float *out, mt_err *err);

/* Pool one sequence's hidden states h[L, H] into out (mode = one MT_POOL_* bit). */
void mt_embed_pool(int mode, const float *h, size_t L, size_t H, float *out);
/* x[n] /= max(||x||, 1e-12) (torch.nn.functional.normalize). */
void mt_embed_normalize(float *x, size_t n);

/* ---- .npy output ---- */
/* A float32 matrix written row by row to a temporary file next to path and
 * renamed into place by mt_npy_close (the header is rewritten with the final
 * row count).  dtype_f16: store float16 ("<f2") instead of "<f4". */
typedef struct mt_npy mt_npy;
int  mt_npy_open(mt_npy **out, const char *path, size_t cols, int dtype_f16, int raw, mt_err *err);
int  mt_npy_append(mt_npy *w, const float *row, mt_err *err);
size_t mt_npy_rows(const mt_npy *w);
/* Finish: header with the row count, fsync, rename.  Frees w. */
int  mt_npy_close(mt_npy *w, mt_err *err);
/* Drop the temporary file.  Frees w; accepts NULL. */
void mt_npy_abort(mt_npy *w);

#endif
