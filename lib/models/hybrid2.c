/* hybrid2.c - hybrids of Mamba-2 and attention:
 *   nemotron_h  one mixer per block, x + mixer(RMSNorm(x)), by hybrid_override_pattern (or
 *               layers_block_type / layer_types): "M" Mamba-2 (gated RMSNorm per group), "*"
 *               attention without RoPE, "-" a ReLU^2 MLP (up_proj, down_proj), "E" routed ReLU^2
 *               experts (sigmoid scores, grouped selection, shared experts, latent projections)
 *   falcon_h1   every layer runs attention and Mamba-2 side by side on the same normalized input
 *               and adds both, then a SwiGLU MLP (feed_forward.*); the mup multipliers are folded
 *               into the weights (mlx-lm's sanitize), except the tied output head's
 *               lm_head_multiplier / embedding_multiplier
 *   granitemoehybrid  granite's multipliers over Mamba-2 ("mamba") and attention layers by
 *               layer_types, each with a SwiGLU MLP, or with experts (num_local_experts) the
 *               built-in MoE (router block_sparse_moe.router.layer, top-k then softmax) plus a
 *               shared SwiGLU MLP; RoPE unless position_embedding_type is "nope"
 *   jamba       Mamba (dt, B, C RMSNorms with weights) and RoPE-free attention layers by period /
 *               layers_block_type; SwiGLU MLPs, a mixture of experts (router "router", top-k then
 *               softmax, the built-in MoE) every expert_layer_period-th layer
 * ref: mlx_lm/models/nemotron_h.py, falcon_h1.py, granitemoehybrid.py, jamba.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/decoder_int.h"
#include "models/ssm_int.h"

/* ---- a ReLU^2 MLP as a layer's lone mixer (nemotron_h "-") ---- */

typedef struct relu2 { mt_linear up, down; size_t I; char path[128]; } relu2;

static void relu2_free(void *p) { free(p); }

static int relu2_forward(const mt_fwd *f, int layer, const float *in, float *out, mt_err *err) {
    const relu2 *r = f->m->layers[layer].mix;
    size_t T = f->T, H = (size_t)f->m->hp.hidden;
    float *h = malloc(T * r->I * sizeof *h);
    if (!h) return mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_ssm_observe(f->m, r->path, "up_proj", in, T, H);
    mt_dec_linear(f, &r->up, in, T, h);
    for (size_t i = 0; i < T * r->I; i++) h[i] = h[i] > 0 ? h[i] * h[i] : 0.0f;
    mt_ssm_observe(f->m, r->path, "down_proj", h, T, r->I);
    mt_dec_linear(f, &r->down, h, T, out);
    free(h);
    return MT_OK;
}

static const mt_mixer relu2_mixer = {"ReLU^2 MLP", relu2_forward, relu2_free};

/* ---- nemotron_h's routed experts ("E"): a layer's lone mixer ----
 * sigmoid router scores (+ e_score_correction_bias for the choice; with n_group > 1 the
 * n_group - topk_group groups of the lowest top-2 sums zeroed first), top-k, the chosen experts'
 * own sigmoid scores (renormalized with norm_topk_prob) times routed_scaling_factor; experts are
 * ReLU^2 MLPs (switch_mlp.fc1, fc2), optionally in a latent space (fc1/fc2_latent_proj); plus
 * the shared ReLU^2 MLP (shared_experts). */
typedef struct nemoe {
    float *gate, *corr;           /* router weight [E, H] (a plain parameter), correction [E] */
    mt_linear *fc1, *fc2;         /* E each */
    mt_linear up, down;           /* shared_experts (up.w NULL: none) */
    mt_linear l1, l2;             /* latent projections (l1.w NULL: none) */
    int E, K, ngroup, topkg, norm;
    float scale;
    size_t I, SI, X;              /* expert width, shared width, expert input width (H or latent) */
    char path[128];
} nemoe;

static void nemoe_free(void *p) {
    nemoe *n = p;
    if (!n) return;
    free(n->gate); free(n->corr); free(n->fc1);
    free(n);
}

static void relu2_inplace(float *x, size_t n) { for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] * x[i] : 0.0f; }

