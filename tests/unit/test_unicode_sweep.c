/* test_unicode_sweep.c - every code point U+0001..U+31FFF (surrogates skipped)
 * encoded as "x" + c + "x" (no special tokens) by lib/text/tokenizer, against
 * the Hugging Face `tokenizers` goldens of tests/gen/gen_unicode_sweep.py
 * (tests/data/tokenizers/unicode/<name>.sweep.zst, one per real tokenizer of
 * tests/data/tokenizers and per probe tokenizer; the format is described
 * there). It checks that the Unicode tables the tokenizer consults are the
 * versions `tokenizers` uses (lib/text/unicode_hf.h). Prints the mismatch count
 * per real tokenizer (per probe only when it mismatches) and the first
 * mismatching code points.
 * Under a sanitizer build every 17th code point is checked (MT_SWEEP_STEP=k
 * overrides the stride). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include "check.h"
#include "core/file.h"
#include "text/tokenizer.h"
#include "text/unicode_hf.h"

#define TOKDIR "tests/data/tokenizers/"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* the tokenizers every golden must exist for (more are found in the folder) */
static const char *const REAL[] = {"minilm", "xlmr", "qwen3", "llama3_1", "deepseek_v3", "gptoss", "llama2", "gemma3"};

typedef struct { const unsigned char *p, *end; int bad; } reader;

static uint64_t rd_varint(reader *r) {
    uint64_t v = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        if (r->p >= r->end) { r->bad = 1; return 0; }
        unsigned b = *r->p++;
        v |= (uint64_t)(b & 0x7F) << sh;
        if (!(b & 0x80)) return v;
    }
    r->bad = 1;
    return 0;
}

/* value of key in the header line, or NULL */
static const char *hdr_get(const char *hdr, const char *key, char *buf, size_t cap) {
    size_t kl = strlen(key);
    for (const char *p = hdr; (p = strstr(p, key)); p += kl) {
        if ((p == hdr || p[-1] == ' ') && p[kl] == '=') {
            const char *v = p + kl + 1;
            size_t n = strcspn(v, " \n");
            if (n >= cap) n = cap - 1;
            memcpy(buf, v, n);
            buf[n] = 0;
            return buf;
        }
    }
    return NULL;
}

static size_t put_utf8(char *o, uint32_t c) {
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xC0 | (c >> 6)); o[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12)); o[1] = (char)(0x80 | ((c >> 6) & 0x3F)); o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18)); o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F)); o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

static void print_list(const char *what, const int32_t *v, size_t n) {
    fprintf(stderr, " %s [", what);
    for (size_t i = 0; i < n && i < 12; i++) fprintf(stderr, "%s%d", i ? " " : "", v[i]);
    fprintf(stderr, "%s]", n > 12 ? " ..." : "");
}

/* "78,345" -> UTF-8 into o (cap bytes); its length, or -1 */
static int hex_cps(const char *v, char *o, size_t cap) {
    size_t n = 0;
    while (*v) {
        char *e;
        unsigned long c = strtoul(v, &e, 16);
        if (e == v || c > 0x10FFFF || n + 4 > cap) return -1;
        n += put_utf8(o + n, (uint32_t)c);
        v = *e == ',' ? e + 1 : e;
    }
    return (int)n;
}

