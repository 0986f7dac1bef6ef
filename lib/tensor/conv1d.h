/* conv1d.h - 1-D convolution and transposed convolution over one sequence,
 * with weight-norm folding (the convs of Kokoro's iSTFTNet / StyleTTS2 parts).
 *
 * Activations are channels-first: x [c_in, T] row-major (a channel's samples
 * contiguous), y [c_out, T_out].  Weights are mlx's layout for both kinds,
 * w [c_out, k, c_in/groups]; mt_conv1d_init can also take the [c_in, k, c_out]
 * layout that Kokoro's generator `ups` weights are stored in.
 *
 *   conv:       y[o, t] = b[o] + sum_{j, c} w[o, j, c] * x[g*cg + c, t*stride + j*dil - pad]
 *   transposed: y[o, i*stride + j*dil - pad] += w[o, j, c] * x[g*cg + c, i], plus b[o]
 * where g is o's group and cg = c_in/groups; samples outside x are zeros.
 *   T_out = (T + 2*pad - dil*(k-1) - 1)/stride + 1                 (conv)
 *   T_out = (T-1)*stride - 2*pad + dil*(k-1) + out_pad + 1           (transposed)
 * Products run as im2col + one-thread sgemm per pool thread (time tiles and
 * output-row blocks for convs, output-row blocks for transposed convs); a
 * depthwise conv (one input and one output channel per group) runs directly.
 *
 * ref: mlx_audio/tts/models/kokoro/istftnet.py (ConvWeighted, weight_norm,
 *      Decoder.sanitize), mlx.core.conv1d / conv_transpose1d (0.32.4). */
#ifndef MT_CONV1D_H
#define MT_CONV1D_H

#include <stddef.h>
#include "core/err.h"
#include "core/pool.h"

typedef struct mt_conv1d_shape {
    int c_in, c_out, k;
    int stride, pad, dilation, groups;  /* stride, dilation, groups >= 1; pad >= 0 */
    int transposed;                     /* 1: transposed convolution */
    int out_pad;                        /* transposed only: extra samples at the end */
} mt_conv1d_shape;

typedef struct mt_conv1d_i8 mt_conv1d_i8;   /* the int8 form (mt_conv1d_int8), opaque */

typedef struct mt_conv1d {
    mt_conv1d_shape s;
    float *w;   /* [c_out, k, c_in/groups], owned */
    float *b;   /* [c_out] or NULL, owned */
    mt_conv1d_i8 *i8;   /* NULL, or the int8 form mt_conv1d_forward uses, owned */
} mt_conv1d;

/* Weight layouts mt_conv1d_init accepts.  Kokoro's PyTorch checkpoint keeps
 * torch's layouts (conv [out, in/groups, k], ConvTranspose1d [in, out, k]);
 * mlx-audio's sanitize turns the conv kernels into [out, k, in] (weight_v is
 * transposed unless its shape already reads as [out, k, in] by its heuristic:
 * dim 0 the largest and dims 1 and 2 equal), the `ups` kernels into
 * [in, k, out], and noise_convs / F0_proj / N_proj plain weights likewise. */
enum {
    MT_CONV_W_OKI = 0,   /* [c_out, k, c_in/groups]: mlx's (sanitized) */
    MT_CONV_W_IKO = 1,   /* [c_in, k, c_out]: a sanitized `ups` weight_v, which mlx-audio
                          * reverses (weight.T) before conv_transpose1d; groups 1 */
    MT_CONV_W_OIK = 2,   /* [c_out, c_in/groups, k]: torch's Conv1d */
    MT_CONV_W_IOK = 3,   /* [c_in, c_out, k]: torch's ConvTranspose1d; groups 1 */
};

/* Weight norm as mlx-audio computes it (weight_norm(v, g, dim=0)):
 * w[i, :] = v[i, :] / (||v[i, :]|| + 1e-7) * g[i], the L2 norm over all axes
 * but the first.  v, w [n0, inner] (w may be v); g [n0]. */
void mt_weight_norm_fold(float *w, const float *v, const float *g, size_t n0, size_t inner);

/* Copy w (in `layout`, float32) and b (c_out floats, or NULL for none) into c.
 * Errors: MT_EINVAL (a shape field out of range, c_in or c_out not divisible
 * by groups, IKO / IOK with groups > 1), MT_ENOMEM.  On error c is left
 * empty (mt_conv1d_free is safe). */
int mt_conv1d_init(mt_conv1d *c, const mt_conv1d_shape *s, const float *w, int layout, const float *b,
                   mt_err *err);
/* Weight-normed init: v in `layout` with g [n0] over its first axis (c_out
 * for OKI / OIK, c_in for IKO / IOK: weight norm's dim 0 in any of them);
 * folds then copies. */
int mt_conv1d_init_wn(mt_conv1d *c, const mt_conv1d_shape *s, const float *v, const float *g, int layout,
                      const float *b, mt_err *err);
/* Releases the weights; c itself is the caller's.  Accepts NULL. */
void mt_conv1d_free(mt_conv1d *c);

/* The int8 form of a conv: its weights quantized to 8-bit affine codes per group of 64
 * along k*c_in (32 when k*c_in is not a multiple of 64), and at every forward the
 * activations quantized per group to int8, integer dot products and per group scales
 * (the MT_QMATH_INT8 arithmetic of tensor/kernels.h, through tensor/linear.h).  About
 * twice as fast as the float products on AVX-512 VNNI; results are close to, not equal
 * to, the float ones.  Only plain convs qualify (groups 1, not transposed, k*c_in a
 * multiple of 32): *done (may be NULL) is set to 1 when c now has its int8 form, 0 when
 * c does not qualify (left as it is).  Errors: MT_EINVAL, MT_ENOMEM.  The float weights
 * stay (mt_conv1d_forward_ref uses them).  Where the VNNI tiles run and the weight groups
 * lie within one tap, each input sample is quantized once and the tiles' rows assembled
 * from its codes (the same bytes as quantizing im2col rows); MT_CONV_I8_SLOW=1 in the
 * environment forces the im2col form, so that tests can compare the two. */
int mt_conv1d_int8(mt_conv1d *c, int *done, mt_err *err);

/* Output length for an input of T samples; 0 when the input is too short. */
size_t mt_conv1d_out_len(const mt_conv1d_shape *s, size_t T);

/* y [c_out, mt_conv1d_out_len(T)] from x [c_in, T] (no aliasing).  pool may
 * be NULL (one thread).  Errors: MT_EINVAL (T too short for the kernel),
 * MT_ENOMEM (scratch). */
int mt_conv1d_forward(const mt_conv1d *c, const float *x, size_t T, float *y, mt_pool *pool, mt_err *err);

/* The plain loops the fast path is tested against (same contract). */
int mt_conv1d_forward_ref(const mt_conv1d *c, const float *x, size_t T, float *y, mt_err *err);

#endif
