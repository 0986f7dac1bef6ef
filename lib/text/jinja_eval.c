/* jinja_eval.c - the evaluator: Python-like values (str/repr, truthiness,
 * comparison, arithmetic), statements, filters, tests, string/dict methods
 * and the globals transformers gives chat templates.  Every render counts
 * steps and depth and caps output and memory. */
#include "text/jinja.h"
#include "text/jinja_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <utf8proc.h>

struct mt_jinja_tmpl {
    ja_arena a;
    jnode *root;
};

typedef struct jframe {
    struct jframe *parent;
    const char **names;
    jv **vals;
    size_t n, cap;
} jframe;

typedef struct S {
    ja_arena a;
    jmp_buf jb;
    mt_err *err;
    jsb *out;
    size_t steps, max_steps, max_output;
    int depth, max_depth, rdepth;
    long long now;
    int line;
    int brk; /* 1 = break, 2 = continue */
    jv *none, *t, *f;
} S;

typedef struct args {
    jv **pos;
    size_t np;
    const char **kn;
    jv **kv;
    size_t nk;
} args;

static _Noreturn void rerr(S *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static _Noreturn void rerr(S *s, int code, const char *fmt, ...) {
    char m[440];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    mt_seterr(s->err, code, "template line %d: %s", s->line, m);
    longjmp(s->jb, 1);
}
#define TERR(...) rerr(s, MT_EINVAL, __VA_ARGS__)

static void step(S *s, size_t k) {
    s->steps += k;
    if (s->steps > s->max_steps) rerr(s, MT_ELIMIT, "step limit exceeded (%zu)", s->max_steps);
}

/* ---------------- value constructors ---------------- */
static jv *nv(S *s, jv_type t) {
    jv *v = ja_alloc(&s->a, sizeof *v);
    v->t = t;
    return v;
}
static jv *v_int(S *s, long long i) { jv *v = nv(s, JV_INT); v->u.i = i; return v; }
static jv *v_float(S *s, double f) { jv *v = nv(s, JV_FLOAT); v->u.f = f; return v; }
static jv *v_bool(S *s, int b) { return b ? s->t : s->f; }
static jv *v_strn(S *s, const char *p, size_t n) {
    jv *v = nv(s, JV_STR);
    v->u.s.p = ja_strndup(&s->a, p, n);
    v->u.s.n = n;
    return v;
}
static jv *v_str_nocopy(S *s, const char *p, size_t n) { jv *v = nv(s, JV_STR); v->u.s.p = p ? p : ""; v->u.s.n = n; return v; }
static jv *v_cstr(S *s, const char *p) { return v_strn(s, p, strlen(p)); }
static jv *v_sb(S *s, jsb *b) { return v_str_nocopy(s, b->p, b->n); }
static jv *v_undef(S *s, const char *name) { jv *v = nv(s, JV_UNDEF); v->u.s.p = name; return v; }
static jv *v_list(S *s, size_t cap) {
    jv *v = nv(s, JV_LIST);
    if (cap) v->u.l.v = ja_alloc(&s->a, cap * sizeof(jv *));
    v->u.l.cap = cap;
    return v;
}
static void l_push(S *s, jv *l, jv *x) {
    if (l->u.l.n == l->u.l.cap) {
        size_t nc = l->u.l.cap ? l->u.l.cap * 2 : 4;
        jv **nvv = ja_alloc(&s->a, nc * sizeof *nvv);
        if (l->u.l.n) memcpy(nvv, l->u.l.v, l->u.l.n * sizeof *nvv);
        l->u.l.v = nvv;
        l->u.l.cap = nc;
    }
    l->u.l.v[l->u.l.n++] = x;
}
static jv *v_dict(S *s) { return nv(s, JV_DICT); }
static jv *v_tuple2(S *s, jv *a, jv *b) {
    jv *t = v_list(s, 2);
    t->t = JV_TUPLE;
    t->u.l.v[0] = a;
    t->u.l.v[1] = b;
    t->u.l.n = 2;
    return t;
}
static jv *v_func(S *s, int id, jv *self, const char *name) {
    jv *v = nv(s, JV_FUNC);
    v->u.fn.id = id;
    v->u.fn.self = self;
    v->u.fn.name = name;
    return v;
}

static int veq(jv *a, jv *b);
static jv *d_get(jv *d, jv *k) {
    for (size_t i = 0; i < d->u.d.n; i++)
        if (veq(d->u.d.k[i], k)) return d->u.d.v[i];
    return NULL;
}
static jv *d_gets(jv *d, const char *k, size_t n) {
    for (size_t i = 0; i < d->u.d.n; i++) {
        jv *x = d->u.d.k[i];
        if (x->t == JV_STR && x->u.s.n == n && memcmp(x->u.s.p, k, n) == 0) return d->u.d.v[i];
    }
    return NULL;
}
static void d_set(S *s, jv *d, jv *k, jv *v) {
    for (size_t i = 0; i < d->u.d.n; i++)
        if (veq(d->u.d.k[i], k)) { d->u.d.v[i] = v; return; }
    if (d->u.d.n == d->u.d.cap) {
        size_t nc = d->u.d.cap ? d->u.d.cap * 2 : 4;
        jv **nk = ja_alloc(&s->a, nc * sizeof *nk), **nvv = ja_alloc(&s->a, nc * sizeof *nvv);
        if (d->u.d.n) {
            memcpy(nk, d->u.d.k, d->u.d.n * sizeof *nk);
            memcpy(nvv, d->u.d.v, d->u.d.n * sizeof *nvv);
        }
        d->u.d.k = nk;
        d->u.d.v = nvv;
        d->u.d.cap = nc;
    }
    d->u.d.k[d->u.d.n] = k;
    d->u.d.v[d->u.d.n++] = v;
}

/* ---------------- JSON -> value ---------------- */
static jv *from_json(S *s, json_t *j, int depth) {
    if (depth > 200) rerr(s, MT_ELIMIT, "context nested too deeply");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        jv *d = v_dict(s);
        const char *k;
        json_t *x;
        json_object_foreach(j, k, x) d_set(s, d, v_cstr(s, k), from_json(s, x, depth + 1));
        return d;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        jv *l = v_list(s, n);
        for (size_t i = 0; i < n; i++) l->u.l.v[i] = from_json(s, json_array_get(j, i), depth + 1);
        l->u.l.n = n;
        return l;
    }
    case JSON_STRING: return v_strn(s, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return v_int(s, json_integer_value(j));
    case JSON_REAL: return v_float(s, json_real_value(j));
    case JSON_TRUE: return s->t;
    case JSON_FALSE: return s->f;
    default: return s->none;
    }
}

/* ---------------- UTF-8 helpers ---------------- */
static int32_t u8next(const char *p, size_t n, size_t *i) {
    const unsigned char *s = (const unsigned char *)p;
    unsigned char c = s[*i];
    if (c < 0x80) { (*i)++; return c; }
    int len = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    if (c >= 0xF8) len = 0;
    if (len && *i + (size_t)len <= n) {
        int32_t cp = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
        int ok = 1;
        for (int k = 1; k < len; k++) {
            if ((s[*i + k] & 0xC0) != 0x80) { ok = 0; break; }
            cp = (cp << 6) | (s[*i + k] & 0x3F);
        }
        if (ok) { *i += (size_t)len; return cp; }
    }
    (*i)++;
    return 0xDC00 + c; /* lone byte, surrogate-escaped like Python */
}
static void u8put(jsb *b, int32_t cp) {
    char u[4];
    if (cp >= 0xDC80 && cp <= 0xDCFF) { u[0] = (char)(cp - 0xDC00); jsb_put(b, u, 1); return; }
    if (cp < 0x80) { u[0] = (char)cp; jsb_put(b, u, 1); }
    else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 63)); jsb_put(b, u, 2); }
    else if (cp < 0x10000) { u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 63)); u[2] = (char)(0x80 | (cp & 63)); jsb_put(b, u, 3); }
    else { u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 63)); u[2] = (char)(0x80 | ((cp >> 6) & 63)); u[3] = (char)(0x80 | (cp & 63)); jsb_put(b, u, 4); }
}
static size_t u8len(const char *p, size_t n) {
    size_t i = 0, k = 0;
    while (i < n) { u8next(p, n, &i); k++; }
    return k;
}
/* byte offsets of each codepoint (n+1 entries) */
static size_t *u8offs(S *s, const char *p, size_t n, size_t *cnt) {
    size_t c = u8len(p, n);
    size_t *o = ja_alloc(&s->a, (c + 1) * sizeof *o);
    size_t i = 0, k = 0;
    while (i < n) { o[k++] = i; u8next(p, n, &i); }
    o[k] = n;
    *cnt = c;
    return o;
}
static int u_isspace(int32_t c) {
    if (c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0) return 1;
    if (c < 0x100 || c >= 0xDC80) return 0;
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}
static int u_isprint(int32_t c) {
    if (c == ' ') return 1;
    if (c < 0x20 || c == 0x7F) return 0;
    if (c < 0x7F) return 1;
    if (c >= 0xD800 && c <= 0xDFFF) return 0;
    utf8proc_category_t k = utf8proc_category(c);
    return !(k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CS ||
             k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CN || k == UTF8PROC_CATEGORY_ZS ||
             k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP);
}
static int32_t u_upper(int32_t c) { return (c >= 0xD800 && c <= 0xDFFF) ? c : utf8proc_toupper(c); }
static int32_t u_lower(int32_t c) { return (c >= 0xD800 && c <= 0xDFFF) ? c : utf8proc_tolower(c); }
static int u_isalpha(int32_t c) {
    if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (c >= 0xD800 && c <= 0xDFFF) return 0;
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}
static int u_isdigit(int32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    if (c >= 0xD800 && c <= 0xDFFF) return 0;
    return utf8proc_category(c) == UTF8PROC_CATEGORY_ND;
}
static int u_iscased_upper(int32_t c) { return u_lower(c) != c; }
static int u_iscased_lower(int32_t c) { return u_upper(c) != c; }

/* ---------------- str / repr ---------------- */
static void fmt_float(double x, char *out, size_t cap) {
    if (isnan(x)) { snprintf(out, cap, "nan"); return; }
    if (isinf(x)) { snprintf(out, cap, x < 0 ? "-inf" : "inf"); return; }
    char e[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, x);
        if (strtod(e, NULL) == x) break;
    }
    /* e = [-]d[.ddd]e[+-]XX */
    char digits[32];
    int nd = 0, neg = 0;
    const char *q = e;
    if (*q == '-') { neg = 1; q++; }
    while (*q && *q != 'e') { if (*q != '.') digits[nd++] = *q; q++; }
    int ex = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    char *o = out;
    size_t left = cap;
#define EMIT(...) do { int k_ = snprintf(o, left, __VA_ARGS__); if (k_ < 0 || (size_t)k_ >= left) return; o += k_; left -= (size_t)k_; } while (0)
    if (neg) EMIT("-");
    if (ex < -4 || ex >= 16) {
        EMIT("%c", digits[0]);
        if (nd > 1) EMIT(".%s", digits + 1);
        EMIT("e%c%02d", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
    } else if (ex < 0) {
        EMIT("0.");
        for (int i = 0; i < -ex - 1; i++) EMIT("0");
        EMIT("%s", digits);
    } else {
        for (int i = 0; i <= ex; i++) EMIT("%c", i < nd ? digits[i] : '0');
        EMIT(".");
        if (nd > ex + 1) EMIT("%s", digits + ex + 1);
        else EMIT("0");
    }
#undef EMIT
}

