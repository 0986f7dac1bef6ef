/* grammar_match.c - the byte-level matcher of a GBNF grammar: a pushdown automaton
 * whose state is the set of parse stacks alive after the input so far.
 *
 * Each stack holds element positions; its top is the next character class to match.
 * Advancing by a code point keeps the stacks whose top class contains it, moves their
 * top one element on, and expands the result: a GM_END pops (the rule is done; the
 * position below is where its caller continues), a GM_REF replaces the top by the
 * position after it and pushes one new stack per alternative of the rule.  A
 * reference followed by the end of its alternative pops first (tail call), so right
 * recursion such as S ::= X S | "" keeps stacks shallow.  Bytes are gathered into code
 * points; while a code point is incomplete the stacks whose class cannot contain any
 * completion are dropped, so a token ending mid-character is judged early.
 * ref: llama.cpp's grammar engine (llama-grammar.cpp) for the semantics, not the code. */
#include <stdlib.h>
#include <string.h>

#include "gen/grammar_int.h"

void gm_vec_free(gm_vec *v) { free(v->p); memset(v, 0, sizeof *v); }

int gm_vec_reserve(gm_vec *v, size_t extra) {
    if (v->oom) return MT_ENOMEM;
    if (v->n + extra <= v->cap) return MT_OK;
    size_t nc = v->cap ? v->cap * 2 : 64;
    while (nc < v->n + extra) nc *= 2;
    uint32_t *q = realloc(v->p, nc * sizeof *q);
    if (!q) { v->oom = 1; return MT_ENOMEM; }
    v->p = q; v->cap = nc;
    return MT_OK;
}

void gm_scratch_free(gm_scratch *s) {
    gm_vec_free(&s->work); gm_vec_free(&s->stage); gm_vec_free(&s->tmp);
    free(s->idx);
    memset(s, 0, sizeof *s);
}

int gm_class_has(const mt_grammar *g, uint32_t c, uint32_t cp) {
    const gm_range *r = g->ranges + g->classes[c].off;
    size_t lo = 0, hi = g->classes[c].n;
    while (lo < hi) {
        size_t m = (lo + hi) / 2;
        if (cp < r[m].lo) hi = m;
        else if (cp > r[m].hi) lo = m + 1;
        else return 1;
    }
    return 0;
}

int gm_class_meets(const mt_grammar *g, uint32_t c, uint32_t lo, uint32_t hi) {
    const gm_range *r = g->ranges + g->classes[c].off;
    for (uint32_t i = 0; i < g->classes[c].n; i++)
        if (r[i].lo <= hi && r[i].hi >= lo) return 1;
    return 0;
}

size_t gm_state_len(const uint32_t *st) {
    size_t k = 3;
    for (uint32_t i = 0; i < st[2]; i++) k += 1 + st[k];
    return k;
}

int gm_state_can_end(const uint32_t *st) {
    if (st[1]) return 0;
    size_t k = 3;
    for (uint32_t i = 0; i < st[2]; i++) {
        if (st[k] == 0) return 1;
        k += 1 + st[k];
    }
    return 0;
}

/* ---- expansion ---- */
/* work holds stacks as [positions..., depth]; stage gets [depth, positions...] */
static int push_work(gm_vec *w, const uint32_t *st, size_t d, int has_extra, uint32_t extra) {
    if (d + (size_t)has_extra > MT_GRAMMAR_MAX_DEPTH) return MT_ELIMIT;
    MT_TRY(gm_vec_reserve(w, d + 2));
    if (d) memcpy(w->p + w->n, st, d * sizeof *st);
    w->n += d;
    if (has_extra) { w->p[w->n++] = extra; d++; }
    w->p[w->n++] = (uint32_t)d;
    return MT_OK;
}

