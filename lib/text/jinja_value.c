/* jinja_value.c - the evaluator's value model.  Raising template errors
 * (jt_rerr) and counting steps; constructing values in the render arena
 * (numbers, strings, lists, tuples, dicts, builtin functions) and the
 * insertion-ordered dict operations; converting the JSON context into values;
 * the UTF-8 walk and Unicode character classes Python's str methods use;
 * Python's str() and repr() of every value (shortest round-trip floats,
 * quoting and escaping of strings); and truthiness, equality and ordering with
 * Python's rules for mixed int/float/bool and nested sequences. */
#include "text/jinja_eval_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

_Noreturn void jt_rerr(S *s, int code, const char *fmt, ...) {
    char m[440];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    mt_seterr(s->err, code, "template line %d: %s", s->line, m);
    longjmp(s->jb, 1);
}

void jt_step(S *s, size_t k) {
    s->steps += k;
    if (s->steps > s->max_steps) jt_rerr(s, MT_ELIMIT, "step limit exceeded (%zu)", s->max_steps);
}

/* ---------------- value constructors ---------------- */
jv *jt_nv(S *s, jv_type t) {
    jv *v = ja_alloc(&s->a, sizeof *v);
    v->t = t;
    return v;
}
jv *jt_v_int(S *s, long long i) { jv *v = jt_nv(s, JV_INT); v->u.i = i; return v; }
jv *jt_v_float(S *s, double f) { jv *v = jt_nv(s, JV_FLOAT); v->u.f = f; return v; }
jv *jt_v_bool(S *s, int b) { return b ? s->t : s->f; }
jv *jt_v_strn(S *s, const char *p, size_t n) {
    jv *v = jt_nv(s, JV_STR);
    v->u.s.p = ja_strndup(&s->a, p, n);
    v->u.s.n = n;
    return v;
}
jv *jt_v_str_nocopy(S *s, const char *p, size_t n) { jv *v = jt_nv(s, JV_STR); v->u.s.p = p ? p : ""; v->u.s.n = n; return v; }
jv *jt_v_cstr(S *s, const char *p) { return jt_v_strn(s, p, strlen(p)); }
jv *jt_v_sb(S *s, jsb *b) { return jt_v_str_nocopy(s, b->p, b->n); }
jv *jt_v_undef(S *s, const char *name) { jv *v = jt_nv(s, JV_UNDEF); v->u.s.p = name; return v; }
jv *jt_v_list(S *s, size_t cap) {
    jv *v = jt_nv(s, JV_LIST);
    if (cap) v->u.l.v = ja_alloc(&s->a, cap * sizeof(jv *));
    v->u.l.cap = cap;
    return v;
}
void jt_l_push(S *s, jv *l, jv *x) {
    if (l->u.l.n == l->u.l.cap) {
        size_t nc = l->u.l.cap ? l->u.l.cap * 2 : 4;
        jv **nvv = ja_alloc(&s->a, nc * sizeof *nvv);
        if (l->u.l.n) memcpy(nvv, l->u.l.v, l->u.l.n * sizeof *nvv);
        l->u.l.v = nvv;
        l->u.l.cap = nc;
    }
    l->u.l.v[l->u.l.n++] = x;
}
jv *jt_v_dict(S *s) { return jt_nv(s, JV_DICT); }
jv *jt_v_tuple2(S *s, jv *a, jv *b) {
    jv *t = jt_v_list(s, 2);
    t->t = JV_TUPLE;
    t->u.l.v[0] = a;
    t->u.l.v[1] = b;
    t->u.l.n = 2;
    return t;
}
jv *jt_v_func(S *s, int id, jv *self, const char *name) {
    jv *v = jt_nv(s, JV_FUNC);
    v->u.fn.id = id;
    v->u.fn.self = self;
    v->u.fn.name = name;
    return v;
}

