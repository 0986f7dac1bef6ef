/* prompter.c - tokenizer files of a model folder and the record -> prompt rule.
 * ref: mlx_lm/tokenizer_utils.py, mlx_lm/utils.py (load_config eos), mlx_lm/generate.py. */
#include "text/prompter.h"

#include <stdlib.h>
#include <string.h>
#include "core/file.h"
#include "core/jsonl.h"
#include "text/chat.h"

/* Loads dir/name if present.  Integers too big for 64 bits (tokenizer_config's
 * model_max_length is often 1e30 written as an integer) are read as reals. */
static json_t *load_json_opt(const char *dir, const char *name, mt_err *err, int *rc) {
    *rc = MT_OK;
    char *path = mt_path_join(dir, name);
    if (!path) { *rc = mt_seterr(err, MT_ENOMEM, "out of memory"); return NULL; }
    if (!mt_file_exists(path)) { free(path); return NULL; }
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!j && strstr(je.text, "too big integer")) j = json_load_file(path, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
    if (!j) *rc = mt_seterr(err, MT_EFORMAT, "%s: line %d: %s", path, je.line, je.text);
    else if (!json_is_object(j)) {
        json_decref(j);
        j = NULL;
        *rc = mt_seterr(err, MT_EFORMAT, "%s: not a JSON object", path);
    }
    free(path);
    return j;
}

/* A special token in tokenizer_config.json: a string or an AddedToken dict. */
static const char *special_token_str(json_t *cfg, const char *key) {
    json_t *v = cfg ? json_object_get(cfg, key) : NULL;
    if (json_is_string(v)) return json_string_value(v);
    if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
        return json_string_value(json_object_get(v, "content"));
    return NULL;
}

static int add_eos(mt_prompter *p, json_t *v) {
    size_t n = json_is_array(v) ? json_array_size(v) : (json_is_integer(v) ? 1 : 0);
    if (!n) return 0;
    int32_t *ids = malloc(n * sizeof *ids);
    if (!ids) return -1;
    size_t k = 0;
    if (json_is_integer(v)) ids[k++] = (int32_t)json_integer_value(v);
    else for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (json_is_integer(e)) ids[k++] = (int32_t)json_integer_value(e);
    }
    free(p->eos_ids);
    p->eos_ids = ids;
    p->n_eos = k;
    return 1;
}

/* Is tokenizer.json's top-level "decoder" a ByteLevel one?  HF writes the
 * top-level keys before "model" (which holds the vocabulary), so the first
 * "decoder" key is the top-level one; its value is parsed on its own. */
static int decoder_is_bytelevel(const char *tj) {
    const char *m = strstr(tj, "\"model\"");
    const char *d = strstr(tj, "\"decoder\"");
    if (!d || (m && m < d)) return 0;
    d += 9;
    while (*d == ' ' || *d == '\n' || *d == '\r' || *d == '\t') d++;
    if (*d != ':') return 0;
    json_t *v = json_loads(d + 1, JSON_DISABLE_EOF_CHECK, NULL);
    json_t *t = json_object_get(v, "type");
    int r = json_is_string(t) && !strcmp(json_string_value(t), "ByteLevel");
    json_decref(v);
    return r;
}

int mt_prompter_open(mt_prompter **out, const char *dir, mt_err *err) {
    *out = NULL;
    mt_prompter *p = calloc(1, sizeof *p);
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
    p->bos_id = -1;
    int rc = MT_OK;
    char *tj = mt_path_join(dir, "tokenizer.json");
    if (!tj) { free(p); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    if (!mt_file_exists(tj)) {
        rc = mt_seterr(err, MT_ENOTFOUND, "%s: no tokenizer.json in this folder", dir);
        free(tj);
        goto fail;
    }
    char *tjs = NULL;
    size_t tjn = 0;
    rc = mt_read_file(tj, &tjs, &tjn, err);
    if (!rc) rc = mt_tokenizer_load_mem(&p->tok, tjs, tjn, err);
    if (rc) mt_preferr(err, "%s", tj);
    free(tj);
    if (!rc) p->trim_first_space = decoder_is_bytelevel(tjs);
    free(tjs);
    if (rc) goto fail;

    p->tok_config = load_json_opt(dir, "tokenizer_config.json", err, &rc);
    if (rc) goto fail;
    rc = mt_chat_template_find(dir, NULL, &p->chat_template, err);
    if (rc == MT_ENOTFOUND) { rc = MT_OK; p->chat_template = NULL; mt_clearerr(err); }
    if (rc) goto fail;

    p->bos_token = special_token_str(p->tok_config, "bos_token");
    if (p->bos_token) p->bos_id = mt_tokenizer_token_to_id(p->tok, p->bos_token);

    /* eos: generation_config.json overrides config.json; else the tokenizer's eos. */
    json_t *gen = load_json_opt(dir, "generation_config.json", err, &rc);
    if (rc) goto fail;
    json_t *cfg = load_json_opt(dir, "config.json", err, &rc);
    if (rc) { json_decref(gen); goto fail; }
    int got = gen ? add_eos(p, json_object_get(gen, "eos_token_id")) : 0;
    if (!got && cfg) {
        got = add_eos(p, json_object_get(cfg, "eos_token_id"));
        json_t *tc = json_object_get(cfg, "text_config");
        if (!got && tc) got = add_eos(p, json_object_get(tc, "eos_token_id"));
    }
    json_decref(gen);
    json_decref(cfg);
    if (got < 0) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto fail; }
    if (!got) {
        const char *eos = special_token_str(p->tok_config, "eos_token");
        int32_t id = eos ? mt_tokenizer_token_to_id(p->tok, eos) : -1;
        if (id >= 0) {
            p->eos_ids = malloc(sizeof *p->eos_ids);
            if (!p->eos_ids) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto fail; }
            p->eos_ids[0] = id;
            p->n_eos = 1;
        }
    }
    *out = p;
    return MT_OK;
