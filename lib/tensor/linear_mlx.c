/* linear_mlx.c - y = x W^T (+ b) as mlx's CPU kernels compute it for 16-bit
 * activations (mt_linear_forward_mlx; tensor/mlxnum.h lists the rules):
 *   dense      simd_gemm<T, float>: a float32 sum in order of k of exact products,
 *              rounded once (nn.Linear's bias through addmm: added before rounding)
 *   fp modes   fp_qmm_t<T>: per group round(scale * group sum), sums rounded at every step
 *   quantized  _qmm_t<T>: w = (s*q rounded) + b rounded (mx.dequantize's values),
 *              then sum = round(sum + round(x*w)) at every k, in order; the bias of
 *              a QuantizedLinear is a separate add, rounded again
 * Each running sum is a chain in the order of k, so the speed comes from running
 * R rows' chains side by side: a tile of R rows of W is widened to float32 (or
 * dequantized) row by row, turned k-major by 8x8 register transposes, and then
 * every token of x walks it once, R lanes per step.
 * ref: mlx/backend/cpu/gemms/simd_gemm.h, quantized.cpp (_qmm_t), mlx/nn/layers/linear.py,
 *      quantized.py. */
#include "tensor/linear.h"

#include <string.h>
#include "core/cpu.h"
#include "tensor/mlxnum.h"
#include "tensor/quant.h"
#include "tensor/simd_tr.h"

#ifdef __AVX2__
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx2")))
#endif

#define R MT_LINEAR_MLX_ROWS   /* rows of W per tile: four AVX2 vectors of running sums */

typedef struct {
    const mt_linear *l;
    const float *x;
    float *y;
    size_t T;
    mt_dtype t;
    float *work;
    int level;   /* mt_cpu_level(): every path computes the same bits */
} job_t;

/* a scale or bias of type t (F16/BF16/F32) */
static inline float scalar(const char *p, size_t i, mt_dtype t) {
    if (t == MT_F32) { float f; memcpy(&f, p + 4 * i, 4); return f; }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return t == MT_BF16 ? mt_bf16_to_f32(h) : mt_f16_to_f32(h);
}

#ifdef __AVX2__
static inline __m256 round8(__m256 v, mt_dtype t) {
    if (t == MT_BF16) {   /* finite values (the products and sums of finite 16-bit values) */
        __m256i b = _mm256_castps_si256(v);
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
        b = _mm256_add_epi32(b, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
        return _mm256_castsi256_ps(_mm256_and_si256(b, _mm256_set1_epi32((int)0xffff0000u)));
    }
    return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
#endif

/* Row n of W as float32 into out[K]: dense widened, quantized as mx.dequantize rounds it
 * (s*q rounded, + b rounded, in the scales' type). */
/* 1 when w_row can give slices of rows (the SIMD paths); else whole rows only */
static int sliceable(const mt_linear *l, int level) {
    return level >= MT_CPU_AVX2 &&
           (!l->quantized || ((l->bits == 4 || l->bits == 8) && (l->sdt == MT_BF16 || l->sdt == MT_F16)));
}

/* Elements [k0, k1) of row n (whole groups; the whole row unless sliceable) into out[k1 - k0]. */
static void w_row(const mt_linear *l, size_t n, size_t k0, size_t k1, float *out, int level) {
    size_t K = l->in;
#ifdef __AVX2__
    if (level >= MT_CPU_AVX2 && !l->quantized) {
        const char *w = (const char *)l->w + n * K * mt_dtype_size(l->wdt);
        size_t k = k0;
        for (; k + 8 <= k1; k += 8) _mm256_storeu_ps(out + k - k0, mt_load_dt8(w + k * mt_dtype_size(l->wdt), l->wdt));
        if (k < k1) mt_convert_to_f32(out + k - k0, w + k * mt_dtype_size(l->wdt), l->wdt, k1 - k);
        return;
    }
    if (sliceable(l, level)) {
        size_t gs = (size_t)l->group_size, ng = K / gs, ss = mt_dtype_size(l->sdt);
        const unsigned char *w = (const unsigned char *)l->w + n * K * (size_t)l->bits / 8;
        out -= k0;
        const char *sp = (const char *)l->scales + n * ng * ss, *bp = (const char *)l->biases + n * ng * ss;
        const __m256i sh4 = _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28), m4 = _mm256_set1_epi32(15);
        const __m256 q0 = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7), q8 = _mm256_setr_ps(8, 9, 10, 11, 12, 13, 14, 15);
        for (size_t g = k0 / gs; g < k1 / gs; g++) {
            __m256 vs = _mm256_set1_ps(scalar(sp, g, l->sdt)), vb = _mm256_set1_ps(scalar(bp, g, l->sdt));
            if (l->bits == 4) {   /* the group's 16 values, then a lookup per code */
                __m256 lo = round8(_mm256_add_ps(round8(_mm256_mul_ps(q0, vs), l->sdt), vb), l->sdt);
                __m256 hi = round8(_mm256_add_ps(round8(_mm256_mul_ps(q8, vs), l->sdt), vb), l->sdt);
                for (size_t k = g * gs; k < (g + 1) * gs; k += 8) {
                    uint32_t word;
                    memcpy(&word, w + k / 2, 4);
                    __m256i q = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)word), sh4), m4);
                    __m256 v = _mm256_blendv_ps(_mm256_permutevar8x32_ps(lo, q), _mm256_permutevar8x32_ps(hi, q),
                                                _mm256_castsi256_ps(_mm256_slli_epi32(q, 28)));
                    _mm256_storeu_ps(out + k, v);
                }
                continue;
            }
            for (size_t k = g * gs; k < (g + 1) * gs; k += 8) {
                __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(w + k)));
                __m256 v = round8(_mm256_mul_ps(_mm256_cvtepi32_ps(q), vs), l->sdt);
                _mm256_storeu_ps(out + k, round8(_mm256_add_ps(v, vb), l->sdt));
            }
        }
        return;
    }