jv *jt_d_get(jv *d, jv *k) {
    for (size_t i = 0; i < d->u.d.n; i++)
        if (jt_veq(d->u.d.k[i], k)) return d->u.d.v[i];
    return NULL;
}
jv *jt_d_gets(jv *d, const char *k, size_t n) {
    for (size_t i = 0; i < d->u.d.n; i++) {
        jv *x = d->u.d.k[i];
        if (x->t == JV_STR && x->u.s.n == n && memcmp(x->u.s.p, k, n) == 0) return d->u.d.v[i];
    }
    return NULL;
}
void jt_d_set(S *s, jv *d, jv *k, jv *v) {
    for (size_t i = 0; i < d->u.d.n; i++)
        if (jt_veq(d->u.d.k[i], k)) { d->u.d.v[i] = v; return; }
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
jv *jt_from_json(S *s, json_t *j, int depth) {
    if (depth > 200) jt_rerr(s, MT_ELIMIT, "context nested too deeply");
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        jv *d = jt_v_dict(s);
        const char *k;
        json_t *x;
        json_object_foreach(j, k, x) jt_d_set(s, d, jt_v_cstr(s, k), jt_from_json(s, x, depth + 1));
        return d;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        jv *l = jt_v_list(s, n);
        for (size_t i = 0; i < n; i++) l->u.l.v[i] = jt_from_json(s, json_array_get(j, i), depth + 1);
        l->u.l.n = n;
        return l;
    }
    case JSON_STRING: return jt_v_strn(s, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return jt_v_int(s, json_integer_value(j));
    case JSON_REAL: return jt_v_float(s, json_real_value(j));
    case JSON_TRUE: return s->t;
    case JSON_FALSE: return s->f;
    default: return s->none;
    }
}

