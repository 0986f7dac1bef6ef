/* resize.h - Pillow-exact resizing of 8-bit RGB images, and the HF image
 * processors' rescale + normalize to float32 CHW.
 *
 * mt_image_resize gives, byte for byte, what Pillow's
 * `Image.resize((w, h), filter, reducing_gap=None)` gives for an RGB image (the
 * call transformers' PIL backend makes): for the convolution filters, Pillow's
 * Resample.c algorithm (separable passes through an 8-bit intermediate; Pillow
 * 13 runs the vertical pass first when the height shrinks by more than twice as
 * many pixels as the width, else horizontal first, the intermediate then holding
 * only the rows the vertical pass reads; Pillow <= 12 always goes horizontal
 * first; support widened by the scale when downscaling, double weights normalised to sum 1, then fixed
 * point with 22 fractional bits, accumulator seeded with 2^21, clipped to 0..255;
 * a pass is skipped when its axis keeps its size); for NEAREST, Pillow's affine
 * scale (Geometry.c: source coordinate (i + 0.5)·in/out accumulated in double and
 * truncated).  The same size is a copy.
 * ref: Pillow 13.0.0 src/libImaging/Resample.c (ImagingResampleInner), Geometry.c ImagingScaleAffine, _imaging.c _resize */
#ifndef MT_IMAGE_RESIZE_H
#define MT_IMAGE_RESIZE_H

#include "core/err.h"
#include "image/image.h"

/* PIL's Resampling enum values, as preprocessor_config.json's "resample" gives them. */
enum mt_resample {
    MT_RESAMPLE_NEAREST = 0,
    MT_RESAMPLE_LANCZOS = 1,
    MT_RESAMPLE_BILINEAR = 2,
    MT_RESAMPLE_BICUBIC = 3,
    MT_RESAMPLE_BOX = 4,
    MT_RESAMPLE_HAMMING = 5,
};

/* Pass order: Pillow >= 13.0 (the default) or Pillow <= 12 (horizontal always first). */
enum { MT_RESIZE_ORDER_PIL13 = 0, MT_RESIZE_ORDER_HFIRST = 1 };

/* The filter's name ("nearest", "lanczos", ...), or NULL for a value outside 0..5. */
const char *mt_resample_name(int filter);

/* Resize in to w x h with filter (enum mt_resample) into *out (malloc'd pixels;
 * mt_image_clear frees them).  MT_EINVAL for a bad filter or a size < 1;
 * MT_ELIMIT when w*h is above MT_IMAGE_MAX_PIXELS_DEFAULT; MT_ENOMEM.
 * On failure *out is empty. */
int mt_image_resize(mt_image *out, const mt_image *in, int w, int h, int filter, mt_err *err);
/* The same with an explicit pass order (MT_RESIZE_ORDER_*); only the results of
 * resizes that shrink both axes, or shrink the height and grow the width, differ. */
int mt_image_resize_order(mt_image *out, const mt_image *in, int w, int h, int filter, int order, mt_err *err);

/* The transformers PIL-backend rescale and normalize, to channels-first float32:
 * out[c][y][x] (3·h·w floats, caller-allocated).  Per value v (uint8):
 *   x = v as float32;
 *   do_rescale:   x = float32(double(v) · scale)        (image_transforms.rescale)
 *   do_normalize: x = (x − float32(mean[c])) / float32(std[c]) in float32
 *                                                       (image_transforms.normalize)
 * MT_EINVAL if a std is 0. */
int mt_image_to_chw(float *out, const mt_image *in, int do_rescale, double scale, int do_normalize,
                    const double mean[3], const double std[3], mt_err *err);

#endif
