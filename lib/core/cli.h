/* cli.h - small helpers for the programs' option parsing. */
#ifndef MT_CLI_H
#define MT_CLI_H

#include <stdio.h>

/* Parse option value s as a number in [lo, hi] into *out.  On failure writes
 * "prog: opt: 's' is not a number in [lo, hi]" to errf (the caller's choice,
 * usually stderr) and returns 1; returns 0 on success. */
int mt_cli_number(FILE *errf, const char *prog, const char *opt, const char *s, double lo, double hi, double *out);

#endif
