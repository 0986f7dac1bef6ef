/* kernels_q.c - quantized (MLX affine) and dense matrix-vector kernels for the
 * portable, AVX2 and AVX-512 paths.
 *
 * Quantized rows are never dequantized to memory: per group g of a row,
 *   y += scale_g * sum_i(x_i * q_i) + bias_g * sum_i(x_i)
 * with q_i converted to float in registers and FMA accumulation.  sum_i(x_i)
 * per group is computed once per input vector (mt_kq_prep).  For 4-bit codes
 * the byte j holds codes 2j (low nibble) and 2j+1 (high nibble); instead of
 * interleaving nibbles, mt_kq_prep permutes x once so a block's low nibbles
 * meet x's even elements and the high nibbles its odd ones.
 *
 * AVX-512, 4 bits: codes become floats by vpermps lookup in a 16-entry table
 * (the index's low 4 bits select, so the low nibble needs no mask).  For one
 * token the table is 0..15 (the form above); for several tokens it holds the
 * group's dequantized weights s_g * k + b_g, made once per group and row and
 * shared by all tokens, so per token only the FMAs remain (rows in pairs,
 * tokens in sets of 8, each x vector loaded once for both rows). */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <string.h>
#include "core/cpu.h"
#include "tensor/quant.h"
#include "tensor/simd512.h"
#include "tensor/simd_sum.h"

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c,avx2")))
#define SCHUNK 256 /* groups converted to float per chunk */
#ifndef QPF_AHEAD
#define QPF_AHEAD 8192 /* bytes of codes prefetched ahead by the one-token kernels (bench: 8 KiB best) */
#endif

/* ---- shared helpers ---------------------------------------------------- */

static void cvt_c(float *dst, const unsigned char *src, mt_dtype t, size_t n) {
    if (t == MT_F32) { memcpy(dst, src, n * 4); return; }
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = t == MT_F16 ? mt_f16_to_f32(h) : mt_bf16_to_f32(h);
    }
}

static void cvt_avx2(float *dst, const unsigned char *src, mt_dtype t, size_t n) {
    if (t == MT_F32) { memcpy(dst, src, n * 4); return; }
    size_t i = 0;
    if (t == MT_F16) {
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * i))));
    } else {
        for (; i + 8 <= n; i += 8) {
            __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + 2 * i)));
            _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
        }
    }
    if (i < n) cvt_c(dst + i, src + 2 * i, t, n - i);
}

/* 4-bit permutation: within blocks of `blk` elements, the first blk/2 slots
 * take the even elements and the rest the odd ones. */
static void perm4(float *xp, const float *x, size_t K, size_t blk) {
    size_t h = blk / 2;
    for (size_t b = 0; b < K; b += blk)
        for (size_t k = 0; k < h; k++) {
            xp[b + k] = x[b + 2 * k];
            xp[b + h + k] = x[b + 2 * k + 1];
        }
}

void mt_k_cvt_f32(int level, float *dst, const unsigned char *src, mt_dtype t, size_t n) {
    if (level == MT_CPU_PORTABLE) cvt_c(dst, src, t, n);
    else cvt_avx2(dst, src, t, n);
}

void mt_kq_prep(int level, const mt_qmat *m, const float *x, float *xp, float *gsum) {
    size_t gs = (size_t)m->gs;
    for (size_t g = 0; g < m->ng; g++) {
        float s = 0.f;
        for (size_t i = 0; i < gs; i++) s += x[g * gs + i];
        gsum[g] = s;
    }
    if (m->mode != MT_QMODE_AFFINE) {
        size_t blk = (size_t)mt_kfp_perm_block(level, m);
        if (blk) perm4(xp, x, m->K, blk);
        else memcpy(xp, x, m->K * sizeof *x);
    } else if (m->bits == 4 && level == MT_CPU_AVX512) perm4(xp, x, m->K, 32);
    else if (m->bits == 4 && level == MT_CPU_AVX2) perm4(xp, x, m->K, 16);
    else memcpy(xp, x, m->K * sizeof *x);
}

