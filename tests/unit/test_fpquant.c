/* test_fpquant.c - MLX's fp quantization modes (mxfp4, nvfp4, mxfp8) in
 * mt_linear against mlx goldens (tests/gen/gen_fpquant_goldens.py):
 * dequantized rows (float32 as the products use them, bfloat16 as
 * mx.dequantize / QuantizedEmbedding give them) bit for bit, and
 * mt_linear_forward (direct kernels for T <= 24, tiles + sgemm above, on every
 * CPU path of this machine), mt_linear_forward_rows1 and the reference against
 * mx.quantized_matmul, including the formats' edge codes (E8M0 0 / 255,
 * E4M3 NaN / subnormal / -0 scales, fp8 NaN elements). */
#include <stdint.h>
#include <stdlib.h>
#include "check.h"
#include "core/cpu.h"
#include "core/pool.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "tensor/linear.h"
#include "tensor/quant.h"

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* Same value class and, when finite, within 2e-6 of the scale of the sum
 * (mag 0: the sum's terms overflow float; then 1e-6 relative). */
static int close_to(float y, float ref, float mag) {
    if (mag == 0.f && isfinite(ref) && isfinite(y)) return fabsf(y - ref) <= 1e-6f * fabsf(ref);
    if (isnan(ref) || isnan(y)) return isnan(ref) && isnan(y);
    if (isinf(ref) || isinf(y)) return y == ref;
    return fabsf(y - ref) <= 2e-6f * mag + 1e-37f;
}

typedef struct fcase {
    mt_linear l;
    float *x, *y;                  /* [T, K], golden [T, rows] (copies: the file's data may be unaligned) */
    const mt_tensor_view *d32, *d16;
    size_t T;
    float *mag;                    /* [T, rows]: sum |x * w| (from our own float rows) */
} fcase;

static const mt_tensor_view *get(const mt_safetensors *st, const char *c, const char *m, const char *k) {
    char n[64];
    snprintf(n, sizeof n, "%s_%s_%s", c, m, k);
    return mt_safetensors_get(st, n);
}

static int load_case(fcase *f, const mt_safetensors *st, const char *c, const char *m) {
    const mt_tensor_view *w = get(st, c, m, "w"), *s = get(st, c, m, "s"), *x = get(st, c, m, "x"),
                         *y = get(st, c, m, "y");
    CHECK_MSG(w && s && x && y, "%s_%s: tensors missing", c, m);
    if (!w || !s || !x || !y) return 0;
    memset(f, 0, sizeof *f);
    int mode = 0;
    CHECK(mt_qmode_parse(m, &mode) == MT_OK);
    f->l.quantized = 1;
    f->l.mode = mode;
    f->l.bits = mt_qmode_default_bits(mode);
    f->l.group_size = mt_qmode_default_group_size(mode);
    f->l.out = (size_t)w->shape[0];
    f->l.in = (size_t)x->shape[1];
    f->l.w = w->data;
    f->l.scales = s->data;
    f->l.sdt = mt_qmode_scale_dtype(mode, s->dtype);
    f->T = (size_t)x->shape[0];
    size_t nx = f->T * f->l.in, ny = f->T * f->l.out;
    f->x = malloc(nx * sizeof *f->x);
    f->y = malloc(ny * sizeof *f->y);
    if (!f->x || !f->y) { free(f->x); free(f->y); CHECK(0); return 0; }
    memcpy(f->x, x->data, nx * sizeof *f->x);
    memcpy(f->y, y->data, ny * sizeof *f->y);
    f->d32 = get(st, c, m, "d32");
    f->d16 = get(st, c, m, "d16");
    CHECK(s->dtype == MT_U8 && (size_t)y->shape[1] == f->l.out && (size_t)s->shape[1] * f->l.group_size == f->l.in);
    /* sum |x * e * s| in double (e * s may overflow float) */
    f->mag = malloc(f->T * f->l.out * sizeof *f->mag);
    size_t K = f->l.in, gs = (size_t)f->l.group_size, rb = K * (size_t)f->l.bits / 8;
    for (size_t r = 0; r < f->l.out; r++) {
        const uint8_t *wr = (const uint8_t *)w->data + r * rb, *sr = (const uint8_t *)s->data + r * (K / gs);
        for (size_t t = 0; t < f->T; t++) {
            double a = 0.0;
            for (size_t k = 0; k < K; k++) {
                double e = f->l.bits == 8 ? mt_fp8_e4m3_to_f32(wr[k]) : mt_fp4_e2m1_to_f32((uint8_t)(wr[k / 2] >> (k % 2 * 4)));
                a += fabs((double)f->x[t * K + k] * e * mt_qfp_scale(sr[k / gs], mode));
            }
            f->mag[t * f->l.out + r] = isfinite(a) && a < 1e38 ? (float)a : 0.f;
        }
    }
    return 1;
}

/* The dequantized rows, bit for bit (NaN = NaN). */
static void test_rows(const fcase *f, const char *name) {
    if (!f->d32) return;
    size_t K = f->l.in, diff32 = 0, diff16 = 0;
    float *row = malloc(K * sizeof *row), *ref = malloc(K * sizeof *ref);
    int best = mt_cpu_best();
    for (size_t r = 0; r < f->l.out; r++) {
        mt_convert_to_f32(ref, (const char *)f->d32->data + r * K * 4, MT_F32, K);
        for (int level = MT_CPU_PORTABLE; level <= best; level++) {   /* every path's row decoder */
            mt_cpu_force(level);
            mt_linear_row_f32(&f->l, r, row);
            for (size_t k = 0; k < K; k++) diff32 += f2u(row[k]) != f2u(ref[k]) && !(isnan(row[k]) && isnan(ref[k]));
        }
        mt_cpu_force(best);
        mt_linear_row(&f->l, r, row);
        mt_convert_to_f32(ref, (const char *)f->d16->data + r * K * 2, f->d16->dtype, K);
        for (size_t k = 0; k < K; k++) diff16 += f2u(row[k]) != f2u(ref[k]) && !(isnan(row[k]) && isnan(ref[k]));
    }
    CHECK_MSG(diff32 == 0, "%s: %zu float32 dequantized values differ from mx.dequantize", name, diff32);
    CHECK_MSG(diff16 == 0, "%s: %zu bfloat16 dequantized values differ from mx.dequantize", name, diff16);
    printf("  %s: %zu rows x %zu dequantized bit-exact (float32 on every CPU path, bfloat16)\n", name, f->l.out, K);
    free(row);
    free(ref);
}

/* y of T tokens against the golden: the number of outputs out of bounds. */
static size_t count_bad(const fcase *f, const float *y, size_t T) {
    size_t bad = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t r = 0; r < f->l.out; r++)
            bad += !close_to(y[t * f->l.out + r], f->y[t * f->l.out + r], f->mag[t * f->l.out + r]);
    return bad;
}

