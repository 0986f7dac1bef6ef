/* whisper.c - the Whisper encoder-decoder (openai-whisper model.py semantics):
 * loading of the mlx-community and Hugging Face layouts, the audio encoder
 * (two GELU convolutions, sinusoidal / stored positions, pre-LN blocks,
 * ln_post) and the text decoder (per-sequence self-attention KV caches,
 * cross-attention K/V projected once per mt_whisper_dec, tied output).
 * Dense weights stay borrowed from the mmap; products run through mt_linear
 * (sgemm for the 1500-row encoder products, SIMD kernels for decoding).
 * ref: openai/whisper whisper/model.py, ml-explore mlx-examples whisper/whisper.py,
 * transformers models/whisper/modeling_whisper.py. */
#include "models/whisper.h"

#include <cblas.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define XS_SIMD 1
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/blas.h"
#include "core/file.h"
#include "io/config.h"
#include "core/cpu.h"
#include "io/safetensors.h"
#include "models/encoder.h"   /* mt_enc_act: vectorizable erf GELU */
#include "tensor/kernels.h"
#include "tensor/linear.h"
#include "tensor/ops.h"

#define LN_EPS 1e-5f
#ifndef ATT_ROWS
#define ATT_ROWS 128     /* encoder attention: query rows per task */
#endif

typedef struct ln_t {
    float *w, *b;        /* owned [n] */
} ln_t;

typedef struct attn_t {
    mt_linear q, k, v, o;
    ln_t ln;
} attn_t;

typedef struct block_t {
    attn_t self, cross;
    mt_linear fc1, fc2;
    ln_t mlp_ln;
} block_t;

struct mt_whisper {
    char *dir;
    mt_whisper_hp hp;
    mt_pool *pool;
    mt_config *cfg;
    mt_safetensors *st;
    float *conv1_w, *conv1_b;   /* owned [d, 3 * n_mels] (k-major), [d] */
    float *conv2_w, *conv2_b;   /* owned [d, 3 * d], [d] */
    float *enc_pos;             /* owned [n_audio_ctx, d] */
    float *dec_pos;             /* owned [n_text_ctx, d] */
    block_t *enc, *dec;
    ln_t ln_post, dec_ln;
    mt_linear tok;              /* [n_vocab, d]: embedding rows and the tied output */
    mt_linear tok_out;          /* the tied output as products see it (tok, or its F32-scales copy) */
    float **owned;              /* F32 copies of quantized scales/biases (int8 arithmetic) */
    size_t n_owned;
    int (*align)[2];
    size_t n_align;
};

/* ------------------------------------------------------------------ helpers */


/* Whether the big products may be split over the pool's threads: only when
 * OpenBLAS itself runs one thread (each pool thread then runs its own sgemm). */
static int split_mode(const mt_whisper *w) { return mt_blas_pool_splits(w->pool); }

/* Read tensor `name` (any float dtype, shape checked) into a new float32 array. */
static int read_f32(const mt_whisper *w, const char *name, int ndim, const int64_t *shape, float **out, mt_err *err) {
    const mt_tensor_view *t;
    MT_TRY(mt_safetensors_expect(w->st, name, -1, ndim, shape, &t, err));
    if (t->dtype != MT_F32 && t->dtype != MT_F16 && t->dtype != MT_BF16)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': dtype %s, expected F32, F16 or BF16", name,
                         mt_dtype_name(t->dtype));
    size_t n = mt_tensor_numel(t);
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory reading '%s'", name);
    mt_convert_to_f32(p, t->data, t->dtype, n);
    *out = p;
    return MT_OK;
}

static int bind_ln(const mt_whisper *w, ln_t *ln, const char *path, int d, mt_err *err) {
    char name[400];
    int64_t s[1] = {d};
    snprintf(name, sizeof name, "%s.weight", path);
    MT_TRY(read_f32(w, name, 1, s, &ln->w, err));
    snprintf(name, sizeof name, "%s.bias", path);
    return read_f32(w, name, 1, s, &ln->b, err);
}

static int bind_lin(const mt_whisper *w, mt_linear *l, const char *path, int out, int in, int need_bias, mt_err *err) {
    return mt_linear_bind(l, w->st, w->cfg, path, (size_t)out, (size_t)in, need_bias, err);
}

/* Layout-specific tensor names. */
typedef struct names_t {
    const char *pre;                          /* "" or "model." (HF) */
    const char *enc_blk, *dec_blk;            /* "%sencoder.blocks.%d." */
    const char *q, *k, *v, *o, *ln;           /* self-attention */
    const char *cq, *ck, *cv, *co, *cln;      /* cross-attention */
    const char *fc1, *fc2, *mlp_ln;
    const char *conv1, *conv2, *enc_pos, *ln_post, *tok, *dec_pos, *dec_ln;
} names_t;

static const names_t MLX_NAMES = {
    "", "%sencoder.blocks.%d.", "%sdecoder.blocks.%d.",
    "attn.query", "attn.key", "attn.value", "attn.out", "attn_ln",
    "cross_attn.query", "cross_attn.key", "cross_attn.value", "cross_attn.out", "cross_attn_ln",
    "mlp1", "mlp2", "mlp_ln",
    "encoder.conv1", "encoder.conv2", "encoder.positional_embedding", "encoder.ln_post",
    "decoder.token_embedding", "decoder.positional_embedding", "decoder.ln"};

static const names_t HF_NAMES = {
    "model.", "%sencoder.layers.%d.", "%sdecoder.layers.%d.",
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "self_attn_layer_norm",
    "encoder_attn.q_proj", "encoder_attn.k_proj", "encoder_attn.v_proj", "encoder_attn.out_proj",
    "encoder_attn_layer_norm",
    "fc1", "fc2", "final_layer_norm",
    "encoder.conv1", "encoder.conv2", "encoder.embed_positions.weight", "encoder.layer_norm",
    "decoder.embed_tokens", "decoder.embed_positions.weight", "decoder.layer_norm"};

static int bind_attn(const mt_whisper *w, attn_t *a, const char *blk, const char *q, const char *k, const char *v,
                     const char *o, const char *ln, int d, mt_err *err) {
    char p[320];
    snprintf(p, sizeof p, "%s%s", blk, q);
    MT_TRY(bind_lin(w, &a->q, p, d, d, 1, err));
    snprintf(p, sizeof p, "%s%s", blk, k);
    MT_TRY(bind_lin(w, &a->k, p, d, d, 0, err));
    snprintf(p, sizeof p, "%s%s", blk, v);
    MT_TRY(bind_lin(w, &a->v, p, d, d, 1, err));
    snprintf(p, sizeof p, "%s%s", blk, o);
    MT_TRY(bind_lin(w, &a->o, p, d, d, 1, err));
    snprintf(p, sizeof p, "%s%s", blk, ln);
    return bind_ln(w, &a->ln, p, d, err);
}

static int bind_block(const mt_whisper *w, block_t *b, const names_t *nm, const char *mlp1, const char *mlp2,
                      int dec, int i, int d, mt_err *err) {
    char blk[200], p[320];
    snprintf(blk, sizeof blk, dec ? nm->dec_blk : nm->enc_blk, nm->pre, i);
    MT_TRY(bind_attn(w, &b->self, blk, nm->q, nm->k, nm->v, nm->o, nm->ln, d, err));
    if (dec) MT_TRY(bind_attn(w, &b->cross, blk, nm->cq, nm->ck, nm->cv, nm->co, nm->cln, d, err));
    snprintf(p, sizeof p, "%s%s", blk, mlp1);
    MT_TRY(bind_lin(w, &b->fc1, p, 4 * d, d, 1, err));
    snprintf(p, sizeof p, "%s%s", blk, mlp2);
    MT_TRY(bind_lin(w, &b->fc2, p, d, 4 * d, 1, err));
    snprintf(p, sizeof p, "%s%s", blk, nm->mlp_ln);
    return bind_ln(w, &b->mlp_ln, p, d, err);
}

/* Conv1d weight -> owned [out, 3 * in] with column k * in + i.  mlx stores
 * [out, k, in]; HF / OpenAI store [out, in, k]. */
