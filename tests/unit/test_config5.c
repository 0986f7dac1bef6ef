/* test_config5.c - config.json as transformers >= 5 writes it (rope_parameters in place of
 * rope_theta / rope_scaling, num_local_experts, layer_types, ...), against mlx-lm 0.32.
 * tests/data/tf5/golden.json (tests/gen/gen_tf5_configs.py) holds, per case, a fixture of
 * tests/data/models/ and the config transformers 5 wrote for it, and what mlx-lm did with
 * the fixture's weights under that config: refused it, gave the fixture's golden logits and
 * tokens, or other logits (two prompt positions) and greedy tokens.  Each case's folder is
 * built here (the fixture's files linked, that config.json) and mlx-gen must do the same:
 * refuse it naming the key, or the same logits within 1e-3 * (1 + |logit|) and the same
 * greedy tokens (up to the first near tie of mlx-lm's path, a top-2 gap under 1e-3).  A case
 * whose logits differ from the fixture's must differ by far (so a config read the old way
 * fails): e.g. qwen3 with only rope_parameters.rope_theta = 1e6 against the 10000 fixture. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include "check.h"
#include "fixture_copy.h"
#include "core/blas.h"
#include "core/file.h"
#include "gen/sample.h"
#include "models/model.h"

/* What mlx-gen's message must name where mlx-lm refuses the folder. */
static const struct { const char *name, *msg; } refused[] = {
    {"qwen3-noparams", "config.json: no \"rope_theta\", at the top level or in \"rope_parameters\""},
    {"qwen3_moe", "config.json: missing \"num_experts\""},
    {"gemma4_text-nolayertypes", "config.json: KV-shared layer 3 (num_kv_shared_layers 2) has no earlier full layer"},
    /* transformers 5 drops global_head_dim for per_layer_config (which mlx-lm does not read: its
     * default 512 applies) */
    {"gemma4_text", "tensor 'model.layers.1.self_attn.q_proj.weight': dim 0 is 128, expected 2048"},
    {"gemma4", "tensor 'model.layers.1.self_attn.q_proj.weight': dim 0 is 128, expected 2048"},
    {"granite", "config.json: missing \"rope_theta\" (mlx-lm reads it only at the top level"},
    {"gemma3_text-native", "mlx-lm's default 6 exceeds num_hidden_layers 2"},
    {"gemma3n", "config.json: text_config has no \"rope_local_base_freq\" (mlx-lm reads it only there"},
    {"qwen3_next", "config.json: missing \"rope_theta\" (mlx-lm reads it only at the top level"},
    {"qwen3_5", "config.json: \"layer_types\"[1] is \"full_attention\", but full_attention_interval 4"},
    {"qwen3_5_moe", "config.json: \"layer_types\"[1] is \"full_attention\", but full_attention_interval 4"},
    /* dense group A: mlx-lm's ModelArgs require a top-level rope_theta (and its other keys) */
    {"internlm3", "config.json: \"qkv_bias\" is not true, but the weights hold 'model.layers.0.self_attn.q_proj.bias'"},
    {"glm4", "config.json: missing \"rope_theta\""},
    {"exaone4", "config.json: missing \"rope_theta\""},
    {"ernie4_5", "config.json: missing \"rope_theta\""},
    {"olmo3", "config.json: missing \"rope_theta\""},
    {"exaone", "config.json: missing \"num_layers\""},
    {"helium", "config.json: missing \"rope_theta\""},
    /* multi-head latent attention and the DeepSeek-style mixture of experts */
    {"deepseek_v2", "config.json: mlx-lm's deepseek_v2 needs a \"rope_scaling\" object"},
    {"glm4_moe", "config.json: missing \"rope_theta\""},
    {"dots1", "config.json: missing \"rope_theta\""},
    {"minicpm3", "config.json: mlx-lm's minicpm3 needs a \"rope_scaling\" object"},
    /* mixture-of-experts families (lib/models/moe.c) */
    {"granitemoe", "config.json: missing \"rope_theta\" (mlx-lm reads it only at the top level"},
    {"ernie4_5_moe", "config.json: missing \"rope_theta\" (mlx-lm reads it only at the top level"},
    {"minimax", "config.json: missing \"rope_theta\" (mlx-lm reads it only at the top level"},
    {"llama4_text", "config.json: missing \"rope_theta\" (mlx-lm reads it only at the top level"},
    {"gpt_neox", "config.json: missing \"rotary_emb_base\""},
    {"stablelm", "config.json: missing \"rope_theta\" (mlx-lm reads it only at the top level"},
    {"apertus", "config.json: missing \"rope_theta\" (mlx-lm reads it only at the top level"},
    {"granitemoehybrid", "config.json: \"layer_types\"[0] must be \"mamba\" or \"attention\""},
    {"granitemoehybrid-moe", "config.json: \"layer_types\"[0] must be \"mamba\" or \"attention\""},
};
/* Families that transformers has no config class for (their repositories' own remote code writes
 * their config.json, not transformers 5): no case to expect. */
