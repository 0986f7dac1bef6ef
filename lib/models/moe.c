/* moe.c - mixture-of-experts families on the shared decoder (the router's options: moe_fwd.c):
 *   mixtral       every layer sparse ("block_sparse_moe"): top-k of the router logits, softmax over them
 *   qwen3_moe     qwen3 attention (per-head q/k norms); layers sparse per decoder_sparse_step and
 *                 mlp_only_layers ("mlp"): softmax over all experts, top-k, optional renormalization
 *   qwen2_moe     qwen2 attention; softmax, top-k; a shared expert times sigmoid(shared_expert_gate)
 *   olmoe         q/k RMSNorm over the whole projection; softmax, top-k, optional renormalization
 *   granitemoe    granite's multipliers; router "router.layer": top-k of the logits, softmax over them
 *   phimoe        LayerNorms, biases everywhere (lm_head too), longrope; sparsemixer routing
 *   ernie4_5_moe  traditional RoPE; softmax or sigmoid scores, top-k, renormalized; shared experts
 *                 without a gate; expert biases with use_bias; sparse layers by start/end/interval
 *   bailing_moe   fused query_key_value, partial rotary, per-head q/k norms; softmax or sigmoid
 *                 scores, a selection bias, group-limited top-k, renormalized, a routed scaling
 *                 factor; shared experts; the first first_k_dense_replace layers dense
 *   hunyuan       q/k norms after RoPE (query_layernorm / key_layernorm), RoPE base scaled by
 *                 alpha; router "gate.wg": softmax, top-k; a shared MLP (use_mixed_mlp_moe);
 *                 cross-layer attention (use_cla: only every cla_share_factor-th layer projects
 *                 k and v, the layers after it reuse those projections, each with its own norm)
 *   hunyuan_v1_dense  the same attention with a dense MLP
 *   minimax       q/k norms over the projection, partial rotary (rotary_dim); sigmoid scores,
 *                 selection by score + e_score_correction_bias, renormalized
 *   dbrx          its own names (transformer.*, d_model, attn_config, ffn_config), bias-free
 *                 LayerNorms, fused Wqkv clipped to +-clip_qkv; softmax, top-k, renormalized;
 *                 one module per expert (ffn.experts.E.{w1,v1,w2}), not stacked
 *   llama4_text   (mlx-lm's, a dense model) RoPE only where no_rope_layers says 1, traditional;
 *                 q/k RMSNorms without weights; the MLP under feed_forward; the head "output"
 * Experts are stored stacked, as mlx-lm's SwitchGLU saves them (switch_mlp.{gate,up,down}_proj).
 * ref: mlx_lm/models/mixtral.py, qwen3_moe.py, qwen2_moe.py, olmoe.py, granitemoe.py, phimoe.py,
 * ernie4_5_moe.py, bailing_moe.py, hunyuan.py, hunyuan_v1_dense.py,
 * minimax.py, dbrx.py, llama4_text.py, switch_layers.py. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "models/decoder_int.h"

static int all_layers(const mt_model *m, int layer) { (void)m; (void)layer; return 1; }

static int mixtral_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_TOP, 1e6, err));   /* mlx-lm's mixtral default base */
    json_t *c = mt_config_json(m->cfg);
    MT_TRY(mt_cfg_count(c, "num_local_experts", 0, &m->hp.n_experts, 1, err));
    MT_TRY(mt_cfg_count(c, "num_experts_per_tok", 0, &m->hp.top_k, 1, err));
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
    if (m->hp.top_k > 64) return mt_seterr(err, MT_EUNSUPPORTED, "config.json: more than 64 experts per token");
    if (m->hp.top_k > m->hp.n_experts)
        return mt_seterr(err, MT_EFORMAT, "config.json: num_experts_per_tok %d exceeds num_local_experts %d",
                         m->hp.top_k, m->hp.n_experts);
    m->hp.moe_inter = m->hp.inter;
    m->moe_layer = all_layers;
    m->moe_prefix = "block_sparse_moe";
    return mt_decoder_bind(m, err);
}

/* A qwen3_moe layer is sparse unless listed in mlp_only_layers, and only every
 * decoder_sparse_step-th layer is (validated in init). */
static int qwen3_moe_layer(const mt_model *m, int layer) {
    json_t *c = mt_config_json(m->cfg);
    json_t *only = json_object_get(c, "mlp_only_layers");
    size_t i;
    json_t *v;
    json_array_foreach(only, i, v) if (json_integer_value(v) == layer) return 0;
    long long step = json_integer_value(json_object_get(c, "decoder_sparse_step"));
    return m->hp.n_experts > 0 && step > 0 && (layer + 1) % step == 0;
}

