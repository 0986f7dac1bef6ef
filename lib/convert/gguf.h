/* gguf.h - export an MLX llama-family model folder to a GGUF v3 file that
 * llama.cpp loads: F32, F16, Q8_0, Q4_0 (ggml reference quantizers, as
 * gguf-py's numpy ports), and Q4_1 - lossless from MLX 4-bit group-32 layers
 * (scale -> d, bias -> m, nibbles reordered), quantized otherwise.
 * Names, q/k row permutation and metadata follow llama.cpp's
 * convert_hf_to_gguf.py for LlamaForCausalLM; the vocabulary comes from
 * tokenizer.json (BPE "gpt2" model, or "llama" for SentencePiece-style BPE). */
#ifndef MT_GGUF_H
#define MT_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef enum { MT_GGML_F32 = 0, MT_GGML_F16 = 1, MT_GGML_Q4_0 = 2, MT_GGML_Q4_1 = 3, MT_GGML_Q8_0 = 8 } mt_ggml_type;

/* "f32" "f16" "q8_0" "q4_0" "q4_1" -> type; MT_EINVAL otherwise. */
int mt_ggml_type_parse(const char *s, mt_ggml_type *out);

/* Reference block quantizers (blocks of 32 floats; n % 32 == 0), output bytes:
 * Q8_0 34 per block, Q4_0 18, Q4_1 20.  Bit-exact with ggml's *_ref functions. */
void mt_ggml_quantize_q8_0(uint8_t *out, const float *x, size_t n);
void mt_ggml_quantize_q4_0(uint8_t *out, const float *x, size_t n);
void mt_ggml_quantize_q4_1(uint8_t *out, const float *x, size_t n);

/* Export dir (MLX layout, model_type llama or mistral; float or affine
 * quantized) to path.  type applies to 2-D weights; norms stay F32.
 * Q4_1 from 4-bit group-32 layers with F16 scales is lossless.
 * Errors: MT_EUNSUPPORTED (family, tokenizer), MT_EIO, MT_ENOMEM, readers'. */
int mt_export_gguf(const char *dir, const char *path, mt_ggml_type type, mt_err *err);

#endif