/* Groups per chunk of the SIMD row kernels: the chunk's x (1 token: 32 KiB,
 * 2-4 tokens: 8 KiB each, 5-8 tokens: 4 KiB each) stays in L1 while the
 * caller's block of rows runs over it (loops: chunk, row). */
static size_t chunk_groups(const mt_qmat *m, size_t T) {
    size_t cg = (T == 1 ? 8192 : T <= 4 ? 2048 : 1024) / (size_t)m->gs;
    return cg < 1 ? 1 : cg > SCHUNK ? SCHUNK : cg;
}

/* ---- portable ---------------------------------------------------------- */

static void kq_rows_c(const mt_qmat *m, const float *xp, const float *gsum, size_t T, float *y, size_t ldy,
                      size_t r0, size_t r1) {
    size_t gs = (size_t)m->gs, ss = mt_dtype_size(m->sdt), gb = gs * (size_t)m->bits / 8;
    uint8_t codes[128];
    float acc[16];
    for (size_t r = r0; r < r1; r++) {
        const unsigned char *w = m->w + r * m->row_bytes, *sp = m->s + r * m->ng * ss, *bp = m->b + r * m->ng * ss;
        for (size_t t0 = 0; t0 < T; t0 += 16) {
            size_t tn = T - t0 < 16 ? T - t0 : 16;
            for (size_t t = 0; t < tn; t++) acc[t] = 0.f;
            for (size_t g = 0; g < m->ng; g++) {
                float s, b;
                cvt_c(&s, sp + g * ss, m->sdt, 1);
                cvt_c(&b, bp + g * ss, m->sdt, 1);
                mt_quant_unpack_row(codes, (const uint32_t *)(const void *)(w + g * gb), gs, m->bits);
                for (size_t t = 0; t < tn; t++) {
                    const float *xg = xp + (t0 + t) * m->K + g * gs;
                    float d = 0.f;
                    for (size_t i = 0; i < gs; i++) d += xg[i] * (float)codes[i];
                    acc[t] += s * d + b * gsum[(t0 + t) * m->ng + g];
                }
            }
            for (size_t t = 0; t < tn; t++) y[(t0 + t) * ldy + r] = acc[t];
        }
    }
}

/* ---- AVX2 -------------------------------------------------------------- */

/* sum over groups [0, n) of s[g] * dot(x_g, q_g) for one row chunk. */
static float q4_chunk_avx2(const unsigned char *w, const float *sf, const float *xp, size_t n, size_t gs) {
    const __m256i m15 = _mm256_set1_epi32(15);
    __m256 t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps();
    for (size_t g = 0; g < n; g++) {
        const unsigned char *wg = w + g * gs / 2;
        const float *xg = xp + g * gs;
        _mm_prefetch((const char *)wg + QPF_AHEAD, _MM_HINT_T0);
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (size_t j = 0; j < gs; j += 16) {
            __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(wg + j / 2)));
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(v, m15)), _mm256_loadu_ps(xg + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4)), _mm256_loadu_ps(xg + j + 8), a1);
        }
        __m256 s = _mm256_broadcast_ss(sf + g);
        t0 = _mm256_fmadd_ps(a0, s, t0);
        t1 = _mm256_fmadd_ps(a1, s, t1);
    }
    return mt_hsum8(_mm256_add_ps(t0, t1));
}

static float q8_chunk_avx2(const unsigned char *w, const float *sf, const float *xp, size_t n, size_t gs) {
    __m256 t0 = _mm256_setzero_ps(), t1 = _mm256_setzero_ps();
    for (size_t g = 0; g < n; g++) {
        const unsigned char *wg = w + g * gs;
        _mm_prefetch((const char *)wg + QPF_AHEAD, _MM_HINT_T0);
        const float *xg = xp + g * gs;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (size_t j = 0; j < gs; j += 16) {
            __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(wg + j)));
            __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(wg + j + 8)));
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v0), _mm256_loadu_ps(xg + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v1), _mm256_loadu_ps(xg + j + 8), a1);
        }
        __m256 s = _mm256_broadcast_ss(sf + g);
        t0 = _mm256_fmadd_ps(a0, s, t0);
        t1 = _mm256_fmadd_ps(a1, s, t1);
    }
    return mt_hsum8(_mm256_add_ps(t0, t1));
}

