/* gguf_import.c - GGUF -> mlx-community folder (see gguf_import.h): the
 * architecture table (GGUF names -> HF names, what convert_hf_to_gguf.py did
 * that must be undone), config.json from the metadata, the tensor plan and
 * the writer. */
#include "convert/gguf_import.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "convert/convert.h"
#include "core/file.h"
#include "io/st_write.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

/* ---------------- architectures ---------------- */

/* GGUF tensor name inside a block (blk.N.<gg>) -> HF module path inside a layer. */
typedef struct lname {
    const char *gg, *hf;
} lname;

static const lname llama_layer[] = {
    {"attn_norm", "input_layernorm"},         {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},           {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},           {"attn_output", "self_attn.o_proj"},
    {"attn_q_norm", "self_attn.q_norm"},      {"attn_k_norm", "self_attn.k_norm"},
    {"ffn_gate", "mlp.gate_proj"},            {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},            {NULL, NULL}};

/* gemma3: four norms per block, per-head q/k norms */
static const lname gemma3_layer[] = {
    {"attn_norm", "input_layernorm"},          {"post_attention_norm", "post_attention_layernorm"},
    {"ffn_norm", "pre_feedforward_layernorm"}, {"post_ffw_norm", "post_feedforward_layernorm"},
    {"attn_q", "self_attn.q_proj"},            {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},            {"attn_output", "self_attn.o_proj"},
    {"attn_q_norm", "self_attn.q_norm"},       {"attn_k_norm", "self_attn.k_norm"},
    {"ffn_gate", "mlp.gate_proj"},             {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},             {NULL, NULL}};

/* phi3: fused q/k/v and gate/up projections, kept fused (mlx-lm's phi3 loads them so) */
static const lname phi3_layer[] = {
    {"attn_norm", "input_layernorm"},         {"ffn_norm", "post_attention_layernorm"},
    {"attn_qkv", "self_attn.qkv_proj"},       {"attn_output", "self_attn.o_proj"},
    {"ffn_up", "mlp.gate_up_proj"},           {"ffn_down", "mlp.down_proj"},
    {NULL, NULL}};

/* starcoder2: LayerNorms with biases, a plain GELU MLP */
static const lname starcoder2_layer[] = {
    {"attn_norm", "input_layernorm"},         {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},           {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},           {"attn_output", "self_attn.o_proj"},
    {"ffn_up", "mlp.c_fc"},                   {"ffn_down", "mlp.c_proj"},
    {NULL, NULL}};

/* olmo2: norms after each branch, q/k norms over the whole projection */
static const lname olmo2_layer[] = {
    {"post_attention_norm", "post_attention_layernorm"}, {"post_ffw_norm", "post_feedforward_layernorm"},
    {"attn_q", "self_attn.q_proj"},           {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},           {"attn_output", "self_attn.o_proj"},
    {"attn_q_norm", "self_attn.q_norm"},      {"attn_k_norm", "self_attn.k_norm"},
    {"ffn_gate", "mlp.gate_proj"},            {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},            {NULL, NULL}};

/* Mixture-of-experts layers: the router and the experts stacked [experts, out, in], which is
 * mlx-lm's SwitchGLU layout (switch_mlp) as it is; qwen3moe's dense layers (mlp_only_layers)
 * keep ffn_gate / ffn_up / ffn_down. */
static const lname qwen3moe_layer[] = {
    {"attn_norm", "input_layernorm"},         {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},           {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},           {"attn_output", "self_attn.o_proj"},
    {"attn_q_norm", "self_attn.q_norm"},      {"attn_k_norm", "self_attn.k_norm"},
    {"ffn_gate_inp", "mlp.gate"},             {"ffn_gate_exps", "mlp.switch_mlp.gate_proj"},
    {"ffn_up_exps", "mlp.switch_mlp.up_proj"}, {"ffn_down_exps", "mlp.switch_mlp.down_proj"},
    {"ffn_gate", "mlp.gate_proj"},            {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},            {NULL, NULL}};

/* mixtral: llama.cpp's llama architecture with experts */
static const lname mixtral_layer[] = {
    {"attn_norm", "input_layernorm"},         {"ffn_norm", "post_attention_layernorm"},
    {"attn_q", "self_attn.q_proj"},           {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},           {"attn_output", "self_attn.o_proj"},
    {"ffn_gate_inp", "block_sparse_moe.gate"},
    {"ffn_gate_exps", "block_sparse_moe.switch_mlp.gate_proj"},
    {"ffn_up_exps", "block_sparse_moe.switch_mlp.up_proj"},
    {"ffn_down_exps", "block_sparse_moe.switch_mlp.down_proj"},
    {NULL, NULL}};

/* arch.flags */
enum {
    F_BIAS_KEYS = 1,     /* config.json carries llama's attention_bias / mlp_bias */
    F_PARTIAL_ROPE = 2,  /* rope.dimension_count below head_dim: partial_rotary_factor */
    F_ROPE_FACTORS = 4,  /* rope_factors_long/short tensors: config.json's longrope rope_scaling */
    F_EXPERTS = 8,       /* the entry for files whose {arch}.expert_count is positive */
};

typedef struct arch arch;
typedef int (*config_fn)(const mt_gguf *g, const arch *a, json_t *c, mt_err *err);

struct arch {
    const char *gguf;         /* general.architecture */
    const char *model_type;   /* config.json model_type */
    const char *hf_class;     /* config.json architectures[0] */
    int permute_qk;           /* convert_hf_to_gguf permuted q/k rows (LlamaModel.permute) */
    float norm_shift;         /* convert_hf_to_gguf added this to every *norm.weight (Gemma's 1 + w) */
    const char *act;          /* config.json hidden activation */
    const char *end_of_turn;  /* a token llama.cpp stops at (end of generation) that the HF
                               * config lists among eos_token_id, or NULL */
    const lname *layer;
    config_fn extra;          /* family keys of config.json, or NULL */
    unsigned flags;           /* F_* */
};

static int gemma2_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err);
static int gemma3_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err);
static int phi3_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err);
static int qwen3moe_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err);
static int mixtral_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err);
static int starcoder2_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err);
static int granite_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err);
static int smollm3_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err);

