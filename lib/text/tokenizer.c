/* tokenizer.c - loading tokenizer.json, added-token extraction, the encode
 * pipeline (added tokens -> normalizer -> pre-tokenizer -> model ->
 * post-processor), decode, vocabulary queries and the streaming
 * detokenizer. Behaviour follows Hugging Face `tokenizers`. */
#include <stdlib.h>
#include <string.h>
#include "core/file.h"
#include "text/tok_internal.h"

/* ---------------- loading ---------------- */
static int add_added(mt_tokenizer *t, json_t *a, mt_err *err) {
    json_t *jid = json_object_get(a, "id"), *jc = json_object_get(a, "content");
    if (!json_is_integer(jid) || !json_is_string(jc) || json_integer_value(jid) < 0 ||
        json_integer_value(jid) > 0x7FFFFFF0)
        return mt_seterr(err, MT_EFORMAT, "tokenizer: bad added_tokens entry");
    size_t id = (size_t)json_integer_value(jid);
    const char *c = json_string_value(jc);
    size_t n = json_string_length(jc);
    if (id >= t->id_limit)
        return mt_seterr(err, MT_EFORMAT,
                         "tokenizer: added token '%.40s' has id %zu; a file of %zu vocab entries and %zu added "
                         "tokens takes ids below %zu",
                         c, id, t->model_nvocab_decl, t->n_added_decl, t->id_limit);
    if (!n) return MT_OK;
    uint32_t ol;
    const char *old = tk_strtab_get(&t->tab, id, &ol);
    if (!old || ol != n || memcmp(old, c, n) != 0) {
        if (old && id < t->model_nvocab && tk_strmap_get(&t->model_map, &t->tab, old, ol) == (int32_t)id) {
            /* id taken by a different model token: keep the model's string for it */
        } else if (tk_strtab_set(&t->tab, id, c, n)) {
            return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        }
    }
    /* the added map keys must point at this content: store it under a private id when needed */
    const char *cur = tk_strtab_get(&t->tab, id, &ol);
    if (!(cur && ol == n && memcmp(cur, c, n) == 0))
        return MT_OK; /* unreachable in practice; ignore the conflicting entry */
    if (tk_strmap_put(&t->added_map, &t->tab, c, n, (int32_t)id)) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    if (id + 1 > t->nids) t->nids = id + 1;
    return MT_OK;
}

static int build_added(mt_tokenizer *t, json_t *arr, mt_err *err) {
    size_t na = json_array_size(arr);
    if (!t->id_limit) t->id_limit = tk_id_limit(t->model_nvocab_decl, na);
    if (tk_strmap_init(&t->added_map, na + 16)) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < na; i++) {
        json_t *a = json_array_get(arr, i);
        if (!json_is_object(a)) return mt_seterr(err, MT_EFORMAT, "tokenizer: bad added_tokens entry");
        MT_TRY(add_added(t, a, err));
    }
    if (t->model_nvocab > t->nids) t->nids = t->model_nvocab;
    t->flags = calloc(t->nids ? t->nids : 1, 1);
    t->added_props = calloc(t->nids ? t->nids : 1, 1);
    t->dec_str = calloc(t->nids ? t->nids : 1, sizeof *t->dec_str);
    t->dec_len = calloc(t->nids ? t->nids : 1, sizeof *t->dec_len);
    if (!t->flags || !t->added_props || !t->dec_str || !t->dec_len) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < t->model_nvocab; i++)
        if (i < t->tab.nids && t->tab.off[i] != UINT64_MAX) t->flags[i] |= 1;
    if (tk_trie_init(&t->added_raw) || tk_trie_init(&t->added_norm)) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    tk_buf nb = {0};
    int rc = MT_OK;
    for (size_t i = 0; i < na && !rc; i++) {
        json_t *a = json_array_get(arr, i);
        size_t id = (size_t)json_integer_value(json_object_get(a, "id"));
        json_t *jc = json_object_get(a, "content");
        const char *c = json_string_value(jc);
        size_t n = json_string_length(jc);
        if (!n || tk_strmap_get(&t->added_map, &t->tab, c, n) != (int32_t)id) continue;
        int special = json_is_true(json_object_get(a, "special"));
        json_t *jn = json_object_get(a, "normalized");
        int normalized = json_is_boolean(jn) ? json_is_true(jn) : !special;
        t->flags[id] |= 2;
        if (special) t->flags[id] |= 4;
        t->added_props[id] = (uint8_t)((json_is_true(json_object_get(a, "single_word")) ? 1 : 0) |
                                       (json_is_true(json_object_get(a, "lstrip")) ? 2 : 0) |
                                       (json_is_true(json_object_get(a, "rstrip")) ? 4 : 0));
        if (normalized && t->norm.type != TK_N_NONE) {
            nb.n = 0;
            rc = tk_norm_apply(&t->norm, c, n, &nb, err);
            if (rc) break;
            if (nb.n != n || memcmp(nb.p, c, n) != 0) {
                free(t->dec_str[id]);
                t->dec_str[id] = malloc(nb.n + 1);
                if (!t->dec_str[id]) { rc = mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory"); break; }
                if (nb.n) memcpy(t->dec_str[id], nb.p, nb.n);
                t->dec_str[id][nb.n] = 0;
                t->dec_len[id] = (uint32_t)nb.n;
            }
            if (nb.n && tk_trie_add(&t->added_norm, nb.p, nb.n, (int32_t)id)) rc = MT_ENOMEM;
            t->has_added_norm = 1;
        } else if (normalized) {
            if (tk_trie_add(&t->added_norm, c, n, (int32_t)id)) rc = MT_ENOMEM;
            t->has_added_norm = 1;
        } else {
            if (tk_trie_add(&t->added_raw, c, n, (int32_t)id)) rc = MT_ENOMEM;
            t->has_added_raw = 1;
        }
        if (rc == MT_ENOMEM) mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    }
    tk_buf_free(&nb);
    return rc;
}