static int qwen3_moe_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    int step = 1;
    /* mlx-lm's ModelArgs requires num_experts and rope_theta; transformers >= 5 writes them as
     * num_local_experts and rope_parameters.rope_theta, which it does not read: refused alike */
    json_t *ne = json_object_get(c, "num_experts");
    if ((!ne || json_is_null(ne)) && json_object_get(c, "num_local_experts"))
        return mt_seterr(err, MT_EFORMAT, "config.json: missing \"num_experts\" (mlx-lm's qwen3_moe does not read the "
                         "transformers-5 \"num_local_experts\")");
    MT_TRY(mt_cfg_int(c, "num_experts", 0, &m->hp.n_experts, 1, err));   /* 0: every layer dense */
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    MT_TRY(mt_cfg_count(c, "num_experts_per_tok", 0, &m->hp.top_k, 1, err));
    MT_TRY(mt_cfg_count(c, "moe_intermediate_size", 0, &m->hp.moe_inter, 1, err));
    if (m->hp.n_experts > 0 && m->hp.top_k > m->hp.n_experts)
        return mt_seterr(err, MT_EFORMAT, "config.json: num_experts_per_tok %d exceeds num_experts %d", m->hp.top_k,
                         m->hp.n_experts);
    MT_TRY(mt_cfg_int(c, "decoder_sparse_step", 1, &step, 1, err));
    MT_TRY(mt_cfg_bool(c, "norm_topk_prob", 0, &m->hp.moe_norm_topk, err));
    json_t *only = json_object_get(c, "mlp_only_layers");
    if (only && !json_is_array(only)) return mt_seterr(err, MT_EFORMAT, "config.json: mlp_only_layers must be a list");
    size_t i;
    json_t *v;
    json_array_foreach(only, i, v) if (!json_is_integer(v))
        return mt_seterr(err, MT_EFORMAT, "config.json: mlp_only_layers must hold layer numbers");
    if (step < 1) return mt_seterr(err, MT_EFORMAT, "config.json: decoder_sparse_step must be positive");
    if (m->hp.top_k > 64) return mt_seterr(err, MT_EUNSUPPORTED, "config.json: more than 64 experts per token");
    m->hp.qk_norm = MT_QKNORM_HEAD;
    m->hp.moe_softmax_first = 1;
    m->moe_layer = qwen3_moe_layer;
    m->moe_prefix = "mlp";
    return mt_decoder_bind(m, err);
}

/* The expert counts under the family's keys (required), checked against each other. */
static int expert_counts(mt_model *m, const char *n_key, const char *k_key, int k_def, int k_required, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    MT_TRY(mt_cfg_count(c, n_key, 0, &m->hp.n_experts, 1, err));
    MT_TRY(mt_cfg_count(c, k_key, k_def, &m->hp.top_k, k_required, err));
    if (m->hp.top_k > 64) return mt_seterr(err, MT_EUNSUPPORTED, "config.json: more than 64 experts per token");
    if (m->hp.top_k > m->hp.n_experts)
        return mt_seterr(err, MT_EFORMAT, "config.json: %s %d exceeds %s %d", k_key, m->hp.top_k, n_key, m->hp.n_experts);
    return MT_OK;
}

static int qwen2_moe_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_TOP, 1e6, err));   /* mlx-lm's qwen2_moe default base */
    json_t *c = mt_config_json(m->cfg);
    MT_TRY(expert_counts(m, "num_experts", "num_experts_per_tok", 0, 1, err));
    MT_TRY(mt_cfg_count(c, "moe_intermediate_size", 0, &m->hp.moe_inter, 1, err));
    MT_TRY(mt_cfg_count(c, "shared_expert_intermediate_size", 0, &m->hp.moe_shared_inter, 1, err));
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
    m->hp.head_dim = m->hp.rot_dims = m->hp.hidden / m->hp.n_heads;   /* a head_dim key is not read */
    m->hp.attn_bias = 1;
    m->hp.o_bias = 0;
    m->rope_scaling = NULL;   /* mlx-lm checks a linear rope_scaling but runs plain RoPE */
    m->hp.moe_softmax_first = 1;
    m->hp.moe_shared_gate = 1;
    m->moe_layer = all_layers;
    m->moe_prefix = "mlp";
    return mt_decoder_bind(m, err);
}

static int olmoe_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    MT_TRY(expert_counts(m, "num_experts", "num_experts_per_tok", 0, 1, err));
    MT_TRY(mt_cfg_bool(c, "norm_topk_prob", 0, &m->hp.moe_norm_topk, err));
    m->hp.moe_inter = m->hp.inter;
    m->hp.moe_exp_bias = m->hp.mlp_bias;
    m->hp.qk_norm = MT_QKNORM_FULL;
    m->hp.moe_softmax_first = 1;
    m->moe_layer = all_layers;
    m->moe_prefix = "mlp";
    return mt_decoder_bind(m, err);
}

static int granitemoe_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));   /* mlx-lm: rope_theta has no default */
    MT_TRY(mt_granite_scales(m, err));
    MT_TRY(expert_counts(m, "num_local_experts", "num_experts_per_tok", 0, 1, err));
    m->hp.head_dim = m->hp.rot_dims = m->hp.hidden / m->hp.n_heads;
    m->hp.rope_traditional = 0;
    m->hp.moe_inter = m->hp.inter;
    m->moe_layer = all_layers;
    m->moe_prefix = "block_sparse_moe";
    m->moe_router = "router.layer";
    return mt_decoder_bind(m, err);
}

