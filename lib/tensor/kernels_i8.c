/* kernels_i8.c - int8-activation kernels for MLX affine 4/8-bit weights
 * (MT_QMATH_INT8): activations quantized per weight group to int8, integer
 * dot products with the weights' unsigned codes, then per group
 * (s_g * d_g) * isum_g + b_g * sum(x_g) in float (contract in kernels.h).
 *
 * SIMD layout: a row's codes are read in blocks of 64 bytes (128 elements at
 * 4 bits, 64 at 8 bits).  A 32-bit lane L of a block holds 4 code bytes, so
 * its integer partial sum covers elements of one group; the float scale of
 * that lane (s_g * d_g) is applied per block.  For 4 bits the block's low
 * nibbles are its even elements and the high nibbles the odd ones; the
 * activations are stored in that order once per row (mt_ki8_prep).
 * Paths: AVX-512 VNNI (vpdpbusd), AVX2 (vpmaddubsw; 8-bit codes split in
 * nibbles so the int16 pair sums cannot saturate), portable C. */
#include "tensor/kernels.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>
#include "core/cpu.h"
#include "tensor/quant.h"
#include "tensor/simd512.h"
#include "tensor/simd_sum.h"

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c,avx2")))
#define SCHUNK 256 /* groups of scales converted per chunk */
#define MAXT 8
/* I8_PAIRS 1: the one-token kernel takes rows in pairs (each activation load serves both).
 * Off: one row at a time streams faster from memory: decode of the Llama-3.2-1B shape (q4 g64,
 * 2 threads, quiet) 21.8 -> 36.6 tok/s; pairs with an extra L2 prefetch 32 KiB ahead reach 31-36.
 * The results are the same either way (each row's sums run in the same order). */
#ifndef I8_PAIRS
#define I8_PAIRS 0
#endif
/* Bytes of codes prefetched ahead in the row kernel (2 threads streaming: 8 KiB best, 1 KiB 15% slower) */
#ifndef PF_AHEAD
#define PF_AHEAD 8192
#endif


enum { P_C, P_AVX2, P_VNNI };

static int path_of(int level) {
    if (level == MT_CPU_AVX512 && mt_cpu_has_avx512vnni()) return P_VNNI;
    return level == MT_CPU_PORTABLE ? P_C : P_AVX2;
}

int mt_ki8_supported(const mt_qmat *m) {
    return m->mode == MT_QMODE_AFFINE && (m->bits == 4 || m->bits == 8) && (m->gs == 32 || m->gs == 64 || m->gs == 128) && m->K % 32 == 0;
}

static size_t blk_elems(int bits) { return bits == 4 ? 128 : 64; }

void mt_ki8_layout(int level, const mt_qmat *m, size_t *kp, size_t *nl) {
    if (path_of(level) == P_C) {
        *kp = m->K;
        *nl = m->ng;
        return;
    }
    size_t be = blk_elems(m->bits), nb = (m->K + be - 1) / be;
    *kp = nb * be;
    *nl = nb * 16;
}

/* ---- activation quantization ------------------------------------------- */

static float group_scale(const float *x, size_t n, float *sum) {
    float a = 0.f, s = 0.f;
    for (size_t i = 0; i < n; i++) {
        float v = fabsf(x[i]);
        a = v > a ? v : a;
        s += x[i];
    }
    *sum = s;
    return a / 127.f;
}

static inline int8_t q8(float x, float id) { return (int8_t)(int)nearbyintf(x * id); }

