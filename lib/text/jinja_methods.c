/* jinja_methods.c - the Python methods templates may call on values
 * (str.strip/split/replace/startswith/find/join/format/center/partition/
 * is*... and the case mappings, including Python's full one-to-many ones;
 * dict.get/items/keys/values/copy; list.index/count/copy) and the string
 * helpers behind them that the filters share: strip, case mapping, Jinja's
 * title, replace, padding, join and integer-argument checking.  Strings are
 * handled as code points, with Python's surrogate escapes for invalid bytes. */
#include "text/jinja_eval_int.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* ---------------- string helpers ---------------- */
static int in_chars(int32_t c, jv *chars) {
    size_t i = 0;
    while (i < chars->u.s.n)
        if (jt_u8next(chars->u.s.p, chars->u.s.n, &i) == c) return 1;
    return 0;
}
jv *jt_str_strip(S *s, jv *v, jv *chars, int left, int right) {
    if (chars && chars->t == JV_NONE) chars = NULL;
    if (chars && chars->t != JV_STR) TERR("strip arg must be None or str");
    const char *p = v->u.s.p;
    size_t n = v->u.s.n, a = 0, b = n;
    if (left) {
        while (a < n) {
            size_t j = a;
            int32_t c = jt_u8next(p, n, &j);
            if (chars ? in_chars(c, chars) : jt_u_isspace(c)) a = j;
            else break;
        }
    }
    if (right) {
        while (b > a) {
            size_t st = b - 1;
            while (st > a && ((unsigned char)p[st] & 0xC0) == 0x80) st--;
            size_t j = st;
            int32_t c = jt_u8next(p, n, &j);
            if (j != b) { st = b - 1; c = 0xDC00 + (unsigned char)p[st]; }
            if (chars ? in_chars(c, chars) : jt_u_isspace(c)) b = st;
            else break;
        }
    }
    return jt_v_str_nocopy(s, p + a, b - a);
}

/* Case-map one codepoint: 'U' upper, 'L' lower, 'T' title; includes the full
 * (one-to-many) mappings Python applies that utf8proc's simple ones lack. */
static void put_case(jsb *b, int32_t c, char kind) {
    if (c >= 0xD800 && c <= 0xDFFF) { jt_u8put(b, c); return; }
    if (kind != 'L' && (c == 0xDF || (c >= 0xFB00 && c <= 0xFB06))) {
        static const char *const up[] = {"FF", "FI", "FL", "FFI", "FFL", "ST", "ST"};
        static const char *const ti[] = {"Ff", "Fi", "Fl", "Ffi", "Ffl", "St", "St"};
        unsigned k = (unsigned)(c - 0xFB00);
        if (c == 0xDF) jsb_puts(b, kind == 'U' ? "SS" : "Ss");
        else if (k < 7) jsb_puts(b, kind == 'U' ? up[k] : ti[k]);
        return;
    }
    if (kind == 'L' && c == 0x130) { jsb_puts(b, "i\xcc\x87"); return; }
    jt_u8put(b, kind == 'U' ? utf8proc_toupper(c) : kind == 'L' ? utf8proc_tolower(c) : utf8proc_totitle(c));
}

jv *jt_str_map(S *s, jv *v, int mode) { /* 0 upper 1 lower 2 capitalize 3 swapcase 4 python title */
    jsb b;
    jsb_init(&b, &s->a, 0);
    size_t i = 0;
    int first = 1, prev_cased = 0;
    while (i < v->u.s.n) {
        int32_t c = jt_u8next(v->u.s.p, v->u.s.n, &i);
        char k = 0;
        switch (mode) {
        case 0: k = 'U'; break;
        case 1: k = 'L'; break;
        case 2: k = first ? 'T' : 'L'; break;
        case 3: k = jt_u_iscased_upper(c) ? 'L' : jt_u_iscased_lower(c) ? 'U' : 0; break;
        case 4: {
            k = prev_cased ? 'L' : 'T';
            prev_cased = jt_u_iscased_upper(c) || jt_u_iscased_lower(c);
            break;
        }
        }
        first = 0;
        if (k) put_case(&b, c, k);
        else jt_u8put(&b, c);
    }
    return jt_v_sb(s, &b);
}

