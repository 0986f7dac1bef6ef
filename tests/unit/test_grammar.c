/* test_grammar.c - GBNF grammars (gen/grammar.h): parse errors with line:column,
 * match / no-match tables over many grammars (literals, escapes, classes, negation,
 * UTF-8, quantifiers, nested rules, a JSON grammar with valid and invalid documents),
 * and the token-level constraint (gen/constrain.h) over a byte-level BPE vocabulary
 * (tinydocs) and a SentencePiece one (Gemma 3): random walks that choose only allowed
 * tokens always yield matching text, mask == allows(), and allowed / disallowed
 * tokens checked against the byte matcher. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gen/grammar.h"
#include "gen/constrain.h"
#include "text/tokenizer.h"

/* ---- parse errors ---- */
static void expect_error(const char *src, int code, const char *where, const char *what) {
    mt_grammar *g = NULL;
    mt_err err = {0};
    int rc = mt_grammar_parse(&g, src, strlen(src), NULL, &err);
    CHECK_MSG(rc == code, "%s: rc %d (want %d) msg '%s'", src, rc, code, err.msg);
    CHECK_MSG(g == NULL, "%s: grammar returned on error", src);
    if (where) CHECK_MSG(strstr(err.msg, where) != NULL, "%s: '%s' lacks '%s'", src, err.msg, where);
    if (what) CHECK_MSG(strstr(err.msg, what) != NULL, "%s: '%s' lacks '%s'", src, err.msg, what);
    mt_grammar_free(g);
}

static void test_errors(void) {
    expect_error("root ::= foo\n", MT_EINVAL, "line 1:10", "undefined rule 'foo'");
    expect_error("root ::= \"a\"\nx ::= \"b\" y\n", MT_EINVAL, "line 2:11", "undefined rule 'y'");
    expect_error("start ::= \"a\"\n", MT_EINVAL, NULL, "no rule named 'root'");
    expect_error("root ::= \"abc\n", MT_EINVAL, "line 1:10", "unterminated string");
    expect_error("root ::= [abc\n", MT_EINVAL, "line 1:10", "unterminated character class");
    expect_error("root ::= (\"a\" | \"b\"\n", MT_EINVAL, "line 1:10", "unclosed '('");
    expect_error("root ::= \"a\"\n  \nx y ::= \"b\"\n", MT_EINVAL, "line 3:3", "expected '::='");
    expect_error("root ::= * \"a\"\n", MT_EINVAL, "line 1:10", "quantifier without");
    expect_error("root ::= \"a\"{3,1}\n", MT_EINVAL, "line 1:13", "n < m");
    expect_error("root ::= \"a\"{2\n", MT_EINVAL, "line 1:13", "expected '}'");
    expect_error("root ::= \"\\q\"\n", MT_EINVAL, "line 1:11", "unknown escape");
    expect_error("root ::= \"\\x4\"\n", MT_EINVAL, "line 1:11", "hexadecimal");
    expect_error("root ::= [z-a]\n", MT_EINVAL, "line 1:11", "out of order");
    expect_error("root ::= root \"a\" | \"b\"\n", MT_EINVAL, "line 1:1", "left-recursive");
    expect_error("root ::= x\nx ::= y \"a\"\ny ::= \"\" | x\n", MT_EINVAL, "line ", "left-recursive");
    expect_error("root ::= opt root \"b\" | \"c\"\nopt ::= \"a\"?\n", MT_EINVAL, "line 1:1", "left-recursive");
    expect_error("root ::= (\"a\"?)*\n", MT_EINVAL, "line 1:10", "without consuming input");
    expect_error("root ::= \"a\"\nroot ::= \"b\"\n", MT_EINVAL, "line 2:1", "defined twice");
    expect_error("root ::= \"a\" )\n", MT_EINVAL, "line 1:14", "unexpected ')'");
    expect_error("root ::= \"a\"{20000}\n", MT_ELIMIT, "line 1:14", "over 10000");
    expect_error("::= \"a\"\n", MT_EINVAL, "line 1:1", "expected a rule name");
    expect_error("root ::= \"\xff\"\n", MT_EINVAL, "line 1:11", "invalid UTF-8");
    /* a named start rule */
    mt_grammar *g = NULL;
    mt_err err = {0};
    const char *src = "doc ::= \"x\"\n";
    CHECK_OK(mt_grammar_parse(&g, src, strlen(src), "doc", &err), &err);
    CHECK(g && mt_grammar_match(g, "x", 1));
    mt_grammar_free(g);
}

