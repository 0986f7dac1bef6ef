/* test_kvquant.c - KV-cache quantization: mlx-lm's QuantizedKVCache semantics
 * against goldens from mlx-lm's generate_step (tests/gen/gen_kvquant_goldens.py),
 * the packed-attention kernels against dequantize-then-float references on every
 * CPU path, snapshots / trimming / restoring of quantized caches, the API's
 * refusals, and the quality of the rotation + Lloyd-Max (turbo) scheme on the
 * bundled trained model. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/blas.h"
#include "core/cpu.h"
#include "gen/sample.h"
#include "models/kvcache_int.h"
#include "models/model.h"
#include "tensor/kernels.h"
#include "tensor/quant.h"
#include "text/tokenizer.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float frand(float a, float b) { return a + (b - a) * (float)(rnd() >> 8) / 16777216.0f; }

/* ---- kernels ---- */

/* float attention of one head over n dequantized rows (double sums) */
static void ref_attn(const float *q, const float *K, const float *V, size_t n, size_t hd, float scale, float cap,
                     float *out) {
    double *s = malloc(n * sizeof *s), mx = -INFINITY, sum = 0;
    for (size_t j = 0; j < n; j++) {
        double d = 0;
        for (size_t i = 0; i < hd; i++) d += (double)(q[i] * scale) * K[j * hd + i];
        if (cap > 0) d = tanh(d / cap) * cap;
        s[j] = d;
        if (d > mx) mx = d;
    }
    for (size_t j = 0; j < n; j++) sum += (s[j] = exp(s[j] - mx));
    for (size_t i = 0; i < hd; i++) {
        double o = 0;
        for (size_t j = 0; j < n; j++) o += s[j] / sum * V[j * hd + i];
        out[i] = (float)o;
    }
    free(s);
}

/* rows x of a turbo-coded head: norm * unrotate(cb[idx]) */
static void turbo_deq(float *out, const uint32_t *w, float norm, const float *cb, const float *sign, size_t hd,
                      int bits) {
    for (size_t i = 0; i < hd; i++) out[i] = cb[mt_quant_code(w, i, bits)];
    mt_kvt_unrotate(out, sign, hd);
    for (size_t i = 0; i < hd; i++) out[i] *= norm;
}

