/* kvconvert.c - whole-cache quantize / dequantize (see kvconvert.h). */
#include "kv/kvconvert.h"

#include <stdlib.h>
#include <string.h>

#include "tensor/dtype.h"
#include "tensor/quant.h"

static int empty_like(const mt_kvcache *c, int f16, mt_kvcache **out, mt_err *err) {
    MT_TRY(mt_kvcache_new_geom(out, c->n_layers, c->n_kv_heads, c->head_dim, err));
    int rc = f16 ? mt_kvcache_set_f16(*out, 1, err) : MT_OK;
    if (rc) { mt_kvcache_free(*out); *out = NULL; }
    return rc;
}

int mt_kvcache_quantized_copy(const mt_kvcache *c, int bits, int group, mt_kvcache **out, mt_err *err) {
    if (c->quantized || c->qscheme) return mt_seterr(err, MT_EINVAL, "the cache is quantized already");
    if (c->has_state) return mt_seterr(err, MT_EUNSUPPORTED, "a cache with recurrent state cannot be quantized here");
    if (c->v_dim != c->kv_dim)
        return mt_seterr(err, MT_EUNSUPPORTED, "KV cache quantization is not supported for multi-head latent attention "
                         "models");
    if (c->max_size) return mt_seterr(err, MT_EINVAL, "a rotating cache (--max-kv-size) cannot be quantized (as in mlx-lm)");
    mt_kvcache *q;
    MT_TRY(empty_like(c, c->f16, &q, err));
    size_t n = c->len, H = (size_t)c->n_kv_heads, D = (size_t)c->head_dim;
    int rc = mt_kvcache_set_quant(q, bits, group, 0, err);
    if (!rc) rc = mt_kvcache_mark_quantized(q, err);
    if (!rc) rc = mt_kvcache_reserve(q, n ? n : 1, err);
    size_t nw = mt_kvcache_qwords(q), ng = D / (size_t)group;
    float *row = malloc(D * sizeof *row);
    uint16_t *hs = malloc(2 * ng * sizeof *hs);
    if (!rc && (!row || !hs)) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_dtype t = c->f16 ? MT_F16 : MT_F32;
    for (int l = 0; !rc && l < c->n_layers; l++)
        for (int kv = 0; kv < 2 && !rc; kv++) {
            const char *src = kv ? c->v[l] : c->k[l];
            uint32_t *w = kv ? q->vq[l] : q->kq[l];
            float *sc = kv ? q->vs[l] : q->ks[l], *bi = kv ? q->vb[l] : q->kb[l];
            for (size_t s = 0; s < n && !rc; s++)
                for (size_t h = 0; h < H && !rc; h++) {
                    size_t r = s * H + h;
                    mt_convert_to_f32(row, src + r * D * mt_dtype_size(t), t, D);
                    if (!c->f16) rc = mt_quantize_affine(w + r * nw, sc + r * ng, bi + r * ng, MT_F32, row, 1, D, bits, group, 0, err);
                    else {   /* float16 parameters, held as float32 (as the cache keeps them) */
                        rc = mt_quantize_affine(w + r * nw, hs, hs + ng, MT_F16, row, 1, D, bits, group, 0, err);
                        mt_convert_to_f32(sc + r * ng, hs, MT_F16, ng);
                        mt_convert_to_f32(bi + r * ng, hs + ng, MT_F16, ng);
                    }
                }
        }
    free(row);
    free(hs);
    if (!rc) rc = mt_kvcache_restore(q, n, n, n, err);
    if (rc) { mt_kvcache_free(q); return rc; }
    *out = q;
    return MT_OK;
}

int mt_kvcache_dequantized_copy(const mt_kvcache *c, mt_kvcache **out, mt_err *err) {
    if (!c->quantized || c->qscheme != MT_KVQ_AFFINE)
        return mt_seterr(err, MT_EINVAL, "the cache is not affine-quantized");
    if (c->has_state) return mt_seterr(err, MT_EUNSUPPORTED, "a cache with recurrent state cannot be converted here");
    mt_kvcache *f;
    MT_TRY(empty_like(c, c->f16, &f, err));
    size_t n = c->len, H = (size_t)c->n_kv_heads, D = (size_t)c->head_dim, nw = mt_kvcache_qwords(c);
    size_t ng = D / (size_t)c->qgroup;
    int rc = mt_kvcache_reserve(f, n ? n : 1, err);
    float *row = malloc(D * sizeof *row);
    if (!rc && !row) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_dtype t = c->f16 ? MT_F16 : MT_F32;
    for (int l = 0; !rc && l < c->n_layers; l++)
        for (int kv = 0; kv < 2 && !rc; kv++) {
            char *dst = kv ? f->v[l] : f->k[l];
            const uint32_t *w = kv ? c->vq[l] : c->kq[l];
            const float *sc = kv ? c->vs[l] : c->ks[l], *bi = kv ? c->vb[l] : c->kb[l];
            for (size_t r = 0; r < n * H && !rc; r++) {
                if (c->f16) {   /* mx.dequantize in float16: products and sums rounded to the scales' type */
                    uint16_t hs[2 * 4096 / 32];
                    mt_convert_from_f32(hs, sc + r * ng, MT_F16, ng);
                    mt_convert_from_f32(hs + ng, bi + r * ng, MT_F16, ng);
                    rc = mt_dequantize_affine_row(row, w + r * nw, hs, hs + ng, MT_F16, D, c->qbits, c->qgroup, err);
                } else
                    rc = mt_dequantize_affine_row(row, w + r * nw, sc + r * ng, bi + r * ng, MT_F32, D, c->qbits,
                                                  c->qgroup, err);
                mt_convert_from_f32(dst + r * D * mt_dtype_size(t), row, t, D);
            }
        }
    free(row);
    if (!rc) rc = mt_kvcache_restore(f, n, n, n, err);
    if (rc) { mt_kvcache_free(f); return rc; }
    *out = f;
    return MT_OK;
}
