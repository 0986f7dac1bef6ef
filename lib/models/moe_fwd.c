/* moe_fwd.c - the shared decoder's built-in mixture-of-experts MLP (layers with L->moe):
 * binding (mt_decoder_bind_moe) and the forward pass (mt_dec_moe).
 *
 * The router is one function of described options (mt_decoder_hp's MoE block): scores by
 * softmax / sigmoid / phimoe's sparsemixer, top-k before or after the softmax, a selection
 * bias and group-limited selection, renormalization, a routed scaling factor; then a shared
 * expert (optionally sigmoid-gated) and expert biases.
 *
 * Rows are grouped by expert: the router runs over a block of rows at once, each chosen
 * expert then runs once over all the rows that chose it (one [n, hidden] product per
 * projection), and every row sums its experts' outputs in its own top-k order.  Under
 * f->rows1 every product is mt_linear_forward_rows1, so a row's result is bit for bit the
 * one it gets alone, whatever rows it is grouped with.
 * ref: mlx_lm/models/mixtral.py, qwen3_moe.py, qwen2_moe.py, olmoe.py, granitemoe.py,
 * phimoe.py (sparsemixer), ernie4_5_moe.py, bailing_moe.py (group_expert_select),
 * switch_layers.py (SwitchGLU). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/decoder_int.h"
#include "tensor/ops.h"

/* ---- binding ---- */

/* Expert e of a stacked [E, out, in] tensor (and with bias its [E, out] biases) as mt_linear views. */
static int bind_stacked(mt_model *m, const char *path, int E, size_t out, size_t in, int bias, mt_linear *dst,
                        mt_err *err) {
    char name[320];
    snprintf(name, sizeof name, "%s.weight", path);
    const mt_tensor_view *w = mt_safetensors_get(m->st, name);
    if (!w) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
    int quantized = 0;
    mt_quant_params qp = {0};
    MT_TRY(mt_config_quant_for(m->cfg, m->st, path, &quantized, &qp, err));
    if (w->ndim != 3 || w->shape[0] != E || (size_t)w->shape[1] != out)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected shape [%d, %zu, ...]", name, E, out);
    mt_linear base = {.out = out, .in = in};
    size_t wrow;   /* bytes of one expert's weight */
    const mt_tensor_view *sb[2] = {NULL, NULL};
    if (quantized) {
        if (w->dtype != MT_U32 || (size_t)w->shape[2] != in * (size_t)qp.bits / 32 || in % (size_t)qp.group_size)
            return mt_seterr(err, MT_EFORMAT, "tensor '%s': not %d-bit packed rows of %zu", name, qp.bits, in);
        int64_t ss[3] = {E, (int64_t)out, (int64_t)(in / (size_t)qp.group_size)};
        MT_TRY(mt_linear_bind_scales(m->st, path, qp.mode, 3, ss, sb, err));
        base.quantized = 1;
        base.bits = qp.bits;
        base.group_size = qp.group_size;
        base.mode = qp.mode;
        base.sdt = mt_qmode_scale_dtype(qp.mode, sb[0]->dtype);
        wrow = out * in * (size_t)qp.bits / 8;
    } else {
        if ((w->dtype != MT_F32 && w->dtype != MT_F16 && w->dtype != MT_BF16) || (size_t)w->shape[2] != in)
            return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected [%d, %zu, %zu] of F32/F16/BF16", name, E, out, in);
        base.wdt = w->dtype;
        wrow = out * in * mt_dtype_size(w->dtype);
    }
    const mt_tensor_view *bv = NULL;
    if (bias) {
        snprintf(name, sizeof name, "%s.bias", path);
        bv = mt_safetensors_get(m->st, name);
        if (!bv || bv->ndim != 2 || bv->shape[0] != E || (size_t)bv->shape[1] != out ||
            (bv->dtype != MT_F32 && bv->dtype != MT_F16 && bv->dtype != MT_BF16))
            return mt_seterr(err, MT_EFORMAT, "tensor '%s': missing or not [%d, %zu] of F32/F16/BF16", name, E, out);
    }
    for (int e = 0; e < E; e++) {
        dst[e] = base;
        if (bv) {
            dst[e].bias = (const char *)bv->data + (size_t)e * out * mt_dtype_size(bv->dtype);
            dst[e].bdt = bv->dtype;
        }
        dst[e].w = (const char *)w->data + (size_t)e * wrow;
        if (quantized) {
            size_t srow = out * (in / (size_t)qp.group_size) * mt_dtype_size(base.sdt);
            dst[e].scales = (const char *)sb[0]->data + (size_t)e * srow;
            dst[e].biases = sb[1] ? (const char *)sb[1]->data + (size_t)e * srow : NULL;
        }
    }
    return MT_OK;
}

