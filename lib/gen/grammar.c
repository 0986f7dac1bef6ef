/* grammar.c - the GBNF parser: text -> the flat element arrays of grammar_int.h.
 *
 * Recursive descent over the source bytes with bounds checks at every read.  Groups and
 * repetitions become generated rules: X* is S ::= X S | "", X+ is X X*, X? is O ::= X | "",
 * X{m,n} is m copies of X then a nested chain R ::= X R' | "" of n - m optional copies
 * (nested rather than X? X? ... so a string has one parse, not many).  After parsing:
 * every referenced rule must be defined, the root must exist, and no rule may reach
 * itself without consuming input (left recursion, which the matcher cannot run). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/grammar_int.h"

/* ---------------- parse-time structures ---------------- */
typedef struct { gm_elem *e; size_t n, cap; } pseq;
typedef struct {
    char *name;
    size_t ref_off, def_off;   /* first reference / definition (source offsets) */
    int defined, generated;
    pseq *alts; size_t nalts, capalts;
} prule;

typedef struct {
    const char *s; size_t n, pos;
    prule *rules; size_t nrules, caprules;
    gm_range *ranges; size_t nranges, capranges;
    gm_class *classes; size_t nclasses, capclasses;
    size_t total;              /* elements so far (limit) */
    size_t cur_rule;           /* named rule being parsed (for generated rule names) */
    uint32_t *names; size_t namemask, nnames;   /* named rules: hash slots of id + 1 (0 empty) */
    int depth;                 /* group nesting */
    mt_err *err;
} parser;

static void line_col(const char *s, size_t n, size_t off, int *line, int *col) {
    int l = 1, c = 1;
    for (size_t i = 0; i < off && i < n; i++) {
        if (s[i] == '\n') { l++; c = 1; }
        else if (((unsigned char)s[i] & 0xC0) != 0x80) c++;
    }
    *line = l; *col = c;
}

static int perr_at(parser *p, size_t off, int code, const char *what) {
    int l, c;
    line_col(p->s, p->n, off, &l, &c);
    return mt_seterr(p->err, code, "grammar: line %d:%d: %s", l, c, what);
}

static int grow(void **a, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    while (nc < need) nc *= 2;
    void *q = realloc(*a, nc * sz);
    if (!q) return -1;
    *a = q; *cap = nc;
    return 0;
}

static int oom(parser *p) { return mt_seterr(p->err, MT_ENOMEM, "grammar: out of memory"); }

static int seq_push(parser *p, pseq *q, uint8_t type, uint32_t v) {
    if (++p->total > MT_GRAMMAR_MAX_ELEMS)
        return perr_at(p, p->pos, MT_ELIMIT, "grammar too large (over 1048576 elements after expanding repetitions)");
    if (grow((void **)&q->e, &q->cap, q->n + 1, sizeof *q->e)) return oom(p);
    q->e[q->n].type = type; q->e[q->n].v = v; q->n++;
    return MT_OK;
}

/* a new rule; *id its index */
static int rule_new(parser *p, const char *name, size_t len, size_t off, int generated, size_t *id) {
    if (p->nrules >= (1u << 24)) return perr_at(p, off, MT_ELIMIT, "too many rules");
    if (grow((void **)&p->rules, &p->caprules, p->nrules + 1, sizeof *p->rules)) return oom(p);
    prule *r = &p->rules[p->nrules];
    memset(r, 0, sizeof *r);
    r->name = malloc(len + 1);
    if (!r->name) return oom(p);
    memcpy(r->name, name, len); r->name[len] = 0;
    r->ref_off = r->def_off = off;
    r->generated = generated;
    *id = p->nrules++;
    return MT_OK;
}

static uint64_t name_hash(const char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h ^ (h >> 31);
}

