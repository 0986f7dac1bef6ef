/* output.c - transcript writers byte-identical to openai-whisper utils.py:
 * format_timestamp (round-half-even milliseconds), WriteTXT, WriteVTT,
 * WriteSRT (with iterate_result's word-based subtitle building:
 * max_line_width, max_line_count, max_words_per_line, highlight_words),
 * WriteTSV (integer milliseconds), WriteJSON (json.dump: ensure_ascii, ", "
 * and ": " separators, Python float repr), and the JSONL record. */
#include "stt/output.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/file.h"

int mt_stt_format_parse(const char *name) {
    static const char *const names[] = {"txt", "srt", "vtt", "tsv", "json", "jsonl"};
    for (int i = 0; name && i < 6; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

const char *mt_stt_format_ext(mt_stt_format f) {
    switch (f) {
    case MT_STT_TXT: return "txt";
    case MT_STT_SRT: return "srt";
    case MT_STT_VTT: return "vtt";
    case MT_STT_TSV: return "tsv";
    case MT_STT_JSON: return "json";
    case MT_STT_JSONL: return "jsonl";
    }
    return "txt";
}

/* ---- UTF-8 and Python's notion of whitespace ---- */

/* Decode the code point at s[0..n); *cp gets it (0xFFFD for an invalid byte,
 * which counts as one character).  Returns the bytes consumed (>= 1). */
static size_t u8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned c = s[0];
    size_t len;
    uint32_t v;
    if (c < 0x80) { *cp = c; return 1; }
    if (c >= 0xC2 && c < 0xE0) { len = 2; v = c & 0x1F; }
    else if (c >= 0xE0 && c < 0xF0) { len = 3; v = c & 0x0F; }
    else if (c >= 0xF0 && c < 0xF5) { len = 4; v = c & 0x07; }
    else { *cp = 0xFFFD; return 1; }
    if (len > n) { *cp = 0xFFFD; return 1; }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) { *cp = 0xFFFD; return 1; }
        v = (v << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && (v < 0x800 || (v >= 0xD800 && v < 0xE000))) || (len == 4 && (v < 0x10000 || v > 0x10FFFF))) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = v;
    return len;
}

/* str.isspace() of one code point (also what re's \s matches). */
static int py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* len(str): code points. */
static size_t u8_len(const char *s, size_t n) {
    size_t k = 0;
    uint32_t cp;
    for (size_t i = 0; i < n; k++) i += u8_next((const unsigned char *)s + i, n - i, &cp);
    return k;
}

/* Length of the leading whitespace run of s[0..n) in bytes. */
static size_t lead_space(const char *s, size_t n) {
    size_t i = 0;
    uint32_t cp;
    while (i < n) {
        size_t l = u8_next((const unsigned char *)s + i, n - i, &cp);
        if (!py_space(cp)) break;
        i += l;
    }
    return i;
}

/* str.strip(): *b, *e delimit the stripped part of s. */
static void py_strip(const char *s, size_t n, size_t *b, size_t *e) {
    size_t i = lead_space(s, n), end = i, j = i;
    uint32_t cp;
    while (j < n) {
        size_t l = u8_next((const unsigned char *)s + j, n - j, &cp);
        j += l;
        if (!py_space(cp)) end = j;
    }
    *b = i;
    *e = end;
}

/* Append s[0..n) with every `from` replaced by `to`. */
static void put_replace(mt_buf *o, const char *s, size_t n, const char *from, const char *to) {
    size_t fl = strlen(from), i = 0, st = 0;
    while (i + fl <= n) {
        if (!memcmp(s + i, from, fl)) {
            mt_buf_put(o, s + st, i - st);
            mt_buf_str(o, to);
            i += fl;
            st = i;
        } else i++;
    }
    mt_buf_put(o, s + st, n - st);
}

static void put_stripped(mt_buf *o, const char *s, const char *from, const char *to) {
    size_t n = s ? strlen(s) : 0, b, e;
    py_strip(s ? s : "", n, &b, &e);
    if (from) put_replace(o, s + b, e - b, from, to);
    else mt_buf_put(o, s + b, e - b);
}

/* ---- timestamps ---- */

static long long py_round(double x) { return (long long)nearbyint(x); }   /* round half to even */