/* Jinja's title filter: words start after '-', whitespace, '(', '{', '[', '<' */
jv *jt_jinja_title(S *s, jv *v) {
    jsb b;
    jsb_init(&b, &s->a, 0);
    size_t i = 0;
    int start = 1;
    while (i < v->u.s.n) {
        int32_t c = jt_u8next(v->u.s.p, v->u.s.n, &i);
        int sep = c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || jt_u_isspace(c);
        if (sep) { jt_u8put(&b, c); start = 1; continue; }
        put_case(&b, c, start ? 'U' : 'L');
        start = 0;
    }
    return jt_v_sb(s, &b);
}

static jv *str_split(S *s, jv *v, jv *sep, long long maxsplit, int from_right) {
    jv *l = jt_v_list(s, 0);
    const char *p = v->u.s.p;
    size_t n = v->u.s.n;
    if (sep && sep->t == JV_NONE) sep = NULL;
    if (sep && sep->t != JV_STR) TERR("must be str or None, not %s", jt_tname(sep));
    if (sep) {
        if (!sep->u.s.n) TERR("empty separator");
        if (!from_right) {
            size_t a = 0;
            while (maxsplit < 0 || (long long)l->u.l.n < maxsplit) {
                const char *q = memmem(p + a, n - a, sep->u.s.p, sep->u.s.n);
                if (!q) break;
                jt_l_push(s, l, jt_v_strn(s, p + a, (size_t)(q - p) - a));
                a = (size_t)(q - p) + sep->u.s.n;
            }
            jt_l_push(s, l, jt_v_strn(s, p + a, n - a));
            return l;
        }
        /* rsplit */
        jv *r = jt_v_list(s, 0);
        size_t b = n;
        long long cnt = 0;
        while (maxsplit < 0 || cnt < maxsplit) {
            const char *q = NULL;
            for (size_t k = b; k >= sep->u.s.n; k--)
                if (memcmp(p + k - sep->u.s.n, sep->u.s.p, sep->u.s.n) == 0) { q = p + k - sep->u.s.n; break; }
            if (!q) break;
            jt_l_push(s, r, jt_v_strn(s, q + sep->u.s.n, b - (size_t)(q - p) - sep->u.s.n));
            b = (size_t)(q - p);
            cnt++;
        }
        jt_l_push(s, r, jt_v_strn(s, p, b));
        for (size_t i = r->u.l.n; i-- > 0;) jt_l_push(s, l, r->u.l.v[i]);
        return l;
    }
    /* whitespace split */
    if (from_right) {
        jv *r = jt_v_list(s, 0);
        size_t b = n;
        long long cnt = 0;
        for (;;) {
            while (b > 0 && jt_u_isspace((unsigned char)p[b - 1])) b--;
            if (!b) break;
            if (maxsplit >= 0 && cnt >= maxsplit) { jt_l_push(s, r, jt_v_strn(s, p, b)); break; }
            size_t a = b;
            while (a > 0 && !jt_u_isspace((unsigned char)p[a - 1])) a--;
            jt_l_push(s, r, jt_v_strn(s, p + a, b - a));
            cnt++;
            b = a;
        }
        for (size_t i = r->u.l.n; i-- > 0;) jt_l_push(s, l, r->u.l.v[i]);
        return l;
    }
    size_t i = 0;
    long long cnt = 0;
    for (;;) {
        size_t j = i;
        while (i < n) { j = i; if (!jt_u_isspace(jt_u8next(p, n, &j))) break; i = j; }
        if (i >= n) break;
        if (maxsplit >= 0 && cnt >= maxsplit) {
            jt_l_push(s, l, jt_v_strn(s, p + i, n - i));
            break;
        }
        size_t a = i;
        while (i < n) { j = i; if (jt_u_isspace(jt_u8next(p, n, &j))) break; i = j; }
        jt_l_push(s, l, jt_v_strn(s, p + a, i - a));
        cnt++;
    }
    return l;
}

