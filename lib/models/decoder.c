/* decoder.c - the shared llama-like decoder: hyper-parameters, tensor binding,
 * RoPE variants, KV cache and the forward pass.  Family files only set what
 * differs (norm kind and placement, MLP layout, biases, multipliers,
 * soft-capping, per-layer sliding window / RoPE).
 * ref: mlx_lm/models/llama.py, qwen3.py, gemma2.py, gemma3_text.py, olmo2.py,
 *      granite.py, starcoder2.py, phi3.py, smollm3.py, rope_utils.py. */
#include "models/model.h"
#include "models/decoder_int.h"
#include "models/ple.h"
#include "models/kvcache_int.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/blas.h"
#include "core/cpu.h"
#include "core/file.h"
#include "tensor/dtype.h"
#include "tensor/kernels.h"
#include "tensor/ops.h"

#define ATTN_ROWS_MIN 16 /* default mt_model.attn_block_min (prefill of 16+ rows: sgemm blocks win) */

/* ---- config access ---- */

int mt_cfg_num(json_t *c, const char *key, double def, double *out, int required, mt_err *err) {
    json_t *v = json_object_get(c, key);
    if (!v || json_is_null(v)) {
        if (required) return mt_seterr(err, MT_EFORMAT, "config.json: missing \"%s\"", key);
        *out = def;
        return MT_OK;
    }
    if (!json_is_number(v)) return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" must be a number", key);
    *out = json_number_value(v);
    return MT_OK;
}

int mt_cfg_int(json_t *c, const char *key, int def, int *out, int required, mt_err *err) {
    double d = 0;
    MT_TRY(mt_cfg_num(c, key, def, &d, required, err));
    if (d != floor(d) || d < 0 || d > 1e9)
        return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" must be a non-negative integer", key);
    *out = (int)d;
    return MT_OK;
}

/* A number of object `obj` (NULL: the top level; named in messages as obj.key)
 * in the range `kind` asks for. */
static int real_in(json_t *c, const char *obj, const char *key, double def, double *out, int required, int kind,
                   mt_err *err) {
    json_t *v = json_object_get(c, key);
    const char *dot = obj ? "." : "";
    if (!obj) obj = "";
    if (!v || json_is_null(v)) {
        if (required) return mt_seterr(err, MT_EFORMAT, "config.json: missing \"%s%s%s\"", obj, dot, key);
        *out = def;
        return MT_OK;
    }
    if (!json_is_number(v)) return mt_seterr(err, MT_EFORMAT, "config.json: \"%s%s%s\" must be a number", obj, dot, key);
    double d = json_number_value(v);
    /* +-Infinity reads as +-DBL_MAX (mt_config_parse): out of float range is not finite */
    int ok = fabs(d) <= FLT_MAX && (kind == MT_CFG_FINITE || (kind == MT_CFG_NONNEG ? d >= 0 : d > 0));
    if (!ok)
        return mt_seterr(err, MT_EFORMAT, "config.json: \"%s%s%s\" must be a %s number (got %g)", obj, dot, key,
                         kind == MT_CFG_FINITE ? "finite" : kind == MT_CFG_NONNEG ? "finite, non-negative" : "finite, positive",
                         d);
    *out = d;
    return MT_OK;
}

int mt_cfg_real(json_t *c, const char *key, double def, double *out, int required, int kind, mt_err *err) {
    return real_in(c, NULL, key, def, out, required, kind, err);
}

int mt_cfg_count(json_t *c, const char *key, int def, int *out, int required, mt_err *err) {
    json_t *v = json_object_get(c, key);
    double d = def;
    if (v && !json_is_null(v)) {
        if (!json_is_number(v)) return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" must be a number", key);
        d = json_number_value(v);
    } else if (required) {
        return mt_seterr(err, MT_EFORMAT, "config.json: missing \"%s\"", key);
    }
    if (d != floor(d) || d < 1 || d > 1e9)
        return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" must be a positive integer (got %g)", key, d);
    *out = (int)d;
    return MT_OK;
}

int mt_cfg_check_nan(const mt_config *cfg, mt_err *err) {
    const char *k = mt_config_nan_key(cfg);
    return k ? mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" is NaN", k) : MT_OK;
}

/* eos_token_id of a config (an id or a list of ids) as the prompter reads it
 * (text/prompter.c): 1 when present, and every id must be in [0, vocab). */
static int eos_in(json_t *v, const char *file, const char *key, int vocab, int *present, mt_err *err) {
    *present = json_is_integer(v) || (json_is_array(v) && json_array_size(v) > 0);
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    for (size_t i = 0; *present && i < n; i++) {
        json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        if (json_is_integer(e) && (json_integer_value(e) < 0 || json_integer_value(e) >= vocab))
            return mt_seterr(err, MT_EFORMAT, "%s: \"%s\" %lld is outside the vocabulary [0, %d)", file, key,
                             (long long)json_integer_value(e), vocab);
    }
    return MT_OK;
}

/* The end-of-sequence ids generation stops at: generation_config.json's, else
 * config.json's (or its text_config's), as the prompter picks them. */
static int check_eos(mt_model *m, const char *dir, mt_err *err) {
    int present = 0, vocab = m->hp.vocab;
    char *gp = mt_is_dir(dir) ? mt_path_join(dir, "generation_config.json") : NULL;
    if (gp && mt_file_exists(gp)) {
        mt_config *g = NULL;
        int rc = mt_config_load(&g, gp, err);
        if (!rc) rc = eos_in(mt_config_get(g, "eos_token_id"), "generation_config.json", "eos_token_id", vocab,
                             &present, err);
        mt_config_free(g);
        if (rc) { free(gp); return rc; }
    }
    free(gp);
    if (present) return MT_OK;
    json_t *c = mt_config_json(m->cfg);
    MT_TRY(eos_in(json_object_get(c, "eos_token_id"), "config.json", "eos_token_id", vocab, &present, err));
    if (!present)
        MT_TRY(eos_in(json_object_get(json_object_get(c, "text_config"), "eos_token_id"), "config.json",
                      "text_config.eos_token_id", vocab, &present, err));
    return MT_OK;
}

int mt_cfg_bool(json_t *c, const char *key, int def, int *out, mt_err *err) {
    json_t *v = json_object_get(c, key);
    if (!v || json_is_null(v)) { *out = def; return MT_OK; }
    if (!json_is_boolean(v)) return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" must be true or false", key);
    *out = json_is_true(v);
    return MT_OK;
}

int mt_decoder_read_hp(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    mt_decoder_hp *hp = &m->hp;
    memset(hp, 0, sizeof *hp);
    double eps = 0, theta = 0, maxp = 0, origp = 0;
    MT_TRY(mt_cfg_check_nan(m->cfg, err));
    MT_TRY(mt_cfg_count(c, "num_hidden_layers", 0, &hp->n_layers, 1, err));
    MT_TRY(mt_cfg_count(c, "hidden_size", 0, &hp->hidden, 1, err));
    MT_TRY(mt_cfg_count(c, "num_attention_heads", 0, &hp->n_heads, 1, err));
    MT_TRY(mt_cfg_count(c, "num_key_value_heads", hp->n_heads, &hp->n_kv_heads, 0, err));
    MT_TRY(mt_cfg_count(c, "intermediate_size", 0, &hp->inter, 1, err));
    MT_TRY(mt_cfg_count(c, "vocab_size", 0, &hp->vocab, 1, err));
    if (hp->n_heads % hp->n_kv_heads)
        return mt_seterr(err, MT_EFORMAT, "config.json: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                         hp->n_heads, hp->n_kv_heads);
    if (hp->hidden < hp->n_heads && !json_is_number(json_object_get(c, "head_dim")))
        return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size %d is less than num_attention_heads %d and no \"head_dim\" is given",
                         hp->hidden, hp->n_heads);
    MT_TRY(mt_cfg_count(c, "head_dim", hp->hidden / hp->n_heads, &hp->head_dim, 0, err));
    MT_TRY(mt_cfg_real(c, "rms_norm_eps", 1e-6, &eps, 0, MT_CFG_NONNEG, err));
    MT_TRY(mt_cfg_real(c, "rope_theta", 10000.0, &theta, 0, MT_CFG_POS, err));
    MT_TRY(mt_cfg_real(c, "max_position_embeddings", 0, &maxp, 0, MT_CFG_POS, err));
    MT_TRY(mt_cfg_real(c, "original_max_position_embeddings", 4096, &origp, 0, MT_CFG_POS, err));
    hp->norm_eps = (float)eps;
    hp->rope_theta = (float)theta;
    MT_TRY(mt_cfg_bool(c, "rope_traditional", 0, &hp->rope_traditional, err));
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 1, &hp->tie_embeddings, err));
    MT_TRY(mt_cfg_bool(c, "use_bidirectional_attention", 0, &hp->bidirectional, err));
    MT_TRY(mt_cfg_bool(c, "attention_bias", 0, &hp->attn_bias, err));
    MT_TRY(mt_cfg_bool(c, "mlp_bias", 0, &hp->mlp_bias, err));
    hp->o_bias = hp->attn_bias;
    m->rope_scaling = json_object_get(c, "rope_scaling");
    m->rope_scaling_key = "rope_scaling";
    hp->rot_dims = hp->head_dim;
    hp->attn_scale = 0;   /* bind: head_dim^-0.5 unless the family set one */
    hp->embed_scale = hp->residual_scale = hp->logits_div = 1.0f;
    return MT_OK;
}

/* mlx-lm 0.32's ModelArgs: BaseModelArgs.from_dict keeps only the fields a family declares.
 * Only qwen3 declares rope_parameters (its __post_init__: rope_theta, when None, from
 * rope_parameters["rope_theta"]; rope_scaling, when None, = rope_parameters; then no
 * rope_theta raises); granite and qwen3_moe declare rope_theta without a default. */
