/* deepseek.c - families built on multi-head latent attention (mla.c) and the DeepSeek-style
 * mixture of experts (moe_ds.c):
 *   deepseek_v3  MLA in the absorbed form (the cache holds the latent), sigmoid router with the
 *                correction bias and groups; dense layers before first_k_dense_replace and off
 *                moe_layer_freq; kimi_k2 is the same model (mlx-lm's MODEL_REMAPPING)
 *   deepseek_v2  MLA expanded by kv_b_proj (the cache holds per-head keys and values), always yarn
 *                RoPE; softmax router, group_limited_greedy groups ranked by their best score
 *   deepseek     llama attention (biases on all four projections), softmax top-k router with shared
 *                experts, dense layers before first_k_dense_replace and off moe_layer_freq
 *   glm4_moe     llama attention (partial rotary, optional per-head q/k norms, q/k/v biases) with
 *                the DeepSeek router
 *   dots1        llama attention with per-head q/k norms, the DeepSeek router
 *   mistral4     deepseek_v3's absorbed MLA with rope_parameters and the llama-4 query scale;
 *                softmax router (groups by their best two, weights unmasked, renormalized)
 *   minicpm3     MLA expanded by kv_b_proj with longrope (SuScaledRoPE) RoPE, a dense MLP, embeddings
 *                scaled by scale_emb, branches by scale_depth / sqrt(layers), logits divided by
 *                hidden_size / dim_model_base (untied)
 * ref: mlx_lm/models/deepseek.py, deepseek_v3.py, deepseek_v2.py, glm4_moe.py, dots1.py, minicpm3.py, mistral4.py. */
#include <math.h>
#include <string.h>
#include "models/mla.h"

enum { ATT_LLAMA = 0, ATT_MLA, ATT_MLA_EXPANDED };

typedef struct ds_spec {
    int attn;          /* ATT_* */
    int scoring;       /* MT_DSMOE_* */
    int group_max;
    int has_bias;
    int norm_def;      /* mlx-lm's default of norm_topk_prob */
    int use_freq;      /* moe_layer_freq counts */
    int experts_opt;   /* n_routed_experts may be absent (every layer dense) */
} ds_spec;

static int is_cpm(const mt_model *m) { return !strcmp(m->model_type, "minicpm3"); }
static int is_m4(const mt_model *m) { return !strcmp(m->model_type, "mistral4"); }

static const ds_spec *spec_of(const mt_model *m) {
    static const ds_spec v3 = {ATT_MLA, MT_DSMOE_SIGMOID, 0, 1, 1, 1, 1};
    static const ds_spec v2 = {ATT_MLA_EXPANDED, MT_DSMOE_SOFTMAX, 1, 0, 0, 1, 1};
    static const ds_spec glm = {ATT_LLAMA, MT_DSMOE_SIGMOID, 0, 1, 0, 0, 0};
    static const ds_spec dots = {ATT_LLAMA, MT_DSMOE_SIGMOID, 0, 1, 0, 0, 0};
    static const ds_spec m4 = {ATT_MLA, MT_DSMOE_SOFTMAX, 0, 0, 0, 0, 0};
    static const ds_spec v1 = {ATT_LLAMA, MT_DSMOE_SOFTMAX, 0, 0, 0, 1, 1};
    if (is_m4(m)) return &m4;
    if (!strcmp(m->model_type, "deepseek")) return &v1;
    if (!strcmp(m->model_type, "deepseek_v2") || is_cpm(m)) return &v2;   /* minicpm3: no experts */
    if (!strcmp(m->model_type, "glm4_moe")) return &glm;
    if (!strcmp(m->model_type, "dots1")) return &dots;
    return &v3;   /* deepseek_v3, kimi_k2 */
}

static int mla_flags(const mt_model *m) {
    return (spec_of(m)->attn == ATT_MLA_EXPANDED ? MT_MLA_EXPANDED : 0) | (is_cpm(m) ? MT_MLA_MINICPM3 : 0) |
           (is_m4(m) ? MT_MLA_MISTRAL4 : 0);
}