jv *jt_str_replace(S *s, jv *v, jv *old, jv *new_, long long count) {
    if (old->t != JV_STR || new_->t != JV_STR) TERR("replace() arguments must be str");
    jsb b;
    jsb_init(&b, &s->a, s->max_output);
    b.line = s->line;
    const char *p = v->u.s.p;
    size_t n = v->u.s.n;
    if (!old->u.s.n) {
        size_t i = 0;
        long long k = 0;
        if (count < 0 || k < count) { jsb_put(&b, new_->u.s.p, new_->u.s.n); k++; }
        while (i < n) {
            size_t st = i;
            jt_u8next(p, n, &i);
            jsb_put(&b, p + st, i - st);
            if (count < 0 || k < count) { jsb_put(&b, new_->u.s.p, new_->u.s.n); k++; }
        }
        return jt_v_sb(s, &b);
    }
    size_t a = 0;
    long long k = 0;
    while (count < 0 || k < count) {
        const char *q = memmem(p + a, n - a, old->u.s.p, old->u.s.n);
        if (!q) break;
        jsb_put(&b, p + a, (size_t)(q - p) - a);
        jsb_put(&b, new_->u.s.p, new_->u.s.n);
        a = (size_t)(q - p) + old->u.s.n;
        k++;
    }
    jsb_put(&b, p + a, n - a);
    return jt_v_sb(s, &b);
}

static int starts_ends(S *s, jv *v, jv *x, int ends) {
    if (x->t == JV_TUPLE) {
        for (size_t i = 0; i < x->u.l.n; i++)
            if (starts_ends(s, v, x->u.l.v[i], ends)) return 1;
        return 0;
    }
    if (x->t != JV_STR) TERR("%s first arg must be str or a tuple of str, not %s", ends ? "endswith" : "startswith", jt_tname(x));
    if (x->u.s.n > v->u.s.n) return 0;
    return memcmp(v->u.s.p + (ends ? v->u.s.n - x->u.s.n : 0), x->u.s.p, x->u.s.n) == 0;
}

static long long cp_index_of_byte(jv *v, size_t byte) { return (long long)jt_u8len(v->u.s.p, byte); }

static jv *str_format(S *s, jv *fmt, args *A) {
    jsb b;
    jsb_init(&b, &s->a, s->max_output);
    size_t auto_i = 0;
    const char *p = fmt->u.s.p;
    size_t n = fmt->u.s.n;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '{') {
            if (i + 1 < n && p[i + 1] == '{') { jsb_putc(&b, '{'); i++; continue; }
            size_t j = i + 1;
            while (j < n && p[j] != '}') j++;
            if (j >= n) TERR("Single '{' encountered in format string");
            const char *fld = p + i + 1;
            size_t fl = j - i - 1;
            const char *colon = memchr(fld, ':', fl);
            if (colon) TERR("format specs are not supported");
            jv *x;
            if (fl == 0) x = auto_i < A->np ? A->pos[auto_i++] : NULL;
            else if (fld[0] >= '0' && fld[0] <= '9') {
                size_t k = (size_t)atoi(fld);
                x = k < A->np ? A->pos[k] : NULL;
            } else {
                char *nm = ja_strndup(&s->a, fld, fl);
                x = NULL;
                for (size_t k = 0; k < A->nk; k++)
                    if (!strcmp(A->kn[k], nm)) x = A->kv[k];
            }
            if (!x) TERR("format: missing argument");
            jt_str_of(s, x, &b);
            i = j;
        } else if (c == '}') {
            if (i + 1 < n && p[i + 1] == '}') i++;
            else TERR("Single '}' encountered in format string");
            jsb_putc(&b, '}');
        } else jsb_putc(&b, c);
    }
    return jt_v_sb(s, &b);
}

jv *jt_str_pad(S *s, jv *v, long long width, jv *fill, int mode) { /* 0 center 1 ljust 2 rjust */
    long long len = (long long)jt_u8len(v->u.s.p, v->u.s.n);
    if (width > (long long)s->max_output) jt_rerr(s, MT_ELIMIT, "string too long");
    const char *fc = " ";
    size_t fn = 1;
    if (fill) {
        if (fill->t != JV_STR || jt_u8len(fill->u.s.p, fill->u.s.n) != 1) TERR("The fill character must be exactly one character long");
        fc = fill->u.s.p;
        fn = fill->u.s.n;
    }
    if (width <= len) return v;
    long long pad = width - len, left;
    if (mode == 0) left = pad / 2 + (pad & width & 1);
    else if (mode == 1) left = 0;
    else left = pad;
    jsb b;
    jsb_init(&b, &s->a, 0);
    for (long long i = 0; i < left; i++) jsb_put(&b, fc, fn);
    jsb_put(&b, v->u.s.p, v->u.s.n);
    for (long long i = 0; i < pad - left; i++) jsb_put(&b, fc, fn);
    return jt_v_sb(s, &b);
}

