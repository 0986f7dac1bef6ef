/* test_kvfile.c - KV-state files (kv/kvfile.h) against mlx-lm's prompt-cache files
 * (tests/data/kv, made by tests/gen/gen_kv_goldens.py with mlx-lm 0.32.2), and the
 * shared-prefix store (kv/prefix.h). */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/file.h"
#include "core/pool.h"
#include "gen/generate.h"
#include "kv/kvfile.h"
#include "kv/prefix.h"
#include "models/model.h"
#include "text/tokenizer.h"

static int32_t *ids_of(json_t *a, size_t *n) {
    *n = json_array_size(a);
    int32_t *v = malloc((*n ? *n : 1) * sizeof *v);
    for (size_t i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return v;
}

static int load(const char *dir, mt_pool *pool, mt_model **m, mt_tokenizer **tok) {
    mt_err e = {0};
    char *tp = mt_path_join(dir, "tokenizer.json");
    CHECK_OK(mt_model_load(m, dir, pool, &e), &e);
    CHECK_OK(mt_tokenizer_load(tok, tp, &e), &e);
    free(tp);
    return *m && *tok;
}

/* greedy continuation of `prompt` from `prefix` (NULL: from nothing), n tokens, no eos */
static int greedy(mt_model *m, mt_tokenizer *tok, const mt_kvcache *prefix, const int32_t *pt, const int32_t *prompt,
                  size_t np, int n, mt_gen_result *res) {
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = n;
    gp.kv_f16 = 0;
    gp.prefix = prefix;
    gp.prefix_tokens = pt;
    mt_err e = {0};
    int rc = mt_generate(m, tok, prompt, np, &gp, NULL, NULL, res, &e);
    CHECK_MSG(rc == 0, "generate: %s", e.msg);
    return rc == 0;
}

static int same_ids(const int32_t *a, size_t na, json_t *b) {
    if (na != json_array_size(b)) return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i] != json_integer_value(json_array_get(b, i))) return 0;
    return 1;
}

/* mlx-lm's files load and continue as mlx-lm continues them; our file of the same prefix
 * has the same header (layout, shapes, offsets, metadata) as mlx-lm's */
