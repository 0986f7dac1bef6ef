/* bitlinear.c - BitNet b1.58 packed ternary linear layers (see bitlinear.h).
 *
 * The product never unpacks W to memory: for each packed row p (output rows p, p + P,
 * p + 2P, p + 3P with P = out/4) the bytes are read 8 input columns at a time, their four
 * 2-bit codes widened to floats in registers, and multiplied into 8-lane accumulators of
 * one or two input rows at once (two rows share each decoded block).  A row's sums run
 * in the same order whether it is paired or not, so every row gets the same result at any
 * T.  AVX2 (explicit) and portable C paths compute the same lanes in the same order.  From 24
 * rows on (a prompt) blocks of the weights are unpacked to float32 and multiplied by sgemm. */
#include "tensor/bitlinear.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "core/blas.h"
#include "core/cpu.h"

int mt_bitlinear_bind(mt_linear *l, const mt_safetensors *st, const char *path, size_t out, size_t in, int need_bias,
                      int invert, mt_err *err) {
    memset(l, 0, sizeof *l);
    char name[320];
    snprintf(name, sizeof name, "%s.weight", path);
    if (!out || out % 4 || !in) return mt_seterr(err, MT_EFORMAT, "'%s': %zu output rows are not a multiple of 4", path, out);
    const mt_tensor_view *w = mt_safetensors_get(st, name);
    if (!w) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
    if (w->dtype != MT_U8 || w->ndim != 2 || (size_t)w->shape[0] != out / 4 || (size_t)w->shape[1] != in)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected packed ternary uint8 [%zu, %zu]", name, out / 4, in);
    snprintf(name, sizeof name, "%s.weight_scale", path);
    const mt_tensor_view *s = mt_safetensors_get(st, name);
    if (!s) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
    float sc = 0;
    MT_TRY(mt_safetensors_read_f32(st, name, &sc, 1, 0, err));
    if (!isfinite(sc) || sc == 0 || !isfinite(1.0f / sc))
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': the scale %g must be finite and non-zero", name, (double)sc);
    l->out = out;
    l->in = in;
    l->w = w->data;
    l->wdt = MT_U8;
    l->ternary = 1;
    l->tscale = invert ? 1.0f / sc : sc;
    if (need_bias >= 0) {
        snprintf(name, sizeof name, "%s.bias", path);
        const mt_tensor_view *b = mt_safetensors_get(st, name);
        if (!b && need_bias > 0) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
        if (b) {
            if (b->ndim != 1 || (size_t)b->shape[0] != out || !mt_dtype_is_float(b->dtype) || b->dtype == MT_F64)
                return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected [%zu] floats", name, out);
            l->bias = b->data;
            l->bdt = b->dtype;
        }
    }
    return MT_OK;
}

void mt_bitlinear_row(const mt_linear *l, size_t r, float *out) {
    size_t P = l->out / 4, p = r % P, sh = 2 * (r / P);
    const uint8_t *w = (const uint8_t *)l->w + p * l->in;
    for (size_t k = 0; k < l->in; k++) out[k] = (float)((w[k] >> sh) & 3) - 1.0f;
    for (size_t k = 0; k < l->in; k++) out[k] *= l->tscale;
}

/* The four output rows of packed row w (in bytes) for NR (1 or 2) input rows x0, x1:
 * s[r][i] = sum_k x_r[k] * (code_i(w[k]) - 1), 8 lanes of k, the lanes added pairwise at the end. */
enum { LANES = 8 };

