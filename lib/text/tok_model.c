/* tok_model.c - the tokenizer models: BPE (rank map over id pairs, heap-
 * driven merge loop, byte-level raw-byte fast path, byte fallback, fused
 * unk, ignore_merges), WordPiece (greedy longest match) and Unigram
 * (Viterbi over a byte trie, fused unk, byte fallback). */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <pthread.h>
#include "text/tok_internal.h"

/* ---------------- word cache ----------------
 * Direct-mapped, sharded by hash, one mutex per shard: encode calls on one
 * tokenizer from several threads share it safely. Only short words whose
 * result has few ids are cached. */
#define CACHE_SHARDS 16
#define CACHE_SLOTS 2048
#define CACHE_WMAX 62
#define CACHE_IMAX 16
typedef struct { uint64_t h; uint8_t wl, ni; char w[CACHE_WMAX]; int32_t ids[CACHE_IMAX]; } centry;
typedef struct { pthread_mutex_t mu; centry *e; } cshard;
struct tk_cache { cshard sh[CACHE_SHARDS]; };

int tk_cache_new(mt_tokenizer *t) {
    struct tk_cache *c = calloc(1, sizeof *c);
    if (!c) return MT_ENOMEM;
    for (int i = 0; i < CACHE_SHARDS; i++) {
        c->sh[i].e = calloc(CACHE_SLOTS, sizeof(centry));
        if (!c->sh[i].e || pthread_mutex_init(&c->sh[i].mu, NULL)) {
            for (int k = 0; k <= i; k++) free(c->sh[k].e);
            for (int k = 0; k < i; k++) pthread_mutex_destroy(&c->sh[k].mu);
            free(c);
            return MT_ENOMEM;
        }
    }
    t->cache = c;
    return MT_OK;
}

void tk_cache_free(mt_tokenizer *t) {
    struct tk_cache *c = t->cache;
    if (!c) return;
    for (int i = 0; i < CACHE_SHARDS; i++) { pthread_mutex_destroy(&c->sh[i].mu); free(c->sh[i].e); }
    free(c);
    t->cache = NULL;
}


void tk_scratch_free(tk_scratch *s) {
    free(s->sym); free(s->heap); free(s->score); free(s->from); free(s->nid);
    tk_buf_free(&s->key);
    memset(s, 0, sizeof *s);
}

static int add_vocab(mt_tokenizer *t, const char *s, size_t n, size_t id, mt_err *err) {
    if (id >= t->id_limit)
        return mt_seterr(err, MT_EFORMAT,
                         "tokenizer: vocab token '%.*s' has id %zu; a file of %zu vocab entries and %zu added "
                         "tokens takes ids below %zu",
                         (int)(n < 40 ? n : 40), s, id, t->model_nvocab_decl, t->n_added_decl, t->id_limit);
    if (tk_strtab_set(&t->tab, id, s, n)) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    if (tk_strmap_put(&t->model_map, &t->tab, s, n, (int32_t)id)) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    if (id + 1 > t->model_nvocab) t->model_nvocab = id + 1;
    return MT_OK;
}

static int32_t vocab_get(const mt_tokenizer *t, const char *s, size_t n) {
    return tk_strmap_get(&t->model_map, &t->tab, s, n);
}

static int add_merge(mt_tokenizer *t, size_t r, const char *a, size_t an, const char *b, size_t bn, tk_buf *key,
                     mt_err *err) {
    int32_t ia = vocab_get(t, a, an), ib = vocab_get(t, b, bn);
    if (ia < 0 || ib < 0) return mt_seterr(err, MT_EFORMAT, "tokenizer: merge #%zu uses a token missing from the vocab", r);
    key->n = 0;
    tk_buf_put(key, a, an);
    size_t pl = t->cont_prefix_len;
    if (pl && bn >= pl && memcmp(b, t->cont_prefix, pl) == 0) tk_buf_put(key, b + pl, bn - pl);
    else tk_buf_put(key, b, bn);
    if (key->oom) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    int32_t in = vocab_get(t, key->p ? key->p : "", key->n);
    if (in < 0) return mt_seterr(err, MT_EFORMAT, "tokenizer: merge #%zu result missing from the vocab", r);
    uint64_t k = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib, old;
    if (tk_u64map_get(&t->merges, k, &old)) return MT_OK; /* first (lowest rank) wins */
    if (tk_u64map_put(&t->merges, k, ((uint64_t)r << 32) | (uint32_t)in)) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    return MT_OK;
}