static void test_golden_case(json_t *cs, mt_pool *pool) {
    const char *name = json_string_value(json_object_get(cs, "case"));
    const char *dir = json_string_value(json_object_get(cs, "model"));
    const char *file = json_string_value(json_object_get(cs, "file"));
    int kv_bits = json_is_integer(json_object_get(cs, "kv_bits")) ? (int)json_integer_value(json_object_get(cs, "kv_bits")) : 0;
    int kv_group = (int)json_integer_value(json_object_get(cs, "kv_group_size"));
    mt_model *m = NULL;
    mt_tokenizer *tok = NULL;
    if (!load(dir, pool, &m, &tok)) return;
    size_t np, ns;
    int32_t *prefix = ids_of(json_object_get(cs, "prefix"), &np), *suffix = ids_of(json_object_get(cs, "suffix"), &ns);
    json_t *want = json_object_get(cs, "continued");
    mt_err e = {0};
    mt_kvfile *f = NULL;
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvfile_read(file, &f, &e), &e);
    if (f) {
        CHECK_EQ_INT(f->layout, 2);
        CHECK_EQ_INT(f->n_layers, m->hp.n_layers);
        CHECK_EQ_INT(f->layers[0].offset, np);
        CHECK(f->tokens == NULL);   /* mlx-lm stores no ids */
        CHECK_OK(mt_kvfile_to_cache(f, m, &c, &e), &e);
    }
    if (c) {
        mt_gen_result r;
        if (greedy(m, tok, c, NULL, suffix, ns, (int)json_array_size(want), &r)) {
            if (!strstr(name, "bf16") && !strstr(name, "hd64_bf16") && !(kv_bits && strstr(dir, "bf16")))
                CHECK_MSG(same_ids(r.tokens, r.n_tokens, want), "%s: continuation after mlx-lm's file differs", name);
            else {   /* mlx computes a bf16 model in bf16, we in float32: report how far they agree */
                size_t k = 0;
                while (k < r.n_tokens && k < json_array_size(want) && r.tokens[k] == json_integer_value(json_array_get(want, k))) k++;
                printf("kvfile: %s: %zu of %zu continued tokens as mlx-lm's (bf16 arithmetic there, float32 here)\n",
                       name, k, json_array_size(want));
                CHECK(k >= 1);
            }
            mt_gen_result_free(&r);
        }
    }
    /* our own cache of the same prefix, written as mlx-lm would: same header */
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = 0;
    gp.kv_f16 = 0;
    gp.snapshot = 1;
    gp.kv_bits = kv_bits;
    gp.kv_group_size = kv_group;
    json_t *mk = json_object_get(cs, "max_kv_size");
    if (json_is_integer(mk)) gp.max_kv_size = (int)json_integer_value(mk);
    mt_gen_result r0;
    if (!strstr(name, "bf16") && mt_generate(m, tok, prefix, np, &gp, NULL, NULL, &r0, &e) == 0) {
        int window[64] = {0};
        mt_model_kv_windows(m, window);
        mt_kvmeta meta = {.kv_heads = m->hp.n_kv_heads, .model = dir, .window = window, .mlx_only = 1};
        char *bytes = NULL;
        size_t len = 0;
        CHECK_OK(mt_kvfile_serialize(r0.prompt_cache, &meta, &bytes, &len, &e), &e);
        const char *hdr = json_string_value(json_object_get(cs, "header"));
        if (bytes && hdr && !strstr(name, "gemma3") && !kv_bits) {   /* mlx keeps 256 quantized rows, we the filled ones */
            size_t hl = 0;
            for (int i = 7; i >= 0; i--) hl = hl << 8 | (unsigned char)bytes[i];
            CHECK_MSG(hl == strlen(hdr) && !memcmp(bytes + 8, hdr, hl), "%s: header differs from mlx-lm's:\n%.*s\n%s",
                      name, (int)hl, bytes + 8, hdr);
            CHECK_EQ_INT(len, json_integer_value(json_object_get(cs, "size")));
        }
        /* ours, read back: the same rows, and the same continuation */
        mt_kvfile *g = NULL;
        mt_kvcache *c2 = NULL;
        if (bytes) CHECK_OK(mt_kvfile_parse(bytes, len, "ours", &g, &e), &e);
        if (g) CHECK_OK(mt_kvfile_to_cache(g, m, &c2, &e), &e);
        if (g && kv_bits) {
            CHECK_EQ_INT(g->layers[0].cls, MT_KVC_QUANTIZED);
            CHECK_EQ_INT(g->layers[0].bits, kv_bits);
        }
        if (c2) {
            mt_gen_result a, b;
            if (greedy(m, tok, c2, NULL, suffix, ns, 16, &a)) {
                if (greedy(m, tok, r0.prompt_cache, NULL, suffix, ns, 16, &b)) {
                    CHECK_MSG(a.n_tokens == b.n_tokens && !memcmp(a.tokens, b.tokens, a.n_tokens * sizeof *a.tokens),
                              "%s: our file continues differently from the cache it was written from", name);
                    mt_gen_result_free(&b);
                }
                mt_gen_result_free(&a);
            }
        }
        mt_kvcache_free(c2);
        mt_kvfile_free(g);
        free(bytes);
        mt_gen_result_free(&r0);
    }
    mt_kvcache_free(c);
    mt_kvfile_free(f);
    free(prefix);
    free(suffix);
    mt_model_free(m);
    mt_tokenizer_free(tok);
}

/* Our files that mlx-lm loaded and continued (tests/data/kv/ours, gen_kv_ours.sh): they read
 * back and re-serialize to the same bytes, and a cache built today has the same header, so
 * what mlx-lm checked is what the writer still writes. */
