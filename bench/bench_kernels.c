/* bench_kernels.c - times mt_linear_forward on MLX-quantized random matrices
 * of the benchmark models' shapes, float arithmetic vs int8 activations
 * (MT_QMATH_INT8), alternating the two within each repetition, and prints the
 * median times (process CPU time unless $BENCH_WALL is set) and effective
 * weight bandwidth (GB/s of packed weights read) as JSON lines.
 * $BENCH_COPIES=N cycles through N copies of each matrix, so that the weights
 * stream from memory instead of the last-level cache (N * size > the LLC).
 * $BENCH_MIN reports the fastest repetition instead of the median.
 * usage: bench_kernels [threads=2] [reps=9] [bits=4] [gs=64] [T list=1,8,64,512] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/blas.h"
#include "core/cpu.h"
#include "core/pool.h"
#include "tensor/linear.h"
#include "tensor/quant.h"

/* CPU time of the process (all threads): steadier than wall time on a shared
 * machine; $BENCH_WALL=1 switches to wall time. */
static double now(void) {
    struct timespec ts;
    clock_gettime(getenv("BENCH_WALL") ? CLOCK_MONOTONIC : CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    mt_blas_init(argv); /* OpenBLAS kernels for this CPU, as the programs do */
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int reps = argc > 2 ? atoi(argv[2]) : 9;
    int bits = argc > 3 ? atoi(argv[3]) : 4;
    size_t gs = argc > 4 ? (size_t)atol(argv[4]) : 64;
    size_t Ts[16], nT = 0;
    char tl[256];
    snprintf(tl, sizeof tl, "%s", argc > 5 ? argv[5] : "1,8,64,512");
    for (char *s = strtok(tl, ","); s && nT < 16; s = strtok(NULL, ",")) Ts[nT++] = (size_t)atol(s);
    if (reps < 1 || reps > 99) reps = 9;
    mt_pool *pool = NULL;
    if (mt_pool_new(&pool, threads, NULL)) return 1;
    mt_blas_threads(threads);
    /* llama-3.2-1B: q/o, k/v, gate/up, down; qwen3-0.6B: gate/up */
    static const size_t shapes[][2] = {{2048, 2048}, {512, 2048}, {8192, 2048}, {2048, 8192}, {3072, 1024}};
    size_t copies = getenv("BENCH_COPIES") ? (size_t)atol(getenv("BENCH_COPIES")) : 1;
    if (copies < 1) copies = 1;
    size_t Tmax = 1;
    for (size_t i = 0; i < nT; i++) Tmax = Ts[i] > Tmax ? Ts[i] : Tmax;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        size_t out = shapes[si][0], K = shapes[si][1], ng = K / gs;
        size_t wb = out * K * (size_t)bits / 8;
        unsigned char *w = malloc(wb * copies);
        uint16_t *s = malloc(out * ng * 2 * copies), *b = malloc(out * ng * 2 * copies);
        if (!w || !s || !b) return 1;
        for (size_t i = 0; i < wb; i++) w[i] = (unsigned char)(i * 2654435761u >> 13);
        for (size_t i = 0; i < out * ng; i++) {
            s[i] = mt_f32_to_bf16(0.01f + 0.001f * (float)(i % 7));
            b[i] = mt_f32_to_bf16(-0.08f);
        }
        for (size_t c = 1; c < copies; c++) {
            memcpy(w + c * wb, w, wb);
            memcpy(s + c * out * ng, s, out * ng * 2);
            memcpy(b + c * out * ng, b, out * ng * 2);
        }
        float *x = malloc(Tmax * K * 4), *y = malloc(Tmax * out * 4), *work = malloc((size_t)threads * K * 4);
        for (size_t i = 0; i < Tmax * K; i++) x[i] = (float)((int)(i % 17) - 8) * 0.1f;
        mt_linear l = {.out = out, .in = K, .quantized = 1, .w = w, .scales = s, .biases = b, .sdt = MT_BF16,
                       .bits = bits, .group_size = (int)gs};
        for (size_t ti = 0; ti < nT; ti++) {
            size_t T = Ts[ti];
            double tf[99], ti8[99];
            int r = T >= 256 ? (reps + 2) / 3 : reps;
            for (int k = 0; k < r; k++) {
                for (int mode = 0; mode < 2; mode++) {
                    l.qmath = mode ? MT_QMATH_INT8 : MT_QMATH_FLOAT;
                    int inner = T == 1 ? 20 : T <= 8 ? 5 : 1;
                    if (copies > (size_t)inner) inner = (int)copies;
                    mt_linear_forward(&l, x, T, y, work, pool);
                    double t0 = now();
                    for (int u = 0; u < inner; u++) {
                        size_t c = (size_t)u % copies;
                        l.w = w + c * wb;
                        l.scales = s + c * out * ng;
                        l.biases = b + c * out * ng;
                        mt_linear_forward(&l, x, T, y, work, pool);
                    }
                    (mode ? ti8 : tf)[k] = (now() - t0) / inner;
                }
            }
            qsort(tf, (size_t)r, sizeof *tf, cmpd);
            qsort(ti8, (size_t)r, sizeof *ti8, cmpd);
            int at = getenv("BENCH_MIN") ? 0 : r / 2; /* $BENCH_MIN: the fastest repetition */
            double mf = tf[at], mi = ti8[at];
            printf("{\"out\":%zu,\"in\":%zu,\"bits\":%d,\"gs\":%zu,\"path\":\"%s\",\"T\":%zu,\"float_ms\":%.3f,"
                   "\"int8_ms\":%.3f,\"speedup\":%.2f,\"float_gbs\":%.2f,\"int8_gbs\":%.2f}\n",
                   out, K, bits, gs, mt_cpu_name(mt_cpu_level()), T, mf * 1e3, mi * 1e3, mf / mi, (double)wb / mf / 1e9,
                   (double)wb / mi / 1e9);
            fflush(stdout);
        }
        free(w); free(s); free(b); free(x); free(y); free(work);
    }
    mt_pool_free(pool);
    return 0;
}
