/* whisper.h - the Whisper encoder-decoder (openai-whisper model.py semantics).
 * mt_whisper_load() reads either layout users have:
 *   - mlx-community (mlx-whisper): config.json with n_mels, n_audio_ctx,
 *     n_audio_state, ... and OpenAI tensor names ("encoder.blocks.0.attn.query.weight",
 *     conv weights in MLX's [out, k, in] order), weights.safetensors / weights.npz
 *     is NOT read: safetensors only (model.safetensors or weights.safetensors);
 *     plain or MLX-quantized ("quantization" in config.json);
 *   - Hugging Face transformers (openai/whisper-*): config.json model_type
 *     "whisper" (d_model, encoder_layers, num_mel_bins, ...) and
 *     "model.encoder.layers.0.self_attn.q_proj.weight" names, conv weights
 *     [out, in, k]; alignment heads from generation_config.json.
 * Dense F32/F16/BF16 weights are borrowed from the mmap; quantized Linear /
 * Embedding weights run through mt_linear (the encoder's 1500-row products
 * dequantize scale * q + bias in float32 as mx.quantized_matmul does).  The
 * output projection is tied to the token embedding.  All computation is
 * float32.
 * Threads: with a pool of several threads and OpenBLAS on one thread
 * (mt_blas_threads(1), recommended) the big products and the encoder's
 * attention are split over the pool; otherwise OpenBLAS's own threads run
 * them.  One model may serve several decoders, but calls that share a pool
 * must not run concurrently (mt_pool_for is not reentrant). */
#ifndef MT_WHISPER_H
#define MT_WHISPER_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/pool.h"

typedef struct mt_whisper_hp {
    int n_mels, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer;
    int n_vocab, n_text_ctx, n_text_state, n_text_head, n_text_layer;
} mt_whisper_hp;

typedef struct mt_whisper mt_whisper;

/* Load the model in folder dir (either layout).  pool is borrowed (may be
 * NULL).  Errors: MT_ENOTFOUND (config / weights / tensor missing),
 * MT_EFORMAT (shape or dtype mismatch), MT_EUNSUPPORTED. */
int  mt_whisper_load(mt_whisper **out, const char *dir, mt_pool *pool, mt_err *err);
void mt_whisper_free(mt_whisper *w);   /* accepts NULL */
const mt_whisper_hp *mt_whisper_hparams(const mt_whisper *w);
/* The folder the model was loaded from (tokenizer files are looked up there). */
const char *mt_whisper_dir(const mt_whisper *w);
/* Alignment heads for word timestamps as (layer, head) pairs: config.json /
 * generation_config.json "alignment_heads" when present, else the
 * "alignment_heads" tensor ([n, 2] I64/I32) that mlx-whisper's convert stores
 * in the weights, otherwise all heads of the last half of the decoder layers
 * (openai-whisper's default).  *pairs is borrowed (valid until free). */
size_t mt_whisper_alignment_heads(const mt_whisper *w, const int (**pairs)[2]);

/* Only a Whisper-style audio encoder, as a multimodal model embeds one
 * (Voxtral's "audio_tower."): transformers' WhisperEncoder names under prefix
 * ("<prefix>conv1", "<prefix>conv2", "<prefix>embed_positions.weight",
 * "<prefix>layers.<i>.self_attn.{q,k,v,out}_proj", "...self_attn_layer_norm",
 * "...fc1", "...fc2", "...final_layer_norm", "<prefix>layer_norm") in the
 * safetensors of folder dir; conv weights in either layout (told apart by
 * shape); quantization from dir's config.json.  hp gives n_mels, n_audio_ctx,
 * n_audio_state, n_audio_head, n_audio_layer (the text fields are ignored; the
 * MLP is 4 x n_audio_state wide).  Only mt_whisper_encode, mt_whisper_hparams
 * and mt_whisper_free apply to the result.  Errors: as mt_whisper_load. */
int mt_whisper_load_encoder(mt_whisper **out, const char *dir, const char *prefix, const mt_whisper_hp *hp,
                            mt_pool *pool, mt_err *err);

/* Encoder: mel[n_mels, 2 * n_audio_ctx] (one 30-s window, row-major as
 * mt_mel_window gives it) -> xa[n_audio_ctx, n_audio_state].
 * Errors: MT_ENOMEM. */
int mt_whisper_encode(mt_whisper *w, const float *mel, float *xa, mt_err *err);

/* Decoder state for n_seq token sequences (beams or best-of samples) that
 * attend to the same encoded audio: per-sequence self-attention KV caches up
 * to n_text_ctx tokens, and the cross-attention K/V of xa computed once. */
typedef struct mt_whisper_dec mt_whisper_dec;

/* xa[n_audio_ctx, n_audio_state] is copied/projected at creation (the caller
 * may free it afterwards).  Errors: MT_EINVAL (n_seq < 1), MT_ENOMEM. */
int  mt_whisper_dec_new(mt_whisper_dec **out, mt_whisper *w, const float *xa, int n_seq, mt_err *err);
void mt_whisper_dec_free(mt_whisper_dec *d);   /* accepts NULL */
/* Forget all cached tokens (every sequence back to length 0); xa is kept. */
void mt_whisper_dec_reset(mt_whisper_dec *d);
/* Tokens cached per sequence (all sequences have the same length). */
int  mt_whisper_dec_len(const mt_whisper_dec *d);
int  mt_whisper_dec_nseq(const mt_whisper_dec *d);
/* Feed n_tok more tokens to every sequence: ids[n_seq * n_tok] (sequence
 * major).  logits receives [n_seq, n_vocab] for each sequence's last position,
 * or [n_seq, n_tok, n_vocab] for every position when all_positions != 0.
 * Errors: MT_EINVAL (an id out of range, cache length + n_tok > n_text_ctx). */
int  mt_whisper_dec_step(mt_whisper_dec *d, const int32_t *ids, int n_tok, int all_positions, float *logits,
                         mt_err *err);
/* Beam search bookkeeping: afterwards sequence i holds what sequence src[i]
 * held (src[n_seq], entries may repeat).  Errors: MT_EINVAL, MT_ENOMEM. */
int  mt_whisper_dec_reorder(mt_whisper_dec *d, const int *src, mt_err *err);

/* Word-timestamp support (openai-whisper timing.find_alignment): run ids[n_tok]
 * from an empty cache over xa and return the alignment heads' cross-attention
 * scores BEFORE softmax (q.k scaled as the model scales them):
 * qk[n_heads_align, n_tok, n_audio_ctx], heads in mt_whisper_alignment_heads
 * order; logits[n_tok, n_vocab] too when non-NULL.  Errors: as dec_step. */
int mt_whisper_cross_qk(mt_whisper *w, const float *xa, const int32_t *ids, int n_tok, float *qk, float *logits,
                        mt_err *err);
/* The same over the audio a decoder already projected (saves re-projecting
 * xa's cross-attention K/V); d's own sequences and caches are left as they
 * are.  Errors: as dec_step. */
int mt_whisper_dec_cross_qk(mt_whisper_dec *d, const int32_t *ids, int n_tok, float *qk, float *logits,
                            mt_err *err);

#endif
