/* test_embed.c - encoder + sentence-transformers pipeline against goldens from
 * tests/gen/gen_embed_fixtures.py (sentence-transformers on tiny random
 * models): token ids exact, embeddings within 1e-4 per component, batched ==
 * one by one; pooling modes, normalization, npy writer, error paths.
 * Families: bert, xlm-roberta, nomic_bert (both checkpoint layouts),
 * modernbert, decoder embedders qwen3 and gemma3_text (bidirectional)
 * (tests/gen/gen_embed_fixtures2.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/blas.h"
#include "core/file.h"
#include "core/pool.h"
#include "embed/embed.h"
#include "embed/job.h"
#include <sys/stat.h>

static json_t *load_golden(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/golden.json", dir);
    char *buf;
    size_t len;
    mt_err err = {0};
    if (mt_read_file(path, &buf, &len, &err)) return NULL;
    json_t *g = json_loadb(buf, len, 0, NULL);
    free(buf);
    return g;
}

static void check_fixture(const char *name, mt_pool *pool) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/data/embed/%s", name);
    json_t *g = load_golden(dir);
    CHECK_MSG(g != NULL, "%s: golden", name);
    if (!g) return;
    mt_err err = {0};
    mt_embedder *m = NULL;
    CHECK_OK(mt_embedder_open(&m, dir, pool, 0, &err), &err);
    if (!m) { json_decref(g); return; }
    CHECK_EQ_INT(m->max_seq, json_integer_value(json_object_get(g, "max_seq_length")));
    json_t *texts = json_object_get(g, "texts"), *gids = json_object_get(g, "ids");
    json_t *gemb = json_object_get(g, "embeddings"), *gtr = json_object_get(g, "truncated");
    const char *prompt = json_string_value(json_object_get(g, "prompt"));
    const char *pname = json_string_value(json_object_get(g, "prompt_name"));
    if (pname) CHECK_STR(mt_embedder_prompt(m, pname), prompt);
    size_t n = json_array_size(texts), D = json_array_size(json_array_get(gemb, 0));
    CHECK_EQ_INT(m->dim, D);
    int32_t *all = malloc(n * m->max_seq * sizeof *all);
    size_t *lens = calloc(n, sizeof *lens), tot = 0;
    int ids_ok = 1;
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_array_get(texts, i);
        int32_t *ids = NULL;
        size_t k = 0;
        int tr = -1;
        CHECK_OK(mt_embedder_tokenize(m, prompt, json_string_value(t), json_string_length(t), &ids, &k, &tr, &err),
                 &err);
        json_t *gi = json_array_get(gids, i);
        int same = k == json_array_size(gi);
        for (size_t j = 0; same && j < k; j++) same = ids[j] == json_integer_value(json_array_get(gi, j));
        if (!same) {
            ids_ok = 0;
            fprintf(stderr, "%s: text %zu: token ids differ (%zu vs %zu)\n", name, i, k, json_array_size(gi));
        }
        CHECK_EQ_INT(tr, json_is_true(json_array_get(gtr, i)));
        memcpy(all + tot, ids, k * sizeof *ids);
        lens[i] = k;
        tot += k;
        free(ids);
    }
    CHECK_MSG(ids_ok, "%s: token ids", name);
    float *out = malloc(n * D * sizeof *out), *one = malloc(D * sizeof *one);
    CHECK_OK(mt_embedder_run(m, all, lens, n, out, &err), &err);
    double maxd = 0, maxd1 = 0;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *row = json_array_get(gemb, i);
        for (size_t k = 0; k < D; k++) {
            double d = fabs(out[i * D + k] - json_real_value(json_array_get(row, k)));
            if (d > maxd) maxd = d;
        }
        /* one sequence at a time gives the same numbers as the packed batch */
        CHECK_OK(mt_embedder_run(m, all + off, &lens[i], 1, one, &err), &err);
        for (size_t k = 0; k < D; k++) {
            double d = fabs(one[k] - out[i * D + k]);
            if (d > maxd1) maxd1 = d;
        }
        off += lens[i];
    }
    CHECK_MSG(maxd <= 1e-4, "%s: max |d| %.3g vs sentence-transformers", name, maxd);
    CHECK_MSG(maxd1 <= 1e-5, "%s: batch vs single max |d| %.3g", name, maxd1);
    printf("%s: %zu texts, dim %zu, max |d| %.2e\n", name, n, D, maxd);
    /* an empty text is an error; an out-of-range id is an error */
    int32_t *ids = NULL;
    size_t k = 0;
    int tr = 0;
    CHECK(mt_embedder_tokenize(m, NULL, " \t ", 3, &ids, &k, &tr, &err) == MT_EINVAL);
    int32_t bad[2] = {0, 1 << 30};
    size_t bl = 2;
    CHECK(mt_embedder_run(m, bad, &bl, 1, one, &err) == MT_EINVAL);
    free(all); free(lens); free(out); free(one);
    mt_embedder_free(m);
    json_decref(g);
}

