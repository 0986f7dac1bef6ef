/* kvtool.c - mlx-kvpack's operations on KV-state files (see kvtool.h). */
#include "kv/kvtool.h"

#include <stdlib.h>
#include <string.h>

#include "kv/kvconvert.h"
#include "tensor/dtype.h"

json_t *mt_kvfile_describe(const mt_kvfile *f, const mt_tokenizer *tok) {
    const mt_kvfile_layer *L = &f->layers[0];
    int mixed = 0;
    for (int l = 1; l < f->n_layers; l++) mixed |= f->layers[l].cls != L->cls;
    static const char *const cls[] = {"", "KVCache", "RotatingKVCache", "QuantizedKVCache"};
    char kt[32];
    if (L->cls == MT_KVC_QUANTIZED) snprintf(kt, sizeof kt, "q%dg%d", L->bits, L->group);
    else snprintf(kt, sizeof kt, "%s", f->dtype == MT_F16 ? "f16" : f->dtype == MT_BF16 ? "bf16" : "f32");
    json_t *o = json_pack("{s:s,s:s,s:b,s:I,s:I,s:i,s:i,s:i,s:s,s:s,s:s,s:I}", "file", f->label, "format",
                          f->layout == 2 ? "mlx-lm-0.32.2" : "mlx-lm-0.32.0", "compressed", f->compressed, "file_bytes",
                          (json_int_t)f->file_bytes, "raw_bytes", (json_int_t)f->len, "layers", f->n_layers, "kv_heads",
                          f->kv_heads, "head_dim", f->head_dim, "dtype", mt_dtype_name(f->dtype), "cache",
                          mixed ? "mixed" : cls[L->cls], "kv_type", kt, "tokens", (json_int_t)L->offset);
    if (!o) return NULL;
    if (f->v_head_dim != f->head_dim)   /* latent attention: values of their own width */
        json_object_set_new(o, "v_head_dim", json_integer(f->v_head_dim));
    if (L->cls == MT_KVC_ROTATING && !mixed) {
        json_object_set_new(o, "max_size", json_integer((json_int_t)L->max_size));
        json_object_set_new(o, "keep", json_integer((json_int_t)L->keep));
    }
    json_object_set_new(o, "model", f->model ? json_string(f->model) : json_null());
    json_object_set_new(o, "fingerprint", f->fingerprint ? json_string(f->fingerprint) : json_null());
    json_object_set_new(o, "version", f->version ? json_string(f->version) : json_null());
    json_object_set_new(o, "ids", json_boolean(f->tokens != NULL));
    json_t *text = NULL;
    if (f->text) text = json_string(f->text);
    else if (tok && f->tokens) {
        char *s = NULL;
        size_t n = 0;
        if (mt_tokenizer_decode(tok, f->tokens, f->n_tokens, 0, &s, &n, NULL) == MT_OK) text = json_stringn(s, n);
        free(s);
    }
    json_object_set_new(o, "text", text ? text : json_null());
    return o;
}

/* the metadata to write back: the input's facts, with the cache's new ids */
static void meta_of(const mt_kvfile *f, const mt_kvcache *c, const int *window, mt_kvmeta *m) {
    memset(m, 0, sizeof *m);
    m->kv_heads = f->kv_heads;
    m->model = f->model;
    m->fingerprint = f->fingerprint;
    m->tokens = f->tokens;
    m->n_tokens = f->tokens ? (c->len < f->n_tokens ? c->len : f->n_tokens) : 0;
    m->text = m->n_tokens == f->n_tokens ? f->text : NULL;   /* a trimmed cache's text is not known here */
    m->text_len = m->text ? strlen(m->text) : 0;
    m->window = window;
}

int mt_kvfile_apply(const char *in, const char *out, const mt_kvop *op, json_t **report, mt_err *err) {
    *report = NULL;
    mt_kvfile *f = NULL;
    MT_TRY(mt_kvfile_read(in, &f, err));
    int rc = MT_OK;
    int level = op->kind == MT_KVOP_PACK ? op->level : op->kind == MT_KVOP_UNPACK ? -1 : f->compressed ? op->level : -1;
    size_t pl = strlen(out);
    if (pl >= 12 && !strcmp(out + pl - 12, ".safetensors") && op->kind != MT_KVOP_PACK) level = -1;
    size_t bytes = 0;
    if (op->kind == MT_KVOP_PACK || op->kind == MT_KVOP_UNPACK) {
        rc = mt_kvfile_write_bytes(out, f->buf, f->len, level, &bytes, err);
    } else {
        mt_kvcache *c = NULL, *d = NULL;
        int *window = calloc((size_t)f->n_layers, sizeof *window);
        if (!window) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        if (!rc) rc = mt_kvfile_to_cache(f, NULL, &c, err);
        if (!rc) mt_kvfile_windows(f, window);
        if (!rc && op->kind == MT_KVOP_QUANTIZE) {
            int any = 0;
            for (int l = 0; l < f->n_layers; l++) any |= window[l];
            if (any) rc = mt_seterr(err, MT_EINVAL, "%s: sliding-window layers (RotatingKVCache) cannot be quantized", in);
            else rc = mt_kvcache_quantized_copy(c, op->bits, op->group, &d, err);
        } else if (!rc && op->kind == MT_KVOP_DEQUANTIZE)
            rc = mt_kvcache_dequantized_copy(c, &d, err);
        else if (!rc && op->kind == MT_KVOP_TRIM) {
            if (!mt_kvcache_trimmable(c))
                rc = mt_seterr(err, MT_EINVAL, "%s: a rotating cache that has wrapped (%zu tokens seen, %zu kept) cannot be "
                               "trimmed", in, c->len, c->max_size);
            else if (op->n > c->len)
                rc = mt_seterr(err, MT_EINVAL, "%s: cannot drop %zu tokens from a cache of %zu", in, op->n, c->len);
            else mt_kvcache_trim(c, op->n);
        }
        if (rc && !strstr(err->msg, in)) mt_preferr(err, "%s", in);
        const mt_kvcache *w = d ? d : c;
        mt_kvmeta meta;
        if (!rc) {
            meta_of(f, w, window, &meta);
            rc = mt_kvfile_write(out, w, &meta, level, &bytes, err);
        }
        mt_kvcache_free(c);
        mt_kvcache_free(d);
        free(window);
    }
    mt_kvfile_free(f);
    if (rc) return rc;
    mt_kvfile *g = NULL;   /* read back what was written: the report describes it */
    rc = mt_kvfile_read(out, &g, err);
    if (rc) return rc;
    *report = mt_kvfile_describe(g, NULL);
    if (*report) json_object_del(*report, "text");
    mt_kvfile_free(g);
    return *report ? MT_OK : mt_seterr(err, MT_ENOMEM, "out of memory");
}
