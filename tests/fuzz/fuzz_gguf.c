/* fuzz_gguf.c - libFuzzer target: the GGUF reader on arbitrary bytes, then
 * what import-gguf does with an accepted file short of writing it: every
 * metadata value read through the typed accessors, every tensor the reader
 * accepts dequantized (and converted to the MLX affine form where it has
 * one), the tokenizer files rebuilt from the vocabulary.  Every tensor view
 * must lie inside the input (ASan catches reads outside it). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "convert/gguf_import.h"
#include "convert/gguf_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);   /* a private copy: reads past the end are caught */
    if (!buf) return 0;
    memcpy(buf, data, size);
    mt_gguf *g = NULL;
    mt_err err;
    if (mt_gguf_parse(&g, buf, size, "fuzz", &err) == MT_OK) {
        for (size_t i = 0; i < mt_gguf_kv_count(g); i++) {
            const mt_gguf_kv *kv = mt_gguf_kv_at(g, i);
            if (mt_gguf_find(g, kv->key) == NULL) abort();
            int64_t iv;
            double fv;
            int bv;
            const char *s;
            size_t l;
            mt_gguf_int(kv, &iv, &err);
            mt_gguf_float(kv, &fv, &err);
            mt_gguf_bool(kv, &bv, &err);
            if (mt_gguf_str(kv, &s, &l, &err) == MT_OK && ((const uint8_t *)s < buf || (const uint8_t *)s + l > buf + size)) abort();
            for (uint64_t k = 0; kv->type == MT_GV_ARR && k < kv->n && k < 64; k++) {
                if (mt_gguf_arr_str(kv, k, &s, &l) == MT_OK && ((const uint8_t *)s < buf || (const uint8_t *)s + l > buf + size))
                    abort();
                mt_gguf_arr_int(kv, k, &iv);
                mt_gguf_arr_float(kv, k, &fv);
            }
        }
        for (size_t i = 0; i < mt_gguf_tensor_count(g); i++) {
            const mt_gguf_tensor *t = mt_gguf_tensor_at(g, i);
            if (t->data < buf || t->data + t->nbytes > buf + size) abort();
            if (mt_gguf_tensor_get(g, t->name) != t) abort();
            size_t n = (size_t)t->nelem;
            if (n == 0 || n > (1u << 16) || !mt_ggml_can_dequantize(t->type)) continue;
            float *y = malloc(n * sizeof *y);
            if (y && mt_ggml_dequantize(t->type, t->data, y, n, &err) != MT_OK) abort();
            free(y);
            int bits = mt_ggml_affine_bits(t->type);
            size_t K = (size_t)t->ne[0];
            if (bits && K % 32 == 0) {
                size_t rows = n / K;
                uint32_t *w = malloc(rows * K * (size_t)bits / 8 + 4);
                uint16_t *sc = malloc(rows * K / 32 * 2 + 2), *bi = malloc(rows * K / 32 * 2 + 2);
                if (w && sc && bi &&
                    mt_ggml_to_affine(t->type, t->data, rows, K, w, sc, bi) != mt_ggml_affine_exact(t->type, t->data, n / 32))
                    abort();
                free(w), free(sc), free(bi);
            }
        }
        json_t *tok = NULL, *cfg = NULL;
        if (mt_gguf_tokenizer_files(g, &tok, &cfg, &err) == MT_OK && (!tok || !cfg)) abort();
        json_decref(tok);
        json_decref(cfg);
        mt_gguf_free(g);
    } else if (g) {
        abort();   /* failures leave nothing allocated */
    }
    free(buf);
    return 0;
}
