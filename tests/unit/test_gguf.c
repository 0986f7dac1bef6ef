/* test_gguf.c - the GGUF reader and import-gguf (tests/data/gguf, made by
 * tests/gen/gen_gguf_import_fixtures.py with llama.cpp's ggml):
 *  - every block type dequantizes bit for bit as ggml's dequantize_row_*;
 *    the lossless MLX affine forms give the same floats (s*q + b in float32);
 *  - a GGUF built here, then truncated at every length and given lying counts,
 *    lengths, offsets, types: refused with a message, never a crash;
 *  - tiny-mixed.gguf imported: every tensor equals ggml's dequantization,
 *    un-permuted (FNV-1a of the floats MLX computes from our output), the
 *    config, and the rebuilt tokenizer encodes as the original tokenizer.json;
 *  - tiny-gemma3.gguf: norms back from llama.cpp's 1 + w, the gemma3 config, and the
 *    SentencePiece vocabulary rebuilt as a tokenizer.json that encodes as llama.cpp. */
#include <ftw.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "convert/gguf_import.h"
#include "convert/gguf_read.h"
#include "convert/inspect.h"
#include "core/buf.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"
#include "text/tokenizer.h"

#define DATA "tests/data/gguf/"

/* equal values, bit for bit except that -0 equals +0 (ggml's 0 * d is -0
 * when d < 0, MLX's q*d + (-q*d) is +0) and NaN equals NaN */
static int same_floats(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(a[i] == b[i] || (isnan(a[i]) && isnan(b[i])))) return 0;
    return 1;
}

/* ---- block formats ---- */
static void test_blocks(void) {
    mt_gguf *g = NULL;
    mt_err err = {0};
    CHECK_OK(mt_gguf_open(&g, DATA "blocks.gguf", &err), &err);
    if (!g) return;
    int types = 0;
    for (size_t i = 0; i < mt_gguf_tensor_count(g); i++) {
        const mt_gguf_tensor *t = mt_gguf_tensor_at(g, i);
        if (strstr(t->name, ".ref")) continue;
        char rn[128];
        snprintf(rn, sizeof rn, "%s.ref", t->name);
        const mt_gguf_tensor *r = mt_gguf_tensor_get(g, rn);
        CHECK_MSG(r && r->type == MT_GT_F32 && r->nelem == t->nelem, "%s", rn);
        if (!r) continue;
        size_t n = (size_t)t->nelem, K = (size_t)t->ne[0], rows = n / K;
        float *y = malloc(n * sizeof *y), *ref = malloc(n * sizeof *ref), *z = malloc(n * sizeof *z);
        mt_convert_to_f32(ref, r->data, MT_F32, n);
        CHECK_OK(mt_ggml_dequantize(t->type, t->data, y, n, &err), &err);
        CHECK_MSG(same_floats(y, ref, n), "%s: dequantized values differ from ggml's", t->name);
        types++;
        int bits = mt_ggml_affine_bits(t->type);
        if (bits) {
            size_t words = K * (size_t)bits / 32, G = K / 32;
            uint32_t *w = malloc(rows * words * 4);
            uint16_t *s = malloc(rows * G * 2), *b = malloc(rows * G * 2);
            int exact = mt_ggml_to_affine(t->type, t->data, rows, K, w, s, b);
            int pre = mt_ggml_affine_exact(t->type, t->data, n / 32);
            CHECK_EQ_INT(exact, pre);
            if (!strcmp(t->name, "q4_0_big")) {
                CHECK_MSG(!exact, "q4_0_big: -8d overflows float16, must not be exact");
            } else {
                CHECK_MSG(exact, "%s: not exact", t->name);
                for (size_t row = 0; row < rows; row++)
                    CHECK_OK(mt_dequantize_affine_row_f32(z + row * K, w + row * words, s + row * G, b + row * G, MT_F16, K,
                                                          bits, 32, &err), &err);
                CHECK_MSG(same_floats(z, ref, n), "%s: MLX affine form differs from ggml's values", t->name);
            }
            free(w), free(s), free(b);
        }
        free(y), free(ref), free(z);
    }
    CHECK_EQ_INT(types, 14);
    mt_gguf_free(g);
}

/* ---- a GGUF built in memory, then damaged ---- */
typedef struct gb {
    mt_buf b;
    size_t pos_nt, pos_nkv, pos_str_len, pos_arr_len, pos_t0_ndim, pos_t0_ne, pos_t0_type, pos_t0_off, pos_t1_off;
} gb;

