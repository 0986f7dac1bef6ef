/* test_kernels.c - the SIMD kernels (quantized and dense matrix-vector,
 * tiles + sgemm, vector ops) against the plain C references, on random inputs
 * with awkward sizes, on every CPU path this machine has (portable, avx2,
 * avx512), switched with mt_cpu_force. */
#include <stdint.h>
#include <stdlib.h>
#include "check.h"
#include "core/cpu.h"
#include "core/pool.h"
#include "tensor/linear.h"
#include "tensor/ops.h"
#include "tensor/quant.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() & 0xffffff) / 16777216.0f; }

static void store(void *p, mt_dtype t, size_t i, float f) {
    unsigned char *b = p;
    if (t == MT_F32) { memcpy(b + 4 * i, &f, 4); return; }
    uint16_t h = t == MT_F16 ? mt_f32_to_f16(f) : mt_f32_to_bf16(f);
    memcpy(b + 2 * i, &h, 2);
}
static float load(const void *p, mt_dtype t, size_t i) {
    float f;
    mt_convert_to_f32(&f, (const unsigned char *)p + i * mt_dtype_size(t), t, 1);
    return f;
}

/* Worst |y - ref| / bound over all outputs; <= 1 passes. */
typedef struct qcase {
    int bits, gs;
    mt_dtype sdt;
    size_t out, K, T;
    int with_bias;
} qcase;

static int paths[3], npaths;

static void run_qcase(const qcase *c, mt_pool *pool, double *worst) {
    size_t K = c->K, out = c->out, T = c->T, ng = K / (size_t)c->gs, ss = mt_dtype_size(c->sdt);
    size_t words = mt_quant_row_words(K, c->bits);
    uint32_t *w = malloc(out * words * 4 + 64);
    /* +1 byte offset: mmapped weights carry no alignment guarantee */
    unsigned char *sbuf = malloc(out * ng * ss + 1), *bbuf = malloc(out * ng * ss + 1);
    float *bias = malloc(out * sizeof *bias);
    float *x = malloc(T * K * sizeof *x), *y = malloc(T * out * sizeof *y), *ref = malloc(T * out * sizeof *ref);
    float *row = malloc(K * sizeof *row), *work = malloc(2 * K * sizeof *work);
    for (size_t i = 0; i < out * words; i++) w[i] = rnd() ^ (rnd() << 16);
    float qmax = (float)((1 << c->bits) - 1);
    for (size_t i = 0; i < out * ng; i++) {
        float s = frand(0.002f, 0.05f);
        store(sbuf + 1, c->sdt, i, s);
        store(bbuf + 1, c->sdt, i, -s * qmax * frand(0.3f, 0.7f));
    }
    for (size_t r = 0; r < out; r++) bias[r] = frand(-1, 1);
    for (size_t i = 0; i < T * K; i++) x[i] = frand(-2, 2);
    mt_linear l = {.out = out, .in = K, .quantized = 1, .w = w, .scales = sbuf + 1, .biases = bbuf + 1,
                   .sdt = c->sdt, .bits = c->bits, .group_size = c->gs,
                   .bias = c->with_bias ? bias : NULL, .bdt = MT_F32};
    CHECK(mt_linear_forward_ref(&l, x, T, ref) == 0);
    /* error bound: reassociation only, for every scale type and T: every path
     * multiplies by s*q + b in float32, unrounded, as mx.quantized_matmul does
     * (so a row's result does not depend on how many rows go together) */
    double es = 0;
    double *bound = calloc(T * out, sizeof *bound);
    uint8_t *codes = malloc(K);
    for (size_t r = 0; r < out; r++) {
        mt_dequantize_affine_row(row, w + r * words, sbuf + 1 + r * ng * ss, bbuf + 1 + r * ng * ss, c->sdt, K,
                                 c->bits, c->gs, NULL);
        mt_quant_unpack_row(codes, w + r * words, K, c->bits);
        for (size_t t = 0; t < T; t++) {
            double b = 1e-6;
            for (size_t i = 0; i < K; i++) {
                double s = load(sbuf + 1, c->sdt, r * ng + i / (size_t)c->gs);
                double bb = load(bbuf + 1, c->sdt, r * ng + i / (size_t)c->gs);
                double ax = fabs(x[t * K + i]);
                b += ax * (fabs(row[i]) * 4e-6 + (fabs(codes[i] * s) + fabs(bb)) * es);
            }
            bound[t * out + r] = b;
        }
    }
    for (int p = 0; p < npaths; p++) {
        mt_cpu_force(paths[p]);
        for (int pi = 0; pi < 2; pi++) {
            mt_pool *pp = pi ? pool : NULL;
            for (size_t i = 0; i < T * out; i++) y[i] = NAN;
            mt_linear_forward(&l, x, T, y, work, pp);
            size_t bad = 0;
            for (size_t i = 0; i < T * out; i++) {
                double e = fabs((double)y[i] - ref[i]) / bound[i];
                if (!(e <= 1.0)) bad++;
                if (e > worst[p] || e != e) worst[p] = e != e ? 1e30 : e;
            }
            CHECK_MSG(bad == 0, "%s: bits %d gs %d %s out %zu K %zu T %zu bias %d pool %d: %zu outputs off",
                      mt_cpu_name(paths[p]), c->bits, c->gs, mt_dtype_name(c->sdt), out, K, T, c->with_bias, pi, bad);
        }
    }
    mt_cpu_force(-1);
    free(codes);
    free(bound);
    free(w);
    free(sbuf);
    free(bbuf);
    free(bias);
    free(x);
    free(y);
    free(ref);
    free(row);
    free(work);
}