void mt_ki8_prep(int level, const mt_qmat *m, const float *x, int8_t *q, float *sx, float *gsum) {
    size_t gs = (size_t)m->gs, K = m->K;
    if (path_of(level) == P_C) {
        for (size_t g = 0; g < m->ng; g++) {
            float d = group_scale(x + g * gs, gs, &gsum[g]), id = d != 0.f ? 1.f / d : 0.f;
            for (size_t i = 0; i < gs; i++) q[g * gs + i] = q8(x[g * gs + i], id);
            sx[g] = d;
        }
        return;
    }
    size_t kp, nl;
    mt_ki8_layout(level, m, &kp, &nl);
    size_t w = blk_elems(m->bits) / 16; /* elements per lane */
    memset(q + K, 0, kp - K);
    for (size_t l = K / w; l < nl; l++) sx[l] = 0.f;
    for (size_t g = 0; g < m->ng; g++) {
        const float *xg = x + g * gs;
        float d = group_scale(xg, gs, &gsum[g]), id = d != 0.f ? 1.f / d : 0.f;
        for (size_t l = g * gs / w; l < (g + 1) * gs / w; l++) sx[l] = d;
        if (m->bits == 8) {
            for (size_t i = 0; i < gs; i++) q[g * gs + i] = q8(xg[i], id);
        } else {
            for (size_t i = 0; i < gs; i++) {
                size_t e = g * gs + i, b = e / 128, j = e % 128;
                q[b * 128 + (j & 1) * 64 + j / 2] = q8(xg[i], id);
            }
        }
    }
    /* a partial last 4-bit block: its odd half starts at 64, zero the gaps */
    if (m->bits == 4 && K % 128) {
        size_t b = K / 128, h = (K % 128) / 2;
        memset(q + b * 128 + h, 0, 64 - h);
        memset(q + b * 128 + 64 + h, 0, 64 - h);
    }
}

/* ---- portable ---------------------------------------------------------- */

static void i8_rows_c(const mt_qmat *m, const int8_t *q, const float *sx, const float *gsum, size_t kp, size_t nl,
                      size_t tn, float *y, size_t ldy, size_t r0, size_t r1) {
    size_t gs = (size_t)m->gs, ss = mt_dtype_size(m->sdt), gb = gs * (size_t)m->bits / 8;
    uint8_t codes[128];
    for (size_t r = r0; r < r1; r++) {
        const unsigned char *w = m->w + r * m->row_bytes, *sp = m->s + r * m->ng * ss, *bp = m->b + r * m->ng * ss;
        float acc[MAXT] = {0};
        for (size_t g = 0; g < m->ng; g++) {
            float s, b;
            mt_k_cvt_f32(MT_CPU_PORTABLE, &s, sp + g * ss, m->sdt, 1);
            mt_k_cvt_f32(MT_CPU_PORTABLE, &b, bp + g * ss, m->sdt, 1);
            mt_quant_unpack_row(codes, (const uint32_t *)(const void *)(w + g * gb), gs, m->bits);
            for (size_t t = 0; t < tn; t++) {
                const int8_t *qg = q + t * kp + g * gs;
                int32_t is = 0;
                for (size_t i = 0; i < gs; i++) is += (int32_t)codes[i] * qg[i];
                acc[t] += (s * sx[t * nl + g]) * (float)is + b * gsum[t * m->ng + g];
            }
        }
        for (size_t t = 0; t < tn; t++) y[t * ldy + r] = acc[t];
    }
}

/* ---- shared by the SIMD paths ------------------------------------------ */

/* Scale lane L of a block -> group offset within the block's first group. */
static inline int lane_group(size_t L, size_t be, size_t gs) { return (int)(L * (be / 16) / gs); }

static float bias_dot_c(const float *bf, const float *gsum, size_t n) {
    float s = 0.f;
    for (size_t i = 0; i < n; i++) s += bf[i] * gsum[i];
    return s;
}

/* ---- AVX2 -------------------------------------------------------------- */

static inline __m256i load_half(const unsigned char *p, size_t avail) {
    if (avail >= 32) return _mm256_loadu_si256((const __m256i *)p);
    return _mm256_inserti128_si256(_mm256_setzero_si256(), _mm_loadu_si128((const __m128i *)p), 0);
}

