/* kvfile_quant.c - QuantizedKVCache layers of KV-state files (see kvfile.h): mlx's
 * [1, heads, tokens, words] packed keys/values with their scales and biases, to and from
 * the cache's slot-major packed rows (models/model.h, MT_KVQ_AFFINE). */
#include "kv/kvfile_int.h"

#include <stdio.h>
#include <string.h>

#include "tensor/dtype.h"

int kvfile_quantized(const mt_kvcache *c) { return c->quantized && c->qscheme == MT_KVQ_AFFINE; }

void kvfile_quant_params(const mt_kvcache *c, int *group, int *bits) {
    *group = c->qgroup;
    *bits = c->qbits;
}

const char *kvfile_quant_name(const mt_kvcache *c, char *buf, size_t n) {
    if (c->qscheme == MT_KVQ_TURBO) snprintf(buf, n, "turbo%d", c->qbits);
    else snprintf(buf, n, "q%dg%d", c->qbits, c->qgroup);
    return buf;
}

int kvfile_quant_begin(mt_kvcache *c, const mt_kvfile *f, mt_err *err) {
    const mt_kvfile_layer *L = &f->layers[0];
    MT_TRY(mt_kvcache_set_quant(c, L->bits, L->group, 0, err));
    return mt_kvcache_mark_quantized(c, err);
}

/* rows [0, n) of a [1, H, T, w] tensor -> slot-major [n][H][w] (uint32 words or float32) */
static void gather(void *dst, const mt_tensor_view *t, size_t n, size_t H, size_t w) {
    size_t T = (size_t)t->shape[2];
    for (size_t h = 0; h < H; h++)
        for (size_t s = 0; s < n; s++) {
            size_t src = (h * T + s) * w, to = (s * H + h) * w;
            if (t->dtype == MT_U32) memcpy((uint32_t *)dst + to, (const uint32_t *)t->data + src, w * 4);
            else mt_convert_to_f32((float *)dst + to, (const char *)t->data + src * mt_dtype_size(t->dtype), t->dtype, w);
        }
}

int kvfile_quant_layer(mt_kvcache *c, const mt_kvfile *f, int l, mt_err *err) {
    const mt_kvfile_layer *L = &f->layers[l];
    size_t H = (size_t)f->kv_heads, wq = mt_kvcache_qwords(c), ws = (size_t)f->head_dim / (size_t)L->group;
    if ((size_t)L->t[0]->shape[3] != wq) return mt_seterr(err, MT_EFORMAT, "layer %d: packed rows of an unexpected width", l);
    gather(c->kq[l], L->t[0], L->offset, H, wq);
    gather(c->ks[l], L->t[1], L->offset, H, ws);
    gather(c->kb[l], L->t[2], L->offset, H, ws);
    gather(c->vq[l], L->t[3], L->offset, H, wq);
    gather(c->vs[l], L->t[4], L->offset, H, ws);
    gather(c->vb[l], L->t[5], L->offset, H, ws);
    return MT_OK;
}

void kvfile_quant_entry(const mt_kvcache *c, int j, size_t D, mt_st_entry *e) {
    if (j == 0 || j == 3) {
        e->dtype = MT_U32;
        e->shape[3] = (int64_t)mt_kvcache_qwords(c);
    } else {
        e->dtype = c->f16 ? MT_F16 : MT_F32;
        e->shape[3] = (int64_t)(D / (size_t)c->qgroup);
    }
}

int kvfile_quant_fill(const mt_kvcache *c, int l, int j, size_t slot0, size_t rows, const mt_st_entry *e, void *dst,
                      mt_err *err) {
    (void)err;
    size_t H = (size_t)e->shape[1], w = (size_t)e->shape[3], es = mt_dtype_size(e->dtype);
    const void *src = j == 0 ? (const void *)c->kq[l] : j == 3 ? (const void *)c->vq[l]
                    : j == 1 ? (const void *)c->ks[l] : j == 2 ? (const void *)c->kb[l]
                    : j == 4 ? (const void *)c->vs[l] : (const void *)c->vb[l];
    for (size_t h = 0; h < H; h++)
        for (size_t t = 0; t < rows; t++) {
            size_t from = ((slot0 + t) * H + h) * w;
            char *o = (char *)dst + (h * rows + t) * w * es;
            if (e->dtype == MT_U32) memcpy(o, (const uint32_t *)src + from, w * 4);
            else mt_convert_from_f32(o, (const float *)src + from, e->dtype, w);
        }
    return MT_OK;
}