/* the named rule called name (created, undefined, when new) */
static int rule_find(parser *p, const char *name, size_t len, size_t off, size_t *id) {
    if ((p->nnames + 1) * 2 > (p->names ? p->namemask + 1 : 0)) {
        size_t nm = p->names ? (p->namemask + 1) * 2 : 64;
        uint32_t *ns = calloc(nm, sizeof *ns);
        if (!ns) return oom(p);
        for (size_t i = 0; p->names && i <= p->namemask; i++) {
            if (!p->names[i]) continue;
            const char *nmx = p->rules[p->names[i] - 1].name;
            size_t j = name_hash(nmx, strlen(nmx)) & (nm - 1);
            while (ns[j]) j = (j + 1) & (nm - 1);
            ns[j] = p->names[i];
        }
        free(p->names);
        p->names = ns; p->namemask = nm - 1;
    }
    size_t j = name_hash(name, len) & p->namemask;
    for (; p->names[j]; j = (j + 1) & p->namemask) {
        const char *nmx = p->rules[p->names[j] - 1].name;
        if (strlen(nmx) == len && !memcmp(nmx, name, len)) { *id = p->names[j] - 1; return MT_OK; }
    }
    MT_TRY(rule_new(p, name, len, off, 0, id));
    p->names[j] = (uint32_t)*id + 1;
    p->nnames++;
    return MT_OK;
}

static int rule_alt(parser *p, size_t id, pseq **out) {
    prule *r = &p->rules[id];
    if (grow((void **)&r->alts, &r->capalts, r->nalts + 1, sizeof *r->alts)) return oom(p);
    memset(&r->alts[r->nalts], 0, sizeof r->alts[0]);
    *out = &r->alts[r->nalts++];
    return MT_OK;
}

/* a rule for a group or repetition at source offset off (named after the rule it is in) */
static int gen_rule(parser *p, size_t off, size_t *id) {
    const char *nm = p->rules[p->cur_rule].name;
    MT_TRY(rule_new(p, nm, strlen(nm), off, 1, id));
    p->rules[*id].defined = 1;
    return MT_OK;
}

/* ---------------- character classes ---------------- */
static int cmp_range(const void *a, const void *b) {
    const gm_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : 0;
}

/* add class from tmp[0..n) (sorted, merged, complemented if neg); *cls its index */
static int class_add(parser *p, gm_range *tmp, size_t n, int neg, uint32_t *cls) {
    qsort(tmp, n, sizeof *tmp, cmp_range);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && tmp[i].lo <= tmp[m - 1].hi + 1) { if (tmp[i].hi > tmp[m - 1].hi) tmp[m - 1].hi = tmp[i].hi; }
        else tmp[m++] = tmp[i];
    }
    size_t need = p->nranges + m + 1;
    if (grow((void **)&p->ranges, &p->capranges, need, sizeof *p->ranges)) return oom(p);
    if (grow((void **)&p->classes, &p->capclasses, p->nclasses + 1, sizeof *p->classes)) return oom(p);
    size_t off = p->nranges;
    if (!neg) {
        memcpy(p->ranges + off, tmp, m * sizeof *tmp);
        p->nranges += m;
    } else {
        uint32_t next = 0;
        for (size_t i = 0; i < m; i++) {
            if (tmp[i].lo > next) p->ranges[p->nranges++] = (gm_range){next, tmp[i].lo - 1};
            next = tmp[i].hi + 1;
        }
        if (next <= 0x10FFFF) p->ranges[p->nranges++] = (gm_range){next, 0x10FFFF};
    }
    p->classes[p->nclasses].off = (uint32_t)off;
    p->classes[p->nclasses].n = (uint32_t)(p->nranges - off);
    *cls = (uint32_t)p->nclasses++;
    return MT_OK;
}

static int class_single(parser *p, uint32_t lo, uint32_t hi, uint32_t *cls) {
    gm_range r = {lo, hi};
    return class_add(p, &r, 1, 0, cls);
}