static void i8_rows_avx2(const mt_qmat *m, const int8_t *q, const float *sx, const float *gsum, size_t kp, size_t nl,
                         size_t tn, float *y, size_t ldy, size_t r0, size_t r1) {
    size_t gs = (size_t)m->gs, ss = mt_dtype_size(m->sdt), be = blk_elems(m->bits);
    size_t nb = (m->K + be - 1) / be, cb = SCHUNK * gs / be; /* blocks per chunk */
    float sf[SCHUNK + 8], bf[SCHUNK];
    memset(sf, 0, sizeof sf);
    __m256i idx[2];
    for (int h = 0; h < 2; h++) {
        int v[8];
        for (int L = 0; L < 8; L++) v[L] = lane_group((size_t)(h * 8 + L), be, gs);
        idx[h] = _mm256_loadu_si256((const __m256i *)v);
    }
    const __m256i m15 = _mm256_set1_epi8(15), one = _mm256_set1_epi16(1), sixteen = _mm256_set1_epi16(16);
    for (size_t r = r0; r < r1; r++) {
        const unsigned char *w = m->w + r * m->row_bytes, *sp = m->s + r * m->ng * ss, *bp = m->b + r * m->ng * ss;
        __m256 f[MAXT];
        float bacc[MAXT];
        for (size_t t = 0; t < tn; t++) { f[t] = _mm256_setzero_ps(); bacc[t] = 0.f; }
        for (size_t b0 = 0; b0 < nb; b0 += cb) {
            size_t b1 = nb - b0 < cb ? nb : b0 + cb, g0 = b0 * be / gs, g1 = (b1 * be + gs - 1) / gs;
            if (g1 > m->ng) g1 = m->ng;
            mt_k_cvt_f32(MT_CPU_AVX2, sf, sp + g0 * ss, m->sdt, g1 - g0);
            mt_k_cvt_f32(MT_CPU_AVX2, bf, bp + g0 * ss, m->sdt, g1 - g0);
            for (size_t b = b0; b < b1; b++) {
                size_t avail = m->row_bytes - b * 64;
                const float *sfb = sf + (b * be / gs - g0);
                _mm_prefetch((const char *)(w + b * 64 + PF_AHEAD), _MM_HINT_T0);
                for (size_t h = 0; h < 2 && avail > h * 32; h++) {
                    __m256i c = load_half(w + b * 64 + h * 32, avail - h * 32);
                    __m256 swe = _mm256_permutevar8x32_ps(_mm256_loadu_ps(sfb), idx[h]);
                    __m256i lo = _mm256_and_si256(c, m15), hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), m15);
                    for (size_t t = 0; t < tn; t++) {
                        const int8_t *qb = q + t * kp + b * be + h * 32;
                        __m256i i32;
                        if (m->bits == 4) {
                            __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)qb)),
                                                         _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(qb + 64))));
                            i32 = _mm256_madd_epi16(p, one);
                        } else {
                            __m256i x = _mm256_loadu_si256((const __m256i *)qb);
                            i32 = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, x), one),
                                                   _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x), sixteen));
                        }
                        __m256 d = _mm256_mul_ps(_mm256_cvtepi32_ps(i32), _mm256_loadu_ps(sx + t * nl + b * 16 + h * 8));
                        f[t] = _mm256_fmadd_ps(d, swe, f[t]);
                    }
                }
            }
            for (size_t t = 0; t < tn; t++) bacc[t] += bias_dot_c(bf, gsum + t * m->ng + g0, g1 - g0);
        }
        for (size_t t = 0; t < tn; t++) y[t * ldy + r] = mt_hsum8(f[t]) + bacc[t];
    }
}

/* ---- AVX-512 VNNI ------------------------------------------------------ */

/* NR rows (1, or 2: each token's activations are then loaded once for both),
 * TN tokens; both compile-time constants after inlining.  sf/bf hold NR
 * rows' widened scales/biases, SCHUNK + 16 and SCHUNK floats apart. */