static int bind_conv(const mt_whisper *w, const char *path, int mlx, int out, int in, float **wt, float **bias,
                     mt_err *err) {
    char name[400];
    snprintf(name, sizeof name, "%s.weight", path);
    int64_t s[3] = {out, mlx ? 3 : in, mlx ? in : 3};
    float *raw;
    MT_TRY(read_f32(w, name, 3, s, &raw, err));
    if (!mlx) {
        float *r = malloc((size_t)out * 3 * (size_t)in * sizeof *r);
        if (!r) { free(raw); return mt_seterr(err, MT_ENOMEM, "out of memory reading '%s'", name); }
        for (size_t o = 0; o < (size_t)out; o++)
            for (size_t i = 0; i < (size_t)in; i++)
                for (size_t k = 0; k < 3; k++)
                    r[(o * 3 + k) * (size_t)in + i] = raw[(o * (size_t)in + i) * 3 + k];
        free(raw);
        raw = r;
    }
    *wt = raw;
    snprintf(name, sizeof name, "%s.bias", path);
    int64_t sb[1] = {out};
    return read_f32(w, name, 1, sb, bias, err);
}

/* openai-whisper / mlx-whisper sinusoids(length, channels), float32 arithmetic
 * as the references do it. */
static void sinusoids(float *p, int len, int ch) {
    int h = ch / 2;
    float inc = (float)(-log(10000.0) / (double)(h - 1));
    for (int i = 0; i < h; i++) {
        float inv = expf(inc * (float)i);
        for (int t = 0; t < len; t++) {
            float a = (float)t * inv;
            p[(size_t)t * (size_t)ch + (size_t)i] = (float)sin((double)a);
            p[(size_t)t * (size_t)ch + (size_t)(h + i)] = (float)cos((double)a);
        }
    }
}

static int hp_get(const mt_config *c, const char *key, int *out, mt_err *err) {
    long long v;
    MT_TRY(mt_config_get_int(c, key, -1, &v, err));
    if (v < 0) return mt_seterr(err, MT_ENOTFOUND, "config.json: '%s' missing", key);
    if (v < 1 || v > (1 << 24)) return mt_seterr(err, MT_EFORMAT, "config.json: '%s' = %lld out of range", key, v);
    *out = (int)v;
    return MT_OK;
}

/* alignment_heads from a JSON array of [layer, head] pairs. */
static int align_from_json(mt_whisper *w, json_t *a, const char *label, mt_err *err) {
    size_t n = json_array_size(a);
    w->align = malloc((n ? n : 1) * sizeof *w->align);
    if (!w->align) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(a, i);
        json_t *l = json_array_get(p, 0), *h = json_array_get(p, 1);
        if (json_array_size(p) != 2 || !json_is_integer(l) || !json_is_integer(h))
            return mt_seterr(err, MT_EFORMAT, "%s: alignment_heads[%zu] is not a [layer, head] pair", label, i);
        w->align[i][0] = (int)json_integer_value(l);
        w->align[i][1] = (int)json_integer_value(h);
    }
    w->n_align = n;
    return MT_OK;
}

static int load_alignment(mt_whisper *w, mt_err *err) {
    json_t *a = mt_config_get(w->cfg, "alignment_heads");
    if (json_is_array(a)) MT_TRY(align_from_json(w, a, "config.json", err));
    if (!w->align) {
        char *gp = mt_path_join(w->dir, "generation_config.json");
        if (!gp) return mt_seterr(err, MT_ENOMEM, "out of memory");
        if (mt_file_exists(gp)) {
            mt_config *g = NULL;
            int rc = mt_config_load(&g, gp, err);
            if (!rc) {
                json_t *ga = mt_config_get(g, "alignment_heads");
                if (json_is_array(ga)) rc = align_from_json(w, ga, "generation_config.json", err);
            }
            mt_config_free(g);
            if (rc) { free(gp); return rc; }
        }
        free(gp);
    }
    if (!w->align) {
        const mt_tensor_view *t = mt_safetensors_get(w->st, "alignment_heads");
        if (t) {
            if (t->ndim != 2 || t->shape[1] != 2 || (t->dtype != MT_I64 && t->dtype != MT_I32))
                return mt_seterr(err, MT_EFORMAT, "tensor 'alignment_heads': expected I64/I32 [n, 2]");
            size_t n = (size_t)t->shape[0];
            w->align = malloc((n ? n : 1) * sizeof *w->align);
            if (!w->align) return mt_seterr(err, MT_ENOMEM, "out of memory");
            for (size_t i = 0; i < 2 * n; i++) {
                long long v;
                if (t->dtype == MT_I64) {
                    int64_t x;
                    memcpy(&x, (const char *)t->data + i * 8, 8);
                    v = x;
                } else {
                    int32_t x;
                    memcpy(&x, (const char *)t->data + i * 4, 4);
                    v = x;
                }
                w->align[i / 2][i % 2] = (int)(v < -1 || v > 1 << 20 ? -1 : v);
            }
            w->n_align = n;
        }
    }
    if (!w->align) {   /* openai-whisper's default: every head of the last half of the layers */
        int L = w->hp.n_text_layer, H = w->hp.n_text_head;
        size_t n = (size_t)(L - L / 2) * (size_t)H;
        w->align = malloc((n ? n : 1) * sizeof *w->align);
        if (!w->align) return mt_seterr(err, MT_ENOMEM, "out of memory");
        size_t k = 0;
        for (int l = L / 2; l < L; l++)
            for (int h = 0; h < H; h++) { w->align[k][0] = l; w->align[k][1] = h; k++; }
        w->n_align = n;
    }
    for (size_t i = 0; i < w->n_align; i++)
        if (w->align[i][0] < 0 || w->align[i][0] >= w->hp.n_text_layer || w->align[i][1] < 0 ||
            w->align[i][1] >= w->hp.n_text_head)
            return mt_seterr(err, MT_EFORMAT, "alignment head [%d, %d] outside the %d x %d decoder heads",
                             w->align[i][0], w->align[i][1], w->hp.n_text_layer, w->hp.n_text_head);
    return MT_OK;
}

/* With int8 arithmetic (mt_linear_qmath) the row kernels widen F16/BF16
 * scales and biases row by row at every product; an F32 copy made once here
 * gives them the same float32 values without that work (the int8 formula uses
 * the widened values either way, so results are unchanged).  The embedding
 * lookup keeps the original (w->tok: mx.dequantize rounding). */
