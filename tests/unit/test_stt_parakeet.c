/* test_stt_parakeet.c - the Parakeet family against mlx-audio 0.6.2 goldens
 * (tests/gen/gen_stt_parakeet.py): features, encoder output, greedy token ids
 * and times, text and sentences of the tiny random TDT, RNN-T, CTC and
 * 4-bit TDT folders on speech, noise and a long clip decoded in overlapping
 * chunks; the registry (model_type and the claim of a NeMo config without
 * one); errors of broken folders. */
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "golden_f32.h"
#include "audio/audio.h"
#include "audio/nemo_mel.h"
#include "core/file.h"
#include "core/pool.h"
#include "io/config.h"
#include "models/parakeet.h"
#include "stt/asr.h"
#include "stt/parakeet_asr.h"

#define DIR "tests/data/stt/parakeet/"

static json_t *read_json(const char *path) {
    char *buf = NULL;
    size_t len = 0;
    mt_err err = {0};
    if (mt_read_file(path, &buf, &len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(buf, len, 0, &je);
    free(buf);
    return j;
}

typedef struct clips {
    mt_audio speech, noise, shrt;
    float *lng;
    size_t n_lng;
} clips;

static int load_clips(clips *c) {
    mt_err err = {0};
    memset(c, 0, sizeof *c);
    if (mt_audio_load(&c->speech, DIR "audio/speech.wav", 16000, &err) ||
        mt_audio_load(&c->noise, DIR "audio/noise.wav", 16000, &err) ||
        mt_audio_load(&c->shrt, "tests/data/audio/speech_s16_mono_16k.wav", 16000, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    /* long = speech + noise + short + speech, as the generator builds it */
    c->n_lng = 2 * c->speech.n + c->noise.n + c->shrt.n;
    c->lng = malloc(sizeof(float) * c->n_lng);
    float *p = c->lng;
    memcpy(p, c->speech.pcm, c->speech.n * sizeof(float));
    p += c->speech.n;
    memcpy(p, c->noise.pcm, c->noise.n * sizeof(float));
    p += c->noise.n;
    memcpy(p, c->shrt.pcm, c->shrt.n * sizeof(float));
    p += c->shrt.n;
    memcpy(p, c->speech.pcm, c->speech.n * sizeof(float));
    return 0;
}

static void free_clips(clips *c) {
    mt_audio_clear(&c->speech);
    mt_audio_clear(&c->noise);
    mt_audio_clear(&c->shrt);
    free(c->lng);
}

/* Tokens against the golden's sentences (ids and times). */
static void check_tokens(const char *tag, const mt_pk_token *t, size_t n, json_t *g) {
    json_t *ids = json_object_get(g, "ids");
    CHECK_MSG(n == json_array_size(ids), "%s: %zu tokens, golden %zu", tag, n, json_array_size(ids));
    size_t k = 0, bad = 0;
    json_t *sents = json_object_get(g, "sentences");
    for (size_t s = 0; s < json_array_size(sents); s++) {
        json_t *tk = json_object_get(json_array_get(sents, s), "tokens");
        for (size_t i = 0; i < json_array_size(tk) && k < n; i++, k++) {
            json_t *x = json_array_get(tk, i);
            if (t[k].id != json_integer_value(json_object_get(x, "id")) ||
                fabs(t[k].start - json_real_value(json_object_get(x, "start"))) > 1e-9 ||
                fabs(t[k].end - json_real_value(json_object_get(x, "end"))) > 1e-9 ||
                strcmp(t[k].text, json_string_value(json_object_get(x, "text")))) {
                if (!bad)
                    fprintf(stderr, "%s: token %zu: id %d [%g, %g] '%s', golden %lld [%g, %g] '%s'\n", tag, k,
                            t[k].id, t[k].start, t[k].end, t[k].text,
                            (long long)json_integer_value(json_object_get(x, "id")),
                            json_real_value(json_object_get(x, "start")), json_real_value(json_object_get(x, "end")),
                            json_string_value(json_object_get(x, "text")));
                bad++;
            }
        }
    }
    CHECK_MSG(bad == 0, "%s: %zu tokens differ", tag, bad);
}

static void check_result(const char *tag, const mt_stt_result *r, json_t *g, double dur) {
    CHECK_STR(r->text, json_string_value(json_object_get(g, "text")));
    json_t *sents = json_object_get(g, "sentences");
    CHECK_MSG(r->n_segs == json_array_size(sents), "%s: %zu segments, golden %zu", tag, r->n_segs,
              json_array_size(sents));
    CHECK(fabs(r->duration - dur) < 1e-9);
    for (size_t s = 0; s < r->n_segs && s < json_array_size(sents); s++) {
        json_t *x = json_array_get(sents, s);
        const mt_stt_segment *sg = &r->segs[s];
        CHECK_EQ_INT(sg->id, (long long)s);
        CHECK_STR(sg->text, json_string_value(json_object_get(x, "text")));
        CHECK(fabs(sg->start - json_real_value(json_object_get(x, "start"))) < 1e-9);
        CHECK(fabs(sg->end - json_real_value(json_object_get(x, "end"))) < 1e-9);
        json_t *tk = json_object_get(x, "tokens");
        CHECK_EQ_INT(sg->n_tokens, json_array_size(tk));
        size_t bad = 0;
        for (size_t i = 0; i < sg->n_tokens && i < json_array_size(tk); i++)
            if (sg->tokens[i] != json_integer_value(json_object_get(json_array_get(tk, i), "id"))) bad++;
        CHECK_MSG(bad == 0, "%s: sentence %zu: %zu token ids differ", tag, s, bad);
        /* words: their concatenation is the sentence, times within it */
        if (sg->n_words) {
            size_t len = 0;
            for (size_t w = 0; w < sg->n_words; w++) len += strlen(sg->words[w].word);
            char *cat = calloc(len + 1, 1);
            for (size_t w = 0; w < sg->n_words; w++) strcat(cat, sg->words[w].word);
            CHECK_STR(cat, sg->text);
            free(cat);
            CHECK(sg->words[0].start == sg->start);
            CHECK(sg->words[sg->n_words - 1].end <= sg->end + 1e-9);
        }
    }
}

static void check_folder(const char *name, const clips *c, mt_pool *pool, int float_dumps) {
    char dir[256], path[512];
    snprintf(dir, sizeof dir, DIR "%s", name);
    mt_err err = {0};
    mt_config *cfg = NULL;
    CHECK_OK(mt_config_load(&cfg, dir, &err), &err);
    mt_parakeet *m = NULL;
    CHECK_OK(mt_parakeet_load(&m, dir, cfg, pool, &err), &err);
    mt_config_free(cfg);
    if (!m) return;
    int expect_kind = !strcmp(name, "rnnt") ? MT_PK_RNNT : !strcmp(name, "ctc") ? MT_PK_CTC : MT_PK_TDT;
    CHECK_EQ_INT(mt_parakeet_kind(m), expect_kind);
    size_t nm = mt_parakeet_n_mels(m), d = mt_parakeet_d_model(m);
    struct { const char *clip; const float *a; size_t n; } cs[] = {
        {"speech", c->speech.pcm, c->speech.n}, {"noise", c->noise.pcm, c->noise.n}, {"short", c->shrt.pcm, c->shrt.n}};
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++) {
        char tag[128];
        snprintf(tag, sizeof tag, "%s/%s", name, cs[i].clip);
        float *feat = NULL, *enc = NULL;
        size_t T = 0, Tn = 0, ng = 0;
        CHECK_OK(mt_parakeet_features(m, cs[i].a, cs[i].n, &feat, &T, &err), &err);
        snprintf(path, sizeof path, DIR "tdt/golden/%s.feat.f32.zst", cs[i].clip);
        float *g = gold_read_f32(path, &ng);
        CHECK_MSG(g && ng == T * nm, "%s: %zu feature values, golden %zu", tag, T * nm, ng);
        if (g && ng == T * nm) {
            double e = max_abs(feat, g, ng);
            CHECK_MSG(e < 1e-4, "%s: features max abs err %.3g", tag, e);
        }
        free(g);
        CHECK_OK(mt_parakeet_encode(m, feat, T, &enc, &Tn, &err), &err);
        if (float_dumps) {
            snprintf(path, sizeof path, DIR "%s/golden/%s.enc.f32.zst", name, cs[i].clip);
            g = gold_read_f32(path, &ng);
            CHECK_MSG(g && ng == Tn * d, "%s: %zu encoder values, golden %zu", tag, Tn * d, ng);
            if (g && ng == Tn * d) {
                double e = rel_err(enc, g, ng);
                CHECK_MSG(e < 1e-3, "%s: encoder rel err %.3g", tag, e);
            }
            free(g);
        }
        mt_pk_token *t = NULL;
        size_t nt = 0;
        CHECK_OK(mt_parakeet_decode(m, enc, Tn, &t, &nt, &err), &err);
        snprintf(path, sizeof path, DIR "%s/golden/%s.json.zst", name, cs[i].clip);
        json_t *gj = read_json(path);
        CHECK_MSG(gj != NULL, "%s: no golden", path);
        if (gj) {
            check_tokens(tag, t, nt, gj);
            mt_stt_result r;
            CHECK_OK(mt_parakeet_result(t, nt, (double)cs[i].n / 16000, 1, &r, &err), &err);
            check_result(tag, &r, gj, (double)cs[i].n / 16000);
            mt_stt_result_free(&r);
        }
        json_decref(gj);
        free(t);
        free(feat);
        free(enc);
    }
    /* the long clip in 4-s chunks overlapping by 2 s: merged chunks may put
     * tokens out of time order, which the sentences then sort */
    char tag[128];
    snprintf(tag, sizeof tag, "%s/long", name);
    mt_pk_token *t = NULL;
    size_t nt = 0;
    CHECK_OK(mt_parakeet_tokens(m, c->lng, c->n_lng, 4.0, 2.0, NULL, NULL, &t, &nt, &err), &err);
    snprintf(path, sizeof path, DIR "%s/golden/long.json.zst", name);
    json_t *gj = read_json(path);
    CHECK(gj != NULL);
    if (gj) {
        CHECK_EQ_INT(nt, json_array_size(json_object_get(gj, "ids")));
        mt_stt_result r;
        CHECK_OK(mt_parakeet_result(t, nt, (double)c->n_lng / 16000, 0, &r, &err), &err);
        check_result(tag, &r, gj, (double)c->n_lng / 16000);
        mt_stt_result_free(&r);
    }
    free(t);
    json_decref(gj);
    mt_parakeet_free(m);
}

static int n_progress;
static void on_progress(void *user, double pos, double total) {
    (void)user;
    if (pos <= total) n_progress++;
}

/* The registry: detection and the full transcription through mt_asr_*. */
static void check_registry(const clips *c, mt_pool *pool) {
    mt_err err = {0};
    const char *names[] = {"tdt", "rnnt", "ctc", "tdt-q4"};
    for (size_t i = 0; i < 4; i++) {
        char dir[256], path[512];
        snprintf(dir, sizeof dir, DIR "%s", names[i]);
        const mt_asr_family *f = NULL;
        CHECK_OK(mt_asr_detect(dir, &f, &err), &err);
        CHECK_MSG(f == &mt_asr_parakeet, "%s: family %s", dir, f ? f->name : "(none)");
        mt_asr *a = NULL;
        CHECK_OK(mt_asr_load(&a, dir, pool, &err), &err);
        if (!a) continue;
        mt_asr_opts o = {0};
        o.word_timestamps = 1;
        o.progress = on_progress;
        mt_stt_result r;
        n_progress = 0;
        CHECK_OK(mt_asr_transcribe(a, c->speech.pcm, c->speech.n, &o, &r, &err), &err);
        CHECK(n_progress == 2);
        snprintf(path, sizeof path, DIR "%s/golden/speech.json.zst", names[i]);
        json_t *gj = read_json(path);
        if (gj) check_result(dir, &r, gj, (double)c->speech.n / 16000);
        CHECK(r.n_segs > 0 && r.segs[0].n_words > 0);
        json_decref(gj);
        mt_stt_result_free(&r);
        /* long audio in chunks of 4 s (2-s overlap) */
        o.chunk_s = 4.0;
        o.word_timestamps = 0;
        n_progress = 0;
        CHECK_OK(mt_asr_transcribe(a, c->lng, c->n_lng, &o, &r, &err), &err);
        CHECK(n_progress > 3);
        snprintf(path, sizeof path, DIR "%s/golden/long.json.zst", names[i]);
        gj = read_json(path);
        if (gj) check_result(dir, &r, gj, (double)c->n_lng / 16000);
        CHECK(r.n_segs > 0 && r.segs[0].n_words == 0);
        json_decref(gj);
        mt_stt_result_free(&r);
        /* no audio, and less than one hop of it */
        o.chunk_s = 0;
        CHECK_OK(mt_asr_transcribe(a, c->speech.pcm, 0, &o, &r, &err), &err);
        CHECK(r.text && r.text[0] == 0 && r.n_segs == 0);
        mt_stt_result_free(&r);
        CHECK_OK(mt_asr_transcribe(a, c->speech.pcm + 8000, 100, &o, &r, &err), &err);
        CHECK(r.text != NULL);
        mt_stt_result_free(&r);
        /* translate is refused */
        o.task = 1;
        CHECK(mt_asr_transcribe(a, c->speech.pcm, c->speech.n, &o, &r, &err) == MT_EINVAL);
        mt_stt_result_free(&r);
        mt_asr_free(a);
    }
}

/* ---- broken folders ---- */

static char tmpdir[256];

/* A copy of tdt's config with edit applied (a json_t transform), weights
 * linked or replaced by bytes. */
static int make_case(const char *label, void (*edit)(json_t *), const char *weights_bytes, size_t wlen,
                     mt_err *err, char *dirout) {
    snprintf(dirout, 512, "%s/%s", tmpdir, label);
    mkdir(dirout, 0755);
    json_error_t je;
    json_t *cfg = json_load_file(DIR "tdt/config.json", 0, &je);
    if (!cfg) return -1;
    if (edit) edit(cfg);
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dirout);
    json_dump_file(cfg, path, 0);
    json_decref(cfg);
    snprintf(path, sizeof path, "%s/model.safetensors", dirout);
    unlink(path);
    if (weights_bytes) {
        FILE *f = fopen(path, "wb");
        if (f) {
            fwrite(weights_bytes, 1, wlen, f);
            fclose(f);
        }
    } else {
        char real[PATH_MAX];
        if (!realpath(DIR "tdt/model.safetensors", real) || symlink(real, path)) return -1;
    }
    mt_asr *a = NULL;
    int rc = mt_asr_load(&a, dirout, NULL, err);
    mt_asr_free(a);
    return rc;
}

static void ed_layers(json_t *c) { json_object_set_new(json_object_get(c, "encoder"), "n_layers", json_integer(3)); }
static void ed_dmodel(json_t *c) { json_object_set_new(json_object_get(c, "encoder"), "d_model", json_integer(96)); }
static void ed_target(json_t *c) { json_object_set_new(c, "target", json_string("nemo.collections.asr.models.Foo")); }
static void ed_nofeat(json_t *c) { json_object_del(json_object_get(c, "preprocessor"), "features"); }
static void ed_heads(json_t *c) { json_object_set_new(json_object_get(c, "encoder"), "n_heads", json_integer(0)); }
static void ed_durs(json_t *c) {
    json_object_set_new(json_object_get(c, "decoding"), "durations", json_pack("[i,i]", 0, 1));
}
static void ed_vocab(json_t *c) { json_object_set_new(json_object_get(c, "joint"), "vocabulary", json_string("x")); }
static void ed_notype(json_t *c) { json_object_del(c, "model_type"); }
static void ed_sub(json_t *c) {
    json_object_set_new(json_object_get(c, "encoder"), "subsampling", json_string("striding"));
}
static void ed_redux(json_t *c) { json_object_set_new(c, "ternary_modules", json_pack("[s]", "x")); }

static void check_errors(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_stt_parakeet.%d", (int)getpid());
    mkdir(tmpdir, 0755);
    char d[512];
    mt_err err = {0};
    CHECK(make_case("layers", ed_layers, NULL, 0, &err, d) == MT_ENOTFOUND);
    CHECK_MSG(strstr(err.msg, "model.safetensors") && strstr(err.msg, "encoder.layers.2."), "%s", err.msg);
    CHECK(make_case("dmodel", ed_dmodel, NULL, 0, &err, d) != MT_OK);
    CHECK_MSG(strstr(err.msg, "model.safetensors") && strstr(err.msg, "expected 96"), "%s", err.msg);
    CHECK(make_case("target", ed_target, NULL, 0, &err, d) == MT_EUNSUPPORTED);
    CHECK_MSG(strstr(err.msg, "config.json") && strstr(err.msg, "target"), "%s", err.msg);
    CHECK(make_case("nofeat", ed_nofeat, NULL, 0, &err, d) == MT_EFORMAT);
    CHECK_MSG(strstr(err.msg, "config.json") && strstr(err.msg, "features"), "%s", err.msg);
    CHECK(make_case("heads", ed_heads, NULL, 0, &err, d) == MT_EFORMAT);
    CHECK_MSG(strstr(err.msg, "n_heads"), "%s", err.msg);
    CHECK(make_case("durs", ed_durs, NULL, 0, &err, d) == MT_EFORMAT);
    CHECK_MSG(strstr(err.msg, "durations"), "%s", err.msg);
    CHECK(make_case("vocab", ed_vocab, NULL, 0, &err, d) == MT_EFORMAT);
    CHECK_MSG(strstr(err.msg, "vocabulary"), "%s", err.msg);
    CHECK(make_case("sub", ed_sub, NULL, 0, &err, d) == MT_EUNSUPPORTED);
    CHECK(make_case("redux", ed_redux, NULL, 0, &err, d) == MT_EUNSUPPORTED);
    CHECK(make_case("garbage", NULL, "not a safetensors file", 22, &err, d) != MT_OK);
    CHECK_MSG(strstr(err.msg, "model.safetensors") != NULL, "%s", err.msg);
    CHECK(make_case("empty", NULL, "", 0, &err, d) != MT_OK);
    /* no model_type: claimed by the NeMo structure */
    CHECK_OK(make_case("notype", ed_notype, NULL, 0, &err, d), &err);
    const mt_asr_family *f = NULL;
    CHECK_OK(mt_asr_detect(d, &f, &err), &err);
    CHECK(f == &mt_asr_parakeet);
    /* a config without the NeMo structure is not claimed */
    mt_config *c = NULL;
    CHECK_OK(mt_config_parse(&c, "{\"encoder\": {}}", 15, "x", &err), &err);
    CHECK(c && !mt_asr_parakeet.claims(c));
    mt_config_free(c);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    CHECK(system(cmd) == 0);
}

/* Merging chunk tokens: disjoint, the midpoint cut, and a contiguous match. */
static void check_merge(void) {
    mt_err err = {0};
    mt_pk_token a[4] = {{1, "a", 0.0, 0.5, 0.5}, {2, "b", 1.0, 0.5, 1.5}, {3, "c", 2.0, 0.5, 2.5},
                        {4, "d", 3.0, 0.5, 3.5}};
    mt_pk_token b[3] = {{3, "c", 2.04, 0.5, 2.54}, {4, "d", 3.0, 0.5, 3.5}, {5, "e", 4.0, 0.5, 4.5}};
    mt_pk_token *o = NULL;
    size_t n = 0;
    CHECK_OK(mt_parakeet_merge(a, 4, b, 3, 2.0, &o, &n, &err), &err);
    CHECK_EQ_INT(n, 5);
    if (n == 5) {
        CHECK(o[2].start == 2.0 && o[3].id == 4 && o[4].id == 5);
    }
    free(o);
    mt_pk_token c2[1] = {{9, "z", 5.0, 0.5, 5.5}};
    CHECK_OK(mt_parakeet_merge(a, 4, c2, 1, 2.0, &o, &n, &err), &err);
    CHECK_EQ_INT(n, 5);
    free(o);
    CHECK_OK(mt_parakeet_merge(NULL, 0, c2, 1, 2.0, &o, &n, &err), &err);
    CHECK_EQ_INT(n, 1);
    free(o);
}

/* The feature extractor under other preprocessor settings. */
static void check_mel_variants(const clips *c) {
    json_error_t je;
    json_t *vs = json_load_file(DIR "mel/variants.json", 0, &je);
    CHECK_MSG(vs != NULL, "variants.json: %s", je.text);
    const char *name;
    json_t *v;
    json_object_foreach(vs, name, v) {
        mt_nemo_mel_cfg mc;
        memset(&mc, 0, sizeof mc);
        mc.sample_rate = (int)json_integer_value(json_object_get(v, "sample_rate"));
        mc.window_size = json_number_value(json_object_get(v, "window_size"));
        mc.window_stride = json_number_value(json_object_get(v, "window_stride"));
        mc.n_fft = (int)json_integer_value(json_object_get(v, "n_fft"));
        mc.features = (int)json_integer_value(json_object_get(v, "features"));
        snprintf(mc.window, sizeof mc.window, "%s", json_string_value(json_object_get(v, "window")));
        mc.per_feature = !strcmp(json_string_value(json_object_get(v, "normalize")), "per_feature");
        json_t *x = json_object_get(v, "preemph");
        mc.preemph = x ? json_number_value(x) : 0.97;
        x = json_object_get(v, "log_zero_guard_value");
        mc.log_guard = x ? json_number_value(x) : ldexp(1.0, -24);
        mc.pad_to = (long)json_integer_value(json_object_get(v, "pad_to"));
        mc.pad_value = json_number_value(json_object_get(v, "pad_value"));
        mt_err err = {0};
        mt_nemo_mel *m = NULL;
        CHECK_OK(mt_nemo_mel_new(&m, &mc, &err), &err);
        if (!m) continue;
        float *f = NULL;
        size_t T = 0, ng = 0;
        CHECK_OK(mt_nemo_mel_compute(m, c->shrt.pcm, c->shrt.n, &f, &T, &err), &err);
        char path[512];
        snprintf(path, sizeof path, DIR "mel/%s.f32.zst", name);
        float *g = gold_read_f32(path, &ng);
        CHECK_MSG(g && f && ng == T * (size_t)mc.features, "%s: %zu values, golden %zu", name,
                  T * (size_t)mc.features, ng);
        if (g && f && ng == T * (size_t)mc.features) {
            double e = max_abs(f, g, ng);
            CHECK_MSG(e < 1e-4, "%s: features max abs err %.3g", name, e);
        }
        free(g);
        free(f);
        mt_nemo_mel_free(m);
    }
    json_decref(vs);
    /* bad settings */
    mt_nemo_mel_cfg bad = {16000, 0.05, 0.01, 512, 80, "hann", 1, 0.97, 1e-5, 0, 0};
    mt_err err = {0};
    mt_nemo_mel *m = NULL;
    CHECK(mt_nemo_mel_new(&m, &bad, &err) == MT_EINVAL && !m);   /* 800-sample window > n_fft 512 */
    bad.window_size = 0.025;
    bad.features = 300;
    CHECK(mt_nemo_mel_new(&m, &bad, &err) == MT_EINVAL && !m);
}

int main(void) {
    mt_err err = {0};
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &err), &err);
    clips c;
    CHECK(load_clips(&c) == 0);
    check_mel_variants(&c);
    check_folder("tdt", &c, pool, 1);
    check_folder("rnnt", &c, pool, 1);
    check_folder("ctc", &c, pool, 1);
    check_folder("tdt-q4", &c, NULL, 0);
    check_registry(&c, pool);
    check_merge();
    check_errors();
    free_clips(&c);
    mt_pool_free(pool);
    return check_report("stt_parakeet");
}
