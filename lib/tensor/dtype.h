/* dtype.h - element types of tensors (the safetensors dtype set) and exact
 * conversions between float32, float16 and bfloat16.
 *
 * Conversions to 16-bit floats round to nearest, ties to even, like numpy and
 * MLX; NaN stays NaN (quiet), overflow goes to +-inf. */
#ifndef MT_DTYPE_H
#define MT_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    MT_F32, MT_F16, MT_BF16, MT_U32, MT_U8, MT_I8, MT_I32, MT_I64, MT_BOOL,
    MT_U16, MT_I16, MT_U64, MT_F64,
    MT_F8_E4M3,   /* safetensors "F8_E4M3": one byte per element (MLX reads it as uint8) */
    MT_F8_E8M0,   /* safetensors "F8_E8M0": one byte per element (MLX reads it as uint8) */
    MT_DTYPE_COUNT
} mt_dtype;

/* Bytes per element; 0 for an out-of-range value.  Inline: the kernels ask
 * for it per matrix row. */
static inline size_t mt_dtype_size(mt_dtype t) {
    switch (t) {
    case MT_F32: case MT_U32: case MT_I32: return 4;
    case MT_F16: case MT_BF16: case MT_U16: case MT_I16: return 2;
    case MT_U8: case MT_I8: case MT_BOOL: case MT_F8_E4M3: case MT_F8_E8M0: return 1;
    case MT_I64: case MT_U64: case MT_F64: return 8;
    default: return 0;
    }
}
/* The safetensors spelling ("F32", "BF16", "BOOL", ...); "?" for an out-of-range value. */
const char *mt_dtype_name(mt_dtype t);
/* Parse a safetensors dtype string (exact, case-sensitive). Returns 0 and sets
 * *out, or MT_EINVAL for an unknown string (no message: callers add context). */
int mt_dtype_parse(const char *s, mt_dtype *out);
/* 1 for F32, F16, BF16, F64 (the types MLX treats as floating). */
int mt_dtype_is_float(mt_dtype t);

float    mt_f16_to_f32(uint16_t h);
uint16_t mt_f32_to_f16(float f);   /* round to nearest even */
float    mt_bf16_to_f32(uint16_t h);
uint16_t mt_f32_to_bf16(float f);  /* round to nearest even */
/* Round a float32 to the nearest float16 / bfloat16 and back (exact emulation
 * of one arithmetic result stored in that type). */
float    mt_round_f16(float f);
float    mt_round_bf16(float f);

/* Convert n elements of type t at src (any alignment, little-endian) to
 * float32.  Integers and bools convert by value (large 64-bit ints round),
 * F8_E4M3 decodes the OCP E4M3FN value, F8_E8M0 decodes 2^(b-127). */
void mt_convert_to_f32(float *dst, const void *src, mt_dtype t, size_t n);
/* Store n float32 values as t (F32, F16 or BF16 only; RNE). Returns 0 or MT_EINVAL. */
int  mt_convert_from_f32(void *dst, const float *src, mt_dtype t, size_t n);

#endif