/* The MoE hyper-parameters of the family, or *has = 0 when every layer is dense. */
static int moe_hp(mt_model *m, mt_dsmoe_hp *e, int *has, mt_err *err) {
    const ds_spec *s = spec_of(m);
    json_t *c = mt_config_json(m->cfg);
    json_t *ne = json_object_get(c, "n_routed_experts");
    *has = !is_cpm(m) && !(s->experts_opt && (!ne || json_is_null(ne)));
    if (!*has) return MT_OK;
    MT_TRY(mt_dsmoe_read_hp(m, e, s->norm_def, err));
    e->scoring = s->scoring;
    e->group_max = s->group_max;
    e->has_bias = s->has_bias;
    e->experts = strcmp(m->model_type, "dots1") ? "switch_mlp" : "experts";
    if (is_m4(m)) {
        e->w_unmasked = e->norm_any = 1;
    } else if (!strcmp(m->model_type, "deepseek")) {   /* softmax, top-k: no groups, scaling or renormalization */
        e->n_group = e->topk_group = 1;
        e->norm_topk = 0;
        e->routed_scale = 1.0f;
    } else if (s->scoring == MT_DSMOE_SOFTMAX) {
        /* deepseek_v2: groups only with topk_method "group_limited_greedy"; no renormalization */
        json_t *tm = json_object_get(c, "topk_method");
        int glg = json_is_string(tm) && !strcmp(json_string_value(tm), "group_limited_greedy");
        if (glg && (!json_is_number(json_object_get(c, "n_group")) || !json_is_number(json_object_get(c, "topk_group"))))
            return mt_seterr(err, MT_EFORMAT, "config.json: topk_method \"group_limited_greedy\" needs n_group and topk_group");
        if (!glg) e->n_group = e->topk_group = 1;
        e->norm_topk = 0;
    } else if (strcmp(m->model_type, "dots1")) {
        json_t *tm = json_object_get(c, "topk_method");
        if (tm && !json_is_null(tm) && !(json_is_string(tm) && !strcmp(json_string_value(tm), "noaux_tc")))
            return mt_seterr(err, MT_EUNSUPPORTED, "config.json: topk_method must be \"noaux_tc\" (mlx-lm's only one for %s)",
                             m->model_type);
    }
    return MT_OK;
}

static int is_moe_layer(const mt_model *m, int i, int first, int freq) {
    return i >= first && (!spec_of(m)->use_freq || i % freq == 0);
}

static int ds_layer_rules(mt_model *m, int *first, int *freq, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int req = !spec_of(m)->use_freq;   /* glm4_moe, dots1: a required field */
    *first = 0;
    *freq = 1;
    MT_TRY(mt_cfg_int(c, "first_k_dense_replace", 0, first, req, err));
    if (spec_of(m)->use_freq) MT_TRY(mt_cfg_count(c, "moe_layer_freq", 1, freq, 0, err));
    return MT_OK;
}

static int ds_bind_layer(mt_model *m, int i, int *bound, mt_err *err) {
    const ds_spec *s = spec_of(m);
    if (s->attn != ATT_LLAMA) {
        mt_mla_hp a;
        MT_TRY(mt_mla_read_hp(m, &a, mla_flags(m), err));
        MT_TRY(mt_mla_bind(m, i, &a, err));
        *bound |= MT_BOUND_ATTN;
    }
    mt_dsmoe_hp e;
    int has = 0, first = 0, freq = 1;
    MT_TRY(moe_hp(m, &e, &has, err));
    MT_TRY(ds_layer_rules(m, &first, &freq, err));
    if (has && is_moe_layer(m, i, first, freq)) {
        MT_TRY(mt_dsmoe_bind(m, i, &e, err));
        *bound |= MT_BOUND_MLP;
    }
    return MT_OK;
}

