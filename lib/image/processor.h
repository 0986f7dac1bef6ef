/* processor.h - the image processors of the mlx-vlm families: an RGB image in,
 * the pixel tensors the vision tower takes and the text that stands for the
 * image in the prompt out, exactly as mlx-vlm (transformers' PIL backend, or
 * mlx-vlm's own numpy port for Qwen) makes them.
 *
 * Kinds (picked from config.json's model_type):
 *   MT_PROC_IDEFICS3  idefics3, smolvlm: resize the longest edge to size.longest_edge
 *                     (odd short side bumped to even, 4096 cap), round both sides up
 *                     to tile multiples, cut row-major tile x tile crops and append the
 *                     whole image resized to tile x tile (the "global image") last;
 *                     without splitting one tile x tile image.
 *   MT_PROC_SIGLIP    gemma3, paligemma: resize to size.height x size.width (aspect
 *                     ignored); Gemma 3's pan & scan adds crops of the original.
 *   MT_PROC_CLIP      llava: shortest edge to size.shortest_edge (the long side
 *                     truncated), then a center crop to crop_size (zero fill when smaller).
 *   MT_PROC_QWEN2VL   qwen2_vl, qwen2_5_vl: smart_resize to multiples of patch·merge
 *                     within [min_pixels, max_pixels] (banker's rounding), BICUBIC, then
 *                     the patch rows of the Conv3d patch embedding.
 * Every resize is Pillow's on 8-bit RGB (image/resize.h) with the filter of the
 * config's "resample"; rescale and normalize follow (image_transforms for the HF
 * kinds: float64 rescale then float32 normalize; the Qwen port: both in float32).
 *
 * Ownership: mt_vlm_pixels.data, mt_vlm_images.img[] and the strings returned are
 * malloc'd and owned by the caller (the _free functions release them, NULL-safe).
 * The library never prints.
 * ref: transformers v5 models/{idefics3,smolvlm,gemma3,siglip,clip}/image_processing_pil_*.py,
 *      image_processing_backends.py PilBackend, image_transforms.py (resize, center_crop,
 *      rescale, normalize); mlx-vlm models/{idefics3,smolvlm,gemma3,paligemma,llava,qwen2_vl}/
 *      processing_*.py and models/qwen3_vl/processing_qwen3_vl.py (Qwen3VLImageProcessor). */
#ifndef MT_IMAGE_PROCESSOR_H
#define MT_IMAGE_PROCESSOR_H

#include <stddef.h>

#include "core/err.h"
#include "image/image.h"

enum mt_vlm_proc_kind {
    MT_PROC_IDEFICS3 = 1, /* idefics3 & smolvlm */
    MT_PROC_SIGLIP,       /* square resize: gemma3, paligemma */
    MT_PROC_CLIP,         /* shortest edge + center crop: llava */
    MT_PROC_QWEN2VL,      /* smart_resize + patches: qwen2_vl, qwen2_5_vl */
};

/* How the prompt text for one image is written (mt_vlm_image_text). */
enum mt_vlm_text_kind {
    MT_VLM_TEXT_IDEFICS3 = 1, /* <fake_token_around_image><row_r_col_c><image>xN ... <global-img> */
    MT_VLM_TEXT_QWEN,         /* <|image_pad|> x (t·h·w / merge²) */
    MT_VLM_TEXT_GEMMA3,       /* \n\n<start_of_image><image_soft_token>xN<end_of_image>\n\n (+ pan & scan) */
    MT_VLM_TEXT_IMAGE_TOKENS, /* <image> x N (paligemma, llava) */
};