static const arch arches[] = {
    {"llama", "llama", "LlamaForCausalLM", 1, 0.0f, "silu", NULL, llama_layer, NULL, F_BIAS_KEYS},
    {"llama", "mixtral", "MixtralForCausalLM", 1, 0.0f, "silu", NULL, mixtral_layer, mixtral_config, F_EXPERTS},
    {"qwen2", "qwen2", "Qwen2ForCausalLM", 0, 0.0f, "silu", NULL, llama_layer, NULL, 0},
    {"qwen3", "qwen3", "Qwen3ForCausalLM", 0, 0.0f, "silu", NULL, llama_layer, NULL, 0},
    {"gemma", "gemma", "GemmaForCausalLM", 0, 1.0f, "gelu_pytorch_tanh", "<end_of_turn>", llama_layer, NULL, 0},
    {"gemma2", "gemma2", "Gemma2ForCausalLM", 0, 1.0f, "gelu_pytorch_tanh", "<end_of_turn>", gemma3_layer,
     gemma2_config, 0},
    {"gemma3", "gemma3_text", "Gemma3ForCausalLM", 0, 1.0f, "gelu_pytorch_tanh", "<end_of_turn>", gemma3_layer,
     gemma3_config, 0},
    {"phi3", "phi3", "Phi3ForCausalLM", 0, 0.0f, "silu", "<|end|>", phi3_layer, phi3_config,
     F_PARTIAL_ROPE | F_ROPE_FACTORS},
    {"qwen3moe", "qwen3_moe", "Qwen3MoeForCausalLM", 0, 0.0f, "silu", NULL, qwen3moe_layer, qwen3moe_config, F_EXPERTS},
    {"starcoder2", "starcoder2", "Starcoder2ForCausalLM", 0, 0.0f, "gelu_pytorch_tanh", NULL, starcoder2_layer,
     starcoder2_config, 0},
    {"olmo2", "olmo2", "Olmo2ForCausalLM", 0, 0.0f, "silu", NULL, olmo2_layer, NULL, 0},
    {"granite", "granite", "GraniteForCausalLM", 1, 0.0f, "silu", NULL, llama_layer, granite_config, F_BIAS_KEYS},
    {"smollm3", "smollm3", "SmolLM3ForCausalLM", 1, 0.0f, "silu", NULL, llama_layer, smollm3_config, F_BIAS_KEYS},
};

/* HF name of a GGUF tensor name ("blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight");
 * 0 when the name is not one of the architecture's. */
static int hf_name(const arch *a, const char *gg, char *out, size_t n) {
    const char *dot = strrchr(gg, '.');
    if (!dot || (strcmp(dot, ".weight") && strcmp(dot, ".bias"))) return 0;
    size_t base = (size_t)(dot - gg);
    static const lname top[] = {{"token_embd", "model.embed_tokens"}, {"output_norm", "model.norm"}, {"output", "lm_head"}};
    for (size_t i = 0; i < sizeof top / sizeof *top; i++)
        if (strlen(top[i].gg) == base && !strncmp(gg, top[i].gg, base)) return snprintf(out, n, "%s%s", top[i].hf, dot), 1;
    unsigned layer;
    int off = 0;
    if (sscanf(gg, "blk.%u.%n", &layer, &off) != 1 || off <= 0 || (size_t)off >= base) return 0;
    for (const lname *l = a->layer; l->gg; l++)
        if (strlen(l->gg) == base - (size_t)off && !strncmp(gg + off, l->gg, base - (size_t)off))
            return snprintf(out, n, "model.layers.%u.%s%s", layer, l->hf, dot), 1;
    return 0;
}

/* ---------------- metadata ---------------- */

double mt_gguf_f32_decimal(float f) {
    if (!isfinite(f)) return f;
    char buf[48];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f) return strtod(buf, NULL);
    }
    return f;
}

typedef struct hp {
    const mt_gguf *g;
    const char *arch;
    mt_err *err;
} hp;

/* {arch}.key as an integer; def when absent (def < 0: required). */
static int hp_int(hp *h, const char *key, int64_t def, int64_t *out) {
    char k[256];
    snprintf(k, sizeof k, "%s.%s", h->arch, key);
    const mt_gguf_kv *kv = mt_gguf_find(h->g, k);
    if (!kv) {
        if (def < 0) return mt_seterr(h->err, MT_EFORMAT, "GGUF: %s is missing", k);
        *out = def;
        return MT_OK;
    }
    if (kv->type == MT_GV_ARR)
        return mt_seterr(h->err, MT_EUNSUPPORTED, "GGUF: %s varies per layer, which is not supported", k);
    return mt_gguf_int(kv, out, h->err);
}

static int hp_float(hp *h, const char *key, double def, double *out, int *present) {
    char k[256];
    snprintf(k, sizeof k, "%s.%s", h->arch, key);
    const mt_gguf_kv *kv = mt_gguf_find(h->g, k);
    if (present) *present = kv != NULL;
    if (!kv) {
        *out = def;
        return MT_OK;
    }
    MT_TRY(mt_gguf_float(kv, out, h->err));
    if (kv->type == MT_GV_F32) *out = mt_gguf_f32_decimal((float)*out);
    return MT_OK;
}

static json_t *jnum(double d) { return json_real(d); }

