/* dense_a.c - dense llama variants made of the shared decoder's switches (group A):
 *   phi        parallel attention + MLP on one LayerNorm, partial rotary, GELU-tanh fc1/fc2 MLP,
 *              biases everywhere (the head too)
 *   cohere     parallel block on a bias-free LayerNorm, traditional RoPE, tied head times
 *              logit_scale, optional per-head q/k LayerNorm with weights of their own per head
 *   cohere2    cohere's block; sliding layers with RoPE, every n-th layer global without RoPE
 *   internlm2  llama under other tensor names, q/k/v fused with rows grouped per kv head
 *   internlm3  llama with q/k/v/o and MLP biases of their own switches
 *   glm4       sandwich norms, fused gate_up MLP, partial traditional RoPE
 *   exaone4    norms after each branch, per-head q/k norms, "LLLG" pattern: local layers slide
 *              with RoPE, global ones have no RoPE
 *   ernie4_5   llama with traditional RoPE and one bias switch
 *   olmo3      olmo2 with layer_types sliding layers (their RoPE without scaling)
 *   minicpm    embeddings times scale_emb, branches times scale_depth / sqrt(layers), an untied
 *              head's input divided by hidden_size / dim_model_base
 *   exaone     llama under GPT-style names (transformer.h.N, ln_1, attn.attention.out_proj,
 *              c_fc_0/c_fc_1/c_proj), the layer count in num_layers
 *   helium     llama with traditional RoPE, q/k/v and MLP biases, head_dim from hidden_size
 *   glm        llama with traditional RoPE, fused gate_up, q/k/v biases
 *   olmo       OLMo 1 (ai2 layout): fused att_proj [q|k|v], fused ff_proj [up|gate], LayerNorms
 *              without weights, its own config keys (d_model, n_layers, embedding_size, ...)
 * ref: mlx_lm/models/phi.py, cohere.py, cohere2.py, internlm2.py, internlm3.py, glm4.py,
 *      exaone4.py, ernie4_5.py, olmo3.py, minicpm.py, exaone.py, helium.py, glm.py, olmo.py. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "models/model.h"

/* mlx-lm builds these attentions with nn.RoPE: a rope_scaling in the config is not read */
static void plain_rope(mt_model *m) { m->rope_scaling = NULL; }

/* mlx-lm's internlm2/internlm3 ModelArgs: a rope_scaling needs "factor" and the type key
 * (`tkey`), linear or dynamic */
static int linear_or_dynamic(mt_model *m, const char *tkey, mt_err *err) {
    json_t *rs = m->rope_scaling;
    if (!rs || json_is_null(rs) || (json_is_object(rs) && json_object_size(rs) == 0)) { m->rope_scaling = NULL; return MT_OK; }
    json_t *t = json_is_object(rs) ? json_object_get(rs, tkey) : NULL;
    if (!json_is_string(t) || !json_object_get(rs, "factor"))
        return mt_seterr(err, MT_EFORMAT, "config.json: rope_scaling must hold \"factor\" and \"%s\"", tkey);
    if (strcmp(json_string_value(t), "linear") && strcmp(json_string_value(t), "dynamic"))
        return mt_seterr(err, MT_EFORMAT, "config.json: rope_scaling %s \"%s\" (mlx-lm takes only linear or dynamic "
                         "for %s)", tkey, json_string_value(t), m->model_type);
    return MT_OK;
}

/* head_dim = hidden_size / num_attention_heads (and every feature rotated), as these families'
 * attentions reshape their projections; the config's head_dim is not read */
static int head_dim_from_hidden(mt_model *m, mt_err *err) {
    if (m->hp.hidden % m->hp.n_heads)
        return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size %d is not a multiple of num_attention_heads %d",
                         m->hp.hidden, m->hp.n_heads);
    m->hp.head_dim = m->hp.rot_dims = m->hp.hidden / m->hp.n_heads;
    return MT_OK;
}