static int widen_one(mt_whisper *w, mt_linear *l, mt_err *err) {
    if (!l->quantized || l->mode != MT_QMODE_AFFINE || l->sdt == MT_F32 || mt_linear_qmath(l) != MT_QMATH_INT8)
        return MT_OK;   /* the fp modes have no biases and no int8 path */
    size_t n = l->out * (l->in / (size_t)l->group_size);
    float **no = realloc(w->owned, (w->n_owned + 2) * sizeof *no);
    if (!no) return mt_seterr(err, MT_ENOMEM, "out of memory");
    w->owned = no;
    float *sc = malloc(n * sizeof *sc), *bi = malloc(n * sizeof *bi);
    if (!sc || !bi) { free(sc); free(bi); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    w->owned[w->n_owned++] = sc;
    w->owned[w->n_owned++] = bi;
    mt_convert_to_f32(sc, l->scales, l->sdt, n);
    mt_convert_to_f32(bi, l->biases, l->sdt, n);
    l->scales = sc;
    l->biases = bi;
    l->sdt = MT_F32;
    return MT_OK;
}

static int widen_attn(mt_whisper *w, attn_t *a, mt_err *err) {
    MT_TRY(widen_one(w, &a->q, err));
    MT_TRY(widen_one(w, &a->k, err));
    MT_TRY(widen_one(w, &a->v, err));
    return widen_one(w, &a->o, err);
}

static int widen_scales(mt_whisper *w, mt_err *err) {
    for (int i = 0; i < w->hp.n_audio_layer; i++) {
        MT_TRY(widen_attn(w, &w->enc[i].self, err));
        MT_TRY(widen_one(w, &w->enc[i].fc1, err));
        MT_TRY(widen_one(w, &w->enc[i].fc2, err));
    }
    for (int i = 0; i < w->hp.n_text_layer; i++) {
        MT_TRY(widen_attn(w, &w->dec[i].self, err));
        MT_TRY(widen_attn(w, &w->dec[i].cross, err));
        MT_TRY(widen_one(w, &w->dec[i].fc1, err));
        MT_TRY(widen_one(w, &w->dec[i].fc2, err));
    }
    return widen_one(w, &w->tok_out, err);
}

static int load_inner(mt_whisper *w, const char *dir, mt_err *err) {
    MT_TRY(mt_config_load(&w->cfg, dir, err));
    const mt_config *c = w->cfg;
    mt_whisper_hp *hp = &w->hp;
    int mlx;
    if (mt_config_get(c, "n_audio_state")) {
        mlx = 1;
        MT_TRY(hp_get(c, "n_mels", &hp->n_mels, err));
        MT_TRY(hp_get(c, "n_audio_ctx", &hp->n_audio_ctx, err));
        MT_TRY(hp_get(c, "n_audio_state", &hp->n_audio_state, err));
        MT_TRY(hp_get(c, "n_audio_head", &hp->n_audio_head, err));
        MT_TRY(hp_get(c, "n_audio_layer", &hp->n_audio_layer, err));
        MT_TRY(hp_get(c, "n_vocab", &hp->n_vocab, err));
        MT_TRY(hp_get(c, "n_text_ctx", &hp->n_text_ctx, err));
        MT_TRY(hp_get(c, "n_text_state", &hp->n_text_state, err));
        MT_TRY(hp_get(c, "n_text_head", &hp->n_text_head, err));
        MT_TRY(hp_get(c, "n_text_layer", &hp->n_text_layer, err));
    } else if (mt_config_get(c, "d_model")) {
        const char *mt = mt_config_model_type(c);
        if (mt && strcmp(mt, "whisper"))
            return mt_seterr(err, MT_EUNSUPPORTED, "config.json: model_type '%s' is not whisper", mt);
        mlx = 0;
        MT_TRY(hp_get(c, "num_mel_bins", &hp->n_mels, err));
        MT_TRY(hp_get(c, "max_source_positions", &hp->n_audio_ctx, err));
        MT_TRY(hp_get(c, "d_model", &hp->n_audio_state, err));
        MT_TRY(hp_get(c, "encoder_attention_heads", &hp->n_audio_head, err));
        MT_TRY(hp_get(c, "encoder_layers", &hp->n_audio_layer, err));
        MT_TRY(hp_get(c, "vocab_size", &hp->n_vocab, err));
        MT_TRY(hp_get(c, "max_target_positions", &hp->n_text_ctx, err));
        hp->n_text_state = hp->n_audio_state;
        MT_TRY(hp_get(c, "decoder_attention_heads", &hp->n_text_head, err));
        MT_TRY(hp_get(c, "decoder_layers", &hp->n_text_layer, err));
        long long ffn;
        MT_TRY(mt_config_get_int(c, "encoder_ffn_dim", 4LL * hp->n_audio_state, &ffn, err));
        if (ffn != 4LL * hp->n_audio_state)
            return mt_seterr(err, MT_EUNSUPPORTED, "config.json: encoder_ffn_dim %lld is not 4 x d_model", ffn);
        int se = 0;
        MT_TRY(mt_config_get_bool(c, "scale_embedding", 0, &se, err));
        if (se) return mt_seterr(err, MT_EUNSUPPORTED, "config.json: scale_embedding is not supported");
    } else {
        return mt_seterr(err, MT_EFORMAT, "config.json: neither a mlx-whisper (n_audio_state) nor a "
                                          "transformers (d_model) Whisper config");
    }
    int d = hp->n_audio_state;
    if (hp->n_text_state != d)
        return mt_seterr(err, MT_EUNSUPPORTED, "n_text_state %d != n_audio_state %d", hp->n_text_state, d);
    if (d % hp->n_audio_head || d % hp->n_text_head || d % 2 || d < 4)
        return mt_seterr(err, MT_EFORMAT, "state size %d is not divisible by the head count", d);

    int rc = mt_safetensors_open_dir(&w->st, dir, err);
    if (rc) {
        char *npz = mt_path_join(dir, "weights.npz");
        int has_npz = npz && mt_file_exists(npz);
        free(npz);
        if (has_npz)
            return mt_seterr(err, MT_EUNSUPPORTED, "weights.npz is not read: convert it to weights.safetensors");
        return rc;
    }

    names_t nm = mlx ? MLX_NAMES : HF_NAMES;
    char p[320];
    if (!mlx) {
        snprintf(p, sizeof p, "model.%s.weight", nm.conv1);
        if (!mt_safetensors_get(w->st, p)) nm.pre = "";  /* a bare WhisperModel checkpoint */
    }
    const char *mlp1 = nm.fc1, *mlp2 = nm.fc2;
    if (mlx) {   /* OpenAI module names ("mlp.0") in a safetensors file */
        snprintf(p, sizeof p, "encoder.blocks.0.%s.weight", mlp1);
        if (!mt_safetensors_get(w->st, p)) { mlp1 = "mlp.0"; mlp2 = "mlp.2"; }
    }
    snprintf(p, sizeof p, "%s%s", nm.pre, nm.conv1);
    MT_TRY(bind_conv(w, p, mlx, d, hp->n_mels, &w->conv1_w, &w->conv1_b, err));
    snprintf(p, sizeof p, "%s%s", nm.pre, nm.conv2);
    MT_TRY(bind_conv(w, p, mlx, d, d, &w->conv2_w, &w->conv2_b, err));
    int64_t ps[2] = {hp->n_audio_ctx, d};
    snprintf(p, sizeof p, "%s%s", nm.pre, nm.enc_pos);
    if (mt_safetensors_get(w->st, p)) {
        MT_TRY(read_f32(w, p, 2, ps, &w->enc_pos, err));
    } else if (!mlx) {
        return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", p);
    } else {
        w->enc_pos = malloc((size_t)hp->n_audio_ctx * (size_t)d * sizeof(float));
        if (!w->enc_pos) return mt_seterr(err, MT_ENOMEM, "out of memory");
        sinusoids(w->enc_pos, hp->n_audio_ctx, d);
    }
    w->enc = calloc((size_t)hp->n_audio_layer, sizeof *w->enc);
    w->dec = calloc((size_t)hp->n_text_layer, sizeof *w->dec);
    if (!w->enc || !w->dec) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (int i = 0; i < hp->n_audio_layer; i++) MT_TRY(bind_block(w, &w->enc[i], &nm, mlp1, mlp2, 0, i, d, err));
    snprintf(p, sizeof p, "%s%s", nm.pre, nm.ln_post);
    MT_TRY(bind_ln(w, &w->ln_post, p, d, err));
    snprintf(p, sizeof p, "%s%s", nm.pre, nm.tok);
    MT_TRY(bind_lin(w, &w->tok, p, hp->n_vocab, d, -1, err));
    int64_t ds[2] = {hp->n_text_ctx, d};
    snprintf(p, sizeof p, "%s%s", nm.pre, nm.dec_pos);
    MT_TRY(read_f32(w, p, 2, ds, &w->dec_pos, err));
    for (int i = 0; i < hp->n_text_layer; i++) MT_TRY(bind_block(w, &w->dec[i], &nm, mlp1, mlp2, 1, i, d, err));
    snprintf(p, sizeof p, "%s%s", nm.pre, nm.dec_ln);
    MT_TRY(bind_ln(w, &w->dec_ln, p, d, err));
    w->tok_out = w->tok;
    MT_TRY(widen_scales(w, err));
    return load_alignment(w, err);
}

int mt_whisper_load(mt_whisper **out, const char *dir, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_whisper *w = calloc(1, sizeof *w);
    if (!w) return mt_seterr(err, MT_ENOMEM, "out of memory");
    w->pool = pool;
    w->dir = strdup(dir);
    if (!w->dir) { free(w); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    int rc = load_inner(w, dir, err);
    if (rc) {
        mt_preferr(err, "whisper model '%s'", dir);
        mt_whisper_free(w);
        return rc;
    }
    *out = w;
    return MT_OK;
}

/* The encoder alone under a tensor-name prefix (mt_whisper_load_encoder). */
static int load_encoder_inner(mt_whisper *w, const char *dir, const char *prefix, mt_err *err) {
    MT_TRY(mt_config_load(&w->cfg, dir, err));
    mt_whisper_hp *hp = &w->hp;
    int d = hp->n_audio_state;
    if (hp->n_mels < 1 || hp->n_audio_ctx < 1 || hp->n_audio_layer < 0 || hp->n_audio_head < 1 || d < 4 ||
        d % 2 || d % hp->n_audio_head || hp->n_audio_ctx > (1 << 20) || d > (1 << 16) || hp->n_mels > 1024)
        return mt_seterr(err, MT_EFORMAT, "audio encoder: sizes out of range (d_model %d, heads %d, mels %d)", d,
                         hp->n_audio_head, hp->n_mels);
    MT_TRY(mt_safetensors_open_dir(&w->st, dir, err));
    names_t nm = HF_NAMES;
    nm.pre = prefix;
    nm.enc_blk = "%slayers.%d.";
    nm.conv1 = "conv1";
    nm.conv2 = "conv2";
    nm.enc_pos = "embed_positions.weight";
    nm.ln_post = "layer_norm";
    char p[320];
    for (int c = 0; c < 2; c++) {
        snprintf(p, sizeof p, "%s%s.weight", prefix, c ? nm.conv2 : nm.conv1);
        const mt_tensor_view *t = mt_safetensors_get(w->st, p);
        int in = c ? d : hp->n_mels;
        int mlx = t && t->ndim == 3 && t->shape[1] == 3 && t->shape[2] == in;   /* [out, k, in] */
        snprintf(p, sizeof p, "%s%s", prefix, c ? nm.conv2 : nm.conv1);
        MT_TRY(bind_conv(w, p, mlx, d, in, c ? &w->conv2_w : &w->conv1_w, c ? &w->conv2_b : &w->conv1_b, err));
    }
    int64_t ps[2] = {hp->n_audio_ctx, d};
    snprintf(p, sizeof p, "%s%s", prefix, nm.enc_pos);
    MT_TRY(read_f32(w, p, 2, ps, &w->enc_pos, err));
    w->enc = calloc((size_t)(hp->n_audio_layer ? hp->n_audio_layer : 1), sizeof *w->enc);
    if (!w->enc) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (int i = 0; i < hp->n_audio_layer; i++) MT_TRY(bind_block(w, &w->enc[i], &nm, nm.fc1, nm.fc2, 0, i, d, err));
    snprintf(p, sizeof p, "%s%s", prefix, nm.ln_post);
    MT_TRY(bind_ln(w, &w->ln_post, p, d, err));
    return widen_scales(w, err);
}

int mt_whisper_load_encoder(mt_whisper **out, const char *dir, const char *prefix, const mt_whisper_hp *hp,
                            mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_whisper *w = calloc(1, sizeof *w);
    if (!w) return mt_seterr(err, MT_ENOMEM, "out of memory");
    w->pool = pool;
    w->hp = (mt_whisper_hp){.n_mels = hp->n_mels, .n_audio_ctx = hp->n_audio_ctx, .n_audio_state = hp->n_audio_state,
                            .n_audio_head = hp->n_audio_head, .n_audio_layer = hp->n_audio_layer};
    w->dir = strdup(dir);
    if (!w->dir) { free(w); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    int rc = load_encoder_inner(w, dir, prefix, err);
    if (rc) {
        mt_whisper_free(w);
        return rc;
    }
    *out = w;
    return MT_OK;
}

static void free_ln(ln_t *l) { free(l->w); free(l->b); }

static void free_blocks(block_t *b, int n) {
    if (!b) return;
    for (int i = 0; i < n; i++) {
        free_ln(&b[i].self.ln);
        free_ln(&b[i].cross.ln);
        free_ln(&b[i].mlp_ln);
    }
    free(b);
}

void mt_whisper_free(mt_whisper *w) {
    if (!w) return;
    free_blocks(w->enc, w->hp.n_audio_layer);
    free_blocks(w->dec, w->hp.n_text_layer);
    free_ln(&w->ln_post);
    free_ln(&w->dec_ln);
    free(w->conv1_w); free(w->conv1_b); free(w->conv2_w); free(w->conv2_b);
    free(w->enc_pos); free(w->dec_pos);
    free(w->align);
    for (size_t i = 0; i < w->n_owned; i++) free(w->owned[i]);
    free(w->owned);
    mt_safetensors_free(w->st);
    mt_config_free(w->cfg);
    free(w->dir);
    free(w);
}

const mt_whisper_hp *mt_whisper_hparams(const mt_whisper *w) { return &w->hp; }
const char *mt_whisper_dir(const mt_whisper *w) { return w->dir; }
size_t mt_whisper_alignment_heads(const mt_whisper *w, const int (**pairs)[2]) {
    if (pairs) *pairs = (const int (*)[2])w->align;
    return w->n_align;
}

/* ------------------------------------------------------------------ row-parallel pieces */

enum { ROW_LN, ROW_GELU, ROW_ADD, ROW_ADD_LN };

typedef struct rows_ctx {
    int op;
    float *x, *y;            /* ROW_LN: y = LN(x); ROW_GELU: x = gelu(x); ROW_ADD: x += y; ROW_ADD_LN: x += y, y = LN(x) */
    const float *a;          /* ROW_ADD: addend */
    const ln_t *ln;
    size_t n;                /* row width */
} rows_ctx;

static void rows_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    rows_ctx *r = c;
    size_t n = r->n;
    for (size_t t = b; t < e; t++) {
        float *x = r->x + t * n;
        switch (r->op) {
        case ROW_LN: mt_layernorm(r->y + t * n, x, r->ln->w, r->ln->b, n, LN_EPS); break;
        case ROW_GELU: mt_enc_act(MT_ENC_ACT_GELU, x, n); break;   /* erf GELU, |erf error| <= 1.5e-7 */
        case ROW_ADD: {
            const float *a = r->a + t * n;
            for (size_t i = 0; i < n; i++) x[i] += a[i];
            break;
        }
        default: {
            const float *a = r->a + t * n;
            for (size_t i = 0; i < n; i++) x[i] += a[i];
            mt_layernorm(r->y + t * n, x, r->ln->w, r->ln->b, n, LN_EPS);
        }
        }
    }
}

static void rows_op(mt_pool *pool, int op, float *x, float *y, const float *a, const ln_t *ln, size_t T, size_t n) {
    rows_ctx c = {op, x, y, a, ln, n};
    mt_pool_for(pool, T, 16, rows_task, &c);
}

typedef struct lin_ctx {
    const mt_linear *l;
    const float *x;
    float *y;
} lin_ctx;

static void lin_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    lin_ctx *k = c;
    mt_linear_forward(k->l, k->x + b * k->l->in, e - b, k->y + b * k->l->out, NULL, NULL);
}

typedef struct deq_ctx {
    const mt_linear *l;
    float *w;
} deq_ctx;

static void deq_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    deq_ctx *k = c;
    const mt_linear *l = k->l;
    if (!l->quantized) {
        mt_convert_to_f32(k->w + b * l->in, (const char *)l->w + b * l->in * mt_dtype_size(l->wdt), l->wdt,
                          (e - b) * l->in);
        return;
    }
    for (size_t r = b; r < e; r++) mt_linear_row_f32(l, r, k->w + r * l->in);
}