int mt_decoder_rope_source(mt_model *m, int how, double def, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    json_t *rt = json_object_get(c, "rope_theta"), *rp = json_object_get(c, "rope_parameters");
    int top = rt && !json_is_null(rt);
    double theta = def;
    if (top) MT_TRY(mt_cfg_real(c, "rope_theta", def, &theta, 1, MT_CFG_POS, err));
    if (how == MT_ROPE_PARAMS && rp && !json_is_null(rp)) {
        if (!json_is_object(rp)) return mt_seterr(err, MT_EFORMAT, "config.json: \"rope_parameters\" must be an object");
        if (json_object_size(rp) > 0) {
            json_t *pt = json_object_get(rp, "rope_theta");
            if (!top && pt && !json_is_null(pt)) {
                MT_TRY(real_in(rp, "rope_parameters", "rope_theta", 0, &theta, 1, MT_CFG_POS, err));
                top = 1;
            }
            json_t *rs = json_object_get(c, "rope_scaling");
            if (!rs || json_is_null(rs)) {
                m->rope_scaling = rp;
                m->rope_scaling_key = "rope_parameters";
            }
        }
    }
    if (!top && how != MT_ROPE_TOP) {
        if (how == MT_ROPE_PARAMS)
            return mt_seterr(err, MT_EFORMAT, "config.json: no \"rope_theta\", at the top level or in \"rope_parameters\"");
        return mt_seterr(err, MT_EFORMAT, "config.json: missing \"rope_theta\"%s", json_is_object(rp)
                         ? " (mlx-lm reads it only at the top level for this model_type, not from the "
                           "transformers-5 \"rope_parameters\")" : "");
    }
    m->hp.rope_theta = (float)theta;
    return MT_OK;
}

int mt_decoder_layer_types(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    json_t *lt = json_object_get(c, "layer_types"), *sw = json_object_get(c, "sliding_window");
    if (lt && !json_is_null(lt) && (!json_is_array(lt) || json_array_size(lt) != (size_t)m->hp.n_layers))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\" must list %d layers", m->hp.n_layers);
    for (int i = 0; json_is_array(lt) && i < m->hp.n_layers; i++) {
        json_t *t = json_array_get(lt, (size_t)i);
        if (!json_is_string(t)) return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\"[%d] is not a string", i);
        m->layers[i].sliding = !strcmp(json_string_value(t), "sliding_attention");
        if (m->layers[i].sliding && !(json_is_integer(sw) && json_integer_value(sw) > 0))
            return mt_seterr(err, MT_EFORMAT, "config.json: sliding layers need a positive \"sliding_window\"");
    }
    if (json_is_integer(sw) && json_integer_value(sw) > 0 && json_integer_value(sw) <= INT_MAX)
        m->hp.sliding_window = (int)json_integer_value(sw);
    return MT_OK;
}

/* ---- RoPE ---- */

/* mt_rope_freqs with rs named rsk in messages */
static int rope_freqs(float *inv_freq, float *in_scale, int d, float base, json_t *rs, const char *rsk,
                      double max_pos, double orig_max_pos, mt_err *err) {
    int half = d / 2;
    *in_scale = 1.0f;
    /* periods ("freqs" in mlx_lm): base^(2i/d) in float32, like mx.arange(0, d, 2) / d */
    float period[half > 0 ? half : 1];
    for (int i = 0; i < half; i++) period[i] = powf(base, (float)(2 * i) / (float)d);
    const char *type = "default";
    if (json_is_object(rs)) {
        json_t *t = json_object_get(rs, "type");
        if (!json_is_string(t)) t = json_object_get(rs, "rope_type");
        if (json_is_string(t)) type = json_string_value(t);
    }
    double factor = 1.0;
    if (!(base > 0) || !isfinite(base))
        return mt_seterr(err, MT_EFORMAT, "config.json: RoPE base %g must be a finite, positive number", (double)base);
    if (json_is_object(rs) && strcmp(type, "default") != 0 && strcmp(type, "longrope") != 0 && strcmp(type, "su") != 0 &&
        strcmp(type, "mrope") != 0)
        MT_TRY(real_in(rs, rsk, "factor", 1.0, &factor, 1, MT_CFG_POS, err));
    /* "mrope" (qwen2_vl): the default frequencies; mt_decoder_bind reads its sections */
    if (!strcmp(type, "default") || !strcmp(type, "linear") || !strcmp(type, "dynamic") || !strcmp(type, "mrope")) {
        /* "dynamic": these are the frequencies up to max_position_embeddings; past it the
         * forward pass recomputes them per call (mlx_lm DynamicNTKScalingRoPE) */
        float scale = !strcmp(type, "linear") ? (float)(1.0 / factor) : 1.0f;
        for (int i = 0; i < half; i++) inv_freq[i] = scale / period[i];
    } else if (!strcmp(type, "llama3")) {
        double lo = 1, hi = 4, old = 8192;
        MT_TRY(real_in(rs, rsk, "low_freq_factor", 1.0, &lo, 0, MT_CFG_POS, err));
        MT_TRY(real_in(rs, rsk, "high_freq_factor", 4.0, &hi, 0, MT_CFG_POS, err));
        MT_TRY(real_in(rs, rsk, "original_max_position_embeddings", 8192, &old, 0, MT_CFG_POS, err));
        float lo_wl = (float)(old / lo), hi_wl = (float)(old / hi);
        for (int i = 0; i < half; i++) {
            float f = period[i], wl = 2.0f * (float)M_PI * f;
            float fr = wl > lo_wl ? f * (float)factor : f;
            if (wl > hi_wl && wl < lo_wl) {
                float sm = ((float)old / wl - (float)lo) / ((float)hi - (float)lo);
                fr = fr / ((1.0f - sm) / (float)factor + sm);
            }
            inv_freq[i] = 1.0f / fr;
        }
    } else if (!strcmp(type, "yarn") || !strcmp(type, "deepseek_yarn")) {
        double orig = 4096, bf = 32, bs = 1, ms = 1, msad = 0;
        MT_TRY(real_in(rs, rsk, "original_max_position_embeddings", 4096, &orig, 0, MT_CFG_POS, err));
        MT_TRY(real_in(rs, rsk, "beta_fast", 32, &bf, 0, MT_CFG_POS, err));
        MT_TRY(real_in(rs, rsk, "beta_slow", 1, &bs, 0, MT_CFG_POS, err));
        MT_TRY(real_in(rs, rsk, "mscale", 1, &ms, 0, MT_CFG_FINITE, err));
        MT_TRY(real_in(rs, rsk, "mscale_all_dim", 0, &msad, 0, MT_CFG_FINITE, err));
        double lb = log(base);
        double low = floor((d * log(orig / (bf * 2 * M_PI))) / (2 * lb));
        double high = ceil((d * log(orig / (bs * 2 * M_PI))) / (2 * lb));
        if (low < 0) low = 0;
        if (high > d - 1) high = d - 1;
        if (low == high) high += 0.001;
        double m1 = factor <= 1 ? 1.0 : 0.1 * ms * log(factor) + 1.0;
        double m2 = factor <= 1 ? 1.0 : 0.1 * msad * log(factor) + 1.0;
        *in_scale = (float)(m1 / m2);
        for (int i = 0; i < half; i++) {
            float ramp = (float)(((float)i - low) / (high - low));
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            float mask = 1.0f - ramp;
            float fe = period[i], fi = (float)factor * fe;
            inv_freq[i] = 1.0f / ((fi * fe) / (fi * mask + fe * (1 - mask)));
        }
    } else if (!strcmp(type, "longrope") || !strcmp(type, "su")) {
        /* mlx_lm SuScaledRoPE: the long factors always apply */
        json_t *lf = json_object_get(rs, "long_factor");
        for (int i = 0; i < half; i++) {
            double f = 1.0;
            if (json_is_array(lf)) {
                if (json_array_size(lf) != (size_t)half)
                    return mt_seterr(err, MT_EFORMAT, "config.json: %s.long_factor must have %d entries", rsk, half);
                json_t *e = json_array_get(lf, (size_t)i);
                if (!json_is_number(e)) return mt_seterr(err, MT_EFORMAT, "config.json: %s.long_factor must hold numbers", rsk);
                f = json_number_value(e);
            } else if (json_is_number(lf)) f = json_number_value(lf);
            if (!(f > 0) || f > FLT_MAX)
                return mt_seterr(err, MT_EFORMAT, "config.json: \"%s.long_factor\" must hold finite, positive numbers (got %g)", rsk, f);
            inv_freq[i] = 1.0f / ((float)f * period[i]);
        }
        double lms = 0;
        MT_TRY(real_in(rs, rsk, "long_mscale", 0, &lms, 0, MT_CFG_FINITE, err));
        double fac = max_pos / orig_max_pos;
        *in_scale = lms != 0 ? (float)lms : fac <= 1.0 ? 1.0f : (float)sqrt(1 + log(fac) / log(orig_max_pos));
    } else {
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: %s type \"%s\" is not supported yet", rsk, type);
    }
    return MT_OK;
}

int mt_rope_freqs(float *inv_freq, float *in_scale, int d, float base, json_t *rs, double max_pos,
                  double orig_max_pos, mt_err *err) {
    return rope_freqs(inv_freq, in_scale, d, base, rs, "rope_scaling", max_pos, orig_max_pos, err);
}

/* ---- tensor binding ---- */

static int bind_vec(mt_model *m, const char *name, size_t n, float **out, int required, mt_err *err) {
    *out = NULL;
    const mt_tensor_view *t = mt_safetensors_get(m->st, name);
    char buf[320];   /* in messages: the checkpoint's name (a family's renames) */
    const char *shown = m->st ? mt_safetensors_renamed(m->st, name, buf, sizeof buf) : NULL;
    if (!shown) shown = name;
    if (!t) return required ? mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", shown) : MT_OK;
    if (t->ndim != 1 || (size_t)t->shape[0] != n)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected shape [%zu]", shown, n);
    *out = malloc(n * sizeof(float));
    if (!*out) return mt_seterr(err, MT_ENOMEM, "out of memory");
    return mt_safetensors_read_f32(m->st, name, *out, n, 0, err);
}

