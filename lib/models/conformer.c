/* conformer.c - the FastConformer encoder (see conformer.h).
 * ref: mlx_audio/stt/models/parakeet/conformer.py, attention.py (0.6.2). */
#include "models/conformer.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/linear.h"
#include "tensor/ops.h"

#define LN_EPS 1e-5f
#define BN_EPS 1e-5f
#define ATT_ROWS 64   /* query rows per attention job */

typedef struct sub_stage {
    float *dw_w, *dw_b;     /* depthwise 3x3 [C, 9] + [C] (stages after the first) */
    mt_linear pw;           /* pointwise [C, C] (stages after the first) */
} sub_stage;

typedef struct cf_layer {
    const float *ln_ff1_w, *ln_ff1_b, *ln_att_w, *ln_att_b, *ln_conv_w, *ln_conv_b, *ln_ff2_w, *ln_ff2_b,
        *ln_out_w, *ln_out_b;              /* [d] */
    mt_linear ff1_1, ff1_2, ff2_1, ff2_2;  /* [d*ff, d], [d, d*ff] */
    mt_linear q, k, v, o, pos;             /* [d, d] */
    const float *pos_u, *pos_v;            /* [H, hd] */
    mt_linear pw1, pw2;                    /* [2d, d], [d, d] (conv kernels of width 1) */
    float *dw_w, *dw_b;                    /* depthwise [d, K] and [d], batch norm folded in */
} cf_layer;

struct mt_conformer {
    mt_conformer_cfg c;
    int n_stages;                 /* log2(subsampling_factor) */
    int f_out;                    /* frequency bins after the stages */
    float *c0_w, *c0_b;           /* first conv [C, 9], [C] */
    sub_stage *st;                /* [n_stages] (index 0 unused) */
    mt_linear sub_out;            /* [d, C * f_out] (or [d, feat_in] when factor 1) */
    cf_layer *layers;
    void **owned;
    size_t n_owned, cap_owned;
};

/* ---- loading ---- */

static void *own(mt_conformer *e, size_t bytes) {
    if (e->n_owned == e->cap_owned) {
        size_t cap = e->cap_owned ? 2 * e->cap_owned : 64;
        void **p = realloc(e->owned, cap * sizeof *p);
        if (!p) return NULL;
        e->owned = p;
        e->cap_owned = cap;
    }
    void *b = calloc(1, bytes ? bytes : 1);
    if (b) e->owned[e->n_owned++] = b;
    return b;
}

/* name as float32 [numel] (any float dtype); shape checked when ndim > 0. */
static int read_vec(mt_conformer *e, const mt_safetensors *st, const char *name, int ndim, const int64_t *shape,
                    size_t numel, float **out, mt_err *err) {
    const mt_tensor_view *v;
    MT_TRY(mt_safetensors_expect(st, name, -1, ndim, shape, &v, err));
    float *p = own(e, numel * sizeof(float));
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
    MT_TRY(mt_safetensors_read_f32(st, name, p, numel, 0, err));
    *out = p;
    return MT_OK;
}

static int read_named(mt_conformer *e, const mt_safetensors *st, const char *prefix, const char *name, size_t n,
                      const float **out, mt_err *err) {
    char full[512];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    int64_t shape[1] = {(int64_t)n};
    float *p = NULL;
    MT_TRY(read_vec(e, st, full, 1, shape, n, &p, err));
    *out = p;
    return MT_OK;
}

/* A Conv1d of kernel width 1, [out, 1, in] (+ [out] bias), as a dense linear
 * over the mapped data (the same bytes as [out, in]). */
static int bind_pointwise(mt_linear *l, const mt_safetensors *st, const char *path, size_t out, size_t in, int bias,
                          mt_err *err) {
    memset(l, 0, sizeof *l);
    char name[512];
    snprintf(name, sizeof name, "%s.weight", path);
    int64_t ws[3] = {(int64_t)out, 1, (int64_t)in};
    const mt_tensor_view *w;
    MT_TRY(mt_safetensors_expect(st, name, -1, 3, ws, &w, err));
    if (w->dtype != MT_F32 && w->dtype != MT_F16 && w->dtype != MT_BF16)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': dtype %s, expected a float type", name,
                         mt_dtype_name(w->dtype));
    l->out = out;
    l->in = in;
    l->wdt = w->dtype;
    l->w = w->data;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", path);
        int64_t bs[1] = {(int64_t)out};
        const mt_tensor_view *b;
        MT_TRY(mt_safetensors_expect(st, name, -1, 1, bs, &b, err));
        if (b->dtype != MT_F32 && b->dtype != MT_F16 && b->dtype != MT_BF16)
            return mt_seterr(err, MT_EFORMAT, "tensor '%s': dtype %s, expected a float type", name,
                             mt_dtype_name(b->dtype));
        l->bias = b->data;
        l->bdt = b->dtype;
    }
    return MT_OK;
}

