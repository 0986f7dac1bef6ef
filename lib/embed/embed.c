/* embed.c - the sentence-transformers pipeline over an encoder: folder
 * configuration, tokenization with truncation, pooling, Dense, Normalize.
 * ref: sentence_transformers/models/Transformer.py (tokenize: strip, lower,
 * truncation), Pooling.py (mode order), Dense.py, Normalize.py. */
#include "embed/embed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>
#include "core/file.h"
#include "io/config.h"

static json_t *load_json(const char *dir, const char *name, int *absent, mt_err *err) {
    char *p = mt_path_join(dir, name);
    *absent = 0;
    if (!p) { mt_seterr(err, MT_ENOMEM, "out of memory"); return NULL; }
    if (!mt_file_exists(p)) {
        free(p);
        *absent = 1;
        return NULL;
    }
    char *buf;
    size_t len;
    json_t *j = NULL;
    if (mt_read_file_max(p, 16u << 20, &buf, &len, err) == MT_OK) {
        json_error_t je;
        j = json_loadb(buf, len, 0, &je);
        if (!j) mt_seterr(err, MT_EFORMAT, "%s: invalid JSON at line %d: %s", name, je.line, je.text);
        free(buf);
    }
    free(p);
    return j;
}

static int jbool(json_t *o, const char *k) { return json_is_true(json_object_get(o, k)); }

static int mode_of(const char *s) {
    if (!strcmp(s, "mean")) return MT_POOL_MEAN;
    if (!strcmp(s, "cls")) return MT_POOL_CLS;
    if (!strcmp(s, "max")) return MT_POOL_MAX;
    if (!strcmp(s, "lasttoken")) return MT_POOL_LAST;
    if (!strcmp(s, "weightedmean")) return MT_POOL_WEIGHTED;
    if (!strcmp(s, "mean_sqrt_len_tokens")) return MT_POOL_MEAN_SQRT;
    return 0;
}

static int add_mode(mt_embedder *m, int mode) {
    for (size_t i = 0; i < m->n_pool; i++)
        if (m->pool_modes[i] == mode) return 0;
    if (m->n_pool == 6) return 0;
    m->pool_modes[m->n_pool++] = mode;
    return 0;
}

static int load_pooling(mt_embedder *m, const char *dir, mt_err *err) {
    int absent;
    json_t *c = load_json(dir, "config.json", &absent, err);
    if (!c) return absent ? mt_seterr(err, MT_ENOTFOUND, "%s/config.json: not found", dir) : err->code;
    int rc = MT_OK;
    json_t *mode = json_object_get(c, "pooling_mode");
    if (json_is_string(mode) || json_is_array(mode)) {
        size_t n = json_is_array(mode) ? json_array_size(mode) : 1;
        for (size_t i = 0; i < n && !rc; i++) {
            json_t *v = json_is_array(mode) ? json_array_get(mode, i) : mode;
            int md = json_is_string(v) ? mode_of(json_string_value(v)) : 0;
            if (!md) rc = mt_seterr(err, MT_EUNSUPPORTED, "%s: unknown pooling mode", dir);
            else add_mode(m, md);
        }
    } else {
        /* legacy flags, in sentence-transformers' order */
        static const struct { const char *k; int m; } fl[] = {
            {"pooling_mode_cls_token", MT_POOL_CLS}, {"pooling_mode_max_tokens", MT_POOL_MAX},
            {"pooling_mode_mean_tokens", MT_POOL_MEAN}, {"pooling_mode_mean_sqrt_len_tokens", MT_POOL_MEAN_SQRT},
            {"pooling_mode_weightedmean_tokens", MT_POOL_WEIGHTED}, {"pooling_mode_lasttoken", MT_POOL_LAST}};
        for (size_t i = 0; i < sizeof fl / sizeof *fl; i++)
            if (jbool(c, fl[i].k)) add_mode(m, fl[i].m);
    }
    json_t *ip = json_object_get(c, "include_prompt");
    int include_prompt = !ip || json_is_true(ip);
    json_decref(c);
    if (rc) return rc;
    if (!m->n_pool) return mt_seterr(err, MT_EUNSUPPORTED, "%s: no pooling mode set", dir);
    if (!include_prompt) return mt_seterr(err, MT_EUNSUPPORTED, "%s: include_prompt=false is not supported", dir);
    return MT_OK;
}