static void test_ours_case(json_t *cs, json_t *chk, mt_pool *pool) {
    const char *name = json_string_value(json_object_get(cs, "case"));
    const char *dir = json_string_value(json_object_get(cs, "model"));
    json_t *r = json_object_get(json_object_get(chk, "cases"), name);
    if (!r) r = json_object_get(chk, name);
    CHECK_MSG(r && json_is_true(json_object_get(r, "loaded")), "%s: mlx-lm did not load our file", name);
    CHECK_MSG(r && json_is_true(json_object_get(r, "resave_identical")), "%s: mlx-lm re-saves our file differently", name);
    /* mlx continues our file as it continues its own, except on the bfloat16 model whose KV we
     * computed in float32 (its 4-bit caches then flip near-tied tokens) */
    if (!strstr(dir, "bf16"))
        CHECK_MSG(r && json_is_true(json_object_get(r, "continued_eq_golden")), "%s: mlx-lm continues our file differently", name);
    char path[256];
    snprintf(path, sizeof path, "tests/data/kv/ours/%s.kv.zst", name);
    mt_model *m = NULL;
    mt_tokenizer *tok = NULL;
    if (!load(dir, pool, &m, &tok)) return;
    mt_err e = {0};
    mt_kvfile *f = NULL;
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvfile_read(path, &f, &e), &e);
    if (f) CHECK_OK(mt_kvfile_to_cache(f, m, &c, &e), &e);
    int window[64] = {0};
    mt_model_kv_windows(m, window);
    if (c) {
        mt_kvmeta meta = {.kv_heads = f->kv_heads, .model = f->model, .fingerprint = f->fingerprint, .tokens = f->tokens,
                          .n_tokens = f->n_tokens, .text = f->text, .text_len = f->text ? strlen(f->text) : 0,
                          .window = window};
        char *b = NULL;
        size_t n = 0;
        CHECK_OK(mt_kvfile_serialize(c, &meta, &b, &n, &e), &e);
        CHECK_MSG(b && n == f->len && !memcmp(b, f->buf, n), "%s: our file does not re-serialize to its own bytes", name);
        free(b);
    }
    /* built today with the case's settings: the header mlx-lm read */
    size_t np;
    int32_t *prefix = ids_of(json_object_get(cs, "prefix"), &np);
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = 0;
    gp.snapshot = 1;
    if (json_is_integer(json_object_get(cs, "max_kv_size"))) gp.max_kv_size = (int)json_integer_value(json_object_get(cs, "max_kv_size"));
    if (json_is_integer(json_object_get(cs, "kv_bits"))) {
        gp.kv_bits = (int)json_integer_value(json_object_get(cs, "kv_bits"));
        gp.kv_group_size = (int)json_integer_value(json_object_get(cs, "kv_group_size"));
    }
    mt_gen_result r0;
    if (c && mt_generate(m, tok, prefix, np, &gp, NULL, NULL, &r0, &e) == 0) {
        mt_kvmeta a = {.kv_heads = f->kv_heads, .model = f->model, .window = window, .mlx_only = 1};
        char *b1 = NULL, *b2 = NULL;
        size_t n1 = 0, n2 = 0;
        CHECK_OK(mt_kvfile_serialize(c, &a, &b1, &n1, &e), &e);
        CHECK_OK(mt_kvfile_serialize(r0.prompt_cache, &a, &b2, &n2, &e), &e);
        if (b1 && b2) {
            size_t h1 = 0, h2 = 0;
            for (int i = 7; i >= 0; i--) { h1 = h1 << 8 | (unsigned char)b1[i]; h2 = h2 << 8 | (unsigned char)b2[i]; }
            CHECK_MSG(h1 == h2 && n1 == n2 && !memcmp(b1, b2, 8 + h1), "%s: a cache built today has another header", name);
        }
        free(b1);
        free(b2);
        mt_gen_result_free(&r0);
    } else
        CHECK_MSG(0, "%s: %s", name, e.msg);
    free(prefix);
    mt_kvcache_free(c);
    mt_kvfile_free(f);
    mt_model_free(m);
    mt_tokenizer_free(tok);
}

