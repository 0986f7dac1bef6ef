/* tok_pretok.c - tokenizer.json pre-tokenizers: Split (string/regex with
 * all delimiter behaviours and invert), ByteLevel, Metaspace,
 * BertPreTokenizer, Whitespace, WhitespaceSplit, Punctuation, Digits,
 * CharDelimiterSplit and Sequence. Splits are byte ranges into one text
 * buffer; components that rewrite text append the new text to that buffer. */
#include <stdlib.h>
#include <string.h>
#include "text/tok_internal.h"

static const char GPT2_RE[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int jbool(json_t *o, const char *k, int def) {
    json_t *v = json_object_get(o, k);
    if (json_is_boolean(v)) return json_is_true(v);
    return def;
}
static int parse_behavior(const char *b, int *out) {
    if (!b) { *out = TK_B_ISOLATED; return 0; }
    if (!strcmp(b, "Removed")) *out = TK_B_REMOVED;
    else if (!strcmp(b, "Isolated")) *out = TK_B_ISOLATED;
    else if (!strcmp(b, "MergedWithPrevious")) *out = TK_B_MERGED_PREV;
    else if (!strcmp(b, "MergedWithNext")) *out = TK_B_MERGED_NEXT;
    else if (!strcmp(b, "Contiguous")) *out = TK_B_CONTIGUOUS;
    else return -1;
    return 0;
}

int tk_pretok_load(tk_pretok *p, json_t *j, mt_err *err) {
    memset(p, 0, sizeof *p);
    if (!j || json_is_null(j)) { p->type = TK_P_NONE; return MT_OK; }
    const char *type = tk_jstr(j, "type", NULL);
    if (!type) return mt_seterr(err, MT_EFORMAT, "tokenizer: pre_tokenizer without type");
    if (!strcmp(type, "Sequence")) {
        p->type = TK_P_SEQ;
        json_t *a = json_object_get(j, "pretokenizers");
        if (!json_is_array(a)) return mt_seterr(err, MT_EFORMAT, "tokenizer: Sequence without pretokenizers");
        size_t n = json_array_size(a);
        p->subs = calloc(n ? n : 1, sizeof *p->subs);
        if (!p->subs) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        for (size_t i = 0; i < n; i++) {
            p->nsubs = i + 1;
            MT_TRY(tk_pretok_load(&p->subs[i], json_array_get(a, i), err));
        }
        return MT_OK;
    }
    if (!strcmp(type, "Split")) {
        p->type = TK_P_SPLIT;
        if (parse_behavior(tk_jstr(j, "behavior", NULL), &p->behavior))
            return mt_seterr(err, MT_EUNSUPPORTED, "tokenizer: unknown Split behavior");
        p->invert = jbool(j, "invert", 0);
        json_t *pat = json_object_get(j, "pattern");
        size_t n;
        const char *s;
        if (!json_is_object(pat)) return mt_seterr(err, MT_EFORMAT, "tokenizer: Split without pattern");
        if ((s = tk_jstr(pat, "String", &n))) {
            p->pat = tk_dupn(s, n); p->patlen = n;
            if (!p->pat) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
            return MT_OK;
        }
        if ((s = tk_jstr(pat, "Regex", &n))) {
            p->re = tk_regex_compile(s, n, err);
            return p->re ? MT_OK : (err ? err->code : MT_EUNSUPPORTED);
        }
        return mt_seterr(err, MT_EFORMAT, "tokenizer: Split pattern needs String or Regex");
    }
    if (!strcmp(type, "ByteLevel")) {
        p->type = TK_P_BYTELEVEL;
        p->add_prefix_space = jbool(j, "add_prefix_space", 1);
        p->use_regex = jbool(j, "use_regex", 1);
        if (p->use_regex) {
            p->re = tk_regex_compile(GPT2_RE, sizeof GPT2_RE - 1, err);
            if (!p->re) return err ? err->code : MT_EUNSUPPORTED;
        }
        return MT_OK;
    }
    if (!strcmp(type, "Metaspace")) {
        p->type = TK_P_METASPACE;
        size_t n;
        const char *r = tk_jstr(j, "replacement", &n);
        if (!r) { r = "\xE2\x96\x81"; n = 3; }
        p->repl = tk_dupn(r, n); p->repllen = n;
        if (!p->repl) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        const char *ps = tk_jstr(j, "prepend_scheme", NULL);
        if (ps) p->prepend_scheme = !strcmp(ps, "first") ? 1 : !strcmp(ps, "never") ? 2 : 0;
        else p->prepend_scheme = jbool(j, "add_prefix_space", 1) ? 0 : 2;
        p->split = jbool(j, "split", 1);
        return MT_OK;
    }
    if (!strcmp(type, "BertPreTokenizer")) { p->type = TK_P_BERT; return MT_OK; }
    if (!strcmp(type, "WhitespaceSplit")) { p->type = TK_P_WSSPLIT; return MT_OK; }
    if (!strcmp(type, "Whitespace")) { p->type = TK_P_WHITESPACE; return MT_OK; }
    if (!strcmp(type, "Punctuation")) {
        p->type = TK_P_PUNCT;
        if (parse_behavior(tk_jstr(j, "behavior", NULL), &p->behavior))
            return mt_seterr(err, MT_EUNSUPPORTED, "tokenizer: unknown Punctuation behavior");
        return MT_OK;
    }
    if (!strcmp(type, "Digits")) {
        p->type = TK_P_DIGITS;
        p->individual_digits = jbool(j, "individual_digits", 0);
        return MT_OK;
    }
    if (!strcmp(type, "CharDelimiterSplit")) {
        p->type = TK_P_CHARDELIM;
        size_t n;
        const char *d = tk_jstr(j, "delimiter", &n);
        if (!d || !n) return mt_seterr(err, MT_EFORMAT, "tokenizer: CharDelimiterSplit without delimiter");
        tk_utf8_dec((const unsigned char *)d, n, &p->delim);
        return MT_OK;
    }
    return mt_seterr(err, MT_EUNSUPPORTED, "tokenizer: unsupported pre_tokenizer '%s'", type);
}

void tk_pretok_free(tk_pretok *p) {
    for (size_t i = 0; i < p->nsubs; i++) tk_pretok_free(&p->subs[i]);
    free(p->subs);
    if (p->re) pcre2_code_free(p->re);
    free(p->pat);
    free(p->repl);
    memset(p, 0, sizeof *p);
}

/* ---- match lists and behaviours ---- */
typedef struct { uint32_t s, e; uint8_t m; } mt_piece;
typedef struct { mt_piece *v; size_t n, cap; int oom; } pieces;
static void pc_push(pieces *p, uint32_t s, uint32_t e, int m) {
    if (p->oom) return;
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 32;
        mt_piece *v = realloc(p->v, nc * sizeof *v);
        if (!v) { p->oom = 1; return; }
        p->v = v; p->cap = nc;
    }
    p->v[p->n++] = (mt_piece){s, e, (uint8_t)m};
}

