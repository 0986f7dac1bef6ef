/* bench_kernels.c - times mt_linear_forward on MLX-quantized random matrices
 * of the benchmark models' shapes, per CPU path and per T (tokens), and
 * prints effective weight bandwidth (GB/s of packed weights read) as JSON
 * lines.  usage: bench_kernels [threads=2] [reps=20] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/cpu.h"
#include "core/pool.h"
#include "tensor/linear.h"
#include "tensor/quant.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int reps = argc > 2 ? atoi(argv[2]) : 20;
    mt_pool *pool = NULL;
    if (mt_pool_new(&pool, threads, NULL)) return 1;
    static const size_t shapes[][2] = {{8192, 2048}, {2048, 8192}, {3072, 1024}};
    static const int bits[] = {4, 8};
    static const size_t Ts[] = {1, 2, 3, 4, 8, 16};
    for (size_t si = 0; si < 3; si++)
        for (size_t bi = 0; bi < 2; bi++) {
            size_t out = shapes[si][0], K = shapes[si][1], gs = 64, ng = K / gs;
            size_t wb = out * K * (size_t)bits[bi] / 8;
            unsigned char *w = malloc(wb);
            uint16_t *s = malloc(out * ng * 2), *b = malloc(out * ng * 2);
            for (size_t i = 0; i < wb; i++) w[i] = (unsigned char)(i * 2654435761u >> 13);
            for (size_t i = 0; i < out * ng; i++) { s[i] = mt_f32_to_f16(0.01f); b[i] = mt_f32_to_f16(-0.08f); }
            float *x = malloc(16 * K * 4), *y = malloc(16 * out * 4), *work = malloc((size_t)threads * K * 4);
            for (size_t i = 0; i < 16 * K; i++) x[i] = (float)((int)(i % 17) - 8) * 0.1f;
            mt_linear l = {.out = out, .in = K, .quantized = 1, .w = w, .scales = s, .biases = b, .sdt = MT_F16,
                           .bits = bits[bi], .group_size = (int)gs};
            for (int p = MT_CPU_PORTABLE; p <= mt_cpu_best(); p++) {
                mt_cpu_force(p);
                for (size_t ti = 0; ti < sizeof Ts / sizeof *Ts; ti++) {
                    size_t T = Ts[ti];
                    if (p == MT_CPU_PORTABLE && T > 1) continue;
                    int r = p == MT_CPU_PORTABLE ? 3 : reps;
                    mt_linear_forward(&l, x, T, y, work, pool);
                    double t0 = now();
                    for (int k = 0; k < r; k++) mt_linear_forward(&l, x, T, y, work, pool);
                    double dt = (now() - t0) / r;
                    printf("{\"out\":%zu,\"in\":%zu,\"bits\":%d,\"path\":\"%s\",\"T\":%zu,\"ms\":%.3f,"
                           "\"ms_per_token\":%.3f,\"weight_gbs\":%.2f}\n",
                           out, K, bits[bi], mt_cpu_name(p), T, dt * 1e3, dt * 1e3 / (double)T, (double)wb / dt / 1e9);
                    fflush(stdout);
                }
            }
            mt_cpu_force(-1);
            free(w); free(s); free(b); free(x); free(y); free(work);
        }
    mt_pool_free(pool);
    return 0;
}
