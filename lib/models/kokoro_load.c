/* kokoro_load.c - reading Kokoro's weights: checked float32 copies of the folder's tensors,
 * the layer loaders shared by the stages (linear, LayerNorm, LSTM, weight-normed and plain
 * convs, AdainResBlk1d, AdaINResBlock1).
 *
 * Three folder forms load, told apart per tensor as mlx-audio's sanitize tells them apart:
 *   - the checkpoint's PyTorch names and layouts (LSTM weight_ih_l0[_reverse]..., text-encoder
 *     LayerNorm gamma/beta, conv kernels [out, in/groups, k], ConvTranspose1d [in, out, k]);
 *   - mlx-audio's sanitized parameters, as its convert saves them (Wx_/Wh_/bias_ih_/bias_hh_
 *     forward|backward, LayerNorm weight/bias, kernels transposed to [out, k, in/groups] and
 *     [in, k, out]): names by trying both, kernel layouts by shape (a shape that fits both
 *     layouts is read as mlx-audio reads it: mlx's when the folder is quantized or
 *     check_array_shape says so, else PyTorch's);
 *   - the same, MLX-quantized: a Linear/Embedding X with X.weight uint32 words, X.scales and
 *     X.biases, its bits and group size from config.json's "quantization" (per-module entries
 *     included, mt_config_quant_for), dequantized at load in float32 (scale * q + bias, the
 *     weight mx.quantized_matmul multiplies by) with lib/tensor/quant's affine dequantizer.
 * Kernels are handed to conv1d in PyTorch's layout whichever form was read, so the two float
 * forms of one checkpoint give the same model bit for bit.
 *
 * ref: mlx_audio/tts/models/kokoro/kokoro.py (Model.sanitize, sanitize_lstm_weights),
 *      istftnet.py (Decoder.sanitize), base.py (check_array_shape), mlx_audio/utils.py
 *      (apply_quantization), mlx_audio/lm/convert.py (quantize_model). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/file.h"
#include "models/kokoro_int.h"
#include "tensor/quant.h"

void kk_fmt(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

static int ends_with(const char *s, const char *sfx) {
    size_t n = strlen(s), m = strlen(sfx);
    return n >= m && !strcmp(s + n - m, sfx);
}

void kk_loader_init(kk_loader *L, const mt_safetensors *st, const mt_config *cfg, mt_err *err) {
    memset(L, 0, sizeof *L);
    L->st = st;
    L->cfg = cfg;
    L->err = err;
    size_t n = st ? mt_safetensors_count(st) : 0;
    for (size_t i = 0; i < n && !L->packed; i++) {
        const char *nm = mt_safetensors_at(st, i)->name;
        L->packed = ends_with(nm, ".scales") || ends_with(nm, ".biases");
    }
}

/* ------------------------------------------------------------------ quantized tensors */

/* What a packed X.weight is: its scales and biases, bits, group size, dequantized width K. */
typedef struct kk_qinfo {
    const mt_tensor_view *w, *scales, *biases;
    mt_quant_params qp;
    int64_t rows, K;
} kk_qinfo;

/* *is_q = 1 and *q filled when `name` is an MLX-quantized weight (uint32, or with a .scales
 * beside it); errors for one that is malformed. */
