/* kokoro_load.c - reading Kokoro's weights: checked float32 copies of the checkpoint's
 * tensors, the layer loaders shared by the stages (linear, LayerNorm, LSTM, weight-normed
 * convs in the layouts mlx-audio's sanitize accepts, AdainResBlk1d, AdaINResBlock1).
 *
 * ref: mlx_audio/tts/models/kokoro/kokoro.py (Model.sanitize), istftnet.py
 *      (Decoder.sanitize), base.py (check_array_shape). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/kokoro_int.h"

void kk_fmt(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

const mt_tensor_view *kk_view(kk_loader *L, const char *name) { return mt_safetensors_get(L->st, name); }

int kk_read(kk_loader *L, const char *name, int ndim, const int64_t *dims, float **out) {
    *out = NULL;
    const mt_tensor_view *t = mt_safetensors_get(L->st, name);
    if (!t) return mt_seterr(L->err, MT_ENOTFOUND, "tensor '%s' not found", name);
    if (t->dtype != MT_F32 && t->dtype != MT_F16 && t->dtype != MT_BF16)
        return mt_seterr(L->err, MT_EUNSUPPORTED, "tensor '%s': not float32/float16/bfloat16 (quantized folders are not supported)", name);
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = dims[i] < 0 || t->shape[i] == dims[i];
    if (!ok) {
        char got[96], want[96];
        mt_shape_str(got, sizeof got, t->ndim, t->shape);
        mt_shape_str(want, sizeof want, ndim, dims);
        return mt_seterr(L->err, MT_EFORMAT, "tensor '%s': shape %s, expected %s", name, got, want);
    }
    size_t n = mt_tensor_numel(t);
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) return mt_seterr(L->err, MT_ENOMEM, "tensor '%s': out of memory", name);
    int rc = mt_safetensors_read_f32(L->st, name, p, n, 0, L->err);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    return MT_OK;
}

int kk_linear_load(kk_loader *L, const char *pre, int in, int out, int bias, kk_linear *l) {
    char nm[256];
    memset(l, 0, sizeof *l);
    l->in = in;
    l->out = out;
    kk_fmt(nm, sizeof nm, "%s.weight", pre);
    MT_TRY(kk_read(L, nm, 2, (int64_t[]){out, in}, &l->w));
    if (bias) {
        kk_fmt(nm, sizeof nm, "%s.bias", pre);
        MT_TRY(kk_read(L, nm, 1, (int64_t[]){out}, &l->b));
    }
    return MT_OK;
}

void kk_linear_free(kk_linear *l) {
    if (!l) return;
    free(l->w);
    free(l->b);
    memset(l, 0, sizeof *l);
}

int kk_ln_load(kk_loader *L, const char *wname, const char *bname, int n, kk_ln *l) {
    memset(l, 0, sizeof *l);
    l->n = n;
    MT_TRY(kk_read(L, wname, 1, (int64_t[]){n}, &l->g));
    return kk_read(L, bname, 1, (int64_t[]){n}, &l->b);
}

void kk_ln_free(kk_ln *l) {
    if (!l) return;
    free(l->g);
    free(l->b);
    memset(l, 0, sizeof *l);
}

int kk_lstm_load(kk_loader *L, const char *pre, int in, int hidden, mt_lstm *l) {
    static const char *const sfx[2] = {"", "_reverse"};
    float *wih[2] = {0}, *whh[2] = {0}, *bih[2] = {0}, *bhh[2] = {0};
    char nm[256];
    int rc = MT_OK;
    memset(l, 0, sizeof *l);
    for (int d = 0; d < 2 && !rc; d++) {
        kk_fmt(nm, sizeof nm, "%s.weight_ih_l0%s", pre, sfx[d]);
        rc = kk_read(L, nm, 2, (int64_t[]){4 * (int64_t)hidden, in}, &wih[d]);
        kk_fmt(nm, sizeof nm, "%s.weight_hh_l0%s", pre, sfx[d]);
        if (!rc) rc = kk_read(L, nm, 2, (int64_t[]){4 * (int64_t)hidden, hidden}, &whh[d]);
        kk_fmt(nm, sizeof nm, "%s.bias_ih_l0%s", pre, sfx[d]);
        if (!rc) rc = kk_read(L, nm, 1, (int64_t[]){4 * (int64_t)hidden}, &bih[d]);
        kk_fmt(nm, sizeof nm, "%s.bias_hh_l0%s", pre, sfx[d]);
        if (!rc) rc = kk_read(L, nm, 1, (int64_t[]){4 * (int64_t)hidden}, &bhh[d]);
    }
    if (!rc)
        rc = mt_lstm_init(l, in, hidden, 2, (const float *const *)wih, (const float *const *)whh,
                          (const float *const *)bih, (const float *const *)bhh, L->err);
    if (rc) mt_preferr(L->err, "%s", pre);
    for (int d = 0; d < 2; d++) {
        free(wih[d]); free(whh[d]); free(bih[d]); free(bhh[d]);
    }
    return rc;
}

/* mlx-audio's check_array_shape: a 3-d kernel whose first dim is the largest and whose
 * last two are equal is taken as already in mlx's layout and not transposed. */
