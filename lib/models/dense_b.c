/* dense_b.c - GPT-style decoders that are small deltas from llama:
 *   gpt_neox    parallel attention + MLP (two norms), fused qkv grouped per head, partial rotary,
 *               LayerNorm with bias, biases everywhere, tanh-GELU MLP
 *   stablelm    LayerNorm with bias, partial rotary, optional q/k/v bias, optional parallel residual
 *               (one shared norm), optional q/k LayerNorms with weights of their own per head
 *   gpt2        learned absolute positions (no RoPE), fused qkv with bias, tanh-GELU MLP, tied head
 *   gpt_bigcode gpt2 with multi-query attention (one kv head), exact GELU, optional biases
 *   gptj        parallel attention + MLP (one shared norm), traditional partial RoPE, head with bias
 *   nemotron    LayerNorm with weight 1 + w and bias, relu^2 plain MLP (up, down), partial rotary
 *   seed_oss    llama with q/k/v biases and a separate output-projection bias switch
 *   apertus     up, xIELU (per-layer learned scalars), down as an mt_ffn; q/k RMSNorm per head
 *   bitnet      BitNet b1.58: packed ternary projections (tensor/bitlinear.c), RMSNorm on the attention
 *               output and the MLP hidden rows, relu^2 gated MLP
 *   nanochat    parameterless RMSNorms (also of the embeddings and of q, k per head), RoPE with
 *               negated frequencies, relu^2 plain MLP, logits soft-capped at 15
 * Their checkpoints name tensors their own way ("model.h.0.attn.c_attn"): each family gives
 * the shared binder a rename table (mt_safetensors_set_renames) instead of binding itself.
 * Their configs use GPT-2 key names (n_embd, n_head, ...): aliased to the decoder's keys
 * after being checked under their own names.
 * ref: mlx_lm/models/gpt_neox.py, stablelm.py, gpt2.py, gpt_bigcode.py, gptj.py, nemotron.py,
 *      seed_oss.py, apertus.py, activations.py,
 *      bitnet.py, bitlinear_layers.py, nanochat.py.  (olmo: dense_a.c) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/decoder_int.h"
#include "tensor/bitlinear.h"

void mt_dec_add_positions(const mt_model *m, const size_t *rpos, size_t T, float *x, float *tmp) {
    size_t H = (size_t)m->hp.hidden;
    for (size_t t = 0; t < T; t++) {
        mt_linear_row(&m->pos_embed, rpos[t], tmp);
        for (size_t i = 0; i < H; i++) x[t * H + i] += tmp[i];
    }
}

/* config key `to` := the count under `from` (checked there; def when absent, required when def is
 * 0), whatever `to` held: mlx-lm reads only `from` (a transformers-5 config may carry both, e.g.
 * olmo's d_model beside a default hidden_size) */
static int alias_count(json_t *c, const char *from, const char *to, int def, mt_err *err) {
    int v = 0;
    MT_TRY(mt_cfg_count(c, from, def, &v, def == 0, err));
    if (json_object_set_new(c, to, json_integer(v))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    return MT_OK;
}

/* the norm epsilon under `key` (>= 0) */
static int norm_eps(mt_model *m, const char *key, double def, int required, mt_err *err) {
    double eps = def;
    MT_TRY(mt_cfg_real(mt_config_json(m->cfg), key, def, &eps, required, MT_CFG_NONNEG, err));
    m->hp.norm_eps = (float)eps;
    return MT_OK;
}

/* rotary dimensions: head_dim * pct, even and positive */
static int rot_pct(mt_model *m, const char *key, double def, int required, mt_err *err) {
    double pct = def;
    MT_TRY(mt_cfg_real(mt_config_json(m->cfg), key, def, &pct, required, MT_CFG_POS, err));
    int d = (int)(m->hp.head_dim * pct);
    if (pct > 1 || d < 2 || d % 2)
        return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" %g gives %d rotary dimensions of head_dim %d (must be "
                         "even, 2 or more, at most head_dim)", key, pct, d, m->hp.head_dim);
    m->hp.rot_dims = d;
    return MT_OK;
}

