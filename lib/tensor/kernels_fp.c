/* kernels_fp.c - matrix-vector kernels for MLX's fp quantization modes
 * (mxfp4, nvfp4, mxfp8) on the portable, AVX2 and AVX-512 paths.
 *
 * The codes are values, not integers: fp4 E2M1 (a nibble: sign, 2 exponent
 * bits, 1 mantissa bit: +-{0, 0.5, 1, 1.5, 2, 3, 4, 6}) or fp8 E4M3 (a byte,
 * decoded as mlx does: 0x7f/0xff are NaN); every group of g elements (32, nvfp4
 * 16) shares one scale byte (E8M0 = 2^(b-127), 0 -> 2^-127, 0xff -> inf;
 * nvfp4: E4M3).  There are no biases.  A row is
 *   y = sum_g s_g * sum_i x_i * e_i
 * (mlx's fp_qmm_t); the SIMD kernels compute the same sum reassociated.
 *
 * 4-bit codes use the nibble order of mt_kq_prep (x permuted within blocks of
 * 32 (AVX-512) or 16 (AVX2) elements: even elements, then odd ones), so a
 * byte's low nibble meets the block's first half of x and its high nibble the
 * second half.  AVX-512: E2M1 codes become values by vpermps lookup in the
 * 16-entry table, once per row and block for up to 8 tokens; rows in pairs, as
 * the affine 4-bit kernel of kernels_q.c.  E4M3 bytes decode through float16: the
 * magnitude bits shifted left by 7 are the fp16 of value/256 (subnormals
 * included), converted by vcvtph2ps.  AVX2: twice the E2M1 values as bytes by
 * one pshufb per 32 codes (the scale halved), a group's values decoded once for
 * up to 8 tokens.  Rows with a scale that is inf/NaN or >= 2^97 are computed
 * again in mlx's order (fp_rows_c), so such rows give mlx's infinities and NaNs.
 * ref: ml-explore/mlx mlx/backend/cpu/quantized.cpp (fp_qmm_t, dequantize_scale),
 *      mlx/backend/cpu/unary_ops.h (FromFP8). */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "core/cpu.h"
#include "tensor/quant.h"
#include "tensor/simd_sum.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx2")))
#define SCHUNK 256 /* groups per chunk of x (the chunk stays in L1 over a block of rows) */
#define QPF_AHEAD 8192 /* bytes of codes prefetched ahead, as kernels_q.c */

