/* moonshine.c - the Moonshine speech recogniser (models/moonshine.h) and its
 * mt_asr family (stt/asr.h).
 *
 * Front end (raw 16-kHz audio, one channel):
 *   conv1 (k 127, stride 64, no bias) -> tanh -> GroupNorm(1 group, affine)
 *   -> conv2 (k 7, stride 3) -> GELU -> conv3 (k 3, stride 2) -> GELU
 * Encoder layers (pre-LN, LayerNorms without bias, eps 1e-5):
 *   x += o(attn(rope(q), rope(k), v)) of LN(x);  x += fc2(act(fc1(LN(x))))
 *   act = GELU (erf) when encoder_hidden_act is "gelu", else SiLU; then a
 *   final LayerNorm.  RoPE rotates the first rotary_ndims features of each
 *   head, int(head_dim * partial_rotary_factor) rounded down to even, pairs
 *   (2i, 2i+1), inv_freq[i] = 1 / theta^(2i / rotary_ndims), positions 0..T-1.
 * Decoder layers, one token per step as Model.generate runs them:
 *   x += self_attn(LN1(x)) (RoPE at the token's position, KV cache)
 *   x += cross_attn(LN2(x)) over the encoder output (no RoPE; K/V once)
 *   x += fc2(silu(b) * a) with [a; b] = fc1(LN3(x))
 *   logits = LN(x) E^T (tied) or proj_out(LN(x)); argmax, the first on ties.
 * mlx-audio computes all of it in float32 (the audio is cast to float32).
 *
 * Long audio: mlx-audio runs the whole input through the encoder at once and
 * stops after max_tokens (its generate default 200).  Here audio longer than
 * chunk_s (30 s by default: the segments Moonshine is trained on are shorter)
 * is cut at quiet frames (mt_moonshine_chunks) and each chunk is transcribed
 * as mlx-audio transcribes a clip; up to 30 s the result is mlx-audio's.
 *
 * ref: mlx_audio/stt/models/moonshine/moonshine.py, config.py (0.6.2). */
#include "models/moonshine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "stt/asr.h"
#include "tensor/conv1d.h"
#include "tensor/dtype.h"
#include "tensor/linear.h"
#include "tensor/ops.h"
#include "text/tokenizer.h"

#define SR 16000
#define LN_EPS 1e-5f
#define GN_EPS 1e-5
#define ATT_BLOCK 64          /* encoder attention: query rows per task */
#define CUT_FRAME 320         /* 20 ms: frames of the long-audio cut search */
#define DEF_CHUNK_S 30.0
#define DEF_MAX_TOKENS 200    /* Model.generate's default */
#define MAX_MAX_TOKENS 65536  /* the KV caches are sized for the whole chunk up front */

typedef struct attn_t {
    mt_linear q, k, v, o;
} attn_t;

typedef struct layer_t {
    attn_t sa, ca;            /* ca: decoder layers only */
    mt_linear fc1, fc2;
    float *ln1, *ln2, *ln3;   /* owned [d]; ln3: decoder only */
} layer_t;

typedef struct side_t {       /* encoder or decoder attention geometry */
    int heads, kv, hd, rot;
    float *inv_freq;          /* owned [rot / 2] */
} side_t;

struct mt_moonshine {
    char *dir;
    mt_pool *pool;
    mt_safetensors *st;
    mt_tokenizer *tok;
    int d, inter, n_enc, n_dec, vocab, start_id, eos_id, tied, enc_gelu;
    side_t es, ds;
    mt_conv1d conv1, conv2, conv3;
    float *gn_w, *gn_b;       /* owned [d] */
    layer_t *enc, *dec;
    float *enc_norm, *dec_norm;
    mt_linear embed, proj;    /* proj: the output (embed itself when tied) */
    size_t max_in;            /* widest linear input (work buffers) */
};

/* ------------------------------------------------------------------ loading */

typedef struct binder {
    mt_moonshine *m;
    const mt_config *cfg;
    const char *pre;          /* "model." (transformers layout) or "" */
} binder;

static int read_vec(const binder *b, const char *name, size_t n, float **out, mt_err *err) {
    int64_t s[1] = {(int64_t)n};
    const mt_tensor_view *t;
    MT_TRY(mt_safetensors_expect(b->m->st, name, -1, 1, s, &t, err));
    float *p = malloc(n * sizeof *p);
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = mt_safetensors_read_f32(b->m->st, name, p, n, 0, err);
    if (rc) { free(p); return rc; }
    *out = p;
    return MT_OK;
}

static int bind_vec(const binder *b, const char *path, size_t n, float **out, mt_err *err) {
    char name[256];
    snprintf(name, sizeof name, "%s%s", b->pre, path);
    return read_vec(b, name, n, out, err);
}

static int bind_lin(const binder *b, mt_linear *l, const char *pre, const char *path, size_t out, size_t in,
                    int need_bias, mt_err *err) {
    char name[256];
    snprintf(name, sizeof name, "%s%s", pre, path);
    MT_TRY(mt_linear_bind(l, b->m->st, b->cfg, name, out, in, need_bias, err));
    if (in > b->m->max_in) b->m->max_in = in;
    return MT_OK;
}

/* A Conv1d weight in torch's [out, in, k] or mlx's [out, k, in] layout (torch
 * when both read the same). */