static void test_kernels(void) {
    static const int bitsv[] = {2, 3, 4, 5, 6, 8}, groups[] = {32, 64, 128};
    static const size_t hds[] = {64, 128, 256}, nhs[] = {1, 2, 3, 9}, ns[] = {1, 5, 37};
    int best = mt_cpu_best();
    double worst[3] = {0}, tworst[3] = {0};
    for (size_t cse = 0; cse < 60; cse++) {
        int bits = bitsv[cse % 6], group = groups[cse / 6 % 3];
        size_t hd = hds[cse / 3 % 3], nh = nhs[cse % 4], n = ns[cse / 4 % 3], H = 3, kh = cse % 3;
        if (hd % (size_t)group) hd = (size_t)group * 2;
        float cap = cse % 5 == 0 ? 5.0f : 0.0f, scale = 1.0f / sqrtf((float)hd);
        size_t nw = hd * (size_t)bits / 32, ng = hd / (size_t)group;
        uint32_t *kw = malloc(n * H * nw * 4), *vw = malloc(n * H * nw * 4);
        float *sc = malloc(4 * n * H * ng * sizeof *sc), *q = malloc(nh * hd * sizeof *q);
        float *K = malloc(n * hd * sizeof *K), *V = malloc(n * hd * sizeof *V);
        float *ref = malloc(nh * hd * sizeof *ref), *out = malloc(nh * hd * sizeof *out), *scr = malloc(nh * n * 4);
        for (size_t i = 0; i < n * H * nw; i++) { kw[i] = rnd(); vw[i] = rnd(); }
        for (size_t i = 0; i < n * H * ng; i++) {
            sc[i] = frand(0.01f, 0.1f) * (8.0f / (float)((1 << bits) - 1)); sc[n * H * ng + i] = frand(-0.5f, 0.5f);
            sc[2 * n * H * ng + i] = frand(0.01f, 0.1f); sc[3 * n * H * ng + i] = frand(-0.5f, 0.5f);
        }
        for (size_t i = 0; i < nh * hd; i++) q[i] = frand(-2, 2);
        mt_kvq_span sp = {kw + kh * nw, vw + kh * nw, sc + kh * ng, sc + n * H * ng + kh * ng,
                          sc + 2 * n * H * ng + kh * ng, sc + 3 * n * H * ng + kh * ng, H * nw, H * ng, bits, group,
                          NULL, NULL};
        for (size_t j = 0; j < n; j++) {
            mt_dequantize_affine_row(K + j * hd, sp.kw + j * sp.wstride, sp.ks + j * sp.sstride, sp.kb + j * sp.sstride,
                                     MT_F32, hd, bits, group, NULL);
            mt_dequantize_affine_row(V + j * hd, sp.vw + j * sp.wstride, sp.vs + j * sp.sstride, sp.vb + j * sp.sstride,
                                     MT_F32, hd, bits, group, NULL);
        }
        for (size_t h = 0; h < nh; h++) ref_attn(q + h * hd, K, V, n, hd, scale, cap, ref + h * hd);
        for (int lv = 0; lv <= best; lv++) {
            mt_k_attn_kvq(lv, q, nh, &sp, n, hd, scale, cap, out, scr);
            double w = 0;
            for (size_t i = 0; i < nh * hd; i++) {
                double d = fabs(out[i] - ref[i]) / (1e-2 + fabs(ref[i]));
                w = d > w || d != d ? d : w;
            }
            if (w > worst[lv]) worst[lv] = w;
            CHECK_MSG(w < 1e-4, "affine kernel, path %s, bits %d group %d hd %zu heads %zu n %zu: rel diff %.3g",
                      mt_cpu_name(lv), bits, group, hd, nh, n, w);
        }
        /* turbo, on head dims that are not all powers of two */
        size_t thd = cse % 3 == 0 ? 80 : cse % 3 == 1 ? 16 : 128;
        int tb = cse % 2 ? 3 : 4;
        size_t tw = (thd * (size_t)tb + 31) / 32;
        float cb[16], sign[256];
        for (int i = 0; i < 16; i++) cb[i] = i < (1 << tb) ? -0.4f + 0.8f * (float)i / (float)((1 << tb) - 1) : 0.0f;
        for (size_t i = 0; i < thd; i++) sign[i] = rnd() & 1 ? 1.0f : -1.0f;
        float *tq = malloc(nh * thd * sizeof *tq), *tn = malloc(2 * n * H * sizeof *tn);
        uint32_t *tk = calloc(n * H * tw, 4), *tv = calloc(n * H * tw, 4);
        float *TK = malloc(n * thd * sizeof *TK), *TV = malloc(n * thd * sizeof *TV);
        float *tref = malloc(nh * thd * sizeof *tref), *tout = malloc(nh * thd * sizeof *tout);
        for (size_t i = 0; i < nh * thd; i++) tq[i] = frand(-2, 2);
        for (size_t i = 0; i < 2 * n * H; i++) tn[i] = frand(0.5f, 8.0f);
        for (size_t r = 0; r < n * H; r++)
            for (size_t i = 0; i < thd; i++) {
                mt_quant_set_code(tk + r * tw, i, tb, rnd() % (1u << tb));
                mt_quant_set_code(tv + r * tw, i, tb, rnd() % (1u << tb));
            }
        mt_kvq_span ts = {tk + kh * tw, tv + kh * tw, tn + kh, NULL, tn + n * H + kh, NULL, H * tw, H, tb, 0, cb, sign};
        for (size_t j = 0; j < n; j++) {
            turbo_deq(TK + j * thd, ts.kw + j * ts.wstride, ts.ks[j * H], cb, sign, thd, tb);
            turbo_deq(TV + j * thd, ts.vw + j * ts.wstride, ts.vs[j * H], cb, sign, thd, tb);
        }
        float ts_scale = 1.0f / sqrtf((float)thd);
        for (size_t h = 0; h < nh; h++) ref_attn(tq + h * thd, TK, TV, n, thd, ts_scale, cap, tref + h * thd);
        for (int lv = 0; lv <= best; lv++) {
            mt_k_attn_kvq(lv, tq, nh, &ts, n, thd, ts_scale, cap, tout, scr);
            double w = 0;
            for (size_t i = 0; i < nh * thd; i++) {
                double d = fabs(tout[i] - tref[i]) / (1e-2 + fabs(tref[i]));
                w = d > w || d != d ? d : w;
            }
            if (w > tworst[lv]) tworst[lv] = w;
            CHECK_MSG(w < 1e-4, "turbo kernel, path %s, bits %d hd %zu heads %zu n %zu: rel diff %.3g", mt_cpu_name(lv),
                      tb, thd, nh, n, w);
        }
        free(tq); free(tn); free(tk); free(tv); free(TK); free(TV); free(tref); free(tout);
        free(kw); free(vw); free(sc); free(q); free(K); free(V); free(ref); free(out); free(scr);
    }
    for (int lv = 0; lv <= best; lv++)
        printf("  packed attention vs dequantized reference, %s: affine max rel diff %.2e, turbo %.2e\n",
               mt_cpu_name(lv), worst[lv], tworst[lv]);
    /* the rotation: orthogonal, and unrotate its inverse */
    float x[96], y[96], sign[96];
    double n0 = 0, n1 = 0, back = 0;
    for (int i = 0; i < 96; i++) { x[i] = y[i] = frand(-1, 1); sign[i] = rnd() & 1 ? 1.0f : -1.0f; n0 += x[i] * x[i]; }
    mt_kvt_rotate(y, sign, 96);
    for (int i = 0; i < 96; i++) n1 += y[i] * y[i];
    mt_kvt_unrotate(y, sign, 96);
    for (int i = 0; i < 96; i++) back = fmax(back, fabs(y[i] - x[i]));
    CHECK_MSG(fabs(n0 - n1) < 1e-4 * n0 && back < 1e-5, "rotation: norm %g -> %g, round trip %g", n0, n1, back);
}

