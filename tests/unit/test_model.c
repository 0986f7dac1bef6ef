/* test_model.c - every registered model family against its mlx-lm goldens
 * (tests/gen/gen_llm_fixtures.py): logits of a fixed prompt within
 * 1e-3 * (1 + |logit|), and 32 greedy tokens identical, for the float, 4-bit
 * and 8-bit forms.  A registered family without a fixture fails. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include "check.h"
#include "fixture_copy.h"
#include "core/blas.h"
#include "core/file.h"
#include "gen/generate.h"
#include "models/encoder.h"
#include "models/model.h"
#include "text/tokenizer.h"
#include "gen/sample.h"

static void run_fixture(const char *dir, mt_pool *pool, int *seen_types, size_t nfam) {
    mt_err e = {0};
    char *gp = mt_path_join(dir, "golden.json");
    json_error_t je;
    json_t *g = json_load_file(gp, 0, &je);
    free(gp);
    CHECK_MSG(g != NULL, "%s: golden.json: %s", dir, je.text);
    if (!g) return;
    mt_model *m = NULL;
    int rc = mt_model_load(&m, dir, pool, &e);
    CHECK_MSG(rc == 0, "%s: %s", dir, e.msg);
    if (rc) { json_decref(g); return; }
    for (size_t i = 0; i < nfam; i++)
        if (!strcmp(mt_family_at(i)->model_type, m->model_type)) seen_types[i] = 1;
    json_t *jp = json_object_get(g, "prompt"), *jl = json_object_get(g, "logits"), *jg = json_object_get(g, "greedy");
    size_t T = json_array_size(jp), V = (size_t)m->hp.vocab;
    int32_t *prompt = malloc(T * sizeof *prompt);
    for (size_t i = 0; i < T; i++) prompt[i] = (int32_t)json_integer_value(json_array_get(jp, i));
    float *logits = malloc(T * V * sizeof *logits);
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    CHECK_OK(mt_model_forward(m, c, prompt, T, logits, 1, &e), &e);
    double worst = 0;
    size_t bad = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t v = 0; v < V; v++) {
            double ref = json_number_value(json_array_get(json_array_get(jl, t), v));
            double d = fabs(logits[t * V + v] - ref) / (1 + fabs(ref));
            if (d > worst) worst = d;
            if (d > 1e-3) bad++;
        }
    CHECK_MSG(bad == 0, "%s: %zu logits off, worst relative error %.3g", dir, bad, worst);
    /* the same with keys/values cached as float16: within float16 rounding */
    double worst16 = 0;
    mt_kvcache_free(c);
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    CHECK_OK(mt_kvcache_set_f16(c, 1, &e), &e);
    CHECK_OK(mt_model_forward(m, c, prompt, T, logits, 1, &e), &e);
    CHECK(c->f16 == 1 && c->len == T);
    CHECK(mt_kvcache_set_f16(c, 0, NULL) != 0);   /* not on a filled cache */
    for (size_t t = 0; t < T; t++)
        for (size_t v = 0; v < V; v++) {
            double ref = json_number_value(json_array_get(json_array_get(jl, t), v));
            double d = fabs(logits[t * V + v] - ref) / (1 + fabs(ref));
            if (d > worst16) worst16 = d;
        }
    /* random tiny models have huge attention scores, so float16 rounding of K
     * moves their logits by up to ~0.4 (relative): only gross errors here;
     * test_kv_f16 bounds it tightly on a trained model */
    CHECK_MSG(worst16 < 1.0, "%s: f16 KV cache: worst relative logit error %.3g", dir, worst16);
    /* greedy decoding as mlx-lm's generate_step runs it: the prompt but its last token,
     * then the last token alone, then one token at a time (dynamic RoPE depends on it) */
    mt_kvcache_free(c);
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    if (T > 1) CHECK_OK(mt_model_forward(m, c, prompt, T - 1, logits, 0, &e), &e);
    CHECK_OK(mt_model_forward(m, c, prompt + T - 1, 1, logits + (T - 1) * V, 0, &e), &e);
    int first = mt_argmax(logits + (T - 1) * V, V);
    size_t ng = json_array_size(jg), same = 0;
    int32_t tok = first;
    for (size_t i = 0; i < ng; i++) {
        if (tok == json_integer_value(json_array_get(jg, i))) same++;
        else break;
        if (i + 1 < ng) {
            CHECK_OK(mt_model_forward(m, c, &tok, 1, logits, 0, &e), &e);
            tok = mt_argmax(logits, V);
        }
    }
    CHECK_MSG(same == ng, "%s: greedy tokens agree for %zu of %zu", dir, same, ng);
    /* a longer prompt in one call: attention in blocks as matrix products
     * (decoder.c attn_blocks) against row by row (mt_attn_head), on the same
     * products otherwise; then one token at a time must still agree with
     * mlx-lm's greedy tokens above (not compared here: the products' order of
     * summation differs, and dynamic RoPE depends on the call) */
    enum { LT = 70 };
    int32_t lp[LT];
    for (size_t i = 0; i < LT; i++) lp[i] = i < T ? prompt[i] : (int32_t)((i * 7919u + 13u) % V);
    float *la = malloc(2 * LT * V * sizeof *la), *lb = la + LT * V;
    double worst_long = 0;
    for (int f16 = 0; f16 < 2; f16++) {
        for (int rows = 0; rows < 2; rows++) {
            m->attn_block_min = rows ? SIZE_MAX : 16;
            mt_kvcache_free(c);
            CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
            if (f16) CHECK_OK(mt_kvcache_set_f16(c, 1, &e), &e);
            CHECK_OK(mt_model_forward(m, c, lp, LT, rows ? lb : la, 1, &e), &e);
        }
        m->attn_block_min = 16;
        for (size_t i = 0; i < LT * V; i++) {
            double d = fabs(la[i] - lb[i]) / (1 + fabs(lb[i]));
            worst_long = d > worst_long || d != d ? d : worst_long;
        }
    }
    /* random tiny models magnify rounding (float16 keys move their logits by
     * up to 0.4, above): only gross errors here; tinydocs (trained) bounds it
     * tightly in test_kv_f16 */
    CHECK_MSG(worst_long < 2e-2, "%s: %d-token prompt, attention in blocks vs row by row: worst relative logit error %.3g",
              dir, LT, worst_long);
    free(la);
    printf("  %-22s logits max rel err %.2e (f16 KV %.2e), greedy %zu/%zu, %d-row blocks %.1e\n", strrchr(dir, '/') + 1,
           worst, worst16, same, ng, LT, worst_long);
    mt_kvcache_free(c);
    free(logits);
    free(prompt);
    mt_model_free(m);
    json_decref(g);
}

