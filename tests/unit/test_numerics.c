/* test_numerics.c - mlx's numerics (mt_model_set_numerics MT_NUMERICS_MLX, mlx-gen
 * --numerics mlx) against mlx-lm on mlx's CPU backend (tests/gen/gen_numerics_goldens.py,
 * tests/data/numerics/goldens.json):
 *   ops    tensor/mlxnum.c and mt_linear_forward_mlx, bit for bit, on mlx's own outputs
 *   tiny   the bfloat16 / float16 forms, plain and 4-bit, of every tiny fixture family
 *          (converted here by the library; the bytes are mlx_lm.convert's): with MLX
 *          numerics every greedy run token-identical and every last-position logit vector
 *          bit-identical; the float32 numerics (the default) measured against the same
 *          goldens: identical runs and logit error printed, not required
 *   real   models/tinydocs-22m-4bit (trained, bfloat16 scales), the same
 *   f32    a float32 model: the mode changes nothing (bit for bit) */
#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include "check.h"
#include "convert/convert.h"
#include "core/file.h"
#include "gen/generate.h"
#include "models/model.h"
#include "tensor/linear.h"
#include "tensor/mlxnum.h"
#include "text/tokenizer.h"

#define GOLDENS "tests/data/numerics/goldens.json"

/* ---- golden data ---- */

static unsigned char *b64(const char *s, size_t *n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = s ? strlen(s) : 0, o = 0;
    unsigned char *out = malloc(len / 4 * 3 + 3);
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; out && i < len && s[i] != '='; i++) {
        const char *p = strchr(tab, s[i]);
        if (!p) continue;
        acc = acc << 6 | (uint32_t)(p - tab);
        bits += 6;
        if (bits >= 8) { bits -= 8; out[o++] = (unsigned char)(acc >> bits); }
    }
    *n = o;
    return out;
}

/* a base64 field as float32 values: 16-bit words of type t, or float32 words (t = F32) */
static float *field(json_t *o, const char *key, mt_dtype t, size_t *n) {
    size_t nb = 0;
    unsigned char *raw = b64(json_string_value(json_object_get(o, key)), &nb);
    size_t es = mt_dtype_size(t);
    *n = nb / es;
    float *f = malloc((*n ? *n : 1) * sizeof *f);
    if (raw && f) mt_convert_to_f32(f, raw, t, *n);
    free(raw);
    return f;
}

static void *rawfield(json_t *o, const char *key, size_t *nb) {
    return b64(json_string_value(json_object_get(o, key)), nb);
}

/* number of values of a and b whose bits differ (both floats of one type's values) */
static size_t ndiff(const float *a, const float *b, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += memcmp(&a[i], &b[i], 4) != 0;
    return d;
}

static uint64_t fnv_words(const float *x, size_t n, mt_dtype t) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        uint16_t w = t == MT_BF16 ? mt_f32_to_bf16(x[i]) : mt_f32_to_f16(x[i]);
        unsigned char b[2] = {(unsigned char)(w & 0xff), (unsigned char)(w >> 8)};
        for (int k = 0; k < 2; k++) h = (h ^ b[k]) * 0x100000001b3ull;
    }
    return h;
}

