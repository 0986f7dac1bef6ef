/* mlxnum.c - mlx's CPU arithmetic for 16-bit activations (see mlxnum.h).
 * ref: mlx/backend/cpu/simd/math.h (exp, sincos, erf), unary_ops.h (sigmoid),
 *      softmax.cpp, logsumexp.cpp, mlx/fast.cpp (rms_norm, layer_norm, rope and
 *      scaled_dot_product_attention fallbacks), mlx/nn/layers/activations.py. */
#include "tensor/mlxnum.h"

#include <math.h>
#include <stdint.h>
#include "core/cpu.h"
#include "tensor/simd_tr.h"

#ifdef __AVX2__
#include <immintrin.h>

/* s[0..8) = q . K_j for the 8 rows K_j = K + j*kvs (elements of kdt), each a float32 sum in
 * order of d (lanes are rows; 8x8 blocks transposed in registers); hd a multiple of 8 */
static void dots8(const float *q, const void *K, mt_dtype kdt, size_t kvs, size_t hd, float *s) {
    size_t es = mt_dtype_size(kdt);
    __m256 acc = _mm256_setzero_ps();
    for (size_t d = 0; d < hd; d += 8) {
        __m256 r[8];
        for (int j = 0; j < 8; j++) r[j] = mt_load_dt8((const char *)K + ((size_t)j * kvs + d) * es, kdt);
        mt_tr8(r);
        for (int i = 0; i < 8; i++)   /* exact products: FMA = multiply + add */
            acc = _mm256_fmadd_ps(_mm256_set1_ps(q[d + (size_t)i]), r[i], acc);
    }
    _mm256_storeu_ps(s, acc);
}
#endif

float mt_mlx_exp(float x0) {
    if (isnan(x0)) return x0;
    if (x0 > 88.0f) return INFINITY;
    if (x0 < -88.0f) return 0.0f;
    float x = x0 * 1.442695f;   /* log2(e) */
    /* floor(x + 0.5) with 0.5 a double, as mlx writes it */
    float ip = (float)floor((double)x + 0.5), fp = x - ip;
    float y = 1.535336188319500e-4f;
    y = fmaf(y, fp, 1.339887440266574e-3f);
    y = fmaf(y, fp, 9.618437357674640e-3f);
    y = fmaf(y, fp, 5.550332471162809e-2f);
    y = fmaf(y, fp, 2.402264791363012e-1f);
    y = fmaf(y, fp, 6.931472028550421e-1f);
    y = fmaf(y, fp, 1.000000000000000f);
    uint32_t e = (uint32_t)((int32_t)ip + 127) << 23;   /* 2^ip by its bits */
    float p;
    memcpy(&p, &e, 4);
    return p * y;
}

/* Cephes sincos as mlx ports it (simd::sincos), for |x| <= 2^23; beyond, libm. */
static float sincos1(float in, int sine) {
    if (fabsf(in) > 8388608.0f) return sine ? sinf(in) : cosf(in);
    int sign_sin = in < 0;
    float x = fabsf(in);
    uint32_t j = (uint32_t)(x * 1.27323954473516f);   /* x * 4/pi */
    j = (j + 1) & ~1u;
    float y = (float)j;
    int poly = (j & 2) != 0;
    x = fmaf(y, -0.78515625f, x);
    x = fmaf(y, -2.4187564849853515625e-4f, x);
    x = fmaf(y, -3.77489497744594108e-8f, x);
    sign_sin ^= (j & 4) != 0;
    int sign_cos = ((j - 2) & 4) != 0;
    float z = x * x;
    float y1 = fmaf(z, 2.443315711809948e-5f, -1.388731625493765e-3f);
    float y2 = fmaf(z, -1.9515295891e-4f, 8.3321608736e-3f);
    y1 = fmaf(y1, z, 4.166664568298827e-2f);
    y2 = fmaf(y2, z, -1.6666654611e-1f);
    y1 = y1 * z;
    y2 = y2 * z;
    y1 = y1 * z;
    y2 = fmaf(x, y2, x);
    y1 = fmaf(z, -0.5f, y1);
    y1 = y1 + 1.0f;
    if (sine) {
        float ys = poly ? y1 : y2;
        return sign_sin ? -ys : ys;
    }
    float yc = poly ? y2 : y1;
    return sign_cos ? yc : -yc;
}