#else
    (void)level;
#endif
    (void)k0; (void)k1;
    mt_linear_row(l, n, out);
}

/* Columns [k0, k1) of rows n0 .. n0+R of W (rows past the matrix as zeros) k-major into
 * wt[k1 - k0][R]; rows: 8*(k1 - k0) floats. */
static void build_tile(const mt_linear *l, size_t n0, size_t k0, size_t k1, float *wt, float *rows, int level) {
    size_t K = k1 - k0, N = l->out;
    for (size_t h = 0; h < R; h += 8) {
        for (size_t r = 0; r < 8; r++) {
            if (n0 + h + r < N) w_row(l, n0 + h + r, k0, k1, rows + r * K, level);
            else memset(rows + r * K, 0, K * sizeof *rows);
        }
        size_t k = 0;
#ifdef __AVX2__
        for (; level >= MT_CPU_AVX2 && k + 8 <= K; k += 8) {
            __m256 v[8];
            for (int r = 0; r < 8; r++) v[r] = _mm256_loadu_ps(rows + (size_t)r * K + k);
            mt_tr8(v);
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(wt + (k + (size_t)i) * R + h, v[i]);
        }
#endif
        for (; k < K; k++)
            for (size_t r = 0; r < 8; r++) wt[k * R + h + r] = rows[r * K + k];
    }
}

/* acc[R] (running sums, carried in and out) for one token over the k-major tile wt[K][R]: dense (a float32 sum; the products are
 * exact, so a fused multiply-add is the same as a multiply and an add) or quantized (product
 * and sum rounded to t at every step) */
static void tile_c(const float *x, const float *wt, size_t K, int quant, mt_dtype t, float *acc) {
    for (size_t k = 0; k < K; k++)
        for (size_t r = 0; r < R; r++)
            acc[r] = quant ? mt_round_to(acc[r] + mt_round_to(x[k] * wt[k * R + r], t), t) : acc[r] + x[k] * wt[k * R + r];
}

