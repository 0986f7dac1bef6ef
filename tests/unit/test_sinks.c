/* test_sinks.c - attention sinks (gpt-oss): a per-head learned logit that joins the
 * softmax's denominator only.  Every attention kernel that takes sinks (one head / a group
 * of heads over float32 or float16 K/V, a block of rows as matrix products, packed
 * quantized K/V, the plain softmax) against a double-precision reference on every CPU path
 * this machine has; with sinks NULL each must give exactly what its sink-less form gives. */
#include <stdint.h>
#include <stdlib.h>
#include "check.h"
#include "core/cpu.h"
#include "tensor/dtype.h"
#include "tensor/kernels.h"
#include "tensor/ops.h"
#include "tensor/quant.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() & 0xffffff) / 16777216.0f; }

static int paths[3], npaths;

/* one head over rows K[j * kvs], V[j * kvs] (j in [0, n)), double sums, sink in the denominator */
static void ref_head(const float *q, const float *K, const float *V, size_t kvs, size_t n, size_t hd, float scale,
                     float cap, double sink, double *out) {
    double *s = malloc((n + 1) * sizeof *s), m = sink, sum = 0;
    for (size_t j = 0; j < n; j++) {
        double d = 0;
        for (size_t i = 0; i < hd; i++) d += (double)q[i] * K[j * kvs + i];
        d *= scale;
        if (cap > 0) d = tanh(d / cap) * cap;
        s[j] = d;
        if (d > m) m = d;
    }
    for (size_t j = 0; j < n; j++) sum += (s[j] = exp(s[j] - m));
    sum += exp(sink - m);
    for (size_t i = 0; i < hd; i++) {
        double o = 0;
        for (size_t j = 0; j < n; j++) o += s[j] / sum * V[j * kvs + i];
        out[i] = o;
    }
    free(s);
}

static double rel(float got, double want) {
    double d = fabs(got - want) / (fabs(want) + 0.05);
    return d != d ? 1e9 : d;
}

/* sinks below, near and far above the scores (the last: outputs shrink toward 0) */
static float sink_value(size_t i) {
    static const float v[] = {-3.0f, 0.4f, 2.5f, 9.0f};
    return v[i % 4];
}

