/* test_tokenizer.c - exactness of lib/text/tokenizer against Hugging Face
 * `tokenizers` goldens (tests/gen/gen_tokenizer_goldens.py): ids with and
 * without special tokens, decode with/without skip_special, streaming
 * detokenizer == decode; malformed tokenizer.json is rejected; concurrent
 * encodes agree. Prints the mismatch counts per tokenizer. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/file.h"
#include "text/tokenizer.h"

#define DIR "tests/data/tokenizers/"
/* MT_TOK_DATA=dir/ overrides the golden data directory (stress runs) */
static const char *data_dir(void) {
    const char *d = getenv("MT_TOK_DATA");
    return d && *d ? d : DIR;
}

static const char *const NAMES[] = {"qwen3", "llama3_1", "deepseek_v3", "gptoss", "llama2", "gemma3", "minilm", "xlmr",
                                    "synth_wordlevel", "synth_metaspace", "synth_gpt2"};

typedef struct { char **s; size_t *n; size_t count; } corpus_t;

static int load_corpus(corpus_t *c) {
    char *buf; size_t len; mt_err e = {0};
    char cp[512];
    snprintf(cp, sizeof cp, "%s/corpus.txt", data_dir());
    if (mt_read_file(cp, &buf, &len, &e)) { fprintf(stderr, "%s\n", e.msg); return -1; }
    size_t cap = 4096;
    c->s = malloc(cap * sizeof *c->s); c->n = malloc(cap * sizeof *c->n); c->count = 0;
    char *p = buf, *end = buf + len;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        json_error_t je;
        json_t *j = json_loadb(p, (size_t)(nl - p), JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (!json_is_string(j)) { json_decref(j); free(buf); return -1; }
        if (c->count == cap) { cap *= 2; c->s = realloc(c->s, cap * sizeof *c->s); c->n = realloc(c->n, cap * sizeof *c->n); }
        size_t n = json_string_length(j);
        c->s[c->count] = malloc(n + 1);
        memcpy(c->s[c->count], json_string_value(j), n + 1);
        c->n[c->count++] = n;
        json_decref(j);
        p = nl + 1;
    }
    free(buf);
    return 0;
}

static int ids_equal(json_t *arr, const int32_t *ids, size_t n) {
    if (!json_is_array(arr) || json_array_size(arr) != n) return 0;
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(arr, i)) != ids[i]) return 0;
    return 1;
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

/* returns 1 if streaming output equals want */
static int stream_ok(const mt_tokenizer *t, const int32_t *ids, size_t n, int skip, const char *want, size_t wantn) {
    mt_detok *d; mt_err e = {0};
    if (mt_detok_new(&d, t, skip, &e)) return 0;
    char *acc = malloc(wantn + 64); size_t an = 0, cap = wantn + 64;
    int ok = 1;
    for (size_t i = 0; i <= n && ok; i++) {
        char *p; size_t pl;
        int rc = i < n ? mt_detok_push(d, ids[i], &p, &pl, &e) : mt_detok_flush(d, &p, &pl, &e);
        if (rc) { ok = 0; break; }
        if (an + pl + 1 > cap) { cap = (an + pl + 1) * 2; acc = realloc(acc, cap); }
        memcpy(acc + an, p, pl); an += pl;
        free(p);
    }
    if (ok) ok = an == wantn && memcmp(acc, want, an) == 0;
    free(acc);
    mt_detok_free(d);
    return ok;
}

static size_t total_mismatch;