static int bind_conv(const binder *b, mt_conv1d *c, const char *path, int cin, int cout, int k, int stride,
                     int bias, mt_err *err) {
    char name[256];
    snprintf(name, sizeof name, "%s%s.weight", b->pre, path);
    const mt_tensor_view *t = mt_safetensors_get(b->m->st, name);
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "tensor '%s' not found", name);
    int layout;
    if (t->ndim == 3 && t->shape[0] == cout && t->shape[1] == cin && t->shape[2] == k) layout = MT_CONV_W_OIK;
    else if (t->ndim == 3 && t->shape[0] == cout && t->shape[1] == k && t->shape[2] == cin) layout = MT_CONV_W_OKI;
    else {
        char got[96];
        mt_shape_str(got, sizeof got, t->ndim, t->shape);
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': shape %s, expected [%d, %d, %d] or [%d, %d, %d]", name,
                         got, cout, cin, k, cout, k, cin);
    }
    size_t n = (size_t)cout * (size_t)cin * (size_t)k;
    float *w = malloc(n * sizeof *w), *bv = NULL;
    if (!w) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = mt_safetensors_read_f32(b->m->st, name, w, n, 0, err);
    if (!rc && bias) {
        snprintf(name, sizeof name, "%s%s.bias", b->pre, path);
        rc = read_vec(b, name, (size_t)cout, &bv, err);
    }
    if (!rc) {
        mt_conv1d_shape s = {cin, cout, k, stride, 0, 1, 1, 0, 0};
        rc = mt_conv1d_init(c, &s, w, layout, bv, err);
    }
    free(w);
    free(bv);
    return rc;
}

static int bind_attn(const binder *b, attn_t *a, const char *blk, const side_t *s, int attn_bias, mt_err *err) {
    size_t d = (size_t)b->m->d, qo = (size_t)s->heads * (size_t)s->hd, kvo = (size_t)s->kv * (size_t)s->hd;
    int nb = attn_bias ? 1 : -1;   /* nn.Linear(bias=attention_bias); a stray bias is not loaded */
    char p[200];
    snprintf(p, sizeof p, "%s.q_proj", blk);
    MT_TRY(bind_lin(b, &a->q, b->pre, p, qo, d, nb, err));
    snprintf(p, sizeof p, "%s.k_proj", blk);
    MT_TRY(bind_lin(b, &a->k, b->pre, p, kvo, d, nb, err));
    snprintf(p, sizeof p, "%s.v_proj", blk);
    MT_TRY(bind_lin(b, &a->v, b->pre, p, kvo, d, nb, err));
    snprintf(p, sizeof p, "%s.o_proj", blk);
    return bind_lin(b, &a->o, b->pre, p, d, qo, -1, err);
}

static int bind_layer(const binder *b, layer_t *L, int dec, int i, int attn_bias, mt_err *err) {
    mt_moonshine *m = b->m;
    size_t d = (size_t)m->d, inter = (size_t)m->inter;
    char blk[160], p[200];
    snprintf(blk, sizeof blk, "%s.layers.%d", dec ? "decoder" : "encoder", i);
    snprintf(p, sizeof p, "%s.self_attn", blk);
    MT_TRY(bind_attn(b, &L->sa, p, dec ? &m->ds : &m->es, attn_bias, err));
    if (dec) {
        snprintf(p, sizeof p, "%s.encoder_attn", blk);
        MT_TRY(bind_attn(b, &L->ca, p, &m->ds, attn_bias, err));
    }
    snprintf(p, sizeof p, "%s.mlp.fc1", blk);
    MT_TRY(bind_lin(b, &L->fc1, b->pre, p, dec ? 2 * inter : inter, d, 1, err));
    snprintf(p, sizeof p, "%s.mlp.fc2", blk);
    MT_TRY(bind_lin(b, &L->fc2, b->pre, p, d, inter, 1, err));
    snprintf(p, sizeof p, "%s.input_layernorm.weight", blk);
    MT_TRY(bind_vec(b, p, d, &L->ln1, err));
    snprintf(p, sizeof p, "%s.post_attention_layernorm.weight", blk);
    MT_TRY(bind_vec(b, p, d, &L->ln2, err));
    if (dec) {
        snprintf(p, sizeof p, "%s.final_layernorm.weight", blk);
        MT_TRY(bind_vec(b, p, d, &L->ln3, err));
    }
    return MT_OK;
}

/* Heads of one side: head_dim = hidden / heads, the rotary width and its
 * frequencies as MoonshineRotaryEmbedding computes them (float32). */
static int side_init(side_t *s, int d, int heads, int kv, double prf, double theta, const char *what, mt_err *err) {
    if (d % heads) return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size %d is not divisible by %s %d", d,
                                    what, heads);
    if (heads % kv)
        return mt_seterr(err, MT_EFORMAT, "config.json: %s %d is not a multiple of the key/value heads %d", what,
                         heads, kv);
    s->heads = heads;
    s->kv = kv;
    s->hd = d / heads;
    int r = (int)((double)s->hd * prf);
    s->rot = r - r % 2;
    size_t half = (size_t)(s->rot / 2);
    s->inv_freq = malloc((half ? half : 1) * sizeof *s->inv_freq);
    if (!s->inv_freq) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < half; i++) {
        float e = (float)(2 * i) / (float)s->rot;
        s->inv_freq[i] = 1.0f / powf((float)theta, e);
    }
    return MT_OK;
}

