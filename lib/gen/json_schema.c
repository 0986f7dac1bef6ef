/* json_schema.c - JSON Schema (the subset in json_schema.h) to GBNF.
 *
 * One walk over the schema writes one GBNF term per subschema; objects, arrays,
 * property members and $ref targets become named rules (a $ref's rule is named before
 * its target is written, so recursive schemas give recursive rules).  Every keyword is
 * either handled exactly, ignored as an annotation, or refused with its name and the
 * JSON pointer of the schema that holds it.  allOf (and the keywords beside an anyOf /
 * oneOf) are merged into one schema first, keyword by keyword, where that is exact. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen/json_schema.h"

enum { T_NULL = 1, T_BOOL = 2, T_OBJ = 4, T_ARR = 8, T_STR = 16, T_NUM = 32, T_INT = 64, T_ALL = 63 };
enum { N_WS = 1, N_STRING = 2, N_CHAR = 4, N_NUMBER = 8, N_INTEGER = 16, N_VALUE = 32 };

static const char *const ANNOTATIONS[] = {"title", "description", "$schema", "$id", "$comment", "examples",
                                          "default", "deprecated", "readOnly", "writeOnly", "$defs",
                                          "definitions", NULL};
static const char *const KEYWORDS[] = {"type", "properties", "required", "additionalProperties", "enum", "const",
                                       "items", "prefixItems", "minItems", "maxItems", "uniqueItems", "anyOf",
                                       "oneOf", "allOf", "$ref", "pattern", "format", "minLength", "maxLength",
                                       "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", NULL};

typedef struct { char *ref, *name; } refent;

typedef struct {
    json_t *root;
    mt_buf rules;
    mt_err *err;
    refent *refs;
    size_t nrefs, caprefs;
    char **names;
    size_t nnames, capnames;
    unsigned need;
    int depth;
    mt_buf path; /* JSON pointer of the schema being written */
} sc;

static int in_list(const char *const *l, const char *k) {
    for (; *l; l++)
        if (!strcmp(*l, k)) return 1;
    return 0;
}

static int fail(sc *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(sc *c, int code, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *p = c->path.n ? c->path.p : "/";
    if (c->path.n > 120) return mt_seterr(c->err, code, "json schema: %s at ...%s", msg, p + c->path.n - 110);
    return mt_seterr(c->err, code, "json schema: %s at %s", msg, p);
}

static void bputf(mt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bputf(mt_buf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0) mt_buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Path segments (JSON pointer escaping); pop restores the saved length. */
static size_t path_push(sc *c, const char *seg, size_t n) {
    size_t save = c->path.n;
    mt_buf_str(&c->path, "/");
    for (size_t i = 0; i < n && i < 200; i++) {
        if (seg[i] == '~') mt_buf_str(&c->path, "~0");
        else if (seg[i] == '/') mt_buf_str(&c->path, "~1");
        else if ((unsigned char)seg[i] < 0x20) mt_buf_str(&c->path, "?");
        else mt_buf_put(&c->path, seg + i, 1);
    }
    return save;
}
static size_t path_pushs(sc *c, const char *seg) { return path_push(c, seg, strlen(seg)); }
static size_t path_pushi(sc *c, size_t i) {
    char t[32];
    snprintf(t, sizeof t, "%zu", i);
    return path_pushs(c, t);
}
static void path_pop(sc *c, size_t save) {
    c->path.n = save;
    if (c->path.p) c->path.p[save] = 0;
}

/* A fresh rule name from base (sanitised to [a-z0-9-]); malloc'd copy kept in c->names. */
static const char *rule_name(sc *c, const char *base) {
    char nm[80];
    size_t o = 0;
    for (const char *p = base; *p && o < 56; p++) {
        char ch = *p;
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))) ch = '-';
        if (ch == '-' && (o == 0 || nm[o - 1] == '-')) continue;
        nm[o++] = ch;
    }
    while (o && nm[o - 1] == '-') o--;
    if (!o) { memcpy(nm, "r", 1); o = 1; }
    nm[o] = 0;
    char cand[96];
    snprintf(cand, sizeof cand, "%s", nm);
    for (unsigned k = 2;; k++) {
        int taken = 0;
        for (size_t i = 0; i < c->nnames && !taken; i++) taken = !strcmp(c->names[i], cand);
        if (!taken) break;
        snprintf(cand, sizeof cand, "%s-%u", nm, k);
    }
    if (c->nnames == c->capnames) {
        size_t cap = c->capnames ? c->capnames * 2 : 32;
        char **q = realloc(c->names, cap * sizeof *q);
        if (!q) return NULL;
        c->names = q;
        c->capnames = cap;
    }
    char *d = strdup(cand);
    if (!d) return NULL;
    c->names[c->nnames++] = d;
    return d;
}

/* A name for the schema at the current path: "root" plus its segments without the
 * keyword "properties". */
static const char *path_rule_name(sc *c, const char *suffix) {
    mt_buf b = {0};
    mt_buf_str(&b, "root");
    const char *p = c->path.p ? c->path.p : "";
    while (*p == '/') {
        const char *e = strchr(p + 1, '/');
        size_t len = e ? (size_t)(e - p - 1) : strlen(p + 1);
        if (!(len == 10 && !strncmp(p + 1, "properties", 10))) {
            mt_buf_str(&b, "-");
            mt_buf_put(&b, p + 1, len);
        }
        p += len + 1;
    }
    if (suffix) mt_buf_str(&b, suffix);
    if (b.n == 4 && suffix == NULL) mt_buf_str(&b, "-value");
    const char *r = b.oom ? NULL : rule_name(c, b.p);
    mt_buf_free(&b);
    return r;
}

static int add_rule(sc *c, const char *name, const mt_buf *body) {
    if (!name || body->oom) return fail(c, MT_ENOMEM, "out of memory");
    mt_buf_str(&c->rules, name);
    mt_buf_str(&c->rules, " ::= ");
    mt_buf_put(&c->rules, body->p, body->n);
    mt_buf_str(&c->rules, "\n");
    if (c->rules.oom) return fail(c, MT_ENOMEM, "out of memory");
    if (c->rules.n > MT_SCHEMA_MAX_GBNF) return fail(c, MT_ELIMIT, "grammar over %u bytes", MT_SCHEMA_MAX_GBNF);
    return MT_OK;
}

/* ---- keyword values ---- */
static int get_count(sc *c, json_t *s, const char *k, long long *v, long long dflt) {
    json_t *x = json_object_get(s, k);
    *v = dflt;
    if (!x) return MT_OK;
    double d = json_is_integer(x) ? (double)json_integer_value(x) : json_is_real(x) ? json_real_value(x) : -1;
    if (!json_is_number(x) || d < 0 || d != floor(d)) return fail(c, MT_EINVAL, "\"%s\" must be a non-negative integer", k);
    if (d > MT_SCHEMA_MAX_REPEAT) return fail(c, MT_ELIMIT, "\"%s\" over %d is not supported", k, MT_SCHEMA_MAX_REPEAT);
    *v = (long long)d;
    return MT_OK;
}

static int type_bit(const char *t) {
    static const char *const names[] = {"null", "boolean", "object", "array", "string", "number", "integer"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(t, names[i])) return 1 << i;
    return 0;
}

