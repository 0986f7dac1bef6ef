/* sinegen.h - the harmonic-plus-noise excitation of iSTFTNet / HiFi-NSF
 * vocoders (Kokoro's generator: SineGen inside SourceModuleHnNSF), with the
 * randomness passed in, so callers can seed it or switch it off.
 *
 * For f0 [L] at the sample rate and harmonic h = 0..H-1 (frequency (h+1)*f0):
 *   rad[t,h] = ((h+1) f0[t] / sample_rate) mod 1, plus phase_ini[h] at t = 0
 *   (phase_ini[0] is taken as 0, the fundamental starts at phase 0)
 *   the phase is integrated at the frame rate: rad linearly interpolated down
 *   by `upsample` (half-pixel centres, torch's linear interpolate), summed,
 *   times 2 pi * upsample, linearly interpolated back up; sines = sine_amp * sin
 *   uv[t] = f0[t] > voiced_threshold
 *   out[t,h] = sines[t,h] * uv[t] + (uv ? noise_std : sine_amp/3) * noise[t,h]
 * The source merges the harmonics: har[t] = tanh(sum_h w[h] out[t,h] + b).
 * Every step is float32 in mlx's order (and mlx's sin), so the outputs match
 * mlx-audio given the same draws: phase_ini is its `rand_ini` (uniform [0,1)),
 * noise its `mx.random.normal` of shape [L, H]; NULL means zeros.
 *
 * ref: mlx_audio/tts/models/kokoro/istftnet.py (SineGen, SourceModuleHnNSF,
 *      Generator.f0_upsamp), mlx_audio/tts/models/interpolate.py. */
#ifndef MT_SINEGEN_H
#define MT_SINEGEN_H

#include <stddef.h>
#include "core/err.h"

typedef struct mt_sinegen_cfg {
    int sample_rate;          /* Kokoro: 24000 */
    int upsample;             /* samples per f0 frame: Kokoro 300 (10 * 6 * hop 5) */
    int harmonics;            /* harmonic_num + 1: Kokoro 9 */
    float sine_amp;           /* 0.1 */
    float noise_std;          /* 0.003 */
    float voiced_threshold;   /* Kokoro 10 (Hz) */
} mt_sinegen_cfg;

/* Kokoro-82M's source settings. */
mt_sinegen_cfg mt_sinegen_kokoro(void);

/* SineGen: sines [L, H] (row t holds the H harmonics of sample t) and uv [L]
 * (may be NULL) from f0 [L].  phase_ini [H] and noise [L, H] may be NULL.
 * Errors: MT_EINVAL (L = 0, bad settings), MT_ENOMEM. */
int mt_sinegen(const mt_sinegen_cfg *cfg, const float *f0, size_t L, const float *phase_ini, const float *noise,
               float *sines, float *uv, mt_err *err);

/* The generator's source: f0 frames [F] repeated `upsample` times (nn.Upsample,
 * nearest), mt_sinegen, then har [F*upsample] = tanh(w . sines + b); w [H].
 * uv [F*upsample] may be NULL.  Errors as mt_sinegen. */
int mt_harmonic_source(const mt_sinegen_cfg *cfg, const float *f0_frames, size_t F, const float *w, float b,
                       const float *phase_ini, const float *noise, float *har, float *uv, mt_err *err);

#endif
