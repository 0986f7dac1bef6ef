/* job.c - mlx-embed's record handlers (see job.h): texts tokenized over the
 * pool, sorted by length into batches of at most batch_tokens tokens, embedded,
 * and answered in input order. */
#include "embed/job.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "core/jsonl.h"

int mt_embed_check_finite(const float *v, size_t n, mt_err *err) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return mt_seterr(err, MT_EFORMAT, "model produced non-finite values (corrupt weights?)");
    return MT_OK;
}

int mt_embed_job_init(mt_embed_job *j, const char *prompt_name, const char *prefix, size_t dims, mt_err *err) {
    j->prefix = prefix ? prefix : j->m->default_prompt;
    if (prompt_name && !prefix && !(j->prefix = mt_embedder_prompt(j->m, prompt_name)))
        return mt_seterr(err, MT_EUSAGE, "--prompt-name %s: the model has no such prompt", prompt_name);
    j->dims = dims ? dims : j->m->dim;
    if (j->dims > j->m->dim)
        return mt_seterr(err, MT_EUSAGE, "--dims %zu: the model gives %zu dimensions", dims, j->m->dim);
    return MT_OK;
}

typedef struct item {
    const char *text;
    size_t len;
    int32_t *ids;
    size_t n;
    int truncated, rc;
    mt_err err;
} item;

typedef struct tok_ctx { mt_embed_job *j; item *it; } tok_ctx;

static void tok_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    tok_ctx *t = c;
    for (size_t i = b; i < e; i++) {
        item *it = &t->it[i];
        if (it->rc) continue;
        it->rc = mt_embedder_tokenize(t->j->m, t->j->prefix, it->text, it->len, &it->ids, &it->n, &it->truncated,
                                      &it->err);
    }
}

/* qsort_r order: shorter sequences first, input order among equals */
static int by_len(const void *a, const void *b, void *items) {
    const item *it = items;
    size_t i = *(const size_t *)a, k = *(const size_t *)b, x = it[i].n, y = it[k].n;
    return x < y ? -1 : x > y ? 1 : (i < k ? -1 : i > k);
}

/* Embed the nv valid items order[0..nv) (sorted by length) into vec[i * D],
 * in batches of at most batch_tokens tokens; failures go to the items. */
static void embed_sorted(mt_embed_job *j, item *it, const size_t *order, size_t nv, float *vec) {
    size_t D = j->m->dim;
    int32_t *ids = NULL;
    size_t *lens = malloc((nv ? nv : 1) * sizeof *lens);
    float *out = NULL;
    for (size_t s = 0; s < nv && lens;) {
        size_t e = s, tot = 0;
        while (e < nv && (e == s || tot + it[order[e]].n <= j->batch_tokens)) tot += it[order[e++]].n;
        int32_t *ni = realloc(ids, tot * sizeof *ids);
        if (ni) ids = ni;
        float *no = ni ? realloc(out, (e - s) * D * sizeof *out) : NULL;
        if (no) out = no;
        if (!ni || !no) {
            for (size_t k = s; k < nv; k++) it[order[k]].rc = mt_seterr(&it[order[k]].err, MT_ENOMEM, "out of memory");
            break;
        }
        size_t off = 0;
        for (size_t k = s; k < e; k++) {
            memcpy(ids + off, it[order[k]].ids, it[order[k]].n * sizeof *ids);
            lens[k - s] = it[order[k]].n;
            off += it[order[k]].n;
        }
        mt_err e2 = {0};
        int rc = mt_embedder_run(j->m, ids, lens, e - s, out, &e2);
        for (size_t k = s; k < e; k++) {
            item *x = &it[order[k]];
            if (rc) { x->rc = rc; x->err = e2; continue; }
            memcpy(vec + order[k] * D, out + (k - s) * D, D * sizeof(float));
            x->rc = mt_embed_check_finite(vec + order[k] * D, D, &x->err);
        }
        s = e;
    }
    if (!lens)
        for (size_t k = 0; k < nv; k++) it[order[k]].rc = mt_seterr(&it[order[k]].err, MT_ENOMEM, "out of memory");
    free(ids);
    free(lens);
    free(out);
}

/* The answer of one embedded (or tokenized) item, or its failure. */
static int answer(mt_embed_job *j, const item *it, float *v, json_t **out, mt_err *err) {
    json_t *o = json_object();
    if (!o) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (j->tokens_only) {
        json_t *a = json_array();
        for (size_t k = 0; k < it->n; k++) json_array_append_new(a, json_integer(it->ids[k]));
        json_object_set_new(o, "ids", a);
    } else {
        if (j->dims < j->m->dim) mt_embed_normalize(v, j->dims);
        if (j->npy) {
            if (mt_npy_append(j->npy, v, &j->fatal_err)) {
                j->fatal = 1;
                json_decref(o);
                return mt_seterr(err, MT_EFATAL, "%s", j->fatal_err.msg);
            }
            json_object_set_new(o, "row", json_integer((json_int_t)j->next_row++));
        } else {
            json_t *a = json_array();
            for (size_t k = 0; k < j->dims; k++) json_array_append_new(a, json_real(v[k]));
            json_object_set_new(o, "embedding", a);
        }
    }
    if (it->truncated) json_object_set_new(o, "truncated", json_true());
    *out = o;
    return MT_OK;
}

