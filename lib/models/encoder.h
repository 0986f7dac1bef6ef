/* encoder.h - bidirectional (BERT-shaped) text encoders: bert, roberta,
 * xlm-roberta.  mt_encoder_load() opens a model folder, picks the family from
 * config.json "model_type" through the encoder registry (lib/models/encoders.c),
 * binds the weights (HF names with or without a "bert."/"roberta."/"model."
 * prefix, dense F32/F16/BF16 or MLX affine-quantized) and runs a packed batch
 * of sequences to their last hidden states.
 * ref: transformers models/bert/modeling_bert.py, models/xlm_roberta. */
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
} mt_encoder_hp;

typedef struct mt_enc_layer {
    mt_linear qkv;      /* fused [3*hidden, hidden], F32 owned */
    mt_linear o, up, down;
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;   /* attention.output.LayerNorm, output.LayerNorm */
} mt_enc_layer;

typedef struct mt_encoder {
    char model_type[64];
    char prefix[32];             /* tensor-name prefix found in the checkpoint ("", "bert.", ...) */
    mt_encoder_hp hp;
    mt_linear word, pos, type;   /* embedding tables (rows read with mt_linear_row) */
    const float *emb_ln_w, *emb_ln_b;
    mt_enc_layer *layers;
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
    mt_encoder_init_fn init;
} mt_encoder_family;
const mt_encoder_family *mt_encoder_family_find(const char *model_type);

#endif
