/* kvfile.h - KV-state (prompt-cache) files.
 *
 * A KV-state file is the safetensors file that mlx-lm's save_prompt_cache writes
 * (mx.save_safetensors of tree_flatten([c.state for c in cache]) with the metadata
 * tree_flatten([meta_states, user_metadata, class_names])), either as it is
 * (".safetensors", what mlx_lm.cache_prompt writes) or inside one zstd frame
 * (".kv.zst"; `zstd -d` gives the safetensors bytes back).  Readers tell the two
 * apart by the zstd magic number, not by the name.
 *
 * Per layer i (mlx-lm's cache classes):
 *   KVCache           tensors "i.0" keys, "i.1" values, [1, kv_heads, T, head_dim];
 *                     metadata "0.i" = ""; offset = T
 *   RotatingKVCache   the same tensors holding the raw ring buffer (cut to offset while
 *                     offset < buffer length); "0.i.0".."0.i.3" = keep, max_size,
 *                     offset, _idx
 *   QuantizedKVCache  "i.0.0" packed keys (U32 [1, kv_heads, T, head_dim*bits/32]),
 *                     "i.0.1" / "i.0.2" their scales / biases ([1, kv_heads, T,
 *                     head_dim/group], the keys' dtype), "i.1.0".."i.1.2" the same
 *                     for values; "0.i.0".."0.i.2" = offset, group_size, bits
 *   "2.i" names the class.
 * User metadata ("1.<key>"): "model" and "tokenizer_config" as mlx_lm.cache_prompt
 * writes them, and "mlx_tools", a JSON object of this toolkit's facts: "version",
 * "fingerprint" (of the model folder: mt_model_fingerprint), "kv_type" ("f32",
 * "f16", "q8g64", ...), "tokens" (the ids of the cached tokens, in order) and
 * "text" (their text, when known).  mlx-lm ignores keys it does not know.
 *
 * ref: mlx_lm/models/cache.py (save_prompt_cache, load_prompt_cache, the classes'
 * state / meta_state), mlx/io/safetensors.cpp, python/mlx/utils.py (tree_flatten). */
#ifndef MT_KVFILE_H
#define MT_KVFILE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "core/err.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "models/model.h"

enum { MT_KVC_PLAIN = 1, MT_KVC_ROTATING, MT_KVC_QUANTIZED };

typedef struct mt_kvfile_layer {
    int cls;                        /* MT_KVC_* */
    size_t offset;                  /* tokens seen (mlx "offset") */
    size_t slots;                   /* rows stored (T) */
    size_t keep, max_size, idx;     /* rotating */
    int bits, group;                /* quantized */
    const mt_tensor_view *t[6];     /* plain/rotating: k, v; quantized: kq, ks, kb, vq, vs, vb */
} mt_kvfile_layer;

typedef struct mt_kvfile {
    char *label;                    /* the path, for messages */
    int layout;                     /* 2: mlx-lm >= 0.32.2 (scalars as tensors), 1: older (meta_state strings) */
    const char *buf;                /* the safetensors bytes (decompressed, or the plain file's map) */
    size_t len;
    size_t file_bytes;              /* bytes on disk (compressed or not) */
    int compressed;                 /* 1 when the file was a zstd frame */
    mt_tensor_view *tv;
    size_t nt;
    json_t *meta;                   /* "__metadata__" */
    int n_layers, kv_heads, head_dim;
    mt_dtype dtype;                 /* of the float K/V, or of the scales when quantized */
    mt_kvfile_layer *layers;
    /* user metadata */
    const char *model;              /* "1.model", or NULL */
    json_t *ours;                   /* "1.mlx_tools" parsed, or NULL (a file from mlx-lm) */
    const char *fingerprint, *text, *version, *kv_type;   /* from ours, or NULL */
    int32_t *tokens;                /* from ours, or NULL */
    size_t n_tokens;
    char *owned;                    /* buf when allocated here */
    mt_mmap map;                    /* a plain file stays mapped (no copy) while f lives */
    int v_head_dim;                 /* the values' last dimension: head_dim, except for multi-head latent
                                       attention caches (deepseek_v3: the latent keys, the RoPE-key values) */
} mt_kvfile;

/* Read and validate a file (plain or zstd).  Every inconsistency is MT_EFORMAT with a
 * message naming the file ("x.kv.zst: layer 3: ...").  *out owned by the caller. */
int mt_kvfile_read(const char *path, mt_kvfile **out, mt_err *err);
/* The same from bytes in memory (copied), label naming them in messages. */
int mt_kvfile_parse(const void *data, size_t n, const char *label, mt_kvfile **out, mt_err *err);
void mt_kvfile_free(mt_kvfile *f);

/* The cache the file holds.  With a model (may be NULL), its geometry (layers, KV heads,
 * head_dim) must match and token ids must be below its vocabulary.  The cache stores
 * float16 when the file holds F16 and float32 for F32 and BF16 (exact).  Quantized
 * layers keep their packing. */
int mt_kvfile_to_cache(const mt_kvfile *f, const mt_model *m, mt_kvcache **out, mt_err *err);

/* Which layers are sliding-window layers that mlx-lm caches as RotatingKVCache(window,
 * keep 0) (gemma3, llama's layer_types) while the others are KVCache: window[l] > 0 for
 * those ([n_layers]); returns 1 when any.  From a file (its rotating layers, when not all
 * layers are) or from a model (its sliding layers). */
int mt_kvfile_windows(const mt_kvfile *f, int *window);
int mt_model_kv_windows(const mt_model *m, int *window);

/* What a file says about its cache, beyond the tensors. */
typedef struct mt_kvmeta {
    int kv_heads;                   /* required: the model's KV heads (the cache knows only kv_dim) */
    const int *window;              /* optional [n_layers] (mt_model_kv_windows): sliding layers of an
                                       unbounded cache are saved as mlx-lm's RotatingKVCache holding
                                       their last `window` tokens */
    const char *model;              /* "1.model" (e.g. the -m string); NULL: "" */
    const char *fingerprint;        /* NULL: none */
    const int32_t *tokens;          /* NULL: no token ids */
    size_t n_tokens;
    const char *text;               /* NULL: none */
    size_t text_len;
    int mlx_only;                   /* 1: no "mlx_tools" metadata (the file mlx-lm itself would write) */
} mt_kvmeta;

/* The safetensors bytes for cache c, as mlx-lm's save_prompt_cache writes them (tensor
 * names, dtypes, header, data order).  *out malloc'd. */
int mt_kvfile_serialize(const mt_kvcache *c, const mt_kvmeta *meta, char **out, size_t *len, mt_err *err);
/* Write c to path atomically (temporary name, fsync, rename): level < 0 plain safetensors,
 * else one zstd frame at that level (1..19).  *bytes (optional) gets the size written. */
int mt_kvfile_write(const char *path, const mt_kvcache *c, const mt_kvmeta *meta, int level, size_t *bytes,
                    mt_err *err);
/* Write bytes (a whole safetensors image) to path the same way. */
int mt_kvfile_write_bytes(const char *path, const void *data, size_t n, int level, size_t *bytes, mt_err *err);

/* "f32", "f16", "q8g64", ... for a cache (static or in buf). */
const char *mt_kvcache_type_name(const mt_kvcache *c, char *buf, size_t n);

/* A fingerprint of a model folder: 32 hex digits hashing config.json, the weights'
 * index (model.safetensors.index.json, else every *.safetensors header) and
 * tokenizer.json.  Same folder contents, same fingerprint. */
int mt_model_fingerprint(const char *dir, char out[33], mt_err *err);

#endif
