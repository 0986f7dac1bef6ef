/* wav2vec2.h - Wav2Vec2ForCTC and HubertForCTC: raw 16-kHz audio through a
 * convolutional feature encoder, a feature projection, a transformer encoder
 * with a convolutional position embedding (post-LN or "stable" pre-LN) and a
 * linear CTC head; greedy CTC with the Wav2Vec2CTCTokenizer's decoding
 * (repeats grouped, blank dropped, "|" -> space) and its char / word offsets.
 * The speech-recogniser family mt_asr_wav2vec2 (stt/asr.h) is built on it;
 * the functions here are what the family and the tests call.
 * ref: mlx_audio/stt/models/wav2vec/wav2vec.py, feature_extractor.py and
 *      mlx_audio/stt/models/mms/mms.py (0.6.2); transformers 5.25
 *      models/hubert/modeling_hubert.py (HubertForCTC),
 *      models/wav2vec2/tokenization_wav2vec2.py (decode with offsets). */
#ifndef MT_WAV2VEC2_H
#define MT_WAV2VEC2_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/pool.h"
#include "io/config.h"
#include "stt/transcribe.h"

typedef struct mt_w2v mt_w2v;

typedef struct mt_w2v_info {
    int hidden, n_layers, n_heads, vocab;
    int conv_out;        /* channels of the last feature-encoder conv */
    int ratio;           /* input samples per output frame: product of the conv strides */
    int stable;          /* 1: pre-LN ("StableLayerNorm") encoder */
    int blank;           /* the CTC blank (the tokenizer's pad token) */
    int do_normalize;    /* preprocessor_config.json's do_normalize (default 1) */
} mt_w2v_info;

/* Load folder dir (cfg: its config.json, borrowed during the call).  pool is
 * borrowed.  Errors: MT_ENOTFOUND (weights, a tensor, vocab.json), MT_EFORMAT
 * (shapes, bad config values), MT_EUNSUPPORTED (an option we do not run:
 * adapters, a batch-norm position conv, an activation other than GELU); the
 * message names the file. */
int  mt_w2v_load(mt_w2v **out, const char *dir, const mt_config *cfg, mt_pool *pool, mt_err *err);
void mt_w2v_free(mt_w2v *w);   /* accepts NULL */
const mt_w2v_info *mt_w2v_info_of(const mt_w2v *w);

/* Number of CTC frames for n input samples (0 when too short). */
size_t mt_w2v_frames(const mt_w2v *w, size_t n);

/* feats[n]: the feature extractor's input values: (x - mean) / sqrt(var + 1e-7)
 * in float32 when do_normalize, else a copy. */
void mt_w2v_features(const mt_w2v *w, const float *audio, size_t n, float *feats);

/* The forward pass over feats[n].  T = mt_w2v_frames(w, n) must be > 0.
 * conv[T, conv_out] (the feature encoder's output, may be NULL),
 * hidden[T, hidden] (the last hidden state, may be NULL), logits[T, vocab].
 * Errors: MT_EINVAL (too short), MT_ENOMEM. */
int mt_w2v_forward(mt_w2v *w, const float *feats, size_t n, float *conv, float *hidden, float *logits, mt_err *err);

/* Decode the greedy CTC result (ids[k] with the first and last frame of each
 * run, as mt_ctc_greedy gives them) as Wav2Vec2CTCTokenizer.decode decodes
 * the frames' arg-max ids (tokens grouped, pad dropped, the word delimiter as
 * a space, stripped), and fill res: text, one segment [0, duration] with that
 * text and, when words is set, its words (each with a leading space, as
 * Whisper's words are and the subtitle writers expect; start/end = the CTC offsets *
 * ratio / 16000 s, as the ASR pipeline's word timestamps; a word's
 * probability is the mean arg-max softmax probability of its frames, from
 * logits[frames, vocab], or 0 when logits is NULL).  res is zeroed by the
 * caller and left free-able on failure.  Errors: MT_ENOMEM. */
int mt_w2v_decode(const mt_w2v *w, const int32_t *ids, const int32_t *first, const int32_t *last, size_t k,
                  const float *logits, double duration, int words, mt_stt_result *res, mt_err *err);

#endif
