/* test_gpt_oss.c - the gpt_oss family's attention sinks on the cache paths the golden test
 * (test_model: logits and greedy tokens against mlx-lm) does not take: a rotating cache
 * (--max-kv-size) that has not wrapped attends slot by slot (the sliding layers mask slots one
 * by one, softmax with the sink) and must give the unbounded cache's logits; a float16 cache
 * must stay close to the float32 cache, much closer than the same model with its sinks taken
 * out.  (The packed quantized-KV kernel's sinks are checked exactly in test_sinks: affine
 * groups of 32+ do not fit this fixture's head_dim 16.) */
#include <stdint.h>
#include <stdlib.h>
#include "check.h"
#include "core/pool.h"
#include "models/model.h"

#define DIR "tests/data/models/gptoss-tiny"
#define NPRE 12
#define NDEC 40

static const int32_t prompt[NPRE] = {1, 17, 200, 45, 99, 3, 250, 7, 128, 64, 300, 5};

/* logits[NDEC, vocab] of NDEC decode steps after the prompt, feeding token (37 * i) % 383 + 1;
 * cache mode: 0 float32, 1 rotating (64 slots, keep 4), 2 float16 */
static int run(mt_model *m, int mode, float *logits, mt_err *e) {
    mt_kvcache *c = NULL;
    size_t V = (size_t)m->hp.vocab;
    int rc = mt_kvcache_new(&c, m, e);
    if (!rc && mode == 1) rc = mt_kvcache_set_max(c, 64, 4, e);
    if (!rc && mode == 2) rc = mt_kvcache_set_f16(c, 1, e);
    float *tmp = malloc(V * sizeof *tmp);
    if (!rc) rc = mt_model_forward(m, c, prompt, NPRE, tmp, 0, e);
    for (int i = 0; i < NDEC && !rc; i++) {
        int32_t t = (37 * i) % 383 + 1;
        rc = mt_model_forward(m, c, &t, 1, logits + (size_t)i * V, 0, e);
    }
    free(tmp);
    mt_kvcache_free(c);
    return rc;
}

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
    if (!m) return check_report("gpt_oss");
    size_t n = (size_t)NDEC * (size_t)m->hp.vocab;
    float *ref = malloc(n * sizeof *ref), *got = malloc(n * sizeof *got), *nos = malloc(n * sizeof *nos);
    int have_sinks = 1;
    for (int l = 0; l < m->hp.n_layers; l++) have_sinks &= m->layers[l].sinks != NULL;
    CHECK(have_sinks);
    CHECK_OK(run(m, 0, ref, &e), &e);

    CHECK_OK(run(m, 1, got, &e), &e);
    double rot = max_rel(got, ref, n);
    CHECK_MSG(rot < 1e-5, "rotating cache (no wrap) vs unbounded: %g", rot);

    CHECK_OK(run(m, 2, got, &e), &e);
    double f16 = max_rel(got, ref, n);

    /* the same model without sinks: how far that is */
    float *keep[64];
    int nl = m->hp.n_layers < 64 ? m->hp.n_layers : 64;
    for (int l = 0; l < nl; l++) { keep[l] = m->layers[l].sinks; m->layers[l].sinks = NULL; }
    CHECK_OK(run(m, 0, nos, &e), &e);
    for (int l = 0; l < nl; l++) m->layers[l].sinks = keep[l];
    double none = max_rel(nos, ref, n);
    CHECK_MSG(f16 < 1e-2 && f16 * 20 < none, "float16 cache: %g (no sinks: %g)", f16, none);
    printf("  gptoss-tiny %d decode steps: rotating (unwrapped) %.2e, f16 KV %.2e; without sinks %.2e\n",
           NDEC, rot, f16, none);
    free(ref);
    free(got);
    free(nos);
    mt_model_free(m);
    mt_pool_free(pool);
    return check_report("gpt_oss");
}
