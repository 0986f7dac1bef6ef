/* test_jinja.c - the Jinja engine against cases verified with Python jinja2
 * (tests/data/templates/cases.jsonl, made by tests/gen/gen_template_goldens.py),
 * plus limit cases that must fail cleanly and error messages naming lines. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/file.h"
#include "text/jinja.h"

#define NOW_EPOCH 1768473000LL /* 2026-01-15 10:30:00, as the generator pins strftime_now */

static int render(const char *src, json_t *ctx, const mt_jinja_limits *lim, char **out, mt_err *err) {
    mt_jinja_tmpl *t;
    size_t len;
    *out = NULL;
    int rc = mt_jinja_parse(&t, src, strlen(src), err);
    if (rc) return rc;
    rc = mt_jinja_render(t, ctx, lim, NOW_EPOCH, out, &len, err);
    mt_jinja_free(t);
    if (!rc && strlen(*out) != len) rc = -1;
    return rc;
}

static void run_cases(void) {
    char *buf;
    size_t n;
    mt_err err = {0};
    CHECK_OK(mt_read_file("tests/data/templates/cases.jsonl", &buf, &n, &err), &err);
    if (!buf) return;
    int ncase = 0, nok = 0;
    char *line = buf;
    while (line && *line) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        json_error_t je;
        json_t *c = json_loads(line, 0, &je);
        CHECK_MSG(c != NULL, "bad case line: %s", je.text);
        if (c) {
            const char *tmpl = json_string_value(json_object_get(c, "template"));
            json_t *ctx = json_object_get(c, "context");
            json_t *want = json_object_get(c, "output");
            char *out = NULL;
            mt_err e = {0};
            int rc = render(tmpl, ctx, NULL, &out, &e);
            ncase++;
            if (want) {
                int ok = rc == 0 && out && strcmp(out, json_string_value(want)) == 0;
                CHECK_MSG(ok, "case %d: %s\n  want: %s\n  got : %s (rc %d %s)", ncase, tmpl, json_string_value(want),
                          out ? out : "(null)", rc, e.msg);
                nok += ok;
            } else {
                CHECK_MSG(rc != 0, "case %d should fail (%s): %s\n  got: %s", ncase,
                          json_string_value(json_object_get(c, "error")), tmpl, out ? out : "");
                CHECK_MSG(rc == 0 || strncmp(e.msg, "template line ", 14) == 0, "case %d: message without line: %s", ncase, e.msg);
                nok += rc != 0;
            }
            free(out);
            json_decref(c);
        }
        line = nl ? nl + 1 : NULL;
    }
    printf("jinja cases: %d/%d as jinja2\n", nok, ncase);
    CHECK(ncase >= 90);
    free(buf);
}

static void check_err(const char *src, json_t *ctx, const mt_jinja_limits *lim, int code, const char *needle) {
    char *out = NULL;
    mt_err e = {0};
    int rc = render(src, ctx, lim, &out, &e);
    CHECK_MSG(rc == code, "%s: rc %d, want %d (%s)", src, rc, code, e.msg);
    CHECK_MSG(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", src, e.msg, needle);
    free(out);
}

static void limits(void) {
    mt_jinja_limits small = {1000, 5000, 8};
    mt_jinja_limits steps = {0, 200000, 0};
    check_err("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", NULL, &steps, MT_ELIMIT,
              "step limit");
    /* long operator chains and deep literal nesting are bounded at parse time */
    size_t cn = 16000;
    char *chain = malloc(cn + 1), *q = chain;
    q += sprintf(q, "{{ 1");
    for (int i = 0; i < 5000; i++) q += sprintf(q, "+1");
    sprintf(q, " }}");
    check_err(chain, NULL, NULL, MT_ELIMIT, "too deep");
    q = chain;
    q += sprintf(q, "{{ ");
    for (int i = 0; i < 3000; i++) *q++ = '[';
    for (int i = 0; i < 3000; i++) *q++ = ']';
    sprintf(q, " }}");
    check_err(chain, NULL, NULL, MT_ELIMIT, "too deep");
    free(chain);
    check_err("x\n{% for i in range(1000) %}{{ 'abcdefghij' }}{% endfor %}", NULL, &small, MT_ELIMIT, "output limit");
    check_err("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}\n\n{{ r(0) }}", NULL, &small, MT_ELIMIT, "template line");
    check_err("{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", NULL, NULL, MT_ELIMIT, "recursion depth");
    check_err("{% set ns = namespace(s='x') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", NULL, NULL,
              MT_ELIMIT, "limit");
    check_err("{{ 'x' * 100000000000 }}", NULL, NULL, MT_ELIMIT, "too long");
    check_err("{{ range(100001) | length }}", NULL, NULL, MT_ELIMIT, "range");
    /* deep nesting in the parser */
    /* nested values built at run time stay bounded too */
    check_err("{% set ns = namespace(x=[]) %}{% for i in range(3000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}", NULL,
              NULL, MT_ELIMIT, "too deeply");
    char deep[2000];
    size_t k = 0;
    for (int i = 0; i < 600; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 600; i++) deep[k++] = ')';
    deep[k] = 0;
    char src[2100];
    snprintf(src, sizeof src, "{{ %s }}", deep);
    check_err(src, NULL, NULL, MT_ELIMIT, "too deep");
    /* error messages name the line */
    check_err("a\nb\n{{ 1 | foo }}", NULL, NULL, MT_EFORMAT, "template line 3: No filter named 'foo'");
    check_err("a\n{% if 1 %}\n{{ 1 | foo }}{% endif %}", NULL, NULL, MT_EINVAL, "template line 3: No filter named 'foo'");
    check_err("a\n{% if x %}\n{% endfor %}", NULL, NULL, MT_EFORMAT, "template line 3");
    check_err("\n\n\n\n{{ raise_exception('Roles must alternate!') }}", NULL, NULL, MT_EINVAL, "template line 5: Roles must alternate!");
    check_err("{{ x.y }}", NULL, NULL, MT_EINVAL, "'x' is undefined");
    /* limits do not trip normal work */
    json_t *ctx = json_pack("{s:[i,i,i]}", "xs", 1, 2, 3);
    char *out = NULL;
    mt_err e = {0};
    CHECK_OK(render("{% for x in xs %}{{ x }}{% endfor %}", ctx, &small, &out, &e), &e);
    CHECK_STR(out, "123");
    free(out);
    json_decref(ctx);
    /* strftime_now with a fixed clock */
    CHECK_OK(render("{{ strftime_now('%d %b %Y') }}", NULL, NULL, &out, &e), &e);
    CHECK_STR(out, "15 Jan 2026");
    free(out);
    /* bytes that are not UTF-8 do not break anything */
    CHECK_OK(render("\xff\xfe{{ '\xc3' | length }}{{ '\xe2\x82' | upper }}", NULL, NULL, &out, &e), &e);
    CHECK(out && out[0] == '\xff');
    free(out);
}

int main(void) {
    run_cases();
    limits();
    return check_report("jinja");
}
