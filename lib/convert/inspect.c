/* inspect.c - per-tensor report of an MLX model folder and quantization error
 * against a float reference. */
#include "convert/inspect.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "convert/gguf_import.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "tensor/quant.h"

void mt_qerr_compute(const float *deq, const float *ref, size_t n, mt_qerr *e) {
    double s = 0, r = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)deq[i] - (double)ref[i];
        s += d * d;
        r += (double)ref[i] * ref[i];
        if (fabs(d) > mx) mx = fabs(d);
    }
    e->rms = n ? sqrt(s / (double)n) : 0;
    e->ref_rms = n ? sqrt(r / (double)n) : 0;
    e->max_abs = mx;
}

typedef struct layer_err {
    const char *path;
    int bits, gs;
    mt_qerr e;
} layer_err;

static int cmp_name(const void *a, const void *b) {
    const mt_tensor_view *x = *(const mt_tensor_view *const *)a, *y = *(const mt_tensor_view *const *)b;
    return strcmp(x->name, y->name);
}

static double rel(const layer_err *l) { return l->e.ref_rms > 0 ? l->e.rms / l->e.ref_rms : l->e.rms; }

static int cmp_worst(const void *a, const void *b) {
    double x = rel(a), y = rel(b);
    return x < y ? 1 : x > y ? -1 : strcmp(((const layer_err *)a)->path, ((const layer_err *)b)->path);
}

/* Module path of a ".weight" name whose ".scales" exists; buf receives it. */
static int quant_path(const mt_safetensors *st, const char *name, char *buf, size_t n) {
    size_t l = strlen(name);
    if (l < 7 || strcmp(name + l - 7, ".weight") || l - 7 + 8 >= n) return 0;
    memcpy(buf, name, l - 7);
    strcpy(buf + l - 7, ".scales");
    int q = mt_safetensors_get(st, buf) != NULL;
    buf[l - 7] = 0;
    return q;
}