/* Norm `prefix`.weight (+ .bias for LayerNorm); norm type decides the form. */
int mt_dec_bind_norm(mt_model *m, const char *prefix, size_t n, mt_norm *out, mt_err *err) {
    char name[320];
    if (m->hp.norm_noaffine) {   /* weight 1, no bias */
        if (!(out->w = malloc(n * sizeof(float)))) return mt_seterr(err, MT_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) out->w[i] = 1.0f;
        return MT_OK;
    }
    snprintf(name, sizeof name, "%s.weight", prefix);
    MT_TRY(bind_vec(m, name, n, &out->w, 1, err));
    if (m->hp.norm_type == MT_NORM_RMS_P1 || m->hp.norm_type == MT_NORM_LAYER_P1)
        for (size_t i = 0; i < n; i++) out->w[i] += 1.0f;
    if ((m->hp.norm_type == MT_NORM_LAYER || m->hp.norm_type == MT_NORM_LAYER_P1) && !m->hp.norm_nobias) {
        snprintf(name, sizeof name, "%s.bias", prefix);
        MT_TRY(bind_vec(m, name, n, &out->b, 1, err));
    }
    return MT_OK;
}

void mt_dec_norm_free(mt_norm *n) { free(n->w); free(n->b); }

/* MT_QKNORM_HEAD_EACH: `prefix`.weight of shape [heads, hd] (no bias) */
static int head_norm(mt_model *m, const char *prefix, size_t heads, size_t hd, mt_norm *out, mt_err *err) {
    char name[320];
    snprintf(name, sizeof name, "%s.weight", prefix);
    const mt_tensor_view *t = mt_safetensors_get(m->st, name);
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
    if (t->ndim != 2 || (size_t)t->shape[0] != heads || (size_t)t->shape[1] != hd)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected shape [%zu, %zu]", name, heads, hd);
    if (!(out->w = malloc(heads * hd * sizeof(float)))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    return mt_safetensors_read_f32(m->st, name, out->w, heads * hd, 0, err);
}

void mt_dec_norm(const mt_model *m, const mt_norm *nm, float *out, const float *x, size_t T, size_t n) {
    for (size_t t = 0; t < T; t++) {
        if (m->hp.norm_type >= MT_NORM_LAYER) mt_layernorm(out + t * n, x + t * n, nm->w, nm->b, n, m->hp.norm_eps);
        else mt_rmsnorm(out + t * n, x + t * n, nm->w, n, m->hp.norm_eps);
    }
}

/* m->ctx_len: max_position_embeddings when the config has it; a linear or yarn
 * rope_scaling factor > 1 stretches it (yarn: from its original_max_position_embeddings),
 * as vLLM's max_model_len; llama3 and longrope configs give the stretched length as
 * max_position_embeddings already.  Dynamic NTK scaling grows the RoPE base with the
 * length, for any length (mlx-lm's DynamicNTKScalingRoPE): no limit. */
static int context_len(mt_model *m, json_t *c, json_t *rs, mt_err *err) {
    m->ctx_len = 0;
    m->ctx_why[0] = 0;
    double maxp = 0;
    if (!json_is_number(json_object_get(c, "max_position_embeddings"))) return MT_OK;
    MT_TRY(mt_cfg_real(c, "max_position_embeddings", 0, &maxp, 1, MT_CFG_POS, err));
    double ctx = maxp;
    snprintf(m->ctx_why, sizeof m->ctx_why, "max_position_embeddings");
    const char *type = NULL;
    if (json_is_object(rs)) {
        type = json_string_value(json_object_get(rs, "type"));
        if (!type) type = json_string_value(json_object_get(rs, "rope_type"));
    }
    if (type && !strcmp(type, "dynamic")) {
        m->ctx_why[0] = 0;
        return MT_OK;
    }
    double f = 1;
    if (type && (!strcmp(type, "linear") || !strcmp(type, "yarn")) &&
        json_is_number(json_object_get(rs, "factor")) && (f = json_number_value(json_object_get(rs, "factor"))) > 1) {
        double base = maxp;
        if (!strcmp(type, "yarn")) MT_TRY(real_in(rs, m->rope_scaling_key, "original_max_position_embeddings", maxp, &base, 0, MT_CFG_POS, err));
        if (base * f > ctx) {
            ctx = base * f;
            snprintf(m->ctx_why, sizeof m->ctx_why, "%s %.0f x %s factor %g",
                     !strcmp(type, "yarn") && base != maxp ? "original_max_position_embeddings" : "max_position_embeddings",
                     base, m->rope_scaling_key, f);
        }
    }
    m->ctx_len = ctx >= (double)SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)ctx;
    return MT_OK;
}

int mt_decoder_bind(mt_model *m, mt_err *err) {
    mt_decoder_hp *hp = &m->hp;
    json_t *c = mt_config_json(m->cfg);
    if (!hp->head_dim || hp->head_dim % 2 || hp->head_dim > 1024)
        return mt_seterr(err, MT_EFORMAT, "config.json: head_dim %d must be even, positive and at most 1024", hp->head_dim);
    if (hp->rot_dims <= 0 || hp->rot_dims > hp->head_dim || hp->rot_dims % 2)
        return mt_seterr(err, MT_EFORMAT, "config.json: rotary dimensions %d do not fit head_dim %d", hp->rot_dims, hp->head_dim);
    if (hp->attn_scale == 0) hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    size_t H = (size_t)hp->hidden, hd = (size_t)hp->head_dim, qd = (size_t)hp->n_heads * hd, kvd = (size_t)hp->n_kv_heads * hd;
    size_t I = (size_t)hp->inter, V = (size_t)hp->vocab;

    m->inv_freq = malloc((size_t)hp->rot_dims / 2 * sizeof(float));
    if (!m->inv_freq) return mt_seterr(err, MT_ENOMEM, "out of memory");
    double maxp = 0, origp = 0;
    MT_TRY(mt_cfg_real(c, "max_position_embeddings", 131072, &maxp, 0, MT_CFG_POS, err));
    MT_TRY(mt_cfg_real(c, "original_max_position_embeddings", 4096, &origp, 0, MT_CFG_POS, err));
    json_t *rs = m->rope_scaling;
    MT_TRY(rope_freqs(m->inv_freq, &m->rope_in_scale, hp->rot_dims, hp->rope_theta, rs, m->rope_scaling_key, maxp,
                      origp, err));
    json_t *rt = json_is_object(rs) ? json_object_get(rs, "type") : NULL;
    if (!json_is_string(rt) && json_is_object(rs)) rt = json_object_get(rs, "rope_type");
    if (json_is_string(rt) && !strcmp(json_string_value(rt), "dynamic")) {
        double f = 1;
        MT_TRY(real_in(rs, m->rope_scaling_key, "factor", 1, &f, 1, MT_CFG_POS, err));
        if (!json_is_number(json_object_get(c, "max_position_embeddings")))
            return mt_seterr(err, MT_EFORMAT, "config.json: dynamic rope scaling needs max_position_embeddings");
        hp->dyn_factor = (float)f;
        hp->dyn_max_pos = (int)maxp;
    }

    MT_TRY(context_len(m, c, rs, err));
    /* M-RoPE: mlx-vlm's qwen2_vl / qwen2_5_vl text models take "mrope_section" (3 counts) from
     * rope_scaling whatever its type says (rope_utils.py _chunked_position_selector) */
    json_t *ms = json_is_object(rs) ? json_object_get(rs, "mrope_section") : NULL;
    if (ms) {
        if (!json_is_array(ms) || json_array_size(ms) != 3)
            return mt_seterr(err, MT_EFORMAT, "config.json: %s.mrope_section must hold 3 counts", m->rope_scaling_key);
        for (int i = 0; i < 3; i++) {
            json_t *e = json_array_get(ms, (size_t)i);
            if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > hp->rot_dims)
                return mt_seterr(err, MT_EFORMAT, "config.json: %s.mrope_section must hold counts within 0..%d",
                                 m->rope_scaling_key, hp->rot_dims);
            m->mrope[i] = (int)json_integer_value(e);
        }
    }

    const char *head = m->head_name ? m->head_name : "lm_head";
    char p[256];
    snprintf(p, sizeof p, "%s.weight", head);
    MT_TRY(mt_linear_bind(&m->embed, m->st, m->cfg, m->embed_name ? m->embed_name : "model.embed_tokens", V, H, -1, err));
    if (hp->tie_embeddings && (hp->tie_always || !mt_safetensors_get(m->st, p))) m->lm_head = m->embed;
    else MT_TRY(mt_linear_bind(&m->lm_head, m->st, m->cfg, head, V, H, hp->lm_head_bias ? 1 : -1, err));
    if (hp->n_positions)   /* learned positions (gpt2) */
        MT_TRY(mt_linear_bind(&m->pos_embed, m->st, m->cfg, "model.embed_positions", (size_t)hp->n_positions, H, -1, err));
    MT_TRY(mt_dec_bind_norm(m, m->final_norm_name ? m->final_norm_name : "model.norm", H, &m->final_norm, err));
    m->layers = calloc((size_t)hp->n_layers, sizeof *m->layers);
    if (!m->layers) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int ab = hp->attn_bias ? 1 : -1, ob = hp->o_bias ? 1 : -1, mb = hp->mlp_bias ? 1 : -1;
    for (int i = 0; i < hp->n_layers; i++) {
        mt_layer *L = &m->layers[i];
        L->use_rope = 1;
        L->inv_freq = m->inv_freq;
        L->rope_in_scale = m->rope_in_scale;
        L->kv_from = -1;
#define LIN(field, sub, o, in, bias) \
    do { snprintf(p, sizeof p, "model.layers.%d.%s", i, sub); \
         MT_TRY(mt_linear_bind(&L->field, m->st, m->cfg, p, o, in, bias, err)); } while (0)
#define NORM(field, sub) \
    do { snprintf(p, sizeof p, "model.layers.%d.%s", i, sub); MT_TRY(mt_dec_bind_norm(m, p, H, &L->field, err)); } while (0)
        int bound = 0;
        if (m->bind_layer) MT_TRY(m->bind_layer(m, i, &bound, err));
        if (!(bound & MT_BOUND_ATTN)) {
            if (hp->fused_qkv) LIN(qkv, "self_attn.qkv_proj", qd + 2 * kvd, H, ab);
            else {
                LIN(q, "self_attn.q_proj", hp->attn_out_gate ? 2 * qd : qd, H, ab);
                LIN(k, "self_attn.k_proj", kvd, H, ab);
                LIN(v, "self_attn.v_proj", kvd, H, ab);
            }
            LIN(o, "self_attn.o_proj", H, qd, ob);
        }
        if (bound & MT_BOUND_MLP) {
        } else if (m->moe_layer && m->moe_layer(m, i)) {
            snprintf(p, sizeof p, "model.layers.%d.%s", i, m->moe_prefix);
            MT_TRY(mt_decoder_bind_moe(m, i, p, err));
        } else if (hp->mlp == MT_MLP_GATED) {
            LIN(gate, "mlp.gate_proj", I, H, mb);
            LIN(up, "mlp.up_proj", I, H, mb);
            LIN(down, "mlp.down_proj", H, I, mb);
        } else if (hp->mlp == MT_MLP_GATED_FUSED) {
            LIN(gate, "mlp.gate_up_proj", 2 * I, H, mb);
            LIN(down, "mlp.down_proj", H, I, mb);
        } else {
            LIN(gate, "mlp.c_fc", I, H, mb);
            LIN(down, "mlp.c_proj", H, I, mb);
        }
        if (!(bound & MT_BOUND_NORMS)) {
            if (hp->block != MT_BLOCK_POST) NORM(n1, "input_layernorm");
            if (hp->block != MT_BLOCK_PARALLEL) NORM(n2, "post_attention_layernorm");
            if (hp->block == MT_BLOCK_SANDWICH) NORM(n3, "pre_feedforward_layernorm");
            if (hp->block == MT_BLOCK_SANDWICH || hp->block == MT_BLOCK_POST)
                NORM(n4, "post_feedforward_layernorm");
        }
#undef LIN
#undef NORM
        if (hp->qk_norm && !L->q_norm.w && !(bound & MT_BOUND_ATTN)) {   /* (or bound by the family) */
            size_t qn = hp->qk_norm == MT_QKNORM_HEAD ? hd : qd, kn = hp->qk_norm == MT_QKNORM_HEAD ? hd : kvd;
            int each = hp->qk_norm == MT_QKNORM_HEAD_EACH;   /* [heads, head_dim] weights */
            snprintf(p, sizeof p, "model.layers.%d.self_attn.q_norm", i);
            MT_TRY(each ? head_norm(m, p, (size_t)hp->n_heads, hd, &L->q_norm, err) : mt_dec_bind_norm(m, p, qn, &L->q_norm, err));
            snprintf(p, sizeof p, "model.layers.%d.self_attn.k_norm", i);
            MT_TRY(each ? head_norm(m, p, (size_t)hp->n_kv_heads, hd, &L->k_norm, err) : mt_dec_bind_norm(m, p, kn, &L->k_norm, err));
        }
    }
    m->max_in = H > qd ? H : qd;
    if (I > m->max_in) m->max_in = I;
    if ((size_t)hp->moe_inter > m->max_in) m->max_in = (size_t)hp->moe_inter;
    if ((size_t)hp->moe_shared_inter > m->max_in) m->max_in = (size_t)hp->moe_shared_inter;
    return MT_OK;
}