static void test_group(void) {
    static const size_t hds[] = {16, 24, 64, 128, 36};
    static const size_t ns[] = {0, 1, 5, 16, 33, 130};
    double worst = 0;
    for (size_t hi_ = 0; hi_ < sizeof hds / sizeof *hds; hi_++)
        for (size_t ni = 0; ni < sizeof ns / sizeof *ns; ni++)
            for (size_t nh = 1; nh <= 9; nh += 2) {
                int f16 = (int)((nh + ni) % 2);
                float cap = (hi_ + ni) % 3 == 0 ? 5.0f : 0.0f;
                size_t hd = hds[hi_], n = ns[ni], kvs = hd * 2 + 8, nk = n * kvs + hd;
                float *K = malloc(nk * 4), *V = malloc(nk * 4), *q = malloc(nh * hd * 4), *o = malloc(nh * hd * 4);
                float *o0 = malloc(nh * hd * 4), *o1 = malloc(nh * hd * 4), *s = malloc((nh * n + 1) * 4), sk[9];
                uint16_t *Kh = malloc(nk * 2), *Vh = malloc(nk * 2);
                double *ref = malloc(nh * hd * sizeof *ref);
                for (size_t i = 0; i < nk; i++) {
                    Kh[i] = mt_f32_to_f16(frand(-1, 1));
                    Vh[i] = mt_f32_to_f16(frand(-2, 2));
                    K[i] = mt_f16_to_f32(Kh[i]);   /* the same values in both storages */
                    V[i] = mt_f16_to_f32(Vh[i]);
                }
                for (size_t i = 0; i < nh * hd; i++) q[i] = frand(-3, 3);
                for (size_t h = 0; h < nh; h++) sk[h] = sink_value(h + ni);
                float scale = 1.0f / sqrtf((float)hd);
                for (size_t h = 0; h < nh; h++) ref_head(q + h * hd, K, V, kvs, n, hd, scale, cap, sk[h], ref + h * hd);
                const void *Kp = f16 ? (const void *)Kh : K, *Vp = f16 ? (const void *)Vh : V;
                for (int p = 0; p < npaths; p++) {
                    mt_cpu_force(paths[p]);
                    for (size_t i = 0; i < nh * hd; i++) o[i] = 1e30f;
                    mt_attn_group_sinks(q, nh, Kp, Vp, f16, kvs, n, hd, scale, cap, sk, o, s);
                    double e = 0;
                    for (size_t i = 0; i < nh * hd; i++) { double d = rel(o[i], ref[i]); e = d > e ? d : e; }
                    worst = e > worst ? e : worst;
                    CHECK_MSG(e < 2e-5, "group %s hd %zu n %zu heads %zu f16 %d cap %g: error %g", mt_cpu_name(paths[p]),
                              hd, n, nh, f16, (double)cap, e);
                    /* one head at a time (the single-head kernels) */
                    double e1 = 0;
                    for (size_t h = 0; h < nh; h++) {
                        mt_k_attn_head_sink(paths[p], q + h * hd, Kp, Vp, f16, kvs, n, hd, scale, cap, sk + h, o1, s);
                        for (size_t i = 0; i < hd; i++) { double d = rel(o1[i], ref[h * hd + i]); e1 = d > e1 ? d : e1; }
                    }
                    CHECK_MSG(e1 < 2e-5, "head %s hd %zu n %zu f16 %d: error %g", mt_cpu_name(paths[p]), hd, n, f16, e1);
                    /* no sinks: bit for bit the sink-less kernel */
                    mt_attn_group_sinks(q, nh, Kp, Vp, f16, kvs, n, hd, scale, cap, NULL, o, s);
                    mt_attn_group(q, nh, Kp, Vp, f16, kvs, n, hd, scale, cap, o0, s);
                    CHECK_MSG(!memcmp(o, o0, nh * hd * 4), "group %s hd %zu n %zu: NULL sinks differ",
                              mt_cpu_name(paths[p]), hd, n);
                }
                mt_cpu_force(-1);
                free(K); free(V); free(q); free(o); free(o0); free(o1); free(s); free(Kh); free(Vh); free(ref);
            }
    printf("  attn_group_sinks worst relative error %.2e\n", worst);
}