int mt_conformer_read_cfg(const mt_config *cfg, mt_conformer_cfg *c, mt_err *err) {
    memset(c, 0, sizeof *c);
    if (!mt_config_get(cfg, "encoder")) return mt_seterr(err, MT_EFORMAT, "config.json: no 'encoder' object");
    MT_TRY(mt_config_get_int_in(cfg, "encoder.feat_in", -1, 1, 4096, &c->feat_in, err));
    MT_TRY(mt_config_get_int_in(cfg, "encoder.n_layers", -1, 0, 1024, &c->n_layers, err));
    MT_TRY(mt_config_get_int_in(cfg, "encoder.d_model", -1, 2, 65536, &c->d_model, err));
    MT_TRY(mt_config_get_int_in(cfg, "encoder.n_heads", -1, 1, 1024, &c->n_heads, err));
    MT_TRY(mt_config_get_int_in(cfg, "encoder.ff_expansion_factor", -1, 1, 64, &c->ff_expansion, err));
    MT_TRY(mt_config_get_int_in(cfg, "encoder.subsampling_factor", -1, 1, 256, &c->subsampling_factor, err));
    MT_TRY(mt_config_get_int_in(cfg, "encoder.conv_kernel_size", -1, 1, 1025, &c->conv_kernel, err));
    if (c->subsampling_factor > 1)
        MT_TRY(mt_config_get_int_in(cfg, "encoder.subsampling_conv_channels", -1, 1, 65536, &c->sub_channels, err));
    MT_TRY(mt_config_get_bool(cfg, "encoder.use_bias", 1, &c->use_bias, err));
    MT_TRY(mt_config_get_bool(cfg, "encoder.xscaling", 0, &c->xscaling, err));
    if (c->d_model % c->n_heads || c->d_model % 2)
        return mt_seterr(err, MT_EFORMAT, "config.json: encoder.d_model %d is not even or not a multiple of n_heads %d",
                         c->d_model, c->n_heads);
    if (c->conv_kernel % 2 == 0)
        return mt_seterr(err, MT_EFORMAT, "config.json: encoder.conv_kernel_size %d is not odd", c->conv_kernel);
    if (c->subsampling_factor & (c->subsampling_factor - 1))
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: encoder.subsampling_factor %d is not a power of 2",
                         c->subsampling_factor);
    const char *att = mt_config_get_str(cfg, "encoder.self_attention_model", "rel_pos");
    if (strcmp(att, "rel_pos"))
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: encoder.self_attention_model '%s' is not supported "
                         "(rel_pos is)", att);
    const char *sub = mt_config_get_str(cfg, "encoder.subsampling", "dw_striding");
    int causal = 0, mask = 0;
    MT_TRY(mt_config_get_bool(cfg, "encoder.causal_downsampling", 0, &causal, err));
    MT_TRY(mt_config_get_bool(cfg, "encoder.mask_padding", 0, &mask, err));
    if (c->subsampling_factor > 1 && (strcmp(sub, "dw_striding") || causal))
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: encoder subsampling '%s'%s is not supported "
                         "(dw_striding is)", sub, causal ? " with causal downsampling" : "");
    if (mask) return mt_seterr(err, MT_EUNSUPPORTED, "config.json: encoder.mask_padding is not supported");
    return MT_OK;
}

void mt_conformer_free(mt_conformer *e) {
    if (!e) return;
    for (size_t i = 0; i < e->n_owned; i++) free(e->owned[i]);
    free(e->owned);
    free(e);
}

