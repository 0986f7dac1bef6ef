/* outname.c - output file names of the file mode (openai-whisper's naming)
 * and the same-name check run before any work starts. */
#include "stt/outname.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"

/* The stem of input: [*start, *start + *len). */
static void stem_of(const char *input, const char **start, size_t *len) {
    const char *base = strrchr(input, '/');
    base = base ? base + 1 : input;
    size_t n = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot) {
        const char *q = base;
        while (q < dot && *q == '.') q++;
        if (q < dot) n = (size_t)(dot - base);   /* a leading run of dots is not an extension */
    }
    *start = base;
    *len = n;
}

char *mt_stt_output_path(const char *dir, const char *input, const char *ext) {
    const char *s;
    size_t n;
    stem_of(input, &s, &n);
    size_t len = n + strlen(ext) + 2;
    char *name = malloc(len);
    if (!name) return NULL;
    snprintf(name, len, "%.*s.%s", (int)n, s, ext);
    char *p = mt_path_join(dir, name);
    free(name);
    return p;
}

typedef struct {
    const char *s;
    size_t len, idx;
} stem;

static int stem_cmp(const void *a, const void *b) {
    const stem *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, m);
    if (c) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int mt_stt_output_collision(const char *dir, const char *const *inputs, size_t n, const char *ext, size_t *first,
                            size_t *second, mt_err *err) {
    *first = *second = n;
    if (n < 2) return MT_OK;
    stem *v = malloc(n * sizeof *v);
    if (!v) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        stem_of(inputs[i], &v[i].s, &v[i].len);
        v[i].idx = i;
    }
    qsort(v, n, sizeof *v, stem_cmp);
    /* in a run of equal stems (sorted by index) the first two are the pair
     * that collides first; keep the run whose second input is earliest */
    for (size_t i = 0; i + 1 < n; i++) {
        if (v[i].len == v[i + 1].len && !memcmp(v[i].s, v[i + 1].s, v[i].len) && v[i + 1].idx < *second) {
            *first = v[i].idx;
            *second = v[i + 1].idx;
        }
    }
    free(v);
    if (*second == n) return MT_OK;
    char *out = mt_stt_output_path(dir, inputs[*first], ext);
    if (!out) return mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_seterr(err, MT_EINVAL, "'%s' and '%s' would both write %s", inputs[*first], inputs[*second], out);
    free(out);
    return MT_EINVAL;
}
