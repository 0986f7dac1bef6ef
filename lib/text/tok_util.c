/* tok_util.c - tokenizer support code: byte buffers, UTF-8 helpers (incl.
 * Rust-compatible lossy decoding), Unicode predicates, hash maps, a byte
 * trie, the GPT-2 byte-level alphabet and PCRE2 regex helpers. */
#include <stdlib.h>
#include <string.h>
#include "text/tok_internal.h"

/* ---------------- small helpers ---------------- */
char *tk_dupn(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

const char *tk_jstr(json_t *o, const char *k, size_t *n) {
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v)) return NULL;
    if (n) *n = json_string_length(v);
    return json_string_value(v);
}

/* ---------------- buffers ---------------- */
void tk_buf_reserve(tk_buf *b, size_t extra) {
    if (b->oom) return;
    if (b->n + extra <= b->cap) return;
    size_t nc = b->cap ? b->cap * 2 : 64;
    while (nc < b->n + extra) nc *= 2;
    char *p = realloc(b->p, nc);
    if (!p) { b->oom = 1; return; }
    b->p = p; b->cap = nc;
}
void tk_buf_put(tk_buf *b, const void *s, size_t n) {
    if (!n) return;
    if (b->n + n > b->cap) tk_buf_reserve(b, n);
    if (b->oom) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
void tk_buf_put_cp(tk_buf *b, uint32_t cp) {
    char t[4]; size_t k;
    if (cp < 0x80) { t[0] = (char)cp; k = 1; }
    else if (cp < 0x800) { t[0] = (char)(0xC0 | (cp >> 6)); t[1] = (char)(0x80 | (cp & 0x3F)); k = 2; }
    else if (cp < 0x10000) {
        t[0] = (char)(0xE0 | (cp >> 12)); t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        t[2] = (char)(0x80 | (cp & 0x3F)); k = 3;
    } else {
        t[0] = (char)(0xF0 | (cp >> 18)); t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); t[3] = (char)(0x80 | (cp & 0x3F)); k = 4;
    }
    tk_buf_put(b, t, k);
}
void tk_buf_free(tk_buf *b) { free(b->p); b->p = NULL; b->n = b->cap = 0; }

void tk_splits_push(tk_splits *s, uint32_t off, uint32_t len, int32_t id, uint8_t first) {
    if (s->oom) return;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        tk_split *v = realloc(s->v, nc * sizeof *v);
        if (!v) { s->oom = 1; return; }
        s->v = v; s->cap = nc;
    }
    s->v[s->n++] = (tk_split){off, len, id, first};
}

/* ---------------- UTF-8 ---------------- */
/* Returns the length of the valid sequence at s, or 0 and *bad = bytes to replace. */
static int utf8_check(const unsigned char *s, size_t n, int *bad) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    int need; unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) need = 2;
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else { *bad = 1; return 0; }
    int i = 1;
    for (; i <= need; i++) {
        if ((size_t)i >= n) { *bad = i; return 0; }
        unsigned d = s[i];
        unsigned l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xBF;
        if (d < l || d > h) { *bad = i; return 0; }
    }
    return need + 1;
}
int tk_utf8_seq_ok(const unsigned char *s, size_t n) {
    int bad;
    return utf8_check(s, n, &bad);
}
int tk_utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        int bad, k = utf8_check(s + i, n - i, &bad);
        if (!k) return 0;
        i += (size_t)k;
    }
    return 1;
}
void tk_utf8_lossy(tk_buf *out, const unsigned char *s, size_t n) {
    size_t i = 0, run = 0;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        int bad, k = utf8_check(s + i, n - i, &bad);
        if (k) { i += (size_t)k; continue; }
        tk_buf_put(out, s + run, i - run);
        tk_buf_put(out, "\xEF\xBF\xBD", 3);
        i += (size_t)bad;
        run = i;
    }
    tk_buf_put(out, s + run, n - run);
}

/* ---------------- Unicode predicates ---------------- */
int tk_is_whitespace(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* ---------------- byte-level alphabet ---------------- */
#define BC(b) ((((b) >= 33 && (b) <= 126) || ((b) >= 161 && (b) <= 172) || (b) >= 174) ? (b) : \
               (b) <= 32 ? 256 + (b) : ((b) >= 127 && (b) <= 160) ? 256 + 33 + ((b) - 127) : 323)