/* Other widths: unpack a group's codes to bytes, then the 8-bit loop. */
static float qn_chunk_avx2(const unsigned char *w, const float *sf, const float *xp, size_t n, size_t gs, int bits) {
    uint8_t codes[128];
    size_t gb = gs * (size_t)bits / 8;
    __m256 t0 = _mm256_setzero_ps();
    for (size_t g = 0; g < n; g++) {
        mt_quant_unpack_row(codes, (const uint32_t *)(const void *)(w + g * gb), gs, bits);
        const float *xg = xp + g * gs;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (size_t j = 0; j < gs; j += 16) {
            __m256i v0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(codes + j)));
            __m256i v1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(codes + j + 8)));
            a0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v0), _mm256_loadu_ps(xg + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(v1), _mm256_loadu_ps(xg + j + 8), a1);
        }
        t0 = _mm256_fmadd_ps(_mm256_add_ps(a0, a1), _mm256_broadcast_ss(sf + g), t0);
    }
    return mt_hsum8(t0);
}

static float bias_dot_avx2(const float *bf, const float *gsum, size_t n) {
    __m256 a = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(bf + i), _mm256_loadu_ps(gsum + i), a);
    float s = mt_hsum8(a);
    for (; i < n; i++) s += bf[i] * gsum[i];
    return s;
}

static void kq_rows_avx2(const mt_qmat *m, const float *xp, const float *gsum, size_t T, float *y, size_t ldy,
                         size_t r0, size_t r1) {
    size_t gs = (size_t)m->gs, ss = mt_dtype_size(m->sdt), gb = gs * (size_t)m->bits / 8;
    float sf[SCHUNK], bf[SCHUNK];
    size_t cg = chunk_groups(m, T);
    for (size_t c = 0; c < m->ng; c += cg) {
        size_t n = m->ng - c < cg ? m->ng - c : cg;
        for (size_t r = r0; r < r1; r++) {
            const unsigned char *w = m->w + r * m->row_bytes, *sp = m->s + r * m->ng * ss, *bp = m->b + r * m->ng * ss;
            if (c == 0) for (size_t t = 0; t < T; t++) y[t * ldy + r] = 0.f;
            cvt_avx2(sf, sp + c * ss, m->sdt, n);
            cvt_avx2(bf, bp + c * ss, m->sdt, n);
            for (size_t t = 0; t < T; t++) {
                const float *xt = xp + t * m->K + c * gs;
                float d;
                if (m->bits == 4) d = q4_chunk_avx2(w + c * gb, sf, xt, n, gs);
                else if (m->bits == 8) d = q8_chunk_avx2(w + c * gb, sf, xt, n, gs);
                else d = qn_chunk_avx2(w + c * gb, sf, xt, n, gs, m->bits);
                y[t * ldy + r] += d + bias_dot_avx2(bf, gsum + t * m->ng + c, n);
            }
        }
    }
}

/* ---- AVX-512 ----------------------------------------------------------- */

/* 4-bit codes to float by table lookup: vpermps reads only an index's low 4
 * bits, so a byte's low nibble needs no mask and its high one a shift (one
 * p5 µop each instead of mask + convert on p0). */
#define LUT16() _mm512_setr_ps(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, 9.f, 10.f, 11.f, 12.f, 13.f, 14.f, 15.f)

AVX512 static float q8_chunk_512(const unsigned char *w, const float *sf, const float *xp, size_t n, size_t gs) {
    __m512 t0 = _mm512_setzero_ps(), t1 = _mm512_setzero_ps();
    for (size_t g = 0; g < n; g++) {
        const unsigned char *wg = w + g * gs;
        _mm_prefetch((const char *)wg + QPF_AHEAD, _MM_HINT_T0);
        const float *xg = xp + g * gs;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (size_t j = 0; j < gs; j += 32) {
            __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(wg + j)));
            __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(wg + j + 16)));
            a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v0), _mm512_loadu_ps(xg + j), a0);
            a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v1), _mm512_loadu_ps(xg + j + 16), a1);
        }
        __m512 s = _mm512_set1_ps(sf[g]);
        t0 = _mm512_fmadd_ps(a0, s, t0);
        t1 = _mm512_fmadd_ps(a1, s, t1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(t0, t1));
}

