/* test_sample.c - sampler filters, logits processors and greedy choice
 * against mlx-lm 0.32 goldens (tests/data/sample/golden.json.zst, made by
 * tests/gen/gen_sample_goldens.py), plus C-only statistical and determinism
 * tests of the categorical sampler. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/file.h"
#include "gen/sample.h"

/* ---- base64 ---- */
static int b64val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* returns malloc'd bytes, *n = length */
static unsigned char *b64dec(const char *s, size_t *n) {
    size_t L = strlen(s);
    unsigned char *out = malloc(L / 4 * 3 + 3);
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < L; i++) {
        int v = b64val((unsigned char)s[i]);
        if (v < 0) continue;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    *n = o;
    return out;
}

static float *dec_q(const char *s, size_t *n) {
    size_t nb;
    unsigned char *b = b64dec(s, &nb);
    *n = nb / 2;
    float *x = malloc(*n * sizeof(float) + 1);
    for (size_t i = 0; i < *n; i++) {
        int16_t q = (int16_t)(b[2 * i] | (b[2 * i + 1] << 8));
        x[i] = q == -32768 ? -INFINITY : (float)q / 256.0f;
    }
    free(b);
    return x;
}

static float *dec_f32(const char *s, size_t *n) {
    size_t nb;
    unsigned char *b = b64dec(s, &nb);
    *n = nb / 4;
    float *x = malloc(*n * sizeof(float) + 1);
    memcpy(x, b, *n * sizeof(float));
    free(b);
    return x;
}

