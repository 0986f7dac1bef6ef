/* g2p.c - kokoro-onnx's English (and any espeak language) G2P over libespeak-ng (see g2p.h).
 *
 * The pipeline, step for step as Python runs it (strings are code-point arrays here,
 * because Python's str indexing, strip and len count code points):
 *   1. kokoro-onnx: text.strip()
 *   2. phonemizer: lines = text.strip("\n").split("\n"), blank lines dropped
 *   3. Punctuation.preserve: each line cut at its runs of marks (with the whitespace
 *      around them); the marks are remembered with where they sat (B/I/E/A)
 *   4. each piece through espeak_TextToPhonemes (IPA, '_' between phonemes), clause
 *      outputs joined by ' ', then _postprocess_line (strip, '_' removed, one space
 *      after every word)
 *   5. Punctuation.restore puts the marks back; the lines are joined by "\n"
 *   6. kokoro-onnx keeps only the characters of Kokoro's vocabulary, then strip()
 * The quirks are kept on purpose: a mark is cut out at the first occurrence of its
 * text in the rest of the line, which is not always where it matched ("3.5 dollars."
 * cuts at the decimal point), exactly as phonemizer's str.split does.
 * ref: kokoro-onnx 0.6.1 src/kokoro_onnx/{tokenizer,chunker}.py; phonemizer 3.4
 *      punctuation.py, backend/espeak/{espeak,wrapper}.py. */
#include "text/g2p.h"

#include <espeak-ng/speak_lib.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

/* ---------------------------------------------------------------- code-point strings */

typedef struct u32s {
    uint32_t *p;
    size_t n, cap;
    int oom;
} u32s;

static void u_put(u32s *s, const uint32_t *c, size_t n) {
    if (s->oom) return;
    if (s->n + n > s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap < s->n + n) cap *= 2;
        uint32_t *q = realloc(s->p, cap * sizeof *q);
        if (!q) {
            s->oom = 1;
            return;
        }
        s->p = q;
        s->cap = cap;
    }
    if (n) memcpy(s->p + s->n, c, n * sizeof *c);
    s->n += n;
}

static void u_putc(u32s *s, uint32_t c) { u_put(s, &c, 1); }
static void u_free(u32s *s) { free(s->p); memset(s, 0, sizeof *s); }

/* Strict UTF-8 -> code points, appended to *s.  Returns the byte offset of the first
 * bad sequence, or len when all is well. */
static size_t utf8_decode(const unsigned char *b, size_t len, u32s *s) {
    size_t i = 0;
    while (i < len) {
        uint32_t c = b[i], min;
        size_t k;
        if (c < 0x80) { u_putc(s, c); i++; continue; }
        if (c >= 0xC2 && c <= 0xDF) { k = 1; c &= 0x1F; min = 0x80; }
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; c &= 0x0F; min = 0x800; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; c &= 0x07; min = 0x10000; }
        else return i;
        if (len - i <= k) return i;
        for (size_t j = 1; j <= k; j++) {
            if ((b[i + j] & 0xC0) != 0x80) return i;
            c = (c << 6) | (b[i + j] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return i;
        u_putc(s, c);
        i += k + 1;
    }
    return len;
}

static void utf8_put(mt_buf *b, const uint32_t *c, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char t[4];
        uint32_t x = c[i];
        size_t k;
        if (x < 0x80) { t[0] = (unsigned char)x; k = 1; }
        else if (x < 0x800) { t[0] = (unsigned char)(0xC0 | x >> 6); t[1] = (unsigned char)(0x80 | (x & 0x3F)); k = 2; }
        else if (x < 0x10000) {
            t[0] = (unsigned char)(0xE0 | x >> 12); t[1] = (unsigned char)(0x80 | (x >> 6 & 0x3F));
            t[2] = (unsigned char)(0x80 | (x & 0x3F)); k = 3;
        } else {
            t[0] = (unsigned char)(0xF0 | x >> 18); t[1] = (unsigned char)(0x80 | (x >> 12 & 0x3F));
            t[2] = (unsigned char)(0x80 | (x >> 6 & 0x3F)); t[3] = (unsigned char)(0x80 | (x & 0x3F)); k = 4;
        }
        mt_buf_put(b, t, k);
    }
}

