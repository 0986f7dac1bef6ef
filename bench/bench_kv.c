/* bench_kv.c - benchmarks of saved and quantized KV state (issue "mlx-kvpack and
 * prompt caches"), one JSON line per measurement, for bench/kv.sh:
 *
 *   bench_kv ttft   MODEL [threads=2] [prefix=2000] [suffix=20] [rounds=3] [dir=bench/out]
 *       time to first token of prefix + suffix: loading the prefix's KV-state file
 *       (mt_kvfile_read + mt_kvfile_to_cache + the suffix's forward pass) against
 *       computing the whole prompt in a new cache
 *   bench_kv prefix MODEL [threads=2] [records=100] [prefix=1000] [suffix=20] [gen=4]
 *                         [rounds=2] [none_records=records] [store_mb=512]
 *       records sharing one prefix, each with its own suffix, through mt_generate: with
 *       shared-prefix reuse (gp.store) and without; the run without may time fewer
 *       records (none_records), each doing the same work, and is scaled to `records`
 *   bench_kv depth  MODEL [threads=2] [depth=4096] [tg=32] [rounds=3] [dir=bench/out]
 *       one prefill of `depth` tokens, then decode speed of tg greedy tokens from copies
 *       of that state: float16 (or the model's default KV type), affine 8 / 4 bits
 *       (mt_kvcache_quantized_copy, group 64), rotation 4 / 3 bits (turbo); KV bytes;
 *       then KV-state files of the state (raw safetensors, zstd, 8-bit + zstd,
 *       4-bit + zstd): size and load time (read + to_cache)
 *   bench_kv ppl    MODEL TEXT [threads=2] [window=512] [windows=16] [ids_out=]
 *       perplexity of TEXT (tokenized by the model's tokenizer, consecutive windows of
 *       `window` tokens, every token after the first of a window predicted) with the
 *       KV cache as float32, float16, 8 / 4 bits (group 64) and rotation 4 / 3 bits,
 *       quantization applied to every row as it is written (set + mark_quantized before
 *       the first forward call, as llama.cpp's quantized caches do); also the mean
 *       KL divergence from the float16 cache's distribution and top-1 agreement.
 *       ids_out: write the windows' ids (one JSON array per line) for the peer.
 *
 * Every timed part waits for a quiet CPU first ("some avg10" of /proc/pressure/cpu below
 * $KV_QUIET percent, default 5; up to $KV_MAXWAIT s, default 600) and is redone (up to
 * $KV_RETRIES times, default 3) when the stall during it (the growth of "some total"
 * over its wall time) exceeded $KV_STALL percent (default 5).  Each line carries the
 * readings: avg10 before and after, the stall percent, the tries.
 *
 * The prompts are the same pseudo-random ids as bench_gen.c (x_{i+1} = (x_i *
 * 1103515245 + 12345) mod 2^31, id = 1000 + x % 20000), seeded per use. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "core/blas.h"
#include "core/pool.h"
#include "gen/generate.h"
#include "gen/sample.h"
#include "kv/kvconvert.h"
#include "kv/kvfile.h"
#include "kv/prefix.h"
#include "models/kvcache_int.h"   /* mt_kv_write, mt_kv_dtype: a rotation (turbo) copy of a float cache */
#include "models/model.h"
#include "tensor/dtype.h"
#include "text/tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void lcg_ids(int32_t *ids, size_t n, uint32_t seed) {
    uint32_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x = (x * 1103515245u + 12345u) & 0x7fffffffu;
        ids[i] = (int32_t)(1000 + x % 20000);
    }
}

static int die(const char *what, const mt_err *e) {
    fprintf(stderr, "bench_kv: %s: %s\n", what, e->msg);
    exit(1);
}
#define CK(x) do { if (x) die(#x, &e); } while (0)

/* ---- CPU pressure (PSI) ---- */

typedef struct { double avg10; unsigned long long total; } psi_t;

static psi_t psi_read(void) {
    psi_t p = {-1, 0};
    FILE *f = fopen("/proc/pressure/cpu", "r");
    if (!f) return p;
    char line[256];
    if (fgets(line, sizeof line, f)) sscanf(line, "some avg10=%lf %*s %*s total=%llu", &p.avg10, &p.total);
    fclose(f);
    return p;
}

static double envd(const char *k, double d) {
    const char *s = getenv(k);
    return s && *s ? atof(s) : d;
}

