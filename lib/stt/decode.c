/* decode.c - one decoding pass over a 30-s window (openai-whisper
 * decoding.py DecodingTask): initial tokens with the previous-text prompt,
 * no_speech_prob at the start-of-transcript position, the logit filters
 * (SuppressBlank, SuppressTokens, ApplyTimestampRules), greedy / sampling
 * (GreedyDecoder) or beam search with patience (BeamSearchDecoder), and the
 * MaximumLikelihoodRanker with its length penalty.  Log-probabilities are
 * float32 like the reference's tensors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "stt/stt_int.h"
#include "core/cpu.h"
#include "tensor/kernels.h"
#include "tensor/simd_exp.h"

/* ---- small utilities ---------------------------------------------------- */

void stt_rng_seed(uint64_t s[4], uint64_t seed)
{
    for (int i = 0; i < 4; i++) {   /* splitmix64 */
        uint64_t z = (seed += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        s[i] = z ^ (z >> 31);
    }
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

double stt_rng_uniform(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return (double)(r >> 11) * (1.0 / 9007199254740992.0);
}

double stt_round_half_even(double x) { return nearbyint(x); }

double stt_round2(double x) { return nearbyint(x * 100.0) / 100.0; }

/* length of the Unicode whitespace character (Python str.isspace) at s, 0 if none */
static int py_space_len(const unsigned char *s)
{
    if (s[0] == ' ' || (s[0] >= 0x09 && s[0] <= 0x0D) || (s[0] >= 0x1C && s[0] <= 0x1F)) return 1;
    if (s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0)) return 2;
    if (s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80) return 3;                       /* U+1680 */
    if (s[0] == 0xE2 && s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x8A) || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
        return 3;                                                                       /* U+2000-200A, 2028, 2029, 202F */
    if (s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F) return 3;                       /* U+205F */
    if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80) return 3;                       /* U+3000 */
    return 0;
}

char *stt_py_strip(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n = strlen(str), a = 0, b = n;
    int k;
    while (a < n && (k = py_space_len(s + a)) > 0) a += (size_t)k;
    /* trailing: scan forward remembering where the final run of spaces starts */
    size_t i = a, run = n;
    int in_run = 0;
    while (i < n) {
        k = py_space_len(s + i);
        if (k > 0) {
            if (!in_run) { run = i; in_run = 1; }
            i += (size_t)k;
        } else {
            in_run = 0;
            i++;
            while (i < n && (s[i] & 0xC0) == 0x80) i++;
        }
    }
    b = in_run ? run : n;
    if (b < a) b = a;
    char *out = malloc(b - a + 1);
    if (!out) return NULL;
    memcpy(out, str + a, b - a);
    out[b - a] = 0;
    return out;
}

double mt_stt_compression_ratio(const char *text)
{
    size_t n = strlen(text);
    uLongf cap = compressBound((uLong)n);
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf) return 0.0;
    if (compress2(buf, &cap, (const Bytef *)text, (uLong)n, Z_DEFAULT_COMPRESSION) != Z_OK) {
        free(buf);
        return 0.0;
    }
    free(buf);
    return (double)n / (double)cap;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int stt_suppress_tokens(const mt_wtok *tok, const char *spec, int32_t **out, size_t *nout, mt_err *err)
{
    size_t cap = 64, n = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return mt_seterr(err, MT_ENOMEM, "transcribe: out of memory");
    int minus1 = 0;
    const char *p = spec ? spec : "";
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',') || v < -1 || v >= tok->n_vocab) {
            free(ids);
            return mt_seterr(err, MT_EINVAL, "suppress_tokens: \"%s\" is not a comma-separated list of token ids", spec);
        }
        if (v == -1) minus1 = 1;
        else {
            if (n + 1 > cap) {
                int32_t *t = realloc(ids, (cap *= 2) * sizeof *ids);
                if (!t) { free(ids); return mt_seterr(err, MT_ENOMEM, "transcribe: out of memory"); }
                ids = t;
            }
            ids[n++] = (int32_t)v;
        }
        p = *end ? end + 1 : end;
    }
    int32_t *ns = NULL;
    size_t nns = 0;
    if (minus1) {
        int rc = mt_wtok_non_speech(tok, &ns, &nns, err);
        if (rc) { free(ids); return rc; }
    }
    int32_t *all = malloc((n + nns + 6) * sizeof *all);
    if (!all) { free(ids); free(ns); return mt_seterr(err, MT_ENOMEM, "transcribe: out of memory"); }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) all[k++] = ids[i];
    for (size_t i = 0; i < nns; i++) all[k++] = ns[i];
    all[k++] = tok->transcribe;
    all[k++] = tok->translate;
    all[k++] = tok->sot;
    all[k++] = tok->sot_prev;
    all[k++] = tok->sot_lm;
    all[k++] = tok->no_speech;
    free(ids);
    free(ns);
    qsort(all, k, sizeof *all, cmp_i32);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || all[u - 1] != all[i]) all[u++] = all[i];
    *out = all;
    *nout = u;
    return MT_OK;
}