static void run_golden(const char *name, const corpus_t *c) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/tokenizer.json.zst", data_dir(), name);
    if (!mt_file_exists(path)) { fprintf(stderr, "tokenizer %s: missing %s\n", name, path); CHECK(0); return; }
    mt_tokenizer *t = NULL; mt_err e = {0};
    CHECK_OK(mt_tokenizer_load(&t, path, &e), &e);
    if (!t) return;
    snprintf(path, sizeof path, "%s/%s/golden.jsonl.zst", data_dir(), name);
    char *g; size_t gl;
    CHECK_OK(mt_read_file(path, &g, &gl, &e), &e);
    if (e.code) { mt_tokenizer_free(t); return; }
    size_t cases = 0, bad_ids = 0, bad_raw = 0, bad_dec = 0, bad_decs = 0, bad_stream = 0, shown = 0;
    char *p = g, *end = g + gl;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        if (nl == p) { p = nl + 1; continue; }
        json_error_t je;
        json_t *rec = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, &je);
        p = nl + 1;
        if (!rec) { CHECK_MSG(0, "%s: bad golden line: %s", name, je.text); continue; }
        const char *text; size_t tn;
        json_t *ji = json_object_get(rec, "i");
        if (json_is_integer(ji)) {
            size_t i = (size_t)json_integer_value(ji);
            if (i >= c->count) { json_decref(rec); CHECK(0); continue; }
            text = c->s[i]; tn = c->n[i];
        } else {
            json_t *jt = json_object_get(rec, "text");
            text = json_string_value(jt); tn = json_string_length(jt);
        }
        cases++;
        int32_t *ids = NULL; size_t n = 0;
        int rc = mt_tokenizer_encode(t, text, tn, 1, &ids, &n, &e);
        if (rc || !ids_equal(json_object_get(rec, "ids"), ids, n)) {
            bad_ids++;
            if (shown++ < 5) {
                fprintf(stderr, "%s: id mismatch on %s\n", name, json_dumps(json_string(text), JSON_ENCODE_ANY | JSON_ALLOW_NUL));
                print_ids("ours", ids, n);
                json_t *w = json_object_get(rec, "ids");
                fprintf(stderr, "  want:");
                for (size_t i = 0; i < json_array_size(w) && i < 40; i++) fprintf(stderr, " %lld", json_integer_value(json_array_get(w, i)));
                fprintf(stderr, "\n");
            }
        }
        json_t *raw = json_object_get(rec, "raw");
        if (raw) {
            int32_t *r2 = NULL; size_t n2 = 0;
            rc = mt_tokenizer_encode(t, text, tn, 0, &r2, &n2, &e);
            if (rc || !ids_equal(raw, r2, n2)) bad_raw++;
            free(r2);
        }
        /* decode the golden ids (not ours) so decode is checked independently */
        json_t *gids = json_object_get(rec, "ids");
        size_t gn = json_array_size(gids);
        int32_t *gv = malloc((gn ? gn : 1) * sizeof *gv);
        for (size_t i = 0; i < gn; i++) gv[i] = (int32_t)json_integer_value(json_array_get(gids, i));
        for (int skip = 0; skip < 2; skip++) {
            json_t *want = json_object_get(rec, skip ? "ds" : "d");
            char *out = NULL; size_t ol = 0;
            rc = mt_tokenizer_decode(t, gv, gn, skip, &out, &ol, &e);
            int ok = !rc && json_is_string(want) && ol == json_string_length(want) &&
                     memcmp(out, json_string_value(want), ol) == 0;
            if (!ok) {
                if (skip) bad_decs++; else bad_dec++;
                if (shown++ < 5) fprintf(stderr, "%s: decode(skip=%d) mismatch: ours [%s] want [%s]\n", name, skip, out ? out : "(null)", json_string_value(want));
            }
            if (!rc && (skip == 0 || cases % 8 == 0) && !stream_ok(t, gv, gn, skip, out, ol)) {
                bad_stream++;
                if (shown++ < 5) fprintf(stderr, "%s: stream mismatch (skip=%d) for [%s]\n", name, skip, out);
            }
            free(out);
        }
        free(gv);
        free(ids);
        json_decref(rec);
    }
    free(g);
    printf("tokenizer %-12s cases %5zu  id mismatches %zu  no-special id mismatches %zu  decode mismatches %zu/%zu  stream mismatches %zu\n",
           name, cases, bad_ids, bad_raw, bad_dec, bad_decs, bad_stream);
    CHECK(cases > 2000 || getenv("MT_TOK_DATA"));
    CHECK_EQ_INT(bad_ids, 0);
    CHECK_EQ_INT(bad_raw, 0);
    CHECK_EQ_INT(bad_dec, 0);
    CHECK_EQ_INT(bad_decs, 0);
    CHECK_EQ_INT(bad_stream, 0);
    total_mismatch += bad_ids + bad_raw;
    mt_tokenizer_free(t);
}

