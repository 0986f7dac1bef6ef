/* gguf_import.h - a GGUF file (llama.cpp's format) back to an mlx-community
 * model folder: the round trip of export-gguf.  Architectures: llama (with experts:
 * mixtral), qwen2, qwen3, qwen3moe, gemma, gemma2, gemma3, phi3, starcoder2, olmo2,
 * granite, smollm3.
 *
 * Tensors are renamed to the Hugging Face / MLX names (llama.cpp's q/k row
 * permutation undone on weights, scales and biases alike); the 32-element
 * block types Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 become MLX affine group-32
 * layers with the same codes and exact float16 scales and biases (lossless);
 * F32, F16 and BF16 tensors are kept; K-quants are dequantized (to the
 * model's float type) or, with quantize, everything is dequantized and then
 * quantized as mt_convert does.  config.json comes from the GGUF metadata,
 * tokenizer.json is rebuilt from the GGUF vocabulary (byte-level BPE with its
 * merges and llama.cpp's pre-tokenizer for tokenizer.ggml.pre;
 * SentencePiece vocabularies with scores), tokenizer_config.json carries the
 * chat template and special tokens.
 *
 * ref: ggml-org/llama.cpp convert_hf_to_gguf.py (what is undone),
 *      gguf-py gguf/constants.py + tensor_mapping.py (names),
 *      src/llama-vocab.cpp (how llama.cpp tokenizes the vocabulary). */
#ifndef MT_GGUF_IMPORT_H
#define MT_GGUF_IMPORT_H

#include <jansson.h>
#include <stdint.h>

#include "convert/gguf_read.h"
#include "core/err.h"
#include "io/hub.h"   /* mt_progress_fn */

typedef struct mt_import_gguf_opts {
    const char *src;          /* the .gguf file */
    const char *dst;          /* output folder; must not exist */
    const char *dtype;        /* "float16" | "bfloat16" | "float32": dense outputs (dequantized
                               * tensors; with it, float tensors are cast too; "float32" also
                               * stores affine scales/biases as float32, same values); NULL =
                               * bfloat16 if the file has BF16 tensors, else float16 if it has
                               * F16 or quantized ones, else float32 */
    int quantize;             /* dequantize everything, then quantize like mlx-quant convert -q */
    int bits, group_size;     /* with quantize: 0 = 4 / 64 */
    int threads;              /* quantization threads (mt_convert), 0 = all cores */
    mt_progress_fn progress;  /* may be NULL */
    void *progress_user;
} mt_import_gguf_opts;

/* Import o->src into o->dst (written in a temporary folder renamed at the
 * end; nothing is left at dst on failure).  Errors: MT_EINVAL (dst exists),
 * MT_EUNSUPPORTED (architecture, tensor type or tokenizer not handled: the
 * message names it), MT_EFORMAT (a malformed or inconsistent file), MT_EIO,
 * MT_ENOMEM. */
int mt_import_gguf(const mt_import_gguf_opts *o, mt_err *err);

/* The tokenizer files of a GGUF file: *tok = tokenizer.json, *cfg =
 * tokenizer_config.json (both new references).  Errors: MT_EUNSUPPORTED
 * (tokenizer model or pre-tokenizer not handled), MT_EFORMAT (missing or
 * inconsistent tokenizer.ggml.* keys), MT_ENOMEM. */
int mt_gguf_tokenizer_files(const mt_gguf *g, json_t **tok, json_t **cfg, mt_err *err);

/* The tokenizer.ggml.pre name llama.cpp knows for a tokenizer.json pre_tokenizer
 * (the inverse of what import-gguf writes): "gpt-2" (ByteLevel with its regex),
 * "smollm" (individual Digits + ByteLevel), "llama-bpe" / "qwen2" (their Split
 * regex + ByteLevel without regex), else "default". */
const char *mt_gguf_pre_name(const json_t *pre_tokenizer);

/* The values import-gguf stores as the HF tensor hf_name (".weight" or
 * ".bias" name), float32 in HF layout: the GGUF tensor dequantized as ggml
 * does, q/k rows un-permuted.  *out malloc'd (*n floats); *src (may be NULL)
 * the GGUF tensor.  Errors: MT_ENOTFOUND (no tensor maps to hf_name),
 * MT_EUNSUPPORTED (architecture, tensor type), MT_ENOMEM. */
int mt_gguf_hf_tensor(const mt_gguf *g, const char *hf_name, float **out, size_t *n, const mt_gguf_tensor **src,
                      mt_err *err);

/* The shortest decimal that reads back as the float32 f, as a double (GGUF
 * stores hyper-parameters as float32: 1e-05 comes back as 1e-05, not
 * 9.999999747378752e-06). */
double mt_gguf_f32_decimal(float f);

#endif