static void test_quantized(mt_pool *pool) {
    static const int bits[] = {2, 3, 4, 5, 6, 8}, gss[] = {32, 64, 128};
    static const mt_dtype sdts[] = {MT_F32, MT_F16, MT_BF16};
    static const size_t outs[] = {1, 3, 17}, Ts[] = {1, 2, 3, 4, 5, 9};
    double worst[3] = {0};
    size_t n = 0;
    for (size_t bi = 0; bi < 6; bi++)
        for (size_t gi = 0; gi < 3; gi++)
            for (size_t si = 0; si < 3; si++) {
                /* sizes cycle through the combinations so every one appears */
                qcase c = {bits[bi], gss[gi], sdts[si], outs[n % 3], (size_t)gss[gi] * (1 + n % 5), Ts[n % 6],
                           (int)(n % 4 == 1)};
                run_qcase(&c, pool, worst);
                n++;
            }
    /* the model shapes' common case, larger: 4/8-bit, g64, 2 groups chunks */
    qcase big[] = {{4, 64, MT_BF16, 33, 2048, 1, 0}, {8, 64, MT_F16, 19, 1536, 1, 1}, {4, 32, MT_F32, 40, 17 * 1024, 1, 0},
                   {4, 64, MT_BF16, 70, 576, 7, 0}, {8, 128, MT_F32, 9, 1024, 12, 1},
                   /* batched 4-bit table kernel: 6-8 tokens, token sets of 8 plus a tail, chunks of
                    * 1024 elements, group counts off the 16-lane scale blocks; one-token rows over
                    * two chunks */
                   {4, 64, MT_F16, 21, 64 * 37, 8, 1}, {4, 32, MT_BF16, 18, 32 * 45, 6, 0},
                   {4, 128, MT_F32, 5, 128 * 11, 16, 0}, {4, 64, MT_BF16, 3, 64 * 20, 13, 0},
                   {4, 64, MT_BF16, 4, 64 * 7, 7, 1}, {8, 64, MT_BF16, 7, 64 * 19, 1, 0},
                   {8, 32, MT_F16, 5, 32 * 300, 1, 0}, {4, 128, MT_BF16, 3, 128 * 70, 1, 1},
                   /* past the direct kernels' T: dequantized tiles + sgemm */
                   {4, 64, MT_BF16, 21, 640, 30, 1}, {8, 32, MT_F16, 5, 96, 40, 0},
                   {6, 64, MT_BF16, 9, 256, 25, 0}, {3, 32, MT_F16, 6, 96, 33, 1}};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) run_qcase(&big[i], pool, worst);
    for (int p = 0; p < npaths; p++) printf("  quantized %-8s worst error / bound %.3f\n", mt_cpu_name(paths[p]), worst[p]);
}

/* ---- int8 activations (MT_QMATH_INT8) ---------------------------------- */

/* The documented quantization of one group: d = max|x|/127, q = rint(x/d). */
static float ref_quant_group(const float *x, size_t n, int8_t *q) {
    float a = 0.f;
    for (size_t i = 0; i < n; i++) a = fabsf(x[i]) > a ? fabsf(x[i]) : a;
    float d = a / 127.f, id = d != 0.f ? 1.f / d : 0.f;
    for (size_t i = 0; i < n; i++) q[i] = (int8_t)(int)nearbyintf(x[i] * id);
    return d;
}