/* A config with no_mlx: the router options decoder_mlx.c's moe() does not implement. */
static const char *mlx_gap(const mt_decoder_hp *hp, const mt_model *m) {
    if (hp->moe_score != MT_MOE_SOFTMAX) return "its MoE router's score function (sigmoid / sparsemixer)";
    if (hp->moe_shared_inter) return "its MoE shared expert";
    if (hp->moe_exp_bias) return "its MoE expert biases";
    if (m->moe_sel_bias_name || hp->moe_groups > 1) return "its MoE router's selection bias / expert groups";
    if ((hp->moe_scale != 0 && hp->moe_scale != 1) || hp->moe_norm_add != 0 || hp->moe_norm_min != 0)
        return "its MoE routed scaling";
    return NULL;
}

int mt_decoder_bind_moe(mt_model *m, int layer, const char *prefix, mt_err *err) {
    mt_decoder_hp *hp = &m->hp;
    mt_layer *L = &m->layers[layer];
    size_t H = (size_t)hp->hidden, I = (size_t)hp->moe_inter;
    int E = hp->n_experts;
    if (E <= 0 || hp->top_k <= 0 || hp->top_k > E || hp->top_k > MT_MOE_MAX_K || !I)
        return mt_seterr(err, MT_EFORMAT, "config.json: bad expert counts (%d experts, top %d, size %zu)", E, hp->top_k, I);
    if (hp->moe_groups > 1 && (hp->moe_groups > 256 || E % hp->moe_groups || E / hp->moe_groups < 2 || hp->moe_topk_groups < 1 ||
                               hp->moe_topk_groups > hp->moe_groups))
        return mt_seterr(err, MT_EFORMAT, "config.json: %d experts do not split into %d groups of 2 or more with %d kept",
                         E, hp->moe_groups, hp->moe_topk_groups);
    char p[320];
    snprintf(p, sizeof p, "%s.%s", prefix, m->moe_router ? m->moe_router : "gate");
    MT_TRY(mt_linear_bind(&L->router, m->st, m->cfg, p, (size_t)E, H, -1, err));
    L->exp_gate = calloc((size_t)E * 3, sizeof(mt_linear));
    if (!L->exp_gate) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->exp_up = L->exp_gate + E;
    L->exp_down = L->exp_up + E;
    L->moe = 1;
    int eb = hp->moe_exp_bias;
    snprintf(p, sizeof p, "%s.switch_mlp.gate_proj", prefix);
    MT_TRY(bind_stacked(m, p, E, I, H, eb, L->exp_gate, err));
    snprintf(p, sizeof p, "%s.switch_mlp.up_proj", prefix);
    MT_TRY(bind_stacked(m, p, E, I, H, eb, L->exp_up, err));
    snprintf(p, sizeof p, "%s.switch_mlp.down_proj", prefix);
    MT_TRY(bind_stacked(m, p, E, H, I, eb, L->exp_down, err));
    if (m->moe_sel_bias_name) {
        snprintf(p, sizeof p, "%s.%s", prefix, m->moe_sel_bias_name);
        L->moe_sel_bias = malloc((size_t)E * sizeof(float));
        if (!L->moe_sel_bias) return mt_seterr(err, MT_ENOMEM, "out of memory");
        MT_TRY(mt_safetensors_read_f32(m->st, p, L->moe_sel_bias, (size_t)E, 0, err));
    }
    if (hp->moe_shared_inter > 0) {
        size_t S = (size_t)hp->moe_shared_inter;
        const char *sn = m->moe_shared_name ? m->moe_shared_name : "shared_expert";
        int b = eb ? 1 : -1;
        snprintf(p, sizeof p, "%s.%s.gate_proj", prefix, sn);
        MT_TRY(mt_linear_bind(&L->sh_gate, m->st, m->cfg, p, S, H, b, err));
        snprintf(p, sizeof p, "%s.%s.up_proj", prefix, sn);
        MT_TRY(mt_linear_bind(&L->sh_up, m->st, m->cfg, p, S, H, b, err));
        snprintf(p, sizeof p, "%s.%s.down_proj", prefix, sn);
        MT_TRY(mt_linear_bind(&L->sh_down, m->st, m->cfg, p, H, S, b, err));
        if (hp->moe_shared_gate) {
            snprintf(p, sizeof p, "%s.%s_gate", prefix, sn);
            MT_TRY(mt_linear_bind(&L->sh_sgate, m->st, m->cfg, p, 1, H, -1, err));
        }
    }
    const char *gap = mlx_gap(hp, m);
    if (gap && !m->no_mlx) m->no_mlx = gap;
    return MT_OK;
}