static int load_tokenizer(mt_moonshine *m, mt_err *err) {
    static const char *const names[] = {"tokenizer.json", "tokenizer.json.zst"};
    for (size_t i = 0; i < 2; i++) {
        char *p = mt_path_join(m->dir, names[i]);
        if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
        int rc = MT_ENOTFOUND;
        if (mt_file_exists(p)) {
            rc = mt_tokenizer_load(&m->tok, p, err);
            if (rc) mt_preferr(err, "%s", names[i]);
        }
        free(p);
        if (rc != MT_ENOTFOUND) return rc;
    }
    return mt_seterr(err, MT_ENOTFOUND, "no tokenizer.json in the folder");
}

static int bind_all(mt_moonshine *m, const mt_config *c, int attn_bias, mt_err *err);

static int load_inner(mt_moonshine *m, const mt_config *c, mt_err *err) {
    /* the defaults are mlx-audio's ModelConfig's */
    MT_TRY(mt_config_get_int_in(c, "hidden_size", 288, 2, 1 << 16, &m->d, err));
    MT_TRY(mt_config_get_int_in(c, "intermediate_size", 1152, 1, 1 << 18, &m->inter, err));
    MT_TRY(mt_config_get_int_in(c, "encoder_num_hidden_layers", 6, 0, 1024, &m->n_enc, err));
    MT_TRY(mt_config_get_int_in(c, "decoder_num_hidden_layers", 6, 0, 1024, &m->n_dec, err));
    MT_TRY(mt_config_get_int_in(c, "vocab_size", 32768, 1, 1 << 24, &m->vocab, err));
    int eh = 0, dh = 0, ekv = 0, dkv = 0;
    MT_TRY(mt_config_get_int_in(c, "encoder_num_attention_heads", 8, 1, 4096, &eh, err));
    MT_TRY(mt_config_get_int_in(c, "decoder_num_attention_heads", 8, 1, 4096, &dh, err));
    MT_TRY(mt_config_get_int_in(c, "encoder_num_key_value_heads", eh, 1, 4096, &ekv, err));
    MT_TRY(mt_config_get_int_in(c, "decoder_num_key_value_heads", dh, 1, 4096, &dkv, err));
    MT_TRY(mt_config_get_int_in(c, "decoder_start_token_id", 1, 0, m->vocab - 1, &m->start_id, err));
    MT_TRY(mt_config_get_int_in(c, "eos_token_id", 2, -1, 1 << 30, &m->eos_id, err));
    double prf, theta;
    MT_TRY(mt_config_get_float(c, "partial_rotary_factor", 0.9, &prf, err));
    MT_TRY(mt_config_get_float(c, "rope_theta", 10000.0, &theta, err));
    if (!(prf >= 0 && prf <= 1))
        return mt_seterr(err, MT_EFORMAT, "config.json: 'partial_rotary_factor' = %g is outside 0..1", prf);
    if (!(theta > 0 && theta < 1e30))
        return mt_seterr(err, MT_EFORMAT, "config.json: 'rope_theta' = %g is not a positive number", theta);
    int attn_bias;
    MT_TRY(mt_config_get_bool(c, "attention_bias", 0, &attn_bias, err));
    MT_TRY(mt_config_get_bool(c, "tie_word_embeddings", 1, &m->tied, err));
    json_t *act = mt_config_get(c, "encoder_hidden_act");
    if (act && !json_is_string(act) && !json_is_null(act))
        return mt_seterr(err, MT_EFORMAT, "config.json: 'encoder_hidden_act' must be a string");
    m->enc_gelu = !strcmp(mt_config_get_str(c, "encoder_hidden_act", "gelu"), "gelu");   /* else SiLU, as mlx-audio */
    MT_TRY(side_init(&m->es, m->d, eh, ekv, prf, theta, "encoder_num_attention_heads", err));
    MT_TRY(side_init(&m->ds, m->d, dh, dkv, prf, theta, "decoder_num_attention_heads", err));

    MT_TRY(mt_safetensors_open_dir(&m->st, m->dir, err));
    int rc = bind_all(m, c, attn_bias, err);
    if (rc) {   /* name the weights file */
        const char *f = mt_safetensors_nfiles(m->st) == 1 ? mt_safetensors_file(m->st, 0) : "the weights";
        const char *base = strrchr(f, '/');
        mt_preferr(err, "%s", base ? base + 1 : f);
        return rc;
    }
    return load_tokenizer(m, err);
}