static int split_merge(const char *s, size_t n, size_t r, const char **a, size_t *an, const char **b, size_t *bn,
                       mt_err *err) {
    const char *sp = memchr(s, ' ', n);
    if (!sp) return mt_seterr(err, MT_EFORMAT, "tokenizer: bad merge #%zu", r);
    *a = s; *an = (size_t)(sp - s); *b = sp + 1; *bn = n - *an - 1;
    return MT_OK;
}

/* model.merges straight from the document text */
static int fast_merges(mt_tokenizer *t, const char *p, const char *e, mt_err *err) {
    tk_buf k1 = {0}, k2 = {0}, key = {0};
    int rc = MT_OK;
    size_t r = 0;
    if (tk_u64map_init(&t->merges, (size_t)(e - p) / 8 + 16)) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    p = tk_fj_ws(p, e);
    if (p >= e || *p != '[') { rc = mt_seterr(err, MT_EFORMAT, "tokenizer: merges must be an array"); goto out; }
    p = tk_fj_ws(p + 1, e);
    if (p < e && *p == ']') goto out;
    for (;; r++) {
        const char *a = "", *b = ""; size_t an = 0, bn = 0;
        p = tk_fj_ws(p, e);
        if (p < e && *p == '"') {
            p = tk_fj_string(p, e, &k1);
            if (!p) break;
            if ((rc = split_merge(k1.p ? k1.p : "", k1.n, r, &a, &an, &b, &bn, err))) goto out;
        } else if (p < e && *p == '[') {
            p = tk_fj_string(tk_fj_ws(p + 1, e), e, &k1);
            if (!p) break;
            p = tk_fj_ws(p, e);
            if (p >= e || *p != ',') { p = NULL; break; }
            p = tk_fj_string(tk_fj_ws(p + 1, e), e, &k2);
            if (!p) break;
            p = tk_fj_ws(p, e);
            if (p >= e || *p != ']') { p = NULL; break; }
            p++;
            a = k1.p ? k1.p : ""; an = k1.n; b = k2.p ? k2.p : ""; bn = k2.n;
        } else {
            p = NULL;
            break;
        }
        if ((rc = add_merge(t, r, a, an, b, bn, &key, err))) goto out;
        p = tk_fj_ws(p, e);
        if (p < e && *p == ',') { p++; continue; }
        if (p < e && *p == ']') break;
        p = NULL;
        break;
    }
    if (!p) rc = mt_seterr(err, MT_EFORMAT, "tokenizer: bad merge #%zu", r);
out:
    tk_buf_free(&k1); tk_buf_free(&k2); tk_buf_free(&key);
    return rc;
}

static int load_merges(mt_tokenizer *t, json_t *merges, mt_err *err) {
    if (t->fj_r[3] > t->fj_r[2]) return fast_merges(t, t->fj_src + t->fj_r[2], t->fj_src + t->fj_r[3], err);
    if (merges && !json_is_array(merges)) return mt_seterr(err, MT_EFORMAT, "tokenizer: merges must be an array");
    size_t nm = json_array_size(merges);
    if (tk_u64map_init(&t->merges, nm + 16)) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    tk_buf key = {0};
    int rc = MT_OK;
    for (size_t r = 0; r < nm && !rc; r++) {
        json_t *m = json_array_get(merges, r);
        const char *a = "", *b = ""; size_t an = 0, bn = 0;
        if (json_is_string(m)) {
            rc = split_merge(json_string_value(m), json_string_length(m), r, &a, &an, &b, &bn, err);
            if (rc) break;
        } else if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
                   json_is_string(json_array_get(m, 1))) {
            a = json_string_value(json_array_get(m, 0)); an = json_string_length(json_array_get(m, 0));
            b = json_string_value(json_array_get(m, 1)); bn = json_string_length(json_array_get(m, 1));
        } else {
            rc = mt_seterr(err, MT_EFORMAT, "tokenizer: bad merge #%zu", r);
            break;
        }
        rc = add_merge(t, r, a, an, b, bn, &key, err);
    }
    tk_buf_free(&key);
    return rc;
}

