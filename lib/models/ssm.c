/* ssm.c - state-space token mixers with recurrent state per sequence.
 *   Mamba-2 (SSD): in_proj -> gate z, conv input (x, B, C), dt; depthwise causal conv + SiLU;
 *     per head h: dt = clip(softplus(dt + dt_bias), limits), s = exp(dt * A_h) s + dt x B^T,
 *     y = s C + D_h x (B, C shared by the heads of a group); y = RMSNorm(silu(z) * y) (over
 *     groups of features, times its weight); out_proj.
 *   Mamba: in_proj -> x, z; conv + SiLU; x_proj -> dt (rank R), B, C (optionally RMS-normalized,
 *     falcon_mamba); dt = softplus(dt_proj(dt)); per channel d: s = exp(dt_d A_d) s + dt_d x_d B,
 *     y_d = s . C + D_d x_d; out_proj(silu(z) * y).
 * The state of a sequence is its conv inputs ([K - 1, conv channels]) then the scan state.
 * Every projection runs over all rows of a call at once; the scans run per sequence, threaded
 * over heads (Mamba-2) or channel blocks (Mamba).
 * ref: mlx_lm/models/mamba2.py, ssm.py, mamba.py, nemotron_h.py, falcon_h1.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/decoder_int.h"
#include "models/ssm_int.h"
#include "core/cpu.h"
#include "tensor/kernels.h"
#include "tensor/ops.h"

static int read_vec(mt_model *m, const char *prefix, const char *sub, size_t n, float **out, mt_err *err) {
    char name[320];
    snprintf(name, sizeof name, "%s.%s", prefix, sub);
    const mt_tensor_view *t = mt_safetensors_get(m->st, name);
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
    size_t numel = 1;
    for (int i = 0; i < t->ndim; i++) numel *= (size_t)t->shape[i];
    if (numel != n) return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected %zu values", name, n);
    if (!(*out = malloc(n * sizeof(float)))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    return mt_safetensors_read_f32(m->st, name, *out, n, 0, err);
}

/* the block's own pre-norm (when the mixer has one): RMSNorm with its eps */
static const float *pre_norm(const mt_fwd *f, const float *pw, float eps, const float *in, float *buf) {
    if (!pw) return in;
    size_t H = (size_t)f->m->hp.hidden;
    for (size_t t = 0; t < f->T; t++) mt_rmsnorm(buf + t * H, in + t * H, pw, H, eps);
    return buf;
}

/* ---- Mamba-2 ---- */

typedef struct ssm2 {
    mt_ssm2_cfg c;
    size_t I, conv_dim, proj;
    mt_linear in_proj, out_proj;
    mt_conv1d conv;
    float *dt_bias, *A, *D, *norm_w, *pre_w;
    char path[128];   /* module prefix, for the calibration observer */
} ssm2;

static void ssm2_free(void *p) {
    ssm2 *s = p;
    if (!s) return;
    free(s->conv.w); free(s->conv.b);
    free(s->dt_bias); free(s->A); free(s->D); free(s->norm_w); free(s->pre_w);
    free(s);
}

typedef struct ssm2_job {
    const mt_fwd *f;
    const ssm2 *s;
    int layer;
    const size_t *seg;
    const float *xbc;   /* [T, conv_dim] after conv + SiLU: x, B, C */
    const float *proj;  /* [T, proj]: dt at I + conv_dim */
    float *y;           /* [T, I] */
} ssm2_job;

