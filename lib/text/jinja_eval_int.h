/* jinja_eval_int.h - internals shared by the files of the Jinja evaluator
 * (jinja_eval.c, jinja_value.c, jinja_ops.c, jinja_methods.c,
 * jinja_filters.c): the render state S, variable frames, call arguments, the
 * builtin function ids, and the jt_-prefixed functions one of those files
 * defines and the others call.  Errors raised with jt_rerr()/TERR longjmp to
 * mt_jinja_render; every value lives in the render's arena.  Not part of the
 * public API and not used by the parser. */
#ifndef MT_JINJA_EVAL_INT_H
#define MT_JINJA_EVAL_INT_H

#include <jansson.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include "text/jinja_int.h"

/* ---- render state ---- */
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

/* ---- builtin ids (JV_FUNC u.fn.id) ---- */
enum { F_RANGE = 1, F_NAMESPACE, F_DICT, F_RAISE, F_STRFTIME, F_METHOD, F_UNSAFE, F_CYCLE };

/* ---- errors and step accounting (jinja_value.c) ---- */
_Noreturn void jt_rerr(S *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#define TERR(...) jt_rerr(s, MT_EINVAL, __VA_ARGS__)
void jt_step(S *s, size_t k);

/* ---- value constructors, dicts, JSON input (jinja_value.c) ---- */
jv *jt_nv(S *s, jv_type t);
jv *jt_v_int(S *s, long long i);
jv *jt_v_float(S *s, double f);
jv *jt_v_bool(S *s, int b);
jv *jt_v_strn(S *s, const char *p, size_t n);
jv *jt_v_str_nocopy(S *s, const char *p, size_t n);
jv *jt_v_cstr(S *s, const char *p);
jv *jt_v_sb(S *s, jsb *b);
jv *jt_v_undef(S *s, const char *name);
jv *jt_v_list(S *s, size_t cap);
void jt_l_push(S *s, jv *l, jv *x);
jv *jt_v_dict(S *s);
jv *jt_v_tuple2(S *s, jv *a, jv *b);
jv *jt_v_func(S *s, int id, jv *self, const char *name);
jv *jt_d_get(jv *d, jv *k);
jv *jt_d_gets(jv *d, const char *k, size_t n);
void jt_d_set(S *s, jv *d, jv *k, jv *v);
jv *jt_from_json(S *s, json_t *j, int depth);

/* ---- UTF-8 and Unicode classes (jinja_value.c) ---- */
int32_t jt_u8next(const char *p, size_t n, size_t *i);
void jt_u8put(jsb *b, int32_t cp);
size_t jt_u8len(const char *p, size_t n);
size_t *jt_u8offs(S *s, const char *p, size_t n, size_t *cnt);
int jt_u_isspace(int32_t c);
int jt_u_isalpha(int32_t c);
int jt_u_isdigit(int32_t c);
int jt_u_iscased_upper(int32_t c);
int jt_u_iscased_lower(int32_t c);

/* ---- str / repr, truth, equality, ordering (jinja_value.c) ---- */
void jt_fmt_float(double x, char *out, size_t cap);
void jt_str_of(S *s, jv *v, jsb *b);
void jt_repr(S *s, jv *v, jsb *b, int depth);
jv *jt_to_strv(S *s, jv *v);
const char *jt_tname(jv *v);
_Noreturn void jt_undef_err(S *s, jv *u);
int jt_truthy(jv *v);
int jt_isnum(jv *v);
double jt_numf(jv *v);
long long jt_numi(jv *v);
int jt_veq(jv *a, jv *b);
int jt_vcmp(S *s, jv *a, jv *b);

/* ---- access, slicing, iteration, membership, arithmetic (jinja_ops.c) ---- */
extern const char *const jt_DICT_METHODS[];
extern const char *const jt_DICT_UNSAFE[];
const char *jt_in_list(const char *const *l, const char *name);
jv *jt_get_attr(S *s, jv *o, const char *name);
jv *jt_get_item(S *s, jv *o, jv *k);
jv *jt_do_slice(S *s, jv *o, jv *a, jv *b, jv *c);
jv *jt_iter_list(S *s, jv *v);
long long jt_vlen(S *s, jv *v);
int jt_contains(S *s, jv *hay, jv *x);
jv *jt_arith(S *s, int op, jv *a, jv *b);

/* ---- str / dict / list methods and string helpers (jinja_methods.c) ---- */
jv *jt_str_strip(S *s, jv *v, jv *chars, int left, int right);
jv *jt_str_map(S *s, jv *v, int mode); /* 0 upper 1 lower 2 capitalize 3 swapcase 4 python title */
jv *jt_jinja_title(S *s, jv *v);
jv *jt_str_replace(S *s, jv *v, jv *old, jv *new_, long long count);
jv *jt_str_pad(S *s, jv *v, long long width, jv *fill, int mode); /* 0 center 1 ljust 2 rjust */
long long jt_int_arg(S *s, jv *v, long long dflt);
jv *jt_call_method(S *s, jv *self, const char *m, args *A, jframe *f);
jv *jt_str_join(S *s, jv *sep, jv *items, jframe *f, jv *attr);

/* ---- filters and tests (jinja_filters.c) ---- */
jv *jt_apply_filter(S *s, const char *name, jv *v, args *A, jframe *f);
int jt_apply_test(S *s, const char *name, jv *v, args *A, jframe *f);

/* ---- evaluator core (jinja_eval.c) ---- */
jv *jt_arg(args *A, size_t i, const char *name); /* positional i, else keyword name, else NULL */

#endif