/* ---------------- lexing ---------------- */
static int at_end(const parser *p) { return p->pos >= p->n; }
static int peek(const parser *p) { return p->pos < p->n ? (unsigned char)p->s[p->pos] : -1; }
static int is_name_char(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* spaces, tabs and comments; newlines too when nl */
static void skip_space(parser *p, int nl) {
    while (!at_end(p)) {
        int c = peek(p);
        if (c == ' ' || c == '\t') p->pos++;
        else if (c == '#') { while (!at_end(p) && p->s[p->pos] != '\n' && p->s[p->pos] != '\r') p->pos++; }
        else if (nl && (c == '\n' || c == '\r')) p->pos++;
        else break;
    }
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* one character of a literal or class (escape or UTF-8 sequence) -> *cp */
static int parse_char(parser *p, uint32_t *cp) {
    size_t at = p->pos;
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c == '\\') {
        if (p->pos + 1 >= p->n) return perr_at(p, at, MT_EINVAL, "escape at the end of the text");
        char e = p->s[p->pos + 1];
        p->pos += 2;
        int nd = 0;
        switch (e) {
        case 'n': *cp = '\n'; return MT_OK;
        case 't': *cp = '\t'; return MT_OK;
        case 'r': *cp = '\r'; return MT_OK;
        case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': case '/':
            *cp = (unsigned char)e; return MT_OK;
        case 'x': nd = 2; break;
        case 'u': nd = 4; break;
        case 'U': nd = 8; break;
        default: return perr_at(p, at, MT_EINVAL, "unknown escape (use \\n \\t \\r \\\\ \\\" \\xHH \\uHHHH \\UHHHHHHHH)");
        }
        uint32_t v = 0;
        for (int i = 0; i < nd; i++) {
            int h = p->pos < p->n ? hexval((unsigned char)p->s[p->pos]) : -1;
            if (h < 0) return perr_at(p, at, MT_EINVAL, "escape needs hexadecimal digits");
            v = v * 16 + (uint32_t)h;
            p->pos++;
        }
        if (v > 0x10FFFF) return perr_at(p, at, MT_EINVAL, "escape beyond U+10FFFF");
        *cp = v;
        return MT_OK;
    }
    if (c < 0x80) { *cp = c; p->pos++; return MT_OK; }
    int len = c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
    if (!len || p->pos + (size_t)len > p->n) return perr_at(p, at, MT_EINVAL, "invalid UTF-8");
    uint32_t v = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
    for (int i = 1; i < len; i++) {
        unsigned char d = (unsigned char)p->s[p->pos + (size_t)i];
        if ((d & 0xC0) != 0x80) return perr_at(p, at, MT_EINVAL, "invalid UTF-8");
        v = (v << 6) | (d & 0x3F);
    }
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) || (v >= 0xD800 && v <= 0xDFFF))
        return perr_at(p, at, MT_EINVAL, "invalid UTF-8");
    p->pos += (size_t)len;
    *cp = v;
    return MT_OK;
}

/* ---------------- rules ---------------- */
static int parse_alts(parser *p, size_t rule, int nested);

static int copy_item(parser *p, pseq *q, const gm_elem *it, size_t n) {
    for (size_t i = 0; i < n; i++) MT_TRY(seq_push(p, q, it[i].type, it[i].v));
    return MT_OK;
}

/* apply quantifier min..max (max < 0: unbounded) to the item q->e[start..q->n) */
static int repeat(parser *p, size_t rule, size_t ai, size_t start, size_t off, long min, long max) {
#define QR (&p->rules[rule].alts[ai])           /* the rules array moves as rules are added */
    size_t n = QR->n - start;
    gm_elem *item = malloc((n ? n : 1) * sizeof *item);
    if (!item) return oom(p);
    memcpy(item, QR->e + start, n * sizeof *item);
    QR->n = start;
    int rc = MT_OK;
    for (long i = 0; i < min && !rc; i++) rc = copy_item(p, QR, item, n);
    if (!rc && max < 0) {                      /* S ::= item S | "" */
        size_t s; pseq *a;
        if (!(rc = gen_rule(p, off, &s)) && !(rc = rule_alt(p, s, &a)) && !(rc = copy_item(p, a, item, n)) &&
            !(rc = seq_push(p, a, GM_REF, (uint32_t)s)) && !(rc = rule_alt(p, s, &a)))
            rc = seq_push(p, QR, GM_REF, (uint32_t)s);
    } else if (!rc && max > min) {             /* R_k ::= item R_{k-1} | "" */
        size_t prev = 0; int have = 0;
        for (long k = 0; k < max - min && !rc; k++) {
            size_t s; pseq *a;
            if ((rc = gen_rule(p, off, &s)) || (rc = rule_alt(p, s, &a)) || (rc = copy_item(p, a, item, n))) break;
            if (have && (rc = seq_push(p, a, GM_REF, (uint32_t)prev))) break;
            if ((rc = rule_alt(p, s, &a))) break;
            prev = s; have = 1;
        }
        if (!rc) rc = seq_push(p, QR, GM_REF, (uint32_t)prev);
    }
    free(item);
    return rc;
#undef QR
}