/* --max-kv-size: greedy tokens with a rotating cache against mlx-lm (maxkv.json). */
static void run_maxkv(const char *dir, mt_pool *pool) {
    mt_err e = {0};
    char *gp_ = mt_path_join(dir, "maxkv.json"), *tp = mt_path_join(dir, "tokenizer.json");
    json_t *g = json_load_file(gp_, 0, NULL);
    mt_model *m = NULL;
    mt_tokenizer *tok = NULL;
    CHECK(g != NULL);
    CHECK_OK(mt_model_load(&m, dir, pool, &e), &e);
    CHECK_OK(mt_tokenizer_load(&tok, tp, &e), &e);
    json_t *jp = json_object_get(g, "prompt"), *cs = json_object_get(g, "cases"), *cv;
    size_t n = json_array_size(jp), ci, ok = 0, ok16 = 0;
    int32_t prompt[64];
    for (size_t i = 0; i < n && i < 64; i++) prompt[i] = (int32_t)json_integer_value(json_array_get(jp, i));
    json_array_foreach(cs, ci, cv) {
        mt_gen_params gp;
        mt_gen_params_default(&gp);
        gp.max_tokens = 24;
        gp.max_kv_size = (int)json_integer_value(json_object_get(cv, "max_kv_size"));
        gp.prefill_step = (int)json_integer_value(json_object_get(cv, "prefill_step_size"));
        mt_gen_result res;
        int rc = m && tok ? mt_generate(m, tok, prompt, n, &gp, NULL, NULL, &res, &e) : -1;
        CHECK_MSG(rc == 0, "%s: %s", dir, e.msg);
        if (rc) continue;
        json_t *want = json_object_get(cv, "greedy");
        int same = res.n_tokens == json_array_size(want);
        for (size_t i = 0; same && i < res.n_tokens; i++) same = res.tokens[i] == json_integer_value(json_array_get(want, i));
        CHECK_MSG(same, "%s: max_kv_size %d, prefill step %d: greedy tokens differ from mlx-lm", dir, gp.max_kv_size,
                  gp.prefill_step);
        ok += same;
        /* a float16 cache through the same rotations (and the masked sliding-window path) */
        mt_gen_result r16;
        gp.kv_f16 = 1;
        rc = mt_generate(m, tok, prompt, n, &gp, NULL, NULL, &r16, &e);
        CHECK_MSG(rc == 0, "%s: f16: %s", dir, e.msg);
        if (!rc) {
            size_t agree = 0;
            while (agree < r16.n_tokens && agree < res.n_tokens && r16.tokens[agree] == res.tokens[agree]) agree++;
            ok16 += agree == res.n_tokens && r16.n_tokens == res.n_tokens;
            mt_gen_result_free(&r16);
        }
        mt_gen_result_free(&res);
    }
    printf("  %-22s max-kv-size cases identical to mlx-lm: %zu/%zu (f16 KV: %zu)\n", strrchr(dir, '/') + 1, ok,
           json_array_size(cs), ok16);
    mt_tokenizer_free(tok);
    mt_model_free(m);
    json_decref(g);
    free(gp_);
    free(tp);
}

/* The calibration observer sees every block linear's input, named by module path. */
typedef struct seen_t { int calls; double sum_down; size_t rows_q; int bad; } seen_t;
static void observer(void *user, const char *path, const float *x, size_t T, size_t in) {
    seen_t *s = user;
    s->calls++;
    if (strstr(path, "layers.1.mlp.down_proj")) for (size_t i = 0; i < T * in; i++) s->sum_down += x[i];
    if (!strcmp(path, "model.layers.0.self_attn.q_proj")) s->rows_q += T;
    if (strncmp(path, "model.layers.", 13) != 0) s->bad++;
}

static void test_observer(mt_pool *pool) {
    mt_err e = {0};
    mt_model *m = NULL;
    CHECK_OK(mt_model_load(&m, "tests/data/models/llama-tiny", pool, &e), &e);
    if (!m) return;
    seen_t s = {0};
    m->on_linear_input = observer;
    m->hook_user = &s;
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    int32_t toks[5] = {1, 5, 9, 200, 3};
    float *lg = malloc((size_t)m->hp.vocab * sizeof *lg);
    CHECK_OK(mt_model_forward(m, c, toks, 5, lg, 0, &e), &e);
    CHECK_EQ_INT(s.calls, 2 * 7);        /* q k v o gate up down, 2 layers */
    CHECK_EQ_INT(s.rows_q, 5);
    CHECK_EQ_INT(s.bad, 0);
    CHECK(s.sum_down != 0.0);
    /* hidden states: the head applied to them gives the logits of the plain forward */
    m->on_linear_input = NULL;
    size_t H = (size_t)m->hp.hidden, V = (size_t)m->hp.vocab;
    float *hid = malloc(5 * H * sizeof *hid), *lg2 = malloc(5 * V * sizeof *lg2), *lg5 = malloc(5 * V * sizeof *lg5);
    mt_kvcache_reset(c);
    CHECK_OK(mt_model_forward(m, c, toks, 5, lg5, 1, &e), &e);
    mt_kvcache_reset(c);
    CHECK_OK(mt_model_forward_hidden(m, c, toks, 5, hid, &e), &e);
    CHECK_EQ_INT(c->len, 5);
    mt_linear_forward(&m->lm_head, hid, 5, lg2, NULL, NULL);
    double worst = 0;
    for (size_t i = 0; i < 5 * V; i++) {
        double d = fabs(lg2[i] - lg5[i]) / (1 + fabs(lg5[i]));
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst < 1e-5, "hidden states x head differ from the logits by %g", worst);
    free(hid); free(lg2); free(lg5);
    free(lg);
    mt_kvcache_free(c);
    mt_model_free(m);
}

/* A family whose checkpoint names its modules its own way (gpt_neox): the observer gets the
 * checkpoint's module paths, which name tensors of the folder (the calibration keys). */
typedef struct named_t { const mt_safetensors *st; int calls, missing, qkv; } named_t;
static void named_observer(void *user, const char *path, const float *x, size_t T, size_t in) {
    (void)x; (void)T; (void)in;
    named_t *s = user;
    char w[320];
    snprintf(w, sizeof w, "%s.weight", path);
    s->calls++;
    int found = 0;
    for (size_t i = 0; i < mt_safetensors_count(s->st); i++) found |= !strcmp(mt_safetensors_at(s->st, i)->name, w);
    s->missing += !found;
    s->qkv += !strcmp(path, "model.h.1.attention.query_key_value");
}

static void test_observer_names(mt_pool *pool) {
    mt_err e = {0};
    mt_model *m = NULL;
    CHECK_OK(mt_model_load(&m, "tests/data/models/gptneox-tiny", pool, &e), &e);
    if (!m) return;
    named_t s = {m->st, 0, 0, 0};
    m->on_linear_input = named_observer;
    m->hook_user = &s;
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    int32_t toks[3] = {1, 5, 9};
    float *lg = malloc((size_t)m->hp.vocab * sizeof *lg);
    CHECK_OK(mt_model_forward(m, c, toks, 3, lg, 0, &e), &e);
    CHECK_MSG(s.calls == 2 * 4 && s.missing == 0 && s.qkv == 1, "calls %d, not in the folder %d, qkv %d", s.calls,
              s.missing, s.qkv);
    free(lg);
    mt_kvcache_free(c);
    mt_model_free(m);
}

/* float16 KV cache on the bundled trained model: logits of a 200-token
 * forward and 48 greedy tokens against the float32 cache. */