float mt_mlx_sin(float x) { return sincos1(x, 1); }
float mt_mlx_cos(float x) { return sincos1(x, 0); }

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* sincos1's sine with bit selects instead of branches, so that the loop vectorizes; the
 * same operations in the same order, so each lane equals mt_mlx_sin (test_numerics checks
 * it).  |x| > 2^23, infinities and NaN go to libm afterwards, as in sincos1. */
void mt_mlx_sin_n(const float *x, float *y, size_t n) {
    uint32_t big = 0;
    for (size_t i = 0; i < n; i++) {
        float in = x[i];
        uint32_t ab = f2u(in) & 0x7fffffffu, out = ab > 0x4b000000u;
        big |= out;
        float a = u2f(ab & (out - 1u));
        uint32_t j = ((uint32_t)(int32_t)(a * 1.27323954473516f) + 1) & ~1u;
        float q = (float)(int32_t)j;
        float r = fmaf(q, -0.78515625f, a);
        r = fmaf(q, -2.4187564849853515625e-4f, r);
        r = fmaf(q, -3.77489497744594108e-8f, r);
        uint32_t neg = (uint32_t)(in < 0.0f) ^ ((j >> 2) & 1u);
        float z = r * r;
        float y1 = fmaf(z, 2.443315711809948e-5f, -1.388731625493765e-3f);
        float y2 = fmaf(z, -1.9515295891e-4f, 8.3321608736e-3f);
        y1 = fmaf(y1, z, 4.166664568298827e-2f);
        y2 = fmaf(y2, z, -1.6666654611e-1f);
        y1 = y1 * z;
        y2 = y2 * z;
        y1 = y1 * z;
        y2 = fmaf(r, y2, r);
        y1 = fmaf(z, -0.5f, y1);
        y1 = y1 + 1.0f;
        uint32_t m = 0u - ((j >> 1) & 1u);
        y[i] = u2f(((f2u(y1) & m) | (f2u(y2) & ~m)) ^ (neg << 31));
    }
    if (big)
        for (size_t i = 0; i < n; i++)
            if (!(fabsf(x[i]) <= 8388608.0f)) y[i] = sinf(x[i]);
}

float mt_mlx_erf(float v) {
    float t = 1.0f / fmaf(0.3275911f, fabsf(v), 1.0f);
    float r = fmaf(1.061405429f, t, -1.453152027f);
    r = fmaf(r, t, 1.421413741f);
    r = fmaf(r, t, -0.284496736f);
    r = fmaf(r, t, 0.254829592f);
    float e = -mt_mlx_exp(-v * v);
    float res = fmaf(e * t, r, 1.0f);
    return v > 0 ? res : -res;
}

void mt_mlx_round(float *x, size_t n, mt_dtype t) {
    if (t == MT_F32) return;
    for (size_t i = 0; i < n; i++) x[i] = mt_round_to(x[i], t);
}

void mt_mlx_mul_s(float *x, size_t n, float s, mt_dtype t) {
    s = mt_round_to(s, t);
    for (size_t i = 0; i < n; i++) x[i] = mt_round_to(x[i] * s, t);
}

void mt_mlx_div_s(float *x, size_t n, float s, mt_dtype t) {
    s = mt_round_to(s, t);
    for (size_t i = 0; i < n; i++) x[i] = mt_round_to(x[i] / s, t);
}

void mt_mlx_add(float *x, const float *y, size_t n, mt_dtype t) {
    for (size_t i = 0; i < n; i++) x[i] = mt_round_to(x[i] + y[i], t);
}

void mt_mlx_mul(float *x, const float *y, size_t n, mt_dtype t) {
    for (size_t i = 0; i < n; i++) x[i] = mt_round_to(x[i] * y[i], t);
}

