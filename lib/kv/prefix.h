/* prefix.h - shared-prefix reuse across the records of a run: snapshots of KV caches
 * keyed by the token ids they hold, bounded in bytes, least recently used evicted first.
 * A record's prompt starts from the stored snapshot sharing the longest prefix with it
 * (trimmed back to the common part when the snapshot is longer), as mlx_lm.server's
 * LRUPromptCache does, so only the rest of the prompt is computed.
 * ref: mlx_lm/models/cache.py (LRUPromptCache, PromptTrie), mlx_lm/server.py. */
#ifndef MT_PREFIX_H
#define MT_PREFIX_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "models/model.h"

typedef struct mt_prefix_store mt_prefix_store;

/* max_bytes: the bound on the snapshots' KV bytes (0: store nothing).  A snapshot is found
 * only under the tag it was stored with (callers tag the cache's mode: snapshots of caches
 * that store keys and values differently never stand in for each other). */
int  mt_prefix_store_new(mt_prefix_store **out, size_t max_bytes, mt_err *err);
void mt_prefix_store_free(mt_prefix_store *s);

/* The cache to start ids[0..n) from: a new copy of the stored snapshot sharing the longest
 * prefix with ids, cut to at most n - 1 tokens (one token is always left to compute, for
 * its logits) and to the common part.  *used gets the tokens it holds (0 and *out NULL
 * when nothing helps: no snapshot shares min_len + 1 tokens or more).  Snapshots that
 * would need trimming but cannot be trimmed (a wrapped rotating cache) are skipped. */
int mt_prefix_store_take(mt_prefix_store *s, uint32_t tag, const int32_t *ids, size_t n, size_t min_len,
                         mt_kvcache **out, size_t *used, mt_err *err);
/* Store a copy of cache c, which holds ids[0..n).  Stored snapshots that are a strict prefix
 * of ids are dropped (the new one serves them); then least recently used ones are evicted
 * until the bound holds.  A snapshot larger than the bound is not stored. */
int mt_prefix_store_put(mt_prefix_store *s, uint32_t tag, const int32_t *ids, size_t n, const mt_kvcache *c,
                        mt_err *err);

/* counters for reports */
typedef struct mt_prefix_stats {
    size_t entries, bytes, hits, misses, tokens_reused, evictions;
} mt_prefix_stats;
void mt_prefix_store_stats(const mt_prefix_store *s, mt_prefix_stats *out);

#endif
