/* constrain.h - grammar-constrained decoding: which tokens of a model's vocabulary may
 * come next so that the generated text stays a prefix of a sentence of a GBNF grammar
 * (gen/grammar.h), and ends only where the grammar can end.
 *
 * Three objects, built at three rates:
 *   mt_tokvocab        once per tokenizer: the bytes of every token and a byte trie of them;
 *   mt_grammar_tokens  once per (grammar, vocabulary): a cache of allowed-token bitsets keyed
 *                      by the matcher state, shared by the sequences of one generation loop;
 *   mt_constraint      once per sequence: its position in the grammar.
 * A mask on a cache miss walks the trie from the current matcher state, pruning a subtree
 * as soon as its prefix is rejected (the part of it that does not depend on the enclosing
 * context, e.g. the inside of a string, is shared by every state that differs only there);
 * on a hit it is a copy of V bits onto the logits.
 * Nothing here locks: a mt_grammar_tokens and its constraints are used by one thread. */
#ifndef MT_CONSTRAIN_H
#define MT_CONSTRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "gen/grammar.h"
#include "text/tokenizer.h"

/* The bytes of every token of a model's vocabulary, built once per tokenizer.  Byte-level
 * BPE (GPT-2 byte mapping, e.g. "Ġ" = space), SentencePiece ("▁" = space, "<0x0A>" byte
 * tokens) and plain vocabularies (mt_tokenizer_token_bytes).  Special/added control tokens
 * have no bytes and are never allowed by a grammar, except the eos ids, which are allowed
 * exactly when the grammar can end.  model_vocab (0: the tokenizer's size) may exceed the
 * tokenizer's size (padded embedding rows): those ids are never allowed.  eos: n_eos ids
 * (copied).  MT_OK, MT_EINVAL (bad arguments, an eos id outside model_vocab), MT_ENOMEM.
 * The tokenizer is only read during the call. */
typedef struct mt_tokvocab mt_tokvocab;
int  mt_tokvocab_new(mt_tokvocab **v, const mt_tokenizer *tok, size_t model_vocab, const int32_t *eos, size_t n_eos,
                     mt_err *err);
void mt_tokvocab_free(mt_tokvocab *v);       /* NULL ok */
size_t mt_tokvocab_size(const mt_tokvocab *v);                 /* model_vocab */
/* the bytes of token t (*n its length; NULL for none or out of range) */
const char *mt_tokvocab_bytes(const mt_tokvocab *v, int32_t t, size_t *n);

/* A grammar compiled against one vocabulary: holds the cache of allowed-token masks per
 * matcher state (bounded by cache_bytes; when full it is emptied and refilled).  The grammar
 * and the vocabulary must outlive it.  Shared by the sequences of one generation loop
 * (single-threaded use; no locks needed). */
typedef struct mt_grammar_tokens mt_grammar_tokens;
int  mt_grammar_tokens_new(mt_grammar_tokens **gt, const mt_grammar *g, const mt_tokvocab *v, mt_err *err);
void mt_grammar_tokens_free(mt_grammar_tokens *gt);            /* NULL ok; after its constraints */
/* Bound on the mask cache in bytes (default 256 MiB; at least one mask is always kept). */
void mt_grammar_tokens_set_cache(mt_grammar_tokens *gt, size_t cache_bytes);
/* Counters since creation: masks computed by a trie walk (misses), masks served from the
 * cache (hits), misses that reused the shared part of a mask computed in another context
 * (shared), trie nodes visited by the walks, matcher steps they computed (the other
 * nodes reused a memoized transition), steps that went over the matcher's limits (a token
 * whose bytes would need more parse stacks than MT_GRAMMAR_MAX_STACKS, or deeper ones, is
 * not allowed), times the cache was emptied; entries and bytes held now. */
typedef struct { uint64_t misses, hits, shared, nodes, steps, limited, clears; size_t entries, bytes; } mt_grammar_tokens_stats;
void mt_grammar_tokens_stats_get(const mt_grammar_tokens *gt, mt_grammar_tokens_stats *st);

/* One sequence's position in the grammar.  Uses gt (which must outlive it). */
typedef struct mt_constraint mt_constraint;
int  mt_constraint_new(mt_constraint **c, mt_grammar_tokens *gt, mt_err *err);
void mt_constraint_free(mt_constraint *c);                     /* NULL ok */
/* Set logits[t] = -INFINITY for every token t in [0, V) the grammar does not allow next (eos
 * allowed only when the grammar can end here; ids at or above the vocabulary never).  After
 * an eos was accepted only eos stays allowed.  A token whose bytes take the matcher over its
 * limits (MT_GRAMMAR_MAX_STACKS / _DEPTH: a pathologically ambiguous or deep grammar) is not
 * allowed.  MT_EINVAL if nothing at all is allowed (cannot happen for a well-formed grammar
 * whose characters the vocabulary can spell, within those limits); MT_ENOMEM. */
int  mt_constraint_mask(mt_constraint *c, float *logits, size_t V, mt_err *err);
int  mt_constraint_allows(mt_constraint *c, int32_t t);      /* 1/0, same rule as the mask */
/* Advance by token t (must be allowed; MT_EINVAL naming the token otherwise).  An eos id
 * marks the constraint ended. */
int  mt_constraint_accept(mt_constraint *c, int32_t t, mt_err *err);
int  mt_constraint_can_end(const mt_constraint *c);         /* the bytes so far are a complete sentence */
int  mt_constraint_ended(const mt_constraint *c);           /* an eos was accepted */
/* A copy of src at the same position (for speculative decoding); *dst owned by the caller. */
int  mt_constraint_copy(mt_constraint **dst, const mt_constraint *src, mt_err *err);

#endif
