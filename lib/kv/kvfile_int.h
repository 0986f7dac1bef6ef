/* kvfile_int.h - the quantized-layer side of kvfile.c (kvfile_quant.c). */
#ifndef MT_KVFILE_INT_H
#define MT_KVFILE_INT_H

#include "io/st_write.h"
#include "kv/kvfile.h"

/* 1 when cache c holds packed (quantized) rows */
int kvfile_quantized(const mt_kvcache *c);
/* group size and bits of a quantized cache */
void kvfile_quant_params(const mt_kvcache *c, int *group, int *bits);
/* "q8g64", ... */
const char *kvfile_quant_name(const mt_kvcache *c, char *buf, size_t n);
/* file -> cache: put the empty cache c into the file's quantized mode */
int kvfile_quant_begin(mt_kvcache *c, const mt_kvfile *f, mt_err *err);
/* file -> cache: layer l's packed rows into c (reserved) */
int kvfile_quant_layer(mt_kvcache *c, const mt_kvfile *f, int l, mt_err *err);
/* cache -> file: tensor j (0..5: kq ks kb vq vs vb) of a layer: dtype and shape[3] (head_dim D) */
void kvfile_quant_entry(const mt_kvcache *c, int j, size_t D, mt_st_entry *e);
/* cache -> file: the bytes of tensor j of layer l ([1, H, rows, last] layout) from cache slots
 * [slot0, slot0 + rows) */
int kvfile_quant_fill(const mt_kvcache *c, int l, int j, size_t slot0, size_t rows, const mt_st_entry *e, void *dst,
                      mt_err *err);

#endif
