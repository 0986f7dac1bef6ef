/* linear.c - dense and MLX-quantized matrix products over borrowed weights.
 * ref: mlx quantized_matmul (x @ dequantize(W)^T, dequantization in the scales' dtype). */
#include "tensor/linear.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>
#include "tensor/ops.h"
#include "tensor/quant.h"

static int check_shape(const mt_tensor_view *t, const char *name, int ndim, const int64_t *want, mt_err *err) {
    if (t->ndim != ndim) return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected %d dims, found %d", name, ndim, t->ndim);
    for (int i = 0; i < ndim; i++)
        if (want[i] && t->shape[i] != want[i])
            return mt_seterr(err, MT_EFORMAT, "tensor '%s': dim %d is %lld, expected %lld", name, i,
                             (long long)t->shape[i], (long long)want[i]);
    return MT_OK;
}

int mt_linear_bind(mt_linear *l, const mt_safetensors *st, const mt_config *cfg, const char *path,
                   size_t out, size_t in, int need_bias, mt_err *err) {
    memset(l, 0, sizeof *l);
    char name[512];
    snprintf(name, sizeof name, "%s.weight", path);
    const mt_tensor_view *w = mt_safetensors_get(st, name);
    if (!w) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
    int quantized = 0;
    mt_quant_params qp = {0};
    MT_TRY(mt_config_quant_for(cfg, st, path, &quantized, &qp, err));
    if (quantized) {
        if (qp.mode != MT_QMODE_AFFINE)
            return mt_seterr(err, MT_EUNSUPPORTED, "'%s': quantization mode %s is not supported yet", path,
                             mt_qmode_name(qp.mode));
        if (w->dtype != MT_U32) return mt_seterr(err, MT_EFORMAT, "tensor '%s': quantized weight must be U32", name);
        if (w->ndim != 2) return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected 2 dims", name);
        size_t K = (size_t)w->shape[1] * 32 / (size_t)qp.bits;
        if (!in) in = K;
        if (!out) out = (size_t)w->shape[0];
        if (in % (size_t)qp.group_size || (in * (size_t)qp.bits) % 32)
            return mt_seterr(err, MT_EFORMAT, "'%s': %zu columns do not fit %d-bit groups of %d", path, in, qp.bits,
                             qp.group_size);
        int64_t ws[2] = {(int64_t)out, (int64_t)(in * (size_t)qp.bits / 32)};
        MT_TRY(check_shape(w, name, 2, ws, err));
        int64_t ss[2] = {(int64_t)out, (int64_t)(in / (size_t)qp.group_size)};
        const char *sfx[2] = {"scales", "biases"};
        const mt_tensor_view *sb[2];
        for (int i = 0; i < 2; i++) {
            snprintf(name, sizeof name, "%s.%s", path, sfx[i]);
            sb[i] = mt_safetensors_get(st, name);
            if (!sb[i]) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
            MT_TRY(check_shape(sb[i], name, 2, ss, err));
            if (sb[i]->dtype != MT_F32 && sb[i]->dtype != MT_F16 && sb[i]->dtype != MT_BF16)
                return mt_seterr(err, MT_EFORMAT, "tensor '%s': dtype %s, expected a float type", name,
                                 mt_dtype_name(sb[i]->dtype));
        }
        if (sb[0]->dtype != sb[1]->dtype)
            return mt_seterr(err, MT_EFORMAT, "'%s': scales and biases differ in dtype", path);
        l->quantized = 1;
        l->scales = sb[0]->data;
        l->biases = sb[1]->data;
        l->sdt = sb[0]->dtype;
        l->bits = qp.bits;
        l->group_size = qp.group_size;
    } else {
        if (w->dtype != MT_F32 && w->dtype != MT_F16 && w->dtype != MT_BF16)
            return mt_seterr(err, MT_EFORMAT, "tensor '%s': dtype %s, expected F32, F16 or BF16", name,
                             mt_dtype_name(w->dtype));
        int64_t ws[2] = {(int64_t)out, (int64_t)in};
        MT_TRY(check_shape(w, name, 2, ws, err));
        out = (size_t)w->shape[0];
        in = (size_t)w->shape[1];
        l->wdt = w->dtype;
    }
    l->w = w->data;
    l->out = out;
    l->in = in;
    if (need_bias >= 0) {
        snprintf(name, sizeof name, "%s.bias", path);
        const mt_tensor_view *b = mt_safetensors_get(st, name);
        if (!b && need_bias > 0) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
        if (b) {
            int64_t bs[1] = {(int64_t)out};
            MT_TRY(check_shape(b, name, 1, bs, err));
            if (!mt_dtype_is_float(b->dtype) || b->dtype == MT_F64)
                return mt_seterr(err, MT_EFORMAT, "tensor '%s': not F32/F16/BF16", name);
            l->bias = b->data;
            l->bdt = b->dtype;
        }
    }
    return MT_OK;
}

void mt_linear_row(const mt_linear *l, size_t r, float *out) {
    if (l->quantized) {
        size_t words = mt_quant_row_words(l->in, l->bits), groups = l->in / (size_t)l->group_size;
        size_t ss = mt_dtype_size(l->sdt);
        mt_dequantize_affine_row(out, (const uint32_t *)l->w + r * words, (const char *)l->scales + r * groups * ss,
                                 (const char *)l->biases + r * groups * ss, l->sdt, l->in, l->bits, l->group_size,
                                 NULL);
    } else {
        mt_convert_to_f32(out, (const char *)l->w + r * l->in * mt_dtype_size(l->wdt), l->wdt, l->in);
    }
}

typedef struct fwd_ctx {
    const mt_linear *l;
    const float *x;
    size_t T;
    float *y;
    float *work;
} fwd_ctx;

static void fwd_rows(void *c, size_t b, size_t e, int tid) {
    fwd_ctx *f = c;
    const mt_linear *l = f->l;
    float *row = f->work + (size_t)tid * l->in;
    for (size_t r = b; r < e; r++) {
        const float *wr;
        if (!l->quantized && l->wdt == MT_F32) wr = (const float *)l->w + r * l->in;
        else { mt_linear_row(l, r, row); wr = row; }
        for (size_t t = 0; t < f->T; t++) f->y[t * l->out + r] = mt_dot(f->x + t * l->in, wr, l->in);
    }
}

void mt_linear_forward(const mt_linear *l, const float *x, size_t T, float *y, float *work, mt_pool *pool) {
    if (!l->quantized && l->wdt == MT_F32 && T > 1) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)l->out, (int)l->in, 1.0f, x, (int)l->in,
                    (const float *)l->w, (int)l->in, 0.0f, y, (int)l->out);
    } else {
        fwd_ctx c = {l, x, T, y, work};
        mt_pool_for(pool, l->out, 16, fwd_rows, &c);
    }
    if (l->bias) {
        size_t bs = mt_dtype_size(l->bdt);
        for (size_t r = 0; r < l->out; r++) {
            float b;
            mt_convert_to_f32(&b, (const char *)l->bias + r * bs, l->bdt, 1);
            for (size_t t = 0; t < T; t++) y[t * l->out + r] += b;
        }
    }
}
