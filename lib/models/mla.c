/* mla.c - multi-head latent attention as an mt_mixer (see mla.h for the two forms).
 * ref: mlx_lm/models/deepseek_v3.py (DeepseekV3Attention, the absorbed form), deepseek_v2.py
 * (DeepseekV2Attention, the expanded form), mla.py (MultiLinear), rope_utils.py (yarn). */
#include "models/mla.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/decoder_int.h"
#include "models/kvcache_int.h"
#include "tensor/dtype.h"
#include "tensor/ops.h"
#include "tensor/quant.h"

typedef struct mla_w {
    mt_mla_hp h;
    mt_linear q, q_a, q_b, kv_a, kv_b, o;
    mt_norm qn, kvn;
    mt_linear *eq, *uo;   /* absorbed: embed_q, unembed_out per head (views into stacked tensors) */
    void *own;            /* absorbed from a kv_b_proj: the matrices' storage */
} mla_w;

static void mla_free(void *p) {
    mla_w *w = p;
    if (!w) return;
    mt_dec_norm_free(&w->qn);
    mt_dec_norm_free(&w->kvn);
    free(w->eq);
    free(w->own);
    free(w);
}

/* A checkpoint saved before mlx-lm absorbed kv_b_proj (it still does so in sanitize() at load):
 * per head, embed_q = W_k^T [kv_lora, nope] and unembed_out = W_v [v_head_dim, kv_lora] from
 * kv_b_proj's rows [nope | v_head_dim] x kv_lora; a quantized kv_b_proj is dequantized (values
 * rounded to its scales' type, as mx.dequantize) and both are quantized again with its bits and
 * group size, as mx.quantize does on the CPU. */