static int parse_int(parser *p, long *v) {
    size_t at = p->pos;
    long x = 0;
    if (at_end(p) || peek(p) < '0' || peek(p) > '9') return perr_at(p, at, MT_EINVAL, "expected a number in {m,n}");
    while (!at_end(p) && peek(p) >= '0' && peek(p) <= '9') {
        x = x * 10 + (peek(p) - '0');
        if (x > MT_GRAMMAR_MAX_REPEAT) return perr_at(p, at, MT_ELIMIT, "repetition count over 10000");
        p->pos++;
    }
    *v = x;
    return MT_OK;
}

/* one sequence into alternative `alt` of rule `rule` */
static int parse_seq(parser *p, size_t rule, int nested) {
    pseq *q0;
    MT_TRY(rule_alt(p, rule, &q0));
    size_t ai = p->rules[rule].nalts - 1;
    long last = -1;                            /* start of the last item, -1 none */
    size_t last_off = 0;                       /* its source offset */
#define Q (&p->rules[rule].alts[ai])           /* the rules array may move */
    (void)q0;
    while (!at_end(p)) {
        size_t at = p->pos;
        int c = peek(p);
        if (c != '*' && c != '+' && c != '?' && c != '{') last_off = at;
        if (c == '"') {
            p->pos++;
            last = (long)Q->n;
            for (;;) {
                if (at_end(p)) return perr_at(p, at, MT_EINVAL, "unterminated string literal");
                if (peek(p) == '"') { p->pos++; break; }
                uint32_t cp, cls;
                MT_TRY(parse_char(p, &cp));
                MT_TRY(class_single(p, cp, cp, &cls));
                MT_TRY(seq_push(p, Q, GM_CHR, cls));
            }
            if ((size_t)last == Q->n) last = -1;   /* "" : nothing to repeat */
        } else if (c == '[') {
            p->pos++;
            int neg = 0;
            if (peek(p) == '^') { neg = 1; p->pos++; }
            gm_range *tmp = NULL; size_t nt = 0, ct = 0;
            int rc = MT_OK;
            for (;;) {
                if (at_end(p)) { rc = perr_at(p, at, MT_EINVAL, "unterminated character class"); break; }
                if (peek(p) == ']') { p->pos++; break; }
                uint32_t lo, hi;
                size_t cat = p->pos;
                if ((rc = parse_char(p, &lo))) break;
                hi = lo;
                if (p->pos + 1 < p->n && p->s[p->pos] == '-' && p->s[p->pos + 1] != ']') {
                    p->pos++;
                    if ((rc = parse_char(p, &hi))) break;
                    if (hi < lo) { rc = perr_at(p, cat, MT_EINVAL, "character range out of order"); break; }
                }
                if (nt > 65536) { rc = perr_at(p, at, MT_ELIMIT, "character class too long"); break; }
                if (grow((void **)&tmp, &ct, nt + 1, sizeof *tmp)) { rc = oom(p); break; }
                tmp[nt++] = (gm_range){lo, hi};
            }
            uint32_t cls = 0;
            if (!rc) rc = class_add(p, tmp ? tmp : &(gm_range){0, 0}, nt, neg, &cls);
            free(tmp);
            MT_TRY(rc);
            last = (long)Q->n;
            MT_TRY(seq_push(p, Q, GM_CHR, cls));
        } else if (c == '.') {
            p->pos++;
            uint32_t cls;
            MT_TRY(class_single(p, 0, 0x10FFFF, &cls));
            last = (long)Q->n;
            MT_TRY(seq_push(p, Q, GM_CHR, cls));
        } else if (c == '(') {
            p->pos++;
            if (++p->depth > 200) return perr_at(p, at, MT_ELIMIT, "groups nested over 200 deep");
            size_t g;
            MT_TRY(gen_rule(p, at, &g));
            skip_space(p, 1);
            MT_TRY(parse_alts(p, g, 1));
            if (peek(p) != ')') return perr_at(p, at_end(p) ? at : p->pos, MT_EINVAL,
                                               at_end(p) ? "unclosed '('" : "expected ')'");
            p->pos++;
            p->depth--;
            last = (long)Q->n;
            MT_TRY(seq_push(p, Q, GM_REF, (uint32_t)g));
        } else if (is_name_char(c)) {
            size_t b = p->pos;
            while (!at_end(p) && is_name_char(peek(p))) p->pos++;
            size_t id;
            MT_TRY(rule_find(p, p->s + b, p->pos - b, b, &id));
            last = (long)Q->n;
            MT_TRY(seq_push(p, Q, GM_REF, (uint32_t)id));
        } else if (c == '*' || c == '+' || c == '?' || c == '{') {
            if (last < 0) return perr_at(p, at, MT_EINVAL, "quantifier without an element before it");
            long mn = 0, mx = -1;
            p->pos++;
            if (c == '+') mn = 1;
            else if (c == '?') mx = 1;
            else if (c == '{') {
                skip_space(p, 0);
                MT_TRY(parse_int(p, &mn));
                skip_space(p, 0);
                if (peek(p) == ',') {
                    p->pos++;
                    skip_space(p, 0);
                    if (peek(p) != '}') { MT_TRY(parse_int(p, &mx)); skip_space(p, 0); }
                } else {
                    mx = mn;
                }
                if (peek(p) != '}') return perr_at(p, at, MT_EINVAL, "expected '}' closing {m,n}");
                p->pos++;
                if (mx >= 0 && mx < mn) return perr_at(p, at, MT_EINVAL, "{m,n} with n < m");
            }
            MT_TRY(repeat(p, rule, ai, (size_t)last, last_off, mn, mx));
            last = -1;
        } else {
            break;
        }
        skip_space(p, nested);
    }
#undef Q
    return MT_OK;
}

