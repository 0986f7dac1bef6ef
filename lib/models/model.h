/* model.h - a loaded language model and its KV cache.
 *
 * mt_model_load() opens a model folder: config.json picks the family through
 * the registry (keyed by model_type), the family reads its hyper-parameters
 * and binds its tensors (borrowed from the mmapped safetensors; shapes are
 * checked, so a wrong checkpoint is an error, not a crash). */
#ifndef MT_MODEL_H
#define MT_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/pool.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "tensor/linear.h"

enum { MT_ACT_SILU = 0, MT_ACT_GELU, MT_ACT_GELU_TANH };

/* Hyper-parameters of a llama-like decoder; a family fills what differs. */
typedef struct mt_decoder_hp {
    int n_layers, hidden, n_heads, n_kv_heads, head_dim, inter, vocab;
    float norm_eps;
    float rope_theta;
    int rope_traditional;
    int rot_dims;           /* features rotated (<= head_dim) */
    float rope_in_scale;    /* q,k multiplied before RoPE (yarn / longrope mscale), 1 = none */
    int tie_embeddings;
    int qk_norm;            /* RMSNorm on q and k per head (qwen3, olmo2-like) */
    int attn_bias;          /* q/k/v projections have a bias (qwen2) */
    int act;                /* MT_ACT_* of the gated MLP */
    float attn_scale;       /* default head_dim^-0.5 */
    int sliding_window;     /* 0 = none */
} mt_decoder_hp;

typedef struct mt_layer {
    float *attn_norm, *mlp_norm;   /* [hidden] f32 copies */
    float *q_norm, *k_norm;        /* [head_dim] or NULL */
    mt_linear q, k, v, o, gate, up, down;
    int sliding;                   /* this layer uses the sliding window */
} mt_layer;

typedef struct mt_model {
    char model_type[64];
    mt_decoder_hp hp;
    float *inv_freq;               /* [rot_dims/2] */
    mt_linear embed, lm_head;      /* lm_head == embed when tied */
    float *final_norm;
    mt_layer *layers;
    mt_config *cfg;
    mt_safetensors *st;
    mt_pool *pool;                 /* borrowed */
    size_t max_in;                 /* widest linear input: scratch sizing */
} mt_model;

/* One sequence's cache: per layer K and V as [pos, n_kv_heads, head_dim]. */
typedef struct mt_kvcache {
    int n_layers;
    size_t kv_dim;                 /* n_kv_heads * head_dim */
    size_t len, cap;
    float **k, **v;
} mt_kvcache;

int  mt_model_load(mt_model **out, const char *dir, mt_pool *pool, mt_err *err);
void mt_model_free(mt_model *m);

int  mt_kvcache_new(mt_kvcache **out, const mt_model *m, mt_err *err);
void mt_kvcache_reset(mt_kvcache *c);
void mt_kvcache_free(mt_kvcache *c);

/* Run T tokens at positions cache->len.. and append them to the cache.
 * logits: [T, vocab] when all_logits, else [vocab] for the last token only. */
int mt_model_forward(mt_model *m, mt_kvcache *cache, const int32_t *tokens, size_t T, float *logits,
                     int all_logits, mt_err *err);

/* ---- for family files ---- */
typedef int (*mt_family_init_fn)(mt_model *m, mt_err *err);
typedef struct mt_family {
    const char *model_type;
    mt_family_init_fn init;
} mt_family;
const mt_family *mt_family_find(const char *model_type);
size_t mt_family_count(void);
const mt_family *mt_family_at(size_t i);
/* Shared loader of the llama-like decoder: reads the common hyper-parameters
 * and binds tensors with HF/MLX names (model.layers.N.self_attn.q_proj, ...). */
int mt_decoder_read_hp(mt_model *m, mt_err *err);
int mt_decoder_bind(mt_model *m, mt_err *err);

#endif