/* ---- phi ---- */

static const char *const phi_names[] = {"model.norm", "model.final_layernorm", "self_attn.o_proj", "self_attn.dense",
                                        "mlp.c_fc", "mlp.fc1", "mlp.c_proj", "mlp.fc2", NULL};

static int phi_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    double prf = 0.4, eps = 1e-5;
    MT_TRY(mt_cfg_real(c, "partial_rotary_factor", 0.4, &prf, 0, MT_CFG_POS, err));
    MT_TRY(mt_cfg_real(c, "layer_norm_eps", 1e-5, &eps, 0, MT_CFG_NONNEG, err));
    if (prf > 1) return mt_seterr(err, MT_EFORMAT, "config.json: \"partial_rotary_factor\" must be at most 1 (got %g)", prf);
    MT_TRY(head_dim_from_hidden(m, err));
    m->hp.rot_dims = (int)(prf * m->hp.head_dim);
    m->hp.norm_eps = (float)eps;
    m->hp.norm_type = MT_NORM_LAYER;
    m->hp.block = MT_BLOCK_PARALLEL;
    m->hp.mlp = MT_MLP_PLAIN;
    m->hp.act = MT_ACT_GELU_TANH;
    m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = m->hp.lm_head_bias = 1;
    m->hp.tie_embeddings = 0;
    m->hp.rope_traditional = 0;
    plain_rope(m);
    mt_safetensors_set_renames(m->st, phi_names);
    m->no_mlx = "parallel attention and MLP";
    return mt_decoder_bind(m, err);
}

/* ---- cohere, cohere2 ---- */

static int cohere_common(mt_model *m, double theta, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_TOP, theta, err));
    json_t *c = mt_config_json(m->cfg);
    double eps = 1e-5, ls = 0.0625;
    int nb = 0;
    MT_TRY(mt_cfg_real(c, "layer_norm_eps", 1e-5, &eps, 0, MT_CFG_NONNEG, err));
    MT_TRY(mt_cfg_real(c, "logit_scale", 0.0625, &ls, 0, MT_CFG_FINITE, err));
    MT_TRY(mt_cfg_bool(c, "layer_norm_bias", 0, &nb, err));
    MT_TRY(mt_cfg_bool(c, "attention_bias", 0, &m->hp.attn_bias, err));
    if (ls == 0) return mt_seterr(err, MT_EFORMAT, "config.json: \"logit_scale\" must not be 0");
    m->hp.norm_eps = (float)eps;
    m->hp.norm_type = MT_NORM_LAYER;
    m->hp.norm_nobias = !nb;
    m->hp.block = MT_BLOCK_PARALLEL;
    m->hp.o_bias = m->hp.attn_bias;
    m->hp.mlp_bias = 0;
    m->hp.rope_traditional = 1;
    m->hp.tie_embeddings = m->hp.tie_always = 1;   /* mlx-lm's cohere has no lm_head */
    m->hp.logits_div = (float)(1.0 / ls);
    plain_rope(m);
    m->no_mlx = "parallel attention and MLP";
    return MT_OK;
}

static int cohere_init(mt_model *m, mt_err *err) {
    MT_TRY(cohere_common(m, 8000000.0, err));
    int qk = 0;
    MT_TRY(mt_cfg_bool(mt_config_json(m->cfg), "use_qk_norm", 0, &qk, err));
    MT_TRY(head_dim_from_hidden(m, err));   /* cohere ignores a head_dim key */
    if (qk) m->hp.qk_norm = MT_QKNORM_HEAD_EACH;
    return mt_decoder_bind(m, err);
}

