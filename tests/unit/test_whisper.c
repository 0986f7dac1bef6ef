/* test_whisper.c - the Whisper model against goldens from mlx_whisper /
 * openai-whisper (tests/gen/gen_whisper_fixtures.py): encoder output, decoder
 * logits and alignment-head cross q.k for the mlx f16, mlx 4-bit (80 and 128
 * mels) and transformers bf16 fixtures; incremental decoding, beam reorder,
 * reset, and the error paths. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "check.h"
#include "golden_f32.h"
#include "gen/sample.h"
#include "core/file.h"
#include "core/pool.h"
#include "models/whisper.h"
#include "tensor/dtype.h"

#define DIR "tests/data/whisper/"

/* name: golden folder under tests/data/whisper; dir: the model (NULL = the same folder). */
static void check_fixture(const char *name, const char *dir, mt_pool *pool) {
    char path[512];
    mt_err err = {0};
    snprintf(path, sizeof path, DIR "%s/golden/meta.json", name);
    json_error_t je;
    json_t *meta = json_load_file(path, 0, &je);
    CHECK_MSG(meta != NULL, "%s: %s", path, je.text);
    if (!meta) return;
    if (dir) snprintf(path, sizeof path, "%s", dir);
    else snprintf(path, sizeof path, DIR "%s", name);
    mt_whisper *w = NULL;
    CHECK_OK(mt_whisper_load(&w, path, pool, &err), &err);
    if (!w) { json_decref(meta); return; }
    const mt_whisper_hp *hp = mt_whisper_hparams(w);
    json_t *jh = json_object_get(meta, "hparams");
    CHECK_EQ_INT(hp->n_mels, json_integer_value(json_object_get(jh, "n_mels")));
    CHECK_EQ_INT(hp->n_vocab, json_integer_value(json_object_get(jh, "n_vocab")));
    CHECK_EQ_INT(hp->n_audio_state, json_integer_value(json_object_get(jh, "n_audio_state")));
    CHECK_EQ_INT(hp->n_text_layer, json_integer_value(json_object_get(jh, "n_text_layer")));
    CHECK_STR(mt_whisper_dir(w), path);

    /* alignment heads */
    const int (*pairs)[2] = NULL;
    size_t na = mt_whisper_alignment_heads(w, &pairs);
    json_t *ja = json_object_get(meta, "alignment_heads");
    CHECK_EQ_INT(na, json_array_size(ja));
    for (size_t i = 0; i < na && i < json_array_size(ja); i++) {
        CHECK_EQ_INT(pairs[i][0], json_integer_value(json_array_get(json_array_get(ja, i), 0)));
        CHECK_EQ_INT(pairs[i][1], json_integer_value(json_array_get(json_array_get(ja, i), 1)));
    }

    /* encoder */
    size_t Ta = (size_t)hp->n_audio_ctx, d = (size_t)hp->n_audio_state, V = (size_t)hp->n_vocab, nmel = 0;
    snprintf(path, sizeof path, DIR "%s", json_string_value(json_object_get(meta, "mel")));
    float *mel = gold_read_f32(path, &nmel);
    CHECK_EQ_INT(nmel, (size_t)hp->n_mels * 2 * Ta);
    float *xa = malloc(Ta * d * sizeof *xa);
    CHECK_OK(mt_whisper_encode(w, mel, xa, &err), &err);
    json_t *jr = json_object_get(meta, "enc_rows");
    size_t nr = json_array_size(jr), ng = 0;
    snprintf(path, sizeof path, DIR "%s/golden/enc_rows.f32.zst", name);
    float *g = gold_read_f32(path, &ng);
    CHECK_EQ_INT(ng, nr * d);
    float *sub = malloc(nr * d * sizeof *sub);
    for (size_t i = 0; i < nr; i++)
        memcpy(sub + i * d, xa + (size_t)json_integer_value(json_array_get(jr, i)) * d, d * sizeof(float));
    double e_enc = rel_err(sub, g, nr * d);
    CHECK_MSG(e_enc < 1e-3, "%s: encoder rel err %.3g", name, e_enc);
    free(sub);
    free(g);

    /* decoder logits, all positions */
    json_t *jt = json_object_get(meta, "tokens");
    int T = (int)json_array_size(jt);
    int32_t ids[64];
    for (int i = 0; i < T; i++) ids[i] = (int32_t)json_integer_value(json_array_get(jt, i));
    float *lg = malloc((size_t)T * V * sizeof *lg);
    size_t nq = na * (size_t)T * Ta;
    float *qk = malloc(nq * sizeof *qk);
    CHECK_OK(mt_whisper_cross_qk(w, xa, ids, T, qk, lg, &err), &err);
    /* golden columns: [0, 1000) and [50200, V) */
    size_t nc = 1000 + (V - 50200);
    float *gl = NULL, *cols = malloc((size_t)T * nc * sizeof *cols);
    snprintf(path, sizeof path, DIR "%s/golden/logits.f32.zst", name);
    gl = gold_read_f32(path, &ng);
    CHECK_EQ_INT(ng, (size_t)T * nc);
    for (int t = 0; t < T; t++) {
        memcpy(cols + (size_t)t * nc, lg + (size_t)t * V, 1000 * sizeof(float));
        memcpy(cols + (size_t)t * nc + 1000, lg + (size_t)t * V + 50200, (V - 50200) * sizeof(float));
    }
    double e_lg = rel_err(cols, gl, (size_t)T * nc);
    CHECK_MSG(e_lg < 1e-3, "%s: logits rel err %.3g", name, e_lg);
    json_t *jm = json_object_get(meta, "argmax");
    for (int t = 0; t < T; t++) {
        size_t ref = (size_t)json_integer_value(json_array_get(jm, (size_t)t));
        const float *row = lg + (size_t)t * V;
        size_t am = (size_t)mt_argmax(row, V);
        CHECK_MSG(am == ref || row[ref] >= row[am] - 1e-3f * fabsf(row[am]), "%s: pos %d argmax %zu, ref %zu", name,
                  t, am, ref);
    }
    free(cols);
    free(gl);
    snprintf(path, sizeof path, DIR "%s/golden/cross_qk.f32.zst", name);
    g = gold_read_f32(path, &ng);
    CHECK_EQ_INT(ng, nq);
    double e_qk = rel_err(qk, g, nq);
    CHECK_MSG(e_qk < 1e-3, "%s: cross qk rel err %.3g", name, e_qk);
    free(g);
    printf("%s: encoder %.2e logits %.2e cross-qk %.2e\n", name, e_enc, e_lg, e_qk);

    /* incremental decoding on 2 sequences equals the one-shot logits */
    mt_whisper_dec *dec = NULL;
    CHECK_OK(mt_whisper_dec_new(&dec, w, xa, 2, &err), &err);
    CHECK_EQ_INT(mt_whisper_dec_nseq(dec), 2);
    float *step = malloc(2 * V * sizeof *step);
    int32_t two[4];
    two[0] = ids[0]; two[1] = ids[1]; two[2] = ids[0]; two[3] = ids[1];
    CHECK_OK(mt_whisper_dec_step(dec, two, 2, 0, step, &err), &err);
    double e_inc = rel_err(step, lg + V, V);
    e_inc = fmax(e_inc, rel_err(step + V, lg + V, V));
    for (int t = 2; t < T; t++) {
        two[0] = two[1] = ids[t];
        CHECK_OK(mt_whisper_dec_step(dec, two, 1, 0, step, &err), &err);
        e_inc = fmax(e_inc, rel_err(step, lg + (size_t)t * V, V));
        e_inc = fmax(e_inc, rel_err(step + V, lg + (size_t)t * V, V));
    }
    CHECK_EQ_INT(mt_whisper_dec_len(dec), T);
    CHECK_MSG(e_inc < 1e-4, "%s: incremental vs one-shot %.3g", name, e_inc);

    /* cross q.k over the decoder's projected audio: same result, caches untouched */
    float *qk2 = malloc(nq * sizeof *qk2);
    CHECK_OK(mt_whisper_dec_cross_qk(dec, ids, T, qk2, NULL, &err), &err);
    CHECK(rel_err(qk2, qk, nq) < 1e-5);
    CHECK_EQ_INT(mt_whisper_dec_len(dec), T);
    free(qk2);

    /* reset: back to length 0, same logits again */
    mt_whisper_dec_reset(dec);
    CHECK_EQ_INT(mt_whisper_dec_len(dec), 0);
    int32_t pre[4] = {ids[0], ids[1], ids[0], ids[1]};
    CHECK_OK(mt_whisper_dec_step(dec, pre, 2, 0, step, &err), &err);
    CHECK(rel_err(step, lg + V, V) < 1e-4);

    /* errors */
    int32_t bad[2] = {(int32_t)V, 0};
    CHECK_EQ_INT(mt_whisper_dec_step(dec, bad, 1, 0, step, &err), MT_EINVAL);
    CHECK(strstr(err.msg, "outside the vocabulary") != NULL);
    int32_t *many = calloc((size_t)hp->n_text_ctx * 2, sizeof *many);
    CHECK_EQ_INT(mt_whisper_dec_step(dec, many, hp->n_text_ctx, 0, NULL, &err), MT_EINVAL);
    CHECK(strstr(err.msg, "n_text_ctx") != NULL);
    free(many);
    CHECK_EQ_INT(mt_whisper_dec_len(dec), 2);
    int badsrc[2] = {0, 2};
    CHECK_EQ_INT(mt_whisper_dec_reorder(dec, badsrc, &err), MT_EINVAL);
    mt_whisper_dec_free(dec);
    mt_whisper_dec *d0 = NULL;
    CHECK_EQ_INT(mt_whisper_dec_new(&d0, w, xa, 0, &err), MT_EINVAL);
    CHECK(d0 == NULL);
    free(step);
    free(qk);
    free(lg);
    free(xa);
    free(mel);
    mt_whisper_free(w);
    json_decref(meta);
}

