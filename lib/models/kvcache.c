/* kvcache.c - one sequence's KV cache: float32 / float16 rows per slot, unbounded
 * (slot = position) or rotating as mlx-lm's RotatingKVCache (--max-kv-size);
 * quantized as mlx-lm's QuantizedKVCache (affine, mx.quantize per row and head)
 * or by the rotation + Lloyd-Max scheme (turbo).
 * The forward pass (decoder.c) asks kv_plan where a call's rows go and writes
 * them with mt_kv_write.
 * ref: mlx_lm/models/cache.py (KVCache, RotatingKVCache, QuantizedKVCache),
 *      mlx_lm/generate.py (maybe_quantize_kv_cache). */
#include "models/kvcache_int.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tensor/dtype.h"
#include "tensor/kernels.h"
#include "tensor/quant.h"

/* the per-layer pointer arrays (rows allocated by mt_kvcache_reserve) */
static int kv_alloc_arrays(mt_kvcache *c) {
    size_t n = (size_t)c->n_layers;
    c->k = calloc(n, sizeof *c->k);
    c->v = calloc(n, sizeof *c->v);
    c->kq = calloc(n, sizeof *c->kq);
    c->vq = calloc(n, sizeof *c->vq);
    c->ks = calloc(n, sizeof *c->ks);
    c->kb = calloc(n, sizeof *c->kb);
    c->vs = calloc(n, sizeof *c->vs);
    c->vb = calloc(n, sizeof *c->vb);
    return !c->k || !c->v || !c->kq || !c->vq || !c->ks || !c->kb || !c->vs || !c->vb;
}

/* layer l keeps no K/V rows (a recurrent layer of a hybrid) */
static int no_kv(const mt_kvcache *c, int l) { return c->no_kv && c->no_kv[l]; }

static void free_each(void **a, int n) {
    if (!a) return;
    for (int i = 0; i < n; i++) { free(a[i]); a[i] = NULL; }
}

/* Free the float rows, and the packed rows (no slots allocated: cap 0). */
static void kv_free_rows(mt_kvcache *c) {
    free_each(c->k, c->n_layers);
    free_each(c->v, c->n_layers);
    free_each((void **)c->kq, c->n_layers);
    free_each((void **)c->vq, c->n_layers);
    free_each((void **)c->ks, c->n_layers);
    free_each((void **)c->kb, c->n_layers);
    free_each((void **)c->vs, c->n_layers);
    free_each((void **)c->vb, c->n_layers);
    c->cap = c->bufcap = c->idx = 0;
}

