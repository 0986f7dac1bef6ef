/* gemma4.c - Gemma 4's text model: model_type "gemma4_text", and "gemma4" (the multimodal
 * checkpoint, whose text side mlx-lm runs: text_config with the top level's vocab_size, tensors
 * under language_model.; the towers' tensors are not read).
 *
 * As mlx-lm 0.32.2 computes it (models/gemma4_text.py, gemma4.py):
 *   - plain RMSNorm (weight w), embeddings times sqrt(hidden), sandwich norms around both branches,
 *     the block's output times its layer_scalar, final logits soft-capped (final_logit_softcapping);
 *   - attention with scale 1: q_norm, k_norm per head, values RMS-normed without a weight; full
 *     layers take global_head_dim (default 512), sliding ones head_dim; RoPE per layer type from
 *     rope_parameters[layer type] (rope_theta, rope_type; absent: theta 10000, default): "default" /
 *     "linear" rotate the whole head, "proportional" rotates the whole head with frequencies
 *     factor * base^(2i/head_dim) for i < int(head_dim * partial_rotary_factor) / 2 and none (an
 *     infinite period) past them;
 *   - attention_k_eq_v: full layers have no v_proj, their values are the k_proj rows before the
 *     norms, with num_global_key_value_heads heads when given;
 *   - KV sharing: the last num_kv_shared_layers layers have no k/v projections and attend over the
 *     cache of the last earlier layer of their type (mlx-lm's previous_kvs; mt_layer.kv_from);
 *     with use_double_wide_mlp their MLP is twice intermediate_size wide;
 *   - per-layer input embeddings (hidden_size_per_layer_input > 0: models/ple.h), the gated term
 *     added after the MLP's residual, before layer_scalar;
 *   - enable_moe_block: beside the dense GeGLU MLP (pre_feedforward_layernorm, then
 *     post_feedforward_layernorm_1) a router (RMSNorm of the block input with scale * hidden^-0.5,
 *     proj, top_k_experts of its logits, softmax over them, times per_expert_scale) picks GeGLU
 *     experts (experts.switch_glu.{gate,up,down}_proj) run on pre_feedforward_layernorm_2 of the
 *     input, summed and normed by post_feedforward_layernorm_2; the two add before
 *     post_feedforward_layernorm.
 * The cache: every layer's rows are hp.n_kv_heads x hp.head_dim, the widest layer's (m->kv_padded):
 * a narrower layer writes each of its kv heads repeated (n_kv_heads / its own) and zero-padded,
 * and its queries are zero-padded alike (the scores and outputs are its own: scale 1, zeros add
 * nothing).  mlx-lm's make_cache is the model's own (--max-kv-size changes nothing: own_cache);
 * KV quantization and prompt-cache files are refused (their rows would not be mlx-lm's).
 * Float32 forward only (no_mlx). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/decoder_int.h"
#include "models/kvcache_int.h"
#include "models/ple.h"
#include "tensor/dtype.h"
#include "tensor/ops.h"

typedef struct g4_attn {
    mt_linear q, k, v, o;      /* k, v unbound for a KV-shared layer; v for k_eq_v */
    mt_norm qn, kn;            /* q_norm, k_norm [hd] */
    int hd, nkv, keqv;
    float *inv_freq;           /* [hd / 2] (owned) */
} g4_attn;

typedef struct g4_ffn {
    mt_linear gate, up, down;
    size_t I;
    mt_norm pre;               /* pre_feedforward_layernorm */
    int moe;
    mt_norm post1, pre2, post2;
    mt_linear router;          /* router.proj [E, H] */
    float *rw;                 /* router.scale * hidden^-0.5 [H] */
    float *pes;                /* router.per_expert_scale [E] */
    mt_linear *eg, *eu, *ed;   /* experts [E] each */
    int E, K;
    size_t EI;
} g4_ffn;

typedef struct g4_cfg {        /* what bind_layer needs */
    json_t *rope;              /* rope_parameters (borrowed) or NULL */
    int hd, ghd, kv, gkv, keqv, n_shared, dbl, moe, E, K, EI;
    double maxp;
    const unsigned char *sl;   /* [n_layers] 1 = sliding */
} g4_cfg;

