/* constrain.c - token-level grammar constraint: the vocabulary's token bytes in a trie,
 * allowed-token bitsets computed by walking that trie from a matcher state (a subtree is
 * skipped as soon as its prefix is rejected), and a bounded cache of those bitsets keyed
 * by the canonical matcher state (grammar_int.h), shared by the sequences of a loop. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/constrain.h"
#include "gen/grammar_int.h"

/* ---------------- vocabulary ---------------- */
struct mt_tokvocab {
    size_t nvocab;               /* model_vocab */
    char *bytes; size_t *off;    /* token t: bytes[off[t] .. off[t+1]) */
    uint8_t *is_eos;             /* per id */
    int32_t *eos; size_t n_eos;
    /* the trie in preorder: node 0 is the root; node i has byte[i] at depth[i], its
     * subtree is [i, skip[i]); the tokens ending at it are toks[tok_off[i] .. tok_off[i+1]) */
    size_t nnodes;
    uint8_t *byte; uint16_t *depth; uint32_t *skip, *tok_off, *parent; int32_t *toks;
    size_t maxdepth;
};

size_t mt_tokvocab_size(const mt_tokvocab *v) { return v ? v->nvocab : 0; }

const char *mt_tokvocab_bytes(const mt_tokvocab *v, int32_t t, size_t *n) {
    if (!v || t < 0 || (size_t)t >= v->nvocab || v->off[t] == v->off[t + 1]) { if (n) *n = 0; return NULL; }
    if (n) *n = v->off[t + 1] - v->off[t];
    return v->bytes + v->off[t];
}

void mt_tokvocab_free(mt_tokvocab *v) {
    if (!v) return;
    free(v->bytes); free(v->off); free(v->is_eos); free(v->eos);
    free(v->byte); free(v->depth); free(v->skip); free(v->tok_off); free(v->toks); free(v->parent);
    free(v);
}

static int cmp_tok(const void *a, const void *b, void *ctx) {
    const mt_tokvocab *v = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    size_t nx = v->off[x + 1] - v->off[x], ny = v->off[y + 1] - v->off[y];
    int c = memcmp(v->bytes + v->off[x], v->bytes + v->off[y], nx < ny ? nx : ny);
    if (c) return c;
    if (nx != ny) return nx < ny ? -1 : 1;
    return x < y ? -1 : x > y;
}

enum { TV_MAX_TOKEN = 65535 };       /* bytes of one token (the trie's depth type) */