static int nemoe_forward(const mt_fwd *f, int layer, const float *in, float *out, mt_err *err) {
    (void)layer;
    const mt_model *m = f->m;
    const nemoe *n = m->layers[layer].mix;
    size_t T = f->T, H = (size_t)m->hp.hidden, E = (size_t)n->E, K = (size_t)n->K, X = n->X;
    size_t wmax = n->I > n->SI ? n->I : n->SI;
    float *buf = malloc((2 * E + X + wmax + 2 * H + X) * sizeof *buf);
    if (!buf) return mt_seterr(err, MT_ENOMEM, "out of memory");
    float *sc = buf, *sel = sc + E, *xl = sel + E, *h = xl + X, *y = h + wmax, *acc = y + H;
    int idx[64];
    float top[64];
    for (size_t t = 0; t < T; t++) {
        const float *xt = in + t * H;
        float *ot = out + t * H;
        for (size_t e = 0; e < E; e++) {
            float z = 0;
            for (size_t i = 0; i < H; i++) z += n->gate[e * H + i] * xt[i];
            sc[e] = 1.0f / (1.0f + expf(-z));
            sel[e] = sc[e] + n->corr[e];
        }
        if (n->ngroup > 1) {   /* zero the groups with the lowest sums of their top two */
            size_t G = (size_t)n->ngroup, gs = E / G, drop = G - (size_t)n->topkg;
            float gsum[64];
            for (size_t g = 0; g < G; g++) {
                int i2[2];
                float s2[2];
                mt_dec_topk(sel + g * gs, gs, gs < 2 ? gs : 2, i2, s2);
                gsum[g] = s2[0] + (gs < 2 ? 0.0f : s2[1]);
            }
            for (size_t d = 0; d < drop; d++) {
                size_t lo = G;
                for (size_t g = 0; g < G; g++)
                    if (gsum[g] == gsum[g] && (lo == G || gsum[g] < gsum[lo])) lo = g;
                if (lo == G) break;
                gsum[lo] = NAN;   /* taken */
                for (size_t i = 0; i < gs; i++) sel[lo * gs + i] = 0.0f;
            }
        }
        mt_dec_topk(sel, E, K, idx, top);
        float wsum = 0;
        for (size_t k = 0; k < K; k++) wsum += (top[k] = sc[idx[k]]);
        for (size_t k = 0; k < K; k++) {
            if (K > 1 && n->norm) top[k] /= wsum + 1e-20f;
            top[k] *= n->scale;
        }
        const float *xe = xt;
        if (n->l1.w) {
            mt_ssm_observe(m, n->path, "fc1_latent_proj", xt, 1, H);
            mt_linear_forward(&n->l1, xt, 1, xl, f->work, m->pool);
            xe = xl;
        }
        memset(acc, 0, X * sizeof *acc);
        for (size_t k = 0; k < K; k++) {
            char sub[64];
            if (m->on_linear_input) {   /* experts as "<prefix>.switch_mlp.<proj>.<e>", as the built-in MoE's */
                snprintf(sub, sizeof sub, "switch_mlp.fc1.%d", idx[k]);
                mt_ssm_observe(m, n->path, sub, xe, 1, X);
            }
            mt_linear_forward(&n->fc1[idx[k]], xe, 1, h, f->work, m->pool);
            relu2_inplace(h, n->I);
            if (m->on_linear_input) {
                snprintf(sub, sizeof sub, "switch_mlp.fc2.%d", idx[k]);
                mt_ssm_observe(m, n->path, sub, h, 1, n->I);
            }
            mt_linear_forward(&n->fc2[idx[k]], h, 1, y, f->work, m->pool);
            for (size_t i = 0; i < X; i++) acc[i] += top[k] * y[i];
        }
        if (n->l1.w) mt_linear_forward(&n->l2, acc, 1, ot, f->work, m->pool);
        else memcpy(ot, acc, H * sizeof *ot);
        if (n->up.w) {
            mt_ssm_observe(m, n->path, "shared_experts.up_proj", xt, 1, H);
            mt_linear_forward(&n->up, xt, 1, h, f->work, m->pool);
            relu2_inplace(h, n->SI);
            mt_linear_forward(&n->down, h, 1, y, f->work, m->pool);
            for (size_t i = 0; i < H; i++) ot[i] += y[i];
        }
    }
    free(buf);
    return MT_OK;
}

static const mt_mixer nemoe_mixer = {"routed experts (ReLU^2)", nemoe_forward, nemoe_free};

static int nemoe_bind(mt_model *m, int i, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    mt_layer *L = &m->layers[i];
    size_t H = (size_t)m->hp.hidden;
    nemoe *n = calloc(1, sizeof *n);
    if (!n) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->mixer = &nemoe_mixer;
    L->mix = n;
    snprintf(n->path, sizeof n->path, "backbone.layers.%d.mixer", i);
    int I = 0, SI = 0, lat = 0, mb = 0, ns = 0;
    double rs = 1;
    MT_TRY(mt_cfg_count(c, "n_routed_experts", 0, &n->E, 1, err));
    MT_TRY(mt_cfg_count(c, "num_experts_per_tok", 0, &n->K, 1, err));
    MT_TRY(mt_cfg_count(c, "moe_intermediate_size", 0, &I, 1, err));
    MT_TRY(mt_cfg_count(c, "n_group", 1, &n->ngroup, 0, err));
    MT_TRY(mt_cfg_count(c, "topk_group", n->ngroup, &n->topkg, 0, err));
    MT_TRY(mt_cfg_bool(c, "norm_topk_prob", 0, &n->norm, err));
    MT_TRY(mt_cfg_real(c, "routed_scaling_factor", 1, &rs, 0, MT_CFG_FINITE, err));
    MT_TRY(mt_cfg_bool(c, "mlp_bias", 0, &mb, err));
    n->scale = (float)rs;
    if (n->K > n->E || n->K > 64 || n->E > 4096 || n->ngroup > 64 || n->E % n->ngroup || n->topkg > n->ngroup ||
        (size_t)n->K > (size_t)n->topkg * (size_t)(n->E / n->ngroup))
        return mt_seterr(err, MT_EFORMAT, "config.json: nemotron_h experts: %d routed, top %d, %d groups (top %d) do not fit",
                         n->E, n->K, n->ngroup, n->topkg);
    n->I = (size_t)I;
    json_t *lt = json_object_get(c, "moe_latent_size");
    if (lt && !json_is_null(lt)) MT_TRY(mt_cfg_count(c, "moe_latent_size", 0, &lat, 1, err));
    n->X = lat ? (size_t)lat : H;
    char p[256];
    if (!(n->gate = malloc((size_t)n->E * H * sizeof(float))) || !(n->corr = malloc((size_t)n->E * sizeof(float))) ||
        !(n->fc1 = calloc(2 * (size_t)n->E, sizeof *n->fc1)))
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    n->fc2 = n->fc1 + n->E;
    snprintf(p, sizeof p, "%s.gate.weight", n->path);
    MT_TRY(mt_safetensors_read_f32(m->st, p, n->gate, (size_t)n->E * H, 0, err));
    snprintf(p, sizeof p, "%s.gate.e_score_correction_bias", n->path);
    MT_TRY(mt_safetensors_read_f32(m->st, p, n->corr, (size_t)n->E, 0, err));
    snprintf(p, sizeof p, "%s.switch_mlp.fc1", n->path);
    MT_TRY(mt_dec_bind_stacked(m, p, n->E, n->I, n->X, n->fc1, err));
    snprintf(p, sizeof p, "%s.switch_mlp.fc2", n->path);
    MT_TRY(mt_dec_bind_stacked(m, p, n->E, n->X, n->I, n->fc2, err));
    if (lat) {
        snprintf(p, sizeof p, "%s.fc1_latent_proj", n->path);
        MT_TRY(mt_linear_bind(&n->l1, m->st, m->cfg, p, n->X, H, mb ? 1 : -1, err));
        snprintf(p, sizeof p, "%s.fc2_latent_proj", n->path);
        MT_TRY(mt_linear_bind(&n->l2, m->st, m->cfg, p, H, n->X, mb ? 1 : -1, err));
    }
    json_t *se = json_object_get(c, "n_shared_experts");
    if (se && !json_is_null(se)) {
        MT_TRY(mt_cfg_int(c, "n_shared_experts", 0, &ns, 1, err));
        MT_TRY(mt_cfg_count(c, "moe_shared_expert_intermediate_size", 0, &SI, 1, err));
        n->SI = (size_t)SI;
        snprintf(p, sizeof p, "%s.shared_experts.up_proj", n->path);
        MT_TRY(mt_linear_bind(&n->up, m->st, m->cfg, p, n->SI, H, mb ? 1 : -1, err));
        snprintf(p, sizeof p, "%s.shared_experts.down_proj", n->path);
        MT_TRY(mt_linear_bind(&n->down, m->st, m->cfg, p, H, n->SI, mb ? 1 : -1, err));
    }
    size_t w = n->I > n->SI ? n->I : n->SI;
    mt_hyb_widen(m, w > n->X ? w : n->X);
    return MT_OK;
}

