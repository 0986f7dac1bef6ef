/* tok_decode.c - tokenizer.json decoders (ByteLevel, Replace, ByteFallback,
 * Fuse, Strip, Metaspace, WordPiece, BPEDecoder, Sequence) applied as HF's
 * decode_chain over a token list, plus the streaming detokenizer. */
#include <stdlib.h>
#include <string.h>
#include "text/tok_internal.h"


int tk_dec_load(tk_dec *d, json_t *j, mt_err *err) {
    memset(d, 0, sizeof *d);
    if (!j || json_is_null(j)) { d->type = TK_D_NONE; return MT_OK; }
    const char *type = tk_jstr(j, "type", NULL);
    if (!type) return mt_seterr(err, MT_EFORMAT, "tokenizer: decoder without type");
    size_t n;
    const char *s;
    if (!strcmp(type, "Sequence")) {
        d->type = TK_D_SEQ;
        json_t *a = json_object_get(j, "decoders");
        if (!json_is_array(a)) return mt_seterr(err, MT_EFORMAT, "tokenizer: Sequence without decoders");
        size_t k = json_array_size(a);
        d->subs = calloc(k ? k : 1, sizeof *d->subs);
        if (!d->subs) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        for (size_t i = 0; i < k; i++) {
            d->nsubs = i + 1;
            MT_TRY(tk_dec_load(&d->subs[i], json_array_get(a, i), err));
        }
        return MT_OK;
    }
    if (!strcmp(type, "ByteLevel")) { d->type = TK_D_BYTELEVEL; return MT_OK; }
    if (!strcmp(type, "ByteFallback")) { d->type = TK_D_BYTEFALLBACK; return MT_OK; }
    if (!strcmp(type, "Fuse")) { d->type = TK_D_FUSE; return MT_OK; }
    if (!strcmp(type, "Replace")) {
        d->type = TK_D_REPLACE;
        json_t *p = json_object_get(j, "pattern");
        s = tk_jstr(p, "String", &n);
        if (!s) return mt_seterr(err, MT_EUNSUPPORTED, "tokenizer: Replace decoder supports String patterns only");
        d->pat = tk_dupn(s, n); d->patlen = n;
        s = tk_jstr(j, "content", &n);
        if (!s) return mt_seterr(err, MT_EFORMAT, "tokenizer: Replace decoder without content");
        d->content = tk_dupn(s, n); d->contentlen = n;
        if (!d->pat || !d->content) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        return MT_OK;
    }
    if (!strcmp(type, "Strip")) {
        d->type = TK_D_STRIP;
        s = tk_jstr(j, "content", &n);
        if (!s || !n) return mt_seterr(err, MT_EFORMAT, "tokenizer: Strip decoder without content");
        tk_utf8_dec((const unsigned char *)s, n, &d->strip_cp);
        json_t *a = json_object_get(j, "start"), *b = json_object_get(j, "stop");
        d->start = json_is_integer(a) ? (int)json_integer_value(a) : 0;
        d->stop = json_is_integer(b) ? (int)json_integer_value(b) : 0;
        if (d->start < 0 || d->stop < 0) return mt_seterr(err, MT_EFORMAT, "tokenizer: bad Strip decoder");
        return MT_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        d->type = TK_D_METASPACE;
        s = tk_jstr(j, "replacement", &n);
        if (!s) { s = "\xE2\x96\x81"; n = 3; }
        tk_utf8_dec((const unsigned char *)s, n, &d->repl_cp);
        const char *ps = tk_jstr(j, "prepend_scheme", NULL);
        if (ps) d->prepend_scheme = !strcmp(ps, "first") ? 1 : !strcmp(ps, "never") ? 2 : 0;
        else d->prepend_scheme = json_is_false(json_object_get(j, "add_prefix_space")) ? 2 : 0;
        return MT_OK;
    }
    if (!strcmp(type, "WordPiece")) {
        d->type = TK_D_WORDPIECE;
        s = tk_jstr(j, "prefix", &n);
        if (!s) { s = "##"; n = 2; }
        d->prefix = tk_dupn(s, n); d->prefixlen = n;
        if (!d->prefix) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        json_t *c = json_object_get(j, "cleanup");
        d->cleanup = json_is_boolean(c) ? json_is_true(c) : 1;
        return MT_OK;
    }
    if (!strcmp(type, "BPEDecoder")) {
        d->type = TK_D_BPE;
        s = tk_jstr(j, "suffix", &n);
        if (!s) { s = "</w>"; n = 4; }
        d->suffix = tk_dupn(s, n); d->suffixlen = n;
        if (!d->suffix) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        return MT_OK;
    }
    return mt_seterr(err, MT_EUNSUPPORTED, "tokenizer: unsupported decoder '%s'", type);
}