static void put32(mt_buf *b, uint32_t v) { mt_buf_put(b, &v, 4); }
static void put64(mt_buf *b, uint64_t v) { mt_buf_put(b, &v, 8); }
static void putstr(mt_buf *b, const char *s) {
    put64(b, strlen(s));
    mt_buf_put(b, s, strlen(s));
}

/* GGUF v3: 3 keys (an architecture string, a u32, a string array), tensors
 * "a" F32 [64] and "b" Q8_0 [32, 2], aligned to 32. */
static void build(gb *g) {
    memset(g, 0, sizeof *g);
    mt_buf *b = &g->b;
    mt_buf_put(b, "GGUF", 4);
    put32(b, 3);
    g->pos_nt = b->n;
    put64(b, 2);
    g->pos_nkv = b->n;
    put64(b, 3);
    putstr(b, "general.architecture");
    put32(b, MT_GV_STR);
    g->pos_str_len = b->n;
    putstr(b, "llama");
    putstr(b, "general.alignment");
    put32(b, MT_GV_U32);
    put32(b, 32);
    putstr(b, "tokenizer.ggml.tokens");
    put32(b, MT_GV_ARR);
    put32(b, MT_GV_STR);
    g->pos_arr_len = b->n;
    put64(b, 2);
    putstr(b, "x");
    putstr(b, "yz");
    putstr(b, "a");
    g->pos_t0_ndim = b->n;
    put32(b, 1);
    g->pos_t0_ne = b->n;
    put64(b, 64);
    g->pos_t0_type = b->n;
    put32(b, MT_GT_F32);
    g->pos_t0_off = b->n;
    put64(b, 0);
    putstr(b, "b");
    put32(b, 2);
    put64(b, 32);
    put64(b, 2);
    put32(b, MT_GT_Q8_0);
    g->pos_t1_off = b->n;
    put64(b, 256);
    while (b->n % 32) mt_buf_put(b, "", 1);
    for (int i = 0; i < 256 + 68; i++) mt_buf_put(b, "\x01", 1);
}

static int parse_bytes(const void *p, size_t n, mt_err *err) {
    mt_gguf *g = NULL;
    int rc = mt_gguf_parse(&g, p, n, "t.gguf", err);
    if (!rc) {
        /* everything handed out lies inside the input */
        for (size_t i = 0; i < mt_gguf_tensor_count(g); i++) {
            const mt_gguf_tensor *t = mt_gguf_tensor_at(g, i);
            if (t->data < (const uint8_t *)p || t->data + t->nbytes > (const uint8_t *)p + n) rc = -1;
        }
    }
    mt_gguf_free(g);
    return rc;
}

static void set64(gb *g, size_t pos, uint64_t v) { memcpy(g->b.p + pos, &v, 8); }
static void set32(gb *g, size_t pos, uint32_t v) { memcpy(g->b.p + pos, &v, 4); }

#define DAMAGED(what, stmt, needle)                                                                   \
    do {                                                                                              \
        gb g_;                                                                                        \
        build(&g_);                                                                                   \
        gb *g = &g_;                                                                                  \
        stmt;                                                                                         \
        mt_err e_ = {0};                                                                              \
        int rc_ = parse_bytes(g->b.p, g->b.n, &e_);                                                   \
        CHECK_MSG(rc_ > 0 && strstr(e_.msg, needle), "%s: rc %d, message '%s'", what, rc_, e_.msg);    \
        free(g->b.p);                                                                                 \
    } while (0)

