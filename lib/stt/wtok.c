/* wtok.c - Whisper's tokenizer (openai-whisper tokenizer.py semantics): the
 * byte-level BPE through lib/text/tokenizer, the special tokens derived from
 * n_vocab, the language table, decode as tiktoken does (bytes joined, then
 * UTF-8 with U+FFFD), and the non-speech token set. */
#include "stt/wtok.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/file.h"
#include "text/tokenizer.h"

static const char *const LANG[][2] = {
    {"en", "english"}, {"zh", "chinese"}, {"de", "german"}, {"es", "spanish"}, {"ru", "russian"},
    {"ko", "korean"}, {"fr", "french"}, {"ja", "japanese"}, {"pt", "portuguese"}, {"tr", "turkish"},
    {"pl", "polish"}, {"ca", "catalan"}, {"nl", "dutch"}, {"ar", "arabic"}, {"sv", "swedish"},
    {"it", "italian"}, {"id", "indonesian"}, {"hi", "hindi"}, {"fi", "finnish"}, {"vi", "vietnamese"},
    {"he", "hebrew"}, {"uk", "ukrainian"}, {"el", "greek"}, {"ms", "malay"}, {"cs", "czech"},
    {"ro", "romanian"}, {"da", "danish"}, {"hu", "hungarian"}, {"ta", "tamil"}, {"no", "norwegian"},
    {"th", "thai"}, {"ur", "urdu"}, {"hr", "croatian"}, {"bg", "bulgarian"}, {"lt", "lithuanian"},
    {"la", "latin"}, {"mi", "maori"}, {"ml", "malayalam"}, {"cy", "welsh"}, {"sk", "slovak"},
    {"te", "telugu"}, {"fa", "persian"}, {"lv", "latvian"}, {"bn", "bengali"}, {"sr", "serbian"},
    {"az", "azerbaijani"}, {"sl", "slovenian"}, {"kn", "kannada"}, {"et", "estonian"}, {"mk", "macedonian"},
    {"br", "breton"}, {"eu", "basque"}, {"is", "icelandic"}, {"hy", "armenian"}, {"ne", "nepali"},
    {"mn", "mongolian"}, {"bs", "bosnian"}, {"kk", "kazakh"}, {"sq", "albanian"}, {"sw", "swahili"},
    {"gl", "galician"}, {"mr", "marathi"}, {"pa", "punjabi"}, {"si", "sinhala"}, {"km", "khmer"},
    {"sn", "shona"}, {"yo", "yoruba"}, {"so", "somali"}, {"af", "afrikaans"}, {"oc", "occitan"},
    {"ka", "georgian"}, {"be", "belarusian"}, {"tg", "tajik"}, {"sd", "sindhi"}, {"gu", "gujarati"},
    {"am", "amharic"}, {"yi", "yiddish"}, {"lo", "lao"}, {"uz", "uzbek"}, {"fo", "faroese"},
    {"ht", "haitian creole"}, {"ps", "pashto"}, {"tk", "turkmen"}, {"nn", "nynorsk"}, {"mt", "maltese"},
    {"sa", "sanskrit"}, {"lb", "luxembourgish"}, {"my", "myanmar"}, {"bo", "tibetan"}, {"tl", "tagalog"},
    {"mg", "malagasy"}, {"as", "assamese"}, {"tt", "tatar"}, {"haw", "hawaiian"}, {"ln", "lingala"},
    {"ha", "hausa"}, {"ba", "bashkir"}, {"jw", "javanese"}, {"su", "sundanese"}, {"yue", "cantonese"},
};
#define N_LANG ((int)(sizeof LANG / sizeof LANG[0]))

/* TO_LANGUAGE_CODE's extra aliases */
static const char *const ALIAS[][2] = {
    {"burmese", "my"}, {"valencian", "ca"}, {"flemish", "nl"}, {"haitian", "ht"}, {"letzeburgesch", "lb"},
    {"pushto", "ps"}, {"panjabi", "pa"}, {"moldavian", "ro"}, {"moldovan", "ro"}, {"sinhalese", "si"},
    {"castilian", "es"}, {"mandarin", "zh"},
};

typedef struct wtab {
    char *bytes;        /* all tokens' bytes, concatenated */
    uint32_t *off;      /* n_vocab + 1 offsets */
} wtab;

const char *mt_wtok_lang_code(int index) { return index >= 0 && index < N_LANG ? LANG[index][0] : NULL; }
const char *mt_wtok_lang_name(int index) { return index >= 0 && index < N_LANG ? LANG[index][1] : NULL; }

