/* st_write.h - write .safetensors files byte-for-byte as MLX does
 * (mx.save_safetensors, ml-explore/mlx mlx/io/safetensors.cpp):
 *
 *   8-byte little-endian header length, the header JSON (nlohmann dump: compact,
 *   keys sorted bytewise, "__metadata__" first among them as a sorted key,
 *   each entry {"data_offsets":[b,e],"dtype":"F32","shape":[..]}), then the
 *   tensor data with no padding.
 *
 * MLX lays the data out in the iteration order of the std::unordered_map it
 * receives (filled in the order of the Python dict).  With libstdc++ (the
 * Linux wheels) that order is a pure function of the insertion order and the
 * names; mt_st_mlx_order reproduces it.  (MLX on macOS uses libc++, whose
 * order differs; readers must never depend on it.)
 *
 * Writing streams: each tensor's bytes are produced by a callback just before
 * they are written, so peak memory is one tensor. */
#ifndef MT_ST_WRITE_H
#define MT_ST_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "tensor/dtype.h"

#define MT_STW_MAX_NDIM 8

typedef struct mt_st_entry {
    const char *name;
    mt_dtype dtype;
    int ndim;
    int64_t shape[MT_STW_MAX_NDIM];
    size_t nbytes;   /* must equal numel * dtype size */
} mt_st_entry;

/* Fill dst (entry idx's nbytes) with the tensor's bytes. Return 0 or an mt status. */
typedef int (*mt_st_fill_fn)(void *user, size_t idx, void *dst, mt_err *err);

/* The 64-bit std::hash<std::string> of libstdc++ (a MurmurHash2 variant, seed 0xc70f6907). */
uint64_t mt_stl_string_hash(const void *data, size_t len);

/* Iteration order of a libstdc++ std::unordered_map<std::string, T> into which
 * names[0..n) were inserted one by one (no reserve), then copied.  order[k]
 * receives the index (into names) of the k-th element iterated.  Names must be
 * distinct.  Errors: MT_ENOMEM, MT_ELIMIT (n beyond the bucket table). */
int mt_st_mlx_order(const char *const *names, size_t n, size_t *order, mt_err *err);

/* Build the header JSON as nlohmann::json::dump() writes it.  data_order[k] =
 * index of the k-th tensor in the data block (NULL = entries order).
 * meta_kv: n_meta pairs of strings (key, value) for "__metadata__", or
 * n_meta = 0 for "__metadata__":null... (MLX always writes the key).
 * *out is malloc'd, NUL-terminated, *len its length.  Errors: MT_EINVAL (bad
 * dtype, nbytes mismatch, duplicate name), MT_ENOMEM. */
int mt_st_header(const mt_st_entry *e, size_t n, const size_t *data_order, const char *const *meta_kv,
                 size_t n_meta, char **out, size_t *len, mt_err *err);

/* Write a whole file at path (created or truncated; not atomic: callers write
 * into a temporary folder).  Tensors are produced by fill in data order.
 * Errors: MT_EIO, plus those of mt_st_header and of fill. */
int mt_st_write(const char *path, const mt_st_entry *e, size_t n, const size_t *data_order,
                const char *const *meta_kv, size_t n_meta, mt_st_fill_fn fill, void *user, mt_err *err);

#endif
