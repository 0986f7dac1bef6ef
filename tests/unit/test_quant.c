/* test_quant.c - dtype conversions and MLX affine/fp (de)quantization against
 * goldens written by tests/gen/gen_quant_goldens.py (mlx 0.32, CPU). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "io/safetensors.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

#ifdef __F16C__
#include <immintrin.h>
#endif

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* The bulk conversion (F16C where built with it) equals mt_f32_to_f16 bit for
 * bit: every exponent, random mantissas, ties, subnormals, inf and NaN. */
static void test_f16_bulk(void) {
    enum { N = 1 << 16 };
    static float x[N + 3];
    static uint16_t h[N + 3];
    uint32_t r = 12345;
    for (size_t i = 0; i < N + 3; i++) {
        r = r * 1664525u + 1013904223u;
        uint32_t u = r;
        if (i % 4 == 1) u &= 0xffffe000u | 0x1000u;   /* exact ties at the f16 rounding point */
        x[i] = u2f(u);
    }
    x[0] = u2f(0x7fc00001u); x[1] = u2f(0xff800000u); x[2] = 65520.0f; x[3] = 0x1p-25f; x[4] = -0x1.8p-24f;
    CHECK_EQ_INT(mt_convert_from_f32(h, x, MT_F16, N + 3), MT_OK);
    size_t bad = 0;
    for (size_t i = 0; i < N + 3; i++) bad += h[i] != mt_f32_to_f16(x[i]);
    CHECK_MSG(bad == 0, "bulk f32->f16 differs from mt_f32_to_f16 on %zu of %d values", bad, N + 3);
}

