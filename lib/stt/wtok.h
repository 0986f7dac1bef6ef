/* wtok.h - Whisper's tokenizer: the GPT-2 byte-level BPE (English-only models)
 * or the multilingual one, plus the special tokens that follow the base
 * vocabulary (openai-whisper tokenizer.py): <|endoftext|>,
 * <|startoftranscript|>, one token per language (99, or 100 from large-v3 on),
 * <|translate|>, <|transcribe|>, <|startoflm|>, <|startofprev|>,
 * <|nospeech|>, <|notimestamps|>, then 1501 timestamps <|0.00|>..<|30.00|>.
 * The base BPE comes from the bundled
 * share/whisper/{gpt2,multilingual}.tokenizer.json.zst (made from tiktoken's
 * files by tests/gen/gen_whisper_tokenizers.py, checked equal to tiktoken), or
 * from the model folder's tokenizer.json when no bundled file is found;
 * special ids are derived from n_vocab exactly as the reference does. */
#ifndef MT_WTOK_H
#define MT_WTOK_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

typedef struct mt_wtok {
    int multilingual;
    int n_vocab;                 /* the model's */
    int32_t eot, sot, translate, transcribe, sot_lm, sot_prev, no_speech, no_timestamps, timestamp_begin;
    int32_t lang_begin;          /* id of <|en|>; language i is lang_begin + i */
    int n_langs;
    void *bpe;                   /* mt_tokenizer * (text/tokenizer.h) */
    void *tab;                   /* private: the bytes of every base token */
} mt_wtok;

/* Open the tokenizer for a model with n_vocab entries whose folder is dir
 * (may be NULL).  multilingual = n_vocab >= 51865 (reference rule);
 * n_langs = n_vocab - 51765 - multilingual.  data_dir: where the bundled share
 * files live (NULL = mt_wtok_data_dir()).  Close with mt_wtok_close.
 * Errors: MT_ENOTFOUND (no tokenizer.json and no bundled file), MT_EFORMAT
 * (a vocabulary size the special tokens do not fit), MT_ENOMEM. */
int  mt_wtok_open(mt_wtok *t, const char *dir, int n_vocab, const char *data_dir, mt_err *err);
void mt_wtok_close(mt_wtok *t);
/* The bundled data folder: $MLX_TOOLS_DATA, else <exe>/../share/mlx-tools
 * (installed), else <exe>/../../share (build tree).  Writes into buf. */
const char *mt_wtok_data_dir(char *buf, size_t cap);

/* Language code ("en", "de", ...) <-> index; -1 when unknown.  Names too
 * ("english", "german", ...) are accepted by mt_wtok_lang_index. */
int  mt_wtok_lang_index(const mt_wtok *t, const char *code_or_name);
const char *mt_wtok_lang_code(int index);
/* The language's English name ("english", ...), NULL when index is out of range. */
const char *mt_wtok_lang_name(int index);
/* The start-of-transcript sequence: sot [, lang, task] [, no_timestamps];
 * task 0 = transcribe, 1 = translate; lang < 0 leaves language and task out
 * (English-only models).  Returns the count written to out[4]. */
int  mt_wtok_sot_sequence(const mt_wtok *t, int lang, int task, int no_timestamps, int32_t out[4]);

/* Encode text (no special tokens), as tokenizer.encode(text).  *ids malloc'ed. */
int  mt_wtok_encode(const mt_wtok *t, const char *text, int32_t **ids, size_t *n, mt_err *err);
/* Decode ids as tokenizer.decode does: timestamp ids (>= timestamp_begin) are
 * dropped, other special ids are written as their names ("<|en|>"); the
 * bytes are read as UTF-8 with U+FFFD for invalid sequences (Python's
 * errors="replace").  Ids outside [0, n_vocab) are skipped.  *text malloc'ed. */
int  mt_wtok_decode(const mt_wtok *t, const int32_t *ids, size_t n, char **text, mt_err *err);
/* Decode with timestamp tokens shown as "<|1.08|>" (decode_with_timestamps). */
int  mt_wtok_decode_ts(const mt_wtok *t, const int32_t *ids, size_t n, char **text, mt_err *err);
/* Decode only the base tokens (ids < eot), the segment text of transcribe(). */
int  mt_wtok_decode_text(const mt_wtok *t, const int32_t *ids, size_t n, char **text, mt_err *err);
/* Non-speech token ids to suppress (tokenizer.non_speech_tokens), sorted;
 * *ids malloc'ed. */
int  mt_wtok_non_speech(const mt_wtok *t, int32_t **ids, size_t *n, mt_err *err);
/* The bytes of token id as tiktoken holds them (for unicode-boundary
 * splitting): base tokens' raw bytes, special tokens' names ("<|en|>",
 * "<|1.08|>").  Returns a pointer into the tokenizer (do not free) and its
 * length, or NULL for an id outside [0, n_vocab). */
const char *mt_wtok_token_bytes(const mt_wtok *t, int32_t id, size_t *len);

#endif