/* ---- the cache: API, packing, copy / trim / restore ---- */

static mt_model *load(const char *dir, mt_pool *pool) {
    mt_err e = {0};
    mt_model *m = NULL;
    CHECK_OK(mt_model_load(&m, dir, pool, &e), &e);
    return m;
}

static void test_api(mt_model *m) {
    mt_err e = {0};
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    if (!c) return;
    CHECK(mt_kvcache_set_quant(c, 7, 32, 0, &e) == MT_EINVAL);
    CHECK(mt_kvcache_set_quant(c, 4, 16, 0, &e) == MT_EINVAL);
    CHECK(mt_kvcache_set_quant(c, 4, 128, 0, &e) == MT_EINVAL);   /* head_dim 64 */
    CHECK_STR(e.msg, "--kv-group-size 128 does not divide head_dim 64");
    CHECK_OK(mt_kvcache_set_max(c, 64, 4, &e), &e);
    CHECK(mt_kvcache_set_quant(c, 4, 32, 0, &e) == MT_EINVAL);
    CHECK(strstr(e.msg, "RotatingKVCache") != NULL);
    CHECK(mt_kvcache_set_turbo(c, 3, &e) == MT_EINVAL);
    mt_kvcache_free(c);
    c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    CHECK_OK(mt_kvcache_set_quant(c, 4, 32, 0, &e), &e);
    CHECK(mt_kvcache_set_max(c, 64, 4, &e) == MT_EINVAL);
    CHECK(strstr(e.msg, "RotatingKVCache") != NULL);
    CHECK(mt_kvcache_set_turbo(c, 2, &e) == MT_EINVAL);
    CHECK_EQ_INT(mt_kvcache_qwords(c), 8);
    int32_t t = 5;
    float *lg = malloc((size_t)m->hp.vocab * sizeof *lg);
    CHECK_OK(mt_model_forward(m, c, &t, 1, lg, 0, &e), &e);
    CHECK(mt_kvcache_set_quant(c, 8, 32, 0, &e) == MT_EINVAL);   /* not empty */
    CHECK_EQ_INT(c->quantized, 1);
    /* reset: a new sequence starts with float rows again */
    mt_kvcache_reset(c);
    CHECK_EQ_INT(c->quantized, 0);
    CHECK_OK(mt_model_forward(m, c, &t, 1, lg, 0, &e), &e);
    CHECK_EQ_INT(c->quantized, 1);
    free(lg);
    mt_kvcache_free(c);
}

/* packed rows written by the cache equal mlx's quantize of the same floats; turbo's
 * reconstruction error of random unit rows */
