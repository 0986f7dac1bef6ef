/* kvfile.c - KV-state files: mlx-lm's prompt-cache safetensors layout, plain or in a
 * zstd frame (see kvfile.h). */
#include "kv/kvfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "core/file.h"
#include "io/st_write.h"
#include "kv/kvfile_int.h"
#include "tensor/dtype.h"

#define KV_MAX_LAYERS 4096
#define ZSTD_MAGIC 0xFD2FB528u

void mt_kvfile_free(mt_kvfile *f) {
    if (!f) return;
    free(f->label);
    free(f->owned);
    if (f->map.data) mt_mmap_close(&f->map);
    free(f->tv);
    json_decref(f->meta);
    json_decref(f->ours);
    free(f->layers);
    free(f->tokens);
    free(f);
}

/* ---- reading ---- */

static const char *meta_str(const mt_kvfile *f, const char *key) {
    json_t *v = f->meta ? json_object_get(f->meta, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static const mt_tensor_view *find_tensor(const mt_kvfile *f, const char *name) {
    for (size_t i = 0; i < f->nt; i++)
        if (!strcmp(f->tv[i].name, name)) return &f->tv[i];
    return NULL;
}

/* a count: mlx-lm >= 0.32.2 stores it as a scalar integer tensor "i.j" named in the
 * scalars list; older versions as the metadata string "0.i.j" (Python's str(int)) */
static int layer_count(const mt_kvfile *f, int layer, int j, size_t *out, mt_err *err) {
    char key[48];
    if (f->layout == 2) {
        snprintf(key, sizeof key, "%d.%d", layer, j);
        const mt_tensor_view *t = find_tensor(f, key);
        if (!t) return mt_seterr(err, MT_EFORMAT, "%s: layer %d: scalar \"%s\" is missing", f->label, layer, key);
        long long v;
        if (t->ndim != 0 && !(t->ndim == 1 && t->shape[0] == 1))
            return mt_seterr(err, MT_EFORMAT, "%s: \"%s\" is not a scalar", f->label, key);
        if (t->dtype == MT_I32 && t->nbytes == 4) { int32_t x; memcpy(&x, t->data, 4); v = x; }
        else if (t->dtype == MT_I64 && t->nbytes == 8) { int64_t x; memcpy(&x, t->data, 8); v = x; }
        else if (t->dtype == MT_U32 && t->nbytes == 4) { uint32_t x; memcpy(&x, t->data, 4); v = x; }
        else return mt_seterr(err, MT_EFORMAT, "%s: scalar \"%s\" is not an integer", f->label, key);
        if (v < 0 || v > (1ll << 40)) return mt_seterr(err, MT_EFORMAT, "%s: scalar \"%s\" = %lld is out of range", f->label, key, v);
        *out = (size_t)v;
        return MT_OK;
    }
    snprintf(key, sizeof key, "0.%d.%d", layer, j - 2);
    const char *s = meta_str(f, key);
    if (!s) return mt_seterr(err, MT_EFORMAT, "%s: layer %d: metadata \"%s\" is missing", f->label, layer, key);
    size_t v = 0;
    if (!*s || strlen(s) > 12) return mt_seterr(err, MT_EFORMAT, "%s: metadata \"%s\" = \"%.40s\" is not a count", f->label, key, s);
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return mt_seterr(err, MT_EFORMAT, "%s: metadata \"%s\" = \"%.40s\" is not a count", f->label, key, s);
        v = v * 10 + (size_t)(*p - '0');
    }
    *out = v;
    return MT_OK;
}

/* tensor `name` must be [1, H, T, last] of a float dtype (or U32 when packed) */
static int layer_tensor(mt_kvfile *f, int layer, const char *name, int packed, const mt_tensor_view **out,
                        mt_err *err) {
    const mt_tensor_view *t = find_tensor(f, name);
    if (!t) return mt_seterr(err, MT_EFORMAT, "%s: layer %d: tensor \"%s\" is missing", f->label, layer, name);
    if (t->ndim != 4 || t->shape[0] != 1)
        return mt_seterr(err, MT_EFORMAT, "%s: tensor \"%s\" is not [1, heads, tokens, dim]", f->label, name);
    if (packed ? t->dtype != MT_U32 : !(t->dtype == MT_F32 || t->dtype == MT_F16 || t->dtype == MT_BF16))
        return mt_seterr(err, MT_EFORMAT, "%s: tensor \"%s\" has dtype %s, expected %s", f->label, name,
                         mt_dtype_name(t->dtype), packed ? "U32" : "F32, F16 or BF16");
    *out = t;
    return MT_OK;
}

static const char *layer_class(const mt_kvfile *f, int i) {
    char key[32];
    snprintf(key, sizeof key, "%d.%d", f->layout == 2 ? 1 : 2, i);
    return meta_str(f, key);
}

static int parse_layer(mt_kvfile *f, int i, mt_err *err) {
    mt_kvfile_layer *L = &f->layers[i];
    char key[64];
    const char *cls = layer_class(f, i);
    if (!strcmp(cls, "KVCache")) L->cls = MT_KVC_PLAIN;
    else if (!strcmp(cls, "RotatingKVCache")) L->cls = MT_KVC_ROTATING;
    else if (!strcmp(cls, "QuantizedKVCache")) L->cls = MT_KVC_QUANTIZED;
    else
        return mt_seterr(err, MT_EFORMAT, "%s: layer %d: cache class \"%.60s\" is not supported (KVCache, "
                         "RotatingKVCache, QuantizedKVCache)", f->label, i, cls);
    if (L->cls == MT_KVC_QUANTIZED) {
        static const char *const sub[6] = {"0.0", "0.1", "0.2", "1.0", "1.1", "1.2"};
        for (int j = 0; j < 6; j++) {
            snprintf(key, sizeof key, "%d.%s", i, sub[j]);
            MT_TRY(layer_tensor(f, i, key, j == 0 || j == 3, &L->t[j], err));
        }
        size_t g, b;
        MT_TRY(layer_count(f, i, 2, &L->offset, err));
        MT_TRY(layer_count(f, i, 3, &g, err));
        MT_TRY(layer_count(f, i, 4, &b, err));
        if (!(b == 2 || b == 3 || b == 4 || b == 5 || b == 6 || b == 8))
            return mt_seterr(err, MT_EFORMAT, "%s: layer %d: %zu-bit quantization is not one of MLX's (2-6, 8)", f->label, i, b);
        if (!(g == 32 || g == 64 || g == 128))
            return mt_seterr(err, MT_EFORMAT, "%s: layer %d: group size %zu is not 32, 64 or 128", f->label, i, g);
        L->bits = (int)b;
        L->group = (int)g;
        const mt_tensor_view *kq = L->t[0], *ks = L->t[1];
        L->slots = (size_t)kq->shape[2];
        int64_t H = kq->shape[1], D = ks->shape[3] * (int64_t)g;
        if (kq->shape[3] * 32 != D * (int64_t)b)
            return mt_seterr(err, MT_EFORMAT, "%s: layer %d: packed keys of %lld words do not hold %lld %d-bit values",
                             f->label, i, (long long)kq->shape[3], (long long)D, L->bits);
        for (int j = 0; j < 6; j++) {
            const mt_tensor_view *t = L->t[j];
            int64_t last = (j == 0 || j == 3) ? kq->shape[3] : ks->shape[3];
            if (t->shape[1] != H || t->shape[2] != (int64_t)L->slots || t->shape[3] != last)
                return mt_seterr(err, MT_EFORMAT, "%s: layer %d: tensor \"%s\" does not match the layer's shape",
                                 f->label, i, t->name);
            if (j != 0 && j != 3 && t->dtype != ks->dtype)
                return mt_seterr(err, MT_EFORMAT, "%s: layer %d: scales and biases differ in dtype", f->label, i);
        }
        if (L->offset > L->slots)
            return mt_seterr(err, MT_EFORMAT, "%s: layer %d: offset %zu but %zu rows", f->label, i, L->offset, L->slots);
        L->slots = L->offset;   /* rows past the offset are unused */
        return MT_OK;
    }
    snprintf(key, sizeof key, "%d.0", i);
    MT_TRY(layer_tensor(f, i, key, 0, &L->t[0], err));
    snprintf(key, sizeof key, "%d.1", i);
    MT_TRY(layer_tensor(f, i, key, 0, &L->t[1], err));
    const mt_tensor_view *k = L->t[0], *v = L->t[1];
    /* (the values' last dimension may differ: multi-head latent attention caches) */
    if (v->shape[1] != k->shape[1] || v->shape[2] != k->shape[2] || v->dtype != k->dtype)
        return mt_seterr(err, MT_EFORMAT, "%s: layer %d: keys and values differ in shape or dtype", f->label, i);
    L->slots = (size_t)k->shape[2];
    if (L->cls == MT_KVC_PLAIN) {
        if (f->layout == 2) MT_TRY(layer_count(f, i, 2, &L->offset, err));
        else {
            snprintf(key, sizeof key, "0.%d", i);
            const char *ms = meta_str(f, key);
            if (!ms || *ms) return mt_seterr(err, MT_EFORMAT, "%s: layer %d: a KVCache's metadata \"%s\" must be \"\"", f->label, i, key);
            L->offset = L->slots;
        }
        if (L->offset > L->slots)
            return mt_seterr(err, MT_EFORMAT, "%s: layer %d: offset %zu but %zu rows", f->label, i, L->offset, L->slots);
        L->slots = L->offset;
        return MT_OK;
    }
    if (f->layout == 2) {   /* state: keys, values, offset, keep, max_size, _idx */
        MT_TRY(layer_count(f, i, 2, &L->offset, err));
        MT_TRY(layer_count(f, i, 3, &L->keep, err));
        MT_TRY(layer_count(f, i, 4, &L->max_size, err));
        MT_TRY(layer_count(f, i, 5, &L->idx, err));
    } else {                /* meta_state: keep, max_size, offset, _idx */
        MT_TRY(layer_count(f, i, 2, &L->keep, err));
        MT_TRY(layer_count(f, i, 3, &L->max_size, err));
        MT_TRY(layer_count(f, i, 4, &L->offset, err));
        MT_TRY(layer_count(f, i, 5, &L->idx, err));
    }
    if (L->max_size <= L->keep || L->idx > L->slots || L->slots > L->max_size + L->offset ||
        (L->offset <= L->slots ? L->idx != L->offset : L->idx <= L->keep))
        return mt_seterr(err, MT_EFORMAT, "%s: layer %d: rotating cache state is inconsistent (keep %zu, max_size %zu, "
                         "offset %zu, %zu rows, next slot %zu)", f->label, i, L->keep, L->max_size, L->offset, L->slots, L->idx);
    return MT_OK;
}

static int parse_ours(mt_kvfile *f, mt_err *err) {
    const char *s = meta_str(f, f->layout == 2 ? "0.mlx_tools" : "1.mlx_tools");
    f->model = meta_str(f, f->layout == 2 ? "0.model" : "1.model");
    if (!s) return MT_OK;
    json_error_t je;
    f->ours = json_loads(s, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(f->ours))
        return mt_seterr(err, MT_EFORMAT, "%s: metadata \"mlx_tools\" is not a JSON object", f->label);
    json_t *v;
    if ((v = json_object_get(f->ours, "fingerprint")) && json_is_string(v)) f->fingerprint = json_string_value(v);
    if ((v = json_object_get(f->ours, "text")) && json_is_string(v)) f->text = json_string_value(v);
    if ((v = json_object_get(f->ours, "version")) && json_is_string(v)) f->version = json_string_value(v);
    if ((v = json_object_get(f->ours, "kv_type")) && json_is_string(v)) f->kv_type = json_string_value(v);
    v = json_object_get(f->ours, "tokens");
    if (v) {
        if (!json_is_array(v)) return mt_seterr(err, MT_EFORMAT, "%s: \"tokens\" is not an array of token ids", f->label);
        size_t n = json_array_size(v);
        f->tokens = malloc((n ? n : 1) * sizeof *f->tokens);
        if (!f->tokens) return mt_seterr(err, MT_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *x = json_array_get(v, i);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
                return mt_seterr(err, MT_EFORMAT, "%s: \"tokens\"[%zu] is not a token id", f->label, i);
            f->tokens[i] = (int32_t)json_integer_value(x);
        }
        f->n_tokens = n;
    }
    return MT_OK;
}

/* buf: owned (freed here) unless map is given, whose bytes it is (closed here on failure) */
static int parse_owned(char *owned, const char *buf, size_t n, const mt_mmap *map, const char *label, mt_kvfile **out,
                       mt_err *err) {
    mt_kvfile *f = calloc(1, sizeof *f);
    if (!f || !(f->label = strdup(label))) {
        free(owned);
        if (map) { mt_mmap m2 = *map; mt_mmap_close(&m2); }
        free(f);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    f->owned = owned;
    if (map) f->map = *map;
    f->buf = buf;
    f->len = n;
    int rc = mt_safetensors_parse_header(buf, n, label, &f->tv, &f->nt, &f->meta, err);
    if (!rc && !json_is_object(f->meta))
        rc = mt_seterr(err, MT_EFORMAT, "%s: no \"__metadata__\": not a prompt-cache file", label);
    if (!rc) {
        /* mlx-lm >= 0.32.2: [user metadata, class names, scalars] with scalars[0] = "";
         * before: [meta_states, user metadata, class names] */
        const char *s20 = meta_str(f, "2.0");
        if (!s20) rc = mt_seterr(err, MT_EFORMAT, "%s: no cache classes: not a prompt-cache file", label);
        else f->layout = *s20 ? 1 : 2;
    }
    int L = 0;
    while (!rc && L < KV_MAX_LAYERS && layer_class(f, L)) L++;
    if (!rc && L == 0) rc = mt_seterr(err, MT_EFORMAT, "%s: no cache classes: not a prompt-cache file", label);
    if (!rc && L == KV_MAX_LAYERS) rc = mt_seterr(err, MT_EFORMAT, "%s: more than %d layers", label, KV_MAX_LAYERS);
    if (!rc) {
        f->n_layers = L;
        f->layers = calloc((size_t)L, sizeof *f->layers);
        if (!f->layers) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    for (int i = 0; !rc && i < L; i++) rc = parse_layer(f, i, err);
    for (int i = 0; i < L && !rc; i++) {   /* one geometry and token count for the file */
        const mt_kvfile_layer *ly = &f->layers[i];
        int H = (int)ly->t[0]->shape[1];
        int D = ly->cls == MT_KVC_QUANTIZED ? (int)(ly->t[1]->shape[3] * ly->group) : (int)ly->t[0]->shape[3];
        int Dv = ly->cls == MT_KVC_QUANTIZED ? D : (int)ly->t[1]->shape[3];
        mt_dtype dt = ly->cls == MT_KVC_QUANTIZED ? ly->t[1]->dtype : ly->t[0]->dtype;
        if (i == 0) { f->kv_heads = H; f->head_dim = D; f->v_head_dim = Dv; f->dtype = dt; }
        else if (H != f->kv_heads || D != f->head_dim || Dv != f->v_head_dim || dt != f->dtype)
            rc = mt_seterr(err, MT_EFORMAT, "%s: layer %d: %d heads of %d / %d (%s) where layer 0 has %d of %d / %d (%s)",
                           label, i, H, D, Dv, mt_dtype_name(dt), f->kv_heads, f->head_dim, f->v_head_dim,
                           mt_dtype_name(f->dtype));
        else if (ly->offset != f->layers[0].offset)
            rc = mt_seterr(err, MT_EFORMAT, "%s: layer %d holds %zu tokens, layer 0 %zu", label, i, ly->offset,
                           f->layers[0].offset);
        if (!rc && (H < 1 || D < 1 || D > 4096 || Dv < 1 || Dv > 4096))
            rc = mt_seterr(err, MT_EFORMAT, "%s: layer %d: %d heads of dimension %d", label, i, H, D);
        if (!rc && (ly->cls == MT_KVC_QUANTIZED) != (f->layers[0].cls == MT_KVC_QUANTIZED))
            rc = mt_seterr(err, MT_EFORMAT, "%s: layer %d: quantized and float layers mixed", label, i);
        if (!rc && ly->cls == MT_KVC_QUANTIZED && (ly->bits != f->layers[0].bits || ly->group != f->layers[0].group))
            rc = mt_seterr(err, MT_EFORMAT, "%s: layer %d: quantized differently from layer 0", label, i);
    }
    if (!rc) rc = parse_ours(f, err);
    if (!rc && f->tokens && f->n_tokens != f->layers[0].offset)
        rc = mt_seterr(err, MT_EFORMAT, "%s: %zu token ids for a cache of %zu tokens", label, f->n_tokens, f->layers[0].offset);
    if (rc) { mt_kvfile_free(f); return rc; }
    *out = f;
    return MT_OK;
}

static int is_zstd(const void *p, size_t n) {
    const unsigned char *b = p;
    return n >= 4 && ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24) == ZSTD_MAGIC;
}

int mt_kvfile_parse(const void *data, size_t n, const char *label, mt_kvfile **out, mt_err *err) {
    char *buf;
    size_t len;
    int compressed = is_zstd(data, n);
    if (compressed) {
        int rc = mt_zstd_decompress(data, n, (size_t)1 << 40, &buf, &len, err);
        if (rc) return mt_preferr(err, "%s", label);
    } else {
        buf = malloc(n ? n : 1);
        if (!buf) return mt_seterr(err, MT_ENOMEM, "out of memory");
        memcpy(buf, data, n);
        len = n;
    }
    MT_TRY(parse_owned(buf, buf, len, NULL, label, out, err));
    (*out)->compressed = compressed;
    (*out)->file_bytes = n;
    return MT_OK;
}

int mt_kvfile_read(const char *path, mt_kvfile **out, mt_err *err) {
    mt_mmap mm;
    int rc = mt_mmap_open(&mm, path, err);
    if (rc) return rc;
    if (is_zstd(mm.data, mm.size)) {
        rc = mt_kvfile_parse(mm.data, mm.size, path, out, err);
        mt_mmap_close(&mm);
        return rc;
    }
    /* plain: parsed in place; the map lives as long as the file object */
    size_t n = mm.size;
    MT_TRY(parse_owned(NULL, (const char *)mm.data, n, &mm, path, out, err));
    (*out)->file_bytes = n;
    return MT_OK;
}

/* ---- file -> cache ---- */

/* rows [row0, row0 + n) of a [1, H, T, D] tensor, every head -> cache slots [slot0, slot0 + n)
 * (rows of H*D, type dt); head by head, so the file is read in order */
static void place_rows(void *dst, mt_dtype dt, const mt_tensor_view *t, size_t row0, size_t n, size_t slot0, size_t H,
                       size_t D) {
    size_t es = mt_dtype_size(t->dtype), ed = mt_dtype_size(dt), T = (size_t)t->shape[2];
    float tmp[4096];
    for (size_t h = 0; h < H; h++)
        for (size_t r = 0; r < n; r++) {
            const char *src = (const char *)t->data + (h * T + row0 + r) * D * es;
            char *o = (char *)dst + ((slot0 + r) * H + h) * D * ed;
            if (t->dtype == dt) { memcpy(o, src, D * es); continue; }
            mt_convert_to_f32(tmp, src, t->dtype, D);
            mt_convert_from_f32(o, tmp, dt, D);
        }
}

/* the position held by ring slot j of a rotating layer (SIZE_MAX: none) */
static size_t ring_pos(size_t j, size_t offset, size_t slots, size_t idx, size_t keep) {
    if (offset <= slots) return j < offset ? j : SIZE_MAX;
    if (j < keep) return j;
    size_t ring = slots - keep, newest = idx - 1;   /* idx > keep once wrapped (checked) */
    size_t back = (newest - keep + ring - (j - keep)) % ring;   /* how many slots older than the newest */
    return back < offset ? offset - 1 - back : SIZE_MAX;
}

/* 1 when every layer is a RotatingKVCache with the same state (the --max-kv-size cache) */
static int all_rotating(const mt_kvfile *f) {
    const mt_kvfile_layer *a = &f->layers[0];
    for (int l = 0; l < f->n_layers; l++) {
        const mt_kvfile_layer *b = &f->layers[l];
        if (b->cls != MT_KVC_ROTATING || b->keep != a->keep || b->max_size != a->max_size || b->idx != a->idx ||
            b->slots != a->slots)
            return 0;
    }
    return 1;
}

int mt_kvfile_windows(const mt_kvfile *f, int *window) {
    int any = 0;
    int rot = all_rotating(f);
    for (int l = 0; l < f->n_layers; l++) {
        window[l] = !rot && f->layers[l].cls == MT_KVC_ROTATING ? (int)f->layers[l].max_size : 0;
        any |= window[l] > 0;
    }
    return any;
}

int mt_model_kv_windows(const mt_model *m, int *window) {
    int any = 0;
    for (int l = 0; l < m->hp.n_layers; l++) {
        window[l] = m->layers[l].sliding && m->hp.sliding_window > 0 ? m->hp.sliding_window : 0;
        any |= window[l] > 0;
    }
    return any;
}

/* placing the file's rows into the cache, layer by layer (over the model's pool when given) */
typedef struct place_ctx {
    const mt_kvfile *f;
    mt_kvcache *c;
    int rot, quant;
    mt_dtype dt;
    int rc;          /* the first failure (quantized layers only) */
} place_ctx;

static void place_layers(void *vctx, size_t b, size_t e, int tid) {
    (void)tid;
    place_ctx *x = vctx;
    const mt_kvfile *f = x->f;
    mt_kvcache *c = x->c;
    int rot = x->rot, quant = x->quant;
    mt_dtype dt = x->dt;
    size_t H = (size_t)f->kv_heads, D = (size_t)f->head_dim, Dv = (size_t)f->v_head_dim, rb = H * D * mt_dtype_size(dt);
    size_t rv = H * Dv * mt_dtype_size(dt);
    for (int l = (int)b; l < (int)e; l++) {
        const mt_kvfile_layer *ly = &f->layers[l];
        if (quant) {
            mt_err le = {0};
            if (kvfile_quant_layer(c, f, l, &le) && !x->rc) x->rc = MT_EFORMAT;
        }
        else if (rot || ly->cls == MT_KVC_PLAIN) {
            place_rows(c->k[l], dt, ly->t[0], 0, ly->slots, 0, H, D);
            place_rows(c->v[l], dt, ly->t[1], 0, ly->slots, 0, H, Dv);
            if (rot && ly->slots > ly->offset) {   /* unfilled slots: zeros, as mlx's buffer */
                memset((char *)c->k[l] + ly->offset * rb, 0, (ly->slots - ly->offset) * rb);
                memset((char *)c->v[l] + ly->offset * rv, 0, (ly->slots - ly->offset) * rv);
            }
        } else {
            /* expand a sliding layer's ring: zeros where the window no longer reaches */
            memset(c->k[l], 0, ly->offset * rb);
            memset(c->v[l], 0, ly->offset * rv);
            for (size_t j = 0; j < ly->slots; j++) {
                size_t p = ring_pos(j, ly->offset, ly->slots, ly->idx, ly->keep);
                if (p == SIZE_MAX) continue;
                place_rows(c->k[l], dt, ly->t[0], j, 1, p, H, D);
                place_rows(c->v[l], dt, ly->t[1], j, 1, p, H, Dv);
            }
        }
    }
}

int mt_kvfile_to_cache(const mt_kvfile *f, const mt_model *m, mt_kvcache **out, mt_err *err) {
    const mt_kvfile_layer *L0 = &f->layers[0];
    int rot = all_rotating(f);
    for (int l = 0; m && l < m->hp.n_layers; l++)
        if (m->layers[l].state_floats)
            return mt_seterr(err, MT_EUNSUPPORTED, "%s: prompt-cache files of models with recurrent layers are not "
                             "supported yet", f->label);
    if (m) {
        const mt_decoder_hp *hp = &m->hp;
        /* the model's cache rows: n_kv_heads x head_dim keys and values, or its own geometry
         * (multi-head latent attention: kv_heads x kv_head_dim keys, kv_v_dim values) */
        int mh = m->kv_heads ? m->kv_heads : hp->n_kv_heads, md = m->kv_heads ? m->kv_head_dim : hp->head_dim;
        size_t mv = m->kv_heads ? m->kv_v_dim : (size_t)mh * (size_t)md;
        if (f->n_layers != hp->n_layers || f->kv_heads != mh || f->head_dim != md ||
            (size_t)f->kv_heads * (size_t)f->v_head_dim != mv)
            return mt_seterr(err, MT_EINVAL, "%s: a cache of %d layers x %d KV heads x %d (values %d) does not fit this "
                             "model (%d x %d x %d, values %zu)", f->label, f->n_layers, f->kv_heads, f->head_dim,
                             f->v_head_dim, hp->n_layers, mh, md, mv / (size_t)mh);
        for (size_t i = 0; i < f->n_tokens; i++)
            if (f->tokens[i] >= hp->vocab)
                return mt_seterr(err, MT_EINVAL, "%s: token id %d (position %zu) is beyond the model's vocabulary of %d",
                                 f->label, f->tokens[i], i, hp->vocab);
    }
    for (int l = 0; l < f->n_layers && !rot; l++) {
        const mt_kvfile_layer *ly = &f->layers[l];
        if (ly->cls != MT_KVC_ROTATING) continue;
        /* a sliding-window layer (gemma3, llama's layer_types): its ring becomes rows at their positions */
        if (ly->keep)
            return mt_seterr(err, MT_EFORMAT, "%s: layer %d: a rotating layer that keeps %zu tokens beside other "
                             "kinds of layers is not supported", f->label, l, ly->keep);
        if (m && !(m->layers[l].sliding && (size_t)m->hp.sliding_window == ly->max_size))
            return mt_seterr(err, MT_EINVAL, "%s: layer %d is a rotating cache of %zu tokens, but the model's layer %d "
                             "is not a sliding-window layer of that size", f->label, l, ly->max_size, l);
    }
    mt_kvcache *c;
    MT_TRY(mt_kvcache_new_geom(&c, f->n_layers, f->kv_heads, f->head_dim, err));
    int rc = MT_OK;
    if (f->v_head_dim != f->head_dim) rc = mt_kvcache_set_vdim(c, (size_t)f->kv_heads * (size_t)f->v_head_dim, err);
    int f16 = f->dtype == MT_F16, quant = L0->cls == MT_KVC_QUANTIZED;
    mt_dtype dt = f16 ? MT_F16 : MT_F32;
    if (!rc && f16) rc = mt_kvcache_set_f16(c, 1, err);
    if (!rc && rot) rc = mt_kvcache_set_max(c, L0->max_size, L0->keep, err);
    if (!rc && quant) rc = kvfile_quant_begin(c, f, err);
    size_t nslots = rot ? L0->slots : L0->offset;
    if (!rc) rc = mt_kvcache_reserve(c, nslots ? nslots : 1, err);
    place_ctx px = {f, c, rot, quant, dt, MT_OK};
    if (!rc) {
        if (m && m->pool) mt_pool_for(m->pool, (size_t)f->n_layers, 1, place_layers, &px);
        else place_layers(&px, 0, (size_t)f->n_layers, 0);
        if (px.rc) rc = mt_seterr(err, MT_EFORMAT, "packed rows of an unexpected width");
    }
    if (!rc) rc = mt_kvcache_restore(c, L0->offset, nslots, rot ? L0->idx : L0->offset, err);
    for (int l = 0; !rc && !rot && !quant && l < f->n_layers; l++)   /* mlx's buffer rows: kept for writing back */
        if (f->layers[l].cls == MT_KVC_PLAIN) { c->mlx_rows = (size_t)f->layers[l].t[0]->shape[2]; break; }
    if (rc) {
        mt_kvcache_free(c);
        return mt_preferr(err, "%s", f->label);
    }
    *out = c;
    return MT_OK;
}

/* ---- cache -> bytes (mlx-lm >= 0.32.2's layout) ---- */

enum { E_K, E_V, E_SCALAR, E_Q0 };   /* E_Q0 + j: quantized part j (kq ks kb vq vs vb) */

typedef struct ent {
    int layer, kind;
    long long value;                 /* E_SCALAR */
    size_t slot0, rows, valid;       /* K/V: cache slots [slot0, slot0 + valid), zeros after */
} ent;

typedef struct ser {
    const mt_kvcache *c;
    mt_st_entry *e;
    ent *x;
    size_t kv_heads;
} ser;

static int fill_tensor(void *user, size_t idx, void *dst, mt_err *err) {
    ser *s = user;
    const ent *x = &s->x[idx];
    const mt_st_entry *e = &s->e[idx];
    if (x->kind == E_SCALAR) {
        int32_t v = (int32_t)x->value;
        memcpy(dst, &v, 4);
        return MT_OK;
    }
    if (x->kind >= E_Q0) return kvfile_quant_fill(s->c, x->layer, x->kind - E_Q0, x->slot0, x->rows, e, dst, err);
    const mt_kvcache *c = s->c;
    size_t H = (size_t)e->shape[1], T = (size_t)e->shape[2], D = (size_t)e->shape[3];
    size_t es = mt_dtype_size(e->dtype);
    const char *src = x->kind == E_V ? c->v[x->layer] : c->k[x->layer];
    for (size_t h = 0; h < H; h++)
        for (size_t t = 0; t < T; t++) {
            char *o = (char *)dst + (h * T + t) * D * es;
            if (t < x->valid) memcpy(o, src + ((x->slot0 + t) * H + h) * D * es, D * es);
            else memset(o, 0, D * es);
        }
    return MT_OK;
}

const char *mt_kvcache_type_name(const mt_kvcache *c, char *buf, size_t n) {
    if (c->quantized) return kvfile_quant_name(c, buf, n);   /* affine or rotation; a cache not yet converted is float */
    return c->f16 ? "f16" : "f32";
}

static int put_kv(char **kv, size_t *n, const char *k, const char *v, mt_err *err) {
    kv[2 * *n] = strdup(k);
    kv[2 * *n + 1] = strdup(v);
    (*n)++;
    return kv[2 * *n - 2] && kv[2 * *n - 1] ? MT_OK : mt_seterr(err, MT_ENOMEM, "out of memory");
}

/* tensors and metadata in save_prompt_cache's order: per layer its state (K, V, then the
 * scalars), the metadata tree [user metadata, class names, scalars] */
typedef struct plan {
    mt_st_entry *e;
    ent *x;
    char **names;
    size_t n;
    char **kv;
    size_t nkv;
    char *ours;
} plan;

static void plan_free(plan *p) {
    for (size_t i = 0; p->names && i < p->n; i++) free(p->names[i]);
    for (size_t i = 0; p->kv && i < 2 * p->nkv; i++) free(p->kv[i]);
    free(p->names);
    free(p->e);
    free(p->x);
    free(p->kv);
    free(p->ours);
}

static int build_plan(const mt_kvcache *c, const mt_kvmeta *mt, plan *p, mt_err *err) {
    memset(p, 0, sizeof *p);
    int L = c->n_layers, quant = kvfile_quantized(c);
    size_t per = quant ? 9 : 6, cap = (size_t)L * per;
    size_t H = (size_t)mt->kv_heads, D = c->kv_dim / H;
    p->e = calloc(cap, sizeof *p->e);
    p->x = calloc(cap, sizeof *p->x);
    p->names = calloc(cap, sizeof *p->names);
    size_t kvcap = (size_t)L * 10 + 8;   /* per layer: the class and up to 4 scalars (2 entries each) */
    p->kv = calloc(2 * kvcap, sizeof *p->kv);
    if (!p->e || !p->x || !p->names || !p->kv) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = MT_OK;
    size_t nscal = 0;
    char k[64], v[64];
    /* user metadata first ("0.*"), as tree_flatten visits the dict */
    rc = put_kv(p->kv, &p->nkv, "0.model", mt->model ? mt->model : "", err);
    if (!rc) rc = put_kv(p->kv, &p->nkv, "0.tokenizer_config", "{\"trust_remote_code\": false}", err);
    json_t *o = json_object();
    char tb[32];
    json_object_set_new(o, "version", json_string(MT_VERSION));
    if (mt->fingerprint) json_object_set_new(o, "fingerprint", json_string(mt->fingerprint));
    json_object_set_new(o, "kv_type", json_string(mt_kvcache_type_name(c, tb, sizeof tb)));
    if (mt->tokens) {
        json_t *a = json_array();
        for (size_t i = 0; i < mt->n_tokens; i++) json_array_append_new(a, json_integer(mt->tokens[i]));
        json_object_set_new(o, "tokens", a);
    }
    if (mt->text) {
        json_t *t = json_stringn(mt->text, mt->text_len);
        if (t) json_object_set_new(o, "text", t);
    }
    p->ours = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!rc && !p->ours) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc && !mt->mlx_only) rc = put_kv(p->kv, &p->nkv, "0.mlx_tools", p->ours, err);
    for (int i = 0; i < L && !rc; i++) {
        int win = mt->window && !c->max_size && !quant ? mt->window[i] : 0;
        const char *cls = quant ? "QuantizedKVCache" : c->max_size || win ? "RotatingKVCache" : "KVCache";
        snprintf(k, sizeof k, "1.%d", i);
        rc = put_kv(p->kv, &p->nkv, k, cls, err);
        size_t slot0 = 0, rows = c->len, valid = c->len;
        long long sc[4];
        int nsc;
        if (quant) {
            int g, b;
            kvfile_quant_params(c, &g, &b);
            sc[0] = (long long)c->len; sc[1] = g; sc[2] = b;
            nsc = 3;
        }
        else if (c->max_size) {
            rows = c->bufcap;
            valid = c->len < c->bufcap ? c->len : c->bufcap;
            sc[0] = (long long)c->len; sc[1] = (long long)c->keep; sc[2] = (long long)c->max_size; sc[3] = (long long)c->idx;
            nsc = 4;
        } else if (win) {
            rows = valid = c->len < (size_t)win ? c->len : (size_t)win;
            slot0 = c->len - rows;
            sc[0] = (long long)c->len; sc[1] = 0; sc[2] = win; sc[3] = (long long)rows;
            nsc = 4;
        } else {
            rows = c->mlx_rows > c->len ? c->mlx_rows : c->len;   /* mlx's step-rounded buffer, zeros past len */
            sc[0] = (long long)c->len;
            nsc = 1;
        }
        int nt = quant ? 6 : 2;
        for (int j = 0; j < nt && !rc; j++) {
            size_t q = p->n++;
            if (quant) snprintf(k, sizeof k, "%d.%d.%d", i, j / 3, j % 3);
            else snprintf(k, sizeof k, "%d.%d", i, j);
            if (!(p->names[q] = strdup(k))) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); break; }
            mt_st_entry *e = &p->e[q];
            e->name = p->names[q];
            e->ndim = 4;
            e->shape[0] = 1;
            e->shape[1] = (int64_t)H;
            e->shape[2] = (int64_t)rows;
            p->x[q] = (ent){.layer = i, .kind = quant ? E_Q0 + j : j ? E_V : E_K, .slot0 = slot0, .rows = rows,
                            .valid = valid};
            if (quant) kvfile_quant_entry(c, j, D, e);
            else {
                e->dtype = c->f16 ? MT_F16 : MT_F32;
                e->shape[3] = (int64_t)(j ? c->v_dim / H : D);   /* values: their own width (latent attention) */
            }
            e->nbytes = (size_t)e->shape[1] * rows * (size_t)e->shape[3] * mt_dtype_size(e->dtype);
        }
        for (int j = 0; j < nsc && !rc; j++) {
            size_t q = p->n++;
            snprintf(k, sizeof k, "%d.%d", i, nt == 6 ? 2 + j : 2 + j);
            if (!(p->names[q] = strdup(k))) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); break; }
            p->e[q] = (mt_st_entry){.name = p->names[q], .dtype = MT_I32, .ndim = 0, .nbytes = 4};
            p->x[q] = (ent){.layer = i, .kind = E_SCALAR, .value = sc[j]};
            nscal++;
            snprintf(v, sizeof v, "2.%zu.0", nscal);
            rc = put_kv(p->kv, &p->nkv, v, k, err);
            snprintf(v, sizeof v, "2.%zu.1", nscal);
            if (!rc) rc = put_kv(p->kv, &p->nkv, v, "scalar", err);
        }
    }
    if (!rc) rc = put_kv(p->kv, &p->nkv, "2.0", "", err);
    return rc;
}