long long jt_int_arg(S *s, jv *v, long long dflt) {
    if (!v || v->t == JV_NONE) return dflt;
    if (v->t != JV_INT && v->t != JV_BOOL) TERR("'%s' object cannot be interpreted as an integer", jt_tname(v));
    return jt_numi(v);
}

jv *jt_call_method(S *s, jv *self, const char *m, args *A, jframe *f) {
    if (self->t == JV_STR) {
        jv *a0 = jt_arg(A, 0, NULL), *a1 = jt_arg(A, 1, NULL);
        if (!strcmp(m, "strip")) return jt_str_strip(s, self, jt_arg(A, 0, "chars"), 1, 1);
        if (!strcmp(m, "lstrip")) return jt_str_strip(s, self, jt_arg(A, 0, "chars"), 1, 0);
        if (!strcmp(m, "rstrip")) return jt_str_strip(s, self, jt_arg(A, 0, "chars"), 0, 1);
        if (!strcmp(m, "split") || !strcmp(m, "rsplit"))
            return str_split(s, self, jt_arg(A, 0, "sep"), jt_int_arg(s, jt_arg(A, 1, "maxsplit"), -1), m[0] == 'r');
        if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
            if (!a0) TERR("%s() takes at least 1 argument", m);
            if (a1 || jt_arg(A, 2, NULL)) {
                jv *sub = jt_do_slice(s, self, a1, jt_arg(A, 2, NULL), NULL);
                return jt_v_bool(s, starts_ends(s, sub, a0, m[0] == 'e'));
            }
            return jt_v_bool(s, starts_ends(s, self, a0, m[0] == 'e'));
        }
        if (!strcmp(m, "replace")) {
            if (!a0 || !a1) TERR("replace() expected at least 2 arguments");
            return jt_str_replace(s, self, a0, a1, jt_int_arg(s, jt_arg(A, 2, "count"), -1));
        }
        if (!strcmp(m, "upper")) return jt_str_map(s, self, 0);
        if (!strcmp(m, "lower") || !strcmp(m, "casefold")) return jt_str_map(s, self, 1);
        if (!strcmp(m, "capitalize")) return jt_str_map(s, self, 2);
        if (!strcmp(m, "swapcase")) return jt_str_map(s, self, 3);
        if (!strcmp(m, "title")) return jt_str_map(s, self, 4);
        if (!strcmp(m, "find") || !strcmp(m, "rfind") || !strcmp(m, "index") || !strcmp(m, "rindex") || !strcmp(m, "count")) {
            if (!a0 || a0->t != JV_STR) TERR("must be str");
            jv *hay = self;
            long long base = 0;
            if (a1 || jt_arg(A, 2, NULL)) {
                hay = jt_do_slice(s, self, a1, jt_arg(A, 2, NULL), NULL);
                if (a1 && a1->t != JV_NONE) {
                    long long st = jt_numi(a1), ln = (long long)jt_u8len(self->u.s.p, self->u.s.n);
                    if (st < 0) st += ln;
                    base = st < 0 ? 0 : st > ln ? ln : st;
                }
            }
            if (!strcmp(m, "count")) {
                long long k = 0;
                if (!a0->u.s.n) return jt_v_int(s, (long long)jt_u8len(hay->u.s.p, hay->u.s.n) + 1);
                size_t at = 0;
                const char *q;
                while ((q = memmem(hay->u.s.p + at, hay->u.s.n - at, a0->u.s.p, a0->u.s.n))) { k++; at = (size_t)(q - hay->u.s.p) + a0->u.s.n; }
                return jt_v_int(s, k);
            }
            long long r = -1;
            if (m[0] == 'r') {
                for (size_t k = hay->u.s.n + 1; k-- > 0;)
                    if (k + a0->u.s.n <= hay->u.s.n && memcmp(hay->u.s.p + k, a0->u.s.p, a0->u.s.n) == 0) { r = cp_index_of_byte(hay, k); break; }
            } else {
                const char *q = a0->u.s.n ? memmem(hay->u.s.p, hay->u.s.n, a0->u.s.p, a0->u.s.n) : hay->u.s.p;
                if (q) r = cp_index_of_byte(hay, (size_t)(q - hay->u.s.p));
            }
            if (r < 0 && (!strcmp(m, "index") || !strcmp(m, "rindex"))) TERR("substring not found");
            return jt_v_int(s, r < 0 ? -1 : r + base);
        }
        if (!strcmp(m, "join")) {
            if (!a0) TERR("join() takes exactly one argument");
            jv *l = jt_iter_list(s, a0);
            for (size_t i = 0; i < l->u.l.n; i++)
                if (l->u.l.v[i]->t != JV_STR) TERR("sequence item %zu: expected str instance, %s found", i, jt_tname(l->u.l.v[i]));
            return jt_str_join(s, self, l, f, NULL);
        }
        if (!strcmp(m, "splitlines")) {
            int keep = a0 ? jt_truthy(a0) : (jt_arg(A, 0, "keepends") ? jt_truthy(jt_arg(A, 0, "keepends")) : 0);
            jv *l = jt_v_list(s, 0);
            const char *p = self->u.s.p;
            size_t n = self->u.s.n, a = 0, i = 0;
            while (i < n) {
                size_t st = i;
                int32_t c = jt_u8next(p, n, &i);
                if (c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029) {
                    if (c == '\r' && i < n && p[i] == '\n') i++;
                    jt_l_push(s, l, jt_v_strn(s, p + a, (keep ? i : st) - a));
                    a = i;
                }
            }
            if (a < n) jt_l_push(s, l, jt_v_strn(s, p + a, n - a));
            return l;
        }
        if (!strncmp(m, "is", 2)) {
            size_t i = 0, n = self->u.s.n;
            int any = 0, ok = 1, has_upper = 0, has_lower = 0;
            if (!strcmp(m, "isupper") || !strcmp(m, "islower")) {
                while (i < n) {
                    int32_t c = jt_u8next(self->u.s.p, n, &i);
                    if (jt_u_iscased_upper(c)) has_upper = 1;
                    if (jt_u_iscased_lower(c)) has_lower = 1;
                }
                return jt_v_bool(s, m[2] == 'u' ? has_upper && !has_lower : has_lower && !has_upper);
            }
            if (!strcmp(m, "istitle")) {
                int prev = 0, cased = 0;
                while (i < n) {
                    int32_t c = jt_u8next(self->u.s.p, n, &i);
                    if (jt_u_iscased_upper(c)) { if (prev) { ok = 0; break; } prev = 1; cased = 1; }
                    else if (jt_u_iscased_lower(c)) { if (!prev) { ok = 0; break; } prev = 1; cased = 1; }
                    else prev = 0;
                }
                return jt_v_bool(s, ok && cased);
            }
            while (i < n) {
                int32_t c = jt_u8next(self->u.s.p, n, &i);
                any = 1;
                int r;
                if (!strcmp(m, "isdigit") || !strcmp(m, "isdecimal") || !strcmp(m, "isnumeric")) r = jt_u_isdigit(c);
                else if (!strcmp(m, "isalpha")) r = jt_u_isalpha(c);
                else if (!strcmp(m, "isalnum")) r = jt_u_isalpha(c) || jt_u_isdigit(c);
                else r = jt_u_isspace(c);
                if (!r) { ok = 0; break; }
            }
            return jt_v_bool(s, any && ok);
        }
        if (!strcmp(m, "format")) return str_format(s, self, A);
        if (!strcmp(m, "center") || !strcmp(m, "ljust") || !strcmp(m, "rjust")) {
            if (!a0) TERR("%s() takes at least 1 argument", m);
            return jt_str_pad(s, self, jt_int_arg(s, a0, 0), a1, m[0] == 'c' ? 0 : m[0] == 'l' ? 1 : 2);
        }
        if (!strcmp(m, "zfill")) {
            long long w = jt_int_arg(s, a0, 0), len = (long long)jt_u8len(self->u.s.p, self->u.s.n);
            if (w > (long long)s->max_output) jt_rerr(s, MT_ELIMIT, "string too long");
            if (w <= len) return self;
            jsb b;
            jsb_init(&b, &s->a, 0);
            size_t st = 0;
            if (self->u.s.n && (self->u.s.p[0] == '+' || self->u.s.p[0] == '-')) { jsb_putc(&b, self->u.s.p[0]); st = 1; }
            for (long long i = 0; i < w - len; i++) jsb_putc(&b, '0');
            jsb_put(&b, self->u.s.p + st, self->u.s.n - st);
            return jt_v_sb(s, &b);
        }
        if (!strcmp(m, "partition") || !strcmp(m, "rpartition")) {
            if (!a0 || a0->t != JV_STR || !a0->u.s.n) TERR("empty separator");
            const char *q = NULL;
            if (m[0] == 'r') {
                for (size_t k = self->u.s.n + 1; k-- > 0;)
                    if (k + a0->u.s.n <= self->u.s.n && memcmp(self->u.s.p + k, a0->u.s.p, a0->u.s.n) == 0) { q = self->u.s.p + k; break; }
            } else q = memmem(self->u.s.p, self->u.s.n, a0->u.s.p, a0->u.s.n);
            jv *t = jt_v_list(s, 3);
            t->t = JV_TUPLE;
            t->u.l.n = 3;
            if (!q) {
                jv *e = jt_v_strn(s, "", 0);
                t->u.l.v[0] = m[0] == 'r' ? e : self;
                t->u.l.v[1] = e;
                t->u.l.v[2] = m[0] == 'r' ? self : e;
            } else {
                size_t at = (size_t)(q - self->u.s.p);
                t->u.l.v[0] = jt_v_strn(s, self->u.s.p, at);
                t->u.l.v[1] = a0;
                t->u.l.v[2] = jt_v_strn(s, q + a0->u.s.n, self->u.s.n - at - a0->u.s.n);
            }
            return t;
        }
        if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
            if (!a0 || a0->t != JV_STR) TERR("%s() argument must be str", m);
            int suf = m[6] == 's';
            if (starts_ends(s, self, a0, suf))
                return jt_v_str_nocopy(s, self->u.s.p + (suf ? 0 : a0->u.s.n), self->u.s.n - a0->u.s.n);
            return self;
        }
        if (!strcmp(m, "expandtabs")) return self;
    } else if (self->t == JV_DICT) {
        if (!strcmp(m, "get")) {
            jv *k = jt_arg(A, 0, NULL);
            if (!k) TERR("get expected at least 1 argument, got 0");
            jv *x = jt_d_get(self, k);
            if (x) return x;
            jv *d = jt_arg(A, 1, NULL);
            return d ? d : s->none;
        }
        if (!strcmp(m, "items") || !strcmp(m, "keys") || !strcmp(m, "values")) {
            jv *l = jt_v_list(s, self->u.d.n);
            for (size_t i = 0; i < self->u.d.n; i++)
                l->u.l.v[i] = m[0] == 'i' ? jt_v_tuple2(s, self->u.d.k[i], self->u.d.v[i]) : m[0] == 'k' ? self->u.d.k[i] : self->u.d.v[i];
            l->u.l.n = self->u.d.n;
            l->u.l.view = m[0] == 'i' ? 1 : m[0] == 'k' ? 2 : 3;
            return l;
        }
        if (!strcmp(m, "copy")) {
            jv *d = jt_v_dict(s);
            for (size_t i = 0; i < self->u.d.n; i++) jt_d_set(s, d, self->u.d.k[i], self->u.d.v[i]);
            return d;
        }
    } else if (self->t == JV_LIST || self->t == JV_TUPLE) {
        jv *a0 = jt_arg(A, 0, NULL);
        if (!strcmp(m, "count")) {
            long long k = 0;
            for (size_t i = 0; i < self->u.l.n; i++) k += a0 && jt_veq(self->u.l.v[i], a0);
            return jt_v_int(s, k);
        }
        if (!strcmp(m, "index")) {
            for (size_t i = 0; i < self->u.l.n; i++)
                if (a0 && jt_veq(self->u.l.v[i], a0)) return jt_v_int(s, (long long)i);
            TERR("value is not in list");
        }
        if (!strcmp(m, "copy")) return jt_do_slice(s, self, NULL, NULL, NULL);
    }
    TERR("'%s' object has no attribute '%s'", jt_tname(self), m);
}

jv *jt_str_join(S *s, jv *sep, jv *items, jframe *f, jv *attr) {
    (void)f;
    jsb b;
    jsb_init(&b, &s->a, s->max_output);
    b.line = s->line;
    for (size_t i = 0; i < items->u.l.n; i++) {
        if (i) jsb_put(&b, sep->u.s.p, sep->u.s.n);
        jv *x = items->u.l.v[i];
        if (attr) x = jt_get_item(s, x, attr);
        jt_str_of(s, x, &b);
    }
    return jt_v_sb(s, &b);
}