static int load_layer(mt_conformer *e, cf_layer *L, const mt_safetensors *st, const mt_config *cfg,
                      const char *p, mt_err *err) {
    size_t d = (size_t)e->c.d_model, ff = d * (size_t)e->c.ff_expansion, K = (size_t)e->c.conv_kernel;
    size_t H = (size_t)e->c.n_heads, hd = d / H;
    int nb = e->c.use_bias ? 1 : -1;
    char path[512];
    struct { const char *n; const float **w, **b; } lns[] = {
        {"norm_feed_forward1", &L->ln_ff1_w, &L->ln_ff1_b}, {"norm_self_att", &L->ln_att_w, &L->ln_att_b},
        {"norm_conv", &L->ln_conv_w, &L->ln_conv_b},         {"norm_feed_forward2", &L->ln_ff2_w, &L->ln_ff2_b},
        {"norm_out", &L->ln_out_w, &L->ln_out_b}};
    for (size_t i = 0; i < sizeof lns / sizeof *lns; i++) {
        snprintf(path, sizeof path, "%s%s.weight", p, lns[i].n);
        MT_TRY(read_named(e, st, "", path, d, lns[i].w, err));
        snprintf(path, sizeof path, "%s%s.bias", p, lns[i].n);
        MT_TRY(read_named(e, st, "", path, d, lns[i].b, err));
    }
    struct { const char *n; mt_linear *l; size_t out, in; int bias; } lins[] = {
        {"feed_forward1.linear1", &L->ff1_1, ff, d, nb}, {"feed_forward1.linear2", &L->ff1_2, d, ff, nb},
        {"feed_forward2.linear1", &L->ff2_1, ff, d, nb}, {"feed_forward2.linear2", &L->ff2_2, d, ff, nb},
        {"self_attn.linear_q", &L->q, d, d, nb},         {"self_attn.linear_k", &L->k, d, d, nb},
        {"self_attn.linear_v", &L->v, d, d, nb},         {"self_attn.linear_out", &L->o, d, d, nb},
        {"self_attn.linear_pos", &L->pos, d, d, -1}};
    for (size_t i = 0; i < sizeof lins / sizeof *lins; i++) {
        snprintf(path, sizeof path, "%s%s", p, lins[i].n);
        MT_TRY(mt_linear_bind(lins[i].l, st, cfg, path, lins[i].out, lins[i].in, lins[i].bias, err));
    }
    int64_t us[2] = {(int64_t)H, (int64_t)hd};
    float *u = NULL, *v = NULL;
    snprintf(path, sizeof path, "%sself_attn.pos_bias_u", p);
    MT_TRY(read_vec(e, st, path, 2, us, H * hd, &u, err));
    snprintf(path, sizeof path, "%sself_attn.pos_bias_v", p);
    MT_TRY(read_vec(e, st, path, 2, us, H * hd, &v, err));
    L->pos_u = u;
    L->pos_v = v;
    snprintf(path, sizeof path, "%sconv.pointwise_conv1", p);
    MT_TRY(bind_pointwise(&L->pw1, st, path, 2 * d, d, e->c.use_bias, err));
    snprintf(path, sizeof path, "%sconv.pointwise_conv2", p);
    MT_TRY(bind_pointwise(&L->pw2, st, path, d, d, e->c.use_bias, err));
    int64_t dws[3] = {(int64_t)d, (int64_t)K, 1};
    snprintf(path, sizeof path, "%sconv.depthwise_conv.weight", p);
    MT_TRY(read_vec(e, st, path, 3, dws, d * K, &L->dw_w, err));
    L->dw_b = own(e, d * sizeof(float));
    if (!L->dw_b) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (e->c.use_bias) {
        const float *b;
        snprintf(path, sizeof path, "%sconv.depthwise_conv.bias", p);
        MT_TRY(read_named(e, st, "", path, d, &b, err));
        memcpy(L->dw_b, b, d * sizeof(float));
    }
    /* batch norm (running statistics) folded into the depthwise conv */
    const float *bn[4];
    const char *bnn[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%sconv.batch_norm.%s", p, bnn[i]);
        MT_TRY(read_named(e, st, "", path, d, &bn[i], err));
    }
    for (size_t c = 0; c < d; c++) {
        float s = bn[0][c] / sqrtf(bn[3][c] + BN_EPS);
        for (size_t k = 0; k < K; k++) L->dw_w[c * K + k] *= s;
        L->dw_b[c] = (L->dw_b[c] - bn[2][c]) * s + bn[1][c];
    }
    return MT_OK;
}