/* a sink for the bytes: an fd, a zstd stream on an fd, or memory */
typedef struct sink {
    int fd;
    ZSTD_CCtx *z;
    char *zbuf;
    size_t zcap;
    char *mem;
    size_t mlen, mcap;
    size_t written;
} sink;

static int sink_put(sink *s, const void *p, size_t n, int end, mt_err *err) {
    if (!s->z && s->fd < 0) {
        if (s->mlen + n > s->mcap) {
            size_t cap = s->mcap ? s->mcap : 4096;
            while (cap < s->mlen + n) cap *= 2;
            char *m = realloc(s->mem, cap);
            if (!m) return mt_seterr(err, MT_ENOMEM, "out of memory");
            s->mem = m;
            s->mcap = cap;
        }
        memcpy(s->mem + s->mlen, p, n);
        s->mlen += n;
        return MT_OK;
    }
    if (!s->z) {
        if (mt_write_fd_all(s->fd, p, n)) return mt_seterr(err, MT_EIO, "write failed: %s", strerror(errno));
        s->written += n;
        return MT_OK;
    }
    ZSTD_inBuffer in = {p, n, 0};
    for (;;) {
        ZSTD_outBuffer o = {s->zbuf, s->zcap, 0};
        size_t r = ZSTD_compressStream2(s->z, &o, &in, end ? ZSTD_e_end : ZSTD_e_continue);
        if (ZSTD_isError(r)) return mt_seterr(err, MT_EIO, "zstd: %s", ZSTD_getErrorName(r));
        if (o.pos && mt_write_fd_all(s->fd, s->zbuf, o.pos)) return mt_seterr(err, MT_EIO, "write failed: %s", strerror(errno));
        s->written += o.pos;
        if (end ? r == 0 : in.pos == in.size) break;
    }
    return MT_OK;
}

