/* qwen3_next.c - hybrid decoders of gated DeltaNet layers and gated full attention:
 *   qwen3_next   every full_attention_interval-th layer full attention, the others gated
 *                DeltaNet (in_proj_qkvz / in_proj_ba); MLP dense, or sparse per
 *                decoder_sparse_step and mlp_only_layers
 *   qwen3_5      the same layers with split projections (in_proj_qkv, _z, _b, _a), the text
 *                config nested under "text_config" (or the top level), tensors under
 *                "language_model.", RoPE from rope_parameters; every MLP sparse when
 *                num_experts > 0
 *   qwen3_5_moe  qwen3_5 with experts (the same model in mlx-lm)
 * Full attention: per-head q/k RMSNorm, partial rotary, and an output gate (q_proj gives each
 * head [q | gate]; the output is multiplied by sigmoid(gate) before o_proj).
 * Sparse layers: softmax, top-k, optional renormalization (the built-in MoE), plus a shared
 * expert (mlp.shared_expert.{gate,up,down}_proj) scaled by sigmoid(mlp.shared_expert_gate(x)),
 * which the built-in MoE does not run yet: such configs are refused at load.
 * ref: mlx_lm/models/qwen3_next.py, qwen3_5.py, qwen3_5_moe.py. */
#include <jansson.h>
#include <string.h>
#include "models/deltanet.h"
#include "models/model.h"

/* The family's settings, read from the config when bind_layer runs (no global state). */
static int linear_layer(const mt_model *m, int layer) {
    int every = 4;
    json_t *v = json_object_get(mt_config_json(m->cfg), "full_attention_interval");
    if (json_is_integer(v)) every = (int)json_integer_value(v);
    return (layer + 1) % every != 0;
}

static int dn_hp(const mt_model *m, mt_deltanet_hp *hp, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    memset(hp, 0, sizeof *hp);
    MT_TRY(mt_cfg_count(c, "linear_num_key_heads", 0, &hp->nk, 1, err));
    MT_TRY(mt_cfg_count(c, "linear_num_value_heads", 0, &hp->nv, 1, err));
    MT_TRY(mt_cfg_count(c, "linear_key_head_dim", 0, &hp->dk, 1, err));
    MT_TRY(mt_cfg_count(c, "linear_value_head_dim", 0, &hp->dv, 1, err));
    MT_TRY(mt_cfg_count(c, "linear_conv_kernel_dim", 0, &hp->conv_k, 1, err));
    if (hp->nv % hp->nk)
        return mt_seterr(err, MT_EFORMAT, "config.json: linear_num_value_heads %d is not a multiple of "
                         "linear_num_key_heads %d", hp->nv, hp->nk);
    hp->split = !strncmp(m->model_type, "qwen3_5", 7);
    hp->eps = m->hp.norm_eps;
    return MT_OK;
}

static int bind_layer(mt_model *m, int layer, int *bound, mt_err *err) {
    *bound = 0;
    if (!linear_layer(m, layer)) return MT_OK;
    mt_deltanet_hp hp;
    MT_TRY(dn_hp(m, &hp, err));
    MT_TRY(mt_deltanet_bind(m, layer, &hp, err));
    *bound = MT_BOUND_ATTN;
    return MT_OK;
}

/* qwen3_next: sparse unless in mlp_only_layers, every decoder_sparse_step-th layer */
static int next_moe_layer(const mt_model *m, int layer) {
    json_t *c = mt_config_json(m->cfg);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(c, "mlp_only_layers"), i, v) if (json_integer_value(v) == layer) return 0;
    long long step = json_integer_value(json_object_get(c, "decoder_sparse_step"));
    return m->hp.n_experts > 0 && step > 0 && (layer + 1) % step == 0;
}

static int every_layer(const mt_model *m, int layer) { (void)layer; return m->hp.n_experts > 0; }

