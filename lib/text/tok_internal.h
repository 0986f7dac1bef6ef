/* tok_internal.h - private data structures shared by the tokenizer sources
 * (tokenizer.c, tok_util.c, tok_normalize.c, tok_pretok.c, tok_model.c,
 * tok_decode.c). Not part of the public API. */
#ifndef MT_TOK_INTERNAL_H
#define MT_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <jansson.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "core/err.h"
#include "text/tokenizer.h"
#include "text/unicode_hf.h"

/* ---- small helpers ---- */
char *tk_dupn(const char *s, size_t n);                         /* malloc'd copy + NUL; NULL on OOM */
const char *tk_jstr(json_t *o, const char *k, size_t *n);      /* string member or NULL; *n its length */

/* ---- growable byte buffer ---- */
typedef struct { char *p; size_t n, cap; int oom; } tk_buf;
void tk_buf_reserve(tk_buf *b, size_t extra);
void tk_buf_put(tk_buf *b, const void *s, size_t n);
static inline void tk_buf_putc(tk_buf *b, char c) {
    if (b->n + 1 > b->cap) tk_buf_reserve(b, 1);
    if (!b->oom) b->p[b->n++] = c;
}
void tk_buf_put_cp(tk_buf *b, uint32_t cp); /* UTF-8 encode */
void tk_buf_free(tk_buf *b);

/* ---- UTF-8 ---- */
/* Decode one code point at s[0..n) (n >= 1, valid UTF-8 assumed); returns its length. */
static inline int tk_utf8_dec(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80 || n < 2) { *cp = c; return 1; }
    if (c < 0xE0) { *cp = ((c & 0x1F) << 6) | (s[1] & 0x3F); return 2; }
    if (c < 0xF0 || n < 4) {
        if (n < 3) { *cp = c; return 1; }
        *cp = ((c & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F); return 3;
    }
    *cp = ((c & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}
static inline int tk_utf8_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}
/* Length of the maximal valid prefix... : replace invalid UTF-8 by U+FFFD the
 * way Rust's String::from_utf8_lossy does. Appends to out. */
void tk_utf8_lossy(tk_buf *out, const unsigned char *s, size_t n);
/* 1 if s[0..n) is valid UTF-8. */
int tk_utf8_valid(const unsigned char *s, size_t n);
/* Length of a valid UTF-8 sequence starting at s (<= n), or 0 if invalid/incomplete. */
int tk_utf8_seq_ok(const unsigned char *s, size_t n);

/* Unicode predicates, in the versions HF tokenizers uses (text/unicode_hf.h) */
int tk_is_whitespace(uint32_t cp);   /* char::is_whitespace (White_Space) */
static inline int tk_is_word(uint32_t cp) { return tk_hf_is_word(cp); }        /* regex crate \w */
static inline int tk_is_bert_punct(uint32_t cp) { return tk_hf_is_punct(cp); } /* ASCII punct or P* */

/* ---- hash maps ---- */
static inline uint64_t tk_hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL ^ (n * 0x9E3779B97F4A7C15ULL);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        __builtin_memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    uint64_t w = 0;
    for (size_t k = 0; i < n; i++, k += 8) w |= (uint64_t)s[i] << k;
    h = (h ^ w) * 0x9E3779B97F4A7C15ULL;
    h ^= h >> 32;
    return h;
}
static inline uint64_t tk_hash_u64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb3fe1a85ec53ULL; x ^= x >> 33;
    return x;
}

/* string -> id; the strings live in a tk_strtab (id -> (offset,len)). */
typedef struct {
    char *data; size_t n, cap;   /* concatenated strings, each NUL-terminated */
    uint64_t *off;               /* per id: offset into data; UINT64_MAX = unused */
    uint32_t *len;
    size_t nids;
} tk_strtab;
typedef struct {
    int32_t *slots; /* id or -1 */
    size_t mask;
    size_t count;
} tk_strmap;
int  tk_strmap_init(tk_strmap *m, size_t expected);
void tk_strmap_free(tk_strmap *m);
/* Insert id for key (strings taken from tab). Overwrites an existing equal key. */
int  tk_strmap_put(tk_strmap *m, const tk_strtab *tab, const char *k, size_t n, int32_t id);
int32_t tk_strmap_get(const tk_strmap *m, const tk_strtab *tab, const char *k, size_t n);

