/* vit.h - the vision transformer of the SigLIP family, as the vision towers of
 * multimodal folders hold it (Idefics3/SmolVLM, and the SigLIP towers of
 * Gemma 3 and PaliGemma): a stride-patch convolution, learned position
 * embeddings, pre-norm encoder blocks (LayerNorm, multi-head attention with
 * biases, LayerNorm, fc1 -> GELU -> fc2), a final LayerNorm.  No class token,
 * no pooling head: the output is every patch's last hidden state.
 *
 * Weights are read from the folder's safetensors under a prefix (e.g.
 * "vision_model."): embeddings.patch_embedding.{weight,bias} (MLX layout
 * [D, p, p, C], or PyTorch's [D, C, p, p]), embeddings.position_embedding
 * .weight, encoder.layers.N.{layer_norm1, self_attn.{q,k,v,out}_proj,
 * layer_norm2, mlp.fc1, mlp.fc2}, post_layernorm.  Linears and the position
 * table may be MLX-quantized (the folder's "quantization", full module paths).
 * Computation is float32 throughout.
 *
 * CLIP towers (LLaVA's clip_vision_model) through mt_vit_opts: a class token
 * (embeddings.class_embedding) before the patches, a position table of patches + 1
 * rows, a patch convolution without bias, pre_layrnorm after the embeddings, the
 * quick GELU; and any tower can stop at a chosen hidden state (LLaVA's
 * vision_feature_layer -2) instead of running every layer and post_layernorm.
 * ref: mlx_vlm/models/idefics3/vision.py, mlx_vlm/models/attention.py, mlp.py */
#ifndef MT_VIT_H
#define MT_VIT_H

#include <stddef.h>
#include <jansson.h>
#include "core/err.h"
#include "core/pool.h"
#include "io/config.h"
#include "io/safetensors.h"

typedef struct mt_vit mt_vit;

typedef struct mt_vit_spec {
    const char *prefix;       /* tensor names, e.g. "vision_model." */
    int act;                  /* MT_ENC_ACT_* of the MLP (mlx-vlm's idefics3: GELU_TANH, which is
                                 what mlx's nn.GELU(approx="precise") computes) */
    float post_eps;           /* post_layernorm epsilon (mlx-vlm's idefics3: LayerNorm's default 1e-5);
                                 0 = the config's layer_norm_eps */
} mt_vit_spec;

/* What differs from the SigLIP tower above (all zero: exactly mt_vit_load's tower). */
typedef struct mt_vit_opts {
    int clip;          /* class token + position row 0 for it, no patch bias, pre_layrnorm */
    float pre_eps;     /* pre_layrnorm epsilon (mlx-vlm: LayerNorm's default 1e-5); 0 = 1e-5 */
    int keep_cls;      /* clip: the class token's row stays in the output (else dropped) */
    int layer;         /* 0: every layer, then post_layernorm; < 0: mlx-vlm's hidden_states[layer]
                          (index 0 = the embeddings, i = layer i's output; no post_layernorm):
                          -2 runs all layers but the last */
    int plain_pos;     /* position ids 0..n-1 whatever the grid (mlx-vlm's gemma3, paligemma and
                          llava towers; the default buckets as idefics3's does) */
    int quick_gelu;    /* MLP activation x * sigmoid(1.702 x), mlx's nn.GELU(approx="fast")
                          (llava's FastGELUMLP), instead of spec->act */
} mt_vit_opts;

typedef struct mt_vit_info {
    int hidden, patch, image_size, n_layers, n_heads, inter, channels;
    float eps;
} mt_vit_info;

/* Bind the tower described by vcfg (the config's "vision_config" object) to the
 * tensors of st (borrowed, must outlive the tower; its quantization from cfg).
 * pool borrowed (may be NULL).  Errors name the key or tensor. */
int  mt_vit_load(mt_vit **out, json_t *vcfg, const mt_config *cfg, mt_safetensors *st, const mt_vit_spec *spec,
                 mt_pool *pool, mt_err *err);
/* The same with opts (NULL: none). */
int  mt_vit_load_opts(mt_vit **out, json_t *vcfg, const mt_config *cfg, mt_safetensors *st, const mt_vit_spec *spec,
                      const mt_vit_opts *opts, mt_pool *pool, mt_err *err);
void mt_vit_free(mt_vit *v);
/* rows mt_vit_forward gives per image of h x w: (h/p)*(w/p), + 1 with a kept class token */
size_t mt_vit_rows(const mt_vit *v, int h, int w);
const mt_vit_info *mt_vit_info_of(const mt_vit *v);

/* n images of C x h x w float32 (channels first; h and w multiples of the
 * patch size, at most image_size; a CLIP tower's exactly image_size) ->
 * out[n, mt_vit_rows, hidden].  Position
 * ids as mlx-vlm buckets them for an (h/p) x (w/p) patch grid (the identity on
 * a full grid whose side is a power of two).  MT_EINVAL on a bad size. */
int mt_vit_forward(mt_vit *v, const float *pixels, size_t n, int h, int w, float *out, mt_err *err);

/* The position ids mlx-vlm gives an nh x nw grid of a tower with nps patches
 * per side: ids[nh * nw] (float32 bucketing of i/nh against an mx.arange of
 * 1/nps steps). */
void mt_vit_position_ids(int nps, int nh, int nw, int *ids);

#endif