/* ---- nemotron_h ---- */

/* The block kind of layer i ('M', '*', '-', 'E'), or 0 when the config does not say. */
static char nem_kind(const mt_model *m, int i) {
    json_t *c = mt_config_json(m->cfg);
    json_t *p = json_object_get(c, "hybrid_override_pattern");
    if (json_is_string(p)) return (size_t)i < strlen(json_string_value(p)) ? json_string_value(p)[i] : 0;
    if (json_is_array(p)) {
        json_t *e = json_array_get(p, (size_t)i);
        return json_is_string(e) && strlen(json_string_value(e)) == 1 ? json_string_value(e)[0] : 0;
    }
    json_t *bt = json_object_get(c, "layers_block_type");
    if (!json_is_array(bt)) bt = json_object_get(c, "layer_types");
    const char *t = json_string_value(json_array_get(bt, (size_t)i));
    if (!t) return 0;
    static const char *const names[][2] = {{"full_attention", "*"}, {"linear_attention", "M"}, {"moe", "E"},
                                           {"mlp", "-"}, {"attention", "*"}, {"mamba", "M"}, {"conv", "M"}};
    for (size_t k = 0; k < sizeof names / sizeof *names; k++)
        if (!strcmp(t, names[k][0])) return names[k][1][0];
    return 0;
}

/* the number of layers the pattern describes (0: none) */
static size_t nem_layers(const mt_model *m) {
    json_t *c = mt_config_json(m->cfg);
    json_t *p = json_object_get(c, "hybrid_override_pattern");
    if (json_is_string(p)) return strlen(json_string_value(p));
    if (json_is_array(p)) return json_array_size(p);
    json_t *bt = json_object_get(c, "layers_block_type");
    if (!json_is_array(bt)) bt = json_object_get(c, "layer_types");
    return json_is_array(bt) ? json_array_size(bt) : 0;
}

static int nem_ssm_cfg(mt_model *m, mt_ssm2_cfg *sc, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    memset(sc, 0, sizeof *sc);
    double eps = 1e-5;
    MT_TRY(mt_cfg_count(c, "mamba_num_heads", 0, &sc->n_heads, 1, err));
    MT_TRY(mt_cfg_count(c, "mamba_head_dim", 0, &sc->head_dim, 1, err));
    MT_TRY(mt_cfg_count(c, "n_groups", 0, &sc->n_groups, 1, err));
    MT_TRY(mt_cfg_count(c, "ssm_state_size", 0, &sc->d_state, 1, err));
    MT_TRY(mt_cfg_count(c, "conv_kernel", 0, &sc->conv_kernel, 1, err));
    MT_TRY(mt_hyb_bool(c, "mamba_proj_bias", &sc->use_bias, err));
    sc->out_bias = sc->use_bias;
    MT_TRY(mt_hyb_bool(c, "use_conv_bias", &sc->conv_bias, err));
    MT_TRY(mt_cfg_real(c, "layer_norm_epsilon", 1e-5, &eps, 1, MT_CFG_NONNEG, err));
    sc->norm_eps = (float)eps;
    sc->norm_groups = sc->n_groups;   /* mlx-lm: RMSNorm over groups of intermediate / n_groups */
    json_t *tl = json_object_get(c, "time_step_limit");
    if (tl && !json_is_null(tl)) MT_TRY(mt_hyb_step_limit(c, &sc->dt_min, &sc->dt_max, err));
    else { sc->dt_min = 0; sc->dt_max = INFINITY; }
    return MT_OK;
}

