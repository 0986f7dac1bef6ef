/* kernels_kvq.c - attention over a quantized KV cache, straight from the
 * packed rows (no dequantized copy of the cache):
 *   affine (mlx-lm's QuantizedKVCache, quantized_scaled_dot_product_attention):
 *     per group g of a key row  s_j += scale_g * sum_i (q_i*sc) w_i + bias_g * sum_i (q_i*sc)
 *     (q multiplied by the attention scale first, as mlx-lm does), softmax in float32, and per
 *     value row  out_i += (p_j*scale_g) w_i, with p_j*bias_g summed per group and added once;
 *   turbo (rotation + Lloyd-Max codebook): the query heads are rotated once, s_j =
 *     scale * norm_j * sum_i (Hq)_i c[idx_i]; values accumulate p_j*norm_j*c[idx] in the
 *     rotated domain and the sum is rotated back once.
 * Every packed row is widened to floats once (affine 4- and 8-bit with SIMD; turbo codes
 * through the codebook with vpermps), shared by the query heads of a pass, then float dot /
 * axpy.  Portable, AVX2 and AVX-512 paths. */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "core/cpu.h"
#include "tensor/quant.h"
#include "tensor/simd_sum.h"
#include "tensor/simd_vec.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx2")))
#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define INL inline __attribute__((always_inline))

#define HMAX 8      /* query heads per pass */
#define KVQ_PF 16   /* rows prefetched ahead: a head's rows are strided by the other heads' (memory-bound) */

/* prefetch packed row j + KVQ_PF of a span (words, then its scales and biases) */
static INL void kvq_prefetch(const uint32_t *w, const float *sc, const float *bi, size_t j, size_t n, size_t wstride,
                             size_t sstride, size_t rowbytes) {
    if (j + KVQ_PF >= n) return;
    const char *pw = (const char *)(w + (j + KVQ_PF) * wstride);
    for (size_t o = 0; o < rowbytes; o += 64) _mm_prefetch(pw + o, _MM_HINT_T0);
    _mm_prefetch(pw + rowbytes - 1, _MM_HINT_T0);   /* rows need not start on a cache line */
    _mm_prefetch((const char *)(sc + (j + KVQ_PF) * sstride), _MM_HINT_T0);
    if (bi) _mm_prefetch((const char *)(bi + (j + KVQ_PF) * sstride), _MM_HINT_T0);
}
#define HD_MAX 1024 /* head_dim bound (checked at model load) */

/* ---- the randomized Hadamard transform ---------------------------------- */

/* head_dim as descending power-of-two blocks (96 = 64 + 32); each block an
 * in-place fast Walsh-Hadamard transform scaled by 1/sqrt(block) */
static void fwht_blocks(float *x, size_t hd) {
    size_t off = 0;
    while (off < hd) {
        size_t b = 1;
        while (b * 2 <= hd - off) b *= 2;
        float *y = x + off;
        for (size_t len = 1; len < b; len *= 2)
            for (size_t i = 0; i < b; i += 2 * len)
                for (size_t j = i; j < i + len; j++) {
                    float u = y[j], v = y[j + len];
                    y[j] = u + v;
                    y[j + len] = u - v;
                }
        float r = 1.0f / sqrtf((float)b);
        for (size_t i = 0; i < b; i++) y[i] *= r;
        off += b;
    }
}

void mt_kvt_rotate(float *x, const float *sign, size_t hd) {
    for (size_t i = 0; i < hd; i++) x[i] *= sign[i];
    fwht_blocks(x, hd);
}

void mt_kvt_unrotate(float *x, const float *sign, size_t hd) {
    fwht_blocks(x, hd);   /* the normalized transform is its own inverse */
    for (size_t i = 0; i < hd; i++) x[i] *= sign[i];
}

/* ---- helpers ----------------------------------------------------------------- */

/* Soft-cap (cap > 0), exp(s - max) in place; returns 1 / the sum (with an attention
 * sink, sink != NULL: max over the scores and *sink, and exp(*sink - max) in the sum). */
static float exp_scores(int level, float *s, size_t n, float cap, const float *sink) {
    if (cap > 0)
        for (size_t j = 0; j < n; j++) s[j] = tanhf(s[j] / cap) * cap;
    float m = mt_k_max(level, s, n);
    if (!sink) return 1.0f / mt_k_exp_sum(level, s, m, n);
    if (*sink > m) m = *sink;
    float sum = mt_k_exp_sum(level, s, m, n);
    return 1.0f / (sum + expf(*sink - m));
}