/* Python's str.isspace(), which is also what str.strip() / split() and re's \s use. */
static int py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* [*a, *b) narrowed to str.strip() (ws = 1) or str.strip("\n") (ws = 0). */
static void strip_range(const uint32_t *p, size_t *a, size_t *b, int ws) {
    while (*a < *b && (ws ? py_space(p[*a]) : p[*a] == '\n')) (*a)++;
    while (*b > *a && (ws ? py_space(p[*b - 1]) : p[*b - 1] == '\n')) (*b)--;
}

/* ---------------------------------------------------------------- Kokoro's vocabulary */

static const struct { uint32_t cp; int16_t id; } VOCAB[] = {
    {0x0020, 16}, {0x0021, 5}, {0x0022, 11}, {0x0028, 12}, {0x0029, 13}, {0x002C, 3},
    {0x002E, 4}, {0x003A, 2}, {0x003B, 1}, {0x003F, 6}, {0x0041, 24}, {0x0049, 25},
    {0x004F, 31}, {0x0051, 33}, {0x0053, 35}, {0x0054, 36}, {0x0057, 39}, {0x0059, 41},
    {0x0061, 43}, {0x0062, 44}, {0x0063, 45}, {0x0064, 46}, {0x0065, 47}, {0x0066, 48},
    {0x0068, 50}, {0x0069, 51}, {0x006A, 52}, {0x006B, 53}, {0x006C, 54}, {0x006D, 55},
    {0x006E, 56}, {0x006F, 57}, {0x0070, 58}, {0x0071, 59}, {0x0072, 60}, {0x0073, 61},
    {0x0074, 62}, {0x0075, 63}, {0x0076, 64}, {0x0077, 65}, {0x0078, 66}, {0x0079, 67},
    {0x007A, 68}, {0x00E6, 72}, {0x00E7, 78}, {0x00F0, 81}, {0x00F8, 116}, {0x014B, 112},
    {0x0153, 120}, {0x0250, 70}, {0x0251, 69}, {0x0252, 71}, {0x0254, 76}, {0x0255, 77},
    {0x0256, 80}, {0x0259, 83}, {0x025A, 85}, {0x025B, 86}, {0x025C, 87}, {0x025F, 90},
    {0x0261, 92}, {0x0263, 139}, {0x0264, 140}, {0x0265, 99}, {0x0268, 101}, {0x026A, 102},
    {0x026F, 110}, {0x0270, 111}, {0x0272, 114}, {0x0273, 113}, {0x0274, 115}, {0x0278, 118},
    {0x0279, 123}, {0x027B, 126}, {0x027D, 129}, {0x027E, 125}, {0x0281, 128}, {0x0282, 130},
    {0x0283, 131}, {0x0288, 132}, {0x028A, 135}, {0x028B, 136}, {0x028C, 138}, {0x028E, 143},
    {0x0292, 147}, {0x0294, 148}, {0x029D, 103}, {0x02A3, 18}, {0x02A4, 82}, {0x02A5, 19},
    {0x02A6, 20}, {0x02A7, 133}, {0x02A8, 21}, {0x02B0, 162}, {0x02B2, 164}, {0x02C8, 156},
    {0x02CC, 157}, {0x02D0, 158}, {0x0303, 17}, {0x03B2, 75}, {0x03B8, 119}, {0x03C7, 142},
    {0x1D4A, 42}, {0x1D5D, 22}, {0x1D7B, 177}, {0x2014, 9}, {0x201C, 14}, {0x201D, 15},
    {0x2026, 10}, {0x2192, 171}, {0x2193, 169}, {0x2197, 172}, {0x2198, 173}, {0xAB67, 23},
};