void mt_mlx_tanh(float *x, size_t n, mt_dtype t) {
    for (size_t i = 0; i < n; i++) x[i] = mt_round_to(tanhf(x[i]), t);
}

/* mlx's Sigmoid: e = exp(|x|) in the type, then in float32 1/(1 + e) (x < 0) or
 * 1 - 1/(1 + e), rounded */
static inline float sigmoid1(float x, mt_dtype t) {
    float e = mt_round_to(mt_mlx_exp(fabsf(x)), t);
    float y = 1.0f / (1.0f + e);
    return mt_round_to(x < 0 ? y : 1.0f - y, t);
}

void mt_mlx_silu(float *x, size_t n, mt_dtype t) {
    for (size_t i = 0; i < n; i++) x[i] = mt_round_to(x[i] * sigmoid1(x[i], t), t);
}

void mt_mlx_swiglu(float *g, const float *u, size_t n, mt_dtype t) {
    for (size_t i = 0; i < n; i++) g[i] = mt_round_to(mt_round_to(g[i] * sigmoid1(g[i], t), t) * u[i], t);
}

void mt_mlx_gelu(float *x, size_t n, mt_dtype t) {
    float r2 = mt_round_to((float)sqrt(2.0), t);
    for (size_t i = 0; i < n; i++) {
        float a = mt_round_to(x[i] / r2, t);
        float e = mt_round_to(mt_mlx_erf(a), t);
        float b = mt_round_to(1.0f + e, t);
        x[i] = mt_round_to(mt_round_to(x[i] * b, t) / 2.0f, t);
    }
}

void mt_mlx_gelu_approx(float *x, size_t n, mt_dtype t) {
    float c3 = mt_round_to(0.044715f, t), k = mt_round_to((float)sqrt(2.0 / M_PI), t), h = mt_round_to(0.5f, t);
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float x3 = mt_round_to(powf(v, 3.0f), t);
        float in = mt_round_to(v + mt_round_to(c3 * x3, t), t);
        float th = mt_round_to(tanhf(mt_round_to(k * in, t)), t);
        x[i] = mt_round_to(mt_round_to(h * v, t) * mt_round_to(1.0f + th, t), t);
    }
}

void mt_mlx_rmsnorm(float *out, const float *x, const float *w, size_t n, float eps, mt_dtype t) {
    float ss = 0;
    for (size_t i = 0; i < n; i++) ss += x[i] * x[i];
    float r = 1.0f / sqrtf(ss * (float)(1.0 / (double)n) + eps);
    for (size_t i = 0; i < n; i++) {
        float y = mt_round_to(x[i] * r, t);
        out[i] = w ? mt_round_to(y * mt_round_to(w[i], t), t) : y;
    }
}

void mt_mlx_layernorm(float *out, const float *x, const float *w, const float *b, size_t n, float eps, mt_dtype t) {
    float inv = (float)(1.0 / (double)n), s = 0, ss = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    float mu = s * inv;
    for (size_t i = 0; i < n; i++) { float c = x[i] - mu; ss += c * c; }
    float r = 1.0f / sqrtf(ss * inv + eps);
    for (size_t i = 0; i < n; i++) {
        float y = mt_round_to((x[i] - mu) * r, t);
        if (w) y = mt_round_to(y * mt_round_to(w[i], t), t);
        if (b) y = mt_round_to(y + mt_round_to(b[i], t), t);
        out[i] = y;
    }
}

void mt_mlx_softmax(float *x, size_t n, mt_dtype t) {
    float m = -INFINITY, s = 0;
    for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    for (size_t i = 0; i < n; i++) { x[i] = mt_mlx_exp(x[i] - m); s += x[i]; }
    float inv = 1 / s;
    for (size_t i = 0; i < n; i++) x[i] = mt_round_to(x[i] * inv, t);
}