/* Apply behaviour to a match list covering [base, base+len) and emit splits. */
static void emit_behavior(pieces *pc, int behavior, uint8_t first, uint32_t base, tk_splits *out) {
    mt_piece *v = pc->v;
    size_t n = pc->n, k = 0;
    switch (behavior) {
    case TK_B_REMOVED:
        for (size_t i = 0; i < n; i++) if (!v[i].m) v[k++] = v[i];
        break;
    case TK_B_ISOLATED:
        k = n;
        break;
    case TK_B_MERGED_PREV: {
        int prev = 0;
        for (size_t i = 0; i < n; i++) {
            if (v[i].m && !prev && k > 0) v[k - 1].e = v[i].e;
            else v[k++] = v[i];
            prev = v[i].m;
        }
        break;
    }
    case TK_B_MERGED_NEXT: {
        /* walk backwards, then the kept pieces are in reverse order at the end */
        int prev = 0;
        size_t w = n; /* write index from the end */
        for (size_t i = n; i-- > 0;) {
            if (v[i].m && !prev && w < n) v[w].s = v[i].s;
            else v[--w] = v[i];
            prev = v[i].m;
        }
        memmove(v, v + w, (n - w) * sizeof *v);
        k = n - w;
        break;
    }
    case TK_B_CONTIGUOUS: {
        int prev = 0;
        for (size_t i = 0; i < n; i++) {
            if ((int)v[i].m == prev && k > 0) v[k - 1].e = v[i].e;
            else v[k++] = v[i];
            prev = v[i].m;
        }
        break;
    }
    }
    for (size_t i = 0; i < k; i++)
        if (v[i].e > v[i].s) tk_splits_push(out, v[i].s, v[i].e - v[i].s, -1, (uint8_t)(first && v[i].s == base));
}

