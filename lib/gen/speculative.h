/* speculative.h - (library-internal) speculative decoding of one sequence
 * (gen/seq.h): a draft model (gp->draft, gp->num_draft) or prompt lookup
 * (gp->prompt_lookup: tokens copied from an earlier n-gram match) proposes k
 * tokens, the model verifies them in one forward pass, and every accepted
 * token plus one of the model's own goes through mt_gen_seq_accept (text, stop
 * strings, eos and max_tokens as in the plain loop).
 *
 * Verification.  Greedy (temp 0): a proposal is kept while it equals the
 * model's argmax, so the tokens are the plain loop's.  Sampling: the standard
 * rejection rule on p (the model's) and q (the draft's; one-hot for lookup)
 * distributions after the logits processors, the filters and the temperature:
 * keep x with probability min(1, p(x)/q(x)), else draw from
 * normalize(max(0, p - q)) and end the round; when all are kept, one more
 * token is drawn from p.  The output is then distributed as the model's own.
 * XTC's random switch enters p and q as the mixture it makes.  The draws use
 * the speculation's own random stream (seeded from the sampler's seed), so a
 * seeded sampled answer differs from the plain loop's (its distribution
 * does not).
 *
 * Caches.  Between rounds the model's cache holds every recorded token but the
 * last, which leads the next round's forward pass (as after the plain loop);
 * rejected rows are trimmed, and so are the draft's.  A rotating cache
 * (--max-kv-size) can be rolled back until it fills: rounds propose only what
 * keeps it from filling, then the rest are plain steps (one token a pass, as
 * the plain loop's).  Quantized caches trim. */
#ifndef MT_SPECULATIVE_H
#define MT_SPECULATIVE_H

#include <stddef.h>
#include <stdint.h>
#include "gen/seq.h"

#define MT_SPEC_MAX_DRAFT 64   /* the largest num_draft / prompt_lookup */

typedef struct mt_spec mt_spec;

/* 1 when gp asks for speculation (a draft with num_draft > 0, or prompt_lookup > 0). */
int mt_spec_wanted(const mt_gen_params *gp);
/* After mt_gen_seq_start(q, target, ...) (q not done): set up speculation for q and
 * prefill the draft model on the ids the target's cache holds.  MT_EINVAL, one line,
 * for what cannot speculate: a draft whose vocabulary differs from the model's, a
 * count outside [0, MT_SPEC_MAX_DRAFT], a rotating cache already full, and for a draft model:
 * images (prompt lookup takes them: the prompt's image rows are in the cache, the rounds
 * run plain tokens), a prompt cache whose ids are unknown. */
int mt_spec_new(mt_spec **s, mt_gen_seq *q, mt_model *target, mt_err *err);
/* One round: propose, verify in one forward pass of the model, record >= 1 token in
 * q, trim both caches.  On return q->done, or ready for the next round.  The counts
 * q->res->draft_tokens / accepted_tokens grow. */
int mt_spec_step(mt_spec *s, mt_gen_seq *q, mt_model *target, mt_err *err);
void mt_spec_free(mt_spec *s);   /* accepts NULL */
/* Tokens proposed and accepted so far. */
void mt_spec_stats(const mt_spec *s, size_t *proposed, size_t *accepted);

/* ---- the pieces, for tests ---- */

/* the speculation's own random stream (mt_rng of gen/sample.h), apart from the sampler's */
void mt_spec_rng_seed(mt_rng *r, uint64_t seed);
/* A draw from the distribution p[0..V) (sums to 1 up to rounding). */
int32_t mt_spec_draw(const float *p, size_t V, mt_rng *r);
/* The rejection step for proposal x drawn from q (NULL: q is one-hot at x): x with
 * probability min(1, p[x]/q[x]) (*kept = 1), else a draw from normalize(max(0, p - q))
 * (from p when that is all zero; *kept = 0). */
int32_t mt_spec_verify(const float *p, const float *q, size_t V, int32_t x, mt_rng *r, int *kept);
/* Prompt lookup: the longest suffix n-gram of ids[0..n) (n from max_ngram down to 1)
 * that also occurs earlier; at its latest earlier occurrence, the up to max tokens
 * that follow it go to out.  Returns their number (0: no match). */
size_t mt_spec_lookup(const int32_t *ids, size_t n, int max_ngram, int32_t *out, size_t max);

#endif
