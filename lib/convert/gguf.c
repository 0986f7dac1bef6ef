/* gguf.c - GGUF v3 export of MLX llama-family models (see gguf.h). */
#include "core/buf.h"
#include "convert/gguf.h"
#include "convert/gguf_import.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "tensor/dtype.h"
#include "tensor/quant.h"

#define QK 32
#define ALIGN 32

int mt_ggml_type_parse(const char *s, mt_ggml_type *out) {
    static const struct {
        const char *n;
        mt_ggml_type t;
    } m[] = {{"f32", MT_GGML_F32}, {"f16", MT_GGML_F16}, {"q8_0", MT_GGML_Q8_0}, {"q4_0", MT_GGML_Q4_0},
             {"q4_1", MT_GGML_Q4_1}};
    for (size_t i = 0; i < sizeof m / sizeof *m; i++)
        if (s && !strcmp(s, m[i].n)) {
            *out = m[i].t;
            return MT_OK;
        }
    return MT_EINVAL;
}

static size_t type_row_bytes(mt_ggml_type t, size_t n) {
    switch (t) {
    case MT_GGML_F32: return n * 4;
    case MT_GGML_F16: return n * 2;
    case MT_GGML_Q8_0: return n / QK * 34;
    case MT_GGML_Q4_0: return n / QK * 18;
    case MT_GGML_Q4_1: return n / QK * 20;
    }
    return 0;
}

static void put_f16(uint8_t *p, float f) {
    uint16_t h = mt_f32_to_f16(f);
    p[0] = (uint8_t)h, p[1] = (uint8_t)(h >> 8);
}