static void check_cross_encoder(const char *name, mt_pool *pool) {
    char dir[256];
    snprintf(dir, sizeof dir, "tests/data/embed/%s", name);
    json_t *g = load_golden(dir);
    CHECK_MSG(g != NULL, "%s: golden", name);
    if (!g) return;
    mt_err err = {0};
    mt_embedder *m = NULL;
    CHECK_OK(mt_embedder_open(&m, dir, pool, 0, &err), &err);
    if (!m) { json_decref(g); return; }
    const char *q = json_string_value(json_object_get(g, "query"));
    json_t *docs = json_object_get(g, "documents"), *gids = json_object_get(g, "ids");
    json_t *gtypes = json_object_get(g, "types"), *gsc = json_object_get(g, "scores");
    size_t n = json_array_size(docs), L = mt_encoder_n_labels(m->enc);
    CHECK_EQ_INT(L, json_is_array(json_array_get(gsc, 0)) ? json_array_size(json_array_get(gsc, 0)) : 1);
    int32_t *all = malloc(n * m->max_seq * sizeof *all), *alltypes = malloc(n * m->max_seq * sizeof *all);
    size_t *lens = calloc(n, sizeof *lens), tot = 0;
    int ids_ok = 1;
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(docs, i);
        int32_t *ids = NULL, *types = NULL;
        size_t k = 0;
        int tr = 0;
        CHECK_OK(mt_embedder_tokenize_pair(m, q, strlen(q), json_string_value(d), json_string_length(d), &ids, &types,
                                           &k, &tr, &err), &err);
        json_t *gi = json_array_get(gids, i), *gt = json_array_get(gtypes, i);
        int same = k == json_array_size(gi);
        for (size_t j = 0; same && j < k; j++) {
            same = ids[j] == json_integer_value(json_array_get(gi, j));
            if (json_is_array(gt)) same = same && types[j] == json_integer_value(json_array_get(gt, j));
            else same = same && types[j] == 0;
        }
        if (!same) {
            ids_ok = 0;
            fprintf(stderr, "%s: pair %zu: ids differ (%zu vs %zu)\n", name, i, k, json_array_size(gi));
        }
        memcpy(all + tot, ids, k * sizeof *ids);
        memcpy(alltypes + tot, types, k * sizeof *ids);
        lens[i] = k;
        tot += k;
        free(ids);
        free(types);
    }
    CHECK_MSG(ids_ok, "%s: pair ids", name);
    float *sc = malloc(n * L * sizeof *sc);
    CHECK_OK(mt_embedder_score(m, all, alltypes, lens, n, sc, &err), &err);
    double maxd = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < L; k++) {
            json_t *v = json_array_get(gsc, i);
            double want = json_is_array(v) ? json_real_value(json_array_get(v, k)) : json_real_value(v);
            double d = fabs(sc[i * L + k] - want);
            if (d > maxd) maxd = d;
        }
    CHECK_MSG(maxd <= 1e-4, "%s: max |d| %.3g vs CrossEncoder.predict", name, maxd);
    printf("%s: %zu pairs, %zu labels, max |d| %.2e\n", name, n, L, maxd);
    free(all); free(alltypes); free(lens); free(sc);
    mt_embedder_free(m);
    json_decref(g);
}