static int qinfo(kk_loader *L, const char *name, const mt_tensor_view *t, int *is_q, kk_qinfo *q) {
    char base[256], ns[288], nb[288];
    *is_q = 0;
    size_t n = strlen(name);
    if (!ends_with(name, ".weight") || n - 7 >= sizeof base) {
        if (t->dtype == MT_U32)
            return mt_seterr(L->err, MT_EFORMAT, "tensor '%s': uint32, but only a Linear/Embedding X.weight can be quantized", name);
        return MT_OK;
    }
    memcpy(base, name, n - 7);
    base[n - 7] = 0;
    kk_fmt(ns, sizeof ns, "%s.scales", base);
    kk_fmt(nb, sizeof nb, "%s.biases", base);
    const mt_tensor_view *s = mt_safetensors_get(L->st, ns), *b = mt_safetensors_get(L->st, nb);
    if (!s && t->dtype != MT_U32) return MT_OK;
    if (!s) return mt_seterr(L->err, MT_EFORMAT, "tensor '%s': uint32 (quantized) but '%s' is missing", name, ns);
    if (t->dtype != MT_U32)
        return mt_seterr(L->err, MT_EFORMAT, "tensor '%s': has '%s' but is not uint32-packed", name, ns);
    if (!b) return mt_seterr(L->err, MT_EFORMAT, "tensor '%s': quantized but '%s' is missing", name, nb);
    int quant = 0;
    MT_TRY(mt_config_quant_for(L->cfg, L->st, base, &quant, &q->qp, L->err));
    if (!quant)
        return mt_seterr(L->err, MT_EFORMAT, "tensor '%s': quantized, but config.json's \"quantization\" does not cover '%s'",
                         name, base);
    if (q->qp.mode != MT_QMODE_AFFINE)
        return mt_seterr(L->err, MT_EUNSUPPORTED, "tensor '%s': %s quantization (only affine is supported)", name,
                         mt_qmode_name(q->qp.mode));
    int bits = q->qp.bits, gs = q->qp.group_size;
    if (t->ndim != 2 || t->shape[0] < 1 || t->shape[1] < 1 || (t->shape[1] * 32) % bits)
        return mt_seterr(L->err, MT_EFORMAT, "tensor '%s': packed words are not [rows, K * %d / 32]", name, bits);
    q->w = t;
    q->scales = s;
    q->biases = b;
    q->rows = t->shape[0];
    q->K = t->shape[1] * 32 / bits;
    int64_t want[2] = {q->rows, q->K / gs};
    for (int i = 0; i < 2; i++) {
        const mt_tensor_view *v = i ? b : s;
        if (v->dtype != MT_F32 && v->dtype != MT_F16 && v->dtype != MT_BF16)
            return mt_seterr(L->err, MT_EFORMAT, "tensor '%s': not float32/float16/bfloat16", v->name);
        if (v->dtype != s->dtype)
            return mt_seterr(L->err, MT_EFORMAT, "tensor '%s': dtype differs from '%s'", v->name, ns);
        if (q->K % gs || v->ndim != 2 || v->shape[0] != want[0] || v->shape[1] != want[1]) {
            char got[96], exp[96];
            mt_shape_str(got, sizeof got, v->ndim, v->shape);
            mt_shape_str(exp, sizeof exp, 2, want);
            return mt_seterr(L->err, MT_EFORMAT, "tensor '%s': shape %s, expected %s for %d-bit groups of %d over %lld columns",
                             v->name, got, exp, bits, gs, (long long)q->K);
        }
    }
    *is_q = 1;
    return MT_OK;
}

const mt_tensor_view *kk_view(kk_loader *L, const char *name) {
    const mt_tensor_view *t = mt_safetensors_get(L->st, name);
    if (!t || t->dtype != MT_U32) return t;
    kk_qinfo q;
    int is_q = 0;
    mt_err quiet = {0};
    mt_err *keep = L->err;
    L->err = &quiet;   /* a malformed one is reported by kk_read */
    int rc = qinfo(L, name, t, &is_q, &q);
    L->err = keep;
    if (rc || !is_q) return t;
    mt_tensor_view *v = &L->qv[L->qv_next];
    L->qv_next = (L->qv_next + 1) % KK_QVIEWS;
    *v = *t;
    v->shape[1] = q.K;
    return v;
}

static int shape_check(kk_loader *L, const char *name, int nd, const int64_t *shape, int ndim, const int64_t *dims) {
    int ok = nd == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = dims[i] < 0 || shape[i] == dims[i];
    if (ok) return MT_OK;
    char got[96], want[96];
    mt_shape_str(got, sizeof got, nd, shape);
    mt_shape_str(want, sizeof want, ndim, dims);
    return mt_seterr(L->err, MT_EFORMAT, "tensor '%s': shape %s, expected %s", name, got, want);
}

int kk_read(kk_loader *L, const char *name, int ndim, const int64_t *dims, float **out) {
    *out = NULL;
    const mt_tensor_view *t = mt_safetensors_get(L->st, name);
    if (!t) return mt_seterr(L->err, MT_ENOTFOUND, "tensor '%s' not found", name);
    kk_qinfo q;
    int is_q = 0;
    MT_TRY(qinfo(L, name, t, &is_q, &q));
    if (is_q) {
        MT_TRY(shape_check(L, name, 2, (int64_t[]){q.rows, q.K}, ndim, dims));
        size_t R = (size_t)q.rows, K = (size_t)q.K, gs = (size_t)q.qp.group_size;
        size_t rw = mt_quant_row_words(K, q.qp.bits), ss = mt_dtype_size(q.scales->dtype);
        float *p = malloc(R * K * sizeof(float));
        if (!p) return mt_seterr(L->err, MT_ENOMEM, "tensor '%s': out of memory", name);
        const unsigned char *w = q.w->data, *sc = q.scales->data, *bi = q.biases->data;
        int rc = MT_OK;
        for (size_t r = 0; r < R && !rc; r++)
            rc = mt_dequantize_affine_row_f32(p + r * K, (const uint32_t *)(w + r * rw * 4), sc + r * (K / gs) * ss,
                                              bi + r * (K / gs) * ss, q.scales->dtype, K, q.qp.bits,
                                              q.qp.group_size, L->err);
        if (rc) {
            free(p);
            mt_preferr(L->err, "tensor '%s'", name);
            return rc;
        }
        *out = p;
        return MT_OK;
    }
    if (t->dtype != MT_F32 && t->dtype != MT_F16 && t->dtype != MT_BF16)
        return mt_seterr(L->err, MT_EUNSUPPORTED, "tensor '%s': not float32/float16/bfloat16", name);
    MT_TRY(shape_check(L, name, t->ndim, t->shape, ndim, dims));
    size_t n = mt_tensor_numel(t);
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) return mt_seterr(L->err, MT_ENOMEM, "tensor '%s': out of memory", name);
    int rc = mt_safetensors_read_f32(L->st, name, p, n, 0, L->err);
    if (rc) {
        free(p);
        return rc;
    }
    mt_mmap_drop(t->data, t->nbytes);   /* the file's pages, now copied (peak RSS: the copy only) */
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