static int load_all(mt_conformer *e, const mt_safetensors *st, const mt_config *cfg, const char *prefix,
                    mt_err *err) {
    const mt_conformer_cfg *c = &e->c;
    char path[512];
    size_t d = (size_t)c->d_model;
    if (c->subsampling_factor > 1) {
        size_t C = (size_t)c->sub_channels;
        int64_t s0[4] = {(int64_t)C, 3, 3, 1};
        snprintf(path, sizeof path, "%spre_encode.conv.0.weight", prefix);
        MT_TRY(read_vec(e, st, path, 4, s0, C * 9, &e->c0_w, err));
        int64_t sb[1] = {(int64_t)C};
        snprintf(path, sizeof path, "%spre_encode.conv.0.bias", prefix);
        MT_TRY(read_vec(e, st, path, 1, sb, C, &e->c0_b, err));
        e->st = own(e, sizeof(sub_stage) * (size_t)e->n_stages);
        if (!e->st) return mt_seterr(err, MT_ENOMEM, "out of memory");
        for (int s = 1; s < e->n_stages; s++) {
            int idx = 2 + 3 * (s - 1);   /* conv list: [conv, relu, (dw, pw, relu)...] */
            snprintf(path, sizeof path, "%spre_encode.conv.%d.weight", prefix, idx);
            MT_TRY(read_vec(e, st, path, 4, s0, C * 9, &e->st[s].dw_w, err));
            snprintf(path, sizeof path, "%spre_encode.conv.%d.bias", prefix, idx);
            MT_TRY(read_vec(e, st, path, 1, sb, C, &e->st[s].dw_b, err));
            int64_t sp[4] = {(int64_t)C, 1, 1, (int64_t)C};
            float *pw, *pb;
            snprintf(path, sizeof path, "%spre_encode.conv.%d.weight", prefix, idx + 1);
            MT_TRY(read_vec(e, st, path, 4, sp, C * C, &pw, err));
            snprintf(path, sizeof path, "%spre_encode.conv.%d.bias", prefix, idx + 1);
            MT_TRY(read_vec(e, st, path, 1, sb, C, &pb, err));
            mt_linear *l = &e->st[s].pw;
            memset(l, 0, sizeof *l);
            l->out = l->in = C;
            l->wdt = MT_F32;
            l->w = pw;
            l->bias = pb;
            l->bdt = MT_F32;
        }
        snprintf(path, sizeof path, "%spre_encode.out", prefix);
        MT_TRY(mt_linear_bind(&e->sub_out, st, cfg, path, d, C * (size_t)e->f_out, 1, err));
    } else {
        snprintf(path, sizeof path, "%spre_encode", prefix);
        MT_TRY(mt_linear_bind(&e->sub_out, st, cfg, path, d, (size_t)c->feat_in, 1, err));
    }
    e->layers = own(e, sizeof(cf_layer) * (size_t)(c->n_layers ? c->n_layers : 1));
    if (!e->layers) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (int i = 0; i < c->n_layers; i++) {
        char lp[192];
        snprintf(lp, sizeof lp, "%.160slayers.%d.", prefix, i);
        MT_TRY(load_layer(e, &e->layers[i], st, cfg, lp, err));
    }
    return MT_OK;
}

int mt_conformer_load(mt_conformer **out, const mt_conformer_cfg *c, const mt_safetensors *st, const mt_config *cfg,
                      const char *prefix, mt_err *err) {
    *out = NULL;
    mt_conformer *e = calloc(1, sizeof *e);
    if (!e) return mt_seterr(err, MT_ENOMEM, "out of memory");
    e->c = *c;
    int f = c->feat_in, n = 0;
    for (int s = c->subsampling_factor; s > 1; s >>= 1) {
        f = (f - 1) / 2 + 1;   /* floor((f + 2 - 3) / 2) + 1 */
        n++;
    }
    e->n_stages = n;
    e->f_out = f;
    int rc = load_all(e, st, cfg, prefix, err);
    if (rc) {
        mt_conformer_free(e);
        return rc;
    }
    *out = e;
    return MT_OK;
}

size_t mt_conformer_out_len(const mt_conformer *e, size_t T) {
    for (int s = 0; s < e->n_stages; s++) T = (T - 1) / 2 + 1;
    return T;
}

/* ---- forward ---- */

