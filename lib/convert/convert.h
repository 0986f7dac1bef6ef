/* convert.h - Hugging Face / MLX checkpoint conversion as `mlx_lm.convert`
 * does it (ml-explore/mlx-lm mlx_lm/convert.py, utils.py quantize_model,
 * save_model, make_shards, save_config): dtype casting, affine quantization
 * (uniform, mixed_2_6/3_4/3_6/4_6 recipes, model quant predicates),
 * dequantization, config.json / model.safetensors.index.json written like
 * Python's json.dump, shards of at most 5 GiB, and every safetensors file
 * byte-identical to what mlx_lm on Linux writes (header and data order).
 *
 * Works tensor by tensor from the mmapped source; output goes to a
 * temporary folder next to the destination, renamed into place at the end. */
#ifndef MT_CONVERT_H
#define MT_CONVERT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "io/hub.h"   /* mt_progress_fn */
#include "io/st_write.h"
#include "tensor/dtype.h"

typedef struct mt_convert_opts {
    const char *src;            /* source model folder (float weights, or MLX-quantized for dequantize) */
    const char *dst;            /* output folder; must not exist */
    const char *base_model;     /* hub repo id for the model card's base_model (NULL = local source) */
    int quantize;               /* -q */
    int dequantize;             /* -d */
    int bits;                   /* 0 = 4 */
    int group_size;             /* 0 = 64 (recipes: written as null) */
    const char *dtype;          /* "float16" | "bfloat16" | "float32" | NULL (config torch_dtype) */
    const char *recipe;         /* NULL | "mixed_2_6" | "mixed_3_4" | "mixed_3_6" | "mixed_4_6" */
    const char *skip_regex;     /* PCRE2 pattern: modules (paths) matching it stay float; NULL = none */
    int gpu_rules;              /* quantize with the Metal/CUDA kernel rule */
    uint64_t max_shard_bytes;   /* 0 = 5 GiB (mlx_lm MAX_FILE_SIZE_GB) */
    int threads;                /* quantization threads: 0 = all cores ($MT_THREADS), 1 = none */
    const char *calibrate;      /* calibration text (plain or JSONL "text"): activation-aware
                                 * clipping search (convert/calib.h); NULL = plain mlx_lm rule */
    size_t calib_tokens;        /* calibration tokens, 0 = 4096 */
    mt_progress_fn progress;    /* bytes of output written, per file; may be NULL */
    void *progress_user;
    int mode;                   /* -q: mt_qmode (0 = affine); the fp modes take their own
                                 * bits / group size defaults and no recipe or calibration */
} mt_convert_opts;

/* Convert opts->src into opts->dst.  Errors: MT_EINVAL (destination exists,
 * bad option, recipe on a model without down_proj), MT_EUNSUPPORTED (already
 * quantized source for -q), MT_ENOTFOUND, MT_EIO, MT_ENOMEM,
 * plus reader errors.  On failure nothing is left at dst. */
int mt_convert(const mt_convert_opts *o, mt_err *err);

/* Write text (n bytes) to dir/name inside an output folder being made (the
 * folder is renamed into place whole, so the file itself is written plainly). */
int mt_convert_write_text(const char *dir, const char *name, const char *text, size_t n, mt_err *err);

/* Produce tensor idx's bytes (idx indexes mt_convert_weights.e) into dst.
 * Return 0 or an mt status. */
typedef int (*mt_convert_fill_fn)(void *user, size_t idx, void *dst, mt_err *err);

/* The weights of an output folder, for mt_convert_write_weights. */
typedef struct mt_convert_weights {
    const mt_st_entry *e;       /* the tensors, in module order (mt_convert_name_cmp) */
    size_t n;
    uint64_t params;            /* the index's total_parameters */
    uint64_t max_shard_bytes;   /* 0 = 5 GiB */
    mt_convert_fill_fn fill;    /* called once per tensor, in each shard's data order */
    void *user;
    mt_progress_fn progress;    /* (file, bytes written so far, total bytes) after each
                                 * tensor; may be NULL */
    void *progress_user;
} mt_convert_weights;

/* Write w's tensors into dir as mlx_lm's save_model does: greedy shards in
 * module order of at most max_shard_bytes ("model.safetensors", or
 * "model-0000K-of-0000N.safetensors"), each laid out as MLX on Linux writes it
 * with {"format": "mlx"}, and model.safetensors.index.json (total_size,
 * total_parameters, the weight map sorted).  Errors: MT_ENOMEM, MT_EIO, and
 * those of fill. */
int mt_convert_write_weights(const char *dir, const mt_convert_weights *w, mt_err *err);

/* Serialize v like Python's json.dumps(v, indent=4) (ensure_ascii, float
 * repr, key order kept); sort_top sorts the top-level object's keys.  *out is
 * malloc'd.  Errors: MT_ENOMEM. */
int mt_pyjson_dump(const json_t *v, int sort_top, char **out, size_t *len, mt_err *err);
/* Python repr() of a finite double into buf (>= 32 bytes): "1e-05", "10000.0". */
void mt_py_float_repr(double d, char *buf, size_t n);

/* The position of a weight name in mlx_lm's module tree order (the order of
 * tree_flatten(model.parameters())) for the dense families; a comparator for
 * qsort over `const char *`. model_type selects family quirks (may be NULL). */
int mt_convert_name_cmp(const char *a, const char *b, const char *model_type);

#endif