static void attn_free(void *d) {
    g4_attn *a = d;
    if (!a) return;
    mt_dec_norm_free(&a->qn);
    mt_dec_norm_free(&a->kn);
    free(a->inv_freq);
    free(a);
}

static void ffn_free(void *d) {
    g4_ffn *g = d;
    if (!g) return;
    mt_dec_norm_free(&g->pre);
    mt_dec_norm_free(&g->post1);
    mt_dec_norm_free(&g->pre2);
    mt_dec_norm_free(&g->post2);
    free(g->rw);
    free(g->pes);
    free(g->eg);
    free(g);
}

/* heads x hd rows RMS-normed in place (w NULL: no weight) */
static void head_norm(const mt_model *m, float *x, size_t heads, size_t hd, const float *w) {
    for (size_t h = 0; h < heads; h++) mt_rmsnorm(x + h * hd, x + h * hd, w, hd, m->hp.norm_eps);
}

static int attn_forward(const mt_fwd *f, int l, const float *in, float *out, mt_err *err) {
    const mt_model *m = f->m;
    const mt_layer *L = &m->layers[l];
    const g4_attn *a = L->mix;
    size_t T = f->T, NH = (size_t)m->hp.n_heads, hd = (size_t)a->hd, hdc = (size_t)m->hp.head_dim;
    size_t Hc = (size_t)m->hp.n_kv_heads, nkv = (size_t)a->nkv, qd = NH * hd, qdc = NH * hdc, kvd = nkv * hd;
    size_t kvc = Hc * hdc, rep = Hc / nkv;
    int shared = L->kv_from >= 0;
    float *buf = malloc((T * qd + 2 * T * qdc + (shared ? 0 : 2 * T * kvd + 2 * kvc)) * sizeof *buf);
    if (!buf) return mt_seterr(err, MT_ENOMEM, "out of memory");
    float *q = buf, *qp = q + T * qd, *att = qp + T * qdc, *k = att + T * qdc, *v = k + T * kvd;
    float *kr = v + T * kvd, *vr = kr + kvc;
    mt_dec_observe(m, l, "self_attn.q_proj", in, T, (size_t)m->hp.hidden);
    mt_dec_linear(f, &a->q, in, T, q);
    memset(qp, 0, T * qdc * sizeof *qp);
    for (size_t t = 0; t < T; t++) {
        float *qt = q + t * qd;
        head_norm(m, qt, NH, hd, a->qn.w);
        mt_rope(qt, NH, hd, hd, a->inv_freq, (double)f->rpos[t], m->hp.rope_traditional);
        for (size_t h = 0; h < NH; h++) memcpy(qp + t * qdc + h * hdc, qt + h * hd, hd * sizeof *qp);
    }
    if (!shared) {
        mt_dec_observe(m, l, "self_attn.k_proj", in, T, (size_t)m->hp.hidden);
        mt_dec_linear(f, &a->k, in, T, k);
        if (a->keqv) memcpy(v, k, T * kvd * sizeof *v);   /* values = the keys before their norm */
        else {
            mt_dec_observe(m, l, "self_attn.v_proj", in, T, (size_t)m->hp.hidden);
            mt_dec_linear(f, &a->v, in, T, v);
        }
        memset(kr, 0, 2 * kvc * sizeof *kr);
        for (size_t t = 0; t < T; t++) {
            float *kt = k + t * kvd, *vt = v + t * kvd;
            head_norm(m, kt, nkv, hd, a->kn.w);
            mt_rope(kt, nkv, hd, hd, a->inv_freq, (double)f->rpos[t], m->hp.rope_traditional);
            head_norm(m, vt, nkv, hd, NULL);
            for (size_t j = 0; j < Hc; j++) {   /* cache head j holds the layer's head j / rep */
                memcpy(kr + j * hdc, kt + j / rep * hd, hd * sizeof *kr);
                memcpy(vr + j * hdc, vt + j / rep * hd, hd * sizeof *vr);
            }
            mt_kv_write(f->rc[t], l, f->slot[t], kr, vr);
        }
    }
    int rc = mt_dec_attend(f, shared ? L->kv_from : l, qp, qdc, att, err);
    if (!rc) {
        for (size_t t = 0; t < T; t++)
            for (size_t h = 0; h < NH; h++) memmove(q + t * qd + h * hd, att + t * qdc + h * hdc, hd * sizeof *q);
        mt_dec_observe(m, l, "self_attn.o_proj", q, T, qd);
        mt_dec_linear(f, &a->o, q, T, out);
    }
    free(buf);
    return rc;
}