static int phimoe_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    double jitter = 0.01;
    MT_TRY(expert_counts(m, "num_local_experts", "num_experts_per_tok", 2, 0, err));
    MT_TRY(mt_cfg_real(c, "router_jitter_noise", 0.01, &jitter, 0, MT_CFG_NONNEG, err));
    json_t *rs = m->rope_scaling;
    if (json_is_object(rs)) {   /* mlx-lm runs any rope_scaling as SuScaledRoPE */
        json_t *t = json_object_get(rs, "type");
        const char *ty = json_is_string(t) ? json_string_value(t) : "";
        if (strcmp(ty, "longrope") && strcmp(ty, "su"))
            return mt_seterr(err, MT_EUNSUPPORTED, "config.json: phimoe's rope_scaling must be of type \"longrope\"");
    }
    m->hp.head_dim = m->hp.rot_dims = m->hp.hidden / m->hp.n_heads;
    m->hp.norm_type = MT_NORM_LAYER;
    m->hp.attn_bias = m->hp.o_bias = 1;
    m->hp.tie_embeddings = 0;
    m->hp.rope_traditional = 0;
    m->hp.moe_inter = m->hp.inter;
    m->hp.moe_score = MT_MOE_SPARSEMIXER;
    m->hp.moe_jitter = (float)jitter;
    m->moe_layer = all_layers;
    m->moe_prefix = "block_sparse_moe";
    MT_TRY(mt_decoder_bind(m, err));
    return mt_linear_bind(&m->lm_head, m->st, m->cfg, "lm_head", (size_t)m->hp.vocab, (size_t)m->hp.hidden, 1, err);
}

/* An ernie4_5_moe layer is sparse when (layer + 1) % moe_layer_interval == 0 and it lies within
 * [moe_layer_start_index, moe_layer_end_index] (lists: their min / max), read in init. */
static int ernie_bound(json_t *c, const char *key, int def, int want_max, int *out, mt_err *err) {
    json_t *v = json_object_get(c, key);
    *out = def;
    if (!v || json_is_null(v)) return MT_OK;
    if (json_is_integer(v)) { *out = (int)json_integer_value(v); return MT_OK; }
    if (!json_is_array(v) || !json_array_size(v))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" must be a layer number or a list of them", key);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_integer(e))
            return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" must be a layer number or a list of them", key);
        int x = (int)json_integer_value(e);
        if (i == 0 || (want_max ? x > *out : x < *out)) *out = x;
    }
    return MT_OK;
}

static int ernie_layer(const mt_model *m, int layer) {
    json_t *c = mt_config_json(m->cfg);
    int start = 0, end = m->hp.n_layers - 1, step = 1;
    mt_err e;
    if (ernie_bound(c, "moe_layer_start_index", 0, 0, &start, &e) ||
        ernie_bound(c, "moe_layer_end_index", m->hp.n_layers - 1, 1, &end, &e))
        return 0;
    json_t *iv = json_object_get(c, "moe_layer_interval");
    if (json_is_integer(iv)) step = (int)json_integer_value(iv);
    return (layer + 1) % step == 0 && layer >= start && layer <= end;
}

static int ernie4_5_moe_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    json_t *c = mt_config_json(m->cfg);
    int use_bias = 0, shared = 0, step = 1, b;
    MT_TRY(expert_counts(m, "moe_num_experts", "moe_k", 1, 0, err));
    MT_TRY(mt_cfg_int(c, "moe_intermediate_size", 0, &m->hp.moe_inter, 0, err));
    MT_TRY(mt_cfg_int(c, "moe_num_shared_experts", 0, &shared, 0, err));
    MT_TRY(mt_cfg_count(c, "moe_layer_interval", 1, &step, 0, err));
    MT_TRY(mt_cfg_bool(c, "use_bias", 0, &use_bias, err));
    json_t *tw = json_object_get(c, "tie_word_embeddings");
    if (!json_is_boolean(tw))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"tie_word_embeddings\" must be true or false");
    m->hp.tie_embeddings = json_is_true(tw);
    MT_TRY(ernie_bound(c, "moe_layer_start_index", 0, 0, &b, err));
    MT_TRY(ernie_bound(c, "moe_layer_end_index", 0, 1, &b, err));
    if (m->hp.moe_inter < 0 || shared < 0)
        return mt_seterr(err, MT_EFORMAT, "config.json: expert sizes must not be negative");
    json_t *act = json_object_get(c, "moe_gate_act");
    const char *a = json_is_string(act) ? json_string_value(act) : act ? "" : "softmax";
    if (!strcmp(a, "sigmoid")) m->hp.moe_score = MT_MOE_SIGMOID;
    else if (strcmp(a, "softmax"))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"moe_gate_act\" must be \"softmax\" or \"sigmoid\"");
    int ei = m->hp.moe_inter ? m->hp.moe_inter : m->hp.inter;
    m->hp.moe_shared_inter = ei * shared;
    m->hp.moe_inter = ei;
    m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = m->hp.moe_exp_bias = use_bias;
    m->hp.rope_traditional = 1;
    m->rope_scaling = NULL;   /* mlx-lm passes no scaling config */
    m->hp.moe_softmax_first = 1;
    m->hp.moe_norm_topk = 1;
    m->hp.moe_norm_min = 1e-12f;
    m->moe_layer = ernie_layer;
    m->moe_prefix = "mlp";
    m->moe_shared_name = "shared_experts";
    return mt_decoder_bind(m, err);
}

/* bailing_moe's attention names: attention.query_key_value (q | k | v rows, bias use_qkv_bias),
 * attention.dense (bias use_bias), per-head attention.query_layernorm / key_layernorm. */
