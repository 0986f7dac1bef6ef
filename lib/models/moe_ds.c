/* moe_ds.c - the DeepSeek-style mixture of experts as an mt_ffn (see mla.h).
 * Router: scores sigmoid(logits) (choice by score + e_score_correction_bias, weights the plain
 * scores) or softmax(logits); with groups, the n_group - topk_group weakest groups (by the sum of
 * their best two choice scores, or by their best one) have their scores set to 0; top_k by the
 * choice scores; weights renormalized when asked, times routed_scaling_factor.  Experts are
 * SwitchGLU's stacked switch_mlp.{gate,up,down}_proj (dots1: experts.*); shared
 * experts, a dense gated MLP of n_shared_experts * moe_intermediate_size, are added.
 * ref: mlx_lm/models/deepseek_v3.py (group_expert_select, MoEGate, DeepseekV3MoE),
 * deepseek_v2.py (MoEGate: softmax, group_limited_greedy), glm4_moe.py, dots1.py. */
#include "models/mla.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/decoder_int.h"
#include "tensor/ops.h"

typedef struct dsmoe_w {
    mt_dsmoe_hp h;
    float *bias;             /* [n_experts] e_score_correction_bias, or NULL */
    mt_linear sg, su, sd;    /* shared experts (n_shared > 0) */
} dsmoe_w;

static void dsmoe_free(void *p) {
    dsmoe_w *w = p;
    if (!w) return;
    free(w->bias);
    free(w);
}

int mt_dsmoe_read_hp(mt_model *m, mt_dsmoe_hp *h, int norm_def, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    memset(h, 0, sizeof *h);
    double rsf = 1;
    MT_TRY(mt_cfg_count(c, "n_routed_experts", 0, &h->n_experts, 1, err));
    MT_TRY(mt_cfg_count(c, "num_experts_per_tok", 0, &h->top_k, 1, err));
    MT_TRY(mt_cfg_count(c, "moe_intermediate_size", 0, &h->inter, 1, err));
    json_t *ns = json_object_get(c, "n_shared_experts");
    if (ns && !json_is_null(ns)) MT_TRY(mt_cfg_count(c, "n_shared_experts", 1, &h->n_shared, 1, err));
    MT_TRY(mt_cfg_count(c, "n_group", 1, &h->n_group, 0, err));
    MT_TRY(mt_cfg_count(c, "topk_group", 1, &h->topk_group, 0, err));
    MT_TRY(mt_cfg_bool(c, "norm_topk_prob", norm_def, &h->norm_topk, err));
    MT_TRY(mt_cfg_real(c, "routed_scaling_factor", 1.0, &rsf, 0, MT_CFG_FINITE, err));
    h->routed_scale = (float)rsf;
    if (h->top_k > h->n_experts)
        return mt_seterr(err, MT_EFORMAT, "config.json: num_experts_per_tok %d exceeds n_routed_experts %d", h->top_k,
                         h->n_experts);
    if (h->top_k > 64) return mt_seterr(err, MT_EUNSUPPORTED, "config.json: more than 64 experts per token");
    if (h->n_experts % h->n_group)
        return mt_seterr(err, MT_EFORMAT, "config.json: n_group %d does not divide n_routed_experts %d", h->n_group,
                         h->n_experts);
    if (h->n_group > 1024) return mt_seterr(err, MT_EUNSUPPORTED, "config.json: more than 1024 expert groups");
    if (h->topk_group > h->n_group)
        return mt_seterr(err, MT_EFORMAT, "config.json: topk_group %d exceeds n_group %d", h->topk_group, h->n_group);
    if (h->n_group > 1 && h->topk_group < h->n_group && h->n_experts / h->n_group < 2)
        return mt_seterr(err, MT_EFORMAT, "config.json: groups of one expert (n_group %d, n_routed_experts %d) cannot "
                         "be ranked by their best two", h->n_group, h->n_experts);
    return MT_OK;
}

static const mt_ffn dsmoe_ffn;