static int run_work(const mt_grammar *g, gm_scratch *s, size_t *nstage) {
    size_t iters = 0;
    while (s->work.n) {
        if (++iters > (size_t)MT_GRAMMAR_MAX_STACKS * 64) return MT_ELIMIT;
        size_t d = s->work.p[s->work.n - 1];
        s->tmp.n = 0;
        MT_TRY(gm_vec_reserve(&s->tmp, d + 1));
        memcpy(s->tmp.p, s->work.p + s->work.n - 1 - d, d * sizeof(uint32_t));
        s->work.n -= d + 1;
        uint32_t *st = s->tmp.p;
        for (;;) {
            if (d && g->elems[st[d - 1]].type == GM_END) { d--; continue; }
            if (!d || g->elems[st[d - 1]].type == GM_CHR || g->elems[st[d - 1]].type == GM_CTX) {
                if (++*nstage > MT_GRAMMAR_MAX_STACKS) return MT_ELIMIT;
                MT_TRY(gm_vec_reserve(&s->stage, d + 1));
                s->stage.p[s->stage.n++] = (uint32_t)d;
                memcpy(s->stage.p + s->stage.n, st, d * sizeof *st);
                s->stage.n += d;
                break;
            }
            const gm_rule *r = &g->rules[g->elems[st[d - 1]].v];
            st[d - 1]++;                               /* the caller continues after the reference */
            while (d && g->elems[st[d - 1]].type == GM_END) d--;   /* tail call */
            for (uint32_t a = r->nalt; a-- > 0;)
                MT_TRY(push_work(&s->work, st, d, 1, g->alts[r->alt_off + a]));
            break;
        }
    }
    return MT_OK;
}

static int cmp_stacks(const void *a, const void *b, void *ctx) {
    const uint32_t *base = ctx;
    const uint32_t *x = base + *(const size_t *)a, *y = base + *(const size_t *)b;
    if (x[0] != y[0]) return x[0] < y[0] ? -1 : 1;
    for (uint32_t i = 1; i <= x[0]; i++)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}

/* sorted, unique stacks of stage -> out (after the 3-word header) */
static int canon(gm_scratch *s, size_t nstage, uint32_t partial, uint32_t left, gm_vec *out) {
    if (nstage > s->idxcap) {
        size_t *q = realloc(s->idx, nstage * sizeof *q);
        if (!q) return MT_ENOMEM;
        s->idx = q; s->idxcap = nstage;
    }
    size_t k = 0;
    for (size_t i = 0; i < nstage; i++) { s->idx[i] = k; k += 1 + s->stage.p[k]; }
    if (nstage > 1) qsort_r(s->idx, nstage, sizeof *s->idx, cmp_stacks, s->stage.p);
    out->n = 0;
    MT_TRY(gm_vec_reserve(out, 3 + s->stage.n));
    out->p[0] = partial; out->p[1] = left; out->p[2] = 0;
    out->n = 3;
    for (size_t i = 0; i < nstage; i++) {
        if (i && !cmp_stacks(&s->idx[i], &s->idx[i - 1], s->stage.p)) continue;
        const uint32_t *x = s->stage.p + s->idx[i];
        memcpy(out->p + out->n, x, (1 + x[0]) * sizeof *x);
        out->n += 1 + x[0];
        out->p[2]++;
    }
    return MT_OK;
}

int gm_state_init(const mt_grammar *g, gm_vec *out, gm_scratch *s) {
    s->work.n = s->stage.n = 0;
    const gm_rule *r = &g->rules[g->root];
    for (uint32_t a = r->nalt; a-- > 0;) MT_TRY(push_work(&s->work, NULL, 0, 1, g->alts[r->alt_off + a]));
    size_t ns = 0;
    MT_TRY(run_work(g, s, &ns));
    return canon(s, ns, 0, 0, out);
}

/* advance the stacks selected by sel (bit i: stack i; NULL: those whose top contains cp) */
static int advance_sel(const mt_grammar *g, const uint32_t *in, uint32_t cp, const uint64_t *sel, gm_vec *out,
                       gm_scratch *s) {
    s->work.n = s->stage.n = 0;
    size_t k = 3;
    for (uint32_t i = 0; i < in[2]; i++) {
        uint32_t d = in[k];
        const uint32_t *st = in + k + 1;
        int take = sel ? (int)(*sel >> i & 1)
                       : d && g->elems[st[d - 1]].type == GM_CHR && gm_class_has(g, g->elems[st[d - 1]].v, cp);
        if (take && d) MT_TRY(push_work(&s->work, st, d - 1, 1, st[d - 1] + 1));
        k += 1 + d;
    }
    size_t ns = 0;
    MT_TRY(run_work(g, s, &ns));
    return canon(s, ns, 0, 0, out);
}

static int advance_cp(const mt_grammar *g, const uint32_t *in, uint32_t cp, gm_vec *out, gm_scratch *s) {
    return advance_sel(g, in, cp, NULL, out, s);
}

int gm_state_byte_cp(const uint32_t *st, unsigned char b, uint32_t *cp) {
    if (!st[1]) { *cp = b; return b < 0x80; }
    if (st[1] != 1 || (b & 0xC0) != 0x80) return 0;
    *cp = (st[0] << 6) | (b & 0x3Fu);      /* prefixes were checked as they came */
    return 1;
}