static int load_dense(mt_embedder *m, const char *dir, mt_err *err) {
    int absent;
    json_t *c = load_json(dir, "config.json", &absent, err);
    if (!c) return absent ? mt_seterr(err, MT_ENOTFOUND, "%s/config.json: not found", dir) : err->code;
    json_int_t in = json_integer_value(json_object_get(c, "in_features"));
    json_int_t out = json_integer_value(json_object_get(c, "out_features"));
    json_t *jb = json_object_get(c, "bias");
    int bias = !jb || json_is_true(jb);
    const char *act = json_string_value(json_object_get(c, "activation_function"));
    int tanh_act = 0;
    if (act && strstr(act, "Tanh")) tanh_act = 1;
    else if (act && !strstr(act, "Identity")) {
        json_decref(c);
        return mt_seterr(err, MT_EUNSUPPORTED, "%s: activation %s is not supported", dir, act);
    }
    json_decref(c);
    if (in < 1 || out < 1 || in > 1 << 20 || out > 1 << 20)
        return mt_seterr(err, MT_EFORMAT, "%s/config.json: bad in/out_features", dir);
    mt_safetensors **sts = realloc(m->dense_st, (m->n_dense + 1) * sizeof *sts);
    if (!sts) return mt_seterr(err, MT_ENOMEM, "out of memory");
    m->dense_st = sts;
    mt_dense *d = realloc(m->dense, (m->n_dense + 1) * sizeof *d);
    if (!d) return mt_seterr(err, MT_ENOMEM, "out of memory");
    m->dense = d;
    sts[m->n_dense] = NULL;
    MT_TRY(mt_safetensors_open_dir(&sts[m->n_dense], dir, err));
    mt_config *cfg = NULL;
    MT_TRY(mt_config_parse(&cfg, "{}", 2, "dense", err));
    int rc = mt_linear_bind(&d[m->n_dense].l, sts[m->n_dense], cfg, "linear", (size_t)out, (size_t)in,
                            bias ? 1 : -1, err);
    mt_config_free(cfg);
    m->n_dense++;   /* counted even on failure so that free releases the file */
    if (rc) return mt_preferr(err, "%s", dir);
    d[m->n_dense - 1].tanh = tanh_act;
    return MT_OK;
}

static int load_st_config(mt_embedder *m, const char *tdir, const char *dir, size_t *max_seq, mt_err *err) {
    int absent;
    json_t *c = load_json(tdir, "sentence_bert_config.json", &absent, err);
    if (!c && !absent) return err->code;
    if (c) {
        json_t *v = json_object_get(c, "max_seq_length");
        if (json_is_integer(v) && json_integer_value(v) > 0) *max_seq = (size_t)json_integer_value(v);
        m->do_lower_case = jbool(c, "do_lower_case");
        json_decref(c);
    }
    if (!*max_seq) {
        c = load_json(tdir, "tokenizer_config.json", &absent, err);
        if (!c && !absent) return err->code;
        json_t *v = json_object_get(c, "model_max_length");
        if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) < 1000000)
            *max_seq = (size_t)json_integer_value(v);
        json_decref(c);
    }
    c = load_json(dir, "config_sentence_transformers.json", &absent, err);
    if (!c && !absent) return err->code;
    if (c) {
        json_t *p = json_object_get(c, "prompts");
        if (json_is_object(p) && json_object_size(p)) m->prompts = json_incref(p);
        const char *dp = json_string_value(json_object_get(c, "default_prompt_name"));
        if (dp && m->prompts) {
            const char *t = json_string_value(json_object_get(m->prompts, dp));
            if (t && !(m->default_prompt = strdup(t))) {
                json_decref(c);
                return mt_seterr(err, MT_ENOMEM, "out of memory");
            }
        }
        json_decref(c);
    }
    return MT_OK;
}