int mt_dsmoe_bind(mt_model *m, int i, const mt_dsmoe_hp *h, mt_err *err) {
    mt_layer *L = &m->layers[i];
    size_t D = (size_t)m->hp.hidden;
    dsmoe_w *w = calloc(1, sizeof *w);
    if (!w) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->ffn = &dsmoe_ffn;
    L->ffd = w;
    w->h = *h;
    char p[256];
    size_t E = (size_t)h->n_experts, I = (size_t)h->inter;
    snprintf(p, sizeof p, "model.layers.%d.mlp.gate", i);
    MT_TRY(mt_linear_bind(&L->router, m->st, m->cfg, p, E, D, -1, err));
    L->exp_gate = calloc(3 * E, sizeof *L->exp_gate);   /* freed by mt_model_free */
    if (!L->exp_gate) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->exp_up = L->exp_gate + E;
    L->exp_down = L->exp_up + E;
    const char *sub[3] = {"gate_proj", "up_proj", "down_proj"};
    mt_linear *dst[3] = {L->exp_gate, L->exp_up, L->exp_down};
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "model.layers.%d.mlp.%s.%s", i, h->experts, sub[k]);
        MT_TRY(mt_dec_bind_stacked(m, p, (int)E, k == 2 ? D : I, k == 2 ? I : D, dst[k], err));
    }
    if (h->has_bias) {
        snprintf(p, sizeof p, "model.layers.%d.mlp.gate.e_score_correction_bias", i);
        const mt_tensor_view *t = mt_safetensors_get(m->st, p);
        if (!t) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", p);
        if (t->ndim != 1 || t->shape[0] != h->n_experts)
            return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected shape [%d]", p, h->n_experts);
        w->bias = malloc((size_t)h->n_experts * sizeof *w->bias);
        if (!w->bias) return mt_seterr(err, MT_ENOMEM, "out of memory");
        MT_TRY(mt_safetensors_read_f32(m->st, p, w->bias, (size_t)h->n_experts, 0, err));
    }
    if (h->n_shared) {
        size_t SI = (size_t)h->inter * (size_t)h->n_shared;
        int mb = m->hp.mlp_bias ? 1 : -1;   /* dots1's MLPs take mlp_bias; the others have none */
        snprintf(p, sizeof p, "model.layers.%d.mlp.shared_experts.gate_proj", i);
        MT_TRY(mt_linear_bind(&w->sg, m->st, m->cfg, p, SI, D, mb, err));
        snprintf(p, sizeof p, "model.layers.%d.mlp.shared_experts.up_proj", i);
        MT_TRY(mt_linear_bind(&w->su, m->st, m->cfg, p, SI, D, mb, err));
        snprintf(p, sizeof p, "model.layers.%d.mlp.shared_experts.down_proj", i);
        MT_TRY(mt_linear_bind(&w->sd, m->st, m->cfg, p, D, SI, mb, err));
        if (SI > m->max_in) m->max_in = SI;
    }
    return MT_OK;
}

/* The router of one row: sel[top_k] experts and their weights wt[top_k].  g[E] (logits) is
 * overwritten; sc[E] scratch. */
static void route(const dsmoe_w *w, float *g, float *sc, int *sel, float *wt) {
    const mt_dsmoe_hp *h = &w->h;
    size_t E = (size_t)h->n_experts, K = (size_t)h->top_k;
    if (h->scoring == MT_DSMOE_SIGMOID) {
        for (size_t e = 0; e < E; e++) {
            g[e] = 1.0f / (1.0f + expf(-g[e]));              /* the weights' scores */
            sc[e] = w->bias ? g[e] + w->bias[e] : g[e];      /* the choice's */
        }
    } else {
        mt_softmax(g, E);
        memcpy(sc, g, E * sizeof *sc);   /* g: the unmasked scores */
    }
    size_t kz = (size_t)(h->n_group - h->topk_group);
    if (h->n_group > 1 && kz > 0) {
        size_t G = (size_t)h->n_group, gs = E / G;
        float gsc[1024];
        int dropped[1024] = {0};
        for (size_t q = 0; q < G && q < 1024; q++) {
            const float *v = sc + q * gs;
            if (h->group_max) {
                float mx = v[0];
                for (size_t i = 1; i < gs; i++) if (v[i] > mx) mx = v[i];
                gsc[q] = mx;
            } else {   /* the sum of the two best */
                size_t b1 = 0;
                for (size_t i = 1; i < gs; i++) if (v[i] > v[b1]) b1 = i;
                size_t b2 = b1 == 0 ? 1 : 0;
                for (size_t i = 0; i < gs; i++) if (i != b1 && v[i] > v[b2]) b2 = i;
                gsc[q] = v[b1] + v[b2];
            }
        }
        for (size_t k = 0; k < kz; k++) {   /* the kz weakest groups (ties: the lower index) */
            size_t lo = SIZE_MAX;
            for (size_t q = 0; q < G && q < 1024; q++)
                if (!dropped[q] && (lo == SIZE_MAX || gsc[q] < gsc[lo])) lo = q;
            if (lo == SIZE_MAX) break;
            dropped[lo] = 1;
            for (size_t i = 0; i < gs; i++) sc[lo * gs + i] = 0.0f;
        }
    }
    float tmp[64];
    mt_dec_topk(sc, E, K, sel, tmp);
    float sum = 0;
    for (size_t k = 0; k < K; k++) {
        /* sigmoid: the plain score; softmax: the (group-masked) probability */
        wt[k] = h->scoring == MT_DSMOE_SIGMOID || h->w_unmasked ? g[sel[k]] : sc[sel[k]];
        sum += wt[k];
    }
    if (h->norm_any) sum += 1e-20f;
    for (size_t k = 0; k < K; k++) {
        if ((K > 1 || h->norm_any) && h->norm_topk) wt[k] /= sum;
        wt[k] *= h->routed_scale;
    }
}