static void no_rope(mt_model *m) {
    for (int i = 0; i < m->hp.n_layers; i++) m->layers[i].use_rope = 0;
}

/* n_positions learned positions; the context is that long */
static int learned_positions(mt_model *m, mt_err *err) {
    MT_TRY(mt_cfg_count(mt_config_json(m->cfg), "n_positions", 0, &m->hp.n_positions, 1, err));
    return MT_OK;
}

static void positions_ctx(mt_model *m) {
    m->ctx_len = (size_t)m->hp.n_positions;
    snprintf(m->ctx_why, sizeof m->ctx_why, "n_positions, the learned positions");
}

static const char *const neox_names[] = {
    "model.layers", "model.h", "self_attn.qkv_proj", "attention.query_key_value", "self_attn.o_proj", "attention.dense",
    "mlp.c_fc", "mlp.dense_h_to_4h", "mlp.c_proj", "mlp.dense_4h_to_h", "model.embed_tokens", "model.embed_in",
    "model.norm", "model.final_layer_norm", "lm_head", "model.embed_out", NULL};

static int gpt_neox_init(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int hidden = 0, par = 1;
    MT_TRY(mt_cfg_count(c, "hidden_size", 0, &hidden, 1, err));
    /* mlx-lm: the MLP is 4 x hidden whatever intermediate_size says, and every head has its own k/v */
    if (json_object_set_new(c, "intermediate_size", json_integer(4 * (json_int_t)hidden)))
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    MT_TRY(alias_count(c, "num_attention_heads", "num_key_value_heads", 0, err));   /* mlx-lm: one k/v per head */
    MT_TRY(mt_decoder_read_hp(m, err));
    if (m->hp.hidden % m->hp.n_heads)
        return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size %d is not a multiple of num_attention_heads %d",
                         m->hp.hidden, m->hp.n_heads);
    m->hp.head_dim = m->hp.hidden / m->hp.n_heads;
    double base = 10000;
    MT_TRY(mt_cfg_real(c, "rotary_emb_base", 10000, &base, 1, MT_CFG_POS, err));
    m->hp.rope_theta = (float)base;
    m->rope_scaling = NULL;   /* mlx-lm's gpt_neox: plain RoPE */
    MT_TRY(rot_pct(m, "rotary_pct", 1, 1, err));
    MT_TRY(norm_eps(m, "layer_norm_eps", 1e-5, 1, err));
    MT_TRY(mt_cfg_bool(c, "use_parallel_residual", 1, &par, err));
    if (par) m->hp.block = MT_BLOCK_PARALLEL2;
    m->hp.norm_type = MT_NORM_LAYER;
    m->hp.fused_qkv = m->hp.qkv_grouped = 1;   /* [q k v] per head: groups of one */
    m->hp.mlp = MT_MLP_PLAIN;
    m->hp.act = MT_ACT_GELU_TANH;
    m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = 1;
    m->hp.tie_embeddings = 0;
    m->no_mlx = "gpt_neox's parallel blocks are not in the mlx numerics";
    mt_safetensors_set_renames(m->st, neox_names);
    return mt_decoder_bind(m, err);
}

/* stablelm qk_layernorm: q_layernorm.norms.<h>.weight per query head, k_layernorm per kv head
 * (LayerNorms without bias), stacked into q_norm / k_norm */
static int stablelm_heads(mt_model *m, int layer, const char *which, int heads, mt_norm *out, mt_err *err) {
    size_t hd = (size_t)m->hp.head_dim;
    out->w = malloc((size_t)heads * hd * sizeof *out->w);
    if (!out->w) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (int h = 0; h < heads; h++) {
        char p[256];
        snprintf(p, sizeof p, "model.layers.%d.self_attn.%s.norms.%d.weight", layer, which, h);
        MT_TRY(mt_safetensors_read_f32(m->st, p, out->w + (size_t)h * hd, hd, 0, err));
    }
    return MT_OK;
}

