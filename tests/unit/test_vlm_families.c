/* test_vlm_families.c - the Gemma 3, LLaVA and PaliGemma families of models/vlm.h
 * against mlx-vlm 0.7.10 on the tiny random-weight folders tests/data/vlm/<family>-tiny
 * {,-q4,-q8} (tests/gen/gen_vlm_<family>.py) and gemma3-tiny-pas (pan & scan crops), case by case
 * (goldens.json):
 *   - the record path (mt_vlm_job_record: chat template, placeholder expansion,
 *     tokenization, image encoding): input ids identical, image rows within 1e-4
 *     relative (max |diff| / max |ref|), pixel sums of every image;
 *   - the tower alone on case 0's image, where the goldens hold it (1e-4 relative);
 *   - the text side: mlx-vlm's rows injected at the image tokens give the first answer
 *     token's logits within 1e-3 * (1 + |logit|), and greedy generation (eos from the
 *     goldens) gives the tokens mlx_vlm.generate gave, exactly. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "vlm_golden.h"
#include "core/pool.h"
#include "gen/generate.h"
#include "gen/vlm_job.h"
#include "io/safetensors.h"
#include "models/vlm.h"
#include "text/prompter.h"
#include "text/tokenizer.h"

#define VDIR "tests/data/vlm"

typedef struct worst { double logit, rows, tower; } worst;

static void text_side(mt_vlm *v, const mt_tokenizer *tok, const mt_safetensors *g, const int32_t *eos, size_t n_eos,
                      const char *folder, int ci, worst *w) {
    mt_err e = {0};
    vlm_case k;
    int have = vlm_case_read(g, ci, &k);
    CHECK_MSG(have, "%s case %d: goldens missing", folder, ci);
    if (!have) return;
    const int32_t *ids = k.ids, *toks = k.toks;
    const float *feat = k.feat, *l0 = k.l0;
    size_t nids = k.nids, nf = k.nf, nl = k.nl, nt = k.nt;
    size_t H = v->text_hidden, V = (size_t)v->lm->hp.vocab;
    CHECK_EQ_INT(nl, V);
    size_t nimg = 0;
    for (size_t i = 0; i < nids; i++) nimg += ids[i] == v->image_token_id;
    CHECK_EQ_INT(nimg * H, nf);
    mt_kvcache *c = NULL;
    float *lg = malloc(V * sizeof *lg);
    CHECK_OK(mt_kvcache_new(&c, v->lm, &e), &e);
    mt_embed_inject inj = {.token_id = v->image_token_id, .rows = feat, .n = nf / H};
    CHECK_OK(mt_model_forward_inject(v->lm, c, ids, nids, lg, 0, &inj, &e), &e);
    double wd = logit_err(lg, l0, V);
    w->logit = wd > w->logit ? wd : w->logit;
    CHECK_MSG(wd < 1e-3, "%s case %d: logits0 off by %.3g (relative to 1+|l|)", folder, ci, wd);
    mt_kvcache_free(c);
    free(lg);
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = (int)nt;
    gp.eos = eos;
    gp.n_eos = n_eos;
    mt_embed_inject inj2 = {.token_id = v->image_token_id, .rows = feat, .n = nf / H};
    gp.inject = &inj2;
    mt_gen_result res;
    CHECK_OK(mt_generate(v->lm, tok, ids, nids, &gp, NULL, NULL, &res, &e), &e);
    int same = res.n_tokens == nt;
    for (size_t i = 0; same && i < nt; i++) same = res.tokens[i] == toks[i];
    CHECK_MSG(same, "%s case %d: greedy tokens differ (%zu vs %zu)", folder, ci, res.n_tokens, nt);
    if (!same)
        for (size_t i = 0; i < res.n_tokens && i < nt; i++)
            if (res.tokens[i] != toks[i]) {
                fprintf(stderr, "  first difference at %zu: %d vs %d\n", i, (int)res.tokens[i], (int)toks[i]);
                break;
            }
    mt_gen_result_free(&res);
}

static void record_side(mt_vlm *v, mt_vlm_job *job, const mt_prompter *pr, const mt_safetensors *g, json_t *cs,
                        const char *folder, int ci, worst *w) {
    mt_err e = {0};
    char nm[64];
    json_t *rec = vlm_case_record(cs, VDIR), *ims = json_object_get(rec, "image");
    int32_t *ids = NULL;
    size_t n = 0, nids = 0, nf = 0;
    mt_embed_inject *inj = NULL;
    CHECK_OK(mt_vlm_job_record(job, pr, rec, 1, &ids, &n, &inj, &e), &e);
    snprintf(nm, sizeof nm, "c%d.input_ids", ci);
    const int32_t *want = gold_i32(g, nm, &nids);
    int same = ids && want && n == nids;
    for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
    CHECK_MSG(same, "%s case %d: input ids differ (%zu vs %zu)", folder, ci, n, nids);
    if (!same && ids && want)
        for (size_t i = 0; i < n && i < nids; i++)
            if (ids[i] != want[i]) {
                fprintf(stderr, "  first difference at %zu: %d vs %d\n", i, (int)ids[i], (int)want[i]);
                break;
            }
    snprintf(nm, sizeof nm, "c%d.features", ci);
    const float *feat = gold_f32(g, nm, &nf);
    CHECK_MSG(inj && feat && inj->n * v->text_hidden == nf, "%s case %d: %zu image rows", folder, ci, inj ? inj->n : 0);
    if (inj && feat && inj->n * v->text_hidden == nf) {
        double r = rel_err(inj->rows, feat, nf);
        w->rows = r > w->rows ? r : w->rows;
        CHECK_MSG(r < 1e-4, "%s case %d: image rows off by %.3g relative", folder, ci, r);
    }
    free(inj);
    free(ids);
    /* every image's pixels, and the tower on case 0's where the goldens hold it */
    mt_vlm_proc proc;
    CHECK_OK(mt_vlm_proc_load(&proc, v->dir, v->model_type, &e), &e);
    snprintf(nm, sizeof nm, "c%d.pixel_sum", ci);
    const mt_tensor_view *ps = mt_safetensors_get(g, nm);
    snprintf(nm, sizeof nm, "c%d.vision_out", ci);
    size_t nvo = 0;
    const float *vo = gold_f32(g, nm, &nvo);
    int k = 0, ok = ps != NULL;
    for (size_t i = 0; ok && i < json_array_size(ims); i++) {
        mt_image img = {0};
        mt_vlm_pixels px = {0};
        CHECK_OK(mt_vlm_image_load(&proc, &img, json_string_value(json_array_get(ims, i)), NULL, &e), &e);
        CHECK_OK(mt_vlm_preprocess(&proc, &img, &px, &e), &e);
        for (int t = 0; ok && t < px.n; t++, k++) {
            double sum = 0;
            for (size_t q = 0; q < (size_t)3 * px.h * px.w; q++) sum += px.data[(size_t)t * 3 * px.h * px.w + q];
            ok = k < (int)mt_tensor_numel(ps) && fabs(sum - ((const double *)ps->data)[k]) <= 1e-6 * (1 + fabs(sum));
        }
        if (vo && i == 0 && px.data) {
            float *out = malloc(nvo * sizeof *out);
            CHECK_OK(mt_vlm_tower(v, px.data, (size_t)px.n, px.h, px.w, out, &e), &e);
            double r = rel_err(out, vo, nvo);
            w->tower = r > w->tower ? r : w->tower;
            CHECK_MSG(r < 1e-4, "%s case %d: vision tower off by %.3g relative", folder, ci, r);
            free(out);
        }
        mt_vlm_pixels_free(&px);
        mt_image_clear(&img);
    }
    CHECK_MSG(ok && ps && k == (int)mt_tensor_numel(ps), "%s case %d: pixel sums differ", folder, ci);
    json_decref(rec);
}

