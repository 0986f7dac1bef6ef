/* tok_json.c - a minimal, bounds-checked JSON scanner used to load the big
 * parts of tokenizer.json (model.vocab, model.merges) without building a
 * jansson tree of a million nodes: locate value ranges, skip values, decode
 * strings and numbers. */
#include <stdlib.h>
#include <string.h>
#include "text/tok_internal.h"

const char *tk_fj_ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

static int hex4(const char *p, const char *e, uint32_t *v) {
    if (e - p < 4) return -1;
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *v = x;
    return 0;
}

/* p at '"'. Decodes into out (cleared first). Returns the position after the closing quote or NULL. */
const char *tk_fj_string(const char *p, const char *e, tk_buf *out) {
    out->n = 0;
    if (p >= e || *p != '"') return NULL;
    p++;
    const char *run = p;
    while (p < e) {
        char c = *p;
        if (c == '"') { tk_buf_put(out, run, (size_t)(p - run)); return out->oom ? NULL : p + 1; }
        if ((unsigned char)c < 0x20) return NULL;
        if (c != '\\') { p++; continue; }
        tk_buf_put(out, run, (size_t)(p - run));
        if (++p >= e) return NULL;
        c = *p++;
        switch (c) {
        case '"': tk_buf_putc(out, '"'); break;
        case '\\': tk_buf_putc(out, '\\'); break;
        case '/': tk_buf_putc(out, '/'); break;
        case 'b': tk_buf_putc(out, '\b'); break;
        case 'f': tk_buf_putc(out, '\f'); break;
        case 'n': tk_buf_putc(out, '\n'); break;
        case 'r': tk_buf_putc(out, '\r'); break;
        case 't': tk_buf_putc(out, '\t'); break;
        case 'u': {
            uint32_t v;
            if (hex4(p, e, &v)) return NULL;
            p += 4;
            if (v >= 0xD800 && v <= 0xDBFF) {
                uint32_t lo;
                if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, e, &lo) || lo < 0xDC00 || lo > 0xDFFF)
                    return NULL;
                p += 6;
                v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
            } else if (v >= 0xDC00 && v <= 0xDFFF) {
                return NULL;
            }
            tk_buf_put_cp(out, v);
            break;
        }
        default: return NULL;
        }
        run = p;
    }
    return NULL;
}

/* Skip one JSON value starting at p (after whitespace). Returns the end or NULL. */
const char *tk_fj_skip(const char *p, const char *e) {
    int depth = 0;
    p = tk_fj_ws(p, e);
    do {
        p = tk_fj_ws(p, e);
        if (p >= e) return NULL;
        char c = *p;
        if (c == '"') {
            p++;
            while (p < e && *p != '"') { if (*p == '\\') p++; p++; }
            if (p >= e) return NULL;
            p++;
        } else if (c == '{' || c == '[') {
            if (++depth > 10000) return NULL;
            p++;
        } else if (c == '}' || c == ']') {
            if (--depth < 0) return NULL;
            p++;
        } else if (c == ',' || c == ':') {
            if (depth == 0) return NULL;
            p++;
        } else {
            const char *q = p;
            while (p < e && (*p == '-' || *p == '+' || *p == '.' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                             (*p >= 'A' && *p <= 'Z')))
                p++;
            if (p == q) return NULL;
        }
    } while (depth > 0);
    return p;
}

/* Find root.model.vocab and root.model.merges value ranges ([start,end) offsets).
 * Returns 0 (ranges 0,0 when absent) or -1 if the document cannot be scanned. */
int tk_fj_locate(const char *s, size_t n, size_t r[4]) {
    const char *p = s, *e = s + n;
    r[0] = r[1] = r[2] = r[3] = 0;
    tk_buf key = {0};
    int rc = -1;
    p = tk_fj_ws(p, e);
    if (p >= e || *p != '{') goto out;
    p = tk_fj_ws(p + 1, e);
    if (p < e && *p == '}') { rc = 0; goto out; }
    for (;;) {
        p = tk_fj_string(tk_fj_ws(p, e), e, &key);
        if (!p) goto out;
        p = tk_fj_ws(p, e);
        if (p >= e || *p != ':') goto out;
        p = tk_fj_ws(p + 1, e);
        if (key.n == 5 && memcmp(key.p, "model", 5) == 0 && p < e && *p == '{') {
            p = tk_fj_ws(p + 1, e);
            if (p < e && *p == '}') p++;
            else for (;;) {
                p = tk_fj_string(tk_fj_ws(p, e), e, &key);
                if (!p) goto out;
                p = tk_fj_ws(p, e);
                if (p >= e || *p != ':') goto out;
                p = tk_fj_ws(p + 1, e);
                const char *v = p;
                p = tk_fj_skip(p, e);
                if (!p) goto out;
                if (key.n == 5 && memcmp(key.p, "vocab", 5) == 0) { r[0] = (size_t)(v - s); r[1] = (size_t)(p - s); }
                if (key.n == 6 && memcmp(key.p, "merges", 6) == 0) { r[2] = (size_t)(v - s); r[3] = (size_t)(p - s); }
                p = tk_fj_ws(p, e);
                if (p < e && *p == ',') { p++; continue; }
                if (p < e && *p == '}') { p++; break; }
                goto out;
            }
        } else {
            p = tk_fj_skip(p, e);
            if (!p) goto out;
        }
        p = tk_fj_ws(p, e);
        if (p < e && *p == ',') { p++; continue; }
        if (p < e && *p == '}') { rc = 0; break; }
        goto out;
    }
out:
    tk_buf_free(&key);
    return rc;
}

/* Parse a JSON number at p into *v. Returns the end or NULL. */
const char *tk_fj_number(const char *p, const char *e, double *v) {
    char tmp[64];
    size_t k = 0;
    while (p < e && k < sizeof tmp - 1 && (*p == '-' || *p == '+' || *p == '.' || *p == 'e' || *p == 'E' ||
                                           (*p >= '0' && *p <= '9')))
        tmp[k++] = *p++;
    if (!k) return NULL;
    tmp[k] = 0;
    char *end;
    *v = strtod(tmp, &end);
    if (*end) return NULL;
    return p;
}

size_t tk_fj_count(const char *p, const char *e) {
    p = tk_fj_ws(p, e);
    if (p >= e || (*p != '{' && *p != '[')) return 0;
    int obj = *p == '{';
    size_t n = 0;
    p = tk_fj_ws(p + 1, e);
    if (p < e && (*p == '}' || *p == ']')) return 0;
    for (;;) {
        if (obj) {
            p = tk_fj_skip(p, e);   /* the key */
            if (!p) return n;
            p = tk_fj_ws(p, e);
            if (p >= e || *p != ':') return n;
            p++;
        }
        p = tk_fj_skip(p, e);
        if (!p) return n;
        n++;
        p = tk_fj_ws(p, e);
        if (p >= e || *p != ',') return n;
        p++;
    }
}