/* a block of rows (prefill) with causal spans, a window and a row without keys */
static void test_rows(void) {
    static const size_t hds[] = {16, 64, 36};
    double worst = 0;
    for (size_t hi_ = 0; hi_ < sizeof hds / sizeof *hds; hi_++)
        for (int mode = 0; mode < 4; mode++) {
            int f16 = mode & 1, windowed = mode >> 1;
            size_t hd = hds[hi_], nh = 2 + (size_t)mode % 3, R = 7 + 9 * (size_t)mode, n = R + 4;
            size_t kvs = hd * 2 + 3, nk = n * kvs + hd, ldq = nh * hd + 5, ldo = nh * hd + 1;
            float *K = malloc(nk * 4), *V = malloc(nk * 4), *Q = malloc(R * ldq * 4), *o = malloc(R * ldo * 4);
            float *o0 = malloc(R * ldo * 4), *scratch = malloc(mt_attn_rows_scratch(R, n, hd) * 4), sk[4];
            uint16_t *Kh = malloc(nk * 2), *Vh = malloc(nk * 2);
            double *ref = malloc(hd * sizeof *ref);
            size_t lo[64], hi[64];
            for (size_t i = 0; i < nk; i++) {
                Kh[i] = mt_f32_to_f16(frand(-1, 1));
                Vh[i] = mt_f32_to_f16(frand(-2, 2));
                K[i] = mt_f16_to_f32(Kh[i]);
                V[i] = mt_f16_to_f32(Vh[i]);
            }
            for (size_t i = 0; i < R * ldq; i++) Q[i] = frand(-3, 3);
            for (size_t h = 0; h < nh; h++) sk[h] = sink_value(h + (size_t)mode);
            for (size_t i = 0; i < R; i++) {
                hi[i] = n - R + i + 1;
                lo[i] = windowed && hi[i] > 5 ? hi[i] - 5 : 0;
                if (i == 1) lo[i] = hi[i];   /* no keys: zeros */
            }
            float scale = 1.0f / sqrtf((float)hd);
            const void *Kp = f16 ? (const void *)Kh : K, *Vp = f16 ? (const void *)Vh : V;
            for (size_t i = 0; i < R * ldo; i++) o[i] = o0[i] = 1e30f;
            mt_attn_rows_sinks(Q, ldq, nh, R, Kp, Vp, f16, kvs, n, hd, lo, hi, scale, 0.0f, sk, o, ldo, scratch);
            double e = 0;
            for (size_t h = 0; h < nh; h++)
                for (size_t i = 0; i < R; i++) {
                    size_t a = lo[i], b = hi[i];
                    if (b == a) {
                        for (size_t d = 0; d < hd; d++) CHECK(o[i * ldo + h * hd + d] == 0.0f);
                        continue;
                    }
                    ref_head(Q + i * ldq + h * hd, K + a * kvs, V + a * kvs, kvs, b - a, hd, scale, 0.0f, sk[h], ref);
                    for (size_t d = 0; d < hd; d++) {
                        double x = rel(o[i * ldo + h * hd + d], ref[d]);
                        e = x > e ? x : e;
                    }
                }
            worst = e > worst ? e : worst;
            CHECK_MSG(e < 5e-5, "rows hd %zu nh %zu R %zu f16 %d window %d: error %g", hd, nh, R, f16, windowed, e);
            mt_attn_rows_sinks(Q, ldq, nh, R, Kp, Vp, f16, kvs, n, hd, lo, hi, scale, 0.0f, NULL, o, ldo, scratch);
            mt_attn_rows(Q, ldq, nh, R, Kp, Vp, f16, kvs, n, hd, lo, hi, scale, 0.0f, o0, ldo, scratch);
            int same = 1;
            for (size_t i = 0; i < R; i++) same &= !memcmp(o + i * ldo, o0 + i * ldo, nh * hd * 4);
            CHECK_MSG(same, "rows hd %zu: NULL sinks differ from mt_attn_rows", hd);
            free(K); free(V); free(Q); free(o); free(o0); free(scratch); free(Kh); free(Vh); free(ref);
        }
    printf("  attn_rows_sinks worst relative error %.2e\n", worst);
}

/* the softmax with a sink, masked (-inf) entries included */
static void test_softmax(void) {
    float x[9], y[9];
    double worst = 0;
    for (int c = 0; c < 4; c++) {
        float sink = sink_value((size_t)c);
        double m = sink, sum = 0, r[9];
        for (int i = 0; i < 9; i++) {
            x[i] = i % 4 == 2 ? -INFINITY : frand(-4, 4);
            if (x[i] > m) m = x[i];
        }
        for (int i = 0; i < 9; i++) sum += (r[i] = exp((double)x[i] - m));
        sum += exp(sink - m);
        memcpy(y, x, sizeof x);
        mt_softmax_sink(y, 9, &sink);
        for (int i = 0; i < 9; i++) { double d = rel(y[i], r[i] / sum); worst = d > worst ? d : worst; }
        memcpy(y, x, sizeof x);
        mt_softmax_sink(y, 9, NULL);
        float z[9];
        memcpy(z, x, sizeof x);
        mt_softmax(z, 9);
        CHECK(!memcmp(y, z, sizeof y));
    }
    CHECK_MSG(worst < 1e-6, "softmax_sink: error %g", worst);
    printf("  softmax_sink worst relative error %.2e\n", worst);
}