static int special_ids(json_t *specials, const char *name, tk_ids *out, mt_err *err) {
    json_t *s = json_object_get(specials, name);
    json_t *ids = json_object_get(s, "ids");
    if (!json_is_array(ids)) return mt_seterr(err, MT_EFORMAT, "tokenizer: template special token '%s' undefined", name);
    for (size_t i = 0; i < json_array_size(ids); i++) {
        json_t *v = json_array_get(ids, i);
        if (!json_is_integer(v)) return mt_seterr(err, MT_EFORMAT, "tokenizer: bad template ids");
        tk_ids_push(out, (int32_t)json_integer_value(v));
    }
    return MT_OK;
}

static int load_post(json_t *p, tk_ids *pre, tk_ids *suf, mt_err *err) {
    if (!p || json_is_null(p)) return MT_OK;
    json_t *jt = json_object_get(p, "type");
    const char *type = json_is_string(jt) ? json_string_value(jt) : NULL;
    if (!type) return mt_seterr(err, MT_EFORMAT, "tokenizer: post_processor without type");
    if (!strcmp(type, "ByteLevel")) return MT_OK;
    if (!strcmp(type, "Sequence")) {
        json_t *a = json_object_get(p, "processors");
        for (size_t i = 0; i < json_array_size(a); i++) {
            tk_ids p2 = {0}, s2 = {0};
            int rc = load_post(json_array_get(a, i), &p2, &s2, err);
            if (!rc) {
                /* a later processor wraps the result of the earlier ones */
                tk_ids np = {0};
                for (size_t k = 0; k < p2.n; k++) tk_ids_push(&np, p2.v[k]);
                for (size_t k = 0; k < pre->n; k++) tk_ids_push(&np, pre->v[k]);
                free(pre->v); *pre = np;
                for (size_t k = 0; k < s2.n; k++) tk_ids_push(suf, s2.v[k]);
            }
            free(p2.v); free(s2.v);
            if (rc) return rc;
        }
        return MT_OK;
    }
    if (!strcmp(type, "TemplateProcessing")) {
        json_t *single = json_object_get(p, "single"), *sp = json_object_get(p, "special_tokens");
        if (!json_is_array(single)) return mt_seterr(err, MT_EFORMAT, "tokenizer: TemplateProcessing without single");
        int seen = 0;
        for (size_t i = 0; i < json_array_size(single); i++) {
            json_t *it = json_array_get(single, i);
            json_t *st = json_object_get(it, "SpecialToken");
            if (st) {
                json_t *id = json_object_get(st, "id");
                if (!json_is_string(id)) return mt_seterr(err, MT_EFORMAT, "tokenizer: bad template item");
                MT_TRY(special_ids(sp, json_string_value(id), seen ? suf : pre, err));
            } else if (json_object_get(it, "Sequence")) {
                seen = 1;
            } else {
                return mt_seterr(err, MT_EFORMAT, "tokenizer: bad template item");
            }
        }
        return MT_OK;
    }
    if (!strcmp(type, "BertProcessing") || !strcmp(type, "RobertaProcessing")) {
        json_t *cls = json_object_get(p, "cls"), *sep = json_object_get(p, "sep");
        if (!json_is_integer(json_array_get(cls, 1)) || !json_is_integer(json_array_get(sep, 1)))
            return mt_seterr(err, MT_EFORMAT, "tokenizer: %s needs cls and sep", type);
        tk_ids_push(pre, (int32_t)json_integer_value(json_array_get(cls, 1)));
        tk_ids_push(suf, (int32_t)json_integer_value(json_array_get(sep, 1)));
        return MT_OK;
    }
    return mt_seterr(err, MT_EUNSUPPORTED, "tokenizer: unsupported post_processor '%s'", type);
}