static void test_damaged(void) {
    gb g;
    build(&g);
    mt_err err = {0};
    CHECK_OK(parse_bytes(g.b.p, g.b.n, &err), &err);
    mt_gguf *m = NULL;
    CHECK_OK(mt_gguf_parse(&m, g.b.p, g.b.n, "t", &err), &err);
    if (m) {
        const char *s;
        size_t l;
        CHECK_OK(mt_gguf_arr_str(mt_gguf_find(m, "tokenizer.ggml.tokens"), 1, &s, &l), &err);
        CHECK(l == 2 && !memcmp(s, "yz", 2));
        const mt_gguf_tensor *t = mt_gguf_tensor_get(m, "b");
        CHECK(t && t->ne[0] == 32 && t->ne[1] == 2 && t->nbytes == 68 && t->offset == 256);
        CHECK(mt_gguf_tensor_get(m, "c") == NULL);
        mt_gguf_free(m);
    }
    /* every truncation is refused */
    int bad = 0;
    for (size_t n = 0; n < g.b.n; n++) {
        mt_err e = {0};
        int rc = parse_bytes(g.b.p, n, &e);
        if (rc <= 0 || !e.msg[0]) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    free(g.b.p);

    DAMAGED("magic", g->b.p[0] = 'X', "not a GGUF file");
    DAMAGED("version 1", set32(g, 4, 1), "version 1");
    DAMAGED("big-endian", set32(g, 4, 0x03000000u), "big-endian");
    DAMAGED("tensor count", set64(g, g->pos_nt, (uint64_t)1 << 40), "tensor count");
    DAMAGED("kv count", set64(g, g->pos_nkv, (uint64_t)1 << 40), "metadata count");
    DAMAGED("string length", set64(g, g->pos_str_len, (uint64_t)1 << 50), "truncated");
    DAMAGED("array length", set64(g, g->pos_arr_len, (uint64_t)1 << 50), "longer than the file");
    DAMAGED("ndim", set32(g, g->pos_t0_ndim, 5), "dimensions");
    DAMAGED("ne overflow", set64(g, g->pos_t0_ne, (uint64_t)1 << 63), "overflows");
    DAMAGED("tensor type", set32(g, g->pos_t0_type, 77), "unknown ggml type 77");
    DAMAGED("offset past end", set64(g, g->pos_t1_off, 1 << 20), "past the end");
    DAMAGED("offset misaligned", set64(g, g->pos_t1_off, 250), "not aligned");
    DAMAGED("overlap", set64(g, g->pos_t1_off, 224), "overlap");
    DAMAGED("block multiple", (set32(g, g->pos_t0_type, MT_GT_Q8_0), set64(g, g->pos_t0_ne, 48)), "not a multiple");
}

/* ---- import ---- */
/* FNV-1a 64 of the float32 bytes, -0 counted as +0 */
static uint64_t fnv(const float *x, size_t n) {
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) {
        float v = x[i] == 0 ? 0.0f : x[i];
        unsigned char p[4];
        memcpy(p, &v, 4);
        for (int k = 0; k < 4; k++) h = (h ^ p[k]) * 0x100000001B3ull;
    }
    return h;
}

static int rm_cb(const char *p, const struct stat *sb, int f, struct FTW *w) {
    (void)sb, (void)f, (void)w;
    return remove(p);
}

/* Compare the folder out with a .ref file: "t NAME FNV" tensor lines and "tok IDS TEXT"
 * lines (add_special: encode with the post-processor, as llama.cpp with BOS).  Counts in
 * *nt, *nk. */
