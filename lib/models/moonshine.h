/* moonshine.h - Useful Sensors' Moonshine speech recogniser (model_type
 * "moonshine") as mlx-audio 0.6.2 runs it: a learned convolutional front end
 * over the raw 16-kHz waveform, a pre-LN transformer encoder with partial
 * interleaved RoPE, and a decoder with self- and cross-attention, a SwiGLU MLP
 * and a tied (or separate proj_out) output; greedy decoding from
 * decoder_start_token_id until eos_token_id.  The speech-recogniser family
 * (mt_asr_moonshine, stt/asr.h) is defined in moonshine.c too; these entry
 * points give the tests the stages one by one.
 * ref: mlx_audio/stt/models/moonshine/moonshine.py, config.py (0.6.2). */
#ifndef MT_MOONSHINE_H
#define MT_MOONSHINE_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/pool.h"
#include "io/config.h"

typedef struct mt_moonshine mt_moonshine;

/* The shortest input the front end takes: conv3 then gives one frame. */
#define MT_MOONSHINE_MIN_SAMPLES 895

/* Load folder dir (cfg: its config.json, borrowed during the call).  Weights
 * in the transformers layout ("model.encoder...", torch Conv1d [out, in, k])
 * or as mlx-audio's convert writes them (no prefix, conv [out, k, in]);
 * dense F32/F16/BF16 or MLX-quantized.  tokenizer.json (or tokenizer.json.zst)
 * from the folder.  Errors name the file and the problem. */
int  mt_moonshine_load(mt_moonshine **out, const char *dir, const mt_config *cfg, mt_pool *pool, mt_err *err);
void mt_moonshine_free(mt_moonshine *m);   /* accepts NULL */

int mt_moonshine_hidden(const mt_moonshine *m);

/* Front end: audio[n] -> *feat [*T, hidden] (malloc'd), the output of conv3's
 * GELU.  MT_EINVAL when n < MT_MOONSHINE_MIN_SAMPLES. */
int mt_moonshine_features(mt_moonshine *m, const float *audio, size_t n, float **feat, size_t *T, mt_err *err);
/* Front end + encoder layers + final norm: *enc [*T, hidden] (malloc'd). */
int mt_moonshine_encode(mt_moonshine *m, const float *audio, size_t n, float **enc, size_t *T, mt_err *err);
/* Greedy decoding over enc [T, hidden] as Model.generate does at temperature
 * 0: at most max_tokens ids (the start token not counted, eos not kept) into
 * ids (room for max_tokens), their count in *n. */
int mt_moonshine_decode(mt_moonshine *m, const float *enc, size_t T, int max_tokens, int32_t *ids, size_t *n,
                        mt_err *err);
/* Text of ids as mlx-audio gives it: tokenizer decode, special tokens
 * skipped, surrounding white space stripped.  *text malloc'd. */
int mt_moonshine_detok(const mt_moonshine *m, const int32_t *ids, size_t n, char **text, mt_err *err);

/* Long audio: the [start, end) sample ranges it is transcribed in.  One range
 * when n <= chunk_s seconds; otherwise each window of chunk_s seconds is cut
 * at the middle of its quietest 20-ms frame (least sum of squares; the first
 * on ties) among the frames lying wholly in its last third, and the next
 * window starts there.  bounds: malloc'd [2 * *nb]. */
int mt_moonshine_chunks(const float *audio, size_t n, double chunk_s, size_t **bounds, size_t *nb, mt_err *err);

#endif
