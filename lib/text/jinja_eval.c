/* jinja_eval.c - the evaluator core and the public API.  Expression
 * evaluation (names, attributes, items, slices, calls, filters, tests,
 * operators, literals) and statement execution (output, if, for with loop and
 * filtering, set, set blocks, macros and call blocks, filter blocks, with,
 * break/continue) over variable frames; argument binding; macro calls; the
 * globals transformers gives chat templates (range, namespace, dict,
 * raise_exception, strftime_now); and mt_jinja_parse/render/free.  Every
 * render counts steps and C recursion depth and caps output and memory; the
 * values, methods, operators and filters live in jinja_value.c, jinja_ops.c,
 * jinja_methods.c and jinja_filters.c. */
#include "text/jinja.h"
#include "text/jinja_eval_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mt_jinja_tmpl {
    ja_arena a;
    jnode *root;
};

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

/* ---------------- evaluation ---------------- */
static jv *eval(S *s, jnode *n, jframe *f);
static void exec_body(S *s, jnode *b, jframe *f);
static jv *call_value(S *s, jv *fn, args *A, jframe *f);

jv *jt_arg(args *A, size_t i, const char *name) {
    if (i < A->np) return A->pos[i];
    for (size_t k = 0; k < A->nk; k++)
        if (name && !strcmp(A->kn[k], name)) return A->kv[k];
    return NULL;
}

static void eval_args(S *s, jnode *call, jframe *f, args *A, jv *first) {
    size_t cap = (size_t)call->nv + (first ? 1 : 0);
    jv *pos = jt_v_list(s, cap);
    if (first) jt_l_push(s, pos, first);
    for (int i = 0; i < call->nv; i++) {
        jnode *x = call->v[i];
        if (x->kind == N_STARARG) {
            jv *l = jt_iter_list(s, eval(s, x->a, f));
            for (size_t k = 0; k < l->u.l.n; k++) jt_l_push(s, pos, l->u.l.v[k]);
        } else jt_l_push(s, pos, eval(s, x, f));
    }
    A->pos = pos->u.l.v;
    A->np = pos->u.l.n;
    jv *kd = jt_v_dict(s);
    for (int i = 0; i < call->nw; i++) {
        jnode *x = call->w[i];
        if (x->kind == N_STARKW) {
            jv *d = eval(s, x->a, f);
            if (d->t != JV_DICT) TERR("argument after ** must be a mapping");
            for (size_t k = 0; k < d->u.d.n; k++) {
                if (d->u.d.k[k]->t != JV_STR) TERR("keywords must be strings");
                jt_d_set(s, kd, d->u.d.k[k], d->u.d.v[k]);
            }
        } else jt_d_set(s, kd, jt_v_cstr(s, x->name), eval(s, x->a, f));
    }
    A->nk = kd->u.d.n;
    A->kn = ja_alloc(&s->a, (A->nk + 1) * sizeof *A->kn);
    A->kv = kd->u.d.v;
    for (size_t k = 0; k < A->nk; k++) A->kn[k] = ja_strndup(&s->a, kd->u.d.k[k]->u.s.p, kd->u.d.k[k]->u.s.n);
}

static void assign(S *s, jframe *f, jnode *tg, jv *v) {
    if (tg->kind == N_NAME) { fr_set(s, f, tg->name, v); return; }
    if (tg->kind == N_TUPLE) {
        jv *l = jt_iter_list(s, v);
        if (l->u.l.n != (size_t)tg->nv)
            TERR("%s values to unpack (expected %d, got %zu)", l->u.l.n > (size_t)tg->nv ? "too many" : "not enough", tg->nv, l->u.l.n);
        for (int i = 0; i < tg->nv; i++) assign(s, f, tg->v[i], l->u.l.v[i]);
        return;
    }
    if (tg->kind == N_ATTR) {
        jv *ns = fr_get(f, tg->a->name);
        if (!ns || ns->t != JV_NS) TERR("cannot assign attribute on non-namespace object");
        if (tg->name[0] == '_') TERR("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '%s'", tg->name);
        jt_d_set(s, ns, jt_v_cstr(s, tg->name), v);
        return;
    }
    TERR("cannot assign to this target");
}

