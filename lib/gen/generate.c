/* generate.c - prefill in chunks, then sample token by token until an eos id,
 * a stop string or max_tokens.  Text is produced by the streaming
 * detokenizer and held back while it could still be the start of a stop
 * string, so stop strings never reach the output even across tokens. */
#include "gen/generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void mt_gen_params_default(mt_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->max_tokens = 256;
    mt_sampler_params_default(&p->sp);
    p->prefill_step = 512;
}

void mt_gen_result_free(mt_gen_result *r) {
    if (!r) return;
    free(r->text);
    free(r->tokens);
    memset(r, 0, sizeof *r);
}

typedef struct textbuf {
    char *s;
    size_t len, cap, emitted;       /* bytes [0, emitted) were handed to on_text */
} textbuf;

static int tb_append(textbuf *b, const char *p, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *s = realloc(b->s, cap);
        if (!s) return -1;
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
    b->s[b->len] = 0;
    return 0;
}

/* Earliest full stop-string match at or after `from`; returns its offset or -1. */
static long find_stop(const textbuf *b, size_t from, const mt_gen_params *gp) {
    long best = -1;
    for (size_t i = 0; i < gp->n_stop; i++) {
        size_t sl = strlen(gp->stop[i]);
        if (!sl) continue;
        size_t start = from >= sl ? from - sl + 1 : 0;   /* a match may straddle old text */
        for (size_t o = start; o + sl <= b->len; o++)
            if (memcmp(b->s + o, gp->stop[i], sl) == 0) {
                if (best < 0 || (long)o < best) best = (long)o;
                break;
            }
    }
    return best;
}

/* Bytes at the end of the buffer that could begin a stop string. */
static size_t stop_holdback(const textbuf *b, const mt_gen_params *gp) {
    size_t hold = 0;
    for (size_t i = 0; i < gp->n_stop; i++) {
        size_t sl = strlen(gp->stop[i]);
        for (size_t k = sl > 1 ? sl - 1 : 0; k > hold; k--)
            if (k <= b->len && memcmp(b->s + b->len - k, gp->stop[i], k) == 0) { hold = k; break; }
    }
    return hold;
}

static int is_eos(const mt_gen_params *gp, int32_t t) {
    for (size_t i = 0; i < gp->n_eos; i++) if (gp->eos[i] == t) return 1;
    return 0;
}

int mt_generate(mt_model *m, const mt_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                const mt_gen_params *gp, mt_gen_text_fn on_text, void *user, mt_gen_result *res, mt_err *err) {
    memset(res, 0, sizeof *res);
    if (n_prompt == 0) return mt_seterr(err, MT_EINVAL, "empty prompt");
    size_t V = (size_t)m->hp.vocab;
    MT_TRY(mt_sampler_params_check(&gp->sp, V, err));
    int rc = MT_OK;
    mt_kvcache *cache = NULL;
    mt_sampler *smp = NULL;
    mt_detok *dt = NULL;
    float *logits = malloc(V * sizeof *logits);
    size_t cap = (size_t)(gp->max_tokens > 0 ? gp->max_tokens : 0) + 1;
    res->tokens = malloc(cap * sizeof *res->tokens);
    int32_t *hist = malloc((cap + n_prompt) * sizeof *hist);
    textbuf tb = {0};
    if (!logits || !res->tokens || !hist) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto done; }
    if ((rc = mt_kvcache_new(&cache, m, err)) || (rc = mt_sampler_new(&smp, &gp->sp, V, err)) ||
        (rc = mt_detok_new(&dt, tok, 0, err)))
        goto done;

    double t0 = now_s();
    size_t step = gp->prefill_step > 0 ? (size_t)gp->prefill_step : 512;
    for (size_t off = 0; off < n_prompt; off += step) {
        size_t n = n_prompt - off < step ? n_prompt - off : step;
        if ((rc = mt_model_forward(m, cache, prompt + off, n, logits, 0, err))) goto done;
    }
    res->prompt_tokens = n_prompt;
    double t1 = now_s();
    res->prefill_s = t1 - t0;
    res->finish_reason = "length";

    /* history for the logits processors: the whole prompt + generated tokens (mlx-lm 0.32
     * generate_step concatenates every processed prompt chunk) */
    size_t nh = n_prompt;
    memcpy(hist, prompt, n_prompt * sizeof *hist);
    int stopped = 0, seen_text = 0;
    for (int i = 0; i < gp->max_tokens && !stopped; i++) {
        mt_sampler_process(smp, logits, V, hist, nh);
        int32_t t = mt_sampler_sample(smp, logits, V, NULL);
        if (is_eos(gp, t)) { res->finish_reason = "stop"; break; }
        res->tokens[res->n_tokens++] = t;
        hist[nh++] = t;
        char *piece = NULL;
        size_t pl = 0;
        if ((rc = mt_detok_push(dt, t, &piece, &pl, err))) goto done;
        size_t old = tb.len;
        const char *pp = piece;
        if (gp->trim_first_space && !seen_text && pl) {
            seen_text = 1;
            if (pp[0] == ' ') { pp++; pl--; }
        }
        int bad = tb_append(&tb, pp, pl);
        free(piece);
        if (bad) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto done; }
        long sp = gp->n_stop ? find_stop(&tb, old, gp) : -1;
        if (sp >= 0) {
            tb.len = (size_t)sp;
            tb.s[tb.len] = 0;
            res->finish_reason = "stop";
            stopped = 1;
        }
        size_t safe = stopped ? tb.len : tb.len - stop_holdback(&tb, gp);
        if (on_text && safe > tb.emitted) {
            if (on_text(user, tb.s + tb.emitted, safe - tb.emitted)) { rc = mt_seterr(err, MT_EIO, "output aborted"); goto done; }
            tb.emitted = safe;
        }
        if (stopped || i + 1 == gp->max_tokens) break;
        if ((rc = mt_model_forward(m, cache, &t, 1, logits, 0, err))) goto done;
    }
    if (!stopped) {
        char *piece = NULL;
        size_t pl = 0;
        if ((rc = mt_detok_flush(dt, &piece, &pl, err))) goto done;
        const char *pp = piece;
        if (gp->trim_first_space && !seen_text && pl && pp[0] == ' ') { pp++; pl--; }
        int bad = tb_append(&tb, pp, pl);
        free(piece);
        if (bad) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto done; }
        long sp = gp->n_stop ? find_stop(&tb, tb.emitted, gp) : -1;
        if (sp >= 0) { tb.len = (size_t)sp; tb.s[tb.len] = 0; res->finish_reason = "stop"; }
    }
    if (on_text && tb.len > tb.emitted && on_text(user, tb.s + tb.emitted, tb.len - tb.emitted))
        rc = mt_seterr(err, MT_EIO, "output aborted");
    res->decode_s = now_s() - t1;
    if (!tb.s && tb_append(&tb, "", 0)) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    res->text = tb.s;
    res->text_len = tb.len;
    tb.s = NULL;
done:
    free(tb.s);
    free(hist);
    free(logits);
    mt_detok_free(dt);
    mt_sampler_free(smp);
    mt_kvcache_free(cache);
    if (rc) mt_gen_result_free(res);
    return rc;
}