/* jobs: (segment, head) pairs */
static void ssm2_scan(void *ctx, size_t b, size_t e, int tid) {
    (void)tid;
    const ssm2_job *j = ctx;
    const ssm2 *s = j->s;
    size_t nh = (size_t)s->c.n_heads, hd = (size_t)s->c.head_dim, N = (size_t)s->c.d_state;
    size_t hpg = nh / (size_t)s->c.n_groups, I = s->I, CD = s->conv_dim;
    int lvl = mt_cpu_level();
    for (size_t w = b; w < e; w++) {
        size_t si = w / nh, h = w % nh, g = h / hpg;
        size_t t0 = j->seg[si], t1 = j->seg[si + 1];
        float *st = j->f->rc[t0]->state[j->layer] + (s->c.conv_kernel - 1) * CD + h * hd * N;
        float A = s->A[h], D = s->D[h];
        for (size_t t = t0; t < t1; t++) {
            float dtr = j->proj[t * s->proj + I + CD + h];
            float dt = mt_softplus(dtr + s->dt_bias[h]);
            dt = dt < s->c.dt_min ? s->c.dt_min : dt > s->c.dt_max ? s->c.dt_max : dt;
            float dA = expf(dt * A);
            const float *x = j->xbc + t * CD + h * hd;
            const float *B = j->xbc + t * CD + I + g * N, *C = j->xbc + t * CD + I + (size_t)s->c.n_groups * N + g * N;
            float *y = j->y + t * I + h * hd;
            for (size_t d = 0; d < hd; d++) {   /* s = dA s + (dt x_d) B; y_d = s . C + D x_d */
                float *sd = st + d * N, dx = dt * x[d];
                for (size_t n = 0; n < N; n++) sd[n] = dA * sd[n] + dx * B[n];   /* (vectorized) */
                y[d] = mt_k_dot(lvl, sd, C, N) + D * x[d];
            }
        }
    }
}