static int bind_all(mt_moonshine *m, const mt_config *c, int attn_bias, mt_err *err) {
    binder b = {m, c, ""};
    if (mt_safetensors_get(m->st, "model.encoder.conv1.weight")) b.pre = "model.";
    int d = m->d;
    MT_TRY(bind_conv(&b, &m->conv1, "encoder.conv1", 1, d, 127, 64, 0, err));
    MT_TRY(bind_vec(&b, "encoder.groupnorm.weight", (size_t)d, &m->gn_w, err));
    MT_TRY(bind_vec(&b, "encoder.groupnorm.bias", (size_t)d, &m->gn_b, err));
    MT_TRY(bind_conv(&b, &m->conv2, "encoder.conv2", d, 2 * d, 7, 3, 1, err));
    MT_TRY(bind_conv(&b, &m->conv3, "encoder.conv3", 2 * d, d, 3, 2, 1, err));
    m->enc = calloc((size_t)m->n_enc + 1, sizeof *m->enc);
    m->dec = calloc((size_t)m->n_dec + 1, sizeof *m->dec);
    if (!m->enc || !m->dec) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (int i = 0; i < m->n_enc; i++) MT_TRY(bind_layer(&b, &m->enc[i], 0, i, attn_bias, err));
    MT_TRY(bind_vec(&b, "encoder.layer_norm.weight", (size_t)d, &m->enc_norm, err));
    MT_TRY(bind_lin(&b, &m->embed, b.pre, "decoder.embed_tokens", (size_t)m->vocab, (size_t)d, -1, err));
    for (int i = 0; i < m->n_dec; i++) MT_TRY(bind_layer(&b, &m->dec[i], 1, i, attn_bias, err));
    MT_TRY(bind_vec(&b, "decoder.norm.weight", (size_t)d, &m->dec_norm, err));
    if (m->tied) m->proj = m->embed;
    else MT_TRY(bind_lin(&b, &m->proj, "", "proj_out", (size_t)m->vocab, (size_t)d, -1, err));
    return MT_OK;
}

int mt_moonshine_load(mt_moonshine **out, const char *dir, const mt_config *cfg, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_moonshine *m = calloc(1, sizeof *m);
    if (!m) return mt_seterr(err, MT_ENOMEM, "out of memory");
    m->pool = pool;
    m->dir = strdup(dir);
    int rc = m->dir ? load_inner(m, cfg, err) : mt_seterr(err, MT_ENOMEM, "out of memory");
    if (rc) {
        mt_preferr(err, "moonshine model '%s'", dir);
        mt_moonshine_free(m);
        return rc;
    }
    *out = m;
    return MT_OK;
}

static void free_layers(layer_t *L, int n) {
    if (!L) return;
    for (int i = 0; i < n; i++) {
        free(L[i].ln1);
        free(L[i].ln2);
        free(L[i].ln3);
    }
    free(L);
}

void mt_moonshine_free(mt_moonshine *m) {
    if (!m) return;
    free_layers(m->enc, m->n_enc);
    free_layers(m->dec, m->n_dec);
    mt_conv1d_free(&m->conv1);
    mt_conv1d_free(&m->conv2);
    mt_conv1d_free(&m->conv3);
    free(m->gn_w);
    free(m->gn_b);
    free(m->enc_norm);
    free(m->dec_norm);
    free(m->es.inv_freq);
    free(m->ds.inv_freq);
    mt_tokenizer_free(m->tok);
    mt_safetensors_free(m->st);
    free(m->dir);
    free(m);
}

int mt_moonshine_hidden(const mt_moonshine *m) { return m->d; }

/* ------------------------------------------------------------------ encoder */

static void layernorm_rows(float *y, const float *x, const float *w, size_t T, size_t d) {
    for (size_t t = 0; t < T; t++) mt_layernorm(y + t * d, x + t * d, w, NULL, d, LN_EPS);
}

static void act_inplace(int gelu, float *x, size_t n) {
    if (gelu) mt_gelu(x, n);
    else mt_silu(x, n);
}

int mt_moonshine_features(mt_moonshine *m, const float *audio, size_t n, float **feat, size_t *T, mt_err *err) {
    *feat = NULL;
    *T = 0;
    if (n < MT_MOONSHINE_MIN_SAMPLES)
        return mt_seterr(err, MT_EINVAL, "moonshine: %zu samples is shorter than the front end's %d", n,
                         MT_MOONSHINE_MIN_SAMPLES);
    size_t d = (size_t)m->d;
    size_t T1 = mt_conv1d_out_len(&m->conv1.s, n), T2 = mt_conv1d_out_len(&m->conv2.s, T1),
           T3 = mt_conv1d_out_len(&m->conv3.s, T2);
    float *y1 = malloc(d * T1 * sizeof *y1), *y2 = malloc(2 * d * T2 * sizeof *y2),
          *y3 = malloc(d * T3 * sizeof *y3), *out = malloc(d * T3 * sizeof *out);
    int rc = MT_OK;
    if (!y1 || !y2 || !y3 || !out) rc = mt_seterr(err, MT_ENOMEM, "moonshine: out of memory");
    if (!rc) rc = mt_conv1d_forward(&m->conv1, audio, n, y1, m->pool, err);
    if (!rc) {
        /* tanh, then GroupNorm with one group: mean and variance over all of it */
        size_t N = d * T1;
        double s = 0, ss = 0;
        for (size_t i = 0; i < N; i++) {
            y1[i] = tanhf(y1[i]);
            s += y1[i];
        }
        double mean = s / (double)N;
        for (size_t i = 0; i < N; i++) {
            double e = y1[i] - mean;
            ss += e * e;
        }
        float r = (float)(1.0 / sqrt(ss / (double)N + GN_EPS)), mu = (float)mean;
        for (size_t c = 0; c < d; c++) {
            float *row = y1 + c * T1;
            for (size_t t = 0; t < T1; t++) row[t] = (row[t] - mu) * r * m->gn_w[c] + m->gn_b[c];
        }
        rc = mt_conv1d_forward(&m->conv2, y1, T1, y2, m->pool, err);
    }
    if (!rc) {
        mt_gelu(y2, 2 * d * T2);
        rc = mt_conv1d_forward(&m->conv3, y2, T2, y3, m->pool, err);
    }
    if (!rc) {
        mt_gelu(y3, d * T3);
        for (size_t c = 0; c < d; c++)
            for (size_t t = 0; t < T3; t++) out[t * d + c] = y3[c * T3 + t];
    }
    free(y1);
    free(y2);
    free(y3);
    if (rc) { free(out); return rc; }
    *feat = out;
    *T = T3;
    return MT_OK;
}