int gm_state_cp_sel(const mt_grammar *g, const uint32_t *st, uint32_t cp, uint64_t *sel) {
    if (st[2] > 64) return 0;
    uint64_t m = 0;
    size_t k = 3;
    for (uint32_t i = 0; i < st[2]; i++) {
        uint32_t d = st[k];
        if (d && g->elems[st[k + d]].type == GM_CHR && gm_class_has(g, g->elems[st[k + d]].v, cp)) m |= 1ULL << i;
        k += 1 + d;
    }
    *sel = m;
    return 1;
}

int gm_state_advance_sel(const mt_grammar *g, const uint32_t *st, uint64_t sel, gm_vec *out, gm_scratch *s) {
    return advance_sel(g, st, 0, &sel, out, s);
}

/* keep the stacks whose top class meets [lo, hi]; the set stays sorted */
static int filter_partial(const mt_grammar *g, const uint32_t *in, uint32_t partial, uint32_t left, uint32_t min,
                          gm_vec *out) {
    uint32_t lo = partial << (6 * left), hi = lo | ((1u << (6 * left)) - 1);
    if (lo < min) lo = min;                    /* the shortest form of a code point only */
    if (hi > 0x10FFFF) hi = 0x10FFFF;
    out->n = 0;
    MT_TRY(gm_vec_reserve(out, gm_state_len(in)));
    out->p[0] = partial; out->p[1] = left; out->p[2] = 0;
    out->n = 3;
    size_t k = 3;
    for (uint32_t i = 0; i < in[2]; i++) {
        uint32_t d = in[k];
        if (d && lo <= hi && g->elems[in[k + d]].type == GM_CHR && gm_class_meets(g, g->elems[in[k + d]].v, lo, hi)) {
            memcpy(out->p + out->n, in + k, (1 + d) * sizeof *in);
            out->n += 1 + d;
            out->p[2]++;
        }
        k += 1 + d;
    }
    return MT_OK;
}

static void set_dead(gm_vec *out) {
    out->n = 0;
    if (gm_vec_reserve(out, 3)) return;
    out->p[0] = out->p[1] = out->p[2] = 0;
    out->n = 3;
}

int gm_state_byte(const mt_grammar *g, const uint32_t *in, unsigned char b, gm_vec *out, gm_scratch *s) {
    uint32_t partial = in[0], left = in[1];
    if (!left) {
        if (b < 0x80) return advance_cp(g, in, b, out, s);
        if (b >= 0xC2 && b <= 0xDF) return filter_partial(g, in, b & 0x1Fu, 1, 0x80, out);
        if (b >= 0xE0 && b <= 0xEF) return filter_partial(g, in, b & 0x0Fu, 2, 0x800, out);
        if (b >= 0xF0 && b <= 0xF4) return filter_partial(g, in, b & 0x07u, 3, 0x10000, out);
        set_dead(out);
        return out->oom ? MT_ENOMEM : MT_OK;
    }
    if ((b & 0xC0) != 0x80) { set_dead(out); return out->oom ? MT_ENOMEM : MT_OK; }
    partial = (partial << 6) | (b & 0x3Fu);
    left--;
    if (left) {
        /* reject overlong / surrogate / too-large prefixes as soon as they show */
        uint32_t lo = partial << (6 * left);
        if ((left == 1 && in[1] == 2 && (lo < 0x800 || (lo >= 0xD800 && lo <= 0xDFFF))) ||
            (left == 2 && in[1] == 3 && (lo < 0x10000 || lo > 0x10FFFF))) {
            set_dead(out);
            return out->oom ? MT_ENOMEM : MT_OK;
        }
        return filter_partial(g, in, partial, left, 0, out);
    }
    return advance_cp(g, in, partial, out, s);
}

int mt_grammar_match(const mt_grammar *g, const char *bytes, size_t n) {
    if (!g || (!bytes && n)) return 0;
    gm_scratch s = {0};
    gm_vec a = {0}, b = {0};
    int ok = 0;
    if (gm_state_init(g, &a, &s) == MT_OK) {
        ok = 1;
        for (size_t i = 0; i < n && ok; i++) {
            if (gm_state_byte(g, a.p, (unsigned char)bytes[i], &b, &s) != MT_OK || gm_state_dead(b.p)) ok = 0;
            gm_vec t = a; a = b; b = t;
        }
        ok = ok && gm_state_can_end(a.p);
    }
    gm_vec_free(&a); gm_vec_free(&b); gm_scratch_free(&s);
    return ok;
}
