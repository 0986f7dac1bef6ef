/* encoder.h - text encoders for embeddings: bert, roberta, xlm-roberta
 * (BERT-shaped, lib/models/bert.c), the rotary families nomic_bert and
 * modernbert (lib/models/rope_enc.c), and decoder embedders qwen3
 * (Qwen3-Embedding, causal) and gemma3_text (EmbeddingGemma, bidirectional)
 * over the decoder of model.h (lib/models/dec_enc.c).
 * mt_encoder_load() opens a model folder, picks the family from
 * config.json "model_type" through the encoder registry (lib/models/encoders.c),
 * binds the weights (HF names with or without a "bert."/"roberta."/"model."
 * prefix, dense F32/F16/BF16 or MLX affine-quantized) and runs a packed batch
 * of sequences to their last hidden states.
 * ref: transformers models/bert/modeling_bert.py, models/xlm_roberta,
 * models/nomic_bert, models/modernbert. */
#ifndef MT_ENCODER_H
#define MT_ENCODER_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/pool.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "tensor/linear.h"

enum { MT_ENC_ACT_GELU = 0, MT_ENC_ACT_GELU_TANH, MT_ENC_ACT_RELU, MT_ENC_ACT_SILU };

typedef struct mt_encoder_hp {
    int n_layers, hidden, n_heads, head_dim, inter, vocab, max_pos, type_vocab;
    float eps;
    int act;            /* MT_ENC_ACT_* */
    int pos_offset;     /* first position id: 0 (bert), padding_idx + 1 (roberta family) */
    /* rotary families */
    int pre_norm;       /* 1: x += attn(n1(x)); x += mlp(n2(x)) (+ final norm); 0: BERT post-norm */
    int gated;          /* MLP is act(a) * b with [a; b] = gate_up(x) (SwiGLU / GeGLU) */
} mt_encoder_hp;

typedef struct mt_enc_layer {
    mt_linear qkv;      /* fused [3*hidden, hidden] (rows q, k, v) */
    mt_linear o, up, down;   /* gated MLP: up is the fused [2*inter, hidden] (rows a, then b) */
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;   /* attention.output.LayerNorm, output.LayerNorm
                                                     (pre-norm: attention / MLP input norms; ln1_w NULL
                                                     = identity; a NULL bias = none) */
    const float *inv_freq;   /* RoPE frequencies [head_dim/2] (rotary families), else NULL */
    int window;              /* bidirectional sliding window: |i - j| <= window; 0 = global */
} mt_enc_layer;

typedef struct mt_encoder {
    char model_type[64];
    char prefix[32];             /* tensor-name prefix found in the checkpoint ("", "bert.", ...) */
    mt_encoder_hp hp;
    int rotary;                  /* 1: a rotary family (forward in rope_enc.c) */
    struct mt_model *dec;        /* decoder embedders (dec_enc.c): the decoder, else NULL */
    const char *dir;             /* the model folder, during mt_encoder_load only */
    mt_linear word, pos, type;   /* embedding tables (rows read with mt_linear_row) */
    const float *emb_ln_w, *emb_ln_b;
    mt_enc_layer *layers;
    const float *final_w, *final_b;   /* final norm of pre-norm families (NULL: none) */
    float *inv_freq, *inv_freq_local; /* RoPE tables (rotary families) */
    mt_linear pooler;            /* pooler.dense when present (out == 0 otherwise) */
    mt_linear classifier;        /* classifier (sequence classification heads); out == 0 when absent */
    int cls_two_layer;           /* roberta-style head: classifier.dense + classifier.out_proj */
    mt_linear cls_dense;         /* roberta head's first layer */
    mt_config *cfg;
    mt_safetensors *st;
    mt_pool *pool;               /* borrowed */
    void **owned;                /* buffers freed with the encoder */
    size_t n_owned, cap_owned;
} mt_encoder;

/* Load the encoder of folder dir.  pool is borrowed (may be NULL).
 * Errors: MT_ENOTFOUND (config/weights/tensor), MT_EFORMAT (shapes, dtypes),
 * MT_EUNSUPPORTED (unknown model_type, unsupported option). */
int  mt_encoder_load(mt_encoder **out, const char *dir, mt_pool *pool, mt_err *err);
void mt_encoder_free(mt_encoder *e);   /* accepts NULL */

/* Run nseq sequences packed one after another: ids[sum(lens)], lens[nseq]
 * (each 1..max_pos - pos_offset), type_ids[sum(lens)] or NULL (all 0).
 * hidden[sum(lens), hidden] receives the last hidden states; padding never
 * enters (each sequence attends to itself only: the same result as HF with an
 * attention mask).  Errors: MT_EINVAL (an id or type id out of range, a
 * sequence too long), MT_ENOMEM. */
int mt_encoder_forward(mt_encoder *e, const int32_t *ids, const int32_t *type_ids, const size_t *lens, size_t nseq,
                       float *hidden, mt_err *err);

