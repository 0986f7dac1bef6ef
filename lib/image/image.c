/* image.c - PNG (libpng) and JPEG (libjpeg-turbo) decoding to 8-bit RGB the way
 * Pillow's Image.open + ImageOps.exif_transpose + convert("RGB") gives it; base64
 * and data-URL payloads; EXIF orientation.  See image.h for the rules.
 * Both libraries report fatal errors through a callback that longjmps back here
 * with the message kept; warnings are ignored, except libjpeg's "premature end of
 * data", which Pillow also treats as an error ("image file is truncated").
 * ref: Pillow PngImagePlugin.py, JpegImagePlugin.py, Convert.c, ImageOps.py */
#include "image/image.h"

#include <limits.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "core/file.h"

void mt_image_clear(mt_image *img) {
    if (!img) return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

int mt_image_sniff(const void *data, size_t n) {
    const uint8_t *p = data;
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && memcmp(p, png_sig, 8) == 0) return MT_IMG_PNG;
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return MT_IMG_JPEG;
    return MT_IMG_UNKNOWN;
}

static uint64_t max_pixels_of(const mt_image_opts *o) {
    return o && o->max_pixels ? o->max_pixels : MT_IMAGE_MAX_PIXELS_DEFAULT;
}

static uint64_t max_bytes_of(const mt_image_opts *o) {
    return o && o->max_bytes ? o->max_bytes : MT_IMAGE_MAX_BYTES_DEFAULT;
}

/* The size check every decoder runs on the header's width and height. */
static int check_size(uint64_t w, uint64_t h, const mt_image_opts *o, const char *fmt, mt_err *err) {
    if (w == 0 || h == 0) return mt_seterr(err, MT_EFORMAT, "%s: image has zero width or height", fmt);
    uint64_t lim = max_pixels_of(o);
    /* w, h < 2^31, so w*h cannot wrap; the SIZE_MAX bound keeps every buffer size
     * (up to 8 bytes a pixel) exact whatever limit the caller sets */
    if (w > INT_MAX || h > INT_MAX || w * h > lim || w * h > SIZE_MAX / 16)
        return mt_seterr(err, MT_ELIMIT,
                         "%s: %llux%llu image has more than %llu pixels (possible decompression bomb)", fmt,
                         (unsigned long long)w, (unsigned long long)h, (unsigned long long)lim);
    return MT_OK;
}

/* ------------------------------------------------------------------ EXIF */

