/* norm_ada.c - AdaIN1d, AdaLayerNorm, snake and leaky ReLU (see norm_ada.h).
 * Statistics are accumulated in double; the rest is float32 elementwise.
 * ref: mlx_audio/tts/models/kokoro/istftnet.py, modules.py. */
#include "tensor/norm_ada.h"
#include "tensor/mlxnum.h"

#include <math.h>

void mt_ada_style(float *h, const float *W, const float *b, const float *s, size_t S, size_t n_out) {
    for (size_t o = 0; o < n_out; o++) {
        const float *w = W + o * S;
        double acc = 0.0;
        for (size_t i = 0; i < S; i++) acc += (double)w[i] * s[i];
        h[o] = (float)acc + (b ? b[o] : 0.0f);
    }
}

/* y[n] = (1 + g) * (x - mean) / sqrt(var + eps) + b over one strided run of n values */
/* norm_run for contiguous x and y with one (g, b) pair (AdaIN1d's rows): the sums in four
 * double lanes, the normalization in one vectorized pass */
static void norm_row(float *y, const float *x, size_t n, float g, float b, float eps) {
    double s4[4] = {0, 0, 0, 0}, q4[4] = {0, 0, 0, 0};
    size_t n4 = n & ~(size_t)3;
    for (size_t i = 0; i < n4; i += 4)
        for (int k = 0; k < 4; k++) s4[k] += x[i + k];
    double sum = (s4[0] + s4[1]) + (s4[2] + s4[3]);
    for (size_t i = n4; i < n; i++) sum += x[i];
    float mean = (float)(sum / (double)n);
    for (size_t i = 0; i < n4; i += 4)
        for (int k = 0; k < 4; k++) {
            double d = (double)x[i + k] - mean;
            q4[k] += d * d;
        }
    double ss = (q4[0] + q4[1]) + (q4[2] + q4[3]);
    for (size_t i = n4; i < n; i++) {
        double d = (double)x[i] - mean;
        ss += d * d;
    }
    float den = sqrtf((float)(ss / (double)n) + eps), g1 = 1.0f + g;
    for (size_t i = 0; i < n; i++) y[i] = g1 * ((x[i] - mean) / den) + b;
}

static void norm_run(float *y, const float *x, size_t n, size_t stride, const float *g, const float *b,
                     size_t gbstride, float eps) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += x[i * stride];
    float mean = (float)(sum / (double)n);
    double ss = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)x[i * stride] - mean;
        ss += d * d;
    }
    float den = sqrtf((float)(ss / (double)n) + eps);
    for (size_t i = 0; i < n; i++) {
        float xh = (x[i * stride] - mean) / den;
        y[i * stride] = (1.0f + g[i * gbstride]) * xh + b[i * gbstride];
    }
}

typedef struct ada_job {
    float *y;
    const float *x, *gb;
    size_t C, T;
    float eps;
} ada_job;

static void adain_run(void *ctx, size_t begin, size_t end, int tid) {
    (void)tid;
    const ada_job *J = ctx;
    for (size_t c = begin; c < end; c++)
        norm_row(J->y + c * J->T, J->x + c * J->T, J->T, J->gb[c], J->gb[J->C + c], J->eps);
}

void mt_adain1d(float *y, const float *x, const float *gb, size_t C, size_t T, float eps, mt_pool *pool) {
    if (!T || !C) return;
    ada_job J = {y, x, gb, C, T, eps};
    mt_pool_for(pool, C, T >= 4096 ? 1 : 4096 / T + 1, adain_run, &J);
}

static void adaln_run(void *ctx, size_t begin, size_t end, int tid) {
    (void)tid;
    const ada_job *J = ctx;
    for (size_t t = begin; t < end; t++)
        norm_run(J->y + t * J->C, J->x + t * J->C, J->C, 1, J->gb, J->gb + J->C, 1, J->eps);
}

void mt_ada_layernorm(float *y, const float *x, const float *gb, size_t T, size_t C, float eps, mt_pool *pool) {
    if (!T || !C) return;
    ada_job J = {y, x, gb, C, T, eps};
    mt_pool_for(pool, T, C >= 4096 ? 1 : 4096 / C + 1, adaln_run, &J);
}

typedef struct snake_job {
    float *x;
    const float *alpha;
    size_t T;
} snake_job;

static void snake_run(void *ctx, size_t begin, size_t end, int tid) {
    (void)tid;
    const snake_job *J = ctx;
    for (size_t c = begin; c < end; c++) {
        float a = J->alpha[c], inv = 1.0f / a;
        float *xc = J->x + c * J->T;
        float s[256];   /* mlx's sine, vectorized, a block at a time */
        for (size_t t0 = 0; t0 < J->T; t0 += 256) {
            size_t n = J->T - t0 < 256 ? J->T - t0 : 256;
            for (size_t u = 0; u < n; u++) s[u] = a * xc[t0 + u];
            mt_mlx_sin_n(s, s, n);
            for (size_t u = 0; u < n; u++) xc[t0 + u] = xc[t0 + u] + inv * (s[u] * s[u]);
        }
    }
}

void mt_snake(float *x, const float *alpha, size_t C, size_t T, mt_pool *pool) {
    if (!C || !T) return;
    snake_job J = {x, alpha, T};
    mt_pool_for(pool, C, T >= 2048 ? 1 : 2048 / T + 1, snake_run, &J);
}

void mt_leaky_relu(float *x, size_t n, float slope) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] < 0.0f ? x[i] * slope : x[i];   /* vectorizes */
}