static void packed_dot_c(const uint8_t *w, size_t in, const float *x0, const float *x1, int NR, float s[2][4]) {
    float a[2][4][LANES] = {{{0}}};
    size_t k = 0;
    for (; k + LANES <= in; k += LANES) {
        float c[4][LANES];
        for (int j = 0; j < LANES; j++) {
            int b = w[k + j];
            c[0][j] = (float)((b & 3) - 1);
            c[1][j] = (float)(((b >> 2) & 3) - 1);
            c[2][j] = (float)(((b >> 4) & 3) - 1);
            c[3][j] = (float)((b >> 6) - 1);
        }
        for (int r = 0; r < NR; r++) {
            const float *x = r ? x1 : x0;
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < LANES; j++) a[r][i][j] += x[k + j] * c[i][j];
        }
    }
    for (int r = 0; r < NR; r++) {
        const float *x = r ? x1 : x0;
        float t8[LANES];
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < LANES; j++) t8[j] = a[r][i][j];
            float t = ((t8[0] + t8[4]) + (t8[1] + t8[5])) + ((t8[2] + t8[6]) + (t8[3] + t8[7]));
            for (size_t q = k; q < in; q++) t += x[q] * ((float)((w[q] >> (2 * i)) & 3) - 1.0f);
            s[r][i] = t;
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#define AVX2 __attribute__((target("avx2,fma")))
/* The same sums (same lanes, same order) with AVX2: 8 bytes widened to 32-bit codes per step,
 * each of the 4 codes a shift, mask, -1 and conversion, then one FMA per input row. */
AVX2 static void packed_dot_avx2(const uint8_t *w, size_t in, const float *x0, const float *x1, int NR,
                                 float s[2][4]) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
    __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    const __m256i m3 = _mm256_set1_epi32(3), one = _mm256_set1_epi32(1);
    size_t k = 0;
    for (; k + LANES <= in; k += LANES) {
        __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(w + k)));
        __m256 c0 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(b, m3), one));
        __m256 c1 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(b, 2), m3), one));
        __m256 c2 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(_mm256_srli_epi32(b, 4), m3), one));
        __m256 c3 = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(b, 6), one));
        __m256 v = _mm256_loadu_ps(x0 + k);
        a00 = _mm256_fmadd_ps(v, c0, a00);
        a01 = _mm256_fmadd_ps(v, c1, a01);
        a02 = _mm256_fmadd_ps(v, c2, a02);
        a03 = _mm256_fmadd_ps(v, c3, a03);
        if (NR == 2) {
            v = _mm256_loadu_ps(x1 + k);
            a10 = _mm256_fmadd_ps(v, c0, a10);
            a11 = _mm256_fmadd_ps(v, c1, a11);
            a12 = _mm256_fmadd_ps(v, c2, a12);
            a13 = _mm256_fmadd_ps(v, c3, a13);
        }
    }
    __m256 acc[2][4] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}};
    for (int r = 0; r < NR; r++) {
        const float *x = r ? x1 : x0;
        for (int i = 0; i < 4; i++) {
            float t8[LANES];
            _mm256_storeu_ps(t8, acc[r][i]);
            float t = ((t8[0] + t8[4]) + (t8[1] + t8[5])) + ((t8[2] + t8[6]) + (t8[3] + t8[7]));
            for (size_t q = k; q < in; q++) t += x[q] * ((float)((w[q] >> (2 * i)) & 3) - 1.0f);
            s[r][i] = t;
        }
    }
}
#endif

typedef struct { const mt_linear *l; const float *x; size_t T; float *y; int avx2; } bl_ctx;

static void bl_job(void *vc, size_t b, size_t e, int tid) {
    (void)tid;
    const bl_ctx *c = vc;
    const mt_linear *l = c->l;
    size_t in = l->in, out = l->out, P = out / 4;
    for (size_t p = b; p < e; p++) {
        const uint8_t *w = (const uint8_t *)l->w + p * in;
        for (size_t t = 0; t < c->T; t += 2) {
            int NR = t + 1 < c->T ? 2 : 1;
            float s[2][4];
            const float *x0 = c->x + t * in, *x1 = NR == 2 ? x0 + in : NULL;
#if defined(__x86_64__)
            if (c->avx2) packed_dot_avx2(w, in, x0, x1, NR, s);
            else
#endif
                packed_dot_c(w, in, x0, x1, NR, s);
            for (int r = 0; r < NR; r++)
                for (int i = 0; i < 4; i++) c->y[(t + (size_t)r) * out + p + (size_t)i * P] = s[r][i] * l->tscale;
        }
    }
}

