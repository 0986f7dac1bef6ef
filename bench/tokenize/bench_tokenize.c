/* bench_tokenize.c - encode throughput of lib/text/tokenizer on the test
 * corpus: bench_tokenize TOKENIZER_JSON[.zst] CORPUS REPS
 * CORPUS has one JSON string per line (tests/data/tokenizers/corpus.txt).
 * Prints: load seconds, then MB/s and tokens/s of single-threaded per-line
 * encode, by CPU time (MB/s, tokens/s) and by wall time (wall_MB/s). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "core/file.h"
#include "text/tokenizer.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
/* CPU time of this process: robust on a shared, busy machine (single-threaded run) */
static double cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s tokenizer.json corpus.txt reps\n", argv[0]); return 2; }
    int reps = atoi(argv[3]);
    mt_err e = {0};
    char *buf; size_t len;
    if (mt_read_file(argv[2], &buf, &len, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    size_t cap = 4096, count = 0, bytes = 0;
    char **s = malloc(cap * sizeof *s); size_t *n = malloc(cap * sizeof *n);
    for (char *p = buf, *end = buf + len; p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        json_error_t je;
        json_t *j = json_loadb(p, (size_t)(nl - p), JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        p = nl + 1;
        if (!json_is_string(j)) { json_decref(j); continue; }
        if (count == cap) { cap *= 2; s = realloc(s, cap * sizeof *s); n = realloc(n, cap * sizeof *n); }
        n[count] = json_string_length(j);
        s[count] = malloc(n[count] + 1);
        memcpy(s[count], json_string_value(j), n[count] + 1);
        bytes += n[count++];
        json_decref(j);
    }
    free(buf);
    double t0 = now();
    mt_tokenizer *t;
    if (mt_tokenizer_load(&t, argv[1], &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
    double tload = now() - t0;
    size_t toks = 0;
    t0 = now();
    double c0 = cpu();
    for (int r = 0; r < reps; r++)
        for (size_t i = 0; i < count; i++) {
            int32_t *ids; size_t k;
            if (mt_tokenizer_encode(t, s[i], n[i], 1, &ids, &k, &e)) { fprintf(stderr, "%s\n", e.msg); return 1; }
            toks += k;
            free(ids);
        }
    double dt = now() - t0, dc = cpu() - c0;
    printf("load_s %.3f lines %zu bytes %zu reps %d cpu_s %.3f MB/s %.2f tokens/s %.0f wall_MB/s %.2f\n", tload, count,
           bytes, reps, dc, bytes * (double)reps / dc / 1e6, toks / dc, bytes * (double)reps / dt / 1e6);
    mt_tokenizer_free(t);
    for (size_t i = 0; i < count; i++) free(s[i]);
    free(s); free(n);
    return 0;
}
