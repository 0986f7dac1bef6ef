/* linear.c - dense and MLX-quantized matrix products over borrowed weights.
 * Small T (decode): SIMD kernels straight from the packed weights, threaded
 * over output rows (kernels_q.c).  Larger T (prefill): tiles of rows are
 * dequantized/converted to float32 in parallel, then OpenBLAS sgemm.
 * ref: mlx quantized_matmul (x @ dequantize(W)^T, dequantization in the scales' dtype). */
#include "tensor/linear.h"

#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/blas.h"
#include "core/cpu.h"
#include "tensor/bitlinear.h"
#include "tensor/kernels.h"
#include "tensor/ops.h"
#include "tensor/quant.h"

static int check_shape(const mt_tensor_view *t, const char *name, int ndim, const int64_t *want, mt_err *err) {
    if (t->ndim != ndim) return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected %d dims, found %d", name, ndim, t->ndim);
    for (int i = 0; i < ndim; i++)
        if (want[i] && t->shape[i] != want[i])
            return mt_seterr(err, MT_EFORMAT, "tensor '%s': dim %d is %lld, expected %lld", name, i,
                             (long long)t->shape[i], (long long)want[i]);
    return MT_OK;
}

/* a tensor's name in messages: as the checkpoint names it (a family's renames) */
static const char *shown(const mt_safetensors *st, const char *name, char *buf, size_t n) {
    const char *r = st ? mt_safetensors_renamed(st, name, buf, n) : NULL;
    return r ? r : name;
}
#define SHOWN(x) shown(st, x, disp, sizeof disp)
mt_dtype mt_qmode_scale_dtype(int mode, mt_dtype file_dtype) {
    if (mode == MT_QMODE_AFFINE) return file_dtype;
    return mode == MT_QMODE_NVFP4 ? MT_F8_E4M3 : MT_F8_E8M0;
}

int mt_linear_bind_scales(const mt_safetensors *st, const char *path, int mode, int ndim, const int64_t *shape,
                          const mt_tensor_view *sb[2], mt_err *err) {
    char name[512], disp[512];
    const char *sfx[2] = {"scales", "biases"};
    for (int i = 0; i < 2; i++) {
        snprintf(name, sizeof name, "%s.%s", path, sfx[i]);
        sb[i] = mt_safetensors_get(st, name);
        if (i == 1 && mode != MT_QMODE_AFFINE) {   /* the fp modes have no biases */
            if (sb[i]) return mt_seterr(err, MT_EFORMAT, "'%s': %s quantization has no biases, but '%s' exists", path,
                                        mt_qmode_name(mode), SHOWN(name));
            break;
        }
        if (!sb[i]) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", SHOWN(name));
        MT_TRY(check_shape(sb[i], SHOWN(name), ndim, shape, err));
        if (mode != MT_QMODE_AFFINE) {
            mt_dtype want = mode == MT_QMODE_NVFP4 ? MT_F8_E4M3 : MT_F8_E8M0;
            if (sb[i]->dtype != MT_U8 && sb[i]->dtype != want)
                return mt_seterr(err, MT_EFORMAT, "tensor '%s': dtype %s, expected U8 (%s scales)", SHOWN(name),
                                 mt_dtype_name(sb[i]->dtype), mt_qmode_name(mode));
        } else if (sb[i]->dtype != MT_F32 && sb[i]->dtype != MT_F16 && sb[i]->dtype != MT_BF16) {
            return mt_seterr(err, MT_EFORMAT, "tensor '%s': dtype %s, expected a float type", SHOWN(name),
                             mt_dtype_name(sb[i]->dtype));
        }
    }
    if (mode == MT_QMODE_NVFP4) {
        snprintf(name, sizeof name, "%s.global_scale", path);
        if (mt_safetensors_get(st, name))
            return mt_seterr(err, MT_EUNSUPPORTED, "'%s': nvfp4 with a global scale is not supported", path);
    }
    if (mode == MT_QMODE_AFFINE && sb[0]->dtype != sb[1]->dtype)
        return mt_seterr(err, MT_EFORMAT, "'%s': scales and biases differ in dtype", SHOWN(path));
    return MT_OK;
}

