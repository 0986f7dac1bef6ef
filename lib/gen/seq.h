/* seq.h - (library-internal) one generating sequence as a state machine, for
 * the loops that drive sequences: mt_generate, the lockstep and continuous
 * batch schedulers, speculative decoding.
 *
 *   mt_gen_seq_start    cache (new or from saved state), prefill: q->logits
 *                       holds the next token's logits
 *   mt_gen_seq_sample   processors + sampler on q->logits, then the token is
 *                       recorded (mt_gen_seq_accept): *next is the token to feed
 *                       to the model, unless q->done
 *   mt_gen_seq_finish   flush the text into the result
 *   mt_gen_seq_free     always (also after a failed start)
 * A caller that decodes several tokens in one forward pass (speculative
 * decoding) copies each row into q->logits and samples it in turn. */
#ifndef MT_GEN_SEQ_H
#define MT_GEN_SEQ_H

#include "core/buf.h"
#include "gen/generate.h"

typedef struct mt_gen_textbuf {
    mt_buf b;
    size_t emitted;                 /* bytes [0, emitted) were handed to on_text */
} mt_gen_textbuf;

typedef struct mt_gen_seq {
    const mt_gen_params *gp;
    mt_gen_result *res;
    mt_gen_text_fn on_text;
    void *user;
    mt_kvcache *cache;
    mt_sampler *smp;
    mt_detok *dt;
    mt_gen_textbuf tb;
    float *logits;       /* [V]: the next step's logits */
    int32_t *hist;       /* the prompt, then the generated tokens (the processors' history) */
    size_t nh, V;
    int seen_text, stopped, done;
    double t_decode;
    int32_t *joined;     /* prefix ids + prompt, when continuing from known ids */
    const int32_t *full; /* the ids the cache holds after the prompt (NULL: unknown), nfull of them */
    size_t nfull;
    /* prefill in steps (mt_gen_seq_begin, then mt_gen_seq_prefill until prefilled) */
    mt_model *m;
    const int32_t *prompt;              /* borrowed from the caller until prefilled */
    int cache_ready;                    /* the first prefill step chose the cache */
    size_t n_prompt, pf_have, pf_off;   /* full[pf_have..nfull) to compute; full[pf_off..) still to do */
    mt_embed_inject pf_inj;             /* gp->inject's rows, advancing */
    int prefilled;
    double t0;
    struct mt_constraint *con;          /* gp->grammar: this sequence's position in it */
} mt_gen_seq;

/* mt_gen_seq_start in steps, so that a scheduler can interleave a long prompt with other
 * sequences' decode steps: _begin checks and allocates (no forward pass, the prompt stays
 * borrowed); each _prefill runs one chunk of the prompt (the chunks mt_gen_seq_start runs, so
 * results are the same; the last chunk with the last token), until q->prefilled.  The first
 * step picks the cache, so a shared prefix stored by a sequence prefilled before it is found. */
int mt_gen_seq_begin(mt_gen_seq *q, mt_model *m, const mt_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                     const mt_gen_params *gp, mt_gen_text_fn on_text, void *user, mt_gen_result *res, mt_err *err);
int mt_gen_seq_prefill(mt_gen_seq *q, mt_err *err);
int mt_gen_seq_start(mt_gen_seq *q, mt_model *m, const mt_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                     const mt_gen_params *gp, mt_gen_text_fn on_text, void *user, mt_gen_result *res, mt_err *err);
int mt_gen_seq_sample(mt_gen_seq *q, int32_t *next, mt_err *err);
/* The two halves of mt_gen_seq_sample.  _process: check q->logits for NaN/inf and
 * apply the logits processors in place.  _accept: record token t (logprob lp; the
 * top-K alternatives from q->logits, which must then hold log-probabilities): eos
 * ends the sequence (t is not recorded, *next untouched), else text, stop strings,
 * max_tokens; *next = t. */
int mt_gen_seq_process(mt_gen_seq *q, mt_err *err);
int mt_gen_seq_accept(mt_gen_seq *q, int32_t t, float lp, int32_t *next, mt_err *err);
int mt_gen_seq_finish(mt_gen_seq *q, mt_err *err);
void mt_gen_seq_free(mt_gen_seq *q);

/* MT_EFORMAT ("model produced non-finite logits at token N ...") when row[0..V)
 * holds a NaN or an infinity; n_tokens: the tokens the model has seen. */
int mt_gen_check_logits(const float *row, size_t V, size_t n_tokens, mt_err *err);

#endif
