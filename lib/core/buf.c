/* buf.c - growable byte buffer (see buf.h). */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

void mt_buf_put(mt_buf *b, const void *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void mt_buf_str(mt_buf *b, const char *s) { mt_buf_put(b, s, strlen(s)); }

void mt_buf_free(mt_buf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->oom = 0;
}