static int cohere2_init(mt_model *m, mt_err *err) {
    MT_TRY(cohere_common(m, 50000.0, err));
    json_t *c = mt_config_json(m->cfg);
    int window = 4096, pattern = 4;
    MT_TRY(mt_cfg_count(c, "head_dim", 128, &m->hp.head_dim, 0, err));
    MT_TRY(mt_cfg_count(c, "sliding_window", 4096, &window, 0, err));
    MT_TRY(mt_cfg_count(c, "sliding_window_pattern", 4, &pattern, 0, err));
    if (m->hp.head_dim * m->hp.n_heads != m->hp.hidden)
        return mt_seterr(err, MT_EFORMAT, "config.json: head_dim %d times num_attention_heads %d is not hidden_size %d",
                         m->hp.head_dim, m->hp.n_heads, m->hp.hidden);
    /* mlx-lm takes the global layers' mask from layer pattern - 1 */
    if (pattern > m->hp.n_layers)
        return mt_seterr(err, MT_EFORMAT, "config.json: sliding_window_pattern %d exceeds num_hidden_layers %d",
                         pattern, m->hp.n_layers);
    m->hp.rot_dims = m->hp.head_dim;
    m->hp.sliding_window = window;
    MT_TRY(mt_decoder_bind(m, err));
    for (int i = 0; i < m->hp.n_layers; i++)   /* global layers: no RoPE */
        m->layers[i].use_rope = m->layers[i].sliding = (i + 1) % pattern != 0;
    return MT_OK;
}

/* ---- internlm2, internlm3 ---- */

static const char *const internlm2_names[] = {
    "model.embed_tokens", "model.tok_embeddings", "lm_head", "output", "self_attn.qkv_proj", "attention.wqkv",
    "self_attn.o_proj", "attention.wo", "mlp.gate_proj", "feed_forward.w1", "mlp.up_proj", "feed_forward.w3",
    "mlp.down_proj", "feed_forward.w2", "input_layernorm", "attention_norm", "post_attention_layernorm", "ffn_norm", NULL};

static int internlm_common(mt_model *m, const char *tkey, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_cfg_bool(mt_config_json(m->cfg), "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
    MT_TRY(head_dim_from_hidden(m, err));   /* a head_dim key is not read */
    return linear_or_dynamic(m, tkey, err);
}

static int internlm2_init(mt_model *m, mt_err *err) {
    MT_TRY(internlm_common(m, "type", err));
    MT_TRY(mt_cfg_bool(mt_config_json(m->cfg), "bias", 1, &m->hp.attn_bias, err));
    m->hp.o_bias = m->hp.attn_bias;
    m->hp.mlp_bias = 0;
    m->hp.fused_qkv = m->hp.qkv_grouped = 1;
    mt_safetensors_set_renames(m->st, internlm2_names);
    m->no_mlx = "q/k/v rows grouped per kv head";
    return mt_decoder_bind(m, err);
}

static int internlm3_init(mt_model *m, mt_err *err) {
    MT_TRY(internlm_common(m, "rope_type", err));
    json_t *c = mt_config_json(m->cfg);
    MT_TRY(mt_cfg_bool(c, "qkv_bias", 0, &m->hp.attn_bias, err));
    MT_TRY(mt_cfg_bool(c, "bias", 0, &m->hp.mlp_bias, err));
    m->hp.o_bias = m->hp.attn_bias;   /* mlx-lm: o_proj takes qkv_bias too */
    /* biases the config does not announce (transformers 5 writes attention_bias / mlp_bias, which
     * mlx-lm does not read): mlx-lm refuses the folder's extra parameters, and so do we */
    static const char *const probe[2][2] = {{"model.layers.0.self_attn.q_proj.bias", "qkv_bias"},
                                            {"model.layers.0.mlp.gate_proj.bias", "bias"}};
    for (int i = 0; i < 2; i++)
        if (!(i ? m->hp.mlp_bias : m->hp.attn_bias) && mt_safetensors_get(m->st, probe[i][0]))
            return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" is not true, but the weights hold '%s' "
                             "(mlx-lm reads only \"%s\")", probe[i][1], probe[i][0], probe[i][1]);
    return mt_decoder_bind(m, err);
}

/* ---- glm4 ---- */