int mt_kvcache_new_geom(mt_kvcache **out, int n_layers, int n_kv_heads, int head_dim, mt_err *err) {
    mt_kvcache *c = calloc(1, sizeof *c);
    if (!c) return mt_seterr(err, MT_ENOMEM, "out of memory");
    c->n_layers = n_layers;
    c->kv_dim = (size_t)n_kv_heads * (size_t)head_dim;
    c->n_kv_heads = n_kv_heads;
    c->head_dim = head_dim;
    c->v_dim = c->kv_dim;
    if (kv_alloc_arrays(c)) { mt_kvcache_free(c); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    *out = c;
    return MT_OK;
}

/* Recurrent state arrays of the sizes in n[n_layers] (zeroed); none when every size is 0. */
static int state_alloc(mt_kvcache *c, const size_t *n) {
    int any = 0;
    for (int l = 0; l < c->n_layers; l++) any |= n[l] != 0;
    if (!any) return MT_OK;
    c->state = calloc((size_t)c->n_layers, sizeof *c->state);
    c->state_n = calloc((size_t)c->n_layers, sizeof *c->state_n);
    if (!c->state || !c->state_n) return MT_ENOMEM;
    for (int l = 0; l < c->n_layers; l++) {
        if (!n[l]) continue;
        if (!(c->state[l] = calloc(n[l], sizeof(float)))) return MT_ENOMEM;
        c->state_n[l] = n[l];
    }
    c->has_state = 1;
    return MT_OK;
}

int mt_kvcache_new(mt_kvcache **out, const mt_model *m, mt_err *err) {
    if (!m->kv_heads) MT_TRY(mt_kvcache_new_geom(out, m->hp.n_layers, m->hp.n_kv_heads, m->hp.head_dim, err));
    else {
        MT_TRY(mt_kvcache_new_geom(out, m->hp.n_layers, m->kv_heads, m->kv_head_dim, err));
        int r = mt_kvcache_set_vdim(*out, m->kv_v_dim, err);
        if (r) { mt_kvcache_free(*out); *out = NULL; return r; }
    }
    size_t *n = calloc((size_t)m->hp.n_layers, sizeof *n);
    int rc = n ? MT_OK : MT_ENOMEM;
    for (int l = 0; !rc && l < m->hp.n_layers && m->layers; l++) n[l] = m->layers[l].state_floats;
    if (!rc) rc = state_alloc(*out, n);
    int shared = 0;   /* KV sharing: a layer attending over another's rows keeps none */
    for (int l = 0; !rc && l < m->hp.n_layers && m->layers; l++) shared |= m->layers[l].kv_from >= 0;
    if (!rc && ((*out)->has_state || shared)) {   /* layers whose mixer replaces the attention keep no K/V */
        if (!((*out)->no_kv = calloc((size_t)m->hp.n_layers, 1))) rc = MT_ENOMEM;
        for (int l = 0; !rc && l < m->hp.n_layers; l++)
            (*out)->no_kv[l] = ((*out)->has_state && m->layers[l].mixer && !m->layers[l].mixer_parallel &&
                                !m->layers[l].mixer_kv) || m->layers[l].kv_from >= 0;
    }
    if (!rc) (*out)->padded = m->kv_padded;
    free(n);
    if (rc) { mt_kvcache_free(*out); *out = NULL; return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    return MT_OK;
}

int mt_kvcache_set_vdim(mt_kvcache *c, size_t v_dim, mt_err *err) {
    if (c->len || c->qscheme) return mt_seterr(err, MT_EINVAL, "internal: value width of a used or quantized KV cache");
    if (!v_dim) return mt_seterr(err, MT_EINVAL, "internal: value rows of no values");
    kv_free_rows(c);
    c->v_dim = v_dim;
    return MT_OK;
}

/* KV quantization stores K and V rows of one width: not for latent-attention caches, nor for
 * rows zero-padded to the widest layer (mlx-lm quantizes each layer's own rows) */
static int kv_one_width(const mt_kvcache *c, mt_err *err) {
    if (c->padded)
        return mt_seterr(err, MT_EUNSUPPORTED, "KV cache quantization (--kv-bits, turbo) is not supported for models "
                         "whose layers have K/V rows of different widths (gemma4)");
    if (c->v_dim == c->kv_dim) return MT_OK;
    return mt_seterr(err, MT_EUNSUPPORTED, "KV cache quantization (--kv-bits, turbo) is not supported for "
                     "multi-head latent attention models");
}

void mt_kvcache_reset(mt_kvcache *c) {
    if (!c) return;
    c->len = c->bufcap = c->idx = c->mlx_rows = 0;
    c->pos_delta = 0;
    for (int l = 0; c->has_state && l < c->n_layers; l++)
        if (c->state[l]) memset(c->state[l], 0, c->state_n[l] * sizeof(float));
    if (c->quantized) {   /* a new sequence starts as float rows again (a new mlx-lm cache) */
        kv_free_rows(c);
        c->quantized = 0;
    }
}

int mt_kvcache_set_max(mt_kvcache *c, size_t max_size, size_t keep, mt_err *err) {
    if (c->len) return mt_seterr(err, MT_EINVAL, "the KV cache size can only be bounded while it is empty");
    if (c->qscheme)
        return mt_seterr(err, MT_EINVAL, "a quantized KV cache cannot be bounded (--max-kv-size): mlx-lm's "
                         "RotatingKVCache has no quantized form");
    if (max_size <= keep) return mt_seterr(err, MT_EINVAL, "max KV size %zu must exceed the %zu kept tokens", max_size, keep);
    c->max_size = max_size;
    c->keep = keep;
    return MT_OK;
}

/* the element type of a cache's K/V rows */
mt_dtype mt_kv_dtype(const mt_kvcache *c) { return c->f16 ? MT_F16 : MT_F32; }

int mt_model_kv_f16(const mt_model *m) {
    if (mt_model_mlx(m)) return m->act_dt == MT_F16;
    mt_dtype t = m->embed.quantized ? m->embed.sdt : m->embed.wdt;
    if (m->embed.quantized && m->embed.mode != MT_QMODE_AFFINE) t = MT_BF16;   /* fp modes: bfloat16 (mx.dequantize) */
    return t == MT_F16 || t == MT_BF16;
}

int mt_kvcache_set_f16(mt_kvcache *c, int on, mt_err *err) {
    if (c->len) return mt_seterr(err, MT_EINVAL, "the KV cache type can only be set while the cache is empty");
    kv_free_rows(c);
    c->f16 = on ? 1 : 0;
    return MT_OK;
}

void mt_kvcache_free(mt_kvcache *c) {
    if (!c) return;
    kv_free_rows(c);
    free(c->k);
    free(c->v);
    free(c->kq);
    free(c->vq);
    free(c->ks);
    free(c->kb);
    free(c->vs);
    free(c->vb);
    free(c->no_kv);
    free(c->slot_pos);
    free(c->tsign);
    if (c->state) free_each((void **)c->state, c->n_layers);
    free(c->state);
    free(c->state_n);
    free(c);
}

/* packed rows: words per head row, and floats of scales (turbo: norms) per head row */
size_t mt_kvcache_qwords(const mt_kvcache *c) {
    size_t bits = (size_t)c->head_dim * (size_t)c->qbits;
    return c->qscheme == MT_KVQ_TURBO ? (bits + 31) / 32 : bits / 32;
}
static size_t kv_qscales(const mt_kvcache *c) {
    return c->qscheme == MT_KVQ_TURBO ? 1 : (size_t)(c->head_dim / c->qgroup);
}

/* Room for cap slots of packed rows in every layer (realloc; contents kept). */
static int kv_reserve_packed(mt_kvcache *c, size_t cap, mt_err *err) {
    size_t H = (size_t)c->n_kv_heads, w = H * mt_kvcache_qwords(c), ns = H * kv_qscales(c);
    int aff = c->qscheme == MT_KVQ_AFFINE;
    for (int i = 0; i < c->n_layers; i++) {
        if (no_kv(c, i)) continue;
        uint32_t **wp[2] = {&c->kq[i], &c->vq[i]};
        for (int k = 0; k < 2; k++) {
            void *p = realloc(*wp[k], cap * w * sizeof(uint32_t));
            if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory for the KV cache (%zu positions)", cap);
            *wp[k] = p;
        }
        float **fp[4] = {&c->ks[i], &c->vs[i], &c->kb[i], &c->vb[i]};
        for (int k = 0; k < (aff ? 4 : 2); k++) {
            void *p = realloc(*fp[k], cap * ns * sizeof(float));
            if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory for the KV cache (%zu positions)", cap);
            *fp[k] = p;
        }
    }
    return MT_OK;
}

int mt_kvcache_reserve(mt_kvcache *c, size_t need, mt_err *err) {
    if (need <= c->cap) return MT_OK;
    size_t cap = c->cap ? c->cap : 256;
    while (cap < need) cap *= 2;
    if (c->quantized) {
        MT_TRY(kv_reserve_packed(c, cap, err));
        c->cap = cap;
        return MT_OK;
    }
    size_t es = mt_dtype_size(mt_kv_dtype(c));
    for (int i = 0; i < c->n_layers; i++) {
        if (no_kv(c, i)) continue;
        void *k = realloc(c->k[i], cap * c->kv_dim * es);
        if (!k) return mt_seterr(err, MT_ENOMEM, "out of memory for the KV cache (%zu positions)", cap);
        c->k[i] = k;
        void *v = realloc(c->v[i], cap * c->v_dim * es);
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
    size_t es = mt_dtype_size(mt_kv_dtype(c)), wide = c->v_dim > c->kv_dim ? c->v_dim : c->kv_dim;
    char *tmp = malloc((n ? n : 1) * wide * es);
    size_t *pos = malloc((n ? n : 1) * sizeof *pos);
    if (!tmp || !pos) { free(tmp); free(pos); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    for (int l = 0; l < c->n_layers; l++)
        for (int kv = 0; kv < 2 && !no_kv(c, l); kv++) {
            char *a = kv ? c->v[l] : c->k[l];
            size_t rb = (kv ? c->v_dim : c->kv_dim) * es;   /* bytes per slot */
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
        if (off + S > c->mlx_rows) {   /* mlx's KVCache buffer: cut to offset unless on a step, grow in steps of 256 */
            if (off % 256) c->mlx_rows = off;
            c->mlx_rows += (S + 255) / 256 * 256;
        }
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
        if (c->mlx_rows < offset) c->mlx_rows = offset;
        return MT_OK;
    }
    /* RotatingKVCache: mlx's buffer is keys.shape[2] = nslots slots, _idx = idx, offset tokens seen */
    if (nslots > c->cap) return mt_seterr(err, MT_EINVAL, "internal: restore past the reserved slots");
    if (idx > nslots || (offset <= nslots ? idx != offset : idx <= c->keep) || nslots > c->max_size + offset)
        return mt_seterr(err, MT_EFORMAT, "a RotatingKVCache layer's state is inconsistent (offset %zu, %zu slots, "
                         "next slot %zu, keep %zu)", offset, nslots, idx, c->keep);
    c->len = offset;
    c->bufcap = nslots;
    c->idx = idx;
    /* slot positions as the ring implies: not yet wrapped, slot j holds position j; else the
     * first `keep` slots hold positions 0..keep-1, slot idx-1 the newest token, and going back
     * through [keep, nslots) cyclically the ones before it */
    for (size_t j = 0; j < nslots; j++) c->slot_pos[j] = j;
    if (offset > nslots) {
        size_t ring = nslots - c->keep, p = offset;
        for (size_t i = 0; i < ring; i++) {
            size_t j = c->keep + (idx - 1 - c->keep + ring - i) % ring;
            c->slot_pos[j] = --p;
        }
    }
    return MT_OK;
}

int mt_kvcache_copy(mt_kvcache **out, const mt_kvcache *src, mt_err *err) {
    mt_kvcache *c = calloc(1, sizeof *c);
    if (!c) return mt_seterr(err, MT_ENOMEM, "out of memory");
    c->n_layers = src->n_layers;
    c->kv_dim = src->kv_dim;
    c->v_dim = src->v_dim;
    c->n_kv_heads = src->n_kv_heads;
    c->head_dim = src->head_dim;
    c->f16 = src->f16;
    c->max_size = src->max_size;
    c->keep = src->keep;
    c->qbits = src->qbits;
    c->qgroup = src->qgroup;
    c->qstart = src->qstart;
    c->qscheme = src->qscheme;
    c->quantized = src->quantized;
    c->pos_delta = src->pos_delta;
    c->padded = src->padded;
    memcpy(c->tcb, src->tcb, sizeof c->tcb);
    memcpy(c->tbound, src->tbound, sizeof c->tbound);
    size_t n = src->max_size ? src->bufcap : src->len;
    int rc = kv_alloc_arrays(c) ? mt_seterr(err, MT_ENOMEM, "out of memory") : MT_OK;
    if (!rc && src->tsign) {
        c->tsign = malloc((size_t)c->head_dim * sizeof *c->tsign);
        if (!c->tsign) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        else memcpy(c->tsign, src->tsign, (size_t)c->head_dim * sizeof *c->tsign);
    }
    if (!rc && src->no_kv) {
        if (!(c->no_kv = malloc((size_t)c->n_layers))) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        else memcpy(c->no_kv, src->no_kv, (size_t)c->n_layers);
    }
    if (!rc && src->has_state) {
        if (state_alloc(c, src->state_n)) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        for (int l = 0; !rc && l < c->n_layers; l++)
            if (src->state[l]) memcpy(c->state[l], src->state[l], src->state_n[l] * sizeof(float));
    }
    if (!rc) rc = mt_kvcache_reserve(c, n ? n : 1, err);
    if (rc) { mt_kvcache_free(c); return rc; }
    if (c->quantized) {
        size_t w = (size_t)c->n_kv_heads * mt_kvcache_qwords(c) * sizeof(uint32_t);
        size_t ns = (size_t)c->n_kv_heads * kv_qscales(c) * sizeof(float);
        for (int l = 0; l < c->n_layers; l++) {
            if (no_kv(c, l)) continue;
            memcpy(c->kq[l], src->kq[l], n * w);
            memcpy(c->vq[l], src->vq[l], n * w);
            memcpy(c->ks[l], src->ks[l], n * ns);
            memcpy(c->vs[l], src->vs[l], n * ns);
            if (c->qscheme == MT_KVQ_AFFINE) {
                memcpy(c->kb[l], src->kb[l], n * ns);
                memcpy(c->vb[l], src->vb[l], n * ns);
            }
        }
    } else {
        size_t rb = c->kv_dim * mt_dtype_size(mt_kv_dtype(c)), vb = c->v_dim * mt_dtype_size(mt_kv_dtype(c));
        for (int l = 0; n && l < c->n_layers; l++) {   /* (an empty source has no rows yet) */
            if (no_kv(c, l)) continue;
            memcpy(c->k[l], src->k[l], n * rb);
            memcpy(c->v[l], src->v[l], n * vb);
        }
    }
    if (src->max_size) memcpy(c->slot_pos, src->slot_pos, n * sizeof *c->slot_pos);
    c->len = src->len;
    c->mlx_rows = src->mlx_rows;
    c->bufcap = src->bufcap;
    c->idx = src->idx;
    *out = c;
    return MT_OK;
}

int mt_kvcache_trimmable(const mt_kvcache *c) { return !c->has_state && (!c->max_size || c->len < c->max_size); }

size_t mt_kvcache_trim(mt_kvcache *c, size_t n) {
    if (!mt_kvcache_trimmable(c)) return 0;
    if (n > c->len) n = c->len;
    c->len -= n;
    if (c->max_size) c->idx = c->idx >= n ? c->idx - n : 0;
    return n;
}

size_t mt_kvcache_bytes(const mt_kvcache *c) {
    size_t per, st = 0, kl = 0;   /* per: bytes of one slot's K (or V); st: recurrent state; kl: layers with rows */
    for (int l = 0; c->has_state && l < c->n_layers; l++) st += c->state_n[l] * sizeof(float);
    for (int l = 0; l < c->n_layers; l++) kl += !no_kv(c, l);
    if (!c->quantized) return kl * mt_kvcache_slots(c) * (c->kv_dim + c->v_dim) * mt_dtype_size(mt_kv_dtype(c)) + st;
    else if (c->qscheme == MT_KVQ_TURBO) per = (size_t)c->n_kv_heads * (mt_kvcache_qwords(c) * 4 + 4);
    else per = (size_t)c->n_kv_heads * (mt_kvcache_qwords(c) * 4 + 2 * kv_qscales(c) * (c->f16 ? 2 : 4));
    return 2 * kl * mt_kvcache_slots(c) * per + st;
}


/* ---- quantization ---- */

int mt_kvcache_set_quant(mt_kvcache *c, int bits, int group, size_t start, mt_err *err) {
    if (c->len) return mt_seterr(err, MT_EINVAL, "KV quantization can only be set while the cache is empty");
    if (bits == 0) {   /* off */
        kv_free_rows(c);
        c->qscheme = c->quantized = c->qbits = c->qgroup = 0;
        c->qstart = 0;
        return MT_OK;
    }
    MT_TRY(kv_one_width(c, err));
    if (bits != 2 && bits != 3 && bits != 4 && bits != 5 && bits != 6 && bits != 8)
        return mt_seterr(err, MT_EINVAL, "--kv-bits %d: KV quantization takes 2, 3, 4, 5, 6 or 8 bits", bits);
    if (group != 32 && group != 64 && group != 128)
        return mt_seterr(err, MT_EINVAL, "--kv-group-size %d: the group size must be 32, 64 or 128", group);
    if (c->head_dim % group)
        return mt_seterr(err, MT_EINVAL, "--kv-group-size %d does not divide head_dim %d", group, c->head_dim);
    if (c->max_size)
        return mt_seterr(err, MT_EINVAL, "--kv-bits cannot be used with --max-kv-size: mlx-lm's RotatingKVCache "
                         "has no quantized form");
    kv_free_rows(c);
    c->qscheme = MT_KVQ_AFFINE;
    c->qbits = bits;
    c->qgroup = group;
    c->qstart = start;
    c->quantized = 0;
    return MT_OK;
}

/* splitmix64: the rotation's fixed signs */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Lloyd-Max codebook of K levels for one coordinate of a uniform unit vector in d
 * dimensions, density proportional to (1 - x^2)^((d-3)/2) on (-1, 1): 200 Lloyd
 * iterations on a 10 000-point grid from levels spread over +-3/sqrt(d). */
static int lloyd_codebook(float *cb, float *bound, int K, int d) {
    enum { N = 10000, ITERS = 200 };
    double *x = malloc(2 * N * sizeof *x), *w = x + N;
    if (!x) return MT_ENOMEM;
    double c[16], e = (d - 3) / 2.0;
    for (int k = 0; k < N; k++) {
        x[k] = -1.0 + (k + 0.5) * 2.0 / N;
        w[k] = exp(e * log1p(-x[k] * x[k]));
    }
    double r = 3.0 / sqrt((double)d);
    for (int i = 0; i < K; i++) c[i] = -r + (i + 0.5) * 2.0 * r / K;
    for (int it = 0; it < ITERS; it++) {
        double sw[16] = {0}, sx[16] = {0};
        int cell = 0;
        for (int k = 0; k < N; k++) {
            while (cell < K - 1 && x[k] > 0.5 * (c[cell] + c[cell + 1])) cell++;
            sw[cell] += w[k];
            sx[cell] += w[k] * x[k];
        }
        for (int i = 0; i < K; i++)
            if (sw[i] > 0) c[i] = sx[i] / sw[i];
    }
    for (int i = 0; i < K; i++) cb[i] = (float)c[i];
    for (int i = K; i < 16; i++) cb[i] = 0.0f;
    for (int i = 0; i + 1 < K; i++) bound[i] = (float)(0.5 * (c[i] + c[i + 1]));
    free(x);
    return MT_OK;
}

int mt_kvcache_set_turbo(mt_kvcache *c, int bits, mt_err *err) {
    if (c->len) return mt_seterr(err, MT_EINVAL, "KV quantization can only be set while the cache is empty");
    MT_TRY(kv_one_width(c, err));
    if (bits != 3 && bits != 4)
        return mt_seterr(err, MT_EINVAL, "turbo KV quantization takes 3 or 4 bits, not %d", bits);
    if (c->head_dim < 8)
        return mt_seterr(err, MT_EINVAL, "turbo KV quantization needs head_dim >= 8 (head_dim %d)", c->head_dim);
    if (c->max_size)
        return mt_seterr(err, MT_EINVAL, "a rotating KV cache (--max-kv-size) cannot be quantized");
    float *sign = malloc((size_t)c->head_dim * sizeof *sign);
    if (!sign) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (lloyd_codebook(c->tcb, c->tbound, 1 << bits, c->head_dim)) { free(sign); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    uint64_t st = 42;
    for (int i = 0; i < c->head_dim; i++) sign[i] = splitmix64(&st) >> 63 ? -1.0f : 1.0f;
    kv_free_rows(c);
    free(c->tsign);
    c->tsign = sign;
    c->qscheme = MT_KVQ_TURBO;
    c->qbits = bits;
    c->qgroup = 0;
    c->qstart = 0;
    c->quantized = 0;
    return MT_OK;
}

int mt_kvcache_mark_quantized(mt_kvcache *c, mt_err *err) {
    if (!c->qscheme) return mt_seterr(err, MT_EINVAL, "internal: the KV cache has no quantization set");
    if (c->len) return mt_seterr(err, MT_EINVAL, "internal: a KV cache can only be marked quantized while empty");
    kv_free_rows(c);
    c->quantized = 1;
    return MT_OK;
}

/* Quantize one slot's n_kv_heads rows x (float32, kv_dim) into the packed arrays. */
static void kv_pack(const mt_kvcache *c, uint32_t *w, float *sc, float *bi, const float *x) {
    size_t H = (size_t)c->n_kv_heads, hd = (size_t)c->head_dim, nw = mt_kvcache_qwords(c);
    if (c->qscheme == MT_KVQ_AFFINE) {
        if (!c->f16) {
            mt_quantize_affine(w, sc, bi, MT_F32, x, H, hd, c->qbits, c->qgroup, 0, NULL);
            return;
        }
        /* mlx keeps a 16-bit model's scales and biases in float16: quantize to float16
         * parameters (codes computed as mx.quantize does), held as float32 */
        uint16_t hs[2 * 1024 / 32];
        for (size_t h = 0; h < H; h++) {
            size_t g = hd / (size_t)c->qgroup;
            mt_quantize_affine(w + h * nw, hs, hs + g, MT_F16, x + h * hd, 1, hd, c->qbits, c->qgroup, 0, NULL);
            mt_convert_to_f32(sc + h * g, hs, MT_F16, g);
            mt_convert_to_f32(bi + h * g, hs + g, MT_F16, g);
        }
        return;
    }
    /* turbo: norm, rotated unit vector, nearest centroid by the decision boundaries */
    int K = 1 << c->qbits;
    float u[1024];
    for (size_t h = 0; h < H; h++) {
        const float *xh = x + h * hd;
        double ss = 0;
        for (size_t i = 0; i < hd; i++) ss += (double)xh[i] * xh[i];
        float nm = (float)sqrt(ss), r = nm > 0 ? 1.0f / nm : 0.0f;
        for (size_t i = 0; i < hd; i++) u[i] = xh[i] * r;
        mt_kvt_rotate(u, c->tsign, hd);
        uint32_t *wh = w + h * nw;
        memset(wh, 0, nw * sizeof *wh);
        for (size_t i = 0; i < hd; i++) {
            int q = 0;
            while (q < K - 1 && u[i] > c->tbound[q]) q++;
            mt_quant_set_code(wh, i, c->qbits, (uint32_t)q);
        }
        sc[h] = nm;
    }
}

void mt_kv_write(mt_kvcache *c, int l, size_t slot, const float *k, const float *v) {
    if (!c->quantized) {
        mt_dtype t = mt_kv_dtype(c);
        size_t es = mt_dtype_size(t);
        mt_convert_from_f32((char *)c->k[l] + slot * c->kv_dim * es, k, t, c->kv_dim);
        mt_convert_from_f32((char *)c->v[l] + slot * c->v_dim * es, v, t, c->v_dim);
        return;
    }
    size_t H = (size_t)c->n_kv_heads, w = slot * H * mt_kvcache_qwords(c), ns = slot * H * kv_qscales(c);
    int aff = c->qscheme == MT_KVQ_AFFINE;
    kv_pack(c, c->kq[l] + w, c->ks[l] + ns, aff ? c->kb[l] + ns : NULL, k);
    kv_pack(c, c->vq[l] + w, c->vs[l] + ns, aff ? c->vb[l] + ns : NULL, v);
}

int mt_kv_maybe_quantize(mt_kvcache *c, mt_err *err) {
    if (!c->qscheme || c->quantized || c->len < c->qstart) return MT_OK;
    size_t n = c->len, cap = c->cap;
    MT_TRY(kv_reserve_packed(c, cap, err));
    float *row = malloc(2 * c->kv_dim * sizeof *row);
    if (!row) return mt_seterr(err, MT_ENOMEM, "out of memory");
    void **fk = c->k, **fv = c->v;
    mt_dtype t = mt_kv_dtype(c);
    size_t rb = c->kv_dim * mt_dtype_size(t);
    c->quantized = 1;   /* mt_kv_write now packs */
    for (int l = 0; l < c->n_layers; l++)
        for (size_t s = 0; s < n && !no_kv(c, l); s++) {
            mt_convert_to_f32(row, (const char *)fk[l] + s * rb, t, c->kv_dim);
            mt_convert_to_f32(row + c->kv_dim, (const char *)fv[l] + s * rb, t, c->kv_dim);
            mt_kv_write(c, l, s, row, row + c->kv_dim);
        }
    free(row);
    free_each(fk, c->n_layers);
    free_each(fv, c->n_layers);
    return MT_OK;
}
