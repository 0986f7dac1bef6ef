/* jinja_ops.c - the operators the evaluator applies to values: attribute
 * lookup (the method names each type exposes, the sandbox's unsafe mutating
 * methods, loop.* attributes), subscripting of dicts, lists, tuples and
 * strings (by code point), Python slicing with negative indices and steps,
 * turning any iterable into a list (including one-shot generators), len(),
 * the `in` test, and arithmetic: + - * / // % ** with Python's int/float
 * semantics and overflow checks, sequence concatenation and repetition, and
 * printf-style `str % args` formatting. */
#include "text/jinja_eval_int.h"

#include <math.h>
#include <string.h>

/* ---------------- attribute / item access ---------------- */
static const char *const STR_METHODS[] = {"strip", "lstrip", "rstrip", "split", "rsplit", "startswith", "endswith",
    "replace", "upper", "lower", "title", "capitalize", "find", "rfind", "index", "rindex", "count", "join", "splitlines",
    "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower", "isnumeric", "isdecimal", "format", "center",
    "ljust", "rjust", "zfill", "partition", "rpartition", "removeprefix", "removesuffix", "swapcase", "casefold",
    "istitle", "expandtabs", NULL};
const char *const jt_DICT_METHODS[] = {"get", "items", "keys", "values", "copy", NULL};
const char *const jt_DICT_UNSAFE[] = {"pop", "popitem", "setdefault", "update", "clear", "fromkeys", NULL};
static const char *const LIST_METHODS[] = {"index", "count", "copy", NULL};
static const char *const LIST_UNSAFE[] = {"append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear", NULL};

const char *jt_in_list(const char *const *l, const char *name) {
    for (int i = 0; l[i]; i++)
        if (!strcmp(l[i], name)) return l[i];
    return NULL;
}

static jv *loop_attr(S *s, jv *lp, const char *name) {
    size_t i = lp->u.lp.idx, n = lp->u.lp.n;
    if (!strcmp(name, "index")) return jt_v_int(s, (long long)i + 1);
    if (!strcmp(name, "index0")) return jt_v_int(s, (long long)i);
    if (!strcmp(name, "revindex")) return jt_v_int(s, (long long)(n - i));
    if (!strcmp(name, "revindex0")) return jt_v_int(s, (long long)(n - i - 1));
    if (!strcmp(name, "first")) return jt_v_bool(s, i == 0);
    if (!strcmp(name, "last")) return jt_v_bool(s, i + 1 == n);
    if (!strcmp(name, "length")) return jt_v_int(s, (long long)n);
    if (!strcmp(name, "depth")) return jt_v_int(s, 1);
    if (!strcmp(name, "depth0")) return jt_v_int(s, 0);
    if (!strcmp(name, "previtem")) return i > 0 ? lp->u.lp.items[i - 1] : jt_v_undef(s, "previtem");
    if (!strcmp(name, "nextitem")) return i + 1 < n ? lp->u.lp.items[i + 1] : jt_v_undef(s, "nextitem");
    if (!strcmp(name, "cycle")) return jt_v_func(s, F_CYCLE, lp, "cycle");
    return jt_v_undef(s, NULL);
}

jv *jt_get_attr(S *s, jv *o, const char *name) {
    const char *m;
    switch (o->t) {
    case JV_UNDEF: jt_undef_err(s, o);
    case JV_DICT: {
        if ((m = jt_in_list(jt_DICT_METHODS, name))) return jt_v_func(s, F_METHOD, o, m);
        if ((m = jt_in_list(jt_DICT_UNSAFE, name))) return jt_v_func(s, F_UNSAFE, o, m);
        jv *x = jt_d_gets(o, name, strlen(name));
        return x ? x : jt_v_undef(s, NULL);
    }
    case JV_NS: {
        jv *x = jt_d_gets(o, name, strlen(name));
        return x ? x : jt_v_undef(s, NULL);
    }
    case JV_STR:
        if ((m = jt_in_list(STR_METHODS, name))) return jt_v_func(s, F_METHOD, o, m);
        return jt_v_undef(s, NULL);
    case JV_LIST: case JV_TUPLE:
        if ((m = jt_in_list(LIST_METHODS, name))) return jt_v_func(s, F_METHOD, o, m);
        if (o->t == JV_LIST && (m = jt_in_list(LIST_UNSAFE, name))) return jt_v_func(s, F_UNSAFE, o, m);
        return jt_v_undef(s, NULL);
    case JV_LOOP: return loop_attr(s, o, name);
    default: return jt_v_undef(s, NULL);
    }
}