AVX512 static float qn_chunk_512(const unsigned char *w, const float *sf, const float *xp, size_t n, size_t gs,
                                 int bits) {
    uint8_t codes[128];
    size_t gb = gs * (size_t)bits / 8;
    __m512 t0 = _mm512_setzero_ps();
    for (size_t g = 0; g < n; g++) {
        mt_quant_unpack_row(codes, (const uint32_t *)(const void *)(w + g * gb), gs, bits);
        const float *xg = xp + g * gs;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        for (size_t j = 0; j < gs; j += 32) {
            __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(codes + j)));
            __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(codes + j + 16)));
            a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v0), _mm512_loadu_ps(xg + j), a0);
            a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v1), _mm512_loadu_ps(xg + j + 16), a1);
        }
        t0 = _mm512_fmadd_ps(_mm512_add_ps(a0, a1), _mm512_set1_ps(sf[g]), t0);
    }
    return _mm512_reduce_add_ps(t0);
}

AVX512 static void q8_chunk4_512(const unsigned char *w, const float *sf, const float *xp, size_t K, size_t n,
                                 size_t gs, float *d) {
    __m512 t0 = _mm512_setzero_ps(), t1 = t0, t2 = t0, t3 = t0;
    for (size_t g = 0; g < n; g++) {
        const unsigned char *wg = w + g * gs;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t j = 0; j < gs; j += 16) {
            __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(wg + j))));
            const float *xg = xp + g * gs + j;
            a0 = _mm512_fmadd_ps(v, _mm512_loadu_ps(xg), a0);
            a1 = _mm512_fmadd_ps(v, _mm512_loadu_ps(xg + K), a1);
            a2 = _mm512_fmadd_ps(v, _mm512_loadu_ps(xg + 2 * K), a2);
            a3 = _mm512_fmadd_ps(v, _mm512_loadu_ps(xg + 3 * K), a3);
        }
        __m512 s = _mm512_set1_ps(sf[g]);
        t0 = _mm512_fmadd_ps(a0, s, t0);
        t1 = _mm512_fmadd_ps(a1, s, t1);
        t2 = _mm512_fmadd_ps(a2, s, t2);
        t3 = _mm512_fmadd_ps(a3, s, t3);
    }
    d[0] = _mm512_reduce_add_ps(t0);
    d[1] = _mm512_reduce_add_ps(t1);
    d[2] = _mm512_reduce_add_ps(t2);
    d[3] = _mm512_reduce_add_ps(t3);
}

/* One token, one row of 4- or 8-bit codes, groups [0, n) of GS (a multiple
 * of 32, a compile-time constant in each instance):
 *   sum_g s_g * dot(x_g, q_g) + b_g * gsum_g
 * Scales and biases are widened 16 groups at a time, the bias terms summed in
 * lanes beside the products, one horizontal sum per row. */