typedef struct eatt_ctx {
    const float *q, *k, *v;
    float *o, *scr;
    size_t T, nblk, scr_n, lq, lkv;
    const side_t *s;
    float scale;
    const size_t *lo, *hi;
} eatt_ctx;

static void eatt_one(const eatt_ctx *a, size_t task, float *scr) {
    size_t g = task / a->nblk, r0 = (task % a->nblk) * ATT_BLOCK;
    size_t R = a->T - r0 < ATT_BLOCK ? a->T - r0 : ATT_BLOCK;
    size_t grp = (size_t)(a->s->heads / a->s->kv), hd = (size_t)a->s->hd;
    mt_attn_rows(a->q + r0 * a->lq + g * grp * hd, a->lq, grp, R, a->k + g * hd, a->v + g * hd, 0, a->lkv, a->T,
                 hd, a->lo, a->hi, a->scale, 0.0f, a->o + r0 * a->lq + g * grp * hd, a->lq, scr);
}

static void eatt_task(void *c, size_t b, size_t e, int tid) {
    eatt_ctx *a = c;
    for (size_t t = b; t < e; t++) eatt_one(a, t, a->scr + (size_t)tid * a->scr_n);
}

/* Bidirectional attention of T rows: q [T, H*hd], k, v [T, KV*hd] -> o [T, H*hd]. */
static int enc_attention(mt_moonshine *m, const float *q, const float *k, const float *v, float *o, size_t T,
                         mt_err *err) {
    const side_t *s = &m->es;
    size_t nblk = (T + ATT_BLOCK - 1) / ATT_BLOCK, ntask = (size_t)s->kv * nblk;
    int split = mt_blas_pool_splits(m->pool);
    size_t nt = split ? (size_t)mt_pool_size(m->pool) : 1;
    size_t scr_n = mt_attn_rows_scratch(ATT_BLOCK, T, (size_t)s->hd);
    float *scr = malloc(nt * scr_n * sizeof *scr);
    size_t *lo = calloc(ATT_BLOCK, sizeof *lo), *hi = malloc(ATT_BLOCK * sizeof *hi);
    if (!scr || !lo || !hi) {
        free(scr); free(lo); free(hi);
        return mt_seterr(err, MT_ENOMEM, "moonshine: out of memory");
    }
    for (size_t i = 0; i < ATT_BLOCK; i++) hi[i] = T;
    eatt_ctx a = {q, k, v, o, scr, T, nblk, scr_n, (size_t)(s->heads * s->hd), (size_t)(s->kv * s->hd), s,
                  1.0f / sqrtf((float)s->hd), lo, hi};
    if (split) mt_pool_for(m->pool, ntask, 1, eatt_task, &a);
    else for (size_t t = 0; t < ntask; t++) eatt_one(&a, t, scr);
    free(scr);
    free(lo);
    free(hi);
    return MT_OK;
}

int mt_moonshine_encode(mt_moonshine *m, const float *audio, size_t n, float **enc, size_t *T_out, mt_err *err) {
    *enc = NULL;
    *T_out = 0;
    float *x = NULL;
    size_t T;
    MT_TRY(mt_moonshine_features(m, audio, n, &x, &T, err));
    const side_t *s = &m->es;
    size_t d = (size_t)m->d, qo = (size_t)(s->heads * s->hd), kvo = (size_t)(s->kv * s->hd);
    size_t wide = (size_t)m->inter > qo ? (size_t)m->inter : qo;
    float *h = malloc(T * d * sizeof *h), *q = malloc(T * qo * sizeof *q), *k = malloc(T * kvo * sizeof *k),
          *v = malloc(T * kvo * sizeof *v), *a = malloc(T * wide * sizeof *a), *o = malloc(T * d * sizeof *o);
    int rc = (!h || !q || !k || !v || !a || !o) ? mt_seterr(err, MT_ENOMEM, "moonshine: out of memory") : MT_OK;
    for (int l = 0; !rc && l < m->n_enc; l++) {
        const layer_t *L = &m->enc[l];
        layernorm_rows(h, x, L->ln1, T, d);
        mt_linear_forward(&L->sa.q, h, T, q, NULL, m->pool);
        mt_linear_forward(&L->sa.k, h, T, k, NULL, m->pool);
        mt_linear_forward(&L->sa.v, h, T, v, NULL, m->pool);
        for (size_t t = 0; t < T; t++) {
            mt_rope(q + t * qo, (size_t)s->heads, (size_t)s->hd, (size_t)s->rot, s->inv_freq, (double)t, 1);
            mt_rope(k + t * kvo, (size_t)s->kv, (size_t)s->hd, (size_t)s->rot, s->inv_freq, (double)t, 1);
        }
        rc = enc_attention(m, q, k, v, a, T, err);
        if (rc) break;
        mt_linear_forward(&L->sa.o, a, T, o, NULL, m->pool);
        for (size_t i = 0; i < T * d; i++) x[i] += o[i];
        layernorm_rows(h, x, L->ln2, T, d);
        mt_linear_forward(&L->fc1, h, T, a, NULL, m->pool);
        act_inplace(m->enc_gelu, a, T * (size_t)m->inter);
        mt_linear_forward(&L->fc2, a, T, o, NULL, m->pool);
        for (size_t i = 0; i < T * d; i++) x[i] += o[i];
    }
    if (!rc) layernorm_rows(h, x, m->enc_norm, T, d);
    free(x);
    free(q); free(k); free(v); free(a); free(o);
    if (rc) { free(h); return rc; }
    *enc = h;
    *T_out = T;
    return MT_OK;
}

