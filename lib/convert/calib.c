/* calib.c - activation statistics over calibration text and the
 * activation-weighted clipping search of calibrated affine quantization. */
#include "convert/calib.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "models/model.h"
#include "tensor/quant.h"
#include "text/tokenizer.h"

typedef struct calib_ent {
    char *path;
    size_t K;
    double *sum;     /* [K] sum of x^2 */
    float *mean;     /* [K] E[x^2], filled at the end */
    size_t rows;
} calib_ent;

struct mt_calib {
    calib_ent *e;
    size_t n, cap;
    size_t tokens;
    int failed;
};

void mt_calib_free(mt_calib *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) free(c->e[i].path), free(c->e[i].sum), free(c->e[i].mean);
    free(c->e);
    free(c);
}

size_t mt_calib_tokens(const mt_calib *c) { return c ? c->tokens : 0; }

const float *mt_calib_moments(const mt_calib *c, const char *path, size_t K) {
    if (!c || !path) return NULL;
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].K == K && !strcmp(c->e[i].path, path)) return c->e[i].mean;
    return NULL;
}

static void observe(void *user, const char *path, const float *x, size_t T, size_t in) {
    mt_calib *c = user;
    if (c->failed) return;
    calib_ent *e = NULL;
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].path, path)) e = &c->e[i];
    if (!e) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 64;
            calib_ent *q = realloc(c->e, cap * sizeof *q);
            if (!q) { c->failed = 1; return; }
            c->e = q, c->cap = cap;
        }
        e = &c->e[c->n];
        memset(e, 0, sizeof *e);
        e->path = strdup(path);
        e->K = in;
        e->sum = calloc(in ? in : 1, sizeof *e->sum);
        if (!e->path || !e->sum) { free(e->path), free(e->sum); c->failed = 1; return; }
        c->n++;
    }
    if (e->K != in) return;
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < in; i++) e->sum[i] += (double)x[t * in + i] * x[t * in + i];
    e->rows += T;
}

/* Plain text, or JSONL whose lines are objects with a "text" string. */
static int calib_text(const char *path, char **out, size_t *outlen, mt_err *err) {
    char *buf;
    size_t len;
    MT_TRY(mt_read_file(path, &buf, &len, err));
    size_t p = 0;
    while (p < len && (buf[p] == ' ' || buf[p] == '\n' || buf[p] == '\r' || buf[p] == '\t')) p++;
    if (p < len && buf[p] == '{') {
        char *txt = malloc(len + 1);
        size_t n = 0;
        if (!txt) { free(buf); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
        char *save = NULL;
        for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            json_t *j = json_loads(line, 0, NULL);
            json_t *t = j ? json_object_get(j, "text") : NULL;
            if (json_is_string(t)) {
                size_t l = json_string_length(t);
                if (n + l + 1 <= len) {
                    memcpy(txt + n, json_string_value(t), l);
                    n += l;
                    txt[n++] = '\n';
                }
            }
            json_decref(j);
        }
        txt[n] = 0;
        free(buf);
        buf = txt, len = n;
    }
    if (len == 0) { free(buf); return mt_seterr(err, MT_EINVAL, "%s: no calibration text", path); }
    *out = buf, *outlen = len;
    return MT_OK;
}

int mt_calib_collect(mt_calib **out, const char *model_dir, const char *text_path, size_t max_tokens,
                     mt_pool *pool, mt_err *err) {
    *out = NULL;
    if (!max_tokens) max_tokens = 4096;
    char *text = NULL, *tokpath = NULL;
    size_t tlen = 0, nids = 0;
    int32_t *ids = NULL;
    mt_tokenizer *tok = NULL;
    mt_model *m = NULL;
    mt_kvcache *kv = NULL;
    float *logits = NULL;
    mt_calib *c = calloc(1, sizeof *c);
    int rc = c ? MT_OK : mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) rc = calib_text(text_path, &text, &tlen, err);
    if (!rc && !(tokpath = mt_path_join(model_dir, "tokenizer.json"))) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) rc = mt_tokenizer_load(&tok, tokpath, err);
    if (!rc) rc = mt_tokenizer_encode(tok, text, tlen, 0, &ids, &nids, err);
    if (!rc && nids == 0) rc = mt_seterr(err, MT_EINVAL, "%s: no calibration tokens", text_path);
    if (!rc) rc = mt_model_load(&m, model_dir, pool, err);
    if (!rc) rc = mt_kvcache_new(&kv, m, err);
    if (!rc && !(logits = malloc((size_t)m->hp.vocab * sizeof *logits)))
        rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) {
        m->on_linear_input = observe;
        m->hook_user = c;
        size_t n = nids < max_tokens ? nids : max_tokens;
        for (size_t s = 0; s < n && !rc; s += 512) {
            size_t T = n - s < 512 ? n - s : 512;
            mt_kvcache_reset(kv);
            rc = mt_model_forward(m, kv, ids + s, T, logits, 0, err);
        }
        c->tokens = n;
        if (!rc && c->failed) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < (c ? c->n : 0) && !rc; i++) {
        calib_ent *e = &c->e[i];
        e->mean = malloc(e->K * sizeof *e->mean);
        if (!e->mean) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); break; }
        for (size_t k = 0; k < e->K; k++) e->mean[k] = e->rows ? (float)(e->sum[k] / (double)e->rows) : 1.0f;
    }
    free(logits);
    mt_kvcache_free(kv);
    mt_model_free(m);
    mt_tokenizer_free(tok);
    free(ids), free(tokpath), free(text);
    if (rc) mt_calib_free(c);
    else *out = c;
    return rc;
}