static int ds_init(mt_model *m, mt_err *err) {
    const ds_spec *s = spec_of(m);
    json_t *c = mt_config_json(m->cfg);
    MT_TRY(mt_decoder_read_hp(m, err));
    mt_mla_hp a;
    mt_dsmoe_hp e;
    int has = 0, first = 0, freq = 1;
    if (s->attn == ATT_LLAMA) {
        if (!strcmp(m->model_type, "deepseek")) MT_TRY(mt_decoder_rope_source(m, MT_ROPE_TOP, 10000, err));
        else MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
        if (!strcmp(m->model_type, "deepseek")) {
            m->hp.head_dim = m->hp.hidden / m->hp.n_heads;   /* a head_dim key is not read */
            m->hp.rot_dims = m->hp.head_dim;
            m->hp.o_bias = m->hp.attn_bias;                  /* attention_bias: all four projections */
            m->hp.mlp_bias = 0;
            m->hp.tie_embeddings = 0;
            json_t *rs = m->rope_scaling;                    /* only a "linear" scaling is read */
            json_t *ty = json_is_object(rs) ? json_object_get(rs, "type") : NULL;
            if (!(json_is_string(ty) && !strcmp(json_string_value(ty), "linear"))) m->rope_scaling = NULL;
        } else if (!strcmp(m->model_type, "glm4_moe")) {
            double prf = 1;
            MT_TRY(mt_cfg_count(c, "head_dim", 0, &m->hp.head_dim, 1, err));
            MT_TRY(mt_cfg_real(c, "partial_rotary_factor", 1, &prf, 1, MT_CFG_POS, err));
            if (prf > 1) return mt_seterr(err, MT_EFORMAT, "config.json: \"partial_rotary_factor\" must be at most 1");
            int qkn = 0;
            MT_TRY(mt_cfg_bool(c, "use_qk_norm", 0, &qkn, err));
            m->hp.rot_dims = (int)(m->hp.head_dim * prf);
            m->hp.qk_norm = qkn ? MT_QKNORM_HEAD : MT_QKNORM_NONE;
            m->hp.o_bias = 0;          /* q/k/v take attention_bias, o_proj none */
            m->hp.mlp_bias = 0;
            if (!json_object_get(c, "rope_scaling"))   /* a field without a default in mlx-lm (null is fine) */
                return mt_seterr(err, MT_EFORMAT, "config.json: missing \"rope_scaling\" (mlx-lm's glm4_moe needs "
                                 "the key, null or not)");
            m->rope_scaling = NULL;    /* nn.RoPE: rope_scaling is not read */
            MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
        } else {   /* dots1 */
            m->hp.rot_dims = m->hp.head_dim;
            m->hp.qk_norm = MT_QKNORM_HEAD;
            m->hp.attn_bias = m->hp.o_bias = 0;
            MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
        }
    } else if (is_m4(m)) {
        /* mistral4's __post_init__: the base and scaling from rope_parameters (required: the model
         * reads its llama-4 keys), else rope_theta */
        json_t *rp = json_object_get(c, "rope_parameters");
        if (!json_is_object(rp))
            return mt_seterr(err, MT_EFORMAT, "config.json: mistral4 needs a \"rope_parameters\" object");
        double th = 100000;
        json_t *tv = json_object_get(rp, "rope_theta");
        if (tv && !json_is_null(tv)) {
            if (!json_is_number(tv) || !(json_number_value(tv) > 0) || !isfinite(json_number_value(tv)))
                return mt_seterr(err, MT_EFORMAT, "config.json: \"rope_parameters.rope_theta\" must be a finite, "
                                 "positive number");
            th = json_number_value(tv);
        }
        m->hp.rope_theta = (float)th;
        m->rope_scaling = rp;
        m->rope_scaling_key = "rope_parameters";
        MT_TRY(mt_mla_read_hp(m, &a, mla_flags(m), err));
        MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
        m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = 0;
    } else {
        MT_TRY(mt_decoder_rope_source(m, MT_ROPE_TOP, 10000, err));
        MT_TRY(mt_mla_read_hp(m, &a, mla_flags(m), err));
        m->hp.tie_embeddings = 0;   /* a separate lm_head always */
        m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = 0;
    }
    MT_TRY(moe_hp(m, &e, &has, err));
    MT_TRY(ds_layer_rules(m, &first, &freq, err));
    m->bind_layer = ds_bind_layer;
    m->no_mlx = s->attn == ATT_LLAMA ? "the DeepSeek-style mixture of experts is not in the mlx numerics"
                                     : "multi-head latent attention is not in the mlx numerics";
    MT_TRY(mt_decoder_bind(m, err));
    if (s->attn != ATT_LLAMA) mt_mla_max_in(m, &a);
    if (has && (size_t)e.inter * (size_t)(e.n_shared ? e.n_shared : 1) > m->max_in)
        m->max_in = (size_t)e.inter * (size_t)(e.n_shared ? e.n_shared : 1);
    return MT_OK;
}