static int32_t *int_list(json_t *a, size_t *n) {
    *n = json_array_size(a);
    int32_t *v = malloc(*n * sizeof(int32_t) + 1);
    for (size_t i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return v;
}

/* ---- goldens ---- */
static void test_goldens(void) {
    char *buf = NULL;
    size_t len = 0;
    mt_err err = {0};
    int rc = mt_read_file("tests/data/sample/golden.json.zst", &buf, &len, &err);
    CHECK_OK(rc, &err);
    if (rc) return;
    json_error_t je;
    json_t *g = json_loadb(buf, len, 0, &je);
    free(buf);
    CHECK_MSG(g != NULL, "golden json: %s", je.text);
    if (!g) return;

    json_t *jv = json_object_get(g, "vectors");
    size_t nvec = json_array_size(jv);
    float **vec = calloc(nvec, sizeof *vec);
    size_t *vlen = calloc(nvec, sizeof *vlen);
    for (size_t i = 0; i < nvec; i++) vec[i] = dec_q(json_string_value(json_array_get(jv, i)), &vlen[i]);
    CHECK(nvec >= 50);

    /* (a) filter kept-sets */
    json_t *jf = json_object_get(g, "filters");
    size_t nf = json_array_size(jf), f_ok = 0, values_ok = 0, n_trivial = 0, n_edge = 0;
    size_t n_drawn = 0, n_drawn_ok = 0;
    for (size_t c = 0; c < nf; c++) {
        json_t *o = json_array_get(jf, c);
        size_t vi = (size_t)json_integer_value(json_object_get(o, "v"));
        json_t *jf32 = json_object_get(o, "f32");   /* exact-boundary cases carry their own vector */
        size_t n = 0;
        float *own = jf32 ? dec_f32(json_string_value(jf32), &n) : NULL;
        const float *in = own;
        if (!own) {
            if (vi >= nvec) { CHECK(vi < nvec); continue; }
            n = vlen[vi];
            in = vec[vi];
        }
        n_edge += own != NULL;
        mt_sampler_params p;
        mt_sampler_params_default(&p);
        p.temp = 1.0f;
        p.top_p = (float)json_number_value(json_object_get(o, "top_p"));
        p.min_p = (float)json_number_value(json_object_get(o, "min_p"));
        p.min_tokens_to_keep = (int)json_integer_value(json_object_get(o, "min_keep"));
        p.top_k = (int)json_integer_value(json_object_get(o, "top_k"));
        json_t *xt = json_object_get(o, "xtc_thr");
        size_t nsp = 0;
        int32_t *sp = int_list(json_object_get(o, "special"), &nsp);
        if (xt && !json_is_null(xt)) {
            p.xtc_probability = 1.0f;
            p.xtc_threshold = (float)json_number_value(xt);
            p.xtc_special = sp;
            p.n_xtc_special = nsp;
        }
        mt_sampler *s = NULL;
        rc = mt_sampler_new(&s, &p, n, &err);
        CHECK_OK(rc, &err);
        if (!rc) {
            float *x = malloc(n * sizeof(float));
            memcpy(x, in, n * sizeof(float));
            mt_sampler_filter(s, x, n, 1);
            size_t nb;
            unsigned char *mask = b64dec(json_string_value(json_object_get(o, "keep")), &nb);
            int same = nb == (n + 7) / 8, vals = 1;
            size_t kept = 0;
            for (size_t i = 0; same && i < n; i++) {
                int want = (mask[i / 8] >> (i % 8)) & 1;
                int have = isfinite(x[i]) != 0;
                kept += have;
                if (want != have) same = 0;
                if (have && x[i] != in[i]) vals = 0;
            }
            size_t finite = 0;
            for (size_t i = 0; i < n; i++) finite += isfinite(in[i]) != 0;
            if (kept == finite) n_trivial++;
            if (!same)
                fprintf(stderr, "filter case %zu (vec %zu, n %zu, top_p %g min_p %g keep %d top_k %d xtc %g): "
                        "kept set differs\n", c, vi, n, (double)p.top_p, (double)p.min_p,
                        p.min_tokens_to_keep, p.top_k, (double)p.xtc_threshold);
            f_ok += same;
            values_ok += vals;
            /* through the sampling path (xtc always drawn): every token is in the kept set */
            if (same && c % 7 == 0) {
                mt_sampler *s2 = NULL;
                p.seed = c;
                if (mt_sampler_new(&s2, &p, n, &err) == 0) {
                    float *y = malloc(n * sizeof(float));
                    for (int d = 0; d < 20; d++) {
                        memcpy(y, in, n * sizeof(float));
                        int32_t t = mt_sampler_sample(s2, y, n, NULL);
                        int ok = t >= 0 && (size_t)t < n && ((mask[t / 8] >> (t % 8)) & 1);
                        n_drawn++;
                        n_drawn_ok += ok;
                    }
                    free(y);
                }
                mt_sampler_free(s2);
            }
            free(mask);
            free(x);
        }
        mt_sampler_free(s);
        free(sp);
        free(own);
    }
    printf("filters: %zu/%zu golden kept-sets identical (%zu exact-boundary cases; %zu cases keep everything)\n",
           f_ok, nf, n_edge, n_trivial);
    CHECK(n_edge >= 10);
    printf("filters: %zu/%zu sampled tokens (temp 1, xtc drawn) inside the golden kept set\n", n_drawn_ok, n_drawn);
    CHECK(n_drawn >= 2000);
    CHECK_EQ_INT(n_drawn_ok, n_drawn);
    CHECK(nf >= 1000);
    CHECK_EQ_INT(f_ok, nf);
    CHECK_EQ_INT(values_ok, nf);
    CHECK(n_trivial < nf / 4);   /* the goldens do filter */

    /* (b) logits processors */
    json_t *jp = json_object_get(g, "procs");
    size_t np = json_array_size(jp), p_ok = 0, p_exact = 0;
    double worst = 0;
    for (size_t c = 0; c < np; c++) {
        json_t *o = json_array_get(jp, c);
        size_t n, no, nh, nbi;
        float *x = dec_q(json_string_value(json_object_get(o, "q")), &n);
        float *want = dec_f32(json_string_value(json_object_get(o, "out")), &no);
        int32_t *hist = int_list(json_object_get(o, "hist"), &nh);
        int32_t *bids = int_list(json_object_get(o, "bias_ids"), &nbi);
        json_t *jbv = json_object_get(o, "bias_vals");
        float *bvals = malloc(nbi * sizeof(float) + 1);
        for (size_t i = 0; i < nbi; i++) bvals[i] = (float)json_number_value(json_array_get(jbv, i));
        mt_sampler_params p;
        mt_sampler_params_default(&p);
        p.bias_ids = bids;
        p.bias_vals = bvals;
        p.n_bias = nbi;
        p.repetition_penalty = (float)json_number_value(json_object_get(o, "rep"));
        p.repetition_context_size = (int)json_integer_value(json_object_get(o, "rep_ctx"));
        p.presence_penalty = (float)json_number_value(json_object_get(o, "pres"));
        p.presence_context_size = (int)json_integer_value(json_object_get(o, "pres_ctx"));
        p.frequency_penalty = (float)json_number_value(json_object_get(o, "freq"));
        p.frequency_context_size = (int)json_integer_value(json_object_get(o, "freq_ctx"));
        mt_sampler *s = NULL;
        rc = mt_sampler_new(&s, &p, n, &err);
        CHECK_OK(rc, &err);
        if (!rc && no == n) {
            mt_sampler_process(s, x, n, hist, nh);
            int ok = 1, exact = 1;
            for (size_t i = 0; i < n; i++) {
                double d = fabs((double)x[i] - (double)want[i]);
                if (d > worst) worst = d;
                if (d > 1e-6 * fmax(1.0, fabs((double)want[i]))) ok = 0;
                if (x[i] != want[i]) exact = 0;
            }
            if (!ok) fprintf(stderr, "processor case %zu differs\n", c);
            p_ok += ok;
            p_exact += exact;
        }
        mt_sampler_free(s);
        free(x);
        free(want);
        free(hist);
        free(bids);
        free(bvals);
    }
    printf("processors: %zu/%zu within 1e-6 (%zu bit-identical), max abs diff %g\n", p_ok, np, p_exact, worst);
    CHECK(np >= 100);
    CHECK_EQ_INT(p_ok, np);

    /* (c) greedy: logprobs and argmax through mt_sampler_sample */
    json_t *jg = json_object_get(g, "greedy");
    size_t ng = json_array_size(jg), g_ok = 0, lp_ok = 0, top_ok = 0;
    double lp_worst = 0;
    for (size_t c = 0; c < ng; c++) {
        json_t *o = json_array_get(jg, c);
        size_t vi = (size_t)json_integer_value(json_object_get(o, "v"));
        size_t n = vlen[vi], nl;
        float *want = dec_f32(json_string_value(json_object_get(o, "lp")), &nl);
        mt_sampler_params p;
        mt_sampler_params_default(&p);
        mt_sampler *s = NULL;
        rc = mt_sampler_new(&s, &p, n, &err);
        CHECK_OK(rc, &err);
        if (!rc && nl == n) {
            float *x = malloc(n * sizeof(float));
            memcpy(x, vec[vi], n * sizeof(float));
            float lp = 0;
            int32_t tok = mt_sampler_sample(s, x, n, &lp);
            g_ok += tok == (int32_t)json_integer_value(json_object_get(o, "tok"));
            int ok = lp == x[tok];
            for (size_t i = 0; i < n; i++) {
                if (isinf(want[i]) || isinf(x[i])) {
                    if (want[i] != x[i]) ok = 0;
                    continue;
                }
                double d = fabs((double)x[i] - (double)want[i]);
                if (d > lp_worst) lp_worst = d;
                if (d > 4e-6 * fmax(1.0, fabs((double)want[i]))) ok = 0;
            }
            lp_ok += ok;
            /* top-k logprob set (mlx_lm.server): compare ids as sets, and the sort order */
            size_t nt = 0;
            int32_t *top = int_list(json_object_get(o, "top"), &nt);
            int32_t ids[16];
            float lps[16];
            if (nt >= 1 && nt <= 16) {
                mt_top_logprobs(x, n, nt, ids, lps);
                int set_ok = 1;
                for (size_t a = 0; a < nt; a++) {
                    int found = 0;
                    for (size_t b = 0; b < nt; b++) found |= ids[b] == top[a];
                    if (!found) set_ok = 0;
                    if (a && lps[a] > lps[a - 1]) set_ok = 0;
                    if (ids[a] >= 0 && lps[a] != x[ids[a]]) set_ok = 0;
                }
                top_ok += set_ok;
            }
            free(top);
            free(x);
        }
        mt_sampler_free(s);
        free(want);
    }
    printf("greedy: %zu/%zu argmax equal, %zu/%zu logprob vectors within 4e-6 (max abs diff %g)\n",
           g_ok, ng, lp_ok, ng, lp_worst);
    printf("top logprobs: %zu/%zu id sets equal to mlx argpartition's\n", top_ok, ng);
    CHECK_EQ_INT(top_ok, ng);
    CHECK(ng >= 50);
    CHECK_EQ_INT(g_ok, ng);
    CHECK_EQ_INT(lp_ok, ng);

    for (size_t i = 0; i < nvec; i++) free(vec[i]);
    free(vec);
    free(vlen);
    json_decref(g);
}

/* ---- hand-written semantic cases ---- */
static void filter_small(const mt_sampler_params *p, const float *in, size_t n, int xtc_on, float *out) {
    mt_sampler *s = NULL;
    mt_err err = {0};
    CHECK_OK(mt_sampler_new(&s, p, n, &err), &err);
    memcpy(out, in, n * sizeof(float));
    if (s) mt_sampler_filter(s, out, n, xtc_on);
    mt_sampler_free(s);
}

static int kept_bits(const float *x, size_t n) {
    int b = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) b |= 1 << i;
    return b;
}