/* The set of types "type" allows (T_ALL without it); 0 with an error set on bad input. */
static int get_types(sc *c, json_t *s, unsigned *types) {
    json_t *t = json_object_get(s, "type");
    *types = T_ALL;
    if (!t) return MT_OK;
    *types = 0;
    if (json_is_string(t)) {
        int b = type_bit(json_string_value(t));
        if (!b) return fail(c, MT_EINVAL, "unknown type \"%s\"", json_string_value(t));
        *types = (unsigned)b;
        return MT_OK;
    }
    if (!json_is_array(t) || json_array_size(t) == 0) return fail(c, MT_EINVAL, "\"type\" must be a string or a non-empty array");
    size_t i;
    json_t *e;
    json_array_foreach(t, i, e) {
        int b = json_is_string(e) ? type_bit(json_string_value(e)) : 0;
        if (!b) return fail(c, MT_EINVAL, "\"type\" holds an unknown type");
        *types |= (unsigned)b;
    }
    return MT_OK;
}

/* ---- $ref ---- */
/* The subschema a "#..." reference points to in the root document, or NULL. */
static json_t *resolve_ref(sc *c, const char *ref) {
    if (ref[0] != '#') return NULL;
    const char *p = ref + 1;
    json_t *cur = c->root;
    while (*p) {
        if (*p != '/') return NULL;
        p++;
        char seg[256];
        size_t n = 0;
        while (*p && *p != '/') {
            char ch = *p++;
            if (ch == '~' && (*p == '0' || *p == '1')) ch = *p++ == '0' ? '~' : '/';
            else if (ch == '%' && p[0] && p[1] && isxdigit((unsigned char)p[0]) && isxdigit((unsigned char)p[1])) {
                char h[3] = {p[0], p[1], 0};
                ch = (char)strtol(h, NULL, 16);
                p += 2;
            }
            if (n + 1 >= sizeof seg) return NULL;
            seg[n++] = ch;
        }
        seg[n] = 0;
        if (json_is_object(cur)) cur = json_object_getn(cur, seg, n);
        else if (json_is_array(cur)) {
            char *end;
            unsigned long i = strtoul(seg, &end, 10);
            if (!n || *end || (n > 1 && seg[0] == '0')) return NULL;
            cur = json_array_get(cur, i);
        } else return NULL;
        if (!cur) return NULL;
    }
    return cur;
}

static int gen(sc *c, json_t *s, mt_buf *o);

static int ref_term(sc *c, json_t *s, mt_buf *o) {
    json_t *r = json_object_get(s, "$ref");
    if (!json_is_string(r)) return fail(c, MT_EINVAL, "\"$ref\" must be a string");
    const char *ref = json_string_value(r);
    for (size_t i = 0; i < c->nrefs; i++)
        if (!strcmp(c->refs[i].ref, ref)) { mt_buf_str(o, c->refs[i].name); return MT_OK; }
    json_t *target = resolve_ref(c, ref);
    if (!target) {
        if (ref[0] != '#') return fail(c, MT_EUNSUPPORTED, "\"$ref\" \"%.100s\" is not within this document", ref);
        return fail(c, MT_EINVAL, "\"$ref\" \"%.100s\" points nowhere", ref);
    }
    /* a chain of bare references that comes back to itself names no value */
    json_t *t = target;
    for (int hop = 0; json_is_object(t) && json_object_size(t) == 1 && json_is_string(json_object_get(t, "$ref")); hop++) {
        if (hop > 64 || !strcmp(json_string_value(json_object_get(t, "$ref")), ref))
            return fail(c, MT_EINVAL, "\"$ref\" \"%.100s\" refers to itself", ref);
        t = resolve_ref(c, json_string_value(json_object_get(t, "$ref")));
    }
    if (c->nrefs == c->caprefs) {
        size_t cap = c->caprefs ? c->caprefs * 2 : 16;
        refent *q = realloc(c->refs, cap * sizeof *q);
        if (!q) return fail(c, MT_ENOMEM, "out of memory");
        c->refs = q;
        c->caprefs = cap;
    }
    char base[96];
    const char *last = strrchr(ref, '/');
    snprintf(base, sizeof base, "ref-%.80s", last ? last + 1 : "root");
    const char *name = rule_name(c, base);
    char *dup = strdup(ref);
    if (!name || !dup) { free(dup); return fail(c, MT_ENOMEM, "out of memory"); }
    c->refs[c->nrefs++] = (refent){dup, (char *)name};
    /* write the target with the path set to the reference */
    mt_buf saved = c->path;
    c->path = (mt_buf){0};
    mt_buf_str(&c->path, ref + 1);
    mt_buf body = {0};
    int rc = gen(c, target, &body);
    mt_buf_free(&c->path);
    c->path = saved;
    if (!rc) rc = add_rule(c, name, &body);
    mt_buf_free(&body);
    if (!rc) mt_buf_str(o, name);
    return rc;
}

/* ---- merging (allOf, and siblings of anyOf / oneOf) ---- */
static int merge_into(sc *c, json_t *dst, json_t *src, int depth);

static int merge_key(sc *c, json_t *dst, const char *k, json_t *v, int depth) {
    json_t *have = json_object_get(dst, k);
    if (!strcmp(k, "allOf")) {
        if (!json_is_array(v)) return fail(c, MT_EINVAL, "\"allOf\" must be an array");
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) MT_TRY(merge_into(c, dst, e, depth + 1));
        return MT_OK;
    }
    if (!have) return json_object_set(dst, k, v) ? fail(c, MT_ENOMEM, "out of memory") : MT_OK;
    if (json_equal(have, v)) return MT_OK;
    if (!strcmp(k, "properties") && json_is_object(have) && json_is_object(v)) {
        json_t *m = json_copy(have);
        if (!m) return fail(c, MT_ENOMEM, "out of memory");
        const char *pk;
        size_t pn;
        json_t *pv;
        json_object_keylen_foreach(v, pk, pn, pv) {
            json_t *a = json_object_getn(m, pk, pn);
            if (a && !json_equal(a, pv)) {
                json_t *both = json_pack("{s:[OO]}", "allOf", a, pv);
                if (!both || json_object_setn_new(m, pk, pn, both)) { json_decref(m); return fail(c, MT_ENOMEM, "out of memory"); }
            } else if (!a && json_object_setn(m, pk, pn, pv)) {
                json_decref(m);
                return fail(c, MT_ENOMEM, "out of memory");
            }
        }
        return json_object_set_new(dst, k, m) ? fail(c, MT_ENOMEM, "out of memory") : MT_OK;
    }
    if (!strcmp(k, "required") && json_is_array(have) && json_is_array(v)) {
        json_t *m = json_copy(have);
        size_t i, j;
        json_t *e, *f;
        json_array_foreach(v, i, e) {
            int dup = 0;
            json_array_foreach(m, j, f) dup |= json_equal(e, f);
            if (!dup) json_array_append(m, e);
        }
        return json_object_set_new(dst, k, m) ? fail(c, MT_ENOMEM, "out of memory") : MT_OK;
    }
    if (!strcmp(k, "type")) {
        unsigned a, b;
        json_t *ta = json_pack("{sO}", "type", have), *tb = json_pack("{sO}", "type", v);
        int rc = (!ta || !tb) ? fail(c, MT_ENOMEM, "out of memory") : get_types(c, ta, &a);
        if (!rc) rc = get_types(c, tb, &b);
        json_decref(ta);
        json_decref(tb);
        MT_TRY(rc);
        unsigned both = a & b;
        if ((a & T_NUM) && (b & T_INT)) both |= T_INT;
        if ((b & T_NUM) && (a & T_INT)) both |= T_INT;
        if ((both & T_NUM) && (both & T_INT)) both &= ~(unsigned)T_INT;
        if (!both) return fail(c, MT_EUNSUPPORTED, "allOf: the types do not intersect (nothing validates)");
        json_t *arr = json_array();
        static const char *const names[] = {"null", "boolean", "object", "array", "string", "number", "integer"};
        for (int i = 0; i < 7; i++)
            if (both & (1u << i)) json_array_append_new(arr, json_string(names[i]));
        return json_object_set_new(dst, k, arr) ? fail(c, MT_ENOMEM, "out of memory") : MT_OK;
    }
    int lower = !strcmp(k, "minimum") || !strcmp(k, "exclusiveMinimum") || !strcmp(k, "minLength") || !strcmp(k, "minItems");
    int upper = !strcmp(k, "maximum") || !strcmp(k, "exclusiveMaximum") || !strcmp(k, "maxLength") || !strcmp(k, "maxItems");
    if ((lower || upper) && json_is_number(have) && json_is_number(v)) {
        double a = json_number_value(have), b = json_number_value(v);
        if (lower ? b > a : b < a) return json_object_set(dst, k, v) ? fail(c, MT_ENOMEM, "out of memory") : MT_OK;
        return MT_OK;
    }
    return fail(c, MT_EUNSUPPORTED, "allOf: cannot merge two different \"%s\"", k);
}