/* model.vocab {"tok": id, ...} straight from the document text */
static int fast_dict_vocab(mt_tokenizer *t, const char *p, const char *e, mt_err *err) {
    tk_buf k = {0};
    int rc = MT_OK;
    if (tk_strmap_init(&t->model_map, (size_t)(e - p) / 12 + 16)) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    p = tk_fj_ws(p, e);
    if (p >= e || *p != '{') { rc = mt_seterr(err, MT_EFORMAT, "tokenizer: model.vocab must be an object"); goto out; }
    p = tk_fj_ws(p + 1, e);
    if (p < e && *p == '}') goto out;
    for (;;) {
        p = tk_fj_string(tk_fj_ws(p, e), e, &k);
        if (!p) break;
        p = tk_fj_ws(p, e);
        if (p >= e || *p != ':') { p = NULL; break; }
        double v;
        p = tk_fj_number(tk_fj_ws(p + 1, e), e, &v);
        if (!p) break;
        if (!(v >= 0 && v <= 0x7FFFFFF0) || v != (double)(long long)v) {
            rc = mt_seterr(err, MT_EFORMAT, "tokenizer: vocab id for '%.*s' is not a non-negative integer",
                           (int)(k.n < 40 ? k.n : 40), k.p ? k.p : "");
            goto out;
        }
        if ((rc = add_vocab(t, k.p ? k.p : "", k.n, (size_t)v, err))) goto out;
        p = tk_fj_ws(p, e);
        if (p < e && *p == ',') { p++; continue; }
        if (p < e && *p == '}') break;
        p = NULL;
        break;
    }
    if (!p) rc = mt_seterr(err, MT_EFORMAT, "tokenizer: malformed model.vocab");
out:
    tk_buf_free(&k);
    return rc;
}

/* Bound the ids before any entry is stored (tables are indexed by id). */
static void set_id_limit(mt_tokenizer *t, size_t n_vocab) {
    t->model_nvocab_decl = n_vocab;
    t->id_limit = tk_id_limit(n_vocab, t->n_added_decl);
}

static int load_dict_vocab(mt_tokenizer *t, json_t *vocab, mt_err *err) {
    if (t->fj_r[1] > t->fj_r[0]) {
        const char *p = t->fj_src + t->fj_r[0], *e = t->fj_src + t->fj_r[1];
        set_id_limit(t, tk_fj_count(p, e));
        return fast_dict_vocab(t, p, e, err);
    }
    if (!json_is_object(vocab)) return mt_seterr(err, MT_EFORMAT, "tokenizer: model.vocab must be an object");
    set_id_limit(t, json_object_size(vocab));
    if (tk_strmap_init(&t->model_map, json_object_size(vocab) + 16)) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    const char *k;
    json_t *v;
    void *it;
    for (it = json_object_iter(vocab); it; it = json_object_iter_next(vocab, it)) {
        k = json_object_iter_key(it);
        v = json_object_iter_value(it);
        size_t kn = json_object_iter_key_len(it);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return mt_seterr(err, MT_EFORMAT, "tokenizer: vocab id for '%.40s' is not a non-negative integer", k);
        MT_TRY(add_vocab(t, k, kn, (size_t)json_integer_value(v), err));
    }
    return MT_OK;
}

static int32_t unk_from(mt_tokenizer *t, json_t *m) {
    json_t *u = json_object_get(m, "unk_token");
    if (!json_is_string(u)) return -1;
    return vocab_get(t, json_string_value(u), json_string_length(u));
}

static int unigram_vocab(mt_tokenizer *t, json_t *vocab, mt_err *err) {
    if (!json_is_array(vocab)) return mt_seterr(err, MT_EFORMAT, "tokenizer: Unigram vocab must be an array");
    size_t n = json_array_size(vocab);
    set_id_limit(t, n);
    if (tk_strmap_init(&t->model_map, n + 16) || tk_trie_init(&t->uni_trie))
        return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    t->scores = malloc((n ? n : 1) * sizeof *t->scores);
    if (!t->scores) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    t->min_score = 1e300;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(vocab, i);
        json_t *s = json_array_get(e, 0), *sc = json_array_get(e, 1);
        if (!json_is_string(s) || !json_is_number(sc))
            return mt_seterr(err, MT_EFORMAT, "tokenizer: bad Unigram vocab entry #%zu", i);
        MT_TRY(add_vocab(t, json_string_value(s), json_string_length(s), i, err));
        t->scores[i] = json_number_value(sc);
        if (t->scores[i] < t->min_score) t->min_score = t->scores[i];
    }
    /* trie values = id the string maps to (last duplicate wins, like a hash map) */
    for (size_t i = 0; i < n; i++) {
        uint32_t l = 0;
        const char *s = tk_strtab_get(&t->tab, i, &l);
        if (!l) continue;
        if (tk_trie_add(&t->uni_trie, s, l, vocab_get(t, s, l)))
            return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    }
    return MT_OK;
}

