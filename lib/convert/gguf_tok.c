/* gguf_tok.c - tokenizer.json and tokenizer_config.json rebuilt from a GGUF
 * vocabulary, so that they encode as llama.cpp does with the GGUF file.
 *
 * tokenizer.ggml.model "gpt2": a byte-level BPE (tokens are already in the
 * byte-to-unicode alphabet) with the file's merges; the pre-tokenizer is the
 * one llama.cpp selects for tokenizer.ggml.pre (llama-vocab.cpp), written as
 * the Hugging Face pre-tokenizers the original tokenizer.json used.
 * tokenizer.ggml.model "llama": SentencePiece (BPE over the scores, as
 * llama.cpp's llm_tokenizer_spm: pieces merged highest score first, byte
 * fallback to <0xNN>), written as HF's SentencePiece-BPE (merges derived from
 * the scores, Metaspace-style normalizer, ByteFallback decoder).
 *
 * Token types (llama.cpp): 1 normal, 2 unknown, 3 control, 4 user-defined,
 * 5 unused, 6 byte.  Control, unknown and user-defined tokens become
 * added_tokens, matched in the text before the model runs (llama.cpp's
 * tokenizer_st_partition). */
#include "convert/gguf_import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* ---------------- llama.cpp pre-tokenizers ---------------- */

#define RX_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RX_LLAMA3                                                                                                 \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"
#define RX_QWEN2                                                                                                \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
    "\\s+(?!\\S)|\\s+"

enum { PRE_GPT2, PRE_DIGITS_GPT2, PRE_SPLIT, PRE_DEFAULT };

static const struct pre {
    const char *name;
    int kind;
    const char *rx;       /* PRE_SPLIT: the one regex */
    int ignore_merges;
    int add_bos;          /* llama.cpp's default when tokenizer.ggml.add_bos_token is absent */
} pres[] = {
    {"default", PRE_DEFAULT, NULL, 0, 0},
    {"gpt-2", PRE_GPT2, NULL, 0, 0},
    {"phi-2", PRE_GPT2, NULL, 0, 0},
    {"mpt", PRE_GPT2, NULL, 0, 0},
    {"olmo", PRE_GPT2, NULL, 0, 0},
    {"smollm", PRE_DIGITS_GPT2, NULL, 0, 0},
    {"starcoder", PRE_DIGITS_GPT2, NULL, 0, 0},
    {"refact", PRE_DIGITS_GPT2, NULL, 0, 0},
    {"command-r", PRE_DIGITS_GPT2, NULL, 0, 0},
    {"codeshell", PRE_DIGITS_GPT2, NULL, 0, 0},
    {"exaone", PRE_DIGITS_GPT2, NULL, 0, 0},
    {"minerva-7b", PRE_DIGITS_GPT2, NULL, 0, 0},
    {"llama3", PRE_SPLIT, RX_LLAMA3, 1, 1},
    {"llama-v3", PRE_SPLIT, RX_LLAMA3, 1, 1},
    {"llama-bpe", PRE_SPLIT, RX_LLAMA3, 1, 1},
    {"falcon3", PRE_SPLIT, RX_LLAMA3, 1, 1},
    {"dbrx", PRE_SPLIT, RX_LLAMA3, 0, 0},
    {"smaug-bpe", PRE_SPLIT, RX_LLAMA3, 0, 0},
    {"qwen2", PRE_SPLIT, RX_QWEN2, 0, 0},
    {"deepseek-r1-qwen", PRE_SPLIT, RX_QWEN2, 0, 0},
    {"stablelm2", PRE_SPLIT, RX_QWEN2, 0, 0},
    {"megrez", PRE_SPLIT, RX_QWEN2, 0, 0},
};

static json_t *split_isolated(const char *rx) {
    return json_pack("{s:s, s:{s:s}, s:s, s:b}", "type", "Split", "pattern", "Regex", rx, "behavior", "Isolated",
                     "invert", 0);
}
static json_t *bytelevel(int use_regex) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1,
                     "use_regex", use_regex);
}