/* the GeGLU MLP gate/up/down over T rows: out[T, H]; scratch g, u [T, I]; name: the observer's
 * module path with %s for the projection */
static void geglu(const mt_fwd *f, int l, const char *name, const mt_linear *gate, const mt_linear *up,
                  const mt_linear *down, const float *x, size_t T, float *g, float *u, float *out) {
    size_t I = gate->out, H = gate->in;
    char sub[160];
    if (f->m->on_linear_input) {
        snprintf(sub, sizeof sub, name, "gate_proj");
        mt_dec_observe(f->m, l, sub, x, T, H);
        snprintf(sub, sizeof sub, name, "up_proj");
        mt_dec_observe(f->m, l, sub, x, T, H);
    }
    mt_dec_linear(f, gate, x, T, g);
    mt_dec_linear(f, up, x, T, u);
    mt_gelu_tanh(g, T * I);
    for (size_t i = 0; i < T * I; i++) g[i] *= u[i];
    if (f->m->on_linear_input) {
        snprintf(sub, sizeof sub, name, "down_proj");
        mt_dec_observe(f->m, l, sub, g, T, I);
    }
    mt_dec_linear(f, down, g, T, out);
}

static int ffn_forward(const mt_fwd *f, int l, const float *x, float *out, mt_err *err) {
    const mt_model *m = f->m;
    const g4_ffn *g = m->layers[l].ffd;
    size_t T = f->T, H = (size_t)m->hp.hidden, I = g->I > g->EI ? g->I : g->EI, E = (size_t)g->E, K = (size_t)g->K;
    /* xn [T, H], gate / up [T, I]; MoE: router logits [T, E], weights [T, K], one expert's rows
     * in / out [T, H] each, the choices' outputs [T * K, H]; ints: choices [T * K], rows [T * K] */
    size_t nf = T * H + 2 * T * I + (g->moe ? T * E + T * K + 2 * T * H + T * K * H : 0);
    float *buf = malloc(nf * sizeof *buf);
    int *ib = g->moe ? malloc(2 * T * K * sizeof *ib) : NULL;
    if (!buf || (g->moe && !ib)) { free(buf); free(ib); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    float *xn = buf, *gb = xn + T * H, *ub = gb + T * I;
    mt_dec_norm(m, &g->pre, xn, x, T, H);
    geglu(f, l, "mlp.%s", &g->gate, &g->up, &g->down, xn, T, gb, ub, out);
    if (!g->moe) { free(buf); return MT_OK; }
    float *lg = ub + T * I, *w = lg + T * E, *xe = w + T * K, *ye = xe + T * H, *yk = ye + T * H;
    int *sel = ib, *rows = sel + T * K;
    mt_dec_norm(m, &g->post1, out, out, T, H);
    /* route: RMSNorm with scale * hidden^-0.5, proj, top-k logits, softmax over them, per-expert scale */
    for (size_t t = 0; t < T; t++) mt_rmsnorm(xn + t * H, x + t * H, g->rw, H, m->hp.norm_eps);
    mt_dec_observe(m, l, "router.proj", xn, T, H);
    mt_dec_linear(f, &g->router, xn, T, lg);
    for (size_t t = 0; t < T; t++) {
        float sc[MT_MOE_MAX_K], mx = -INFINITY, sum = 0;
        mt_dec_topk(lg + t * E, E, K, sel + t * K, sc);
        for (size_t i = 0; i < K; i++) mx = sc[i] > mx ? sc[i] : mx;
        for (size_t i = 0; i < K; i++) sum += (sc[i] = expf(sc[i] - mx));
        for (size_t i = 0; i < K; i++) w[t * K + i] = sc[i] / sum * g->pes[sel[t * K + i]];
    }
    /* each expert once over the rows that chose it (pre_feedforward_layernorm_2 of the input) */
    mt_dec_norm(m, &g->pre2, xn, x, T, H);
    char ename[96];
    for (size_t e = 0; e < E; e++) {
        size_t ne = 0;
        for (size_t c = 0; c < T * K; c++)
            if (sel[c] == (int)e) {
                rows[ne] = (int)c;
                memcpy(xe + ne++ * H, xn + c / K * H, H * sizeof *xe);
            }
        if (!ne) continue;
        snprintf(ename, sizeof ename, "experts.switch_glu.%%s.%zu", e);
        geglu(f, l, ename, &g->eg[e], &g->eu[e], &g->ed[e], xe, ne, gb, ub, ye);
        for (size_t j = 0; j < ne; j++) memcpy(yk + (size_t)rows[j] * H, ye + j * H, H * sizeof *yk);
    }
    /* each row: its choices weighted and summed in its top-k order, normed, added to the MLP's */
    for (size_t t = 0; t < T; t++) {
        float *a = xe + t * H;   /* (the expert rows are free again) */
        memset(a, 0, H * sizeof *a);
        for (size_t k = 0; k < K; k++) mt_axpy(a, w[t * K + k], yk + (t * K + k) * H, H);
    }
    mt_dec_norm(m, &g->post2, xe, xe, T, H);
    for (size_t i = 0; i < T * H; i++) out[i] += xe[i];
    free(buf);
    free(ib);
    return MT_OK;
}

static const mt_mixer g4_mixer = {"gemma4 attention", attn_forward, attn_free};
static const mt_ffn g4_ffn_ops = {"gemma4 MLP", ffn_forward, ffn_free};

static int is_full(const mt_model *m, int l) { return !m->layers[l].sliding; }

/* layer l's RoPE frequencies over hd features from rope_parameters[its type] */
static int layer_rope(const mt_model *m, const g4_cfg *gc, int l, int hd, float **out, mt_err *err) {
    const char *key = is_full(m, l) ? "full_attention" : "sliding_attention";
    json_t *rp = json_is_object(gc->rope) ? json_object_get(gc->rope, key) : NULL;
    double theta = 10000, part = 1, factor = 1;
    const char *type = "default";
    char name[96];
    snprintf(name, sizeof name, "rope_parameters.%s", key);
    if (rp && !json_is_object(rp)) return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" must be an object", name);
    if (rp) {
        MT_TRY(mt_cfg_real(rp, "rope_theta", 10000.0, &theta, 0, MT_CFG_POS, err));
        json_t *t = json_object_get(rp, "type");
        if (!json_is_string(t)) t = json_object_get(rp, "rope_type");
        if (json_is_string(t)) type = json_string_value(t);
    }
    float *f = calloc((size_t)hd / 2, sizeof *f);
    if (!f) return mt_seterr(err, MT_ENOMEM, "out of memory");
    *out = f;
    if (!strcmp(type, "proportional")) {
        MT_TRY(mt_cfg_real(rp, "partial_rotary_factor", 1.0, &part, 0, MT_CFG_NONNEG, err));
        MT_TRY(mt_cfg_real(rp, "factor", 1.0, &factor, 0, MT_CFG_POS, err));
        int rot = (int)(hd * part);
        if (rot > hd) return mt_seterr(err, MT_EFORMAT, "config.json: %s.partial_rotary_factor %g exceeds 1", name, part);
        for (int i = 0; i < rot / 2; i++)   /* mlx: factor * base ** (arange(0, rot, 2) / hd), float32 */
            f[i] = 1.0f / ((float)factor * powf((float)theta, (float)(2 * i) / (float)hd));
        return MT_OK;   /* the rest rotate by 0 (an infinite period) */
    }
    if (strcmp(type, "default") && strcmp(type, "linear"))
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: %s rope_type \"%s\" is not supported for gemma4", name, type);
    float in_scale;
    return mt_rope_freqs(f, &in_scale, hd, (float)theta, rp, gc->maxp, 4096, err);
}

