/* test_conv1d.c - tensor/conv1d against mlx-audio's ConvWeighted / nn.Conv1d /
 * mx.conv_transpose1d (tests/data/tts_ops/conv1d.safetensors), the fast path
 * against the reference loops, with and without the pool, and the errors. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/pool.h"
#include "tensor/conv1d.h"
#include "tts_ops_golden.h"

static const char *CASES[] = {"k3",     "dil3",   "dil5k11", "s2",   "s2odd", "groups2", "dw",   "pw_nobias",
                              "long",   "big_k",  "noise0",  "noise1", "ups0",  "ups1",    "pool", "tdil",
                              "tgrp"};

static void run_case(const mt_safetensors *st, const char *cs, mt_pool *pool) {
    size_t nhp = 0, nx = 0, ny = 0;
    float *hp = gold(st, cs, "hp", &nhp), *x = gold(st, cs, "x", &nx), *yr = gold(st, cs, "y", &ny);
    float *v = gold(st, cs, "v", NULL), *g = gold(st, cs, "g", NULL), *w = gold(st, cs, "w", NULL);
    float *b = gold(st, cs, "b", NULL);
    CHECK_MSG(hp && nhp == 9 && x && yr && (w || (v && g)), "%s: golden tensors missing", cs);
    if (!(hp && nhp == 9 && x && yr && (w || (v && g)))) goto done;
    mt_conv1d_shape s = {.c_in = (int)hp[0], .c_out = (int)hp[1], .k = (int)hp[2], .stride = (int)hp[3],
                         .pad = (int)hp[4], .dilation = (int)hp[5], .groups = (int)hp[6],
                         .transposed = (int)hp[7], .out_pad = (int)hp[8]};
    int layout = MT_CONV_W_OKI;
    if (!strncmp(cs, "ups", 3)) {   /* stored [c_x, k, c_x/2]: the conv's c_in is hp[0] */
        layout = MT_CONV_W_IKO;
    }
    int pool_slice = !strcmp(cs, "pool");   /* AdainResBlk1d.pool: output [:, 1:] */
    mt_conv1d c;
    mt_err e = {0};
    int rc = w ? mt_conv1d_init(&c, &s, w, layout, b, &e) : mt_conv1d_init_wn(&c, &s, v, g, layout, b, &e);
    CHECK_OK(rc, &e);
    if (rc) goto done;
    size_t T = nx / (size_t)s.c_in, To = mt_conv1d_out_len(&s, T);
    CHECK_EQ_INT(To * (size_t)s.c_out, ny + (pool_slice ? (size_t)s.c_out : 0));
    float *y = calloc(To * (size_t)s.c_out, sizeof(float)), *y2 = calloc(To * (size_t)s.c_out, sizeof(float));
    if (y && y2 && To * (size_t)s.c_out == ny + (pool_slice ? (size_t)s.c_out : 0)) {
        CHECK_OK(mt_conv1d_forward(&c, x, T, y, pool, &e), &e);
        CHECK_OK(mt_conv1d_forward_ref(&c, x, T, y2, &e), &e);
        if (pool_slice) {   /* drop the first sample of each channel */
            for (int o = 0; o < s.c_out; o++) {
                memmove(y + (size_t)o * (To - 1), y + (size_t)o * To + 1, (To - 1) * sizeof(float));
                memmove(y2 + (size_t)o * (To - 1), y2 + (size_t)o * To + 1, (To - 1) * sizeof(float));
            }
        }
        char label[64];
        snprintf(label, sizeof label, "%s%s", cs, pool ? " (pool)" : "");
        check_close(label, y, yr, ny);
        snprintf(label, sizeof label, "%s fast vs ref", cs);
        double d = max_err(y, y2, ny);
        CHECK_MSG(d <= 1e-5, "%s: %g", label, d);
    }
    free(y);
    free(y2);
    /* the same weights in torch's layout ([out, in/groups, k]; ConvTranspose1d
     * [in, out, k]) give the same kernel */
    if (!pool) {
        const float *src = w ? w : v;
        size_t n0 = layout == MT_CONV_W_IKO ? (size_t)s.c_in : (size_t)s.c_out;
        size_t mid = (size_t)s.k, last = (size_t)s.c_out * (size_t)s.k * (size_t)(s.c_in / s.groups) / n0 / mid;
        float *t = malloc(n0 * mid * last * sizeof(float));
        if (t) {
            for (size_t a = 0; a < n0; a++)   /* [n0, k, last] -> [n0, last, k] */
                for (size_t j = 0; j < mid; j++)
                    for (size_t l = 0; l < last; l++) t[(a * last + l) * mid + j] = src[(a * mid + j) * last + l];
            int tl = layout == MT_CONV_W_IKO ? MT_CONV_W_IOK : MT_CONV_W_OIK;
            mt_conv1d c2;
            rc = w ? mt_conv1d_init(&c2, &s, t, tl, b, &e) : mt_conv1d_init_wn(&c2, &s, t, g, tl, b, &e);
            CHECK_OK(rc, &e);
            if (!rc) {
                size_t nw = (size_t)s.c_out * (size_t)s.k * (size_t)(s.c_in / s.groups);
                CHECK_MSG(memcmp(c.w, c2.w, nw * sizeof(float)) == 0, "%s: torch layout gives another kernel", cs);
            }
            mt_conv1d_free(&c2);
            free(t);
        }
    }
    mt_conv1d_free(&c);