AVX512 static inline __attribute__((always_inline)) float qrow1_512(const unsigned char *w, const unsigned char *sp,
                                                                    const unsigned char *bp, mt_dtype sdt,
                                                                    const float *xp, const float *gsum, size_t n,
                                                                    const size_t GS, const int BITS) {
    const __m512 lut = LUT16();
    const size_t ss = mt_dtype_size(sdt), GB = GS * (size_t)BITS / 8;
    __m512 t0 = _mm512_setzero_ps(), t1 = t0, tb = t0;
    float sfa[16];
    for (size_t g0 = 0; g0 < n; g0 += 16) {
        size_t m = n - g0 < 16 ? n - g0 : 16;
        __mmask16 k = mt_mask16(m);
        _mm512_storeu_ps(sfa, mt_sb16_512(sp + g0 * ss, sdt, k));
        tb = _mm512_fmadd_ps(mt_sb16_512(bp + g0 * ss, sdt, k), _mm512_maskz_loadu_ps(k, gsum + g0), tb);
        const unsigned char *wg = w + g0 * GB;
        const float *xg = xp + g0 * GS;
        for (size_t g = 0; g < m; g++, wg += GB, xg += GS) {
            if (GB >= 64 || (g % (64 / GB)) == 0) _mm_prefetch((const char *)wg + QPF_AHEAD, _MM_HINT_T0);
            __m512 a0 = _mm512_setzero_ps(), a1 = a0;
            for (size_t j = 0; j < GS; j += 32) {
                if (BITS == 4) {
                    __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(wg + j / 2)));
                    a0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(v, lut), _mm512_loadu_ps(xg + j), a0);
                    a1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), lut),
                                         _mm512_loadu_ps(xg + j + 16), a1);
                } else {
                    __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(wg + j)));
                    __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(wg + j + 16)));
                    a0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v0), _mm512_loadu_ps(xg + j), a0);
                    a1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(v1), _mm512_loadu_ps(xg + j + 16), a1);
                }
            }
            __m512 s = _mm512_set1_ps(sfa[g]);
            t0 = _mm512_fmadd_ps(a0, s, t0);
            t1 = _mm512_fmadd_ps(a1, s, t1);
        }
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(t0, t1), tb));
}

AVX512 static float qrow1_dispatch_512(const mt_qmat *m, size_t r, size_t c, size_t n, const float *xp,
                                       const float *gsum) {
    size_t ss = mt_dtype_size(m->sdt), gs = (size_t)m->gs, gb = gs * (size_t)m->bits / 8;
    const unsigned char *w = m->w + r * m->row_bytes + c * gb, *sp = m->s + (r * m->ng + c) * ss,
                        *bp = m->b + (r * m->ng + c) * ss;
    const float *x = xp + c * gs, *gm = gsum + c;
#define QROW1(G, B) \
    if (gs == G && m->bits == B) return qrow1_512(w, sp, bp, m->sdt, x, gm, n, G, B)
    QROW1(64, 4);
    QROW1(32, 4);
    QROW1(128, 4);
    QROW1(64, 8);
    QROW1(32, 8);
    QROW1(128, 8);
#undef QROW1
    return -1.f; /* not reached: callers check qrow1_ok */
}

static int qrow1_ok(const mt_qmat *m) {
    return (m->bits == 4 || m->bits == 8) && (m->gs == 32 || m->gs == 64 || m->gs == 128);
}

/* The 8 horizontal sums of a[0..7], in one pass of shuffles: [sum a0, ..., sum a7]. */
AVX512 static inline __m256 hsum8x_512(const __m512 a[8]) {
    __m512 b[4], c[2];
    for (int i = 0; i < 4; i++)   /* 128-bit lanes: a2i.(L0+L2), a2i.(L1+L3), a2i+1.(L0+L2), a2i+1.(L1+L3) */
        b[i] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0x44),
                             _mm512_shuffle_f32x4(a[2 * i], a[2 * i + 1], 0xEE));
    for (int i = 0; i < 2; i++)   /* lane L: 4 partial sums of a[4i + L] */
        c[i] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0x88),
                             _mm512_shuffle_f32x4(b[2 * i], b[2 * i + 1], 0xDD));
    __m512 g = _mm512_add_ps(_mm512_shuffle_ps(c[0], c[1], 0x44), _mm512_shuffle_ps(c[0], c[1], 0xEE));
    g = _mm512_add_ps(g, _mm512_permute_ps(g, 0xB1)); /* lane L: a[L] twice, a[4 + L] twice */
    return _mm512_castps512_ps256(
        _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0), g));
}

/* Two rows (codes w and w + rb; float scales/biases sf/bf and sf/bf + n) x T
 * (1..8) tokens of 4-bit codes, groups [0, n) of gs (a multiple of 32):
 * d[t] and d[8 + t] = sum_g dot(x_t,g, s_g * q + b_g).  Each group's 16
 * possible weights s_g * k + b_g are made once (one FMA) and looked up by
 * code, so per 32 weights a row costs 1 load + 1 shift + 2 lookups, shared by
 * the tokens' FMAs; each token's x is loaded once for both rows. */