/* ---- routing ---- */

/* phimoe's sparsemixer over the logits g[E]: pick by pick, the best remaining expert, weighted by
 * its probability under a softmax over the remaining experts whose logit is within
 * 2 * jitter of it relative to max(|logit|, best); masked[E] is scratch. */
static void sparsemixer(const float *g, size_t E, size_t K, float jitter, int *sel, float *w, float *masked) {
    float thr = 2.0f * jitter;
    memcpy(masked, g, E * sizeof *masked);
    for (size_t k = 0; k < K; k++) {
        size_t best = 0;
        for (size_t e = 1; e < E; e++) if (masked[e] > masked[best]) best = e;
        float top = masked[best], sum = 0;
        for (size_t e = 0; e < E; e++) {
            float factor = fmaxf(fabsf(g[e]), top);
            if (!((top - g[e]) / factor > thr) && masked[e] != -INFINITY) sum += expf(masked[e] - top);
        }
        sel[k] = (int)best;
        w[k] = 1.0f / sum;
        masked[best] = -INFINITY;
    }
}

/* bailing_moe's group-limited selection: the experts of all but the topk_groups best of
 * `groups` equal groups (a group's score: the sum of its two best) get score 0. */
static void keep_groups(float *s, size_t E, int groups, int keep) {
    size_t gs = E / (size_t)groups;
    float gsc[256];
    int dropped[256] = {0};
    for (int q = 0; q < groups; q++) {
        const float *v = s + (size_t)q * gs;
        float a = -INFINITY, b = -INFINITY;
        for (size_t i = 0; i < gs; i++) {
            if (v[i] > a) { b = a; a = v[i]; }
            else if (v[i] > b) b = v[i];
        }
        gsc[q] = a + b;
    }
    for (int d = 0; d < groups - keep; d++) {   /* drop the lowest group, groups - keep times */
        int lo = -1;
        for (int q = 0; q < groups; q++)
            if (!dropped[q] && (lo < 0 || gsc[q] < gsc[lo])) lo = q;
        dropped[lo] = 1;
        for (size_t i = 0; i < gs; i++) s[(size_t)lo * gs + i] = 0.0f;
    }
}

/* One row's routing: the router logits g[E] (overwritten by the scores), the chosen experts
 * sel[K] and their weights w[K]; tmp[E] scratch. */
