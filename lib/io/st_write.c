/* st_write.c - safetensors writer matching mx.save_safetensors byte for byte
 * (header as nlohmann::json::dump, data in libstdc++ unordered_map order). */
#include "core/buf.h"
#include "io/st_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- libstdc++ std::hash<std::string> (64-bit size_t) ---- */

static uint64_t shift_mix(uint64_t v) { return v ^ (v >> 47); }

uint64_t mt_stl_string_hash(const void *data, size_t len) {
    const uint64_t mul = (((uint64_t)0xc6a4a793u) << 32) + 0x5bd1e995u;
    const unsigned char *p = data;
    size_t nwords = len & ~(size_t)7;
    uint64_t h = 0xc70f6907u ^ ((uint64_t)len * mul);
    for (size_t i = 0; i < nwords; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h ^= shift_mix(w * mul) * mul;
        h *= mul;
    }
    size_t rem = len & 7;
    if (rem) {
        uint64_t w = 0;
        for (size_t i = rem; i-- > 0;) w = (w << 8) | p[nwords + i];
        h ^= w;
        h *= mul;
    }
    h = shift_mix(h) * mul;
    return shift_mix(h);
}

/* Bucket counts a default-constructed libstdc++ unordered_map goes through
 * when elements are inserted one at a time (max_load_factor 1): it grows to
 * the next entry before inserting an element once the element count would
 * exceed the current count.  Observed from libstdc++'s prime rehash policy. */
static const size_t bucket_steps[] = {13,     29,     59,      127,     257,     541,     1109,
                                      2357,   5087,   10273,   20753,   42043,   85229,   172933,
                                      351061, 712697, 1447153, 2938679, 5967347};

enum { BB = -1, EMPTY = -2 };   /* bucket slot: before-begin sentinel / empty */

typedef struct hmap {
    size_t nb;
    long *bkt;     /* node index before the bucket's first node, BB, or EMPTY */
    long *next;    /* per node: next node or -1 */
    long head;     /* first node or -1 */
    const uint64_t *hash;
} hmap;

static size_t hm_index(const hmap *m, long node) { return (size_t)(m->hash[node] % m->nb); }

/* Insert node at the beginning of its bucket (libstdc++ _M_insert_bucket_begin). */
static void hm_insert_begin(hmap *m, long node) {
    size_t b = hm_index(m, node);
    if (m->bkt[b] != EMPTY) {
        long before = m->bkt[b];
        if (before == BB) {
            m->next[node] = m->head;
            m->head = node;
        } else {
            m->next[node] = m->next[before];
            m->next[before] = node;
        }
    } else {
        m->next[node] = m->head;
        m->head = node;
        if (m->next[node] >= 0) m->bkt[hm_index(m, m->next[node])] = node;
        m->bkt[b] = BB;
    }
}

/* Rehash into nb buckets keeping libstdc++'s relinking order. */
static int hm_rehash(hmap *m, size_t nb) {
    long *nbkt = malloc(nb * sizeof *nbkt);
    if (!nbkt) return MT_ENOMEM;
    for (size_t i = 0; i < nb; i++) nbkt[i] = EMPTY;
    m->nb = nb;
    long p = m->head;
    m->head = -1;
    size_t bbegin = 0;
    while (p >= 0) {
        long nx = m->next[p];
        size_t b = hm_index(m, p);
        if (nbkt[b] == EMPTY) {
            m->next[p] = m->head;
            m->head = p;
            nbkt[b] = BB;
            if (m->next[p] >= 0) nbkt[bbegin] = p;
            bbegin = b;
        } else {
            long before = nbkt[b];
            if (before == BB) {
                m->next[p] = m->head;
                m->head = p;
            } else {
                m->next[p] = m->next[before];
                m->next[before] = p;
            }
        }
        p = nx;
    }
    free(m->bkt);
    m->bkt = nbkt;
    return MT_OK;
}

