/* conv1d.c - 1-D (transposed) convolution as im2col + sgemm over the pool,
 * weight-norm folding.  See conv1d.h for the formulas and layouts.
 * ref: mlx_audio/tts/models/kokoro/istftnet.py (ConvWeighted, weight_norm). */
#include "tensor/conv1d.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/cpu.h"
#include "tensor/kernels.h"
#include "tensor/linear.h"
#include "tensor/quant.h"

#define CONV_COLS_FLOATS (1u << 18)   /* im2col tile budget: 1 MiB per thread */
#define CONV_ROW_BLOCK 256            /* output rows per job */

/* ------------------------------------------------------------------ set-up */

void mt_weight_norm_fold(float *w, const float *v, const float *g, size_t n0, size_t inner) {
    for (size_t i = 0; i < n0; i++) {
        const float *vi = v + i * inner;
        double ss = 0.0;
        for (size_t j = 0; j < inner; j++) ss += (double)vi[j] * vi[j];
        float d = sqrtf((float)ss) + 1e-7f;   /* norm + 1e-7, as mlx-audio */
        float gi = g[i];
        float *wi = w + i * inner;
        for (size_t j = 0; j < inner; j++) wi[j] = (vi[j] / d) * gi;
    }
}

static int check_shape(const mt_conv1d_shape *s, mt_err *err) {
    if (!s || s->c_in < 1 || s->c_out < 1 || s->k < 1 || s->stride < 1 || s->dilation < 1 || s->groups < 1 ||
        s->pad < 0 || s->out_pad < 0)
        return mt_seterr(err, MT_EINVAL, "conv1d: shape field out of range");
    if (s->c_in % s->groups || s->c_out % s->groups)
        return mt_seterr(err, MT_EINVAL, "conv1d: channels %d -> %d not divisible by groups %d", s->c_in, s->c_out,
                         s->groups);
    if ((size_t)s->c_out * (size_t)s->k * (size_t)(s->c_in / s->groups) > (SIZE_MAX / 8) / sizeof(float))
        return mt_seterr(err, MT_EINVAL, "conv1d: weight too large");
    return MT_OK;
}

static int init_common(mt_conv1d *c, const mt_conv1d_shape *s, const float *b, mt_err *err) {
    memset(c, 0, sizeof *c);   /* (i8 = NULL) */
    MT_TRY(check_shape(s, err));
    c->s = *s;
    size_t n = (size_t)s->c_out * (size_t)s->k * (size_t)(s->c_in / s->groups);
    c->w = malloc(n * sizeof(float));
    if (b) c->b = malloc((size_t)s->c_out * sizeof(float));
    if (!c->w || (b && !c->b)) {
        mt_conv1d_free(c);
        return mt_seterr(err, MT_ENOMEM, "conv1d: out of memory");
    }
    if (b) memcpy(c->b, b, (size_t)s->c_out * sizeof(float));
    return MT_OK;
}

/* Copy src (in layout) into c->w ([c_out, k, cg]). */
static void copy_layout(mt_conv1d *c, const float *src, int layout) {
    const mt_conv1d_shape *s = &c->s;
    size_t k = (size_t)s->k, cg = (size_t)(s->c_in / s->groups), co = (size_t)s->c_out;
    if (layout == MT_CONV_W_OKI) {
        memcpy(c->w, src, co * k * cg * sizeof(float));
        return;
    }
    for (size_t o = 0; o < co; o++)
        for (size_t j = 0; j < k; j++)
            for (size_t i = 0; i < cg; i++) {
                size_t at;
                if (layout == MT_CONV_W_IKO) at = (i * k + j) * co + o;        /* [c_in, k, c_out] */
                else if (layout == MT_CONV_W_OIK) at = (o * cg + i) * k + j;   /* [c_out, cg, k] */
                else at = (i * co + o) * k + j;                                /* [c_in, c_out, k] */
                c->w[(o * k + j) * cg + i] = src[at];
            }
}

