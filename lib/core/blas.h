/* blas.h - OpenBLAS set-up shared by the programs.
 *
 * OpenBLAS picks its kernels once, when it loads, from the CPU model; on CPUs
 * it does not recognise (many VMs) it falls back to the SSE3 "Prescott"
 * kernels, 2-3x slower.  mt_blas_init, called first thing in main (before any
 * input is read), then re-executes the program with OPENBLAS_CORETYPE set from
 * the features the CPU reports; it returns when nothing needed doing, when the
 * user set OPENBLAS_CORETYPE, or when the re-exec failed (then the program goes
 * on with the kernels it has). */
#ifndef MT_BLAS_H
#define MT_BLAS_H

#include "core/pool.h"

void mt_blas_init(char **argv);
/* The number of threads OpenBLAS uses for one call (match the pool's). */
void mt_blas_threads(int n);
/* 1 when callers should split their products over pool p themselves (one
 * one-thread sgemm per pool thread): p has several threads and OpenBLAS runs
 * one (mt_blas_threads(1)); 0 when OpenBLAS threads each call itself. */
int mt_blas_pool_splits(const mt_pool *p);

#endif