/* packed affine K/V (one kv head of 2 in the rows) */
static void test_kvq(void) {
    double worst = 0;
    for (int c = 0; c < 6; c++) {
        int bits = c % 2 ? 4 : 8, group = 32;
        size_t hd = c < 3 ? 64 : 128, nh = 1 + (size_t)c, n = 3 + 11 * (size_t)c, H = 2, kh = (size_t)c % 2;
        size_t nw = hd * (size_t)bits / 32, ng = hd / (size_t)group;
        uint32_t *kw = malloc(n * H * nw * 4), *vw = malloc(n * H * nw * 4);
        float *sc = malloc(4 * n * H * ng * sizeof *sc), *q = malloc(nh * hd * 4), sk[8];
        float *K = malloc(n * hd * 4), *V = malloc(n * hd * 4), *out = malloc(nh * hd * 4), *out0 = malloc(nh * hd * 4);
        float *scr = malloc(nh * n * 4);
        double *ref = malloc(hd * sizeof *ref);
        for (size_t i = 0; i < n * H * nw; i++) { kw[i] = rnd() | (uint32_t)rnd() << 16; vw[i] = rnd() | (uint32_t)rnd() << 16; }
        for (size_t i = 0; i < n * H * ng; i++) {
            sc[i] = frand(0.005f, 0.02f); sc[n * H * ng + i] = frand(-0.5f, 0.5f);
            sc[2 * n * H * ng + i] = frand(0.005f, 0.03f); sc[3 * n * H * ng + i] = frand(-0.5f, 0.5f);
        }
        for (size_t i = 0; i < nh * hd; i++) q[i] = frand(-2, 2);
        for (size_t h = 0; h < nh; h++) sk[h] = sink_value(h + (size_t)c);
        mt_kvq_span sp = {.kw = kw + kh * nw, .vw = vw + kh * nw, .ks = sc + kh * ng, .kb = sc + n * H * ng + kh * ng,
                          .vs = sc + 2 * n * H * ng + kh * ng, .vb = sc + 3 * n * H * ng + kh * ng,
                          .wstride = H * nw, .sstride = H * ng, .bits = bits, .group = group};
        for (size_t j = 0; j < n; j++) {
            mt_dequantize_affine_row(K + j * hd, sp.kw + j * sp.wstride, sp.ks + j * sp.sstride, sp.kb + j * sp.sstride,
                                     MT_F32, hd, bits, group, NULL);
            mt_dequantize_affine_row(V + j * hd, sp.vw + j * sp.wstride, sp.vs + j * sp.sstride, sp.vb + j * sp.sstride,
                                     MT_F32, hd, bits, group, NULL);
        }
        float scale = 1.0f / sqrtf((float)hd);
        for (int p = 0; p < npaths; p++) {
            mt_k_attn_kvq_sinks(paths[p], q, nh, &sp, n, hd, scale, 0.0f, sk, out, scr);
            double e = 0;
            for (size_t h = 0; h < nh; h++) {
                ref_head(q + h * hd, K, V, hd, n, hd, scale, 0.0f, sk[h], ref);
                for (size_t i = 0; i < hd; i++) { double d = rel(out[h * hd + i], ref[i]); e = d > e ? d : e; }
            }
            worst = e > worst ? e : worst;
            CHECK_MSG(e < 1e-4, "kvq %s bits %d hd %zu heads %zu n %zu: error %g", mt_cpu_name(paths[p]), bits, hd, nh,
                      n, e);
            mt_k_attn_kvq_sinks(paths[p], q, nh, &sp, n, hd, scale, 0.0f, NULL, out, scr);
            mt_k_attn_kvq(paths[p], q, nh, &sp, n, hd, scale, 0.0f, out0, scr);
            CHECK_MSG(!memcmp(out, out0, nh * hd * 4), "kvq %s: NULL sinks differ", mt_cpu_name(paths[p]));
        }
        free(kw); free(vw); free(sc); free(q); free(K); free(V); free(out); free(out0); free(scr); free(ref);
    }
    printf("  attn_kvq_sinks worst relative error %.2e\n", worst);
}

int main(void) {
    int best = mt_cpu_best();
    for (int l = MT_CPU_PORTABLE; l <= best; l++) paths[npaths++] = l;
    test_softmax();
    test_group();
    test_rows();
    test_kvq();
    return check_report("sinks");
}