static int stablelm_bind_layer(mt_model *m, int layer, int *bound, mt_err *err) {
    mt_layer *L = &m->layers[layer];
    *bound = 0;   /* the rest as llama names it */
    MT_TRY(stablelm_heads(m, layer, "q_layernorm", m->hp.n_heads, &L->q_norm, err));
    return stablelm_heads(m, layer, "k_layernorm", m->hp.n_kv_heads, &L->k_norm, err);
}

static int stablelm_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    if (m->hp.hidden % m->hp.n_heads)
        return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size %d is not a multiple of num_attention_heads %d",
                         m->hp.hidden, m->hp.n_heads);
    m->hp.head_dim = m->hp.hidden / m->hp.n_heads;
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    m->rope_scaling = NULL;   /* mlx-lm's stablelm: plain RoPE */
    MT_TRY(rot_pct(m, "partial_rotary_factor", 1, 1, err));
    MT_TRY(norm_eps(m, "layer_norm_eps", 1e-5, 1, err));
    int qkv_bias = 0, par = 0, qkln = 0;
    MT_TRY(mt_cfg_bool(c, "use_qkv_bias", 0, &qkv_bias, err));
    if (!json_is_boolean(json_object_get(c, "use_qkv_bias")))
        return mt_seterr(err, MT_EFORMAT, "config.json: missing \"use_qkv_bias\"");
    MT_TRY(mt_cfg_bool(c, "use_parallel_residual", 0, &par, err));
    MT_TRY(mt_cfg_bool(c, "qk_layernorm", 0, &qkln, err));
    if (qkln) {
        m->hp.qk_norm = MT_QKNORM_HEAD_EACH;
        m->bind_layer = stablelm_bind_layer;
    }
    if (par) m->hp.block = MT_BLOCK_PARALLEL;
    m->hp.norm_type = MT_NORM_LAYER;
    m->hp.attn_bias = qkv_bias;
    m->hp.o_bias = m->hp.mlp_bias = 0;
    m->hp.tie_embeddings = 0;
    m->no_mlx = "stablelm's LayerNorm blocks are not in the mlx numerics";
    return mt_decoder_bind(m, err);
}

/* gpt2 and gpt_bigcode: "n_*" keys, ln_1 / ln_2, attn.c_attn / c_proj, mlp.c_fc / c_proj */
#define GPT2_LAYER_NAMES "input_layernorm", "ln_1", "post_attention_layernorm", "ln_2", \
    "self_attn.qkv_proj", "attn.c_attn", "self_attn.o_proj", "attn.c_proj"
static const char *const gpt2_names[] = {
    "model.layers", "model.h", GPT2_LAYER_NAMES, "model.embed_tokens", "model.wte", "model.embed_positions", "model.wpe",
    "model.norm", "model.ln_f", NULL};
static const char *const bigcode_names[] = {
    "model.layers", "transformer.h", GPT2_LAYER_NAMES, "model.embed_tokens", "transformer.wte",
    "model.embed_positions", "transformer.wpe", "model.norm", "transformer.ln_f", NULL};