static int nemotron_bind_layer(mt_model *m, int i, int *bound, mt_err *err) {
    mt_layer *L = &m->layers[i];
    const mt_decoder_hp *hp = &m->hp;
    json_t *c = mt_config_json(m->cfg);
    size_t H = (size_t)hp->hidden, hd = (size_t)hp->head_dim, qd = (size_t)hp->n_heads * hd;
    size_t kvd = (size_t)hp->n_kv_heads * hd;
    char p[256];
    snprintf(p, sizeof p, "backbone.layers.%d.norm", i);
    MT_TRY(mt_dec_bind_norm(m, p, H, &L->n1, err));
    char k = nem_kind(m, i);
    if (k == 'M') {
        mt_ssm2_cfg sc;
        MT_TRY(nem_ssm_cfg(m, &sc, err));
        snprintf(p, sizeof p, "backbone.layers.%d.mixer", i);
        MT_TRY(mt_ssm2_bind(m, i, p, &sc, err));
    } else if (k == '*') {
        int ab = 0;
        MT_TRY(mt_hyb_bool(c, "attention_bias", &ab, err));
#define LIN(field, sub, o, in) \
    do { snprintf(p, sizeof p, "backbone.layers.%d.mixer.%s", i, sub); \
         MT_TRY(mt_linear_bind(&L->field, m->st, m->cfg, p, o, in, ab ? 1 : -1, err)); } while (0)
        LIN(q, "q_proj", qd, H);
        LIN(k, "k_proj", kvd, H);
        LIN(v, "v_proj", kvd, H);
        LIN(o, "o_proj", H, qd);
#undef LIN
    } else if (k == '-') {
        int mb = 0;
        MT_TRY(mt_hyb_bool(c, "mlp_bias", &mb, err));
        relu2 *r = calloc(1, sizeof *r);
        if (!r) return mt_seterr(err, MT_ENOMEM, "out of memory");
        L->mixer = &relu2_mixer;
        L->mix = r;
        r->I = (size_t)hp->inter;
        snprintf(r->path, sizeof r->path, "backbone.layers.%d.mixer", i);
        snprintf(p, sizeof p, "backbone.layers.%d.mixer.up_proj", i);
        MT_TRY(mt_linear_bind(&r->up, m->st, m->cfg, p, r->I, H, mb ? 1 : -1, err));
        snprintf(p, sizeof p, "backbone.layers.%d.mixer.down_proj", i);
        MT_TRY(mt_linear_bind(&r->down, m->st, m->cfg, p, H, r->I, mb ? 1 : -1, err));
    } else if (k == 'E') {
        MT_TRY(nemoe_bind(m, i, err));
    } else {
        return mt_seterr(err, MT_EUNSUPPORTED, "nemotron_h layer %d: block type '%c' is not supported", i, k);
    }
    L->no_mlp = 1;
    *bound = MT_BOUND_ATTN | MT_BOUND_MLP | MT_BOUND_NORMS;
    return MT_OK;
}

static int nemotron_h_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_hyb_hp(m, NULL, "num_attention_heads", "layer_norm_epsilon", 1e-5, err));
    json_t *c = mt_config_json(m->cfg);
    mt_decoder_hp *hp = &m->hp;
    size_t n = nem_layers(m);
    if (!n || n > 100000)
        return mt_seterr(err, MT_EFORMAT, "config.json: no \"hybrid_override_pattern\" (or \"layers_block_type\") "
                         "describing the layers");
    hp->n_layers = (int)n;
    for (int i = 0; i < hp->n_layers; i++) {
        char k = nem_kind(m, i);
        if (k != 'M' && k != '*' && k != '-' && k != 'E')
            return mt_seterr(err, MT_EFORMAT, "config.json: layer %d's block type is not one of M, *, -, E", i);
    }
    MT_TRY(mt_cfg_count(c, "intermediate_size", 0, &hp->inter, 1, err));
    MT_TRY(mt_cfg_count(c, "head_dim", hp->hidden / hp->n_heads, &hp->head_dim, 0, err));
    hp->rot_dims = hp->head_dim & ~1;   /* no RoPE (use_rope 0 below); bind wants an even count */
    if (hp->rot_dims < 2) hp->rot_dims = 2;
    if (hp->head_dim % 2) return mt_seterr(err, MT_EFORMAT, "config.json: head_dim %d must be even", hp->head_dim);
    hp->tie_embeddings = 0;   /* mlx-lm's nemotron_h always has its lm_head */
    mt_ssm2_cfg sc;
    MT_TRY(nem_ssm_cfg(m, &sc, err));
    m->embed_name = "backbone.embeddings";
    m->final_norm_name = "backbone.norm_f";
    static const char *const obs[] = {"self_attn.", "mixer.", NULL};
    m->layers_name = "backbone.layers";
    m->obs_map = obs;
    m->bind_layer = nemotron_bind_layer;
    MT_TRY(mt_decoder_bind(m, err));
    for (int i = 0; i < hp->n_layers; i++) m->layers[i].use_rope = 0;
    mt_hyb_widen(m, (size_t)sc.n_heads * (size_t)sc.head_dim + 2 * (size_t)sc.n_groups * (size_t)sc.d_state);
    return MT_OK;
}

/* ---- falcon_h1 ---- */

