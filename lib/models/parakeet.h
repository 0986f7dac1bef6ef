/* parakeet.h - NVIDIA Parakeet (FastConformer encoder + TDT, RNN-T or CTC
 * decoder) as mlx-audio 0.6.2 runs it: config.json of mlx-community parakeet
 * folders (NeMo's nested preprocessor / encoder / decoder / joint / decoding
 * objects, "target" naming the NeMo model class), model.safetensors in the
 * MLX layout (dense or MLX-quantized linears and embedding), the vocabulary
 * from the config (joint.vocabulary, or decoder.vocabulary for CTC).
 *
 * The decoder is picked as mlx-audio's Model.from_config picks it:
 *   target ...rnnt_bpe_models.EncDecRNNTBPEModel with model_defaults.tdt_durations -> TDT
 *   target ...hybrid_rnnt_ctc_bpe_models.EncDecHybridRNNTCTCBPEModel with tdt_durations -> TDT
 *     (the auxiliary CTC head is not used, as in mlx-audio)
 *   target ...rnnt_bpe_models.EncDecRNNTBPEModel without tdt_durations -> RNN-T
 *   target ...ctc_bpe_models.EncDecCTCModelBPE -> CTC
 * Ternary "Parakeet Redux" folders (ternary_modules) are refused.
 *
 * Decoding is greedy and token for token mlx-audio's (ParakeetTDT.decode,
 * ParakeetRNNT.decode, ParakeetCTC.decode): a list of aligned tokens (id,
 * text, start and duration in seconds).  The transcription glue (chunks,
 * sentences, words) is lib/stt/parakeet_asr.c.
 * ref: mlx_audio/stt/models/parakeet/{parakeet,rnnt,ctc,tokenizer}.py */
#ifndef MT_PARAKEET_H
#define MT_PARAKEET_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/pool.h"
#include "io/config.h"

enum { MT_PK_TDT = 0, MT_PK_RNNT = 1, MT_PK_CTC = 2 };

typedef struct mt_pk_token {
    int32_t id;
    const char *text;   /* the piece with U+2581 replaced by spaces (borrowed from the model) */
    double start, duration, end;   /* seconds; end = start + duration */
} mt_pk_token;

typedef struct mt_parakeet mt_parakeet;

/* 1 when cfg (no model_type) has the NeMo structure this family runs: a
 * "target" naming a nemo.collections.asr model, and preprocessor and encoder
 * objects. */
int mt_parakeet_claims(const mt_config *cfg);

/* Load folder dir (config already parsed: cfg, borrowed during the call).
 * Errors name the file: MT_ENOTFOUND (model.safetensors, a tensor),
 * MT_EFORMAT (config values, shapes), MT_EUNSUPPORTED (a NeMo model class or
 * option mlx-audio does not run), MT_ENOMEM.  pool borrowed (may be NULL). */
int  mt_parakeet_load(mt_parakeet **out, const char *dir, const mt_config *cfg, mt_pool *pool, mt_err *err);
void mt_parakeet_free(mt_parakeet *m);   /* accepts NULL */

int mt_parakeet_kind(const mt_parakeet *m);         /* MT_PK_* */
int mt_parakeet_sample_rate(const mt_parakeet *m);
size_t mt_parakeet_n_mels(const mt_parakeet *m);
size_t mt_parakeet_d_model(const mt_parakeet *m);
size_t mt_parakeet_vocab_size(const mt_parakeet *m);  /* pieces; the blank id is this */
const char *mt_parakeet_piece(const mt_parakeet *m, int32_t id);   /* NULL out of range */

/* Features [*T, n_mels] of audio[n] (mono at the model's rate); malloc'ed. */
int mt_parakeet_features(mt_parakeet *m, const float *audio, size_t n, float **feat, size_t *T, mt_err *err);
/* Encoder output [*Tn, d_model] of feat [T, n_mels]; malloc'ed. */
int mt_parakeet_encode(mt_parakeet *m, const float *feat, size_t T, float **enc, size_t *Tn, mt_err *err);
/* Greedy decoding of enc [Tn, d_model]: *toks malloc'ed [*n] (special pieces
 * are not listed, as in mlx-audio). */
int mt_parakeet_decode(mt_parakeet *m, const float *enc, size_t Tn, mt_pk_token **toks, size_t *n, mt_err *err);
/* features + encoder + decoder of one chunk of audio. */
int mt_parakeet_run(mt_parakeet *m, const float *audio, size_t n, mt_pk_token **toks, size_t *ntok, mt_err *err);

#endif