static void test_kv_f16(mt_pool *pool) {
    mt_err e = {0};
    mt_model *m = NULL;
    CHECK_OK(mt_model_load(&m, "models/tinydocs-5m-4bit", pool, &e), &e);
    if (!m) return;
    size_t T = 200, V = (size_t)m->hp.vocab;
    int32_t toks[200];
    for (size_t i = 0; i < T; i++) toks[i] = (int32_t)(3 + (i * 7919u + 13u) % (V - 3));
    float *a = malloc(T * V * sizeof *a), *b = malloc(T * V * sizeof *b);
    mt_kvcache *c32 = NULL, *c16 = NULL;
    CHECK_OK(mt_kvcache_new(&c32, m, &e), &e);
    CHECK_OK(mt_kvcache_new(&c16, m, &e), &e);
    CHECK_OK(mt_kvcache_set_f16(c16, 1, &e), &e);
    /* prefill attention in blocks (matrix products, the default) against row by row */
    mt_kvcache *cr = NULL;
    CHECK_OK(mt_kvcache_new(&cr, m, &e), &e);
    m->attn_block_min = SIZE_MAX;
    CHECK_OK(mt_model_forward(m, cr, toks, T, b, 1, &e), &e);
    m->attn_block_min = 16;
    mt_kvcache_free(cr);
    CHECK_OK(mt_model_forward(m, c32, toks, T, a, 1, &e), &e);
    double wb = 0;
    for (size_t i = 0; i < T * V; i++) {
        double d = fabs(a[i] - b[i]) / (1 + fabs(a[i]));
        wb = d > wb || d != d ? d : wb;
    }
    /* > 0: the two paths sum in different orders, so the blocks did run */
    CHECK_MSG(wb < 1e-4 && wb > 0, "%zu-token prefill, attention in blocks vs row by row: worst relative logit difference %.3g",
              T, wb);
    /* a second prompt chunk onto a cache that already holds 120 tokens
     * (mlx-gen's prefill steps, prompt caches): blocks vs rows again */
    double wc = 0;
    float *ca = malloc(2 * (T - 120) * V * sizeof *ca), *cb = ca + (T - 120) * V;
    for (int rows = 0; rows < 2; rows++) {
        mt_kvcache *cc = NULL;
        CHECK_OK(mt_kvcache_new(&cc, m, &e), &e);
        m->attn_block_min = rows ? SIZE_MAX : 16;
        CHECK_OK(mt_model_forward(m, cc, toks, 120, rows ? cb : ca, 0, &e), &e);
        CHECK_OK(mt_model_forward(m, cc, toks + 120, T - 120, rows ? cb : ca, 1, &e), &e);
        CHECK(cc->len == T);
        mt_kvcache_free(cc);
    }
    m->attn_block_min = 16;
    for (size_t i = 0; i < (T - 120) * V; i++) {
        double d = fabs(ca[i] - cb[i]) / (1 + fabs(ca[i]));
        wc = d > wc || d != d ? d : wc;
    }
    free(ca);
    CHECK_MSG(wc < 1e-4 && wc > 0, "prefill onto 120 cached tokens, blocks vs rows: worst relative logit difference %.3g", wc);
    printf("  tinydocs-5m-4bit %zu-token prefill: attention in blocks vs row by row: max rel diff %.2e (onto 120 cached: %.2e)\n",
           T, wb, wc);
    CHECK_OK(mt_model_forward(m, c16, toks, T, b, 1, &e), &e);
    double worst = 0;
    for (size_t i = 0; i < T * V; i++) {
        double d = fabs(a[i] - b[i]) / (1 + fabs(a[i]));
        worst = d > worst || d != d ? d : worst;
    }
    CHECK_MSG(worst < 1e-2 && worst > 0, "f16 KV cache: worst relative logit difference %.3g", worst);
    int32_t t32 = mt_argmax(a + (T - 1) * V, V), t16 = mt_argmax(b + (T - 1) * V, V);
    int same = 0;
    for (int i = 0; i < 48 && t32 == t16; i++, same++) {
        CHECK_OK(mt_model_forward(m, c32, &t32, 1, a, 0, &e), &e);
        CHECK_OK(mt_model_forward(m, c16, &t16, 1, b, 0, &e), &e);
        t32 = mt_argmax(a, V);
        t16 = mt_argmax(b, V);
    }
    CHECK_MSG(same == 48, "f16 KV cache: greedy tokens agree for %d of 48", same);
    printf("  tinydocs-5m-4bit f16 KV: logits max rel diff %.2e, greedy %d/48\n", worst, same);
    mt_kvcache_free(c32);
    mt_kvcache_free(c16);
    free(a);
    free(b);
    mt_model_free(m);
}

/* ---- nonsense hyper-parameters are refused at load, naming config.json and the key ---- */


/* Load the folder dir (a changed copy of src: an encoder under tests/data/embed/,
 * else a decoder) and free what loaded; returns the load's status. */
static int load_and_free(const char *src, const char *dir, mt_pool *pool, mt_err *e) {
    if (strstr(src, "/embed/")) {
        mt_encoder *enc = NULL;
        int rc = mt_encoder_load(&enc, dir, pool, e);
        mt_encoder_free(enc);
        return rc;
    }
    mt_model *m = NULL;
    int rc = mt_model_load(&m, dir, pool, e);
    mt_model_free(m);
    return rc;
}

/* A copy of model folder src (files symlinked) whose `file` (config.json or
 * generation_config.json) has key set to the JSON text val (NaN / Infinity as
 * Python's json writes them allowed).  Returns the malloc'd folder, or NULL. */
static char *variant(const char *src, const char *file, const char *key, const char *val) {
    const char *const skip[] = {file, NULL};
    char *dir = fixture_copy(src, "mt_validate", skip);
    if (!dir) return NULL;
    char *sp = mt_path_join(src, file), *dp = mt_path_join(dir, file);
    json_t *j = mt_file_exists(sp) ? json_load_file(sp, 0, NULL) : json_object();
    json_object_set_new(j, key, json_string("@@VALUE@@"));
    char *text = json_dumps(j, JSON_INDENT(1));
    char *at = text ? strstr(text, "\"@@VALUE@@\"") : NULL;
    FILE *f = fopen(dp, "w");
    if (f && at) fprintf(f, "%.*s%s%s", (int)(at - text), text, val, at + strlen("\"@@VALUE@@\""));
    if (f) fclose(f);
    free(text);
    json_decref(j);
    free(sp);
    free(dp);
    return dir;
}


