/* tok_normalize.c - tokenizer.json normalizers: Unicode normal forms,
 * Lowercase, Strip, StripAccents, Replace, Prepend, BertNormalizer,
 * Precompiled (SentencePiece charsmap double-array trie), ByteLevel and
 * Sequence. Output strings only (no alignment tracking is needed for ids). */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "text/tok_internal.h"


static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}
static unsigned char *b64dec(const char *s, size_t n, size_t *outn) {
    unsigned char *o = malloc(n / 4 * 3 + 4);
    if (!o) return NULL;
    size_t k = 0; uint32_t acc = 0; int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=' || s[i] == '\n' || s[i] == '\r') continue;
        int v = b64val((unsigned char)s[i]);
        if (v < 0) { free(o); return NULL; }
        acc = (acc << 6) | (uint32_t)v; bits += 6;
        if (bits >= 8) { bits -= 8; o[k++] = (unsigned char)(acc >> bits); }
    }
    *outn = k;
    return o;
}

static int jbool(json_t *o, const char *k, int def) {
    json_t *v = json_object_get(o, k);
    if (json_is_boolean(v)) return json_is_true(v);
    return def;
}

/* pattern: {"String": s} or {"Regex": r} */
static int load_pattern(json_t *p, char **pat, size_t *patlen, pcre2_code **re, mt_err *err) {
    size_t n;
    const char *s;
    if (!json_is_object(p)) return mt_seterr(err, MT_EFORMAT, "tokenizer: pattern must be an object");
    if ((s = tk_jstr(p, "String", &n))) {
        *pat = tk_dupn(s, n); *patlen = n;
        return *pat ? MT_OK : mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    }
    if ((s = tk_jstr(p, "Regex", &n))) {
        *re = tk_regex_compile(s, n, err);
        return *re ? MT_OK : (err ? err->code : MT_EUNSUPPORTED);
    }
    return mt_seterr(err, MT_EFORMAT, "tokenizer: pattern needs String or Regex");
}