typedef struct {
    uint64_t *keys; /* UINT64_MAX = empty */
    uint64_t *vals;
    size_t mask, count;
} tk_u64map;
int  tk_u64map_init(tk_u64map *m, size_t expected);
void tk_u64map_free(tk_u64map *m);
int  tk_u64map_put(tk_u64map *m, uint64_t k, uint64_t v); /* grows */
static inline int tk_u64map_get(const tk_u64map *m, uint64_t k, uint64_t *v) {
    if (!m->keys) return 0;
    size_t i = tk_hash_u64(k) & m->mask;
    for (;;) {
        uint64_t kk = m->keys[i];
        if (kk == k) { *v = m->vals[i]; return 1; }
        if (kk == UINT64_MAX) return 0;
        i = (i + 1) & m->mask;
    }
}

/* byte trie: node 0 = root; edges in a u64 map (node<<8|byte -> child). */
typedef struct {
    tk_u64map edges;
    int32_t *val; size_t nnodes, cap;
    uint8_t first[32]; /* bitset of first bytes */
} tk_trie;
int  tk_trie_init(tk_trie *t);
void tk_trie_free(tk_trie *t);
int  tk_trie_add(tk_trie *t, const char *s, size_t n, int32_t v);
static inline int32_t tk_trie_step(const tk_trie *t, int32_t node, unsigned char c) {
    uint64_t v;
    if (!tk_u64map_get(&t->edges, ((uint64_t)node << 8) | c, &v)) return -1;
    return (int32_t)v;
}

/* ---- pipeline components ---- */
enum { TK_N_NONE, TK_N_SEQ, TK_N_NFC, TK_N_NFD, TK_N_NFKC, TK_N_NFKD, TK_N_LOWER, TK_N_STRIP,
       TK_N_STRIPACC, TK_N_REPLACE, TK_N_PREPEND, TK_N_BERT, TK_N_PRECOMPILED, TK_N_BYTELEVEL };
typedef struct tk_norm {
    int type;
    struct tk_norm *subs; size_t nsubs;
    int left, right;                 /* Strip */
    char *pat; size_t patlen;        /* Replace (String) */
    pcre2_code *re;                  /* Replace (Regex) */
    char *content; size_t contentlen;/* Replace / Prepend */
    int clean_text, chinese, strip_accents, lowercase; /* Bert */
    unsigned char *blob; size_t bloblen; /* Precompiled: raw charsmap */
    const uint32_t *da; size_t nda;  /* Precompiled: double array units */
    const char *normalized; size_t nnormalized; /* Precompiled: replacement strings */
} tk_norm;

enum { TK_P_NONE, TK_P_SEQ, TK_P_SPLIT, TK_P_BYTELEVEL, TK_P_METASPACE, TK_P_BERT, TK_P_WHITESPACE,
       TK_P_WSSPLIT, TK_P_PUNCT, TK_P_DIGITS, TK_P_CHARDELIM };
enum { TK_B_REMOVED, TK_B_ISOLATED, TK_B_MERGED_PREV, TK_B_MERGED_NEXT, TK_B_CONTIGUOUS };
typedef struct tk_pretok {
    int type;
    struct tk_pretok *subs; size_t nsubs;
    pcre2_code *re; char *pat; size_t patlen; int behavior, invert; /* Split / Punct(behavior) */
    int add_prefix_space, use_regex, defer; /* ByteLevel (defer: raw bytes passed to model) */
    char *repl; size_t repllen; int prepend_scheme, split; /* Metaspace: 0 always 1 first 2 never */
    int individual_digits;
    uint32_t delim;
} tk_pretok;

