/* hybrid.c - families built on the recurrent-state mixers (shortconv.c, ssm.c):
 *   lfm2          attention (q/k RMSNorm per head) and gated short-convolution layers by
 *                 layer_types / full_attn_idxs, each with a SwiGLU MLP (feed_forward.w1/w3/w2)
 *   lfm2_moe      the same layers; the MLP (feed_forward.gate_proj/up_proj/down_proj) of the
 *                 first num_dense_layers, then the built-in MoE: sigmoid scores, an optional
 *                 expert_bias for the selection only, top-k renormalized (+1e-6), scaled by
 *                 routed_scaling_factor
 *   mamba2        Mamba-2 (SSD) blocks only, no MLP (backbone.layers.N.mixer)
 *   mamba         Mamba selective-scan blocks only; falcon_mamba: the same with dt, B and C
 *                 RMS-normalized (mlx-lm runs it on mamba.py)
 * Every one of them has mlx-lm's make_cache, so mlx-lm ignores --max-kv-size for them
 * (own_cache); their state cannot be trimmed, so speculative decoding and prompt-cache files
 * refuse them.
 * ref: mlx_lm/models/lfm2.py, lfm2_moe.py, mamba2.py, mamba.py. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "models/decoder_int.h"
#include "models/ssm_int.h"

#define NO_MLX "recurrent-state layers"

/* The decoder's hyper-parameters for a model whose layers the family binds itself: sizes from
 * the config keys named, llama defaults for the rest; attention geometry is a token 1 x 2 for
 * models without attention (heads_key NULL). */