/* ------------------------------------------------------------------ decoder */

typedef struct dec_state {
    float **ck, **cv;         /* per layer [S, KV*hd]: cross-attention keys / values */
    float **sk, **sv;         /* per layer [cap, KV*hd]: self-attention cache */
    float *x, *h, *q, *k, *v, *att, *o, *f, *logits, *scr, *work_raw, *work;
} dec_state;

static void dec_state_free(dec_state *st, int L) {
    for (int l = 0; l < L; l++) {
        if (st->ck) free(st->ck[l]);
        if (st->cv) free(st->cv[l]);
        if (st->sk) free(st->sk[l]);
        if (st->sv) free(st->sv[l]);
    }
    free(st->ck); free(st->cv); free(st->sk); free(st->sv);
    free(st->x); free(st->h); free(st->q); free(st->k); free(st->v); free(st->att); free(st->o);
    free(st->f); free(st->logits); free(st->scr); free(st->work_raw);
}

static int dec_state_new(mt_moonshine *m, dec_state *st, const float *enc, size_t S, size_t cap, mt_err *err) {
    memset(st, 0, sizeof *st);
    const side_t *s = &m->ds;
    size_t L = (size_t)m->n_dec, d = (size_t)m->d, qo = (size_t)(s->heads * s->hd), kvo = (size_t)(s->kv * s->hd);
    size_t nsc = (size_t)s->heads * (S > cap ? S : cap);
    size_t nw = (size_t)mt_pool_size(m->pool) * m->max_in + MT_LINEAR_WORK_SLACK;
    st->ck = calloc(L + 1, sizeof *st->ck);
    st->cv = calloc(L + 1, sizeof *st->cv);
    st->sk = calloc(L + 1, sizeof *st->sk);
    st->sv = calloc(L + 1, sizeof *st->sv);
    st->x = malloc(d * sizeof(float));
    st->h = malloc(d * sizeof(float));
    st->q = malloc(qo * sizeof(float));
    st->k = malloc(kvo * sizeof(float));
    st->v = malloc(kvo * sizeof(float));
    st->att = malloc(qo * sizeof(float));
    st->o = malloc(d * sizeof(float));
    st->f = malloc(2 * (size_t)m->inter * sizeof(float));
    st->logits = malloc((size_t)m->vocab * sizeof(float));
    st->scr = malloc(nsc * sizeof(float));
    st->work_raw = malloc(nw * sizeof(float));
    int ok = st->ck && st->cv && st->sk && st->sv && st->x && st->h && st->q && st->k && st->v && st->att &&
             st->o && st->f && st->logits && st->scr && st->work_raw;
    for (size_t l = 0; ok && l < L; l++) {
        st->ck[l] = malloc(S * kvo * sizeof(float));
        st->cv[l] = malloc(S * kvo * sizeof(float));
        st->sk[l] = malloc(cap * kvo * sizeof(float));
        st->sv[l] = malloc(cap * kvo * sizeof(float));
        ok = st->ck[l] && st->cv[l] && st->sk[l] && st->sv[l];
        if (ok) {
            mt_linear_forward(&m->dec[l].ca.k, enc, S, st->ck[l], NULL, m->pool);
            mt_linear_forward(&m->dec[l].ca.v, enc, S, st->cv[l], NULL, m->pool);
        }
    }
    if (!ok) {
        dec_state_free(st, m->n_dec);
        return mt_seterr(err, MT_ENOMEM, "moonshine: out of memory");
    }
    st->work = mt_linear_work_align(st->work_raw);
    return MT_OK;
}

/* attention of one query row over n keys (grouped heads share a key head),
 * the key heads split over the pool */
typedef struct datt_ctx {
    const side_t *s;
    const float *q, *K, *V;
    size_t n;
    float *out, *scr;
} datt_ctx;

static void datt_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    const datt_ctx *a = c;
    const side_t *s = a->s;
    size_t grp = (size_t)(s->heads / s->kv), hd = (size_t)s->hd, kvs = (size_t)(s->kv * s->hd);
    float scale = 1.0f / sqrtf((float)s->hd);
    for (size_t g = b; g < e; g++)
        mt_attn_group(a->q + g * grp * hd, grp, a->K + g * hd, a->V + g * hd, 0, kvs, a->n, hd, scale, 0.0f,
                      a->out + g * grp * hd, a->scr + g * grp * a->n);
}

static void attend(mt_pool *pool, const side_t *s, const float *q, const float *K, const float *V, size_t n,
                   float *out, float *scr) {
    datt_ctx a = {s, q, K, V, n, out, scr};
    if (n * (size_t)s->heads * (size_t)s->hd >= 8192) mt_pool_for(pool, (size_t)s->kv, 1, datt_task, &a);
    else datt_task(&a, 0, (size_t)s->kv, 0);
}

