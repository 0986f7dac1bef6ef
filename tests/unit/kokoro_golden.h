/* kokoro_golden.h - what the Kokoro tests (test_kokoro, test_kokoro_quant, test_kokoro_real)
 * share: the deterministic stand-ins that tests/gen/gen_kokoro_fixtures.py (and the scripts
 * that import its rule) give mlx-audio for the harmonic source's random draws, the waveform
 * SNR, and the code-point count mlx-audio picks a voice row by. */
#ifndef KOKORO_GOLDEN_H
#define KOKORO_GOLDEN_H
#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* initial phases h / 10; noise element i from the hash (i * 2654435761) mod 2^32 */
static inline int det_draws(void *user, size_t L, int H, float *phase_ini, float *noise) {
    (void)user;
    for (int h = 0; h < H; h++) phase_ini[h] = (float)(h / 10.0);
    for (size_t i = 0; i < L * (size_t)H; i++) {
        uint32_t u = (uint32_t)i * 2654435761u;
        noise[i] = ((float)(u >> 8) / 16777216.0f - 0.5f) * 3.4641016f;
    }
    return 0;
}

static inline double snr_db(const float *got, const float *ref, size_t n) {
    double sig = 0, noise = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        sig += (double)ref[i] * ref[i];
        noise += d * d;
    }
    return noise > 0 ? 10 * log10(sig / noise) : INFINITY;
}

static inline size_t n_codepoints(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}
#endif
