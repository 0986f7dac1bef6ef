/* test_g2p.c - lib/text/g2p against kokoro-onnx 0.6.1 on Debian's libespeak-ng 1.51:
 * every line of tests/data/g2p/corpus.txt in en-us and en-gb, edge cases and the other
 * Kokoro languages, kokoro-onnx's batching of long texts, and the error paths
 * (goldens: tests/gen/gen_g2p_goldens.py -> tests/data/g2p/golden.json). */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "text/g2p.h"

static int n_same, n_lines;

/* Code points of UTF-8 s (valid by construction). */
static size_t cps(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static char *phon(mt_g2p *g, const char *t, size_t n, mt_err *err) {
    char *out = NULL;
    size_t len = 0;
    int rc = mt_g2p_phonemize(g, t, n, &out, &len, err);
    CHECK_MSG(rc == MT_OK, "phonemize '%.60s': %s", t, err->msg);
    if (out) CHECK_EQ_INT(len, strlen(out));
    return out;
}

static mt_g2p *get(mt_g2p **open, const char **names, size_t n, const char *lang, mt_err *err) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], lang) == 0) {
            if (!open[i]) CHECK_OK(mt_g2p_open(lang, &open[i], err), err);
            return open[i];
        }
    return NULL;
}

/* The chunks must be the golden's; each within max, no empty one. */
static void check_split(const char *ph, size_t len, size_t max, const json_t *want, const char *what) {
    mt_err err = {0};
    mt_g2p_chunks c;
    CHECK_OK(mt_g2p_split(ph, len, max, &c, &err), &err);
    CHECK_MSG(c.n == json_array_size(want), "%s: %zu chunks, want %zu", what, c.n, json_array_size(want));
    for (size_t i = 0; i < c.n && i < json_array_size(want); i++) {
        CHECK_STR(c.s[i], json_string_value(json_array_get(want, i)));
        CHECK(cps(c.s[i]) <= max && c.len[i] > 0 && c.len[i] == strlen(c.s[i]));
    }
    mt_g2p_chunks_free(&c);
}

/* Threads phonemizing en-us and en-gb lines at once, switching voices call by call. */
typedef struct job {
    mt_g2p *g[2];
    char **lines;
    const json_t *gold[2];
    size_t first, n;
    int bad;
} job;

static void *run_job(void *arg) {
    job *j = arg;
    for (size_t i = j->first; i < j->first + j->n; i++) {
        int l = (int)(i & 1);
        char *out = NULL;
        size_t len;
        mt_err e;
        if (mt_g2p_phonemize(j->g[l], j->lines[i], strlen(j->lines[i]), &out, &len, &e) ||
            strcmp(out, json_string_value(json_array_get(j->gold[l], i))))
            j->bad++;
        free(out);
    }
    return NULL;
}

