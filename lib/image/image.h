/* image.h - image decoding to 8-bit RGB, as mlx-vlm's load_image gives it.
 *
 * PNG (libpng) and JPEG (libjpeg-turbo) from a path, a memory buffer, a
 * `data:image/...;base64,` URL or a bare base64 string.  The result is what
 * `ImageOps.exif_transpose(Image.open(f)).convert("RGB")` gives in Pillow:
 *   - alpha is dropped, never composited (RGBA, LA, tRNS all ignored);
 *   - grey and palette images become RGB by replication / palette lookup;
 *   - 16-bit PNG samples keep their high byte, except 16-bit greyscale, which
 *     Pillow opens as I;16 and clips to 255 when converting (v > 255 -> 255);
 *   - CMYK / YCCK JPEGs are converted with Pillow's cmyk2rgb formula (Adobe
 *     inverted CMYK undone first);
 *   - the orientation exif_transpose applies: the EXIF tag (JPEG: the APP1
 *     "Exif" blocks concatenated; PNG: the eXIf chunk, before or after IDAT, else
 *     ImageMagick's "Raw profile type exif" text), else XMP's tiff:Orientation
 *     (JPEG APP1 XMP, PNG "XML:com.adobe.xmp" text).
 * Decompression bombs are refused from the header, before any pixel is
 * decoded: more than opts->max_pixels pixels is MT_ELIMIT.  Truncated or
 * corrupt data is MT_EFORMAT with a one-line message.  Like Pillow, a PNG
 * whose image data is complete but whose trailing chunks (IEND) are missing
 * still decodes, and a JPEG without its EOI marker is refused.  We are stricter
 * in one place: a PNG cut inside the last IDAT chunk's zlib checksum or CRC is
 * refused, where Pillow decodes it if every row came out.
 *
 * Ownership: mt_image.rgb is malloc'd by the decoder; mt_image_clear frees it.
 * On failure the mt_image is left empty ({0}).  The library never prints.
 * ref: Pillow PngImagePlugin / JpegImagePlugin / Convert.c, ImageOps.exif_transpose */
#ifndef MT_IMAGE_H
#define MT_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Pillow's Image.MAX_IMAGE_PIXELS (1024*1024*1024 // 4 // 3).  Pillow warns above
 * it and refuses above twice it; we refuse above it. */
#define MT_IMAGE_MAX_PIXELS_DEFAULT 89478485ull
/* Encoded inputs larger than this are refused before decoding (256 MiB). */
#define MT_IMAGE_MAX_BYTES_DEFAULT (256ull << 20)

typedef struct mt_image {
    int w, h;        /* pixels */
    uint8_t *rgb;    /* h rows of w RGB triples, row-major, no padding (HWC) */
} mt_image;

typedef struct mt_image_opts {
    uint64_t max_pixels;  /* 0 = MT_IMAGE_MAX_PIXELS_DEFAULT */
    uint64_t max_bytes;   /* encoded size cap for files and base64; 0 = default */
    int no_exif;          /* 1: ignore the EXIF orientation */
} mt_image_opts;

enum mt_image_format { MT_IMG_UNKNOWN = 0, MT_IMG_PNG, MT_IMG_JPEG };

/* The format the first bytes announce (magic numbers), MT_IMG_UNKNOWN if none. */
int mt_image_sniff(const void *data, size_t n);

/* Decode an encoded image held in memory.  opts may be NULL (defaults).
 * Returns MT_OK, MT_EFORMAT (corrupt/truncated), MT_EUNSUPPORTED (not PNG or
 * JPEG), MT_ELIMIT (bomb), MT_ENOMEM. */
int mt_image_decode(mt_image *img, const void *data, size_t n, const mt_image_opts *opts, mt_err *err);

/* Read and decode a file.  Errors name the path. */
int mt_image_load(mt_image *img, const char *path, const mt_image_opts *opts, mt_err *err);

/* Decode a `data:image/<type>;base64,<data>` URL or a bare base64 string
 * (standard or URL-safe alphabet, padding optional, ASCII whitespace ignored). */
int mt_image_load_base64(mt_image *img, const char *s, size_t n, const mt_image_opts *opts, mt_err *err);

/* The bytes a data URL or bare base64 string carries: *out malloc'd (caller
 * frees), *out_n its length.  A `data:` URL must say `;base64,`; max_bytes caps
 * the decoded size (0 = default).  MT_EINVAL on a malformed string. */
int mt_base64_payload(const char *s, size_t n, uint64_t max_bytes, uint8_t **out, size_t *out_n, mt_err *err);

/* Free the pixels and zero the struct (NULL-safe). */
void mt_image_clear(mt_image *img);

/* The EXIF orientation (1..8) found in a TIFF-structured EXIF block (starting at
 * the "II*\0" / "MM\0*" header, or at an "Exif\0\0" prefix), or 1 when absent,
 * out of range or malformed. */
int mt_exif_orientation(const uint8_t *tiff, size_t n);

/* Apply an EXIF orientation (2..8) in place as ImageOps.exif_transpose does
 * (5..8 swap w and h).  Other values leave the image as it is. */
int mt_image_orient(mt_image *img, int orientation, mt_err *err);

#endif