static int merge_into(sc *c, json_t *dst, json_t *src, int depth) {
    if (depth > MT_SCHEMA_MAX_DEPTH) return fail(c, MT_ELIMIT, "allOf / $ref nested over %d deep", MT_SCHEMA_MAX_DEPTH);
    if (json_is_true(src)) return MT_OK;
    if (json_is_false(src)) return fail(c, MT_EUNSUPPORTED, "schema false in allOf (nothing validates)");
    if (!json_is_object(src)) return fail(c, MT_EINVAL, "a schema must be an object or a boolean");
    json_t *r = json_object_get(src, "$ref");
    if (r) {
        json_t *t = json_is_string(r) ? resolve_ref(c, json_string_value(r)) : NULL;
        if (!t) return fail(c, MT_EINVAL, "\"$ref\" points nowhere");
        MT_TRY(merge_into(c, dst, t, depth + 1));
    }
    /* additionalProperties only sees the properties beside it: merging it with another
     * part's properties would change what it means */
    int has_ap = json_object_get(src, "additionalProperties") != NULL;
    int has_props = json_object_get(src, "properties") != NULL;
    if ((has_ap && json_object_get(dst, "properties")) ||
        (has_props && json_object_get(dst, "additionalProperties")))
        return fail(c, MT_EUNSUPPORTED, "allOf: \"additionalProperties\" and another part's properties cannot be merged");
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v) {
        if (in_list(ANNOTATIONS, k) || !strcmp(k, "$ref")) continue;
        if (!in_list(KEYWORDS, k)) return fail(c, MT_EUNSUPPORTED, "unsupported keyword \"%s\"", k);
        MT_TRY(merge_key(c, dst, k, v, depth));
    }
    return MT_OK;
}

/* ---- literals (enum, const) ---- */
static void put_ws(sc *c, mt_buf *o) {
    c->need |= N_WS;
    mt_buf_str(o, " ws ");
}

static void put_number_text(mt_buf *o, json_t *v) {
    char t[64];
    if (json_is_integer(v)) snprintf(t, sizeof t, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) < 1e15) snprintf(t, sizeof t, "%.0f", d);
        else {
            for (int prec = 1; prec <= 17; prec++) {
                snprintf(t, sizeof t, "%.*g", prec, d);
                if (strtod(t, NULL) == d) break;
            }
        }
    }
    mt_buf_str(o, "\"");
    mt_buf_str(o, t);
    mt_buf_str(o, "\"");
}

static int put_literal(sc *c, json_t *v, mt_buf *o, int depth) {
    if (depth > MT_SCHEMA_MAX_DEPTH) return fail(c, MT_ELIMIT, "enum value nested over %d deep", MT_SCHEMA_MAX_DEPTH);
    size_t i;
    json_t *e;
    switch (json_typeof(v)) {
    case JSON_NULL: mt_buf_str(o, "\"null\""); break;
    case JSON_TRUE: mt_buf_str(o, "\"true\""); break;
    case JSON_FALSE: mt_buf_str(o, "\"false\""); break;
    case JSON_INTEGER: case JSON_REAL: put_number_text(o, v); break;
    case JSON_STRING: mt_gbnf_json_string(o, json_string_value(v), json_string_length(v)); break;
    case JSON_ARRAY:
        mt_buf_str(o, "\"[\"");
        put_ws(c, o);
        json_array_foreach(v, i, e) {
            if (i) { mt_buf_str(o, "\",\""); put_ws(c, o); }
            MT_TRY(put_literal(c, e, o, depth + 1));
            put_ws(c, o);
        }
        mt_buf_str(o, "\"]\"");
        break;
    case JSON_OBJECT: {
        const char *k;
        size_t kn;
        int first = 1;
        mt_buf_str(o, "\"{\"");
        put_ws(c, o);
        json_object_keylen_foreach(v, k, kn, e) {
            if (!first) { mt_buf_str(o, "\",\""); put_ws(c, o); }
            first = 0;
            mt_gbnf_json_string(o, k, kn);
            put_ws(c, o);
            mt_buf_str(o, "\":\"");
            put_ws(c, o);
            MT_TRY(put_literal(c, e, o, depth + 1));
            put_ws(c, o);
        }
        mt_buf_str(o, "\"}\"");
        break;
    }
    }
    return MT_OK;
}

static int value_has_type(json_t *v, unsigned types) {
    switch (json_typeof(v)) {
    case JSON_NULL: return !!(types & T_NULL);
    case JSON_TRUE: case JSON_FALSE: return !!(types & T_BOOL);
    case JSON_OBJECT: return !!(types & T_OBJ);
    case JSON_ARRAY: return !!(types & T_ARR);
    case JSON_STRING: return !!(types & T_STR);
    case JSON_INTEGER: return !!(types & (T_NUM | T_INT));
    case JSON_REAL: {
        double d = json_real_value(v);
        return !!(types & T_NUM) || ((types & T_INT) && d == floor(d));
    }
    }
    return 0;
}

static int enum_term(sc *c, json_t *s, mt_buf *o) {
    json_t *en = json_object_get(s, "enum"), *cn = json_object_get(s, "const");
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (in_list(ANNOTATIONS, k) || !strcmp(k, "enum") || !strcmp(k, "const") || !strcmp(k, "type")) continue;
        return fail(c, MT_EUNSUPPORTED, "\"%s\" beside \"%s\" is not supported", k, en ? "enum" : "const");
    }
    if (en && cn) return fail(c, MT_EUNSUPPORTED, "\"enum\" and \"const\" together are not supported");
    if (en && !json_is_array(en)) return fail(c, MT_EINVAL, "\"enum\" must be an array");
    unsigned types;
    MT_TRY(get_types(c, s, &types));
    size_t n = en ? json_array_size(en) : 1, kept = 0;
    mt_buf alts = {0};
    for (size_t i = 0; i < n; i++) {
        json_t *e = en ? json_array_get(en, i) : cn;
        if (!value_has_type(e, types)) continue;
        int dup = 0;
        for (size_t j = 0; j < i && en; j++) dup |= json_equal(json_array_get(en, j), e);
        if (dup) continue;
        if (kept++) mt_buf_str(&alts, " | ");
        int rc = put_literal(c, e, &alts, 0);
        if (rc) { mt_buf_free(&alts); return rc; }
    }
    if (!kept) { mt_buf_free(&alts); return fail(c, MT_EUNSUPPORTED, "no value of \"%s\" fits \"type\" (nothing validates)", en ? "enum" : "const"); }
    mt_buf_str(o, "( ");
    mt_buf_put(o, alts.p, alts.n);
    mt_buf_str(o, " )");
    mt_buf_free(&alts);
    return MT_OK;
}