static int dsmoe_forward(const mt_fwd *f, int l, const float *x, float *out, mt_err *err) {
    mt_model *m = f->m;
    const mt_layer *L = &m->layers[l];
    const dsmoe_w *w = L->ffd;
    const mt_dsmoe_hp *h = &w->h;
    size_t T = f->T, D = (size_t)m->hp.hidden, E = (size_t)h->n_experts, K = (size_t)h->top_k, I = (size_t)h->inter;
    size_t SI = I * (size_t)h->n_shared, WI = SI > I ? SI : I;
    size_t total = T * E + E + T * K + T * D + 2 * T * WI + T * D;
    float *buf = malloc(total * sizeof(float));
    int *sel = malloc(T * K * sizeof *sel);
    size_t *rows = malloc(T * sizeof *rows);
    if (!buf || !sel || !rows) {
        free(buf); free(sel); free(rows);
        return mt_seterr(err, MT_ENOMEM, "out of memory for the experts");
    }
    float *g = buf, *sc = g + T * E, *wt = sc + E, *xg = wt + T * K, *gg = xg + T * D, *uu = gg + T * WI;
    float *y = uu + T * WI;
    mt_dec_observe(m, l, "mlp.gate", x, T, D);
    mt_dec_linear(f, &L->router, x, T, g);
    for (size_t t = 0; t < T; t++) route(w, g + t * E, sc, sel + t * K, wt + t * K);
    memset(out, 0, T * D * sizeof(float));
    /* expert by expert, over the rows that chose it */
    for (size_t e = 0; e < E; e++) {
        size_t n = 0;
        for (size_t t = 0; t < T; t++)
            for (size_t k = 0; k < K; k++)
                if (sel[t * K + k] == (int)e) { rows[n] = t * K + k; memcpy(xg + n * D, x + t * D, D * sizeof(float)); n++; }
        if (!n) continue;
        if (m->on_linear_input) {
            char sub[96];
            snprintf(sub, sizeof sub, "mlp.%s.gate_proj.%zu", h->experts, e);
            mt_dec_observe(m, l, sub, xg, n, D);
            snprintf(sub, sizeof sub, "mlp.%s.up_proj.%zu", h->experts, e);
            mt_dec_observe(m, l, sub, xg, n, D);
        }
        mt_dec_linear(f, &L->exp_gate[e], xg, n, gg);
        mt_dec_linear(f, &L->exp_up[e], xg, n, uu);
        mt_swiglu(gg, uu, n * I);
        if (m->on_linear_input) {
            char sub[96];
            snprintf(sub, sizeof sub, "mlp.%s.down_proj.%zu", h->experts, e);
            mt_dec_observe(m, l, sub, gg, n, I);
        }
        mt_dec_linear(f, &L->exp_down[e], gg, n, y);
        for (size_t i = 0; i < n; i++) {
            size_t t = rows[i] / K;
            mt_axpy(out + t * D, wt[rows[i]], y + i * D, D);
        }
    }
    if (h->n_shared) {
        mt_dec_observe(m, l, "mlp.shared_experts.gate_proj", x, T, D);
        mt_dec_observe(m, l, "mlp.shared_experts.up_proj", x, T, D);
        mt_dec_linear(f, &w->sg, x, T, gg);
        mt_dec_linear(f, &w->su, x, T, uu);
        mt_swiglu(gg, uu, T * SI);
        mt_dec_observe(m, l, "mlp.shared_experts.down_proj", gg, T, SI);
        mt_dec_linear(f, &w->sd, gg, T, y);
        for (size_t i = 0; i < T * D; i++) out[i] += y[i];
    }
    free(rows);
    free(sel);
    free(buf);
    return MT_OK;
}

static const mt_ffn dsmoe_ffn = {"DeepSeek mixture of experts", dsmoe_forward, dsmoe_free};