int mt_g2p_vocab_id(uint32_t cp) {
    size_t lo = 0, hi = sizeof VOCAB / sizeof VOCAB[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (VOCAB[mid].cp == cp) return VOCAB[mid].id;
        if (VOCAB[mid].cp < cp) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* ---------------------------------------------------------------- espeak-ng (global state) */

/* espeak-ng keeps the selected voice, its translator and its buffers in process-wide
 * globals.  This file therefore initializes it once (pthread_once) and makes every
 * call into it while holding es_mu; es_voice remembers which voice is selected, so
 * that a run in one language selects its voice once, as phonemizer does.  These are
 * the only mutable statics of the G2P. */
static pthread_once_t es_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t es_mu = PTHREAD_MUTEX_INITIALIZER;
static int es_rate;          /* espeak_Initialize's result: the sample rate, or -1 */
static char es_voice[256];   /* identifier of the selected voice, "" for none */

static void es_init(void) {
    /* DONT_EXIT: without it espeak-ng calls exit() when its data folder is missing. */
    es_rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, NULL, espeakINITIALIZE_DONT_EXIT);
}

struct mt_g2p {
    char lang[64];
    char voice[256];
};

int mt_g2p_open(const char *lang, mt_g2p **out, mt_err *err) {
    *out = NULL;
    if (!lang || !*lang || strlen(lang) >= sizeof ((mt_g2p *)0)->lang)
        return mt_seterr(err, MT_EINVAL, "g2p: bad language name");
    pthread_once(&es_once, es_init);
    if (es_rate <= 0)
        return mt_seterr(err, MT_EIO, "g2p: espeak-ng could not initialize (its data folder? "
                                      "ESPEAK_DATA_PATH)");
    mt_g2p *g = calloc(1, sizeof *g);
    if (!g) return mt_seterr(err, MT_ENOMEM, "g2p: out of memory");
    strcpy(g->lang, lang);
    /* phonemizer's EspeakWrapper.set_voice: the first voice (in espeak's own order,
     * mbrola voices skipped) whose first language is `lang`, selected by identifier. */
    pthread_mutex_lock(&es_mu);
    const espeak_VOICE **v = espeak_ListVoices(NULL);
    for (size_t i = 0; v && v[i]; i++) {
        const char *langs = v[i]->languages, *id = v[i]->identifier;
        if (!langs || !langs[0] || !id || strncmp(id, "mb/", 3) == 0) continue;
        if (strcmp(langs + 1, lang) == 0 && strlen(id) < sizeof g->voice) {
            strcpy(g->voice, id);
            break;
        }
    }
    pthread_mutex_unlock(&es_mu);
    if (!g->voice[0]) {
        free(g);
        return mt_seterr(err, MT_ENOTFOUND, "g2p: no espeak-ng voice for language '%s'", lang);
    }
    *out = g;
    return MT_OK;
}

void mt_g2p_free(mt_g2p *g) { free(g); }

const char *mt_g2p_voice(const mt_g2p *g) { return g->voice; }

/* espeak_TextToPhonemes over one NUL-terminated piece, clause after clause, the
 * clauses' phonemes joined by ' ' (phonemizer's EspeakWrapper.text_to_phonemes), then
 * _postprocess_line: strip, "\n" -> " ", "  " -> " " once, and every space-separated
 * word stripped, its '_' removed and followed by one space.  Call with es_mu held. */
static int es_piece(const mt_g2p *g, const char *piece, u32s *out, mt_err *err) {
    if (strcmp(es_voice, g->voice) != 0) {
        if (espeak_SetVoiceByName(g->voice) != EE_OK)
            return mt_seterr(err, MT_EIO, "g2p: espeak-ng could not load voice '%s'", g->voice);
        strcpy(es_voice, g->voice);
    }
    mt_buf raw = {0};
    const void *tp = piece;
    int first = 1;
    while (tp) {
        const char *ph = espeak_TextToPhonemes(&tp, espeakCHARS_UTF8, ('_' << 8) | espeakPHONEMES_IPA);
        if (ph && *ph) {
            if (!first) mt_buf_put(&raw, " ", 1);
            mt_buf_str(&raw, ph);
            first = 0;
        }
    }
    if (raw.oom) { mt_buf_free(&raw); return mt_seterr(err, MT_ENOMEM, "g2p: out of memory"); }
    u32s s = {0};
    size_t bad = raw.n ? utf8_decode((const unsigned char *)raw.p, raw.n, &s) : 0;
    int badrc = raw.n && bad != raw.n;
    mt_buf_free(&raw);
    if (badrc) { u_free(&s); return mt_seterr(err, MT_EFORMAT, "g2p: espeak-ng returned invalid UTF-8"); }
    size_t a = 0, b = s.n;
    strip_range(s.p, &a, &b, 1);
    /* "\n" -> " ", then "  " -> " " left to right without overlaps */
    u32s t = {0};
    for (size_t i = a; i < b; i++) {
        uint32_t c = s.p[i] == '\n' ? ' ' : s.p[i];
        if (c == ' ' && i + 1 < b && (s.p[i + 1] == ' ' || s.p[i + 1] == '\n')) i++;
        u_putc(&t, c);
    }
    u_free(&s);
    for (size_t w = 0; w < t.n || (w == t.n && t.n);) {
        size_t e = w;
        while (e < t.n && t.p[e] != ' ') e++;
        size_t wa = w, wb = e;
        strip_range(t.p, &wa, &wb, 1);
        for (size_t i = wa; i < wb; i++)
            if (t.p[i] != '_') u_putc(out, t.p[i]);
        u_putc(out, ' ');
        if (e == t.n) break;
        w = e + 1;
    }
    int oom = t.oom || out->oom;
    u_free(&t);
    return oom ? mt_seterr(err, MT_ENOMEM, "g2p: out of memory") : MT_OK;
}

/* ---------------------------------------------------------------- punctuation (phonemizer) */

enum { POS_B, POS_I, POS_E, POS_A };

typedef struct mark {
    size_t line;   /* index of the (non-blank) line it came from */
    int pos;       /* POS_* */
    u32s text;     /* the matched run: marks with the whitespace around them */
} mark;

typedef struct vec_u32s { u32s *p; size_t n, cap; } vec_u32s;
typedef struct vec_mark { mark *p; size_t n, cap; } vec_mark;

static int grow(void **p, size_t *cap, size_t need, size_t elt) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * elt);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static void vec_u32s_free(vec_u32s *v) {
    for (size_t i = 0; i < v->n; i++) u_free(&v->p[i]);
    free(v->p);
    memset(v, 0, sizeof *v);
}