/* Many rows (a prompt): blocks of TILE_P packed rows unpacked to float32 (the 4 * TILE_P output
 * rows they hold, times the scale) and multiplied by one single-threaded sgemm per block. */
enum { TILE_P = 32 };

/* Packed row p's four output rows times s into r0..r3 (one pass over its bytes). */
static void unpack4(const uint8_t *w, size_t in, float s, float *r0, float *r1, float *r2, float *r3) {
    for (size_t k = 0; k < in; k++) {
        int b = w[k];
        r0[k] = (float)((b & 3) - 1) * s;
        r1[k] = (float)(((b >> 2) & 3) - 1) * s;
        r2[k] = (float)(((b >> 4) & 3) - 1) * s;
        r3[k] = (float)((b >> 6) - 1) * s;
    }
}

static void bl_tiles_job(void *vc, size_t b, size_t e, int tid) {
    (void)tid;
    const bl_ctx *c = vc;
    const mt_linear *l = c->l;
    size_t in = l->in, out = l->out, P = out / 4, T = c->T;
    float *w = malloc(4 * TILE_P * in * sizeof *w), *yt = malloc(T * 4 * TILE_P * sizeof *yt);
    for (size_t p0 = b; p0 < e; p0 += TILE_P) {
        size_t np = e - p0 < TILE_P ? e - p0 : TILE_P;
        if (!w || !yt) {   /* no memory for the tile: the packed kernel */
            bl_ctx one = *c;
            bl_job(&one, p0, p0 + np, 0);
            continue;
        }
        for (size_t j = 0; j < np; j++)   /* tile row i * np + j = output row p0 + j + i * P */
            unpack4((const uint8_t *)l->w + (p0 + j) * in, in, l->tscale, w + j * in, w + (np + j) * in,
                    w + (2 * np + j) * in, w + (3 * np + j) * in);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)(4 * np), (int)in, 1.0f, c->x, (int)in, w,
                    (int)in, 0.0f, yt, (int)(4 * np));
        for (size_t t = 0; t < T; t++)
            for (size_t i = 0; i < 4; i++)
                memcpy(c->y + t * out + p0 + i * P, yt + t * 4 * np + i * np, np * sizeof *yt);
    }
    free(w);
    free(yt);
}

#ifndef BL_SGEMM_MIN_T
#define BL_SGEMM_MIN_T 24 /* rows from which the unpacked tiles win (2048 x 2048, one thread: 0.54 ms a row
                             packed; 6.7 ms + 0.16 ms a row unpacked) */
#endif

void mt_bitlinear_forward(const mt_linear *l, const float *x, size_t T, float *y, mt_pool *pool) {
    if (!T || !l->out) return;
    bl_ctx c = {l, x, T, y, mt_cpu_level() >= MT_CPU_AVX2};
    /* sgemm from the pool's threads only where OpenBLAS is single-threaded (one pool thread: the caller) */
    if (T >= BL_SGEMM_MIN_T && (mt_pool_size(pool) <= 1 || mt_blas_pool_splits(pool)))
        mt_pool_for(pool, l->out / 4, TILE_P, bl_tiles_job, &c);
    else mt_pool_for(pool, l->out / 4, 4, bl_job, &c);
    mt_linear_add_bias(l, T, y);
}

void mt_bitlinear_forward_rows1(const mt_linear *l, const float *x, size_t T, float *y, mt_pool *pool) {
    if (!T || !l->out) return;
    bl_ctx c = {l, x, T, y, mt_cpu_level() >= MT_CPU_AVX2};
    mt_pool_for(pool, l->out / 4, 4, bl_job, &c);
    mt_linear_add_bias(l, T, y);
}
