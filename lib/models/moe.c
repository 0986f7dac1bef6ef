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
 * Experts are stored stacked, as mlx-lm's SwitchGLU saves them (switch_mlp.{gate,up,down}_proj).
 * ref: mlx_lm/models/mixtral.py, qwen3_moe.py, qwen2_moe.py, olmoe.py, granitemoe.py, phimoe.py,
 * ernie4_5_moe.py, switch_layers.py. */
#include <jansson.h>
#include <string.h>
#include "models/model.h"

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
    json_t *c = mt_config_json(m->cfg);
    double em = 1, rm = 1, am = 1, ls = 1;
    MT_TRY(mt_cfg_real(c, "embedding_multiplier", 1, &em, 1, MT_CFG_FINITE, err));
    MT_TRY(mt_cfg_real(c, "residual_multiplier", 1, &rm, 1, MT_CFG_FINITE, err));
    MT_TRY(mt_cfg_real(c, "attention_multiplier", 1, &am, 1, MT_CFG_FINITE, err));
    MT_TRY(mt_cfg_real(c, "logits_scaling", 1, &ls, 1, MT_CFG_FINITE, err));
    if (ls == 0) return mt_seterr(err, MT_EFORMAT, "config.json: \"logits_scaling\" must not be 0");
    MT_TRY(expert_counts(m, "num_local_experts", "num_experts_per_tok", 0, 1, err));
    m->hp.embed_scale = (float)em;
    m->hp.residual_scale = (float)rm;
    m->hp.attn_scale = (float)am;
    m->hp.logits_div = (float)ls;
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

const mt_family mt_family_mixtral = {"mixtral", mixtral_init, "mixture of experts: top-k of router logits, softmax over them"};
const mt_family mt_family_qwen3_moe = {"qwen3_moe", qwen3_moe_init, "mixture of experts: softmax, top-k, renormalized; dense layers by list"};
/* the router's options (moe_fwd.c) */
const mt_family mt_family_qwen2_moe = {"qwen2_moe", qwen2_moe_init, "mixture of experts: softmax, top-k; shared expert with a sigmoid gate"};
const mt_family mt_family_olmoe = {"olmoe", olmoe_init, "mixture of experts: softmax, top-k, optional renorm; q/k norms over the projection"};
const mt_family mt_family_granitemoe = {"granitemoe", granitemoe_init, "mixture of experts: top-k of logits, softmax; granite's multipliers"};
const mt_family mt_family_phimoe = {"phimoe", phimoe_init, "mixture of experts: sparsemixer routing; LayerNorms, biases, longrope"};
const mt_family mt_family_ernie4_5_moe = {"ernie4_5_moe", ernie4_5_moe_init, "mixture of experts: softmax or sigmoid, renormalized; shared experts; dense layers by range"};
