/* processor.c - the mlx-vlm image processors (see processor.h): settings from a
 * model folder's JSON files, decoding with transformers' convert_to_rgb colour-key
 * whitening, and the prompt text per image.  The images themselves (sizes, tiles,
 * crops, float tensors) are in proc_images.c.
 * ref: transformers v5 image_processing_pil_{idefics3,smolvlm,gemma3,siglip,clip}.py,
 *      image_processing_backends.py, image_transforms.py; mlx-vlm processing_*.py,
 *      qwen3_vl/processing_qwen3_vl.py. */
#include "image/processor.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "image/resize.h"

#define SIDE_MAX 65536                 /* a sanity bound on every configured size */

static const double OPENAI_CLIP_MEAN[3] = {0.48145466, 0.4578275, 0.40821073};
static const double OPENAI_CLIP_STD[3] = {0.26862954, 0.26130258, 0.27577711};

/* ---------------------------------------------------------------- defaults */

int mt_vlm_proc_defaults(mt_vlm_proc *p, const char *model_type, mt_err *err) {
    memset(p, 0, sizeof *p);
    p->do_resize = p->do_rescale = p->do_normalize = 1;
    p->do_convert_rgb = 1;   /* the class default of every HF processor here */
    p->rescale = 1.0 / 255.0;
    for (int c = 0; c < 3; c++) p->mean[c] = p->std[c] = 0.5;   /* IMAGENET_STANDARD_* */
    p->pas_min_crop = 256;     /* Gemma3ProcessorKwargs defaults, used when pan & scan is on */
    p->pas_max_crops = 4;
    p->pas_min_ratio = 1.2;
    if (!model_type) return mt_seterr(err, MT_EINVAL, "image processor: no model_type");
    if (!strcmp(model_type, "idefics3") || !strcmp(model_type, "smolvlm")) {
        p->kind = MT_PROC_IDEFICS3;
        p->text_kind = MT_VLM_TEXT_IDEFICS3;
        p->resample = MT_RESAMPLE_LANCZOS;
        p->longest_edge = 4 * 364;
        p->tile = 364;
        p->do_image_splitting = 1;
        p->image_seq_len = 169;
    } else if (!strcmp(model_type, "gemma3")) {
        p->kind = MT_PROC_SIGLIP;
        p->text_kind = MT_VLM_TEXT_GEMMA3;
        p->resample = MT_RESAMPLE_BILINEAR;
        p->height = p->width = 224;
        p->image_seq_len = 256;
    } else if (!strcmp(model_type, "paligemma")) {
        p->kind = MT_PROC_SIGLIP;
        p->text_kind = MT_VLM_TEXT_IMAGE_TOKENS;
        p->resample = MT_RESAMPLE_BICUBIC;
        p->height = p->width = 224;
        p->image_seq_len = 0;   /* the config's image_seq_length, else (h/14)·(w/14) */
    } else if (!strcmp(model_type, "llava")) {
        p->kind = MT_PROC_CLIP;
        p->text_kind = MT_VLM_TEXT_IMAGE_TOKENS;
        p->resample = MT_RESAMPLE_BICUBIC;
        p->shortest_edge = 224;
        p->do_center_crop = 1;
        p->crop_h = p->crop_w = 224;
        memcpy(p->mean, OPENAI_CLIP_MEAN, sizeof p->mean);
        memcpy(p->std, OPENAI_CLIP_STD, sizeof p->std);
        p->tok_patch = 14;
    } else if (!strcmp(model_type, "qwen2_vl") || !strcmp(model_type, "qwen2_5_vl")) {
        p->kind = MT_PROC_QWEN2VL;
        p->text_kind = MT_VLM_TEXT_QWEN;
        p->resample = MT_RESAMPLE_BICUBIC;   /* fixed in the numpy port: "resample" is not read */
        p->patch = 14;
        p->temporal_patch = 2;
        p->merge = 2;
        p->min_pixels = 56 * 56;
        p->do_convert_rgb = 0;   /* the port converts with Pillow's convert("RGB"): no compositing */
        p->max_pixels = 14 * 14 * 4 * 1280;
    } else {
        return mt_seterr(err, MT_EUNSUPPORTED, "image processor: model_type '%s' is not supported", model_type);
    }
    return MT_OK;
}

