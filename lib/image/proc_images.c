/* proc_images.c - the image side of the mlx-vlm processors (see processor.h): the
 * output sizes each family computes (Idefics3 longest edge + tile rounding, the 4096
 * cap, shortest edge, Qwen smart_resize), the 8-bit images (tiles and the global image,
 * pan & scan crops, center crops) and the float tensors (CHW images, Qwen patch rows).
 * ref: transformers v5 image_processing_pil_{idefics3,gemma3,clip}.py, image_transforms.py
 *      (get_resize_output_image_size, center_crop); mlx-vlm qwen3_vl/processing_qwen3_vl.py
 *      (_smart_resize_image, Qwen3VLImageProcessor._process_one). */
#include "image/processor.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/resize.h"

#define IDEFICS3_MAX_IMAGE_SIZE 4096   /* MAX_IMAGE_SIZE of the Idefics3 processors */
#define SIDE_MAX 65536                 /* the bound mt_vlm_proc_check puts on configured sizes */

/* ---------------------------------------------------------------- sizes */

/* _resize_output_size_rescale_to_max_len then _resize_output_size_scale_below_upper_bound */
static void idefics3_resize_size(int h, int w, int L, int *oh, int *ow) {
    double aspect = (double)w / (double)h;
    if (w >= h) {
        w = L;
        h = (int)((double)w / aspect);
        if (h % 2) h++;
    } else {
        h = L;
        w = (int)((double)h * aspect);
        if (w % 2) w++;
    }
    if (h < 1) h = 1;
    if (w < 1) w = 1;
    aspect = (double)w / (double)h;
    if (w >= h && w > IDEFICS3_MAX_IMAGE_SIZE) {
        w = IDEFICS3_MAX_IMAGE_SIZE;
        h = (int)((double)w / aspect);
    } else if (h > w && h > IDEFICS3_MAX_IMAGE_SIZE) {
        h = IDEFICS3_MAX_IMAGE_SIZE;
        w = (int)((double)h * aspect);
    }
    *oh = h < 1 ? 1 : h;
    *ow = w < 1 ? 1 : w;
}

static int ceil_to(int v, int t) { return (int)(((long long)v + t - 1) / t * t); }

/* resize_for_vision_encoder: both sides rounded up to multiples of the tile */
static void idefics3_split_size(int h, int w, int T, int *oh, int *ow) {
    double aspect = (double)w / (double)h;
    if (w >= h) {
        w = ceil_to(w, T);
        h = (int)((double)w / aspect);
        h = ceil_to(h, T);
    } else {
        h = ceil_to(h, T);
        w = (int)((double)h * aspect);
        w = ceil_to(w, T);
    }
    *oh = h;
    *ow = w;
}

/* image_transforms.get_resize_output_image_size(default_to_square=False) */
static void shortest_edge_size(int h, int w, int s, int *oh, int *ow) {
    int shrt = w <= h ? w : h, lng = w <= h ? h : w;
    int nl = (int)((double)((long long)s * lng) / (double)shrt);
    if (w <= h) *oh = nl, *ow = s;
    else *oh = s, *ow = nl;
}

/* mlx-vlm's _smart_resize_image (HF qwen2_vl smart_resize) */
static int qwen_smart_resize(int h, int w, int F, double minp, double maxp, int *oh, int *ow, mt_err *err) {
    double big = h > w ? h : w, small = h > w ? w : h;
    if (big / small > 200)
        return mt_seterr(err, MT_EINVAL, "image processor: absolute aspect ratio must be smaller than 200, got %g",
                         big / small);
    double hb = rint((double)h / F) * F, wb = rint((double)w / F) * F;
    if (hb * wb > maxp) {
        double beta = sqrt((double)h * (double)w / maxp);
        hb = floor((double)h / beta / F) * F;
        wb = floor((double)w / beta / F) * F;
        if (hb < F) hb = F;
        if (wb < F) wb = F;
    } else if (hb * wb < minp) {
        double beta = sqrt(minp / ((double)h * (double)w));
        hb = ceil((double)h * beta / F) * F;
        wb = ceil((double)w * beta / F) * F;
    }
    if (!(hb >= 1 && wb >= 1 && hb <= SIDE_MAX && wb <= SIDE_MAX))
        return mt_seterr(err, MT_EINVAL, "image processor: %dx%d resizes to an invalid %gx%g", w, h, wb, hb);
    *oh = (int)hb;
    *ow = (int)wb;
    return MT_OK;
}

