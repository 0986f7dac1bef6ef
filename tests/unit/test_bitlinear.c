/* test_bitlinear.c - BitNet packed ternary linear layers (tensor/bitlinear.c): the packed
 * product against the unpacked matrix, every row the same at any batch size and thread
 * count, binding checks, and the mt_linear entry points that dispatch to it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/blas.h"
#include "core/pool.h"
#include "tensor/bitlinear.h"

static uint32_t rng = 12345;
static uint32_t rnd(void) { rng = rng * 1664525u + 1013904223u; return rng >> 8; }
static float frnd(void) { return (float)(rnd() % 20001) / 10000.0f - 1.0f; }

/* A safetensors image of one packed layer "l" (weight [out/4, in] u8, weight_scale [1] f32,
 * bias [out] f32 when with_bias), dims as given (the header may lie about them). */
static unsigned char *image(size_t out, size_t in, int64_t h0, int64_t h1, float scale, int with_bias,
                            const uint8_t *w, const float *b, size_t *n) {
    char hdr[512];
    size_t nw = out / 4 * in, nb = with_bias ? out * 4 : 0;
    int len = snprintf(hdr, sizeof hdr, "{\"l.weight\":{\"dtype\":\"U8\",\"shape\":[%lld,%lld],\"data_offsets\":[0,%zu]},"
                       "\"l.weight_scale\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%zu,%zu]}%s",
                       (long long)h0, (long long)h1, nw, nw, nw + 4, with_bias ? "," : "}");
    if (with_bias)
        len += snprintf(hdr + len, sizeof hdr - (size_t)len, "\"l.bias\":{\"dtype\":\"F32\",\"shape\":[%zu],\"data_offsets\":[%zu,%zu]}}",
                        out, nw + 4, nw + 4 + nb);
    while (len % 8) hdr[len++] = ' ';
    *n = 8 + (size_t)len + nw + 4 + nb;
    unsigned char *img = calloc(1, *n);
    for (int i = 0; i < 8; i++) img[i] = (unsigned char)((uint64_t)len >> (8 * i));
    memcpy(img + 8, hdr, (size_t)len);
    memcpy(img + 8 + len, w, nw);
    memcpy(img + 8 + len + nw, &scale, 4);
    if (with_bias) memcpy(img + 8 + len + nw + 4, b, nb);
    return img;
}