/* The experts' settings (num_experts > 0 read already), shared by both families. */
static int read_moe(mt_model *m, int (*moe_layer)(const mt_model *, int), mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int shared = 0;
    MT_TRY(mt_cfg_count(c, "num_experts_per_tok", 0, &m->hp.top_k, 1, err));
    MT_TRY(mt_cfg_count(c, "moe_intermediate_size", 0, &m->hp.moe_inter, 1, err));
    MT_TRY(mt_cfg_count(c, "shared_expert_intermediate_size", 0, &shared, 1, err));
    if (m->hp.top_k > m->hp.n_experts)
        return mt_seterr(err, MT_EFORMAT, "config.json: num_experts_per_tok %d exceeds num_experts %d", m->hp.top_k,
                         m->hp.n_experts);
    if (m->hp.top_k > 64) return mt_seterr(err, MT_EUNSUPPORTED, "config.json: more than 64 experts per token");
    m->hp.moe_softmax_first = 1;
    m->hp.moe_shared_inter = shared;   /* mlp.shared_expert, scaled by sigmoid(mlp.shared_expert_gate) */
    m->hp.moe_shared_gate = 1;
    m->moe_layer = moe_layer;
    m->moe_prefix = "mlp";
    return MT_OK;
}

/* What both families share once the hyper-parameters are read: the attention's switches,
 * the DeltaNet layers, the value width's scratch. */
static int bind_hybrid(mt_model *m, double prf, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int every = 4;
    MT_TRY(mt_cfg_count(c, "full_attention_interval", 4, &every, 0, err));
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
    mt_deltanet_hp dh;
    MT_TRY(dn_hp(m, &dh, err));
    /* mlx-lm places the layers by full_attention_interval alone (default 4); a transformers-5
     * layer_types that says otherwise is refused (mlx-lm fails on the weights) */
    json_t *lt = json_object_get(c, "layer_types");
    for (int i = 0; json_is_array(lt) && i < m->hp.n_layers && (size_t)i < json_array_size(lt); i++) {
        const char *t = json_string_value(json_array_get(lt, (size_t)i));
        int lin = t && !strcmp(t, "linear_attention");
        if (t && lin != linear_layer(m, i))
            return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\"[%d] is \"%s\", but full_attention_interval "
                             "%d (mlx-lm reads only that; default 4) makes layer %d %s attention", i, t, every, i,
                             lin ? "full" : "linear");
    }
    m->hp.rot_dims = (int)(m->hp.head_dim * prf);   /* mt_decoder_bind refuses an odd or empty one */
    m->hp.qk_norm = MT_QKNORM_HEAD;
    m->hp.attn_out_gate = 1;
    m->hp.o_bias = m->hp.attn_bias;
    m->no_mlx = "gated DeltaNet layers and the gated attention are not in the mlx numerics";
    m->bind_layer = bind_layer;
    MT_TRY(mt_decoder_bind(m, err));
    size_t vd = (size_t)dh.nv * (size_t)dh.dv;
    if (vd > m->max_in) m->max_in = vd;
    return MT_OK;
}

static int qwen3_next_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));   /* mlx-lm: rope_theta has no default */
    json_t *c = mt_config_json(m->cfg);
    double prf = 1;
    MT_TRY(mt_cfg_real(c, "partial_rotary_factor", 1, &prf, 1, MT_CFG_POS, err));
    if (prf > 1) return mt_seterr(err, MT_EFORMAT, "config.json: \"partial_rotary_factor\" must be at most 1 (got %g)", prf);
    MT_TRY(mt_cfg_int(c, "num_experts", 0, &m->hp.n_experts, 1, err));
    if (m->hp.n_experts > 0) {
        int step = 1;
        MT_TRY(mt_cfg_count(c, "decoder_sparse_step", 1, &step, 1, err));
        MT_TRY(mt_cfg_bool(c, "norm_topk_prob", 0, &m->hp.moe_norm_topk, err));
        json_t *only = json_object_get(c, "mlp_only_layers");
        size_t i;
        json_t *v;
        if (only && !json_is_array(only)) return mt_seterr(err, MT_EFORMAT, "config.json: mlp_only_layers must be a list");
        json_array_foreach(only, i, v) if (!json_is_integer(v))
            return mt_seterr(err, MT_EFORMAT, "config.json: mlp_only_layers must hold layer numbers");
        MT_TRY(read_moe(m, next_moe_layer, err));
    }
    return bind_hybrid(m, prf, err);
}