static const char *const remote_code[] = {"kimi_k2", "deepseek"};

/* A copy of fixture src whose config.json is config (the other files linked). */
static char *make_folder(const char *src, json_t *config) {
    static const char *const skip[] = {"config.json", "golden.json", "maxkv.json", NULL};
    char *dir = fixture_copy(src, "mt_config5", skip);
    CHECK_MSG(dir != NULL, "cannot copy %s", src);
    if (!dir) return NULL;
    char *cp = mt_path_join(dir, "config.json");
    CHECK(json_dump_file(config, cp, JSON_INDENT(2)) == 0);
    free(cp);
    return dir;
}

/* Worst relative difference of logits row `row` ([V]) from the JSON row ref. */
static double row_err(const float *logits, json_t *ref, size_t V) {
    double worst = 0;
    if (json_array_size(ref) != V) return INFINITY;
    for (size_t v = 0; v < V; v++) {
        double r = json_number_value(json_array_get(ref, v));
        double d = fabs(logits[v] - r) / (1 + fabs(r));
        worst = d > worst || d != d ? d : worst;
    }
    return worst;
}

static void run_case(const char *name, json_t *cs, mt_pool *pool) {
    const char *fixture = json_string_value(json_object_get(cs, "fixture"));
    CHECK_MSG(fixture != NULL, "%s: no fixture", name);
    if (!fixture) return;
    if (json_object_get(cs, "no_transformers")) {   /* transformers writes no other form: test_model covers it */
        printf("  %-20s no transformers class (%s)\n", name, json_string_value(json_object_get(cs, "no_transformers")));
        return;
    }
    char *src = mt_path_join("tests/data/models", fixture), *gp = mt_path_join(src, "golden.json");
    json_t *fg = json_load_file(gp, 0, NULL);
    free(gp);
    CHECK_MSG(fg != NULL, "%s: %s/golden.json", name, src);
    char *dir = fg ? make_folder(src, json_object_get(cs, "config")) : NULL;
    free(src);
    if (!dir) { json_decref(fg); return; }
    mt_err e = {0};
    mt_model *m = NULL;
    int rc = mt_model_load(&m, dir, pool, &e);
    const char *want = NULL;
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        if (!strcmp(refused[i].name, name)) want = refused[i].msg;
    if (json_object_get(cs, "mlx_lm_error")) {
        CHECK_MSG(want != NULL, "%s: mlx-lm refuses it (%s): say what mlx-gen must answer", name,
                  json_string_value(json_object_get(cs, "mlx_lm_error")));
        CHECK_MSG(rc != 0 && want && strstr(e.msg, want), "%s: mlx-lm refuses it; mlx-gen: rc %d \"%s\"", name, rc,
                  rc ? e.msg : "");
        printf("  %-20s refused: %s\n", name, rc ? e.msg : "(loaded)");
        mt_model_free(m);
        fixture_copy_free(dir);
        json_decref(fg);
        return;
    }
    CHECK_MSG(want == NULL, "%s: expected a refusal, but mlx-lm runs it", name);
    CHECK_MSG(rc == 0, "%s: %s", name, e.msg);
    if (rc) { fixture_copy_free(dir); json_decref(fg); return; }
    int same = json_is_true(json_object_get(cs, "same_as_fixture"));
    json_t *jp = json_object_get(fg, "prompt");
    size_t T = json_array_size(jp), V = (size_t)m->hp.vocab;
    int32_t *prompt = malloc(T * sizeof *prompt);
    for (size_t i = 0; i < T; i++) prompt[i] = (int32_t)json_integer_value(json_array_get(jp, i));
    float *logits = malloc(T * V * sizeof *logits);
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    CHECK_OK(mt_model_forward(m, c, prompt, T, logits, 1, &e), &e);
    /* against mlx-lm under this config: the fixture's rows, or the case's own */
    json_t *rows = json_object_get(cs, "rows"), *ref = same ? json_object_get(fg, "logits") : json_object_get(cs, "logits");
    size_t nr = same ? T : json_array_size(rows);
    double worst = 0, apart = INFINITY;
    CHECK_MSG(nr > 0 && json_array_size(ref) == nr, "%s: no reference logits", name);
    for (size_t i = 0; i < nr && json_array_size(ref) == nr; i++) {
        size_t t = same ? i : (size_t)json_integer_value(json_array_get(rows, i));
        CHECK_MSG(t < T, "%s: row %zu outside the prompt", name, t);
        if (t >= T) continue;
        double d = row_err(logits + t * V, json_array_get(ref, i), V);
        worst = d > worst || d != d ? d : worst;
        /* how far from what the fixture's own config gives */
        if (!same) {
            double f = row_err(logits + t * V, json_array_get(json_object_get(fg, "logits"), t), V);
            if (i == nr - 1) apart = f;
        }
    }
    CHECK_MSG(worst <= 1e-3, "%s: logits off mlx-lm's, worst relative error %.3g", name, worst);
    if (!same) CHECK_MSG(apart > 0.1, "%s: last-position logits %.3g from what the fixture's own config gives: read as the old config", name, apart);
    /* greedy decoding as mlx-lm's generate_step runs it */
    json_t *jg = json_object_get(same ? fg : cs, "greedy"), *jm = same ? NULL : json_object_get(cs, "margins");
    size_t ng = json_array_size(jg), upto = ng, agree = 0;
    for (size_t i = 0; jm && i < json_array_size(jm); i++)
        if (json_number_value(json_array_get(jm, i)) < 1e-3) { upto = i; break; }
    mt_kvcache_reset(c);
    if (T > 1) CHECK_OK(mt_model_forward(m, c, prompt, T - 1, logits, 0, &e), &e);
    CHECK_OK(mt_model_forward(m, c, prompt + T - 1, 1, logits, 0, &e), &e);
    int32_t tok = mt_argmax(logits, V);
    for (size_t i = 0; i < upto; i++) {
        if (tok != json_integer_value(json_array_get(jg, i))) break;
        agree++;
        if (i + 1 < upto) {
            CHECK_OK(mt_model_forward(m, c, &tok, 1, logits, 0, &e), &e);
            tok = mt_argmax(logits, V);
        }
    }
    CHECK_MSG(ng > 0 && agree == upto, "%s: greedy tokens agree for %zu of %zu", name, agree, upto);
    if (same) printf("  %-20s as %s: logits max rel err %.2e, greedy %zu/%zu\n", name, fixture, worst, agree, ng);
    else printf("  %-20s own golden: logits max rel err %.2e (%.2g from %s), greedy %zu/%zu\n", name, worst, apart,
                fixture, agree, upto);
    mt_kvcache_free(c);
    free(logits);
    free(prompt);
    mt_model_free(m);
    fixture_copy_free(dir);
    json_decref(fg);
}