int mt_hyb_hp(mt_model *m, const char *layers_key, const char *heads_key, const char *eps_key, double eps_def,
                     mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    mt_decoder_hp *hp = &m->hp;
    memset(hp, 0, sizeof *hp);
    double eps = eps_def;
    MT_TRY(mt_cfg_check_nan(m->cfg, err));
    if (layers_key) MT_TRY(mt_cfg_count(c, layers_key, 0, &hp->n_layers, 1, err));
    MT_TRY(mt_cfg_count(c, "hidden_size", 0, &hp->hidden, 1, err));
    MT_TRY(mt_cfg_count(c, "vocab_size", 0, &hp->vocab, 1, err));
    if (eps_key) MT_TRY(mt_cfg_real(c, eps_key, eps_def, &eps, 1, MT_CFG_NONNEG, err));
    hp->norm_eps = (float)eps;
    hp->n_heads = hp->n_kv_heads = 1;
    hp->head_dim = 2;
    if (heads_key) {
        MT_TRY(mt_cfg_count(c, heads_key, 0, &hp->n_heads, 1, err));
        MT_TRY(mt_cfg_count(c, "num_key_value_heads", hp->n_heads, &hp->n_kv_heads, 0, err));
        if (hp->n_heads % hp->n_kv_heads)
            return mt_seterr(err, MT_EFORMAT, "config.json: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                             hp->n_heads, hp->n_kv_heads);
    }
    hp->inter = 1;
    hp->rope_theta = 10000.0f;
    hp->rot_dims = hp->head_dim;
    hp->embed_scale = hp->residual_scale = hp->logits_div = 1.0f;
    m->rope_scaling = NULL;
    m->rope_scaling_key = "rope_scaling";
    m->own_cache = 1;
    m->no_mlx = NO_MLX;
    return MT_OK;
}

/* A required boolean (mlx-lm's ModelArgs field without a default). */
int mt_hyb_bool(json_t *c, const char *key, int *out, mt_err *err) {
    json_t *v = json_object_get(c, key);
    if (!v || json_is_null(v)) return mt_seterr(err, MT_EFORMAT, "config.json: missing \"%s\"", key);
    return mt_cfg_bool(c, key, 0, out, err);
}

/* ---- lfm2 ---- */

static int lfm2_is_attn(const mt_model *m, int layer) {
    json_t *c = mt_config_json(m->cfg);
    json_t *fa = json_object_get(c, "full_attn_idxs");
    if (json_is_array(fa)) {
        size_t i;
        json_t *v;
        json_array_foreach(fa, i, v) if (json_integer_value(v) == layer) return 1;
        return 0;
    }
    json_t *t = json_array_get(json_object_get(c, "layer_types"), (size_t)layer);
    return json_is_string(t) && !strcmp(json_string_value(t), "full_attention");
}

/* lfm2_moe: the layers from num_dense_layers on are sparse (the key is checked in init) */
static int lfm2_moe_layer(const mt_model *m, int layer) {
    return layer >= json_integer_value(json_object_get(mt_config_json(m->cfg), "num_dense_layers"));
}

/* lfm2_moe's router and experts (mlx-lm's ModelArgs: every key but routed_scaling_factor required) */
static int lfm2_moe_cfg(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    mt_decoder_hp *hp = &m->hp;
    int dense = 0, norm = 0, bias = 0, mp = 0;
    double scale = 1;
    MT_TRY(mt_cfg_count(c, "num_experts", 0, &hp->n_experts, 1, err));
    MT_TRY(mt_cfg_count(c, "num_experts_per_tok", 0, &hp->top_k, 1, err));
    if (hp->top_k > hp->n_experts)
        return mt_seterr(err, MT_EFORMAT, "config.json: num_experts_per_tok %d exceeds num_experts %d", hp->top_k,
                         hp->n_experts);
    MT_TRY(mt_cfg_count(c, "moe_intermediate_size", 0, &hp->moe_inter, 1, err));
    MT_TRY(mt_cfg_count(c, "intermediate_size", 0, &hp->inter, 1, err));
    MT_TRY(mt_cfg_count(c, "max_position_embeddings", 0, &mp, 1, err));
    MT_TRY(mt_cfg_int(c, "num_dense_layers", 0, &dense, 1, err));
    MT_TRY(mt_hyb_bool(c, "norm_topk_prob", &norm, err));
    MT_TRY(mt_hyb_bool(c, "use_expert_bias", &bias, err));
    MT_TRY(mt_cfg_real(c, "routed_scaling_factor", 1, &scale, 0, MT_CFG_FINITE, err));
    hp->moe_score = MT_MOE_SIGMOID;
    hp->moe_norm_topk = norm;
    hp->moe_norm_add = 1e-6f;
    hp->moe_scale = (float)scale;
    m->moe_layer = lfm2_moe_layer;
    m->moe_sel_bias_name = bias ? "expert_bias" : NULL;
    return MT_OK;
}

static int lfm2_bind_layer(mt_model *m, int i, int *bound, mt_err *err) {
    mt_layer *L = &m->layers[i];
    const mt_decoder_hp *hp = &m->hp;
    json_t *c = mt_config_json(m->cfg);
    size_t H = (size_t)hp->hidden, hd = (size_t)hp->head_dim, qd = (size_t)hp->n_heads * hd;
    size_t kvd = (size_t)hp->n_kv_heads * hd, I = (size_t)hp->inter;
    char p[256];
#define LIN(field, sub, o, in) \
    do { snprintf(p, sizeof p, "model.layers.%d.%s", i, sub); \
         MT_TRY(mt_linear_bind(&L->field, m->st, m->cfg, p, o, in, -1, err)); } while (0)
#define NORM(field, sub, n) \
    do { snprintf(p, sizeof p, "model.layers.%d.%s", i, sub); MT_TRY(mt_dec_bind_norm(m, p, n, &L->field, err)); } while (0)
    if (lfm2_is_attn(m, i)) {
        LIN(q, "self_attn.q_proj", qd, H);
        LIN(k, "self_attn.k_proj", kvd, H);
        LIN(v, "self_attn.v_proj", kvd, H);
        LIN(o, "self_attn.out_proj", H, qd);
        NORM(q_norm, "self_attn.q_layernorm", hd);
        NORM(k_norm, "self_attn.k_layernorm", hd);
    } else {
        int L_cache = 0, bias = 0;
        MT_TRY(mt_cfg_count(c, "conv_L_cache", 0, &L_cache, 1, err));
        MT_TRY(mt_hyb_bool(c, "conv_bias", &bias, err));
        snprintf(p, sizeof p, "model.layers.%d.conv", i);
        MT_TRY(mt_shortconv_bind(m, i, p, (size_t)L_cache, bias, err));
    }
    if (m->moe_layer && m->moe_layer(m, i)) {   /* lfm2_moe's sparse layers */
        snprintf(p, sizeof p, "model.layers.%d.feed_forward", i);
        MT_TRY(mt_decoder_bind_moe(m, i, p, err));
    } else if (m->moe_layer) {                  /* lfm2_moe's dense layers: mlx-lm's sanitized names */
        LIN(gate, "feed_forward.gate_proj", I, H);
        LIN(up, "feed_forward.up_proj", I, H);
        LIN(down, "feed_forward.down_proj", H, I);
    } else {
        LIN(gate, "feed_forward.w1", I, H);
        LIN(up, "feed_forward.w3", I, H);
        LIN(down, "feed_forward.w2", H, I);
    }
    NORM(n1, "operator_norm", H);
    NORM(n2, "ffn_norm", H);
#undef LIN
#undef NORM
    *bound = MT_BOUND_ATTN | MT_BOUND_MLP | MT_BOUND_NORMS;
    return MT_OK;
}

/* lfm2's MLP width: block_ff_dim (else intermediate_size), adjusted as mlx-lm's MLP does */
static int lfm2_ff(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    mt_decoder_hp *hp = &m->hp;
    int ff = 0, mult = 1, adjust = 0;
    json_t *bf = json_object_get(c, "block_ff_dim");
    MT_TRY(mt_cfg_count(c, bf && !json_is_null(bf) ? "block_ff_dim" : "intermediate_size", 0, &ff, 1, err));
    MT_TRY(mt_cfg_count(c, "block_multiple_of", 0, &mult, 1, err));
    MT_TRY(mt_hyb_bool(c, "block_auto_adjust_ff_dim", &adjust, err));
    if (adjust) {
        ff = (int)(2 * (long long)ff / 3);
        json_t *fm = json_object_get(c, "block_ffn_dim_multiplier");
        if (fm && !json_is_null(fm)) {
            double f = 1;
            MT_TRY(mt_cfg_real(c, "block_ffn_dim_multiplier", 1, &f, 1, MT_CFG_POS, err));
            if (f * ff > 1e9) return mt_seterr(err, MT_EFORMAT, "config.json: \"block_ffn_dim_multiplier\" is too large");
            ff = (int)(f * ff);
        }
        ff = mult * ((ff + mult - 1) / mult);
        if (ff < 1) return mt_seterr(err, MT_EFORMAT, "config.json: the adjusted block_ff_dim is 0");
    }
    hp->inter = ff;
    return MT_OK;
}

/* lfm2 (moe 0) and lfm2_moe (moe 1) */
static int lfm2_common(mt_model *m, int moe, mt_err *err) {
    MT_TRY(mt_hyb_hp(m, "num_hidden_layers", "num_attention_heads", "norm_eps", 1e-5, err));
    json_t *c = mt_config_json(m->cfg);
    mt_decoder_hp *hp = &m->hp;
    hp->head_dim = hp->hidden / hp->n_heads;   /* lfm2 takes hidden / heads whatever head_dim says */
    if (hp->head_dim < 2 || hp->head_dim % 2)
        return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size / num_attention_heads must be even and positive");
    hp->rot_dims = hp->head_dim;
    double theta = 1e6;
    MT_TRY(mt_cfg_real(c, "rope_theta", 1e6, &theta, 0, MT_CFG_POS, err));
    json_t *rp = json_object_get(c, "rope_parameters");
    if (json_is_object(rp) && json_object_get(rp, "rope_theta")) {
        json_t *t = json_object_get(rp, "rope_theta");
        if (!json_is_number(t) || !(json_number_value(t) > 0) || json_number_value(t) > FLT_MAX)
            return mt_seterr(err, MT_EFORMAT, "config.json: \"rope_parameters.rope_theta\" must be a finite, positive number");
        theta = json_number_value(t);
    }
    hp->rope_theta = (float)theta;
    if (moe) MT_TRY(lfm2_moe_cfg(m, err));   /* lfm2_moe: intermediate_size as it is */
    else MT_TRY(lfm2_ff(m, err));
    json_t *fa = json_object_get(c, "full_attn_idxs"), *lt = json_object_get(c, "layer_types");
    if (fa && !json_is_null(fa)) {
        if (!json_is_array(fa)) return mt_seterr(err, MT_EFORMAT, "config.json: \"full_attn_idxs\" must be a list");
        size_t i;
        json_t *v;
        json_array_foreach(fa, i, v) if (!json_is_integer(v))
            return mt_seterr(err, MT_EFORMAT, "config.json: \"full_attn_idxs\" must hold layer numbers");
    } else {
        if (!json_is_array(lt) || json_array_size(lt) != (size_t)hp->n_layers)
            return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\" must list %d layers (or give \"full_attn_idxs\")",
                             hp->n_layers);
        for (size_t i = 0; i < json_array_size(lt); i++)
            if (!json_is_string(json_array_get(lt, i)))
                return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\"[%zu] is not a string", i);
    }
    int any = 0;
    for (int i = 0; i < hp->n_layers; i++) any |= lfm2_is_attn(m, i);
    if (!any) return mt_seterr(err, MT_EFORMAT, "config.json: lfm2 needs at least one full_attention layer");
    hp->qk_norm = MT_QKNORM_HEAD;
    hp->tie_embeddings = 1;   /* the output head is always embed_tokens */
    m->final_norm_name = "model.embedding_norm";
    static const char *const obs[] = {"mlp.gate_proj", "feed_forward.w1", "mlp.up_proj", "feed_forward.w3",
                                      "mlp.down_proj", "feed_forward.w2", "self_attn.o_proj", "self_attn.out_proj", NULL};
    static const char *const obs_moe[] = {"mlp.gate_proj", "feed_forward.gate_proj", "mlp.up_proj", "feed_forward.up_proj",
                                          "mlp.down_proj", "feed_forward.down_proj", "self_attn.o_proj",
                                          "self_attn.out_proj", NULL};
    m->obs_map = moe ? obs_moe : obs;
    m->bind_layer = lfm2_bind_layer;
    return mt_decoder_bind(m, err);
}

