/* pcache.c - prompt caches for a generation job (see pcache.h). */
#include "gen/pcache.h"

#include <stdlib.h>
#include <string.h>

#include "core/file.h"

typedef struct loaded {
    char *path;
    mt_kvfile *f;
    mt_kvcache *c;
} loaded;

struct mt_gen_caches {
    const mt_model *m;
    char fp[33];
    char *name;
    int *window;
    loaded *l;
    size_t n, cap;
};

int mt_gen_caches_new(mt_gen_caches **out, const mt_model *m, const char *model_dir, const char *model_name,
                      mt_err *err) {
    mt_gen_caches *t = calloc(1, sizeof *t);
    if (!t) return mt_seterr(err, MT_ENOMEM, "out of memory");
    t->m = m;
    t->name = strdup(model_name ? model_name : "");
    t->window = calloc((size_t)m->hp.n_layers, sizeof *t->window);
    int rc = t->name && t->window ? MT_OK : mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) rc = mt_model_fingerprint(model_dir, t->fp, err);
    if (rc) { mt_gen_caches_free(t); return rc; }
    mt_model_kv_windows(m, t->window);
    *out = t;
    return MT_OK;
}

void mt_gen_caches_free(mt_gen_caches *t) {
    if (!t) return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->l[i].path);
        mt_kvfile_free(t->l[i].f);
        mt_kvcache_free(t->l[i].c);
    }
    free(t->l);
    free(t->window);
    free(t->name);
    free(t);
}

int mt_gen_caches_get(mt_gen_caches *t, const char *path, const mt_kvfile **file, const mt_kvcache **cache,
                      mt_err *err) {
    for (size_t i = 0; i < t->n; i++)
        if (!strcmp(t->l[i].path, path)) {
            *file = t->l[i].f;
            *cache = t->l[i].c;
            return MT_OK;
        }
    if (t->m && t->m->no_kvfile)
        return mt_seterr(err, MT_EUNSUPPORTED, "%s: prompt-cache files are not supported for %s", path, t->m->no_kvfile);
    for (int l = 0; t->m && l < t->m->hp.n_layers; l++)   /* whatever the file holds */
        if (t->m->layers[l].state_floats)
            return mt_seterr(err, MT_EUNSUPPORTED, "%s: prompt-cache files of models with recurrent layers are not "
                             "supported yet", path);
    if (t->m && t->m->kv_padded)
        return mt_seterr(err, MT_EUNSUPPORTED, "%s: prompt-cache files of models with KV-shared layers or K/V rows of "
                         "different widths (gemma4) are not supported yet", path);
    mt_kvfile *f = NULL;
    mt_kvcache *c = NULL;
    MT_TRY(mt_kvfile_read(path, &f, err));
    int rc = MT_OK;
    if (f->fingerprint && strcmp(f->fingerprint, t->fp))
        rc = mt_seterr(err, MT_EINVAL, "%s: made with another model (fingerprint %.16s..., this model's %.16s...)", path,
                       f->fingerprint, t->fp);
    if (!rc) rc = mt_kvfile_to_cache(f, t->m, &c, err);
    if (!rc && t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 4;
        loaded *l = realloc(t->l, cap * sizeof *l);
        if (!l) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        else { t->l = l; t->cap = cap; }
    }
    char *p = rc ? NULL : strdup(path);
    if (!rc && !p) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (rc) {
        mt_kvfile_free(f);
        mt_kvcache_free(c);
        return rc;
    }
    t->l[t->n++] = (loaded){p, f, c};
    *file = f;
    *cache = c;
    return MT_OK;
}

int mt_gen_caches_encode(const mt_prompter *pr, const mt_kvfile *f, json_t *rec, int default_agp, int32_t **ids,
                         size_t *n, mt_err *err) {
    size_t P = f->layers[0].offset;
    if (json_object_get(rec, "messages")) {
        if (!f->tokens)
            return mt_seterr(err, MT_EINVAL, "%s holds no token ids (written by mlx-lm): a \"messages\" record cannot be "
                             "matched to it; give \"prompt\" text", f->label);
        int32_t *all = NULL;
        size_t na = 0;
        MT_TRY(mt_prompter_encode(pr, rec, default_agp, -1, NULL, NULL, &all, &na, err));
        size_t k = 0;
        while (k < P && k < na && all[k] == f->tokens[k]) k++;
        if (k < P) {
            free(all);
            return mt_seterr(err, MT_EINVAL, "the chat's rendering (%zu tokens) does not start with the %zu tokens cached in "
                             "%s (they differ from token %zu on)", na, P, f->label, k);
        }
        *n = na - P;
        *ids = malloc((*n ? *n : 1) * sizeof **ids);
        if (!*ids) { free(all); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
        memcpy(*ids, all + P, *n * sizeof **ids);
        free(all);
        return MT_OK;
    }
    json_t *r = rec;
    int own = 0;
    if (P && !json_object_get(rec, "add_special_tokens")) {   /* the prefix has the BOS already */
        r = json_copy(rec);
        if (!r) return mt_seterr(err, MT_ENOMEM, "out of memory");
        json_object_set_new(r, "add_special_tokens", json_false());
        own = 1;
    }
    int rc = mt_prompter_encode(pr, r, default_agp, -1, NULL, NULL, ids, n, err);
    if (own) json_decref(r);
    return rc;
}

int mt_gen_caches_save(mt_gen_caches *t, const mt_prompter *pr, const char *path, const mt_kvcache *c,
                       const int32_t *ids, size_t n, int level, mt_err *err) {
    if (t->m->no_kvfile)
        return mt_seterr(err, MT_EUNSUPPORTED, "%s: prompt-cache files are not supported for %s", path, t->m->no_kvfile);
    char *text = NULL;
    size_t tl = 0;
    if (n && mt_tokenizer_decode(pr->tok, ids, n, 0, &text, &tl, NULL) != MT_OK) text = NULL;
    size_t pl = strlen(path);
    if (pl >= 12 && !strcmp(path + pl - 12, ".safetensors")) level = -1;
    mt_kvmeta meta = {.kv_heads = t->m->kv_heads ? t->m->kv_heads : t->m->hp.n_kv_heads, .model = t->name, .fingerprint = t->fp,
                      .tokens = n ? ids : NULL, .n_tokens = n, .text = text, .text_len = tl, .window = t->window};
    int rc = mt_kvfile_write(path, c, &meta, level, NULL, err);
    free(text);
    return rc;
}
