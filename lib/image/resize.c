/* resize.c - Pillow's resampling for 8-bit RGB, reimplemented from its
 * semantics (see resize.h), and the HF rescale + normalize.
 * ref: Pillow src/libImaging/Resample.c, Geometry.c; transformers image_transforms.py */
#include "image/resize.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIX_BITS 22   /* fractional bits of the 8-bit path's weights: 32 - 8 - 2 */

/* ------------------------------------------------------------------ filters */

static double f_box(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

static double f_triangle(double x) {
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double f_hamming(double x) {
    x = fabs(x);
    if (x == 0.0) return 1.0;
    if (x >= 1.0) return 0.0;
    x *= M_PI;
    /* Pillow writes the window's constants as float literals */
    return sin(x) / x * ((double)0.54f + (double)0.46f * cos(x));
}

static double f_cubic(double x) {   /* Keys, a = -0.5 */
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static double sinc(double x) {
    if (x == 0.0) return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double f_lanczos(double x) { return -3.0 <= x && x < 3.0 ? sinc(x) * sinc(x / 3) : 0.0; }

typedef struct filter_def {
    double (*fn)(double);
    double support;
} filter_def;

/* indexed by enum mt_resample; NEAREST has its own path */
static const filter_def FILTERS[6] = {
    {NULL, 0.0}, {f_lanczos, 3.0}, {f_triangle, 1.0}, {f_cubic, 2.0}, {f_box, 0.5}, {f_hamming, 1.0},
};

static const char *const NAMES[6] = {"nearest", "lanczos", "bilinear", "bicubic", "box", "hamming"};

const char *mt_resample_name(int filter) { return filter >= 0 && filter < 6 ? NAMES[filter] : NULL; }

/* ------------------------------------------------------------------ coefficients */

/* One axis: for output i, taps start at first[i], count[i] of them, weights
 * w[i*ksize .. +count[i]] in fixed point. */
typedef struct axis {
    int ksize;
    int *first, *count;
    int32_t *w;
} axis;

static void axis_free(axis *a) {
    free(a->first);
    free(a->count);
    free(a->w);
    memset(a, 0, sizeof *a);
}

static int axis_make(axis *a, int in, int out, const filter_def *f, mt_err *err) {
    memset(a, 0, sizeof *a);
    double scale = (double)(float)in / out;   /* Pillow: (in1 - in0) in float, / outSize */
    double fscale = scale < 1.0 ? 1.0 : scale;
    double support = f->support * fscale;
    double ks = ceil(support) * 2 + 1;
    if (ks > 1e8 || ks * (double)out > 1e9) return mt_seterr(err, MT_ELIMIT, "resize: filter too wide");
    a->ksize = (int)ks;
    a->first = malloc(sizeof *a->first * out);
    a->count = malloc(sizeof *a->count * out);
    a->w = calloc((size_t)out * a->ksize, sizeof *a->w);
    double *k = malloc(sizeof *k * a->ksize);
    if (!a->first || !a->count || !a->w || !k) {
        free(k);
        axis_free(a);
        return mt_seterr(err, MT_ENOMEM, "resize: out of memory");
    }
    double ss = 1.0 / fscale;
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        if (lo < 0) lo = 0;
        int hi = (int)(center + support + 0.5);
        if (hi > in) hi = in;
        int n = hi - lo;
        if (n > a->ksize) n = a->ksize;   /* cannot happen; keeps the writes in bounds */
        if (n < 0) n = 0;
        double sum = 0.0;
        for (int t = 0; t < n; t++) {
            k[t] = f->fn((t + lo - center + 0.5) * ss);
            sum += k[t];
        }
        int32_t *wi = a->w + (size_t)i * a->ksize;
        for (int t = 0; t < n; t++) {
            double v = sum != 0.0 ? k[t] / sum : k[t];
            wi[t] = v < 0 ? (int32_t)(-0.5 + v * (1 << FIX_BITS)) : (int32_t)(0.5 + v * (1 << FIX_BITS));
        }
        a->first[i] = lo;
        a->count[i] = n;
    }
    free(k);
    return MT_OK;
}

static inline uint8_t clip_fix(int64_t acc) {
    int64_t v = acc >> FIX_BITS;   /* arithmetic shift: floor, as Pillow's int >> */
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* rows [y0, y0 + nrows) of src (sw wide) -> dst (dw wide, nrows high) */
static void pass_h(uint8_t *dst, int dw, const uint8_t *src, int sw, int y0, int nrows, const axis *a) {
    for (int y = 0; y < nrows; y++) {
        const uint8_t *row = src + (size_t)(y0 + y) * sw * 3;
        uint8_t *o = dst + (size_t)y * dw * 3;
        for (int x = 0; x < dw; x++) {
            const int32_t *k = a->w + (size_t)x * a->ksize;
            const uint8_t *p = row + (size_t)a->first[x] * 3;
            int64_t s0 = 1 << (FIX_BITS - 1), s1 = s0, s2 = s0;
            for (int t = 0; t < a->count[x]; t++) {
                s0 += (int64_t)p[3 * t] * k[t];
                s1 += (int64_t)p[3 * t + 1] * k[t];
                s2 += (int64_t)p[3 * t + 2] * k[t];
            }
            o[3 * x] = clip_fix(s0);
            o[3 * x + 1] = clip_fix(s1);
            o[3 * x + 2] = clip_fix(s2);
        }
    }
}

/* src (w wide) -> dst (w wide, dh high); a->first is relative to src's row 0 minus shift */
static void pass_v(uint8_t *dst, int dh, const uint8_t *src, int w, int shift, const axis *a) {
    size_t stride = (size_t)w * 3;
    for (int y = 0; y < dh; y++) {
        const int32_t *k = a->w + (size_t)y * a->ksize;
        const uint8_t *base = src + (size_t)(a->first[y] - shift) * stride;
        uint8_t *o = dst + (size_t)y * stride;
        for (size_t x = 0; x < stride; x++) {
            int64_t s = 1 << (FIX_BITS - 1);
            for (int t = 0; t < a->count[y]; t++) s += (int64_t)base[(size_t)t * stride + x] * k[t];
            o[x] = clip_fix(s);
        }
    }
}

/* Pillow's NEAREST resize: an affine scale with the source position of output
 * i = 0.5·step + i·step accumulated in double, truncated. */
static int nearest(mt_image *out, const mt_image *in) {
    int w = out->w, h = out->h;
    int *xs = malloc(sizeof *xs * w);
    if (!xs) return -1;
    double ax = (double)(float)in->w / w, ay = (double)(float)in->h / h;
    double xo = ax * 0.5;
    for (int x = 0; x < w; x++, xo += ax) {
        int xi = xo < 0.0 ? -1 : (int)xo;
        xs[x] = xi >= 0 && xi < in->w ? xi : -1;
    }
    double yo = ay * 0.5;
    for (int y = 0; y < h; y++, yo += ay) {
        int yi = yo < 0.0 ? -1 : (int)yo;
        uint8_t *o = out->rgb + (size_t)y * w * 3;
        if (yi < 0 || yi >= in->h) {
            memset(o, 0, (size_t)w * 3);
            continue;
        }
        const uint8_t *row = in->rgb + (size_t)yi * in->w * 3;
        for (int x = 0; x < w; x++) {
            if (xs[x] < 0) memset(o + 3 * x, 0, 3);
            else memcpy(o + 3 * x, row + 3 * xs[x], 3);
        }
    }
    free(xs);
    return 0;
}

int mt_image_resize(mt_image *out, const mt_image *in, int w, int h, int filter, mt_err *err) {
    return mt_image_resize_order(out, in, w, h, filter, MT_RESIZE_ORDER_PIL13, err);
}

int mt_image_resize_order(mt_image *out, const mt_image *in, int w, int h, int filter, int order, mt_err *err) {
    memset(out, 0, sizeof *out);
    if (filter < 0 || filter > 5) return mt_seterr(err, MT_EINVAL, "resize: unknown filter %d", filter);
    if (!in || !in->rgb || in->w < 1 || in->h < 1) return mt_seterr(err, MT_EINVAL, "resize: empty input image");
    if (w < 1 || h < 1) return mt_seterr(err, MT_EINVAL, "resize: target size %dx%d", w, h);
    if ((uint64_t)w * (uint64_t)h > MT_IMAGE_MAX_PIXELS_DEFAULT)
        return mt_seterr(err, MT_ELIMIT, "resize: target %dx%d is too large", w, h);
    out->rgb = malloc((size_t)w * h * 3);
    if (!out->rgb) return mt_seterr(err, MT_ENOMEM, "resize: out of memory for %dx%d", w, h);
    out->w = w;
    out->h = h;
    if (w == in->w && h == in->h) {
        memcpy(out->rgb, in->rgb, (size_t)w * h * 3);
        return MT_OK;
    }
    if (filter == MT_RESAMPLE_NEAREST) {
        if (nearest(out, in) == 0) return MT_OK;
        mt_image_clear(out);
        return mt_seterr(err, MT_ENOMEM, "resize: out of memory");
    }
    const filter_def *f = &FILTERS[filter];
    axis ax = {0}, ay = {0};
    uint8_t *tmp = NULL;
    if (order != MT_RESIZE_ORDER_PIL13 && order != MT_RESIZE_ORDER_HFIRST) {
        mt_image_clear(out);
        return mt_seterr(err, MT_EINVAL, "resize: unknown pass order %d", order);
    }
    int rc = axis_make(&ay, in->h, h, f, err);
    if (rc) {
        mt_image_clear(out);
        return rc;
    }
    int need_h = w != in->w, need_v = h != in->h;
    /* Pillow >= 13 runs the vertical pass first when the height shrinks by more
     * than twice as many pixels as the width does */
    int dh = in->h - h, dw = in->w - w;
    int v_first = order == MT_RESIZE_ORDER_PIL13 && dh > 0 && (int64_t)dh > (int64_t)dw * 2;
    if (need_h && (rc = axis_make(&ax, in->w, w, f, err)) != MT_OK) goto done;
    if (need_h && need_v) {
        int rows = v_first ? h : ay.first[h - 1] + ay.count[h - 1] - ay.first[0];
        int cols = v_first ? in->w : w;
        tmp = malloc((size_t)cols * (rows > 0 ? rows : 1) * 3);
        if (!tmp) {
            rc = mt_seterr(err, MT_ENOMEM, "resize: out of memory");
            goto done;
        }
        if (v_first) {
            pass_v(tmp, h, in->rgb, in->w, 0, &ay);
            pass_h(out->rgb, w, tmp, in->w, 0, h, &ax);
        } else {
            /* the intermediate holds only the source rows the vertical pass reads */
            pass_h(tmp, w, in->rgb, in->w, ay.first[0], rows, &ax);
            pass_v(out->rgb, h, tmp, w, ay.first[0], &ay);
        }
    } else if (need_h) {
        pass_h(out->rgb, w, in->rgb, in->w, 0, h, &ax);
    } else {
        pass_v(out->rgb, h, in->rgb, w, 0, &ay);
    }
done:
    free(tmp);
    axis_free(&ax);
    axis_free(&ay);
    if (rc) mt_image_clear(out);
    return rc;
}

int mt_image_to_chw(float *out, const mt_image *in, int do_rescale, double scale, int do_normalize,
                    const double mean[3], const double std[3], mt_err *err) {
    float m[3] = {0, 0, 0}, s[3] = {1, 1, 1};
    if (do_normalize) {
        for (int c = 0; c < 3; c++) {
            m[c] = (float)mean[c];
            s[c] = (float)std[c];
            if (s[c] == 0.0f) return mt_seterr(err, MT_EINVAL, "normalize: std[%d] is 0", c);
        }
    }
    size_t hw = (size_t)in->w * in->h;
    for (int c = 0; c < 3; c++) {
        float *o = out + (size_t)c * hw;
        const uint8_t *p = in->rgb + c;
        for (size_t i = 0; i < hw; i++) {
            float x = do_rescale ? (float)((double)p[3 * i] * scale) : (float)p[3 * i];
            if (do_normalize) x = (x - m[c]) / s[c];
            o[i] = x;
        }
    }
    return MT_OK;
}