static void test_pack(mt_model *m) {
    mt_err e = {0};
    size_t kvd = (size_t)m->hp.n_kv_heads * m->hp.head_dim, hd = (size_t)m->hp.head_dim, H = (size_t)m->hp.n_kv_heads;
    float *x = malloc(2 * kvd * sizeof *x);
    for (size_t i = 0; i < 2 * kvd; i++) x[i] = frand(-3, 3);
    for (int f16 = 0; f16 < 2; f16++) {
        mt_kvcache *c = NULL;
        CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
        CHECK_OK(mt_kvcache_set_f16(c, f16, &e), &e);
        CHECK_OK(mt_kvcache_set_quant(c, 4, 32, 0, &e), &e);
        CHECK_OK(mt_kvcache_mark_quantized(c, &e), &e);
        CHECK_OK(mt_kvcache_reserve(c, 3, &e), &e);
        mt_kv_write(c, 0, 2, x, x + kvd);
        size_t nw = mt_kvcache_qwords(c), ng = hd / 32;
        uint32_t w[64 * 16];
        uint16_t s16[64], b16[64];
        float s32[64], b32[64];
        mt_quantize_affine(w, f16 ? (void *)s16 : (void *)s32, f16 ? (void *)b16 : (void *)b32, f16 ? MT_F16 : MT_F32,
                           x + kvd, H, hd, 4, 32, 0, &e);
        if (f16) { mt_convert_to_f32(s32, s16, MT_F16, H * ng); mt_convert_to_f32(b32, b16, MT_F16, H * ng); }
        CHECK(memcmp(w, c->vq[0] + 2 * H * nw, H * nw * 4) == 0);
        CHECK(memcmp(s32, c->vs[0] + 2 * H * ng, H * ng * 4) == 0);
        CHECK(memcmp(b32, c->vb[0] + 2 * H * ng, H * ng * 4) == 0);
        int rep = 1;
        for (size_t i = 0; i < H * ng; i++) rep &= mt_round_f16(c->ks[0][2 * H * ng + i]) == c->ks[0][2 * H * ng + i];
        if (f16) CHECK_MSG(rep, "f16 cache: scales held as float16 values");
        mt_kvcache_free(c);
    }
    for (int bits = 3; bits <= 4; bits++) {
        mt_kvcache *c = NULL;
        CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
        CHECK_OK(mt_kvcache_set_turbo(c, bits, &e), &e);
        CHECK_OK(mt_kvcache_mark_quantized(c, &e), &e);
        CHECK_OK(mt_kvcache_reserve(c, 1, &e), &e);
        double mse = 0;
        int rows = 0;
        for (int it = 0; it < 200; it++) {
            for (size_t i = 0; i < 2 * kvd; i++) {   /* Gaussian-ish rows: sum of uniforms */
                x[i] = frand(-1, 1) + frand(-1, 1) + frand(-1, 1);
            }
            mt_kv_write(c, 0, 0, x, x + kvd);
            for (size_t h = 0; h < H; h++) {
                float r[256];
                turbo_deq(r, c->kq[0] + h * mt_kvcache_qwords(c), c->ks[0][h], c->tcb, c->tsign, hd, bits);
                double d = 0, nn = 0;
                for (size_t i = 0; i < hd; i++) { d += (r[i] - x[h * hd + i]) * (r[i] - x[h * hd + i]); nn += x[h * hd + i] * x[h * hd + i]; }
                mse += d / nn;
                rows++;
            }
        }
        mse /= rows;
        /* Lloyd-Max on the sphere's coordinate law: ~0.034 (3 bits) and ~0.009 (4 bits) per unit vector */
        CHECK_MSG(mse < (bits == 3 ? 0.045 : 0.013), "turbo %d-bit: relative MSE %.4f", bits, mse);
        printf("  turbo %d-bit (head_dim %zu): relative squared error of a row %.4f; codebook %.4f .. %.4f\n", bits, hd,
               mse, c->tcb[0], c->tcb[(1 << bits) - 1]);
        mt_kvcache_free(c);
    }
    free(x);
}

/* mlx-lm's generate_step: chunks of `step` until one prompt token is left, that one
 * alone, then one token per step; greedy.  first: the first step's logits (or NULL). */
static int gen_steps(mt_model *m, mt_kvcache *c, const int32_t *p, size_t L, size_t step, int N, int32_t *out,
                     float *first, mt_err *e) {
    size_t V = (size_t)m->hp.vocab, done = 0;
    float *lg = malloc(V * sizeof *lg);
    int rc = 0;
    while (!rc && L - done > 1) {
        size_t n = L - done - 1 < step ? L - done - 1 : step;
        rc = mt_model_forward(m, c, p + done, n, lg, 0, e);
        done += n;
    }
    if (!rc) rc = mt_model_forward(m, c, p + done, 1, lg, 0, e);
    if (!rc && first) memcpy(first, lg, V * sizeof *lg);
    for (int i = 0; !rc && i < N; i++) {
        out[i] = mt_argmax(lg, V);
        if (i + 1 < N) rc = mt_model_forward(m, c, &out[i], 1, lg, 0, e);
    }
    free(lg);
    return rc;
}

