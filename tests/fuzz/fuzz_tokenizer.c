/* fuzz_tokenizer.c - libFuzzer target: the input bytes are loaded as a
 * tokenizer.json with mt_tokenizer_load_mem; when that succeeds a fixed
 * multilingual string is encoded, decoded and streamed back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char text[] = "Hello  world!\n<s>[CLS] caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 123 \xF0\x9F\x98\x80 <|im_start|>x";
    mt_tokenizer *t = NULL;
    mt_err err = {0};
    if (mt_tokenizer_load_mem(&t, (const char *)data, size, &err) != 0) return 0;
    int32_t *ids = NULL;
    size_t n = 0;
    if (mt_tokenizer_encode(t, text, sizeof text - 1, 1, &ids, &n, &err) == 0) {
        char *out = NULL;
        size_t len = 0;
        if (mt_tokenizer_decode(t, ids, n, 0, &out, &len, &err) == 0) free(out);
        mt_detok *d = NULL;
        if (mt_detok_new(&d, t, 1, &err) == 0) {
            for (size_t i = 0; i < n; i++) {
                char *p = NULL;
                if (mt_detok_push(d, ids[i], &p, NULL, &err) == 0) free(p);
            }
            char *p = NULL;
            if (mt_detok_flush(d, &p, NULL, &err) == 0) free(p);
            mt_detok_free(d);
        }
        free(ids);
    }
    (void)mt_tokenizer_vocab_size(t);
    (void)mt_tokenizer_token_to_id(t, "a");
    mt_tokenizer_free(t);
    return 0;
}
