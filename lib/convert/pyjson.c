/* pyjson.c - JSON text exactly as Python's json.dump(obj, f, indent=4) writes
 * it (mlx_lm save_config / save_model index): ensure_ascii escapes, float
 * repr (shortest round-trip digits), ", " / ": " separators with indent. */
#include "core/buf.h"
#include "convert/convert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void mt_py_float_repr(double d, char *buf, size_t n) {
    if (isnan(d)) {
        snprintf(buf, n, "NaN");
        return;
    }
    if (isinf(d)) {
        snprintf(buf, n, d > 0 ? "Infinity" : "-Infinity");
        return;
    }
    if (d == 0) {
        snprintf(buf, n, signbit(d) ? "-0.0" : "0.0");
        return;
    }
    char e[40];
    int p;
    for (p = 0; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p, d);
        if (strtod(e, NULL) == d) break;
    }
    /* e = [-]D[.DDD]e[+-]XX: collect digits and exponent */
    const char *s = e;
    int neg = 0;
    if (*s == '-') neg = 1, s++;
    char dig[24];
    int nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9') dig[nd++] = *s;
    int ex = atoi(s + 1);
    while (nd > 1 && dig[nd - 1] == '0') nd--;
    dig[nd] = 0;
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (ex >= -5 + 1 && ex < 16) {   /* fixed notation: -4 <= ex < 16 */
        if (ex < 0) {
            out[o++] = '0', out[o++] = '.';
            for (int i = 0; i < -ex - 1; i++) out[o++] = '0';
            for (int i = 0; i < nd; i++) out[o++] = dig[i];
        } else {
            for (int i = 0; i <= ex; i++) out[o++] = i < nd ? dig[i] : '0';
            out[o++] = '.';
            if (nd > ex + 1)
                for (int i = ex + 1; i < nd; i++) out[o++] = dig[i];
            else
                out[o++] = '0';
        }
        out[o] = 0;
    } else {
        out[o++] = dig[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) out[o++] = dig[i];
        }
        snprintf(out + o, sizeof out - o, "e%c%02d", ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
    }
    snprintf(buf, n, "%s", out);
}

/* Decode one UTF-8 code point (lenient: invalid bytes pass as U+FFFD). */
static unsigned utf8_next(const unsigned char **pp, const unsigned char *end) {
    const unsigned char *p = *pp;
    unsigned c = *p++;
    int extra = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
    if (c >= 0x80 && extra == 0) {
        *pp = p;
        return 0xfffd;
    }
    if (extra) c &= 0x3f >> extra;
    for (int i = 0; i < extra; i++) {
        if (p >= end || (*p & 0xc0) != 0x80) {
            *pp = p;
            return 0xfffd;
        }
        c = (c << 6) | (*p++ & 0x3f);
    }
    *pp = p;
    return c;
}

static void pb_jstr(mt_buf *b, const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    mt_buf_put(b, "\"", 1);
    while (p < end) {
        char tmp[16];
        unsigned c = *p;
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            mt_buf_put(b, (const char *)p, 1);
            p++;
            continue;
        }
        if (c < 0x80) {
            p++;
            switch (c) {
            case '"': mt_buf_str(b, "\\\""); break;
            case '\\': mt_buf_str(b, "\\\\"); break;
            case '\n': mt_buf_str(b, "\\n"); break;
            case '\r': mt_buf_str(b, "\\r"); break;
            case '\t': mt_buf_str(b, "\\t"); break;
            case '\b': mt_buf_str(b, "\\b"); break;
            case '\f': mt_buf_str(b, "\\f"); break;
            default: snprintf(tmp, sizeof tmp, "\\u%04x", c); mt_buf_str(b, tmp);
            }
            continue;
        }
        c = utf8_next(&p, end);
        if (c >= 0x10000) {
            c -= 0x10000;
            snprintf(tmp, sizeof tmp, "\\u%04x\\u%04x", 0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
        } else {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
        }
        mt_buf_str(b, tmp);
    }
    mt_buf_put(b, "\"", 1);
}

static void indent(mt_buf *b, int level) {
    mt_buf_put(b, "\n", 1);
    for (int i = 0; i < level * 4; i++) mt_buf_put(b, " ", 1);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static void dump(mt_buf *b, const json_t *v, int level, int sort) {
    char tmp[64];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        if (!n) {
            mt_buf_str(b, "{}");
            return;
        }
        const char **keys = malloc(n * sizeof *keys);
        if (!keys) {
            b->oom = 1;
            return;
        }
        size_t i = 0;
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x) keys[i++] = k;
        if (sort) qsort(keys, n, sizeof *keys, cmp_str);
        mt_buf_put(b, "{", 1);
        for (i = 0; i < n; i++) {
            if (i) mt_buf_put(b, ",", 1);
            indent(b, level + 1);
            pb_jstr(b, keys[i], strlen(keys[i]));
            mt_buf_str(b, ": ");
            dump(b, json_object_get(v, keys[i]), level + 1, 0);
        }
        indent(b, level);
        mt_buf_put(b, "}", 1);
        free(keys);
        return;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (!n) {
            mt_buf_str(b, "[]");
            return;
        }
        mt_buf_put(b, "[", 1);
        for (size_t i = 0; i < n; i++) {
            if (i) mt_buf_put(b, ",", 1);
            indent(b, level + 1);
            dump(b, json_array_get(v, i), level + 1, 0);
        }
        indent(b, level);
        mt_buf_put(b, "]", 1);
        return;
    }
    case JSON_STRING: pb_jstr(b, json_string_value(v), json_string_length(v)); return;
    case JSON_INTEGER:
        snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(v));
        mt_buf_str(b, tmp);
        return;
    case JSON_REAL:
        mt_py_float_repr(json_real_value(v), tmp, sizeof tmp);
        mt_buf_str(b, tmp);
        return;
    case JSON_TRUE: mt_buf_str(b, "true"); return;
    case JSON_FALSE: mt_buf_str(b, "false"); return;
    case JSON_NULL: mt_buf_str(b, "null"); return;
    }
}

int mt_pyjson_dump(const json_t *v, int sort_top, char **out, size_t *len, mt_err *err) {
    mt_buf b = {0};
    dump(&b, v, 0, sort_top);
    if (b.oom || !b.p) {
        free(b.p);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    *out = b.p;
    if (len) *len = b.n;
    return MT_OK;
}
