/* test_transcribe.c - mt_stt_transcribe() against openai-whisper's
 * transcribe() on the tiny random Whisper fixtures (goldens:
 * tests/gen/gen_stt_goldens.py -> tests/data/stt/transcribe_golden.json.zst):
 * identical tokens, texts and segment boundaries, floats within 1e-3, for
 * greedy with / without timestamps, beam search (patience, length penalty),
 * initial prompt, condition_on_previous_text off, word timestamps,
 * clip_timestamps, language detection, translate; plus temperature fallback
 * (forced by an impossible log-probability threshold), compression ratios,
 * option errors, the VAD option and a quantized model; the progress callback,
 * the temperature schedule, output file names and the same-name check. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "audio/mel.h"
#include "check.h"
#include "core/blas.h"
#include "core/file.h"
#include "models/whisper.h"
#include "stt/outname.h"
#include "stt/transcribe.h"
#include "stt/wtok.h"

#define TOL 1e-3

/* the synthetic audio of gen_stt_goldens.synth_audio (integer arithmetic) */
static float *synth_audio(int seconds, uint32_t seed, const json_t *pattern, size_t *n)
{
    size_t N = (size_t)seconds * 16000;
    float *a = malloc(N * sizeof *a);
    if (!a) return NULL;
    uint64_t st = seed;
    size_t np = json_array_size(pattern);
    for (size_t i = 0; i < N; i++) {
        st = (st * 1103515245ull + 12345ull) & 0x7FFFFFFFull;
        long noise = (long)((st >> 8) % 2001) - 1000;
        size_t sec = i / 16000;
        size_t half = (40 + (sec * 7) % 60) / 2;
        long sq = (i / half) % 2 == 0 ? 6000 : -6000;
        long on = json_integer_value(json_array_get(pattern, sec % np));
        a[i] = (float)(noise + (on ? sq : 0)) / 32768.0f;
    }
    *n = N;
    return a;
}

static double jnum(const json_t *o, const char *k, double dflt)
{
    const json_t *v = json_object_get(o, k);
    if (!v) return dflt;
    if (json_is_null(v)) return NAN;
    return json_number_value(v);
}

typedef struct model {
    const char *name;
    mt_whisper *w;
    mt_wtok tok;
    int ok;
} model;

static model *get_model(model *ms, int *nm, const char *name)
{
    for (int i = 0; i < *nm; i++) if (!strcmp(ms[i].name, name)) return ms[i].ok ? &ms[i] : NULL;
    model *m = &ms[(*nm)++];
    memset(m, 0, sizeof *m);
    m->name = name;
    char dir[512];
    const char *root = getenv("MT_STT_FIX");   /* another fixture folder (debugging) */
    snprintf(dir, sizeof dir, "%s/%s", root ? root : "tests/data/whisper", name);
    mt_err err = {0};
    CHECK_OK(mt_whisper_load(&m->w, dir, NULL, &err), &err);
    if (!m->w) return NULL;
    CHECK_OK(mt_wtok_open(&m->tok, dir, mt_whisper_hparams(m->w)->n_vocab, "share", &err), &err);
    if (err.code) return NULL;
    m->ok = 1;
    return m;
}

