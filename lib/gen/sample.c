/* sample.c - mlx-lm compatible logits processors, sampling filters and a
 * seeded categorical sampler (see sample.h for the contract).
 *
 * Exactness notes: the filters do their arithmetic in float32 in the same
 * order as mlx's CPU kernels where it matters (top_p's reverse exclusive
 * cumulative sum, min_p's float32 threshold, XTC's float32 softmax), and the
 * selections (top_k, min_tokens_to_keep) follow the total order that mlx's
 * argpartition uses: (value, index) lexicographic. */
#include "gen/sample.h"
#include "tensor/mlxnum.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mt_sampler {
    mt_sampler_params p;        /* pointer fields point at the owned copies below */
    size_t vocab;
    mt_rng rng;
    int32_t *xtc_special;
    int32_t *bias_ids;
    float *bias_vals;
    /* scratch, vocab entries each */
    float *work;                /* filtered logprobs during sample() */
    float *fa, *fb;             /* float scratch for sorting / prefix sums */
    uint32_t *ka, *kb;          /* radix sort keys */
    uint8_t *mark;              /* all zero between calls */
};

/* ---- RNG: splitmix64 seeding + xoshiro256** ---- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void mt_rng_seed(mt_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

double mt_rng_uniform(mt_rng *r) {
    uint64_t *s = r->s;
    uint64_t v = rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return (double)(v >> 11) * 0x1.0p-53;   /* 53 random bits */
}

/* ---- parameters ---- */

void mt_sampler_params_default(mt_sampler_params *p) {
    memset(p, 0, sizeof *p);
    p->temp = 0.0f;
    p->top_p = 0.0f;
    p->top_k = 0;
    p->min_p = 0.0f;
    p->min_tokens_to_keep = 1;
    p->xtc_probability = 0.0f;
    p->xtc_threshold = 0.1f;
    p->repetition_penalty = 0.0f;
    p->repetition_context_size = 20;
    p->presence_penalty = 0.0f;
    p->presence_context_size = 20;
    p->frequency_penalty = 0.0f;
    p->frequency_context_size = 20;
    p->seed = 0;
}

int mt_sampler_params_check(const mt_sampler_params *p, size_t vocab, mt_err *err) {
    if (!p) return mt_seterr(err, MT_EINVAL, "sampler: no parameters");
    if (vocab == 0 || vocab > (size_t)INT32_MAX)
        return mt_seterr(err, MT_EINVAL, "sampler: vocabulary size %zu is out of range", vocab);
    if (!(p->temp >= 0.0f) || isinf(p->temp))
        return mt_seterr(err, MT_EINVAL, "temp must be a finite number >= 0, got %g", (double)p->temp);
    if (!(p->top_p >= 0.0f && p->top_p <= 1.0f))
        return mt_seterr(err, MT_EINVAL, "top_p must be in [0, 1] (0 or 1 = off), got %g",
                         (double)p->top_p);
    if (p->top_k < 0 || (p->top_k > 0 && (size_t)p->top_k >= vocab))
        return mt_seterr(err, MT_EINVAL,
                         "top_k must be 0 (off) or an integer in (0, %zu) (below the vocabulary size), got %d",
                         vocab, p->top_k);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return mt_seterr(err, MT_EINVAL, "min_p must be in [0, 1] (0 = off), got %g", (double)p->min_p);
    if (p->min_tokens_to_keep < 1)
        return mt_seterr(err, MT_EINVAL, "min_tokens_to_keep must be a positive integer, got %d",
                         p->min_tokens_to_keep);
    if (!(p->xtc_probability >= 0.0f && p->xtc_probability <= 1.0f))
        return mt_seterr(err, MT_EINVAL, "xtc_probability must be in [0, 1] (0 = off), got %g",
                         (double)p->xtc_probability);
    if (p->xtc_probability > 0.0f && !(p->xtc_threshold >= 0.0f && p->xtc_threshold <= 0.5f))
        return mt_seterr(err, MT_EINVAL, "xtc_threshold must be in [0, 0.5], got %g",
                         (double)p->xtc_threshold);
    if (p->n_xtc_special && !p->xtc_special)
        return mt_seterr(err, MT_EINVAL, "xtc special tokens: missing array");
    for (size_t i = 0; i < p->n_xtc_special; i++)
        if (p->xtc_special[i] < 0 || (size_t)p->xtc_special[i] >= vocab)
            return mt_seterr(err, MT_EINVAL, "xtc special token id %d is outside the vocabulary (size %zu)",
                             p->xtc_special[i], vocab);
    if (p->n_bias && (!p->bias_ids || !p->bias_vals))
        return mt_seterr(err, MT_EINVAL, "logit_bias: missing arrays");
    for (size_t i = 0; i < p->n_bias; i++) {
        if (p->bias_ids[i] < 0 || (size_t)p->bias_ids[i] >= vocab)
            return mt_seterr(err, MT_EINVAL, "logit_bias token id %d is outside the vocabulary (size %zu)",
                             p->bias_ids[i], vocab);
        if (!isfinite(p->bias_vals[i]))
            return mt_seterr(err, MT_EINVAL, "logit_bias value for token %d is not finite", p->bias_ids[i]);
    }
    if (!(p->repetition_penalty >= 0.0f) || isinf(p->repetition_penalty))
        return mt_seterr(err, MT_EINVAL, "repetition_penalty must be a finite number >= 0 (0 = off), got %g",
                         (double)p->repetition_penalty);
    if (!isfinite(p->presence_penalty))
        return mt_seterr(err, MT_EINVAL, "presence_penalty must be finite");
    if (!isfinite(p->frequency_penalty))
        return mt_seterr(err, MT_EINVAL, "frequency_penalty must be finite");
    if (p->repetition_context_size < 0)
        return mt_seterr(err, MT_EINVAL, "repetition_context_size must be >= 0, got %d",
                         p->repetition_context_size);
    if (p->presence_context_size < 0)
        return mt_seterr(err, MT_EINVAL, "presence_context_size must be >= 0, got %d",
                         p->presence_context_size);
    if (p->frequency_context_size < 0)
        return mt_seterr(err, MT_EINVAL, "frequency_context_size must be >= 0, got %d",
                         p->frequency_context_size);
    return MT_OK;
}

