/* speculative.c - speculative decoding of one sequence: proposals from a draft
 * model or from prompt lookup, verified in one forward pass of the model
 * (gen/speculative.h). */
#include "gen/speculative.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- random stream: the sampler's generator (gen/sample.h), a stream apart ---- */

void mt_spec_rng_seed(mt_rng *r, uint64_t seed) { mt_rng_seed(r, seed ^ 0x5350454344454331ull); }

/* ---- the rejection rule ---- */

int32_t mt_spec_draw(const float *p, size_t V, mt_rng *r) {
    double total = 0;
    for (size_t i = 0; i < V; i++) total += p[i] > 0 ? p[i] : 0;
    double u = mt_rng_uniform(r) * total, cum = 0;
    int32_t last = 0;
    for (size_t i = 0; i < V; i++) {
        if (!(p[i] > 0)) continue;
        last = (int32_t)i;
        cum += p[i];
        if (u < cum) return (int32_t)i;
    }
    return last;   /* rounding at the top end */
}

int32_t mt_spec_verify(const float *p, const float *q, size_t V, int32_t x, mt_rng *r, int *kept) {
    double px = p[x], qx = q ? q[x] : 1.0;
    double u = mt_rng_uniform(r);
    if (qx <= 0 || u * qx < px) { *kept = 1; return x; }   /* qx == 0: x could not have been drawn */
    *kept = 0;
    double total = 0;
    for (size_t i = 0; i < V; i++) {
        double d = (double)p[i] - (q ? (double)q[i] : i == (size_t)x);
        if (d > 0) total += d;
    }
    if (!(total > 0)) return mt_spec_draw(p, V, r);
    double v = mt_rng_uniform(r) * total, cum = 0;
    int32_t last = -1;
    for (size_t i = 0; i < V; i++) {
        double d = (double)p[i] - (q ? (double)q[i] : i == (size_t)x);
        if (!(d > 0)) continue;
        last = (int32_t)i;
        cum += d;
        if (v < cum) return (int32_t)i;
    }
    return last;
}

/* ---- prompt lookup ---- */

size_t mt_spec_lookup(const int32_t *ids, size_t n, int max_ngram, int32_t *out, size_t max) {
    if (n < 2 || !max) return 0;
    for (size_t g = (size_t)max_ngram < n - 1 ? (size_t)max_ngram : n - 1; g >= 1; g--) {
        const int32_t *suf = ids + n - g;
        /* an occurrence at [st, st + g) with a token after it: st + g < n, st < n - g */
        for (size_t st = n - g; st-- > 0;) {
            if (ids[st] != suf[0] || memcmp(ids + st, suf, g * sizeof *ids)) continue;
            size_t k = n - (st + g);
            if (k > max) k = max;
            memcpy(out, ids + st + g, k * sizeof *out);
            return k;
        }
    }
    return 0;
}

/* ---- one sequence's speculation ---- */

struct mt_spec {
    mt_model *draft;          /* NULL: prompt lookup only */
    mt_kvcache *dcache;
    size_t dlen;              /* tokens of the sequence (full ids, then generated) the draft cache holds */
    mt_sampler *dsmp;         /* the draft's processors and greedy choice (the target's parameters) */
    mt_sampler *conv, *dconv; /* temp 0: logits -> log-probabilities exactly as the samplers compute them */
    int K, N, greedy;
    size_t lk;                /* lookup's budget: N, halved after rejections, doubled after full acceptance */
    int32_t *seq;             /* lookup's text: the ids the cache holds after the prompt (a cached prefix's
                                 included), then the generated ones; NULL: q->hist */
    size_t nseq, nfull;
    int miss, cool;           /* lookup: single proposals rejected in a row lead to plain rounds (cool: left
                                 to skip; miss: the length of the last such pause, doubled each time) */
    int pending;              /* the last recorded token has not been fed to the model */
    int32_t last;
    int32_t *prop;            /* [max(K, N)] this round's proposals */
    int one_hot;              /* the proposals came from lookup */
    float *rows;              /* [(max + 1) * V] the model's logits of one round */
    float *dprobs;            /* [K * V] sampling: the draft's distributions of the proposals */
    float *dl, *p, *w;        /* [V] each */
    int32_t *dhist, *feed;    /* the draft's processor history; tokens to catch the draft up */
    size_t cap_hist, cap_feed;
    mt_rng rng;
    size_t proposed, accepted;
};

int mt_spec_wanted(const mt_gen_params *gp) {
    return (gp->draft && gp->num_draft > 0) || gp->prompt_lookup > 0;
}