/* ---------------------------------------------------------------- 8-bit images */

void mt_vlm_images_free(mt_vlm_images *im) {
    if (!im) return;
    for (int i = 0; i < im->n; i++) mt_image_clear(&im->img[i]);
    free(im->img);
    memset(im, 0, sizeof *im);
}

/* the w x h window at (x0, y0) of in; pixels outside are 0 (center_crop's padding) */
static int crop(mt_image *out, const mt_image *in, int x0, int y0, int w, int h, mt_err *err) {
    out->rgb = calloc((size_t)w * h, 3);
    if (!out->rgb) return mt_seterr(err, MT_ENOMEM, "out of memory");
    out->w = w;
    out->h = h;
    for (int y = 0; y < h; y++) {
        int sy = y0 + y;
        if (sy < 0 || sy >= in->h) continue;
        int xa = x0 < 0 ? -x0 : 0, xb = in->w - x0 < w ? in->w - x0 : w;
        if (xb > xa)
            memcpy(out->rgb + ((size_t)y * w + xa) * 3, in->rgb + ((size_t)sy * in->w + x0 + xa) * 3, (size_t)(xb - xa) * 3);
    }
    return MT_OK;
}

static int copy_image(mt_image *out, const mt_image *in, mt_err *err) {
    return crop(out, in, 0, 0, in->w, in->h, err);
}

/* append a slot to the list; returns the new image (empty) or NULL */
static mt_image *push(mt_vlm_images *im) {
    mt_image *n = realloc(im->img, (size_t)(im->n + 1) * sizeof *n);
    if (!n) return NULL;
    im->img = n;
    memset(&im->img[im->n], 0, sizeof *im->img);
    return &im->img[im->n++];
}

static int push_resized(mt_vlm_images *im, const mt_image *src, int w, int h, int filter, mt_err *err) {
    mt_image *d = push(im);
    if (!d) return mt_seterr(err, MT_ENOMEM, "out of memory");
    return mt_image_resize(d, src, w, h, filter, err);
}

static int make_idefics3(const mt_vlm_proc *p, const mt_image *img, mt_vlm_images *out, mt_err *err) {
    mt_image a = {0}, b = {0};
    const mt_image *cur = img;
    int rc = MT_OK, T = p->tile;
    if (p->do_resize) {
        int h = 0, w = 0;
        if (p->longest_edge) idefics3_resize_size(img->h, img->w, p->longest_edge, &h, &w);
        else h = p->height, w = p->width;
        MT_TRY(mt_image_resize(&a, img, w, h, p->resample, err));
        cur = &a;
    }
    if (!p->do_image_splitting) {
        rc = push_resized(out, cur, T, T, p->resample, err);
        goto done;
    }
    int h = 0, w = 0;
    idefics3_split_size(cur->h, cur->w, T, &h, &w);
    if (h < 1 || w < 1) {
        rc = mt_seterr(err, MT_EINVAL, "image processor: %dx%d image gives an empty %dx%d tiling", img->w, img->h, w, h);
        goto done;
    }
    if ((rc = mt_image_resize(&b, cur, w, h, p->resample, err))) goto done;
    if (h > T || w > T) {
        int rows = (h - T) / T + 1, cols = (w - T) / T + 1;
        for (int r = 0; r < rows && !rc; r++)
            for (int c = 0; c < cols && !rc; c++) {
                mt_image *d = push(out);
                rc = d ? crop(d, &b, c * T, r * T, T, T, err) : mt_seterr(err, MT_ENOMEM, "out of memory");
            }
        if (!rc) rc = push_resized(out, &b, T, T, p->resample, err);
        out->rows = rows;
        out->cols = cols;
    } else {
        mt_image *d = push(out);
        if (!d) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        else *d = b, b.rgb = NULL;
    }
done:
    mt_image_clear(&a);
    mt_image_clear(&b);
    return rc;
}

/* PilBackend.resize for a size dict: {height, width} or {shortest_edge} */
static int resize_sizedict(const mt_vlm_proc *p, const mt_image *src, mt_image *dst, mt_err *err) {
    if (!p->do_resize) return copy_image(dst, src, err);
    int h = p->height, w = p->width;
    if (p->shortest_edge) shortest_edge_size(src->h, src->w, p->shortest_edge, &h, &w);
    if (h < 1 || w < 1) return mt_seterr(err, MT_EINVAL, "image processor: %dx%d resizes to %dx%d", src->w, src->h, w, h);
    return mt_image_resize(dst, src, w, h, p->resample, err);
}

