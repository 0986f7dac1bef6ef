/* parakeet_asr.h - Parakeet transcription (lib/stt/parakeet_asr.c): the
 * mt_asr_parakeet family, and its steps for tests.  See parakeet_asr.c for
 * the chunking, merging, sentence and word rules. */
#ifndef MT_PARAKEET_ASR_H
#define MT_PARAKEET_ASR_H

#include <stddef.h>
#include "core/err.h"
#include "models/parakeet.h"
#include "stt/asr.h"
#include "stt/transcribe.h"

extern const mt_asr_family mt_asr_parakeet;

/* Aligned tokens of audio[n]: decoded whole when chunk_s <= 0 or the audio is
 * no longer than chunk_s seconds, else in chunks of chunk_s seconds
 * overlapping by overlap_s, merged.  *toks malloc'ed (texts borrowed from m).
 * progress (may be NULL) is called before each chunk with its start.
 * Errors: MT_EINVAL (overlap_s >= chunk_s), those of mt_parakeet_run. */
int mt_parakeet_tokens(mt_parakeet *m, const float *audio, size_t n, double chunk_s, double overlap_s,
                       mt_stt_progress_fn progress, void *user, mt_pk_token **toks, size_t *ntok, mt_err *err);
/* Merge the tokens of the next chunk b into a (mlx-audio's
 * merge_longest_contiguous, falling back to merge_longest_common_subsequence).
 * *out malloc'ed. */
int mt_parakeet_merge(const mt_pk_token *a, size_t na, const mt_pk_token *b, size_t nb, double overlap_s,
                      mt_pk_token **out, size_t *n_out, mt_err *err);
/* Fill res (zeroed here; free with mt_stt_result_free): text, one segment
 * per sentence (tokens = ids, words when words != 0), duration. */
int mt_parakeet_result(const mt_pk_token *t, size_t n, double duration, int words, mt_stt_result *res, mt_err *err);

#endif