static void vec_mark_free(vec_mark *v) {
    for (size_t i = 0; i < v->n; i++) u_free(&v->p[i].text);
    free(v->p);
    memset(v, 0, sizeof *v);
}

/* phonemizer's default marks ;:,.!?¡¿—…"«»“”(){}[] ; ',' and '.' count only when not
 * between two ASCII digits ((?<![0-9])[,.] | [,.](?![0-9])). */
static int is_mark(const uint32_t *p, size_t n, size_t i) {
    static const uint32_t other[] = {';', ':', '!', '?', 0xA1, 0xBF, 0x2014, 0x2026, '"', 0xAB,
                                     0xBB, 0x201C, 0x201D, '(', ')', '{', '}', '[', ']'};
    uint32_t c = p[i];
    for (size_t k = 0; k < sizeof other / sizeof other[0]; k++)
        if (c == other[k]) return 1;
    if (c != ',' && c != '.') return 0;
    int dprev = i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9';
    int dnext = i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '9';
    return !(dprev && dnext);
}

static int push_piece(vec_u32s *v, const uint32_t *c, size_t n) {
    if (grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p)) return -1;
    u32s s = {0};
    u_put(&s, c, n);
    if (s.oom) return -1;
    v->p[v->n++] = s;
    return 0;
}

