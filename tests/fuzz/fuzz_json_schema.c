/* fuzz_json_schema.c - libFuzzer target: structured-output converters (lib/gen/json_schema.c,
 * lib/gen/regex_gbnf.c).  The bytes are read as JSON and converted as a schema and as an
 * OpenAI response_format, and the same bytes are converted as a regular expression.
 * Whatever a converter accepts must be GBNF the grammar parser accepts (a limit, or
 * left recursion through $ref, may still refuse it), and is matched over a few texts. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gen/grammar.h"
#include "gen/json_schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run_grammar(char *gbnf, int may_recurse) {
    mt_err err;
    mt_grammar *g = NULL;
    int rc = mt_grammar_parse(&g, gbnf, strlen(gbnf), NULL, &err);
    /* the converters write well-formed GBNF: only limits (and, for schemas, left
     * recursion through references) may refuse it */
    if (rc != MT_OK && rc != MT_ELIMIT && !(may_recurse && strstr(err.msg, "recurse"))) abort();
    if (rc == MT_OK) {
        static const char *const texts[] = {"", "{}", "[]", "\"\"", "0", "-12.5e3", "null", "true",
                                            "{\"a\": [1, \"x\", {\"b\": null}]}", "abc", "2024-02-29",
                                            "caf\xc3\xa9 \xe2\x82"};
        for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) mt_grammar_match(g, texts[i], strlen(texts[i]));
        mt_grammar_free(g);
    }
    free(gbnf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_err err;
    char *gbnf = NULL;
    json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (j) {
        if (mt_json_schema_to_gbnf(j, &gbnf, &err) == MT_OK) run_grammar(gbnf, 1);
        gbnf = NULL;
        if (mt_response_format_gbnf(j, &gbnf, &err) == MT_OK && gbnf) run_grammar(gbnf, 1);
        json_decref(j);
    }
    gbnf = NULL;
    if (mt_regex_to_gbnf((const char *)data, size, &gbnf, &err) == MT_OK) run_grammar(gbnf, 0);
    return 0;
}
