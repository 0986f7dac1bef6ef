/* test_stt_output.c - the transcript writers against openai-whisper's own
 * (goldens from tests/gen/gen_stt_output_goldens.py): every format and the
 * subtitle word options, byte for byte; format_timestamp rounding; the JSONL
 * record; atomic file writes. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/file.h"
#include "stt/output.h"

#define DIR "tests/data/stt_output"

static char *dup_s(const char *s) {
    size_t n = strlen(s);
    char *p = malloc(n + 1);
    memcpy(p, s, n + 1);
    return p;
}

static void load_result(json_t *j, mt_stt_result *r) {
    memset(r, 0, sizeof *r);
    r->text = dup_s(json_string_value(json_object_get(j, "text")));
    snprintf(r->language, sizeof r->language, "%s", json_string_value(json_object_get(j, "language")));
    json_t *segs = json_object_get(j, "segments");
    r->n_segs = json_array_size(segs);
    r->segs = calloc(r->n_segs ? r->n_segs : 1, sizeof *r->segs);
    for (size_t i = 0; i < r->n_segs; i++) {
        json_t *s = json_array_get(segs, i);
        mt_stt_segment *g = &r->segs[i];
        g->id = (int)json_integer_value(json_object_get(s, "id"));
        g->seek = (int)json_integer_value(json_object_get(s, "seek"));
        g->start = json_number_value(json_object_get(s, "start"));
        g->end = json_number_value(json_object_get(s, "end"));
        g->text = dup_s(json_string_value(json_object_get(s, "text")));
        json_t *t = json_object_get(s, "tokens");
        g->n_tokens = json_array_size(t);
        g->tokens = malloc((g->n_tokens ? g->n_tokens : 1) * sizeof *g->tokens);
        for (size_t k = 0; k < g->n_tokens; k++) g->tokens[k] = (int32_t)json_integer_value(json_array_get(t, k));
        g->temperature = json_number_value(json_object_get(s, "temperature"));
        g->avg_logprob = json_number_value(json_object_get(s, "avg_logprob"));
        g->compression_ratio = json_number_value(json_object_get(s, "compression_ratio"));
        g->no_speech_prob = json_number_value(json_object_get(s, "no_speech_prob"));
        json_t *w = json_object_get(s, "words");
        g->n_words = json_array_size(w);
        g->words = g->n_words ? calloc(g->n_words, sizeof *g->words) : NULL;
        for (size_t k = 0; k < g->n_words; k++) {
            json_t *x = json_array_get(w, k);
            g->words[k].word = dup_s(json_string_value(json_object_get(x, "word")));
            g->words[k].start = json_number_value(json_object_get(x, "start"));
            g->words[k].end = json_number_value(json_object_get(x, "end"));
            g->words[k].probability = json_number_value(json_object_get(x, "probability"));
        }
    }
}

static void free_result(mt_stt_result *r) {
    for (size_t i = 0; i < r->n_segs; i++) {
        for (size_t k = 0; k < r->segs[i].n_words; k++) free(r->segs[i].words[k].word);
        free(r->segs[i].words);
        free(r->segs[i].text);
        free(r->segs[i].tokens);
    }
    free(r->segs);
    free(r->text);
}

/* Render and compare with the golden file; reports the first differing byte. */
static void compare(const char *name, const char *tag, mt_stt_format f, const mt_stt_result *r,
                    const mt_stt_write_opts *o) {
    char path[512];
    if (tag) snprintf(path, sizeof path, DIR "/%s.%s.%s", name, tag, mt_stt_format_ext(f));
    else snprintf(path, sizeof path, DIR "/%s.%s", name, mt_stt_format_ext(f));
    char *want = NULL, *got = NULL;
    size_t wl = 0, gl = 0;
    mt_err err = {0};
    CHECK_OK(mt_read_file(path, &want, &wl, &err), &err);
    CHECK_OK(mt_stt_render(f, r, o, &got, &gl, &err), &err);
    if (want && got) {
        size_t i = 0;
        while (i < wl && i < gl && want[i] == got[i]) i++;
        CHECK_MSG(wl == gl && i == wl, "%s: differs at byte %zu (len %zu vs golden %zu): got \"%.40s\" want \"%.40s\"",
                  path, i, gl, wl, got + i, want + i);
    }
    free(want);
    free(got);
}

static void test_goldens(void) {
    char *txt;
    size_t n;
    mt_err err = {0};
    CHECK_OK(mt_read_file(DIR "/cases.json", &txt, &n, &err), &err);
    json_error_t je;
    json_t *cases = json_loads(txt, 0, &je);
    free(txt);
    CHECK(json_array_size(cases) >= 7);
    size_t nv = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *c = json_array_get(cases, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        mt_stt_result r;
        load_result(json_object_get(c, "result"), &r);
        mt_stt_write_opts o = {.word_timestamps = json_is_true(json_object_get(c, "word_timestamps"))};
        for (int f = MT_STT_TXT; f <= MT_STT_JSON; f++) compare(name, NULL, (mt_stt_format)f, &r, &o);
        json_t *vs = json_object_get(c, "variants");
        for (size_t k = 0; k < json_array_size(vs); k++, nv++) {
            json_t *v = json_array_get(vs, k), *vo = json_object_get(v, "opts");
            mt_stt_write_opts wo = o;
            wo.highlight_words = json_is_true(json_object_get(vo, "highlight_words"));
            wo.max_line_width = (int)json_integer_value(json_object_get(vo, "max_line_width"));
            wo.max_line_count = (int)json_integer_value(json_object_get(vo, "max_line_count"));
            wo.max_words_per_line = (int)json_integer_value(json_object_get(vo, "max_words_per_line"));
            const char *tag = json_string_value(json_object_get(v, "tag"));
            compare(name, tag, MT_STT_SRT, &r, &wo);
            compare(name, tag, MT_STT_VTT, &r, &wo);
        }
        /* without options, words are detected from the segments */
        if (!strcmp(name, "words")) compare(name, NULL, MT_STT_SRT, &r, NULL);
        free_result(&r);
    }
    CHECK(nv >= 7);
    json_decref(cases);
}