const char *mt_stt_format_timestamp(double seconds, int always_include_hours, char decimal_marker, char *buf) {
    if (!(seconds > 0)) seconds = 0;
    if (seconds > 1e12) seconds = 1e12;
    long long ms = py_round(seconds * 1000.0);
    long long h = ms / 3600000;
    ms -= h * 3600000;
    long long m = ms / 60000;
    ms -= m * 60000;
    long long s = ms / 1000;
    ms -= s * 1000;
    char t[128];
    if (always_include_hours || h > 0)
        snprintf(t, sizeof t, "%02lld:%02lld:%02lld%c%03lld", h, m, s, decimal_marker, ms);
    else
        snprintf(t, sizeof t, "%02lld:%02lld%c%03lld", m, s, decimal_marker, ms);
    size_t n = strlen(t) < 31 ? strlen(t) : 31;
    memcpy(buf, t, n);
    buf[n] = 0;
    return buf;
}

/* ---- options ---- */

static int has_words(const mt_stt_result *r, const mt_stt_write_opts *o) {
    if (o && o->word_timestamps >= 0) return o->word_timestamps != 0;
    for (size_t i = 0; i < r->n_segs; i++)
        if (r->segs[i].n_words) return 1;
    return 0;
}

/* The reference clears a segment (text "", tokens [], words []) when it is
 * empty or instantaneous; such segments carry a "words" key even without word
 * timestamps. */
static int seg_cleared(const mt_stt_segment *s) {
    size_t n = s->text ? strlen(s->text) : 0, b, e;
    py_strip(s->text ? s->text : "", n, &b, &e);
    return b == e;
}

/* ---- txt, tsv ---- */

static void write_txt(mt_buf *o, const mt_stt_result *r) {
    for (size_t i = 0; i < r->n_segs; i++) {
        put_stripped(o, r->segs[i].text, NULL, NULL);
        mt_buf_put(o, "\n", 1);
    }
}

static void write_tsv(mt_buf *o, const mt_stt_result *r) {
    char t[64];
    mt_buf_str(o, "start\tend\ttext\n");
    for (size_t i = 0; i < r->n_segs; i++) {
        snprintf(t, sizeof t, "%lld\t%lld\t", py_round(1000 * r->segs[i].start), py_round(1000 * r->segs[i].end));
        mt_buf_str(o, t);
        put_stripped(o, r->segs[i].text, "\t", " ");
        mt_buf_put(o, "\n", 1);
    }
}

/* ---- subtitles (SubtitlesWriter.iterate_result) ---- */

typedef struct cue_sink {
    mt_buf *o;
    int srt;        /* 1: SRT numbering, hours, ','; 0: VTT */
    int index;
} cue_sink;

static void cue(cue_sink *k, const char *start, const char *end, const char *text, size_t tl) {
    char t[32];
    if (k->srt) {
        snprintf(t, sizeof t, "%d\n", ++k->index);
        mt_buf_str(k->o, t);
    }
    mt_buf_str(k->o, start);
    mt_buf_str(k->o, " --> ");
    mt_buf_str(k->o, end);
    mt_buf_put(k->o, "\n", 1);
    mt_buf_put(k->o, text, tl);
    mt_buf_put(k->o, "\n\n", 2);
}

static const char *ts(const cue_sink *k, double s, char *buf) {
    return mt_stt_format_timestamp(s, k->srt, k->srt ? ',' : '.', buf);
}

typedef struct timing {
    char *word;     /* owned, possibly "\n" + stripped word */
    double start, end;
} timing;

/* re.sub(r"^(\s*)(.*)$", r"\1<u>\2</u>", word) */
static void put_underlined(mt_buf *o, const char *w) {
    size_t n = strlen(w), ws = lead_space(w, n);
    const char *nl = memchr(w + ws, '\n', n - ws);
    size_t stop = n;
    if (nl) {
        /* '.' stops at a newline; '$' matches only before a final one */
        if ((size_t)(nl - w) != n - 1) {
            mt_buf_put(o, w, n);
            return;
        }
        stop = n - 1;
    }
    mt_buf_put(o, w, ws);
    mt_buf_str(o, "<u>");
    mt_buf_put(o, w + ws, stop - ws);
    mt_buf_str(o, "</u>");
    mt_buf_put(o, w + stop, n - stop);
}