static int check_layout(const mt_conv1d_shape *s, int layout, mt_err *err) {
    if (layout < MT_CONV_W_OKI || layout > MT_CONV_W_IOK)
        return mt_seterr(err, MT_EINVAL, "conv1d: unknown weight layout %d", layout);
    if ((layout == MT_CONV_W_IKO || layout == MT_CONV_W_IOK) && s && s->groups != 1)
        return mt_seterr(err, MT_EINVAL, "conv1d: the [in, ..., out] weight layouts need groups 1");
    return MT_OK;
}

int mt_conv1d_init(mt_conv1d *c, const mt_conv1d_shape *s, const float *w, int layout, const float *b,
                   mt_err *err) {
    if (!c) return mt_seterr(err, MT_EINVAL, "conv1d: no conv");
    memset(c, 0, sizeof *c);
    MT_TRY(check_layout(s, layout, err));
    if (!w) return mt_seterr(err, MT_EINVAL, "conv1d: no weight");
    MT_TRY(init_common(c, s, b, err));
    copy_layout(c, w, layout);
    return MT_OK;
}

int mt_conv1d_init_wn(mt_conv1d *c, const mt_conv1d_shape *s, const float *v, const float *g, int layout,
                      const float *b, mt_err *err) {
    if (!c) return mt_seterr(err, MT_EINVAL, "conv1d: no conv");
    memset(c, 0, sizeof *c);
    MT_TRY(check_layout(s, layout, err));
    if (!v || !g) return mt_seterr(err, MT_EINVAL, "conv1d: no weight_v / weight_g");
    MT_TRY(init_common(c, s, b, err));
    size_t n0 = (size_t)(layout == MT_CONV_W_OKI || layout == MT_CONV_W_OIK ? s->c_out : s->c_in);
    size_t inner = (size_t)s->c_out * (size_t)s->k * (size_t)(s->c_in / s->groups) / n0;
    float *tmp = malloc(n0 * inner * sizeof(float));
    if (!tmp) {
        mt_conv1d_free(c);
        return mt_seterr(err, MT_ENOMEM, "conv1d: out of memory");
    }
    mt_weight_norm_fold(tmp, v, g, n0, inner);
    copy_layout(c, tmp, layout);
    free(tmp);
    return MT_OK;
}

struct mt_conv1d_i8 {
    mt_linear lin;        /* [c_out, k*c_in] as 8-bit codes, F32 scales/biases, qmath int8 */
    uint32_t *codes;
    float *scales, *biases;
};

static void i8_free(mt_conv1d_i8 *q) {
    if (!q) return;
    free(q->codes);
    free(q->scales);
    free(q->biases);
    free(q);
}

void mt_conv1d_free(mt_conv1d *c) {
    if (!c) return;
    free(c->w);
    free(c->b);
    i8_free(c->i8);
    c->w = c->b = NULL;
    c->i8 = NULL;
}

size_t mt_conv1d_out_len(const mt_conv1d_shape *s, size_t T) {
    if (!s || T == 0) return 0;
    size_t span = (size_t)s->dilation * (size_t)(s->k - 1);
    if (s->transposed) {
        size_t full = (T - 1) * (size_t)s->stride + span + (size_t)s->out_pad + 1;
        return full > 2 * (size_t)s->pad ? full - 2 * (size_t)s->pad : 0;
    }
    size_t padded = T + 2 * (size_t)s->pad;
    if (padded < span + 1) return 0;
    return (padded - span - 1) / (size_t)s->stride + 1;
}

/* ------------------------------------------------------------------ reference */

