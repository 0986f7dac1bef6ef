/* kernels.h - SIMD kernels behind linear.c and ops.c, one set per CPU path
 * (core/cpu.h): _c (portable C), _avx2 (AVX2+FMA+F16C), _avx512 (AVX-512
 * F/BW/VL; compiled with a target attribute, called only when the CPU has it).
 * Internal to lib/tensor: other code calls mt_linear_forward / the ops. */
#ifndef MT_KERNELS_H
#define MT_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "tensor/dtype.h"

/* A packed MLX affine matrix [rows, K]: row r has row_bytes = K*bits/8 bytes of
 * codes at w + r*row_bytes and K/gs scales/biases of dtype sdt. */
typedef struct mt_qmat {
    const unsigned char *w, *s, *b;
    mt_dtype sdt;
    size_t K, row_bytes, ng;
    int bits, gs;
    int mode;   /* mt_qmode (tensor/quant.h): fp modes have b NULL and sdt MT_F8_E8M0 / MT_F8_E4M3
                 * (one scale byte per group); their codes are fp4 E2M1 / fp8 E4M3 values */
} mt_qmat;

/* Prepared activations for the quantized matrix-vector kernels of one path:
 * xp[K] (x, permuted to the nibble order of the path's 4-bit kernel) and
 * gsum[K/gs] (sum of x over each group).  xp and gsum are caller buffers. */
void mt_kq_prep(int level, const mt_qmat *m, const float *x, float *xp, float *gsum);
/* y[t*ldy + r] = sum_i x_t[i] * W[r][i] for r in [r0, r1), t in [0, T), where
 * x_t's prepared form is xp + t*K (64-byte aligned), gsum + t*ng.  Per group
 * this computes scale * sum(x*q) + bias * sum(x) with scale/bias widened to
 * float32; the AVX-512 4-bit kernel for several tokens (or groups other than
 * 32/64/128) computes sum(x * (scale*q + bias)) instead. */
void mt_kq_rows(int level, const mt_qmat *m, const float *xp, const float *gsum, size_t T, float *y, size_t ldy,
                size_t r0, size_t r1);

/* The fp modes (kernels_fp.c; mt_kq_rows calls it for them): the same
 * contract without biases (gsum unused): per group s_g * sum(x * e).
 * mt_kfp_perm_block: the block of mt_kq_prep's 4-bit x permutation on that
 * path (32, 16, or 0 = natural order). */
void mt_kfp_rows(int level, const mt_qmat *m, const float *xp, size_t T, float *y, size_t ldy, size_t r0, size_t r1);
int mt_kfp_perm_block(int level, const mt_qmat *m);
/* Row r as float32: out[K] = e * s, the same bits as mt_qfp_row_f32 (tensor/quant.h). */
void mt_kfp_row_f32(int level, const mt_qmat *m, size_t r, float *out);

/* Scales/biases of dtype t (F32/F16/BF16) widened to float32: dst[n]. */
void mt_k_cvt_f32(int level, float *dst, const unsigned char *src, mt_dtype t, size_t n);

/* ---- int8 activations (MT_QMATH_INT8, kernels_i8.c) --------------------
 * Each activation row is quantized per weight group g to int8, symmetric:
 * d_g = max|x_g| / 127, q_i = round-to-nearest-even(x_i * (1/d_g)) (q = 0 when
 * d_g = 0), and per group  y += (s_g * d_g) * sum_i(code_i * q_i) + b_g * sum_i(x_i)
 * with the integer sum exact (VNNI vpdpbusd: codes are the u8 operand) and
 * sum_i(x_i) the float sum of the unquantized x.  4- and 8-bit codes with
 * groups of 32, 64 or 128 (mt_ki8_supported).
 * Per path layout of one prepared row: q[kp] int8 (portable: natural order;
 * SIMD: blocks of 64 code bytes, for 4 bits each block's even elements then its
 * odd ones, zero padded), sx[nl] (portable: d per group; SIMD: d per 32-bit
 * lane of the blocks, zero past K), gsum[ng]. */
int mt_ki8_supported(const mt_qmat *m);
/* level: a mt_cpu_level() value; AVX512 runs the VNNI kernel where the CPU has
 * AVX512-VNNI, else the AVX2 one (same SIMD layout).  mt_ki8_layout gives the
 * per-row sizes kp (bytes of q) and nl (floats of sx) of that path. */
void mt_ki8_layout(int level, const mt_qmat *m, size_t *kp, size_t *nl);
void mt_ki8_prep(int level, const mt_qmat *m, const float *x, int8_t *q, float *sx, float *gsum);
/* y[t*ldy + r] for t in [0, tn) (tn <= 8) and r in [r0, r1), from the prepared
 * rows q + t*kp, sx + t*nl, gsum + t*ng. */
void mt_ki8_rows(int level, const mt_qmat *m, const int8_t *q, const float *sx, const float *gsum, size_t kp,
                 size_t nl, size_t tn, float *y, size_t ldy, size_t r0, size_t r1);

/* Tiles of 16 rows x many tokens (AVX-512 VNNI only: mt_ki8_tiles_ok).  Rows
 * are prepared with mt_ki8_prep_tiles: q[K] (natural order; for 4 bits each 8
 * elements as their 4 even then 4 odd ones), sx[ng] (d per group), gsum[ng].
 * Computes y[t*ldy + r] for t in [0, T), r in [r0, r1); scratch: a caller
 * buffer of mt_ki8_tiles_scratch(m) bytes (one per thread). */