/* the decoder's keys from the GPT-2 ones; inter: the MLP width (0: n_inner, required) */
static int gpt2_keys(mt_model *m, int n_kv, int inter, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int hidden = 0;
    MT_TRY(mt_cfg_count(c, "n_embd", 0, &hidden, 1, err));
    MT_TRY(alias_count(c, "n_embd", "hidden_size", 0, err));
    MT_TRY(alias_count(c, "n_head", "num_attention_heads", 0, err));
    MT_TRY(alias_count(c, "n_layer", "num_hidden_layers", 0, err));
    if (n_kv) {
        if (json_object_set_new(c, "num_key_value_heads", json_integer(n_kv))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    } else {
        MT_TRY(alias_count(c, "n_head", "num_key_value_heads", 0, err));
    }
    if (inter) {
        if (json_object_set_new(c, "intermediate_size", json_integer(inter))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    } else {
        MT_TRY(alias_count(c, "n_inner", "intermediate_size", 0, err));
    }
    MT_TRY(mt_decoder_read_hp(m, err));
    if (m->hp.hidden % m->hp.n_heads)
        return mt_seterr(err, MT_EFORMAT, "config.json: n_embd %d is not a multiple of n_head %d", m->hp.hidden, m->hp.n_heads);
    m->hp.head_dim = m->hp.rot_dims = m->hp.hidden / m->hp.n_heads;
    m->rope_scaling = NULL;
    m->hp.norm_type = MT_NORM_LAYER;
    return norm_eps(m, "layer_norm_epsilon", 1e-5, 1, err);
}

static int gpt2_init(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int hidden = 0;
    MT_TRY(mt_cfg_count(c, "n_embd", 0, &hidden, 1, err));
    if (hidden > 100000000) return mt_seterr(err, MT_EFORMAT, "config.json: \"n_embd\" %d is too large", hidden);
    MT_TRY(gpt2_keys(m, 0, 4 * hidden, err));
    MT_TRY(learned_positions(m, err));
    m->hp.fused_qkv = 1;
    m->hp.mlp = MT_MLP_PLAIN;
    m->hp.act = MT_ACT_GELU_TANH;
    m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = 1;
    m->hp.tie_embeddings = 1;   /* mlx-lm: the head is always wte */
    m->no_mlx = "gpt2's learned positions are not in the mlx numerics";
    mt_safetensors_set_renames(m->st, gpt2_names);
    MT_TRY(mt_decoder_bind(m, err));
    no_rope(m);
    positions_ctx(m);
    return MT_OK;
}

static int gpt_bigcode_init(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int mq = 1, n_head = 0;
    MT_TRY(mt_cfg_bool(c, "multi_query", 1, &mq, err));
    MT_TRY(mt_cfg_count(c, "n_head", 0, &n_head, 1, err));
    MT_TRY(gpt2_keys(m, mq ? 1 : n_head, 0, err));
    MT_TRY(learned_positions(m, err));
    MT_TRY(mt_cfg_bool(c, "attention_bias", 1, &m->hp.attn_bias, err));
    MT_TRY(mt_cfg_bool(c, "mlp_bias", 1, &m->hp.mlp_bias, err));
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 1, &m->hp.tie_embeddings, err));
    m->hp.o_bias = m->hp.attn_bias;
    m->hp.fused_qkv = 1;
    m->hp.mlp = MT_MLP_PLAIN;
    m->hp.act = MT_ACT_GELU;
    m->no_mlx = "gpt_bigcode's learned positions are not in the mlx numerics";
    mt_safetensors_set_renames(m->st, bigcode_names);
    MT_TRY(mt_decoder_bind(m, err));
    no_rope(m);
    positions_ctx(m);
    return MT_OK;
}

static const char *const gptj_names[] = {
    "model.layers", "model.h", "input_layernorm", "ln_1", "self_attn.q_proj", "attn.q_proj", "self_attn.k_proj",
    "attn.k_proj", "self_attn.v_proj", "attn.v_proj", "self_attn.o_proj", "attn.out_proj", "mlp.c_fc", "mlp.fc_in",
    "mlp.c_proj", "mlp.fc_out", "model.embed_tokens", "model.wte", "model.norm", "model.ln_f", NULL};