static jv *call_macro(S *s, jv *m, args *A, jv *caller) {
    const jnode *def = m->u.m.def;
    if (++s->depth > s->max_depth) jt_rerr(s, MT_ELIMIT, "recursion depth limit exceeded (%d)", s->max_depth);
    jframe *f = fr_new(s, m->u.m.scope);
    size_t np = (size_t)def->nv;
    jv *varargs = jt_v_list(s, 0);
    varargs->t = JV_TUPLE;
    for (size_t i = 0; i < A->np; i++) {
        if (i < np) fr_set(s, f, def->v[i]->name, A->pos[i]);
        else jt_l_push(s, varargs, A->pos[i]);
    }
    jv *kw = jt_v_dict(s);
    for (size_t k = 0; k < A->nk; k++) {
        size_t i;
        for (i = 0; i < np; i++)
            if (!strcmp(def->v[i]->name, A->kn[k])) break;
        if (i < np) {
            if (i < A->np) TERR("macro '%s' got multiple values for argument '%s'", def->name, A->kn[k]);
            fr_set(s, f, def->v[i]->name, A->kv[k]);
        } else if (!strcmp(A->kn[k], "caller")) caller = A->kv[k];
        else jt_d_set(s, kw, jt_v_cstr(s, A->kn[k]), A->kv[k]);
    }
    for (size_t i = A->np; i < np; i++) {
        int given = 0;
        for (size_t k = 0; k < A->nk; k++)
            if (!strcmp(def->v[i]->name, A->kn[k])) given = 1;
        if (given) continue;
        if (def->w[i]) fr_set(s, f, def->v[i]->name, eval(s, def->w[i], f));
        else fr_set(s, f, def->v[i]->name, jt_v_undef(s, def->v[i]->name));
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
    return jt_v_sb(s, &buf);
}

static void strftime_now(S *s, jv *fmt, jsb *out) {
    if (fmt->t != JV_STR) TERR("strftime() argument 1 must be str, not %s", jt_tname(fmt));
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


static jv *call_value(S *s, jv *fn, args *A, jframe *f) {
    if (fn->t == JV_MACRO) return call_macro(s, fn, A, fn->u.m.caller);
    if (fn->t == JV_UNDEF) jt_undef_err(s, fn);
    if (fn->t != JV_FUNC) TERR("'%s' object is not callable", jt_tname(fn));
    switch (fn->u.fn.id) {
    case F_RANGE: {
        long long a = 0, b = 0, c = 1;
        for (size_t i = 0; i < A->np; i++)
            if (A->pos[i]->t != JV_INT && A->pos[i]->t != JV_BOOL) TERR("'%s' object cannot be interpreted as an integer", jt_tname(A->pos[i]));
        if (A->np == 1) b = jt_numi(A->pos[0]);
        else if (A->np == 2 || A->np == 3) { a = jt_numi(A->pos[0]); b = jt_numi(A->pos[1]); if (A->np == 3) c = jt_numi(A->pos[2]); }
        else TERR("range expected 1 to 3 arguments, got %zu", A->np);
        if (c == 0) TERR("range() arg 3 must not be zero");
        long double cnt = c > 0 ? ((long double)b - a + c - 1) / c : ((long double)a - b - c - 1) / -c;
        if (cnt > 100000) jt_rerr(s, MT_ELIMIT, "range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
        jv *l = jt_v_list(s, 0);
        for (long long i = a; c > 0 ? i < b : i > b; i += c) jt_l_push(s, l, jt_v_int(s, i));
        return l;
    }
    case F_NAMESPACE: case F_DICT: {
        jv *d = jt_v_dict(s);
        if (fn->u.fn.id == F_NAMESPACE) d->t = JV_NS;
        if (A->np > 1) TERR("expected at most 1 argument, got %zu", A->np);
        if (A->np == 1) {
            jv *src = A->pos[0];
            if (src->t == JV_DICT || src->t == JV_NS) {
                for (size_t i = 0; i < src->u.d.n; i++) jt_d_set(s, d, src->u.d.k[i], src->u.d.v[i]);
            } else {
                jv *l = jt_iter_list(s, src);
                for (size_t i = 0; i < l->u.l.n; i++) {
                    jv *p = jt_iter_list(s, l->u.l.v[i]);
                    if (p->u.l.n != 2) TERR("dictionary update sequence element has wrong length");
                    jt_d_set(s, d, p->u.l.v[0], p->u.l.v[1]);
                }
            }
        }
        for (size_t k = 0; k < A->nk; k++) jt_d_set(s, d, jt_v_cstr(s, A->kn[k]), A->kv[k]);
        if (d->t == JV_NS)
            for (size_t i = 0; i < d->u.d.n; i++)
                if (d->u.d.k[i]->t == JV_STR && d->u.d.k[i]->u.s.n && d->u.d.k[i]->u.s.p[0] == '_')
                    TERR("Chat templates cannot store underscore-prefixed attributes on a namespace");
        return d;
    }
    case F_RAISE: {
        jv *m = jt_arg(A, 0, "message");
        jsb b;
        jsb_init(&b, &s->a, 0);
        if (m) jt_str_of(s, m, &b);
        jt_rerr(s, MT_EINVAL, "%s", b.p ? b.p : "");
    }
    case F_STRFTIME: {
        jv *fmt = jt_arg(A, 0, "format");
        if (!fmt) TERR("strftime_now() missing argument 'format'");
        jsb b;
        jsb_init(&b, &s->a, 0);
        strftime_now(s, fmt, &b);
        return jt_v_sb(s, &b);
    }
    case F_CYCLE: {
        if (!A->np) TERR("no items for cycling given");
        return A->pos[fn->u.fn.self->u.lp.idx % A->np];
    }
    case F_UNSAFE:
        jt_rerr(s, MT_EINVAL, "access to attribute '%s' of '%s' object is unsafe", fn->u.fn.name, jt_tname(fn->u.fn.self));
    case F_METHOD: return jt_call_method(s, fn->u.fn.self, fn->u.fn.name, A, f);
    }
    TERR("object is not callable");
}

static jv *eval_node(S *s, jnode *n, jframe *f);
/* Every C-level recursion (expressions, bodies, macro calls) passes here or through
 * exec_body, so a bounded counter keeps the C stack bounded whatever the template. */
static jv *eval(S *s, jnode *n, jframe *f) {
    if (++s->rdepth > JX_MAX_RECURSION) jt_rerr(s, MT_ELIMIT, "template nesting too deep");
    jv *r = eval_node(s, n, f);
    s->rdepth--;
    return r;
}

static jv *eval_node(S *s, jnode *n, jframe *f) {
    jt_step(s, 1);
    s->line = n->line;
    switch (n->kind) {
    case N_CONST: return n->val;
    case N_NAME: {
        jv *v = fr_get(f, n->name);
        return v ? v : jt_v_undef(s, n->name);
    }
    case N_ATTR: {
        jv *o = eval(s, n->a, f);
        s->line = n->line;
        if (o->t == JV_UNDEF) jt_undef_err(s, o);
        jv *r = jt_get_attr(s, o, n->name);
        if (r->t == JV_UNDEF && !r->u.s.p) {
            jsb b;
            jsb_init(&b, &s->a, 0);
            jsb_printf(&b, "'%s object' has no attribute '%s'", jt_tname(o), n->name);
            r->u.s.p = b.p; /* message for later use */
            r->u.s.n = 1;
        }
        return r;
    }
    case N_ITEM: {
        jv *o = eval(s, n->a, f);
        jv *k = eval(s, n->b, f);
        s->line = n->line;
        jv *r = jt_get_item(s, o, k);
        if (r->t == JV_UNDEF && !r->u.s.p) {
            jsb b;
            jsb_init(&b, &s->a, 0);
            jsb_printf(&b, "'%s object' has no attribute ", jt_tname(o));
            jt_repr(s, k, &b, 0);
            r->u.s.p = b.p;
            r->u.s.n = 1;
        }
        return r;
    }
    case N_SLICE: {
        jv *o = eval(s, n->a, f);
        jv *a = n->b ? eval(s, n->b, f) : NULL, *b = n->c ? eval(s, n->c, f) : NULL, *c = n->d ? eval(s, n->d, f) : NULL;
        s->line = n->line;
        return jt_do_slice(s, o, a, b, c);
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
        return jt_apply_filter(s, n->name, v, &A, f);
    }
    case N_TEST: {
        jv *v = eval(s, n->a, f);
        args A;
        eval_args(s, n, f, &A, NULL);
        s->line = n->line;
        int r = jt_apply_test(s, n->name, v, &A, f);
        return jt_v_bool(s, n->op ? !r : r);
    }
    case N_BIN: {
        jv *a = eval(s, n->a, f), *b = eval(s, n->b, f);
        s->line = n->line;
        switch (n->op) {
        case OP_EQ: return jt_v_bool(s, jt_veq(a, b));
        case OP_NE: return jt_v_bool(s, !jt_veq(a, b));
        case OP_LT: return jt_v_bool(s, jt_vcmp(s, a, b) < 0);
        case OP_LE: return jt_v_bool(s, jt_vcmp(s, a, b) <= 0);
        case OP_GT: return jt_v_bool(s, jt_vcmp(s, a, b) > 0);
        case OP_GE: return jt_v_bool(s, jt_vcmp(s, a, b) >= 0);
        case OP_IN: return jt_v_bool(s, jt_contains(s, b, a));
        case OP_NOTIN: return jt_v_bool(s, !jt_contains(s, b, a));
        default: return jt_arith(s, n->op, a, b);
        }
    }
    case N_NEG: case N_POS: {
        jv *a = eval(s, n->a, f);
        s->line = n->line;
        if (a->t == JV_UNDEF) jt_undef_err(s, a);
        if (!jt_isnum(a)) TERR("bad operand type for unary %c: '%s'", n->kind == N_NEG ? '-' : '+', jt_tname(a));
        if (n->kind == N_POS) return a->t == JV_BOOL ? jt_v_int(s, a->u.b) : a;
        if (a->t == JV_FLOAT) return jt_v_float(s, -a->u.f);
        if (jt_numi(a) == INT64_MIN) TERR("integer overflow");
        return jt_v_int(s, -jt_numi(a));
    }
    case N_NOT: return jt_v_bool(s, !jt_truthy(eval(s, n->a, f)));
    case N_AND: {
        jv *a = eval(s, n->a, f);
        return jt_truthy(a) ? eval(s, n->b, f) : a;
    }
    case N_OR: {
        jv *a = eval(s, n->a, f);
        return jt_truthy(a) ? a : eval(s, n->b, f);
    }
    case N_CONCAT: {
        jsb b;
        jsb_init(&b, &s->a, s->max_output);
        b.line = n->line;
        for (int i = 0; i < n->nv; i++) jt_str_of(s, eval(s, n->v[i], f), &b);
        return jt_v_sb(s, &b);
    }
    case N_COND: {
        if (jt_truthy(eval(s, n->a, f))) return eval(s, n->b, f);
        return n->c ? eval(s, n->c, f) : jt_v_undef(s, NULL);
    }
    case N_LIST: case N_TUPLE: {
        jv *l = jt_v_list(s, (size_t)n->nv);
        if (n->kind == N_TUPLE) l->t = JV_TUPLE;
        for (int i = 0; i < n->nv; i++) l->u.l.v[l->u.l.n++] = eval(s, n->v[i], f);
        return l;
    }
    case N_DICT: {
        jv *d = jt_v_dict(s);
        for (int i = 0; i < n->nv; i++) {
            jv *k = eval(s, n->v[i], f);
            if (k->t == JV_LIST || k->t == JV_DICT || k->t == JV_NS) TERR("unhashable type: '%s'", jt_tname(k));
            jt_d_set(s, d, k, eval(s, n->w[i], f));
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
    return jt_apply_filter(s, chain->name, v, &A, f);
}

static jv *capture(S *s, jnode *body, jframe *f) {
    jsb *saved = s->out, buf;
    jsb_init(&buf, &s->a, s->max_output);
    s->out = &buf;
    exec_body(s, body, f);
    s->out = saved;
    return jt_v_sb(s, &buf);
}

static void exec_stmt(S *s, jnode *n, jframe *f) {
    jt_step(s, 1);
    s->line = n->line;
    switch (n->kind) {
    case N_TEXT: out_put(s, n->text, n->tlen); return;
    case N_OUT: {
        jv *v = eval(s, n->a, f);
        if (v->t == JV_STR) out_put(s, v->u.s.p, v->u.s.n);
        else if (v->t != JV_UNDEF) {
            s->out->line = n->line;
            jt_str_of(s, v, s->out);
        }
        return;
    }
    case N_IF:
        for (int i = 0; i < n->nv; i++)
            if (jt_truthy(eval(s, n->v[i], f))) { exec_body(s, n->w[i], f); return; }
        if (n->a) exec_body(s, n->a, f);
        return;
    case N_FOR: {
        jv *src = eval(s, n->b, f);
        s->line = n->line;
        jv *items = jt_iter_list(s, src);
        if (n->c) {
            jv *kept = jt_v_list(s, 0);
            for (size_t i = 0; i < items->u.l.n; i++) {
                jt_step(s, 1);
                jframe *lf = fr_new(s, f);
                assign(s, lf, n->a, items->u.l.v[i]);
                if (jt_truthy(eval(s, n->c, lf))) jt_l_push(s, kept, items->u.l.v[i]);
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
            jt_step(s, 1);
            jframe *lf = fr_new(s, f);
            jv *lp = jt_nv(s, JV_LOOP);
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
        jv *m = jt_nv(s, JV_MACRO);
        m->u.m.def = n;
        m->u.m.scope = f;
        fr_set(s, f, n->name, m);
        return;
    }
    case N_CALLBLOCK: {
        jv *caller = jt_nv(s, JV_MACRO);
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
        jt_str_of(s, r, s->out);
        return;
    }
    case N_FILTERBLOCK: {
        jv *v = capture(s, n->a, f);
        v = apply_filter_chain(s, n->c, v, f);
        jt_str_of(s, v, s->out);
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
    if (++s->rdepth > JX_MAX_RECURSION) jt_rerr(s, MT_ELIMIT, "template nesting too deep");
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
    s->none = jt_nv(s, JV_NONE);
    s->t = jt_nv(s, JV_BOOL);
    s->t->u.b = 1;
    s->f = jt_nv(s, JV_BOOL);
    jframe *g = fr_new(s, NULL);
    fr_set(s, g, "range", jt_v_func(s, F_RANGE, NULL, "range"));
    fr_set(s, g, "namespace", jt_v_func(s, F_NAMESPACE, NULL, "namespace"));
    fr_set(s, g, "dict", jt_v_func(s, F_DICT, NULL, "dict"));
    fr_set(s, g, "raise_exception", jt_v_func(s, F_RAISE, NULL, "raise_exception"));
    fr_set(s, g, "strftime_now", jt_v_func(s, F_STRFTIME, NULL, "strftime_now"));
    jframe *c = fr_new(s, g);
    if (ctx) {
        const char *k;
        json_t *x;
        json_object_foreach(ctx, k, x) fr_set(s, c, ja_strndup(&s->a, k, strlen(k)), jt_from_json(s, x, 0));
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