static json_t *pre_tokenizer(const struct pre *p) {
    switch (p->kind) {
    case PRE_GPT2: return bytelevel(1);
    case PRE_DIGITS_GPT2:
        return json_pack("{s:s, s:[{s:s, s:b}, o]}", "type", "Sequence", "pretokenizers", "type", "Digits",
                         "individual_digits", 1, bytelevel(1));
    case PRE_SPLIT: return json_pack("{s:s, s:[o, o]}", "type", "Sequence", "pretokenizers", split_isolated(p->rx), bytelevel(0));
    default:
        /* llama.cpp's fallback regexes, applied one after the other */
        return json_pack("{s:s, s:[o, o, o, o, o]}", "type", "Sequence", "pretokenizers",
                         split_isolated("[\\p{P}\\$\\+<=>\\^~\\|]+"), split_isolated(RX_GPT2),
                         split_isolated("\\p{N}+"), split_isolated("[0-9][0-9][0-9]"), bytelevel(0));
    }
}

/* a ByteLevel entry as HF writes it; use_regex absent means true */
static int is_bytelevel(const json_t *j, int use_regex) {
    const json_t *u = json_object_get(j, "use_regex");
    return json_is_string(json_object_get(j, "type")) && !strcmp(json_string_value(json_object_get(j, "type")), "ByteLevel") &&
           (u ? json_is_true(u) : 1) == use_regex;
}

const char *mt_gguf_pre_name(const json_t *pt) {
    if (is_bytelevel(pt, 1)) return "gpt-2";
    const char *type = json_string_value(json_object_get(pt, "type"));
    const json_t *seq = json_object_get(pt, "pretokenizers");
    if (!type || strcmp(type, "Sequence") || json_array_size(seq) != 2) return "default";
    const json_t *a = json_array_get(seq, 0), *b = json_array_get(seq, 1);
    const char *at = json_string_value(json_object_get(a, "type"));
    if (at && !strcmp(at, "Digits") && json_is_true(json_object_get(a, "individual_digits")) && is_bytelevel(b, 1))
        return "smollm";
    const char *rx = json_string_value(json_object_get(json_object_get(a, "pattern"), "Regex"));
    const char *beh = json_string_value(json_object_get(a, "behavior"));
    if (at && !strcmp(at, "Split") && rx && beh && !strcmp(beh, "Isolated") && !json_is_true(json_object_get(a, "invert")) &&
        is_bytelevel(b, 0)) {
        if (!strcmp(rx, RX_LLAMA3)) return "llama-bpe";
        if (!strcmp(rx, RX_QWEN2)) return "qwen2";
    }
    return "default";
}

/* ---------------- shared ---------------- */

typedef struct vocab {
    size_t n;
    const char **s;      /* token text (into the file) */
    size_t *len;
    int32_t *type;
    float *score;        /* NULL when absent */
    long long bos, eos, unk, pad, eot;
    int add_bos, add_eos, has_add_bos, has_add_eos, add_space_prefix, has_add_space_prefix;
} vocab;

static void vocab_free(vocab *v) {
    free(v->s);
    free(v->len);
    free(v->type);
    free(v->score);
}

static long long id_key(const mt_gguf *g, const char *key, size_t n) {
    int64_t v;
    if (mt_gguf_int(mt_gguf_find(g, key), &v, NULL) || v < 0 || (uint64_t)v >= n) return -1;
    return v;
}

