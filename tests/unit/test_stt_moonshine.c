/* test_stt_moonshine.c - the Moonshine family (lib/models/moonshine.c)
 * against mlx-audio 0.6.2 (tests/gen/gen_stt_moonshine.py): the conv front
 * end (features, 1e-4 absolute) and the encoder output (1e-3 relative to
 * its largest value) of the float model, the greedy token ids of every chunk
 * (identical) and the text for the float and 4-bit folders on speech,
 * espeak-ng speech, noise and a long clip cut into chunks; the family through
 * stt/asr.h (detection, transcript, segments); and the error paths (missing
 * tensor, bad config, too-short audio). */
#include <jansson.h>
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
#include "core/file.h"
#include "core/pool.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "io/st_write.h"
#include "models/moonshine.h"
#include "stt/asr.h"

#define DIR "tests/data/stt/moonshine/"

/* The family through the registry when asr.c lists it (mt_asr_load,
 * mt_asr_transcribe), else through its mt_asr_family value directly: the
 * registry table is the integrator's, and a branch may run before the
 * family is in it. */
extern const mt_asr_family mt_asr_moonshine;   /* lib/models/moonshine.c */

typedef struct fam_h {
    mt_asr *asr;
    void *self;
} fam_h;

static int registered(void) {
    size_t n;
    const mt_asr_family *const *fs = mt_asr_families(&n);
    for (size_t i = 0; i < n; i++)
        if (fs[i] == &mt_asr_moonshine) return 1;
    return 0;
}

static int fam_load(fam_h *h, const char *dir, mt_pool *pool, mt_err *err) {
    memset(h, 0, sizeof *h);
    if (registered()) return mt_asr_load(&h->asr, dir, pool, err);
    mt_config *cfg = NULL;
    int rc = mt_config_load(&cfg, dir, err);
    if (!rc) rc = mt_asr_moonshine.load(&h->self, dir, cfg, pool, err);
    mt_config_free(cfg);
    return rc;
}

static int fam_loaded(const fam_h *h) { return h->asr || h->self; }

static int fam_transcribe(fam_h *h, const float *a, size_t n, const mt_asr_opts *o, mt_stt_result *r, mt_err *err) {
    if (h->asr) return mt_asr_transcribe(h->asr, a, n, o, r, err);
    memset(r, 0, sizeof *r);
    return mt_asr_moonshine.transcribe(h->self, a, n, o, r, err);
}

static void fam_free(fam_h *h) {
    mt_asr_free(h->asr);
    if (h->self) mt_asr_moonshine.free(h->self);
    memset(h, 0, sizeof *h);
}

typedef struct clip {
    const char *name;
    float *pcm;
    size_t n;
} clip;

static int load_wav(const char *path, clip *c) {
    mt_audio a = {0};
    mt_err err = {0};
    int rc = mt_audio_load(&a, path, 16000, &err);
    CHECK_OK(rc, &err);
    if (rc) return rc;
    c->pcm = a.pcm;
    c->n = a.n;
    return 0;
}

/* espeak, 0.4 s zeros, speech, 0.25 s zeros, noise, espeak (long_clip() of the generator) */
static void make_long(clip *c, const clip *sp, const clip *es, const clip *no) {
    size_t z1 = 6400, z2 = 4000;
    c->n = es->n + z1 + sp->n + z2 + no->n + es->n;
    c->pcm = calloc(c->n, sizeof(float));
    float *p = c->pcm;
    memcpy(p, es->pcm, es->n * sizeof(float));
    p += es->n + z1;
    memcpy(p, sp->pcm, sp->n * sizeof(float));
    p += sp->n + z2;
    memcpy(p, no->pcm, no->n * sizeof(float));
    p += no->n;
    memcpy(p, es->pcm, es->n * sizeof(float));
}

