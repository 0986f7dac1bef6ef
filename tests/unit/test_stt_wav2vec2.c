/* test_stt_wav2vec2.c - Wav2Vec2 / HuBERT CTC (models/wav2vec2.h, the
 * mt_asr_wav2vec2 family) against the goldens of tests/gen/gen_stt_wav2vec2.py:
 * mlx-audio 0.6.2 for the wav2vec2 folders (post-LN, stable pre-LN, 4-bit),
 * transformers' HubertForCTC for hubert.  Per clip: the normalized input,
 * the conv features, the last hidden state and the logits, the greedy CTC
 * ids, and through mt_asr_transcribe the text, the segment and the word
 * timestamps; then the loader's errors. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audio/audio.h"
#include "check.h"
#include "golden_f32.h"
#include "core/blas.h"
#include "core/file.h"
#include "core/pool.h"
#include "fixture_copy.h"
#include "models/wav2vec2.h"
#include "stt/asr.h"

#define DIR "tests/data/stt/wav2vec2/"

/* the generator's LCG noise: int samples in [-amp, amp] / 32768 */
static void lcg_noise(float *out, size_t n, uint32_t seed, int amp) {
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s = (s * 1103515245u + 12345u) & 0x7FFFFFFFu;
        out[i] = (float)((int)((s >> 8) % (uint64_t)(2 * amp + 1)) - amp) / 32768.0f;
    }
}

typedef struct clip {
    const char *name;
    float *x;
    size_t n;
} clip;

