/* test_stt_qwen3_asr.c - Qwen3-ASR (lib/models/qwen3_asr.c) against goldens from mlx-audio
 * 0.6.2 (tests/gen/gen_stt_qwen3_asr.py): the chunking of long audio, features, encoder
 * output, prompt ids, first-step logits, greedy ids per chunk and the final text / language /
 * segments through stt/asr.h, for the float32 and 4-bit tiny folders; the language prefix
 * parser; the error paths of the loader. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "golden_f32.h"
#include "core/file.h"
#include "core/pool.h"
#include "models/qwen3_asr.h"
#include "stt/asr.h"

#define DIR "tests/data/stt/qwen3_asr/"

static void *read_all(const char *path, size_t *len) {
    char *buf = NULL;
    mt_err err = {0};
    if (mt_read_file(path, &buf, len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    return buf;
}

static float *read_f32(const char *rel, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, DIR "%s", rel);
    return gold_read_f32(path, n);
}

static float *read_clip(const char *rel, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, DIR "%s", rel);
    size_t len = 0;
    char *b = read_all(path, &len);
    if (!b) return NULL;
    *n = len / 2;
    float *f = malloc((*n ? *n : 1) * sizeof *f);
    for (size_t i = 0; i < *n; i++) {
        int16_t v;
        memcpy(&v, b + 2 * i, 2);
        f[i] = (float)v / 32768.0f;
    }
    free(b);
    return f;
}

static const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static long long jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static void check_case(json_t *c, mt_qwen3_asr *q, mt_asr *a) {
    mt_err err = {0};
    const char *name = jstr(c, "name"), *model = jstr(c, "model");
    const char *lang = jstr(c, "language_opt");
    double chunk_s = json_number_value(json_object_get(c, "chunk_duration"));
    int max_tokens = (int)jint(c, "max_tokens");
    size_t n = 0;
    float *audio = read_clip(jstr(c, "clip"), &n);
    CHECK_MSG(audio && n == (size_t)jint(c, "n_samples"), "%s/%s: clip", model, name);
    if (!audio) return;
    int nm = 0, H = 0, V = 0;
    mt_qwen3_asr_dims(q, &nm, &H, &V);

    /* chunks */
    size_t *st = NULL, nc = 0;
    CHECK_OK(mt_qwen3_asr_split(audio, n, chunk_s, &st, &nc, &err), &err);
    json_t *jc = json_object_get(c, "chunks");
    CHECK_MSG(nc == json_array_size(jc), "%s/%s: %zu chunks, golden %zu", model, name, nc, json_array_size(jc));
    for (size_t k = 0; k < nc && k < json_array_size(jc); k++) {
        double off = json_number_value(json_array_get(json_array_get(jc, k), 0));
        size_t len = (size_t)json_integer_value(json_array_get(json_array_get(jc, k), 1));
        size_t mine = st[k + 1] - st[k];
        if (mine < 16000) mine = 16000;
        CHECK_MSG(fabs(off - (double)st[k] / 16000.0) < 1e-9 && mine == len, "%s/%s chunk %zu: %zu+%zu vs %.6f+%zu",
                  model, name, k, st[k], mine, off, len);
    }
    /* first chunk, padded to 1 s as the reference pads it */
    size_t l0 = st[1] - st[0], p0 = l0 < 16000 ? 16000 : l0;
    float *c0 = calloc(p0, sizeof *c0);
    memcpy(c0, audio, l0 * sizeof *c0);

    /* features */
    float *mel = NULL;
    size_t T = 0, ng = 0;
    CHECK_OK(mt_qwen3_asr_features(q, c0, p0, &mel, &T, &err), &err);
    json_t *fs = json_object_get(c, "feat_shape");
    float *g = read_f32(jstr(c, "feat"), &ng);
    CHECK_EQ_INT(nm, json_integer_value(json_array_get(fs, 0)));
    CHECK_EQ_INT(T, json_integer_value(json_array_get(fs, 1)));
    if (mel && g && ng == (size_t)nm * T) {
        double e = max_abs(mel, g, ng);
        CHECK_MSG(e < 1e-4, "%s/%s: features max |diff| %.3g", model, name, e);
        if (getenv("TEST_VERBOSE")) fprintf(stderr, "%s/%s: features max |diff| %.3g\n", model, name, e);
    } else {
        CHECK_MSG(0, "%s/%s: feature sizes", model, name);
    }
    free(g);

    /* encoder */
    float *enc = NULL;
    size_t N = 0;
    CHECK_OK(mt_qwen3_asr_encode(q, g && mel ? mel : mel, T, &enc, &N, &err), &err);
    json_t *es = json_object_get(c, "enc_shape");
    CHECK_EQ_INT(N, json_integer_value(json_array_get(es, 0)));
    CHECK_EQ_INT(N, mt_qwen3_asr_audio_rows(T));
    g = read_f32(jstr(c, "enc"), &ng);
    if (enc && g && ng == N * (size_t)H) {
        double e = rel_err(enc, g, ng);
        CHECK_MSG(e < 1e-3, "%s/%s: encoder rel err %.3g", model, name, e);
        if (getenv("TEST_VERBOSE")) fprintf(stderr, "%s/%s: encoder rel err %.3g\n", model, name, e);
    } else {
        CHECK_MSG(0, "%s/%s: encoder sizes", model, name);
    }
    free(g);

    /* prompt */
    int32_t *pid = NULL;
    size_t np = 0;
    CHECK_OK(mt_qwen3_asr_prompt(q, N, lang, &pid, &np, &err), &err);
    json_t *jp = json_object_get(c, "prompt_ids");
    int same = np == json_array_size(jp);
    for (size_t i = 0; same && i < np; i++) same = pid[i] == json_integer_value(json_array_get(jp, i));
    CHECK_MSG(same, "%s/%s: prompt ids differ (%zu vs %zu)", model, name, np, json_array_size(jp));
    free(pid);

    /* greedy ids per chunk (one budget for all), first-step logits of the first */
    json_t *ji = json_object_get(c, "ids");
    int32_t *ids = malloc((size_t)max_tokens * sizeof *ids);
    float *lg = malloc((size_t)V * sizeof *lg);
    long remaining = max_tokens;
    size_t k = 0;
    for (; k < nc && remaining > 0; k++) {
        size_t len = st[k + 1] - st[k], pl = len < 16000 ? 16000 : len;
        float *x = calloc(pl, sizeof *x);
        memcpy(x, audio + st[k], len * sizeof *x);
        size_t nid = 0;
        CHECK_OK(mt_qwen3_asr_decode_chunk(q, x, pl, lang, (int)remaining, ids, &nid, k ? NULL : lg, &err), &err);
        free(x);
        json_t *want = json_array_get(ji, k);
        int eq = nid == json_array_size(want);
        for (size_t i = 0; eq && i < nid; i++) eq = ids[i] == json_integer_value(json_array_get(want, i));
        CHECK_MSG(eq, "%s/%s chunk %zu: greedy ids differ (%zu vs %zu)", model, name, k, nid, json_array_size(want));
        if (!eq) {
            fprintf(stderr, "  ours:");
            for (size_t i = 0; i < nid; i++) fprintf(stderr, " %d", ids[i]);
            fprintf(stderr, "\n");
        }
        if (!k) {
            g = read_f32(jstr(c, "logits"), &ng);
            if (g && ng == (size_t)V) {
                double e = rel_err(lg, g, ng);
                CHECK_MSG(e < 1e-3, "%s/%s: first-step logits rel err %.3g", model, name, e);
                if (getenv("TEST_VERBOSE")) fprintf(stderr, "%s/%s: logits rel err %.3g\n", model, name, e);
            } else {
                CHECK_MSG(0, "%s/%s: logits size", model, name);
            }
            free(g);
        }
        remaining -= (long)nid;
    }
    CHECK_MSG(k == json_array_size(ji), "%s/%s: %zu chunks decoded, golden %zu", model, name, k, json_array_size(ji));
    free(ids);
    free(lg);

    /* the whole transcription through stt/asr.h */
    mt_asr_opts o = {.language = lang, .chunk_s = chunk_s, .max_tokens = max_tokens};
    mt_stt_result r;
    CHECK_OK(mt_asr_transcribe(a, audio, n, &o, &r, &err), &err);
    CHECK_STR(r.text, jstr(c, "text"));
    json_t *jl = json_object_get(c, "language");
    CHECK_STR(r.language, json_string_value(json_array_get(jl, 0)));
    CHECK_MSG(fabs(r.duration - (double)n / 16000.0) < 1e-12, "duration %g", r.duration);
    json_t *js = json_object_get(c, "segments");
    CHECK_EQ_INT(r.n_segs, json_array_size(js));
    for (size_t i = 0; i < r.n_segs && i < json_array_size(js); i++) {
        json_t *s = json_array_get(js, i);
        CHECK_EQ_INT(r.segs[i].id, i);
        CHECK_STR(r.segs[i].text, jstr(s, "text"));
        CHECK_MSG(fabs(r.segs[i].start - json_number_value(json_object_get(s, "start"))) < 1e-9 &&
                      fabs(r.segs[i].end - json_number_value(json_object_get(s, "end"))) < 1e-9,
                  "%s/%s seg %zu: %g-%g", model, name, i, r.segs[i].start, r.segs[i].end);
    }
    mt_stt_result_free(&r);
    free(enc);
    free(mel);
    free(c0);
    free(st);
    free(audio);
}