#define B4(b) BC(b), BC(b + 1), BC(b + 2), BC(b + 3)
#define B16(b) B4(b), B4(b + 4), B4(b + 8), B4(b + 12)
#define B64(b) B16(b), B16(b + 16), B16(b + 32), B16(b + 48)
const uint16_t tk_byte2cp[256] = {B64(0), B64(64), B64(128), B64(192)};
int tk_cp2byte(uint32_t c) {
    if ((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255)) return (int)c;
    if (c >= 256 && c <= 288) return (int)(c - 256);
    if (c >= 289 && c <= 322) return (int)(c - 289 + 127);
    if (c == 323) return 173;
    return -1;
}

/* ---------------- string map ---------------- */
int tk_strmap_init(tk_strmap *m, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2) cap *= 2;
    m->slots = malloc(cap * sizeof *m->slots);
    if (!m->slots) return MT_ENOMEM;
    memset(m->slots, 0xFF, cap * sizeof *m->slots);
    m->mask = cap - 1;
    m->count = 0;
    return MT_OK;
}
void tk_strmap_free(tk_strmap *m) { free(m->slots); m->slots = NULL; }
static int strmap_grow(tk_strmap *m, const tk_strtab *tab) {
    size_t cap = (m->mask + 1) * 2;
    int32_t *ns = malloc(cap * sizeof *ns);
    if (!ns) return MT_ENOMEM;
    memset(ns, 0xFF, cap * sizeof *ns);
    for (size_t i = 0; i <= m->mask; i++) {
        int32_t id = m->slots[i];
        if (id < 0) continue;
        size_t j = tk_hash_bytes(tab->data + tab->off[id], tab->len[id]) & (cap - 1);
        while (ns[j] >= 0) j = (j + 1) & (cap - 1);
        ns[j] = id;
    }
    free(m->slots);
    m->slots = ns; m->mask = cap - 1;
    return MT_OK;
}
int tk_strmap_put(tk_strmap *m, const tk_strtab *tab, const char *k, size_t n, int32_t id) {
    if ((m->count + 1) * 2 > m->mask + 1) MT_TRY(strmap_grow(m, tab));
    size_t i = tk_hash_bytes(k, n) & m->mask;
    for (;;) {
        int32_t o = m->slots[i];
        if (o < 0) { m->slots[i] = id; m->count++; return MT_OK; }
        if (tab->len[o] == n && memcmp(tab->data + tab->off[o], k, n) == 0) { m->slots[i] = id; return MT_OK; }
        i = (i + 1) & m->mask;
    }
}
int32_t tk_strmap_get(const tk_strmap *m, const tk_strtab *tab, const char *k, size_t n) {
    if (!m->slots) return -1;
    size_t i = tk_hash_bytes(k, n) & m->mask;
    for (;;) {
        int32_t o = m->slots[i];
        if (o < 0) return -1;
        if (tab->len[o] == n && memcmp(tab->data + tab->off[o], k, n) == 0) return o;
        i = (i + 1) & m->mask;
    }
}

/* ---------------- u64 map ---------------- */
int tk_u64map_init(tk_u64map *m, size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2) cap *= 2;
    m->keys = malloc(cap * sizeof *m->keys);
    m->vals = malloc(cap * sizeof *m->vals);
    if (!m->keys || !m->vals) { free(m->keys); free(m->vals); m->keys = NULL; m->vals = NULL; return MT_ENOMEM; }
    memset(m->keys, 0xFF, cap * sizeof *m->keys);
    m->mask = cap - 1;
    m->count = 0;
    return MT_OK;
}
void tk_u64map_free(tk_u64map *m) { free(m->keys); free(m->vals); m->keys = NULL; m->vals = NULL; }
int tk_u64map_put(tk_u64map *m, uint64_t k, uint64_t v) {
    if (!m->keys) MT_TRY(tk_u64map_init(m, 16));
    if ((m->count + 1) * 2 > m->mask + 1) {
        tk_u64map nm;
        MT_TRY(tk_u64map_init(&nm, (m->mask + 1)));
        for (size_t i = 0; i <= m->mask; i++)
            if (m->keys[i] != UINT64_MAX) {
                size_t j = tk_hash_u64(m->keys[i]) & nm.mask;
                while (nm.keys[j] != UINT64_MAX) j = (j + 1) & nm.mask;
                nm.keys[j] = m->keys[i]; nm.vals[j] = m->vals[i]; nm.count++;
            }
        tk_u64map_free(m);
        *m = nm;
    }
    size_t i = tk_hash_u64(k) & m->mask;
    for (;;) {
        if (m->keys[i] == k) { m->vals[i] = v; return MT_OK; }
        if (m->keys[i] == UINT64_MAX) { m->keys[i] = k; m->vals[i] = v; m->count++; return MT_OK; }
        i = (i + 1) & m->mask;
    }
}