static int gptj_init(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int hidden = 0, rot = 0;
    /* mlx-lm's ModelArgs defaults (GPT-J 6B) for absent keys */
    MT_TRY(mt_cfg_count(c, "n_embd", 4096, &hidden, 0, err));
    if (hidden > 100000000) return mt_seterr(err, MT_EFORMAT, "config.json: \"n_embd\" %d is too large", hidden);
    MT_TRY(alias_count(c, "n_embd", "hidden_size", 4096, err));
    MT_TRY(alias_count(c, "n_head", "num_attention_heads", 16, err));
    MT_TRY(alias_count(c, "n_head", "num_key_value_heads", 16, err));
    MT_TRY(alias_count(c, "n_layer", "num_hidden_layers", 28, err));
    MT_TRY(alias_count(c, "vocab_size", "vocab_size", 50400, err));
    if (json_object_set_new(c, "intermediate_size", json_integer(4 * (json_int_t)hidden)))
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    MT_TRY(mt_decoder_read_hp(m, err));
    if (m->hp.hidden % m->hp.n_heads)
        return mt_seterr(err, MT_EFORMAT, "config.json: n_embd %d is not a multiple of n_head %d", m->hp.hidden, m->hp.n_heads);
    m->hp.head_dim = m->hp.hidden / m->hp.n_heads;
    json_t *rd = json_object_get(c, "rotary_dim");
    rot = m->hp.head_dim;   /* mlx-lm: rotary_dim or head_dim (null or 0: head_dim; absent: 64) */
    if (!rd) rot = 64;
    else if (!json_is_null(rd) && !(json_is_number(rd) && json_number_value(rd) == 0))
        MT_TRY(mt_cfg_count(c, "rotary_dim", 64, &rot, 1, err));
    if (rot > m->hp.head_dim || rot % 2)
        return mt_seterr(err, MT_EFORMAT, "config.json: \"rotary_dim\" %d must be even and at most the head size %d", rot,
                         m->hp.head_dim);
    m->hp.rot_dims = rot;
    m->hp.rope_theta = 10000;   /* fixed in mlx-lm's gptj */
    m->hp.rope_traditional = 1;
    m->rope_scaling = NULL;
    MT_TRY(norm_eps(m, "layer_norm_epsilon", 1e-5, 0, err));
    int npos = 2048;
    MT_TRY(mt_cfg_count(c, "n_positions", 2048, &npos, 0, err));
    m->hp.block = MT_BLOCK_PARALLEL;
    m->hp.norm_type = MT_NORM_LAYER;
    m->hp.mlp = MT_MLP_PLAIN;
    m->hp.act = MT_ACT_GELU_TANH;
    m->hp.attn_bias = m->hp.o_bias = 0;
    m->hp.mlp_bias = 1;
    m->hp.tie_embeddings = 0;
    m->hp.lm_head_bias = 1;
    m->no_mlx = "gptj's parallel blocks are not in the mlx numerics";
    mt_safetensors_set_renames(m->st, gptj_names);
    return mt_decoder_bind(m, err);
}

/* nemotron: the plain MLP is up_proj, relu^2, down_proj */
static const char *const nemotron_names[] = {"mlp.c_fc", "mlp.up_proj", "mlp.c_proj", "mlp.down_proj", NULL};

static int nemotron_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    MT_TRY(norm_eps(m, "norm_eps", 1e-5, 1, err));
    MT_TRY(rot_pct(m, "partial_rotary_factor", 0.5, 0, err));
    json_t *rs = m->rope_scaling;
    if (rs && !json_is_null(rs)) {   /* mlx-lm's nemotron takes linear scaling only */
        json_t *t = json_is_object(rs) ? json_object_get(rs, "type") : NULL;
        if (!json_is_string(t) || strcmp(json_string_value(t), "linear"))
            return mt_seterr(err, MT_EUNSUPPORTED, "config.json: nemotron's rope_scaling must be {\"type\": \"linear\", ...}");
    }
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &m->hp.tie_embeddings, err));
    m->hp.norm_type = MT_NORM_LAYER_P1;
    m->hp.mlp = MT_MLP_PLAIN;
    m->hp.act = MT_ACT_RELU2;
    m->no_mlx = "nemotron's LayerNorm1P and relu^2 are not in the mlx numerics";
    mt_safetensors_set_renames(m->st, nemotron_names);
    return mt_decoder_bind(m, err);
}

