/* vlm_golden.h - what the VLM tests share to read the goldens of tests/data/vlm
 * (goldens.safetensors as tests/gen/gen_vlm_*.py write them) and compare with them. */
#ifndef VLM_GOLDEN_H
#define VLM_GOLDEN_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
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

/* max |got - ref| / (1 + |ref|): how logits are compared */
static inline double logit_err(const float *got, const float *ref, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]) / (1 + fabs((double)ref[i]));
        w = d > w ? d : w;
    }
    return w;
}

/* the text-side goldens of case ci: the prompt ids, the connector rows scattered into them,
 * the first answer token's logits and the greedy tokens; 1 when all four are there */
typedef struct vlm_case {
    const int32_t *ids, *toks;
    const float *feat, *l0;
    size_t nids, nf, nl, nt;
} vlm_case;

static inline int vlm_case_read(const mt_safetensors *g, int ci, vlm_case *c) {
    char nm[64];
    *c = (vlm_case){0};
    snprintf(nm, sizeof nm, "c%d.input_ids", ci);
    c->ids = gold_i32(g, nm, &c->nids);
    snprintf(nm, sizeof nm, "c%d.features", ci);
    c->feat = gold_f32(g, nm, &c->nf);
    snprintf(nm, sizeof nm, "c%d.logits0", ci);
    c->l0 = gold_f32(g, nm, &c->nl);
    snprintf(nm, sizeof nm, "c%d.tokens", ci);
    c->toks = gold_i32(g, nm, &c->nt);
    return c->ids && c->feat && c->l0 && c->toks;
}

/* the native record of a goldens.json case: {"image": [vdir/...], "prompt"} (new reference) */
static inline json_t *vlm_case_record(json_t *cs, const char *vdir) {
    json_t *rec = json_object(), *ims = json_array(), *gi = json_object_get(cs, "images");
    for (size_t i = 0; i < json_array_size(gi); i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/%s", vdir, json_string_value(json_array_get(gi, i)));
        json_array_append_new(ims, json_string(p));
    }
    json_object_set_new(rec, "image", ims);
    json_object_set(rec, "prompt", json_object_get(cs, "prompt"));
    return rec;
}

#endif