static void test_config_checks(mt_pool *pool) {
    static const struct { const char *src, *file, *key, *val, *want; } cases[] = {
#define L "tests/data/models/llama-tiny"
#define C "config.json"
        {L, C, "rms_norm_eps", "-1", "config.json: \"rms_norm_eps\" must be a finite, non-negative number (got -1)"},
        {L, C, "rms_norm_eps", "NaN", "config.json: \"rms_norm_eps\" is NaN"},
        {L, C, "rms_norm_eps", "Infinity", "config.json: \"rms_norm_eps\" must be a finite, non-negative number"},
        {L, C, "rope_theta", "0", "config.json: \"rope_theta\" must be a finite, positive number (got 0)"},
        {L, C, "rope_theta", "-10000", "config.json: \"rope_theta\" must be a finite, positive number"},
        {L, C, "rope_theta", "NaN", "config.json: \"rope_theta\" is NaN"},
        {L, C, "max_position_embeddings", "0", "config.json: \"max_position_embeddings\" must be a finite, positive number"},
        {L, C, "max_position_embeddings", "-512", "config.json: \"max_position_embeddings\" must be a finite, positive"},
        {L, C, "num_hidden_layers", "0", "config.json: \"num_hidden_layers\" must be a positive integer (got 0)"},
        {L, C, "hidden_size", "-64", "config.json: \"hidden_size\" must be a positive integer (got -64)"},
        {L, C, "num_attention_heads", "0", "config.json: \"num_attention_heads\" must be a positive integer"},
        {L, C, "num_key_value_heads", "0", "config.json: \"num_key_value_heads\" must be a positive integer"},
        {L, C, "num_key_value_heads", "3", "config.json: num_attention_heads 4 is not a multiple of num_key_value_heads 3"},
        {L, C, "vocab_size", "0", "config.json: \"vocab_size\" must be a positive integer"},
        {L, C, "intermediate_size", "-128", "config.json: \"intermediate_size\" must be a positive integer"},
        {L, C, "head_dim", "0", "config.json: \"head_dim\" must be a positive integer"},
        {L, C, "head_dim", "-16", "config.json: \"head_dim\" must be a positive integer"},
        {L, C, "eos_token_id", "384", "config.json: \"eos_token_id\" 384 is outside the vocabulary [0, 384)"},
        {L, C, "eos_token_id", "[2, -1]", "config.json: \"eos_token_id\" -1 is outside the vocabulary [0, 384)"},
        {L, "generation_config.json", "eos_token_id", "[2, 1000]",
         "generation_config.json: \"eos_token_id\" 1000 is outside the vocabulary [0, 384)"},
        {L, C, "rope_scaling", "{\"type\": \"linear\", \"factor\": 0}",
         "config.json: \"rope_scaling.factor\" must be a finite, positive number (got 0)"},
        {L, C, "rope_scaling", "{\"type\": \"dynamic\", \"factor\": -2}", "config.json: \"rope_scaling.factor\" must be"},
        {L, C, "rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8, \"low_freq_factor\": -1}",
         "config.json: \"rope_scaling.low_freq_factor\" must be a finite, positive number"},
        {L, C, "rope_scaling", "{\"type\": \"yarn\", \"factor\": 4, \"original_max_position_embeddings\": 0}",
         "config.json: \"rope_scaling.original_max_position_embeddings\" must be"},
        {L, C, "rope_scaling", "{\"type\": \"linear\", \"factor\": NaN}", "config.json: \"rope_scaling.factor\" is NaN"},
#undef L
        {"tests/data/models/gemma3-tiny", C, "rope_local_base_freq", "0", "config.json: \"rope_local_base_freq\" must be"},
        {"tests/data/models/gemma3-tiny", C, "query_pre_attn_scalar", "-1", "config.json: \"query_pre_attn_scalar\" must be"},
        {"tests/data/models/gemma2-tiny", C, "final_logit_softcapping", "-30", "config.json: \"final_logit_softcapping\" must"},
        {"tests/data/models/starcoder2-tiny", C, "norm_epsilon", "-1e-05", "config.json: \"norm_epsilon\" must be a finite, non-neg"},
        {"tests/data/models/starcoder2-tiny", C, "rope_theta", "0", "config.json: \"rope_theta\" must be a finite, positive"},
        {"tests/data/models/phi3-tiny", C, "partial_rotary_factor", "0", "config.json: \"partial_rotary_factor\" must be"},
        {"tests/data/models/mixtral-tiny", C, "num_experts_per_tok", "5", "config.json: num_experts_per_tok 5 exceeds num_local_experts 4"},
        /* gated DeltaNet (qwen3_next) */
        {"tests/data/models/qwen3next-tiny", C, "linear_num_value_heads", "3",
         "config.json: linear_num_value_heads 3 is not a multiple of linear_num_key_heads 2"},
        {"tests/data/models/qwen3next-tiny", C, "linear_conv_kernel_dim", "0",
         "config.json: \"linear_conv_kernel_dim\" must be a positive integer (got 0)"},
        {"tests/data/models/qwen3next-tiny", C, "partial_rotary_factor", "2",
         "config.json: \"partial_rotary_factor\" must be at most 1 (got 2)"},
        {"tests/data/models/qwen3next-tiny", C, "full_attention_interval", "0",
         "config.json: \"full_attention_interval\" must be a positive integer"},
        /* dense group A (dense_a.c) */
        {"tests/data/models/phi-tiny", C, "partial_rotary_factor", "1.5", "config.json: \"partial_rotary_factor\" must be at most 1 (got 1.5)"},
        {"tests/data/models/phi-tiny", C, "layer_norm_eps", "-1", "config.json: \"layer_norm_eps\" must be a finite, non-neg"},
        {"tests/data/models/cohere-tiny", C, "logit_scale", "0", "config.json: \"logit_scale\" must not be 0"},
        {"tests/data/models/cohere-tiny", C, "use_qk_norm", "1", "config.json: \"use_qk_norm\" must be true or false"},
        {"tests/data/models/cohere2-tiny", C, "sliding_window_pattern", "5", "config.json: sliding_window_pattern 5 exceeds num_hidden_layers 4"},
        {"tests/data/models/cohere2-tiny", C, "sliding_window", "0", "config.json: \"sliding_window\" must be a positive integer"},
        {"tests/data/models/internlm2-tiny", C, "rope_scaling", "{\"type\": \"yarn\", \"factor\": 2}",
         "config.json: rope_scaling type \"yarn\" (mlx-lm takes only linear or dynamic for internlm2)"},
        /* a per-module quantization key names the checkpoint's module (through the family's renames),
         * and so do the messages */
        {"tests/data/models/internlm2-tiny-4bit", C, "quantization",
         "{\"group_size\": 32, \"bits\": 4, \"mode\": \"affine\", \"model.layers.0.attention.wqkv\": {\"group_size\": 64, \"bits\": 4}}",
         "tensor 'model.layers.0.attention.wqkv.scales': dim 1 is 2, expected 1"},
        {"tests/data/models/exaone-tiny", C, "intermediate_size", "96", "tensor 'transformer.h.0.mlp.c_fc_0.weight': dim 0 is 128, expected 96"},
        {"tests/data/models/internlm3-tiny", C, "rope_scaling", "{\"type\": \"linear\", \"factor\": 2}",
         "config.json: rope_scaling must hold \"factor\" and \"rope_type\""},
        {"tests/data/models/glm4-tiny", C, "partial_rotary_factor", "0", "config.json: \"partial_rotary_factor\" must be a finite, pos"},
        {"tests/data/models/glm4-tiny", C, "head_dim", "null", "config.json: missing \"head_dim\""},
        {"tests/data/models/exaone4-tiny", C, "sliding_window_pattern", "\"LLLL\"", "config.json: \"sliding_window_pattern\" must be a string of L and G"},
        {"tests/data/models/exaone4-tiny", C, "sliding_window", "null", "config.json: missing \"sliding_window\""},
        {"tests/data/models/ernie45-tiny", C, "use_bias", "null", "config.json: missing \"use_bias\" (true or false)"},
        {"tests/data/models/olmo3-tiny", C, "layer_types", "[\"full_attention\", \"full_attention\", \"full_attention\", \"full_attention\"]",
         "config.json: olmo3 needs both sliding and full attention layers"},
        {"tests/data/models/olmo3-tiny", C, "layer_types", "[\"sliding_attention\"]", "config.json: \"layer_types\" must list 4 layers"},
        {"tests/data/models/minicpm-tiny", C, "dim_model_base", "0", "config.json: \"dim_model_base\" must be a finite, positive"},
        {"tests/data/models/minicpm-tiny", C, "scale_emb", "null", "config.json: missing \"scale_emb\""},
        {"tests/data/models/exaone-tiny", C, "num_layers", "0", "config.json: \"num_layers\" must be a positive integer (got 0)"},
        {"tests/data/models/exaone-tiny", C, "layer_norm_epsilon", "-1", "config.json: \"layer_norm_epsilon\" must be a finite, non-neg"},
        {"tests/data/models/helium-tiny", C, "mlp_bias", "null", "config.json: missing \"mlp_bias\" (true or false)"},
        {"tests/data/models/olmo-tiny", C, "mlp_hidden_size", "255", "config.json: \"mlp_hidden_size\" 255 must be even"},
        {"tests/data/models/olmo-tiny", C, "embedding_size", "null", "config.json: missing \"embedding_size\""},
        {"tests/data/models/glm-tiny", C, "head_dim", "12", "tensor 'model.layers.0.self_attn.q_proj.weight'"},
        /* multi-head latent attention and the DeepSeek-style mixture of experts */
        {"tests/data/models/deepseek_v3-tiny", C, "kv_lora_rank", "0", "config.json: \"kv_lora_rank\" must be a positive integer"},
        {"tests/data/models/deepseek_v3-tiny", C, "qk_rope_head_dim", "7", "config.json: \"qk_rope_head_dim\" 7 must be even"},
        {"tests/data/models/deepseek_v3-tiny", C, "n_group", "3", "config.json: n_group 3 does not divide n_routed_experts 8"},
        {"tests/data/models/deepseek_v3-tiny", C, "topk_group", "3", "config.json: topk_group 3 exceeds n_group 2"},
        {"tests/data/models/deepseek_v3-tiny", C, "routed_scaling_factor", "NaN", "config.json: \"routed_scaling_factor\" is NaN"},
        {"tests/data/models/kimi_k2-tiny", C, "num_experts_per_tok", "9", "config.json: num_experts_per_tok 9 exceeds n_routed_experts 8"},
        {"tests/data/models/deepseek_v2-tiny", C, "rope_scaling", "null", "config.json: mlx-lm's deepseek_v2 needs a \"rope_scaling\""},
        {"tests/data/models/glm4_moe-tiny", C, "partial_rotary_factor", "0", "config.json: \"partial_rotary_factor\" must be"},
        {"tests/data/models/dots1-tiny", C, "first_k_dense_replace", "-1", "config.json: \"first_k_dense_replace\" must be a non-neg"},
        {"tests/data/models/mistral4-tiny", C, "rope_parameters", "{\"rope_type\": \"default\", \"rope_theta\": 10000}",
         "config.json: mistral4 needs rope_parameters.llama_4_scaling_beta"},
        {"tests/data/models/minicpm3-tiny", C, "rope_scaling", "null", "config.json: mlx-lm's minicpm3 needs a \"rope_scaling\""},
        /* the MoE router's options (moe.c) */
        {"tests/data/models/qwen2moe-tiny", C, "shared_expert_intermediate_size", "0", "config.json: \"shared_expert_intermediate_size\" must be"},
        {"tests/data/models/olmoe-tiny", C, "num_experts_per_tok", "9", "config.json: num_experts_per_tok 9 exceeds num_experts 4"},
        {"tests/data/models/phimoe-tiny", C, "router_jitter_noise", "-0.1", "config.json: \"router_jitter_noise\" must be a finite, non-neg"},
        {"tests/data/models/ernie45moe-tiny", C, "moe_gate_act", "\"relu\"", "config.json: \"moe_gate_act\" must be \"softmax\" or \"sigmoid\""},
        {"tests/data/models/ernie45moe-tiny", C, "moe_layer_start_index", "[]", "config.json: \"moe_layer_start_index\" must be a layer number"},
        {"tests/data/models/bailing-tiny", C, "score_function", "\"relu\"", "config.json: \"score_function\" must be \"softmax\" or \"sigmoid\""},
        {"tests/data/models/bailing-tiny", C, "n_group", "3", "config.json: 8 experts do not split into 3 groups"},
        {"tests/data/models/hunyuan-tiny", C, "moe_topk", "9", "config.json: moe_topk 9 does not fit 4 experts"},
        {"tests/data/models/minimax-tiny", C, "rotary_dim", "0", "config.json: \"rotary_dim\" must be a positive"},
        {"tests/data/models/llama4text-tiny", C, "no_rope_layers", "[1]", "config.json: \"no_rope_layers\" must list 2 layers"},
        {"tests/data/models/dbrx-tiny", C, "ffn_config", "{\"ffn_hidden_size\": 32, \"moe_num_experts\": 4, \"moe_top_k\": 5}",
         "config.json: moe_top_k 5 does not fit 4 experts"},
        {"tests/data/models/dbrx-tiny", C, "attn_config", "{\"kv_n_heads\": 2, \"clip_qkv\": -1, \"rope_theta\": 10000}",
         "config.json: \"clip_qkv\" must be a finite, positive"},
        {"tests/data/models/hunyuandense-tiny", C, "rope_scaling", "{\"alpha\": -1, \"factor\": 1.0, \"type\": \"dynamic\"}",
         "config.json: \"rope_scaling.alpha\" must be a positive number"},
        /* GPT-style families (dense_b.c, openelm.c) */
        {"tests/data/models/gptneox-tiny", C, "rotary_pct", "0", "config.json: \"rotary_pct\" must be a finite, positive"},
        {"tests/data/models/gptneox-tiny", C, "rotary_pct", "1.5", "config.json: \"rotary_pct\" 1.5 gives 24 rotary dimensions"},
        {"tests/data/models/gptneox-tiny", C, "rotary_emb_base", "-1", "config.json: \"rotary_emb_base\" must be a finite, pos"},
        {"tests/data/models/gptneox-tiny", C, "layer_norm_eps", "-1", "config.json: \"layer_norm_eps\" must be a finite, non-neg"},
        {"tests/data/models/stablelm-tiny", C, "use_qkv_bias", "null", "config.json: missing \"use_qkv_bias\""},
        {"tests/data/models/gpt2-tiny", C, "n_embd", "0", "config.json: \"n_embd\" must be a positive integer (got 0)"},
        {"tests/data/models/gpt2-tiny", C, "n_embd", "66", "config.json: n_embd 66 is not a multiple of n_head 4"},
        {"tests/data/models/gpt2-tiny", C, "n_positions", "0", "config.json: \"n_positions\" must be a positive integer"},
        {"tests/data/models/gpt2-tiny", C, "layer_norm_epsilon", "-1", "config.json: \"layer_norm_epsilon\" must be a finite"},
        {"tests/data/models/gptbigcode-tiny", C, "n_inner", "0", "config.json: \"n_inner\" must be a positive integer"},
        {"tests/data/models/gptbigcode-tiny", C, "multi_query", "1", "config.json: \"multi_query\" must be true or false"},
        {"tests/data/models/gptj-tiny", C, "rotary_dim", "9", "config.json: \"rotary_dim\" 9 must be even and at most the head size 16"},
        {"tests/data/models/gptj-tiny", C, "rotary_dim", "-8", "config.json: \"rotary_dim\" must be a positive integer"},
        {"tests/data/models/nemotron-tiny", C, "norm_eps", "-1", "config.json: \"norm_eps\" must be a finite, non-negative"},
        {"tests/data/models/nemotron-tiny", C, "partial_rotary_factor", "0.01", "config.json: \"partial_rotary_factor\" 0.01 gives 0"},
        {"tests/data/models/seedoss-tiny", C, "head_dim", "null", "config.json: missing \"head_dim\""},
        {"tests/data/models/apertus-tiny", C, "rope_theta", "null", "config.json: missing \"rope_theta\""},
        {"tests/data/models/bitnet-tiny", C, "head_dim", "8", "config.json: 4 heads of 8 do not make hidden_size 64"},
        {"tests/data/models/openelm-tiny", C, "num_query_heads", "[4, 8]", "config.json: \"num_query_heads\" must list 3 numbers"},
        {"tests/data/models/openelm-tiny", C, "ffn_multipliers", "[0.5, -2, 1]", "config.json: \"ffn_multipliers\"[1] must be a positive"},
        {"tests/data/models/openelm-tiny", C, "num_kv_heads", "[1, 2.5, 1]", "config.json: layer 1: head counts and ffn_dim_divisor must"},
        {"tests/data/models/olmo-tiny", C, "d_model", "0", "config.json: \"d_model\" must be a positive integer"},
        {"tests/data/models/nanochat-tiny", C, "num_attention_heads", "6", "config.json: hidden_size 64 is not a multiple of num_attention_heads 6"},
        {"tests/data/models/nanochat-tiny", C, "rope_theta", "0", "config.json: \"rope_theta\" must be a finite, positive"},
        {"tests/data/models/bitnet-tiny", C, "intermediate_size", "130", "'model.layers.0.mlp.gate_proj': 130 output rows are not"},
        {"tests/data/models/apertus-tiny", C, "num_attention_heads", "6", "config.json: hidden_size 64 is not a multiple of num_attention_heads 6"},
        {"tests/data/models/seedoss-tiny", C, "attention_out_bias", "0", "config.json: \"attention_out_bias\" must be true or"},
        /* gpt_oss: experts, sliding layers */
        {"tests/data/models/gptoss-tiny", C, "num_experts_per_tok", "5", "config.json: num_experts_per_tok 5 exceeds num_local_experts 4"},
        {"tests/data/models/gptoss-tiny", C, "num_local_experts", "0", "config.json: \"num_local_experts\" must be a positive integer"},
        {"tests/data/models/gptoss-tiny", C, "sliding_window", "0", "config.json: \"sliding_window\" must be a positive integer"},
        {"tests/data/models/gptoss-tiny", C, "layer_types", "[\"sliding_attention\"]", "config.json: \"layer_types\" must list 2 layers"},
        /* gemma4: KV sharing, layer types, the MoE block, per-layer inputs */
        {"tests/data/models/gemma4-tiny", C, "num_kv_shared_layers", "4", "config.json: num_kv_shared_layers 4 must be below num_hidden_layers 4"},
        {"tests/data/models/gemma4-tiny", C, "layer_types", "[\"sliding_attention\", \"sliding_attention\", \"full_attention\", \"full_attention\"]",
         "config.json: KV-shared layer 2 (num_kv_shared_layers 2) has no earlier full layer"},
        {"tests/data/models/gemma4-tiny", C, "layer_types", "[\"sliding_attention\", \"global\", \"sliding_attention\", \"full_attention\"]",
         "config.json: \"layer_types\"[1] must be \"sliding_attention\" or \"full_attention\""},
        {"tests/data/models/gemma4-tiny", C, "global_head_dim", "33", "config.json: head_dim 16 and global_head_dim 33 must be even"},
        {"tests/data/models/gemma4-tiny", C, "hidden_size_per_layer_input", "8", "tensor 'model.embed_tokens_per_layer.weight'"},
        {"tests/data/models/gemma4moe-tiny", C, "top_k_experts", "5", "config.json: top_k_experts 5 exceeds num_experts 4"},
        {"tests/data/models/gemma4moe-tiny", C, "num_experts", "null", "config.json: missing \"num_experts\""},
        /* recurrent-state mixers */
        {"tests/data/models/lfm2-tiny", C, "conv_L_cache", "0", "config.json: \"conv_L_cache\" must be a positive integer"},
        {"tests/data/models/lfm2-tiny", C, "layer_types", "[\"conv\", \"conv\"]", "config.json: \"layer_types\" must list 3 layers"},
        {"tests/data/models/lfm2moe-tiny", C, "num_experts_per_tok", "5", "config.json: num_experts_per_tok 5 exceeds num_experts 4"},
        {"tests/data/models/lfm2moe-tiny", C, "num_dense_layers", "-1", "config.json: \"num_dense_layers\" must be a non-negative integer"},
        {"tests/data/models/lfm2moe-tiny", C, "use_expert_bias", "null", "config.json: missing \"use_expert_bias\""},
        {"tests/data/models/baichuanm1-tiny", C, "conv_window", "3", "config.json: \"conv_window\" must be 2"},
        {"tests/data/models/baichuanm1-tiny", C, "sliding_window_layers", "[1, 3]", "config.json: \"sliding_window_layers\"[1] is not a layer number below 3"},
        {"tests/data/models/baichuanm1-tiny", C, "num_swa_key_value_heads", "3", "config.json: kv head counts 2 and 3 must divide"},
        {"tests/data/models/mamba2-tiny", C, "n_groups", "3", "config.json: 8 Mamba-2 heads do not split into n_groups 3"},
        {"tests/data/models/mamba2-tiny", C, "time_step_limit", "[2.0, 0.01]", "config.json: \"time_step_limit\" must be [min, max]"},
        {"tests/data/models/mamba-tiny", C, "time_step_rank", "0", "config.json: \"time_step_rank\" must be a positive integer"},
        {"tests/data/models/mamba-tiny", C, "state_size", "-8", "config.json: \"state_size\" must be a positive integer"},
        {"tests/data/models/nemotron-h-tiny", C, "hybrid_override_pattern", "\"M*X\"", "config.json: layer 2's block type is not one of"},
        {"tests/data/models/falcon-h1-tiny", C, "mamba_d_ssm", "96", "config.json: mamba_d_ssm 96 is not mamba_n_heads 8 x mamba_d_head 16"},
        {"tests/data/models/jamba-tiny", C, "attn_layer_period", "0", "config.json: \"attn_layer_period\" must be a positive integer"},
        {"tests/data/models/jamba-tiny", C, "mamba_expand", "0", "config.json: \"mamba_expand\" must be a positive integer"},
        {"tests/data/models/granitemoehybrid-tiny", C, "layer_types", "[\"mamba\", \"mlp\", \"mamba\"]",
         "config.json: \"layer_types\"[1] must be \"mamba\" or \"attention\""},
        /* the quantization block must describe the packed tensors (fp modes: one-byte scales, no biases) */
        {"tests/data/models/llama-fpq-mxfp4", C, "quantization", "{\"group_size\": 32, \"bits\": 4, \"mode\": \"affine\"}",
         "tensor 'model.embed_tokens.scales': dtype U8, expected a float type"},
        {"tests/data/models/llama-fpq-mxfp4", C, "quantization", "{\"group_size\": 32, \"bits\": 8, \"mode\": \"mxfp8\"}",
         "tensor 'model.embed_tokens.weight': dim 1 is 8, expected 16"},
        {"tests/data/models/llama-fpq-nvfp4", C, "quantization", "{\"group_size\": 32, \"bits\": 4, \"mode\": \"mxfp4\"}",
         "tensor 'model.embed_tokens.scales': dim 1 is 4, expected 2"},
        /* decoder embedders load through the same code */
        {"tests/data/embed/qwen3-tiny", C, "rms_norm_eps", "-1", "config.json: \"rms_norm_eps\" must be a finite, non-neg"},
        {"tests/data/embed/qwen3-tiny", C, "max_position_embeddings", "0", "config.json: \"max_position_embeddings\" must"},
        /* encoders: the same checks */
        {"tests/data/embed/bert-tiny", C, "layer_norm_eps", "-1", "config.json: \"layer_norm_eps\" must be a finite, non-neg"},
        {"tests/data/embed/bert-tiny", C, "layer_norm_eps", "NaN", "config.json: \"layer_norm_eps\" is NaN"},
        {"tests/data/embed/bert-tiny", C, "max_position_embeddings", "0", "config.json: \"max_position_embeddings\" must be a pos"},
        {"tests/data/embed/bert-tiny", C, "num_attention_heads", "0", "config.json: \"num_attention_heads\" must be a positive"},
        {"tests/data/embed/bert-tiny", C, "hidden_size", "30", "config.json: hidden_size 30 is not a multiple of num_attention_heads 4"},
        {"tests/data/embed/nomic-tiny", C, "layer_norm_eps", "-1", "config.json: \"layer_norm_eps\" must be a finite, non-neg"},
        {"tests/data/embed/nomic-tiny", C, "rope_parameters", "{\"rope_theta\": 0, \"rope_type\": \"default\"}",
         "config.json: \"rope_parameters.rope_theta\" must be a finite, positive number (got 0)"},
        {"tests/data/embed/nomic-tiny", C, "rotary_emb_base", "-1000", "config.json: \"rotary_emb_base\" must be"},
        {"tests/data/embed/nomic-tiny", C, "max_position_embeddings", "0", "config.json: \"max_position_embeddings\" must be"},
        {"tests/data/embed/modernbert-tiny", C, "norm_eps", "-1", "config.json: \"norm_eps\" must be a finite, non-negative"},
        {"tests/data/embed/modernbert-tiny", C, "global_rope_theta", "0", "config.json: \"global_rope_theta\" must be"},
        {"tests/data/embed/modernbert-tiny", C, "rope_parameters",
         "{\"full_attention\": {\"rope_theta\": -1, \"rope_type\": \"default\"}}",
         "config.json: \"rope_parameters.full_attention.rope_theta\" must be"},
#undef C
    };
    size_t refused = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *dir = variant(cases[i].src, cases[i].file, cases[i].key, cases[i].val);
        CHECK(dir != NULL);
        if (!dir) continue;
        mt_err e = {0};
        int rc = load_and_free(cases[i].src, dir, pool, &e);
        CHECK_MSG(rc == MT_EFORMAT && strstr(e.msg, cases[i].want), "%s %s: %s = %s: rc %d, '%s' (want '%s')",
                  cases[i].src, cases[i].file, cases[i].key, cases[i].val, rc, e.msg, cases[i].want);
        refused += rc == MT_EFORMAT;
        fixture_copy_free(dir);
    }
    /* the same folders with sane values still load */
    static const struct { const char *src, *key, *val; } fine[] = {
        {"tests/data/models/llama-tiny", "rms_norm_eps", "0"},
        {"tests/data/models/llama-tiny", "eos_token_id", "[2, 383]"},
        {"tests/data/models/llama-tiny", "rope_scaling", "{\"type\": \"linear\", \"factor\": 2}"},
        {"tests/data/embed/bert-tiny", "layer_norm_eps", "1e-5"},
        {"tests/data/models/gptj-tiny", "rotary_dim", "null"},   /* mlx-lm: the whole head */
        {"tests/data/models/olmo-tiny", "hidden_size", "4096"},   /* transformers 5 writes one: mlx-lm reads d_model */
        {"tests/data/models/gptoss-tiny", "layer_types", "null"},   /* mlx-lm's default: sliding, full, ... */
    };
    for (size_t i = 0; i < sizeof fine / sizeof *fine; i++) {
        char *dir = variant(fine[i].src, "config.json", fine[i].key, fine[i].val);
        CHECK(dir != NULL);
        if (!dir) continue;
        mt_err e = {0};
        int rc = load_and_free(fine[i].src, dir, pool, &e);
        CHECK_MSG(rc == 0, "%s: %s = %s: %s", fine[i].src, fine[i].key, fine[i].val, e.msg);
        fixture_copy_free(dir);
    }
    printf("  config checks: %zu of %zu nonsense configs refused\n", refused, sizeof cases / sizeof *cases);
}