static int bailing_layer(mt_model *m, int i, int *bound, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    mt_layer *L = &m->layers[i];
    size_t H = (size_t)m->hp.hidden, hd = (size_t)m->hp.head_dim, qd = (size_t)m->hp.n_heads * hd;
    size_t kvd = (size_t)m->hp.n_kv_heads * hd;
    int qkvb = 0;
    MT_TRY(mt_cfg_bool(c, "use_qkv_bias", 0, &qkvb, err));
    char p[160];
    snprintf(p, sizeof p, "model.layers.%d.attention.query_key_value", i);
    MT_TRY(mt_linear_bind(&L->qkv, m->st, m->cfg, p, qd + 2 * kvd, H, qkvb ? 1 : -1, err));
    snprintf(p, sizeof p, "model.layers.%d.attention.dense", i);
    MT_TRY(mt_linear_bind(&L->o, m->st, m->cfg, p, H, qd, m->hp.o_bias ? 1 : -1, err));
    if (m->hp.qk_norm) {
        snprintf(p, sizeof p, "model.layers.%d.attention.query_layernorm", i);
        MT_TRY(mt_dec_bind_norm(m, p, hd, &L->q_norm, err));
        snprintf(p, sizeof p, "model.layers.%d.attention.key_layernorm", i);
        MT_TRY(mt_dec_bind_norm(m, p, hd, &L->k_norm, err));
    }
    *bound = MT_BOUND_ATTN;
    return MT_OK;
}

static int bailing_sparse(const mt_model *m, int layer) {
    int first = 0;
    mt_err e;
    if (mt_cfg_int(mt_config_json(m->cfg), "first_k_dense_replace", 0, &first, 1, &e)) return 0;
    return layer >= first;
}

static int bailing_moe_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    json_t *c = mt_config_json(m->cfg);
    int use_bias = 0, qkn = 0, shared = 0, shared_on = 1, sel_bias = 0, norm = 0, first = 0, groups = 1, keep = 4;
    int rot = 0;
    double prf = 1.0, rsf = 1.0;
    MT_TRY(expert_counts(m, "num_experts", "num_experts_per_tok", 0, 1, err));
    MT_TRY(mt_cfg_count(c, "moe_intermediate_size", 0, &m->hp.moe_inter, 1, err));
    MT_TRY(mt_cfg_int(c, "num_shared_experts", 0, &shared, 1, err));
    MT_TRY(mt_cfg_int(c, "first_k_dense_replace", 0, &first, 1, err));
    MT_TRY(mt_cfg_bool(c, "norm_topk_prob", 0, &norm, err));
    MT_TRY(mt_cfg_bool(c, "use_bias", 0, &use_bias, err));
    MT_TRY(mt_cfg_bool(c, "use_qk_norm", 0, &qkn, err));
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
    MT_TRY(mt_cfg_bool(c, "moe_router_enable_expert_bias", 0, &sel_bias, err));
    MT_TRY(mt_cfg_bool(c, "moe_router_enable_shared_expert", 1, &shared_on, err));
    MT_TRY(mt_cfg_real(c, "routed_scaling_factor", 1.0, &rsf, 0, MT_CFG_FINITE, err));
    MT_TRY(mt_cfg_real(c, "partial_rotary_factor", 1.0, &prf, 0, MT_CFG_POS, err));
    MT_TRY(mt_cfg_count(c, "n_group", 1, &groups, 0, err));
    MT_TRY(mt_cfg_count(c, "topk_group", 4, &keep, 0, err));
    if (shared < 0 || first < 0)
        return mt_seterr(err, MT_EFORMAT, "config.json: num_shared_experts and first_k_dense_replace must not be negative");
    json_t *sf = json_object_get(c, "score_function");
    const char *fn = json_is_string(sf) ? json_string_value(sf) : sf ? "" : "softmax";
    if (!strcmp(fn, "sigmoid")) m->hp.moe_score = MT_MOE_SIGMOID;
    else if (strcmp(fn, "softmax"))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"score_function\" must be \"softmax\" or \"sigmoid\"");
    m->hp.head_dim = m->hp.hidden / m->hp.n_heads;
    json_t *rd = json_object_get(c, "rotary_dim");
    if (rd && !json_is_null(rd)) MT_TRY(mt_cfg_count(c, "rotary_dim", 0, &rot, 1, err));
    else rot = (int)(m->hp.head_dim * prf);
    if (rot < 2 || rot > m->hp.head_dim || rot % 2)
        return mt_seterr(err, MT_EFORMAT, "config.json: rotary dimensions %d do not fit head_dim %d", rot, m->hp.head_dim);
    m->hp.rot_dims = rot;
    if (shared > 0 && shared_on) {
        int si = m->hp.moe_inter;
        json_t *sv = json_object_get(c, "moe_shared_expert_intermediate_size");
        if (sv && !json_is_null(sv)) MT_TRY(mt_cfg_count(c, "moe_shared_expert_intermediate_size", 0, &si, 1, err));
        m->hp.moe_shared_inter = si * shared;
    }
    /* norm_head: mlx-lm's sanitize divides lm_head's columns by their norms at every load, so
     * a converted (saved) model holds them divided already and dividing again changes nothing */
    m->hp.fused_qkv = 1;
    m->hp.qk_norm = qkn ? MT_QKNORM_HEAD : MT_QKNORM_NONE;
    m->hp.o_bias = m->hp.mlp_bias = m->hp.moe_exp_bias = use_bias;
    m->hp.moe_softmax_first = 1;
    m->hp.moe_norm_topk = norm && m->hp.top_k > 1;
    m->hp.moe_norm_add = 1e-20f;
    m->hp.moe_scale = (float)rsf;
    m->hp.moe_groups = groups;
    m->hp.moe_topk_groups = keep;
    m->bind_layer = bailing_layer;
    m->embed_name = "model.word_embeddings";
    m->moe_layer = bailing_sparse;
    m->moe_prefix = "mlp";
    m->moe_router = "gate.gate_proj";
    m->moe_shared_name = "shared_experts";
    if (sel_bias) m->moe_sel_bias_name = "gate.expert_bias";
    return mt_decoder_bind(m, err);
}