static int mlx_layout_guess(const mt_tensor_view *t) {
    return t->ndim == 3 && t->shape[0] >= t->shape[1] && t->shape[0] >= t->shape[2] && t->shape[1] == t->shape[2];
}

int kk_wconv_load(kk_loader *L, const char *pre, const mt_conv1d_shape *s, int has_bias, mt_conv1d *c) {
    char nv[256], ng[256], nb[256];
    float *v = NULL, *g = NULL, *b = NULL;
    memset(c, 0, sizeof *c);
    kk_fmt(nv, sizeof nv, "%s.weight_v", pre);
    kk_fmt(ng, sizeof ng, "%s.weight_g", pre);
    kk_fmt(nb, sizeof nb, "%s.bias", pre);
    const mt_tensor_view *tv = kk_view(L, nv);
    if (!tv) return mt_seterr(L->err, MT_ENOTFOUND, "tensor '%s' not found", nv);
    int keep = mlx_layout_guess(tv), layout;
    int64_t cg = s->c_in / (s->groups > 0 ? s->groups : 1), d[3];
    int64_t n0;
    if (s->transposed && s->groups == 1) {
        /* ConvTranspose1d: torch [in, out, k]; kept as [in, k, out] by the guess */
        layout = keep ? MT_CONV_W_IKO : MT_CONV_W_IOK;
        d[0] = s->c_in;
        d[1] = keep ? s->k : s->c_out;
        d[2] = keep ? s->c_out : s->k;
        n0 = s->c_in;
    } else {
        layout = keep ? MT_CONV_W_OKI : MT_CONV_W_OIK;
        d[0] = s->c_out;
        d[1] = keep ? s->k : cg;
        d[2] = keep ? cg : s->k;
        n0 = s->c_out;
    }
    int rc = kk_read(L, nv, 3, d, &v);
    if (!rc) rc = kk_read(L, ng, 3, (int64_t[]){n0, 1, 1}, &g);
    if (!rc && has_bias) rc = kk_read(L, nb, 1, (int64_t[]){s->c_out}, &b);
    if (!rc) {
        rc = mt_conv1d_init_wn(c, s, v, g, layout, b, L->err);
        if (rc) mt_preferr(L->err, "%s", pre);
    }
    free(v); free(g); free(b);
    return rc;
}

static int ada_load(kk_loader *L, const char *pre, int C, int S, kk_ada *a) {
    char nm[256];
    kk_fmt(nm, sizeof nm, "%s.fc", pre);
    return kk_linear_load(L, nm, S, 2 * C, 1, a);
}