/* config.json of a llama-like decoder from the GGUF hyper-parameters. */
static int make_config(const mt_gguf *g, const arch *a, size_t vocab, int tied, int attn_bias, int mlp_bias,
                       json_t **out, mt_err *err) {
    hp h = {g, a->gguf, err};
    int64_t L, H, I, NH, NKV, ctx, kl = 0, rot = 0, swa = 0;
    double eps, theta, factor;
    int has_scale;
    MT_TRY(hp_int(&h, "block_count", -1, &L));
    MT_TRY(hp_int(&h, "embedding_length", -1, &H));
    MT_TRY(hp_int(&h, "feed_forward_length", -1, &I));
    MT_TRY(hp_int(&h, "attention.head_count", -1, &NH));
    MT_TRY(hp_int(&h, "attention.head_count_kv", NH, &NKV));
    MT_TRY(hp_int(&h, "context_length", 2048, &ctx));
    MT_TRY(hp_int(&h, "attention.key_length", 0, &kl));
    MT_TRY(hp_int(&h, "rope.dimension_count", 0, &rot));
    MT_TRY(hp_int(&h, "attention.sliding_window", 0, &swa));
    MT_TRY(hp_float(&h, "attention.layer_norm_rms_epsilon", 1e-5, &eps, NULL));
    MT_TRY(hp_float(&h, "rope.freq_base", 10000.0, &theta, NULL));
    if (L <= 0 || H <= 0 || I <= 0 || NH <= 0 || NKV <= 0 || H % NH || NH % NKV || L > 100000 || H > (1 << 20))
        return mt_seterr(err, MT_EFORMAT, "GGUF: inconsistent dimensions (blocks %lld, width %lld, heads %lld/%lld)",
                         (long long)L, (long long)H, (long long)NH, (long long)NKV);
    int64_t hd = kl ? kl : H / NH;
    if (rot && rot != hd && (!(a->flags & F_PARTIAL_ROPE) || rot > hd || rot % 2))
        return mt_seterr(err, MT_EUNSUPPORTED, "GGUF: partial rotary embeddings (%lld of %lld dimensions) are not supported for %s",
                         (long long)rot, (long long)hd, a->gguf);
    json_t *c = json_object();
    json_object_set_new(c, "architectures", json_pack("[s]", a->hf_class));
    json_object_set_new(c, "model_type", json_string(a->model_type));
    json_object_set_new(c, "hidden_size", json_integer(H));
    json_object_set_new(c, "intermediate_size", json_integer(I));
    json_object_set_new(c, "num_hidden_layers", json_integer(L));
    json_object_set_new(c, "num_attention_heads", json_integer(NH));
    json_object_set_new(c, "num_key_value_heads", json_integer(NKV));
    json_object_set_new(c, "head_dim", json_integer(hd));
    json_object_set_new(c, "max_position_embeddings", json_integer(ctx));
    json_object_set_new(c, "rms_norm_eps", jnum(eps));
    json_object_set_new(c, "rope_theta", jnum(theta));
    json_object_set_new(c, "vocab_size", json_integer((json_int_t)vocab));
    json_object_set_new(c, "tie_word_embeddings", json_boolean(tied));
    json_object_set_new(c, "hidden_act", json_string(a->act));
    if (a->flags & F_BIAS_KEYS) {
        /* llama's switches (qwen2 has its q/k/v biases always, the others none) */
        json_object_set_new(c, "attention_bias", json_boolean(attn_bias));
        json_object_set_new(c, "mlp_bias", json_boolean(mlp_bias));
    }
    if (swa) json_object_set_new(c, "sliding_window", json_integer(swa));
    /* rope scaling */
    char k[256];
    snprintf(k, sizeof k, "%s.rope.scaling.type", a->gguf);
    const char *st = NULL;
    size_t sl = 0;
    mt_gguf_str(mt_gguf_find(g, k), &st, &sl, NULL);
    if (hp_float(&h, "rope.scaling.factor", 0, &factor, &has_scale)) goto fail;
    if (!st && has_scale && factor > 0) st = "linear", sl = 6;
    if (st && (a->flags & F_ROPE_FACTORS) && ((sl == 8 && !memcmp(st, "longrope", 8)) || (sl == 2 && !memcmp(st, "su", 2))))
        st = NULL;   /* the family's config function reads the factors */
    if (st && !(sl == 4 && !memcmp(st, "none", 4))) {
        if (sl == 6 && !memcmp(st, "linear", 6)) {
            json_object_set_new(c, "rope_scaling", json_pack("{s:s, s:o}", "type", "linear", "factor", jnum(factor)));
        } else if (sl == 4 && !memcmp(st, "yarn", 4)) {
            int64_t orig;
            if (hp_int(&h, "rope.scaling.original_context_length", ctx, &orig)) goto fail;
            json_object_set_new(c, "rope_scaling", json_pack("{s:s, s:o, s:I}", "type", "yarn", "factor", jnum(factor),
                                                             "original_max_position_embeddings", (json_int_t)orig));
        } else {
            json_decref(c);
            return mt_seterr(err, MT_EUNSUPPORTED, "GGUF: rope scaling '%.*s' is not supported", (int)(sl > 32 ? 32 : sl), st);
        }
    }
    /* special token ids as the HF config carries them */
    static const struct {
        const char *gk, *ck;
    } ids[] = {{"tokenizer.ggml.bos_token_id", "bos_token_id"},
               {"tokenizer.ggml.eos_token_id", "eos_token_id"},
               {"tokenizer.ggml.padding_token_id", "pad_token_id"}};
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        int64_t v;
        if (!mt_gguf_int(mt_gguf_find(g, ids[i].gk), &v, NULL) && v >= 0) json_object_set_new(c, ids[i].ck, json_integer(v));
    }
    /* eos_token_id: the GGUF's eos, its eot, and the family's end-of-turn token, as a list
     * when more than one (the HF configs of chat families list them) */
    json_t *eos = json_array();
    int64_t v;
    if (!mt_gguf_int(mt_gguf_find(g, "tokenizer.ggml.eos_token_id"), &v, NULL) && v >= 0) json_array_append_new(eos, json_integer(v));
    int64_t eot = -1;
    if (mt_gguf_int(mt_gguf_find(g, "tokenizer.ggml.eot_token_id"), &eot, NULL)) eot = -1;
    const mt_gguf_kv *tk = mt_gguf_find(g, "tokenizer.ggml.tokens");
    for (uint64_t i = 0; eot < 0 && a->end_of_turn && tk && i < tk->n; i++) {
        const char *ts;
        size_t tl;
        if (!mt_gguf_arr_str(tk, i, &ts, &tl) && tl == strlen(a->end_of_turn) && !memcmp(ts, a->end_of_turn, tl)) eot = (int64_t)i;
    }
    if (eot >= 0 && !(json_array_size(eos) && json_integer_value(json_array_get(eos, 0)) == eot))
        json_array_append_new(eos, json_integer(eot));
    if (json_array_size(eos) > 1) json_object_set(c, "eos_token_id", eos);
    json_decref(eos);
    if (a->extra && a->extra(g, a, c, err)) {
        json_decref(c);
        return err ? err->code : MT_EFORMAT;
    }
    *out = c;
    return MT_OK;
fail:
    json_decref(c);
    return err ? err->code : MT_EFORMAT;
}

/* A float hyper-parameter {arch}.key (def when absent) as config.json's ck. */
static int set_float(const mt_gguf *g, const arch *a, json_t *c, const char *key, double def, const char *ck, mt_err *err) {
    hp h = {g, a->gguf, err};
    double v;
    MT_TRY(hp_float(&h, key, def, &v, NULL));
    json_object_set_new(c, ck, json_real(v));
    return MT_OK;
}

/* What Gemma 2 and 3 share: head_dim, the attention scale (llama.cpp: head_dim^-1/2,
 * but hidden/heads for the 27B models, big_blocks layers), the HF activation key. */
static void gemma_common(const arch *a, json_t *c, json_int_t big_blocks) {
    json_int_t hd = json_integer_value(json_object_get(c, "head_dim"));
    json_int_t H = json_integer_value(json_object_get(c, "hidden_size")), NH = json_integer_value(json_object_get(c, "num_attention_heads"));
    if (!hd) hd = H / NH, json_object_set_new(c, "head_dim", json_integer(hd));
    json_int_t L = json_integer_value(json_object_get(c, "num_hidden_layers"));
    json_object_set_new(c, "query_pre_attn_scalar", json_integer(L == big_blocks ? H / NH : hd));
    json_object_del(c, "hidden_act");
    json_object_set_new(c, "hidden_activation", json_string(a->act));
}

