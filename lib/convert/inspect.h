/* inspect.h - describe an MLX model folder: per-tensor dtype, bits, group
 * size, bytes; totals and bits per weight; with a float reference, the
 * quantization error (RMS and max abs) of each quantized layer and the worst
 * layers. */
#ifndef MT_INSPECT_H
#define MT_INSPECT_H

#include <stdio.h>

#include "core/err.h"

/* One quantized layer's error against the reference weight. */
typedef struct mt_qerr {
    double rms, max_abs, ref_rms;   /* over all elements, in float64 */
} mt_qerr;

/* Error of dequant(w_q) against ref (float32 [n]). */
void mt_qerr_compute(const float *deq, const float *ref, size_t n, mt_qerr *e);

/* Print the report for dir to out (text, or JSON lines when json != 0: one
 * {"tensor",...} object per tensor, then {"total",...}, then with a reference
 * one {"layer",...,"rms","max"} per quantized layer and {"worst":[...]}).
 * against: float source folder or NULL.  worst: how many worst layers to list.
 * Errors: those of the readers; MT_EFORMAT for inconsistent quantized layers. */
int mt_inspect(FILE *out, const char *dir, const char *against, int worst, int json, mt_err *err);

/* How dir (made by import-gguf) holds the tensors of the GGUF file at gguf:
 * per tensor, how it is stored, the GGUF type and the largest difference
 * between the floats MLX computes from dir (s*q + b in float32 for affine
 * layers, the stored value for dense ones) and ggml's dequantization of the
 * GGUF tensor (q/k rows un-permuted); then "lossless: N of M tensors hold the
 * GGUF's values exactly" (JSON lines with json).  A dir tensor with no GGUF
 * counterpart, or the reverse, is listed as such.  Errors: the readers'. */
int mt_inspect_gguf(FILE *out, const char *dir, const char *gguf, int json, mt_err *err);

#endif