static int parse_alts(parser *p, size_t rule, int nested) {
    MT_TRY(parse_seq(p, rule, nested));
    for (;;) {
        if (peek(p) != '|') {
            if (nested) return MT_OK;
            size_t save = p->pos;              /* a continuation line that begins with '|' */
            skip_space(p, 1);
            if (peek(p) != '|') { p->pos = save; return MT_OK; }
        }
        p->pos++;
        skip_space(p, 1);
        MT_TRY(parse_seq(p, rule, nested));
    }
}

static int parse_all(parser *p) {
    skip_space(p, 1);
    while (!at_end(p)) {
        size_t at = p->pos;
        if (!is_name_char(peek(p))) return perr_at(p, at, MT_EINVAL, "expected a rule name");
        while (!at_end(p) && is_name_char(peek(p))) p->pos++;
        size_t id;
        MT_TRY(rule_find(p, p->s + at, p->pos - at, at, &id));
        if (p->rules[id].defined) {
            int l, c;
            line_col(p->s, p->n, p->rules[id].def_off, &l, &c);
            char msg[200];
            snprintf(msg, sizeof msg, "rule '%.64s' defined twice (first at line %d:%d)", p->rules[id].name, l, c);
            return perr_at(p, at, MT_EINVAL, msg);
        }
        p->rules[id].defined = 1;
        p->rules[id].def_off = at;
        p->cur_rule = id;
        skip_space(p, 0);
        if (p->pos + 3 > p->n || memcmp(p->s + p->pos, "::=", 3))
            return perr_at(p, p->pos, MT_EINVAL, "expected '::=' after the rule name");
        p->pos += 3;
        skip_space(p, 1);
        MT_TRY(parse_alts(p, id, 0));
        skip_space(p, 0);
        if (!at_end(p) && peek(p) != '\n' && peek(p) != '\r') {
            char msg[64];
            int c = peek(p);
            if (c >= 0x20 && c < 0x7F) snprintf(msg, sizeof msg, "unexpected '%c'", c);
            else snprintf(msg, sizeof msg, "unexpected byte 0x%02X", (unsigned)c);
            return perr_at(p, p->pos, MT_EINVAL, msg);
        }
        skip_space(p, 1);
    }
    return MT_OK;
}