/* Punctuation._preserve_line on line number `num` (p[0..n)): the matches of
 * (\s*(?:marks)+\s*)+ are the maximal runs of whitespace-or-mark characters holding at
 * least one mark.  Non-empty pieces go to `pieces`, the marks to `marks`. */
static int preserve_line(const uint32_t *p, size_t n, size_t num, vec_u32s *pieces, vec_mark *marks) {
    size_t m0 = marks->n;
    for (size_t i = 0; i < n;) {
        if (!py_space(p[i]) && !is_mark(p, n, i)) { i++; continue; }
        size_t j = i;
        int any = 0;
        while (j < n && (py_space(p[j]) || is_mark(p, n, j))) any |= is_mark(p, n, j++);
        if (any) {
            if (grow((void **)&marks->p, &marks->cap, marks->n + 1, sizeof *marks->p)) return -1;
            mark *mk = &marks->p[marks->n++];
            memset(mk, 0, sizeof *mk);
            mk->line = num;
            mk->pos = i == 0 ? POS_B : j == n ? POS_E : POS_I;
            u_put(&mk->text, p + i, j - i);
            if (mk->text.oom) return -1;
        }
        i = j;
    }
    size_t nm = marks->n - m0;
    if (nm == 0) return n ? push_piece(pieces, p, n) : 0;
    if (nm == 1 && marks->p[m0].text.n == n) {
        marks->p[m0].pos = POS_A;
        return 0;
    }
    /* each mark cut out at the first occurrence of its text in what is left (str.split) */
    size_t r = 0;
    for (size_t k = m0; k < marks->n; k++) {
        const u32s *t = &marks->p[k].text;
        size_t at = r;
        for (; at + t->n <= n; at++)
            if (memcmp(p + at, t->p, t->n * sizeof *p) == 0) break;
        if (at + t->n > n) at = n; /* cannot happen: the match itself is still there */
        if (at > r && push_piece(pieces, p + r, at - r)) return -1;
        r = at + t->n <= n ? at + t->n : n;
    }
    return r < n ? push_piece(pieces, p + r, n - r) : 0;
}

static int ends_space(const u32s *s) { return s->n && s->p[s->n - 1] == ' '; }

/* Punctuation.restore with word separator ' ' and strip=False.  `text` is consumed
 * (its strings move to `out` or are freed). */
static int restore(vec_u32s *text, vec_mark *marks, vec_u32s *out) {
    size_t t0 = 0, m0 = 0, pos = 0;
    int rc = 0;
#define PUSH(s) do { if (grow((void **)&out->p, &out->cap, out->n + 1, sizeof *out->p)) { u_free(&(s)); rc = -1; goto done; } \
                     out->p[out->n++] = (s); memset(&(s), 0, sizeof (s)); } while (0)
    while (t0 < text->n || m0 < marks->n) {
        if (m0 == marks->n) {
            for (; t0 < text->n; t0++) {
                if (!ends_space(&text->p[t0])) u_putc(&text->p[t0], ' ');
                PUSH(text->p[t0]);
            }
        } else if (t0 == text->n) {
            u32s all = {0};
            for (; m0 < marks->n; m0++) u_put(&all, marks->p[m0].text.p, marks->p[m0].text.n);
            PUSH(all);
        } else if (marks->p[m0].line == pos) {
            const mark *mk = &marks->p[m0++];
            u32s *cur = &text->p[t0];
            if (ends_space(cur)) cur->n--;
            int sp = !(mk->text.n && mk->text.p[mk->text.n - 1] == ' ');
            if (mk->pos == POS_B) {
                u32s s = {0};
                u_put(&s, mk->text.p, mk->text.n);
                u_put(&s, cur->p, cur->n);
                u_free(cur);
                *cur = s;
            } else if (mk->pos == POS_E) {
                u_put(cur, mk->text.p, mk->text.n);
                if (sp) u_putc(cur, ' ');
                PUSH(*cur);
                t0++;
                pos++;
            } else if (mk->pos == POS_A) {
                u32s s = {0};
                u_put(&s, mk->text.p, mk->text.n);
                if (sp) u_putc(&s, ' ');
                PUSH(s);
                pos++;
            } else if (text->n - t0 == 1) {
                u_put(cur, mk->text.p, mk->text.n);
            } else {
                u32s s = {0};
                u_put(&s, cur->p, cur->n);
                u_put(&s, mk->text.p, mk->text.n);
                u_put(&s, text->p[t0 + 1].p, text->p[t0 + 1].n);
                u_free(cur);
                t0++;
                u_free(&text->p[t0]);
                text->p[t0] = s;
            }
        } else {
            PUSH(text->p[t0]);
            t0++;
            pos++;
        }
    }