static int vocab_read(const mt_gguf *g, vocab *v, mt_err *err) {
    memset(v, 0, sizeof *v);
    const mt_gguf_kv *tk = mt_gguf_find(g, "tokenizer.ggml.tokens");
    if (!tk || tk->type != MT_GV_ARR || tk->arr_type != MT_GV_STR || tk->n == 0)
        return mt_seterr(err, MT_EFORMAT, "GGUF: tokenizer.ggml.tokens is missing or not an array of strings");
    if (tk->n > (1u << 24)) return mt_seterr(err, MT_ELIMIT, "GGUF: %llu tokens is too many", (unsigned long long)tk->n);
    v->n = (size_t)tk->n;
    v->s = calloc(v->n, sizeof *v->s);
    v->len = calloc(v->n, sizeof *v->len);
    v->type = calloc(v->n, sizeof *v->type);
    if (!v->s || !v->len || !v->type) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < v->n; i++) {
        mt_gguf_arr_str(tk, i, &v->s[i], &v->len[i]);
        v->type[i] = TT_NORMAL;
    }
    const mt_gguf_kv *tt = mt_gguf_find(g, "tokenizer.ggml.token_type");
    if (tt) {
        if (tt->type != MT_GV_ARR || tt->n != v->n)
            return mt_seterr(err, MT_EFORMAT, "GGUF: tokenizer.ggml.token_type has %llu entries for %zu tokens",
                             (unsigned long long)tt->n, v->n);
        for (size_t i = 0; i < v->n; i++) {
            int64_t t;
            if (mt_gguf_arr_int(tt, i, &t)) return mt_seterr(err, MT_EFORMAT, "GGUF: tokenizer.ggml.token_type is not an integer array");
            v->type[i] = (int32_t)t;
        }
    }
    const mt_gguf_kv *sc = mt_gguf_find(g, "tokenizer.ggml.scores");
    if (sc) {
        if (sc->type != MT_GV_ARR || sc->n != v->n)
            return mt_seterr(err, MT_EFORMAT, "GGUF: tokenizer.ggml.scores has %llu entries for %zu tokens",
                             (unsigned long long)sc->n, v->n);
        v->score = malloc(v->n * sizeof *v->score);
        if (!v->score) return mt_seterr(err, MT_ENOMEM, "out of memory");
        for (size_t i = 0; i < v->n; i++) {
            double d;
            if (mt_gguf_arr_float(sc, i, &d)) return mt_seterr(err, MT_EFORMAT, "GGUF: tokenizer.ggml.scores is not a number array");
            v->score[i] = (float)d;
        }
    }
    v->bos = id_key(g, "tokenizer.ggml.bos_token_id", v->n);
    v->eos = id_key(g, "tokenizer.ggml.eos_token_id", v->n);
    v->unk = id_key(g, "tokenizer.ggml.unknown_token_id", v->n);
    v->pad = id_key(g, "tokenizer.ggml.padding_token_id", v->n);
    v->eot = id_key(g, "tokenizer.ggml.eot_token_id", v->n);
    v->has_add_bos = !mt_gguf_bool(mt_gguf_find(g, "tokenizer.ggml.add_bos_token"), &v->add_bos, NULL);
    v->has_add_eos = !mt_gguf_bool(mt_gguf_find(g, "tokenizer.ggml.add_eos_token"), &v->add_eos, NULL);
    v->has_add_space_prefix = !mt_gguf_bool(mt_gguf_find(g, "tokenizer.ggml.add_space_prefix"), &v->add_space_prefix, NULL);
    return MT_OK;
}

/* A JSON string of the token's text; NULL (message set) when it is not UTF-8. */
static json_t *tok_str(const vocab *v, size_t i, mt_err *err) {
    json_t *s = json_stringn(v->s[i], v->len[i]);
    if (!s) mt_seterr(err, MT_EFORMAT, "GGUF: token %zu is not valid UTF-8", i);
    return s;
}

static int is_added(const vocab *v, size_t i) {
    return v->type[i] == TT_CONTROL || v->type[i] == TT_USER || v->type[i] == TT_UNKNOWN;
}

