/* kernels_attn.c - one query head attending over a run of cached positions
 * (decode and prefill rows of the decoders): scores, optional soft-capping,
 * softmax and the probability-weighted sum of values, in one pass per phase
 * with no per-position calls.  Keys/values stored as float32 or float16
 * (widened in registers).  Portable, AVX2 and AVX-512 paths. */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "core/cpu.h"
#include "tensor/dtype.h"
#include "tensor/simd_sum.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx2")))
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INL inline __attribute__((always_inline))

/* Soft-cap the scores (cap > 0), replace them by exp(s - max) and return
 * 1 / their sum: the values are weighted unnormalised and scaled once.  With
 * an attention sink (sink != NULL: the head's learned logit) the sum also
 * holds exp(*sink - max), max taken over the scores and the sink. */
static float exp_scores(int level, float *s, size_t n, float cap, const float *sink) {
    if (cap > 0)
        for (size_t j = 0; j < n; j++) s[j] = tanhf(s[j] / cap) * cap;
    float m = mt_k_max(level, s, n);
    if (!sink) return 1.0f / mt_k_exp_sum(level, s, m, n);
    if (*sink > m) m = *sink;
    float sum = mt_k_exp_sum(level, s, m, n);
    return 1.0f / (sum + expf(*sink - m));
}

/* ---- portable ---------------------------------------------------------- */

static float ld_c(const void *p, size_t i, int f16) {
    return f16 ? mt_f16_to_f32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

static void attn_c(const float *q, const void *K, const void *V, size_t kvs, size_t n, size_t hd, float scale,
                   float cap, const float *sk, float *out, float *s, int f16) {
    for (size_t j = 0; j < n; j++) {
        float d = 0.f;
        for (size_t i = 0; i < hd; i++) d += q[i] * ld_c(K, j * kvs + i, f16);
        s[j] = d * scale;
    }
    float r = exp_scores(MT_CPU_PORTABLE, s, n, cap, sk);
    for (size_t i = 0; i < hd; i++) out[i] = 0.f;
    for (size_t j = 0; j < n; j++) {
        float p = s[j] * r;
        for (size_t i = 0; i < hd; i++) out[i] += p * ld_c(V, j * kvs + i, f16);
    }
}

/* ---- AVX2 (hd % 8 == 0) -------------------------------------------------- */

/* 8 keys/values from element i of row p (float32 or float16) */
AVX2 static INL __m256 ld8(const void *p, size_t i, int f16) {
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_loadu_ps((const float *)p + i);
}

AVX2 static INL void attn_avx2_t(const float *q, const void *K, const void *V, size_t kvs, size_t n, size_t hd,
                                 float scale, float cap, const float *sk, float *out, float *s, int f16) {
    size_t es = f16 ? 2 : 4;
    for (size_t j = 0; j < n; j++) {
        const void *k = (const char *)K + j * kvs * es;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        size_t i = 0;
        for (; i + 16 <= hd; i += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), ld8(k, i, f16), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), ld8(k, i + 8, f16), a1);
        }
        if (i < hd) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), ld8(k, i, f16), a0);
        s[j] = mt_hsum8(_mm256_add_ps(a0, a1)) * scale;
    }
    float r = exp_scores(MT_CPU_AVX2, s, n, cap, sk);
    for (size_t d0 = 0; d0 < hd; d0 += 32) {   /* 4 accumulators of 8 */
        size_t nb = hd - d0 < 32 ? (hd - d0) / 8 : 4;
        __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
        for (size_t j = 0; j < n; j++) {
            const void *v = (const char *)V + j * kvs * es;
            __m256 p = _mm256_set1_ps(s[j]);
            o0 = _mm256_fmadd_ps(p, ld8(v, d0, f16), o0);
            if (nb > 1) o1 = _mm256_fmadd_ps(p, ld8(v, d0 + 8, f16), o1);
            if (nb > 2) o2 = _mm256_fmadd_ps(p, ld8(v, d0 + 16, f16), o2);
            if (nb > 3) o3 = _mm256_fmadd_ps(p, ld8(v, d0 + 24, f16), o3);
        }
        __m256 rr = _mm256_set1_ps(r);
        _mm256_storeu_ps(out + d0, _mm256_mul_ps(o0, rr));
        if (nb > 1) _mm256_storeu_ps(out + d0 + 8, _mm256_mul_ps(o1, rr));
        if (nb > 2) _mm256_storeu_ps(out + d0 + 16, _mm256_mul_ps(o2, rr));
        if (nb > 3) _mm256_storeu_ps(out + d0 + 24, _mm256_mul_ps(o3, rr));
    }
}