static void route(const mt_model *m, const mt_layer *L, float *g, int *sel, float *w, float *tmp) {
    const mt_decoder_hp *hp = &m->hp;
    size_t E = (size_t)hp->n_experts, K = (size_t)hp->top_k;
    if (hp->moe_score == MT_MOE_SPARSEMIXER) {
        sparsemixer(g, E, K, hp->moe_jitter, sel, w, tmp);
    } else if (hp->moe_score == MT_MOE_SOFTMAX && !hp->moe_softmax_first) {
        mt_dec_topk(g, E, K, sel, w);   /* top-k of the logits, softmax over them */
        mt_softmax(w, K);
    } else {
        if (hp->moe_score == MT_MOE_SIGMOID)
            for (size_t e = 0; e < E; e++) g[e] = 1.0f / (1.0f + expf(-g[e]));
        else mt_softmax(g, E);
        const float *s = g;
        if (L->moe_sel_bias || hp->moe_groups > 1) {
            for (size_t e = 0; e < E; e++) tmp[e] = g[e] + (L->moe_sel_bias ? L->moe_sel_bias[e] : 0.0f);
            if (hp->moe_groups > 1) keep_groups(tmp, E, hp->moe_groups, hp->moe_topk_groups);
            s = tmp;
        }
        mt_dec_topk(s, E, K, sel, w);
        for (size_t k = 0; k < K; k++) w[k] = g[sel[k]];
        if (hp->moe_norm_topk) {
            float sum = 0;
            for (size_t k = 0; k < K; k++) sum += w[k];
            float den = sum + hp->moe_norm_add;
            if (den < hp->moe_norm_min) den = hp->moe_norm_min;
            for (size_t k = 0; k < K; k++) w[k] /= den;
        }
    }
    if (hp->moe_scale != 0 && hp->moe_scale != 1)
        for (size_t k = 0; k < K; k++) w[k] *= hp->moe_scale;
}

/* ---- forward ---- */

/* y[n, H] = down(silu(gate(x)) * up(x)) over n rows; g, u: [n, I] scratch. */
static void glu(const mt_fwd *f, int l, const char *name, const mt_linear *gl, const mt_linear *ul,
                const mt_linear *dl, const float *x, size_t n, float *g, float *u, float *y) {
    const mt_model *m = f->m;
    size_t H = gl->in, I = gl->out;
    if (m->on_linear_input) {
        char sub[200];
        snprintf(sub, sizeof sub, name, "gate_proj");
        mt_dec_observe(m, l, sub, x, n, H);
        snprintf(sub, sizeof sub, name, "up_proj");
        mt_dec_observe(m, l, sub, x, n, H);
    }
    mt_dec_linear(f, gl, x, n, g);
    mt_dec_linear(f, ul, x, n, u);
    mt_swiglu(g, u, n * I);
    if (m->on_linear_input) {
        char sub[200];
        snprintf(sub, sizeof sub, name, "down_proj");
        mt_dec_observe(m, l, sub, g, n, I);
    }
    mt_dec_linear(f, dl, g, n, y);
}

/* Rows of one block (bounded so that the per-choice outputs stay ~32 MiB). */
static size_t block_rows(size_t T, size_t K, size_t H) {
#ifdef MT_MOE_ROWWISE   /* bench/moe.sh's "before": every row alone, each expert once per row */
    (void)K; (void)H;
    return T ? 1 : 0;
#endif
    size_t b = ((size_t)8 << 20) / (K * H);
    if (b < 1) b = 1;
    return b < T ? b : T;
}

