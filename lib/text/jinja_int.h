/* jinja_int.h - internals shared by the Jinja lexer/parser and evaluator:
 * arena allocation, the AST, and the value type.  Errors inside the parser
 * and the evaluator unwind with longjmp to the public entry point; all memory
 * of one parse or one render lives in one arena, freed as a whole. */
#ifndef MT_JINJA_INT_H
#define MT_JINJA_INT_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

/* ---- arena ---- */
typedef struct ja_blk ja_blk;
typedef struct ja_arena {
    ja_blk *head;
    size_t total, limit;
    jmp_buf *jb; /* where to jump on exhaustion */
    mt_err *err;
} ja_arena;
void *ja_alloc(ja_arena *a, size_t n); /* zeroed; longjmps on failure/limit */
char *ja_strndup(ja_arena *a, const char *s, size_t n);
void ja_free_all(ja_arena *a);

/* ---- string builder (arena-backed) ---- */
typedef struct jsb {
    ja_arena *a;
    char *p;
    size_t n, cap, max;
    jmp_buf *jb;
    mt_err *err;
    int line;
} jsb;
void jsb_init(jsb *b, ja_arena *a, size_t max);
void jsb_put(jsb *b, const char *s, size_t n);
void jsb_puts(jsb *b, const char *s);
void jsb_putc(jsb *b, char c);
void jsb_printf(jsb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- AST ---- */
enum {
    /* statements */
    N_BODY = 1, N_TEXT, N_OUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_CALLBLOCK, N_FILTERBLOCK,
    N_BREAK, N_CONTINUE, N_WITH, N_GEN,
    /* expressions */
    N_CONST, N_NAME, N_ATTR, N_ITEM, N_SLICE, N_CALL, N_FILTER, N_TEST, N_BIN, N_NEG, N_POS, N_NOT,
    N_AND, N_OR, N_CMP, N_CONCAT, N_COND, N_LIST, N_TUPLE, N_DICT, N_KWARG, N_STARARG, N_STARKW
};
enum { OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FDIV, OP_MOD, OP_POW,
       OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_IN, OP_NOTIN };

struct jv;
typedef struct jnode {
    int kind, line, op;
    int nd;                        /* expression nesting depth (bounded by the parser) */
    struct jnode *a, *b, *c, *d;   /* children (meaning depends on kind) */
    struct jnode **v; int nv;      /* list children: body stmts, args, items */
    struct jnode **w; int nw;      /* second list: kwargs, dict values, elif bodies... */
    const char *name;              /* identifier / filter / test / attribute */
    struct jv *val;                /* N_CONST */
    const char *text; size_t tlen; /* N_TEXT */
} jnode;

/* ---- values ---- */
typedef enum { JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_TUPLE, JV_DICT,
               JV_NS, JV_MACRO, JV_FUNC, JV_LOOP } jv_type;
struct jframe;
typedef struct jv {
    jv_type t;
    union {
        int b;
        long long i;
        double f;
        struct { const char *p; size_t n; } s; /* JV_STR; JV_UNDEF keeps the missing name in p (may be NULL) */
        struct { struct jv **v; size_t n, cap; int view; const char *lazy_err; } l; /* LIST, TUPLE; view: 1..3 =
                                                  dict_items/keys/values, 4 = one-shot generator (lazy_err: raised when consumed) */
        struct { struct jv **k, **v; size_t n, cap; } d;             /* DICT, NS */
        struct { const jnode *def; struct jframe *scope; struct jv *caller; } m; /* MACRO */
        struct { int id; struct jv *self; const char *name; } fn;  /* FUNC: builtin or bound method */
        struct { struct jv **items; size_t n, idx; struct jv *cyc; } lp;  /* LOOP */
    } u;
} jv;

/* parse entry (jinja_parse.c): returns root N_BODY or NULL with err set */
jnode *jx_parse(ja_arena *a, const char *src, size_t len, mt_err *err);
#define JX_MAX_PARSE_DEPTH 200
#define JX_MAX_RECURSION 2000 /* evaluator C recursion bound (expressions + bodies) */

#endif