/* mlx-audio's sanitize renames the text encoder's LayerNorm gamma/beta to weight/bias: the
 * name as given, else that rename. */
static const char *ln_name(kk_loader *L, const char *name, char *buf, size_t n) {
    if (mt_safetensors_get(L->st, name)) return name;
    size_t m = strlen(name);
    if (ends_with(name, ".gamma")) kk_fmt(buf, n, "%.*s.weight", (int)(m - 6), name);
    else if (ends_with(name, ".beta")) kk_fmt(buf, n, "%.*s.bias", (int)(m - 5), name);
    else return name;
    return mt_safetensors_get(L->st, buf) ? buf : name;
}

int kk_ln_load(kk_loader *L, const char *wname, const char *bname, int n, kk_ln *l) {
    char b1[256], b2[256];
    memset(l, 0, sizeof *l);
    l->n = n;
    MT_TRY(kk_read(L, ln_name(L, wname, b1, sizeof b1), 1, (int64_t[]){n}, &l->g));
    return kk_read(L, ln_name(L, bname, b2, sizeof b2), 1, (int64_t[]){n}, &l->b);
}

void kk_ln_free(kk_ln *l) {
    if (!l) return;
    free(l->g);
    free(l->b);
    memset(l, 0, sizeof *l);
}

/* One LSTM tensor under PyTorch's name (torch_sfx, e.g. "weight_ih_l0_reverse") or mlx-audio's
 * (mlx_sfx, e.g. "Wx_backward"). */
static int lstm_read(kk_loader *L, const char *pre, const char *torch_sfx, const char *mlx_sfx, int ndim,
                     const int64_t *dims, float **out) {
    char nt[256], nm[256];
    kk_fmt(nt, sizeof nt, "%s.%s", pre, torch_sfx);
    kk_fmt(nm, sizeof nm, "%s.%s", pre, mlx_sfx);
    if (!mt_safetensors_get(L->st, nt) && mt_safetensors_get(L->st, nm)) return kk_read(L, nm, ndim, dims, out);
    if (!mt_safetensors_get(L->st, nt))
        return mt_seterr(L->err, MT_ENOTFOUND, "tensor '%s' (or '%s') not found", nt, nm);
    return kk_read(L, nt, ndim, dims, out);
}

