/* mlxnum.h - mlx's CPU arithmetic for bfloat16 / float16 activations, bit for bit.
 *
 * mlx (0.32, x86-64 builds: no SIMD types there, so every CPU kernel runs its
 * scalar C++) computes a 16-bit model in its dtype: every op rounds its result
 * to the type of its inputs, and a few ops keep a float32 accumulator inside.
 * Measured op by op against mlx 0.32.4 (tests/gen/gen_numerics_goldens.py):
 *   exp, sin, cos, erf      float32 polynomials of its own (simd/math.h), not libm
 *   elementwise + - * /     float32 of the two 16-bit values, rounded; a Python
 *                           scalar operand is first rounded to the type itself
 *   sigmoid                 1/(1 + e) or 1 - 1/(1 + e), e = exp(|x|) rounded first
 *   tanh, pow, sqrt, log    libm in float32, rounded
 *   rms_norm, layer_norm    float32 (sequential sums), rounded, then times the
 *                           weight (and plus the bias), each rounded
 *   softmax (precise)       float32 exp and sum, p rounded; logsumexp likewise
 *   rope (fast.rope)        cos/sin of (pos*scale)*inv_freq in float32 rounded
 *                           to the type; x1*c - x2*s with every product rounded
 *   dense matmul            float32 accumulation in order of k (exact 16-bit
 *                           products), rounded once; addmm adds the bias first
 *   quantized_matmul        in the type: each x*(s*q + b) rounded and the running
 *                           sum rounded at every k
 * Values are held in float arrays; "in type t" means rounded to t (MT_F16 or
 * MT_BF16; MT_F32 leaves values as they are).  Only the ops' results are
 * specified: inputs must already be values of type t.
 * ref: mlx/backend/cpu/{simd/math.h, unary_ops.h, softmax.cpp, logsumexp.cpp,
 *      quantized.cpp, gemms/simd_gemm.h}, mlx/fast.cpp (the CPU fallbacks). */
#ifndef MT_MLXNUM_H
#define MT_MLXNUM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "tensor/dtype.h"

/* mlx's float32 exp / sin / cos / erf (simd::exp, sincos, erf). */
float mt_mlx_exp(float x);
float mt_mlx_sin(float x);
float mt_mlx_cos(float x);
float mt_mlx_erf(float x);
/* y[i] = mt_mlx_sin(x[i]), vectorized (y may be x). */
void mt_mlx_sin_n(const float *x, float *y, size_t n);

/* f rounded to t (nearest even; F32: f). */
static inline float mt_round_to(float f, mt_dtype t) {
    if (t == MT_BF16) {
        uint32_t u;
        memcpy(&u, &f, 4);
        if ((u & 0x7fffffffu) <= 0x7f800000u) u = (u + 0x7fffu + ((u >> 16) & 1)) & 0xffff0000u;
        memcpy(&f, &u, 4);
        return f;
    }
    return t == MT_F16 ? mt_round_f16(f) : f;
}
/* x[n] rounded to t in place. */
void mt_mlx_round(float *x, size_t n, mt_dtype t);

/* Elementwise in type t, a Python scalar s rounded to t first:
 *   mt_mlx_mul_s  x = x * s        mt_mlx_div_s  x = x / s
 *   mt_mlx_add    x = x + y        mt_mlx_mul    x = x * y */
void mt_mlx_mul_s(float *x, size_t n, float s, mt_dtype t);
void mt_mlx_div_s(float *x, size_t n, float s, mt_dtype t);
void mt_mlx_add(float *x, const float *y, size_t n, mt_dtype t);
void mt_mlx_mul(float *x, const float *y, size_t n, mt_dtype t);
/* x = tanh(x) in type t */
void mt_mlx_tanh(float *x, size_t n, mt_dtype t);

/* Activations of mlx.nn in type t (each compiled graph op rounds as above):
 *   silu x*sigmoid(x); swiglu g = silu(g) * u; gelu x*(1 + erf(x/sqrt 2))/2;
 *   gelu_approx 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))). */
void mt_mlx_silu(float *x, size_t n, mt_dtype t);
void mt_mlx_swiglu(float *g, const float *u, size_t n, mt_dtype t);
void mt_mlx_gelu(float *x, size_t n, mt_dtype t);
void mt_mlx_gelu_approx(float *x, size_t n, mt_dtype t);

/* mx.fast.rms_norm(x, w, eps) and mx.fast.layer_norm(x, w, b, eps) of one row
 * of n (w and b are rounded to t as mlx casts them; b may be NULL). */
void mt_mlx_rmsnorm(float *out, const float *x, const float *w, size_t n, float eps, mt_dtype t);
void mt_mlx_layernorm(float *out, const float *x, const float *w, const float *b, size_t n, float eps, mt_dtype t);
/* mx.softmax(x, precise=True) of one row, in place; mx.logsumexp of one row. */
void mt_mlx_softmax(float *x, size_t n, mt_dtype t);
float mt_mlx_logsumexp(const float *x, size_t n, mt_dtype t);

/* RoPE as mx.fast.rope's CPU fallback: inv_freq[dims/2] of a base (what
 * nn.RoPE passes) is exp(-i * log(base) / (dims/2)) with mlx's exp; with
 * frequencies given it is 1/freqs (mt_rope_freqs' tables).  pos is the
 * position times the rope scale, in float32.  x[heads, hd] in place. */
void mt_mlx_rope_inv_freq(float *inv_freq, int dims, float base);
void mt_mlx_rope(float *x, size_t heads, size_t hd, size_t dims, const float *inv_freq, float pos, int traditional,
                 mt_dtype t);

/* One query head over n cached rows, as mx.fast.scaled_dot_product_attention's
 * CPU fallback (and gemma2's own attention when cap > 0): q*scale rounded,
 * scores s_j = q.K_j (float32 in order of the head's dims, rounded), soft-capped
 * as round(round(tanh(round(s/cap))) * cap) when cap > 0, precise softmax over
 * the rows with mask[j] != 0 (mask NULL: all), out = sum_j p_j V_j (float32 in
 * order of j, rounded).  K_j = K + j*kvs elements of kdt (F32, F16 or BF16).
 * scratch: n floats + hd floats. */
void mt_mlx_attn_head(const float *q, const void *K, const void *V, mt_dtype kdt, size_t kvs, size_t n, size_t hd,
                      float scale, float cap, const unsigned char *mask, mt_dtype t, float *out, float *scratch);

#endif