/* ---- integers in a range ---- */
/* Digit strings of equal length n, from lo to hi (lo <= hi). */
static void digits_range(mt_buf *o, const char *lo, const char *hi, size_t n) {
    if (!n) return;
    if (lo[0] == hi[0]) {
        bputf(o, " \"%c\"", lo[0]);
        digits_range(o, lo + 1, hi + 1, n - 1);
        return;
    }
    int lo_rest0 = 1, hi_rest9 = 1;
    for (size_t i = 1; i < n; i++) { lo_rest0 &= lo[i] == '0'; hi_rest9 &= hi[i] == '9'; }
    char nines[24], zeros[24];
    memset(nines, '9', n - 1);
    memset(zeros, '0', n - 1);
    int a = lo_rest0 ? lo[0] : lo[0] + 1, b = hi_rest9 ? hi[0] : hi[0] - 1, alts = 0;
    mt_buf_str(o, " (");
    if (!lo_rest0) {
        bputf(o, " \"%c\"", lo[0]);
        digits_range(o, lo + 1, nines, n - 1);
        alts++;
    }
    if (a <= b) {
        if (alts++) mt_buf_str(o, " |");
        if (a == b) bputf(o, " \"%c\"", a);
        else bputf(o, " [%c-%c]", a, b);
        if (n > 1) bputf(o, " [0-9]{%zu}", n - 1);
    }
    if (!hi_rest9) {
        if (alts++) mt_buf_str(o, " |");
        bputf(o, " \"%c\"", hi[0]);
        digits_range(o, zeros, hi + 1, n - 1);
    }
    mt_buf_str(o, " )");
}

/* Non-negative integers in [a, b] (b < 0: no upper bound), canonical decimal. */
static void nonneg_range(mt_buf *o, long long a, long long b) {
    char as[24], bs[24], lo[24], hi[24];
    snprintf(as, sizeof as, "%lld", a);
    snprintf(bs, sizeof bs, "%lld", b);
    size_t la = strlen(as), lb = b < 0 ? la : strlen(bs);
    mt_buf_str(o, "(");
    for (size_t L = la; L <= lb; L++) {
        if (L > la) mt_buf_str(o, " |");
        if (L == la) memcpy(lo, as, la + 1);
        else { memset(lo, '0', L); lo[0] = '1'; lo[L] = 0; }
        if (b >= 0 && L == lb) memcpy(hi, bs, lb + 1);
        else { memset(hi, '9', L); hi[L] = 0; }
        digits_range(o, lo, hi, L);
    }
    if (b < 0) bputf(o, " | [1-9] [0-9]{%zu,}", la);
    mt_buf_str(o, " )");
}

#define INT_BOUND 1e18

