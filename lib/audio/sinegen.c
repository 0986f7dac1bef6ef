/* sinegen.c - SineGen / SourceModuleHnNSF with injected randomness (see
 * sinegen.h), float32 step by step as mlx evaluates mlx-audio's code.
 * ref: mlx_audio/tts/models/kokoro/istftnet.py, models/interpolate.py. */
#include "audio/sinegen.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "tensor/mlxnum.h"

mt_sinegen_cfg mt_sinegen_kokoro(void) {
    mt_sinegen_cfg c = {.sample_rate = 24000, .upsample = 300, .harmonics = 9, .sine_amp = 0.1f,
                        .noise_std = 0.003f, .voiced_threshold = 10.0f};
    return c;
}

/* interpolate1d(mode="linear", align_corners=None) of H interleaved channels:
 * in [W, H] -> out [size, H], float32 as mlx computes it. */
static void interp_linear(const float *in, size_t W, size_t H, float *out, size_t size) {
    if (W == 1 || size == 1) {
        /* size 1 reads x = 0 (and W = 1 broadcasts): row 0 */
        for (size_t i = 0; i < size; i++) memcpy(out + i * H, in, H * sizeof(float));
        return;
    }
    double r = (double)W / (double)size;
    float rf = (float)r, half = (float)(0.5 * r);
    for (size_t i = 0; i < size; i++) {
        float x = (float)i * rf;
        x = (x + half) - 0.5f;
        if (x < 0.0f) x = 0.0f;
        size_t lo = (size_t)floorf(x);
        if (lo > W - 1) lo = W - 1;
        size_t hi = lo + 1 < W ? lo + 1 : W - 1;
        float fr = x - (float)lo, one = 1.0f - fr;
        for (size_t h = 0; h < H; h++) out[i * H + h] = in[lo * H + h] * one + in[hi * H + h] * fr;
    }
}

/* Python's float modulo: the result has the divisor's sign */
static inline float pymod(float a, float b) {
    float r = fmodf(a, b);
    if (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) r += b;
    return r;
}

int mt_sinegen(const mt_sinegen_cfg *cfg, const float *f0, size_t L, const float *phase_ini, const float *noise,
               float *sines, float *uv, mt_err *err) {
    if (!cfg || !f0 || !sines) return mt_seterr(err, MT_EINVAL, "sinegen: missing argument");
    if (L == 0) return mt_seterr(err, MT_EINVAL, "sinegen: empty f0");
    if (cfg->sample_rate < 1 || cfg->upsample < 1 || cfg->harmonics < 1 || cfg->harmonics > 1024)
        return mt_seterr(err, MT_EINVAL, "sinegen: bad settings");
    size_t H = (size_t)cfg->harmonics, up = (size_t)cfg->upsample;
    if (L > SIZE_MAX / sizeof(float) / H / 4) return mt_seterr(err, MT_EINVAL, "sinegen: f0 too long");
    /* sizes as interpolate() computes them: ceil in double */
    size_t nd = (size_t)ceil((double)L * (1.0 / (double)up));
    if (nd < 1) nd = 1;
    size_t nu = (size_t)ceil((double)nd * (double)up);
    float *rad = malloc(L * H * sizeof(float)), *down = malloc(nd * H * sizeof(float));
    float *upb = malloc(nu * H * sizeof(float));
    if (!rad || !down || !upb) {
        free(rad);
        free(down);
        free(upb);
        return mt_seterr(err, MT_ENOMEM, "sinegen: out of memory");
    }
    float sr = (float)cfg->sample_rate;
    for (size_t t = 0; t < L; t++)
        for (size_t h = 0; h < H; h++) rad[t * H + h] = pymod((f0[t] * (float)(h + 1)) / sr, 1.0f);
    if (phase_ini)
        for (size_t h = 1; h < H; h++) rad[h] = rad[h] + phase_ini[h];
    interp_linear(rad, L, H, down, nd);
    const float two_pi_f = (float)M_PI, upf = (float)up;
    for (size_t h = 0; h < H; h++) {   /* cumsum over frames, then * 2 * pi, * upsample */
        float acc = 0.0f;
        for (size_t i = 0; i < nd; i++) {
            acc += down[i * H + h];
            down[i * H + h] = ((acc * 2.0f) * two_pi_f) * upf;
        }
    }
    interp_linear(down, nd, H, upb, nu);
    const float amp = cfg->sine_amp, ns = cfg->noise_std;
    for (size_t t = 0; t < L; t++) {
        float v = f0[t] > cfg->voiced_threshold ? 1.0f : 0.0f;
        if (uv) uv[t] = v;
        float namp = v * ns + ((1.0f - v) * amp) / 3.0f;
        for (size_t h = 0; h < H; h++) {
            float s = t < nu ? mt_mlx_sin(upb[t * H + h]) * amp : 0.0f;   /* _match_f0_length */
            float nz = noise ? namp * noise[t * H + h] : 0.0f * namp;
            sines[t * H + h] = s * v + nz;
        }
    }
    free(rad);
    free(down);
    free(upb);
    return MT_OK;
}

int mt_harmonic_source(const mt_sinegen_cfg *cfg, const float *f0_frames, size_t F, const float *w, float b,
                       const float *phase_ini, const float *noise, float *har, float *uv, mt_err *err) {
    if (!cfg || !f0_frames || !w || !har) return mt_seterr(err, MT_EINVAL, "harmonic source: missing argument");
    if (F == 0 || cfg->upsample < 1 || cfg->harmonics < 1 || cfg->harmonics > 1024)
        return mt_seterr(err, MT_EINVAL, "harmonic source: bad sizes");
    size_t up = (size_t)cfg->upsample, H = (size_t)cfg->harmonics;
    if (F > SIZE_MAX / sizeof(float) / up / H / 4) return mt_seterr(err, MT_EINVAL, "harmonic source: f0 too long");
    size_t L = F * up;
    float *f0 = malloc(L * sizeof(float)), *s = malloc(L * H * sizeof(float));
    int rc = MT_OK;
    if (!f0 || !s) rc = mt_seterr(err, MT_ENOMEM, "harmonic source: out of memory");
    if (!rc) {
        for (size_t i = 0; i < F; i++)
            for (size_t j = 0; j < up; j++) f0[i * up + j] = f0_frames[i];
        rc = mt_sinegen(cfg, f0, L, phase_ini, noise, s, uv, err);
    }
    if (!rc)
        for (size_t t = 0; t < L; t++) {
            float acc = 0.0f;
            for (size_t h = 0; h < H; h++) acc += s[t * H + h] * w[h];
            har[t] = tanhf(acc + b);
        }
    free(f0);
    free(s);
    return rc;
}