void tk_dec_free(tk_dec *d) {
    for (size_t i = 0; i < d->nsubs; i++) tk_dec_free(&d->subs[i]);
    free(d->subs); free(d->pat); free(d->content); free(d->repl); free(d->prefix); free(d->suffix);
    memset(d, 0, sizeof *d);
}

/* ---- token lists ---- */
typedef struct { tk_buf b; size_t *off, *len; size_t n, cap; int oom; } tlist;
static void tl_begin(tlist *l) {
    if (l->oom) return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 32;
        size_t *o = realloc(l->off, nc * sizeof *o);
        if (!o) { l->oom = 1; return; }
        l->off = o;
        size_t *q = realloc(l->len, nc * sizeof *q);
        if (!q) { l->oom = 1; return; }
        l->len = q;
        l->cap = nc;
    }
    l->off[l->n] = l->b.n;
    l->len[l->n] = 0;
    l->n++;
}
static void tl_end(tlist *l) { if (!l->oom && l->n) l->len[l->n - 1] = l->b.n - l->off[l->n - 1]; }
static void tl_free(tlist *l) { tk_buf_free(&l->b); free(l->off); free(l->len); memset(l, 0, sizeof *l); }
#define TS(l, i) ((l)->b.p ? (l)->b.p + (l)->off[i] : "")

static void replace_all(tk_buf *o, const char *s, size_t n, const char *pat, size_t pl, const char *rep, size_t rl) {
    size_t last = 0, i = 0;
    if (pl)
        while (i + pl <= n) {
            const char *f = memmem(s + i, n - i, pat, pl);
            if (!f) break;
            size_t at = (size_t)(f - s);
            tk_buf_put(o, s + last, at - last);
            tk_buf_put(o, rep, rl);
            i = last = at + pl;
        }
    tk_buf_put(o, s + last, n - last);
}