static void check_stages(mt_moonshine *m, const clip *c) {
    char path[256];
    mt_err err = {0};
    size_t d = (size_t)mt_moonshine_hidden(m);
    float *feat = NULL, *enc = NULL;
    size_t T = 0, T2 = 0, ng = 0;
    CHECK_OK(mt_moonshine_features(m, c->pcm, c->n, &feat, &T, &err), &err);
    snprintf(path, sizeof path, DIR "golden/feat_%s.f32.zst", c->name);
    float *g = gold_read_f32(path, &ng);
    CHECK(g != NULL);
    if (feat && g) {
        CHECK_EQ_INT(T * d, ng);
        if (T * d == ng) {
            double e = max_abs(feat, g, ng);
            if (getenv("MOONSHINE_VERBOSE")) printf("%s features: max |diff| %.3g\n", c->name, e);
            CHECK_MSG(e <= 1e-4, "%s features: max |diff| %.3g", c->name, e);
        }
    }
    free(g);
    CHECK_OK(mt_moonshine_encode(m, c->pcm, c->n, &enc, &T2, &err), &err);
    CHECK_EQ_INT(T2, T);
    snprintf(path, sizeof path, DIR "golden/enc_%s.f32.zst", c->name);
    g = gold_read_f32(path, &ng);
    CHECK(g != NULL);
    if (enc && g) {
        CHECK_EQ_INT(T2 * d, ng);
        if (T2 * d == ng) {
            double e = rel_err(enc, g, ng);
            if (getenv("MOONSHINE_VERBOSE")) printf("%s encoder: relative error %.3g\n", c->name, e);
            CHECK_MSG(e <= 1e-3, "%s encoder: relative error %.3g", c->name, e);
        }
    }
    free(g);
    free(feat);
    free(enc);
}

/* token ids of every chunk, chunk bounds, text: directly and through mt_asr */
static void check_decode(mt_moonshine *m, fam_h *asr, json_t *jc, const clip *c) {
    mt_err err = {0};
    double chunk_s = json_real_value(json_object_get(jc, "chunk_s"));
    int max_tokens = (int)json_integer_value(json_object_get(jc, "max_tokens"));
    json_t *jb = json_object_get(jc, "bounds"), *jids = json_object_get(jc, "ids"),
           *jtexts = json_object_get(jc, "texts");
    size_t *b = NULL, nb = 0;
    CHECK_OK(mt_moonshine_chunks(c->pcm, c->n, chunk_s, &b, &nb, &err), &err);
    CHECK_EQ_INT(nb, json_array_size(jb));
    size_t nseg_expected = 0;
    for (size_t k = 0; k < nb && k < json_array_size(jb); k++) {
        size_t s = b[2 * k], e = b[2 * k + 1];
        CHECK_EQ_INT(s, json_integer_value(json_array_get(json_array_get(jb, k), 0)));
        CHECK_EQ_INT(e, json_integer_value(json_array_get(json_array_get(jb, k), 1)));
        json_t *want = json_array_get(jids, k);
        int32_t *ids = malloc((size_t)max_tokens * sizeof *ids);
        size_t n = 0;
        if (e - s >= MT_MOONSHINE_MIN_SAMPLES) {
            float *enc = NULL;
            size_t T = 0;
            CHECK_OK(mt_moonshine_encode(m, c->pcm + s, e - s, &enc, &T, &err), &err);
            if (enc) CHECK_OK(mt_moonshine_decode(m, enc, T, max_tokens, ids, &n, &err), &err);
            free(enc);
        }
        CHECK_EQ_INT(n, json_array_size(want));
        int same = n == json_array_size(want);
        for (size_t i = 0; same && i < n; i++) same = ids[i] == json_integer_value(json_array_get(want, i));
        CHECK_MSG(same, "%s chunk %zu: token ids differ", c->name, k);
        char *text = NULL;
        CHECK_OK(mt_moonshine_detok(m, ids, n, &text, &err), &err);
        CHECK_STR(text, json_string_value(json_array_get(jtexts, k)));
        if (text && *text) nseg_expected++;
        free(text);
        free(ids);
    }
    /* the family: the same transcript, one segment per chunk with text */
    mt_asr_opts o = {0};
    o.chunk_s = chunk_s;
    o.max_tokens = max_tokens;
    mt_stt_result r;
    CHECK_OK(fam_transcribe(asr, c->pcm, c->n, &o, &r, &err), &err);
    CHECK_STR(r.text, json_string_value(json_object_get(jc, "text")));
    CHECK_EQ_INT(r.n_segs, nseg_expected);
    CHECK(fabs(r.duration - (double)c->n / 16000) < 1e-9);
    for (size_t i = 0; i < r.n_segs; i++) {
        CHECK_EQ_INT(r.segs[i].id, (long long)i);
        CHECK(r.segs[i].end > r.segs[i].start);
        CHECK(r.segs[i].text && *r.segs[i].text);
    }
    if (nb && r.n_segs) {
        CHECK(r.segs[r.n_segs - 1].end <= r.duration + 1e-9);
    }
    mt_stt_result_free(&r);
    free(b);
}

