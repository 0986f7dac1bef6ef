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

#endif
