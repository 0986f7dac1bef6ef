/* chat.c - locate a model folder's chat template and render conversations
 * with it, building the same context transformers' apply_chat_template does. */
#include "text/chat.h"

#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "text/jinja.h"

static int read_opt(const char *dir, const char *rel, char **out, mt_err *err) {
    char *p = mt_path_join(dir, rel);
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = MT_ENOTFOUND;
    if (mt_file_exists(p)) {
        size_t n;
        rc = mt_read_file(p, out, &n, err);
    }
    free(p);
    return rc;
}

int mt_chat_template_find(const char *dir, const char *name, char **tmpl, mt_err *err) {
    *tmpl = NULL;
    if (name && !strcmp(name, "default")) name = NULL;
    int rc;
    if (!name) {
        rc = read_opt(dir, "chat_template.jinja", tmpl, err);
        if (rc != MT_ENOTFOUND) return rc;
    } else {
        char rel[512];
        if (strchr(name, '/') || strlen(name) > 400) return mt_seterr(err, MT_EINVAL, "bad chat template name '%s'", name);
        snprintf(rel, sizeof rel, "additional_chat_templates/%s.jinja", name);
        rc = read_opt(dir, rel, tmpl, err);
        if (rc != MT_ENOTFOUND) return rc;
    }
    char *p = mt_path_join(dir, "tokenizer_config.json");
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!mt_file_exists(p)) {
        free(p);
        return mt_seterr(err, MT_ENOTFOUND, "%s: no chat template", dir);
    }
    json_error_t je;
    json_t *cfg = json_load_file(p, JSON_DECODE_INT_AS_REAL, &je); /* model_max_length can be 1e30 */
    if (!cfg) {
        rc = mt_seterr(err, MT_EFORMAT, "%s: line %d: %s", p, je.line, je.text);
        free(p);
        return rc;
    }
    free(p);
    json_t *ct = json_object_get(cfg, "chat_template");
    const char *want = name ? name : "default";
    const char *found = NULL;
    if (json_is_string(ct) && !name) found = json_string_value(ct);
    else if (json_is_array(ct)) {
        size_t i;
        json_t *e;
        json_array_foreach(ct, i, e) {
            json_t *nm = json_object_get(e, "name"), *tp = json_object_get(e, "template");
            if (json_is_string(nm) && json_is_string(tp) && !strcmp(json_string_value(nm), want)) found = json_string_value(tp);
        }
    }
    if (!found) {
        json_decref(cfg);
        if (name) return mt_seterr(err, MT_ENOTFOUND, "%s: no chat template named '%s'", dir, name);
        return mt_seterr(err, MT_ENOTFOUND, "%s: no chat template", dir);
    }
    *tmpl = strdup(found);
    json_decref(cfg);
    if (!*tmpl) return mt_seterr(err, MT_ENOMEM, "out of memory");
    return MT_OK;
}

json_t *mt_chat_special_tokens(json_t *cfg) {
    static const char *const names[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                        "pad_token", "cls_token", "mask_token", NULL};
    json_t *o = json_object();
    if (!o || !json_is_object(cfg)) return o;
    for (int i = 0; names[i]; i++) {
        json_t *v = json_object_get(cfg, names[i]);
        if (json_is_object(v)) v = json_object_get(v, "content");
        if (json_is_string(v)) json_object_set_new(o, names[i], json_stringn(json_string_value(v), json_string_length(v)));
    }
    return o;
}

/* A message as transformers hands it to the template: null-valued keys
 * dropped, reasoning aliased to {"thinking": r, **msg, "reasoning_content": r}. */
static json_t *prep_message(json_t *m) {
    if (!json_is_object(m)) return json_incref(m);
    static const char *const rf[] = {"reasoning_content", "thinking", "reasoning", NULL};
    json_t *plain = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v) if (!json_is_null(v)) json_object_set(plain, k, v);
    json_t *reasoning = NULL;
    for (int i = 0; rf[i] && !reasoning; i++) {
        json_t *x = json_object_get(plain, rf[i]);
        if (x && !json_is_null(x)) reasoning = x;
    }
    if (!reasoning) return plain;
    json_t *o = json_object();
    json_object_set(o, "thinking", reasoning);
    json_object_foreach(plain, k, v) json_object_set(o, k, v);
    json_object_set(o, "reasoning_content", reasoning);
    json_decref(plain);
    return o;
}

int mt_chat_render(const char *tmpl, json_t *tokenizer_config, json_t *messages, json_t *tools,
                   int add_generation_prompt, json_t *extra, long long now_epoch, char **out, size_t *len,
                   mt_err *err) {
    *out = NULL;
    if (len) *len = 0;
    if (!tmpl) return mt_seterr(err, MT_EINVAL, "no chat template");
    if (messages && !json_is_array(messages)) return mt_seterr(err, MT_EINVAL, "messages must be a JSON array");
    if (extra && !json_is_object(extra)) return mt_seterr(err, MT_EINVAL, "template kwargs must be a JSON object");
    json_t *ctx = mt_chat_special_tokens(tokenizer_config);
    json_t *msgs = json_array();
    if (!ctx || !msgs) {
        json_decref(ctx);
        json_decref(msgs);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    if (extra) json_object_update(ctx, extra);
    size_t i;
    json_t *m;
    if (messages) json_array_foreach(messages, i, m) json_array_append_new(msgs, prep_message(m));
    json_object_set_new(ctx, "messages", msgs);
    json_object_set(ctx, "tools", tools ? tools : json_null());
    json_object_set_new(ctx, "documents", json_null());
    json_object_set_new(ctx, "add_generation_prompt", json_boolean(add_generation_prompt));
    mt_jinja_tmpl *t;
    int rc = mt_jinja_parse(&t, tmpl, strlen(tmpl), err);
    if (!rc) {
        rc = mt_jinja_render(t, ctx, NULL, now_epoch, out, len, err);
        mt_jinja_free(t);
    }
    json_decref(ctx);
    return rc;
}
