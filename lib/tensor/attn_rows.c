/* attn_rows.c - attention of a block of query rows (prefill) as two matrix
 * products: S = scale * Q K^T, each row soft-capped and softmaxed over the
 * keys it may see, O = P V.  The keys and values of the block's span are
 * widened to float32 once and serve every query head that shares them (GQA).
 * One query row at a time (mt_attn_head) reads all of K and V per row; here
 * they are read once per block, and the products run at sgemm speed. */
#include "tensor/ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#include "tensor/dtype.h"

size_t mt_attn_rows_scratch(size_t R, size_t n, size_t hd) { return R * n + 2 * n * hd; }

void mt_attn_rows(const float *Q, size_t ldq, size_t nh, size_t R, const void *K, const void *V, int kv_f16,
                  size_t kvs, size_t n, size_t hd, const size_t *lo, const size_t *hi, float scale, float cap,
                  float *out, size_t ldo, float *scratch) {
    mt_attn_rows_sinks(Q, ldq, nh, R, K, V, kv_f16, kvs, n, hd, lo, hi, scale, cap, NULL, out, ldo, scratch);
}

void mt_attn_rows_sinks(const float *Q, size_t ldq, size_t nh, size_t R, const void *K, const void *V, int kv_f16,
                        size_t kvs, size_t n, size_t hd, const size_t *lo, const size_t *hi, float scale, float cap,
                        const float *sinks, float *out, size_t ldo, float *scratch) {
    float *S = scratch, *Kf = S + R * n, *Vf = Kf + n * hd;
    mt_dtype t = kv_f16 ? MT_F16 : MT_F32;
    size_t es = mt_dtype_size(t);
    for (size_t j = 0; j < n; j++) {
        mt_convert_to_f32(Kf + j * hd, (const char *)K + j * kvs * es, t, hd);
        mt_convert_to_f32(Vf + j * hd, (const char *)V + j * kvs * es, t, hd);
    }
    for (size_t h = 0; h < nh; h++) {
        if (n)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)R, (int)n, (int)hd, scale, Q + h * hd, (int)ldq,
                        Kf, (int)hd, 0.0f, S, (int)n);
        for (size_t i = 0; i < R; i++) {
            float *s = S + i * n;
            size_t a = lo[i] < n ? lo[i] : n, b = hi[i] < n ? hi[i] : n;
            if (b < a) b = a;
            if (cap > 0)
                for (size_t j = a; j < b; j++) s[j] = tanhf(s[j] / cap) * cap;
            if (b > a) mt_softmax_sink(s + a, b - a, sinks ? sinks + h : NULL);
            memset(s, 0, a * sizeof *s);
            memset(s + b, 0, (n - b) * sizeof *s);
        }
        if (n)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)R, (int)hd, (int)n, 1.0f, S, (int)n, Vf, (int)hd,
                        0.0f, out + h * hd, (int)ldo);
        else
            for (size_t i = 0; i < R; i++) memset(out + i * ldo + h * hd, 0, hd * sizeof *out);
    }
}
