/* test_stt_voxtral.c - Voxtral (models/voxtral.h, the mt_asr_voxtral family)
 * against goldens from mlx-audio 0.6.2 (tests/gen/gen_stt_voxtral.py) on the
 * tiny random-weight folders tests/data/stt/voxtral/tiny (float32) and tiny-q4
 * (mlx-audio's 4-bit convert): prompt ids, features, encoder and projector
 * outputs, first-step logits, greedy ids and text, the family's result; the
 * tekken tokenizer; and the error paths (missing tensor, bad config, missing
 * tekken.json, bad tekken.json). */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "golden_f32.h"
#include "fixture_copy.h"
#include "audio/audio.h"
#include "core/file.h"
#include "core/pool.h"
#include "models/voxtral.h"
#include "stt/asr.h"
#include "text/tekken.h"

#define DIR "tests/data/stt/voxtral/"

static float *read_f32(const char *name, size_t *n) {
    char path[512];
    if (!name) return NULL;   /* the case stores no such array */
    snprintf(path, sizeof path, DIR "%s", name);
    return gold_read_f32(path, n);
}

/* The clip of a golden case: a file, or the LCG noise / tiled speech the
 * generator made (mirrored here). */
static float *clip_audio(const json_t *gold, const json_t *c, size_t *n) {
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *file = json_string_value(json_object_get(c, "audio"));
    mt_err err = {0};
    mt_audio a = {0};
    if (file) {
        if (mt_audio_load(&a, file, 16000, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return NULL;
        }
        *n = a.n;
        return a.pcm;
    }
    if (!strcmp(name, "noise")) {
        json_t *nz = json_object_get(gold, "noise");
        size_t len = (size_t)json_integer_value(json_object_get(nz, "n"));
        uint32_t s = (uint32_t)json_integer_value(json_object_get(nz, "seed"));
        float *p = malloc(len * sizeof *p);
        for (size_t i = 0; p && i < len; i++) {
            s = (s * 1103515245u + 12345u) & 0x7FFFFFFFu;
            p[i] = (float)((int)((s >> 8) % 16001) - 8000) / 32768.0f;
        }
        *n = len;
        return p;
    }
    json_t *lg = json_object_get(gold, "long");
    size_t len = (size_t)json_integer_value(json_object_get(lg, "n"));
    if (mt_audio_load(&a, json_string_value(json_object_get(lg, "tile")), 16000, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    float *p = malloc(len * sizeof *p);
    for (size_t i = 0; p && i < len; i++) p[i] = a.pcm[i % a.n];
    free(a.pcm);
    *n = len;
    return p;
}

static void ids_from(const json_t *arr, int32_t **ids, size_t *n) {
    *n = json_array_size(arr);
    *ids = malloc((*n ? *n : 1) * sizeof **ids);
    for (size_t i = 0; i < *n; i++) (*ids)[i] = (int32_t)json_integer_value(json_array_get(arr, i));
}

/* VX_VERBOSE=1: print every measured error (for the report) */
static void note(const char *what, const char *name, double e) {
    if (getenv("VX_VERBOSE")) fprintf(stderr, "  %-10s %-28s %.3g\n", name, what, e);
}

static int same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (!na || !memcmp(a, b, na * sizeof *a));
}

/* Compare sampled arrays: full (stride 1) or every `st`-th element along an axis. */
static void check_case(mt_voxtral *v, const json_t *gold, const json_t *c, int full, mt_pool *pool) {
    (void)pool;
    const char *name = json_string_value(json_object_get(c, "name"));
    const mt_voxtral_info *in = mt_voxtral_info_of(v);
    mt_err err = {0};
    size_t n = 0;
    float *audio = clip_audio(gold, c, &n);
    CHECK_MSG(audio != NULL, "%s: audio", name);
    if (!audio) return;
    float *mel = NULL;
    size_t nc = 0;
    CHECK_OK(mt_voxtral_features(v, audio, n, &mel, &nc, &err), &err);
    CHECK_EQ_INT(nc, json_integer_value(json_object_get(c, "n_chunks")));
    size_t M = (size_t)in->n_mels, F = (size_t)in->n_frames, E = (size_t)in->enc_ctx, D = (size_t)in->enc_dim;
    size_t R = (size_t)in->rows_per_chunk, H = (size_t)in->hidden, V = (size_t)in->vocab;
    size_t ng = 0;
    float *g;
    /* features within 1e-4 */
    if (full && mel && (g = read_f32(json_string_value(json_object_get(c, "features")), &ng))) {
        CHECK_EQ_INT(ng, nc * M * F);
        if (ng == nc * M * F) {
            double e = max_abs(mel, g, ng);
            CHECK_MSG(e <= 1e-4, "%s features max abs err %g", name, e);
            note("features max abs err", name, e);
        }
        free(g);
    } else if (mel && (g = read_f32(json_string_value(json_object_get(c, "features_s16")), &ng))) {
        size_t Fs = (F + 15) / 16, k = 0;
        CHECK_EQ_INT(ng, nc * M * Fs);
        double e = 0;
        for (size_t ch = 0; ch < nc && ng == nc * M * Fs; ch++)
            for (size_t m = 0; m < M; m++)
                for (size_t f = 0; f < F; f += 16, k++) {
                    double d = fabs((double)mel[(ch * M + m) * F + f] - g[k]);
                    if (!(d <= e)) e = d;
                }
        CHECK_MSG(e <= 1e-4, "%s features (every 16th frame) max abs err %g", name, e);
            note("features (every 16th frame) max abs err", name, e);
        free(g);
    }
    /* encoder of each chunk within 1e-3 relative */
    float *enc = malloc(E * D * sizeof *enc);
    const char *ek = full ? "encoder" : "encoder_s10";
    if (mel && enc && (g = read_f32(json_string_value(json_object_get(c, ek)), &ng))) {
        size_t st = full ? 1 : 10, Es = (E + st - 1) / st, nchk = full ? 1 : nc;
        CHECK_EQ_INT(ng, nchk * Es * D);
        float *sel = malloc(Es * D * sizeof *sel);
        for (size_t ch = 0; ch < nchk && ng == nchk * Es * D && sel; ch++) {
            CHECK_OK(mt_voxtral_encode(v, mel + ch * M * F, enc, &err), &err);
            for (size_t r = 0; r < Es; r++) memcpy(sel + r * D, enc + r * st * D, D * sizeof *sel);
            double e = rel_err(sel, g + ch * Es * D, Es * D);
            CHECK_MSG(e <= 1e-3, "%s encoder chunk %zu rel err %g", name, ch, e);
            note("encoder chunk rel err", name, e);
        }
        free(sel);
        free(g);
    }
    free(enc);
    /* projector rows */
    float *rows = malloc(nc * R * H * sizeof *rows);
    CHECK_OK(mt_voxtral_audio_rows(v, mel, nc, rows, &err), &err);
    const char *pk = full ? "projector" : "projector_s5";
    if (rows && (g = read_f32(json_string_value(json_object_get(c, pk)), &ng))) {
        size_t st = full ? 1 : 5, Rs = (nc * R + st - 1) / st;
        CHECK_EQ_INT(ng, Rs * H);
        if (ng == Rs * H) {
            float *sel = malloc(Rs * H * sizeof *sel);
            for (size_t r = 0; r < Rs; r++) memcpy(sel + r * H, rows + r * st * H, H * sizeof *sel);
            double e = rel_err(sel, g, Rs * H);
            CHECK_MSG(e <= 1e-3, "%s projector rel err %g", name, e);
            note("projector rel err", name, e);
            free(sel);
        }
        free(g);
    }
    /* prompt, first logits, greedy ids, text */
    int32_t *prompt = NULL, *gp = NULL, *ids = NULL, *gi = NULL;
    size_t np = 0, ngp = 0, ni = 0, ngi = 0;
    const char *lang = json_string_value(json_object_get(c, "language"));
    CHECK_OK(mt_voxtral_prompt(v, nc, lang, &prompt, &np, &err), &err);
    ids_from(json_object_get(c, "prompt_ids"), &gp, &ngp);
    CHECK_MSG(same_ids(prompt, np, gp, ngp), "%s: prompt ids differ (%zu vs %zu)", name, np, ngp);
    float *lg = malloc(V * sizeof *lg);
    int max_tokens = (int)json_integer_value(json_object_get(gold, "max_tokens"));
    CHECK_OK(mt_voxtral_generate(v, prompt, np, rows, nc * R, max_tokens, &ids, &ni, lg, &err), &err);
    if ((g = read_f32(json_string_value(json_object_get(c, "logits")), &ng))) {
        CHECK_EQ_INT(ng, V);
        if (ng == V) {
            double e = rel_err(lg, g, V);
            CHECK_MSG(e <= 1e-3, "%s first-step logits rel err %g", name, e);
            note("first-step logits rel err", name, e);
        }
        free(g);
    }
    ids_from(json_object_get(c, "ids"), &gi, &ngi);
    CHECK_MSG(same_ids(ids, ni, gi, ngi), "%s: greedy ids differ (%zu vs %zu tokens)", name, ni, ngi);
    if (!same_ids(ids, ni, gi, ngi)) {
        for (size_t i = 0; i < ni; i++) fprintf(stderr, " %d", ids[i]);
        fprintf(stderr, "\n");
    }
    char *text = NULL;
    CHECK_OK(mt_voxtral_detok(v, ids, ni, &text, &err), &err);
    CHECK_STR(text, json_string_value(json_object_get(c, "text")));
    free(text);
    free(lg);
    free(prompt);
    free(gp);
    free(ids);
    free(gi);
    free(rows);
    free(mel);
    free(audio);
}

static void check_folder(const char *tag, const char *dir, const json_t *gold, mt_pool *pool) {
    mt_voxtral *v = NULL;
    mt_err err = {0};
    CHECK_OK(mt_voxtral_load(&v, dir, pool, &err), &err);
    if (!v) return;
    json_t *cases = json_object_get(gold, tag);
    CHECK(json_array_size(cases) == 4);
    for (size_t i = 0; i < json_array_size(cases); i++)
        check_case(v, gold, json_array_get(cases, i), !strcmp(tag, "f32") && i == 0, pool);
    mt_voxtral_free(v);
}

/* The family through stt/asr.h: text and one segment over the audio. */
static void check_family(const json_t *gold, mt_pool *pool) {
    const mt_asr_family *fam = NULL;
    mt_err err = {0};
    /* in the registry once stt/asr.c lists it: then detection finds it by model_type */
    size_t nf = 0;
    const mt_asr_family *const *fs = mt_asr_families(&nf);
    int listed = 0;
    for (size_t i = 0; i < nf; i++) listed |= fs[i] == &mt_asr_voxtral;
    if (listed) {
        CHECK_OK(mt_asr_detect(DIR "tiny", &fam, &err), &err);
        CHECK(fam == &mt_asr_voxtral);
    } else {
        fprintf(stderr, "note: mt_asr_voxtral is not in stt/asr.c's registry yet; its detection is not checked\n");
    }
    CHECK(!strcmp(mt_asr_voxtral.name, "voxtral") && !strcmp(mt_asr_voxtral.model_types[0], "voxtral"));
    /* the family's own entry points, as mt_asr_transcribe calls them */
    const mt_asr_family *f = &mt_asr_voxtral;
    void *a = NULL;
    CHECK_OK(f->load(&a, DIR "tiny-q4", NULL, pool, &err), &err);
    if (!a) return;
    json_t *cases = json_object_get(gold, "q4");
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        size_t n = 0;
        float *audio = clip_audio(gold, c, &n);
        mt_asr_opts o = {.language = json_string_value(json_object_get(c, "language")),
                         .max_tokens = (int)json_integer_value(json_object_get(gold, "max_tokens"))};
        mt_stt_result r = {0};
        CHECK_OK(f->transcribe(a, audio, n, &o, &r, &err), &err);
        CHECK_STR(r.text, json_string_value(json_object_get(c, "text")));
        CHECK_STR(r.language, o.language);
        CHECK_EQ_INT(r.n_segs, 1);
        if (r.n_segs == 1) {
            CHECK(r.segs[0].start == 0 && fabs(r.segs[0].end - (double)n / 16000) < 1e-9);
            CHECK_STR(r.segs[0].text, r.text);
        }
        CHECK(fabs(r.duration - (double)n / 16000) < 1e-9);
        if (!strcmp(json_string_value(json_object_get(c, "name")), "long")) {
            /* windows of 30 s: two requests, two segments */
            mt_stt_result w = {0};
            mt_asr_opts o2 = o;
            o2.chunk_s = 30;
            CHECK_OK(f->transcribe(a, audio, n, &o2, &w, &err), &err);
            CHECK_EQ_INT(w.n_segs, 2);
            if (w.n_segs == 2) {
                CHECK(w.segs[0].end == 30.0 && w.segs[1].start == 30.0 && w.segs[1].end == 35.0);
                CHECK_EQ_INT(w.segs[1].id, 1);
            }
            mt_stt_result_free(&w);
        }
        mt_stt_result_free(&r);
        free(audio);
    }
    CHECK(!(f->caps & MT_ASR_TRANSLATE) && !(f->caps & MT_ASR_WORDS) && (f->caps & MT_ASR_LANGUAGE));
    /* no audio: no text, no segments */
    mt_asr_opts o = {0};
    mt_stt_result r = {0};
    CHECK_OK(f->transcribe(a, NULL, 0, &o, &r, &err), &err);
    CHECK(r.text && !*r.text && r.n_segs == 0 && r.duration == 0);
    CHECK_STR(r.language, "en");
    mt_stt_result_free(&r);
    f->free(a);
}

static void check_tekken(void) {
    mt_tekken *t = NULL;
    mt_err err = {0};
    CHECK_OK(mt_tekken_load(&t, DIR "tiny/tekken.json", &err), &err);
    if (!t) return;
    CHECK_EQ_INT(mt_tekken_n_special(t), 100);
    CHECK_EQ_INT(mt_tekken_special(t, "[AUDIO]"), 24);
    CHECK_EQ_INT(mt_tekken_special(t, "[TRANSCRIBE]"), 34);
    CHECK_EQ_INT(mt_tekken_special(t, "nope"), -1);
    int32_t *ids = NULL;
    size_t n = 0;
    const char *s = "Hello world, 1234 caf\xc3\xa9!";
    CHECK_OK(mt_tekken_encode(t, s, strlen(s), &ids, &n, &err), &err);
    char *back = NULL;
    CHECK_OK(mt_tekken_decode(t, ids, n, &back, &err), &err);
    CHECK_STR(back, s);
    free(back);
    free(ids);
    /* byte tokens: an invalid sequence becomes U+FFFD; specials by name */
    int32_t raw[] = {100 + 0xC3, 3, 100 + 'a', 100 + 0xE2, 100 + 0x82};
    CHECK_OK(mt_tekken_decode(t, raw, 5, &back, &err), &err);
    CHECK_STR(back, "\xEF\xBF\xBD[INST]a\xEF\xBF\xBD");
    free(back);
    int32_t bad = 100000;
    CHECK(mt_tekken_decode(t, &bad, 1, &back, &err) == MT_EINVAL);
    mt_tekken_free(t);
    const char *bads[] = {"{", "{}", "{\"config\": {\"pattern\": \"x\", \"default_vocab_size\": 5, "
                          "\"default_num_special_tokens\": 2}, \"vocab\": [{\"rank\": 0, \"token_bytes\": \"YQ==\"}]}",
                          "{\"config\": {\"pattern\": \"(\", \"default_vocab_size\": 3, "
                          "\"default_num_special_tokens\": 2}, \"vocab\": [{\"rank\": 0, \"token_bytes\": \"YQ==\"}]}",
                          "{\"config\": {\"pattern\": \"x\", \"default_vocab_size\": 3, "
                          "\"default_num_special_tokens\": 2}, \"vocab\": [{\"rank\": 0, \"token_bytes\": \"!!\"}]}"};
    for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
        t = NULL;
        err.msg[0] = 0;
        CHECK(mt_tekken_parse(&t, bads[i], strlen(bads[i]), "x.json", &err) != MT_OK && t == NULL);
        CHECK_MSG(!strncmp(err.msg, "x.json: ", 8), "message \"%s\"", err.msg);
    }
}