/* Gemma3ImageProcessorPil.pan_and_scan: the crops (x, y, w, h) of the original */
static int pan_and_scan(const mt_vlm_proc *p, int h, int w, int xywh[][4], int max) {
    int nw = 1, nh = 1;
    if (w >= h) {
        if ((double)w / h < p->pas_min_ratio) return 0;
        nw = (int)floor((double)w / h + 0.5);
        int lim = (int)floor((double)w / p->pas_min_crop);
        if (lim < nw) nw = lim;
        if (nw < 2) nw = 2;
        if (nw > p->pas_max_crops) nw = p->pas_max_crops;
    } else {
        if ((double)h / w < p->pas_min_ratio) return 0;
        nh = (int)floor((double)h / w + 0.5);
        int lim = (int)floor((double)h / p->pas_min_crop);
        if (lim < nh) nh = lim;
        if (nh < 2) nh = 2;
        if (nh > p->pas_max_crops) nh = p->pas_max_crops;
    }
    int cw = (int)ceil((double)w / nw), ch = (int)ceil((double)h / nh);
    if ((cw < ch ? cw : ch) < p->pas_min_crop || nw * nh > max) return 0;
    int n = 0;
    for (int i = 0; i < nh; i++)
        for (int j = 0; j < nw; j++) {
            int x = cw * j, y = ch * i;   /* numpy slicing clips the last crop at the border */
            xywh[n][0] = x;
            xywh[n][1] = y;
            xywh[n][2] = x + cw > w ? w - x : cw;
            xywh[n][3] = y + ch > h ? h - y : ch;
            if (xywh[n][2] < 1 || xywh[n][3] < 1) return -1;
            n++;
        }
    return n;
}

static int make_siglip_clip(const mt_vlm_proc *p, const mt_image *img, mt_vlm_images *out, mt_err *err) {
    int boxes[64][4], nb = 0;
    if (p->do_pan_and_scan) {
        nb = pan_and_scan(p, img->h, img->w, boxes, 64);
        if (nb < 0) return mt_seterr(err, MT_EINVAL, "image processor: pan and scan gives an empty crop");
    }
    for (int i = -1; i < nb; i++) {
        mt_image part = {0}, r = {0};
        const mt_image *src = img;
        if (i >= 0) {
            MT_TRY(crop(&part, img, boxes[i][0], boxes[i][1], boxes[i][2], boxes[i][3], err));
            src = &part;
        }
        int rc = resize_sizedict(p, src, &r, err);
        mt_image_clear(&part);
        if (rc) return rc;
        mt_image *d = push(out);
        if (!d) {
            mt_image_clear(&r);
            return mt_seterr(err, MT_ENOMEM, "out of memory");
        }
        if (p->do_center_crop) {
            /* image_transforms.center_crop: top = (h - ch) // 2 (floor), zero fill outside */
            int top = (int)floor((r.h - p->crop_h) / 2.0), left = (int)floor((r.w - p->crop_w) / 2.0);
            rc = crop(d, &r, left, top, p->crop_w, p->crop_h, err);
            mt_image_clear(&r);
            if (rc) return rc;
        } else {
            *d = r;
        }
    }
    out->n_crops = nb;
    return MT_OK;
}

static int make_qwen(const mt_vlm_proc *p, const mt_image *img, mt_vlm_images *out, mt_err *err) {
    int h = 0, w = 0;
    MT_TRY(qwen_smart_resize(img->h, img->w, p->patch * p->merge, p->min_pixels, p->max_pixels, &h, &w, err));
    mt_image *d = push(out);
    if (!d) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (h == img->h && w == img->w) return copy_image(d, img, err);
    return mt_image_resize(d, img, w, h, MT_RESAMPLE_BICUBIC, err);
}

