/* tekken.c - mistral-common's tekken.json tokenizer: loading (bounds-checked),
 * tiktoken's rank BPE for encoding, KEEP-policy decoding.
 * ref: mistral_common/tokens/tokenizers/tekken.py, tiktoken src/lib.rs. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/tekken.h"

#include <jansson.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include "core/file.h"

#define TK_MAX_TOKEN 4096          /* bytes of one token at most */
#define TK_MAX_VOCAB (1u << 22)

struct mt_tekken {
    size_t n_special, n_vocab;     /* n_vocab: ordinary tokens (ranks) */
    char **special;                /* [n_special] names */
    uint8_t *bytes;                /* all ordinary tokens' bytes */
    size_t *off;                   /* [n_vocab + 1] into bytes, by rank */
    int32_t *table;                /* open addressing: rank or -1 */
    size_t cap;                    /* power of two */
    pcre2_code *re;
};

/* ------------------------------------------------------------------ helpers */

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* rank of bytes p[0, n), or -1 */
static int32_t rank_of(const mt_tekken *t, const uint8_t *p, size_t n) {
    size_t i = (size_t)hash_bytes(p, n) & (t->cap - 1);
    for (;;) {
        int32_t r = t->table[i];
        if (r < 0) return -1;
        size_t o = t->off[r], l = t->off[r + 1] - o;
        if (l == n && !memcmp(t->bytes + o, p, n)) return r;
        i = (i + 1) & (t->cap - 1);
    }
}

static int b64_val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 (padding optional) into dst (room for cap bytes); returns
 * the length or -1 when malformed / too long. */