/* ---- load / free ---- */

/* An unknown model_type: one line naming it and the nearest supported ones. */
static int unsupported(const char *mt, mt_err *err) {
    const char *near[3];
    size_t nn = mt_family_nearest(mt, near, 3);
    return mt_seterr(err, MT_EUNSUPPORTED, "model_type \"%s\" is not supported; nearest supported: %s%s%s%s%s "
                     "(mlx-gen --list-models lists them all)", mt, nn > 0 ? near[0] : "", nn > 1 ? ", " : "",
                     nn > 1 ? near[1] : "", nn > 2 ? ", " : "", nn > 2 ? near[2] : "");
}

/* the family's init and the checks after it, on m->cfg and m->st */
static int model_init(mt_model *m, const char *dir, mt_err *err) {
    const char *mt = mt_config_model_type(m->cfg);
    if (!mt) return mt_seterr(err, MT_EFORMAT, "config.json: no \"model_type\"");
    snprintf(m->model_type, sizeof m->model_type, "%s", mt);
    const mt_family *fam = mt_family_find(mt);
    if (!fam) return unsupported(mt, err);
    MT_TRY(fam->init(m, err));
    return check_eos(m, dir, err);
}

static mt_model *model_new(mt_pool *pool) {
    mt_model *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->pool = pool;
    m->attn_block_min = ATTN_ROWS_MIN;
    return m;
}

int mt_model_load(mt_model **out, const char *dir, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_model *m = model_new(pool);
    if (!m) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = mt_config_load(&m->cfg, dir, err);
    if (!rc && !mt_config_model_type(m->cfg)) rc = mt_seterr(err, MT_EFORMAT, "config.json: no \"model_type\"");
    if (!rc && !mt_family_find(mt_config_model_type(m->cfg)))
        rc = unsupported(mt_config_model_type(m->cfg), err);
    if (!rc) rc = mt_safetensors_open_dir(&m->st, dir, err);
    if (!rc) rc = model_init(m, dir, err);
    if (rc) {
        mt_preferr(err, "%s", dir);
        mt_model_free(m);
        return rc;
    }
    *out = m;
    return MT_OK;
}

/* The text config of a multimodal folder as a config of its own (mt_text_spec). */
/* key, or "a.b" for the object b inside the object a (qwen3_asr: "thinker_config.text_config") */
static json_t *cfg_sub(json_t *top, const char *key) {
    const char *dot = strchr(key, '.');
    if (!dot) return json_object_get(top, key);
    json_t *o = json_object_getn(top, key, (size_t)(dot - key));
    return json_is_object(o) ? cfg_sub(o, dot + 1) : NULL;
}

static int text_config(mt_config **out, json_t *top, const mt_text_spec *sp, mt_err *err) {
    json_t *sub = sp->cfg_key ? cfg_sub(top, sp->cfg_key) : top;
    if (!json_is_object(sub)) return mt_seterr(err, MT_EFORMAT, "config.json: no \"%s\" object", sp->cfg_key);
    json_t *c = json_deep_copy(sub);
    if (!c) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!sp->cfg_key) {   /* the quantization keys come back below, renamed for the decoder */
        json_object_del(c, "vision_config");
        json_object_del(c, "quantization");
        json_object_del(c, "quantization_config");
    }
    for (int k = 0; k < 2; k++) {
        const char *src = k ? sp->force : sp->defaults;
        if (!src) continue;
        json_error_t je;
        json_t *d = json_loads(src, 0, &je);
        if (!json_is_object(d)) {
            json_decref(d);
            json_decref(c);
            return mt_seterr(err, MT_EINVAL, "internal: bad text-config defaults");
        }
        if (k) json_object_update(c, d);
        else json_object_update_missing(c, d);
        json_decref(d);
    }
    if (sp->head_dim_from_hidden) {
        json_t *h = json_object_get(c, "hidden_size"), *n = json_object_get(c, "num_attention_heads");
        if (json_is_integer(h) && json_is_integer(n) && json_integer_value(n) > 0)
            json_object_set_new(c, "head_dim", json_integer(json_integer_value(h) / json_integer_value(n)));
    }
    static const char *const qkeys[] = {"quantization", "quantization_config"};
    size_t al = strlen(sp->add);
    for (int k = 0; k < 2; k++) {
        json_t *q = json_object_get(top, qkeys[k]);
        if (!json_is_object(q) || json_object_get(c, qkeys[k])) continue;
        json_t *nq = json_object();
        const char *key;
        json_t *v;
        json_object_foreach(q, key, v) {
            if (!json_is_object(v) && !json_is_boolean(v)) json_object_set(nq, key, v);   /* bits, group_size, mode */
            else if (!strncmp(key, sp->add, al)) {
                char nk[512];
                int n = snprintf(nk, sizeof nk, "%s%s", strncmp(key + al, "lm_head", 7) ? (sp->strip ? sp->strip : "") : "",
                                 key + al);
                if (n > 0 && (size_t)n < sizeof nk) json_object_set(nq, nk, v);
            }
        }
        json_object_set_new(c, qkeys[k], nq);
    }
    json_t *eos = json_object_get(top, "eos_token_id");
    if (eos && !json_object_get(c, "eos_token_id")) json_object_set(c, "eos_token_id", eos);
    char *text = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    if (!text) return mt_seterr(err, MT_ENOMEM, "out of memory");
    char label[96];
    snprintf(label, sizeof label, "config.json %.40s", sp->cfg_key ? sp->cfg_key : "(text keys)");
    int rc = mt_config_parse(out, text, strlen(text), label, err);
    free(text);
    return rc;
}

int mt_model_load_text(mt_model **out, const char *dir, const mt_text_spec *spec, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_config *top = NULL;
    mt_model *m = model_new(pool);
    int rc = m ? MT_OK : mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) rc = mt_config_load(&top, dir, err);
    if (!rc) rc = text_config(&m->cfg, mt_config_json(top), spec, err);
    if (!rc) rc = mt_safetensors_open_dir(&m->st, dir, err);
    if (!rc) rc = mt_safetensors_set_prefix(m->st, spec->strip, spec->add, err);
    if (!rc) rc = model_init(m, dir, err);
    mt_config_free(top);
    if (rc) {
        mt_preferr(err, "%s", dir);
        mt_model_free(m);
        return rc;
    }
    *out = m;
    return MT_OK;
}

int mt_model_use_text(mt_model *m, const mt_text_spec *spec, mt_err *err) {
    mt_config *tc = NULL;
    MT_TRY(text_config(&tc, mt_config_json(m->cfg), spec, err));
    mt_config_free(m->cfg);
    m->cfg = tc;
    return mt_safetensors_set_prefix(m->st, spec->strip, spec->add, err);
}