static void test_product(mt_pool *pool) {
    static const size_t shapes[][2] = {{4, 1}, {8, 8}, {16, 37}, {64, 64}, {128, 200}, {12, 1031}};
    double worst = 0;
    int same_alone = 1;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        size_t out = shapes[si][0], in = shapes[si][1], P = out / 4, T = 32;   /* 32 rows: the sgemm tiles */
        uint8_t *w = malloc(P * in);
        float *b = malloc(out * sizeof *b), *x = malloc(T * in * sizeof *x), *y = malloc(T * out * sizeof *y);
        float *y1 = malloc(out * sizeof *y1), *ref = malloc(T * out * sizeof *ref), *row = malloc(in * sizeof *row);
        for (size_t i = 0; i < P * in; i++) w[i] = (uint8_t)(rnd() % 3 | (rnd() % 3) << 2 | (rnd() % 3) << 4 | (rnd() % 3) << 6);
        for (size_t i = 0; i < out; i++) b[i] = frnd();
        for (size_t i = 0; i < T * in; i++) x[i] = frnd();
        for (int inv = 0; inv < 2; inv++) {
            size_t n;
            unsigned char *img = image(out, in, (int64_t)P, (int64_t)in, 0.37f, 1, w, b, &n);
            mt_safetensors *st = NULL;
            mt_err e = {0};
            mt_linear l;
            CHECK_OK(mt_safetensors_open_mem(&st, img, n, "mem", &e), &e);
            CHECK_OK(mt_bitlinear_bind(&l, st, "l", out, in, 1, inv, &e), &e);
            CHECK(l.ternary && l.tscale == (inv ? 1.0f / 0.37f : 0.37f));
            /* reference: unpack W[r, k] = code - 1 from byte (r % P, k), bits 2 * (r / P) */
            for (size_t t = 0; t < T; t++)
                for (size_t r = 0; r < out; r++) {
                    double s = 0;
                    for (size_t k = 0; k < in; k++) s += x[t * in + k] * (double)(((w[(r % P) * in + k] >> (2 * (r / P))) & 3) - 1);
                    ref[t * out + r] = (float)(s * l.tscale + b[r]);
                }
            mt_linear_forward(&l, x, T, y, NULL, pool);
            for (size_t i = 0; i < T * out; i++) {
                double d = fabs(y[i] - ref[i]) / (1 + fabs(ref[i]));
                if (d > worst) worst = d;
            }
            /* _rows1: every row as alone (T = 1), bit for bit; so is the packed kernel of up to 7 rows */
            float *yr = malloc(T * out * sizeof *yr);
            mt_linear_forward_rows1(&l, x, T, yr, NULL, pool);
            for (size_t t = 0; t < T; t++) {
                mt_linear_forward(&l, x + t * in, 1, y1, NULL, pool);
                same_alone &= !memcmp(y1, yr + t * out, out * sizeof *y1);
            }
            for (size_t i = 0; i < T * out; i++) {
                double d = fabs(yr[i] - ref[i]) / (1 + fabs(ref[i]));
                if (d > worst) worst = d;
            }
            mt_linear_forward(&l, x, 7, y, NULL, pool);
            same_alone &= !memcmp(yr, y, 7 * out * sizeof *yr);
            free(yr);
            /* mt_linear_row: the row times the scale */
            mt_linear_row(&l, out - 1, row);
            int ok = 1;
            for (size_t k = 0; k < in; k++)
                ok &= row[k] == (float)(((w[(P - 1) * in + k] >> 6) & 3) - 1) * l.tscale;
            CHECK(ok);
            mt_safetensors_free(st);
            free(img);
        }
        free(w); free(b); free(x); free(y); free(y1); free(ref); free(row);
    }
    CHECK_MSG(worst < 1e-5, "packed kernel and sgemm tiles vs the unpacked reference: worst relative error %.3g", worst);
    CHECK(same_alone);
    printf("  packed product: worst relative error %.2e vs the unpacked matrix; rows alone bit for bit: %s\n", worst,
           same_alone ? "yes" : "NO");
}

static void test_bind_errors(void) {
    uint8_t w[64] = {0};
    float b[16] = {0};
    struct { size_t out, in; int64_t h0, h1; float scale; int bias, need; int rc; const char *msg; } cases[] = {
        {16, 16, 4, 16, 0.5f, 0, 0, MT_OK, ""},
        {16, 16, 4, 16, 0.5f, 0, 1, MT_ENOTFOUND, "missing tensor 'l.bias'"},
        {16, 16, 2, 32, 0.5f, 0, 0, MT_EFORMAT, "expected packed ternary uint8 [4, 16]"},
        {16, 16, 16, 4, 0.5f, 0, 0, MT_EFORMAT, "expected packed ternary uint8 [4, 16]"},
        {16, 16, 4, 16, 0.0f, 0, 0, MT_EFORMAT, "the scale 0 must be finite and non-zero"},
        {16, 16, 4, 16, INFINITY, 0, 0, MT_EFORMAT, "must be finite and non-zero"},
        {14, 16, 4, 16, 0.5f, 0, 0, MT_EFORMAT, "14 output rows are not a multiple of 4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t n;
        unsigned char *img = image(16, 16, cases[i].h0, cases[i].h1, cases[i].scale, cases[i].bias, w, b, &n);
        mt_safetensors *st = NULL;
        mt_err e = {0};
        mt_linear l;
        int rc = mt_safetensors_open_mem(&st, img, n, "mem", &e);
        if (!rc) rc = mt_bitlinear_bind(&l, st, "l", cases[i].out, cases[i].in, cases[i].need, 0, &e);
        CHECK_MSG(rc == cases[i].rc && strstr(e.msg, cases[i].msg), "case %zu: rc %d '%s'", i, rc, e.msg);
        mt_safetensors_free(st);
        free(img);
    }
}

int main(void) {
    mt_err e = {0};
    mt_blas_threads(1);   /* as the programs: sgemm from the pool's threads */
    for (int nt = 1; nt <= 3; nt += 2) {
        mt_pool *pool = NULL;
        CHECK_OK(mt_pool_new(&pool, nt, &e), &e);
        test_product(pool);
        mt_pool_free(pool);
    }
    test_bind_errors();
    return check_report("bitlinear");
}
