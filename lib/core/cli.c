/* cli.c - option-value parsing shared by the programs. */
#include "core/cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

int mt_cli_number(FILE *errf, const char *prog, const char *opt, const char *s, double lo, double hi, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) {
        if (errf) fprintf(errf, "%s: %s: '%s' is not a number in [%g, %g]\n", prog, opt, s, lo, hi);
        return 1;
    }
    *out = v;
    return 0;
}

static int parse_count(const char **p, unsigned long long *v) {
    if (!isdigit((unsigned char)**p)) return 0;
    char *end;
    errno = 0;
    *v = strtoull(*p, &end, 10);
    if (errno) return 0;
    *p = end;
    return 1;
}

int mt_cli_shard(FILE *errf, const char *prog, const char *s, size_t *k, size_t *n) {
    const char *p = s;
    unsigned long long kk, nn;
    if (parse_count(&p, &kk) && *p++ == '/' && parse_count(&p, &nn) && !*p && nn >= 1 && nn <= 1000000 && kk < nn) {
        *k = (size_t)kk;
        *n = (size_t)nn;
        return 0;
    }
    if (errf) fprintf(errf, "%s: --shard: '%s' is not K/N with 0 <= K < N <= 1000000\n", prog, s);
    return 1;
}