static int serialize_to(const mt_kvcache *c, const mt_kvmeta *meta, sink *s, mt_err *err) {
    if (c->quantized && c->qscheme != MT_KVQ_AFFINE)
        return mt_seterr(err, MT_EINVAL, "a %d-bit rotated (turbo) KV cache has no mlx-lm layout and cannot be saved; "
                         "use --kv-bits 8 or 4", c->qbits);
    mt_kvmeta m2;
    if (meta && meta->kv_heads < 1) { m2 = *meta; m2.kv_heads = c->n_kv_heads; meta = &m2; }
    if (!meta || meta->kv_heads < 1 || c->kv_dim % (size_t)meta->kv_heads || c->v_dim % (size_t)meta->kv_heads)
        return mt_seterr(err, MT_EINVAL, "internal: the cache's KV head count is not given");
    plan p;
    char *hdr = NULL;
    size_t hlen = 0, *order = NULL;
    void *buf = NULL;
    int rc = build_plan(c, meta, &p, err);
    if (!rc && !(order = malloc((p.n ? p.n : 1) * sizeof *order))) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) rc = mt_st_mlx_order((const char *const *)p.names, p.n, order, err);
    if (!rc) rc = mt_st_header(p.e, p.n, order, (const char *const *)p.kv, p.nkv, &hdr, &hlen, err);
    if (!rc) {
        unsigned char lenb[8];
        for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
        rc = sink_put(s, lenb, 8, 0, err);
        if (!rc) rc = sink_put(s, hdr, hlen, p.n == 0, err);
    }
    size_t cap = 0;
    ser sr = {c, p.e, p.x, (size_t)meta->kv_heads};
    for (size_t k = 0; k < p.n && !rc; k++) {
        size_t i = order[k];
        if (p.e[i].nbytes > cap) {
            free(buf);
            cap = p.e[i].nbytes;
            if (!(buf = malloc(cap))) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); break; }
        }
        if (p.e[i].nbytes) rc = fill_tensor(&sr, i, buf, err);
        if (!rc) rc = sink_put(s, buf, p.e[i].nbytes, k + 1 == p.n, err);
    }
    free(buf);
    free(hdr);
    free(order);
    plan_free(&p);
    return rc;
}

