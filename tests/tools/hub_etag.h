/* hub_etag.h - the fake hub's hashes, shared by tests/tools/hubserver.c and
 * tests/unit/test_hub.c so the test can predict blob names independently of
 * the library: hex digits from FNV-1a 64 runs with different seeds.  Regular
 * files get a 40-hex ETag (like git blob shas), *.safetensors a 64-hex one
 * (like the hub's LFS sha256), repo commits 40 hex over "org/name". */
#ifndef HUB_ETAG_H
#define HUB_ETAG_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

static inline void hub_hexhash(const void *data, size_t n, int digits, char *out) {
    const unsigned char *p = data;
    int used = 0;
    for (uint64_t seed = 1; used < digits; seed++) {
        uint64_t h = 0xcbf29ce484222325ULL ^ (seed * 0x9E3779B97F4A7C15ULL);
        for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 0x100000001b3ULL; }
        char buf[17];
        snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
        for (int i = 0; i < 16 && used < digits; i++) out[used++] = buf[i];
    }
    out[used] = 0;
}
#endif