/* One timed span: probe_begin waits for a quiet CPU and records PSI, probe_end the rest. */
static struct {
    psi_t b;
    double t0, waited;
} P;
static struct {
    double avg10_before, avg10_after, stall_pct, waited_s;
} R;

static void probe_begin(void) {
    double quiet = envd("KV_QUIET", 5), maxwait = envd("KV_MAXWAIT", 600), w0 = now();
    psi_t p = psi_read();
    while (p.avg10 > quiet && now() - w0 < maxwait) {
        sleep(20);
        p = psi_read();
    }
    P.waited = now() - w0;
    P.b = psi_read();
    P.t0 = now();
}

static double probe_end(void) {
    double t = now() - P.t0;
    psi_t a = psi_read();
    R.avg10_before = P.b.avg10;
    R.avg10_after = a.avg10;
    R.stall_pct = t > 0 ? 100.0 * (double)(a.total - P.b.total) * 1e-6 / t : 0;
    R.waited_s = P.waited;
    return t;
}

static int redo(int tries) { return R.stall_pct > envd("KV_STALL", 5) && tries <= (int)envd("KV_RETRIES", 3); }

static const char *model_name(const char *dir) {
    static char b[512];
    snprintf(b, sizeof b, "%s", dir);
    size_t n = strlen(b);
    while (n > 1 && b[n - 1] == '/') b[--n] = 0;
    const char *s = strrchr(b, '/');
    return s ? s + 1 : b;
}

static void emit(const char *bench, const char *model, const char *cas, int round, int tries, double s,
                 const char *extra) {
    printf("{\"bench\":\"%s\",\"model\":\"%s\",\"case\":\"%s\",\"round\":%d,\"s\":%.6f,\"avg10_before\":%.2f,"
           "\"avg10_after\":%.2f,\"stall_pct\":%.2f,\"waited_s\":%.0f,\"tries\":%d%s%s}\n",
           bench, model, cas, round, s, R.avg10_before, R.avg10_after, R.stall_pct, R.waited_s, tries,
           extra && *extra ? "," : "", extra ? extra : "");
    fflush(stdout);
}

static mt_pool *pool;
static mt_model *M;
static const char *MNAME;

static void load_model(const char *dir, int threads) {
    mt_err e = {0};
    CK(mt_pool_new(&pool, threads, &e));
    mt_blas_threads(1);
    CK(mt_model_load(&M, dir, pool, &e));
    MNAME = model_name(dir);
}

static mt_kvcache *new_cache(void) {
    mt_err e = {0};
    mt_kvcache *c;
    CK(mt_kvcache_new(&c, M, &e));
    CK(mt_kvcache_set_f16(c, mt_model_kv_f16(M), &e));
    return c;
}

/* A rotation-quantized (turbo) copy of a float cache: every row packed as the cache packs it. */
static mt_kvcache *turbo_copy(const mt_kvcache *src, int bits) {
    mt_err e = {0};
    mt_kvcache *c;
    size_t n = src->len, kd = src->kv_dim;
    CK(mt_kvcache_new(&c, M, &e));
    CK(mt_kvcache_set_f16(c, src->f16, &e));
    CK(mt_kvcache_set_turbo(c, bits, &e));
    CK(mt_kvcache_mark_quantized(c, &e));
    CK(mt_kvcache_reserve(c, n, &e));
    float *row = malloc(2 * kd * sizeof *row);
    mt_dtype t = mt_kv_dtype(src);
    size_t rb = kd * mt_dtype_size(t);
    for (int l = 0; l < src->n_layers; l++)
        for (size_t s = 0; s < n; s++) {
            mt_convert_to_f32(row, (const char *)src->k[l] + s * rb, t, kd);
            mt_convert_to_f32(row + kd, (const char *)src->v[l] + s * rb, t, kd);
            mt_kv_write(c, l, s, row, row + kd);
        }
    free(row);
    CK(mt_kvcache_restore(c, n, n, 0, &e));
    return c;
}

static const char *kv_name(const mt_kvcache *c) {
    static char b[32];
    return mt_kvcache_type_name(c, b, sizeof b);
}

/* ---- ttft ---- */