/* Layer i's self_attn.{q,k,v,o}_proj (biases per hp.attn_bias / o_bias). */
static int bind_qkvo(mt_model *m, int i, mt_err *err) {
    mt_layer *L = &m->layers[i];
    size_t H = (size_t)m->hp.hidden, hd = (size_t)m->hp.head_dim, qd = (size_t)m->hp.n_heads * hd;
    size_t kvd = (size_t)m->hp.n_kv_heads * hd;
    char p[160];
    const char *nm[4] = {"q_proj", "k_proj", "v_proj", "o_proj"};
    mt_linear *dst[4] = {&L->q, &L->k, &L->v, &L->o};
    size_t out[4] = {qd, kvd, kvd, H}, in[4] = {H, H, H, qd};
    for (int j = 0; j < 4; j++) {
        if (L->kv_prev && (j == 1 || j == 2)) continue;   /* hunyuan CLA: no k/v projections */
        snprintf(p, sizeof p, "model.layers.%d.self_attn.%s", i, nm[j]);
        int b = (j < 3 ? m->hp.attn_bias : m->hp.o_bias) ? 1 : -1;
        MT_TRY(mt_linear_bind(dst[j], m->st, m->cfg, p, out[j], in[j], b, err));
    }
    return MT_OK;
}

/* hunyuan's q/k norms are self_attn.query_layernorm / key_layernorm (per head, after RoPE). */
static int hunyuan_layer(mt_model *m, int i, int *bound, mt_err *err) {
    mt_layer *L = &m->layers[i];
    size_t hd = (size_t)m->hp.head_dim;
    char p[160];
    if (m->hp.kv_share) {   /* cross-layer attention: only every cla_share_factor-th layer projects k, v */
        int f = 2;
        MT_TRY(mt_cfg_count(mt_config_json(m->cfg), "cla_share_factor", 2, &f, 0, err));
        L->kv_prev = i % f != 0;
    }
    MT_TRY(bind_qkvo(m, i, err));
    if (m->hp.qk_norm) {
        snprintf(p, sizeof p, "model.layers.%d.self_attn.query_layernorm", i);
        MT_TRY(mt_dec_bind_norm(m, p, hd, &L->q_norm, err));
        snprintf(p, sizeof p, "model.layers.%d.self_attn.key_layernorm", i);
        MT_TRY(mt_dec_bind_norm(m, p, hd, &L->k_norm, err));
    }
    *bound = MT_BOUND_ATTN;
    return MT_OK;
}

/* What hunyuan and hunyuan_v1_dense share: RoPE with base * alpha^(d / (d - 2)) (rope_scaling
 * "alpha"; mlx-lm's DynamicNTKAlphaRoPE), q/k norms after RoPE, their attention names. */
static int hunyuan_common(mt_model *m, int qk_def, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int qkn = qk_def;
    MT_TRY(mt_cfg_bool(c, "use_qk_norm", qk_def, &qkn, err));
    double alpha = 1.0;
    if (json_is_object(m->rope_scaling) && json_object_get(m->rope_scaling, "alpha")) {
        json_t *av = json_object_get(m->rope_scaling, "alpha");
        alpha = json_number_value(av);
        if (!json_is_number(av) || !(alpha > 0) || alpha > 1e6)
            return mt_seterr(err, MT_EFORMAT, "config.json: \"rope_scaling.alpha\" must be a positive number");
    }
    double d = m->hp.head_dim;
    if (d <= 2) return mt_seterr(err, MT_EFORMAT, "config.json: head_dim must exceed 2");
    m->hp.rope_theta = (float)(m->hp.rope_theta * pow(alpha, d / (d - 2)));
    m->rope_scaling = NULL;
    m->hp.rope_traditional = 0;
    m->hp.qk_norm = qkn ? MT_QKNORM_HEAD : MT_QKNORM_NONE;
    m->hp.qk_norm_late = 1;
    m->bind_layer = hunyuan_layer;
    m->no_mlx = "its q/k norms after RoPE";
    return MT_OK;
}

static int hunyuan_v1_dense_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_cfg_bool(mt_config_json(m->cfg), "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
    MT_TRY(hunyuan_common(m, 1, err));
    return mt_decoder_bind(m, err);
}

/* A hunyuan key that may be a per-layer list: only one value for every layer is taken. */
static int hunyuan_scalar(json_t *c, const char *key, int def, int *out, mt_err *err) {
    json_t *v = json_object_get(c, key);
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) if (!json_is_integer(e) || json_integer_value(e) != json_integer_value(json_array_get(v, 0)))
            return mt_seterr(err, MT_EUNSUPPORTED, "config.json: \"%s\" differing per layer is not supported", key);
        if (!json_array_size(v)) return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" is an empty list", key);
        *out = (int)json_integer_value(json_array_get(v, 0));
        return MT_OK;
    }
    return mt_cfg_int(c, key, def, out, 0, err);
}

