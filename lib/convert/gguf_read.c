/* gguf_read.c - GGUF reader with full bounds checks, ggml block formats (see
 * gguf_read.h). */
#include "convert/gguf_read.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

/* ---------------- ggml types ---------------- */

static const struct gtype {
    uint32_t id;
    const char *name;
    uint32_t blck, size;
} gtypes[] = {
    {0, "F32", 1, 4},        {1, "F16", 1, 2},         {2, "Q4_0", 32, 18},     {3, "Q4_1", 32, 20},
    {6, "Q5_0", 32, 22},     {7, "Q5_1", 32, 24},      {8, "Q8_0", 32, 34},     {9, "Q8_1", 32, 36},
    {10, "Q2_K", 256, 84},   {11, "Q3_K", 256, 110},   {12, "Q4_K", 256, 144},  {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},  {15, "Q8_K", 256, 292},   {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74},
    {18, "IQ3_XXS", 256, 98}, {19, "IQ1_S", 256, 50},  {20, "IQ4_NL", 32, 18},  {21, "IQ3_S", 256, 110},
    {22, "IQ2_S", 256, 82},  {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1},        {25, "I16", 1, 2},
    {26, "I32", 1, 4},       {27, "I64", 1, 8},        {28, "F64", 1, 8},       {29, "IQ1_M", 256, 56},
    {30, "BF16", 1, 2},      {34, "TQ1_0", 256, 54},   {35, "TQ2_0", 256, 66},  {39, "MXFP4", 32, 17},
};

static const struct gtype *gtype_of(uint32_t id) {
    for (size_t i = 0; i < sizeof gtypes / sizeof *gtypes; i++)
        if (gtypes[i].id == id) return &gtypes[i];
    return NULL;
}

const char *mt_ggml_type_name(uint32_t type) {
    const struct gtype *t = gtype_of(type);
    return t ? t->name : NULL;
}
size_t mt_ggml_block_elems(uint32_t type) {
    const struct gtype *t = gtype_of(type);
    return t ? t->blck : 0;
}
size_t mt_ggml_block_bytes(uint32_t type) {
    const struct gtype *t = gtype_of(type);
    return t ? t->size : 0;
}

/* ---------------- container ---------------- */

struct mt_gguf {
    mt_mmap map;            /* owned mapping (size 0 when parsing borrowed bytes) */
    const uint8_t *p;       /* the bytes */
    size_t size;
    uint32_t version;
    mt_gguf_kv *kv;
    size_t nkv;
    mt_gguf_tensor *t;
    size_t nt;
    char *names;            /* keys and tensor names, NUL-terminated, back to back */
    uint64_t *soffs;        /* string-array element offsets, all arrays back to back */
    size_t *tidx;           /* tensors sorted by name (lookup) */
};

typedef struct rd {
    const uint8_t *p;
    size_t n, pos;
    const char *label;
    mt_err *err;
} rd;

static int need(rd *r, uint64_t k, const char *what) {
    if (k > r->n - r->pos)
        return mt_seterr(r->err, MT_EFORMAT, "%s: truncated: %s at byte %zu needs %llu bytes, %zu left", r->label,
                         what, r->pos, (unsigned long long)k, r->n - r->pos);
    return MT_OK;
}
static uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static int rd_u32(rd *r, uint32_t *v, const char *what) {
    MT_TRY(need(r, 4, what));
    *v = le32(r->p + r->pos);
    r->pos += 4;
    return MT_OK;
}
static int rd_u64(rd *r, uint64_t *v, const char *what) {
    MT_TRY(need(r, 8, what));
    *v = le64(r->p + r->pos);
    r->pos += 8;
    return MT_OK;
}
/* A string: u64 length + bytes; *s points into the input. */
static int rd_str(rd *r, const uint8_t **s, uint64_t *len, const char *what) {
    MT_TRY(rd_u64(r, len, what));
    MT_TRY(need(r, *len, what));
    *s = r->p + r->pos;
    r->pos += (size_t)*len;
    return MT_OK;
}

/* A metadata key or tensor name (what: "metadata key" / "tensor name", the i-th):
 * a string of 1 to max bytes without NUL, appended NUL-terminated to g->names
 * (*nlen bytes used of *ncap, grown as needed); *off receives its offset there. */
