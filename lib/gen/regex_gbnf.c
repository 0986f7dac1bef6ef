/* regex_gbnf.c - a regular expression (the subset in json_schema.h) as a GBNF
 * expression: a recursive-descent parser that writes GBNF while it reads.
 *
 * Characters are code points; a character class is kept as a sorted list of code-point
 * ranges so negation and the shorthand classes (\d \w \s and their negations) combine
 * exactly.  In JSON-content mode every character is written as it appears inside a JSON
 * string in the canonical layout (escapes for '"', '\\' and control characters). */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/json_schema.h"

#define MAX_CP 0x10FFFFu
#define RE_MAX_NEST 100

/* ---- code-point sets ---- */
typedef struct { uint32_t lo, hi; } crange;
typedef struct { crange *r; size_t n, cap; int oom; } cset;

static void cs_add(cset *s, uint32_t lo, uint32_t hi) {
    if (s->oom || lo > hi) return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        crange *r = realloc(s->r, cap * sizeof *r);
        if (!r) { s->oom = 1; return; }
        s->r = r;
        s->cap = cap;
    }
    s->r[s->n++] = (crange){lo, hi};
}

static int cr_cmp(const void *a, const void *b) {
    const crange *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void cs_norm(cset *s) {
    if (s->n < 2) return;
    qsort(s->r, s->n, sizeof *s->r, cr_cmp);
    size_t o = 0;
    for (size_t i = 1; i < s->n; i++) {
        if (s->r[i].lo <= s->r[o].hi + 1) {
            if (s->r[i].hi > s->r[o].hi) s->r[o].hi = s->r[i].hi;
        } else {
            s->r[++o] = s->r[i];
        }
    }
    s->n = o + 1;
}

/* out = complement of s (s normalised); out must be empty. */
static void cs_neg(const cset *s, cset *out) {
    uint32_t next = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->r[i].lo > next) cs_add(out, next, s->r[i].lo - 1);
        next = s->r[i].hi + 1;
    }
    if (next <= MAX_CP) cs_add(out, next, MAX_CP);
}

/* Drop the UTF-16 surrogates (no UTF-8 text holds them) from a normalised set. */
static void cs_drop_surrogates(cset *s) {
    cset t = {0};
    for (size_t i = 0; i < s->n; i++) {
        uint32_t lo = s->r[i].lo, hi = s->r[i].hi;
        if (hi < 0xD800 || lo > 0xDFFF) { cs_add(&t, lo, hi); continue; }
        if (lo < 0xD800) cs_add(&t, lo, 0xD7FF);
        if (hi > 0xDFFF) cs_add(&t, 0xE000, hi);
    }
    if (t.oom) s->oom = 1;
    free(s->r);
    *s = (cset){t.r, t.n, t.cap, s->oom};
}

static int cs_has(const cset *s, uint32_t c) {
    for (size_t i = 0; i < s->n; i++)
        if (c >= s->r[i].lo && c <= s->r[i].hi) return 1;
    return 0;
}

/* The shorthand classes, ASCII as in ECMA-262 for \d \w (and \s restricted to ASCII). */
static void cs_shorthand(cset *s, int kind) {
    cset t = {0};
    cset *d = (kind >= 'A' && kind <= 'Z') ? &t : s;
    switch (kind | 0x20) {
    case 'd': cs_add(d, '0', '9'); break;
    case 'w': cs_add(d, '0', '9'); cs_add(d, 'A', 'Z'); cs_add(d, '_', '_'); cs_add(d, 'a', 'z'); break;
    default: cs_add(d, '\t', '\r'); cs_add(d, ' ', ' '); break;
    }
    if (d == &t) {
        cs_norm(&t);
        cs_neg(&t, s);
        if (t.oom) s->oom = 1;
        free(t.r);
    }
}