/* ---- match tables ---- */
typedef struct { const char *text; int ok; } mcase;

static void match_table(const char *src, const mcase *cases) {
    mt_grammar *g = NULL;
    mt_err err = {0};
    int rc = mt_grammar_parse(&g, src, strlen(src), NULL, &err);
    CHECK_MSG(rc == MT_OK, "parse '%s': %s", src, err.msg);
    if (rc) return;
    for (const mcase *c = cases; c->text; c++) {
        int m = mt_grammar_match(g, c->text, strlen(c->text));
        CHECK_MSG(m == c->ok, "grammar '%s' on \"%s\": %d, want %d", src, c->text, m, c->ok);
    }
    mt_grammar_free(g);
}

static const char *JSON_GBNF =
    "# JSON (RFC 8259) with bounded whitespace\n"
    "root   ::= ws value ws\n"
    "value  ::= object | array | string | number | (\"true\" | \"false\" | \"null\")\n"
    "object ::=\n"
    "  \"{\" ws (\n"
    "            string ws \":\" ws value\n"
    "    (ws \",\" ws string ws \":\" ws value)*\n"
    "  )? ws \"}\"\n"
    "array  ::= \"[\" ws ( value (ws \",\" ws value)* )? ws \"]\"\n"
    "string ::= \"\\\"\" ( [^\"\\\\\\x00-\\x1f] | \"\\\\\" ([\"\\\\/bfnrt] | \"u\" [0-9a-fA-F]{4}) )* \"\\\"\"\n"
    "number ::= \"-\"? (\"0\" | [1-9] [0-9]{0,15}) (\".\" [0-9]+)? ([eE] [-+]? [0-9]+)?\n"
    "ws     ::= | \" \" | \"\\n\" [ \\t]{0,20}\n";