static int fh1_ssm_cfg(mt_model *m, mt_ssm2_cfg *sc, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    memset(sc, 0, sizeof *sc);
    int d_ssm = 1536, rms = 0;
    double eps = 1e-5;
    MT_TRY(mt_cfg_count(c, "mamba_n_heads", 24, &sc->n_heads, 0, err));
    MT_TRY(mt_cfg_count(c, "mamba_d_head", 64, &sc->head_dim, 0, err));
    MT_TRY(mt_cfg_count(c, "mamba_n_groups", 1, &sc->n_groups, 0, err));
    MT_TRY(mt_cfg_count(c, "mamba_d_state", 128, &sc->d_state, 0, err));
    MT_TRY(mt_cfg_count(c, "mamba_d_conv", 4, &sc->conv_kernel, 0, err));
    MT_TRY(mt_cfg_count(c, "mamba_d_ssm", 1536, &d_ssm, 0, err));
    if ((long long)sc->n_heads * sc->head_dim != d_ssm)
        return mt_seterr(err, MT_EFORMAT, "config.json: mamba_d_ssm %d is not mamba_n_heads %d x mamba_d_head %d", d_ssm,
                         sc->n_heads, sc->head_dim);
    MT_TRY(mt_cfg_bool(c, "mamba_proj_bias", 0, &sc->use_bias, err));
    MT_TRY(mt_cfg_bool(c, "projectors_bias", 0, &sc->out_bias, err));
    MT_TRY(mt_cfg_bool(c, "mamba_conv_bias", 1, &sc->conv_bias, err));
    MT_TRY(mt_cfg_bool(c, "mamba_rms_norm", 0, &rms, err));
    MT_TRY(mt_cfg_bool(c, "mamba_norm_before_gate", 0, &sc->norm_before_gate, err));
    MT_TRY(mt_cfg_real(c, "rms_norm_eps", 1e-5, &eps, 0, MT_CFG_NONNEG, err));
    sc->no_out_norm = !rms;
    if (!rms) sc->norm_before_gate = 0;
    sc->norm_eps = (float)eps;
    sc->norm_groups = 1;   /* mlx-lm's FalconH1RMSNormGated normalizes the whole row */
    sc->dt_min = 0;
    sc->dt_max = INFINITY;
    sc->parallel = 1;
    return MT_OK;
}

/* falcon_h1 and jamba blocks: with mlp, the gated MLP model.layers.N.feed_forward.{gate,up,down}_proj
 * (biases when bias); then the norms input_layernorm (n1) and pre_ff_layernorm (n2). */
static int bind_ff_norms(mt_model *m, int i, int mlp, int bias, mt_err *err) {
    mt_layer *L = &m->layers[i];
    size_t H = (size_t)m->hp.hidden, I = (size_t)m->hp.inter;
    char p[256];
    static const char *const sub[3] = {"gate_proj", "up_proj", "down_proj"};
    mt_linear *dst[3] = {&L->gate, &L->up, &L->down};
    for (int k = 0; mlp && k < 3; k++) {
        snprintf(p, sizeof p, "model.layers.%d.feed_forward.%s", i, sub[k]);
        MT_TRY(mt_linear_bind(dst[k], m->st, m->cfg, p, k == 2 ? H : I, k == 2 ? I : H, bias ? 1 : -1, err));
    }
    snprintf(p, sizeof p, "model.layers.%d.input_layernorm", i);
    MT_TRY(mt_dec_bind_norm(m, p, H, &L->n1, err));
    snprintf(p, sizeof p, "model.layers.%d.pre_ff_layernorm", i);
    return mt_dec_bind_norm(m, p, H, &L->n2, err);
}

static int falcon_h1_bind_layer(mt_model *m, int i, int *bound, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int mb = 0;
    MT_TRY(mt_cfg_bool(c, "mlp_bias", 0, &mb, err));
    mt_ssm2_cfg sc;
    MT_TRY(fh1_ssm_cfg(m, &sc, err));
    char p[256];
    /* mlx-lm folds the mup multipliers into the weights when it converts a transformers
     * checkpoint, which it recognizes by the torch conv layout [C, 1, K]: refuse that here */
    snprintf(p, sizeof p, "model.layers.%d.mamba.conv1d.weight", i);
    const mt_tensor_view *cw = mt_safetensors_get(m->st, p);
    if (cw && cw->ndim == 3 && cw->shape[2] > cw->shape[1])
        return mt_seterr(err, MT_EUNSUPPORTED, "falcon_h1: an unconverted transformers checkpoint (its multipliers are not "
                         "folded into the weights yet): convert it with mlx_lm.convert first");
    snprintf(p, sizeof p, "model.layers.%d.mamba", i);
    MT_TRY(mt_ssm2_bind(m, i, p, &sc, err));
    MT_TRY(bind_ff_norms(m, i, 1, mb, err));
    *bound = MT_BOUND_MLP | MT_BOUND_NORMS;   /* the attention: the decoder's, model.layers.N.self_attn.* */
    return MT_OK;
}

static int falcon_h1_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_hyb_hp(m, "num_hidden_layers", "num_attention_heads", "rms_norm_eps", 1e-5, err));
    json_t *c = mt_config_json(m->cfg);
    mt_decoder_hp *hp = &m->hp;
    double theta = 1e11, em = 5.656854249492381, lm = 0.0390625;
    MT_TRY(mt_cfg_count(c, "intermediate_size", 2048, &hp->inter, 0, err));
    MT_TRY(mt_cfg_count(c, "head_dim", 64, &hp->head_dim, 0, err));
    hp->rot_dims = hp->head_dim;
    MT_TRY(mt_cfg_real(c, "rope_theta", 1e11, &theta, 0, MT_CFG_POS, err));
    hp->rope_theta = (float)theta;
    MT_TRY(mt_cfg_bool(c, "rope_traditional", 0, &hp->rope_traditional, err));
    MT_TRY(mt_cfg_bool(c, "attention_bias", 0, &hp->attn_bias, err));
    hp->o_bias = hp->attn_bias;
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 1, &hp->tie_embeddings, err));
    MT_TRY(mt_cfg_real(c, "embedding_multiplier", em, &em, 0, MT_CFG_POS, err));
    MT_TRY(mt_cfg_real(c, "lm_head_multiplier", lm, &lm, 0, MT_CFG_POS, err));
    if (hp->tie_embeddings) hp->logits_div = (float)(em / lm);   /* logits * (lm_head_mult / embedding_mult) */
    m->rope_scaling = json_object_get(c, "rope_scaling");
    m->final_norm_name = "model.final_layernorm";
    static const char *const obs[] = {"mlp.", "feed_forward.", NULL};
    m->obs_map = obs;
    m->bind_layer = falcon_h1_bind_layer;
    mt_ssm2_cfg sc;
    MT_TRY(fh1_ssm_cfg(m, &sc, err));
    MT_TRY(mt_decoder_bind(m, err));
    mt_hyb_widen(m, (size_t)sc.n_heads * (size_t)sc.head_dim + 2 * (size_t)sc.n_groups * (size_t)sc.d_state);
    return MT_OK;
}