/* One decoder step for token tok at position pos; st->logits filled. */
static void dec_step(mt_moonshine *m, dec_state *st, int32_t tok, size_t pos, size_t S) {
    const side_t *s = &m->ds;
    size_t d = (size_t)m->d, kvo = (size_t)(s->kv * s->hd), inter = (size_t)m->inter;
    mt_linear_row(&m->embed, (size_t)tok, st->x);
    for (int l = 0; l < m->n_dec; l++) {
        const layer_t *L = &m->dec[l];
        mt_layernorm(st->h, st->x, L->ln1, NULL, d, LN_EPS);
        mt_linear_forward(&L->sa.q, st->h, 1, st->q, st->work, m->pool);
        mt_linear_forward(&L->sa.k, st->h, 1, st->k, st->work, m->pool);
        mt_linear_forward(&L->sa.v, st->h, 1, st->v, st->work, m->pool);
        mt_rope(st->q, (size_t)s->heads, (size_t)s->hd, (size_t)s->rot, s->inv_freq, (double)pos, 1);
        mt_rope(st->k, (size_t)s->kv, (size_t)s->hd, (size_t)s->rot, s->inv_freq, (double)pos, 1);
        memcpy(st->sk[l] + pos * kvo, st->k, kvo * sizeof(float));
        memcpy(st->sv[l] + pos * kvo, st->v, kvo * sizeof(float));
        attend(m->pool, s, st->q, st->sk[l], st->sv[l], pos + 1, st->att, st->scr);
        mt_linear_forward(&L->sa.o, st->att, 1, st->o, st->work, m->pool);
        for (size_t i = 0; i < d; i++) st->x[i] += st->o[i];

        mt_layernorm(st->h, st->x, L->ln2, NULL, d, LN_EPS);
        mt_linear_forward(&L->ca.q, st->h, 1, st->q, st->work, m->pool);
        attend(m->pool, s, st->q, st->ck[l], st->cv[l], S, st->att, st->scr);
        mt_linear_forward(&L->ca.o, st->att, 1, st->o, st->work, m->pool);
        for (size_t i = 0; i < d; i++) st->x[i] += st->o[i];

        mt_layernorm(st->h, st->x, L->ln3, NULL, d, LN_EPS);
        mt_linear_forward(&L->fc1, st->h, 1, st->f, st->work, m->pool);
        mt_swiglu(st->f + inter, st->f, inter);   /* silu(gate) * a, gate the second half */
        mt_linear_forward(&L->fc2, st->f + inter, 1, st->o, st->work, m->pool);
        for (size_t i = 0; i < d; i++) st->x[i] += st->o[i];
    }
    mt_layernorm(st->h, st->x, m->dec_norm, NULL, d, LN_EPS);
    mt_linear_forward(&m->proj, st->h, 1, st->logits, st->work, m->pool);
}

int mt_moonshine_decode(mt_moonshine *m, const float *enc, size_t T, int max_tokens, int32_t *ids, size_t *n,
                        mt_err *err) {
    *n = 0;
    if (max_tokens <= 0) return MT_OK;
    if (!T) return mt_seterr(err, MT_EINVAL, "moonshine: an encoder output of no frames");
    dec_state st;
    MT_TRY(dec_state_new(m, &st, enc, T, (size_t)max_tokens, err));
    int32_t tok = m->start_id;
    size_t V = (size_t)m->vocab;
    for (int i = 0; i < max_tokens; i++) {
        dec_step(m, &st, tok, (size_t)i, T);
        size_t best = 0;
        for (size_t j = 1; j < V; j++)
            if (st.logits[j] > st.logits[best]) best = j;
        if ((int)best == m->eos_id) break;
        tok = (int32_t)best;
        ids[(*n)++] = tok;
    }
    dec_state_free(&st, m->n_dec);
    return MT_OK;
}

static int is_space(unsigned char c) { return c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f); }

int mt_moonshine_detok(const mt_moonshine *m, const int32_t *ids, size_t n, char **text, mt_err *err) {
    char *s = NULL;
    size_t len = 0;
    MT_TRY(mt_tokenizer_decode(m->tok, ids, n, 1, &s, &len, err));
    size_t b = 0, e = len;
    while (b < e && is_space((unsigned char)s[b])) b++;
    while (e > b && is_space((unsigned char)s[e - 1])) e--;
    memmove(s, s + b, e - b);
    s[e - b] = 0;
    *text = s;
    return MT_OK;
}

/* ------------------------------------------------------------------ long audio */

int mt_moonshine_chunks(const float *audio, size_t n, double chunk_s, size_t **bounds, size_t *nb, mt_err *err) {
    *bounds = NULL;
    *nb = 0;
    if (!(chunk_s >= 1.0 && chunk_s <= 3600.0))
        return mt_seterr(err, MT_EINVAL, "moonshine: a chunk length of %g s (1 to 3600 s)", chunk_s);
    size_t win = (size_t)llround(chunk_s * SR);
    size_t cap = n / (win * 2 / 3) + 2, k = 0;
    size_t *b = malloc(2 * cap * sizeof *b);
    if (!b) return mt_seterr(err, MT_ENOMEM, "moonshine: out of memory");
    size_t s = 0;
    while (n - s > win) {
        double best = 0;
        size_t bk = 0;
        int have = 0;
        for (size_t f = 0; (f + 1) * CUT_FRAME <= win; f++) {
            if (3 * f * CUT_FRAME < 2 * win) continue;
            const float *p = audio + s + f * CUT_FRAME;
            double e = 0;
            for (size_t i = 0; i < CUT_FRAME; i++) e += (double)p[i] * (double)p[i];
            if (!have || e < best) { best = e; bk = f; have = 1; }
        }
        size_t cut = s + bk * CUT_FRAME + CUT_FRAME / 2;
        b[2 * k] = s;
        b[2 * k + 1] = cut;
        k++;
        s = cut;
    }
    b[2 * k] = s;
    b[2 * k + 1] = n;
    *nb = k + 1;
    *bounds = b;
    return MT_OK;
}