static void repr(S *s, jv *v, jsb *b, int depth);
static void str_of(S *s, jv *v, jsb *b) {
    switch (v->t) {
    case JV_UNDEF: return;
    case JV_STR: jsb_put(b, v->u.s.p, v->u.s.n); return;
    default: repr(s, v, b, 0);
    }
}
static void repr_str(jsb *b, const char *p, size_t n) {
    int has_sq = memchr(p, '\'', n) != NULL, has_dq = memchr(p, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jsb_putc(b, q);
    size_t i = 0;
    while (i < n) {
        size_t st = i;
        int32_t c = u8next(p, n, &i);
        if (c == q || c == '\\') { jsb_putc(b, '\\'); jsb_putc(b, (char)c); }
        else if (c == '\n') jsb_puts(b, "\\n");
        else if (c == '\r') jsb_puts(b, "\\r");
        else if (c == '\t') jsb_puts(b, "\\t");
        else if (c >= 0xDC80 && c <= 0xDCFF) jsb_printf(b, "\\udc%02x", c - 0xDC00);
        else if (!u_isprint(c)) {
            if (c < 0x100) jsb_printf(b, "\\x%02x", c);
            else if (c < 0x10000) jsb_printf(b, "\\u%04x", c);
            else jsb_printf(b, "\\U%08x", c);
        } else jsb_put(b, p + st, i - st);
    }
    jsb_putc(b, q);
}
static void repr(S *s, jv *v, jsb *b, int depth) {
    if (depth > 200) rerr(s, MT_ELIMIT, "value nested too deeply");
    char tmp[64];
    switch (v->t) {
    case JV_UNDEF: jsb_puts(b, "Undefined"); return; /* repr(Undefined); str() of it is empty */
    case JV_NONE: jsb_puts(b, "None"); return;
    case JV_BOOL: jsb_puts(b, v->u.b ? "True" : "False"); return;
    case JV_INT: jsb_printf(b, "%lld", v->u.i); return;
    case JV_FLOAT: fmt_float(v->u.f, tmp, sizeof tmp); jsb_puts(b, tmp); return;
    case JV_STR: repr_str(b, v->u.s.p, v->u.s.n); return;
    case JV_LIST: case JV_TUPLE:
        if (v->u.l.view == 4) { jsb_puts(b, "<generator object>"); return; }
        if (v->u.l.view) jsb_puts(b, v->u.l.view == 1 ? "dict_items(" : v->u.l.view == 2 ? "dict_keys(" : "dict_values(");
        jsb_putc(b, v->t == JV_LIST ? '[' : '(');
        for (size_t i = 0; i < v->u.l.n; i++) {
            if (i) jsb_puts(b, ", ");
            repr(s, v->u.l.v[i], b, depth + 1);
        }
        if (v->t == JV_TUPLE && v->u.l.n == 1) jsb_putc(b, ',');
        jsb_putc(b, v->t == JV_LIST ? ']' : ')');
        if (v->u.l.view) jsb_putc(b, ')');
        return;
    case JV_DICT: case JV_NS:
        if (v->t == JV_NS) jsb_puts(b, "<Namespace ");
        jsb_putc(b, '{');
        for (size_t i = 0; i < v->u.d.n; i++) {
            if (i) jsb_puts(b, ", ");
            repr(s, v->u.d.k[i], b, depth + 1);
            jsb_puts(b, ": ");
            repr(s, v->u.d.v[i], b, depth + 1);
        }
        jsb_putc(b, '}');
        if (v->t == JV_NS) jsb_putc(b, '>');
        return;
    case JV_MACRO: jsb_printf(b, "<Macro '%s'>", v->u.m.def->name ? v->u.m.def->name : "caller"); return;
    case JV_FUNC: jsb_printf(b, "<built-in method %s>", v->u.fn.name ? v->u.fn.name : "?"); return;
    case JV_LOOP: jsb_puts(b, "<LoopContext>"); return;
    }
}
static jv *to_strv(S *s, jv *v) {
    if (v->t == JV_STR) return v;
    jsb b;
    jsb_init(&b, &s->a, 0);
    str_of(s, v, &b);
    return v_sb(s, &b);
}

static const char *tname(jv *v) {
    switch (v->t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return "list";
    case JV_TUPLE: return "tuple";
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_MACRO: return "Macro";
    case JV_FUNC: return "builtin_function_or_method";
    case JV_LOOP: return "LoopContext";
    }
    return "?";
}

static _Noreturn void undef_err(S *s, jv *u) {
    if (u->u.s.p && u->u.s.n == 1) TERR("%s", u->u.s.p);
    if (u->u.s.p) TERR("'%s' is undefined", u->u.s.p);
    TERR("value is undefined");
}

/* ---------------- truth / equality / ordering ---------------- */
static int truthy(jv *v) {
    if ((v->t == JV_LIST) && v->u.l.view == 4) return 1; /* generator objects are always true */
    switch (v->t) {
    case JV_UNDEF: case JV_NONE: return 0;
    case JV_BOOL: return v->u.b;
    case JV_INT: return v->u.i != 0;
    case JV_FLOAT: return v->u.f != 0.0;
    case JV_STR: return v->u.s.n != 0;
    case JV_LIST: case JV_TUPLE: return v->u.l.n != 0;
    case JV_DICT: return v->u.d.n != 0;
    default: return 1;
    }
}
static int isnum(jv *v) { return v->t == JV_INT || v->t == JV_FLOAT || v->t == JV_BOOL; }
static double numf(jv *v) { return v->t == JV_FLOAT ? v->u.f : v->t == JV_INT ? (double)v->u.i : (double)v->u.b; }
static long long numi(jv *v) { return v->t == JV_INT ? v->u.i : v->u.b; }

static int veq_(jv *a, jv *b, int depth);
static int veq(jv *a, jv *b) { return veq_(a, b, 0); }
/* Deeper than this, values compare unequal (Python would hit its recursion limit). */
static int veq_(jv *a, jv *b, int depth) {
    if (depth > 500) return 0;
    if (isnum(a) && isnum(b)) {
        if (a->t == JV_FLOAT || b->t == JV_FLOAT) return numf(a) == numf(b);
        return numi(a) == numi(b);
    }
    if (a->t != b->t) return 0;
    if (a->t == JV_LIST && (a->u.l.view == 4 || b->u.l.view == 4)) return a == b;
    switch (a->t) {
    case JV_UNDEF: case JV_NONE: return 1;
    case JV_STR: return a->u.s.n == b->u.s.n && memcmp(a->u.s.p, b->u.s.p, a->u.s.n) == 0;
    case JV_LIST: case JV_TUPLE:
        if (a->u.l.n != b->u.l.n) return 0;
        for (size_t i = 0; i < a->u.l.n; i++)
            if (!veq_(a->u.l.v[i], b->u.l.v[i], depth + 1)) return 0;
        return 1;
    case JV_DICT:
        if (a->u.d.n != b->u.d.n) return 0;
        for (size_t i = 0; i < a->u.d.n; i++) {
            jv *o = d_get(b, a->u.d.k[i]);
            if (!o || !veq_(a->u.d.v[i], o, depth + 1)) return 0;
        }
        return 1;
    default: return a == b;
    }
}

static int vcmp_(S *s, jv *a, jv *b, int depth);
static int vcmp(S *s, jv *a, jv *b) { return vcmp_(s, a, b, 0); }
static int vcmp_(S *s, jv *a, jv *b, int depth) {
    if (depth > 500) rerr(s, MT_ELIMIT, "maximum recursion depth exceeded in comparison");
    if (isnum(a) && isnum(b)) {
        if (a->t == JV_FLOAT || b->t == JV_FLOAT) {
            double x = numf(a), y = numf(b);
            return x < y ? -1 : x > y ? 1 : 0;
        }
        long long x = numi(a), y = numi(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a->t == JV_STR && b->t == JV_STR) {
        size_t n = a->u.s.n < b->u.s.n ? a->u.s.n : b->u.s.n;
        int c = memcmp(a->u.s.p, b->u.s.p, n);
        if (c) return c < 0 ? -1 : 1;
        return a->u.s.n < b->u.s.n ? -1 : a->u.s.n > b->u.s.n ? 1 : 0;
    }
    if (((a->t == JV_LIST && b->t == JV_LIST) || (a->t == JV_TUPLE && b->t == JV_TUPLE)) && a->u.l.view != 4 &&
        b->u.l.view != 4) {
        size_t n = a->u.l.n < b->u.l.n ? a->u.l.n : b->u.l.n;
        for (size_t i = 0; i < n; i++) {
            if (veq(a->u.l.v[i], b->u.l.v[i])) continue;
            return vcmp_(s, a->u.l.v[i], b->u.l.v[i], depth + 1);
        }
        return a->u.l.n < b->u.l.n ? -1 : a->u.l.n > b->u.l.n ? 1 : 0;
    }
    if (a->t == JV_UNDEF) undef_err(s, a);
    if (b->t == JV_UNDEF) undef_err(s, b);
    TERR("'<' not supported between instances of '%s' and '%s'", tname(a), tname(b));
}

/* ---------------- frames ---------------- */
static jframe *fr_new(S *s, jframe *parent) {
    jframe *f = ja_alloc(&s->a, sizeof *f);
    f->parent = parent;
    return f;
}
static void fr_set(S *s, jframe *f, const char *name, jv *v) {
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) { f->vals[i] = v; return; }
    if (f->n == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 8;
        const char **nn = ja_alloc(&s->a, nc * sizeof *nn);
        jv **nvv = ja_alloc(&s->a, nc * sizeof *nvv);
        if (f->n) { memcpy(nn, f->names, f->n * sizeof *nn); memcpy(nvv, f->vals, f->n * sizeof *nvv); }
        f->names = nn;
        f->vals = nvv;
        f->cap = nc;
    }
    f->names[f->n] = name;
    f->vals[f->n++] = v;
}
static jv *fr_get(jframe *f, const char *name) {
    for (; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (!strcmp(f->names[i], name)) return f->vals[i];
    return NULL;
}

/* ---------------- builtin ids ---------------- */
enum { F_RANGE = 1, F_NAMESPACE, F_DICT, F_RAISE, F_STRFTIME, F_METHOD, F_UNSAFE, F_CYCLE };

/* ---------------- attribute / item access ---------------- */
static const char *const STR_METHODS[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith",
    "replace", "upper", "lower", "title", "capitalize", "find", "rfind", "index", "rindex", "count", "join", "splitlines",
    "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower", "isnumeric", "isdecimal", "format", "center",
    "ljust", "rjust", "zfill", "partition", "rpartition", "removeprefix", "removesuffix", "swapcase", "casefold",
    "istitle", "expandtabs", NULL};
static const char *const DICT_METHODS[] = {"get", "items", "keys", "values", "copy", NULL};
static const char *const DICT_UNSAFE[] = {"pop", "popitem", "setdefault", "update", "clear", "fromkeys", NULL};
static const char *const LIST_METHODS[] = {"index", "count", "copy", NULL};
static const char *const LIST_UNSAFE[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear", NULL};

static const char *in_list(const char *const *l, const char *name) {
    for (int i = 0; l[i]; i++)
        if (!strcmp(l[i], name)) return l[i];
    return NULL;
}

static jv *loop_attr(S *s, jv *lp, const char *name) {
    size_t i = lp->u.lp.idx, n = lp->u.lp.n;
    if (!strcmp(name, "index")) return v_int(s, (long long)i + 1);
    if (!strcmp(name, "index0")) return v_int(s, (long long)i);
    if (!strcmp(name, "revindex")) return v_int(s, (long long)(n - i));
    if (!strcmp(name, "revindex0")) return v_int(s, (long long)(n - i - 1));
    if (!strcmp(name, "first")) return v_bool(s, i == 0);
    if (!strcmp(name, "last")) return v_bool(s, i + 1 == n);
    if (!strcmp(name, "length")) return v_int(s, (long long)n);
    if (!strcmp(name, "depth")) return v_int(s, 1);
    if (!strcmp(name, "depth0")) return v_int(s, 0);
    if (!strcmp(name, "previtem")) return i > 0 ? lp->u.lp.items[i - 1] : v_undef(s, "previtem");
    if (!strcmp(name, "nextitem")) return i + 1 < n ? lp->u.lp.items[i + 1] : v_undef(s, "nextitem");
    if (!strcmp(name, "cycle")) return v_func(s, F_CYCLE, lp, "cycle");
    return v_undef(s, NULL);
}

static jv *get_attr(S *s, jv *o, const char *name) {
    const char *m;
    switch (o->t) {
    case JV_UNDEF: undef_err(s, o);
    case JV_DICT: {
        if ((m = in_list(DICT_METHODS, name))) return v_func(s, F_METHOD, o, m);
        if ((m = in_list(DICT_UNSAFE, name))) return v_func(s, F_UNSAFE, o, m);
        jv *x = d_gets(o, name, strlen(name));
        return x ? x : v_undef(s, NULL);
    }
    case JV_NS: {
        jv *x = d_gets(o, name, strlen(name));
        return x ? x : v_undef(s, NULL);
    }
    case JV_STR:
        if ((m = in_list(STR_METHODS, name))) return v_func(s, F_METHOD, o, m);
        return v_undef(s, NULL);
    case JV_LIST: case JV_TUPLE:
        if ((m = in_list(LIST_METHODS, name))) return v_func(s, F_METHOD, o, m);
        if (o->t == JV_LIST && (m = in_list(LIST_UNSAFE, name))) return v_func(s, F_UNSAFE, o, m);
        return v_undef(s, NULL);
    case JV_LOOP: return loop_attr(s, o, name);
    default: return v_undef(s, NULL);
    }
}

static jv *get_item(S *s, jv *o, jv *k) {
    if (o->t == JV_LIST && o->u.l.view == 4) return v_undef(s, NULL); /* generators are not subscriptable */
    switch (o->t) {
    case JV_UNDEF: undef_err(s, o);
    case JV_DICT: {
        jv *x = d_get(o, k);
        if (x) return x;
        break;
    }
    case JV_LIST: case JV_TUPLE: case JV_STR:
        if (k->t == JV_INT || k->t == JV_BOOL) {
            long long i = numi(k);
            if (o->t == JV_STR) {
                size_t cnt;
                size_t *off = u8offs(s, o->u.s.p, o->u.s.n, &cnt);
                if (i < 0) i += (long long)cnt;
                if (i < 0 || i >= (long long)cnt) return v_undef(s, NULL);
                return v_strn(s, o->u.s.p + off[i], off[i + 1] - off[i]);
            }
            if (i < 0) i += (long long)o->u.l.n;
            if (i < 0 || i >= (long long)o->u.l.n) return v_undef(s, NULL);
            return o->u.l.v[i];
        }
        break;
    default: break;
    }
    if (k->t == JV_STR) return get_attr(s, o, ja_strndup(&s->a, k->u.s.p, k->u.s.n));
    return v_undef(s, NULL);
}

static long long clampi(long long v, long long lo, long long hi) { return v < lo ? lo : v > hi ? hi : v; }

static jv *do_slice(S *s, jv *o, jv *a, jv *b, jv *c) {
    long long step = 1;
    if (c && c->t != JV_NONE) {
        if (c->t != JV_INT && c->t != JV_BOOL) TERR("slice indices must be integers or None");
        step = numi(c);
        if (step == 0) TERR("slice step cannot be zero");
    }
    size_t *off = NULL, cnt;
    if (o->t == JV_STR) off = u8offs(s, o->u.s.p, o->u.s.n, &cnt);
    else if (o->t == JV_LIST || o->t == JV_TUPLE) cnt = o->u.l.n;
    else if (o->t == JV_UNDEF) undef_err(s, o);
    else TERR("'%s' object is not subscriptable", tname(o));
    long long n = (long long)cnt, start, stop;
    if (a && a->t != JV_NONE) {
        if (a->t != JV_INT && a->t != JV_BOOL) TERR("slice indices must be integers or None");
        start = numi(a);
        if (start < 0) start += n;
        start = step > 0 ? clampi(start, 0, n) : clampi(start, -1, n - 1);
    } else start = step > 0 ? 0 : n - 1;
    if (b && b->t != JV_NONE) {
        if (b->t != JV_INT && b->t != JV_BOOL) TERR("slice indices must be integers or None");
        stop = numi(b);
        if (stop < 0) stop += n;
        stop = step > 0 ? clampi(stop, 0, n) : clampi(stop, -1, n - 1);
    } else stop = step > 0 ? n : -1;
    if (o->t == JV_STR) {
        jsb sb;
        jsb_init(&sb, &s->a, 0);
        for (long long i = start; step > 0 ? i < stop : i > stop; i += step) jsb_put(&sb, o->u.s.p + off[i], off[i + 1] - off[i]);
        return v_sb(s, &sb);
    }
    jv *r = v_list(s, 0);
    r->t = o->t;
    for (long long i = start; step > 0 ? i < stop : i > stop; i += step) l_push(s, r, o->u.l.v[i]);
    return r;
}

/* items for iteration */
static jv *iter_list(S *s, jv *v) {
    switch (v->t) {
    case JV_LIST: case JV_TUPLE:
        if (v->u.l.view == 4) { /* a generator: yields once, raises its deferred error when consumed */
            if (v->u.l.lazy_err) TERR("%s", v->u.l.lazy_err);
            jv *l = v_list(s, 0);
            if (v->u.l.cap != (size_t)-1) { l->u.l.v = v->u.l.v; l->u.l.n = v->u.l.n; l->u.l.cap = v->u.l.n; }
            v->u.l.cap = (size_t)-1; /* consumed */
            return l;
        }
        return v;
    case JV_UNDEF: return v_list(s, 0);
    case JV_DICT: {
        jv *l = v_list(s, v->u.d.n);
        for (size_t i = 0; i < v->u.d.n; i++) l->u.l.v[i] = v->u.d.k[i];
        l->u.l.n = v->u.d.n;
        return l;
    }
    case JV_STR: {
        jv *l = v_list(s, 0);
        size_t i = 0;
        while (i < v->u.s.n) {
            size_t st = i;
            u8next(v->u.s.p, v->u.s.n, &i);
            l_push(s, l, v_strn(s, v->u.s.p + st, i - st));
        }
        return l;
    }
    default: TERR("'%s' object is not iterable", tname(v));
    }
}

static long long vlen(S *s, jv *v) {
    if (v->t == JV_LIST && v->u.l.view == 4) TERR("object of type 'generator' has no len()");
    switch (v->t) {
    case JV_STR: return (long long)u8len(v->u.s.p, v->u.s.n);
    case JV_LIST: case JV_TUPLE: return (long long)v->u.l.n;
    case JV_DICT: return (long long)v->u.d.n;
    case JV_UNDEF: return 0;
    default: TERR("object of type '%s' has no len()", tname(v));
    }
}

static int contains(S *s, jv *hay, jv *x) {
    switch (hay->t) {
    case JV_STR:
        if (x->t != JV_STR) TERR("'in <string>' requires string as left operand, not %s", tname(x));
        if (x->u.s.n == 0) return 1;
        return memmem(hay->u.s.p, hay->u.s.n, x->u.s.p, x->u.s.n) != NULL;
    case JV_LIST: case JV_TUPLE:
        if (hay->u.l.view == 4) hay = iter_list(s, hay);
        for (size_t i = 0; i < hay->u.l.n; i++)
            if (veq(hay->u.l.v[i], x)) return 1;
        return 0;
    case JV_DICT:
        if (x->t == JV_LIST || x->t == JV_DICT) TERR("unhashable type: '%s'", tname(x));
        return d_get(hay, x) != NULL;
    case JV_UNDEF: return 0;
    default: TERR("argument of type '%s' is not iterable", tname(hay));
    }
}

/* ---------------- arithmetic ---------------- */
static jv *arith(S *s, int op, jv *a, jv *b) {
    if (op == OP_MOD && a->t == JV_STR) {
        /* printf-style formatting: %s %d %r %% only */
        jv *vals = (b->t == JV_TUPLE) ? b : NULL;
        size_t vi = 0;
        jsb sb;
        jsb_init(&sb, &s->a, s->max_output);
        for (size_t i = 0; i < a->u.s.n; i++) {
            char c = a->u.s.p[i];
            if (c != '%') { jsb_putc(&sb, c); continue; }
            if (++i >= a->u.s.n) TERR("incomplete format");
            char f = a->u.s.p[i];
            if (f == '%') { jsb_putc(&sb, '%'); continue; }
            jv *x = vals ? (vi < vals->u.l.n ? vals->u.l.v[vi++] : NULL) : (vi++ == 0 ? b : NULL);
            if (!x) TERR("not enough arguments for format string");
            if (f == 's') str_of(s, x, &sb);
            else if (f == 'r') repr(s, x, &sb, 0);
            else if (f == 'd' || f == 'i') {
                if (!isnum(x)) TERR("%%d format: a real number is required, not %s", tname(x));
                jsb_printf(&sb, "%lld", x->t == JV_FLOAT ? (long long)x->u.f : numi(x));
            } else TERR("unsupported format character '%c'", f);
        }
        /* a mapping-like argument (dict, list, Undefined: anything with __getitem__) is never 'unused' */
        int maplike = b->t == JV_DICT || b->t == JV_LIST || b->t == JV_UNDEF;
        if (!maplike && (vals ? vi < vals->u.l.n : vi == 0)) TERR("not all arguments converted during string formatting");
        return v_sb(s, &sb);
    }
    if (a->t == JV_UNDEF) undef_err(s, a);
    if (b->t == JV_UNDEF) undef_err(s, b);
    if (isnum(a) && isnum(b)) {
        int fl = a->t == JV_FLOAT || b->t == JV_FLOAT;
        long long x = numi(a), y = numi(b), r;
        double fx = numf(a), fy = numf(b);
        switch (op) {
        case OP_ADD:
            if (fl) return v_float(s, fx + fy);
            if (__builtin_add_overflow(x, y, &r)) TERR("integer overflow");
            return v_int(s, r);
        case OP_SUB:
            if (fl) return v_float(s, fx - fy);
            if (__builtin_sub_overflow(x, y, &r)) TERR("integer overflow");
            return v_int(s, r);
        case OP_MUL:
            if (fl) return v_float(s, fx * fy);
            if (__builtin_mul_overflow(x, y, &r)) TERR("integer overflow");
            return v_int(s, r);
        case OP_DIV:
            if (fy == 0) TERR("division by zero");
            return v_float(s, fx / fy);
        case OP_FDIV:
            if (fl) {
                if (fy == 0) TERR("float floor division by zero");
                return v_float(s, floor(fx / fy));
            }
            if (y == 0) TERR("integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) TERR("integer overflow");
            r = x / y;
            if ((x % y != 0) && ((x < 0) != (y < 0))) r--;
            return v_int(s, r);
        case OP_MOD:
            if (fl) {
                if (fy == 0) TERR("float modulo");
                double m = fmod(fx, fy);
                if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
                return v_float(s, m);
            }
            if (y == 0) TERR("integer division or modulo by zero");
            if (y == -1) return v_int(s, 0);
            r = x % y;
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
            return v_int(s, r);
        case OP_POW:
            if (fl || y < 0) return v_float(s, pow(fx, fy));
            r = 1;
            for (long long i = 0; i < y; i++) {
                if (__builtin_mul_overflow(r, x, &r)) TERR("integer overflow");
                if (r == 0 || r == 1) break;
                if (r == -1) { r = (y - i - 1) % 2 ? -r : r; break; }
            }
            return v_int(s, r);
        }
    }
    if (op == OP_ADD) {
        if (a->t == JV_STR && b->t == JV_STR) {
            jsb sb;
            jsb_init(&sb, &s->a, s->max_output);
            sb.line = s->line;
            jsb_put(&sb, a->u.s.p, a->u.s.n);
            jsb_put(&sb, b->u.s.p, b->u.s.n);
            return v_sb(s, &sb);
        }
        if ((a->t == JV_LIST || a->t == JV_TUPLE) && a->t == b->t) {
            jv *r = v_list(s, a->u.l.n + b->u.l.n);
            r->t = a->t;
            for (size_t i = 0; i < a->u.l.n; i++) r->u.l.v[r->u.l.n++] = a->u.l.v[i];
            for (size_t i = 0; i < b->u.l.n; i++) r->u.l.v[r->u.l.n++] = b->u.l.v[i];
            return r;
        }
    }
    if (op == OP_MUL && ((a->t == JV_INT || a->t == JV_BOOL) != (b->t == JV_INT || b->t == JV_BOOL))) {
        jv *seq = (a->t == JV_INT || a->t == JV_BOOL) ? b : a;
        long long k = numi(seq == a ? b : a);
        if (k < 0) k = 0;
        if (seq->t == JV_STR) {
            if (seq->u.s.n && (unsigned long long)k > s->max_output / seq->u.s.n) rerr(s, MT_ELIMIT, "string too long");
            jsb sb;
            jsb_init(&sb, &s->a, 0);
            for (long long i = 0; i < k; i++) jsb_put(&sb, seq->u.s.p, seq->u.s.n);
            return v_sb(s, &sb);
        }
        if (seq->t == JV_LIST || seq->t == JV_TUPLE) {
            if (seq->u.l.n && (unsigned long long)k > 1000000 / seq->u.l.n) rerr(s, MT_ELIMIT, "list too long");
            jv *r = v_list(s, 0);
            r->t = seq->t;
            for (long long i = 0; i < k; i++)
                for (size_t j = 0; j < seq->u.l.n; j++) l_push(s, r, seq->u.l.v[j]);
            return r;
        }
    }
    static const char *const opn[] = {"", "+", "-", "*", "/", "//", "%", "**"};
    TERR("unsupported operand type(s) for %s: '%s' and '%s'", op <= OP_POW ? opn[op] : "?", tname(a), tname(b));
}

/* ---------------- JSON output (tojson) ---------------- */
static void json_str(jsb *b, const char *p, size_t n, int ascii) {
    jsb_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        size_t st = i;
        int32_t c = u8next(p, n, &i);
        switch (c) {
        case '"': jsb_puts(b, "\\\""); break;
        case '\\': jsb_puts(b, "\\\\"); break;
        case '\n': jsb_puts(b, "\\n"); break;
        case '\r': jsb_puts(b, "\\r"); break;
        case '\t': jsb_puts(b, "\\t"); break;
        case '\b': jsb_puts(b, "\\b"); break;
        case '\f': jsb_puts(b, "\\f"); break;
        default:
            if (c < 0x20 || (ascii && c >= 0x7F && c < 0x10000)) jsb_printf(b, "\\u%04x", (unsigned)c);
            else if (ascii && c >= 0x10000) {
                int32_t v = c - 0x10000;
                jsb_printf(b, "\\u%04x\\u%04x", (unsigned)(0xD800 + (v >> 10)), (unsigned)(0xDC00 + (v & 0x3FF)));
            } else jsb_put(b, p + st, i - st);
        }
    }
    jsb_putc(b, '"');
}
typedef struct jopts { const char *indent; int has_indent; const char *isep, *ksep; int sort, ascii; } jopts;
static void json_dump(S *s, jv *v, jsb *b, const jopts *o, int level);
static void json_nl(jsb *b, const jopts *o, int level) {
    jsb_putc(b, '\n');
    for (int i = 0; i < level; i++) jsb_puts(b, o->indent);
}
static jv *json_key(S *s, jv *k) {
    switch (k->t) {
    case JV_STR: return k;
    case JV_BOOL: return v_cstr(s, k->u.b ? "true" : "false");
    case JV_NONE: return v_cstr(s, "null");
    case JV_INT: case JV_FLOAT: return to_strv(s, k);
    default: TERR("keys must be str, int, float, bool or None, not %s", tname(k));
    }
}
static void msort(S *s, jv **a, size_t n, int (*cmp)(S *, jv *, jv *, void *), void *ctx);
static int cmp_key_str(S *s, jv *a, jv *b, void *ctx) {
    (void)ctx;
    return vcmp(s, a->u.l.v[0], b->u.l.v[0]);
}
static void json_dump(S *s, jv *v, jsb *b, const jopts *o, int level) {
    if (level > 200) rerr(s, MT_ELIMIT, "value nested too deeply");
    char tmp[64];
    switch (v->t) {
    case JV_NONE: jsb_puts(b, "null"); return;
    case JV_BOOL: jsb_puts(b, v->u.b ? "true" : "false"); return;
    case JV_INT: jsb_printf(b, "%lld", v->u.i); return;
    case JV_FLOAT:
        if (isnan(v->u.f)) jsb_puts(b, "NaN");
        else if (isinf(v->u.f)) jsb_puts(b, v->u.f < 0 ? "-Infinity" : "Infinity");
        else { fmt_float(v->u.f, tmp, sizeof tmp); jsb_puts(b, tmp); }
        return;
    case JV_STR: json_str(b, v->u.s.p, v->u.s.n, o->ascii); return;
    case JV_LIST: case JV_TUPLE:
        if (v->u.l.view == 4) TERR("Object of type generator is not JSON serializable");
        if (!v->u.l.n) { jsb_puts(b, "[]"); return; }
        jsb_putc(b, '[');
        for (size_t i = 0; i < v->u.l.n; i++) {
            if (i) jsb_puts(b, o->isep);
            if (o->has_indent) json_nl(b, o, level + 1);
            json_dump(s, v->u.l.v[i], b, o, level + 1);
        }
        if (o->has_indent) json_nl(b, o, level);
        jsb_putc(b, ']');
        return;
    case JV_DICT: {
        if (!v->u.d.n) { jsb_puts(b, "{}"); return; }
        size_t n = v->u.d.n;
        jv **pairs = ja_alloc(&s->a, n * sizeof *pairs);
        for (size_t i = 0; i < n; i++) pairs[i] = v_tuple2(s, json_key(s, v->u.d.k[i]), v->u.d.v[i]);
        if (o->sort) msort(s, pairs, n, cmp_key_str, NULL);
        jsb_putc(b, '{');
        for (size_t i = 0; i < n; i++) {
            if (i) jsb_puts(b, o->isep);
            if (o->has_indent) json_nl(b, o, level + 1);
            json_str(b, pairs[i]->u.l.v[0]->u.s.p, pairs[i]->u.l.v[0]->u.s.n, o->ascii);
            jsb_puts(b, o->ksep);
            json_dump(s, pairs[i]->u.l.v[1], b, o, level + 1);
        }
        if (o->has_indent) json_nl(b, o, level);
        jsb_putc(b, '}');
        return;
    }
    default: TERR("Object of type %s is not JSON serializable", tname(v));
    }
}

/* ---------------- stable merge sort ---------------- */
static void msort(S *s, jv **a, size_t n, int (*cmp)(S *, jv *, jv *, void *), void *ctx) {
    if (n < 2) return;
    step(s, n);
    jv **tmp = ja_alloc(&s->a, n * sizeof *tmp);
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) tmp[k++] = cmp(s, a[j], a[i], ctx) < 0 ? a[j++] : a[i++];
            while (i < mid) tmp[k++] = a[i++];
            while (j < hi) tmp[k++] = a[j++];
        }
        memcpy(a, tmp, n * sizeof *a);
    }
}