/* ---- GBNF writing ---- */
static void put_cp_escaped(mt_buf *o, uint32_t c, int in_class) {
    char tmp[16];
    if ((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == ' ' ||
        (!in_class && c >= 0x20 && c < 0x7f && c != '"' && c != '\\'))
        snprintf(tmp, sizeof tmp, "%c", (int)c);
    else if (c < 0x80) snprintf(tmp, sizeof tmp, "\\x%02X", (unsigned)c);
    else if (c < 0x10000) snprintf(tmp, sizeof tmp, "\\u%04X", (unsigned)c);
    else snprintf(tmp, sizeof tmp, "\\U%08X", (unsigned)c);
    mt_buf_str(o, tmp);
}

/* A GBNF class for the (normalised, non-empty) set: positive, or negated when that
 * is shorter. */
static void put_class(mt_buf *o, const cset *s) {
    cset neg = {0};
    cs_neg(s, &neg);
    int negated = s->n && s->r[s->n - 1].hi == MAX_CP && neg.n > 0;
    const cset *w = negated ? &neg : s;
    mt_buf_str(o, negated ? "[^" : "[");
    for (size_t i = 0; i < w->n; i++) {
        put_cp_escaped(o, w->r[i].lo, 1);
        if (w->r[i].hi != w->r[i].lo) {
            if (w->r[i].hi > w->r[i].lo + 1) mt_buf_str(o, "-");
            put_cp_escaped(o, w->r[i].hi, 1);
        }
    }
    mt_buf_str(o, "]");
    if (neg.oom) o->oom = 1;
    free(neg.r);
}

/* The canonical JSON-string encoding of code point c, as raw UTF-8 bytes. */
static size_t json_encode_cp(uint32_t c, char *b) {
    static const char shortesc[] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    if (c == '"' || c == '\\') { b[0] = '\\'; b[1] = (char)c; return 2; }
    if (c < 0x20) {
        if (c < sizeof shortesc && shortesc[c]) { b[0] = '\\'; b[1] = shortesc[c]; return 2; }
        return (size_t)snprintf(b, 8, "\\u%04x", (unsigned)c);
    }
    if (c < 0x80) { b[0] = (char)c; return 1; }
    if (c < 0x800) { b[0] = (char)(0xC0 | (c >> 6)); b[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        b[0] = (char)(0xE0 | (c >> 12)); b[1] = (char)(0x80 | ((c >> 6) & 0x3F)); b[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    b[0] = (char)(0xF0 | (c >> 18)); b[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    b[2] = (char)(0x80 | ((c >> 6) & 0x3F)); b[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Append the bytes of one GBNF literal's content (inside quotes) for code point c. */
static void put_lit_cp(mt_buf *o, uint32_t c, int json) {
    if (!json) { put_cp_escaped(o, c, 0); return; }
    char b[8];
    size_t n = json_encode_cp(c, b);
    if (n > 1 && (unsigned char)b[0] >= 0x80) { put_cp_escaped(o, c, 0); return; }
    for (size_t i = 0; i < n; i++) put_cp_escaped(o, (unsigned char)b[i], 0);
}

/* One character out of the set (normalised, non-empty) as a GBNF term. */
static void put_set(mt_buf *o, const cset *s, int json) {
    if (!json) { put_class(o, s); return; }
    /* split: characters written raw, and those that need an escape */
    cset plain = {0};
    for (size_t i = 0; i < s->n; i++) {
        uint32_t lo = s->r[i].lo < 0x20 ? 0x20 : s->r[i].lo, hi = s->r[i].hi;
        for (uint32_t cut = 0; lo <= hi && cut < 2; cut++) {
            uint32_t x = cut ? '\\' : '"';
            if (x >= lo && x <= hi) { cs_add(&plain, lo, x - 1); lo = x + 1; }
        }
        if (lo <= hi) cs_add(&plain, lo, hi);
    }
    cs_norm(&plain);
    int esc_n = 0, alts = plain.n > 0;
    for (uint32_t c = 0; c < 0x20; c++) esc_n += cs_has(s, c);
    int q = cs_has(s, '"'), bs = cs_has(s, '\\');
    alts += esc_n + q + bs;
    if (alts > 1) mt_buf_str(o, "( ");
    int first = 1;
    if (plain.n) { put_class(o, &plain); first = 0; }
    if (esc_n == 32 && q && bs) {
        mt_buf_str(o, first ? "" : " | ");
        mt_buf_str(o, "\"\\\\\" [\\x22\\x5Cbfnrt] | \"\\\\u00\" ( \"0\" [0-7bef] | \"1\" [0-9a-f] )");
    } else {
        for (uint32_t c = 0; c < 0x60; c++) {
            if (!(c < 0x20 || c == '"' || c == '\\') || !cs_has(s, c)) continue;
            mt_buf_str(o, first ? "\"" : " | \"");
            put_lit_cp(o, c, 1);
            mt_buf_str(o, "\"");
            first = 0;
        }
    }
    if (alts > 1) mt_buf_str(o, " )");
    if (plain.oom) o->oom = 1;
    free(plain.r);
}

/* ---- the parser ---- */
typedef struct {
    const unsigned char *s;
    size_t n, i;
    int json, depth;
    mt_err *err;
} rx;

static int rx_fail(rx *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int rx_fail(rx *p, int code, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return mt_seterr(p->err, code, "regex: %s at offset %zu", msg, p->i);
}

/* Decode one UTF-8 code point at p->i. */
static int rx_cp(rx *p, uint32_t *c) {
    const unsigned char *s = p->s + p->i;
    size_t left = p->n - p->i;
    uint32_t v;
    size_t len;
    if (s[0] < 0x80) { v = s[0]; len = 1; }
    else if (s[0] >= 0xC2 && s[0] < 0xE0) { v = s[0] & 0x1F; len = 2; }
    else if (s[0] >= 0xE0 && s[0] < 0xF0) { v = s[0] & 0x0F; len = 3; }
    else if (s[0] >= 0xF0 && s[0] < 0xF5) { v = s[0] & 0x07; len = 4; }
    else return rx_fail(p, MT_EINVAL, "invalid UTF-8");
    if (len > left) return rx_fail(p, MT_EINVAL, "invalid UTF-8");
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return rx_fail(p, MT_EINVAL, "invalid UTF-8");
        v = (v << 6) | (s[k] & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > MAX_CP)) || (v >= 0xD800 && v <= 0xDFFF))
        return rx_fail(p, MT_EINVAL, "invalid UTF-8");
    p->i += len;
    *c = v;
    return MT_OK;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* An escape after '\' (p->i at the character after the backslash).  Sets either *c
 * (a single character) or adds a shorthand class to set and sets *is_set. */
static int rx_escape(rx *p, int in_class, uint32_t *c, cset *set, int *is_set) {
    *is_set = 0;
    if (p->i >= p->n) return rx_fail(p, MT_EINVAL, "trailing backslash");
    unsigned char e = p->s[p->i];
    switch (e) {
    case 'd': case 'D': case 'w': case 'W': case 's': case 'S':
        p->i++;
        cs_shorthand(set, e);
        *is_set = 1;
        return MT_OK;
    case 't': p->i++; *c = '\t'; return MT_OK;
    case 'n': p->i++; *c = '\n'; return MT_OK;
    case 'r': p->i++; *c = '\r'; return MT_OK;
    case 'f': p->i++; *c = '\f'; return MT_OK;
    case 'v': p->i++; *c = '\v'; return MT_OK;
    case 'a': p->i++; *c = '\a'; return MT_OK;
    case '0': p->i++; *c = 0; return MT_OK;
    case 'b':
        if (in_class) { p->i++; *c = '\b'; return MT_OK; }
        return rx_fail(p, MT_EUNSUPPORTED, "word boundary \\b is not supported");
    case 'B': return rx_fail(p, MT_EUNSUPPORTED, "word boundary \\B is not supported");
    case 'A': case 'Z': case 'z': case 'G':
        return rx_fail(p, MT_EUNSUPPORTED, "anchor \\%c is not supported", e);
    case 'x': case 'u': {
        int nd = e == 'x' ? 2 : 4;
        if (p->i + (size_t)nd >= p->n) return rx_fail(p, MT_EINVAL, "short \\%c escape", e);
        uint32_t v = 0;
        for (int k = 1; k <= nd; k++) {
            int h = hexval(p->s[p->i + (size_t)k]);
            if (h < 0) return rx_fail(p, MT_EINVAL, "bad \\%c escape", e);
            v = v * 16 + (uint32_t)h;
        }
        if (v >= 0xD800 && v <= 0xDFFF) return rx_fail(p, MT_EUNSUPPORTED, "surrogate code point \\u%04X", v);
        p->i += (size_t)nd + 1;
        *c = v;
        return MT_OK;
    }
    case 'p': case 'P': return rx_fail(p, MT_EUNSUPPORTED, "Unicode property \\%c is not supported", e);
    case 'k': return rx_fail(p, MT_EUNSUPPORTED, "backreference \\k is not supported");
    default:
        if (e >= '1' && e <= '9') return rx_fail(p, MT_EUNSUPPORTED, "backreference \\%c is not supported", e);
        if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z'))
            return rx_fail(p, MT_EUNSUPPORTED, "escape \\%c is not supported", e);
        return rx_cp(p, c); /* escaped punctuation or any other character: itself */
    }
}

/* [...] after the '['. */
static int rx_class(rx *p, cset *out) {
    int neg = 0;
    cset s = {0};
    int rc = MT_OK;
    if (p->i < p->n && p->s[p->i] == '^') { neg = 1; p->i++; }
    int first = 1;
    for (;;) {
        if (p->i >= p->n) { rc = rx_fail(p, MT_EINVAL, "unterminated character class"); goto done; }
        if (p->s[p->i] == ']' && !first) { p->i++; break; }
        if (p->s[p->i] == '[' && p->i + 1 < p->n && (p->s[p->i + 1] == ':' || p->s[p->i + 1] == '=' ||
                                                      p->s[p->i + 1] == '.')) {
            rc = rx_fail(p, MT_EUNSUPPORTED, "POSIX class [%c...%c] is not supported", p->s[p->i + 1], p->s[p->i + 1]);
            goto done;
        }
        first = 0;
        uint32_t lo, hi;
        int is_set = 0;
        if (p->s[p->i] == '\\') {
            p->i++;
            if ((rc = rx_escape(p, 1, &lo, &s, &is_set))) goto done;
            if (is_set) continue;
        } else if ((rc = rx_cp(p, &lo))) goto done;
        hi = lo;
        if (p->i + 1 < p->n && p->s[p->i] == '-' && p->s[p->i + 1] != ']') {
            p->i++;
            if (p->s[p->i] == '\\') {
                p->i++;
                if ((rc = rx_escape(p, 1, &hi, &s, &is_set))) goto done;
                if (is_set) { rc = rx_fail(p, MT_EINVAL, "bad character range"); goto done; }
            } else if ((rc = rx_cp(p, &hi))) goto done;
            if (hi < lo) { rc = rx_fail(p, MT_EINVAL, "bad character range"); goto done; }
        }
        cs_add(&s, lo, hi);
    }
    cs_norm(&s);
    if (neg) cs_neg(&s, out);
    else for (size_t i = 0; i < s.n; i++) cs_add(out, s.r[i].lo, s.r[i].hi);
    cs_norm(out);
    cs_drop_surrogates(out);
    if (s.oom || out->oom) rc = mt_seterr(p->err, MT_ENOMEM, "regex: out of memory");
    else if (out->n == 0) rc = rx_fail(p, MT_EUNSUPPORTED, "a character class that matches nothing");
done:
    free(s.r);
    return rc;
}

static int rx_alt(rx *p, mt_buf *o, int top, int *nullable);

static int rx_num(rx *p, size_t *v) {
    size_t start = p->i, x = 0;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        x = x * 10 + (p->s[p->i] - '0');
        if (x > 1000000) x = 1000000;
        p->i++;
    }
    *v = x;
    return p->i > start;
}

/* A quantifier at p->i, if any: *kind 0 none, else Q_ANY and maybe Q_ZERO (it allows
 * no repetition) and Q_MANY (no upper bound); writes its GBNF suffix to q. */
enum { Q_ANY = 1, Q_ZERO = 2, Q_MANY = 4 };
static int rx_quant(rx *p, char *q, size_t qcap, int *kind) {
    *kind = 0;
    if (p->i >= p->n) return MT_OK;
    unsigned char c = p->s[p->i];
    if (c == '*' || c == '+' || c == '?') {
        p->i++;
        snprintf(q, qcap, "%c", c);
        *kind = Q_ANY | (c != '+' ? Q_ZERO : 0) | (c != '?' ? Q_MANY : 0);
    } else if (c == '{') {
        size_t save = p->i, m = 0, n = 0;
        p->i++;
        int has_m = rx_num(p, &m), has_n = 0, comma = 0;
        if (p->i < p->n && p->s[p->i] == ',') { comma = 1; p->i++; has_n = rx_num(p, &n); }
        if (p->i >= p->n || p->s[p->i] != '}' || (!has_m && !has_n)) { p->i = save; return MT_OK; } /* literal '{' */
        p->i++;
        if (!has_m) m = 0;
        if (m > MT_SCHEMA_MAX_REPEAT || (has_n && n > MT_SCHEMA_MAX_REPEAT))
            return rx_fail(p, MT_ELIMIT, "repetition count over %d", MT_SCHEMA_MAX_REPEAT);
        if (has_n && n < m) return rx_fail(p, MT_EINVAL, "repetition {%zu,%zu} with max below min", m, n);
        if (!comma) snprintf(q, qcap, "{%zu}", m);
        else if (!has_n) snprintf(q, qcap, "{%zu,}", m);
        else snprintf(q, qcap, "{%zu,%zu}", m, n);
        *kind = Q_ANY | (m == 0 ? Q_ZERO : 0) | (comma && !has_n ? Q_MANY : 0);
    } else {
        return MT_OK;
    }
    if (p->i < p->n && p->s[p->i] == '?') p->i++; /* lazy: same language */
    else if (p->i < p->n && p->s[p->i] == '+') return rx_fail(p, MT_EUNSUPPORTED, "possessive quantifier");
    if (p->i < p->n && (p->s[p->i] == '*' || p->s[p->i] == '+' || p->s[p->i] == '?' ||
                        (p->s[p->i] == '{' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')))
        return rx_fail(p, MT_EINVAL, "multiple repeat");
    return MT_OK;
}

/* The JSON-content expression for "any characters" (the unanchored sides). */
static void put_any_star(mt_buf *o, int json) {
    mt_buf_str(o, json ? MT_JSON_CHAR_GBNF "*" : "[^\\x0A]*");
}

/* One alternative: a sequence of quantified atoms.  top: at the pattern's top level,
 * where ^ may open it and $ may close it. */
static int rx_seq(rx *p, mt_buf *o, int top, int *nullable) {
    *nullable = 1;
    mt_buf lit = {0}; /* a pending run of unquantified literal characters */
    int rc = MT_OK, items = 0, anch_start = 0, anch_end = 0;
    if (top && p->i < p->n && p->s[p->i] == '^') { p->i++; anch_start = 1; }
    if (top && p->json && !anch_start) { put_any_star(o, 1); items++; }
    while (p->i < p->n && p->s[p->i] != '|' && p->s[p->i] != ')') {
        unsigned char c = p->s[p->i];
        mt_buf atom = {0};
        cset set = {0};
        int is_lit = 0, is_set = 0, group_null = 0;
        uint32_t cp = 0;
        if (c == '^') { rc = rx_fail(p, MT_EUNSUPPORTED, "anchor ^ not at the start of the pattern"); goto atom_done; }
        if (c == '$') {
            p->i++;
            if (top && (p->i == p->n || p->s[p->i] == '|')) { anch_end = 1; goto atom_done; }
            p->i--;
            rc = rx_fail(p, MT_EUNSUPPORTED, "anchor $ not at the end of the pattern");
            goto atom_done;
        }
        if (c == '*' || c == '+' || c == '?' ||
            (c == '{' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')) {
            rc = rx_fail(p, MT_EINVAL, "nothing to repeat");
            goto atom_done;
        }
        if (c == '(') {
            p->i++;
            if (p->i < p->n && p->s[p->i] == '?') {
                p->i++;
                unsigned char k = p->i < p->n ? p->s[p->i] : 0;
                unsigned char k2 = p->i + 1 < p->n ? p->s[p->i + 1] : 0;
                if (k == ':') p->i++;
                else if (k == '=' || k == '!') { rc = rx_fail(p, MT_EUNSUPPORTED, "lookahead (?%c is not supported", k); goto atom_done; }
                else if (k == '<' && (k2 == '=' || k2 == '!')) {
                    rc = rx_fail(p, MT_EUNSUPPORTED, "lookbehind (?<%c is not supported", k2);
                    goto atom_done;
                } else if (k == 'P' && k2 == '=') {
                    rc = rx_fail(p, MT_EUNSUPPORTED, "backreference (?P= is not supported");
                    goto atom_done;
                } else if ((k == 'P' && k2 == '<') || k == '<') {
                    p->i += k == 'P' ? 2 : 1;
                    while (p->i < p->n && p->s[p->i] != '>') p->i++;
                    if (p->i >= p->n) { rc = rx_fail(p, MT_EINVAL, "unterminated group name"); goto atom_done; }
                    p->i++;
                } else if (k == '#') {
                    rc = rx_fail(p, MT_EUNSUPPORTED, "comment group (?# is not supported");
                    goto atom_done;
                } else {
                    rc = rx_fail(p, MT_EUNSUPPORTED, "inline flags or group (?%c are not supported", k ? k : ' ');
                    goto atom_done;
                }
            }
            if (++p->depth > RE_MAX_NEST) { rc = rx_fail(p, MT_ELIMIT, "groups nested over %d deep", RE_MAX_NEST); goto atom_done; }
            mt_buf_str(&atom, "( ");
            if ((rc = rx_alt(p, &atom, 0, &group_null))) goto atom_done;
            p->depth--;
            if (p->i >= p->n || p->s[p->i] != ')') { rc = rx_fail(p, MT_EINVAL, "missing )"); goto atom_done; }
            p->i++;
            mt_buf_str(&atom, " )");
        } else if (c == '[') {
            p->i++;
            if ((rc = rx_class(p, &set))) goto atom_done;
            is_set = 1;
        } else if (c == '.') {
            p->i++;
            cs_add(&set, 0, '\n' - 1);
            cs_add(&set, '\n' + 1, MAX_CP);
            is_set = 1;
        } else if (c == '\\') {
            p->i++;
            if ((rc = rx_escape(p, 0, &cp, &set, &is_set))) goto atom_done;
            if (is_set) cs_norm(&set);
            else is_lit = 1;
        } else {
            if ((rc = rx_cp(p, &cp))) goto atom_done;
            is_lit = 1;
        }
        char q[48];
        int quant;
        if ((rc = rx_quant(p, q, sizeof q, &quant))) goto atom_done;
        if (group_null && (quant & Q_MANY)) {
            rc = rx_fail(p, MT_EUNSUPPORTED, "a repeated group that can match the empty string (as in (a?)*)");
            goto atom_done;
        }
        if (!group_null && !(quant & Q_ZERO) && !is_lit && !is_set) *nullable = 0;
        if (is_lit || is_set) *nullable &= !!(quant & Q_ZERO);
        if (is_lit && !quant) {
            put_lit_cp(&lit, cp, p->json);
            goto atom_done;
        }
        if (lit.n) {
            mt_buf_str(o, items ? " \"" : "\"");
            mt_buf_put(o, lit.p, lit.n);
            mt_buf_str(o, "\"");
            lit.n = 0;
            items++;
        }
        if (is_lit) {
            mt_buf_str(&atom, "\"");
            put_lit_cp(&atom, cp, p->json);
            mt_buf_str(&atom, "\"");
            if (p->json && cp < 0x80 && (cp < 0x20 || cp == '"' || cp == '\\')) {
                /* a two-character escape: group it so the quantifier covers all of it */
                mt_buf g = {0};
                mt_buf_str(&g, "( ");
                mt_buf_put(&g, atom.p, atom.n);
                mt_buf_str(&g, " )");
                mt_buf_free(&atom);
                atom = g;
            }
        } else if (is_set) {
            put_set(&atom, &set, p->json);
        }
        if (items) mt_buf_str(o, " ");
        mt_buf_put(o, atom.p, atom.n);
        if (quant) mt_buf_str(o, q);
        items++;
    atom_done:
        if (set.oom || atom.oom) o->oom = 1;
        free(set.r);
        mt_buf_free(&atom);
        if (rc) break;
    }
    if (!rc && lit.n) {
        mt_buf_str(o, items ? " \"" : "\"");
        mt_buf_put(o, lit.p, lit.n);
        mt_buf_str(o, "\"");
        items++;
    }
    if (!rc && top && p->json && !anch_end) {
        if (items) mt_buf_str(o, " ");
        put_any_star(o, 1);
        items++;
    }
    if (!rc && !items) mt_buf_str(o, "\"\"");
    if (lit.oom) o->oom = 1;
    mt_buf_free(&lit);
    return rc;
}

static int rx_alt(rx *p, mt_buf *o, int top, int *nullable) {
    int nul;
    MT_TRY(rx_seq(p, o, top, &nul));
    *nullable = nul;
    while (p->i < p->n && p->s[p->i] == '|') {
        p->i++;
        mt_buf_str(o, " | ");
        MT_TRY(rx_seq(p, o, top, &nul));
        *nullable |= nul;
    }
    return MT_OK;
}

int mt_regex_gbnf_expr(const char *re, size_t n, int json_content, mt_buf *out, mt_err *err) {
    if (!re && n) return mt_seterr(err, MT_EINVAL, "regex: NULL pattern");
    rx p = {(const unsigned char *)re, n, 0, json_content ? 1 : 0, 0, err};
    mt_buf_str(out, "( ");
    int nullable;
    MT_TRY(rx_alt(&p, out, 1, &nullable));
    if (p.i < p.n) return rx_fail(&p, MT_EINVAL, "unbalanced )");
    mt_buf_str(out, " )");
    if (out->oom) return mt_seterr(err, MT_ENOMEM, "regex: out of memory");
    if (out->n > MT_SCHEMA_MAX_GBNF) return mt_seterr(err, MT_ELIMIT, "regex: grammar over %u bytes", MT_SCHEMA_MAX_GBNF);
    return MT_OK;
}

int mt_regex_to_gbnf(const char *re, size_t n, char **gbnf, mt_err *err) {
    *gbnf = NULL;
    mt_buf o = {0};
    mt_buf_str(&o, "root ::= ");
    int rc = mt_regex_gbnf_expr(re, n, 0, &o, err);
    mt_buf_str(&o, "\n");
    if (!rc && o.oom) rc = mt_seterr(err, MT_ENOMEM, "regex: out of memory");
    if (rc) { mt_buf_free(&o); return rc; }
    *gbnf = o.p;
    return MT_OK;
}

/* ---- helpers for json_schema.c ---- */
void mt_gbnf_json_string(mt_buf *o, const char *s, size_t n) {
    mt_buf_str(o, "\"\\\"");
    rx p = {(const unsigned char *)s, n, 0, 1, 0, NULL};
    while (p.i < p.n) {
        uint32_t c;
        if (rx_cp(&p, &c)) c = p.s[p.i++]; /* not UTF-8 (jansson never gives that): byte as is */
        put_lit_cp(o, c, 1);
    }
    mt_buf_str(o, "\\\"\"");
}

void mt_gbnf_json_char_except(mt_buf *o, const uint32_t *cps, size_t n) {
    cset ex = {0}, s = {0};
    for (size_t i = 0; i < n; i++) cs_add(&ex, cps[i], cps[i]);
    cs_norm(&ex);
    cs_neg(&ex, &s);
    if (s.n) put_set(o, &s, 1);
    else mt_buf_str(o, "\"\\u0000\"");
    if (ex.oom || s.oom) o->oom = 1;
    free(ex.r);
    free(s.r);
}

void mt_gbnf_json_char(mt_buf *o, uint32_t c) {
    mt_buf_str(o, "\"");
    put_lit_cp(o, c, 1);
    mt_buf_str(o, "\"");
}
