/* fuzz_g2p.c - libFuzzer target: arbitrary bytes as text through the G2P (en-us) and
 * as phonemes through the batching, with a batch length taken from the first byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "text/g2p.h"

static size_t cps(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static mt_g2p *g; /* one handle for the whole run (espeak-ng is global anyway) */
    mt_err e;
    if (!g && mt_g2p_open("en-us", &g, &e)) abort();
    if (size > 4096) return 0; /* espeak-ng's time grows with the text, not its coverage */
    size_t max = size ? (size_t)data[0] % 40 + 1 : 1;
    char *out = NULL;
    size_t n = 0;
    if (mt_g2p_phonemize(g, (const char *)data, size, &out, &n, &e) == MT_OK) {
        if (strlen(out) != n) abort();
        mt_g2p_chunks c;
        if (mt_g2p_split(out, n, max, &c, &e) != MT_OK) abort();
        for (size_t i = 0; i < c.n; i++)
            if (!c.len[i] || cps(c.s[i]) > max) abort();
        mt_g2p_chunks_free(&c);
        free(out);
    }
    mt_g2p_chunks c;
    if (mt_g2p_split((const char *)data, size, max, &c, &e) == MT_OK)
        for (size_t i = 0; i < c.n; i++)
            if (!c.len[i] || cps(c.s[i]) > max) abort();
    mt_g2p_chunks_free(&c);
    return 0;
}
