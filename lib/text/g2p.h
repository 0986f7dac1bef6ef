/* g2p.h - text to Kokoro phonemes through libespeak-ng, the way kokoro-onnx does it.
 *
 * mt_g2p_phonemize reproduces kokoro-onnx's Tokenizer.phonemize(text, lang): the text
 * is stripped, cut into lines, its punctuation set aside and put back around the
 * phonemes of the pieces between the marks (phonemizer's espeak backend with
 * preserve_punctuation and with_stress), and every character outside Kokoro's
 * vocabulary is dropped.  The raw espeak IPA reaches the model (no misaki mapping).
 * mt_g2p_split reproduces the batching of kokoro-onnx's Kokoro._prepare: whitespace
 * collapsed, then cut at sentence marks, clause marks, spaces and as a last resort
 * inside a word, into balanced batches of at most `max_len` code points.
 *
 * Languages: every espeak-ng voice language (the first language a voice lists, as
 * phonemizer looks them up); Kokoro v1.0's voices use en-us, en-gb, es, fr-fr, hi,
 * it, pt-br (ja and cmn exist in espeak-ng too; Kokoro's own pipeline phonemizes
 * those with other G2Ps).  kokoro-onnx passes its lang argument to espeak unchanged.
 *
 * Thread safety: espeak-ng keeps its state in globals, so g2p.c initializes it once
 * and serializes every call into it behind one mutex; mt_g2p handles may be used from
 * several threads.  Lengths are in Unicode code points, as Python's len() counts.
 *
 * ref: kokoro-onnx 0.6.1 tokenizer.py, chunker.py, __init__.py (_prepare);
 *      phonemizer 3.4 punctuation.py, backend/espeak/espeak.py, wrapper.py. */
#ifndef MT_G2P_H
#define MT_G2P_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Kokoro's context: 512 positions minus the two pad tokens. */
#define MT_G2P_MAX_PHONEMES 510
/* Input texts longer than this many bytes are refused (MT_ELIMIT). */
#define MT_G2P_MAX_TEXT ((size_t)16 << 20)

typedef struct mt_g2p mt_g2p;

/* Opens a phonemizer for espeak-ng language `lang` ("en-us", "en-gb", "fr-fr", ...).
 * Initializes espeak-ng on first use (its default data folder, or $ESPEAK_DATA_PATH).
 * Errors: MT_EIO when espeak-ng cannot initialize, MT_ENOTFOUND for a language no
 * espeak voice has, MT_EINVAL for a bad name, MT_ENOMEM.  Free with mt_g2p_free. */
int mt_g2p_open(const char *lang, mt_g2p **out, mt_err *err);
void mt_g2p_free(mt_g2p *g);
/* The espeak voice identifier chosen for the language ("gmw/en-US"); owned by g. */
const char *mt_g2p_voice(const mt_g2p *g);

/* Phonemizes `len` bytes of UTF-8 `text` into *out (malloc'd, NUL-terminated UTF-8,
 * *out_len bytes without the NUL; the caller frees).  Empty or punctuation-only text
 * gives what kokoro-onnx gives (often ""), not an error.  Errors: MT_EINVAL for
 * invalid UTF-8 (overlong forms, surrogates, > U+10FFFF, truncated sequences),
 * MT_ELIMIT for text over MT_G2P_MAX_TEXT, MT_EFORMAT when espeak-ng returns bytes
 * that are not UTF-8, MT_ENOMEM.  On error *out is NULL. */
int mt_g2p_phonemize(mt_g2p *g, const char *text, size_t len, char **out, size_t *out_len,
                     mt_err *err);

/* Batches of a phoneme string, each a malloc'd NUL-terminated UTF-8 string. */
typedef struct mt_g2p_chunks {
    size_t n;
    char **s;
    size_t *len; /* bytes of s[i] */
} mt_g2p_chunks;

/* Splits UTF-8 `ph` (usually mt_g2p_phonemize's output) into batches of at most
 * `max_len` code points (MT_G2P_MAX_PHONEMES for Kokoro), as kokoro-onnx does before
 * synthesis: whitespace runs collapsed to one space, then cuts preferred after
 * `.!?…`, then after `,;:`, then at any space, and a word longer than max_len sliced;
 * the batches are balanced (the smallest size that needs no more batches than
 * filling each to max_len).  Text of only whitespace gives n = 0.  Errors: MT_EINVAL
 * for max_len 0 or invalid UTF-8, MT_ENOMEM.  *out is zeroed first; free it with
 * mt_g2p_chunks_free (also after an error). */
int mt_g2p_split(const char *ph, size_t len, size_t max_len, mt_g2p_chunks *out, mt_err *err);
void mt_g2p_chunks_free(mt_g2p_chunks *c);

/* Kokoro v1.0's vocabulary (config.json "vocab"): the token id of code point cp,
 * or -1 for a character the model does not know (kokoro-onnx drops those). */
int mt_g2p_vocab_id(uint32_t cp);

#endif
