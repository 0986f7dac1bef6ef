/* moe.c - mixture-of-experts families on the shared decoder:
 *   mixtral    every layer sparse ("block_sparse_moe"): top-k of the router logits, softmax over them
 *   qwen3_moe  qwen3 attention (per-head q/k norms); layers sparse per decoder_sparse_step and
 *              mlp_only_layers ("mlp"): softmax over all experts, top-k, optional renormalization
 * Experts are stored stacked, as mlx-lm's SwitchGLU saves them (switch_mlp.{gate,up,down}_proj).
 * ref: mlx_lm/models/mixtral.py, qwen3_moe.py, switch_layers.py. */
#include <jansson.h>
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

const mt_family mt_family_mixtral = {"mixtral", mixtral_init, "mixture of experts: top-k of router logits, softmax over them"};
const mt_family mt_family_qwen3_moe = {"qwen3_moe", qwen3_moe_init, "mixture of experts: softmax, top-k, renormalized; dense layers by list"};