int mt_vlm_proc_check(const mt_vlm_proc *p, mt_err *err) {
#define BAD(...) return mt_seterr(err, MT_EINVAL, "image processor: " __VA_ARGS__)
#define SIDE_OK(v) ((v) >= 1 && (v) <= SIDE_MAX)
    if (p->kind < MT_PROC_IDEFICS3 || p->kind > MT_PROC_QWEN2VL) BAD("unknown kind %d", p->kind);
    if (p->text_kind < MT_VLM_TEXT_IDEFICS3 || p->text_kind > MT_VLM_TEXT_IMAGE_TOKENS) BAD("unknown text kind");
    if (!mt_resample_name(p->resample)) BAD("resample %d is not a PIL filter (0..5)", p->resample);
    if (p->do_normalize)
        for (int c = 0; c < 3; c++) {
            if (!(p->std[c] != 0) || !isfinite(p->std[c]) || !isfinite(p->mean[c])) BAD("image_std / image_mean invalid");
        }
    if (p->do_rescale && !isfinite(p->rescale)) BAD("rescale_factor invalid");
    if (p->image_seq_len < 0 || p->image_seq_len > 1 << 20) BAD("image_seq_len %d out of range", p->image_seq_len);
    switch (p->kind) {
    case MT_PROC_IDEFICS3:
        if (!SIDE_OK(p->tile)) BAD("max_image_size.longest_edge %d out of range", p->tile);
        if (p->do_resize && !(p->longest_edge ? SIDE_OK(p->longest_edge) : SIDE_OK(p->height) && SIDE_OK(p->width)))
            BAD("size.longest_edge %d out of range", p->longest_edge);
        break;
    case MT_PROC_SIGLIP:
    case MT_PROC_CLIP:
        if (p->do_resize && !(p->shortest_edge ? SIDE_OK(p->shortest_edge) : SIDE_OK(p->height) && SIDE_OK(p->width)))
            BAD("size out of range");
        if (p->do_center_crop && !(SIDE_OK(p->crop_h) && SIDE_OK(p->crop_w))) BAD("crop_size out of range");
        if (p->text_kind == MT_VLM_TEXT_IMAGE_TOKENS && p->kind == MT_PROC_CLIP && !SIDE_OK(p->tok_patch))
            BAD("patch_size %d out of range", p->tok_patch);
        if (p->do_pan_and_scan && (!SIDE_OK(p->pas_min_crop) || p->pas_max_crops < 2 || p->pas_max_crops > 64 ||
                                   !isfinite(p->pas_min_ratio)))
            BAD("pan and scan settings out of range");
        break;
    case MT_PROC_QWEN2VL:
        if (!SIDE_OK(p->patch) || p->merge < 1 || p->merge > 64 || p->temporal_patch < 1 || p->temporal_patch > 64 ||
            (long long)p->patch * p->merge > SIDE_MAX)
            BAD("patch_size / merge_size / temporal_patch_size out of range");
        if (!(p->min_pixels >= 0) || !(p->max_pixels > 0) || !isfinite(p->min_pixels) || !isfinite(p->max_pixels))
            BAD("min_pixels / max_pixels out of range");
        break;
    }
    return MT_OK;
#undef SIDE_OK
#undef BAD
}

/* ---------------------------------------------------------------- config files */

static int json_file(const char *dir, const char *name, json_t **out, mt_err *err) {
    *out = NULL;
    char *path = mt_path_join(dir, name);
    if (!path) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!mt_file_exists(path)) {
        free(path);
        return MT_OK;   /* absent: *out stays NULL */
    }
    char *text = NULL;
    size_t n = 0;
    int rc = mt_read_file_max(path, 16u << 20, &text, &n, err);
    if (rc == MT_OK) {
        json_error_t je;
        *out = json_loadb(text, n, 0, &je);
        if (!*out) rc = mt_seterr(err, MT_EFORMAT, "%s: invalid JSON: %s (line %d)", path, je.text, je.line);
        else if (!json_is_object(*out)) {
            json_decref(*out);
            *out = NULL;
            rc = mt_seterr(err, MT_EFORMAT, "%s: not a JSON object", path);
        }
    }
    free(text);
    free(path);
    return rc;
}

/* key of object o, NULL when absent or null */
static json_t *jget(json_t *o, const char *key) {
    json_t *v = o ? json_object_get(o, key) : NULL;
    return v && !json_is_null(v) ? v : NULL;
}

