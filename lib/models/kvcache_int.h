/* kvcache_int.h - what the forward pass needs from the KV cache (models/ only). */
#ifndef MT_KVCACHE_INT_H
#define MT_KVCACHE_INT_H

#include "models/model.h"
#include "tensor/dtype.h"

/* the element type of a cache's K/V rows */
mt_dtype mt_kv_dtype(const mt_kvcache *c);
/* Where a call's S rows of cache c go, and which slots each row attends to
 * (slot, lo, hi per row); updates the cache's bookkeeping. */
int mt_kv_plan(mt_kvcache *c, size_t S, size_t *slot, size_t *lo, size_t *hi, mt_err *err);
/* Store layer l's K and V rows (float32, kv_dim and v_dim values) of a token in slot `slot`
 * (planned by mt_kv_plan): converted to the cache's element type, or quantized
 * per kv head once the cache is quantized. */
void mt_kv_write(mt_kvcache *c, int l, size_t slot, const float *k, const float *v);
/* mlx-lm's maybe_quantize_kv_cache, run at the end of every forward call: a cache
 * with quantization set, still float and holding len >= qstart tokens has all its
 * rows quantized now (and every later row as it is written). */
int mt_kv_maybe_quantize(mt_kvcache *c, mt_err *err);

#endif
