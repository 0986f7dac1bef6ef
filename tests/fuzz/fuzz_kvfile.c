/* fuzz_kvfile.c - libFuzzer target: KV-state (prompt-cache) files on arbitrary bytes,
 * plain safetensors or one zstd frame.  A file that parses must describe itself and
 * become a cache without a model (geometry and tokens then unchecked); failures leave
 * nothing allocated and always carry a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kv/kvfile.h"
#include "kv/kvtool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy so that ASan reports any read past the end */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    mt_err err;
    memset(&err, 0, sizeof err);
    mt_kvfile *f = NULL;
    if (mt_kvfile_parse(buf, size, "fuzz.kv.zst", &f, &err) == MT_OK) {
        if (!f || f->n_layers <= 0 || !f->layers) abort();
        json_t *d = mt_kvfile_describe(f, NULL);
        if (!d) abort();
        char *s = json_dumps(d, JSON_COMPACT);   /* every value must serialize */
        if (!s) abort();
        free(s);
        json_decref(d);
        mt_kvcache *c = NULL;
        memset(&err, 0, sizeof err);
        if (mt_kvfile_to_cache(f, NULL, &c, &err) == MT_OK) {
            if (!c) abort();
            mt_kvcache_free(c);
        } else if (c) {
            abort();
        }
        mt_kvfile_free(f);
    } else if (f || !err.msg[0]) {
        abort();   /* failures leave nothing allocated and say why */
    }
    free(buf);
    return 0;
}