VNNI static inline __attribute__((always_inline)) void
i8_row_512(const mt_qmat *m, const int8_t *q, const float *sx, const float *gsum, size_t kp, size_t nl, const size_t TN,
           const size_t NR, float *y, size_t ldy, size_t r, float *sf, float *bf, __m512i idx) {
    size_t gs = (size_t)m->gs, ss = mt_dtype_size(m->sdt), be = blk_elems(m->bits);
    size_t nb = (m->K + be - 1) / be, cb = SCHUNK * gs / be;
    const unsigned char *w = m->w + r * m->row_bytes, *sp = m->s + r * m->ng * ss, *bp = m->b + r * m->ng * ss;
    const __m512i m15 = _mm512_set1_epi8(15);
    __m512 f[2][MAXT];
    float bacc[2][MAXT];
    for (size_t i = 0; i < NR; i++)
        for (size_t t = 0; t < TN; t++) { f[i][t] = _mm512_setzero_ps(); bacc[i][t] = 0.f; }
    for (size_t b0 = 0; b0 < nb; b0 += cb) {
        size_t b1 = nb - b0 < cb ? nb : b0 + cb, g0 = b0 * be / gs, g1 = (b1 * be + gs - 1) / gs;
        if (g1 > m->ng) g1 = m->ng;
        for (size_t i = 0; i < NR; i++) {
            mt_cvt_sb_512(sf + i * (SCHUNK + 16), sp + (i * m->ng + g0) * ss, m->sdt, g1 - g0);
            mt_cvt_sb_512(bf + i * SCHUNK, bp + (i * m->ng + g0) * ss, m->sdt, g1 - g0);
        }
        for (size_t b = b0; b < b1; b++) {
            size_t avail = m->row_bytes - b * 64;
            __m512i lo[2], hi[2];
            __m512 swe[2];
            for (size_t i = 0; i < NR; i++) {
                const unsigned char *wb = w + i * m->row_bytes + b * 64;
                _mm_prefetch((const char *)(wb + PF_AHEAD), _MM_HINT_T0);
                lo[i] = avail >= 64 ? _mm512_loadu_si512((const void *)wb)   /* 8 bits: the codes; 4: split below */
                                    : _mm512_maskz_loadu_epi8((__mmask64)((1ull << avail) - 1), wb);
                swe[i] = _mm512_permutexvar_ps(idx, _mm512_loadu_ps(sf + i * (SCHUNK + 16) + (b * be / gs - g0)));
                if (m->bits == 4) {
                    hi[i] = _mm512_and_si512(_mm512_srli_epi16(lo[i], 4), m15);
                    lo[i] = _mm512_and_si512(lo[i], m15);
                }
            }
            for (size_t t = 0; t < TN; t++) {
                const int8_t *qb = q + t * kp + b * (m->bits == 4 ? 128 : 64);
                __m512i xl = _mm512_loadu_si512((const void *)qb);
                __m512i xh = m->bits == 4 ? _mm512_loadu_si512((const void *)(qb + 64)) : xl;
                __m512 d = _mm512_loadu_ps(sx + t * nl + b * 16);
                for (size_t i = 0; i < NR; i++) {
                    __m512i i32 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lo[i], xl);
                    if (m->bits == 4) i32 = _mm512_dpbusd_epi32(i32, hi[i], xh);
                    f[i][t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(i32), d), swe[i], f[i][t]);
                }
            }
        }
        for (size_t i = 0; i < NR; i++)
            for (size_t t = 0; t < TN; t++) bacc[i][t] += mt_bias_dot_512(bf + i * SCHUNK, gsum + t * m->ng + g0, g1 - g0);
    }
    for (size_t i = 0; i < NR; i++)
        for (size_t t = 0; t < TN; t++) y[t * ldy + r + i] = _mm512_reduce_add_ps(f[i][t]) + bacc[i][t];
}

/* i8_row_512 with one instance per token count (TN a constant inside) for NR
 * rows (a constant at each call site). */