done:
    free(hp); free(x); free(yr); free(v); free(g); free(w); free(b);
}

static void test_errors(void) {
    mt_conv1d c;
    mt_err e = {0};
    float w[12] = {0};
    mt_conv1d_shape s = {.c_in = 3, .c_out = 2, .k = 2, .stride = 1, .dilation = 1, .groups = 2};
    CHECK_EQ_INT(mt_conv1d_init(&c, &s, w, MT_CONV_W_OKI, NULL, &e), MT_EINVAL);   /* 3 % 2 */
    mt_conv1d_free(&c);
    s.groups = 1;
    s.stride = 0;
    CHECK_EQ_INT(mt_conv1d_init(&c, &s, w, MT_CONV_W_OKI, NULL, &e), MT_EINVAL);
    s.stride = 1;
    CHECK_OK(mt_conv1d_init(&c, &s, w, MT_CONV_W_OKI, NULL, &e), &e);
    float x[3] = {0}, y[4];
    CHECK_EQ_INT(mt_conv1d_forward(&c, x, 1, y, NULL, &e), MT_EINVAL);   /* T=1 < k=2 */
    CHECK(strstr(e.msg, "too short") != NULL);
    CHECK_EQ_INT(mt_conv1d_out_len(&c.s, 1), 0);
    mt_conv1d_free(&c);
    mt_conv1d_free(NULL);
    s.groups = 1;
    s.transposed = 1;
    s.stride = 3;
    s.pad = 1;
    CHECK_EQ_INT(mt_conv1d_out_len(&s, 4), (4 - 1) * 3 - 2 + 1 + 1);
    /* weight norm: g * v / (|v| + 1e-7) */
    float v[4] = {3, 4, 0, 0}, gg[2] = {2, 5}, out[4];
    mt_weight_norm_fold(out, v, gg, 2, 2);
    CHECK(fabsf(out[0] - 1.2f) < 1e-6f && fabsf(out[1] - 1.6f) < 1e-6f && out[2] == 0.0f);
}

/* The int8 form against the float conv on seeded random weights and inputs: which shapes
 * convert, SNR >= 35 dB (printed) with and without the pool, a converted conv equal to
 * itself run twice, a non-qualifying one unchanged. */
