/* test_mla.c - the KV cache of multi-head latent attention models (keys and values of different
 * widths): the geometry mlx-lm caches (deepseek_v3: the latent as one key head, the RoPE key as
 * the value; deepseek_v2: per-head keys and values), snapshots, trimming, bytes, the float16 form,
 * prompt-cache files written and read back, and the refusal of quantized KV.  Logits and tokens against mlx-lm are
 * test_model's (every fixture); this checks what the cache does beside them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "kv/kvconvert.h"
#include "kv/kvfile.h"
#include "models/model.h"

static const int32_t PROMPT[] = {1, 17, 200, 45, 99, 3, 250, 7, 128, 64, 300, 5};
#define NP (sizeof PROMPT / sizeof *PROMPT)

static double maxdiff(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > w) w = d;
    }
    return w;
}

static void check_model(const char *dir, size_t want_k, size_t want_v, int heads, mt_pool *pool) {
    mt_err e = {0};
    mt_model *m = NULL;
    CHECK_OK(mt_model_load(&m, dir, pool, &e), &e);
    if (!m) return;
    size_t V = (size_t)m->hp.vocab;
    mt_kvcache *c = NULL, *d = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    CHECK_EQ_INT(c->kv_dim, want_k);
    CHECK_EQ_INT(c->v_dim, want_v);
    CHECK_EQ_INT(c->n_kv_heads, heads);
    float *l1 = malloc(V * sizeof *l1), *l2 = malloc(V * sizeof *l2), *l3 = malloc(V * sizeof *l3);
    CHECK_OK(mt_model_forward(m, c, PROMPT, NP, l1, 0, &e), &e);
    CHECK_EQ_INT(mt_kvcache_bytes(c), (size_t)m->hp.n_layers * NP * (want_k + want_v) * 4);

    /* a snapshot continues exactly as the original */
    CHECK_OK(mt_kvcache_copy(&d, c, &e), &e);
    int32_t next = 42;
    CHECK_OK(mt_model_forward(m, c, &next, 1, l1, 0, &e), &e);
    CHECK_OK(mt_model_forward(m, d, &next, 1, l2, 0, &e), &e);
    CHECK_MSG(maxdiff(l1, l2, V) == 0, "%s: a copied cache continues differently (%g)", dir, maxdiff(l1, l2, V));
    /* trimming the last token and running it again gives the same logits */
    CHECK_EQ_INT(mt_kvcache_trim(d, 1), 1);
    CHECK_OK(mt_model_forward(m, d, &next, 1, l3, 0, &e), &e);
    CHECK_MSG(maxdiff(l1, l3, V) == 0, "%s: trim + rerun differs (%g)", dir, maxdiff(l1, l3, V));

    /* the refusals: quantized KV (both schemes) and prompt-cache files */
    mt_kvcache *q = NULL;
    CHECK_OK(mt_kvcache_new(&q, m, &e), &e);
    if (want_k != want_v) {
        CHECK(mt_kvcache_set_quant(q, 4, 32, 0, &e) == MT_EUNSUPPORTED && strstr(e.msg, "latent attention"));
        CHECK(mt_kvcache_set_turbo(q, 4, &e) == MT_EUNSUPPORTED && strstr(e.msg, "latent attention"));
    }
    mt_kvcache *qc = NULL;
    if (want_k != want_v)
        CHECK(mt_kvcache_quantized_copy(c, 4, 32, &qc, &e) == MT_EUNSUPPORTED && !qc && strstr(e.msg, "latent attention"));
    /* a prompt-cache file (mlx-lm's layout: keys [1, heads, T, key width], values [1, heads, T, value
     * width]) read back continues as the cache it was written from */
    for (int rot = 0; rot < 2; rot++) {
        mt_kvcache *src = NULL, *back = NULL;
        CHECK_OK(mt_kvcache_new(&src, m, &e), &e);
        if (rot) CHECK_OK(mt_kvcache_set_max(src, 8, 4, &e), &e);
        CHECK_OK(mt_model_forward(m, src, PROMPT, NP, l1, 0, &e), &e);
        char *buf = NULL;
        size_t len = 0;
        mt_kvmeta meta = {.kv_heads = heads, .model = "x"};
        CHECK_OK(mt_kvfile_serialize(src, &meta, &buf, &len, &e), &e);
        mt_kvfile *kf = NULL;
        if (buf) CHECK_OK(mt_kvfile_parse(buf, len, "mla.safetensors", &kf, &e), &e);
        if (kf) {
            CHECK_EQ_INT(kf->kv_heads, heads);
            CHECK_EQ_INT((size_t)kf->head_dim * (size_t)heads, want_k);
            CHECK_EQ_INT((size_t)kf->v_head_dim * (size_t)heads, want_v);
            CHECK_OK(mt_kvfile_to_cache(kf, m, &back, &e), &e);
        }
        if (back) {
            CHECK_EQ_INT(back->v_dim, want_v);
            CHECK_OK(mt_model_forward(m, src, &next, 1, l1, 0, &e), &e);
            CHECK_OK(mt_model_forward(m, back, &next, 1, l2, 0, &e), &e);
            CHECK_MSG(maxdiff(l1, l2, V) == 0, "%s: a cache read back from its file continues differently (%g)%s", dir,
                      maxdiff(l1, l2, V), rot ? " (rotating)" : "");
        }
        mt_kvfile_free(kf);
        free(buf);
        mt_kvcache_free(back);
        mt_kvcache_free(src);
    }

    /* float16 rows: the same tokens' logits within float16 rounding of the cached rows */
    mt_kvcache *h = NULL;
    CHECK_OK(mt_kvcache_new(&h, m, &e), &e);
    CHECK_OK(mt_kvcache_set_f16(h, 1, &e), &e);
    CHECK_OK(mt_model_forward(m, h, PROMPT, NP, l3, 0, &e), &e);
    mt_kvcache_reset(c);
    CHECK_OK(mt_model_forward(m, c, PROMPT, NP, l1, 0, &e), &e);
    double md = maxdiff(l1, l3, V);
    CHECK_MSG(md > 0 && md < 0.5, "%s: f16 KV logits differ by %g", dir, md);
    CHECK_EQ_INT(mt_kvcache_bytes(h), (size_t)m->hp.n_layers * NP * (want_k + want_v) * 2);

    /* a rotating cache (--max-kv-size) of latent rows: past its size it still runs, and a copy
     * of the wrapped ring continues as the original */
    mt_kvcache *r = NULL, *r2 = NULL;
    CHECK_OK(mt_kvcache_new(&r, m, &e), &e);
    CHECK_OK(mt_kvcache_set_max(r, 8, 4, &e), &e);
    CHECK_OK(mt_model_forward(m, r, PROMPT, NP, l1, 0, &e), &e);
    for (int i = 0; i < 6; i++) CHECK_OK(mt_model_forward(m, r, &next, 1, l1, 0, &e), &e);
    CHECK_EQ_INT(mt_kvcache_slots(r), 8);
    CHECK_OK(mt_kvcache_copy(&r2, r, &e), &e);
    CHECK_OK(mt_model_forward(m, r, &next, 1, l1, 0, &e), &e);
    CHECK_OK(mt_model_forward(m, r2, &next, 1, l2, 0, &e), &e);
    CHECK(maxdiff(l1, l2, V) == 0);

    mt_kvcache_free(r);
    mt_kvcache_free(r2);
    mt_kvcache_free(h);
    mt_kvcache_free(q);
    mt_kvcache_free(c);
    mt_kvcache_free(d);
    free(l1);
    free(l2);
    free(l3);
    mt_model_free(m);
    printf("  %-28s cache rows: keys %zu, values %zu; copy, trim, f16, rotating, files and refusals ok\n", dir + 18,
           want_k, want_v);
}

int main(void) {
    mt_err e = {0};
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    /* deepseek_v3: kv_lora_rank 32 as the key, qk_rope_head_dim 8 as the value, one head */
    check_model("tests/data/models/deepseek_v3-tiny", 32, 8, 1, pool);
    check_model("tests/data/models/kimi_k2-tiny-4bit", 32, 16, 1, pool);
    /* deepseek_v2: 4 heads of nope 16 + rope 8 keys, values of v_head_dim 16 */
    check_model("tests/data/models/deepseek_v2-tiny", 4 * 24, 4 * 16, 4, pool);
    mt_pool_free(pool);
    return check_report("mla");
}
