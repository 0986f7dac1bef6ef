/* test_vlm_qwen.c - Qwen2-VL / Qwen2.5-VL (models/qwen2vl.c) and the decoder's M-RoPE.
 *   - against mlx-vlm 0.7.10 on the tiny random-weight folders tests/data/vlm/qwen2-vl-tiny*,
 *     qwen2.5-vl-tiny* (float, q4, q8; tests/gen/gen_vlm_qwen2vl.py), case by case: a record
 *     (images + prompt) through mt_vlm_job_record gives the input ids and get_rope_index's
 *     positions and rope_delta exactly and the image rows (tower + merger, with Qwen2.5-VL's
 *     windows, edge windows included) within 1e-4 relative; the golden rows injected give the
 *     first answer token's logits within 1e-3 * (1 + |logit|) and 32 greedy tokens exactly
 *     (the decode steps at cache position + rope_delta), and so do our own rows;
 *   - M-RoPE on the tiny qwen2 text model with sections forced: a position table whose t, h, w
 *     agree gives the plain positions' logits bit for bit; sections that hand every frequency
 *     to one axis give that axis' plain positions; a decode step after a table runs at
 *     cache position + rope_delta (as the same row inside a longer table does); the same with
 *     mlx's float16 numerics (decoder_mlx.c) on a float16 copy. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "check.h"
#include "vlm_golden.h"
#include "convert/convert.h"
#include "core/pool.h"
#include "gen/generate.h"
#include "gen/vlm_job.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "models/vlm.h"
#include "text/prompter.h"
#include "text/tokenizer.h"

#define VDIR "tests/data/vlm"

static double worst_logit, worst_rows;

static const void *gold(const mt_safetensors *g, int ci, const char *what, mt_dtype dt, size_t *n) {
    char nm[64];
    snprintf(nm, sizeof nm, "c%d.%s", ci, what);
    const mt_tensor_view *t = mt_safetensors_get(g, nm);
    if (!t || t->dtype != dt) return NULL;
    *n = mt_tensor_numel(t);
    return t->data;
}

/* logits0 and the greedy tokens with inj over ids */
static void answer(mt_vlm *v, const mt_tokenizer *tok, const int32_t *ids, size_t n, const mt_embed_inject *inj,
                   const float *l0, const int32_t *toks, size_t nt, const int32_t *eos, size_t neos, const char *what) {
    mt_err e = {0};
    size_t V = (size_t)v->lm->hp.vocab;
    float *lg = malloc(V * sizeof *lg);
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, v->lm, &e), &e);
    mt_embed_inject a = *inj;
    a.next = 0;   /* as generate.c: all but the last token, then the last alone */
    CHECK_OK(mt_model_forward_inject(v->lm, c, ids, n - 1, lg, 0, &a, &e), &e);
    CHECK_OK(mt_model_forward_inject(v->lm, c, ids + n - 1, 1, lg, 0, &a, &e), &e);
    double worst = 0;
    for (size_t i = 0; i < V; i++) {
        double d = fabs((double)lg[i] - l0[i]) / (1 + fabs((double)l0[i]));
        worst = d > worst ? d : worst;
    }
    worst_logit = worst > worst_logit ? worst : worst_logit;
    CHECK_MSG(worst < 1e-3, "%s: logits0 off by %.3g (relative to 1+|l|)", what, worst);
    mt_kvcache_free(c);
    free(lg);
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = 32;
    gp.eos = eos;
    gp.n_eos = neos;
    gp.inject = inj;
    mt_gen_result res;
    CHECK_OK(mt_generate(v->lm, tok, ids, n, &gp, NULL, NULL, &res, &e), &e);
    int same = res.n_tokens == nt;
    for (size_t i = 0; same && i < nt; i++) same = res.tokens[i] == toks[i];
    CHECK_MSG(same, "%s: greedy tokens differ (%zu vs %zu)", what, res.n_tokens, nt);
    mt_gen_result_free(&res);
}

