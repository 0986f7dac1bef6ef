/* fuzz_resume.c - libFuzzer target: the --resume answers file.  The input's
 * first half (up to the first 0xFF byte) is the answers file left by earlier
 * runs, the rest the records of this run; the file is opened (checked, cut),
 * the run appends, and the file is compacted (lib/core/resume.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/jsonl.h"

static int handler(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err) {
    (void)user; (void)lineno;
    if (json_is_true(json_object_get(rec, "fail"))) return mt_seterr(err, MT_EINVAL, "fail \xff");
    *out = json_pack("{s:s}", "text", "ok");
    return *out ? MT_OK : mt_seterr(err, MT_ENOMEM, "oom");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *cut = memchr(data, 0xFF, size);
    size_t nfile = cut ? (size_t)(cut - data) : size;
    const uint8_t *recs = cut ? cut + 1 : data + size;
    size_t nrecs = size - nfile - (cut ? 1 : 0);
    char path[] = "/tmp/fuzz_resume_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    if (write(fd, data, nfile) != (ssize_t)nfile) { close(fd); unlink(path); return 0; }
    close(fd);
    mt_resume *r = NULL;
    FILE *out = NULL;
    mt_err e;
    if (mt_resume_open(&r, path, &out, NULL, &e) == 0) {
        FILE *in = fmemopen((void *)(nrecs ? recs : (const uint8_t *)""), nrecs ? nrecs : 1, "r");
        if (in) {
            mt_jsonl_opts o = {.prog = "fuzz", .quiet = 1, .max_line = 1 << 16, .skip = mt_resume_skip, .skip_user = r};
            mt_jsonl_stats st;
            mt_jsonl_run(in, out, NULL, &o, handler, NULL, &st, &e);
            fclose(in);
        }
        mt_resume_close(r, out, &e);
    }
    unlink(path);
    return 0;
}
