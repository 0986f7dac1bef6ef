/* jinja.h - a sandboxed Jinja2 subset for chat templates.
 *
 * Renders like transformers' apply_chat_template environment:
 * ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
 * extensions=[loopcontrols]) with the globals raise_exception, strftime_now,
 * namespace, dict and transformers' tojson filter.  Templates can only read
 * the context; every render is bounded in steps, depth, output and memory. */
#ifndef MT_JINJA_H
#define MT_JINJA_H

#include <stddef.h>
#include <jansson.h>
#include "core/err.h"

/* Safety limits; a 0 field takes its default (16 MiB output, 10M steps, depth 64). */
typedef struct mt_jinja_limits {
    size_t max_output;
    size_t max_steps;
    int max_depth;
} mt_jinja_limits;

typedef struct mt_jinja_tmpl mt_jinja_tmpl;

/* Parse a template.  On failure returns MT_EFORMAT (syntax) or MT_ELIMIT
 * (nesting too deep) with a message "template line N: ...".  *out is owned by
 * the caller (mt_jinja_free). */
int mt_jinja_parse(mt_jinja_tmpl **out, const char *src, size_t len, mt_err *err);

/* Render t with the variables of ctx (a JSON object, may be NULL; not modified).
 * now_epoch is the time strftime_now() formats (UTC); < 0 uses the real clock.
 * On success *out is a malloc'd NUL-terminated string of *len bytes.
 * Errors: MT_ELIMIT (limits), MT_EINVAL (template error, raise_exception,
 * undefined use, type errors); the message names the template line. */
int mt_jinja_render(const mt_jinja_tmpl *t, json_t *ctx, const mt_jinja_limits *lim, long long now_epoch,
                    char **out, size_t *len, mt_err *err);

void mt_jinja_free(mt_jinja_tmpl *t);

#endif