int mt_dec_moe(const mt_fwd *f, int l, const float *x, size_t T, float *out, mt_err *err) {
    const mt_model *m = f->m;
    const mt_layer *L = &m->layers[l];
    const mt_decoder_hp *hp = &m->hp;
    size_t H = (size_t)hp->hidden, I = (size_t)hp->moe_inter, E = (size_t)hp->n_experts, K = (size_t)hp->top_k;
    size_t S = L->sh_down.w ? (size_t)hp->moe_shared_inter : 0;
    size_t B = block_rows(T, K, H), GI = I > S ? I : S;
    /* per block: gates [B, E], weights [B, K], rows' inputs / outputs of one expert [B, H] each,
     * gate / up [B, GI], the choices' outputs [B * K, H], shared gate [B], tmp [E];
     * ints: sel [B * K], per-expert counts / starts [E + 1], choices by expert [B * K] */
    size_t nf = B * E + B * K + 2 * B * H + 2 * B * GI + B * K * H + B + E;
    float *buf = malloc(nf * sizeof(float));
    int *ibuf = malloc((2 * B * K + E + 1) * sizeof(int));
    if (!buf || !ibuf) {
        free(buf);
        free(ibuf);
        return mt_seterr(err, MT_ENOMEM, "out of memory for the experts' activations");
    }
    float *gates = buf, *w = gates + B * E, *xe = w + B * K, *ye = xe + B * H, *gg = ye + B * H, *uu = gg + B * GI;
    float *yk = uu + B * GI, *sg = yk + B * K * H, *tmp = sg + B;
    int *sel = ibuf, *start = sel + B * K, *order = start + E + 1;
    char rname[160], ename[160];
    snprintf(rname, sizeof rname, "%s.%s", m->moe_prefix, m->moe_router ? m->moe_router : "gate");
    for (size_t t0 = 0; t0 < T; t0 += B) {
        size_t n = T - t0 < B ? T - t0 : B;
        const float *xb = x + t0 * H;
        float *ob = out + t0 * H;
        /* route the block's rows */
        mt_dec_observe(m, l, rname, xb, n, H);
        mt_dec_linear(f, &L->router, xb, n, gates);
        for (size_t t = 0; t < n; t++) route(m, L, gates + t * E, sel + t * K, w + t * K, tmp);
        /* the choices (t * K + k) by expert, in row order (a counting sort) */
        memset(start, 0, (E + 1) * sizeof *start);
        for (size_t c = 0; c < n * K; c++) start[sel[c] + 1]++;
        for (size_t e = 0; e < E; e++) start[e + 1] += start[e];
        for (size_t c = 0; c < n * K; c++) order[start[sel[c]]++] = (int)c;
        for (size_t e = E; e > 0; e--) start[e] = start[e - 1];
        start[0] = 0;
        /* each chosen expert once over its rows */
        for (size_t e = 0; e < E; e++) {
            size_t c0 = (size_t)start[e], ne = (size_t)start[e + 1] - c0;
            if (!ne) continue;
            for (size_t j = 0; j < ne; j++)
                memcpy(xe + j * H, xb + (size_t)order[c0 + j] / K * H, H * sizeof(float));
            snprintf(ename, sizeof ename, "%s.switch_mlp.%%s.%zu", m->moe_prefix, e);
            glu(f, l, ename, &L->exp_gate[e], &L->exp_up[e], &L->exp_down[e], xe, ne, gg, uu, ye);
            for (size_t j = 0; j < ne; j++)
                memcpy(yk + (size_t)order[c0 + j] * H, ye + j * H, H * sizeof(float));
        }
        /* each row: its choices' outputs weighted, in its top-k order */
        for (size_t t = 0; t < n; t++) {
            float *ot = ob + t * H;
            memset(ot, 0, H * sizeof(float));
            for (size_t k = 0; k < K; k++) mt_axpy(ot, w[t * K + k], yk + (t * K + k) * H, H);
        }
        if (S) {   /* the shared expert over the block, optionally gated */
            const char *sn = m->moe_shared_name ? m->moe_shared_name : "shared_expert";
            snprintf(ename, sizeof ename, "%s.%s.%%s", m->moe_prefix, sn);
            glu(f, l, ename, &L->sh_gate, &L->sh_up, &L->sh_down, xb, n, gg, uu, ye);
            if (L->sh_sgate.w) {
                snprintf(ename, sizeof ename, "%s.%s_gate", m->moe_prefix, sn);
                mt_dec_observe(m, l, ename, xb, n, H);
                mt_dec_linear(f, &L->sh_sgate, xb, n, sg);
            }
            for (size_t t = 0; t < n; t++) {
                float a = L->sh_sgate.w ? 1.0f / (1.0f + expf(-sg[t])) : 1.0f;
                mt_axpy(ob + t * H, a, ye + t * H, H);
            }
        }
    }
    free(buf);
    free(ibuf);
    return MT_OK;
}

int mt_dec_bind_stacked(mt_model *m, const char *path, int E, size_t out, size_t in, mt_linear *dst, mt_err *err) {
    return bind_stacked(m, path, E, out, in, 0, dst, err);
}