/* ---------------- checks ---------------- */
/* left recursion: a rule reaching itself through leftmost nullable-prefixed references */
static int check_left(parser *p, const mt_grammar *g) {
    size_t nr = g->nrules;
    uint8_t *nullable = calloc(nr ? nr : 1, 1), *color = calloc(nr ? nr : 1, 1);
    uint32_t *stk = malloc((nr ? nr : 1) * sizeof *stk), *it = malloc((nr ? nr : 1) * 2 * sizeof *it);
    int rc = MT_OK;
    if (!nullable || !color || !stk || !it) { rc = oom(p); goto out; }
    for (int changed = 1; changed;) {
        changed = 0;
        for (size_t r = 0; r < nr; r++) {
            if (nullable[r]) continue;
            for (uint32_t a = 0; a < g->rules[r].nalt && !nullable[r]; a++) {
                const gm_elem *e = g->elems + g->alts[g->rules[r].alt_off + a];
                while (e->type == GM_REF && nullable[e->v]) e++;
                if (e->type == GM_END) { nullable[r] = 1; changed = 1; }
            }
        }
    }
    /* iterative DFS; it[2k] = alternative, it[2k+1] = element offset within it */
    for (size_t r0 = 0; r0 < nr && !rc; r0++) {
        if (color[r0]) continue;
        size_t sp = 0;
        stk[sp] = (uint32_t)r0; it[0] = 0; it[1] = 0; color[r0] = 1; sp = 1;
        while (sp && !rc) {
            uint32_t r = stk[sp - 1];
            uint32_t *ai = &it[2 * (sp - 1)], *ei = &it[2 * (sp - 1) + 1];
            if (*ai >= g->rules[r].nalt) { color[r] = 2; sp--; continue; }
            const gm_elem *e = g->elems + g->alts[g->rules[r].alt_off + *ai] + *ei;
            if (e->type != GM_REF) { (*ai)++; *ei = 0; continue; }
            if (nullable[e->v]) (*ei)++; else { (*ai)++; *ei = 0; }
            uint32_t s = e->v;
            if (color[s] == 1) {
                const prule *pr = &p->rules[s];
                char msg[240];
                if (pr->generated)
                    snprintf(msg, sizeof msg, "this group or repetition (in rule '%.64s') can recurse without "
                             "consuming input (left recursion, or a repeated part that can match \"\")", pr->name);
                else
                    snprintf(msg, sizeof msg, "rule '%.64s' is left-recursive (it can reach itself without "
                             "consuming input), which the matcher cannot run", pr->name);
                rc = perr_at(p, pr->def_off, MT_EINVAL, msg);
                break;
            }
            if (color[s] == 0) {
                color[s] = 1; stk[sp] = s; it[2 * sp] = 0; it[2 * sp + 1] = 0; sp++;
            }
        }
    }
out:
    free(nullable); free(color); free(stk); free(it);
    return rc;
}

static void parser_free(parser *p) {
    for (size_t i = 0; i < p->nrules; i++) {
        for (size_t a = 0; a < p->rules[i].nalts; a++) free(p->rules[i].alts[a].e);
        free(p->rules[i].alts);
        free(p->rules[i].name);
    }
    free(p->rules); free(p->ranges); free(p->classes); free(p->names);
}