static int lfm2_init(mt_model *m, mt_err *err) { return lfm2_common(m, 0, err); }
static int lfm2_moe_init(mt_model *m, mt_err *err) { return lfm2_common(m, 1, err); }

/* ---- mamba2 ---- */

/* time_step_limit [min, max] (Infinity reads as the largest double) */
int mt_hyb_step_limit(json_t *c, float *lo, float *hi, mt_err *err) {
    json_t *tl = json_object_get(c, "time_step_limit");
    if (!json_is_array(tl) || json_array_size(tl) != 2 || !json_is_number(json_array_get(tl, 0)) ||
        !json_is_number(json_array_get(tl, 1)))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"time_step_limit\" must be [min, max]");
    double a = json_number_value(json_array_get(tl, 0)), b = json_number_value(json_array_get(tl, 1));
    if (!(a <= b) || a < 0) return mt_seterr(err, MT_EFORMAT, "config.json: \"time_step_limit\" must be [min, max] with 0 <= min <= max");
    *lo = a > FLT_MAX ? FLT_MAX : (float)a;
    *hi = b > FLT_MAX ? INFINITY : (float)b;
    return MT_OK;
}

static int mamba2_bind_layer(mt_model *m, int i, int *bound, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    mt_ssm2_cfg sc = {0};
    double eps = 1e-6;
    MT_TRY(mt_cfg_count(c, "num_heads", 0, &sc.n_heads, 1, err));
    MT_TRY(mt_cfg_count(c, "head_dim", 0, &sc.head_dim, 1, err));
    MT_TRY(mt_cfg_count(c, "n_groups", 0, &sc.n_groups, 1, err));
    json_t *ss = json_object_get(c, "ssm_state_size");
    MT_TRY(mt_cfg_count(c, ss && !json_is_null(ss) ? "ssm_state_size" : "state_size", 0, &sc.d_state, 1, err));
    MT_TRY(mt_cfg_count(c, "conv_kernel", 0, &sc.conv_kernel, 1, err));
    MT_TRY(mt_hyb_bool(c, "use_bias", &sc.use_bias, err));
    sc.out_bias = sc.use_bias;
    MT_TRY(mt_hyb_bool(c, "use_conv_bias", &sc.conv_bias, err));
    MT_TRY(mt_cfg_real(c, "layer_norm_epsilon", 1e-6, &eps, 1, MT_CFG_NONNEG, err));
    MT_TRY(mt_hyb_step_limit(c, &sc.dt_min, &sc.dt_max, err));
    sc.norm_eps = (float)eps;
    sc.norm_groups = 1;   /* mlx-lm's mamba2 normalizes the whole row */
    sc.pre_eps = 1e-5f;   /* the block's nn.RMSNorm default */
    char pre[128], p[128];
    snprintf(pre, sizeof pre, "backbone.layers.%d.norm", i);
    snprintf(p, sizeof p, "backbone.layers.%d.mixer", i);
    sc.pre_norm = pre;
    MT_TRY(mt_ssm2_bind(m, i, p, &sc, err));
    m->layers[i].no_mlp = 1;
    *bound = MT_BOUND_ATTN | MT_BOUND_MLP | MT_BOUND_NORMS;
    return MT_OK;
}