static void test_semantics(void) {
    mt_sampler_params p;
    float out[8];
    /* top_k ties: lowest ids win */
    const float t1[6] = {1, 2, 2, 2, 0, 2};
    mt_sampler_params_default(&p);
    p.temp = 1;
    p.top_k = 2;
    filter_small(&p, t1, 6, 0, out);
    CHECK_EQ_INT(kept_bits(out, 6), 0x6);
    /* min_p=1 keeps the max ties; min_tokens_to_keep fills with the highest ids */
    mt_sampler_params_default(&p);
    p.temp = 1;
    p.min_p = 1.0f;
    p.min_tokens_to_keep = 2;
    const float t2[6] = {-1, -3, -3, -2, -3, -5};
    filter_small(&p, t2, 6, 0, out);
    CHECK_EQ_INT(kept_bits(out, 6), 0x9);   /* {0, 3} */
    p.min_tokens_to_keep = 3;
    filter_small(&p, t2, 6, 0, out);
    CHECK_EQ_INT(kept_bits(out, 6), 0x19);  /* {0, 3, 4}: id 4 wins the tie at -3 */
    /* top_p keeps the token that crosses: probs .5 .3 .2, top_p .6 -> {0, 1} */
    const float t3[3] = {logf(0.5f), logf(0.3f), logf(0.2f)};
    mt_sampler_params_default(&p);
    p.temp = 1;
    p.top_p = 0.6f;
    filter_small(&p, t3, 3, 0, out);
    CHECK_EQ_INT(kept_bits(out, 3), 0x3);
    p.top_p = 0.4f;
    filter_small(&p, t3, 3, 0, out);
    CHECK_EQ_INT(kept_bits(out, 3), 0x1);
    /* XTC: probs .5 .3 .2, threshold .25 -> remove token 0 (token 1 is the least probable above) */
    mt_sampler_params_default(&p);
    p.temp = 1;
    p.xtc_probability = 1;
    p.xtc_threshold = 0.25f;
    filter_small(&p, t3, 3, 1, out);
    CHECK_EQ_INT(kept_bits(out, 3), 0x6);
    filter_small(&p, t3, 3, 0, out);          /* not drawn: untouched */
    CHECK_EQ_INT(kept_bits(out, 3), 0x7);
    int32_t special = 0;
    p.xtc_special = &special;
    p.n_xtc_special = 1;
    filter_small(&p, t3, 3, 1, out);
    CHECK_EQ_INT(kept_bits(out, 3), 0x7);
    p.n_xtc_special = 0;
    p.xtc_threshold = 0.5f;                  /* nothing above .5: untouched */
    filter_small(&p, t3, 3, 1, out);
    CHECK_EQ_INT(kept_bits(out, 3), 0x7);

    /* processors */
    mt_sampler_params_default(&p);
    int32_t bid[2] = {1, 1};
    float bv[2] = {0.5f, 0.25f};
    p.bias_ids = bid;
    p.bias_vals = bv;
    p.n_bias = 2;
    p.repetition_penalty = 2.0f;
    p.repetition_context_size = 3;
    p.presence_penalty = 0.5f;
    p.presence_context_size = 0;   /* whole history */
    p.frequency_penalty = 0.25f;
    p.frequency_context_size = 2;
    mt_sampler *s = NULL;
    mt_err err = {0};
    CHECK_OK(mt_sampler_new(&s, &p, 5, &err), &err);
    if (s) {
        float l[5] = {1, -1, 4, -2, 3};
        const int32_t hist[6] = {4, 1, 2, 2, 1, 99};  /* 99: out of range, ignored */
        mt_sampler_process(s, l, 5, hist, 6);
        /* bias: l1 = -0.25; rep (window {2,1,99}): l1 = -0.5, l2 = 2; presence (all: 4,1,2): -0.5;
         * frequency (window {1,99}): l1 -= 0.25 */
        CHECK(l[0] == 1.0f);
        CHECK(l[1] == -1.25f);
        CHECK(l[2] == 1.5f);
        CHECK(l[3] == -2.0f);
        CHECK(l[4] == 2.5f);
        /* the mark scratch must be clean: a second call gives the same increments */
        float m[5] = {0, 0, 0, 0, 0};
        const int32_t h2[3] = {3, 3, 3};
        mt_sampler_process(s, m, 5, h2, 3);
        CHECK(m[3] == -0.5f - 0.25f * 2);    /* presence once, frequency twice (window 2) */
        CHECK(m[1] == 0.75f);                 /* bias .75, not in history */
    }
    mt_sampler_free(s);

    /* mt_top_logprobs with ties and k > vocab */
    const float lp[7] = {-3, -1, -2, -1, -5, -2, -0.5f};
    int32_t ids[9];
    float lps[9];
    mt_top_logprobs(lp, 7, 4, ids, lps);
    CHECK(ids[0] == 6 && ids[1] == 1 && ids[2] == 3 && ids[3] == 2);
    CHECK(lps[0] == -0.5f && lps[3] == -2.0f);
    mt_top_logprobs(lp, 7, 9, ids, lps);
    CHECK(ids[6] == 4 && ids[7] == -1 && ids[8] == -1 && isinf(lps[8]));
    CHECK_EQ_INT(mt_argmax(t1, 6), 1);
    mt_top_logprobs(lp, 7, 0, NULL, NULL);   /* k = 0: nothing written */
    /* -0.0 and +0.0 are equal for top_k (mlx's comparator): lowest ids win */
    const float z[4] = {-0.0f, 0.0f, -0.0f, -1.0f};
    mt_sampler_params_default(&p);
    p.temp = 1;
    p.top_k = 2;
    filter_small(&p, z, 4, 0, out);
    CHECK_EQ_INT(kept_bits(out, 4), 0x3);
}