/* ---- learned absolute positions (gpt2): the context ends at n_positions ---- */
static void test_learned_positions(mt_pool *pool) {
    mt_err e = {0};
    mt_model *m = NULL;
    CHECK_OK(mt_model_load(&m, "tests/data/models/gpt2-tiny", pool, &e), &e);
    if (!m) return;
    size_t np = (size_t)m->hp.n_positions, V = (size_t)m->hp.vocab;
    CHECK(np == 512 && m->ctx_len == np && strstr(m->ctx_why, "n_positions"));
    int32_t *tok = calloc(np + 1, sizeof *tok);
    float *lg = malloc(V * sizeof *lg);
    for (size_t i = 0; i <= np; i++) tok[i] = (int32_t)(i * 31 % V);
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    CHECK_OK(mt_model_forward(m, c, tok, np - 1, lg, 0, &e), &e);
    int rc = mt_model_forward(m, c, tok, 2, lg, 0, &e);   /* positions 511, 512: past the table */
    CHECK_MSG(rc == MT_EINVAL && strstr(e.msg, "position 512 is past the model's 512 learned positions") && c->len == np - 1,
              "rc %d: %s (len %zu)", rc, e.msg, c->len);
    CHECK_OK(mt_model_forward(m, c, tok, 1, lg, 0, &e), &e);   /* the last position is fine */
    CHECK(c->len == np && mt_model_forward(m, c, tok, 1, lg, 0, &e) == MT_EINVAL);
    printf("  gpt2-tiny: %zu learned positions, the next one refused: %s\n", np, e.msg);
    mt_kvcache_free(c);
    free(tok);
    free(lg);
    mt_model_free(m);
}

