/* orpheus.h - Orpheus TTS as mlx-audio 0.6.2 runs it: a llama decoder (models/model.h,
 * loaded by the registry from the folder's config.json, model_type "llama") generates
 * audio tokens with the shared generation loop (gen/generate.h), which map to the codes
 * of the SNAC 24 kHz codec (audio/snac.h) that makes the waveform.
 *
 * Prompt of one segment: [SOH 128259] + tokenizer("{voice}: {text}") (with the tokenizer's
 * BOS; "{text}" alone without a voice) + [EOT 128009, EOH 128260].  Generation stops at
 * end-of-speech 128258, at the tokenizer's eos token (tokenizer_config.json's eos_token),
 * or after max_tokens.  Codes: the ids after the last start-of-speech 128257 (prompt and
 * generated ids together, as mlx-audio's parse_output), end-of-speech ids dropped, cut to
 * a multiple of 7, minus 128266; each 7 of them are one frame: codebook 0 gets c0, codebook
 * 1 gets c1 - 4096 and c4 - 4*4096, codebook 2 gets c2 - 2*4096, c3 - 3*4096, c5 - 5*4096
 * and c6 - 6*4096.  Text is cut at newlines (a literal backslash-n counts as one, as does
 * backslash-t as a tab, mlx-audio's rule); blank segments are skipped, each other segment is
 * generated and decoded alone and the waveforms are joined.
 *
 * Differences from mlx-audio, by design: sampling draws from our own generator (gen/sample.h);
 * the stop token is never part of the codes (mlx-audio appends a tokenizer-eos stop to the ids
 * it decodes); the SNAC noise blocks are off in mt_orpheus_opts_default (mlx-audio draws
 * mx.random.normal; mlx-tts turns them on, seeded, unless --deterministic);
 * codes outside a codebook are an error (mlx reads past the codebook).
 *
 * The codec folder: `codec_dir`, else the first of <dir>/snac_24khz, <dir>/snac, <dir>/codec
 * holding a config.json.
 *
 * ref: mlx_audio/tts/models/llama/llama.py (prepare_input_ids, generate, parse_output,
 *      decode_audio_from_codes), mlx_audio/lm/generate.py (stream_generate). */
#ifndef MT_TTS_ORPHEUS_H
#define MT_TTS_ORPHEUS_H

#include <stddef.h>
#include <stdint.h>
#include "audio/snac.h"
#include "core/err.h"
#include "core/pool.h"
#include "models/model.h"
#include "text/prompter.h"

#define MT_ORPHEUS_SOS 128257      /* start of speech */
#define MT_ORPHEUS_EOS 128258      /* end of speech */
#define MT_ORPHEUS_SOH 128259      /* start of human */
#define MT_ORPHEUS_EOH 128260      /* end of human */
#define MT_ORPHEUS_EOT 128009      /* end of text */
#define MT_ORPHEUS_AUDIO0 128266   /* first audio token */
#define MT_ORPHEUS_BOOK 4096       /* the id stride of the 7 slots */

typedef struct mt_orpheus {
    mt_model *lm;
    mt_prompter *text;
    mt_snac *codec;
    int32_t eos_tok;               /* the tokenizer's eos id, -1 when none */
} mt_orpheus;

typedef struct mt_orpheus_opts {
    float temp, top_p;             /* 0.6, 0.8 (mlx-audio's); temp 0 = greedy */
    float repetition_penalty;      /* 1.3 */
    int repetition_context_size;   /* 20 */
    int max_tokens;                /* 1200 per segment */
    uint64_t seed;                 /* sampling (each segment seed + its index) */
    int kv_f16;                    /* as mt_gen_params.kv_f16: -1 the weights' type */
    mt_snac_opts snac;             /* noise off by default */
} mt_orpheus_opts;

void mt_orpheus_opts_default(mt_orpheus_opts *o);

/* Loads the decoder, the tokenizer and the codec (see above).  pool is borrowed.  Errors:
 * as mt_model_load, mt_prompter_open, mt_snac_load (prefixed with the folder); MT_ENOTFOUND
 * (no codec folder); MT_EFORMAT (a vocabulary too small for the audio tokens). */
int mt_orpheus_load(mt_orpheus **out, const char *dir, const char *codec_dir, mt_pool *pool, mt_err *err);
void mt_orpheus_free(mt_orpheus *o);   /* accepts NULL */
int mt_orpheus_sample_rate(const mt_orpheus *o);

/* The prompt ids of one segment (voice may be NULL or ""); *ids malloc'd. */
int mt_orpheus_prompt(const mt_orpheus *o, const char *voice, const char *text, int32_t **ids, size_t *n,
                      mt_err *err);

/* Generates after prompt: *toks malloc'd [*nt], the stop token excluded. */
int mt_orpheus_generate(mt_orpheus *o, const int32_t *prompt, size_t n, const mt_orpheus_opts *opts,
                        int32_t **toks, size_t *nt, mt_err *err);

/* parse_output over ids [n] (prompt + generated): *codes malloc'd [*ncodes], a multiple of 7
 * (possibly 0). */
int mt_orpheus_codes(const int32_t *ids, size_t n, int32_t **codes, size_t *ncodes, mt_err *err);

/* Decodes flat codes [n] (a positive multiple of 7) through the codec.  Errors: MT_EINVAL (n,
 * a code out of its codebook), as mt_snac_decode. */
int mt_orpheus_decode(const mt_orpheus *o, const int32_t *codes, size_t n, const mt_snac_opts *snac, float **wav,
                      size_t *len, mt_err *err);

/* The whole text (segments as above): *wav malloc'd [*len] (*len 0 and *wav NULL when no
 * segment produced codes).  Errors: MT_EINVAL (no text to speak), as the steps above. */
int mt_orpheus_synth(mt_orpheus *o, const char *text, const char *voice, const mt_orpheus_opts *opts, float **wav,
                     size_t *len, mt_err *err);

#endif