static uint64_t fnv_file(const char *path) {
    FILE *f = fopen(path, "rb");
    uint64_t h = 0xcbf29ce484222325ull;
    int c;
    while (f && (c = getc(f)) != EOF) h = (h ^ (unsigned char)c) * 0x100000001b3ull;
    if (f) fclose(f);
    return h;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void rmtree(const char *dir) { nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

/* ---- ops ---- */

static void test_ops(json_t *g) {
    json_t *o32 = json_object_get(json_object_get(g, "ops"), "f32");
    size_t n, nt, ne;
    float *x = field(o32, "x", MT_F32, &n), *t = field(o32, "t", MT_F32, &nt);
    float *e = field(o32, "exp", MT_F32, &ne), *got = malloc(n * sizeof *got);
    for (size_t i = 0; i < n; i++) got[i] = mt_mlx_exp(x[i]);
    CHECK_MSG(ndiff(got, e, n) == 0, "mt_mlx_exp: %zu of %zu differ from mx.exp", ndiff(got, e, n), n);
    free(e);
    const char *names[3] = {"sin", "cos", "erf"};
    for (int k = 0; k < 3; k++) {
        e = field(o32, names[k], MT_F32, &ne);
        for (size_t i = 0; i < n; i++)
            got[i] = k == 0 ? mt_mlx_sin(t[i]) : k == 1 ? mt_mlx_cos(t[i]) : mt_mlx_erf(x[i] / 4);
        CHECK_MSG(ndiff(got, e, n) == 0, "mt_mlx_%s: %zu of %zu differ from mx.%s", names[k], ndiff(got, e, n), n, names[k]);
        if (k == 0) {   /* the vectorized sine: the same values, in place too */
            float *v = malloc(n * sizeof *v);
            mt_mlx_sin_n(t, v, n);
            CHECK_MSG(ndiff(v, e, n) == 0, "mt_mlx_sin_n: %zu of %zu differ from mx.sin", ndiff(v, e, n), n);
            memcpy(v, t, n * sizeof *v);
            mt_mlx_sin_n(v, v, n);
            CHECK_MSG(ndiff(v, e, n) == 0, "mt_mlx_sin_n in place: %zu of %zu differ", ndiff(v, e, n), n);
            free(v);
        }
        free(e);
    }
    {   /* against the scalar one over a sweep of 2^20 arguments from 1e-6 to 1e9, both signs */
        size_t m = 1u << 20, bad = 0;
        float *a = malloc(m * sizeof *a), *b = malloc(m * sizeof *b);
        for (size_t i = 0; i < m; i++) a[i] = (float)((i & 1 ? -1.0 : 1.0) * 1e-6 * pow(1e15, (double)i / (double)m));
        a[0] = 0.0f; a[2] = -0.0f; a[4] = 8388608.0f; a[6] = 8388609.0f; a[8] = NAN; a[10] = INFINITY;
        mt_mlx_sin_n(a, b, m);
        for (size_t i = 0; i < m; i++) {
            float r = mt_mlx_sin(a[i]);
            bad += memcmp(&r, &b[i], 4) != 0 && !(isnan(r) && isnan(b[i]));
        }
        CHECK_MSG(bad == 0, "mt_mlx_sin_n: %zu of %zu differ from mt_mlx_sin", bad, m);
        free(a); free(b);
    }
    free(x); free(t); free(got);

    const char *dts[2] = {"bfloat16", "float16"};
    for (int di = 0; di < 2; di++) {
        mt_dtype dt = di ? MT_F16 : MT_BF16;
        json_t *o = json_object_get(json_object_get(g, "ops"), dts[di]);
        size_t nx, nu, nw, nb, ns;
        float *X = field(o, "x", dt, &nx), *U = field(o, "u", dt, &nu), *W = field(o, "w", dt, &nw);
        float *B = field(o, "b", dt, &nb), *S = field(o, "s", dt, &ns);
        float *y = malloc(nx * sizeof *y);
        size_t bad = 0;
#define CMP(key, len) do { size_t ne_; float *want_ = field(o, key, dt, &ne_); \
        size_t d_ = ne_ == (len) ? ndiff(y, want_, len) : (len); \
        CHECK_MSG(d_ == 0, "%s %s: %zu of %zu values differ from mlx", dts[di], key, d_, (size_t)(len)); \
        bad += d_; free(want_); } while (0)
        memcpy(y, X, nx * 4); mt_mlx_silu(y, nx, dt); CMP("silu", nx);
        memcpy(y, X, nx * 4); mt_mlx_swiglu(y, U, nx, dt); CMP("swiglu", nx);
        memcpy(y, X, nx * 4); mt_mlx_gelu(y, nx, dt); CMP("gelu", nx);
        memcpy(y, X, nx * 4); mt_mlx_gelu_approx(y, nx, dt); CMP("gelu_approx", nx);
        memcpy(y, X, nx * 4); mt_mlx_tanh(y, nx, dt); CMP("tanh", nx);
        for (size_t r = 0; r < nx / nw; r++) mt_mlx_rmsnorm(y + r * nw, X + r * nw, W, nw, 1e-5f, dt);
        CMP("rms_norm", nx);
        for (size_t r = 0; r < nx / nw; r++) mt_mlx_layernorm(y + r * nw, X + r * nw, W, B, nw, 1e-5f, dt);
        CMP("layer_norm", nx);
        memcpy(y, S, ns * 4);
        for (size_t r = 0; r < ns / 37; r++) mt_mlx_softmax(y + r * 37, 37, dt);
        CMP("softmax", ns);
        for (size_t r = 0; r < ns / 37; r++) y[r] = mt_mlx_logsumexp(S + r * 37, 37, dt);
        CMP("logsumexp", ns / 37);
        /* rope on [1, 4 heads, 7 positions, 16]: per position, the 4 heads' rows */
        size_t nr;
        float *Rr = field(o, "r", dt, &nr), inv[8], row[64];
        const char *rk[3] = {"rope", "rope_trad", "rope_freqs"};
        for (int v = 0; v < 3; v++) {
            if (v < 2) mt_mlx_rope_inv_freq(inv, 16, 10000.0f);
            else {
                const float fr[8] = {1, 1.5f, 2, 3, 4, 5, 6, 8};
                for (int i = 0; i < 8; i++) inv[i] = 1.0f / (fr[i] * 10.0f);
            }
            for (size_t p = 0; p < 7; p++) {
                for (size_t h = 0; h < 4; h++) memcpy(row + h * 16, Rr + (h * 7 + p) * 16, 64);
                float pos = v == 0 ? (float)(p + 37) * 0.5f : v == 1 ? (float)(p + 3) : (float)(p + 100);
                mt_mlx_rope(row, 4, 16, 16, inv, pos, v == 1, dt);
                for (size_t h = 0; h < 4; h++) memcpy(y + (h * 7 + p) * 16, row + h * 16, 64);
            }
            CMP(rk[v], nr);
        }
        free(Rr);
        /* sdpa: q [1,4,5,16], k/v [1,2,12,16], causal (query i sees keys <= i + 7) */
        size_t nq, nk, nv;
        unsigned char *K = rawfield(o, "k", &nk), *V = rawfield(o, "v", &nv);
        float *Q = field(o, "q", dt, &nq), scratch[64];
        for (size_t h = 0; h < 4; h++)
            for (size_t i = 0; i < 5; i++)
                mt_mlx_attn_head(Q + (h * 5 + i) * 16, K + (h / 2) * 12 * 16 * 2, V + (h / 2) * 12 * 16 * 2, dt, 16,
                                 i + 8, 16, 1.0f / sqrtf(24.0f), 0, NULL, dt, y + (h * 5 + i) * 16, scratch);
        CMP("sdpa", nq);
        free(Q); free(K); free(V);
        /* products */
        size_t nwd, nbd, nxq, nwq, nsq, nbq;
        unsigned char *WD = rawfield(o, "wd", &nwd), *BD = rawfield(o, "bd", &nbd), *WQ = rawfield(o, "wq", &nwq);
        unsigned char *SQ = rawfield(o, "sq", &nsq), *BQ = rawfield(o, "bq", &nbq);
        float *XQ = field(o, "xq", dt, &nxq), *work = malloc(MT_LINEAR_MLX_WORK(128) * sizeof *work);
        mt_linear ld = {.out = 40, .in = 96, .wdt = dt, .w = WD};
        mt_linear_forward_mlx(&ld, X, 8, y, dt, work, NULL);
        CMP("matmul", 8 * 40);
        ld.bias = BD;
        ld.bdt = dt;
        mt_linear_forward_mlx(&ld, X, 8, y, dt, work, NULL);
        CMP("addmm", 8 * 40);
        mt_linear lq = {.out = 40, .in = 128, .quantized = 1, .w = WQ, .scales = SQ, .biases = BQ, .sdt = dt, .bits = 4,
                        .group_size = 64};
        mt_linear_forward_mlx(&lq, XQ, 3, y, dt, work, NULL);
        CMP("qmm", 3 * 40);
#undef CMP
        printf("  ops %-8s: %s\n", dts[di], bad ? "DIFFER from mlx" : "bit-identical to mlx (16 ops)");
        free(WD); free(BD); free(WQ); free(SQ); free(BQ); free(XQ); free(work);
        free(X); free(U); free(W); free(B); free(S); free(y);
    }
}

/* ---- models ---- */

typedef struct tally {
    size_t runs, same_tokens, logits, same_logits, nlog;
    double maxabs;         /* worst |logit - mlx-lm's| over the recorded logit vectors */
    double refabs;         /* worst |logit - float32 reference| (the same weights in float32) */
    double refmax;         /* largest |reference logit| */
    double refrel;         /* worst refabs / refmax of one model */
    uint64_t tokhash[16];  /* per run: FNV-1a of the greedy ids */
} tally;

static void tally_add(tally *to, const tally *a) {
    to->runs += a->runs; to->same_tokens += a->same_tokens; to->logits += a->logits;
    to->same_logits += a->same_logits; to->nlog += a->nlog;
    if (a->maxabs > to->maxabs) to->maxabs = a->maxabs;
    if (a->refabs > to->refabs) to->refabs = a->refabs;
    if (a->refmax > to->refmax) to->refmax = a->refmax;
    if (a->refmax > 0 && a->refabs / a->refmax > to->refrel) to->refrel = a->refabs / a->refmax;
}

/* One model against its runs, in numerics mode `num` with the KV cache kv_f16 (-1: the default,
 * mt_model_kv_f16): greedy tokens and last-position logits. */
static void run_model(mt_model *m, const mt_tokenizer *tok, json_t *runs, int num, int kv_f16, const char *label,
                      tally *ta) {
    mt_err e = {0};
    CHECK_OK(mt_model_set_numerics(m, num, &e), &e);
    mt_dtype dt = m->act_dt;
    size_t V = (size_t)m->hp.vocab, ri;
    json_t *r;
    float *lg = malloc(64 * V * sizeof *lg);
    json_array_foreach(runs, ri, r) {
        json_t *jp = json_object_get(r, "prompt"), *jt = json_object_get(r, "tokens");
        size_t T = json_array_size(jp);
        int32_t prompt[64];
        for (size_t i = 0; i < T && i < 64; i++) prompt[i] = (int32_t)json_integer_value(json_array_get(jp, i));
        /* the whole prompt in one call, as model(prompt) */
        mt_kvcache *c = NULL;
        CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
        if (kv_f16 > 0 || (kv_f16 < 0 && mt_model_kv_f16(m))) CHECK_OK(mt_kvcache_set_f16(c, 1, &e), &e);
        CHECK_OK(mt_model_forward(m, c, prompt, T, lg, 0, &e), &e);
        mt_kvcache_free(c);
        char hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv_words(lg, V, dt));
        int same_l = !strcmp(hex, json_string_value(json_object_get(r, "fnv")));
        ta->logits++;
        ta->same_logits += same_l;
        if (num == MT_NUMERICS_MLX) CHECK_MSG(same_l, "%s: prompt %zu: last-position logits differ from mlx-lm's", label, ri);
        if (json_object_get(r, "logits")) {
            size_t n;
            float *want = field(r, "logits", dt, &n);
            for (size_t v = 0; v < n && v < V; v++) {
                double d = fabs((double)lg[v] - want[v]);
                if (d > ta->maxabs) ta->maxabs = d;
            }
            ta->nlog++;
            free(want);
        }
        if (json_object_get(r, "ref")) {
            size_t n;
            float *ref = field(r, "ref", MT_F32, &n);
            for (size_t v = 0; v < n && v < V; v++) {
                double d = fabs((double)lg[v] - ref[v]);
                if (d > ta->refabs) ta->refabs = d;
                if (fabs(ref[v]) > ta->refmax) ta->refmax = fabs(ref[v]);
            }
            free(ref);
        }
        /* greedy, as mlx_lm.generate: no stop at EOS */
        mt_gen_params gp;
        mt_gen_params_default(&gp);
        gp.max_tokens = (int)json_array_size(jt);
        gp.kv_f16 = kv_f16;
        mt_gen_result res;
        int rc = mt_generate(m, tok, prompt, T, &gp, NULL, NULL, &res, &e);
        CHECK_MSG(rc == 0, "%s: %s", label, e.msg);
        if (rc) continue;
        int same = res.n_tokens == json_array_size(jt);
        for (size_t i = 0; same && i < res.n_tokens; i++) same = res.tokens[i] == json_integer_value(json_array_get(jt, i));
        uint64_t h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < res.n_tokens; i++) h = (h ^ (uint64_t)(uint32_t)res.tokens[i]) * 0x100000001b3ull;
        if (ri < 16) ta->tokhash[ri] = h;
        ta->runs++;
        ta->same_tokens += same;
        if (num == MT_NUMERICS_MLX) CHECK_MSG(same, "%s: prompt %zu: greedy tokens differ from mlx-lm's", label, ri);
        mt_gen_result_free(&res);
    }
    free(lg);
    CHECK_OK(mt_model_set_numerics(m, MT_NUMERICS_F32, &e), &e);
}