/* char predicate splitting: each matching char is its own match */
typedef int (*cpred)(const tk_pretok *, uint32_t);
static void split_pred(const tk_pretok *p, const char *buf, tk_split sp, cpred f, int behavior, pieces *pc,
                       tk_splits *out) {
    pc->n = 0;
    const unsigned char *u = (const unsigned char *)buf;
    uint32_t i = sp.off, end = sp.off + sp.len, prev = sp.off;
    while (i < end) {
        uint32_t cp;
        int l = tk_utf8_dec(u + i, end - i, &cp);
        if (f(p, cp)) {
            if (prev < i) pc_push(pc, prev, i, 0);
            pc_push(pc, i, i + (uint32_t)l, 1);
            prev = i + (uint32_t)l;
        }
        i += (uint32_t)l;
    }
    if (prev < end) pc_push(pc, prev, end, 0);
    if (pc->n == 0) pc_push(pc, sp.off, sp.off, 0);
    emit_behavior(pc, behavior, sp.first, sp.off, out);
}

static int regex_pieces(const pcre2_code *re, const char *buf, tk_split sp, int invert, pieces *pc,
                        pcre2_match_data **md) {
    pc->n = 0;
    const char *s = buf + sp.off;
    size_t n = sp.len, pos = 0, prev = 0;
    long last_match_end = -1;
    while (pos <= n) {
        size_t ms, me;
        int r = tk_regex_next(re, s, n, pos, md, &ms, &me);
        if (r < 0) return -1;
        if (r == 0) break;
        if (ms == me) {
            if ((long)me == last_match_end) { /* skip empty match right after a match */
                if (me >= n) break;
                pos = me + (size_t)tk_utf8_len((unsigned char)s[me]);
                continue;
            }
        }
        if (prev != ms) pc_push(pc, sp.off + (uint32_t)prev, sp.off + (uint32_t)ms, invert);
        pc_push(pc, sp.off + (uint32_t)ms, sp.off + (uint32_t)me, !invert);
        prev = me;
        last_match_end = (long)me;
        if (me == ms) {
            if (me >= n) break;
            pos = me + (size_t)tk_utf8_len((unsigned char)s[me]);
        } else {
            pos = me;
        }
    }
    if (prev != n) pc_push(pc, sp.off + (uint32_t)prev, sp.off + (uint32_t)n, invert);
    if (pc->n == 0) pc_push(pc, sp.off, sp.off, invert);
    return 0;
}

static int literal_pieces(const char *pat, size_t plen, const char *buf, tk_split sp, int invert, pieces *pc) {
    pc->n = 0;
    const char *s = buf + sp.off;
    size_t n = sp.len, prev = 0, i = 0;
    if (plen)
        while (i + plen <= n) {
            const char *f = memmem(s + i, n - i, pat, plen);
            if (!f) break;
            size_t at = (size_t)(f - s);
            if (prev != at) pc_push(pc, sp.off + (uint32_t)prev, sp.off + (uint32_t)at, invert);
            pc_push(pc, sp.off + (uint32_t)at, sp.off + (uint32_t)(at + plen), !invert);
            i = prev = at + plen;
        }
    if (prev != n) pc_push(pc, sp.off + (uint32_t)prev, sp.off + (uint32_t)n, invert);
    if (pc->n == 0) pc_push(pc, sp.off, sp.off, invert);
    return 0;
}