static int cmd_ttft(int argc, char **argv) {
    size_t np = argc > 4 ? (size_t)atol(argv[4]) : 2000, ns = argc > 5 ? (size_t)atol(argv[5]) : 20;
    int rounds = argc > 6 ? atoi(argv[6]) : 3;
    const char *dir = argc > 7 ? argv[7] : "bench/out";
    mt_err e = {0};
    size_t V = (size_t)M->hp.vocab, n = np + ns;
    int32_t *ids = malloc(n * sizeof *ids);
    lcg_ids(ids, n, 42);
    float *lg = malloc(V * sizeof *lg);
    char path[1024], pathz[1024];
    snprintf(path, sizeof path, "%s/kv-%s-p%zu.safetensors", dir, MNAME, np);
    snprintf(pathz, sizeof pathz, "%s/kv-%s-p%zu.kv.zst", dir, MNAME, np);
    int32_t want = -1;
    for (int r = 0; r < rounds; r++) {
        /* whole prompt in a new cache */
        mt_kvcache *c = NULL;
        double t;
        int tries = 0;
        do {
            mt_kvcache_free(c);
            c = new_cache();
            tries++;
            probe_begin();
            CK(mt_model_forward(M, c, ids, n, lg, 0, &e));
            int32_t tok = mt_argmax(lg, V);
            t = probe_end();
            want = tok;
        } while (redo(tries));
        char ex[256];
        snprintf(ex, sizeof ex, "\"prompt\":%zu,\"computed\":%zu,\"token\":%d", n, n, want);
        emit("ttft", MNAME, "recompute", r, tries, t, ex);
        if (r == 0) {   /* the prefix's state: the first np rows of this cache */
            CK(mt_kvcache_trim(c, ns) != ns);
            mt_kvmeta meta = {.kv_heads = M->hp.n_kv_heads, .model = MNAME, .tokens = ids, .n_tokens = np};
            size_t b1, b2;
            CK(mt_kvfile_write(path, c, &meta, -1, &b1, &e));
            CK(mt_kvfile_write(pathz, c, &meta, 3, &b2, &e));
            printf("{\"bench\":\"ttft_file\",\"model\":\"%s\",\"tokens\":%zu,\"kv\":\"%s\",\"raw_bytes\":%zu,"
                   "\"zstd_bytes\":%zu}\n", MNAME, np, kv_name(c), b1, b2);
        }
        mt_kvcache_free(c);
        /* the prefix from its file, then the suffix */
        const char *files[2] = {path, pathz}, *names[2] = {"file", "file_zstd"};
        for (int k = 0; k < 2; k++) {
            double tr = 0, tc = 0, tf = 0;
            int32_t tok = -1;
            tries = 0;
            do {
                tries++;
                probe_begin();
                mt_kvfile *f;
                mt_kvcache *pc;
                CK(mt_kvfile_read(files[k], &f, &e));
                double a = now();
                CK(mt_kvfile_to_cache(f, M, &pc, &e));
                double b = now();
                CK(mt_model_forward(M, pc, ids + np, ns, lg, 0, &e));
                tok = mt_argmax(lg, V);
                t = probe_end();
                tr = a - P.t0;
                tc = b - a;
                tf = P.t0 + t - b;
                mt_kvcache_free(pc);
                mt_kvfile_free(f);
            } while (redo(tries));
            snprintf(ex, sizeof ex, "\"prompt\":%zu,\"computed\":%zu,\"read_s\":%.4f,\"to_cache_s\":%.4f,"
                     "\"forward_s\":%.4f,\"token\":%d,\"same_token\":%s", n, ns, tr, tc, tf, tok,
                     tok == want ? "true" : "false");
            emit("ttft", MNAME, names[k], r, tries, t, ex);
        }
    }
    free(ids);
    free(lg);
    return 0;
}

/* ---- prefix reuse ---- */