typedef struct mt_vlm_proc {
    int kind;                      /* enum mt_vlm_proc_kind */
    int text_kind;                 /* enum mt_vlm_text_kind */
    int resample;                  /* enum mt_resample (PIL's numbering) */
    int do_resize, do_rescale, do_normalize;
    int do_convert_rgb;            /* transformers' convert_to_rgb (see mt_vlm_image_decode); JSON null = off */
    double rescale, mean[3], std[3];
    int image_seq_len;             /* tokens per image (idefics3 tile, gemma3, paligemma); 0 = computed */
    /* MT_PROC_IDEFICS3 */
    int longest_edge;              /* size.longest_edge; 0: size is {height, width} (resized to exactly that) */
    int tile;                      /* max_image_size.longest_edge */
    int do_image_splitting;
    /* MT_PROC_SIGLIP (and IDEFICS3 without longest_edge): target size; MT_PROC_CLIP: shortest_edge + crop */
    int height, width;
    int shortest_edge;
    int do_center_crop, crop_h, crop_w;
    /* llava token count: (crop_h/patch)·(crop_w/patch) + additional − (strategy == "default") */
    int tok_patch, tok_additional, tok_select_default;
    /* MT_PROC_QWEN2VL */
    int patch, temporal_patch, merge;
    double min_pixels, max_pixels;
    /* gemma3 pan & scan */
    int do_pan_and_scan, pas_min_crop, pas_max_crops;
    double pas_min_ratio;
} mt_vlm_proc;

/* The class defaults of the processor model_type uses (transformers' / mlx-vlm's,
 * before any config file): idefics3, smolvlm, gemma3, paligemma, llava, qwen2_vl,
 * qwen2_5_vl.  MT_EUNSUPPORTED for another model_type. */
int mt_vlm_proc_defaults(mt_vlm_proc *p, const char *model_type, mt_err *err);

/* Read the image processor settings of a model folder over those defaults:
 *  - HF kinds: processor_config.json's nested "image_processor" object when there
 *    is one (transformers v5 prefers it), else preprocessor_config.json; then, as
 *    mlx-vlm's processors do, image_seq_len (idefics3/smolvlm) / image_seq_length
 *    (gemma3) / patch_size, num_additional_image_tokens, vision_feature_select_strategy
 *    (llava) from processor_config.json, and paligemma's image_seq_length from the
 *    image processor's file;
 *  - Qwen: preprocessor_config.json updated key by key with processor_config.json's
 *    "image_processor"; size.shortest_edge / longest_edge give min / max_pixels, and
 *    explicit min_pixels / max_pixels win.
 * JSON null counts as absent, except do_convert_rgb (None: no conversion).  Where
 * the reference would fail on a missing key we take a value instead: PaliGemma
 * without image_seq_length gets (height/14)·(width/14); LLaVA without patch_size 14.
 * Errors: MT_ENOTFOUND (no image processor config),
 * MT_EFORMAT (bad JSON or a value of the wrong type / out of range), MT_EUNSUPPORTED. */
int mt_vlm_proc_load(mt_vlm_proc *p, const char *dir, const char *model_type, mt_err *err);

/* Decoding for a processor.  mlx-vlm's load_image gives Pillow's convert("RGB"),
 * which keeps a PNG's single transparent colour as info["transparency"]; the HF
 * processors' convert_to_rgb (do_convert_rgb) then composites that key onto white:
 * every pixel equal to it becomes (255, 255, 255).  Keys: 8-bit-or-less grey tRNS
 * (t, t, t), RGB tRNS (each value & 0xff, as Pillow's rgbT2rgba masks it), a palette
 * whose tRNS has exactly one 0 and otherwise 255 (that entry's colour); none for
 * other palettes (Pillow drops byte-string transparency), 1-bit or 16-bit grey (the
 * key (t, 0, 0) never matches a grey pixel), alpha PNGs and JPEGs.  The Qwen port
 * and configs with do_convert_rgb false / null do not whiten.
 * mt_vlm_color_key: 1 and key[] when the encoded bytes carry such a key, else 0.
 * mt_vlm_image_decode / _load: mt_image_decode / mt_image_load, then the whitening
 * when p->do_convert_rgb (p may be NULL: no whitening).  Errors as image.h's. */