/* ---- granitemoehybrid (dense variant) ---- */

static int gmh_is_mamba(const mt_model *m, int i) {
    json_t *t = json_array_get(json_object_get(mt_config_json(m->cfg), "layer_types"), (size_t)i);
    return json_is_string(t) && !strcmp(json_string_value(t), "mamba");
}

static int gmh_ssm_cfg(mt_model *m, mt_ssm2_cfg *sc, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    memset(sc, 0, sizeof *sc);
    MT_TRY(mt_cfg_count(c, "mamba_n_heads", 0, &sc->n_heads, 1, err));
    MT_TRY(mt_cfg_count(c, "mamba_d_head", 0, &sc->head_dim, 1, err));
    MT_TRY(mt_cfg_count(c, "mamba_n_groups", 0, &sc->n_groups, 1, err));
    MT_TRY(mt_cfg_count(c, "mamba_d_state", 0, &sc->d_state, 1, err));
    MT_TRY(mt_cfg_count(c, "mamba_d_conv", 0, &sc->conv_kernel, 1, err));
    MT_TRY(mt_hyb_bool(c, "mamba_proj_bias", &sc->use_bias, err));
    sc->out_bias = sc->use_bias;
    MT_TRY(mt_hyb_bool(c, "mamba_conv_bias", &sc->conv_bias, err));
    json_t *tl = json_object_get(c, "time_step_limit");
    if (tl && !json_is_null(tl)) MT_TRY(mt_hyb_step_limit(c, &sc->dt_min, &sc->dt_max, err));
    else { sc->dt_min = 0.001f; sc->dt_max = 100.0f; }
    sc->norm_eps = m->hp.norm_eps;
    sc->norm_groups = 1;
    return MT_OK;
}

/* The MoE variant's MLP: the built-in mixture of experts (router block_sparse_moe.router.layer,
 * top-k of its logits, softmax over them) plus the shared SwiGLU MLP (shared_mlp.input_linear
 * [gate | up], output_linear). */
typedef struct gmh_moe { mt_linear in, out; size_t S; } gmh_moe;

static void gmh_moe_free(void *p) { free(p); }

static int gmh_moe_forward(const mt_fwd *f, int layer, const float *x, float *out, mt_err *err) {
    const mt_model *m = f->m;
    const gmh_moe *g = m->layers[layer].ffd;
    size_t T = f->T, H = (size_t)m->hp.hidden, S = g->S;
    float *h = malloc((T * 2 * S + T * S + T * H) * sizeof *h);
    if (!h) return mt_seterr(err, MT_ENOMEM, "out of memory");
    float *a = h + T * 2 * S, *y = a + T * S;
    int r = mt_dec_moe(f, layer, x, T, out, err);
    if (r) { free(h); return r; }
    mt_dec_observe(m, layer, "shared_mlp.input_linear", x, T, H);
    mt_dec_linear(f, &g->in, x, T, h);
    for (size_t t = 0; t < T; t++) {   /* silu(gate) * up */
        const float *gt = h + t * 2 * S, *up = gt + S;
        for (size_t i = 0; i < S; i++) a[t * S + i] = gt[i] / (1.0f + expf(-gt[i])) * up[i];
    }
    mt_dec_observe(m, layer, "shared_mlp.output_linear", a, T, S);
    mt_dec_linear(f, &g->out, a, T, y);
    for (size_t i = 0; i < T * H; i++) out[i] += y[i];
    free(h);
    return MT_OK;
}

static const mt_ffn gmh_moe_ffn = {"granitemoehybrid MoE + shared MLP", gmh_moe_forward, gmh_moe_free};

static int gmh_bind_moe(mt_model *m, int i, mt_err *err) {
    mt_layer *L = &m->layers[i];
    size_t H = (size_t)m->hp.hidden;
    int S = 0;
    MT_TRY(mt_cfg_count(mt_config_json(m->cfg), "shared_intermediate_size", 0, &S, 1, err));
    char p[160];
    snprintf(p, sizeof p, "model.layers.%d.block_sparse_moe", i);
    MT_TRY(mt_decoder_bind_moe(m, i, p, err));
    gmh_moe *g = calloc(1, sizeof *g);
    if (!g) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->ffn = &gmh_moe_ffn;
    L->ffd = g;
    g->S = (size_t)S;
    snprintf(p, sizeof p, "model.layers.%d.shared_mlp.input_linear", i);
    MT_TRY(mt_linear_bind(&g->in, m->st, m->cfg, p, 2 * g->S, H, -1, err));
    snprintf(p, sizeof p, "model.layers.%d.shared_mlp.output_linear", i);
    MT_TRY(mt_linear_bind(&g->out, m->st, m->cfg, p, H, g->S, -1, err));
    mt_hyb_widen(m, g->S);
    return MT_OK;
}

