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
#include "vlm_golden.h"
#include "core/pool.h"
#include "gen/generate.h"
#include "gen/vlm_job.h"
#include "text/prompter.h"
#include "io/safetensors.h"
#include "models/vit.h"
#include "models/vlm.h"
#include "text/tokenizer.h"

#define VDIR "tests/data/vlm"

static double worst_logit, worst_rows, worst_tower;   /* reported at the end */
static int32_t gold_eos = 439;                         /* the folder's eos (goldens.json) */

static void text_side(mt_vlm *v, const mt_tokenizer *tok, const mt_safetensors *g, const char *folder, int ci) {
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
    /* first answer token's logits */
    mt_kvcache *c = NULL;
    float *lg = malloc(V * sizeof *lg);
    CHECK_OK(mt_kvcache_new(&c, v->lm, &e), &e);
    mt_embed_inject inj = {v->image_token_id, feat, nf / H, 0, NULL, 0, 0};
    CHECK_OK(mt_model_forward_inject(v->lm, c, ids, nids, lg, 0, &inj, &e), &e);
    CHECK_EQ_INT(inj.next, nf / H);
    double worst = logit_err(lg, l0, V);
    worst_logit = worst > worst_logit ? worst : worst_logit;
    CHECK_MSG(worst < 1e-3, "%s case %d: logits0 off by %.3g (relative to 1+|l|)", folder, ci, worst);
    mt_kvcache_free(c);
    free(lg);
    /* greedy tokens through the generation loop */
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = (int)nt;
    int32_t eos = gold_eos;
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
    mt_embed_inject few = {v->image_token_id, feat, nf / H - 1, 0, NULL, 0, 0};
    gp.inject = &few;
    int rc = mt_generate(v->lm, tok, ids, nids, &gp, NULL, NULL, &res, &e);
    CHECK_MSG(rc == MT_EINVAL && strstr(e.msg, "image tokens"), "%s case %d: a missing row gave %d: %s", folder, ci, rc,
              e.msg);
    mt_gen_result_free(&res);
}

/* the whole record path: images + prompt -> ids and rows, as mlx-vlm prepares them */
static void record_side(mt_vlm *v, mt_vlm_job *job, const mt_prompter *pr, const mt_safetensors *g, json_t *cs,
                        const char *folder, int ci) {
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
    snprintf(nm, sizeof nm, "c%d.features", ci);
    const float *feat = gold_f32(g, nm, &nf);
    CHECK_MSG(inj && feat && inj->n * v->text_hidden == nf, "%s case %d: %zu image rows", folder, ci, inj ? inj->n : 0);
    if (inj && feat && inj->n * v->text_hidden == nf) {
        double r = rel_err(inj->rows, feat, nf);
        worst_rows = r > worst_rows ? r : worst_rows;
        CHECK_MSG(r < 1e-4, "%s case %d: image rows off by %.3g relative", folder, ci, r);
    }
    free(inj);
    free(ids);
    /* the tower alone, where the goldens hold its output */
    snprintf(nm, sizeof nm, "c%d.vision_out", ci);
    size_t nvo = 0;
    const float *vo = gold_f32(g, nm, &nvo);
    if (vo) {
        mt_vlm_proc proc;
        mt_image img = {0};
        mt_vlm_pixels px = {0};
        CHECK_OK(mt_vlm_proc_load(&proc, v->dir, v->model_type, &e), &e);
        CHECK_OK(mt_image_load(&img, json_string_value(json_array_get(ims, 0)), NULL, &e), &e);
        CHECK_OK(mt_vlm_preprocess(&proc, &img, &px, &e), &e);
        snprintf(nm, sizeof nm, "c%d.pixel_sum", ci);
        const mt_tensor_view *ps = mt_safetensors_get(g, nm);
        int ok = ps && px.data && (int)mt_tensor_numel(ps) == px.n;
        for (int t = 0; ok && t < px.n; t++) {
            double sum = 0;
            for (size_t i = 0; i < (size_t)3 * px.h * px.w; i++) sum += px.data[(size_t)t * 3 * px.h * px.w + i];
            ok = fabs(sum - ((const double *)ps->data)[t]) <= 1e-6 * (1 + fabs(sum));
        }
        CHECK_MSG(ok, "%s case %d: pixel sums differ", folder, ci);
        float *out = px.data ? malloc(nvo * sizeof *out) : NULL;
        struct mt_vit *vit = NULL;
        (void)vit;
        if (out && (size_t)px.n * 1024 * 64 == nvo) {
            CHECK_OK(mt_vlm_tower(v, px.data, (size_t)px.n, px.h, px.w, out, &e), &e);
            double r = rel_err(out, vo, nvo);
            worst_tower = r > worst_tower ? r : worst_tower;
            CHECK_MSG(r < 1e-4, "%s case %d: vision tower off by %.3g relative", folder, ci, r);
        }
        free(out);
        mt_vlm_pixels_free(&px);
        mt_image_clear(&img);
    }
    json_decref(rec);
}