int mt_sampler_new(mt_sampler **out, const mt_sampler_params *p, size_t vocab, mt_err *err) {
    if (!out) return mt_seterr(err, MT_EINVAL, "sampler: no output pointer");
    *out = NULL;
    MT_TRY(mt_sampler_params_check(p, vocab, err));
    mt_sampler *s = calloc(1, sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "sampler: out of memory");
    s->p = *p;
    s->vocab = vocab;
    s->work = malloc(vocab * sizeof(float));
    s->fa = malloc(vocab * sizeof(float));
    s->fb = malloc(vocab * sizeof(float));
    s->ka = malloc(vocab * sizeof(uint32_t));
    s->kb = malloc(vocab * sizeof(uint32_t));
    s->mark = calloc(vocab, 1);
    int ok = s->work && s->fa && s->fb && s->ka && s->kb && s->mark;
    if (ok && p->n_xtc_special) {
        s->xtc_special = malloc(p->n_xtc_special * sizeof(int32_t));
        if ((ok = s->xtc_special != NULL))
            memcpy(s->xtc_special, p->xtc_special, p->n_xtc_special * sizeof(int32_t));
    }
    if (ok && p->n_bias) {
        s->bias_ids = malloc(p->n_bias * sizeof(int32_t));
        s->bias_vals = malloc(p->n_bias * sizeof(float));
        if ((ok = s->bias_ids && s->bias_vals)) {
            memcpy(s->bias_ids, p->bias_ids, p->n_bias * sizeof(int32_t));
            memcpy(s->bias_vals, p->bias_vals, p->n_bias * sizeof(float));
        }
    }
    if (!ok) {
        mt_sampler_free(s);
        return mt_seterr(err, MT_ENOMEM, "sampler: out of memory for a vocabulary of %zu", vocab);
    }
    s->p.xtc_special = s->xtc_special;
    s->p.bias_ids = s->bias_ids;
    s->p.bias_vals = s->bias_vals;
    mt_rng_seed(&s->rng, p->seed);
    *out = s;
    return MT_OK;
}