/* Beam reorder: three sequences with different histories, reorder {2, 2, 0},
 * one more token each; each must equal a fresh single sequence fed the
 * history it inherited. */
static void check_reorder(mt_pool *pool) {
    mt_err err = {0};
    mt_whisper *w = NULL;
    CHECK_OK(mt_whisper_load(&w, DIR "tiny-ml-mlx", pool, &err), &err);
    if (!w) return;
    const mt_whisper_hp *hp = mt_whisper_hparams(w);
    size_t Ta = (size_t)hp->n_audio_ctx, d = (size_t)hp->n_audio_state, V = (size_t)hp->n_vocab;
    float *xa = malloc(Ta * d * sizeof *xa);
    for (size_t i = 0; i < Ta * d; i++) xa[i] = (float)sin(0.37 * (double)i) * 0.8f;   /* any audio features */
    int32_t hist[3][3] = {{50258, 50259, 440}, {50258, 50259, 1000}, {50258, 50260, 2068}};
    mt_whisper_dec *dec = NULL;
    CHECK_OK(mt_whisper_dec_new(&dec, w, xa, 3, &err), &err);
    int32_t ids[9];
    for (int s = 0; s < 3; s++) memcpy(ids + 3 * s, hist[s], sizeof hist[s]);
    float *lg = malloc(3 * V * sizeof *lg), *ref = malloc(V * sizeof *ref);
    CHECK_OK(mt_whisper_dec_step(dec, ids, 3, 0, lg, &err), &err);
    int src[3] = {2, 2, 0};
    CHECK_OK(mt_whisper_dec_reorder(dec, src, &err), &err);
    int32_t nxt[3] = {13, 50363, 286};
    CHECK_OK(mt_whisper_dec_step(dec, nxt, 1, 0, lg, &err), &err);
    for (int s = 0; s < 3; s++) {
        mt_whisper_dec *one = NULL;
        CHECK_OK(mt_whisper_dec_new(&one, w, xa, 1, &err), &err);
        int32_t seq[4];
        memcpy(seq, hist[src[s]], sizeof hist[0]);
        seq[3] = nxt[s];
        CHECK_OK(mt_whisper_dec_step(one, seq, 4, 0, ref, &err), &err);
        double e = rel_err(lg + (size_t)s * V, ref, V);
        CHECK_MSG(e < 1e-4, "reorder seq %d: %.3g", s, e);
        mt_whisper_dec_free(one);
    }
    /* the sequences really differ (the test can fail) */
    CHECK(rel_err(lg, lg + 2 * V, V) > 1e-3);
    mt_whisper_dec_free(dec);
    free(lg);
    free(ref);
    free(xa);
    mt_whisper_free(w);
}