/* ---- numerics ------------------------------------------------------------ */

/* log(sum(exp(x))) over x[n] (-inf when every entry is -inf); masked
 * entries are skipped, the terms are float32 exponentials summed in double */
double stt_lse_f(const float *x, int n)
{
    float m = mt_k_max(mt_cpu_level(), x, (size_t)n);
    if (m == -INFINITY) return -INFINITY;
    double s = 0;
    int i = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256 vm = _mm256_set1_ps(m), ninf = _mm256_set1_ps(-INFINITY);
    __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 e = _mm256_andnot_ps(_mm256_cmp_ps(v, ninf, _CMP_EQ_OQ), mt_exp8_avx2(_mm256_sub_ps(v, vm)));
        acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(acc0, acc1));
    s = (t[0] + t[1]) + (t[2] + t[3]);
#endif
    for (; i < n; i++)
        if (x[i] != -INFINITY) s += expf(x[i] - m);
    return (double)m + log(s);
}

/* log_softmax of x[n] into lp[n] (float32 results) */
static void log_softmax(const float *x, int n, float *lp)
{
    double lse = stt_lse_f(x, n);
    for (int i = 0; i < n; i++) lp[i] = (float)((double)x[i] - lse);
}

/* ---- logit filters ------------------------------------------------------- */

typedef struct task {
    const mt_wtok *tok;
    const stt_dec_opts *o;
    int n_vocab, sample_begin, mit_index;   /* mit_index < 0: None */
    int32_t blank[8];
    int n_blank;
    float *scratch;
} task;

/* Applies the filters to x; returns log(sum(exp(x))) of the filtered x when
 * the timestamp rule computed it, NAN otherwise. */
static double apply_filters(const task *t, float *x, const int32_t *seq, int len)
{
    const mt_wtok *tok = t->tok;
    const stt_dec_opts *o = t->o;
    int V = t->n_vocab, tb = tok->timestamp_begin;
    if (o->suppress_blank && len == t->sample_begin)
        for (int i = 0; i < t->n_blank; i++) x[t->blank[i]] = -INFINITY;
    for (size_t i = 0; i < o->n_suppress; i++)
        if (o->suppress[i] >= 0 && o->suppress[i] < V) x[o->suppress[i]] = -INFINITY;
    if (o->without_timestamps) return NAN;

    x[tok->no_timestamps] = -INFINITY;
    const int32_t *s = seq + t->sample_begin;
    int ns = len - t->sample_begin;
    int last_ts = ns >= 1 && s[ns - 1] >= tb;
    int pen_ts = ns < 2 || s[ns - 2] >= tb;
    if (last_ts) {
        if (pen_ts) for (int i = tb; i < V; i++) x[i] = -INFINITY;
        else for (int i = 0; i < tok->eot; i++) x[i] = -INFINITY;
    }
    int32_t last = -1;
    for (int i = 0; i < ns; i++) if (s[i] >= tb) last = s[i];
    if (last >= 0) {
        int32_t tl = (last_ts && !pen_ts) ? last : last + 1;
        for (int i = tb; i < tl && i < V; i++) x[i] = -INFINITY;
    }
    if (len == t->sample_begin) {
        for (int i = 0; i < tb; i++) x[i] = -INFINITY;
        if (t->mit_index >= 0)
            for (int i = tb + t->mit_index + 1; i < V; i++) x[i] = -INFINITY;
    }
    /* logsumexp of the timestamps' log-probabilities against the best text
     * token's (float32 log-probabilities, like the reference's log_softmax) */
    double lse = stt_lse_f(x, V);
    if (lse == -INFINITY) return lse;
    double lse_ts = stt_lse_f(x + tb, V - tb);
    float ts_lp = (float)(lse_ts - lse);
    float mx = mt_k_max(mt_cpu_level(), x, (size_t)tb);
    float max_text = (float)((double)mx - lse);
    if (ts_lp > max_text) {
        for (int i = 0; i < tb; i++) x[i] = -INFINITY;
        return lse_ts;   /* only the timestamps are left */
    }
    return lse;
}