#ifdef __AVX2__
static void tile_avx2(const float *x, const float *wt, size_t K, int quant, mt_dtype t, float *acc) {
    __m256 a0 = _mm256_loadu_ps(acc), a1 = _mm256_loadu_ps(acc + 8), a2 = _mm256_loadu_ps(acc + 16);
    __m256 a3 = _mm256_loadu_ps(acc + 24);
    if (!quant)
        for (size_t k = 0; k < K; k++) {
            __m256 xk = _mm256_set1_ps(x[k]);
            const float *w = wt + k * R;
            a0 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w), a0);
            a1 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 8), a1);
            a2 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 16), a2);
            a3 = _mm256_fmadd_ps(xk, _mm256_loadu_ps(w + 24), a3);
        }
    else
        for (size_t k = 0; k < K; k++) {
            __m256 xk = _mm256_set1_ps(x[k]);
            const float *w = wt + k * R;
            a0 = round8(_mm256_add_ps(a0, round8(_mm256_mul_ps(xk, _mm256_loadu_ps(w)), t)), t);
            a1 = round8(_mm256_add_ps(a1, round8(_mm256_mul_ps(xk, _mm256_loadu_ps(w + 8)), t)), t);
            a2 = round8(_mm256_add_ps(a2, round8(_mm256_mul_ps(xk, _mm256_loadu_ps(w + 16)), t)), t);
            a3 = round8(_mm256_add_ps(a3, round8(_mm256_mul_ps(xk, _mm256_loadu_ps(w + 24)), t)), t);
        }
    _mm256_storeu_ps(acc, a0);
    _mm256_storeu_ps(acc + 8, a1);
    _mm256_storeu_ps(acc + 16, a2);
    _mm256_storeu_ps(acc + 24, a3);
}

