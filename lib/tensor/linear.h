/* linear.h - a weight matrix as a model sees it: dense (F32/F16/BF16) or MLX
 * quantized (affine, mxfp4, nvfp4, mxfp8), borrowed from the mmap; y = x W^T (+ b). */
#ifndef MT_LINEAR_H
#define MT_LINEAR_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/pool.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "tensor/dtype.h"

/* Arithmetic of quantized products (mt_linear.qmath). */
enum {
    MT_QMATH_AUTO = 0,  /* $MT_QMATH ("float" | "int8") when set, else float */
    MT_QMATH_FLOAT = 1, /* exact: float32 FMA over the codes (the default) */
    MT_QMATH_INT8 = 2   /* activations quantized per group to int8, integer dot
                         * products (4/8-bit affine weights, groups 32/64/128; other
                         * weights, the fp modes too, stay float); results differ slightly from mlx */
};

typedef struct mt_linear {
    size_t out, in;          /* W is [out, in] */
    int quantized;
    mt_dtype wdt;            /* dense: dtype of w */
    const void *w;           /* dense [out, in] | quantized uint32 [out, in*bits/32] */
    const void *scales, *biases; /* quantized: [out, in/group] of sdt */
    mt_dtype sdt;
    int bits, group_size;
    const void *bias;        /* optional [out] of bdt */
    mt_dtype bdt;
    int qmath;               /* MT_QMATH_*; 0 (AUTO) after mt_linear_bind */
    int ternary;             /* BitNet packed ternary weights (tensor/bitlinear.h): w uint8 [out/4, in], wdt MT_U8 */
    float tscale;            /* ternary: y = (x W^T) * tscale */
    /* fp quantization modes */
    int mode;                /* quantized: mt_qmode.  MT_QMODE_AFFINE: scales/biases of sdt
                              * (F32/F16/BF16).  mxfp4/mxfp8: scales one E8M0 byte per group
                              * (sdt MT_F8_E8M0); nvfp4: one E4M3 byte (sdt MT_F8_E4M3);
                              * biases NULL.  Codes: fp4 E2M1 nibbles / fp8 E4M3 bytes. */
} mt_linear;

/* "float" -> MT_QMATH_FLOAT, "int8" -> MT_QMATH_INT8, NULL/"" -> MT_QMATH_AUTO,
 * anything else -> -1. */
int mt_qmath_parse(const char *s);
/* The arithmetic mt_linear_forward uses for l: l->qmath, or for AUTO the
 * value of $MT_QMATH (unset or invalid: float). */
int mt_linear_qmath(const mt_linear *l);

/* Bind module `path` (e.g. "model.layers.0.self_attn.q_proj"): path.weight, and
 * path.scales/biases when the config says it is quantized; path.bias when
 * present (required when need_bias > 0, ignored when need_bias < 0).  Checks
 * the shape against [out, in] (0 = take from the file). */
int mt_linear_bind(mt_linear *l, const mt_safetensors *st, const mt_config *cfg, const char *path,
                   size_t out, size_t in, int need_bias, mt_err *err);

/* The scales (and, affine, biases) of quantized module `path`: sb[0] = path.scales,
 * sb[1] = path.biases (NULL for the fp modes, which must not have one), each of
 * shape[ndim] (0 = any) and a dtype the mode allows (affine: F32/F16/BF16, both
 * the same; fp modes: U8 or the F8 type of the mode).  Errors: MT_ENOTFOUND,
 * MT_EFORMAT with a message naming the tensor. */
int mt_linear_bind_scales(const mt_safetensors *st, const char *path, int mode, int ndim, const int64_t *shape,
                          const mt_tensor_view *sb[2], mt_err *err);
/* mt_linear.sdt of a quantized module of `mode` whose scales have file_dtype. */
mt_dtype mt_qmode_scale_dtype(int mode, mt_dtype file_dtype);

/* y[T, out] = x[T, in] W^T (+ b).  work: nthreads * in floats of scratch (may
 * be NULL); a one-row product uses it when it is 64-byte aligned
 * (mt_linear_work_align), else a buffer of its own.  Runs the kernel path of mt_cpu_level() (core/cpu.h) and the
 * arithmetic of mt_linear_qmath(l) (int8: kernels.h states the formula); float:
 * weights are multiplied straight from the packed codes (per group
 * scale*sum(x*q) + bias*sum(x), float32 FMA) for small T and through
 * dequantized tiles + sgemm for larger T.  Results equal the reference up to
 * float reassociation (F32 scales) or the F16/BF16 rounding of scale*q that
 * the reference's dequantization applies. */
void mt_linear_forward(const mt_linear *l, const float *x, size_t T, float *y, float *work, mt_pool *pool);
/* The same with every row computed exactly as mt_linear_forward computes it for T = 1 (bit for
 * bit), whatever T: a row's result does not depend on the rows beside it.  The weights are
 * still streamed once for all rows.  Batched decoding of independent sequences uses it. */
void mt_linear_forward_rows1(const mt_linear *l, const float *x, size_t T, float *y, float *work, mt_pool *pool);

/* p rounded up to 64 bytes, for mt_linear_forward's work: reserve
 * MT_LINEAR_WORK_SLACK more floats than the work itself needs. */
#define MT_LINEAR_WORK_SLACK 16
static inline float *mt_linear_work_align(float *p) { return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63); }
/* The plain C reference: each row as mt_linear_row_f32 gives it (or converted),
 * then a sequential float dot; single thread.  Returns MT_OK or
 * MT_ENOMEM (y untouched). */
int mt_linear_forward_ref(const mt_linear *l, const float *x, size_t T, float *y);
/* y[T, out] += b (nothing when the linear has no bias). */
void mt_linear_add_bias(const mt_linear *l, size_t T, float *y);
/* Row r of W as float32 (embedding lookup): out[in]; a quantized row is
 * rounded to the scales' dtype as mx.dequantize rounds it (fp modes: to
 * bfloat16, mx.dequantize's default type for them). */
void mt_linear_row(const mt_linear *l, size_t r, float *out);
/* Row r of W as float32 for a product: a quantized row as scale * q + bias in
 * float32 (fp modes: element value * scale), unrounded, as mx.quantized_matmul multiplies by it.  Every product
 * path uses this rule (the direct kernels, the tiles, the reference), so a
 * row's result does not depend on how many rows are multiplied at once. */
void mt_linear_row_f32(const mt_linear *l, size_t r, float *out);

/* y[T, out] = x[T, in] W^T (+ b) as mlx's CPU kernels compute it for activations
 * x of type t (F16/BF16; values of that type): dense weights as simd_gemm (a
 * float32 sum in order of the inputs, rounded once, a bias added before the
 * rounding as addmm), quantized ones as _qmm_t (every product and partial sum
 * rounded to t, the bias a separate rounded add); y holds values of type t.
 * work: mt_pool_size(pool) * MT_LINEAR_MLX_WORK(in) floats (tensor/mlxnum.h). */
#define MT_LINEAR_MLX_ROWS 32
#define MT_LINEAR_MLX_WORK(in) ((size_t)(in) * (MT_LINEAR_MLX_ROWS + 8))
void mt_linear_forward_mlx(const mt_linear *l, const float *x, size_t T, float *y, mt_dtype t, float *work,
                           mt_pool *pool);
#endif