static int bind_lin(mt_model *m, int l, const char *sub, size_t o, size_t in, mt_linear *dst, mt_err *err) {
    char p[160];
    snprintf(p, sizeof p, "model.layers.%d.%s", l, sub);
    return mt_linear_bind(dst, m->st, m->cfg, p, o, in, -1, err);
}
static int bind_norm(mt_model *m, int l, const char *sub, size_t n, mt_norm *dst, mt_err *err) {
    char p[160];
    snprintf(p, sizeof p, "model.layers.%d.%s", l, sub);
    return mt_dec_bind_norm(m, p, n, dst, err);
}
static int read_vec(mt_model *m, int l, const char *sub, size_t n, float **out, mt_err *err) {
    char p[160];
    snprintf(p, sizeof p, "model.layers.%d.%s", l, sub);
    const mt_tensor_view *t = mt_safetensors_get(m->st, p);
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "tensor '%s' not found", p);
    if ((size_t)mt_tensor_numel(t) != n)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s' has %zu values, expected %zu", p, (size_t)mt_tensor_numel(t), n);
    if (!(*out = malloc(n * sizeof **out))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    return mt_safetensors_read_f32(m->st, p, *out, n, 0, err);
}

static g4_cfg *cfg_of(const mt_model *m) { return (g4_cfg *)m->hook_user; }