void mt_sampler_free(mt_sampler *s) {
    if (!s) return;
    free(s->work);
    free(s->fa);
    free(s->fb);
    free(s->ka);
    free(s->kb);
    free(s->mark);
    free(s->xtc_special);
    free(s->bias_ids);
    free(s->bias_vals);
    free(s);
}

/* ---- logits processors ---- */

/* start of the window tokens[-ctx:] (Python slicing; ctx 0 = whole list) */
static size_t window_start(size_t n, int ctx) {
    if (ctx <= 0 || (size_t)ctx >= n) return 0;
    return n - (size_t)ctx;
}

void mt_sampler_process(const mt_sampler *s, float *logits, size_t vocab,
                        const int32_t *history, size_t n_hist) {
    const mt_sampler_params *p = &s->p;
    if (vocab != s->vocab) return;
    for (size_t i = 0; i < p->n_bias; i++) logits[p->bias_ids[i]] += p->bias_vals[i];
    if (!history || n_hist == 0) return;
    uint8_t *mark = s->mark;
    if (p->repetition_penalty != 0.0f) {
        /* gather-then-scatter: every distinct id is penalized once */
        float pen = p->repetition_penalty;
        size_t a = window_start(n_hist, p->repetition_context_size);
        for (size_t i = a; i < n_hist; i++) {
            int32_t t = history[i];
            if (t < 0 || (size_t)t >= vocab || mark[t]) continue;
            mark[t] = 1;
            float v = logits[t];
            logits[t] = v < 0.0f ? v * pen : v / pen;
        }
        for (size_t i = a; i < n_hist; i++)
            if (history[i] >= 0 && (size_t)history[i] < vocab) mark[history[i]] = 0;
    }
    if (p->presence_penalty != 0.0f) {
        float pen = p->presence_penalty;
        size_t a = window_start(n_hist, p->presence_context_size);
        for (size_t i = a; i < n_hist; i++) {
            int32_t t = history[i];
            if (t < 0 || (size_t)t >= vocab || mark[t]) continue;
            mark[t] = 1;
            logits[t] -= pen;
        }
        for (size_t i = a; i < n_hist; i++)
            if (history[i] >= 0 && (size_t)history[i] < vocab) mark[history[i]] = 0;
    }
    if (p->frequency_penalty != 0.0f) {
        /* scatter-add: once per occurrence */
        float pen = p->frequency_penalty;
        size_t a = window_start(n_hist, p->frequency_context_size);
        for (size_t i = a; i < n_hist; i++) {
            int32_t t = history[i];
            if (t < 0 || (size_t)t >= vocab) continue;
            logits[t] -= pen;
        }
    }
}

/* ---- sorting helpers ---- */