static const float fp4_lut[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                                  -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

/* Elements per chunk of x: 1 token 8192 (32 KiB), 2-4 tokens 2048, more 1024. */
static size_t chunk_elems(size_t T) { return T == 1 ? 8192 : T <= 4 ? 2048 : 1024; }

int mt_kfp_perm_block(int level, const mt_qmat *m) {
    if (m->bits != 4) return 0;
    if (level == MT_CPU_AVX512 && m->K % 32 == 0) return 32;
    if (level >= MT_CPU_AVX2 && m->K % 16 == 0) return 16;
    return 0;
}

/* ---- portable ---------------------------------------------------------- */

/* Where element k's x is in the prepared row: blocks of blk (0: natural order)
 * hold the block's even elements, then its odd ones. */
static inline size_t xpos(size_t k, size_t blk) {
    if (!blk) return k;
    size_t i = k % blk;
    return k - i + (i & 1 ? blk / 2 : 0) + i / 2;
}

/* Plain C, in mlx's order: per group s * (the group's sum of x * e).  Also
 * the SIMD paths' rule for rows with a non-finite scale (an inf scale times a
 * group sum gives +-inf; scaled lane by lane it would give NaN where a lane's
 * partial sum is 0).  blk: the x permutation (mt_kfp_perm_block). */
static void fp_rows_c(const mt_qmat *m, const float *xp, size_t T, float *y, size_t ldy, size_t r0, size_t r1,
                      size_t blk) {
    size_t gs = (size_t)m->gs;
    float e[32];
    for (size_t r = r0; r < r1; r++) {
        const unsigned char *w = m->w + r * m->row_bytes, *sp = m->s + r * m->ng;
        for (size_t t = 0; t < T; t++) y[t * ldy + r] = 0.f;
        for (size_t g = 0; g < m->ng; g++) {
            for (size_t i = 0; i < gs; i++) {
                size_t k = g * gs + i;
                e[i] = m->bits == 8 ? mt_fp8_e4m3_to_f32(w[k]) : fp4_lut[(w[k >> 1] >> ((k & 1) * 4)) & 15];
            }
            float s = mt_qfp_scale(sp[g], m->mode);
            for (size_t t = 0; t < T; t++) {
                const float *xt = xp + t * m->K;
                float d = 0.f;
                for (size_t i = 0; i < gs; i++) d += xt[xpos(g * gs + i, blk)] * e[i];
                y[t * ldy + r] += s * d;
            }
        }
    }
}

/* 1 when row r has a scale byte that decodes to inf or NaN (E8M0 0xff; E4M3
 * 0x7f, 0xff) or to 2^97 or more (E8M0 >= 0xe0: partial sums scaled lane by
 * lane may overflow where mlx's group sums do not, or the other way). */
static int row_special(const mt_qmat *m, size_t r) {
    const unsigned char *sp = m->s + r * m->ng;
    int any = 0;
    if (m->mode != MT_QMODE_NVFP4)
        for (size_t g = 0; g < m->ng; g++) any |= sp[g] >= 0xe0;
    else
        for (size_t g = 0; g < m->ng; g++) any |= (sp[g] & 0x7f) == 0x7f;
    return any;
}

/* The SIMD paths' rows with non-finite scales again, in mlx's order. */
static void fix_special_rows(const mt_qmat *m, const float *xp, size_t T, float *y, size_t ldy, size_t r0, size_t r1,
                             size_t blk) {
    for (size_t r = r0; r < r1; r++)
        if (row_special(m, r)) fp_rows_c(m, xp, T, y, ldy, r, r + 1, blk);
}

/* ---- AVX2 -------------------------------------------------------------- */

/* 8 E4M3 bytes as floats (mlx's decoding; NaN for 0x7f / 0xff). */
static inline __m256 e4m3x8_avx2(const unsigned char *p) {
    __m128i h = _mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)(const void *)p));
    h = _mm_and_si128(_mm_slli_epi16(h, 7), _mm_set1_epi16((short)0xBF80));
    __m256 f = _mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_set1_ps(256.0f));
    __m128i nan16 = _mm_cmpeq_epi16(_mm_and_si128(h, _mm_set1_epi16(0x3F80)), _mm_set1_epi16(0x3F80));
    return _mm256_blendv_ps(f, _mm256_set1_ps(NAN), _mm256_castsi256_ps(_mm256_cvtepi16_epi32(nan16)));
}

/* E2M1 codes in the low 4 bits of each lane (higher bits ignored) as floats. */
static inline __m256 e2m1x8_avx2(__m256i v, __m256 lut8) {
    __m256 mag = _mm256_permutevar8x32_ps(lut8, v);   /* the index's low 3 bits */
    __m256i sign = _mm256_and_si256(_mm256_slli_epi32(v, 28), _mm256_set1_epi32((int)0x80000000u));
    return _mm256_xor_ps(mag, _mm256_castsi256_ps(sign));
}

/* n scale bytes as floats into dst (8 at a time, the rest one by one). */
static void scales_avx2(float *dst, const unsigned char *p, size_t n, int mode) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 f;
        if (mode == MT_QMODE_NVFP4) {
            f = e4m3x8_avx2(p + i);
        } else {   /* E8M0: the byte is the float exponent; 0 -> 2^-127 */
            __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(p + i)));
            __m256i z = _mm256_cmpeq_epi32(v, _mm256_setzero_si256());
            f = _mm256_castsi256_ps(_mm256_blendv_epi8(_mm256_slli_epi32(v, 23), _mm256_set1_epi32(0x00400000), z));
        }
        _mm256_storeu_ps(dst + i, f);
    }
    for (; i < n; i++) dst[i] = mt_qfp_scale(p[i], mode);
}

/* One row, groups [0, n) of a chunk, tn (1..8) tokens: d[t] = sum_g s_g * dot(x_t,g, e_g).
 * A group's values (gs / 8 vectors) are decoded once for the tokens. */
