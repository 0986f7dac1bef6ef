/* pcache.h - prompt caches for a generation job: KV-state files (kv/kvfile.h) loaded
 * once per path and checked against the model (geometry, vocabulary, fingerprint), the
 * rule that places a record's prompt after a cached prefix, and saving a record's state.
 *
 * A record continues a cache as mlx_lm.generate --prompt-cache-file does, with one
 * difference that makes a cached stage equal to a one-stage run: "prompt"/"text" records
 * are encoded without special tokens after a non-empty cached prefix (the prefix has the
 * BOS already; mlx-lm adds another mid-sequence; "add_special_tokens": true restores it).
 * "messages" records are rendered whole with the chat template, and the cached ids must
 * be the rendering's prefix; the rest is the prompt. */
#ifndef MT_PCACHE_H
#define MT_PCACHE_H

#include <jansson.h>
#include "core/err.h"
#include "kv/kvfile.h"
#include "models/model.h"
#include "text/prompter.h"

typedef struct mt_gen_caches mt_gen_caches;

/* model_dir: the model folder (for its fingerprint); model_name: written as "model". */
int  mt_gen_caches_new(mt_gen_caches **out, const mt_model *m, const char *model_dir, const char *model_name,
                       mt_err *err);
void mt_gen_caches_free(mt_gen_caches *t);

/* The cache in file `path` for this model (loaded on first use, kept for the run; borrowed).
 * Errors name the file: unreadable or malformed, another model's (fingerprint, geometry),
 * token ids past the vocabulary. */
int mt_gen_caches_get(mt_gen_caches *t, const char *path, const mt_kvfile **file, const mt_kvcache **cache,
                      mt_err *err);

/* The ids of record rec (its prompt object) to run after file f's cached prefix. *ids malloc'd. */
int mt_gen_caches_encode(const mt_prompter *pr, const mt_kvfile *f, json_t *rec, int default_agp, int32_t **ids,
                         size_t *n, mt_err *err);

/* Write cache c holding ids[0..n) (n = 0: unknown) to path (level < 0 plain safetensors, else
 * zstd at that level; a path ending in ".safetensors" is always plain). */
int mt_gen_caches_save(mt_gen_caches *t, const mt_prompter *pr, const char *path, const mt_kvcache *c,
                       const int32_t *ids, size_t n, int level, mt_err *err);

#endif
