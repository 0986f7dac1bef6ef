/* jinja_parse.c - arena, string builder, lexer and parser for the Jinja2
 * subset used by chat templates.  Whitespace rules follow Jinja2 3.1 with
 * trim_blocks=True, lstrip_blocks=True and keep_trailing_newline=False. */
#include "text/jinja_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- arena ---------------- */
struct ja_blk {
    ja_blk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *ja_alloc(ja_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    ja_blk *b = a->head;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        if (a->limit && a->total + cap > a->limit) {
            mt_seterr(a->err, MT_ELIMIT, "template memory limit exceeded (%zu bytes)", a->limit);
            longjmp(*a->jb, 1);
        }
        b = malloc(sizeof *b + cap);
        if (!b) {
            mt_seterr(a->err, MT_ENOMEM, "out of memory");
            longjmp(*a->jb, 1);
        }
        b->used = 0;
        b->cap = cap;
        if (n > 65536 && a->head) { /* big block: keep current head for small allocations */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
        a->total += cap;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *ja_strndup(ja_arena *a, const char *s, size_t n) {
    char *p = ja_alloc(a, n + 1);
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

void ja_free_all(ja_arena *a) {
    ja_blk *b = a->head;
    while (b) {
        ja_blk *nx = b->next;
        free(b);
        b = nx;
    }
    a->head = NULL;
    a->total = 0;
}

/* ---------------- string builder ---------------- */
void jsb_init(jsb *b, ja_arena *a, size_t max) {
    memset(b, 0, sizeof *b);
    b->a = a;
    b->max = max;
    b->jb = a->jb;
    b->err = a->err;
}

static void jsb_grow(jsb *b, size_t need) {
    if (b->max && b->n + need > b->max) {
        mt_seterr(b->err, MT_ELIMIT, "template line %d: output limit exceeded (%zu bytes)", b->line, b->max);
        longjmp(*b->jb, 1);
    }
    size_t cap = b->cap ? b->cap * 2 : 64;
    while (cap < b->n + need + 1) cap *= 2;
    char *p = ja_alloc(b->a, cap);
    if (b->n) memcpy(p, b->p, b->n);
    b->p = p;
    b->cap = cap;
}

void jsb_put(jsb *b, const char *s, size_t n) {
    if (!n) return;
    if (b->n + n + 1 > b->cap || (b->max && b->n + n > b->max)) jsb_grow(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
void jsb_puts(jsb *b, const char *s) { jsb_put(b, s, strlen(s)); }
void jsb_putc(jsb *b, char c) { jsb_put(b, &c, 1); }
void jsb_printf(jsb *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof tmp) n = sizeof tmp - 1;
    jsb_put(b, tmp, (size_t)n);
}

/* ---------------- lexer ---------------- */
enum { T_EOF, T_DATA, T_VBEGIN, T_VEND, T_BBEGIN, T_BEND, T_NAME, T_STR, T_INT, T_FLOAT, T_OP };

typedef struct tok {
    int t, line;
    const char *p; /* DATA/NAME/STR/OP text (arena) */
    size_t n;
    long long i;
    double f;
} tok;

typedef struct P {
    ja_arena *a;
    mt_err *err;
    jmp_buf jb;
    tok *toks;
    size_t nt, ct;
    size_t pos; /* parser cursor */
    int depth;
} P;

static _Noreturn void perr(P *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static _Noreturn void perr(P *p, int line, const char *fmt, ...) {
    char m[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    mt_seterr(p->err, MT_EFORMAT, "template line %d: %s", line, m);
    longjmp(p->jb, 1);
}

static void addtok(P *p, int t, int line, const char *s, size_t n) {
    if (p->nt == p->ct) {
        size_t nc = p->ct ? p->ct * 2 : 256;
        tok *nt = ja_alloc(p->a, nc * sizeof *nt);
        if (p->nt) memcpy(nt, p->toks, p->nt * sizeof *nt);
        p->toks = nt;
        p->ct = nc;
    }
    tok *k = &p->toks[p->nt++];
    memset(k, 0, sizeof *k);
    k->t = t;
    k->line = line;
    k->p = s;
    k->n = n;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static int is_id0(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80; }
static int is_id(unsigned char c) { return is_id0(c) || (c >= '0' && c <= '9'); }

static int count_nl(const char *s, size_t n) {
    int k = 0;
    for (size_t i = 0; i < n; i++) k += s[i] == '\n';
    return k;
}

static void put_utf8(jsb *b, unsigned long cp) {
    char u[4];
    if (cp < 0x80) { u[0] = (char)cp; jsb_put(b, u, 1); }
    else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 63)); jsb_put(b, u, 2); }
    else if (cp < 0x10000) { u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 63)); u[2] = (char)(0x80 | (cp & 63)); jsb_put(b, u, 3); }
    else { u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 63)); u[2] = (char)(0x80 | ((cp >> 6) & 63)); u[3] = (char)(0x80 | (cp & 63)); jsb_put(b, u, 4); }
}

static int hexv(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decode a string literal body with Python unicode-escape rules. */
static void decode_str(P *p, int line, const char *s, size_t n, const char **out, size_t *on) {
    jsb b;
    jsb_init(&b, p->a, 0);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\\' || i + 1 >= n) { jsb_putc(&b, c); continue; }
        char e = s[++i];
        switch (e) {
        case '\n': break;
        case '\\': jsb_putc(&b, '\\'); break;
        case '\'': jsb_putc(&b, '\''); break;
        case '"': jsb_putc(&b, '"'); break;
        case 'a': jsb_putc(&b, '\a'); break;
        case 'b': jsb_putc(&b, '\b'); break;
        case 'f': jsb_putc(&b, '\f'); break;
        case 'n': jsb_putc(&b, '\n'); break;
        case 'r': jsb_putc(&b, '\r'); break;
        case 't': jsb_putc(&b, '\t'); break;
        case 'v': jsb_putc(&b, '\v'); break;
        case 'x': case 'u': case 'U': {
            int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            unsigned long cp = 0;
            for (int k = 0; k < nd; k++) {
                if (i + 1 >= n || hexv(s[i + 1]) < 0) perr(p, line, "truncated \\%c escape in string literal", e);
                cp = cp * 16 + (unsigned long)hexv(s[++i]);
            }
            if (cp > 0x10FFFF) perr(p, line, "illegal Unicode character in string literal");
            put_utf8(&b, cp);
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                unsigned long cp = (unsigned long)(e - '0');
                for (int k = 0; k < 2 && i + 1 < n && s[i + 1] >= '0' && s[i + 1] <= '7'; k++) cp = cp * 8 + (unsigned long)(s[++i] - '0');
                put_utf8(&b, cp);
            } else {
                jsb_putc(&b, '\\');
                jsb_putc(&b, e);
            }
        }
    }
    *out = b.p ? b.p : "";
    *on = b.n;
}

static const char *const OPS[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")",
                                  "{", "}", "<", ">", "=", ".", ":", "|", ",", ";", NULL};

/* Tokenize inside {{ }} or {% %} starting at *pos; returns after the end marker. */
static void lex_tag(P *p, const char *s, size_t n, size_t *pos, int *line, int isvar, int *line_starting) {
    size_t i = *pos;
    int depth = 0;
    int open_line = *line;
    for (;;) {
        while (i < n && is_ws(s[i])) { if (s[i] == '\n') (*line)++; i++; }
        if (i >= n) perr(p, open_line, "unexpected end of template, expected end of tag");
        if (depth == 0) {
            if (isvar) {
                if (s[i] == '-' && i + 2 < n && s[i + 1] == '}' && s[i + 2] == '}') {
                    addtok(p, T_VEND, *line, NULL, 0);
                    i += 3;
                    while (i < n && is_ws(s[i])) { if (s[i] == '\n') (*line)++; i++; }
                    *line_starting = i > 0 && s[i - 1] == '\n';
                    *pos = i;
                    return;
                }
                if (s[i] == '}' && i + 1 < n && s[i + 1] == '}') {
                    addtok(p, T_VEND, *line, NULL, 0);
                    *pos = i + 2;
                    *line_starting = 0;
                    return;
                }
            } else {
                int mod = 0;
                size_t j = i;
                if ((s[j] == '-' || s[j] == '+') && j + 2 < n && s[j + 1] == '%' && s[j + 2] == '}') mod = s[j++];
                if (s[j] == '%' && j + 1 < n && s[j + 1] == '}') {
                    addtok(p, T_BEND, *line, NULL, 0);
                    i = j + 2;
                    if (mod == '-') {
                        while (i < n && is_ws(s[i])) { if (s[i] == '\n') (*line)++; i++; }
                    } else if (mod == 0 && i < n && s[i] == '\n') {
                        (*line)++;
                        i++;
                    }
                    *line_starting = i > 0 && s[i - 1] == '\n';
                    *pos = i;
                    return;
                }
            }
        }
        char c = s[i];
        if (c >= '0' && c <= '9') {
            size_t j = i;
            while (j < n && ((s[j] >= '0' && s[j] <= '9') || (s[j] == '_' && j + 1 < n && s[j + 1] >= '0' && s[j + 1] <= '9'))) j++;
            int isf = 0;
            if (j + 1 < n && s[j] == '.' && s[j + 1] >= '0' && s[j + 1] <= '9' && !(i > 0 && s[i - 1] == '.')) {
                isf = 1;
                j++;
                while (j < n && ((s[j] >= '0' && s[j] <= '9') || (s[j] == '_' && j + 1 < n && s[j + 1] >= '0' && s[j + 1] <= '9'))) j++;
            }
            if (j < n && (s[j] == 'e' || s[j] == 'E') && !(i > 0 && s[i - 1] == '.')) {
                size_t k = j + 1;
                if (k < n && (s[k] == '+' || s[k] == '-')) k++;
                if (k < n && s[k] >= '0' && s[k] <= '9') {
                    isf = 1;
                    while (k < n && ((s[k] >= '0' && s[k] <= '9') || s[k] == '_')) k++;
                    j = k;
                }
            }
            char buf[64];
            size_t bn = 0;
            for (size_t k = i; k < j && bn < sizeof buf - 1; k++)
                if (s[k] != '_') buf[bn++] = s[k];
            buf[bn] = 0;
            if (isf) {
                addtok(p, T_FLOAT, *line, NULL, 0);
                p->toks[p->nt - 1].f = strtod(buf, NULL);
            } else {
                addtok(p, T_INT, *line, NULL, 0);
                char *e;
                unsigned long long v = strtoull(buf, &e, 10);
                (void)e;
                if (v > (unsigned long long)INT64_MAX || bn > 19) perr(p, *line, "integer literal too large");
                p->toks[p->nt - 1].i = (long long)v;
            }
            i = j;
            continue;
        }
        if (is_id0((unsigned char)c)) {
            size_t j = i;
            while (j < n && is_id((unsigned char)s[j])) j++;
            addtok(p, T_NAME, *line, s + i, j - i);
            i = j;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t j = i + 1;
            int l0 = *line;
            while (j < n && s[j] != c) {
                if (s[j] == '\\' && j + 1 < n) { if (s[j + 1] == '\n') (*line)++; j++; }
                if (s[j] == '\n') (*line)++;
                j++;
            }
            if (j >= n) perr(p, l0, "unterminated string literal");
            const char *d;
            size_t dn;
            decode_str(p, l0, s + i + 1, j - i - 1, &d, &dn);
            addtok(p, T_STR, l0, d, dn);
            i = j + 1;
            continue;
        }
        int found = 0;
        for (int k = 0; OPS[k]; k++) {
            size_t ol = strlen(OPS[k]);
            if (i + ol <= n && memcmp(s + i, OPS[k], ol) == 0) {
                if (OPS[k][0] == '(' || OPS[k][0] == '[' || OPS[k][0] == '{') depth++;
                if (OPS[k][0] == ')' || OPS[k][0] == ']' || OPS[k][0] == '}') {
                    if (depth == 0) perr(p, *line, "unexpected '%s'", OPS[k]);
                    depth--;
                }
                addtok(p, T_OP, *line, OPS[k], ol);
                i += ol;
                found = 1;
                break;
            }
        }
        if (!found) perr(p, *line, "unexpected char '%c'", c);
    }
}

static void lex(P *p, const char *src, size_t len) {
    /* newline normalization: \r\n, \r -> \n; drop one trailing newline */
    char *s = ja_alloc(p->a, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else s[n++] = src[i];
    }
    if (n && s[n - 1] == '\n') n--;
    s[n] = 0;
    int line = 1, line_starting = 1;
    size_t pos = 0;
    while (pos < n) {
        size_t k = pos;
        int kind = 0;
        while (k + 1 < n) {
            if (s[k] == '{' && (s[k + 1] == '{' || s[k + 1] == '%' || s[k + 1] == '#')) { kind = s[k + 1]; break; }
            k++;
        }
        if (!kind) k = n;
        size_t dend = k;
        char mod = (kind && k + 2 < n) ? s[k + 2] : 0;
        if (kind && mod == '-') {
            while (dend > pos && is_ws(s[dend - 1])) dend--;
        } else if (kind && mod != '+' && (kind == '%' || kind == '#')) {
            size_t l = dend;
            while (l > pos && s[l - 1] != '\n') l--;
            int ok = l > pos || line_starting;
            for (size_t q = l; ok && q < dend; q++)
                if (!(s[q] == ' ' || s[q] == '\t' || s[q] == '\f' || s[q] == '\v')) ok = 0;
            if (ok) dend = l;
        }
        if (dend > pos) addtok(p, T_DATA, line, s + pos, dend - pos);
        line += count_nl(s + pos, k - pos);
        if (!kind) break;
        size_t i = k + 2;
        if (mod == '-' || mod == '+') i++;
        if (kind == '#') {
            size_t j = i;
            int l0 = line;
            while (j + 1 < n && !(s[j] == '#' && s[j + 1] == '}')) j++;
            if (j + 1 >= n) perr(p, l0, "missing end of comment tag");
            char em = j > i ? s[j - 1] : 0;
            line += count_nl(s + i, j - i);
            i = j + 2;
            if (em == '-') {
                while (i < n && is_ws(s[i])) { if (s[i] == '\n') line++; i++; }
            } else if (em != '+' && i < n && s[i] == '\n') {
                line++;
                i++;
            }
            line_starting = s[i - 1] == '\n';
            pos = i;
            continue;
        }
        if (kind == '%') {
            /* raw block? */
            size_t j = i;
            while (j < n && is_ws(s[j])) j++;
            if (j + 3 <= n && memcmp(s + j, "raw", 3) == 0 && (j + 3 == n || !is_id((unsigned char)s[j + 3]))) {
                j += 3;
                while (j < n && is_ws(s[j])) j++;
                int m2 = 0;
                if (j < n && (s[j] == '-' || s[j] == '+')) m2 = s[j++];
                if (j + 1 < n && s[j] == '%' && s[j + 1] == '}') {
                    int l0 = line;
                    line += count_nl(s + k, j + 2 - k);
                    j += 2;
                    if (m2 == '-') while (j < n && is_ws(s[j])) { if (s[j] == '\n') line++; j++; }
                    /* find {% endraw %} */
                    size_t q = j;
                    for (;;) {
                        while (q + 1 < n && !(s[q] == '{' && s[q + 1] == '%')) q++;
                        if (q + 1 >= n) perr(p, l0, "missing end of raw directive");
                        size_t r = q + 2;
                        char em = 0;
                        if (r < n && (s[r] == '-' || s[r] == '+')) em = s[r++];
                        while (r < n && is_ws(s[r])) r++;
                        if (r + 6 <= n && memcmp(s + r, "endraw", 6) == 0) {
                            r += 6;
                            while (r < n && is_ws(s[r])) r++;
                            char em2 = 0;
                            if (r < n && (s[r] == '-' || s[r] == '+')) em2 = s[r++];
                            if (r + 1 < n && s[r] == '%' && s[r + 1] == '}') {
                                size_t cend = q;
                                if (em == '-') while (cend > j && is_ws(s[cend - 1])) cend--;
                                if (cend > j) addtok(p, T_DATA, line, s + j, cend - j);
                                line += count_nl(s + j, r + 2 - j);
                                r += 2;
                                if (em2 == '-') {
                                    while (r < n && is_ws(s[r])) { if (s[r] == '\n') line++; r++; }
                                } else if (em2 != '+' && r < n && s[r] == '\n') {
                                    line++;
                                    r++;
                                }
                                line_starting = s[r - 1] == '\n';
                                pos = r;
                                break;
                            }
                        }
                        q += 2;
                    }
                    continue;
                }
            }
        }
        addtok(p, kind == '{' ? T_VBEGIN : T_BBEGIN, line, NULL, 0);
        lex_tag(p, s, n, &i, &line, kind == '{', &line_starting);
        pos = i;
    }
    addtok(p, T_EOF, line, NULL, 0);
}

/* ---------------- parser ---------------- */
/* Jinja2 3.1's builtin filters and tests (+ transformers' tojson): an unknown one
 * outside an if/conditional expression is a compile-time error in Jinja. */
static const char *const KNOWN_FILTERS[] = {"abs", "attr", "batch", "capitalize", "center", "count", "d", "default",
    "dictsort", "e", "escape", "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent", "int",
    "items", "join", "last", "length", "list", "lower", "map", "max", "min", "pprint", "random", "reject", "rejectattr",
    "replace", "reverse", "round", "safe", "select", "selectattr", "slice", "sort", "string", "striptags", "sum",
    "title", "tojson", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap",
    "xmlattr", NULL};
static const char *const KNOWN_TESTS[] = {"!=", "<", "<=", "==", ">", ">=", "boolean", "callable", "defined",
    "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter", "float", "ge", "greaterthan", "gt", "in",
    "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne", "none", "number", "odd", "sameas",
    "sequence", "string", "test", "true", "undefined", "upper", NULL};
static int known(const char *const *l, const char *n) {
    for (int i = 0; l[i]; i++)
        if (!strcmp(l[i], n)) return 1;
    return 0;
}

static tok *cur(P *p) { return &p->toks[p->pos]; }
static tok *peekn(P *p, size_t k) { return p->pos + k < p->nt ? &p->toks[p->pos + k] : &p->toks[p->nt - 1]; }
static int is_op(tok *t, const char *op) { return t->t == T_OP && t->n == strlen(op) && memcmp(t->p, op, t->n) == 0; }
static int is_name(tok *t, const char *nm) { return t->t == T_NAME && t->n == strlen(nm) && memcmp(t->p, nm, t->n) == 0; }
static void advance(P *p) { if (p->pos + 1 < p->nt) p->pos++; }

static const char *tokdesc(tok *t) {
    switch (t->t) {
    case T_EOF: return "end of template";
    case T_DATA: return "template data";
    case T_VBEGIN: return "begin of print statement";
    case T_VEND: return "end of print statement";
    case T_BBEGIN: return "begin of statement block";
    case T_BEND: return "end of statement block";
    case T_NAME: return "name";
    case T_STR: return "string";
    case T_INT: return "integer";
    case T_FLOAT: return "float";
    default: return "operator";
    }
}

static void expect_op(P *p, const char *op) {
    if (!is_op(cur(p), op)) perr(p, cur(p)->line, "expected '%s', got %s", op, tokdesc(cur(p)));
    advance(p);
}
static const char *expect_name(P *p) {
    tok *t = cur(p);
    if (t->t != T_NAME) perr(p, t->line, "expected name, got %s", tokdesc(t));
    advance(p);
    return ja_strndup(p->a, t->p, t->n);
}
static void expect_bend(P *p) {
    if (cur(p)->t != T_BEND) perr(p, cur(p)->line, "expected end of statement block, got %s", tokdesc(cur(p)));
    advance(p);
}

static jnode *mk(P *p, int kind, int line) {
    jnode *n = ja_alloc(p->a, sizeof *n);
    n->kind = kind;
    n->line = line;
    return n;
}

typedef struct nlist { jnode **v; int n, cap; } nlist;
static void nl_push(P *p, nlist *l, jnode *x) {
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 4;
        jnode **nv = ja_alloc(p->a, (size_t)nc * sizeof *nv);
        if (l->n) memcpy(nv, l->v, (size_t)l->n * sizeof *nv);
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = x;
}

static jv *mkval(P *p, jv_type t) {
    jv *v = ja_alloc(p->a, sizeof *v);
    v->t = t;
    return v;
}

/* Record n's nesting depth from its children; iteratively built chains
 * (a+b+c..., a.b.c..., x|f|g...) are bounded here, recursion by enter(). */
static jnode *nest(P *p, jnode *n) {
    int d = 0;
    const jnode *k[4] = {n->a, n->b, n->c, n->d};
    for (int i = 0; i < 4; i++)
        if (k[i] && k[i]->nd > d) d = k[i]->nd;
    for (int i = 0; i < n->nv; i++)
        if (n->v[i] && n->v[i]->nd > d) d = n->v[i]->nd;
    for (int i = 0; i < n->nw; i++)
        if (n->w[i] && n->w[i]->nd > d) d = n->w[i]->nd;
    n->nd = d + 1;
    if (n->nd > 2 * JX_MAX_PARSE_DEPTH) {
        mt_seterr(p->err, MT_ELIMIT, "template line %d: expression nesting too deep", n->line);
        longjmp(p->jb, 1);
    }
    return n;
}

static jnode *p_expr(P *p);
static jnode *p_or(P *p);
static jnode *p_unary(P *p, int with_filter);
static jnode *p_tuple(P *p, int with_cond, int explicit_parens);

static void enter(P *p) {
    if (++p->depth > JX_MAX_PARSE_DEPTH) {
        mt_seterr(p->err, MT_ELIMIT, "template line %d: expression nesting too deep", cur(p)->line);
        longjmp(p->jb, 1);
    }
}

/* call arguments after '(' already consumed: fills args (positional) and kwargs */
static void p_args(P *p, jnode *call) {
    nlist a = {0}, k = {0};
    while (!is_op(cur(p), ")")) {
        if (a.n || k.n) {
            expect_op(p, ",");
            if (is_op(cur(p), ")")) break;
        }
        int line = cur(p)->line;
        if (is_op(cur(p), "*") || is_op(cur(p), "**")) {
            int kw = is_op(cur(p), "**");
            advance(p);
            jnode *s = mk(p, kw ? N_STARKW : N_STARARG, line);
            s->a = p_expr(p);
            nl_push(p, kw ? &k : &a, s);
        } else if (cur(p)->t == T_NAME && is_op(peekn(p, 1), "=")) {
            jnode *kwn = mk(p, N_KWARG, line);
            kwn->name = expect_name(p);
            advance(p);
            kwn->a = p_expr(p);
            nl_push(p, &k, kwn);
        } else {
            if (k.n) perr(p, line, "positional argument follows keyword argument");
            nl_push(p, &a, p_expr(p));
        }
    }
    advance(p);
    call->v = a.v;
    call->nv = a.n;
    call->w = k.v;
    call->nw = k.n;
}

static jnode *p_primary(P *p) {
    tok *t = cur(p);
    int line = t->line;
    jnode *n;
    switch (t->t) {
    case T_NAME: {
        advance(p);
        n = mk(p, N_CONST, line);
        if (is_name(t, "true") || is_name(t, "True")) { n->val = mkval(p, JV_BOOL); n->val->u.b = 1; }
        else if (is_name(t, "false") || is_name(t, "False")) { n->val = mkval(p, JV_BOOL); }
        else if (is_name(t, "none") || is_name(t, "None")) { n->val = mkval(p, JV_NONE); }
        else { n->kind = N_NAME; n->name = ja_strndup(p->a, t->p, t->n); }
        return n;
    }
    case T_STR: {
        jsb b;
        jsb_init(&b, p->a, 0);
        while (cur(p)->t == T_STR) { jsb_put(&b, cur(p)->p, cur(p)->n); advance(p); }
        n = mk(p, N_CONST, line);
        n->val = mkval(p, JV_STR);
        n->val->u.s.p = b.p ? b.p : "";
        n->val->u.s.n = b.n;
        return n;
    }
    case T_INT:
        advance(p);
        n = mk(p, N_CONST, line);
        n->val = mkval(p, JV_INT);
        n->val->u.i = t->i;
        return n;
    case T_FLOAT:
        advance(p);
        n = mk(p, N_CONST, line);
        n->val = mkval(p, JV_FLOAT);
        n->val->u.f = t->f;
        return n;
    case T_OP:
        if (is_op(t, "(")) {
            advance(p);
            n = p_tuple(p, 1, 1);
            expect_op(p, ")");
            return n;
        }
        if (is_op(t, "[")) {
            advance(p);
            nlist l = {0};
            while (!is_op(cur(p), "]")) {
                if (l.n) { expect_op(p, ","); if (is_op(cur(p), "]")) break; }
                nl_push(p, &l, p_expr(p));
            }
            advance(p);
            n = mk(p, N_LIST, line);
            n->v = l.v;
            n->nv = l.n;
            return n;
        }
        if (is_op(t, "{")) {
            advance(p);
            nlist k = {0}, v = {0};
            while (!is_op(cur(p), "}")) {
                if (k.n) { expect_op(p, ","); if (is_op(cur(p), "}")) break; }
                nl_push(p, &k, p_expr(p));
                expect_op(p, ":");
                nl_push(p, &v, p_expr(p));
            }
            advance(p);
            n = mk(p, N_DICT, line);
            n->v = k.v;
            n->nv = k.n;
            n->w = v.v;
            n->nw = v.n;
            return n;
        }
        break;
    default: break;
    }
    perr(p, line, "unexpected %s", tokdesc(t));
}

static jnode *p_subscript(P *p) {
    int line = cur(p)->line;
    jnode *a = NULL, *b = NULL, *c = NULL;
    if (!is_op(cur(p), ":")) {
        a = p_expr(p);
        if (!is_op(cur(p), ":")) return a;
    }
    advance(p); /* ':' */
    if (!is_op(cur(p), "]") && !is_op(cur(p), ":") && !is_op(cur(p), ",")) b = p_expr(p);
    if (is_op(cur(p), ":")) {
        advance(p);
        if (!is_op(cur(p), "]") && !is_op(cur(p), ",")) c = p_expr(p);
    }
    jnode *s = mk(p, N_SLICE, line);
    s->b = a;
    s->c = b;
    s->d = c;
    return s;
}

static jnode *p_postfix(P *p, jnode *n) {
    for (;;) {
        tok *t = cur(p);
        if (is_op(t, ".")) {
            advance(p);
            tok *a = cur(p);
            jnode *x = mk(p, N_ATTR, a->line);
            x->a = n;
            if (a->t == T_NAME) x->name = ja_strndup(p->a, a->p, a->n);
            else if (a->t == T_INT) {
                x->kind = N_ITEM;
                x->b = mk(p, N_CONST, a->line);
                x->b->val = mkval(p, JV_INT);
                x->b->val->u.i = a->i;
            } else perr(p, a->line, "expected name or number after '.'");
            advance(p);
            n = nest(p, x);
        } else if (is_op(t, "[")) {
            advance(p);
            jnode *x = mk(p, N_ITEM, t->line);
            x->a = n;
            nlist l = {0};
            while (!is_op(cur(p), "]")) {
                if (l.n) { expect_op(p, ","); if (is_op(cur(p), "]")) break; }
                nl_push(p, &l, p_subscript(p));
            }
            advance(p);
            if (l.n == 0) perr(p, t->line, "expected subscript expression");
            jnode *idx = l.v[0];
            if (l.n > 1) {
                for (int k = 0; k < l.n; k++)
                    if (l.v[k]->kind == N_SLICE) perr(p, t->line, "slices inside a tuple subscript are not supported");
                idx = mk(p, N_TUPLE, t->line);
                idx->v = l.v;
                idx->nv = l.n;
            }
            if (idx->kind == N_SLICE) { idx->a = n; n = nest(p, idx); }
            else { x->b = idx; n = nest(p, x); }
        } else if (is_op(t, "(")) {
            advance(p);
            jnode *x = mk(p, N_CALL, t->line);
            x->a = n;
            p_args(p, x);
            n = nest(p, x);
        } else return n;
    }
}

static const char *dotted_name(P *p) {
    tok *t = cur(p);
    const char *nm = expect_name(p);
    while (is_op(cur(p), ".") && peekn(p, 1)->t == T_NAME) {
        advance(p);
        tok *u = cur(p);
        advance(p);
        size_t l1 = strlen(nm);
        char *c = ja_alloc(p->a, l1 + u->n + 2);
        memcpy(c, nm, l1);
        c[l1] = '.';
        memcpy(c + l1 + 1, u->p, u->n);
        nm = c;
    }
    (void)t;
    return nm;
}

static jnode *p_filter_expr(P *p, jnode *n) {
    for (;;) {
        tok *t = cur(p);
        if (is_op(t, "|")) {
            advance(p);
            jnode *f = mk(p, N_FILTER, cur(p)->line);
            f->name = dotted_name(p);
            f->a = n;
            if (is_op(cur(p), "(")) { advance(p); p_args(p, f); }
            n = nest(p, f);
        } else if (is_name(t, "is")) {
            advance(p);
            jnode *x = mk(p, N_TEST, t->line);
            if (is_name(cur(p), "not")) { advance(p); x->op = 1; }
            x->name = dotted_name(p);
            x->a = n;
            tok *u = cur(p);
            if (is_op(u, "(")) { advance(p); p_args(p, x); }
            else if ((u->t == T_NAME || u->t == T_STR || u->t == T_INT || u->t == T_FLOAT || is_op(u, "[") || is_op(u, "{")) &&
                     !is_name(u, "else") && !is_name(u, "or") && !is_name(u, "and")) {
                if (is_name(u, "is")) perr(p, u->line, "you cannot chain multiple tests with is");
                jnode *arg = p_postfix(p, p_primary(p));
                x->v = ja_alloc(p->a, sizeof *x->v);
                x->v[0] = arg;
                x->nv = 1;
            }
            n = nest(p, x);
        } else if (is_op(t, "(")) {
            advance(p);
            jnode *x = mk(p, N_CALL, t->line);
            x->a = n;
            p_args(p, x);
            n = nest(p, x);
        } else return n;
    }
}

static jnode *p_unary(P *p, int with_filter) {
    enter(p);
    tok *t = cur(p);
    jnode *n;
    if (is_op(t, "-") || is_op(t, "+")) {
        advance(p);
        n = mk(p, is_op(t, "-") ? N_NEG : N_POS, t->line);
        n->a = p_unary(p, 0);
    } else n = p_primary(p);
    n = p_postfix(p, n);
    if (with_filter) n = p_filter_expr(p, n);
    p->depth--;
    return n;
}

static jnode *bin(P *p, int op, jnode *a, jnode *b, int line) {
    jnode *n = mk(p, N_BIN, line);
    n->op = op;
    n->a = a;
    n->b = b;
    return nest(p, n);
}

static jnode *p_pow(P *p) {
    jnode *l = p_unary(p, 1);
    while (is_op(cur(p), "**")) { int line = cur(p)->line; advance(p); l = bin(p, OP_POW, l, p_unary(p, 1), line); }
    return l;
}
static jnode *p_math2(P *p) {
    jnode *l = p_pow(p);
    for (;;) {
        tok *t = cur(p);
        int op = is_op(t, "*") ? OP_MUL : is_op(t, "/") ? OP_DIV : is_op(t, "//") ? OP_FDIV : is_op(t, "%") ? OP_MOD : 0;
        if (!op) return l;
        advance(p);
        l = bin(p, op, l, p_pow(p), t->line);
    }
}
static jnode *p_concat(P *p) {
    jnode *l = p_math2(p);
    if (!is_op(cur(p), "~")) return l;
    nlist v = {0};
    nl_push(p, &v, l);
    int line = cur(p)->line;
    while (is_op(cur(p), "~")) { advance(p); nl_push(p, &v, p_math2(p)); }
    jnode *n = mk(p, N_CONCAT, line);
    n->v = v.v;
    n->nv = v.n;
    return nest(p, n);
}
static jnode *p_math1(P *p) {
    jnode *l = p_concat(p);
    for (;;) {
        tok *t = cur(p);
        int op = is_op(t, "+") ? OP_ADD : is_op(t, "-") ? OP_SUB : 0;
        if (!op) return l;
        advance(p);
        l = bin(p, op, l, p_concat(p), t->line);
    }
}
static jnode *p_compare(P *p) {
    jnode *l = p_math1(p);
    jnode *res = NULL;
    for (;;) {
        tok *t = cur(p);
        int op = is_op(t, "==") ? OP_EQ : is_op(t, "!=") ? OP_NE : is_op(t, "<") ? OP_LT : is_op(t, "<=") ? OP_LE
               : is_op(t, ">") ? OP_GT : is_op(t, ">=") ? OP_GE : is_name(t, "in") ? OP_IN : 0;
        if (!op && is_name(t, "not") && is_name(peekn(p, 1), "in")) { op = OP_NOTIN; advance(p); }
        if (!op) break;
        advance(p);
        jnode *r = p_math1(p);
        jnode *c = bin(p, op, l, r, t->line);
        if (!res) res = c;
        else { jnode *a = mk(p, N_AND, t->line); a->a = res; a->b = c; res = nest(p, a); }
        l = r;
    }
    return res ? res : l;
}
static jnode *p_not(P *p) {
    if (is_name(cur(p), "not")) {
        enter(p);
        jnode *n = mk(p, N_NOT, cur(p)->line);
        advance(p);
        n->a = p_not(p);
        p->depth--;
        return n;
    }
    return p_compare(p);
}
static jnode *p_and(P *p) {
    jnode *l = p_not(p);
    while (is_name(cur(p), "and")) { jnode *n = mk(p, N_AND, cur(p)->line); advance(p); n->a = l; n->b = p_not(p); l = nest(p, n); }
    return l;
}
static jnode *p_or(P *p) {
    jnode *l = p_and(p);
    while (is_name(cur(p), "or")) { jnode *n = mk(p, N_OR, cur(p)->line); advance(p); n->a = l; n->b = p_and(p); l = nest(p, n); }
    return l;
}
static jnode *p_condexpr(P *p, int with_cond) {
    enter(p);
    jnode *e = p_or(p);
    while (with_cond && is_name(cur(p), "if")) {
        jnode *n = mk(p, N_COND, cur(p)->line);
        advance(p);
        n->b = e;
        n->a = p_or(p);
        if (is_name(cur(p), "else")) { advance(p); n->c = p_condexpr(p, 1); }
        e = nest(p, n);
    }
    p->depth--;
    return e;
}
static jnode *p_expr(P *p) { return p_condexpr(p, 1); }

static int tuple_end(P *p) {
    tok *t = cur(p);
    return t->t == T_VEND || t->t == T_BEND || t->t == T_EOF || is_op(t, ")") || is_name(t, "recursive") ||
           is_op(t, "=") || is_name(t, "in");
}

static jnode *p_tuple(P *p, int with_cond, int explicit_parens) {
    int line = cur(p)->line;
    nlist l = {0};
    int is_tuple = 0;
    for (;;) {
        if (l.n) expect_op(p, ",");
        if (tuple_end(p) || (!with_cond && is_name(cur(p), "if"))) break;
        nl_push(p, &l, p_condexpr(p, with_cond));
        if (is_op(cur(p), ",")) is_tuple = 1;
        else break;
    }
    if (!is_tuple) {
        if (l.n) return l.v[0];
        if (!explicit_parens) perr(p, line, "expected an expression, got %s", tokdesc(cur(p)));
    }
    jnode *n = mk(p, N_TUPLE, line);
    n->v = l.v;
    n->nv = l.n;
    return n;
}

/* assignment target: name, ns.attr (if allow_attr), or tuple of names */
static jnode *p_target(P *p, int allow_attr) {
    int line = cur(p)->line;
    nlist l = {0};
    int paren = 0;
    if (is_op(cur(p), "(")) { paren = 1; advance(p); }
    int is_tuple = 0;
    for (;;) {
        jnode *n = mk(p, N_NAME, cur(p)->line);
        n->name = expect_name(p);
        if (allow_attr && !paren && l.n == 0 && is_op(cur(p), ".")) {
            advance(p);
            jnode *x = mk(p, N_ATTR, line);
            x->a = n;
            x->name = expect_name(p);
            return x;
        }
        nl_push(p, &l, n);
        if (is_op(cur(p), ",")) {
            is_tuple = 1;
            advance(p);
            if (cur(p)->t != T_NAME) break;
        } else break;
    }
    if (paren) expect_op(p, ")");
    if (!is_tuple) return l.v[0];
    jnode *t = mk(p, N_TUPLE, line);
    t->v = l.v;
    t->nv = l.n;
    return t;
}

static jnode *p_body(P *p, const char *const *ends, const char **which);

/* parse a filter chain for {% filter %} / {% set x | f %}: returns N_FILTER chain with a=NULL at the bottom */
static jnode *p_filter_chain(P *p) {
    jnode *n = NULL;
    do {
        jnode *f = mk(p, N_FILTER, cur(p)->line);
        f->name = dotted_name(p);
        f->a = n;
        if (is_op(cur(p), "(")) { advance(p); p_args(p, f); }
        n = nest(p, f);
    } while (is_op(cur(p), "|") && (advance(p), 1));
    return n;
}

static void p_params(P *p, jnode *m) {
    nlist names = {0}, defs = {0};
    expect_op(p, "(");
    while (!is_op(cur(p), ")")) {
        if (names.n) expect_op(p, ",");
        if (is_op(cur(p), ")")) break;
        jnode *a = mk(p, N_NAME, cur(p)->line);
        a->name = expect_name(p);
        jnode *d = NULL;
        if (is_op(cur(p), "=")) { advance(p); d = p_expr(p); }
        else if (defs.n && defs.v[defs.n - 1]) perr(p, a->line, "non-default argument follows default argument");
        nl_push(p, &names, a);
        nl_push(p, &defs, d);
    }
    advance(p);
    m->v = names.v;
    m->nv = names.n;
    m->w = defs.v;
    m->nw = defs.n;
}

static jnode *p_stmt(P *p) {
    tok *t = cur(p);
    int line = t->line;
    if (t->t != T_NAME) perr(p, line, "tag name expected");
    enter(p);
    jnode *n = NULL;
    const char *w;
    if (is_name(t, "if")) {
        advance(p);
        n = mk(p, N_IF, line);
        nlist conds = {0}, bodies = {0};
        nl_push(p, &conds, p_tuple(p, 1, 0));
        expect_bend(p);
        static const char *const e1[] = {"elif", "else", "endif", NULL};
        for (;;) {
            nl_push(p, &bodies, p_body(p, e1, &w));
            if (!strcmp(w, "elif")) { nl_push(p, &conds, p_tuple(p, 1, 0)); expect_bend(p); continue; }
            if (!strcmp(w, "else")) {
                expect_bend(p);
                static const char *const e2[] = {"endif", NULL};
                n->a = p_body(p, e2, &w);
            }
            break;
        }
        expect_bend(p);
        n->v = conds.v;
        n->nv = conds.n;
        n->w = bodies.v;
        n->nw = bodies.n;
    } else if (is_name(t, "for")) {
        advance(p);
        n = mk(p, N_FOR, line);
        n->a = p_target(p, 0);
        if (!is_name(cur(p), "in")) perr(p, cur(p)->line, "expected 'in'");
        advance(p);
        n->b = p_tuple(p, 0, 0);
        if (is_name(cur(p), "if")) { advance(p); n->c = p_expr(p); }
        if (is_name(cur(p), "recursive")) perr(p, cur(p)->line, "recursive loops are not supported");
        expect_bend(p);
        static const char *const e1[] = {"endfor", "else", NULL};
        jnode *body = p_body(p, e1, &w);
        n->v = ja_alloc(p->a, sizeof *n->v);
        n->v[0] = body;
        n->nv = 1;
        if (!strcmp(w, "else")) {
            expect_bend(p);
            static const char *const e2[] = {"endfor", NULL};
            n->d = p_body(p, e2, &w);
        }
        expect_bend(p);
    } else if (is_name(t, "set")) {
        advance(p);
        jnode *tg = p_target(p, 1);
        if (is_op(cur(p), "=")) {
            advance(p);
            n = mk(p, N_SET, line);
            n->a = tg;
            n->b = p_tuple(p, 1, 0);
            expect_bend(p);
        } else {
            if (tg->kind != N_NAME) perr(p, line, "expected '='");
            n = mk(p, N_SETBLOCK, line);
            n->a = tg;
            if (is_op(cur(p), "|")) { advance(p); n->c = p_filter_chain(p); }
            expect_bend(p);
            static const char *const e1[] = {"endset", NULL};
            n->b = p_body(p, e1, &w);
            expect_bend(p);
        }
    } else if (is_name(t, "macro")) {
        advance(p);
        n = mk(p, N_MACRO, line);
        n->name = expect_name(p);
        p_params(p, n);
        expect_bend(p);
        static const char *const e1[] = {"endmacro", NULL};
        n->a = p_body(p, e1, &w);
        if (cur(p)->t == T_NAME) advance(p);
        expect_bend(p);
    } else if (is_name(t, "call")) {
        advance(p);
        n = mk(p, N_CALLBLOCK, line);
        jnode *m = mk(p, N_MACRO, line);
        m->name = "caller";
        if (is_op(cur(p), "(")) p_params(p, m);
        n->b = p_expr(p);
        if (n->b->kind != N_CALL) perr(p, line, "expected call");
        expect_bend(p);
        static const char *const e1[] = {"endcall", NULL};
        m->a = p_body(p, e1, &w);
        n->a = m;
        expect_bend(p);
    } else if (is_name(t, "filter")) {
        advance(p);
        n = mk(p, N_FILTERBLOCK, line);
        n->c = p_filter_chain(p);
        expect_bend(p);
        static const char *const e1[] = {"endfilter", NULL};
        n->a = p_body(p, e1, &w);
        expect_bend(p);
    } else if (is_name(t, "break") || is_name(t, "continue")) {
        n = mk(p, is_name(t, "break") ? N_BREAK : N_CONTINUE, line);
        advance(p);
        expect_bend(p);
    } else if (is_name(t, "with")) {
        advance(p);
        n = mk(p, N_WITH, line);
        nlist tg = {0}, vals = {0};
        while (cur(p)->t != T_BEND) {
            if (tg.n) expect_op(p, ",");
            nl_push(p, &tg, p_target(p, 0));
            expect_op(p, "=");
            nl_push(p, &vals, p_expr(p));
        }
        expect_bend(p);
        n->v = tg.v;
        n->nv = tg.n;
        n->w = vals.v;
        n->nw = vals.n;
        static const char *const e1[] = {"endwith", NULL};
        n->a = p_body(p, e1, &w);
        expect_bend(p);
    } else if (is_name(t, "generation")) {
        advance(p);
        expect_bend(p);
        n = mk(p, N_GEN, line);
        static const char *const e1[] = {"endgeneration", NULL};
        n->a = p_body(p, e1, &w);
        expect_bend(p);
    } else {
        perr(p, line, "encountered unknown tag '%.*s'", (int)(t->n > 60 ? 60 : t->n), t->p);
    }
    p->depth--;
    return n;
}

static jnode *p_body(P *p, const char *const *ends, const char **which) {
    nlist l = {0};
    int line = cur(p)->line;
    enter(p);
    for (;;) {
        tok *t = cur(p);
        if (t->t == T_EOF) {
            if (ends) perr(p, t->line, "unexpected end of template, expected '%s'", ends[0]);
            break;
        }
        if (t->t == T_DATA) {
            jnode *x = mk(p, N_TEXT, t->line);
            x->text = t->p;
            x->tlen = t->n;
            nl_push(p, &l, x);
            advance(p);
        } else if (t->t == T_VBEGIN) {
            advance(p);
            jnode *x = mk(p, N_OUT, t->line);
            x->a = p_tuple(p, 1, 0);
            if (cur(p)->t != T_VEND) perr(p, cur(p)->line, "expected end of print statement, got %s", tokdesc(cur(p)));
            advance(p);
            nl_push(p, &l, x);
        } else if (t->t == T_BBEGIN) {
            tok *nm = peekn(p, 1);
            if (nm->t == T_NAME && ends) {
                for (int k = 0; ends[k]; k++)
                    if (is_name(nm, ends[k])) {
                        *which = ends[k];
                        advance(p);
                        advance(p);
                        goto done;
                    }
            }
            if (nm->t == T_NAME && (is_name(nm, "endif") || is_name(nm, "endfor") || is_name(nm, "else") ||
                                    is_name(nm, "elif") || is_name(nm, "endset") || is_name(nm, "endmacro") ||
                                    is_name(nm, "endcall") || is_name(nm, "endfilter") || is_name(nm, "endwith") ||
                                    is_name(nm, "endgeneration")))
                perr(p, nm->line, "unexpected '%.*s'", (int)nm->n, nm->p);
            advance(p);
            nl_push(p, &l, p_stmt(p));
        } else perr(p, t->line, "unexpected %s", tokdesc(t));
    }
done:
    p->depth--;
    jnode *b = mk(p, N_BODY, line);
    b->v = l.v;
    b->nv = l.n;
    return b;
}

/* Compile-time checks Jinja makes: unknown filters/tests outside if-statements and
 * conditional expressions, break/continue outside a for body (macros reset it). */
static void validate_(P *p, const jnode *n, int soft, int in_loop, int depth);

#define validate(p, n, soft, in_loop) validate_(p, n, soft, in_loop, depth + 1)
static void validate_(P *p, const jnode *n, int soft, int in_loop, int depth) {
    if (!n) return;
    if (depth > JX_MAX_RECURSION) {
        mt_seterr(p->err, MT_ELIMIT, "template line %d: template nesting too deep", n->line);
        longjmp(p->jb, 1);
    }
    int cs = soft, cl = in_loop; /* for the lists v/w */
    switch (n->kind) {
    case N_FILTER:
        if (!soft && !known(KNOWN_FILTERS, n->name)) perr(p, n->line, "No filter named '%s'.", n->name);
        break;
    case N_TEST:
        if (!soft && !known(KNOWN_TESTS, n->name)) perr(p, n->line, "No test named '%s'.", n->name);
        break;
    case N_BREAK: case N_CONTINUE:
        if (!in_loop) perr(p, n->line, "'%s' outside loop", n->kind == N_BREAK ? "break" : "continue");
        return;
    case N_IF:
        for (int i = 0; i < n->nv; i++) validate(p, n->v[i], 1, in_loop);
        for (int i = 0; i < n->nw; i++) validate(p, n->w[i], 1, in_loop);
        validate(p, n->a, 1, in_loop);
        return;
    case N_COND:
        validate(p, n->a, 1, in_loop);
        validate(p, n->b, 1, in_loop);
        validate(p, n->c, 1, in_loop);
        return;
    case N_FOR:
        validate(p, n->a, 0, in_loop);
        validate(p, n->b, soft, in_loop);
        validate(p, n->c, 0, 0);
        for (int i = 0; i < n->nv; i++) validate(p, n->v[i], 0, 1);
        validate(p, n->d, 0, in_loop);
        return;
    case N_MACRO:
        for (int i = 0; i < n->nw; i++) validate(p, n->w[i], 0, 0);
        validate(p, n->a, 0, 0);
        return;
    case N_CALLBLOCK:
        validate(p, n->a, 0, 0);
        validate(p, n->b, soft, in_loop);
        return;
    case N_FILTERBLOCK: case N_WITH: case N_SETBLOCK:
        cs = 0;
        soft = 0;
        break;
    default: break;
    }
    validate(p, n->a, soft, in_loop);
    validate(p, n->b, soft, in_loop);
    validate(p, n->c, soft, in_loop);
    validate(p, n->d, soft, in_loop);
    for (int i = 0; i < n->nv; i++) validate(p, n->v[i], cs, cl);
    for (int i = 0; i < n->nw; i++) validate(p, n->w[i], cs, cl);
}

jnode *jx_parse(ja_arena *a, const char *src, size_t len, mt_err *err) {
    P *p = ja_alloc(a, sizeof *p);
    p->a = a;
    p->err = err;
    jmp_buf *saved = a->jb;
    a->jb = &p->jb;
    if (setjmp(p->jb)) {
        a->jb = saved;
        return NULL;
    }
    lex(p, src, len);
    jnode *root = p_body(p, NULL, NULL);
    validate_(p, root, 0, 0, 0);
    a->jb = saved;
    return root;
}