static int gmh_bind_layer(mt_model *m, int i, int *bound, mt_err *err) {
    if (m->hp.n_experts > 0) {
        MT_TRY(gmh_bind_moe(m, i, err));
        *bound |= MT_BOUND_MLP;
    }
    if (!gmh_is_mamba(m, i)) return MT_OK;   /* attention: the decoder's names */
    mt_ssm2_cfg sc;
    MT_TRY(gmh_ssm_cfg(m, &sc, err));
    char p[128];
    snprintf(p, sizeof p, "model.layers.%d.mamba", i);
    MT_TRY(mt_ssm2_bind(m, i, p, &sc, err));
    *bound |= MT_BOUND_ATTN;
    return MT_OK;
}

static int granitemoehybrid_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    mt_decoder_hp *hp = &m->hp;
    MT_TRY(mt_cfg_int(c, "num_local_experts", 0, &hp->n_experts, 0, err));   /* 0 / none: the dense variant */
    if (hp->n_experts > 0) {
        MT_TRY(mt_cfg_count(c, "num_experts_per_tok", 0, &hp->top_k, 1, err));
        if (hp->top_k > hp->n_experts || hp->top_k > 64)
            return mt_seterr(err, MT_EFORMAT, "config.json: num_experts_per_tok %d does not fit num_local_experts %d",
                             hp->top_k, hp->n_experts);
        hp->moe_inter = hp->inter;
        m->moe_prefix = "block_sparse_moe";
        m->moe_router = "router.layer";
    }
    double eps = 1e-5;
    MT_TRY(mt_cfg_real(c, "rms_norm_eps", 1e-5, &eps, 1, MT_CFG_NONNEG, err));
    MT_TRY(mt_granite_scales(m, err));
    MT_TRY(mt_hyb_bool(c, "attention_bias", &hp->attn_bias, err));
    hp->o_bias = hp->attn_bias;
    hp->norm_eps = (float)eps;
    hp->head_dim = hp->hidden / hp->n_heads;   /* granitemoehybrid ignores a head_dim key */
    if (hp->head_dim < 2 || hp->head_dim % 2)
        return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size / num_attention_heads must be even and positive");
    hp->rot_dims = hp->head_dim;
    json_t *rp = json_object_get(c, "rope_parameters");
    if (json_is_object(rp) && json_object_get(rp, "rope_theta")) {
        json_t *t = json_object_get(rp, "rope_theta");
        if (!json_is_number(t) || !(json_number_value(t) > 0) || json_number_value(t) > 3.4e38)
            return mt_seterr(err, MT_EFORMAT, "config.json: \"rope_parameters.rope_theta\" must be a finite, positive number");
        hp->rope_theta = (float)json_number_value(t);
    }
    m->rope_scaling = NULL;   /* mlx-lm passes none */
    json_t *pe = json_object_get(c, "position_embedding_type");
    if (pe && !json_is_null(pe) && !json_is_string(pe))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"position_embedding_type\" must be a string");
    int nope = json_is_string(pe) && !strcmp(json_string_value(pe), "nope");
    json_t *lt = json_object_get(c, "layer_types");
    if (!json_is_array(lt) || json_array_size(lt) != (size_t)hp->n_layers)
        return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\" must list %d layers", hp->n_layers);
    int any_mamba = 0;
    for (int i = 0; i < hp->n_layers; i++) {
        json_t *t = json_array_get(lt, (size_t)i);
        if (!json_is_string(t) || (strcmp(json_string_value(t), "mamba") && strcmp(json_string_value(t), "attention")))
            return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\"[%d] must be \"mamba\" or \"attention\"", i);
        any_mamba |= gmh_is_mamba(m, i);
    }
    mt_ssm2_cfg sc = {0};
    if (any_mamba) MT_TRY(gmh_ssm_cfg(m, &sc, err));
    m->own_cache = 1;
    m->no_mlx = "recurrent-state layers";
    m->bind_layer = gmh_bind_layer;
    MT_TRY(mt_decoder_bind(m, err));
    for (int i = 0; i < hp->n_layers; i++) m->layers[i].use_rope = !nope;
    mt_hyb_widen(m, (size_t)sc.n_heads * (size_t)sc.head_dim + 2 * (size_t)sc.n_groups * (size_t)sc.d_state);
    return MT_OK;
}

/* ---- jamba ---- */

static int jamba_is_attn(const mt_model *m, int i) {
    json_t *c = mt_config_json(m->cfg);
    json_t *bt = json_object_get(c, "layers_block_type");
    if (json_is_array(bt)) {
        const char *t = json_string_value(json_array_get(bt, (size_t)i));
        return t && !strcmp(t, "attention");
    }
    long long per = json_integer_value(json_object_get(c, "attn_layer_period"));
    long long off = json_integer_value(json_object_get(c, "attn_layer_offset"));
    return per > 0 && i % per == off;
}

static int jamba_moe_layer(const mt_model *m, int i) {
    json_t *c = mt_config_json(m->cfg);
    long long per = json_integer_value(json_object_get(c, "expert_layer_period"));
    long long off = json_integer_value(json_object_get(c, "expert_layer_offset"));
    return m->hp.n_experts > 1 && per > 0 && (i + off) % per == 0;
}