/* The float16 KV cache's effect (the default for 16-bit models with f32 numerics): the
 * logits of every position of `prompt`, float16 cache against float32, as the worst
 * |a - b| / (1 + |a|) and the worst |a - b| over the largest |a|. */
typedef struct kvfx { double rel, scaled; } kvfx;

static kvfx kv_effect(mt_model *m, const int32_t *prompt, size_t T) {
    mt_err e = {0};
    size_t V = (size_t)m->hp.vocab;
    float *a = malloc(2 * T * V * sizeof *a), *b = a + T * V;
    kvfx fx = {0, 0};
    for (int k = 0; k < 2; k++) {
        mt_kvcache *c = NULL;
        CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
        if (k) CHECK_OK(mt_kvcache_set_f16(c, 1, &e), &e);
        CHECK_OK(mt_model_forward(m, c, prompt, T, k ? b : a, 1, &e), &e);
        mt_kvcache_free(c);
    }
    double big = 0, worst = 0;
    for (size_t i = 0; i < T * V; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d / (1 + fabs(a[i])) > fx.rel) fx.rel = d / (1 + fabs(a[i]));
        if (d > worst) worst = d;
        if (fabs(a[i]) > big) big = fabs(a[i]);
    }
    fx.scaled = big > 0 ? worst / big : 0;
    free(a);
    return fx;
}

