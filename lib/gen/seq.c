/* seq.c - one generating sequence as a state machine: its cache (new, or from
 * saved state), prefill, then sample -> text (stop strings held back) -> next,
 * and the result.  mt_generate, the batch schedulers and speculative decoding
 * all drive it (gen/seq.h). */
#include "gen/seq.h"
#include "gen/constrain.h"
#include "core/buf.h"
#include "kv/prefix.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- text with stop strings ---- */

static int tb_append(mt_gen_textbuf *t, const char *p, size_t n) {
    mt_buf_put(&t->b, p, n);
    return t->b.oom ? -1 : 0;
}

/* Earliest full stop-string match that ends after `from`; its offset or -1. */
static long find_stop(const mt_gen_textbuf *b, size_t from, const mt_gen_params *gp) {
    long best = -1;
    for (size_t i = 0; i < gp->n_stop; i++) {
        size_t sl = strlen(gp->stop[i]);
        if (!sl) continue;
        size_t start = from >= sl ? from - sl + 1 : 0;   /* a match may straddle old text */
        for (size_t o = start; o + sl <= b->b.n; o++)
            if (memcmp(b->b.p + o, gp->stop[i], sl) == 0) {
                if (best < 0 || (long)o < best) best = (long)o;
                break;
            }
    }
    return best;
}

/* Bytes at the end of the buffer that could begin a stop string. */
static size_t stop_holdback(const mt_gen_textbuf *b, const mt_gen_params *gp) {
    size_t hold = 0;
    for (size_t i = 0; i < gp->n_stop; i++) {
        size_t sl = strlen(gp->stop[i]);
        for (size_t k = sl > 1 ? sl - 1 : 0; k > hold; k--)
            if (k <= b->b.n && memcmp(b->b.p + b->b.n - k, gp->stop[i], k) == 0) { hold = k; break; }
    }
    return hold;
}

/* ---- non-finite logits ---- */

/* Some layer is plain attention, whose cache mlx-lm quantizes for --kv-bits (KVCache.to_quantized):
 * a model of recurrent layers only has nothing to quantize (ArraysCache has no to_quantized), nor
 * has falcon_h1, whose attention shares a CacheList with its Mamba-2 state (none either). */
static int has_attention(const mt_model *m) {
    if (m->kv_padded) return 1;   /* gemma4: its attention is a mixer */
    for (int l = 0; l < m->hp.n_layers; l++)
        if (!m->layers[l].mixer) return 1;
    return 0;
}

/* 1 when x[0..n) holds a NaN or an infinity (exponent bits all ones); one pass the
 * compiler vectorizes, cheap next to the forward pass that made the row. */
static int has_nonfinite(const float *x, size_t n) {
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, sizeof b);
        bad |= (~b & 0x7F800000u) == 0;
    }
    return bad != 0;
}

/* Corrupt weights (a NaN scale), or a config that slipped through, give NaN
 * logits: the sampler would then pick garbage (or nothing) and call it an answer.
 * n_tokens: tokens the model has seen, the last of which gave this row. */
int mt_gen_check_logits(const float *row, size_t V, size_t n_tokens, mt_err *err) {
    if (!has_nonfinite(row, V)) return MT_OK;
    return mt_seterr(err, MT_EFORMAT, "model produced non-finite logits at token %zu (corrupt weights or config?)",
                     n_tokens);
}

/* ---- one sequence as a state machine ---- */

void mt_gen_seq_free(mt_gen_seq *q) {
    free(q->tb.b.p);
    free(q->hist);
    free(q->logits);
    mt_detok_free(q->dt);
    mt_sampler_free(q->smp);
    mt_constraint_free(q->con);
    mt_kvcache_free(q->cache);
    free(q->joined);
    memset(q, 0, sizeof *q);
}

/* --kv-bits on a new cache: mlx-lm's QuantizedKVCache from kv_start tokens on */
/* mlx-lm caches sliding-window layers (gemma3, llama's layer_types) as RotatingKVCache, which
 * has no quantized form: its --kv-bits raises there */