static void test_int8(mt_pool *pool) {
    static const struct { int cin, cout, k, stride, pad, dil, groups, transposed, expect; } C[] = {
        {64, 48, 3, 1, 1, 1, 1, 0, 1},     /* K = 192: groups of 64 */
        {32, 40, 3, 1, 3, 3, 1, 0, 1},     /* K = 96: groups of 32, dilated */
        {128, 64, 11, 1, 25, 5, 1, 0, 1},  /* K = 1408, dilation 5 */
        {96, 32, 4, 2, 1, 1, 1, 0, 1},     /* stride 2 */
        {10, 16, 3, 1, 1, 1, 1, 0, 0},     /* K = 30: not a multiple of 32 */
        {64, 64, 3, 1, 1, 1, 2, 0, 0},     /* groups */
        {64, 32, 4, 2, 1, 1, 1, 1, 0},     /* transposed */
    };
    uint64_t seed = 12345;
    for (size_t ci = 0; ci < sizeof C / sizeof *C; ci++) {
        mt_conv1d_shape sh = {C[ci].cin, C[ci].cout, C[ci].k, C[ci].stride, C[ci].pad, C[ci].dil, C[ci].groups,
                              C[ci].transposed, 0};
        size_t nw = (size_t)C[ci].cout * C[ci].k * (C[ci].cin / C[ci].groups), T = 700;
        size_t To = mt_conv1d_out_len(&sh, T);
        float *w = malloc(nw * sizeof *w), *b = malloc(C[ci].cout * sizeof *b);
        float *x = malloc((size_t)C[ci].cin * T * sizeof *x), *y0 = malloc((size_t)C[ci].cout * To * sizeof(float));
        float *y1 = malloc((size_t)C[ci].cout * To * sizeof(float)), *y2 = malloc((size_t)C[ci].cout * To * sizeof(float));
        for (size_t i = 0; i < nw; i++) w[i] = (float)(((seed = seed * 6364136223846793005ull + 1442695040888963407ull) >> 40) / 16777216.0 - 0.5);
        for (int i = 0; i < C[ci].cout; i++) b[i] = 0.01f * (float)i;
        for (size_t i = 0; i < (size_t)C[ci].cin * T; i++) x[i] = (float)sin(0.37 * (double)i) + 0.1f * (float)(i % 7);
        mt_conv1d c;
        mt_err e = {0};
        int done = -1;
        CHECK_OK(mt_conv1d_init(&c, &sh, w, MT_CONV_W_OKI, b, &e), &e);
        CHECK_OK(mt_conv1d_forward(&c, x, T, y0, pool, &e), &e);
        CHECK_OK(mt_conv1d_int8(&c, &done, &e), &e);
        CHECK_MSG(done == C[ci].expect, "int8 case %zu: converted %d, expected %d", ci, done, C[ci].expect);
        CHECK_OK(mt_conv1d_forward(&c, x, T, y1, pool, &e), &e);
        double sig = 0, err = 0;
        for (size_t i = 0; i < (size_t)C[ci].cout * To; i++) {
            double d = (double)y1[i] - y0[i];
            sig += (double)y0[i] * y0[i];
            err += d * d;
        }
        double snr = err > 0 ? 10 * log10(sig / err) : INFINITY;
        if (done) {
            printf("  int8 case %zu (K %d): SNR %.1f dB against float\n", ci, C[ci].k * C[ci].cin, snr);
            CHECK_MSG(snr >= 35.0 && snr < 200.0, "int8 case %zu: SNR %.1f dB", ci, snr);
            /* the im2col form gives the same bytes as the pre-quantized one */
            setenv("MT_CONV_I8_SLOW", "1", 1);
            CHECK_OK(mt_conv1d_forward(&c, x, T, y2, pool, &e), &e);
            unsetenv("MT_CONV_I8_SLOW");
            CHECK_MSG(!memcmp(y1, y2, (size_t)C[ci].cout * To * sizeof(float)), "int8 case %zu: the two int8 forms differ", ci);
            CHECK_OK(mt_conv1d_forward(&c, x, T, y2, NULL, &e), &e);
        } else {
            CHECK_MSG(!memcmp(y0, y1, (size_t)C[ci].cout * To * sizeof(float)), "int8 case %zu: a conv that stays float changed", ci);
        }
        if (!done) CHECK_OK(mt_conv1d_forward(&c, x, T, y2, NULL, &e), &e);
        CHECK_MSG(!memcmp(y1, y2, (size_t)C[ci].cout * To * sizeof(float)), "int8 case %zu: pool and no pool differ", ci);
        mt_conv1d_free(&c);
        free(w); free(b); free(x); free(y0); free(y1); free(y2);
    }
}

int main(void) {
    mt_err e = {0};
    mt_safetensors *st = NULL;
    int rc = mt_safetensors_open(&st, "tests/data/tts_ops/conv1d.safetensors", &e);
    CHECK_OK(rc, &e);
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    if (!rc) {
        for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
            run_case(st, CASES[i], NULL);
            run_case(st, CASES[i], pool);
        }
    }
    test_errors();
    test_int8(pool);
    mt_pool_free(pool);
    mt_safetensors_free(st);
    return check_report("test_conv1d");
}
