/* test_deltanet.c - the gated DeltaNet mixer's recurrent state on the qwen3_next / qwen3_5
 * fixtures (their logits against mlx-lm are test_model's): which layers carry state and how
 * much, prefill in chunks equal to one pass, a snapshot (mt_kvcache_copy) continuing exactly
 * as the original, reset giving a fresh sequence, batched decoding with one state per
 * sequence (bit for bit as alone with batch_invariant), and the state being read at all. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/pool.h"
#include "models/model.h"

#define NP 12
static const int32_t prompt[NP] = {1, 17, 200, 45, 99, 3, 250, 7, 128, 64, 300, 5};

static double rel_diff(const float *a, const float *b, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / (1 + fabs((double)b[i]));
        if (d > w) w = d;
    }
    return w;
}

static void run(const char *dir, mt_pool *pool) {
    mt_err e = {0};
    mt_model *m = NULL;
    CHECK_OK(mt_model_load(&m, dir, pool, &e), &e);
    if (!m) return;
    size_t V = (size_t)m->hp.vocab;
    /* layers: DeltaNet at 0 and 2 (full_attention_interval 2), state = conv rows (3 x 128) + 4 x 16 x 16 */
    for (int l = 0; l < m->hp.n_layers; l++) {
        int lin = l % 2 == 0;
        CHECK_MSG((m->layers[l].mixer != NULL) == lin, "%s: layer %d mixer", dir, l);
        CHECK_EQ_INT(m->layers[l].state_floats, lin ? 3 * 128 + 4 * 16 * 16 : 0);
        if (lin) CHECK_STR(m->layers[l].mixer->name, "gated DeltaNet");
    }
    float *one = malloc(NP * V * sizeof *one), *chunk = malloc(NP * V * sizeof *chunk);
    float *a = malloc(V * sizeof *a), *b = malloc(V * sizeof *b), *bl = malloc(3 * V * sizeof *bl);
    mt_kvcache *c = NULL, *d = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    CHECK(c->has_state);
    CHECK(!mt_kvcache_trimmable(c));
    CHECK_OK(mt_model_forward(m, c, prompt, NP, one, 1, &e), &e);
    int moved = 0;
    for (size_t i = 0; i < c->state_n[0]; i++) moved |= c->state[0][i] != 0.0f;
    CHECK_MSG(moved, "%s: the prompt left the state of layer 0 at zero", dir);

    /* chunks of 5, 4, 3 rows: the logits of every row as one pass computes them */
    mt_kvcache_reset(c);
    CHECK(c->len == 0 && c->state[0][c->state_n[0] - 1] == 0.0f);
    static const size_t cut[] = {0, 5, 9, NP};
    for (int k = 0; k < 3; k++)
        CHECK_OK(mt_model_forward(m, c, prompt + cut[k], cut[k + 1] - cut[k], chunk + cut[k] * V, 1, &e), &e);
    double wc = rel_diff(chunk, one, NP * V);
    CHECK_MSG(wc < 1e-3, "%s: chunked prefill differs by %.3g", dir, wc);

    /* a snapshot after 6 tokens continues exactly as the original; reset starts afresh */
    mt_kvcache_reset(c);
    CHECK_OK(mt_model_forward(m, c, prompt, 6, a, 0, &e), &e);
    CHECK_OK(mt_kvcache_copy(&d, c, &e), &e);
    CHECK_OK(mt_model_forward(m, c, prompt + 6, NP - 6, a, 0, &e), &e);
    CHECK_OK(mt_model_forward(m, d, prompt + 6, NP - 6, b, 0, &e), &e);
    CHECK_MSG(memcmp(a, b, V * sizeof *a) == 0, "%s: the snapshot continues differently", dir);
    mt_kvcache_reset(c);
    CHECK_OK(mt_model_forward(m, c, prompt, NP, a, 0, &e), &e);
    mt_kvcache_reset(d);
    CHECK_OK(mt_model_forward(m, d, prompt, NP, b, 0, &e), &e);
    CHECK_MSG(memcmp(a, b, V * sizeof *a) == 0, "%s: a reset cache is not a fresh one", dir);

    /* the state is read: the same cache with layer 0's state zeroed decodes another row */
    int32_t nx = 42;
    mt_kvcache *z = NULL;
    CHECK_OK(mt_kvcache_copy(&z, c, &e), &e);
    memset(z->state[0], 0, z->state_n[0] * sizeof(float));
    CHECK_OK(mt_model_forward(m, c, &nx, 1, a, 0, &e), &e);
    CHECK_OK(mt_model_forward(m, z, &nx, 1, b, 0, &e), &e);
    CHECK_MSG(rel_diff(a, b, V) > 1e-3, "%s: zeroing the DeltaNet state changed nothing", dir);
    mt_kvcache_free(z);

    /* batched decoding: three sequences of different lengths, each with its own state */
    static const size_t lo[3] = {0, 0, 3}, hi[3] = {5, 9, NP};
    static const int32_t nt[3] = {11, 222, 333};
    double wb = 0;
    for (int inv = 0; inv < 2; inv++) {
        m->batch_invariant = inv;
        mt_kvcache *bc[3] = {NULL, NULL, NULL};
        int same = 1;
        for (int s = 0; s < 3; s++) {
            CHECK_OK(mt_kvcache_new(&bc[s], m, &e), &e);
            CHECK_OK(mt_model_forward(m, bc[s], prompt + lo[s], hi[s] - lo[s], a, 0, &e), &e);
        }
        mt_kvcache *solo[3];
        for (int s = 0; s < 3; s++) CHECK_OK(mt_kvcache_copy(&solo[s], bc[s], &e), &e);
        for (int step = 0; step < 3; step++) {
            int32_t tk[3];
            for (int s = 0; s < 3; s++) tk[s] = (int32_t)((nt[s] + 37 * step) % (int)V);
            CHECK_OK(mt_model_decode_batch(m, bc, tk, 3, bl, &e), &e);
            for (int s = 0; s < 3; s++) {
                CHECK_OK(mt_model_forward(m, solo[s], &tk[s], 1, a, 0, &e), &e);
                if (inv) same &= memcmp(a, bl + (size_t)s * V, V * sizeof *a) == 0;
                else {
                    double w = rel_diff(bl + (size_t)s * V, a, V);
                    if (w > wb) wb = w;
                }
            }
        }
        if (inv) CHECK_MSG(same, "%s: batch-invariant decoding differs from one sequence alone", dir);
        for (int s = 0; s < 3; s++) { mt_kvcache_free(bc[s]); mt_kvcache_free(solo[s]); }
    }
    m->batch_invariant = 0;
    CHECK_MSG(wb < 1e-3, "%s: batched decoding differs by %.3g", dir, wb);
    printf("  %-22s state %zu floats/DeltaNet layer, chunked prefill %.1e, batched decode %.1e\n", dir + 18,
           m->layers[0].state_floats, wc, wb);
    mt_kvcache_free(c);
    mt_kvcache_free(d);
    free(one); free(chunk); free(a); free(b); free(bl);
    mt_model_free(m);
}

int main(void) {
    mt_err e = {0};
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    run("tests/data/models/qwen3next-tiny", pool);
    run("tests/data/models/qwen3_5-tiny-4bit", pool);
    run("tests/data/models/qwen3next-tiny-8bit", pool);
    mt_pool_free(pool);
    return check_report("deltanet");
}