jv *jt_get_item(S *s, jv *o, jv *k) {
    if (o->t == JV_LIST && o->u.l.view == 4) return jt_v_undef(s, NULL); /* generators are not subscriptable */
    switch (o->t) {
    case JV_UNDEF: jt_undef_err(s, o);
    case JV_DICT: {
        jv *x = jt_d_get(o, k);
        if (x) return x;
        break;
    }
    case JV_LIST: case JV_TUPLE: case JV_STR:
        if (k->t == JV_INT || k->t == JV_BOOL) {
            long long i = jt_numi(k);
            if (o->t == JV_STR) {
                size_t cnt;
                size_t *off = jt_u8offs(s, o->u.s.p, o->u.s.n, &cnt);
                if (i < 0) i += (long long)cnt;
                if (i < 0 || i >= (long long)cnt) return jt_v_undef(s, NULL);
                return jt_v_strn(s, o->u.s.p + off[i], off[i + 1] - off[i]);
            }
            if (i < 0) i += (long long)o->u.l.n;
            if (i < 0 || i >= (long long)o->u.l.n) return jt_v_undef(s, NULL);
            return o->u.l.v[i];
        }
        break;
    default: break;
    }
    if (k->t == JV_STR) return jt_get_attr(s, o, ja_strndup(&s->a, k->u.s.p, k->u.s.n));
    return jt_v_undef(s, NULL);
}

static long long clampi(long long v, long long lo, long long hi) { return v < lo ? lo : v > hi ? hi : v; }

jv *jt_do_slice(S *s, jv *o, jv *a, jv *b, jv *c) {
    long long step = 1;
    if (c && c->t != JV_NONE) {
        if (c->t != JV_INT && c->t != JV_BOOL) TERR("slice indices must be integers or None");
        step = jt_numi(c);
        if (step == 0) TERR("slice step cannot be zero");
    }
    size_t *off = NULL, cnt;
    if (o->t == JV_STR) off = jt_u8offs(s, o->u.s.p, o->u.s.n, &cnt);
    else if (o->t == JV_LIST || o->t == JV_TUPLE) cnt = o->u.l.n;
    else if (o->t == JV_UNDEF) jt_undef_err(s, o);
    else TERR("'%s' object is not subscriptable", jt_tname(o));
    long long n = (long long)cnt, start, stop;
    if (a && a->t != JV_NONE) {
        if (a->t != JV_INT && a->t != JV_BOOL) TERR("slice indices must be integers or None");
        start = jt_numi(a);
        if (start < 0) start += n;
        start = step > 0 ? clampi(start, 0, n) : clampi(start, -1, n - 1);
    } else start = step > 0 ? 0 : n - 1;
    if (b && b->t != JV_NONE) {
        if (b->t != JV_INT && b->t != JV_BOOL) TERR("slice indices must be integers or None");
        stop = jt_numi(b);
        if (stop < 0) stop += n;
        stop = step > 0 ? clampi(stop, 0, n) : clampi(stop, -1, n - 1);
    } else stop = step > 0 ? n : -1;
    if (o->t == JV_STR) {
        jsb sb;
        jsb_init(&sb, &s->a, 0);
        for (long long i = start; step > 0 ? i < stop : i > stop; i += step) jsb_put(&sb, o->u.s.p + off[i], off[i + 1] - off[i]);
        return jt_v_sb(s, &sb);
    }
    jv *r = jt_v_list(s, 0);
    r->t = o->t;
    for (long long i = start; step > 0 ? i < stop : i > stop; i += step) jt_l_push(s, r, o->u.l.v[i]);
    return r;
}