static void test_products(const fcase *f, const char *name, mt_pool *pool) {
    size_t rows = f->l.out, K = f->l.in;
    float *y = malloc(f->T * rows * sizeof *y), *y1 = malloc(f->T * rows * sizeof *y1);
    /* the reference multiplies dequantized rows: it matches mlx on rows whose
     * scales are finite and below 2^97 (an inf scale times a 0 code is NaN there) */
    CHECK(mt_linear_forward_ref(&f->l, f->x, f->T, y) == MT_OK);
    size_t bad = 0, skipped = 0, ng = K / (size_t)f->l.group_size;
    for (size_t r = 0; r < rows; r++) {
        int plain = 1;
        for (size_t g = 0; g < ng; g++) {
            float s = mt_qfp_scale(((const uint8_t *)f->l.scales)[r * ng + g], f->l.mode);
            plain &= isfinite(s) && s < 0x1p97f;
        }
        skipped += !plain;
        for (size_t t = 0; plain && t < f->T; t++)
            bad += !close_to(y[t * rows + r], f->y[t * rows + r], f->mag[t * rows + r]);
    }
    CHECK_MSG(bad == 0, "%s: reference: %zu outputs differ from mx.quantized_matmul", name, bad);
    printf("  %s: reference on %zu of %zu rows: %zu outputs off mlx\n", name, rows - skipped, rows, bad);
    static const char *const lv[] = {"portable", "avx2", "avx512"};
    int best = mt_cpu_best();
    static const size_t Ts[] = {1, 2, 3, 8, 9, 24, 30};
    for (int level = MT_CPU_PORTABLE; level <= best; level++) {
        mt_cpu_force(level);
        size_t worst = 0;
        for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++) {
            size_t T = Ts[i] < f->T ? Ts[i] : f->T;
            mt_linear_forward(&f->l, f->x, T, y, NULL, pool);
            bad = count_bad(f, y, T);
            CHECK_MSG(bad == 0, "%s %s T=%zu: %zu outputs differ from mx.quantized_matmul", name, lv[level], T, bad);
            worst += bad;
        }
        /* rows computed as alone: each equals the one-token product bit for bit */
        size_t T = f->T < 5 ? f->T : 5, diff = 0;
        mt_linear_forward_rows1(&f->l, f->x, T, y, NULL, pool);
        for (size_t t = 0; t < T; t++) mt_linear_forward(&f->l, f->x + t * K, 1, y1 + t * rows, NULL, pool);
        for (size_t i = 0; i < T * rows; i++) diff += f2u(y[i]) != f2u(y1[i]);
        CHECK_MSG(diff == 0, "%s %s: rows1 differs from one-token products in %zu outputs", name, lv[level], diff);
        printf("  %s %s: T in {1,2,3,8,9,24,%zu} x %zu rows x K %zu: %zu outputs off mlx, rows1 %s\n", name, lv[level],
               f->T, rows, K, worst, diff ? "differs" : "bit-identical");
    }
    mt_cpu_force(best);
    free(y);
    free(y1);
}

