/* test_ssm.c - the recurrent-state mixers (short convolution, Mamba, Mamba-2) and their hybrids
 * on the tiny fixtures: a prompt run in chunks of 1, 3 and 5 rows leaves the state and the last
 * logits of one pass; a copied cache continues exactly as the original; a reset cache equals a
 * new one; layers without attention keep no K/V rows; a batched decode step gives each sequence
 * what it gets alone; the calibration observer names every projection by its checkpoint path. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "convert/calib.h"
#include "core/pool.h"
#include "models/model.h"

static const int32_t PROMPT[] = {1, 17, 200, 45, 99, 3, 250, 7, 128, 64, 300, 5, 42};
#define NP (sizeof PROMPT / sizeof *PROMPT)

static float max_rel(const float *a, const float *b, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]) / (1.0f + fabsf(b[i]));
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

/* the largest difference of two caches' states, relative */
static float state_diff(const mt_kvcache *a, const mt_kvcache *b) {
    float m = 0;
    for (int l = 0; l < a->n_layers; l++)
        if (a->state[l]) {
            float d = max_rel(a->state[l], b->state[l], a->state_n[l]);
            if (d > m) m = d;
        }
    return m;
}

static void run(const char *dir, mt_pool *pool) {
    mt_err e = {0};
    mt_model *m = NULL;
    CHECK_OK(mt_model_load(&m, dir, pool, &e), &e);
    if (!m) return;
    size_t V = (size_t)m->hp.vocab;
    float *ref = malloc(V * sizeof *ref), *got = malloc(V * sizeof *got), *two = malloc(2 * V * sizeof *two);
    mt_kvcache *one = NULL, *c = NULL, *d = NULL, *x = NULL;
    CHECK_OK(mt_kvcache_new(&one, m, &e), &e);
    CHECK(one->has_state);
    CHECK_OK(mt_model_forward(m, one, PROMPT, NP, ref, 0, &e), &e);
    /* layers whose mixer replaces the attention keep no K/V rows; the others do */
    int attn = 0;
    for (int l = 0; l < m->hp.n_layers; l++) {
        int lone = m->layers[l].mixer && !m->layers[l].mixer_parallel;
        CHECK_MSG(one->no_kv && one->no_kv[l] == lone && (one->k[l] == NULL) == lone, "%s layer %d: K/V rows %s", dir, l,
                  lone ? "kept" : "missing");
        attn += !lone;
    }
    CHECK(mt_kvcache_bytes(one) >= (size_t)attn * 2 * NP * one->kv_dim * sizeof(float));
    size_t steps[] = {1, 3, 5};
    for (size_t s = 0; s < 3; s++) {
        CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
        for (size_t i = 0; i < NP; i += steps[s]) {
            size_t n = NP - i < steps[s] ? NP - i : steps[s];
            CHECK_OK(mt_model_forward(m, c, PROMPT + i, n, got, 0, &e), &e);
        }
        float dl = max_rel(got, ref, V), ds = state_diff(c, one);
        CHECK_MSG(dl < 1e-4f && ds < 1e-3f, "%s chunks of %zu: logits %g, state %g apart", dir, steps[s], dl, ds);
        mt_kvcache_free(c);
        c = NULL;
    }
    /* a copy continues as the original, bit for bit */
    CHECK_OK(mt_kvcache_copy(&d, one, &e), &e);
    int32_t t = 77;
    CHECK_OK(mt_model_forward(m, one, &t, 1, ref, 0, &e), &e);
    CHECK_OK(mt_model_forward(m, d, &t, 1, got, 0, &e), &e);
    CHECK_MSG(!memcmp(ref, got, V * sizeof *ref), "%s: a copied cache continues differently", dir);
    /* reset: a new sequence */
    mt_kvcache_reset(d);
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    CHECK_OK(mt_model_forward(m, d, PROMPT, 4, got, 0, &e), &e);
    CHECK_OK(mt_model_forward(m, c, PROMPT, 4, ref, 0, &e), &e);
    CHECK_MSG(!memcmp(ref, got, V * sizeof *ref), "%s: a reset cache differs from a new one", dir);
    /* a batched step: each sequence as alone (its own state) */
    CHECK_OK(mt_kvcache_copy(&x, c, &e), &e);
    mt_kvcache *bc[2] = {c, one};
    int32_t bt[2] = {9, 250};
    m->batch_invariant = 1;
    CHECK_OK(mt_model_decode_batch(m, bc, bt, 2, two, &e), &e);
    CHECK_OK(mt_model_forward(m, x, &bt[0], 1, got, 0, &e), &e);
    CHECK_MSG(!memcmp(two, got, V * sizeof *got), "%s: a batched step differs from the sequence alone", dir);
    m->batch_invariant = 0;
    mt_kvcache_free(x);
    mt_kvcache_free(c);
    mt_kvcache_free(d);
    mt_kvcache_free(one);
    free(ref);
    free(got);
    free(two);
    mt_model_free(m);
}