static void test_pool_modes(void) {
    float h[3 * 2] = {1, -2, 3, 4, -5, 0};
    float o[2];
    mt_embed_pool(MT_POOL_MEAN, h, 3, 2, o);
    CHECK(fabsf(o[0] - (-1.0f / 3)) < 1e-6f && fabsf(o[1] - 2.0f / 3) < 1e-6f);
    mt_embed_pool(MT_POOL_CLS, h, 3, 2, o);
    CHECK(o[0] == 1 && o[1] == -2);
    mt_embed_pool(MT_POOL_LAST, h, 3, 2, o);
    CHECK(o[0] == -5 && o[1] == 0);
    mt_embed_pool(MT_POOL_MAX, h, 3, 2, o);
    CHECK(o[0] == 3 && o[1] == 4);
    mt_embed_pool(MT_POOL_WEIGHTED, h, 3, 2, o);   /* weights 1, 2, 3 */
    CHECK(fabsf(o[0] - (1 + 6 - 15) / 6.0f) < 1e-6f && fabsf(o[1] - (-2 + 8) / 6.0f) < 1e-6f);
    mt_embed_pool(MT_POOL_MEAN_SQRT, h, 3, 2, o);
    CHECK(fabsf(o[0] - (-1.0f / sqrtf(3))) < 1e-6f);
    float v[3] = {3, 0, 4};
    mt_embed_normalize(v, 3);
    CHECK(fabsf(v[0] - 0.6f) < 1e-7f && fabsf(v[2] - 0.8f) < 1e-7f);
    float z[2] = {0, 0};
    mt_embed_normalize(z, 2);
    CHECK(z[0] == 0 && z[1] == 0);
}

static void test_npy(void) {
    char path[] = "/tmp/test_embed_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    mt_err err = {0};
    mt_npy *w = NULL;
    CHECK_OK(mt_npy_open(&w, path, 3, 0, 0, &err), &err);
    float r[3] = {1.5f, -2, 0.25f};
    for (int i = 0; i < 5; i++) CHECK_OK(mt_npy_append(w, r, &err), &err);
    CHECK_EQ_INT(mt_npy_rows(w), 5);
    CHECK_OK(mt_npy_close(w, &err), &err);
    char *buf;
    size_t len;
    CHECK_OK(mt_read_file(path, &buf, &len, &err), &err);
    CHECK_EQ_INT(len, 128 + 5 * 3 * 4);
    CHECK(!memcmp(buf, "\x93NUMPY\x01\x00", 8));
    CHECK_EQ_INT((unsigned char)buf[8] | ((unsigned char)buf[9] << 8), 118);
    CHECK(strstr(buf + 10, "'descr': '<f4', 'fortran_order': False, 'shape': (5, 3), }") != NULL);
    CHECK(buf[127] == '\n');
    float back[3];
    memcpy(back, buf + 128 + 4 * 12, sizeof back);
    CHECK(back[0] == 1.5f && back[1] == -2 && back[2] == 0.25f);
    free(buf);
    /* f16 raw rows */
    CHECK_OK(mt_npy_open(&w, path, 3, 1, 1, &err), &err);
    CHECK_OK(mt_npy_append(w, r, &err), &err);
    CHECK_OK(mt_npy_close(w, &err), &err);
    CHECK_OK(mt_read_file(path, &buf, &len, &err), &err);
    CHECK_EQ_INT(len, 6);
    CHECK((unsigned char)buf[0] == 0x00 && (unsigned char)buf[1] == 0x3e);   /* 1.5 = 0x3e00 */
    free(buf);
    /* abort leaves the old file alone */
    CHECK_OK(mt_npy_open(&w, path, 3, 0, 0, &err), &err);
    mt_npy_abort(w);
    CHECK_OK(mt_read_file(path, &buf, &len, &err), &err);
    CHECK_EQ_INT(len, 6);
    free(buf);
    unlink(path);
    CHECK(mt_npy_open(&w, "/nonexistent-dir/x.npy", 3, 0, 0, &err) == MT_EIO);
}

/* A copy of fixture `name` whose config.json gets key = json value; loading it
 * must fail with `want` (and a message naming `word`, or one of "a|b"). */