int mt_vlm_color_key(const void *data, size_t n, unsigned char key[3]);
int mt_vlm_image_decode(const mt_vlm_proc *p, mt_image *img, const void *data, size_t n, const mt_image_opts *opts,
                        mt_err *err);
int mt_vlm_image_load(const mt_vlm_proc *p, mt_image *img, const char *path, const mt_image_opts *opts, mt_err *err);

/* Check a filled-in mt_vlm_proc (sizes positive, filter 0..5, std non-zero ...);
 * mt_vlm_proc_load and mt_vlm_preprocess call it.  MT_EINVAL with a message. */
int mt_vlm_proc_check(const mt_vlm_proc *p, mt_err *err);

/* The 8-bit images the processor makes before rescale / normalize, in the order
 * the model takes them (idefics3: tiles row-major, then the global image; gemma3
 * pan & scan: the whole image, then the crops). */
typedef struct mt_vlm_images {
    mt_image *img;       /* n images, each malloc'd */
    int n;
    int rows, cols;      /* idefics3 split grid (0, 0 when not split) */
    int n_crops;         /* gemma3 pan & scan crops */
} mt_vlm_images;

int mt_vlm_images_make(const mt_vlm_proc *p, const mt_image *img, mt_vlm_images *out, mt_err *err);
void mt_vlm_images_free(mt_vlm_images *im);

typedef struct mt_vlm_pixels {
    float *data;        /* malloc'd; idefics3/siglip/clip: n images of 3 x h x w (CHW float32);
                         * qwen: n_patches rows of patch_dim = 3·temporal_patch·patch² */
    int n, h, w;        /* images (tiles incl. the global image last) and their size */
    int rows, cols;     /* idefics3 split grid (0, 0 when not split) */
    int grid_t, grid_h, grid_w;  /* qwen image_grid_thw */
    size_t n_patches, patch_dim; /* qwen */
    int n_crops;        /* gemma3 pan & scan crops (0 = none) */
} mt_vlm_pixels;

/* The whole processor for one image.  On failure *out is zeroed.  Errors:
 * MT_EINVAL (an impossible size: Qwen aspect ratio above 200, ...), MT_ELIMIT,
 * MT_ENOMEM. */
int mt_vlm_preprocess(const mt_vlm_proc *p, const mt_image *img, mt_vlm_pixels *out, mt_err *err);
void mt_vlm_pixels_free(mt_vlm_pixels *px);

/* The number of image tokens the text gets for this image (all tiles / crops together). */
long mt_vlm_image_tokens(const mt_vlm_proc *p, const mt_vlm_pixels *px);

/* The text that replaces one image placeholder of the prompt (*out malloc'd):
 *   idefics3/smolvlm: for each tile row r, col c "<fake_token_around_image><row_r_col_c>"
 *     + "<image>"xN, "\n" after each row, then "\n<fake_token_around_image><global-img>"
 *     + "<image>"xN + "<fake_token_around_image>"; unsplit:
 *     "<fake_token_around_image><global-img>" + "<image>"xN + "<fake_token_around_image>";
 *   qwen: "<|image_pad|>" x n (the template's <|vision_start|>/<|vision_end|> stay);
 *   gemma3: "\n\n<start_of_image>" + "<image_soft_token>"xN + "<end_of_image>\n\n"; with
 *     pan & scan crops: "Here is the original image " + that + " and here are some crops
 *     to help you see better " + that x n_crops joined by " ";
 *   paligemma, llava: "<image>" x N (PaliGemma's <bos> and final "\n" are the prompt's).
 * The placeholder is "<image>" (idefics3, paligemma, llava), "<|image_pad|>" between the
 * template's vision markers (qwen) or "<start_of_image>" (gemma3). */
int mt_vlm_image_text(const mt_vlm_proc *p, const mt_vlm_pixels *px, char **out, mt_err *err);

#endif
