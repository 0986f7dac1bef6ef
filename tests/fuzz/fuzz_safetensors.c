/* fuzz_safetensors.c - libFuzzer target: the safetensors header validator and
 * container on arbitrary bytes.  Every accepted view must lie inside the input
 * (ASan catches reads outside it) and be findable by name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy so that ASan reports any read past the end */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    mt_err err;
    mt_tensor_view *tv = NULL;
    size_t n = 0;
    json_t *meta = NULL;
    if (mt_safetensors_parse_header(buf, size, "fuzz", &tv, &n, &meta, &err) == MT_OK) {
        float tmp[64];
        for (size_t i = 0; i < n; i++) {
            const mt_tensor_view *t = &tv[i];
            if ((const uint8_t *)t->data < buf || (const uint8_t *)t->data + t->nbytes > buf + size) abort();
            size_t es = mt_dtype_size(t->dtype), cnt = es ? t->nbytes / es : 0;
            for (size_t k = 0; k < cnt; k += 64)
                mt_convert_to_f32(tmp, (const char *)t->data + k * es, t->dtype, cnt - k < 64 ? cnt - k : 64);
        }
        json_decref(meta);
        free(tv);
        mt_safetensors *st = NULL;
        if (mt_safetensors_open_mem(&st, buf, size, "fuzz", &err) != MT_OK) abort();   /* same bytes: must agree */
        for (size_t i = 0; i < mt_safetensors_count(st); i++) {
            const mt_tensor_view *t = mt_safetensors_at(st, i);
            if (mt_safetensors_get(st, t->name) != t) abort();
        }
        mt_safetensors_free(st);
    } else if (tv || n || meta) {
        abort();   /* failures leave nothing allocated */
    }
    free(buf);
    return 0;
}
