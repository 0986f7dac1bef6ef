/* kvfile_quant.c - QuantizedKVCache layers of KV-state files (see kvfile.h). */
#include "kv/kvfile_int.h"

#include <stdio.h>

int kvfile_quantized(const mt_kvcache *c) { (void)c; return 0; }

void kvfile_quant_params(const mt_kvcache *c, int *group, int *bits) {
    (void)c;
    *group = *bits = 0;
}

const char *kvfile_quant_name(const mt_kvcache *c, char *buf, size_t n) {
    (void)c;
    snprintf(buf, n, "quantized");
    return buf;
}

int kvfile_quant_begin(mt_kvcache *c, const mt_kvfile *f, mt_err *err) {
    (void)c;
    return mt_seterr(err, MT_EINVAL, "%s: quantized KV caches cannot be read yet", f->label);
}

int kvfile_quant_layer(mt_kvcache *c, const mt_kvfile *f, int l, mt_err *err) {
    (void)c; (void)l;
    return mt_seterr(err, MT_EINVAL, "%s: quantized KV caches cannot be read yet", f->label);
}

void kvfile_quant_entry(const mt_kvcache *c, int j, size_t D, mt_st_entry *e) {
    (void)c; (void)D; (void)j; (void)e;
}

int kvfile_quant_fill(const mt_kvcache *c, int l, int j, size_t slot0, size_t rows, const mt_st_entry *e, void *dst,
                      mt_err *err) {
    (void)c; (void)l; (void)j; (void)e; (void)dst; (void)slot0; (void)rows;
    return mt_seterr(err, MT_EINVAL, "quantized KV caches cannot be written yet");
}