/* 3x3 stride-2 pad-1 depthwise conv over [Ti, Fi, C] -> [To, Fo, C], + bias. */
static void dw3x3(const float *x, size_t Ti, size_t Fi, size_t C, const float *w, const float *b, float *y,
                  size_t To, size_t Fo) {
    for (size_t t = 0; t < To; t++)
        for (size_t f = 0; f < Fo; f++) {
            float *o = y + (t * Fo + f) * C;
            for (size_t c = 0; c < C; c++) o[c] = b[c];
            for (int i = 0; i < 3; i++) {
                long ti = (long)(2 * t) + i - 1;
                if (ti < 0 || ti >= (long)Ti) continue;
                for (int j = 0; j < 3; j++) {
                    long fj = (long)(2 * f) + j - 1;
                    if (fj < 0 || fj >= (long)Fi) continue;
                    const float *in = x + ((size_t)ti * Fi + (size_t)fj) * C;
                    for (size_t c = 0; c < C; c++) o[c] += w[c * 9 + (size_t)(i * 3 + j)] * in[c];
                }
            }
        }
}

static void relu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (x[i] < 0) x[i] = 0;
}

/* Subsampling: x [T, F] -> y [T', d]. */
static int subsample(const mt_conformer *e, const float *x, size_t T, float *y, mt_pool *pool, mt_err *err) {
    const mt_conformer_cfg *c = &e->c;
    if (c->subsampling_factor == 1) {
        mt_linear_forward(&e->sub_out, x, T, y, NULL, pool);
        return MT_OK;
    }
    size_t C = (size_t)c->sub_channels, Ti = T, Fi = (size_t)c->feat_in;
    size_t To = (Ti - 1) / 2 + 1, Fo = (Fi - 1) / 2 + 1;
    float *col = malloc(sizeof(float) * To * Fo * 9);
    float *a = malloc(sizeof(float) * To * Fo * C);
    if (!col || !a) {
        free(col);
        free(a);
        return mt_seterr(err, MT_ENOMEM, "encoder: out of memory (%zu frames)", T);
    }
    /* first conv, 1 -> C channels, as im2col [To*Fo, 9] x W^T [9, C] */
    for (size_t t = 0; t < To; t++)
        for (size_t f = 0; f < Fo; f++) {
            float *r = col + (t * Fo + f) * 9;
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 3; j++) {
                    long ti = (long)(2 * t) + i - 1, fj = (long)(2 * f) + j - 1;
                    r[i * 3 + j] = (ti < 0 || ti >= (long)Ti || fj < 0 || fj >= (long)Fi)
                                       ? 0.0f : x[(size_t)ti * Fi + (size_t)fj];
                }
        }
    for (size_t r = 0; r < To * Fo; r++) memcpy(a + r * C, e->c0_b, C * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(To * Fo), (int)C, 9, 1.0f, col, 9, e->c0_w, 9, 1.0f, a,
                (int)C);
    free(col);
    relu(a, To * Fo * C);
    for (int s = 1; s < e->n_stages; s++) {
        Ti = To;
        Fi = Fo;
        To = (Ti - 1) / 2 + 1;
        Fo = (Fi - 1) / 2 + 1;
        float *b = malloc(sizeof(float) * To * Fo * C), *p = malloc(sizeof(float) * To * Fo * C);
        if (!b || !p) {
            free(b);
            free(p);
            free(a);
            return mt_seterr(err, MT_ENOMEM, "encoder: out of memory (%zu frames)", T);
        }
        dw3x3(a, Ti, Fi, C, e->st[s].dw_w, e->st[s].dw_b, b, To, Fo);
        free(a);
        mt_linear_forward(&e->st[s].pw, b, To * Fo, p, NULL, pool);
        free(b);
        relu(p, To * Fo * C);
        a = p;
    }
    /* [To, Fo, C] -> [To, C * Fo] (channel major), then the output linear */
    float *flat = malloc(sizeof(float) * To * Fo * C);
    if (!flat) {
        free(a);
        return mt_seterr(err, MT_ENOMEM, "encoder: out of memory (%zu frames)", T);
    }
    for (size_t t = 0; t < To; t++)
        for (size_t f = 0; f < Fo; f++)
            for (size_t ch = 0; ch < C; ch++) flat[t * C * Fo + ch * Fo + f] = a[(t * Fo + f) * C + ch];
    free(a);
    mt_linear_forward(&e->sub_out, flat, To, y, NULL, pool);
    free(flat);
    return MT_OK;
}