int mt_conv1d_forward_ref(const mt_conv1d *c, const float *x, size_t T, float *y, mt_err *err) {
    const mt_conv1d_shape *s = &c->s;
    size_t To = mt_conv1d_out_len(s, T);
    if (!To) return mt_seterr(err, MT_EINVAL, "conv1d: input of %zu samples too short", T);
    int cg = s->c_in / s->groups, og = s->c_out / s->groups, k = s->k;
    for (int o = 0; o < s->c_out; o++) {
        float b = c->b ? c->b[o] : 0.0f;
        for (size_t t = 0; t < To; t++) y[(size_t)o * To + t] = b;
    }
    for (int o = 0; o < s->c_out; o++) {
        int g = o / og;
        float *yo = y + (size_t)o * To;
        for (int j = 0; j < k; j++)
            for (int cc = 0; cc < cg; cc++) {
                float w = c->w[((size_t)o * k + j) * cg + cc];
                const float *xc = x + (size_t)(g * cg + cc) * T;
                if (!s->transposed) {
                    for (size_t t = 0; t < To; t++) {
                        long long p = (long long)t * s->stride + (long long)j * s->dilation - s->pad;
                        if (p >= 0 && p < (long long)T) yo[t] += w * xc[p];
                    }
                } else {
                    for (size_t i = 0; i < T; i++) {
                        long long p = (long long)i * s->stride + (long long)j * s->dilation - s->pad;
                        if (p >= 0 && p < (long long)To) yo[p] += w * xc[i];
                    }
                }
            }
    }
    return MT_OK;
}

/* ------------------------------------------------------------------ fast path */

typedef struct conv_job {
    const mt_conv1d *c;
    const float *x;
    float *y;
    size_t T, To;
    size_t tile, ntiles, rb, nrb;   /* time tile, tiles, rows per block, row blocks per group */
    float **scratch;            /* per thread */
} conv_job;

/* cols[(j*cg + cc) * nt + u] = x[g*cg + cc, (t0+u)*stride + j*dil - pad] (0 outside) */
static void im2col(const conv_job *J, int g, size_t t0, size_t nt, float *cols) {
    const mt_conv1d_shape *s = &J->c->s;
    int cg = s->c_in / s->groups;
    for (int j = 0; j < s->k; j++)
        for (int cc = 0; cc < cg; cc++) {
            const float *xc = J->x + (size_t)(g * cg + cc) * J->T;
            float *dst = cols + ((size_t)j * cg + cc) * nt;
            long long p0 = (long long)t0 * s->stride + (long long)j * s->dilation - s->pad;
            if (s->stride == 1 && p0 >= 0 && p0 + (long long)nt <= (long long)J->T) {
                memcpy(dst, xc + p0, nt * sizeof(float));
                continue;
            }
            for (size_t u = 0; u < nt; u++) {
                long long p = p0 + (long long)u * s->stride;
                dst[u] = (p >= 0 && p < (long long)J->T) ? xc[p] : 0.0f;
            }
        }
}

static void conv_run(void *ctx, size_t begin, size_t end, int tid) {
    const conv_job *J = ctx;
    const mt_conv1d_shape *s = &J->c->s;
    int cg = s->c_in / s->groups, og = s->c_out / s->groups;
    size_t K = (size_t)s->k * (size_t)cg;
    float *cols = J->scratch[tid];
    long long built = -1;   /* (g, tile) whose columns are in cols */
    for (size_t jb = begin; jb < end; jb++) {
        size_t g = jb / (J->ntiles * J->nrb), r = jb % (J->ntiles * J->nrb);
        size_t ti = r / J->nrb, rb = r % J->nrb;
        size_t t0 = ti * J->tile, nt = J->To - t0 < J->tile ? J->To - t0 : J->tile;
        long long key = (long long)(g * J->ntiles + ti);
        if (key != built) {
            im2col(J, (int)g, t0, nt, cols);
            built = key;
        }
        size_t r0 = rb * J->rb, r1 = r0 + J->rb < (size_t)og ? r0 + J->rb : (size_t)og;
        size_t o0 = g * (size_t)og + r0;
        float *yc = J->y + o0 * J->To + t0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)nt, (int)K, 1.0f,
                    J->c->w + o0 * K, (int)K, cols, (int)nt, 0.0f, yc, (int)J->To);
        if (J->c->b)
            for (size_t o = r0; o < r1; o++) {
                float b = J->c->b[g * (size_t)og + o];
                float *yr = yc + (o - r0) * J->To;
                for (size_t u = 0; u < nt; u++) yr[u] += b;
            }
    }
}