AVX512 static inline __attribute__((always_inline)) void q4tab2_512(const unsigned char *w, size_t rb, const float *sf,
                                                                    const float *bf, const float *xp, size_t K,
                                                                    size_t n, size_t gs, float *d, const size_t T) {
    const __m512 iota = LUT16();
    __m512 a0[8], a1[8];
    for (size_t t = 0; t < 8; t++) a0[t] = a1[t] = _mm512_setzero_ps();
    for (size_t g = 0; g < n; g++) {
        const unsigned char *wg = w + g * gs / 2;
        const float *xg = xp + g * gs;
        __m512 tab0 = _mm512_fmadd_ps(iota, _mm512_set1_ps(sf[g]), _mm512_set1_ps(bf[g]));
        __m512 tab1 = _mm512_fmadd_ps(iota, _mm512_set1_ps(sf[n + g]), _mm512_set1_ps(bf[n + g]));
        for (size_t j = 0; j < gs; j += 32) {
            __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(wg + j / 2)));
            __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(wg + rb + j / 2)));
            __m512 l0 = _mm512_permutexvar_ps(v0, tab0), h0 = _mm512_permutexvar_ps(_mm512_srli_epi32(v0, 4), tab0);
            __m512 l1 = _mm512_permutexvar_ps(v1, tab1), h1 = _mm512_permutexvar_ps(_mm512_srli_epi32(v1, 4), tab1);
            for (size_t t = 0; t < T; t++) {
                __m512 xl = _mm512_load_ps(xg + t * K + j), xh = _mm512_load_ps(xg + t * K + j + 16);
                a0[t] = _mm512_fmadd_ps(h0, xh, _mm512_fmadd_ps(l0, xl, a0[t]));
                a1[t] = _mm512_fmadd_ps(h1, xh, _mm512_fmadd_ps(l1, xl, a1[t]));
            }
        }
    }
    _mm256_storeu_ps(d, hsum8x_512(a0));
    _mm256_storeu_ps(d + 8, hsum8x_512(a1));
}

/* Rows [r0, r1) x T tokens (T >= 1, any) of 4-bit codes with gs % 32 == 0:
 * y[t*ldy + r] = sum over groups of dot(x_t,g, s_g * q + b_g), rows in pairs,
 * tokens in sets of 8, x in chunks that stay in L1.  xp is 64-byte aligned
 * with K % 16 == 0 (mt_linear_forward). */