/* folder: under tests/data/vlm, or (other = 1) any path, e.g. a full-depth folder made by
 * gen_vlm_idefics3.py --full: then only what its goldens hold is checked */
static void folder_cases(const char *folder, mt_pool *pool, int other) {
    mt_err e = {0};
    char dir[256], path[320];
    snprintf(dir, sizeof dir, other ? "%s" : VDIR "/%s", folder);
    mt_vlm *v = NULL;
    CHECK_OK(mt_vlm_load(&v, dir, pool, &e), &e);
    if (!v) return;
    if (!other) CHECK_EQ_INT(v->image_token_id, 438);
    mt_tokenizer *tok = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(mt_tokenizer_load(&tok, path, &e), &e);
    mt_safetensors *g = NULL;
    snprintf(path, sizeof path, "%s/goldens.safetensors", dir);
    CHECK_OK(mt_safetensors_open(&g, path, &e), &e);
    snprintf(path, sizeof path, "%s/goldens.json", dir);
    json_t *gj0 = json_load_file(path, 0, NULL);
    json_t *ge = json_array_get(json_object_get(gj0, "eos_token_ids"), 0);
    gold_eos = json_is_integer(ge) ? (int32_t)json_integer_value(ge) : 439;
    json_decref(gj0);
    for (int ci = 0; g && tok; ci++) {
        char nm[64];
        snprintf(nm, sizeof nm, "c%d.input_ids", ci);
        if (!mt_safetensors_get(g, nm)) break;
        text_side(v, tok, g, folder, ci);
    }
    mt_prompter *pr = NULL;
    mt_vlm_job *job = NULL;
    CHECK_OK(mt_prompter_open(&pr, dir, &e), &e);
    CHECK_OK(mt_vlm_job_new(&job, v, 64, &e), &e);
    snprintf(path, sizeof path, "%s/goldens.json", dir);
    json_t *gj = json_load_file(path, 0, NULL);
    json_t *cases = json_object_get(gj, "cases");
    if (!other) CHECK(json_array_size(cases) == 4);
    for (size_t ci = 0; pr && job && g && ci < json_array_size(cases); ci++)
        record_side(v, job, pr, g, json_array_get(cases, ci), folder, (int)ci);
    /* the portrait of case 2 comes again in case 3: encoded once */
    size_t enc = 0, reused = 0;
    if (job) mt_vlm_job_counts(job, &enc, &reused);
    if (!other) {
        CHECK_EQ_INT(enc, 4);
        CHECK_EQ_INT(reused, 1);
    }
    json_decref(gj);
    mt_vlm_job_free(job);
    mt_prompter_free(pr);
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

int main(int argc, char **argv) {
    mt_pool *pool = NULL;
    mt_err e = {0};
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    position_ids();
    if (argc > 1) {   /* test_vlm FOLDER...: those folders instead (their goldens.json cases) */
        for (int i = 1; i < argc; i++) folder_cases(argv[i], pool, 1);
    } else {
        folder_cases("smolvlm-tiny", pool, 0);
        folder_cases("smolvlm-tiny-q4", pool, 0);
        folder_cases("smolvlm-tiny-q8", pool, 0);
    }
    mt_pool_free(pool);
    printf("vlm: worst vs mlx-vlm: tower %.2g, image rows %.2g (max |diff| / max |ref|), first logits %.2g "
           "(|diff| / (1 + |ref|))\n", worst_tower, worst_rows, worst_logit);
    return check_report("vlm");
}