static void check_model(const char *name, json_t *gold, clip *clips, size_t nclips, int stages, mt_pool *pool) {
    char dir[256];
    snprintf(dir, sizeof dir, DIR "%s", name);
    mt_err err = {0};
    if (registered()) {
        const mt_asr_family *fam = NULL;
        CHECK_OK(mt_asr_detect(dir, &fam, &err), &err);
        CHECK(fam == &mt_asr_moonshine);
    }
    CHECK_STR(mt_asr_moonshine.name, "moonshine");
    CHECK_STR(mt_asr_moonshine.model_types[0], "moonshine");
    fam_h asr_h, *asr = &asr_h;
    CHECK_OK(fam_load(asr, dir, pool, &err), &err);
    mt_config *cfg = NULL;
    CHECK_OK(mt_config_load(&cfg, dir, &err), &err);
    mt_moonshine *m = NULL;
    if (cfg) CHECK_OK(mt_moonshine_load(&m, dir, cfg, pool, &err), &err);
    mt_config_free(cfg);
    json_t *jm = json_object_get(gold, name);
    CHECK(jm != NULL);
    if (m && fam_loaded(asr) && jm) {
        CHECK_EQ_INT(mt_moonshine_hidden(m), json_integer_value(json_object_get(gold, "hidden_size")));
        for (size_t i = 0; i < nclips; i++) {
            if (stages && strcmp(clips[i].name, "long")) check_stages(m, &clips[i]);
            json_t *jc = json_object_get(jm, clips[i].name);
            CHECK_MSG(jc != NULL, "%s: no golden for %s", name, clips[i].name);
            if (jc) check_decode(m, asr, jc, &clips[i]);
        }
        /* options the family cannot honour */
        mt_asr_opts o = {0};
        mt_stt_result r;
        CHECK(!(mt_asr_moonshine.caps & (MT_ASR_TRANSLATE | MT_ASR_WORDS)));
        if (asr->asr) {   /* refused by the dispatch */
            o.task = 1;
            CHECK(mt_asr_transcribe(asr->asr, clips[0].pcm, clips[0].n, &o, &r, &err) == MT_EINVAL);
            mt_stt_result_free(&r);
            o.task = 0;
            o.word_timestamps = 1;
            CHECK(mt_asr_transcribe(asr->asr, clips[0].pcm, clips[0].n, &o, &r, &err) == MT_EINVAL);
            mt_stt_result_free(&r);
            o.word_timestamps = 0;
        }
        o.max_tokens = 70000;
        CHECK(fam_transcribe(asr, clips[0].pcm, clips[0].n, &o, &r, &err) == MT_EINVAL);
        mt_stt_result_free(&r);
        o.max_tokens = 0;
        o.chunk_s = 0.5;
        CHECK(fam_transcribe(asr, clips[0].pcm, clips[0].n, &o, &r, &err) == MT_EINVAL);
        mt_stt_result_free(&r);
        o.chunk_s = 0;
        /* too short for the front end: an empty transcript, not an error */
        CHECK_OK(fam_transcribe(asr, clips[0].pcm, 500, &o, &r, &err), &err);
        CHECK(r.text && !*r.text && r.n_segs == 0);
        mt_stt_result_free(&r);
        float *f = NULL;
        size_t T = 0;
        CHECK(mt_moonshine_features(m, clips[0].pcm, 894, &f, &T, &err) == MT_EINVAL);
        CHECK_OK(mt_moonshine_features(m, clips[0].pcm, 895, &f, &T, &err), &err);
        CHECK_EQ_INT(T, 1);
        free(f);
    }
    mt_moonshine_free(m);
    fam_free(asr);
}

/* ---- error paths on copies of the float folder ---- */