static unsigned rd16(const uint8_t *p, int be) { return be ? (unsigned)p[0] << 8 | p[1] : (unsigned)p[1] << 8 | p[0]; }
static uint32_t rd32(const uint8_t *p, int be) {
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* The orientation tag of IFD0: -1 when absent (or the block is malformed), 0 when
 * present but not a single integer (Pillow then has a tuple or a float, which
 * transposes nothing), else its value.  The last entry wins, as in a dict. */
static long exif_tag(const uint8_t *t, size_t n, int strip) {
    /* Pillow's Exif.load drops up to two leading "Exif\0\0" headers; a PNG eXIf
     * chunk reaches it with one prepended, so only one of its own goes */
    for (int k = 0; k < strip && t && n >= 6 && memcmp(t, "Exif\0\0", 6) == 0; k++) {
        t += 6;
        n -= 6;
    }
    if (!t || n < 8) return -1;
    int be;
    if (t[0] == 'I' && t[1] == 'I') be = 0;
    else if (t[0] == 'M' && t[1] == 'M') be = 1;
    else return -1;
    if (rd16(t + 2, be) != 42) return -1;
    uint32_t ifd = rd32(t + 4, be);
    if (ifd > n || n - ifd < 2) return -1;
    unsigned cnt = rd16(t + ifd, be);
    long found = -1;
    for (unsigned i = 0; i < cnt; i++) {
        size_t e = (size_t)ifd + 2 + (size_t)i * 12;
        if (e + 12 > n) break;
        if (rd16(t + e, be) != 0x0112) continue;
        unsigned type = rd16(t + e + 2, be);
        uint32_t count = rd32(t + e + 4, be);
        const uint8_t *v = t + e + 8;
        if (count != 1) found = 0;
        else if (type == 1 || type == 7) found = v[0];                 /* BYTE, UNDEFINED */
        else if (type == 6) found = (int8_t)v[0];                      /* SBYTE */
        else if (type == 3) found = rd16(v, be);                       /* SHORT */
        else if (type == 8) found = (int16_t)rd16(v, be);              /* SSHORT */
        else if (type == 4) found = (long)rd32(v, be);                 /* LONG */
        else if (type == 9) found = (long)(int32_t)rd32(v, be);        /* SLONG */
        else found = 0;
        if (found < 0) found = 0;
    }
    return found;
}

int mt_exif_orientation(const uint8_t *t, size_t n) {
    long v = exif_tag(t, n, 2);
    return v >= 1 && v <= 8 ? (int)v : 1;
}

/* Pillow's XMP fallback: the first `tiff:Orientation="D` or `tiff:Orientation>D`. */
static long xmp_tag(const uint8_t *x, size_t n) {
    static const char key[] = "tiff:Orientation";
    size_t kl = sizeof key - 1;
    for (size_t i = 0; x && i + kl < n; i++) {
        if (x[i] != 't' || memcmp(x + i, key, kl) != 0) continue;
        size_t j = i + kl;
        if (j + 2 < n && x[j] == '=' && x[j + 1] == '"' && x[j + 2] >= '0' && x[j + 2] <= '9') return x[j + 2] - '0';
        if (j + 1 < n && x[j] == '>' && x[j + 1] >= '0' && x[j + 1] <= '9') return x[j + 1] - '0';
    }
    return -1;
}

/* The orientation exif_transpose applies: EXIF's tag, else XMP's; 1 = none. */
static int resolve_orientation(const uint8_t *exif, size_t en, int strip, const uint8_t *xmp, size_t xn) {
    long v = exif_tag(exif, en, strip);
    if (v < 0) v = xmp_tag(xmp, xn);
    return v >= 2 && v <= 8 ? (int)v : 1;
}

int mt_image_orient(mt_image *img, int o, mt_err *err) {
    if (o < 2 || o > 8 || !img->rgb) return MT_OK;
    int w = img->w, h = img->h;
    int swap = o >= 5;
    int ow = swap ? h : w, oh = swap ? w : h;
    uint8_t *out = malloc((size_t)w * h * 3);
    if (!out) return mt_seterr(err, MT_ENOMEM, "image: out of memory rotating %dx%d", w, h);
    for (int y = 0; y < oh; y++) {
        for (int x = 0; x < ow; x++) {
            int sx, sy;   /* the source pixel of output (x, y), as ImageOps.exif_transpose maps it */
            switch (o) {
            case 2: sx = w - 1 - x; sy = y; break;              /* FLIP_LEFT_RIGHT */
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;      /* ROTATE_180 */
            case 4: sx = x; sy = h - 1 - y; break;              /* FLIP_TOP_BOTTOM */
            case 5: sx = y; sy = x; break;                      /* TRANSPOSE */
            case 6: sx = y; sy = h - 1 - x; break;              /* ROTATE_270 */
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;      /* TRANSVERSE */
            default: sx = w - 1 - y; sy = x; break;             /* 8: ROTATE_90 */
            }
            memcpy(out + ((size_t)y * ow + x) * 3, img->rgb + ((size_t)sy * w + sx) * 3, 3);
        }
    }
    free(img->rgb);
    img->rgb = out;
    img->w = ow;
    img->h = oh;
    return MT_OK;
}

/* ------------------------------------------------------------------ PNG */

typedef struct png_ctx {
    jmp_buf jb, jb_end;
    jmp_buf *jbp;          /* where errors go: jb, or jb_end while reading the trailing chunks */
    char msg[200];
    const uint8_t *data;
    size_t n, pos;
    uint8_t *rows;         /* decoded rows (libpng's output format) */
    png_bytep *rowp;
    mt_image out;
} png_ctx;

static void png_err_cb(png_structp png, png_const_charp msg) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "error");
    longjmp(*c->jbp, 1);
}