/* ---------------- evaluation ---------------- */
static jv *eval(S *s, jnode *n, jframe *f);
static void exec_body(S *s, jnode *b, jframe *f);
static jv *call_value(S *s, jv *fn, args *A, jframe *f);
static jv *apply_filter(S *s, const char *name, jv *v, args *A, jframe *f);
static int apply_test(S *s, const char *name, jv *v, args *A, jframe *f);

static jv *arg(args *A, size_t i, const char *name) {
    if (i < A->np) return A->pos[i];
    for (size_t k = 0; k < A->nk; k++)
        if (name && !strcmp(A->kn[k], name)) return A->kv[k];
    return NULL;
}

static void eval_args(S *s, jnode *call, jframe *f, args *A, jv *first) {
    size_t cap = (size_t)call->nv + (first ? 1 : 0);
    jv *pos = v_list(s, cap);
    if (first) l_push(s, pos, first);
    for (int i = 0; i < call->nv; i++) {
        jnode *x = call->v[i];
        if (x->kind == N_STARARG) {
            jv *l = iter_list(s, eval(s, x->a, f));
            for (size_t k = 0; k < l->u.l.n; k++) l_push(s, pos, l->u.l.v[k]);
        } else l_push(s, pos, eval(s, x, f));
    }
    A->pos = pos->u.l.v;
    A->np = pos->u.l.n;
    jv *kd = v_dict(s);
    for (int i = 0; i < call->nw; i++) {
        jnode *x = call->w[i];
        if (x->kind == N_STARKW) {
            jv *d = eval(s, x->a, f);
            if (d->t != JV_DICT) TERR("argument after ** must be a mapping");
            for (size_t k = 0; k < d->u.d.n; k++) {
                if (d->u.d.k[k]->t != JV_STR) TERR("keywords must be strings");
                d_set(s, kd, d->u.d.k[k], d->u.d.v[k]);
            }
        } else d_set(s, kd, v_cstr(s, x->name), eval(s, x->a, f));
    }
    A->nk = kd->u.d.n;
    A->kn = ja_alloc(&s->a, (A->nk + 1) * sizeof *A->kn);
    A->kv = kd->u.d.v;
    for (size_t k = 0; k < A->nk; k++) A->kn[k] = ja_strndup(&s->a, kd->u.d.k[k]->u.s.p, kd->u.d.k[k]->u.s.n);
}

