/* fuzz_gbnf.c - libFuzzer target: GBNF grammar parsing (lib/gen/grammar.c), then the
 * byte-level matcher (lib/gen/grammar_match.c) over a few texts, including the input's
 * own bytes, and the token-level constraint (lib/gen/constrain.c) over a small built-in
 * vocabulary: a walk of allowed tokens (chosen from the input's hash), with mask, allows()
 * and accept() checked against each other, for every grammar that parses. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/constrain.h"
#include "gen/grammar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* a WordLevel vocabulary (no decoder: a token's bytes are its string): every printable
 * ASCII character, some whitespace, a few words and multi-byte characters, and <eos> */
static mt_tokenizer *small_vocab(void) {
    static const char *const words[] = {"\\n", "\\t", "\\r", "  ", "{\\\"", "\\\": ", "\\\", ", "true", "null",
                                        "false", "12", "0.5", "\\u00e9", "\\u4e2d", "\\ud83d\\ude00", "ab", "abc", "yes",
                                        "no", "maybe", "- ", "\\\\u", "]}"};
    char *j = malloc(16384);
    if (!j) return NULL;
    size_t n = 0, id = 0;
    n += (size_t)snprintf(j + n, 16384 - n,
                          "{\"added_tokens\":[{\"id\":0,\"content\":\"<eos>\",\"single_word\":false,\"lstrip\":false,"
                          "\"rstrip\":false,\"normalized\":false,\"special\":true}],\"model\":{\"type\":\"WordLevel\","
                          "\"unk_token\":\"<eos>\",\"vocab\":{\"<eos>\":0");
    id = 1;
    for (int c = 0x20; c < 0x7F; c++) {
        if (c == '"' || c == '\\') n += (size_t)snprintf(j + n, 16384 - n, ",\"\\%c\":%zu", c, id++);
        else n += (size_t)snprintf(j + n, 16384 - n, ",\"%c\":%zu", c, id++);
    }
    for (size_t k = 0; k < sizeof words / sizeof *words; k++)
        n += (size_t)snprintf(j + n, 16384 - n, ",\"%s\":%zu", words[k], id++);
    n += (size_t)snprintf(j + n, 16384 - n, "}}}");
    mt_tokenizer *t = NULL;
    mt_err err;
    if (mt_tokenizer_load_mem(&t, j, n, &err) != MT_OK) t = NULL;
    free(j);
    return t;
}

static void walk(const mt_grammar *g, const uint8_t *data, size_t size) {
    mt_err err;
    mt_tokenizer *tok = small_vocab();
    mt_tokvocab *v = NULL;
    mt_grammar_tokens *gt = NULL;
    mt_constraint *c = NULL;
    int32_t eos = 0;
    if (!tok) abort();                         /* the built-in vocabulary must load */
    size_t V = mt_tokenizer_vocab_size(tok) + 3;
    float *l = malloc(V * sizeof *l);
    int32_t *ok = malloc(V * sizeof *ok);
    uint64_t h = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 0x100000001b3ULL;
    if (!l || !ok || mt_tokvocab_new(&v, tok, V, &eos, 1, &err) || mt_grammar_tokens_new(&gt, g, v, &err) ||
        mt_constraint_new(&c, gt, &err))
        goto out;
    mt_grammar_tokens_set_cache(gt, 1 << 16);
    for (int step = 0; step < 24; step++) {
        for (size_t t = 0; t < V; t++) l[t] = 0.0f;
        if (mt_constraint_mask(c, l, V, &err) != MT_OK) break;
        size_t nok = 0;
        for (size_t t = 0; t < V; t++) {
            int a = !isinf(l[t]);
            if (a != mt_constraint_allows(c, (int32_t)t)) abort();
            if (a) ok[nok++] = (int32_t)t;
        }
        if ((l[eos] == 0.0f) != (mt_constraint_can_end(c) != 0)) abort();
        if (!nok) abort();                     /* mask said MT_OK: something is allowed */
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
        int32_t t = ok[(h >> 33) % nok];
        mt_constraint *d = NULL;
        if (mt_constraint_copy(&d, c, &err) == MT_OK) {
            int32_t bad = (int32_t)((h >> 13) % V);
            int rc = mt_constraint_accept(d, bad, &err);
            if ((rc == MT_OK) != !isinf(l[bad]) && rc != MT_ELIMIT) abort();
            mt_constraint_free(d);
        }
        if (mt_constraint_accept(c, t, &err) != MT_OK) abort();
        if (t == eos) break;
    }
out:
    mt_constraint_free(c);
    mt_grammar_tokens_free(gt);
    mt_tokvocab_free(v);
    mt_tokenizer_free(tok);
    free(l); free(ok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_err err;
    mt_grammar *g = NULL;
    if (mt_grammar_parse(&g, (const char *)data, size, NULL, &err) != MT_OK) return 0;
    static const char *const texts[] = {"", "a", "hello", "{\"a\": [1, 2.5, true, null]}", "caf\xc3\xa9 \xe2\x82",
                                        "((((x))))", "0123456789", "\xf0\x9f\x98\x80\xff"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) mt_grammar_match(g, texts[i], strlen(texts[i]));
    mt_grammar_match(g, (const char *)data, size > 256 ? 256 : size);
    walk(g, data, size);
    mt_grammar_free(g);
    return 0;
}
