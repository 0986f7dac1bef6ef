/* test_json_schema.c - JSON Schema, json_object and regex -> GBNF (gen/json_schema.h),
 * run through the GBNF parser and byte matcher (gen/grammar.h) against the cases in
 * tests/data/schema/ (made by tests/gen/gen_schema_cases.py: documents labelled by
 * Python's jsonschema, strings by re.fullmatch), plus the refusals: every unsupported
 * keyword or regex construct is an error whose message names it. */
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gen/grammar.h"
#include "gen/json_schema.h"

#define DATA "tests/data/schema/"

/* Convert + parse; NULL (with a failed check) when either fails. */
static mt_grammar *schema_grammar(json_t *schema, const char *name) {
    mt_err e = {0};
    char *g = NULL;
    int rc = mt_json_schema_to_gbnf(schema, &g, &e);
    CHECK_MSG(rc == MT_OK, "%s: convert: %s", name, e.msg);
    if (rc) return NULL;
    mt_grammar *gr = NULL;
    rc = mt_grammar_parse(&gr, g, strlen(g), NULL, &e);
    CHECK_MSG(rc == MT_OK, "%s: GBNF does not parse: %s\n%s", name, e.msg, g);
    /* the same schema gives the same text */
    char *g2 = NULL;
    CHECK_OK(mt_json_schema_to_gbnf(schema, &g2, &e), &e);
    CHECK_MSG(g2 && !strcmp(g, g2), "%s: conversion not deterministic", name);
    free(g2);
    free(g);
    return rc ? NULL : gr;
}

static void test_schema_cases(json_t *root) {
    json_t *cases = json_object_get(root, "cases");
    CHECK(json_array_size(cases) >= 20);
    size_t i, j, ndocs = 0, nvalid = 0;
    json_t *c, *d;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        mt_grammar *g = schema_grammar(json_object_get(c, "schema"), name);
        if (!g) continue;
        int bad = 0;
        json_array_foreach(json_object_get(c, "docs"), j, d) {
            const char *text = json_string_value(json_object_get(d, "text"));
            int want = json_is_true(json_object_get(d, "valid")) && json_is_true(json_object_get(d, "layout"));
            int got = mt_grammar_match(g, text, strlen(text));
            ndocs++;
            nvalid += (size_t)want;
            if (got != want && bad++ < 5)
                CHECK_MSG(got == want, "%s: %s: grammar says %d, jsonschema %d", name, text, got, want);
            else CHECK(got == want);
        }
        mt_grammar_free(g);
    }
    CHECK(ndocs > 500 && nvalid > 100 && ndocs - nvalid > 100);
}

static void test_refused(json_t *root) {
    size_t i;
    json_t *c;
    CHECK(json_array_size(json_object_get(root, "refused")) >= 20);
    json_array_foreach(json_object_get(root, "refused"), i, c) {
        const char *want = json_string_value(json_object_get(c, "message"));
        mt_err e = {0};
        char *g = NULL;
        int rc = mt_json_schema_to_gbnf(json_object_get(c, "schema"), &g, &e);
        CHECK_MSG(rc != MT_OK && g == NULL, "accepted a schema it should refuse (%s)", want);
        CHECK_MSG(rc == MT_OK || (strstr(e.msg, want) && !strncmp(e.msg, "json schema: ", 13)),
                  "message \"%s\" does not name %s", e.msg, want);
        free(g);
    }
}

/* json_object: every document of the cases in the layout is matched exactly when it is
 * a JSON object. */
static void test_json_object(json_t *root) {
    mt_err e = {0};
    char *g = NULL;
    mt_grammar *gr = NULL;
    CHECK_OK(mt_json_object_gbnf(&g, &e), &e);
    if (!g) return;
    CHECK_OK(mt_grammar_parse(&gr, g, strlen(g), NULL, &e), &e);
    free(g);
    if (!gr) return;
    size_t i, j, n = 0;
    json_t *c, *d;
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        json_array_foreach(json_object_get(c, "docs"), j, d) {
            if (!json_is_true(json_object_get(d, "layout"))) continue;
            const char *text = json_string_value(json_object_get(d, "text"));
            json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
            int want = json_is_object(v), got = mt_grammar_match(gr, text, strlen(text));
            json_decref(v);
            CHECK_MSG(got == want, "json_object: %s: %d", text, got);
            n += (size_t)want;
        }
    }
    CHECK(n > 100);
    mt_grammar_free(gr);
}

