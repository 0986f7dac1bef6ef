/* chat.h - chat templates of model folders, rendered like transformers'
 * apply_chat_template(..., tokenize=False). */
#ifndef MT_CHAT_H
#define MT_CHAT_H

#include <stddef.h>
#include <jansson.h>
#include "core/err.h"

/* Find a model folder's chat template by HF rules: a root chat_template.jinja
 * overrides tokenizer_config.json "chat_template" (a string, or a list of
 * {name, template}: the one named "default", or the one named `name` when
 * name != NULL; a named template may also be additional_chat_templates/<name>.jinja).
 * On success *tmpl is malloc'd (caller frees).  MT_ENOTFOUND when the folder
 * has none (or not the named one); MT_EFORMAT for a malformed config. */
int mt_chat_template_find(const char *dir, const char *name, char **tmpl, mt_err *err);

/* The special tokens transformers passes to templates (bos_token, eos_token,
 * unk_token, sep_token, pad_token, cls_token, mask_token), as strings, read from
 * tokenizer_config (plain strings or AddedToken dicts with "content").
 * Returns a new JSON object (never NULL unless out of memory). */
json_t *mt_chat_special_tokens(json_t *tokenizer_config);

/* Render like transformers apply_chat_template(messages, tools=tools,
 * add_generation_prompt=agp, tokenize=False, **extra): the context is the
 * special tokens of tokenizer_config (may be NULL), overridden by extra (a JSON
 * object or NULL), plus messages (keys whose value is null dropped; reasoning
 * fields aliased as transformers does), tools (null when NULL), documents (null)
 * and add_generation_prompt.  now_epoch feeds strftime_now (see mt_jinja_render).
 * On success *out is malloc'd (NUL-terminated, *len bytes).  Errors carry the
 * template's message (MT_EFORMAT syntax, MT_EINVAL raise_exception/type
 * errors, MT_ELIMIT limits). */
int mt_chat_render(const char *tmpl, json_t *tokenizer_config, json_t *messages, json_t *tools,
                   int add_generation_prompt, json_t *extra, long long now_epoch, char **out, size_t *len,
                   mt_err *err);

#endif