/* ---- the decoding loop ----------------------------------------------------- */

typedef struct fin_seq {   /* a finished beam candidate */
    int32_t *tok;          /* tokens incl. the final eot */
    int len;
    float score;
} fin_seq;

typedef struct cand {
    int src, canon;
    int32_t token;
    float score;
} cand;

static int argmax_first(const float *x, int n)
{
    float m = mt_k_max(mt_cpu_level(), x, (size_t)n);
    for (int i = 0; i < n; i++) if (x[i] == m) return i;
    return 0;
}

/* Categorical(logits = x / temp).sample() with our own stream; scratch[n] */
static int sample_cat(const float *x, int n, double temp, uint64_t *rng, float *scratch)
{
    for (int i = 0; i < n; i++) scratch[i] = x[i] == -INFINITY ? -INFINITY : (float)(x[i] / temp);
    double lse = stt_lse_f(scratch, n);
    if (lse == -INFINITY) return 0;
    double u = stt_rng_uniform(rng), c = 0;
    int lastok = 0;
    for (int i = 0; i < n; i++) {
        if (scratch[i] == -INFINITY) continue;
        c += expf((float)((double)scratch[i] - lse));
        lastok = i;
        if (u < c) return i;
    }
    return lastok;
}

void stt_dec_result_free(stt_dec_result *r)
{
    if (!r) return;
    free(r->tokens);
    free(r->text);
    memset(r, 0, sizeof *r);
}