int mt_linear_bind(mt_linear *l, const mt_safetensors *st, const mt_config *cfg, const char *path,
                   size_t out, size_t in, int need_bias, mt_err *err) {
    memset(l, 0, sizeof *l);
    char name[512], disp[512];
    snprintf(name, sizeof name, "%s.weight", path);
    const mt_tensor_view *w = mt_safetensors_get(st, name);
    if (!w) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", SHOWN(name));
    int quantized = 0;
    mt_quant_params qp = {0};
    MT_TRY(mt_config_quant_for(cfg, st, path, &quantized, &qp, err));
    if (quantized) {
        if (w->dtype != MT_U32) return mt_seterr(err, MT_EFORMAT, "tensor '%s': quantized weight must be U32", SHOWN(name));
        if (w->ndim != 2) return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected 2 dims", SHOWN(name));
        size_t K = (size_t)w->shape[1] * 32 / (size_t)qp.bits;
        if (!in) in = K;
        if (!out) out = (size_t)w->shape[0];
        if (in % (size_t)qp.group_size || (in * (size_t)qp.bits) % 32)
            return mt_seterr(err, MT_EFORMAT, "'%s': %zu columns do not fit %d-bit groups of %d", SHOWN(path), in, qp.bits,
                             qp.group_size);
        int64_t ws[2] = {(int64_t)out, (int64_t)(in * (size_t)qp.bits / 32)};
        MT_TRY(check_shape(w, SHOWN(name), 2, ws, err));
        int64_t ss[2] = {(int64_t)out, (int64_t)(in / (size_t)qp.group_size)};
        const mt_tensor_view *sb[2] = {NULL, NULL};
        MT_TRY(mt_linear_bind_scales(st, path, qp.mode, 2, ss, sb, err));
        l->quantized = 1;
        l->mode = qp.mode;
        l->scales = sb[0]->data;
        l->biases = sb[1] ? sb[1]->data : NULL;
        l->sdt = mt_qmode_scale_dtype(qp.mode, sb[0]->dtype);
        l->bits = qp.bits;
        l->group_size = qp.group_size;
    } else {
        if (w->dtype != MT_F32 && w->dtype != MT_F16 && w->dtype != MT_BF16)
            return mt_seterr(err, MT_EFORMAT, "tensor '%s': dtype %s, expected F32, F16 or BF16", SHOWN(name),
                             mt_dtype_name(w->dtype));
        int64_t ws[2] = {(int64_t)out, (int64_t)in};
        MT_TRY(check_shape(w, SHOWN(name), 2, ws, err));
        out = (size_t)w->shape[0];
        in = (size_t)w->shape[1];
        l->wdt = w->dtype;
    }
    l->w = w->data;
    l->out = out;
    l->in = in;
    if (need_bias >= 0) {
        snprintf(name, sizeof name, "%s.bias", path);
        const mt_tensor_view *b = mt_safetensors_get(st, name);
        if (!b && need_bias > 0) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", SHOWN(name));
        if (b) {
            int64_t bs[1] = {(int64_t)out};
            MT_TRY(check_shape(b, SHOWN(name), 1, bs, err));
            if (!mt_dtype_is_float(b->dtype) || b->dtype == MT_F64)
                return mt_seterr(err, MT_EFORMAT, "tensor '%s': not F32/F16/BF16", SHOWN(name));
            l->bias = b->data;
            l->bdt = b->dtype;
        }
    }
    return MT_OK;
}

static void qmat_of(const mt_linear *l, mt_qmat *m);

void mt_linear_row(const mt_linear *l, size_t r, float *out) {
    if (l->ternary) {
        mt_bitlinear_row(l, r, out);
    } else if (l->quantized && l->mode != MT_QMODE_AFFINE) {   /* mx.dequantize's default type: bfloat16 */
        size_t groups = l->in / (size_t)l->group_size;
        mt_qfp_row_f32(out, (const uint8_t *)l->w + r * (l->in * (size_t)l->bits / 8),
                       (const uint8_t *)l->scales + r * groups, l->mode, l->in, 1);
    } else if (l->quantized) {
        size_t words = mt_quant_row_words(l->in, l->bits), groups = l->in / (size_t)l->group_size;
        size_t ss = mt_dtype_size(l->sdt);
        mt_dequantize_affine_row(out, (const uint32_t *)l->w + r * words, (const char *)l->scales + r * groups * ss,
                                 (const char *)l->biases + r * groups * ss, l->sdt, l->in, l->bits, l->group_size,
                                 NULL);
    } else {
        mt_convert_to_f32(out, (const char *)l->w + r * l->in * mt_dtype_size(l->wdt), l->wdt, l->in);
    }
}