int main(void) {
    mt_err e = {0};
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    mt_blas_threads(1);
    json_error_t je;
    json_t *g = json_load_file("tests/data/tf5/golden.json", 0, &je);
    CHECK_MSG(g != NULL, "tests/data/tf5/golden.json: %s", je.text);
    json_t *cases = json_object_get(g, "cases");
    const char *name;
    json_t *cs;
    size_t n = 0;
    json_object_foreach(cases, name, cs) {
        run_case(name, cs, pool);
        n++;
    }
    /* every family the registry has, read the transformers-5 way at least once */
    for (size_t i = 0; i < mt_family_count(); i++) {
        const char *mt = mt_family_at(i)->model_type;
        int seen = 0;
        for (size_t k = 0; k < sizeof remote_code / sizeof *remote_code; k++) seen |= !strcmp(mt, remote_code[k]);
        json_object_foreach(cases, name, cs) {
            const char *t = json_string_value(json_object_get(json_object_get(cs, "config"), "model_type"));
            if (t && !strcmp(t, mt)) seen = 1;
        }
        CHECK_MSG(seen, "family \"%s\" has no transformers-5 case in tests/data/tf5/golden.json", mt);
    }
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        CHECK_MSG(json_object_get(json_object_get(cases, refused[i].name), "mlx_lm_error") != NULL,
                  "%s: listed as refused, but mlx-lm runs it", refused[i].name);
    CHECK(n >= 20);
    json_decref(g);
    mt_pool_free(pool);
    return check_report("config5");
}