int mt_tokvocab_new(mt_tokvocab **out, const mt_tokenizer *tok, size_t model_vocab, const int32_t *eos, size_t n_eos,
                    mt_err *err) {
    if (!out || !tok || (!eos && n_eos)) return mt_seterr(err, MT_EINVAL, "constrain: bad arguments");
    *out = NULL;
    size_t ntok = mt_tokenizer_vocab_size(tok);
    if (!model_vocab) model_vocab = ntok;
    if (model_vocab > (size_t)INT32_MAX - 1) return mt_seterr(err, MT_EINVAL, "constrain: vocabulary too large");
    for (size_t i = 0; i < n_eos; i++)
        if (eos[i] < 0 || (size_t)eos[i] >= model_vocab)
            return mt_seterr(err, MT_EINVAL, "constrain: eos id %d outside the vocabulary (%zu)", (int)eos[i],
                             model_vocab);
    mt_tokvocab *v = calloc(1, sizeof *v);
    int32_t *order = NULL, *stack = NULL;
    char *buf = NULL;
    size_t bufcap = 256, cap = 1 << 20, n = 0;
    int rc = MT_OK;
    if (!v) return mt_seterr(err, MT_ENOMEM, "constrain: out of memory");
    v->nvocab = model_vocab;
    v->off = calloc(model_vocab + 1, sizeof *v->off);
    v->is_eos = calloc(model_vocab ? model_vocab : 1, 1);
    v->eos = malloc((n_eos ? n_eos : 1) * sizeof *v->eos);
    v->bytes = malloc(cap);
    buf = malloc(bufcap);
    if (!v->off || !v->is_eos || !v->eos || !v->bytes || !buf) goto oom;
    if (n_eos) memcpy(v->eos, eos, n_eos * sizeof *eos);
    v->n_eos = n_eos;
    for (size_t i = 0; i < n_eos; i++) v->is_eos[eos[i]] = 1;
    /* token bytes */
    for (size_t t = 0; t < model_vocab; t++) {
        v->off[t] = n;
        if (t >= ntok || v->is_eos[t]) continue;
        const char *p = NULL;
        int len = mt_tokenizer_token_bytes(tok, (int32_t)t, buf, bufcap, &p);
        if (len > 0 && p == buf && (size_t)len > bufcap) {
            while (bufcap < (size_t)len) bufcap *= 2;
            char *q = realloc(buf, bufcap);
            if (!q) goto oom;
            buf = q;
            len = mt_tokenizer_token_bytes(tok, (int32_t)t, buf, bufcap, &p);
        }
        if (len <= 0) continue;
        if (len > TV_MAX_TOKEN) continue;     /* never allowed */
        if (n + (size_t)len > cap) {
            while (n + (size_t)len > cap) cap *= 2;
            char *q = realloc(v->bytes, cap);
            if (!q) goto oom;
            v->bytes = q;
        }
        memcpy(v->bytes + n, p, (size_t)len);
        n += (size_t)len;
    }
    v->off[model_vocab] = n;
    /* trie: tokens with bytes in lexicographic order, one node per new byte */
    size_t nt = 0;
    order = malloc((model_vocab ? model_vocab : 1) * sizeof *order);
    if (!order) goto oom;
    for (size_t t = 0; t < model_vocab; t++)
        if (v->off[t + 1] > v->off[t]) order[nt++] = (int32_t)t;
    qsort_r(order, nt, sizeof *order, cmp_tok, v);
    size_t maxn = n + 1;
    v->byte = malloc(maxn); v->depth = malloc(maxn * sizeof *v->depth); v->parent = malloc(maxn * sizeof *v->parent);
    v->skip = malloc(maxn * sizeof *v->skip); v->tok_off = calloc(maxn + 1, sizeof *v->tok_off);
    v->toks = malloc((nt ? nt : 1) * sizeof *v->toks);
    stack = malloc((TV_MAX_TOKEN + 2) * sizeof *stack);    /* open node at each depth */
    if (!v->byte || !v->depth || !v->skip || !v->tok_off || !v->toks || !v->parent || !stack) goto oom;
    size_t nn = 1, sd = 1;       /* nodes, open path length (stack[0] = root) */
    v->byte[0] = 0; v->depth[0] = 0; v->parent[0] = 0; stack[0] = 0;
    const char *prev = NULL; size_t prevn = 0;
    uint32_t *cnt = v->tok_off + 1;      /* counts per node, turned into offsets below */
    int32_t *endnode = malloc((nt ? nt : 1) * sizeof *endnode);
    if (!endnode) goto oom;
    for (size_t k = 0; k < nt; k++) {
        int32_t t = order[k];
        const char *s = v->bytes + v->off[t];
        size_t len = v->off[t + 1] - v->off[t], lcp = 0;
        while (prev && lcp < len && lcp < prevn && s[lcp] == prev[lcp]) lcp++;
        /* close the open nodes deeper than the common prefix */
        while (sd > lcp + 1) { sd--; v->skip[stack[sd]] = (uint32_t)nn; }
        for (size_t d = lcp; d < len; d++) {
            v->byte[nn] = (uint8_t)s[d]; v->depth[nn] = (uint16_t)(d + 1); v->parent[nn] = (uint32_t)stack[d];
            stack[sd++] = (int32_t)nn;
            nn++;
        }
        endnode[k] = stack[len];
        cnt[stack[len]]++;
        if (len > v->maxdepth) v->maxdepth = len;
        prev = s; prevn = len;
    }
    while (sd > 0) { sd--; v->skip[stack[sd]] = (uint32_t)nn; }
    v->nnodes = nn;
    for (size_t i = 0; i < nn; i++) v->tok_off[i + 1] += v->tok_off[i];
    {
        uint32_t *fill = calloc(nn ? nn : 1, sizeof *fill);
        if (!fill) { free(endnode); goto oom; }
        for (size_t k = 0; k < nt; k++) {
            int32_t e = endnode[k];
            v->toks[v->tok_off[e] + fill[e]++] = order[k];
        }
        free(fill);
    }
    free(endnode);
    free(order); free(stack); free(buf);
    *out = v;
    return rc;
oom:
    free(order); free(stack); free(buf);
    mt_tokvocab_free(v);
    return mt_seterr(err, MT_ENOMEM, "constrain: out of memory");
}

/* ---------------- the mask cache ---------------- */
typedef struct centry {
    uint64_t hash;
    uint32_t *key; size_t keylen;   /* the state words */
    uint64_t *bits;                 /* allowed tokens (eos not included) */
    size_t nallowed;
    uint32_t *unres; size_t nunres; /* shared entries: trie nodes whose tokens reach the context */
} centry;

struct mt_grammar_tokens {
    const mt_grammar *g;
    const mt_tokvocab *v;
    size_t nwords;                  /* uint64 words per bitset */
    centry **slots; size_t mask, count;
    size_t bytes, limit;
    uint64_t generation;            /* bumped when the cache is emptied */
    gm_scratch s;
    uint32_t *lv; size_t nlv;       /* walk: the state id at each trie depth */
    gm_vec tmp, next;
    /* states met by the walks, interned: words pool[off[i] .. off[i+1]); trans[i] (NULL until
     * needed) maps a byte to the next state's id, TR_UNKNOWN or TR_DEAD.  Emptied between
     * walks when it grows past its bound. */
    gm_vec pool; size_t *off; uint32_t **trans; size_t nstates, capstates;
    uint8_t *ctxf;                  /* per state: a stack has reached the GM_CTX bottom */
    uint64_t sepoch;                /* bumped when the states are emptied (ids change) */
    gm_vec unres;                   /* a walk's nodes left to the concrete context */
    uint32_t *ids; size_t idmask;   /* hash -> state id + 1 (0 empty) */
    /* code-point steps memoized by (stacks of the source state, selected stacks) */
    struct selmemo { uint64_t h, sel; uint32_t src, dst; } *memo; size_t memomask, nmemo;
    mt_grammar_tokens_stats st;
};