static int cmd_prefix(int argc, char **argv) {
    size_t nrec = argc > 4 ? (size_t)atol(argv[4]) : 100, np = argc > 5 ? (size_t)atol(argv[5]) : 1000;
    size_t ns = argc > 6 ? (size_t)atol(argv[6]) : 20;
    int gen = argc > 7 ? atoi(argv[7]) : 4, rounds = argc > 8 ? atoi(argv[8]) : 2;
    size_t nnone = argc > 9 ? (size_t)atol(argv[9]) : nrec, mb = argc > 10 ? (size_t)atol(argv[10]) : 512;
    if (nnone > nrec) nnone = nrec;
    mt_err e = {0};
    char tp[4096];
    snprintf(tp, sizeof tp, "%s/tokenizer.json", argv[2]);
    mt_tokenizer *tok;
    CK(mt_tokenizer_load(&tok, tp, &e));
    size_t n = np + ns;
    int32_t *ids = malloc(nrec * n * sizeof *ids);
    for (size_t r = 0; r < nrec; r++) {
        lcg_ids(ids + r * n, np, 42);                     /* the shared prefix */
        lcg_ids(ids + r * n + np, ns, 1000 + (uint32_t)r); /* this record's suffix */
    }
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = gen;
    gp.sp.temp = 0;
    for (int r = 0; r < rounds; r++)
        for (int mode = 0; mode < 2; mode++) {   /* 0: with the store, 1: without */
            size_t k = mode ? nnone : nrec, cached = 0, gtok = 0;
            double t;
            int tries = 0;
            mt_prefix_stats st = {0};
            do {
                tries++;
                mt_prefix_store *s = NULL;
                if (!mode) CK(mt_prefix_store_new(&s, mb << 20, &e));
                gp.store = s;
                cached = gtok = 0;
                probe_begin();
                for (size_t i = 0; i < k; i++) {
                    mt_gen_result res;
                    CK(mt_generate(M, tok, ids + i * n, n, &gp, NULL, NULL, &res, &e));
                    cached += res.cached_tokens;
                    gtok += res.n_tokens;
                    mt_gen_result_free(&res);
                }
                t = probe_end();
                if (s) mt_prefix_store_stats(s, &st);
                mt_prefix_store_free(s);
            } while (redo(tries));
            char ex[512];
            snprintf(ex, sizeof ex, "\"records\":%zu,\"timed_records\":%zu,\"prompt\":%zu,\"gen_tokens\":%zu,"
                     "\"cached_tokens\":%zu,\"per_record_s\":%.4f,\"total_s\":%.3f,\"store_mb\":%zu,"
                     "\"store_entries\":%zu,\"store_bytes\":%zu,\"evictions\":%zu",
                     nrec, k, n, gtok, cached, t / (double)k, t / (double)k * (double)nrec, mode ? 0 : mb,
                     st.entries, st.bytes, st.evictions);
            emit("prefix", MNAME, mode ? "none" : "store", r, tries, t / (double)k * (double)nrec, ex);
        }
    mt_tokenizer_free(tok);
    free(ids);
    return 0;
}

/* ---- decode at depth, files ---- */

enum { NVAR = 5 };
static const char *VARN[NVAR] = {"base", "q8", "q4", "t4", "t3"};