void mt_embed_batch(void *user, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                    mt_err *errs) {
    (void)linenos;
    mt_embed_job *j = user;
    size_t D = j->m->dim;
    if (j->fatal) {
        for (size_t i = 0; i < n; i++) rcs[i] = mt_seterr(&errs[i], MT_EFATAL, "%s", j->fatal_err.msg);
        return;
    }
    item *it = calloc(n, sizeof *it);
    size_t *order = malloc(n * sizeof *order);
    float *vec = malloc(n * D * sizeof(float));
    if (!it || !order || !vec) {
        for (size_t i = 0; i < n; i++) rcs[i] = mt_seterr(&errs[i], MT_ENOMEM, "out of memory");
        free(it); free(order); free(vec);
        return;
    }
    for (size_t i = 0; i < n; i++)
        it[i].rc = mt_json_get_string(recs[i], "text", &it[i].text, &it[i].len, 1, &it[i].err);
    tok_ctx tc = {j, it};
    mt_pool_for(j->pool, n, 1, tok_task, &tc);
    size_t nv = 0;
    for (size_t i = 0; i < n; i++)
        if (!it[i].rc) order[nv++] = i;
    if (!j->tokens_only) {
        qsort_r(order, nv, sizeof *order, by_len, it);
        embed_sorted(j, it, order, nv, vec);
    }
    for (size_t i = 0; i < n; i++) {
        if (!it[i].rc && j->fatal) it[i].rc = mt_seterr(&it[i].err, MT_EFATAL, "%s", j->fatal_err.msg);
        if (!it[i].rc) it[i].rc = answer(j, &it[i], vec + i * D, &outs[i], &it[i].err);
        rcs[i] = it[i].rc;
        if (rcs[i]) errs[i] = it[i].err;
        free(it[i].ids);
    }
    free(it);
    free(order);
    free(vec);
}

/* Tokenize every (query, document) pair, score them in batches of at most
 * batch_tokens tokens into sc[nd * L]. */
static int rerank_scores(mt_embed_job *j, const char *q, size_t ql, json_t *docs, size_t L, float *sc, int *any_tr,
                         mt_err *err) {
    size_t nd = json_array_size(docs);
    int32_t **ids = calloc(nd ? nd : 1, sizeof *ids), **types = calloc(nd ? nd : 1, sizeof *types);
    size_t *lens = calloc(nd ? nd : 1, sizeof *lens);
    int32_t *pi = NULL, *pt = NULL;
    int rc = !ids || !types || !lens ? mt_seterr(err, MT_ENOMEM, "out of memory") : MT_OK;
    for (size_t i = 0; !rc && i < nd; i++) {
        json_t *d = json_array_get(docs, i);
        int tr = 0;
        rc = mt_embedder_tokenize_pair(j->m, q, ql, json_string_value(d), json_string_length(d), &ids[i], &types[i],
                                       &lens[i], &tr, err);
        if (rc) mt_preferr(err, "document %zu", i);
        *any_tr |= tr;
    }
    for (size_t s = 0; !rc && s < nd;) {
        size_t e = s, tot = 0;
        while (e < nd && (e == s || tot + lens[e] <= j->batch_tokens)) tot += lens[e++];
        int32_t *a = realloc(pi, tot * sizeof *a), *b = a ? realloc(pt, tot * sizeof *b) : NULL;
        if (a) pi = a;
        if (b) pt = b;
        if (!a || !b) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); break; }
        size_t off = 0;
        for (size_t k = s; k < e; k++) {
            memcpy(pi + off, ids[k], lens[k] * sizeof *pi);
            memcpy(pt + off, types[k], lens[k] * sizeof *pt);
            off += lens[k];
        }
        rc = mt_embedder_score(j->m, pi, pt, lens + s, e - s, sc + s * L, err);
        s = e;
    }
    if (!rc) rc = mt_embed_check_finite(sc, nd * L, err);
    for (size_t i = 0; ids && i < nd; i++) free(ids[i]);
    for (size_t i = 0; types && i < nd; i++) free(types[i]);
    free(ids); free(types); free(lens); free(pi); free(pt);
    return rc;
}

int mt_rerank_record(mt_embed_job *j, json_t *rec, json_t **out, mt_err *err) {
    const char *q;
    size_t ql;
    MT_TRY(mt_json_get_string(rec, "query", &q, &ql, 1, err));
    json_t *docs = json_object_get(rec, "documents");
    if (!json_is_array(docs)) return mt_seterr(err, MT_EINVAL, "\"documents\" must be an array of strings");
    size_t nd = json_array_size(docs), L = mt_encoder_n_labels(j->m->enc);
    if (!L) return mt_seterr(err, MT_EUNSUPPORTED, "the model has no classification head (not a cross-encoder)");
    for (size_t i = 0; i < nd; i++)
        if (!json_is_string(json_array_get(docs, i)))
            return mt_seterr(err, MT_EINVAL, "\"documents\"[%zu] is not a string", i);
    float *sc = malloc((nd ? nd : 1) * L * sizeof *sc);
    if (!sc) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int any_tr = 0, rc = rerank_scores(j, q, ql, docs, L, sc, &any_tr, err);
    if (!rc) {
        json_t *arr = json_array();
        for (size_t i = 0; i < nd; i++) {
            if (L == 1) {
                json_array_append_new(arr, json_real(sc[i]));
            } else {
                json_t *row = json_array();
                for (size_t k = 0; k < L; k++) json_array_append_new(row, json_real(sc[i * L + k]));
                json_array_append_new(arr, row);
            }
        }
        *out = json_object();
        json_object_set_new(*out, "scores", arr);
        if (any_tr) json_object_set_new(*out, "truncated", json_true());
    }
    free(sc);
    return rc;
}

void mt_rerank_batch(void *user, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                     mt_err *errs) {
    (void)linenos;
    for (size_t i = 0; i < n; i++) rcs[i] = mt_rerank_record(user, recs[i], &outs[i], &errs[i]);
}
