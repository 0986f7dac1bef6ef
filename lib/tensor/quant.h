/* quant.h - MLX quantization formats: affine (bits 2,3,4,5,6,8; groups of
 * 32/64/128) dequantize and quantize, bit-exact with mlx.core, plus the fp
 * modes (mxfp4, mxfp8, nvfp4) dequantize.
 *
 * ref: ml-explore/mlx mlx/ops.cpp (affine_dequantize fallback graph),
 *      mlx/backend/cpu/quantized.cpp (quantize<T,U>).
 *
 * Packing (affine, every bit width): each row of K codes is one little-endian
 * LSB-first bitstream stored in K*bits/32 uint32 words; code i occupies stream
 * bits [i*bits, (i+1)*bits).  Weight/scale pointers may be unaligned (views
 * into an mmapped safetensors file have no alignment guarantee). */
#ifndef MT_QUANT_H
#define MT_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "tensor/dtype.h"

typedef enum { MT_QMODE_AFFINE = 0, MT_QMODE_MXFP4, MT_QMODE_MXFP8, MT_QMODE_NVFP4 } mt_qmode;

/* Quantization parameters of one module. */
typedef struct mt_quant_params {
    int bits;        /* affine: 2,3,4,5,6,8; mxfp4/nvfp4: 4; mxfp8: 8 */
    int group_size;  /* affine: 32,64,128; mx modes: 32; nvfp4: 16 */
    int mode;        /* mt_qmode */
} mt_quant_params;

/* "affine", "mxfp4", "mxfp8", "nvfp4" <-> mt_qmode.  parse returns MT_EINVAL for others. */
const char *mt_qmode_name(int mode);
int mt_qmode_parse(const char *s, int *mode);
/* Default group size / bits of a mode (as mlx.nn._defaults_for_mode): affine 64/4,
 * mxfp4 32/4, mxfp8 32/8, nvfp4 16/4. */
int mt_qmode_default_group_size(int mode);
int mt_qmode_default_bits(int mode);
/* Check that (mode, bits, group_size) is a combination MLX accepts. Returns 0 or
 * MT_EUNSUPPORTED with a message naming the values. */
int mt_quant_params_check(const mt_quant_params *qp, mt_err *err);

/* Code i (0-based) of a packed row, any bits in 1..8 (row = the row's words). */
static inline uint32_t mt_quant_code(const uint32_t *row, size_t i, int bits) {
    const unsigned char *b = (const unsigned char *)row;
    size_t bit = i * (size_t)bits, byte = bit >> 3;
    unsigned off = (unsigned)(bit & 7);
    uint32_t v = b[byte];
    if (off + (unsigned)bits > 8) v |= (uint32_t)b[byte + 1] << 8;
    return (v >> off) & ((1u << bits) - 1);
}
/* Store code q (< 2^bits) as code i of a packed row (other bits untouched). */
void mt_quant_set_code(uint32_t *row, size_t i, int bits, uint32_t q);
/* Unpack all K codes of one packed row into codes[K]. */
void mt_quant_unpack_row(uint8_t *codes, const uint32_t *row, size_t K, int bits);

/* Words per packed row: K*bits/32.  Requires K % 32 == 0 (always true when
 * K % group_size == 0 for MLX group sizes). */
static inline size_t mt_quant_row_words(size_t K, int bits) { return K * (size_t)bits / 32; }

/* Dequantize one row of MLX affine-packed weights.
 * w: the row's words (K*bits/32); scales/biases: K/g values of dtype sdt
 * (F32, F16 or BF16); out: K floats.  Each value is q*scale rounded to sdt,
 * plus bias rounded to sdt - exactly mlx.core.dequantize, widened to float32. */
int mt_dequantize_affine_row(float *out, const uint32_t *w, const void *scales, const void *biases,
                             mt_dtype sdt, size_t K, int bits, int group_size, mt_err *err);
/* As mt_dequantize_affine_row, but each value is scale * q + bias computed in
 * float32 and not rounded to sdt: the weight mx.quantized_matmul multiplies by
 * (on every path, whatever the number of rows; mx.dequantize, and so
 * QuantizedEmbedding, rounds as mt_dequantize_affine_row does). */
int mt_dequantize_affine_row_f32(float *out, const uint32_t *w, const void *scales, const void *biases,
                                 mt_dtype sdt, size_t K, int bits, int group_size, mt_err *err);
/* Same for `rows` consecutive rows: w [rows, K*bits/32], scales/biases [rows, K/g],
 * out float32 [rows, K].  Errors: MT_EINVAL for a bad dtype, bits, group size or
 * K not a multiple of group_size (out untouched). */