AVX512 static inline __m512 round16(__m512 v, mt_dtype t) {
    if (t == MT_BF16) {
        __m512i b = _mm512_castps_si512(v);
        __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
        b = _mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
        return _mm512_castsi512_ps(_mm512_and_si512(b, _mm512_set1_epi32((int)0xffff0000u)));
    }
    return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

AVX512 static void tile_avx512(const float *x, const float *wt, size_t K, int quant, mt_dtype t, float *acc) {
    __m512 a0 = _mm512_loadu_ps(acc), a1 = _mm512_loadu_ps(acc + 16);
    if (!quant)
        for (size_t k = 0; k < K; k++) {
            __m512 xk = _mm512_set1_ps(x[k]);
            a0 = _mm512_fmadd_ps(xk, _mm512_loadu_ps(wt + k * R), a0);
            a1 = _mm512_fmadd_ps(xk, _mm512_loadu_ps(wt + k * R + 16), a1);
        }
    else
        for (size_t k = 0; k < K; k++) {
            __m512 xk = _mm512_set1_ps(x[k]);
            a0 = round16(_mm512_add_ps(a0, round16(_mm512_mul_ps(xk, _mm512_loadu_ps(wt + k * R)), t)), t);
            a1 = round16(_mm512_add_ps(a1, round16(_mm512_mul_ps(xk, _mm512_loadu_ps(wt + k * R + 16)), t)), t);
        }
    _mm512_storeu_ps(acc, a0);
    _mm512_storeu_ps(acc + 16, a1);
}
#endif

static void tile_walk(int level, const float *x, const float *wt, size_t K, int quant, mt_dtype t, float *acc) {
#ifdef __AVX2__
    if (level == MT_CPU_AVX512) { tile_avx512(x, wt, K, quant, t, acc); return; }
    if (level == MT_CPU_AVX2) { tile_avx2(x, wt, K, quant, t, acc); return; }
#endif
    tile_c(x, wt, K, quant, t, acc);
}

#define KC 256   /* columns per slice of a tile for a few tokens: the slice stays in L1 */
#define TC 8     /* tokens walked per slice */

static void run_tiles(void *vc, size_t b, size_t e, int tid) {
    job_t *j = vc;
    const mt_linear *l = j->l;
    size_t K = l->in, N = l->out, T = j->T;
    float *wt = j->work + (size_t)tid * MT_LINEAR_MLX_WORK(K), *rows = wt + K * R, bias[R], acc[TC][R];
    /* a few tokens (decoding): the tile in slices of KC columns, each walked by the tokens while
     * it is in L1; many (prefill): the whole tile once, walked by every token */
    size_t kc = T <= TC && sliceable(l, j->level) ? KC : K;
    for (size_t tile = b; tile < e; tile++) {
        size_t n0 = tile * R, nr = N - n0 < R ? N - n0 : R;
        if (l->bias) mt_convert_to_f32(bias, (const char *)l->bias + n0 * mt_dtype_size(l->bdt), l->bdt, nr);
        for (size_t t0 = 0; t0 < T; t0 += TC) {
            size_t tn = T - t0 < TC ? T - t0 : TC;
            memset(acc, 0, sizeof acc);
            for (size_t k0 = 0; k0 < K; k0 += kc) {
                size_t k1 = K - k0 < kc ? K : k0 + kc;
                if (kc < K || t0 == 0) build_tile(l, n0, k0, k1, wt, rows, j->level);
                for (size_t t = 0; t < tn; t++)
                    tile_walk(j->level, j->x + (t0 + t) * K + k0, wt, k1 - k0, l->quantized, j->t, acc[t]);
            }
            for (size_t t = 0; t < tn; t++) {
                float *yt = j->y + (t0 + t) * N + n0;
                for (size_t r = 0; r < nr; r++)
                    yt[r] = !l->bias ? mt_round_to(acc[t][r], j->t)
                            : l->quantized ? mt_round_to(acc[t][r] + mt_round_to(bias[r], j->t), j->t)
                                           : mt_round_to(acc[t][r] + bias[r], j->t);
            }
        }
    }
}

/* The fp modes (mxfp4, nvfp4, mxfp8) as mlx's fp_qmm_t<T>: per group the scale in t, a
 * group sum gsum = round(gsum + round(x * e)) in order of k, then
 * sum = round(sum + round(scale * gsum)); the bias a separate rounded add.  Plain C per row
 * (the rows spread over the pool): the exactness mode, not a fast path. */
static void run_fp(void *vc, size_t b, size_t e, int tid) {
    job_t *j = vc;
    const mt_linear *l = j->l;
    size_t K = l->in, N = l->out, gs = (size_t)l->group_size, ng = K / gs;
    float *ev = j->work + (size_t)tid * MT_LINEAR_MLX_WORK(K), *sc = ev + K;   /* K values, ng scales */
    for (size_t r = b; r < e; r++) {
        const uint8_t *w = (const uint8_t *)l->w + r * (K * (size_t)l->bits / 8), *sp = (const uint8_t *)l->scales + r * ng;
        for (size_t k = 0; k < K; k++)   /* E2M1 and E4M3 values are exact in float16 and bfloat16 */
            ev[k] = l->bits == 8 ? mt_fp8_e4m3_to_f32(w[k]) : mt_fp4_e2m1_to_f32((uint8_t)(w[k / 2] >> (k % 2 * 4)));
        for (size_t g = 0; g < ng; g++) sc[g] = mt_round_to(mt_qfp_scale(sp[g], l->mode), j->t);
        float bias = 0.f;
        if (l->bias) mt_convert_to_f32(&bias, (const char *)l->bias + r * mt_dtype_size(l->bdt), l->bdt, 1);
        for (size_t t = 0; t < j->T; t++) {
            const float *xt = j->x + t * K;
            float sum = 0.f;
            for (size_t g = 0; g < ng; g++) {
                float gsum = 0.f;
                for (size_t k = g * gs; k < (g + 1) * gs; k++) gsum = mt_round_to(gsum + mt_round_to(xt[k] * ev[k], j->t), j->t);
                sum = mt_round_to(sum + mt_round_to(sc[g] * gsum, j->t), j->t);
            }
            j->y[t * N + r] = l->bias ? mt_round_to(sum + mt_round_to(bias, j->t), j->t) : sum;
        }
    }
}

void mt_linear_forward_mlx(const mt_linear *l, const float *x, size_t T, float *y, mt_dtype t, float *work,
                           mt_pool *pool) {
    job_t j = {l, x, y, T, t, work, mt_cpu_level()};
    if (l->quantized && l->mode != MT_QMODE_AFFINE) {
        mt_pool_for(pool, l->out, 16, run_fp, &j);
        return;
    }
    mt_pool_for(pool, (l->out + R - 1) / R, 1, run_tiles, &j);
}