static void gemm(const mt_whisper *w, const float *A, size_t M, size_t K, const float *B, const float *bias, size_t N,
                 float *C);

typedef struct bias_ctx {
    const mt_linear *l;
    float *y;
} bias_ctx;

static void bias_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    bias_ctx *k = c;
    mt_linear_add_bias(k->l, e - b, k->y + b * k->l->out);
}

/* y[T, out] = x W^T + b for many rows (the encoder and the cross K/V). */
static void big_linear(const mt_whisper *w, const mt_linear *l, const float *x, size_t T, float *y) {
    /* int8 arithmetic selected (MT_QMATH_INT8): the integer tile kernels,
     * split over the pool by mt_linear_forward itself */
    if (l->quantized && mt_linear_qmath(l) == MT_QMATH_INT8) {
        mt_linear nb = *l;   /* the bias added here, row by row over the pool */
        nb.bias = NULL;
        mt_linear_forward(&nb, x, T, y, NULL, w->pool);
        if (l->bias) {
            bias_ctx bc = {l, y};
            mt_pool_for(w->pool, T, 64, bias_task, &bc);
        }
        return;
    }
    /* W as float32 once per call (converted over the pool), then sgemm */
    if (T >= 64 && (l->quantized ? 32 % l->bits == 0 : l->wdt != MT_F32)) {
        float *wf = malloc(l->out * l->in * sizeof *wf), *bf = calloc(l->out, sizeof *bf);
        if (wf && bf) {
            deq_ctx k = {l, wf};
            mt_pool_for(w->pool, l->out, 16, deq_task, &k);
            if (l->bias) mt_convert_to_f32(bf, l->bias, l->bdt, l->out);
            gemm(w, x, T, l->in, wf, bf, l->out, y);
            free(wf);
            free(bf);
            return;
        }
        free(wf);
        free(bf);
    }
    if (T >= 64 && split_mode(w)) {
        lin_ctx k = {l, x, y};
        size_t nt = (size_t)mt_pool_size(w->pool);
        mt_pool_for(w->pool, T, (T + nt - 1) / nt, lin_task, &k);
        return;
    }
    mt_linear_forward(l, x, T, y, NULL, w->pool);
}