int kk_lstm_load(kk_loader *L, const char *pre, int in, int hidden, mt_lstm *l) {
    static const char *const tsfx[2] = {"", "_reverse"}, *const msfx[2] = {"forward", "backward"};
    float *wih[2] = {0}, *whh[2] = {0}, *bih[2] = {0}, *bhh[2] = {0};
    char t[64], m[64];
    int rc = MT_OK;
    int64_t g4 = 4 * (int64_t)hidden;
    memset(l, 0, sizeof *l);
    for (int d = 0; d < 2 && !rc; d++) {
        kk_fmt(t, sizeof t, "weight_ih_l0%s", tsfx[d]);
        kk_fmt(m, sizeof m, "Wx_%s", msfx[d]);
        rc = lstm_read(L, pre, t, m, 2, (int64_t[]){g4, in}, &wih[d]);
        kk_fmt(t, sizeof t, "weight_hh_l0%s", tsfx[d]);
        kk_fmt(m, sizeof m, "Wh_%s", msfx[d]);
        if (!rc) rc = lstm_read(L, pre, t, m, 2, (int64_t[]){g4, hidden}, &whh[d]);
        kk_fmt(t, sizeof t, "bias_ih_l0%s", tsfx[d]);
        kk_fmt(m, sizeof m, "bias_ih_%s", msfx[d]);
        if (!rc) rc = lstm_read(L, pre, t, m, 1, (int64_t[]){g4}, &bih[d]);
        kk_fmt(t, sizeof t, "bias_hh_l0%s", tsfx[d]);
        kk_fmt(m, sizeof m, "bias_hh_%s", msfx[d]);
        if (!rc) rc = lstm_read(L, pre, t, m, 1, (int64_t[]){g4}, &bhh[d]);
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

/* Conv kernel `name` as a malloc'd float32 array in PyTorch's layout d [3] (Conv1d [out, in/g, k],
 * ConvTranspose1d [in, out, k]).  The folder holds it either so or in mlx's layout, d with its
 * last two axes swapped; a shape that fits only one is read as that one, a shape that fits both
 * (d[1] == d[2]) as mlx-audio's sanitize reads it: mlx's in a quantized folder, else PyTorch's,
 * except a weight_v that check_array_shape takes for mlx's (guess = 1). */
static int conv_read(kk_loader *L, const char *name, const int64_t d[3], int guess, float **out) {
    *out = NULL;
    const mt_tensor_view *t = kk_view(L, name);
    if (!t) return mt_seterr(L->err, MT_ENOTFOUND, "tensor '%s' not found", name);
    int64_t dm[3] = {d[0], d[2], d[1]};
    int fits_t = t->ndim == 3 && !memcmp(t->shape, d, sizeof dm);
    int fits_m = t->ndim == 3 && !memcmp(t->shape, dm, sizeof dm);
    if (!fits_t && !fits_m) {
        char got[96], w1[96], w2[96];
        mt_shape_str(got, sizeof got, t->ndim, t->shape);
        mt_shape_str(w1, sizeof w1, 3, d);
        mt_shape_str(w2, sizeof w2, 3, dm);
        return mt_seterr(L->err, MT_EFORMAT, "tensor '%s': shape %s, expected %s (PyTorch) or %s (mlx)", name, got, w1,
                         w2);
    }
    int mlx = fits_m && (!fits_t || L->packed || (guess && mlx_layout_guess(t)));
    float *v = NULL;
    MT_TRY(kk_read(L, name, 3, mlx ? dm : d, &v));
    if (!mlx || d[1] == 1 || d[2] == 1) {   /* a unit axis: both layouts are the same order */
        *out = v;
        return MT_OK;
    }
    size_t A = (size_t)d[0], B = (size_t)d[1], C = (size_t)d[2];
    float *p = malloc(A * B * C * sizeof(float));
    if (!p) {
        free(v);
        return mt_seterr(L->err, MT_ENOMEM, "tensor '%s': out of memory", name);
    }
    for (size_t a = 0; a < A; a++)
        for (size_t b = 0; b < B; b++)
            for (size_t c = 0; c < C; c++) p[(a * B + b) * C + c] = v[(a * C + c) * B + b];
    free(v);
    *out = p;
    return MT_OK;
}

int kk_wconv_load(kk_loader *L, const char *pre, const mt_conv1d_shape *s, int has_bias, mt_conv1d *c) {
    char nv[256], ng[256], nb[256];
    float *v = NULL, *g = NULL, *b = NULL;
    memset(c, 0, sizeof *c);
    kk_fmt(nv, sizeof nv, "%s.weight_v", pre);
    kk_fmt(ng, sizeof ng, "%s.weight_g", pre);
    kk_fmt(nb, sizeof nb, "%s.bias", pre);
    int64_t cg = s->c_in / (s->groups > 0 ? s->groups : 1), d[3];
    int tr = s->transposed && s->groups == 1;   /* ConvTranspose1d: [in, out, k] */
    d[0] = tr ? s->c_in : s->c_out;
    d[1] = tr ? s->c_out : cg;
    d[2] = s->k;
    int rc = conv_read(L, nv, d, 1, &v);
    if (!rc) rc = kk_read(L, ng, 3, (int64_t[]){d[0], 1, 1}, &g);
    if (!rc && has_bias) rc = kk_read(L, nb, 1, (int64_t[]){s->c_out}, &b);
    if (!rc) {
        rc = mt_conv1d_init_wn(c, s, v, g, tr ? MT_CONV_W_IOK : MT_CONV_W_OIK, b, L->err);
        if (rc) mt_preferr(L->err, "%s", pre);
    }
    free(v); free(g); free(b);
    return rc;
}

int kk_plain_conv_load(kk_loader *L, const char *pre, const mt_conv1d_shape *s, mt_conv1d *c) {
    char nw[256], nb[256];
    float *w = NULL, *b = NULL;
    memset(c, 0, sizeof *c);
    kk_fmt(nw, sizeof nw, "%s.weight", pre);
    kk_fmt(nb, sizeof nb, "%s.bias", pre);
    int rc = conv_read(L, nw, (int64_t[]){s->c_out, s->c_in / s->groups, s->k}, 0, &w);
    if (!rc) rc = kk_read(L, nb, 1, (int64_t[]){s->c_out}, &b);
    if (!rc && (rc = mt_conv1d_init(c, s, w, MT_CONV_W_OIK, b, L->err))) mt_preferr(L->err, "%s", pre);
    free(w); free(b);
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
