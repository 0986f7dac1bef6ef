/* deltanet.c - the gated DeltaNet token mixer (Qwen3-Next, Qwen3.5 linear-attention layers).
 *
 * Per row: projections to q, k (nk heads of dk), v (nv heads of dv), the output gate z
 * (nv x dv) and per value head b, a; q|k|v pass a causal depthwise convolution (kernel
 * conv_k, no bias, over the sequence) and SiLU; q and k are L2-normalized (q also scaled by
 * dk^-1/2); then per value head h (key head h / (nv/nk)) the gated delta rule on its state
 * S[dv, dk]:
 *     g = exp(-exp(A_log[h]) * softplus(a + dt_bias[h])),  beta = sigmoid(b)
 *     S *= g;  delta = (v - S k) * beta;  S += delta k^T;  y = S q
 * y is RMS-normalized per head (weight norm.weight), multiplied by SiLU(z), and out_proj
 * maps it back to the hidden size.  The convolution's last conv_k - 1 input rows and the
 * nv state matrices are the sequence's recurrent state (mt_kvcache.state[layer]).
 * ref: mlx_lm/models/gated_delta.py, qwen3_next.py (Qwen3NextGatedDeltaNet), qwen3_5.py. */
#include "models/deltanet.h"
#include "models/decoder_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tensor/ops.h"

typedef struct dn_layer {
    mt_deltanet_hp hp;
    size_t kd, vd, cd, conv_n;      /* key width nk*dk, value width nv*dv, conv channels, conv state floats */
    mt_linear qkvz, ba;             /* qwen3_next */
    mt_linear qkv, z, b, a;         /* qwen3_5 (split) */
    mt_linear out;
    float *conv_w;                  /* [conv_k, cd]: tap j of channel c at j * cd + c */
    float *A;                       /* exp(A_log) [nv] */
    float *dt_bias;                 /* [nv] */
    float *norm_w;                  /* [dv] */
} dn_layer;

static void dn_free(void *p) {
    dn_layer *d = p;
    if (!d) return;
    free(d->conv_w);
    free(d->A);
    free(d->dt_bias);
    free(d->norm_w);
    free(d);
}

/* One job per (run of rows of one cache, value head): the recurrence over the run's rows,
 * then the gated RMSNorm of each output row. */
typedef struct dn_ctx {
    const dn_layer *d;
    const size_t *run;              /* [nrun + 1]: first row of each run */
    float *const *state;            /* [nrun]: each run's state (conv rows first) */
    const float *qkv, *g, *beta, *z;
    float *y;                       /* [T, vd] */
} dn_ctx;

static void dn_heads(void *vc, size_t b, size_t e, int tid) {
    (void)tid;
    const dn_ctx *c = vc;
    const dn_layer *d = c->d;
    size_t nv = (size_t)d->hp.nv, dk = (size_t)d->hp.dk, dv = (size_t)d->hp.dv, rep = nv / (size_t)d->hp.nk;
    for (size_t job = b; job < e; job++) {
        size_t r = job / nv, h = job % nv, kh = h / rep;
        float *S = c->state[r] + d->conv_n + h * dv * dk;
        for (size_t t = c->run[r]; t < c->run[r + 1]; t++) {
            const float *row = c->qkv + t * d->cd;
            const float *q = row + kh * dk, *k = row + d->kd + kh * dk, *v = row + 2 * d->kd + h * dv;
            float g = c->g[t * nv + h], beta = c->beta[t * nv + h];
            float *y = c->y + t * d->vd + h * dv;
            for (size_t i = 0; i < dv; i++) {
                float *Si = S + i * dk;
                for (size_t j = 0; j < dk; j++) Si[j] *= g;
                float delta = (v[i] - mt_dot(Si, k, dk)) * beta;
                mt_axpy(Si, delta, k, dk);
                y[i] = mt_dot(Si, q, dk);
            }
            /* gated RMSNorm: rms_norm(y) * w * silu(z) */
            mt_rmsnorm(y, y, d->norm_w, dv, d->hp.eps);
            const float *zz = c->z + t * d->vd + h * dv;
            for (size_t i = 0; i < dv; i++) y[i] *= zz[i] / (1.0f + expf(-zz[i]));
        }
    }
}