/* the codes of packed row w as bytes: 8-bit rows in place, others unpacked into buf */
static INL const uint8_t *row_codes(const uint32_t *w, int bits, size_t hd, uint8_t *buf) {
    if (bits == 8) return (const uint8_t *)w;
    mt_quant_unpack_row(buf, w, hd, bits);
    return buf;
}

/* ---- a packed row widened to floats once per row, shared by every query head of the
 * pass (affine: the codes' values; turbo, tab != NULL: the codebook's), then float dot /
 * axpy (tensor/simd_vec.h) ---- */

static INL void unpack_f_c(float *wf, const uint32_t *w, int bits, size_t hd, const float *tab, uint8_t *buf) {
    const uint8_t *c = row_codes(w, bits, hd, buf);
    if (tab) for (size_t i = 0; i < hd; i++) wf[i] = tab[c[i]];
    else for (size_t i = 0; i < hd; i++) wf[i] = (float)c[i];
}

/* 16 codes of a 4-bit row (8 bytes, low nibble first) as 16 bytes in order */
AVX2 static INL __m128i nib16(const uint8_t *b) {
    __m128i v = _mm_loadl_epi64((const __m128i *)b), m = _mm_set1_epi8(15);
    __m128i lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
    return _mm_unpacklo_epi8(lo, hi);
}

/* 8 codes (bytes) as floats: their values, or tab[code] (tab: 16 floats) */
AVX2 static INL __m256 ld8c(const uint8_t *c, const float *tab) {
    __m256i i = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)c));
    if (!tab) return _mm256_cvtepi32_ps(i);
    __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(tab), i);
    __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(tab + 8), i);
    return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(i, 28)));   /* bit 3 */
}

AVX2 static INL void unpack_f_avx2(float *wf, const uint32_t *w, int bits, size_t hd, const float *tab, uint8_t *buf) {
    const uint8_t *b = (const uint8_t *)w;
    size_t i = 0;
    if (tab) {   /* turbo: codes to bytes, then through the codebook */
        const uint8_t *c = row_codes(w, bits, hd, buf);
        for (; i + 8 <= hd; i += 8) _mm256_storeu_ps(wf + i, ld8c(c + i, tab));
        for (; i < hd; i++) wf[i] = tab[c[i]];
        return;
    }
    if (bits == 8)
        for (; i + 8 <= hd; i += 8) _mm256_storeu_ps(wf + i, ld8c(b + i, NULL));
    else if (bits == 4)
        for (; i + 16 <= hd; i += 16) {
            __m128i c = nib16(b + i / 2);
            _mm256_storeu_ps(wf + i, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(c)));
            _mm256_storeu_ps(wf + i + 8, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(c, 8))));
        }
    if (i < hd) unpack_f_c(wf, w, bits, hd, NULL, buf);   /* other widths, or a tail: all of it, simply */
}

AVX512 static INL void unpack_f_512(float *wf, const uint32_t *w, int bits, size_t hd, const float *tab, uint8_t *buf) {
    const uint8_t *b = (const uint8_t *)w;
    size_t i = 0;
    if (tab) {
        const uint8_t *c = row_codes(w, bits, hd, buf);
        __m512 t = _mm512_loadu_ps(tab);
        for (; i + 16 <= hd; i += 16)
            _mm512_storeu_ps(wf + i, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c + i))), t));
        for (; i < hd; i++) wf[i] = tab[c[i]];
        return;
    }
    if (bits == 8)
        for (; i + 16 <= hd; i += 16)
            _mm512_storeu_ps(wf + i, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + i)))));
    else if (bits == 4)
        for (; i + 16 <= hd; i += 16) _mm512_storeu_ps(wf + i, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(nib16(b + i / 2))));
    if (i < hd) unpack_f_c(wf, w, bits, hd, NULL, buf);
}

/* ---- the kernels, one instance per path -------------------------------------- */

