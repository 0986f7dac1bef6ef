/* config.h - a model's config.json: typed access by key or dotted path, and
 * the MLX quantization rules (the "quantization" block with per-module
 * overrides, or "quantization_config").
 * ref: ml-explore/mlx-lm mlx_lm/utils.py (load_model), mlx/nn/layers/quantized.py. */
#ifndef MT_CONFIG_H
#define MT_CONFIG_H

#include <jansson.h>

#include "core/err.h"
#include "io/safetensors.h"
#include "tensor/quant.h"   /* mt_quant_params, MT_QMODE_* */

typedef struct mt_config mt_config;

/* Load dir/config.json (or the file itself when dir_or_file is a file).
 * Errors: MT_ENOTFOUND, MT_EIO, MT_EFORMAT (invalid JSON or not an object). */
int mt_config_load(mt_config **out, const char *dir_or_file, mt_err *err);
/* Parse config text held in memory; label names it in messages.  What Python's
 * json module writes but JSON forbids is accepted: NaN (read as null),
 * +-Infinity (read as +-DBL_MAX) and integers beyond 64 bits (read as reals). */
int mt_config_parse(mt_config **out, const char *text, size_t len, const char *label, mt_err *err);
void mt_config_free(mt_config *c);   /* accepts NULL */
/* The dotted path ("rms_norm_eps", "rope_scaling.factor", "a.3") of the first
 * value the file wrote as NaN (which reads as null), or NULL when there is none.
 * Model loaders refuse such a config rather than take a default for it. */
const char *mt_config_nan_key(const mt_config *c);

/* The whole document (borrowed, valid until mt_config_free). */
json_t *mt_config_json(const mt_config *c);
/* "model_type" (borrowed), or NULL when absent / not a string. */
const char *mt_config_model_type(const mt_config *c);
/* Value at key (borrowed) or NULL.  key is a top-level key, or a dotted path
 * ("text_config.hidden_size", "layer_types.3": numeric parts index arrays).
 * A literal top-level key containing dots wins over the path reading. */
json_t *mt_config_get(const mt_config *c, const char *key);

/* Typed getters: absent or null -> *out = def and MT_OK; wrong type ->
 * MT_EFORMAT ("config.json: 'key' must be an integer").  get_int accepts
 * integral reals (4096.0); get_float accepts integers; get_bool accepts
 * true/false and the integers 0/1. */
int mt_config_get_int(const mt_config *c, const char *key, long long def, long long *out, mt_err *err);
int mt_config_get_float(const mt_config *c, const char *key, double def, double *out, mt_err *err);
int mt_config_get_bool(const mt_config *c, const char *key, int def, int *out, mt_err *err);
/* get_int into an int that must lie in lo..hi (the default too): MT_EFORMAT
 * "config.json: 'key' = V is out of range (lo..hi)" otherwise. */
int mt_config_get_int_in(const mt_config *c, const char *key, long long def, long long lo, long long hi, int *out,
                         mt_err *err);
/* String value (borrowed), or def when absent / null / not a string. */
const char *mt_config_get_str(const mt_config *c, const char *key, const char *def);

/* The model-wide quantization: *quantized = 0 when there is no usable block.
 * Block: "quantization", else "quantization_config", else
 * "text_config.quantization_config".  group_size/bits absent or null -> the
 * mode's default; mode absent -> affine.  A quantization_config with a
 * "quant_method" other than mxfp4 (awq, gptq, bitnet, compressed-tensors, ...)
 * stores weights in a non-MLX layout: MT_EUNSUPPORTED.  Invalid values:
 * MT_EFORMAT / MT_EUNSUPPORTED. */
int mt_config_quant_default(const mt_config *c, int *quantized, mt_quant_params *qp, mt_err *err);
/* Quantization of the module at `path` (e.g. "model.layers.0.mlp.down_proj",
 * no ".weight").  The per-module entry of the block wins: false -> not
 * quantized; a dict -> its group_size/bits/mode (missing mode = affine, as
 * nn.quantize does; null/missing group_size or bits = that mode's default);
 * true -> the top-level values.  Otherwise the top-level values.  When st is
 * not NULL, a module without a "<path>.scales" tensor is not quantized (the
 * mlx-lm load rule).  *qp is filled only when *quantized = 1. */
int mt_config_quant_for(const mt_config *c, const mt_safetensors *st, const char *path, int *quantized,
                        mt_quant_params *qp, mt_err *err);

#endif