static void run_i8case(const qcase *c, mt_pool *pool, double *worst_ref, double *worst_f, double *rel_f) {
    size_t K = c->K, out = c->out, T = c->T, gs = (size_t)c->gs, ng = K / gs, ss = mt_dtype_size(c->sdt);
    size_t words = mt_quant_row_words(K, c->bits);
    uint32_t *w = malloc(out * words * 4);
    unsigned char *sbuf = malloc(out * ng * ss + 1), *bbuf = malloc(out * ng * ss + 1);
    float *bias = malloc(out * sizeof *bias), *x = malloc(T * K * sizeof *x);
    float *y = malloc(T * out * sizeof *y), *yf = malloc(T * out * sizeof *yf), *work = malloc(2 * K * sizeof *work);
    double *ref = malloc(T * out * sizeof *ref), *bref = malloc(T * out * sizeof *bref), *bf = malloc(T * out * sizeof *bf);
    int8_t *q = malloc(T * K);
    float *d = malloc(T * ng * sizeof *d);
    uint8_t *codes = malloc(K);
    for (size_t i = 0; i < out * words; i++) w[i] = rnd() ^ (rnd() << 16);
    float qmax = (float)((1 << c->bits) - 1);
    for (size_t i = 0; i < out * ng; i++) {
        float sc = frand(0.002f, 0.05f);
        store(sbuf + 1, c->sdt, i, sc);
        store(bbuf + 1, c->sdt, i, -sc * qmax * frand(0.3f, 0.7f));
    }
    for (size_t r = 0; r < out; r++) bias[r] = frand(-1, 1);
    for (size_t i = 0; i < T * K; i++) x[i] = frand(-2, 2) * (i % 7 == 3 ? 8.f : 1.f);
    /* ties of the rounding (k + 0.5 with d = 1), an all-zero group, a lone outlier */
    for (size_t i = 0; i < gs; i++) x[i] = i == 0 ? 127.f : (float)((int)(i % 9) - 4) + 0.5f;
    if (ng > 1) for (size_t i = 0; i < gs; i++) x[gs + i] = 0.f;
    if (T > 1) x[K + K / 2] = 300.f;
    for (size_t t = 0; t < T; t++)
        for (size_t g = 0; g < ng; g++) d[t * ng + g] = ref_quant_group(x + t * K + g * gs, gs, q + t * K + g * gs);
    /* plain C reference: exact integer sums per group, then the float formula in double */
    for (size_t r = 0; r < out; r++) {
        mt_quant_unpack_row(codes, w + r * words, K, c->bits);
        for (size_t t = 0; t < T; t++) {
            double acc = c->with_bias ? bias[r] : 0, mag = 1e-6, ef = 1e-5, fmag = 0;
            for (size_t g = 0; g < ng; g++) {
                double sc = load(sbuf + 1, c->sdt, r * ng + g), bb = load(bbuf + 1, c->sdt, r * ng + g);
                int64_t is = 0, cs = 0;
                double xs = 0, xa = 0;
                for (size_t i = 0; i < gs; i++) {
                    is += (int64_t)codes[g * gs + i] * q[t * K + g * gs + i];
                    cs += codes[g * gs + i];
                    xs += x[t * K + g * gs + i];
                    xa += fabs(x[t * K + g * gs + i]);
                    fmag += fabs(x[t * K + g * gs + i]) * (fabs(sc * codes[g * gs + i]) + fabs(bb));
                }
                double v = sc * d[t * ng + g] * (double)is;
                acc += v + bb * xs;
                mag += fabs(v) + fabs(bb) * xa;
                /* int8 vs float: |x - d q| <= d/2 per element */
                ef += fabs(sc) * d[t * ng + g] * 0.5 * (double)cs;
            }
            ref[t * out + r] = acc;
            bref[t * out + r] = mag * 4e-6 + (c->with_bias ? fabs(bias[r]) * 1e-7 : 0);
            bf[t * out + r] = ef + fmag * 8e-6;
        }
    }
    mt_linear l = {.out = out, .in = K, .quantized = 1, .w = w, .scales = sbuf + 1, .biases = bbuf + 1,
                   .sdt = c->sdt, .bits = c->bits, .group_size = c->gs,
                   .bias = c->with_bias ? bias : NULL, .bdt = MT_F32};
    for (int p = 0; p < npaths; p++) {
        mt_cpu_force(paths[p]);
        l.qmath = MT_QMATH_FLOAT;
        mt_linear_forward(&l, x, T, yf, work, pool);
        l.qmath = MT_QMATH_INT8;
        for (int pi = 0; pi < 2; pi++) {
            for (size_t i = 0; i < T * out; i++) y[i] = NAN;
            mt_linear_forward(&l, x, T, y, work, pi ? pool : NULL);
            size_t bad = 0, badf = 0;
            double dmax = 0, amax = 1e-30;
            for (size_t i = 0; i < T * out; i++) {
                double e = fabs((double)y[i] - ref[i]) / bref[i], ef = fabs((double)y[i] - yf[i]) / bf[i];
                dmax = fmax(dmax, fabs((double)y[i] - yf[i]));
                amax = fmax(amax, fabs((double)yf[i]));
                if (!(e <= 1.0)) bad++;
                if (!(ef <= 1.0)) badf++;
                if (e > worst_ref[p] || e != e) worst_ref[p] = e != e ? 1e30 : e;
                if (ef > worst_f[p] || ef != ef) worst_f[p] = ef != ef ? 1e30 : ef;
            }
            if (dmax / amax > *rel_f) *rel_f = dmax / amax;
            CHECK_MSG(bad == 0 && badf == 0,
                      "int8 %s: bits %d gs %d %s out %zu K %zu T %zu bias %d pool %d: %zu off the int8 reference, "
                      "%zu off the float path", mt_cpu_name(paths[p]), c->bits, c->gs, mt_dtype_name(c->sdt), out, K,
                      T, c->with_bias, pi, bad, badf);
        }
    }
    mt_cpu_force(-1);
    free(w); free(sbuf); free(bbuf); free(bias); free(x); free(y); free(yf); free(work);
    free(ref); free(bref); free(bf); free(q); free(d); free(codes);
}

