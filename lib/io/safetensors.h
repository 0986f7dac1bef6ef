/* safetensors.h - read-only access to .safetensors files (single or sharded),
 * memory-mapped, with strict validation of the untrusted header.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 * {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
 * then the data block; offsets are relative to the data block.  Writers (MLX)
 * add no alignment padding, so tensor data may be unaligned: read it with
 * memcpy or mt_convert_to_f32, never through a cast pointer. */
#ifndef MT_SAFETENSORS_H
#define MT_SAFETENSORS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "tensor/dtype.h"

#define MT_ST_MAX_NDIM 8
#define MT_ST_MAX_HEADER (100u * 1024 * 1024)   /* header length limit, bytes */

typedef struct mt_tensor_view {
    const char *name;
    mt_dtype dtype;
    int ndim;
    int64_t shape[MT_ST_MAX_NDIM];
    const void *data;      /* borrowed: points into the mapped file (or caller's buffer) */
    size_t nbytes;
} mt_tensor_view;

/* Number of elements (product of the shape; 1 for a scalar). */
size_t mt_tensor_numel(const mt_tensor_view *t);

/* Validate and parse a whole safetensors image held in memory (buf, n bytes:
 * header length, header, data).  label names the file in error messages.
 * On success *tensors is one malloc'd block holding *count views and their
 * names (release with free()); views are in header order and their data points
 * into buf.  If metadata != NULL it receives a new reference to the
 * "__metadata__" object (NULL when absent or null); the caller json_decref()s it.
 * Errors: MT_EFORMAT (malformed: message "label: tensor 'x': ..."), MT_ELIMIT
 * (header larger than MT_ST_MAX_HEADER), MT_ENOMEM.  Never reads outside buf. */
int mt_safetensors_parse_header(const void *buf, size_t n, const char *label, mt_tensor_view **tensors,
                                size_t *count, json_t **metadata, mt_err *err);

typedef struct mt_safetensors mt_safetensors;

/* Open one file (mmapped with mt_mmap_open, so registered with core/sig: a
 * file truncated while open ends the process with a message naming it, not a
 * bare SIGBUS).  A directory path is passed to mt_safetensors_open_dir. */
int mt_safetensors_open(mt_safetensors **out, const char *path, mt_err *err);
/* Open a model directory: the files named by model.safetensors.index.json
 * ("weight_map") when it exists, else every model*.safetensors (sorted), else
 * every *.safetensors.  Each file is opened once.  Errors: a tensor present in
 * two files, a weight_map entry missing from its file, an unsafe file name in
 * the index (MT_EFORMAT); no weights found (MT_ENOTFOUND). */
int mt_safetensors_open_dir(mt_safetensors **out, const char *dir, mt_err *err);
/* Wrap an in-memory image (borrowed: buf must outlive *out). */
int mt_safetensors_open_mem(mt_safetensors **out, const void *buf, size_t n, const char *label, mt_err *err);

/* Tensor by name (O(1) hash lookup); NULL if absent.  Borrowed, valid until free. */
const mt_tensor_view *mt_safetensors_get(const mt_safetensors *st, const char *name);
/* From now on mt_safetensors_get (and the readers on top of it) look up prefix + name, name
 * without a leading strip (NULL or "": none): a multimodal folder's text decoder reads
 * "language_model.layers.0..." when asked for "model.layers.0..." (strip "model.", prefix
 * "language_model.").  The listing (mt_safetensors_at) keeps the stored names.  MT_EINVAL
 * past 63 bytes. */
int mt_safetensors_set_prefix(mt_safetensors *st, const char *strip, const char *prefix, mt_err *err);
/* From now on mt_safetensors_get renames the name asked for before the prefix above applies:
 * pairs = {from0, to0, from1, to1, ..., NULL}, each `from` a run of whole dot-separated
 * segments ("model.layers", "self_attn.qkv_proj") replaced by its `to` at its first
 * occurrence, pairs applied in order (a family whose checkpoint names differ from the shared
 * decoder's: gpt2 reads "model.h.0.attn.c_attn" when asked for
 * "model.layers.0.self_attn.qkv_proj").  Borrowed (a static table); NULL: none. */
void mt_safetensors_set_renames(mt_safetensors *st, const char *const *pairs);
/* `name` after the renames alone (the module path a checkpoint's config.json uses for it) into
 * buf[n]; NULL when it does not fit. */
const char *mt_safetensors_renamed(const mt_safetensors *st, const char *name, char *buf, size_t n);
/* The stored name mt_safetensors_get looks up for `name` (renames, then prefix) into buf[n];
 * NULL when it does not fit. */
const char *mt_safetensors_stored_name(const mt_safetensors *st, const char *name, char *buf, size_t n);
/* All tensors: files in order, each file's tensors in header order. */
size_t mt_safetensors_count(const mt_safetensors *st);
const mt_tensor_view *mt_safetensors_at(const mt_safetensors *st, size_t i);
/* Number of files and the path of file i (for messages). */
size_t mt_safetensors_nfiles(const mt_safetensors *st);
const char *mt_safetensors_file(const mt_safetensors *st, size_t i);
/* Borrowed "__metadata__" object of the first file; NULL if absent or null. */
json_t *mt_safetensors_metadata(const mt_safetensors *st);
/* Unmaps everything; accepts NULL. */
void mt_safetensors_free(mt_safetensors *st);

/* Convenience: look up `name`, check its dtype is one of F32/F16/BF16 (or any
 * dtype when any_dtype) and its numel equals `numel` (0 = don't check), and
 * convert it to float32 into dst.  Errors: MT_ENOTFOUND, MT_EFORMAT. */
int mt_safetensors_read_f32(const mt_safetensors *st, const char *name, float *dst, size_t numel,
                            int any_dtype, mt_err *err);

/* Look up `name` and check it: dtype dt (-1 = any), ndim (-1 = any) and shape
 * (NULL = any; an entry < 0 = any size on that axis).  *out receives the view.
 * Errors: MT_ENOTFOUND ("tensor 'x' not found"), MT_EFORMAT ("tensor 'x': shape
 * [2, 3], expected [2, 4]" / "dtype F16, expected F32"). */
int mt_safetensors_expect(const mt_safetensors *st, const char *name, int dt, int ndim, const int64_t *shape,
                          const mt_tensor_view **out, mt_err *err);
/* Format a shape as "[2, 3]" into buf (always NUL-terminated; "[]" for a
 * scalar; a negative size prints as "*"). */
void mt_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);

#endif