static void png_warn_cb(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void png_read_cb(png_structp png, png_bytep dst, size_t len) {
    png_ctx *c = png_get_io_ptr(png);
    if (len > c->n - c->pos) png_error(png, "file is truncated");
    memcpy(dst, c->data + c->pos, len);
    c->pos += len;
}

/* Hex digits of ImageMagick's "Raw profile type exif" text ("\nexif\n   LEN\nHEX..."):
 * Pillow joins the lines after the third and reads them with bytes.fromhex.
 * Returns a malloc'd buffer, or NULL if the text is not that. */
static uint8_t *raw_profile_exif(const char *s, size_t n, size_t *out_n) {
    size_t i = 0;
    for (int nl = 0; nl < 3 && i < n; i++)
        if (s[i] == '\n') nl++;
    uint8_t *b = malloc(n / 2 + 1);
    size_t o = 0;
    int hi = -1;
    for (; b && i < n; i++) {
        char ch = s[i];
        if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f') {
            if (hi >= 0) break;   /* fromhex refuses whitespace inside a byte */
            continue;
        }
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
              : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (v < 0) break;
        if (hi < 0) hi = v;
        else {
            b[o++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (!b || i < n || hi >= 0) {   /* not all valid hex: Pillow would fail; we ignore it */
        free(b);
        return NULL;
    }
    *out_n = o;
    return b;
}

/* The last eXIf chunk's data (Pillow keeps the last; libpng refuses an eXIf that
 * starts with "Exif\0\0", which Pillow reads), found by walking the chunks. */
static void png_find_exif(const uint8_t *d, size_t n, const uint8_t **out, size_t *out_n) {
    size_t pos = 8;
    while (n >= 12 && pos <= n - 12) {
        uint32_t len = (uint32_t)d[pos] << 24 | (uint32_t)d[pos + 1] << 16 | (uint32_t)d[pos + 2] << 8 | d[pos + 3];
        const uint8_t *type = d + pos + 4;
        if (len > n - pos - 12) break;
        if (memcmp(type, "eXIf", 4) == 0) {
            *out = d + pos + 8;
            *out_n = len;
        }
        if (memcmp(type, "IEND", 4) == 0) break;
        pos += (size_t)len + 12;
    }
}

/* The orientation Pillow's PngImageFile.getexif finds: it loads the whole file
 * first, so chunks after IDAT count.  The trailing chunks are read with errors
 * ignored (the pixels are complete; Pillow tolerates a damaged tail too). */
static void png_orientation(png_ctx *c, png_structp png, png_infop info, int *orient) {
    c->jbp = &c->jb_end;
    if (!setjmp(c->jb_end)) png_read_end(png, info);
    c->jbp = &c->jb;
    const uint8_t *exif = NULL, *xmp = NULL;
    size_t en = 0, xn = 0;
    uint8_t *raw = NULL;
    png_find_exif(c->data, c->n, &exif, &en);
    int exif_chunk = exif != NULL;
    png_textp text = NULL;
    int ntext = 0;
    png_get_text(png, info, &text, &ntext);
    for (int i = 0; i < ntext; i++) {
        size_t len = text[i].compression > 0 ? text[i].itxt_length : text[i].text_length;
        if (!text[i].key || !text[i].text) continue;
        if (!exif_chunk && strcmp(text[i].key, "Raw profile type exif") == 0) {   /* the last one counts */
            free(raw);
            raw = raw_profile_exif(text[i].text, len, &en);
            exif = raw;
        } else if (strcmp(text[i].key, "XML:com.adobe.xmp") == 0) {
            xmp = (const uint8_t *)text[i].text;
            xn = len;
        }
    }
    *orient = resolve_orientation(exif, en, exif_chunk ? 1 : 2, xmp, xn);
    free(raw);
}

/* The body runs between setjmp and the cleanup; c holds everything that must
 * survive a longjmp. */
static int png_decode_body(png_ctx *c, png_structp png, png_infop info, const mt_image_opts *o,
                           int *orient, mt_err *err) {
    png_set_read_fn(png, c, png_read_cb);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);   /* our own pixel limit decides */
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    MT_TRY(check_size(w, h, o, "PNG", err));
    int ct = png_get_color_type(png, info), bd = png_get_bit_depth(png, info);
    int grey16 = ct == PNG_COLOR_TYPE_GRAY && bd == 16;   /* Pillow: I;16, clipped to 8 bits */
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ct == PNG_COLOR_TYPE_GRAY && bd < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bd == 16 && !grey16) png_set_strip_16(png);      /* Pillow's ;16B rawmodes keep the high byte */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int ch = png_get_channels(png, info), obd = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (ch < 1 || ch > 4 || (obd != 8 && obd != 16) || rowbytes < (size_t)w * ch * (obd / 8))
        return mt_seterr(err, MT_EUNSUPPORTED, "PNG: unsupported layout (%d channels, %d bits)", ch, obd);
    c->rows = malloc(rowbytes * h);
    c->rowp = malloc(sizeof *c->rowp * h);
    c->out.rgb = malloc((size_t)w * h * 3);
    if (!c->rows || !c->rowp || !c->out.rgb) return mt_seterr(err, MT_ENOMEM, "PNG: out of memory for %ux%u", w, h);
    for (png_uint_32 y = 0; y < h; y++) c->rowp[y] = c->rows + rowbytes * y;
    png_read_image(png, c->rowp);
    if (*orient == 0) png_orientation(c, png, info, orient);
    c->out.w = (int)w;
    c->out.h = (int)h;
    int bps = obd / 8;   /* bytes per sample */
    for (png_uint_32 y = 0; y < h; y++) {
        const uint8_t *s = c->rowp[y];
        uint8_t *d = c->out.rgb + (size_t)y * w * 3;
        for (png_uint_32 x = 0; x < w; x++, s += (size_t)ch * bps, d += 3) {
            if (ch >= 3) {   /* RGB, RGBA: alpha dropped */
                d[0] = s[0];
                d[1] = s[bps];
                d[2] = s[2 * bps];
            } else {         /* G, GA */
                unsigned v = s[0];
                if (bps == 2) {
                    unsigned v16 = (unsigned)s[0] << 8 | s[1];
                    v = grey16 ? (v16 > 255 ? 255 : v16) : s[0];
                }
                d[0] = d[1] = d[2] = (uint8_t)v;
            }
        }
    }
    return MT_OK;
}

static int png_decode(mt_image *img, const uint8_t *data, size_t n, const mt_image_opts *o, int *orient,
                      mt_err *err) {
    png_ctx *c = calloc(1, sizeof *c);
    if (!c) return mt_seterr(err, MT_ENOMEM, "PNG: out of memory");
    c->data = data;
    c->n = n;
    c->jbp = &c->jb;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, c, png_err_cb, png_warn_cb);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc;
    if (!png || !info) {
        rc = mt_seterr(err, MT_ENOMEM, "PNG: out of memory");
    } else if (setjmp(c->jb)) {
        rc = mt_seterr(err, MT_EFORMAT, "PNG: %s", c->msg);
    } else {
        rc = png_decode_body(c, png, info, o, orient, err);
    }
    if (png) png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    free(c->rows);
    free(c->rowp);
    if (rc == MT_OK) *img = c->out;
    else free(c->out.rgb);
    free(c);
    return rc;
}