void mt_linear_row_f32(const mt_linear *l, size_t r, float *out) {
    if (!l->quantized) {
        mt_linear_row(l, r, out);
        return;
    }
    size_t words = mt_quant_row_words(l->in, l->bits), groups = l->in / (size_t)l->group_size;
    if (l->mode != MT_QMODE_AFFINE) {
        mt_qmat m;
        qmat_of(l, &m);
        mt_kfp_row_f32(mt_cpu_level(), &m, r, out);
        return;
    }
    size_t ss = mt_dtype_size(l->sdt);
    mt_dequantize_affine_row_f32(out, (const uint32_t *)l->w + r * words, (const char *)l->scales + r * groups * ss,
                                 (const char *)l->biases + r * groups * ss, l->sdt, l->in, l->bits, l->group_size,
                                 NULL);
}

/* ---- reference (plain C, single thread): dequantize a row, float dot ---- */

static float dot_ref(const float *a, const float *b, size_t n) {
    float s = 0.f;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void mt_linear_add_bias(const mt_linear *l, size_t T, float *y) {
    if (!l->bias) return;
    float b[4096];
    for (size_t r0 = 0; r0 < l->out; r0 += 4096) {   /* bias converted in chunks, y walked row by row */
        size_t n = l->out - r0 < 4096 ? l->out - r0 : 4096;
        mt_convert_to_f32(b, (const char *)l->bias + r0 * mt_dtype_size(l->bdt), l->bdt, n);
        for (size_t t = 0; t < T; t++)
            for (size_t i = 0; i < n; i++) y[t * l->out + r0 + i] += b[i];
    }
}

int mt_linear_forward_ref(const mt_linear *l, const float *x, size_t T, float *y) {
    float *row = malloc((l->in ? l->in : 1) * sizeof *row);
    if (!row) return MT_ENOMEM;
    for (size_t r = 0; r < l->out; r++) {
        mt_linear_row_f32(l, r, row);
        for (size_t t = 0; t < T; t++) y[t * l->out + r] = dot_ref(x + t * l->in, row, l->in);
    }
    free(row);
    mt_linear_add_bias(l, T, y);
    return MT_OK;
}

/* ---- fast paths -------------------------------------------------------- */

static void qmat_of(const mt_linear *l, mt_qmat *m) {
    m->w = l->w;
    m->s = l->scales;
    m->b = l->biases;
    m->sdt = l->sdt;
    m->K = l->in;
    m->row_bytes = l->in * (size_t)l->bits / 8;
    m->ng = l->in / (size_t)l->group_size;
    m->bits = l->bits;
    m->gs = l->group_size;
    m->mode = l->mode;
}

typedef struct kq_ctx {
    const mt_qmat *m;
    const mt_linear *l;
    const float *xp, *gsum, *x;
    size_t T;
    float *y;
    int level;
    int rows1;           /* each token alone (mt_linear_forward_rows1): token sets of 1, not 8 */
} kq_ctx;

static void kq_job(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    kq_ctx *k = c;
    /* blocks of 16 rows x 8 tokens: a block's codes stay in cache across the
     * token sets, a chunk of 8 tokens' x stays in L1 across the rows */
    const mt_qmat *m = k->m;
    size_t set = k->rows1 ? 1 : 8;
    for (size_t r = b; r < e; r += 16) {
        size_t re = e - r < 16 ? e : r + 16;
        for (size_t t = 0; t < k->T; t += set)
            mt_kq_rows(k->level, m, k->xp + t * m->K, k->gsum + t * m->ng, k->T - t < set ? k->T - t : set,
                       k->y + t * k->l->out, k->l->out, r, re);
    }
}

static void kd_job(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    kq_ctx *k = c;
    mt_kd_rows(k->level, k->l->w, k->l->wdt, k->l->in, k->x, k->T, k->y, k->l->out, b, e);
}

/* Tile of rows [r0, r0+n) as float32 into buf[n, in]. */
typedef struct tile_ctx {
    const mt_linear *l;
    size_t r0;
    float *buf;
} tile_ctx;

static void tile_job(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    tile_ctx *t = c;
    for (size_t r = b; r < e; r++) mt_linear_row_f32(t->l, t->r0 + r, t->buf + r * t->l->in);
}

#define TILE_FLOATS ((size_t)1 << 20) /* 4 MiB of float32 per tile */

/* Rows [b, e) of W per thread: each converts its own tiles and multiplies
 * them with a one-thread sgemm (no barrier between conversion and product,
 * no OpenBLAS threads competing with the pool's). */
typedef struct tiles_ctx {
    const mt_linear *l;
    const float *x;
    size_t T, R;
    float *y;
    int failed;
} tiles_ctx;

static void tiles_job(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    tiles_ctx *k = c;
    const mt_linear *l = k->l;
    float *buf = malloc(k->R * l->in * sizeof *buf);
    if (!buf) { k->failed = 1; return; }
    for (size_t r0 = b; r0 < e; r0 += k->R) {
        size_t n = e - r0 < k->R ? e - r0 : k->R;
        for (size_t r = 0; r < n; r++) mt_linear_row_f32(l, r0 + r, buf + r * l->in);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)k->T, (int)n, (int)l->in, 1.0f, k->x, (int)l->in,
                    buf, (int)l->in, 0.0f, k->y + r0, (int)l->out);
    }
    free(buf);
}