/* items for iteration */
jv *jt_iter_list(S *s, jv *v) {
    switch (v->t) {
    case JV_LIST: case JV_TUPLE:
        if (v->u.l.view == 4) { /* a generator: yields once, raises its deferred error when consumed */
            if (v->u.l.lazy_err) TERR("%s", v->u.l.lazy_err);
            jv *l = jt_v_list(s, 0);
            if (v->u.l.cap != (size_t)-1) { l->u.l.v = v->u.l.v; l->u.l.n = v->u.l.n; l->u.l.cap = v->u.l.n; }
            v->u.l.cap = (size_t)-1; /* consumed */
            return l;
        }
        return v;
    case JV_UNDEF: return jt_v_list(s, 0);
    case JV_DICT: {
        jv *l = jt_v_list(s, v->u.d.n);
        for (size_t i = 0; i < v->u.d.n; i++) l->u.l.v[i] = v->u.d.k[i];
        l->u.l.n = v->u.d.n;
        return l;
    }
    case JV_STR: {
        jv *l = jt_v_list(s, 0);
        size_t i = 0;
        while (i < v->u.s.n) {
            size_t st = i;
            jt_u8next(v->u.s.p, v->u.s.n, &i);
            jt_l_push(s, l, jt_v_strn(s, v->u.s.p + st, i - st));
        }
        return l;
    }
    default: TERR("'%s' object is not iterable", jt_tname(v));
    }
}

long long jt_vlen(S *s, jv *v) {
    if (v->t == JV_LIST && v->u.l.view == 4) TERR("object of type 'generator' has no len()");
    switch (v->t) {
    case JV_STR: return (long long)jt_u8len(v->u.s.p, v->u.s.n);
    case JV_LIST: case JV_TUPLE: return (long long)v->u.l.n;
    case JV_DICT: return (long long)v->u.d.n;
    case JV_UNDEF: return 0;
    default: TERR("object of type '%s' has no len()", jt_tname(v));
    }
}

int jt_contains(S *s, jv *hay, jv *x) {
    switch (hay->t) {
    case JV_STR:
        if (x->t != JV_STR) TERR("'in <string>' requires string as left operand, not %s", jt_tname(x));
        if (x->u.s.n == 0) return 1;
        return memmem(hay->u.s.p, hay->u.s.n, x->u.s.p, x->u.s.n) != NULL;
    case JV_LIST: case JV_TUPLE:
        if (hay->u.l.view == 4) hay = jt_iter_list(s, hay);
        for (size_t i = 0; i < hay->u.l.n; i++)
            if (jt_veq(hay->u.l.v[i], x)) return 1;
        return 0;
    case JV_DICT:
        if (x->t == JV_LIST || x->t == JV_DICT) TERR("unhashable type: '%s'", jt_tname(x));
        return jt_d_get(hay, x) != NULL;
    case JV_UNDEF: return 0;
    default: TERR("argument of type '%s' is not iterable", jt_tname(hay));
    }
}