struct mt_constraint {
    mt_grammar_tokens *gt;
    gm_vec cur, nxt;
    int ended;
    const centry *e; uint64_t egen;  /* the cache entry of cur, when known */
    float *eos_save;                 /* the eos logits while masking */
};

static uint64_t tk_mix(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb3fe1a85ec53ULL; x ^= x >> 33;
    return x;
}

static uint64_t hash_words(const uint32_t *w, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL ^ (n * 0x9E3779B97F4A7C15ULL);
    for (size_t i = 0; i < n; i++) {
        h = (h ^ w[i]) * 0x100000001b3ULL;
        h ^= h >> 29;
    }
    return h ^ (h >> 32);
}

static void cache_clear(mt_grammar_tokens *gt) {
    for (size_t i = 0; i <= gt->mask; i++) {
        centry *e = gt->slots[i];
        if (!e) continue;
        free(e->key); free(e->bits); free(e->unres); free(e);
        gt->slots[i] = NULL;
    }
    gt->count = 0;
    gt->bytes = 0;
    gt->generation++;
}

static centry *cache_find(const mt_grammar_tokens *gt, const uint32_t *key, size_t n, uint64_t h) {
    for (size_t i = h & gt->mask;; i = (i + 1) & gt->mask) {
        centry *e = gt->slots[i];
        if (!e) return NULL;
        if (e->hash == h && e->keylen == n && !memcmp(e->key, key, n * sizeof *key)) return e;
    }
}

static int cache_put(mt_grammar_tokens *gt, centry *e) {
    size_t sz = sizeof *e + e->keylen * 4 + gt->nwords * 8 + e->nunres * 4;
    if (gt->count && gt->bytes + sz > gt->limit) { cache_clear(gt); gt->st.clears++; }
    if ((gt->count + 1) * 2 > gt->mask + 1) {
        size_t nm = (gt->mask + 1) * 2;
        centry **ns = calloc(nm, sizeof *ns);
        if (!ns) return MT_ENOMEM;
        for (size_t i = 0; i <= gt->mask; i++) {
            centry *x = gt->slots[i];
            if (!x) continue;
            size_t j = x->hash & (nm - 1);
            while (ns[j]) j = (j + 1) & (nm - 1);
            ns[j] = x;
        }
        free(gt->slots);
        gt->slots = ns; gt->mask = nm - 1;
    }
    size_t j = e->hash & gt->mask;
    while (gt->slots[j]) j = (j + 1) & gt->mask;
    gt->slots[j] = e;
    gt->count++;
    gt->bytes += sz;
    return MT_OK;
}

/* ---- interned states and their byte transitions ---- */
enum { TR_UNKNOWN = 0xFFFFFFFFu, TR_DEAD = 0xFFFFFFFEu };
#ifndef MT_CONSTRAIN_MAX_STATES          /* a build may lower it to exercise the resets */
#define MT_CONSTRAIN_MAX_STATES (1 << 15)
#endif
/* bounds on the interned states (~100 MB at most): emptied before a walk past them, and
 * during a walk past twice them */
enum { MAX_STATES = MT_CONSTRAIN_MAX_STATES, MAX_POOL_WORDS = 1 << 23, MAX_MEMO = 1 << 20 };

static void states_clear(mt_grammar_tokens *gt) {
    for (size_t i = 0; i < gt->nstates; i++) free(gt->trans[i]);
    gt->nstates = 0;
    gt->pool.n = 0;
    if (gt->ids) memset(gt->ids, 0, (gt->idmask + 1) * sizeof *gt->ids);
    if (gt->memo) memset(gt->memo, 0xFF, (gt->memomask + 1) * sizeof *gt->memo);
    gt->nmemo = 0;
    gt->sepoch++;
}