AVX512 static void q4tab_rows_512(const mt_qmat *m, const float *xp, size_t T, float *y, size_t ldy, size_t r0,
                                  size_t r1) {
    size_t gs = (size_t)m->gs, ss = mt_dtype_size(m->sdt), gb = gs / 2;
    size_t cg = chunk_groups(m, T);
    float sf[2 * SCHUNK], bf[2 * SCHUNK], d[16];
    for (size_t c = 0; c < m->ng; c += cg) {
        size_t n = m->ng - c < cg ? m->ng - c : cg;
        for (size_t r = r0; r < r1; r += 2) {
            size_t r2 = r + 1 < r1 ? r + 1 : r; /* an odd last row runs twice */
            for (int i = 0; i < 2; i++) {
                size_t ri = i ? r2 : r;
                const unsigned char *sp = m->s + (ri * m->ng + c) * ss, *bp = m->b + (ri * m->ng + c) * ss;
                for (size_t g0 = 0; g0 < n; g0 += 16) {
                    __mmask16 k = mt_mask16(n - g0);
                    _mm512_mask_storeu_ps(sf + i * n + g0, k, mt_sb16_512(sp + g0 * ss, m->sdt, k));
                    _mm512_mask_storeu_ps(bf + i * n + g0, k, mt_sb16_512(bp + g0 * ss, m->sdt, k));
                }
            }
            const unsigned char *w = m->w + r * m->row_bytes + c * gb;
            size_t rb = (r2 - r) * m->row_bytes;
            for (size_t t = 0; t < T; t += 8) {
                size_t tn = T - t < 8 ? T - t : 8;
                const float *xt = xp + t * m->K + c * gs;
                switch (tn) {
                case 1: q4tab2_512(w, rb, sf, bf, xt, m->K, n, gs, d, 1); break;
                case 2: q4tab2_512(w, rb, sf, bf, xt, m->K, n, gs, d, 2); break;
                case 3: q4tab2_512(w, rb, sf, bf, xt, m->K, n, gs, d, 3); break;
                case 4: q4tab2_512(w, rb, sf, bf, xt, m->K, n, gs, d, 4); break;
                case 5: q4tab2_512(w, rb, sf, bf, xt, m->K, n, gs, d, 5); break;
                case 6: q4tab2_512(w, rb, sf, bf, xt, m->K, n, gs, d, 6); break;
                case 7: q4tab2_512(w, rb, sf, bf, xt, m->K, n, gs, d, 7); break;
                default: q4tab2_512(w, rb, sf, bf, xt, m->K, n, gs, d, 8); break;
                }
                for (size_t u = 0; u < tn; u++) {
                    float *yr = y + (t + u) * ldy;
                    yr[r] = c ? yr[r] + d[u] : d[u];
                    if (r2 != r) yr[r2] = c ? yr[r2] + d[8 + u] : d[8 + u];
                }
            }
        }
    }
}

AVX512 static void kq_rows_512(const mt_qmat *m, const float *xp, const float *gsum, size_t T, float *y, size_t ldy,
                               size_t r0, size_t r1) {
    size_t gs = (size_t)m->gs, ss = mt_dtype_size(m->sdt), gb = gs * (size_t)m->bits / 8;
    float sf[SCHUNK], bf[SCHUNK];
    size_t cg = chunk_groups(m, T);
    if (T == 1 && qrow1_ok(m)) {
        for (size_t c = 0; c < m->ng; c += cg) {
            size_t n = m->ng - c < cg ? m->ng - c : cg;
            for (size_t r = r0; r < r1; r++) {
                float d = qrow1_dispatch_512(m, r, c, n, xp, gsum);
                y[r] = c == 0 ? d : y[r] + d;
            }
        }
        return;
    }
    if (m->bits == 4 && gs % 32 == 0) {
        q4tab_rows_512(m, xp, T, y, ldy, r0, r1);
        return;
    }
    for (size_t c = 0; c < m->ng; c += cg) {
        size_t n = m->ng - c < cg ? m->ng - c : cg;
        for (size_t r = r0; r < r1; r++) {
            const unsigned char *w = m->w + r * m->row_bytes, *sp = m->s + r * m->ng * ss, *bp = m->b + r * m->ng * ss;
            if (c == 0) for (size_t t = 0; t < T; t++) y[t * ldy + r] = 0.f;
            mt_cvt_sb_512(sf, sp + c * ss, m->sdt, n);
            mt_cvt_sb_512(bf, bp + c * ss, m->sdt, n);
            size_t t = 0;
            if (m->bits == 8)
                for (; t + 4 <= T; t += 4) {
                    float d4[4];
                    const float *xt = xp + t * m->K + c * gs;
                    q8_chunk4_512(w + c * gb, sf, xt, m->K, n, gs, d4);
                    for (size_t u = 0; u < 4; u++)
                        y[(t + u) * ldy + r] += d4[u] + mt_bias_dot_512(bf, gsum + (t + u) * m->ng + c, n);
                }
            for (; t < T; t++) {
                const float *xt = xp + t * m->K + c * gs;
                float d;
                if (m->bits == 8) d = q8_chunk_512(w + c * gb, sf, xt, n, gs);
                else d = qn_chunk_512(w + c * gb, sf, xt, n, gs, m->bits);
                y[t * ldy + r] += d + mt_bias_dot_512(bf, gsum + t * m->ng + c, n);
            }
        }
    }
}