static void one_case(mt_vlm *v, mt_vlm_job *job, const mt_prompter *pr, const mt_tokenizer *tok,
                     const mt_safetensors *g, json_t *cs, const int32_t *eos, size_t neos, const char *folder, int ci) {
    mt_err e = {0};
    char what[128];
    snprintf(what, sizeof what, "%s case %d", folder, ci);
    size_t nids = 0, nf = 0, nl = 0, nt = 0, np = 0, nd = 0;
    const int32_t *want = gold(g, ci, "input_ids", MT_I32, &nids);
    const float *feat = gold(g, ci, "features", MT_F32, &nf);
    const float *l0 = gold(g, ci, "logits0", MT_F32, &nl);
    const int32_t *toks = gold(g, ci, "tokens", MT_I32, &nt);
    const int32_t *gpos = gold(g, ci, "position_ids", MT_I32, &np);
    const int32_t *gdel = gold(g, ci, "rope_delta", MT_I32, &nd);
    CHECK_MSG(want && feat && l0 && toks && gpos && gdel && np == 3 * nids, "%s: goldens missing", what);
    if (!want || !feat || !l0 || !toks || !gpos || !gdel || np != 3 * nids) return;
    size_t H = v->text_hidden;
    CHECK_EQ_INT(nl, (size_t)v->lm->hp.vocab);
    /* the golden rows with the golden positions */
    mt_embed_inject gi = {v->image_token_id, feat, nf / H, 0, gpos, nids, gdel[0]};
    answer(v, tok, want, nids, &gi, l0, toks, nt, eos, neos, what);
    /* the record path */
    json_t *rec = json_object(), *ims = json_array(), *gims = json_object_get(cs, "images");
    for (size_t i = 0; i < json_array_size(gims); i++) {
        char p[256];
        snprintf(p, sizeof p, VDIR "/%s", json_string_value(json_array_get(gims, i)));
        json_array_append_new(ims, json_string(p));
    }
    json_object_set_new(rec, "image", ims);
    json_object_set(rec, "prompt", json_object_get(cs, "prompt"));
    int32_t *ids = NULL;
    size_t n = 0;
    mt_embed_inject *inj = NULL;
    CHECK_OK(mt_vlm_job_record(job, pr, rec, 1, &ids, &n, &inj, &e), &e);
    int same = ids && n == nids;
    for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
    CHECK_MSG(same, "%s: input ids differ (%zu vs %zu)", what, n, nids);
    CHECK_MSG(inj && inj->n * H == nf, "%s: %zu image rows, want %zu", what, inj ? inj->n : 0, nf / H);
    if (same && inj && inj->n * H == nf) {
        int pos_ok = inj->pos3 && inj->n_pos == nids && !memcmp(inj->pos3, gpos, np * sizeof *gpos);
        CHECK_MSG(pos_ok, "%s: M-RoPE positions differ from get_rope_index's", what);
        CHECK_MSG(inj->rope_delta == gdel[0], "%s: rope_delta %ld, want %d", what, inj->rope_delta, (int)gdel[0]);
        double r = rel_err(inj->rows, feat, nf);
        worst_rows = r > worst_rows ? r : worst_rows;
        CHECK_MSG(r < 1e-4, "%s: image rows off by %.3g relative", what, r);
        snprintf(what, sizeof what, "%s case %d (own rows)", folder, ci);
        answer(v, tok, ids, n, inj, l0, toks, nt, eos, neos, what);
    }
    free(inj);
    free(ids);
    json_decref(rec);
}

static void folder_cases(const char *folder, mt_pool *pool) {
    mt_err e = {0};
    char dir[256], path[320];
    snprintf(dir, sizeof dir, strchr(folder, '/') ? "%s" : VDIR "/%s", folder);
    mt_vlm *v = NULL;
    CHECK_OK(mt_vlm_load(&v, dir, pool, &e), &e);
    if (!v) return;
    CHECK_EQ_INT(v->image_token_id, 412);
    CHECK_EQ_INT(v->vision_start_id, 409);
    CHECK(strchr(folder, '/') || (v->lm->mrope[0] == 4 && v->lm->mrope[1] == 6 && v->lm->mrope[2] == 6));
    mt_tokenizer *tok = NULL;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(mt_tokenizer_load(&tok, path, &e), &e);
    mt_safetensors *g = NULL;
    snprintf(path, sizeof path, "%s/goldens.safetensors", dir);
    CHECK_OK(mt_safetensors_open(&g, path, &e), &e);
    mt_prompter *pr = NULL;
    mt_vlm_job *job = NULL;
    CHECK_OK(mt_prompter_open(&pr, dir, &e), &e);
    CHECK_OK(mt_vlm_job_new(&job, v, 0, &e), &e);
    snprintf(path, sizeof path, "%s/goldens.json", dir);
    json_t *gj = json_load_file(path, 0, NULL);
    json_t *cases = json_object_get(gj, "cases"), *je = json_object_get(gj, "eos_token_ids");
    int32_t eos[8];
    size_t neos = 0;
    for (size_t i = 0; i < json_array_size(je) && neos < 8; i++) eos[neos++] = (int32_t)json_integer_value(json_array_get(je, i));
    CHECK(json_array_size(cases) == 4);
    for (size_t ci = 0; tok && pr && job && g && ci < json_array_size(cases); ci++)
        one_case(v, job, pr, tok, g, json_array_get(cases, ci), eos, neos, folder, (int)ci);
    json_decref(gj);
    mt_vlm_job_free(job);
    mt_prompter_free(pr);
    mt_safetensors_free(g);
    mt_tokenizer_free(tok);
    mt_vlm_free(v);
}