/* the id of state st (added when new); MT_OK / MT_ENOMEM */
static int state_id(mt_grammar_tokens *gt, const uint32_t *st, uint32_t *id) {
    size_t n = gm_state_len(st);
    uint64_t h = hash_words(st, n);
    if (!gt->ids || (gt->nstates + 1) * 2 > gt->idmask + 1) {      /* grow the id table */
        size_t nm = gt->ids ? (gt->idmask + 1) * 2 : 1024;
        uint32_t *ni = calloc(nm, sizeof *ni);
        if (!ni) return MT_ENOMEM;
        for (size_t i = 0; i < gt->nstates; i++) {
            const uint32_t *w = gt->pool.p + gt->off[i];
            size_t j = hash_words(w, gt->off[i + 1] - gt->off[i]) & (nm - 1);
            while (ni[j]) j = (j + 1) & (nm - 1);
            ni[j] = (uint32_t)i + 1;
        }
        free(gt->ids);
        gt->ids = ni; gt->idmask = nm - 1;
    }
    size_t j = h & gt->idmask;
    for (; gt->ids[j]; j = (j + 1) & gt->idmask) {
        uint32_t k = gt->ids[j] - 1;
        if (gt->off[k + 1] - gt->off[k] == n && !memcmp(gt->pool.p + gt->off[k], st, n * sizeof *st)) {
            *id = k;
            return MT_OK;
        }
    }
    if (gt->nstates + 2 > gt->capstates) {
        size_t nc = gt->capstates ? gt->capstates * 2 : 256;
        size_t *no = realloc(gt->off, (nc + 1) * sizeof *no);
        if (!no) return MT_ENOMEM;
        gt->off = no;
        uint32_t **nt = realloc(gt->trans, nc * sizeof *nt);
        if (!nt) return MT_ENOMEM;
        gt->trans = nt;
        uint8_t *nf = realloc(gt->ctxf, nc);
        if (!nf) return MT_ENOMEM;
        gt->ctxf = nf;
        gt->capstates = nc;
    }
    MT_TRY(gm_vec_reserve(&gt->pool, n));
    if (!gt->nstates) gt->off[0] = 0;
    memcpy(gt->pool.p + gt->pool.n, st, n * sizeof *st);
    gt->pool.n += n;
    gt->trans[gt->nstates] = NULL;
    uint8_t f = 0;
    for (size_t k = 3, i = 0; i < st[2]; i++) {
        if (st[k] && gt->g->elems[st[k + st[k]]].type == GM_CTX) f = 1;
        k += 1 + st[k];
    }
    gt->ctxf[gt->nstates] = f;
    gt->off[gt->nstates + 1] = gt->pool.n;
    gt->ids[j] = (uint32_t)gt->nstates + 1;
    *id = (uint32_t)gt->nstates++;
    return MT_OK;
}

/* the state after a code point that selects the stacks sel of state id (memoized over all
 * states with the same stacks, whatever their partial UTF-8 bits) */
static int step_sel(mt_grammar_tokens *gt, uint32_t id, uint64_t sel, uint32_t *out) {
    const uint32_t *st = gt->pool.p + gt->off[id];
    size_t n = gt->off[id + 1] - gt->off[id];
    uint64_t h = hash_words(st + 2, n - 2);
    if (!gt->memo || (gt->nmemo + 1) * 2 > gt->memomask + 1) {
        size_t nm = gt->memo ? (gt->memomask + 1) * 2 : 4096;
        struct selmemo *m = malloc(nm * sizeof *m);
        if (!m) return MT_ENOMEM;
        memset(m, 0xFF, nm * sizeof *m);
        for (size_t i = 0; gt->memo && i <= gt->memomask; i++) {
            if (gt->memo[i].src == UINT32_MAX) continue;
            size_t j = (gt->memo[i].h ^ tk_mix(gt->memo[i].sel)) & (nm - 1);
            while (m[j].src != UINT32_MAX) j = (j + 1) & (nm - 1);
            m[j] = gt->memo[i];
        }
        free(gt->memo);
        gt->memo = m; gt->memomask = nm - 1;
    }
    size_t j = (h ^ tk_mix(sel)) & gt->memomask;
    for (; gt->memo[j].src != UINT32_MAX; j = (j + 1) & gt->memomask) {
        const struct selmemo *e = &gt->memo[j];
        if (e->h != h || e->sel != sel) continue;
        size_t sn = gt->off[e->src + 1] - gt->off[e->src];
        if (sn == n && !memcmp(gt->pool.p + gt->off[e->src] + 2, st + 2, (n - 2) * sizeof *st)) {
            *out = e->dst;
            return MT_OK;
        }
    }
    gt->st.steps++;
    int rc = gm_state_advance_sel(gt->g, st, sel, &gt->next, &gt->s);
    if (rc && rc != MT_ELIMIT) return rc;
    uint32_t nid = TR_DEAD;           /* over the matcher's limits: pruned like a rejected byte */
    if (!rc && !gm_state_dead(gt->next.p)) MT_TRY(state_id(gt, gt->next.p, &nid));
    if (rc) gt->st.limited++;
    gt->memo[j] = (struct selmemo){h, sel, id, nid};
    gt->nmemo++;
    *out = nid;
    return MT_OK;
}

/* the state after byte b from state id, as an id or TR_DEAD */
static int state_step(mt_grammar_tokens *gt, uint32_t id, unsigned char b, uint32_t *out) {
    uint32_t *tr = gt->trans[id];
    if (tr && tr[b] != TR_UNKNOWN) { *out = tr[b]; return MT_OK; }
    if (!tr) {
        tr = malloc(256 * sizeof *tr);
        if (!tr) return MT_ENOMEM;
        memset(tr, 0xFF, 256 * sizeof *tr);
        gt->trans[id] = tr;
    }
    const uint32_t *st = gt->pool.p + gt->off[id];
    uint32_t cp, nid = TR_DEAD;
    uint64_t sel;
    if (gm_state_byte_cp(st, b, &cp) && gm_state_cp_sel(gt->g, st, cp, &sel)) {
        if (sel) MT_TRY(step_sel(gt, id, sel, &nid));
        gt->trans[id][b] = nid;
        *out = nid;
        return MT_OK;
    }
    gt->st.steps++;
    int rc = gm_state_byte(gt->g, st, b, &gt->next, &gt->s);
    if (rc && rc != MT_ELIMIT) return rc;
    if (!rc && !gm_state_dead(gt->next.p)) MT_TRY(state_id(gt, gt->next.p, &nid));
    if (rc) gt->st.limited++;
    gt->trans[id][b] = nid;     /* (state_id may have moved the pool, not the tables) */
    *out = nid;
    return MT_OK;
}