int main(void) {
    json_error_t je;
    json_t *g = json_load_file("tests/data/g2p/golden.json", JSON_ALLOW_NUL, &je);
    FILE *f = fopen("tests/data/g2p/corpus.txt", "r");
    CHECK(g != NULL && f != NULL);
    if (!g || !f) return check_report("g2p");
    char *lines[1024];
    size_t nl = 0;
    char buf[4096];
    while (nl < 1024 && fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\n")] = 0;
        lines[nl++] = strdup(buf);
    }
    fclose(f);

    mt_err err = {0};
    const char *names[] = {"en-us", "en-gb", "es", "fr-fr", "hi", "it", "pt-br", "ja", "cmn"};
    size_t nn = sizeof names / sizeof names[0];
    mt_g2p *open[sizeof names / sizeof names[0]] = {0};
    const json_t *cases = json_object_get(g, "cases"), *splits = json_object_get(g, "splits");
    /* per language, in the generator's order: corpus, edge cases, long texts */
    for (size_t l = 0; l < 2; l++) {
        mt_g2p *h = get(open, names, nn, names[l], &err);
        if (!h) break;
        const json_t *gold = json_object_get(json_object_get(g, "phonemes"), names[l]);
        CHECK_EQ_INT(json_array_size(gold), nl);
        for (size_t i = 0; i < nl && i < json_array_size(gold); i++) {
            char *p = phon(h, lines[i], strlen(lines[i]), &err);
            const char *w = json_string_value(json_array_get(gold, i));
            int same = p && strcmp(p, w) == 0;
            CHECK_MSG(same, "%s line %zu: '%s' != '%s'", names[l], i + 1, p ? p : "(null)", w);
            n_same += same;
            n_lines++;
            free(p);
        }
        for (size_t i = 0; i < json_array_size(cases); i++) {
            const json_t *c = json_array_get(cases, i);
            if (strcmp(json_string_value(json_object_get(c, "lang")), names[l])) continue;
            const json_t *t = json_object_get(c, "text");
            char *p = phon(h, json_string_value(t), json_string_length(t), &err);
            CHECK_STR(p, json_string_value(json_object_get(c, "phonemes")));
            free(p);
        }
        for (size_t i = 0; i < json_array_size(splits); i++) {
            const json_t *s = json_array_get(splits, i);
            const json_t *lang = json_object_get(s, "lang");
            if (!json_is_string(lang) || strcmp(json_string_value(lang), names[l])) continue;
            const char *t = json_string_value(json_object_get(s, "text"));
            char *p = phon(h, t, strlen(t), &err);
            CHECK_STR(p, json_string_value(json_object_get(s, "phonemes")));
            if (p) check_split(p, strlen(p), (size_t)json_integer_value(json_object_get(s, "max")),
                               json_object_get(s, "chunks"), "long text");
            free(p);
        }
    }
    /* the other languages of Kokoro's voices */
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        const char *lang = json_string_value(json_object_get(c, "lang"));
        if (!strcmp(lang, "en-us") || !strcmp(lang, "en-gb")) continue;
        mt_g2p *h = get(open, names, nn, lang, &err);
        CHECK_MSG(h != NULL, "language %s", lang);
        if (!h) continue;
        const char *t = json_string_value(json_object_get(c, "text"));
        char *p = phon(h, t, strlen(t), &err);
        CHECK_STR(p, json_string_value(json_object_get(c, "phonemes")));
        free(p);
    }
    /* batching alone */
    for (size_t i = 0; i < json_array_size(splits); i++) {
        const json_t *s = json_array_get(splits, i);
        if (json_is_string(json_object_get(s, "lang"))) continue;
        const char *p = json_string_value(json_object_get(s, "phonemes"));
        check_split(p, strlen(p), (size_t)json_integer_value(json_object_get(s, "max")),
                    json_object_get(s, "chunks"), p);
    }

    /* a long text: batches within 510, each cut after a sentence mark */
    {
        mt_g2p *h = open[0];
        char *big = malloc(64 * 1024);
        size_t bn = 0;
        for (size_t i = 0; i < 300 && bn + 200 < 64 * 1024; i++)
            bn += (size_t)snprintf(big + bn, 200, "Sentence number %zu is short, but it counts. ", i);
        char *p = h ? phon(h, big, bn, &err) : NULL;
        mt_g2p_chunks c = {0};
        if (p) CHECK_OK(mt_g2p_split(p, strlen(p), MT_G2P_MAX_PHONEMES, &c, &err), &err);
        CHECK(c.n > 10);
        size_t total = 0;
        for (size_t i = 0; i < c.n; i++) {
            size_t n = cps(c.s[i]);
            total += n + (i > 0);
            CHECK_MSG(n <= MT_G2P_MAX_PHONEMES, "chunk %zu: %zu phonemes", i, n);
            CHECK_MSG(c.len[i] && c.s[i][c.len[i] - 1] == '.', "chunk %zu ends '%s'", i,
                      c.len[i] > 8 ? c.s[i] + c.len[i] - 8 : c.s[i]);
        }
        if (p) CHECK_EQ_INT(total, cps(p)); /* nothing lost: the chunks joined by ' ' are the text */
        mt_g2p_chunks_free(&c);
        free(p);
        free(big);
    }

    /* concurrent use: 4 threads, voices alternating */
    if (open[0] && open[1] && nl >= 200) {
        const json_t *ph = json_object_get(g, "phonemes");
        job jobs[4];
        pthread_t th[4];
        for (int k = 0; k < 4; k++) {
            jobs[k] = (job){{open[0], open[1]}, lines, {json_object_get(ph, "en-us"), json_object_get(ph, "en-gb")},
                            (size_t)k * 50, 50, 0};
            CHECK(pthread_create(&th[k], NULL, run_job, &jobs[k]) == 0);
        }
        for (int k = 0; k < 4; k++) {
            pthread_join(th[k], NULL);
            CHECK_MSG(jobs[k].bad == 0, "thread %d: %d lines differ", k, jobs[k].bad);
        }
    }

    /* errors and edges */
    {
        mt_g2p *h = open[0], *x = NULL;
        char *p = NULL;
        static const char *bad[] = {"\xff", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                    "ok \xe2\x82", "\x80x"};
        for (size_t i = 0; h && i < sizeof bad / sizeof bad[0]; i++) {
            CHECK_EQ_INT(mt_g2p_phonemize(h, bad[i], strlen(bad[i]), &p, NULL, &err), MT_EINVAL);
            CHECK(p == NULL && strstr(err.msg, "UTF-8") != NULL);
        }
        if (h) {
            CHECK_OK(mt_g2p_phonemize(h, NULL, 0, &p, NULL, &err), &err);
            CHECK_STR(p, "");
            free(p);
            p = NULL;
            CHECK_EQ_INT(mt_g2p_phonemize(h, "x", MT_G2P_MAX_TEXT + 1, &p, NULL, &err), MT_ELIMIT);
            CHECK_STR(mt_g2p_voice(h), "gmw/en-US");
        }
        CHECK_EQ_INT(mt_g2p_open("xx-nonexistent", &x, &err), MT_ENOTFOUND);
        CHECK(x == NULL);
        CHECK_EQ_INT(mt_g2p_open("", &x, &err), MT_EINVAL);
        mt_g2p_chunks c;
        CHECK_EQ_INT(mt_g2p_split("a b", 3, 0, &c, &err), MT_EINVAL);
        CHECK_EQ_INT(mt_g2p_split("a\xff", 2, 5, &c, &err), MT_EINVAL);
        CHECK(c.n == 0 && c.s == NULL);
        CHECK_OK(mt_g2p_split("", 0, 5, &c, &err), &err);
        CHECK(c.n == 0);
        mt_g2p_chunks_free(&c);
        mt_g2p_chunks_free(NULL);
        mt_g2p_free(NULL);
        CHECK_EQ_INT(mt_g2p_vocab_id(' '), 16);
        CHECK_EQ_INT(mt_g2p_vocab_id(0x02C8), 156);
        CHECK_EQ_INT(mt_g2p_vocab_id('g'), -1);
        CHECK_EQ_INT(mt_g2p_vocab_id(0x1D7B), 177);
    }
    printf("g2p: %d of %d corpus lines identical to kokoro-onnx\n", n_same, n_lines);
    for (size_t i = 0; i < nn; i++) mt_g2p_free(open[i]);
    for (size_t i = 0; i < nl; i++) free(lines[i]);
    json_decref(g);
    return check_report("g2p");
}