/* mt_linear_forward_mlx (--numerics mlx) for bfloat16 / float16 activations: bit for bit
 * mx.quantized_matmul of x cast to that type. */
static void test_mlx16(const fcase *f, const mt_safetensors *st, const char *c, const char *m, mt_pool *pool) {
    static const mt_dtype ts[2] = {MT_BF16, MT_F16};
    static const char *const tn[2] = {"ybf16", "yf16"};
    size_t rows = f->l.out, K = f->l.in, n = f->T * K;
    for (int i = 0; i < 2; i++) {
        const mt_tensor_view *g = get(st, c, m, tn[i]);
        CHECK_MSG(g && g->dtype == ts[i], "%s_%s_%s missing", c, m, tn[i]);
        if (!g) continue;
        float *x = malloc(n * sizeof *x), *y = malloc(f->T * rows * sizeof *y), *ref = malloc(f->T * rows * sizeof *ref);
        float *work = malloc((size_t)mt_pool_size(pool) * MT_LINEAR_MLX_WORK(K) * sizeof *work);
        for (size_t k = 0; k < n; k++) x[k] = ts[i] == MT_BF16 ? mt_round_bf16(f->x[k]) : mt_round_f16(f->x[k]);
        mt_convert_to_f32(ref, g->data, g->dtype, f->T * rows);
        mt_linear_forward_mlx(&f->l, x, f->T, y, ts[i], work, pool);
        size_t diff = 0;
        for (size_t k = 0; k < f->T * rows; k++) diff += f2u(y[k]) != f2u(ref[k]) && !(isnan(y[k]) && isnan(ref[k]));
        CHECK_MSG(diff == 0, "%s %s %s: %zu of %zu outputs differ from mlx", c, m, tn[i], diff, f->T * rows);
        printf("  %s %s numerics mlx, %s activations: %zu of %zu outputs bit-exact\n", c, m,
               ts[i] == MT_BF16 ? "bfloat16" : "float16", f->T * rows - diff, f->T * rows);
        free(x); free(y); free(ref); free(work);
    }
}