/* C[M, N] = A[M, K] B[N, K]^T + bias with owned float32 B (the convolutions). */
typedef struct gemm_ctx {
    const float *A, *B, *bias;
    float *C;
    size_t K, N;
} gemm_ctx;

static void gemm_rows(const gemm_ctx *g, size_t b, size_t e) {
    for (size_t t = b; t < e; t++) memcpy(g->C + t * g->N, g->bias, g->N * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(e - b), (int)g->N, (int)g->K, 1.0f, g->A + b * g->K,
                (int)g->K, g->B, (int)g->K, 1.0f, g->C + b * g->N, (int)g->N);
}

static void gemm_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    gemm_rows(c, b, e);
}

static void gemm(const mt_whisper *w, const float *A, size_t M, size_t K, const float *B, const float *bias, size_t N,
                 float *C) {
    gemm_ctx g = {A, B, bias, C, K, N};
    if (split_mode(w)) {
        size_t nt = (size_t)mt_pool_size(w->pool);
        mt_pool_for(w->pool, M, (M + nt - 1) / nt, gemm_task, &g);
    } else {
        gemm_rows(&g, 0, M);
    }
}

/* ------------------------------------------------------------------ encoder */

typedef struct eatt_ctx {
    const float *q, *k, *v;  /* [T, d] */
    float *o;                /* [T, d] */
    float *scr;              /* per thread [ATT_ROWS, T] */
    size_t T, d, hd, nblk;
    float scale;
    int threaded;            /* 1: called from pool threads (sgemm on one thread each) */
    mt_pool *pool;
} eatt_ctx;

typedef struct smax_ctx {
    float *s;
    size_t n;
} smax_ctx;

static void smax_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    smax_ctx *k = c;
    for (size_t r = b; r < e; r++) mt_softmax(k->s + r * k->n, k->n);
}

/* task = (head, block of ATT_ROWS query rows) */
static void eatt_one(eatt_ctx *a, size_t task, float *S) {
    size_t h = task / a->nblk, r0 = (task % a->nblk) * ATT_ROWS;
    size_t nr = a->T - r0 < ATT_ROWS ? a->T - r0 : ATT_ROWS;
    size_t T = a->T, d = a->d, hd = a->hd;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)T, (int)hd, a->scale, a->q + r0 * d + h * hd,
                (int)d, a->k + h * hd, (int)d, 0.0f, S, (int)T);
    smax_ctx sc = {S, T};
    if (a->threaded) smax_task(&sc, 0, nr, 0);
    else mt_pool_for(a->pool, nr, 8, smax_task, &sc);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)hd, (int)T, 1.0f, S, (int)T, a->v + h * hd,
                (int)d, 0.0f, a->o + r0 * d + h * hd, (int)d);
}

static void eatt_task(void *c, size_t b, size_t e, int tid) {
    eatt_ctx *a = c;
    for (size_t t = b; t < e; t++) eatt_one(a, t, a->scr + (size_t)tid * ATT_ROWS * a->T);
}

static void enc_attention(const mt_whisper *w, const float *q, const float *k, const float *v, float *o, float *scr,
                          size_t T, int H) {
    size_t d = (size_t)w->hp.n_audio_state, hd = d / (size_t)H;
    eatt_ctx a = {q, k, v, o, scr, T, d, hd, (T + ATT_ROWS - 1) / ATT_ROWS, (float)(1.0 / sqrt((double)hd)), 0,
                  w->pool};
    size_t ntask = (size_t)H * a.nblk;
    if (split_mode(w)) {
        a.threaded = 1;
        mt_pool_for(w->pool, ntask, 1, eatt_task, &a);
    } else {
        for (size_t t = 0; t < ntask; t++) eatt_one(&a, t, scr);
    }
}

int mt_whisper_encode(mt_whisper *w, const float *mel, float *xa, mt_err *err) {
    const mt_whisper_hp *hp = &w->hp;
    size_t nm = (size_t)hp->n_mels, Ta = (size_t)hp->n_audio_ctx, T1 = 2 * Ta, d = (size_t)hp->n_audio_state;
    size_t nt = (size_t)mt_pool_size(w->pool);
    size_t ncol = 3 * (nm > d ? nm : d);
    size_t n_x = Ta * d, n_big = T1 * ncol > 4 * Ta * d ? T1 * ncol : 4 * Ta * d;
    size_t n_c1 = T1 * d > 3 * Ta * d ? T1 * d : 3 * Ta * d;
    size_t n_scr = nt * ATT_ROWS * Ta;
    float *mem = malloc((n_x * 3 + n_big + n_c1 + n_scr) * sizeof(float));
    if (!mem) return mt_seterr(err, MT_ENOMEM, "out of memory for the whisper encoder");
    float *x = mem, *h = x + n_x, *att = h + n_x, *big = att + n_x, *c1 = big + n_big, *scr = c1 + n_c1;

    /* conv1 (k 3, pad 1) as im2col [T1, 3 nm] x W^T; mel is [nm, T1] */
    float *col = big;
    for (size_t t = 0; t < T1; t++)
        for (size_t k = 0; k < 3; k++) {
            float *dst = col + t * 3 * nm + k * nm;
            long src = (long)t + (long)k - 1;
            if (src < 0 || src >= (long)T1) { memset(dst, 0, nm * sizeof(float)); continue; }
            for (size_t m = 0; m < nm; m++) dst[m] = mel[m * T1 + (size_t)src];
        }
    gemm(w, col, T1, 3 * nm, w->conv1_w, w->conv1_b, d, c1);
    rows_op(w->pool, ROW_GELU, c1, NULL, NULL, NULL, T1, d);
    /* conv2 (k 3, stride 2, pad 1) */
    for (size_t t = 0; t < Ta; t++)
        for (size_t k = 0; k < 3; k++) {
            float *dst = col + t * 3 * d + k * d;
            long src = 2 * (long)t + (long)k - 1;
            if (src < 0 || src >= (long)T1) memset(dst, 0, d * sizeof(float));
            else memcpy(dst, c1 + (size_t)src * d, d * sizeof(float));
        }
    gemm(w, col, Ta, 3 * d, w->conv2_w, w->conv2_b, d, x);
    rows_op(w->pool, ROW_GELU, x, NULL, NULL, NULL, Ta, d);
    rows_op(w->pool, ROW_ADD, x, NULL, w->enc_pos, NULL, Ta, d);

    float *q = c1, *k = c1 + n_x, *v = c1 + 2 * n_x;
    for (int L = 0; L < hp->n_audio_layer; L++) {
        const block_t *b = &w->enc[L];
        rows_op(w->pool, ROW_LN, x, h, NULL, &b->self.ln, Ta, d);
        big_linear(w, &b->self.q, h, Ta, q);
        big_linear(w, &b->self.k, h, Ta, k);
        big_linear(w, &b->self.v, h, Ta, v);
        enc_attention(w, q, k, v, att, scr, Ta, hp->n_audio_head);
        big_linear(w, &b->self.o, att, Ta, h);
        rows_op(w->pool, ROW_ADD_LN, x, att, h, &b->mlp_ln, Ta, d);   /* x += o; att = LN(x) */
        big_linear(w, &b->fc1, att, Ta, big);
        rows_op(w->pool, ROW_GELU, big, NULL, NULL, NULL, Ta, 4 * d);
        big_linear(w, &b->fc2, big, Ta, h);
        rows_op(w->pool, ROW_ADD, x, NULL, h, NULL, Ta, d);
    }
    rows_op(w->pool, ROW_LN, x, xa, NULL, &w->ln_post, Ta, d);
    free(mem);
    return MT_OK;
}

/* ------------------------------------------------------------------ decoder */