int mt_kvfile_serialize(const mt_kvcache *c, const mt_kvmeta *meta, char **out, size_t *len, mt_err *err) {
    if (c->has_state)
        return mt_seterr(err, MT_EUNSUPPORTED, "prompt-cache files of models with recurrent layers are not supported yet");
    if (c->padded || c->no_kv)
        return mt_seterr(err, MT_EUNSUPPORTED, "prompt-cache files of models with KV-shared layers or K/V rows of "
                         "different widths (gemma4) are not supported yet");
    sink s = {.fd = -1};
    int rc = serialize_to(c, meta, &s, err);
    if (rc) { free(s.mem); return rc; }
    *out = s.mem;
    *len = s.mlen;
    return MT_OK;
}

/* open a temporary file beside path and a sink on it */
static int sink_open(sink *s, const char *path, int level, char **tmp, mt_err *err) {
    memset(s, 0, sizeof *s);
    s->fd = -1;
    MT_TRY(mt_tmp_open(path, tmp, &s->fd, err));
    if (level >= 0) {
        s->z = ZSTD_createCCtx();
        s->zcap = ZSTD_CStreamOutSize();
        s->zbuf = malloc(s->zcap);
        if (!s->z || !s->zbuf) {
            ZSTD_freeCCtx(s->z);
            free(s->zbuf);
            close(s->fd);
            mt_tmp_discard(*tmp);
            free(*tmp);
            return mt_seterr(err, MT_ENOMEM, "out of memory");
        }
        ZSTD_CCtx_setParameter(s->z, ZSTD_c_compressionLevel, level);
        ZSTD_CCtx_setParameter(s->z, ZSTD_c_checksumFlag, 1);
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        if (nc > 1) ZSTD_CCtx_setParameter(s->z, ZSTD_c_nbWorkers, (int)(nc > 8 ? 8 : nc));   /* ignored without MT */
    }
    return MT_OK;
}

