/* test_vlm_qwen.c - Qwen2-VL / Qwen2.5-VL (models/qwen2vl.c) and the decoder's M-RoPE.
 *   - M-RoPE on the tiny qwen2 text model with sections forced: a position table whose t, h, w
 *     agree gives the plain positions' logits bit for bit; sections that hand every frequency
 *     to one axis give that axis' plain positions; a decode step after a table runs at
 *     cache position + rope_delta (as the same row inside a longer table does). */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/pool.h"
#include "models/model.h"

/* logits of the last row of ids[0..n) run as one call (positions from pos3 when given) */
static void run(mt_model *m, const int32_t *ids, size_t n, const int32_t *pos3, size_t npos, long delta, float *lg) {
    mt_err e = {0};
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    mt_embed_inject inj = {-1, NULL, 0, 0, pos3, npos, delta};
    CHECK_OK(mt_model_forward_inject(m, c, ids, n, lg, 0, pos3 ? &inj : NULL, &e), &e);
    mt_kvcache_free(c);
}

static int same(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof *a); }

static void mrope(mt_pool *pool) {
    mt_err e = {0};
    mt_model *m = NULL;
    CHECK_OK(mt_model_load(&m, "tests/data/models/qwen2-tiny", pool, &e), &e);
    if (!m) return;
    size_t V = (size_t)m->hp.vocab, half = (size_t)m->hp.rot_dims / 2;
    enum { N = 12 };
    int32_t ids[N + 1], pos[3 * (N + 1)];
    for (int i = 0; i <= N; i++) ids[i] = (int32_t)(5 + 7 * i) % m->hp.vocab;
    float *a = malloc(V * sizeof *a), *b = malloc(V * sizeof *b);
    run(m, ids, N, NULL, 0, 0, a);
    /* t = h = w = p: the plain positions, bit for bit, whatever the sections */
    m->mrope[0] = (int)(half / 4);
    m->mrope[1] = m->mrope[2] = (int)(half - half / 4) / 2;
    for (int i = 0; i < 3 * N; i++) pos[i] = i / 3;
    run(m, ids, N, pos, N, 0, b);
    CHECK_MSG(same(a, b, V), "M-RoPE with t = h = w differs from plain RoPE");
    /* every frequency on one axis: that axis' positions are the plain ones (the others scrambled) */
    for (int ax = 0; ax < 3; ax++) {
        m->mrope[0] = m->mrope[1] = m->mrope[2] = 0;
        m->mrope[ax] = (int)half;
        for (int i = 0; i < N; i++)
            for (int k = 0; k < 3; k++) pos[3 * i + k] = k == ax ? i : 3 * i + 5 * k + 1;
        run(m, ids, N, pos, N, 0, b);
        CHECK_MSG(same(a, b, V), "M-RoPE: sections on axis %d alone do not give its positions", ax);
    }
    /* mixed sections: the rows' distinct t, h, w change the result */
    m->mrope[0] = 1;
    m->mrope[1] = m->mrope[2] = (int)(half - 1) / 2;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 3; k++) pos[3 * i + k] = i + (i > 3 && i < 8 ? k * (i - 3) : 0);
    run(m, ids, N, pos, N, 0, b);
    CHECK_MSG(!same(a, b, V), "M-RoPE: distinct t, h, w rows changed nothing");
    /* decode after a table: position = cache position + rope_delta, for all three axes */
    long delta = -3;
    pos[3 * N] = pos[3 * N + 1] = pos[3 * N + 2] = (int32_t)(N + delta);
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);   /* the extra row inside the table, in a call of its own */
    mt_embed_inject in2 = {-1, NULL, 0, 0, pos, N + 1, delta};
    CHECK_OK(mt_model_forward_inject(m, c, ids, N, a, 0, &in2, &e), &e);
    CHECK_OK(mt_model_forward_inject(m, c, ids + N, 1, a, 0, &in2, &e), &e);
    mt_kvcache_reset(c);
    mt_embed_inject inj = {-1, NULL, 0, 0, pos, N, delta};
    CHECK_OK(mt_model_forward_inject(m, c, ids, N, b, 0, &inj, &e), &e);
    CHECK_EQ_INT(c->pos_delta, delta);
    CHECK_OK(mt_model_forward(m, c, ids + N, 1, b, 0, &e), &e);
    CHECK_MSG(same(a, b, V), "M-RoPE: a decode step is not at cache position + rope_delta");
    mt_kvcache *c2 = NULL;
    CHECK_OK(mt_kvcache_copy(&c2, c, &e), &e);
    CHECK_EQ_INT(c2 ? c2->pos_delta : 0, delta);
    mt_kvcache_reset(c);
    CHECK_EQ_INT(c->pos_delta, 0);
    mt_kvcache_free(c2);
    mt_kvcache_free(c);
    free(a);
    free(b);
    mt_model_free(m);
}

int main(void) {
    mt_pool *pool = NULL;
    mt_err e = {0};
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    mrope(pool);
    mt_pool_free(pool);
    return check_report("vlm_qwen");
}