void mt_spec_free(mt_spec *s) {
    if (!s) return;
    mt_kvcache_free(s->dcache);
    mt_sampler_free(s->dsmp);
    mt_sampler_free(s->conv);
    mt_sampler_free(s->dconv);
    free(s->prop);
    free(s->rows);
    free(s->dprobs);
    free(s->dl);
    free(s->p);
    free(s->w);
    free(s->dhist);
    free(s->feed);
    free(s->seq);
    free(s);
}

void mt_spec_stats(const mt_spec *s, size_t *proposed, size_t *accepted) {
    *proposed = s ? s->proposed : 0;
    *accepted = s ? s->accepted : 0;
}

/* id of position i of the sequence: the ids the model's cache started from, then the generated ones */
static int32_t seq_id(const mt_gen_seq *q, size_t i) {
    return i < q->nfull ? q->full[i] : q->res->tokens[i - q->nfull];
}

/* Feed the draft the sequence's tokens [dlen, upto), leaving the last one's logits in s->dl. */
static int draft_catch_up(mt_spec *s, const mt_gen_seq *q, size_t upto, mt_err *err) {
    size_t step = q->gp->prefill_step > 0 ? (size_t)q->gp->prefill_step : 2048;
    while (s->dlen < upto) {
        size_t T = upto - s->dlen < step ? upto - s->dlen : step;
        if (T > s->cap_feed) {
            int32_t *f = realloc(s->feed, T * sizeof *f);
            if (!f) return mt_seterr(err, MT_ENOMEM, "out of memory");
            s->feed = f;
            s->cap_feed = T;
        }
        for (size_t i = 0; i < T; i++) s->feed[i] = seq_id(q, s->dlen + i);
        MT_TRY(mt_model_forward(s->draft, s->dcache, s->feed, T, s->dl, 0, err));
        s->dlen += T;
    }
    return MT_OK;
}

int mt_spec_new(mt_spec **out, mt_gen_seq *q, mt_model *target, mt_err *err) {
    const mt_gen_params *gp = q->gp;
    *out = NULL;
    if (gp->num_draft < 0 || gp->num_draft > MT_SPEC_MAX_DRAFT)
        return mt_seterr(err, MT_EINVAL, "num_draft_tokens must be in [0, %d]", MT_SPEC_MAX_DRAFT);
    if (gp->prompt_lookup < 0 || gp->prompt_lookup > MT_SPEC_MAX_DRAFT)
        return mt_seterr(err, MT_EINVAL, "prompt_lookup must be in [0, %d]", MT_SPEC_MAX_DRAFT);
    int K = gp->draft && gp->num_draft > 0 ? gp->num_draft : 0, N = gp->prompt_lookup;
    if (!K && !N) return mt_seterr(err, MT_EINVAL, "internal: speculative decoding without a draft or prompt lookup");
    if (q->cache->has_state)
        return mt_seterr(err, MT_EUNSUPPORTED, "speculative decoding: this model's recurrent layers cannot be rolled "
                         "back after rejected proposals");
    if (!mt_kvcache_trimmable(q->cache))
        return mt_seterr(err, MT_EINVAL, "speculative decoding: the rotating KV cache (--max-kv-size %zu) is full after "
                         "the prompt and cannot be rolled back", q->cache->max_size);
    for (int l = 0; K && l < gp->draft->hp.n_layers; l++)
        if (gp->draft->layers[l].state_floats)
            return mt_seterr(err, MT_EUNSUPPORTED, "speculative decoding: a draft model with recurrent layers cannot be "
                             "rolled back after rejected proposals");
    if (K && gp->inject) return mt_seterr(err, MT_EINVAL, "a draft model does not go with images");
    if (K && gp->draft->hp.vocab != target->hp.vocab)
        return mt_seterr(err, MT_EINVAL, "the draft model's vocabulary (%d tokens) differs from the model's (%d): "
                         "speculative decoding needs the same tokenizer", gp->draft->hp.vocab, target->hp.vocab);
    if (K && (!q->full || (gp->prefix && !gp->prefix_tokens)))
        return mt_seterr(err, MT_EINVAL, "the draft model needs the prompt cache's token ids, which its file does not "
                         "hold (written by mlx-lm)");
    mt_spec *s = calloc(1, sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    *out = s;
    size_t V = q->V, M = (size_t)(K > N ? K : N);
    s->K = K;
    s->N = N;
    s->lk = (size_t)N;
    float inv = gp->sp.temp > 0 ? (float)(1.0 / (double)gp->sp.temp) : 0;
    s->greedy = gp->sp.temp == 0 || !isfinite(inv);
    mt_spec_rng_seed(&s->rng, gp->sp.seed);
    s->prop = malloc(M * sizeof *s->prop);
    s->rows = malloc((M + 1) * V * sizeof *s->rows);
    s->p = malloc(V * sizeof *s->p);
    s->w = malloc(V * sizeof *s->w);
    if (!s->prop || !s->rows || !s->p || !s->w) return mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_sampler_params cp;
    mt_sampler_params_default(&cp);
    cp.logits_dt = mt_model_logits_dtype(target);
    MT_TRY(mt_sampler_new(&s->conv, &cp, V, err));
    if (N && gp->prefix && gp->prefix_tokens && q->full) {   /* lookup also sees the cached prefix */
        s->seq = malloc((q->nfull + (size_t)gp->max_tokens + 1) * sizeof *s->seq);
        if (!s->seq) return mt_seterr(err, MT_ENOMEM, "out of memory");
        memcpy(s->seq, q->full, q->nfull * sizeof *s->seq);
        s->nseq = s->nfull = q->nfull;
    }
    if (!K) return MT_OK;
    double t0 = now_s();
    s->draft = gp->draft;
    s->cap_hist = q->nh + (size_t)gp->max_tokens + M + 1;
    s->dhist = malloc(s->cap_hist * sizeof *s->dhist);
    s->dl = malloc(V * sizeof *s->dl);
    if (!s->dhist || !s->dl) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!s->greedy && !(s->dprobs = malloc((size_t)K * V * sizeof *s->dprobs)))
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_sampler_params dp = gp->sp;
    dp.logits_dt = mt_model_logits_dtype(s->draft);
    MT_TRY(mt_sampler_new(&s->dsmp, &dp, V, err));
    cp.logits_dt = dp.logits_dt;
    MT_TRY(mt_sampler_new(&s->dconv, &cp, V, err));
    MT_TRY(mt_kvcache_new(&s->dcache, s->draft, err));
    if (gp->kv_f16 > 0 || (gp->kv_f16 < 0 && mt_model_kv_f16(s->draft))) MT_TRY(mt_kvcache_set_f16(s->dcache, 1, err));
    MT_TRY(draft_catch_up(s, q, q->nfull, err));
    double dt = now_s() - t0;   /* the draft's prefill counts as prefill */
    q->res->prefill_s += dt;
    q->t_decode += dt;
    return MT_OK;
}