static void test_int8(mt_pool *pool) {
    static const int bits[] = {4, 8}, gss[] = {32, 64, 128};
    static const mt_dtype sdts[] = {MT_F32, MT_F16, MT_BF16};
    static const size_t outs[] = {1, 3, 17, 40}, Ts[] = {1, 2, 3, 5, 8, 9, 17};
    double wr[3] = {0}, wf[3] = {0}, rel = 0;
    size_t n = 0;
    for (size_t bi = 0; bi < 2; bi++)
        for (size_t gi = 0; gi < 3; gi++)
            for (size_t si = 0; si < 3; si++)
                for (size_t k = 0; k < 2; k++) {
                    /* K: every tail of the 64/128-element blocks appears */
                    qcase c = {bits[bi], gss[gi], sdts[si], outs[n % 4], (size_t)gss[gi] * (1 + (n * 3 + k) % 7),
                               Ts[n % 7], (int)(n % 3 == 1)};
                    run_i8case(&c, pool, wr, wf, &rel);
                    n++;
                }
    qcase big[] = {{4, 64, MT_BF16, 33, 2048, 1, 0}, {8, 64, MT_F16, 19, 1536, 4, 1}, {4, 32, MT_F16, 21, 17 * 1024, 1, 0},
                   {4, 64, MT_BF16, 37, 576, 24, 0}, {8, 128, MT_F32, 9, 1024, 12, 1}, {4, 128, MT_F16, 5, 8320, 3, 0}};
    for (size_t i = 0; i < sizeof big / sizeof *big; i++) run_i8case(&big[i], pool, wr, wf, &rel);
    for (int p = 0; p < npaths; p++)
        printf("  int8 %-8s worst error / bound: vs int8 reference %.3f, vs float path %.3f\n", mt_cpu_name(paths[p]),
               wr[p], wf[p]);
    printf("  int8 vs float: worst max|difference| / max|float output| of a case %.2e\n", rel);

    /* the switch: field, environment, and weights the int8 path does not take */
    CHECK_EQ_INT(mt_qmath_parse("int8"), MT_QMATH_INT8);
    CHECK_EQ_INT(mt_qmath_parse("float"), MT_QMATH_FLOAT);
    CHECK_EQ_INT(mt_qmath_parse(""), MT_QMATH_AUTO);
    CHECK_EQ_INT(mt_qmath_parse("int4"), -1);
    mt_linear l = {.quantized = 1};
    unsetenv("MT_QMATH");
    CHECK_EQ_INT(mt_linear_qmath(&l), MT_QMATH_FLOAT);
    setenv("MT_QMATH", "int8", 1);
    CHECK_EQ_INT(mt_linear_qmath(&l), MT_QMATH_INT8);
    l.qmath = MT_QMATH_FLOAT;
    CHECK_EQ_INT(mt_linear_qmath(&l), MT_QMATH_FLOAT);
    setenv("MT_QMATH", "bogus", 1);
    l.qmath = MT_QMATH_AUTO;
    CHECK_EQ_INT(mt_linear_qmath(&l), MT_QMATH_FLOAT);
    unsetenv("MT_QMATH");
    {   /* 3-bit weights: int8 falls back to the float path (identical results) */
        size_t K = 96, out = 5, words = mt_quant_row_words(K, 3);
        uint32_t *w = malloc(out * words * 4);
        float *sc = malloc(out * 3 * 4), *bb = malloc(out * 3 * 4), *x = malloc(K * 4), y0[5], y1[5];
        for (size_t i = 0; i < out * words; i++) w[i] = rnd();
        for (size_t i = 0; i < out * 3; i++) { sc[i] = frand(0.01f, 0.02f); bb[i] = -0.05f; }
        for (size_t i = 0; i < K; i++) x[i] = frand(-1, 1);
        mt_linear l3 = {.out = out, .in = K, .quantized = 1, .w = w, .scales = sc, .biases = bb, .sdt = MT_F32,
                        .bits = 3, .group_size = 32, .qmath = MT_QMATH_FLOAT};
        mt_linear_forward(&l3, x, 1, y0, NULL, pool);
        l3.qmath = MT_QMATH_INT8;
        mt_linear_forward(&l3, x, 1, y1, NULL, pool);
        CHECK(memcmp(y0, y1, sizeof y0) == 0);
        free(w); free(sc); free(bb); free(x);
    }
}

