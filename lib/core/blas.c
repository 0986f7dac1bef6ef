/* blas.c - choose OpenBLAS's kernels from the CPU's features (see blas.h). */
#include "core/blas.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>
#include "core/cpu.h"

void mt_blas_init(char **argv) {
    if (getenv("OPENBLAS_CORETYPE")) return;
    const char *cn = openblas_get_corename();
    if (!cn || (strcasecmp(cn, "prescott") && strcasecmp(cn, "core2") && strcasecmp(cn, "nehalem") &&
                strcasecmp(cn, "katmai") && strcasecmp(cn, "unknown")))
        return;
    int lvl = mt_cpu_best();
    const char *want = lvl >= MT_CPU_AVX512 ? "SkylakeX" : lvl >= MT_CPU_AVX2 ? "Haswell" : NULL;
    if (!want) return;
    setenv("OPENBLAS_CORETYPE", want, 1);
    fflush(NULL);
    execv("/proc/self/exe", argv);   /* returns only on failure */
}

void mt_blas_threads(int n) {
    if (n > 0) openblas_set_num_threads(n);
}

int mt_blas_pool_splits(const mt_pool *p) { return mt_pool_size(p) > 1 && openblas_get_num_threads() == 1; }