static int sink_close(sink *s, const char *path, char *tmp, int rc, size_t *bytes, mt_err *err) {
    ZSTD_freeCCtx(s->z);
    free(s->zbuf);
    if (!rc && fsync(s->fd) != 0) rc = mt_seterr(err, MT_EIO, "%s: fsync: %s", path, strerror(errno));
    if (close(s->fd) != 0 && !rc) rc = mt_seterr(err, MT_EIO, "%s: close: %s", path, strerror(errno));
    if (!rc) rc = mt_tmp_commit(tmp, path, err);
    else {
        mt_tmp_discard(tmp);
        mt_preferr(err, "%s", path);
    }
    free(tmp);
    if (!rc && bytes) *bytes = s->written;
    return rc;
}

int mt_kvfile_write(const char *path, const mt_kvcache *c, const mt_kvmeta *meta, int level, size_t *bytes,
                    mt_err *err) {
    if (c->has_state)   /* (as mt_kvfile_serialize: a file without the state would continue wrongly) */
        return mt_seterr(err, MT_EUNSUPPORTED, "prompt-cache files of models with recurrent layers are not supported yet");
    if (c->padded || c->no_kv)
        return mt_seterr(err, MT_EUNSUPPORTED, "prompt-cache files of models with KV-shared layers or K/V rows of "
                         "different widths (gemma4) are not supported yet");
    sink s;
    char *tmp;
    MT_TRY(sink_open(&s, path, level, &tmp, err));
    int rc = serialize_to(c, meta, &s, err);
    return sink_close(&s, path, tmp, rc, bytes, err);
}