static int sliding_refusal(const mt_model *m, int bits, mt_err *err) {
    for (int l = 0; l < m->hp.n_layers; l++)
        if (m->layers[l].sliding && m->hp.sliding_window > 0)
            return mt_seterr(err, MT_EINVAL, "--kv-bits %d: this model has sliding-window layers, which mlx-lm keeps in a "
                             "RotatingKVCache that cannot be quantized%s", bits, m->kv_padded ? "" : " (--kv-bits 3 works)");
    return MT_OK;
}

static int mt_gen_kv_quant(const mt_model *m, mt_kvcache *c, const mt_gen_params *gp, mt_err *err) {
    if (gp->kv_bits == 3) return mt_kvcache_set_turbo(c, 3, err);   /* rotation + Lloyd-Max codebook */
    MT_TRY(sliding_refusal(m, gp->kv_bits, err));
    return mt_kvcache_set_quant(c, gp->kv_bits, gp->kv_group_size > 0 ? gp->kv_group_size : 64,
                                gp->kv_start > 0 ? (size_t)gp->kv_start : 0, err);
}

/* Snapshots serve only plain unbounded float caches whose every token id is known (a
 * rotating or quantized cache's state depends on how it got there; a prefix without ids
 * cannot be matched). */
static int store_ok(const mt_gen_seq *q) {
    const mt_gen_params *gp = q->gp;
    return gp->store && !gp->inject && (!gp->prefix || gp->prefix_tokens) && q->cache && !q->cache->max_size &&
           q->cache->qscheme == MT_KVQ_NONE;
}

/* --kv-bits on a float prompt cache: as mlx-lm, it stays float and is quantized at the end of
 * the first forward call that leaves it holding kv_start tokens or more */
static int float_prefix_quant(mt_kvcache *c, const mt_gen_params *gp, mt_err *err) {
    int b = gp->kv_bits, g = gp->kv_group_size > 0 ? gp->kv_group_size : 64;
    if (b == 3) return mt_seterr(err, MT_EINVAL, "--kv-bits 3 (the rotation scheme) cannot continue a float prompt cache");
    if (b != 2 && b != 4 && b != 5 && b != 6 && b != 8)
        return mt_seterr(err, MT_EINVAL, "--kv-bits %d: KV quantization takes 2, 4, 5, 6 or 8 bits", b);
    if (c->max_size) return mt_seterr(err, MT_EINVAL, "--kv-bits: a rotating prompt cache cannot be quantized (as in mlx-lm)");
    if (c->head_dim % g) return mt_seterr(err, MT_EINVAL, "--kv-group-size %d does not divide head_dim %d", g, c->head_dim);
    c->qscheme = MT_KVQ_AFFINE;
    c->qbits = b;
    c->qgroup = g;
    c->qstart = gp->kv_start > 0 ? (size_t)gp->kv_start : 0;
    c->quantized = 0;
    return MT_OK;
}

/* The cache a sequence starts from and the tokens still to compute.  Without saved state:
 * a new cache, all of the prompt.  With gp->prefix: a copy of it, and the prompt follows
 * it (the full ids are its tokens + the prompt when known).  With gp->store: the stored
 * snapshot sharing the longest prefix with the full ids, when it saves more.  At least one
 * token is always computed (for its logits): a prompt that adds nothing to the prefix
 * re-runs the prefix's last token. */