static int jint(json_t *o, const char *key, int *out, mt_err *err) {
    json_t *v = jget(o, key);
    if (!v) return MT_OK;
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v)) d = json_real_value(v);
    else if (json_is_boolean(v)) d = json_is_true(v);
    else return mt_seterr(err, MT_EFORMAT, "image processor config: '%s' must be an integer", key);
    if (d != floor(d) || d < -2147483647.0 || d > 2147483647.0)
        return mt_seterr(err, MT_EFORMAT, "image processor config: '%s' must be an integer", key);
    *out = (int)d;
    return MT_OK;
}

static int jnum(json_t *o, const char *key, double *out, mt_err *err) {
    json_t *v = jget(o, key);
    if (!v) return MT_OK;
    if (!json_is_number(v)) return mt_seterr(err, MT_EFORMAT, "image processor config: '%s' must be a number", key);
    *out = json_number_value(v);
    return MT_OK;
}

static int jbool(json_t *o, const char *key, int *out, mt_err *err) {
    json_t *v = jget(o, key);
    if (!v) return MT_OK;
    if (json_is_boolean(v)) *out = json_is_true(v);
    else if (json_is_integer(v)) *out = json_integer_value(v) != 0;
    else return mt_seterr(err, MT_EFORMAT, "image processor config: '%s' must be true or false", key);
    return MT_OK;
}

/* image_mean / image_std: a list of 3 numbers or one number */
static int jtriple(json_t *o, const char *key, double out[3], mt_err *err) {
    json_t *v = jget(o, key);
    if (!v) return MT_OK;
    if (json_is_number(v)) {
        out[0] = out[1] = out[2] = json_number_value(v);
        return MT_OK;
    }
    if (!json_is_array(v) || json_array_size(v) != 3)
        return mt_seterr(err, MT_EFORMAT, "image processor config: '%s' must be a list of 3 numbers", key);
    for (int c = 0; c < 3; c++) {
        json_t *x = json_array_get(v, (size_t)c);
        if (!json_is_number(x)) return mt_seterr(err, MT_EFORMAT, "image processor config: '%s' must be numbers", key);
        out[c] = json_number_value(x);
    }
    return MT_OK;
}

/* The keys all HF PIL-backend processors share. */
static int read_common(mt_vlm_proc *p, json_t *d, mt_err *err) {
    json_t *cv = json_object_get(d, "do_convert_rgb");
    if (cv && json_is_null(cv)) p->do_convert_rgb = 0;   /* None reaches the processor: no conversion */
    else MT_TRY(jbool(d, "do_convert_rgb", &p->do_convert_rgb, err));
    MT_TRY(jint(d, "resample", &p->resample, err));
    MT_TRY(jbool(d, "do_resize", &p->do_resize, err));
    MT_TRY(jbool(d, "do_rescale", &p->do_rescale, err));
    MT_TRY(jbool(d, "do_normalize", &p->do_normalize, err));
    MT_TRY(jnum(d, "rescale_factor", &p->rescale, err));
    MT_TRY(jtriple(d, "image_mean", p->mean, err));
    MT_TRY(jtriple(d, "image_std", p->std, err));
    return MT_OK;
}

/* "size" / "crop_size" as get_size_dict reads it: a dict, or an int that is
 * {height, width} (square_int) or {shortest_edge}. */
static int read_size(json_t *d, const char *key, int square_int, int *h, int *w, int *shortest, int *longest,
                     mt_err *err) {
    json_t *v = jget(d, key);
    if (!v) return MT_OK;
    if (json_is_number(v)) {
        int s = 0;
        MT_TRY(jint(d, key, &s, err));
        if (square_int) {
            if (h) *h = s;
            if (w) *w = s;
            if (shortest) *shortest = 0;
        } else if (shortest) {
            *shortest = s;
        }
        return MT_OK;
    }
    if (!json_is_object(v)) return mt_seterr(err, MT_EFORMAT, "image processor config: '%s' must be a dict", key);
    int hh = 0, ww = 0, se = 0, le = 0;
    MT_TRY(jint(v, "height", &hh, err));
    MT_TRY(jint(v, "width", &ww, err));
    MT_TRY(jint(v, "shortest_edge", &se, err));
    MT_TRY(jint(v, "longest_edge", &le, err));
    if (h) *h = hh;
    if (w) *w = ww;
    if (shortest) *shortest = se;
    if (longest) *longest = le;
    return MT_OK;
}