static int open_impl(mt_embedder *m, const char *dir, mt_pool *pool, size_t max_seq_override, mt_err *err) {
    int absent;
    json_t *mods = load_json(dir, "modules.json", &absent, err);
    if (!mods && !absent) return err->code;
    char *tdir = NULL;
    int rc = MT_OK;
    if (!mods) {
        add_mode(m, MT_POOL_MEAN);
        m->normalize = 1;
    } else if (!json_is_array(mods)) {
        rc = mt_seterr(err, MT_EFORMAT, "modules.json: not an array");
    } else {
        size_t i;
        json_t *mod;
        json_array_foreach(mods, i, mod) {
            const char *type = json_string_value(json_object_get(mod, "type"));
            const char *path = json_string_value(json_object_get(mod, "path"));
            if (!type || !path || strstr(path, "..") || path[0] == '/') {
                rc = mt_seterr(err, MT_EFORMAT, "modules.json: module %zu needs a relative \"type\" and \"path\"", i);
                break;
            }
            char *sub = path[0] ? mt_path_join(dir, path) : strdup(dir);
            if (!sub) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); break; }
            const char *base = strrchr(type, '.') ? strrchr(type, '.') + 1 : type;
            if (!strcmp(base, "Transformer")) {
                free(tdir);
                tdir = sub;
                sub = NULL;
            } else if (!strcmp(base, "Pooling")) {
                rc = load_pooling(m, sub, err);
            } else if (!strcmp(base, "Dense")) {
                rc = load_dense(m, sub, err);
            } else if (!strcmp(base, "Normalize")) {
                m->normalize = 1;
            } else {
                rc = mt_seterr(err, MT_EUNSUPPORTED, "modules.json: module %s is not supported", type);
            }
            free(sub);
            if (rc) break;
        }
        if (!rc && !m->n_pool) rc = mt_seterr(err, MT_EUNSUPPORTED, "modules.json: no Pooling module");
    }
    json_decref(mods);
    if (!rc && !tdir && !(tdir = strdup(dir))) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc && !mt_is_dir(tdir)) rc = mt_seterr(err, MT_ENOTFOUND, "%s: not found", tdir);
    char *cfgp = NULL;
    if (!rc) {
        /* an old layout keeps the transformer in a subfolder; else the folder itself */
        cfgp = mt_path_join(tdir, "config.json");
        if (cfgp && !mt_file_exists(cfgp)) {
            free(tdir);
            tdir = strdup(dir);
        }
        free(cfgp);
        if (!tdir) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    if (!rc) rc = mt_encoder_load(&m->enc, tdir, pool, err);
    if (!rc) {
        char *tp = mt_path_join(tdir, "tokenizer.json");
        if (!tp) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        else rc = mt_tokenizer_load(&m->tok, tp, err);
        free(tp);
    }
    size_t max_seq = 0;
    if (!rc) rc = load_st_config(m, tdir, dir, &max_seq, err);
    free(tdir);
    if (rc) return rc;
    const char *act = mt_config_get_str(m->enc->cfg, "sentence_transformers.activation_fn", NULL);
    if (!act) act = mt_config_get_str(m->enc->cfg, "sbert_ce_default_activation_function", NULL);
    m->score_sigmoid = act ? strstr(act, "Sigmoid") != NULL : mt_encoder_n_labels(m->enc) == 1;
    size_t model_max = (size_t)(m->enc->hp.max_pos - m->enc->hp.pos_offset);
    if (max_seq_override) max_seq = max_seq_override;
    if (!max_seq || max_seq > model_max) max_seq = model_max;
    m->max_seq = max_seq;
    size_t H = (size_t)m->enc->hp.hidden, dim = 0;
    dim = m->n_pool * H;
    for (size_t i = 0; i < m->n_dense; i++) {
        if (m->dense[i].l.in != dim)
            return mt_seterr(err, MT_EFORMAT, "Dense module %zu takes %zu features, the pipeline gives %zu", i,
                             m->dense[i].l.in, dim);
        dim = m->dense[i].l.out;
    }
    m->dim = dim;
    return MT_OK;
}

int mt_embedder_open(mt_embedder **out, const char *dir, mt_pool *pool, size_t max_seq, mt_err *err) {
    *out = NULL;
    mt_embedder *m = calloc(1, sizeof *m);
    if (!m) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = open_impl(m, dir, pool, max_seq, err);
    if (rc) {
        mt_embedder_free(m);
        return rc;
    }
    *out = m;
    return MT_OK;
}

void mt_embedder_free(mt_embedder *m) {
    if (!m) return;
    mt_encoder_free(m->enc);
    mt_tokenizer_free(m->tok);
    for (size_t i = 0; i < m->n_dense; i++) mt_safetensors_free(m->dense_st[i]);
    free(m->dense_st);
    free(m->dense);
    json_decref(m->prompts);
    free(m->default_prompt);
    free(m);
}