#undef PUSH
done:
    for (size_t i = 0; i < out->n; i++) if (out->p[i].oom) rc = -1;
    for (size_t i = 0; i < text->n; i++) if (text->p[i].oom) rc = -1;
    vec_u32s_free(text);
    return rc;
}

/* ---------------------------------------------------------------- phonemize */

int mt_g2p_phonemize(mt_g2p *g, const char *text, size_t len, char **out, size_t *out_len,
                     mt_err *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!text && len) return mt_seterr(err, MT_EINVAL, "g2p: NULL text");
    if (len > MT_G2P_MAX_TEXT)
        return mt_seterr(err, MT_ELIMIT, "g2p: text of %zu bytes is over the limit of %zu", len,
                         MT_G2P_MAX_TEXT);
    u32s in = {0};
    size_t bad = len ? utf8_decode((const unsigned char *)text, len, &in) : 0;
    if (in.oom) { u_free(&in); return mt_seterr(err, MT_ENOMEM, "g2p: out of memory"); }
    if (len && bad != len) {
        u_free(&in);
        return mt_seterr(err, MT_EINVAL, "g2p: invalid UTF-8 at byte %zu", bad);
    }
    int rc = MT_OK;
    vec_u32s pieces = {0}, phon = {0}, lines = {0};
    vec_mark marks = {0};
    mt_buf piece = {0}, res = {0};

    /* 1-3: strip, lines, punctuation set aside */
    size_t a = 0, b = in.n;
    strip_range(in.p, &a, &b, 1);
    strip_range(in.p, &a, &b, 0);
    size_t num = 0;
    for (size_t s = a; b > a && s <= b;) {
        size_t e = s;
        while (e < b && in.p[e] != '\n') e++;
        size_t la = s, lb = e;
        strip_range(in.p, &la, &lb, 1);
        if (lb > la && preserve_line(in.p + s, e - s, num++, &pieces, &marks)) {
            rc = mt_seterr(err, MT_ENOMEM, "g2p: out of memory");
            goto done;
        }
        s = e + 1;
    }

    /* 4: each piece through espeak */
    if (grow((void **)&phon.p, &phon.cap, pieces.n + 1, sizeof *phon.p)) {
        rc = mt_seterr(err, MT_ENOMEM, "g2p: out of memory");
        goto done;
    }
    pthread_mutex_lock(&es_mu);
    for (size_t i = 0; i < pieces.n && !rc; i++) {
        piece.n = 0;
        utf8_put(&piece, pieces.p[i].p, pieces.p[i].n);
        mt_buf_put(&piece, "", 0);
        if (piece.oom) { rc = mt_seterr(err, MT_ENOMEM, "g2p: out of memory"); break; }
        memset(&phon.p[phon.n], 0, sizeof *phon.p);
        rc = es_piece(g, piece.p, &phon.p[phon.n], err);
        phon.n++;
    }
    pthread_mutex_unlock(&es_mu);
    if (rc) goto done;

    /* 5: marks back, lines joined by "\n"; 6: vocabulary filter and strip */
    if (restore(&phon, &marks, &lines)) { rc = mt_seterr(err, MT_ENOMEM, "g2p: out of memory"); goto done; }
    u32s keep = {0};
    for (size_t i = 0; i < lines.n; i++)
        for (size_t k = 0; k < lines.p[i].n; k++)
            if (mt_g2p_vocab_id(lines.p[i].p[k]) >= 0) u_putc(&keep, lines.p[i].p[k]);
    a = 0;
    b = keep.n;
    strip_range(keep.p, &a, &b, 1);
    utf8_put(&res, keep.p + a, b - a);
    mt_buf_put(&res, "", 0);
    int oom = keep.oom || res.oom;
    u_free(&keep);
    if (oom) { rc = mt_seterr(err, MT_ENOMEM, "g2p: out of memory"); goto done; }
    *out = res.p;
    if (out_len) *out_len = res.n;
    res.p = NULL;