/* ------------------------------------------------------------------ JPEG */

typedef struct jpg_ctx {
    struct jpeg_error_mgr pub;   /* first: libjpeg hands back this pointer */
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
    uint8_t *row;
    mt_image out;
} jpg_ctx;

static void jpg_error_exit(j_common_ptr ci) {
    jpg_ctx *c = (jpg_ctx *)ci->err;
    c->pub.format_message(ci, c->msg);
    longjmp(c->jb, 1);
}

static void jpg_emit(j_common_ptr ci, int level) {
    jpg_ctx *c = (jpg_ctx *)ci->err;
    if (level == -1 && c->pub.msg_code == JWRN_JPEG_EOF) {   /* data ran out: Pillow says truncated */
        snprintf(c->msg, sizeof c->msg, "file is truncated");
        longjmp(c->jb, 1);
    }
}

static void jpg_output(j_common_ptr ci) { (void)ci; }

/* Pillow's MULDIV255 and cmyk2rgb (Convert.c). */
static uint8_t muldiv255(int a, int b) {
    int t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static uint8_t clip8i(int v) { return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v; }

/* Pillow's JpegImagePlugin: APP1 "Exif\0\0" blocks are concatenated (the first
 * whole, later ones without their 6-byte header); the last APP1 XMP packet is
 * kept for the fallback. */
static int jpg_orientation(struct jpeg_decompress_struct *ci, int *orient, mt_err *err) {
    static const char xmp_id[] = "http://ns.adobe.com/xap/1.0/";   /* followed by a NUL */
    size_t total = 0;
    const uint8_t *xmp = NULL;
    size_t xn = 0;
    for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next) {
        if (m->marker != JPEG_APP0 + 1) continue;
        if (m->data_length >= 6 && memcmp(m->data, "Exif\0\0", 6) == 0) total += m->data_length - (total ? 6 : 0);
        else if (m->data_length >= sizeof xmp_id && memcmp(m->data, xmp_id, sizeof xmp_id) == 0) {
            xmp = m->data + sizeof xmp_id;
            xn = m->data_length - sizeof xmp_id;
        }
    }
    uint8_t *exif = NULL;
    if (total) {
        exif = malloc(total);
        if (!exif) return mt_seterr(err, MT_ENOMEM, "JPEG: out of memory");
        size_t o = 0;
        for (jpeg_saved_marker_ptr m = ci->marker_list; m; m = m->next) {
            if (m->marker != JPEG_APP0 + 1 || m->data_length < 6 || memcmp(m->data, "Exif\0\0", 6) != 0) continue;
            size_t skip = o ? 6 : 0;   /* the first block whole, later ones without their header */
            memcpy(exif + o, m->data + skip, m->data_length - skip);
            o += m->data_length - skip;
        }
    }
    *orient = resolve_orientation(exif, total, 2, xmp, xn);
    free(exif);
    return MT_OK;
}