/* Gemma 2 (LLM_ARCH_GEMMA2): logit soft-capping from the GGUF (HF's defaults 50 / 30 when
 * absent), sliding window 4096 on every other layer (llama.cpp's fixed pattern; mlx-lm
 * does not window gemma2). */
static int gemma2_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err) {
    gemma_common(a, c, 46);
    MT_TRY(set_float(g, a, c, "attn_logit_softcapping", 50.0, "attn_logit_softcapping", err));
    MT_TRY(set_float(g, a, c, "final_logit_softcapping", 30.0, "final_logit_softcapping", err));
    if (!json_object_get(c, "sliding_window")) json_object_set_new(c, "sliding_window", json_integer(4096));
    return MT_OK;
}

/* Gemma 3 (llama.cpp's LLM_ARCH_GEMMA3): sliding-window layers every 6 but the last
 * (llama.cpp's fixed swa pattern), local RoPE base 10000, attention scaled by
 * head_dim^-1/2 except for the 27B model (62 blocks: hidden/heads). */
static int gemma3_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err) {
    (void)g, (void)err;
    gemma_common(a, c, 62);
    json_object_set_new(c, "rope_local_base_freq", json_real(10000.0));
    json_object_set_new(c, "sliding_window_pattern", json_integer(6));
    if (!json_object_get(c, "sliding_window")) json_object_set_new(c, "sliding_window", json_integer(512));
    json_object_set_new(c, "final_logit_softcapping", json_null());
    json_object_set_new(c, "attn_logit_softcapping", json_null());
    return MT_OK;
}

/* A 1-D float tensor of g as a JSON list of its values (shortest decimals); *out = NULL
 * when g has no tensor name. */
static int float_list(const mt_gguf *g, const char *name, json_t **out, mt_err *err) {
    *out = NULL;
    const mt_gguf_tensor *t = mt_gguf_tensor_get(g, name);
    if (!t) return MT_OK;
    if (t->ndim != 1 || t->nelem > 65536 || !mt_ggml_can_dequantize(t->type))
        return mt_seterr(err, MT_EFORMAT, "GGUF: %s must be a float vector of at most 65536 elements", name);
    float *x = malloc((size_t)t->nelem * sizeof *x + 1);
    if (!x) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = mt_ggml_dequantize(t->type, t->data, x, (size_t)t->nelem, err);
    json_t *l = json_array();
    for (uint64_t i = 0; !rc && i < t->nelem; i++) json_array_append_new(l, json_real(mt_gguf_f32_decimal(x[i])));
    free(x);
    if (rc) json_decref(l);
    else *out = l;
    return rc;
}

/* Phi-3 (llama.cpp's LLM_ARCH_PHI3, convert_hf_to_gguf's Phi3MiniModel): partial rotary
 * embeddings (rope.dimension_count of head_dim), the original context, and LongRoPE
 * (Phi-3 128k, Phi-3.5): convert_hf_to_gguf writes no scaling type for phi3, only the
 * rope_factors_long / rope_factors_short tensors, which become rope_scaling again. */
static int phi3_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err) {
    hp h = {g, a->gguf, err};
    int64_t rot, orig;
    json_int_t hd = json_integer_value(json_object_get(c, "head_dim"));
    MT_TRY(hp_int(&h, "rope.dimension_count", 0, &rot));
    if (rot && rot != hd) json_object_set_new(c, "partial_rotary_factor", json_real((double)rot / (double)hd));
    MT_TRY(hp_int(&h, "rope.scaling.original_context_length", 0, &orig));
    if (orig > 0) json_object_set_new(c, "original_max_position_embeddings", json_integer(orig));
    json_t *lf, *sf;
    MT_TRY(float_list(g, "rope_factors_long.weight", &lf, err));
    int rc = float_list(g, "rope_factors_short.weight", &sf, err);
    if (!rc && (!lf) != (!sf))
        rc = mt_seterr(err, MT_EFORMAT, "GGUF: rope_factors_long and rope_factors_short come together");
    if (!rc && lf)
        json_object_set_new(c, "rope_scaling", json_pack("{s:s, s:O, s:O}", "type", "longrope", "long_factor", lf,
                                                         "short_factor", sf));
    json_decref(lf), json_decref(sf);
    return rc;
}

/* The expert counts of a mixture-of-experts file into config.json's keys ne_key / "num_experts_per_tok". */
static int expert_counts(const mt_gguf *g, const arch *a, json_t *c, const char *ne_key, mt_err *err) {
    hp h = {g, a->gguf, err};
    int64_t ne, used;
    MT_TRY(hp_int(&h, "expert_count", -1, &ne));
    MT_TRY(hp_int(&h, "expert_used_count", -1, &used));
    if (ne <= 0 || used <= 0 || used > ne || ne > 65536)
        return mt_seterr(err, MT_EFORMAT, "GGUF: %lld experts, %lld used per token", (long long)ne, (long long)used);
    json_object_set_new(c, ne_key, json_integer(ne));
    json_object_set_new(c, "num_experts_per_tok", json_integer(used));
    return MT_OK;
}

/* Mixtral (llama.cpp's llama with experts): the expert counts; the router's top-k softmax
 * is the same in both. */
static int mixtral_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err) {
    return expert_counts(g, a, c, "num_local_experts", err);
}

/* Qwen3-MoE (LLM_ARCH_QWEN3MOE): the expert counts and width (from the expert tensors when
 * the file has no expert_feed_forward_length); top-k weights renormalized (llama.cpp always
 * does for qwen3moe); the layers without a router are mlp_only_layers. */
static int qwen3moe_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err) {
    hp h = {g, a->gguf, err};
    int64_t L = json_integer_value(json_object_get(c, "num_hidden_layers")), ef;
    MT_TRY(expert_counts(g, a, c, "num_experts", err));
    MT_TRY(hp_int(&h, "expert_feed_forward_length", 0, &ef));
    json_t *only = json_array();
    for (int64_t l = 0; l < L; l++) {
        char k[64];
        snprintf(k, sizeof k, "blk.%lld.ffn_gate_inp.weight", (long long)l);
        if (!mt_gguf_tensor_get(g, k)) json_array_append_new(only, json_integer(l));
        snprintf(k, sizeof k, "blk.%lld.ffn_gate_exps.weight", (long long)l);
        const mt_gguf_tensor *t = mt_gguf_tensor_get(g, k);
        if (!ef && t && t->ndim == 3) ef = (int64_t)t->ne[1];
    }
    if (ef <= 0) {
        json_decref(only);
        return mt_seterr(err, MT_EFORMAT, "GGUF: %s.expert_feed_forward_length is missing", a->gguf);
    }
    json_object_set_new(c, "moe_intermediate_size", json_integer(ef));
    json_object_set_new(c, "norm_topk_prob", json_true());
    json_object_set_new(c, "decoder_sparse_step", json_integer(1));
    json_object_set_new(c, "mlp_only_layers", only);
    return MT_OK;
}