/* logits of the last row of ids[0..n) run as one call (positions from pos3 when given) */
static void run(mt_model *m, const int32_t *ids, size_t n, const int32_t *pos3, size_t npos, long delta, float *lg) {
    mt_err e = {0};
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    mt_embed_inject inj = {-1, NULL, 0, 0, pos3, npos, delta};
    CHECK_OK(mt_model_forward_inject(m, c, ids, n, lg, 0, pos3 ? &inj : NULL, &e), &e);
    mt_kvcache_free(c);
}

static int same(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof *a); }

static void mrope(mt_pool *pool) {
    mt_err e = {0};
    mt_model *m = NULL;
    CHECK_OK(mt_model_load(&m, "tests/data/models/qwen2-tiny", pool, &e), &e);
    if (!m) return;
    size_t V = (size_t)m->hp.vocab, half = (size_t)m->hp.rot_dims / 2;
    enum { N = 12 };
    int32_t ids[N + 1], pos[3 * (N + 1)];
    for (int i = 0; i <= N; i++) ids[i] = (int32_t)(5 + 7 * i) % m->hp.vocab;
    float *a = malloc(V * sizeof *a), *b = malloc(V * sizeof *b);
    run(m, ids, N, NULL, 0, 0, a);
    /* t = h = w = p: the plain positions, bit for bit, whatever the sections */
    m->mrope[0] = (int)(half / 4);
    m->mrope[1] = m->mrope[2] = (int)(half - half / 4) / 2;
    for (int i = 0; i < 3 * N; i++) pos[i] = i / 3;
    run(m, ids, N, pos, N, 0, b);
    CHECK_MSG(same(a, b, V), "M-RoPE with t = h = w differs from plain RoPE");
    /* every frequency on one axis: that axis' positions are the plain ones (the others scrambled) */
    for (int ax = 0; ax < 3; ax++) {
        m->mrope[0] = m->mrope[1] = m->mrope[2] = 0;
        m->mrope[ax] = (int)half;
        for (int i = 0; i < N; i++)
            for (int k = 0; k < 3; k++) pos[3 * i + k] = k == ax ? i : 3 * i + 5 * k + 1;
        run(m, ids, N, pos, N, 0, b);
        CHECK_MSG(same(a, b, V), "M-RoPE: sections on axis %d alone do not give its positions", ax);
    }
    /* mixed sections: the rows' distinct t, h, w change the result */
    m->mrope[0] = 1;
    m->mrope[1] = m->mrope[2] = (int)(half - 1) / 2;
    for (int i = 0; i < N; i++)
        for (int k = 0; k < 3; k++) pos[3 * i + k] = i + (i > 3 && i < 8 ? k * (i - 3) : 0);
    run(m, ids, N, pos, N, 0, b);
    CHECK_MSG(!same(a, b, V), "M-RoPE: distinct t, h, w rows changed nothing");
    /* decode after a table: position = cache position + rope_delta, for all three axes */
    long delta = -3;
    pos[3 * N] = pos[3 * N + 1] = pos[3 * N + 2] = (int32_t)(N + delta);
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);   /* the extra row inside the table, in a call of its own */
    mt_embed_inject in2 = {-1, NULL, 0, 0, pos, N + 1, delta};
    CHECK_OK(mt_model_forward_inject(m, c, ids, N, a, 0, &in2, &e), &e);
    CHECK_OK(mt_model_forward_inject(m, c, ids + N, 1, a, 0, &in2, &e), &e);
    mt_kvcache_reset(c);
    mt_embed_inject inj = {-1, NULL, 0, 0, pos, N, delta};
    CHECK_OK(mt_model_forward_inject(m, c, ids, N, b, 0, &inj, &e), &e);
    CHECK_EQ_INT(c->pos_delta, delta);
    CHECK_OK(mt_model_forward(m, c, ids + N, 1, b, 0, &e), &e);
    CHECK_MSG(same(a, b, V), "M-RoPE: a decode step is not at cache position + rope_delta");
    mt_kvcache *c2 = NULL;
    CHECK_OK(mt_kvcache_copy(&c2, c, &e), &e);
    CHECK_EQ_INT(c2 ? c2->pos_delta : 0, delta);
    mt_kvcache_reset(c);
    CHECK_EQ_INT(c->pos_delta, 0);
    mt_kvcache_free(c2);
    mt_kvcache_free(c);
    free(a);
    free(b);
    mt_model_free(m);
}