int mt_vlm_images_make(const mt_vlm_proc *p, const mt_image *img, mt_vlm_images *out, mt_err *err) {
    memset(out, 0, sizeof *out);
    MT_TRY(mt_vlm_proc_check(p, err));
    if (!img || !img->rgb || img->w < 1 || img->h < 1) return mt_seterr(err, MT_EINVAL, "image processor: empty image");
    int rc;
    switch (p->kind) {
    case MT_PROC_IDEFICS3: rc = make_idefics3(p, img, out, err); break;
    case MT_PROC_QWEN2VL: rc = make_qwen(p, img, out, err); break;
    default: rc = make_siglip_clip(p, img, out, err); break;
    }
    if (rc) mt_vlm_images_free(out);
    return rc;
}

/* ---------------------------------------------------------------- float tensors */

void mt_vlm_pixels_free(mt_vlm_pixels *px) {
    if (!px) return;
    free(px->data);
    memset(px, 0, sizeof *px);
}

/* The numpy port's rescale + normalize, all in float32:
 * x = float32(v) [* float32(rescale)], then (x - float32(mean)) / float32(std). */
static void qwen_chw(float *out, const mt_image *im, const mt_vlm_proc *p) {
    size_t hw = (size_t)im->w * im->h;
    float s = (float)p->rescale;
    for (int c = 0; c < 3; c++) {
        float m = (float)p->mean[c], sd = (float)p->std[c];
        for (size_t i = 0; i < hw; i++) {
            float x = (float)im->rgb[i * 3 + c];
            if (p->do_rescale) x = x * s;
            if (p->do_normalize) x = (x - m) / sd;
            out[c * hw + i] = x;
        }
    }
}

/* Qwen2-VL patch rows: the image repeated temporal_patch times, reshaped to
 * (tps, C, gh/m, m, ps, gw/m, m, ps) and transposed to (gh/m, gw/m, m, m, C, tps, ps, ps). */
static int qwen_patches(const mt_vlm_proc *p, const mt_image *im, mt_vlm_pixels *px, mt_err *err) {
    int ps = p->patch, m = p->merge, tps = p->temporal_patch;
    int gh = im->h / ps, gw = im->w / ps;
    size_t hw = (size_t)im->w * im->h;
    float *chw = malloc(hw * 3 * sizeof *chw);
    px->patch_dim = (size_t)3 * tps * ps * ps;
    px->n_patches = (size_t)gh * gw;
    px->data = malloc(px->n_patches * px->patch_dim * sizeof *px->data);
    if (!chw || !px->data) {
        free(chw);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    qwen_chw(chw, im, p);
    float *o = px->data;
    for (int bh = 0; bh < gh / m; bh++)
        for (int bw = 0; bw < gw / m; bw++)
            for (int mh = 0; mh < m; mh++)
                for (int mw = 0; mw < m; mw++) {
                    int y0 = (bh * m + mh) * ps, x0 = (bw * m + mw) * ps;
                    for (int c = 0; c < 3; c++)
                        for (int t = 0; t < tps; t++)
                            for (int y = 0; y < ps; y++) {
                                memcpy(o, chw + c * hw + (size_t)(y0 + y) * im->w + x0, (size_t)ps * sizeof *o);
                                o += ps;
                            }
                }
    free(chw);
    px->grid_t = 1;
    px->grid_h = gh;
    px->grid_w = gw;
    return MT_OK;
}

int mt_vlm_preprocess(const mt_vlm_proc *p, const mt_image *img, mt_vlm_pixels *out, mt_err *err) {
    memset(out, 0, sizeof *out);
    mt_vlm_images im;
    MT_TRY(mt_vlm_images_make(p, img, &im, err));
    int rc = MT_OK;
    out->n = im.n;
    out->h = im.img[0].h;
    out->w = im.img[0].w;
    out->rows = im.rows;
    out->cols = im.cols;
    out->n_crops = im.n_crops;
    if (p->kind == MT_PROC_QWEN2VL) {
        rc = qwen_patches(p, &im.img[0], out, err);
    } else {
        size_t per = (size_t)3 * out->h * out->w;
        out->data = malloc(per * (size_t)im.n * sizeof *out->data);
        if (!out->data) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        for (int i = 0; i < im.n && !rc; i++) {
            if (im.img[i].w != out->w || im.img[i].h != out->h)
                rc = mt_seterr(err, MT_EINVAL, "image processor: images of different sizes");
            else
                rc = mt_image_to_chw(out->data + per * (size_t)i, &im.img[i], p->do_rescale, p->rescale,
                                     p->do_normalize, p->mean, p->std, err);
        }
    }
    mt_vlm_images_free(&im);
    if (rc) mt_vlm_pixels_free(out);
    return rc;
}
