/* qwen3_asr.h - Qwen3-ASR (config.json model_type "qwen3_asr"): the steps of the
 * speech recogniser, for tests and tools; programs use it through stt/asr.h
 * (mt_asr_qwen3_asr).  See qwen3_asr.c for what each step does. */
#ifndef MT_QWEN3_ASR_H
#define MT_QWEN3_ASR_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/pool.h"
#include "stt/asr.h"

typedef struct mt_qwen3_asr mt_qwen3_asr;

/* Open folder dir (config.json, model.safetensors, tokenizer.json).  pool is
 * borrowed (may be NULL).  Errors name the file and the problem. */
int  mt_qwen3_asr_load(mt_qwen3_asr **out, const char *dir, mt_pool *pool, mt_err *err);
void mt_qwen3_asr_free(mt_qwen3_asr *q);   /* accepts NULL */

/* Widths: mel bins, encoder output rows' width (= the decoder's hidden size),
 * vocabulary. */
void mt_qwen3_asr_dims(const mt_qwen3_asr *q, int *n_mels, int *hidden, int *vocab);

/* WhisperFeatureExtractor's log-mel of audio[n] (16 kHz) without padding:
 * *mel malloc'd [n_mels, *T], T = n / 160. */
int mt_qwen3_asr_features(mt_qwen3_asr *q, const float *audio, size_t n, float **mel, size_t *T, mt_err *err);

/* Rows the encoder gives for T feature frames (the audio pad tokens). */
size_t mt_qwen3_asr_audio_rows(size_t T);

/* The audio encoder over mel[n_mels, T]: *out malloc'd [*N, hidden]. */
int mt_qwen3_asr_encode(mt_qwen3_asr *q, const float *mel, size_t T, float **out, size_t *N, mt_err *err);

/* The prompt for n_audio pad tokens (language NULL: the model names it). *ids malloc'd. */
int mt_qwen3_asr_prompt(mt_qwen3_asr *q, size_t n_audio, const char *language, int32_t **ids, size_t *n,
                        mt_err *err);

/* One chunk of audio (already padded to 1 s when shorter): greedy ids until EOS or
 * max_tokens; ids[max_tokens], *n_ids; first_logits[vocab] (may be NULL) gets the
 * logits of the first step. */
int mt_qwen3_asr_decode_chunk(mt_qwen3_asr *q, const float *audio, size_t n, const char *language, int max_tokens,
                              int32_t *ids, size_t *n_ids, float *first_logits, mt_err *err);

/* mlx-audio's split_audio_into_chunks: *starts malloc'd [*n_chunks + 1] sample offsets
 * (the last = n); chunk k is audio[starts[k], starts[k + 1]). */
int mt_qwen3_asr_split(const float *audio, size_t n, double chunk_s, size_t **starts, size_t *n_chunks,
                       mt_err *err);

/* The reference's extract_language: "language X<asr_text>rest" gives X (whitespace
 * stripped, cut to lang_cap - 1 bytes) and returns rest; otherwise "English" and text. */
const char *mt_qwen3_asr_split_language(const char *text, char *lang, size_t lang_cap);

extern const mt_asr_family mt_asr_qwen3_asr;

#endif
