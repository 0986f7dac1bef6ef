/* deltanet.h - the gated DeltaNet token mixer (linear attention with a recurrent state) of
 * Qwen3-Next and Qwen3.5, as an mt_mixer of the shared decoder (models/ only). */
#ifndef MT_DELTANET_H
#define MT_DELTANET_H

#include "models/model.h"

/* The geometry of a layer's `linear_attn` module. */
typedef struct mt_deltanet_hp {
    int nk, nv;        /* key heads, value heads (nv a multiple of nk) */
    int dk, dv;        /* key and value head sizes */
    int conv_k;        /* the depthwise causal convolution's kernel size (>= 1) */
    int split;         /* 1: in_proj_qkv, in_proj_z, in_proj_b, in_proj_a (qwen3_5);
                          0: in_proj_qkvz, in_proj_ba, grouped per key head (qwen3_next) */
    float eps;         /* the gated RMSNorm's epsilon (rms_norm_eps) */
} mt_deltanet_hp;

/* Bind layer `layer`'s model.layers.N.linear_attn.* tensors and make the layer's mixer the
 * gated DeltaNet: sets L->mixer, L->mix, L->state_floats (per sequence: the convolution's last
 * conv_k - 1 input rows, then nv state matrices [dv, dk]).  Call from m->bind_layer; after
 * mt_decoder_bind the family raises m->max_in to nv * dv (out_proj's input). */
int mt_deltanet_bind(mt_model *m, int layer, const mt_deltanet_hp *hp, mt_err *err);

#endif