/* in this order: the second pair gives the name the first one renamed away */
static const char *const glm4_names[] = {"post_attention_layernorm", "post_self_attn_layernorm",
                                         "pre_feedforward_layernorm", "post_attention_layernorm",
                                         "post_feedforward_layernorm", "post_mlp_layernorm", NULL};

static int glm4_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    json_t *c = mt_config_json(m->cfg);
    double prf = 1;
    MT_TRY(mt_cfg_count(c, "head_dim", 0, &m->hp.head_dim, 1, err));
    MT_TRY(mt_cfg_real(c, "partial_rotary_factor", 1, &prf, 1, MT_CFG_POS, err));
    if (prf > 1) return mt_seterr(err, MT_EFORMAT, "config.json: \"partial_rotary_factor\" must be at most 1 (got %g)", prf);
    if (!json_is_boolean(json_object_get(c, "attention_bias")))
        return mt_seterr(err, MT_EFORMAT, "config.json: missing \"attention_bias\" (true or false)");
    MT_TRY(mt_cfg_bool(c, "rope_traditional", 1, &m->hp.rope_traditional, err));
    m->hp.rot_dims = (int)(m->hp.head_dim * prf);
    m->hp.o_bias = m->hp.mlp_bias = 0;
    m->hp.block = MT_BLOCK_SANDWICH;
    m->hp.mlp = MT_MLP_GATED_FUSED;
    m->hp.tie_embeddings = 0;   /* mlx-lm always has its own lm_head */
    plain_rope(m);
    mt_safetensors_set_renames(m->st, glm4_names);
    return mt_decoder_bind(m, err);
}

/* ---- exaone4 ---- */

static int exaone4_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    json_t *c = mt_config_json(m->cfg);
    MT_TRY(mt_cfg_count(c, "head_dim", 0, &m->hp.head_dim, 1, err));
    if (!json_is_boolean(json_object_get(c, "tie_word_embeddings")))
        return mt_seterr(err, MT_EFORMAT, "config.json: missing \"tie_word_embeddings\" (true or false)");
    json_t *pat = json_object_get(c, "sliding_window_pattern");
    const char *p = json_is_string(pat) ? json_string_value(pat) : NULL;
    if (pat && !json_is_null(pat) && (!p || !*p || strspn(p, "LG") != strlen(p) || !strchr(p, 'L') || !strchr(p, 'G')))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"sliding_window_pattern\" must be a string of L and G "
                         "holding both (e.g. \"LLLG\")");
    int window = 0;
    if (p) MT_TRY(mt_cfg_count(c, "sliding_window", 0, &window, 1, err));
    m->hp.rot_dims = m->hp.head_dim;
    m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = 0;
    m->hp.rope_traditional = 0;
    m->hp.block = MT_BLOCK_POST;
    m->hp.qk_norm = MT_QKNORM_HEAD;
    m->hp.sliding_window = window;
    MT_TRY(mt_decoder_bind(m, err));
    size_t n = p ? strlen(p) : 0;
    for (int i = 0; p && i < m->hp.n_layers; i++)   /* local: window and RoPE; global: neither */
        m->layers[i].use_rope = m->layers[i].sliding = p[(size_t)i % n] == 'L';
    return MT_OK;
}

/* ---- ernie4_5 ---- */

static int ernie4_5_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    json_t *c = mt_config_json(m->cfg);
    if (!json_is_boolean(json_object_get(c, "use_bias")))
        return mt_seterr(err, MT_EFORMAT, "config.json: missing \"use_bias\" (true or false)");
    if (!json_is_boolean(json_object_get(c, "tie_word_embeddings")))
        return mt_seterr(err, MT_EFORMAT, "config.json: missing \"tie_word_embeddings\" (true or false)");
    MT_TRY(mt_cfg_bool(c, "use_bias", 0, &m->hp.attn_bias, err));
    m->hp.o_bias = m->hp.mlp_bias = m->hp.attn_bias;
    m->hp.rope_traditional = 1;
    plain_rope(m);   /* initialize_rope without a scaling config */
    return mt_decoder_bind(m, err);
}