const char *mt_embedder_prompt(const mt_embedder *m, const char *name) {
    return m->prompts ? json_string_value(json_object_get(m->prompts, name)) : NULL;
}

/* ---- tokenization ---- */

/* Python's str.isspace() set.  (sentence-transformers 2-5 stripped texts with
 * str.strip(); 6.x passes them as they are: texts are not stripped here, only
 * a text that is all whitespace is refused.) */
static int py_space(int32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Bounds of s[0..n) without surrounding Python whitespace (invalid UTF-8 is not space). */
static void py_strip(const char *s, size_t n, size_t *b, size_t *e) {
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0 || !py_space(c)) break;
        i += (size_t)k;
    }
    size_t j = n;
    while (j > i) {
        size_t k = j - 1;
        while (k > i && ((unsigned char)s[k] & 0xc0) == 0x80) k--;
        utf8proc_int32_t c;
        utf8proc_ssize_t r = utf8proc_iterate((const utf8proc_uint8_t *)s + k, (utf8proc_ssize_t)(j - k), &c);
        if (r != (utf8proc_ssize_t)(j - k) || !py_space(c)) break;
        j = k;
    }
    *b = i;
    *e = j;
}

static char *lower_utf8(const char *s, size_t n, size_t *outn) {
    char *o = malloc(n * 2 + 8);   /* lower-casing never more than doubles a UTF-8 length here */
    if (!o) return NULL;
    size_t i = 0, w = 0;
    while (i < n) {
        utf8proc_int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) { o[w++] = s[i++]; continue; }
        w += (size_t)utf8proc_encode_char(utf8proc_tolower(c), (utf8proc_uint8_t *)o + w);
        i += (size_t)k;
    }
    o[w] = 0;
    *outn = w;
    return o;
}