/* affine: H (<= HMAX) heads q[H][hd] over n packed rows; s: scratch [H * n] */
#define KVQ_AFFINE(SUF, ATTR, UNPACK, DOTF, AXPYF, LEVEL)                                                             \
    ATTR static void kvq_affine_##SUF(const float *q, size_t H, const mt_kvq_span *sp, size_t n, size_t hd,           \
                                      float scale, float cap, const float *sk, float *out, float *s) {                 \
        size_t G = (size_t)sp->group, ng = hd / G;                                                                    \
        float qs[HMAX * HD_MAX], qsum[HMAX * (HD_MAX / 32)], bsum[HMAX * (HD_MAX / 32)], r[HMAX], wf[HD_MAX];         \
        uint8_t buf[HD_MAX];                                                                                          \
        for (size_t h = 0; h < H; h++)                                                                                \
            for (size_t g = 0; g < ng; g++) {                                                                         \
                float t = 0.f;                                                                                        \
                for (size_t i = g * G; i < (g + 1) * G; i++) t += (qs[h * hd + i] = q[h * hd + i] * scale);            \
                qsum[h * ng + g] = t;                                                                                 \
            }                                                                                                         \
        size_t rowbytes = hd * (size_t)sp->bits / 8;                                                                  \
        for (size_t j = 0; j < n; j++) {                                                                              \
            kvq_prefetch(sp->kw, sp->ks, sp->kb, j, n, sp->wstride, sp->sstride, rowbytes);                           \
            UNPACK(wf, sp->kw + j * sp->wstride, sp->bits, hd, NULL, buf);                                            \
            const float *sc = sp->ks + j * sp->sstride, *bi = sp->kb + j * sp->sstride;                               \
            for (size_t h = 0; h < H; h++) {                                                                          \
                float acc = 0.f;                                                                                      \
                for (size_t g = 0; g < ng; g++)                                                                       \
                    acc += sc[g] * DOTF(qs + h * hd + g * G, wf + g * G, G) + bi[g] * qsum[h * ng + g];               \
                s[h * n + j] = acc;                                                                                   \
            }                                                                                                         \
        }                                                                                                             \
        for (size_t h = 0; h < H; h++) r[h] = exp_scores(LEVEL, s + h * n, n, cap, sk ? sk + h : NULL);                \
        memset(out, 0, H * hd * sizeof *out);                                                                         \
        memset(bsum, 0, H * ng * sizeof *bsum);                                                                       \
        for (size_t j = 0; j < n; j++) {                                                                              \
            kvq_prefetch(sp->vw, sp->vs, sp->vb, j, n, sp->wstride, sp->sstride, rowbytes);                           \
            UNPACK(wf, sp->vw + j * sp->wstride, sp->bits, hd, NULL, buf);                                            \
            const float *sc = sp->vs + j * sp->sstride, *bi = sp->vb + j * sp->sstride;                               \
            for (size_t h = 0; h < H; h++) {                                                                          \
                float p = s[h * n + j];                                                                               \
                for (size_t g = 0; g < ng; g++) {                                                                     \
                    AXPYF(out + h * hd + g * G, p * sc[g], wf + g * G, G);                                            \
                    bsum[h * ng + g] += p * bi[g];                                                                    \
                }                                                                                                     \
            }                                                                                                         \
        }                                                                                                             \
        for (size_t h = 0; h < H; h++)                                                                                \
            for (size_t i = 0; i < hd; i++) out[h * hd + i] = (out[h * hd + i] + bsum[h * ng + i / G]) * r[h];       \
    }