static int jpg_decode_body(jpg_ctx *c, struct jpeg_decompress_struct *ci, const uint8_t *data, size_t n,
                           const mt_image_opts *o, int *orient, mt_err *err) {
    jpeg_mem_src(ci, data, (unsigned long)n);
    jpeg_save_markers(ci, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(ci, TRUE);
    MT_TRY(check_size(ci->image_width, ci->image_height, o, "JPEG", err));
    int cmyk = 0;
    switch (ci->jpeg_color_space) {
    case JCS_GRAYSCALE: ci->out_color_space = JCS_GRAYSCALE; break;
    case JCS_YCbCr: case JCS_RGB: ci->out_color_space = JCS_RGB; break;
    case JCS_CMYK: case JCS_YCCK: ci->out_color_space = JCS_CMYK; cmyk = 1; break;
    default:
        return mt_seterr(err, MT_EUNSUPPORTED, "JPEG: unsupported colour space (%d components)",
                         ci->num_components);
    }
    if (*orient == 0) MT_TRY(jpg_orientation(ci, orient, err));
    jpeg_start_decompress(ci);
    unsigned w = ci->output_width, h = ci->output_height;
    int nc = ci->output_components;
    if ((nc != 1 && nc != 3 && nc != 4) || w != ci->image_width || h != ci->image_height)
        return mt_seterr(err, MT_EUNSUPPORTED, "JPEG: unexpected output layout");
    c->row = malloc((size_t)w * nc);
    c->out.rgb = malloc((size_t)w * h * 3);
    if (!c->row || !c->out.rgb) return mt_seterr(err, MT_ENOMEM, "JPEG: out of memory for %ux%u", w, h);
    int inv = cmyk && ci->saw_Adobe_marker;   /* Pillow's "CMYK;I" rawmode for Adobe files */
    while (ci->output_scanline < h) {
        unsigned y = ci->output_scanline;
        JSAMPROW rp = c->row;
        if (jpeg_read_scanlines(ci, &rp, 1) != 1)
            return mt_seterr(err, MT_EFORMAT, "JPEG: scanline %u unreadable", y);
        uint8_t *d = c->out.rgb + (size_t)y * w * 3;
        const uint8_t *s = c->row;
        for (unsigned x = 0; x < w; x++, d += 3, s += nc) {
            if (nc == 1) {
                d[0] = d[1] = d[2] = s[0];
            } else if (nc == 3) {
                d[0] = s[0];
                d[1] = s[1];
                d[2] = s[2];
            } else {
                int cc[4];
                for (int k = 0; k < 4; k++) cc[k] = inv ? 255 - s[k] : s[k];
                int nk = 255 - cc[3];
                for (int k = 0; k < 3; k++) d[k] = clip8i(nk - muldiv255(cc[k], nk));
            }
        }
    }
    c->out.w = (int)w;
    c->out.h = (int)h;
    return MT_OK;
}

static int jpg_decode(mt_image *img, const uint8_t *data, size_t n, const mt_image_opts *o, int *orient,
                      mt_err *err) {
    if (n > ULONG_MAX) return mt_seterr(err, MT_ELIMIT, "JPEG: input too large");
    jpg_ctx *c = calloc(1, sizeof *c);
    struct jpeg_decompress_struct *ci = calloc(1, sizeof *ci);
    if (!c || !ci) {
        free(c);
        free(ci);
        return mt_seterr(err, MT_ENOMEM, "JPEG: out of memory");
    }
    ci->err = jpeg_std_error(&c->pub);
    c->pub.error_exit = jpg_error_exit;
    c->pub.emit_message = jpg_emit;
    c->pub.output_message = jpg_output;
    int rc;
    volatile int created = 0;
    if (setjmp(c->jb)) {
        rc = mt_seterr(err, MT_EFORMAT, "JPEG: %s", c->msg);
    } else {
        jpeg_create_decompress(ci);
        created = 1;
        rc = jpg_decode_body(c, ci, data, n, o, orient, err);
    }
    if (created) jpeg_destroy_decompress(ci);
    free(c->row);
    if (rc == MT_OK) *img = c->out;
    else free(c->out.rgb);
    free(c);
    free(ci);
    return rc;
}

/* ------------------------------------------------------------------ entry points */

int mt_image_decode(mt_image *img, const void *data, size_t n, const mt_image_opts *o, mt_err *err) {
    memset(img, 0, sizeof *img);
    if (!data || n == 0) return mt_seterr(err, MT_EFORMAT, "image: empty input");
    if ((uint64_t)n > max_bytes_of(o))
        return mt_seterr(err, MT_ELIMIT, "image: %zu bytes is more than the %llu-byte limit", n,
                         (unsigned long long)max_bytes_of(o));
    int orient = o && o->no_exif ? 1 : 0;   /* 0: not looked at yet */
    int rc;
    switch (mt_image_sniff(data, n)) {
    case MT_IMG_PNG: rc = png_decode(img, data, n, o, &orient, err); break;
    case MT_IMG_JPEG: rc = jpg_decode(img, data, n, o, &orient, err); break;
    default: return mt_seterr(err, MT_EUNSUPPORTED, "image: not a PNG or JPEG file");
    }
    if (rc == MT_OK && orient > 1 && (rc = mt_image_orient(img, orient, err)) != MT_OK) mt_image_clear(img);
    return rc;
}

int mt_image_load(mt_image *img, const char *path, const mt_image_opts *o, mt_err *err) {
    memset(img, 0, sizeof *img);
    char *buf = NULL;
    size_t n = 0;
    int rc = mt_read_file_max(path, max_bytes_of(o), &buf, &n, err);
    if (rc == MT_OK) rc = mt_image_decode(img, buf, n, o, err);
    free(buf);
    if (rc != MT_OK && err && strncmp(err->msg, path, strlen(path)) != 0) mt_preferr(err, "%s", path);
    return rc;
}

/* ------------------------------------------------------------------ base64 */

static int b64_val(unsigned char ch) {
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+' || ch == '-') return 62;
    if (ch == '/' || ch == '_') return 63;
    return -1;
}

int mt_base64_payload(const char *s, size_t n, uint64_t max_bytes, uint8_t **out, size_t *out_n, mt_err *err) {
    *out = NULL;
    *out_n = 0;
    if (!s) return mt_seterr(err, MT_EINVAL, "base64: no data");
    if (!max_bytes) max_bytes = MT_IMAGE_MAX_BYTES_DEFAULT;
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) i++;
    if (n - i >= 5 && strncasecmp(s + i, "data:", 5) == 0) {
        const char *comma = memchr(s + i, ',', n - i);
        if (!comma) return mt_seterr(err, MT_EINVAL, "data URL: no ',' before the data");
        size_t hl = (size_t)(comma - (s + i));
        if (hl < 12 || strncasecmp(comma - 7, ";base64", 7) != 0)
            return mt_seterr(err, MT_EINVAL, "data URL: only ';base64,' data is supported");
        i = (size_t)(comma - s) + 1;
    }
    size_t cap = (n - i) / 4 * 3 + 3;
    if ((uint64_t)cap > max_bytes + 3) cap = (size_t)max_bytes + 3;
    uint8_t *buf = malloc(cap ? cap : 1);
    if (!buf) return mt_seterr(err, MT_ENOMEM, "base64: out of memory");
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t o = 0, nchar = 0;
    for (; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') continue;
        if (ch == '=') { pad++; continue; }
        int v = b64_val(ch);
        if (v < 0 || pad) {
            free(buf);
            return mt_seterr(err, MT_EINVAL, v < 0 ? "base64: invalid character at offset %zu"
                                                   : "base64: data after '=' padding at offset %zu", i);
        }
        nchar++;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if ((uint64_t)o >= max_bytes) {
                free(buf);
                return mt_seterr(err, MT_ELIMIT, "base64: decoded data is more than %llu bytes",
                                 (unsigned long long)max_bytes);
            }
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (nchar % 4 == 1 || pad > 2) {
        free(buf);
        return mt_seterr(err, MT_EINVAL, "base64: truncated data");
    }
    if (o == 0) {
        free(buf);
        return mt_seterr(err, MT_EINVAL, "base64: no data");
    }
    *out = buf;
    *out_n = o;
    return MT_OK;
}

int mt_image_load_base64(mt_image *img, const char *s, size_t n, const mt_image_opts *o, mt_err *err) {
    memset(img, 0, sizeof *img);
    uint8_t *buf = NULL;
    size_t len = 0;
    MT_TRY(mt_base64_payload(s, n, max_bytes_of(o), &buf, &len, err));
    int rc = mt_image_decode(img, buf, len, o, err);
    free(buf);
    return rc;
}