/* ---- NaN in the weights: the affected record fails, the others do not ---- */

/* Copy of src with row `row` of tensor `name` (F32, 2-D) set to NaN (the rest symlinked). */
static char *nan_variant(const char *src, const char *name, int row) {
    char *dir = variant(src, "generation_config.json", "unused", "0");
    if (!dir) return NULL;
    char *sp = mt_path_join(src, "model.safetensors"), *dp = mt_path_join(dir, "model.safetensors");
    char *buf = NULL;
    size_t len = 0;
    mt_err e = {0};
    int ok = 0;
    unlink(dp);
    if (!mt_read_file(sp, &buf, &len, &e) && len >= 8) {
        uint64_t hl;
        memcpy(&hl, buf, 8);
        json_t *h = hl <= len - 8 ? json_loadb(buf + 8, (size_t)hl, 0, NULL) : NULL;
        json_t *t = json_object_get(h, name);
        json_t *sh = json_object_get(t, "shape");
        size_t begin = (size_t)json_integer_value(json_array_get(json_object_get(t, "data_offsets"), 0));
        size_t cols = (size_t)json_integer_value(json_array_get(sh, 1));
        const char *dt = json_string_value(json_object_get(t, "dtype"));
        if (dt && !strcmp(dt, "F32") && json_array_size(sh) == 2) {
            size_t at = 8 + (size_t)hl + begin + (size_t)row * cols * 4;
            float nan = NAN;
            for (size_t c = 0; c < cols && at + 4 * c + 4 <= len; c++) memcpy(buf + at + 4 * c, &nan, 4);
            FILE *f = fopen(dp, "wb");
            ok = f && fwrite(buf, 1, len, f) == len;
            if (f) fclose(f);
        }
        json_decref(h);
    }
    free(buf);
    free(sp);
    free(dp);
    if (!ok) { fixture_copy_free(dir); return NULL; }
    return dir;
}