struct mt_whisper_dec {
    mt_whisper *w;
    int n_seq, len, cap;
    float **kv;              /* per sequence [cap][n_layer][2][d] (K, V) */
    float *xk, *xv;          /* cross K (pre-scaled by hd^-1/4) and V: [n_layer][Ta][d] */
    float *xkt;              /* the same K per head transposed: [n_layer][n_head][hd][Ta] (XS_SIMD) */
    int *cap_map;            /* cross-qk capture: [n_layer * n_head] -> alignment index or -1 */
};

int mt_whisper_dec_new(mt_whisper_dec **out, mt_whisper *w, const float *xa, int n_seq, mt_err *err) {
    *out = NULL;
    if (n_seq < 1) return mt_seterr(err, MT_EINVAL, "whisper decoder: n_seq %d < 1", n_seq);
    const mt_whisper_hp *hp = &w->hp;
    size_t Ta = (size_t)hp->n_audio_ctx, d = (size_t)hp->n_text_state, NL = (size_t)hp->n_text_layer;
    mt_whisper_dec *dd = calloc(1, sizeof *dd);
    if (!dd) return mt_seterr(err, MT_ENOMEM, "out of memory");
    dd->w = w;
    dd->n_seq = n_seq;
    dd->kv = calloc((size_t)n_seq, sizeof *dd->kv);
    dd->xk = malloc(NL * Ta * d * sizeof(float));
#ifdef XS_SIMD
    dd->xkt = malloc(NL * Ta * d * sizeof(float));
    if (!dd->xkt) {
        mt_whisper_dec_free(dd);
        return mt_seterr(err, MT_ENOMEM, "out of memory for the whisper decoder");
    }
#endif
    dd->xv = malloc(NL * Ta * d * sizeof(float));
    if (!dd->kv || !dd->xk || !dd->xv) {
        mt_whisper_dec_free(dd);
        return mt_seterr(err, MT_ENOMEM, "out of memory for the whisper decoder");
    }
    size_t hd = d / (size_t)hp->n_text_head;
    float s = (float)pow((double)hd, -0.25);
    for (size_t L = 0; L < NL; L++) {
        float *K = dd->xk + L * Ta * d, *V = dd->xv + L * Ta * d;
        big_linear(w, &w->dec[L].cross.k, xa, Ta, K);
        big_linear(w, &w->dec[L].cross.v, xa, Ta, V);
        for (size_t i = 0; i < Ta * d; i++) K[i] *= s;
        if (dd->xkt) {   /* [h][i][j] = K[j][h * hd + i] */
            float *KT = dd->xkt + L * Ta * d;
            for (size_t j = 0; j < Ta; j++)
                for (size_t c = 0; c < d; c++) KT[((c / hd) * hd + c % hd) * Ta + j] = K[j * d + c];
        }
    }
    *out = dd;
    return MT_OK;
}

void mt_whisper_dec_free(mt_whisper_dec *d) {
    if (!d) return;
    if (d->kv)
        for (int i = 0; i < d->n_seq; i++) free(d->kv[i]);
    free(d->kv);
    free(d->xk);
    free(d->xkt);
    free(d->xv);
    free(d);
}

void mt_whisper_dec_reset(mt_whisper_dec *d) { d->len = 0; }
int mt_whisper_dec_len(const mt_whisper_dec *d) { return d->len; }
int mt_whisper_dec_nseq(const mt_whisper_dec *d) { return d->n_seq; }

static size_t kv_row(const mt_whisper_dec *d) { return (size_t)d->w->hp.n_text_layer * 2 * (size_t)d->w->hp.n_text_state; }

static int grow(mt_whisper_dec *d, int need, mt_err *err) {
    if (need <= d->cap) return MT_OK;
    int nc = d->cap ? d->cap * 2 : 32;
    if (nc < need) nc = need;
    if (nc > d->w->hp.n_text_ctx) nc = d->w->hp.n_text_ctx;
    size_t row = kv_row(d);
    for (int i = 0; i < d->n_seq; i++) {
        float *p = realloc(d->kv[i], (size_t)nc * row * sizeof(float));
        if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory for the whisper KV cache");
        d->kv[i] = p;
    }
    d->cap = nc;
    return MT_OK;
}

int mt_whisper_dec_reorder(mt_whisper_dec *d, const int *src, mt_err *err) {
    int n = d->n_seq;
    if (n < 1) return MT_OK;
    for (int i = 0; i < n; i++)
        if (src[i] < 0 || src[i] >= n)
            return mt_seterr(err, MT_EINVAL, "whisper decoder reorder: source %d outside [0, %d)", src[i], n);
    float **np = calloc((size_t)n, sizeof *np);
    char *claimed = calloc((size_t)n, 1);
    if (!np || !claimed) {
        free(np);
        free(claimed);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++)
        if (!claimed[src[i]]) { claimed[src[i]] = 1; np[i] = d->kv[src[i]]; }
    int f = 0;   /* buffers nobody claimed take the copies */
    size_t bytes = (size_t)d->len * kv_row(d) * sizeof(float);
    for (int i = 0; i < n; i++) {
        if (np[i]) continue;
        while (claimed[f]) f++;
        claimed[f] = 1;
        np[i] = d->kv[f];
        if (bytes) memcpy(np[i], d->kv[src[i]], bytes);
    }
    memcpy(d->kv, np, (size_t)n * sizeof *np);
    free(np);
    free(claimed);
    return MT_OK;
}

typedef struct datt_ctx {
    const mt_whisper_dec *dd;
    const float *q;          /* [R, d] */
    float *o;                /* [R, d] */
    float *scr;              /* per thread [max(Ta, n_text_ctx)] */
    size_t scr_n;
    int n_tok, layer, cross;
    size_t H, hd, d;
    float s2;                /* self-attention: 1/sqrt(hd); cross: hd^-1/4 (K pre-scaled) */
    float *cap;              /* cross-qk capture base or NULL */
    int n_cap_tok;
} datt_ctx;

static void datt_task(void *c, size_t b, size_t e, int tid) {
    datt_ctx *a = c;
    const mt_whisper_dec *dd = a->dd;
    size_t d = a->d, hd = a->hd, Ta = (size_t)dd->w->hp.n_audio_ctx, row = kv_row(dd);
    float *S = a->scr + (size_t)tid * a->scr_n;
    for (size_t task = b; task < e; task++) {
        size_t r = task / a->H, h = task % a->H;
        size_t s = r / (size_t)a->n_tok, t = r % (size_t)a->n_tok;
        const float *q = a->q + r * d + h * hd;
        float *o = a->o + r * d + h * hd;
        memset(o, 0, hd * sizeof(float));
        if (a->cross) {
            const float *K = dd->xk + (size_t)a->layer * Ta * d + h * hd;
            const float *V = dd->xv + (size_t)a->layer * Ta * d + h * hd;
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)Ta, (int)hd, a->s2, K, (int)d, q, 1, 0.0f, S, 1);
            if (a->cap) {
                int ci = dd->cap_map[(size_t)a->layer * a->H + h];
                if (ci >= 0) memcpy(a->cap + ((size_t)ci * (size_t)a->n_cap_tok + t) * Ta, S, Ta * sizeof(float));
            }
            mt_softmax(S, Ta);
            cblas_sgemv(CblasRowMajor, CblasTrans, (int)Ta, (int)hd, 1.0f, V, (int)d, S, 1, 0.0f, o, 1);
        } else {
            size_t n = (size_t)dd->len + t + 1;
            const float *base = dd->kv[s] + ((size_t)a->layer * 2) * d + h * hd;
            for (size_t j = 0; j < n; j++) S[j] = a->s2 * mt_dot(q, base + j * row, hd);
            mt_softmax(S, n);
            for (size_t j = 0; j < n; j++) mt_axpy(o, S[j], base + j * row + d, hd);
        }
    }
}

/* Cross-attention of several rows (beams, prompt tokens) at once: per task a
 * head and a block of up to XATT_ROWS rows, S = Q_h K_h^T and O_h = P V_h as
 * sgemm, so that the head's K/V are read once for all the rows (the per-row
 * sgemv of datt_task reads them once per row). */
#define XATT_ROWS 32