static void test_dense(mt_pool *pool) {
    static const mt_dtype dts[] = {MT_F32, MT_F16, MT_BF16};
    static const size_t Ks[] = {1, 7, 33, 100, 515}, outs[] = {1, 3, 17, 64};
    double worst = 0;
    for (size_t di = 0; di < 3; di++)
        for (size_t ki = 0; ki < 5; ki++)
            for (size_t T = 1; T <= 5; T += 2) {
                size_t K = Ks[ki], out = outs[(di + ki + T) % 4], es = mt_dtype_size(dts[di]);
                unsigned char *w = malloc(out * K * es + 1);
                float *x = malloc(T * K * 4), *y = malloc(T * out * 4), *ref = malloc(T * out * 4), *work = malloc(2 * K * 4);
                float *row = malloc(K * 4);
                for (size_t i = 0; i < out * K; i++) store(w + 1, dts[di], i, frand(-1, 1));
                for (size_t i = 0; i < T * K; i++) x[i] = frand(-1, 1);
                mt_linear l = {.out = out, .in = K, .wdt = dts[di], .w = w + 1};
                CHECK(mt_linear_forward_ref(&l, x, T, ref) == 0);
                for (int p = 0; p < npaths; p++) {
                    mt_cpu_force(paths[p]);
                    mt_linear_forward(&l, x, T, y, work, p ? pool : NULL);
                    size_t bad = 0;
                    for (size_t r = 0; r < out; r++) {
                        mt_linear_row(&l, r, row);
                        for (size_t t = 0; t < T; t++) {
                            double b = 1e-6;
                            for (size_t i = 0; i < K; i++) b += fabs(x[t * K + i] * row[i]) * 4e-6;
                            double e = fabs((double)y[t * out + r] - ref[t * out + r]) / b;
                            if (!(e <= 1)) bad++;
                            if (e > worst || e != e) worst = e != e ? 1e30 : e;
                        }
                    }
                    CHECK_MSG(bad == 0, "dense %s %s K %zu out %zu T %zu: %zu off", mt_cpu_name(paths[p]),
                              mt_dtype_name(dts[di]), K, out, T, bad);
                }
                mt_cpu_force(-1);
                free(w);
                free(x);
                free(y);
                free(ref);
                free(work);
                free(row);
            }
    printf("  dense worst error / bound %.3f\n", worst);
}

/* |a - b| <= tol * (1 + |b|) for every element */
static size_t nbad(const float *a, const float *b, size_t n, double tol, double *worst) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]) / (1 + fabs(b[i]));
        if (!(e <= tol)) bad++;
        if (e > *worst || e != e) *worst = e != e ? 1e30 : e;
    }
    return bad;
}