static void test_match(void) {
    match_table("root ::= \"hello\"", (mcase[]){{"hello", 1}, {"hell", 0}, {"hello!", 0}, {"", 0}, {NULL, 0}});
    match_table("root ::= \"a\" \"b\" | \"c\"\n",
                (mcase[]){{"ab", 1}, {"c", 1}, {"a", 0}, {"abc", 0}, {"ac", 0}, {NULL, 0}});
    match_table("root ::= \"\\n\\t\\r\\\\\\\"\\x41\\u00e9\\U0001F600\"",
                (mcase[]){{"\n\t\r\\\"A\xc3\xa9\xf0\x9f\x98\x80", 1}, {"\n\t\r\\\"A\xc3\xa9", 0}, {NULL, 0}});
    match_table("root ::= [a-c0-9_]+",
                (mcase[]){{"abc", 1}, {"a0_9", 1}, {"d", 0}, {"", 0}, {"ab-", 0}, {NULL, 0}});
    match_table("root ::= [^a-c\\n]*",
                (mcase[]){{"", 1}, {"xyz", 1}, {"xa", 0}, {"\xc3\xa9\xe4\xb8\xad", 1}, {"x\n", 0}, {NULL, 0}});
    match_table("root ::= [\\u00e0-\\u00ff]{2} \"-\" [\xe4\xb8\x80-\xe9\xbf\xbf]",
                (mcase[]){{"\xc3\xa0\xc3\xbf-\xe4\xb8\xad", 1}, {"\xc3\xa0-\xe4\xb8\xad", 0},
                          {"\xc3\xa0\xc3\xbf-a", 0}, {"\xc3\xa0\xc3\xbf-\xe4\xb8", 0}, {NULL, 0}});
    match_table("root ::= . . .",
                (mcase[]){{"abc", 1}, {"a\xf0\x9f\x98\x80" "c", 1}, {"ab", 0}, {"abcd", 0},
                          {"a\xff" "c", 0}, {"a\xc0\x80" "c", 0}, {"a\xed\xa0\x80" "c", 0}, {NULL, 0}});
    match_table("root ::= \"a\"? \"b\"* \"c\"+",
                (mcase[]){{"c", 1}, {"ac", 1}, {"abbbccc", 1}, {"bc", 1}, {"aac", 0}, {"ab", 0}, {NULL, 0}});
    match_table("root ::= \"x\"{3}",
                (mcase[]){{"xxx", 1}, {"xx", 0}, {"xxxx", 0}, {NULL, 0}});
    match_table("root ::= \"ab\"{2,}",
                (mcase[]){{"abab", 1}, {"ababab", 1}, {"ab", 0}, {"ababa", 0}, {NULL, 0}});
    match_table("root ::= [0-9]{1,3} (\",\" [0-9]{1,3}){0,2}",
                (mcase[]){{"1", 1}, {"123", 1}, {"1234", 0}, {"1,22,333", 1}, {"1,2,3,4", 0}, {"1,", 0},
                          {"", 0}, {NULL, 0}});
    match_table("root ::= \"a\"{0}  \"b\"", (mcase[]){{"b", 1}, {"ab", 0}, {NULL, 0}});
    match_table("root ::= \"\"", (mcase[]){{"", 1}, {"a", 0}, {NULL, 0}});
    /* nested rules, comments, names with - and digits, continuation lines */
    match_table("# expressions\n"
                "root ::= expr   # the start\n"
                "expr ::= term ((\"+\" | \"-\") term)*\n"
                "term ::= factor-2 (\"*\" factor-2)*\n"
                "factor-2 ::= [0-9]+ | \"(\" expr \")\"\n"
                "  | \"-\" factor-2\n",
                (mcase[]){{"1+2*3", 1}, {"(1+2)*3", 1}, {"((4))", 1}, {"-(1)--2", 1}, {"1+", 0}, {"(1", 0},
                          {"1)", 0}, {"", 0}, {NULL, 0}});
    /* right recursion with ambiguity */
    match_table("root ::= (\"a\" | \"ab\") (\"b\" | \"\") \"c\"",
                (mcase[]){{"ac", 1}, {"abc", 1}, {"abbc", 1}, {"abbbc", 0}, {"abb", 0}, {NULL, 0}});
    match_table("root ::= s\ns ::= \"(\" s \")\" s |",
                (mcase[]){{"", 1}, {"()", 1}, {"(()())()", 1}, {"(()", 0}, {")(", 0}, {NULL, 0}});
    match_table(JSON_GBNF,
                (mcase[]){{"{}", 1},
                          {"{\"a\": 1, \"b\": [true, false, null], \"c\": {\"d\": \"e\\n\\u00e9\"}}", 1},
                          {"[1, -2.5e+3, 0, 0.25, \"x\"]", 1},
                          {" \"caf\xc3\xa9\" ", 1},
                          {"{\n  \"k\": [\n    1\n  ]\n}", 1},
                          {"-0", 1},
                          {"{\"a\" 1}", 0},
                          {"{\"a\": 1,}", 0},
                          {"[1 2]", 0},
                          {"01", 0},
                          {"\"tab\there\"", 0},
                          {"\"bad \\x escape\"", 0},
                          {"{'a': 1}", 0},
                          {"[1, 2", 0},
                          {"tru", 0},
                          {"1.", 0},
                          {"\"\xff\"", 0},
                          {NULL, 0}});
}

/* a deep nesting runs into the depth limit and says no, instead of growing without bound */
static void test_limits(void) {
    const char *src = "root ::= \"(\" root \")\" | \"x\"";
    mt_grammar *g = NULL;
    mt_err err = {0};
    CHECK_OK(mt_grammar_parse(&g, src, strlen(src), NULL, &err), &err);
    size_t n = 2 * MT_GRAMMAR_MAX_DEPTH + 10;
    char *s = malloc(2 * n + 2);
    for (size_t i = 0; i < n; i++) s[i] = '(';
    s[n] = 'x';
    for (size_t i = 0; i < n; i++) s[n + 1 + i] = ')';
    CHECK(mt_grammar_match(g, s, 2 * n + 1) == 0);
    CHECK(mt_grammar_match(g, s + n - 5, 11) == 1);   /* (((((x))))) */
    free(s);
    mt_grammar_free(g);
    /* exponential ambiguity: bounded, not a blow-up */
    src = "root ::= a*\na ::= \"x\" | \"x\" | b\nb ::= \"x\"";
    CHECK_OK(mt_grammar_parse(&g, src, strlen(src), NULL, &err), &err);
    CHECK(mt_grammar_match(g, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 46) == 1);
    mt_grammar_free(g);
    /* 2^n parse stacks after n "a": within the limit it matches, past it the answer is no */
    src = "root ::= r\nr ::= \"a\" r \"b\" | \"a\" r \"c\" | \"\"";
    CHECK_OK(mt_grammar_parse(&g, src, strlen(src), NULL, &err), &err);
    CHECK(mt_grammar_match(g, "aaaaaaaaaabcbcbcbcbc", 20) == 1);
    CHECK(mt_grammar_match(g, "aaaaaaaaaabcbcbcbcb", 19) == 0);
    CHECK(mt_grammar_match(g, "aaaaaaaaaaaaaabbbbbbbbbbbbbb", 28) == 0);
    mt_grammar_free(g);
}