static int integer_term(sc *c, json_t *s, mt_buf *o) {
    static const char *const ks[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
    int has_lo = 0, has_hi = 0;
    long long lo = 0, hi = 0;
    for (int i = 0; i < 4; i++) {
        json_t *v = json_object_get(s, ks[i]);
        if (!v) continue;
        if (!json_is_number(v)) return fail(c, MT_EINVAL, "\"%s\" must be a number", ks[i]);
        double d = json_number_value(v);
        if (!(fabs(d) <= INT_BOUND)) return fail(c, MT_EUNSUPPORTED, "\"%s\" beyond +-1e18 is not supported", ks[i]);
        long long x;
        if (i == 0) x = (long long)ceil(d);
        else if (i == 1) x = (long long)floor(d) + 1;
        else if (i == 2) x = (long long)floor(d);
        else x = (long long)ceil(d) - 1;
        if (i < 2) { if (!has_lo || x > lo) lo = x; has_lo = 1; }
        else { if (!has_hi || x < hi) hi = x; has_hi = 1; }
    }
    if (!has_lo && !has_hi) {
        c->need |= N_INTEGER;
        mt_buf_str(o, "integer");
        return MT_OK;
    }
    if (has_lo && has_hi && lo > hi) return fail(c, MT_EUNSUPPORTED, "no integer lies within the bounds (nothing validates)");
    int neg = !has_lo || lo < 0, pos = !has_hi || hi >= 0;
    mt_buf_str(o, "( ");
    if (neg) {
        long long mlo = (has_hi && hi < 0) ? -hi : 1, mhi = has_lo ? -lo : -1;
        mt_buf_str(o, "\"-\" ");
        nonneg_range(o, mlo, mhi);
    }
    if (pos) {
        if (neg) mt_buf_str(o, " | ");
        nonneg_range(o, has_lo && lo > 0 ? lo : 0, has_hi ? hi : -1);
    }
    mt_buf_str(o, " )");
    return MT_OK;
}

/* ---- strings ---- */
static const char RE_YEAR[] = "(?:[1-9]\\d{3}|0[1-9]\\d{2}|00[1-9]\\d|000[1-9])";
static const char RE_MONTHDAY[] = "(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\\d|30)"
                                  "|02-(?:0[1-9]|1\\d|2[0-8]))";
static const char RE_LEAP[] = "(?:\\d\\d(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)";
static const char RE_TIME[] = "(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:\\.\\d+)?(?:Z|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)";

static int format_regex(const char *f, mt_buf *re) {
    char date[512];
    snprintf(date, sizeof date, "(?:%s-%s|%s-02-29)", RE_YEAR, RE_MONTHDAY, RE_LEAP);
    if (!strcmp(f, "date")) bputf(re, "^%s$", date);
    else if (!strcmp(f, "time")) bputf(re, "^%s$", RE_TIME);
    else if (!strcmp(f, "date-time")) { bputf(re, "^%s", date); bputf(re, "T%s$", RE_TIME); }
    else if (!strcmp(f, "uuid"))
        mt_buf_str(re, "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$");
    else if (!strcmp(f, "email")) mt_buf_str(re, "^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)+$");
    else return 0;
    return 1;
}

static int string_term(sc *c, json_t *s, mt_buf *o) {
    json_t *pat = json_object_get(s, "pattern"), *fmt = json_object_get(s, "format");
    long long mn, mx;
    MT_TRY(get_count(c, s, "minLength", &mn, 0));
    MT_TRY(get_count(c, s, "maxLength", &mx, -1));
    int lens = json_object_get(s, "minLength") || json_object_get(s, "maxLength");
    if (pat && fmt) return fail(c, MT_EUNSUPPORTED, "\"pattern\" together with \"format\" is not supported");
    if ((pat || fmt) && lens)
        return fail(c, MT_EUNSUPPORTED, "\"%s\" together with minLength / maxLength is not supported", pat ? "pattern" : "format");
    if (pat || fmt) {
        mt_buf re = {0};
        const char *kw = pat ? "pattern" : "format";
        if (pat && !json_is_string(pat)) return fail(c, MT_EINVAL, "\"pattern\" must be a string");
        if (fmt && !json_is_string(fmt)) return fail(c, MT_EINVAL, "\"format\" must be a string");
        if (pat) mt_buf_put(&re, json_string_value(pat), json_string_length(pat));
        else if (!format_regex(json_string_value(fmt), &re))
            return fail(c, MT_EUNSUPPORTED, "unsupported format \"%.60s\" (supported: date, time, date-time, uuid, email)",
                        json_string_value(fmt));
        mt_buf_str(o, "( \"\\\"\" ");
        mt_err e = {0};
        int rc = re.oom ? MT_ENOMEM : mt_regex_gbnf_expr(re.p ? re.p : "", re.n, 1, o, &e);
        mt_buf_free(&re);
        if (rc) return fail(c, rc, "\"%s\": %s", kw, e.msg);
        mt_buf_str(o, " \"\\\"\" )");
        return MT_OK;
    }
    if (!lens) {
        c->need |= N_STRING;
        mt_buf_str(o, "string");
        return MT_OK;
    }
    if (mx >= 0 && mx < mn) return fail(c, MT_EUNSUPPORTED, "maxLength below minLength (nothing validates)");
    c->need |= N_CHAR;
    if (mx < 0) bputf(o, "( \"\\\"\" char{%lld,} \"\\\"\" )", mn);
    else bputf(o, "( \"\\\"\" char{%lld,%lld} \"\\\"\" )", mn, mx);
    return MT_OK;
}

/* ---- objects ---- */
typedef struct { uint32_t *cp; size_t n; } cpstr;

static int cpstr_cmp(const void *a, const void *b) {
    const cpstr *x = a, *y = b;
    for (size_t i = 0; i < x->n && i < y->n; i++)
        if (x->cp[i] != y->cp[i]) return x->cp[i] < y->cp[i] ? -1 : 1;
    return x->n < y->n ? -1 : x->n > y->n;
}

/* The rest of a JSON string (after its opening quote, through its closing quote) whose
 * value is none of names[0..n) (sorted; all share their first d code points). */
static void key_notin(sc *c, mt_buf *o, const cpstr *names, size_t n, size_t d) {
    int alts = 0, here = 0;
    uint32_t *xs = malloc((n + 1) * sizeof *xs);
    size_t nx = 0;
    if (!xs) { o->oom = 1; return; }
    mt_buf_str(o, "( ");
    for (size_t i = 0; i < n; i++) here |= names[i].n == d;
    if (!here) { mt_buf_str(o, "\"\\\"\""); alts++; }
    for (size_t i = 0; i < n;) {
        if (names[i].n == d) { i++; continue; }
        uint32_t x = names[i].cp[d];
        size_t j = i;
        while (j < n && names[j].n > d && names[j].cp[d] == x) j++;
        xs[nx++] = x;
        if (alts++) mt_buf_str(o, " | ");
        mt_gbnf_json_char(o, x);
        mt_buf_str(o, " ");
        key_notin(c, o, names + i, j - i, d + 1);
        i = j;
    }
    if (alts++) mt_buf_str(o, " | ");
    mt_gbnf_json_char_except(o, xs, nx);
    c->need |= N_CHAR;
    mt_buf_str(o, " char* \"\\\"\" )");
    free(xs);
}

/* UTF-8 (valid: jansson checks) to code points; malloc'd. */
static int utf8_cps(const char *s, size_t n, cpstr *out) {
    out->cp = malloc((n + 1) * sizeof *out->cp);
    out->n = 0;
    if (!out->cp) return MT_ENOMEM;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        uint32_t v = u[i];
        size_t len = v < 0x80 ? 1 : v < 0xE0 ? 2 : v < 0xF0 ? 3 : 4;
        if (len > 1) v &= 0x3Fu >> (len - 1);
        for (size_t k = 1; k < len && i + k < n; k++) v = (v << 6) | (u[i + k] & 0x3F);
        out->cp[out->n++] = v;
        i += len;
    }
    return MT_OK;
}

#define MAX_KEY_EXCLUDE 256

typedef struct { const char *key; size_t kn; json_t *schema; int required, from_props; const char *rule; } slot;

