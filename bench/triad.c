/* triad.c - STREAM-style triad a[i] = b[i] + s*c[i] over arrays far larger
 * than the caches, split over N threads; prints the best bandwidth in GB/s
 * (bytes counted as STREAM does: 3 arrays x 8-byte doubles per element, no
 * write-allocate traffic) as one JSON line.
 * usage: triad [threads=2] [MiB per array=256] [reps=8] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct { double *a, *b, *c; size_t lo, hi; } job;

static void *run(void *p) {
    job *j = p;
    const double s = 3.0;
    for (size_t i = j->lo; i < j->hi; i++) j->a[i] = j->b[i] + s * j->c[i];
    return NULL;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int nt = argc > 1 ? atoi(argv[1]) : 2;
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 256;
    int reps = argc > 3 ? atoi(argv[3]) : 8;
    if (nt < 1 || nt > 64) nt = 2;
    size_t n = mib * 1024 * 1024 / sizeof(double);
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    if (!a || !b || !c) { fprintf(stderr, "triad: out of memory\n"); return 1; }
    for (size_t i = 0; i < n; i++) { a[i] = 0; b[i] = 1; c[i] = 2; }
    double best = 1e30;
    pthread_t th[64];
    job jb[64];
    for (int r = 0; r < reps; r++) {
        double t = now();
        for (int k = 0; k < nt; k++) {
            jb[k] = (job){a, b, c, n * (size_t)k / (size_t)nt, n * (size_t)(k + 1) / (size_t)nt};
            pthread_create(&th[k], NULL, run, &jb[k]);
        }
        for (int k = 0; k < nt; k++) pthread_join(th[k], NULL);
        t = now() - t;
        if (t < best) best = t;
    }
    double gbs = 3.0 * (double)n * sizeof(double) / best / 1e9;
    printf("{\"triad_gbs\":%.2f,\"threads\":%d,\"mib\":%zu,\"check\":%g}\n", gbs, nt, mib, a[n / 2]);
    free(a); free(b); free(c);
    return 0;
}