static int seq_cache(mt_gen_seq *q, mt_model *m, const int32_t *prompt, size_t n_prompt, int32_t **joined,
                     const int32_t **full, size_t *nfull, size_t *have, mt_err *err) {
    const mt_gen_params *gp = q->gp;
    *joined = NULL;
    if (!gp->prefix) {
        MT_TRY(mt_kvcache_new(&q->cache, m, err));
        if (gp->kv_f16 > 0 || (gp->kv_f16 < 0 && mt_model_kv_f16(m))) MT_TRY(mt_kvcache_set_f16(q->cache, 1, err));
        if (gp->max_kv_size > 0 && !m->own_cache) MT_TRY(mt_kvcache_set_max(q->cache, (size_t)gp->max_kv_size, 4, err));
        if (gp->kv_bits > 0 && has_attention(m)) MT_TRY(mt_gen_kv_quant(m, q->cache, gp, err));
        *full = prompt;
        *nfull = n_prompt;
        *have = 0;
    } else {
        size_t P = gp->prefix->len;
        if (gp->max_kv_size > 0 && !gp->prefix->max_size && P > (size_t)gp->max_kv_size)
            return mt_seterr(err, MT_EINVAL, "the prompt cache holds %zu tokens, more than --max-kv-size %d", P,
                             gp->max_kv_size);
        if (m->ctx_len && P + n_prompt > m->ctx_len)
            return mt_seterr(err, MT_EINVAL, "the cached prefix (%zu tokens) and the prompt (%zu) exceed the model's "
                             "context of %zu (%s)", P, n_prompt, m->ctx_len, m->ctx_why);
        const mt_kvcache *pc = gp->prefix;
        if (gp->kv_bits > 0 && pc->qscheme != MT_KVQ_NONE &&
            (gp->kv_bits != pc->qbits || (pc->qscheme == MT_KVQ_AFFINE && gp->kv_group_size > 0 && gp->kv_group_size != pc->qgroup)))
            return mt_seterr(err, MT_EINVAL, "--kv-bits %d differs from the prompt cache's %d-bit KV", gp->kv_bits, pc->qbits);
        MT_TRY(mt_kvcache_copy(&q->cache, pc, err));
        if (gp->kv_bits > 0 && pc->qscheme == MT_KVQ_NONE) {
            MT_TRY(sliding_refusal(m, gp->kv_bits, err));
            MT_TRY(float_prefix_quant(q->cache, gp, err));
        }
        if (gp->prefix_tokens) {
            *joined = malloc((P + n_prompt + 1) * sizeof **joined);
            if (!*joined) return mt_seterr(err, MT_ENOMEM, "out of memory");
            memcpy(*joined, gp->prefix_tokens, P * sizeof **joined);
            if (n_prompt) memcpy(*joined + P, prompt, n_prompt * sizeof *prompt);
            *full = *joined;
            *nfull = P + n_prompt;
            *have = P;
        } else {
            *full = prompt;   /* the prefix's ids are unknown: only the prompt can be indexed */
            *nfull = n_prompt;
            *have = 0;
            if (!n_prompt)
                return mt_seterr(err, MT_EINVAL, "the record adds no tokens to the cached prefix, whose token ids the "
                                 "file does not hold (written by mlx-lm)");
            return MT_OK;
        }
        if (*have == *nfull) {   /* nothing new: recompute the last cached token for its logits */
            if (!P || mt_kvcache_trim(q->cache, 1) != 1)
                return mt_seterr(err, MT_EINVAL, "the record adds no tokens to the cached prefix, and the cache cannot "
                                 "be rolled back one token (a rotating cache that has wrapped, or recurrent state)");
            *have = P - 1;
        }
    }
    if (store_ok(q) && *nfull > 1) {
        mt_kvcache *c;
        size_t used;
        MT_TRY(mt_prefix_store_take(gp->store, (uint32_t)q->cache->f16, *full, *nfull, *have, &c, &used, err));
        if (c) {
            mt_kvcache_free(q->cache);
            q->cache = c;
            *have = used;
        }
    }
    return MT_OK;
}

/* Allocate and prefill; leaves the logits of the last prompt token.  A prompt longer than
 * the model's context (m->ctx_len) is refused first. */