/* roundf: half away from zero */
void mt_ggml_quantize_q8_0(uint8_t *out, const float *x, size_t n) {
    for (size_t b = 0; b < n / QK; b++, x += QK, out += 34) {
        float amax = 0;
        for (int i = 0; i < QK; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        put_f16(out, d);
        for (int i = 0; i < QK; i++) out[2 + i] = (uint8_t)(int8_t)roundf(x[i] * id);
    }
}

void mt_ggml_quantize_q4_0(uint8_t *out, const float *x, size_t n) {
    for (size_t b = 0; b < n / QK; b++, x += QK, out += 18) {
        float amax = 0, max = 0;
        for (int i = 0; i < QK; i++)
            if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
        float d = max / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
        put_f16(out, d);
        for (int j = 0; j < QK / 2; j++) {
            float a = truncf(x[j] * id + 8.5f), c = truncf(x[j + QK / 2] * id + 8.5f);
            uint8_t q0 = (uint8_t)(a > 15 ? 15 : a), q1 = (uint8_t)(c > 15 ? 15 : c);
            out[2 + j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

void mt_ggml_quantize_q4_1(uint8_t *out, const float *x, size_t n) {
    for (size_t b = 0; b < n / QK; b++, x += QK, out += 20) {
        float mn = x[0], mx = x[0];
        for (int i = 1; i < QK; i++) mn = fminf(mn, x[i]), mx = fmaxf(mx, x[i]);
        float d = (mx - mn) / 15.0f, id = d != 0 ? 1.0f / d : 0.0f;
        put_f16(out, d);
        put_f16(out + 2, mn);
        for (int j = 0; j < QK / 2; j++) {
            float a = truncf((x[j] - mn) * id + 0.5f), c = truncf((x[j + QK / 2] - mn) * id + 0.5f);
            uint8_t q0 = (uint8_t)(a > 15 ? 15 : a), q1 = (uint8_t)(c > 15 ? 15 : c);
            out[4 + j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* ---- byte buffer ---- */
static void gb_u32(mt_buf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    mt_buf_put(b, x, 4);
}
static void gb_u64(mt_buf *b, uint64_t v) {
    gb_u32(b, (uint32_t)v);
    gb_u32(b, (uint32_t)(v >> 32));
}
static void gb_f32(mt_buf *b, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    gb_u32(b, u);
}
static void gb_str(mt_buf *b, const char *s, size_t n) {
    gb_u64(b, n);
    mt_buf_put(b, s, n);
}

enum { GV_U32 = 4, GV_I32 = 5, GV_F32 = 6, GV_BOOL = 7, GV_STR = 8, GV_ARR = 9 };

static void kv_key(mt_buf *b, const char *k, uint32_t type) {
    gb_str(b, k, strlen(k));
    gb_u32(b, type);
}
static void kv_u32(mt_buf *b, size_t *nkv, const char *k, uint32_t v) {
    kv_key(b, k, GV_U32);
    gb_u32(b, v);
    ++*nkv;
}
static void kv_f32(mt_buf *b, size_t *nkv, const char *k, float v) {
    kv_key(b, k, GV_F32);
    gb_f32(b, v);
    ++*nkv;
}
static void kv_str(mt_buf *b, size_t *nkv, const char *k, const char *v) {
    kv_key(b, k, GV_STR);
    gb_str(b, v, strlen(v));
    ++*nkv;
}

/* ---- tensors ---- */
typedef struct gt {
    char name[128];
    const mt_tensor_view *w, *s, *bi;   /* source weight; scales/biases when MLX-quantized */
    int bits, gs;
    size_t rows, cols;
    int ndim;
    mt_ggml_type type;
    int permute_heads;                  /* q/k: n_head to un-rotate with, else 0 */
    size_t nbytes;
    uint64_t offset;
} gt;

static const struct {
    const char *hf, *gg;
} name_map[] = {{"self_attn.q_proj", "attn_q"},   {"self_attn.k_proj", "attn_k"},
                {"self_attn.v_proj", "attn_v"},   {"self_attn.o_proj", "attn_output"},
                {"mlp.gate_proj", "ffn_gate"},    {"mlp.up_proj", "ffn_up"},
                {"mlp.down_proj", "ffn_down"},    {"input_layernorm", "attn_norm"},
                {"post_attention_layernorm", "ffn_norm"}};

/* GGUF name of an MLX module path; 0 if unknown. */
static int gguf_name(const char *path, char *out, size_t n) {
    if (!strcmp(path, "model.embed_tokens")) return snprintf(out, n, "token_embd.weight"), 1;
    if (!strcmp(path, "model.norm")) return snprintf(out, n, "output_norm.weight"), 1;
    if (!strcmp(path, "lm_head")) return snprintf(out, n, "output.weight"), 1;
    int layer, off = 0;
    if (sscanf(path, "model.layers.%d.%n", &layer, &off) == 1 && off > 0) {
        for (size_t i = 0; i < sizeof name_map / sizeof *name_map; i++)
            if (!strcmp(path + off, name_map[i].hf)) return snprintf(out, n, "blk.%d.%s.weight", layer, name_map[i].gg), 1;
    }
    return 0;
}

/* Float rows [rows, cols] of tensor t (dequantized if needed), q/k rows permuted. */
static int tensor_f32(const gt *t, float **out, mt_err *err) {
    size_t n = t->rows * t->cols;
    float *x = malloc(n * sizeof *x + 1);
    if (!x) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (t->s) {
        uint32_t *wc = malloc(t->w->nbytes + 4);
        if (!wc) {
            free(x);
            return mt_seterr(err, MT_ENOMEM, "out of memory");
        }
        memcpy(wc, t->w->data, t->w->nbytes);
        int rc = mt_dequantize_affine(x, wc, t->s->data, t->bi->data, t->s->dtype, t->rows, t->cols, t->bits, t->gs, err);
        free(wc);
        if (rc) {
            free(x);
            return rc;
        }
    } else {
        mt_convert_to_f32(x, t->w->data, t->w->dtype, n);
    }
    if (t->permute_heads) {
        /* HF -> GGML rotary layout: rows (h, j, i) -> (h, i, j), j in {0,1} */
        float *y = malloc(n * sizeof *y + 1);
        if (!y) {
            free(x);
            return mt_seterr(err, MT_ENOMEM, "out of memory");
        }
        size_t H = (size_t)t->permute_heads, per = t->rows / H, half = per / 2;
        for (size_t h = 0; h < H; h++)
            for (size_t i = 0; i < half; i++)
                for (size_t j = 0; j < 2; j++)
                    memcpy(y + (h * per + i * 2 + j) * t->cols, x + (h * per + j * half + i) * t->cols,
                           t->cols * sizeof *x);
        free(x);
        x = y;
    }
    *out = x;
    return MT_OK;
}

/* Lossless MLX 4-bit g32 -> Q4_1 (rows permuted like tensor_f32). */
static int tensor_q4_1_direct(const gt *t, uint8_t *out, mt_err *err) {
    (void)err;
    size_t G = t->cols / QK, wrow = t->cols / 8;
    size_t H = t->permute_heads ? (size_t)t->permute_heads : 1, per = t->rows / H, half = per / 2;
    uint8_t codes[QK];
    for (size_t r = 0; r < t->rows; r++) {
        size_t src = r;
        if (t->permute_heads) {
            size_t h = r / per, k = r % per, i = k / 2, j = k % 2;
            src = h * per + j * half + i;
        }
        uint32_t row[4096 / 8];
        const uint8_t *wr = (const uint8_t *)t->w->data + src * wrow * 4;
        for (size_t g = 0; g < G; g++) {
            memcpy(row, wr + g * 16, 16);
            mt_quant_unpack_row(codes, row, QK, 4);
            uint8_t *blk = out + (r * G + g) * 20;
            const uint8_t *sp = (const uint8_t *)t->s->data + (src * G + g) * 2;
            const uint8_t *bp = (const uint8_t *)t->bi->data + (src * G + g) * 2;
            blk[0] = sp[0], blk[1] = sp[1], blk[2] = bp[0], blk[3] = bp[1];
            for (int j = 0; j < QK / 2; j++) blk[4 + j] = (uint8_t)(codes[j] | (codes[j + QK / 2] << 4));
        }
    }
    return MT_OK;
}

static int encode(const gt *t, uint8_t *out, mt_err *err) {
    if (t->type == MT_GGML_Q4_1 && t->s && t->bits == 4 && t->gs == QK && t->s->dtype == MT_F16)
        return tensor_q4_1_direct(t, out, err);
    float *x = NULL;
    MT_TRY(tensor_f32(t, &x, err));
    size_t n = t->rows * t->cols;
    switch (t->type) {
    case MT_GGML_F32: memcpy(out, x, n * 4); break;
    case MT_GGML_F16:
        for (size_t i = 0; i < n; i++) put_f16(out + 2 * i, x[i]);
        break;
    case MT_GGML_Q8_0: mt_ggml_quantize_q8_0(out, x, n); break;
    case MT_GGML_Q4_0: mt_ggml_quantize_q4_0(out, x, n); break;
    case MT_GGML_Q4_1: mt_ggml_quantize_q4_1(out, x, n); break;
    }
    free(x);
    return MT_OK;
}

/* ---- vocabulary ---- */
static int add_vocab(mt_buf *b, size_t *nkv, const char *dir, long long vocab_size, mt_config *cfg, mt_err *err) {
    char *p = mt_path_join(dir, "tokenizer.json");
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
    json_error_t je;
    json_t *tj = json_load_file(p, 0, &je);
    free(p);
    if (!tj) return mt_seterr(err, MT_EFORMAT, "tokenizer.json: %s", je.text);
    json_t *model = json_object_get(tj, "model"), *vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    const char *mtype = json_string_value(json_object_get(model, "type"));
    int rc = MT_OK;
    if (!mtype || strcmp(mtype, "BPE") || !json_is_object(vocab)) {
        rc = mt_seterr(err, MT_EUNSUPPORTED, "tokenizer.json: only BPE vocabularies are exported");
        goto done;
    }
    size_t nv = (size_t)vocab_size;
    const char **tok = calloc(nv ? nv : 1, sizeof *tok);
    int32_t *type = calloc(nv ? nv : 1, sizeof *type);
    if (!tok || !type) {
        free(tok), free(type);
        rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        goto done;
    }
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        json_int_t id = json_integer_value(v);
        if (id >= 0 && (size_t)id < nv) tok[id] = k, type[id] = 1;
    }
    size_t i;
    json_array_foreach(json_object_get(tj, "added_tokens"), i, v) {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        const char *c = json_string_value(json_object_get(v, "content"));
        if (c && id >= 0 && (size_t)id < nv) {
            tok[id] = c;
            type[id] = json_is_true(json_object_get(v, "special")) ? 3 : 4;
        }
    }
    kv_str(b, nkv, "tokenizer.ggml.model", "gpt2");
    /* the pre-tokenizer llama.cpp knows by name (import-gguf maps it back) */
    kv_str(b, nkv, "tokenizer.ggml.pre", mt_gguf_pre_name(json_object_get(tj, "pre_tokenizer")));
    kv_key(b, "tokenizer.ggml.tokens", GV_ARR);
    gb_u32(b, GV_STR);
    gb_u64(b, nv);
    for (i = 0; i < nv; i++) {
        char pad[32];
        if (tok[i]) gb_str(b, tok[i], strlen(tok[i]));
        else {
            snprintf(pad, sizeof pad, "[PAD%zu]", i);
            gb_str(b, pad, strlen(pad));
            type[i] = 5;
        }
    }
    ++*nkv;
    kv_key(b, "tokenizer.ggml.token_type", GV_ARR);
    gb_u32(b, GV_I32);
    gb_u64(b, nv);
    for (i = 0; i < nv; i++) gb_u32(b, (uint32_t)type[i]);
    ++*nkv;
    if (json_is_array(merges)) {
        kv_key(b, "tokenizer.ggml.merges", GV_ARR);
        gb_u32(b, GV_STR);
        gb_u64(b, json_array_size(merges));
        json_array_foreach(merges, i, v) {
            if (json_is_string(v)) gb_str(b, json_string_value(v), json_string_length(v));
            else {
                const char *a = json_string_value(json_array_get(v, 0)), *c = json_string_value(json_array_get(v, 1));
                char *m = malloc(strlen(a ? a : "") + strlen(c ? c : "") + 2);
                if (!m) {
                    b->oom = 1;
                    break;
                }
                sprintf(m, "%s %s", a ? a : "", c ? c : "");
                gb_str(b, m, strlen(m));
                free(m);
            }
        }
        ++*nkv;
    }
    long long bos = -1, eos = -1;
    json_t *e = mt_config_get(cfg, "eos_token_id");
    if (json_is_array(e)) e = json_array_get(e, 0);
    if (json_is_integer(e)) eos = json_integer_value(e);
    json_t *bo = mt_config_get(cfg, "bos_token_id");
    if (json_is_integer(bo)) bos = json_integer_value(bo);
    if (bos >= 0) kv_u32(b, nkv, "tokenizer.ggml.bos_token_id", (uint32_t)bos);
    if (eos >= 0) kv_u32(b, nkv, "tokenizer.ggml.eos_token_id", (uint32_t)eos);
    /* a TemplateProcessing post-processor that starts with a special token adds BOS */
    json_t *pp = json_object_get(tj, "post_processor"), *first = json_array_get(json_object_get(pp, "single"), 0);
    const char *ppt = json_string_value(json_object_get(pp, "type"));
    int add_bos = bos >= 0 && ppt && !strcmp(ppt, "TemplateProcessing") && json_object_get(first, "SpecialToken") != NULL;
    kv_key(b, "tokenizer.ggml.add_bos_token", GV_BOOL);
    mt_buf_put(b, add_bos ? "\1" : "\0", 1);
    ++*nkv;
    free(tok), free(type);
done:
    json_decref(tj);
    return rc;
}

int mt_export_gguf(const char *dir, const char *path, mt_ggml_type type, mt_err *err) {
    mt_config *cfg = NULL;
    mt_safetensors *st = NULL;
    MT_TRY(mt_config_load(&cfg, dir, err));
    const char *mt = mt_config_model_type(cfg);
    int rc = MT_OK;
    gt *ts = NULL;
    mt_buf b = {0};
    FILE *f = NULL;
    char *tmp = NULL;
    if (!mt || (strcmp(mt, "llama") && strcmp(mt, "mistral"))) {
        rc = mt_seterr(err, MT_EUNSUPPORTED, "export-gguf supports the llama family (model_type %s)", mt ? mt : "?");
        goto done;
    }
    long long H = 0, I = 0, L = 0, NH = 0, NKV = 0, V = 0, ctx = 0, hd = 0;
    double eps = 1e-5, theta = 10000.0;
    if ((rc = mt_config_get_int(cfg, "hidden_size", 0, &H, err)) || (rc = mt_config_get_int(cfg, "intermediate_size", 0, &I, err)) ||
        (rc = mt_config_get_int(cfg, "num_hidden_layers", 0, &L, err)) ||
        (rc = mt_config_get_int(cfg, "num_attention_heads", 0, &NH, err)) ||
        (rc = mt_config_get_int(cfg, "num_key_value_heads", 0, &NKV, err)) ||
        (rc = mt_config_get_int(cfg, "vocab_size", 0, &V, err)) ||
        (rc = mt_config_get_int(cfg, "max_position_embeddings", 2048, &ctx, err)) ||
        (rc = mt_config_get_float(cfg, "rms_norm_eps", 1e-5, &eps, err)) ||
        (rc = mt_config_get_float(cfg, "rope_theta", 10000.0, &theta, err)))
        goto done;
    if (!NKV) NKV = NH;
    if (H <= 0 || NH <= 0 || L <= 0 || V <= 0) {
        rc = mt_seterr(err, MT_EFORMAT, "config.json: missing model dimensions");
        goto done;
    }
    if ((rc = mt_config_get_int(cfg, "head_dim", H / NH, &hd, err))) goto done;
    if ((rc = mt_safetensors_open_dir(&st, dir, err))) goto done;

    size_t n = mt_safetensors_count(st), nt = 0;
    ts = calloc(n ? n : 1, sizeof *ts);
    if (!ts) {
        rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        const mt_tensor_view *w = mt_safetensors_at(st, i);
        size_t l = strlen(w->name);
        if (l < 8 || strcmp(w->name + l - 7, ".weight")) continue;   /* scales/biases go with their weight */
        char mpath[1024], nm[1100];
        if (l - 7 >= sizeof mpath) continue;
        memcpy(mpath, w->name, l - 7);
        mpath[l - 7] = 0;
        gt *t = &ts[nt];
        if (!gguf_name(mpath, t->name, sizeof t->name)) {
            rc = mt_seterr(err, MT_EUNSUPPORTED, "%s: no GGUF name for this tensor", w->name);
            break;
        }
        t->w = w;
        t->ndim = w->ndim;
        snprintf(nm, sizeof nm, "%s.scales", mpath);
        t->s = mt_safetensors_get(st, nm);
        if (t->s) {
            int q = 0;
            mt_quant_params qp;
            if ((rc = mt_config_quant_for(cfg, st, mpath, &q, &qp, err))) break;
            snprintf(nm, sizeof nm, "%s.biases", mpath);
            t->bi = mt_safetensors_get(st, nm);
            if (!q || qp.mode != MT_QMODE_AFFINE || !t->bi || w->ndim != 2) {
                rc = mt_seterr(err, MT_EUNSUPPORTED, "%s: only affine-quantized 2-D layers", mpath);
                break;
            }
            t->bits = qp.bits, t->gs = qp.group_size;
            t->rows = (size_t)w->shape[0];
            t->cols = (size_t)w->shape[1] * 32 / (size_t)qp.bits;
        } else if (w->ndim == 2) {
            t->rows = (size_t)w->shape[0], t->cols = (size_t)w->shape[1];
        } else if (w->ndim == 1) {
            t->rows = 1, t->cols = (size_t)w->shape[0];
        } else {
            rc = mt_seterr(err, MT_EUNSUPPORTED, "%s: rank %d", w->name, w->ndim);
            break;
        }
        t->type = t->ndim == 1 ? MT_GGML_F32 : type;
        if (t->type != MT_GGML_F32 && t->type != MT_GGML_F16 && t->cols % QK) t->type = MT_GGML_F16;
        if (strstr(t->name, ".attn_q.")) t->permute_heads = (int)NH;
        if (strstr(t->name, ".attn_k.")) t->permute_heads = (int)NKV;
        if (t->permute_heads && t->rows % (size_t)(2 * t->permute_heads)) {
            rc = mt_seterr(err, MT_EFORMAT, "%s: rows not divisible by 2*heads", w->name);
            break;
        }
        t->nbytes = type_row_bytes(t->type, t->cols) * t->rows;
        nt++;
    }
    if (rc) goto done;

    /* header + metadata */
    size_t nkv = 0;
    mt_buf kv = {0};
    const char *base = strrchr(dir, '/');
    base = base && base[1] ? base + 1 : dir;
    kv_str(&kv, &nkv, "general.architecture", "llama");
    kv_str(&kv, &nkv, "general.name", base);
    uint32_t ftype = type == MT_GGML_F32 ? 0 : type == MT_GGML_F16 ? 1 : type == MT_GGML_Q4_0 ? 2 : type == MT_GGML_Q4_1 ? 3 : 7;
    kv_u32(&kv, &nkv, "general.file_type", ftype);
    if (type >= MT_GGML_Q4_0) kv_u32(&kv, &nkv, "general.quantization_version", 2);
    kv_u32(&kv, &nkv, "llama.block_count", (uint32_t)L);
    kv_u32(&kv, &nkv, "llama.context_length", (uint32_t)ctx);
    kv_u32(&kv, &nkv, "llama.embedding_length", (uint32_t)H);
    kv_u32(&kv, &nkv, "llama.feed_forward_length", (uint32_t)I);
    kv_u32(&kv, &nkv, "llama.attention.head_count", (uint32_t)NH);
    kv_u32(&kv, &nkv, "llama.attention.head_count_kv", (uint32_t)NKV);
    kv_f32(&kv, &nkv, "llama.rope.freq_base", (float)theta);
    kv_f32(&kv, &nkv, "llama.attention.layer_norm_rms_epsilon", (float)eps);
    kv_u32(&kv, &nkv, "llama.rope.dimension_count", (uint32_t)hd);
    if (hd != H / NH) {
        kv_u32(&kv, &nkv, "llama.attention.key_length", (uint32_t)hd);
        kv_u32(&kv, &nkv, "llama.attention.value_length", (uint32_t)hd);
    }
    kv_u32(&kv, &nkv, "llama.vocab_size", (uint32_t)V);
    if ((rc = add_vocab(&kv, &nkv, dir, V, cfg, err))) {
        free(kv.p);
        goto done;
    }
    gb_u32(&b, 0x46554747u);   /* "GGUF" */
    gb_u32(&b, 3);
    gb_u64(&b, nt);
    gb_u64(&b, nkv);
    mt_buf_put(&b, kv.p, kv.n);
    free(kv.p);
    uint64_t off = 0;
    for (size_t i = 0; i < nt; i++) {
        gt *t = &ts[i];
        gb_str(&b, t->name, strlen(t->name));
        gb_u32(&b, t->ndim == 1 ? 1 : 2);
        gb_u64(&b, t->cols);
        if (t->ndim != 1) gb_u64(&b, t->rows);
        gb_u32(&b, (uint32_t)t->type);
        t->offset = off;
        gb_u64(&b, off);
        off += (t->nbytes + ALIGN - 1) / ALIGN * ALIGN;
    }
    static const uint8_t zeros[ALIGN] = {0};
    if (b.n % ALIGN) mt_buf_put(&b, zeros, ALIGN - b.n % ALIGN);
    if (b.oom) {
        rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        goto done;
    }
    /* a temporary file next to path, renamed into place when complete */
    int fd;
    if ((rc = mt_tmp_open(path, &tmp, &fd, err))) goto done;
    f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        goto done;
    }
    if (fwrite(b.p, 1, b.n, f) != b.n) rc = mt_seterr(err, MT_EIO, "%s: write failed: %s", path, strerror(errno));
    for (size_t i = 0; i < nt && !rc; i++) {
        gt *t = &ts[i];
        uint8_t *buf = malloc(t->nbytes + ALIGN);
        if (!buf) {
            rc = mt_seterr(err, MT_ENOMEM, "out of memory");
            break;
        }
        rc = encode(t, buf, err);
        size_t pad = (ALIGN - t->nbytes % ALIGN) % ALIGN;
        memset(buf + t->nbytes, 0, pad);
        if (!rc && fwrite(buf, 1, t->nbytes + pad, f) != t->nbytes + pad)
            rc = mt_seterr(err, MT_EIO, "%s: write failed: %s", path, strerror(errno));
        free(buf);
    }
    if (!rc && (fflush(f) != 0 || fsync(fileno(f)) != 0)) rc = mt_seterr(err, MT_EIO, "%s: write failed: %s", path, strerror(errno));
    if (fclose(f) != 0 && !rc) rc = mt_seterr(err, MT_EIO, "%s: write failed: %s", path, strerror(errno));
    f = NULL;
    if (!rc) rc = mt_tmp_commit(tmp, path, err);
done:
    if (rc && tmp) mt_tmp_discard(tmp);
    free(tmp);
    free(b.p);
    free(ts);
    mt_safetensors_free(st);
    mt_config_free(cfg);
    return rc;
}