/* Load the model folder src and its tokenizer.json (checked); 0 when either failed (both freed). */
static int load_model_tok(const char *src, mt_pool *pool, mt_model **m, mt_tokenizer **tok) {
    mt_err e = {0};
    char *tp = mt_path_join(src, "tokenizer.json");
    CHECK_OK(mt_model_load(m, src, pool, &e), &e);
    CHECK_OK(mt_tokenizer_load(tok, tp, &e), &e);
    free(tp);
    if (*m && *tok) return 1;
    mt_model_free(*m);
    mt_tokenizer_free(*tok);
    *m = NULL;
    *tok = NULL;
    return 0;
}

static void test_nonfinite(mt_pool *pool) {
    const char *src = "tests/data/models/llama-tiny-4bit";   /* untied lm_head: one token's embedding goes NaN */
    mt_err e = {0};
    mt_model *m = NULL;
    mt_tokenizer *tok = NULL;
    if (!load_model_tok(src, pool, &m, &tok)) return;
    int32_t clean[4] = {1, 50, 60, 70};
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = 8;
    mt_gen_result ref;
    CHECK_OK(mt_generate(m, tok, clean, 4, &gp, NULL, NULL, &ref, &e), &e);
    /* a token neither in the clean prompt nor in what it generates */
    int32_t bad = 100;
    for (int again = 1; again;) {
        again = 0;
        for (size_t i = 0; i < ref.n_tokens; i++) if (ref.tokens[i] == bad) { bad++; again = 1; }
    }
    mt_model_free(m);
    m = NULL;
    char *dir = nan_variant(src, "model.embed_tokens.scales", bad);
    CHECK(dir != NULL);
    if (dir) CHECK_OK(mt_model_load(&m, dir, pool, &e), &e);
    if (!m) { mt_gen_result_free(&ref); mt_tokenizer_free(tok); fixture_copy_free(dir); return; }
    const char *want = "model produced non-finite logits at token ";
    int32_t poisoned[4] = {1, 50, bad, 70};
    mt_gen_result res;
    /* alone */
    int rc = mt_generate(m, tok, poisoned, 4, &gp, NULL, NULL, &res, &e);
    CHECK_MSG(rc == MT_EFORMAT && strstr(e.msg, "model produced non-finite logits at token 4 (corrupt weights or config?)"),
              "rc %d '%s'", rc, e.msg);
    if (!rc) mt_gen_result_free(&res);
    rc = mt_generate(m, tok, clean, 4, &gp, NULL, NULL, &res, &e);
    CHECK_OK(rc, &e);
    if (!rc) {
        CHECK(res.n_tokens == ref.n_tokens && !memcmp(res.tokens, ref.tokens, res.n_tokens * sizeof *res.tokens));
        mt_gen_result_free(&res);
    }
    /* in a batch: only the poisoned record fails */
    const int32_t *prompts[3] = {clean, poisoned, clean};
    size_t lens[3] = {4, 4, 4};
    const mt_gen_params *gps[3] = {&gp, &gp, &gp};
    mt_gen_result br[3];
    int rcs[3];
    mt_err errs[3];
    memset(errs, 0, sizeof errs);
    mt_generate_batch(m, tok, prompts, lens, gps, 3, br, rcs, errs);
    CHECK_MSG(rcs[1] == MT_EFORMAT && strstr(errs[1].msg, want), "batch: rc %d '%s'", rcs[1], errs[1].msg);
    for (int b = 0; b < 3; b += 2) {
        CHECK_MSG(rcs[b] == 0, "batch %d: %s", b, errs[b].msg);
        if (rcs[b]) continue;
        CHECK(br[b].n_tokens == ref.n_tokens && !memcmp(br[b].tokens, ref.tokens, ref.n_tokens * sizeof *ref.tokens));
        mt_gen_result_free(&br[b]);
    }
    /* scoring: the first row past the poisoned token is refused, a clean text is scored */
    float lp[4];
    rc = mt_score(m, poisoned, 4, lp, &e);
    CHECK_MSG(rc == MT_EFORMAT && strstr(e.msg, "model produced non-finite logits at token 3 "), "score: rc %d '%s'", rc, e.msg);
    CHECK_OK(mt_score(m, clean, 4, lp, &e), &e);
    CHECK(isfinite(lp[1]) && isfinite(lp[2]) && isfinite(lp[3]));
    mt_gen_result_free(&ref);
    mt_model_free(m);
    mt_tokenizer_free(tok);
    fixture_copy_free(dir);
}