/* StarCoder2 (LLM_ARCH_STARCODER2): LayerNorm epsilon (HF's norm_epsilon). */
static int starcoder2_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err) {
    return set_float(g, a, c, "attention.layer_norm_epsilon", 1e-5, "norm_epsilon", err);
}

/* Granite (LLM_ARCH_GRANITE, convert_hf_to_gguf's GraniteModel): the multipliers, written
 * only when set (HF's default 1 otherwise). */
static int granite_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err) {
    MT_TRY(set_float(g, a, c, "attention.scale", 1.0, "attention_multiplier", err));
    MT_TRY(set_float(g, a, c, "embedding_scale", 1.0, "embedding_multiplier", err));
    MT_TRY(set_float(g, a, c, "residual_scale", 1.0, "residual_multiplier", err));
    return set_float(g, a, c, "logit_scale", 1.0, "logits_scaling", err);
}

/* SmolLM3 (LLM_ARCH_SMOLLM3): llama.cpp leaves RoPE out of every 4th layer, a fixed step
 * the file does not carry (HF's no_rope_layer_interval default, the released models'). */
static int smollm3_config(const mt_gguf *g, const arch *a, json_t *c, mt_err *err) {
    (void)g, (void)a, (void)err;
    json_object_set_new(c, "no_rope_layer_interval", json_integer(4));
    return MT_OK;
}

/* ---------------- plan ---------------- */

enum { K_DENSE, K_AW, K_AS, K_AB };

typedef struct ot {
    char *name;
    mt_st_entry e;
    int kind;
    const mt_gguf_tensor *src;
    mt_dtype dt;               /* K_DENSE output type */
    size_t rows, K;            /* source rows (elements / ne[0]) and row length */
    int bits;                  /* K_A*: 4, 5 or 8 */
    mt_dtype sdt;              /* K_A*: scales / biases F16, or F32 under --dtype float32 (same values) */
    int heads;                 /* undo the q/k permutation with this many heads (0 = none) */
    float shift;               /* subtracted from every value (Gemma norms: 1) */
} ot;

typedef struct im {
    const mt_import_gguf_opts *o;
    mt_gguf *g;
    const arch *a;
    ot *out;
    size_t nout;
    /* one converted tensor kept for its three entries */
    const mt_gguf_tensor *cached;
    uint32_t *cw;
    uint16_t *cs, *cb;
} im;

/* Source row of HF row r of a permuted q/k tensor: HF rows (h, j, i) are
 * GGUF rows (h, i, j), j in {0, 1} (convert_hf_to_gguf's permute). */
static size_t src_row(const ot *t, size_t r) {
    if (!t->heads) return r;
    size_t per = t->rows / (size_t)t->heads, half = per / 2, h = r / per, k = r % per;
    return h * per + (k % half) * 2 + k / half;
}

static const char *dtype_str(mt_dtype d) {
    return d == MT_F32 ? "float32" : d == MT_BF16 ? "bfloat16" : "float16";
}

static int push(im *c, size_t *cap, const ot *t, mt_err *err) {
    if (c->nout == *cap) {
        size_t n = *cap ? *cap * 2 : 256;
        ot *q = realloc(c->out, n * sizeof *q);
        if (!q) return mt_seterr(err, MT_ENOMEM, "out of memory");
        c->out = q, *cap = n;
    }
    c->out[c->nout++] = *t;
    return MT_OK;
}

static int cmp_ot(const void *a, const void *b, void *ctx) {
    return mt_convert_name_cmp(((const ot *)a)->name, ((const ot *)b)->name, ctx);
}

/* ---------------- fill ---------------- */

static int fill_dense(const ot *t, uint8_t *dst, mt_err *err) {
    const mt_gguf_tensor *s = t->src;
    size_t es = mt_dtype_size(t->dt), K = t->K;
    uint32_t st = s->type;
    size_t src_es = st == MT_GT_F32 ? 4 : (st == MT_GT_F16 || st == MT_GT_BF16) ? 2 : 0;
    int same = !t->shift && ((st == MT_GT_F32 && t->dt == MT_F32) || (st == MT_GT_F16 && t->dt == MT_F16) ||
                             (st == MT_GT_BF16 && t->dt == MT_BF16));
    size_t rowb = s->nbytes / (t->rows ? t->rows : 1);
    if (s->ndim == 1 && t->heads) {
        /* a permuted bias: its elements are the rows */
        float *x = malloc(K * sizeof *x + 1);
        if (!x) return mt_seterr(err, MT_ENOMEM, "out of memory");
        int rc = mt_ggml_dequantize(st, s->data, x, K, err);
        ot row = *t;
        row.rows = K;
        for (size_t r = 0; r < K && !rc; r++) mt_convert_from_f32(dst + r * es, x + src_row(&row, r), t->dt, 1);
        free(x);
        return rc;
    }
    float *x = same ? NULL : malloc(K * sizeof *x + 1);
    if (!same && !x) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = MT_OK;
    for (size_t r = 0; r < t->rows && !rc; r++) {
        const uint8_t *sp = s->data + src_row(t, r) * rowb;
        if (same) memcpy(dst + r * K * es, sp, K * src_es);
        else if (!(rc = mt_ggml_dequantize(st, sp, x, K, err))) {
            if (t->shift)
                for (size_t k = 0; k < K; k++) x[k] -= t->shift;
            mt_convert_from_f32(dst + r * K * es, x, t->dt, K);
        }
    }
    free(x);
    return rc;
}

static int convert_affine(im *c, const ot *t, mt_err *err) {
    if (c->cached == t->src) return MT_OK;
    free(c->cw), free(c->cs), free(c->cb);
    c->cached = NULL;
    size_t words = t->K * (size_t)t->bits / 32, G = t->K / 32;
    c->cw = malloc(t->rows * words * 4 + 4);
    c->cs = malloc(t->rows * G * 4 + 4);
    c->cb = malloc(t->rows * G * 4 + 4);
    if (!c->cw || !c->cs || !c->cb) return mt_seterr(err, MT_ENOMEM, "out of memory");
    size_t rowb = t->src->nbytes / t->rows;
    for (size_t r = 0; r < t->rows; r++)
        if (!mt_ggml_to_affine(t->src->type, t->src->data + src_row(t, r) * rowb, 1, t->K, c->cw + r * words,
                               c->cs + r * G, c->cb + r * G))
            return mt_seterr(err, MT_EFORMAT, "%s: not exactly representable (checked before)", t->src->name);
    if (t->sdt == MT_F32) {
        /* widen in place, from the end (float16 values are float32 values) */
        float *fs = (float *)c->cs, *fb = (float *)c->cb;
        for (size_t i = t->rows * G; i-- > 0;) {
            float a = mt_f16_to_f32(c->cs[i]), b = mt_f16_to_f32(c->cb[i]);
            fs[i] = a, fb[i] = b;
        }
    }
    c->cached = t->src;
    return MT_OK;
}