/* ---------------- UTF-8 helpers ---------------- */
int32_t jt_u8next(const char *p, size_t n, size_t *i) {
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
void jt_u8put(jsb *b, int32_t cp) {
    char u[4];
    if (cp >= 0xDC80 && cp <= 0xDCFF) { u[0] = (char)(cp - 0xDC00); jsb_put(b, u, 1); return; }
    if (cp < 0x80) { u[0] = (char)cp; jsb_put(b, u, 1); }
    else if (cp < 0x800) { u[0] = (char)(0xC0 | (cp >> 6)); u[1] = (char)(0x80 | (cp & 63)); jsb_put(b, u, 2); }
    else if (cp < 0x10000) { u[0] = (char)(0xE0 | (cp >> 12)); u[1] = (char)(0x80 | ((cp >> 6) & 63)); u[2] = (char)(0x80 | (cp & 63)); jsb_put(b, u, 3); }
    else { u[0] = (char)(0xF0 | (cp >> 18)); u[1] = (char)(0x80 | ((cp >> 12) & 63)); u[2] = (char)(0x80 | ((cp >> 6) & 63)); u[3] = (char)(0x80 | (cp & 63)); jsb_put(b, u, 4); }
}
size_t jt_u8len(const char *p, size_t n) {
    size_t i = 0, k = 0;
    while (i < n) { jt_u8next(p, n, &i); k++; }
    return k;
}
/* byte offsets of each codepoint (n+1 entries) */
size_t *jt_u8offs(S *s, const char *p, size_t n, size_t *cnt) {
    size_t c = jt_u8len(p, n);
    size_t *o = ja_alloc(&s->a, (c + 1) * sizeof *o);
    size_t i = 0, k = 0;
    while (i < n) { o[k++] = i; jt_u8next(p, n, &i); }
    o[k] = n;
    *cnt = c;
    return o;
}
int jt_u_isspace(int32_t c) {
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
int jt_u_isalpha(int32_t c) {
    if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (c >= 0xD800 && c <= 0xDFFF) return 0;
    utf8proc_category_t k = utf8proc_category(c);
    return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}
int jt_u_isdigit(int32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    if (c >= 0xD800 && c <= 0xDFFF) return 0;
    return utf8proc_category(c) == UTF8PROC_CATEGORY_ND;
}
int jt_u_iscased_upper(int32_t c) { return u_lower(c) != c; }
int jt_u_iscased_lower(int32_t c) { return u_upper(c) != c; }

/* ---------------- str / repr ---------------- */
void jt_fmt_float(double x, char *out, size_t cap) {
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

void jt_str_of(S *s, jv *v, jsb *b) {
    switch (v->t) {
    case JV_UNDEF: return;
    case JV_STR: jsb_put(b, v->u.s.p, v->u.s.n); return;
    default: jt_repr(s, v, b, 0);
    }
}
static void repr_str(jsb *b, const char *p, size_t n) {
    int has_sq = memchr(p, '\'', n) != NULL, has_dq = memchr(p, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    jsb_putc(b, q);
    size_t i = 0;
    while (i < n) {
        size_t st = i;
        int32_t c = jt_u8next(p, n, &i);
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
void jt_repr(S *s, jv *v, jsb *b, int depth) {
    if (depth > 200) jt_rerr(s, MT_ELIMIT, "value nested too deeply");
    char tmp[64];
    switch (v->t) {
    case JV_UNDEF: jsb_puts(b, "Undefined"); return; /* repr(Undefined); str() of it is empty */
    case JV_NONE: jsb_puts(b, "None"); return;
    case JV_BOOL: jsb_puts(b, v->u.b ? "True" : "False"); return;
    case JV_INT: jsb_printf(b, "%lld", v->u.i); return;
    case JV_FLOAT: jt_fmt_float(v->u.f, tmp, sizeof tmp); jsb_puts(b, tmp); return;
    case JV_STR: repr_str(b, v->u.s.p, v->u.s.n); return;
    case JV_LIST: case JV_TUPLE:
        if (v->u.l.view == 4) { jsb_puts(b, "<generator object>"); return; }
        if (v->u.l.view) jsb_puts(b, v->u.l.view == 1 ? "dict_items(" : v->u.l.view == 2 ? "dict_keys(" : "dict_values(");
        jsb_putc(b, v->t == JV_LIST ? '[' : '(');
        for (size_t i = 0; i < v->u.l.n; i++) {
            if (i) jsb_puts(b, ", ");
            jt_repr(s, v->u.l.v[i], b, depth + 1);
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
            jt_repr(s, v->u.d.k[i], b, depth + 1);
            jsb_puts(b, ": ");
            jt_repr(s, v->u.d.v[i], b, depth + 1);
        }
        jsb_putc(b, '}');
        if (v->t == JV_NS) jsb_putc(b, '>');
        return;
    case JV_MACRO: jsb_printf(b, "<Macro '%s'>", v->u.m.def->name ? v->u.m.def->name : "caller"); return;
    case JV_FUNC: jsb_printf(b, "<built-in method %s>", v->u.fn.name ? v->u.fn.name : "?"); return;
    case JV_LOOP: jsb_puts(b, "<LoopContext>"); return;
    }
}
jv *jt_to_strv(S *s, jv *v) {
    if (v->t == JV_STR) return v;
    jsb b;
    jsb_init(&b, &s->a, 0);
    jt_str_of(s, v, &b);
    return jt_v_sb(s, &b);
}

const char *jt_tname(jv *v) {
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

_Noreturn void jt_undef_err(S *s, jv *u) {
    if (u->u.s.p && u->u.s.n == 1) TERR("%s", u->u.s.p);
    if (u->u.s.p) TERR("'%s' is undefined", u->u.s.p);
    TERR("value is undefined");
}

/* ---------------- truth / equality / ordering ---------------- */
int jt_truthy(jv *v) {
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
int jt_isnum(jv *v) { return v->t == JV_INT || v->t == JV_FLOAT || v->t == JV_BOOL; }
double jt_numf(jv *v) { return v->t == JV_FLOAT ? v->u.f : v->t == JV_INT ? (double)v->u.i : (double)v->u.b; }
long long jt_numi(jv *v) { return v->t == JV_INT ? v->u.i : v->u.b; }

static int veq_(jv *a, jv *b, int depth);
int jt_veq(jv *a, jv *b) { return veq_(a, b, 0); }
/* Deeper than this, values compare unequal (Python would hit its recursion limit). */
static int veq_(jv *a, jv *b, int depth) {
    if (depth > 500) return 0;
    if (jt_isnum(a) && jt_isnum(b)) {
        if (a->t == JV_FLOAT || b->t == JV_FLOAT) return jt_numf(a) == jt_numf(b);
        return jt_numi(a) == jt_numi(b);
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
            jv *o = jt_d_get(b, a->u.d.k[i]);
            if (!o || !veq_(a->u.d.v[i], o, depth + 1)) return 0;
        }
        return 1;
    default: return a == b;
    }
}

static int vcmp_(S *s, jv *a, jv *b, int depth);
int jt_vcmp(S *s, jv *a, jv *b) { return vcmp_(s, a, b, 0); }
static int vcmp_(S *s, jv *a, jv *b, int depth) {
    if (depth > 500) jt_rerr(s, MT_ELIMIT, "maximum recursion depth exceeded in comparison");
    if (jt_isnum(a) && jt_isnum(b)) {
        if (a->t == JV_FLOAT || b->t == JV_FLOAT) {
            double x = jt_numf(a), y = jt_numf(b);
            return x < y ? -1 : x > y ? 1 : 0;
        }
        long long x = jt_numi(a), y = jt_numi(b);
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
            if (jt_veq(a->u.l.v[i], b->u.l.v[i])) continue;
            return vcmp_(s, a->u.l.v[i], b->u.l.v[i], depth + 1);
        }
        return a->u.l.n < b->u.l.n ? -1 : a->u.l.n > b->u.l.n ? 1 : 0;
    }
    if (a->t == JV_UNDEF) jt_undef_err(s, a);
    if (b->t == JV_UNDEF) jt_undef_err(s, b);
    TERR("'<' not supported between instances of '%s' and '%s'", jt_tname(a), jt_tname(b));
}