int tk_model_load(mt_tokenizer *t, json_t *m, mt_err *err) {
    if (!json_is_object(m)) return mt_seterr(err, MT_EFORMAT, "tokenizer: missing model");
    json_t *type = json_object_get(m, "type");
    const char *ty = json_is_string(type) ? json_string_value(type) : NULL;
    json_t *vocab = json_object_get(m, "vocab");
    if (!ty) {
        /* older files omit the type: guess from the fields */
        if (json_object_get(m, "merges")) ty = "BPE";
        else if (json_is_array(vocab)) ty = "Unigram";
        else if (json_object_get(m, "continuing_subword_prefix")) ty = "WordPiece";
        else return mt_seterr(err, MT_EFORMAT, "tokenizer: model without type");
    }
    for (int i = 0; i < 256; i++) { t->byte_tok[i] = -1; t->bl_id[i] = -1; }
    if (!strcmp(ty, "BPE")) {
        t->model = TK_M_BPE;
        json_t *p = json_object_get(m, "continuing_subword_prefix");
        if (json_is_string(p) && json_string_length(p)) {
            t->cont_prefix = tk_dupn(json_string_value(p), json_string_length(p));
            t->cont_prefix_len = json_string_length(p);
        }
        p = json_object_get(m, "end_of_word_suffix");
        if (json_is_string(p) && json_string_length(p)) {
            t->eow_suffix = tk_dupn(json_string_value(p), json_string_length(p));
            t->eow_suffix_len = json_string_length(p);
        }
        json_t *dr = json_object_get(m, "dropout");
        if (json_is_number(dr) && json_number_value(dr) > 0.0)
            return mt_seterr(err, MT_EUNSUPPORTED, "tokenizer: BPE dropout is not supported");
        t->fuse_unk = json_is_true(json_object_get(m, "fuse_unk"));
        t->byte_fallback = json_is_true(json_object_get(m, "byte_fallback"));
        t->ignore_merges = json_is_true(json_object_get(m, "ignore_merges"));
        MT_TRY(load_dict_vocab(t, vocab, err));
        t->unk = unk_from(t, m);
        MT_TRY(load_merges(t, json_object_get(m, "merges"), err));
        char nm[8];
        for (int b = 0; b < 256; b++) {
            snprintf(nm, sizeof nm, "<0x%02X>", b);
            t->byte_tok[b] = vocab_get(t, nm, 6);
        }
        /* direct table for single BMP chars (SentencePiece-style BPE looks up every char) */
        t->cp_id = malloc(0x10000 * sizeof *t->cp_id);
        if (!t->cp_id) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        tk_buf k = {0};
        for (uint32_t c = 0; c < 0x10000; c++) {
            t->cp_id[c] = -1;
            if (c >= 0xD800 && c <= 0xDFFF) continue;
            k.n = 0;
            tk_buf_put_cp(&k, c);
            if (k.oom) { tk_buf_free(&k); return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory"); }
            t->cp_id[c] = vocab_get(t, k.p, k.n);
        }
        tk_buf_free(&k);
        return MT_OK;
    }
    if (!strcmp(ty, "WordLevel")) {
        t->model = TK_M_WORDLEVEL;
        MT_TRY(load_dict_vocab(t, vocab, err));
        t->unk = unk_from(t, m);
        return MT_OK;
    }
    if (!strcmp(ty, "WordPiece")) {
        t->model = TK_M_WORDPIECE;
        MT_TRY(load_dict_vocab(t, vocab, err));
        t->unk = unk_from(t, m);
        json_t *p = json_object_get(m, "continuing_subword_prefix");
        const char *pre = json_is_string(p) ? json_string_value(p) : "##";
        size_t pl = json_is_string(p) ? json_string_length(p) : 2;
        t->cont_prefix = tk_dupn(pre, pl);
        t->cont_prefix_len = pl;
        json_t *mx = json_object_get(m, "max_input_chars_per_word");
        t->wp_max_chars = json_is_integer(mx) ? (size_t)json_integer_value(mx) : 100;
        if (t->unk < 0) return mt_seterr(err, MT_EFORMAT, "tokenizer: WordPiece unk_token missing from the vocab");
        return MT_OK;
    }
    if (!strcmp(ty, "Unigram")) {
        t->model = TK_M_UNIGRAM;
        json_t *own = NULL;
        if (t->fj_r[1] > t->fj_r[0]) { /* the vocab was cut out of the document: parse just that range */
            json_error_t je;
            own = json_loadb(t->fj_src + t->fj_r[0], t->fj_r[1] - t->fj_r[0], 0, &je);
            if (!own) return mt_seterr(err, MT_EFORMAT, "tokenizer: bad Unigram vocab: %s", je.text);
            vocab = own;
        }
        int urc = unigram_vocab(t, vocab, err);
        json_decref(own);
        MT_TRY(urc);
        json_t *u = json_object_get(m, "unk_id");
        t->unk = json_is_integer(u) ? (int32_t)json_integer_value(u) : -1;
        if (t->unk >= (int32_t)t->model_nvocab) return mt_seterr(err, MT_EFORMAT, "tokenizer: Unigram unk_id out of range");
        t->byte_fallback = json_is_true(json_object_get(m, "byte_fallback"));
        t->fuse_unk = 1;
        char nm[8];
        for (int b = 0; b < 256; b++) {
            snprintf(nm, sizeof nm, "<0x%02X>", b);
            t->byte_tok[b] = vocab_get(t, nm, 6);
        }
        return MT_OK;
    }
    return mt_seterr(err, MT_EUNSUPPORTED, "tokenizer: unsupported model type '%s'", ty);
}

void tk_model_free(mt_tokenizer *t) {
    tk_u64map_free(&t->merges);
    free(t->cp_id);
    free(t->cont_prefix); free(t->eow_suffix);
    tk_strtab_free(&t->rawtab);
    tk_strmap_free(&t->rawmap);
    free(t->scores);
    if (t->uni_trie.val) tk_trie_free(&t->uni_trie);
}

/* ---------------- BPE ---------------- */
typedef struct { int32_t id, prev, next; uint32_t len; } sym_t;
typedef struct { uint32_t rank, pos; int32_t nid; } mrg_t;

static inline int mrg_less(mrg_t a, mrg_t b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }
static void heap_push(mrg_t *h, size_t *n, mrg_t x) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!mrg_less(x, h[p])) break;
        h[i] = h[p]; i = p;
    }
    h[i] = x;
}
static mrg_t heap_pop(mrg_t *h, size_t *n) {
    mrg_t top = h[0], x = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && mrg_less(h[c + 1], h[c])) c++;
        if (!mrg_less(h[c], x)) break;
        h[i] = h[c]; i = c;
    }
    if (m) h[i] = x;
    return top;
}