int mt_kvfile_write_bytes(const char *path, const void *data, size_t n, int level, size_t *bytes, mt_err *err) {
    sink s;
    char *tmp;
    MT_TRY(sink_open(&s, path, level, &tmp, err));
    int rc = sink_put(&s, data, n, 1, err);
    return sink_close(&s, path, tmp, rc, bytes, err);
}

/* ---- fingerprint ---- */

typedef struct fnv { uint64_t a, b; } fnv;

static void fnv_add(fnv *h, const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t a = h->a, b = h->b;
    for (size_t i = 0; i < n; i++) {
        a = (a ^ s[i]) * 0x100000001b3ull;
        b = (b ^ s[i]) * 0x100000001b3ull;
        b ^= b >> 29;
    }
    h->a = a;
    h->b = b;
}

static int fnv_file(fnv *h, const char *dir, const char *name, size_t max, int required, mt_err *err) {
    char *p = mt_path_join(dir, name), *buf = NULL;
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        free(p);
        if (!required) { fnv_add(h, "-", 1); return MT_OK; }
        return mt_seterr(err, MT_EIO, "%s/%s: %s", dir, name, strerror(errno));
    }
    size_t cap = 1 << 20, total = 0;
    buf = malloc(cap);
    int rc = buf ? MT_OK : mt_seterr(err, MT_ENOMEM, "out of memory");
    while (!rc && total < max) {
        size_t want = max - total < cap ? max - total : cap;
        ssize_t r = read(fd, buf, want);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) rc = mt_seterr(err, MT_EIO, "%s: %s", p, strerror(errno));
        if (r <= 0) break;
        fnv_add(h, buf, (size_t)r);
        total += (size_t)r;
    }
    fnv_add(h, name, strlen(name) + 1);
    close(fd);
    free(buf);
    free(p);
    return rc;
}