done:
    u_free(&in);
    vec_u32s_free(&pieces);
    vec_u32s_free(&phon);
    vec_u32s_free(&lines);
    vec_mark_free(&marks);
    mt_buf_free(&piece);
    mt_buf_free(&res);
    return rc;
}

/* ---------------------------------------------------------------- split (kokoro-onnx chunker) */

typedef struct span { size_t a, n; } span;
typedef struct vec_span { span *p; size_t n, cap; int oom; } vec_span;

static void span_push(vec_span *v, size_t a, size_t n) {
    if (v->oom) return;
    if (grow((void **)&v->p, &v->cap, v->n + 1, sizeof *v->p)) { v->oom = 1; return; }
    v->p[v->n++] = (span){a, n};
}

/* Is s[i] (whitespace) the start of a boundary of `level`: 0 after .!?…, 1 after ,;:,
 * 2 any whitespace run. */
static int boundary_at(const uint32_t *s, size_t lo, size_t i, int level) {
    if (level == 2) return 1;
    if (i == lo) return 0;
    uint32_t c = s[i - 1];
    if (level == 0) return c == '.' || c == '!' || c == '?' || c == 0x2026;
    return c == ',' || c == ';' || c == ':';
}

/* chunker._atoms: pieces of s[a, a+n), each at most max code points. */
static void atoms(const uint32_t *s, size_t a, size_t n, size_t max, int level, vec_span *out) {
    if (n <= max) {
        if (n) span_push(out, a, n);
        return;
    }
    for (int lv = level; lv < 3; lv++) {
        /* re.split(boundary): the cuts are whitespace runs starting at a boundary */
        size_t cuts = 0;
        for (size_t i = a; i < a + n; i++)
            if (py_space(s[i]) && (i == a || !py_space(s[i - 1])) && boundary_at(s, a, i, lv)) cuts++;
        if (!cuts) continue;
        size_t ps = a;
        for (size_t i = a; i <= a + n; i++) {
            int cut = i < a + n && py_space(s[i]) && (i == a || !py_space(s[i - 1])) && boundary_at(s, a, i, lv);
            if (!cut && i < a + n) continue;
            size_t pa = ps, pb = i;
            strip_range(s, &pa, &pb, 1);
            atoms(s, pa, pb - pa, max, lv + 1, out);
            if (i == a + n) break;
            while (i < a + n && py_space(s[i])) i++;
            ps = i;
            i--;
        }
        return;
    }
    for (size_t st = 0; st < n; st += max) span_push(out, a + st, n - st < max ? n - st : max);
}