/* The last pre-tokenizer step, if it is ByteLevel. */
static tk_pretok *last_bytelevel(tk_pretok *p) {
    if (p->type == TK_P_BYTELEVEL) return p;
    if (p->type == TK_P_SEQ && p->nsubs) return last_bytelevel(&p->subs[p->nsubs - 1]);
    return NULL;
}

static int setup_bytelevel(mt_tokenizer *t, mt_err *err) {
    if (t->model != TK_M_BPE || t->cont_prefix_len || t->eow_suffix_len) return MT_OK;
    tk_pretok *bl = last_bytelevel(&t->pretok);
    if (!bl) return MT_OK;
    bl->defer = 1;
    t->bytelevel_raw = 1;
    tk_buf k = {0};
    for (int b = 0; b < 256; b++) {
        k.n = 0;
        tk_buf_put_cp(&k, tk_byte2cp[b]);
        if (k.oom) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        t->bl_id[b] = tk_strmap_get(&t->model_map, &t->tab, k.p, k.n);
    }
    tk_buf_free(&k);
    if (!t->ignore_merges) return MT_OK;
    if (tk_strmap_init(&t->rawmap, t->model_nvocab + 16)) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    tk_buf raw = {0};
    for (size_t id = 0; id < t->model_nvocab; id++) {
        uint32_t l = 0;
        const char *s = tk_strtab_get(&t->tab, id, &l);
        if (!s || tk_strmap_get(&t->model_map, &t->tab, s, l) != (int32_t)id) continue;
        raw.n = 0;
        int ok = 1;
        for (size_t i = 0; i < l;) {
            uint32_t cp;
            i += (size_t)tk_utf8_dec((const unsigned char *)s + i, l - i, &cp);
            int b = tk_cp2byte(cp);
            if (b < 0) { ok = 0; break; }
            tk_buf_putc(&raw, (char)b);
        }
        if (!ok || !raw.n) continue;
        if (raw.oom || tk_strtab_set(&t->rawtab, id, raw.p, raw.n) ||
            tk_strmap_put(&t->rawmap, &t->rawtab, raw.p, raw.n, (int32_t)id)) {
            tk_buf_free(&raw);
            return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        }
    }
    tk_buf_free(&raw);
    return MT_OK;
}

static int load_json(mt_tokenizer *t, json_t *root, mt_err *err) {
    if (!json_is_object(root)) return mt_seterr(err, MT_EFORMAT, "tokenizer: top level is not an object");
    json_t *tr = json_object_get(root, "truncation"), *pd = json_object_get(root, "padding");
    (void)tr; (void)pd; /* truncation/padding do not apply to single unbatched encodes here */
    json_t *added = json_object_get(root, "added_tokens");
    t->n_added_decl = json_array_size(added);   /* bounds the ids (tk_id_limit) */
    MT_TRY(tk_model_load(t, json_object_get(root, "model"), err));
    MT_TRY(tk_norm_load(&t->norm, json_object_get(root, "normalizer"), err));
    MT_TRY(tk_pretok_load(&t->pretok, json_object_get(root, "pre_tokenizer"), err));
    MT_TRY(tk_dec_load(&t->dec, json_object_get(root, "decoder"), err));
    if (added && !json_is_array(added) && !json_is_null(added))
        return mt_seterr(err, MT_EFORMAT, "tokenizer: added_tokens must be an array");
    MT_TRY(build_added(t, added, err));
    tk_ids pre = {0}, suf = {0};
    int rc = load_post(json_object_get(root, "post_processor"), &pre, &suf, err);
    t->post_prefix = pre.v; t->npost_prefix = pre.n;
    t->post_suffix = suf.v; t->npost_suffix = suf.n;
    if (rc) return rc;
    if (pre.oom || suf.oom) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    if (tk_cache_new(t)) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
    return setup_bytelevel(t, err);
}