void mt_grammar_free(mt_grammar *g) {
    if (!g) return;
    free(g->elems); free(g->ranges); free(g->classes); free(g->rules); free(g->alts);
    free(g);
}

size_t mt_grammar_nrules(const mt_grammar *g) { return g ? g->nrules : 0; }
size_t mt_grammar_nelems(const mt_grammar *g) { return g ? g->nelems : 0; }

int mt_grammar_parse(mt_grammar **out, const char *src, size_t n, const char *root, mt_err *err) {
    if (!out || (!src && n)) return mt_seterr(err, MT_EINVAL, "grammar: bad arguments");
    *out = NULL;
    if (n > MT_GRAMMAR_MAX_SOURCE) return mt_seterr(err, MT_ELIMIT, "grammar: text over 4 MiB");
    if (!root) root = "root";
    parser p = {.s = src ? src : "", .n = n, .err = err};
    mt_grammar *g = NULL;
    int rc = parse_all(&p);
    for (size_t i = 0; !rc && i < p.nrules; i++)
        if (!p.rules[i].defined) {
            char msg[160];
            snprintf(msg, sizeof msg, "undefined rule '%.64s'", p.rules[i].name);
            rc = perr_at(&p, p.rules[i].ref_off, MT_EINVAL, msg);
        }
    size_t rootid = 0;
    if (!rc) {
        size_t i = p.nrules, rl = strlen(root);
        for (size_t j = p.names ? name_hash(root, rl) & p.namemask : 0; p.names && p.names[j]; j = (j + 1) & p.namemask)
            if (!strcmp(p.rules[p.names[j] - 1].name, root)) { i = p.names[j] - 1; break; }
        if (i == p.nrules)
            rc = mt_seterr(err, MT_EINVAL, "grammar: line %d:1: no rule named '%.64s' (the start rule)",
                           1, root);
        rootid = i;
    }
    if (!rc) {
        g = calloc(1, sizeof *g);
        size_t ne = 0, na = 0;
        for (size_t i = 0; i < p.nrules; i++) {
            na += p.rules[i].nalts;
            for (size_t a = 0; a < p.rules[i].nalts; a++) ne += p.rules[i].alts[a].n + 1;
        }
        if (g) {
            g->elems = malloc((ne + 1) * sizeof *g->elems);
            g->alts = malloc((na ? na : 1) * sizeof *g->alts);
            g->rules = malloc((p.nrules ? p.nrules : 1) * sizeof *g->rules);
        }
        if (!g || !g->elems || !g->alts || !g->rules) rc = oom(&p);
        else {
            for (size_t i = 0; i < p.nrules; i++) {
                g->rules[i].alt_off = (uint32_t)g->nalts;
                g->rules[i].nalt = (uint32_t)p.rules[i].nalts;
                for (size_t a = 0; a < p.rules[i].nalts; a++) {
                    g->alts[g->nalts++] = (uint32_t)g->nelems;
                    if (p.rules[i].alts[a].n)
                        memcpy(g->elems + g->nelems, p.rules[i].alts[a].e, p.rules[i].alts[a].n * sizeof *g->elems);
                    g->nelems += p.rules[i].alts[a].n;
                    g->elems[g->nelems].type = GM_END; g->elems[g->nelems].v = 0;
                    g->nelems++;
                }
            }
            g->ctx = (uint32_t)g->nelems;
            g->elems[g->nelems].type = GM_CTX; g->elems[g->nelems].v = 0;
            g->nelems++;
            g->nrules = p.nrules;
            g->ranges = p.ranges; g->nranges = p.nranges; p.ranges = NULL;
            g->classes = p.classes; g->nclasses = p.nclasses; p.classes = NULL;
            g->root = (uint32_t)rootid;
            rc = check_left(&p, g);
        }
    }
    parser_free(&p);
    if (rc) { mt_grammar_free(g); return rc; }
    *out = g;
    return MT_OK;
}