/* the widest mixer row, after mt_decoder_bind set max_in from the attention / MLP sizes */
void mt_hyb_widen(mt_model *m, size_t w) { if (w > m->max_in) m->max_in = w; }

static int mamba2_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_hyb_hp(m, "num_hidden_layers", NULL, "layer_norm_epsilon", 1e-6, err));
    json_t *c = mt_config_json(m->cfg);
    MT_TRY(mt_hyb_bool(c, "tie_word_embeddings", &m->hp.tie_embeddings, err));
    m->embed_name = "backbone.embeddings";
    m->final_norm_name = "backbone.norm_f";
    m->bind_layer = mamba2_bind_layer;
    MT_TRY(mt_decoder_bind(m, err));
    int nh = 0, hd = 0, g = 0, n = 0;
    MT_TRY(mt_cfg_count(c, "num_heads", 0, &nh, 1, err));
    MT_TRY(mt_cfg_count(c, "head_dim", 0, &hd, 1, err));
    MT_TRY(mt_cfg_count(c, "n_groups", 0, &g, 1, err));
    json_t *ss = json_object_get(c, "ssm_state_size");
    MT_TRY(mt_cfg_count(c, ss && !json_is_null(ss) ? "ssm_state_size" : "state_size", 0, &n, 1, err));
    mt_hyb_widen(m, (size_t)nh * (size_t)hd + 2 * (size_t)g * (size_t)n);
    return MT_OK;
}