static void test_goldens(mt_pool *pool) {
    json_error_t je;
    json_t *g = json_load_file("tests/data/kvquant/golden.json", 0, &je);
    CHECK_MSG(g != NULL, "golden.json: %s", je.text);
    if (!g) return;
    json_t *jp = json_object_get(g, "prompt");
    size_t L = json_array_size(jp);
    int N = (int)json_integer_value(json_object_get(g, "max_tokens"));
    int32_t prompt[64], toks[64];
    for (size_t i = 0; i < L; i++) prompt[i] = (int32_t)json_integer_value(json_array_get(jp, i));
    const char *name;
    json_t *mg;
    json_object_foreach(json_object_get(g, "models"), name, mg) {
        char dir[256];
        snprintf(dir, sizeof dir, "tests/data/kvquant/%s", name);
        mt_model *m = load(dir, pool);
        if (!m) continue;
        mt_err e = {0};
        size_t V = (size_t)m->hp.vocab, ok = 0, n = 0, differ = 0;
        float *first = malloc(V * sizeof *first);
        /* no quantization: the float greedy path */
        mt_kvcache *c = NULL;
        CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
        CHECK_OK(gen_steps(m, c, prompt, L, 2048, N, toks, NULL, &e), &e);
        json_t *fg = json_object_get(mg, "greedy");
        int same = 1;
        for (int i = 0; i < N; i++) same &= toks[i] == json_integer_value(json_array_get(fg, (size_t)i));
        CHECK_MSG(same, "%s: float greedy tokens differ from mlx-lm", name);
        mt_kvcache_free(c);
        size_t ci;
        json_t *cs;
        json_array_foreach(json_object_get(mg, "cases"), ci, cs) {
            int bits = (int)json_integer_value(json_object_get(cs, "bits"));
            int group = (int)json_integer_value(json_object_get(cs, "group"));
            size_t start = (size_t)json_integer_value(json_object_get(cs, "start"));
            size_t step = (size_t)json_integer_value(json_object_get(cs, "step"));
            json_t *gt = json_object_get(cs, "greedy");
            c = NULL;
            CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
            CHECK_OK(mt_kvcache_set_quant(c, bits, group, start, &e), &e);
            int want_first = bits == 4 && group == 32 && start == 0 && step == 4;
            CHECK_OK(gen_steps(m, c, prompt, L, step, N, toks, want_first ? first : NULL, &e), &e);
            CHECK_EQ_INT(c->quantized, 1);
            int k = 0;
            while (k < N && toks[k] == json_integer_value(json_array_get(gt, (size_t)k))) k++;
            CHECK_MSG(k == N, "%s, kv_bits %d group %d start %zu step %zu: greedy tokens agree with mlx-lm for %d of %d",
                      name, bits, group, start, step, k, N);
            n++;
            ok += k == N;
            differ += json_is_true(json_object_get(cs, "differs_from_float"));
            if (want_first) {
                /* generate_step's logprobs of the first step */
                json_t *gl = json_object_get(mg, "logits");
                double mx = -INFINITY, se = 0, w = 0;
                for (size_t i = 0; i < V; i++) mx = fmax(mx, first[i]);
                for (size_t i = 0; i < V; i++) se += exp(first[i] - mx);
                double lse = mx + log(se);
                for (size_t i = 0; i < V; i++)
                    w = fmax(w, fabs(first[i] - lse - json_real_value(json_array_get(gl, i))));
                CHECK_MSG(w < 1e-4, "%s kv_bits 4 group 32: first-step logprobs differ from mlx-lm by %.3g", name, w);
                printf("  %s: first-step log-probabilities (4-bit KV, group 32, start 0, step 4) vs mlx-lm: max abs diff %.2e\n",
                       name, w);
            }
            mt_kvcache_free(c);
        }
        printf("  %s: %zu/%zu kv_bits cases give mlx-lm's %d greedy tokens (%zu of them differ from the float cache)\n",
               name, ok, n, N, differ);
        free(first);
        mt_model_free(m);
    }
    json_decref(g);
}

/* a quantized cache continued three ways after a prompt: itself, a copy (mt_kvcache_copy),
 * a restored cache (packed rows copied in as a file reader would), and itself after a
 * trim of the decoded tokens replayed: all give the same logits, bit for bit */