/* The dtype mlx-lm computes the model in (as mt_model_set_numerics derives it: the embedding's,
 * float32 when the norms are float32).  mlx-lm multiplies its activations by Python floats
 * (embed_scale, the PLE scales, the router's hidden^-0.5), which mlx casts to the array's dtype
 * first: a 16-bit model's constants are rounded, here too (sqrt(1536) is 39.25 in bfloat16). */
static mt_dtype act_dtype(const mt_model *m) {
    mt_dtype t = !m->embed.quantized ? m->embed.wdt : m->embed.mode != MT_QMODE_AFFINE ? MT_BF16 : m->embed.sdt;
    const mt_tensor_view *nw = m->st ? mt_safetensors_get(m->st, "model.norm.weight") : NULL;
    if ((t != MT_F16 && t != MT_BF16) || (nw && nw->dtype == MT_F32)) return MT_F32;
    return t;
}
static float in_dtype(mt_dtype t, float v) {
    return t == MT_BF16 ? mt_bf16_to_f32(mt_f32_to_bf16(v)) : t == MT_F16 ? mt_f16_to_f32(mt_f32_to_f16(v)) : v;
}

static int bind_layer(mt_model *m, int l, int *bound, mt_err *err) {
    const g4_cfg *gc = cfg_of(m);
    mt_layer *L = &m->layers[l];
    L->sliding = gc->sl[l];
    size_t H = (size_t)m->hp.hidden, NH = (size_t)m->hp.n_heads;
    int N = m->hp.n_layers, first_shared = N - gc->n_shared, full = is_full(m, l);
    g4_attn *a = calloc(1, sizeof *a);
    if (!a) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->mixer = &g4_mixer;
    L->mix = a;
    L->mixer_kv = 1;
    a->hd = full ? gc->ghd : gc->hd;
    a->keqv = gc->keqv && full;
    a->nkv = a->keqv && gc->gkv ? gc->gkv : gc->kv;
    size_t hd = (size_t)a->hd, kvd = (size_t)a->nkv * hd;
    MT_TRY(layer_rope(m, gc, l, a->hd, &a->inv_freq, err));
    MT_TRY(bind_lin(m, l, "self_attn.q_proj", NH * hd, H, &a->q, err));
    MT_TRY(bind_lin(m, l, "self_attn.o_proj", H, NH * hd, &a->o, err));
    MT_TRY(bind_norm(m, l, "self_attn.q_norm", hd, &a->qn, err));
    if (l < first_shared) {
        MT_TRY(bind_lin(m, l, "self_attn.k_proj", kvd, H, &a->k, err));
        if (!a->keqv) MT_TRY(bind_lin(m, l, "self_attn.v_proj", kvd, H, &a->v, err));
        MT_TRY(bind_norm(m, l, "self_attn.k_norm", hd, &a->kn, err));
    }
    g4_ffn *g = calloc(1, sizeof *g);
    if (!g) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->ffn = &g4_ffn_ops;
    L->ffd = g;
    g->I = (size_t)m->hp.inter * (gc->dbl && l >= first_shared && first_shared > 0 ? 2 : 1);
    MT_TRY(bind_lin(m, l, "mlp.gate_proj", g->I, H, &g->gate, err));
    MT_TRY(bind_lin(m, l, "mlp.up_proj", g->I, H, &g->up, err));
    MT_TRY(bind_lin(m, l, "mlp.down_proj", H, g->I, &g->down, err));
    MT_TRY(bind_norm(m, l, "pre_feedforward_layernorm", H, &g->pre, err));
    if (gc->moe) {
        g->moe = 1;
        g->E = gc->E;
        g->K = gc->K;
        g->EI = (size_t)gc->EI;
        MT_TRY(bind_norm(m, l, "post_feedforward_layernorm_1", H, &g->post1, err));
        MT_TRY(bind_norm(m, l, "pre_feedforward_layernorm_2", H, &g->pre2, err));
        MT_TRY(bind_norm(m, l, "post_feedforward_layernorm_2", H, &g->post2, err));
        MT_TRY(bind_lin(m, l, "router.proj", (size_t)g->E, H, &g->router, err));
        MT_TRY(read_vec(m, l, "router.scale", H, &g->rw, err));
        MT_TRY(read_vec(m, l, "router.per_expert_scale", (size_t)g->E, &g->pes, err));
        mt_dtype t = act_dtype(m);   /* scale * hidden^-0.5, in the model's dtype */
        float rs = in_dtype(t, (float)pow((double)H, -0.5));
        for (size_t i = 0; i < H; i++) g->rw[i] = in_dtype(t, g->rw[i] * rs);
        if (!(g->eg = calloc(3 * (size_t)g->E, sizeof *g->eg))) return mt_seterr(err, MT_ENOMEM, "out of memory");
        g->eu = g->eg + g->E;
        g->ed = g->eu + g->E;
        char p[160];
        static const char *const pj[3] = {"gate_proj", "up_proj", "down_proj"};
        mt_linear *dst[3] = {g->eg, g->eu, g->ed};
        for (int j = 0; j < 3; j++) {
            snprintf(p, sizeof p, "model.layers.%d.experts.switch_glu.%s", l, pj[j]);
            MT_TRY(mt_dec_bind_stacked(m, p, g->E, j == 2 ? H : g->EI, j == 2 ? g->EI : H, dst[j], err));
        }
    }
    MT_TRY(bind_norm(m, l, "input_layernorm", H, &L->n1, err));
    MT_TRY(bind_norm(m, l, "post_attention_layernorm", H, &L->n2, err));
    MT_TRY(bind_norm(m, l, "post_feedforward_layernorm", H, &L->n4, err));
    float *s = NULL;
    MT_TRY(read_vec(m, l, "layer_scalar", 1, &s, err));
    L->out_scale = s[0];
    free(s);
    if (L->out_scale == 0.0f) L->out_scale = 0x1p-149f;   /* (0 means none; a zero scalar zeroes the block anyway) */
    *bound = MT_BOUND_ATTN | MT_BOUND_MLP | MT_BOUND_NORMS;
    return MT_OK;
}