static inline uint32_t float_key(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static inline float key_float(uint32_t k) {
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* sort n keys ascending (LSD radix, 3 passes of 11/11/10 bits) using a and b;
 * returns the buffer that holds the result */
static uint32_t *radix_sort_keys(uint32_t *a, uint32_t *b, size_t n) {
    static const int shift[3] = {0, 11, 22};
    for (int pass = 0; pass < 3; pass++) {
        size_t cnt[2048];
        memset(cnt, 0, sizeof cnt);
        int sh = shift[pass];
        for (size_t i = 0; i < n; i++) cnt[(a[i] >> sh) & 2047u]++;
        size_t sum = 0;
        for (int d = 0; d < 2048; d++) {
            size_t c = cnt[d];
            cnt[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) b[cnt[(a[i] >> sh) & 2047u]++] = a[i];
        uint32_t *t = a;
        a = b;
        b = t;
    }
    return a;
}

/* out[n] = x sorted ascending */
static void sort_ascending(mt_sampler *s, const float *x, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) s->ka[i] = float_key(x[i]);
    const uint32_t *k = radix_sort_keys(s->ka, s->kb, n);
    for (size_t i = 0; i < n; i++) out[i] = key_float(k[i]);
}

/* k-th largest value (1 <= k <= n): histogram of the top 12 key bits, then a
 * sort of the one bucket that holds it */
static float kth_largest(mt_sampler *s, const float *x, size_t n, size_t k) {
    enum { NB = 4096, SH = 20 };
    size_t cnt[NB];
    memset(cnt, 0, sizeof cnt);
    for (size_t i = 0; i < n; i++) cnt[float_key(x[i]) >> SH]++;
    size_t above = 0, b = NB;
    while (b-- > 0) {
        if (above + cnt[b] >= k) break;
        above += cnt[b];
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t key = float_key(x[i]);
        if ((key >> SH) == b) s->ka[m++] = key;
    }
    const uint32_t *sorted = radix_sort_keys(s->ka, s->kb, m);
    return key_float(sorted[m - (k - above)]);
}

/* ---- filters ---- */

static void apply_top_p(mt_sampler *s, float *lp, size_t n, float top_p) {
    float *sorted = s->fa, *above = s->fb;
    sort_ascending(s, lp, n, sorted);
    /* probs of the sorted values; reverse exclusive cumsum in float32 */
    float acc = 0.0f;
    for (size_t i = n; i-- > 0;) {
        above[i] = acc;
        acc += expf(sorted[i]);
    }
    float total = above[0] + expf(sorted[0]);
    float limit = top_p * total;
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) dropped += above[i] >= limit;
    if (dropped >= n) dropped = n - 1;
    float thr = sorted[dropped];
    for (size_t i = 0; i < n; i++)
        if (lp[i] < thr) lp[i] = -INFINITY;
}


static void apply_min_p(mt_sampler *s, float *lp, size_t n, float min_p, int min_keep) {
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (lp[i] > mx) mx = lp[i];
    float scaled = mx + (float)log((double)min_p);
    if (min_keep <= 1) {
        for (size_t i = 0; i < n; i++)
            if (lp[i] < scaled) lp[i] = -INFINITY;
        return;
    }
    /* the min_keep last entries in (value, index) ascending order survive:
     * all values above the boundary value t, then the highest ids equal to t */
    size_t m = (size_t)min_keep < n ? (size_t)min_keep : n;
    float t = kth_largest(s, lp, n, m);
    size_t greater = 0;
    for (size_t i = 0; i < n; i++) greater += lp[i] > t;
    size_t need_eq = m - greater;
    for (size_t i = n; i-- > 0;) {
        int keep = lp[i] > t;
        if (!keep && lp[i] == t && need_eq > 0) {
            keep = 1;
            need_eq--;
        }
        if (!keep && lp[i] < scaled) lp[i] = -INFINITY;
    }
}

static void apply_xtc(mt_sampler *s, float *lp, size_t n, float threshold) {
    float *pr = s->fa;
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (lp[i] > mx) mx = lp[i];
    float sum = 0.0f;
    for (size_t i = 0; i < n; i++) {
        pr[i] = expf(lp[i] - mx);
        sum += pr[i];
    }
    float inv = 1.0f / sum;
    float pmin = INFINITY;
    for (size_t i = 0; i < n; i++) {
        pr[i] *= inv;
        if (pr[i] > threshold && pr[i] < pmin) pmin = pr[i];
    }
    if (isinf(pmin)) return;
    for (size_t i = 0; i < s->p.n_xtc_special; i++) s->mark[s->p.xtc_special[i]] = 1;
    for (size_t i = 0; i < n; i++)
        if (pr[i] > pmin && !s->mark[i]) lp[i] = -INFINITY;
    for (size_t i = 0; i < s->p.n_xtc_special; i++) s->mark[s->p.xtc_special[i]] = 0;
}

static void apply_top_k(mt_sampler *s, float *lp, size_t n, size_t k) {
    /* the first k in (value descending, index ascending) order survive */
    float t = kth_largest(s, lp, n, k);
    size_t greater = 0;
    for (size_t i = 0; i < n; i++) greater += lp[i] > t;
    size_t need_eq = k - greater;
    for (size_t i = 0; i < n; i++) {
        if (lp[i] > t) continue;
        if (lp[i] == t && need_eq > 0) {
            need_eq--;
            continue;
        }
        lp[i] = -INFINITY;
    }
}

static void run_filters(mt_sampler *s, float *lp, size_t n, int xtc_on) {
    const mt_sampler_params *p = &s->p;
    if (p->top_p > 0.0f && p->top_p < 1.0f) apply_top_p(s, lp, n, p->top_p);
    if (p->min_p != 0.0f) apply_min_p(s, lp, n, p->min_p, p->min_tokens_to_keep);
    if (p->xtc_probability > 0.0f && xtc_on) apply_xtc(s, lp, n, p->xtc_threshold);
    if (p->top_k > 0 && (size_t)p->top_k < n) apply_top_k(s, lp, n, (size_t)p->top_k);
}

void mt_sampler_filter(const mt_sampler *s, float *logprobs, size_t vocab, int xtc_on) {
    if (vocab != s->vocab) return;
    /* only the scratch buffers are written through s */
    run_filters((mt_sampler *)s, logprobs, vocab, xtc_on);
}

int32_t mt_argmax(const float *x, size_t n) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (int32_t)best;
}