typedef struct totals {
    tally f32, f32kv32, mlx;   /* f32 numerics (default f16 KV), f32 numerics + f32 KV, mlx numerics */
    kvfx kv;                   /* the worst f16-KV effect */
    size_t kv_same, kv_runs;   /* greedy runs the f16 cache leaves unchanged (f32 numerics) */
    size_t rot_same, rot_runs; /* mlx numerics with a rotating cache (max_kv_size) */
} totals;

/* Runs one 16-bit model in the three configurations and prints its line. */
static kvfx one_model(mt_model *m, const mt_tokenizer *tok, json_t *runs, const char *label, totals *tt) {
    tally a = {0}, a2 = {0}, b = {0};
    run_model(m, tok, runs, MT_NUMERICS_F32, -1, label, &a);
    run_model(m, tok, runs, MT_NUMERICS_F32, 0, label, &a2);
    run_model(m, tok, runs, MT_NUMERICS_MLX, -1, label, &b);
    int32_t p[200];   /* as test_model's test_kv_f16: 200 ids spread over the vocabulary */
    for (size_t i = 0; i < 200; i++) p[i] = (int32_t)(3 + (i * 7919u + 13u) % (size_t)(m->hp.vocab - 3));
    kvfx fx = kv_effect(m, p, 200);
    for (size_t i = 0; i < a.runs && i < 16; i++) tt->kv_same += a.tokhash[i] == a2.tokhash[i];
    tt->kv_runs += a.runs < 16 ? a.runs : 16;
    printf("  %-28s f32: %zu/%zu runs (f32 KV %zu), |dlogit| max %.3g vs mlx-lm, %.2g vs ref (f32 KV %.2g);  "
           "mlx: %zu/%zu runs, %zu/%zu exact, %.3g vs ref;  f16 KV: %.2g rel\n",
           label, a.same_tokens, a.runs, a2.same_tokens, a.maxabs, a.refabs, a2.refabs, b.same_tokens, b.runs,
           b.same_logits, b.logits, b.refabs, fx.rel);
    tally_add(&tt->f32, &a);
    tally_add(&tt->f32kv32, &a2);
    tally_add(&tt->mlx, &b);
    if (fx.rel > tt->kv.rel) tt->kv.rel = fx.rel;
    if (fx.scaled > tt->kv.scaled) tt->kv.scaled = fx.scaled;
    return fx;
}