static int hunyuan_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    json_t *c = mt_config_json(m->cfg);
    int cla = 0, mixed = 0, shared = 0, k = 0;
    MT_TRY(mt_cfg_bool(c, "use_cla", 0, &cla, err));
    if (cla) {
        int f = 2;
        MT_TRY(mt_cfg_count(c, "cla_share_factor", 2, &f, 1, err));
        m->hp.kv_share = f > 1;
    }
    if (!json_is_object(m->rope_scaling) || !json_is_number(json_object_get(m->rope_scaling, "alpha")))
        return mt_seterr(err, MT_EFORMAT, "config.json: hunyuan needs \"rope_scaling\" with an \"alpha\"");
    MT_TRY(mt_cfg_count(c, "num_experts", 0, &m->hp.n_experts, 1, err));
    MT_TRY(hunyuan_scalar(c, "moe_topk", 0, &k, err));
    MT_TRY(hunyuan_scalar(c, "num_shared_expert", 0, &shared, err));
    MT_TRY(hunyuan_scalar(c, "moe_intermediate_size", m->hp.inter, &m->hp.moe_inter, err));
    MT_TRY(mt_cfg_bool(c, "use_mixed_mlp_moe", 0, &mixed, err));
    m->hp.head_dim = m->hp.rot_dims = m->hp.hidden / m->hp.n_heads;
    m->hp.o_bias = m->hp.attn_bias;
    m->hp.tie_embeddings = 1;   /* the output head is always the embedding */
    MT_TRY(hunyuan_common(m, 0, err));
    if (m->hp.n_experts > 1) {
        if (k < 1 || k > m->hp.n_experts || k > 64)
            return mt_seterr(err, MT_EFORMAT, "config.json: moe_topk %d does not fit %d experts", k, m->hp.n_experts);
        if (m->hp.moe_inter < 1 || shared < 0)
            return mt_seterr(err, MT_EFORMAT, "config.json: bad moe_intermediate_size / num_shared_expert");
        m->hp.top_k = k;
        m->hp.moe_softmax_first = 1;
        if (mixed && shared > 0) m->hp.moe_shared_inter = m->hp.inter * shared;
        m->moe_layer = all_layers;
        m->moe_prefix = "mlp";
        m->moe_router = "gate.wg";
        m->moe_shared_name = "shared_mlp";
    }
    return mt_decoder_bind(m, err);
}

static int minimax_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    json_t *c = mt_config_json(m->cfg);
    int qkn = 1, rot = 0;
    MT_TRY(expert_counts(m, "num_local_experts", "num_experts_per_tok", 0, 1, err));
    MT_TRY(mt_cfg_count(c, "rotary_dim", 0, &rot, 1, err));
    MT_TRY(mt_cfg_bool(c, "use_qk_norm", 1, &qkn, err));
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
    m->hp.rot_dims = rot;   /* mt_decoder_bind checks it against head_dim */
    m->rope_scaling = NULL;   /* mlx-lm's nn.RoPE takes no scaling */
    m->hp.qk_norm = qkn ? MT_QKNORM_FULL : MT_QKNORM_NONE;
    m->hp.moe_inter = m->hp.inter;
    m->hp.moe_score = MT_MOE_SIGMOID;   /* whatever scoring_func says, as mlx-lm */
    m->hp.moe_norm_topk = 1;
    m->hp.moe_norm_add = 1e-20f;
    m->moe_layer = all_layers;
    m->moe_prefix = "block_sparse_moe";
    m->moe_sel_bias_name = "e_score_correction_bias";
    return mt_decoder_bind(m, err);
}

/* llama4_text: q/k RMSNorms without weights (ones), the MLP under feed_forward. */
static int llama4_text_layer(mt_model *m, int i, int *bound, mt_err *err) {
    mt_layer *L = &m->layers[i];
    size_t H = (size_t)m->hp.hidden, hd = (size_t)m->hp.head_dim, I = (size_t)m->hp.inter;
    char p[160];
    MT_TRY(bind_qkvo(m, i, err));
    if (m->hp.qk_norm) {
        L->q_norm.w = malloc(hd * sizeof(float));
        L->k_norm.w = malloc(hd * sizeof(float));
        if (!L->q_norm.w || !L->k_norm.w) return mt_seterr(err, MT_ENOMEM, "out of memory");
        for (size_t j = 0; j < hd; j++) L->q_norm.w[j] = L->k_norm.w[j] = 1.0f;
    }
    const char *nm[3] = {"gate_proj", "up_proj", "down_proj"};
    mt_linear *dst[3] = {&L->gate, &L->up, &L->down};
    for (int j = 0; j < 3; j++) {
        snprintf(p, sizeof p, "model.layers.%d.feed_forward.%s", i, nm[j]);
        MT_TRY(mt_linear_bind(dst[j], m->st, m->cfg, p, j < 2 ? I : H, j < 2 ? H : I, -1, err));
    }
    *bound = MT_BOUND_ATTN | MT_BOUND_MLP;
    return MT_OK;
}