void mt_model_free(mt_model *m) {
    if (!m) return;
    if (m->layers)
        for (int i = 0; i < m->hp.n_layers; i++) {
            mt_layer *L = &m->layers[i];
            mt_dec_norm_free(&L->n1); mt_dec_norm_free(&L->n2); mt_dec_norm_free(&L->n3); mt_dec_norm_free(&L->n4);
            mt_dec_norm_free(&L->q_norm); mt_dec_norm_free(&L->k_norm);
            mt_dec_norm_free(&L->o_in_norm); mt_dec_norm_free(&L->down_in_norm);
            free(L->exp_gate);
            free(L->moe_sel_bias);
            free(L->sinks);
            if (L->mixer && L->mixer->free) L->mixer->free(L->mix);
            if (L->ffn && L->ffn->free) L->ffn->free(L->ffd);
        }
    free(m->layers);
    if (m->fam_free) m->fam_free(m->fam);
    mt_dec_norm_free(&m->final_norm);
    mt_dec_norm_free(&m->embed_norm);
    mt_ple_free(m->ple);
    free(m->inv_freq);
    free(m->inv_freq_local);
    free(m->mlx_inv_freq);
    free(m->mlx_inv_freq_local);
    mt_safetensors_free(m->st);
    mt_config_free(m->cfg);
    free(m);
}

/* ---- forward ---- */

typedef struct attn_ctx {
    const mt_model *m;
    mt_kvcache *const *c;  /* [T]: the cache of each row */
    const size_t *pos;     /* [T]: the absolute position of each row */
    const size_t *lo, *hi; /* [T]: the slots [lo, hi) each row may attend to */
    int layer;
    const float *q;   /* [T, n_heads*hd] (rows of stride qstride) */
    size_t qstride;
    float *out;       /* [T, n_heads*hd] */
    float *scores;    /* nthreads * len * group */
    size_t gsz;       /* query heads per attn_heads job (a divisor of the group) */
    size_t T, len;    /* len: the longest context of any row */
} attn_ctx;

/* n cached values from element i of a layer's K or V buffer, as float32 */
static void kv_row(const mt_kvcache *c, const void *buf, size_t i, size_t n, float *out) {
    mt_dtype t = mt_kv_dtype(c);
    mt_convert_to_f32(out, (const char *)buf + i * mt_dtype_size(t), t, n);
}

int mt_dec_row_span(const mt_model *m, int layer, const mt_kvcache *kc, size_t p, size_t lo, size_t hi,
                    size_t *j0, size_t *j1) {
    const mt_decoder_hp *hp = &m->hp;
    *j0 = lo;
    *j1 = hi;
    int win = m->layers[layer].sliding && hp->sliding_window > 0;
    if (win && hp->bidirectional && !kc->max_size) {
        size_t w = (size_t)hp->sliding_window / 2 + 1;   /* |p - j| < w */
        if (p + 1 > w && p + 1 - w > *j0) *j0 = p + 1 - w;
        if (p + w < *j1) *j1 = p + w;
        win = 0;
    }
    if (win && !kc->max_size && p + 1 > (size_t)hp->sliding_window && p + 1 - (size_t)hp->sliding_window > *j0)
        *j0 = p + 1 - (size_t)hp->sliding_window;
    return win && kc->max_size;
}

/* The slots [*j0, *j1) row t attends to (mt_dec_row_span). */
static int row_span(const attn_ctx *a, size_t t, size_t *j0, size_t *j1) {
    return mt_dec_row_span(a->m, a->layer, a->c[t], a->pos[t], a->lo[t], a->hi[t], j0, j1);
}

/* The packed rows of kv head kh in layer l of a quantized cache, from slot j0 on. */
static void kvq_span(const mt_kvcache *c, int l, size_t kh, size_t j0, mt_kvq_span *sp) {
    size_t H = (size_t)c->n_kv_heads, nw = mt_kvcache_qwords(c);
    int turbo = c->qscheme == MT_KVQ_TURBO;
    size_t ns = turbo ? 1 : (size_t)(c->head_dim / c->qgroup);
    size_t w = (j0 * H + kh) * nw, o = (j0 * H + kh) * ns;
    sp->kw = c->kq[l] + w;
    sp->vw = c->vq[l] + w;
    sp->ks = c->ks[l] + o;
    sp->vs = c->vs[l] + o;
    sp->kb = turbo ? NULL : c->kb[l] + o;
    sp->vb = turbo ? NULL : c->vb[l] + o;
    sp->wstride = H * nw;
    sp->sstride = H * ns;
    sp->bits = c->qbits;
    sp->group = c->qgroup;
    sp->cb = turbo ? c->tcb : NULL;
    sp->sign = turbo ? c->tsign : NULL;
}

/* Jobs (row t, set of a->gsz query heads sharing one kv head). */
static void attn_heads(void *vc, size_t b, size_t e, int tid) {
    attn_ctx *a = vc;
    const mt_decoder_hp *hp = &a->m->hp;
    size_t hd = (size_t)hp->head_dim, qd = (size_t)hp->n_heads * hd, kvd = a->c[0]->kv_dim;
    size_t group = (size_t)(hp->n_heads / hp->n_kv_heads), sets = (size_t)hp->n_heads / a->gsz;
    float *s = a->scores + (size_t)tid * a->len * group;
    float cap = hp->attn_softcap;
    const float *sinks = a->m->layers[a->layer].sinks;   /* attention sinks: [n_heads] or NULL */
    for (size_t job = b; job < e; job++) {
        size_t t = job / sets, h0 = job % sets * a->gsz, kh = h0 / group;
        const float *sk = sinks ? sinks + h0 : NULL;
        const mt_kvcache *kc = a->c[t];
        size_t p = a->pos[t], j0, j1;
        int win = row_span(a, t, &j0, &j1);
        if (kc->quantized) {   /* packed rows (unbounded caches only: no slot masking) */
            mt_kvq_span sp;
            kvq_span(kc, a->layer, kh, j0, &sp);
            mt_k_attn_kvq_sinks(mt_cpu_level(), a->q + t * a->qstride + h0 * hd, a->gsz, &sp, j1 - j0, hd,
                                hp->attn_scale, cap, sk, a->out + t * qd + h0 * hd, s);
            continue;
        }
        const void *K = kc->k[a->layer], *Vv = kc->v[a->layer];
        size_t es = mt_dtype_size(mt_kv_dtype(kc));
        size_t off = (j0 * kvd + kh * hd) * es;
        if (!win) {   /* a plain run of positions: the fused kernel, each row read once for the set */
            mt_attn_group_sinks(a->q + t * a->qstride + h0 * hd, a->gsz, (const char *)K + off, (const char *)Vv + off,
                                kc->f16, kvd, j1 - j0, hd, hp->attn_scale, cap, sk, a->out + t * qd + h0 * hd, s);
            continue;
        }
        for (size_t h = h0; h < h0 + a->gsz; h++) {
            const float *qv = a->q + t * a->qstride + h * hd;
            /* rotating cache with a sliding window: some slots are masked */
            float row[1024];   /* head_dim <= 1024 (checked at load) */
            for (size_t j = j0; j < j1; j++) {
                if (kc->slot_pos[j] + (size_t)hp->sliding_window <= p) { s[j - j0] = -INFINITY; continue; }
                kv_row(kc, K, j * kvd + kh * hd, hd, row);
                float sc = mt_dot(qv, row, hd) * hp->attn_scale;
                s[j - j0] = cap > 0 ? tanhf(sc / cap) * cap : sc;
            }
            size_t n = j1 - j0;
            mt_softmax_sink(s, n, sk ? sk + (h - h0) : NULL);
            float *o = a->out + t * qd + h * hd;
            memset(o, 0, hd * sizeof(float));
            for (size_t j = 0; j < n; j++)
                if (s[j] != 0.0f) {
                    kv_row(kc, Vv, (j0 + j) * kvd + kh * hd, hd, row);
                    mt_axpy(o, s[j], row, hd);
                }
        }
    }
}

#define ATTN_ROWS_BLK 64 /* query rows per block */
#ifndef ATTN_ROWS_SCRATCH_MAX   /* floats of block scratch per job (64 MiB: a span of ~55K slots at head_dim 128) */
#define ATTN_ROWS_SCRATCH_MAX ((size_t)16 << 20)
#endif

/* Jobs (kv head, block of ATTN_ROWS_BLK rows) of a call whose rows all
 * belong to one cache and need no slot-by-slot masking (attn_blocks_ok): the
 * group of query heads sharing the kv head, over the span of slots the
 * block's rows see, as matrix products (mt_attn_rows). */
static void attn_blocks(void *vc, size_t b, size_t e, int tid) {
    attn_ctx *a = vc;
    const mt_decoder_hp *hp = &a->m->hp;
    size_t hd = (size_t)hp->head_dim, qd = (size_t)hp->n_heads * hd, kvd = a->c[0]->kv_dim;
    size_t group = (size_t)(hp->n_heads / hp->n_kv_heads), nb = (a->T + ATTN_ROWS_BLK - 1) / ATTN_ROWS_BLK;
    const mt_kvcache *kc = a->c[0];
    size_t es = mt_dtype_size(mt_kv_dtype(kc));
    const float *sinks = a->m->layers[a->layer].sinks;
    for (size_t job = b; job < e; job++) {
        size_t kh = job / nb, t0 = job % nb * ATTN_ROWS_BLK, R = a->T - t0 < ATTN_ROWS_BLK ? a->T - t0 : ATTN_ROWS_BLK;
        size_t lo[ATTN_ROWS_BLK], hi[ATTN_ROWS_BLK], J0 = SIZE_MAX, J1 = 0;
        for (size_t i = 0; i < R; i++) {
            row_span(a, t0 + i, &lo[i], &hi[i]);
            if (hi[i] < lo[i]) hi[i] = lo[i];
            if (lo[i] < J0) J0 = lo[i];
            if (hi[i] > J1) J1 = hi[i];
        }
        if (J1 < J0) J1 = J0;
        for (size_t i = 0; i < R; i++) { lo[i] -= J0; hi[i] -= J0; }
        size_t n = J1 - J0, off = (J0 * kvd + kh * hd) * es;
        const float *Q = a->q + t0 * a->qstride + kh * group * hd;
        float *out = a->out + t0 * qd + kh * group * hd;
        /* very long spans (the scratch holds the block's scores and the span's
         * widened K/V) go row by row instead of taking over 64 MiB per thread */
        size_t need = mt_attn_rows_scratch(R, n, hd);
        float *scratch = need <= ATTN_ROWS_SCRATCH_MAX ? malloc(need * sizeof *scratch) : NULL;
        if (scratch) {
            mt_attn_rows_sinks(Q, a->qstride, group, R, (const char *)kc->k[a->layer] + off,
                               (const char *)kc->v[a->layer] + off, kc->f16, kvd, n, hd, lo, hi, hp->attn_scale,
                               hp->attn_softcap, sinks ? sinks + kh * group : NULL, out, qd, scratch);
            free(scratch);
            continue;
        }
        /* no (or too much) memory for the block: row by row, in this thread's scores (as attn_heads) */
        float *s = a->scores + (size_t)tid * a->len * group;
        for (size_t h = 0; h < group; h++)
            for (size_t i = 0; i < R; i++) {
                size_t o2 = off + lo[i] * kvd * es;
                mt_attn_group_sinks(Q + i * a->qstride + h * hd, 1, (const char *)kc->k[a->layer] + o2,
                                    (const char *)kc->v[a->layer] + o2, kc->f16, kvd, hi[i] - lo[i], hd,
                                    hp->attn_scale, hp->attn_softcap, sinks ? sinks + kh * group + h : NULL,
                                    out + i * qd + h * hd, s);
            }
    }
}