/* ---- token level ---- */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17;
    return rng_state;
}

/* bounded grammars: every random walk can end within a few dozen tokens */
static const char *const WALK_GRAMMARS[] = {
    "root ::= \"{\" ws \"\\\"name\\\"\" ws \":\" ws str ws \",\" ws \"\\\"age\\\"\" ws \":\" ws [0-9]{1,3} ws \"}\"\n"
    "str ::= \"\\\"\" [a-zA-Z ]{0,12} \"\\\"\"\nws ::= [ \\n]?\n",
    "root ::= (\"yes\" | \"no\" | \"maybe\") (\", \" (\"yes\" | \"no\")){0,3} \".\"",
    "root ::= [0-9]{1,4} ([+*-] [0-9]{1,4}){0,4} \"=\"",
    "root ::= \"caf\\u00e9 \" [\\u00e0-\\u00ff\\u4e00-\\u4e2f]{1,4} \" \\U0001F600\"",
    "root ::= [a-z]{2,6} (\"\\n\" [a-z]{2,6}){0,2}",
};

typedef struct { int walks, completed, checked_all, checked_sample; } walk_stats;

/* one random walk choosing only allowed tokens; checks mask == allows(), allowed / disallowed
 * tokens against a fresh copy's accept(), and that an ended walk's text matches */
static void random_walk(const mt_grammar *g, mt_grammar_tokens *gt, const mt_tokvocab *v, size_t V, int full_check,
                        const mt_tokenizer *tok, walk_stats *ws) {
    mt_err err = {0};
    mt_constraint *c = NULL;
    CHECK_OK(mt_constraint_new(&c, gt, &err), &err);
    if (!c) return;
    float *logits = malloc(V * sizeof *logits);
    int32_t *allowed = malloc(V * sizeof *allowed);
    char *text = malloc(1 << 16);
    int32_t ids[256];
    size_t tn = 0, nids = 0;
    ws->walks++;
    for (int step = 0; step < 200; step++) {
        for (size_t t = 0; t < V; t++) logits[t] = (float)(t % 7);
        int rc = mt_constraint_mask(c, logits, V, &err);
        CHECK_MSG(rc == MT_OK, "mask: %s", err.msg);
        if (rc) break;
        size_t na = 0;
        int mism = 0, eos_ok = 0;
        for (size_t t = 0; t < V; t++) {
            int a = !isinf(logits[t]);
            if (a && logits[t] != (float)(t % 7)) mism++;           /* allowed logits untouched */
            if (a != mt_constraint_allows(c, (int32_t)t)) mism++;
            if (!a) continue;
            size_t n;
            if (mt_tokvocab_bytes(v, (int32_t)t, &n)) allowed[na++] = (int32_t)t;
            else eos_ok = 1;
        }
        CHECK_MSG(mism == 0, "step %d: %d tokens where mask and allows() differ", step, mism);
        CHECK_EQ_INT(eos_ok, mt_constraint_can_end(c));
        /* each allowed token (all of them at the first steps, else a sample) is accepted by a
         * copy, and a sample of disallowed ones is refused */
        size_t nchk = full_check || step < 2 ? V : 600;
        int bad = 0;
        for (size_t k = 0; k < nchk; k++) {
            int32_t t = nchk == V ? (int32_t)k : (int32_t)(rnd() % V);
            mt_constraint *d = NULL;
            if (mt_constraint_copy(&d, c, &err)) { bad++; break; }
            int ok = mt_constraint_accept(d, t, &err) == MT_OK;
            if (ok != !isinf(logits[t])) bad++;
            mt_constraint_free(d);
        }
        if (nchk == V) ws->checked_all++; else ws->checked_sample++;
        CHECK_MSG(bad == 0, "step %d: %d tokens where mask and accept() differ", step, bad);
        if (eos_ok && (!na || rnd() % 4 == 0 || step > 40)) {
            int32_t eos = -1;
            for (size_t t = 0; t < V && eos < 0; t++)
                if (!isinf(logits[t]) && !mt_tokvocab_bytes(v, (int32_t)t, NULL)) eos = (int32_t)t;
            CHECK_OK(mt_constraint_accept(c, eos, &err), &err);
            CHECK(mt_constraint_ended(c));
            ws->completed++;
            CHECK_MSG(mt_grammar_match(g, text, tn) == 1, "walk text \"%.*s\" does not match", (int)tn, text);
            /* the token bytes are what the tokenizer decodes the ids to */
            char *dec = NULL;
            size_t dn = 0;
            CHECK_OK(mt_tokenizer_decode(tok, ids, nids, 1, &dec, &dn, &err), &err);
            CHECK_MSG(dec && dn == tn && !memcmp(dec, text, tn), "decoded \"%s\" != walk text \"%.*s\"",
                      dec ? dec : "", (int)tn, text);
            free(dec);
            /* after eos only eos */
            for (size_t t = 0; t < V; t++) logits[t] = 1.0f;
            CHECK_OK(mt_constraint_mask(c, logits, V, &err), &err);
            CHECK(isinf(logits[eos == 0 ? 1 : 0]) && !isinf(logits[eos]));
            break;
        }
        CHECK_MSG(na > 0, "step %d: nothing allowed and cannot end", step);
        if (!na) break;
        int32_t t = allowed[rnd() % na];
        size_t n;
        const char *b = mt_tokvocab_bytes(v, t, &n);
        if (tn + n < (1 << 16)) { memcpy(text + tn, b, n); tn += n; }
        if (nids < 256) ids[nids++] = t;
        CHECK_OK(mt_constraint_accept(c, t, &err), &err);
    }
    free(logits); free(allowed); free(text);
    mt_constraint_free(c);
}

