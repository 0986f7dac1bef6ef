/* shortconv.c - lfm2's gated short convolution (a token mixer with recurrent state) and the
 * depthwise causal convolution the state-space mixers share.
 *   in_proj(x) -> B, C, x'  (thirds);  y = C * conv(B * x');  out_proj(y)
 * conv is depthwise over the last L_cache inputs; the sequence's state keeps the L_cache - 1
 * inputs before the next row (mlx-lm's ArraysCache entry 0).
 * ref: mlx_lm/models/lfm2.py (ShortConv). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/decoder_int.h"
#include "models/ssm_int.h"

int mt_conv1d_bind(mt_model *m, const char *path, size_t C, size_t K, int bias, mt_conv1d *cv, mt_err *err) {
    char name[320];
    cv->C = C;
    cv->K = K;
    snprintf(name, sizeof name, "%s.weight", path);
    const mt_tensor_view *t = mt_safetensors_get(m->st, name);
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
    /* mlx's Conv1d weight [C, K, 1]; a torch checkpoint's [C, 1, K] is the same values */
    if (t->ndim != 3 || (size_t)t->shape[0] != C || (size_t)t->shape[1] * (size_t)t->shape[2] != K ||
        (t->shape[1] != 1 && t->shape[2] != 1))
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected shape [%zu, %zu, 1]", name, C, K);
    if (!(cv->w = malloc(C * K * sizeof(float)))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    MT_TRY(mt_safetensors_read_f32(m->st, name, cv->w, C * K, 0, err));
    snprintf(name, sizeof name, "%s.bias", path);
    t = mt_safetensors_get(m->st, name);
    if (bias > 0 || (bias < 0 && t)) {
        if (!t) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
        if (t->ndim != 1 || (size_t)t->shape[0] != C)
            return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected shape [%zu]", name, C);
        if (!(cv->b = malloc(C * sizeof(float)))) return mt_seterr(err, MT_ENOMEM, "out of memory");
        MT_TRY(mt_safetensors_read_f32(m->st, name, cv->b, C, 0, err));
    }
    return MT_OK;
}

void mt_conv1d_run(const mt_conv1d *cv, float *st, const float *u, size_t us, size_t S, float *out, size_t os) {
    size_t C = cv->C, K = cv->K, P = K - 1;
    for (size_t t = 0; t < S; t++) {
        float *o = out + t * os;
        for (size_t c = 0; c < C; c++) o[c] = cv->b ? cv->b[c] : 0.0f;
        /* tap k reads the input k - P rows back from row t: the state for rows before the call */
        for (size_t k = 0; k < K; k++) {
            size_t back = P - k;
            const float *in = back <= t ? u + (t - back) * us : st + (P - (back - t)) * C;
            for (size_t c = 0; c < C; c++) o[c] += cv->w[c * K + k] * in[c];
        }
    }
    /* the state keeps the last P inputs */
    if (!P) return;
    if (S >= P) {
        for (size_t i = 0; i < P; i++) memcpy(st + i * C, u + (S - P + i) * us, C * sizeof(float));
    } else {
        memmove(st, st + S * C, (P - S) * C * sizeof(float));
        for (size_t i = 0; i < S; i++) memcpy(st + (P - S + i) * C, u + i * us, C * sizeof(float));
    }
}

void mt_ssm_observe(const mt_model *m, const char *prefix, const char *sub, const float *x, size_t T, size_t in) {
    if (!m->on_linear_input) return;
    char path[320];
    snprintf(path, sizeof path, "%s.%s", prefix, sub);
    m->on_linear_input(m->hook_user, path, x, T, in);
}

float mt_softplus(float x) {
    float a = x > 0 ? x : -x;
    return (x > 0 ? x : 0.0f) + log1pf(expf(-a));
}

size_t mt_ssm_segments(const mt_fwd *f, size_t *seg) {
    size_t n = 0;
    for (size_t t = 0; t < f->T; t++)
        if (t == 0 || f->rc[t] != f->rc[t - 1]) seg[n++] = t;
    seg[n] = f->T;
    return n;
}

typedef struct shortconv {
    mt_linear in_proj, out_proj;
    mt_conv1d conv;
    size_t H;
    char path[128];   /* module prefix, for the calibration observer */
} shortconv;

static void shortconv_free(void *p) {
    shortconv *s = p;
    if (!s) return;
    free(s->conv.w);
    free(s->conv.b);
    free(s);
}

static int shortconv_forward(const mt_fwd *f, int layer, const float *in, float *out, mt_err *err) {
    const shortconv *s = f->m->layers[layer].mix;
    size_t T = f->T, H = s->H;
    float *bcx = malloc((3 * T * H + T * H + T + 1) * sizeof(float));
    if (!bcx) return mt_seterr(err, MT_ENOMEM, "out of memory");
    float *y = bcx + 3 * T * H;
    size_t *seg = (size_t *)malloc((T + 1) * sizeof(size_t));
    if (!seg) { free(bcx); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    mt_ssm_observe(f->m, s->path, "in_proj", in, T, H);
    mt_dec_linear(f, &s->in_proj, in, T, bcx);
    for (size_t t = 0; t < T; t++) {   /* B * x into the B third */
        float *r = bcx + t * 3 * H;
        for (size_t c = 0; c < H; c++) r[c] *= r[2 * H + c];
    }
    size_t ns = mt_ssm_segments(f, seg);
    for (size_t i = 0; i < ns; i++) {
        size_t t0 = seg[i], S = seg[i + 1] - t0;
        mt_conv1d_run(&s->conv, f->rc[t0]->state[layer], bcx + t0 * 3 * H, 3 * H, S, y + t0 * H, H);
    }
    for (size_t t = 0; t < T; t++)
        for (size_t c = 0; c < H; c++) y[t * H + c] *= bcx[t * 3 * H + H + c];
    mt_ssm_observe(f->m, s->path, "out_proj", y, T, H);
    mt_dec_linear(f, &s->out_proj, y, T, out);
    free(seg);
    free(bcx);
    return MT_OK;
}

static const mt_mixer shortconv_mixer = {"short convolution", shortconv_forward, shortconv_free};

int mt_shortconv_bind(mt_model *m, int layer, const char *prefix, size_t L_cache, int bias, mt_err *err) {
    mt_layer *L = &m->layers[layer];
    size_t H = (size_t)m->hp.hidden;
    shortconv *s = calloc(1, sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->mixer = &shortconv_mixer;
    L->mix = s;
    s->H = H;
    snprintf(s->path, sizeof s->path, "%s", prefix);
    char p[300];
    snprintf(p, sizeof p, "%s.in_proj", prefix);
    MT_TRY(mt_linear_bind(&s->in_proj, m->st, m->cfg, p, 3 * H, H, bias ? 1 : -1, err));
    snprintf(p, sizeof p, "%s.out_proj", prefix);
    MT_TRY(mt_linear_bind(&s->out_proj, m->st, m->cfg, p, H, H, bias ? 1 : -1, err));
    snprintf(p, sizeof p, "%s.conv", prefix);
    MT_TRY(mt_conv1d_bind(m, p, H, L_cache, bias ? 1 : -1, &s->conv, err));
    L->state_floats = (L_cache - 1) * H;
    return MT_OK;
}