static void emit_subtitle(cue_sink *k, const timing *sub, size_t ns, int highlight) {
    char s0[32], s1[32], a[32], b[32];
    mt_buf text = {0};
    for (size_t i = 0; i < ns; i++) mt_buf_str(&text, sub[i].word);
    ts(k, sub[0].start, s0);
    ts(k, sub[ns - 1].end, s1);
    if (!highlight) {
        cue(k, s0, s1, text.p ? text.p : "", text.n);
    } else {
        char last[32];
        memcpy(last, s0, sizeof last);
        for (size_t i = 0; i < ns; i++) {
            ts(k, sub[i].start, a);
            ts(k, sub[i].end, b);
            if (strcmp(last, a)) cue(k, last, a, text.p ? text.p : "", text.n);
            mt_buf h = {0};
            for (size_t j = 0; j < ns; j++) {
                if (j == i) put_underlined(&h, sub[j].word);
                else mt_buf_str(&h, sub[j].word);
            }
            cue(k, a, b, h.p ? h.p : "", h.n);
            if (h.oom) k->o->oom = 1;
            mt_buf_free(&h);
            memcpy(last, b, sizeof last);
        }
    }
    if (text.oom) k->o->oom = 1;
    mt_buf_free(&text);
}

static char *dupn(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

static void write_word_subtitles(cue_sink *k, const mt_stt_result *r, const mt_stt_write_opts *o) {
    int mlw_set = o && o->max_line_width > 0, mlc_set = o && o->max_line_count > 0;
    int preserve = !mlc_set || !mlw_set;
    size_t mlw = mlw_set ? (size_t)o->max_line_width : 1000;
    size_t mwpl = o && o->max_words_per_line > 0 ? (size_t)o->max_words_per_line : 1000;
    size_t mlc = mlc_set ? (size_t)o->max_line_count : 0;
    int highlight = o && o->highlight_words;
    size_t total = 0;
    for (size_t s = 0; s < r->n_segs; s++) total += r->segs[s].n_words;
    timing *sub = calloc(total ? total : 1, sizeof *sub);
    if (!sub) { k->o->oom = 1; return; }
    size_t ns = 0, line_len = 0, line_count = 1;
    double last = 0;
    /* get_start(): the first word's start, else the first segment's */
    int found = 0;
    for (size_t s = 0; s < r->n_segs && !found; s++)
        if (r->segs[s].n_words) { last = r->segs[s].words[0].start; found = 1; }
    if (!found && r->n_segs) last = r->segs[0].start;
    for (size_t s = 0; s < r->n_segs; s++) {
        const mt_stt_segment *sg = &r->segs[s];
        for (size_t ci = 0; ci < sg->n_words; ci += mwpl) {
            size_t cnt = sg->n_words - ci < mwpl ? sg->n_words - ci : mwpl;
            for (size_t i = 0; i < cnt; i++) {
                const mt_stt_word *w = &sg->words[ci + i];
                const char *wt = w->word ? w->word : "";
                size_t wl = strlen(wt), wlen = u8_len(wt, wl);
                int long_pause = !preserve && w->start - last > 3.0;
                int has_room = line_len + wlen <= mlw;
                int seg_break = i == 0 && ns > 0 && preserve;
                char *word;
                if (line_len > 0 && has_room && !long_pause && !seg_break) {
                    line_len += wlen;
                    word = dupn(wt, wl);
                } else {
                    size_t b, e;
                    py_strip(wt, wl, &b, &e);
                    int nl = 0;
                    if ((ns > 0 && mlc_set && (long_pause || line_count >= mlc)) || seg_break) {
                        emit_subtitle(k, sub, ns, highlight);
                        for (size_t q = 0; q < ns; q++) free(sub[q].word);
                        ns = 0;
                        line_count = 1;
                    } else if (line_len > 0) {
                        line_count++;
                        nl = 1;
                    }
                    word = malloc(e - b + 2);
                    if (word) {
                        if (nl) word[0] = '\n';
                        memcpy(word + nl, wt + b, e - b);
                        word[nl + e - b] = 0;
                    }
                    /* len(word.strip()): the newline goes too */
                    line_len = u8_len(wt + b, e - b);
                }
                if (!word) { k->o->oom = 1; goto done; }
                sub[ns].word = word;
                sub[ns].start = w->start;
                sub[ns].end = w->end;
                ns++;
                last = w->start;
            }
        }
    }
    if (ns) emit_subtitle(k, sub, ns, highlight);
done:
    for (size_t q = 0; q < ns; q++) free(sub[q].word);
    free(sub);
}

static void write_subtitles(mt_buf *out, const mt_stt_result *r, const mt_stt_write_opts *o, int srt) {
    cue_sink k = {out, srt, 0};
    if (!srt) mt_buf_str(out, "WEBVTT\n\n");
    /* The reference builds cues from words when the first segment has a
     * "words" key: with word timestamps, or when every segment was cleared
     * (it would fail on a mix of cleared and plain segments; those are
     * written per segment here). */
    int all_cleared = r->n_segs > 0;
    for (size_t i = 0; i < r->n_segs && all_cleared; i++) all_cleared = seg_cleared(&r->segs[i]);
    if (r->n_segs > 0 && (has_words(r, o) || all_cleared)) {
        write_word_subtitles(&k, r, o);
        return;
    }
    char a[32], b[32];
    for (size_t i = 0; i < r->n_segs; i++) {
        mt_buf t = {0};
        put_stripped(&t, r->segs[i].text, "-->", "->");
        cue(&k, ts(&k, r->segs[i].start, a), ts(&k, r->segs[i].end, b), t.p ? t.p : "", t.n);
        if (t.oom) out->oom = 1;
        mt_buf_free(&t);
    }
}

/* ---- json.dump ---- */

/* repr(float): the shortest digits that read back to x, fixed notation for
 * decimal exponents in [-4, 16), else d.ddde+XX. */
static void py_float(mt_buf *o, double x) {
    if (isnan(x)) { mt_buf_str(o, "NaN"); return; }
    if (isinf(x)) { mt_buf_str(o, x < 0 ? "-Infinity" : "Infinity"); return; }
    char e[40];
    int p;
    for (p = 0; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p, x);
        if (strtod(e, NULL) == x) break;
    }
    /* e = [-]d[.ddd]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *q = e;
    int neg = 0;
    if (*q == '-') { neg = 1; q++; }
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    int exp = atoi(q + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    char out[64];
    size_t k = 0;
    if (neg) out[k++] = '-';
    if (x == 0) {
        memcpy(out + k, "0.0", 3);
        k += 3;
    } else if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            out[k++] = '0';
            out[k++] = '.';
            for (int i = 0; i < -exp - 1; i++) out[k++] = '0';
            for (size_t i = 0; i < nd; i++) out[k++] = digits[i];
        } else {
            for (int i = 0; i <= exp; i++) out[k++] = (size_t)i < nd ? digits[i] : '0';
            out[k++] = '.';
            if ((size_t)exp + 1 < nd)
                for (size_t i = (size_t)exp + 1; i < nd; i++) out[k++] = digits[i];
            else out[k++] = '0';
        }
    } else {
        out[k++] = digits[0];
        if (nd > 1) {
            out[k++] = '.';
            for (size_t i = 1; i < nd; i++) out[k++] = digits[i];
        }
        k += (size_t)snprintf(out + k, sizeof out - k, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    mt_buf_put(o, out, k);
}

/* A JSON string as json.dumps(ensure_ascii=True) writes it. */
static void py_str(mt_buf *o, const char *s) {
    size_t n = s ? strlen(s) : 0, i = 0;
    char t[16];
    mt_buf_put(o, "\"", 1);
    while (i < n) {
        uint32_t cp;
        size_t l = u8_next((const unsigned char *)s + i, n - i, &cp);
        i += l;
        switch (cp) {
        case '"': mt_buf_str(o, "\\\""); continue;
        case '\\': mt_buf_str(o, "\\\\"); continue;
        case '\n': mt_buf_str(o, "\\n"); continue;
        case '\r': mt_buf_str(o, "\\r"); continue;
        case '\t': mt_buf_str(o, "\\t"); continue;
        case '\b': mt_buf_str(o, "\\b"); continue;
        case '\f': mt_buf_str(o, "\\f"); continue;
        default: break;
        }
        if (cp >= 0x20 && cp < 0x7F) {
            char c = (char)cp;
            mt_buf_put(o, &c, 1);
        } else if (cp < 0x10000) {
            snprintf(t, sizeof t, "\\u%04x", (unsigned)cp);
            mt_buf_str(o, t);
        } else {
            uint32_t v = cp - 0x10000;
            snprintf(t, sizeof t, "\\u%04x\\u%04x", (unsigned)(0xD800 + (v >> 10)), (unsigned)(0xDC00 + (v & 0x3FF)));
            mt_buf_str(o, t);
        }
    }
    mt_buf_put(o, "\"", 1);
}

static void py_int(mt_buf *o, long long v) {
    char t[32];
    snprintf(t, sizeof t, "%lld", v);
    mt_buf_str(o, t);
}

static void key(mt_buf *o, const char *k, int first) {
    if (!first) mt_buf_str(o, ", ");
    py_str(o, k);
    mt_buf_str(o, ": ");
}

static void write_json(mt_buf *o, const mt_stt_result *r, const mt_stt_write_opts *opts) {
    int words = has_words(r, opts), plain = opts && opts->plain_segments;
    mt_buf_str(o, "{");
    key(o, "text", 1);
    py_str(o, r->text ? r->text : "");
    key(o, "segments", 0);
    mt_buf_str(o, "[");
    for (size_t i = 0; i < r->n_segs; i++) {
        const mt_stt_segment *s = &r->segs[i];
        mt_buf_str(o, i ? ", {" : "{");
        key(o, "id", 1); py_int(o, s->id);
        if (!plain) { key(o, "seek", 0); py_int(o, s->seek); }
        key(o, "start", 0); py_float(o, s->start);
        key(o, "end", 0); py_float(o, s->end);
        key(o, "text", 0); py_str(o, s->text ? s->text : "");
        if (!plain) {
            key(o, "tokens", 0);
            mt_buf_str(o, "[");
            for (size_t t = 0; t < s->n_tokens; t++) {
                if (t) mt_buf_str(o, ", ");
                py_int(o, s->tokens[t]);
            }
            mt_buf_str(o, "]");
            key(o, "temperature", 0); py_float(o, s->temperature);
            key(o, "avg_logprob", 0); py_float(o, s->avg_logprob);
            key(o, "compression_ratio", 0); py_float(o, s->compression_ratio);
            key(o, "no_speech_prob", 0); py_float(o, s->no_speech_prob);
        }
        if (words || seg_cleared(s)) {
            key(o, "words", 0);
            mt_buf_str(o, "[");
            for (size_t w = 0; w < s->n_words; w++) {
                if (w) mt_buf_str(o, ", ");
                mt_buf_str(o, "{");
                key(o, "word", 1); py_str(o, s->words[w].word ? s->words[w].word : "");
                key(o, "start", 0); py_float(o, s->words[w].start);
                key(o, "end", 0); py_float(o, s->words[w].end);
                if (!plain) { key(o, "probability", 0); py_float(o, s->words[w].probability); }
                mt_buf_str(o, "}");
            }
            mt_buf_str(o, "]");
        }
        mt_buf_str(o, "}");
    }
    mt_buf_str(o, "]");
    key(o, "language", 0);
    py_str(o, r->language);
    mt_buf_str(o, "}");
}

/* ---- jansson layout (JSONL) ---- */

/* A JSON string of s; invalid UTF-8 bytes become U+FFFD. */
static json_t *jstr(const char *s) {
    if (!s) s = "";
    json_t *j = json_string(s);
    if (j) return j;
    size_t n = strlen(s);
    mt_buf b = {0};
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = u8_next((const unsigned char *)s + i, n - i, &cp);
        if (cp == 0xFFFD && l == 1) mt_buf_str(&b, "\xEF\xBF\xBD");
        else mt_buf_put(&b, s + i, l);
        i += l;
    }
    j = b.oom ? NULL : json_string(b.p ? b.p : "");
    mt_buf_free(&b);
    return j;
}