static void cleanup_wp(tk_buf *o, const char *s, size_t n) {
    static const char *const pats[][2] = {{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
                                          {" n't", "n't"}, {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"},
                                          {" 've", "'ve"}, {" 're", "'re"}};
    tk_buf a = {0}, b = {0};
    tk_buf_put(&a, s, n);
    for (size_t k = 0; k < sizeof pats / sizeof pats[0]; k++) {
        b.n = 0;
        replace_all(&b, a.p ? a.p : "", a.n, pats[k][0], strlen(pats[k][0]), pats[k][1], strlen(pats[k][1]));
        tk_buf t = a; a = b; b = t;
    }
    tk_buf_put(o, a.p, a.n);
    if (a.oom || b.oom) o->oom = 1;
    tk_buf_free(&a); tk_buf_free(&b);
}

static int hexv(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void flush_bytes(tlist *o, tk_buf *bytes) {
    if (!bytes->n) return;
    if (tk_utf8_valid((const unsigned char *)bytes->p, bytes->n)) {
        tl_begin(o); tk_buf_put(&o->b, bytes->p, bytes->n); tl_end(o);
    } else {
        for (size_t i = 0; i < bytes->n; i++) { tl_begin(o); tk_buf_put(&o->b, "\xEF\xBF\xBD", 3); tl_end(o); }
    }
    bytes->n = 0;
}

static void dec1(const tk_dec *d, tlist *in, tlist *o) {
    switch (d->type) {
    case TK_D_NONE:
        for (size_t i = 0; i < in->n; i++) { tl_begin(o); tk_buf_put(&o->b, TS(in, i), in->len[i]); tl_end(o); }
        return;
    case TK_D_BYTELEVEL: {
        tk_buf raw = {0};
        for (size_t i = 0; i < in->n; i++) {
            const unsigned char *s = (const unsigned char *)TS(in, i);
            size_t n = in->len[i], mark = raw.n;
            int ok = 1;
            for (size_t k = 0; k < n;) {
                uint32_t cp; k += (size_t)tk_utf8_dec(s + k, n - k, &cp);
                int b = tk_cp2byte(cp);
                if (b < 0) { ok = 0; break; }
                tk_buf_putc(&raw, (char)b);
            }
            if (!ok) { raw.n = mark; tk_buf_put(&raw, s, n); }
        }
        tl_begin(o);
        tk_utf8_lossy(&o->b, (const unsigned char *)(raw.p ? raw.p : ""), raw.n);
        tl_end(o);
        if (raw.oom) o->oom = 1;
        tk_buf_free(&raw);
        return;
    }
    case TK_D_REPLACE:
        for (size_t i = 0; i < in->n; i++) {
            tl_begin(o);
            replace_all(&o->b, TS(in, i), in->len[i], d->pat, d->patlen, d->content, d->contentlen);
            tl_end(o);
        }
        return;
    case TK_D_BYTEFALLBACK: {
        tk_buf bytes = {0};
        for (size_t i = 0; i < in->n; i++) {
            const char *s = TS(in, i);
            size_t n = in->len[i];
            if (n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' && hexv(s[3]) >= 0 &&
                hexv(s[4]) >= 0) {
                tk_buf_putc(&bytes, (char)(hexv(s[3]) * 16 + hexv(s[4])));
                continue;
            }
            flush_bytes(o, &bytes);
            tl_begin(o); tk_buf_put(&o->b, s, n); tl_end(o);
        }
        flush_bytes(o, &bytes);
        if (bytes.oom) o->oom = 1;
        tk_buf_free(&bytes);
        return;
    }
    case TK_D_FUSE:
        tl_begin(o);
        for (size_t i = 0; i < in->n; i++) tk_buf_put(&o->b, TS(in, i), in->len[i]);
        tl_end(o);
        return;
    case TK_D_STRIP:
        for (size_t i = 0; i < in->n; i++) {
            const unsigned char *s = (const unsigned char *)TS(in, i);
            size_t n = in->len[i], a = 0, b = n;
            for (int k = 0; k < d->start && a < n; k++) {
                uint32_t cp; int l = tk_utf8_dec(s + a, n - a, &cp);
                if (cp != d->strip_cp) break;
                a += (size_t)l;
            }
            for (int k = 0; k < d->stop && b > a; k++) {
                size_t q = b - 1;
                while (q > a && (s[q] & 0xC0) == 0x80) q--;
                uint32_t cp; tk_utf8_dec(s + q, b - q, &cp);
                if (cp != d->strip_cp) break;
                b = q;
            }
            tl_begin(o); tk_buf_put(&o->b, s + a, b - a); tl_end(o);
        }
        return;
    case TK_D_METASPACE:
        for (size_t i = 0; i < in->n; i++) {
            const unsigned char *s = (const unsigned char *)TS(in, i);
            size_t n = in->len[i];
            tl_begin(o);
            for (size_t k = 0; k < n;) {
                uint32_t cp; int l = tk_utf8_dec(s + k, n - k, &cp);
                if (cp == d->repl_cp) { if (!(i == 0 && d->prepend_scheme != 2)) tk_buf_putc(&o->b, ' '); }
                else tk_buf_put(&o->b, s + k, (size_t)l);
                k += (size_t)l;
            }
            tl_end(o);
        }
        return;
    case TK_D_WORDPIECE:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = TS(in, i);
            size_t n = in->len[i];
            tk_buf t = {0};
            if (i != 0) {
                if (n >= d->prefixlen && memcmp(s, d->prefix, d->prefixlen) == 0) tk_buf_put(&t, s + d->prefixlen, n - d->prefixlen);
                else { tk_buf_putc(&t, ' '); tk_buf_put(&t, s, n); }
            } else {
                tk_buf_put(&t, s, n);
            }
            tl_begin(o);
            if (d->cleanup) cleanup_wp(&o->b, t.p ? t.p : "", t.n);
            else tk_buf_put(&o->b, t.p, t.n);
            tl_end(o);
            if (t.oom) o->oom = 1;
            tk_buf_free(&t);
        }
        return;
    case TK_D_BPE:
        for (size_t i = 0; i < in->n; i++) {
            tl_begin(o);
            replace_all(&o->b, TS(in, i), in->len[i], d->suffix, d->suffixlen, i + 1 == in->n ? "" : " ",
                        i + 1 == in->n ? 0 : 1);
            tl_end(o);
        }
        return;
    case TK_D_SEQ: {
        tlist cur = {0};
        for (size_t i = 0; i < in->n; i++) { tl_begin(&cur); tk_buf_put(&cur.b, TS(in, i), in->len[i]); tl_end(&cur); }
        for (size_t k = 0; k < d->nsubs; k++) {
            tlist nx = {0};
            dec1(&d->subs[k], &cur, &nx);
            if (cur.oom || cur.b.oom) nx.oom = 1;
            tl_free(&cur);
            cur = nx;
        }
        for (size_t i = 0; i < cur.n; i++) { tl_begin(o); tk_buf_put(&o->b, TS(&cur, i), cur.len[i]); tl_end(o); }
        if (cur.oom || cur.b.oom) o->oom = 1;
        tl_free(&cur);
        return;
    }
    default: return;
    }
}

int tk_dec_run(const mt_tokenizer *t, const char **toks, const uint32_t *lens, size_t n, tk_buf *out) {
    tlist in = {0}, o = {0};
    for (size_t i = 0; i < n; i++) { tl_begin(&in); tk_buf_put(&in.b, toks[i], lens[i]); tl_end(&in); }
    if (t->dec.type == TK_D_NONE) {
        for (size_t i = 0; i < n; i++) {
            if (i) tk_buf_putc(out, ' ');
            tk_buf_put(out, toks[i], lens[i]);
        }
    } else {
        dec1(&t->dec, &in, &o);
        for (size_t i = 0; i < o.n; i++) tk_buf_put(out, TS(&o, i), o.len[i]);
    }
    int oom = in.oom || in.b.oom || o.oom || o.b.oom || out->oom;
    tl_free(&in); tl_free(&o);
    return oom ? MT_ENOMEM : MT_OK;
}

/* ---- the bytes of one token ----
 * The decoder chain applied to one token as if it stood in the middle of a text:
 * Metaspace and WordPiece treat it as a following token (a leading space is kept),
 * and a Strip that runs after Fuse (it then trims the start of the whole text only)
 * is skipped. */
static void tb_apply(const tk_dec *d, tk_buf *in, tk_buf *out, int *fused) {
    const char *s = in->p ? in->p : "";
    size_t n = in->n;
    out->n = 0;
    switch (d->type) {
    case TK_D_SEQ: {
        tk_buf a = {0}, b = {0};
        tk_buf_put(&a, s, n);
        for (size_t k = 0; k < d->nsubs; k++) {
            tb_apply(&d->subs[k], &a, &b, fused);
            tk_buf t = a; a = b; b = t;
        }
        tk_buf_put(out, a.p, a.n);
        if (a.oom || b.oom) out->oom = 1;
        tk_buf_free(&a); tk_buf_free(&b);
        return;
    }
    case TK_D_BYTELEVEL: {
        size_t mark = out->n;
        for (size_t k = 0; k < n;) {
            uint32_t cp;
            k += (size_t)tk_utf8_dec((const unsigned char *)s + k, n - k, &cp);
            int c = tk_cp2byte(cp);
            if (c < 0) { out->n = mark; tk_buf_put(out, s, n); return; }
            tk_buf_putc(out, (char)c);
        }
        return;
    }
    case TK_D_REPLACE: replace_all(out, s, n, d->pat, d->patlen, d->content, d->contentlen); return;
    case TK_D_BYTEFALLBACK:
        if (n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' && hexv(s[3]) >= 0 && hexv(s[4]) >= 0)
            tk_buf_putc(out, (char)(hexv(s[3]) * 16 + hexv(s[4])));
        else
            tk_buf_put(out, s, n);
        return;
    case TK_D_FUSE: *fused = 1; tk_buf_put(out, s, n); return;
    case TK_D_STRIP:
        if (*fused) { tk_buf_put(out, s, n); return; }
        {
            tlist one = {0}, res = {0};
            tl_begin(&one); tk_buf_put(&one.b, s, n); tl_end(&one);
            dec1(d, &one, &res);
            if (res.n) tk_buf_put(out, TS(&res, 0), res.len[0]);
            if (one.oom || one.b.oom || res.oom || res.b.oom) out->oom = 1;
            tl_free(&one); tl_free(&res);
        }
        return;
    case TK_D_METASPACE:
        for (size_t k = 0; k < n;) {
            uint32_t cp;
            int l = tk_utf8_dec((const unsigned char *)s + k, n - k, &cp);
            if (cp == d->repl_cp) tk_buf_putc(out, ' ');
            else tk_buf_put(out, s + k, (size_t)l);
            k += (size_t)l;
        }
        return;
    case TK_D_WORDPIECE:
        if (n >= d->prefixlen && memcmp(s, d->prefix, d->prefixlen) == 0) tk_buf_put(out, s + d->prefixlen, n - d->prefixlen);
        else { tk_buf_putc(out, ' '); tk_buf_put(out, s, n); }
        return;
    case TK_D_BPE: replace_all(out, s, n, d->suffix, d->suffixlen, " ", 1); return;
    default: tk_buf_put(out, s, n); return;
    }
}

int mt_tokenizer_token_bytes(const mt_tokenizer *t, int32_t id, char *buf, size_t cap, const char **out) {
    if (out) *out = buf;
    if (!t || id < 0 || (size_t)id >= t->nids || !t->flags[id]) return -1;
    if (t->flags[id] & 4) return 0;
    uint32_t len = 0;
    const char *s = tk_strtab_get(&t->tab, (size_t)id, &len);
    if (t->dec_str[id]) { s = t->dec_str[id]; len = t->dec_len[id]; }   /* as decode takes it */
    if (!s) return -1;
    tk_buf in = {0}, res = {0};
    tk_buf_put(&in, s, len);
    int fused = 0;
    if (t->dec.type == TK_D_NONE) tk_buf_put(&res, s, len);
    else tb_apply(&t->dec, &in, &res, &fused);
    int r = in.oom || res.oom ? -1 : (int)res.n;
    if (r > 0 && buf) memcpy(buf, res.p, (size_t)r < cap ? (size_t)r : cap);
    tk_buf_free(&in); tk_buf_free(&res);
    return r;
}