int mt_tokenizer_load_mem(mt_tokenizer **out, const char *json, size_t len, mt_err *err) {
    if (!out || (!json && len)) return mt_seterr(err, MT_EINVAL, "tokenizer: bad arguments");
    *out = NULL;
    json_error_t je;
    if (!json) json = "";
    /* model.vocab and model.merges hold most of the document: scan them directly
     * and let jansson parse only the rest (with those values emptied) */
    size_t r[4];
    char *small = NULL;
    const char *doc = json;
    size_t doclen = len;
    if (tk_fj_locate(json, len, r) == 0 && (r[1] > r[0] || r[3] > r[2])) {
        small = malloc(len + 8);
        if (!small) return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory");
        size_t k = 0, pos = 0;
        for (int q = 0; q < 2; q++) {
            size_t a = r[2 * q], b = r[2 * q + 1];
            if (b <= a) continue;
            if (q == 1 && r[1] > r[0] && a < r[1]) { free(small); small = NULL; break; } /* merges before vocab */
            memcpy(small + k, json + pos, a - pos); k += a - pos;
            const char *rep = json[a] == '{' ? "{}" : json[a] == '[' ? "[]" : "null";
            memcpy(small + k, rep, strlen(rep)); k += strlen(rep);
            pos = b;
        }
        if (small) {
            memcpy(small + k, json + pos, len - pos); k += len - pos;
            doc = small; doclen = k;
        }
    }
    json_t *root = json_loadb(doc, doclen, 0, &je);
    if (!root) { free(small); return mt_seterr(err, MT_EFORMAT, "tokenizer: JSON error at line %d: %s", je.line, je.text); }
    mt_tokenizer *t = calloc(1, sizeof *t);
    if (!t) { free(small); json_decref(root); return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory"); }
    t->unk = -1;
    if (small) { t->fj_src = json; memcpy(t->fj_r, r, sizeof r); }
    int rc = load_json(t, root, err);
    t->fj_src = NULL;
    memset(t->fj_r, 0, sizeof t->fj_r);
    free(small);
    json_decref(root);
    if (rc) { mt_tokenizer_free(t); return rc; }
    *out = t;
    return MT_OK;
}

int mt_tokenizer_load(mt_tokenizer **out, const char *path, mt_err *err) {
    char *buf = NULL;
    size_t len = 0;
    if (out) *out = NULL;
    int rc = mt_read_file_max(path, (size_t)1 << 31, &buf, &len, err);
    if (rc) return rc;
    rc = mt_tokenizer_load_mem(out, buf, len, err);
    free(buf);
    if (rc) mt_preferr(err, "%s", path);
    return rc;
}

void mt_tokenizer_free(mt_tokenizer *t) {
    if (!t) return;
    tk_cache_free(t);
    tk_model_free(t);
    tk_strtab_free(&t->tab);
    tk_strmap_free(&t->model_map);
    tk_strmap_free(&t->added_map);
    free(t->flags);
    if (t->dec_str) for (size_t i = 0; i < t->nids; i++) free(t->dec_str[i]);
    free(t->dec_str); free(t->dec_len);
    if (t->added_raw.val) tk_trie_free(&t->added_raw);
    if (t->added_norm.val) tk_trie_free(&t->added_norm);
    free(t->added_props);
    tk_norm_free(&t->norm);
    tk_pretok_free(&t->pretok);
    tk_dec_free(&t->dec);
    free(t->post_prefix); free(t->post_suffix);
    free(t);
}

/* ---------------- added token matching ---------------- */
static int is_ws_at_end(const unsigned char *s, size_t n, size_t *start) {
    /* start of the trailing whitespace run of s[0..n) */
    size_t b = n;
    while (b > 0) {
        size_t q = b - 1;
        while (q > 0 && (s[q] & 0xC0) == 0x80) q--;
        uint32_t cp; tk_utf8_dec(s + q, b - q, &cp);
        if (!tk_is_whitespace(cp)) break;
        b = q;
    }
    *start = b;
    return 0;
}

/* Split s[0..n) at added-token matches of trie tr. Pieces: (off,len,id) relative to s. */
static void find_added(const mt_tokenizer *t, const tk_trie *tr, const char *s, size_t n, tk_splits *out) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, start_off = 0;
    while (i < n) {
        unsigned char c = u[i];
        if (!(tr->first[c >> 3] & (1u << (c & 7)))) { i++; continue; }
        int32_t node = 0, best = -1;
        size_t bend = 0;
        for (size_t k = i; k < n; k++) {
            node = tk_trie_step(tr, node, u[k]);
            if (node < 0) break;
            if (tr->val[node] >= 0) { best = tr->val[node]; bend = k + 1; }
        }
        if (best < 0) { i++; continue; }
        size_t start = i, stop = bend;
        uint8_t pr = t->added_props[best];
        if (pr & 1) {
            int start_ok = 1, stop_ok = 1;
            if (start > 0) {
                size_t q = start - 1;
                while (q > 0 && (u[q] & 0xC0) == 0x80) q--;
                uint32_t cp; tk_utf8_dec(u + q, start - q, &cp);
                if (tk_is_word(cp)) start_ok = 0;
            }
            if (stop < n) {
                uint32_t cp; tk_utf8_dec(u + stop, n - stop, &cp);
                if (tk_is_word(cp)) stop_ok = 0;
            }
            if (!start_ok || !stop_ok) { i = bend; continue; }
        }
        if (pr & 2) {
            size_t ns;
            is_ws_at_end(u, start, &ns);
            start = ns > start_off ? ns : start_off;
        }
        if (pr & 4) {
            while (stop < n) {
                uint32_t cp; int l = tk_utf8_dec(u + stop, n - stop, &cp);
                if (!tk_is_whitespace(cp)) break;
                stop += (size_t)l;
            }
        }
        if (start_off < start) tk_splits_push(out, (uint32_t)start_off, (uint32_t)(start - start_off), -1, 0);
        tk_splits_push(out, (uint32_t)start, (uint32_t)(stop - start), best, 0);
        start_off = stop;
        i = stop > bend ? stop : bend;
    }
    if (start_off < n) tk_splits_push(out, (uint32_t)start_off, (uint32_t)(n - start_off), -1, 0);
}