int32_t mt_sampler_sample(mt_sampler *s, float *logits, size_t vocab, float *logprob) {
    size_t n = vocab < s->vocab ? vocab : s->vocab;
    if (n == 0) return 0;
    /* logprobs = logits - logsumexp(logits) */
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (logits[i] > mx) mx = logits[i];
    mt_dtype lt = s->p.logits_dt;
    if (isfinite(mx) && (lt == MT_F16 || lt == MT_BF16)) {   /* in the logits' 16-bit type, as mlx-lm */
        mt_mlx_round(logits, n, lt);   /* logits processors may have left float32 values */
        float lse = mt_mlx_logsumexp(logits, n, lt);
        for (size_t i = 0; i < n; i++) logits[i] = mt_round_to(logits[i] - lse, lt);
    } else if (isfinite(mx)) {
        /* a sequential float32 sum: on x86 this matches mlx's CPU logsumexp
         * to ~1e-7 even for large vocabularies (a double sum would be more
         * accurate but differ from mlx by up to ~1e-4) */
        float sum = 0.0f;
        for (size_t i = 0; i < n; i++) sum += expf(logits[i] - mx);
        float lse = logf(sum) + mx;
        for (size_t i = 0; i < n; i++) logits[i] -= lse;
    }
    const mt_sampler_params *p = &s->p;
    int32_t tok;
    if (p->temp == 0.0f || !isfinite(mx)) {
        tok = mt_argmax(logits, n);
    } else {
        float *w = s->work;
        memcpy(w, logits, n * sizeof(float));
        int xtc_on = 0;
        if (p->xtc_probability > 0.0f) xtc_on = mt_rng_uniform(&s->rng) <= (double)p->xtc_probability;
        run_filters(s, w, n, xtc_on);
        float inv = (float)(1.0 / (double)p->temp);
        if (!isfinite(inv)) { /* temp so small that 1/temp overflows: the limit is argmax */
            tok = mt_argmax(w, n);
            if (logprob) *logprob = logits[tok];
            return tok;
        }
        float zmax = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            w[i] *= inv;
            if (w[i] > zmax) zmax = w[i];
        }
        float *e = s->fb;
        double total = 0.0;
        for (size_t i = 0; i < n; i++) {
            e[i] = expf(w[i] - zmax);
            total += e[i];
        }
        double u = mt_rng_uniform(&s->rng) * total;
        double cum = 0.0;
        tok = -1;
        size_t last = 0;
        for (size_t i = 0; i < n; i++) {
            if (e[i] <= 0.0f) continue;
            last = i;
            cum += e[i];
            if (u < cum) {
                tok = (int32_t)i;
                break;
            }
        }
        if (tok < 0) tok = (int32_t)last; /* rounding at the very top of the CDF */
    }
    if (logprob) *logprob = logits[tok];
    return tok;
}

void mt_top_logprobs(const float *logprobs, size_t vocab, size_t k, int32_t *ids, float *lps) {
    size_t have = 0;
    if (k == 0) return;
    for (size_t i = 0; i < vocab; i++) {
        float v = logprobs[i];
        if (have == k && !(v > lps[k - 1])) continue;
        /* insert after equal values (ties: lower id first) */
        size_t j = have < k ? have++ : k - 1;
        while (j > 0 && v > lps[j - 1]) {
            lps[j] = lps[j - 1];
            ids[j] = ids[j - 1];
            j--;
        }
        lps[j] = v;
        ids[j] = (int32_t)i;
    }
    for (size_t j = have; j < k; j++) {
        ids[j] = -1;
        lps[j] = -INFINITY;
    }
}