VNNI static inline __attribute__((always_inline)) void
i8_row_tn_512(const mt_qmat *m, const int8_t *q, const float *sx, const float *gsum, size_t kp, size_t nl, size_t tn,
              const size_t NR, float *y, size_t ldy, size_t r, float *sf, float *bf, __m512i idx) {
    switch (tn) {
    case 1: i8_row_512(m, q, sx, gsum, kp, nl, 1, NR, y, ldy, r, sf, bf, idx); break;
    case 2: i8_row_512(m, q, sx, gsum, kp, nl, 2, NR, y, ldy, r, sf, bf, idx); break;
    case 3: i8_row_512(m, q, sx, gsum, kp, nl, 3, NR, y, ldy, r, sf, bf, idx); break;
    case 4: i8_row_512(m, q, sx, gsum, kp, nl, 4, NR, y, ldy, r, sf, bf, idx); break;
    case 5: i8_row_512(m, q, sx, gsum, kp, nl, 5, NR, y, ldy, r, sf, bf, idx); break;
    case 6: i8_row_512(m, q, sx, gsum, kp, nl, 6, NR, y, ldy, r, sf, bf, idx); break;
    case 7: i8_row_512(m, q, sx, gsum, kp, nl, 7, NR, y, ldy, r, sf, bf, idx); break;
    default: i8_row_512(m, q, sx, gsum, kp, nl, 8, NR, y, ldy, r, sf, bf, idx); break;
    }
}

VNNI static void i8_rows_512(const mt_qmat *m, const int8_t *q, const float *sx, const float *gsum, size_t kp,
                             size_t nl, size_t tn, float *y, size_t ldy, size_t r0, size_t r1) {
    size_t gs = (size_t)m->gs, be = blk_elems(m->bits);
    float sf[2 * (SCHUNK + 16)], bf[2 * SCHUNK];
    memset(sf, 0, sizeof sf);
    int v[16];
    for (int L = 0; L < 16; L++) v[L] = lane_group((size_t)L, be, gs);
    __m512i idx = _mm512_loadu_si512((const void *)v);
    /* rows one at a time (I8_PAIRS 0, the default) or in pairs: a pair shares the activation
     * loads (one token, cache-resident, 1 thread: 10.5-14.4 -> 13.2-18.8 GB/s) but streams from
     * memory slower; an odd last row alone */
    for (size_t r = r0; r < r1;) {
        if (I8_PAIRS && r + 2 <= r1) { i8_row_tn_512(m, q, sx, gsum, kp, nl, tn, 2, y, ldy, r, sf, bf, idx); r += 2; }
        else { i8_row_tn_512(m, q, sx, gsum, kp, nl, tn, 1, y, ldy, r, sf, bf, idx); r += 1; }
    }
}

void mt_ki8_rows(int level, const mt_qmat *m, const int8_t *q, const float *sx, const float *gsum, size_t kp,
                 size_t nl, size_t tn, float *y, size_t ldy, size_t r0, size_t r1) {
    if (tn > MAXT) tn = MAXT;
    switch (path_of(level)) {
    case P_VNNI: i8_rows_512(m, q, sx, gsum, kp, nl, tn, y, ldy, r0, r1); break;
    case P_AVX2: i8_rows_avx2(m, q, sx, gsum, kp, nl, tn, y, ldy, r0, r1); break;
    default: i8_rows_c(m, q, sx, gsum, kp, nl, tn, y, ldy, r0, r1); break;
    }
}

/* ---- AVX-512 VNNI tiles: 16 rows x many tokens (prefill, batches) ------
 * The 16 rows' codes are interleaved by 32-bit word once per tile (word j of
 * row i at buf[j*16 + i]), so one vector holds the same 4 code bytes of 16
 * rows and vpdpbusd against a broadcast word of x yields 16 rows' partial
 * sums.  A sub-group (up to 64 elements) lives in 16 registers (4-bit: low and
 * high nibbles of 8 words) and serves up to 8 tokens; its integer sums are
 * exact per group, scaled once per group and token. */

int mt_ki8_tiles_ok(int level, const mt_qmat *m) { return path_of(level) == P_VNNI && mt_ki8_supported(m); }

size_t mt_ki8_tiles_scratch(const mt_qmat *m) { return 16 * m->row_bytes + 2 * 16 * m->ng * sizeof(float) + 64; }

/* The same quantization with AVX-512 (cvtps_epi32 rounds to nearest even,
 * as nearbyintf does in the default rounding mode). */