/* A prefix written with its ids and continued equals generating from the whole prompt. */
static void roundtrip_one(const char *dir, int f16, mt_pool *pool, double *worst) {
    int32_t prompt[40];
    for (int i = 0; i < 40; i++) prompt[i] = 1 + (i * 37) % 200;
    mt_model *m = NULL;
    mt_tokenizer *tok = NULL;
    if (!load(dir, pool, &m, &tok)) return;
    mt_err e = {0};
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = 0;
    gp.kv_f16 = f16;
    gp.snapshot = 1;
    mt_gen_result r0, whole, cont;
    size_t P = 29;
    CHECK_OK(mt_generate(m, tok, prompt, P, &gp, NULL, NULL, &r0, &e), &e);
    int window[64] = {0};
    mt_model_kv_windows(m, window);
    mt_kvmeta meta = {.kv_heads = m->hp.n_kv_heads, .model = dir, .tokens = r0.prompt_ids, .n_tokens = r0.n_prompt_ids,
                      .window = window, .fingerprint = "0123"};
    char tmp[] = "/tmp/mt_kvfile_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd >= 0) close(fd);
    CHECK_OK(mt_kvfile_write(tmp, r0.prompt_cache, &meta, 3, NULL, &e), &e);
    mt_kvfile *f = NULL;
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvfile_read(tmp, &f, &e), &e);
    if (f) {
        CHECK(f->compressed);
        CHECK_EQ_INT(f->n_tokens, P);
        CHECK(f->tokens && !memcmp(f->tokens, prompt, P * sizeof *prompt));
        CHECK_STR(f->fingerprint, "0123");
        CHECK_OK(mt_kvfile_to_cache(f, m, &c, &e), &e);
    }
    gp.max_tokens = 12;
    gp.snapshot = 0;
    if (c && mt_generate(m, tok, prompt, 40, &gp, NULL, NULL, &whole, &e) == 0) {
        gp.prefix = c;
        gp.prefix_tokens = f->tokens;
        if (mt_generate(m, tok, prompt + P, 40 - P, &gp, NULL, NULL, &cont, &e) == 0) {
            CHECK_MSG(whole.n_tokens == cont.n_tokens &&
                          !memcmp(whole.tokens, cont.tokens, whole.n_tokens * sizeof *whole.tokens),
                      "%s (%s KV): prefix from a file + suffix differs from the whole prompt", dir, f16 ? "f16" : "f32");
            CHECK_EQ_INT(cont.cached_tokens, P);
            CHECK_EQ_INT(cont.prompt_tokens, 40);
            for (size_t i = 0; i < whole.n_tokens && i < cont.n_tokens; i++) {
                double d = fabs((double)whole.token_logprobs[i] - cont.token_logprobs[i]);
                if (d > *worst) *worst = d;
                /* dynamic NTK RoPE scales by each call's length (as mlx-lm does), so chunking changes
                 * the numbers there; elsewhere only float rounding of the other chunking */
                if (!strstr(dir, "dynrope"))
                    CHECK_MSG(d < (f16 ? 2e-3 : 1e-3), "%s: logprob %zu: %g vs %g", dir, i, whole.token_logprobs[i],
                              cont.token_logprobs[i]);
            }
            mt_gen_result_free(&cont);
        } else
            CHECK_MSG(0, "%s: %s", dir, e.msg);
        /* nothing after the prefix: the last cached token is recomputed */
        mt_gen_result r1;
        gp.max_tokens = 4;
        if (mt_generate(m, tok, NULL, 0, &gp, NULL, NULL, &cont, &e) == 0) {
            gp.prefix = NULL;
            gp.prefix_tokens = NULL;
            if (mt_generate(m, tok, prompt, P, &gp, NULL, NULL, &r1, &e) == 0) {
                CHECK(r1.n_tokens == cont.n_tokens && !memcmp(r1.tokens, cont.tokens, r1.n_tokens * sizeof *r1.tokens));
                mt_gen_result_free(&r1);
            }
            mt_gen_result_free(&cont);
        } else
            CHECK_MSG(0, "%s: %s", dir, e.msg);
        mt_gen_result_free(&whole);
    }
    unlink(tmp);
    mt_kvcache_free(c);
    mt_kvfile_free(f);
    mt_gen_result_free(&r0);
    mt_model_free(m);
    mt_tokenizer_free(tok);
}

/* Every decoder family of the fixtures: a prefix written with its ids and continued equals
 * generating from the whole prompt (tokens; logprobs within float rounding of the different
 * chunking), with float32 and float16 KV. */
static void test_roundtrip(mt_pool *pool) {
    static const char *const fams[] = {"gemma", "gemma2", "gemma3", "granite", "llama", "llama-dynrope", "llama-swa",
                                       "llama-tied", "mistral", "mixtral", "olmo2", "phi3", "qwen2", "qwen3",
                                       "qwen3moe", "smollm3", "starcoder2",
                                       /* dense group A */
                                       "phi", "cohere", "cohere2", "internlm2", "internlm3", "glm4", "exaone4", "ernie45",
                                       "olmo3", "minicpm", "exaone", "helium", "glm", "olmo",
                                       /* GPT-style dense families (models/dense_b.c, openelm.c) */
                                       "gptneox", "stablelm", "gpt2", "gptbigcode", "gptj", "nemotron", "seedoss",
                                       "apertus", "nanochat", "openelm"};
    for (size_t i = 0; i < sizeof fams / sizeof *fams; i++)
        for (int q = 0; q < 2; q++) {
            char dir[128];
            const char *base = fams[i];
            int tiny = !strchr(base, '-');
            snprintf(dir, sizeof dir, "tests/data/models/%s%s%s", base, tiny ? "-tiny" : "", q ? "-4bit" : "");
            double w32 = 0, w16 = 0;
            roundtrip_one(dir, 0, pool, &w32);
            roundtrip_one(dir, 1, pool, &w16);
            printf("kvfile: %-40s max |logprob difference| cached vs whole: f32 KV %.2g, f16 KV %.2g\n", dir, w32, w16);
        }
}