static void test_state(mt_model *m, int turbo) {
    mt_err e = {0};
    size_t V = (size_t)m->hp.vocab;
    int32_t p[20];
    for (int i = 0; i < 20; i++) p[i] = (int32_t)(3 + (i * 37) % 300);
    mt_kvcache *a = NULL, *b = NULL, *r = NULL;
    CHECK_OK(mt_kvcache_new(&a, m, &e), &e);
    if (turbo) CHECK_OK(mt_kvcache_set_turbo(a, 3, &e), &e);
    else CHECK_OK(mt_kvcache_set_quant(a, 4, 32, 0, &e), &e);
    float *la = malloc(4 * V * sizeof *la), *lb = la + V, *ref = lb + V;
    CHECK_OK(mt_model_forward(m, a, p, 20, la, 0, &e), &e);
    CHECK_EQ_INT(a->quantized, 1);
    size_t bytes = mt_kvcache_bytes(a);
    size_t per = turbo ? (size_t)m->hp.n_kv_heads * (mt_kvcache_qwords(a) * 4 + 4)
                       : (size_t)m->hp.n_kv_heads * (mt_kvcache_qwords(a) * 4 + 2 * 4 * (size_t)(m->hp.head_dim / 32));
    CHECK_EQ_INT(bytes, 2 * (size_t)m->hp.n_layers * 20 * per);
    CHECK_OK(mt_kvcache_copy(&b, a, &e), &e);
    /* restore: as the prompt-cache reader does */
    CHECK_OK(mt_kvcache_new(&r, m, &e), &e);
    if (turbo) CHECK_OK(mt_kvcache_set_turbo(r, 3, &e), &e);
    else CHECK_OK(mt_kvcache_set_quant(r, 4, 32, 0, &e), &e);
    CHECK_OK(mt_kvcache_mark_quantized(r, &e), &e);
    CHECK_OK(mt_kvcache_reserve(r, 20, &e), &e);
    size_t w = (size_t)m->hp.n_kv_heads * mt_kvcache_qwords(a) * 4;
    size_t ns = (size_t)m->hp.n_kv_heads * (turbo ? 1 : (size_t)(m->hp.head_dim / 32)) * sizeof(float);
    for (int l = 0; l < m->hp.n_layers; l++) {
        memcpy(r->kq[l], a->kq[l], 20 * w);
        memcpy(r->vq[l], a->vq[l], 20 * w);
        memcpy(r->ks[l], a->ks[l], 20 * ns);
        memcpy(r->vs[l], a->vs[l], 20 * ns);
        if (!turbo) {
            memcpy(r->kb[l], a->kb[l], 20 * ns);
            memcpy(r->vb[l], a->vb[l], 20 * ns);
        }
    }
    CHECK_OK(mt_kvcache_restore(r, 20, 20, 0, &e), &e);
    int32_t d[6] = {11, 200, 45, 7, 99, 150};
    int same_b = 1, same_r = 1, same_t = 1;
    for (int i = 0; i < 6; i++) {
        CHECK_OK(mt_model_forward(m, a, &d[i], 1, la, 0, &e), &e);
        CHECK_OK(mt_model_forward(m, b, &d[i], 1, lb, 0, &e), &e);
        same_b &= memcmp(la, lb, V * sizeof *la) == 0;
        CHECK_OK(mt_model_forward(m, r, &d[i], 1, lb, 0, &e), &e);
        same_r &= memcmp(la, lb, V * sizeof *la) == 0;
    }
    memcpy(ref, la, V * sizeof *la);
    CHECK_EQ_INT(mt_kvcache_trim(a, 3), 3);
    CHECK_EQ_INT(a->len, 23);
    for (int i = 3; i < 6; i++) CHECK_OK(mt_model_forward(m, a, &d[i], 1, la, 0, &e), &e);
    same_t = memcmp(la, ref, V * sizeof *la) == 0;
    CHECK_MSG(same_b, "%s: copy of a quantized cache continues differently", turbo ? "turbo" : "affine");
    CHECK_MSG(same_r, "%s: restored quantized cache continues differently", turbo ? "turbo" : "affine");
    CHECK_MSG(same_t, "%s: trimmed quantized cache replays differently", turbo ? "turbo" : "affine");
    /* a copy of a cache still float, with quantization pending */
    mt_kvcache *f = NULL, *fc = NULL;
    CHECK_OK(mt_kvcache_new(&f, m, &e), &e);
    CHECK_OK(mt_kvcache_set_quant(f, 8, 64, 30, &e), &e);
    CHECK_OK(mt_model_forward(m, f, p, 20, la, 0, &e), &e);
    CHECK_EQ_INT(f->quantized, 0);
    CHECK_OK(mt_kvcache_copy(&fc, f, &e), &e);
    CHECK_OK(mt_model_forward(m, f, p, 10, la, 0, &e), &e);
    CHECK_OK(mt_model_forward(m, fc, p, 10, lb, 0, &e), &e);
    CHECK(f->quantized == 1 && fc->quantized == 1 && memcmp(la, lb, V * sizeof *la) == 0);
    mt_kvcache_free(f);
    mt_kvcache_free(fc);
    free(la);
    mt_kvcache_free(a);
    mt_kvcache_free(b);
    mt_kvcache_free(r);
}