int mt_grammar_tokens_new(mt_grammar_tokens **out, const mt_grammar *g, const mt_tokvocab *v, mt_err *err) {
    if (!out || !g || !v) return mt_seterr(err, MT_EINVAL, "constrain: bad arguments");
    mt_grammar_tokens *gt = calloc(1, sizeof *gt);
    if (!gt) return mt_seterr(err, MT_ENOMEM, "constrain: out of memory");
    gt->g = g; gt->v = v;
    gt->nwords = (v->nvocab + 63) / 64;
    gt->limit = (size_t)256 << 20;
    gt->mask = 63;
    gt->slots = calloc(gt->mask + 1, sizeof *gt->slots);
    gt->nlv = v->maxdepth + 1;
    gt->lv = calloc(gt->nlv, sizeof *gt->lv);
    if (!gt->slots || !gt->lv) { mt_grammar_tokens_free(gt); return mt_seterr(err, MT_ENOMEM, "constrain: out of memory"); }
    *out = gt;
    return MT_OK;
}

void mt_grammar_tokens_free(mt_grammar_tokens *gt) {
    if (!gt) return;
    if (gt->slots) cache_clear(gt);
    free(gt->slots);
    free(gt->lv);
    states_clear(gt);
    gm_vec_free(&gt->pool); free(gt->off); free(gt->trans); free(gt->ids); free(gt->memo); free(gt->ctxf);
    gm_vec_free(&gt->unres);
    gm_vec_free(&gt->next);
    gm_vec_free(&gt->tmp);
    gm_scratch_free(&gt->s);
    free(gt);
}

void mt_grammar_tokens_set_cache(mt_grammar_tokens *gt, size_t cache_bytes) {
    if (gt) gt->limit = cache_bytes;
}

void mt_grammar_tokens_stats_get(const mt_grammar_tokens *gt, mt_grammar_tokens_stats *st) {
    if (!gt || !st) return;
    *st = gt->st;
    st->entries = gt->count;
    st->bytes = gt->bytes;
}

static int limit_err(mt_err *err, int rc) {
    if (rc == MT_ELIMIT)
        return mt_seterr(err, MT_ELIMIT, "grammar: too ambiguous or too deeply nested for the matcher "
                         "(over %d parse stacks or depth %d)", MT_GRAMMAR_MAX_STACKS, MT_GRAMMAR_MAX_DEPTH);
    if (rc == MT_ENOMEM) return mt_seterr(err, MT_ENOMEM, "grammar: out of memory");
    return rc;
}

/* empty the interned states in the middle of a walk, keeping those of the path lv[b .. d) */
static int rebase(mt_grammar_tokens *gt, uint32_t *lv, size_t b, size_t d) {
    gm_vec keep = {0};
    int rc = MT_OK;
    for (size_t k = b; k < d && !rc; k++) {
        size_t n = gt->off[lv[k] + 1] - gt->off[lv[k]];
        if (!(rc = gm_vec_reserve(&keep, n))) {
            memcpy(keep.p + keep.n, gt->pool.p + gt->off[lv[k]], n * sizeof *keep.p);
            keep.n += n;
        }
    }
    if (!rc) {
        states_clear(gt);
        size_t at = 0;
        for (size_t k = b; k < d && !rc; k++) {
            rc = state_id(gt, keep.p + at, &lv[k]);
            at += gm_state_len(keep.p + at);
        }
    }
    gm_vec_free(&keep);
    return rc;
}

/* Walk the trie nodes [first, last) (a subtree whose parent, at depth base, has state id
 * root), setting the bits of the tokens allowed.  unres (shared walks only): a node whose
 * state has reached the GM_CTX bottom is listed there and its subtree skipped. */
static int walk(mt_grammar_tokens *gt, uint32_t root, size_t first, size_t last, size_t base, uint64_t *bits,
                gm_vec *unres) {
    const mt_tokvocab *v = gt->v;
    uint32_t *lv = gt->lv;
    int rc = MT_OK;
    uint64_t nodes = 0;
    lv[base] = root;
    for (size_t i = first; i < last && !rc;) {
        size_t d = v->depth[i];
        nodes++;
        const uint32_t *tr = gt->trans[lv[d - 1]];
        uint32_t to = tr ? tr[v->byte[i]] : TR_UNKNOWN;
        if (to == TR_UNKNOWN) {                /* a step not taken before: may add states */
            if (gt->nstates >= 2 * MAX_STATES || gt->pool.n >= 2 * MAX_POOL_WORDS || gt->nmemo >= 2 * MAX_MEMO)
                if ((rc = rebase(gt, lv, base, d))) break;
            if ((rc = state_step(gt, lv[d - 1], v->byte[i], &to))) break;
        }
        if (to == TR_DEAD) { i = v->skip[i]; continue; }
        if (unres && gt->ctxf[to]) {
            if ((rc = gm_vec_reserve(unres, 1))) break;
            unres->p[unres->n++] = (uint32_t)i;
            i = v->skip[i];
            continue;
        }
        lv[d] = to;
        for (uint32_t k = v->tok_off[i]; k < v->tok_off[i + 1]; k++) {
            uint32_t t = (uint32_t)v->toks[k];
            bits[t >> 6] |= 1ULL << (t & 63);
        }
        i++;
    }
    gt->st.nodes += nodes;
    return rc;
}

