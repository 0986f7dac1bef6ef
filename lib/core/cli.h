/* cli.h - small helpers for the programs' option parsing. */
#ifndef MT_CLI_H
#define MT_CLI_H

#include <stdio.h>

/* Parse option value s as a number in [lo, hi] into *out.  On failure writes
 * "prog: opt: 's' is not a number in [lo, hi]" to errf (the caller's choice,
 * usually stderr) and returns 1; returns 0 on success. */
int mt_cli_number(FILE *errf, const char *prog, const char *opt, const char *s, double lo, double hi, double *out);

/* Parse a --shard value "K/N" (decimal, 0 <= K < N, 1 <= N <= 1000000) into
 * *k and *n; on failure writes "prog: --shard: 'S' is not K/N with 0 <= K < N"
 * to errf and returns 1. */
int mt_cli_shard(FILE *errf, const char *prog, const char *s, size_t *k, size_t *n);

/* Whether position pos (0-based) belongs to shard k of n (n 0 or 1: always). */
static inline int mt_shard_mine(size_t pos, size_t k, size_t n) { return n <= 1 || pos % n == k; }

#endif
