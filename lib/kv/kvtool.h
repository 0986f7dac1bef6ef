/* kvtool.h - what mlx-kvpack does to KV-state files: describe, verify against a model,
 * and rewrite (quantize, dequantize, trim, pack, unpack), each file to a new file
 * written atomically. */
#ifndef MT_KVTOOL_H
#define MT_KVTOOL_H

#include <jansson.h>
#include "core/err.h"
#include "kv/kvfile.h"
#include "text/tokenizer.h"

/* {"file", "format" ("mlx-lm-0.32.2" | "mlx-lm-0.32.0"), "compressed", "file_bytes", "raw_bytes",
 *  "layers", "kv_heads", "head_dim", "v_head_dim" (only when the values differ: latent attention),
 *  "dtype", "cache" (class of layer 0, or "mixed"), "kv_type"
 *  ("f32", "q8g64", ...), "tokens" (cached tokens), "max_size"/"keep" (rotating), "model",
 *  "fingerprint", "version", "ids" (known: true/false), "text" (the cached text: stored, or
 *  decoded with tok when given)} */
json_t *mt_kvfile_describe(const mt_kvfile *f, const mt_tokenizer *tok);

enum { MT_KVOP_QUANTIZE = 1, MT_KVOP_DEQUANTIZE, MT_KVOP_TRIM, MT_KVOP_PACK, MT_KVOP_UNPACK };
typedef struct mt_kvop {
    int kind;
    int bits, group;      /* quantize */
    size_t n;             /* trim: tokens dropped from the end */
    int level;            /* pack: zstd level; quantize/dequantize/trim keep the input's form
                             (compressed at level, or plain) */
} mt_kvop;

/* Apply op to file in, writing out (atomically; in == out is allowed).  *report: a JSON
 * object describing the result (caller decrefs). */
int mt_kvfile_apply(const char *in, const char *out, const mt_kvop *op, json_t **report, mt_err *err);

#endif