static void check_language_split(void) {
    char l[16];
    const char *r = mt_qwen3_asr_split_language("language French<asr_text>Bonjour.", l, sizeof l);
    CHECK_STR(l, "French");
    CHECK_STR(r, "Bonjour.");
    r = mt_qwen3_asr_split_language("language  Chinese \t<asr_text>", l, sizeof l);
    CHECK_STR(l, "Chinese");
    CHECK_STR(r, "");
    r = mt_qwen3_asr_split_language("Hello <asr_text> there", l, sizeof l);
    CHECK_STR(l, "English");
    CHECK_STR(r, "Hello <asr_text> there");
    r = mt_qwen3_asr_split_language("language Portuguese-Brazilian-Long<asr_text>x", l, 8);
    CHECK_STR(l, "Portugu");
    CHECK_STR(r, "x");
    r = mt_qwen3_asr_split_language("language None", l, sizeof l);
    CHECK_STR(l, "English");
    CHECK_STR(r, "language None");
}

/* a copy of the float folder in a temporary directory with config.json replaced by cfg (NULL:
 * as is) and, when from is set, that string in model.safetensors' header replaced by to */
static int make_copy(char *tmp, const char *cfg, const char *from, const char *to) {
    snprintf(tmp, 64, "/tmp/qwen3asr-test-XXXXXX");
    if (!mkdtemp(tmp)) return -1;
    const char *files[] = {"tokenizer.json", "tokenizer_config.json", "preprocessor_config.json", "config.json",
                           "model.safetensors"};
    for (int i = 0; i < 5; i++) {
        char src[512], dst[512];
        snprintf(src, sizeof src, DIR "tiny/%s", files[i]);
        snprintf(dst, sizeof dst, "%s/%s", tmp, files[i]);
        size_t len = 0;
        char *b = read_all(src, &len);
        if (!b) return -1;
        if (i == 3 && cfg) {
            free(b);
            b = strdup(cfg);
            len = strlen(cfg);
        }
        if (i == 4 && from) {
            char *p = memmem(b, len, from, strlen(from));
            if (p) memcpy(p, to, strlen(to));
        }
        FILE *f = fopen(dst, "wb");
        fwrite(b, 1, len, f);
        fclose(f);
        free(b);
    }
    return 0;
}

