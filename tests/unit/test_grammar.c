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
/* constrain.h: next commit */
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
    return check_report("test_grammar");
}
