/* test_sinegen.c - audio/sinegen against mlx-audio's SineGen and
 * SourceModuleHnNSF (after Generator.f0_upsamp) with their random draws
 * recorded (tests/data/tts_ops/source.safetensors), and randomness off. */
#include <stdlib.h>
#include <string.h>
#include "audio/sinegen.h"
#include "tts_ops_golden.h"

static void run_case(const mt_safetensors *st, const char *cs) {
    size_t nhp = 0, nf = 0, ns = 0, nh = 0;
    float *hp = gold(st, cs, "hp", &nhp), *f0 = gold(st, cs, "f0", &nf), *ini = gold(st, cs, "ini", NULL);
    float *noise = gold(st, cs, "noise", NULL), *w = gold(st, cs, "lin_w", NULL), *b = gold(st, cs, "lin_b", NULL);
    float *sr = gold(st, cs, "sines", &ns), *uvr = gold(st, cs, "uv", NULL), *hr = gold(st, cs, "har", &nh);
    int ok = hp && nhp == 7 && f0 && ini && noise && w && b && sr && uvr && hr;
    CHECK_MSG(ok, "%s: golden tensors missing", cs);
    if (ok) {
        mt_sinegen_cfg c = {.sample_rate = (int)hp[2], .upsample = (int)hp[1], .harmonics = (int)hp[3] + 1,
                            .sine_amp = hp[4], .noise_std = hp[5], .voiced_threshold = hp[6]};
        size_t F = nf, L = F * (size_t)c.upsample, H = (size_t)c.harmonics;
        CHECK_EQ_INT(ns, L * H);
        CHECK_EQ_INT(nh, L);
        float *f0u = malloc(L * sizeof(float)), *s = malloc(L * H * sizeof(float)), *uv = malloc(L * sizeof(float));
        float *har = malloc(L * sizeof(float));
        mt_err e = {0};
        if (f0u && s && uv && har && ns == L * H && nh == L) {
            for (size_t t = 0; t < L; t++) f0u[t] = f0[t / (size_t)c.upsample];
            CHECK_OK(mt_sinegen(&c, f0u, L, ini, noise, s, uv, &e), &e);
            char label[64];
            snprintf(label, sizeof label, "%s sines", cs);
            check_close(label, s, sr, ns);
            snprintf(label, sizeof label, "%s uv", cs);
            check_close(label, uv, uvr, L);
            CHECK_OK(mt_harmonic_source(&c, f0, F, w, b[0], ini, noise, har, NULL, &e), &e);
            snprintf(label, sizeof label, "%s harmonic source", cs);
            check_close(label, har, hr, L);
            /* randomness off: unvoiced samples are 0, voiced ones pure sines */
            CHECK_OK(mt_sinegen(&c, f0u, L, NULL, NULL, s, uv, &e), &e);
            int bad = 0;
            for (size_t t = 0; t < L; t++)
                for (size_t h = 0; h < H; h++)
                    if ((uv[t] == 0.0f && s[t * H + h] != 0.0f) || fabsf(s[t * H + h]) > c.sine_amp * 1.0001f) bad++;
            CHECK_EQ_INT(bad, 0);
        }
        free(f0u); free(s); free(uv); free(har);
    }
    free(hp); free(f0); free(ini); free(noise); free(w); free(b); free(sr); free(uvr); free(hr);
}

int main(void) {
    mt_err e = {0};
    mt_safetensors *st = NULL;
    int rc = mt_safetensors_open(&st, "tests/data/tts_ops/source.safetensors", &e);
    CHECK_OK(rc, &e);
    if (!rc) {
        run_case(st, "src");
        run_case(st, "src_small");
    }
    mt_sinegen_cfg k = mt_sinegen_kokoro();
    CHECK(k.sample_rate == 24000 && k.upsample == 300 && k.harmonics == 9);
    float f0 = 100, out[9];
    CHECK_EQ_INT(mt_sinegen(&k, &f0, 0, NULL, NULL, out, NULL, &e), MT_EINVAL);
    k.harmonics = 0;
    CHECK_EQ_INT(mt_sinegen(&k, &f0, 1, NULL, NULL, out, NULL, &e), MT_EINVAL);
    mt_safetensors_free(st);
    return check_report("test_sinegen");
}
