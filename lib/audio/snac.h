/* snac.h - the SNAC neural audio codec's decoder (codes -> waveform), as mlx-audio
 * 0.6.2 runs it for Orpheus (the 24 kHz model: 3 codebooks at strides 4, 2, 1).
 *
 * A folder holds config.json (SNAC's constructor arguments: sampling_rate, encoder_dim,
 * encoder_rates, latent_dim, decoder_dim, decoder_rates, attn_window_size, codebook_size,
 * codebook_dim, vq_strides, noise, depthwise) and model.safetensors in mlx-audio's names
 * (quantizer.quantizers.N.*, decoder.model.layers.N.*); only the quantizer's codebooks and
 * out_proj and the decoder are read.  Float32, float16 or bfloat16 tensors are accepted.
 *
 * Decoding, per codebook i with stride s_i: z_i = out_proj_i(codebook_i[codes_i]) (a 1x1
 * conv from codebook_dim to latent_dim), each value repeated s_i times along time; the
 * sum over codebooks is the latent [latent_dim, F * s_0] for F frames of codebook 0.  The
 * decoder: a depthwise k7 conv and a 1x1 conv (or one k7 conv when not depthwise), then
 * per rate r a block (snake, transposed conv k 2r / stride r / padding ceil(r/2), the
 * noise block, three residual units of dilation 1, 3, 9: snake, k7 conv (depthwise),
 * snake, 1x1 conv, plus the input), then snake, a k7 conv to one channel, tanh.
 * Weight norm is folded at load as w = g v / ||v|| (the norm over all axes but the
 * first, no epsilon, as mlx-audio's WNConv1d).
 *
 * mlx-audio's quirk kept here: its WNConvTranspose1d passes `groups` (1) in the place of
 * mx.conv_transpose1d's output_padding, so every upsampling adds one sample at the end:
 * T -> T*r + 1 for an even rate r (not T*r).  F frames of the 24 kHz model give ((((4F*8+1)*8+1)*4+1)*2+1)
 * samples.
 *
 * Noise: each decoder block adds n[t] * (W x)[c, t] (W a 1x1 conv, n one standard normal
 * per time step shared by all channels; mlx-audio draws it from mx.random.normal).  With
 * opts->noise 0 (the deterministic mode, the goldens') the term is left out, which equals
 * drawing n = 0; with noise 1 the draws come from our own generator seeded by opts->seed
 * (not mlx's stream).  Local attention (attn_window_size set; the 24 kHz model has none)
 * is refused.
 *
 * ref: mlx_audio/codec/models/snac/{snac.py,vq.py,layers.py} (mlx-audio 0.6.2). */
#ifndef MT_SNAC_H
#define MT_SNAC_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/pool.h"

#define MT_SNAC_MAX_BOOKS 8
#define MT_SNAC_MAX_RATES 8

typedef struct mt_snac mt_snac;

typedef struct mt_snac_info {
    int sample_rate;
    int n_books;                       /* codebooks (len(vq_strides)) */
    int strides[MT_SNAC_MAX_BOOKS];    /* vq_strides: codebook i has F * strides[0] / strides[i] codes */
    int codebook_size, codebook_dim, latent_dim, decoder_dim;
    int n_rates, rates[MT_SNAC_MAX_RATES];
    int noise, depthwise;
} mt_snac_info;

typedef struct mt_snac_opts {
    int noise;        /* 0: noise blocks off (deterministic); 1: seeded standard normals */
    uint64_t seed;
} mt_snac_opts;

/* Loads the codec folder dir.  pool (borrowed, may be NULL) runs the convolutions.
 * Errors: MT_ENOTFOUND (config.json, weights or a tensor missing), MT_EFORMAT (a
 * malformed config or a tensor of the wrong shape, named), MT_EUNSUPPORTED (local
 * attention, more than MT_SNAC_MAX_* codebooks or rates), MT_ENOMEM.  *out is the
 * caller's (mt_snac_free). */
int mt_snac_load(mt_snac **out, const char *dir, mt_pool *pool, mt_err *err);
void mt_snac_free(mt_snac *s);   /* accepts NULL */

const mt_snac_info *mt_snac_get_info(const mt_snac *s);

/* Output samples for F frames (the T -> T*r + 1 rule above). */
size_t mt_snac_out_len(const mt_snac *s, size_t frames);

/* Decodes `frames` frames: codes[i] holds frames * strides[0] / strides[i] ids of codebook
 * i (i < n_books).  opts may be NULL (noise off).  *wav malloc'd [*len] (caller frees).
 * Errors: MT_EINVAL (frames 0, a code outside [0, codebook_size): "codebook i: code c
 * at position p is out of range"), MT_ENOMEM. */
int mt_snac_decode(const mt_snac *s, const int32_t *const *codes, size_t frames, const mt_snac_opts *opts,
                   float **wav, size_t *len, mt_err *err);

#endif