static void sweep(const char *name, unsigned step, size_t *total_bad) {
    char path[512];
    mt_err e = {0};
    snprintf(path, sizeof path, TOKDIR "unicode/%s.sweep.zst", name);
    char *g = NULL;
    size_t gl = 0;
    CHECK_OK(mt_read_file(path, &g, &gl, &e), &e);
    if (!g) return;
    char *nl = memchr(g, '\n', gl);
    CHECK_MSG(nl && !strncmp(g, "mlx-tools-unicode-sweep 1 ", 26), "%s: bad sweep header", path);
    if (!nl) { free(g); return; }
    *nl = 0;
    char v1[64], v2[64], v3[64], v4[64], v5[256], v6[64], v7[64], pre[32], post[32];
    const char *sf = hdr_get(g, "first", v1, sizeof v1), *sl = hdr_get(g, "last", v2, sizeof v2);
    const char *sc = hdr_get(g, "count", v3, sizeof v3), *sv = hdr_get(g, "tokenizers", v4, sizeof v4);
    const char *sj = hdr_get(g, "json", v5, sizeof v5), *spre = hdr_get(g, "pre", v6, sizeof v6);
    const char *spost = hdr_get(g, "post", v7, sizeof v7);
    int npre = spre ? hex_cps(spre, pre, sizeof pre) : -1, npost = spost ? hex_cps(spost, post, sizeof post) : -1;
    int hdr_ok = sf && sl && sc && sv && sj && npre >= 0 && npost >= 0;
    CHECK_MSG(hdr_ok, "%s: header lacks first/last/count/json/pre/post", path);
    if (!hdr_ok) { free(g); return; }
    uint32_t first = (uint32_t)strtoul(sf, NULL, 0), last = (uint32_t)strtoul(sl, NULL, 0);
    size_t count = strtoul(sc, NULL, 0);
    snprintf(path, sizeof path, TOKDIR "%s", sj);
    mt_tokenizer *t = NULL;
    CHECK_OK(mt_tokenizer_load(&t, path, &e), &e);
    if (!t) { free(g); return; }

    reader r = {(const unsigned char *)nl + 1, (const unsigned char *)g + gl, 0};
    int32_t prev[64] = {0}, want[64];
    size_t nprev = 0, seen = 0, checked = 0, bad = 0;
    for (uint32_t c = first; c <= last && !r.bad; c++) {
        if (c >= 0xD800 && c <= 0xDFFF) continue;
        size_t n = (size_t)rd_varint(&r);
        if (n > 64) { r.bad = 1; break; }
        for (size_t i = 0; i < n; i++) {
            uint64_t z = rd_varint(&r);
            int64_t d = (z & 1) ? -(int64_t)(z >> 1) - 1 : (int64_t)(z >> 1);
            want[i] = (int32_t)((i < nprev ? prev[i] : 0) + d);
        }
        memcpy(prev, want, n * sizeof *want);
        nprev = n;
        seen++;
        if (seen % step) continue;
        char text[72];
        size_t tl = 0;
        memcpy(text, pre, (size_t)npre);
        tl = (size_t)npre;
        tl += put_utf8(text + tl, c);
        memcpy(text + tl, post, (size_t)npost);
        tl += (size_t)npost;
        int32_t *ids = NULL;
        size_t m = 0;
        int rc = mt_tokenizer_encode(t, text, tl, 0, &ids, &m, &e);
        checked++;
        if (rc || m != n || memcmp(ids, want, n * sizeof *want)) {
            if (bad++ < 8) {
                fprintf(stderr, "  %s: U+%04X:", name, c);
                print_list("hf", want, n);
                if (rc) fprintf(stderr, " ours: error %s\n", e.msg);
                else { print_list("ours", ids, m); fputc('\n', stderr); }
            }
        }
        free(ids);
    }
    CHECK_MSG(!r.bad && seen == count && r.p == r.end, "%s: golden truncated or corrupt (%zu of %zu lists)", name,
              seen, count);
    if (bad || strncmp(name, "probe_", 6))
        fprintf(stderr, "unicode sweep %-20s (tokenizers %s): %zu code points checked, %zu mismatches\n", name, sv,
                checked, bad);
    CHECK_MSG(bad == 0, "%s: %zu of %zu code points tokenize differently from HF", name, bad, checked);
    *total_bad += bad;
    free(g);
    mt_tokenizer_free(t);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(void) {
    unsigned step = SANITIZED ? 17 : 1;
    const char *s = getenv("MT_SWEEP_STEP");
    if (s && *s) step = (unsigned)strtoul(s, NULL, 10);
    if (!step) step = 1;
    /* every <name>.sweep.zst of the folder, sorted */
    char *names[256];
    size_t nn = 0;
    DIR *d = opendir(TOKDIR "unicode");
    CHECK_MSG(d != NULL, "cannot open %s", TOKDIR "unicode");
    for (struct dirent *de; d && (de = readdir(d)) && nn < 256;) {
        size_t l = strlen(de->d_name);
        if (l > 10 && !strcmp(de->d_name + l - 10, ".sweep.zst")) {
            names[nn] = malloc(l - 9);
            memcpy(names[nn], de->d_name, l - 10);
            names[nn++][l - 10] = 0;
        }
    }
    if (d) closedir(d);
    qsort(names, nn, sizeof *names, cmp_str);
    for (size_t i = 0; i < sizeof REAL / sizeof *REAL; i++) {
        int found = 0;
        for (size_t k = 0; k < nn; k++) found |= !strcmp(names[k], REAL[i]);
        CHECK_MSG(found, "no sweep golden for %s", REAL[i]);
    }
    /* the regex additions assume PCRE2's Unicode tables are those the tables were
     * generated against (any version up to Oniguruma's 16.0 gives the same classes) */
    char pv[32] = "";
    pcre2_config(PCRE2_CONFIG_UNICODE_VERSION, pv);
    if (strcmp(pv, tk_hf_pcre2_unicode()))
        fprintf(stderr, "unicode sweep: note: PCRE2 has Unicode %s, the tables were made against %s\n", pv,
                tk_hf_pcre2_unicode());
    size_t bad = 0;
    for (size_t k = 0; k < nn; k++) sweep(names[k], step, &bad);
    fprintf(stderr, "unicode sweep: %zu goldens (probes shown only when they mismatch), %zu mismatches in all "
            "(tables of tokenizers %s, PCRE2 additions against Unicode %s)\n", nn, bad, tk_hf_tokenizers_version(),
            tk_hf_pcre2_unicode());
    for (size_t k = 0; k < nn; k++) free(names[k]);
    return check_report("unicode_sweep");
}