/* mt_quantize_fp against mx.quantize for float32 / bfloat16 / float16 inputs, bit for bit. */
static void test_quantize(const mt_safetensors *st) {
    static const char *const modes[] = {"mxfp4", "nvfp4", "mxfp8"}, *const dts[] = {"float32", "bfloat16", "float16"};
    static const mt_dtype dt[] = {MT_F32, MT_BF16, MT_F16};
    for (int mi = 0; mi < 3; mi++)
        for (int di = 0; di < 3; di++) {
            char n[64];
            snprintf(n, sizeof n, "q_%s_%s_x", modes[mi], dts[di]);
            const mt_tensor_view *x = mt_safetensors_get(st, n);
            snprintf(n, sizeof n, "q_%s_%s_w", modes[mi], dts[di]);
            const mt_tensor_view *w = mt_safetensors_get(st, n);
            snprintf(n, sizeof n, "q_%s_%s_s", modes[mi], dts[di]);
            const mt_tensor_view *s = mt_safetensors_get(st, n);
            CHECK_MSG(x && w && s, "q_%s_%s missing", modes[mi], dts[di]);
            if (!x || !w || !s) continue;
            int mode = 0;
            mt_qmode_parse(modes[mi], &mode);
            size_t rows = (size_t)x->shape[0], K = (size_t)x->shape[1];
            float *xf = malloc(rows * K * sizeof *xf);
            uint8_t *wq = malloc(w->nbytes), *sq = malloc(s->nbytes);
            mt_convert_to_f32(xf, x->data, MT_F32, rows * K);
            mt_err err = {0};
            CHECK_OK(mt_quantize_fp(wq, sq, dt[di], xf, rows, K, mode, &err), &err);
            size_t dw = 0, ds = 0;
            for (size_t i = 0; i < w->nbytes; i++) dw += wq[i] != ((const uint8_t *)w->data)[i];
            for (size_t i = 0; i < s->nbytes; i++) ds += sq[i] != ((const uint8_t *)s->data)[i];
            CHECK_MSG(dw == 0 && ds == 0, "quantize %s %s: %zu code bytes, %zu scales differ from mx.quantize", modes[mi],
                      dts[di], dw, ds);
            printf("  quantize %s from %s: %zu x %zu, codes and scales %s\n", modes[mi], dts[di], rows, K,
                   dw || ds ? "DIFFER" : "bit-exact");
            free(xf); free(wq); free(sq);
        }
}

/* The codes' decoding tables against mlx's rules, a few values by hand. */
static void test_tables(void) {
    CHECK(mt_fp4_e2m1_to_f32(7) == 6.0f && mt_fp4_e2m1_to_f32(9) == -0.5f && signbit(mt_fp4_e2m1_to_f32(8)));
    CHECK(mt_fp8_e8m0_to_f32(127) == 1.0f && mt_fp8_e8m0_to_f32(0) == 0x1p-127f);
    CHECK(isinf(mt_fp8_e8m0_to_f32(255)));   /* mlx: a bfloat16 exponent of all ones */
    CHECK(mt_fp8_e4m3_to_f32(0x7e) == 448.0f && mt_fp8_e4m3_to_f32(0x01) == 0x1p-9f);
    CHECK(isnan(mt_fp8_e4m3_to_f32(0x7f)) && isnan(mt_fp8_e4m3_to_f32(0xff)));
    CHECK(mt_qfp_scale(0x38, MT_QMODE_NVFP4) == 1.0f && mt_qfp_scale(0x38, MT_QMODE_MXFP4) == 0x1p-71f);
    float out[32];
    uint8_t w[32] = {0}, s[2] = {127, 127};
    CHECK(mt_qfp_row_f32(out, w, s, MT_QMODE_AFFINE, 32, 0) == MT_EINVAL);
    CHECK(mt_qfp_row_f32(out, w, s, MT_QMODE_MXFP4, 48, 0) == MT_EINVAL);
    CHECK(mt_qfp_row_f32(out, w, s, MT_QMODE_MXFP8, 32, 0) == MT_OK && out[0] == 0.0f);
}