static void test_bad_files(void) {
    mt_err e = {0};
    char *buf = NULL;
    size_t n = 0;
    const char *file = "tests/data/kv/kv_qwen3.safetensors";
    CHECK_OK(mt_read_file(file, &buf, &n, &e), &e);
    if (!buf) return;
    mt_kvfile *f = NULL;
    /* every truncation is refused with the label in the message */
    for (size_t cut = 0; cut < n; cut += n / 97 + 1) {
        e = (mt_err){0};
        int rc = mt_kvfile_parse(buf, cut, "cut.safetensors", &f, &e);
        CHECK_MSG(rc != 0 && strstr(e.msg, "cut.safetensors"), "cut at %zu: rc %d '%s'", cut, rc, e.msg);
        if (!rc) mt_kvfile_free(f);
    }
    /* a class renamed */
    char *bad = malloc(n);
    memcpy(bad, buf, n);
    char *p = memmem(bad, n, "\"1.0\":\"KVCache\"", 15);
    CHECK(p != NULL);
    if (p) {
        memcpy(p + 7, "XVCache", 7);
        CHECK(mt_kvfile_parse(bad, n, "cls", &f, &e) == MT_EFORMAT && strstr(e.msg, "XVCache"));
    }
    /* an offset past the rows */
    memcpy(bad, buf, n);
    mt_kvfile *g = NULL;
    if (mt_kvfile_parse(bad, n, "ok", &g, &e) == 0) {
        const mt_tensor_view *t = NULL;
        for (size_t i = 0; i < g->nt; i++)
            if (!strcmp(g->tv[i].name, "0.2")) t = &g->tv[i];
        if (t) {
            size_t off = (size_t)((const char *)t->data - g->buf);
            int32_t big = 100000;
            memcpy(bad + off, &big, 4);
            CHECK(mt_kvfile_parse(bad, n, "off", &f, &e) == MT_EFORMAT && strstr(e.msg, "offset"));
        }
        mt_kvfile_free(g);
    }
    /* not a prompt cache at all: a model's weights */
    char *w = NULL;
    size_t wn = 0;
    if (mt_read_file("tests/data/models/llama-tiny/model.safetensors", &w, &wn, &e) == 0) {
        CHECK(mt_kvfile_parse(w, wn, "weights", &f, &e) == MT_EFORMAT && strstr(e.msg, "not a prompt-cache file"));
        free(w);
    }
    /* a zstd frame cut short */
    char tmp[] = "/tmp/mt_kvbad_XXXXXX";
    int fd = mkstemp(tmp);
    if (fd >= 0) close(fd);
    size_t zb = 0;
    CHECK_OK(mt_kvfile_write_bytes(tmp, buf, n, 3, &zb, &e), &e);
    char *z = NULL;
    size_t zn = 0;
    if (mt_read_file(tmp, &z, &zn, &e) == 0) {
        CHECK_EQ_INT(zn, zb);
        CHECK(mt_kvfile_parse(z, zn, "whole.kv.zst", &f, &e) == 0);
        if (f) { CHECK(f->compressed); mt_kvfile_free(f); f = NULL; }
        CHECK(mt_kvfile_parse(z, zn / 2, "half.kv.zst", &f, &e) != 0 && strstr(e.msg, "half.kv.zst"));
        free(z);
    }
    unlink(tmp);
    free(bad);
    free(buf);
}