VNNI static void prep_tiles_512(const mt_qmat *m, const float *x, int8_t *q, float *sx, float *gsum) {
    size_t gs = (size_t)m->gs;
    const __m512 sign = _mm512_set1_ps(-0.0f);
    const __m128i perm = _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15);
    for (size_t g = 0; g < m->ng; g++) {
        const float *xg = x + g * gs;
        __m512 a = _mm512_setzero_ps(), su = _mm512_setzero_ps();
        for (size_t i = 0; i < gs; i += 16) {
            __m512 v = _mm512_loadu_ps(xg + i);
            a = _mm512_max_ps(a, _mm512_andnot_ps(sign, v));
            su = _mm512_add_ps(su, v);
        }
        float d = _mm512_reduce_max_ps(a) / 127.f, id = d != 0.f ? 1.f / d : 0.f;
        sx[g] = d;
        gsum[g] = _mm512_reduce_add_ps(su);
        __m512 vid = _mm512_set1_ps(id);
        for (size_t i = 0; i < gs; i += 16) {
            __m128i b = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(xg + i), vid)));
            if (m->bits == 4) b = _mm_shuffle_epi8(b, perm);
            _mm_storeu_si128((__m128i *)(q + g * gs + i), b);
        }
    }
}

void mt_ki8_prep_tiles(const mt_qmat *m, const float *x, int8_t *q, float *sx, float *gsum) {
    if (mt_cpu_has_avx512vnni()) { prep_tiles_512(m, x, q, sx, gsum); return; }
    size_t gs = (size_t)m->gs;
    for (size_t g = 0; g < m->ng; g++) {
        const float *xg = x + g * gs;
        float d = group_scale(xg, gs, &gsum[g]), id = d != 0.f ? 1.f / d : 0.f;
        sx[g] = d;
        int8_t *qg = q + g * gs;
        if (m->bits == 8) {
            for (size_t i = 0; i < gs; i++) qg[i] = q8(xg[i], id);
        } else {
            /* per 8 elements: the 4 even ones (low nibbles), then the 4 odd ones */
            for (size_t i = 0; i < gs; i++) qg[(i & ~(size_t)7) + (i & 1) * 4 + (i & 7) / 2] = q8(xg[i], id);
        }
    }
}

/* 16x16 transpose of 32-bit elements: r[i] lane j -> r[j] lane i. */
VNNI static inline __attribute__((always_inline)) void tr16(__m512i r[16]) {
    __m512i a[16], b[16];
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
    }
    /* b[4i + k], 128-bit lane L: rows 4i..4i+3 of column 4L + k */
    for (int i = 0; i < 4; i++) {
        b[4 * i] = _mm512_unpacklo_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 1] = _mm512_unpackhi_epi64(a[4 * i], a[4 * i + 2]);
        b[4 * i + 2] = _mm512_unpacklo_epi64(a[4 * i + 1], a[4 * i + 3]);
        b[4 * i + 3] = _mm512_unpackhi_epi64(a[4 * i + 1], a[4 * i + 3]);
    }
    for (int k = 0; k < 4; k++) {
        __m512i c0 = _mm512_shuffle_i32x4(b[k], b[4 + k], 0x88), c1 = _mm512_shuffle_i32x4(b[k], b[4 + k], 0xDD);
        __m512i c2 = _mm512_shuffle_i32x4(b[8 + k], b[12 + k], 0x88), c3 = _mm512_shuffle_i32x4(b[8 + k], b[12 + k], 0xDD);
        r[k] = _mm512_shuffle_i32x4(c0, c2, 0x88);
        r[8 + k] = _mm512_shuffle_i32x4(c0, c2, 0xDD);
        r[4 + k] = _mm512_shuffle_i32x4(c1, c3, 0x88);
        r[12 + k] = _mm512_shuffle_i32x4(c1, c3, 0xDD);
    }
}

/* Rows [r0, r0 + nr) (nr <= 16) into the tile layout: word j of row i at
 * buf[j*16 + i], scale/bias of group g at swe/bwe[g*16 + i], rows past nr
 * zero; 16 words (or groups) of the 16 rows per register transpose.  The
 * previous tile's tile_tokens prefetched these rows while it computed. */