static inline __attribute__((always_inline)) void fp_chunk_avx2(const mt_qmat *m, const unsigned char *w,
                                                               const float *sf, const float *xp, size_t n, float *d,
                                                               const int GS, const int BITS, const size_t tn) {
    const __m128i lut2 = _mm_setr_epi8(0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12);
    const __m128i m15 = _mm_set1_epi8(15);
    const size_t gs = (size_t)GS, nv = gs / 8;
    __m256 acc[8], e[4];
    for (size_t t = 0; t < 8; t++) acc[t] = _mm256_setzero_ps();
    for (size_t g = 0; g < n; g++) {
        if ((g * gs * BITS / 8) % 64 == 0) _mm_prefetch((const char *)w + g * gs * BITS / 8 + QPF_AHEAD, _MM_HINT_T0);
        if (BITS == 4) {   /* per 16 elements: the low nibbles meet x's first 8 slots, the high ones the next 8 */
            const unsigned char *wg = w + g * gs / 2;
            for (size_t j = 0; j < gs; j += 16) {   /* twice the values, as bytes, by one pshufb */
                __m128i v = _mm_loadl_epi64((const __m128i *)(const void *)(wg + j / 2));
                __m128i q = _mm_unpacklo_epi64(_mm_and_si128(v, m15), _mm_and_si128(_mm_srli_epi16(v, 4), m15));
                q = _mm_shuffle_epi8(lut2, q);
                e[j / 8] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
                e[j / 8 + 1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q, 8)));
            }
        } else {
            for (size_t j = 0; j < nv; j++) e[j] = e4m3x8_avx2(w + g * gs + 8 * j);
        }
        /* fp4: the values were doubled; halving the scale is exact (a power of two, or E4M3 x 0.5) */
        __m256 s = _mm256_set1_ps(BITS == 4 ? sf[g] * 0.5f : sf[g]);
        for (size_t t = 0; t < tn; t++) {
            const float *xg = xp + t * m->K + g * gs;
            __m256 a = _mm256_mul_ps(e[0], _mm256_loadu_ps(xg));
            for (size_t j = 1; j < nv; j++) a = _mm256_fmadd_ps(e[j], _mm256_loadu_ps(xg + 8 * j), a);
            acc[t] = _mm256_fmadd_ps(a, s, acc[t]);
        }
    }
    for (size_t t = 0; t < tn; t++) d[t] = mt_hsum8(acc[t]);
}

static void fp_rows_avx2(const mt_qmat *m, const float *xp, size_t T, float *y, size_t ldy, size_t r0, size_t r1) {
    size_t gs = (size_t)m->gs, gb = gs * (size_t)m->bits / 8;
    size_t cg = chunk_elems(T) / gs;
    if (cg > SCHUNK) cg = SCHUNK;
    float d[8], sf[SCHUNK];
    for (size_t c = 0; c < m->ng; c += cg) {
        size_t n = m->ng - c < cg ? m->ng - c : cg;
        for (size_t r = r0; r < r1; r++) {
            const unsigned char *w = m->w + r * m->row_bytes + c * gb, *sp = m->s + r * m->ng + c;
            scales_avx2(sf, sp, n, m->mode);
            for (size_t t = 0; t < T; t += 8) {
                size_t tn = T - t < 8 ? T - t : 8;
                const float *xt = xp + t * m->K + c * gs;
#define FPC(G, B)                                                          \
    switch (tn) {                                                          \
    case 1: fp_chunk_avx2(m, w, sf, xt, n, d, G, B, 1); break;             \
    case 2: fp_chunk_avx2(m, w, sf, xt, n, d, G, B, 2); break;             \
    case 3: fp_chunk_avx2(m, w, sf, xt, n, d, G, B, 3); break;             \
    case 4: fp_chunk_avx2(m, w, sf, xt, n, d, G, B, 4); break;             \
    default: fp_chunk_avx2(m, w, sf, xt, n, d, G, B, tn); break;           \
    }
                if (m->mode == MT_QMODE_MXFP4) FPC(32, 4)
                else if (m->mode == MT_QMODE_NVFP4) FPC(16, 4)
                else FPC(32, 8)
#undef FPC
                for (size_t u = 0; u < tn; u++) {
                    float *yr = y + (t + u) * ldy;
                    yr[r] = c ? yr[r] + d[u] : d[u];
                }
            }
        }
    }
}

/* ---- AVX-512 ----------------------------------------------------------- */