static int minicpm3_init(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_TOP, 1e6, err));   /* mlx-lm's minicpm3 default base */
    double se = 1, sd = 1, dmb = 1, maxp = 0, orig = 4096;
    MT_TRY(mt_cfg_real(c, "scale_emb", 1, &se, 1, MT_CFG_FINITE, err));
    MT_TRY(mt_cfg_real(c, "scale_depth", 1, &sd, 1, MT_CFG_FINITE, err));
    MT_TRY(mt_cfg_real(c, "dim_model_base", 1, &dmb, 1, MT_CFG_POS, err));
    MT_TRY(mt_cfg_real(c, "max_position_embeddings", 0, &maxp, 1, MT_CFG_POS, err));
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
    json_t *rs = m->rope_scaling;
    if (!json_is_object(rs))
        return mt_seterr(err, MT_EFORMAT, "config.json: mlx-lm's minicpm3 needs a \"rope_scaling\" object (its "
                         "SuScaledRoPE reads long_factor and original_max_position_embeddings)");
    json_t *ov = json_object_get(rs, "original_max_position_embeddings");
    if (ov && !json_is_null(ov)) {
        if (!json_is_number(ov) || !(json_number_value(ov) > 1) || !isfinite(json_number_value(ov)))
            return mt_seterr(err, MT_EFORMAT, "config.json: \"rope_scaling.original_max_position_embeddings\" must "
                             "be a number above 1");
        orig = json_number_value(ov);
    }
    mt_mla_hp a;
    MT_TRY(mt_mla_read_hp(m, &a, MT_MLA_EXPANDED | MT_MLA_MINICPM3, err));
    m->hp.embed_scale = (float)se;
    m->hp.residual_scale = (float)(sd / sqrt((double)m->hp.n_layers));
    if (!m->hp.tie_embeddings) m->hp.logits_div = (float)((double)m->hp.hidden / dmb);
    m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = 0;
    m->rope_scaling = NULL;   /* the tables are SuScaledRoPE's, set below whatever the type says */
    m->bind_layer = ds_bind_layer;
    m->no_mlx = "multi-head latent attention is not in the mlx numerics";
    MT_TRY(mt_decoder_bind(m, err));
    mt_mla_max_in(m, &a);
    json_t *su = json_pack("{s:s}", "type", "longrope");
    if (!su) return mt_seterr(err, MT_ENOMEM, "out of memory");
    json_t *lf = json_object_get(rs, "long_factor");
    if (lf && !json_is_null(lf)) json_object_set(su, "long_factor", lf);
    int rc = mt_rope_freqs(m->inv_freq, &m->rope_in_scale, a.rope, m->hp.rope_theta, su, maxp, orig, err);
    json_decref(su);
    MT_TRY(rc);
    for (int i = 0; i < m->hp.n_layers; i++) m->layers[i].rope_in_scale = m->rope_in_scale;
    return MT_OK;
}

/* ---- DeepSeek-style families (MLA / DeepSeek MoE) ---- */
const mt_family mt_family_deepseek_v3 = {"deepseek_v3", ds_init,
    "multi-head latent attention (absorbed, latent cache), sigmoid router with groups and correction bias"};
const mt_family mt_family_kimi_k2 = {"kimi_k2", ds_init, "deepseek_v3 (the same model)"};
const mt_family mt_family_deepseek_v2 = {"deepseek_v2", ds_init,
    "multi-head latent attention expanded by kv_b_proj, yarn RoPE, softmax router with groups"};
const mt_family mt_family_glm4_moe = {"glm4_moe", ds_init,
    "partial rotary, q/k norms and biases, DeepSeek-style sigmoid router with shared experts"};
const mt_family mt_family_minicpm3 = {"minicpm3", minicpm3_init,
    "multi-head latent attention expanded by kv_b_proj, longrope, embedding/depth/logit scales"};
const mt_family mt_family_deepseek = {"deepseek", ds_init,
    "mixture of experts: softmax top-k with shared experts, dense layers by first_k_dense_replace / moe_layer_freq"};
const mt_family mt_family_mistral4 = {"mistral4", ds_init,
    "latent attention (absorbed) with the llama-4 query scale, softmax router with groups"};
const mt_family mt_family_dots1 = {"dots1", ds_init, "q/k norms, DeepSeek-style sigmoid router with shared experts"};
