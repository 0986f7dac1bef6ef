/* others.c - small llama variants that differ in a few switches:
 *   phi3       fused qkv_proj and gate_up_proj, partial rotary, longrope (su) scaling
 *   granite    embedding / residual / attention multipliers, logits divided by logits_scaling
 *   olmo2      norms after each branch, q/k RMSNorm over the whole projection
 *   starcoder2 LayerNorm with bias, biases everywhere, plain GELU MLP (c_fc, c_proj)
 *   smollm3    llama (sliding layers too) with RoPE left out of every no_rope_layer_interval-th layer
 * ref: mlx_lm/models/phi3.py, granite.py, olmo2.py, starcoder2.py, smollm3.py. */
#include <math.h>
#include <string.h>
#include "models/model.h"

static int phi3_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    double prf = 1.0;
    MT_TRY(mt_cfg_real(c, "partial_rotary_factor", 1.0, &prf, 0, MT_CFG_POS, err));
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
    m->hp.head_dim = m->hp.hidden / m->hp.n_heads;   /* phi3 ignores a head_dim key */
    m->hp.rot_dims = (int)(m->hp.head_dim * prf);
    m->hp.fused_qkv = 1;
    m->hp.mlp = MT_MLP_GATED_FUSED;
    m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = 0;
    json_t *rs = m->rope_scaling;
    if (json_is_object(rs)) {   /* mlx-lm keeps only longrope, su and linear */
        json_t *t = json_object_get(rs, "type");
        const char *ty = json_is_string(t) ? json_string_value(t) : "";
        if (strcmp(ty, "longrope") && strcmp(ty, "su") && strcmp(ty, "linear")) m->rope_scaling = NULL;
    }
    return mt_decoder_bind(m, err);
}

int mt_granite_scales(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    double em = 1, rm = 1, am = 1, ls = 1;
    MT_TRY(mt_cfg_real(c, "embedding_multiplier", 1, &em, 1, MT_CFG_FINITE, err));
    MT_TRY(mt_cfg_real(c, "residual_multiplier", 1, &rm, 1, MT_CFG_FINITE, err));
    MT_TRY(mt_cfg_real(c, "attention_multiplier", 1, &am, 1, MT_CFG_FINITE, err));
    MT_TRY(mt_cfg_real(c, "logits_scaling", 1, &ls, 1, MT_CFG_FINITE, err));
    if (ls == 0) return mt_seterr(err, MT_EFORMAT, "config.json: \"logits_scaling\" must not be 0");
    m->hp.embed_scale = (float)em;
    m->hp.residual_scale = (float)rm;
    m->hp.attn_scale = (float)am;
    m->hp.logits_div = (float)ls;
    return MT_OK;
}

static int granite_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));   /* mlx-lm: rope_theta has no default */
    MT_TRY(mt_granite_scales(m, err));
    return mt_decoder_bind(m, err);
}

static int olmo2_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    m->hp.block = MT_BLOCK_POST;
    m->hp.qk_norm = MT_QKNORM_FULL;
    return mt_decoder_bind(m, err);
}

static int starcoder2_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    double eps = 1e-5;
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_TOP, 100000, err));   /* mlx-lm's starcoder2 default base */
    MT_TRY(mt_cfg_real(mt_config_json(m->cfg), "norm_epsilon", 1e-5, &eps, 0, MT_CFG_NONNEG, err));
    m->hp.norm_eps = (float)eps;
    m->hp.norm_type = MT_NORM_LAYER;
    m->hp.mlp = MT_MLP_PLAIN;
    m->hp.act = MT_ACT_GELU;
    m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = 1;
    return mt_decoder_bind(m, err);
}

static int smollm3_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    int interval = 4;
    MT_TRY(mt_cfg_int(c, "no_rope_layer_interval", 4, &interval, 0, err));
    json_t *nl = json_object_get(c, "no_rope_layers");
    if (nl && !json_is_null(nl) && (!json_is_array(nl) || json_array_size(nl) != (size_t)m->hp.n_layers))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"no_rope_layers\" must list %d layers", m->hp.n_layers);
    if (!json_is_array(nl) && interval < 1) return mt_seterr(err, MT_EFORMAT, "config.json: no_rope_layer_interval must be positive");
    MT_TRY(mt_decoder_bind(m, err));
    MT_TRY(mt_decoder_layer_types(m, err));   /* mlx-lm runs smollm3 on its llama model */
    for (int i = 0; i < m->hp.n_layers; i++) {
        if (json_is_array(nl)) {
            json_t *e = json_array_get(nl, (size_t)i);
            if (!json_is_integer(e) && !json_is_boolean(e))
                return mt_seterr(err, MT_EFORMAT, "config.json: \"no_rope_layers\"[%d] must be 0 or 1", i);
            m->layers[i].use_rope = json_is_integer(e) ? json_integer_value(e) != 0 : json_is_true(e);
        } else {
            m->layers[i].use_rope = (i + 1) % interval != 0;
        }
    }
    return MT_OK;
}

const mt_family mt_family_phi3 = {"phi3", phi3_init, "fused qkv and gate_up, partial rotary, longrope"};
const mt_family mt_family_granite = {"granite", granite_init, "embedding/residual/attention multipliers, logits scaling"};
const mt_family mt_family_olmo2 = {"olmo2", olmo2_init, "norms after each branch, q/k norms over the whole projection"};
const mt_family mt_family_starcoder2 = {"starcoder2", starcoder2_init, "LayerNorm with bias, biases everywhere, plain GELU MLP"};
const mt_family mt_family_smollm3 = {"smollm3", smollm3_init, "RoPE left out of every n-th layer"};