/* ---------------- encode ---------------- */
int mt_tokenizer_encode(const mt_tokenizer *t, const char *text, size_t len, int add_special, int32_t **ids,
                        size_t *n, mt_err *err) {
    if (!t || !ids || !n || (!text && len)) return mt_seterr(err, MT_EINVAL, "tokenizer: bad arguments");
    *ids = NULL; *n = 0;
    if (len > 0x7FFFFFFF / 8) return mt_seterr(err, MT_ELIMIT, "tokenizer: input too long");
    tk_buf fixed = {0}, buf = {0};
    tk_splits raw = {0}, sp = {0}, sub = {0};
    tk_ids out = {0};
    tk_scratch sc = {0};
    pcre2_match_data *md = NULL;
    int rc = MT_OK;
    if (!text) text = "";
    if (!tk_utf8_valid((const unsigned char *)text, len)) {
        tk_utf8_lossy(&fixed, (const unsigned char *)text, len);
        if (fixed.oom) { rc = mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory"); goto done; }
        text = fixed.p; len = fixed.n;
    }
    if (add_special) for (size_t i = 0; i < t->npost_prefix; i++) tk_ids_push(&out, t->post_prefix[i]);
    /* 1. non-normalized added tokens on the raw text */
    if (t->has_added_raw) find_added(t, &t->added_raw, text, len, &raw);
    else if (len) tk_splits_push(&raw, 0, (uint32_t)len, -1, 0);
    if (raw.oom) { rc = mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory"); goto done; }
    /* 2. normalize each remaining piece, then extract normalized added tokens */
    tk_buf_reserve(&buf, len + len / 4 + 16);
    for (size_t i = 0; i < raw.n; i++) {
        tk_split r = raw.v[i];
        if (r.id >= 0) { tk_splits_push(&sp, 0, 0, r.id, 0); continue; }
        size_t off = buf.n;
        int first0 = r.off == 0;
        rc = tk_norm_apply_first(&t->norm, text + r.off, r.len, &buf, &first0, err);
        if (rc) goto done;
        size_t nl = buf.n - off;
        if (!nl) continue;
        if (t->has_added_norm) {
            sub.n = 0;
            find_added(t, &t->added_norm, buf.p + off, nl, &sub);
            for (size_t k = 0; k < sub.n; k++)
                tk_splits_push(&sp, (uint32_t)(off + sub.v[k].off), sub.v[k].len, sub.v[k].id,
                               (uint8_t)(first0 && sub.v[k].off == 0));
        } else {
            tk_splits_push(&sp, (uint32_t)off, (uint32_t)nl, -1, (uint8_t)first0);
        }
    }
    if (sp.oom || sub.oom || buf.oom) { rc = mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory"); goto done; }
    /* 3. pre-tokenize */
    rc = tk_pretok_apply(&t->pretok, &buf, &sp, &md, err);
    if (rc) goto done;
    /* 4. model */
    for (size_t i = 0; i < sp.n; i++) {
        if (sp.v[i].id >= 0) { tk_ids_push(&out, sp.v[i].id); continue; }
        rc = tk_model_tokenize(t, buf.p + sp.v[i].off, sp.v[i].len, &out, &sc);
        if (rc) {
            if (rc == MT_ENOMEM) mt_seterr(err, rc, "tokenizer: out of memory");
            else mt_seterr(err, rc, "tokenizer: the model cannot tokenize the input (no unk token)");
            goto done;
        }
    }
    if (add_special) for (size_t i = 0; i < t->npost_suffix; i++) tk_ids_push(&out, t->post_suffix[i]);
    if (out.oom) { rc = mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory"); goto done; }
    if (!out.v) { out.v = malloc(sizeof(int32_t)); if (!out.v) { rc = mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory"); goto done; } }
    *ids = out.v; *n = out.n;
    out.v = NULL;
done:
    free(out.v);
    tk_buf_free(&fixed); tk_buf_free(&buf);
    free(raw.v); free(sp.v); free(sub.v);
    tk_scratch_free(&sc);
    if (md) pcre2_match_data_free(md);
    return rc;
}

/* ---------------- decode ---------------- */
static const char *dec_token(const mt_tokenizer *t, int32_t id, int skip, uint32_t *len) {
    if (id < 0 || (size_t)id >= t->nids) return NULL;
    if (skip && (t->flags[id] & 4)) return NULL;
    if (t->dec_str[id]) { *len = t->dec_len[id]; return t->dec_str[id]; }
    return tk_strtab_get(&t->tab, (size_t)id, len);
}

static int decode_buf(const mt_tokenizer *t, const int32_t *ids, size_t n, int skip, tk_buf *out) {
    const char **toks = malloc((n ? n : 1) * sizeof *toks);
    uint32_t *lens = malloc((n ? n : 1) * sizeof *lens);
    if (!toks || !lens) { free(toks); free(lens); return MT_ENOMEM; }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t l = 0;
        const char *s = dec_token(t, ids[i], skip, &l);
        if (!s) continue;
        toks[k] = s; lens[k] = l; k++;
    }
    int rc = tk_dec_run(t, toks, lens, k, out);
    free(toks); free(lens);
    return rc;
}

int mt_tokenizer_decode(const mt_tokenizer *t, const int32_t *ids, size_t n, int skip_special, char **out,
                        size_t *len, mt_err *err) {
    if (!t || !out || (!ids && n)) return mt_seterr(err, MT_EINVAL, "tokenizer: bad arguments");
    *out = NULL;
    tk_buf b = {0};
    int rc = decode_buf(t, ids, n, skip_special, &b);
    tk_buf_putc(&b, 0);
    if (rc || b.oom) { tk_buf_free(&b); return mt_seterr(err, MT_ENOMEM, "tokenizer: out of memory"); }
    *out = b.p;
    if (len) *len = b.n - 1;
    return MT_OK;
}

int32_t mt_tokenizer_token_to_id(const mt_tokenizer *t, const char *token) {
    if (!t || !token) return -1;
    size_t n = strlen(token);
    int32_t id = tk_strmap_get(&t->added_map, &t->tab, token, n);
    if (id >= 0) return id;
    return tk_strmap_get(&t->model_map, &t->tab, token, n);
}

const char *mt_tokenizer_id_to_token(const mt_tokenizer *t, int32_t id) {
    if (!t || id < 0 || (size_t)id >= t->nids) return NULL;
    return tk_strtab_get(&t->tab, (size_t)id, NULL);
}

size_t mt_tokenizer_vocab_size(const mt_tokenizer *t) { return t ? t->nids : 0; }

int mt_tokenizer_is_special(const mt_tokenizer *t, int32_t id) {
    if (!t || id < 0 || (size_t)id >= t->nids) return 0;
    return (t->flags[id] & 4) != 0;
}

/* ---------------- streaming detokenizer ---------------- */
struct mt_detok {
    const mt_tokenizer *t;
    int skip;
    tk_ids win;     /* ids of the current window */
    size_t emitted; /* bytes of decode(win) already handed out */
};

int mt_detok_new(mt_detok **out, const mt_tokenizer *t, int skip_special, mt_err *err) {
    if (!out || !t) return mt_seterr(err, MT_EINVAL, "detok: bad arguments");
    *out = calloc(1, sizeof **out);
    if (!*out) return mt_seterr(err, MT_ENOMEM, "detok: out of memory");
    (*out)->t = t;
    (*out)->skip = skip_special;
    return MT_OK;
}

void mt_detok_free(mt_detok *d) {
    if (!d) return;
    free(d->win.v);
    free(d);
}

static int give(const char *s, size_t n, char **piece, size_t *len, mt_err *err) {
    *piece = malloc(n + 1);
    if (!*piece) return mt_seterr(err, MT_ENOMEM, "detok: out of memory");
    if (n) memcpy(*piece, s, n);
    (*piece)[n] = 0;
    if (len) *len = n;
    return MT_OK;
}

static int is_byte_token(const mt_tokenizer *t, int32_t id) {
    uint32_t l = 0;
    const char *s = dec_token(t, id, 0, &l);
    return s && l == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>';
}

/* length of s without a trailing run of U+FFFD (which later bytes might complete) */
static size_t stable_len(const char *s, size_t n) {
    while (n >= 3 && memcmp(s + n - 3, "\xEF\xBF\xBD", 3) == 0) n -= 3;
    return n;
}

int mt_detok_push(mt_detok *d, int32_t id, char **piece, size_t *len, mt_err *err) {
    if (!d || !piece) return mt_seterr(err, MT_EINVAL, "detok: bad arguments");
    *piece = NULL;
    uint32_t tl;
    if (!dec_token(d->t, id, d->skip, &tl)) return give("", 0, piece, len, err);
    tk_ids_push(&d->win, id);
    if (d->win.oom) return mt_seterr(err, MT_ENOMEM, "detok: out of memory");
    tk_buf b = {0};
    if (decode_buf(d->t, d->win.v, d->win.n, 0, &b) || b.oom) {
        tk_buf_free(&b);
        return mt_seterr(err, MT_ENOMEM, "detok: out of memory");
    }
    size_t cut = stable_len(b.p ? b.p : "", b.n);
    int rc;
    if (cut > d->emitted) {
        rc = give(b.p + d->emitted, cut - d->emitted, piece, len, err);
        d->emitted = cut;
    } else {
        rc = give("", 0, piece, len, err);
    }
    /* slide the window when nothing is held back */
    if (!rc && cut == b.n && d->win.n > 8 && !is_byte_token(d->t, d->win.v[d->win.n - 1])) {
        size_t keep = 4;
        int32_t *w = d->win.v;
        /* never start a window inside a run of byte-fallback tokens */
        while (keep < d->win.n && is_byte_token(d->t, w[d->win.n - keep])) keep++;
        memmove(w, w + d->win.n - keep, keep * sizeof *w);
        d->win.n = keep;
        tk_buf c = {0};
        if (decode_buf(d->t, w, keep, 0, &c) || c.oom) {
            tk_buf_free(&c); tk_buf_free(&b);
            return mt_seterr(err, MT_ENOMEM, "detok: out of memory");
        }
        d->emitted = c.n;
        tk_buf_free(&c);
    }
    tk_buf_free(&b);
    return rc;
}

int mt_detok_flush(mt_detok *d, char **piece, size_t *len, mt_err *err) {
    if (!d || !piece) return mt_seterr(err, MT_EINVAL, "detok: bad arguments");
    *piece = NULL;
    tk_buf b = {0};
    if (decode_buf(d->t, d->win.v, d->win.n, 0, &b) || b.oom) {
        tk_buf_free(&b);
        return mt_seterr(err, MT_ENOMEM, "detok: out of memory");
    }
    int rc = give(b.n > d->emitted ? b.p + d->emitted : "", b.n > d->emitted ? b.n - d->emitted : 0, piece, len, err);
    tk_buf_free(&b);
    d->win.n = 0;
    d->emitted = 0;
    return rc;
}