/* 16 E4M3 bytes as floats (NaN for 0x7f / 0xff, as mlx). */
AVX512 static inline __m512 e4m3x16_512(const unsigned char *p) {
    __m256i h = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)p));
    h = _mm256_and_si256(_mm256_slli_epi16(h, 7), _mm256_set1_epi16((short)0xBF80));
    __m512 f = _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(256.0f));
    __mmask16 nan = _mm256_cmpeq_epi16_mask(_mm256_and_si256(h, _mm256_set1_epi16(0x3F80)), _mm256_set1_epi16(0x3F80));
    return _mm512_mask_mov_ps(f, nan, _mm512_set1_ps(NAN));
}

/* n (<= 16) scale bytes as floats into dst. */
AVX512 static inline void scales16_512(float *dst, const unsigned char *p, size_t n, int mode) {
    __mmask16 k = (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1);
    __m128i b = _mm_maskz_loadu_epi8(k, p);
    __m512 f;
    if (mode == MT_QMODE_NVFP4) {
        __m256i h = _mm256_cvtepi8_epi16(b);
        h = _mm256_and_si256(_mm256_slli_epi16(h, 7), _mm256_set1_epi16((short)0xBF80));
        f = _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_set1_ps(256.0f));
        __mmask16 nan = _mm256_cmpeq_epi16_mask(_mm256_and_si256(h, _mm256_set1_epi16(0x3F80)),
                                                _mm256_set1_epi16(0x3F80));
        f = _mm512_mask_mov_ps(f, nan, _mm512_set1_ps(NAN));
    } else {   /* E8M0: the byte is the float exponent; 0 -> 2^-127 */
        __m512i v = _mm512_cvtepu8_epi32(b);
        __mmask16 z = _mm512_cmpeq_epi32_mask(v, _mm512_setzero_si512());
        v = _mm512_mask_mov_epi32(_mm512_slli_epi32(v, 23), z, _mm512_set1_epi32(0x00400000));
        f = _mm512_castsi512_ps(v);
    }
    _mm512_mask_storeu_ps(dst, k, f);
}

/* The 8 horizontal sums of a[0..7]: [sum a0, ..., sum a7]. */
AVX512 static inline void hsum8_store(float *d, const __m512 a[8], size_t T) {
    for (size_t t = 0; t < T; t++) d[t] = _mm512_reduce_add_ps(a[t]);
}

/* Two rows (codes w and w + rb; float scales sf and sf + SCHUNK) x T (1..8)
 * tokens over the n groups of one chunk: d[t] and d[8 + t] = sum over the
 * chunk's groups of s_g * dot(x_t,g, e_g).  Per 32 elements a row decodes two
 * vectors of element values (lo: the block's first 16 x slots, hi: the last
 * 16), shared by the tokens; the scale multiplies each token's block sum (as
 * mlx, so an infinite scale gives +-inf, not the NaN of inf * 0).  nvfp4: the
 * block's lanes 0-7 belong to one group and 8-15 to the next. */