/* the text model; m->cfg is its config */
static int g4_text_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    mt_decoder_hp *hp = &m->hp;
    g4_cfg gc = {0};
    int window = 512, pattern = 5, ple = 256, ple_vocab = 262144, moe = 0, dbl = 1;
    double cap = 30;
    /* mlx-lm's ModelArgs defaults where read_hp's differ */
    MT_TRY(mt_cfg_count(c, "num_key_value_heads", 1, &gc.kv, 0, err));
    MT_TRY(mt_cfg_count(c, "head_dim", 256, &gc.hd, 0, err));
    MT_TRY(mt_cfg_count(c, "global_head_dim", 512, &gc.ghd, 0, err));
    MT_TRY(mt_cfg_int(c, "num_global_key_value_heads", 0, &gc.gkv, 0, err));
    MT_TRY(mt_cfg_int(c, "num_kv_shared_layers", 20, &gc.n_shared, 0, err));
    MT_TRY(mt_cfg_bool(c, "attention_k_eq_v", 0, &gc.keqv, err));
    MT_TRY(mt_cfg_bool(c, "use_double_wide_mlp", 1, &dbl, err));
    MT_TRY(mt_cfg_bool(c, "enable_moe_block", 0, &moe, err));
    MT_TRY(mt_cfg_int(c, "hidden_size_per_layer_input", 256, &ple, 0, err));
    MT_TRY(mt_cfg_int(c, "vocab_size_per_layer_input", 262144, &ple_vocab, 0, err));
    MT_TRY(mt_cfg_int(c, "sliding_window", 512, &window, 0, err));
    MT_TRY(mt_cfg_int(c, "sliding_window_pattern", 5, &pattern, 0, err));
    MT_TRY(mt_cfg_real(c, "max_position_embeddings", 131072, &gc.maxp, 0, MT_CFG_POS, err));
    json_t *fc = json_object_get(c, "final_logit_softcapping");
    if (fc && !json_is_null(fc)) MT_TRY(mt_cfg_real(c, "final_logit_softcapping", 30.0, &cap, 0, MT_CFG_NONNEG, err));
    else if (fc) cap = 0;
    gc.dbl = dbl;
    gc.moe = moe;
    if (gc.gkv < 0) return mt_seterr(err, MT_EFORMAT, "config.json: num_global_key_value_heads must not be negative");
    if (gc.n_shared < 0 || gc.n_shared >= hp->n_layers)
        return mt_seterr(err, MT_EFORMAT, "config.json: num_kv_shared_layers %d must be below num_hidden_layers %d",
                         gc.n_shared, hp->n_layers);
    if (ple < 0) return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size_per_layer_input must not be negative");
    if (gc.hd % 2 || gc.ghd % 2 || gc.hd > 1024 || gc.ghd > 1024)
        return mt_seterr(err, MT_EFORMAT, "config.json: head_dim %d and global_head_dim %d must be even and at most 1024",
                         gc.hd, gc.ghd);
    if (moe) {
        MT_TRY(mt_cfg_count(c, "num_experts", 0, &gc.E, 1, err));
        MT_TRY(mt_cfg_count(c, "top_k_experts", 0, &gc.K, 1, err));
        MT_TRY(mt_cfg_count(c, "moe_intermediate_size", 0, &gc.EI, 1, err));
        if (gc.K > gc.E || gc.K > MT_MOE_MAX_K)
            return mt_seterr(err, MT_EFORMAT, "config.json: top_k_experts %d exceeds num_experts %d (or %d)", gc.K, gc.E,
                             MT_MOE_MAX_K);
    }
    if (window <= 0 || pattern <= 0) return mt_seterr(err, MT_EFORMAT, "config.json: sliding_window and sliding_window_pattern must be positive");
    json_t *rp = json_object_get(c, "rope_parameters");
    gc.rope = rp && !json_is_null(rp) ? rp : NULL;
    /* layer types: layer_types, or the pattern (sliding x (pattern - 1), then full) repeated */
    json_t *lt = json_object_get(c, "layer_types");
    if (lt && !json_is_null(lt) && (!json_is_array(lt) || json_array_size(lt) != (size_t)hp->n_layers))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\" must list %d layers", hp->n_layers);
    unsigned char *sl = calloc((size_t)hp->n_layers, 1);
    if (!sl) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (int i = 0; i < hp->n_layers; i++) {
        if (json_is_array(lt)) {
            json_t *t = json_array_get(lt, (size_t)i);
            if (!json_is_string(t) || (strcmp(json_string_value(t), "sliding_attention") && strcmp(json_string_value(t), "full_attention"))) {
                free(sl);
                return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\"[%d] must be \"sliding_attention\" or \"full_attention\"", i);
            }
            sl[i] = !strcmp(json_string_value(t), "sliding_attention");
        } else sl[i] = i % pattern != pattern - 1;
    }
    /* the cache's geometry: the widest layer's */
    int Hc = 0, hdc = 0;
    for (int i = 0; i < hp->n_layers; i++) {
        int full = !sl[i], nkv = gc.keqv && full && gc.gkv ? gc.gkv : gc.kv, hd = full ? gc.ghd : gc.hd;
        if (nkv > Hc) Hc = nkv;
        if (hd > hdc) hdc = hd;
    }
    int rc = MT_OK;
    for (int i = 0; !rc && i < hp->n_layers; i++) {
        int full = !sl[i], nkv = gc.keqv && full && gc.gkv ? gc.gkv : gc.kv;
        if (Hc % nkv || hp->n_heads % Hc)
            rc = mt_seterr(err, MT_EUNSUPPORTED, "config.json: %d kv heads (num_key_value_heads %d, "
                           "num_global_key_value_heads %d) do not divide %d attention heads evenly", Hc, gc.kv, gc.gkv,
                           hp->n_heads);
    }
    /* KV sharing (mlx-lm's previous_kvs): the source of each shared layer, checked before binding */
    int N = hp->n_layers, M = N - gc.n_shared;
    int *src = rc ? NULL : malloc((size_t)N * sizeof *src);
    if (!rc && !src) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    for (int j = M; !rc && gc.n_shared > 0 && j < N; j++) {
        src[j] = -1;
        for (int i = 0; i < M; i++)
            if (sl[i] == sl[j]) src[j] = i;
        if (src[j] < 0)
            rc = mt_seterr(err, MT_EFORMAT, "config.json: KV-shared layer %d (num_kv_shared_layers %d) has no earlier "
                           "%s layer to take its keys and values from", j, gc.n_shared, sl[j] ? "sliding" : "full");
    }
    if (rc) { free(sl); free(src); return rc; }
    hp->n_kv_heads = Hc;
    hp->head_dim = hdc;
    hp->rot_dims = hdc;
    hp->norm_type = MT_NORM_RMS;
    hp->block = MT_BLOCK_SANDWICH;
    hp->act = MT_ACT_GELU_TANH;
    hp->attn_scale = 1.0f;
    hp->embed_scale = (float)sqrt((double)hp->hidden);   /* (rounded to the model's dtype after binding) */
    hp->final_softcap = (float)cap;
    hp->sliding_window = window;
    m->rope_scaling = NULL;
    m->kv_padded = 1;
    m->own_cache = 1;
    m->no_mlx = "gemma4 (per-layer head dims, KV sharing, per-layer inputs) runs in float32 only";
    /* bind_layer finds gc through hook_user (the observer's, unset while a model loads) */
    gc.sl = sl;
    void *saved = m->hook_user;
    m->hook_user = &gc;
    m->bind_layer = bind_layer;
    rc = mt_decoder_bind(m, err);
    m->bind_layer = NULL;
    m->hook_user = saved;
    free(sl);
    if (rc) { free(src); return rc; }
    /* KV sharing: each of the last n_shared layers reads the last earlier layer of its type */
    for (int j = N - gc.n_shared; gc.n_shared > 0 && j < N; j++) m->layers[j].kv_from = src[j];
    free(src);
    size_t qmax = (size_t)hp->n_heads * (size_t)hdc, I2 = 2 * (size_t)hp->inter;
    if (qmax > m->max_in) m->max_in = qmax;
    if (I2 > m->max_in) m->max_in = I2;
    if ((size_t)gc.EI > m->max_in) m->max_in = (size_t)gc.EI;
    if (ple > 0) MT_TRY(mt_ple_bind(m, ple, ple_vocab, &m->ple, err));
    mt_dtype t = act_dtype(m);
    hp->embed_scale = in_dtype(t, hp->embed_scale);
    if (m->ple) {
        m->ple->embed_scale = in_dtype(t, m->ple->embed_scale);
        m->ple->proj_scale = in_dtype(t, m->ple->proj_scale);
        m->ple->input_scale = in_dtype(t, m->ple->input_scale);
    }
    return MT_OK;
}