json_t *mt_stt_result_json_ex(const mt_stt_result *r, const mt_stt_write_opts *opts) {
    int words = has_words(r, opts), plain = opts && opts->plain_segments;
    json_t *segs = json_array();
    for (size_t i = 0; segs && i < r->n_segs; i++) {
        const mt_stt_segment *s = &r->segs[i];
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(s->id));
        if (!plain) json_object_set_new(o, "seek", json_integer(s->seek));
        json_object_set_new(o, "start", json_real(s->start));
        json_object_set_new(o, "end", json_real(s->end));
        json_object_set_new(o, "text", jstr(s->text));
        if (!plain) {
            json_t *tok = json_array();
            for (size_t t = 0; tok && t < s->n_tokens; t++) json_array_append_new(tok, json_integer(s->tokens[t]));
            json_object_set_new(o, "tokens", tok);
            json_object_set_new(o, "temperature", json_real(s->temperature));
            json_object_set_new(o, "avg_logprob", json_real(s->avg_logprob));
            json_object_set_new(o, "compression_ratio", json_real(s->compression_ratio));
            json_object_set_new(o, "no_speech_prob", json_real(s->no_speech_prob));
        }
        if (words || seg_cleared(s)) {
            json_t *wa = json_array();
            for (size_t w = 0; wa && w < s->n_words; w++)
                json_array_append_new(wa, plain ? json_pack("{s:o,s:f,s:f}", "word", jstr(s->words[w].word), "start",
                                                            s->words[w].start, "end", s->words[w].end)
                                                : json_pack("{s:o,s:f,s:f,s:f}", "word", jstr(s->words[w].word),
                                                            "start", s->words[w].start, "end", s->words[w].end,
                                                            "probability", s->words[w].probability));
            json_object_set_new(o, "words", wa);
        }
        json_array_append_new(segs, o);
    }
    json_t *o = json_object();
    if (!o || !segs) {
        json_decref(o);
        json_decref(segs);
        return NULL;
    }
    json_object_set_new(o, "text", jstr(r->text));
    json_object_set_new(o, "segments", segs);
    json_object_set_new(o, "language", jstr(r->language));
    return o;
}