/* Depthwise (one input, one output channel per group), both kinds: channel by channel. */
static void dw_run(void *ctx, size_t begin, size_t end, int tid) {
    (void)tid;
    const conv_job *J = ctx;
    const mt_conv1d_shape *s = &J->c->s;
    for (size_t o = begin; o < end; o++) {
        const float *xc = J->x + o * J->T, *w = J->c->w + o * (size_t)s->k;
        float *yo = J->y + o * J->To;
        float b = J->c->b ? J->c->b[o] : 0.0f;
        if (!s->transposed) {
            for (size_t t = 0; t < J->To; t++) {
                float acc = 0.0f;
                long long p0 = (long long)t * s->stride - s->pad;
                for (int j = 0; j < s->k; j++) {
                    long long p = p0 + (long long)j * s->dilation;
                    if (p >= 0 && p < (long long)J->T) acc += w[j] * xc[p];
                }
                yo[t] = acc + b;
            }
        } else {
            for (size_t t = 0; t < J->To; t++) yo[t] = 0.0f;
            for (size_t i = 0; i < J->T; i++)
                for (int j = 0; j < s->k; j++) {
                    long long p = (long long)i * s->stride + (long long)j * s->dilation - s->pad;
                    if (p >= 0 && p < (long long)J->To) yo[p] += w[j] * xc[i];
                }
            for (size_t t = 0; t < J->To; t++) yo[t] += b;
        }
    }
}

/* Transposed, general: a job is (group, block of output rows); the products
 * Z[(o, j), i] = sum_c w[o, j, c] x[c, i] for a tile of inputs, then Z is
 * added into y at i*stride + j*dil - pad. */
static void convt_run(void *ctx, size_t begin, size_t end, int tid) {
    const conv_job *J = ctx;
    const mt_conv1d_shape *s = &J->c->s;
    int cg = s->c_in / s->groups, og = s->c_out / s->groups, k = s->k;
    float *Z = J->scratch[tid];
    for (size_t jb = begin; jb < end; jb++) {
        size_t g = jb / J->nrb, rb = jb % J->nrb;
        size_t r0 = rb * J->rb, r1 = r0 + J->rb < (size_t)og ? r0 + J->rb : (size_t)og;
        size_t o0 = g * (size_t)og + r0, M = (r1 - r0) * (size_t)k;
        for (size_t o = o0; o < o0 + (r1 - r0); o++) {
            float b = J->c->b ? J->c->b[o] : 0.0f;
            for (size_t t = 0; t < J->To; t++) J->y[o * J->To + t] = b;
        }
        for (size_t i0 = 0; i0 < J->T; i0 += J->tile) {
            size_t nt = J->T - i0 < J->tile ? J->T - i0 : J->tile;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)nt, cg, 1.0f,
                        J->c->w + o0 * (size_t)k * (size_t)cg, cg, J->x + g * (size_t)cg * J->T + i0, (int)J->T,
                        0.0f, Z, (int)nt);
            for (size_t o = 0; o < r1 - r0; o++) {
                float *yo = J->y + (o0 + o) * J->To;
                for (int j = 0; j < k; j++) {
                    const float *z = Z + (o * (size_t)k + (size_t)j) * nt;
                    long long p0 = (long long)i0 * s->stride + (long long)j * s->dilation - s->pad;
                    for (size_t u = 0; u < nt; u++) {
                        long long p = p0 + (long long)u * s->stride;
                        if (p >= 0 && p < (long long)J->To) yo[p] += z[u];
                    }
                }
            }
        }
    }
}