static void test_timestamp(void) {
    char b[32];
    CHECK_STR(mt_stt_format_timestamp(0, 0, '.', b), "00:00.000");
    CHECK_STR(mt_stt_format_timestamp(0.0005, 1, ',', b), "00:00:00,000");   /* 0.5 ms: half to even */
    CHECK_STR(mt_stt_format_timestamp(0.0015, 1, ',', b), "00:00:00,002");
    CHECK_STR(mt_stt_format_timestamp(61.25, 0, '.', b), "01:01.250");
    CHECK_STR(mt_stt_format_timestamp(3600, 0, '.', b), "01:00:00.000");
    CHECK_STR(mt_stt_format_timestamp(-1, 0, '.', b), "00:00.000");
    CHECK_EQ_INT(mt_stt_format_parse("srt"), MT_STT_SRT);
    CHECK_EQ_INT(mt_stt_format_parse("jsonl"), MT_STT_JSONL);
    CHECK_EQ_INT(mt_stt_format_parse("mp3"), -1);
    CHECK_STR(mt_stt_format_ext(MT_STT_TSV), "tsv");
}

static void test_jsonl_and_file(void) {
    mt_stt_word w = {.word = " hi", .start = 0.5, .end = 0.9, .probability = 0.75};
    int32_t tok[2] = {50364, 220};
    mt_stt_segment s = {.id = 0, .seek = 0, .start = 0.0, .end = 1.0, .text = " hi", .tokens = tok, .n_tokens = 2,
                        .temperature = 0.0, .avg_logprob = -0.1, .compression_ratio = 0.5, .no_speech_prob = 0.1,
                        .words = &w, .n_words = 1};
    mt_stt_result r = {.text = " hi", .language = "en", .segs = &s, .n_segs = 1, .duration = 1.5};
    char *out;
    size_t n;
    mt_err err = {0};
    CHECK_OK(mt_stt_render(MT_STT_JSONL, &r, NULL, &out, &n, &err), &err);
    CHECK_STR(out, "{\"text\":\" hi\",\"segments\":[{\"id\":0,\"seek\":0,\"start\":0.0,\"end\":1.0,\"text\":\" hi\","
                   "\"tokens\":[50364,220],\"temperature\":0.0,\"avg_logprob\":-0.1,\"compression_ratio\":0.5,"
                   "\"no_speech_prob\":0.1,\"words\":[{\"word\":\" hi\",\"start\":0.5,\"end\":0.9,"
                   "\"probability\":0.75}]}],\"language\":\"en\",\"duration\":1.5}\n");
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "language")), "en");
    CHECK(json_number_value(json_object_get(j, "duration")) == 1.5);
    json_t *ww = json_object_get(json_array_get(json_object_get(j, "segments"), 0), "words");
    CHECK_EQ_INT(json_array_size(ww), 1);
    CHECK(json_number_value(json_object_get(json_array_get(ww, 0), "end")) == 0.9);
    CHECK(strstr(out, "\"end\":0.9}") || strstr(out, "\"end\":0.9,"));   /* short floats */
    CHECK(out[n - 1] == '\n' && !memchr(out, '\n', n - 1));
    json_decref(j);
    free(out);
    /* without word timestamps: no "words" key */
    mt_stt_write_opts o = {.word_timestamps = 0};
    json_t *jo = mt_stt_result_json_ex(&r, &o);
    CHECK(jo && !json_object_get(json_array_get(json_object_get(jo, "segments"), 0), "words"));
    json_decref(jo);

    /* invalid UTF-8 becomes U+FFFD (JSONL and json) */
    char bad_text[] = " a\xff b";
    s.text = bad_text;
    s.n_words = 0;
    r.text = bad_text;
    CHECK_OK(mt_stt_render(MT_STT_JSONL, &r, &o, &out, &n, &err), &err);
    CHECK(strstr(out, "\"text\":\" a\xEF\xBF\xBD b\",\"segments\"") == out + 1);
    free(out);
    CHECK_OK(mt_stt_render(MT_STT_JSON, &r, &o, &out, &n, &err), &err);
    CHECK(strstr(out, "{\"text\": \" a\\ufffd b\", \"segments\"") == out);
    free(out);

    char tmpl[] = "/tmp/test_stt_outputXXXXXX";
    CHECK(mkdtemp(tmpl) != NULL);
    char *path = mt_path_join(tmpl, "a.srt");
    CHECK_OK(mt_stt_write_file(path, MT_STT_SRT, &r, &err), &err);
    char *got;
    CHECK_OK(mt_read_file(path, &got, &n, &err), &err);
    CHECK_STR(got, "1\n00:00:00,000 --> 00:00:01,000\na\xff b\n\n");   /* text formats keep the bytes */
    free(got);
    char *bad = mt_path_join(tmpl, "no/such/dir/a.srt");
    CHECK(mt_stt_write_file(bad, MT_STT_TXT, &r, &err) != 0);
    unlink(path);
    rmdir(tmpl);
    free(path);
    free(bad);
}

int main(void) {
    test_goldens();
    test_timestamp();
    test_jsonl_and_file();
    return check_report("stt_output");
}
