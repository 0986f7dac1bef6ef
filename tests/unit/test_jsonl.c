/* test_jsonl.c - error records (the "error" field always there, valid UTF-8,
 * the OpenAI Batch API shape) and the --resume answers file (lib/core/resume.c). */
#include <stdlib.h>
#include <unistd.h>
#include <utf8proc.h>
#include "check.h"
#include "core/err.h"
#include "core/file.h"
#include "core/jsonl.h"

static int valid_utf8(const char *s) {
    size_t n = strlen(s), i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* A message cut at the buffer's size never ends inside a UTF-8 character. */
static void test_err_clip(void) {
    char val[1200];
    for (int shift = 0; shift < 4; shift++) {
        size_t n = 0;
        for (int i = 0; i < shift; i++) val[n++] = 'a';
        while (n + 4 < sizeof val) { memcpy(val + n, "\xF0\x9F\x98\x80", 4); n += 4; }   /* U+1F600 */
        val[n] = 0;
        mt_err e;
        mt_seterr(&e, MT_EINVAL, "key \"%s\" is bad", val);
        CHECK_MSG(valid_utf8(e.msg), "shift %d", shift);
        CHECK(strlen(e.msg) >= sizeof e.msg - 4);
        mt_seterr(&e, MT_EINVAL, "inner");
        mt_preferr(&e, "%s", val);
        CHECK_MSG(valid_utf8(e.msg), "preferr shift %d", shift);
        mt_seterr(&e, MT_EINVAL, "%s", val);
        mt_preferr(&e, "file %.*s", 300, val);
        CHECK_MSG(valid_utf8(e.msg), "preferr both shift %d", shift);
    }
}

static void test_error_record(void) {
    json_t *id = json_string("r1");
    json_t *er = mt_jsonl_error_record(id, NULL, 7, MT_EINVAL, "bad \xff\xfe byte");
    CHECK(json_is_string(json_object_get(er, "error")));
    CHECK_STR(json_string_value(json_object_get(er, "error")), "line 7: bad \xEF\xBF\xBD\xEF\xBF\xBD byte");
    CHECK_STR(json_string_value(json_object_get(er, "id")), "r1");
    json_decref(er);
    /* an OpenAI Batch API request line */
    json_t *rec = json_pack("{s:s,s:s,s:{}}", "custom_id", "c9", "url", "/v1/x", "body");
    er = mt_jsonl_error_record(id, rec, 3, MT_ELIMIT, "too long");
    CHECK_STR(json_string_value(json_object_get(er, "custom_id")), "c9");
    CHECK_STR(json_string_value(json_object_get(er, "id")), "batch_req_3");
    CHECK(json_is_null(json_object_get(er, "response")));
    CHECK_STR(json_string_value(json_object_get(json_object_get(er, "error"), "code")), "limit_exceeded");
    CHECK_STR(json_string_value(json_object_get(json_object_get(er, "error"), "message")), "line 3: too long");
    json_decref(er);
    json_decref(rec);
    /* no message: the status's name */
    er = mt_jsonl_error_record(id, NULL, 0, MT_ENOMEM, "");
    CHECK_STR(json_string_value(json_object_get(er, "error")), "out of memory");
    json_decref(er);
    json_decref(id);
    json_t *s = mt_json_string_lossy("a\xc3(b", 4);
    CHECK_STR(json_string_value(s), "a\xEF\xBF\xBD(b");
    json_decref(s);
}

/* Handler for the resume loop: "fail" records fail, the others echo "v". */
static int echo_fn(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err) {
    (void)lineno;
    int *calls = user;
    (*calls)++;
    if (json_is_true(json_object_get(rec, "fail"))) return mt_seterr(err, MT_EINVAL, "asked to fail");
    *out = json_pack("{s:O}", "v", json_object_get(rec, "v"));
    return MT_OK;
}

static int run_resume(const char *path, const char *input, int *calls, mt_jsonl_stats *st) {
    FILE *in = fmemopen((void *)input, strlen(input), "r");
    FILE *out = NULL, *errf = fopen("/dev/null", "w");
    mt_resume *r = NULL;
    mt_err e = {0};
    int rc = mt_resume_open(&r, path, &out, NULL, &e);
    if (!rc) {
        mt_jsonl_opts o = {.prog = "t", .skip = mt_resume_skip, .skip_user = r};
        rc = mt_jsonl_run(in, out, errf, &o, echo_fn, calls, st, &e);
        int crc = mt_resume_close(r, out, &e);
        if (!rc) rc = crc;
    }
    fclose(in);
    fclose(errf);
    return rc;
}

static void test_resume(void) {
    char path[] = "/tmp/mt_test_resume_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    /* a previous, killed run: answers out of order, an error line, a partial line */
    const char *prev = "{\"id\":3,\"v\":\"c\\u0000\"}\n{\"id\":1,\"error\":\"line 1: old\"}\n{\"id\":99,\"v\":\"other input\"}\n"
                       "{\"id\":2,\"v\":\"b\"}\n{\"id\":4,\"v\":\"half";
    CHECK(write(fd, prev, strlen(prev)) == (ssize_t)strlen(prev));
    close(fd);
    const char *input = "{\"id\":1,\"v\":\"a\"}\n{\"id\":2,\"v\":\"b\"}\n{\"id\":3,\"v\":\"c\\u0000\"}\n"
                        "{\"id\":4,\"v\":\"d\"}\n{\"id\":5,\"fail\":true}\n{\"id\":2,\"v\":\"dup\"}\n";
    int calls = 0;
    mt_jsonl_stats st = {0};
    CHECK_EQ_INT(run_resume(path, input, &calls, &st), 0);
    CHECK_EQ_INT(calls, 3);               /* 1 (was an error), 4 (was cut), 5 */
    CHECK_EQ_INT(st.skipped, 2);
    CHECK_EQ_INT(st.duplicates, 1);
    CHECK_EQ_INT(st.failed, 2);           /* 5 and the duplicate */
    char *got = NULL;
    size_t n = 0;
    mt_err e;
    CHECK_OK(mt_read_file(path, &got, &n, &e), &e);
    CHECK_STR(got, "{\"id\":1,\"v\":\"a\"}\n{\"id\":2,\"v\":\"b\"}\n{\"id\":3,\"v\":\"c\\u0000\"}\n{\"id\":4,\"v\":\"d\"}\n"
                   "{\"id\":5,\"error\":\"line 5: asked to fail\"}\n{\"id\":99,\"v\":\"other input\"}\n");
    free(got);
    /* again: only the failing record runs, and the file keeps one line per id */
    calls = 0;
    CHECK_EQ_INT(run_resume(path, input, &calls, &st), 0);
    CHECK_EQ_INT(calls, 1);
    CHECK_OK(mt_read_file(path, &got, &n, &e), &e);
    CHECK_STR(got, "{\"id\":1,\"v\":\"a\"}\n{\"id\":2,\"v\":\"b\"}\n{\"id\":3,\"v\":\"c\\u0000\"}\n{\"id\":4,\"v\":\"d\"}\n"
                   "{\"id\":5,\"error\":\"line 5: asked to fail\"}\n{\"id\":99,\"v\":\"other input\"}\n");
    free(got);
    /* a second opener of the same file is refused while the first holds it */
    mt_resume *r1 = NULL, *r2 = NULL;
    FILE *o1 = NULL, *o2 = NULL;
    CHECK_OK(mt_resume_open(&r1, path, &o1, NULL, &e), &e);
    CHECK(mt_resume_open(&r2, path, &o2, NULL, &e) != 0 && strstr(e.msg, "another run"));
    CHECK(r2 == NULL && o2 == NULL);
    CHECK_OK(mt_resume_close(r1, o1, &e), &e);
    CHECK_OK(mt_resume_open(&r2, path, &o2, NULL, &e), &e);
    CHECK_OK(mt_resume_close(r2, o2, &e), &e);
    unlink(path);
}

/* A handler's MT_EFATAL ends the loop: that batch's answers are not written. */
static void fatal_batch(void *user, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                        mt_err *errs) {
    int *batches = user;
    (*batches)++;
    for (size_t i = 0; i < n; i++) {
        if (json_is_true(json_object_get(recs[i], "disk_full")))
            rcs[i] = mt_seterr(&errs[i], MT_EFATAL, "out.npy: write failed: No space left on device (line %zu)", linenos[i]);
        else
            outs[i] = json_pack("{s:b}", "ok", 1);
    }
}

static void test_fatal(void) {
    const char *input = "{\"id\":1}\n{\"id\":2}\n{\"id\":3,\"disk_full\":true}\n{\"id\":4}\n{\"id\":5}\n";
    FILE *in = fmemopen((void *)input, strlen(input), "r");
    char *obuf = NULL;
    size_t olen = 0;
    FILE *out = open_memstream(&obuf, &olen);
    int batches = 0;
    mt_jsonl_opts o = {.prog = "t", .quiet = 1};
    mt_jsonl_stats st;
    mt_err e = {0};
    int rc = mt_jsonl_run_batch(in, out, NULL, &o, 2, fatal_batch, &batches, &st, &e);
    fclose(in);
    fclose(out);
    CHECK_EQ_INT(rc, MT_EFATAL);
    CHECK_EQ_INT(batches, 2);               /* the third batch never ran */
    CHECK_STR(e.msg, "out.npy: write failed: No space left on device (line 3)");
    CHECK_STR(obuf, "{\"id\":1,\"ok\":true}\n{\"id\":2,\"ok\":true}\n");
    CHECK_EQ_INT(mt_jsonl_exit_code(rc, &st), MT_EXIT_FATAL);
    free(obuf);
}

/* The stream: a handler with 2 slots answers the later of two records first; answers still
 * leave in input order, and a line that fails to parse keeps its place. */
typedef struct stream_ctx {
    size_t max_held;     /* most records started and not answered at once */
    size_t written_when_first_done;
    char **obuf;
    FILE *out;
} stream_ctx;

static int reverse_pairs(void *user, mt_jsonl_stream *s, mt_err *err) {
    (void)err;
    stream_ctx *c = user;
    for (;;) {
        json_t *r[2];
        size_t ln[2], tk[2], n = 0;
        while (n < 2 && mt_jsonl_next(s, &r[n], &ln[n], &tk[n])) n++;
        if (!n) return MT_OK;
        if (n > c->max_held) c->max_held = n;
        for (size_t i = n; i-- > 0;) {   /* the later record first */
            json_t *o = json_pack("{s:I}", "line", (json_int_t)ln[i]);
            if (i == 1 && !c->written_when_first_done) {
                fflush(c->out);
                c->written_when_first_done = 1 + (*c->obuf ? strlen(*c->obuf) : 0);
            }
            if (mt_jsonl_done(s, tk[i], o, MT_OK, NULL)) return MT_OK;
        }
    }
}

static void test_stream(void) {
    const char *input = "{\"id\":\"a\"}\n{\"id\":\"b\"}\nnot json\n\n{\"id\":\"c\"}\n{\"id\":\"d\"}\n{\"id\":\"e\"}\n";
    FILE *in = fmemopen((void *)input, strlen(input), "r");
    char *obuf = NULL;
    size_t olen = 0;
    FILE *out = open_memstream(&obuf, &olen);
    stream_ctx c = {.obuf = &obuf, .out = out};
    mt_jsonl_opts o = {.prog = "t", .quiet = 1};
    mt_jsonl_stats st;
    mt_err e = {0};
    int rc = mt_jsonl_run_stream(in, out, NULL, &o, reverse_pairs, &c, &st, &e);
    fclose(in);
    fclose(out);
    CHECK_EQ_INT(rc, MT_OK);
    CHECK_EQ_INT(c.max_held, 2);
    CHECK_EQ_INT(c.written_when_first_done, 1);   /* b answered first: nothing written before a */
    CHECK_STR(obuf, "{\"id\":\"a\",\"line\":1}\n{\"id\":\"b\",\"line\":2}\n{\"id\":3,\"error\":\"line 3: invalid JSON at "
                    "column 3: '[' or '{' expected near 'not'\"}\n{\"id\":\"c\",\"line\":5}\n{\"id\":\"d\",\"line\":6}\n"
                    "{\"id\":\"e\",\"line\":7}\n");
    CHECK_EQ_INT(st.records, 6);
    CHECK_EQ_INT(st.ok, 5);
    CHECK_EQ_INT(st.failed, 1);
    free(obuf);
}

int main(void) {
    test_stream();
    test_fatal();
    test_err_clip();
    test_error_record();
    test_resume();
    return check_report("jsonl");
}