/* ------------------------------------------------------------------ the mt_asr family */

static int fam_load(void **self, const char *dir, const mt_config *cfg, mt_pool *pool, mt_err *err) {
    return mt_moonshine_load((mt_moonshine **)self, dir, cfg, pool, err);
}

static void fam_free(void *self) { mt_moonshine_free(self); }

static int transcribe_chunk(mt_moonshine *m, const float *a, size_t n, int max_tokens, int32_t **ids_out,
                            size_t *nid, char **text, mt_err *err) {
    *ids_out = NULL;
    *nid = 0;
    *text = NULL;
    if (n < MT_MOONSHINE_MIN_SAMPLES) {   /* too short for the front end: no words */
        *text = strdup("");
        return *text ? MT_OK : mt_seterr(err, MT_ENOMEM, "moonshine: out of memory");
    }
    float *enc = NULL;
    size_t T = 0;
    MT_TRY(mt_moonshine_encode(m, a, n, &enc, &T, err));
    int32_t *ids = malloc((size_t)max_tokens * sizeof *ids);
    int rc = ids ? mt_moonshine_decode(m, enc, T, max_tokens, ids, nid, err)
                 : mt_seterr(err, MT_ENOMEM, "moonshine: out of memory");
    free(enc);
    if (!rc) rc = mt_moonshine_detok(m, ids, *nid, text, err);
    if (rc) { free(ids); *nid = 0; return rc; }
    *ids_out = ids;
    return MT_OK;
}

static int fam_transcribe(void *self, const float *audio, size_t n, const mt_asr_opts *o, mt_stt_result *res,
                          mt_err *err) {
    mt_moonshine *m = self;
    double chunk_s = o && o->chunk_s > 0 ? o->chunk_s : DEF_CHUNK_S;
    int max_tokens = o && o->max_tokens > 0 ? o->max_tokens : DEF_MAX_TOKENS;
    if (max_tokens > MAX_MAX_TOKENS)
        return mt_seterr(err, MT_EINVAL, "moonshine: at most %d tokens per chunk (asked for %d)", MAX_MAX_TOKENS,
                         max_tokens);
    double total = (double)n / SR;
    res->duration = total;
    size_t *b = NULL, nb = 0;
    MT_TRY(mt_moonshine_chunks(audio, n, chunk_s, &b, &nb, err));
    res->segs = calloc(nb, sizeof *res->segs);
    size_t tl = 0, tcap = 64;
    char *all = malloc(tcap);
    int rc = (!res->segs || !all) ? mt_seterr(err, MT_ENOMEM, "moonshine: out of memory") : MT_OK;
    if (all) all[0] = 0;
    for (size_t c = 0; !rc && c < nb; c++) {
        size_t s = b[2 * c], e = b[2 * c + 1];
        if (o && o->progress) o->progress(o->progress_user, (double)s / SR, total);
        int32_t *ids = NULL;
        size_t nid = 0;
        char *text = NULL;
        rc = transcribe_chunk(m, audio + s, e - s, max_tokens, &ids, &nid, &text, err);
        if (rc) break;
        size_t L = strlen(text);
        if (!L) { free(ids); free(text); continue; }
        if (tl + L + 2 > tcap) {
            while (tl + L + 2 > tcap) tcap *= 2;
            char *na = realloc(all, tcap);
            if (!na) { free(ids); free(text); rc = mt_seterr(err, MT_ENOMEM, "moonshine: out of memory"); break; }
            all = na;
        }
        if (tl) all[tl++] = ' ';
        memcpy(all + tl, text, L + 1);
        tl += L;
        mt_stt_segment *sg = &res->segs[res->n_segs];
        sg->id = (int)res->n_segs;
        sg->start = (double)s / SR;
        sg->end = (double)e / SR;
        sg->text = text;
        sg->tokens = ids;
        sg->n_tokens = nid;
        res->n_segs++;
    }
    free(b);
    if (rc) { free(all); return rc; }
    res->text = all;
    if (o && o->progress) o->progress(o->progress_user, total, total);
    return MT_OK;
}

static const char *const MOONSHINE_TYPES[] = {"moonshine", NULL};

const mt_asr_family mt_asr_moonshine = {
    .name = "moonshine",
    .model_types = MOONSHINE_TYPES,
    .caps = MT_ASR_SEGMENTS,   /* coarse: a segment per chunk (<= 30 s), its bounds; no word times */
    .summary = "Moonshine (Useful Sensors): raw-audio encoder-decoder, greedy; a segment per chunk of <= 30 s",
    .claims = NULL,
    .load = fam_load,
    .transcribe = fam_transcribe,
    .free = fam_free,
};