int kk_resblk_load(kk_loader *L, const char *pre, int din, int dout, int S, int up, kk_resblk *b) {
    char nm[256];
    memset(b, 0, sizeof *b);
    b->din = din;
    b->dout = dout;
    b->up = up;
    kk_fmt(nm, sizeof nm, "%s.norm1", pre);
    MT_TRY(ada_load(L, nm, din, S, &b->n1));
    kk_fmt(nm, sizeof nm, "%s.norm2", pre);
    MT_TRY(ada_load(L, nm, dout, S, &b->n2));
    mt_conv1d_shape s1 = {din, dout, 3, 1, 1, 1, 1, 0, 0}, s2 = {dout, dout, 3, 1, 1, 1, 1, 0, 0};
    kk_fmt(nm, sizeof nm, "%s.conv1", pre);
    MT_TRY(kk_wconv_load(L, nm, &s1, 1, &b->conv1));
    kk_fmt(nm, sizeof nm, "%s.conv2", pre);
    MT_TRY(kk_wconv_load(L, nm, &s2, 1, &b->conv2));
    if (din != dout) {
        mt_conv1d_shape sc = {din, dout, 1, 1, 0, 1, 1, 0, 0};
        kk_fmt(nm, sizeof nm, "%s.conv1x1", pre);
        MT_TRY(kk_wconv_load(L, nm, &sc, 0, &b->sc));
    }
    if (up) {
        mt_conv1d_shape sp = {din, din, 3, 2, 0, 1, din, 1, 0};
        kk_fmt(nm, sizeof nm, "%s.pool", pre);
        MT_TRY(kk_wconv_load(L, nm, &sp, 1, &b->pool));
    }
    return MT_OK;
}

void kk_resblk_free(kk_resblk *b) {
    if (!b) return;
    kk_linear_free(&b->n1);
    kk_linear_free(&b->n2);
    mt_conv1d_free(&b->conv1);
    mt_conv1d_free(&b->conv2);
    mt_conv1d_free(&b->sc);
    mt_conv1d_free(&b->pool);
}

int kk_res1_load(kk_loader *L, const char *pre, int C, int k, const int dil[3], int S, kk_res1 *b) {
    char nm[256];
    memset(b, 0, sizeof *b);
    b->C = C;
    for (int i = 0; i < 3; i++) {
        mt_conv1d_shape s1 = {C, C, k, 1, dil[i] * (k - 1) / 2, dil[i], 1, 0, 0};
        mt_conv1d_shape s2 = {C, C, k, 1, (k - 1) / 2, 1, 1, 0, 0};
        kk_fmt(nm, sizeof nm, "%s.convs1.%d", pre, i);
        MT_TRY(kk_wconv_load(L, nm, &s1, 1, &b->c1[i]));
        kk_fmt(nm, sizeof nm, "%s.convs2.%d", pre, i);
        MT_TRY(kk_wconv_load(L, nm, &s2, 1, &b->c2[i]));
        kk_fmt(nm, sizeof nm, "%s.adain1.%d", pre, i);
        MT_TRY(ada_load(L, nm, C, S, &b->a1[i]));
        kk_fmt(nm, sizeof nm, "%s.adain2.%d", pre, i);
        MT_TRY(ada_load(L, nm, C, S, &b->a2[i]));
        kk_fmt(nm, sizeof nm, "%s.alpha1.%d", pre, i);
        MT_TRY(kk_read(L, nm, 3, (int64_t[]){1, C, 1}, &b->al1[i]));
        kk_fmt(nm, sizeof nm, "%s.alpha2.%d", pre, i);
        MT_TRY(kk_read(L, nm, 3, (int64_t[]){1, C, 1}, &b->al2[i]));
        for (int c = 0; c < C; c++)
            if (b->al1[i][c] == 0.0f || b->al2[i][c] == 0.0f)
                return mt_seterr(L->err, MT_EFORMAT, "%s: a snake alpha is 0", pre);
    }
    return MT_OK;
}

void kk_res1_free(kk_res1 *b) {
    if (!b) return;
    for (int i = 0; i < 3; i++) {
        mt_conv1d_free(&b->c1[i]);
        mt_conv1d_free(&b->c2[i]);
        kk_linear_free(&b->a1[i]);
        kk_linear_free(&b->a2[i]);
        free(b->al1[i]);
        free(b->al2[i]);
    }
    memset(b, 0, sizeof *b);
}