/* ---- mamba, falcon_mamba ---- */

static int mamba_cfg(mt_model *m, mt_ssm1_cfg *sc, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    memset(sc, 0, sizeof *sc);
    MT_TRY(mt_cfg_count(c, "intermediate_size", 0, &sc->inter, 1, err));
    MT_TRY(mt_cfg_count(c, "state_size", 0, &sc->d_state, 1, err));
    MT_TRY(mt_cfg_count(c, "conv_kernel", 0, &sc->conv_kernel, 1, err));
    MT_TRY(mt_hyb_bool(c, "use_bias", &sc->use_bias, err));
    MT_TRY(mt_hyb_bool(c, "use_conv_bias", &sc->conv_bias, err));
    json_t *r = json_object_get(c, "time_step_rank");
    if (json_is_string(r) && !strcmp(json_string_value(r), "auto")) sc->dt_rank = (m->hp.hidden + 15) / 16;
    else MT_TRY(mt_cfg_count(c, "time_step_rank", 0, &sc->dt_rank, 1, err));
    MT_TRY(mt_cfg_bool(c, "use_bcdt_rms", 0, &sc->bcdt_rms, err));
    if (!strcmp(m->model_type, "falcon_mamba")) sc->bcdt_rms = 1;
    double eps = 1e-6;
    MT_TRY(mt_cfg_real(c, "mixer_rms_eps", 1e-6, &eps, 0, MT_CFG_NONNEG, err));
    sc->rms_eps = (float)eps;
    sc->pre_eps = 1e-5f;
    return MT_OK;
}

static int mamba_bind_layer(mt_model *m, int i, int *bound, mt_err *err) {
    mt_ssm1_cfg sc;
    MT_TRY(mamba_cfg(m, &sc, err));
    char pre[128], p[128];
    snprintf(pre, sizeof pre, "backbone.layers.%d.norm", i);
    snprintf(p, sizeof p, "backbone.layers.%d.mixer", i);
    sc.pre_norm = pre;
    MT_TRY(mt_ssm1_bind(m, i, p, &sc, err));
    m->layers[i].no_mlp = 1;
    *bound = MT_BOUND_ATTN | MT_BOUND_MLP | MT_BOUND_NORMS;
    return MT_OK;
}

static int mamba_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_hyb_hp(m, "num_hidden_layers", NULL, NULL, 1e-5, err));   /* norm_f: nn.RMSNorm's default eps */
    json_t *c = mt_config_json(m->cfg);
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 1, &m->hp.tie_embeddings, err));
    mt_ssm1_cfg sc;
    MT_TRY(mamba_cfg(m, &sc, err));
    m->embed_name = "backbone.embeddings";
    m->final_norm_name = "backbone.norm_f";
    m->bind_layer = mamba_bind_layer;
    MT_TRY(mt_decoder_bind(m, err));
    mt_hyb_widen(m, (size_t)sc.inter);
    return MT_OK;
}

const mt_family mt_family_lfm2 = {"lfm2", lfm2_init, "attention + gated short-convolution layers (recurrent conv state)"};
const mt_family mt_family_lfm2_moe = {"lfm2_moe", lfm2_moe_init,
    "lfm2's conv + attention layers, dense MLPs then sigmoid-routed experts (selection bias, scaled)"};
const mt_family mt_family_mamba2 = {"mamba2", mamba2_init, "Mamba-2 SSD blocks: heads, groups, gated RMSNorm, conv state"};
const mt_family mt_family_mamba = {"mamba", mamba_init, "Mamba selective-scan blocks (recurrent state, no attention)"};
const mt_family mt_family_falcon_mamba = {"falcon_mamba", mamba_init, "mamba with RMS-normalized dt, B and C"};