/* ---------------- trie ---------------- */
int tk_trie_init(tk_trie *t) {
    memset(t, 0, sizeof *t);
    t->cap = 64;
    t->val = malloc(t->cap * sizeof *t->val);
    if (!t->val) return MT_ENOMEM;
    t->val[0] = -1;
    t->nnodes = 1;
    return tk_u64map_init(&t->edges, 64);
}
void tk_trie_free(tk_trie *t) { tk_u64map_free(&t->edges); free(t->val); t->val = NULL; }
int tk_trie_add(tk_trie *t, const char *s, size_t n, int32_t v) {
    int32_t node = 0;
    if (n) t->first[(unsigned char)s[0] >> 3] |= (uint8_t)(1u << ((unsigned char)s[0] & 7));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int32_t nx = tk_trie_step(t, node, c);
        if (nx < 0) {
            if (t->nnodes == t->cap) {
                int32_t *nv = realloc(t->val, t->cap * 2 * sizeof *nv);
                if (!nv) return MT_ENOMEM;
                t->val = nv; t->cap *= 2;
            }
            nx = (int32_t)t->nnodes++;
            t->val[nx] = -1;
            MT_TRY(tk_u64map_put(&t->edges, ((uint64_t)node << 8) | c, (uint64_t)nx));
        }
        node = nx;
    }
    t->val[node] = v;
    return MT_OK;
}

/* ---------------- regex ---------------- */
/* tokenizer.json regexes are Oniguruma's; PCRE2 compiles them after these
 * rewrites, which give the classes Oniguruma's members:
 * - \s and \S: Oniguruma's (and Rust's) \s is exactly the Unicode White_Space
 *   set; PCRE2's UCP \s differs (e.g. U+180E), so they are spelled out;
 * - \p{X} / \pX (general categories), \d, \w and their negations: Oniguruma's
 *   tables are of a later Unicode version than PCRE2's (unicode_hf.h), so the
 *   code points it has beyond PCRE2 are added as ranges (and the few it lacks
 *   excluded with a lookahead). Inside a bracket class the additions join the
 *   class; a negated escape (\P{X}, \D, \W) inside brackets is left to PCRE2,
 *   as are names not in the table (scripts, long names). */
#define WS_SET "\\t\\n\\x0B\\f\\r \\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

static void put_ranges(tk_buf *o, const tk_urange *r, size_t n) {
    char t[40];
    for (size_t i = 0; i < n; i++) {
        int k = r[i].lo == r[i].hi ? snprintf(t, sizeof t, "\\x{%X}", r[i].lo)
                                   : snprintf(t, sizeof t, "\\x{%X}-\\x{%X}", r[i].lo, r[i].hi);
        tk_buf_put(o, t, (size_t)k);
    }
}
/* the items of class k inside brackets (Oniguruma's members, less k->del) */
static void put_items(tk_buf *o, const tk_uclass *k) {
    tk_buf_put(o, k->base, strlen(k->base));
    put_ranges(o, k->add, k->nadd);
}
/* k (or its complement when neg) as a stand-alone atom */
static void put_atom(tk_buf *o, const tk_uclass *k, int neg) {
    if (!k->ndel) {
        tk_buf_put(o, neg ? "[^" : "[", neg ? 2 : 1);
        put_items(o, k);
        tk_buf_putc(o, ']');
    } else if (!neg) {
        tk_buf_put(o, "(?:(?![", 7);
        put_ranges(o, k->del, k->ndel);
        tk_buf_put(o, "])[", 3);
        put_items(o, k);
        tk_buf_put(o, "])", 2);
    } else {
        tk_buf_put(o, "(?:[^", 5);
        put_items(o, k);
        tk_buf_put(o, "]|[", 3);
        put_ranges(o, k->del, k->ndel);
        tk_buf_put(o, "])", 2);
    }
}
/* The class named by the escape at pat[i] == '\\' (\p{X}, \pX, \P.., \d, \D,
 * \w, \W): its table entry, *neg, and *len, the escape's length; NULL if none. */