int mt_wtok_lang_index(const mt_wtok *t, const char *s)
{
    if (!s || strlen(s) > 31) return -1;
    char low[32];
    size_t i;
    for (i = 0; s[i]; i++) low[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
    low[i] = 0;
    int n = t ? t->n_langs : N_LANG;
    for (int k = 0; k < N_LANG; k++)
        if (!strcmp(low, LANG[k][0]) || !strcmp(low, LANG[k][1])) return k < n ? k : -1;
    for (size_t k = 0; k < sizeof ALIAS / sizeof ALIAS[0]; k++)
        if (!strcmp(low, ALIAS[k][0])) return mt_wtok_lang_index(t, ALIAS[k][1]);
    return -1;
}

const char *mt_wtok_data_dir(char *buf, size_t cap)
{
    if (!buf || cap == 0) return NULL;
    buf[0] = 0;
    const char *env = getenv("MLX_TOOLS_DATA");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return buf;
    }
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) return buf;
    exe[k] = 0;
    char *slash = strrchr(exe, '/');
    if (!slash) return buf;
    *slash = 0;   /* exe's folder */
    static const char *const rel[] = {"/../share/mlx-tools", "/../../share", "/../share"};
    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
        char cand[PATH_MAX + 32];
        snprintf(cand, sizeof cand, "%s%s/whisper", exe, rel[i]);
        if (mt_is_dir(cand)) {
            snprintf(buf, cap, "%s%s", exe, rel[i]);
            return buf;
        }
    }
    snprintf(buf, cap, "%s/../../share", exe);
    return buf;
}

/* GPT-2's byte-level alphabet: code point -> byte (-1 when not in it). */
static int bl_byte(uint32_t cp)
{
    if ((cp >= '!' && cp <= '~') || (cp >= 0xA1 && cp <= 0xAC) || (cp >= 0xAE && cp <= 0xFF)) return (int)cp;
    if (cp >= 256 && cp < 256 + 68) {
        int n = (int)(cp - 256), b;
        for (b = 0; b < 256; b++) {
            int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
            if (!printable && n-- == 0) return b;
        }
    }
    return -1;
}

/* token string (byte-level chars) -> raw bytes appended to out; -1 on a
 * character outside the alphabet */
static int bl_decode(const char *s, char *out, size_t *len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    while (*p) {
        uint32_t cp;
        if (p[0] < 0x80) { cp = p[0]; p += 1; }
        else if ((p[0] & 0xE0) == 0xC0 && p[1]) { cp = ((uint32_t)(p[0] & 0x1F) << 6) | (p[1] & 0x3F); p += 2; }
        else return -1;
        int b = bl_byte(cp);
        if (b < 0) return -1;
        out[n++] = (char)b;
    }
    *len = n;
    return 0;
}

static void special_name(const mt_wtok *t, int32_t id, char *buf, size_t cap)
{
    buf[0] = 0;
    if (id == t->eot) snprintf(buf, cap, "<|endoftext|>");
    else if (id == t->sot) snprintf(buf, cap, "<|startoftranscript|>");
    else if (id >= t->lang_begin && id < t->lang_begin + t->n_langs) snprintf(buf, cap, "<|%s|>", LANG[id - t->lang_begin][0]);
    else if (id == t->translate) snprintf(buf, cap, "<|translate|>");
    else if (id == t->transcribe) snprintf(buf, cap, "<|transcribe|>");
    else if (id == t->sot_lm) snprintf(buf, cap, "<|startoflm|>");
    else if (id == t->sot_prev) snprintf(buf, cap, "<|startofprev|>");
    else if (id == t->no_speech) snprintf(buf, cap, "<|nospeech|>");
    else if (id == t->no_timestamps) snprintf(buf, cap, "<|notimestamps|>");
    else if (id >= t->timestamp_begin && id <= t->timestamp_begin + 1500)
        snprintf(buf, cap, "<|%.2f|>", (id - t->timestamp_begin) * 0.02);
}