static int load_hf(mt_vlm_proc *p, json_t *d, json_t *pc, mt_err *err) {
    MT_TRY(read_common(p, d, err));
    switch (p->kind) {
    case MT_PROC_IDEFICS3: {
        int le = 0, h = 0, w = 0;
        /* (mlx-vlm's SmolVLMProcessor also passes processor_config.json's image_processor.size
         * on; transformers already took the whole nested dict then, so nothing changes) */
        MT_TRY(read_size(d, "size", 0, &h, &w, NULL, &le, err));
        if (le) {
            p->longest_edge = le;
        } else if (h && w) {   /* {height, width}: a plain resize to that size */
            p->longest_edge = 0;
            p->height = h;
            p->width = w;
        } else if (jget(d, "size") && p->do_resize) {
            return mt_seterr(err, MT_EUNSUPPORTED, "image processor config: idefics3 'size' needs longest_edge or height and width");
        }
        int tile = 0;
        json_t *m = jget(d, "max_image_size");
        if (m && !json_is_object(m)) return mt_seterr(err, MT_EFORMAT, "image processor config: 'max_image_size' must be a dict");
        MT_TRY(jint(m, "longest_edge", &tile, err));
        if (tile) p->tile = tile;
        MT_TRY(jbool(d, "do_image_splitting", &p->do_image_splitting, err));
        MT_TRY(jint(pc, "image_seq_len", &p->image_seq_len, err));
        break;
    }
    case MT_PROC_SIGLIP: {
        int se = -1;
        MT_TRY(read_size(d, "size", p->text_kind == MT_VLM_TEXT_GEMMA3, &p->height, &p->width, &se, NULL, err));
        if (se > 0) p->shortest_edge = se;
        else if (se == 0) p->shortest_edge = 0;
        if (p->text_kind == MT_VLM_TEXT_GEMMA3) {
            MT_TRY(jbool(d, "do_pan_and_scan", &p->do_pan_and_scan, err));
            MT_TRY(jint(d, "pan_and_scan_min_crop_size", &p->pas_min_crop, err));
            MT_TRY(jint(d, "pan_and_scan_max_num_crops", &p->pas_max_crops, err));
            MT_TRY(jnum(d, "pan_and_scan_min_ratio_to_activate", &p->pas_min_ratio, err));
            MT_TRY(jint(pc, "image_seq_length", &p->image_seq_len, err));
        } else {
            MT_TRY(jint(d, "image_seq_length", &p->image_seq_len, err));   /* PaliGemma reads the image processor's */
        }
        break;
    }
    case MT_PROC_CLIP: {
        int se = -1, h = 0, w = 0;
        MT_TRY(read_size(d, "size", 0, &h, &w, &se, NULL, err));
        if (se > 0) p->shortest_edge = se;
        else if (se == 0 && h && w) p->shortest_edge = 0, p->height = h, p->width = w;
        MT_TRY(jbool(d, "do_center_crop", &p->do_center_crop, err));
        MT_TRY(read_size(d, "crop_size", 1, &p->crop_h, &p->crop_w, NULL, NULL, err));
        MT_TRY(jint(pc, "patch_size", &p->tok_patch, err));
        MT_TRY(jint(pc, "num_additional_image_tokens", &p->tok_additional, err));
        json_t *s = jget(pc, "vision_feature_select_strategy");
        if (s) p->tok_select_default = json_is_string(s) && !strcmp(json_string_value(s), "default");
        break;
    }
    }
    return MT_OK;
}

static int load_qwen(mt_vlm_proc *p, json_t *d, mt_err *err) {
    MT_TRY(jint(d, "patch_size", &p->patch, err));
    MT_TRY(jint(d, "temporal_patch_size", &p->temporal_patch, err));
    MT_TRY(jint(d, "merge_size", &p->merge, err));
    MT_TRY(jbool(d, "do_rescale", &p->do_rescale, err));
    MT_TRY(jbool(d, "do_normalize", &p->do_normalize, err));
    MT_TRY(jnum(d, "rescale_factor", &p->rescale, err));
    MT_TRY(jtriple(d, "image_mean", p->mean, err));
    MT_TRY(jtriple(d, "image_std", p->std, err));
    json_t *size = jget(d, "size");
    if (size && json_is_object(size)) {
        MT_TRY(jnum(size, "shortest_edge", &p->min_pixels, err));
        MT_TRY(jnum(size, "longest_edge", &p->max_pixels, err));
    }
    MT_TRY(jnum(d, "min_pixels", &p->min_pixels, err));
    MT_TRY(jnum(d, "max_pixels", &p->max_pixels, err));
    return MT_OK;
}

