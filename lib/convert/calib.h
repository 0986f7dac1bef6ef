/* calib.h - calibrated (activation-aware clipping) affine quantization:
 * per-input-channel second moments E[x_i^2] of every block linear's input,
 * collected by running calibration text through the float source model, and
 * a per-group range search that minimizes sum_i E[x_i^2] (w_i - deq_i)^2
 * while keeping MLX's affine format (same codes layout, scales, biases). */
#ifndef MT_CALIB_H
#define MT_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/pool.h"
#include "tensor/dtype.h"

typedef struct mt_calib mt_calib;

/* Load the float model at model_dir, tokenize the calibration file (plain
 * text, or JSONL whose records have a "text" string) with the model's
 * tokenizer.json, run at most max_tokens tokens (0 = 4096) in windows of 512,
 * and accumulate E[x^2] per module path.  *out owned by the caller
 * (mt_calib_free).  Errors: MT_ENOTFOUND/MT_EIO (files), MT_EINVAL (no text),
 * model and tokenizer loader errors, MT_ENOMEM. */
int mt_calib_collect(mt_calib **out, const char *model_dir, const char *text_path, size_t max_tokens,
                     mt_pool *pool, mt_err *err);
void mt_calib_free(mt_calib *c);
/* Number of tokens seen. */
size_t mt_calib_tokens(const mt_calib *c);
/* E[x^2] [K] of the module at path (e.g. "model.layers.0.mlp.down_proj"), or
 * NULL when none was observed or its width is not K.  Owned by c. */
const float *mt_calib_moments(const mt_calib *c, const char *path, size_t K);

/* Quantize x [rows, K] like mt_quantize_affine (CPU rule) but choose each
 * group's clipping range, shrinking min and max toward the group midpoint
 * by factors 1.0, 0.95, ..., 0.7 (each end separately), keeping the pair with
 * the lowest sum_i m[i] (x_i - deq_i)^2; the unclipped range wins ties, so the
 * error never exceeds the plain conversion's.  Same outputs and errors as
 * mt_quantize_affine. */
int mt_calib_quantize(uint32_t *w, void *scales, void *biases, mt_dtype sdt, const float *x, const float *m,
                      size_t rows, size_t K, int bits, int group_size, mt_err *err);

/* sum over rows and i of m[i] (x[r,i] - deq[r,i])^2 for affine-quantized
 * w/scales/biases (sdt) of float x [rows, K]. Returns -1 on bad parameters. */
double mt_calib_error(const float *x, const float *m, const uint32_t *w, const void *scales, const void *biases,
                      mt_dtype sdt, size_t rows, size_t K, int bits, int group_size);

#endif