static void assign(S *s, jframe *f, jnode *tg, jv *v) {
    if (tg->kind == N_NAME) { fr_set(s, f, tg->name, v); return; }
    if (tg->kind == N_TUPLE) {
        jv *l = iter_list(s, v);
        if (l->u.l.n != (size_t)tg->nv)
            TERR("%s values to unpack (expected %d, got %zu)", l->u.l.n > (size_t)tg->nv ? "too many" : "not enough", tg->nv, l->u.l.n);
        for (int i = 0; i < tg->nv; i++) assign(s, f, tg->v[i], l->u.l.v[i]);
        return;
    }
    if (tg->kind == N_ATTR) {
        jv *ns = fr_get(f, tg->a->name);
        if (!ns || ns->t != JV_NS) TERR("cannot assign attribute on non-namespace object");
        if (tg->name[0] == '_') TERR("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '%s'", tg->name);
        d_set(s, ns, v_cstr(s, tg->name), v);
        return;
    }
    TERR("cannot assign to this target");
}

static jv *call_macro(S *s, jv *m, args *A, jv *caller) {
    const jnode *def = m->u.m.def;
    if (++s->depth > s->max_depth) rerr(s, MT_ELIMIT, "recursion depth limit exceeded (%d)", s->max_depth);
    jframe *f = fr_new(s, m->u.m.scope);
    size_t np = (size_t)def->nv;
    jv *varargs = v_list(s, 0);
    varargs->t = JV_TUPLE;
    for (size_t i = 0; i < A->np; i++) {
        if (i < np) fr_set(s, f, def->v[i]->name, A->pos[i]);
        else l_push(s, varargs, A->pos[i]);
    }
    jv *kw = v_dict(s);
    for (size_t k = 0; k < A->nk; k++) {
        size_t i;
        for (i = 0; i < np; i++)
            if (!strcmp(def->v[i]->name, A->kn[k])) break;
        if (i < np) {
            if (i < A->np) TERR("macro '%s' got multiple values for argument '%s'", def->name, A->kn[k]);
            fr_set(s, f, def->v[i]->name, A->kv[k]);
        } else if (!strcmp(A->kn[k], "caller")) caller = A->kv[k];
        else d_set(s, kw, v_cstr(s, A->kn[k]), A->kv[k]);
    }
    for (size_t i = A->np; i < np; i++) {
        int given = 0;
        for (size_t k = 0; k < A->nk; k++)
            if (!strcmp(def->v[i]->name, A->kn[k])) given = 1;
        if (given) continue;
        if (def->w[i]) fr_set(s, f, def->v[i]->name, eval(s, def->w[i], f));
        else fr_set(s, f, def->v[i]->name, v_undef(s, def->v[i]->name));
    }
    fr_set(s, f, "varargs", varargs);
    fr_set(s, f, "kwargs", kw);
    if (caller) fr_set(s, f, "caller", caller);
    jsb *saved = s->out, buf;
    jsb_init(&buf, &s->a, s->max_output);
    buf.line = s->line;
    s->out = &buf;
    int saved_line = s->line;
    exec_body(s, def->a, f);
    s->brk = 0;
    s->out = saved;
    s->line = saved_line;
    s->depth--;
    return v_sb(s, &buf);
}

static void strftime_now(S *s, jv *fmt, jsb *out) {
    if (fmt->t != JV_STR) TERR("strftime() argument 1 must be str, not %s", tname(fmt));
    time_t t = s->now >= 0 ? (time_t)s->now : time(NULL);
    struct tm tm;
    if (s->now >= 0) gmtime_r(&t, &tm);
    else localtime_r(&t, &tm);
    char buf[1024];
    /* split on %Z/%z which Python leaves empty for naive datetimes */
    jsb fb;
    jsb_init(&fb, &s->a, 0);
    for (size_t i = 0; i < fmt->u.s.n; i++) {
        if (fmt->u.s.p[i] == '%' && i + 1 < fmt->u.s.n && (fmt->u.s.p[i + 1] == 'Z' || fmt->u.s.p[i + 1] == 'z')) { i++; continue; }
        if (fmt->u.s.p[i] == '%' && i + 1 < fmt->u.s.n && fmt->u.s.p[i + 1] == 'f') { jsb_puts(&fb, "000000"); i++; continue; }
        jsb_putc(&fb, fmt->u.s.p[i]);
        if (fmt->u.s.p[i] == '%' && i + 1 < fmt->u.s.n) jsb_putc(&fb, fmt->u.s.p[++i]);
    }
    if (!fb.n) return;
    size_t k = strftime(buf, sizeof buf, fb.p, &tm);
    jsb_put(out, buf, k);
}

static jv *call_method(S *s, jv *self, const char *m, args *A, jframe *f);

static jv *call_value(S *s, jv *fn, args *A, jframe *f) {
    if (fn->t == JV_MACRO) return call_macro(s, fn, A, fn->u.m.caller);
    if (fn->t == JV_UNDEF) undef_err(s, fn);
    if (fn->t != JV_FUNC) TERR("'%s' object is not callable", tname(fn));
    switch (fn->u.fn.id) {
    case F_RANGE: {
        long long a = 0, b = 0, c = 1;
        for (size_t i = 0; i < A->np; i++)
            if (A->pos[i]->t != JV_INT && A->pos[i]->t != JV_BOOL) TERR("'%s' object cannot be interpreted as an integer", tname(A->pos[i]));
        if (A->np == 1) b = numi(A->pos[0]);
        else if (A->np == 2 || A->np == 3) { a = numi(A->pos[0]); b = numi(A->pos[1]); if (A->np == 3) c = numi(A->pos[2]); }
        else TERR("range expected 1 to 3 arguments, got %zu", A->np);
        if (c == 0) TERR("range() arg 3 must not be zero");
        long double cnt = c > 0 ? ((long double)b - a + c - 1) / c : ((long double)a - b - c - 1) / -c;
        if (cnt > 100000) rerr(s, MT_ELIMIT, "range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
        jv *l = v_list(s, 0);
        for (long long i = a; c > 0 ? i < b : i > b; i += c) l_push(s, l, v_int(s, i));
        return l;
    }
    case F_NAMESPACE: case F_DICT: {
        jv *d = v_dict(s);
        if (fn->u.fn.id == F_NAMESPACE) d->t = JV_NS;
        if (A->np > 1) TERR("expected at most 1 argument, got %zu", A->np);
        if (A->np == 1) {
            jv *src = A->pos[0];
            if (src->t == JV_DICT || src->t == JV_NS) {
                for (size_t i = 0; i < src->u.d.n; i++) d_set(s, d, src->u.d.k[i], src->u.d.v[i]);
            } else {
                jv *l = iter_list(s, src);
                for (size_t i = 0; i < l->u.l.n; i++) {
                    jv *p = iter_list(s, l->u.l.v[i]);
                    if (p->u.l.n != 2) TERR("dictionary update sequence element has wrong length");
                    d_set(s, d, p->u.l.v[0], p->u.l.v[1]);
                }
            }
        }
        for (size_t k = 0; k < A->nk; k++) d_set(s, d, v_cstr(s, A->kn[k]), A->kv[k]);
        if (d->t == JV_NS)
            for (size_t i = 0; i < d->u.d.n; i++)
                if (d->u.d.k[i]->t == JV_STR && d->u.d.k[i]->u.s.n && d->u.d.k[i]->u.s.p[0] == '_')
                    TERR("Chat templates cannot store underscore-prefixed attributes on a namespace");
        return d;
    }
    case F_RAISE: {
        jv *m = arg(A, 0, "message");
        jsb b;
        jsb_init(&b, &s->a, 0);
        if (m) str_of(s, m, &b);
        rerr(s, MT_EINVAL, "%s", b.p ? b.p : "");
    }
    case F_STRFTIME: {
        jv *fmt = arg(A, 0, "format");
        if (!fmt) TERR("strftime_now() missing argument 'format'");
        jsb b;
        jsb_init(&b, &s->a, 0);
        strftime_now(s, fmt, &b);
        return v_sb(s, &b);
    }
    case F_CYCLE: {
        if (!A->np) TERR("no items for cycling given");
        return A->pos[fn->u.fn.self->u.lp.idx % A->np];
    }
    case F_UNSAFE:
        rerr(s, MT_EINVAL, "access to attribute '%s' of '%s' object is unsafe", fn->u.fn.name, tname(fn->u.fn.self));
    case F_METHOD: return call_method(s, fn->u.fn.self, fn->u.fn.name, A, f);
    }
    TERR("object is not callable");
}

/* ---------------- string helpers ---------------- */
static int in_chars(int32_t c, jv *chars) {
    size_t i = 0;
    while (i < chars->u.s.n)
        if (u8next(chars->u.s.p, chars->u.s.n, &i) == c) return 1;
    return 0;
}
static jv *str_strip(S *s, jv *v, jv *chars, int left, int right) {
    if (chars && chars->t == JV_NONE) chars = NULL;
    if (chars && chars->t != JV_STR) TERR("strip arg must be None or str");
    const char *p = v->u.s.p;
    size_t n = v->u.s.n, a = 0, b = n;
    if (left) {
        while (a < n) {
            size_t j = a;
            int32_t c = u8next(p, n, &j);
            if (chars ? in_chars(c, chars) : u_isspace(c)) a = j;
            else break;
        }
    }
    if (right) {
        while (b > a) {
            size_t st = b - 1;
            while (st > a && ((unsigned char)p[st] & 0xC0) == 0x80) st--;
            size_t j = st;
            int32_t c = u8next(p, n, &j);
            if (j != b) { st = b - 1; c = 0xDC00 + (unsigned char)p[st]; }
            if (chars ? in_chars(c, chars) : u_isspace(c)) b = st;
            else break;
        }
    }
    return v_str_nocopy(s, p + a, b - a);
}

/* Case-map one codepoint: 'U' upper, 'L' lower, 'T' title; includes the full
 * (one-to-many) mappings Python applies that utf8proc's simple ones lack. */
static void put_case(jsb *b, int32_t c, char kind) {
    if (c >= 0xD800 && c <= 0xDFFF) { u8put(b, c); return; }
    if (kind != 'L' && (c == 0xDF || (c >= 0xFB00 && c <= 0xFB06))) {
        static const char *const up[] = {"FF", "FI", "FL", "FFI", "FFL", "ST", "ST"};
        static const char *const ti[] = {"Ff", "Fi", "Fl", "Ffi", "Ffl", "St", "St"};
        unsigned k = (unsigned)(c - 0xFB00);
        if (c == 0xDF) jsb_puts(b, kind == 'U' ? "SS" : "Ss");
        else if (k < 7) jsb_puts(b, kind == 'U' ? up[k] : ti[k]);
        return;
    }
    if (kind == 'L' && c == 0x130) { jsb_puts(b, "i\xcc\x87"); return; }
    u8put(b, kind == 'U' ? utf8proc_toupper(c) : kind == 'L' ? utf8proc_tolower(c) : utf8proc_totitle(c));
}

static jv *str_map(S *s, jv *v, int mode) { /* 0 upper 1 lower 2 capitalize 3 swapcase 4 python title */
    jsb b;
    jsb_init(&b, &s->a, 0);
    size_t i = 0;
    int first = 1, prev_cased = 0;
    while (i < v->u.s.n) {
        int32_t c = u8next(v->u.s.p, v->u.s.n, &i);
        char k = 0;
        switch (mode) {
        case 0: k = 'U'; break;
        case 1: k = 'L'; break;
        case 2: k = first ? 'T' : 'L'; break;
        case 3: k = u_iscased_upper(c) ? 'L' : u_iscased_lower(c) ? 'U' : 0; break;
        case 4: {
            k = prev_cased ? 'L' : 'T';
            prev_cased = u_iscased_upper(c) || u_iscased_lower(c);
            break;
        }
        }
        first = 0;
        if (k) put_case(&b, c, k);
        else u8put(&b, c);
    }
    return v_sb(s, &b);
}

/* Jinja's title filter: words start after '-', whitespace, '(', '{', '[', '<' */
static jv *jinja_title(S *s, jv *v) {
    jsb b;
    jsb_init(&b, &s->a, 0);
    size_t i = 0;
    int start = 1;
    while (i < v->u.s.n) {
        int32_t c = u8next(v->u.s.p, v->u.s.n, &i);
        int sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || u_isspace(c);
        if (sep) { u8put(&b, c); start = 1; continue; }
        put_case(&b, c, start ? 'U' : 'L');
        start = 0;
    }
    return v_sb(s, &b);
}

static jv *str_split(S *s, jv *v, jv *sep, long long maxsplit, int from_right) {
    jv *l = v_list(s, 0);
    const char *p = v->u.s.p;
    size_t n = v->u.s.n;
    if (sep && sep->t == JV_NONE) sep = NULL;
    if (sep && sep->t != JV_STR) TERR("must be str or None, not %s", tname(sep));
    if (sep) {
        if (!sep->u.s.n) TERR("empty separator");
        if (!from_right) {
            size_t a = 0;
            while (maxsplit < 0 || (long long)l->u.l.n < maxsplit) {
                const char *q = memmem(p + a, n - a, sep->u.s.p, sep->u.s.n);
                if (!q) break;
                l_push(s, l, v_strn(s, p + a, (size_t)(q - p) - a));
                a = (size_t)(q - p) + sep->u.s.n;
            }
            l_push(s, l, v_strn(s, p + a, n - a));
            return l;
        }
        /* rsplit */
        jv *r = v_list(s, 0);
        size_t b = n;
        long long cnt = 0;
        while (maxsplit < 0 || cnt < maxsplit) {
            const char *q = NULL;
            for (size_t k = b; k >= sep->u.s.n; k--)
                if (memcmp(p + k - sep->u.s.n, sep->u.s.p, sep->u.s.n) == 0) { q = p + k - sep->u.s.n; break; }
            if (!q) break;
            l_push(s, r, v_strn(s, q + sep->u.s.n, b - (size_t)(q - p) - sep->u.s.n));
            b = (size_t)(q - p);
            cnt++;
        }
        l_push(s, r, v_strn(s, p, b));
        for (size_t i = r->u.l.n; i-- > 0;) l_push(s, l, r->u.l.v[i]);
        return l;
    }
    /* whitespace split */
    if (from_right) {
        jv *r = v_list(s, 0);
        size_t b = n;
        long long cnt = 0;
        for (;;) {
            while (b > 0 && u_isspace((unsigned char)p[b - 1])) b--;
            if (!b) break;
            if (maxsplit >= 0 && cnt >= maxsplit) { l_push(s, r, v_strn(s, p, b)); break; }
            size_t a = b;
            while (a > 0 && !u_isspace((unsigned char)p[a - 1])) a--;
            l_push(s, r, v_strn(s, p + a, b - a));
            cnt++;
            b = a;
        }
        for (size_t i = r->u.l.n; i-- > 0;) l_push(s, l, r->u.l.v[i]);
        return l;
    }
    size_t i = 0;
    long long cnt = 0;
    for (;;) {
        size_t j = i;
        while (i < n) { j = i; if (!u_isspace(u8next(p, n, &j))) break; i = j; }
        if (i >= n) break;
        if (maxsplit >= 0 && cnt >= maxsplit) {
            l_push(s, l, v_strn(s, p + i, n - i));
            break;
        }
        size_t a = i;
        while (i < n) { j = i; if (u_isspace(u8next(p, n, &j))) break; i = j; }
        l_push(s, l, v_strn(s, p + a, i - a));
        cnt++;
    }
    return l;
}

static jv *str_replace(S *s, jv *v, jv *old, jv *new_, long long count) {
    if (old->t != JV_STR || new_->t != JV_STR) TERR("replace() arguments must be str");
    jsb b;
    jsb_init(&b, &s->a, s->max_output);
    b.line = s->line;
    const char *p = v->u.s.p;
    size_t n = v->u.s.n;
    if (!old->u.s.n) {
        size_t i = 0;
        long long k = 0;
        if (count < 0 || k < count) { jsb_put(&b, new_->u.s.p, new_->u.s.n); k++; }
        while (i < n) {
            size_t st = i;
            u8next(p, n, &i);
            jsb_put(&b, p + st, i - st);
            if (count < 0 || k < count) { jsb_put(&b, new_->u.s.p, new_->u.s.n); k++; }
        }
        return v_sb(s, &b);
    }
    size_t a = 0;
    long long k = 0;
    while (count < 0 || k < count) {
        const char *q = memmem(p + a, n - a, old->u.s.p, old->u.s.n);
        if (!q) break;
        jsb_put(&b, p + a, (size_t)(q - p) - a);
        jsb_put(&b, new_->u.s.p, new_->u.s.n);
        a = (size_t)(q - p) + old->u.s.n;
        k++;
    }
    jsb_put(&b, p + a, n - a);
    return v_sb(s, &b);
}

static int starts_ends(S *s, jv *v, jv *x, int ends) {
    if (x->t == JV_TUPLE) {
        for (size_t i = 0; i < x->u.l.n; i++)
            if (starts_ends(s, v, x->u.l.v[i], ends)) return 1;
        return 0;
    }
    if (x->t != JV_STR) TERR("%s first arg must be str or a tuple of str, not %s", ends ? "endswith" : "startswith", tname(x));
    if (x->u.s.n > v->u.s.n) return 0;
    return memcmp(v->u.s.p + (ends ? v->u.s.n - x->u.s.n : 0), x->u.s.p, x->u.s.n) == 0;
}

static long long cp_index_of_byte(jv *v, size_t byte) { return (long long)u8len(v->u.s.p, byte); }

static jv *str_join(S *s, jv *sep, jv *items, jframe *f, jv *attr);
static jv *str_format(S *s, jv *fmt, args *A) {
    jsb b;
    jsb_init(&b, &s->a, s->max_output);
    size_t auto_i = 0;
    const char *p = fmt->u.s.p;
    size_t n = fmt->u.s.n;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '{') {
            if (i + 1 < n && p[i + 1] == '{') { jsb_putc(&b, '{'); i++; continue; }
            size_t j = i + 1;
            while (j < n && p[j] != '}') j++;
            if (j >= n) TERR("Single '{' encountered in format string");
            const char *fld = p + i + 1;
            size_t fl = j - i - 1;
            const char *colon = memchr(fld, ':', fl);
            if (colon) TERR("format specs are not supported");
            jv *x;
            if (fl == 0) x = auto_i < A->np ? A->pos[auto_i++] : NULL;
            else if (fld[0] >= '0' && fld[0] <= '9') {
                size_t k = (size_t)atoi(fld);
                x = k < A->np ? A->pos[k] : NULL;
            } else {
                char *nm = ja_strndup(&s->a, fld, fl);
                x = NULL;
                for (size_t k = 0; k < A->nk; k++)
                    if (!strcmp(A->kn[k], nm)) x = A->kv[k];
            }
            if (!x) TERR("format: missing argument");
            str_of(s, x, &b);
            i = j;
        } else if (c == '}') {
            if (i + 1 < n && p[i + 1] == '}') i++;
            else TERR("Single '}' encountered in format string");
            jsb_putc(&b, '}');
        } else jsb_putc(&b, c);
    }
    return v_sb(s, &b);
}