/* Sequence-classification head on the first token's hidden state (BERT:
 * pooler tanh + classifier; roberta: dense tanh + out_proj).  logits[n_labels]
 * per sequence: cls_hidden[nseq, hidden] -> logits[nseq, n_labels].
 * Errors: MT_ENOTFOUND when the checkpoint has no classifier. */
int mt_encoder_classify(mt_encoder *e, const float *cls_hidden, size_t nseq, float *logits, mt_err *err);
/* Number of classifier outputs (0 when there is no classifier). */
size_t mt_encoder_n_labels(const mt_encoder *e);

/* ---- for family files ---- */
typedef int (*mt_encoder_init_fn)(mt_encoder *e, mt_err *err);
typedef struct mt_encoder_family {
    const char *model_type;
    mt_encoder_init_fn init;   /* BERT-shaped: adjusts hp after the common read */
    mt_encoder_init_fn load;   /* non-NULL: reads hp and binds everything itself (the
                                  common BERT reader and binder are skipped) */
} mt_encoder_family;
const mt_encoder_family *mt_encoder_family_find(const char *model_type);

/* Helpers of the family files (lib/models/bert.c). */
/* A buffer freed with the encoder (NULL when out of memory). */
void *mt_enc_own(mt_encoder *e, size_t bytes);
/* The sizes every encoder's config.json gives, checked (no NaN anywhere;
 * positive counts): n_layers, hidden, n_heads, inter, vocab, and max_pos
 * (max_position_embeddings, default max_pos_default). */
int mt_enc_read_sizes(mt_encoder *e, int max_pos_default, mt_err *err);
/* Bind e->prefix + name as a linear [out, in] (0 = from the file) for the
 * forward: dense F32 stays mapped, F16/BF16 are expanded to F32, MLX-quantized
 * matrices stay packed; a bias becomes F32. */
int mt_enc_bind(mt_encoder *e, mt_linear *l, const char *name, size_t out, size_t in, int need_bias, mt_err *err);
/* Rows of parts[0..n) stacked into one linear (same in, same storage kind). */
int mt_enc_stack(mt_encoder *e, mt_linear *dst, const mt_linear *parts, int n, mt_err *err);
/* e->prefix + name as owned float32 [n]; *out NULL (and MT_OK) when optional and absent. */
int mt_enc_vec(mt_encoder *e, const char *name, size_t n, int optional, const float **out, mt_err *err);
/* y[T, out] = x W^T + b (one sgemm for F32 weights; with a pool and
 * single-threaded OpenBLAS, the rows are split over the pool's threads). */
void mt_enc_linear(const mt_encoder *e, const mt_linear *l, const float *x, size_t T, float *y, float *work);
/* Self-attention of packed sequences over the fused qkv rows [N, 3H] -> ctx
 * [N, H]; window > 0 limits keys to |i - j| <= window. */
int mt_enc_attention(const mt_encoder *e, const float *qkv, float *ctx, const size_t *lens, size_t nseq, int window,
                     mt_err *err);
/* Quantized layers for a batch of T rows: with T >= 64, a copy of layer ly
 * whose MLX-quantized linears are dequantized into buf (float32, this batch
 * only; the encoder keeps the packed codes) so the products run as sgemm;
 * else (or when nothing is quantized) ly itself.  buf holds
 * mt_enc_view_floats(e) floats; 0 = no view is ever needed. */
const mt_enc_layer *mt_enc_layer_view(const mt_encoder *e, const mt_enc_layer *ly, size_t T, mt_enc_layer *tmp,
                                      float *buf);
size_t mt_enc_view_floats(const mt_encoder *e);
/* In place activation (MT_ENC_ACT_*) of x[n]. */
void mt_enc_act(int act, float *x, size_t n);
/* Check a packed batch before a forward: every length in 1..maxlen, every id
 * below the vocabulary, every type id below type_vocab (1 when the model has
 * none).  *ntok = sum(lens).  Errors: MT_EINVAL with the offending value. */
int mt_enc_check_input(const mt_encoder *e, const int32_t *ids, const int32_t *type_ids, const size_t *lens,
                       size_t nseq, size_t maxlen, size_t *ntok, mt_err *err);
/* Forward of the decoder embedders (lib/models/dec_enc.c): final hidden states
 * of each sequence through the decoder (causal, or bidirectional when its
 * config says use_bidirectional_attention), positions from 0. */
int mt_enc_dec_forward(mt_encoder *e, const int32_t *ids, const size_t *lens, size_t nseq, float *hidden, mt_err *err);
/* Forward of the rotary families (lib/models/rope_enc.c). */
int mt_enc_rope_forward(mt_encoder *e, const int32_t *ids, const int32_t *type_ids, const size_t *lens, size_t nseq,
                        float *hidden, mt_err *err);

#endif