/* turbo: H heads of rotated queries qr[H][hd]; out in the rotated domain */
#define KVQ_TURBO(SUF, ATTR, UNPACK, DOTF, AXPYF, LEVEL)                                                              \
    ATTR static void kvq_turbo_##SUF(const float *qr, size_t H, const mt_kvq_span *sp, size_t n, size_t hd,           \
                                     float scale, float cap, const float *sk, float *out, float *s) {                  \
        float r[HMAX], wf[HD_MAX];                                                                                    \
        uint8_t buf[HD_MAX];                                                                                          \
        size_t rowbytes = (hd * (size_t)sp->bits + 7) / 8;                                                            \
        for (size_t j = 0; j < n; j++) {                                                                              \
            kvq_prefetch(sp->kw, sp->ks, NULL, j, n, sp->wstride, sp->sstride, rowbytes);                             \
            UNPACK(wf, sp->kw + j * sp->wstride, sp->bits, hd, sp->cb, buf);                                          \
            float nm = sp->ks[j * sp->sstride] * scale;                                                               \
            for (size_t h = 0; h < H; h++) s[h * n + j] = nm * DOTF(qr + h * hd, wf, hd);                             \
        }                                                                                                             \
        for (size_t h = 0; h < H; h++) r[h] = exp_scores(LEVEL, s + h * n, n, cap, sk ? sk + h : NULL);                \
        memset(out, 0, H * hd * sizeof *out);                                                                         \
        for (size_t j = 0; j < n; j++) {                                                                              \
            kvq_prefetch(sp->vw, sp->vs, NULL, j, n, sp->wstride, sp->sstride, rowbytes);                             \
            UNPACK(wf, sp->vw + j * sp->wstride, sp->bits, hd, sp->cb, buf);                                          \
            float nm = sp->vs[j * sp->sstride];                                                                       \
            for (size_t h = 0; h < H; h++) AXPYF(out + h * hd, s[h * n + j] * nm, wf, hd);                            \
        }                                                                                                             \
        for (size_t h = 0; h < H; h++)                                                                                \
            for (size_t i = 0; i < hd; i++) out[h * hd + i] *= r[h];                                                  \
    }

KVQ_AFFINE(c, , unpack_f_c, mt_vdot_c, mt_vaxpy_c, MT_CPU_PORTABLE)
KVQ_AFFINE(avx2, AVX2, unpack_f_avx2, mt_vdot_avx2, mt_vaxpy_avx2, MT_CPU_AVX2)
KVQ_AFFINE(512, AVX512, unpack_f_512, mt_vdot_512, mt_vaxpy_512, MT_CPU_AVX512)
KVQ_TURBO(c, , unpack_f_c, mt_vdot_c, mt_vaxpy_c, MT_CPU_PORTABLE)
KVQ_TURBO(avx2, AVX2, unpack_f_avx2, mt_vdot_avx2, mt_vaxpy_avx2, MT_CPU_AVX2)
KVQ_TURBO(512, AVX512, unpack_f_512, mt_vdot_512, mt_vaxpy_512, MT_CPU_AVX512)
#undef KVQ_AFFINE
#undef KVQ_TURBO

void mt_k_attn_kvq_sinks(int level, const float *q, size_t nh, const mt_kvq_span *sp, size_t n, size_t hd,
                         float scale, float cap, const float *sinks, float *out, float *scratch) {
    if (!n) { memset(out, 0, nh * hd * sizeof *out); return; }
    for (size_t h = 0; h < nh; h += HMAX) {
        size_t H = nh - h < HMAX ? nh - h : HMAX;
        const float *qh = q + h * hd, *sk = sinks ? sinks + h : NULL;
        float *oh = out + h * hd;
        if (sp->cb) {
            float qr[HMAX * HD_MAX];
            for (size_t i = 0; i < H; i++) {
                memcpy(qr + i * hd, qh + i * hd, hd * sizeof *qr);
                mt_kvt_rotate(qr + i * hd, sp->sign, hd);
            }
            if (level == MT_CPU_AVX512) kvq_turbo_512(qr, H, sp, n, hd, scale, cap, sk, oh, scratch);
            else if (level == MT_CPU_AVX2) kvq_turbo_avx2(qr, H, sp, n, hd, scale, cap, sk, oh, scratch);
            else kvq_turbo_c(qr, H, sp, n, hd, scale, cap, sk, oh, scratch);
            for (size_t i = 0; i < H; i++) mt_kvt_unrotate(oh + i * hd, sp->sign, hd);
        } else if (level == MT_CPU_AVX512) kvq_affine_512(qh, H, sp, n, hd, scale, cap, sk, oh, scratch);
        else if (level == MT_CPU_AVX2) kvq_affine_avx2(qh, H, sp, n, hd, scale, cap, sk, oh, scratch);
        else kvq_affine_c(qh, H, sp, n, hd, scale, cap, sk, oh, scratch);
    }
}

void mt_k_attn_kvq(int level, const float *q, size_t nh, const mt_kvq_span *sp, size_t n, size_t hd, float scale,
                   float cap, float *out, float *scratch) {
    mt_k_attn_kvq_sinks(level, q, nh, sp, n, hd, scale, cap, NULL, out, scratch);
}