fail:
    mt_prompter_free(p);
    return rc;
}

void mt_prompter_free(mt_prompter *p) {
    if (!p) return;
    mt_tokenizer_free(p->tok);
    json_decref(p->tok_config);
    free(p->chat_template);
    free(p->eos_ids);
    free(p);
}

int mt_prompter_render(const mt_prompter *p, json_t *rec, int default_agp, long long now_epoch,
                       char **text, size_t *len, int *add_special, mt_err *err) {
    *text = NULL;
    json_t *msgs = json_object_get(rec, "messages");
    if (msgs) {
        if (!json_is_array(msgs)) return mt_seterr(err, MT_EINVAL, "\"messages\" must be an array");
        if (!p->chat_template)
            return mt_seterr(err, MT_EINVAL, "\"messages\" given but the model has no chat template");
        int agp = default_agp;
        MT_TRY(mt_json_get_bool(rec, "add_generation_prompt", &agp, err));
        json_t *tools = json_object_get(rec, "tools");
        if (tools && !json_is_array(tools)) return mt_seterr(err, MT_EINVAL, "\"tools\" must be an array");
        json_t *extra = json_object_get(rec, "chat_template_kwargs");
        if (extra && !json_is_object(extra))
            return mt_seterr(err, MT_EINVAL, "\"chat_template_kwargs\" must be an object");
        MT_TRY(mt_chat_render(p->chat_template, p->tok_config, msgs, tools, agp, extra, now_epoch, text, len, err));
        *add_special = 0;
    } else {
        json_t *t = json_object_get(rec, "text");
        const char *key = "text";
        if (!t) { t = json_object_get(rec, "prompt"); key = "prompt"; }
        if (!t) return mt_seterr(err, MT_EINVAL, "record has no \"text\", \"prompt\" or \"messages\"");
        if (!json_is_string(t)) return mt_seterr(err, MT_EINVAL, "\"%s\" must be a string", key);
        size_t n = json_string_length(t);
        *text = malloc(n + 1);
        if (!*text) return mt_seterr(err, MT_ENOMEM, "out of memory");
        memcpy(*text, json_string_value(t), n + 1);
        if (len) *len = n;
        *add_special = !(p->bos_token && strncmp(*text, p->bos_token, strlen(p->bos_token)) == 0 &&
                         p->bos_token[0]);
    }
    int as = *add_special;
    int rc = mt_json_get_bool(rec, "add_special_tokens", &as, err);
    if (rc) { free(*text); *text = NULL; return rc; }
    *add_special = as;
    return MT_OK;
}

int mt_prompter_encode(const mt_prompter *p, json_t *rec, int default_agp, long long now_epoch,
                       char **text, size_t *text_len, int32_t **ids, size_t *n, mt_err *err) {
    char *t;
    size_t tl;
    int add_special = 0;
    MT_TRY(mt_prompter_render(p, rec, default_agp, now_epoch, &t, &tl, &add_special, err));
    int rc = mt_tokenizer_encode(p->tok, t, tl, add_special, ids, n, err);
    if (rc || !text) free(t);
    else {
        *text = t;
        if (text_len) *text_len = tl;
    }
    return rc;
}

int mt_prompter_is_eos(const mt_prompter *p, int32_t id) {
    for (size_t i = 0; i < p->n_eos; i++)
        if (p->eos_ids[i] == id) return 1;
    return 0;
}