static void test_tiny(json_t *g, mt_pool *pool, totals *tt) {
    char tmpl[] = "/tmp/mt_numerics_XXXXXX";
    char *root = mkdtemp(tmpl);
    CHECK(root != NULL);
    if (!root) return;
    size_t i;
    json_t *ent;
    json_array_foreach(json_object_get(g, "tiny"), i, ent) {
        const char *name = json_string_value(json_object_get(ent, "name"));
        const char *dtype = json_string_value(json_object_get(ent, "dtype"));
        int bits = (int)json_integer_value(json_object_get(ent, "bits"));
        char src[256], dst[512], label[160];
        snprintf(src, sizeof src, "tests/data/models/%s", name);
        snprintf(dst, sizeof dst, "%s/%s-%s-%d", root, name, dtype, bits);
        snprintf(label, sizeof label, "%s %s%s", name, dtype, bits ? " 4-bit" : "");
        json_t *merr = json_object_get(ent, "mlx_error");
        if (merr) {   /* mlx-lm cannot run this form (dense 16-bit experts): nothing to compare */
            printf("  %-28s mlx-lm: %s\n", label, json_string_value(merr));
            continue;
        }
        mt_err e = {0};
        mt_convert_opts o = {.src = src, .dst = dst, .dtype = dtype, .quantize = bits > 0, .bits = bits,
                             .group_size = 64, .threads = 1};
        int rc = mt_convert(&o, &e);
        CHECK_MSG(rc == 0, "%s: convert: %s", label, e.msg);
        if (rc) continue;
        char *stp = mt_path_join(dst, "model.safetensors"), hex[17];
        snprintf(hex, sizeof hex, "%016llx", (unsigned long long)fnv_file(stp));
        free(stp);
        CHECK_MSG(!strcmp(hex, json_string_value(json_object_get(ent, "st_fnv"))),
                  "%s: the converted weights are not mlx_lm.convert's", label);
        mt_model *m = NULL;
        mt_tokenizer *tok = NULL;
        char *tp = mt_path_join(dst, "tokenizer.json");
        CHECK_OK(mt_model_load(&m, dst, pool, &e), &e);
        CHECK_OK(mt_tokenizer_load(&tok, tp, &e), &e);
        free(tp);
        if (m && tok) one_model(m, tok, json_object_get(ent, "runs"), label, tt);
        json_t *rot = json_object_get(ent, "rotating"), *r;
        size_t ri;
        if (m && tok) CHECK_OK(mt_model_set_numerics(m, MT_NUMERICS_MLX, &e), &e);
        json_array_foreach(rot, ri, r) {   /* --max-kv-size: mlx-lm's RotatingKVCache, wrapped */
            json_t *jp = json_object_get(r, "prompt"), *jt = json_object_get(r, "tokens");
            int32_t prompt[64];
            size_t T = json_array_size(jp);
            for (size_t k = 0; k < T && k < 64; k++) prompt[k] = (int32_t)json_integer_value(json_array_get(jp, k));
            mt_gen_params gp;
            mt_gen_params_default(&gp);
            gp.max_tokens = (int)json_array_size(jt);
            gp.max_kv_size = (int)json_integer_value(json_object_get(r, "max_kv_size"));
            mt_gen_result res;
            int rc2 = m && tok ? mt_generate(m, tok, prompt, T, &gp, NULL, NULL, &res, &e) : -1;
            CHECK_MSG(rc2 == 0, "%s: %s", label, e.msg);
            if (rc2) continue;
            int same = res.n_tokens == json_array_size(jt);
            for (size_t k = 0; same && k < res.n_tokens; k++) same = res.tokens[k] == json_integer_value(json_array_get(jt, k));
            CHECK_MSG(same, "%s: max_kv_size %d, prompt %zu: greedy tokens differ from mlx-lm's", label, gp.max_kv_size, ri / 2);
            tt->rot_same += same;
            tt->rot_runs++;
            mt_gen_result_free(&res);
        }
        mt_tokenizer_free(tok);
        mt_model_free(m);
        rmtree(dst);
    }
    rmdir(root);
}