static void set_opts(mt_stt_opts *o, const json_t *kw)
{
    mt_stt_opts_default(o);
    /* the goldens' base: temperature 0 only, thresholds off */
    o->temperatures[0] = 0;
    o->n_temperatures = 1;
    o->compression_ratio_threshold = 0;
    o->logprob_threshold = NAN;
    o->no_speech_threshold = NAN;
    const json_t *v;
    if ((v = json_object_get(kw, "language"))) o->language = json_string_value(v);
    if ((v = json_object_get(kw, "task"))) o->task = !strcmp(json_string_value(v), "translate");
    if ((v = json_object_get(kw, "beam_size"))) o->beam_size = (int)json_integer_value(v);
    o->patience = jnum(kw, "patience", 1.0);
    o->length_penalty = jnum(kw, "length_penalty", -1.0);
    if ((v = json_object_get(kw, "without_timestamps"))) o->without_timestamps = json_is_true(v);
    if ((v = json_object_get(kw, "word_timestamps"))) o->word_timestamps = json_is_true(v);
    if ((v = json_object_get(kw, "condition_on_previous_text"))) o->condition_on_previous_text = json_is_true(v);
    if ((v = json_object_get(kw, "initial_prompt"))) o->initial_prompt = json_string_value(v);
    if ((v = json_object_get(kw, "suppress_tokens"))) o->suppress_tokens = json_string_value(v);
    if ((v = json_object_get(kw, "suppress_blank"))) o->suppress_blank = json_is_true(v);
    o->max_initial_timestamp = jnum(kw, "max_initial_timestamp", 1.0);
    o->hallucination_silence_threshold = jnum(kw, "hallucination_silence_threshold", 0);
    if ((v = json_object_get(kw, "clip_timestamps"))) {
        const char *p = json_string_value(v);
        while (p && *p && o->n_clip < MT_STT_MAX_CLIPS) {
            char *e;
            o->clip_timestamps[o->n_clip++] = strtod(p, &e);
            p = *e == ',' ? e + 1 : e;
        }
    }
}

typedef struct progress_log {
    int n;
    double pos[64], total[64];
} progress_log;

static void progress_cb(void *user, double pos, double total)
{
    progress_log *pl = user;
    if (pl->n < 64) {
        pl->pos[pl->n] = pos;
        pl->total[pl->n++] = total;
    }
}

/* the reference CLI's temperature schedule */
static void test_temperatures(void)
{
    mt_stt_opts o;
    mt_err err;
    mt_stt_opts_default(&o);
    CHECK_OK(mt_stt_set_temperatures(&o, 0, 0.2, &err), &err);
    CHECK_EQ_INT(o.n_temperatures, 6);
    CHECK(fabs(o.temperatures[5] - 1.0) < 1e-12 && fabs(o.temperatures[1] - 0.2) < 1e-12);
    CHECK_OK(mt_stt_set_temperatures(&o, 0.5, 0, &err), &err);
    CHECK(o.n_temperatures == 1 && o.temperatures[0] == 0.5);
    CHECK_OK(mt_stt_set_temperatures(&o, 1.5, 0.2, &err), &err);
    CHECK(o.n_temperatures == 1 && o.temperatures[0] == 1.5);
    CHECK(mt_stt_set_temperatures(&o, 0, 0.01, &err) == MT_EINVAL && strstr(err.msg, "more than 16"));
    CHECK(o.n_temperatures == 1 && o.temperatures[0] == 1.5);
}

/* output names (openai-whisper's) and the same-name check of the file mode */
static void test_outnames(void)
{
    char *p = mt_stt_output_path("out", "d1/rec.take2.wav", "srt");
    CHECK_STR(p, "out/rec.take2.srt");
    free(p);
    p = mt_stt_output_path("out/", ".hidden", "txt");
    CHECK_STR(p, "out/.hidden.txt");
    free(p);
    p = mt_stt_output_path("out", "a/..wav", "txt");
    CHECK_STR(p, "out/..wav.txt");
    free(p);
    mt_err err;
    size_t a, b;
    const char *ok[] = {"d1/rec.wav", "d2/rec2.wav", "rec.a.wav", ".wav"};
    CHECK_OK(mt_stt_output_collision("out", ok, 4, "srt", &a, &b, &err), &err);
    CHECK(a == 4 && b == 4);
    const char *bad[] = {"x.wav", "d1/rec.wav", "y.wav", "z.mp3", "d2/rec.flac", "y.ogg", "rec"};
    CHECK(mt_stt_output_collision("out", bad, 7, "srt", &a, &b, &err) == MT_EINVAL);
    CHECK_MSG(a == 1 && b == 4, "%zu %zu", a, b);
    CHECK_STR(err.msg, "'d1/rec.wav' and 'd2/rec.flac' would both write out/rec.srt");
    const char *twice[] = {"a.wav", "b.wav", "a.wav"};
    CHECK(mt_stt_output_collision("o", twice, 3, "txt", &a, &b, &err) == MT_EINVAL && a == 0 && b == 2);
    CHECK_OK(mt_stt_output_collision("o", twice, 1, "txt", &a, &b, &err), &err);
}