static jv *str_pad(S *s, jv *v, long long width, jv *fill, int mode) { /* 0 center 1 ljust 2 rjust */
    long long len = (long long)u8len(v->u.s.p, v->u.s.n);
    if (width > (long long)s->max_output) rerr(s, MT_ELIMIT, "string too long");
    const char *fc = " ";
    size_t fn = 1;
    if (fill) {
        if (fill->t != JV_STR || u8len(fill->u.s.p, fill->u.s.n) != 1) TERR("The fill character must be exactly one character long");
        fc = fill->u.s.p;
        fn = fill->u.s.n;
    }
    if (width <= len) return v;
    long long pad = width - len, left;
    if (mode == 0) left = pad / 2 + (pad & width & 1);
    else if (mode == 1) left = 0;
    else left = pad;
    jsb b;
    jsb_init(&b, &s->a, 0);
    for (long long i = 0; i < left; i++) jsb_put(&b, fc, fn);
    jsb_put(&b, v->u.s.p, v->u.s.n);
    for (long long i = 0; i < pad - left; i++) jsb_put(&b, fc, fn);
    return v_sb(s, &b);
}

static long long int_arg(S *s, jv *v, long long dflt) {
    if (!v || v->t == JV_NONE) return dflt;
    if (v->t != JV_INT && v->t != JV_BOOL) TERR("'%s' object cannot be interpreted as an integer", tname(v));
    return numi(v);
}

static jv *call_method(S *s, jv *self, const char *m, args *A, jframe *f) {
    if (self->t == JV_STR) {
        jv *a0 = arg(A, 0, NULL), *a1 = arg(A, 1, NULL);
        if (!strcmp(m, "strip")) return str_strip(s, self, arg(A, 0, "chars"), 1, 1);
        if (!strcmp(m, "lstrip")) return str_strip(s, self, arg(A, 0, "chars"), 1, 0);
        if (!strcmp(m, "rstrip")) return str_strip(s, self, arg(A, 0, "chars"), 0, 1);
        if (!strcmp(m, "split") || !strcmp(m, "rsplit"))
            return str_split(s, self, arg(A, 0, "sep"), int_arg(s, arg(A, 1, "maxsplit"), -1), m[0] == 'r');
        if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
            if (!a0) TERR("%s() takes at least 1 argument", m);
            if (a1 || arg(A, 2, NULL)) {
                jv *sub = do_slice(s, self, a1, arg(A, 2, NULL), NULL);
                return v_bool(s, starts_ends(s, sub, a0, m[0] == 'e'));
            }
            return v_bool(s, starts_ends(s, self, a0, m[0] == 'e'));
        }
        if (!strcmp(m, "replace")) {
            if (!a0 || !a1) TERR("replace() expected at least 2 arguments");
            return str_replace(s, self, a0, a1, int_arg(s, arg(A, 2, "count"), -1));
        }
        if (!strcmp(m, "upper")) return str_map(s, self, 0);
        if (!strcmp(m, "lower") || !strcmp(m, "casefold")) return str_map(s, self, 1);
        if (!strcmp(m, "capitalize")) return str_map(s, self, 2);
        if (!strcmp(m, "swapcase")) return str_map(s, self, 3);
        if (!strcmp(m, "title")) return str_map(s, self, 4);
        if (!strcmp(m, "find") || !strcmp(m, "rfind") || !strcmp(m, "index") || !strcmp(m, "rindex") || !strcmp(m, "count")) {
            if (!a0 || a0->t != JV_STR) TERR("must be str");
            jv *hay = self;
            long long base = 0;
            if (a1 || arg(A, 2, NULL)) {
                hay = do_slice(s, self, a1, arg(A, 2, NULL), NULL);
                if (a1 && a1->t != JV_NONE) {
                    long long st = numi(a1), ln = (long long)u8len(self->u.s.p, self->u.s.n);
                    if (st < 0) st += ln;
                    base = st < 0 ? 0 : st > ln ? ln : st;
                }
            }
            if (!strcmp(m, "count")) {
                long long k = 0;
                if (!a0->u.s.n) return v_int(s, (long long)u8len(hay->u.s.p, hay->u.s.n) + 1);
                size_t at = 0;
                const char *q;
                while ((q = memmem(hay->u.s.p + at, hay->u.s.n - at, a0->u.s.p, a0->u.s.n))) { k++; at = (size_t)(q - hay->u.s.p) + a0->u.s.n; }
                return v_int(s, k);
            }
            long long r = -1;
            if (m[0] == 'r') {
                for (size_t k = hay->u.s.n + 1; k-- > 0;)
                    if (k + a0->u.s.n <= hay->u.s.n && memcmp(hay->u.s.p + k, a0->u.s.p, a0->u.s.n) == 0) { r = cp_index_of_byte(hay, k); break; }
            } else {
                const char *q = a0->u.s.n ? memmem(hay->u.s.p, hay->u.s.n, a0->u.s.p, a0->u.s.n) : hay->u.s.p;
                if (q) r = cp_index_of_byte(hay, (size_t)(q - hay->u.s.p));
            }
            if (r < 0 && (!strcmp(m, "index") || !strcmp(m, "rindex"))) TERR("substring not found");
            return v_int(s, r < 0 ? -1 : r + base);
        }
        if (!strcmp(m, "join")) {
            if (!a0) TERR("join() takes exactly one argument");
            jv *l = iter_list(s, a0);
            for (size_t i = 0; i < l->u.l.n; i++)
                if (l->u.l.v[i]->t != JV_STR) TERR("sequence item %zu: expected str instance, %s found", i, tname(l->u.l.v[i]));
            return str_join(s, self, l, f, NULL);
        }
        if (!strcmp(m, "splitlines")) {
            int keep = a0 ? truthy(a0) : (arg(A, 0, "keepends") ? truthy(arg(A, 0, "keepends")) : 0);
            jv *l = v_list(s, 0);
            const char *p = self->u.s.p;
            size_t n = self->u.s.n, a = 0, i = 0;
            while (i < n) {
                size_t st = i;
                int32_t c = u8next(p, n, &i);
                if (c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029) {
                    if (c == '\r' && i < n && p[i] == '\n') i++;
                    l_push(s, l, v_strn(s, p + a, (keep ? i : st) - a));
                    a = i;
                }
            }
            if (a < n) l_push(s, l, v_strn(s, p + a, n - a));
            return l;
        }
        if (!strncmp(m, "is", 2)) {
            size_t i = 0, n = self->u.s.n;
            int any = 0, ok = 1, has_upper = 0, has_lower = 0;
            if (!strcmp(m, "isupper") || !strcmp(m, "islower")) {
                while (i < n) {
                    int32_t c = u8next(self->u.s.p, n, &i);
                    if (u_iscased_upper(c)) has_upper = 1;
                    if (u_iscased_lower(c)) has_lower = 1;
                }
                return v_bool(s, m[2] == 'u' ? has_upper && !has_lower : has_lower && !has_upper);
            }
            if (!strcmp(m, "istitle")) {
                int prev = 0, cased = 0;
                while (i < n) {
                    int32_t c = u8next(self->u.s.p, n, &i);
                    if (u_iscased_upper(c)) { if (prev) { ok = 0; break; } prev = 1; cased = 1; }
                    else if (u_iscased_lower(c)) { if (!prev) { ok = 0; break; } prev = 1; cased = 1; }
                    else prev = 0;
                }
                return v_bool(s, ok && cased);
            }
            while (i < n) {
                int32_t c = u8next(self->u.s.p, n, &i);
                any = 1;
                int r;
                if (!strcmp(m, "isdigit") || !strcmp(m, "isdecimal") || !strcmp(m, "isnumeric")) r = u_isdigit(c);
                else if (!strcmp(m, "isalpha")) r = u_isalpha(c);
                else if (!strcmp(m, "isalnum")) r = u_isalpha(c) || u_isdigit(c);
                else r = u_isspace(c);
                if (!r) { ok = 0; break; }
            }
            return v_bool(s, any && ok);
        }
        if (!strcmp(m, "format")) return str_format(s, self, A);
        if (!strcmp(m, "center") || !strcmp(m, "ljust") || !strcmp(m, "rjust")) {
            if (!a0) TERR("%s() takes at least 1 argument", m);
            return str_pad(s, self, int_arg(s, a0, 0), a1, m[0] == 'c' ? 0 : m[0] == 'l' ? 1 : 2);
        }
        if (!strcmp(m, "zfill")) {
            long long w = int_arg(s, a0, 0), len = (long long)u8len(self->u.s.p, self->u.s.n);
            if (w > (long long)s->max_output) rerr(s, MT_ELIMIT, "string too long");
            if (w <= len) return self;
            jsb b;
            jsb_init(&b, &s->a, 0);
            size_t st = 0;
            if (self->u.s.n && (self->u.s.p[0] == '+' || self->u.s.p[0] == '-')) { jsb_putc(&b, self->u.s.p[0]); st = 1; }
            for (long long i = 0; i < w - len; i++) jsb_putc(&b, '0');
            jsb_put(&b, self->u.s.p + st, self->u.s.n - st);
            return v_sb(s, &b);
        }
        if (!strcmp(m, "partition") || !strcmp(m, "rpartition")) {
            if (!a0 || a0->t != JV_STR || !a0->u.s.n) TERR("empty separator");
            const char *q = NULL;
            if (m[0] == 'r') {
                for (size_t k = self->u.s.n + 1; k-- > 0;)
                    if (k + a0->u.s.n <= self->u.s.n && memcmp(self->u.s.p + k, a0->u.s.p, a0->u.s.n) == 0) { q = self->u.s.p + k; break; }
            } else q = memmem(self->u.s.p, self->u.s.n, a0->u.s.p, a0->u.s.n);
            jv *t = v_list(s, 3);
            t->t = JV_TUPLE;
            t->u.l.n = 3;
            if (!q) {
                jv *e = v_strn(s, "", 0);
                t->u.l.v[0] = m[0] == 'r' ? e : self;
                t->u.l.v[1] = e;
                t->u.l.v[2] = m[0] == 'r' ? self : e;
            } else {
                size_t at = (size_t)(q - self->u.s.p);
                t->u.l.v[0] = v_strn(s, self->u.s.p, at);
                t->u.l.v[1] = a0;
                t->u.l.v[2] = v_strn(s, q + a0->u.s.n, self->u.s.n - at - a0->u.s.n);
            }
            return t;
        }
        if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
            if (!a0 || a0->t != JV_STR) TERR("%s() argument must be str", m);
            int suf = m[6] == 's';
            if (starts_ends(s, self, a0, suf))
                return v_str_nocopy(s, self->u.s.p + (suf ? 0 : a0->u.s.n), self->u.s.n - a0->u.s.n);
            return self;
        }
        if (!strcmp(m, "expandtabs")) return self;
    } else if (self->t == JV_DICT) {
        if (!strcmp(m, "get")) {
            jv *k = arg(A, 0, NULL);
            if (!k) TERR("get expected at least 1 argument, got 0");
            jv *x = d_get(self, k);
            if (x) return x;
            jv *d = arg(A, 1, NULL);
            return d ? d : s->none;
        }
        if (!strcmp(m, "items") || !strcmp(m, "keys") || !strcmp(m, "values")) {
            jv *l = v_list(s, self->u.d.n);
            for (size_t i = 0; i < self->u.d.n; i++)
                l->u.l.v[i] = m[0] == 'i' ? v_tuple2(s, self->u.d.k[i], self->u.d.v[i]) : m[0] == 'k' ? self->u.d.k[i] : self->u.d.v[i];
            l->u.l.n = self->u.d.n;
            l->u.l.view = m[0] == 'i' ? 1 : m[0] == 'k' ? 2 : 3;
            return l;
        }
        if (!strcmp(m, "copy")) {
            jv *d = v_dict(s);
            for (size_t i = 0; i < self->u.d.n; i++) d_set(s, d, self->u.d.k[i], self->u.d.v[i]);
            return d;
        }
    } else if (self->t == JV_LIST || self->t == JV_TUPLE) {
        jv *a0 = arg(A, 0, NULL);
        if (!strcmp(m, "count")) {
            long long k = 0;
            for (size_t i = 0; i < self->u.l.n; i++) k += a0 && veq(self->u.l.v[i], a0);
            return v_int(s, k);
        }
        if (!strcmp(m, "index")) {
            for (size_t i = 0; i < self->u.l.n; i++)
                if (a0 && veq(self->u.l.v[i], a0)) return v_int(s, (long long)i);
            TERR("value is not in list");
        }
        if (!strcmp(m, "copy")) return do_slice(s, self, NULL, NULL, NULL);
    }
    TERR("'%s' object has no attribute '%s'", tname(self), m);
}