/* ---- a prompt longer than the model's context is refused before any work ---- */

static void test_context(mt_pool *pool) {
    const char *src = "tests/data/models/llama-tiny";   /* max_position_embeddings 512 */
    mt_err e = {0};
    mt_model *m = NULL;
    mt_tokenizer *tok = NULL;
    if (!load_model_tok(src, pool, &m, &tok)) return;
    CHECK_EQ_INT(m->ctx_len, 512);
    enum { N = 513 };
    int32_t ids[N];
    for (size_t i = 0; i < N; i++) ids[i] = (int32_t)(3 + (i * 7919u) % 380u);
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = 4;
    gp.prefill_step = 1;   /* were the prompt run, this would take a while */
    mt_gen_result res;
    int rc = mt_generate(m, tok, ids, N, &gp, NULL, NULL, &res, &e);
    CHECK_MSG(rc == MT_EINVAL && !strcmp(e.msg, "prompt is 513 tokens; the model's context is 512 (max_position_embeddings)"),
              "rc %d '%s'", rc, e.msg);
    if (!rc) mt_gen_result_free(&res);
    /* a prompt that fits: generation may run past the context (not capped) */
    gp.prefill_step = 2048;
    rc = mt_generate(m, tok, ids, N - 1, &gp, NULL, NULL, &res, &e);
    CHECK_OK(rc, &e);
    if (!rc) { CHECK_EQ_INT(res.n_tokens, 4); mt_gen_result_free(&res); }
    /* in a batch: only the long one fails */
    const int32_t *prompts[2] = {ids, ids};
    size_t lens[2] = {N, 8};
    const mt_gen_params *gps[2] = {&gp, &gp};
    mt_gen_result br[2];
    int rcs[2];
    mt_err errs[2];
    memset(errs, 0, sizeof errs);
    mt_generate_batch(m, tok, prompts, lens, gps, 2, br, rcs, errs);
    CHECK_MSG(rcs[0] == MT_EINVAL && strstr(errs[0].msg, "prompt is 513 tokens"), "batch: '%s'", errs[0].msg);
    CHECK_MSG(rcs[1] == 0, "batch: %s", errs[1].msg);
    if (!rcs[1]) mt_gen_result_free(&br[1]);
    float *lp = malloc(N * sizeof *lp);
    rc = mt_score(m, ids, N, lp, &e);
    CHECK_MSG(rc == MT_EINVAL && !strcmp(e.msg, "input is 513 tokens; the model's context is 512 (max_position_embeddings)"),
              "score: rc %d '%s'", rc, e.msg);
    CHECK_OK(mt_score(m, ids, 64, lp, &e), &e);
    free(lp);
    mt_model_free(m);
    mt_tokenizer_free(tok);
    /* where the context comes from */
    static const struct { const char *key, *val; size_t ctx; const char *why; } cases[] = {
        {"rope_scaling", "{\"type\": \"linear\", \"factor\": 4}", 2048, "max_position_embeddings 512 x rope_scaling factor 4"},
        {"rope_scaling", "{\"type\": \"dynamic\", \"factor\": 2}", 0, ""},   /* NTK: any length */
        {"rope_scaling", "{\"type\": \"yarn\", \"factor\": 8, \"original_max_position_embeddings\": 128}", 1024,
         "original_max_position_embeddings 128 x rope_scaling factor 8"},
        {"rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": 8, \"original_max_position_embeddings\": 64}", 512,
         "max_position_embeddings"},
        {"rope_scaling", "{\"type\": \"linear\", \"factor\": 0.5}", 512, "max_position_embeddings"},
        {"max_position_embeddings", "null", 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *dir = variant(src, "config.json", cases[i].key, cases[i].val);
        CHECK(dir != NULL);
        m = NULL;
        if (dir) CHECK_OK(mt_model_load(&m, dir, pool, &e), &e);
        if (m) {
            CHECK_MSG(m->ctx_len == cases[i].ctx && !strcmp(m->ctx_why, cases[i].why), "%s: ctx %zu (%s)", cases[i].val,
                      m->ctx_len, m->ctx_why);
            mt_model_free(m);
        }
        fixture_copy_free(dir);
    }
}

static void test_errors(mt_pool *pool) {
    mt_err e = {0};
    mt_model *m = NULL;
    CHECK(mt_model_load(&m, "tests/data/models/nonexistent", pool, &e) != 0);
    CHECK(m == NULL);
    CHECK(mt_model_load(&m, "tests/data/models/tiny-tokenizer", pool, &e) != 0);
    CHECK(strstr(e.msg, "config.json") != NULL);
}

int main(void) {
    mt_err e = {0};
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    mt_blas_threads(1); /* as the programs: products (and prefill attention) split over the pool */
    size_t nfam = mt_family_count();
    int *seen = calloc(nfam, sizeof *seen);
    DIR *d = opendir("tests/data/models");
    CHECK(d != NULL);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(de->d_name);
    }
    if (d) closedir(d);
    for (size_t i = 0; i < n; i++) {
        char *dir = mt_path_join("tests/data/models", names[i]);
        char *gp = mt_path_join(dir, "golden.json");
        if (mt_file_exists(gp)) run_fixture(dir, pool, seen, nfam);
        free(gp);
        gp = mt_path_join(dir, "maxkv.json");
        if (mt_file_exists(gp)) run_maxkv(dir, pool);
        free(gp);
        free(dir);
        free(names[i]);
    }
    free(names);
    for (size_t i = 0; i < nfam; i++)
        CHECK_MSG(seen[i], "family \"%s\" is registered but has no fixture in tests/data/models", mt_family_at(i)->model_type);
    free(seen);
    test_errors(pool);
    test_config_checks(pool);
    test_nonfinite(pool);
    test_context(pool);
    test_learned_positions(pool);
    test_observer(pool);
    test_observer_names(pool);
    test_kv_f16(pool);
    mt_pool_free(pool);
    return check_report("model");
}
