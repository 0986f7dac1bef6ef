/* bench_gen.c - times the library on one model folder and prints one JSON
 * line: load time, load-to-first-token, prefill tokens/s on an N-token prompt,
 * decode tokens/s over M greedy tokens, decode tokens/s summed over B
 * concurrent sequences, peak RSS.  The prompt is deterministic pseudo-random
 * token ids (the same ones bench/peer_*.py feed the peers).  Also the process
 * CPU seconds of prefill and decode (pp_cpu_s, tg_cpu_s).  $MT_QMATH=int8
 * selects the int8-activation kernels (reported as "qmath"); $MT_KV=f16|f32
 * sets the KV caches' type, by default as mlx-gen's --kv-type auto (reported
 * as "kv").
 *
 * usage: bench_gen MODEL_DIR [threads=2] [pp=512] [tg=128] [batch=8] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include "core/blas.h"
#include "core/cpu.h"
#include "core/pool.h"
#include "gen/sample.h"
#include "models/model.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the whole process (all threads): on a shared machine tokens per
 * CPU-second are steadier than per wall-second. */
static double cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The shared prompt: x_{i+1} = (x_i * 1103515245 + 12345) mod 2^31, id = 1000 + x % 20000. */
static void prompt_ids(int32_t *ids, size_t n) {
    uint32_t x = 42;
    for (size_t i = 0; i < n; i++) {
        x = (x * 1103515245u + 12345u) & 0x7fffffffu;
        ids[i] = (int32_t)(1000 + x % 20000);
    }
}

static int die(const mt_err *e) {
    fprintf(stderr, "bench_gen: %s\n", e->msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_gen MODEL_DIR [threads=2] [pp=512] [tg=128] [batch=8]\n");
        return 2;
    }
    mt_blas_init(argv); /* OpenBLAS kernels for this CPU, as the programs do */
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    size_t pp = argc > 3 ? (size_t)atol(argv[3]) : 512, tg = argc > 4 ? (size_t)atol(argv[4]) : 128;
    size_t B = argc > 5 ? (size_t)atol(argv[5]) : 8;
    mt_err e = {0};
    mt_pool *pool = NULL;
    double t0 = now();
    if (mt_pool_new(&pool, threads, &e)) return die(&e);
    mt_blas_threads(1); /* as mlx-gen: products split over the pool */
    mt_model *m = NULL;
    if (mt_model_load(&m, argv[1], pool, &e)) return die(&e);
    double t_load = now() - t0;
    size_t V = (size_t)m->hp.vocab;
    size_t np = pp > 16 + B ? pp : 16 + B; /* the batch prompts start at ids + b */
    int32_t *ids = malloc(np * sizeof *ids);
    float *logits = malloc((B > 1 ? B : 1) * V * sizeof *logits);
    prompt_ids(ids, np);
    mt_kvcache *c = NULL;
    const char *kvt = getenv("MT_KV");
    int kv16 = kvt && !strcmp(kvt, "f16") ? 1 : kvt && !strcmp(kvt, "f32") ? 0 : mt_model_kv_f16(m);
    if (mt_kvcache_new(&c, m, &e) || mt_kvcache_set_f16(c, kv16, &e)) return die(&e);
    /* load-to-first-token: a 16-token prompt right after loading */
    if (mt_model_forward(m, c, ids, 16, logits, 0, &e)) return die(&e);
    int32_t first = mt_argmax(logits, V);
    double t_first = now() - t0;
    (void)first;
    /* pp: prefill of the pp-token prompt into an empty cache */
    mt_kvcache_reset(c);
    double t1 = now(), c1 = cpu();
    if (mt_model_forward(m, c, ids, pp, logits, 0, &e)) return die(&e);
    double t_pp = now() - t1, c_pp = cpu() - c1;
    /* tg: greedy decoding after the prompt */
    int32_t tok = mt_argmax(logits, V);
    t1 = now();
    c1 = cpu();
    for (size_t i = 0; i < tg; i++) {
        if (mt_model_forward(m, c, &tok, 1, logits, 0, &e)) return die(&e);
        tok = mt_argmax(logits, V);
    }
    double t_tg = now() - t1, c_tg = cpu() - c1;
    /* batched decode: B sequences, each after its own 16-token prompt, tg/4 steps */
    double bt_tps = 0, bt_cpu = 0;
    if (B > 0) {
        mt_kvcache **cs = calloc(B, sizeof *cs);
        int32_t *toks = malloc(B * sizeof *toks);
        for (size_t b = 0; b < B; b++) {
            if (mt_kvcache_new(&cs[b], m, &e) || mt_kvcache_set_f16(cs[b], kv16, &e)) return die(&e);
            if (mt_model_forward(m, cs[b], ids + b, 16, logits, 0, &e)) return die(&e);
            toks[b] = mt_argmax(logits, V);
        }
        size_t steps = tg / 4 ? tg / 4 : 1;
        t1 = now();
        c1 = cpu();
        for (size_t s = 0; s < steps; s++) {
            if (mt_model_decode_batch(m, cs, toks, B, logits, &e)) return die(&e);
            for (size_t b = 0; b < B; b++) toks[b] = mt_argmax(logits + b * V, V);
        }
        bt_tps = (double)(steps * B) / (now() - t1);
        bt_cpu = cpu() - c1;
        for (size_t b = 0; b < B; b++) mt_kvcache_free(cs[b]);
        free(cs);
        free(toks);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* bytes of keys/values held by the caches alive at the peak: the pp+tg cache and the B batch caches */
    size_t kv_tokens = pp + tg + (B > 0 ? B * (16 + (tg / 4 ? tg / 4 : 1)) : 0);
    double kv_bytes = (double)kv_tokens * (double)m->hp.n_layers * (double)m->hp.n_kv_heads *
                      (double)m->hp.head_dim * 2.0 * (kv16 ? 2.0 : 4.0);
    /* keys + values of one cached position (all layers): decode reads them for
     * every position it attends to, on top of the weights */
    double kv_pos = (double)m->hp.n_layers * (double)m->hp.n_kv_heads * (double)m->hp.head_dim * 2.0 * (kv16 ? 2.0 : 4.0);
    const char *qm = getenv("MT_QMATH");
    printf("{\"engine\":\"ours\",\"kv\":\"%s\",\"qmath\":\"%s\",\"path\":\"%s\",\"threads\":%d,\"load_s\":%.3f,\"ttft_s\":%.3f,\"pp\":%zu,"
           "\"pp_tps\":%.2f,\"pp_cpu_s\":%.3f,\"tg\":%zu,\"tg_tps\":%.3f,\"tg_cpu_s\":%.3f,\"batch\":%zu,\"batch_tps\":%.3f,\"batch_cpu_s\":%.3f,\"rss_mb\":%.1f,\"kv_mb\":%.1f,\"kv_pos_bytes\":%.0f}\n",
           kv16 ? "f16" : "f32", qm && !strcmp(qm, "int8") ? "int8" : "float", mt_cpu_name(mt_cpu_level()), threads, t_load, t_first, pp,
           (double)pp / t_pp, c_pp, tg, (double)tg / t_tg, c_tg, B,
           bt_tps, bt_cpu, (double)ru.ru_maxrss / 1024.0, kv_bytes / 1048576.0, kv_pos);
    mt_kvcache_free(c);
    mt_model_free(m);
    mt_pool_free(pool);
    free(ids);
    free(logits);
    return 0;
}