static jv *str_join(S *s, jv *sep, jv *items, jframe *f, jv *attr) {
    (void)f;
    jsb b;
    jsb_init(&b, &s->a, s->max_output);
    b.line = s->line;
    for (size_t i = 0; i < items->u.l.n; i++) {
        if (i) jsb_put(&b, sep->u.s.p, sep->u.s.n);
        jv *x = items->u.l.v[i];
        if (attr) x = get_item(s, x, attr);
        str_of(s, x, &b);
    }
    return v_sb(s, &b);
}

/* attribute path "a.b.0" lookup as Jinja's make_attrgetter */
static jv *attr_path(S *s, jv *v, jv *path) {
    if (path->t != JV_STR) return get_item(s, v, path);
    const char *p = path->u.s.p;
    size_t n = path->u.s.n, a = 0;
    for (;;) {
        const char *dot = memchr(p + a, '.', n - a);
        size_t e = dot ? (size_t)(dot - p) : n;
        int isnum_ = e > a;
        for (size_t k = a; k < e; k++)
            if (p[k] < '0' || p[k] > '9') isnum_ = 0;
        jv *key = isnum_ ? v_int(s, atoll(p + a)) : v_strn(s, p + a, e - a);
        v = get_item(s, v, key);
        if (!dot) return v;
        a = e + 1;
    }
}

typedef struct sortctx { int ci, rev; jv *attr; int by_value; } sortctx;
static jv *sort_key(S *s, jv *x, sortctx *c) {
    if (c->attr) x = attr_path(s, x, c->attr);
    if (!c->ci && x->t == JV_STR) return x;
    if (x->t == JV_STR) return str_map(s, x, 1);
    return x;
}
static int cmp_sort(S *s, jv *a, jv *b, void *ctx) {
    sortctx *c = ctx;
    int r = vcmp(s, a->u.l.v[0], b->u.l.v[0]);
    return c->rev ? -r : r;
}

static jv *seq_of(S *s, jv *v) { return iter_list(s, v); }

static jv *apply_filter_(S *s, const char *name, jv *v, args *A, jframe *f);

/* Jinja's map/select/reject/selectattr/rejectattr/items/unique/batch/reverse return
 * generators: always true, no len(), consumed once, and their errors surface only
 * when they are consumed.  The result is computed now; an error is deferred. */
static int is_gen_filter(const char *name, jv *v) {
    static const char *const g[] = {"map", "select", "reject", "selectattr", "rejectattr", "items", "unique", "batch", NULL};
    if (!strcmp(name, "reverse")) return v->t != JV_STR;
    return in_list(g, name) != NULL;
}
static jv *apply_filter(S *s, const char *name, jv *v, args *A, jframe *f) {
    if (!is_gen_filter(name, v)) return apply_filter_(s, name, v, A, f);
    if (!strcmp(name, "reverse")) { /* an iterator, but its errors are immediate; a generator gives a list */
        int from_gen = v->t == JV_LIST && v->u.l.view == 4;
        jv *r = apply_filter_(s, name, v, A, f);
        if (from_gen) return r;
        jv *g = v_list(s, 0);
        *g = *r;
        g->t = JV_LIST;
        g->u.l.view = 4;
        return g;
    }
    jmp_buf saved;
    memcpy(saved, s->jb, sizeof saved);
    int rdepth = s->rdepth, depth = s->depth, line = s->line;
    jsb *out = s->out;
    jv *volatile r = NULL;
    if (setjmp(s->jb) == 0) {
        r = apply_filter_(s, name, v, A, f);
        memcpy(s->jb, saved, sizeof saved);
    } else {
        memcpy(s->jb, saved, sizeof saved);
        if (s->err->code == MT_ELIMIT || s->err->code == MT_ENOMEM) longjmp(s->jb, 1);
        s->rdepth = rdepth;
        s->depth = depth;
        s->line = line;
        s->out = out;
        const char *m = strstr(s->err->msg, ": ");
        r = v_list(s, 0);
        r->u.l.view = 4;
        r->u.l.lazy_err = ja_strndup(&s->a, m ? m + 2 : s->err->msg, strlen(m ? m + 2 : s->err->msg));
        mt_clearerr(s->err);
    }
    if (r->t != JV_LIST || r->u.l.view == 4) return r;
    jv *g = v_list(s, 0);
    *g = *r;
    g->t = JV_LIST;
    g->u.l.view = 4;
    return g;
}