static int absorb_kv_b(mt_model *m, mla_w *w, const char *path, size_t H, mt_err *err) {
    const mt_mla_hp *h = &w->h;
    size_t R = (size_t)h->kv_lora, np = (size_t)h->nope, vhd = (size_t)h->vhd, hr = np + vhd;
    mt_linear kb;
    MT_TRY(mt_linear_bind(&kb, m->st, m->cfg, path, H * hr, R, -1, err));
    int q = kb.quantized, bits = kb.bits, gs = kb.group_size;
    size_t es = q ? mt_dtype_size(kb.sdt) : 0;
    if (q && (np % (size_t)gs || R % (size_t)gs))
        return mt_seterr(err, MT_EFORMAT, "'%s': group size %d does not divide qk_nope_head_dim %zu and kv_lora_rank %zu",
                         path, gs, np, R);
    /* per head: embed_q [R, np] and unembed_out [vhd, R], packed (words, scales, biases) or float */
    size_t nk = R * np, nv = vhd * R;
    size_t per = q ? (nk + nv) * (size_t)bits / 8 + 2 * ((nk + nv) / (size_t)gs) * es : (nk + nv) * sizeof(float);
    per = (per + 63) / 64 * 64;
    w->own = malloc(H * per);
    float *blk = malloc((hr * R + nk + nv) * sizeof(float));
    if (!w->own || !blk) { free(blk); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    float *wk = blk + hr * R, *wv = wk + nk;
    int rc = MT_OK;
    for (size_t hh = 0; hh < H && !rc; hh++) {
        for (size_t r = 0; r < hr; r++) mt_linear_row(&kb, hh * hr + r, blk + r * R);
        for (size_t j = 0; j < R; j++)
            for (size_t i = 0; i < np; i++) wk[j * np + i] = blk[i * R + j];
        memcpy(wv, blk + np * R, nv * sizeof(float));
        char *o = (char *)w->own + hh * per;
        mt_linear *lk = &w->eq[hh], *lv = &w->uo[hh];
        *lk = (mt_linear){.out = R, .in = np};
        *lv = (mt_linear){.out = vhd, .in = R};
        if (!q) {
            memcpy(o, wk, (nk + nv) * sizeof(float));   /* wk and wv are adjacent */
            lk->wdt = lv->wdt = MT_F32;
            lk->w = o;
            lv->w = o + nk * sizeof(float);
            continue;
        }
        uint32_t *kw = (uint32_t *)o, *vw = kw + nk * (size_t)bits / 32;
        char *ks = (char *)(vw + nv * (size_t)bits / 32), *kbi = ks + nk / (size_t)gs * es;
        char *vs = kbi + nk / (size_t)gs * es, *vbi = vs + nv / (size_t)gs * es;
        rc = mt_quantize_affine(kw, ks, kbi, kb.sdt, wk, R, np, bits, gs, 0, err);
        if (!rc) rc = mt_quantize_affine(vw, vs, vbi, kb.sdt, wv, vhd, R, bits, gs, 0, err);
        lk->quantized = lv->quantized = 1;
        lk->bits = lv->bits = bits;
        lk->group_size = lv->group_size = gs;
        lk->sdt = lv->sdt = kb.sdt;
        lk->w = kw; lk->scales = ks; lk->biases = kbi;
        lv->w = vw; lv->scales = vs; lv->biases = vbi;
    }
    free(blk);
    return rc;
}

int mt_mla_read_hp(mt_model *m, mt_mla_hp *h, int flags, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int expanded = (flags & MT_MLA_EXPANDED) != 0, cpm = (flags & MT_MLA_MINICPM3) != 0;
    int m4 = (flags & MT_MLA_MISTRAL4) != 0;
    memset(h, 0, sizeof *h);
    h->expanded = expanded;
    h->norm_eps = cpm ? 1e-5f : 1e-6f;
    json_t *ql = json_object_get(c, "q_lora_rank");
    if (!ql || !json_is_null(ql)) MT_TRY(mt_cfg_count(c, "q_lora_rank", 1536, &h->q_lora, 0, err));
    MT_TRY(mt_cfg_count(c, "kv_lora_rank", 512, &h->kv_lora, 0, err));
    MT_TRY(mt_cfg_count(c, "qk_rope_head_dim", 64, &h->rope, 0, err));
    MT_TRY(mt_cfg_count(c, "qk_nope_head_dim", 128, &h->nope, 0, err));
    if (cpm) h->vhd = m->hp.hidden / m->hp.n_heads;
    else MT_TRY(mt_cfg_count(c, "v_head_dim", 128, &h->vhd, 0, err));
    if (h->vhd < 1) return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size %d gives no value head", m->hp.hidden);
    MT_TRY(mt_cfg_bool(c, "attention_bias", 0, &h->attn_bias, err));
    if (h->rope % 2) return mt_seterr(err, MT_EFORMAT, "config.json: \"qk_rope_head_dim\" %d must be even", h->rope);
    if (h->kv_lora > 65536 || h->nope > 4096 || h->rope > 1024 || h->vhd > 4096 || h->q_lora > 65536)
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: latent attention sizes beyond what mlx-gen supports");
    mt_decoder_hp *hp = &m->hp;
    hp->head_dim = h->nope + h->rope;
    hp->rot_dims = h->rope;
    hp->rope_traditional = !cpm;
    if (m4) {   /* rope_interleave (null: true); the llama-4 query scale of rope_parameters */
        json_t *ri = json_object_get(c, "rope_interleave");
        if (ri && !json_is_null(ri)) MT_TRY(mt_cfg_bool(c, "rope_interleave", 1, &hp->rope_traditional, err));
        json_t *rp = m->rope_scaling;
        json_t *b = json_object_get(rp, "llama_4_scaling_beta"), *o = json_object_get(rp, "original_max_position_embeddings");
        if (!json_is_number(b) || !isfinite(json_number_value(b)) || !json_is_number(o) || !(json_number_value(o) >= 1) ||
            !isfinite(json_number_value(o)))
            return mt_seterr(err, MT_EFORMAT, "config.json: mistral4 needs rope_parameters.llama_4_scaling_beta (a number) "
                             "and rope_parameters.original_max_position_embeddings (a positive number)");
        h->l4_beta = (float)json_number_value(b);
        h->l4_orig = (float)json_number_value(o);
    }
    double scale = 1.0 / sqrt((double)hp->head_dim);
    json_t *rs = m->rope_scaling;
    if (expanded && !cpm && !json_is_object(rs))
        return mt_seterr(err, MT_EFORMAT, "config.json: mlx-lm's %s needs a \"rope_scaling\" object (its "
                         "RoPE reads it)", cpm ? "minicpm3" : "deepseek_v2");
    if (json_is_object(rs) && !cpm) {
        json_t *t = json_object_get(rs, "type");
        if (!json_is_string(t)) t = json_object_get(rs, "rope_type");
        const char *ty = json_is_string(t) ? json_string_value(t) : "default";
        if (expanded && strcmp(ty, "yarn") && strcmp(ty, "deepseek_yarn"))
            return mt_seterr(err, MT_EUNSUPPORTED, "config.json: rope_scaling type \"%s\": mlx-lm's deepseek_v2 "
                             "applies yarn RoPE whatever the type says; only \"yarn\" is supported", ty);
        json_t *ma = json_object_get(rs, "mscale_all_dim");
        if (m4 && !strcmp(ty, "default")) ma = NULL;   /* apply_yarn_mscale: not for a default-type scaling */
        if (ma && !json_is_null(ma)) {
            if (!json_is_number(ma))
                return mt_seterr(err, MT_EFORMAT, "config.json: \"rope_scaling.mscale_all_dim\" must be a number");
            double msad = json_number_value(ma), f = 0;
            json_t *fv = json_object_get(rs, "factor");
            if (msad != 0) {
                if (!json_is_number(fv) || !isfinite(f = json_number_value(fv)))
                    return mt_seterr(err, MT_EFORMAT, "config.json: \"rope_scaling.factor\" must be a number");
                if (f > 1) {
                    double s = 0.1 * msad * log(f) + 1.0;
                    scale *= s * s;
                }
            }
        }
    }
    h->scale = (float)scale;
    hp->attn_scale = h->scale;
    if (expanded) {
        m->kv_heads = hp->n_heads;
        m->kv_head_dim = hp->head_dim;
        m->kv_v_dim = (size_t)hp->n_heads * (size_t)h->vhd;
    } else {
        m->kv_heads = 1;
        m->kv_head_dim = h->kv_lora;
        m->kv_v_dim = (size_t)h->rope;
    }
    return MT_OK;
}

static const mt_mixer mla_mixer;

int mt_mla_bind(mt_model *m, int i, const mt_mla_hp *h, mt_err *err) {
    mt_layer *L = &m->layers[i];
    size_t D = (size_t)m->hp.hidden, H = (size_t)m->hp.n_heads, qhd = (size_t)(h->nope + h->rope);
    size_t R = (size_t)h->kv_lora;
    int ab = h->attn_bias ? 1 : -1;
    mla_w *w = calloc(1, sizeof *w);
    if (!w) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->mixer = &mla_mixer;
    L->mix = w;
    w->h = *h;
    char p[256];
#define LIN(field, sub, o, in, bias) \
    do { snprintf(p, sizeof p, "model.layers.%d.self_attn.%s", i, sub); \
         MT_TRY(mt_linear_bind(&w->field, m->st, m->cfg, p, o, in, bias, err)); } while (0)
    if (h->q_lora) {
        LIN(q_a, "q_a_proj", (size_t)h->q_lora, D, ab);
        snprintf(p, sizeof p, "model.layers.%d.self_attn.q_a_layernorm", i);
        MT_TRY(mt_dec_bind_norm(m, p, (size_t)h->q_lora, &w->qn, err));
        LIN(q_b, "q_b_proj", H * qhd, (size_t)h->q_lora, -1);
    } else {
        LIN(q, "q_proj", H * qhd, D, -1);
    }
    LIN(kv_a, "kv_a_proj_with_mqa", R + (size_t)h->rope, D, ab);
    snprintf(p, sizeof p, "model.layers.%d.self_attn.kv_a_layernorm", i);
    MT_TRY(mt_dec_bind_norm(m, p, R, &w->kvn, err));
    LIN(o, "o_proj", D, H * (size_t)h->vhd, ab);
    if (h->expanded) {
        LIN(kv_b, "kv_b_proj", H * (size_t)(h->nope + h->vhd), R, -1);
    } else {
        w->eq = calloc(2 * H, sizeof *w->eq);
        if (!w->eq) return mt_seterr(err, MT_ENOMEM, "out of memory");
        w->uo = w->eq + H;
        snprintf(p, sizeof p, "model.layers.%d.self_attn.embed_q.weight", i);
        if (!mt_safetensors_get(m->st, p)) {
            snprintf(p, sizeof p, "model.layers.%d.self_attn.kv_b_proj.weight", i);
            if (mt_safetensors_get(m->st, p)) {   /* an older conversion: absorb kv_b_proj as mlx-lm's sanitize() */
                snprintf(p, sizeof p, "model.layers.%d.self_attn.kv_b_proj", i);
                return absorb_kv_b(m, w, p, H, err);
            }
        }
        snprintf(p, sizeof p, "model.layers.%d.self_attn.embed_q", i);
        MT_TRY(mt_dec_bind_stacked(m, p, (int)H, R, (size_t)h->nope, w->eq, err));
        snprintf(p, sizeof p, "model.layers.%d.self_attn.unembed_out", i);
        MT_TRY(mt_dec_bind_stacked(m, p, (int)H, (size_t)h->vhd, R, w->uo, err));
    }
#undef LIN
    return MT_OK;
}

void mt_mla_max_in(mt_model *m, const mt_mla_hp *h) {
    size_t c[5] = {(size_t)h->q_lora, (size_t)h->kv_lora, (size_t)h->nope,
                   (size_t)m->hp.n_heads * (size_t)h->vhd, (size_t)m->hp.hidden};
    for (int i = 0; i < 5; i++) if (c[i] > m->max_in) m->max_in = c[i];
}

/* ---- attention over the cache ---- */

typedef struct mla_ctx {
    const mt_fwd *f;
    const mla_w *w;
    int layer;
    size_t H, gsz, len;
    const float *qa;   /* absorbed: q_lat [T, H, kv_lora]; expanded: q [T, H, nope + rope] */
    const float *qpe;  /* absorbed: q [T, H, nope + rope] (its RoPE part at +nope); expanded: NULL */
    float *out;        /* absorbed: the latent mix [T, H, kv_lora]; expanded: [T, H, v_head_dim] */
    float *scratch;    /* per thread: gsz * len scores + a converted row */
    size_t per;
} mla_ctx;

/* n values of slot j's row (width w) from element off, as float32 (tmp when converted) */
static const float *kv_at(const mt_kvcache *c, const void *buf, size_t w, size_t j, size_t off, size_t n, float *tmp) {
    if (!c->f16) return (const float *)buf + j * w + off;
    mt_convert_to_f32(tmp, (const char *)buf + (j * w + off) * 2, MT_F16, n);
    return tmp;
}

static void mla_jobs(void *vc, size_t b, size_t e, int tid) {
    mla_ctx *a = vc;
    const mt_fwd *f = a->f;
    const mt_mla_hp *h = &a->w->h;
    size_t H = a->H, sets = H / a->gsz, R = (size_t)h->kv_lora, rp = (size_t)h->rope, qhd = (size_t)(h->nope + h->rope);
    size_t vhd = (size_t)h->vhd;
    float *s = a->scratch + (size_t)tid * a->per, *tk = s + a->gsz * a->len, *tv = tk + (R > qhd ? R : qhd);
    for (size_t job = b; job < e; job++) {
        size_t t = job / sets, h0 = job % sets * a->gsz;
        const mt_kvcache *kc = f->rc[t];
        size_t j0, j1;
        mt_dec_row_span(f->m, a->layer, kc, f->rpos[t], f->lo[t], f->hi[t], &j0, &j1);
        size_t n = j1 > j0 ? j1 - j0 : 0;
        const void *K = kc->k[a->layer], *V = kc->v[a->layer];
        for (size_t j = 0; j < n; j++) {
            if (!h->expanded) {
                const float *kr = kv_at(kc, K, kc->kv_dim, j0 + j, 0, R, tk);
                const float *vr = kv_at(kc, V, kc->v_dim, j0 + j, 0, rp, tv);
                for (size_t g = 0; g < a->gsz; g++) {
                    size_t hh = h0 + g;
                    float sc = mt_dot(a->qa + (t * H + hh) * R, kr, R) +
                               mt_dot(a->qpe + (t * H + hh) * qhd + h->nope, vr, rp);
                    s[g * a->len + j] = sc * h->scale;
                }
            } else {
                for (size_t g = 0; g < a->gsz; g++) {
                    size_t hh = h0 + g;
                    const float *kr = kv_at(kc, K, kc->kv_dim, j0 + j, hh * qhd, qhd, tk);
                    s[g * a->len + j] = mt_dot(a->qa + (t * H + hh) * qhd, kr, qhd) * h->scale;
                }
            }
        }
        size_t od = h->expanded ? vhd : R;
        for (size_t g = 0; g < a->gsz; g++) {
            mt_softmax(s + g * a->len, n);
            memset(a->out + (t * H + h0 + g) * od, 0, od * sizeof(float));
        }
        for (size_t j = 0; j < n; j++) {
            if (!h->expanded) {
                const float *kr = kv_at(kc, K, kc->kv_dim, j0 + j, 0, R, tk);
                for (size_t g = 0; g < a->gsz; g++)
                    mt_axpy(a->out + (t * H + h0 + g) * R, s[g * a->len + j], kr, R);
            } else {
                for (size_t g = 0; g < a->gsz; g++) {
                    size_t hh = h0 + g;
                    const float *vr = kv_at(kc, V, kc->v_dim, j0 + j, hh * vhd, vhd, tv);
                    mt_axpy(a->out + (t * H + hh) * vhd, s[g * a->len + j], vr, vhd);
                }
            }
        }
    }
}

/* y[T, H, oc] (head h at column block h) = per-head linears ls[h] over x[T, H, ic] (row stride
 * xstride, head h at h * xstride / H).  A few rows (decoding): the heads are the pool's jobs, each
 * product run in its thread (pool-less, so its sums are the same as when the pool splits it);
 * more rows: head by head, each product split over the pool. */
typedef struct ph_ctx {
    const mt_fwd *f;
    const mt_linear *ls;
    const float *x;
    size_t T, H, ic, oc, xstride;
    float *y, *scratch;
    size_t per;
} ph_ctx;

static void ph_one(const ph_ctx *c, size_t hh, float *gin, float *gout, float *work, mt_pool *pool) {
    for (size_t t = 0; t < c->T; t++)
        memcpy(gin + t * c->ic, c->x + t * c->xstride + hh * (c->xstride / c->H), c->ic * sizeof(float));
    if (c->f->rows1) mt_linear_forward_rows1(&c->ls[hh], gin, c->T, gout, work, pool);
    else mt_linear_forward(&c->ls[hh], gin, c->T, gout, work, pool);
    for (size_t t = 0; t < c->T; t++) memcpy(c->y + (t * c->H + hh) * c->oc, gout + t * c->oc, c->oc * sizeof(float));
}

static void ph_job(void *vc, size_t b, size_t e, int tid) {
    const ph_ctx *c = vc;
    float *work = mt_linear_work_align(c->scratch + (size_t)tid * c->per);
    float *gin = work + c->ic, *gout = gin + c->T * c->ic;
    for (size_t hh = b; hh < e; hh++) ph_one(c, hh, gin, gout, work, NULL);
}

#define MLA_HEAD_JOBS_MAX_T 4   /* rows up to which the heads are the jobs */

static int per_head(const mt_fwd *f, const mt_linear *ls, const float *x, size_t T, size_t H, size_t ic, size_t oc,
                    size_t xstride, float *y, float *gin, float *gout, mt_err *err) {
    ph_ctx c = {f, ls, x, T, H, ic, oc, xstride, y, NULL, 0};
    if (T > MLA_HEAD_JOBS_MAX_T) {
        for (size_t hh = 0; hh < H; hh++) ph_one(&c, hh, gin, gout, f->work, f->m->pool);
        return MT_OK;
    }
    size_t nt = (size_t)mt_pool_size(f->m->pool);
    c.per = ic + T * ic + T * oc + MT_LINEAR_WORK_SLACK;
    c.scratch = malloc(nt * c.per * sizeof(float));
    if (!c.scratch) return mt_seterr(err, MT_ENOMEM, "out of memory for latent attention");
    mt_pool_for(f->m->pool, H, 1, ph_job, &c);
    free(c.scratch);
    return MT_OK;
}

static int mla_forward(const mt_fwd *f, int l, const float *in, float *out, mt_err *err) {
    mt_model *m = f->m;
    const mt_layer *L = &m->layers[l];
    const mla_w *w = L->mix;
    const mt_mla_hp *h = &w->h;
    size_t T = f->T, D = (size_t)m->hp.hidden, H = (size_t)m->hp.n_heads, R = (size_t)h->kv_lora;
    size_t rp = (size_t)h->rope, np = (size_t)h->nope, vhd = (size_t)h->vhd, qhd = np + rp, QL = (size_t)h->q_lora;
    size_t nt = (size_t)mt_pool_size(m->pool), half = rp / 2;
    size_t gsz = H;
    while (gsz % 2 == 0 && T * H / gsz < 2 * nt) gsz /= 2;
    size_t wide = R > qhd ? R : qhd;
    size_t per = gsz * (f->len ? f->len : 1) + wide + (vhd > rp ? vhd : rp);
    size_t nq = T * H * qhd, nckv = T * (R + rp), nlat = h->expanded ? 0 : T * H * R;   /* q_lat, the latent mix */
    size_t gw = R > np ? R : np;
    if (vhd > gw) gw = vhd;
    size_t ng = T * gw, nkvb = h->expanded ? T * H * (np + vhd) : 0;   /* gin / gout: per-head rows in and out */
    size_t nrow = h->expanded ? H * qhd + H * vhd : 0;
    size_t total = T * QL + nq + nckv + 2 * nlat + 2 * ng + nkvb + nrow + T * H * vhd + nt * per;
    float *buf = malloc(total * sizeof(float));
    if (!buf) return mt_seterr(err, MT_ENOMEM, "out of memory for latent attention");
    float *qa = buf, *q = qa + T * QL, *ckv = q + nq, *qlat = ckv + nckv, *olat = qlat + nlat, *gin = olat + nlat;
    float *gout = gin + ng, *kvb = gout + ng, *krow = kvb + nkvb, *vrow = krow + (h->expanded ? H * qhd : 0);
    float *att = krow + nrow, *scratch = att + T * H * vhd;

    /* queries */
    if (QL) {
        mt_dec_observe(m, l, "self_attn.q_a_proj", in, T, D);
        mt_dec_linear(f, &w->q_a, in, T, qa);
        for (size_t t = 0; t < T; t++) mt_rmsnorm(qa + t * QL, qa + t * QL, w->qn.w, QL, h->norm_eps);
        mt_dec_observe(m, l, "self_attn.q_b_proj", qa, T, QL);
        mt_dec_linear(f, &w->q_b, qa, T, q);
    } else {
        mt_dec_observe(m, l, "self_attn.q_proj", in, T, D);
        mt_dec_linear(f, &w->q, in, T, q);
    }
    /* the compressed latent and the shared RoPE key */
    mt_dec_observe(m, l, "self_attn.kv_a_proj_with_mqa", in, T, D);
    mt_dec_linear(f, &w->kv_a, in, T, ckv);
    float *lat = gin;   /* the normed latent rows [T, R] (gin is free until the per-head products) */
    for (size_t t = 0; t < T; t++) mt_rmsnorm(lat + t * R, ckv + t * (R + rp), w->kvn.w, R, h->norm_eps);
    if (h->expanded) {
        mt_dec_observe(m, l, "self_attn.kv_b_proj", lat, T, R);
        mt_dec_linear(f, &w->kv_b, lat, T, kvb);
    }
    for (size_t t = 0; t < T; t++) {
        float *qt = q + t * H * qhd, *kpe = ckv + t * (R + rp) + R;
        if (L->use_rope) {
            float s = L->rope_in_scale;
            if (s != 1.0f) {
                for (size_t hh = 0; hh < H; hh++)
                    for (size_t i = 0; i < rp; i++) qt[hh * qhd + np + i] *= s;
                for (size_t i = 0; i < rp; i++) kpe[i] *= s;
            }
            const float *fr = f->dyn && L->inv_freq == m->inv_freq ? f->dyn + t * half : L->inv_freq;
            mt_rope(qt + np, H, qhd, rp, fr, (double)f->rpos[t], m->hp.rope_traditional);
            mt_rope(kpe, 1, rp, rp, fr, (double)f->rpos[t], m->hp.rope_traditional);
        }
        if (h->l4_beta != 0) {   /* the llama-4 scale of the row's whole query */
            float s = 1.0f + h->l4_beta * logf(1.0f + floorf((float)f->rpos[t] / h->l4_orig));
            for (size_t i = 0; i < H * qhd; i++) qt[i] *= s;
        }
        if (!h->expanded) {
            mt_kv_write(f->rc[t], l, f->slot[t], lat + t * R, kpe);
        } else {
            const float *kv = kvb + t * H * (np + vhd);
            for (size_t hh = 0; hh < H; hh++) {
                memcpy(krow + hh * qhd, kv + hh * (np + vhd), np * sizeof(float));
                memcpy(krow + hh * qhd + np, kpe, rp * sizeof(float));
                memcpy(vrow + hh * vhd, kv + hh * (np + vhd) + np, vhd * sizeof(float));
            }
            mt_kv_write(f->rc[t], l, f->slot[t], krow, vrow);
        }
    }
    mla_ctx ac = {f, w, l, H, gsz, f->len ? f->len : 1, q, NULL, h->expanded ? att : olat, scratch, per};
    if (!h->expanded) {
        /* each head's query in the latent space: embed_q(q_nope) */
        int r = per_head(f, w->eq, q, T, H, np, R, H * qhd, qlat, gin, gout, err);
        if (r) { free(buf); return r; }
        ac.qa = qlat;
        ac.qpe = q;
    }
    mt_pool_for(m->pool, T * (H / gsz), 1, mla_jobs, &ac);
    if (!h->expanded) {
        int r = per_head(f, w->uo, olat, T, H, R, vhd, H * R, att, gin, gout, err);
        if (r) { free(buf); return r; }
    }
    mt_dec_observe(m, l, "self_attn.o_proj", att, T, H * vhd);
    mt_dec_linear(f, &w->o, att, T, out);
    free(buf);
    return MT_OK;
}

static const mt_mixer mla_mixer = {"multi-head latent attention", mla_forward, mla_free};
