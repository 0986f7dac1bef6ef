/* jinja_filters.c - Jinja's filters and tests.  tojson with transformers'
 * options (indent, separators, sort_keys, ensure_ascii) over a small JSON
 * encoder; the stable merge sort and sort keys behind sort, dictsort, unique,
 * min and max; attribute paths ("a.b.0") for map, selectattr, sum and join;
 * the generator-returning filters (map, select, reject, batch, ...), whose
 * errors are deferred until the result is consumed; the string, number and
 * sequence filters; and the `is` tests (defined, string, mapping, eq, in, ...),
 * with the filters Jinja has but chat templates never need rejected by name. */
#include "text/jinja_eval_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------- JSON output (tojson) ---------------- */
static void json_str(jsb *b, const char *p, size_t n, int ascii) {
    jsb_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        size_t st = i;
        int32_t c = jt_u8next(p, n, &i);
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
    case JV_BOOL: return jt_v_cstr(s, k->u.b ? "true" : "false");
    case JV_NONE: return jt_v_cstr(s, "null");
    case JV_INT: case JV_FLOAT: return jt_to_strv(s, k);
    default: TERR("keys must be str, int, float, bool or None, not %s", jt_tname(k));
    }
}
static void msort(S *s, jv **a, size_t n, int (*cmp)(S *, jv *, jv *, void *), void *ctx);
static int cmp_key_str(S *s, jv *a, jv *b, void *ctx) {
    (void)ctx;
    return jt_vcmp(s, a->u.l.v[0], b->u.l.v[0]);
}
static void json_dump(S *s, jv *v, jsb *b, const jopts *o, int level) {
    if (level > 200) jt_rerr(s, MT_ELIMIT, "value nested too deeply");
    char tmp[64];
    switch (v->t) {
    case JV_NONE: jsb_puts(b, "null"); return;
    case JV_BOOL: jsb_puts(b, v->u.b ? "true" : "false"); return;
    case JV_INT: jsb_printf(b, "%lld", v->u.i); return;
    case JV_FLOAT:
        if (isnan(v->u.f)) jsb_puts(b, "NaN");
        else if (isinf(v->u.f)) jsb_puts(b, v->u.f < 0 ? "-Infinity" : "Infinity");
        else { jt_fmt_float(v->u.f, tmp, sizeof tmp); jsb_puts(b, tmp); }
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
        for (size_t i = 0; i < n; i++) pairs[i] = jt_v_tuple2(s, json_key(s, v->u.d.k[i]), v->u.d.v[i]);
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
    default: TERR("Object of type %s is not JSON serializable", jt_tname(v));
    }
}