int mt_gen_seq_begin(mt_gen_seq *q, mt_model *m, const mt_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                     const mt_gen_params *gp, mt_gen_text_fn on_text, void *user, mt_gen_result *res, mt_err *err) {
    memset(q, 0, sizeof *q);
    memset(res, 0, sizeof *res);
    q->gp = gp;
    q->res = res;
    q->on_text = on_text;
    q->user = user;
    q->V = (size_t)m->hp.vocab;
    if (n_prompt == 0 && !(gp->prefix && gp->prefix_tokens && gp->prefix->len))
        return mt_seterr(err, MT_EINVAL, "empty prompt");
    /* before any work: a prompt past the model's context would only crawl (prefill is
     * quadratic) towards an answer the model was never trained to give */
    if (m->ctx_len && n_prompt > m->ctx_len)
        return mt_seterr(err, MT_EINVAL, "prompt is %zu tokens; the model's context is %zu (%s)", n_prompt, m->ctx_len,
                         m->ctx_why);
    if (gp->max_tokens < 0) return mt_seterr(err, MT_EINVAL, "max_tokens must not be negative");
    if (gp->logprobs < 0 || (size_t)gp->logprobs > q->V)
        return mt_seterr(err, MT_EINVAL, "logprobs must be in [0, %zu]", q->V);
    MT_TRY(mt_sampler_params_check(&gp->sp, q->V, err));
    size_t cap = (size_t)gp->max_tokens + 1, K = (size_t)gp->logprobs;
    q->logits = malloc(q->V * sizeof *q->logits);
    q->hist = malloc((cap + n_prompt) * sizeof *q->hist);
    res->tokens = malloc(cap * sizeof *res->tokens);
    res->token_logprobs = malloc(cap * sizeof *res->token_logprobs);
    if (K) {
        res->top_ids = malloc(cap * K * sizeof *res->top_ids);
        res->top_logprobs = malloc(cap * K * sizeof *res->top_logprobs);
    }
    if (!q->logits || !q->hist || !res->tokens || !res->token_logprobs || (K && (!res->top_ids || !res->top_logprobs)))
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_sampler_params sp = gp->sp;
    sp.logits_dt = mt_model_logits_dtype(m);   /* mlx's numerics: log-probabilities in the model's dtype */
    MT_TRY(mt_sampler_new(&q->smp, &sp, q->V, err));
    MT_TRY(mt_detok_new(&q->dt, tok, 0, err));
    if (gp->grammar) MT_TRY(mt_constraint_new(&q->con, gp->grammar, err));
    q->m = m;
    q->t0 = now_s();
    q->prompt = prompt;
    q->n_prompt = n_prompt;
    /* history for the logits processors: the whole prompt + generated tokens (mlx-lm 0.32
     * generate_step concatenates every processed prompt chunk) */
    if (n_prompt) memcpy(q->hist, prompt, n_prompt * sizeof *q->hist);
    q->nh = n_prompt;
    return MT_OK;
}

/* The first prefill step: the cache to start from (a shared prefix stored by a sequence
 * prefilled before is found here, not at _begin) and the tokens still to compute. */
static int seq_first(mt_gen_seq *q, mt_err *err) {
    const mt_gen_params *gp = q->gp;
    const int32_t *full = q->prompt;
    size_t nfull = q->n_prompt, have = 0;
    int32_t *joined = NULL;
    int rc = seq_cache(q, q->m, q->prompt, q->n_prompt, &joined, &full, &nfull, &have, err);
    q->joined = joined;
    MT_TRY(rc);
    q->full = full;
    q->nfull = nfull;
    q->pf_have = q->pf_off = have;
    if (gp->inject) {   /* the rows of image tokens the cached part holds are used already */
        size_t want = 0, done = 0;
        for (size_t i = 0; i < nfull; i++) want += full[i] == gp->inject->token_id;
        for (size_t i = 0; i < have; i++) done += full[i] == gp->inject->token_id;
        if (want != gp->inject->n)
            return mt_seterr(err, MT_EINVAL, "the prompt has %zu image tokens, the images give %zu", want,
                             gp->inject->n);
        q->pf_inj = *gp->inject;
        q->pf_inj.next = done;
    }
    q->cache_ready = 1;
    return MT_OK;
}