double mt_calib_error(const float *x, const float *m, const uint32_t *w, const void *scales, const void *biases,
                      mt_dtype sdt, size_t rows, size_t K, int bits, int group_size) {
    float *d = malloc((K ? K : 1) * sizeof *d);
    if (!d || group_size <= 0) { free(d); return -1; }
    size_t rw = mt_quant_row_words(K, bits), G = K / (size_t)group_size, ss = mt_dtype_size(sdt);
    double tot = 0;
    for (size_t r = 0; r < rows; r++) {
        if (mt_dequantize_affine_row(d, w + r * rw, (const char *)scales + r * G * ss,
                                     (const char *)biases + r * G * ss, sdt, K, bits, group_size, NULL)) {
            free(d);
            return -1;
        }
        for (size_t i = 0; i < K; i++) {
            double e = (double)x[r * K + i] - d[i];
            tot += (m ? m[i] : 1.0) * e * e;
        }
    }
    free(d);
    return tot;
}

#define NF 7   /* factors 1.0, 0.95, ..., 0.7 */

int mt_calib_quantize(uint32_t *w, void *scales, void *biases, mt_dtype sdt, const float *x, const float *m,
                      size_t rows, size_t K, int bits, int group_size, mt_err *err) {
    /* validate (and produce the plain result, overwritten below) */
    MT_TRY(mt_quantize_affine(w, scales, biases, sdt, x, rows, K, bits, group_size, 0, err));
    size_t g = (size_t)group_size, G = K / g;
    float *lo = malloc(rows * G * sizeof *lo), *hi = malloc(rows * G * sizeof *hi);
    if (!lo || !hi) {
        free(lo), free(hi);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    uint32_t qw[32];      /* one group: g*bits/32 <= 128*8/32 words */
    unsigned char sb[8];  /* one scale + one bias of up to 4 bytes */
    float v[128];
    for (size_t r = 0; r < rows; r++) {
        for (size_t gi = 0; gi < G; gi++) {
            const float *xs = x + r * K + gi * g;
            const float *ms = m + gi * g;
            float mn = INFINITY, mx = -INFINITY;
            for (size_t j = 0; j < g; j++) {
                float t = xs[j];
                if (t < mn) mn = t;
                if (t > mx) mx = t;
            }
            /* use sdt-rounded extremes so f = 1 reproduces the plain rule */
            mt_convert_from_f32(v, &mn, sdt, 1), mt_convert_to_f32(&mn, v, sdt, 1);
            mt_convert_from_f32(v, &mx, sdt, 1), mt_convert_to_f32(&mx, v, sdt, 1);
            float mid = 0.5f * (mn + mx);
            double best = -1;
            float blo = mn, bhi = mx;
            for (int a = 0; a < NF; a++) {
                for (int b = 0; b < NF; b++) {
                    float fl = 1.0f - 0.05f * (float)a, fh = 1.0f - 0.05f * (float)b;
                    float l = a ? mid + (mn - mid) * fl : mn, h = b ? mid + (mx - mid) * fh : mx;
                    if (mt_quantize_affine_range(qw, sb, sb + 4, sdt, xs, &l, &h, 1, g, bits, group_size, NULL))
                        continue;
                    double e = mt_calib_error(xs, ms, qw, sb, sb + 4, sdt, 1, g, bits, group_size);
                    if (e >= 0 && (best < 0 || e < best)) best = e, blo = l, bhi = h;
                }
            }
            lo[r * G + gi] = blo, hi[r * G + gi] = bhi;
        }
    }
    int rc = mt_quantize_affine_range(w, scales, biases, sdt, x, lo, hi, rows, K, bits, group_size, err);
    free(lo), free(hi);
    return rc;
}
