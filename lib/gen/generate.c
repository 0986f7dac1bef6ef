/* generate.c - one sequence, or several in lockstep, driven through the
 * sequence state machine (gen/seq.h: prefill, then sample token by token
 * until an eos id, a stop string or max_tokens); and scoring. */
#include "gen/generate.h"
#include "gen/seq.h"
#include "gen/speculative.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void mt_gen_params_default(mt_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->max_tokens = 256;
    mt_sampler_params_default(&p->sp);
    p->prefill_step = 2048;
    p->kv_f16 = -1;
}

void mt_gen_result_free(mt_gen_result *r) {
    if (!r) return;
    free(r->text);
    free(r->tokens);
    free(r->token_logprobs);
    free(r->top_ids);
    free(r->top_logprobs);
    mt_kvcache_free(r->prompt_cache);
    free(r->prompt_ids);
    memset(r, 0, sizeof *r);
}


int mt_generate(mt_model *m, const mt_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                const mt_gen_params *gp, mt_gen_text_fn on_text, void *user, mt_gen_result *res, mt_err *err) {
    mt_gen_seq q;
    mt_spec *s = NULL;   /* speculative decoding (gen/speculative.h) */
    int rc = mt_gen_seq_start(&q, m, tok, prompt, n_prompt, gp, on_text, user, res, err);
    if (!rc && !q.done && mt_spec_wanted(gp) && !gp->grammar) rc = mt_spec_new(&s, &q, m, err);
    while (!rc && !q.done) {
        int32_t t;
        if (s) rc = mt_spec_step(s, &q, m, err);
        else rc = mt_gen_seq_sample(&q, &t, err);
        if (gp->tick && gp->tick->fn) mt_jsonl_tick_note(gp->tick, "%zu tokens generated", res->n_tokens);
        if (!s && !rc && !q.done) rc = mt_model_forward(m, q.cache, &t, 1, q.logits, 0, err);
    }
    if (!rc) rc = mt_gen_seq_finish(&q, err);
    mt_spec_free(s);
    mt_gen_seq_free(&q);
    if (rc) mt_gen_result_free(res);
    return rc;
}