static int grow(void **p, size_t *cap, size_t need, size_t el) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *q = realloc(*p, nc * el);
    if (!q) return -1;
    *p = q; *cap = nc;
    return 0;
}

static inline int pair_lookup(const mt_tokenizer *t, int32_t a, int32_t b, uint64_t *v) {
    return tk_u64map_get(&t->merges, ((uint64_t)(uint32_t)a << 32) | (uint32_t)b, v);
}

static int bpe_word(const mt_tokenizer *t, const char *s, size_t n, tk_ids *out, tk_scratch *sc) {
    if (!n) return MT_OK;
    if (t->ignore_merges) {
        int32_t id = t->bytelevel_raw ? tk_strmap_get(&t->rawmap, &t->rawtab, s, n) : vocab_get(t, s, n);
        if (id >= 0) { tk_ids_push(out, id); return MT_OK; }
    }
    /* at most n symbols (+ byte fallback never exceeds bytes) */
    if (grow(&sc->sym, &sc->nsym, n + 1, sizeof(sym_t))) return MT_ENOMEM;
    sym_t *sy = sc->sym;
    size_t ns = 0;
    const unsigned char *u = (const unsigned char *)s;
    if (t->bytelevel_raw) {
        for (size_t i = 0; i < n; i++) {
            int32_t id = t->bl_id[u[i]];
            if (id < 0) {
                if (t->unk < 0) continue;
                if (t->fuse_unk && ns && sy[ns - 1].id == t->unk && sy[ns - 1].len) { sy[ns - 1].len++; continue; }
                id = t->unk;
            }
            sy[ns].id = id; sy[ns].len = 1; ns++;
        }
    } else {
        /* like HF: an unknown char opens a pending unk that is only written
         * when a vocab symbol follows (byte-fallback bytes do not flush it) */
        int32_t pend_len = -1;
        for (size_t i = 0; i < n;) {
            size_t l = (size_t)tk_utf8_len(u[i]);
            if (i + l > n) l = n - i;
            int32_t id;
            int has_pre = t->cont_prefix_len && i > 0, has_suf = t->eow_suffix_len && i + l == n;
            if (has_pre || has_suf) {
                sc->key.n = 0;
                if (has_pre) tk_buf_put(&sc->key, t->cont_prefix, t->cont_prefix_len);
                tk_buf_put(&sc->key, s + i, l);
                if (has_suf) tk_buf_put(&sc->key, t->eow_suffix, t->eow_suffix_len);
                if (sc->key.oom) return MT_ENOMEM;
                id = vocab_get(t, sc->key.p, sc->key.n);
            } else if (l <= 3 && t->cp_id) {
                uint32_t cp;
                tk_utf8_dec(u + i, l, &cp);
                id = l == (size_t)tk_utf8_len(u[i]) ? t->cp_id[cp & 0xFFFF] : vocab_get(t, s + i, l);
            } else {
                id = vocab_get(t, s + i, l);
            }
            if (grow(&sc->sym, &sc->nsym, ns + l + 2, sizeof(sym_t))) return MT_ENOMEM;
            sy = sc->sym;
            if (id >= 0) {
                if (pend_len >= 0) { sy[ns].id = t->unk; sy[ns].len = (uint32_t)pend_len; ns++; pend_len = -1; }
                sy[ns].id = id; sy[ns].len = (uint32_t)l; ns++;
            } else {
                int done = 0;
                if (t->byte_fallback) {
                    int ok = 1;
                    for (size_t k = 0; k < l; k++) if (t->byte_tok[u[i + k]] < 0) ok = 0;
                    if (ok) {
                        for (size_t k = 0; k < l; k++) { sy[ns].id = t->byte_tok[u[i + k]]; sy[ns].len = 1; ns++; }
                        done = 1;
                    }
                }
                if (!done && t->unk >= 0) {
                    if (pend_len >= 0 && t->fuse_unk) pend_len += (int32_t)l;
                    else {
                        if (pend_len >= 0) { sy[ns].id = t->unk; sy[ns].len = (uint32_t)pend_len; ns++; }
                        pend_len = (int32_t)l;
                    }
                }
            }
            i += l;
        }
        if (pend_len >= 0) { sy[ns].id = t->unk; sy[ns].len = (uint32_t)pend_len; ns++; }
    }
    if (ns == 0) return MT_OK;
    for (size_t i = 0; i < ns; i++) { sy[i].prev = (int32_t)i - 1; sy[i].next = i + 1 < ns ? (int32_t)i + 1 : -1; }
    if (ns > 1 && ns <= 48) {
        /* short words: keep each pair's rank and scan for the leftmost lowest rank */
        uint32_t rank[48];
        int32_t pid[48];
        uint64_t v;
        for (size_t i = 0; i < ns; i++) {
            rank[i] = UINT32_MAX;
            if (i + 1 < ns && pair_lookup(t, sy[i].id, sy[i + 1].id, &v)) { rank[i] = (uint32_t)(v >> 32); pid[i] = (int32_t)(uint32_t)v; }
        }
        for (;;) {
            uint32_t best = UINT32_MAX;
            int32_t bi = -1;
            for (int32_t i = 0; i >= 0; i = sy[i].next)
                if (rank[i] < best) { best = rank[i]; bi = i; }
            if (bi < 0) break;
            sym_t *a = &sy[bi];
            int32_t j = a->next;
            a->id = pid[bi];
            a->len += sy[j].len;
            sy[j].len = 0;
            a->next = sy[j].next;
            if (a->next >= 0) sy[a->next].prev = bi;
            rank[bi] = UINT32_MAX;
            if (a->next >= 0 && pair_lookup(t, a->id, sy[a->next].id, &v)) { rank[bi] = (uint32_t)(v >> 32); pid[bi] = (int32_t)(uint32_t)v; }
            if (a->prev >= 0) {
                int32_t q = a->prev;
                rank[q] = UINT32_MAX;
                if (pair_lookup(t, sy[q].id, a->id, &v)) { rank[q] = (uint32_t)(v >> 32); pid[q] = (int32_t)(uint32_t)v; }
            }
        }
    } else if (ns > 1) {
        if (grow(&sc->heap, &sc->nheap, ns * 2 + 8, sizeof(mrg_t))) return MT_ENOMEM;
        mrg_t *h = sc->heap;
        size_t hn = 0;
        uint64_t v;
        for (size_t i = 0; i + 1 < ns; i++)
            if (pair_lookup(t, sy[i].id, sy[i + 1].id, &v))
                heap_push(h, &hn, (mrg_t){(uint32_t)(v >> 32), (uint32_t)i, (int32_t)(uint32_t)v});
        while (hn) {
            mrg_t top = heap_pop(h, &hn);
            sym_t *a = &sy[top.pos];
            if (a->len == 0 || a->next < 0) continue;
            sym_t *b = &sy[a->next];
            if (!pair_lookup(t, a->id, b->id, &v) || (int32_t)(uint32_t)v != top.nid) continue;
            /* merge b into a */
            a->id = top.nid;
            a->len += b->len;
            b->len = 0;
            a->next = b->next;
            if (a->next >= 0) sy[a->next].prev = (int32_t)top.pos;
            if (grow(&sc->heap, &sc->nheap, hn + 2, sizeof(mrg_t))) return MT_ENOMEM;
            h = sc->heap;
            if (a->prev >= 0 && pair_lookup(t, sy[a->prev].id, a->id, &v))
                heap_push(h, &hn, (mrg_t){(uint32_t)(v >> 32), (uint32_t)a->prev, (int32_t)(uint32_t)v});
            if (a->next >= 0 && pair_lookup(t, a->id, sy[a->next].id, &v))
                heap_push(h, &hn, (mrg_t){(uint32_t)(v >> 32), top.pos, (int32_t)(uint32_t)v});
        }
    }
    for (int32_t i = 0; i >= 0; i = sy[i].next) tk_ids_push(out, sy[i].id);
    return MT_OK;
}

