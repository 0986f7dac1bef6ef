/* ssm_int.h - recurrent-state token mixers (models/ only): lfm2's gated short convolution
 * (shortconv.c), Mamba's selective scan and Mamba-2's SSD (ssm.c), and what the hybrid
 * families (hybrid.c) bind with them.  Each mixer keeps its state per sequence in
 * mt_kvcache.state[layer] (mt_layer.state_floats floats, zero for an empty sequence). */
#ifndef MT_SSM_INT_H
#define MT_SSM_INT_H

#include "models/model.h"

/* A layer's depthwise causal convolution over the last K inputs of C channels: weight
 * [C, K] (mlx's Conv1d [C, K, 1]), bias [C] or NULL.  Its state is the K - 1 inputs before
 * the next row, oldest first ([K - 1, C]). */
typedef struct mt_conv1d { float *w, *b; size_t C, K; } mt_conv1d;
/* Bind path.weight (and path.bias when bias > 0; bias < 0: when present) as C channels of K taps. */
int  mt_conv1d_bind(mt_model *m, const char *path, size_t C, size_t K, int bias, mt_conv1d *cv, mt_err *err);
/* Rows u[S, C] of one sequence (row stride us) through the convolution with state st
 * [(K - 1) * C], which then holds the last K - 1 inputs; out[S, C] (stride os). */
void mt_conv1d_run(const mt_conv1d *cv, float *st, const float *u, size_t us, size_t S, float *out, size_t os);

/* lfm2's short convolution: in_proj -> B, C, x; B * x through the convolution; C * it; out_proj
 * (module prefix e.g. "model.layers.3.conv").  Sets the layer's mixer and state_floats. */
int mt_shortconv_bind(mt_model *m, int layer, const char *prefix, size_t L_cache, int bias, mt_err *err);

/* Mamba-2 (SSD) geometry and options. */
typedef struct mt_ssm2_cfg {
    int n_heads, head_dim, n_groups, d_state, conv_kernel;
    int use_bias, out_bias, conv_bias;   /* in_proj's, out_proj's, conv1d's */
    float dt_min, dt_max;        /* time_step_limit */
    float norm_eps;              /* the gated RMSNorm's */
    int norm_groups;             /* the gated RMSNorm runs over groups of intermediate / norm_groups
                                    features (1: the whole row, mlx-lm's mamba2) */
    float pre_eps;               /* with pre_norm: the block's RMSNorm before in_proj */
    const char *pre_norm;        /* NULL: none (the decoder's n1 does it) */
    int no_out_norm;             /* no gated norm: y * silu(gate) only (falcon_h1 without mamba_rms_norm) */
    int norm_before_gate;        /* RMSNorm(y) * w, then * silu(gate) (falcon_h1 mamba_norm_before_gate) */
    int parallel;                /* beside the layer's attention: its output is added to the branch's
                                    (mt_layer.mixer_parallel; falcon_h1) */
} mt_ssm2_cfg;
/* A Mamba-2 mixer for layer `layer` from module prefix ("backbone.layers.0.mixer"). */
int mt_ssm2_bind(mt_model *m, int layer, const char *prefix, const mt_ssm2_cfg *sc, mt_err *err);

/* Mamba (selective scan) options. */
typedef struct mt_ssm1_cfg {
    int inter, d_state, conv_kernel, dt_rank;
    int use_bias, conv_bias;
    int bcdt_rms;                /* falcon_mamba: RMS-normalize dt, B and C (no weight) */
    int bcdt_w;                  /* jamba: ... with weights dt_layernorm, b_layernorm, c_layernorm */
    float rms_eps;
    float pre_eps;               /* the block's RMSNorm (pre_norm) */
    const char *pre_norm;
} mt_ssm1_cfg;
int mt_ssm1_bind(mt_model *m, int layer, const char *prefix, const mt_ssm1_cfg *sc, mt_err *err);

/* hybrid.c's helpers for the family files:
 * mt_hyb_hp        the decoder's hyper-parameters for a model whose layers the family binds: sizes from
 *                  the keys named (layers_key NULL: the caller sets n_layers; heads_key NULL: no attention,
 *                  a token 1 x 2 geometry), llama defaults for the rest; own_cache and no_mlx set
 * mt_hyb_bool      a required boolean (mlx-lm's ModelArgs field without a default)
 * mt_hyb_step_limit "time_step_limit" [min, max] (Infinity: no upper limit)
 * mt_hyb_widen     raise m->max_in to w (after mt_decoder_bind, which sets it from attention / MLP) */
int  mt_hyb_hp(mt_model *m, const char *layers_key, const char *heads_key, const char *eps_key, double eps_def, mt_err *err);
int  mt_hyb_bool(json_t *c, const char *key, int *out, mt_err *err);
int  mt_hyb_step_limit(json_t *c, float *lo, float *hi, mt_err *err);
void mt_hyb_widen(mt_model *m, size_t w);

/* Tell the calibration observer (if any) what enters module `prefix`.`sub` (full module paths:
 * the mixers live under names other than model.layers.N.*). */
void mt_ssm_observe(const mt_model *m, const char *prefix, const char *sub, const float *x, size_t T, size_t in);

/* softplus as mlx computes it (logaddexp(x, 0)) */
float mt_softplus(float x);
/* The segments of a call's rows: seg[i] .. seg[i + 1] are the rows of one cache; returns the
 * count (seg has T + 1 entries). */
size_t mt_ssm_segments(const struct mt_fwd *f, size_t *seg);

#endif