static json_t *added_tokens(const vocab *v, mt_err *err) {
    json_t *a = json_array();
    for (size_t i = 0; a && i < v->n; i++) {
        if (!is_added(v, i)) continue;
        json_t *c = tok_str(v, i, err);
        if (!c) {
            json_decref(a);
            return NULL;
        }
        json_array_append_new(a, json_pack("{s:I, s:o, s:b, s:b, s:b, s:b, s:b}", "id", (json_int_t)i, "content", c,
                                           "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special",
                                           v->type[i] != TT_USER));
    }
    return a;
}

/* TemplateProcessing adding bos / eos as the GGUF asks (HF layout). */
static json_t *template_post(const vocab *v, int bos, int eos, mt_err *err) {
    json_t *single = json_array(), *pair = json_array(), *sp = json_object();
    json_t *bs = bos ? tok_str(v, (size_t)v->bos, err) : NULL, *es = eos ? tok_str(v, (size_t)v->eos, err) : NULL;
    if ((bos && !bs) || (eos && !es)) {
        json_decref(single), json_decref(pair), json_decref(sp), json_decref(bs), json_decref(es);
        return NULL;
    }
    for (int k = 0; k < 2; k++) {
        json_t *arr = k ? pair : single;
        for (int part = 0; part <= k; part++) {
            int type_id = part;
            if (bos) json_array_append_new(arr, json_pack("{s:{s:O, s:i}}", "SpecialToken", "id", bs, "type_id", type_id));
            json_array_append_new(arr, json_pack("{s:{s:s, s:i}}", "Sequence", "id", part ? "B" : "A", "type_id", type_id));
            if (eos) json_array_append_new(arr, json_pack("{s:{s:O, s:i}}", "SpecialToken", "id", es, "type_id", type_id));
        }
    }
    if (bos) json_object_set_new(sp, json_string_value(bs), json_pack("{s:O, s:[I], s:[O]}", "id", bs, "ids", (json_int_t)v->bos, "tokens", bs));
    if (eos) json_object_set_new(sp, json_string_value(es), json_pack("{s:O, s:[I], s:[O]}", "id", es, "ids", (json_int_t)v->eos, "tokens", es));
    json_decref(bs), json_decref(es);
    return json_pack("{s:s, s:o, s:o, s:o}", "type", "TemplateProcessing", "single", single, "pair", pair,
                     "special_tokens", sp);
}

/* ---------------- byte-level BPE ("gpt2") ---------------- */

/* The model's "vocab" object into vj: piece -> id, the first id of a piece kept, pieces
 * with an embedded NUL left out (a JSON key cannot hold one). */
static int vocab_json(const vocab *v, json_t *vj, mt_err *err) {
    for (size_t i = 0; i < v->n; i++) {
        json_t *s = tok_str(v, i, err);
        if (!s) return MT_EFORMAT;
        if (!json_object_get(vj, json_string_value(s)) && strlen(json_string_value(s)) == v->len[i])
            json_object_set_new(vj, json_string_value(s), json_integer((json_int_t)i));
        json_decref(s);
    }
    return MT_OK;
}