static int dequant_layer(const mt_safetensors *st, const char *path, const mt_tensor_view *w, int bits, int gs,
                         int mode, float **out, size_t *n, mt_err *err) {
    char nm[1100];
    snprintf(nm, sizeof nm, "%s.scales", path);
    const mt_tensor_view *s = mt_safetensors_get(st, nm);
    snprintf(nm, sizeof nm, "%s.biases", path);
    const mt_tensor_view *b = mt_safetensors_get(st, nm);
    int fp = mode != MT_QMODE_AFFINE;   /* the fp modes: one-byte scales, no biases */
    if (!s || (!fp && !b) || w->dtype != MT_U32 || w->ndim < 1 || (fp && mt_dtype_size(s->dtype) != 1))
        return mt_seterr(err, MT_EFORMAT, "%s: incomplete quantized layer (%s)", path,
                         fp ? "one-byte scales expected" : "affine needs scales and biases");
    size_t K = (size_t)w->shape[w->ndim - 1] * 32 / (size_t)bits;
    size_t rows = mt_tensor_numel(w) / (size_t)w->shape[w->ndim - 1];
    if (mt_tensor_numel(s) * (size_t)gs != rows * K || (!fp && mt_tensor_numel(b) != mt_tensor_numel(s)))
        return mt_seterr(err, MT_EFORMAT, "%s: scales do not match bits %d group %d", path, bits, gs);
    float *o = malloc(rows * K * sizeof *o + 1);
    uint32_t *wc = malloc(w->nbytes + 4);
    if (!o || !wc) {
        free(o), free(wc);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    memcpy(wc, w->data, w->nbytes);
    int rc = fp ? mt_dequantize_fp(o, wc, s->data, mode, rows, K, 0.0f, err)
                : mt_dequantize_affine(o, wc, s->data, b->data, s->dtype, rows, K, bits, gs, err);
    free(wc);
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    *n = rows * K;
    return MT_OK;
}

int mt_inspect(FILE *out, const char *dir, const char *against, int worst, int json, mt_err *err) {
    mt_safetensors *st = NULL, *ref = NULL;
    mt_config *cfg = NULL;
    int rc = mt_safetensors_open_dir(&st, dir, err);
    if (!rc) rc = mt_config_load(&cfg, dir, err);
    if (!rc && against) rc = mt_safetensors_open_dir(&ref, against, err);
    if (rc) {
        mt_safetensors_free(st);
        mt_safetensors_free(ref);
        mt_config_free(cfg);
        return rc;
    }
    size_t n = mt_safetensors_count(st);
    const mt_tensor_view **tv = malloc((n ? n : 1) * sizeof *tv);
    layer_err *le = malloc((n ? n : 1) * sizeof *le);
    char (*paths)[1024] = malloc((n ? n : 1) * sizeof *paths);
    size_t nle = 0;
    if (!tv || !le || !paths) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) tv[i] = mt_safetensors_at(st, i);
    if (!rc) qsort(tv, n, sizeof *tv, cmp_name);
    uint64_t bytes = 0, params = 0, qbytes = 0, qparams = 0;
    if (!rc && !json)
        fprintf(out, "%-56s %-5s %-18s %5s %5s %12s %7s\n", "tensor", "dtype", "shape", "bits", "group", "bytes",
                "bpw");
    for (size_t i = 0; i < n && !rc; i++) {
        const mt_tensor_view *t = tv[i];
        char path[1024], shape[96];
        int q = quant_path(st, t->name, path, sizeof path), bits = 0, gs = 0, mode = MT_QMODE_AFFINE;
        uint64_t np = mt_tensor_numel(t);
        if (q) {
            int isq = 0;
            mt_quant_params qp;
            rc = mt_config_quant_for(cfg, st, path, &isq, &qp, err);
            if (rc) break;
            if (!isq) {
                rc = mt_seterr(err, MT_EUNSUPPORTED, "%s: packed, but config.json does not quantize it", path);
                break;
            }
            bits = qp.bits, gs = qp.group_size, mode = qp.mode;
            np = np * 32 / (uint64_t)bits;
            /* layer bytes = weight + scales + biases */
            char nm[1100];
            uint64_t lb = t->nbytes;
            snprintf(nm, sizeof nm, "%s.scales", path);
            lb += mt_safetensors_get(st, nm)->nbytes;
            snprintf(nm, sizeof nm, "%s.biases", path);
            const mt_tensor_view *bv = mt_safetensors_get(st, nm);
            if (bv) lb += bv->nbytes;
            qbytes += lb;
            qparams += np;
        }
        int is_aux = 0;
        {
            size_t l = strlen(t->name);
            char wn[1100];
            if (l > 7 && (!strcmp(t->name + l - 7, ".scales") || !strcmp(t->name + l - 7, ".biases"))) {
                snprintf(wn, sizeof wn, "%.*s.weight", (int)(l - 7), t->name);
                char tmp[1024];
                const mt_tensor_view *w = mt_safetensors_get(st, wn);
                is_aux = w && quant_path(st, wn, tmp, sizeof tmp);
            }
        }
        if (!is_aux) params += np;
        bytes += t->nbytes;
        mt_shape_str(shape, sizeof shape, t->ndim, t->shape);
        if (json)
            fprintf(out,
                    "{\"tensor\": \"%s\", \"dtype\": \"%s\", \"shape\": \"%s\", \"bits\": %d, \"group_size\": %d, "
                    "\"bytes\": %zu}\n",
                    t->name, mt_dtype_name(t->dtype), shape, bits, gs, t->nbytes);
        else if (q)
            fprintf(out, "%-56s %-5s %-18s %5d %5d %12zu %7.3f\n", t->name, mt_dtype_name(t->dtype), shape, bits, gs,
                    t->nbytes, np ? 8.0 * (double)t->nbytes / (double)np : 0.0);
        else
            fprintf(out, "%-56s %-5s %-18s %5s %5s %12zu\n", t->name, mt_dtype_name(t->dtype), shape, "-", "-",
                    t->nbytes);
        if (q && ref) {
            const mt_tensor_view *r = mt_safetensors_get(ref, t->name);
            if (!r) continue;
            float *deq = NULL, *rf = NULL;
            size_t m = 0;
            rc = dequant_layer(st, path, t, bits, gs, mode, &deq, &m, err);
            if (rc) break;
            if (mt_tensor_numel(r) != m) {
                free(deq);
                rc = mt_seterr(err, MT_EFORMAT, "%s: reference has %zu elements, quantized layer %zu", t->name,
                               mt_tensor_numel(r), m);
                break;
            }
            rf = malloc(m * sizeof *rf + 1);
            if (!rf) {
                free(deq);
                rc = mt_seterr(err, MT_ENOMEM, "out of memory");
                break;
            }
            rc = mt_safetensors_read_f32(ref, t->name, rf, m, 0, err);
            if (!rc) {
                snprintf(paths[nle], sizeof paths[nle], "%s", path);
                le[nle].path = paths[nle];
                le[nle].bits = bits, le[nle].gs = gs;
                mt_qerr_compute(deq, rf, m, &le[nle].e);
                nle++;
            }
            free(deq), free(rf);
        }
    }
    if (!rc) {
        double bpw = params ? 8.0 * (double)bytes / (double)params : 0;
        double qbpw = qparams ? 8.0 * (double)qbytes / (double)qparams : 0;
        if (json)
            fprintf(out,
                    "{\"total\": {\"tensors\": %zu, \"bytes\": %llu, \"parameters\": %llu, \"bpw\": %.4f, "
                    "\"quantized_bpw\": %.4f}}\n",
                    n, (unsigned long long)bytes, (unsigned long long)params, bpw, qbpw);
        else
            fprintf(out, "total: %zu tensors, %llu bytes, %llu parameters, %.3f bits per weight (quantized layers %.3f)\n",
                    n, (unsigned long long)bytes, (unsigned long long)params, bpw, qbpw);
    }
    if (!rc && ref) {
        if (!json) fprintf(out, "\n%-48s %4s %5s %12s %12s %9s\n", "layer", "bits", "group", "rms", "max", "rel_rms");
        for (size_t i = 0; i < nle; i++) {
            if (json)
                fprintf(out, "{\"layer\": \"%s\", \"bits\": %d, \"group_size\": %d, \"rms\": %.6g, \"max\": %.6g, \"rel_rms\": %.6g}\n",
                        le[i].path, le[i].bits, le[i].gs, le[i].e.rms, le[i].e.max_abs, rel(&le[i]));
            else
                fprintf(out, "%-48s %4d %5d %12.6g %12.6g %9.5f\n", le[i].path, le[i].bits, le[i].gs, le[i].e.rms,
                        le[i].e.max_abs, rel(&le[i]));
        }
        qsort(le, nle, sizeof *le, cmp_worst);
        size_t k = worst < 0 ? 0 : (size_t)worst < nle ? (size_t)worst : nle;
        if (json) {
            fprintf(out, "{\"worst\": [");
            for (size_t i = 0; i < k; i++) fprintf(out, "%s\"%s\"", i ? ", " : "", le[i].path);
            fprintf(out, "]}\n");
        } else {
            fprintf(out, "\nworst %zu layers by relative RMS error:\n", k);
            for (size_t i = 0; i < k; i++)
                fprintf(out, "%3zu. %-48s rel_rms %.5f  rms %.6g  max %.6g\n", i + 1, le[i].path, rel(&le[i]),
                        le[i].e.rms, le[i].e.max_abs);
        }
    }
    free(tv), free(le), free(paths);
    mt_safetensors_free(st);
    mt_safetensors_free(ref);
    mt_config_free(cfg);
    return rc;
}