static void test_ops(void) {
    static const size_t ns[] = {1, 3, 7, 8, 9, 16, 17, 31, 64, 100, 257, 1000};
    double worst = 0;
    for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++) {
        size_t n = ns[ni];
        float *x = malloc(n * 4), *w = malloc(n * 4), *b = malloc(n * 4), *r = malloc(n * 4), *o = malloc(n * 4);
        for (size_t i = 0; i < n; i++) { x[i] = frand(-8, 8); w[i] = frand(-2, 2); b[i] = frand(-3, 3); }
        x[n / 2] = 60.f; /* a large logit: softmax must subtract the max */
        if (n > 2) x[n - 1] = -95.f; /* exp clamps */
        for (int p = 0; p < npaths; p++) {
            mt_cpu_force(paths[p]);
            const char *pn = mt_cpu_name(paths[p]);
            for (int wi = 0; wi < 2; wi++) {
                mt_rmsnorm_ref(r, x, wi ? w : NULL, n, 1e-5f);
                mt_rmsnorm(o, x, wi ? w : NULL, n, 1e-5f);
                CHECK_MSG(nbad(o, r, n, 2e-6, &worst) == 0, "rmsnorm %s n %zu w %d", pn, n, wi);
            }
            memcpy(r, x, n * 4); mt_softmax_ref(r, n);
            memcpy(o, x, n * 4); mt_softmax(o, n);
            CHECK_MSG(nbad(o, r, n, 2e-6, &worst) == 0, "softmax %s n %zu", pn, n);
            memcpy(r, x, n * 4); mt_silu_ref(r, n);
            memcpy(o, x, n * 4); mt_silu(o, n);
            CHECK_MSG(nbad(o, r, n, 2e-6, &worst) == 0, "silu %s n %zu", pn, n);
            memcpy(r, x, n * 4); mt_swiglu_ref(r, b, n);
            memcpy(o, x, n * 4); mt_swiglu(o, b, n);
            CHECK_MSG(nbad(o, r, n, 2e-6, &worst) == 0, "swiglu %s n %zu", pn, n);
            float d0 = mt_dot_ref(x, w, n), d1 = mt_dot(x, w, n);
            double scale = 0;
            for (size_t i = 0; i < n; i++) scale += fabs(x[i] * w[i]);
            CHECK_MSG(fabs(d0 - d1) <= 1e-6 * scale + 1e-6, "dot %s n %zu: %g vs %g", pn, n, d1, d0);
            memcpy(r, b, n * 4); mt_axpy_ref(r, 0.37f, x, n);
            memcpy(o, b, n * 4); mt_axpy(o, 0.37f, x, n);
            CHECK_MSG(nbad(o, r, n, 1e-6, &worst) == 0, "axpy %s n %zu", pn, n);
        }
        mt_cpu_force(-1);
        free(x); free(w); free(b); free(r); free(o);
    }
    printf("  ops worst relative error %.2e\n", worst);
}

/* nk random keys in [-1, 1] and values in [-2, 2], and their float16 forms;
 * with round, K and V hold the float16 values widened back (what a float16
 * cache gives the kernels, for a reference computed from K and V). */
static void rand_kv(float *K, float *V, uint16_t *Kh, uint16_t *Vh, size_t nk, int round) {
    for (size_t i = 0; i < nk; i++) {
        K[i] = frand(-1, 1);
        V[i] = frand(-2, 2);
        Kh[i] = mt_f32_to_f16(K[i]);
        Vh[i] = mt_f32_to_f16(V[i]);
        if (round) { K[i] = mt_f16_to_f32(Kh[i]); V[i] = mt_f16_to_f32(Vh[i]); }
    }
}

/* mt_attn_head against a double-precision reference, keys/values stored as
 * float32 and as float16 (the reference then uses the rounded values): head
 * sizes that take each path's SIMD loop (and its tails) or its C fallback,
 * runs of 0 to 301 positions with a row stride wider than the head,
 * soft-capping on and off. */
static void test_attn(void) {
    static const size_t hds[] = {8, 24, 64, 80, 96, 128, 256, 36};
    static const size_t ns[] = {0, 1, 2, 3, 17, 64, 301};
    double worst = 0;
    for (size_t hi = 0; hi < sizeof hds / sizeof *hds; hi++)
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
            for (int mode = 0; mode < 4; mode++) {
                int capped = mode & 1, f16 = mode >> 1;
                size_t hd = hds[hi], n = ns[ni], kvs = hd * 3 + 5, nk = n * kvs + 1;
                float *K = malloc(nk * 4), *V = malloc(nk * 4), *q = malloc(hd * 4);
                uint16_t *Kh = malloc(nk * 2), *Vh = malloc(nk * 2);
                float *o = malloc(hd * 4), *s = malloc((n + 1) * 4);
                double *ref = calloc(hd, sizeof *ref), *sc = malloc((n + 1) * sizeof *sc);
                rand_kv(K, V, Kh, Vh, nk, f16);
                for (size_t i = 0; i < hd; i++) q[i] = frand(-3, 3);
                float scale = 1.0f / sqrtf((float)hd), cap = capped ? 5.0f : 0.0f;
                double m = -1e300, sum = 0;
                for (size_t j = 0; j < n; j++) {
                    double d = 0;
                    for (size_t i = 0; i < hd; i++) d += (double)q[i] * K[j * kvs + i];
                    d *= scale;
                    if (cap > 0) d = tanh(d / cap) * cap;
                    sc[j] = d;
                    m = d > m ? d : m;
                }
                for (size_t j = 0; j < n; j++) { sc[j] = exp(sc[j] - m); sum += sc[j]; }
                for (size_t j = 0; j < n; j++)
                    for (size_t i = 0; i < hd; i++) ref[i] += sc[j] / sum * V[j * kvs + i];
                for (int p = 0; p < npaths; p++) {
                    mt_cpu_force(paths[p]);
                    for (size_t i = 0; i < hd; i++) o[i] = 1e30f;   /* every output must be written */
                    mt_attn_head(q, f16 ? (const void *)Kh : K, f16 ? (const void *)Vh : V, f16, kvs, n, hd, scale,
                                 cap, o, s);
                    double e = 0;
                    for (size_t i = 0; i < hd; i++) {
                        double d = fabs(o[i] - ref[i]) / (fabs(ref[i]) + 0.05);
                        e = d > e || d != d ? d : e;
                    }
                    worst = e > worst ? e : worst;
                    CHECK_MSG(e < 2e-5, "attn %s hd %zu n %zu cap %d f16 %d: error %g", mt_cpu_name(paths[p]), hd, n,
                              capped, f16, e);
                }
                mt_cpu_force(-1);
                free(K); free(V); free(Kh); free(Vh); free(q); free(o); free(s); free(ref); free(sc);
            }
    printf("  attn_head worst relative error %.2e\n", worst);
}

