/* norm_ada.h - the style-conditioned norms and the activations of Kokoro's
 * StyleTTS2 / iSTFTNet blocks.
 *
 * Both norms take their affine from a style vector s through a linear layer
 * `fc` (W [2C, S], b [2C]): h = W s + b, gamma = h[0:C], beta = h[C:2C], and
 * apply y = (1 + gamma) * xhat + beta, with xhat = (x - mean) / sqrt(var + eps)
 * (biased variance; mlx-audio's eps is 1e-5):
 *   AdaIN1d       x [C, T]: statistics per channel over time (instance norm)
 *   AdaLayerNorm  x [T, C]: statistics per step over the channels
 * ref: mlx_audio/tts/models/kokoro/istftnet.py (AdaIN1d, InstanceNorm1d,
 *      AdaINResBlock1's snake, leaky_relu), modules.py (AdaLayerNorm). */
#ifndef MT_NORM_ADA_H
#define MT_NORM_ADA_H

#include <stddef.h>
#include "core/pool.h"

/* h [n_out] = W [n_out, S] s [S] + b [n_out] (b may be NULL): the style
 * projection `fc` of both norms (n_out = 2C). */
void mt_ada_style(float *h, const float *W, const float *b, const float *s, size_t S, size_t n_out);

/* AdaIN1d: y, x [C, T] (y may equal x); gb [2C] from mt_ada_style.  pool may
 * be NULL.  T = 0 does nothing. */
void mt_adain1d(float *y, const float *x, const float *gb, size_t C, size_t T, float eps, mt_pool *pool);

/* AdaLayerNorm: y, x [T, C] (y may equal x); gb [2C]. */
void mt_ada_layernorm(float *y, const float *x, const float *gb, size_t T, size_t C, float eps, mt_pool *pool);

/* Snake of AdaINResBlock1, in place: x [C, T], x += sin(a_c x)^2 / a_c with
 * a_c = alpha[c] (alpha != 0, as trained); channels split over pool (may be NULL). */
void mt_snake(float *x, const float *alpha, size_t C, size_t T, mt_pool *pool);

/* Leaky ReLU in place: x < 0 (and not NaN) becomes slope * x. */
void mt_leaky_relu(float *x, size_t n, float slope);

#endif