int mt_wtok_open(mt_wtok *t, const char *dir, int n_vocab, const char *data_dir, mt_err *err)
{
    memset(t, 0, sizeof *t);
    t->multilingual = n_vocab >= 51865;
    t->n_vocab = n_vocab;
    int32_t base = t->multilingual ? 50257 : 50256;
    t->n_langs = n_vocab - 51765 - t->multilingual;
    if (t->n_langs < 1 || t->n_langs > N_LANG)
        return mt_seterr(err, MT_EFORMAT, "whisper tokenizer: unsupported vocabulary size %d", n_vocab);
    t->eot = base;
    t->sot = base + 1;
    t->lang_begin = base + 2;
    t->translate = t->lang_begin + t->n_langs;
    t->transcribe = t->translate + 1;
    t->sot_lm = t->translate + 2;
    t->sot_prev = t->translate + 3;
    t->no_speech = t->translate + 4;
    t->no_timestamps = t->translate + 5;
    t->timestamp_begin = t->translate + 6;
    if (t->timestamp_begin + 1501 != n_vocab)
        return mt_seterr(err, MT_EFORMAT, "whisper tokenizer: vocabulary size %d does not fit the special tokens", n_vocab);

    /* the bundled base vocabulary first (exactly tiktoken's); the model's
     * tokenizer.json when no bundled file is found */
    char ddir[PATH_MAX], path[PATH_MAX + 64];
    if (!data_dir) data_dir = mt_wtok_data_dir(ddir, sizeof ddir);
    snprintf(path, sizeof path, "%s/whisper/%s.tokenizer.json.zst", data_dir ? data_dir : ".",
             t->multilingual ? "multilingual" : "gpt2");
    mt_tokenizer *tk = NULL;
    int rc;
    if (mt_file_exists(path)) {
        rc = mt_tokenizer_load(&tk, path, err);
    } else {
        snprintf(path, sizeof path, "%s/tokenizer.json", dir ? dir : ".");
        if (!dir || !mt_file_exists(path))
            return mt_seterr(err, MT_ENOTFOUND, "whisper tokenizer: no %s.tokenizer.json.zst under %s/whisper and no tokenizer.json in %s",
                             t->multilingual ? "multilingual" : "gpt2", data_dir ? data_dir : ".", dir ? dir : "(none)");
        rc = mt_tokenizer_load(&tk, path, err);
    }
    if (rc) return rc;
    t->bpe = tk;

    wtab *tb = calloc(1, sizeof *tb);
    size_t cap = (size_t)base * 8 + 65536, used = 0;
    if (tb) {
        tb->off = malloc(((size_t)n_vocab + 1) * sizeof *tb->off);
        tb->bytes = malloc(cap);
    }
    t->tab = tb;
    if (!tb || !tb->off || !tb->bytes) {
        mt_wtok_close(t);
        return mt_seterr(err, MT_ENOMEM, "whisper tokenizer: out of memory");
    }
    for (int32_t id = 0; id < n_vocab; id++) {
        char tmp[1024];
        size_t len = 0;
        if (id < base) {
            const char *s = mt_tokenizer_id_to_token(tk, id);
            if (!s || strlen(s) >= sizeof tmp || bl_decode(s, tmp, &len)) {
                mt_wtok_close(t);
                return mt_seterr(err, MT_EFORMAT, "whisper tokenizer: base token %d missing or not byte-level", (int)id);
            }
        } else {
            special_name(t, id, tmp, sizeof tmp);
            len = strlen(tmp);
        }
        if (used + len + 1 > cap) {
            size_t nc = cap * 2 + len;
            char *nb = realloc(tb->bytes, nc);
            if (!nb) {
                mt_wtok_close(t);
                return mt_seterr(err, MT_ENOMEM, "whisper tokenizer: out of memory");
            }
            tb->bytes = nb;
            cap = nc;
        }
        tb->off[id] = (uint32_t)used;
        memcpy(tb->bytes + used, tmp, len);
        used += len;
    }
    tb->off[n_vocab] = (uint32_t)used;
    return MT_OK;
}

void mt_wtok_close(mt_wtok *t)
{
    if (!t) return;
    mt_tokenizer_free(t->bpe);
    wtab *tb = t->tab;
    if (tb) {
        free(tb->bytes);
        free(tb->off);
        free(tb);
    }
    t->bpe = NULL;
    t->tab = NULL;
}

int mt_wtok_sot_sequence(const mt_wtok *t, int lang, int task, int no_timestamps, int32_t out[4])
{
    int n = 0;
    out[n++] = t->sot;
    if (lang >= 0 && lang < t->n_langs) {
        out[n++] = t->lang_begin + lang;
        out[n++] = task == 1 ? t->translate : t->transcribe;
    }
    if (no_timestamps) out[n++] = t->no_timestamps;
    return n;
}

int mt_wtok_encode(const mt_wtok *t, const char *text, int32_t **ids, size_t *n, mt_err *err)
{
    return mt_tokenizer_encode(t->bpe, text, strlen(text), 0, ids, n, err);
}

const char *mt_wtok_token_bytes(const mt_wtok *t, int32_t id, size_t *len)
{
    const wtab *tb = t->tab;
    if (!tb || id < 0 || id >= t->n_vocab) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = tb->off[id + 1] - tb->off[id];
    return tb->bytes + tb->off[id];
}

/* bytes -> UTF-8 with one U+FFFD per maximal invalid subpart (Python's
 * errors="replace"); out has room for 3 * n + 1 */