/* seed_oss: llama with its own bias switches for q/k/v and o */
static int seed_oss_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    if (!json_is_number(json_object_get(c, "head_dim"))) return mt_seterr(err, MT_EFORMAT, "config.json: missing \"head_dim\"");
    MT_TRY(mt_cfg_bool(c, "attention_out_bias", 0, &m->hp.o_bias, err));
    return mt_decoder_bind(m, err);
}

/* apertus: up_proj, xIELU (learned per layer), down_proj; q/k RMSNorm per head */
typedef struct xielu_mlp {
    mt_linear up, down;
    float ap, an, beta, eps;   /* softplus(alpha_p), beta + softplus(alpha_n), beta, eps */
} xielu_mlp;

static float softplus(float x) { return x > 20 ? x : log1pf(expf(x)); }

static int xielu_forward(const mt_fwd *f, int layer, const float *in, float *out, mt_err *err) {
    const xielu_mlp *w = f->m->layers[layer].ffd;
    size_t T = f->T, I = w->up.out;
    float *h = malloc(T * I * sizeof *h);
    if (!h) return mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_dec_observe(f->m, layer, "mlp.up_proj", in, T, w->up.in);
    mt_dec_linear(f, &w->up, in, T, h);
    for (size_t i = 0; i < T * I; i++) {
        float x = h[i];
        h[i] = x > 0 ? w->ap * x * x + w->beta * x : (expm1f(x < w->eps ? x : w->eps) - x) * w->an + w->beta * x;
    }
    mt_dec_observe(f->m, layer, "mlp.down_proj", h, T, I);
    mt_dec_linear(f, &w->down, h, T, out);
    free(h);
    return MT_OK;
}

static const mt_ffn xielu_ffn = {"xielu", xielu_forward, free};

static int apertus_bind_layer(mt_model *m, int layer, int *bound, mt_err *err) {
    mt_layer *L = &m->layers[layer];
    xielu_mlp *w = calloc(1, sizeof *w);
    if (!w) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->ffn = &xielu_ffn;
    L->ffd = w;
    size_t H = (size_t)m->hp.hidden, I = (size_t)m->hp.inter;
    int mb = m->hp.mlp_bias ? 1 : -1;
    char p[256];
    snprintf(p, sizeof p, "model.layers.%d.mlp.up_proj", layer);
    MT_TRY(mt_linear_bind(&w->up, m->st, m->cfg, p, I, H, mb, err));
    snprintf(p, sizeof p, "model.layers.%d.mlp.down_proj", layer);
    MT_TRY(mt_linear_bind(&w->down, m->st, m->cfg, p, H, I, mb, err));
    static const char *const nm[4] = {"alpha_p", "alpha_n", "beta", "eps"};
    float v[4];
    for (int k = 0; k < 4; k++) {
        snprintf(p, sizeof p, "model.layers.%d.mlp.act_fn.%s", layer, nm[k]);
        MT_TRY(mt_safetensors_read_f32(m->st, p, &v[k], 1, 0, err));
        if (!isfinite(v[k])) return mt_seterr(err, MT_EFORMAT, "tensor '%s' is not finite", p);
    }
    w->ap = softplus(v[0]);
    w->beta = v[2];
    w->an = v[2] + softplus(v[1]);
    w->eps = v[3];
    *bound = MT_BOUND_MLP;
    return MT_OK;
}

static const char *const apertus_names[] = {"input_layernorm", "attention_layernorm", "post_attention_layernorm",
                                            "feedforward_layernorm", NULL};

static int apertus_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    if (m->hp.hidden % m->hp.n_heads)
        return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size %d is not a multiple of num_attention_heads %d",
                         m->hp.hidden, m->hp.n_heads);
    m->hp.head_dim = m->hp.rot_dims = m->hp.hidden / m->hp.n_heads;
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    static const char *const need[] = {"mlp_bias", "attention_bias", "tie_word_embeddings", "rms_norm_eps",
                                       "max_position_embeddings"};
    for (size_t k = 0; k < sizeof need / sizeof *need; k++)   /* mlx-lm's ModelArgs has no defaults for them */
        if (!json_object_get(c, need[k])) return mt_seterr(err, MT_EFORMAT, "config.json: missing \"%s\"", need[k]);
    m->hp.attn_bias = m->hp.o_bias = 0;   /* whatever attention_bias says */
    m->hp.qk_norm = MT_QKNORM_HEAD;
    m->bind_layer = apertus_bind_layer;
    m->no_mlx = "apertus's xIELU is not in the mlx numerics";
    mt_safetensors_set_renames(m->st, apertus_names);
    return mt_decoder_bind(m, err);
}