static int copy_file(const char *src, const char *dst) {   /* bytes as they are (mt_read_file would unpack .zst) */
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    int ok = in && out;
    char buf[65536];
    size_t k;
    while (ok && (k = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, k, out) == k;
    if (in) fclose(in);
    if (out && fclose(out)) ok = 0;
    return ok ? 0 : -1;
}

static char *folder_with_config(const char *tmp, const char *cfg_edit_key, const char *cfg_edit_val) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/m", tmp);
    mkdir(dir, 0755);
    char p[600];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    copy_file(DIR "tiny/model.safetensors", p);
    snprintf(p, sizeof p, "%s/tokenizer.json.zst", dir);
    copy_file(DIR "tiny/tokenizer.json.zst", p);
    json_error_t je;
    json_t *c = json_load_file(DIR "tiny/config.json", 0, &je);
    if (cfg_edit_key) {
        json_t *v = json_loads(cfg_edit_val, JSON_DECODE_ANY, &je);
        json_object_set_new(c, cfg_edit_key, v);
    }
    snprintf(p, sizeof p, "%s/config.json", dir);
    json_dump_file(c, p, JSON_INDENT(1));
    json_decref(c);
    return dir;
}

/* tensor data for mt_st_write: the views of the source file */
static int fill_view(void *user, size_t idx, void *dst, mt_err *err) {
    (void)err;
    const mt_tensor_view *const *v = user;
    memcpy(dst, v[idx]->data, v[idx]->nbytes);
    return 0;
}

/* An untied folder (tie_word_embeddings false) whose proj_out is a copy of
 * the embedding: logits, and so the ids, are the tied model's. */
static void check_untied(json_t *gold, const clip *c, mt_pool *pool) {
    char tmp[] = "/tmp/test_moonshine_XXXXXX";
    if (!mkdtemp(tmp)) { CHECK(0); return; }
    char *dir = folder_with_config(tmp, "tie_word_embeddings", "false");
    char p[600];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    mt_err err = {0};
    mt_safetensors *st = NULL;
    CHECK_OK(mt_safetensors_open(&st, DIR "tiny/model.safetensors", &err), &err);
    if (!st) return;
    size_t n = mt_safetensors_count(st);
    mt_st_entry *e = calloc(n + 1, sizeof *e);
    const mt_tensor_view **v = calloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        v[i] = mt_safetensors_at(st, i);
        e[i].name = v[i]->name;
        e[i].dtype = v[i]->dtype;
        e[i].ndim = v[i]->ndim;
        memcpy(e[i].shape, v[i]->shape, sizeof e[i].shape[0] * (size_t)v[i]->ndim);
        e[i].nbytes = v[i]->nbytes;
    }
    v[n] = mt_safetensors_get(st, "model.decoder.embed_tokens.weight");
    CHECK(v[n] != NULL);
    if (v[n]) {
        e[n] = e[0];
        e[n].name = "proj_out.weight";
        e[n].dtype = v[n]->dtype;
        e[n].ndim = 2;
        e[n].shape[0] = v[n]->shape[0];
        e[n].shape[1] = v[n]->shape[1];
        e[n].nbytes = v[n]->nbytes;
        CHECK_OK(mt_st_write(p, e, n + 1, NULL, NULL, 0, fill_view, v, &err), &err);
        fam_h a;
        CHECK_OK(fam_load(&a, dir, pool, &err), &err);
        mt_asr_opts o = {0};
        json_t *jc = json_object_get(json_object_get(gold, "tiny"), "espeak");
        o.max_tokens = (int)json_integer_value(json_object_get(jc, "max_tokens"));
        mt_stt_result r;
        if (fam_loaded(&a)) {
            CHECK_OK(fam_transcribe(&a, c->pcm, c->n, &o, &r, &err), &err);
            CHECK_STR(r.text, json_string_value(json_object_get(jc, "text")));
            CHECK_EQ_INT(r.n_segs, 1);
            if (r.n_segs == 1) {
                json_t *want = json_array_get(json_object_get(jc, "ids"), 0);
                CHECK_EQ_INT(r.segs[0].n_tokens, json_array_size(want));
                int same = r.segs[0].n_tokens == json_array_size(want);
                for (size_t i = 0; same && i < r.segs[0].n_tokens; i++)
                    same = r.segs[0].tokens[i] == json_integer_value(json_array_get(want, i));
                CHECK(same);
            }
            mt_stt_result_free(&r);
        }
        fam_free(&a);
    }
    free(e);
    free(v);
    mt_safetensors_free(st);
    unlink(p);
    snprintf(p, sizeof p, "%s/tokenizer.json.zst", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    rmdir(dir);
    rmdir(tmp);
}