static int llama4_text_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    json_t *c = mt_config_json(m->cfg);
    int qkn = 0;
    MT_TRY(mt_cfg_count(c, "intermediate_size_mlp", 0, &m->hp.inter, 1, err));
    MT_TRY(mt_cfg_count(c, "head_dim", 0, &m->hp.head_dim, 1, err));
    json_t *qv = json_object_get(c, "use_qk_norm"), *tv = json_object_get(c, "tie_word_embeddings");
    if (!json_is_boolean(qv) || !json_is_boolean(tv))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"use_qk_norm\" and \"tie_word_embeddings\" must be true or false");
    qkn = json_is_true(qv);
    m->hp.tie_embeddings = json_is_true(tv);
    json_t *nr = json_object_get(c, "no_rope_layers");
    if (!json_is_array(nr) || json_array_size(nr) != (size_t)m->hp.n_layers)
        return mt_seterr(err, MT_EFORMAT, "config.json: \"no_rope_layers\" must list %d layers", m->hp.n_layers);
    m->hp.rot_dims = m->hp.head_dim;
    m->hp.rope_traditional = 1;
    m->rope_scaling = NULL;   /* mlx-lm's nn.RoPE takes no scaling */
    m->hp.attn_bias = m->hp.o_bias = 0;
    m->hp.qk_norm = qkn ? MT_QKNORM_HEAD : MT_QKNORM_NONE;
    m->bind_layer = llama4_text_layer;
    m->head_name = "output";
    MT_TRY(mt_decoder_bind(m, err));
    for (int i = 0; i < m->hp.n_layers; i++) {   /* an entry is 1 where the layer uses RoPE */
        json_t *e = json_array_get(nr, (size_t)i);
        if (!json_is_integer(e) && !json_is_boolean(e))
            return mt_seterr(err, MT_EFORMAT, "config.json: \"no_rope_layers\"[%d] must be 0 or 1", i);
        m->layers[i].use_rope = json_is_integer(e) ? json_integer_value(e) != 0 : json_is_true(e);
    }
    return MT_OK;
}

/* dbrx's layer: transformer.blocks.N.norm_attn_norm.{norm_1, norm_2, attn.Wqkv, attn.out_proj} and
 * ffn.router.layer + one module per expert, ffn.experts.E.{w1 (gate), v1 (up), w2 (down)}. */
static int dbrx_layer(mt_model *m, int i, int *bound, mt_err *err) {
    mt_layer *L = &m->layers[i];
    const mt_decoder_hp *hp = &m->hp;
    size_t H = (size_t)hp->hidden, hd = (size_t)hp->head_dim, qd = (size_t)hp->n_heads * hd;
    size_t kvd = (size_t)hp->n_kv_heads * hd, I = (size_t)hp->moe_inter, E = (size_t)hp->n_experts;
    char p[200];
    snprintf(p, sizeof p, "transformer.blocks.%d.norm_attn_norm.attn.Wqkv", i);
    MT_TRY(mt_linear_bind(&L->qkv, m->st, m->cfg, p, qd + 2 * kvd, H, -1, err));
    snprintf(p, sizeof p, "transformer.blocks.%d.norm_attn_norm.attn.out_proj", i);
    MT_TRY(mt_linear_bind(&L->o, m->st, m->cfg, p, H, qd, -1, err));
    snprintf(p, sizeof p, "transformer.blocks.%d.norm_attn_norm.norm_1", i);
    MT_TRY(mt_dec_bind_norm(m, p, H, &L->n1, err));
    snprintf(p, sizeof p, "transformer.blocks.%d.norm_attn_norm.norm_2", i);
    MT_TRY(mt_dec_bind_norm(m, p, H, &L->n2, err));
    snprintf(p, sizeof p, "transformer.blocks.%d.ffn.router.layer", i);
    MT_TRY(mt_linear_bind(&L->router, m->st, m->cfg, p, E, H, -1, err));
    L->exp_gate = calloc(E * 3, sizeof(mt_linear));
    if (!L->exp_gate) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->exp_up = L->exp_gate + E;
    L->exp_down = L->exp_up + E;
    L->moe = 1;
    for (size_t e = 0; e < E; e++) {
        snprintf(p, sizeof p, "transformer.blocks.%d.ffn.experts.%zu.w1", i, e);
        MT_TRY(mt_linear_bind(&L->exp_gate[e], m->st, m->cfg, p, I, H, -1, err));
        snprintf(p, sizeof p, "transformer.blocks.%d.ffn.experts.%zu.v1", i, e);
        MT_TRY(mt_linear_bind(&L->exp_up[e], m->st, m->cfg, p, I, H, -1, err));
        snprintf(p, sizeof p, "transformer.blocks.%d.ffn.experts.%zu.w2", i, e);
        MT_TRY(mt_linear_bind(&L->exp_down[e], m->st, m->cfg, p, H, I, -1, err));
    }
    *bound = MT_BOUND_ATTN | MT_BOUND_MLP | MT_BOUND_NORMS;
    return MT_OK;
}

/* dbrx names its hyper-parameters its own way (d_model, n_layers, attn_config, ffn_config): they
 * are checked under their names, then written into the config under the names the shared
 * reader takes (num_hidden_layers, ...) before it runs. */