int tk_norm_load(tk_norm *nm, json_t *j, mt_err *err) {
    memset(nm, 0, sizeof *nm);
    if (!j || json_is_null(j)) { nm->type = TK_N_NONE; return MT_OK; }
    const char *type = tk_jstr(j, "type", NULL);
    if (!type) return mt_seterr(err, MT_EFORMAT, "tokenizer: normalizer without type");
    if (!strcmp(type, "Sequence")) {
        nm->type = TK_N_SEQ;
        json_t *a = json_object_get(j, "normalizers");
        if (!json_is_array(a)) return mt_seterr(err, MT_EFORMAT, "tokenizer: Sequence without normalizers");
        size_t n = json_array_size(a);
        nm->subs = calloc(n ? n : 1, sizeof *nm->subs);
        if (!nm->subs) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        for (size_t i = 0; i < n; i++) {
            nm->nsubs = i + 1;
            MT_TRY(tk_norm_load(&nm->subs[i], json_array_get(a, i), err));
        }
        return MT_OK;
    }
    if (!strcmp(type, "NFC")) { nm->type = TK_N_NFC; return MT_OK; }
    if (!strcmp(type, "NFD")) { nm->type = TK_N_NFD; return MT_OK; }
    if (!strcmp(type, "NFKC")) { nm->type = TK_N_NFKC; return MT_OK; }
    if (!strcmp(type, "NFKD")) { nm->type = TK_N_NFKD; return MT_OK; }
    if (!strcmp(type, "Lowercase")) { nm->type = TK_N_LOWER; return MT_OK; }
    if (!strcmp(type, "StripAccents")) { nm->type = TK_N_STRIPACC; return MT_OK; }
    if (!strcmp(type, "ByteLevel")) { nm->type = TK_N_BYTELEVEL; return MT_OK; }
    if (!strcmp(type, "Strip")) {
        nm->type = TK_N_STRIP;
        nm->left = jbool(j, "strip_left", 1);
        nm->right = jbool(j, "strip_right", 1);
        return MT_OK;
    }
    if (!strcmp(type, "Replace") || !strcmp(type, "Prepend")) {
        int rep = type[0] == 'R';
        nm->type = rep ? TK_N_REPLACE : TK_N_PREPEND;
        size_t n;
        const char *c = tk_jstr(j, rep ? "content" : "prepend", &n);
        if (!c) return mt_seterr(err, MT_EFORMAT, "tokenizer: %s normalizer without content", type);
        nm->content = tk_dupn(c, n); nm->contentlen = n;
        if (!nm->content) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        if (rep) return load_pattern(json_object_get(j, "pattern"), &nm->pat, &nm->patlen, &nm->re, err);
        return MT_OK;
    }
    if (!strcmp(type, "BertNormalizer")) {
        nm->type = TK_N_BERT;
        nm->clean_text = jbool(j, "clean_text", 1);
        nm->chinese = jbool(j, "handle_chinese_chars", 1);
        nm->lowercase = jbool(j, "lowercase", 1);
        json_t *sa = json_object_get(j, "strip_accents");
        nm->strip_accents = json_is_boolean(sa) ? json_is_true(sa) : nm->lowercase;
        return MT_OK;
    }
    if (!strcmp(type, "Precompiled")) {
        nm->type = TK_N_PRECOMPILED;
        size_t n;
        const char *c = tk_jstr(j, "precompiled_charsmap", &n);
        if (!c) { nm->type = TK_N_NONE; return MT_OK; } /* null charsmap: identity */
        nm->blob = b64dec(c, n, &nm->bloblen);
        if (!nm->blob) return mt_seterr(err, MT_EFORMAT, "tokenizer: bad base64 in precompiled_charsmap");
        if (nm->bloblen == 0) { nm->type = TK_N_NONE; return MT_OK; }
        if (nm->bloblen < 4) return mt_seterr(err, MT_EFORMAT, "tokenizer: precompiled_charsmap too short");
        uint32_t ts = (uint32_t)nm->blob[0] | ((uint32_t)nm->blob[1] << 8) | ((uint32_t)nm->blob[2] << 16) |
                      ((uint32_t)nm->blob[3] << 24);
        if (ts % 4 || ts > nm->bloblen - 4 || ts == 0)
            return mt_seterr(err, MT_EFORMAT, "tokenizer: bad precompiled_charsmap trie size");
        /* copy units to an aligned array */
        uint32_t *da = malloc(ts);
        if (!da) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        for (size_t i = 0; i < ts / 4; i++) {
            const unsigned char *q = nm->blob + 4 + i * 4;
            da[i] = (uint32_t)q[0] | ((uint32_t)q[1] << 8) | ((uint32_t)q[2] << 16) | ((uint32_t)q[3] << 24);
        }
        nm->da = da; nm->nda = ts / 4;
        nm->normalized = (const char *)nm->blob + 4 + ts;
        nm->nnormalized = nm->bloblen - 4 - ts;
        return MT_OK;
    }
    return mt_seterr(err, MT_EUNSUPPORTED, "tokenizer: unsupported normalizer '%s'", type);
}

void tk_norm_free(tk_norm *nm) {
    for (size_t i = 0; i < nm->nsubs; i++) tk_norm_free(&nm->subs[i]);
    free(nm->subs);
    free(nm->pat);
    free(nm->content);
    if (nm->re) pcre2_code_free(nm->re);
    free(nm->blob);
    free((void *)nm->da);
    memset(nm, 0, sizeof *nm);
}