AVX512 static inline __attribute__((always_inline)) void fp2_512(const unsigned char *w, size_t rb, const float *sf,
                                                                 const float *xp, size_t K, size_t n, float *d,
                                                                 const int mode, const size_t T) {
    const __m512 lut = _mm512_loadu_ps(fp4_lut);
    const size_t gs = mode == MT_QMODE_NVFP4 ? 16 : 32, bits = mode == MT_QMODE_MXFP8 ? 8 : 4;
    const size_t ne = n * gs;   /* elements of the chunk (a multiple of 32) */
    __m512 a0[8], a1[8];
    for (size_t t = 0; t < 8; t++) a0[t] = a1[t] = _mm512_setzero_ps();
    for (size_t j = 0; j < ne; j += 32) {
        const unsigned char *wj = w + j * bits / 8;
        if ((j * bits / 8) % 64 == 0) {   /* one line of each row's codes ahead (a single stream is not enough) */
            _mm_prefetch((const char *)wj + QPF_AHEAD, _MM_HINT_T0);
            _mm_prefetch((const char *)wj + rb + QPF_AHEAD, _MM_HINT_T0);
        }
        __m512 l0, h0, l1, h1, s0, s1;
        if (mode == MT_QMODE_MXFP8) {
            l0 = e4m3x16_512(wj);
            h0 = e4m3x16_512(wj + 16);
            l1 = e4m3x16_512(wj + rb);
            h1 = e4m3x16_512(wj + rb + 16);
        } else {
            __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)wj));
            __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)(wj + rb)));
            l0 = _mm512_permutexvar_ps(v0, lut);
            h0 = _mm512_permutexvar_ps(_mm512_srli_epi32(v0, 4), lut);
            l1 = _mm512_permutexvar_ps(v1, lut);
            h1 = _mm512_permutexvar_ps(_mm512_srli_epi32(v1, 4), lut);
        }
        if (mode == MT_QMODE_NVFP4) {
            size_t g = j / 16;
            const __m512i pair = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
            s0 = _mm512_permutexvar_ps(pair, _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd((const double *)(const void *)(sf + g)))));
            s1 = _mm512_permutexvar_ps(pair, _mm512_castps128_ps512(
                                                 _mm_castpd_ps(_mm_load_sd((const double *)(const void *)(sf + SCHUNK + g)))));
        } else {
            s0 = _mm512_set1_ps(sf[j / 32]);
            s1 = _mm512_set1_ps(sf[SCHUNK + j / 32]);
        }
        for (size_t t = 0; t < T; t++) {
            __m512 xl = _mm512_loadu_ps(xp + t * K + j), xh = _mm512_loadu_ps(xp + t * K + j + 16);
            a0[t] = _mm512_fmadd_ps(_mm512_fmadd_ps(h0, xh, _mm512_mul_ps(l0, xl)), s0, a0[t]);
            a1[t] = _mm512_fmadd_ps(_mm512_fmadd_ps(h1, xh, _mm512_mul_ps(l1, xl)), s1, a1[t]);
        }
    }
    hsum8_store(d, a0, T);
    hsum8_store(d + 8, a1, T);
}

AVX512 static inline __attribute__((always_inline)) void fp2_tn_512(const unsigned char *w, size_t rb, const float *sf,
                                                                    const float *xp, size_t K, size_t n, float *d,
                                                                    const int mode, size_t tn) {
    switch (tn) {
    case 1: fp2_512(w, rb, sf, xp, K, n, d, mode, 1); break;
    case 2: fp2_512(w, rb, sf, xp, K, n, d, mode, 2); break;
    case 3: fp2_512(w, rb, sf, xp, K, n, d, mode, 3); break;
    case 4: fp2_512(w, rb, sf, xp, K, n, d, mode, 4); break;
    case 5: fp2_512(w, rb, sf, xp, K, n, d, mode, 5); break;
    case 6: fp2_512(w, rb, sf, xp, K, n, d, mode, 6); break;
    case 7: fp2_512(w, rb, sf, xp, K, n, d, mode, 7); break;
    default: fp2_512(w, rb, sf, xp, K, n, d, mode, 8); break;
    }
}

/* Rows [r0, r1) x T tokens; K % 32 == 0. */
AVX512 static void fp_rows_512(const mt_qmat *m, const float *xp, size_t T, float *y, size_t ldy, size_t r0,
                               size_t r1) {
    size_t gs = (size_t)m->gs, gb = gs * (size_t)m->bits / 8;
    size_t cg = chunk_elems(T) / gs;
    if (cg > SCHUNK) cg = SCHUNK;
    float sf[2 * SCHUNK], d[16];
    for (size_t c = 0; c < m->ng; c += cg) {
        size_t n = m->ng - c < cg ? m->ng - c : cg;   /* n * gs is a multiple of 32 (K and the chunk are) */
        for (size_t r = r0; r < r1; r += 2) {
            size_t r2 = r + 1 < r1 ? r + 1 : r; /* an odd last row runs twice */
            for (size_t g0 = 0; g0 < n; g0 += 16) {
                scales16_512(sf + g0, m->s + r * m->ng + c + g0, n - g0, m->mode);
                scales16_512(sf + SCHUNK + g0, m->s + r2 * m->ng + c + g0, n - g0, m->mode);
            }
            const unsigned char *w = m->w + r * m->row_bytes + c * gb;
            size_t rb = (r2 - r) * m->row_bytes;
            for (size_t t = 0; t < T; t += 8) {
                size_t tn = T - t < 8 ? T - t : 8;
                const float *xt = xp + t * m->K + c * gs;
                if (m->mode == MT_QMODE_MXFP4) fp2_tn_512(w, rb, sf, xt, m->K, n, d, MT_QMODE_MXFP4, tn);
                else if (m->mode == MT_QMODE_NVFP4) fp2_tn_512(w, rb, sf, xt, m->K, n, d, MT_QMODE_NVFP4, tn);
                else fp2_tn_512(w, rb, sf, xt, m->K, n, d, MT_QMODE_MXFP8, tn);
                for (size_t u = 0; u < tn; u++) {
                    float *yr = y + (t + u) * ldy;
                    yr[r] = c ? yr[r] + d[u] : d[u];
                    if (r2 != r) yr[r2] = c ? yr[r2] + d[8 + u] : d[8 + u];
                }
            }
        }
    }
}