/* ---------------- WordPiece ---------------- */
static int wordpiece_word(const mt_tokenizer *t, const char *s, size_t n, tk_ids *out, tk_scratch *sc) {
    size_t nchars = 0;
    for (size_t i = 0; i < n; i++) if (((unsigned char)s[i] & 0xC0) != 0x80) nchars++;
    if (nchars > t->wp_max_chars) { tk_ids_push(out, t->unk); return MT_OK; }
    size_t mark = out->n, start = 0;
    while (start < n) {
        size_t end = n;
        int32_t found = -1;
        while (start < end) {
            int32_t id;
            if (start > 0) {
                sc->key.n = 0;
                tk_buf_put(&sc->key, t->cont_prefix, t->cont_prefix_len);
                tk_buf_put(&sc->key, s + start, end - start);
                if (sc->key.oom) return MT_ENOMEM;
                id = vocab_get(t, sc->key.p, sc->key.n);
            } else {
                id = vocab_get(t, s, end);
            }
            if (id >= 0) { found = id; break; }
            /* drop the last char */
            end--;
            while (end > start && ((unsigned char)s[end] & 0xC0) == 0x80) end--;
        }
        if (found < 0) { out->n = mark; tk_ids_push(out, t->unk); return MT_OK; }
        tk_ids_push(out, found);
        start = end;
    }
    return MT_OK;
}