static int pred_ws(const tk_pretok *p, uint32_t c) { (void)p; return tk_is_whitespace(c); }
static int pred_bpunct(const tk_pretok *p, uint32_t c) { (void)p; return tk_is_bert_punct(c); }
static int pred_digit(const tk_pretok *p, uint32_t c) { (void)p; return tk_hf_is_numeric(c); }
static int pred_delim(const tk_pretok *p, uint32_t c) { return c == p->delim; }

static int apply1(const tk_pretok *p, tk_buf *buf, tk_splits *in, tk_splits *out, pcre2_match_data **md,
                  mt_err *err);

static int run_seq(const tk_pretok *p, tk_buf *buf, tk_splits *sp, pcre2_match_data **md, mt_err *err) {
    for (size_t k = 0; k < p->nsubs; k++) {
        tk_splits o = {0};
        int rc = apply1(&p->subs[k], buf, sp, &o, md, err);
        if (rc) { free(o.v); return rc; }
        free(sp->v);
        *sp = o;
    }
    return MT_OK;
}

static int apply1(const tk_pretok *p, tk_buf *buf, tk_splits *in, tk_splits *out, pcre2_match_data **md,
                  mt_err *err) {
    pieces pc = {0};
    int rc = MT_OK;
    if (p->type == TK_P_SEQ) {
        /* copy then refine in place */
        for (size_t i = 0; i < in->n; i++) tk_splits_push(out, in->v[i].off, in->v[i].len, in->v[i].id, in->v[i].first);
        return run_seq(p, buf, out, md, err);
    }
    for (size_t i = 0; i < in->n && !rc; i++) {
        tk_split sp = in->v[i];
        if (sp.id >= 0 || p->type == TK_P_NONE) { tk_splits_push(out, sp.off, sp.len, sp.id, sp.first); continue; }
        switch (p->type) {
        case TK_P_SPLIT:
            if (p->re) { if (regex_pieces(p->re, buf->p, sp, p->invert, &pc, md)) rc = -1; }
            else literal_pieces(p->pat, p->patlen, buf->p, sp, p->invert, &pc);
            if (!rc) emit_behavior(&pc, p->behavior, sp.first, sp.off, out);
            break;
        case TK_P_WHITESPACE: {
            /* \w+|[^\w\s]+ with Rust regex classes: runs of word chars and runs of
             * other non-space chars; whitespace is dropped */
            const unsigned char *u = (const unsigned char *)buf->p;
            uint32_t i = sp.off, end = sp.off + sp.len, rs = 0;
            int cls = 0;
            while (i <= end) {
                int c = 0, l = 1;
                if (i < end) {
                    uint32_t cp;
                    l = tk_utf8_dec(u + i, end - i, &cp);
                    c = tk_is_whitespace(cp) ? 0 : tk_is_word(cp) ? 1 : 2;
                } else {
                    c = -1;
                }
                if (c != cls) {
                    if (cls > 0) tk_splits_push(out, rs, i - rs, -1, (uint8_t)(sp.first && rs == sp.off));
                    cls = c;
                    rs = i;
                }
                if (i == end) break;
                i += (uint32_t)l;
            }
            break;
        }
        case TK_P_WSSPLIT: split_pred(p, buf->p, sp, pred_ws, TK_B_REMOVED, &pc, out); break;
        case TK_P_PUNCT: split_pred(p, buf->p, sp, pred_bpunct, p->behavior, &pc, out); break;
        case TK_P_DIGITS:
            split_pred(p, buf->p, sp, pred_digit, p->individual_digits ? TK_B_ISOLATED : TK_B_CONTIGUOUS, &pc, out);
            break;
        case TK_P_CHARDELIM: split_pred(p, buf->p, sp, pred_delim, TK_B_REMOVED, &pc, out); break;
        case TK_P_BERT: {
            tk_splits tmp = {0};
            split_pred(p, buf->p, sp, pred_ws, TK_B_REMOVED, &pc, &tmp);
            for (size_t k = 0; k < tmp.n; k++) split_pred(p, buf->p, tmp.v[k], pred_bpunct, TK_B_ISOLATED, &pc, out);
            if (tmp.oom) out->oom = 1;
            free(tmp.v);
            break;
        }
        case TK_P_BYTELEVEL: {
            tk_split cur = sp;
            if (p->add_prefix_space && sp.len && buf->p[sp.off] != ' ') {
                tk_buf_reserve(buf, (size_t)sp.len + 1);
                if (buf->oom) { rc = MT_ENOMEM; break; }
                size_t off = buf->n;
                tk_buf_putc(buf, ' ');
                tk_buf_put(buf, buf->p + sp.off, sp.len);
                if (buf->oom) { rc = MT_ENOMEM; break; }
                cur.off = (uint32_t)off; cur.len = sp.len + 1;
            }
            tk_splits tmp = {0};
            if (p->use_regex) {
                if (regex_pieces(p->re, buf->p, cur, 0, &pc, md)) { rc = -1; break; }
                emit_behavior(&pc, TK_B_ISOLATED, cur.first, cur.off, &tmp);
            } else {
                tk_splits_push(&tmp, cur.off, cur.len, -1, cur.first);
            }
            for (size_t k = 0; k < tmp.n; k++) {
                tk_split t = tmp.v[k];
                if (p->defer) { tk_splits_push(out, t.off, t.len, -1, t.first); continue; }
                size_t off = buf->n;
                for (uint32_t q = 0; q < t.len; q++) tk_buf_put_cp(buf, tk_byte2cp[(unsigned char)buf->p[t.off + q]]);
                tk_splits_push(out, (uint32_t)off, (uint32_t)(buf->n - off), -1, t.first);
            }
            if (tmp.oom) out->oom = 1;
            free(tmp.v);
            break;
        }
        case TK_P_METASPACE: {
            size_t off = buf->n;
            const char *rp = p->repl;
            size_t rl = p->repllen;
            int starts = 0;
            /* does the text (after replacement) start with the replacement? */
            if (sp.len && ((unsigned char)buf->p[sp.off] == ' ' ||
                           (sp.len >= rl && memcmp(buf->p + sp.off, rp, rl) == 0)))
                starts = 1;
            int prepend = sp.len > 0 && !starts &&
                          (p->prepend_scheme == 0 || (p->prepend_scheme == 1 && sp.first));
            if (prepend) tk_buf_put(buf, rp, rl);
            for (uint32_t q = 0; q < sp.len; q++) {
                char c = buf->p[sp.off + q];
                if (c == ' ') tk_buf_put(buf, rp, rl);
                else tk_buf_putc(buf, c);
            }
            if (buf->oom) { rc = MT_ENOMEM; break; }
            tk_split ns = {(uint32_t)off, (uint32_t)(buf->n - off), -1, sp.first};
            if (p->split) {
                literal_pieces(rp, rl, buf->p, ns, 0, &pc);
                emit_behavior(&pc, TK_B_MERGED_NEXT, ns.first, ns.off, out);
            } else {
                tk_splits_push(out, ns.off, ns.len, -1, ns.first);
            }
            break;
        }
        default: break;
        }
    }
    if (pc.oom) out->oom = 1;
    free(pc.v);
    if (rc == -1) return mt_seterr(err, MT_EINVAL, "tokenizer: regex match failed");
    if (rc) return mt_seterr(err, rc, "tokenizer: out of memory");
    if (out->oom || buf->oom) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    return MT_OK;
}

int tk_pretok_apply(const tk_pretok *p, tk_buf *buf, tk_splits *sp, pcre2_match_data **md, mt_err *err) {
    if (p->type == TK_P_NONE) return MT_OK;
    if (p->type == TK_P_SEQ) return run_seq(p, buf, sp, md, err);
    tk_splits o = {0};
    int rc = apply1(p, buf, sp, &o, md, err);
    if (rc) { free(o.v); return rc; }
    free(sp->v);
    *sp = o;
    return MT_OK;
}