int mt_model_fingerprint(const char *dir, char out[33], mt_err *err) {
    fnv h = {0xcbf29ce484222325ull, 0x84222325cbf29ce4ull};
    MT_TRY(fnv_file(&h, dir, "config.json", SIZE_MAX, 1, err));
    char *idx = mt_path_join(dir, "model.safetensors.index.json");
    if (!idx) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int has_idx = mt_file_exists(idx);
    free(idx);
    if (has_idx) MT_TRY(fnv_file(&h, dir, "model.safetensors.index.json", SIZE_MAX, 1, err));
    else {
        /* the header of the single weights file: names, dtypes, shapes, offsets */
        char *w = mt_path_join(dir, "model.safetensors");
        if (!w) return mt_seterr(err, MT_ENOMEM, "out of memory");
        unsigned char lb[8] = {0};
        int fd = open(w, O_RDONLY | O_CLOEXEC);
        free(w);
        uint64_t hl = 0;
        if (fd >= 0) {
            if (read(fd, lb, 8) == 8)
                for (int i = 7; i >= 0; i--) hl = hl << 8 | lb[i];
            close(fd);
        }
        if (hl > MT_ST_MAX_HEADER) hl = MT_ST_MAX_HEADER;
        MT_TRY(fnv_file(&h, dir, "model.safetensors", (size_t)hl + 8, 0, err));
    }
    MT_TRY(fnv_file(&h, dir, "tokenizer.json", SIZE_MAX, 0, err));
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.a, (unsigned long long)h.b);
    return MT_OK;
}
