/* ops.h - float32 building blocks of transformer forward passes (plain C
 * versions dispatch to the SIMD path of mt_cpu_level(); *_ref are the plain C
 * references they are tested against).
 * Shapes are given in comments as [rows, cols], row-major. */
#ifndef MT_OPS_H
#define MT_OPS_H

#include <stddef.h>

/* out[n] = x[n] * rsqrt(mean(x^2) + eps) * w[n]  (w may be NULL: no weight) */
void mt_rmsnorm(float *out, const float *x, const float *w, size_t n, float eps);
/* out[n] = (x - mean) * rsqrt(var + eps) * w + b  (w, b may be NULL) */
void mt_layernorm(float *out, const float *x, const float *w, const float *b, size_t n, float eps);
/* in place: x[n] = softmax(x) */
void mt_softmax(float *x, size_t n);
void mt_silu(float *x, size_t n);
void mt_gelu(float *x, size_t n);          /* exact (erf) */
void mt_gelu_tanh(float *x, size_t n);     /* tanh approximation */
/* a[n] = silu(a) * b */
void mt_swiglu(float *a, const float *b, size_t n);
float mt_dot(const float *a, const float *b, size_t n);
/* y[n] += a * x[n] */
void mt_axpy(float *y, float a, const float *x, size_t n);

/* One attention head over n cached positions: s_j = scale * dot(q, K_j),
 * soft-capped (cap * tanh(s_j / cap)) when cap > 0, p = softmax(s),
 * out[hd] = sum_j p_j V_j, where K_j = K + j*kvs and V_j = V + j*kvs
 * (kvs: elements between positions), K and V float32 or, with kv_f16,
 * IEEE float16.  scratch: n floats.  n = 0 gives zeros. */
void mt_attn_head(const float *q, const void *K, const void *V, int kv_f16, size_t kvs, size_t n, size_t hd,
                  float scale, float cap, float *out, float *scratch);

/* mt_attn_head for nh query heads that share K and V (grouped-query
 * attention): head h reads q + h*hd and writes out + h*hd; each cached row is
 * read once for all of them.  scratch: nh * n floats. */
void mt_attn_group(const float *q, size_t nh, const void *K, const void *V, int kv_f16, size_t kvs, size_t n,
                   size_t hd, float scale, float cap, float *out, float *scratch);
/* mt_attn_group with attention sinks (gpt-oss): sinks[h], head h's learned logit, joins
 * its softmax's denominator only (p_j = exp(s_j) / (exp(sinks[h]) + sum_i exp(s_i)));
 * sinks NULL = mt_attn_group. */
void mt_attn_group_sinks(const float *q, size_t nh, const void *K, const void *V, int kv_f16, size_t kvs, size_t n,
                         size_t hd, float scale, float cap, const float *sinks, float *out, float *scratch);

/* R consecutive query rows of nh heads that share one K/V head, as two
 * matrix products (prefill): for head h and row i (q = Q + i*ldq + h*hd),
 * s_j = scale * dot(q, K_j) for j in [lo[i], hi[i]) (clamped to [0, n); no
 * other keys), soft-capped when cap > 0, p = softmax(s), out + i*ldo + h*hd
 * = sum_j p_j V_j; K_j = K + j*kvs, V_j likewise (float32, or float16 with
 * kv_f16).  A row with no keys gets zeros.  Calls cblas_sgemm: from pool
 * threads only when OpenBLAS runs one thread (mt_blas_pool_splits).
 * scratch: mt_attn_rows_scratch(R, n, hd) floats. */
size_t mt_attn_rows_scratch(size_t R, size_t n, size_t hd);
void mt_attn_rows(const float *Q, size_t ldq, size_t nh, size_t R, const void *K, const void *V, int kv_f16,
                  size_t kvs, size_t n, size_t hd, const size_t *lo, const size_t *hi, float scale, float cap,
                  float *out, size_t ldo, float *scratch);
/* mt_attn_rows with attention sinks[nh] (as mt_attn_group_sinks; NULL = none): a row with
 * no keys still gets zeros. */
void mt_attn_rows_sinks(const float *Q, size_t ldq, size_t nh, size_t R, const void *K, const void *V, int kv_f16,
                        size_t kvs, size_t n, size_t hd, const size_t *lo, const size_t *hi, float scale, float cap,
                        const float *sinks, float *out, size_t ldo, float *scratch);
/* Softmax of x[n] with an optional sink logit (NULL: mt_softmax): x_j = exp(x_j - m) /
 * (exp(*sink - m) + sum_i exp(x_i - m)), m the largest of them; -inf entries become 0. */
void mt_softmax_sink(float *x, size_t n, const float *sink);

/* Plain C references of the SIMD-dispatched functions above (same contracts;
 * tests compare against these). */
void mt_rmsnorm_ref(float *out, const float *x, const float *w, size_t n, float eps);
void mt_softmax_ref(float *x, size_t n);
void mt_silu_ref(float *x, size_t n);
void mt_swiglu_ref(float *a, const float *b, size_t n);
float mt_dot_ref(const float *a, const float *b, size_t n);
void mt_axpy_ref(float *y, float a, const float *x, size_t n);

/* RoPE on one position of `heads` heads, x[heads, head_dim] in place.
 * inv_freq[rot_dims/2]: angle of pair i = pos * inv_freq[i].  Only the first
 * rot_dims features rotate.  traditional=0 pairs (i, i + rot_dims/2) (MLX
 * default, HF "rotate_half"); traditional=1 pairs (2i, 2i+1). */
void mt_rope(float *x, size_t heads, size_t head_dim, size_t rot_dims, const float *inv_freq,
             double pos, int traditional);

#endif
