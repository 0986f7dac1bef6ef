/* test_speculative.c - speculative decoding (gen/speculative.h): the rejection
 * step alone (its output distributed as p, by chi-square over many draws), prompt
 * lookup's matches, and whole generations on the bundled pair
 * (models/tinydocs-22m-4bit with models/tinydocs-5m-4bit as draft): greedy
 * speculative output against the plain loop token for token (K 1, 2, 4, 8; with
 * penalties and logprobs, max_tokens cut inside a round, stop strings, an eos id;
 * prompt lookup the same; rotating and quantized caches, prompt caches),
 * sampling (the model as its own draft keeps nearly every proposal; the first
 * tokens' distribution with and without a draft), and the refusals. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/blas.h"
#include "gen/generate.h"
#include "gen/speculative.h"
#include "text/tokenizer.h"

/* ---- the rejection step ---- */

/* chi-square of counts[V] (N draws) against p; cells with p = 0 must be empty */
static double chi2(const size_t *counts, const double *p, size_t V, size_t N, int *bad_zero) {
    double x = 0;
    for (size_t i = 0; i < V; i++) {
        if (p[i] <= 0) { if (counts[i]) *bad_zero = 1; continue; }
        double e = p[i] * (double)N, d = (double)counts[i] - e;
        x += d * d / e;
    }
    return x;
}

static void normalize(float *v, size_t V) {
    double s = 0;
    for (size_t i = 0; i < V; i++) s += v[i];
    for (size_t i = 0; i < V; i++) v[i] = (float)(v[i] / s);
}