static int rd_name(rd *r, mt_gguf *g, size_t *ncap, size_t *nlen, uint64_t max, const char *what, uint64_t i,
                   size_t *off) {
    const uint8_t *s;
    uint64_t len;
    MT_TRY(rd_str(r, &s, &len, what));
    if (len == 0 || len > max)
        return mt_seterr(r->err, MT_EFORMAT, "%s: %s %llu has length %llu (1 to %llu allowed)", r->label, what,
                         (unsigned long long)i, (unsigned long long)len, (unsigned long long)max);
    if (memchr(s, 0, (size_t)len))
        return mt_seterr(r->err, MT_EFORMAT, "%s: %s %llu contains a NUL byte", r->label, what, (unsigned long long)i);
    if (*nlen + len + 1 > *ncap) {
        size_t nc = *ncap;
        while (*nlen + len + 1 > nc) nc *= 2;
        char *q = realloc(g->names, nc);
        if (!q) return mt_seterr(r->err, MT_ENOMEM, "out of memory");
        g->names = q, *ncap = nc;
    }
    memcpy(g->names + *nlen, s, (size_t)len);
    g->names[*nlen + len] = 0;
    *off = *nlen;
    *nlen += (size_t)len + 1;
    return MT_OK;
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case MT_GV_U8: case MT_GV_I8: case MT_GV_BOOL: return 1;
    case MT_GV_U16: case MT_GV_I16: return 2;
    case MT_GV_U32: case MT_GV_I32: case MT_GV_F32: return 4;
    case MT_GV_U64: case MT_GV_I64: case MT_GV_F64: return 8;
    default: return 0;
    }
}

static int cmp_tidx(const void *a, const void *b, void *ctx) {
    const mt_gguf *g = ctx;
    return strcmp(g->t[*(const size_t *)a].name, g->t[*(const size_t *)b].name);
}
static int cmp_kv(const void *a, const void *b) {
    return strcmp(((const mt_gguf_kv *)a)->key, ((const mt_gguf_kv *)b)->key);
}
static int cmp_off(const void *a, const void *b, void *ctx) {
    const mt_gguf *g = ctx;
    uint64_t x = g->t[*(const size_t *)a].offset, y = g->t[*(const size_t *)b].offset;
    return x < y ? -1 : x > y;
}

/* Minimum bytes of one key/value and one tensor record: they bound the counts
 * before anything is allocated. */
#define MIN_KV 13      /* key length 8 + key >= 1 ... value type 4 + value >= 0 */
#define MIN_TI 24      /* name length 8 + ndim 4 + ne >= 8 + type 4 (+ offset 8 below) */