static int object_term(sc *c, json_t *s, mt_buf *o) {
    json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    json_t *addl = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props)) return fail(c, MT_EINVAL, "\"properties\" must be an object");
    if (req && !json_is_array(req)) return fail(c, MT_EINVAL, "\"required\" must be an array");
    if (addl && !json_is_boolean(addl) && !json_is_object(addl))
        return fail(c, MT_EINVAL, "\"additionalProperties\" must be a boolean or a schema");
    size_t i, np = json_object_size(props), nr = json_array_size(req);
    json_t *e;
    json_array_foreach(req, i, e) if (!json_is_string(e)) return fail(c, MT_EINVAL, "\"required\" must hold strings");
    /* strict by default where properties are declared; any members where none are */
    int extras = addl ? !json_is_false(addl) : !props;
    json_t *any_schema = json_true();
    if (!addl) addl = any_schema;
    slot *sl = calloc(np + nr + 1, sizeof *sl);
    cpstr *names = calloc(np + nr + 1, sizeof *names);
    size_t ns = 0, nreq = 0;
    mt_buf body = {0}, kv = {0};
    int rc = MT_OK;
    const char *objname = path_rule_name(c, NULL);
    if (!sl || !names || !objname) { rc = fail(c, MT_ENOMEM, "out of memory"); goto done; }
    /* required properties (in properties' order), required ones only named in "required", optional ones */
    for (int pass = 0; pass < 3; pass++) {
        if (pass == 1) {
            json_array_foreach(req, i, e) {
                const char *k = json_string_value(e);
                size_t kn = json_string_length(e);
                if (props && json_object_getn(props, k, kn)) continue;
                int dup = 0;
                for (size_t j = 0; j < ns; j++) dup |= sl[j].kn == kn && !memcmp(sl[j].key, k, kn);
                if (dup) continue;
                if (!extras) {
                    rc = fail(c, MT_EUNSUPPORTED, "required property \"%.60s\" is not in properties and additionalProperties is false", k);
                    goto done;
                }
                sl[ns++] = (slot){k, kn, addl, 1, 0, NULL};
                nreq++;
            }
            continue;
        }
        const char *k;
        size_t kn;
        json_t *v;
        json_object_keylen_foreach(props, k, kn, v) {
            int isreq = 0;
            json_array_foreach(req, i, e) isreq |= json_string_length(e) == kn && !memcmp(json_string_value(e), k, kn);
            if (isreq != (pass == 0)) continue;
            sl[ns++] = (slot){k, kn, v, isreq, 1, NULL};
            nreq += (size_t)isreq;
        }
    }
    /* one rule per member: "key" ws ":" ws value ws */
    for (size_t j = 0; j < ns; j++) {
        char base[120];
        snprintf(base, sizeof base, "%s-%.*s-kv", objname, (int)(sl[j].kn < 40 ? sl[j].kn : 40), sl[j].key);
        sl[j].rule = rule_name(c, base);
        if (!sl[j].rule) { rc = fail(c, MT_ENOMEM, "out of memory"); goto done; }
        kv.n = 0;
        mt_gbnf_json_string(&kv, sl[j].key, sl[j].kn);
        put_ws(c, &kv);
        mt_buf_str(&kv, "\":\"");
        put_ws(c, &kv);
        size_t save = sl[j].from_props ? path_pushs(c, "properties") : path_pushs(c, "additionalProperties");
        if (sl[j].from_props) path_push(c, sl[j].key, sl[j].kn);
        if (json_is_true(sl[j].schema)) { c->need |= N_VALUE; mt_buf_str(&kv, "value"); }
        else rc = gen(c, sl[j].schema, &kv);
        path_pop(c, save);
        if (rc) goto done;
        put_ws(c, &kv);
        if ((rc = add_rule(c, sl[j].rule, &kv))) goto done;
    }
    /* additional members: a key that is none of the above */
    const char *xrule = NULL;
    if (extras) {
        kv.n = 0;
        if (ns == 0) { c->need |= N_STRING; mt_buf_str(&kv, "string"); }
        else {
            for (size_t j = 0; j < ns; j++) {
                if (sl[j].kn > MAX_KEY_EXCLUDE * 4) {
                    rc = fail(c, MT_ELIMIT, "property names over %d characters beside additionalProperties", MAX_KEY_EXCLUDE);
                    goto done;
                }
                if (utf8_cps(sl[j].key, sl[j].kn, &names[j])) { rc = fail(c, MT_ENOMEM, "out of memory"); goto done; }
            }
            qsort(names, ns, sizeof *names, cpstr_cmp);
            mt_buf_str(&kv, "\"\\\"\" ");
            key_notin(c, &kv, names, ns, 0);
        }
        put_ws(c, &kv);
        mt_buf_str(&kv, "\":\"");
        put_ws(c, &kv);
        size_t save = path_pushs(c, "additionalProperties");
        if (json_is_true(addl)) { c->need |= N_VALUE; mt_buf_str(&kv, "value"); }
        else rc = gen(c, addl, &kv);
        path_pop(c, save);
        if (rc) goto done;
        put_ws(c, &kv);
        char base[120];
        snprintf(base, sizeof base, "%s-additional-kv", objname);
        xrule = rule_name(c, base);
        if ((rc = add_rule(c, xrule, &kv))) goto done;
    }
    c->need |= N_WS;
    mt_buf_str(&body, "\"{\" ws ");
    if (nreq) {
        for (size_t j = 0; j < ns; j++) {
            if (!j) bputf(&body, "%s", sl[j].rule);
            else if (sl[j].required) bputf(&body, " \",\" ws %s", sl[j].rule);
            else bputf(&body, " ( \",\" ws %s )?", sl[j].rule);
        }
        if (xrule) bputf(&body, " ( \",\" ws %s )*", xrule);
    } else if (ns || xrule) {
        /* all optional: which member comes first, then the rest each with its comma */
        const char **tail = calloc(ns + 2, sizeof *tail);
        if (!tail) { rc = fail(c, MT_ENOMEM, "out of memory"); goto done; }
        for (size_t j = ns + 1; j-- > 1;) {
            kv.n = 0;
            if (j < ns) bputf(&kv, "( \",\" ws %s )?", sl[j].rule);
            if (j < ns && tail[j + 1]) bputf(&kv, " %s", tail[j + 1]);
            if (j == ns && xrule) bputf(&kv, "( \",\" ws %s )*", xrule);
            if (!kv.n) continue;
            char base[120];
            snprintf(base, sizeof base, "%s-tail", objname);
            tail[j] = rule_name(c, base);
            if ((rc = add_rule(c, tail[j], &kv))) { free(tail); goto done; }
        }
        mt_buf_str(&body, "( ");
        for (size_t j = 0; j < ns; j++) {
            if (j) mt_buf_str(&body, " | ");
            bputf(&body, "%s", sl[j].rule);
            if (tail[j + 1]) bputf(&body, " %s", tail[j + 1]);
        }
        if (xrule) bputf(&body, "%s%s ( \",\" ws %s )*", ns ? " | " : "", xrule, xrule);
        mt_buf_str(&body, " )?");
        free(tail);
    }
    mt_buf_str(&body, " \"}\"");
    if ((rc = add_rule(c, objname, &body))) goto done;
    mt_buf_str(o, objname);
done:
    if (names) for (size_t j = 0; j < ns; j++) free(names[j].cp);
    free(names);
    free(sl);
    mt_buf_free(&body);
    mt_buf_free(&kv);
    return rc;
}

/* ---- arrays ---- */
#define MAX_PREFIX_ITEMS 256

static int array_term(sc *c, json_t *s, mt_buf *o) {
    json_t *items = json_object_get(s, "items"), *prefix = json_object_get(s, "prefixItems");
    json_t *uniq = json_object_get(s, "uniqueItems");
    if (uniq && !json_is_false(uniq)) {
        if (json_is_true(uniq)) return fail(c, MT_EUNSUPPORTED, "unsupported keyword \"uniqueItems\" (true)");
        return fail(c, MT_EINVAL, "\"uniqueItems\" must be a boolean");
    }
    if (items && json_is_array(items))
        return fail(c, MT_EUNSUPPORTED, "\"items\" as an array is not supported (use prefixItems)");
    if (prefix && !json_is_array(prefix)) return fail(c, MT_EINVAL, "\"prefixItems\" must be an array");
    size_t k = json_array_size(prefix);
    if (k > MAX_PREFIX_ITEMS) return fail(c, MT_ELIMIT, "\"prefixItems\" over %d schemas", MAX_PREFIX_ITEMS);
    long long m, M;
    MT_TRY(get_count(c, s, "minItems", &m, 0));
    MT_TRY(get_count(c, s, "maxItems", &M, -1));
    if (items && json_is_false(items)) M = (M < 0 || M > (long long)k) ? (long long)k : M;
    if (M >= 0 && m > M) return fail(c, MT_EUNSUPPORTED, "minItems above maxItems (nothing validates)");
    const char *name = path_rule_name(c, NULL);
    if (!name) return fail(c, MT_ENOMEM, "out of memory");
    mt_buf body = {0}, it = {0};
    int rc = MT_OK;
    c->need |= N_WS;
    mt_buf_str(&body, "\"[\" ws ");
    if (M != 0) {
        /* the element schema past the prefix */
        if (!items || json_is_true(items)) { c->need |= N_VALUE; mt_buf_str(&it, "value"); }
        else if (!json_is_false(items)) {
            size_t save = path_pushs(c, "items");
            rc = gen(c, items, &it);
            path_pop(c, save);
            if (rc) goto done;
        }
        if (m == 0) mt_buf_str(&body, "( ");
        long long open = 0, i;
        for (i = 1; i <= (long long)k && (M < 0 || i <= M); i++) {
            size_t save = path_pushs(c, "prefixItems");
            path_pushi(c, (size_t)(i - 1));
            rc = gen(c, json_array_get(prefix, (size_t)(i - 1)), &body);
            path_pop(c, save);
            if (rc) goto done;
            mt_buf_str(&body, " ws");
            if (i == M || (i == (long long)k && items && json_is_false(items))) break;
            if (i < m) mt_buf_str(&body, " \",\" ws ");
            else { mt_buf_str(&body, " ( \",\" ws "); open++; }
        }
        if (i > (long long)k) {
            /* element i and the ones after it all follow "items" */
            long long a = m - i > 0 ? m - i : 0, b = M < 0 ? -1 : M - i;
            mt_buf_put(&body, it.p, it.n);
            mt_buf_str(&body, " ws");
            if (b != 0) {
                mt_buf_str(&body, " ( \",\" ws ");
                mt_buf_put(&body, it.p, it.n);
                if (b < 0) bputf(&body, " ws ){%lld,}", a);
                else bputf(&body, " ws ){%lld,%lld}", a, b);
            }
        }
        for (; open > 0; open--) mt_buf_str(&body, " )?");
        if (m == 0) mt_buf_str(&body, " )?");
        mt_buf_str(&body, " ");
    }
    mt_buf_str(&body, "\"]\"");
    if (!(rc = add_rule(c, name, &body))) mt_buf_str(o, name);
done:
    mt_buf_free(&body);
    mt_buf_free(&it);
    return rc;
}