/* ---------------- arithmetic ---------------- */
jv *jt_arith(S *s, int op, jv *a, jv *b) {
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
            if (f == 's') jt_str_of(s, x, &sb);
            else if (f == 'r') jt_repr(s, x, &sb, 0);
            else if (f == 'd' || f == 'i') {
                if (!jt_isnum(x)) TERR("%%d format: a real number is required, not %s", jt_tname(x));
                jsb_printf(&sb, "%lld", x->t == JV_FLOAT ? (long long)x->u.f : jt_numi(x));
            } else TERR("unsupported format character '%c'", f);
        }
        /* a mapping-like argument (dict, list, Undefined: anything with __getitem__) is never 'unused' */
        int maplike = b->t == JV_DICT || b->t == JV_LIST || b->t == JV_UNDEF;
        if (!maplike && (vals ? vi < vals->u.l.n : vi == 0)) TERR("not all arguments converted during string formatting");
        return jt_v_sb(s, &sb);
    }
    if (a->t == JV_UNDEF) jt_undef_err(s, a);
    if (b->t == JV_UNDEF) jt_undef_err(s, b);
    if (jt_isnum(a) && jt_isnum(b)) {
        int fl = a->t == JV_FLOAT || b->t == JV_FLOAT;
        long long x = jt_numi(a), y = jt_numi(b), r;
        double fx = jt_numf(a), fy = jt_numf(b);
        switch (op) {
        case OP_ADD:
            if (fl) return jt_v_float(s, fx + fy);
            if (__builtin_add_overflow(x, y, &r)) TERR("integer overflow");
            return jt_v_int(s, r);
        case OP_SUB:
            if (fl) return jt_v_float(s, fx - fy);
            if (__builtin_sub_overflow(x, y, &r)) TERR("integer overflow");
            return jt_v_int(s, r);
        case OP_MUL:
            if (fl) return jt_v_float(s, fx * fy);
            if (__builtin_mul_overflow(x, y, &r)) TERR("integer overflow");
            return jt_v_int(s, r);
        case OP_DIV:
            if (fy == 0) TERR("division by zero");
            return jt_v_float(s, fx / fy);
        case OP_FDIV:
            if (fl) {
                if (fy == 0) TERR("float floor division by zero");
                return jt_v_float(s, floor(fx / fy));
            }
            if (y == 0) TERR("integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) TERR("integer overflow");
            r = x / y;
            if ((x % y != 0) && ((x < 0) != (y < 0))) r--;
            return jt_v_int(s, r);
        case OP_MOD:
            if (fl) {
                if (fy == 0) TERR("float modulo");
                double m = fmod(fx, fy);
                if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
                return jt_v_float(s, m);
            }
            if (y == 0) TERR("integer division or modulo by zero");
            if (y == -1) return jt_v_int(s, 0);
            r = x % y;
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
            return jt_v_int(s, r);
        case OP_POW:
            if (fl || y < 0) return jt_v_float(s, pow(fx, fy));
            r = 1;
            for (long long i = 0; i < y; i++) {
                if (__builtin_mul_overflow(r, x, &r)) TERR("integer overflow");
                if (r == 0 || r == 1) break;
                if (r == -1) { r = (y - i - 1) % 2 ? -r : r; break; }
            }
            return jt_v_int(s, r);
        }
    }
    if (op == OP_ADD) {
        if (a->t == JV_STR && b->t == JV_STR) {
            jsb sb;
            jsb_init(&sb, &s->a, s->max_output);
            sb.line = s->line;
            jsb_put(&sb, a->u.s.p, a->u.s.n);
            jsb_put(&sb, b->u.s.p, b->u.s.n);
            return jt_v_sb(s, &sb);
        }
        if ((a->t == JV_LIST || a->t == JV_TUPLE) && a->t == b->t) {
            jv *r = jt_v_list(s, a->u.l.n + b->u.l.n);
            r->t = a->t;
            for (size_t i = 0; i < a->u.l.n; i++) r->u.l.v[r->u.l.n++] = a->u.l.v[i];
            for (size_t i = 0; i < b->u.l.n; i++) r->u.l.v[r->u.l.n++] = b->u.l.v[i];
            return r;
        }
    }
    if (op == OP_MUL && ((a->t == JV_INT || a->t == JV_BOOL) != (b->t == JV_INT || b->t == JV_BOOL))) {
        jv *seq = (a->t == JV_INT || a->t == JV_BOOL) ? b : a;
        long long k = jt_numi(seq == a ? b : a);
        if (k < 0) k = 0;
        if (seq->t == JV_STR) {
            if (seq->u.s.n && (unsigned long long)k > s->max_output / seq->u.s.n) jt_rerr(s, MT_ELIMIT, "string too long");
            jsb sb;
            jsb_init(&sb, &s->a, 0);
            for (long long i = 0; i < k; i++) jsb_put(&sb, seq->u.s.p, seq->u.s.n);
            return jt_v_sb(s, &sb);
        }
        if (seq->t == JV_LIST || seq->t == JV_TUPLE) {
            if (seq->u.l.n && (unsigned long long)k > 1000000 / seq->u.l.n) jt_rerr(s, MT_ELIMIT, "list too long");
            jv *r = jt_v_list(s, 0);
            r->t = seq->t;
            for (long long i = 0; i < k; i++)
                for (size_t j = 0; j < seq->u.l.n; j++) jt_l_push(s, r, seq->u.l.v[j]);
            return r;
        }
    }
    static const char *const opn[] = {"", "+", "-", "*", "/", "//", "%", "**"};
    TERR("unsupported operand type(s) for %s: '%s' and '%s'", op <= OP_POW ? opn[op] : "?", jt_tname(a), jt_tname(b));
}