/* bitnet: every projection of the blocks a packed ternary BitLinear (tensor/bitlinear.h), an
 * RMSNorm on the attention output before o_proj and on relu^2(gate) * up before down_proj */
static int bitnet_bind_layer(mt_model *m, int layer, int *bound, mt_err *err) {
    mt_layer *L = &m->layers[layer];
    const mt_decoder_hp *hp = &m->hp;
    size_t H = (size_t)hp->hidden, I = (size_t)hp->inter, hd = (size_t)hp->head_dim;
    size_t qd = (size_t)hp->n_heads * hd, kvd = (size_t)hp->n_kv_heads * hd;
    int ab = hp->attn_bias ? 1 : -1, mb = hp->mlp_bias ? 1 : -1;
    char p[256];
    struct { mt_linear *l; const char *sub; size_t out, in; int bias; } lin[] = {
        {&L->q, "self_attn.q_proj", qd, H, ab}, {&L->k, "self_attn.k_proj", kvd, H, ab},
        {&L->v, "self_attn.v_proj", kvd, H, ab}, {&L->o, "self_attn.o_proj", H, qd, ab},
        {&L->gate, "mlp.gate_proj", I, H, mb}, {&L->up, "mlp.up_proj", I, H, mb}, {&L->down, "mlp.down_proj", H, I, mb}};
    for (size_t k = 0; k < sizeof lin / sizeof *lin; k++) {
        snprintf(p, sizeof p, "model.layers.%d.%s", layer, lin[k].sub);
        MT_TRY(mt_bitlinear_bind(lin[k].l, m->st, p, lin[k].out, lin[k].in, lin[k].bias, 0, err));
    }
    snprintf(p, sizeof p, "model.layers.%d.self_attn.attn_sub_norm", layer);
    MT_TRY(mt_dec_bind_norm(m, p, H, &L->o_in_norm, err));
    snprintf(p, sizeof p, "model.layers.%d.mlp.ffn_sub_norm", layer);
    MT_TRY(mt_dec_bind_norm(m, p, I, &L->down_in_norm, err));
    *bound = MT_BOUND_ATTN | MT_BOUND_MLP;
    return MT_OK;
}

static int bitnet_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    /* attn_sub_norm is over hidden_size features: the heads must fill it exactly */
    if ((size_t)m->hp.n_heads * (size_t)m->hp.head_dim != (size_t)m->hp.hidden)
        return mt_seterr(err, MT_EFORMAT, "config.json: %d heads of %d do not make hidden_size %d (bitnet's attn_sub_norm)",
                         m->hp.n_heads, m->hp.head_dim, m->hp.hidden);
    const mt_tensor_view *lm = mt_safetensors_get(m->st, "lm_head.weight");
    if (lm && lm->dtype == MT_U8)
        return mt_seterr(err, MT_EUNSUPPORTED, "bitnet: a ternary lm_head is not supported");
    m->hp.act = MT_ACT_RELU2;
    m->bind_layer = bitnet_bind_layer;
    m->no_mlx = "bitnet's ternary layers are not in the mlx numerics";
    return mt_decoder_bind(m, err);
}

/* nanochat: parameterless RMSNorm (eps 1e-5) of the embeddings, before each branch, of q and k
 * per head and at the end; RoPE turning the other way (mlx-lm passes negated frequencies);
 * relu^2 plain MLP; logits soft-capped at 15 */
