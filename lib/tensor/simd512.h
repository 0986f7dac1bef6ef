/* simd512.h - AVX-512 helpers shared by the kernels (tensor/kernels_*.c):
 * tail masks, scales/biases widened to float32, the bias dot product.  Each
 * is inlined into callers compiled for AVX-512 (a superset of MT_AVX512_BASE). */
#ifndef MT_SIMD512_H
#define MT_SIMD512_H

#include <immintrin.h>
#include <stddef.h>
#include "tensor/dtype.h"

#define MT_AVX512_BASE __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx2"), always_inline))

/* The first min(n, 16) lanes. */
static inline __mmask16 mt_mask16(size_t n) { return (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1); }

/* Up to 16 scales or biases of dtype t (F32/F16/BF16), the lanes of k, widened
 * to float32; the masked load reads nothing past them. */
MT_AVX512_BASE static inline __m512 mt_sb16_512(const unsigned char *p, mt_dtype t, __mmask16 k) {
    if (t == MT_F32) return _mm512_maskz_loadu_ps(k, p);
    __m256i h = _mm256_maskz_loadu_epi16(k, p);
    if (t == MT_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* dst[n] = the n scales/biases at src widened to float32 (inline: a row of a
 * small matrix has only a few dozen groups, a call per row cost ~8% of decode). */
MT_AVX512_BASE static inline void mt_cvt_sb_512(float *dst, const unsigned char *src, mt_dtype t, size_t n) {
    size_t es = t == MT_F32 ? 4 : 2;
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = mt_mask16(n - i);
        _mm512_mask_storeu_ps(dst + i, k, mt_sb16_512(src + i * es, t, k));
    }
}

/* sum_i bf[i] * gsum[i] over n lanes. */
MT_AVX512_BASE static inline float mt_bias_dot_512(const float *bf, const float *gsum, size_t n) {
    __m512 a = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) a = _mm512_fmadd_ps(_mm512_loadu_ps(bf + i), _mm512_loadu_ps(gsum + i), a);
    if (i < n) {
        __mmask16 k = mt_mask16(n - i);
        a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, bf + i), _mm512_maskz_loadu_ps(k, gsum + i), a);
    }
    return _mm512_reduce_add_ps(a);
}

#endif