int mt_vlm_proc_load(mt_vlm_proc *p, const char *dir, const char *model_type, mt_err *err) {
    MT_TRY(mt_vlm_proc_defaults(p, model_type, err));
    json_t *pre = NULL, *pc = NULL;
    int rc = json_file(dir, "preprocessor_config.json", &pre, err);
    if (rc == MT_OK) rc = json_file(dir, "processor_config.json", &pc, err);
    if (rc == MT_OK) {
        json_t *nested = jget(pc, "image_processor");
        if (nested && !json_is_object(nested)) {
            rc = mt_seterr(err, MT_EFORMAT, "%s/processor_config.json: 'image_processor' must be a dict", dir);
        } else if (p->kind == MT_PROC_QWEN2VL) {
            json_t *d = pre ? json_deep_copy(pre) : json_object();
            if (!d || (nested && json_object_update(d, nested)))
                rc = mt_seterr(err, MT_ENOMEM, "out of memory");
            else
                rc = load_qwen(p, d, err);
            json_decref(d);
        } else if (!nested && !pre) {
            rc = mt_seterr(err, MT_ENOTFOUND, "%s: no preprocessor_config.json (image processor settings)", dir);
        } else {
            rc = load_hf(p, nested ? nested : pre, pc, err);
        }
        if (rc) mt_preferr(err, "%s", dir);
    }
    json_decref(pre);
    json_decref(pc);
    if (rc == MT_OK) rc = mt_vlm_proc_check(p, err);
    return rc;
}

/* ---------------------------------------------------------------- decoding */

static uint32_t be32(const uint8_t *b) { return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]; }

int mt_vlm_color_key(const void *data, size_t n, unsigned char key[3]) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    const uint8_t *b = data, *plte = NULL;
    size_t nplte = 0;
    int depth = 0, ctype = -1;
    if (!b || n < 8 || memcmp(b, sig, 8) != 0) return 0;
    for (size_t off = 8; off + 12 <= n;) {
        uint32_t len = be32(b + off);
        const uint8_t *type = b + off + 4, *d = b + off + 8;
        if (len > n - off - 12) return 0;
        if (!memcmp(type, "IHDR", 4) && len >= 13) {
            depth = d[8];
            ctype = d[9];
        } else if (!memcmp(type, "PLTE", 4)) {
            plte = d;
            nplte = len / 3;
        } else if (!memcmp(type, "tRNS", 4)) {
            /* PngImagePlugin.chunk_tRNS, then Image.convert("RGB") */
            if (ctype == 0 && depth <= 8 && depth > 1 && len >= 2) {
                key[0] = key[1] = key[2] = (unsigned char)(((uint32_t)d[0] << 8 | d[1]) & 0xff);
                return 1;
            }
            if (ctype == 2 && len >= 6) {
                for (int c = 0; c < 3; c++) key[c] = d[2 * c + 1];   /* (v & 0xff): the low byte */
                return 1;
            }
            if (ctype == 3) {
                size_t zero = len, zeros = 0;
                for (size_t i = 0; i < len; i++) {
                    if (d[i] == 0) zero = i, zeros++;
                    else if (d[i] != 0xff) return 0;   /* alpha bytes: Pillow drops the transparency */
                }
                if (zeros != 1) return 0;
                if (zero < nplte) memcpy(key, plte + 3 * zero, 3);
                else key[0] = key[1] = key[2] = 0;
                return 1;
            }
            return 0;
        } else if (!memcmp(type, "IDAT", 4) || !memcmp(type, "IEND", 4)) {
            return 0;
        }
        off += 12 + (size_t)len;
    }
    return 0;
}

static void whiten(mt_image *img, const unsigned char key[3]) {
    size_t n = (size_t)img->w * img->h;
    for (size_t i = 0; i < n; i++) {
        uint8_t *q = img->rgb + 3 * i;
        if (q[0] == key[0] && q[1] == key[1] && q[2] == key[2]) q[0] = q[1] = q[2] = 255;
    }
}

int mt_vlm_image_decode(const mt_vlm_proc *p, mt_image *img, const void *data, size_t n, const mt_image_opts *opts,
                        mt_err *err) {
    MT_TRY(mt_image_decode(img, data, n, opts, err));
    unsigned char key[3];
    if (p && p->do_convert_rgb && mt_vlm_color_key(data, n, key)) whiten(img, key);
    return MT_OK;
}