static const char *const nanochat_names[] = {
    "model.layers", "transformer.h", "self_attn.q_proj", "attn.c_q", "self_attn.k_proj", "attn.c_k",
    "self_attn.v_proj", "attn.c_v", "self_attn.o_proj", "attn.c_proj", "model.embed_tokens", "transformer.wte", NULL};

static int nanochat_init(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    /* mlx-lm's ModelArgs defaults for absent keys */
    MT_TRY(alias_count(c, "hidden_size", "hidden_size", 1280, err));
    MT_TRY(alias_count(c, "num_hidden_layers", "num_hidden_layers", 20, err));
    MT_TRY(alias_count(c, "num_attention_heads", "num_attention_heads", 10, err));
    MT_TRY(alias_count(c, "num_key_value_heads", "num_key_value_heads", 10, err));
    MT_TRY(alias_count(c, "vocab_size", "vocab_size", 65536, err));
    MT_TRY(alias_count(c, "intermediate_size", "intermediate_size", 5120, err));
    MT_TRY(mt_decoder_read_hp(m, err));
    if (m->hp.hidden % m->hp.n_heads)
        return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size %d is not a multiple of num_attention_heads %d",
                         m->hp.hidden, m->hp.n_heads);
    m->hp.head_dim = m->hp.rot_dims = m->hp.hidden / m->hp.n_heads;
    m->rope_scaling = NULL;
    m->hp.norm_eps = 1e-5f;
    m->hp.norm_noaffine = 1;
    m->hp.qk_norm = MT_QKNORM_HEAD;   /* after RoPE in mlx-lm: the same, a rotation keeps the norm */
    m->hp.mlp = MT_MLP_PLAIN;
    m->hp.act = MT_ACT_RELU2;
    m->hp.final_softcap = 15.0f;
    m->hp.tie_embeddings = 0;
    m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = 0;
    m->no_mlx = "nanochat's parameterless norms are not in the mlx numerics";
    mt_safetensors_set_renames(m->st, nanochat_names);
    MT_TRY(mt_decoder_bind(m, err));
    MT_TRY(mt_dec_bind_norm(m, "model.embed_norm", (size_t)m->hp.hidden, &m->embed_norm, err));
    /* angle = position / freqs with freqs = -exp(i * ln(base) / half) in float32 */
    int half = m->hp.rot_dims / 2;
    float step = (float)(log(m->hp.rope_theta) / half);
    for (int i = 0; i < half; i++) m->inv_freq[i] = 1.0f / -expf((float)i * step);
    return MT_OK;
}

const mt_family mt_family_gpt_neox = {"gpt_neox", gpt_neox_init, "parallel attention+MLP, fused qkv per head, partial rotary, LayerNorm"};
const mt_family mt_family_stablelm = {"stablelm", stablelm_init, "LayerNorm with bias, partial rotary, optional parallel residual"};
const mt_family mt_family_gpt2 = {"gpt2", gpt2_init, "learned absolute positions, fused qkv with bias, tanh GELU"};
const mt_family mt_family_gpt_bigcode = {"gpt_bigcode", gpt_bigcode_init, "learned positions, multi-query attention, exact GELU"};
const mt_family mt_family_gptj = {"gptj", gptj_init, "parallel attention+MLP with one norm, traditional partial RoPE, head bias"};
const mt_family mt_family_nemotron = {"nemotron", nemotron_init, "LayerNorm with 1 + w, relu^2 plain MLP, partial rotary"};
const mt_family mt_family_seed_oss = {"seed_oss", seed_oss_init, "separate q/k/v and output projection biases"};
const mt_family mt_family_apertus = {"apertus", apertus_init, "xIELU MLP with learned per-layer parameters, q/k norms"};
const mt_family mt_family_bitnet = {"bitnet", bitnet_init, "packed ternary (1.58-bit) projections, sub-norms, relu^2 gated MLP"};
const mt_family mt_family_nanochat = {"nanochat", nanochat_init, "parameterless RMSNorms (embeddings, q/k), reversed RoPE, relu^2, logit soft-cap"};
