/* test_gemma4.c - what the golden test (test_model: logits and greedy tokens of gemma4-tiny,
 * gemma4moe-tiny and gemma4mm-tiny against mlx-lm) does not look at: how KV sharing sits in the
 * cache (the shared layers read their source layers and keep no rows; bytes, copies and trims
 * follow), prefill in chunks against one call (sliding windows, shared layers and per-layer
 * inputs across call boundaries), and the one-line refusals of KV quantization and prompt-cache
 * files (the padded rows are not mlx-lm's). */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/pool.h"
#include "kv/kvfile.h"
#include "models/model.h"
#include "models/ple.h"

#define DIR "tests/data/models/gemma4-tiny"

static double max_rel(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i]));
        w = d > w || d != d ? d : w;
    }
    return w;
}

int main(void) {
    mt_err e = {0};
    mt_pool *pool = NULL;
    mt_model *m = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    CHECK_OK(mt_model_load(&m, DIR, pool, &e), &e);
    if (!m) return check_report("gemma4");
    json_t *g = json_load_file(DIR "/golden.json", 0, NULL);
    CHECK(g != NULL);
    json_t *jp = json_object_get(g, "prompt"), *jl = json_object_get(g, "logits");
    size_t T = json_array_size(jp), V = (size_t)m->hp.vocab;
    int32_t *p = malloc(T * sizeof *p);
    float *ref = malloc(T * V * sizeof *ref), *lg = malloc(T * V * sizeof *lg), *lg2 = malloc(V * sizeof *lg2);
    for (size_t t = 0; t < T; t++) {
        p[t] = (int32_t)json_integer_value(json_array_get(jp, t));
        for (size_t v = 0; v < V; v++) ref[t * V + v] = (float)json_number_value(json_array_get(json_array_get(jl, t), v));
    }

    /* the layers: sliding, full, then two KV-shared ones reading layers 0 and 1 */
    CHECK(m->hp.n_layers == 4 && m->ple != NULL && m->kv_padded && m->own_cache);
    CHECK(m->layers[0].kv_from == -1 && m->layers[1].kv_from == -1);
    CHECK(m->layers[2].kv_from == 0 && m->layers[3].kv_from == 1);
    CHECK(m->layers[0].sliding && !m->layers[1].sliding && m->layers[2].sliding && !m->layers[3].sliding);
    CHECK(m->hp.head_dim == 32 && m->hp.n_kv_heads == 2);   /* the widest layer: global_head_dim */
    CHECK(m->ple->dim == 16 && m->ple->n_layers == 4);

    /* the cache: rows for layers 0 and 1 only */
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    CHECK_OK(mt_model_forward(m, c, p, T, lg, 1, &e), &e);
    CHECK_MSG(max_rel(lg, ref, T * V) < 1e-3, "one call: %.3g", max_rel(lg, ref, T * V));
    CHECK(c->no_kv && !c->no_kv[0] && !c->no_kv[1] && c->no_kv[2] && c->no_kv[3]);
    CHECK(c->k[0] && c->k[1] && !c->k[2] && !c->k[3] && !c->v[2] && !c->v[3]);
    CHECK(c->padded);
    CHECK_MSG(mt_kvcache_bytes(c) == 2 * 2 * T * c->kv_dim * sizeof(float), "bytes %zu", mt_kvcache_bytes(c));

    /* a copy continues as the original does */
    mt_kvcache *cp = NULL;
    CHECK_OK(mt_kvcache_copy(&cp, c, &e), &e);
    CHECK(cp && cp->no_kv && cp->no_kv[2] && cp->padded);
    int32_t nx = 77;
    CHECK_OK(mt_model_forward(m, c, &nx, 1, lg, 0, &e), &e);
    if (cp) CHECK_OK(mt_model_forward(m, cp, &nx, 1, lg2, 0, &e), &e);
    CHECK(memcmp(lg, lg2, V * sizeof *lg) == 0);
    mt_kvcache_free(cp);

    /* trimmed back to 9 tokens, the last 3 prompt tokens again give mlx-lm's rows */
    CHECK(mt_kvcache_trim(c, 4) == 4 && c->len == T - 3);
    CHECK_OK(mt_model_forward(m, c, p + T - 3, 3, lg, 1, &e), &e);
    CHECK_MSG(max_rel(lg, ref + (T - 3) * V, 3 * V) < 1e-3, "after a trim: %.3g", max_rel(lg, ref + (T - 3) * V, 3 * V));

    /* prefill in chunks of 5, 4 and 3 tokens: every row as in one call */
    mt_kvcache_reset(c);
    size_t at = 0, chunk[3] = {5, 4, 3};
    for (int i = 0; i < 3 && at < T; i++) {
        size_t n = chunk[i] < T - at ? chunk[i] : T - at;
        CHECK_OK(mt_model_forward(m, c, p + at, n, lg + at * V, 1, &e), &e);
        at += n;
    }
    CHECK_MSG(max_rel(lg, ref, T * V) < 1e-3, "in chunks: %.3g", max_rel(lg, ref, T * V));

    /* refusals: KV quantization (either scheme) and prompt-cache files */
    mt_kvcache *q = NULL;
    CHECK_OK(mt_kvcache_new(&q, m, &e), &e);
    mt_err qe = {0};
    CHECK(mt_kvcache_set_quant(q, 8, 32, 0, &qe) == MT_EUNSUPPORTED && strstr(qe.msg, "different widths (gemma4)"));
    CHECK(mt_kvcache_set_turbo(q, 4, &qe) == MT_EUNSUPPORTED);
    mt_kvcache_free(q);
    char *buf = NULL;
    size_t blen = 0;
    mt_kvmeta meta = {.kv_heads = m->hp.n_kv_heads};
    CHECK(mt_kvfile_serialize(c, &meta, &buf, &blen, &qe) == MT_EUNSUPPORTED && strstr(qe.msg, "KV-shared layers"));
    free(buf);

    mt_kvcache_free(c);
    free(p);
    free(ref);
    free(lg);
    free(lg2);
    json_decref(g);
    mt_model_free(m);

    /* the MoE variant: k_eq_v full layers with one kv head, repeated into the cache's two */
    CHECK_OK(mt_model_load(&m, "tests/data/models/gemma4moe-tiny", pool, &e), &e);
    if (m) {
        CHECK(m->ple == NULL && m->hp.n_kv_heads == 2 && m->hp.head_dim == 32);
        for (int l = 0; l < m->hp.n_layers; l++) CHECK(m->layers[l].kv_from == -1 && m->layers[l].out_scale != 0);
        mt_kvcache *k2 = NULL;
        CHECK_OK(mt_kvcache_new(&k2, m, &e), &e);
        CHECK(k2 && !k2->no_kv);
        mt_kvcache_free(k2);
        mt_model_free(m);
    }
    /* the built-in attention honours kv_from too (a family on the shared decoder): qwen3-tiny with
     * its layer 1 reading layer 0's rows runs, keeps no rows for layer 1, and differs from the
     * model as stored only from layer 1's attention on */
    CHECK_OK(mt_model_load(&m, "tests/data/models/qwen3-tiny", pool, &e), &e);
    if (m) {
        size_t V2 = (size_t)m->hp.vocab;
        int32_t toks[5] = {1, 17, 200, 45, 99};
        float *a = malloc(5 * V2 * sizeof *a), *b = malloc(5 * V2 * sizeof *b);
        mt_kvcache *ca = NULL, *cb = NULL;
        CHECK_OK(mt_kvcache_new(&ca, m, &e), &e);
        CHECK_OK(mt_model_forward(m, ca, toks, 5, a, 1, &e), &e);
        m->layers[1].kv_from = 0;
        CHECK_OK(mt_kvcache_new(&cb, m, &e), &e);
        CHECK(cb && cb->no_kv && !cb->no_kv[0] && cb->no_kv[1]);
        CHECK_OK(mt_model_forward(m, cb, toks, 3, b, 1, &e), &e);
        CHECK_OK(mt_model_forward(m, cb, toks + 3, 2, b + 3 * V2, 1, &e), &e);
        CHECK(cb && cb->k[0] && !cb->k[1] && cb->len == 5);
        int finite = 1;
        for (size_t i = 0; i < 5 * V2; i++) finite &= isfinite(b[i]) != 0;
        CHECK(finite && max_rel(a, b, 5 * V2) > 1e-3);
        mt_kvcache_free(ca);
        mt_kvcache_free(cb);
        free(a);
        free(b);
        mt_model_free(m);
    }
    mt_pool_free(pool);
    return check_report("gemma4");
}