/* mistral-common's own encodings and KEEP decodings (goldens.json "tekken"). */
static void check_tekken_goldens(const json_t *gold) {
    mt_tekken *t = NULL;
    mt_err err = {0};
    CHECK_OK(mt_tekken_load(&t, DIR "tiny/tekken.json", &err), &err);
    if (!t) return;
    json_t *tk = json_object_get(gold, "tekken"), *enc = json_object_get(tk, "encode"), *dec = json_object_get(tk, "decode");
    CHECK(json_array_size(enc) >= 10 && json_array_size(dec) >= 4);
    for (size_t i = 0; i < json_array_size(enc); i++) {
        json_t *c = json_array_get(enc, i);
        const char *s = json_string_value(json_object_get(c, "text"));
        int32_t *ids = NULL, *g = NULL;
        size_t n = 0, ng = 0;
        CHECK_OK(mt_tekken_encode(t, s, strlen(s), &ids, &n, &err), &err);
        ids_from(json_object_get(c, "ids"), &g, &ng);
        CHECK_MSG(same_ids(ids, n, g, ng), "encode \"%s\": %zu vs %zu ids", s, n, ng);
        free(ids);
        free(g);
    }
    for (size_t i = 0; i < json_array_size(dec); i++) {
        json_t *c = json_array_get(dec, i);
        int32_t *g = NULL;
        size_t ng = 0;
        char *s = NULL;
        ids_from(json_object_get(c, "ids"), &g, &ng);
        CHECK_OK(mt_tekken_decode(t, g, ng, &s, &err), &err);
        CHECK_STR(s, json_string_value(json_object_get(c, "text")));
        free(s);
        free(g);
    }
    mt_tekken_free(t);
}