static void test_real(json_t *g, mt_pool *pool, totals *tt) {
    size_t i;
    json_t *ent;
    json_array_foreach(json_object_get(g, "real"), i, ent) {
        const char *dir = json_string_value(json_object_get(ent, "path")), *name = strrchr(dir, '/') + 1;
        mt_err e = {0};
        mt_model *m = NULL;
        mt_tokenizer *tok = NULL;
        char *tp = mt_path_join(dir, "tokenizer.json");
        CHECK_OK(mt_model_load(&m, dir, pool, &e), &e);
        CHECK_OK(mt_tokenizer_load(&tok, tp, &e), &e);
        free(tp);
        if (m && tok) {
            kvfx fx = one_model(m, tok, json_object_get(ent, "runs"), name, tt);
            if (!strcmp(name, "tinydocs-22m-4bit"))   /* mlx-gen(1), --kv-type: 0.46% */
                CHECK_MSG(fx.rel < 0.005, "tinydocs-22m-4bit: the f16 KV cache moves logits by %.3g", fx.rel);
        }
        mt_tokenizer_free(tok);
        mt_model_free(m);
    }
}

/* a float32 model: MLX numerics change nothing */
static void test_f32_model(mt_pool *pool) {
    mt_err e = {0};
    mt_model *m = NULL;
    CHECK_OK(mt_model_load(&m, "tests/data/models/qwen3-tiny-4bit", pool, &e), &e);
    if (!m) return;
    CHECK(m->act_dt == MT_F32 || m->numerics == MT_NUMERICS_F32);
    int32_t p[9] = {1, 17, 200, 45, 99, 3, 250, 7, 128};
    size_t V = (size_t)m->hp.vocab;
    float *a = malloc(2 * 9 * V * sizeof *a), *b = a + 9 * V;
    for (int k = 0; k < 2; k++) {
        CHECK_OK(mt_model_set_numerics(m, k ? MT_NUMERICS_MLX : MT_NUMERICS_F32, &e), &e);
        CHECK(!mt_model_mlx(m) && mt_model_logits_dtype(m) == MT_F32);
        mt_kvcache *c = NULL;
        CHECK_OK(mt_kvcache_new(&c, m, &e), &e);
        CHECK_OK(mt_model_forward(m, c, p, 9, k ? b : a, 1, &e), &e);
        mt_kvcache_free(c);
    }
    CHECK_MSG(memcmp(a, b, 9 * V * sizeof *a) == 0, "a float32 model's logits change with --numerics mlx");
    CHECK(mt_numerics_parse("mlx") == MT_NUMERICS_MLX && mt_numerics_parse("f32") == MT_NUMERICS_F32 &&
          mt_numerics_parse("bf16") < 0 && mt_numerics_parse(NULL) < 0);
    free(a);
    mt_model_free(m);
}