static void check_bad_config(const char *name, const char *key, const char *json, int want, const char *word) {
    char dir[] = "/tmp/test_embed_cfg_XXXXXX", src[512], dst[600], cwd[400];
    CHECK(mkdtemp(dir) != NULL);
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    snprintf(src, sizeof src, "%s/tests/data/embed/%s/model.safetensors", cwd, name);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    CHECK(symlink(src, dst) == 0);
    snprintf(src, sizeof src, "tests/data/embed/%s/config.json", name);
    char *buf;
    size_t len;
    mt_err err = {0};
    CHECK_OK(mt_read_file(src, &buf, &len, &err), &err);
    json_t *c = json_loadb(buf, len, 0, NULL);
    free(buf);
    json_object_set_new(c, key, json_loads(json, JSON_DECODE_ANY, NULL));
    char *out = json_dumps(c, 0);
    json_decref(c);
    snprintf(dst, sizeof dst, "%s/config.json", dir);
    CHECK_OK(mt_write_file_atomic(dst, out, strlen(out), &err), &err);
    free(out);
    mt_encoder *e = NULL;
    int rc = mt_encoder_load(&e, dir, NULL, &err);
    CHECK_MSG(rc == want, "%s with %s=%s: status %d, want %d (%s)", name, key, json, rc, want, err.msg);
    int named = 0;
    for (const char *w = word; *w && !named;) {
        size_t k = strcspn(w, "|");
        char one[128];
        snprintf(one, sizeof one, "%.*s", (int)(k < sizeof one ? k : sizeof one - 1), w);
        named = strstr(err.msg, one) != NULL;
        w += k + (w[k] == '|');
    }
    CHECK_MSG(named, "message '%s' names '%s'", err.msg, word);
    CHECK(e == NULL);
    mt_encoder_free(e);
    unlink(dst);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    unlink(dst);
    rmdir(dir);
}

static void test_errors(void) {
    mt_err err = {0};
    mt_embedder *m = NULL;
    CHECK(mt_embedder_open(&m, "tests/data/embed/no-such-model", NULL, 0, &err) != MT_OK);
    CHECK(m == NULL);
    mt_encoder *e = NULL;
    CHECK(mt_encoder_load(&e, "tests/data/models/llama-tiny", NULL, &err) == MT_EUNSUPPORTED);
    CHECK(strstr(err.msg, "llama") != NULL);
    CHECK(mt_encoder_family_find("bert") != NULL);
    CHECK(mt_encoder_family_find("xlm-roberta") != NULL);
    CHECK(mt_encoder_family_find("gpt2") == NULL);
    CHECK(mt_encoder_family_find("nomic_bert") != NULL);
    CHECK(mt_encoder_family_find("modernbert") != NULL);
    CHECK(mt_encoder_family_find("qwen3") != NULL);
    CHECK(mt_encoder_family_find("gemma3_text") != NULL);
    /* configurations whose math is not implemented are refused, not approximated */
    check_bad_config("nomic-tiny-alt", "rotary_emb_interleaved", "true", MT_EUNSUPPORTED, "interleaved");
    check_bad_config("nomic-tiny-alt", "rotary_emb_fraction", "0.5", MT_EUNSUPPORTED, "partial");
    check_bad_config("nomic-tiny-alt", "activation_function", "\"tanh\"", MT_EUNSUPPORTED, "tanh");
    check_bad_config("modernbert-tiny", "layer_types", "[\"full_attention\"]", MT_EFORMAT, "layer_types");
    check_bad_config("modernbert-tiny", "local_attention", "0", MT_EFORMAT, "local_attention");
    check_bad_config("nomic-tiny", "hidden_size", "33", MT_EFORMAT, "sizes|hidden_size 33");
}

/* The record handlers of lib/embed/job.c: answers in input order, "row" with a
 * matrix, error records for bad texts, non-finite vectors refused, and after a
 * fatal matrix error every record fails without running the model.  The .npy
 * gets the mode of a new file under the umask. */