static void expect_load_error(const char *dir, const char *needle, mt_pool *pool) {
    mt_err err = {0};
    fam_h a;
    int rc = fam_load(&a, dir, pool, &err);
    CHECK_MSG(rc != 0, "%s: loaded", needle);
    CHECK_MSG(strstr(err.msg, needle) != NULL, "message '%s' lacks '%s'", err.msg, needle);
    if (getenv("MOONSHINE_VERBOSE")) printf("error: %s\n", err.msg);
    CHECK(strchr(err.msg, '\n') == NULL);
    fam_free(&a);
}

static void check_errors(mt_pool *pool) {
    char tmp[] = "/tmp/test_moonshine_XXXXXX";
    if (!mkdtemp(tmp)) { CHECK(0); return; }
    char *dir = folder_with_config(tmp, "hidden_size", "63");
    expect_load_error(dir, "hidden_size 63 is not divisible", pool);
    dir = folder_with_config(tmp, "hidden_size", "\"wide\"");
    expect_load_error(dir, "'hidden_size' must be an integer", pool);
    dir = folder_with_config(tmp, "decoder_num_key_value_heads", "3");
    expect_load_error(dir, "not a multiple of the key/value heads", pool);
    dir = folder_with_config(tmp, "partial_rotary_factor", "2.5");
    expect_load_error(dir, "partial_rotary_factor", pool);
    dir = folder_with_config(tmp, "vocab_size", "600");
    expect_load_error(dir, "decoder.embed_tokens", pool);
    dir = folder_with_config(tmp, "decoder_num_hidden_layers", "3");
    expect_load_error(dir, "model.decoder.layers.2", pool);
    dir = folder_with_config(tmp, "tie_word_embeddings", "false");
    expect_load_error(dir, "proj_out", pool);
    /* every message names the folder */
    dir = folder_with_config(tmp, "intermediate_size", "-4");
    expect_load_error(dir, dir, pool);
    /* no tokenizer */
    dir = folder_with_config(tmp, NULL, NULL);
    char p[600];
    snprintf(p, sizeof p, "%s/tokenizer.json.zst", dir);
    unlink(p);
    expect_load_error(dir, "tokenizer.json", pool);
    /* a truncated weights file */
    dir = folder_with_config(tmp, NULL, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (truncate(p, 1000) == 0) expect_load_error(dir, "model.safetensors", pool);
    unlink(p);
    snprintf(p, sizeof p, "%s/tokenizer.json.zst", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    rmdir(dir);
    rmdir(tmp);
    /* bad chunk length */
    size_t *b = NULL, nb = 0;
    mt_err err = {0};
    float z[4] = {0};
    CHECK(mt_moonshine_chunks(z, 4, 0.5, &b, &nb, &err) == MT_EINVAL);
    CHECK_OK(mt_moonshine_chunks(z, 4, 30, &b, &nb, &err), &err);
    CHECK(nb == 1 && b[0] == 0 && b[1] == 4);
    free(b);
}

int main(void) {
    mt_pool *pool = NULL;
    mt_err err = {0};
    CHECK_OK(mt_pool_new(&pool, 2, &err), &err);
    json_error_t je;
    json_t *gold = json_load_file(DIR "golden/goldens.json", 0, &je);
    CHECK_MSG(gold != NULL, "%s", je.text);
    clip c[4] = {{"speech", NULL, 0}, {"espeak", NULL, 0}, {"noise", NULL, 0}, {"long", NULL, 0}};
    int ok = !load_wav("tests/data/audio/speech_s16_mono_16k.wav", &c[0]) &&
             !load_wav(DIR "clips/espeak.wav", &c[1]) && !load_wav(DIR "clips/noise.wav", &c[2]);
    if (ok && gold) {
        make_long(&c[3], &c[0], &c[1], &c[2]);
        check_model("tiny", gold, c, 4, 1, pool);
        check_model("tiny-q4", gold, c, 4, 0, pool);
        /* one thread gives the same ids */
        check_model("tiny", gold, c, 4, 0, NULL);
        check_untied(gold, &c[1], pool);
    }
    check_errors(pool);
    for (int i = 0; i < 4; i++) free(c[i].pcm);
    json_decref(gold);
    mt_pool_free(pool);
    return check_report("stt_moonshine");
}
