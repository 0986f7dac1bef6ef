/* ple.h - per-layer input embeddings (PLE), the mechanism of Gemma 3n and Gemma 4's small models.
 *
 * Every layer gets a small extra input per token: a row of a second embedding table (all layers'
 * rows side by side), mixed with a projection of the token's scaled main embedding, and a layer
 * adds to its hidden rows a gated projection of its own slice.  With D = hidden_size_per_layer_input,
 * N layers, H = hidden_size, x the token's embedding after the model's embedding scale:
 *
 *   model level (once per call, mt_ple_inputs):
 *     e   = embed_tokens_per_layer[id] * sqrt(D)                     [N * D]
 *     p   = per_layer_model_projection(x) * H^-0.5, as N rows of D, each RMS-normed by
 *           per_layer_projection_norm
 *     pli = (p + e) * 2^-0.5                                          [N, D]
 *   layer l (mt_ple_gate; the caller adds the result where its family does):
 *     g   = gelu_tanh(per_layer_input_gate(h)) * pli[l]               [D]
 *     out = post_per_layer_input_norm(per_layer_projection(g))       [H]
 *
 * Tensors (asked for through the model's prefix / renames): model.embed_tokens_per_layer,
 * model.per_layer_model_projection, model.per_layer_projection_norm, and per layer
 * model.layers.N.{per_layer_input_gate, per_layer_projection, post_per_layer_input_norm}.
 * ref: mlx_lm/models/gemma4_text.py (_get_per_layer_inputs, _project_per_layer_inputs,
 *      DecoderLayer), mlx_lm/models/gemma3n.py (the same math). */
#ifndef MT_PLE_H
#define MT_PLE_H

#include "models/decoder_int.h"

typedef struct mt_ple_layer {
    mt_linear gate, proj;     /* per_layer_input_gate [D, H], per_layer_projection [H, D] */
    mt_norm post;             /* post_per_layer_input_norm [H] */
} mt_ple_layer;

typedef struct mt_ple {
    int n_layers, dim;        /* N, D */
    int vocab;                /* rows of embed_tokens_per_layer */
    int mask_ids;             /* 1: ids >= vocab take row 0 (gemma3n); 0: such ids are an error */
    mt_linear embed;          /* embed_tokens_per_layer [vocab, N * D] */
    mt_linear proj;           /* per_layer_model_projection [N * D, H] */
    mt_norm proj_norm;        /* per_layer_projection_norm [D] */
    float embed_scale, proj_scale, input_scale;   /* sqrt(D), H^-0.5, 2^-0.5 in float32 (a family may round
                                                     them as its reference does: gemma4 to a 16-bit model's dtype) */
    mt_ple_layer *layers;     /* [N] */
} mt_ple;

/* Bind the PLE tensors of model m (N = m->hp.n_layers, H = m->hp.hidden) with D per-layer features
 * and a per-layer vocabulary of `vocab` rows; *out is malloc'd (mt_ple_free). */
int  mt_ple_bind(mt_model *m, int dim, int vocab, mt_ple **out, mt_err *err);
void mt_ple_free(mt_ple *p);
/* The per-layer inputs pli[T, N * D] (row t: layer l's slice at l * D) of the call's rows: tokens
 * tok[T] and their embeddings x[T, H] after the embedding scale.  f gives the pool and the
 * rows1 rule (rows of independent sequences each computed as alone).  MT_EINVAL for an id past
 * the table (unless mask_ids), MT_ENOMEM. */
int  mt_ple_inputs(const mt_fwd *f, const mt_ple *p, const int32_t *tok, const float *x, size_t T, float *pli,
                   mt_err *err);
/* Layer l's gated term out[T, H] from its hidden rows h[T, H] and the call's pli (from
 * mt_ple_inputs); the caller adds it (gemma4: h += out).  MT_ENOMEM. */
int  mt_ple_gate(const mt_fwd *f, const mt_ple *p, int l, const float *h, const float *pli, size_t T, float *out,
                 mt_err *err);
#endif
