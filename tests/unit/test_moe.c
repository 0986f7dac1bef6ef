/* test_moe.c - the built-in mixture-of-experts MLP (models/moe_fwd.c) on the MoE fixtures:
 * rows grouped by expert give a prompt's logits equal (up to float rounding) to running its
 * tokens one by one; under batch invariance (mt_model_verify) every row's logits are bit for
 * bit those of its one-token step; each chosen expert runs once per layer and call, over all
 * the rows that chose it (the calibration observer counts the calls and rows). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/blas.h"
#include "models/model.h"

static const int32_t PROMPT[] = {1, 17, 200, 45, 99, 3, 250, 7, 128, 64, 300, 5, 33, 81, 150, 2, 9, 360};
#define NP (sizeof PROMPT / sizeof *PROMPT)

typedef struct { size_t calls, rows; int layer; } obs_t;

/* count the expert gate_proj inputs of one layer */
static void observe(void *user, const char *path, const float *x, size_t T, size_t in) {
    (void)x; (void)in;
    obs_t *o = user;
    char pre[64];
    snprintf(pre, sizeof pre, "model.layers.%d.", o->layer);
    if (strncmp(path, pre, strlen(pre)) || !strstr(path, ".switch_mlp.gate_proj.")) return;
    o->calls++;
    o->rows += T;
}

static void run(const char *dir, mt_pool *pool) {
    mt_err e = {0};
    mt_model *m = NULL;
    int rc = mt_model_load(&m, dir, pool, &e);
    CHECK_MSG(rc == 0, "%s: %s", dir, e.msg);
    if (rc) return;
    size_t V = (size_t)m->hp.vocab;
    float *all = malloc(NP * V * sizeof *all), *one = malloc(NP * V * sizeof *one), *inv = malloc(NP * V * sizeof *inv);
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    /* the whole prompt at once (grouped) vs token by token (one row per call) */
    CHECK_OK(mt_model_forward(m, c, PROMPT, NP, all, 1, &e), &e);
    mt_kvcache_reset(c);
    for (size_t t = 0; t < NP; t++) CHECK_OK(mt_model_forward(m, c, PROMPT + t, 1, one + t * V, 0, &e), &e);
    double worst = 0;
    for (size_t i = 0; i < NP * V; i++) {
        double d = fabs((double)all[i] - one[i]) / (1 + fabs((double)one[i]));
        if (d > worst) worst = d;
    }
    CHECK_MSG(worst < 5e-4, "%s: grouped prompt vs one by one: worst relative logit difference %.3g", dir, worst);
    /* batch invariance: each row exactly its one-token step */
    mt_kvcache_reset(c);
    m->batch_invariant = 1;
    CHECK_OK(mt_model_verify(m, c, PROMPT, NP, inv, &e), &e);
    m->batch_invariant = 0;
    CHECK_MSG(!memcmp(inv, one, NP * V * sizeof *inv), "%s: batch-invariant rows differ from one-token steps", dir);
    /* every chosen expert once per call over its rows: the last layer (sparse in every fixture) */
    obs_t o = {0, 0, m->hp.n_layers - 1};
    m->on_linear_input = observe;
    m->hook_user = &o;
    mt_kvcache_reset(c);
    CHECK_OK(mt_model_forward(m, c, PROMPT, NP, all, 0, &e), &e);
    m->on_linear_input = NULL;
    CHECK_MSG(o.rows == NP * (size_t)m->hp.top_k, "%s: %zu expert rows, want %zu", dir, o.rows, NP * (size_t)m->hp.top_k);
    CHECK_MSG(o.calls >= 1 && o.calls <= (size_t)m->hp.n_experts, "%s: %zu expert calls for %d experts", dir, o.calls,
              m->hp.n_experts);
    printf("  %-24s grouped vs one by one %.2e, batch-invariant rows exact, %zu expert calls for %zu choices\n", dir,
           worst, o.calls, o.rows);
    mt_kvcache_free(c);
    mt_model_free(m);
    free(all);
    free(one);
    free(inv);
}

int main(void) {
    mt_err e = {0};
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    mt_blas_threads(1);
    const char *dirs[] = {"tests/data/models/mixtral-tiny", "tests/data/models/qwen2moe-tiny",
                          "tests/data/models/olmoe-tiny-4bit", "tests/data/models/granitemoe-tiny-8bit",
                          "tests/data/models/phimoe-tiny", "tests/data/models/ernie45moe-tiny",
                          "tests/data/models/bailing-tiny-4bit", "tests/data/models/hunyuan-tiny",
                          "tests/data/models/hunyuancla-tiny-8bit",
                          "tests/data/models/dbrx-tiny-4bit"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) run(dirs[i], pool);
    mt_pool_free(pool);
    return check_report("moe");
}