static void test_job(mt_pool *pool) {
    mt_err err = {0};
    mt_embed_job j = {.pool = pool, .batch_tokens = 4096};
    CHECK_OK(mt_embedder_open(&j.m, "tests/data/embed/bert-tiny", pool, 0, &err), &err);
    if (!j.m) return;
    CHECK_OK(mt_embed_job_init(&j, NULL, NULL, 8, &err), &err);
    CHECK_EQ_INT(j.dims, 8);
    CHECK_EQ_INT(mt_embed_job_init(&j, "nope", NULL, 0, &err), MT_EUSAGE);
    CHECK_EQ_INT(mt_embed_job_init(&j, NULL, NULL, 33, &err), MT_EUSAGE);
    CHECK_OK(mt_embed_job_init(&j, NULL, NULL, 0, &err), &err);
    float ok[3] = {1, 2, 3}, bad[3] = {1, NAN, 3}, inf[3] = {INFINITY, 0, 0};
    CHECK_OK(mt_embed_check_finite(ok, 3, &err), &err);
    CHECK_EQ_INT(mt_embed_check_finite(bad, 3, &err), MT_EFORMAT);
    CHECK_STR(err.msg, "model produced non-finite values (corrupt weights?)");
    CHECK_EQ_INT(mt_embed_check_finite(inf, 3, &err), MT_EFORMAT);
    json_t *recs[3] = {json_pack("{s:s}", "text", "hello world"), json_pack("{s:s}", "text", ""),
                       json_pack("{s:s}", "text", "a longer text than the first one")};
    json_t *outs[3] = {0};
    int rcs[3];
    mt_err errs[3] = {0};
    size_t lines[3] = {1, 2, 3};
    char path[] = "/tmp/test_embed_job_XXXXXX";
    CHECK(mkdtemp(path) != NULL);
    char *npy = mt_path_join(path, "v.npy");
    mode_t old = umask(027);
    CHECK_OK(mt_npy_open(&j.npy, npy, j.dims, 0, 0, &err), &err);
    umask(old);
    mt_embed_batch(&j, recs, lines, 3, outs, rcs, errs);
    CHECK(rcs[0] == MT_OK && rcs[1] == MT_EINVAL && rcs[2] == MT_OK);
    CHECK_EQ_INT(json_integer_value(json_object_get(outs[0], "row")), 0);
    CHECK_EQ_INT(json_integer_value(json_object_get(outs[2], "row")), 1);
    for (int i = 0; i < 3; i++) json_decref(outs[i]), outs[i] = NULL;
    CHECK_OK(mt_npy_close(j.npy, &err), &err);
    j.npy = NULL;
    struct stat st;
    CHECK(stat(npy, &st) == 0 && (st.st_mode & 0777) == 0640 && st.st_size == 128 + 2 * 32 * 4);
    j.fatal = 1;
    mt_seterr(&j.fatal_err, MT_EIO, "v.npy: write failed: No space left on device");
    mt_embed_batch(&j, recs, lines, 3, outs, rcs, errs);
    CHECK(rcs[0] == MT_EFATAL && rcs[2] == MT_EFATAL && !outs[0] && !outs[2]);   /* ends the record loop */
    CHECK_STR(errs[2].msg, "v.npy: write failed: No space left on device");
    for (int i = 0; i < 3; i++) json_decref(recs[i]);
    unlink(npy);
    rmdir(path);
    free(npy);
    mt_embedder_free(j.m);
}

int main(void) {
    mt_pool *pool = NULL;
    mt_err err = {0};
    CHECK_OK(mt_pool_new(&pool, 2, &err), &err);
    test_pool_modes();
    test_npy();
    test_errors();
    test_job(pool);
    const char *fx[] = {"bert-tiny",  "bert-cls-dense", "xlmr-tiny",      "bert-tiny-8bit",
                        "bert-tiny-4bit", "nomic-tiny", "nomic-tiny-alt", "modernbert-tiny", "qwen3-tiny",
                        "gemma3-tiny"};
    for (size_t i = 0; i < sizeof fx / sizeof *fx; i++) check_fixture(fx[i], pool);
    check_fixture("bert-tiny", NULL);
    /* single-threaded OpenBLAS (as mlx-embed sets it): products split over the pool,
     * quantized layers dequantized per batch */
    mt_blas_threads(1);
    const char *fx1[] = {"bert-tiny", "bert-tiny-4bit", "modernbert-tiny", "nomic-tiny"};
    for (size_t i = 0; i < sizeof fx1 / sizeof *fx1; i++) check_fixture(fx1[i], pool);
    check_cross_encoder("ce-bert", pool);
    check_cross_encoder("ce-xlmr", pool);   /* no pool: the same numbers on one thread */
    mt_pool_free(pool);
    return check_report("embed");
}