static void test_f16(void) {
    test_f16_bulk();
    CHECK_EQ_INT(mt_f32_to_f16(1.0f), 0x3c00);
    CHECK_EQ_INT(mt_f32_to_f16(-2.0f), 0xc000);
    CHECK_EQ_INT(mt_f32_to_f16(65504.0f), 0x7bff);
    CHECK_EQ_INT(mt_f32_to_f16(65519.0f), 0x7bff);
    CHECK_EQ_INT(mt_f32_to_f16(65520.0f), 0x7c00);          /* tie rounds to even = inf */
    CHECK_EQ_INT(mt_f32_to_f16(0x1p-24f), 0x0001);
    CHECK_EQ_INT(mt_f32_to_f16(0x1p-25f), 0x0000);          /* tie -> even (0) */
    CHECK_EQ_INT(mt_f32_to_f16(0x1.8p-24f), 0x0002);        /* tie -> even (2) */
    CHECK_EQ_INT(mt_f32_to_f16(-0.0f), 0x8000);
    CHECK_EQ_INT(mt_f32_to_f16(1.0f + 0x1p-11f), 0x3c00);   /* tie -> even */
    CHECK_EQ_INT(mt_f32_to_f16(1.0f + 0x1.8p-10f), 0x3c02);
    CHECK((mt_f32_to_f16(u2f(0x7fc00000u)) & 0x7fff) > 0x7c00);
    CHECK(mt_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK(mt_f16_to_f32(0xfbff) == -65504.0f);
    CHECK(f2u(mt_f16_to_f32(0x8000)) == 0x80000000u);
    CHECK_EQ_INT(mt_f32_to_bf16(1.0f), 0x3f80);
    CHECK_EQ_INT(mt_f32_to_bf16(u2f(0x3f808000u)), 0x3f80);  /* tie -> even */
    CHECK_EQ_INT(mt_f32_to_bf16(u2f(0x3f818000u)), 0x3f82);  /* tie -> even (up) */
    CHECK_EQ_INT(mt_f32_to_bf16(u2f(0x3f808001u)), 0x3f81);
    CHECK_EQ_INT(mt_f32_to_bf16(u2f(0x7f7fffffu)), 0x7f80);  /* max float rounds to inf */
    CHECK((mt_f32_to_bf16(u2f(0x7f800001u)) & 0x7fff) > 0x7f80);  /* NaN stays NaN */
    CHECK(mt_bf16_to_f32(0xc040) == -3.0f);
#ifdef __F16C__
    /* every half against the hardware converter */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float a = mt_f16_to_f32((uint16_t)h), b = _cvtsh_ss((uint16_t)h);
        if (f2u(a) != f2u(b) && !(a != a && b != b)) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    /* a spread of floats (every exponent, many mantissas) against the hardware RNE converter */
    bad = 0;
    uint32_t seed = 12345;
    for (uint32_t i = 0; i < (1u << 22); i++) {
        seed = seed * 1664525u + 1013904223u;
        uint32_t u = (i << 10) ^ (seed >> 22);
        float f = u2f(u);
        uint16_t a = mt_f32_to_f16(f), b = _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
        if (a != b && !(f != f)) bad++;
    }
    CHECK_EQ_INT(bad, 0);
#endif
    /* dtype table */
    mt_dtype t;
    CHECK(mt_dtype_parse("BF16", &t) == 0 && t == MT_BF16);
    CHECK(mt_dtype_parse("bf16", &t) != 0);
    CHECK(mt_dtype_parse("F8_E4M3", &t) == 0 && mt_dtype_size(t) == 1);
    CHECK_STR(mt_dtype_name(MT_I64), "I64");
    /* bytes per element of every safetensors type (the table is inline in dtype.h) */
    static const struct { const char *name; size_t size; } sz[] = {
        {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"U32", 4}, {"U8", 1}, {"I8", 1}, {"I32", 4}, {"I64", 8},
        {"BOOL", 1}, {"U16", 2}, {"I16", 2}, {"U64", 8}, {"F64", 8}, {"F8_E4M3", 1}, {"F8_E8M0", 1}};
    for (size_t i = 0; i < sizeof sz / sizeof *sz; i++)
        CHECK_MSG(mt_dtype_parse(sz[i].name, &t) == 0 && mt_dtype_size(t) == sz[i].size, "%s", sz[i].name);
    CHECK(mt_dtype_size(MT_DTYPE_COUNT) == 0);
    CHECK_EQ_INT(mt_dtype_size(MT_I64), 8);
    CHECK_EQ_INT(mt_dtype_size(MT_BOOL), 1);
    unsigned char e4[3] = {0x38, 0xfe, 0x01}, e8[3] = {127, 130, 0};
    float o[3];
    mt_convert_to_f32(o, e4, MT_F8_E4M3, 3);
    CHECK(o[0] == 1.0f && o[1] == -448.0f && o[2] == 0x1p-9f);
    mt_convert_to_f32(o, e8, MT_F8_E8M0, 3);
    CHECK(o[0] == 1.0f && o[1] == 8.0f && o[2] == 0x1p-127f);
}

static void test_codes(void) {
    static const int bl[] = {2, 3, 4, 5, 6, 8};
    for (int bi = 0; bi < 6; bi++) {
        int b = bl[bi];
        uint32_t row[8 * 8] = {0};
        size_t K = 64 * 8 / 8;       /* 64 codes */
        for (size_t i = 0; i < K; i++) mt_quant_set_code(row, i, b, (uint32_t)(i * 7 + 3) & ((1u << b) - 1));
        int ok = 1;
        uint8_t codes[64];
        mt_quant_unpack_row(codes, row, K, b);
        for (size_t i = 0; i < K; i++) {
            uint32_t want = (uint32_t)(i * 7 + 3) & ((1u << b) - 1);
            if (mt_quant_code(row, i, b) != want || codes[i] != want) ok = 0;
            /* the plain bitstream definition: bit k of the row = bit k%32 of word k/32 */
            uint32_t v = 0;
            for (int k = 0; k < b; k++) {
                size_t bit = i * (size_t)b + (size_t)k;
                v |= ((row[bit / 32] >> (bit % 32)) & 1u) << k;
            }
            if (v != want) ok = 0;
        }
        CHECK_MSG(ok, "bits %d", b);
    }
    /* 3-bit: code 10 straddles words 0 and 1 */
    uint32_t r3[3] = {0};
    mt_quant_set_code(r3, 10, 3, 5);
    CHECK(r3[0] == 0x40000000u && r3[1] == 1u);
}

static int affine_combos_ok;

static void test_affine_file(const char *dtname, mt_dtype sdt) {
    char path[512];
    const char *dir = getenv("MT_QUANT_DIR");   /* optional stress goldens (see gen_quant_goldens.py) */
    snprintf(path, sizeof path, "%s/affine_%s.safetensors", dir ? dir : "tests/data/quant", dtname);
    mt_err err = {0};
    mt_safetensors *st = NULL;
    CHECK_OK(mt_safetensors_open(&st, path, &err), &err);
    if (!st) return;
    const mt_tensor_view *x = mt_safetensors_get(st, "x");
    CHECK(x && x->dtype == sdt && x->ndim == 2);
    if (!x) { mt_safetensors_free(st); return; }
    size_t rows = (size_t)x->shape[0], K = (size_t)x->shape[1];
    float *xf = malloc(rows * K * 4), *deq = malloc(rows * K * 4), *ref = malloc(rows * K * 4);
    uint32_t *wq = malloc(rows * K);
    unsigned char *sc = malloc(rows * K * 4), *bs = malloc(rows * K * 4);
    mt_convert_to_f32(xf, x->data, sdt, rows * K);
    static const int bl[] = {2, 3, 4, 5, 6, 8}, gl[] = {32, 64, 128};
    for (int bi = 0; bi < 6; bi++)
        for (int gi = 0; gi < 3; gi++) {
            int b = bl[bi], g = gl[gi];
            char n[64];
            snprintf(n, sizeof n, "w_%d_%d", b, g);
            const mt_tensor_view *w = mt_safetensors_get(st, n);
            snprintf(n, sizeof n, "scales_%d_%d", b, g);
            const mt_tensor_view *s = mt_safetensors_get(st, n);
            snprintf(n, sizeof n, "biases_%d_%d", b, g);
            const mt_tensor_view *bb = mt_safetensors_get(st, n);
            snprintf(n, sizeof n, "deq_%d_%d", b, g);
            const mt_tensor_view *d = mt_safetensors_get(st, n);
            CHECK(w && s && bb && d);
            if (!w || !s || !bb || !d) continue;
            CHECK(w->dtype == MT_U32 && s->dtype == sdt && d->dtype == sdt);
            CHECK_EQ_INT(w->nbytes, rows * K * (size_t)b / 8);
            CHECK_EQ_INT(s->nbytes, rows * K / (size_t)g * mt_dtype_size(sdt));
            /* dequantize: bit-exact */
            mt_convert_to_f32(ref, d->data, sdt, rows * K);
            memset(deq, 0xff, rows * K * 4);
            CHECK_OK(mt_dequantize_affine(deq, w->data, s->data, bb->data, sdt, rows, K, b, g, &err), &err);
            size_t diff = 0;
            for (size_t i = 0; i < rows * K; i++) diff += f2u(deq[i]) != f2u(ref[i]);
            CHECK_MSG(diff == 0, "%s bits %d group %d: %zu of %zu values differ", dtname, b, g, diff, rows * K);
            /* row variant on the last row */
            size_t r = rows - 1;
            CHECK_OK(mt_dequantize_affine_row(deq, (const uint32_t *)((const char *)w->data + r * K * b / 8),
                                              (const char *)s->data + r * (K / g) * mt_dtype_size(sdt),
                                              (const char *)bb->data + r * (K / g) * mt_dtype_size(sdt), sdt, K, b, g,
                                              &err), &err);
            CHECK(memcmp(deq, ref + r * K, K * 4) == 0);
            /* quantize: same words, scales, biases as mx.quantize on CPU */
            CHECK_OK(mt_quantize_affine(wq, sc, bs, sdt, xf, rows, K, b, g, 0, &err), &err);
            int qok = memcmp(wq, w->data, w->nbytes) == 0;
            int sok = memcmp(sc, s->data, s->nbytes) == 0;
            int bok = memcmp(bs, bb->data, bb->nbytes) == 0;
            CHECK_MSG(qok && sok && bok, "%s bits %d group %d: quantize w %d scales %d biases %d", dtname, b, g, qok, sok, bok);
            if (diff == 0 && qok && sok && bok) affine_combos_ok++;
        }
    /* error paths */
    CHECK(mt_dequantize_affine(deq, wq, sc, bs, sdt, 1, 100, 4, 64, &err) == MT_EINVAL);
    CHECK(strstr(err.msg, "multiple of the group size") != NULL);
    CHECK(mt_dequantize_affine(deq, wq, sc, bs, sdt, 1, 128, 7, 64, &err) == MT_EINVAL);
    CHECK(mt_dequantize_affine(deq, wq, sc, bs, MT_I32, 1, 128, 4, 64, &err) == MT_EINVAL);
    CHECK(mt_quantize_affine(wq, sc, bs, sdt, xf, 1, 128, 4, 48, 0, &err) == MT_EINVAL);
    free(xf); free(deq); free(ref); free(wq); free(sc); free(bs);
    mt_safetensors_free(st);
}

static void test_metal_rules(void) {
    /* all-negative group: the CPU rule uses the true max, the Metal rule max(0, max) */
    float x[32];
    for (int i = 0; i < 32; i++) x[i] = -1.0f - (float)i / 31.0f;   /* -1 .. -2 */
    uint32_t w[4];
    float s, b, s2, b2;
    mt_err err;
    CHECK_OK(mt_quantize_affine(w, &s, &b, MT_F32, x, 1, 32, 4, 32, 0, &err), &err);
    CHECK_OK(mt_quantize_affine(w, &s2, &b2, MT_F32, x, 1, 32, 4, 32, 1, &err), &err);
    CHECK(b == -2.0f && b2 == -2.0f);             /* |min| > |max|: edge = min in both */
    CHECK(s > 0 && s < 1.0f / 15.0f + 1e-6f);     /* range 1 over 15 steps */
    CHECK(s2 > 2.0f / 15.0f - 1e-6f);             /* range 2 (max clamped to 0) */
    /* round half away vs to even: x = {0, 1, 2, ..., 15} * 0.5 + edge cases */
    float y[32], out[32];
    for (int i = 0; i < 32; i++) y[i] = (float)(i % 16);
    CHECK_OK(mt_quantize_affine(w, &s, &b, MT_F32, y, 1, 32, 4, 32, 0, &err), &err);
    CHECK_OK(mt_dequantize_affine(out, w, &s, &b, MT_F32, 1, 32, 4, 32, &err), &err);
    int ok = 1;
    for (int i = 0; i < 32; i++) ok &= out[i] == y[i];
    CHECK(ok);   /* integers 0..15 are exactly representable at 4 bits */
}

static void test_fp(void) {
    mt_err err = {0};
    mt_safetensors *st = NULL;
    const char *dir = getenv("MT_QUANT_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/fp.safetensors", dir ? dir : "tests/data/quant");
    CHECK_OK(mt_safetensors_open(&st, path, &err), &err);
    if (!st) return;
    static const char *modes[] = {"mxfp4", "mxfp8", "nvfp4", "nvfp4_gs"};
    float gsv = 0.0f;
    CHECK_OK(mt_safetensors_read_f32(st, "global_scale", &gsv, 1, 0, &err), &err);
    CHECK(gsv == 37.5f);
    for (int m = 0; m < 4; m++) {
        char n[64];
        snprintf(n, sizeof n, "w_%s", modes[m]);
        const mt_tensor_view *w = mt_safetensors_get(st, n);
        snprintf(n, sizeof n, "scales_%s", modes[m]);
        const mt_tensor_view *s = mt_safetensors_get(st, n);
        snprintf(n, sizeof n, "deq_%s", modes[m]);
        const mt_tensor_view *d = mt_safetensors_get(st, n);
        CHECK(w && s && d && d->dtype == MT_F32 && s->dtype == MT_U8);
        if (!w || !s || !d) continue;
        int mode = 0;
        CHECK(mt_qmode_parse(m == 3 ? "nvfp4" : modes[m], &mode) == 0);
        size_t rows = (size_t)d->shape[0], K = (size_t)d->shape[1];
        float *out = malloc(rows * K * 4), *ref = malloc(rows * K * 4);
        mt_convert_to_f32(ref, d->data, MT_F32, rows * K);
        CHECK_OK(mt_dequantize_fp(out, w->data, s->data, mode, rows, K, m == 3 ? gsv : 0.0f, &err), &err);
        size_t diff = 0;
        for (size_t i = 0; i < rows * K; i++) diff += f2u(out[i]) != f2u(ref[i]);
        CHECK_MSG(diff == 0, "%s: %zu values differ", modes[m], diff);
        free(out); free(ref);
    }
    mt_safetensors_free(st);
}

static void test_params(void) {
    mt_err err;
    mt_quant_params p = {4, 64, MT_QMODE_AFFINE};
    CHECK(mt_quant_params_check(&p, &err) == 0);
    p.bits = 7;
    CHECK(mt_quant_params_check(&p, &err) == MT_EUNSUPPORTED);
    CHECK(strstr(err.msg, "bits 7") != NULL);
    p = (mt_quant_params){4, 32, MT_QMODE_MXFP4};
    CHECK(mt_quant_params_check(&p, &err) == 0);
    p.group_size = 64;
    CHECK(mt_quant_params_check(&p, &err) != 0);
    CHECK_EQ_INT(mt_qmode_default_group_size(MT_QMODE_NVFP4), 16);
    CHECK_EQ_INT(mt_qmode_default_bits(MT_QMODE_MXFP8), 8);
    int mode;
    CHECK(mt_qmode_parse("fp4", &mode) != 0);
    CHECK_STR(mt_qmode_name(MT_QMODE_AFFINE), "affine");
}

int main(void) {
    test_f16();
    test_codes();
    test_affine_file("float16", MT_F16);
    test_affine_file("bfloat16", MT_BF16);
    test_affine_file("float32", MT_F32);
    printf("affine combos bit-exact (dequantize + quantize): %d of 54\n", affine_combos_ok);
    CHECK_EQ_INT(affine_combos_ok, 54);
    test_metal_rules();
    test_fp();
    test_params();
    return check_report("quant");
}