/* ---------------- stable merge sort ---------------- */
static void msort(S *s, jv **a, size_t n, int (*cmp)(S *, jv *, jv *, void *), void *ctx) {
    if (n < 2) return;
    jt_step(s, n);
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

/* attribute path "a.b.0" lookup as Jinja's make_attrgetter */
static jv *attr_path(S *s, jv *v, jv *path) {
    if (path->t != JV_STR) return jt_get_item(s, v, path);
    const char *p = path->u.s.p;
    size_t n = path->u.s.n, a = 0;
    for (;;) {
        const char *dot = memchr(p + a, '.', n - a);
        size_t e = dot ? (size_t)(dot - p) : n;
        int isnum_ = e > a;
        for (size_t k = a; k < e; k++)
            if (p[k] < '0' || p[k] > '9') isnum_ = 0;
        jv *key = isnum_ ? jt_v_int(s, atoll(p + a)) : jt_v_strn(s, p + a, e - a);
        v = jt_get_item(s, v, key);
        if (!dot) return v;
        a = e + 1;
    }
}

typedef struct sortctx { int ci, rev; jv *attr; int by_value; } sortctx;
static jv *sort_key(S *s, jv *x, sortctx *c) {
    if (c->attr) x = attr_path(s, x, c->attr);
    if (!c->ci && x->t == JV_STR) return x;
    if (x->t == JV_STR) return jt_str_map(s, x, 1);
    return x;
}
static int cmp_sort(S *s, jv *a, jv *b, void *ctx) {
    sortctx *c = ctx;
    int r = jt_vcmp(s, a->u.l.v[0], b->u.l.v[0]);
    return c->rev ? -r : r;
}

static jv *seq_of(S *s, jv *v) { return jt_iter_list(s, v); }

static jv *apply_filter_(S *s, const char *name, jv *v, args *A, jframe *f);

/* Jinja's map/select/reject/selectattr/rejectattr/items/unique/batch/reverse return
 * generators: always true, no len(), consumed once, and their errors surface only
 * when they are consumed.  The result is computed now; an error is deferred. */
static int is_gen_filter(const char *name, jv *v) {
    static const char *const g[] = {"map", "select", "reject", "selectattr", "rejectattr", "items", "unique", "batch", NULL};
    if (!strcmp(name, "reverse")) return v->t != JV_STR;
    return jt_in_list(g, name) != NULL;
}
jv *jt_apply_filter(S *s, const char *name, jv *v, args *A, jframe *f) {
    if (!is_gen_filter(name, v)) return apply_filter_(s, name, v, A, f);
    if (!strcmp(name, "reverse")) { /* an iterator, but its errors are immediate; a generator gives a list */
        int from_gen = v->t == JV_LIST && v->u.l.view == 4;
        jv *r = apply_filter_(s, name, v, A, f);
        if (from_gen) return r;
        jv *g = jt_v_list(s, 0);
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
        r = jt_v_list(s, 0);
        r->u.l.view = 4;
        r->u.l.lazy_err = ja_strndup(&s->a, m ? m + 2 : s->err->msg, strlen(m ? m + 2 : s->err->msg));
        mt_clearerr(s->err);
    }
    if (r->t != JV_LIST || r->u.l.view == 4) return r;
    jv *g = jt_v_list(s, 0);
    *g = *r;
    g->t = JV_LIST;
    g->u.l.view = 4;
    return g;
}

static jv *apply_filter_(S *s, const char *name, jv *v, args *A, jframe *f) {
    jv *a0 = jt_arg(A, 0, NULL);
    jt_step(s, 1);
    if (!strcmp(name, "tojson")) {
        jopts o = {NULL, 0, ", ", ": ", 0, 0};
        jv *ind = jt_arg(A, 1, "indent");
        jv *ea = jt_arg(A, 0, "ensure_ascii");
        o.ascii = ea && jt_truthy(ea);
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
        jv *sep = jt_arg(A, 2, "separators");
        if (sep && sep->t != JV_NONE) {
            if ((sep->t != JV_LIST && sep->t != JV_TUPLE) || sep->u.l.n != 2 || sep->u.l.v[0]->t != JV_STR || sep->u.l.v[1]->t != JV_STR)
                TERR("tojson: separators must be a pair of strings");
            o.isep = ja_strndup(&s->a, sep->u.l.v[0]->u.s.p, sep->u.l.v[0]->u.s.n);
            o.ksep = ja_strndup(&s->a, sep->u.l.v[1]->u.s.p, sep->u.l.v[1]->u.s.n);
        }
        jv *sk = jt_arg(A, 3, "sort_keys");
        o.sort = sk && jt_truthy(sk);
        jsb b;
        jsb_init(&b, &s->a, s->max_output);
        b.line = s->line;
        json_dump(s, v, &b, &o, 0);
        return jt_v_sb(s, &b);
    }
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        jv *dv = jt_arg(A, 0, "default_value");
        jv *bo = jt_arg(A, 1, "boolean");
        if (v->t == JV_UNDEF || (bo && jt_truthy(bo) && !jt_truthy(v))) return dv ? dv : jt_v_strn(s, "", 0);
        return v;
    }
    if (!strcmp(name, "length") || !strcmp(name, "count")) return jt_v_int(s, jt_vlen(s, v));
    if (!strcmp(name, "string")) return jt_to_strv(s, v);
    if (!strcmp(name, "safe")) return jt_to_strv(s, v);
    if (!strcmp(name, "list")) {
        jv *r = jt_do_slice(s, jt_iter_list(s, v), NULL, NULL, NULL);
        r->t = JV_LIST;
        return r;
    }
    if (!strcmp(name, "trim")) return jt_str_strip(s, jt_to_strv(s, v), jt_arg(A, 0, "chars"), 1, 1);
    if (!strcmp(name, "upper")) return jt_str_map(s, jt_to_strv(s, v), 0);
    if (!strcmp(name, "lower")) return jt_str_map(s, jt_to_strv(s, v), 1);
    if (!strcmp(name, "capitalize")) return jt_str_map(s, jt_to_strv(s, v), 2);
    if (!strcmp(name, "title")) return jt_jinja_title(s, jt_to_strv(s, v));
    if (!strcmp(name, "replace")) {
        jv *o = jt_arg(A, 0, "old"), *n = jt_arg(A, 1, "new");
        if (!o || !n) TERR("replace filter needs 2 arguments");
        return jt_str_replace(s, jt_to_strv(s, v), jt_to_strv(s, o), jt_to_strv(s, n), jt_int_arg(s, jt_arg(A, 2, "count"), -1));
    }
    if (!strcmp(name, "join")) {
        jv *sep = jt_arg(A, 0, "d");
        jv *attr = jt_arg(A, 1, "attribute");
        jv *l = jt_iter_list(s, v);
        if (attr) {
            jv *m = jt_v_list(s, l->u.l.n);
            for (size_t i = 0; i < l->u.l.n; i++) m->u.l.v[m->u.l.n++] = attr_path(s, l->u.l.v[i], attr);
            l = m;
        }
        return jt_str_join(s, sep ? jt_to_strv(s, sep) : jt_v_strn(s, "", 0), l, f, NULL);
    }
    if (!strcmp(name, "first")) {
        jv *l = jt_iter_list(s, v);
        return l->u.l.n ? l->u.l.v[0] : jt_v_undef(s, NULL);
    }
    if (!strcmp(name, "last")) {
        jv *l = jt_iter_list(s, v);
        return l->u.l.n ? l->u.l.v[l->u.l.n - 1] : jt_v_undef(s, NULL);
    }
    if (!strcmp(name, "reverse")) {
        if (v->t == JV_STR) return jt_do_slice(s, v, NULL, NULL, jt_v_int(s, -1));
        jv *l = jt_iter_list(s, v);
        jv *r = jt_do_slice(s, l, NULL, NULL, jt_v_int(s, -1));
        r->t = JV_LIST;
        return r;
    }
    if (!strcmp(name, "items")) {
        if (v->t == JV_UNDEF) return jt_v_list(s, 0);
        if (v->t != JV_DICT) TERR("Can only get item pairs from a mapping.");
        jv *r = jt_call_method(s, v, "items", A, f);
        r->u.l.view = 0;
        return r;
    }
    if (!strcmp(name, "dictsort")) {
        if (v->t != JV_DICT) TERR("dictsort filter needs a mapping");
        jv *cs = jt_arg(A, 0, "case_sensitive"), *by = jt_arg(A, 1, "by"), *rev = jt_arg(A, 2, "reverse");
        sortctx c = {!(cs && jt_truthy(cs)), rev && jt_truthy(rev), NULL, 0};
        int pos = 0;
        if (by) {
            if (by->t == JV_STR && by->u.s.n == 5 && !memcmp(by->u.s.p, "value", 5)) pos = 1;
            else if (!(by->t == JV_STR && by->u.s.n == 3 && !memcmp(by->u.s.p, "key", 3))) TERR("You can only sort by either \"key\" or \"value\"");
        }
        size_t n = v->u.d.n;
        jv **pairs = ja_alloc(&s->a, (n + 1) * sizeof *pairs);
        for (size_t i = 0; i < n; i++) {
            jv *item = jt_v_tuple2(s, v->u.d.k[i], v->u.d.v[i]);
            pairs[i] = jt_v_tuple2(s, sort_key(s, item->u.l.v[pos], &c), item);
        }
        msort(s, pairs, n, cmp_sort, &c);
        jv *l = jt_v_list(s, n);
        for (size_t i = 0; i < n; i++) l->u.l.v[i] = pairs[i]->u.l.v[1];
        l->u.l.n = n;
        return l;
    }
    if (!strcmp(name, "sort") || !strcmp(name, "unique") || !strcmp(name, "min") || !strcmp(name, "max")) {
        int is_sort = name[0] == 's', is_uniq = name[0] == 'u';
        jv *rev = is_sort ? jt_arg(A, 0, "reverse") : NULL;
        jv *cs = jt_arg(A, is_sort ? 1 : 0, "case_sensitive");
        jv *attr = jt_arg(A, is_sort ? 2 : 1, "attribute");
        sortctx c = {!(cs && jt_truthy(cs)), rev && jt_truthy(rev), attr, 0};
        jv *l = jt_iter_list(s, v);
        size_t n = l->u.l.n;
        jt_step(s, n);
        if (is_uniq) {
            jv *r = jt_v_list(s, 0), *seen = jt_v_list(s, 0);
            for (size_t i = 0; i < n; i++) {
                jv *k = sort_key(s, l->u.l.v[i], &c);
                if (!jt_contains(s, seen, k)) { jt_l_push(s, seen, k); jt_l_push(s, r, l->u.l.v[i]); }
            }
            return r;
        }
        jv **pairs = ja_alloc(&s->a, (n + 1) * sizeof *pairs);
        for (size_t i = 0; i < n; i++) pairs[i] = jt_v_tuple2(s, sort_key(s, l->u.l.v[i], &c), l->u.l.v[i]);
        if (!is_sort) {
            if (!n) return jt_v_undef(s, NULL);
            jv *best = pairs[0];
            for (size_t i = 1; i < n; i++) {
                int r = jt_vcmp(s, pairs[i]->u.l.v[0], best->u.l.v[0]);
                if (name[1] == 'i' ? r < 0 : r > 0) best = pairs[i];
            }
            return best->u.l.v[1];
        }
        msort(s, pairs, n, cmp_sort, &c);
        jv *r = jt_v_list(s, n);
        for (size_t i = 0; i < n; i++) r->u.l.v[i] = pairs[i]->u.l.v[1];
        r->u.l.n = n;
        return r;
    }
    if (!strcmp(name, "map")) {
        jv *l = jt_iter_list(s, v);
        jv *r = jt_v_list(s, l->u.l.n);
        jv *attr = jt_arg(A, 99, "attribute");
        jt_step(s, l->u.l.n);
        if (attr) {
            jv *dflt = jt_arg(A, 99, "default");
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
        for (size_t i = 0; i < l->u.l.n; i++) r->u.l.v[r->u.l.n++] = jt_apply_filter(s, fname, l->u.l.v[i], &B, f);
        return r;
    }
    if (!strcmp(name, "select") || !strcmp(name, "reject") || !strcmp(name, "selectattr") || !strcmp(name, "rejectattr")) {
        int want = name[0] == 's', isattr = strlen(name) > 6;
        jv *l = jt_iter_list(s, v);
        jv *r = jt_v_list(s, 0);
        jt_step(s, l->u.l.n);
        size_t ti = isattr ? 1 : 0;
        jv *attr = isattr ? a0 : NULL;
        if (isattr && !attr) TERR("Missing parameter for attribute name");
        jv *tn = jt_arg(A, ti, NULL);
        const char *tname_ = tn ? (tn->t == JV_STR ? ja_strndup(&s->a, tn->u.s.p, tn->u.s.n) : NULL) : NULL;
        if (tn && !tname_) TERR("test name must be a string");
        args B = {A->np > ti + 1 ? A->pos + ti + 1 : NULL, A->np > ti + 1 ? A->np - ti - 1 : 0, A->kn, A->kv, A->nk};
        for (size_t i = 0; i < l->u.l.n; i++) {
            jv *x = l->u.l.v[i];
            jv *y = attr ? attr_path(s, x, attr) : x;
            int ok = tname_ ? jt_apply_test(s, tname_, y, &B, f) : jt_truthy(y);
            if (ok == want) jt_l_push(s, r, x);
        }
        return r;
    }
    if (!strcmp(name, "int")) {
        jv *dflt = jt_arg(A, 0, "default");
        long long d = dflt ? jt_int_arg(s, dflt, 0) : 0;
        if (v->t == JV_INT) return v;
        if (v->t == JV_BOOL) return jt_v_int(s, v->u.b);
        if (v->t == JV_FLOAT) return isfinite(v->u.f) ? jt_v_int(s, (long long)v->u.f) : jt_v_int(s, d);
        if (v->t == JV_STR) {
            char *t = ja_strndup(&s->a, v->u.s.p, v->u.s.n), *e;
            while (*t && jt_u_isspace((unsigned char)*t)) t++;
            long long x = strtoll(t, &e, 10);
            while (*e && jt_u_isspace((unsigned char)*e)) e++;
            if (e != t && !*e) return jt_v_int(s, x);
            double fx = strtod(t, &e);
            while (*e && jt_u_isspace((unsigned char)*e)) e++;
            if (e != t && !*e && isfinite(fx)) return jt_v_int(s, (long long)fx);
            return jt_v_int(s, d);
        }
        if (v->t == JV_UNDEF) jt_undef_err(s, v);
        return jt_v_int(s, d);
    }
    if (!strcmp(name, "float")) {
        jv *dflt = jt_arg(A, 0, "default");
        if (jt_isnum(v)) return jt_v_float(s, jt_numf(v));
        if (v->t == JV_STR) {
            char *t = ja_strndup(&s->a, v->u.s.p, v->u.s.n), *e;
            double x = strtod(t, &e);
            while (*e && jt_u_isspace((unsigned char)*e)) e++;
            if (e != t && !*e) return jt_v_float(s, x);
        }
        if (v->t == JV_UNDEF) jt_undef_err(s, v);
        return dflt ? dflt : jt_v_float(s, 0.0);
    }
    if (!strcmp(name, "abs")) {
        if (v->t == JV_INT) return jt_v_int(s, v->u.i < 0 ? -v->u.i : v->u.i);
        if (v->t == JV_BOOL) return jt_v_int(s, v->u.b);
        if (v->t == JV_FLOAT) return jt_v_float(s, fabs(v->u.f));
        TERR("bad operand type for abs(): '%s'", jt_tname(v));
    }
    if (!strcmp(name, "round")) {
        long long prec = jt_int_arg(s, jt_arg(A, 0, "precision"), 0);
        jv *meth = jt_arg(A, 1, "method");
        if (!jt_isnum(v)) TERR("type %s doesn't define __round__ method", jt_tname(v));
        double x = jt_numf(v), p10 = pow(10, (double)prec), r;
        const char *mm = meth && meth->t == JV_STR ? ja_strndup(&s->a, meth->u.s.p, meth->u.s.n) : "common";
        if (!strcmp(mm, "common")) {
            if (v->t != JV_FLOAT && prec >= 0) return v->t == JV_BOOL ? jt_v_int(s, v->u.b) : v;
            double y = x * p10;
            r = nearbyint(y);
            if (fabs(y - trunc(y)) != 0.5) r = round(y);
            r /= p10;
        } else if (!strcmp(mm, "ceil")) r = ceil(x * p10) / p10;
        else if (!strcmp(mm, "floor")) r = floor(x * p10) / p10;
        else TERR("method must be common, ceil or floor");
        return jt_v_float(s, r);
    }
    if (!strcmp(name, "indent")) {
        jv *w = jt_arg(A, 0, "width"), *first = jt_arg(A, 1, "first"), *blank = jt_arg(A, 2, "blank");
        if (v->t == JV_UNDEF) jt_undef_err(s, v);
        if (v->t != JV_STR) TERR("can only concatenate %s (not \"str\") to %s", jt_tname(v), jt_tname(v));
        jv *str = v;
        const char *ind = "    ";
        if (w) {
            if (w->t == JV_STR) ind = ja_strndup(&s->a, w->u.s.p, w->u.s.n);
            else {
                long long k = jt_int_arg(s, w, 4);
                if (k < 0) k = 0;
                if (k > 1024) jt_rerr(s, MT_ELIMIT, "indent too wide");
                char *sp = ja_alloc(&s->a, (size_t)k + 1);
                memset(sp, ' ', (size_t)k);
                ind = sp;
            }
        }
        jv *lines = jt_call_method(s, jt_v_str_nocopy(s, ({ jsb t; jsb_init(&t, &s->a, 0); jsb_put(&t, str->u.s.p, str->u.s.n); jsb_putc(&t, '\n'); t.p; }), str->u.s.n + 1), "splitlines", &(args){0}, f);
        jsb b;
        jsb_init(&b, &s->a, s->max_output);
        for (size_t i = 0; i < lines->u.l.n; i++) {
            jv *ln = lines->u.l.v[i];
            if (i) {
                jsb_putc(&b, '\n');
                if (ln->u.s.n || (blank && jt_truthy(blank))) jsb_puts(&b, ind);
            }
            jsb_put(&b, ln->u.s.p, ln->u.s.n);
        }
        if (first && jt_truthy(first)) {
            jsb c;
            jsb_init(&c, &s->a, s->max_output);
            jsb_puts(&c, ind);
            jsb_put(&c, b.p, b.n);
            return jt_v_sb(s, &c);
        }
        return jt_v_sb(s, &b);
    }
    if (!strcmp(name, "wordcount")) {
        jv *str = jt_to_strv(s, v);
        long long k = 0;
        int inw = 0;
        size_t i = 0;
        while (i < str->u.s.n) {
            int32_t c = jt_u8next(str->u.s.p, str->u.s.n, &i);
            int w = jt_u_isalpha(c) || jt_u_isdigit(c) || c == '_';
            if (w && !inw) k++;
            inw = w;
        }
        return jt_v_int(s, k);
    }
    if (!strcmp(name, "center")) return jt_str_pad(s, jt_to_strv(s, v), jt_int_arg(s, jt_arg(A, 0, "width"), 80), NULL, 0);
    if (!strcmp(name, "escape") || !strcmp(name, "e") || !strcmp(name, "forceescape")) {
        jv *str = jt_to_strv(s, v);
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
        return jt_v_sb(s, &b);
    }
    if (!strcmp(name, "sum")) {
        jv *attr = jt_arg(A, 0, "attribute"), *start = jt_arg(A, 1, "start");
        jv *l = jt_iter_list(s, v);
        jv *acc = start ? start : jt_v_int(s, 0);
        for (size_t i = 0; i < l->u.l.n; i++) acc = jt_arith(s, OP_ADD, acc, attr ? attr_path(s, l->u.l.v[i], attr) : l->u.l.v[i]);
        return acc;
    }
    if (!strcmp(name, "batch")) {
        long long k = jt_int_arg(s, jt_arg(A, 0, "linecount"), 1);
        jv *fill = jt_arg(A, 1, "fill_with");
        if (k <= 0) TERR("batch size must be positive");
        jv *l = jt_iter_list(s, v), *r = jt_v_list(s, 0), *cur = NULL;
        for (size_t i = 0; i < l->u.l.n; i++) {
            if (!cur || (long long)cur->u.l.n == k) { cur = jt_v_list(s, 0); jt_l_push(s, r, cur); }
            jt_l_push(s, cur, l->u.l.v[i]);
        }
        if (cur && fill)
            while ((long long)cur->u.l.n < k) jt_l_push(s, cur, fill);
        return r;
    }
    if (!strcmp(name, "format")) return jt_arith(s, OP_MOD, jt_to_strv(s, v), ({ jv *t = jt_v_list(s, 0); t->t = JV_TUPLE; for (size_t i = 0; i < A->np; i++) jt_l_push(s, t, A->pos[i]); t; }));
    if (!strcmp(name, "attr")) {
        if (!a0) TERR("attr filter needs a name");
        jv *nm = jt_to_strv(s, a0);
        const char *an = ja_strndup(&s->a, nm->u.s.p, nm->u.s.n);
        if (v->t == JV_UNDEF) return jt_v_undef(s, NULL);
        if (v->t == JV_DICT && !jt_in_list(jt_DICT_METHODS, an) && !jt_in_list(jt_DICT_UNSAFE, an)) return jt_v_undef(s, NULL); /* attributes only */
        return jt_get_attr(s, v, an);
    }
    if (!strcmp(name, "pprint")) {
        jsb b;
        jsb_init(&b, &s->a, s->max_output);
        jt_repr(s, v, &b, 0);
        return jt_v_sb(s, &b);
    }
    if (!strcmp(name, "striptags") || !strcmp(name, "urlencode") || !strcmp(name, "xmlattr") || !strcmp(name, "truncate") ||
        !strcmp(name, "filesizeformat") || !strcmp(name, "urlize") || !strcmp(name, "wordwrap") || !strcmp(name, "slice") ||
        !strcmp(name, "groupby") || !strcmp(name, "random"))
        TERR("filter '%s' is not supported", name);
    (void)seq_of;
    TERR("No filter named '%s'.", name);
}

int jt_apply_test(S *s, const char *name, jv *v, args *A, jframe *f) {
    (void)f;
    jv *a0 = jt_arg(A, 0, NULL);
    jt_step(s, 1);
    static const char *const unary[] = {"defined", "undefined", "none", "boolean", "false", "true", "integer", "float",
        "number", "string", "mapping", "iterable", "sequence", "callable", "escaped", "lower", "upper", "even", "odd", NULL};
    size_t given = A->np + A->nk, takes = jt_in_list(unary, name) ? 0 : 1;
    if (given > takes) TERR("test_%s() takes %zu positional argument%s but %zu were given", name, takes + 1, takes ? "s" : "", given + 1);
    if (!strcmp(name, "defined")) return v->t != JV_UNDEF;
    if (!strcmp(name, "undefined")) return v->t == JV_UNDEF;
    if (!strcmp(name, "none")) return v->t == JV_NONE;
    if (!strcmp(name, "string")) return v->t == JV_STR;
    if (!strcmp(name, "number")) return jt_isnum(v);
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
        return jt_truthy(jt_call_method(s, jt_to_strv(s, v), name[0] == 'l' ? "islower" : "isupper", &none, f));
    }
    if (!strcmp(name, "even") || !strcmp(name, "odd")) {
        if (v->t != JV_INT && v->t != JV_BOOL) {
            if (v->t == JV_FLOAT) return fmod(v->u.f, 2) == (name[0] == 'e' ? 0 : 1);
            TERR("unsupported operand type(s) for %%: '%s' and 'int'", jt_tname(v));
        }
        long long x = jt_numi(v) % 2;
        return name[0] == 'e' ? x == 0 : x != 0;
    }
    if (!strcmp(name, "divisibleby")) {
        if (!a0) TERR("divisibleby needs an argument");
        return jt_numi(jt_arith(s, OP_MOD, v, a0)) == 0 && jt_numf(jt_arith(s, OP_MOD, v, a0)) == 0;
    }
    if (!a0 && (!strcmp(name, "in") || !strcmp(name, "sameas") || !strcmp(name, "eq") || !strcmp(name, "equalto") ||
                !strcmp(name, "==") || !strcmp(name, "ne") || !strcmp(name, "!=") || !strcmp(name, "lt") ||
                !strcmp(name, "le") || !strcmp(name, "gt") || !strcmp(name, "ge") || !strcmp(name, "<") ||
                !strcmp(name, "<=") || !strcmp(name, ">") || !strcmp(name, ">=") || !strcmp(name, "lessthan") ||
                !strcmp(name, "greaterthan")))
        TERR("test '%s' needs an argument", name);
    if (!strcmp(name, "in")) return jt_contains(s, a0, v);
    if (!strcmp(name, "sameas")) {
        if (v->t != a0->t) return 0;
        if (v->t == JV_NONE || v->t == JV_UNDEF) return 1;
        if (v->t == JV_BOOL) return v->u.b == a0->u.b;
        return v == a0;
    }
    if (!strcmp(name, "eq") || !strcmp(name, "equalto") || !strcmp(name, "==")) return jt_veq(v, a0);
    if (!strcmp(name, "ne") || !strcmp(name, "!=")) return !jt_veq(v, a0);
    if (!strcmp(name, "lt") || !strcmp(name, "<") || !strcmp(name, "lessthan")) return jt_vcmp(s, v, a0) < 0;
    if (!strcmp(name, "le") || !strcmp(name, "<=")) return jt_vcmp(s, v, a0) <= 0;
    if (!strcmp(name, "gt") || !strcmp(name, ">") || !strcmp(name, "greaterthan")) return jt_vcmp(s, v, a0) > 0;
    if (!strcmp(name, "ge") || !strcmp(name, ">=")) return jt_vcmp(s, v, a0) >= 0;
    if (!strcmp(name, "filter") || !strcmp(name, "test")) return 0;
    TERR("No test named '%s'.", name);
}