static jv *apply_filter_(S *s, const char *name, jv *v, args *A, jframe *f) {
    jv *a0 = arg(A, 0, NULL);
    step(s, 1);
    if (!strcmp(name, "tojson")) {
        jopts o = {NULL, 0, ", ", ": ", 0, 0};
        jv *ind = arg(A, 1, "indent");
        jv *ea = arg(A, 0, "ensure_ascii");
        o.ascii = ea && truthy(ea);
        if (ind && ind->t != JV_NONE) {
            o.has_indent = 1;
            o.isep = ",";
            if (ind->t == JV_STR) o.indent = ja_strndup(&s->a, ind->u.s.p, ind->u.s.n);
            else if (ind->t == JV_INT) {
                long long k = ind->u.i < 0 ? 0 : ind->u.i > 64 ? 64 : ind->u.i;
                char *sp = ja_alloc(&s->a, (size_t)k + 1);
                memset(sp, ' ', (size_t)k);
                o.indent = sp;
            } else TERR("tojson: bad indent");
        }
        jv *sep = arg(A, 2, "separators");
        if (sep && sep->t != JV_NONE) {
            if ((sep->t != JV_LIST && sep->t != JV_TUPLE) || sep->u.l.n != 2 || sep->u.l.v[0]->t != JV_STR || sep->u.l.v[1]->t != JV_STR)
                TERR("tojson: separators must be a pair of strings");
            o.isep = ja_strndup(&s->a, sep->u.l.v[0]->u.s.p, sep->u.l.v[0]->u.s.n);
            o.ksep = ja_strndup(&s->a, sep->u.l.v[1]->u.s.p, sep->u.l.v[1]->u.s.n);
        }
        jv *sk = arg(A, 3, "sort_keys");
        o.sort = sk && truthy(sk);
        jsb b;
        jsb_init(&b, &s->a, s->max_output);
        b.line = s->line;
        json_dump(s, v, &b, &o, 0);
        return v_sb(s, &b);
    }
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        jv *dv = arg(A, 0, "default_value");
        jv *bo = arg(A, 1, "boolean");
        if (v->t == JV_UNDEF || (bo && truthy(bo) && !truthy(v))) return dv ? dv : v_strn(s, "", 0);
        return v;
    }
    if (!strcmp(name, "length") || !strcmp(name, "count")) return v_int(s, vlen(s, v));
    if (!strcmp(name, "string")) return to_strv(s, v);
    if (!strcmp(name, "safe")) return to_strv(s, v);
    if (!strcmp(name, "list")) {
        jv *r = do_slice(s, iter_list(s, v), NULL, NULL, NULL);
        r->t = JV_LIST;
        return r;
    }
    if (!strcmp(name, "trim")) return str_strip(s, to_strv(s, v), arg(A, 0, "chars"), 1, 1);
    if (!strcmp(name, "upper")) return str_map(s, to_strv(s, v), 0);
    if (!strcmp(name, "lower")) return str_map(s, to_strv(s, v), 1);
    if (!strcmp(name, "capitalize")) return str_map(s, to_strv(s, v), 2);
    if (!strcmp(name, "title")) return jinja_title(s, to_strv(s, v));
    if (!strcmp(name, "replace")) {
        jv *o = arg(A, 0, "old"), *n = arg(A, 1, "new");
        if (!o || !n) TERR("replace filter needs 2 arguments");
        return str_replace(s, to_strv(s, v), to_strv(s, o), to_strv(s, n), int_arg(s, arg(A, 2, "count"), -1));
    }
    if (!strcmp(name, "join")) {
        jv *sep = arg(A, 0, "d");
        jv *attr = arg(A, 1, "attribute");
        jv *l = iter_list(s, v);
        if (attr) {
            jv *m = v_list(s, l->u.l.n);
            for (size_t i = 0; i < l->u.l.n; i++) m->u.l.v[m->u.l.n++] = attr_path(s, l->u.l.v[i], attr);
            l = m;
        }
        return str_join(s, sep ? to_strv(s, sep) : v_strn(s, "", 0), l, f, NULL);
    }
    if (!strcmp(name, "first")) {
        jv *l = iter_list(s, v);
        return l->u.l.n ? l->u.l.v[0] : v_undef(s, NULL);
    }
    if (!strcmp(name, "last")) {
        jv *l = iter_list(s, v);
        return l->u.l.n ? l->u.l.v[l->u.l.n - 1] : v_undef(s, NULL);
    }
    if (!strcmp(name, "reverse")) {
        if (v->t == JV_STR) return do_slice(s, v, NULL, NULL, v_int(s, -1));
        jv *l = iter_list(s, v);
        jv *r = do_slice(s, l, NULL, NULL, v_int(s, -1));
        r->t = JV_LIST;
        return r;
    }
    if (!strcmp(name, "items")) {
        if (v->t == JV_UNDEF) return v_list(s, 0);
        if (v->t != JV_DICT) TERR("Can only get item pairs from a mapping.");
        jv *r = call_method(s, v, "items", A, f);
        r->u.l.view = 0;
        return r;
    }
    if (!strcmp(name, "dictsort")) {
        if (v->t != JV_DICT) TERR("dictsort filter needs a mapping");
        jv *cs = arg(A, 0, "case_sensitive"), *by = arg(A, 1, "by"), *rev = arg(A, 2, "reverse");
        sortctx c = {!(cs && truthy(cs)), rev && truthy(rev), NULL, 0};
        int pos = 0;
        if (by) {
            if (by->t == JV_STR && by->u.s.n == 5 && !memcmp(by->u.s.p, "value", 5)) pos = 1;
            else if (!(by->t == JV_STR && by->u.s.n == 3 && !memcmp(by->u.s.p, "key", 3))) TERR("You can only sort by either \"key\" or \"value\"");
        }
        size_t n = v->u.d.n;
        jv **pairs = ja_alloc(&s->a, (n + 1) * sizeof *pairs);
        for (size_t i = 0; i < n; i++) {
            jv *item = v_tuple2(s, v->u.d.k[i], v->u.d.v[i]);
            pairs[i] = v_tuple2(s, sort_key(s, item->u.l.v[pos], &c), item);
        }
        msort(s, pairs, n, cmp_sort, &c);
        jv *l = v_list(s, n);
        for (size_t i = 0; i < n; i++) l->u.l.v[i] = pairs[i]->u.l.v[1];
        l->u.l.n = n;
        return l;
    }
    if (!strcmp(name, "sort") || !strcmp(name, "unique") || !strcmp(name, "min") || !strcmp(name, "max")) {
        int is_sort = name[0] == 's', is_uniq = name[0] == 'u';
        jv *rev = is_sort ? arg(A, 0, "reverse") : NULL;
        jv *cs = arg(A, is_sort ? 1 : 0, "case_sensitive");
        jv *attr = arg(A, is_sort ? 2 : 1, "attribute");
        sortctx c = {!(cs && truthy(cs)), rev && truthy(rev), attr, 0};
        jv *l = iter_list(s, v);
        size_t n = l->u.l.n;
        step(s, n);
        if (is_uniq) {
            jv *r = v_list(s, 0), *seen = v_list(s, 0);
            for (size_t i = 0; i < n; i++) {
                jv *k = sort_key(s, l->u.l.v[i], &c);
                if (!contains(s, seen, k)) { l_push(s, seen, k); l_push(s, r, l->u.l.v[i]); }
            }
            return r;
        }
        jv **pairs = ja_alloc(&s->a, (n + 1) * sizeof *pairs);
        for (size_t i = 0; i < n; i++) pairs[i] = v_tuple2(s, sort_key(s, l->u.l.v[i], &c), l->u.l.v[i]);
        if (!is_sort) {
            if (!n) return v_undef(s, NULL);
            jv *best = pairs[0];
            for (size_t i = 1; i < n; i++) {
                int r = vcmp(s, pairs[i]->u.l.v[0], best->u.l.v[0]);
                if (name[1] == 'i' ? r < 0 : r > 0) best = pairs[i];
            }
            return best->u.l.v[1];
        }
        msort(s, pairs, n, cmp_sort, &c);
        jv *r = v_list(s, n);
        for (size_t i = 0; i < n; i++) r->u.l.v[i] = pairs[i]->u.l.v[1];
        r->u.l.n = n;
        return r;
    }
    if (!strcmp(name, "map")) {
        jv *l = iter_list(s, v);
        jv *r = v_list(s, l->u.l.n);
        jv *attr = arg(A, 99, "attribute");
        step(s, l->u.l.n);
        if (attr) {
            jv *dflt = arg(A, 99, "default");
            for (size_t i = 0; i < l->u.l.n; i++) {
                jv *x = attr_path(s, l->u.l.v[i], attr);
                if (x->t == JV_UNDEF && dflt) x = dflt;
                r->u.l.v[r->u.l.n++] = x;
            }
            return r;
        }
        if (!a0 || a0->t != JV_STR) TERR("map requires a filter argument");
        const char *fname = ja_strndup(&s->a, a0->u.s.p, a0->u.s.n);
        args B = {A->pos + 1, A->np - 1, A->kn, A->kv, A->nk};
        for (size_t i = 0; i < l->u.l.n; i++) r->u.l.v[r->u.l.n++] = apply_filter(s, fname, l->u.l.v[i], &B, f);
        return r;
    }
    if (!strcmp(name, "select") || !strcmp(name, "reject") || !strcmp(name, "selectattr") || !strcmp(name, "rejectattr")) {
        int want = name[0] == 's', isattr = strlen(name) > 6;
        jv *l = iter_list(s, v);
        jv *r = v_list(s, 0);
        step(s, l->u.l.n);
        size_t ti = isattr ? 1 : 0;
        jv *attr = isattr ? a0 : NULL;
        if (isattr && !attr) TERR("Missing parameter for attribute name");
        jv *tn = arg(A, ti, NULL);
        const char *tname_ = tn ? (tn->t == JV_STR ? ja_strndup(&s->a, tn->u.s.p, tn->u.s.n) : NULL) : NULL;
        if (tn && !tname_) TERR("test name must be a string");
        args B = {A->np > ti + 1 ? A->pos + ti + 1 : NULL, A->np > ti + 1 ? A->np - ti - 1 : 0, A->kn, A->kv, A->nk};
        for (size_t i = 0; i < l->u.l.n; i++) {
            jv *x = l->u.l.v[i];
            jv *y = attr ? attr_path(s, x, attr) : x;
            int ok = tname_ ? apply_test(s, tname_, y, &B, f) : truthy(y);
            if (ok == want) l_push(s, r, x);
        }
        return r;
    }
    if (!strcmp(name, "int")) {
        jv *dflt = arg(A, 0, "default");
        long long d = dflt ? int_arg(s, dflt, 0) : 0;
        if (v->t == JV_INT) return v;
        if (v->t == JV_BOOL) return v_int(s, v->u.b);
        if (v->t == JV_FLOAT) return isfinite(v->u.f) ? v_int(s, (long long)v->u.f) : v_int(s, d);
        if (v->t == JV_STR) {
            char *t = ja_strndup(&s->a, v->u.s.p, v->u.s.n), *e;
            while (*t && u_isspace((unsigned char)*t)) t++;
            long long x = strtoll(t, &e, 10);
            while (*e && u_isspace((unsigned char)*e)) e++;
            if (e != t && !*e) return v_int(s, x);
            double fx = strtod(t, &e);
            while (*e && u_isspace((unsigned char)*e)) e++;
            if (e != t && !*e && isfinite(fx)) return v_int(s, (long long)fx);
            return v_int(s, d);
        }
        if (v->t == JV_UNDEF) undef_err(s, v);
        return v_int(s, d);
    }
    if (!strcmp(name, "float")) {
        jv *dflt = arg(A, 0, "default");
        if (isnum(v)) return v_float(s, numf(v));
        if (v->t == JV_STR) {
            char *t = ja_strndup(&s->a, v->u.s.p, v->u.s.n), *e;
            double x = strtod(t, &e);
            while (*e && u_isspace((unsigned char)*e)) e++;
            if (e != t && !*e) return v_float(s, x);
        }
        if (v->t == JV_UNDEF) undef_err(s, v);
        return dflt ? dflt : v_float(s, 0.0);
    }
    if (!strcmp(name, "abs")) {
        if (v->t == JV_INT) return v_int(s, v->u.i < 0 ? -v->u.i : v->u.i);
        if (v->t == JV_BOOL) return v_int(s, v->u.b);
        if (v->t == JV_FLOAT) return v_float(s, fabs(v->u.f));
        TERR("bad operand type for abs(): '%s'", tname(v));
    }
    if (!strcmp(name, "round")) {
        long long prec = int_arg(s, arg(A, 0, "precision"), 0);
        jv *meth = arg(A, 1, "method");
        if (!isnum(v)) TERR("type %s doesn't define __round__ method", tname(v));
        double x = numf(v), p10 = pow(10, (double)prec), r;
        const char *mm = meth && meth->t == JV_STR ? ja_strndup(&s->a, meth->u.s.p, meth->u.s.n) : "common";
        if (!strcmp(mm, "common")) {
            if (v->t != JV_FLOAT && prec >= 0) return v->t == JV_BOOL ? v_int(s, v->u.b) : v;
            double y = x * p10;
            r = nearbyint(y);
            if (fabs(y - trunc(y)) != 0.5) r = round(y);
            r /= p10;
        } else if (!strcmp(mm, "ceil")) r = ceil(x * p10) / p10;
        else if (!strcmp(mm, "floor")) r = floor(x * p10) / p10;
        else TERR("method must be common, ceil or floor");
        return v_float(s, r);
    }
    if (!strcmp(name, "indent")) {
        jv *w = arg(A, 0, "width"), *first = arg(A, 1, "first"), *blank = arg(A, 2, "blank");
        if (v->t == JV_UNDEF) undef_err(s, v);
        if (v->t != JV_STR) TERR("can only concatenate %s (not \"str\") to %s", tname(v), tname(v));
        jv *str = v;
        const char *ind = "    ";
        if (w) {
            if (w->t == JV_STR) ind = ja_strndup(&s->a, w->u.s.p, w->u.s.n);
            else {
                long long k = int_arg(s, w, 4);
                if (k < 0) k = 0;
                if (k > 1024) rerr(s, MT_ELIMIT, "indent too wide");
                char *sp = ja_alloc(&s->a, (size_t)k + 1);
                memset(sp, ' ', (size_t)k);
                ind = sp;
            }
        }
        jv *lines = call_method(s, v_str_nocopy(s, ({ jsb t; jsb_init(&t, &s->a, 0); jsb_put(&t, str->u.s.p, str->u.s.n); jsb_putc(&t, '\n'); t.p; }), str->u.s.n + 1), "splitlines", &(args){0}, f);
        jsb b;
        jsb_init(&b, &s->a, s->max_output);
        for (size_t i = 0; i < lines->u.l.n; i++) {
            jv *ln = lines->u.l.v[i];
            if (i) {
                jsb_putc(&b, '\n');
                if (ln->u.s.n || (blank && truthy(blank))) jsb_puts(&b, ind);
            }
            jsb_put(&b, ln->u.s.p, ln->u.s.n);
        }
        if (first && truthy(first)) {
            jsb c;
            jsb_init(&c, &s->a, s->max_output);
            jsb_puts(&c, ind);
            jsb_put(&c, b.p, b.n);
            return v_sb(s, &c);
        }
        return v_sb(s, &b);
    }
    if (!strcmp(name, "wordcount")) {
        jv *str = to_strv(s, v);
        long long k = 0;
        int inw = 0;
        size_t i = 0;
        while (i < str->u.s.n) {
            int32_t c = u8next(str->u.s.p, str->u.s.n, &i);
            int w = u_isalpha(c) || u_isdigit(c) || c == '_';
            if (w && !inw) k++;
            inw = w;
        }
        return v_int(s, k);
    }
    if (!strcmp(name, "center")) return str_pad(s, to_strv(s, v), int_arg(s, arg(A, 0, "width"), 80), NULL, 0);
    if (!strcmp(name, "escape") || !strcmp(name, "e") || !strcmp(name, "forceescape")) {
        jv *str = to_strv(s, v);
        jsb b;
        jsb_init(&b, &s->a, s->max_output);
        for (size_t i = 0; i < str->u.s.n; i++) {
            char c = str->u.s.p[i];
            switch (c) {
            case '&': jsb_puts(&b, "&amp;"); break;
            case '<': jsb_puts(&b, "&lt;"); break;
            case '>': jsb_puts(&b, "&gt;"); break;
            case '"': jsb_puts(&b, "&#34;"); break;
            case '\'': jsb_puts(&b, "&#39;"); break;
            default: jsb_putc(&b, c);
            }
        }
        return v_sb(s, &b);
    }
    if (!strcmp(name, "sum")) {
        jv *attr = arg(A, 0, "attribute"), *start = arg(A, 1, "start");
        jv *l = iter_list(s, v);
        jv *acc = start ? start : v_int(s, 0);
        for (size_t i = 0; i < l->u.l.n; i++) acc = arith(s, OP_ADD, acc, attr ? attr_path(s, l->u.l.v[i], attr) : l->u.l.v[i]);
        return acc;
    }
    if (!strcmp(name, "batch")) {
        long long k = int_arg(s, arg(A, 0, "linecount"), 1);
        jv *fill = arg(A, 1, "fill_with");
        if (k <= 0) TERR("batch size must be positive");
        jv *l = iter_list(s, v), *r = v_list(s, 0), *cur = NULL;
        for (size_t i = 0; i < l->u.l.n; i++) {
            if (!cur || (long long)cur->u.l.n == k) { cur = v_list(s, 0); l_push(s, r, cur); }
            l_push(s, cur, l->u.l.v[i]);
        }
        if (cur && fill)
            while ((long long)cur->u.l.n < k) l_push(s, cur, fill);
        return r;
    }
    if (!strcmp(name, "format")) return arith(s, OP_MOD, to_strv(s, v), ({ jv *t = v_list(s, 0); t->t = JV_TUPLE; for (size_t i = 0; i < A->np; i++) l_push(s, t, A->pos[i]); t; }));
    if (!strcmp(name, "attr")) {
        if (!a0) TERR("attr filter needs a name");
        jv *nm = to_strv(s, a0);
        const char *an = ja_strndup(&s->a, nm->u.s.p, nm->u.s.n);
        if (v->t == JV_UNDEF) return v_undef(s, NULL);
        if (v->t == JV_DICT && !in_list(DICT_METHODS, an) && !in_list(DICT_UNSAFE, an)) return v_undef(s, NULL); /* attributes only */
        return get_attr(s, v, an);
    }
    if (!strcmp(name, "pprint")) {
        jsb b;
        jsb_init(&b, &s->a, s->max_output);
        repr(s, v, &b, 0);
        return v_sb(s, &b);
    }
    if (!strcmp(name, "striptags") || !strcmp(name, "urlencode") || !strcmp(name, "xmlattr") || !strcmp(name, "truncate") ||
        !strcmp(name, "filesizeformat") || !strcmp(name, "urlize") || !strcmp(name, "wordwrap") || !strcmp(name, "slice") ||
        !strcmp(name, "groupby") || !strcmp(name, "random"))
        TERR("filter '%s' is not supported", name);
    (void)seq_of;
    TERR("No filter named '%s'.", name);
}

static int apply_test(S *s, const char *name, jv *v, args *A, jframe *f) {
    (void)f;
    jv *a0 = arg(A, 0, NULL);
    step(s, 1);
    static const char *const unary[] = {"defined", "undefined", "none", "boolean", "false", "true", "integer", "float",
        "number", "string", "mapping", "iterable", "sequence", "callable", "escaped", "lower", "upper", "even", "odd", NULL};
    size_t given = A->np + A->nk, takes = in_list(unary, name) ? 0 : 1;
    if (given > takes) TERR("test_%s() takes %zu positional argument%s but %zu were given", name, takes + 1, takes ? "s" : "", given + 1);
    if (!strcmp(name, "defined")) return v->t != JV_UNDEF;
    if (!strcmp(name, "undefined")) return v->t == JV_UNDEF;
    if (!strcmp(name, "none")) return v->t == JV_NONE;
    if (!strcmp(name, "string")) return v->t == JV_STR;
    if (!strcmp(name, "number")) return isnum(v);
    if (!strcmp(name, "integer")) return v->t == JV_INT;
    if (!strcmp(name, "float")) return v->t == JV_FLOAT;
    if (!strcmp(name, "boolean")) return v->t == JV_BOOL;
    if (!strcmp(name, "true")) return v->t == JV_BOOL && v->u.b;
    if (!strcmp(name, "false")) return v->t == JV_BOOL && !v->u.b;
    if (!strcmp(name, "mapping")) return v->t == JV_DICT;
    if (!strcmp(name, "iterable")) return v->t == JV_STR || v->t == JV_LIST || v->t == JV_TUPLE || v->t == JV_DICT || v->t == JV_UNDEF;
    if (!strcmp(name, "sequence")) return (v->t == JV_LIST && v->u.l.view == 4) ? 0 : v->t == JV_STR || v->t == JV_LIST || v->t == JV_TUPLE || v->t == JV_DICT || v->t == JV_UNDEF;
    if (!strcmp(name, "callable")) return v->t == JV_MACRO || v->t == JV_FUNC || v->t == JV_UNDEF;
    if (!strcmp(name, "escaped")) return 0;
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        args none = {0};
        return truthy(call_method(s, to_strv(s, v), name[0] == 'l' ? "islower" : "isupper", &none, f));
    }
    if (!strcmp(name, "even") || !strcmp(name, "odd")) {
        if (v->t != JV_INT && v->t != JV_BOOL) {
            if (v->t == JV_FLOAT) return fmod(v->u.f, 2) == (name[0] == 'e' ? 0 : 1);
            TERR("unsupported operand type(s) for %%: '%s' and 'int'", tname(v));
        }
        long long x = numi(v) % 2;
        return name[0] == 'e' ? x == 0 : x != 0;
    }
    if (!strcmp(name, "divisibleby")) {
        if (!a0) TERR("divisibleby needs an argument");
        return numi(arith(s, OP_MOD, v, a0)) == 0 && numf(arith(s, OP_MOD, v, a0)) == 0;
    }
    if (!a0 && (!strcmp(name, "in") || !strcmp(name, "sameas") || !strcmp(name, "eq") || !strcmp(name, "equalto") ||
                !strcmp(name, "==") || !strcmp(name, "ne") || !strcmp(name, "!=") || !strcmp(name, "lt") ||
                !strcmp(name, "le") || !strcmp(name, "gt") || !strcmp(name, "ge") || !strcmp(name, "<") ||
                !strcmp(name, "<=") || !strcmp(name, ">") || !strcmp(name, ">=") || !strcmp(name, "lessthan") ||
                !strcmp(name, "greaterthan")))
        TERR("test '%s' needs an argument", name);
    if (!strcmp(name, "in")) return contains(s, a0, v);
    if (!strcmp(name, "sameas")) {
        if (v->t != a0->t) return 0;
        if (v->t == JV_NONE || v->t == JV_UNDEF) return 1;
        if (v->t == JV_BOOL) return v->u.b == a0->u.b;
        return v == a0;
    }
    if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==")) return veq(v, a0);
    if (!strcmp(name, "ne") || !strcmp(name, "!=")) return !veq(v, a0);
    if (!strcmp(name, "lt") || !strcmp(name, "<") || !strcmp(name, "lessthan")) return vcmp(s, v, a0) < 0;
    if (!strcmp(name, "le") || !strcmp(name, "<=")) return vcmp(s, v, a0) <= 0;
    if (!strcmp(name, "gt") || !strcmp(name, ">") || !strcmp(name, "greaterthan")) return vcmp(s, v, a0) > 0;
    if (!strcmp(name, "ge") || !strcmp(name, ">=")) return vcmp(s, v, a0) >= 0;
    if (!strcmp(name, "filter") || !strcmp(name, "test")) return 0;
    TERR("No test named '%s'.", name);
}

