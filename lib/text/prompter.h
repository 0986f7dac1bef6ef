/* prompter.h - the text side of a model folder: tokenizer.json, tokenizer_config.json,
 * chat template and end-of-sequence ids, and the rule that turns a JSONL record into
 * prompt text and token ids (shared by every text program).
 *
 * Record fields understood:
 *   "text" or "prompt": a string, encoded as is; special tokens (e.g. BOS) are added
 *       unless the text already starts with the BOS token (mlx-lm's rule);
 *   "messages": a chat, rendered with the chat template and encoded without adding
 *       special tokens (as transformers' apply_chat_template(tokenize=True) does);
 *   "tools": tool definitions passed to the template;
 *   "add_generation_prompt": bool (default: the caller's default);
 *   "chat_template_kwargs": an object of extra template variables;
 *   "add_special_tokens": bool, overrides the rule for "text". */
#ifndef MT_PROMPTER_H
#define MT_PROMPTER_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "core/err.h"
#include "text/tokenizer.h"

typedef struct mt_prompter {
    mt_tokenizer *tok;
    json_t *tok_config;    /* tokenizer_config.json, or NULL */
    char *chat_template;   /* NULL when the folder has none */
    int32_t bos_id;        /* -1 when none */
    const char *bos_token; /* borrowed from tok_config, or NULL */
    int32_t *eos_ids;      /* generation_config.json, else config.json, else tokenizer eos */
    size_t n_eos;
    int trim_first_space;  /* generated text drops one leading space, as mlx-lm's BPE
                            * streaming detokenizer does (tokenizer.json decoder ByteLevel) */
} mt_prompter;

/* Open the tokenizer files of folder dir (a model folder, or one holding only
 * tokenizer files).  tokenizer.json is required. */
int mt_prompter_open(mt_prompter **out, const char *dir, mt_err *err);
void mt_prompter_free(mt_prompter *p);

/* Turn a record into prompt text.  *text is malloc'd; *add_special tells how to
 * encode it.  now_epoch feeds strftime_now (<0: the real clock). */
int mt_prompter_render(const mt_prompter *p, json_t *rec, int default_agp, long long now_epoch,
                       char **text, size_t *len, int *add_special, mt_err *err);

/* Render and encode a record; *ids malloc'd. *text (optional) receives the prompt text. */
int mt_prompter_encode(const mt_prompter *p, json_t *rec, int default_agp, long long now_epoch,
                       char **text, size_t *text_len, int32_t **ids, size_t *n, mt_err *err);

int mt_prompter_is_eos(const mt_prompter *p, int32_t id);

#endif
