/* bitlinear.h - BitNet b1.58 ternary weights, kept packed and multiplied packed.
 *
 * The format (mlx-lm's BitLinear, as the bitnet checkpoints store it): W [out, in] has
 * entries in {-1, 0, 1}; the tensor `<path>.weight` is uint8 [out/4, in] and byte (p, k)
 * holds W[p + i * out/4, k] + 1 in its bits 2i..2i+1 (i = 0..3): the four quarters of the
 * output rows share one byte per input column.  (A code 3 reads as 2, as mlx-lm's kernel
 * reads it.)  `<path>.weight_scale` is one number s: y = (x W^T) * s, or / s where the
 * checkpoint's quantization_config says the scales are inverted (its linear_class is not
 * "autobitlinear"); then the optional `<path>.bias` is added.
 *
 * Such an mt_linear has ternary = 1, w the packed bytes, wdt MT_U8 and tscale the factor;
 * mt_linear_forward / _rows1 / _row / _row_f32 run these functions for it. */
#ifndef MT_BITLINEAR_H
#define MT_BITLINEAR_H

#include <stddef.h>
#include "core/err.h"
#include "core/pool.h"
#include "io/safetensors.h"
#include "tensor/linear.h"

/* Bind module `path` as a packed ternary [out, in] linear (out a multiple of 4); its bias is
 * required when need_bias > 0, ignored when < 0, optional at 0; invert: divide by the scale.
 * Errors name the tensor: MT_ENOTFOUND, MT_EFORMAT (shape, dtype, a zero or non-finite scale). */
int mt_bitlinear_bind(mt_linear *l, const mt_safetensors *st, const char *path, size_t out, size_t in, int need_bias,
                      int invert, mt_err *err);
/* y[T, out] = (x[T, in] W^T) * tscale (+ bias), threads over groups of 4 output rows: the packed
 * kernel, or from 24 rows on (when sgemm may run in the pool's threads) unpacked blocks of W
 * multiplied by sgemm. */
void mt_bitlinear_forward(const mt_linear *l, const float *x, size_t T, float *y, mt_pool *pool);
/* The same with the packed kernel at any T: each row of x gets the sums it gets alone (T = 1),
 * bit for bit. */
void mt_bitlinear_forward_rows1(const mt_linear *l, const float *x, size_t T, float *y, mt_pool *pool);
/* Row r of W times tscale as float32: out[in] (so that a plain dot product gives y). */
void mt_bitlinear_row(const mt_linear *l, size_t r, float *out);

#endif