static void test_malformed(void) {
    static const char *const bad[] = {
        "", "{", "[]", "null", "{}", "{\"model\": 5}", "{\"model\": {\"type\": \"BPE\", \"vocab\": []}}",
        "{\"model\": {\"type\": \"Nope\"}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -3}, \"merges\": []}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"}, \"behavior\": \"Isolated\"}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": \"Weird\"}}",
        "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\"]]}}",
        "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}, \"unk_token\": \"[UNK]\"}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"added_tokens\": [{\"id\": \"x\"}]}",
        "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}, \"normalizer\": {\"type\": \"Precompiled\", \"precompiled_charsmap\": \"AAAA\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mt_tokenizer *t = (mt_tokenizer *)1; mt_err e = {0};
        int rc = mt_tokenizer_load_mem(&t, bad[i], strlen(bad[i]), &e);
        CHECK_MSG(rc != 0 && t == NULL && e.msg[0], "malformed #%zu accepted", i);
    }
    mt_tokenizer *t = NULL; mt_err e = {0};
    CHECK(mt_tokenizer_load(&t, DIR "does_not_exist.json", &e) != 0 && t == NULL);
    /* a tiny valid BPE: ids and decode */
    const char *ok = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"<unk>\": 3},"
                     " \"merges\": [\"a b\"], \"unk_token\": \"<unk>\"},"
                     " \"added_tokens\": [{\"id\": 4, \"content\": \"<x>\", \"special\": true, \"normalized\": false}]}";
    CHECK_OK(mt_tokenizer_load_mem(&t, ok, strlen(ok), &e), &e);
    if (t) {
        int32_t *ids; size_t n;
        CHECK_OK(mt_tokenizer_encode(t, "abz<x>a", 7, 1, &ids, &n, &e), &e);
        CHECK_EQ_INT(n, 4);
        if (n == 4) { CHECK_EQ_INT(ids[0], 2); CHECK_EQ_INT(ids[1], 3); CHECK_EQ_INT(ids[2], 4); CHECK_EQ_INT(ids[3], 0); }
        free(ids);
        CHECK_EQ_INT(mt_tokenizer_vocab_size(t), 5);
        CHECK_EQ_INT(mt_tokenizer_token_to_id(t, "<x>"), 4);
        CHECK_EQ_INT(mt_tokenizer_token_to_id(t, "zz"), -1);
        CHECK_STR(mt_tokenizer_id_to_token(t, 2), "ab");
        CHECK(mt_tokenizer_id_to_token(t, 99) == NULL);
        CHECK(mt_tokenizer_is_special(t, 4) && !mt_tokenizer_is_special(t, 0));
        mt_tokenizer_free(t);
    }
}

/* An id far beyond what the file defines (1e9 in a file of a few tokens) is refused at
 * load, naming the token and the id, instead of sizing the id tables by it (gigabytes). */
static void test_id_bounds(void) {
    static const struct { const char *doc, *want; } bad[] = {
        /* added token: jansson path */
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": []},"
         " \"added_tokens\": [{\"id\": 1000000000, \"content\": \"<big>\", \"special\": true}]}",
         "added token '<big>' has id 1000000000"},
        /* vocab entry written 1e9: the direct vocab scanner */
        {"{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"huge\": 1e9}, \"merges\": []}}",
         "vocab token 'huge' has id 1000000000"},
        /* vocab entry after the merges (read through jansson) */
        {"{\"model\": {\"type\": \"WordLevel\", \"merges\": [], \"vocab\": {\"a\": 0, \"huge\": 1000000000},"
         " \"unk_token\": \"a\"}}",
         "vocab token 'huge' has id 1000000000"},
        {"{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0, \"x\": 2000000}, \"unk_token\": \"[UNK]\"}}",
         "vocab token 'x' has id 2000000"},
        /* an added token with empty content is still an id */
        {"{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]},"
         " \"added_tokens\": [{\"id\": 1000000000, \"content\": \"\"}]}",
         "has id 1000000000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mt_tokenizer *t = (mt_tokenizer *)1; mt_err e = {0};
        int rc = mt_tokenizer_load_mem(&t, bad[i].doc, strlen(bad[i].doc), &e);
        CHECK_MSG(rc == MT_EFORMAT && t == NULL, "id bound #%zu: rc %d (%s)", i, rc, e.msg);
        CHECK_MSG(strstr(e.msg, bad[i].want) && strstr(e.msg, "ids below"), "id bound #%zu: '%s'", i, e.msg);
    }
    /* within the bound: sparse ids (a hole before the added tokens) still load */
    const char *ok = "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 5}, \"merges\": []},"
                     " \"added_tokens\": [{\"id\": 1000, \"content\": \"<x>\", \"special\": true}]}";
    mt_tokenizer *t = NULL; mt_err e = {0};
    CHECK_OK(mt_tokenizer_load_mem(&t, ok, strlen(ok), &e), &e);
    if (t) {
        CHECK_EQ_INT(mt_tokenizer_vocab_size(t), 1001);
        CHECK_EQ_INT(mt_tokenizer_token_to_id(t, "<x>"), 1000);
        mt_tokenizer_free(t);
    }
}