static void rm_copy(const char *tmp) {
    const char *files[] = {"tokenizer.json", "tokenizer_config.json", "preprocessor_config.json", "config.json",
                           "model.safetensors"};
    for (int i = 0; i < 5; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/%s", tmp, files[i]);
        unlink(p);
    }
    rmdir(tmp);
}

static char *edited_config(const char *path, const char *key, json_t *val) {
    json_t *c = json_load_file(DIR "tiny/config.json", 0, NULL);
    json_t *o = c;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = strtok(buf, "."); s; s = strtok(NULL, ".")) o = json_object_get(o, s);
    json_object_set_new(o, key, val);
    char *t = json_dumps(c, 0);
    json_decref(c);
    return t;
}

static void expect_load_error(const char *what, const char *cfg, const char *from, const char *to, const char *needle) {
    char tmp[64];
    CHECK(make_copy(tmp, cfg, from, to) == 0);
    mt_err err = {0};
    mt_asr *a = NULL;
    int rc = mt_asr_load(&a, tmp, NULL, &err);
    CHECK_MSG(rc != 0 && a == NULL, "%s: loaded", what);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, needle);
    CHECK_MSG(strchr(err.msg, '\n') == NULL, "%s: message on more than one line", what);
    mt_asr_free(a);
    rm_copy(tmp);
}