static centry *entry_new(const uint32_t *key, size_t n, uint64_t h, size_t nwords) {
    centry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->key = malloc(n * sizeof *key);
    e->bits = calloc(nwords ? nwords : 1, 8);
    if (!e->key || !e->bits) { free(e->key); free(e->bits); free(e); return NULL; }
    memcpy(e->key, key, n * sizeof *key);
    e->keylen = n; e->hash = h;
    return e;
}

static void entry_free(centry *e) {
    if (e) { free(e->key); free(e->bits); free(e->unres); free(e); }
}

/* The shared form of state st: the longest bottom run common to all its stacks (each top kept)
 * replaced by the GM_CTX element, into *out; 0 when there is none (nothing to share), and for
 * stacks over half the depth limit (the shorter shared stacks could pass a token that the
 * real ones take over the limit). */
static int shared_form(const mt_grammar *g, const uint32_t *st, gm_vec *out) {
    uint32_t ns = st[2];
    if (!ns) return 0;
    size_t L = SIZE_MAX, k = 3;
    const uint32_t *first = st + 4;
    for (uint32_t i = 0; i < ns; i++) {
        uint32_t d = st[k];
        if (!d || d > MT_GRAMMAR_MAX_DEPTH / 2) return 0;
        size_t m = d - 1, c = 0;
        if (m > L) m = L;
        while (c < m && st[k + 1 + c] == first[c]) c++;
        L = c;
        k += 1 + d;
    }
    if (L < 1) return 0;
    out->n = 0;
    if (gm_vec_reserve(out, gm_state_len(st))) return 0;
    out->p[0] = st[0]; out->p[1] = st[1]; out->p[2] = ns;
    out->n = 3;
    k = 3;
    for (uint32_t i = 0; i < ns; i++) {
        uint32_t d = st[k];
        out->p[out->n++] = (uint32_t)(d - L + 1);
        out->p[out->n++] = g->ctx;
        memcpy(out->p + out->n, st + k + 1 + L, (d - L) * sizeof *st);
        out->n += d - L;
        k += 1 + d;
    }
    return 1;
}

/* the bitset of tokens allowed from state st (cached).  A state whose stacks share a bottom
 * (the context a string, a number, ... sits in) is computed through its shared form: the
 * tokens that stay inside come from that form's entry, computed once for every context; the
 * subtrees whose tokens reach the context are walked from st itself. */
static int mask_for(mt_grammar_tokens *gt, const uint32_t *st, const centry **out, mt_err *err) {
    size_t n = gm_state_len(st);
    uint64_t h = hash_words(st, n);
    centry *e = cache_find(gt, st, n, h);
    if (e) { gt->st.hits++; *out = e; return MT_OK; }
    gt->st.misses++;
    const mt_tokvocab *v = gt->v;
    if (!(e = entry_new(st, n, h, gt->nwords))) return mt_seterr(err, MT_ENOMEM, "grammar: out of memory");
    if (gt->nstates > MAX_STATES || gt->pool.n > MAX_POOL_WORDS || gt->nmemo > MAX_MEMO) states_clear(gt);
    uint32_t sid, aid;
    int rc = state_id(gt, st, &sid);
    const centry *a = NULL;
    if (!rc && shared_form(gt->g, st, &gt->tmp) && !(rc = state_id(gt, gt->tmp.p, &aid)) && !gt->ctxf[aid]) {
        size_t an = gt->tmp.n;
        uint64_t ah = hash_words(gt->tmp.p, an);
        centry *x = cache_find(gt, gt->tmp.p, an, ah);
        if (x) gt->st.shared++;
        else if (!(x = entry_new(gt->tmp.p, an, ah, gt->nwords))) rc = MT_ENOMEM;
        else {
            gt->unres.n = 0;
            rc = walk(gt, aid, 1, v->nnodes, 0, x->bits, &gt->unres);
            if (!rc && gt->unres.n && !(x->unres = malloc(gt->unres.n * sizeof *x->unres))) rc = MT_ENOMEM;
            if (!rc) {
                if (gt->unres.n) memcpy(x->unres, gt->unres.p, gt->unres.n * sizeof *x->unres);
                x->nunres = gt->unres.n;
                rc = cache_put(gt, x);
            }
            if (rc) { entry_free(x); x = NULL; }
        }
        a = x;
    }
    if (!rc && a) {
        /* the shared tokens, then each subtree that reaches the context, from st */
        memcpy(e->bits, a->bits, gt->nwords * 8);
        uint8_t path[256];
        uint64_t epoch = ~gt->sepoch;          /* (re)intern st first */
        for (size_t u = 0; u < a->nunres && !rc; u++) {
            if (gt->sepoch != epoch) { epoch = gt->sepoch; if ((rc = state_id(gt, st, &sid))) break; }
            uint32_t node = a->unres[u], id = sid;
            size_t d = v->depth[node];
            if (d > sizeof path) { rc = MT_ELIMIT; break; }
            for (uint32_t x = node, k = (uint32_t)d; k > 0; x = v->parent[x]) path[--k] = v->byte[x];
            for (size_t k = 0; k < d && id != TR_DEAD && !rc; k++) {
                const uint32_t *tr = gt->trans[id];
                uint32_t to = tr ? tr[path[k]] : TR_UNKNOWN;
                if (to == TR_UNKNOWN) rc = state_step(gt, id, path[k], &to);
                id = to;
            }
            if (rc || id == TR_DEAD) continue;
            for (uint32_t k = v->tok_off[node]; k < v->tok_off[node + 1]; k++) {
                uint32_t t = (uint32_t)v->toks[k];
                e->bits[t >> 6] |= 1ULL << (t & 63);
            }
            rc = walk(gt, id, node + 1, v->skip[node], d, e->bits, NULL);
        }
    } else if (!rc) {
        rc = walk(gt, sid, 1, v->nnodes, 0, e->bits, NULL);
    }
    if (rc == MT_ELIMIT && a) {                /* a path too long to replay: the plain walk */
        memset(e->bits, 0, gt->nwords * 8);
        rc = state_id(gt, st, &sid);
        if (!rc) rc = walk(gt, sid, 1, v->nnodes, 0, e->bits, NULL);
    }
    size_t na = 0;
    for (size_t w = 0; w < gt->nwords; w++) na += (size_t)__builtin_popcountll(e->bits[w]);
    e->nallowed = na;
    if (!rc) rc = cache_put(gt, e);
    if (rc) { entry_free(e); return limit_err(err, rc); }
    *out = e;
    return MT_OK;
}