static void test_response_format(void) {
    mt_err e = {0};
    char *a = NULL, *b = NULL;
    json_t *rf = json_loads("{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\",\"strict\":true,"
                            "\"schema\":{\"type\":\"object\",\"properties\":{\"x\":{\"type\":\"integer\"}}}}}", 0, NULL);
    CHECK_OK(mt_response_format_gbnf(rf, &a, &e), &e);
    CHECK_OK(mt_json_schema_to_gbnf(json_object_get(json_object_get(rf, "json_schema"), "schema"), &b, &e), &e);
    CHECK(a && b && !strcmp(a, b));
    free(a);
    free(b);
    json_decref(rf);
    rf = json_loads("{\"type\":\"text\"}", 0, NULL);
    a = (char *)1;
    CHECK_OK(mt_response_format_gbnf(rf, &a, &e), &e);
    CHECK(a == NULL);
    json_decref(rf);
    rf = json_loads("{\"type\":\"json_object\"}", 0, NULL);
    CHECK_OK(mt_response_format_gbnf(rf, &a, &e), &e);
    CHECK(a && strstr(a, "root ::= object"));
    free(a);
    json_decref(rf);
    rf = json_loads("{\"type\":\"xml\"}", 0, NULL);
    CHECK(mt_response_format_gbnf(rf, &a, &e) == MT_EUNSUPPORTED && strstr(e.msg, "xml"));
    json_decref(rf);
    rf = json_loads("{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"p\"}}", 0, NULL);
    CHECK(mt_response_format_gbnf(rf, &a, &e) == MT_EINVAL && strstr(e.msg, "schema"));
    json_decref(rf);
}

static void test_regex_cases(json_t *root) {
    size_t i, j, n = 0;
    json_t *c, *s, *re;
    CHECK(json_array_size(json_object_get(root, "cases")) >= 20);
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        re = json_object_get(c, "regex");
        mt_err e = {0};
        char *g = NULL;
        mt_grammar *gr = NULL;
        int rc = mt_regex_to_gbnf(json_string_value(re), json_string_length(re), &g, &e);
        CHECK_MSG(rc == MT_OK, "regex %s: %s", json_string_value(re), e.msg);
        if (rc) continue;
        rc = mt_grammar_parse(&gr, g, strlen(g), NULL, &e);
        CHECK_MSG(rc == MT_OK, "regex %s: GBNF does not parse: %s\n%s", json_string_value(re), e.msg, g);
        free(g);
        if (rc) continue;
        json_array_foreach(json_object_get(c, "strings"), j, s) {
            json_t *t = json_object_get(s, "text");
            int want = json_is_true(json_object_get(s, "match"));
            int got = mt_grammar_match(gr, json_string_value(t), json_string_length(t));
            CHECK_MSG(got == want, "regex %s: \"%s\": grammar %d, re.fullmatch %d", json_string_value(re),
                      json_string_value(t), got, want);
            n++;
        }
        mt_grammar_free(gr);
    }
    CHECK(n > 200);
    json_array_foreach(json_object_get(root, "refused"), i, c) {
        re = json_object_get(c, "regex");
        const char *want = json_string_value(json_object_get(c, "message"));
        mt_err e = {0};
        char *g = NULL;
        int rc = mt_regex_to_gbnf(json_string_value(re), json_string_length(re), &g, &e);
        CHECK_MSG(rc == MT_EUNSUPPORTED && !g && strstr(e.msg, want), "regex %s: rc %d \"%s\" (want %s)",
                  json_string_value(re), rc, e.msg, want);
        free(g);
    }
    json_array_foreach(json_object_get(root, "invalid"), i, re) {
        mt_err e = {0};
        char *g = NULL;
        int rc = mt_regex_to_gbnf(json_string_value(re), json_string_length(re), &g, &e);
        CHECK_MSG(rc == MT_EINVAL && !g && !strncmp(e.msg, "regex: ", 7), "regex %s: rc %d \"%s\"",
                  json_string_value(re), rc, e.msg);
        free(g);
    }
}