int stt_decode_window(mt_whisper *w, const mt_wtok *tok, const float *xa, const stt_dec_opts *o, stt_dec_result *r,
                      mt_err *err)
{
    memset(r, 0, sizeof *r);
    const mt_whisper_hp *hp = mt_whisper_hparams(w);
    int V = hp->n_vocab, n_ctx = hp->n_text_ctx, sample_len = n_ctx / 2;
    int beam = o->temperature == 0 && o->beam_size > 0;
    if (o->beam_size > 64 || o->best_of > 256) return mt_seterr(err, MT_EINVAL, "beam_size must be at most 64 and best_of at most 256");
    int G = beam ? o->beam_size : (o->best_of > 0 ? o->best_of : 1);
    int max_cand = 0;
    if (beam) {
        double pat = o->patience > 0 ? o->patience : 1.0;
        max_cand = (int)stt_round_half_even(o->beam_size * pat);
        if (max_cand <= 0) return mt_seterr(err, MT_EINVAL, "invalid beam size (%d) or patience (%g)", o->beam_size, o->patience);
    }

    /* initial tokens */
    int cap = n_ctx + 8;
    int32_t *init = malloc((size_t)cap * sizeof *init);
    if (!init) return mt_seterr(err, MT_ENOMEM, "transcribe: out of memory");
    int n_init = 0;
    if (o->n_prompt > 0) {
        size_t keep = (size_t)(n_ctx / 2 - 1);
        size_t from = o->n_prompt > keep ? o->n_prompt - keep : 0;
        init[n_init++] = tok->sot_prev;
        for (size_t i = from; i < o->n_prompt; i++) init[n_init++] = o->prompt[i];
    }
    int sot_index = n_init;
    int32_t sotseq[4];
    int ns = mt_wtok_sot_sequence(tok, o->lang, o->task, o->without_timestamps, sotseq);
    for (int i = 0; i < ns; i++) init[n_init++] = sotseq[i];
    int sample_begin = n_init;

    task t = {.tok = tok, .o = o, .n_vocab = V, .sample_begin = sample_begin, .mit_index = -1};
    if (!o->without_timestamps && o->max_initial_timestamp != 0) {
        double precision = 30.0 / hp->n_audio_ctx;
        t.mit_index = (int)stt_round_half_even(o->max_initial_timestamp / precision);
    }
    {
        int32_t *b = NULL;
        size_t nb = 0;
        int rc = mt_wtok_encode(tok, " ", &b, &nb, err);
        if (rc) { free(init); return rc; }
        for (size_t i = 0; i < nb && t.n_blank < 7; i++) t.blank[t.n_blank++] = b[i];
        t.blank[t.n_blank++] = tok->eot;
        free(b);
    }

    int rc = MT_OK;
    mt_whisper_dec *d = NULL;
    int32_t *toks = malloc((size_t)G * cap * sizeof *toks), *ntoks = malloc((size_t)G * cap * sizeof *ntoks);
    float *logits = malloc((size_t)G * V * sizeof *logits);
    float *lp = malloc((size_t)V * sizeof *lp);
    t.scratch = malloc((size_t)V * sizeof(float));
    float *sum_lp = calloc((size_t)G, sizeof *sum_lp), *nsum = calloc((size_t)G, sizeof *nsum);
    int32_t *feed = malloc((size_t)G * cap * sizeof *feed);
    int *src = malloc((size_t)G * sizeof *src);
    double *glse = malloc((size_t)G * sizeof *glse);
    cand *cands = malloc((size_t)G * (G + 1) * sizeof *cands);
    int *canon = malloc((size_t)G * sizeof *canon);
    fin_seq *fin = calloc((size_t)(max_cand + G + 1), sizeof *fin);
    int n_fin = 0;
    fin_seq *newfin = calloc((size_t)(G + 1), sizeof *newfin);
    if (!toks || !ntoks || !logits || !lp || !t.scratch || !sum_lp || !nsum || !feed || !src || !cands || !canon || !fin || !newfin || !glse) {
        rc = mt_seterr(err, MT_ENOMEM, "transcribe: out of memory");
        goto done;
    }
    for (int g = 0; g < G; g++) memcpy(toks + (size_t)g * cap, init, (size_t)n_init * sizeof *init);
    int len = n_init;
    double no_speech_prob = NAN;
    if ((rc = mt_whisper_dec_new(&d, w, xa, G, err))) goto done;

    for (int step = 0; step < sample_len; step++) {
        if (step == 0) {
            /* first pass: everything up to the sot position (its logits give
             * no_speech_prob), then the rest of the initial tokens */
            int n1 = sot_index + 1;
            for (int g = 0; g < G; g++) memcpy(feed + (size_t)g * n1, init, (size_t)n1 * sizeof *init);
            if ((rc = mt_whisper_dec_step(d, feed, n1, 0, logits, err))) goto done;
            log_softmax(logits, V, lp);
            no_speech_prob = exp((double)lp[tok->no_speech]);
            int n2 = n_init - n1;
            if (n2 > 0) {
                for (int g = 0; g < G; g++) memcpy(feed + (size_t)g * n2, init + n1, (size_t)n2 * sizeof *init);
                if ((rc = mt_whisper_dec_step(d, feed, n2, 0, logits, err))) goto done;
            }
        } else {
            for (int g = 0; g < G; g++) feed[g] = toks[(size_t)g * cap + len - 1];
            if ((rc = mt_whisper_dec_step(d, feed, 1, 0, logits, err))) goto done;
        }
        for (int g = 0; g < G; g++) glse[g] = apply_filters(&t, logits + (size_t)g * V, toks + (size_t)g * cap, len);

        int completed = 0;
        if (!beam) {
            completed = 1;
            for (int g = 0; g < G; g++) {
                float *x = logits + (size_t)g * V;
                int32_t *seq = toks + (size_t)g * cap;
                int nxt = o->temperature == 0 ? argmax_first(x, V) : sample_cat(x, V, o->temperature, o->rng, t.scratch);
                double lse = isnan(glse[g]) ? stt_lse_f(x, V) : glse[g];
                float lpn = (float)((double)x[nxt] - lse);
                if (seq[len - 1] != tok->eot) sum_lp[g] = (float)(sum_lp[g] + lpn);
                else nxt = tok->eot;
                seq[len] = nxt;
                if (nxt != tok->eot) completed = 0;
            }
            len++;
        } else {
            /* beams with equal prefixes give equal candidate sequences: the
             * reference's dict keeps the first position and the last value */
            for (int g = 0; g < G; g++) {
                canon[g] = g;
                for (int h = 0; h < g; h++)
                    if (!memcmp(toks + (size_t)g * cap, toks + (size_t)h * cap, (size_t)len * sizeof(int32_t))) {
                        canon[g] = h;
                        break;
                    }
            }
            int nc = 0;
            for (int g = 0; g < G; g++) {
                log_softmax(logits + (size_t)g * V, V, lp);
                /* topk(G + 1): descending, the lower id first among equal values */
                int top[65], nt = 0, K = G + 1 < 65 ? G + 1 : 65;
                for (int i = 0; i < V; i++) {
                    if (nt == K && !(lp[i] > lp[top[nt - 1]])) continue;
                    int p = nt < K ? nt++ : nt - 1;
                    while (p > 0 && lp[top[p - 1]] < lp[i]) { top[p] = top[p - 1]; p--; }
                    top[p] = i;
                }
                for (int k = 0; k < nt; k++) {
                    float sc = (float)(sum_lp[g] + lp[top[k]]);
                    int found = -1;
                    for (int q = 0; q < nc; q++)
                        if (cands[q].canon == canon[g] && cands[q].token == top[k]) { found = q; break; }
                    if (found < 0) found = nc++;
                    cands[found].src = g;
                    cands[found].canon = canon[g];
                    cands[found].token = top[k];
                    cands[found].score = sc;
                }
            }
            /* stable sort by score, descending (Python's sorted(reverse=True)) */
            int m = nc;
            for (int a = 1; a < m; a++) {
                cand c = cands[a];
                int b = a - 1;
                while (b >= 0 && cands[b].score < c.score) { cands[b + 1] = cands[b]; b--; }
                cands[b + 1] = c;
            }
            int saved = 0, n_new = 0;
            for (int q = 0; q < m && saved < G; q++) {
                const int32_t *pre = toks + (size_t)cands[q].src * cap;
                if (cands[q].token == tok->eot) {
                    fin_seq *f = &newfin[n_new++];
                    f->tok = malloc((size_t)(len + 1) * sizeof(int32_t));
                    if (!f->tok) { rc = mt_seterr(err, MT_ENOMEM, "transcribe: out of memory"); goto done; }
                    memcpy(f->tok, pre, (size_t)len * sizeof(int32_t));
                    f->tok[len] = tok->eot;
                    f->len = len + 1;
                    f->score = cands[q].score;
                } else {
                    int32_t *dst = ntoks + (size_t)saved * cap;
                    memcpy(dst, pre, (size_t)len * sizeof(int32_t));
                    dst[len] = cands[q].token;
                    nsum[saved] = cands[q].score;
                    src[saved] = cands[q].src;
                    saved++;
                }
            }
            if (saved < G) { rc = mt_seterr(err, MT_EINVAL, "beam search: fewer candidates than beams"); goto done; }
            int32_t *tmp = toks; toks = ntoks; ntoks = tmp;
            memcpy(sum_lp, nsum, (size_t)G * sizeof *sum_lp);
            len++;
            if ((rc = mt_whisper_dec_reorder(d, src, err))) goto done;
            for (int q = 0; q < n_new; q++) {
                if (n_fin >= max_cand) { free(newfin[q].tok); newfin[q].tok = NULL; continue; }
                fin[n_fin++] = newfin[q];
                newfin[q].tok = NULL;
            }
            completed = n_fin >= max_cand;
        }
        if (completed || len > n_ctx) break;
    }

    /* finalize and rank */
    int nsel = 0;
    const int32_t *best = NULL;
    int best_len = 0;
    float best_lp = 0;
    if (beam) {
        if (n_fin < G) {
            /* numpy argsort (stable for these sizes) reversed: descending,
             * the higher index first among equal values */
            int order[64];
            int n = G < 64 ? G : 64;
            for (int i = 0; i < n; i++) order[i] = i;
            for (int a = 1; a < n; a++) {
                int c = order[a], b = a - 1;
                while (b >= 0 && sum_lp[order[b]] > sum_lp[c]) { order[b + 1] = order[b]; b--; }
                order[b + 1] = c;
            }
            for (int k = n - 1; k >= 0 && n_fin < G; k--) {
                int j = order[k];
                fin_seq *f = &fin[n_fin];
                f->tok = malloc((size_t)(len + 1) * sizeof(int32_t));
                if (!f->tok) { rc = mt_seterr(err, MT_ENOMEM, "transcribe: out of memory"); goto done; }
                memcpy(f->tok, toks + (size_t)j * cap, (size_t)len * sizeof(int32_t));
                f->tok[len] = tok->eot;
                f->len = len + 1;
                f->score = sum_lp[j];
                n_fin++;
            }
        }
        double best_score = -INFINITY;
        for (int i = 0; i < n_fin; i++) {
            int e = sample_begin;
            while (e < fin[i].len && fin[i].tok[e] != tok->eot) e++;
            int L = e - sample_begin;
            double pen = o->has_length_penalty ? pow((5.0 + L) / 6.0, o->length_penalty) : (double)L;
            double sc = (double)fin[i].score / pen;
            if (i == 0 || sc > best_score) {
                best_score = sc;
                nsel = i;
            }
        }
        if (n_fin > 0) {
            best = fin[nsel].tok + sample_begin;
            int e = sample_begin;
            while (e < fin[nsel].len && fin[nsel].tok[e] != tok->eot) e++;
            best_len = e - sample_begin;
            best_lp = fin[nsel].score;
        }
    } else {
        double best_score = -INFINITY;
        for (int g = 0; g < G; g++) {
            const int32_t *seq = toks + (size_t)g * cap;
            int e = sample_begin;
            while (e < len && seq[e] != tok->eot) e++;
            int L = e - sample_begin;
            double pen = o->has_length_penalty ? pow((5.0 + L) / 6.0, o->length_penalty) : (double)L;
            double sc = (double)sum_lp[g] / pen;
            if (g == 0 || sc > best_score) {
                best_score = sc;
                best = seq + sample_begin;
                best_len = L;
                best_lp = sum_lp[g];
            }
        }
    }
    r->tokens = malloc(((size_t)best_len + 1) * sizeof *r->tokens);
    if (!r->tokens) { rc = mt_seterr(err, MT_ENOMEM, "transcribe: out of memory"); goto done; }
    if (best_len) memcpy(r->tokens, best, (size_t)best_len * sizeof *r->tokens);
    r->n_tokens = (size_t)best_len;
    char *raw = NULL;
    if ((rc = mt_wtok_decode(tok, r->tokens, r->n_tokens, &raw, err))) goto done;
    r->text = stt_py_strip(raw);
    free(raw);
    if (!r->text) { rc = mt_seterr(err, MT_ENOMEM, "transcribe: out of memory"); goto done; }
    r->avg_logprob = (double)best_lp / (double)(best_len + 1);
    r->no_speech_prob = no_speech_prob;
    r->temperature = o->temperature;
    r->compression_ratio = mt_stt_compression_ratio(r->text);

done:
    if (rc) stt_dec_result_free(r);
    mt_whisper_dec_free(d);
    for (int i = 0; fin && i < max_cand + G + 1; i++) free(fin[i].tok);
    for (int i = 0; newfin && i < G + 1; i++) free(newfin[i].tok);
    free(fin);
    free(newfin);
    free(init);
    free(toks);
    free(ntoks);
    free(logits);
    free(lp);
    free(t.scratch);
    free(sum_lp);
    free(nsum);
    free(feed);
    free(src);
    free(glse);
    free(cands);
    free(canon);
    return rc;
}