static void f32_rows_job(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    tiles_ctx *k = c;
    const mt_linear *l = k->l;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)k->T, (int)(e - b), (int)l->in, 1.0f, k->x, (int)l->in,
                (const float *)l->w + b * l->in, (int)l->in, 0.0f, k->y + b, (int)l->out);
}

#define SPLIT_TILE_FLOATS ((size_t)1 << 20) /* 4 MiB of float32 per thread's tile (pp512: 2^21 is ~3% faster, 2^18 ~10% slower; peak RSS counts the tiles) */

/* Returns 0, or -1 when the tile buffer could not be allocated. */
static int forward_tiles(const mt_linear *l, const float *x, size_t T, float *y, mt_pool *pool) {
    if (mt_blas_pool_splits(pool)) {
        size_t R = SPLIT_TILE_FLOATS / (l->in ? l->in : 1);
        if (R < 16) R = 16;
        tiles_ctx k = {l, x, T, R, y, 0};
        mt_pool_for(pool, l->out, 16, tiles_job, &k);
        if (!k.failed) return 0;
    }
    size_t R = TILE_FLOATS / (l->in ? l->in : 1);
    if (R < 16) R = 16;
    if (R > l->out) R = l->out;
    float *buf = malloc(R * l->in * sizeof *buf);
    if (!buf) return -1;
    for (size_t r0 = 0; r0 < l->out; r0 += R) {
        size_t n = l->out - r0 < R ? l->out - r0 : R;
        tile_ctx tc = {l, r0, buf};
        mt_pool_for(pool, n, 8, tile_job, &tc);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)n, (int)l->in, 1.0f, x, (int)l->in, buf,
                    (int)l->in, 0.0f, y + r0, (int)l->out);
    }
    free(buf);
    return 0;
}

/* ---- int8 activations ------------------------------------------------- */

int mt_qmath_parse(const char *s) {
    if (!s || !*s) return MT_QMATH_AUTO;
    if (!strcmp(s, "float")) return MT_QMATH_FLOAT;
    if (!strcmp(s, "int8")) return MT_QMATH_INT8;
    return -1;
}

int mt_linear_qmath(const mt_linear *l) {
    if (l->qmath == MT_QMATH_FLOAT || l->qmath == MT_QMATH_INT8) return l->qmath;
    int q = mt_qmath_parse(getenv("MT_QMATH"));
    return q == MT_QMATH_INT8 ? q : MT_QMATH_FLOAT;
}

typedef struct i8_ctx {
    const mt_qmat *m;
    const float *x;
    int8_t *q;
    float *sx, *gsum, *y;
    size_t kp, nl, T, ldy;
    int level, tiles, failed;
} i8_ctx;

static void i8_prep_job(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    i8_ctx *k = c;
    for (size_t t = b; t < e; t++) {
        if (k->tiles) mt_ki8_prep_tiles(k->m, k->x + t * k->m->K, k->q + t * k->kp, k->sx + t * k->nl, k->gsum + t * k->m->ng);
        else mt_ki8_prep(k->level, k->m, k->x + t * k->m->K, k->q + t * k->kp, k->sx + t * k->nl, k->gsum + t * k->m->ng);
    }
}

