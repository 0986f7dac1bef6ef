/* fuzz_jsonl.c - libFuzzer target: arbitrary bytes through the shared JSONL loop,
 * in JSON and text mode, with a handler that reads typed fields. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/jsonl.h"

static int handler(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err) {
    (void)user; (void)lineno;
    const char *s; size_t n; int b = 0; long long i = 0; double d = 0;
    MT_TRY(mt_json_get_string(rec, "text", &s, &n, 0, err));
    MT_TRY(mt_json_get_bool(rec, "flag", &b, err));
    MT_TRY(mt_json_get_int(rec, "n", &i, err));
    MT_TRY(mt_json_get_number(rec, "x", &d, err));
    *out = json_pack("{s:i,s:b}", "len", (json_int_t)n, "flag", b);
    return *out ? MT_OK : mt_seterr(err, MT_ENOMEM, "oom");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int mode = 0; mode < 2; mode++) {
        FILE *in = fmemopen((void *)data, size, "r");
        if (!in) return 0;
        FILE *out = fopen("/dev/null", "w");
        mt_jsonl_opts o = {.prog = "fuzz", .text_mode = mode, .quiet = 1, .max_line = 1 << 16};
        mt_jsonl_stats st;
        mt_err e;
        mt_jsonl_run(in, out, NULL, &o, handler, NULL, &st, &e);
        fclose(in);
        fclose(out);
    }
    return 0;
}