static long b64_decode(const char *s, uint8_t *dst, size_t cap) {
    size_t n = strlen(s), k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=') {
            for (size_t j = i; j < n; j++)
                if (s[j] != '=') return -1;
            break;
        }
        int v = b64_val((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (k >= cap) return -1;
            dst[k++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)k;
}

/* ------------------------------------------------------------------ loading */

static int parse_inner(mt_tekken *t, json_t *root, const char *label, mt_err *err) {
    json_t *cfg = json_object_get(root, "config");
    if (!json_is_object(cfg)) return mt_seterr(err, MT_EFORMAT, "%s: no \"config\" object", label);
    json_t *pat = json_object_get(cfg, "pattern"), *dvs = json_object_get(cfg, "default_vocab_size"),
           *dns = json_object_get(cfg, "default_num_special_tokens");
    if (!json_is_string(pat)) return mt_seterr(err, MT_EFORMAT, "%s: config.pattern missing", label);
    if (!json_is_integer(dvs) || !json_is_integer(dns))
        return mt_seterr(err, MT_EFORMAT, "%s: config.default_vocab_size / default_num_special_tokens missing",
                         label);
    json_int_t vs = json_integer_value(dvs), ns = json_integer_value(dns);
    if (ns < 1 || ns > 100000 || vs <= ns || vs - ns > (json_int_t)TK_MAX_VOCAB)
        return mt_seterr(err, MT_EFORMAT, "%s: default_vocab_size %lld / default_num_special_tokens %lld out of "
                         "range", label, (long long)vs, (long long)ns);
    json_t *voc = json_object_get(root, "vocab");
    if (!json_is_array(voc)) return mt_seterr(err, MT_EFORMAT, "%s: no \"vocab\" array", label);
    size_t nv = (size_t)(vs - ns);
    if (json_array_size(voc) < nv)
        return mt_seterr(err, MT_EFORMAT, "%s: %zu vocab entries, default_vocab_size needs %zu", label,
                         json_array_size(voc), nv);
    t->n_special = (size_t)ns;
    t->n_vocab = nv;

    /* specials: the file's list by rank, the rest "<SPECIAL_i>" */
    t->special = calloc(t->n_special, sizeof *t->special);
    if (!t->special) return mt_seterr(err, MT_ENOMEM, "out of memory");
    json_t *sp = json_object_get(root, "special_tokens");
    if (sp && !json_is_array(sp)) return mt_seterr(err, MT_EFORMAT, "%s: \"special_tokens\" is not an array", label);
    for (size_t i = 0; i < json_array_size(sp); i++) {
        json_t *e = json_array_get(sp, i), *r = json_object_get(e, "rank"), *s = json_object_get(e, "token_str");
        if (!json_is_integer(r) || !json_is_string(s))
            return mt_seterr(err, MT_EFORMAT, "%s: special_tokens[%zu] lacks rank / token_str", label, i);
        json_int_t rk = json_integer_value(r);
        if (rk < 0 || rk >= ns || t->special[rk])
            return mt_seterr(err, MT_EFORMAT, "%s: special_tokens[%zu]: rank %lld out of range or repeated", label,
                             i, (long long)rk);
        if (!(t->special[rk] = strdup(json_string_value(s)))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < t->n_special; i++)
        if (!t->special[i]) {
            char b[32];
            snprintf(b, sizeof b, "<SPECIAL_%zu>", i);
            if (!(t->special[i] = strdup(b))) return mt_seterr(err, MT_ENOMEM, "out of memory");
        }

    /* ordinary tokens: ranks 0..nv-1 exactly once among the first entries used */
    size_t *len = calloc(nv, sizeof *len);
    uint8_t **tmp = calloc(nv, sizeof *tmp);
    uint8_t *buf = malloc(TK_MAX_TOKEN);
    int rc = (len && tmp && buf) ? MT_OK : mt_seterr(err, MT_ENOMEM, "out of memory");
    size_t total = 0;
    for (size_t i = 0, seen = 0; !rc && seen < nv && i < json_array_size(voc); i++) {
        json_t *e = json_array_get(voc, i), *r = json_object_get(e, "rank"), *b = json_object_get(e, "token_bytes");
        if (!json_is_integer(r) || !json_is_string(b)) {
            rc = mt_seterr(err, MT_EFORMAT, "%s: vocab[%zu] lacks rank / token_bytes", label, i);
            break;
        }
        json_int_t rk = json_integer_value(r);
        if (rk < 0 || (size_t)rk >= nv) continue;   /* past max_vocab: dropped as mistral-common does */
        if (tmp[rk]) {
            rc = mt_seterr(err, MT_EFORMAT, "%s: vocab rank %lld repeated", label, (long long)rk);
            break;
        }
        long l = b64_decode(json_string_value(b), buf, TK_MAX_TOKEN);
        if (l <= 0) {
            rc = mt_seterr(err, MT_EFORMAT, "%s: vocab[%zu]: token_bytes is not base64 of 1..%d bytes", label, i,
                           TK_MAX_TOKEN);
            break;
        }
        if (!(tmp[rk] = malloc((size_t)l))) {
            rc = mt_seterr(err, MT_ENOMEM, "out of memory");
            break;
        }
        memcpy(tmp[rk], buf, (size_t)l);
        len[rk] = (size_t)l;
        total += (size_t)l;
        seen++;
    }
    for (size_t r = 0; !rc && r < nv; r++)
        if (!tmp[r]) rc = mt_seterr(err, MT_EFORMAT, "%s: vocab has no token of rank %zu", label, r);
    if (!rc) {
        t->bytes = malloc(total ? total : 1);
        t->off = malloc((nv + 1) * sizeof *t->off);
        for (t->cap = 16; t->cap < 2 * nv; t->cap *= 2) {}
        t->table = malloc(t->cap * sizeof *t->table);
        if (!t->bytes || !t->off || !t->table) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    if (!rc) {
        size_t o = 0;
        for (size_t r = 0; r < nv; r++) {
            t->off[r] = o;
            memcpy(t->bytes + o, tmp[r], len[r]);
            o += len[r];
        }
        t->off[nv] = o;
        memset(t->table, 0xff, t->cap * sizeof *t->table);
        for (size_t r = 0; r < nv && !rc; r++) {
            if (rank_of(t, t->bytes + t->off[r], len[r]) >= 0) {
                rc = mt_seterr(err, MT_EFORMAT, "%s: vocab rank %zu repeats the bytes of another token", label, r);
                break;
            }
            size_t i = (size_t)hash_bytes(t->bytes + t->off[r], len[r]) & (t->cap - 1);
            while (t->table[i] >= 0) i = (i + 1) & (t->cap - 1);
            t->table[i] = (int32_t)r;
        }
    }
    if (tmp)
        for (size_t r = 0; r < nv; r++) free(tmp[r]);
    free(tmp);
    free(len);
    free(buf);
    MT_TRY(rc);

    int ec;
    PCRE2_SIZE eo;
    t->re = pcre2_compile((PCRE2_SPTR)json_string_value(pat), json_string_length(pat), PCRE2_UTF | PCRE2_UCP, &ec,
                          &eo, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return mt_seterr(err, MT_EUNSUPPORTED, "%s: config.pattern: regex error at %zu: %s", label, (size_t)eo,
                         (char *)msg);
    }
    (void)pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE);
    return MT_OK;
}

int mt_tekken_parse(mt_tekken **out, const char *json, size_t len, const char *label, mt_err *err) {
    *out = NULL;
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_ALLOW_NUL, &je);   /* token_str of byte 0 is "\\u0000" */
    if (!root) return mt_seterr(err, MT_EFORMAT, "%s: invalid JSON (line %d: %s)", label, je.line, je.text);
    mt_tekken *t = calloc(1, sizeof *t);
    int rc = t ? parse_inner(t, root, label, err) : mt_seterr(err, MT_ENOMEM, "out of memory");
    json_decref(root);
    if (rc) {
        mt_tekken_free(t);
        return rc;
    }
    *out = t;
    return MT_OK;
}

int mt_tekken_load(mt_tekken **out, const char *path, mt_err *err) {
    *out = NULL;
    char *data = NULL;
    size_t n = 0;
    MT_TRY(mt_read_file(path, &data, &n, err));
    int rc = mt_tekken_parse(out, data, n, path, err);
    free(data);
    return rc;
}

void mt_tekken_free(mt_tekken *t) {
    if (!t) return;
    if (t->special)
        for (size_t i = 0; i < t->n_special; i++) free(t->special[i]);
    free(t->special);
    free(t->bytes);
    free(t->off);
    free(t->table);
    if (t->re) pcre2_code_free(t->re);
    free(t);
}

size_t mt_tekken_n_special(const mt_tekken *t) { return t->n_special; }
size_t mt_tekken_vocab_size(const mt_tekken *t) { return t->n_special + t->n_vocab; }

int32_t mt_tekken_special(const mt_tekken *t, const char *name) {
    for (size_t i = 0; i < t->n_special; i++)
        if (!strcmp(t->special[i], name)) return (int32_t)i;
    return -1;
}

/* ------------------------------------------------------------------ encode */

typedef struct ibuf {
    int32_t *p;
    size_t n, cap;
} ibuf;

static int ipush(ibuf *b, int32_t v) {
    if (b->n == b->cap) {
        size_t nc = b->cap ? 2 * b->cap : 64;
        int32_t *np = realloc(b->p, nc * sizeof *np);
        if (!np) return -1;
        b->p = np;
        b->cap = nc;
    }
    b->p[b->n++] = v;
    return 0;
}

/* tiktoken's _byte_pair_merge over one piece: cut points, repeatedly join
 * the adjacent pair whose bytes have the lowest rank (leftmost on ties). */
static int bpe_piece(const mt_tekken *t, const uint8_t *p, size_t n, ibuf *out) {
    int32_t whole = rank_of(t, p, n);
    if (whole >= 0) return ipush(out, (int32_t)t->n_special + whole);
    size_t *cut = malloc((n + 1) * sizeof *cut);
    if (!cut) return -1;
    size_t nc = n + 1;
    for (size_t i = 0; i <= n; i++) cut[i] = i;
    for (;;) {
        int32_t best = -1;
        size_t bi = 0;
        for (size_t i = 0; i + 2 < nc; i++) {
            int32_t r = rank_of(t, p + cut[i], cut[i + 2] - cut[i]);
            if (r >= 0 && (best < 0 || r < best)) {
                best = r;
                bi = i;
            }
        }
        if (best < 0) break;
        memmove(cut + bi + 1, cut + bi + 2, (nc - bi - 2) * sizeof *cut);
        nc--;
    }
    int rc = 0;
    for (size_t i = 0; i + 1 < nc && !rc; i++) {
        int32_t r = rank_of(t, p + cut[i], cut[i + 1] - cut[i]);
        /* a byte without a token of its own cannot be encoded (tiktoken panics) */
        rc = r < 0 ? -2 : ipush(out, (int32_t)t->n_special + r);
    }
    free(cut);
    return rc;
}

int mt_tekken_encode(const mt_tekken *t, const char *text, size_t len, int32_t **ids, size_t *n, mt_err *err) {
    *ids = NULL;
    *n = 0;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!md) return mt_seterr(err, MT_ENOMEM, "out of memory");
    ibuf b = {0};
    int rc = MT_OK;
    size_t pos = 0;
    while (pos < len) {
        int m = pcre2_match(t->re, (PCRE2_SPTR)text, len, pos, 0, md, NULL);
        if (m == PCRE2_ERROR_NOMATCH) break;
        if (m < 0) {
            rc = mt_seterr(err, MT_EINVAL, "tekken: text is not valid UTF-8 or the regex failed (%d)", m);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t s = ov[0], e = ov[1];
        if (e <= s) {   /* an empty match: step over one character */
            pos = s + 1;
            while (pos < len && ((unsigned char)text[pos] & 0xC0) == 0x80) pos++;
            continue;
        }
        int r = bpe_piece(t, (const uint8_t *)text + s, e - s, &b);
        if (r) {
            rc = r == -2 ? mt_seterr(err, MT_EINVAL, "tekken: a byte of the text has no token")
                         : mt_seterr(err, MT_ENOMEM, "out of memory");
            break;
        }
        pos = e;
    }
    pcre2_match_data_free(md);
    if (rc) {
        free(b.p);
        return rc;
    }
    *ids = b.p;
    *n = b.n;
    return MT_OK;
}

/* ------------------------------------------------------------------ decode */

typedef struct cbuf {
    char *p;
    size_t n, cap;
    int oom;
} cbuf;

static void cput(cbuf *b, const void *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* Bytes as UTF-8 with Python's errors="replace": each maximal subpart of an
 * ill-formed sequence (Unicode 3.9, Table 3-7) becomes one U+FFFD. */
static void put_utf8_replace(cbuf *b, const uint8_t *s, size_t n) {
    static const char rep[] = "\xEF\xBF\xBD";
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            cput(b, s + i, 1);
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            cput(b, rep, 3);
            i++;
            continue;
        }
        size_t k = 1;
        while (k <= need && i + k < n) {
            uint8_t x = s[i + k];
            if (k == 1 ? (x < lo || x > hi) : (x < 0x80 || x > 0xBF)) break;
            k++;
        }
        if (k == need + 1) cput(b, s + i, k);
        else cput(b, rep, 3);
        i += k;
    }
}

int mt_tekken_decode(const mt_tekken *t, const int32_t *ids, size_t n, char **out, mt_err *err) {
    *out = NULL;
    size_t V = mt_tekken_vocab_size(t);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= V)
            return mt_seterr(err, MT_EINVAL, "tekken: token id %d outside the vocabulary of %zu", (int)ids[i], V);
    cbuf b = {0};
    cput(&b, "", 0);
    cbuf run = {0};
    for (size_t i = 0; i < n; i++) {
        size_t id = (size_t)ids[i];
        if (id < t->n_special) {
            const char *s = t->special[id];
            cput(&b, s, strlen(s));
            continue;
        }
        size_t r = id - t->n_special;
        cput(&run, t->bytes + t->off[r], t->off[r + 1] - t->off[r]);
        if (i + 1 == n || (size_t)ids[i + 1] < t->n_special) {
            if (!run.oom) put_utf8_replace(&b, (const uint8_t *)run.p, run.n);
            run.n = 0;
        }
    }
    int oom = b.oom || run.oom;
    free(run.p);
    if (oom) {
        free(b.p);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    *out = b.p;
    return MT_OK;
}