/* Relative-position attention of one layer: jobs are (head, block of query rows). */
typedef struct att_job {
    const float *Q, *K, *V, *P;    /* [T, d], [T, d], [T, d], [2T-1, d] */
    const float *u, *v;            /* [H, hd] */
    float *ctx;                    /* [T, d] */
    float *scratch;                /* per thread */
    size_t T, d, hd, nblk, per_thread;
    float scale;
} att_job;

static void att_run(void *ctx, size_t begin, size_t end, int tid) {
    att_job *j = ctx;
    size_t T = j->T, d = j->d, hd = j->hd, P = 2 * T - 1;
    float *qu = j->scratch + (size_t)tid * j->per_thread;
    float *qv = qu + ATT_ROWS * hd, *ac = qv + ATT_ROWS * hd, *bd = ac + ATT_ROWS * T;
    for (size_t job = begin; job < end; job++) {
        size_t h = job / j->nblk, r0 = (job % j->nblk) * ATT_ROWS;
        size_t R = T - r0 < ATT_ROWS ? T - r0 : ATT_ROWS;
        const float *u = j->u + h * hd, *v = j->v + h * hd;
        for (size_t i = 0; i < R; i++) {
            const float *q = j->Q + (r0 + i) * d + h * hd;
            for (size_t c = 0; c < hd; c++) {
                qu[i * hd + c] = q[c] + u[c];
                qv[i * hd + c] = q[c] + v[c];
            }
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)T, (int)hd, 1.0f, qu, (int)hd,
                    j->K + h * hd, (int)d, 0.0f, ac, (int)T);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)P, (int)hd, 1.0f, qv, (int)hd,
                    j->P + h * hd, (int)d, 0.0f, bd, (int)P);
        for (size_t i = 0; i < R; i++) {
            float *s = ac + i * T;
            const float *b = bd + i * P + (T - 1 - (r0 + i));   /* rel_shift: column T-1-i+j */
            for (size_t k = 0; k < T; k++) s[k] = s[k] * j->scale + b[k] * j->scale;
            mt_softmax(s, T);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)hd, (int)T, 1.0f, ac, (int)T,
                    j->V + h * hd, (int)d, 0.0f, j->ctx + r0 * d + h * hd, (int)d);
    }
}

/* Sinusoids of the relative positions T-1 .. -(T-1): pe [2T-1, d], in
 * float32 as the reference builds its table. */
static void rel_pos_table(float *pe, size_t T, size_t d) {
    float s = (float)(-(log(10000.0) / (double)d));
    for (size_t r = 0; r < 2 * T - 1; r++) {
        float pos = (float)((long)T - 1 - (long)r);
        for (size_t k = 0; k < d / 2; k++) {
            float div = expf((float)(2 * k) * s);
            float a = pos * div;
            pe[r * d + 2 * k] = sinf(a);
            pe[r * d + 2 * k + 1] = cosf(a);
        }
    }
}

static void layernorm_rows(float *out, const float *x, const float *w, const float *b, size_t T, size_t d) {
    for (size_t t = 0; t < T; t++) mt_layernorm(out + t * d, x + t * d, w, b, d, LN_EPS);
}