static void test_check(void) {
    mt_sampler_params p;
    mt_err err = {0};
    mt_sampler *s = NULL;
    mt_sampler_params_default(&p);
    CHECK_OK(mt_sampler_params_check(&p, 100, &err), &err);
#define BAD(stmt, word) do { mt_sampler_params_default(&p); stmt; \
        CHECK_EQ_INT(mt_sampler_params_check(&p, 100, &err), MT_EINVAL); \
        CHECK_MSG(strstr(err.msg, word) != NULL, "message '%s' lacks '%s'", err.msg, word); \
        CHECK_EQ_INT(mt_sampler_new(&s, &p, 100, NULL), MT_EINVAL); CHECK(s == NULL); } while (0)
    BAD(p.top_k = 100, "top_k");
    BAD(p.top_k = -1, "top_k");
    BAD(p.min_p = 1.5f, "min_p");
    BAD(p.top_p = -0.1f, "top_p");
    BAD(p.temp = -1, "temp");
    BAD(p.temp = NAN, "temp");
    BAD(p.min_tokens_to_keep = 0, "min_tokens_to_keep");
    BAD((p.xtc_probability = 0.5f, p.xtc_threshold = 0.6f), "xtc_threshold");
    BAD(p.xtc_probability = 1.5f, "xtc_probability");
    BAD(p.repetition_penalty = -1, "repetition_penalty");
    BAD(p.presence_context_size = -2, "presence_context_size");
    int32_t id = 100;
    float v = 1;
    BAD((p.bias_ids = &id, p.bias_vals = &v, p.n_bias = 1), "logit_bias");
    BAD((p.xtc_special = &id, p.n_xtc_special = 1), "special");