static int bpe_json(const mt_gguf *g, const vocab *v, json_t **out, int *add_bos, mt_err *err) {
    const char *pre = "default";
    size_t plen = 7;
    const mt_gguf_kv *pk = mt_gguf_find(g, "tokenizer.ggml.pre");
    if (pk && mt_gguf_str(pk, &pre, &plen, err)) return MT_EFORMAT;
    const struct pre *p = NULL;
    for (size_t i = 0; i < sizeof pres / sizeof *pres; i++)
        if (strlen(pres[i].name) == plen && !memcmp(pres[i].name, pre, plen)) p = &pres[i];
    if (!p)
        return mt_seterr(err, MT_EUNSUPPORTED, "GGUF: pre-tokenizer tokenizer.ggml.pre = '%.*s' is not supported",
                         (int)(plen > 64 ? 64 : plen), pre);
    const mt_gguf_kv *mk = mt_gguf_find(g, "tokenizer.ggml.merges");
    if (!mk || mk->type != MT_GV_ARR || mk->arr_type != MT_GV_STR)
        return mt_seterr(err, MT_EFORMAT, "GGUF: a BPE vocabulary without tokenizer.ggml.merges");
    json_t *vj = json_object(), *mj = json_array();
    int rc = vocab_json(v, vj, err);
    for (uint64_t i = 0; i < mk->n && !rc; i++) {
        const char *m;
        size_t ml;
        mt_gguf_arr_str(mk, i, &m, &ml);
        /* llama.cpp splits at the first space after the first byte */
        const char *sp = ml > 1 ? memchr(m + 1, ' ', ml - 1) : NULL;
        if (!sp) {
            rc = mt_seterr(err, MT_EFORMAT, "GGUF: merge %llu ('%.*s') has no space", (unsigned long long)i,
                           (int)(ml > 40 ? 40 : ml), m);
            break;
        }
        json_t *a = json_stringn(m, (size_t)(sp - m)), *b = json_stringn(sp + 1, ml - (size_t)(sp - m) - 1);
        if (!a || !b) {
            json_decref(a), json_decref(b);
            rc = mt_seterr(err, MT_EFORMAT, "GGUF: merge %llu is not valid UTF-8", (unsigned long long)i);
            break;
        }
        json_array_append_new(mj, json_pack("[o, o]", a, b));
    }
    json_t *added = rc ? NULL : added_tokens(v, err);
    if (!rc && !added) rc = MT_EFORMAT;
    *add_bos = v->has_add_bos ? v->add_bos : p->add_bos;
    int add_eos = v->has_add_eos && v->add_eos;
    if (*add_bos && v->bos < 0) *add_bos = 0;
    if (add_eos && v->eos < 0) add_eos = 0;
    json_t *post = NULL;
    if (!rc) {
        if (*add_bos || add_eos) post = template_post(v, *add_bos, add_eos, err);
        else post = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 0, "use_regex", 1);
        if (!post) rc = MT_EFORMAT;
    }
    if (rc) {
        json_decref(vj), json_decref(mj), json_decref(added), json_decref(post);
        return rc;
    }
    json_t *model = json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout", "unk_token",
                              "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0,
                              "ignore_merges", p->ignore_merges, "vocab", vj, "merges", mj);
    *out = json_pack("{s:s, s:n, s:n, s:o, s:n, s:o, s:o, s:o, s:o}", "version", "1.0", "truncation", "padding",
                     "added_tokens", added, "normalizer", "pre_tokenizer", pre_tokenizer(p), "post_processor", post,
                     "decoder", bytelevel(1), "model", model);
    return *out ? MT_OK : mt_seterr(err, MT_ENOMEM, "out of memory");
}

/* ---------------- SentencePiece ("llama") ---------------- */

/* A score-ordered merge list for HF's BPE model: every pair (a, b) of vocabulary
 * pieces whose concatenation is a piece, ranked by the score of the result
 * (highest first; ties by id), as llama.cpp's llm_tokenizer_spm merges the
 * highest-scoring bigram first.  (HF's SentencePiece converters build merges
 * the same way.) */
typedef struct mrg {
    float score;
    uint32_t res, a, b;
} mrg;

static int cmp_mrg(const void *x, const void *y) {
    const mrg *p = x, *q = y;
    if (p->score != q->score) return p->score > q->score ? -1 : 1;
    if (p->res != q->res) return p->res < q->res ? -1 : 1;
    if (p->a != q->a) return p->a < q->a ? -1 : 1;
    return 0;
}