/* ---- AVX-512 (hd % 16 == 0) ------------------------------------------------ */

AVX512 static INL __m512 ld16(const void *p, size_t i, int f16) {
    if (f16) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + i)));
    return _mm512_loadu_ps((const float *)p + i);
}

/* out lane k = sum of the 16 lanes of a[k] (a transposing tree of adds:
 * 45 shuffles/adds for 16 sums instead of 16 full reductions). */
AVX512 static INL __m512 reduce16(__m512 *a) {
    __m512 t[8], u[4];
    for (int i = 0; i < 8; i++)   /* per 128-bit lane: a at 0 and 2, b at 1 and 3 */
        t[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++)   /* per 128-bit lane: the lane sums of a[4i..4i+3] */
        u[i] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * i], t[2 * i + 1], 0x44),
                             _mm512_shuffle_ps(t[2 * i], t[2 * i + 1], 0xEE));
    __m512 v0 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x88), _mm512_shuffle_f32x4(u[0], u[1], 0xDD));
    __m512 v1 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x88), _mm512_shuffle_f32x4(u[2], u[3], 0xDD));
    return _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x88), _mm512_shuffle_f32x4(v0, v1, 0xDD));
}

/* one instance per storage type */
AVX2 static void attn_avx2_f32(const float *q, const void *K, const void *V, size_t kvs, size_t n, size_t hd,
                               float scale, float cap, const float *sk, float *out, float *s) {
    attn_avx2_t(q, K, V, kvs, n, hd, scale, cap, sk, out, s, 0);
}
AVX2 static void attn_avx2_f16(const float *q, const void *K, const void *V, size_t kvs, size_t n, size_t hd,
                               float scale, float cap, const float *sk, float *out, float *s) {
    attn_avx2_t(q, K, V, kvs, n, hd, scale, cap, sk, out, s, 1);
}

/* G query heads (1, 2, 4 or 8, a compile-time constant after inlining) that
 * share one key/value head, head_dim % 16 == 0: each cached row is loaded
 * and widened once for all G heads (G = 1: mt_attn_head).  Scores: blocks of 16/G positions x G
 * heads fill the 16 accumulators of one tree reduction; values: each row's
 * slice of 256/G dimensions feeds G heads' accumulators (16 in all). */
AVX512 static INL void attn_group_512_t(const float *q, size_t G, const void *K, const void *V, size_t kvs, size_t n,
                                        size_t hd, float scale, float cap, const float *sk, float *out, float *s,
                                        int f16) {
    /* P positions per block; float16 rows are prefetched PF positions ahead
     * (float32 ones measured slower with it: too many prefetches) */
    size_t es = f16 ? 2 : 4, P = 16 / G, PF = G == 1 ? P : 2 * P, j = 0;
    const __m512 vscale = _mm512_set1_ps(scale);
    float sums[16];
    for (; j + P <= n; j += P) {
        const char *kb = (const char *)K + j * kvs * es;
        __m512 a[16];
        for (int u = 0; u < 16; u++) a[u] = _mm512_setzero_ps();
        for (size_t i = 0; i < hd; i += 16) {
            for (size_t p = 0; p < P; p++) {
                if (f16) _mm_prefetch(kb + (p + PF) * kvs * es + i * es, _MM_HINT_T0);
                __m512 k = ld16(kb + p * kvs * es, i, f16);
                for (size_t h = 0; h < G; h++) a[p * G + h] = _mm512_fmadd_ps(_mm512_loadu_ps(q + h * hd + i), k, a[p * G + h]);
            }
        }
        _mm512_storeu_ps(sums, _mm512_mul_ps(reduce16(a), vscale));
        for (size_t p = 0; p < P; p++)
            for (size_t h = 0; h < G; h++) s[h * n + j + p] = sums[p * G + h];
    }
    for (; j < n; j++) {   /* the last positions, one at a time */
        const void *k0 = (const char *)K + j * kvs * es;
        for (size_t h = 0; h < G; h++) {
            __m512 a0 = _mm512_setzero_ps();
            for (size_t i = 0; i < hd; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + h * hd + i), ld16(k0, i, f16), a0);
            s[h * n + j] = _mm512_reduce_add_ps(a0) * scale;
        }
    }
    float r[8];
    for (size_t h = 0; h < G; h++) r[h] = exp_scores(MT_CPU_AVX512, s + h * n, n, cap, sk ? sk + h : NULL);
    size_t dc = 256 / G; /* dimensions per pass: G heads x dc/16 accumulators = 16 */
    for (size_t d0 = 0; d0 < hd; d0 += dc) {
        size_t nb = hd - d0 < dc ? (hd - d0) / 16 : dc / 16;
        __m512 o[16];
        for (int b = 0; b < 16; b++) o[b] = _mm512_setzero_ps();
        for (size_t jj = 0; jj < n; jj++) {
            const void *v = (const char *)V + jj * kvs * es;
            if (f16)
                for (size_t off = 0; off < nb * 16 * es; off += 64)
                    _mm_prefetch((const char *)v + 16 * kvs * es + d0 * es + off, _MM_HINT_T0);
            for (size_t b = 0; b < dc / 16; b++)
                if (b < nb) {
                    __m512 vv = ld16(v, d0 + 16 * b, f16);
                    for (size_t h = 0; h < G; h++)
                        o[h * (dc / 16) + b] = _mm512_fmadd_ps(_mm512_set1_ps(s[h * n + jj]), vv, o[h * (dc / 16) + b]);
                }
        }
        for (size_t h = 0; h < G; h++) {
            __m512 rr = _mm512_set1_ps(r[h]);
            for (size_t b = 0; b < nb; b++)
                _mm512_storeu_ps(out + h * hd + d0 + 16 * b, _mm512_mul_ps(o[h * (dc / 16) + b], rr));
        }
    }
}