/* mt_linear_bind of fp-quantized modules: scale dtypes, no biases, no global scale. */
static void test_bind(void) {
    mt_err err = {0};
    mt_safetensors *st = NULL;
    mt_config *cfg = NULL;
    static const char cj[] = "{\"quantization\": {\"group_size\": 32, \"bits\": 4, \"mode\": \"mxfp4\", "
                             "\"nv\": {\"group_size\": 16, \"bits\": 4, \"mode\": \"nvfp4\"}, "
                             "\"nvg\": {\"group_size\": 16, \"bits\": 4, \"mode\": \"nvfp4\"}}}";
    CHECK_OK(mt_safetensors_open(&st, "tests/data/fpquant/bind.safetensors", &err), &err);
    CHECK_OK(mt_config_parse(&cfg, cj, sizeof cj - 1, "config.json", &err), &err);
    if (!st || !cfg) { mt_safetensors_free(st); mt_config_free(cfg); return; }
    mt_linear l;
    CHECK_OK(mt_linear_bind(&l, st, cfg, "u8", 4, 64, -1, &err), &err);
    CHECK(l.quantized && l.mode == MT_QMODE_MXFP4 && l.sdt == MT_F8_E8M0 && !l.biases && l.group_size == 32);
    CHECK_OK(mt_linear_bind(&l, st, cfg, "e8m0", 0, 0, -1, &err), &err);
    CHECK(l.quantized && l.in == 64 && l.out == 4 && l.sdt == MT_F8_E8M0);
    CHECK_OK(mt_linear_bind(&l, st, cfg, "nv", 4, 64, -1, &err), &err);
    CHECK(l.quantized && l.mode == MT_QMODE_NVFP4 && l.sdt == MT_F8_E4M3 && l.group_size == 16);
    int rc = mt_linear_bind(&l, st, cfg, "f16", 4, 64, -1, &err);
    CHECK_MSG(rc == MT_EFORMAT && strstr(err.msg, "'f16.scales': dtype F16, expected U8 (mxfp4 scales)"), "%d %s", rc, err.msg);
    rc = mt_linear_bind(&l, st, cfg, "bias", 4, 64, -1, &err);
    CHECK_MSG(rc == MT_EFORMAT && strstr(err.msg, "mxfp4 quantization has no biases, but 'bias.biases' exists"), "%d %s",
              rc, err.msg);
    rc = mt_linear_bind(&l, st, cfg, "nvg", 4, 64, -1, &err);
    CHECK_MSG(rc == MT_EUNSUPPORTED && strstr(err.msg, "nvfp4 with a global scale is not supported"), "%d %s", rc, err.msg);
    rc = mt_linear_bind(&l, st, cfg, "u8", 4, 48, -1, &err);   /* a shape the packing cannot hold */
    CHECK_MSG(rc == MT_EFORMAT, "%d %s", rc, err.msg);
    printf("  bind: U8 / F8_E8M0 / F8_E4M3 scales taken; F16 scales, biases and a global scale refused\n");
    mt_config_free(cfg);
    mt_safetensors_free(st);
}

int main(void) {
    mt_err err = {0};
    mt_safetensors *st = NULL;
    CHECK_OK(mt_safetensors_open(&st, "tests/data/fpquant/fpq.safetensors", &err), &err);
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 3, &err), &err);
    test_tables();
    test_bind();
    if (st) test_quantize(st);
    static const char *const cases[][2] = {{"rand", "mxfp4"}, {"rand", "nvfp4"}, {"rand", "mxfp8"}, {"edge", "mxfp4"},
                                           {"edge", "nvfp4"}, {"edge", "mxfp8"}, {"odd", "nvfp4"}};
    for (size_t i = 0; st && i < sizeof cases / sizeof *cases; i++) {
        fcase f;
        char name[32];
        snprintf(name, sizeof name, "%s %s", cases[i][0], cases[i][1]);
        if (!load_case(&f, st, cases[i][0], cases[i][1])) continue;
        test_rows(&f, name);
        test_products(&f, name, pool);
        test_mlx16(&f, st, cases[i][0], cases[i][1], pool);
        free(f.mag);
        free(f.x);
        free(f.y);
    }
    mt_pool_free(pool);
    mt_safetensors_free(st);
    return check_report("fpquant");
}
