/* kernels_v.c - float32 vector primitives behind ops.c (dot, axpy, sums of
 * squares, scaling, max, exp-and-sum, SiLU/SwiGLU) for the portable, AVX2 and
 * AVX-512 paths.  exp is a Cephes-style polynomial (about 1 ulp on the range
 * used), so SIMD softmax/SiLU agree with the libm-based references to ~1e-6
 * relative. */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <math.h>
#include "core/cpu.h"
#include "tensor/simd_exp.h"
#include "tensor/simd_sum.h"
#include "tensor/simd_vec.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx2")))

static inline float hmax8(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- dot / axpy: AVX-512 where present, else AVX2, else C -------------- */

float mt_k_dot(int level, const float *a, const float *b, size_t n) {
    if (level == MT_CPU_AVX512) return mt_vdot_512(a, b, n);
    if (level == MT_CPU_AVX2) return mt_vdot_avx2(a, b, n);
    return mt_vdot_c(a, b, n);
}

void mt_k_axpy(int level, float *y, float a, const float *x, size_t n) {
    if (level == MT_CPU_AVX512) mt_vaxpy_512(y, a, x, n);
    else if (level == MT_CPU_AVX2) mt_vaxpy_avx2(y, a, x, n);
    else mt_vaxpy_c(y, a, x, n);
}

/* ---- the rest: AVX2 code serves both SIMD paths ------------------------ */

float mt_k_sumsq(int level, const float *x, size_t n) {
    if (level != MT_CPU_PORTABLE) return mt_k_dot(level, x, x, n);
    float s = 0.f;
    for (size_t i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}

void mt_k_scale_mul(int level, float *out, const float *x, float r, const float *w, size_t n) {
    size_t i = 0;
    if (level != MT_CPU_PORTABLE) {
        __m256 vr = _mm256_set1_ps(r);
        if (w) for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vr), _mm256_loadu_ps(w + i)));
        else for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vr));
    }
    for (; i < n; i++) out[i] = w ? x[i] * r * w[i] : x[i] * r;
}

float mt_k_max(int level, const float *x, size_t n) {
    if (!n) return -INFINITY;
    float m = x[0];
    size_t i = 0;
    if (level != MT_CPU_PORTABLE && n >= 8) {
        __m256 vm = _mm256_loadu_ps(x);
        for (i = 8; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
        m = hmax8(vm);
    }
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}

float mt_k_exp_sum(int level, float *x, float m, size_t n) {
    size_t i = 0;
    float s = 0.f;
    if (level != MT_CPU_PORTABLE) {
        __m256 vm = _mm256_set1_ps(m), vs = _mm256_setzero_ps();
        for (; i + 8 <= n; i += 8) {
            __m256 e = mt_exp8_avx2(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
            _mm256_storeu_ps(x + i, e);
            vs = _mm256_add_ps(vs, e);
        }
        s = mt_hsum8(vs);
    }
    for (; i < n; i++) { x[i] = expf(x[i] - m); s += x[i]; }
    return s;
}

void mt_k_scale(int level, float *x, float r, size_t n) {
    size_t i = 0;
    if (level != MT_CPU_PORTABLE) {
        __m256 vr = _mm256_set1_ps(r);
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vr));
    }
    for (; i < n; i++) x[i] *= r;
}

void mt_k_swiglu(int level, float *a, const float *b, size_t n) {
    size_t i = 0;
    if (level != MT_CPU_PORTABLE) {
        const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
        for (; i + 8 <= n; i += 8) {
            __m256 v = _mm256_loadu_ps(a + i);
            __m256 s = _mm256_div_ps(v, _mm256_add_ps(one, mt_exp8_avx2(_mm256_sub_ps(zero, v))));
            if (b) s = _mm256_mul_ps(s, _mm256_loadu_ps(b + i));
            _mm256_storeu_ps(a + i, s);
        }
    }
    for (; i < n; i++) {
        float s = a[i] / (1.0f + expf(-a[i]));
        a[i] = b ? s * b[i] : s;
    }
}
