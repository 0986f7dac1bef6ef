/* test_norm_ada.c - tensor/norm_ada against mlx-audio's AdaIN1d, AdaLayerNorm,
 * snake and leaky ReLU (tests/data/tts_ops/norm.safetensors). */
#include <stdlib.h>
#include <string.h>
#include "core/pool.h"
#include "tensor/norm_ada.h"
#include "tts_ops_golden.h"

static void run_norm(const mt_safetensors *st, const char *cs, int layer, mt_pool *pool) {
    size_t nhp = 0, nx = 0, ny = 0;
    float *hp = gold(st, cs, "hp", &nhp), *x = gold(st, cs, "x", &nx), *yr = gold(st, cs, "y", &ny);
    float *W = gold(st, cs, "fc_w", NULL), *b = gold(st, cs, "fc_b", NULL), *s = gold(st, cs, "s", NULL);
    int ok = hp && nhp == 3 && x && yr && W && b && s && nx == ny;
    CHECK_MSG(ok, "%s: golden tensors missing", cs);
    if (ok) {
        size_t S = (size_t)hp[0], C = (size_t)hp[1], T = (size_t)hp[2];
        float *gb = malloc(2 * C * sizeof(float)), *y = malloc(nx * sizeof(float));
        if (gb && y && nx == C * T) {
            mt_ada_style(gb, W, b, s, S, 2 * C);
            if (layer)
                mt_ada_layernorm(y, x, gb, T, C, 1e-5f, pool);
            else
                mt_adain1d(y, x, gb, C, T, 1e-5f, pool);
            char label[64];
            snprintf(label, sizeof label, "%s%s", cs, pool ? " (pool)" : "");
            check_close(label, y, yr, ny);
            memcpy(y, x, nx * sizeof(float));   /* in place */
            if (layer)
                mt_ada_layernorm(y, y, gb, T, C, 1e-5f, pool);
            else
                mt_adain1d(y, y, gb, C, T, 1e-5f, pool);
            CHECK(max_err(y, yr, ny) <= TTS_TOL);
        } else
            CHECK_MSG(0, "%s: sizes", cs);
        free(gb);
        free(y);
    }
    free(hp); free(x); free(yr); free(W); free(b); free(s);
}

static void run_act(const mt_safetensors *st) {
    size_t nhp = 0, nx = 0, ny = 0, na = 0;
    float *hp = gold(st, "snake", "hp", &nhp), *x = gold(st, "snake", "x", &nx), *yr = gold(st, "snake", "y", &ny);
    float *a = gold(st, "snake", "alpha", &na);
    CHECK(hp && x && yr && a && nhp == 2 && nx == ny && na == (size_t)hp[0]);
    if (hp && x && yr && a && nx == ny && na * (size_t)hp[1] == nx) {
        mt_snake(x, a, na, (size_t)hp[1], NULL);
        check_close("snake", x, yr, ny);
    }
    free(hp); free(x); free(yr); free(a);
    x = gold(st, "leaky", "x", &nx);
    float *y1 = gold(st, "leaky", "y01", &ny), *y2 = gold(st, "leaky", "y02", NULL);
    float *t = x ? malloc(nx * sizeof(float)) : NULL;
    CHECK(x && y1 && y2 && t && nx == ny);
    if (x && y1 && y2 && t && nx == ny) {
        memcpy(t, x, nx * sizeof(float));
        mt_leaky_relu(t, nx, 0.1f);
        check_close("leaky_relu 0.1", t, y1, nx);
        memcpy(t, x, nx * sizeof(float));
        mt_leaky_relu(t, nx, 0.2f);
        check_close("leaky_relu 0.2", t, y2, nx);
    }
    free(x); free(y1); free(y2); free(t);
}

int main(void) {
    mt_err e = {0};
    mt_safetensors *st = NULL;
    int rc = mt_safetensors_open(&st, "tests/data/tts_ops/norm.safetensors", &e);
    CHECK_OK(rc, &e);
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    if (!rc) {
        for (int p = 0; p < 2; p++) {
            run_norm(st, "adain", 0, p ? pool : NULL);
            run_norm(st, "adain2", 0, p ? pool : NULL);
            run_norm(st, "adaln", 1, p ? pool : NULL);
        }
        run_act(st);
    }
    /* a constant channel normalizes to beta */
    float x[4] = {2, 2, 2, 2}, gb[2] = {0.5f, -1.0f};
    mt_adain1d(x, x, gb, 1, 4, 1e-5f, NULL);
    CHECK(x[0] == -1.0f && x[3] == -1.0f);
    mt_pool_free(pool);
    mt_safetensors_free(st);
    return check_report("test_norm_ada");
}