json_t *mt_stt_result_json(const mt_stt_result *r) { return mt_stt_result_json_ex(r, NULL); }

static void write_jsonl(mt_buf *o, const mt_stt_result *r, const mt_stt_write_opts *opts) {
    json_t *j = mt_stt_result_json_ex(r, opts);
    if (!j) { o->oom = 1; return; }
    json_object_set_new(j, "duration", json_real(r->duration));
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(16));
    json_decref(j);
    if (!s) { o->oom = 1; return; }
    mt_buf_str(o, s);
    mt_buf_put(o, "\n", 1);
    free(s);
}

/* ---- entry points ---- */

int mt_stt_render(mt_stt_format f, const mt_stt_result *res, const mt_stt_write_opts *o, char **out, size_t *len,
                  mt_err *err) {
    mt_buf b = {0};
    mt_buf_put(&b, "", 0);
    switch (f) {
    case MT_STT_TXT: write_txt(&b, res); break;
    case MT_STT_SRT: write_subtitles(&b, res, o, 1); break;
    case MT_STT_VTT: write_subtitles(&b, res, o, 0); break;
    case MT_STT_TSV: write_tsv(&b, res); break;
    case MT_STT_JSON: write_json(&b, res, o); break;
    case MT_STT_JSONL: write_jsonl(&b, res, o); break;
    default: mt_buf_free(&b); return mt_seterr(err, MT_EINVAL, "unknown transcript format %d", (int)f);
    }
    if (b.oom) {
        mt_buf_free(&b);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    *out = b.p;
    *len = b.n;
    return MT_OK;
}

int mt_stt_write_ex(FILE *out, mt_stt_format f, const mt_stt_result *res, const mt_stt_write_opts *o, mt_err *err) {
    char *p;
    size_t n;
    MT_TRY(mt_stt_render(f, res, o, &p, &n, err));
    int bad = fwrite(p, 1, n, out) != n || fflush(out) != 0;
    free(p);
    return bad ? mt_seterr(err, MT_EIO, "write error") : MT_OK;
}

int mt_stt_write_file_ex(const char *path, mt_stt_format f, const mt_stt_result *res, const mt_stt_write_opts *o,
                         mt_err *err) {
    char *p;
    size_t n;
    MT_TRY(mt_stt_render(f, res, o, &p, &n, err));
    int rc = mt_write_file_atomic(path, p, n, err);
    free(p);
    return rc;
}

int mt_stt_write(FILE *out, mt_stt_format f, const mt_stt_result *res, mt_err *err) {
    return mt_stt_write_ex(out, f, res, NULL, err);
}

int mt_stt_write_file(const char *path, mt_stt_format f, const mt_stt_result *res, mt_err *err) {
    return mt_stt_write_file_ex(path, f, res, NULL, err);
}