/* mlx's 16-bit numerics: M-RoPE rows take the layer's 1 / base^(2i/d) table (mlx-vlm's
 * MRoPERotaryEmbedding), the same angles whether t, h, w agree or not */
static void mrope_mlx(mt_pool *pool) {
    mt_err e = {0};
    char tmpl[] = "/tmp/mt_vlm_qwen_XXXXXX", dst[300];
    char *root = mkdtemp(tmpl);
    CHECK(root != NULL);
    if (!root) return;
    snprintf(dst, sizeof dst, "%s/f16", root);
    mt_convert_opts o = {.src = "tests/data/models/qwen2-tiny", .dst = dst, .dtype = "float16", .threads = 1};
    CHECK_OK(mt_convert(&o, &e), &e);
    mt_model *m = NULL;
    CHECK_OK(mt_model_load(&m, dst, pool, &e), &e);
    if (m) {
        CHECK_OK(mt_model_set_numerics(m, MT_NUMERICS_MLX, &e), &e);
        CHECK(mt_model_mlx(m));
        size_t V = (size_t)m->hp.vocab, half = (size_t)m->hp.rot_dims / 2;
        enum { N = 10 };
        int32_t ids[N], pos[3 * N];
        for (int i = 0; i < N; i++) ids[i] = (int32_t)(3 + 11 * i) % m->hp.vocab;
        float *a = malloc(V * sizeof *a), *b = malloc(V * sizeof *b);
        m->mrope[0] = (int)half;
        for (int i = 0; i < 3 * N; i++) pos[i] = i / 3;
        run(m, ids, N, pos, N, 0, a);
        for (int i = 0; i < N; i++) pos[3 * i + 1] = pos[3 * i + 2] = 2 * i + 7;
        run(m, ids, N, pos, N, 0, b);
        CHECK_MSG(same(a, b, V), "M-RoPE (mlx numerics): sections on t alone do not give t's positions");
        free(a);
        free(b);
        mt_model_free(m);
    }
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    CHECK(system(cmd) == 0);
}

/* With arguments: only the folders named (e.g. local-models/qwen2-vl-heads from
 * gen_vlm_qwen2vl.py --heads, the real checkpoints' head sizes). */
int main(int argc, char **argv) {
    mt_pool *pool = NULL;
    mt_err e = {0};
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    if (argc > 1) {
        for (int i = 1; i < argc; i++) folder_cases(argv[i], pool);
        mt_pool_free(pool);
        printf("vlm_qwen: worst vs mlx-vlm: image rows %.2g, first logits %.2g\n", worst_rows, worst_logit);
        return check_report("vlm_qwen");
    }
    mrope(pool);
    mrope_mlx(pool);
    static const char *const folders[] = {"qwen2-vl-tiny", "qwen2-vl-tiny-q4", "qwen2-vl-tiny-q8",
                                          "qwen2.5-vl-tiny", "qwen2.5-vl-tiny-q4", "qwen2.5-vl-tiny-q8"};
    for (size_t i = 0; i < sizeof folders / sizeof folders[0]; i++) folder_cases(folders[i], pool);
    printf("vlm_qwen: worst vs mlx-vlm: image rows %.2g (max |diff| / max |ref|), first logits %.2g "
           "(|diff| / (1 + |ref|))\n", worst_rows, worst_logit);
    mt_pool_free(pool);
    return check_report("vlm_qwen");
}