static int ssm2_forward(const mt_fwd *f, int layer, const float *in, float *out, mt_err *err) {
    const ssm2 *s = f->m->layers[layer].mix;
    size_t T = f->T, H = (size_t)f->m->hp.hidden, I = s->I, CD = s->conv_dim, P = s->proj;
    size_t PP = P > H ? P : H;   /* proj rows, then (parallel) the out_proj rows */
    float *proj = malloc((T * PP + T * CD + T * I) * sizeof(float)), *nb = s->pre_w ? calloc(T * H, sizeof(float)) : NULL;
    size_t *seg = malloc((T + 1) * sizeof *seg);
    if (!proj || !seg || (s->pre_w && !nb)) { free(proj); free(nb); free(seg); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    float *xbc = proj + T * PP, *y = xbc + T * CD;
    const float *x = pre_norm(f, s->pre_w, s->c.pre_eps, in, nb);
    mt_ssm_observe(f->m, s->path, "in_proj", x, T, H);
    mt_dec_linear(f, &s->in_proj, x, T, proj);
    size_t ns = mt_ssm_segments(f, seg);
    for (size_t i = 0; i < ns; i++) {
        size_t t0 = seg[i];
        mt_conv1d_run(&s->conv, f->rc[t0]->state[layer], proj + t0 * P + I, P, seg[i + 1] - t0, xbc + t0 * CD, CD);
    }
    mt_silu(xbc, T * CD);
    ssm2_job j = {f, s, layer, seg, xbc, proj, y};
    mt_pool_for(f->m->pool, ns * (size_t)s->c.n_heads, 1, ssm2_scan, &j);
    size_t gs = I / (size_t)s->c.norm_groups;
    for (size_t t = 0; t < T; t++) {
        float *yt = y + t * I;
        const float *z = proj + t * P;
        if (!s->c.norm_before_gate) for (size_t i = 0; i < I; i++) yt[i] *= z[i] / (1.0f + expf(-z[i]));
        if (!s->c.no_out_norm) {
            for (size_t g = 0; g < (size_t)s->c.norm_groups; g++) mt_rmsnorm(yt + g * gs, yt + g * gs, NULL, gs, s->c.norm_eps);
            for (size_t i = 0; i < I; i++) yt[i] *= s->norm_w[i];
        }
        if (s->c.norm_before_gate) for (size_t i = 0; i < I; i++) yt[i] *= z[i] / (1.0f + expf(-z[i]));
    }
    mt_ssm_observe(f->m, s->path, "out_proj", y, T, I);
    if (s->c.parallel) {   /* added to the attention's output */
        mt_dec_linear(f, &s->out_proj, y, T, proj);
        for (size_t i = 0; i < T * H; i++) out[i] += proj[i];
    } else {
        mt_dec_linear(f, &s->out_proj, y, T, out);
    }
    free(seg);
    free(nb);
    free(proj);
    return MT_OK;
}

static const mt_mixer ssm2_mixer = {"Mamba-2", ssm2_forward, ssm2_free};

int mt_ssm2_bind(mt_model *m, int layer, const char *prefix, const mt_ssm2_cfg *sc, mt_err *err) {
    mt_layer *L = &m->layers[layer];
    if (sc->n_heads % sc->n_groups)
        return mt_seterr(err, MT_EFORMAT, "config.json: %d Mamba-2 heads do not split into n_groups %d", sc->n_heads, sc->n_groups);
    if (sc->norm_groups < 1 || (sc->n_heads * sc->head_dim) % sc->norm_groups)
        return mt_seterr(err, MT_EFORMAT, "config.json: the Mamba-2 gated norm's %d groups do not divide %d features",
                         sc->norm_groups, sc->n_heads * sc->head_dim);
    if (!(sc->dt_min <= sc->dt_max)) return mt_seterr(err, MT_EFORMAT, "config.json: \"time_step_limit\" must be [min, max]");
    ssm2 *s = calloc(1, sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->mixer = &ssm2_mixer;
    L->mix = s;
    s->c = *sc;
    snprintf(s->path, sizeof s->path, "%s", prefix);
    size_t H = (size_t)m->hp.hidden, nh = (size_t)sc->n_heads, N = (size_t)sc->d_state;
    s->I = nh * (size_t)sc->head_dim;
    s->conv_dim = s->I + 2 * (size_t)sc->n_groups * N;
    s->proj = s->I + s->conv_dim + nh;
    char p[300];
    snprintf(p, sizeof p, "%s.in_proj", prefix);
    MT_TRY(mt_linear_bind(&s->in_proj, m->st, m->cfg, p, s->proj, H, sc->use_bias ? 1 : -1, err));
    snprintf(p, sizeof p, "%s.out_proj", prefix);
    MT_TRY(mt_linear_bind(&s->out_proj, m->st, m->cfg, p, H, s->I, sc->out_bias ? 1 : -1, err));
    snprintf(p, sizeof p, "%s.conv1d", prefix);
    MT_TRY(mt_conv1d_bind(m, p, s->conv_dim, (size_t)sc->conv_kernel, sc->conv_bias ? 1 : -1, &s->conv, err));
    MT_TRY(read_vec(m, prefix, "dt_bias", nh, &s->dt_bias, err));
    MT_TRY(read_vec(m, prefix, "A_log", nh, &s->A, err));
    for (size_t h = 0; h < nh; h++) s->A[h] = -expf(s->A[h]);
    MT_TRY(read_vec(m, prefix, "D", nh, &s->D, err));
    if (!sc->no_out_norm) MT_TRY(read_vec(m, prefix, "norm.weight", s->I, &s->norm_w, err));
    if (sc->pre_norm) MT_TRY(read_vec(m, sc->pre_norm, "weight", H, &s->pre_w, err));
    L->state_floats = (size_t)(sc->conv_kernel - 1) * s->conv_dim + nh * (size_t)sc->head_dim * N;
    L->mixer_parallel = sc->parallel;
    size_t wide = s->I > s->conv_dim ? s->I : s->conv_dim;
    if (wide > m->max_in) m->max_in = wide;
    return MT_OK;
}

/* ---- Mamba ---- */

typedef struct ssm1 {
    mt_ssm1_cfg c;
    mt_linear in_proj, x_proj, dt_proj, out_proj;
    mt_conv1d conv;
    float *A, *D, *pre_w;   /* A = -exp(A_log) [I, N] */
    float *dt_w, *b_w, *c_w; /* bcdt_w: the dt / B / C RMSNorm weights */
    char path[128];   /* module prefix, for the calibration observer */
} ssm1;

static void ssm1_free(void *p) {
    ssm1 *s = p;
    if (!s) return;
    free(s->conv.w); free(s->conv.b);
    free(s->A); free(s->D); free(s->pre_w);
    free(s->dt_w); free(s->b_w); free(s->c_w);
    free(s);
}

typedef struct ssm1_job {
    const mt_fwd *f;
    const ssm1 *s;
    int layer;
    const size_t *seg;
    size_t nblk;
    const float *xc, *dbc, *dt;   /* [T, I], [T, R + 2N], [T, I] */
    float *y;                     /* [T, I] */
} ssm1_job;

#define SSM1_BLK 16
static void ssm1_scan(void *ctx, size_t b, size_t e, int tid) {
    (void)tid;
    const ssm1_job *j = ctx;
    const ssm1 *s = j->s;
    size_t I = (size_t)s->c.inter, N = (size_t)s->c.d_state, R = (size_t)s->c.dt_rank, W = R + 2 * N;
    int lvl = mt_cpu_level();
    for (size_t w = b; w < e; w++) {
        size_t si = w / j->nblk, d0 = (w % j->nblk) * SSM1_BLK, d1 = d0 + SSM1_BLK < I ? d0 + SSM1_BLK : I;
        size_t t0 = j->seg[si], t1 = j->seg[si + 1];
        float *st = j->f->rc[t0]->state[j->layer] + (size_t)(s->c.conv_kernel - 1) * I;
        for (size_t t = t0; t < t1; t++) {
            const float *B = j->dbc + t * W + R, *C = B + N;
            for (size_t d = d0; d < d1; d++) {
                float dt = j->dt[t * I + d], x = j->xc[t * I + d], dx = dt * x;
                float *sd = st + d * N;
                const float *A = s->A + d * N;
                for (size_t n0 = 0; n0 < N; n0 += 256) {   /* exp(dt A) through the vector kernel */
                    size_t nn = N - n0 < 256 ? N - n0 : 256;
                    float e[256];
                    for (size_t n = 0; n < nn; n++) e[n] = dt * A[n0 + n];
                    mt_k_exp_sum(lvl, e, 0.0f, nn);
                    for (size_t n = 0; n < nn; n++) sd[n0 + n] = sd[n0 + n] * e[n] + dx * B[n0 + n];
                }
                j->y[t * I + d] = mt_k_dot(lvl, sd, C, N) + s->D[d] * x;
            }
        }
    }
}

static int ssm1_forward(const mt_fwd *f, int layer, const float *in, float *out, mt_err *err) {
    const ssm1 *s = f->m->layers[layer].mix;
    size_t T = f->T, H = (size_t)f->m->hp.hidden, I = (size_t)s->c.inter, N = (size_t)s->c.d_state;
    size_t R = (size_t)s->c.dt_rank, W = R + 2 * N;
    size_t need = T * 2 * I + T * I + T * W + T * R + T * I + T * I;
    float *xz = malloc(need * sizeof(float)), *nb = s->pre_w ? calloc(T * H, sizeof(float)) : NULL;
    size_t *seg = malloc((T + 1) * sizeof *seg);
    if (!xz || !seg || (s->pre_w && !nb)) { free(xz); free(nb); free(seg); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    float *xc = xz + T * 2 * I, *dbc = xc + T * I, *dr = dbc + T * W, *dt = dr + T * R, *y = dt + T * I;
    const float *x = pre_norm(f, s->pre_w, s->c.pre_eps, in, nb);
    mt_ssm_observe(f->m, s->path, "in_proj", x, T, H);
    mt_dec_linear(f, &s->in_proj, x, T, xz);
    size_t ns = mt_ssm_segments(f, seg);
    for (size_t i = 0; i < ns; i++) {
        size_t t0 = seg[i];
        mt_conv1d_run(&s->conv, f->rc[t0]->state[layer], xz + t0 * 2 * I, 2 * I, seg[i + 1] - t0, xc + t0 * I, I);
    }
    mt_silu(xc, T * I);
    mt_ssm_observe(f->m, s->path, "x_proj", xc, T, I);
    mt_dec_linear(f, &s->x_proj, xc, T, dbc);
    for (size_t t = 0; t < T; t++) {
        float *r = dbc + t * W;
        if (s->c.bcdt_rms) {
            mt_rmsnorm(r, r, s->dt_w, R, s->c.rms_eps);
            mt_rmsnorm(r + R, r + R, s->b_w, N, s->c.rms_eps);
            mt_rmsnorm(r + R + N, r + R + N, s->c_w, N, s->c.rms_eps);
        }
        memcpy(dr + t * R, r, R * sizeof(float));
    }
    mt_ssm_observe(f->m, s->path, "dt_proj", dr, T, R);
    mt_dec_linear(f, &s->dt_proj, dr, T, dt);
    for (size_t i = 0; i < T * I; i++) dt[i] = mt_softplus(dt[i]);
    size_t nblk = (I + SSM1_BLK - 1) / SSM1_BLK;
    ssm1_job j = {f, s, layer, seg, nblk, xc, dbc, dt, y};
    mt_pool_for(f->m->pool, ns * nblk, 1, ssm1_scan, &j);
    for (size_t t = 0; t < T; t++) {
        const float *z = xz + t * 2 * I + I;
        float *yt = y + t * I;
        for (size_t i = 0; i < I; i++) yt[i] *= z[i] / (1.0f + expf(-z[i]));
    }
    mt_ssm_observe(f->m, s->path, "out_proj", y, T, I);
    mt_dec_linear(f, &s->out_proj, y, T, out);
    free(seg);
    free(nb);
    free(xz);
    return MT_OK;
}

static const mt_mixer ssm1_mixer = {"Mamba", ssm1_forward, ssm1_free};

int mt_ssm1_bind(mt_model *m, int layer, const char *prefix, const mt_ssm1_cfg *sc, mt_err *err) {
    mt_layer *L = &m->layers[layer];
    ssm1 *s = calloc(1, sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->mixer = &ssm1_mixer;
    L->mix = s;
    s->c = *sc;
    snprintf(s->path, sizeof s->path, "%s", prefix);
    size_t H = (size_t)m->hp.hidden, I = (size_t)sc->inter, N = (size_t)sc->d_state, R = (size_t)sc->dt_rank;
    char p[300];
    snprintf(p, sizeof p, "%s.in_proj", prefix);
    MT_TRY(mt_linear_bind(&s->in_proj, m->st, m->cfg, p, 2 * I, H, sc->use_bias ? 1 : -1, err));
    snprintf(p, sizeof p, "%s.x_proj", prefix);
    MT_TRY(mt_linear_bind(&s->x_proj, m->st, m->cfg, p, R + 2 * N, I, -1, err));
    snprintf(p, sizeof p, "%s.dt_proj", prefix);
    MT_TRY(mt_linear_bind(&s->dt_proj, m->st, m->cfg, p, I, R, 1, err));
    snprintf(p, sizeof p, "%s.out_proj", prefix);
    MT_TRY(mt_linear_bind(&s->out_proj, m->st, m->cfg, p, H, I, sc->use_bias ? 1 : -1, err));
    snprintf(p, sizeof p, "%s.conv1d", prefix);
    MT_TRY(mt_conv1d_bind(m, p, I, (size_t)sc->conv_kernel, sc->conv_bias ? 1 : -1, &s->conv, err));
    MT_TRY(read_vec(m, prefix, "A_log", I * N, &s->A, err));
    for (size_t i = 0; i < I * N; i++) s->A[i] = -expf(s->A[i]);
    MT_TRY(read_vec(m, prefix, "D", I, &s->D, err));
    if (sc->pre_norm) MT_TRY(read_vec(m, sc->pre_norm, "weight", H, &s->pre_w, err));
    if (sc->bcdt_rms && sc->bcdt_w) {
        MT_TRY(read_vec(m, prefix, "dt_layernorm.weight", R, &s->dt_w, err));
        MT_TRY(read_vec(m, prefix, "b_layernorm.weight", N, &s->b_w, err));
        MT_TRY(read_vec(m, prefix, "c_layernorm.weight", N, &s->c_w, err));
    }
    L->state_floats = (size_t)(sc->conv_kernel - 1) * I + I * N;
    if (I > m->max_in) m->max_in = I;
    return MT_OK;
}