/* ---------------- constraint ---------------- */
int mt_constraint_new(mt_constraint **out, mt_grammar_tokens *gt, mt_err *err) {
    if (!out || !gt) return mt_seterr(err, MT_EINVAL, "constrain: bad arguments");
    mt_constraint *c = calloc(1, sizeof *c);
    if (!c) return mt_seterr(err, MT_ENOMEM, "constrain: out of memory");
    c->gt = gt;
    c->eos_save = malloc((gt->v->n_eos ? gt->v->n_eos : 1) * sizeof *c->eos_save);
    if (!c->eos_save) { free(c); return mt_seterr(err, MT_ENOMEM, "constrain: out of memory"); }
    int rc = gm_state_init(gt->g, &c->cur, &gt->s);
    if (rc) { mt_constraint_free(c); return limit_err(err, rc); }
    *out = c;
    return MT_OK;
}

void mt_constraint_free(mt_constraint *c) {
    if (!c) return;
    gm_vec_free(&c->cur); gm_vec_free(&c->nxt);
    free(c->eos_save);
    free(c);
}

int mt_constraint_can_end(const mt_constraint *c) { return c && (c->ended || gm_state_can_end(c->cur.p)); }
int mt_constraint_ended(const mt_constraint *c) { return c && c->ended; }

static int cur_entry(mt_constraint *c, const centry **e, mt_err *err) {
    if (c->e && c->egen == c->gt->generation) { *e = c->e; c->gt->st.hits++; return MT_OK; }
    MT_TRY(mask_for(c->gt, c->cur.p, e, err));
    c->e = *e; c->egen = c->gt->generation;
    return MT_OK;
}

int mt_constraint_mask(mt_constraint *c, float *logits, size_t V, mt_err *err) {
    if (!c || (!logits && V)) return mt_seterr(err, MT_EINVAL, "constrain: bad arguments");
    const mt_tokvocab *v = c->gt->v;
    int can_end = mt_constraint_can_end(c);
    if (c->ended) {
        for (size_t t = 0; t < V; t++)
            if (t >= v->nvocab || !v->is_eos[t]) logits[t] = -INFINITY;
        return MT_OK;
    }
    const centry *e = NULL;
    MT_TRY(cur_entry(c, &e, err));
    int any_eos = 0;
    for (size_t i = 0; i < v->n_eos && can_end; i++) any_eos |= (size_t)v->eos[i] < V;
    if (!e->nallowed && !any_eos)
        return mt_seterr(err, MT_EINVAL, "grammar: no token of the vocabulary can continue the text here");
    for (size_t i = 0; i < v->n_eos; i++) c->eos_save[i] = (size_t)v->eos[i] < V ? logits[v->eos[i]] : 0.0f;
    size_t lim = V < v->nvocab ? V : v->nvocab;
    size_t full = lim / 64;
    for (size_t w = 0; w < full; w++) {
        uint64_t b = e->bits[w];
        if (b == ~0ULL) continue;
        float *l = logits + w * 64;
        if (!b) { for (int k = 0; k < 64; k++) l[k] = -INFINITY; continue; }
        for (uint64_t z = ~b; z; z &= z - 1) l[__builtin_ctzll(z)] = -INFINITY;
    }
    for (size_t t = full * 64; t < lim; t++)
        if (!(e->bits[t >> 6] >> (t & 63) & 1)) logits[t] = -INFINITY;
    for (size_t t = lim; t < V; t++) logits[t] = -INFINITY;
    if (can_end) {
        /* eos ids have no bytes (bit clear): masked above, given back their logits */
        for (size_t i = 0; i < v->n_eos; i++)
            if ((size_t)v->eos[i] < V) logits[v->eos[i]] = c->eos_save[i];
    }
    return MT_OK;
}