static mt_kvcache *variant(const mt_kvcache *base, int v) {
    mt_err e = {0};
    mt_kvcache *c = NULL;
    switch (v) {
    case 0: CK(mt_kvcache_copy(&c, base, &e)); break;
    case 1: CK(mt_kvcache_quantized_copy(base, 8, 64, &c, &e)); break;
    case 2: CK(mt_kvcache_quantized_copy(base, 4, 64, &c, &e)); break;
    case 3: c = turbo_copy(base, 4); break;
    default: c = turbo_copy(base, 3); break;
    }
    return c;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmd_depth(int argc, char **argv) {
    size_t depth = argc > 4 ? (size_t)atol(argv[4]) : 4096, tg = argc > 5 ? (size_t)atol(argv[5]) : 32;
    int rounds = argc > 6 ? atoi(argv[6]) : 3;
    const char *dir = argc > 7 ? argv[7] : "bench/out";
    mt_err e = {0};
    size_t V = (size_t)M->hp.vocab;
    int32_t *ids = malloc(depth * sizeof *ids);
    lcg_ids(ids, depth, 42);
    float *lg = malloc(V * sizeof *lg);
    mt_kvcache *base = new_cache();
    double t0 = now();
    CK(mt_model_forward(M, base, ids, depth, lg, 0, &e));
    int32_t first = mt_argmax(lg, V);
    printf("{\"bench\":\"depth_prefill\",\"model\":\"%s\",\"depth\":%zu,\"s\":%.3f,\"kv\":\"%s\"}\n", MNAME, depth,
           now() - t0, kv_name(base));
    fflush(stdout);
    /* decode speed: the variants interleaved round by round */
    for (int r = 0; r < rounds; r++)
        for (int v = 0; v < NVAR; v++) {
            double t;
            int tries = 0;
            size_t bytes = 0;
            char kn[32];
            do {
                tries++;
                mt_kvcache *c = variant(base, v);
                bytes = mt_kvcache_bytes(c);
                snprintf(kn, sizeof kn, "%s", kv_name(c));
                int32_t tok = first;
                probe_begin();
                for (size_t i = 0; i < tg; i++) {
                    CK(mt_model_forward(M, c, &tok, 1, lg, 0, &e));
                    tok = mt_argmax(lg, V);
                }
                t = probe_end();
                mt_kvcache_free(c);
            } while (redo(tries));
            char ex[256];
            snprintf(ex, sizeof ex, "\"kv\":\"%s\",\"depth\":%zu,\"tg\":%zu,\"tg_tps\":%.3f,\"kv_bytes\":%zu", kn,
                     depth, tg, (double)tg / t, bytes);
            emit("decode", MNAME, VARN[v], r, tries, t, ex);
        }
    /* files of the state: raw, zstd, 8-bit + zstd, 4-bit + zstd */
    static const char *fn[4] = {"raw", "zstd", "q8_zstd", "q4_zstd"};
    char path[4][1024];
    size_t fbytes[4];
    for (int k = 0; k < 4; k++) {
        mt_kvcache *c = k < 2 ? base : variant(base, k == 2 ? 1 : 2);
        snprintf(path[k], sizeof path[k], "%s/kv-%s-d%zu-%s.%s", dir, MNAME, depth, fn[k],
                 k ? "kv.zst" : "safetensors");
        mt_kvmeta meta = {.kv_heads = M->hp.n_kv_heads, .model = MNAME, .tokens = ids, .n_tokens = depth};
        double a = now();
        CK(mt_kvfile_write(path[k], c, &meta, k ? 3 : -1, &fbytes[k], &e));
        printf("{\"bench\":\"file_write\",\"model\":\"%s\",\"case\":\"%s\",\"kv\":\"%s\",\"bytes\":%zu,\"s\":%.3f}\n",
               MNAME, fn[k], kv_name(c), fbytes[k], now() - a);
        fflush(stdout);
        if (c != base) mt_kvcache_free(c);
    }
    for (int r = 0; r < rounds * 2; r++)
        for (int k = 0; k < 4; k++) {
            double t, tr = 0;
            int tries = 0;
            do {
                tries++;
                probe_begin();
                mt_kvfile *f;
                mt_kvcache *c;
                CK(mt_kvfile_read(path[k], &f, &e));
                tr = now() - P.t0;
                CK(mt_kvfile_to_cache(f, M, &c, &e));
                t = probe_end();
                mt_kvcache_free(c);
                mt_kvfile_free(f);
            } while (redo(tries));
            char ex[256];
            snprintf(ex, sizeof ex, "\"bytes\":%zu,\"tokens\":%zu,\"read_s\":%.4f,\"to_cache_s\":%.4f", fbytes[k],
                     depth, tr, t - tr);
            emit("load", MNAME, fn[k], r, tries, t, ex);
        }
    mt_kvcache_free(base);
    free(ids);
    free(lg);
    (void)cmp_d;
    return 0;
}

/* ---- perplexity ---- */

/* log-softmax of x[n] into y */
static void log_softmax(float *y, const float *x, size_t n) {
    float mx = x[0];
    for (size_t i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += exp((double)(x[i] - mx));
    float ls = (float)log(s) + mx;
    for (size_t i = 0; i < n; i++) y[i] = x[i] - ls;
}

enum { NPV = 6 };
static const char *PVN[NPV] = {"f16", "f32", "q8", "q4", "t4", "t3"};

static int cmd_ppl(int argc, char **argv) {
    if (argc < 4) return fprintf(stderr, "usage: bench_kv ppl MODEL TEXT [threads] [window] [windows] [ids_out]\n"), 2;
    size_t W = argc > 5 ? (size_t)atol(argv[5]) : 512, NW = argc > 6 ? (size_t)atol(argv[6]) : 16;
    const char *ids_out = argc > 7 ? argv[7] : NULL;
    mt_err e = {0};
    char tp[4096];
    snprintf(tp, sizeof tp, "%s/tokenizer.json", argv[2]);
    mt_tokenizer *tok;
    CK(mt_tokenizer_load(&tok, tp, &e));
    FILE *f = fopen(argv[3], "rb");
    if (!f) return fprintf(stderr, "bench_kv: cannot open %s\n", argv[3]), 1;
    fseek(f, 0, SEEK_END);
    long fl = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)fl + 1);
    if (fread(text, 1, (size_t)fl, f) != (size_t)fl) return fprintf(stderr, "bench_kv: read %s\n", argv[3]), 1;
    fclose(f);
    int32_t *all;
    size_t nall;
    CK(mt_tokenizer_encode(tok, text, (size_t)fl, 0, &all, &nall, &e));
    if (nall / W < NW) NW = nall / W;
    if (ids_out) {
        FILE *o = fopen(ids_out, "w");
        for (size_t w = 0; w < NW; w++) {
            fputc('[', o);
            for (size_t i = 0; i < W; i++) fprintf(o, "%s%d", i ? "," : "", all[w * W + i]);
            fputs("]\n", o);
        }
        fclose(o);
    }
    size_t V = (size_t)M->hp.vocab;
    float *lg = malloc(W * V * sizeof *lg), *ref = malloc(W * V * sizeof *ref), *lp = malloc(V * sizeof *lp);
    double nll[NPV] = {0}, kl[NPV] = {0}, secs[NPV] = {0};
    size_t agree[NPV] = {0}, npred = 0;
    for (size_t w = 0; w < NW; w++) {
        const int32_t *x = all + w * W;
        for (int v = 0; v < NPV; v++) {
            mt_kvcache *c;
            CK(mt_kvcache_new(&c, M, &e));
            CK(mt_kvcache_set_f16(c, v != 1, &e));
            if (v == 2 || v == 3) CK(mt_kvcache_set_quant(c, v == 2 ? 8 : 4, 64, 0, &e));
            if (v == 4 || v == 5) CK(mt_kvcache_set_turbo(c, v == 4 ? 4 : 3, &e));
            if (v >= 2) CK(mt_kvcache_mark_quantized(c, &e));
            double a = now();
            CK(mt_model_forward(M, c, x, W, lg, 1, &e));
            secs[v] += now() - a;
            mt_kvcache_free(c);
            for (size_t i = 0; i + 1 < W; i++) {
                float *row = lg + i * V, *rr = ref + i * V;
                if (v == 0) {
                    log_softmax(rr, row, V);
                    nll[0] -= rr[x[i + 1]];
                    agree[0]++;
                    continue;
                }
                log_softmax(lp, row, V);
                nll[v] -= lp[x[i + 1]];
                double d = 0;
                size_t a1 = 0, a2 = 0;
                for (size_t j = 0; j < V; j++) {
                    d += exp((double)rr[j]) * ((double)rr[j] - (double)lp[j]);
                    if (rr[j] > rr[a1]) a1 = j;
                    if (lp[j] > lp[a2]) a2 = j;
                }
                kl[v] += d;
                agree[v] += a1 == a2;
            }
        }
        npred += W - 1;
    }
    for (int v = 0; v < NPV; v++) {
        char ex[512];
        snprintf(ex, sizeof ex, "\"text\":\"%s\",\"text_tokens\":%zu,\"window\":%zu,\"windows\":%zu,\"predicted\":%zu,"
                 "\"ppl\":%.4f,\"kl_vs_f16\":%.6f,\"top1_agree\":%.4f",
                 argv[3], nall, W, NW, npred, exp(nll[v] / (double)npred), kl[v] / (double)npred,
                 (double)agree[v] / (double)npred);
        R.avg10_before = R.avg10_after = psi_read().avg10;
        R.stall_pct = R.waited_s = 0;
        emit("ppl", MNAME, PVN[v], 0, 1, secs[v], ex);
    }
    free(all);
    free(text);
    free(lg);
    free(ref);
    free(lp);
    mt_tokenizer_free(tok);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench_kv ttft|prefix|depth MODEL [threads] ... | bench_kv ppl MODEL TEXT [threads] ...\n");
        return 2;
    }
    mt_blas_init(argv);
    int ppl = !strcmp(argv[1], "ppl");
    int ti = ppl ? 4 : 3;
    int threads = argc > ti ? atoi(argv[ti]) : 2;
    if (ppl) {   /* shift: bench_kv ppl MODEL TEXT threads window windows ids_out */
        load_model(argv[2], threads);
        return cmd_ppl(argc, argv);
    }
    load_model(argv[2], threads);
    if (!strcmp(argv[1], "ttft")) return cmd_ttft(argc, argv);
    if (!strcmp(argv[1], "prefix")) return cmd_prefix(argc, argv);
    if (!strcmp(argv[1], "depth")) return cmd_depth(argc, argv);
    fprintf(stderr, "bench_kv: unknown command %s\n", argv[1]);
    return 2;
}