/* mt_attn_group (query heads sharing K/V, each row read once for all) against
 * mt_attn_head head by head, on every path: 1-9 heads (sets of 8/4/2 and a
 * single rest), position counts around the blocks of 16/G, caps, f16. */
static void test_attn_group(void) {
    static const size_t hds[] = {16, 48, 128, 256, 24};
    static const size_t ns[] = {0, 1, 7, 9, 16, 33, 300};
    double worst = 0;
    for (size_t hi_ = 0; hi_ < sizeof hds / sizeof *hds; hi_++)
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
            for (size_t nh = 1; nh <= 9; nh++) {
                int mode = (int)((nh + ni + hi_) % 4), capped = mode & 1, f16 = mode >> 1;
                size_t hd = hds[hi_], n = ns[ni], kvs = hd * 2 + 16, nk = n * kvs + hd;
                float *K = malloc(nk * 4), *V = malloc(nk * 4), *q = malloc(nh * hd * 4), *o = malloc(nh * hd * 4);
                float *ref = malloc(hd * 4), *s = malloc((nh * n + 1) * 4);
                uint16_t *Kh = malloc(nk * 2), *Vh = malloc(nk * 2);
                rand_kv(K, V, Kh, Vh, nk, 0);
                for (size_t i = 0; i < nh * hd; i++) q[i] = frand(-3, 3);
                const void *Kp = f16 ? (const void *)Kh : K, *Vp = f16 ? (const void *)Vh : V;
                float scale = 1.0f / sqrtf((float)hd), cap = capped ? 5.0f : 0.0f;
                for (int p = 0; p < npaths; p++) {
                    mt_cpu_force(paths[p]);
                    for (size_t i = 0; i < nh * hd; i++) o[i] = 1e30f;
                    mt_attn_group(q, nh, Kp, Vp, f16, kvs, n, hd, scale, cap, o, s);
                    double e = 0;
                    for (size_t h = 0; h < nh; h++) {
                        mt_attn_head(q + h * hd, Kp, Vp, f16, kvs, n, hd, scale, cap, ref, s);
                        for (size_t d = 0; d < hd; d++) {
                            double x = fabs(o[h * hd + d] - ref[d]) / (fabs(ref[d]) + 0.05);
                            e = x > e || x != x ? x : e;
                        }
                    }
                    worst = e > worst ? e : worst;
                    CHECK_MSG(e < 2e-5, "attn_group %s hd %zu n %zu heads %zu cap %d f16 %d: error %g",
                              mt_cpu_name(paths[p]), hd, n, nh, capped, f16, e);
                }
                mt_cpu_force(-1);
                free(K); free(V); free(q); free(o); free(ref); free(s); free(Kh); free(Vh);
            }
    printf("  attn_group worst relative error against attn_head %.2e\n", worst);
}

/* mt_attn_rows (a block of query rows of nh heads as matrix products)
 * against mt_attn_head run row by row and head by head over the same keys:
 * causal spans, windows, rows with no keys, spans past n, soft-capping,
 * float32 and float16 keys/values, awkward head sizes. */