static int fill(void *user, size_t idx, void *dst, mt_err *err) {
    im *c = user;
    const ot *t = &c->out[idx];
    int rc;
    switch (t->kind) {
    case K_DENSE: rc = fill_dense(t, dst, err); break;
    case K_AW:
        if (!(rc = convert_affine(c, t, err))) memcpy(dst, c->cw, t->e.nbytes);
        break;
    case K_AS:
        if (!(rc = convert_affine(c, t, err))) memcpy(dst, c->cs, t->e.nbytes);
        break;
    default:
        if (!(rc = convert_affine(c, t, err))) memcpy(dst, c->cb, t->e.nbytes);
        break;
    }
    return rc ? mt_preferr(err, "%s", t->src->name) : MT_OK;
}

/* ---------------- files ---------------- */

static int write_json(const char *dir, const char *name, json_t *j, int py, mt_err *err) {
    char *txt = NULL;
    size_t len = 0;
    int rc = MT_OK;
    if (py) rc = mt_pyjson_dump(j, 1, &txt, &len, err);
    else {
        txt = json_dumps(j, JSON_INDENT(2) | JSON_ENSURE_ASCII);
        if (!txt) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        else len = strlen(txt);
    }
    if (!rc) rc = mt_convert_write_text(dir, name, txt, len, err);
    free(txt);
    return rc;
}

/* The plan's tensors through convert's writer. */
static int write_weights(im *c, const char *dir, mt_err *err) {
    mt_st_entry *ents = malloc((c->nout ? c->nout : 1) * sizeof *ents);
    if (!ents) return mt_seterr(err, MT_ENOMEM, "out of memory");
    uint64_t params = 0;
    for (size_t i = 0; i < c->nout; i++) {
        const ot *t = &c->out[i];
        ents[i] = t->e;
        if (t->kind == K_AW) params += (uint64_t)t->rows * t->K;
        else if (t->kind == K_DENSE) params += t->e.nbytes / mt_dtype_size(t->e.dtype);
    }
    mt_convert_weights w = {ents, c->nout, params, 0, fill, c, c->o->progress, c->o->progress_user};
    int rc = mt_convert_write_weights(dir, &w, err);
    free(ents);
    return rc;
}

static int model_card(const mt_gguf *g, const char *src, const char *dir, mt_err *err) {
    const char *lic = NULL, *base = strrchr(src, '/');
    size_t ll = 0;
    base = base ? base + 1 : src;
    mt_gguf_str(mt_gguf_find(g, "general.license"), &lic, &ll, NULL);
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "---\n%s%.*s%slibrary_name: mlx\npipeline_tag: text-generation\ntags:\n- mlx\n---\n\n"
                     "Imported from the GGUF file `%s` with `mlx-quant import-gguf`.\n",
                     lic ? "license: " : "", lic && ll < 64 ? (int)ll : 0, lic ? lic : "", lic ? "\n" : "", base);
    if (n < 0 || (size_t)n >= sizeof buf) n = (int)strlen(buf);
    return mt_convert_write_text(dir, "README.md", buf, (size_t)n, err);
}

/* The architecture entry of g; MT_EUNSUPPORTED naming it (and the supported
 * ones) when the table has none. */
static int arch_of(const mt_gguf *g, const char *label, const arch **out, mt_err *err) {
    const char *an;
    size_t al;
    int rc = mt_gguf_str(mt_gguf_find(g, "general.architecture"), &an, &al, err);
    if (rc == MT_ENOTFOUND) return mt_seterr(err, MT_EFORMAT, "%s: general.architecture is missing", label);
    if (rc) return rc;
    /* one name may have two entries, told apart by its expert count (llama: mixtral) */
    char k[96];
    int64_t ne = 0;
    snprintf(k, sizeof k, "%.*s.expert_count", (int)(al > 64 ? 64 : al), an);
    if (mt_gguf_int(mt_gguf_find(g, k), &ne, NULL)) ne = 0;
    const arch *pick = NULL;
    for (size_t i = 0; i < sizeof arches / sizeof *arches; i++) {
        const arch *e = &arches[i];
        if (strlen(e->gguf) != al || memcmp(e->gguf, an, al)) continue;
        int fits = (ne > 0) == !!(e->flags & F_EXPERTS);
        if (!pick || fits) pick = e;
        if (fits) break;
    }
    if (pick) {
        *out = pick;
        return MT_OK;
    }
    char list[256] = "";
    for (size_t i = 0; i < sizeof arches / sizeof *arches; i++)
        if (!i || strcmp(arches[i].gguf, arches[i - 1].gguf))
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", arches[i].gguf);
    return mt_seterr(err, MT_EUNSUPPORTED, "%s: GGUF architecture '%.*s' is not supported (supported: %s)", label,
                     (int)(al > 64 ? 64 : al), an, list);
}

/* Heads to un-permute GGUF tensor s with (0 = none). */
static int64_t perm_heads(const mt_gguf *g, const arch *a, const mt_gguf_tensor *s) {
    if (!a->permute_qk) return 0;
    int is_q = strstr(s->name, ".attn_q.") != NULL, is_k = strstr(s->name, ".attn_k.") != NULL;
    if (!is_q && !is_k) return 0;
    int64_t NH = 0, NKV = 0;
    char k[256];
    snprintf(k, sizeof k, "%s.attention.head_count", a->gguf);
    mt_gguf_int(mt_gguf_find(g, k), &NH, NULL);
    snprintf(k, sizeof k, "%s.attention.head_count_kv", a->gguf);
    if (mt_gguf_int(mt_gguf_find(g, k), &NKV, NULL)) NKV = NH;
    return is_q ? NH : NKV;
}

