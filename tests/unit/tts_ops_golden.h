/* tts_ops_golden.h - reading the safetensors files of tests/data/tts_ops (written by
 * tests/gen/gen_tts_ops_goldens.py from mlx-audio's Kokoro ops) and comparing
 * against them: max |ours - ref| / max(1, |ref|) <= TTS_TOL, the worst error
 * printed per case. */
#ifndef TTS_OPS_GOLDEN_H
#define TTS_OPS_GOLDEN_H
#include <stdlib.h>
#include "check.h"
#include "io/safetensors.h"

#define TTS_TOL 1e-4

/* A malloc'd float32 copy of tensor `cs.what` (NULL when absent); *n its numel. */
static inline float *gold(const mt_safetensors *st, const char *cs, const char *what, size_t *n) {
    char name[128];
    snprintf(name, sizeof name, "%s.%s", cs, what);
    const mt_tensor_view *t = mt_safetensors_get(st, name);
    if (!t) return NULL;
    size_t m = mt_tensor_numel(t);
    float *p = malloc((m ? m : 1) * sizeof(float));
    mt_err e = {0};
    if (!p || mt_safetensors_read_f32(st, name, p, m, 0, &e)) {
        free(p);
        return NULL;
    }
    if (n) *n = m;
    return p;
}

/* Worst relative-or-absolute error of got against ref (n values). */
static inline double max_err(const float *got, const float *ref, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double r = ref[i], d = fabs((double)got[i] - r) / (fabs(r) > 1.0 ? fabs(r) : 1.0);
        if (!(d <= worst)) worst = d;   /* NaN counts as worst */
    }
    return worst;
}

/* Check and report one comparison; returns the error. */
static inline double check_close(const char *label, const float *got, const float *ref, size_t n) {
    double e = max_err(got, ref, n);
    printf("  %-28s n=%-7zu max err %.3g\n", label, n, e);
    CHECK_MSG(e <= TTS_TOL, "%s: max err %g > %g", label, e, TTS_TOL);
    return e;
}
#endif