/* ---- helpers ---- */
/* utf8proc_map of s[0..n) (n may be 0) appended to out */
static int nf_map(const char *s, size_t n, int opts, tk_buf *out, mt_err *err) {
    if (!n) return MT_OK;
    utf8proc_uint8_t *res = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &res,
                                      (utf8proc_option_t)(opts | UTF8PROC_STABLE));
    if (r < 0) return mt_seterr(err, MT_EINVAL, "tokenizer: normalization failed: %s", utf8proc_errmsg(r));
    tk_buf_put(out, res, (size_t)r);
    free(res);
    return MT_OK;
}
/* A normal form as HF tokenizers computes it (unicode-normalization-alignments,
 * Unicode 9.0). utf8proc's tables are of a later version; a code point not
 * assigned in 9.0 is inert there (a starter that neither decomposes nor
 * composes), so the text is cut at those, the runs between them normalized by
 * utf8proc (whose data for code points assigned in 9.0 is the same, by
 * Unicode's stability policy) and the inert code points copied as they are. */
static int unicode_nf(const char *s, size_t n, int opts, tk_buf *out, mt_err *err) {
    /* fast path: text made only of code points below U+0300 (no combining marks,
     * no compatibility forms among them for NFC/NFD... ) is checked cheaply:
     * ASCII is invariant under all forms; below U+0300 is invariant under NFC */
    size_t i = 0;
    while (i < n && (unsigned char)s[i] < 0x80) i++;
    if (i == n) { tk_buf_put(out, s, n); return MT_OK; }
    const unsigned char *u = (const unsigned char *)s;
    if (opts == UTF8PROC_COMPOSE) {
        while (i < n) {
            if (u[i] < 0x80) { i++; continue; }
            if (u[i] < 0xCC && u[i] >= 0xC2) { i += 2; continue; } /* U+0080..U+02FF */
            break;
        }
        if (i >= n) { tk_buf_put(out, s, n); return MT_OK; }
    }
    size_t run = 0;
    for (i = 0; i < n;) {
        if (u[i] < 0x80) { i++; continue; }
        uint32_t cp;
        int l = tk_utf8_dec(u + i, n - i, &cp);
        if (tk_hf_norm_inert(cp)) {
            MT_TRY(nf_map(s + run, i - run, opts, out, err));
            tk_buf_put(out, s + i, (size_t)l);
            run = i + (size_t)l;
        }
        i += (size_t)l;
    }
    return nf_map(s + run, n - run, opts, out, err);
}

static void lower_cp(tk_buf *out, uint32_t cp) {
    if (cp < 0x80) { tk_buf_putc(out, (char)((cp >= 'A' && cp <= 'Z') ? cp + 32 : cp)); return; }
    if (cp == 0x130) { tk_buf_put(out, "i\xCC\x87", 3); return; }
    tk_buf_put_cp(out, tk_hf_lower(cp));
}

