/* fuzz_image.c - libFuzzer target: the PNG and JPEG decoders (mt_image_decode:
 * header checks, the pixel limit, libpng / libjpeg error recovery, EXIF
 * orientation, the conversions to RGB) and the base64 / data-URL parser; each
 * decoded image is also resized once (small targets keep runs fast).
 * The first input byte picks the path: even -> the bytes are an image, odd -> a
 * data URL or base64 string. */
#include <stdint.h>
#include <stdlib.h>

#include "image/image.h"
#include "image/resize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1u << 20)) return 0;
    mt_err err;
    mt_image im;
    /* 4 Mpixel cap: bounded memory and time per input */
    mt_image_opts o = {.max_pixels = 1u << 22, .max_bytes = 1u << 20};
    int rc;
    if (data[0] & 1) {
        uint8_t *p = NULL;
        size_t n = 0;
        if (mt_base64_payload((const char *)data + 1, size - 1, 1u << 20, &p, &n, &err) == MT_OK) {
            if (!p || n == 0) abort();
            free(p);
        } else if (p || n) {
            abort();   /* failure leaves nothing behind */
        }
        rc = mt_image_load_base64(&im, (const char *)data + 1, size - 1, &o, &err);
    } else {
        rc = mt_image_decode(&im, data + 1, size - 1, &o, &err);
    }
    if (rc != MT_OK) {
        if (im.rgb || im.w || im.h) abort();
        return 0;
    }
    if (!im.rgb || im.w < 1 || im.h < 1 || (uint64_t)im.w * im.h > o.max_pixels) abort();
    mt_image out;
    int w = im.w > 64 ? 64 : im.w + 1, h = im.h > 64 ? 32 : im.h + 3;
    if (mt_image_resize(&out, &im, w, h, (data[0] >> 1) % 6, &err) == MT_OK) {
        if (out.w != w || out.h != h) abort();
        mt_image_clear(&out);
    }
    mt_image_clear(&im);
    return 0;
}