VNNI static void tile_repack(const mt_qmat *m, size_t r0, size_t nr, uint32_t *buf, float *swe,
                             float *bwe) {
    size_t nw = m->row_bytes / 4, ss = mt_dtype_size(m->sdt);
    __m512i v[16];
    for (size_t j0 = 0; j0 < nw; j0 += 16) {
        size_t nj = nw - j0 < 16 ? nw - j0 : 16;
        __mmask16 k = mt_mask16(nj);
        for (size_t i = 0; i < 16; i++)
            v[i] = i < nr ? _mm512_maskz_loadu_epi32(k, m->w + (r0 + i) * m->row_bytes + 4 * j0) : _mm512_setzero_si512();
        tr16(v);
        for (size_t j = 0; j < nj; j++) _mm512_store_si512((void *)(buf + (j0 + j) * 16), v[j]);
    }
    for (int sb = 0; sb < 2; sb++) {
        const unsigned char *src = sb ? m->b : m->s;
        float *dst = sb ? bwe : swe;
        for (size_t g0 = 0; g0 < m->ng; g0 += 16) {
            size_t n = m->ng - g0 < 16 ? m->ng - g0 : 16;
            __mmask16 k = mt_mask16(n);
            for (size_t i = 0; i < 16; i++)
                v[i] = i < nr ? _mm512_castps_si512(mt_sb16_512(src + ((r0 + i) * m->ng + g0) * ss, m->sdt, k))
                              : _mm512_setzero_si512();
            tr16(v);
            for (size_t g = 0; g < n; g++) _mm512_storeu_ps(dst + (g0 + g) * 16, _mm512_castsi512_ps(v[g]));
        }
    }
}

static inline int32_t word_at(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* SGW words of codes per sub-group (4-bit: 4 words = 32 elements, in 8
 * registers of low and high nibbles; 8-bit: 8 words = 32 elements).  The
 * tokens' integer sums run as independent chains, interleaved code register
 * by code register (vpdpbusd has a latency of several cycles: one chain per
 * token, two when there are at most 4 tokens, keep the VNNI units busy), and
 * are scaled once per group and token. */
VNNI static inline __attribute__((always_inline)) void
tile_tokens(const mt_qmat *m, const uint32_t *buf, const float *swe, const float *bwe, const int8_t *q,
            const float *sx, const float *gsum, size_t kp, const size_t tn, float *y, size_t ldy, size_t r0, size_t nr,
            size_t npf, const int BITS, const size_t SGW) {
    size_t gs = (size_t)m->gs, ng = m->ng, gw = gs * (size_t)BITS / 32; /* words per group */
    size_t gb = gw * 4, ss = mt_dtype_size(m->sdt), rb = m->row_bytes;
    const unsigned char *pw = m->w + (r0 + 16) * rb, *ps = m->s + (r0 + 16) * ng * ss, *pb = m->b + (r0 + 16) * ng * ss;
    const __m512i m15 = _mm512_set1_epi8(15);
    const size_t NA = tn <= 4 ? 2 : 1; /* integer chains per token */
    __m512 f[MAXT];
    __m512i a[2 * MAXT];
    for (size_t t = 0; t < tn; t++) f[t] = _mm512_setzero_ps();
    for (size_t g = 0; g < ng; g++) {
        /* the next tile's codes, scales and biases of this group: they
         * arrive while this tile computes, and tile_repack finds them in cache */
        if (npf && ((g * gb) & 63) < gb)
            for (size_t i = 0; i < npf; i++) _mm_prefetch((const char *)pw + i * rb + g * gb, _MM_HINT_T0);
        if (npf && ((g * ss) & 63) < ss)
            for (size_t i = 0; i < npf; i++) {
                _mm_prefetch((const char *)ps + (i * ng + g) * ss, _MM_HINT_T0);
                _mm_prefetch((const char *)pb + (i * ng + g) * ss, _MM_HINT_T0);
            }
        for (size_t t = 0; t < NA * tn; t++) a[t] = _mm512_setzero_si512();
        for (size_t s0 = 0; s0 < gw; s0 += SGW) {
            const uint32_t *wb = buf + (g * gw + s0) * 16;
            __m512i c[8];
            /* element offset of the sub-group in the tokens' rows */
            const int8_t *qs = q + g * gs + s0 * 32 / (size_t)BITS;
            if (BITS == 4) {
                for (size_t j = 0; j < SGW; j++) {
                    __m512i v = _mm512_load_si512((const void *)(wb + j * 16));
                    c[2 * j] = _mm512_and_si512(v, m15);
                    c[2 * j + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m15);
                }
            } else {
                for (size_t j = 0; j < SGW; j++) c[j] = _mm512_load_si512((const void *)(wb + j * 16));
            }
            /* c[i] pairs with the token's word at byte 4i (4-bit: the prep
             * put each 8 elements' 4 even ones, then the 4 odd ones) */
            for (size_t i = 0; i < 8; i++)
                _Pragma("GCC unroll 8") for (size_t t = 0; t < tn; t++) {
                    size_t ai = NA == 2 ? 2 * t + (i & 1) : t;
                    a[ai] = _mm512_dpbusd_epi32(a[ai], c[i], _mm512_set1_epi32(word_at(qs + t * kp + 4 * i)));
                }
        }
        __m512 sw = _mm512_load_ps(swe + g * 16), bw = _mm512_load_ps(bwe + g * 16);
        for (size_t t = 0; t < tn; t++) {
            __m512i ai = NA == 2 ? _mm512_add_epi32(a[2 * t], a[2 * t + 1]) : a[t];
            f[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai), _mm512_mul_ps(sw, _mm512_set1_ps(sx[t * ng + g])), f[t]);
            f[t] = _mm512_fmadd_ps(bw, _mm512_set1_ps(gsum[t * ng + g]), f[t]);
        }
    }
    __mmask16 k = mt_mask16(nr);
    for (size_t t = 0; t < tn; t++) _mm512_mask_storeu_ps(y + t * ldy + r0, k, f[t]);
}