static int is_chinese(uint32_t c) {
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
/* the unicode_categories crate's is_other: Cc, Cf, Co, Cs (unassigned Cn is not "other") */
static int is_other(uint32_t c) { return tk_hf_is_other(c); }

/* Precompiled: first (shortest) prefix match value, or -1 */
static long pc_first(const tk_norm *nm, const unsigned char *k, size_t n) {
    const uint32_t *a = nm->da;
    size_t na = nm->nda;
#define OFF(u) (((u) >> 10) << (((u) & (1u << 9)) >> 6))
    size_t pos = 0;
    uint32_t u = a[0];
    pos ^= OFF(u);
    for (size_t i = 0; i < n; i++) {
        unsigned c = k[i];
        if (!c) return -1;
        pos ^= c;
        if (pos >= na) return -1;
        u = a[pos];
        if ((u & ((1u << 31) | 0xFF)) != c) return -1;
        pos ^= OFF(u);
        if ((u >> 8) & 1) {
            if (pos >= na) return -1;
            return (long)(a[pos] & ((1u << 31) - 1));
        }
    }
    return -1;
#undef OFF
}
static int pc_transform(const tk_norm *nm, const char *s, size_t n, tk_buf *out) {
    long v = pc_first(nm, (const unsigned char *)s, n);
    if (v < 0 || (size_t)v >= nm->nnormalized) return 0;
    const char *p = nm->normalized + v;
    size_t m = strnlen(p, nm->nnormalized - (size_t)v);
    tk_buf_put(out, p, m);
    return 1;
}
/* A grapheme cluster boundary between c1 and c2: utf8proc's rules, with GB9 (no
 * break before Extend / SpacingMark / ZWJ unless after a control) applied to
 * the characters that only the later Unicode version of HF tokenizers' segmenter
 * knows as extending. */
static int grapheme_break(uint32_t c1, uint32_t c2, utf8proc_int32_t *state) {
    int brk = utf8proc_grapheme_break_stateful((utf8proc_int32_t)c1, (utf8proc_int32_t)c2, state);
    if (brk && tk_hf_grapheme_extend(c2)) {
        int k = utf8proc_get_property((utf8proc_int32_t)c1)->boundclass;
        if (k != UTF8PROC_BOUNDCLASS_CR && k != UTF8PROC_BOUNDCLASS_LF && k != UTF8PROC_BOUNDCLASS_CONTROL) brk = 0;
    }
    return brk;
}
static void precompiled(const tk_norm *nm, const char *s, size_t n, tk_buf *out) {
    size_t i = 0;
    while (i < n) {
        /* grapheme cluster [i, j) */
        utf8proc_int32_t state = 0;
        uint32_t c1;
        size_t j = i + (size_t)tk_utf8_dec((const unsigned char *)s + i, n - i, &c1);
        while (j < n) {
            uint32_t c2;
            int l = tk_utf8_dec((const unsigned char *)s + j, n - j, &c2);
            if (grapheme_break(c1, c2, &state)) break;
            c1 = c2;
            j += (size_t)l;
        }
        if (j - i < 6 && pc_transform(nm, s + i, j - i, out)) { i = j; continue; }
        while (i < j) {
            int l = tk_utf8_len((unsigned char)s[i]);
            if (!pc_transform(nm, s + i, (size_t)l, out)) tk_buf_put(out, s + i, (size_t)l);
            i += (size_t)l;
        }
    }
}

static int apply1(const tk_norm *nm, const char *s, size_t n, tk_buf *out, mt_err *err) {
    const unsigned char *u = (const unsigned char *)s;
    switch (nm->type) {
    case TK_N_NONE: tk_buf_put(out, s, n); return MT_OK;
    case TK_N_NFC: return unicode_nf(s, n, UTF8PROC_COMPOSE, out, err);
    case TK_N_NFD: return unicode_nf(s, n, UTF8PROC_DECOMPOSE, out, err);
    case TK_N_NFKC: return unicode_nf(s, n, UTF8PROC_COMPOSE | UTF8PROC_COMPAT, out, err);
    case TK_N_NFKD: return unicode_nf(s, n, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, out, err);
    case TK_N_LOWER:
        for (size_t i = 0; i < n;) {
            uint32_t cp; i += (size_t)tk_utf8_dec(u + i, n - i, &cp);
            lower_cp(out, cp);
        }
        return MT_OK;
    case TK_N_STRIP: {
        size_t a = 0, b = n;
        if (nm->left)
            while (a < b) { uint32_t cp; int l = tk_utf8_dec(u + a, b - a, &cp); if (!tk_is_whitespace(cp)) break; a += (size_t)l; }
        if (nm->right)
            while (b > a) {
                size_t k = b - 1;
                while (k > a && (u[k] & 0xC0) == 0x80) k--;
                uint32_t cp; tk_utf8_dec(u + k, b - k, &cp);
                if (!tk_is_whitespace(cp)) break;
                b = k;
            }
        tk_buf_put(out, s + a, b - a);
        return MT_OK;
    }
    case TK_N_STRIPACC:
        for (size_t i = 0; i < n;) {
            uint32_t cp; int l = tk_utf8_dec(u + i, n - i, &cp);
            if (!tk_hf_is_mark(cp)) tk_buf_put(out, s + i, (size_t)l); /* General_Category=Mark */
            i += (size_t)l;
        }
        return MT_OK;
    case TK_N_PREPEND:
        if (n) tk_buf_put(out, nm->content, nm->contentlen);
        tk_buf_put(out, s, n);
        return MT_OK;
    case TK_N_REPLACE:
        if (nm->re) {
            pcre2_match_data *md = NULL;
            size_t pos = 0, last = 0;
            while (pos <= n) {
                size_t ms, me;
                int r = tk_regex_next(nm->re, s, n, pos, &md, &ms, &me);
                if (r < 0) { pcre2_match_data_free(md); return mt_seterr(err, MT_EINVAL, "tokenizer: regex match failed"); }
                if (r == 0) break;
                tk_buf_put(out, s + last, ms - last);
                tk_buf_put(out, nm->content, nm->contentlen);
                last = me;
                pos = me > ms ? me : me + (me < n ? (size_t)tk_utf8_len(u[me]) : 1);
            }
            if (last < n) tk_buf_put(out, s + last, n - last);
            pcre2_match_data_free(md);
            return MT_OK;
        }
        if (!nm->patlen) { tk_buf_put(out, s, n); return MT_OK; }
        {
            size_t last = 0, i = 0;
            while (i + nm->patlen <= n) {
                const char *f = memmem(s + i, n - i, nm->pat, nm->patlen);
                if (!f) break;
                size_t at = (size_t)(f - s);
                tk_buf_put(out, s + last, at - last);
                tk_buf_put(out, nm->content, nm->contentlen);
                i = last = at + nm->patlen;
            }
            tk_buf_put(out, s + last, n - last);
        }
        return MT_OK;
    case TK_N_BYTELEVEL:
        for (size_t i = 0; i < n; i++) tk_buf_put_cp(out, tk_byte2cp[u[i]]);
        return MT_OK;
    case TK_N_PRECOMPILED:
        precompiled(nm, s, n, out);
        return MT_OK;
    case TK_N_BERT: {
        tk_buf a = {0}, b = {0};
        const char *cur = s; size_t cn = n;
        if (nm->clean_text || nm->chinese) {
            for (size_t i = 0; i < cn;) {
                uint32_t cp; int l = tk_utf8_dec((const unsigned char *)cur + i, cn - i, &cp);
                i += (size_t)l;
                if (nm->clean_text) {
                    if (cp == 0 || cp == 0xFFFD) continue;
                    int tnr = cp == '\t' || cp == '\n' || cp == '\r';
                    if (!tnr && is_other(cp)) continue;
                    if (tnr || tk_is_whitespace(cp)) cp = ' ';
                }
                if (nm->chinese && is_chinese(cp)) { tk_buf_putc(&a, ' '); tk_buf_put_cp(&a, cp); tk_buf_putc(&a, ' '); }
                else tk_buf_put_cp(&a, cp);
            }
            cur = a.p; cn = a.n;
        }
        if (nm->strip_accents) {
            tk_buf d = {0};
            int rc = unicode_nf(cur ? cur : "", cn, UTF8PROC_DECOMPOSE, &d, err);
            if (rc) { tk_buf_free(&a); tk_buf_free(&d); return rc; }
            for (size_t i = 0; i < d.n;) {
                uint32_t cp; int l = tk_utf8_dec((const unsigned char *)d.p + i, d.n - i, &cp);
                if (!tk_hf_is_mn_strip(cp)) tk_buf_put(&b, d.p + i, (size_t)l);
                i += (size_t)l;
            }
            tk_buf_free(&d);
            cur = b.p; cn = b.n;
        }
        if (nm->lowercase) {
            for (size_t i = 0; i < cn;) {
                uint32_t cp; i += (size_t)tk_utf8_dec((const unsigned char *)cur + i, cn - i, &cp);
                lower_cp(out, cp);
            }
        } else {
            tk_buf_put(out, cur, cn);
        }
        int oom = a.oom || b.oom;
        tk_buf_free(&a); tk_buf_free(&b);
        return oom ? mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory") : MT_OK;
    }
    case TK_N_SEQ: {
        tk_buf cur = {0}, nxt = {0};
        tk_buf_put(&cur, s, n);
        for (size_t k = 0; k < nm->nsubs; k++) {
            nxt.n = 0;
            int rc = apply1(&nm->subs[k], cur.p ? cur.p : "", cur.n, &nxt, err);
            if (rc) { tk_buf_free(&cur); tk_buf_free(&nxt); return rc; }
            tk_buf t = cur; cur = nxt; nxt = t;
        }
        tk_buf_put(out, cur.p, cur.n);
        int oom = cur.oom || nxt.oom;
        tk_buf_free(&cur); tk_buf_free(&nxt);
        return oom ? mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory") : MT_OK;
    }
    }
    return mt_seterr(err, MT_EUNSUPPORTED, "tokenizer: bad normalizer");
}

/* Does the first char of s keep its original offset through nm (HF alignment
 * semantics, used by Metaspace prepend_scheme "first")? Replacing a run of
 * several chars aligns the new text with the run's last char; removing the
 * first char shifts the start. */
static int keeps_first(const tk_norm *nm, const char *s, size_t n) {
    if (!n) return 1;
    uint32_t cp;
    int l = tk_utf8_dec((const unsigned char *)s, n, &cp);
    switch (nm->type) {
    case TK_N_STRIP: return !(nm->left && tk_is_whitespace(cp));
    case TK_N_STRIPACC: return !tk_hf_is_mark(cp);
    case TK_N_BERT:
        if (nm->clean_text && (cp == 0 || cp == 0xFFFD || (!(cp == '\t' || cp == '\n' || cp == '\r') && is_other(cp)))) return 0;
        if (nm->strip_accents && tk_hf_is_mn_strip(cp)) return 0;
        return 1;
    case TK_N_REPLACE: {
        size_t ms = 1, me = 0;
        if (nm->re) {
            pcre2_match_data *md = NULL;
            if (tk_regex_next(nm->re, s, n, 0, &md, &ms, &me) != 1) ms = 1;
            if (md) pcre2_match_data_free(md);
        } else if (nm->patlen && nm->patlen <= n && memcmp(s, nm->pat, nm->patlen) == 0) {
            ms = 0; me = nm->patlen;
        }
        if (ms != 0 || me == 0) return 1;
        return nm->contentlen > 0 && me == (size_t)l;
    }
    default: return 1;
    }
}

int tk_norm_apply_first(const tk_norm *nm, const char *s, size_t n, tk_buf *out, int *first0, mt_err *err) {
    if (nm->type != TK_N_SEQ) {
        if (first0 && !keeps_first(nm, s, n)) *first0 = 0;
        return tk_norm_apply(nm, s, n, out, err);
    }
    tk_buf cur = {0}, nxt = {0};
    tk_buf_put(&cur, s, n);
    int rc = MT_OK;
    for (size_t k = 0; k < nm->nsubs && !rc; k++) {
        nxt.n = 0;
        rc = tk_norm_apply_first(&nm->subs[k], cur.p ? cur.p : "", cur.n, &nxt, first0, err);
        tk_buf t = cur; cur = nxt; nxt = t;
    }
    if (!rc) tk_buf_put(out, cur.p, cur.n);
    int oom = cur.oom || nxt.oom || out->oom;
    tk_buf_free(&cur); tk_buf_free(&nxt);
    if (!rc && oom) rc = mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    return rc;
}

int tk_norm_apply(const tk_norm *nm, const char *s, size_t n, tk_buf *out, mt_err *err) {
    int rc = apply1(nm, s, n, out, err);
    if (!rc && out->oom) rc = mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    return rc;
}