/* rows [16b, 16e) in tiles of 16 (AVX-512 VNNI) */
static void i8_tiles_job(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    i8_ctx *k = c;
    void *scratch = malloc(mt_ki8_tiles_scratch(k->m));
    size_t out = k->ldy, r1 = 16 * e < out ? 16 * e : out;
    if (scratch) mt_ki8_tiles(k->m, k->q, k->sx, k->gsum, k->T, k->y, k->ldy, 16 * b, r1, scratch);
    else k->failed = 1;
    free(scratch);
}

#define I8_ROWS 16 /* rows of a tile: their codes stay in cache across the token tiles */
#define I8_TOK 8   /* tokens per kernel call (mt_ki8_rows) */
#ifndef I8_TILES_MIN_T
#define I8_TILES_MIN_T 2 /* from this T on, the 16-row tiles (VNNI) */
#endif

static void i8_job(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    i8_ctx *k = c;
    for (size_t r = b; r < e; r += I8_ROWS) {
        size_t re = e - r < I8_ROWS ? e : r + I8_ROWS;
        for (size_t t = 0; t < k->T; t += I8_TOK)
            mt_ki8_rows(k->level, k->m, k->q + t * k->kp, k->sx + t * k->nl, k->gsum + t * k->m->ng, k->kp, k->nl,
                        k->T - t < I8_TOK ? k->T - t : I8_TOK, k->y + t * k->ldy, k->ldy, r, re);
    }
}

/* Returns 0, or -1 when the buffers could not be allocated. */
static int forward_i8(const mt_linear *l, const mt_qmat *m, const float *x, size_t T, float *y, mt_pool *pool,
                      int level) {
    size_t kp, nl;
    int tiles = T >= I8_TILES_MIN_T && mt_ki8_tiles_ok(level, m);
    if (tiles) { kp = m->K; nl = m->ng; }
    else mt_ki8_layout(level, m, &kp, &nl);
    size_t fl = T * (nl + m->ng);
    float *fb = malloc(fl * sizeof *fb);
    int8_t *q = malloc(T * kp + 64);
    if (!fb || !q) { free(fb); free(q); return -1; }
    i8_ctx c = {m, x, q, fb, fb + T * nl, y, kp, nl, T, l->out, level, tiles, 0};
    mt_pool_for(T > 1 ? pool : NULL, T, 4, i8_prep_job, &c);
    if (tiles) mt_pool_for(pool, (l->out + 15) / 16, 1, i8_tiles_job, &c);
    else mt_pool_for(pool, l->out, 16, i8_job, &c);
    free(fb);
    free(q);
    return c.failed ? -1 : 0;
}

/* Largest T computed by the direct (matrix-vector) kernels; above it, tiles +
 * sgemm (bench/bench_kernels, CPU time, 1 thread: the direct kernels win up to
 * T = 24 on the benchmark shapes, 1.5-2.5x at T = 12-16, even at 32). */
#ifndef QMV_MAX_T
#define QMV_MAX_T 24
#endif
/* The same for dense F16/BF16 weights: one pass over W beats a float32 tile
 * copy + sgemm up to about 8 rows (2 threads, 384x384 .. 8192x2048: 1.2-6x
 * at T = 5, even at 8, 1.2-1.6x slower at 16); whisper's beams use it. */
#ifndef DMV_MAX_T
#define DMV_MAX_T 8
#endif