static void token_level(const char *name, const char *path, const char *const *eos_names, size_t pad,
                        const char *space_tok, const char *nl_tok) {
    mt_err err = {0};
    mt_tokenizer *tok = NULL;
    if (mt_tokenizer_load(&tok, path, &err) != MT_OK) {
        printf("test_grammar: %s tokenizer missing (%s): token-level tests skipped\n", name, err.msg);
        return;
    }
    size_t ntok = mt_tokenizer_vocab_size(tok), V = ntok + pad;
    int32_t eos[4]; size_t neos = 0;
    for (size_t i = 0; eos_names[i]; i++) {
        int32_t id = mt_tokenizer_token_to_id(tok, eos_names[i]);
        CHECK_MSG(id >= 0, "%s: no token %s", name, eos_names[i]);
        if (id >= 0) eos[neos++] = id;
    }
    /* token bytes */
    char buf[64];
    const char *p;
    int32_t sid = mt_tokenizer_token_to_id(tok, space_tok), nid = mt_tokenizer_token_to_id(tok, nl_tok);
    CHECK_MSG(sid >= 0 && mt_tokenizer_token_bytes(tok, sid, buf, sizeof buf, &p) == 1 && p[0] == ' ',
              "%s: '%s' is not a space", name, space_tok);
    CHECK_MSG(nid >= 0 && mt_tokenizer_token_bytes(tok, nid, buf, sizeof buf, &p) == 1 && p[0] == '\n',
              "%s: '%s' is not a newline", name, nl_tok);
    CHECK_EQ_INT(mt_tokenizer_token_bytes(tok, eos[0], buf, sizeof buf, &p), 0);
    CHECK_EQ_INT(mt_tokenizer_token_bytes(tok, (int32_t)ntok, buf, sizeof buf, &p), -1);
    CHECK_EQ_INT(mt_tokenizer_token_bytes(tok, -1, buf, sizeof buf, &p), -1);
    /* snprintf-like: a short buffer gets the length and a prefix */
    int32_t hello = mt_tokenizer_token_to_id(tok, "hello");
    if (hello >= 0) {
        CHECK_EQ_INT(mt_tokenizer_token_bytes(tok, hello, buf, 2, &p), 5);
        CHECK(p == buf && buf[0] == 'h' && buf[1] == 'e');
    }
    mt_tokvocab *v = NULL;
    CHECK_OK(mt_tokvocab_new(&v, tok, V, eos, neos, &err), &err);
    int32_t bad_eos = (int32_t)V;
    mt_tokvocab *v2 = NULL;
    CHECK(mt_tokvocab_new(&v2, tok, V, &bad_eos, 1, &err) == MT_EINVAL && !v2);
    if (!v) { mt_tokenizer_free(tok); return; }
    CHECK_EQ_INT(mt_tokvocab_size(v), V);
    int tot_walks = 0, tot_ended = 0;
    unsigned long long tot_miss = 0, tot_hit = 0;
    for (size_t i = 0; i < sizeof WALK_GRAMMARS / sizeof *WALK_GRAMMARS; i++) {
        mt_grammar *g = NULL;
        CHECK_OK(mt_grammar_parse(&g, WALK_GRAMMARS[i], strlen(WALK_GRAMMARS[i]), NULL, &err), &err);
        if (!g) continue;
        mt_grammar_tokens *gt = NULL;
        CHECK_OK(mt_grammar_tokens_new(&gt, g, v, &err), &err);
        walk_stats ws = {0};
        for (int w = 0; gt && w < 6; w++) random_walk(g, gt, v, V, 0, tok, &ws);
        CHECK_MSG(ws.completed >= 4, "%s grammar %zu: %d of %d walks completed", name, i, ws.completed, ws.walks);
        mt_grammar_tokens_stats st;
        mt_grammar_tokens_stats_get(gt, &st);
        CHECK(st.hits > 0 && st.misses > 0);
        tot_walks += ws.walks; tot_ended += ws.completed; tot_miss += st.misses; tot_hit += st.hits;
        /* a cache that holds one mask at a time gives the same answers */
        mt_grammar_tokens_free(gt);
        gt = NULL;
        if (i == 0 && !mt_grammar_tokens_new(&gt, g, v, &err)) {
            mt_grammar_tokens_set_cache(gt, 1);
            walk_stats w2 = {0};
            random_walk(g, gt, v, V, 0, tok, &w2);
            mt_grammar_tokens_stats_get(gt, &st);
            CHECK_MSG(st.clears > 0 && st.entries == 1, "clears %llu entries %zu", (unsigned long long)st.clears,
                      st.entries);
            mt_grammar_tokens_free(gt);
        }
        mt_grammar_free(g);
    }
    printf("test_grammar: %s: %d random walks (%d ended), %llu masks computed, %llu from the cache\n", name,
           tot_walks, tot_ended, tot_miss, tot_hit);
    /* the JSON grammar: unbounded strings; consistency checks along a walk */
    mt_grammar *g = NULL;
    CHECK_OK(mt_grammar_parse(&g, JSON_GBNF, strlen(JSON_GBNF), NULL, &err), &err);
    mt_grammar_tokens *gt = NULL;
    if (g) CHECK_OK(mt_grammar_tokens_new(&gt, g, v, &err), &err);
    if (gt) {
        walk_stats ws = {0};
        random_walk(g, gt, v, V, 0, tok, &ws);
        /* accept refuses a token that is not allowed, naming it */
        mt_constraint *c = NULL;
        CHECK_OK(mt_constraint_new(&c, gt, &err), &err);
        int32_t t = -1;
        for (size_t k = 0; k < V && t < 0; k++) {
            size_t n;
            const char *b = mt_tokvocab_bytes(v, (int32_t)k, &n);
            if (b && n == 1 && b[0] == '}') t = (int32_t)k;
        }
        CHECK(t >= 0 && !mt_constraint_allows(c, t));
        char want[32];
        snprintf(want, sizeof want, "token %d", (int)t);
        CHECK(mt_constraint_accept(c, t, &err) == MT_EINVAL && strstr(err.msg, want));
        CHECK(mt_constraint_accept(c, eos[0], &err) == MT_EINVAL);   /* cannot end before a value */
        CHECK(!mt_constraint_allows(c, (int32_t)V - 1));              /* padded rows never */
        mt_constraint_free(c);
        {
            /* a document's own tokens through the constraint: each allowed, and the mask checked
             * against accept() on copies (every token for small vocabularies, else a sample) at
             * every step; strings in several contexts share their masks */
            static const char doc[] = "{\"a\": [1, \"x y\", {\"b\": \"caf\xc3\xa9 \\\"q\\\"\"}], \"c\": \"d\", "
                                      "\"e\": -2.5e3, \"f\": [\"\", \"\xe4\xb8\xad\"]}";
            CHECK(mt_grammar_match(g, doc, sizeof doc - 1));
            int32_t *ids = NULL;
            size_t nid = 0;
            CHECK_OK(mt_tokenizer_encode(tok, doc, sizeof doc - 1, 0, &ids, &nid, &err), &err);
            mt_constraint *dc = NULL;
            CHECK_OK(mt_constraint_new(&dc, gt, &err), &err);
            float *l = malloc(V * sizeof *l);
            int bad = 0;
            for (size_t i = 0; dc && i < nid; i++) {
                for (size_t k = 0; k < V; k++) l[k] = 0.0f;
                CHECK_OK(mt_constraint_mask(dc, l, V, &err), &err);
                CHECK_MSG(!isinf(l[ids[i]]), "document token %zu (%d) masked", i, (int)ids[i]);
                size_t nchk = V <= 10000 ? V : 3000;
                for (size_t k = 0; k < nchk; k++) {
                    int32_t t = nchk == V ? (int32_t)k : (int32_t)(rnd() % V);
                    mt_constraint *d = NULL;
                    if (mt_constraint_copy(&d, dc, &err)) { bad++; break; }
                    if ((mt_constraint_accept(d, t, &err) == MT_OK) != !isinf(l[t])) bad++;
                    mt_constraint_free(d);
                }
                CHECK_OK(mt_constraint_accept(dc, ids[i], &err), &err);
        }
        CHECK_MSG(bad == 0, "%d tokens where mask and accept() differ along the document", bad);
        CHECK(dc && mt_constraint_can_end(dc));
        mt_grammar_tokens_stats st;
        mt_grammar_tokens_stats_get(gt, &st);
        CHECK(st.shared > 0);
        mt_constraint_free(dc);
        free(l); free(ids);
        }
    }
    mt_grammar_tokens_free(gt);
    mt_grammar_free(g);
    /* exponential ambiguity: each "a" doubles the parse stacks; a token that would take the
     * matcher over MT_GRAMMAR_MAX_STACKS is not allowed (pruned), and accept says why */
    const char *amb = "root ::= r\nr ::= \"a\" r \"b\" | \"a\" r \"c\" | \"\"";
    g = NULL; gt = NULL;
    CHECK_OK(mt_grammar_parse(&g, amb, strlen(amb), NULL, &err), &err);
    if (g && !mt_grammar_tokens_new(&gt, g, v, &err)) {
        int32_t ta = -1;
        for (size_t k = 0; k < V && ta < 0; k++) {
            size_t n;
            const char *b = mt_tokvocab_bytes(v, (int32_t)k, &n);
            if (b && n == 1 && b[0] == 'a') ta = (int32_t)k;
        }
        mt_constraint *c = NULL;
        CHECK_OK(mt_constraint_new(&c, gt, &err), &err);
        float *l = malloc(V * sizeof *l);
        int na = 0, rc = MT_OK;
        while (c && ta >= 0 && na < 40) {
            for (size_t k = 0; k < V; k++) l[k] = 0.0f;
            if ((rc = mt_constraint_mask(c, l, V, &err))) break;
            if (isinf(l[ta])) break;
            CHECK(mt_constraint_allows(c, ta));
            if ((rc = mt_constraint_accept(c, ta, &err))) break;
            na++;
        }
        CHECK_MSG(rc == MT_OK, "%s", err.msg);
        CHECK_MSG(na >= 10 && na <= 13, "%d a's allowed", na);
        CHECK(c && !mt_constraint_allows(c, ta));
        CHECK(c && mt_constraint_accept(c, ta, &err) == MT_ELIMIT && strstr(err.msg, "too ambiguous"));
        mt_grammar_tokens_stats st;
        mt_grammar_tokens_stats_get(gt, &st);
        CHECK(st.limited > 0);
        free(l);
        mt_constraint_free(c);
    }
    mt_grammar_tokens_free(gt);
    mt_grammar_free(g);
    /* a grammar the vocabulary cannot spell: nothing allowed is an error, not an empty mask */
    const char *nospell = "root ::= [\\U0010FFF0-\\U0010FFFF]";
    g = NULL; gt = NULL;
    CHECK_OK(mt_grammar_parse(&g, nospell, strlen(nospell), NULL, &err), &err);
    if (g && !mt_grammar_tokens_new(&gt, g, v, &err)) {
        mt_constraint *c = NULL;
        if (!mt_constraint_new(&c, gt, &err)) {
            float *l = calloc(V, sizeof *l);
            int rc = mt_constraint_mask(c, l, V, &err);
            /* byte-level vocabularies can spell it byte by byte; SentencePiece byte fallback too */
            size_t na = 0;
            for (size_t k = 0; k < V; k++) na += !isinf(l[k]);
            CHECK(rc == MT_EINVAL ? strstr(err.msg, "no token") != NULL : na > 0);
            free(l);
        }
        mt_constraint_free(c);
    }
    mt_grammar_tokens_free(gt);
    mt_grammar_free(g);
    mt_tokvocab_free(v);
    mt_tokenizer_free(tok);
}