/* The calibration observer reports every projection under its module path in the checkpoint. */
static void calib_paths(mt_pool *pool) {
    static const struct { const char *dir, *path; size_t K; } want[] = {
        {"tests/data/models/lfm2-tiny", "model.layers.1.feed_forward.w1", 64},
        {"tests/data/models/lfm2-tiny", "model.layers.0.feed_forward.w2", 128},
        {"tests/data/models/lfm2-tiny", "model.layers.1.self_attn.out_proj", 64},
        {"tests/data/models/lfm2-tiny", "model.layers.0.conv.in_proj", 64},
        {"tests/data/models/lfm2-tiny", "model.layers.2.conv.out_proj", 64},
        {"tests/data/models/nemotron-h-moe", "backbone.layers.2.mixer.q_proj", 64},
        {"tests/data/models/nemotron-h-moe", "backbone.layers.0.mixer.in_proj", 64},
        {"tests/data/models/nemotron-h-moe", "backbone.layers.0.mixer.out_proj", 128},
        {"tests/data/models/nemotron-h-moe", "backbone.layers.1.mixer.shared_experts.up_proj", 64},
        {"tests/data/models/mamba-tiny", "backbone.layers.1.mixer.x_proj", 128},
        {"tests/data/models/mamba-tiny", "backbone.layers.0.mixer.dt_proj", 4},
        {"tests/data/models/falcon-h1-tiny", "model.layers.0.feed_forward.down_proj", 128},
        {"tests/data/models/falcon-h1-tiny", "model.layers.1.mamba.in_proj", 64},
        {"tests/data/models/falcon-h1-tiny", "model.layers.1.self_attn.q_proj", 64},
        {"tests/data/models/jamba-tiny", "model.layers.0.feed_forward.gate_proj", 64},
        {"tests/data/models/jamba-tiny", "model.layers.0.mamba.x_proj", 128},
    };
    char txt[] = "/tmp/mt_ssm_calib_XXXXXX";
    int fd = mkstemp(txt);
    CHECK(fd >= 0);
    if (fd < 0) return;
    static const char text[] = "def main():\n    return sum(x * x for x in range(10))\n";
    CHECK(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
    close(fd);
    const char *last = NULL;
    mt_calib *c = NULL;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        mt_err e = {0};
        if (!last || strcmp(last, want[i].dir)) {
            mt_calib_free(c);
            c = NULL;
            CHECK_OK(mt_calib_collect(&c, want[i].dir, txt, 64, pool, &e), &e);
            last = want[i].dir;
        }
        CHECK_MSG(c && mt_calib_moments(c, want[i].path, want[i].K), "%s: nothing observed at %s [%zu]", want[i].dir,
                  want[i].path, want[i].K);
    }
    mt_calib_free(c);
    unlink(txt);
}

int main(void) {
    mt_err e = {0};
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    static const char *const dirs[] = {"tests/data/models/lfm2-tiny", "tests/data/models/mamba-tiny",
                                       "tests/data/models/falcon-mamba-tiny-4bit", "tests/data/models/mamba2-tiny",
                                       "tests/data/models/nemotron-h-tiny", "tests/data/models/nemotron-h-moe",
                                       "tests/data/models/nemotron-h-latent-4bit", "tests/data/models/falcon-h1-tiny",
                                       "tests/data/models/granitemoehybrid-tiny-8bit", "tests/data/models/granitemoehybrid-moe",
                                       "tests/data/models/jamba-tiny"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) run(dirs[i], pool);
    calib_paths(pool);
    mt_pool_free(pool);
    return check_report("ssm");
}