/* ------------------------------------------------------------------ int8 form */

int mt_conv1d_int8(mt_conv1d *c, int *done, mt_err *err) {
    int dummy;
    if (!done) done = &dummy;
    *done = 0;
    if (!c || !c->w) return mt_seterr(err, MT_EINVAL, "conv1d: missing argument");
    const mt_conv1d_shape *s = &c->s;
    size_t K = (size_t)s->k * (size_t)s->c_in, O = (size_t)s->c_out;
    *done = c->i8 != NULL;
    if (c->i8 || s->transposed || s->groups != 1 || K % 32) return MT_OK;
    int gs = K % 64 ? 32 : 64;
    mt_conv1d_i8 *q = calloc(1, sizeof *q);
    if (!q) return mt_seterr(err, MT_ENOMEM, "conv1d: out of memory");
    q->codes = malloc(O * (K / 4) * sizeof(uint32_t));
    q->scales = malloc(O * (K / (size_t)gs) * sizeof(float));
    q->biases = malloc(O * (K / (size_t)gs) * sizeof(float));
    if (!q->codes || !q->scales || !q->biases) {
        i8_free(q);
        return mt_seterr(err, MT_ENOMEM, "conv1d: out of memory");
    }
    /* the weights [c_out, k, c_in] are already the rows [c_out, k*c_in] of the product */
    int rc = mt_quantize_affine(q->codes, q->scales, q->biases, MT_F32, c->w, O, K, 8, gs, 0, err);
    if (rc) {
        i8_free(q);
        return rc;
    }
    q->lin = (mt_linear){.out = O, .in = K, .quantized = 1, .w = q->codes, .scales = q->scales,
                         .biases = q->biases, .sdt = MT_F32, .bits = 8, .group_size = gs, .qmath = MT_QMATH_INT8};
    c->i8 = q;
    *done = 1;
    return MT_OK;
}

#define I8_TILE 1024   /* output samples per product */

typedef struct i8_job {
    const mt_conv1d *c;
    const float *x;    /* [c_in, T] */
    float *xT;         /* [T, c_in] */
    float *cols;       /* [nt, k*c_in] */
    float *yT;         /* [nt, c_out] */
    float *y;          /* [c_out, To] */
    size_t T, To, t0, nt;
} i8_job;

static void i8_transpose(void *ctx, size_t begin, size_t end, int tid) {   /* rows of xT */
    (void)tid;
    const i8_job *J = ctx;
    size_t C = (size_t)J->c->s.c_in;
    for (size_t t = begin; t < end; t++)
        for (size_t ch = 0; ch < C; ch++) J->xT[t * C + ch] = J->x[ch * J->T + t];
}

static void i8_cols(void *ctx, size_t begin, size_t end, int tid) {   /* rows of cols */
    (void)tid;
    const i8_job *J = ctx;
    const mt_conv1d_shape *s = &J->c->s;
    size_t C = (size_t)s->c_in, K = (size_t)s->k * C;
    for (size_t u = begin; u < end; u++) {
        long long p0 = (long long)(J->t0 + u) * s->stride - s->pad;
        for (int j = 0; j < s->k; j++) {
            long long p = p0 + (long long)j * s->dilation;
            float *dst = J->cols + u * K + (size_t)j * C;
            if (p >= 0 && p < (long long)J->T) memcpy(dst, J->xT + (size_t)p * C, C * sizeof(float));
            else memset(dst, 0, C * sizeof(float));
        }
    }
}

static void i8_out(void *ctx, size_t begin, size_t end, int tid) {   /* rows of y */
    (void)tid;
    const i8_job *J = ctx;
    size_t O = (size_t)J->c->s.c_out;
    for (size_t o = begin; o < end; o++) {
        float b = J->c->b ? J->c->b[o] : 0.0f, *yo = J->y + o * J->To + J->t0;
        for (size_t u = 0; u < J->nt; u++) yo[u] = J->yT[u * O + o] + b;
    }
}

