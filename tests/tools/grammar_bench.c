/* grammar_bench - the cost of grammar-constrained decoding per token (gen/constrain.h):
 *   grammar_bench TOKENIZER.json [GRAMMAR.gbnf DOC]
 * Builds the token vocabulary, then replays DOC's tokens (the tokenizer's encoding of it)
 * through a constraint: mask over the whole vocabulary, then accept, token by token.  The
 * first pass starts with an empty mask cache (misses), the second reuses it (hits).
 * Without GRAMMAR and DOC, a small-object JSON grammar and a document of it are used.
 * Prints one line per figure (milliseconds). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"
#include "gen/constrain.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *OBJ_GBNF =
    "root    ::= \"{\" ( ws \"\\\"name\\\"\" ws \":\" ws string \",\" ws \"\\\"age\\\"\" ws \":\" ws integer \",\" ws\n"
    "            \"\\\"email\\\"\" ws \":\" ws string \",\" ws \"\\\"tags\\\"\" ws \":\" ws\n"
    "            \"[\" ws (string (ws \",\" ws string)*)? ws \"]\" ws ) \"}\"\n"
    "string  ::= \"\\\"\" ( [^\"\\\\\\x00-\\x1f] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4}) )* \"\\\"\"\n"
    "integer ::= \"-\"? (\"0\" | [1-9] [0-9]{0,15})\n"
    "ws      ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";
static const char *OBJ_DOC =
    "{\n  \"name\": \"Ada Lovelace, Countess of Lovelace\",\n  \"age\": 36,\n"
    "  \"email\": \"ada@analytical-engine.example.org\",\n"
    "  \"tags\": [\"mathematics\", \"poetical science\", \"Bernoulli numbers\", \"Note G\", \"caf\xc3\xa9\"]\n}";

static int pass(mt_grammar_tokens *gt, const int32_t *ids, size_t n, float *logits, size_t V, double *tot, double *mx,
                const char *label) {
    mt_err err = {0};
    mt_constraint *c = NULL;
    if (mt_constraint_new(&c, gt, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    *tot = 0; *mx = 0;
    for (size_t i = 0; i <= n; i++) {
        for (size_t t = 0; t < V; t++) logits[t] = 0.0f;
        double t0 = now_ms();
        int rc = mt_constraint_mask(c, logits, V, &err);
        int32_t id = i < n ? ids[i] : -1;
        if (!rc && i < n) rc = mt_constraint_accept(c, id, &err);
        double dt = now_ms() - t0;
        if (rc) { fprintf(stderr, "%s: token %zu: %s\n", label, i, err.msg); mt_constraint_free(c); return 1; }
        if (i < n && isinf(logits[id])) {
            fprintf(stderr, "%s: token %zu masked\n", label, i);
            mt_constraint_free(c);
            return 1;
        }
        *tot += dt;
        if (dt > *mx) *mx = dt;
    }
    if (!mt_constraint_can_end(c)) { fprintf(stderr, "%s: document incomplete\n", label); mt_constraint_free(c); return 1; }
    mt_constraint_free(c);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 4) {
        fprintf(stderr, "usage: grammar_bench TOKENIZER.json [GRAMMAR.gbnf DOC]\n");
        return 2;
    }
    mt_err err = {0};
    char *gsrc = NULL, *doc = NULL;
    size_t gn, dn;
    if (argc == 4) {
        if (mt_read_file(argv[2], &gsrc, &gn, &err) || mt_read_file(argv[3], &doc, &dn, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
    } else {
        gsrc = strdup(OBJ_GBNF); gn = strlen(gsrc);
        doc = strdup(OBJ_DOC); dn = strlen(doc);
    }
    mt_tokenizer *tok = NULL;
    double t0 = now_ms();
    if (mt_tokenizer_load(&tok, argv[1], &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    double t1 = now_ms();
    const char *eos_names[] = {"<|endoftext|>", "<|im_end|>", "<eos>", "</s>"};
    int32_t eos[4]; size_t neos = 0;
    for (size_t i = 0; i < 4; i++) {
        int32_t id = mt_tokenizer_token_to_id(tok, eos_names[i]);
        if (id >= 0) eos[neos++] = id;
    }
    size_t V = mt_tokenizer_vocab_size(tok);
    mt_tokvocab *v = NULL;
    if (mt_tokvocab_new(&v, tok, V, eos, neos, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    double t2 = now_ms();
    int32_t *ids = NULL;
    size_t n = 0;
    if (mt_tokenizer_encode(tok, doc, dn, 0, &ids, &n, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    mt_grammar *g = NULL;
    if (mt_grammar_parse(&g, gsrc, gn, NULL, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    if (!mt_grammar_match(g, doc, dn)) { fprintf(stderr, "the document does not match the grammar\n"); return 1; }
    mt_grammar_tokens *gt = NULL;
    if (mt_grammar_tokens_new(&gt, g, v, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    float *logits = malloc(V * sizeof *logits);
    double cold, cold_max, warm, warm_max;
    if (pass(gt, ids, n, logits, V, &cold, &cold_max, "cold") || pass(gt, ids, n, logits, V, &warm, &warm_max, "warm"))
        return 1;
    mt_grammar_tokens_stats st;
    mt_grammar_tokens_stats_get(gt, &st);
    /* one miss and one hit in isolation: the initial state, cache emptied */
    mt_grammar_tokens *gt2 = NULL;
    mt_constraint *c = NULL;
    if (mt_grammar_tokens_new(&gt2, g, v, &err) || mt_constraint_new(&c, gt2, &err)) return 1;
    double a = now_ms();
    mt_constraint_mask(c, logits, V, &err);
    double b = now_ms();
    int reps = 200;
    for (int i = 0; i < reps; i++) mt_constraint_mask(c, logits, V, &err);
    double e = now_ms();
    mt_constraint_free(c);
    printf("vocabulary: %zu tokens, tokenizer load %.1f ms, token bytes + trie %.1f ms\n", V, t1 - t0, t2 - t1);
    printf("grammar: %zu rules, %zu elements; document %zu bytes, %zu tokens\n", mt_grammar_nrules(g),
           mt_grammar_nelems(g), dn, n);
    printf("first mask (miss, initial state): %.3f ms; same mask from the cache: %.4f ms\n", b - a, (e - b) / reps);
    printf("pass 1 (cache cold): %.3f ms per token (mask + accept), max %.3f ms, total %.1f ms\n", cold / (n + 1),
           cold_max, cold);
    printf("pass 2 (cache warm): %.3f ms per token (mask + accept), max %.3f ms, total %.1f ms\n", warm / (n + 1),
           warm_max, warm);
    printf("cache: %llu misses (%llu with a shared part), %llu hits, %llu trie nodes visited (%.0f per miss), "
           "%llu matcher steps, %zu entries, %.1f MiB\n", (unsigned long long)st.misses, (unsigned long long)st.shared,
           (unsigned long long)st.hits, (unsigned long long)st.nodes, st.misses ? (double)st.nodes / st.misses : 0.0,
           (unsigned long long)st.steps, st.entries, st.bytes / 1048576.0);
    mt_grammar_tokens_free(gt2);
    mt_grammar_tokens_free(gt);
    mt_grammar_free(g);
    mt_tokvocab_free(v);
    mt_tokenizer_free(tok);
    free(ids); free(logits); free(gsrc); free(doc);
    return 0;
}