/* 1 when attn_blocks can run this call: enough rows, all of one cache, no
 * slot-by-slot masking, and sgemm may be called from the pool's threads. */
static int attn_blocks_ok(const attn_ctx *a) {
    if (a->T < a->m->attn_block_min || a->c[0] != a->c[a->T - 1] || a->c[0]->quantized) return 0;
    if (mt_pool_size(a->m->pool) > 1 && !mt_blas_pool_splits(a->m->pool)) return 0;
    for (size_t t = 0; t < a->T; t++) {
        size_t j0, j1;
        if (row_span(a, t, &j0, &j1)) return 0;
    }
    return 1;
}

int mt_dec_attend(const mt_fwd *f, int l, const float *q, size_t qs, float *out, mt_err *err) {
    const mt_decoder_hp *hp = &f->m->hp;
    size_t nt = (size_t)mt_pool_size(f->m->pool), group = (size_t)(hp->n_heads / hp->n_kv_heads), gsz = group;
    float *scores = malloc((nt * f->len * group + 1) * sizeof *scores);
    if (!scores) return mt_seterr(err, MT_ENOMEM, "out of memory");
    while (gsz % 2 == 0 && (f->rows1 ? 1 : f->T) * (size_t)hp->n_heads / gsz < 2 * nt) gsz /= 2;   /* as forward_rows */
    attn_ctx ac = {f->m, f->rc, f->rpos, f->lo, f->hi, l, q, qs, out, scores, gsz, f->T, f->len};
    if (!f->rows1 && attn_blocks_ok(&ac))
        mt_pool_for(f->m->pool, (size_t)hp->n_kv_heads * ((f->T + ATTN_ROWS_BLK - 1) / ATTN_ROWS_BLK), 1, attn_blocks, &ac);
    else mt_pool_for(f->m->pool, f->T * (size_t)hp->n_heads / gsz, 1, attn_heads, &ac);
    free(scores);
    return MT_OK;
}

/* Tell the calibration observer (if any) what enters layer l's module `sub`. */
void mt_dec_observe(const mt_model *m, int l, const char *sub, const float *x, size_t T, size_t in) {
    if (!m->on_linear_input) return;
    char path[256], stored[320];
    const char *to = "", *rest = sub;
    for (const char *const *mp = m->obs_map; mp && mp[0]; mp += 2)   /* the family's module names */
        if (!strncmp(sub, mp[0], strlen(mp[0]))) { to = mp[1]; rest = sub + strlen(mp[0]); break; }
    snprintf(path, sizeof path, "%s.%d.%s%s", m->layers_name ? m->layers_name : "model.layers", l, to, rest);
    const char *p = m->st ? mt_safetensors_stored_name(m->st, path, stored, sizeof stored) : NULL;   /* the checkpoint's name */
    m->on_linear_input(m->hook_user, p ? p : path, x, T, in);
}

static void scale_rot(float *x, size_t heads, size_t hd, int rot, float s) {
    if (s == 1.0f) return;
    for (size_t h = 0; h < heads; h++)
        for (int i = 0; i < rot; i++) x[h * hd + (size_t)i] *= s;
}

float mt_dec_dyn_base(const mt_model *m, size_t end) {
    const mt_decoder_hp *hp = &m->hp;
    double sl = end > (size_t)hp->dyn_max_pos ? (double)end : (double)hp->dyn_max_pos;
    double d = hp->rot_dims;
    return (float)(hp->rope_theta * pow(hp->dyn_factor * sl / hp->dyn_max_pos - (hp->dyn_factor - 1), d / (d - 2)));
}

int mt_dec_rope_pos(const mt_model *m, const mt_embed_inject *inj, const mt_kvcache *c, size_t p, const float *fr,
                    float *ang, double *pos) {
    *pos = (double)p;
    if (!m->mrope[0] && !m->mrope[1] && !m->mrope[2]) return 0;
    if (!inj || !inj->pos3 || p >= inj->n_pos) {
        *pos = (double)((long)p + c->pos_delta);
        return 0;
    }
    const int32_t *q = inj->pos3 + 3 * p;
    *pos = (double)q[0];
    if (q[0] == q[1] && q[0] == q[2]) return 0;
    /* mlx-vlm: angle_i = float32(position of section(i)) * inv_freq_i, the sections in order
     * (t, h, w); frequencies past them take t */
    int half = m->hp.rot_dims / 2, i = 0;
    for (int s = 0; s < 3; s++)
        for (int k = 0; k < m->mrope[s] && i < half; k++, i++) ang[i] = (float)q[s] * fr[i];
    for (; i < half; i++) ang[i] = (float)q[0] * fr[i];
    return 1;
}

/* The forward pass over T rows; row t is token tok[t] of the sequence whose
 * cache is rc[t], at position rpos[t] (its K/V are written there).  Logits are
 * computed for rows [first, T). */
void mt_dec_inject(mt_embed_inject *inj, const int32_t *tok, size_t T, float *x, size_t H) {
    if (!inj) return;
    for (size_t t = 0; t < T; t++)
        if (tok[t] == inj->token_id && inj->next < inj->n) {
            memcpy(x + t * H, inj->rows + inj->next * H, H * sizeof *x);
            inj->next++;
        }
}

int mt_dec_inject_check(const mt_embed_inject *inj, const int32_t *tok, size_t T, mt_err *err) {
    if (!inj) return MT_OK;
    size_t k = 0;
    for (size_t t = 0; t < T; t++) k += tok[t] == inj->token_id;
    if (inj->next > inj->n || k > inj->n - inj->next)
        return mt_seterr(err, MT_EINVAL, "the prompt has more image tokens (id %d) than the images give rows (%zu)",
                         (int)inj->token_id, inj->n);
    return MT_OK;
}

/* Rows of independent sequences (mt_model_decode_batch) each computed as alone: an answer
 * does not depend on the sequences decoding beside it. */
static void lin_rows(int rows1, const mt_linear *l, const float *x, size_t T, float *y, float *work, mt_pool *pool) {
    if (rows1) mt_linear_forward_rows1(l, x, T, y, work, pool);
    else mt_linear_forward(l, x, T, y, work, pool);
}

void mt_dec_linear(const mt_fwd *f, const mt_linear *l, const float *x, size_t T, float *y) {
    lin_rows(f->rows1, l, x, T, y, f->work, f->m->pool);
}

/* One row's q/k norms (hp.qk_norm: per head or over the whole projection). */
static void qk_norm_row(const mt_model *m, const mt_layer *L, float *qt, float *kt) {
    const mt_decoder_hp *hp = &m->hp;
    size_t hd = (size_t)hp->head_dim;
    if (hp->qk_norm == MT_QKNORM_HEAD) {
        mt_dec_norm(m, &L->q_norm, qt, qt, (size_t)hp->n_heads, hd);
        mt_dec_norm(m, &L->k_norm, kt, kt, (size_t)hp->n_kv_heads, hd);
    } else if (hp->qk_norm == MT_QKNORM_FULL) {
        mt_dec_norm(m, &L->q_norm, qt, qt, 1, (size_t)hp->n_heads * hd);
        mt_dec_norm(m, &L->k_norm, kt, kt, 1, (size_t)hp->n_kv_heads * hd);
    } else if (hp->qk_norm == MT_QKNORM_HEAD_EACH) {
        for (size_t h = 0; h < (size_t)hp->n_heads; h++)
            mt_dec_norm(m, &(mt_norm){L->q_norm.w + h * hd, NULL}, qt + h * hd, qt + h * hd, 1, hd);
        for (size_t h = 0; h < (size_t)hp->n_kv_heads; h++)
            mt_dec_norm(m, &(mt_norm){L->k_norm.w + h * hd, NULL}, kt + h * hd, kt + h * hd, 1, hd);
    }
}