static size_t utf8_lossy(const unsigned char *s, size_t n, char *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) { out[o++] = (char)c; i++; continue; }
        int need;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c == 0xE0) { need = 2; lo = 0xA0; }
        else if (c == 0xED) { need = 2; hi = 0x9F; }
        else if (c >= 0xE1 && c <= 0xEF) need = 2;
        else if (c == 0xF0) { need = 3; lo = 0x90; }
        else if (c == 0xF4) { need = 3; hi = 0x8F; }
        else if (c >= 0xF1 && c <= 0xF3) need = 3;
        else need = -1;
        size_t j = i + 1;
        int ok = need > 0;
        if (ok) {
            for (int k = 0; k < need; k++, j++) {
                unsigned char lo_k = k == 0 ? lo : 0x80, hi_k = k == 0 ? hi : 0xBF;
                if (j >= n || s[j] < lo_k || s[j] > hi_k) { ok = 0; break; }
            }
        }
        if (ok) {
            memcpy(out + o, s + i, j - i);
            o += j - i;
        } else {
            out[o++] = (char)0xEF; out[o++] = (char)0xBF; out[o++] = (char)0xBD;
        }
        i = j;
    }
    out[o] = 0;
    return o;
}

/* mode 0: drop timestamps (decode); 1: keep all (decode_with_timestamps);
 * 2: only ids < eot */
static int decode_mode(const mt_wtok *t, const int32_t *ids, size_t n, int mode, char **text, mt_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        if (mt_wtok_token_bytes(t, ids[i], &len)) total += len;
    }
    unsigned char *raw = malloc(total + 1);
    char *out = malloc(3 * total + 1);
    if (!raw || !out) {
        free(raw);
        free(out);
        return mt_seterr(err, MT_ENOMEM, "whisper tokenizer: out of memory");
    }
    size_t p = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (mode == 0 && id >= t->timestamp_begin) continue;
        if (mode == 2 && id >= t->eot) continue;
        size_t len;
        const char *b = mt_wtok_token_bytes(t, id, &len);
        if (!b) continue;
        memcpy(raw + p, b, len);
        p += len;
    }
    utf8_lossy(raw, p, out);
    free(raw);
    *text = out;
    return MT_OK;
}

int mt_wtok_decode(const mt_wtok *t, const int32_t *ids, size_t n, char **text, mt_err *err)
{
    return decode_mode(t, ids, n, 0, text, err);
}

int mt_wtok_decode_ts(const mt_wtok *t, const int32_t *ids, size_t n, char **text, mt_err *err)
{
    return decode_mode(t, ids, n, 1, text, err);
}

int mt_wtok_decode_text(const mt_wtok *t, const int32_t *ids, size_t n, char **text, mt_err *err)
{
    return decode_mode(t, ids, n, 2, text, err);
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

int mt_wtok_non_speech(const mt_wtok *t, int32_t **out, size_t *nout, mt_err *err)
{
    static const char *const SYM[] = {
        "\"", "#", "(", ")", "*", "+", "/", ":", ";", "<", "=", ">", "@", "[", "\\", "]", "^", "_", "`",
        "{", "|", "}", "~", "「", "」", "『", "』",
        "<<", ">>", "<<<", ">>>", "--", "---", "-(", "-[", "('", "(\"", "((", "))", "(((", ")))",
        "[[", "]]", "{{", "}}", "♪♪", "♪♪♪",
    };
    static const char *const MISC[] = {"♩", "♪", "♫", "♬", "♭", "♮", "♯"};
    size_t ns = sizeof SYM / sizeof SYM[0], nm = sizeof MISC / sizeof MISC[0];
    int32_t *res = malloc((2 * (ns + nm) + 2) * sizeof *res);
    if (!res) return mt_seterr(err, MT_ENOMEM, "whisper tokenizer: out of memory");
    size_t k = 0;
    int rc = MT_OK;
    const char *first[] = {" -", " '"};
    for (int i = 0; i < 2 && !rc; i++) {
        int32_t *ids = NULL;
        size_t n = 0;
        rc = mt_wtok_encode(t, first[i], &ids, &n, err);
        if (!rc && n > 0) res[k++] = ids[0];
        free(ids);
    }
    for (size_t s = 0; s < ns + nm && !rc; s++) {
        const char *sym = s < ns ? SYM[s] : MISC[s - ns];
        int misc = s >= ns;
        for (int sp = 0; sp < 2 && !rc; sp++) {
            char buf[32];
            snprintf(buf, sizeof buf, "%s%s", sp ? " " : "", sym);
            int32_t *ids = NULL;
            size_t n = 0;
            rc = mt_wtok_encode(t, buf, &ids, &n, err);
            if (!rc && n > 0 && (n == 1 || misc)) res[k++] = ids[0];
            free(ids);
        }
    }
    if (rc) {
        free(res);
        return rc;
    }
    qsort(res, k, sizeof *res, cmp_i32);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || res[u - 1] != res[i]) res[u++] = res[i];
    *out = res;
    *nout = u;
    return MT_OK;
}
