/* ops.c - float32 kernels: norms, activations, softmax, RoPE.  The *_ref
 * functions are the plain C references; the unsuffixed ones dispatch to the
 * SIMD path of mt_cpu_level() (kernels_v.c). */
#include "tensor/ops.h"

#include <math.h>
#include "core/cpu.h"
#include "tensor/kernels.h"

void mt_rmsnorm_ref(float *out, const float *x, const float *w, size_t n, float eps) {
    float ss = 0.f;
    for (size_t i = 0; i < n; i++) ss += x[i] * x[i];
    float r = 1.0f / sqrtf(ss / (float)n + eps);
    for (size_t i = 0; i < n; i++) out[i] = w ? x[i] * r * w[i] : x[i] * r;
}

void mt_layernorm(float *out, const float *x, const float *w, const float *b, size_t n, float eps) {
    float mean = 0.f;
    for (size_t i = 0; i < n; i++) mean += x[i];
    mean /= (float)n;
    float var = 0.f;
    for (size_t i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    var /= (float)n;
    float r = 1.0f / sqrtf(var + eps);
    for (size_t i = 0; i < n; i++) {
        float v = (x[i] - mean) * r;
        if (w) v *= w[i];
        if (b) v += b[i];
        out[i] = v;
    }
}

void mt_softmax_ref(float *x, size_t n) {
    if (!n) return;
    float m = x[0];
    for (size_t i = 1; i < n; i++) m = x[i] > m ? x[i] : m;
    float s = 0.f;
    for (size_t i = 0; i < n; i++) { x[i] = expf(x[i] - m); s += x[i]; }
    float r = 1.0f / s;
    for (size_t i = 0; i < n; i++) x[i] *= r;
}

void mt_silu_ref(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i]));
}

void mt_gelu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

void mt_gelu_tanh(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}

void mt_swiglu_ref(float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] = a[i] / (1.0f + expf(-a[i])) * b[i];
}

float mt_dot_ref(const float *a, const float *b, size_t n) {
    float s = 0.f;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void mt_axpy_ref(float *y, float a, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

void mt_rope(float *x, size_t heads, size_t head_dim, size_t rot_dims, const float *inv_freq,
             double pos, int traditional) {
    size_t half = rot_dims / 2;
    for (size_t i = 0; i < half; i++) {
        float ang = (float)pos * inv_freq[i];
        float c = cosf(ang), s = sinf(ang);
        for (size_t h = 0; h < heads; h++) {
            float *v = x + h * head_dim;
            size_t a = traditional ? 2 * i : i, b = traditional ? 2 * i + 1 : i + half;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }
}

void mt_rmsnorm(float *out, const float *x, const float *w, size_t n, float eps) {
    int l = mt_cpu_level();
    float r = 1.0f / sqrtf(mt_k_sumsq(l, x, n) / (float)n + eps);
    mt_k_scale_mul(l, out, x, r, w, n);
}

void mt_softmax(float *x, size_t n) {
    if (!n) return;
    int l = mt_cpu_level();
    float s = mt_k_exp_sum(l, x, mt_k_max(l, x, n), n);
    mt_k_scale(l, x, 1.0f / s, n);
}

void mt_silu(float *x, size_t n) { mt_k_swiglu(mt_cpu_level(), x, NULL, n); }
void mt_swiglu(float *a, const float *b, size_t n) { mt_k_swiglu(mt_cpu_level(), a, b, n); }
void mt_attn_head(const float *q, const void *K, const void *V, int kv_f16, size_t kvs, size_t n, size_t hd,
                  float scale, float cap, float *out, float *scratch) {
    mt_k_attn_head(mt_cpu_level(), q, K, V, kv_f16, kvs, n, hd, scale, cap, out, scratch);
}
void mt_attn_group(const float *q, size_t nh, const void *K, const void *V, int kv_f16, size_t kvs, size_t n,
                   size_t hd, float scale, float cap, float *out, float *scratch) {
    mt_k_attn_group(mt_cpu_level(), q, nh, K, V, kv_f16, kvs, n, hd, scale, cap, out, scratch);
}
void mt_attn_group_sinks(const float *q, size_t nh, const void *K, const void *V, int kv_f16, size_t kvs, size_t n,
                         size_t hd, float scale, float cap, const float *sinks, float *out, float *scratch) {
    mt_k_attn_group_sinks(mt_cpu_level(), q, nh, K, V, kv_f16, kvs, n, hd, scale, cap, sinks, out, scratch);
}
void mt_softmax_sink(float *x, size_t n, const float *sink) {
    if (!sink) { mt_softmax(x, n); return; }
    int l = mt_cpu_level();
    float m = n ? mt_k_max(l, x, n) : -INFINITY;
    if (*sink > m) m = *sink;
    float s = (n ? mt_k_exp_sum(l, x, m, n) : 0.0f) + expf(*sink - m);
    if (n) mt_k_scale(l, x, 1.0f / s, n);
}
float mt_dot(const float *a, const float *b, size_t n) { return mt_k_dot(mt_cpu_level(), a, b, n); }
void mt_axpy(float *y, float a, const float *x, size_t n) { mt_k_axpy(mt_cpu_level(), y, a, x, n); }