void mt_kq_rows(int level, const mt_qmat *m, const float *xp, const float *gsum, size_t T, float *y, size_t ldy,
                size_t r0, size_t r1) {
    if (m->mode != MT_QMODE_AFFINE) mt_kfp_rows(level, m, xp, T, y, ldy, r0, r1);
    else if (level == MT_CPU_AVX512) kq_rows_512(m, xp, gsum, T, y, ldy, r0, r1);
    else if (level == MT_CPU_AVX2) kq_rows_avx2(m, xp, gsum, T, y, ldy, r0, r1);
    else kq_rows_c(m, xp, gsum, T, y, ldy, r0, r1);
}

/* ---- dense rows -------------------------------------------------------- */

static float kd_dot_c(const unsigned char *w, mt_dtype t, const float *x, size_t K) {
    float s = 0.f, v;
    for (size_t i = 0; i < K; i++) {
        cvt_c(&v, w + i * mt_dtype_size(t), t, 1);
        s += x[i] * v;
    }
    return s;
}

static float kd_dot_avx2(const unsigned char *w, mt_dtype t, const float *x, size_t K) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t i = 0;
    if (t == MT_F32) {
        const float *f = (const float *)(const void *)w;
        for (; i + 16 <= K; i += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(f + i), _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(f + i + 8), _mm256_loadu_ps(x + i + 8), a1);
        }
    } else if (t == MT_F16) {
        for (; i + 16 <= K; i += 16) {
            a0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 2 * i))), _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + 2 * i + 16))),
                                 _mm256_loadu_ps(x + i + 8), a1);
        }
    } else {
        for (; i + 16 <= K; i += 16) {
            __m256i v0 = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + 2 * i))), 16);
            __m256i v1 = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(w + 2 * i + 16))), 16);
            a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(v0), _mm256_loadu_ps(x + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_castsi256_ps(v1), _mm256_loadu_ps(x + i + 8), a1);
        }
    }
    float s = mt_hsum8(_mm256_add_ps(a0, a1));
    if (i < K) s += kd_dot_c(w + i * mt_dtype_size(t), t, x + i, K - i);
    return s;
}

AVX512 static float kd_dot_512(const unsigned char *w, mt_dtype t, const float *x, size_t K) {
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t i = 0;
    if (t == MT_F32) {
        const float *f = (const float *)(const void *)w;
        for (; i + 32 <= K; i += 32) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(f + i), _mm512_loadu_ps(x + i), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(f + i + 16), _mm512_loadu_ps(x + i + 16), a1);
        }
    } else if (t == MT_F16) {
        for (; i + 32 <= K; i += 32) {
            a0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + 2 * i))), _mm512_loadu_ps(x + i), a0);
            a1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(w + 2 * i + 32))),
                                 _mm512_loadu_ps(x + i + 16), a1);
        }
    } else {
        for (; i + 32 <= K; i += 32) {
            __m512i v0 = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + 2 * i))), 16);
            __m512i v1 = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(w + 2 * i + 32))), 16);
            a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(v0), _mm512_loadu_ps(x + i), a0);
            a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(v1), _mm512_loadu_ps(x + i + 16), a1);
        }
    }
    float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
    if (i < K) s += kd_dot_avx2(w + i * mt_dtype_size(t), t, x + i, K - i);
    return s;
}

void mt_kd_rows(int level, const void *w, mt_dtype wdt, size_t K, const float *x, size_t T, float *y, size_t ldy,
                size_t r0, size_t r1) {
    size_t rb = K * mt_dtype_size(wdt);
    for (size_t r = r0; r < r1; r++) {
        const unsigned char *wr = (const unsigned char *)w + r * rb;
        for (size_t t = 0; t < T; t++) {
            const float *xt = x + t * K;
            y[t * ldy + r] = level == MT_CPU_AVX512 ? kd_dot_512(wr, wdt, xt, K)
                             : level == MT_CPU_AVX2 ? kd_dot_avx2(wr, wdt, xt, K)
                                                    : kd_dot_c(wr, wdt, xt, K);
        }
    }
}