static int spm_json(const mt_gguf *g, const vocab *v, json_t **out, int *add_bos, mt_err *err) {
    (void)g;
    if (!v->score) return mt_seterr(err, MT_EFORMAT, "GGUF: a SentencePiece vocabulary without tokenizer.ggml.scores");
    json_t *vj = json_object();
    int rc = vocab_json(v, vj, err);
    /* merges: for every normal piece, every split into two pieces */
    mrg *ms = NULL;
    size_t nm = 0, cap = 0;
    for (size_t i = 0; i < v->n && !rc; i++) {
        if (v->type[i] != TT_NORMAL && v->type[i] != TT_USER) continue;
        const char *s = v->s[i];
        size_t l = v->len[i];
        for (size_t k = 1; k < l; k++) {
            if (((unsigned char)s[k] & 0xC0) == 0x80) continue;   /* inside a character */
            char *a = strndup(s, k), *b = strndup(s + k, l - k);
            if (!a || !b) {
                free(a), free(b);
                rc = mt_seterr(err, MT_ENOMEM, "out of memory");
                break;
            }
            json_t *ia = json_object_get(vj, a), *ib = json_object_get(vj, b);
            free(a), free(b);
            if (!ia || !ib) continue;
            if (nm == cap) {
                cap = cap ? cap * 2 : 4096;
                mrg *q = realloc(ms, cap * sizeof *q);
                if (!q) {
                    rc = mt_seterr(err, MT_ENOMEM, "out of memory");
                    break;
                }
                ms = q;
            }
            ms[nm++] = (mrg){v->score[i], (uint32_t)i, (uint32_t)json_integer_value(ia), (uint32_t)json_integer_value(ib)};
        }
    }
    json_t *mj = json_array();
    if (!rc) {
        if (nm) qsort(ms, nm, sizeof *ms, cmp_mrg);
        for (size_t i = 0; i < nm; i++)
            json_array_append_new(mj, json_pack("[s#, s#]", v->s[ms[i].a], (int)v->len[ms[i].a], v->s[ms[i].b], (int)v->len[ms[i].b]));
    }
    free(ms);
    json_t *added = rc ? NULL : added_tokens(v, err);
    if (!rc && !added) rc = MT_EFORMAT;
    *add_bos = v->has_add_bos ? v->add_bos : 1;
    int add_eos = v->has_add_eos && v->add_eos;
    if (*add_bos && v->bos < 0) *add_bos = 0;
    if (add_eos && v->eos < 0) add_eos = 0;
    int prefix = v->has_add_space_prefix ? v->add_space_prefix : 1;
    json_t *post = NULL;
    if (!rc) {
        post = (*add_bos || add_eos) ? template_post(v, *add_bos, add_eos, err) : json_null();
        if (!post) rc = MT_EFORMAT;
    }
    json_t *unk = NULL;
    if (!rc && v->unk >= 0 && !(unk = tok_str(v, (size_t)v->unk, err))) rc = MT_EFORMAT;
    if (rc) {
        json_decref(vj), json_decref(mj), json_decref(added), json_decref(post);
        return rc;
    }
    /* normalizer: optional "▁" prefix, spaces -> "▁" (llama.cpp: llama_escape_whitespace) */
    json_t *norm = json_array();
    if (prefix) json_array_append_new(norm, json_pack("{s:s, s:s}", "type", "Prepend", "prepend", "\xe2\x96\x81"));
    json_array_append_new(norm, json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", " ", "content", "\xe2\x96\x81"));
    json_t *dec = json_array();
    json_array_append_new(dec, json_pack("{s:s, s:{s:s}, s:s}", "type", "Replace", "pattern", "String", "\xe2\x96\x81", "content", " "));
    json_array_append_new(dec, json_pack("{s:s}", "type", "ByteFallback"));
    json_array_append_new(dec, json_pack("{s:s}", "type", "Fuse"));
    if (prefix) json_array_append_new(dec, json_pack("{s:s, s:s, s:i, s:i}", "type", "Strip", "content", " ", "start", 1, "stop", 0));
    json_t *model = json_pack("{s:s, s:n, s:o, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout", "unk_token",
                              unk ? unk : json_null(), "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 1,
                              "byte_fallback", 1, "ignore_merges", 0, "vocab", vj, "merges", mj);
    *out = json_pack("{s:s, s:n, s:n, s:o, s:{s:s, s:o}, s:n, s:o, s:{s:s, s:o}, s:o}", "version", "1.0", "truncation",
                     "padding", "added_tokens", added, "normalizer", "type", "Sequence", "normalizers", norm,
                     "pre_tokenizer", "post_processor", post, "decoder", "type", "Sequence", "decoders", dec, "model", model);
    return *out ? MT_OK : mt_seterr(err, MT_ENOMEM, "out of memory");
}

/* ---------------- both files ---------------- */

int mt_gguf_tokenizer_files(const mt_gguf *g, json_t **tok, json_t **cfg, mt_err *err) {
    *tok = *cfg = NULL;
    const char *model;
    size_t ml;
    int rc = mt_gguf_str(mt_gguf_find(g, "tokenizer.ggml.model"), &model, &ml, err);
    if (rc == MT_ENOTFOUND) return mt_seterr(err, MT_EFORMAT, "GGUF: no tokenizer (tokenizer.ggml.model is missing)");
    if (rc) return rc;
    vocab v;
    int add_bos = 0;
    rc = vocab_read(g, &v, err);
    if (!rc) {
        if (ml == 4 && !memcmp(model, "gpt2", 4)) rc = bpe_json(g, &v, tok, &add_bos, err);
        else if (ml == 5 && !memcmp(model, "llama", 5)) rc = spm_json(g, &v, tok, &add_bos, err);
        else
            rc = mt_seterr(err, MT_EUNSUPPORTED, "GGUF: tokenizer model tokenizer.ggml.model = '%.*s' is not supported",
                           (int)(ml > 64 ? 64 : ml), model);
    }
    if (rc) {
        vocab_free(&v);
        return rc;
    }
    json_t *c = json_object(), *dec = json_object();
    json_object_set_new(c, "add_bos_token", json_boolean(add_bos));
    json_object_set_new(c, "add_eos_token", json_boolean(v.has_add_eos && v.add_eos));
    for (size_t i = 0; i < v.n; i++) {
        if (!is_added(&v, i)) continue;
        char k[24];
        snprintf(k, sizeof k, "%zu", i);
        json_object_set_new(dec, k, json_pack("{s:s#, s:b, s:b, s:b, s:b, s:b}", "content", v.s[i], (int)v.len[i], "lstrip", 0,
                                              "normalized", 0, "rstrip", 0, "single_word", 0, "special", v.type[i] != TT_USER));
    }
    json_object_set_new(c, "added_tokens_decoder", dec);
    static const char *const names[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    long long ids[] = {v.bos, v.eos, v.unk, v.pad};
    for (int i = 0; i < 4; i++)
        if (ids[i] >= 0) {
            json_t *s = json_stringn(v.s[ids[i]], v.len[ids[i]]);
            if (s) json_object_set_new(c, names[i], s);
        }
    const char *tpl;
    size_t tl;
    if (!mt_gguf_str(mt_gguf_find(g, "tokenizer.chat_template"), &tpl, &tl, NULL)) {
        json_t *s = json_stringn(tpl, tl);
        if (!s) {
            json_decref(c), json_decref(*tok);
            *tok = NULL;
            vocab_free(&v);
            return mt_seterr(err, MT_EFORMAT, "GGUF: tokenizer.chat_template is not valid UTF-8");
        }
        json_object_set_new(c, "chat_template", s);
    }
    json_object_set_new(c, "clean_up_tokenization_spaces", json_false());
    json_object_set_new(c, "tokenizer_class", json_string("PreTrainedTokenizerFast"));
    vocab_free(&v);
    *cfg = c;
    return MT_OK;
}