/* ---- one row as float32 (the tiles of the prefill path) ---------------- */

AVX512 static void fp_row_512(const mt_qmat *m, size_t r, float *out) {
    const unsigned char *w = m->w + r * m->row_bytes, *sp = m->s + r * m->ng;
    const __m512 lut = _mm512_loadu_ps(fp4_lut);
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m512i sh = _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
    size_t gs = (size_t)m->gs;
    for (size_t g = 0; g < m->ng; g++) {
        __m512 s = _mm512_set1_ps(mt_qfp_scale(sp[g], m->mode));
        for (size_t k = g * gs; k < (g + 1) * gs; k += 16) {
            __m512 e;
            if (m->bits == 8) {
                e = e4m3x16_512(w + k);
            } else {   /* 8 bytes: each byte twice, then its low / high nibble */
                __m128i b = _mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)(const void *)(w + k / 2)), dup);
                e = _mm512_permutexvar_ps(_mm512_srlv_epi32(_mm512_cvtepu8_epi32(b), sh), lut);
            }
            _mm512_storeu_ps(out + k, _mm512_mul_ps(e, s));
        }
    }
}

static void fp_row_avx2(const mt_qmat *m, size_t r, float *out) {
    const unsigned char *w = m->w + r * m->row_bytes, *sp = m->s + r * m->ng;
    const __m256 lut8 = _mm256_setr_ps(0.f, 0.5f, 1.f, 1.5f, 2.f, 3.f, 4.f, 6.f);
    const __m256i sh = _mm256_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4);
    size_t gs = (size_t)m->gs;
    for (size_t g = 0; g < m->ng; g++) {
        __m256 s = _mm256_set1_ps(mt_qfp_scale(sp[g], m->mode));
        for (size_t k = g * gs; k < (g + 1) * gs; k += 8) {
            __m256 e;
            if (m->bits == 8) {
                e = e4m3x8_avx2(w + k);
            } else {   /* 4 bytes: each byte twice, then its low / high nibble */
                uint32_t word;
                memcpy(&word, w + k / 2, 4);
                __m128i b = _mm_shuffle_epi8(_mm_cvtsi32_si128((int)word),
                                             _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, -1, -1, -1, -1, -1, -1, -1, -1));
                e = e2m1x8_avx2(_mm256_srlv_epi32(_mm256_cvtepu8_epi32(b), sh), lut8);
            }
            _mm256_storeu_ps(out + k, _mm256_mul_ps(e, s));
        }
    }
}

void mt_kfp_row_f32(int level, const mt_qmat *m, size_t r, float *out) {
    if (level == MT_CPU_AVX512) fp_row_512(m, r, out);
    else if (level == MT_CPU_AVX2) fp_row_avx2(m, r, out);
    else mt_qfp_row_f32(out, m->w + r * m->row_bytes, m->s + r * m->ng, m->mode, m->K, 0);
}

void mt_kfp_rows(int level, const mt_qmat *m, const float *xp, size_t T, float *y, size_t ldy, size_t r0, size_t r1) {
    size_t blk = (size_t)mt_kfp_perm_block(level, m);
    if (level == MT_CPU_AVX512 && m->K % 32 == 0) fp_rows_512(m, xp, T, y, ldy, r0, r1);
    else if (level >= MT_CPU_AVX2 && m->K % 16 == 0) fp_rows_avx2(m, xp, T, y, ldy, r0, r1);
    else {
        fp_rows_c(m, xp, T, y, ldy, r0, r1, blk);
        return;
    }
    fix_special_rows(m, xp, T, y, ldy, r0, r1, blk);
}