/* mt_tokenizer_token_bytes over whole texts: the concatenated bytes of the encoded ids are the
 * text (a SentencePiece tokenizer's leading space aside, which its decoder strips) */
static void test_token_bytes(void) {
    static const char *const files[] = {"qwen3", "llama2", "llama3_1", "gemma3", "deepseek_v3"};
    static const char text[] = "Hello world, {\"a\": [1, 2.5]}\n\tcaf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 x  y";
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/tokenizers/%s/tokenizer.json.zst", files[k]);
        mt_tokenizer *tok = NULL;
        mt_err err = {0};
        if (mt_tokenizer_load(&tok, path, &err)) {
            printf("test_grammar: %s missing (%s): skipped\n", path, err.msg);
            continue;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        CHECK_OK(mt_tokenizer_encode(tok, text, sizeof text - 1, 0, &ids, &n, &err), &err);
        char out[1024], buf[256];
        size_t on = 0;
        for (size_t i = 0; i < n; i++) {
            const char *p = NULL;
            int len = mt_tokenizer_token_bytes(tok, ids[i], buf, sizeof buf, &p);
            CHECK_MSG(len >= 0 && (size_t)len <= sizeof buf, "%s: token %d: %d", files[k], (int)ids[i], len);
            if (len > 0 && on + (size_t)len < sizeof out) { memcpy(out + on, p, (size_t)len); on += (size_t)len; }
        }
        const char *o = out;
        if (on == sizeof text && out[0] == ' ') { o++; on--; }
        CHECK_MSG(on == sizeof text - 1 && !memcmp(o, text, on), "%s: token bytes give \"%.*s\"", files[k], (int)on, o);
        free(ids);
        mt_tokenizer_free(tok);
    }
}

