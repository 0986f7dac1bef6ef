/* nemo_mel.h - the NeMo log-mel features of FastConformer models (Parakeet),
 * as mlx-audio computes them (mlx_audio/stt/models/parakeet/audio.py):
 *   optional zero padding to pad_to samples, pre-emphasis
 *   y[0] = x[0], y[i] = x[i] - preemph x[i-1] (float32), a symmetric window
 *   (hann / hamming / blackman / bartlett) of win = int(window_size * rate)
 *   samples centred in n_fft, n_fft/2 zeros on both sides of the signal,
 *   1 + n / hop frames (hop = int(window_stride * rate)), |rfft|^2, Slaney mel
 *   filters (Slaney scale and area norm, 0 .. rate/2), log(m + guard), then
 *   per_feature normalisation (each mel bin: mean over frames, standard
 *   deviation with n - 1, (x - mean) / (std + 1e-5)) or, for any other
 *   "normalize" value, the same with the mean and (population) deviation of
 *   all values.  Dither is not applied (mlx-audio does not).
 * FFT by FFTW3 (single precision, one plan per context). */
#ifndef MT_NEMO_MEL_H
#define MT_NEMO_MEL_H

#include <stddef.h>
#include "core/err.h"

typedef struct mt_nemo_mel_cfg {
    int sample_rate;          /* 16000 */
    double window_size;       /* seconds, 0.025 */
    double window_stride;     /* seconds, 0.01 */
    int n_fft;                /* 512 */
    int features;             /* mel bins: 80, 128 */
    char window[16];          /* "hann" (default), "hamming", "blackman", "bartlett" */
    int per_feature;          /* 1: "per_feature" normalisation, 0: over all values */
    double preemph;           /* 0.97; <= 0: none */
    double log_guard;         /* 2^-24 */
    long pad_to;              /* pad shorter audio to this many samples (0: none) */
    double pad_value;
} mt_nemo_mel_cfg;

typedef struct mt_nemo_mel mt_nemo_mel;   /* filters, window and FFT plan; not shared between threads */

/* Errors: MT_EINVAL (sizes out of range: window longer than n_fft, hop < 1,
 * features < 1 or > n_fft/2 + 1...), MT_ENOMEM. */
int  mt_nemo_mel_new(mt_nemo_mel **out, const mt_nemo_mel_cfg *cfg, mt_err *err);
void mt_nemo_mel_free(mt_nemo_mel *m);   /* accepts NULL */
int  mt_nemo_mel_hop(const mt_nemo_mel *m);
int  mt_nemo_mel_features(const mt_nemo_mel *m);   /* mel bins */
/* The [features, n_fft/2 + 1] filter bank (row-major). */
const float *mt_nemo_mel_filters(const mt_nemo_mel *m);

/* Features of audio[n] (mono, at cfg.sample_rate): *out malloc'ed
 * [*n_frames, features] row-major (frame major, the reference's [1, T, F]
 * without the batch axis), n_frames = 1 + max(n, pad_to) / hop.
 * Errors: MT_EINVAL (n = 0), MT_ENOMEM. */
int mt_nemo_mel_compute(mt_nemo_mel *m, const float *audio, size_t n, float **out, size_t *n_frames, mt_err *err);

#endif