int main(void) {
    json_error_t je;
    json_t *g = json_load_file(GOLDENS, 0, &je);
    CHECK_MSG(g != NULL, "%s: %s", GOLDENS, je.text);
    if (!g) return check_report("test_numerics");
    json_t *ver = json_object_get(g, "versions");
    printf("  goldens: mlx %s, mlx-lm %s\n", json_string_value(json_object_get(ver, "mlx")),
           json_string_value(json_object_get(ver, "mlx_lm")));
    mt_err e = {0};
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    test_ops(g);
    test_f32_model(pool);
    totals tiny = {0}, real = {0};
    test_tiny(g, pool, &tiny);
    test_real(g, pool, &real);
    for (int k = 0; k < 2; k++) {
        totals *t = k ? &real : &tiny;
        const char *what = k ? "committed 16-bit models" : "tiny 16-bit models";
        printf("  %s, greedy runs token-identical to mlx-lm: f32 numerics %zu/%zu (f32 KV cache %zu/%zu), mlx "
               "numerics %zu/%zu (logit vectors bit-identical %zu/%zu)\n", what, t->f32.same_tokens, t->f32.runs,
               t->f32kv32.same_tokens, t->f32kv32.runs, t->mlx.same_tokens, t->mlx.runs, t->mlx.same_logits,
               t->mlx.logits);
        printf("  %s, worst |logit - float32 reference| (over the largest |logit| of the model): f32 numerics "
               "%.3g (%.2g), with a float32 KV cache %.3g (%.2g); mlx numerics = mlx-lm %.3g (%.2g); "
               "f32 numerics vs mlx-lm %.3g\n", what, t->f32.refabs, t->f32.refrel, t->f32kv32.refabs,
               t->f32kv32.refrel, t->mlx.refabs, t->mlx.refrel, t->f32.maxabs);
        printf("  %s, float16 KV cache against float32 (f32 numerics, 200 tokens): worst |d|/(1+|l|) %.3g, worst "
               "|d|/max|l| %.3g; greedy runs unchanged %zu/%zu\n", what, t->kv.rel, t->kv.scaled, t->kv_same,
               t->kv_runs);
    }
    /* what mlx-gen(1) states (NUMERICS, --kv-type), with room for other CPUs' float32 sums */
    CHECK(tiny.mlx.runs >= 248 && tiny.mlx.same_tokens == tiny.mlx.runs && tiny.mlx.same_logits == tiny.mlx.logits);
    printf("  mlx numerics with --max-kv-size (a wrapped RotatingKVCache): %zu/%zu greedy runs identical to mlx-lm\n",
           tiny.rot_same, tiny.rot_runs);
    CHECK(tiny.rot_runs == 24 && tiny.rot_same == tiny.rot_runs);
    CHECK(real.mlx.runs == 12 && real.mlx.same_tokens == real.mlx.runs && real.mlx.same_logits == real.mlx.logits);
    CHECK_MSG(tiny.f32.same_tokens < tiny.f32.runs, "f32 numerics gave mlx-lm's tokens everywhere");
    CHECK_MSG(tiny.f32kv32.refrel < 2e-5 && real.f32kv32.refrel < 2e-5, "f32 numerics: %.3g, %.3g of the largest logit "
              "from the float32 reference", tiny.f32kv32.refrel, real.f32kv32.refrel);
    CHECK_MSG(tiny.f32.refrel < 5e-3 && real.f32.refrel < 1e-3, "f32 numerics, f16 KV: %.3g, %.3g", tiny.f32.refrel,
              real.f32.refrel);
    CHECK_MSG(tiny.mlx.refabs > 10 * tiny.f32.refabs && real.mlx.refabs > 10 * real.f32.refabs,
              "mlx numerics are not the less accurate");
    CHECK_MSG(tiny.kv.scaled < 0.025 && real.kv.rel < 0.02, "f16 KV: %.3g of the largest logit, %.3g", tiny.kv.scaled,
              real.kv.rel);
    mt_pool_free(pool);
    json_decref(g);
    return check_report("test_numerics");
}