static void test_tokens(void) {
    test_token_bytes();
    static const char *const tiny_eos[] = {"<|endoftext|>", NULL};
    token_level("tinydocs (byte-level BPE)", "models/tinydocs-22m-4bit/tokenizer.json", tiny_eos, 64,
                "\xc4\xa0", "\xc4\x8a");
    static const char *const gemma_eos[] = {"<eos>", "<end_of_turn>", NULL};
    token_level("gemma3 (SentencePiece)", "tests/data/tokenizers/gemma3/tokenizer.json.zst", gemma_eos, 0,
                "\xe2\x96\x81", "<0x0A>");
}

/* the fuzz seeds parse (the JSON one is JSON_GBNF above) */
static void test_seeds(void) {
    static const struct { const char *file, *yes, *no; } seeds[] = {
        {"seed000.gbnf", "abc 12", "abc 1234"},
        {"seed001.gbnf", "(1+2)-3", "(1+2"},
        {"seed002.gbnf", "q\xc3\xa9\xf0\x9f\x98\x80!abbb", "q\xc3\xa9\xf0\x9f\x98\x80!c"},
        {"seed003.gbnf", "{\"a\": [1, {}]}", "{\"a\": [1, {}]"},
    };
    for (size_t k = 0; k < sizeof seeds / sizeof seeds[0]; k++) {
        char path[256];
        snprintf(path, sizeof path, "tests/fuzz/seeds/gbnf/%s", seeds[k].file);
        FILE *f = fopen(path, "rb");
        CHECK_MSG(f != NULL, "cannot open %s", path);
        if (!f) continue;
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        mt_grammar *g = NULL;
        mt_err err = {0};
        CHECK_OK(mt_grammar_parse(&g, buf, n, NULL, &err), &err);
        if (!g) continue;
        CHECK_MSG(mt_grammar_match(g, seeds[k].yes, strlen(seeds[k].yes)) == 1, "%s: %s", path, seeds[k].yes);
        CHECK_MSG(mt_grammar_match(g, seeds[k].no, strlen(seeds[k].no)) == 0, "%s: %s", path, seeds[k].no);
        mt_grammar_free(g);
    }
}

int main(void) {
    test_seeds();
    test_errors();
    test_match();
    test_limits();
    test_tokens();
    return check_report("test_grammar");
}