enum { TK_D_NONE, TK_D_SEQ, TK_D_BYTELEVEL, TK_D_REPLACE, TK_D_BYTEFALLBACK, TK_D_FUSE, TK_D_STRIP,
       TK_D_METASPACE, TK_D_WORDPIECE, TK_D_BPE, TK_D_CTC };
typedef struct tk_dec {
    int type;
    struct tk_dec *subs; size_t nsubs;
    char *pat; size_t patlen; char *content; size_t contentlen; /* Replace; Strip content */
    uint32_t strip_cp; int start, stop;  /* Strip */
    int prepend_scheme; uint32_t repl_cp; char *repl; size_t repllen; /* Metaspace */
    char *prefix; size_t prefixlen; int cleanup; /* WordPiece */
    char *suffix; size_t suffixlen;              /* BPE decoder */
} tk_dec;

enum { TK_M_BPE, TK_M_WORDPIECE, TK_M_UNIGRAM, TK_M_WORDLEVEL };

struct mt_tokenizer {
    tk_strtab tab;            /* id -> token string (model vocab, then added tokens) */
    tk_strmap model_map;      /* model vocab only */
    tk_strmap added_map;      /* added tokens (content) */
    size_t nids;              /* max id + 1 */
    size_t model_nvocab;
    /* ids must be below this (set while loading, before any id-sized table grows):
     * tk_id_limit() of the file's vocab entries and added tokens, so an id of 1e9
     * in a small file is refused instead of sizing tables by it */
    size_t id_limit;
    size_t model_nvocab_decl; /* entries of model.vocab (for id_limit) */
    size_t n_added_decl;      /* entries of added_tokens (for id_limit) */
    uint8_t *flags;           /* per id: 1 model, 2 added, 4 special */
    /* decode strings for added tokens (normalized form when it differs) */
    char **dec_str; uint32_t *dec_len;

    int model;
    int32_t unk;
    int fuse_unk, byte_fallback, ignore_merges;
    char *cont_prefix; size_t cont_prefix_len;
    char *eow_suffix; size_t eow_suffix_len;
    tk_u64map merges;          /* (a<<32|b) -> (rank<<32|new) */
    int32_t byte_tok[256];     /* <0xXX> ids */
    int32_t *cp_id;            /* BPE (not byte-level): id of each BMP char's token, -1 if none */
    int bytelevel_raw;         /* words reach BPE as raw bytes */
    int32_t bl_id[256];        /* id of the byte-level char of each byte */
    tk_strtab rawtab; tk_strmap rawmap; /* byte-level vocab decoded to raw bytes */
    size_t wp_max_chars;
    double *scores; double min_score; tk_trie uni_trie;

    tk_trie added_raw, added_norm; /* added-token matchers */
    int has_added_raw, has_added_norm;
    uint8_t *added_props;      /* per id: 1 single_word, 2 lstrip, 4 rstrip */

    tk_norm norm; tk_pretok pretok; tk_dec dec;
    int32_t *post_prefix; size_t npost_prefix;
    int32_t *post_suffix; size_t npost_suffix;
    struct tk_cache *cache;    /* word -> ids cache shared by threads (sharded, locked) */
    /* during loading only: the raw document and the ranges of model.vocab / model.merges */
    const char *fj_src; size_t fj_r[4];
};

/* byte-level alphabet */
extern const uint16_t tk_byte2cp[256];
int tk_cp2byte(uint32_t cp); /* -1 if not in the alphabet */

/* ---- work area for one encode call ---- */
typedef struct { uint32_t off, len; int32_t id; uint8_t first; } tk_split;
typedef struct { tk_split *v; size_t n, cap; int oom; } tk_splits;
void tk_splits_push(tk_splits *s, uint32_t off, uint32_t len, int32_t id, uint8_t first);