/* ---------------- Unigram ---------------- */
static int unigram_word(const mt_tokenizer *t, const char *s, size_t n, tk_ids *out, tk_scratch *sc) {
    if (!n) return MT_OK;
    if (sc->nvit < n + 1) {
        size_t nc = n + 1 < 256 ? 256 : n + 1;
        double *sco = realloc(sc->score, nc * sizeof *sco);
        if (sco) sc->score = sco;
        int32_t *fr = realloc(sc->from, nc * sizeof *fr);
        if (fr) sc->from = fr;
        int32_t *ni = realloc(sc->nid, nc * sizeof *ni);
        if (ni) sc->nid = ni;
        if (!sco || !fr || !ni) return MT_ENOMEM;
        sc->nvit = nc;
    }
    double *best = sc->score;
    int32_t *from = sc->from, *nid = sc->nid;
    for (size_t i = 0; i <= n; i++) { from[i] = -1; best[i] = 0; nid[i] = -1; }
    double unk_score = t->min_score - 10.0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t st = 0; st < n;) {
        if (st > 0 && from[st] < 0) { /* unreachable: cannot happen since unk always advances */ }
        double base = best[st];
        size_t mblen = (size_t)tk_utf8_len(u[st]);
        if (st + mblen > n) mblen = n - st;
        int single = 0;
        int32_t node = 0;
        for (size_t k = st; k < n; k++) {
            node = tk_trie_step(&t->uni_trie, node, u[k]);
            if (node < 0) break;
            int32_t id = t->uni_trie.val[node];
            if (id < 0) continue;
            size_t kp = k + 1;
            double cand = base + t->scores[id];
            if (from[kp] < 0 || cand > best[kp]) { best[kp] = cand; from[kp] = (int32_t)st; nid[kp] = id; }
            if (kp - st == mblen) single = 1;
        }
        if (!single) {
            if (t->unk < 0) return MT_EINVAL;
            size_t kp = st + mblen;
            double cand = base + unk_score;
            if (from[kp] < 0 || cand > best[kp]) { best[kp] = cand; from[kp] = (int32_t)st; nid[kp] = t->unk; }
        }
        st += mblen;
    }
    /* backtrack: collect segments (start,end) in reverse, fusing unks */
    size_t mark = out->n;
    /* store segment boundaries temporarily in out as pairs, then resolve */
    tk_ids segs = {0};
    size_t e = n;
    int32_t fuse_end = -1; /* end of a pending fused unk run */
    while (e > 0) {
        int32_t st = from[e];
        if (st < 0) { free(segs.v); return MT_EINVAL; }
        if (t->fuse_unk && nid[e] == t->unk) {
            if (fuse_end < 0) fuse_end = (int32_t)e;
        } else {
            if (fuse_end >= 0) { tk_ids_push(&segs, (int32_t)e); tk_ids_push(&segs, fuse_end); fuse_end = -1; }
            tk_ids_push(&segs, st); tk_ids_push(&segs, (int32_t)e);
        }
        e = (size_t)st;
    }
    if (fuse_end >= 0) { tk_ids_push(&segs, 0); tk_ids_push(&segs, fuse_end); }
    if (segs.oom) { free(segs.v); return MT_ENOMEM; }
    (void)mark;
    for (size_t i = segs.n; i >= 2; i -= 2) {
        size_t a = (size_t)segs.v[i - 2], b = (size_t)segs.v[i - 1];
        int32_t id = vocab_get(t, s + a, b - a);
        if (id < 0) {
            if (t->byte_fallback) {
                int ok = 1;
                for (size_t k = a; k < b; k++) if (t->byte_tok[u[k]] < 0) ok = 0;
                if (ok) { for (size_t k = a; k < b; k++) tk_ids_push(out, t->byte_tok[u[k]]); continue; }
            }
            id = t->unk;
        }
        tk_ids_push(out, id);
    }
    free(segs.v);
    return MT_OK;
}