/* ---- one schema ---- */
/* A bound of a number range: present, its integer value, exclusive or not. */
typedef struct { int on; long long v; int excl; } nbound;

/* Non-negative decimals y (no exponent) with lo <= y <= hi (each bound optional, maybe
 * exclusive; integer-valued): alternatives by integer part -- those strictly inside
 * take any fraction, the lower bound itself a non-zero fraction when exclusive, the
 * upper bound itself a zero fraction (or none) when inclusive.  Writes nothing and
 * returns 0 when no such y exists. */
static int nonneg_decimals(mt_buf *o, nbound lo, nbound hi) {
    long long any_lo = 0, any_hi = -1;
    if (lo.on && lo.v >= 0) any_lo = lo.excl ? lo.v + 1 : lo.v;
    if (hi.on && hi.v < 0) return 0;
    if (hi.on && hi.v == 0 && hi.excl) return 0;
    if (hi.on) any_hi = hi.v - 1;
    int alts = 0;
    mt_buf_str(o, "( ");
    if (!hi.on || any_lo <= any_hi) {
        nonneg_range(o, any_lo, hi.on ? any_hi : -1);
        mt_buf_str(o, " ( \".\" [0-9]+ )?");
        alts++;
    }
    if (lo.on && lo.excl && lo.v >= 0 && (!hi.on || lo.v < hi.v)) {
        bputf(o, "%s\"%lld\" \".\" \"0\"* [1-9] [0-9]*", alts++ ? " | " : "", lo.v);
    }
    if (hi.on && !hi.excl && (!lo.on || lo.v < hi.v || (lo.v == hi.v && !lo.excl)))
        bputf(o, "%s\"%lld\" ( \".\" \"0\"+ )?", alts++ ? " | " : "", hi.v);
    mt_buf_str(o, " )");
    return alts;
}

/* Numbers with integer-valued bounds, exactly, written without an exponent. */
static int number_term(sc *c, json_t *s, mt_buf *o) {
    static const char *const ks[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
    nbound lo = {0}, hi = {0};
    for (int i = 0; i < 4; i++) {
        json_t *v = json_object_get(s, ks[i]);
        if (!v) continue;
        if (!json_is_number(v)) return fail(c, MT_EINVAL, "\"%s\" must be a number", ks[i]);
        double d = json_number_value(v);
        if (!(fabs(d) <= INT_BOUND) || d != floor(d))
            return fail(c, MT_EUNSUPPORTED, "\"%s\" %g on type number is not supported (only whole bounds within +-1e18)",
                        ks[i], d);
        nbound b = {1, (long long)d, i == 1 || i == 3};
        nbound *t = i < 2 ? &lo : &hi;
        /* the tighter of minimum / exclusiveMinimum (maximum / exclusiveMaximum) */
        if (!t->on || (i < 2 ? (b.v > t->v || (b.v == t->v && b.excl)) : (b.v < t->v || (b.v == t->v && b.excl)))) *t = b;
    }
    if (!lo.on && !hi.on) {
        c->need |= N_NUMBER;
        mt_buf_str(o, "number");
        return MT_OK;
    }
    mt_buf pos = {0}, neg = {0};
    /* x >= 0 part; x < 0 as "-" y with y = -x > 0: bounds mirrored */
    nbound plo = lo.on && lo.v >= 0 ? lo : (nbound){0};
    int np = nonneg_decimals(&pos, plo, hi);
    nbound nlo = hi.on && hi.v < 0 ? (nbound){1, -hi.v, hi.excl} : (nbound){1, 0, 1};
    nbound nhi = lo.on ? (nbound){1, -lo.v, lo.excl} : (nbound){0};
    int nn = (!lo.on || lo.v < 0) ? nonneg_decimals(&neg, nlo, nhi) : 0;
    int rc = MT_OK;
    if (pos.oom || neg.oom) rc = fail(c, MT_ENOMEM, "out of memory");
    else if (!np && !nn) rc = fail(c, MT_EUNSUPPORTED, "no number lies within the bounds (nothing validates)");
    else {
        mt_buf_str(o, "( ");
        if (np) mt_buf_put(o, pos.p, pos.n);
        if (np && nn) mt_buf_str(o, " | ");
        if (nn) { mt_buf_str(o, "\"-\" "); mt_buf_put(o, neg.p, neg.n); }
        mt_buf_str(o, " )");
    }
    mt_buf_free(&pos);
    mt_buf_free(&neg);
    return rc;
}

/* The alternatives for the types the schema allows, each with its keywords. */
static int typed_term(sc *c, json_t *s, mt_buf *o) {
    unsigned types;
    MT_TRY(get_types(c, s, &types));
    if ((types & T_NUM) && (types & T_INT)) types &= ~(unsigned)T_INT;
    int n = 0;
    for (unsigned t = types; t; t &= t - 1) n++;
    if (n > 1) mt_buf_str(o, "( ");
    int first = 1;
    static const unsigned order[] = {T_OBJ, T_ARR, T_STR, T_NUM, T_INT, T_BOOL, T_NULL};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++) {
        if (!(types & order[i])) continue;
        if (!first) mt_buf_str(o, " | ");
        first = 0;
        switch (order[i]) {
        case T_OBJ: MT_TRY(object_term(c, s, o)); break;
        case T_ARR: MT_TRY(array_term(c, s, o)); break;
        case T_STR: MT_TRY(string_term(c, s, o)); break;
        case T_NUM: MT_TRY(number_term(c, s, o)); break;
        case T_INT: MT_TRY(integer_term(c, s, o)); break;
        case T_BOOL: mt_buf_str(o, "( \"true\" | \"false\" )"); break;
        default: mt_buf_str(o, "\"null\""); break;
        }
    }
    if (n > 1) mt_buf_str(o, " )");
    return MT_OK;
}

/* Count the keywords of s that constrain (not annotations); optionally skipping one. */
static int constraint_count(json_t *s, const char *skip) {
    int n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) n += !in_list(ANNOTATIONS, k) && (!skip || strcmp(k, skip));
    return n;
}