int mt_gen_seq_prefill(mt_gen_seq *q, mt_err *err) {
    if (q->prefilled) return MT_OK;
    if (!q->cache_ready) MT_TRY(seq_first(q, err));
    mt_model *m = q->m;
    const mt_gen_params *gp = q->gp;
    mt_gen_result *res = q->res;
    const int32_t *full = q->full;
    size_t nfull = q->nfull, have = q->pf_have, off = q->pf_off;
    mt_embed_inject *ip = gp->inject ? &q->pf_inj : NULL;
    /* like mlx-lm's generate_step: chunks of prefill_step until one token is left, then
     * that token alone (dynamic RoPE sees the same call lengths) */
    size_t step = gp->prefill_step > 0 ? (size_t)gp->prefill_step : 2048;
    if (m->hp.bidirectional && !q->cache->max_size) {
        /* a bidirectional prompt (PaliGemma) in one call: mlx-vlm's chunked_prefill_policy
         * refuses chunks there, since every prompt row sees every other */
        MT_TRY(mt_model_forward_inject(m, q->cache, full + have, nfull - have, q->logits, 0, ip, err));
    } else {
        if (off + 1 < nfull) {
            size_t n = nfull - 1 - off < step ? nfull - 1 - off : step;
            if (gp->tick && gp->tick->fn && nfull - have > step)
                mt_jsonl_tick_note(gp->tick, "prompt %zu / %zu tokens", off, nfull);
            MT_TRY(mt_model_forward_inject(m, q->cache, full + off, n, q->logits, 0, ip, err));
            q->pf_off = off += n;
            if (off + 1 < nfull) return MT_OK;   /* more chunks to come */
        }
        /* the last token alone, in the same step as the last chunk */
        MT_TRY(mt_model_forward_inject(m, q->cache, full + nfull - 1, 1, q->logits, 0, ip, err));
    }
    q->prefilled = 1;
    res->prompt_tokens = gp->prefix ? gp->prefix->len + q->n_prompt : q->n_prompt;
    res->cached_tokens = res->prompt_tokens - (nfull - have);   /* what was not computed */
    if (store_ok(q) && full) MT_TRY(mt_prefix_store_put(gp->store, (uint32_t)q->cache->f16, full, nfull, q->cache, err));
    if (gp->snapshot == 1) {
        MT_TRY(mt_kvcache_copy(&res->prompt_cache, q->cache, err));
        if (full) {
            res->prompt_ids = malloc(nfull * sizeof *res->prompt_ids);
            if (!res->prompt_ids) return mt_seterr(err, MT_ENOMEM, "out of memory");
            memcpy(res->prompt_ids, full, nfull * sizeof *full);
            res->n_prompt_ids = nfull;
        }
    }
    q->t_decode = now_s();
    res->prefill_s = q->t_decode - q->t0;
    res->finish_reason = "length";
    if (gp->max_tokens == 0) q->done = 1;
    return MT_OK;
}

int mt_gen_seq_start(mt_gen_seq *q, mt_model *m, const mt_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                     const mt_gen_params *gp, mt_gen_text_fn on_text, void *user, mt_gen_result *res, mt_err *err) {
    MT_TRY(mt_gen_seq_begin(q, m, tok, prompt, n_prompt, gp, on_text, user, res, err));
    while (!q->prefilled) MT_TRY(mt_gen_seq_prefill(q, err));
    return MT_OK;
}

static int seq_text(mt_gen_seq *q, const char *piece, size_t pl, mt_err *err) {
    const mt_gen_params *gp = q->gp;
    if (gp->trim_first_space && !q->seen_text && pl) {
        q->seen_text = 1;
        if (piece[0] == ' ') { piece++; pl--; }
    }
    size_t old = q->tb.b.n;
    if (tb_append(&q->tb, piece, pl)) return mt_seterr(err, MT_ENOMEM, "out of memory");
    long sp = gp->n_stop ? find_stop(&q->tb, old, gp) : -1;
    if (sp >= 0) {
        q->tb.b.n = (size_t)sp;
        q->tb.b.p[q->tb.b.n] = 0;
        q->res->finish_reason = "stop";
        q->stopped = q->done = 1;
    }
    size_t safe = q->stopped ? q->tb.b.n : q->tb.b.n - stop_holdback(&q->tb, gp);
    if (q->on_text && safe > q->tb.emitted) {
        if (q->on_text(q->user, q->tb.b.p + q->tb.emitted, safe - q->tb.emitted))
            return mt_seterr(err, MT_EIO, "output aborted");
        q->tb.emitted = safe;
    }
    return MT_OK;
}

int mt_gen_seq_process(mt_gen_seq *q, mt_err *err) {
    MT_TRY(mt_gen_check_logits(q->logits, q->V, q->nh, err));
    mt_sampler_process(q->smp, q->logits, q->V, q->hist, q->nh);
    if (q->con) {   /* structured output: what the grammar does not allow gets -inf */
        double t0 = now_s();
        int rc = mt_constraint_mask(q->con, q->logits, q->V, err);
        q->res->grammar_s += now_s() - t0;
        MT_TRY(rc);
    }
    return MT_OK;
}