/* ---- olmo3 ---- */

static int olmo3_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    json_t *c = mt_config_json(m->cfg);
    int window = 0, nl = m->hp.n_layers;
    MT_TRY(mt_cfg_count(c, "sliding_window", 0, &window, 1, err));
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
    json_t *lt = json_object_get(c, "layer_types");
    if (lt && !json_is_null(lt) && (!json_is_array(lt) || json_array_size(lt) != (size_t)nl))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\" must list %d layers", nl);
    int *sl = malloc((size_t)nl * sizeof *sl), ns = 0;
    if (!sl) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (int i = 0; i < nl; i++) {
        json_t *t = json_is_array(lt) ? json_array_get(lt, (size_t)i) : NULL;
        const char *s = json_string_value(t);
        if (json_is_array(lt) && (!s || (strcmp(s, "sliding_attention") && strcmp(s, "full_attention")))) {
            free(sl);
            return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\"[%d] must be \"sliding_attention\" or "
                             "\"full_attention\"", i);
        }
        sl[i] = s ? !strcmp(s, "sliding_attention") : (i + 1) % 4 != 0;   /* mlx-lm's default: every 4th full */
        ns += sl[i];
    }
    if (ns == 0 || ns == nl) {
        free(sl);
        return mt_seterr(err, MT_EFORMAT, "config.json: olmo3 needs both sliding and full attention layers "
                         "(mlx-lm looks up one of each)");
    }
    m->hp.block = MT_BLOCK_POST;
    m->hp.qk_norm = MT_QKNORM_FULL;
    m->hp.o_bias = m->hp.attn_bias;
    m->hp.mlp_bias = 0;
    m->hp.sliding_window = window;
    m->rope_local_base = m->hp.rope_theta;
    int rc = mt_decoder_bind(m, err);
    int half = m->hp.rot_dims / 2;
    if (!rc && !(m->inv_freq_local = malloc((size_t)half * sizeof(float)))) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    float in_scale;
    if (!rc) rc = mt_rope_freqs(m->inv_freq_local, &in_scale, m->hp.rot_dims, m->hp.rope_theta, NULL, 0, 1, err);
    for (int i = 0; !rc && i < nl; i++) {   /* sliding layers: plain RoPE; full ones: the scaling */
        m->layers[i].sliding = sl[i];
        if (sl[i]) {
            m->layers[i].inv_freq = m->inv_freq_local;
            m->layers[i].rope_in_scale = 1.0f;
        }
    }
    free(sl);
    return rc;
}

/* ---- minicpm ---- */

static int minicpm_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_TOP, 1e6, err));
    json_t *c = mt_config_json(m->cfg);
    double se = 1, sd = 1, base = 1;
    MT_TRY(mt_cfg_real(c, "scale_emb", 1, &se, 1, MT_CFG_FINITE, err));
    MT_TRY(mt_cfg_real(c, "scale_depth", 1, &sd, 1, MT_CFG_FINITE, err));
    MT_TRY(mt_cfg_real(c, "dim_model_base", 1, &base, 1, MT_CFG_POS, err));
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
    MT_TRY(head_dim_from_hidden(m, err));
    m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = 0;
    m->hp.embed_scale = (float)se;
    m->hp.residual_scale = (float)(sd / sqrt((double)m->hp.n_layers));
    /* mlx-lm divides an untied head's input by hidden_size / dim_model_base (the tied head: none);
     * the head is linear and bias-free, so the logits are divided here */
    if (!m->hp.tie_embeddings) m->hp.logits_div = (float)(m->hp.hidden / base);
    m->no_mlx = "the head's input scaled (here: its logits)";
    return mt_decoder_bind(m, err);
}

/* ---- exaone, helium, glm ---- */