/* A pattern inside a JSON string: the same regex, search semantics, JSON escapes. */
static void test_pattern_in_json(void) {
    json_t *s = json_loads("{\"type\":\"string\",\"pattern\":\"^a\\\\.b\\\\n\\\\\\\\$\"}", 0, NULL);
    mt_grammar *g = schema_grammar(s, "pattern");
    if (g) {
        static const char yes[] = "\"a.b\\n\\\\\"", no1[] = "\"a.b\n\\\\\"", no2[] = "\"axb\\n\\\\\"";
        CHECK(mt_grammar_match(g, yes, strlen(yes)) == 1);
        CHECK(mt_grammar_match(g, no1, strlen(no1)) == 0);
        CHECK(mt_grammar_match(g, no2, strlen(no2)) == 0);
        mt_grammar_free(g);
    }
    json_decref(s);
}

/* Limits give errors, not huge grammars. */
static void test_limits(void) {
    mt_err e = {0};
    char *g = NULL;
    json_t *s = json_loads("{\"type\":\"string\",\"maxLength\":100000}", 0, NULL);
    CHECK(mt_json_schema_to_gbnf(s, &g, &e) == MT_ELIMIT && !g && strstr(e.msg, "maxLength"));
    json_decref(s);
    /* 100 nested arrays */
    char deep[2100];
    size_t o = 0;
    for (int i = 0; i < 100; i++) o += (size_t)snprintf(deep + o, sizeof deep - o, "{\"items\":");
    o += (size_t)snprintf(deep + o, sizeof deep - o, "{}");
    for (int i = 0; i < 100; i++) deep[o++] = '}';
    deep[o] = 0;
    s = json_loads(deep, 0, NULL);
    CHECK(s != NULL);
    CHECK(mt_json_schema_to_gbnf(s, &g, &e) == MT_ELIMIT && !g && strstr(e.msg, "deep"));
    json_decref(s);
    CHECK(mt_regex_to_gbnf("a{5000}", 7, &g, &e) == MT_ELIMIT && !g);
}

/* The fuzz seeds (tests/fuzz/seeds/json_schema/): each schema*.json converts to GBNF
 * that parses, each regex*.txt too. */
static void test_seeds(void) {
    const char *dir = "tests/fuzz/seeds/json_schema";
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d) return;
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        char path[512];
        int is_schema = !strncmp(de->d_name, "schema", 6), is_regex = !strncmp(de->d_name, "regex", 5);
        if (!is_schema && !is_regex) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        mt_err e = {0};
        char *g = NULL;
        int rc;
        if (is_schema) {
            json_error_t je;
            json_t *j = json_load_file(path, 0, &je);
            CHECK_MSG(j != NULL, "%s: %s", path, je.text);
            rc = json_object_get(j, "json_schema") ? mt_response_format_gbnf(j, &g, &e) : mt_json_schema_to_gbnf(j, &g, &e);
            json_decref(j);
        } else {
            char buf[4096];
            FILE *f = fopen(path, "rb");
            size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
            if (f) fclose(f);
            rc = mt_regex_to_gbnf(buf, len, &g, &e);
        }
        CHECK_MSG(rc == MT_OK, "%s: %s", path, e.msg);
        mt_grammar *gr = NULL;
        if (g) CHECK_OK(mt_grammar_parse(&gr, g, strlen(g), NULL, &e), &e);
        mt_grammar_free(gr);
        free(g);
        n++;
    }
    closedir(d);
    CHECK(n >= 10);
}

int main(void) {
    json_error_t je;
    json_t *cases = json_load_file(DATA "cases.json", 0, &je);
    json_t *regex = json_load_file(DATA "regex_cases.json", 0, &je);
    CHECK_MSG(cases && regex, "cannot read " DATA ": %s", je.text);
    if (cases) {
        test_schema_cases(cases);
        test_refused(cases);
        test_json_object(cases);
    }
    if (regex) test_regex_cases(regex);
    test_response_format();
    test_pattern_in_json();
    test_limits();
    test_seeds();
    json_decref(cases);
    json_decref(regex);
    return check_report("test_json_schema");
}