/* ---------------- against a GGUF file ---------------- */

int mt_inspect_gguf(FILE *out, const char *dir, const char *gguf, int json, mt_err *err) {
    mt_safetensors *st = NULL;
    mt_config *cfg = NULL;
    mt_gguf *g = NULL;
    int rc = mt_safetensors_open_dir(&st, dir, err);
    if (!rc) rc = mt_config_load(&cfg, dir, err);
    if (!rc) rc = mt_gguf_open(&g, gguf, err);
    size_t n = st ? mt_safetensors_count(st) : 0, nexact = 0, ncmp = 0;
    const mt_tensor_view **tv = malloc((n ? n : 1) * sizeof *tv);
    if (!rc && !tv) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) tv[i] = mt_safetensors_at(st, i);
    if (!rc) qsort(tv, n, sizeof *tv, cmp_name);
    if (!rc && !json) fprintf(out, "%-56s %-14s %-8s %12s\n", "tensor", "stored", "gguf", "max_abs");
    for (size_t i = 0; i < n && !rc; i++) {
        const mt_tensor_view *t = tv[i];
        size_t l = strlen(t->name);
        if (l > 7 && (!strcmp(t->name + l - 7, ".scales") || !strcmp(t->name + l - 7, ".biases"))) continue;
        char path[1024], stored[32];
        int q = quant_path(st, t->name, path, sizeof path);
        float *mine = NULL, *ref = NULL;
        size_t m = 0, rn = 0;
        if (q) {
            int isq = 0;
            mt_quant_params qp;
            if ((rc = mt_config_quant_for(cfg, st, path, &isq, &qp, err))) break;
            if (!isq || qp.mode != MT_QMODE_AFFINE) {
                rc = mt_seterr(err, MT_EUNSUPPORTED, "%s: only affine quantization is inspected", path);
                break;
            }
            char nm[1100];
            snprintf(nm, sizeof nm, "%s.scales", path);
            const mt_tensor_view *s = mt_safetensors_get(st, nm);
            snprintf(nm, sizeof nm, "%s.biases", path);
            const mt_tensor_view *b = mt_safetensors_get(st, nm);
            if (!s || !b || t->dtype != MT_U32 || t->ndim < 1) {
                rc = mt_seterr(err, MT_EFORMAT, "%s: incomplete quantized layer", path);
                break;
            }
            size_t K = (size_t)t->shape[t->ndim - 1] * 32 / (size_t)qp.bits, rows = mt_tensor_numel(t) / (size_t)t->shape[t->ndim - 1];
            size_t G = K / (size_t)qp.group_size, es = mt_dtype_size(s->dtype);
            if (mt_tensor_numel(s) != rows * G || mt_tensor_numel(b) != rows * G) {
                rc = mt_seterr(err, MT_EFORMAT, "%s: scales do not match bits %d group %d", path, qp.bits, qp.group_size);
                break;
            }
            m = rows * K;
            mine = malloc(m * sizeof *mine + 1);
            uint32_t *row = malloc(K * (size_t)qp.bits / 8 + 4);
            if (!mine || !row) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
            for (size_t r = 0; r < rows && !rc; r++) {
                memcpy(row, (const uint8_t *)t->data + r * K * (size_t)qp.bits / 8, K * (size_t)qp.bits / 8);
                rc = mt_dequantize_affine_row_f32(mine + r * K, row, (const uint8_t *)s->data + r * G * es,
                                                  (const uint8_t *)b->data + r * G * es, s->dtype, K, qp.bits, qp.group_size, err);
            }
            free(row);
            snprintf(stored, sizeof stored, "%d-bit g%d", qp.bits, qp.group_size);
        } else {
            m = mt_tensor_numel(t);
            mine = malloc(m * sizeof *mine + 1);
            if (!mine) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
            else mt_convert_to_f32(mine, t->data, t->dtype, m);
            snprintf(stored, sizeof stored, "%s", mt_dtype_name(t->dtype));
        }
        if (rc) {
            free(mine);
            break;
        }
        const mt_gguf_tensor *src = NULL;
        mt_err e2 = {0};
        int r2 = mt_gguf_hf_tensor(g, t->name, &ref, &rn, &src, &e2);
        if (r2 == MT_ENOTFOUND) {
            if (json) fprintf(out, "{\"tensor\": \"%s\", \"stored\": \"%s\", \"gguf\": null}\n", t->name, stored);
            else fprintf(out, "%-56s %-14s %-8s %12s\n", t->name, stored, "-", "not in GGUF");
            free(mine);
            ncmp++;
            continue;
        }
        if (r2) {
            free(mine);
            rc = r2;
            *err = e2;
            break;
        }
        double mx = 0;
        int exact = rn == m;
        if (rn != m) mx = INFINITY;
        for (size_t k = 0; k < m && rn == m; k++) {
            if (mine[k] == ref[k] || (isnan(mine[k]) && isnan(ref[k]))) continue;
            exact = 0;
            double d = fabs((double)mine[k] - (double)ref[k]);
            if (!(d <= mx)) mx = d;
        }
        ncmp++;
        nexact += exact;
        const char *gt = mt_ggml_type_name(src->type);
        if (json)
            fprintf(out, "{\"tensor\": \"%s\", \"stored\": \"%s\", \"gguf\": \"%s\", \"max_abs\": %.6g, \"exact\": %s}\n",
                    t->name, stored, gt, mx, exact ? "true" : "false");
        else if (exact) fprintf(out, "%-56s %-14s %-8s %12s\n", t->name, stored, gt, "exact");
        else fprintf(out, "%-56s %-14s %-8s %12.6g\n", t->name, stored, gt, mx);
        free(mine), free(ref);
    }
    if (!rc) {
        if (json) fprintf(out, "{\"lossless\": %zu, \"tensors\": %zu}\n", nexact, ncmp);
        else fprintf(out, "lossless: %zu of %zu tensors hold the GGUF's values exactly\n", nexact, ncmp);
    }
    free(tv);
    mt_gguf_free(g);
    mt_safetensors_free(st);
    mt_config_free(cfg);
    return rc;
}
