/* kvconvert.h - whole-cache conversions for mlx-kvpack: quantize a float cache as
 * mlx-lm's KVCache.to_quantized does, dequantize a quantized one, copy geometry. */
#ifndef MT_KVCONVERT_H
#define MT_KVCONVERT_H

#include "core/err.h"
#include "models/model.h"

/* A new cache with c's rows quantized (affine, bits 2-6 or 8, group 32/64/128 dividing
 * head_dim) exactly as the cache would quantize them itself (mx.quantize per token and
 * head; float16 scales for a float16 cache).  c must be an unbounded float cache. */
int mt_kvcache_quantized_copy(const mt_kvcache *c, int bits, int group, mt_kvcache **out, mt_err *err);
/* A new float cache (float16 when c's scales are, else float32) holding c's rows
 * dequantized (mx.dequantize).  c must be an affine-quantized cache. */
int mt_kvcache_dequantized_copy(const mt_kvcache *c, mt_kvcache **out, mt_err *err);

#endif