/* The distribution the sampler draws from, given log-probabilities lp: the filters, then
 * softmax(lp / temp); with XTC, the mixture of its two outcomes. */
static void distribution(const mt_sampler *smp, const mt_sampler_params *sp, const float *lp, float *p, float *w,
                         size_t V) {
    float inv = (float)(1.0 / (double)sp->temp);
    double a = sp->xtc_probability > 0 ? sp->xtc_probability : 0;
    for (int on = 0; on <= (a > 0); on++) {
        double weight = a > 0 ? (on ? a : 1 - a) : 1;
        memcpy(w, lp, V * sizeof *w);
        mt_sampler_filter(smp, w, V, on);
        float zmax = -INFINITY;
        for (size_t i = 0; i < V; i++) {
            w[i] *= inv;
            if (w[i] > zmax) zmax = w[i];
        }
        double total = 0;
        for (size_t i = 0; i < V; i++) total += (w[i] = expf(w[i] - zmax));
        double f = total > 0 ? weight / total : 0;
        for (size_t i = 0; i < V; i++) p[i] = (float)((on ? p[i] : 0) + w[i] * f);
    }
}

/* The draft proposes k tokens after the sequence so far (whose last token is pending). */
static int draft_propose(mt_spec *s, mt_gen_seq *q, size_t k, mt_err *err) {
    size_t V = q->V, n = q->nfull + q->res->n_tokens;
    MT_TRY(draft_catch_up(s, q, n, err));
    memcpy(s->dhist, q->hist, q->nh * sizeof *q->hist);
    const mt_sampler_params *sp = &q->gp->sp;
    for (size_t j = 0; j < k; j++) {
        memcpy(s->w, s->dl, V * sizeof *s->w);
        MT_TRY(mt_gen_check_logits(s->w, V, s->dlen, err));
        mt_sampler_process(s->dsmp, s->w, V, s->dhist, q->nh + j);
        int32_t d;
        if (s->greedy) d = mt_argmax(s->w, V);   /* a proposal: the model's own rounding decides */
        else {
            float *pd = s->dprobs + j * V;
            mt_sampler_sample(s->dconv, s->w, V, NULL);   /* -> log-probabilities */
            distribution(s->dsmp, sp, s->w, pd, s->p, V);
            d = mt_spec_draw(pd, V, &s->rng);
        }
        s->prop[j] = d;
        s->dhist[q->nh + j] = d;
        if (j + 1 < k) {
            MT_TRY(mt_model_forward(s->draft, s->dcache, &d, 1, s->dl, 0, err));
            s->dlen++;
        }
    }
    return MT_OK;
}