static float softplus(float x) { return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x)); }

static int dn_forward(const mt_fwd *f, int l, const float *in, float *out, mt_err *err) {
    mt_model *m = f->m;
    const dn_layer *d = m->layers[l].mix;
    const mt_deltanet_hp *hp = &d->hp;
    size_t T = f->T, H = (size_t)m->hp.hidden, K = (size_t)hp->conv_k, cd = d->cd, kd = d->kd, vd = d->vd;
    size_t nk = (size_t)hp->nk, nv = (size_t)hp->nv, dk = (size_t)hp->dk, dv = (size_t)hp->dv, rep = nv / nk;
    size_t nrun = 0;
    for (size_t t = 0; t < T; t++) nrun += t == 0 || f->rc[t] != f->rc[t - 1];
    size_t wide = hp->split ? 0 : T * (2 * kd + 2 * vd + 2 * nv);
    size_t total = T * cd + T * vd + 2 * T * nv + T * vd + (K - 1 + T) * cd + wide;
    float *buf = malloc(total * sizeof *buf);
    size_t *run = malloc((nrun + 1) * sizeof *run);
    float **state = malloc(nrun * sizeof *state);
    if (!buf || !run || !state) {
        free(buf); free(run); free(state);
        return mt_seterr(err, MT_ENOMEM, "out of memory for the DeltaNet layer");
    }
    float *qkv = buf, *z = qkv + T * cd, *bb = z + T * vd, *aa = bb + T * nv, *y = aa + T * nv;
    float *win = y + T * vd, *wq = win + (K - 1 + T) * cd, *wb = wq + T * (2 * kd + 2 * vd);
    int rc = MT_OK;
    for (size_t t = 0, r = 0; t < T; t++)
        if (t == 0 || f->rc[t] != f->rc[t - 1]) {
            const mt_kvcache *c = f->rc[t];
            if (!c->has_state || !c->state[l] || c->state_n[l] != m->layers[l].state_floats) {
                rc = mt_seterr(err, MT_EINVAL, "internal: the cache has no DeltaNet state for layer %d", l);
                goto out;
            }
            run[r] = t;
            state[r++] = c->state[l];
        }
    run[nrun] = T;

    /* projections of all rows at once */
    if (hp->split) {
        mt_dec_observe(m, l, "linear_attn.in_proj_qkv", in, T, H);
        mt_dec_observe(m, l, "linear_attn.in_proj_z", in, T, H);
        mt_dec_observe(m, l, "linear_attn.in_proj_b", in, T, H);
        mt_dec_observe(m, l, "linear_attn.in_proj_a", in, T, H);
        mt_dec_linear(f, &d->qkv, in, T, qkv);
        mt_dec_linear(f, &d->z, in, T, z);
        mt_dec_linear(f, &d->b, in, T, bb);
        mt_dec_linear(f, &d->a, in, T, aa);
    } else {   /* per key head: [q dk | k dk | v rep*dv | z rep*dv] and [b rep | a rep] */
        mt_dec_observe(m, l, "linear_attn.in_proj_qkvz", in, T, H);
        mt_dec_observe(m, l, "linear_attn.in_proj_ba", in, T, H);
        size_t gw = 2 * dk + 2 * rep * dv, vw = rep * dv;
        mt_dec_linear(f, &d->qkvz, in, T, wq);
        mt_dec_linear(f, &d->ba, in, T, wb);
        for (size_t t = 0; t < T; t++)
            for (size_t g = 0; g < nk; g++) {
                const float *s = wq + t * nk * gw + g * gw, *sb = wb + t * 2 * nv + g * 2 * rep;
                float *o = qkv + t * cd;
                memcpy(o + g * dk, s, dk * sizeof *o);
                memcpy(o + kd + g * dk, s + dk, dk * sizeof *o);
                memcpy(o + 2 * kd + g * vw, s + 2 * dk, vw * sizeof *o);
                memcpy(z + t * vd + g * vw, s + 2 * dk + vw, vw * sizeof *o);
                memcpy(bb + t * nv + g * rep, sb, rep * sizeof *o);
                memcpy(aa + t * nv + g * rep, sb + rep, rep * sizeof *o);
            }
    }

    /* causal depthwise convolution per run, over its state rows then its own rows; SiLU */
    for (size_t r = 0; r < nrun; r++) {
        size_t t0 = run[r], S = run[r + 1] - t0;
        float *cs = state[r];
        memcpy(win, cs, (K - 1) * cd * sizeof *win);
        memcpy(win + (K - 1) * cd, qkv + t0 * cd, S * cd * sizeof *win);
        for (size_t i = 0; i < S; i++) {
            float *o = qkv + (t0 + i) * cd;
            memset(o, 0, cd * sizeof *o);
            for (size_t j = 0; j < K; j++) {
                const float *x = win + (i + j) * cd, *w = d->conv_w + j * cd;
                for (size_t c = 0; c < cd; c++) o[c] += x[c] * w[c];
            }
            mt_silu(o, cd);
        }
        memcpy(cs, win + S * cd, (K - 1) * cd * sizeof *win);
    }

    /* q, k: L2 norm (mlx: rms_norm with eps 1e-6 / dk, times dk^-1 for q and dk^-1/2 for k) */
    float rms_eps = 1e-6f / (float)dk, iq = 1.0f / (float)dk, ik = 1.0f / sqrtf((float)dk);
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < nk; h++) {
            float *q = qkv + t * cd + h * dk, *k = qkv + t * cd + kd + h * dk;
            mt_rmsnorm(q, q, NULL, dk, rms_eps);
            mt_rmsnorm(k, k, NULL, dk, rms_eps);
            for (size_t i = 0; i < dk; i++) { q[i] *= iq; k[i] *= ik; }
        }
    /* decay g (in aa) and beta (in bb) */
    for (size_t t = 0; t < T; t++)
        for (size_t h = 0; h < nv; h++) {
            size_t i = t * nv + h;
            aa[i] = expf(-d->A[h] * softplus(aa[i] + d->dt_bias[h]));
            bb[i] = 1.0f / (1.0f + expf(-bb[i]));
        }
    dn_ctx ctx = {d, run, state, qkv, aa, bb, z, y};
    mt_pool_for(m->pool, nrun * nv, 1, dn_heads, &ctx);
    mt_dec_observe(m, l, "linear_attn.out_proj", y, T, vd);
    mt_dec_linear(f, &d->out, y, T, out);
