/* voxtral.h - Voxtral speech recognition (Voxtral-Mini-3B-2507 layout, as
 * mlx-audio 0.6.2 runs it): a Whisper-style audio encoder ("audio_tower."),
 * the multimodal projector (four encoder frames per row, linear / GELU /
 * linear) and the Llama text decoder ("language_model.") into which the audio
 * rows go in place of the [AUDIO] tokens of the transcription prompt
 *   <s> [INST] [BEGIN_AUDIO] [AUDIO] x rows [/INST] lang:xx [TRANSCRIBE]
 * built from tekken.json as mistral-common's encode_transcription builds it.
 * The audio is padded with zeros to a multiple of 30 s; its log-mel (one
 * global max over all of it) is cut into 3000-frame chunks, each encoded on
 * its own; all chunks' rows go into one prompt, decoded greedily.
 * The pieces are public for the tests; the family value mt_asr_voxtral
 * (stt/asr.h) runs them.  One model serves one call at a time (the mel
 * context and the pool are not reentrant).
 * ref: mlx_audio/stt/models/voxtral/voxtral.py, transformers
 * models/voxtral/processing_voxtral.py, mistral_common instruct.py. */
#ifndef MT_VOXTRAL_H
#define MT_VOXTRAL_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/pool.h"

typedef struct mt_voxtral mt_voxtral;

/* The speech-recogniser family (stt/asr.h), model_type "voxtral". */
struct mt_asr_family;
extern const struct mt_asr_family mt_asr_voxtral;

typedef struct mt_voxtral_info {
    int n_mels, n_frames;        /* features of one chunk: [n_mels, n_frames] (3000) */
    int enc_ctx, enc_dim;        /* encoder output of one chunk: [enc_ctx, enc_dim] */
    int rows_per_chunk;          /* audio rows (and [AUDIO] tokens) per chunk */
    int hidden, vocab;           /* text decoder */
    int32_t audio_token;
} mt_voxtral_info;

/* Load folder dir (config.json model_type "voxtral", safetensors, tekken.json).
 * Errors: one line naming the file and the problem (MT_ENOTFOUND,
 * MT_EFORMAT, MT_EUNSUPPORTED), MT_ENOMEM. */
int  mt_voxtral_load(mt_voxtral **out, const char *dir, mt_pool *pool, mt_err *err);
void mt_voxtral_free(mt_voxtral *v);   /* accepts NULL */
const mt_voxtral_info *mt_voxtral_info_of(const mt_voxtral *v);

/* Log-mel of audio[n] (16 kHz) padded to whole chunks: *mel malloc'd
 * [*n_chunks][n_mels][n_frames].  Errors: MT_EINVAL (n == 0), MT_ENOMEM. */
int mt_voxtral_features(mt_voxtral *v, const float *audio, size_t n, float **mel, size_t *n_chunks, mt_err *err);
/* The encoder of one chunk: mel[n_mels][n_frames] -> enc[enc_ctx][enc_dim]. */
int mt_voxtral_encode(mt_voxtral *v, const float *mel, float *enc, mt_err *err);
/* Encoder + projector of n_chunks chunks: rows[n_chunks * rows_per_chunk][hidden]. */
int mt_voxtral_audio_rows(mt_voxtral *v, const float *mel, size_t n_chunks, float *rows, mt_err *err);
/* The transcription prompt for n_chunks chunks; language NULL or "" = no
 * "lang:" part (the model detects).  *ids malloc'd.  Errors: MT_ENOMEM. */
int mt_voxtral_prompt(mt_voxtral *v, size_t n_chunks, const char *language, int32_t **ids, size_t *n, mt_err *err);
/* Greedy decoding after prompt (its [AUDIO] tokens take rows in order):
 * at most max_tokens ids, stopping before </s>, [/INST] or <pad>.  *out
 * malloc'd; first_logits[vocab] (may be NULL) gets the prompt's last logits. */
int mt_voxtral_generate(mt_voxtral *v, const int32_t *prompt, size_t n_prompt, const float *rows, size_t n_rows,
                        int max_tokens, int32_t **out, size_t *n_out, float *first_logits, mt_err *err);
/* Ids to text (special tokens by name, as mlx-audio's processor.decode). */
int mt_voxtral_detok(mt_voxtral *v, const int32_t *ids, size_t n, char **text, mt_err *err);

#endif