VNNI void mt_ki8_tiles(const mt_qmat *m, const int8_t *q, const float *sx, const float *gsum, size_t T, float *y,
                       size_t ldy, size_t r0, size_t r1, void *scratch) {
    uint32_t *buf = (uint32_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    float *swe = (float *)(buf + 16 * (m->row_bytes / 4)), *bwe = swe + 16 * m->ng;
    for (size_t r = r0; r < r1; r += 16) {
        size_t nr = r1 - r < 16 ? r1 - r : 16;
        size_t npf = r1 - r - nr < 16 ? r1 - r - nr : 16; /* rows of the next tile */
        tile_repack(m, r, nr, buf, swe, bwe);
        for (size_t t0 = 0; t0 < T; t0 += MAXT) {
            size_t tn = T - t0 < MAXT ? T - t0 : MAXT;
            const int8_t *qt = q + t0 * m->K;
            const float *st = sx + t0 * m->ng, *gt = gsum + t0 * m->ng;
            float *yt = y + t0 * ldy;
            /* one instance per token count, so the tokens' sums stay in registers */
#define TT(N, B, S) tile_tokens(m, buf, swe, bwe, qt, st, gt, m->K, N, yt, ldy, r, nr, t0 ? 0 : npf, B, S)
#define TT_N(B, S)                                                                                   \
    switch (tn) {                                                                                    \
    case 1: TT(1, B, S); break;                                                                      \
    case 2: TT(2, B, S); break;                                                                      \
    case 3: TT(3, B, S); break;                                                                      \
    case 4: TT(4, B, S); break;                                                                      \
    case 5: TT(5, B, S); break;                                                                      \
    case 6: TT(6, B, S); break;                                                                      \
    case 7: TT(7, B, S); break;                                                                      \
    default: TT(8, B, S); break;                                                                     \
    }
            if (m->bits == 4) { TT_N(4, 4) }
            else { TT_N(8, 8) }
#undef TT_N
#undef TT
        }
    }
}