int mt_gguf_hf_tensor(const mt_gguf *g, const char *hf, float **out, size_t *n, const mt_gguf_tensor **src,
                      mt_err *err) {
    const arch *a;
    *out = NULL;
    MT_TRY(arch_of(g, "GGUF", &a, err));
    const mt_gguf_tensor *s = NULL;
    for (size_t i = 0; i < mt_gguf_tensor_count(g) && !s; i++) {
        char name[300];
        const mt_gguf_tensor *t = mt_gguf_tensor_at(g, i);
        if (hf_name(a, t->name, name, sizeof name) && !strcmp(name, hf)) s = t;
    }
    if (!s) return mt_seterr(err, MT_ENOTFOUND, "GGUF: no tensor for %s", hf);
    if (src) *src = s;
    size_t ne = (size_t)s->nelem, K = (size_t)s->ne[0];
    float *x = malloc(ne * sizeof *x + 1), *y = NULL;
    if (!x) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = mt_ggml_dequantize(s->type, s->data, x, ne, err);
    size_t nl = strlen(s->name);
    if (!rc && a->norm_shift != 0 && nl >= 11 && !strcmp(s->name + nl - 11, "norm.weight"))
        for (size_t i = 0; i < ne; i++) x[i] -= a->norm_shift;
    int64_t heads = perm_heads(g, a, s);
    if (!rc && heads > 0) {
        ot t = {0};
        t.heads = (int)heads;
        size_t unit = s->ndim == 1 ? 1 : K;
        t.rows = ne / unit;
        if (t.rows % (2 * (size_t)heads)) rc = mt_seterr(err, MT_EFORMAT, "GGUF: %s: rows do not split into %lld heads", s->name, (long long)heads);
        else if (!(y = malloc(ne * sizeof *y + 1))) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        for (size_t r = 0; !rc && r < t.rows; r++) memcpy(y + r * unit, x + src_row(&t, r) * unit, unit * sizeof *y);
        if (!rc) {
            free(x);
            x = y;
        }
    }
    if (rc) {
        free(x);
        return rc;
    }
    *out = x;
    *n = ne;
    return MT_OK;
}

/* ---------------- import ---------------- */

static int parse_dtype(const char *s, mt_dtype *d) {
    if (!s) return 0;
    if (!strcmp(s, "float16")) *d = MT_F16;
    else if (!strcmp(s, "bfloat16")) *d = MT_BF16;
    else if (!strcmp(s, "float32")) *d = MT_F32;
    else return 0;
    return 1;
}

static int plan(im *c, mt_dtype dense, int force_dtype, int all_dense, json_t *qblock, int *tied, int *attn_bias,
                int *mlp_bias, size_t *vocab, mt_err *err) {
    const mt_gguf *g = c->g;
    size_t cap = 0, nt = mt_gguf_tensor_count(g);
    int bits_count[9] = {0};
    *tied = 1, *attn_bias = 0, *mlp_bias = 0, *vocab = 0;
    for (size_t i = 0; i < nt; i++) {
        const mt_gguf_tensor *s = mt_gguf_tensor_at(g, i);
        char name[300];
        if ((c->a->flags & F_ROPE_FACTORS) &&
            (!strcmp(s->name, "rope_factors_long.weight") || !strcmp(s->name, "rope_factors_short.weight")))
            continue;   /* config.json's rope_scaling */
        if (!strcmp(s->name, "rope_freqs.weight"))
            return mt_seterr(err, MT_EUNSUPPORTED, "GGUF: tensor rope_freqs.weight (llama 3 rope scaling) is not supported yet");
        if (!hf_name(c->a, s->name, name, sizeof name))
            return mt_seterr(err, MT_EUNSUPPORTED, "GGUF: tensor '%s' has no Hugging Face name for architecture %s", s->name,
                             c->a->gguf);
        const char *tn = mt_ggml_type_name(s->type);
        if (!mt_ggml_can_dequantize(s->type))
            return mt_seterr(err, MT_EUNSUPPORTED, "GGUF: tensor '%s' has type %s, which is not supported", s->name, tn ? tn : "?");
        if (!strcmp(name, "lm_head.weight")) *tied = 0;
        if (strstr(name, "self_attn.") && strstr(name, ".bias")) *attn_bias = 1;
        if (strstr(name, "mlp.") && strstr(name, ".bias")) *mlp_bias = 1;
        if (!strcmp(name, "model.embed_tokens.weight")) *vocab = (size_t)(s->ndim >= 2 ? s->ne[1] : 0);
        ot t = {0};
        t.src = s;
        t.K = (size_t)s->ne[0];
        t.rows = t.K ? (size_t)(s->nelem / s->ne[0]) : 0;
        int64_t heads = perm_heads(g, c->a, s);
        if (heads) {
            t.heads = (int)heads;
            size_t units = s->ndim == 1 ? t.K : t.rows;
            if (t.heads <= 0 || units % (2 * (size_t)t.heads))
                return mt_seterr(err, MT_EFORMAT, "GGUF: tensor '%s': %zu rows do not split into %d heads", s->name, units, t.heads);
        }
        int bits = all_dense ? 0 : mt_ggml_affine_bits(s->type);
        if (bits && s->ndim >= 2 && mt_ggml_affine_exact(s->type, s->data, s->nbytes / mt_ggml_block_bytes(s->type))) {
            /* lossless MLX affine group 32 */
            size_t l = strlen(name) - 7;   /* without ".weight" */
            if (strcmp(name + l, ".weight"))
                return mt_seterr(err, MT_EUNSUPPORTED, "GGUF: quantized tensor '%s' is not a weight", s->name);
            static const char *const suf[] = {".weight", ".scales", ".biases"};
            for (int p = 0; p < 3; p++) {
                ot e = t;
                e.kind = K_AW + p;
                e.bits = bits;
                e.name = malloc(l + 9);
                if (!e.name) return mt_seterr(err, MT_ENOMEM, "out of memory");
                memcpy(e.name, name, l);
                strcpy(e.name + l, suf[p]);
                e.sdt = force_dtype && dense == MT_F32 ? MT_F32 : MT_F16;
                e.e.dtype = p ? e.sdt : MT_U32;
                e.e.ndim = s->ndim;
                for (int d = 0; d < s->ndim; d++) e.e.shape[d] = (int64_t)s->ne[s->ndim - 1 - d];
                e.e.shape[s->ndim - 1] = (int64_t)(p ? t.K / 32 : t.K * (size_t)bits / 32);
                e.e.nbytes = t.rows * (p ? t.K / 32 * mt_dtype_size(e.sdt) : t.K * (size_t)bits / 8);
                int rc = push(c, &cap, &e, err);
                if (rc) {
                    free(e.name);
                    return rc;
                }
            }
            bits_count[bits]++;
            name[l] = 0;
            json_object_set_new(qblock, name, json_pack("{s:i, s:i, s:s}", "group_size", 32, "bits", bits, "mode", "affine"));
            continue;
        }
        t.kind = K_DENSE;
        t.dt = dense;
        size_t nl = strlen(s->name);
        if (c->a->norm_shift != 0 && nl >= 11 && !strcmp(s->name + nl - 11, "norm.weight")) t.shift = c->a->norm_shift;
        if (!force_dtype) {
            if (s->type == MT_GT_F32) t.dt = MT_F32;
            else if (s->type == MT_GT_F16) t.dt = MT_F16;
            else if (s->type == MT_GT_BF16) t.dt = MT_BF16;
        }
        t.name = strdup(name);
        if (!t.name) return mt_seterr(err, MT_ENOMEM, "out of memory");
        t.e.dtype = t.dt;
        t.e.ndim = s->ndim;
        for (int d = 0; d < s->ndim; d++) t.e.shape[d] = (int64_t)s->ne[s->ndim - 1 - d];
        t.e.nbytes = (size_t)s->nelem * mt_dtype_size(t.dt);
        int rc = push(c, &cap, &t, err);
        if (rc) {
            free(t.name);
            return rc;
        }
    }
    if (!*vocab) return mt_seterr(err, MT_EFORMAT, "GGUF: no token_embd.weight tensor");
    /* the most common width is the default; the others stay as per-module entries */
    int top = 0;
    for (int b = 1; b <= 8; b++)
        if (bits_count[b] > bits_count[top]) top = b;
    if (top) {
        json_t *q = json_pack("{s:i, s:i, s:s}", "group_size", 32, "bits", top, "mode", "affine");
        const char *key;
        json_t *v;
        json_object_foreach(qblock, key, v)
            if (json_integer_value(json_object_get(v, "bits")) != top) json_object_set(q, key, v);
        json_object_clear(qblock);
        json_object_update(qblock, q);
        json_decref(q);
    }
    qsort_r(c->out, c->nout, sizeof *c->out, cmp_ot, (void *)c->a->model_type);
    for (size_t i = 0; i < c->nout; i++) c->out[i].e.name = c->out[i].name;
    return MT_OK;
}