static void check_errors(void) {
    mt_err err = {0};
    const mt_asr_family *f = NULL;
    CHECK_OK(mt_asr_detect(DIR "tiny", &f, &err), &err);
    CHECK(f == &mt_asr_qwen3_asr);
    mt_qwen3_asr *q = NULL;
    CHECK(mt_qwen3_asr_load(&q, DIR "no-such-model", NULL, &err) != 0 && q == NULL);
    expect_load_error("missing tensor", NULL, "audio_tower.proj2.bias\"", "audio_tower.proj2.biaz\"",
                      "audio_tower.proj2.bias");
    expect_load_error("missing layer", NULL, "model.layers.1.mlp.up_proj.weight\"", "model.layers.1.mlp.up_proj.weighx\"",
                      "model.layers.1.mlp.up_proj.weight");
    char *c = edited_config("thinker_config", "audio_config", json_string("x"));
    expect_load_error("audio_config not an object", c, NULL, NULL, "audio_config");
    free(c);
    c = edited_config("thinker_config.audio_config", "d_model", json_string("wide"));
    expect_load_error("d_model a string", c, NULL, NULL, "d_model");
    free(c);
    c = edited_config("thinker_config.audio_config", "downsample_hidden_size", json_integer(8));
    expect_load_error("conv width", c, NULL, NULL, "conv2d1.weight");
    free(c);
    c = edited_config("thinker_config.audio_config", "output_dim", json_integer(32));
    expect_load_error("output_dim", c, NULL, NULL, "proj2");
    free(c);
    c = edited_config("thinker_config.audio_config", "n_window_infer", json_integer(40));
    expect_load_error("n_window_infer", c, NULL, NULL, "n_window_infer");
    free(c);
    c = edited_config("thinker_config.text_config", "hidden_size", json_integer(-3));
    expect_load_error("text hidden", c, NULL, NULL, "hidden_size");
    free(c);
    c = edited_config("thinker_config", "audio_token_id", json_integer(100000));
    expect_load_error("audio_token_id", c, NULL, NULL, "audio_token_id");
    free(c);
    expect_load_error("config not JSON", "{\"model_type\": \"qwen3_asr\", ", NULL, NULL, "config.json");

    /* bad input at run time */
    CHECK_OK(mt_qwen3_asr_load(&q, DIR "tiny", NULL, &err), &err);
    if (q) {
        float *mel = NULL, *enc = NULL;
        size_t T = 0, N = 0;
        float z[100] = {0};
        CHECK(mt_qwen3_asr_features(q, z, 100, &mel, &T, &err) == MT_EINVAL && !mel);
        CHECK(mt_qwen3_asr_encode(q, z, 0, &enc, &N, &err) == MT_EINVAL && !enc);
        /* language codes become the names the prompt uses */
        int32_t *p1 = NULL, *p2 = NULL, *p3 = NULL;
        size_t n1 = 0, n2 = 0, n3 = 0;
        CHECK_OK(mt_qwen3_asr_prompt(q, 3, "en", &p1, &n1, &err), &err);
        CHECK_OK(mt_qwen3_asr_prompt(q, 3, "ENGLISH", &p2, &n2, &err), &err);
        CHECK_OK(mt_qwen3_asr_prompt(q, 3, NULL, &p3, &n3, &err), &err);
        CHECK(p1 && p2 && n1 == n2 && !memcmp(p1, p2, n1 * sizeof *p1) && n3 < n1);
        free(p1);
        free(p2);
        free(p3);
        size_t *st = NULL, nc = 0;
        CHECK(mt_qwen3_asr_split(z, 100, 0, &st, &nc, &err) == MT_EINVAL && !st);
        CHECK_OK(mt_qwen3_asr_split(z, 0, 1200, &st, &nc, &err), &err);
        CHECK(nc == 1 && st[0] == 0 && st[1] == 0);
        free(st);
        /* silence of 0.5 s: padded to 1 s, transcribed */
        mt_asr *a = NULL;
        CHECK_OK(mt_asr_load(&a, DIR "tiny", NULL, &err), &err);
        mt_asr_opts o = {.max_tokens = 4};
        mt_stt_result r;
        float *s = calloc(8000, sizeof *s);
        CHECK_OK(mt_asr_transcribe(a, s, 8000, &o, &r, &err), &err);
        CHECK(r.n_segs == 1 && r.text != NULL && fabs(r.segs[0].end - 0.5) < 1e-12);
        mt_stt_result_free(&r);
        o.task = 1;
        CHECK(mt_asr_transcribe(a, s, 8000, &o, &r, &err) == MT_EINVAL);
        mt_stt_result_free(&r);
        free(s);
        mt_asr_free(a);
        mt_qwen3_asr_free(q);
    }
}

int main(void) {
    mt_pool *pool = NULL;
    mt_err err = {0};
    CHECK_OK(mt_pool_new(&pool, 2, &err), &err);
    json_error_t je;
    json_t *meta = json_load_file(DIR "golden/goldens.json", 0, &je);
    CHECK_MSG(meta != NULL, "goldens.json: %s", je.text);
    const char *labels[] = {"f32", "q4"}, *dirs[] = {DIR "tiny", DIR "tiny-4bit"};
    for (int m = 0; m < 2 && meta; m++) {
        mt_qwen3_asr *q = NULL;
        mt_asr *a = NULL;
        CHECK_OK(mt_qwen3_asr_load(&q, dirs[m], pool, &err), &err);
        CHECK_OK(mt_asr_load(&a, dirs[m], pool, &err), &err);
        if (q && a) {
            json_t *cs = json_object_get(meta, "cases");
            for (size_t i = 0; i < json_array_size(cs); i++) {
                json_t *c = json_array_get(cs, i);
                if (!strcmp(jstr(c, "model"), labels[m])) check_case(c, q, a);
            }
        }
        mt_asr_free(a);
        mt_qwen3_asr_free(q);
    }
    json_decref(meta);
    check_language_split();
    check_errors();
    mt_pool_free(pool);
    return check_report("stt_qwen3_asr");
}