/* mt_model_decode_batch over a quantized, a float and a pending cache (its start reached by
 * the batch step itself) against each alone; mt_model_forward_hidden converts too */
static void test_batch(mt_model *m) {
    mt_err e = {0};
    size_t V = (size_t)m->hp.vocab;
    int32_t p[12];
    for (int i = 0; i < 12; i++) p[i] = (int32_t)(5 + i * 23);
    mt_kvcache *c[3] = {0}, *s[3] = {0};
    float *lb = malloc(3 * V * sizeof *lb), *ls = malloc(V * sizeof *ls);
    for (int k = 0; k < 3; k++) {
        CHECK_OK(mt_kvcache_new(&c[k], m, &e), &e);
        CHECK_OK(mt_kvcache_new(&s[k], m, &e), &e);
        if (k != 1) {
            CHECK_OK(mt_kvcache_set_quant(c[k], k ? 8 : 4, 32, k ? 13 : 0, &e), &e);
            CHECK_OK(mt_kvcache_set_quant(s[k], k ? 8 : 4, 32, k ? 13 : 0, &e), &e);
        }
        CHECK_OK(mt_model_forward(m, c[k], p, 12 - (size_t)k, lb, 0, &e), &e);
        CHECK_OK(mt_model_forward(m, s[k], p, 12 - (size_t)k, lb, 0, &e), &e);
    }
    CHECK(c[0]->quantized == 1 && c[1]->quantized == 0 && c[2]->quantized == 0);
    double w = 0;
    int same = 1;
    for (int step = 0; step < 3; step++) {
        int32_t t[3] = {7 + step, 70 + step, 170 + step};
        CHECK_OK(mt_model_decode_batch(m, c, t, 3, lb, &e), &e);
        for (int k = 0; k < 3; k++) {
            CHECK_OK(mt_model_forward(m, s[k], &t[k], 1, ls, 0, &e), &e);
            for (size_t i = 0; i < V; i++) w = fmax(w, fabs(lb[k * V + i] - ls[i]) / (1 + fabs(ls[i])));
            same &= mt_argmax(lb + k * V, V) == mt_argmax(ls, V);
        }
        if (step == 0) CHECK_EQ_INT(c[2]->quantized, 0);   /* len 11 + 1 = 12 < 13 */
    }
    CHECK_EQ_INT(c[2]->quantized, 1);
    CHECK_MSG(w < 1e-4 && same, "decode_batch over quantized caches: rel diff %.3g, same argmax %d", w, same);
    for (int k = 0; k < 3; k++) { mt_kvcache_free(c[k]); mt_kvcache_free(s[k]); }
    mt_kvcache *h = NULL;
    float *hid = malloc(12 * (size_t)m->hp.hidden * sizeof *hid);
    CHECK_OK(mt_kvcache_new(&h, m, &e), &e);
    CHECK_OK(mt_kvcache_set_quant(h, 4, 64, 12, &e), &e);
    CHECK_OK(mt_model_forward_hidden(m, h, p, 12, hid, &e), &e);
    CHECK_EQ_INT(h->quantized, 1);
    mt_kvcache_free(h);
    free(hid);
    free(lb);
    free(ls);
}

/* ---- quality on the bundled trained model ---- */

typedef struct { double cos_mean, cos_min; int top1, n, greedy; } quality;

/* The float cache's greedy path from the prompt (64 tokens) fed one token at a time
 * (every step attends over quantized rows), logits compared step by step with the
 * float cache's; and free-running greedy tokens identical to the float path. */
static quality measure(mt_model *m, const int32_t *p, size_t L, const int32_t *path, const float *flog, int scheme,
                       int bits, int group) {
    mt_err e = {0};
    quality q = {0, 1, 0, 0, 0};
    size_t V = (size_t)m->hp.vocab;
    float *lg = malloc(V * sizeof *lg);
    for (int run = 0; run < 2; run++) {
        mt_kvcache *c = NULL;
        CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
        if (scheme < 0) CHECK_OK(mt_kvcache_set_f16(c, 1, &e), &e);
        if (scheme == MT_KVQ_TURBO) CHECK_OK(mt_kvcache_set_turbo(c, bits, &e), &e);
        else if (scheme == MT_KVQ_AFFINE) CHECK_OK(mt_kvcache_set_quant(c, bits, group, 0, &e), &e);
        for (size_t i = 0; i < L; i++) CHECK_OK(mt_model_forward(m, c, &p[i], 1, lg, 0, &e), &e);
        for (int s = 0; s < 64; s++) {
            int32_t t = mt_argmax(lg, V);
            if (run == 0) {
                const float *f = flog + (size_t)s * V;
                double ab = 0, aa = 0, bb = 0;
                for (size_t i = 0; i < V; i++) { ab += (double)lg[i] * f[i]; aa += (double)lg[i] * lg[i]; bb += (double)f[i] * f[i]; }
                double cs = ab / sqrt(aa * bb);
                q.cos_mean += cs;
                q.cos_min = fmin(q.cos_min, cs);
                q.top1 += t == path[s];
                q.n++;
                t = path[s];   /* teacher-forced along the float path */
            } else {
                if (t != path[s]) break;
                q.greedy++;
            }
            CHECK_OK(mt_model_forward(m, c, &t, 1, lg, 0, &e), &e);
        }
        mt_kvcache_free(c);
    }
    q.cos_mean /= q.n;
    free(lg);
    return q;
}