/* the state after the bytes of token t into c->nxt; 1 if alive */
static int walk_token(mt_constraint *c, int32_t t, int *alive) {
    size_t n;
    const char *b = mt_tokvocab_bytes(c->gt->v, t, &n);
    *alive = 0;
    if (!b) return MT_OK;
    gm_vec *a = &c->gt->tmp, *z = &c->nxt;
    a->n = 0;
    size_t sl = gm_state_len(c->cur.p);
    MT_TRY(gm_vec_reserve(a, sl));
    memcpy(a->p, c->cur.p, sl * sizeof *a->p);
    a->n = sl;
    for (size_t i = 0; i < n; i++) {
        MT_TRY(gm_state_byte(c->gt->g, a->p, (unsigned char)b[i], z, &c->gt->s));
        if (gm_state_dead(z->p)) return MT_OK;
        gm_vec tt = *a; *a = *z; *z = tt;
    }
    /* the final state is in a (the shared tmp): move it into nxt */
    gm_vec tt = *a; *a = *z; *z = tt;
    *alive = 1;
    return MT_OK;
}

int mt_constraint_allows(mt_constraint *c, int32_t t) {
    if (!c) return 0;
    const mt_tokvocab *v = c->gt->v;
    if (t < 0 || (size_t)t >= v->nvocab) return 0;
    if (v->is_eos[t]) return mt_constraint_can_end(c);
    if (c->ended) return 0;
    if (c->e && c->egen == c->gt->generation) return (int)(c->e->bits[(size_t)t >> 6] >> (t & 63) & 1);
    int alive = 0;
    if (walk_token(c, t, &alive)) return 0;    /* over the limits too: as the mask prunes it */
    return alive;
}

static void describe(const mt_tokvocab *v, int32_t t, char *out, size_t cap) {
    size_t n, k = 0;
    const char *b = mt_tokvocab_bytes(v, t, &n);
    out[0] = 0;
    for (size_t i = 0; b && i < n && k + 5 < cap; i++) {
        unsigned char ch = (unsigned char)b[i];
        if (ch >= 0x20 && ch < 0x7F && ch != '"' && ch != '\\') out[k++] = (char)ch;
        else k += (size_t)snprintf(out + k, cap - k, "\\x%02X", ch);
    }
    out[k < cap ? k : cap - 1] = 0;
}

int mt_constraint_accept(mt_constraint *c, int32_t t, mt_err *err) {
    if (!c) return mt_seterr(err, MT_EINVAL, "constrain: bad arguments");
    const mt_tokvocab *v = c->gt->v;
    if (t < 0 || (size_t)t >= v->nvocab)
        return mt_seterr(err, MT_EINVAL, "grammar: token %d is outside the vocabulary (%zu)", (int)t, v->nvocab);
    if (c->ended) return mt_seterr(err, MT_EINVAL, "grammar: token %d after the end of the text", (int)t);
    if (v->is_eos[t]) {
        if (!gm_state_can_end(c->cur.p))
            return mt_seterr(err, MT_EINVAL, "grammar: end of text (token %d) before the grammar is complete", (int)t);
        c->ended = 1;
        return MT_OK;
    }
    int alive = 0;
    int rc = walk_token(c, t, &alive);
    if (rc) return limit_err(err, rc);
    if (!alive) {
        char d[96];
        describe(v, t, d, sizeof d);
        return mt_seterr(err, MT_EINVAL, "grammar: token %d (\"%s\") is not allowed here", (int)t, d);
    }
    gm_vec tt = c->cur; c->cur = c->nxt; c->nxt = tt;
    c->e = NULL;
    return MT_OK;
}

int mt_constraint_copy(mt_constraint **dst, const mt_constraint *src, mt_err *err) {
    if (!dst || !src) return mt_seterr(err, MT_EINVAL, "constrain: bad arguments");
    mt_constraint *c = calloc(1, sizeof *c);
    if (!c) return mt_seterr(err, MT_ENOMEM, "constrain: out of memory");
    c->gt = src->gt;
    c->ended = src->ended;
    c->e = src->e; c->egen = src->egen;
    c->eos_save = malloc((src->gt->v->n_eos ? src->gt->v->n_eos : 1) * sizeof *c->eos_save);
    size_t sl = gm_state_len(src->cur.p);
    if (!c->eos_save || gm_vec_reserve(&c->cur, sl)) {
        mt_constraint_free(c);
        return mt_seterr(err, MT_ENOMEM, "constrain: out of memory");
    }
    memcpy(c->cur.p, src->cur.p, sl * sizeof *c->cur.p);
    c->cur.n = sl;
    *dst = c;
    return MT_OK;
}