/* tiny-ml-mlx read for a modified copy in a new temporary folder tmpdir: the
 * weights file (buf, len), its parsed header (*hdr) and length (*hl), the
 * config (cfg, clen).  Returns 0 or -1. */
static int read_fixture(char *tmpdir, char **buf, size_t *len, json_t **hdr, uint64_t *hl, char **cfg, size_t *clen) {
    strcpy(tmpdir, "/tmp/test_whisper_XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    if (mt_read_file(DIR "tiny-ml-mlx/weights.safetensors", buf, len, NULL)) return -1;
    if (mt_read_file(DIR "tiny-ml-mlx/config.json", cfg, clen, NULL)) { free(*buf); return -1; }
    memcpy(hl, *buf, 8);
    json_error_t je;
    *hdr = json_loadb(*buf + 8, (size_t)*hl, 0, &je);
    return 0;
}

/* Writes tmpdir/weights.safetensors (header hdr, then data[dlen]) and
 * tmpdir/config.json.  Returns 0 or -1. */
static int write_copy(const char *tmpdir, const json_t *hdr, const char *data, size_t dlen, const char *cfg,
                      size_t clen) {
    char *hs = json_dumps(hdr, JSON_COMPACT);
    uint64_t nh = strlen(hs);
    char p[600];
    snprintf(p, sizeof p, "%s/weights.safetensors", tmpdir);
    FILE *f = fopen(p, "wb");
    int rc = -1;
    if (f) {
        fwrite(&nh, 8, 1, f);
        fwrite(hs, 1, (size_t)nh, f);
        fwrite(data, 1, dlen, f);
        rc = fclose(f);
    }
    snprintf(p, sizeof p, "%s/config.json", tmpdir);
    if (!rc) rc = mt_write_file_atomic(p, cfg, clen, NULL);
    free(hs);
    return rc;
}

/* A copy of tiny-ml-mlx whose safetensors header is edited by `edit`. */
static int broken_copy(char *tmpdir, void (*edit)(json_t *hdr)) {
    char *buf = NULL, *cfg = NULL;
    size_t len = 0, clen = 0;
    json_t *h;
    uint64_t hl;
    if (read_fixture(tmpdir, &buf, &len, &h, &hl, &cfg, &clen)) return -1;
    edit(h);
    int rc = write_copy(tmpdir, h, buf + 8 + hl, len - 8 - (size_t)hl, cfg, clen);
    json_decref(h);
    free(buf);
    free(cfg);
    return rc;
}

/* A float32 copy of tiny-ml-mlx (every F16 tensor widened; exact). */
static int f32_copy(char *tmpdir) {
    char *buf = NULL, *cfg = NULL;
    size_t len = 0, clen = 0;
    json_t *h;
    uint64_t hl;
    if (read_fixture(tmpdir, &buf, &len, &h, &hl, &cfg, &clen)) return -1;
    const char *data = buf + 8 + hl;
    size_t total = 0;
    const char *key;
    json_t *v;
    json_object_foreach(h, key, v) {
        if (!strcmp(key, "__metadata__")) continue;
        size_t b = (size_t)json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 0));
        size_t e = (size_t)json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 1));
        total += strcmp(json_string_value(json_object_get(v, "dtype")), "F16") ? e - b : 2 * (e - b);
    }
    char *out = malloc(total ? total : 1);
    size_t off = 0;
    json_object_foreach(h, key, v) {
        if (!strcmp(key, "__metadata__")) continue;
        json_t *o = json_object_get(v, "data_offsets");
        size_t b = (size_t)json_integer_value(json_array_get(o, 0)), e = (size_t)json_integer_value(json_array_get(o, 1));
        size_t n = e - b;
        if (!strcmp(json_string_value(json_object_get(v, "dtype")), "F16")) {
            float *f = malloc(n * 2);
            mt_convert_to_f32(f, data + b, MT_F16, n / 2);
            memcpy(out + off, f, n * 2);
            free(f);
            n *= 2;
            json_object_set_new(v, "dtype", json_string("F32"));
        } else {
            memcpy(out + off, data + b, n);
        }
        json_object_set_new(v, "data_offsets", json_pack("[II]", (json_int_t)off, (json_int_t)(off + n)));
        off += n;
    }
    int rc = write_copy(tmpdir, h, out, total, cfg, clen);
    json_decref(h);
    free(out);
    free(buf);
    free(cfg);
    return rc;
}

