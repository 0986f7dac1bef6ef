/* istft.h - the STFT / inverse STFT pair of iSTFTNet vocoders (Kokoro's
 * generator ends with it; its harmonic source goes through the forward one),
 * with mlx-audio's semantics (MLXSTFT over mlx_audio.dsp stft / istft):
 *
 *   forward  x [L] is reflect-padded by n_fft/2 on both sides (center=True),
 *            frame f covers padded[f*hop, f*hop + n_fft), frames = 1 + L/hop
 *            (1 + (L + 2*(n_fft/2) - n_fft)/hop in general); each windowed frame
 *            goes through a real FFT; out: magnitude |X| and phase atan2(Im, Re),
 *            both [bins, frames] with bins = n_fft/2 + 1.
 *   inverse  phase is unwrapped along time (numpy's unwrap, as mlx-audio does;
 *            a no-op when successive phases differ by less than pi), each frame
 *            X = mag * (cos + i sin)(phase) goes through the inverse real FFT
 *            (1/n_fft scaled; the imaginary parts of the DC and Nyquist bins are
 *            ignored), times the window, overlap-added at f*hop, divided by the
 *            overlap-added squared window where that exceeds 1e-10
 *            (normalized=True, the division torch.istft makes), then trimmed by
 *            n_fft/2 at both ends: y [(frames-1)*hop].
 * A bin that is real in exact arithmetic has phase 0 or pi only up to the
 * sign of the rounding noise in its imaginary part, which differs between FFT
 * implementations: frame 0 under reflect padding is symmetric about its
 * centre (the periodic Hann is 0 at sample 0), so its negative bins come out
 * +pi or -pi here and in mlx by that noise (the DC and Nyquist bins are made
 * exactly real, +pi when negative, as mlx's are).
 * The window defaults to the periodic Hann of win_length samples, zero-padded
 * to n_fft around the centre when shorter.  The FFTs are FFTW's (float).
 *
 * ref: mlx_audio/tts/models/kokoro/istftnet.py (MLXSTFT, mlx_unwrap),
 *      mlx_audio/dsp.py (stft, istft, hanning). */
#ifndef MT_ISTFT_H
#define MT_ISTFT_H

#include <stddef.h>
#include "core/err.h"
#include "core/pool.h"

typedef struct mt_stft mt_stft;

/* n_fft >= 2 and even, 1 <= hop, 1 <= win_length <= n_fft; window: win_length
 * floats or NULL for the periodic Hann.  Errors: MT_EINVAL, MT_ENOMEM. */
int mt_stft_new(mt_stft **out, int n_fft, int hop, int win_length, const float *window, mt_err *err);
void mt_stft_free(mt_stft *s);   /* accepts NULL */

int mt_stft_bins(const mt_stft *s);                      /* n_fft/2 + 1 */
/* Frames of the forward transform of L samples; 0 when L <= n_fft/2 (too
 * short to reflect-pad). */
size_t mt_stft_frames(const mt_stft *s, size_t L);
/* Samples the inverse gives for `frames` frames: (frames - 1) * hop. */
size_t mt_istft_len(const mt_stft *s, size_t frames);

/* mag, phase [bins, mt_stft_frames(L)] from x [L] (either output may be NULL).
 * pool may be NULL.  Errors: MT_EINVAL (L too short), MT_ENOMEM. */
int mt_stft_forward(const mt_stft *s, const float *x, size_t L, float *mag, float *phase, mt_pool *pool,
                    mt_err *err);

/* y [mt_istft_len(frames)] from mag, phase [bins, frames].  frames >= 1.
 * Errors: MT_EINVAL, MT_ENOMEM. */
int mt_istft(const mt_stft *s, const float *mag, const float *phase, size_t frames, float *y, mt_pool *pool,
             mt_err *err);

#endif
