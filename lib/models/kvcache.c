/* kvcache.c - one sequence's KV cache: float32 / float16 rows per slot, unbounded
 * (slot = position) or rotating as mlx-lm's RotatingKVCache (--max-kv-size).
 * The forward pass (decoder.c) asks kv_plan where a call's rows go.
 * ref: mlx_lm/models/cache.py (KVCache, RotatingKVCache). */
#include "models/kvcache_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tensor/dtype.h"


int mt_kvcache_new(mt_kvcache **out, const mt_model *m, mt_err *err) {
    mt_kvcache *c = calloc(1, sizeof *c);
    if (!c) return mt_seterr(err, MT_ENOMEM, "out of memory");
    c->n_layers = m->hp.n_layers;
    c->kv_dim = (size_t)m->hp.n_kv_heads * m->hp.head_dim;
    c->k = calloc((size_t)c->n_layers, sizeof *c->k);
    c->v = calloc((size_t)c->n_layers, sizeof *c->v);
    if (!c->k || !c->v) { mt_kvcache_free(c); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    *out = c;
    return MT_OK;
}

void mt_kvcache_reset(mt_kvcache *c) {
    if (!c) return;
    c->len = c->bufcap = c->idx = 0;
}

int mt_kvcache_set_max(mt_kvcache *c, size_t max_size, size_t keep, mt_err *err) {
    if (c->len) return mt_seterr(err, MT_EINVAL, "the KV cache size can only be bounded while it is empty");
    if (max_size <= keep) return mt_seterr(err, MT_EINVAL, "max KV size %zu must exceed the %zu kept tokens", max_size, keep);
    c->max_size = max_size;
    c->keep = keep;
    return MT_OK;
}

/* the element type of a cache's K/V rows */
mt_dtype mt_kv_dtype(const mt_kvcache *c) { return c->f16 ? MT_F16 : MT_F32; }

int mt_model_kv_f16(const mt_model *m) {
    mt_dtype t = m->embed.quantized ? m->embed.sdt : m->embed.wdt;
    return t == MT_F16 || t == MT_BF16;
}

int mt_kvcache_set_f16(mt_kvcache *c, int on, mt_err *err) {
    if (c->len) return mt_seterr(err, MT_EINVAL, "the KV cache type can only be set while the cache is empty");
    for (int i = 0; i < c->n_layers; i++) {
        free(c->k[i]);
        free(c->v[i]);
        c->k[i] = c->v[i] = NULL;
    }
    c->cap = c->bufcap = c->idx = 0;
    c->f16 = on ? 1 : 0;
    return MT_OK;
}

void mt_kvcache_free(mt_kvcache *c) {
    if (!c) return;
    for (int i = 0; i < c->n_layers && c->k; i++) free(c->k[i]);
    for (int i = 0; i < c->n_layers && c->v; i++) free(c->v[i]);
    free(c->k);
    free(c->v);
    free(c->slot_pos);
    free(c);
}

int mt_kvcache_reserve(mt_kvcache *c, size_t need, mt_err *err) {
    if (need <= c->cap) return MT_OK;
    size_t cap = c->cap ? c->cap : 256;
    while (cap < need) cap *= 2;
    size_t es = mt_dtype_size(mt_kv_dtype(c));
    for (int i = 0; i < c->n_layers; i++) {
        void *k = realloc(c->k[i], cap * c->kv_dim * es);
        if (!k) return mt_seterr(err, MT_ENOMEM, "out of memory for the KV cache (%zu positions)", cap);
        c->k[i] = k;
        void *v = realloc(c->v[i], cap * c->kv_dim * es);
        if (!v) return mt_seterr(err, MT_ENOMEM, "out of memory for the KV cache (%zu positions)", cap);
        c->v[i] = v;
    }
    if (c->max_size) {
        size_t *sp = realloc(c->slot_pos, cap * sizeof *sp);
        if (!sp) return mt_seterr(err, MT_ENOMEM, "out of memory for the KV cache (%zu positions)", cap);
        c->slot_pos = sp;
    }
    c->cap = cap;
    return MT_OK;
}

/* Rebuild the rotating buffer from the old slots listed in `order` (n of them),
 * in that order, in every layer. */
static int kv_permute(mt_kvcache *c, const size_t *order, size_t n, mt_err *err) {
    size_t rb = c->kv_dim * mt_dtype_size(mt_kv_dtype(c));   /* bytes per slot */
    char *tmp = malloc((n ? n : 1) * rb);
    size_t *pos = malloc((n ? n : 1) * sizeof *pos);
    if (!tmp || !pos) { free(tmp); free(pos); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    for (int l = 0; l < c->n_layers; l++)
        for (int kv = 0; kv < 2; kv++) {
            char *a = kv ? c->v[l] : c->k[l];
            for (size_t i = 0; i < n; i++) memcpy(tmp + i * rb, a + order[i] * rb, rb);
            memcpy(a, tmp, n * rb);
        }
    for (size_t i = 0; i < n; i++) pos[i] = c->slot_pos[order[i]];
    memcpy(c->slot_pos, pos, n * sizeof *pos);
    free(tmp);
    free(pos);
    return MT_OK;
}

/* Where this call's S rows of cache c go, and which slots each row attends to
 * (slot, lo, hi per row); updates the cache's bookkeeping.  Rotating caches
 * follow mlx_lm.models.cache.RotatingKVCache: S > 1 is _update_concat with the
 * causal window mask of make_mask, S == 1 is _update_in_place with no mask. */
int mt_kv_plan(mt_kvcache *c, size_t S, size_t *slot, size_t *lo, size_t *hi, mt_err *err) {
    size_t off = c->len;
    if (!c->max_size) {
        MT_TRY(mt_kvcache_reserve(c, off + S, err));
        for (size_t i = 0; i < S; i++) { slot[i] = off + i; lo[i] = 0; hi[i] = off + i + 1; }
        return MT_OK;
    }
    size_t M = c->max_size, keep = c->keep;
    if (S > 1) {
        size_t old = 0;
        if (c->bufcap) {
            /* temporal order (slicing off unused slots), then trim to max_size - 1 */
            size_t n = 0, *order = malloc(c->bufcap * sizeof *order);
            if (!order) return mt_seterr(err, MT_ENOMEM, "out of memory");
            if (c->idx == c->bufcap) for (size_t j = 0; j < c->bufcap; j++) order[n++] = j;
            else if (c->idx < off) {
                for (size_t j = 0; j < keep && j < c->bufcap; j++) order[n++] = j;
                for (size_t j = c->idx; j < c->bufcap; j++) order[n++] = j;
                for (size_t j = keep; j < c->idx; j++) order[n++] = j;
            } else for (size_t j = 0; j < c->idx; j++) order[n++] = j;
            long trim = (long)n - (long)M + 1;
            if (trim > 0) {
                size_t w = keep < n ? keep : n;
                for (size_t j = keep + (size_t)trim; j < n; j++) order[w++] = order[j];
                n = w;
            }
            int rc = kv_permute(c, order, n, err);
            free(order);
            MT_TRY(rc);
            old = n;
        }
        MT_TRY(mt_kvcache_reserve(c, old + S, err));
        size_t offm = off < M - 1 ? off : M - 1;   /* the mask's offset (make_mask) */
        for (size_t i = 0; i < S; i++) {
            slot[i] = old + i;
            c->slot_pos[old + i] = off + i;
            size_t q = offm + i;                  /* the row's index in the buffer */
            hi[i] = q + 1;
            lo[i] = q + 1 > M ? q + 1 - M : 0;
        }
        c->bufcap = c->idx = old + S;
        return MT_OK;
    }
    /* S == 1 */
    if (!c->bufcap || (off >= c->bufcap && c->bufcap < M)) {
        size_t grow = M - off < 256 ? M - off : 256;
        MT_TRY(mt_kvcache_reserve(c, c->bufcap + grow, err));
        c->bufcap += grow;
        c->idx = off;
    }
    if (c->bufcap > M) {
        size_t trim = c->bufcap - M, n = 0, *order = malloc(c->bufcap * sizeof *order);
        if (!order) return mt_seterr(err, MT_ENOMEM, "out of memory");
        for (size_t j = 0; j < keep; j++) order[n++] = j;
        for (size_t j = trim + keep; j < c->bufcap; j++) order[n++] = j;
        int rc = kv_permute(c, order, n, err);
        free(order);
        MT_TRY(rc);
        c->bufcap = M;
        c->idx = M;
    }
    if (c->idx == M) c->idx = keep;
    slot[0] = c->idx++;
    c->slot_pos[slot[0]] = off;
    lo[0] = 0;
    hi[0] = off + 1 < c->bufcap ? off + 1 : c->bufcap;
    return MT_OK;
}


/* ---- state: snapshots, trimming, restoring from a file ---- */

size_t mt_kvcache_slots(const mt_kvcache *c) {
    if (!c->max_size) return c->len;
    return c->len < c->bufcap ? c->len : c->bufcap;
}

int mt_kvcache_restore(mt_kvcache *c, size_t offset, size_t nslots, size_t idx, mt_err *err) {
    if (!c->max_size) {
        if (nslots != offset)
            return mt_seterr(err, MT_EFORMAT, "a KVCache layer holds %zu rows for %zu tokens", nslots, offset);
        if (nslots > c->cap) return mt_seterr(err, MT_EINVAL, "internal: restore past the reserved slots");
        c->len = offset;
        return MT_OK;
    }
    /* RotatingKVCache: mlx's buffer is keys.shape[2] = nslots slots, _idx = idx, offset tokens seen */
    if (nslots > c->cap) return mt_seterr(err, MT_EINVAL, "internal: restore past the reserved slots");
    if (nslots > offset || idx > nslots || (offset > nslots && idx < c->keep) || nslots > c->max_size + offset)
        return mt_seterr(err, MT_EFORMAT, "a RotatingKVCache layer's state is inconsistent (offset %zu, %zu slots, "
                         "next slot %zu, keep %zu)", offset, nslots, idx, c->keep);
    c->len = offset;
    c->bufcap = nslots;
    c->idx = idx;
    /* slot positions as the ring implies: the first `keep` slots hold positions 0..keep-1;
     * slot idx-1 holds the newest token, and going back through [keep, nslots) cyclically
     * the ones before it */
    size_t ring = nslots > c->keep ? nslots - c->keep : 0, p = offset;
    for (size_t j = 0; j < nslots && j < c->keep; j++) c->slot_pos[j] = j;
    for (size_t i = 0; i < ring; i++) {
        size_t j = idx > c->keep ? idx - 1 : nslots - 1;
        j = c->keep + (j - c->keep + ring - i % ring) % ring;
        c->slot_pos[j] = --p;
    }
    return MT_OK;
}

int mt_kvcache_copy(mt_kvcache **out, const mt_kvcache *src, mt_err *err) {
    mt_kvcache *c = calloc(1, sizeof *c);
    if (!c) return mt_seterr(err, MT_ENOMEM, "out of memory");
    c->n_layers = src->n_layers;
    c->kv_dim = src->kv_dim;
    c->f16 = src->f16;
    c->max_size = src->max_size;
    c->keep = src->keep;
    c->k = calloc((size_t)c->n_layers, sizeof *c->k);
    c->v = calloc((size_t)c->n_layers, sizeof *c->v);
    size_t n = src->max_size ? src->bufcap : src->len;
    int rc = !c->k || !c->v ? mt_seterr(err, MT_ENOMEM, "out of memory") : mt_kvcache_reserve(c, n ? n : 1, err);
    if (rc) { mt_kvcache_free(c); return rc; }
    size_t rb = c->kv_dim * mt_dtype_size(mt_kv_dtype(c));
    for (int l = 0; l < c->n_layers; l++) {
        memcpy(c->k[l], src->k[l], n * rb);
        memcpy(c->v[l], src->v[l], n * rb);
    }
    if (src->max_size) memcpy(c->slot_pos, src->slot_pos, n * sizeof *c->slot_pos);
    c->len = src->len;
    c->bufcap = src->bufcap;
    c->idx = src->idx;
    *out = c;
    return MT_OK;
}

int mt_kvcache_trimmable(const mt_kvcache *c) { return !c->max_size || c->len < c->max_size; }

size_t mt_kvcache_trim(mt_kvcache *c, size_t n) {
    if (!mt_kvcache_trimmable(c)) return 0;
    if (n > c->len) n = c->len;
    c->len -= n;
    if (c->max_size) c->idx = c->idx >= n ? c->idx - n : 0;
    return n;
}

size_t mt_kvcache_bytes(const mt_kvcache *c) {
    return 2 * (size_t)c->n_layers * mt_kvcache_slots(c) * c->kv_dim * mt_dtype_size(mt_kv_dtype(c));
}
