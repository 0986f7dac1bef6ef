/* ple.c - per-layer input embeddings (see ple.h). */
#include "models/ple.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tensor/ops.h"

int mt_ple_bind(mt_model *m, int dim, int vocab, mt_ple **out, mt_err *err) {
    *out = NULL;
    int N = m->hp.n_layers;
    size_t H = (size_t)m->hp.hidden, D = (size_t)dim, ND = (size_t)N * D;
    if (dim <= 0 || vocab <= 0) return mt_seterr(err, MT_EFORMAT, "config.json: per-layer inputs of %d features, %d ids", dim, vocab);
    mt_ple *p = calloc(1, sizeof *p);
    if (!p || !(p->layers = calloc((size_t)N, sizeof *p->layers))) {
        free(p);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    p->n_layers = N;
    p->dim = dim;
    p->vocab = vocab;
    p->embed_scale = (float)sqrt((double)dim);
    p->proj_scale = (float)pow((double)H, -0.5);
    p->input_scale = (float)pow(2.0, -0.5);
    int rc = mt_linear_bind(&p->embed, m->st, m->cfg, "model.embed_tokens_per_layer", (size_t)vocab, ND, -1, err);
    if (!rc) rc = mt_linear_bind(&p->proj, m->st, m->cfg, "model.per_layer_model_projection", ND, H, -1, err);
    if (!rc) rc = mt_dec_bind_norm(m, "model.per_layer_projection_norm", D, &p->proj_norm, err);
    char name[128];
    for (int l = 0; !rc && l < N; l++) {
        mt_ple_layer *L = &p->layers[l];
        snprintf(name, sizeof name, "model.layers.%d.per_layer_input_gate", l);
        rc = mt_linear_bind(&L->gate, m->st, m->cfg, name, D, H, -1, err);
        snprintf(name, sizeof name, "model.layers.%d.per_layer_projection", l);
        if (!rc) rc = mt_linear_bind(&L->proj, m->st, m->cfg, name, H, D, -1, err);
        snprintf(name, sizeof name, "model.layers.%d.post_per_layer_input_norm", l);
        if (!rc) rc = mt_dec_bind_norm(m, name, H, &L->post, err);
    }
    if (rc) { mt_ple_free(p); return rc; }
    if (ND > m->max_in) m->max_in = ND;
    *out = p;
    return MT_OK;
}

void mt_ple_free(mt_ple *p) {
    if (!p) return;
    for (int l = 0; p->layers && l < p->n_layers; l++) mt_dec_norm_free(&p->layers[l].post);
    free(p->layers);
    mt_dec_norm_free(&p->proj_norm);
    free(p);
}

int mt_ple_inputs(const mt_fwd *f, const mt_ple *p, const int32_t *tok, const float *x, size_t T, float *pli,
                  mt_err *err) {
    size_t D = (size_t)p->dim, ND = (size_t)p->n_layers * D;
    for (size_t t = 0; t < T; t++)
        if (tok[t] < 0 || (tok[t] >= p->vocab && !p->mask_ids))
            return mt_seterr(err, MT_EINVAL, "token id %d is past the %d rows of the per-layer embedding", (int)tok[t], p->vocab);
    float *e = malloc(ND * sizeof *e);
    if (!e) return mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_dec_linear(f, &p->proj, x, T, pli);
    for (size_t t = 0; t < T; t++) {
        float *r = pli + t * ND;
        for (size_t i = 0; i < ND; i++) r[i] *= p->proj_scale;
        mt_dec_norm(f->m, &p->proj_norm, r, r, (size_t)p->n_layers, D);
        mt_linear_row(&p->embed, tok[t] < p->vocab ? (size_t)tok[t] : 0, e);
        for (size_t i = 0; i < ND; i++) r[i] = (r[i] + e[i] * p->embed_scale) * p->input_scale;
    }
    free(e);
    return MT_OK;
}

int mt_ple_gate(const mt_fwd *f, const mt_ple *p, int l, const float *h, const float *pli, size_t T, float *out,
                mt_err *err) {
    const mt_ple_layer *L = &p->layers[l];
    size_t D = (size_t)p->dim, ND = (size_t)p->n_layers * D;
    float *g = malloc(T * D * sizeof *g);
    if (!g) return mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_dec_observe(f->m, l, "per_layer_input_gate", h, T, (size_t)f->m->hp.hidden);
    mt_dec_linear(f, &L->gate, h, T, g);
    mt_gelu_tanh(g, T * D);
    for (size_t t = 0; t < T; t++)
        for (size_t i = 0; i < D; i++) g[t * D + i] *= pli[t * ND + (size_t)l * D + i];
    mt_dec_observe(f->m, l, "per_layer_projection", g, T, D);
    mt_dec_linear(f, &L->proj, g, T, out);
    mt_dec_norm(f->m, &L->post, out, out, T, (size_t)f->m->hp.hidden);
    free(g);
    return MT_OK;
}