static int dbrx_init(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    json_t *ac = json_object_get(c, "attn_config"), *fc = json_object_get(c, "ffn_config");
    if (!json_is_object(ac) || !json_is_object(fc))
        return mt_seterr(err, MT_EFORMAT, "config.json: dbrx needs the objects \"attn_config\" and \"ffn_config\"");
    int d = 0, nl = 0, nh = 0, kvh = 0, ffn = 0, ne = 0, k = 0;
    double theta = 0, clip = 0;
    MT_TRY(mt_cfg_count(c, "d_model", 0, &d, 1, err));
    MT_TRY(mt_cfg_count(c, "n_layers", 0, &nl, 1, err));
    MT_TRY(mt_cfg_count(c, "n_heads", 0, &nh, 1, err));
    MT_TRY(mt_cfg_count(ac, "kv_n_heads", 0, &kvh, 1, err));
    MT_TRY(mt_cfg_real(ac, "rope_theta", 0, &theta, 1, MT_CFG_POS, err));
    MT_TRY(mt_cfg_real(ac, "clip_qkv", 0, &clip, 1, MT_CFG_POS, err));
    MT_TRY(mt_cfg_count(fc, "ffn_hidden_size", 0, &ffn, 1, err));
    MT_TRY(mt_cfg_count(fc, "moe_num_experts", 0, &ne, 1, err));
    MT_TRY(mt_cfg_count(fc, "moe_top_k", 0, &k, 1, err));
    if (k > ne || k > 64) return mt_seterr(err, MT_EFORMAT, "config.json: moe_top_k %d does not fit %d experts", k, ne);
    if (d % nh) return mt_seterr(err, MT_EFORMAT, "config.json: d_model %d is not a multiple of n_heads %d", d, nh);
    json_object_set_new(c, "num_hidden_layers", json_integer(nl));
    json_object_set_new(c, "hidden_size", json_integer(d));
    json_object_set_new(c, "num_attention_heads", json_integer(nh));
    json_object_set_new(c, "num_key_value_heads", json_integer(kvh));
    json_object_set_new(c, "intermediate_size", json_integer(ffn));
    json_object_set_new(c, "rope_theta", json_real(theta));
    json_object_del(c, "head_dim");
    MT_TRY(mt_decoder_read_hp(m, err));
    m->rope_scaling = NULL;
    m->hp.head_dim = m->hp.rot_dims = d / nh;
    m->hp.norm_type = MT_NORM_LAYER;
    m->hp.norm_nobias = 1;
    m->hp.norm_eps = 1e-5f;   /* nn.LayerNorm's default */
    m->hp.fused_qkv = 1;
    m->hp.clip_qkv = (float)clip;
    m->hp.attn_bias = m->hp.o_bias = 0;
    m->hp.tie_embeddings = 0;
    m->hp.rope_traditional = 0;
    m->hp.n_experts = ne;
    m->hp.top_k = k;
    m->hp.moe_inter = ffn;
    m->hp.moe_softmax_first = 1;
    m->hp.moe_norm_topk = 1;   /* scores / their L1 norm */
    m->bind_layer = dbrx_layer;
    m->embed_name = "transformer.wte";
    m->final_norm_name = "transformer.norm_f";
    m->moe_prefix = "ffn";
    m->moe_router = "router.layer";   /* (the observer's name for the router) */
    m->no_mlx = "its q/k/v clipping and bias-free LayerNorms";
    return mt_decoder_bind(m, err);
}

const mt_family mt_family_mixtral = {"mixtral", mixtral_init, "mixture of experts: top-k of router logits, softmax over them"};
const mt_family mt_family_qwen3_moe = {"qwen3_moe", qwen3_moe_init, "mixture of experts: softmax, top-k, renormalized; dense layers by list"};
/* the router's options (moe_fwd.c) */
const mt_family mt_family_qwen2_moe = {"qwen2_moe", qwen2_moe_init, "mixture of experts: softmax, top-k; shared expert with a sigmoid gate"};
const mt_family mt_family_olmoe = {"olmoe", olmoe_init, "mixture of experts: softmax, top-k, optional renorm; q/k norms over the projection"};
const mt_family mt_family_granitemoe = {"granitemoe", granitemoe_init, "mixture of experts: top-k of logits, softmax; granite's multipliers"};
const mt_family mt_family_phimoe = {"phimoe", phimoe_init, "mixture of experts: sparsemixer routing; LayerNorms, biases, longrope"};
const mt_family mt_family_ernie4_5_moe = {"ernie4_5_moe", ernie4_5_moe_init, "mixture of experts: softmax or sigmoid, renormalized; shared experts; dense layers by range"};
const mt_family mt_family_bailing_moe = {"bailing_moe", bailing_moe_init, "mixture of experts: sigmoid/softmax, selection bias, expert groups, routed scale; shared experts"};
const mt_family mt_family_hunyuan = {"hunyuan", hunyuan_init, "mixture of experts: softmax, top-k, shared MLP; q/k norms after RoPE, alpha-scaled base, cross-layer attention"};
const mt_family mt_family_hunyuan_v1_dense = {"hunyuan_v1_dense", hunyuan_v1_dense_init, "q/k norms after RoPE, alpha-scaled RoPE base"};
const mt_family mt_family_minimax = {"minimax", minimax_init, "mixture of experts: sigmoid, selection bias, renormalized; q/k norms, partial rotary"};
const mt_family mt_family_llama4_text = {"llama4_text", llama4_text_init, "RoPE left out per no_rope_layers, weightless q/k norms (dense)"};
const mt_family mt_family_dbrx = {"dbrx", dbrx_init, "mixture of experts (one module per expert): softmax, top-k, renormalized; clipped fused qkv"};
