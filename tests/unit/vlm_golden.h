/* vlm_golden.h - what the VLM tests share to read the goldens of tests/data/vlm
 * (goldens.safetensors as tests/gen/gen_vlm_*.py write them) and compare with them. */
#ifndef VLM_GOLDEN_H
#define VLM_GOLDEN_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include "io/safetensors.h"

/* a float32 / int32 golden tensor and its element count, or NULL when absent or of another type */
static inline const float *gold_f32(const mt_safetensors *g, const char *name, size_t *n) {
    const mt_tensor_view *t = mt_safetensors_get(g, name);
    if (!t || t->dtype != MT_F32) return NULL;
    *n = mt_tensor_numel(t);
    return (const float *)t->data;
}

static inline const int32_t *gold_i32(const mt_safetensors *g, const char *name, size_t *n) {
    const mt_tensor_view *t = mt_safetensors_get(g, name);
    if (!t || t->dtype != MT_I32) return NULL;
    *n = mt_tensor_numel(t);
    return (const int32_t *)t->data;
}

/* max |a - b| / max |b| */
static inline double rel_err(const float *a, const float *b, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        d = e > d ? e : d;
        m = fabs((double)b[i]) > m ? fabs((double)b[i]) : m;
    }
    return m > 0 ? d / m : d;
}

#endif
