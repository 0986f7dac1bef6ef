/* fuzz_gbnf.c - libFuzzer target: GBNF grammar parsing (lib/gen/grammar.c), then the
 * byte-level matcher (lib/gen/grammar_match.c) over a few texts, including the input's
 * own bytes, for every grammar that parses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gen/grammar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_err err;
    mt_grammar *g = NULL;
    if (mt_grammar_parse(&g, (const char *)data, size, NULL, &err) != MT_OK) return 0;
    static const char *const texts[] = {"", "a", "hello", "{\"a\": [1, 2.5, true, null]}", "caf\xc3\xa9 \xe2\x82",
                                        "((((x))))", "0123456789", "\xf0\x9f\x98\x80\xff"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) mt_grammar_match(g, texts[i], strlen(texts[i]));
    mt_grammar_match(g, (const char *)data, size > 256 ? 256 : size);
    mt_grammar_free(g);
    return 0;
}
