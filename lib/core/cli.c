/* cli.c - option-value parsing shared by the programs. */
#include "core/cli.h"

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