/* The prefix store: longest common prefix, trimmed copies, LRU bound. */
static void test_prefix_store(mt_pool *pool) {
    mt_model *m = NULL;
    mt_tokenizer *tok = NULL;
    if (!load("tests/data/models/qwen3-tiny", pool, &m, &tok)) return;
    mt_err e = {0};
    mt_prefix_store *s = NULL;
    CHECK_OK(mt_prefix_store_new(&s, (size_t)64 << 20, &e), &e);
    int32_t a[30], b[30];
    for (int i = 0; i < 30; i++) a[i] = b[i] = 1 + (i * 13) % 300;
    for (int i = 20; i < 30; i++) b[i] = 7 + i;
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = 10;
    gp.kv_f16 = 0;
    mt_gen_result ra, rb, rb0;
    CHECK(greedy(m, tok, NULL, NULL, b, 30, 10, &rb0));
    gp.store = s;
    CHECK_OK(mt_generate(m, tok, a, 30, &gp, NULL, NULL, &ra, &e), &e);
    CHECK_EQ_INT(ra.cached_tokens, 0);
    CHECK_OK(mt_generate(m, tok, b, 30, &gp, NULL, NULL, &rb, &e), &e);
    CHECK_EQ_INT(rb.cached_tokens, 20);   /* the common part of a and b */
    CHECK(rb.n_tokens == rb0.n_tokens && !memcmp(rb.tokens, rb0.tokens, rb.n_tokens * sizeof *rb.tokens));
    mt_prefix_stats st;
    mt_prefix_store_stats(s, &st);
    CHECK_EQ_INT(st.entries, 2);
    CHECK_EQ_INT(st.hits, 1);
    CHECK_EQ_INT(st.tokens_reused, 20);
    /* the same prompt again: all but its last token reused */
    mt_gen_result ra2;
    CHECK_OK(mt_generate(m, tok, a, 30, &gp, NULL, NULL, &ra2, &e), &e);
    CHECK_EQ_INT(ra2.cached_tokens, 29);
    CHECK(ra2.n_tokens == ra.n_tokens && !memcmp(ra2.tokens, ra.tokens, ra.n_tokens * sizeof *ra.tokens));
    mt_gen_result_free(&ra2);
    mt_prefix_store_free(s);
    /* a bound of one snapshot: the least recently used goes */
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    float *lg = malloc((size_t)m->hp.vocab * sizeof *lg);
    CHECK_OK(mt_model_forward(m, c, a, 30, lg, 0, &e), &e);
    size_t one = mt_kvcache_bytes(c) + 30 * sizeof(int32_t);
    CHECK_OK(mt_prefix_store_new(&s, one + one / 2, &e), &e);
    CHECK_OK(mt_prefix_store_put(s, 0, a, 30, c, &e), &e);
    CHECK_OK(mt_prefix_store_put(s, 0, b, 30, c, &e), &e);
    mt_prefix_store_stats(s, &st);
    CHECK_EQ_INT(st.entries, 1);
    CHECK_EQ_INT(st.evictions, 1);
    mt_kvcache *got = NULL;
    size_t used = 0;
    CHECK_OK(mt_prefix_store_take(s, 1, a, 30, 0, &got, &used, &e), &e);
    CHECK(got == NULL && used == 0);   /* another tag (another KV mode): nothing */
    CHECK_OK(mt_prefix_store_take(s, 0, a, 30, 0, &got, &used, &e), &e);
    CHECK_EQ_INT(used, 20);   /* only b's snapshot is left; trimmed to the common 20 */
    CHECK(got && got->len == 20);
    mt_kvcache_free(got);
    mt_prefix_store_free(s);
    free(lg);
    mt_kvcache_free(c);
    mt_gen_result_free(&ra);
    mt_gen_result_free(&rb);
    mt_gen_result_free(&rb0);
    mt_model_free(m);
    mt_tokenizer_free(tok);
}

int main(void) {
    mt_pool *pool = NULL;
    mt_err e = {0};
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    json_error_t je;
    json_t *g = json_load_file("tests/data/kv/golden.json", 0, &je);
    CHECK(g != NULL);
    json_t *cs;
    size_t i;
    json_array_foreach(json_object_get(g, "cases"), i, cs) test_golden_case(cs, pool);
    json_t *chk = json_load_file("tests/data/kv/ours/mlx_check.json", 0, &je);
    CHECK(chk != NULL);
    if (chk) json_array_foreach(json_object_get(g, "cases"), i, cs) test_ours_case(cs, chk, pool);
    json_decref(chk);
    json_decref(g);
    test_roundtrip(pool);
    test_bad_files();
    test_prefix_store(pool);
    mt_pool_free(pool);
    return check_report("kvfile");
}