static void test_quality(mt_pool *pool) {
    mt_model *m = load("models/tinydocs-5m-4bit", pool);
    if (!m) return;
    mt_err e = {0};
    mt_tokenizer *tk = NULL;
    CHECK_OK(mt_tokenizer_load(&tk, "models/tinydocs-5m-4bit/tokenizer.json", &e), &e);
    const char *text =
        "The Debian package management system keeps track of the software installed on the computer. "
        "To install a new package, run apt install followed by the name of the package. The command "
        "downloads the package and its dependencies from the archive, checks their signatures, and then "
        "unpacks and configures them. Configuration files under /etc are never overwritten without asking";
    int32_t *p = NULL;
    size_t L = 0;
    if (tk) CHECK_OK(mt_tokenizer_encode(tk, text, strlen(text), 1, &p, &L, &e), &e);
    if (!p) { mt_tokenizer_free(tk); mt_model_free(m); return; }
    size_t V = (size_t)m->hp.vocab;
    float *flog = malloc(64 * V * sizeof *flog), *lg = malloc(V * sizeof *lg);
    int32_t path[64];
    mt_kvcache *c = NULL;
    CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
    for (size_t i = 0; i < L; i++) CHECK_OK(mt_model_forward(m, c, &p[i], 1, lg, 0, &e), &e);
    for (int s = 0; s < 64; s++) {
        memcpy(flog + (size_t)s * V, lg, V * sizeof *lg);
        path[s] = mt_argmax(lg, V);
        CHECK_OK(mt_model_forward(m, c, &path[s], 1, lg, 0, &e), &e);
    }
    mt_kvcache_free(c);
    static const struct { int scheme, bits, group; const char *name; double cos_min; } S[] = {
        {-1, 16, 0, "float16 cache", 0.9999},
        {MT_KVQ_AFFINE, 8, 64, "affine 8-bit g64", 0.999},
        {MT_KVQ_AFFINE, 4, 64, "affine 4-bit g64", 0.95},
        {MT_KVQ_AFFINE, 4, 32, "affine 4-bit g32", 0.95},
        {MT_KVQ_AFFINE, 3, 64, "affine 3-bit g64", 0.8},
        {MT_KVQ_AFFINE, 3, 32, "affine 3-bit g32", 0.8},
        {MT_KVQ_TURBO, 4, 0, "turbo 4-bit", 0.95},
        {MT_KVQ_TURBO, 3, 0, "turbo 3-bit", 0.9},
    };
    printf("  tinydocs-5m-4bit, %zu-token prompt + 64 tokens one at a time, vs the float32 cache:\n", L);
    for (size_t i = 0; i < sizeof S / sizeof *S; i++) {
        quality q = measure(m, p, L, path, flog, S[i].scheme, S[i].bits, S[i].group);
        printf("    %-17s logits cosine mean %.5f min %.5f, top-1 agreement %d/%d, free-running greedy %d/64\n",
               S[i].name, q.cos_mean, q.cos_min, q.top1, q.n, q.greedy);
        CHECK_MSG(q.cos_min >= S[i].cos_min, "%s: min logits cosine %.4f", S[i].name, q.cos_min);
    }
    free(flog);
    free(lg);
    free(p);
    mt_tokenizer_free(tk);
    mt_model_free(m);
}

int main(void) {
    mt_err e = {0};
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    mt_blas_threads(1);
    test_kernels();
    mt_model *m = load("tests/data/kvquant/llama-hd64", pool);
    if (m) {
        test_api(m);
        test_pack(m);
        test_state(m, 0);
        test_state(m, 1);
        test_batch(m);
        mt_model_free(m);
    }
    test_goldens(pool);
    test_quality(pool);
    mt_pool_free(pool);
    return check_report("kvquant");
}