static void test_attn_rows(void) {
    static const size_t hds[] = {8, 36, 64, 128};
    double worst = 0;
    for (size_t hi_ = 0; hi_ < sizeof hds / sizeof *hds; hi_++)
        for (int mode = 0; mode < 8; mode++) {
            int capped = mode & 1, f16 = (mode >> 1) & 1, windowed = mode >> 2;
            size_t hd = hds[hi_], nh = 1 + (size_t)mode % 3, R = 5 + 13 * (size_t)(mode % 4), n = R + 3 * (size_t)mode;
            size_t kvs = hd * 2 + 3, nk = n * kvs + hd, ldq = nh * hd + 7, ldo = nh * hd + 2;
            float *K = malloc(nk * 4), *V = malloc(nk * 4), *Q = malloc(R * ldq * 4);
            uint16_t *Kh = malloc(nk * 2), *Vh = malloc(nk * 2);
            float *o = malloc(R * ldo * 4), *ref = malloc(hd * 4), *s = malloc((n + 1) * 4);
            float *scratch = malloc(mt_attn_rows_scratch(R, n, hd) * 4);
            size_t lo[64], hi[64];
            rand_kv(K, V, Kh, Vh, nk, 0);
            for (size_t i = 0; i < R * ldq; i++) Q[i] = frand(-3, 3);
            for (size_t i = 0; i < R; i++) {   /* row i is position n - R + i */
                hi[i] = n - R + i + 1;
                lo[i] = windowed && hi[i] > 6 ? hi[i] - 6 : 0;
                if (i == 2) lo[i] = hi[i];        /* no keys */
                if (i == 3 && windowed) hi[i] = n + 9;  /* clamped to n */
            }
            float scale = 1.0f / sqrtf((float)hd), cap = capped ? 5.0f : 0.0f;
            for (size_t i = 0; i < R * ldo; i++) o[i] = 1e30f;
            mt_attn_rows(Q, ldq, nh, R, f16 ? (const void *)Kh : K, f16 ? (const void *)Vh : V, f16, kvs, n, hd, lo, hi,
                         scale, cap, o, ldo, scratch);
            double e = 0;
            for (size_t h = 0; h < nh; h++)
                for (size_t i = 0; i < R; i++) {
                    size_t a = lo[i], b = hi[i] < n ? hi[i] : n;
                    size_t es = f16 ? 2 : 4;
                    const char *Kb = (const char *)(f16 ? (const void *)Kh : K) + a * kvs * es;
                    const char *Vb = (const char *)(f16 ? (const void *)Vh : V) + a * kvs * es;
                    mt_attn_head(Q + i * ldq + h * hd, Kb, Vb, f16, kvs, b > a ? b - a : 0, hd, scale, cap, ref, s);
                    for (size_t d = 0; d < hd; d++) {
                        double x = fabs(o[i * ldo + h * hd + d] - ref[d]) / (fabs(ref[d]) + 0.05);
                        e = x > e || x != x ? x : e;
                    }
                }
            worst = e > worst ? e : worst;
            CHECK_MSG(e < 2e-5, "attn_rows hd %zu nh %zu R %zu n %zu cap %d f16 %d window %d: error %g", hd, nh, R, n,
                      capped, f16, windowed, e);
            free(K); free(V); free(Q); free(Kh); free(Vh); free(o); free(ref); free(s); free(scratch);
        }
    printf("  attn_rows worst relative error against attn_head %.2e\n", worst);
}

static void test_cpu(void) {
    int best = mt_cpu_best();
    CHECK(best >= MT_CPU_PORTABLE && best <= MT_CPU_AVX512);
    CHECK_EQ_INT(mt_cpu_force(MT_CPU_PORTABLE), MT_CPU_PORTABLE);
    CHECK_EQ_INT(mt_cpu_level(), MT_CPU_PORTABLE);
    CHECK_EQ_INT(mt_cpu_force(MT_CPU_AVX512 + 5), best);
    mt_cpu_force(-1);
    CHECK(mt_cpu_level() <= best);
    CHECK_EQ_INT(mt_cpu_parse("avx2"), MT_CPU_AVX2);
    CHECK_EQ_INT(mt_cpu_parse("avx512"), MT_CPU_AVX512);
    CHECK_EQ_INT(mt_cpu_parse("portable"), MT_CPU_PORTABLE);
    CHECK_EQ_INT(mt_cpu_parse("sse9"), -1);
    CHECK_STR(mt_cpu_name(MT_CPU_AVX2), "avx2");
}

int main(void) {
    mt_err e = {0};
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    test_cpu();
    int best = mt_cpu_best();
    for (int l = MT_CPU_PORTABLE; l <= best; l++) paths[npaths++] = l;
    printf("  paths tested:");
    for (int p = 0; p < npaths; p++) printf(" %s", mt_cpu_name(paths[p]));
    printf("\n");
    test_quantized(pool);
    test_int8(pool);
    test_dense(pool);
    test_ops();
    test_attn();
    test_attn_rows();
    test_attn_group();
    mt_pool_free(pool);
    return check_report("kernels");
}
