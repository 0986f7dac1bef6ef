/* prefix.c - shared-prefix reuse across records (see prefix.h). */
#include "kv/prefix.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    uint32_t tag;
    int32_t *ids;
    size_t n, bytes;
    mt_kvcache *c;
    unsigned long long used;   /* LRU clock */
} entry;

struct mt_prefix_store {
    entry *e;
    size_t n, cap, max_bytes;
    unsigned long long clock;
    mt_prefix_stats st;
};

int mt_prefix_store_new(mt_prefix_store **out, size_t max_bytes, mt_err *err) {
    mt_prefix_store *s = calloc(1, sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    s->max_bytes = max_bytes;
    *out = s;
    return MT_OK;
}

static void drop(mt_prefix_store *s, size_t i) {
    s->st.bytes -= s->e[i].bytes;
    free(s->e[i].ids);
    mt_kvcache_free(s->e[i].c);
    s->e[i] = s->e[--s->n];
}

void mt_prefix_store_free(mt_prefix_store *s) {
    if (!s) return;
    while (s->n) drop(s, s->n - 1);
    free(s->e);
    free(s);
}

static size_t common(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    size_t n = na < nb ? na : nb, i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

int mt_prefix_store_take(mt_prefix_store *s, uint32_t tag, const int32_t *ids, size_t n, size_t min_len,
                         mt_kvcache **out, size_t *used, mt_err *err) {
    *out = NULL;
    *used = 0;
    if (n < 2) return MT_OK;
    size_t best = 0, bi = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->e[i].tag != tag) continue;
        size_t cp = common(s->e[i].ids, s->e[i].n, ids, n);
        if (cp > n - 1) cp = n - 1;
        if (cp < s->e[i].n && !mt_kvcache_trimmable(s->e[i].c)) continue;   /* would need a trim it cannot take */
        /* prefer the longest use; among equals the shortest snapshot (less to trim) */
        if (cp > best || (cp == best && cp && s->e[i].n < s->e[bi].n)) { best = cp; bi = i; }
    }
    if (best <= min_len) { s->st.misses++; return MT_OK; }
    mt_kvcache *c;
    MT_TRY(mt_kvcache_copy(&c, s->e[bi].c, err));
    if (c->len > best && mt_kvcache_trim(c, c->len - best) != s->e[bi].n - best) {
        mt_kvcache_free(c);
        s->st.misses++;
        return MT_OK;
    }
    s->e[bi].used = ++s->clock;
    s->st.hits++;
    s->st.tokens_reused += best;
    *out = c;
    *used = best;
    return MT_OK;
}

int mt_prefix_store_put(mt_prefix_store *s, uint32_t tag, const int32_t *ids, size_t n, const mt_kvcache *c,
                        mt_err *err) {
    size_t bytes = mt_kvcache_bytes(c) + n * sizeof *ids;
    if (!n || bytes > s->max_bytes) return MT_OK;
    for (size_t i = 0; i < s->n; i++)   /* the same tokens again: refresh */
        if (s->e[i].tag == tag && s->e[i].n == n && !memcmp(s->e[i].ids, ids, n * sizeof *ids)) {
            s->e[i].used = ++s->clock;
            return MT_OK;
        }
    for (size_t i = s->n; i-- > 0;)     /* strict prefixes of the new one are redundant when it can be trimmed */
        if (s->e[i].tag == tag && s->e[i].n < n && mt_kvcache_trimmable(c) &&
            common(s->e[i].ids, s->e[i].n, ids, n) == s->e[i].n)
            drop(s, i);
    while (s->n && s->st.bytes + bytes > s->max_bytes) {
        size_t lru = 0;
        for (size_t i = 1; i < s->n; i++)
            if (s->e[i].used < s->e[lru].used) lru = i;
        drop(s, lru);
        s->st.evictions++;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        entry *e = realloc(s->e, cap * sizeof *e);
        if (!e) return mt_seterr(err, MT_ENOMEM, "out of memory");
        s->e = e;
        s->cap = cap;
    }
    entry *e = &s->e[s->n];
    memset(e, 0, sizeof *e);
    e->ids = malloc(n * sizeof *ids);
    if (!e->ids) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = mt_kvcache_copy(&e->c, c, err);
    if (rc) { free(e->ids); return rc; }
    memcpy(e->ids, ids, n * sizeof *ids);
    e->tag = tag;
    e->n = n;
    e->bytes = bytes;
    e->used = ++s->clock;
    s->n++;
    s->st.bytes += bytes;
    return MT_OK;
}

void mt_prefix_store_stats(const mt_prefix_store *s, mt_prefix_stats *out) {
    *out = s->st;
    out->entries = s->n;
}