static int gemma4_text_init(mt_model *m, mt_err *err) { return g4_text_init(m, err); }

/* "gemma4": mlx-lm's gemma4.Model runs gemma4_text on text_config, whose vocab_size is the top
 * level's (default 262144) and whose num_attention_heads / num_key_value_heads default to 8 / 1;
 * the text tensors are language_model.model.* (and language_model.lm_head) */
static int gemma4_init(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int vocab = 262144;
    MT_TRY(mt_cfg_count(c, "vocab_size", 262144, &vocab, 0, err));
    char force[64];
    snprintf(force, sizeof force, "{\"vocab_size\": %d}", vocab);
    mt_text_spec ts = {.cfg_key = "text_config", .strip = "", .add = "language_model.",
                       .defaults = "{\"num_attention_heads\": 8, \"num_key_value_heads\": 1}", .force = force};
    MT_TRY(mt_model_use_text(m, &ts, err));
    return g4_text_init(m, err);
}

const mt_family mt_family_gemma4_text = {"gemma4_text", gemma4_text_init,
    "per-layer input embeddings, KV sharing, sliding/full head dims, proportional RoPE, k_eq_v, MoE beside the MLP"};
const mt_family mt_family_gemma4 = {"gemma4", gemma4_init, "gemma4_text inside the multimodal checkpoint (text side only)"};
