/* unicode_hf.c - lookups in the generated tables of unicode_hf_tables.h
 * (sorted inclusive ranges, binary search). */
#include <string.h>
#include "text/unicode_hf.h"
#include "text/unicode_hf_tables.h"

#define COUNT(a) (sizeof(a) / sizeof *(a))

static int in_ranges(const tk_urange *r, size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (c < r[m].lo) hi = m;
        else if (c > r[m].hi) lo = m + 1;
        else return 1;
    }
    return 0;
}

int tk_hf_is_punct(uint32_t c) {
    if (c < 0x80) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    return in_ranges(HF_PUNCT, COUNT(HF_PUNCT), c);
}
int tk_hf_is_other(uint32_t c) { return in_ranges(HF_OTHER, COUNT(HF_OTHER), c); }
int tk_hf_is_mn_strip(uint32_t c) { return c >= 0x300 && in_ranges(HF_MN_STRIP, COUNT(HF_MN_STRIP), c); }
int tk_hf_is_mark(uint32_t c) { return c >= 0x300 && in_ranges(HF_MARK, COUNT(HF_MARK), c); }
int tk_hf_is_numeric(uint32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return in_ranges(HF_NUMERIC, COUNT(HF_NUMERIC), c);
}
int tk_hf_is_word(uint32_t c) {
    if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 32) >= 'a' && (c | 32) <= 'z') || c == '_';
    return in_ranges(HF_WORD, COUNT(HF_WORD), c);
}
int tk_hf_grapheme_extend(uint32_t c) {
    return c >= 0x300 && c <= 0xFFFF && in_ranges(HF_GRAPHEME_EXTEND, COUNT(HF_GRAPHEME_EXTEND), c);
}
int tk_hf_norm_inert(uint32_t c) { return c >= 0x80 && !in_ranges(HF_ASSIGNED9, COUNT(HF_ASSIGNED9), c); }

uint32_t tk_hf_lower(uint32_t c) {
    if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    size_t lo = 0, hi = COUNT(HF_LOWER);
    while (lo < hi) {
        size_t m = lo + (hi - lo) / 2;
        if (c < HF_LOWER[m].first) hi = m;
        else if (c > HF_LOWER[m].last) lo = m + 1;
        else return (c - HF_LOWER[m].first) % HF_LOWER[m].stride ? c : (uint32_t)((int32_t)c + HF_LOWER[m].delta);
    }
    return c;
}

const tk_uclass *tk_hf_regex_class(const char *name, size_t n) {
    for (size_t i = 0; i < COUNT(HF_RE_CLASSES); i++)
        if (strlen(HF_RE_CLASSES[i].name) == n && !memcmp(HF_RE_CLASSES[i].name, name, n)) return &HF_RE_CLASSES[i];
    return NULL;
}

const char *tk_hf_tokenizers_version(void) { return TK_HF_TOKENIZERS_VERSION; }
const char *tk_hf_pcre2_unicode(void) { return TK_HF_PCRE2_UNICODE; }