float mt_mlx_logsumexp(const float *x, size_t n, mt_dtype t) {
    float m = -INFINITY, s = 0;
    for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    if (isinf(m)) return m;
    for (size_t i = 0; i < n; i++) s += mt_mlx_exp(x[i] - m);
    return mt_round_to(logf(s) + m, t);
}

void mt_mlx_rope_inv_freq(float *inv_freq, int dims, float base) {
    int half = dims / 2;
    float step = logf(base) / (float)half;
    for (int i = 0; i < half; i++) inv_freq[i] = mt_mlx_exp((float)(-i) * step);
}

void mt_mlx_rope(float *x, size_t heads, size_t hd, size_t dims, const float *inv_freq, float pos, int traditional,
                 mt_dtype t) {
    size_t half = dims / 2;
    float c[512], s[512];   /* dims <= head_dim <= 1024 */
    for (size_t i = 0; i < half; i++) {
        float th = pos * inv_freq[i];
        c[i] = mt_round_to(mt_mlx_cos(th), t);
        s[i] = mt_round_to(mt_mlx_sin(th), t);
    }
    for (size_t h = 0; h < heads; h++) {
        float *xh = x + h * hd;
        for (size_t i = 0; i < half; i++) {
            size_t a = traditional ? 2 * i : i, b = traditional ? 2 * i + 1 : i + half;
            float x1 = xh[a], x2 = xh[b];
            xh[a] = mt_round_to(mt_round_to(x1 * c[i], t) - mt_round_to(x2 * s[i], t), t);
            xh[b] = mt_round_to(mt_round_to(x1 * s[i], t) + mt_round_to(x2 * c[i], t), t);
        }
    }
}

/* n values of kdt at p (element offset i) as float32 */
static inline void row_f32(float *out, const void *p, size_t i, size_t n, mt_dtype kdt) {
    mt_convert_to_f32(out, (const char *)p + i * mt_dtype_size(kdt), kdt, n);
}

void mt_mlx_attn_head(const float *q, const void *K, const void *V, mt_dtype kdt, size_t kvs, size_t n, size_t hd,
                      float scale, float cap, const unsigned char *mask, mt_dtype t, float *out, float *scratch) {
    float *s = scratch, *row = scratch + n;
    float qs[1024], acc[1024];
    float sc = mt_round_to(scale, t), cp = mt_round_to(cap, t);
    for (size_t d = 0; d < hd; d++) qs[d] = mt_round_to(q[d] * sc, t);
    size_t m = 0;   /* the kept rows' scores, in order */
#ifdef __AVX2__
    float blk[8];
    size_t jb = hd % 8 == 0 && mt_cpu_level() >= MT_CPU_AVX2 ? n / 8 * 8 : 0, have = SIZE_MAX;
#endif
    for (size_t j = 0; j < n; j++) {
        if (mask && !mask[j]) continue;
        float a = 0;
#ifdef __AVX2__
        if (j < jb) {   /* rows in blocks of 8 */
            if (j / 8 != have) {
                have = j / 8;
                dots8(qs, (const char *)K + have * 8 * kvs * mt_dtype_size(kdt), kdt, kvs, hd, blk);
            }
            a = blk[j % 8];
        } else
#endif
        {
            row_f32(row, K, j * kvs, hd, kdt);
            for (size_t d = 0; d < hd; d++) a += qs[d] * row[d];   /* exact products: fused or not, the same */
        }
        a = mt_round_to(a, t);
        if (cap > 0) a = mt_round_to(mt_round_to(tanhf(mt_round_to(a / cp, t)), t) * cp, t);
        s[m++] = a;
    }
    mt_mlx_softmax(s, m, t);
    for (size_t d = 0; d < hd; d++) acc[d] = 0;
    m = 0;
    for (size_t j = 0; j < n; j++) {
        if (mask && !mask[j]) continue;
        float p = s[m++];
        row_f32(row, V, j * kvs, hd, kdt);
        for (size_t d = 0; d < hd; d++) acc[d] += p * row[d];
    }
    for (size_t d = 0; d < hd; d++) out[d] = mt_round_to(acc[d], t);
}