int mt_st_mlx_order(const char *const *names, size_t n, size_t *order, mt_err *err) {
    if (n == 0) return MT_OK;
    if (n > bucket_steps[sizeof bucket_steps / sizeof *bucket_steps - 1])
        return mt_seterr(err, MT_ELIMIT, "too many tensors (%zu) for one file", n);
    hmap m = {0};
    uint64_t *hash = malloc(n * sizeof *hash);
    m.next = malloc(n * sizeof *m.next);
    m.bkt = malloc(sizeof *m.bkt);
    if (!hash || !m.next || !m.bkt) {
        free(hash), free(m.next), free(m.bkt);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) hash[i] = mt_stl_string_hash(names[i], strlen(names[i]));
    m.hash = hash;
    m.nb = 1;
    m.bkt[0] = EMPTY;
    m.head = -1;
    size_t step = 0;
    int rc = MT_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t threshold = m.nb == 1 ? 0 : m.nb;
        if (i + 1 > threshold) rc = hm_rehash(&m, bucket_steps[step++]);
        if (!rc) hm_insert_begin(&m, (long)i);
    }
    if (!rc) {
        size_t k = 0;
        for (long p = m.head; p >= 0 && k < n; p = m.next[p]) order[k++] = (size_t)p;
    } else {
        mt_seterr(err, rc, "out of memory");
    }
    free(hash), free(m.next), free(m.bkt);
    return rc;
}

/* ---- header JSON (nlohmann dump) ---- */


/* A JSON string as nlohmann writes it (UTF-8 passes through). */
static void sb_jstr(mt_buf *b, const char *s) {
    mt_buf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char tmp[8];
        switch (*p) {
        case '"': mt_buf_str(b, "\\\""); break;
        case '\\': mt_buf_str(b, "\\\\"); break;
        case '\b': mt_buf_str(b, "\\b"); break;
        case '\f': mt_buf_str(b, "\\f"); break;
        case '\n': mt_buf_str(b, "\\n"); break;
        case '\r': mt_buf_str(b, "\\r"); break;
        case '\t': mt_buf_str(b, "\\t"); break;
        default:
            if (*p < 0x20) {
                snprintf(tmp, sizeof tmp, "\\u%04x", *p);
                mt_buf_str(b, tmp);
            } else {
                mt_buf_put(b, (const char *)p, 1);
            }
        }
    }
    mt_buf_put(b, "\"", 1);
}

typedef struct keyed {
    const char *key;
    long idx;   /* entry index, or -1 for __metadata__ */
} keyed;

static int cmp_keyed(const void *a, const void *b) {
    return strcmp(((const keyed *)a)->key, ((const keyed *)b)->key);
}