static const tk_uclass *escape_class(const char *pat, size_t n, size_t i, int *neg, size_t *len) {
    char d = pat[i + 1];
    if (d == 'd' || d == 'D' || d == 'w' || d == 'W') {
        *neg = d == 'D' || d == 'W';
        *len = 2;
        char nm = (char)(d | 32);
        return tk_hf_regex_class(&nm, 1);
    }
    if ((d != 'p' && d != 'P') || i + 2 >= n) return NULL;
    *neg = d == 'P';
    if (pat[i + 2] != '{') { *len = 3; return tk_hf_regex_class(pat + i + 2, 1); }
    const char *e = memchr(pat + i + 3, '}', n - (i + 3));
    if (!e) return NULL;
    size_t nl = (size_t)(e - (pat + i + 3));
    *len = nl + 4;
    if (nl && pat[i + 3] == '^') return NULL; /* \p{^X}: left to PCRE2 */
    return tk_hf_regex_class(pat + i + 3, nl);
}
static int rewrite_classes(const char *pat, size_t n, tk_buf *o) {
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < n) {
            char d = pat[i + 1];
            int neg = 0;
            size_t len = 0;
            const tk_uclass *k;
            if (d == 's') {
                if (in_class) tk_buf_put(o, WS_SET, sizeof WS_SET - 1);
                else { tk_buf_putc(o, '['); tk_buf_put(o, WS_SET, sizeof WS_SET - 1); tk_buf_putc(o, ']'); }
            } else if (d == 'S' && !in_class) {
                tk_buf_put(o, "[^", 2); tk_buf_put(o, WS_SET, sizeof WS_SET - 1); tk_buf_putc(o, ']');
            } else if ((k = escape_class(pat, n, i, &neg, &len)) && !(in_class && neg)) {
                if (in_class) put_items(o, k);
                else put_atom(o, k, neg);
                i += len - 1;
                continue;
            } else {
                tk_buf_putc(o, c); tk_buf_putc(o, d);
            }
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            tk_buf_putc(o, c);
            if (i + 1 < n && pat[i + 1] == '^') { tk_buf_putc(o, '^'); i++; }
            if (i + 1 < n && pat[i + 1] == ']') { tk_buf_putc(o, ']'); i++; }
            continue;
        }
        if (in_class && c == ']') in_class = 0;
        tk_buf_putc(o, c);
    }
    return o->oom ? -1 : 0;
}
pcre2_code *tk_regex_compile(const char *pat, size_t n, mt_err *err) {
    int ec; PCRE2_SIZE eo;
    tk_buf rw = {0};
    if (rewrite_classes(pat, n, &rw)) { tk_buf_free(&rw); mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory"); return NULL; }
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)(rw.p ? rw.p : ""), rw.n, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    tk_buf_free(&rw);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        mt_seterr(err, MT_EUNSUPPORTED, "tokenizer: regex error at %zu: %s", (size_t)eo, (char *)msg);
        return NULL;
    }
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}
int tk_regex_next(const pcre2_code *re, const char *s, size_t n, size_t start, pcre2_match_data **md,
                  size_t *ms, size_t *me) {
    if (!*md) {
        *md = pcre2_match_data_create(4, NULL);
        if (!*md) return -1;
    }
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK, *md, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(re, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, *md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) return -1;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(*md);
    *ms = ov[0]; *me = ov[1];
    return 1;
}

/* ---------------- string table ---------------- */
int tk_strtab_set(tk_strtab *tab, size_t id, const char *s, size_t n) {
    if (id >= tab->nids) {
        size_t nn = tab->nids ? tab->nids : 1024;
        while (nn <= id) nn *= 2;
        uint64_t *off = realloc(tab->off, nn * sizeof *off);
        if (!off) return MT_ENOMEM;
        tab->off = off;
        uint32_t *len = realloc(tab->len, nn * sizeof *len);
        if (!len) return MT_ENOMEM;
        tab->len = len;
        for (size_t i = tab->nids; i < nn; i++) { tab->off[i] = UINT64_MAX; tab->len[i] = 0; }
        tab->nids = nn;
    }
    if (tab->n + n + 1 > tab->cap) {
        size_t nc = tab->cap ? tab->cap * 2 : 1 << 16;
        while (nc < tab->n + n + 1) nc *= 2;
        char *d = realloc(tab->data, nc);
        if (!d) return MT_ENOMEM;
        tab->data = d; tab->cap = nc;
    }
    memcpy(tab->data + tab->n, s, n);
    tab->data[tab->n + n] = 0;
    tab->off[id] = tab->n;
    tab->len[id] = (uint32_t)n;
    tab->n += n + 1;
    return MT_OK;
}
void tk_strtab_free(tk_strtab *tab) {
    free(tab->data); free(tab->off); free(tab->len);
    memset(tab, 0, sizeof *tab);
}