static void xatt_task(void *c, size_t b, size_t e, int tid) {
    datt_ctx *a = c;
    const mt_whisper_dec *dd = a->dd;
    size_t d = a->d, hd = a->hd, Ta = (size_t)dd->w->hp.n_audio_ctx;
    size_t R = (size_t)dd->n_seq * (size_t)a->n_tok, nblk = (R + XATT_ROWS - 1) / XATT_ROWS;
    float *S = a->scr + (size_t)tid * a->scr_n;
    for (size_t task = b; task < e; task++) {
        size_t h = task / nblk, r0 = (task % nblk) * XATT_ROWS, nr = R - r0 < XATT_ROWS ? R - r0 : XATT_ROWS;
        const float *K = dd->xk + (size_t)a->layer * Ta * d + h * hd;
        const float *V = dd->xv + (size_t)a->layer * Ta * d + h * hd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)Ta, (int)hd, a->s2, a->q + r0 * d + h * hd,
                    (int)d, K, (int)d, 0.0f, S, (int)Ta);
        int ci = a->cap ? dd->cap_map[(size_t)a->layer * a->H + h] : -1;
        for (size_t i = 0; i < nr; i++) {
            float *Si = S + i * Ta;
            if (ci >= 0) {
                size_t t = (r0 + i) % (size_t)a->n_tok;
                memcpy(a->cap + ((size_t)ci * (size_t)a->n_cap_tok + t) * Ta, Si, Ta * sizeof(float));
            }
            mt_softmax(Si, Ta);
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)hd, (int)Ta, 1.0f, S, (int)Ta, V, (int)d,
                    0.0f, a->o + r0 * d + h * hd, (int)d);
    }
}

#ifdef XS_SIMD
/* Cross-attention of 2..XS_MAX rows (beams) for one head, AVX2: scores from
 * the transposed K (8 audio positions per vector, one accumulator per row, no
 * horizontal sums), then P V with 16 output lanes per pass; K and V are read
 * once for all the rows and nothing is packed (sgemm copies both per call). */
#define XS_MAX 6
#define XS_IB 8

static inline __attribute__((always_inline)) void xs_head(const float *KT, const float *V, const float *q,
                                                           float *o, float *S, size_t Ta, size_t hd, size_t d,
                                                           float s2, size_t NR, const datt_ctx *a, int ci) {
    /* S accumulates over blocks of XS_IB rows of KT (XS_IB sequential streams) */
    size_t Tv = Ta / 8 * 8;
    memset(S, 0, NR * Ta * sizeof(float));
    for (size_t i0 = 0; i0 < hd; i0 += XS_IB) {
        size_t ib = hd - i0 < XS_IB ? hd - i0 : XS_IB;
        for (size_t j = 0; j < Tv; j += 8) {
            __m256 acc[XS_MAX];
            for (size_t r = 0; r < NR; r++) acc[r] = _mm256_loadu_ps(S + r * Ta + j);
            for (size_t i = i0; i < i0 + ib; i++) {
                __m256 kv = _mm256_loadu_ps(KT + i * Ta + j);
                for (size_t r = 0; r < NR; r++) acc[r] = _mm256_fmadd_ps(_mm256_broadcast_ss(q + r * d + i), kv, acc[r]);
            }
            for (size_t r = 0; r < NR; r++) _mm256_storeu_ps(S + r * Ta + j, acc[r]);
        }
        for (size_t j = Tv; j < Ta; j++)
            for (size_t r = 0; r < NR; r++)
                for (size_t i = i0; i < i0 + ib; i++) S[r * Ta + j] += q[r * d + i] * KT[i * Ta + j];
    }
    for (size_t r = 0; r < NR; r++)
        for (size_t j = 0; j < Ta; j++) S[r * Ta + j] *= s2;
    for (size_t r = 0; r < NR; r++) {
        if (ci >= 0) {
            size_t t = r % (size_t)a->n_tok;
            memcpy(a->cap + ((size_t)ci * (size_t)a->n_cap_tok + t) * Ta, S + r * Ta, Ta * sizeof(float));
        }
        mt_softmax(S + r * Ta, Ta);
    }
    size_t c = 0;
    for (; c + 16 <= hd; c += 16) {
        __m256 a0[XS_MAX], a1[XS_MAX];
        for (size_t r = 0; r < NR; r++) a0[r] = a1[r] = _mm256_setzero_ps();
        for (size_t jj = 0; jj < Ta; jj++) {
            __m256 v0 = _mm256_loadu_ps(V + jj * d + c), v1 = _mm256_loadu_ps(V + jj * d + c + 8);
            for (size_t r = 0; r < NR; r++) {
                __m256 p = _mm256_broadcast_ss(S + r * Ta + jj);
                a0[r] = _mm256_fmadd_ps(p, v0, a0[r]);
                a1[r] = _mm256_fmadd_ps(p, v1, a1[r]);
            }
        }
        for (size_t r = 0; r < NR; r++) {
            _mm256_storeu_ps(o + r * d + c, a0[r]);
            _mm256_storeu_ps(o + r * d + c + 8, a1[r]);
        }
    }
    for (; c < hd; c++)
        for (size_t r = 0; r < NR; r++) {
            float acc = 0.0f;
            for (size_t jj = 0; jj < Ta; jj++) acc += S[r * Ta + jj] * V[jj * d + c];
            o[r * d + c] = acc;
        }
}

/* One row (greedy) keeps the sgemv path: no faster here, and the default
 * greedy results stay as they were. */
static size_t xs_min(void) { return 2; }
static void xs_task(void *c, size_t b, size_t e, int tid) {
    datt_ctx *a = c;
    const mt_whisper_dec *dd = a->dd;
    size_t d = a->d, hd = a->hd, Ta = (size_t)dd->w->hp.n_audio_ctx, R = (size_t)dd->n_seq * (size_t)a->n_tok;
    float *S = a->scr + (size_t)tid * a->scr_n;
    for (size_t h = b; h < e; h++) {
        const float *KT = dd->xkt + ((size_t)a->layer * a->H + h) * hd * Ta;
        const float *V = dd->xv + (size_t)a->layer * Ta * d + h * hd;
        const float *q = a->q + h * hd;
        float *o = a->o + h * hd;
        int ci = a->cap ? dd->cap_map[(size_t)a->layer * a->H + h] : -1;
        switch (R) {   /* constant row counts: the accumulators stay in registers */
        case 1: xs_head(KT, V, q, o, S, Ta, hd, d, a->s2, 1, a, ci); break;
        case 2: xs_head(KT, V, q, o, S, Ta, hd, d, a->s2, 2, a, ci); break;
        case 3: xs_head(KT, V, q, o, S, Ta, hd, d, a->s2, 3, a, ci); break;
        case 4: xs_head(KT, V, q, o, S, Ta, hd, d, a->s2, 4, a, ci); break;
        case 5: xs_head(KT, V, q, o, S, Ta, hd, d, a->s2, 5, a, ci); break;
        default: xs_head(KT, V, q, o, S, Ta, hd, d, a->s2, 6, a, ci); break;
        }
    }
}
#endif

/* Decoder products (few rows).  mt_linear_forward runs F32 weights with
 * several rows as one sgemm; when OpenBLAS runs one thread, the output
 * columns are split over the pool instead. */
/* Decoder work below this many multiply-adds runs on the calling thread.
 * With the pool's spinning workers a dispatch costs about a microsecond, so
 * even a 384 x 384 product is worth splitting (tiny.en on 5 min of audio,
 * 2 threads: 2^12..2^16 all give 5.7 s greedy, 14-15 s beam 5; 2^21, the
 * setting for a pool that slept between jobs, 7.0 s and 17 s). */
#ifndef DEC_SPLIT_MIN
#define DEC_SPLIT_MIN ((size_t)1 << 14)
#endif
static size_t dec_split_min(void) { return DEC_SPLIT_MIN; }

static void dec_linear(const mt_whisper *w, const mt_linear *l, const float *x, size_t T, float *y, float *work) {
    mt_pool *pool = l->out * l->in * T >= dec_split_min() ? w->pool : NULL;
    mt_linear_forward(l, x, T, y, work, pool);
}