/* Write the folder (no quantization step) into dir. */
static int import_into(im *c, const char *dir, mt_dtype dense, int force_dtype, int all_dense, mt_err *err) {
    json_t *qblock = json_object(), *cfg = NULL, *tok = NULL, *tcfg = NULL;
    int tied, ab, mb;
    size_t vocab;
    int rc = plan(c, dense, force_dtype, all_dense, qblock, &tied, &ab, &mb, &vocab, err);
    if (!rc) rc = make_config(c->g, c->a, vocab, tied, ab, mb, &cfg, err);
    if (!rc) rc = mt_gguf_tokenizer_files(c->g, &tok, &tcfg, err);
    if (!rc) {
        int64_t ctx;
        char k[256];
        snprintf(k, sizeof k, "%s.context_length", c->a->gguf);
        if (!mt_gguf_int(mt_gguf_find(c->g, k), &ctx, NULL)) json_object_set_new(tcfg, "model_max_length", json_integer(ctx));
        json_object_set_new(cfg, "torch_dtype", json_string(dtype_str(dense)));
        if (json_object_size(qblock)) {
            json_object_set(cfg, "quantization", qblock);
            json_object_set(cfg, "quantization_config", qblock);
        }
    }
    if (!rc) rc = write_weights(c, dir, err);
    if (!rc) rc = write_json(dir, "config.json", cfg, 1, err);
    if (!rc) rc = write_json(dir, "tokenizer.json", tok, 0, err);
    if (!rc) rc = write_json(dir, "tokenizer_config.json", tcfg, 0, err);
    if (!rc) rc = model_card(c->g, c->o->src, dir, err);
    json_decref(qblock), json_decref(cfg), json_decref(tok), json_decref(tcfg);
    return rc;
}

int mt_import_gguf(const mt_import_gguf_opts *o, mt_err *err) {
    if (!o || !o->src || !o->dst) return mt_seterr(err, MT_EINVAL, "source and destination are required");
    struct stat sb;
    if (lstat(o->dst, &sb) == 0) return mt_seterr(err, MT_EINVAL, "cannot save to %s: it already exists", o->dst);
    mt_dtype dense = MT_F32;
    int force = 0;
    if (o->dtype && !(force = parse_dtype(o->dtype, &dense)))
        return mt_seterr(err, MT_EINVAL, "--dtype: '%s' is not float16, bfloat16 or float32", o->dtype);
    if (o->quantize) {
        mt_quant_params qp = {o->bits ? o->bits : 4, o->group_size ? o->group_size : 64, MT_QMODE_AFFINE};
        MT_TRY(mt_quant_params_check(&qp, err));
    }
    im c;
    memset(&c, 0, sizeof c);
    c.o = o;
    MT_TRY(mt_gguf_open(&c.g, o->src, err));
    int rc = arch_of(c.g, o->src, &c.a, err);
    if (!rc && !force) {
        /* the float type of the file */
        int bf = 0, half = 0;
        for (size_t i = 0; i < mt_gguf_tensor_count(c.g); i++) {
            uint32_t t = mt_gguf_tensor_at(c.g, i)->type;
            if (t == MT_GT_BF16) bf = 1;
            else if (t != MT_GT_F32) half = 1;
        }
        dense = bf ? MT_BF16 : half ? MT_F16 : MT_F32;
    }
    char *tmp = NULL, *ftmp = NULL, *fbase = NULL;
    if (!rc && !o->quantize) {
        rc = mt_tmpdir_make(o->dst, &tmp, err);
        if (!rc) rc = import_into(&c, tmp, dense, force, 0, err);
        if (!rc) rc = mt_tmp_commit(tmp, o->dst, err);
        else mt_tmp_discard(tmp);
    } else if (!rc) {
        /* a float folder first, then mlx-quant convert -q from it */
        fbase = malloc(strlen(o->dst) + 8);
        if (!fbase) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        else sprintf(fbase, "%s.float", o->dst);
        if (!rc) rc = mt_tmpdir_make(fbase, &ftmp, err);
        if (!rc) rc = import_into(&c, ftmp, dense, 1, 1, err);
        if (!rc) {
            mt_convert_opts co = {0};
            co.src = ftmp, co.dst = o->dst, co.quantize = 1, co.bits = o->bits, co.group_size = o->group_size;
            co.threads = o->threads, co.progress = o->progress, co.progress_user = o->progress_user;
            rc = mt_convert(&co, err);
        }
        if (ftmp) mt_tmp_discard(ftmp);
    }
    free(tmp), free(ftmp), free(fbase);
    for (size_t i = 0; i < c.nout; i++) free(c.out[i].name);
    free(c.out);
    free(c.cw), free(c.cs), free(c.cb);
    mt_gguf_free(c.g);
    return rc;
}