/* mlx-lm's TextModelArgs defaults for the keys a qwen3_5 text config may leave out */
static const char qwen3_5_defaults[] =
    "{\"hidden_size\": 4096, \"intermediate_size\": 14336, \"num_hidden_layers\": 32, \"num_attention_heads\": 32,"
    " \"rms_norm_eps\": 1e-6, \"vocab_size\": 151936, \"num_key_value_heads\": 8, \"max_position_embeddings\": 131072,"
    " \"linear_num_value_heads\": 64, \"linear_num_key_heads\": 16, \"linear_key_head_dim\": 192,"
    " \"linear_value_head_dim\": 128, \"linear_conv_kernel_dim\": 4, \"tie_word_embeddings\": false,"
    " \"attention_bias\": false, \"full_attention_interval\": 4, \"num_experts\": 0,"
    " \"rope_parameters\": {\"type\": \"default\", \"rope_theta\": 100000, \"partial_rotary_factor\": 0.25}}";

static int qwen3_5_init(mt_model *m, mt_err *err) {
    json_t *top = mt_config_json(m->cfg);
    mt_text_spec ts = {.cfg_key = json_is_object(json_object_get(top, "text_config")) ? "text_config" : NULL,
                       .strip = "", .add = "language_model.", .defaults = qwen3_5_defaults};
    MT_TRY(mt_model_use_text(m, &ts, err));
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    json_t *rp = json_object_get(c, "rope_parameters");
    double prf = 0.25, theta = 100000;
    if (rp && !json_is_null(rp) && !json_is_object(rp))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"rope_parameters\" must be an object");
    if (json_is_object(rp) && json_object_size(rp) > 0) {   /* mlx-lm: it overrides the top-level keys */
        MT_TRY(mt_cfg_real(rp, "partial_rotary_factor", 0.25, &prf, 0, MT_CFG_POS, err));
        MT_TRY(mt_cfg_real(rp, "rope_theta", 100000, &theta, 0, MT_CFG_POS, err));
        json_object_del(rp, "mrope_section");   /* M-RoPE sections: only images use them (not mlx-lm's text model) */
        m->rope_scaling = rp;
        m->rope_scaling_key = "rope_parameters";
    } else {
        MT_TRY(mt_cfg_real(c, "partial_rotary_factor", 0.25, &prf, 0, MT_CFG_POS, err));
        MT_TRY(mt_cfg_real(c, "rope_theta", 100000, &theta, 0, MT_CFG_POS, err));
    }
    if (prf > 1) return mt_seterr(err, MT_EFORMAT, "config.json: \"partial_rotary_factor\" must be at most 1 (got %g)", prf);
    m->hp.rope_theta = (float)theta;
    MT_TRY(mt_cfg_int(c, "num_experts", 0, &m->hp.n_experts, 0, err));
    if (m->hp.n_experts > 0) {
        MT_TRY(mt_cfg_bool(c, "norm_topk_prob", 1, &m->hp.moe_norm_topk, err));
        MT_TRY(read_moe(m, every_layer, err));
    }
    return bind_hybrid(m, prf, err);
}

const mt_family mt_family_qwen3_next = {"qwen3_next", qwen3_next_init,
                                        "gated DeltaNet + gated full attention (in_proj_qkvz), dense or MoE"};
const mt_family mt_family_qwen3_5 = {"qwen3_5", qwen3_5_init,
                                     "gated DeltaNet (split projections) + gated attention; text_config nesting"};
const mt_family mt_family_qwen3_5_moe = {"qwen3_5_moe", qwen3_5_init,
                                         "qwen3_5 with experts and a sigmoid-gated shared expert"};