static int gen_object(sc *c, json_t *s, mt_buf *o) {
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (in_list(ANNOTATIONS, k) || in_list(KEYWORDS, k)) continue;
        return fail(c, MT_EUNSUPPORTED, "unsupported keyword \"%s\"", k);
    }
    json_t *any = json_object_get(s, "anyOf"), *one = json_object_get(s, "oneOf"), *all = json_object_get(s, "allOf");
    if (json_object_get(s, "$ref") && constraint_count(s, "$ref") == 0) return ref_term(c, s, o);
    /* {"allOf": [X]} with annotations beside it is X (a reference stays a rule) */
    if (all && json_array_size(all) == 1 && constraint_count(s, "allOf") == 0) {
        size_t save = path_pushs(c, "allOf");
        path_pushs(c, "0");
        int rc = gen(c, json_array_get(all, 0), o);
        path_pop(c, save);
        return rc;
    }
    if (all || json_object_get(s, "$ref")) {
        /* every keyword of s and of each part merged into one schema */
        json_t *m = json_object();
        if (!m) return fail(c, MT_ENOMEM, "out of memory");
        size_t save = path_pushs(c, "allOf");
        int rc = merge_into(c, m, s, 0);
        path_pop(c, save);
        if (!rc) rc = gen(c, m, o);
        json_decref(m);
        return rc;
    }
    if (any && one) return fail(c, MT_EUNSUPPORTED, "\"anyOf\" together with \"oneOf\" is not supported");
    if (any || one) {
        json_t *alts = any ? any : one;
        const char *kw = any ? "anyOf" : "oneOf";
        if (!json_is_array(alts) || !json_array_size(alts)) return fail(c, MT_EINVAL, "\"%s\" must be a non-empty array", kw);
        int siblings = constraint_count(s, kw) > 0;
        size_t i;
        json_t *a;
        mt_buf_str(o, "( ");
        json_array_foreach(alts, i, a) {
            if (i) mt_buf_str(o, " | ");
            size_t save = path_pushs(c, kw);
            path_pushi(c, i);
            int rc;
            if (!siblings) rc = gen(c, a, o);
            else {
                /* (siblings and a) for each alternative a */
                json_t *m = json_object();
                rc = m ? merge_into(c, m, s, 0) : fail(c, MT_ENOMEM, "out of memory");
                if (!rc) { json_object_del(m, kw); rc = merge_into(c, m, a, 0); }
                if (!rc) rc = gen(c, m, o);
                json_decref(m);
            }
            path_pop(c, save);
            MT_TRY(rc);
        }
        mt_buf_str(o, " )");
        return MT_OK;
    }
    if (json_object_get(s, "enum") || json_object_get(s, "const")) return enum_term(c, s, o);
    return typed_term(c, s, o);
}

static int gen(sc *c, json_t *s, mt_buf *o) {
    if (json_is_true(s)) { c->need |= N_VALUE; mt_buf_str(o, "value"); return MT_OK; }
    if (json_is_false(s)) return fail(c, MT_EUNSUPPORTED, "schema false (nothing validates)");
    if (!json_is_object(s)) return fail(c, MT_EINVAL, "a schema must be an object or a boolean");
    if (c->depth >= MT_SCHEMA_MAX_DEPTH) return fail(c, MT_ELIMIT, "schema nested over %d deep", MT_SCHEMA_MAX_DEPTH);
    c->depth++;
    int rc = gen_object(c, s, o);
    c->depth--;
    if (!rc && o->oom) rc = fail(c, MT_ENOMEM, "out of memory");
    if (!rc && o->n > MT_SCHEMA_MAX_GBNF) rc = fail(c, MT_ELIMIT, "grammar over %u bytes", MT_SCHEMA_MAX_GBNF);
    return rc;
}

/* ---- the shared rules and the entry points ---- */
static void put_shared(mt_buf *b, unsigned need) {
    if (need & N_VALUE) need |= N_STRING | N_NUMBER | N_WS;
    if (need & N_STRING) need |= N_CHAR;
    if (need & N_VALUE)
        mt_buf_str(b, "value ::= object | array | string | number | \"true\" | \"false\" | \"null\"\n"
                      "object ::= \"{\" ws ( string ws \":\" ws value ws ( \",\" ws string ws \":\" ws value ws )* )? \"}\"\n"
                      "array ::= \"[\" ws ( value ws ( \",\" ws value ws )* )? \"]\"\n");
    if (need & N_STRING) mt_buf_str(b, "string ::= \"\\\"\" char* \"\\\"\"\n");
    if (need & N_CHAR) mt_buf_str(b, "char ::= " MT_JSON_CHAR_GBNF "\n");
    if (need & N_NUMBER)
        mt_buf_str(b, "number ::= \"-\"? ( \"0\" | [1-9] [0-9]{0,15} ) ( \".\" [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?\n");
    if (need & N_INTEGER) mt_buf_str(b, "integer ::= \"0\" | \"-\"? [1-9] [0-9]{0,15}\n");
    if (need & N_WS) mt_buf_str(b, "ws ::= ( \" \" | \"\\n\" [ \\t]{0,20} )?\n");
}

static void sc_free(sc *c) {
    for (size_t i = 0; i < c->nrefs; i++) free(c->refs[i].ref);
    for (size_t i = 0; i < c->nnames; i++) free(c->names[i]);
    free(c->refs);
    free(c->names);
    mt_buf_free(&c->rules);
    mt_buf_free(&c->path);
}

int mt_json_schema_to_gbnf(json_t *schema, char **gbnf, mt_err *err) {
    *gbnf = NULL;
    if (!schema) return mt_seterr(err, MT_EINVAL, "json schema: no schema");
    sc c = {.root = schema, .err = err};
    mt_buf top = {0};
    static const char *const reserved[] = {"root", "value", "object", "array", "string", "char", "number", "integer", "ws"};
    for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++)
        if (!rule_name(&c, reserved[i])) { sc_free(&c); return mt_seterr(err, MT_ENOMEM, "json schema: out of memory"); }
    int rc = gen(&c, schema, &top);
    mt_buf out = {0};
    if (!rc) {
        mt_buf_str(&out, "root ::= ");
        mt_buf_put(&out, top.p, top.n);
        mt_buf_str(&out, "\n");
        mt_buf_put(&out, c.rules.p, c.rules.n);
        put_shared(&out, c.need);
        if (out.oom) rc = mt_seterr(err, MT_ENOMEM, "json schema: out of memory");
    }
    mt_buf_free(&top);
    sc_free(&c);
    if (rc) { mt_buf_free(&out); return rc; }
    *gbnf = out.p;
    return MT_OK;
}

int mt_json_object_gbnf(char **gbnf, mt_err *err) {
    *gbnf = NULL;
    mt_buf out = {0};
    mt_buf_str(&out, "root ::= object\n");
    put_shared(&out, N_VALUE);
    if (out.oom) { mt_buf_free(&out); return mt_seterr(err, MT_ENOMEM, "json schema: out of memory"); }
    *gbnf = out.p;
    return MT_OK;
}

int mt_response_format_gbnf(json_t *rf, char **gbnf, mt_err *err) {
    *gbnf = NULL;
    const char *type = json_string_value(json_object_get(rf, "type"));
    if (!json_is_object(rf) || !type) return mt_seterr(err, MT_EINVAL, "response_format: needs a \"type\"");
    if (!strcmp(type, "text")) return MT_OK;
    if (!strcmp(type, "json_object")) return mt_json_object_gbnf(gbnf, err);
    if (strcmp(type, "json_schema"))
        return mt_seterr(err, MT_EUNSUPPORTED, "response_format: unsupported type \"%.60s\"", type);
    json_t *js = json_object_get(rf, "json_schema");
    json_t *schema = json_object_get(js, "schema");
    if (!json_is_object(js) || !schema)
        return mt_seterr(err, MT_EINVAL, "response_format: \"json_schema\" needs a \"schema\"");
    return mt_json_schema_to_gbnf(schema, gbnf, err);
}