void mt_linear_forward(const mt_linear *l, const float *x, size_t T, float *y, float *work, mt_pool *pool) {
    int level = mt_cpu_level();
    if (!T || !l->out) return;
    if (l->ternary) { mt_bitlinear_forward(l, x, T, y, pool); return; }
    if (l->quantized) {
        mt_qmat m;
        qmat_of(l, &m);
        if (mt_linear_qmath(l) == MT_QMATH_INT8 && mt_ki8_supported(&m) && forward_i8(l, &m, x, T, y, pool, level) == 0) {
            mt_linear_add_bias(l, T, y);
            return;
        }
        if (T > QMV_MAX_T && forward_tiles(l, x, T, y, pool) == 0) { mt_linear_add_bias(l, T, y); return; }
        /* xp 64-byte aligned: the kernels' 64-byte loads of it then never
         * straddle two cache lines (measured 1.6x at 8 tokens) */
        float gstack[1024], *xp = NULL, *gsum = NULL, *heap = NULL;
        if (T == 1 && work && m.ng <= 1024 && mt_linear_work_align(work) == work) { xp = work; gsum = gstack; }
        else {
            size_t nx = (T * m.K + 15) & ~(size_t)15;
            heap = aligned_alloc(64, (nx + T * m.ng + 15) / 16 * 16 * sizeof *heap);
            if (!heap) { mt_linear_forward_ref(l, x, T, y); return; }
            xp = heap;
            gsum = heap + nx;
        }
        for (size_t t = 0; t < T; t++) mt_kq_prep(level, &m, x + t * m.K, xp + t * m.K, gsum + t * m.ng);
        kq_ctx c = {&m, l, xp, gsum, x, T, y, level, 0};
        mt_pool_for(pool, l->out, 16, kq_job, &c);
        free(heap);
    } else if (T > 1 && l->wdt == MT_F32 && mt_blas_pool_splits(pool)) {
        tiles_ctx k = {l, x, T, 0, y, 0};   /* rows of W split over the pool, one-thread sgemm each */
        mt_pool_for(pool, l->out, 16, f32_rows_job, &k);
    } else if (T > 1 && l->wdt == MT_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)l->out, (int)l->in, 1.0f, x, (int)l->in,
                    (const float *)l->w, (int)l->in, 0.0f, y, (int)l->out);
    } else {
        if (T > DMV_MAX_T && forward_tiles(l, x, T, y, pool) == 0) { mt_linear_add_bias(l, T, y); return; }
        kq_ctx c = {NULL, l, NULL, NULL, x, T, y, level, 0};
        mt_pool_for(pool, l->out, 16, kd_job, &c);
    }
    mt_linear_add_bias(l, T, y);
}

/* ---- rows computed as alone ---- */

/* Each of the T rows as mt_linear_forward computes it for T = 1, so that a row's result does
 * not depend on the rows batched with it (continuous batching: an answer must not depend on
 * its neighbours).  The weights are still read from memory once for all rows: the rows run
 * one after another over each block of 16 weight rows while it is in cache.  Only the
 * per-token work that the multi-token kernels share (unpacking the codes once for 8 tokens)
 * is repeated. */
static void kd1_job(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    kq_ctx *k = c;
    for (size_t r = b; r < e; r += 16) {
        size_t re = e - r < 16 ? e : r + 16;
        for (size_t t = 0; t < k->T; t++)
            mt_kd_rows(k->level, k->l->w, k->l->wdt, k->l->in, k->x + t * k->l->in, 1, k->y + t * k->l->out,
                       k->l->out, r, re);
    }
}

void mt_linear_forward_rows1(const mt_linear *l, const float *x, size_t T, float *y, float *work, mt_pool *pool) {
    int level = mt_cpu_level();
    if (l->ternary) { mt_bitlinear_forward_rows1(l, x, T, y, pool); return; }
    if (T <= 1 || !l->out) {
        mt_linear_forward(l, x, T, y, work, pool);
        return;
    }
    if (l->quantized) {
        mt_qmat m;
        qmat_of(l, &m);
        if (mt_linear_qmath(l) == MT_QMATH_INT8 && mt_ki8_supported(&m)) {   /* --int8: one call per row */
            for (size_t t = 0; t < T; t++) mt_linear_forward(l, x + t * l->in, 1, y + t * l->out, work, pool);
            return;
        }
        size_t nx = (T * m.K + 15) & ~(size_t)15;
        float *heap = aligned_alloc(64, (nx + T * m.ng + 15) / 16 * 16 * sizeof *heap);
        if (!heap) {
            for (size_t t = 0; t < T; t++) mt_linear_forward(l, x + t * l->in, 1, y + t * l->out, work, pool);
            return;
        }
        float *xp = heap, *gsum = heap + nx;
        for (size_t t = 0; t < T; t++) mt_kq_prep(level, &m, x + t * m.K, xp + t * m.K, gsum + t * m.ng);
        kq_ctx c = {&m, l, xp, gsum, x, T, y, level, 1};
        mt_pool_for(pool, l->out, 16, kq_job, &c);
        free(heap);
    } else {
        kq_ctx c = {NULL, l, NULL, NULL, x, T, y, level, 0};
        mt_pool_for(pool, l->out, 16, kd1_job, &c);
    }
    mt_linear_add_bias(l, T, y);
}