#undef BAD
    mt_sampler_params_default(&p);
    p.top_k = 99;
    p.xtc_threshold = 0.9f;   /* ignored while xtc is off (as in mlx-lm) */
    CHECK_OK(mt_sampler_params_check(&p, 100, &err), &err);
    mt_sampler_free(NULL);
}

/* ---- statistics and determinism ---- */
static double chi2(const size_t *cnt, const double *prob, size_t n, size_t draws) {
    double c = 0;
    for (size_t i = 0; i < n; i++) {
        double e = prob[i] * (double)draws;
        if (e > 0) c += ((double)cnt[i] - e) * ((double)cnt[i] - e) / e;
        else if (cnt[i]) c += 1e9;
    }
    return c;
}

/* draw `draws` tokens; returns chi-square vs prob (n <= 8) */
static double run_dist(const mt_sampler_params *p, const float *logits, size_t n, const double *prob,
                       size_t draws, size_t *cnt) {
    mt_sampler *s = NULL;
    mt_err err = {0};
    CHECK_OK(mt_sampler_new(&s, p, n, &err), &err);
    if (!s) return 1e9;
    memset(cnt, 0, n * sizeof(size_t));
    float x[8];
    for (size_t d = 0; d < draws; d++) {
        memcpy(x, logits, n * sizeof(float));
        float lp;
        int32_t t = mt_sampler_sample(s, x, n, &lp);
        if (t >= 0 && (size_t)t < n) {
            cnt[t]++;
            if (fabsf(lp - x[t]) > 0) cnt[t] += 1000000;  /* must report the unfiltered logprob */
        }
    }
    mt_sampler_free(s);
    return chi2(cnt, prob, n, draws);
}