#define NEAR(a, b, what) CHECK_MSG(fabs((double)(a) - (double)(b)) <= TOL || (isnan(a) && isnan(b)), \
                                   "%s %s: %.6f != %.6f", name, what, (double)(a), (double)(b))

static void compare(const char *name, const mt_stt_result *r, const json_t *c)
{
    CHECK_STR(r->language, json_string_value(json_object_get(c, "language")));
    CHECK_STR(r->text, json_string_value(json_object_get(c, "text")));
    const json_t *segs = json_object_get(c, "segments");
    CHECK_MSG(r->n_segs == json_array_size(segs), "%s: %zu segments, want %zu", name, r->n_segs, json_array_size(segs));
    size_t n = r->n_segs < json_array_size(segs) ? r->n_segs : json_array_size(segs);
    for (size_t i = 0; i < n; i++) {
        const mt_stt_segment *s = &r->segs[i];
        const json_t *g = json_array_get(segs, i);
        const json_t *tk = json_object_get(g, "tokens");
        int same = s->n_tokens == json_array_size(tk);
        for (size_t k = 0; same && k < s->n_tokens; k++) same = s->tokens[k] == json_integer_value(json_array_get(tk, k));
        CHECK_MSG(same, "%s: segment %zu tokens differ (%zu vs %zu)", name, i, s->n_tokens, json_array_size(tk));
        CHECK_EQ_INT(s->id, json_integer_value(json_object_get(g, "id")));
        CHECK_EQ_INT(s->seek, json_integer_value(json_object_get(g, "seek")));
        CHECK_STR(s->text, json_string_value(json_object_get(g, "text")));
        NEAR(s->start, jnum(g, "start", 0), "start");
        NEAR(s->end, jnum(g, "end", 0), "end");
        NEAR(s->temperature, jnum(g, "temperature", 0), "temperature");
        NEAR(s->avg_logprob, jnum(g, "avg_logprob", 0), "avg_logprob");
        NEAR(s->compression_ratio, jnum(g, "compression_ratio", 0), "compression_ratio");
        NEAR(s->no_speech_prob, jnum(g, "no_speech_prob", 0), "no_speech_prob");
        const json_t *ws = json_object_get(g, "words");
        if (ws) {
            CHECK_MSG(s->n_words == json_array_size(ws), "%s: segment %zu: %zu words, want %zu", name, i, s->n_words,
                      json_array_size(ws));
            size_t nw = s->n_words < json_array_size(ws) ? s->n_words : json_array_size(ws);
            for (size_t k = 0; k < nw; k++) {
                const json_t *gw = json_array_get(ws, k);
                CHECK_STR(s->words[k].word, json_string_value(json_object_get(gw, "word")));
                NEAR(s->words[k].start, jnum(gw, "start", 0), "word start");
                NEAR(s->words[k].end, jnum(gw, "end", 0), "word end");
                NEAR(s->words[k].probability, jnum(gw, "probability", 0), "word probability");
            }
        }
    }
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    mt_blas_threads(1);   /* tiny matrices: OpenBLAS threads would only spin */
    mt_err err = {0};
    /* compression ratio, as zlib.compress(text.encode()) */
    CHECK(mt_stt_compression_ratio("") == 0.0);
    test_temperatures();
    test_outnames();
    json_error_t je;
    const char *gp = getenv("MT_STT_GOLDEN");
    char *gbuf = NULL;
    size_t glen = 0;
    json_t *g = NULL;
    if (mt_read_file(gp ? gp : "tests/data/stt/transcribe_golden.json.zst", &gbuf, &glen, &err) == MT_OK)
        g = json_loadb(gbuf, glen, 0, &je);
    free(gbuf);
    CHECK(g != NULL);
    if (!g) return check_report("transcribe");
    const json_t *cr = json_object_get(g, "compression");
    for (size_t i = 0; i < json_array_size(cr); i++) {
        const json_t *e = json_array_get(cr, i);
        double want = json_number_value(json_array_get(e, 1));
        CHECK_MSG(fabs(mt_stt_compression_ratio(json_string_value(json_array_get(e, 0))) - want) < 1e-12,
                  "compression ratio of case %zu", i);
    }
    const json_t *au = json_object_get(g, "audio");
    size_t n = 0;
    float *audio = synth_audio((int)json_integer_value(json_object_get(au, "seconds")),
                               (uint32_t)json_integer_value(json_object_get(au, "seed")), json_object_get(au, "pattern"), &n);
    CHECK(audio != NULL);
    model ms[8];
    int nm = 0;
    const json_t *cases = json_object_get(g, "cases");
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        if (only && strcmp(only, name)) continue;
        model *m = get_model(ms, &nm, json_string_value(json_object_get(c, "model")));
        if (!m) continue;
        mt_stt_opts o;
        set_opts(&o, json_object_get(c, "opts"));
        mt_stt_result r;
        CHECK_OK(mt_stt_transcribe(m->w, &m->tok, audio, n, &o, &r, &err), &err);
        compare(name, &r, c);
        mt_stt_result_free(&r);

        const json_t *lp = json_object_get(c, "lang_probs");
        if (lp) {   /* detect_language on the first window */
            const mt_whisper_hp *hp = mt_whisper_hparams(m->w);
            mt_mel *mm = NULL;
            float *mel = NULL, *win = malloc((size_t)hp->n_mels * MT_WHISPER_NFRAMES * sizeof *win);
            float *xa = malloc((size_t)hp->n_audio_ctx * hp->n_audio_state * sizeof *xa);
            size_t nf = 0;
            double probs[100];
            CHECK_OK(mt_mel_new(&mm, hp->n_mels, &err), &err);
            CHECK_OK(mt_mel_compute(mm, audio, n, MT_WHISPER_NSAMPLES, NULL, &mel, &nf, &err), &err);
            mt_mel_window(mel, hp->n_mels, nf, 0, MT_WHISPER_NFRAMES, win);
            CHECK_OK(mt_whisper_encode(m->w, win, xa, &err), &err);
            int best = mt_stt_detect_language(m->w, &m->tok, xa, probs, &err);
            CHECK_STR(mt_wtok_lang_code(best), json_string_value(json_object_get(c, "language")));
            for (int k = 0; k < m->tok.n_langs; k++) {
                double want = jnum(lp, mt_wtok_lang_code(k), -1);
                CHECK_MSG(fabs(probs[k] - want) < TOL, "lang prob %s: %g != %g", mt_wtok_lang_code(k), probs[k], want);
            }
            free(mel);
            free(win);
            free(xa);
            mt_mel_free(mm);
        }
    }

    /* temperature fallback: an impossible log-probability threshold makes
     * every window fall back to the last temperature */
    model *m = only ? NULL : get_model(ms, &nm, "tiny-ml-mlx");
    if (m) {
        mt_stt_opts o;
        mt_stt_opts_default(&o);
        o.language = "en";
        o.temperatures[0] = 0.0;
        o.temperatures[1] = 0.4;
        o.temperatures[2] = 0.8;
        o.n_temperatures = 3;
        o.best_of = 2;
        o.logprob_threshold = 1.0;
        o.no_speech_threshold = NAN;
        o.compression_ratio_threshold = 0;
        mt_stt_result r;
        CHECK_OK(mt_stt_transcribe(m->w, &m->tok, audio, 16000 * 8, &o, &r, &err), &err);
        CHECK(r.n_segs > 0);
        for (size_t i = 0; i < r.n_segs; i++) CHECK(r.segs[i].temperature == 0.8);
        mt_stt_result_free(&r);
        /* thresholds that never trigger keep temperature 0 */
        o.logprob_threshold = -1e9;
        CHECK_OK(mt_stt_transcribe(m->w, &m->tok, audio, 16000 * 8, &o, &r, &err), &err);
        for (size_t i = 0; i < r.n_segs; i++) CHECK(r.segs[i].temperature == 0.0);
        mt_stt_result_free(&r);
        /* errors */
        o.language = "klingon";
        CHECK(mt_stt_transcribe(m->w, &m->tok, audio, n, &o, &r, &err) == MT_EINVAL);
        o.language = "en";
        o.length_penalty = 2;
        CHECK(mt_stt_transcribe(m->w, &m->tok, audio, n, &o, &r, &err) == MT_EINVAL);
        /* VAD: silence only -> no segments */
        mt_stt_opts_default(&o);
        o.language = "en";
        o.vad = 1;
        float *sil = calloc(16000 * 5, sizeof *sil);
        CHECK_OK(mt_stt_transcribe(m->w, &m->tok, sil, 16000 * 5, &o, &r, &err), &err);
        CHECK_EQ_INT(r.n_segs, 0);
        mt_stt_result_free(&r);
        free(sil);
    }
    m = only ? NULL : get_model(ms, &nm, "tiny-en-hf");
    if (m) {
        mt_stt_opts o;
        mt_stt_opts_default(&o);
        o.task = 1;
        mt_stt_result r;
        CHECK(mt_stt_transcribe(m->w, &m->tok, audio, n, &o, &r, &err) == MT_EINVAL);
        /* progress: from 0, growing, window by window, ending at the duration */
        mt_stt_opts_default(&o);
        o.n_temperatures = 1;
        progress_log pl = {0};
        o.progress = progress_cb;
        o.progress_user = &pl;
        CHECK_OK(mt_stt_transcribe(m->w, &m->tok, audio, n, &o, &r, &err), &err);
        double dur = (double)n / 16000;
        CHECK_MSG(pl.n >= 3 && n > 16000 * 30, "%d progress calls for %.1f s", pl.n, dur);
        CHECK(pl.n > 0 && pl.pos[0] == 0);
        CHECK(pl.n > 0 && pl.pos[pl.n - 1] == dur);
        for (int i = 0; i < pl.n; i++) {
            CHECK(pl.total[i] == dur && pl.pos[i] <= dur);
            if (i) CHECK_MSG(pl.pos[i] >= pl.pos[i - 1] && pl.pos[i] - pl.pos[i - 1] <= 30.0, "%g then %g",
                             pl.pos[i - 1], pl.pos[i]);
        }
        mt_stt_result_free(&r);
    }
    static const char *const quant[] = {"tiny-ml-mlx-q4", "tiny-v3-mlx-q4"};   /* quantized weights run through */
    for (int qi = 0; qi < 2 && !only; qi++) {
        char qd[256];
        snprintf(qd, sizeof qd, "tests/data/whisper/%s", quant[qi]);
        if (!mt_is_dir(qd)) continue;
        m = get_model(ms, &nm, quant[qi]);
        if (m) {
            CHECK_EQ_INT(m->tok.n_langs, qi == 0 ? 99 : 100);
            mt_stt_opts o;
            mt_stt_opts_default(&o);
            o.language = qi == 0 ? "en" : NULL;   /* detection over 100 languages on large-v3's vocabulary */
            o.n_temperatures = 1;
            o.word_timestamps = 1;
            mt_stt_result r;
            CHECK_OK(mt_stt_transcribe(m->w, &m->tok, audio, 16000 * 6, &o, &r, &err), &err);
            CHECK(r.text != NULL);
            CHECK(mt_wtok_lang_index(&m->tok, r.language) >= 0);
            mt_stt_result_free(&r);
        }
    }
    for (int i = 0; i < nm; i++) {
        mt_whisper_free(ms[i].w);
        mt_wtok_close(&ms[i].tok);
    }
    free(audio);
    json_decref(g);
    return check_report("transcribe");
}