static int forward_rows(mt_model *m, mt_kvcache *const *rc, const size_t *rpos, const int32_t *tok, size_t T,
                        float *logits, float *hidden, size_t first, mt_embed_inject *inj, int rows1, mt_err *err) {
    const mt_decoder_hp *hp = &m->hp;
    if (T == 0) return mt_seterr(err, MT_EINVAL, "no tokens to run");
    size_t len = 0;
    for (size_t t = 0; t < T; t++)
        if (tok[t] < 0 || tok[t] >= hp->vocab)
            return mt_seterr(err, MT_EINVAL, "token id %d outside the vocabulary (%d)", tok[t], hp->vocab);
        else if (hp->n_positions && rpos[t] >= (size_t)hp->n_positions)
            return mt_seterr(err, MT_EINVAL, "position %zu is past the model's %d learned positions", rpos[t], hp->n_positions);
    MT_TRY(mt_dec_inject_check(inj, tok, T, err));
    /* slots: where each row's K/V go and which slots it attends to (rows of one cache are consecutive) */
    size_t *slot = malloc(3 * T * sizeof *slot);
    if (!slot) return mt_seterr(err, MT_ENOMEM, "out of memory");
    size_t *lo = slot + T, *hi = lo + T;
    for (size_t t = 0; t < T;) {
        size_t S = 1;
        while (t + S < T && rc[t + S] == rc[t]) S++;
        if (rc[t]->len != rpos[t]) { free(slot); return mt_seterr(err, MT_EINVAL, "internal: rows out of order"); }
        int r = mt_kv_plan(rc[t], S, slot + t, lo + t, hi + t, err);
        if (r) { free(slot); return r; }
        if (hp->bidirectional && !rc[t]->max_size)   /* every row sees the whole call */
            for (size_t i = 0; i < S; i++) hi[t + i] = rc[t]->len + S;
        rc[t]->len += S;
        for (size_t i = 0; i < S; i++) if (hi[t + i] - lo[t + i] > len) len = hi[t + i] - lo[t + i];
        if (inj && inj->pos3) rc[t]->pos_delta = inj->rope_delta;   /* M-RoPE: the decode steps' offset */
        t += S;
    }
    if (m->forward) {   /* a family's own forward pass (gemma3n) */
        mt_fwd fw = {m, rc, rpos, slot, lo, hi, tok, T, len, first, inj, rows1, NULL, NULL};
        int r = m->forward(&fw, logits, hidden, err);
        for (size_t t = 0; !r && t < T; t++)   /* mlx-lm's maybe_quantize_kv_cache */
            if (t == 0 || rc[t] != rc[t - 1]) r = mt_kv_maybe_quantize(rc[t], err);
        free(slot);
        return r;
    }
    if (mt_model_mlx(m)) {
        mt_dec_rows rows = {rc, rpos, slot, lo, hi, tok, T, len, first, inj, rows1};
        int r = mt_dec_forward_mlx(m, &rows, logits, hidden, err);
        free(slot);
        return r;
    }
    size_t H = (size_t)hp->hidden, hd = (size_t)hp->head_dim, qd = (size_t)hp->n_heads * hd, kvd = rc[0]->kv_dim;
    size_t I = (size_t)hp->inter, nt = (size_t)mt_pool_size(m->pool);
    size_t qkvd = qd + 2 * kvd;
    size_t I2 = hp->mlp == MT_MLP_GATED_FUSED ? 2 * I : I;
    size_t sz_x = T * H, sz_q = (hp->qkv_grouped ? 2 : 1) * T * qkvd + (hp->attn_out_gate ? 2 * T * qd : 0), sz_a = T * qd,
           sz_i = T * I2;
    size_t sz_s = nt * len * (size_t)(hp->n_heads / hp->n_kv_heads), sz_kvs = hp->kv_share ? 2 * T * kvd : 0;
    size_t total = 3 * sz_x + sz_q + sz_a + 2 * sz_i + MT_LINEAR_WORK_SLACK + nt * m->max_in + sz_s + sz_kvs;
    float *buf = malloc(total * sizeof(float));
    if (!buf) { free(slot); return mt_seterr(err, MT_ENOMEM, "out of memory for activations"); }
    float *x = buf, *xn = x + sz_x, *br = xn + sz_x, *qkv = br + sz_x, *att = qkv + sz_q;
    float *g = att + sz_a, *u = g + sz_i, *work = mt_linear_work_align(u + sz_i), *scores = work + nt * m->max_in;
    float *kvs = scores + sz_s;   /* hunyuan CLA: k, v projections [2, T, kvd] for the next layer */

    /* rope_scaling "dynamic": the base of each row's call, from the length its sequence
     * reaches at the end of this call (rows of one sequence are consecutive) */
    size_t half = (size_t)hp->rot_dims / 2;
    float *dyn = NULL;
    if (hp->dyn_factor > 0) {
        dyn = malloc(T * half * sizeof *dyn);
        if (!dyn) { free(buf); free(slot); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
        for (size_t t = 0; t < T; t++) {
            size_t end = rpos[t] + 1;
            for (size_t u = t + 1; u < T && rc[u] == rc[t]; u++) end = rpos[u] + 1;
            float base = mt_dec_dyn_base(m, end), d = (float)hp->rot_dims;
            for (size_t i = 0; i < half; i++) dyn[t * half + i] = 1.0f / powf(base, (float)(2 * i) / d);
        }
    }
    mt_fwd fw = {m, rc, rpos, slot, lo, hi, tok, T, len, first, inj, rows1, dyn, work};
    int r = MT_OK;
    float *pli = NULL;   /* per-layer inputs [T, n_layers * dim] (models/ple.h) */
    for (size_t t = 0; t < T; t++) mt_linear_row(&m->embed, (size_t)tok[t], x + t * H);
    mt_dec_inject(inj, tok, T, x, H);
    if (hp->n_positions) mt_dec_add_positions(m, rpos, T, x, xn);
    if (m->embed_norm.w) mt_dec_norm(m, &m->embed_norm, x, x, T, H);
    if (hp->embed_scale != 1.0f)
        for (size_t i = 0; i < T * H; i++) x[i] *= hp->embed_scale;
    if (m->ple) {
        if (!(pli = malloc(T * (size_t)m->ple->n_layers * (size_t)m->ple->dim * sizeof *pli))) {
            r = mt_seterr(err, MT_ENOMEM, "out of memory");
            goto out;
        }
        if ((r = mt_ple_inputs(&fw, m->ple, tok, x, T, pli, err))) goto out;
    }

    for (int l = 0; l < hp->n_layers; l++) {
        mt_layer *L = &m->layers[l];
        /* attention branch */
        const float *ain = x;
        if (L->n1.w) { mt_dec_norm(m, &L->n1, xn, x, T, H); ain = xn; }
        if (L->mixer && !L->mixer_parallel) {
            if ((r = L->mixer->forward(&fw, l, ain, br, err))) goto out;
            goto attn_done;
        }
        size_t qs;   /* row stride of q, k, v inside qkv */
        float *q, *k, *v;
        if (hp->fused_qkv && !hp->qkv_grouped) {
            mt_dec_observe(m, l, "self_attn.qkv_proj", ain, T, H);
            lin_rows(rows1, &L->qkv, ain, T, qkv, work, m->pool);
            if (hp->clip_qkv > 0)   /* dbrx */
                for (size_t i = 0; i < T * qkvd; i++) qkv[i] = fminf(fmaxf(qkv[i], -hp->clip_qkv), hp->clip_qkv);
            qs = qkvd; q = qkv; k = qkv + qd; v = qkv + qd + kvd;
        } else if (hp->qkv_grouped) {   /* into the q | k | v layout of separate projections */
            float *src = qkv + T * qkvd;
            mt_dec_observe(m, l, "self_attn.qkv_proj", ain, T, H);
            lin_rows(rows1, &L->qkv, ain, T, src, work, m->pool);
            qs = qd; q = qkv; k = qkv + T * qd; v = k + T * kvd;
            size_t grp = (size_t)(hp->n_heads / hp->n_kv_heads);
            for (size_t t = 0; t < T; t++)
                for (size_t kh = 0; kh < (size_t)hp->n_kv_heads; kh++) {
                    const float *s0 = src + t * qkvd + kh * (grp + 2) * hd;
                    memcpy(q + t * qd + kh * grp * hd, s0, grp * hd * sizeof(float));
                    memcpy(k + t * kvd + kh * hd, s0 + grp * hd, hd * sizeof(float));
                    memcpy(v + t * kvd + kh * hd, s0 + (grp + 1) * hd, hd * sizeof(float));
                }
        } else {
            qs = qd; q = qkv; k = qkv + T * qd; v = k + T * kvd;
            mt_dec_observe(m, l, "self_attn.q_proj", ain, T, H);
            if (hp->attn_out_gate) {   /* gated attention: each head's [q | gate] rows after v */
                lin_rows(rows1, &L->q, ain, T, v + T * kvd, work, m->pool);
                for (size_t t = 0; t < T * (size_t)hp->n_heads; t++) memcpy(q + t * hd, v + T * kvd + 2 * t * hd, hd * sizeof *q);
            } else lin_rows(rows1, &L->q, ain, T, q, work, m->pool);
            if (L->kv_prev) memcpy(k, kvs, 2 * T * kvd * sizeof(float));   /* hunyuan CLA: the layer before's */
            else if (L->kv_from >= 0) memset(k, 0, 2 * T * kvd * sizeof(float));   /* KV sharing: none of its own */
            else {
                mt_dec_observe(m, l, "self_attn.k_proj", ain, T, H);
                mt_dec_observe(m, l, "self_attn.v_proj", ain, T, H);
                lin_rows(rows1, &L->k, ain, T, k, work, m->pool);
                lin_rows(rows1, &L->v, ain, T, v, work, m->pool);
                if (hp->kv_share) memcpy(kvs, k, 2 * T * kvd * sizeof(float));
            }
        }
        size_t ks = hp->fused_qkv && !hp->qkv_grouped ? qkvd : kvd;
        for (size_t t = 0; t < T; t++) {
            float *qt = q + t * qs, *kt = k + t * ks;
            if (!hp->qk_norm_late) qk_norm_row(m, L, qt, kt);
            if (L->use_rope) {
                scale_rot(qt, (size_t)hp->n_heads, hd, hp->rot_dims, L->rope_in_scale);
                scale_rot(kt, (size_t)hp->n_kv_heads, hd, hp->rot_dims, L->rope_in_scale);
                const float *fr = dyn && L->inv_freq == m->inv_freq ? dyn + t * half : L->inv_freq;
                /* M-RoPE: the row's position, or its angles as frequencies at position 1 (1.0f * a == a) */
                float ang[512];
                double pos;
                if (mt_dec_rope_pos(m, inj, rc[t], rpos[t], fr, ang, &pos)) { fr = ang; pos = 1.0; }
                mt_rope(qt, (size_t)hp->n_heads, hd, (size_t)hp->rot_dims, fr, pos, hp->rope_traditional);
                mt_rope(kt, (size_t)hp->n_kv_heads, hd, (size_t)hp->rot_dims, fr, pos, hp->rope_traditional);
            }
            if (hp->qk_norm_late) qk_norm_row(m, L, qt, kt);
            if (L->kv_from < 0) mt_kv_write(rc[t], l, slot[t], kt, v + t * ks);
        }
        /* query heads per job: the kv head's whole group, halved while that
         * leaves fewer than two jobs per thread */
        size_t gsz = (size_t)(hp->n_heads / hp->n_kv_heads);
        /* (rows of independent sequences: the grouping a row gets alone, so its sums do not change) */
        while (gsz % 2 == 0 && (rows1 ? 1 : T) * (size_t)hp->n_heads / gsz < 2 * nt) gsz /= 2;
        attn_ctx ac = {m, rc, rpos, lo, hi, L->kv_from >= 0 ? L->kv_from : l, q, qs, att, scores, gsz, T, len};
        if (!rows1 && attn_blocks_ok(&ac))
            mt_pool_for(m->pool, (size_t)hp->n_kv_heads * ((T + ATTN_ROWS_BLK - 1) / ATTN_ROWS_BLK), 1, attn_blocks, &ac);
        else mt_pool_for(m->pool, T * (size_t)hp->n_heads / gsz, 1, attn_heads, &ac);
        if (hp->attn_out_gate)
            for (size_t t = 0; t < T * (size_t)hp->n_heads; t++)
                for (size_t i = 0; i < hd; i++) att[t * hd + i] /= 1.0f + expf(-v[T * kvd + (2 * t + 1) * hd + i]);
        if (L->o_in_norm.w) mt_dec_norm(m, &L->o_in_norm, att, att, T, qd);
        mt_dec_observe(m, l, "self_attn.o_proj", att, T, qd);
        lin_rows(rows1, &L->o, att, T, br, work, m->pool);
        if (L->mixer && (r = L->mixer->forward(&fw, l, ain, br, err))) goto out;   /* parallel: adds to br */
    attn_done:
        if ((hp->block == MT_BLOCK_SANDWICH || hp->block == MT_BLOCK_POST) && L->n2.w) mt_dec_norm(m, &L->n2, br, br, T, H);
        if (hp->block == MT_BLOCK_PARALLEL2) mt_dec_norm(m, &L->n2, xn, x, T, H);   /* the MLP's input, before x moves */
        for (size_t i = 0; i < sz_x; i++) x[i] += br[i] * hp->residual_scale;

        /* MLP branch */
        if (L->no_mlp) goto layer_end;
        const mt_norm *pre = hp->block == MT_BLOCK_PRE ? &L->n2 : hp->block == MT_BLOCK_SANDWICH ? &L->n3 : NULL;
        const float *min = x;
        if (pre && pre->w) { mt_dec_norm(m, pre, xn, x, T, H); min = xn; }
        if (hp->block >= MT_BLOCK_PARALLEL) min = xn;   /* n1 (PARALLEL2: n2) of the block's input */
        if (L->ffn) {
            if ((r = L->ffn->forward(&fw, l, min, br, err))) goto out;
            goto mlp_done;
        }
        if (L->moe) {
            if ((r = mt_dec_moe(&fw, l, min, T, br, err))) goto out;
            goto mlp_done;
        }
        if (m->on_linear_input) {
            mt_dec_observe(m, l, hp->mlp == MT_MLP_GATED ? "mlp.gate_proj" : hp->mlp == MT_MLP_GATED_FUSED ? "mlp.gate_up_proj" : "mlp.c_fc", min, T, H);
            if (hp->mlp == MT_MLP_GATED) mt_dec_observe(m, l, "mlp.up_proj", min, T, H);
        }
        lin_rows(rows1, &L->gate, min, T, g, work, m->pool);
        float *hid = g;
        if (hp->mlp == MT_MLP_GATED || hp->mlp == MT_MLP_GATED_FUSED) {
            float *gg = g, *uu = u;
            if (hp->mlp == MT_MLP_GATED) lin_rows(rows1, &L->up, min, T, u, work, m->pool);
            else {   /* gate_up rows: [gate | up] (or [up | gate]); compact the gates into u */
                size_t go = hp->mlp_up_first ? I : 0, uo = I - go;
                for (size_t t = 0; t < T; t++) memcpy(u + t * I, g + t * 2 * I + go, I * sizeof(float));
                for (size_t t = 0; t < T; t++) memmove(g + t * I, g + t * 2 * I + uo, I * sizeof(float));
                gg = u; uu = g;
            }
            if (hp->act == MT_ACT_SILU) mt_swiglu(gg, uu, T * I);
            else {
                if (hp->act == MT_ACT_GELU) mt_gelu(gg, T * I);
                else if (hp->act == MT_ACT_RELU2) for (size_t i = 0; i < T * I; i++) gg[i] = gg[i] > 0 ? gg[i] * gg[i] : 0;
                else mt_gelu_tanh(gg, T * I);
                for (size_t i = 0; i < T * I; i++) gg[i] *= uu[i];
            }
            hid = gg;
        } else {
            if (hp->act == MT_ACT_SILU) mt_silu(g, T * I);
            else if (hp->act == MT_ACT_RELU2) for (size_t i = 0; i < T * I; i++) g[i] = g[i] > 0 ? g[i] * g[i] : 0;
            else if (hp->act == MT_ACT_GELU) mt_gelu(g, T * I);
            else mt_gelu_tanh(g, T * I);
        }
        if (L->down_in_norm.w) mt_dec_norm(m, &L->down_in_norm, hid, hid, T, I);
        mt_dec_observe(m, l, hp->mlp == MT_MLP_PLAIN ? "mlp.c_proj" : "mlp.down_proj", hid, T, I);
        lin_rows(rows1, &L->down, hid, T, br, work, m->pool);
    mlp_done:
        if (L->n4.w) mt_dec_norm(m, &L->n4, br, br, T, H);
        for (size_t i = 0; i < sz_x; i++) x[i] += br[i] * hp->residual_scale;
    layer_end:
        if (pli) {   /* the layer's per-layer input term */
            if ((r = mt_ple_gate(&fw, m->ple, l, x, pli, T, br, err))) goto out;
            for (size_t i = 0; i < sz_x; i++) x[i] += br[i];
        }
        if (L->out_scale != 0.0f)
            for (size_t i = 0; i < sz_x; i++) x[i] *= L->out_scale;
    }
    /* mlx-lm's maybe_quantize_kv_cache after the model call */
    for (size_t t = 0; t < T; t++)
        if (t == 0 || rc[t] != rc[t - 1])
            if ((r = mt_kv_maybe_quantize(rc[t], err))) goto out;
    size_t nl = T - first;
    if (hidden) {   /* final hidden states instead of logits */
        mt_dec_norm(m, &m->final_norm, hidden, x + first * H, nl, H);
        goto out;
    }
    mt_dec_norm(m, &m->final_norm, xn, x + first * H, nl, H);
    lin_rows(rows1, &m->lm_head, xn, nl, logits, work, m->pool);
    size_t V = (size_t)hp->vocab;
    if (hp->logits_div != 1.0f)
        for (size_t i = 0; i < nl * V; i++) logits[i] /= hp->logits_div;
    if (hp->final_softcap > 0)
        for (size_t i = 0; i < nl * V; i++) logits[i] = tanhf(logits[i] / hp->final_softcap) * hp->final_softcap;
out:
    free(pli);
    free(dyn);
    free(slot);
    free(buf);
    return r;
}

int mt_model_forward(mt_model *m, mt_kvcache *c, const int32_t *tok, size_t T, float *logits, int all_logits,
                     mt_err *err) {
    return mt_model_forward_inject(m, c, tok, T, logits, all_logits, NULL, err);
}

int mt_model_forward_inject(mt_model *m, mt_kvcache *c, const int32_t *tok, size_t T, float *logits, int all_logits,
                            mt_embed_inject *inj, mt_err *err) {
    if (T == 0) return mt_seterr(err, MT_EINVAL, "no tokens to run");
    mt_kvcache **rc = malloc(T * sizeof *rc);
    size_t *rpos = malloc(T * sizeof *rpos);
    if (!rc || !rpos) { free(rc); free(rpos); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    for (size_t t = 0; t < T; t++) { rc[t] = c; rpos[t] = c->len + t; }
    int rc_ = forward_rows(m, rc, rpos, tok, T, logits, NULL, all_logits ? 0 : T - 1, inj, 0, err);
    free(rc);
    free(rpos);
    return rc_;
}

int mt_model_verify(mt_model *m, mt_kvcache *c, const int32_t *tok, size_t T, float *logits, mt_err *err) {
    if (T == 0) return mt_seterr(err, MT_EINVAL, "no tokens to run");
    mt_kvcache **rc = malloc(T * sizeof *rc);
    size_t *rpos = malloc(T * sizeof *rpos);
    if (!rc || !rpos) { free(rc); free(rpos); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    for (size_t t = 0; t < T; t++) { rc[t] = c; rpos[t] = c->len + t; }
    int r = forward_rows(m, rc, rpos, tok, T, logits, NULL, 0, NULL, m->batch_invariant != 0, err);
    free(rc);
    free(rpos);
    return r;
}

int mt_model_decode_batch(mt_model *m, mt_kvcache **caches, const int32_t *tok, size_t B, float *logits,
                          mt_err *err) {
    if (B == 0) return mt_seterr(err, MT_EINVAL, "no tokens to run");
    size_t *rpos = malloc(B * sizeof *rpos);
    if (!rpos) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t b = 0; b < B; b++) {
        rpos[b] = caches[b]->len;
        for (size_t o = 0; o < b; o++)
            if (caches[o] == caches[b]) { free(rpos); return mt_seterr(err, MT_EINVAL, "a cache appears twice in a batch"); }
    }
    int rc = forward_rows(m, caches, rpos, tok, B, logits, NULL, 0, NULL, m->batch_invariant != 0, err);
    free(rpos);
    return rc;
}

int mt_model_forward_hidden(mt_model *m, mt_kvcache *c, const int32_t *tok, size_t T, float *hidden, mt_err *err) {
    if (T == 0) return mt_seterr(err, MT_EINVAL, "no tokens to run");
    mt_kvcache **rc = malloc(T * sizeof *rc);
    size_t *rpos = malloc(T * sizeof *rpos);
    if (!rc || !rpos) { free(rc); free(rpos); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    for (size_t t = 0; t < T; t++) { rc[t] = c; rpos[t] = c->len + t; }
    int r = forward_rows(m, rc, rpos, tok, T, NULL, hidden, 0, NULL, 0, err);
    free(rc);
    free(rpos);
    return r;
}