static int jamba_ssm_cfg(mt_model *m, mt_ssm1_cfg *sc, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    memset(sc, 0, sizeof *sc);
    int expand = 0;
    MT_TRY(mt_cfg_count(c, "mamba_expand", 0, &expand, 1, err));
    if ((long long)expand * m->hp.hidden > 1000000000LL)
        return mt_seterr(err, MT_EFORMAT, "config.json: \"mamba_expand\" is too large");
    sc->inter = expand * m->hp.hidden;
    MT_TRY(mt_cfg_count(c, "mamba_d_state", 0, &sc->d_state, 1, err));
    MT_TRY(mt_cfg_count(c, "mamba_d_conv", 0, &sc->conv_kernel, 1, err));
    MT_TRY(mt_cfg_bool(c, "mamba_proj_bias", 0, &sc->use_bias, err));
    MT_TRY(mt_cfg_bool(c, "mamba_conv_bias", 1, &sc->conv_bias, err));
    json_t *r = json_object_get(c, "mamba_dt_rank");
    if (!r || json_is_null(r) || (json_is_string(r) && !strcmp(json_string_value(r), "auto")))
        sc->dt_rank = (m->hp.hidden + 15) / 16;
    else MT_TRY(mt_cfg_count(c, "mamba_dt_rank", 0, &sc->dt_rank, 1, err));
    sc->bcdt_rms = sc->bcdt_w = 1;
    sc->rms_eps = m->hp.norm_eps;
    return MT_OK;
}

static int jamba_bind_layer(mt_model *m, int i, int *bound, mt_err *err) {
    char p[256];
    if (!jamba_is_attn(m, i)) {
        mt_ssm1_cfg sc;
        MT_TRY(jamba_ssm_cfg(m, &sc, err));
        snprintf(p, sizeof p, "model.layers.%d.mamba", i);
        MT_TRY(mt_ssm1_bind(m, i, p, &sc, err));
        *bound |= MT_BOUND_ATTN;
    }
    int dense = !jamba_moe_layer(m, i);
    MT_TRY(bind_ff_norms(m, i, dense, 0, err));
    *bound |= MT_BOUND_NORMS | (dense ? MT_BOUND_MLP : 0);
    return MT_OK;
}

static int jamba_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    mt_decoder_hp *hp = &m->hp;
    double eps = 1e-6;
    int d = 0;
    MT_TRY(mt_cfg_real(c, "rms_norm_eps", 1e-6, &eps, 1, MT_CFG_NONNEG, err));
    hp->norm_eps = (float)eps;
    static const char *const need[] = {"attn_layer_offset", "attn_layer_period", "expert_layer_offset",
                                       "expert_layer_period"};
    for (size_t k = 0; k < 4; k++) MT_TRY(mt_cfg_int(c, need[k], 0, &d, 1, err));
    MT_TRY(mt_cfg_count(c, "attn_layer_period", 1, &d, 1, err));
    MT_TRY(mt_cfg_count(c, "expert_layer_period", 1, &d, 1, err));
    json_t *bt = json_object_get(c, "layers_block_type");
    if (bt && !json_is_null(bt) && (!json_is_array(bt) || json_array_size(bt) != (size_t)hp->n_layers))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"layers_block_type\" must list %d layers", hp->n_layers);
    int na = 0, nm = 0;
    for (int i = 0; i < hp->n_layers; i++) {
        if (json_is_array(bt)) {
            const char *t = json_string_value(json_array_get(bt, (size_t)i));
            if (!t || (strcmp(t, "attention") && strcmp(t, "mamba")))
                return mt_seterr(err, MT_EFORMAT, "config.json: \"layers_block_type\"[%d] must be \"attention\" or \"mamba\"", i);
        }
        na += jamba_is_attn(m, i);
        nm += !jamba_is_attn(m, i);
    }
    if (!na || !nm)   /* mlx-lm looks both kinds up */
        return mt_seterr(err, MT_EFORMAT, "config.json: jamba needs both attention and mamba layers");
    MT_TRY(mt_cfg_count(c, "num_experts", 0, &hp->n_experts, 1, err));
    MT_TRY(mt_cfg_count(c, "num_experts_per_tok", 0, &hp->top_k, 1, err));
    if (hp->n_experts > 1 && (hp->top_k > hp->n_experts || hp->top_k > 64))
        return mt_seterr(err, MT_EFORMAT, "config.json: num_experts_per_tok %d does not fit num_experts %d", hp->top_k,
                         hp->n_experts);
    hp->moe_inter = hp->inter;
    hp->head_dim = hp->hidden / hp->n_heads;   /* jamba: hidden / heads */
    if (hp->head_dim < 2 || hp->head_dim % 2)
        return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size / num_attention_heads must be even and positive");
    hp->rot_dims = hp->head_dim;
    hp->attn_bias = hp->o_bias = hp->mlp_bias = 0;
    m->rope_scaling = NULL;
    mt_ssm1_cfg sc;
    MT_TRY(jamba_ssm_cfg(m, &sc, err));
    m->own_cache = 1;
    m->no_mlx = "recurrent-state layers";
    m->final_norm_name = "model.final_layernorm";
    m->moe_layer = jamba_moe_layer;
    m->moe_prefix = "feed_forward";
    m->moe_router = "router";
    static const char *const obs[] = {"mlp.", "feed_forward.", NULL};
    m->obs_map = obs;
    m->bind_layer = jamba_bind_layer;
    MT_TRY(mt_decoder_bind(m, err));
    for (int i = 0; i < hp->n_layers; i++) m->layers[i].use_rope = 0;
    mt_hyb_widen(m, (size_t)sc.inter);
    return MT_OK;
}

const mt_family mt_family_nemotron_h = {"nemotron_h", nemotron_h_init,
                                        "Mamba-2, RoPE-free attention, ReLU^2 MLP and routed-expert blocks by pattern"};
const mt_family mt_family_falcon_h1 = {"falcon_h1", falcon_h1_init,
                                       "attention and Mamba-2 side by side in every layer, SwiGLU MLP"};
const mt_family mt_family_granitemoehybrid = {"granitemoehybrid", granitemoehybrid_init,
                                              "granite multipliers over Mamba-2 and attention layers, dense or MoE + shared MLP"};
const mt_family mt_family_jamba = {"jamba", jamba_init,
                                   "Mamba (normalized dt/B/C) and RoPE-free attention layers, MoE every n-th MLP"};
