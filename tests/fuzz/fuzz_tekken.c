/* fuzz_tekken.c - libFuzzer target: tekken.json parsing (lib/text/tekken.c),
 * then encoding and decoding through whatever vocabulary was read. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/tekken.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_err err;
    mt_tekken *t = NULL;
    if (mt_tekken_parse(&t, (const char *)data, size, "fuzz", &err) != MT_OK) return 0;
    static const char *const texts[] = {"lang:en", "Hello world, 1234!", "caf\xc3\xa9 \xe2\x82", "", "  \n\n x"};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (mt_tekken_encode(t, texts[i], strlen(texts[i]), &ids, &n, &err) == MT_OK) {
            char *s = NULL;
            if (mt_tekken_decode(t, ids, n, &s, &err) == MT_OK) free(s);
            free(ids);
        }
    }
    int32_t some[] = {0, 1, 2, 24, 99, 100, 101, 355, 1000, -1};
    char *s = NULL;
    if (mt_tekken_decode(t, some, sizeof some / sizeof *some, &s, &err) == MT_OK) free(s);
    mt_tekken_special(t, "[AUDIO]");
    mt_tekken_free(t);
    return 0;
}