void mt_generate_batch(mt_model *m, const mt_tokenizer *tok, const int32_t *const *prompts, const size_t *n_prompts,
                       const mt_gen_params *const *gps, size_t B, mt_gen_result *res, int *rcs, mt_err *errs) {
    mt_gen_seq *q = calloc(B, sizeof *q);
    mt_kvcache **caches = malloc((B ? B : 1) * sizeof *caches);
    int32_t *toks = malloc((B ? B : 1) * sizeof *toks);
    size_t *idx = malloc((B ? B : 1) * sizeof *idx);
    float *logits = malloc((B ? B : 1) * (size_t)m->hp.vocab * sizeof *logits);
    if (!q || !caches || !toks || !idx || !logits) {
        for (size_t b = 0; b < B; b++) rcs[b] = mt_seterr(&errs[b], MT_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t b = 0; b < B; b++) {
        rcs[b] = mt_gen_seq_start(&q[b], m, tok, prompts[b], n_prompts[b], gps[b], NULL, NULL, &res[b], &errs[b]);
        if (rcs[b]) q[b].done = 1;
    }
    for (;;) {
        size_t n = 0;
        for (size_t b = 0; b < B; b++) {
            if (rcs[b] || q[b].done) continue;
            int32_t t;
            rcs[b] = mt_gen_seq_sample(&q[b], &t, &errs[b]);
            if (rcs[b] || q[b].done) continue;
            caches[n] = q[b].cache;
            toks[n] = t;
            idx[n++] = b;
        }
        if (!n) break;
        const mt_jsonl_tick *tick = gps[idx[0]]->tick;
        if (tick && tick->fn) {
            size_t total = 0;
            for (size_t b = 0; b < B; b++) total += res[b].n_tokens;
            mt_jsonl_tick_note(tick, "%zu of %zu sequences decoding, %zu tokens generated", n, B, total);
        }
        mt_err e = {0};
        int rc = mt_model_decode_batch(m, caches, toks, n, logits, &e);
        for (size_t i = 0; i < n; i++) {
            if (rc) { rcs[idx[i]] = rc; errs[idx[i]] = e; continue; }
            memcpy(q[idx[i]].logits, logits + i * (size_t)m->hp.vocab, (size_t)m->hp.vocab * sizeof *logits);
        }
    }
    for (size_t b = 0; b < B; b++) {
        if (!rcs[b]) rcs[b] = mt_gen_seq_finish(&q[b], &errs[b]);
        if (rcs[b]) mt_gen_result_free(&res[b]);
    }
done:
    for (size_t b = 0; q && b < B; b++) mt_gen_seq_free(&q[b]);
    free(q);
    free(caches);
    free(toks);
    free(idx);
    free(logits);
}

int mt_score(mt_model *m, const int32_t *ids, size_t n, float *logprobs, mt_err *err) {
    return mt_score_kv(m, ids, n, 0, 0, -1, logprobs, err);
}

int mt_score_kv(mt_model *m, const int32_t *ids, size_t n, int kv_bits, int kv_group, int kv_f16, float *logprobs,
                mt_err *err) {
    return mt_score_inject(m, ids, n, kv_bits, kv_group, kv_f16, NULL, logprobs, err);
}

int mt_score_inject(mt_model *m, const int32_t *ids, size_t n, int kv_bits, int kv_group, int kv_f16,
                    const mt_embed_inject *inject, float *logprobs, mt_err *err) {
    if (n == 0) return mt_seterr(err, MT_EINVAL, "nothing to score");
    mt_embed_inject inj, *ip = NULL;
    if (inject) {   /* the last id is only scored, never run */
        size_t k = 0;
        for (size_t i = 0; i + 1 < n; i++) k += ids[i] == inject->token_id;
        if (k != inject->n)
            return mt_seterr(err, MT_EINVAL, "the input has %zu image tokens, the images give %zu", k, inject->n);
        inj = *inject;
        inj.next = 0;
        ip = &inj;
    }
    if (m->ctx_len && n > m->ctx_len)
        return mt_seterr(err, MT_EINVAL, "input is %zu tokens; the model's context is %zu (%s)", n, m->ctx_len, m->ctx_why);
    size_t V = (size_t)m->hp.vocab, step = 512;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= V) return mt_seterr(err, MT_EINVAL, "token id %d outside the vocabulary (%zu)", ids[i], V);
    logprobs[0] = 0;
    if (n == 1) return MT_OK;
    mt_kvcache *c = NULL;
    float *lg = malloc(step * V * sizeof *lg);
    if (!lg) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = mt_kvcache_new(&c, m, err);
    if (!rc && (kv_f16 > 0 || (kv_f16 < 0 && (kv_bits > 0 || mt_model_mlx(m)) && mt_model_kv_f16(m))))
        rc = mt_kvcache_set_f16(c, 1, err);
    /* quantized KV: every row quantized as it is written, so every position attends to
     * quantized keys and values (as llama.cpp's quantized caches do) */
    if (!rc && kv_bits == 3) rc = mt_kvcache_set_turbo(c, 3, err);
    else if (!rc && kv_bits > 0) rc = mt_kvcache_set_quant(c, kv_bits, kv_group > 0 ? kv_group : 64, 0, err);
    if (!rc && kv_bits > 0) rc = mt_kvcache_mark_quantized(c, err);
    for (size_t off = 0; !rc && off < n - 1; off += step) {
        size_t T = n - 1 - off < step ? n - 1 - off : step;
        rc = mt_model_forward_inject(m, c, ids + off, T, lg, 1, ip, err);
        for (size_t t = 0; !rc && t < T; t++) {
            const float *row = lg + t * V;
            if ((rc = mt_gen_check_logits(row, V, off + t + 1, err))) break;
            float mx = row[0];
            for (size_t v = 1; v < V; v++) mx = row[v] > mx ? row[v] : mx;
            double s = 0;
            for (size_t v = 0; v < V; v++) s += exp((double)(row[v] - mx));
            logprobs[off + t + 1] = (float)((double)row[ids[off + t + 1]] - mx - log(s));
        }
    }
    mt_kvcache_free(c);
    free(lg);
    return rc;
}
