/* tokenizer.h - Hugging Face `tokenizers` (tokenizer.json) compatible encode/decode.
 *
 * Supports BPE (byte-level and SentencePiece-style with byte fallback),
 * WordPiece, WordLevel and Unigram models, the usual normalizers (NFC/NFD/NFKC/NFKD,
 * Lowercase, Strip, StripAccents, Replace, Prepend, BertNormalizer,
 * Precompiled, Sequence), pre-tokenizers (Split, ByteLevel, Metaspace,
 * BertPreTokenizer, Whitespace, WhitespaceSplit, Punctuation, Digits,
 * Sequence), post-processors (TemplateProcessing, BertProcessing,
 * RobertaProcessing, ByteLevel, Sequence) and decoders (ByteLevel, Replace,
 * ByteFallback, Fuse, Strip, Metaspace, WordPiece, Sequence), with added
 * tokens matched like HF (special/normalized/lstrip/rstrip/single_word).
 *
 * The tokenizer.json "truncation" and "padding" settings are ignored (one
 * text in, its unpadded ids out); BPE dropout and a few rare components
 * (UnicodeScripts, FixedLength, regex Replace decoder, CTC) are rejected
 * with MT_EUNSUPPORTED at load time.
 *
 * A loaded tokenizer is safe to share: encode/decode may run concurrently
 * from several threads (its only mutable part, a word cache, is locked). */
#ifndef MT_TOKENIZER_H
#define MT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

typedef struct mt_tokenizer mt_tokenizer;

/* Load tokenizer.json from a path (".zst" ok). On success *out owns the
 * tokenizer (free with mt_tokenizer_free). Errors: MT_EIO/MT_ENOTFOUND for the
 * file, MT_EFORMAT for malformed JSON, MT_EUNSUPPORTED for unknown components. */
int  mt_tokenizer_load(mt_tokenizer **out, const char *path, mt_err *err);
/* Same from len bytes of JSON in memory (need not be NUL-terminated). */
int  mt_tokenizer_load_mem(mt_tokenizer **out, const char *json, size_t len, mt_err *err);
void mt_tokenizer_free(mt_tokenizer *t);

/* Encode UTF-8 text (len bytes; invalid UTF-8 is replaced by U+FFFD like
 * Rust's from_utf8_lossy). add_special: apply the post-processor (e.g. BOS)
 * like HF encode(add_special_tokens=True). *ids is malloc'd (caller frees),
 * *n its length. */
int  mt_tokenizer_encode(const mt_tokenizer *t, const char *text, size_t len, int add_special,
                         int32_t **ids, size_t *n, mt_err *err);
/* Decode like HF decode(ids, skip_special_tokens=skip_special). Unknown ids
 * are skipped. *out malloc'd, NUL-terminated; *len (may be NULL) its length. */
int  mt_tokenizer_decode(const mt_tokenizer *t, const int32_t *ids, size_t n, int skip_special,
                         char **out, size_t *len, mt_err *err);
/* -1 if absent (vocab or added tokens). */
int32_t     mt_tokenizer_token_to_id(const mt_tokenizer *t, const char *token);
/* The token string (as in the vocab / added tokens); NULL if out of range or unused. */
const char *mt_tokenizer_id_to_token(const mt_tokenizer *t, int32_t id);
/* Number of ids (max id + 1), incl. added tokens. */
size_t      mt_tokenizer_vocab_size(const mt_tokenizer *t);
/* The raw bytes token id stands for in generated text, for constrained decoding: the
 * decoder chain applied to the token alone as a token in the middle of a text (byte-level
 * characters mapped back to bytes, "<0xHH>" byte-fallback tokens to their byte, the
 * SentencePiece "\u2581" to a space), as mt_tokenizer_decode writes it after other tokens;
 * a special token gives 0 bytes.  The bytes may be a partial UTF-8 sequence.  *out (may
 * be NULL) points into the tokenizer or into buf, which gets at most cap bytes.  Returns
 * the length (like snprintf: when it exceeds cap, call again with a larger buf), or -1
 * for an id outside the vocabulary or unused (or out of memory). */
int         mt_tokenizer_token_bytes(const mt_tokenizer *t, int32_t id, char *buf, size_t cap, const char **out);
/* 1 if id is an added token marked special. */
int         mt_tokenizer_is_special(const mt_tokenizer *t, int32_t id);

/* Streaming detokenizer: feed ids one at a time, get newly completed text;
 * never emits broken UTF-8 (incomplete sequences are held back until complete
 * or flushed). The concatenation of all pieces + flush equals
 * mt_tokenizer_decode of the whole sequence (skip_special as given).
 * The tokenizer must outlive the detokenizer. */
typedef struct mt_detok mt_detok;
int  mt_detok_new(mt_detok **out, const mt_tokenizer *t, int skip_special, mt_err *err);
/* *piece malloc'd (caller frees), may be "" ; *len may be NULL. */
int  mt_detok_push(mt_detok *d, int32_t id, char **piece, size_t *len, mt_err *err);
/* Emits whatever is held back; the detokenizer is then reset for a new sequence. */
int  mt_detok_flush(mt_detok *d, char **piece, size_t *len, mt_err *err);
void mt_detok_free(mt_detok *d);

#endif