out:
    free(buf);
    free(run);
    free(state);
    return rc;
}

static const mt_mixer dn_mixer = {"gated DeltaNet", dn_forward, dn_free};

/* a float vector `name` of n values (any float dtype), read as float32 */
static int read_vec(mt_model *m, const char *name, size_t n, float **out, mt_err *err) {
    const mt_tensor_view *t = mt_safetensors_get(m->st, name);
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
    if (t->ndim != 1 || (size_t)t->shape[0] != n)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected shape [%zu]", name, n);
    if (!(*out = malloc(n * sizeof **out))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    return mt_safetensors_read_f32(m->st, name, *out, n, 0, err);
}

static int dn_bind(mt_model *m, int layer, dn_layer *d, mt_err *err) {
    const mt_deltanet_hp *hp = &d->hp;
    size_t H = (size_t)m->hp.hidden, K = (size_t)hp->conv_k, nv = (size_t)hp->nv;
    char p[256], n[320];
#define LIN(field, sub, o, i) \
    do { snprintf(p, sizeof p, "model.layers.%d.linear_attn.%s", layer, sub); \
         MT_TRY(mt_linear_bind(&d->field, m->st, m->cfg, p, o, i, -1, err)); } while (0)
    if (hp->split) {
        LIN(qkv, "in_proj_qkv", d->cd, H);
        LIN(z, "in_proj_z", d->vd, H);
        LIN(b, "in_proj_b", nv, H);
        LIN(a, "in_proj_a", nv, H);
    } else {
        LIN(qkvz, "in_proj_qkvz", 2 * d->kd + 2 * d->vd, H);
        LIN(ba, "in_proj_ba", 2 * nv, H);
    }
    LIN(out, "out_proj", H, d->vd);
#undef LIN
    snprintf(p, sizeof p, "model.layers.%d.linear_attn.", layer);
    /* conv1d.weight: mlx's Conv1d layout [channels, kernel, 1] (sanitized checkpoints) */
    snprintf(n, sizeof n, "%sconv1d.weight", p);
    const mt_tensor_view *cw = mt_safetensors_get(m->st, n);
    if (!cw) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", n);
    if (cw->ndim != 3 || (size_t)cw->shape[0] != d->cd || (size_t)cw->shape[1] != K || cw->shape[2] != 1)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected mlx's Conv1d shape [%zu, %zu, 1]%s", n, d->cd, K,
                         cw->ndim == 3 && cw->shape[1] == 1 && (size_t)cw->shape[2] == K
                             ? " (this is the transformers layout: convert the model with mlx-lm)" : "");
    float *tmp = malloc(d->cd * K * sizeof *tmp);
    d->conv_w = malloc(d->cd * K * sizeof *d->conv_w);
    if (!tmp || !d->conv_w) { free(tmp); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    int rc = mt_safetensors_read_f32(m->st, n, tmp, d->cd * K, 0, err);
    for (size_t c = 0; !rc && c < d->cd; c++)
        for (size_t j = 0; j < K; j++) d->conv_w[j * d->cd + c] = tmp[c * K + j];
    free(tmp);
    MT_TRY(rc);
    snprintf(n, sizeof n, "%sA_log", p);
    MT_TRY(read_vec(m, n, nv, &d->A, err));
    for (size_t h = 0; h < nv; h++) d->A[h] = expf(d->A[h]);
    snprintf(n, sizeof n, "%sdt_bias", p);
    MT_TRY(read_vec(m, n, nv, &d->dt_bias, err));
    snprintf(n, sizeof n, "%snorm.weight", p);
    return read_vec(m, n, (size_t)hp->dv, &d->norm_w, err);
}

int mt_deltanet_bind(mt_model *m, int layer, const mt_deltanet_hp *hp, mt_err *err) {
    if (hp->nk < 1 || hp->nv < 1 || hp->dk < 1 || hp->dv < 1 || hp->conv_k < 1 || hp->nv % hp->nk)
        return mt_seterr(err, MT_EFORMAT, "config.json: bad linear-attention geometry (%d key heads of %d, %d value "
                         "heads of %d, kernel %d)", hp->nk, hp->dk, hp->nv, hp->dv, hp->conv_k);
    if ((size_t)hp->nv * hp->dv > ((size_t)1 << 24) || (size_t)hp->nk * hp->dk > ((size_t)1 << 24) ||
        hp->conv_k > 64 || (size_t)hp->dk * hp->dv > ((size_t)1 << 24))
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: linear-attention sizes too large");
    dn_layer *d = calloc(1, sizeof *d);
    if (!d) return mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_layer *L = &m->layers[layer];
    L->mixer = &dn_mixer;   /* from here mt_model_free releases d */
    L->mix = d;
    d->hp = *hp;
    d->kd = (size_t)hp->nk * (size_t)hp->dk;
    d->vd = (size_t)hp->nv * (size_t)hp->dv;
    d->cd = 2 * d->kd + d->vd;
    d->conv_n = ((size_t)hp->conv_k - 1) * d->cd;
    MT_TRY(dn_bind(m, layer, d, err));
    L->state_floats = d->conv_n + (size_t)hp->nv * (size_t)hp->dv * (size_t)hp->dk;
    return MT_OK;
}