/* The fast form, where the VNNI tiles run and a weight group lies within one tap (gs
 * divides c_in): each input sample's channels are quantized once (per group, as the
 * tiles' preparation would quantize them in every im2col row that holds them: the same
 * codes, scales and sums), then the rows of a tile are assembled from those int8 codes. */
typedef struct i8q_job {
    const mt_conv1d *c;
    mt_qmat m, min;         /* the weights [c_out, k*c_in]; one input sample [c_in] */
    const float *xT;        /* [T, c_in] */
    int8_t *xq;             /* [T, c_in] */
    float *xs, *xg;         /* [T, c_in/gs] scales and sums */
    int8_t *q;              /* [nt, K] */
    float *sx, *gsum;       /* [nt, ng] */
    float *yT, *y;
    size_t T, To, t0, nt;
    int failed;
} i8q_job;

static void i8q_prep(void *ctx, size_t begin, size_t end, int tid) {   /* input samples */
    (void)tid;
    i8q_job *J = ctx;
    size_t C = (size_t)J->c->s.c_in, gi = J->min.ng;
    for (size_t t = begin; t < end; t++)
        mt_ki8_prep_tiles(&J->min, J->xT + t * C, J->xq + t * C, J->xs + t * gi, J->xg + t * gi);
}

static void i8q_rows(void *ctx, size_t begin, size_t end, int tid) {   /* rows of the tile */
    (void)tid;
    i8q_job *J = ctx;
    const mt_conv1d_shape *s = &J->c->s;
    size_t C = (size_t)s->c_in, K = J->m.K, gi = J->min.ng, ng = J->m.ng;
    for (size_t u = begin; u < end; u++) {
        long long p0 = (long long)(J->t0 + u) * s->stride - s->pad;
        for (int j = 0; j < s->k; j++) {
            long long p = p0 + (long long)j * s->dilation;
            int8_t *q = J->q + u * K + (size_t)j * C;
            float *sx = J->sx + u * ng + (size_t)j * gi, *gs = J->gsum + u * ng + (size_t)j * gi;
            if (p >= 0 && p < (long long)J->T) {
                memcpy(q, J->xq + (size_t)p * C, C);
                memcpy(sx, J->xs + (size_t)p * gi, gi * sizeof(float));
                memcpy(gs, J->xg + (size_t)p * gi, gi * sizeof(float));
            } else {   /* padding: zeros quantize to zero codes, scale 0, sum 0 */
                memset(q, 0, C);
                memset(sx, 0, gi * sizeof(float));
                memset(gs, 0, gi * sizeof(float));
            }
        }
    }
}

static void i8q_tiles(void *ctx, size_t begin, size_t end, int tid) {   /* 16-row tiles of the weights */
    (void)tid;
    i8q_job *J = ctx;
    size_t O = (size_t)J->c->s.c_out, r1 = 16 * end < O ? 16 * end : O;
    void *scratch = malloc(mt_ki8_tiles_scratch(&J->m));
    if (scratch) mt_ki8_tiles(&J->m, J->q, J->sx, J->gsum, J->nt, J->yT, O, 16 * begin, r1, scratch);
    else J->failed = 1;
    free(scratch);
}

static void i8q_out(void *ctx, size_t begin, size_t end, int tid) {   /* rows of y */
    (void)tid;
    i8q_job *J = ctx;
    size_t O = (size_t)J->c->s.c_out;
    for (size_t o = begin; o < end; o++) {
        float b = J->c->b ? J->c->b[o] : 0.0f, *yo = J->y + o * J->To + J->t0;
        for (size_t u = 0; u < J->nt; u++) yo[u] = J->yT[u * O + o] + b;
    }
}