/* A folder with one file replaced. */
static char *variant(const char *file, const char *content) {
    const char *skip[] = {file, NULL};
    char *d = fixture_copy(DIR "tiny", "vx", skip);
    if (!d) return NULL;
    char *p = mt_path_join(d, file);
    FILE *f = p ? fopen(p, "w") : NULL;
    if (f) {
        fputs(content, f);
        fclose(f);
    }
    free(p);
    return d;
}

static void check_errors(mt_pool *pool) {
    mt_err err = {0};
    mt_voxtral *v = NULL;
    /* a missing tensor: the config keeps 3 encoder layers, the weights have 2 */
    char *cfg = NULL;
    size_t len = 0;
    CHECK_OK(mt_read_file(DIR "tiny/config.json", &cfg, &len, &err), &err);
    json_t *j = cfg ? json_loadb(cfg, len, 0, NULL) : NULL;
    free(cfg);
    if (!j) return;
    json_t *ac = json_object_get(j, "audio_config");
    json_object_set_new(ac, "encoder_layers", json_integer(3));
    char *s = json_dumps(j, 0);
    char *d = variant("config.json", s);
    CHECK(mt_voxtral_load(&v, d, pool, &err) == MT_ENOTFOUND && v == NULL);
    CHECK_MSG(strstr(err.msg, "audio_tower.layers.2.") && !strchr(err.msg, '\n'), "message \"%s\"", err.msg);
    fixture_copy_free(d);
    free(s);
    /* a bad config value */
    json_object_set_new(ac, "encoder_layers", json_integer(2));
    json_object_set_new(ac, "d_model", json_string("wide"));
    s = json_dumps(j, 0);
    d = variant("config.json", s);
    CHECK(mt_voxtral_load(&v, d, pool, &err) == MT_EFORMAT && v == NULL);
    CHECK_MSG(strstr(err.msg, "d_model") && strstr(err.msg, "config.json"), "message \"%s\"", err.msg);
    fixture_copy_free(d);
    free(s);
    json_object_set_new(ac, "d_model", json_integer(32));
    json_object_set_new(ac, "max_source_positions", json_integer(1000));
    s = json_dumps(j, 0);
    d = variant("config.json", s);
    CHECK(mt_voxtral_load(&v, d, pool, &err) == MT_EUNSUPPORTED && v == NULL);
    CHECK_MSG(strstr(err.msg, "max_source_positions") != NULL, "message \"%s\"", err.msg);
    fixture_copy_free(d);
    free(s);
    json_decref(j);
    /* tekken.json missing, or not JSON */
    const char *skip[] = {"tekken.json", NULL};
    d = fixture_copy(DIR "tiny", "vx", skip);
    CHECK(mt_voxtral_load(&v, d, pool, &err) == MT_ENOTFOUND && v == NULL);
    CHECK_MSG(strstr(err.msg, "tekken.json") != NULL, "message \"%s\"", err.msg);
    fixture_copy_free(d);
    d = variant("tekken.json", "{\"config\": 3}");
    CHECK(mt_voxtral_load(&v, d, pool, &err) == MT_EFORMAT && v == NULL);
    CHECK_MSG(strstr(err.msg, "tekken.json") != NULL, "message \"%s\"", err.msg);
    fixture_copy_free(d);
    /* empty audio */
    CHECK_OK(mt_voxtral_load(&v, DIR "tiny", pool, &err), &err);
    float *mel = NULL;
    size_t nc = 0;
    if (v) CHECK(mt_voxtral_features(v, NULL, 0, &mel, &nc, &err) == MT_EINVAL);
    mt_voxtral_free(v);
}

int main(void) {
    mt_pool *pool = NULL;
    mt_err err = {0};
    CHECK_OK(mt_pool_new(&pool, 2, &err), &err);
    json_error_t je;
    json_t *gold = json_load_file(DIR "goldens.json", 0, &je);
    CHECK_MSG(gold != NULL, "goldens.json: %s", je.text);
    if (gold) {
        check_tekken();
        check_tekken_goldens(gold);
        check_folder("f32", DIR "tiny", gold, pool);
        check_folder("q4", DIR "tiny-q4", gold, pool);
        check_family(gold, pool);
        check_errors(pool);
    }
    json_decref(gold);
    mt_pool_free(pool);
    return check_report("stt_voxtral");
}
