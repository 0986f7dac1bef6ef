/* fuzz_parakeet.c - libFuzzer target: a Parakeet config.json (arbitrary
 * text) over the tiny TDT folder's weights (tests/data/stt/parakeet/tdt; run
 * from the repository root): the configuration checks, tensor binding, and,
 * when the folder loads, 0.3 s of audio transcribed in 0.2-s chunks (the
 * decoders, the chunk merge, sentences and words). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"
#include "models/parakeet.h"
#include "stt/parakeet_asr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_err err;
    mt_config *c = NULL;
    if (mt_config_parse(&c, (const char *)data, size, "fuzz", &err) != MT_OK) return 0;
    mt_parakeet_claims(c);
    mt_parakeet *m = NULL;
    if (mt_parakeet_load(&m, "tests/data/stt/parakeet/tdt", c, NULL, &err) == MT_OK) {
        float audio[4800];
        for (int i = 0; i < 4800; i++) audio[i] = 0.3f * sinf(0.05f * (float)i) + 0.01f * (float)((i * 7919) % 13 - 6);
        mt_pk_token *t = NULL;
        size_t n = 0;
        if (mt_parakeet_tokens(m, audio, 4800, 0.2, 0.1, NULL, NULL, &t, &n, &err) == MT_OK) {
            mt_stt_result r;
            if (mt_parakeet_result(t, n, 0.3, 1, &r, &err) == MT_OK) mt_stt_result_free(&r);
        }
        free(t);
        mt_parakeet_free(m);
    }
    mt_config_free(c);
    return 0;
}