static int dec_step(mt_whisper_dec *dd, const int32_t *ids, int n_tok, int all_positions, float *logits, float *cap,
                    mt_err *err) {
    mt_whisper *w = dd->w;
    const mt_whisper_hp *hp = &w->hp;
    if (n_tok < 1) return mt_seterr(err, MT_EINVAL, "whisper decoder: n_tok %d < 1", n_tok);
    if (dd->len + n_tok > hp->n_text_ctx)
        return mt_seterr(err, MT_EINVAL, "whisper decoder: %d cached + %d new tokens exceed n_text_ctx %d", dd->len,
                         n_tok, hp->n_text_ctx);
    size_t R = (size_t)dd->n_seq * (size_t)n_tok, d = (size_t)hp->n_text_state, V = (size_t)hp->n_vocab;
    for (size_t r = 0; r < R; r++)
        if (ids[r] < 0 || (size_t)ids[r] >= V)
            return mt_seterr(err, MT_EINVAL, "whisper decoder: token id %d outside the vocabulary (%zu)", (int)ids[r],
                             V);
    MT_TRY(grow(dd, dd->len + n_tok, err));
    size_t nt = (size_t)mt_pool_size(w->pool), Ta = (size_t)hp->n_audio_ctx;
    size_t scr_n = Ta > (size_t)hp->n_text_ctx ? Ta : (size_t)hp->n_text_ctx;
    if (R > 1 && R <= 8 && R * Ta > scr_n) scr_n = R * Ta;   /* xs_task: all rows of a head */
    if (R > 1) scr_n = (R < XATT_ROWS ? R : XATT_ROWS) * Ta > scr_n ? (R < XATT_ROWS ? R : XATT_ROWS) * Ta : scr_n;
    size_t work_n = nt * 4 * d + MT_LINEAR_WORK_SLACK;
    float *mem = malloc((R * d * 6 + R * 4 * d + nt * scr_n + work_n) * sizeof(float));
    if (!mem) return mt_seterr(err, MT_ENOMEM, "out of memory in the whisper decoder");
    float *x = mem, *h = x + R * d, *q = h + R * d, *k = q + R * d, *v = k + R * d, *att = v + R * d;
    float *m = att + R * d, *scr = m + R * 4 * d, *work = mt_linear_work_align(scr + nt * scr_n);
    size_t row = kv_row(dd);
    for (size_t r = 0; r < R; r++) {
        size_t pos = (size_t)dd->len + r % (size_t)n_tok;
        mt_linear_row(&w->tok, (size_t)ids[r], x + r * d);
        const float *pe = w->dec_pos + pos * d;
        for (size_t i = 0; i < d; i++) x[r * d + i] += pe[i];
    }
    size_t H = (size_t)hp->n_text_head, hd = d / H;
    for (int L = 0; L < hp->n_text_layer; L++) {
        const block_t *b = &w->dec[L];
        rows_op(w->pool, ROW_LN, x, h, NULL, &b->self.ln, R, d);
        dec_linear(w, &b->self.q, h, R, q, work);
        dec_linear(w, &b->self.k, h, R, k, work);
        dec_linear(w, &b->self.v, h, R, v, work);
        for (size_t r = 0; r < R; r++) {
            size_t s = r / (size_t)n_tok, pos = (size_t)dd->len + r % (size_t)n_tok;
            float *dst = dd->kv[s] + pos * row + (size_t)L * 2 * d;
            memcpy(dst, k + r * d, d * sizeof(float));
            memcpy(dst + d, v + r * d, d * sizeof(float));
        }
        datt_ctx a = {dd, q, att, scr, scr_n, n_tok, L, 0, H, hd, d, (float)(1.0 / sqrt((double)hd)), NULL, n_tok};
        mt_pool_for(R * d * ((size_t)dd->len + (size_t)n_tok) >= dec_split_min() ? w->pool : NULL, R * H, 1,
                    datt_task, &a);
        dec_linear(w, &b->self.o, att, R, h, work);
        rows_op(w->pool, ROW_ADD_LN, x, att, h, &b->cross.ln, R, d);   /* x += o; att = LN(x) */
        dec_linear(w, &b->cross.q, att, R, q, work);
        datt_ctx c = {dd, q, att, scr, scr_n, n_tok, L, 1, H, hd, d, (float)pow((double)hd, -0.25), cap, n_tok};
#ifdef XS_SIMD
        if (R >= xs_min() && R <= XS_MAX && dd->xkt) {
            mt_pool_for(w->pool, H, 1, xs_task, &c);
        } else
#endif
        if (R > 1) {
            size_t ntask = H * ((R + XATT_ROWS - 1) / XATT_ROWS);
            if (split_mode(w) || mt_pool_size(w->pool) == 1) mt_pool_for(w->pool, ntask, 1, xatt_task, &c);
            else xatt_task(&c, 0, ntask, 0);   /* sgemm on OpenBLAS's threads */
        } else if (split_mode(w) || mt_pool_size(w->pool) == 1) {
            mt_pool_for(w->pool, R * H, 1, datt_task, &c);
        } else {
            datt_task(&c, 0, R * H, 0);   /* sgemv on OpenBLAS's threads */
        }
        dec_linear(w, &b->cross.o, att, R, h, work);
        rows_op(w->pool, ROW_ADD_LN, x, att, h, &b->mlp_ln, R, d);
        dec_linear(w, &b->fc1, att, R, m, work);
        rows_op(w->pool, ROW_GELU, m, NULL, NULL, NULL, R, 4 * d);
        dec_linear(w, &b->fc2, m, R, h, work);
        rows_op(w->pool, ROW_ADD, x, NULL, h, NULL, R, d);
    }
    dd->len += n_tok;
    if (logits) {
        size_t nrow = R;
        if (!all_positions) {   /* each sequence's last position */
            nrow = (size_t)dd->n_seq;
            for (size_t s = 0; s < nrow; s++)
                memmove(x + s * d, x + (s * (size_t)n_tok + (size_t)n_tok - 1) * d, d * sizeof(float));
        }
        rows_op(w->pool, ROW_LN, x, h, NULL, &w->dec_ln, nrow, d);
        dec_linear(w, &w->tok_out, h, nrow, logits, work);
    }
    free(mem);
    return MT_OK;
}

int mt_whisper_dec_step(mt_whisper_dec *d, const int32_t *ids, int n_tok, int all_positions, float *logits,
                        mt_err *err) {
    return dec_step(d, ids, n_tok, all_positions, logits, NULL, err);
}

/* Run ids from an empty cache (a scratch single-sequence decoder sharing the
 * projected audio xk/xv), capturing the alignment heads' pre-softmax q.k. */
static int cross_qk_run(mt_whisper *w, float *xk, float *xv, float *xkt, const int32_t *ids, int n_tok, float *qk, float *logits,
                        mt_err *err) {
    size_t nh = (size_t)w->hp.n_text_layer * (size_t)w->hp.n_text_head;
    float *kv0 = NULL;
    mt_whisper_dec tmp = {0};
    tmp.w = w;
    tmp.n_seq = 1;
    tmp.kv = &kv0;
    tmp.xk = xk;
    tmp.xv = xv;
    tmp.xkt = xkt;
    tmp.cap_map = malloc(nh * sizeof *tmp.cap_map);
    if (!tmp.cap_map) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < nh; i++) tmp.cap_map[i] = -1;
    for (size_t i = 0; i < w->n_align; i++)
        tmp.cap_map[(size_t)w->align[i][0] * (size_t)w->hp.n_text_head + (size_t)w->align[i][1]] = (int)i;
    int rc = dec_step(&tmp, ids, n_tok, 1, logits, qk, err);
    size_t per = (size_t)n_tok * (size_t)w->hp.n_audio_ctx;
    for (size_t i = 0; !rc && qk && i < w->n_align; i++) {   /* a head listed twice */
        int src = tmp.cap_map[(size_t)w->align[i][0] * (size_t)w->hp.n_text_head + (size_t)w->align[i][1]];
        if ((size_t)src != i) memcpy(qk + i * per, qk + (size_t)src * per, per * sizeof(float));
    }
    free(tmp.cap_map);
    free(kv0);
    return rc;
}

int mt_whisper_cross_qk(mt_whisper *w, const float *xa, const int32_t *ids, int n_tok, float *qk, float *logits,
                        mt_err *err) {
    mt_whisper_dec *d = NULL;
    MT_TRY(mt_whisper_dec_new(&d, w, xa, 1, err));
    int rc = cross_qk_run(w, d->xk, d->xv, d->xkt, ids, n_tok, qk, logits, err);
    mt_whisper_dec_free(d);
    return rc;
}

int mt_whisper_dec_cross_qk(mt_whisper_dec *d, const int32_t *ids, int n_tok, float *qk, float *logits, mt_err *err) {
    return cross_qk_run(d->w, d->xk, d->xv, d->xkt, ids, n_tok, qk, logits, err);
}
