/* golden_f32.h - the unit tests' float goldens: a raw little-endian float32
 * file (zstd-compressed or not, mt_read_file inflates .zst) and the two
 * distances the tests hold them to. */
#ifndef GOLDEN_F32_H
#define GOLDEN_F32_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/file.h"

/* The floats of path (malloc'ed, *n of them), or NULL with the reason on stderr. */
static inline float *gold_read_f32(const char *path, size_t *n) {
    char *buf = NULL;
    size_t len = 0;
    mt_err err = {0};
    *n = 0;
    if (mt_read_file(path, &buf, &len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    *n = len / sizeof(float);
    float *f = malloc(len ? len : 1);
    if (f) memcpy(f, buf, len);
    free(buf);
    return f;
}

/* max |a - b| (a NaN anywhere makes it NaN) */
static inline double max_abs(const float *a, const float *b, size_t n) {
    double md = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= md)) md = d;
    }
    return md;
}

/* max |a - b| / max |b| (max |a - b| when b is all zero) */
static inline double rel_err(const float *a, const float *b, size_t n) {
    double mb = 0;
    for (size_t i = 0; i < n; i++)
        if (fabs((double)b[i]) > mb) mb = fabs((double)b[i]);
    double md = max_abs(a, b, n);
    return mb > 0 ? md / mb : md;
}

#endif
