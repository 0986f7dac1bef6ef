/* check.h - a minimal unit-test harness.  Each tests/unit/test_*.c is one
 * program; it calls CHECK*() and ends main with `return check_report("name");`
 * which prints "name: N passed, M failed" and returns non-zero on failure.
 * The data directory is tests/data, relative to the repository root (make
 * runs the tests from there). */
#ifndef CHECK_H
#define CHECK_H
#include <math.h>
#include <stdio.h>
#include <string.h>

static int check_pass_, check_fail_;

#define CHECK(cond) do { if (cond) check_pass_++; else { check_fail_++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECK_MSG(cond, ...) do { if (cond) check_pass_++; else { check_fail_++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)
#define CHECK_EQ_INT(a, b) do { long long check_a_ = (a), check_b_ = (b); \
    CHECK_MSG(check_a_ == check_b_, "%lld != %lld", check_a_, check_b_); } while (0)
#define CHECK_STR(a, b) do { const char *check_a_ = (a), *check_b_ = (b); \
    CHECK_MSG(check_a_ && check_b_ && strcmp(check_a_, check_b_) == 0, "\"%s\" != \"%s\"", \
              check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)"); } while (0)
#define CHECK_OK(expr, errp) do { int check_rc_ = (expr); \
    CHECK_MSG(check_rc_ == 0, "%s -> %d: %s", #expr, check_rc_, (errp)->msg); } while (0)

static int check_report(const char *name) {
    printf("%s: %d passed, %d failed\n", name, check_pass_, check_fail_);
    return check_fail_ ? 1 : 0;
}
#endif
