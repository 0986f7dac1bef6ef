/* fuzz_vlm_proc.c - libFuzzer target: the mlx-vlm image processors
 * (mt_vlm_preprocess, mt_vlm_images_make, mt_vlm_image_text) over decoded images
 * and random settings, and mt_vlm_color_key over the raw bytes.
 * Input: 16 setting bytes, then a PNG or JPEG (seeds in tests/fuzz/seeds/vlm_proc).  Sizes are kept small so that one run stays fast; the checks:
 * no crash, failure leaves nothing behind, the tensor shapes and the token count
 * agree with the text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "image/processor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const TYPES[] = {"idefics3", "smolvlm", "gemma3", "paligemma", "llava", "qwen2_vl", "qwen2_5_vl"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 16 || size > (1u << 20)) return 0;
    const uint8_t *s = data;
    mt_err err;
    mt_vlm_proc p;
    if (mt_vlm_proc_defaults(&p, TYPES[s[0] % 7], &err) != MT_OK) abort();
    p.resample = s[1] % 7;            /* 6: invalid, must be refused */
    p.do_rescale = s[2] & 1;
    p.do_normalize = s[2] >> 1 & 1;
    p.do_resize = (s[2] >> 2 & 3) != 0;
    p.do_image_splitting = s[2] >> 4 & 1;
    p.do_center_crop = s[2] >> 5 & 1;
    p.do_pan_and_scan = s[2] >> 6 & 1;
    p.do_convert_rgb = s[2] >> 7;
    p.std[s[3] % 4 == 3 ? 1 : 0] = (s[3] >> 2) / 16.0;   /* sometimes 0: refused */
    p.longest_edge = 1 + s[4];
    p.tile = 8 + s[5] % 57;
    p.height = 1 + s[6] % 64;
    p.width = 1 + s[7] % 64;
    p.shortest_edge = s[8] & 1 ? 1 + (s[8] >> 1) % 64 : 0;
    p.crop_h = 1 + s[9] % 64;
    p.crop_w = 1 + s[10] % 64;
    p.pas_min_crop = 1 + s[11] % 64;
    p.pas_max_crops = 1 + s[12] % 8;
    p.pas_min_ratio = 1 + (s[12] >> 3) / 8.0;
    p.patch = 1 + s[13] % 16;
    p.merge = 1 + (s[13] >> 4) % 3;
    p.temporal_patch = 1 + s[14] % 3;
    p.min_pixels = (double)(s[14] >> 2) * 64;
    p.max_pixels = 1 + (double)s[15] * 256;
    p.image_seq_len = s[15] % 9;
    p.tok_patch = 1 + s[11] % 20;

    unsigned char key[3];
    mt_vlm_color_key(data + 16, size - 16, key);
    mt_image im;
    mt_image_opts o = {.max_pixels = 1u << 18, .max_bytes = 1u << 20};
    if (mt_vlm_image_decode(&p, &im, data + 16, size - 16, &o, &err) != MT_OK) {
        if (im.rgb || im.w || im.h) abort();
        return 0;
    }
    mt_vlm_pixels px;
    int rc = mt_vlm_preprocess(&p, &im, &px, &err);
    if (rc != MT_OK) {
        if (px.data || px.n) abort();
    } else {
        if (!px.data || px.n < 1 || px.h < 1 || px.w < 1) abort();
        if (p.kind == MT_PROC_QWEN2VL &&
            (px.n_patches != (size_t)px.grid_t * px.grid_h * px.grid_w || px.patch_dim != (size_t)3 * p.temporal_patch * p.patch * p.patch))
            abort();
        if (p.kind == MT_PROC_IDEFICS3 && (px.rows || px.cols) && px.n != px.rows * px.cols + 1) abort();
        char *text = NULL;
        if (mt_vlm_image_text(&p, &px, &text, &err) == MT_OK) {
            const char *tok = p.text_kind == MT_VLM_TEXT_QWEN     ? "<|image_pad|>"
                              : p.text_kind == MT_VLM_TEXT_GEMMA3 ? "<image_soft_token>"
                                                                  : "<image>";
            long cnt = 0, want = mt_vlm_image_tokens(&p, &px);
            for (const char *q = text; (q = strstr(q, tok)); q += strlen(tok)) cnt++;
            if (!text || (want >= 0 && cnt != want)) abort();
            free(text);
        }
        mt_vlm_pixels_free(&px);
    }
    mt_image_clear(&im);
    return 0;
}