int mt_vlm_image_load(const mt_vlm_proc *p, mt_image *img, const char *path, const mt_image_opts *opts, mt_err *err) {
    memset(img, 0, sizeof *img);
    char *buf = NULL;
    size_t n = 0;
    size_t cap = opts && opts->max_bytes ? (size_t)opts->max_bytes : (size_t)MT_IMAGE_MAX_BYTES_DEFAULT;
    int rc = mt_read_file_max(path, cap, &buf, &n, err);
    if (rc == MT_OK) rc = mt_vlm_image_decode(p, img, buf, n, opts, err);
    free(buf);
    if (rc != MT_OK && err && strncmp(err->msg, path, strlen(path)) != 0) mt_preferr(err, "%s", path);
    return rc;
}

/* ---------------------------------------------------------------- prompt text */

long mt_vlm_image_tokens(const mt_vlm_proc *p, const mt_vlm_pixels *px) {
    switch (p->text_kind) {
    case MT_VLM_TEXT_IDEFICS3:
        return (long)p->image_seq_len * (px->rows || px->cols ? (long)px->rows * px->cols + 1 : 1);
    case MT_VLM_TEXT_QWEN:
        return (long)px->grid_t * px->grid_h * px->grid_w / ((long)p->merge * p->merge);
    case MT_VLM_TEXT_GEMMA3:
        return (long)p->image_seq_len * (1 + px->n_crops);
    default:
        if (p->kind == MT_PROC_CLIP)
            return (long)(px->h / p->tok_patch) * (px->w / p->tok_patch) + p->tok_additional - p->tok_select_default;
        if (p->image_seq_len) return p->image_seq_len;
        return (long)(px->h / 14) * (px->w / 14);
    }
}

typedef struct sbuf {
    char *s;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s) {
    size_t k = strlen(s);
    if (b->oom) return;
    if (b->n + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + k + 1) cap *= 2;
        char *t = realloc(b->s, cap);
        if (!t) {
            b->oom = 1;
            return;
        }
        b->s = t;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, k + 1);
    b->n += k;
}

static void sb_rep(sbuf *b, const char *s, long n) {
    for (long i = 0; i < n; i++) sb_add(b, s);
}

static void gemma3_image(sbuf *b, int n) {
    sb_add(b, "\n\n<start_of_image>");
    sb_rep(b, "<image_soft_token>", n);
    sb_add(b, "<end_of_image>\n\n");
}

int mt_vlm_image_text(const mt_vlm_proc *p, const mt_vlm_pixels *px, char **out, mt_err *err) {
    *out = NULL;
    sbuf b = {0};
    sb_add(&b, "");
    switch (p->text_kind) {
    case MT_VLM_TEXT_IDEFICS3: {
        int N = p->image_seq_len;
        if (px->rows || px->cols) {
            char tag[64];
            for (int r = 0; r < px->rows; r++) {
                for (int c = 0; c < px->cols; c++) {
                    snprintf(tag, sizeof tag, "<fake_token_around_image><row_%d_col_%d>", r + 1, c + 1);
                    sb_add(&b, tag);
                    sb_rep(&b, "<image>", N);
                }
                sb_add(&b, "\n");
            }
            sb_add(&b, "\n");
        }
        sb_add(&b, "<fake_token_around_image><global-img>");
        sb_rep(&b, "<image>", N);
        sb_add(&b, "<fake_token_around_image>");
        break;
    }
    case MT_VLM_TEXT_QWEN:
        sb_rep(&b, "<|image_pad|>", mt_vlm_image_tokens(p, px));
        break;
    case MT_VLM_TEXT_GEMMA3:
        if (px->n_crops) {
            sb_add(&b, "Here is the original image ");
            gemma3_image(&b, p->image_seq_len);
            sb_add(&b, " and here are some crops to help you see better ");
            for (int i = 0; i < px->n_crops; i++) {
                if (i) sb_add(&b, " ");
                gemma3_image(&b, p->image_seq_len);
            }
        } else {
            gemma3_image(&b, p->image_seq_len);
        }
        break;
    default: {
        long n = mt_vlm_image_tokens(p, px);
        if (n < 0) n = 0;
        sb_rep(&b, "<image>", n);
        break;
    }
    }
    if (b.oom) {
        free(b.s);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    *out = b.s;
    return MT_OK;
}