/* the fuzz seeds must load; ids as produced by HF tokenizers 0.23.3 for the same string */
static void test_seeds(void) {
    static const char text[] = "Hello  world!\n<s>[CLS] caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 123 \xF0\x9F\x98\x80 <|im_start|>x";
    static const struct { const char *file; int32_t ids[32]; size_t n; } seeds[] = {
        {"bpe_bytelevel.json", {4, 5, 3, 3, 2, 6}, 6},
        {"spm_bpe.json", {1, 5, 4, 0, 2, 2, 0, 1, 2, 0, 2, 7, 8, 0, 2, 0, 2, 0, 2, 0, 2, 0}, 22},
        {"wordpiece.json", {1, 3, 4, 5, 0, 0, 0, 1, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 23},
    };
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        char path[512];
        snprintf(path, sizeof path, "tests/fuzz/seeds/tokenizer/%s", seeds[k].file);
        mt_tokenizer *t = NULL; mt_err e = {0};
        CHECK_OK(mt_tokenizer_load(&t, path, &e), &e);
        if (!t) continue;
        int32_t *ids = NULL; size_t n = 0;
        CHECK_OK(mt_tokenizer_encode(t, text, sizeof text - 1, 1, &ids, &n, &e), &e);
        CHECK_MSG(n == seeds[k].n && memcmp(ids, seeds[k].ids, n * sizeof *ids) == 0, "seed %s ids differ", seeds[k].file);
        free(ids);
        mt_tokenizer_free(t);
    }
}

typedef struct { const mt_tokenizer *t; const corpus_t *c; size_t from, step; unsigned long long sum; } thr_t;
static void *thr_main(void *arg) {
    thr_t *a = arg;
    mt_err e = {0};
    for (size_t i = a->from; i < a->c->count; i += a->step) {
        int32_t *ids; size_t n;
        if (mt_tokenizer_encode(a->t, a->c->s[i], a->c->n[i], 1, &ids, &n, &e)) { a->sum = 0; return NULL; }
        for (size_t k = 0; k < n; k++) a->sum = a->sum * 31 + (unsigned)ids[k] + i;
        free(ids);
    }
    return NULL;
}

static void test_threads(const corpus_t *c) {
    mt_tokenizer *t = NULL; mt_err e = {0};
    CHECK_OK(mt_tokenizer_load(&t, DIR "qwen3/tokenizer.json.zst", &e), &e);
    if (!t) return;
    thr_t one = {t, c, 0, 3, 0}, par[3];
    thr_main(&one);
    thr_t one_b = {t, c, 1, 3, 0}, one_c = {t, c, 2, 3, 0};
    thr_main(&one_b); thr_main(&one_c);
    pthread_t th[3];
    for (int k = 0; k < 3; k++) { par[k] = (thr_t){t, c, (size_t)k, 3, 0}; pthread_create(&th[k], NULL, thr_main, &par[k]); }
    for (int k = 0; k < 3; k++) pthread_join(th[k], NULL);
    CHECK(par[0].sum == one.sum && par[1].sum == one_b.sum && par[2].sum == one_c.sum && one.sum != 0);
    mt_tokenizer_free(t);
}

int main(int argc, char **argv) {
    corpus_t c = {0};
    CHECK(load_corpus(&c) == 0);
    CHECK(c.count >= 2000 || getenv("MT_TOK_DATA"));
    test_malformed();
    test_id_bounds();
    test_seeds();
    if (argc > 1) {
        for (int i = 1; i < argc; i++) run_golden(argv[i], &c);
    } else {
        for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) run_golden(NAMES[i], &c);
        test_threads(&c);
    }
    printf("tokenizer: total id mismatches %zu\n", total_mismatch);
    for (size_t i = 0; i < c.count; i++) free(c.s[i]);
    free(c.s); free(c.n);
    return check_report("tokenizer");
}
