/* tekken.h - mistral-common's "tekken" tokenizer file (tekken.json: Voxtral,
 * Mistral/Pixtral checkpoints): a byte-level BPE given as token bytes with
 * ranks (tiktoken's mergeable ranks), a pre-tokenizer regex, and the special
 * tokens, which take ids [0, n_special); ordinary token of rank r is id
 * n_special + r.  Only the first default_vocab_size - n_special ranks are
 * used, as mistral-common's Tekkenizer does.
 * ref: mistral_common/tokens/tokenizers/tekken.py (Tekkenizer), tiktoken's
 * byte-pair merge (src/lib.rs _byte_pair_merge). */
#ifndef MT_TEKKEN_H
#define MT_TEKKEN_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

typedef struct mt_tekken mt_tekken;

/* Load path (tekken.json).  Errors: MT_ENOTFOUND / MT_EIO (file), MT_EFORMAT
 * (not valid JSON, missing or inconsistent keys: one line naming the file and
 * the key), MT_EUNSUPPORTED (a regex PCRE2 cannot compile), MT_ENOMEM. */
int  mt_tekken_load(mt_tekken **out, const char *path, mt_err *err);
/* The same from bytes in memory (label names them in messages). */
int  mt_tekken_parse(mt_tekken **out, const char *json, size_t len, const char *label, mt_err *err);
void mt_tekken_free(mt_tekken *t);   /* accepts NULL */

size_t mt_tekken_n_special(const mt_tekken *t);
size_t mt_tekken_vocab_size(const mt_tekken *t);   /* specials + ordinary tokens */
/* The id of special token `name` ("[TRANSCRIBE]"), or -1. */
int32_t mt_tekken_special(const mt_tekken *t, const char *name);

/* Ordinary text (no BOS/EOS; special-token strings are not recognised):
 * regex pieces, each one token when its bytes are a token, else merged pair by
 * lowest rank.  *ids malloc'd (caller frees), *n of them.  Errors: MT_ENOMEM,
 * MT_EINVAL (invalid UTF-8 in text). */
int mt_tekken_encode(const mt_tekken *t, const char *text, size_t len, int32_t **ids, size_t *n, mt_err *err);

/* Ids to text as Tekkenizer.decode with SpecialTokenPolicy.KEEP does: a run
 * of special ids gives their names, a run of ordinary ids its bytes decoded as
 * UTF-8 with errors="replace" (U+FFFD per maximal invalid subpart).  *out
 * malloc'd, NUL-terminated.  Errors: MT_EINVAL (an id out of range), MT_ENOMEM. */
int mt_tekken_decode(const mt_tekken *t, const int32_t *ids, size_t n, char **out, mt_err *err);

#endif