/* chunker._pack: consecutive atoms grouped within `limit` (a space between atoms);
 * returns the number of batches, and fills ends[] (batch i ends before atom ends[i]). */
static size_t pack(const vec_span *at, size_t limit, size_t *ends) {
    size_t nb = 0, start = 0, size = 0;
    for (size_t i = 0; i < at->n; i++) {
        size_t cand = i == start ? at->p[i].n : size + 1 + at->p[i].n;
        if (cand > limit && i > start) {
            if (ends) ends[nb] = i;
            nb++;
            start = i;
            size = at->p[i].n;
        } else {
            size = cand;
        }
    }
    if (at->n) {
        if (ends) ends[nb] = at->n;
        nb++;
    }
    return nb;
}

void mt_g2p_chunks_free(mt_g2p_chunks *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) free(c->s ? c->s[i] : NULL);
    free(c->s);
    free(c->len);
    memset(c, 0, sizeof *c);
}

int mt_g2p_split(const char *ph, size_t len, size_t max_len, mt_g2p_chunks *out, mt_err *err) {
    memset(out, 0, sizeof *out);
    if (max_len == 0) return mt_seterr(err, MT_EINVAL, "g2p: split length 0");
    if (!ph && len) return mt_seterr(err, MT_EINVAL, "g2p: NULL phonemes");
    u32s in = {0}, s = {0};
    size_t bad = len ? utf8_decode((const unsigned char *)ph, len, &in) : 0;
    if (len && bad != len && !in.oom) {
        u_free(&in);
        return mt_seterr(err, MT_EINVAL, "g2p: invalid UTF-8 at byte %zu", bad);
    }
    /* " ".join(phonemes.split()) */
    for (size_t i = 0; i < in.n;) {
        if (py_space(in.p[i])) { i++; continue; }
        if (s.n) u_putc(&s, ' ');
        size_t j = i;
        while (j < in.n && !py_space(in.p[j])) j++;
        u_put(&s, in.p + i, j - i);
        i = j;
    }
    int oom = in.oom || s.oom;
    u_free(&in);
    vec_span at = {0};
    size_t *ends = NULL;
    mt_buf b = {0};
    if (!oom) atoms(s.p, 0, s.n, max_len, 0, &at);
    if (oom || at.oom) goto nomem;
    if (at.n) {
        size_t fewest = pack(&at, max_len, NULL), low = 0, high = max_len;
        for (size_t i = 0; i < at.n; i++) if (at.p[i].n > low) low = at.p[i].n;
        while (low < high) {
            size_t mid = (low + high) / 2;
            if (pack(&at, mid, NULL) <= fewest) high = mid;
            else low = mid + 1;
        }
        ends = malloc(at.n * sizeof *ends);
        if (!ends) goto nomem;
        size_t nb = pack(&at, low, ends);
        out->s = calloc(nb, sizeof *out->s);
        out->len = calloc(nb, sizeof *out->len);
        if (!out->s || !out->len) goto nomem;
        for (size_t k = 0, st = 0; k < nb; st = ends[k++]) {
            b.n = 0;
            for (size_t i = st; i < ends[k]; i++) {
                if (i > st) mt_buf_put(&b, " ", 1);
                utf8_put(&b, s.p + at.p[i].a, at.p[i].n);
            }
            mt_buf_put(&b, "", 0);
            if (b.oom) goto nomem;
            out->s[k] = malloc(b.n + 1);
            if (!out->s[k]) goto nomem;
            memcpy(out->s[k], b.p, b.n + 1);
            out->len[k] = b.n;
            out->n = k + 1;
        }
    }
    u_free(&s);
    free(at.p);
    free(ends);
    mt_buf_free(&b);
    return MT_OK;
nomem:
    u_free(&s);
    free(at.p);
    free(ends);
    mt_buf_free(&b);
    mt_g2p_chunks_free(out);
    return mt_seterr(err, MT_ENOMEM, "g2p: out of memory");
}