static void test_stats(void) {
    const size_t N = 20000;
    const double pr[5] = {0.4, 0.25, 0.2, 0.1, 0.05};
    float lg[5];
    for (int i = 0; i < 5; i++) lg[i] = (float)log(pr[i]) + 3.0f;  /* unnormalized logits */
    size_t cnt[8];
    mt_sampler_params p;
    mt_sampler_params_default(&p);
    p.temp = 1.0f;
    p.seed = 1234;
    /* chi-square, 4 degrees of freedom: 18.47 is the 0.1% point */
    double c = run_dist(&p, lg, 5, pr, N, cnt);
    printf("stats: temp 1 chi2 %.2f (counts %zu %zu %zu %zu %zu)\n", c, cnt[0], cnt[1], cnt[2], cnt[3], cnt[4]);
    CHECK(c < 18.47);
    /* temp 0.5: p^2 normalized */
    double q[5], z = 0;
    for (int i = 0; i < 5; i++) z += pr[i] * pr[i];
    for (int i = 0; i < 5; i++) q[i] = pr[i] * pr[i] / z;
    p.temp = 0.5f;
    c = run_dist(&p, lg, 5, q, N, cnt);
    printf("stats: temp 0.5 chi2 %.2f\n", c);
    CHECK(c < 18.47);
    /* top_k 2 at temp 1: {0.4, 0.25} renormalized, nothing else */
    double k2[5] = {0.4 / 0.65, 0.25 / 0.65, 0, 0, 0};
    p.temp = 1.0f;
    p.top_k = 2;
    c = run_dist(&p, lg, 5, k2, N, cnt);
    printf("stats: top_k 2 chi2 %.2f\n", c);
    CHECK(c < 13.82);   /* 1 dof would be 10.83; zero-prob tokens must never appear (1e9 penalty) */
    /* top_p 0.7: keeps {0.4, 0.25, 0.2} (0.65 < 0.7) */
    p.top_k = 0;
    p.top_p = 0.7f;
    double tp[5] = {0.4 / 0.85, 0.25 / 0.85, 0.2 / 0.85, 0, 0};
    c = run_dist(&p, lg, 5, tp, N, cnt);
    printf("stats: top_p 0.7 chi2 %.2f\n", c);
    CHECK(c < 13.82);
    /* XTC with probability 0.5, threshold 0.22: above it are 0.4 and 0.25; token 0 is removed
     * half the time: P(0) = 0.5*0.4, others 0.5*p + 0.5*p/0.6 */
    p.top_p = 0;
    p.xtc_probability = 0.5f;
    p.xtc_threshold = 0.22f;
    double xp[5];
    xp[0] = 0.5 * 0.4;
    for (int i = 1; i < 5; i++) xp[i] = 0.5 * pr[i] + 0.5 * pr[i] / 0.6;
    c = run_dist(&p, lg, 5, xp, N, cnt);
    printf("stats: xtc 0.5 chi2 %.2f\n", c);
    CHECK(c < 18.47);

    /* determinism: same seed, same sequence; different seeds differ */
    mt_sampler_params_default(&p);
    p.temp = 1.0f;
    p.top_p = 0.95f;
    p.xtc_probability = 0.3f;
    enum { V = 64, T = 500 };
    float base[V];
    for (int i = 0; i < V; i++) base[i] = (float)((i * 37) % V) / 16.0f;
    int32_t seq[3][T];
    uint64_t seeds[3] = {42, 42, 43};
    for (int r = 0; r < 3; r++) {
        p.seed = seeds[r];
        mt_sampler *s = NULL;
        mt_err err = {0};
        CHECK_OK(mt_sampler_new(&s, &p, V, &err), &err);
        if (!s) return;
        for (int t = 0; t < T; t++) {
            float x[V];
            memcpy(x, base, sizeof x);
            seq[r][t] = mt_sampler_sample(s, x, V, NULL);
        }
        mt_sampler_free(s);
    }
    CHECK(memcmp(seq[0], seq[1], sizeof seq[0]) == 0);
    int diff = 0;
    for (int t = 0; t < T; t++) diff += seq[0][t] != seq[2][t];
    CHECK(diff > T / 2);
    /* greedy ignores the filters and the RNG */
    p.temp = 0;
    p.top_k = 3;
    mt_sampler *s = NULL;
    CHECK_OK(mt_sampler_new(&s, &p, V, NULL), &(mt_err){0});
    if (s) {
        float x[V];
        memcpy(x, base, sizeof x);
        CHECK_EQ_INT(mt_sampler_sample(s, x, V, NULL), mt_argmax(base, V));
    }
    mt_sampler_free(s);
}

int main(void) {
    test_semantics();
    test_check();
    test_stats();
    test_goldens();
    return check_report("sample");
}
