/* conformer.h - the FastConformer encoder of NeMo ASR models (Parakeet), as
 * mlx-audio runs it (mlx_audio/stt/models/parakeet/conformer.py, attention.py):
 *
 *   features [T, feat_in]
 *   -> dw_striding subsampling: log2(factor) stride-2 3x3 Conv2d stages over
 *      (time, frequency) - a full conv 1 -> C, then depthwise + pointwise
 *      pairs - each followed by ReLU; [T', C * F'] (channel major) -> Linear
 *      -> [T', d_model]  (factor 1: one Linear feat_in -> d_model)
 *   -> x * sqrt(d_model) when xscaling
 *   -> n_layers blocks, each:
 *        x += 0.5 FF1(LN(x));  x += RelPosMHA(LN(x));  x += Conv(LN(x));
 *        x += 0.5 FF2(LN(x));  x = LN(x)
 *      FF: Linear(d, d*ff) SiLU Linear(d*ff, d)
 *      RelPosMHA (Transformer-XL): scores = scale ((q + u) k^T + rel_shift((q + v) p^T)),
 *        p = linear_pos(sinusoids of the relative positions T'-1 .. -(T'-1))
 *      Conv: pointwise d -> 2d, GLU, depthwise (kernel K, same padding),
 *        batch norm (running statistics), SiLU, pointwise d -> d
 *
 * Weights are mlx-audio's names under a prefix ("encoder."): linears dense
 * (F32/F16/BF16) or MLX-quantized, conv kernels in mlx's layouts
 * (Conv2d [out, kh, kw, in/groups], Conv1d [out, k, in/groups]).
 * ref: NeMo ConformerEncoder / RelPositionMultiHeadAttention. */
#ifndef MT_CONFORMER_H
#define MT_CONFORMER_H

#include <stddef.h>
#include "core/err.h"
#include "core/pool.h"
#include "io/config.h"
#include "io/safetensors.h"

typedef struct mt_conformer_cfg {
    int feat_in, n_layers, d_model, n_heads, ff_expansion;
    int subsampling_factor;     /* 1, 2, 4, 8, ... (dw_striding when > 1) */
    int sub_channels;           /* subsampling_conv_channels */
    int conv_kernel;            /* odd */
    int use_bias;               /* linears and convs of the blocks carry biases */
    int xscaling;
} mt_conformer_cfg;

typedef struct mt_conformer mt_conformer;

/* Read the "encoder" object of a NeMo-structured config (cfg keys
 * encoder.*).  Errors: MT_EFORMAT / MT_EINVAL (missing or out-of-range
 * sizes), MT_EUNSUPPORTED (subsampling other than dw_striding, causal
 * downsampling, attention other than rel_pos, mask_padding). */
int mt_conformer_read_cfg(const mt_config *cfg, mt_conformer_cfg *c, mt_err *err);

/* Bind the encoder's tensors (names prefix + "pre_encode...", "layers.N...").
 * st must outlive the encoder (linear weights stay mapped); cfg is read
 * during the call only.  Errors: MT_ENOTFOUND (a tensor), MT_EFORMAT (shape / dtype),
 * MT_ENOMEM. */
int  mt_conformer_load(mt_conformer **out, const mt_conformer_cfg *c, const mt_safetensors *st, const mt_config *cfg,
                       const char *prefix, mt_err *err);
void mt_conformer_free(mt_conformer *e);   /* accepts NULL */

/* Output frames for T input frames (each stride-2 stage: (t - 1) / 2 + 1). */
size_t mt_conformer_out_len(const mt_conformer *e, size_t T);

/* y [mt_conformer_out_len(T), d_model] from features x [T, feat_in].
 * pool may be NULL.  Errors: MT_EINVAL (T = 0), MT_ENOMEM. */
int mt_conformer_forward(const mt_conformer *e, const float *x, size_t T, float *y, mt_pool *pool, mt_err *err);

#endif