/* loaders (return MT status) */
int tk_norm_load(tk_norm *n, json_t *j, mt_err *err);
void tk_norm_free(tk_norm *n);
/* Normalize s[0..n) appending to out. */
int tk_norm_apply(const tk_norm *nm, const char *s, size_t n, tk_buf *out, mt_err *err);
/* Same; clears *first0 when the first char loses its original offset. */
int tk_norm_apply_first(const tk_norm *nm, const char *s, size_t n, tk_buf *out, int *first0, mt_err *err);
int tk_pretok_load(tk_pretok *p, json_t *j, mt_err *err);
void tk_pretok_free(tk_pretok *p);
/* Refine the splits in (buf, sp): writes a new buffer and split list. */
int tk_pretok_apply(const tk_pretok *p, tk_buf *buf, tk_splits *sp, pcre2_match_data **md, mt_err *err);
int tk_dec_load(tk_dec *d, json_t *j, mt_err *err);
void tk_dec_free(tk_dec *d);
/* Decode a token list (strings) to text. */
int tk_dec_run(const mt_tokenizer *t, const char **toks, const uint32_t *lens, size_t n, tk_buf *out);

int tk_strtab_set(tk_strtab *tab, size_t id, const char *s, size_t n);
void tk_strtab_free(tk_strtab *tab);
static inline const char *tk_strtab_get(const tk_strtab *tab, size_t id, uint32_t *len) {
    if (id >= tab->nids || tab->off[id] == UINT64_MAX) return NULL;
    if (len) *len = tab->len[id];
    return tab->data + tab->off[id];
}

typedef struct { int32_t *v; size_t n, cap; int oom; } tk_ids;
static inline void tk_ids_push(tk_ids *a, int32_t id) {
    if (a->oom) return;
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, nc * sizeof *v);
        if (!v) { a->oom = 1; return; }
        a->v = v; a->cap = nc;
    }
    a->v[a->n++] = id;
}
/* per-call scratch memory of the models */
typedef struct { void *sym; size_t nsym; void *heap; size_t nheap; double *score; int32_t *from, *nid; size_t nvit;
                 tk_buf key; } tk_scratch;
void tk_scratch_free(tk_scratch *s);

/* The bound on token ids for a file of n_vocab vocabulary entries and n_added
 * added tokens: real tokenizers number their tokens 0..n-1 (ids < n_vocab +
 * n_added); twice that plus 1024 leaves room for sparse numberings while
 * keeping every id-indexed table proportional to the file's size. */
static inline size_t tk_id_limit(size_t n_vocab, size_t n_added) {
    size_t n = n_vocab + n_added;
    return n > 0x3FFFFF00 ? 0x7FFFFFF0 : 2 * n + 1024;
}

int tk_model_load(mt_tokenizer *t, json_t *model, mt_err *err);
int tk_cache_new(mt_tokenizer *t);
void tk_cache_free(mt_tokenizer *t);
void tk_model_free(mt_tokenizer *t);
/* Tokenize one pre-token (model input bytes); append ids. Returns MT status. */
int tk_model_tokenize(const mt_tokenizer *t, const char *s, size_t n, tk_ids *out, tk_scratch *sc);

/* minimal JSON scanning (tok_json.c) */
const char *tk_fj_ws(const char *p, const char *e);
const char *tk_fj_string(const char *p, const char *e, tk_buf *out);
const char *tk_fj_skip(const char *p, const char *e);
const char *tk_fj_number(const char *p, const char *e, double *v);
int tk_fj_locate(const char *s, size_t n, size_t r[4]);
/* Members of the object or array at p (after whitespace), counted without decoding
 * them; stops at the first malformed member (the real parse reports it). */
size_t tk_fj_count(const char *p, const char *e);

/* regex helper: compile with UTF|UCP and JIT */
pcre2_code *tk_regex_compile(const char *pat, size_t n, mt_err *err);
/* find next match at or after start; returns 1 with [*ms,*me), 0 none, <0 error */
int tk_regex_next(const pcre2_code *re, const char *s, size_t n, size_t start, pcre2_match_data **md,
                  size_t *ms, size_t *me);

#endif