static void check_ref(const char *out, const char *ref, json_t *q, int add_special, int *nt, int *nk) {
    mt_err err = {0};
    char p[400];
    mt_safetensors *st = NULL;
    CHECK_OK(mt_safetensors_open_dir(&st, out, &err), &err);
    FILE *f = fopen(ref, "r");
    CHECK(f != NULL);
    char line[4096];
    int ntensors = 0, ntok = 0;
    mt_tokenizer *tk = NULL;
    snprintf(p, sizeof p, "%s/tokenizer.json", out);
    CHECK_OK(mt_tokenizer_load(&tk, p, &err), &err);
    while (st && tk && f && fgets(line, sizeof line, f)) {
        char name[256];
        uint64_t want;
        if (!strncmp(line, "t ", 2) && sscanf(line + 2, "%255s %" SCNx64, name, &want) == 2) {
            size_t l = strlen(name) - 7;
            char mod[256], sn[300], bn[300];
            snprintf(mod, sizeof mod, "%.*s", (int)l, name);
            snprintf(sn, sizeof sn, "%s.scales", mod);
            snprintf(bn, sizeof bn, "%s.biases", mod);
            const mt_tensor_view *w = mt_safetensors_get(st, name), *s = mt_safetensors_get(st, sn), *b = mt_safetensors_get(st, bn);
            CHECK_MSG(w != NULL, "%s missing", name);
            if (!w) continue;
            size_t rows = (size_t)w->shape[0], n;
            float *x;
            if (s) {
                json_t *ov = json_object_get(q, mod);
                int bits = (int)json_integer_value(json_object_get(ov ? ov : q, "bits"));
                size_t K = (size_t)w->shape[1] * 32 / (size_t)bits;
                n = rows * K;
                x = malloc(n * sizeof *x);
                for (size_t r = 0; r < rows; r++)
                    mt_dequantize_affine_row_f32(x + r * K, (const uint32_t *)w->data + r * (K * (size_t)bits / 32),
                                                 (const uint16_t *)s->data + r * (K / 32), (const uint16_t *)b->data + r * (K / 32),
                                                 s->dtype, K, bits, 32, &err);
            } else {
                n = mt_tensor_numel(w);
                x = malloc(n * sizeof *x);
                mt_convert_to_f32(x, w->data, w->dtype, n);
            }
            CHECK_MSG(fnv(x, n) == want, "%s: values differ (%s)", name, s ? "affine" : mt_dtype_name(w->dtype));
            free(x);
            ntensors++;
        } else if (!strncmp(line, "tok ", 4)) {
            char *sp = strchr(line + 4, ' ');
            json_t *js = sp ? json_loads(sp + 1, JSON_DECODE_ANY, NULL) : NULL;
            *sp = 0;
            int32_t *ids = NULL;
            size_t nid = 0;
            CHECK_OK(mt_tokenizer_encode(tk, json_string_value(js), json_string_length(js), add_special, &ids, &nid, &err), &err);
            char got[2048] = "";
            for (size_t i = 0; i < nid; i++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%d", i ? "," : "", ids[i]);
            CHECK_MSG(!strcmp(got, line + 4), "tokens of %s: %s, want %s", json_string_value(js), got, line + 4);
            free(ids);
            json_decref(js);
            ntok++;
        }
    }
    if (f) fclose(f);
    mt_tokenizer_free(tk);
    mt_safetensors_free(st);
    *nt = ntensors, *nk = ntok;
}

static void test_import(void) {
    char dir[] = "/tmp/test_gguf_XXXXXX";
    if (!mkdtemp(dir)) return;
    char out[300];
    snprintf(out, sizeof out, "%s/m", dir);
    mt_import_gguf_opts o = {0};
    o.src = DATA "tiny-mixed.gguf";
    o.dst = out;
    mt_err err = {0};
    CHECK_OK(mt_import_gguf(&o, &err), &err);
    /* a second run refuses the existing folder */
    CHECK(mt_import_gguf(&o, &err) == MT_EINVAL && strstr(err.msg, "already exists"));

    char p[400];
    snprintf(p, sizeof p, "%s/config.json", out);
    json_t *cfg = json_load_file(p, 0, NULL);
    CHECK(cfg != NULL);
    CHECK_STR(json_string_value(json_object_get(cfg, "model_type")), "llama");
    CHECK_EQ_INT(json_integer_value(json_object_get(cfg, "vocab_size")), 384);
    CHECK_EQ_INT(json_integer_value(json_object_get(cfg, "num_key_value_heads")), 2);
    CHECK(json_is_false(json_object_get(cfg, "tie_word_embeddings")));
    CHECK(json_real_value(json_object_get(cfg, "rms_norm_eps")) == 1e-5);
    json_t *q = json_object_get(cfg, "quantization");
    CHECK_EQ_INT(json_integer_value(json_object_get(q, "group_size")), 32);

    int ntensors = 0, ntok = 0;
    check_ref(out, DATA "tiny-mixed.ref", q, 0, &ntensors, &ntok);
    mt_tokenizer *tk = NULL;
    snprintf(p, sizeof p, "%s/tokenizer.json", out);
    CHECK_OK(mt_tokenizer_load(&tk, p, &err), &err);
    CHECK_EQ_INT(ntensors, 21);
    CHECK_EQ_INT(ntok, 6);
    /* the rebuilt tokenizer adds BOS as the GGUF asks (tokenizer.ggml.add_bos_token) */
    int32_t *ids = NULL;
    size_t nid = 0;
    if (tk && !mt_tokenizer_encode(tk, "hi", 2, 1, &ids, &nid, &err)) CHECK(nid >= 1 && ids[0] == 1);
    free(ids);
    mt_tokenizer_free(tk);
    json_decref(cfg);

    /* -q: dequantized, then quantized like convert (4-bit, group 64) */
    char out2[300];
    snprintf(out2, sizeof out2, "%s/q", dir);
    o.dst = out2;
    o.quantize = 1;
    CHECK_OK(mt_import_gguf(&o, &err), &err);
    snprintf(p, sizeof p, "%s/config.json", out2);
    cfg = json_load_file(p, 0, NULL);
    q = json_object_get(cfg, "quantization");
    CHECK_EQ_INT(json_integer_value(json_object_get(q, "group_size")), 64);
    CHECK_EQ_INT(json_integer_value(json_object_get(q, "bits")), 4);
    json_decref(cfg);
    snprintf(p, sizeof p, "%s/q.float.tmp-%d", dir, (int)getpid());
    CHECK(!mt_file_exists(p));
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_import_gemma3(void) {
    char dir[] = "/tmp/test_gguf_XXXXXX";
    if (!mkdtemp(dir)) return;
    char out[300], p[400];
    snprintf(out, sizeof out, "%s/g", dir);
    mt_import_gguf_opts o = {0};
    o.src = DATA "tiny-gemma3.gguf";
    o.dst = out;
    mt_err err = {0};
    CHECK_OK(mt_import_gguf(&o, &err), &err);
    snprintf(p, sizeof p, "%s/config.json", out);
    json_t *cfg = json_load_file(p, 0, NULL);
    CHECK_STR(json_string_value(json_object_get(cfg, "model_type")), "gemma3_text");
    CHECK_EQ_INT(json_integer_value(json_object_get(cfg, "head_dim")), 32);
    CHECK_EQ_INT(json_integer_value(json_object_get(cfg, "query_pre_attn_scalar")), 32);
    CHECK_EQ_INT(json_integer_value(json_object_get(cfg, "sliding_window")), 64);
    CHECK_EQ_INT(json_integer_value(json_object_get(cfg, "sliding_window_pattern")), 6);
    CHECK(json_real_value(json_object_get(cfg, "rms_norm_eps")) == 1e-6);
    CHECK(json_is_true(json_object_get(cfg, "tie_word_embeddings")));
    CHECK_STR(json_string_value(json_object_get(cfg, "hidden_activation")), "gelu_pytorch_tanh");
    /* eos: <eos> and <end_of_turn> */
    json_t *eos = json_object_get(cfg, "eos_token_id");
    CHECK(json_array_size(eos) == 2 && json_integer_value(json_array_get(eos, 0)) == 1 &&
          json_integer_value(json_array_get(eos, 1)) == 5);
    int nt = 0, nk = 0;
    check_ref(out, DATA "tiny-gemma3.ref", json_object_get(cfg, "quantization"), 1, &nt, &nk);
    CHECK_EQ_INT(nt, 15);
    CHECK_EQ_INT(nk, 6);
    json_decref(cfg);
    /* the same against the GGUF through inspect: every tensor exact */
    char rep[400];
    snprintf(rep, sizeof rep, "%s/inspect.txt", dir);
    FILE *f = fopen(rep, "w");
    CHECK_OK(mt_inspect_gguf(f, out, DATA "tiny-gemma3.gguf", 0, &err), &err);
    fclose(f);
    char *txt = NULL;
    size_t len = 0;
    if (!mt_read_file(rep, &txt, &len, &err)) CHECK(strstr(txt, "lossless: 15 of 15 tensors") != NULL);
    free(txt);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_refused(void) {
    char dir[] = "/tmp/test_gguf_XXXXXX";
    if (!mkdtemp(dir)) return;
    char out[300];
    snprintf(out, sizeof out, "%s/m", dir);
    mt_import_gguf_opts o = {0};
    o.dst = out;
    mt_err err = {0};
    o.src = DATA "arch-mamba.gguf";
    CHECK(mt_import_gguf(&o, &err) == MT_EUNSUPPORTED && strstr(err.msg, "architecture 'mamba' is not supported (supported: llama, qwen2, qwen3, gemma, gemma2, gemma3, phi3, qwen3moe, starcoder2, olmo2, granite, smollm3)"));
    o.src = DATA "type-iq4nl.gguf";
    CHECK(mt_import_gguf(&o, &err) == MT_EUNSUPPORTED && strstr(err.msg, "IQ4_NL"));
    CHECK(!mt_file_exists(out));
    rmdir(dir);
}

int main(void) {
    test_blocks();
    test_damaged();
    test_import();
    test_import_gemma3();
    test_refused();
    return check_report("test_gguf");
}
