/* grammar_int.h - the compiled form of a GBNF grammar and the byte-level matcher
 * state, shared by grammar.c (parser), grammar_match.c (matcher) and constrain.c
 * (token level).  Not part of the public API.
 *
 * A grammar is a flat array of elements.  Each alternative of each rule is a run of
 * GM_CHR / GM_REF elements closed by GM_END; a rule lists the start positions of its
 * alternatives.  Character classes are sorted, merged, positive code point ranges
 * (negated classes are complemented when parsed).
 *
 * A matcher state is a canonical set of parse stacks, stored flat in uint32s:
 *   [0] partial code point bits   [1] continuation bytes still expected (0..3)
 *   [2] number of stacks          then per stack: depth d, then d element positions
 *                                 (bottom first; the top is a GM_CHR, or d == 0: the
 *                                 whole input so far is a sentence).
 * Stacks are sorted and unique, so equal states have equal words (hashable). */
#ifndef MT_GRAMMAR_INT_H
#define MT_GRAMMAR_INT_H

#include <stddef.h>
#include <stdint.h>

#include "gen/grammar.h"

/* GM_CTX: one element after all rules, never in an alternative: a stack bottom standing for
 * "whatever the enclosing context continues with" (constrain.c's shared masks) */
enum { GM_END = 0, GM_CHR = 1, GM_REF = 2, GM_CTX = 3 };

typedef struct { uint8_t type; uint32_t v; } gm_elem;   /* GM_CHR: class; GM_REF: rule */
typedef struct { uint32_t lo, hi; } gm_range;
typedef struct { uint32_t off, n; } gm_class;           /* ranges[off .. off+n) */
typedef struct { uint32_t alt_off, nalt; } gm_rule;     /* alts[alt_off .. +nalt): element positions */

struct mt_grammar {
    gm_elem *elems; size_t nelems;
    gm_range *ranges; size_t nranges;
    gm_class *classes; size_t nclasses;
    gm_rule *rules; size_t nrules;
    uint32_t *alts; size_t nalts;
    uint32_t root;
    uint32_t ctx;                /* position of the GM_CTX element */
};

/* growable uint32 vector; oom sticky */
typedef struct { uint32_t *p; size_t n, cap; int oom; } gm_vec;
void gm_vec_free(gm_vec *v);
int  gm_vec_reserve(gm_vec *v, size_t extra);

/* scratch buffers for the matcher (reused between calls) */
typedef struct { gm_vec work, stage, tmp; size_t *idx; size_t idxcap; } gm_scratch;
void gm_scratch_free(gm_scratch *s);

/* 1 if class c contains code point cp / intersects [lo, hi] */
int gm_class_has(const mt_grammar *g, uint32_t c, uint32_t cp);
int gm_class_meets(const mt_grammar *g, uint32_t c, uint32_t lo, uint32_t hi);

/* The state before any input into *out. MT_OK, MT_ENOMEM, MT_ELIMIT. */
int gm_state_init(const mt_grammar *g, gm_vec *out, gm_scratch *s);
/* The state after one more byte: *out (cleared first; out != in).  A dead state has
 * no stacks (out->p[2] == 0).  MT_OK, MT_ENOMEM, MT_ELIMIT. */
int gm_state_byte(const mt_grammar *g, const uint32_t *in, unsigned char b, gm_vec *out, gm_scratch *s);
static inline int gm_state_dead(const uint32_t *st) { return st[2] == 0; }
/* 1 if the input so far is a complete sentence */
int gm_state_can_end(const uint32_t *st);
/* Code-point steps by stack selection: the result of a code point depends only on which
 * stacks' top classes contain it, so callers may memoize it by that set.
 * gm_state_byte_cp: 1 when byte b completes a code point from st (*cp), 0 otherwise (then
 * use gm_state_byte).  gm_state_cp_sel: the set (bit i = stack i) for cp; 0 if st has over
 * 64 stacks.  gm_state_advance_sel: gm_state_byte's result for any code point with set sel. */
int gm_state_byte_cp(const uint32_t *st, unsigned char b, uint32_t *cp);
int gm_state_cp_sel(const mt_grammar *g, const uint32_t *st, uint32_t cp, uint64_t *sel);
int gm_state_advance_sel(const mt_grammar *g, const uint32_t *st, uint64_t sel, gm_vec *out, gm_scratch *s);
/* words of a state */
size_t gm_state_len(const uint32_t *st);

#endif