/* Returns MT_OK, 1 when this form does not apply (the caller takes the other), or an error. */
static int forward_i8q(const mt_conv1d *c, const float *x, size_t T, size_t To, float *y, mt_pool *pool,
                       mt_err *err) {
    const mt_conv1d_shape *s = &c->s;
    const mt_linear *l = &c->i8->lin;
    size_t C = (size_t)s->c_in, O = (size_t)s->c_out, gs = (size_t)l->group_size;
    i8q_job J = {.c = c, .T = T, .To = To, .y = y};
    J.m = (mt_qmat){(const unsigned char *)l->w, (const unsigned char *)l->scales, (const unsigned char *)l->biases,
                    l->sdt, l->in, l->in, l->in / gs, 8, (int)gs, 0};
    J.min = J.m;
    J.min.K = C;
    J.min.row_bytes = C;
    J.min.ng = C / gs;
    if (C % gs || !mt_ki8_tiles_ok(mt_cpu_level(), &J.m) || !mt_ki8_supported(&J.min)) return 1;
    size_t tile = To < I8_TILE ? To : I8_TILE, K = l->in, ng = J.m.ng, gi = J.min.ng;
    float *xT = malloc(T * C * sizeof(float));
    J.xq = malloc(T * C + 64);
    J.xs = malloc(2 * T * gi * sizeof(float));
    J.q = malloc(tile * K + 64);
    J.sx = malloc(2 * tile * ng * sizeof(float));
    J.yT = malloc(tile * O * sizeof(float));
    int rc = MT_OK;
    if (!xT || !J.xq || !J.xs || !J.q || !J.sx || !J.yT) {
        rc = mt_seterr(err, MT_ENOMEM, "conv1d: out of memory (int8 buffers)");
        goto out;
    }
    J.xg = J.xs + T * gi;
    J.gsum = J.sx + tile * ng;
    J.xT = xT;
    i8_job tj = {.c = c, .x = x, .xT = xT, .T = T};
    mt_pool_for(pool, T, 64, i8_transpose, &tj);
    mt_pool_for(pool, T, 16, i8q_prep, &J);
    for (J.t0 = 0; J.t0 < To && !J.failed; J.t0 += tile) {
        J.nt = To - J.t0 < tile ? To - J.t0 : tile;
        mt_pool_for(pool, J.nt, 16, i8q_rows, &J);
        mt_pool_for(pool, (O + 15) / 16, 1, i8q_tiles, &J);
        mt_pool_for(pool, O, 8, i8q_out, &J);
    }
    if (J.failed) rc = mt_seterr(err, MT_ENOMEM, "conv1d: out of memory (int8 scratch)");
out:
    free(xT); free(J.xq); free(J.xs); free(J.q); free(J.sx); free(J.yT);
    return rc;
}

static int forward_i8(const mt_conv1d *c, const float *x, size_t T, size_t To, float *y, mt_pool *pool,
                      mt_err *err) {
    if (!getenv("MT_CONV_I8_SLOW")) {
        int r = forward_i8q(c, x, T, To, y, pool, err);
        if (r != 1) return r;
    }
    const mt_conv1d_shape *s = &c->s;
    size_t C = (size_t)s->c_in, K = (size_t)s->k * C, O = (size_t)s->c_out;
    size_t tile = To < I8_TILE ? To : I8_TILE;
    i8_job J = {.c = c, .x = x, .y = y, .T = T, .To = To};
    J.xT = malloc(T * C * sizeof(float));
    J.cols = malloc(tile * K * sizeof(float));
    J.yT = malloc(tile * O * sizeof(float));
    if (!J.xT || !J.cols || !J.yT) {
        free(J.xT); free(J.cols); free(J.yT);
        return mt_seterr(err, MT_ENOMEM, "conv1d: out of memory (int8 buffers)");
    }
    mt_pool_for(pool, T, 64, i8_transpose, &J);
    for (J.t0 = 0; J.t0 < To; J.t0 += tile) {
        J.nt = To - J.t0 < tile ? To - J.t0 : tile;
        mt_pool_for(pool, J.nt, 16, i8_cols, &J);
        mt_linear_forward(&c->i8->lin, J.cols, J.nt, J.yT, NULL, pool);
        mt_pool_for(pool, O, 8, i8_out, &J);
    }
    free(J.xT); free(J.cols); free(J.yT);
    return MT_OK;
}