static jv *eval_node(S *s, jnode *n, jframe *f);
/* Every C-level recursion (expressions, bodies, macro calls) passes here or through
 * exec_body, so a bounded counter keeps the C stack bounded whatever the template. */
static jv *eval(S *s, jnode *n, jframe *f) {
    if (++s->rdepth > JX_MAX_RECURSION) rerr(s, MT_ELIMIT, "template nesting too deep");
    jv *r = eval_node(s, n, f);
    s->rdepth--;
    return r;
}

static jv *eval_node(S *s, jnode *n, jframe *f) {
    step(s, 1);
    s->line = n->line;
    switch (n->kind) {
    case N_CONST: return n->val;
    case N_NAME: {
        jv *v = fr_get(f, n->name);
        return v ? v : v_undef(s, n->name);
    }
    case N_ATTR: {
        jv *o = eval(s, n->a, f);
        s->line = n->line;
        if (o->t == JV_UNDEF) undef_err(s, o);
        jv *r = get_attr(s, o, n->name);
        if (r->t == JV_UNDEF && !r->u.s.p) {
            jsb b;
            jsb_init(&b, &s->a, 0);
            jsb_printf(&b, "'%s object' has no attribute '%s'", tname(o), n->name);
            r->u.s.p = b.p; /* message for later use */
            r->u.s.n = 1;
        }
        return r;
    }
    case N_ITEM: {
        jv *o = eval(s, n->a, f);
        jv *k = eval(s, n->b, f);
        s->line = n->line;
        jv *r = get_item(s, o, k);
        if (r->t == JV_UNDEF && !r->u.s.p) {
            jsb b;
            jsb_init(&b, &s->a, 0);
            jsb_printf(&b, "'%s object' has no attribute ", tname(o));
            repr(s, k, &b, 0);
            r->u.s.p = b.p;
            r->u.s.n = 1;
        }
        return r;
    }
    case N_SLICE: {
        jv *o = eval(s, n->a, f);
        jv *a = n->b ? eval(s, n->b, f) : NULL, *b = n->c ? eval(s, n->c, f) : NULL, *c = n->d ? eval(s, n->d, f) : NULL;
        s->line = n->line;
        return do_slice(s, o, a, b, c);
    }
    case N_CALL: {
        jv *fn = eval(s, n->a, f);
        args A;
        eval_args(s, n, f, &A, NULL);
        s->line = n->line;
        return call_value(s, fn, &A, f);
    }
    case N_FILTER: {
        jv *v = eval(s, n->a, f);
        args A;
        eval_args(s, n, f, &A, NULL);
        s->line = n->line;
        return apply_filter(s, n->name, v, &A, f);
    }
    case N_TEST: {
        jv *v = eval(s, n->a, f);
        args A;
        eval_args(s, n, f, &A, NULL);
        s->line = n->line;
        int r = apply_test(s, n->name, v, &A, f);
        return v_bool(s, n->op ? !r : r);
    }
    case N_BIN: {
        jv *a = eval(s, n->a, f), *b = eval(s, n->b, f);
        s->line = n->line;
        switch (n->op) {
        case OP_EQ: return v_bool(s, veq(a, b));
        case OP_NE: return v_bool(s, !veq(a, b));
        case OP_LT: return v_bool(s, vcmp(s, a, b) < 0);
        case OP_LE: return v_bool(s, vcmp(s, a, b) <= 0);
        case OP_GT: return v_bool(s, vcmp(s, a, b) > 0);
        case OP_GE: return v_bool(s, vcmp(s, a, b) >= 0);
        case OP_IN: return v_bool(s, contains(s, b, a));
        case OP_NOTIN: return v_bool(s, !contains(s, b, a));
        default: return arith(s, n->op, a, b);
        }
    }
    case N_NEG: case N_POS: {
        jv *a = eval(s, n->a, f);
        s->line = n->line;
        if (a->t == JV_UNDEF) undef_err(s, a);
        if (!isnum(a)) TERR("bad operand type for unary %c: '%s'", n->kind == N_NEG ? '-' : '+', tname(a));
        if (n->kind == N_POS) return a->t == JV_BOOL ? v_int(s, a->u.b) : a;
        if (a->t == JV_FLOAT) return v_float(s, -a->u.f);
        if (numi(a) == INT64_MIN) TERR("integer overflow");
        return v_int(s, -numi(a));
    }
    case N_NOT: return v_bool(s, !truthy(eval(s, n->a, f)));
    case N_AND: {
        jv *a = eval(s, n->a, f);
        return truthy(a) ? eval(s, n->b, f) : a;
    }
    case N_OR: {
        jv *a = eval(s, n->a, f);
        return truthy(a) ? a : eval(s, n->b, f);
    }
    case N_CONCAT: {
        jsb b;
        jsb_init(&b, &s->a, s->max_output);
        b.line = n->line;
        for (int i = 0; i < n->nv; i++) str_of(s, eval(s, n->v[i], f), &b);
        return v_sb(s, &b);
    }
    case N_COND: {
        if (truthy(eval(s, n->a, f))) return eval(s, n->b, f);
        return n->c ? eval(s, n->c, f) : v_undef(s, NULL);
    }
    case N_LIST: case N_TUPLE: {
        jv *l = v_list(s, (size_t)n->nv);
        if (n->kind == N_TUPLE) l->t = JV_TUPLE;
        for (int i = 0; i < n->nv; i++) l->u.l.v[l->u.l.n++] = eval(s, n->v[i], f);
        return l;
    }
    case N_DICT: {
        jv *d = v_dict(s);
        for (int i = 0; i < n->nv; i++) {
            jv *k = eval(s, n->v[i], f);
            if (k->t == JV_LIST || k->t == JV_DICT || k->t == JV_NS) TERR("unhashable type: '%s'", tname(k));
            d_set(s, d, k, eval(s, n->w[i], f));
        }
        return d;
    }
    default: TERR("cannot evaluate node");
    }
}

static void out_put(S *s, const char *p, size_t n) {
    s->out->line = s->line;
    jsb_put(s->out, p, n);
}

static jv *apply_filter_chain(S *s, jnode *chain, jv *v, jframe *f) {
    if (!chain) return v;
    v = apply_filter_chain(s, chain->a, v, f);
    args A;
    eval_args(s, chain, f, &A, NULL);
    s->line = chain->line;
    return apply_filter(s, chain->name, v, &A, f);
}

static jv *capture(S *s, jnode *body, jframe *f) {
    jsb *saved = s->out, buf;
    jsb_init(&buf, &s->a, s->max_output);
    s->out = &buf;
    exec_body(s, body, f);
    s->out = saved;
    return v_sb(s, &buf);
}

static void exec_stmt(S *s, jnode *n, jframe *f) {
    step(s, 1);
    s->line = n->line;
    switch (n->kind) {
    case N_TEXT: out_put(s, n->text, n->tlen); return;
    case N_OUT: {
        jv *v = eval(s, n->a, f);
        if (v->t == JV_STR) out_put(s, v->u.s.p, v->u.s.n);
        else if (v->t != JV_UNDEF) {
            s->out->line = n->line;
            str_of(s, v, s->out);
        }
        return;
    }
    case N_IF:
        for (int i = 0; i < n->nv; i++)
            if (truthy(eval(s, n->v[i], f))) { exec_body(s, n->w[i], f); return; }
        if (n->a) exec_body(s, n->a, f);
        return;
    case N_FOR: {
        jv *src = eval(s, n->b, f);
        s->line = n->line;
        jv *items = iter_list(s, src);
        if (n->c) {
            jv *kept = v_list(s, 0);
            for (size_t i = 0; i < items->u.l.n; i++) {
                step(s, 1);
                jframe *lf = fr_new(s, f);
                assign(s, lf, n->a, items->u.l.v[i]);
                if (truthy(eval(s, n->c, lf))) l_push(s, kept, items->u.l.v[i]);
            }
            items = kept;
        }
        size_t cnt = items->u.l.n;
        if (!cnt) {
            if (n->d) exec_body(s, n->d, f);
            return;
        }
        jv **arr = ja_alloc(&s->a, cnt * sizeof *arr);
        memcpy(arr, items->u.l.v, cnt * sizeof *arr);
        for (size_t i = 0; i < cnt; i++) {
            step(s, 1);
            jframe *lf = fr_new(s, f);
            jv *lp = nv(s, JV_LOOP);
            lp->u.lp.items = arr;
            lp->u.lp.n = cnt;
            lp->u.lp.idx = i;
            fr_set(s, lf, "loop", lp);
            s->line = n->line;
            assign(s, lf, n->a, arr[i]);
            exec_body(s, n->v[0], lf);
            if (s->brk == 1) { s->brk = 0; break; }
            s->brk = 0;
        }
        return;
    }
    case N_SET: {
        jv *v = eval(s, n->b, f);
        s->line = n->line;
        assign(s, f, n->a, v);
        return;
    }
    case N_SETBLOCK: {
        jv *v = capture(s, n->b, f);
        v = apply_filter_chain(s, n->c, v, f);
        assign(s, f, n->a, v);
        return;
    }
    case N_MACRO: {
        jv *m = nv(s, JV_MACRO);
        m->u.m.def = n;
        m->u.m.scope = f;
        fr_set(s, f, n->name, m);
        return;
    }
    case N_CALLBLOCK: {
        jv *caller = nv(s, JV_MACRO);
        caller->u.m.def = n->a;
        caller->u.m.scope = f;
        jnode *call = n->b;
        jv *fn = eval(s, call->a, f);
        args A;
        eval_args(s, call, f, &A, NULL);
        s->line = n->line;
        jv *r;
        if (fn->t == JV_MACRO) r = call_macro(s, fn, &A, caller);
        else r = call_value(s, fn, &A, f);
        str_of(s, r, s->out);
        return;
    }
    case N_FILTERBLOCK: {
        jv *v = capture(s, n->a, f);
        v = apply_filter_chain(s, n->c, v, f);
        str_of(s, v, s->out);
        return;
    }
    case N_BREAK: s->brk = 1; return;
    case N_CONTINUE: s->brk = 2; return;
    case N_WITH: {
        jframe *wf = fr_new(s, f);
        for (int i = 0; i < n->nv; i++) assign(s, wf, n->v[i], eval(s, n->w[i], f));
        exec_body(s, n->a, wf);
        return;
    }
    case N_GEN: exec_body(s, n->a, f); return;
    case N_BODY: exec_body(s, n, f); return;
    default: TERR("unknown statement");
    }
}

static void exec_body(S *s, jnode *b, jframe *f) {
    if (++s->rdepth > JX_MAX_RECURSION) rerr(s, MT_ELIMIT, "template nesting too deep");
    for (int i = 0; i < b->nv && !s->brk; i++) exec_stmt(s, b->v[i], f);
    s->rdepth--;
}

/* ---------------- public API ---------------- */
int mt_jinja_parse(mt_jinja_tmpl **out, const char *src, size_t len, mt_err *err_) {
    *out = NULL;
    mt_err local;
    mt_err *volatile err = err_ ? err_ : &local;
    mt_jinja_tmpl *t = calloc(1, sizeof *t);
    if (!t) return mt_seterr(err, MT_ENOMEM, "out of memory");
    jmp_buf jb;
    t->a.err = err;
    t->a.jb = &jb;
    t->a.limit = (size_t)1 << 30;
    if (setjmp(jb)) {
        ja_free_all(&t->a);
        free(t);
        return err->code;
    }
    t->root = jx_parse(&t->a, src ? src : "", src ? len : 0, err);
    if (!t->root) {
        ja_free_all(&t->a);
        free(t);
        return err->code ? err->code : MT_EFORMAT;
    }
    t->a.jb = NULL;
    *out = t;
    return MT_OK;
}

void mt_jinja_free(mt_jinja_tmpl *t) {
    if (!t) return;
    ja_free_all(&t->a);
    free(t);
}

int mt_jinja_render(const mt_jinja_tmpl *t, json_t *ctx, const mt_jinja_limits *lim, long long now_epoch,
                    char **out, size_t *len, mt_err *err_) {
    *out = NULL;
    if (len) *len = 0;
    mt_err local;
    mt_err *volatile err = err_ ? err_ : &local;
    if (ctx && !json_is_object(ctx)) return mt_seterr(err, MT_EINVAL, "template context must be a JSON object");
    S *s = calloc(1, sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    s->err = err;
    s->max_output = lim && lim->max_output ? lim->max_output : (size_t)16 << 20;
    s->max_steps = lim && lim->max_steps ? lim->max_steps : 10000000;
    s->max_depth = lim && lim->max_depth ? lim->max_depth : 64;
    s->now = now_epoch;
    s->a.err = err;
    s->a.jb = &s->jb;
    s->a.limit = s->max_output * 16 + ((size_t)64 << 20);
    s->line = 1;
    if (setjmp(s->jb)) {
        int code = err->code ? err->code : MT_EINVAL;
        ja_free_all(&s->a);
        free(s);
        return code;
    }
    s->none = nv(s, JV_NONE);
    s->t = nv(s, JV_BOOL);
    s->t->u.b = 1;
    s->f = nv(s, JV_BOOL);
    jframe *g = fr_new(s, NULL);
    fr_set(s, g, "range", v_func(s, F_RANGE, NULL, "range"));
    fr_set(s, g, "namespace", v_func(s, F_NAMESPACE, NULL, "namespace"));
    fr_set(s, g, "dict", v_func(s, F_DICT, NULL, "dict"));
    fr_set(s, g, "raise_exception", v_func(s, F_RAISE, NULL, "raise_exception"));
    fr_set(s, g, "strftime_now", v_func(s, F_STRFTIME, NULL, "strftime_now"));
    jframe *c = fr_new(s, g);
    if (ctx) {
        const char *k;
        json_t *x;
        json_object_foreach(ctx, k, x) fr_set(s, c, ja_strndup(&s->a, k, strlen(k)), from_json(s, x, 0));
    }
    jframe *top = fr_new(s, c);
    jsb o;
    jsb_init(&o, &s->a, s->max_output);
    s->out = &o;
    exec_body(s, t->root, top);
    char *r = malloc(o.n + 1);
    if (!r) {
        ja_free_all(&s->a);
        free(s);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    if (o.n) memcpy(r, o.p, o.n);
    r[o.n] = 0;
    *out = r;
    if (len) *len = o.n;
    ja_free_all(&s->a);
    free(s);
    return MT_OK;
}