static void test_rejection(void) {
    enum { V = 10, N = 200000 };
    mt_rng r;
    mt_spec_rng_seed(&r, 1234);
    /* cases: random p and q; q with zeros where p has mass; p with zeros where q has mass;
     * p == q; q one-hot (prompt lookup) */
    for (int c = 0; c < 6; c++) {
        float p[V], q[V];
        for (size_t i = 0; i < V; i++) {
            p[i] = (float)(mt_rng_uniform(&r) + 0.01);
            q[i] = (float)(mt_rng_uniform(&r) + 0.01);
        }
        if (c == 1) q[0] = q[3] = q[7] = 0;
        if (c == 2) p[1] = p[2] = p[9] = 0;
        if (c == 3) memcpy(q, p, sizeof q);
        if (c == 5) { p[4] = 0; }   /* one-hot q on a token p never gives */
        normalize(p, V);
        normalize(q, V);
        size_t counts[V] = {0}, kept = 0;
        double pd[V];
        for (size_t i = 0; i < V; i++) pd[i] = p[i];
        for (size_t n = 0; n < N; n++) {
            int k;
            int32_t x = c >= 4 ? (int32_t)(c == 4 ? n % V : 4) : mt_spec_draw(q, V, &r);
            int32_t t = mt_spec_verify(p, c >= 4 ? NULL : q, V, x, &r, &k);
            if (t < 0 || t >= V) { CHECK_MSG(0, "token %d out of range", t); return; }
            counts[t]++;
            kept += k;
            if (k && t != x) { CHECK_MSG(0, "kept a token that is not the proposal"); return; }
        }
        int bad_zero = 0;
        double x2 = chi2(counts, pd, V, N, &bad_zero);
        /* 9 degrees of freedom: P(chi2 > 60) ~ 1e-9; the draws are seeded */
        CHECK_MSG(x2 < 60 && !bad_zero, "case %d: chi2 %.1f (zero cells hit: %d)", c, x2, bad_zero);
        if (c == 3) CHECK_EQ_INT(kept, N);   /* p == q: every proposal kept */
        if (c == 5) CHECK_EQ_INT(kept, 0);
        if (c == 0) {   /* acceptance rate sum_i min(p_i, q_i) */
            double want = 0;
            for (size_t i = 0; i < V; i++) want += fmin(p[i], q[i]);
            CHECK_MSG(fabs((double)kept / N - want) < 0.01, "acceptance %.4f, want %.4f", (double)kept / N, want);
        }
    }
    /* draws from p alone */
    float p[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    double pd[4] = {0.1, 0.2, 0.3, 0.4};
    size_t counts[4] = {0};
    for (int n = 0; n < N; n++) counts[mt_spec_draw(p, 4, &r)]++;
    int bz = 0;
    CHECK(chi2(counts, pd, 4, N, &bz) < 50 && !bz);
}

/* ---- prompt lookup ---- */

static void test_lookup(void) {
    int32_t out[8];
    const int32_t a[] = {1, 2, 3, 4, 5, 9, 2, 3, 4};   /* suffix 2 3 4 at 1: follows 5 9 2 3 4 */
    CHECK_EQ_INT(mt_spec_lookup(a, 9, 3, out, 8), 5);
    CHECK(out[0] == 5 && out[1] == 9 && out[2] == 2 && out[3] == 3 && out[4] == 4);
    CHECK_EQ_INT(mt_spec_lookup(a, 9, 3, out, 2), 2);
    CHECK(out[0] == 5 && out[1] == 9);
    const int32_t b[] = {7, 1, 8, 1, 6, 6, 1};   /* only a 1-gram: the latest earlier 1 (at 3) */
    CHECK_EQ_INT(mt_spec_lookup(b, 7, 3, out, 1), 1);
    CHECK_EQ_INT(out[0], 6);
    const int32_t c[] = {1, 2, 3, 4};   /* no earlier occurrence */
    CHECK_EQ_INT(mt_spec_lookup(c, 4, 3, out, 8), 0);
    CHECK_EQ_INT(mt_spec_lookup(c, 1, 3, out, 8), 0);
    const int32_t d[] = {5, 5, 5, 5};   /* overlapping: 5 5 5 at 0 is followed by the last 5 */
    CHECK_EQ_INT(mt_spec_lookup(d, 4, 3, out, 8), 1);
    CHECK_EQ_INT(out[0], 5);
    const int32_t e[] = {1, 2, 3, 9, 2, 3, 8, 1, 2, 3};   /* 3-gram 1 2 3 beats the later 2 3 */
    CHECK_EQ_INT(mt_spec_lookup(e, 10, 3, out, 2), 2);
    CHECK(out[0] == 9 && out[1] == 2);
    CHECK_EQ_INT(mt_spec_lookup(e, 10, 2, out, 2), 2);   /* 2-grams only: 2 3 at 4 */
    CHECK(out[0] == 8 && out[1] == 1);
}

/* ---- generation on the bundled pair ---- */

typedef struct pair {
    mt_model *m, *d;
    mt_tokenizer *tok;
    int32_t eos;
} pair;

static int gen(pair *P, const char *prompt, const mt_gen_params *gp, mt_gen_result *res, mt_err *e) {
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = mt_tokenizer_encode(P->tok, prompt, strlen(prompt), 1, &ids, &n, e);
    if (!rc) rc = mt_generate(P->m, P->tok, ids, n, gp, NULL, NULL, res, e);
    free(ids);
    return rc;
}

/* spec's tokens, text, finish reason and logprob alternatives against the plain loop's */
static int same(const mt_gen_result *a, const mt_gen_result *b, int K, const char *what) {
    int ok = a->n_tokens == b->n_tokens && !memcmp(a->tokens, b->tokens, a->n_tokens * sizeof *a->tokens) &&
             a->text_len == b->text_len && !memcmp(a->text, b->text, a->text_len) &&
             !strcmp(a->finish_reason, b->finish_reason);
    for (size_t i = 0; ok && K && i < a->n_tokens; i++) {
        ok = fabsf(a->token_logprobs[i] - b->token_logprobs[i]) < 5e-3f;
        for (int k = 0; ok && k < K; k++)
            /* the same ids, but for near-ties: the verifying pass's rows differ from one-token
             * passes in the last float bits (the batched kernels sum in another order) */
            ok = fabsf(a->top_logprobs[i * K + k] - b->top_logprobs[i * K + k]) < 5e-3f &&
                 (a->top_ids[i * K + k] == b->top_ids[i * K + k] ||
                  (k + 1 < K && a->top_ids[i * K + k] == b->top_ids[i * K + k + 1] &&
                   fabsf(a->top_logprobs[i * K + k] - a->top_logprobs[i * K + k + 1]) < 1e-3f) ||
                  (k > 0 && a->top_ids[i * K + k] == b->top_ids[i * K + k - 1] &&
                   fabsf(a->top_logprobs[i * K + k] - a->top_logprobs[i * K + k - 1]) < 1e-3f));
    }
    if (!ok && getenv("SPEC_DEBUG"))
        for (size_t i = 0; i < a->n_tokens && i < b->n_tokens; i++)
            for (int k = 0; k < (K ? K : 1); k++)
                fprintf(stderr, "  %zu: %d %d lp %g %g top %d %d %g %g\n", i, a->tokens[i], b->tokens[i],
                        a->token_logprobs[i], b->token_logprobs[i], K ? a->top_ids[i * K + k] : -1,
                        K ? b->top_ids[i * K + k] : -1, K ? a->top_logprobs[i * K + k] : 0,
                        K ? b->top_logprobs[i * K + k] : 0);
    CHECK_MSG(ok, "%s: %zu tokens \"%.60s\" (%s) vs plain %zu \"%.60s\" (%s)", what, a->n_tokens, a->text,
              a->finish_reason, b->n_tokens, b->text, b->finish_reason);
    return ok;
}

static const char *PROMPTS[] = {
    "The apt command installs packages. To install a package",
    "Configuration files are kept under /etc. When a package is upgraded,",
    "# Installing\n\nRun the following command to build the project:\n\n",
    "Rewrite the following text in plain words. Text: The daemon reads its configuration file at start-up and "
    "writes its log to /var/log/daemon.log. To reload the configuration, send it the HUP signal. Rewritten: The "
    "daemon reads",
};
#define NPROMPTS (sizeof PROMPTS / sizeof PROMPTS[0])

static void test_greedy(pair *P) {
    mt_err e = {0};
    static const int Ks[] = {1, 2, 4, 8};
    for (int variant = 0; variant < 4; variant++) {
        /* 0 plain options; 1 penalties + logprobs; 2 max_tokens inside a round; 3 a stop string */
        for (size_t pi = 0; pi < NPROMPTS; pi++) {
            mt_gen_params gp;
            mt_gen_params_default(&gp);
            gp.eos = &P->eos;
            gp.n_eos = 1;
            gp.trim_first_space = 1;
            gp.max_tokens = variant == 2 ? 7 : 40;
            if (variant == 1) {
                gp.sp.repetition_penalty = 1.3f;
                gp.sp.presence_penalty = 0.4f;
                gp.sp.frequency_penalty = 0.2f;
                gp.logprobs = 4;
            }
            mt_gen_result plain;
            if (gen(P, PROMPTS[pi], &gp, &plain, &e)) { CHECK_MSG(0, "plain: %s", e.msg); continue; }
            const char *stops[1];
            char stop[8] = {0};
            if (variant == 3) {   /* a stop string from the middle of the plain text */
                if (plain.text_len < 24) { mt_gen_result_free(&plain); continue; }
                memcpy(stop, plain.text + plain.text_len / 2, 4);
                stops[0] = stop;
                gp.stop = stops;
                gp.n_stop = 1;
                mt_gen_result_free(&plain);
                if (gen(P, PROMPTS[pi], &gp, &plain, &e)) { CHECK_MSG(0, "plain: %s", e.msg); continue; }
                CHECK_STR(plain.finish_reason, "stop");
            }
            for (int mode = 0; mode < 2; mode++)   /* draft model, prompt lookup */
                for (size_t ki = 0; ki < 4; ki++) {
                    mt_gen_params g = gp;
                    if (mode == 0) { g.draft = P->d; g.num_draft = Ks[ki]; }
                    else g.prompt_lookup = Ks[ki];
                    mt_gen_result r;
                    char what[96];
                    snprintf(what, sizeof what, "variant %d prompt %zu %s %d", variant, pi,
                             mode ? "lookup" : "draft", Ks[ki]);
                    if (gen(P, PROMPTS[pi], &g, &r, &e)) { CHECK_MSG(0, "%s: %s", what, e.msg); continue; }
                    same(&r, &plain, g.logprobs, what);
                    CHECK(r.accepted_tokens <= r.draft_tokens);
                    if (mode == 0 && variant == 0) CHECK(r.draft_tokens > 0);
                    mt_gen_result_free(&r);
                }
            mt_gen_result_free(&plain);
        }
    }
}

/* An eos id inside an accepted run ends the answer there (not emitted), as in the plain loop:
 * the eos is a token the unconstrained answer has at position 5..12. */
static void test_eos(pair *P) {
    mt_err e = {0};
    for (size_t pi = 0; pi < 3; pi++) {
        mt_gen_params gp;
        mt_gen_params_default(&gp);
        gp.max_tokens = 32;
        mt_gen_result free_run, plain, r;
        if (gen(P, PROMPTS[pi], &gp, &free_run, &e)) { CHECK_MSG(0, "%s", e.msg); continue; }
        int32_t eos = free_run.tokens[5 + pi * 3];
        mt_gen_result_free(&free_run);
        gp.eos = &eos;
        gp.n_eos = 1;
        if (gen(P, PROMPTS[pi], &gp, &plain, &e)) { CHECK_MSG(0, "%s", e.msg); continue; }
        CHECK_STR(plain.finish_reason, "stop");
        for (int k = 2; k <= 8; k *= 2)
            for (int mode = 0; mode < 2; mode++) {
                mt_gen_params g = gp;
                if (mode == 0) { g.draft = P->d; g.num_draft = k; }
                else g.prompt_lookup = k;
                if (gen(P, PROMPTS[pi], &g, &r, &e)) { CHECK_MSG(0, "%s", e.msg); continue; }
                same(&r, &plain, 0, mode ? "eos, lookup" : "eos, draft");
                mt_gen_result_free(&r);
            }
        mt_gen_result_free(&plain);
    }
}

/* Prompt lookup on a copying job keeps most of its proposals; the draft keeps some. */
static void test_acceptance(pair *P) {
    mt_err e = {0};
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.eos = &P->eos;
    gp.n_eos = 1;
    gp.max_tokens = 48;
    gp.prompt_lookup = 8;
    mt_gen_result r;
    if (gen(P, PROMPTS[3], &gp, &r, &e)) { CHECK_MSG(0, "%s", e.msg); return; }
    CHECK_MSG(r.draft_tokens > 0, "lookup proposed nothing");
    mt_gen_result_free(&r);
    gp.prompt_lookup = 0;
    gp.draft = P->d;
    gp.num_draft = 4;
    if (gen(P, PROMPTS[0], &gp, &r, &e)) { CHECK_MSG(0, "%s", e.msg); return; }
    CHECK_MSG(r.accepted_tokens * 4 > r.draft_tokens, "draft: %zu of %zu kept", r.accepted_tokens, r.draft_tokens);
    mt_gen_result_free(&r);
}

/* Sampling: the model as its own draft gives p ~= q, so nearly every proposal is kept; seeded
 * runs repeat; the draft's distributions go through the same filters. */
static void test_sampling(pair *P) {
    mt_err e = {0};
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.eos = &P->eos;
    gp.n_eos = 1;
    gp.max_tokens = 64;
    gp.sp.temp = 0.8f;
    gp.sp.top_p = 0.95f;
    gp.sp.top_k = 50;
    gp.sp.seed = 7;
    gp.draft = P->m;
    gp.num_draft = 4;
    mt_gen_result a, b;
    if (gen(P, PROMPTS[0], &gp, &a, &e)) { CHECK_MSG(0, "%s", e.msg); return; }
    CHECK_MSG(a.draft_tokens > 0 && a.accepted_tokens * 100 >= a.draft_tokens * 95, "self-draft kept %zu of %zu",
              a.accepted_tokens, a.draft_tokens);
    if (!gen(P, PROMPTS[0], &gp, &b, &e)) {
        CHECK(a.n_tokens == b.n_tokens && !memcmp(a.tokens, b.tokens, a.n_tokens * sizeof *a.tokens));
        mt_gen_result_free(&b);
    }
    mt_gen_result_free(&a);
    /* the small draft, with XTC and penalties: runs, and keeps a fair share */
    gp.draft = P->d;
    gp.sp.xtc_probability = 0.5f;
    gp.sp.repetition_penalty = 1.2f;
    gp.prompt_lookup = 4;
    if (gen(P, PROMPTS[3], &gp, &a, &e)) { CHECK_MSG(0, "%s", e.msg); return; }
    CHECK(a.n_tokens > 0 && a.accepted_tokens <= a.draft_tokens);
    mt_gen_result_free(&a);
}

/* End to end: the first two tokens' joint distribution (top_k 3: at most 9 cells; the second one
 * goes through the rejection rule against the draft's proposal) over many seeds, with and
 * without the draft, by a two-sample chi-square. */
static void test_sampled_distribution(pair *P) {
    enum { RUNS = 400 };
    mt_err e = {0};
    size_t cnt[2][9] = {{0}};
    int32_t first[3] = {-1, -1, -1}, second[3] = {-1, -1, -1};
    int32_t *ids = NULL;
    size_t n = 0;
    const char *prompt = "The file";
    if (mt_tokenizer_encode(P->tok, prompt, strlen(prompt), 1, &ids, &n, &e)) { CHECK_MSG(0, "%s", e.msg); return; }
    int ok = 1;
    for (int mode = 0; mode < 2 && ok; mode++)
        for (int r = 0; r < RUNS && ok; r++) {
            mt_gen_params gp;
            mt_gen_params_default(&gp);
            gp.max_tokens = 3;   /* t1 plain, then a round proposing one token */
            gp.sp.temp = 1.0f;
            gp.sp.top_k = 3;
            gp.sp.seed = (uint64_t)r * 2 + 1;
            if (mode) { gp.draft = P->d; gp.num_draft = 2; }
            mt_gen_result res;
            if (mt_generate(P->m, P->tok, ids, n, &gp, NULL, NULL, &res, &e)) { CHECK_MSG(0, "%s", e.msg); ok = 0; break; }
            if (res.n_tokens < 2) { mt_gen_result_free(&res); continue; }
            /* map each position's token to its index among the (at most 3) seen there */
            int a = -1, b = -1;
            for (int i = 0; i < 3 && a < 0; i++) {
                if (first[i] < 0) first[i] = res.tokens[0];
                if (first[i] == res.tokens[0]) a = i;
            }
            for (int i = 0; i < 3 && b < 0; i++) {
                if (second[i] < 0) second[i] = res.tokens[1];
                if (second[i] == res.tokens[1]) b = i;
            }
            mt_gen_result_free(&res);
            if (a < 0 || b < 0) continue;   /* top_k 3 after different first tokens: a rare 4th second token */
            cnt[mode][a * 3 + b]++;
        }
    free(ids);
    if (!ok) return;
    double x2 = 0;
    int cells = 0;
    for (int c = 0; c < 9; c++) {
        double s = (double)cnt[0][c] + (double)cnt[1][c], d = (double)cnt[0][c] - (double)cnt[1][c];
        if (s > 0) { x2 += d * d / s; cells++; }
    }
    /* at most 8 degrees of freedom: P(chi2 > 45) ~ 4e-7; the seeds are fixed */
    CHECK_MSG(x2 < 45 && cells >= 2, "two-sample chi2 %.1f over %d cells", x2, cells);
}

/* Quantized KV caches trim; the text stays the plain loop's. */
static void test_kvbits(pair *P) {
    mt_err e = {0};
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.eos = &P->eos;
    gp.n_eos = 1;
    gp.max_tokens = 32;
    gp.kv_bits = 8;
    gp.kv_group_size = 64;
    gp.kv_start = 0;
    mt_gen_result plain, r;
    if (gen(P, PROMPTS[1], &gp, &plain, &e)) { CHECK_MSG(0, "%s", e.msg); return; }
    gp.draft = P->d;
    gp.num_draft = 3;
    if (!gen(P, PROMPTS[1], &gp, &r, &e)) {
        /* 8-bit codes of keys that differ in the last bits can differ by a step: the texts agree up
         * to a near-tie (both runs' chosen tokens about equally likely), if they part at all */
        size_t i = 0;
        while (i < r.n_tokens && i < plain.n_tokens && r.tokens[i] == plain.tokens[i]) i++;
        int ok = i == r.n_tokens && i == plain.n_tokens;
        if (!ok && i < r.n_tokens && i < plain.n_tokens) ok = fabsf(r.token_logprobs[i] - plain.token_logprobs[i]) < 0.01f;
        CHECK_MSG(ok && i >= 8, "kv-bits 8: parted at token %zu of %zu", i, plain.n_tokens);
        mt_gen_result_free(&r);
    } else CHECK_MSG(0, "%s", e.msg);
    mt_gen_result_free(&plain);
}

/* A rotating cache: rounds stop short of filling it, then plain steps; the text is the plain
 * loop's across the wrap. */
static void test_rotating(pair *P) {
    mt_err e = {0};
    for (size_t pi = 0; pi < 2; pi++) {
        mt_gen_params gp;
        mt_gen_params_default(&gp);
        gp.eos = &P->eos;
        gp.n_eos = 1;
        gp.max_tokens = 48;
        gp.max_kv_size = 40;
        mt_gen_result plain, r;
        if (gen(P, PROMPTS[pi], &gp, &plain, &e)) { CHECK_MSG(0, "%s", e.msg); continue; }
        for (int mode = 0; mode < 2; mode++) {
            mt_gen_params g = gp;
            if (mode == 0) { g.draft = P->d; g.num_draft = 4; }
            else g.prompt_lookup = 4;
            if (gen(P, PROMPTS[pi], &g, &r, &e)) { CHECK_MSG(0, "rotating: %s", e.msg); continue; }
            same(&r, &plain, 0, mode ? "rotating, lookup" : "rotating, draft");
            if (mode == 0) CHECK(r.draft_tokens > 0);
            mt_gen_result_free(&r);
        }
        mt_gen_result_free(&plain);
    }
}

/* Continuing from a prompt cache (its ids known: the draft prefills them; unknown: lookup only),
 * and the state after generation (snapshot 2) as the plain loop leaves it. */
static void test_prefix(pair *P) {
    mt_err e = {0};
    const char *head = "The apt command installs packages. To install a package, run apt install and the name of "
                       "the package. To install a package from a file, give its path.", *tail = " To install a package";
    int32_t *hi = NULL, *ti = NULL;
    size_t nh = 0, nt = 0;
    if (mt_tokenizer_encode(P->tok, head, strlen(head), 1, &hi, &nh, &e) ||
        mt_tokenizer_encode(P->tok, tail, strlen(tail), 0, &ti, &nt, &e)) { CHECK_MSG(0, "%s", e.msg); free(hi); return; }
    mt_kvcache *pc = NULL;
    float *lg = malloc((size_t)P->m->hp.vocab * sizeof *lg);
    CHECK_OK(mt_kvcache_new(&pc, P->m, &e), &e);
    if (pc && lg) CHECK_OK(mt_model_forward(P->m, pc, hi, nh, lg, 0, &e), &e);
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.eos = &P->eos;
    gp.n_eos = 1;
    gp.max_tokens = 24;
    gp.prefix = pc;
    gp.prefix_tokens = hi;
    gp.snapshot = 2;
    mt_gen_result plain, r;
    if (pc && !mt_generate(P->m, P->tok, ti, nt, &gp, NULL, NULL, &plain, &e)) {
        for (int mode = 0; mode < 3; mode++) {
            mt_gen_params g = gp;
            if (mode == 0) { g.draft = P->d; g.num_draft = 3; }
            else if (mode == 1) g.prompt_lookup = 4;
            else { g.prefix_tokens = NULL; g.prompt_lookup = 4; }   /* ids unknown: lookup still works */
            if (mt_generate(P->m, P->tok, ti, nt, &g, NULL, NULL, &r, &e)) { CHECK_MSG(0, "mode %d: %s", mode, e.msg); continue; }
            same(&r, &plain, 0, mode == 0 ? "prefix, draft" : "prefix, lookup");
            CHECK(r.prompt_cache && plain.prompt_cache && r.prompt_cache->len == plain.prompt_cache->len);
            if (mode < 2) {
                CHECK(r.n_prompt_ids == plain.n_prompt_ids &&
                      !memcmp(r.prompt_ids, plain.prompt_ids, r.n_prompt_ids * sizeof *r.prompt_ids));
            }
            mt_gen_result_free(&r);
        }
        /* lookup sees the cached prefix: the head goes on after the phrase the prompt ends with */
        mt_gen_params g = gp;
        g.max_tokens = 3;   /* one plain token, then one round proposing at most one */
        g.prompt_lookup = 4;
        g.snapshot = 0;
        if (!mt_generate(P->m, P->tok, ti, nt, &g, NULL, NULL, &r, &e)) {
            CHECK_MSG(r.draft_tokens == 1, "lookup over the prefix proposed %zu", r.draft_tokens);
            mt_gen_result_free(&r);
        } else CHECK_MSG(0, "%s", e.msg);
        gp.prefix_tokens = NULL;   /* the draft needs the ids */
        gp.draft = P->d;
        gp.num_draft = 2;
        CHECK_EQ_INT(mt_generate(P->m, P->tok, ti, nt, &gp, NULL, NULL, &r, &e), MT_EINVAL);
        CHECK(strstr(e.msg, "token ids") != NULL);
        mt_gen_result_free(&plain);
    } else CHECK_MSG(0, "%s", e.msg);
    mt_kvcache_free(pc);
    free(lg);
    free(hi);
    free(ti);
}

static void test_refusals(pair *P, mt_pool *pool) {
    mt_err e = {0};
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = 8;
    gp.draft = P->d;
    gp.num_draft = 2;
    gp.max_kv_size = 6;   /* the prompt fills it: nothing can be rolled back */
    mt_gen_result r;
    CHECK_EQ_INT(gen(P, PROMPTS[0], &gp, &r, &e), MT_EINVAL);
    CHECK(strstr(e.msg, "rotating") != NULL);
    gp.max_kv_size = 0;
    gp.num_draft = MT_SPEC_MAX_DRAFT + 1;
    CHECK_EQ_INT(gen(P, PROMPTS[0], &gp, &r, &e), MT_EINVAL);
    CHECK(strstr(e.msg, "num_draft_tokens") != NULL);
    mt_model *other = NULL;
    if (mt_model_load(&other, "tests/data/models/llama-tiny", pool, &e)) { CHECK_MSG(0, "%s", e.msg); return; }
    gp.num_draft = 2;
    gp.draft = other;
    CHECK_EQ_INT(gen(P, PROMPTS[0], &gp, &r, &e), MT_EINVAL);
    CHECK(strstr(e.msg, "vocabulary") != NULL && !strchr(e.msg, '\n'));
    mt_model_free(other);
}

int main(void) {
    test_rejection();
    test_lookup();
    mt_err e = {0};
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    mt_blas_threads(1);
    pair P = {.eos = 0};
    CHECK_OK(mt_model_load(&P.m, "models/tinydocs-22m-4bit", pool, &e), &e);
    CHECK_OK(mt_model_load(&P.d, "models/tinydocs-5m-4bit", pool, &e), &e);
    CHECK_OK(mt_tokenizer_load(&P.tok, "models/tinydocs-22m-4bit/tokenizer.json", &e), &e);
    if (P.m && P.d && P.tok) {
        test_greedy(&P);
        test_eos(&P);
        test_acceptance(&P);
        test_sampling(&P);
        test_sampled_distribution(&P);
        test_kvbits(&P);
        test_prefix(&P);
        test_rotating(&P);
        test_refusals(&P, pool);
    }
    mt_tokenizer_free(P.tok);
    mt_model_free(P.m);
    mt_model_free(P.d);
    mt_pool_free(pool);
    return check_report("test_speculative");
}