int mt_conv1d_forward(const mt_conv1d *c, const float *x, size_t T, float *y, mt_pool *pool, mt_err *err) {
    if (!c || !c->w || !x || !y) return mt_seterr(err, MT_EINVAL, "conv1d: missing argument");
    const mt_conv1d_shape *s = &c->s;
    size_t To = mt_conv1d_out_len(s, T);
    if (!To) return mt_seterr(err, MT_EINVAL, "conv1d: input of %zu samples too short", T);
    if (T > (size_t)INT32_MAX || To > (size_t)INT32_MAX)
        return mt_seterr(err, MT_EINVAL, "conv1d: input of %zu samples too long", T);
    if (c->i8) return forward_i8(c, x, T, To, y, pool, err);
    int cg = s->c_in / s->groups, og = s->c_out / s->groups;
    conv_job J = {.c = c, .x = x, .y = y, .T = T, .To = To};
    if (cg == 1 && og == 1) {
        mt_pool_for(pool, (size_t)s->c_out, 1, dw_run, &J);
        return MT_OK;
    }
    int nth = pool ? mt_pool_size(pool) : 1;
    if (nth < 1) nth = 1;
    size_t per_row, njobs;
    J.rb = CONV_ROW_BLOCK;
    if (s->transposed) {   /* the rows are the only split: two blocks per thread */
        size_t per = ((size_t)og * (size_t)s->groups + 2 * (size_t)nth - 1) / (2 * (size_t)nth);
        if (per < 8) per = 8;
        if (per < J.rb) J.rb = per;
    }
    J.nrb = ((size_t)og + J.rb - 1) / J.rb;
    if (!s->transposed) {
        size_t K = (size_t)s->k * (size_t)cg;
        size_t tile = CONV_COLS_FLOATS / K;
        if (tile < 16) tile = 16;
        if (tile > 1024) tile = 1024;
        /* enough tiles for every thread when the rows alone would not split */
        size_t want = (size_t)nth * 2 / (J.nrb * (size_t)s->groups);
        if (want > 1 && To / want >= 64 && To / want < tile) tile = (To + want - 1) / want;
        if (tile > To) tile = To;
        J.tile = tile;
        J.ntiles = (To + tile - 1) / tile;
        per_row = K;
        njobs = (size_t)s->groups * J.ntiles * J.nrb;
    } else {
        size_t M = ((size_t)og < J.rb ? (size_t)og : J.rb) * (size_t)s->k;
        size_t tile = CONV_COLS_FLOATS / M;
        if (tile < 16) tile = 16;
        if (tile > 1024) tile = 1024;
        if (tile > T) tile = T;
        J.tile = tile;
        per_row = M;
        njobs = (size_t)s->groups * J.nrb;
    }
    float **scratch = calloc((size_t)nth, sizeof *scratch);
    int rc = MT_OK;
    if (!scratch) return mt_seterr(err, MT_ENOMEM, "conv1d: out of memory");
    for (int i = 0; i < nth && !rc; i++)
        if (!(scratch[i] = malloc(per_row * J.tile * sizeof(float))))
            rc = mt_seterr(err, MT_ENOMEM, "conv1d: out of memory (%zu floats of scratch)", per_row * J.tile);
    if (!rc) {
        J.scratch = scratch;
        mt_pool_for(pool, njobs, 1, s->transposed ? convt_run : conv_run, &J);
    }
    for (int i = 0; i < nth; i++) free(scratch[i]);
    free(scratch);
    return rc;
}