static int cmp_kv(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int mt_st_header(const mt_st_entry *e, size_t n, const size_t *data_order, const char *const *meta_kv,
                 size_t n_meta, char **out, size_t *len, mt_err *err) {
    *out = NULL;
    *len = 0;
    size_t *begin = malloc((n ? n : 1) * sizeof *begin);
    keyed *keys = malloc((n + 1) * sizeof *keys);
    const char **kv = malloc((n_meta ? n_meta : 1) * 2 * sizeof *kv);
    mt_buf b = {0};
    int rc = MT_OK;
    if (!begin || !keys || !kv) {
        rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        size_t numel = 1;
        if (e[i].ndim < 0 || e[i].ndim > MT_STW_MAX_NDIM || mt_dtype_size(e[i].dtype) == 0) {
            rc = mt_seterr(err, MT_EINVAL, "tensor '%s': bad dtype or rank", e[i].name);
            goto done;
        }
        for (int d = 0; d < e[i].ndim; d++) numel *= (size_t)e[i].shape[d];
        if (numel * mt_dtype_size(e[i].dtype) != e[i].nbytes) {
            rc = mt_seterr(err, MT_EINVAL, "tensor '%s': %zu bytes for its shape, got %zu", e[i].name,
                           numel * mt_dtype_size(e[i].dtype), e[i].nbytes);
            goto done;
        }
    }
    size_t off = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = data_order ? data_order[k] : k;
        if (i >= n) {
            rc = mt_seterr(err, MT_EINVAL, "data order index out of range");
            goto done;
        }
        begin[i] = off;
        off += e[i].nbytes;
    }
    keys[0] = (keyed){"__metadata__", -1};
    for (size_t i = 0; i < n; i++) keys[i + 1] = (keyed){e[i].name, (long)i};
    qsort(keys, n + 1, sizeof *keys, cmp_keyed);
    for (size_t i = 1; i < n + 1; i++)
        if (!strcmp(keys[i].key, keys[i - 1].key)) {
            rc = mt_seterr(err, MT_EINVAL, "duplicate tensor name '%s'", keys[i].key);
            goto done;
        }
    for (size_t i = 0; i < n_meta; i++) kv[2 * i] = meta_kv[2 * i], kv[2 * i + 1] = meta_kv[2 * i + 1];
    qsort(kv, n_meta, 2 * sizeof *kv, cmp_kv);

    mt_buf_put(&b, "{", 1);
    for (size_t k = 0; k < n + 1; k++) {
        if (k) mt_buf_put(&b, ",", 1);
        sb_jstr(&b, keys[k].key);
        mt_buf_put(&b, ":", 1);
        if (keys[k].idx < 0) {
            if (!n_meta) {
                mt_buf_str(&b, "null");
                continue;
            }
            mt_buf_put(&b, "{", 1);
            for (size_t j = 0; j < n_meta; j++) {
                if (j) mt_buf_put(&b, ",", 1);
                sb_jstr(&b, kv[2 * j]);
                mt_buf_put(&b, ":", 1);
                sb_jstr(&b, kv[2 * j + 1]);
            }
            mt_buf_put(&b, "}", 1);
            continue;
        }
        const mt_st_entry *t = &e[keys[k].idx];
        char tmp[96];
        snprintf(tmp, sizeof tmp, "{\"data_offsets\":[%zu,%zu],\"dtype\":", begin[keys[k].idx],
                 begin[keys[k].idx] + t->nbytes);
        mt_buf_str(&b, tmp);
        sb_jstr(&b, mt_dtype_name(t->dtype));
        mt_buf_str(&b, ",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            snprintf(tmp, sizeof tmp, d ? ",%lld" : "%lld", (long long)t->shape[d]);
            mt_buf_str(&b, tmp);
        }
        mt_buf_str(&b, "]}");
    }
    mt_buf_put(&b, "}", 1);
    if (b.oom) {
        rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        goto done;
    }
    *out = b.p;
    *len = b.n;
    b.p = NULL;
done:
    free(b.p);
    free(begin);
    free(keys);
    free(kv);
    return rc;
}

int mt_st_write(const char *path, const mt_st_entry *e, size_t n, const size_t *data_order,
                const char *const *meta_kv, size_t n_meta, mt_st_fill_fn fill, void *user, mt_err *err) {
    char *hdr;
    size_t hlen;
    MT_TRY(mt_st_header(e, n, data_order, meta_kv, n_meta, &hdr, &hlen, err));
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return mt_seterr(err, MT_EIO, "%s: cannot create", path);
    }
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    int rc = MT_OK;
    if (fwrite(lenb, 1, 8, f) != 8 || fwrite(hdr, 1, hlen, f) != hlen) rc = mt_seterr(err, MT_EIO, "%s: write failed", path);
    free(hdr);
    void *buf = NULL;
    size_t cap = 0;
    for (size_t k = 0; k < n && !rc; k++) {
        size_t i = data_order ? data_order[k] : k;
        if (e[i].nbytes > cap) {
            free(buf);
            cap = e[i].nbytes;
            buf = malloc(cap);
            if (!buf) {
                rc = mt_seterr(err, MT_ENOMEM, "out of memory (%zu bytes for '%s')", cap, e[i].name);
                break;
            }
        }
        if (e[i].nbytes == 0) continue;
        rc = fill(user, i, buf, err);
        if (!rc && fwrite(buf, 1, e[i].nbytes, f) != e[i].nbytes) rc = mt_seterr(err, MT_EIO, "%s: write failed", path);
    }
    free(buf);
    if (fclose(f) != 0 && !rc) rc = mt_seterr(err, MT_EIO, "%s: write failed", path);
    return rc;
}