static void rm_copy(const char *tmpdir) {
    char p[600];
    snprintf(p, sizeof p, "%s/weights.safetensors", tmpdir);
    unlink(p);
    snprintf(p, sizeof p, "%s/config.json", tmpdir);
    unlink(p);
    rmdir(tmpdir);
}

static void edit_missing(json_t *h) {
    json_t *v = json_object_get(h, "decoder.blocks.1.mlp2.weight");
    json_incref(v);
    json_object_del(h, "decoder.blocks.1.mlp2.weight");
    json_object_set_new(h, "decoder.blocks.1.mlp2.weight_renamed", v);
}

static void edit_shape(json_t *h) {
    json_t *v = json_object_get(h, "decoder.ln.weight");
    json_object_set_new(v, "shape", json_pack("[ii]", 2, 16));
}

static void check_errors(void) {
    mt_err err = {0};
    mt_whisper *w = NULL;
    CHECK_EQ_INT(mt_whisper_load(&w, DIR "no-such-model", NULL, &err), MT_ENOTFOUND);
    CHECK(w == NULL);
    char tmp[64];
    CHECK(broken_copy(tmp, edit_missing) == 0);
    int rc = mt_whisper_load(&w, tmp, NULL, &err);
    CHECK_EQ_INT(rc, MT_ENOTFOUND);
    CHECK_MSG(strstr(err.msg, "decoder.blocks.1.mlp2.weight") && strstr(err.msg, tmp), "msg: %s", err.msg);
    rm_copy(tmp);
    CHECK(broken_copy(tmp, edit_shape) == 0);
    rc = mt_whisper_load(&w, tmp, NULL, &err);
    CHECK_EQ_INT(rc, MT_EFORMAT);
    CHECK_MSG(strstr(err.msg, "decoder.ln.weight") && strstr(err.msg, "[2, 16]"), "msg: %s", err.msg);
    rm_copy(tmp);
    mt_whisper_free(NULL);
    mt_whisper_dec_free(NULL);
}

int main(void) {
    mt_pool *pool = NULL;
    mt_err err = {0};
    CHECK_OK(mt_pool_new(&pool, 2, &err), &err);
    /* OpenBLAS on one thread: the products are split over the pool */
    openblas_set_num_threads(1);
    const char *fx[] = {"tiny-ml-mlx", "tiny-ml-mlx-q4", "tiny-en-hf", "tiny-v3-mlx-q4"};
    for (size_t i = 0; i < sizeof fx / sizeof *fx; i++) check_fixture(fx[i], NULL, pool);
    check_fixture("tiny-ml-mlx", NULL, NULL);   /* single-threaded path */
    char tmp[64];
    CHECK(f32_copy(tmp) == 0);
    check_fixture("tiny-ml-mlx", tmp, pool);    /* F32 weights */
    /* OpenBLAS threads, heads in sequence */
    openblas_set_num_threads(2);
    check_fixture("tiny-ml-mlx", tmp, pool);
    check_fixture("tiny-ml-mlx-q4", NULL, pool);
    rm_copy(tmp);
    check_reorder(pool);
    check_errors();
    mt_pool_free(pool);
    return check_report("whisper");
}