int mt_gen_seq_accept(mt_gen_seq *q, int32_t t, float lp, int32_t *next, mt_err *err) {
    mt_gen_result *res = q->res;
    const mt_gen_params *gp = q->gp;
    if (q->con) MT_TRY(mt_constraint_accept(q->con, t, err));
    for (size_t i = 0; i < gp->n_eos; i++)
        if (gp->eos[i] == t) { res->finish_reason = "stop"; res->eos = 1; q->done = 1; return MT_OK; }
    size_t k = (size_t)gp->logprobs, n = res->n_tokens;
    if (k) mt_top_logprobs(q->logits, q->V, k, res->top_ids + n * k, res->top_logprobs + n * k);
    res->token_logprobs[n] = lp;
    res->tokens[res->n_tokens++] = t;
    q->hist[q->nh++] = t;
    char *piece = NULL;
    size_t pl = 0;
    MT_TRY(mt_detok_push(q->dt, t, &piece, &pl, err));
    int rc = seq_text(q, piece, pl, err);
    free(piece);
    MT_TRY(rc);
    if ((int)res->n_tokens >= gp->max_tokens) q->done = 1;
    *next = t;
    return MT_OK;
}

/* Sample from q->logits.  Sets *next to the token to run through the model
 * next, or marks the sequence done. */
int mt_gen_seq_sample(mt_gen_seq *q, int32_t *next, mt_err *err) {
    MT_TRY(mt_gen_seq_process(q, err));
    float lp = 0;
    int32_t t = mt_sampler_sample(q->smp, q->logits, q->V, &lp);   /* logits now hold logprobs */
    return mt_gen_seq_accept(q, t, lp, next, err);
}

/* Flush the detokenizer and hand the text to the result. */
int mt_gen_seq_finish(mt_gen_seq *q, mt_err *err) {
    mt_gen_result *res = q->res;
    if (!q->stopped) {
        char *piece = NULL;
        size_t pl = 0;
        MT_TRY(mt_detok_flush(q->dt, &piece, &pl, err));
        size_t from = q->tb.emitted;
        const char *pp = piece;
        if (q->gp->trim_first_space && !q->seen_text && pl && pp[0] == ' ') { pp++; pl--; }
        int bad = tb_append(&q->tb, pp, pl);
        free(piece);
        if (bad) return mt_seterr(err, MT_ENOMEM, "out of memory");
        long sp = q->gp->n_stop ? find_stop(&q->tb, from, q->gp) : -1;
        if (sp >= 0) { q->tb.b.n = (size_t)sp; q->tb.b.p[q->tb.b.n] = 0; res->finish_reason = "stop"; }
    }
    if (q->on_text && q->tb.b.n > q->tb.emitted && q->on_text(q->user, q->tb.b.p + q->tb.emitted, q->tb.b.n - q->tb.emitted))
        return mt_seterr(err, MT_EIO, "output aborted");
    if (!q->tb.b.p && tb_append(&q->tb, "", 0)) return mt_seterr(err, MT_ENOMEM, "out of memory");
    res->decode_s = now_s() - q->t_decode;
    if (q->gp->snapshot == 2) {   /* the state after generation: the prompt and every generated token fed back */
        size_t fed = q->cache->len - q->nfull;
        if (fed > res->n_tokens) fed = res->n_tokens;
        MT_TRY(mt_kvcache_copy(&res->prompt_cache, q->cache, err));
        if (q->full) {
            res->prompt_ids = malloc((q->nfull + fed + 1) * sizeof *res->prompt_ids);
            if (!res->prompt_ids) return mt_seterr(err, MT_ENOMEM, "out of memory");
            memcpy(res->prompt_ids, q->full, q->nfull * sizeof *q->full);
            if (fed) memcpy(res->prompt_ids + q->nfull, res->tokens, fed * sizeof *res->tokens);
            res->n_prompt_ids = q->nfull + fed;
        }
    }
    res->text = q->tb.b.p;
    res->text_len = q->tb.b.n;
    q->tb.b.p = NULL;
    return MT_OK;
}