static const char *const exaone_names[] = {
    "model.embed_tokens", "transformer.wte", "model.norm", "transformer.ln_f", "model.layers", "transformer.h",
    "self_attn.q_proj", "attn.attention.q_proj", "self_attn.k_proj", "attn.attention.k_proj",
    "self_attn.v_proj", "attn.attention.v_proj", "self_attn.o_proj", "attn.attention.out_proj",
    "mlp.gate_proj", "mlp.c_fc_0", "mlp.up_proj", "mlp.c_fc_1", "mlp.down_proj", "mlp.c_proj",
    "input_layernorm", "ln_1", "post_attention_layernorm", "ln_2", NULL};

static int exaone_init(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int nl = 0;
    double eps = 1e-5;
    MT_TRY(mt_cfg_count(c, "num_layers", 0, &nl, 1, err));
    /* mlx-lm counts the blocks with num_layers (the decoder reads num_hidden_layers) */
    if (json_object_set_new(c, "num_hidden_layers", json_integer(nl))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    MT_TRY(mt_cfg_real(c, "layer_norm_epsilon", 1e-5, &eps, 1, MT_CFG_NONNEG, err));
    if (m->hp.head_dim * m->hp.n_heads != m->hp.hidden)
        return mt_seterr(err, MT_EFORMAT, "config.json: head_dim %d times num_attention_heads %d is not hidden_size %d",
                         m->hp.head_dim, m->hp.n_heads, m->hp.hidden);
    m->hp.norm_eps = (float)eps;
    m->hp.tie_always = 1;   /* tied: mlx-lm has no lm_head */
    mt_safetensors_set_renames(m->st, exaone_names);
    return mt_decoder_bind(m, err);
}

static int helium_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    json_t *c = mt_config_json(m->cfg);
    static const char *const need[] = {"attention_bias", "mlp_bias", "tie_word_embeddings"};
    for (size_t i = 0; i < sizeof need / sizeof *need; i++)
        if (!json_is_boolean(json_object_get(c, need[i])))
            return mt_seterr(err, MT_EFORMAT, "config.json: missing \"%s\" (true or false)", need[i]);
    MT_TRY(head_dim_from_hidden(m, err));   /* mlx-lm: whatever head_dim says */
    m->hp.o_bias = 0;
    m->hp.rope_traditional = 1;
    m->hp.tie_always = 1;   /* tied: the embedding, though mlx-lm's lm_head exists */
    plain_rope(m);
    return mt_decoder_bind(m, err);
}

static int glm_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    if (!json_object_get(c, "head_dim")) return mt_seterr(err, MT_EFORMAT, "config.json: missing \"head_dim\"");
    m->hp.o_bias = m->hp.mlp_bias = 0;
    m->hp.rope_traditional = 1;
    m->hp.mlp = MT_MLP_GATED_FUSED;
    m->hp.tie_always = 1;   /* tied: mlx-lm drops a stored lm_head */
    plain_rope(m);
    return mt_decoder_bind(m, err);
}

/* ---- olmo ---- */

static const char *const olmo_names[] = {
    "model.embed_tokens", "model.transformer.wte", "lm_head", "model.transformer.ff_out", "model.layers",
    "model.transformer.blocks", "self_attn.qkv_proj", "att_proj", "self_attn.o_proj", "attn_out",
    "mlp.gate_up_proj", "ff_proj", "mlp.down_proj", "ff_out", NULL};   /* (its norms have no tensors) */