int mt_embedder_tokenize(const mt_embedder *m, const char *prefix, const char *text, size_t len, int32_t **ids,
                         size_t *n, int *truncated, mt_err *err) {
    *ids = NULL;
    *n = 0;
    *truncated = 0;
    size_t pl = prefix ? strlen(prefix) : 0, b, e;
    py_strip(text, len, &b, &e);
    if (b == e) return mt_seterr(err, MT_EINVAL, "empty text");
    char *full = malloc(pl + len + 1);
    if (!full) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (pl) memcpy(full, prefix, pl);
    memcpy(full + pl, text, len);
    const char *s = full;
    size_t sl = pl + len;
    char *low = NULL;
    if (m->do_lower_case) {
        low = lower_utf8(s, sl, &sl);
        if (!low) { free(full); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
        s = low;
    }
    int32_t *a = NULL, *p = NULL;
    size_t na = 0, np = 0;
    int rc = mt_tokenizer_encode(m->tok, s, sl, 1, &a, &na, err);
    if (!rc && na > m->max_seq) {
        rc = mt_tokenizer_encode(m->tok, s, sl, 0, &p, &np, err);
        if (!rc) {
            size_t ns = na - np, pre = 0;
            /* where the plain ids sit inside the full encoding */
            for (pre = 0; pre <= ns; pre++)
                if (!memcmp(a + pre, p, np * sizeof *p)) break;
            if (pre > ns || ns >= m->max_seq) {
                rc = mt_seterr(err, MT_EUNSUPPORTED, "cannot truncate: the special tokens do not frame the text");
            } else {
                size_t keep = m->max_seq - ns, suf = ns - pre;
                memmove(a + pre + keep, a + pre + np, suf * sizeof *a);
                na = pre + keep + suf;
                *truncated = 1;
            }
        }
    }
    free(p);
    free(low);
    free(full);
    if (rc) { free(a); return rc; }
    *ids = a;
    *n = na;
    return MT_OK;
}

/* ---- pooling and heads ---- */

void mt_embed_pool(int mode, const float *h, size_t L, size_t H, float *out) {
    switch (mode) {
    case MT_POOL_CLS: memcpy(out, h, H * sizeof *out); return;
    case MT_POOL_LAST: memcpy(out, h + (L - 1) * H, H * sizeof *out); return;
    case MT_POOL_MAX:
        memcpy(out, h, H * sizeof *out);
        for (size_t t = 1; t < L; t++)
            for (size_t i = 0; i < H; i++) out[i] = h[t * H + i] > out[i] ? h[t * H + i] : out[i];
        return;
    default: break;
    }
    memset(out, 0, H * sizeof *out);
    float wsum = 0.f;
    for (size_t t = 0; t < L; t++) {
        float w = mode == MT_POOL_WEIGHTED ? (float)(t + 1) : 1.0f;
        for (size_t i = 0; i < H; i++) out[i] += h[t * H + i] * w;
        wsum += w;
    }
    float d = mode == MT_POOL_MEAN_SQRT ? sqrtf((float)L) : wsum;
    for (size_t i = 0; i < H; i++) out[i] /= d;
}

void mt_embed_normalize(float *x, size_t n) {
    float s = 0.f;
    for (size_t i = 0; i < n; i++) s += x[i] * x[i];
    float nrm = sqrtf(s);
    if (nrm < 1e-12f) nrm = 1e-12f;
    for (size_t i = 0; i < n; i++) x[i] /= nrm;
}

int mt_embedder_run(mt_embedder *m, const int32_t *ids, const size_t *lens, size_t nseq, float *out, mt_err *err) {
    size_t H = (size_t)m->enc->hp.hidden, N = 0, width = 0;
    for (size_t s = 0; s < nseq; s++) N += lens[s];
    width = m->n_pool * H;
    size_t wmax = width;
    for (size_t i = 0; i < m->n_dense; i++) wmax = m->dense[i].l.out > wmax ? m->dense[i].l.out : wmax;
    float *hid = malloc(N * H * sizeof(float));
    float *a = malloc(nseq * wmax * sizeof(float)), *bb = malloc(nseq * wmax * sizeof(float));
    float *work = malloc(wmax * sizeof(float) * 256);
    int rc = MT_OK;
    if (!hid || !a || !bb || !work) rc = mt_seterr(err, MT_ENOMEM, "out of memory for %zu tokens", N);
    if (!rc) rc = mt_encoder_forward(m->enc, ids, NULL, lens, nseq, hid, err);
    if (!rc) {
        size_t off = 0;
        for (size_t s = 0; s < nseq; s++) {
            for (size_t k = 0; k < m->n_pool; k++)
                mt_embed_pool(m->pool_modes[k], hid + off * H, lens[s], H, a + s * width + k * H);
            off += lens[s];
        }
        size_t w = width;
        for (size_t i = 0; i < m->n_dense; i++) {
            const mt_dense *d = &m->dense[i];
            mt_linear_forward(&d->l, a, nseq, bb, work, NULL);
            if (d->tanh)
                for (size_t j = 0; j < nseq * d->l.out; j++) bb[j] = tanhf(bb[j]);
            float *t = a; a = bb; bb = t;
            w = d->l.out;
        }
        for (size_t s = 0; s < nseq; s++) {
            if (m->normalize) mt_embed_normalize(a + s * w, w);
            memcpy(out + s * w, a + s * w, w * sizeof(float));
        }
    }
    free(hid); free(a); free(bb); free(work);
    return rc;
}

/* ---- cross-encoders ---- */

/* Encode one part with and without special tokens: the plain ids, and how many
 * special tokens the single-sequence template puts before and after them. */
static int encode_part(const mt_embedder *m, const char *s, size_t n, int32_t **plain, size_t *np, int32_t **full,
                       size_t *nf, size_t *pre, mt_err *err) {
    size_t b, e;
    py_strip(s, n, &b, &e);
    if (b == e) return mt_seterr(err, MT_EINVAL, "empty text");
    MT_TRY(mt_tokenizer_encode(m->tok, s, n, 0, plain, np, err));
    int rc = mt_tokenizer_encode(m->tok, s, n, 1, full, nf, err);
    if (rc) { free(*plain); *plain = NULL; return rc; }
    size_t ns = *nf - *np;
    for (*pre = 0; *pre <= ns; (*pre)++)
        if (!memcmp(*full + *pre, *plain, *np * sizeof **plain)) return MT_OK;
    free(*plain); free(*full);
    *plain = *full = NULL;
    return mt_seterr(err, MT_EUNSUPPORTED, "cannot build a pair: the special tokens do not frame the text");
}

int mt_embedder_tokenize_pair(const mt_embedder *m, const char *a, size_t alen, const char *b, size_t blen,
                              int32_t **ids, int32_t **types, size_t *n, int *truncated, mt_err *err) {
    *ids = *types = NULL;
    *n = 0;
    *truncated = 0;
    int32_t *pa = NULL, *fa = NULL, *pb = NULL, *fb = NULL;
    size_t npa, nfa, npb, nfb, prea, preb;
    MT_TRY(encode_part(m, a, alen, &pa, &npa, &fa, &nfa, &prea, err));
    int rc = encode_part(m, b, blen, &pb, &npb, &fb, &nfb, &preb, err);
    if (rc) { free(pa); free(fa); return rc; }
    size_t sufa = nfa - npa - prea;
    int roberta = m->enc->hp.pos_offset > 0;   /* <s> a </s></s> b </s> */
    size_t nspecial = prea + sufa * (roberta ? 3 : 2);
    if (nspecial >= m->max_seq) {
        rc = mt_seterr(err, MT_EINVAL, "max_seq_length %zu leaves no room for the pair", m->max_seq);
    } else {
        /* longest_first, as HF tokenizers computes it */
        size_t M = m->max_seq - nspecial, n1 = npa, n2 = npb;
        if (n1 + n2 > M) {
            *truncated = 1;
            int swap = n1 > n2;
            size_t s1 = swap ? n2 : n1, s2;
            if (s1 > M) s2 = s1;
            else s2 = M - s1 > s1 ? M - s1 : s1;
            if (s1 + s2 > M) { s1 = M / 2; s2 = s1 + M % 2; }
            size_t ka = swap ? s2 : s1, kb = swap ? s1 : s2;
            n1 = npa < ka ? npa : ka;
            n2 = npb < kb ? npb : kb;
        }
        size_t tot = nspecial + n1 + n2, w = 0;
        int32_t *o = malloc(tot * sizeof *o), *t = malloc(tot * sizeof *t);
        if (!o || !t) {
            free(o); free(t);
            rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        } else {
            const int32_t *suf = fa + prea + npa;
            memcpy(o + w, fa, prea * sizeof *o); w += prea;
            memcpy(o + w, pa, n1 * sizeof *o); w += n1;
            memcpy(o + w, suf, sufa * sizeof *o); w += sufa;
            if (roberta) { memcpy(o + w, suf, sufa * sizeof *o); w += sufa; }
            size_t first = w;
            memcpy(o + w, pb, n2 * sizeof *o); w += n2;
            memcpy(o + w, suf, sufa * sizeof *o); w += sufa;
            int two = m->enc->hp.type_vocab >= 2 && !roberta;
            for (size_t i = 0; i < w; i++) t[i] = two && i >= first ? 1 : 0;
            *ids = o;
            *types = t;
            *n = w;
        }
    }
    free(pa); free(fa); free(pb); free(fb);
    return rc;
}

int mt_embedder_score(mt_embedder *m, const int32_t *ids, const int32_t *types, const size_t *lens, size_t nseq,
                      float *scores, mt_err *err) {
    size_t H = (size_t)m->enc->hp.hidden, N = 0, L = mt_encoder_n_labels(m->enc);
    if (!L) return mt_seterr(err, MT_ENOTFOUND, "the model has no classification head (not a cross-encoder)");
    for (size_t s = 0; s < nseq; s++) N += lens[s];
    float *hid = malloc(N * H * sizeof(float)), *cls = malloc(nseq * H * sizeof(float));
    int rc = MT_OK;
    if (!hid || !cls) rc = mt_seterr(err, MT_ENOMEM, "out of memory for %zu tokens", N);
    if (!rc) rc = mt_encoder_forward(m->enc, ids, types, lens, nseq, hid, err);
    if (!rc) {
        size_t off = 0;
        for (size_t s = 0; s < nseq; s++) {
            memcpy(cls + s * H, hid + off * H, H * sizeof(float));
            off += lens[s];
        }
        rc = mt_encoder_classify(m->enc, cls, nseq, scores, err);
    }
    if (!rc && m->score_sigmoid)
        for (size_t i = 0; i < nseq * L; i++) scores[i] = 1.0f / (1.0f + expf(-scores[i]));
    free(hid);
    free(cls);
    return rc;
}