int mt_conformer_forward(const mt_conformer *e, const float *x, size_t T, float *y, mt_pool *pool, mt_err *err) {
    if (T == 0) return mt_seterr(err, MT_EINVAL, "encoder: no frames");
    const mt_conformer_cfg *c = &e->c;
    size_t d = (size_t)c->d_model, ff = d * (size_t)c->ff_expansion, K = (size_t)c->conv_kernel;
    size_t H = (size_t)c->n_heads, hd = d / H;
    size_t Tn = mt_conformer_out_len(e, T), P = 2 * Tn - 1;
    MT_TRY(subsample(e, x, T, y, pool, err));
    if (c->xscaling) {
        float s = sqrtf((float)d);
        for (size_t i = 0; i < Tn * d; i++) y[i] *= s;
    }
    int nth = mt_pool_size(pool);
    size_t nblk = (Tn + ATT_ROWS - 1) / ATT_ROWS;
    size_t per_thread = 2 * ATT_ROWS * hd + ATT_ROWS * Tn + ATT_ROWS * P;
    size_t big = ff > 2 * d ? ff : 2 * d;
    float *xn = malloc(sizeof(float) * Tn * d), *h1 = malloc(sizeof(float) * Tn * big);
    float *q = malloc(sizeof(float) * Tn * d), *k = malloc(sizeof(float) * Tn * d);
    float *v = malloc(sizeof(float) * Tn * d), *ctx = malloc(sizeof(float) * Tn * d);
    float *pe = malloc(sizeof(float) * P * d), *pp = malloc(sizeof(float) * P * d);
    float *scr = malloc(sizeof(float) * per_thread * (size_t)nth);
    int rc = MT_OK;
    if (!xn || !h1 || !q || !k || !v || !ctx || !pe || !pp || !scr) {
        rc = mt_seterr(err, MT_ENOMEM, "encoder: out of memory (%zu frames)", Tn);
        goto done;
    }
    rel_pos_table(pe, Tn, d);
    for (int li = 0; li < c->n_layers; li++) {
        const cf_layer *L = &e->layers[li];
        /* feed-forward 1 (half step) */
        layernorm_rows(xn, y, L->ln_ff1_w, L->ln_ff1_b, Tn, d);
        mt_linear_forward(&L->ff1_1, xn, Tn, h1, NULL, pool);
        mt_silu(h1, Tn * ff);
        mt_linear_forward(&L->ff1_2, h1, Tn, ctx, NULL, pool);
        for (size_t i = 0; i < Tn * d; i++) y[i] += 0.5f * ctx[i];
        /* relative-position self-attention */
        layernorm_rows(xn, y, L->ln_att_w, L->ln_att_b, Tn, d);
        mt_linear_forward(&L->q, xn, Tn, q, NULL, pool);
        mt_linear_forward(&L->k, xn, Tn, k, NULL, pool);
        mt_linear_forward(&L->v, xn, Tn, v, NULL, pool);
        mt_linear_forward(&L->pos, pe, P, pp, NULL, pool);
        att_job aj = {q, k, v, pp, L->pos_u, L->pos_v, ctx, scr, Tn, d, hd, nblk, per_thread,
                      1.0f / sqrtf((float)hd)};
        mt_pool_for(pool, H * nblk, 1, att_run, &aj);
        mt_linear_forward(&L->o, ctx, Tn, xn, NULL, pool);
        for (size_t i = 0; i < Tn * d; i++) y[i] += xn[i];
        /* convolution module */
        layernorm_rows(xn, y, L->ln_conv_w, L->ln_conv_b, Tn, d);
        mt_linear_forward(&L->pw1, xn, Tn, h1, NULL, pool);
        for (size_t t = 0; t < Tn; t++) {   /* GLU: a * sigmoid(b) */
            const float *r = h1 + t * 2 * d;
            for (size_t ch = 0; ch < d; ch++) q[t * d + ch] = r[ch] * (1.0f / (1.0f + expf(-r[d + ch])));
        }
        long pad = (long)(K - 1) / 2;
        for (size_t t = 0; t < Tn; t++) {
            float *o = k + t * d;
            memcpy(o, L->dw_b, d * sizeof(float));
            for (size_t j = 0; j < K; j++) {
                long tt = (long)t + (long)j - pad;
                if (tt < 0 || tt >= (long)Tn) continue;
                const float *in = q + (size_t)tt * d;
                for (size_t ch = 0; ch < d; ch++) o[ch] += L->dw_w[ch * K + j] * in[ch];
            }
        }
        mt_silu(k, Tn * d);
        mt_linear_forward(&L->pw2, k, Tn, xn, NULL, pool);
        for (size_t i = 0; i < Tn * d; i++) y[i] += xn[i];
        /* feed-forward 2 (half step) */
        layernorm_rows(xn, y, L->ln_ff2_w, L->ln_ff2_b, Tn, d);
        mt_linear_forward(&L->ff2_1, xn, Tn, h1, NULL, pool);
        mt_silu(h1, Tn * ff);
        mt_linear_forward(&L->ff2_2, h1, Tn, ctx, NULL, pool);
        for (size_t i = 0; i < Tn * d; i++) y[i] += 0.5f * ctx[i];
        layernorm_rows(y, y, L->ln_out_w, L->ln_out_b, Tn, d);
    }
done:
    free(xn);
    free(h1);
    free(q);
    free(k);
    free(v);
    free(ctx);
    free(pe);
    free(pp);
    free(scr);
    return rc;
}