int mt_ki8_tiles_ok(int level, const mt_qmat *m);
size_t mt_ki8_tiles_scratch(const mt_qmat *m);
void mt_ki8_prep_tiles(const mt_qmat *m, const float *x, int8_t *q, float *sx, float *gsum);
void mt_ki8_tiles(const mt_qmat *m, const int8_t *q, const float *sx, const float *gsum, size_t T, float *y,
                  size_t ldy, size_t r0, size_t r1, void *scratch);

/* Dense rows of dtype wdt (F32/F16/BF16), W [rows, K]:
 * y[t*ldy + r] = dot(x + t*K, W[r]) for r in [r0, r1). */
void mt_kd_rows(int level, const void *w, mt_dtype wdt, size_t K, const float *x, size_t T, float *y, size_t ldy,
                size_t r0, size_t r1);

/* Float vector primitives per path (n any size). */
float mt_k_dot(int level, const float *a, const float *b, size_t n);
void mt_k_axpy(int level, float *y, float a, const float *x, size_t n);
float mt_k_sumsq(int level, const float *x, size_t n);
void mt_k_scale_mul(int level, float *out, const float *x, float r, const float *w, size_t n);
float mt_k_max(int level, const float *x, size_t n);
/* x[i] = exp(x[i] - m); returns the sum (of the stored values). */
float mt_k_exp_sum(int level, float *x, float m, size_t n);
void mt_k_scale(int level, float *x, float r, size_t n);
/* One attention head over n positions (kernels_attn.c): s_j = scale * q.K_j
 * (then cap * tanh(s_j / cap) when cap > 0), p = softmax(s),
 * out[hd] = sum_j p_j V_j; K_j, V_j start kvs elements apart, float32 or
 * (kv_f16) float16; scratch[n]. */
void mt_k_attn_head(int level, const float *q, const void *K, const void *V, int kv_f16, size_t kvs, size_t n,
                    size_t hd, float scale, float cap, float *out, float *scratch);
/* nh heads (q + h*hd -> out + h*hd) over the same K/V; scratch[nh * n]. */
void mt_k_attn_group(int level, const float *q, size_t nh, const void *K, const void *V, int kv_f16, size_t kvs,
                     size_t n, size_t hd, float scale, float cap, float *out, float *scratch);
/* The same with attention sinks (gpt-oss): sink (head) / sinks[h] (head h of the group) is a
 * learned logit that joins the softmax's denominator only, p_j = exp(s_j) / (exp(sink) +
 * sum_i exp(s_i)); NULL = none (the functions above). */
void mt_k_attn_head_sink(int level, const float *q, const void *K, const void *V, int kv_f16, size_t kvs, size_t n,
                         size_t hd, float scale, float cap, const float *sink, float *out, float *scratch);
void mt_k_attn_group_sinks(int level, const float *q, size_t nh, const void *K, const void *V, int kv_f16,
                           size_t kvs, size_t n, size_t hd, float scale, float cap, const float *sinks, float *out,
                           float *scratch);
/* ---- attention over a quantized KV cache (kernels_kvq.c) ----------------
 * The packed rows of one kv head over n consecutive slots: row j's K codes at
 * kw + j*wstride words (V: vw), its scales/biases at ks/kb + j*sstride (V: vs/vb).
 * Affine (cb NULL): codes packed as mx.quantize (bits 2..8), group scales and
 * biases as float32.  Turbo (cb non-NULL): codes are indices into cb (16 floats,
 * the first 2^bits used), ks/vs hold each row's norm (kb/vb unused), and sign
 * [hd] the rotation's signs (mt_kvt_rotate). */
typedef struct mt_kvq_span {
    const uint32_t *kw, *vw;
    const float *ks, *kb, *vs, *vb;
    size_t wstride, sstride;
    int bits, group;
    const float *cb, *sign;
} mt_kvq_span;
/* nh query heads (q + h*hd -> out + h*hd) over n packed rows, hd <= 1024:
 * affine: s_j = sum_g scale_g * (q*sc).w_g + bias_g * sum(q*sc)_g (sc the attention
 * scale), then the soft-cap (cap > 0), softmax, out = sum_j p_j deq(V_j);
 * turbo: q rotated, s_j = sc * norm_j * (Hq).cb[idx_j], out = H^-1 sum_j p_j norm_j cb[idx_j].
 * scratch[min(nh, 8) * n]. */
void mt_k_attn_kvq(int level, const float *q, size_t nh, const mt_kvq_span *sp, size_t n, size_t hd, float scale,
                   float cap, float *out, float *scratch);
/* The same with attention sinks[nh] (one logit per query head, as mt_k_attn_group_sinks; NULL = none). */
void mt_k_attn_kvq_sinks(int level, const float *q, size_t nh, const mt_kvq_span *sp, size_t n, size_t hd,
                         float scale, float cap, const float *sinks, float *out, float *scratch);
/* The randomized Hadamard transform of the turbo scheme, in place: x = H diag(sign) x,
 * H block-diagonal over descending power-of-two blocks of hd (96 = 64 + 32), each a
 * Walsh-Hadamard matrix / sqrt(block); unrotate is its inverse (diag(sign) H x). */
void mt_kvt_rotate(float *x, const float *sign, size_t hd);
void mt_kvt_unrotate(float *x, const float *sign, size_t hd);
/* a[i] = silu(a[i]) * (b ? b[i] : 1) */
void mt_k_swiglu(int level, float *a, const float *b, size_t n);

#endif