static int make_clips(clip *c) {
    mt_audio a = {0};
    mt_err err = {0};
    if (mt_audio_load(&a, "tests/data/audio/speech_s16_mono_16k.wav", 16000, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    size_t ns = a.n, ng = 8000;
    c[0] = (clip){"speech", malloc(ns * sizeof(float)), ns};
    c[1] = (clip){"noise", malloc(32000 * sizeof(float)), 32000};
    c[2] = (clip){"long", malloc(4 * (ns + ng) * sizeof(float)), 4 * (ns + ng)};
    memcpy(c[0].x, a.pcm, ns * sizeof(float));
    lcg_noise(c[1].x, 32000, 777, 3000);
    float *gap = malloc(ng * sizeof *gap);
    lcg_noise(gap, ng, 99, 300);
    for (int r = 0; r < 4; r++) {
        memcpy(c[2].x + r * (ns + ng), a.pcm, ns * sizeof(float));
        memcpy(c[2].x + r * (ns + ng) + ns, gap, ng * sizeof(float));
    }
    free(gap);
    mt_audio_clear(&a);
    return 0;
}

static void check_tensor(const char *what, const char *fold, const char *cname, const float *ours, size_t n,
                         double tol, int absolute, size_t stride) {
    char path[512];
    size_t ng = 0;
    snprintf(path, sizeof path, DIR "%s/golden/%s.%s.f32.zst", fold, cname, what);
    float *g = gold_read_f32(path, &ng);
    size_t want = stride > 1 ? (n + stride - 1) / stride : n;
    CHECK_MSG(g && ng == want, "%s: %zu values, expected %zu", path, ng, want);
    if (!g || ng != want) { free(g); return; }
    float *sub = malloc(ng * sizeof *sub);
    for (size_t i = 0; i < ng; i++) sub[i] = ours[i * (stride ? stride : 1)];
    double e;
    if (absolute) {
        e = 0;
        for (size_t i = 0; i < ng; i++) e = fmax(e, fabs((double)sub[i] - g[i]));
    } else {
        e = rel_err(sub, g, ng);
    }
    CHECK_MSG(e < tol, "%s %s %s: %s err %.3g (limit %.1g)", fold, cname, what, absolute ? "abs" : "rel", e, tol);
    printf("  %s %-6s %-6s %s err %.2e\n", fold, cname, what, absolute ? "abs" : "rel", e);
    free(sub);
    free(g);
}

static void check_folder(const char *fold, mt_pool *pool, const clip *clips, int nclips) {
    char path[512];
    mt_err err = {0};
    snprintf(path, sizeof path, DIR "%s/golden/meta.json", fold);
    json_error_t je;
    json_t *meta = json_load_file(path, 0, &je);
    CHECK_MSG(meta != NULL, "%s: %s", path, je.text);
    if (!meta) return;
    snprintf(path, sizeof path, DIR "%s", fold);
    mt_config *cfg = NULL;
    mt_w2v *w = NULL;
    CHECK_OK(mt_config_load(&cfg, path, &err), &err);
    if (cfg) CHECK_OK(mt_w2v_load(&w, path, cfg, pool, &err), &err);
    mt_config_free(cfg);
    mt_asr *asr = NULL;
    CHECK_OK(mt_asr_load(&asr, path, pool, &err), &err);
    if (asr) CHECK_STR(mt_asr_family_of(asr)->name, "wav2vec2");
    if (!w || !asr) { mt_w2v_free(w); mt_asr_free(asr); json_decref(meta); return; }
    const mt_w2v_info *in = mt_w2v_info_of(w);
    CHECK_EQ_INT(in->ratio, json_integer_value(json_object_get(meta, "ratio")));
    size_t stride = (size_t)json_integer_value(json_object_get(meta, "feat_stride"));
    json_t *cases = json_object_get(meta, "cases");
    CHECK_EQ_INT(json_array_size(cases), nclips);
    for (int c = 0; c < nclips && c < (int)json_array_size(cases); c++) {
        json_t *jc = json_array_get(cases, (size_t)c);
        const clip *cl = &clips[c];
        CHECK_STR(json_string_value(json_object_get(jc, "name")), cl->name);
        CHECK_EQ_INT(json_integer_value(json_object_get(jc, "n")), cl->n);
        size_t T = mt_w2v_frames(w, cl->n), H = (size_t)in->hidden, V = (size_t)in->vocab, C = (size_t)in->conv_out;
        CHECK_EQ_INT(T, json_integer_value(json_object_get(jc, "frames")));
        float *f = malloc(cl->n * sizeof *f), *cv = malloc(T * C * sizeof *cv), *hid = malloc(T * H * sizeof *hid),
              *lg = malloc(T * V * sizeof *lg);
        mt_w2v_features(w, cl->x, cl->n, f);
        check_tensor("feat", fold, cl->name, f, cl->n, 1e-4, 1, stride);
        CHECK_OK(mt_w2v_forward(w, f, cl->n, cv, hid, lg, &err), &err);
        check_tensor("conv", fold, cl->name, cv, T * C, 1e-3, 0, 1);
        check_tensor("hidden", fold, cl->name, hid, T * H, 1e-3, 0, 1);
        check_tensor("logits", fold, cl->name, lg, T * V, 1e-3, 0, 1);
        /* greedy CTC ids: identical */
        int32_t *ids = malloc(3 * T * sizeof *ids);
        size_t k = mt_ctc_greedy(lg, T, V, in->blank, ids, ids + T, ids + 2 * T);
        json_t *jids = json_object_get(jc, "ids");
        int same = k == json_array_size(jids);
        for (size_t i = 0; same && i < k; i++) same = ids[i] == json_integer_value(json_array_get(jids, i));
        CHECK_MSG(same, "%s %s: CTC ids differ (%zu vs %zu)", fold, cl->name, k, json_array_size(jids));
        /* end to end: text, one segment, words */
        mt_asr_opts o = {0};
        o.word_timestamps = 1;
        mt_stt_result r;
        CHECK_OK(mt_asr_transcribe(asr, cl->x, cl->n, &o, &r, &err), &err);
        const char *gt = json_string_value(json_object_get(jc, "text"));
        CHECK_STR(r.text, gt);
        CHECK_EQ_INT(r.n_segs, 1);
        if (r.n_segs == 1) {
            mt_stt_segment *s = &r.segs[0];
            CHECK_STR(s->text, gt);
            CHECK(s->start == 0 && fabs(s->end - (double)cl->n / 16000) < 1e-12);
            json_t *jw = json_object_get(jc, "words");
            CHECK_EQ_INT(s->n_words, json_array_size(jw));
            for (size_t i = 0; i < s->n_words && i < json_array_size(jw); i++) {
                json_t *g = json_array_get(jw, i);
                CHECK(s->words[i].word && s->words[i].word[0] == ' ');
                CHECK_STR(s->words[i].word ? s->words[i].word + 1 : NULL, json_string_value(json_object_get(g, "word")));
                CHECK(fabs(s->words[i].start - json_real_value(json_object_get(g, "start"))) < 1e-9);
                CHECK(fabs(s->words[i].end - json_real_value(json_object_get(g, "end"))) < 1e-9);
                CHECK(s->words[i].probability > 0 && s->words[i].probability <= 1);
            }
        }
        printf("  %s %-6s %zu ids, text \"%.40s%s\"\n", fold, cl->name, k, r.text ? r.text : "",
               r.text && strlen(r.text) > 40 ? "..." : "");
        mt_stt_result_free(&r);
        free(ids);
        free(f);
        free(cv);
        free(hid);
        free(lg);
    }
    /* long audio in windows: transformers' ASR pipeline with chunk_length_s */
    snprintf(path, sizeof path, DIR "%s/golden/pipeline.json", fold);
    json_t *pj = json_load_file(path, 0, &je);
    if (!strcmp(fold, "w2v-base-q4")) {
        CHECK(pj == NULL);
    } else {
        CHECK_MSG(pj != NULL, "%s: %s", path, je.text);
    }
    if (pj) {
        mt_asr_opts o = {0};
        o.word_timestamps = 1;
        o.chunk_s = json_real_value(json_object_get(pj, "chunk_s"));
        mt_stt_result r;
        CHECK_OK(mt_asr_transcribe(asr, clips[2].x, clips[2].n, &o, &r, &err), &err);
        CHECK_STR(r.text, json_string_value(json_object_get(pj, "text")));
        json_t *jw = json_object_get(pj, "words");
        size_t nw = r.n_segs ? r.segs[0].n_words : 0;
        CHECK_EQ_INT(nw, json_array_size(jw));
        for (size_t i = 0; i < nw && i < json_array_size(jw); i++) {
            json_t *g = json_array_get(jw, i);
            CHECK_STR(r.segs[0].words[i].word ? r.segs[0].words[i].word + 1 : NULL,
                      json_string_value(json_object_get(g, "word")));
            CHECK(fabs(r.segs[0].words[i].start - json_real_value(json_object_get(g, "start"))) < 1e-9);
            CHECK(fabs(r.segs[0].words[i].end - json_real_value(json_object_get(g, "end"))) < 1e-9);
        }
        printf("  %s long in %.1f-s windows: %zu words, text \"%.40s...\"\n", fold, o.chunk_s, nw, r.text ? r.text : "");
        mt_stt_result_free(&r);
        /* the whole clip: the same text as transformers' pipeline without windows */
        o.chunk_s = 0;
        CHECK_OK(mt_asr_transcribe(asr, clips[2].x, clips[2].n, &o, &r, &err), &err);
        CHECK_STR(r.text, json_string_value(json_object_get(pj, "whole_text")));
        mt_stt_result_free(&r);
        json_decref(pj);
    }
    /* without word timestamps: no words; translate is refused */
    mt_asr_opts o = {0};
    mt_stt_result r;
    CHECK_OK(mt_asr_transcribe(asr, clips[0].x, clips[0].n, &o, &r, &err), &err);
    CHECK(r.n_segs == 1 && r.segs[0].n_words == 0 && r.segs[0].words == NULL);
    mt_stt_result_free(&r);
    o.task = 1;
    CHECK(mt_asr_transcribe(asr, clips[0].x, clips[0].n, &o, &r, &err) == MT_EINVAL);
    mt_stt_result_free(&r);
    /* shorter than one frame: empty text, no failure */
    o.task = 0;
    CHECK_OK(mt_asr_transcribe(asr, clips[0].x, 100, &o, &r, &err), &err);
    CHECK_STR(r.text, "");
    mt_stt_result_free(&r);
    mt_w2v_free(w);
    mt_asr_free(asr);
    json_decref(meta);
}

/* ---- the loader's errors ---- */

static int write_text(const char *dir, const char *name, const char *text) {
    char *p = mt_path_join(dir, name);
    FILE *f = fopen(p, "w");
    free(p);
    if (!f) return -1;
    fputs(text, f);
    return fclose(f);
}

static char *read_text(const char *path) {
    char *buf = NULL;
    size_t len = 0;
    mt_err err = {0};
    if (mt_read_file(path, &buf, &len, &err)) return NULL;
    return buf;
}

/* load dir, expect failure rc with every needle in the one-line message */
static void expect_fail(const char *dir, int rc_want, const char *n1, const char *n2, mt_pool *pool) {
    mt_asr *a = NULL;
    mt_err err = {0};
    int rc = mt_asr_load(&a, dir, pool, &err);
    CHECK_MSG(rc == rc_want && a == NULL, "rc %d (want %d): %s", rc, rc_want, err.msg);
    CHECK_MSG(strstr(err.msg, n1) != NULL, "'%s' not in \"%s\"", n1, err.msg);
    if (n2) CHECK_MSG(strstr(err.msg, n2) != NULL, "'%s' not in \"%s\"", n2, err.msg);
    CHECK(strchr(err.msg, '\n') == NULL);
    mt_asr_free(a);
}

/* config.json of src with `from` replaced by `to` */
static void with_config(const char *src, const char *from, const char *to, int rc_want, const char *n1,
                        const char *n2, mt_pool *pool) {
    static const char *const skip[] = {"config.json", NULL};
    char *d = fixture_copy(src, "w2v_cfg", skip);
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", src);
    char *cfg = read_text(p);
    CHECK(d && cfg);
    if (!d || !cfg) { fixture_copy_free(d); free(cfg); return; }
    char *at = strstr(cfg, from);
    CHECK_MSG(at != NULL, "'%s' not in %s", from, p);
    if (at) {
        size_t fl = strlen(from), tl = strlen(to), n = strlen(cfg);
        char *nc = malloc(n - fl + tl + 1);
        memcpy(nc, cfg, (size_t)(at - cfg));
        memcpy(nc + (at - cfg), to, tl);
        strcpy(nc + (at - cfg) + tl, at + fl);
        write_text(d, "config.json", nc);
        free(nc);
        expect_fail(d, rc_want, n1, n2, pool);
    }
    free(cfg);
    fixture_copy_free(d);
}

static void check_errors(mt_pool *pool) {
    const char *src = DIR "w2v-base";
    with_config(src, "\"hidden_size\": 64", "\"hidden_size\": 63", MT_EFORMAT, "config.json", "hidden_size 63", pool);
    with_config(src, "\"conv_stride\": [", "\"conv_stride\": [\"x\", ", MT_EFORMAT, "config.json", "conv_stride",
                pool);
    with_config(src, "\"num_feat_extract_layers\": 7", "\"num_feat_extract_layers\": 9", MT_EFORMAT, "config.json",
                "conv_dim", pool);
    with_config(src, "\"feat_extract_norm\": \"group\"", "\"feat_extract_norm\": \"batch\"", MT_EFORMAT,
                "config.json", "feat_extract_norm", pool);
    with_config(src, "\"hidden_act\": \"gelu\"", "\"hidden_act\": \"relu\"", MT_EUNSUPPORTED, "config.json", "relu",
                pool);
    with_config(src, "\"vocab_size\": 32", "\"vocab_size\": 33", MT_EFORMAT, "model.safetensors", "lm_head", pool);
    with_config(src, "\"num_conv_pos_embeddings\": 16", "\"num_conv_pos_embeddings\": 8", MT_EFORMAT,
                "model.safetensors", "pos_conv_embed", pool);
    with_config(src, "\"hidden_size\": 64", "\"hidden_size\": 64, \"adapter_attn_dim\": 16", MT_EUNSUPPORTED,
                "config.json", "adapter_attn_dim", pool);
    /* weights without a tensor the model needs */
    static const char *const skip_w[] = {"model.safetensors", NULL};
    char *d = fixture_copy(src, "w2v_st", skip_w);
    CHECK(d != NULL);
    if (d) {
        static const char st[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        char *p = mt_path_join(d, "model.safetensors");
        FILE *f = fopen(p, "wb");
        uint64_t hl = sizeof st - 1;
        float z = 0;
        fwrite(&hl, 8, 1, f);
        fwrite(st, 1, hl, f);
        fwrite(&z, 4, 1, f);
        fclose(f);
        free(p);
        expect_fail(d, MT_ENOTFOUND, "model.safetensors", "conv_layers.0.conv.weight", pool);
        fixture_copy_free(d);
    }
    /* a broken vocab.json, then none */
    static const char *const skip_v[] = {"vocab.json", NULL};
    d = fixture_copy(src, "w2v_voc", skip_v);
    CHECK(d != NULL);
    if (d) {
        write_text(d, "vocab.json", "{\"<pad>\": 0, \"a\": ");
        expect_fail(d, MT_ENOTFOUND, "vocab.json", NULL, pool);
        write_text(d, "vocab.json", "{\"<pad>\": -3}");
        expect_fail(d, MT_EFORMAT, "vocab.json", "<pad>", pool);
        write_text(d, "vocab.json", "{\"a\": 0, \"<pad>\": 40}");
        expect_fail(d, MT_EFORMAT, "vocab.json", "vocab_size", pool);
        char *p = mt_path_join(d, "vocab.json");
        unlink(p);
        free(p);
        expect_fail(d, MT_ENOTFOUND, "vocab.json", NULL, pool);
        fixture_copy_free(d);
    }
}

/* test_stt_wav2vec2 --time DIR FILE [THREADS]: one timed transcription for
 * bench/stt/wav2vec2.sh until mlx-stt runs these folders; prints one JSON
 * line (load_s, wall_s: transcription after loading, audio_s, text). */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int time_one(const char *dir, const char *file, int threads) {
    mt_pool *pool = NULL;
    mt_err err = {0};
    mt_audio a = {0};
    mt_asr *asr = NULL;
    mt_stt_result r = {0};
    double t0 = now_s(), t1 = 0, t2 = 0;
    mt_blas_threads(1);
    int rc = mt_pool_new(&pool, threads, &err);
    if (!rc) rc = mt_asr_load(&asr, dir, pool, &err);
    t1 = now_s();
    if (!rc) rc = mt_audio_load(&a, file, 16000, &err);
    double t_audio = now_s() - t1;
    mt_asr_opts o = {0};
    if (!rc) {
        t1 = now_s();
        rc = mt_asr_transcribe(asr, a.pcm, a.n, &o, &r, &err);
        t2 = now_s();
    }
    if (rc) {
        fprintf(stderr, "test_stt_wav2vec2 --time: %s\n", err.msg);
    } else {
        json_t *j = json_pack("{s:f, s:f, s:f, s:f, s:s}", "load_s", t1 - t0 - t_audio, "decode_audio_s", t_audio,
                              "wall_s", t2 - t1, "audio_s", (double)a.n / 16000, "text", r.text);
        char *s = json_dumps(j, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(j);
    }
    mt_stt_result_free(&r);
    mt_asr_free(asr);
    mt_audio_clear(&a);
    mt_pool_free(pool);
    return rc ? 1 : 0;
}

int main(int argc, char **argv) {
    if (argc >= 4 && !strcmp(argv[1], "--time")) return time_one(argv[2], argv[3], argc > 4 ? atoi(argv[4]) : 2);
    mt_pool *pool = NULL;
    mt_err err = {0};
    CHECK_OK(mt_pool_new(&pool, 2, &err), &err);
    clip clips[3];
    if (make_clips(clips)) return check_report("stt_wav2vec2");
    const char *folders[] = {"w2v-base", "w2v-stable", "w2v-base-q4", "hubert"};
    for (size_t i = 0; i < sizeof folders / sizeof *folders; i++) {
        printf("%s\n", folders[i]);
        check_folder(folders[i], pool, clips, 3);
    }
    /* the registry: both model types are this family's */
    const mt_asr_family *fam = NULL;
    CHECK_OK(mt_asr_detect(DIR "hubert", &fam, &err), &err);
    CHECK(fam && !strcmp(fam->name, "wav2vec2"));
    check_errors(pool);
    for (int i = 0; i < 3; i++) free(clips[i].x);
    mt_pool_free(pool);
    return check_report("stt_wav2vec2");
}