static void folder_cases(const char *folder, mt_pool *pool, worst *w) {
    mt_err e = {0};
    char dir[256], path[320];
    snprintf(dir, sizeof dir, VDIR "/%s", folder);
    snprintf(path, sizeof path, "%s/goldens.json", dir);
    json_t *gj = json_load_file(path, JSON_ALLOW_NUL, NULL);   /* decoded texts may hold U+0000 */
    CHECK_MSG(gj != NULL, "%s: no goldens.json", folder);
    if (!gj) return;
    mt_vlm *v = NULL;
    CHECK_OK(mt_vlm_load(&v, dir, pool, &e), &e);
    if (!v) { json_decref(gj); return; }
    CHECK_EQ_INT(v->image_token_id, json_integer_value(json_object_get(gj, "image_token_id")));
    json_t *je = json_object_get(gj, "eos_token_ids");
    int32_t eos[8];
    size_t n_eos = 0;
    for (size_t i = 0; i < json_array_size(je) && n_eos < 8; i++) eos[n_eos++] = (int32_t)json_integer_value(json_array_get(je, i));
    mt_tokenizer *tok = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(mt_tokenizer_load(&tok, path, &e), &e);
    mt_safetensors *g = NULL;
    snprintf(path, sizeof path, "%s/goldens.safetensors", dir);
    CHECK_OK(mt_safetensors_open(&g, path, &e), &e);
    json_t *cases = json_object_get(gj, "cases");
    CHECK(json_array_size(cases) >= 3);
    for (int ci = 0; g && tok && ci < (int)json_array_size(cases); ci++) text_side(v, tok, g, eos, n_eos, folder, ci, w);
    mt_prompter *pr = NULL;
    mt_vlm_job *job = NULL;
    CHECK_OK(mt_prompter_open(&pr, dir, &e), &e);
    CHECK_OK(mt_vlm_job_new(&job, v, 64, &e), &e);
    for (size_t ci = 0; pr && job && g && ci < json_array_size(cases); ci++)
        record_side(v, job, pr, g, json_array_get(cases, ci), folder, (int)ci, w);
    json_decref(gj);
    mt_vlm_job_free(job);
    mt_prompter_free(pr);
    mt_safetensors_free(g);
    mt_tokenizer_free(tok);
    mt_vlm_free(v);
}

static void family(const char *name, mt_pool *pool) {
    static const char *const suffix[] = {"", "-q4", "-q8", "-pas"};   /* -pas: gemma3's pan & scan folder */
    worst w = {0, 0, 0};
    for (int i = 0; i < 3 + !strcmp(name, "gemma3"); i++) {
        char f[96];
        snprintf(f, sizeof f, "%s-tiny%s", name, suffix[i]);
        folder_cases(f, pool, &w);
    }
    printf("vlm %s: worst vs mlx-vlm: tower %.2g, image rows %.2g (max |diff| / max |ref|), first logits %.2g "
           "(|diff| / (1 + |ref|))\n", name, w.tower, w.rows, w.logit);
}

int main(int argc, char **argv) {
    mt_pool *pool = NULL;
    mt_err e = {0};
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    static const char *const all[] = {"gemma3", "llava", "paligemma"};
    if (argc > 1)   /* one family or a few: test_vlm_families gemma3 */
        for (int i = 1; i < argc; i++) family(argv[i], pool);
    else
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) family(all[i], pool);
    mt_pool_free(pool);
    return check_report("vlm_families");
}