int tk_model_tokenize(const mt_tokenizer *t, const char *s, size_t n, tk_ids *out, tk_scratch *sc) {
    int rc;
    uint64_t h = 0;
    cshard *sh = NULL;
    size_t slot = 0, mark = out->n;
    if (t->cache && n && n <= CACHE_WMAX) {
        h = tk_hash_bytes(s, n) | 1;
        sh = &t->cache->sh[h >> 60];
        slot = (size_t)(h >> 8) & (CACHE_SLOTS - 1);
        pthread_mutex_lock(&sh->mu);
        centry *e = &sh->e[slot];
        if (e->h == h && e->wl == n && memcmp(e->w, s, n) == 0) {
            int32_t ids[CACHE_IMAX];
            uint8_t ni = e->ni;
            memcpy(ids, e->ids, ni * sizeof *ids);
            pthread_mutex_unlock(&sh->mu);
            for (uint8_t k = 0; k < ni; k++) tk_ids_push(out, ids[k]);
            return out->oom ? MT_ENOMEM : MT_OK;
        }
        pthread_mutex_unlock(&sh->mu);
    }
    switch (t->model) {
    case TK_M_BPE: rc = bpe_word(t, s, n, out, sc); break;
    case TK_M_WORDPIECE: rc = wordpiece_word(t, s, n, out, sc); break;
    case TK_M_WORDLEVEL: {
        int32_t id = vocab_get(t, s, n);
        if (id < 0) id = t->unk;
        if (id < 0) { rc = MT_EINVAL; break; }
        tk_ids_push(out, id);
        rc = MT_OK;
        break;
    }
    default: rc = unigram_word(t, s, n, out, sc); break;
    }
    if (!rc && out->oom) rc = MT_ENOMEM;
    if (!rc && sh && out->n - mark <= CACHE_IMAX) {
        pthread_mutex_lock(&sh->mu);
        centry *e = &sh->e[slot];
        e->h = h;
        e->wl = (uint8_t)n;
        e->ni = (uint8_t)(out->n - mark);
        memcpy(e->w, s, n);
        if (e->ni) memcpy(e->ids, out->v + mark, e->ni * sizeof *e->ids);
        pthread_mutex_unlock(&sh->mu);
    }
    return rc;
}