int mt_dequantize_affine(float *out, const uint32_t *w, const void *scales, const void *biases,
                         mt_dtype sdt, size_t rows, size_t K, int bits, int group_size, mt_err *err);

/* Quantize x float32 [rows, K] as mx.quantize(x.astype(sdt), group_size, bits)
 * would: x is first rounded to sdt (a no-op for values already of that type),
 * group parameters are computed in float32, scales/biases are stored as sdt.
 * metal_rules = 0: the CPU kernel (true max, rint ties-to-even) - bit-exact with
 * mlx on CPU.  metal_rules = 1: the algorithm of the Metal/CUDA kernels (max
 * starts at 0, round half away from zero), which produced most published
 * mlx-community weights; not verified bit-exact (no GPU here, and Metal may
 * compile divisions with fast math).
 * w receives [rows, K*bits/32] words, scales/biases [rows, K/g]. */
int mt_quantize_affine(uint32_t *w, void *scales, void *biases, mt_dtype sdt, const float *x,
                       size_t rows, size_t K, int bits, int group_size, int metal_rules, mt_err *err);

/* As mt_quantize_affine with the CPU rule, but each group's range [min, max] is
 * taken from lo/hi [rows, K/g] instead of the group's values (either may be
 * NULL: the true min / max).  Codes outside the range clamp to 0 / 2^bits-1.
 * With lo = hi = NULL the output equals mt_quantize_affine(..., 0, ...).
 * Used by calibrated (clipping-search) quantization.  Errors as mt_quantize_affine. */
int mt_quantize_affine_range(uint32_t *w, void *scales, void *biases, mt_dtype sdt, const float *x,
                             const float *lo, const float *hi, size_t rows, size_t K, int bits, int group_size,
                             mt_err *err);

/* FP modes.  Decoding tables: */
float mt_fp4_e2m1_to_f32(uint8_t code);   /* low 4 bits used */
float mt_fp8_e4m3_to_f32(uint8_t b);      /* OCP E4M3FN */
float mt_fp8_e8m0_to_f32(uint8_t b);      /* 2^(b-127); 0 -> 2^-127; 0xff -> +inf (mlx's rule) */
/* The group scale of an fp mode: E4M3 for nvfp4, E8M0 for mxfp4/mxfp8. */
float mt_qfp_scale(uint8_t b, int mode);
/* One row of an fp mode (no global scale): w the row's K*bits/8 bytes, scales
 * its K/g bytes; out[K] = element value * group scale in float32, rounded to
 * bfloat16 when round_bf16 (mx.dequantize's default output type for the fp
 * modes, so QuantizedEmbedding's rows).  Returns MT_OK, or MT_EINVAL for an
 * affine/unknown mode or K not a multiple of the group size. */
int mt_qfp_row_f32(float *out, const uint8_t *w, const uint8_t *scales, int mode, size_t K, int round_bf16);

/* Dequantize `rows` rows of mxfp4 (bits 4, g 32), mxfp8 (bits 8, g 32) or
 * nvfp4 (bits 4, g 16) weights: w [rows, K*bits/32] words, scales uint8
 * [rows, K/g] (E8M0 for mx modes, E4M3 for nvfp4).  out float32 [rows, K] =
 * element value * scale, computed in float32 - bit-exact with
 * mx.dequantize(..., mode, dtype=float32).  global_scale (nvfp4 only, 0 = none):
 * the group scale is first multiplied by global_scale/2688 (2688 = 448*6). */
int mt_dequantize_fp(float *out, const uint32_t *w, const uint8_t *scales, int mode,
                     size_t rows, size_t K, float global_scale, mt_err *err);

/* E4M3 encoding as mlx's to_fp8 (round to nearest even, subnormals kept, >= 480 and NaN
 * saturate to 448). */
uint8_t mt_fp8_e4m3_from_f32(float f);
/* Quantize x float32 [rows, K] as mx.quantize(x.astype(t), mode=mode) does on the CPU
 * (its op graph, computed in t; checked against mlx 0.32.4): mxfp4 / mxfp8 with E8M0
 * scales 127 + ceil(log2(amax / maxval)) (a zero group: 127), nvfp4 with E4M3 scales of
 * amax / 6; E2M1 codes the nearest value (ties to the lower code).  w receives [rows, K*bits/8] bytes (4-bit: two codes a
 * byte, the even one low), scales [rows, K/g].  Errors: MT_EINVAL (dtype, mode, K). */
int mt_quantize_fp(uint8_t *w, uint8_t *scales, mt_dtype t, const float *x, size_t rows, size_t K, int mode,
                   mt_err *err);

#endif