/* config key `from` (mlx-lm's olmo name) under the decoder's name `to` */
static int olmo_key(json_t *c, const char *from, const char *to, int def, int *out, mt_err *err) {
    MT_TRY(mt_cfg_count(c, from, def, out, def == 0, err));
    if (json_object_set_new(c, to, json_integer(*out))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    return MT_OK;
}

static int olmo_init(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int d = 0, nl = 0, nh = 0, ratio = 4, mh = 0, es = 0;
    MT_TRY(olmo_key(c, "d_model", "hidden_size", 0, &d, err));
    MT_TRY(olmo_key(c, "n_layers", "num_hidden_layers", 0, &nl, err));
    MT_TRY(olmo_key(c, "n_heads", "num_attention_heads", 0, &nh, err));
    MT_TRY(mt_cfg_count(c, "mlp_ratio", 4, &ratio, 0, err));
    MT_TRY(mt_cfg_count(c, "mlp_hidden_size", ratio * d, &mh, 0, err));
    MT_TRY(mt_cfg_count(c, "embedding_size", 0, &es, 1, err));
    if (mh % 2) return mt_seterr(err, MT_EFORMAT, "config.json: \"mlp_hidden_size\" %d must be even", mh);
    if (d % nh) return mt_seterr(err, MT_EFORMAT, "config.json: d_model %d is not a multiple of n_heads %d", d, nh);
    /* the decoder's names for what it reads (no kv-head count: every head has its own k, v) */
    json_object_del(c, "num_key_value_heads");
    json_object_del(c, "head_dim");
    if (json_object_set_new(c, "intermediate_size", json_integer(mh / 2))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_cfg_bool(c, "weight_tying", 0, &m->hp.tie_embeddings, err));
    m->hp.vocab = es;   /* the embedding's rows and the logits: embedding_size (vocab_size is the tokenizer's) */
    m->hp.norm_eps = 1e-5f;   /* nn.LayerNorm's default */
    m->hp.norm_type = MT_NORM_LAYER;
    m->hp.norm_nobias = m->hp.norm_noaffine = 1;
    m->hp.fused_qkv = 1;
    m->hp.mlp = MT_MLP_GATED_FUSED;
    m->hp.mlp_up_first = 1;
    m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = 0;
    m->hp.tie_always = 1;
    plain_rope(m);
    mt_safetensors_set_renames(m->st, olmo_names);
    m->no_mlx = "ff_proj rows [up | gate]";
    return mt_decoder_bind(m, err);
}

const mt_family mt_family_phi = {"phi", phi_init, "parallel attention+MLP on one LayerNorm, partial rotary, biased head"};
const mt_family mt_family_cohere = {"cohere", cohere_init, "parallel block, bias-free LayerNorm, per-head q/k LayerNorm weights, logit scale"};
const mt_family mt_family_cohere2 = {"cohere2", cohere2_init, "cohere block; sliding RoPE layers, global layers without RoPE"};
const mt_family mt_family_internlm2 = {"internlm2", internlm2_init, "fused wqkv grouped per kv head, InternLM tensor names"};
const mt_family mt_family_internlm3 = {"internlm3", internlm3_init, "llama with q/k/v/o and MLP bias switches"};
const mt_family mt_family_glm4 = {"glm4", glm4_init, "sandwich norms, fused gate_up, partial traditional RoPE"};
const mt_family mt_family_exaone4 = {"exaone4", exaone4_init, "post-branch norms, q/k norms, LLLG pattern (global layers without RoPE)"};
const mt_family mt_family_ernie4_5 = {"ernie4_5", ernie4_5_init, "llama with traditional RoPE and one bias switch"};
const mt_family mt_family_olmo3 = {"olmo3", olmo3_init, "olmo2 with sliding layers (unscaled RoPE) and full layers"};
const mt_family mt_family_minicpm = {"minicpm", minicpm_init, "embedding scale, depth-scaled residuals, head input scaled"};
const mt_family mt_family_exaone = {"exaone", exaone_init, "llama under GPT-style tensor names (transformer.h.N), num_layers"};
const mt_family mt_family_helium = {"helium", helium_init, "llama with traditional RoPE, q/k/v and MLP biases"};
const mt_family mt_family_glm = {"glm", glm_init, "llama with traditional RoPE, fused gate_up, q/k/v biases"};
const mt_family mt_family_olmo = {"olmo", olmo_init, "OLMo 1: fused att_proj, ff_proj [up|gate], weightless LayerNorms"};
