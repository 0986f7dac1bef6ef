/* vlm.c - the VLM registry and what every family shares (vlm.h). */
#include "models/vlm.h"

#include <stdlib.h>
#include <string.h>

extern const mt_vlm_family mt_vlm_family_idefics3, mt_vlm_family_smolvlm, mt_vlm_family_qwen2_vl, mt_vlm_family_qwen2_5_vl;
extern const mt_vlm_family mt_vlm_family_gemma3, mt_vlm_family_llava, mt_vlm_family_paligemma;

static const mt_vlm_family *const FAMILIES[] = {
    &mt_vlm_family_idefics3,
    &mt_vlm_family_smolvlm,
    &mt_vlm_family_gemma3,
    &mt_vlm_family_llava,
    &mt_vlm_family_paligemma,
    &mt_vlm_family_qwen2_vl,
    &mt_vlm_family_qwen2_5_vl,
};

size_t mt_vlm_family_count(void) { return sizeof FAMILIES / sizeof FAMILIES[0]; }
const mt_vlm_family *mt_vlm_family_at(size_t i) { return i < mt_vlm_family_count() ? FAMILIES[i] : NULL; }

const mt_vlm_family *mt_vlm_family_find(const char *model_type) {
    if (!model_type) return NULL;
    for (size_t i = 0; i < mt_vlm_family_count(); i++)
        if (!strcmp(FAMILIES[i]->model_type, model_type)) return FAMILIES[i];
    return NULL;
}

int mt_vlm_load(mt_vlm **out, const char *dir, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_vlm *v = calloc(1, sizeof *v);
    if (!v) return mt_seterr(err, MT_ENOMEM, "out of memory");
    v->pool = pool;
    snprintf(v->dir, sizeof v->dir, "%s", dir);
    int rc = mt_config_load(&v->cfg, dir, err);
    const char *mt = rc ? NULL : mt_config_model_type(v->cfg);
    if (!rc && !mt) rc = mt_seterr(err, MT_EFORMAT, "config.json: no \"model_type\"");
    if (!rc && mt) {
        snprintf(v->model_type, sizeof v->model_type, "%s", mt);
        v->fam = mt_vlm_family_find(mt);
        if (!v->fam)
            rc = mt_seterr(err, MT_EUNSUPPORTED, "model_type \"%s\" is not a vision-language model mlx-vlm runs here",
                           mt);
    }
    if (!rc) rc = mt_safetensors_open_dir(&v->st, dir, err);
    if (!rc) rc = v->fam->init(v, err);
    if (!rc && v->lm) v->text_hidden = (size_t)v->lm->hp.hidden;
    if (!rc && (v->image_token_id < 0 || v->image_token_id >= v->lm->hp.vocab))
        rc = mt_seterr(err, MT_EFORMAT, "config.json: image token id %d is outside the vocabulary (%d)",
                       (int)v->image_token_id, v->lm->hp.vocab);
    if (rc) {
        mt_preferr(err, "%s", dir);
        mt_vlm_free(v);
        return rc;
    }
    *out = v;
    return MT_OK;
}

void mt_vlm_free(mt_vlm *v) {
    if (!v) return;
    if (v->fam && v->fam->free) v->fam->free(v);
    mt_model_free(v->lm);
    mt_safetensors_free(v->st);
    mt_config_free(v->cfg);
    free(v);
}

int mt_vlm_encode(mt_vlm *v, const float *pixels, size_t n, int h, int w, float **rows, size_t *n_rows, mt_err *err) {
    *rows = NULL;
    *n_rows = 0;
    size_t nr = v->fam->n_rows(v, n, h, w);
    if (!nr) return mt_seterr(err, MT_EINVAL, "no image rows for %zu images of %dx%d", n, w, h);
    float *r = malloc(nr * v->text_hidden * sizeof *r);
    if (!r) return mt_seterr(err, MT_ENOMEM, "out of memory for %zu image rows", nr);
    int rc = v->fam->encode(v, pixels, n, h, w, r, err);
    if (rc) {
        free(r);
        return rc;
    }
    *rows = r;
    *n_rows = nr;
    return MT_OK;
}

int mt_vlm_tower(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *out, mt_err *err) {
    return v->fam->tower(v, pixels, n, h, w, out, err);
}