int mt_spec_step(mt_spec *s, mt_gen_seq *q, mt_model *target, mt_err *err) {
    mt_gen_result *res = q->res;
    const mt_gen_params *gp = q->gp;
    size_t V = q->V;
    if (!s->pending) {   /* q->logits is fresh (after the prompt): a plain step */
        int32_t t;
        MT_TRY(mt_gen_seq_sample(q, &t, err));
        if (!q->done) { s->pending = 1; s->last = t; }
        return MT_OK;
    }
    /* k proposals and one token of the model's own fit in what max_tokens leaves; a rotating
     * cache must not fill in the pass (it could not be rolled back): once it would, plain rounds */
    size_t kmax = (size_t)gp->max_tokens - res->n_tokens - 1, k = 0, len = q->cache->len, ms = q->cache->max_size;
    if (ms && kmax > (ms >= len + 2 ? ms - len - 2 : 0)) kmax = ms >= len + 2 ? ms - len - 2 : 0;
    s->one_hot = 0;
    if (s->cool) s->cool--;
    else if (kmax && s->N) {
        const int32_t *ids = q->hist;
        size_t n = q->nh;
        if (s->seq) {
            for (; s->nseq < s->nfull + res->n_tokens; s->nseq++) s->seq[s->nseq] = res->tokens[s->nseq - s->nfull];
            ids = s->seq;
            n = s->nseq;
        }
        k = mt_spec_lookup(ids, n, 3, s->prop, kmax < s->lk ? kmax : s->lk);
        s->one_hot = k > 0;
    }
    if (kmax && !k && s->K) {
        k = kmax < (size_t)s->K ? kmax : (size_t)s->K;
        MT_TRY(draft_propose(s, q, k, err));
    }
    /* the pending token and the proposals in one pass */
    int32_t *batch = s->feed;
    if (k + 1 > s->cap_feed) {
        batch = realloc(s->feed, (k + 1) * sizeof *batch);
        if (!batch) return mt_seterr(err, MT_ENOMEM, "out of memory");
        s->feed = batch;
        s->cap_feed = k + 1;
    }
    batch[0] = s->last;
    memcpy(batch + 1, s->prop, k * sizeof *batch);
    MT_TRY(mt_model_verify(target, q->cache, batch, k + 1, s->rows, err));
    s->proposed += k;
    res->draft_tokens += k;
    size_t keep = k + 1;   /* rows of this pass the cache keeps */
    for (size_t i = 0; i <= k; i++) {
        memcpy(q->logits, s->rows + i * V, V * sizeof *q->logits);
        MT_TRY(mt_gen_seq_process(q, err));
        int32_t t;
        float lp;
        int kept = 0;
        if (s->greedy) {
            t = mt_sampler_sample(q->smp, q->logits, V, &lp);   /* argmax; logits -> log-probabilities */
            kept = i < k && t == s->prop[i];
        } else {
            mt_sampler_sample(s->conv, q->logits, V, NULL);
            distribution(q->smp, &gp->sp, q->logits, s->p, s->w, V);
            if (i < k) t = mt_spec_verify(s->p, s->one_hot ? NULL : s->dprobs + i * V, V, s->prop[i], &s->rng, &kept);
            else t = mt_spec_draw(s->p, V, &s->rng);
            lp = q->logits[t];
        }
        int32_t next;
        MT_TRY(mt_gen_seq_accept(q, t, lp, &next, err));
        if (kept) { s->accepted++; res->accepted_tokens++; }
        if (q->done || !kept) { keep = i + 1; s->last = t; break; }
    }
    if (s->one_hot) {   /* a copy that breaks off early will likely break off early again */
        size_t kept = keep - 1;
        s->lk = kept == k ? (s->lk * 2 < (size_t)s->N ? s->lk * 2 : (size_t)s->N) : (kept + 1 > s->lk / 2 ? kept + 1 : s->lk / 2);
        if (!s->lk) s->lk = 1;
        /* a lone proposal rejected: the text is not copying now; pause lookup for 1, 2, 4 .. 16 rounds */
        if (!kept && k == 1) s->cool = s->miss = s->miss ? (s->miss < 16 ? s->miss * 2 : 16) : 1;
        else if (kept) s->miss = 0;
    }
    if (keep < k + 1 && mt_kvcache_trim(q->cache, k + 1 - keep) != k + 1 - keep)
        return mt_seterr(err, MT_EINVAL, "speculative decoding: the KV cache could not be rolled back");
    /* the draft keeps the sequence less its last (pending) token */
    size_t want = q->nfull + res->n_tokens - (res->n_tokens > 0);
    if (s->dcache && s->dlen > want) {
        mt_kvcache_trim(s->dcache, s->dlen - want);
        s->dlen = want;
    }
    return MT_OK;
}