static int parse(mt_gguf *g, const char *label, mt_err *err) {
    rd r = {g->p, g->size, 0, label, err};
    uint32_t version;
    uint64_t nt, nkv;
    if (g->size < 4 || memcmp(g->p, "GGUF", 4))
        return mt_seterr(err, MT_EFORMAT, "%s: not a GGUF file (no GGUF magic)", label);
    r.pos = 4;
    MT_TRY(rd_u32(&r, &version, "version"));
    if (version == 0x03000000u || version == 0x02000000u)
        return mt_seterr(err, MT_EUNSUPPORTED, "%s: big-endian GGUF files are not supported", label);
    if (version == 1) return mt_seterr(err, MT_EUNSUPPORTED, "%s: GGUF version 1 is not supported (only 2 and 3)", label);
    if (version != 2 && version != 3)
        return mt_seterr(err, MT_EFORMAT, "%s: unknown GGUF version %u", label, version);
    g->version = version;
    MT_TRY(rd_u64(&r, &nt, "tensor count"));
    MT_TRY(rd_u64(&r, &nkv, "metadata count"));
    if (nkv > (r.n - r.pos) / MIN_KV)
        return mt_seterr(err, MT_EFORMAT, "%s: metadata count %llu is more than the file can hold", label,
                         (unsigned long long)nkv);
    if (nt > (r.n - r.pos) / (MIN_TI + 8))
        return mt_seterr(err, MT_EFORMAT, "%s: tensor count %llu is more than the file can hold", label,
                         (unsigned long long)nt);
    g->kv = calloc(nkv ? nkv : 1, sizeof *g->kv);
    g->t = calloc(nt ? nt : 1, sizeof *g->t);
    if (!g->kv || !g->t) return mt_seterr(err, MT_ENOMEM, "out of memory");

    /* names: keys and tensor names copied NUL-terminated; sized in a first pass
     * would cost a second parse, so grow */
    size_t ncap = 4096, nlen = 0;
    g->names = malloc(ncap);
    size_t scap = 0, slen = 0;
    if (!g->names) return mt_seterr(err, MT_ENOMEM, "out of memory");
    /* offsets into g->names, fixed up to pointers at the end */
    size_t *koff = calloc(nkv + nt + 1, sizeof *koff);
    size_t *soff_at = calloc(nkv + 1, sizeof *soff_at);   /* start of each kv's offsets in soffs, or SIZE_MAX */
    if (!koff || !soff_at) {
        free(koff), free(soff_at);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    int rc = MT_OK;
#define FAIL(...) do { rc = mt_seterr(err, __VA_ARGS__); goto out; } while (0)
#define TRY(x) do { if ((rc = (x))) goto out; } while (0)
    for (uint64_t i = 0; i < nkv; i++) {
        mt_gguf_kv *kv = &g->kv[i];
        TRY(rd_name(&r, g, &ncap, &nlen, 65535, "metadata key", i, &koff[i]));
        const char *key = g->names + koff[i];
        TRY(rd_u32(&r, &kv->type, key));
        kv->n = 1;
        soff_at[i] = SIZE_MAX;
        if (kv->type == MT_GV_STR) {
            const uint8_t *s;
            uint64_t sl;
            TRY(rd_str(&r, &s, &sl, key));
            kv->data = s - 8;   /* length prefix + bytes */
        } else if (kv->type == MT_GV_ARR) {
            TRY(rd_u32(&r, &kv->arr_type, key));
            TRY(rd_u64(&r, &kv->n, key));
            if (kv->arr_type == MT_GV_ARR) FAIL(MT_EUNSUPPORTED, "%s: %s: nested arrays are not supported", label, key);
            kv->data = r.p + r.pos;
            if (kv->arr_type == MT_GV_STR) {
                if (kv->n > (r.n - r.pos) / 8)
                    FAIL(MT_EFORMAT, "%s: %s: array of %llu strings is longer than the file", label, key, (unsigned long long)kv->n);
                if (slen + kv->n + 1 > scap) {
                    size_t nc = scap ? scap : 1024;
                    while (slen + kv->n + 1 > nc) nc *= 2;
                    uint64_t *q = realloc(g->soffs, nc * sizeof *q);
                    if (!q) FAIL(MT_ENOMEM, "out of memory");
                    g->soffs = q, scap = nc;
                }
                soff_at[i] = slen;
                size_t base = r.pos;
                for (uint64_t j = 0; j < kv->n; j++) {
                    const uint8_t *s;
                    uint64_t sl;
                    g->soffs[slen++] = r.pos - base;
                    TRY(rd_str(&r, &s, &sl, key));
                }
                g->soffs[slen++] = r.pos - base;
            } else {
                size_t es = scalar_size(kv->arr_type);
                if (!es) FAIL(MT_EFORMAT, "%s: %s: unknown array element type %u", label, key, kv->arr_type);
                if (kv->n > (r.n - r.pos) / es)
                    FAIL(MT_EFORMAT, "%s: %s: array of %llu elements runs past the end of the file", label, key, (unsigned long long)kv->n);
                r.pos += (size_t)kv->n * es;
            }
        } else {
            size_t es = scalar_size(kv->type);
            if (!es) FAIL(MT_EFORMAT, "%s: %s: unknown value type %u", label, key, kv->type);
            TRY(need(&r, es, key));
            kv->data = r.p + r.pos;
            r.pos += es;
        }
    }
    g->nkv = (size_t)nkv;

    for (uint64_t i = 0; i < nt; i++) {
        mt_gguf_tensor *t = &g->t[i];
        TRY(rd_name(&r, g, &ncap, &nlen, 1024, "tensor name", i, &koff[nkv + i]));
        const char *name = g->names + koff[nkv + i];
        uint32_t nd;
        TRY(rd_u32(&r, &nd, name));
        if (nd < 1 || nd > 4) FAIL(MT_EFORMAT, "%s: tensor '%s': %u dimensions (1 to 4 allowed)", label, name, nd);
        t->ndim = (int)nd;
        uint64_t ne = 1;
        for (uint32_t d = 0; d < nd; d++) {
            TRY(rd_u64(&r, &t->ne[d], name));
            if (t->ne[d] > ((uint64_t)1 << 62) || (t->ne[d] && ne > ((uint64_t)1 << 62) / t->ne[d]))
                FAIL(MT_EFORMAT, "%s: tensor '%s': its size overflows", label, name);
            ne *= t->ne[d];
        }
        for (uint32_t d = nd; d < 4; d++) t->ne[d] = 1;
        TRY(rd_u32(&r, &t->type, name));
        TRY(rd_u64(&r, &t->offset, name));
        const struct gtype *gt = gtype_of(t->type);
        if (!gt) FAIL(MT_EUNSUPPORTED, "%s: tensor '%s': unknown ggml type %u", label, name, t->type);
        if (t->ne[0] % gt->blck)
            FAIL(MT_EFORMAT, "%s: tensor '%s': row length %llu is not a multiple of the %s block (%u)", label, name,
                 (unsigned long long)t->ne[0], gt->name, gt->blck);
        uint64_t nb = ne / gt->blck;
        if (nb > ((uint64_t)1 << 62) / gt->size) FAIL(MT_EFORMAT, "%s: tensor '%s': its size overflows", label, name);
        t->nelem = ne;
        t->nbytes = (size_t)(nb * gt->size);
    }
    g->nt = (size_t)nt;

    /* fix up names */
    for (size_t i = 0; i < g->nkv; i++) {
        g->kv[i].key = g->names + koff[i];
        if (soff_at[i] != SIZE_MAX) g->kv[i].soff = g->soffs + soff_at[i];
    }
    for (size_t i = 0; i < g->nt; i++) g->t[i].name = g->names + koff[g->nkv + i];

    /* duplicate keys */
    if (g->nkv > 1) {
        mt_gguf_kv *s = malloc(g->nkv * sizeof *s);
        if (!s) FAIL(MT_ENOMEM, "out of memory");
        memcpy(s, g->kv, g->nkv * sizeof *s);
        qsort(s, g->nkv, sizeof *s, cmp_kv);
        const char *dup = NULL;
        for (size_t i = 1; i < g->nkv && !dup; i++)
            if (!strcmp(s[i - 1].key, s[i].key)) dup = s[i].key;
        free(s);
        if (dup) FAIL(MT_EFORMAT, "%s: metadata key '%s' appears twice", label, dup);
    }

    /* alignment */
    uint64_t align = 32;
    const mt_gguf_kv *ak = mt_gguf_find(g, "general.alignment");
    if (ak) {
        int64_t a;
        if (ak->type != MT_GV_U32 || mt_gguf_int(ak, &a, NULL) || a <= 0 || (a & (a - 1)) || a > (1 << 30))
            FAIL(MT_EFORMAT, "%s: general.alignment must be a power of two (u32)", label);
        align = (uint64_t)a;
    }
    uint64_t data_off = (r.pos + align - 1) / align * align;
    if (data_off > g->size)
        FAIL(MT_EFORMAT, "%s: truncated: the data section starts at byte %llu, past the end (%zu bytes)", label,
             (unsigned long long)data_off, g->size);
    uint64_t dsize = g->size - data_off;

    g->tidx = malloc((g->nt ? g->nt : 1) * sizeof *g->tidx);
    if (!g->tidx) FAIL(MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < g->nt; i++) {
        mt_gguf_tensor *t = &g->t[i];
        if (t->offset % align)
            FAIL(MT_EFORMAT, "%s: tensor '%s': offset %llu is not aligned to %llu", label, t->name,
                 (unsigned long long)t->offset, (unsigned long long)align);
        if (t->offset > dsize || t->nbytes > dsize - t->offset)
            FAIL(MT_EFORMAT, "%s: tensor '%s': data (%zu bytes at offset %llu) runs past the end of the file", label,
                 t->name, t->nbytes, (unsigned long long)t->offset);
        t->data = g->p + data_off + t->offset;
        g->tidx[i] = i;
    }
    /* overlapping data */
    qsort_r(g->tidx, g->nt, sizeof *g->tidx, cmp_off, g);
    for (size_t i = 1; i < g->nt; i++) {
        const mt_gguf_tensor *a = &g->t[g->tidx[i - 1]], *b = &g->t[g->tidx[i]];
        if (a->offset + a->nbytes > b->offset && a->nbytes && b->nbytes)
            FAIL(MT_EFORMAT, "%s: tensors '%s' and '%s' overlap", label, a->name, b->name);
    }
    /* by name; duplicates */
    for (size_t i = 0; i < g->nt; i++) g->tidx[i] = i;
    qsort_r(g->tidx, g->nt, sizeof *g->tidx, cmp_tidx, g);
    for (size_t i = 1; i < g->nt; i++)
        if (!strcmp(g->t[g->tidx[i - 1]].name, g->t[g->tidx[i]].name))
            FAIL(MT_EFORMAT, "%s: tensor '%s' appears twice", label, g->t[g->tidx[i]].name);
out:
#undef FAIL
#undef TRY
    free(koff);
    free(soff_at);
    return rc;
}

static int open_common(mt_gguf *g, const char *label, mt_gguf **out, mt_err *err) {
    int rc = parse(g, label, err);
    if (rc) {
        mt_gguf_free(g);
        return rc;
    }
    *out = g;
    return MT_OK;
}

int mt_gguf_parse(mt_gguf **out, const void *data, size_t size, const char *label, mt_err *err) {
    *out = NULL;
    mt_gguf *g = calloc(1, sizeof *g);
    if (!g) return mt_seterr(err, MT_ENOMEM, "out of memory");
    g->p = data, g->size = size;
    return open_common(g, label ? label : "gguf", out, err);
}

int mt_gguf_open(mt_gguf **out, const char *path, mt_err *err) {
    *out = NULL;
    mt_gguf *g = calloc(1, sizeof *g);
    if (!g) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = mt_mmap_open(&g->map, path, err);
    if (rc) {
        free(g);
        return rc;
    }
    g->p = g->map.data, g->size = g->map.size;
    return open_common(g, path, out, err);
}

void mt_gguf_free(mt_gguf *g) {
    if (!g) return;
    mt_mmap_close(&g->map);
    free(g->kv);
    free(g->t);
    free(g->names);
    free(g->soffs);
    free(g->tidx);
    free(g);
}

uint32_t mt_gguf_version(const mt_gguf *g) { return g->version; }
size_t mt_gguf_kv_count(const mt_gguf *g) { return g->nkv; }
const mt_gguf_kv *mt_gguf_kv_at(const mt_gguf *g, size_t i) { return i < g->nkv ? &g->kv[i] : NULL; }
size_t mt_gguf_tensor_count(const mt_gguf *g) { return g->nt; }
const mt_gguf_tensor *mt_gguf_tensor_at(const mt_gguf *g, size_t i) { return i < g->nt ? &g->t[i] : NULL; }

const mt_gguf_kv *mt_gguf_find(const mt_gguf *g, const char *key) {
    for (size_t i = 0; i < g->nkv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const mt_gguf_tensor *mt_gguf_tensor_get(const mt_gguf *g, const char *name) {
    size_t lo = 0, hi = g->nt;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(g->t[g->tidx[mid]].name, name);
        if (!c) return &g->t[g->tidx[mid]];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* ---------------- values ---------------- */

static int num_at(uint32_t type, const uint8_t *p, int64_t *iv, double *fv, int *is_float) {
    *is_float = 0;
    switch (type) {
    case MT_GV_U8: *iv = p[0]; return 1;
    case MT_GV_I8: *iv = (int8_t)p[0]; return 1;
    case MT_GV_BOOL: *iv = p[0] != 0; return 1;
    case MT_GV_U16: *iv = le16(p); return 1;
    case MT_GV_I16: *iv = (int16_t)le16(p); return 1;
    case MT_GV_U32: *iv = le32(p); return 1;
    case MT_GV_I32: *iv = (int32_t)le32(p); return 1;
    case MT_GV_U64: {
        uint64_t u = le64(p);
        if (u > INT64_MAX) return 0;
        *iv = (int64_t)u;
        return 1;
    }
    case MT_GV_I64: *iv = (int64_t)le64(p); return 1;
    case MT_GV_F32: {
        uint32_t u = le32(p);
        float f;
        memcpy(&f, &u, 4);
        *fv = f, *is_float = 1;
        return 1;
    }
    case MT_GV_F64: {
        uint64_t u = le64(p);
        memcpy(fv, &u, 8);
        *is_float = 1;
        return 1;
    }
    }
    return 0;
}

int mt_gguf_int(const mt_gguf_kv *kv, int64_t *out, mt_err *err) {
    if (!kv) return MT_ENOTFOUND;
    int64_t iv;
    double fv;
    int isf;
    if (kv->type == MT_GV_ARR || kv->type == MT_GV_STR || kv->type == MT_GV_BOOL || !num_at(kv->type, kv->data, &iv, &fv, &isf) || isf)
        return mt_seterr(err, MT_EFORMAT, "GGUF key %s: expected an integer", kv->key);
    *out = iv;
    return MT_OK;
}

int mt_gguf_float(const mt_gguf_kv *kv, double *out, mt_err *err) {
    if (!kv) return MT_ENOTFOUND;
    int64_t iv;
    double fv;
    int isf;
    if (kv->type == MT_GV_ARR || kv->type == MT_GV_STR || kv->type == MT_GV_BOOL || !num_at(kv->type, kv->data, &iv, &fv, &isf))
        return mt_seterr(err, MT_EFORMAT, "GGUF key %s: expected a number", kv->key);
    *out = isf ? fv : (double)iv;
    return MT_OK;
}

int mt_gguf_bool(const mt_gguf_kv *kv, int *out, mt_err *err) {
    if (!kv) return MT_ENOTFOUND;
    if (kv->type != MT_GV_BOOL) return mt_seterr(err, MT_EFORMAT, "GGUF key %s: expected a bool", kv->key);
    *out = kv->data[0] != 0;
    return MT_OK;
}

int mt_gguf_str(const mt_gguf_kv *kv, const char **s, size_t *len, mt_err *err) {
    if (!kv) return MT_ENOTFOUND;
    if (kv->type != MT_GV_STR) return mt_seterr(err, MT_EFORMAT, "GGUF key %s: expected a string", kv->key);
    *len = (size_t)le64(kv->data);
    *s = (const char *)kv->data + 8;
    return MT_OK;
}

int mt_gguf_arr_str(const mt_gguf_kv *kv, uint64_t i, const char **s, size_t *len) {
    if (!kv || kv->type != MT_GV_ARR || kv->arr_type != MT_GV_STR || i >= kv->n) return MT_EINVAL;
    const uint8_t *p = kv->data + kv->soff[i];
    *len = (size_t)le64(p);
    *s = (const char *)p + 8;
    return MT_OK;
}

int mt_gguf_arr_int(const mt_gguf_kv *kv, uint64_t i, int64_t *out) {
    if (!kv || kv->type != MT_GV_ARR || kv->arr_type == MT_GV_STR || i >= kv->n) return MT_EINVAL;
    size_t es = scalar_size(kv->arr_type);
    double fv;
    int isf;
    if (!num_at(kv->arr_type, kv->data + i * es, out, &fv, &isf) || isf) return MT_EINVAL;
    return MT_OK;
}

int mt_gguf_arr_float(const mt_gguf_kv *kv, uint64_t i, double *out) {
    if (!kv || kv->type != MT_GV_ARR || kv->arr_type == MT_GV_STR || i >= kv->n) return MT_EINVAL;
    size_t es = scalar_size(kv->arr_type);
    int64_t iv;
    int isf;
    if (!num_at(kv->arr_type, kv->data + i * es, &iv, out, &isf)) return MT_EINVAL;
    if (!isf) *out = (double)iv;
    return MT_OK;
}

/* ---------------- block formats ---------------- */

static float h2f(const uint8_t *p) { return mt_f16_to_f32(le16(p)); }

/* 6-bit scale and min j (0..7) of a Q4_K / Q5_K block's 12 scale bytes. */
static void scale_min_k4(int j, const uint8_t *q, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

static void deq_q4_0(const uint8_t *b, float *y) {
    float d = h2f(b);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)((b[2 + j] & 0xF) - 8) * d;
        y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
    }
}
static void deq_q4_1(const uint8_t *b, float *y) {
    float d = h2f(b), m = h2f(b + 2);
    for (int j = 0; j < 16; j++) {
        y[j] = (float)(b[4 + j] & 0xF) * d + m;
        y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
    }
}
/* 5-bit codes of a Q5_0 / Q5_1 block: qh (32 high bits) and qs (16 bytes). */
static void codes_q5(const uint8_t *qh4, const uint8_t *qs, uint8_t *c) {
    uint32_t qh = le32(qh4);
    for (int j = 0; j < 16; j++) {
        c[j] = (uint8_t)((qs[j] & 0xF) | (((qh >> j) & 1) << 4));
        c[j + 16] = (uint8_t)((qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4));
    }
}
static void deq_q5_0(const uint8_t *b, float *y) {
    float d = h2f(b);
    uint8_t c[32];
    codes_q5(b + 2, b + 6, c);
    for (int j = 0; j < 32; j++) y[j] = (float)(c[j] - 16) * d;
}
static void deq_q5_1(const uint8_t *b, float *y) {
    float d = h2f(b), m = h2f(b + 2);
    uint8_t c[32];
    codes_q5(b + 4, b + 8, c);
    for (int j = 0; j < 32; j++) y[j] = (float)c[j] * d + m;
}
static void deq_q8_0(const uint8_t *b, float *y) {
    float d = h2f(b);
    for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
}
static void deq_q2_k(const uint8_t *b, float *y) {
    const uint8_t *sc = b, *q = b + 16;
    float d = h2f(b + 80), dmin = h2f(b + 82);
    int is = 0;
    for (int n = 0; n < 256; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2)
            for (int half = 0; half < 2; half++) {
                int s = sc[is++];
                float dl = d * (float)(s & 0xF), ml = dmin * (float)(s >> 4);
                for (int l = 0; l < 16; l++) *y++ = dl * (float)((q[l + 16 * half] >> shift) & 3) - ml;
            }
}
static void deq_q3_k(const uint8_t *b, float *y) {
    const uint8_t *hm = b, *q = b + 32, *s12 = b + 96;
    float d = h2f(b + 108);
    /* 16 signed 6-bit scales: low 4 bits from bytes 0..7, high 2 bits from bytes 8..11 */
    int sc[16];
    for (int i = 0; i < 16; i++) {
        int lo = i < 8 ? s12[i] & 0xF : s12[i - 8] >> 4;
        int hi = (s12[8 + i % 4] >> (2 * (i / 4))) & 3;
        sc[i] = (lo | hi << 4) - 32;
    }
    int is = 0;
    uint8_t m = 1;
    for (int n = 0; n < 256; n += 128, q += 32)
        for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1))
            for (int half = 0; half < 2; half++) {
                float dl = d * (float)sc[is++];
                for (int l = 0; l < 16; l++) {
                    int k = l + 16 * half;
                    *y++ = dl * (float)(((q[k] >> shift) & 3) - ((hm[k] & m) ? 0 : 4));
                }
            }
}
static void deq_q4_k(const uint8_t *b, float *y) {
    float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t *s12 = b + 4, *q = b + 16;
    for (int j = 0, is = 0; j < 256; j += 64, q += 32, is += 2) {
        int sc, m;
        scale_min_k4(is, s12, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        scale_min_k4(is + 1, s12, &sc, &m);
        float d2 = d * (float)sc, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] & 0xF) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)(q[l] >> 4) - m2;
    }
}
static void deq_q5_k(const uint8_t *b, float *y) {
    float d = h2f(b), dmin = h2f(b + 2);
    const uint8_t *s12 = b + 4, *qh = b + 16, *ql = b + 48;
    uint8_t u1 = 1, u2 = 2;
    for (int j = 0, is = 0; j < 256; j += 64, ql += 32, is += 2, u1 = (uint8_t)(u1 << 2), u2 = (uint8_t)(u2 << 2)) {
        int sc, m;
        scale_min_k4(is, s12, &sc, &m);
        float d1 = d * (float)sc, m1 = dmin * (float)m;
        scale_min_k4(is + 1, s12, &sc, &m);
        float d2 = d * (float)sc, m2 = dmin * (float)m;
        for (int l = 0; l < 32; l++) *y++ = d1 * (float)((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
        for (int l = 0; l < 32; l++) *y++ = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
    }
}
static void deq_q6_k(const uint8_t *b, float *y) {
    const uint8_t *ql = b, *qh = b + 128;
    const int8_t *sc = (const int8_t *)(b + 192);
    float d = h2f(b + 208);
    for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
        for (int l = 0; l < 32; l++) {
            int is = l / 16;
            int q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
            int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * (float)sc[is] * (float)q1;
            y[l + 32] = d * (float)sc[is + 2] * (float)q2;
            y[l + 64] = d * (float)sc[is + 4] * (float)q3;
            y[l + 96] = d * (float)sc[is + 6] * (float)q4;
        }
}

typedef void (*deq_fn)(const uint8_t *, float *);

static deq_fn deq_of(uint32_t type) {
    switch (type) {
    case MT_GT_Q4_0: return deq_q4_0;
    case MT_GT_Q4_1: return deq_q4_1;
    case MT_GT_Q5_0: return deq_q5_0;
    case MT_GT_Q5_1: return deq_q5_1;
    case MT_GT_Q8_0: return deq_q8_0;
    case MT_GT_Q2_K: return deq_q2_k;
    case MT_GT_Q3_K: return deq_q3_k;
    case MT_GT_Q4_K: return deq_q4_k;
    case MT_GT_Q5_K: return deq_q5_k;
    case MT_GT_Q6_K: return deq_q6_k;
    }
    return NULL;
}

int mt_ggml_can_dequantize(uint32_t type) {
    return type == MT_GT_F32 || type == MT_GT_F16 || type == MT_GT_BF16 || deq_of(type) != NULL;
}

int mt_ggml_dequantize(uint32_t type, const void *src, float *dst, size_t n, mt_err *err) {
    const uint8_t *s = src;
    switch (type) {
    case MT_GT_F32: mt_convert_to_f32(dst, s, MT_F32, n); return MT_OK;
    case MT_GT_F16: mt_convert_to_f32(dst, s, MT_F16, n); return MT_OK;
    case MT_GT_BF16: mt_convert_to_f32(dst, s, MT_BF16, n); return MT_OK;
    }
    deq_fn f = deq_of(type);
    const char *nm = mt_ggml_type_name(type);
    if (!f) return mt_seterr(err, MT_EUNSUPPORTED, "ggml type %s is not supported", nm ? nm : "?");
    size_t be = mt_ggml_block_elems(type), bb = mt_ggml_block_bytes(type);
    if (n % be) return mt_seterr(err, MT_EINVAL, "%zu elements are not whole %s blocks", n, nm);
    for (size_t i = 0; i < n / be; i++) f(s + i * bb, dst + i * be);
    return MT_OK;
}

int mt_ggml_affine_bits(uint32_t type) {
    switch (type) {
    case MT_GT_Q4_0: case MT_GT_Q4_1: return 4;
    case MT_GT_Q5_0: case MT_GT_Q5_1: return 5;
    case MT_GT_Q8_0: return 8;
    }
    return 0;
}

/* float16 bits of f when f is exactly a float16 value; -1 otherwise */
static int32_t exact_f16(float f) {
    uint16_t h = mt_f32_to_f16(f);
    return mt_f16_to_f32(h) == f ? (int32_t)h : -1;
}

int mt_ggml_to_affine(uint32_t type, const void *src, size_t rows, size_t K, uint32_t *w, uint16_t *scales,
                      uint16_t *biases) {
    int bits = mt_ggml_affine_bits(type);
    if (!bits || K % 32) return 0;
    size_t bb = mt_ggml_block_bytes(type), G = K / 32, words = K * (size_t)bits / 32;
    const uint8_t *s = src;
    int exact = 1;
    uint8_t c[32];
    for (size_t r = 0; r < rows; r++) {
        uint32_t *wr = w + r * words;
        memset(wr, 0, words * sizeof *wr);
        for (size_t g = 0; g < G; g++) {
            const uint8_t *b = s + (r * G + g) * bb;
            uint16_t d = le16(b);
            int32_t bias;
            switch (type) {
            case MT_GT_Q4_0:
                for (int j = 0; j < 16; j++) c[j] = b[2 + j] & 0xF, c[j + 16] = b[2 + j] >> 4;
                bias = exact_f16(-8.0f * mt_f16_to_f32(d));
                break;
            case MT_GT_Q4_1:
                for (int j = 0; j < 16; j++) c[j] = b[4 + j] & 0xF, c[j + 16] = b[4 + j] >> 4;
                bias = le16(b + 2);
                break;
            case MT_GT_Q5_0:
                codes_q5(b + 2, b + 6, c);
                bias = exact_f16(-16.0f * mt_f16_to_f32(d));
                break;
            case MT_GT_Q5_1:
                codes_q5(b + 4, b + 8, c);
                bias = le16(b + 2);
                break;
            default: /* Q8_0 */
                for (int j = 0; j < 32; j++) c[j] = (uint8_t)((int8_t)b[2 + j] + 128);
                bias = exact_f16(-128.0f * mt_f16_to_f32(d));
                break;
            }
            if (bias < 0) exact = 0, bias = 0;
            scales[r * G + g] = d;
            biases[r * G + g] = (uint16_t)bias;
            for (int j = 0; j < 32; j++) mt_quant_set_code(wr, g * 32 + (size_t)j, bits, c[j]);
        }
    }
    return exact;
}

int mt_ggml_affine_exact(uint32_t type, const void *src, size_t nblocks) {
    float k;
    switch (type) {
    case MT_GT_Q4_0: k = -8.0f; break;
    case MT_GT_Q5_0: k = -16.0f; break;
    case MT_GT_Q8_0: k = -128.0f; break;
    case MT_GT_Q4_1: case MT_GT_Q5_1: return 1;
    default: return 0;
    }
    size_t bb = mt_ggml_block_bytes(type);
    const uint8_t *s = src;
    for (size_t i = 0; i < nblocks; i++)
        if (exact_f16(k * h2f(s + i * bb)) < 0) return 0;
    return 1;
}
