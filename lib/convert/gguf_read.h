/* gguf_read.h - a GGUF (v2/v3) reader with every length, count and offset
 * checked against the file, and the ggml block formats it carries: their
 * sizes, a dequantizer for the common ones (F32, F16, BF16, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q8_0, Q2_K..Q6_K) and the lossless mapping of the 32-element
 * formats onto MLX affine group-32 quantization.
 *
 * ref: ggml-org/ggml docs/gguf.md (container), ggml/src/gguf.cpp (what
 * llama.cpp refuses), ggml/src/ggml-quants.c and gguf-py gguf/quants.py
 * (block layouts and dequantization).
 *
 * Ownership: an mt_gguf owns its mapping (or borrows the caller's bytes with
 * mt_gguf_parse); keys, values, strings and tensor data handed out point into
 * it and live as long as the mt_gguf. */
#ifndef MT_GGUF_READ_H
#define MT_GGUF_READ_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* GGUF metadata value types (gguf.md). */
enum {
    MT_GV_U8 = 0, MT_GV_I8, MT_GV_U16, MT_GV_I16, MT_GV_U32, MT_GV_I32, MT_GV_F32, MT_GV_BOOL,
    MT_GV_STR, MT_GV_ARR, MT_GV_U64, MT_GV_I64, MT_GV_F64, MT_GV_COUNT
};

/* ggml tensor types (ids as in ggml.h; gaps are removed types). */
enum {
    MT_GT_F32 = 0, MT_GT_F16 = 1, MT_GT_Q4_0 = 2, MT_GT_Q4_1 = 3, MT_GT_Q5_0 = 6, MT_GT_Q5_1 = 7,
    MT_GT_Q8_0 = 8, MT_GT_Q8_1 = 9, MT_GT_Q2_K = 10, MT_GT_Q3_K = 11, MT_GT_Q4_K = 12, MT_GT_Q5_K = 13,
    MT_GT_Q6_K = 14, MT_GT_Q8_K = 15, MT_GT_BF16 = 30
};

/* Name ("Q4_K"), elements per block and bytes per block of a ggml type;
 * NULL / 0 for an id no ggml version defines. */
const char *mt_ggml_type_name(uint32_t type);
size_t mt_ggml_block_elems(uint32_t type);
size_t mt_ggml_block_bytes(uint32_t type);

typedef struct mt_gguf_kv {
    const char *key;        /* NUL-terminated copy */
    uint32_t type;          /* MT_GV_* */
    uint32_t arr_type;      /* element type when type == MT_GV_ARR */
    uint64_t n;             /* array length (1 for scalars) */
    const uint8_t *data;    /* the value's bytes (scalars, numeric arrays) */
    const uint64_t *soff;   /* string arrays: n+1 offsets of the elements, from data */
} mt_gguf_kv;

typedef struct mt_gguf_tensor {
    const char *name;       /* NUL-terminated copy */
    int ndim;               /* 1..4 */
    uint64_t ne[4];         /* ggml order: ne[0] is the contiguous axis (row length) */
    uint32_t type;
    uint64_t offset;        /* from the start of the data section */
    const uint8_t *data;
    size_t nbytes;
    uint64_t nelem;
} mt_gguf_tensor;

typedef struct mt_gguf mt_gguf;

/* Map and validate path.  Refused (MT_EFORMAT, message naming the file and
 * the field): bad magic, version other than 2/3 (big-endian files say so),
 * counts beyond what the file can hold, strings or arrays running past the
 * end, nested arrays, unknown value or tensor types, duplicate keys or tensor
 * names, more than 4 dimensions, sizes that overflow, a row length not a
 * multiple of the block, misaligned, overlapping or out-of-file tensor data,
 * an alignment that is not a power of two.  Errors: MT_EIO, MT_ENOMEM too. */
int mt_gguf_open(mt_gguf **out, const char *path, mt_err *err);
/* The same checks on bytes in memory (borrowed: must outlive the result).
 * label names the input in messages. */
int mt_gguf_parse(mt_gguf **out, const void *data, size_t size, const char *label, mt_err *err);
void mt_gguf_free(mt_gguf *g);

uint32_t mt_gguf_version(const mt_gguf *g);
size_t mt_gguf_kv_count(const mt_gguf *g);
const mt_gguf_kv *mt_gguf_kv_at(const mt_gguf *g, size_t i);
const mt_gguf_kv *mt_gguf_find(const mt_gguf *g, const char *key);
size_t mt_gguf_tensor_count(const mt_gguf *g);
const mt_gguf_tensor *mt_gguf_tensor_at(const mt_gguf *g, size_t i);
const mt_gguf_tensor *mt_gguf_tensor_get(const mt_gguf *g, const char *name);

/* Typed reads of a key (NULL kv -> MT_ENOTFOUND, no message).  Integers of
 * any width and sign convert when the value fits; floats from F32/F64;
 * MT_EFORMAT (with a message) for another type. */
int mt_gguf_int(const mt_gguf_kv *kv, int64_t *out, mt_err *err);
int mt_gguf_float(const mt_gguf_kv *kv, double *out, mt_err *err);
int mt_gguf_bool(const mt_gguf_kv *kv, int *out, mt_err *err);
/* A string value: *s points into the file (not NUL-terminated), *len bytes. */
int mt_gguf_str(const mt_gguf_kv *kv, const char **s, size_t *len, mt_err *err);
/* Element i of an array kv: strings as above, numbers through int/float. */
int mt_gguf_arr_str(const mt_gguf_kv *kv, uint64_t i, const char **s, size_t *len);
int mt_gguf_arr_int(const mt_gguf_kv *kv, uint64_t i, int64_t *out);
int mt_gguf_arr_float(const mt_gguf_kv *kv, uint64_t i, double *out);

/* Dequantize n elements (a whole number of blocks) of type from src to
 * float32 as ggml's dequantize_row_* does.  MT_EUNSUPPORTED naming the type
 * for the others (IQ*, TQ*, Q8_1, Q8_K, integer types). */
int mt_ggml_dequantize(uint32_t type, const void *src, float *dst, size_t n, mt_err *err);
int mt_ggml_can_dequantize(uint32_t type);

/* Lossless MLX form of the 32-element block types: Q4_0 and Q4_1 -> 4 bits,
 * Q5_0 and Q5_1 -> 5 bits, Q8_0 -> 8 bits, all group 32 with float16 scales
 * and biases (Q4_0: scale d, bias -8d; Q4_1: d, m; Q5_0: d, -16d; Q5_1: d,
 * m; Q8_0: d, -128d on codes q+128).  Returns the bit width, or 0 for other
 * types. */
int mt_ggml_affine_bits(uint32_t type);
/* Convert `rows` rows of K elements; w receives [rows, K*bits/32] words,
 * scales/biases [rows, K/32] float16 bits.  Returns 1 when every value is
 * represented exactly (a bias -8d, -16d or -128d overflowing float16 is not),
 * 0 otherwise (the caller falls back to dequantizing). */
int mt_ggml_to_affine(uint32_t type, const void *src, size_t rows, size_t K, uint32_t *w, uint16_t *scales,
                      uint16_t *biases);
/* 1 when mt_ggml_to_affine would be exact on these nblocks blocks (only the
 * float16 biases -8d, -16d, -128d can fail), without converting. */
int mt_ggml_affine_exact(uint32_t type, const void *src, size_t nblocks);

#endif