#define GROUP_INST(G)                                                                                                   \
    AVX512 static void attn_group_512_##G(const float *q, const void *K, const void *V, size_t kvs, size_t n, size_t hd, \
                                          float scale, float cap, const float *sk, float *out, float *s, int f16) {    \
        if (f16) attn_group_512_t(q, G, K, V, kvs, n, hd, scale, cap, sk, out, s, 1);                                  \
        else attn_group_512_t(q, G, K, V, kvs, n, hd, scale, cap, sk, out, s, 0);                                     \
    }
GROUP_INST(1)
GROUP_INST(2)
GROUP_INST(4)
GROUP_INST(8)
#undef GROUP_INST

void mt_k_attn_group_sinks(int level, const float *q, size_t nh, const void *K, const void *V, int kv_f16,
                           size_t kvs, size_t n, size_t hd, float scale, float cap, const float *sinks, float *out,
                           float *scratch) {
    size_t h = 0;
    if (n && level == MT_CPU_AVX512 && hd % 16 == 0)
        while (nh - h >= 2) {   /* heads in sets of 8, 4, 2 */
            size_t g = nh - h >= 8 ? 8 : nh - h >= 4 ? 4 : 2;
            (g == 8 ? attn_group_512_8 : g == 4 ? attn_group_512_4 : attn_group_512_2)(
                q + h * hd, K, V, kvs, n, hd, scale, cap, sinks ? sinks + h : NULL, out + h * hd, scratch, kv_f16);
            h += g;
        }
    for (; h < nh; h++)
        mt_k_attn_head_sink(level, q + h * hd, K, V, kv_f16, kvs, n, hd, scale, cap, sinks ? sinks + h : NULL,
                            out + h * hd, scratch);
}

void mt_k_attn_group(int level, const float *q, size_t nh, const void *K, const void *V, int kv_f16, size_t kvs,
                     size_t n, size_t hd, float scale, float cap, float *out, float *scratch) {
    mt_k_attn_group_sinks(level, q, nh, K, V, kv_f16, kvs, n, hd, scale, cap, NULL, out, scratch);
}

void mt_k_attn_head_sink(int level, const float *q, const void *K, const void *V, int kv_f16, size_t kvs, size_t n,
                         size_t hd, float scale, float cap, const float *sink, float *out, float *scratch) {
    if (!n) { memset(out, 0, hd * sizeof *out); return; }
    if (level == MT_CPU_AVX512 && hd % 16 == 0)
        attn_group_512_1(q, K, V, kvs, n, hd, scale, cap, sink, out, scratch, kv_f16);
    else if (level >= MT_CPU_AVX2 && hd % 8 == 0)
        (kv_f16 ? attn_avx2_f16 : attn_avx2_f32)(q, K, V, kvs, n, hd, scale, cap, sink, out, scratch);
    else attn_c(q, K, V, kvs, n, hd, scale, cap, sink, out, scratch, kv_f16);
}

void mt_k_attn_head(int level, const float *q, const void *K, const void *V, int kv_f16, size_t kvs, size_t n,
                    size_t hd, float scale, float cap, float *out, float *scratch) {
    mt_k_attn_head_sink(level, q, K, V, kv_f16, kvs, n, hd, scale, cap, NULL, out, scratch);
}
