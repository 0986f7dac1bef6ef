/* wav2vec2.c - Wav2Vec2ForCTC / HubertForCTC (wav2vec2.h) and the
 * speech-recogniser family mt_asr_wav2vec2 (stt/asr.h).
 *
 * Forward pass, with T = frames and H = hidden_size:
 *   feats[n] (normalized audio)
 *   -> conv stack, channels first: conv_i (no padding) [+ GroupNorm on layer 0
 *      ("group") | LayerNorm over channels on every layer ("layer")], GELU
 *   -> [T, C] -> feature projection: LayerNorm (wav2vec2 always; HuBERT when
 *      feat_proj_layer_norm) then Linear C -> H
 *   -> + GELU(weight-normed grouped conv, kernel K, pad K/2, the last frame cut
 *      when K is even) of the same rows
 *   -> post-LN: LayerNorm, then layers x = LN(x + attn(x)); x = LN(x + ff(x))
 *      pre-LN:  layers x += attn(LN(x)); x += ff(LN(x)); then LayerNorm
 *   -> lm_head [T, vocab].
 * The checkpoint layout is transformers' (which mlx-audio's sanitize
 * expects): torch conv weights [out, in, k], "wav2vec2." / "hubert."
 * prefixes, the position conv as weight_g / weight_v or
 * parametrizations.weight.original0 / original1 (weight norm over dim 2:
 * w[:, :, k] = g[k] v[:, :, k] / ||v[:, :, k]||, no epsilon, as mlx-audio's
 * WNConv1d computes it).  Linears may be MLX-quantized (mlx-audio's loader
 * quantizes nn.Linear only).
 * ref: mlx_audio/stt/models/wav2vec/wav2vec.py, mms/mms.py (0.6.2);
 *      transformers 5.25 models/hubert/modeling_hubert.py. */
#include "models/wav2vec2.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "models/encoder.h"
#include "models/model.h"
#include "stt/asr.h"
#include "tensor/conv1d.h"
#include "tensor/linear.h"
#include "tensor/ops.h"

#define W2V_MAX_CONV 16
#define W2V_RATE 16000

enum { NORM_NONE = 0, NORM_GROUP, NORM_LAYER };

typedef struct w2v_conv {
    mt_conv1d c;            /* [c_out, k, c_in] */
    const float *nw, *nb;   /* GroupNorm / LayerNorm affine [c_out], or NULL */
    int norm;               /* NORM_* */
} w2v_conv;

struct mt_w2v {
    mt_encoder e;           /* hp, layers, owned buffers; st owned, cfg only during load */
    mt_w2v_info info;
    char dir[512];
    int n_conv;
    w2v_conv conv[W2V_MAX_CONV];
    const float *fp_ln_w, *fp_ln_b;   /* feature projection LayerNorm (NULL: none) */
    mt_linear proj;                   /* [H, C] */
    mt_conv1d pos;                    /* [H, K, H/G], weight norm folded */
    int pos_cut;                      /* frames cut from the end of the position conv's output */
    const float *enc_ln_w, *enc_ln_b;
    mt_linear head;                   /* lm_head [V, H] */
    float eps;
    /* tokenizer */
    char **tok;                       /* id -> token (n_tok entries, NULL for holes) */
    int n_tok;
    char *pad, *delim, *unk;
    int lower, cleanup;
    int stage;                        /* loading: 0 config, 1 opening, 2 tensors, 3 tokenizer (messages) */
};

/* ---------------------------------------------------------------- small parallel tasks */

typedef struct rows_ctx {
    float *x;               /* [N, width] */
    const float *add;       /* x += add first (NULL: none) */
    float *out;             /* LayerNorm(x) here (NULL: no norm) */
    const float *w, *b;
    size_t width;
    float eps;
    int gelu;               /* GELU in place instead of a norm */
} rows_ctx;

static void rows_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    rows_ctx *k = c;
    for (size_t t = b; t < e; t++) {
        float *x = k->x + t * k->width;
        if (k->add)
            for (size_t i = 0; i < k->width; i++) x[i] += k->add[t * k->width + i];
        if (k->gelu) mt_enc_act(MT_ENC_ACT_GELU, x, k->width);
        else if (k->out) mt_layernorm(k->out + t * k->width, x, k->w, k->b, k->width, k->eps);
    }
}

static void rows_run(mt_pool *p, size_t n, rows_ctx *k) { mt_pool_for(p, n, 4, rows_task, k); }

/* conv-stack norms over channels-first x [C, T] */
typedef struct cnorm_ctx {
    float *x;
    size_t C, T;
    const float *w, *b;
    float eps;
} cnorm_ctx;

/* GroupNorm with one group per channel: each channel over time */
static void gnorm_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    cnorm_ctx *k = c;
    for (size_t ch = b; ch < e; ch++) {
        float *x = k->x + ch * k->T;
        double s = 0, ss = 0;
        for (size_t t = 0; t < k->T; t++) s += x[t];
        float mean = (float)(s / (double)k->T);
        for (size_t t = 0; t < k->T; t++) {
            double d = (double)x[t] - mean;
            ss += d * d;
        }
        float inv = 1.0f / sqrtf((float)(ss / (double)k->T) + k->eps);
        float g = k->w ? k->w[ch] : 1.0f, bb = k->b ? k->b[ch] : 0.0f;
        for (size_t t = 0; t < k->T; t++) x[t] = (x[t] - mean) * inv * g + bb;
        mt_enc_act(MT_ENC_ACT_GELU, x, k->T);
    }
}

/* LayerNorm over the channels of each frame (t in [b, e)), then GELU on those frames */
static void lnorm_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    cnorm_ctx *k = c;
    for (size_t t = b; t < e; t++) {
        double s = 0, ss = 0;
        for (size_t ch = 0; ch < k->C; ch++) s += k->x[ch * k->T + t];
        float mean = (float)(s / (double)k->C);
        for (size_t ch = 0; ch < k->C; ch++) {
            double d = (double)k->x[ch * k->T + t] - mean;
            ss += d * d;
        }
        float inv = 1.0f / sqrtf((float)(ss / (double)k->C) + k->eps);
        for (size_t ch = 0; ch < k->C; ch++) {
            float *v = &k->x[ch * k->T + t];
            *v = (*v - mean) * inv * k->w[ch] + k->b[ch];
        }
    }
    for (size_t ch = 0; ch < k->C; ch++) mt_enc_act(MT_ENC_ACT_GELU, k->x + ch * k->T + b, e - b);
}

static void gelu_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    cnorm_ctx *k = c;
    for (size_t ch = b; ch < e; ch++) mt_enc_act(MT_ENC_ACT_GELU, k->x + ch * k->T, k->T);
}

/* ---------------------------------------------------------------- loading */

static int cfg_int_array(json_t *c, const char *key, int *out, int n, mt_err *err) {
    json_t *a = json_object_get(c, key);
    if (!json_is_array(a) || (int)json_array_size(a) < n)
        return mt_seterr(err, MT_EFORMAT, "config.json: '%s' must be an array of %d integers", key, n);
    for (int i = 0; i < n; i++) {
        json_t *v = json_array_get(a, (size_t)i);
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 1 << 20)
            return mt_seterr(err, MT_EFORMAT, "config.json: '%s'[%d] must be an integer in 1..%d", key, i, 1 << 20);
        out[i] = (int)json_integer_value(v);
    }
    return MT_OK;
}

static int vec(mt_w2v *w, const char *name, size_t n, int optional, const float **out, mt_err *err) {
    return mt_enc_vec(&w->e, name, n, optional, out, err);
}

static int ln_pair(mt_w2v *w, const char *mod, size_t n, const float **wt, const float **b, mt_err *err) {
    char a[200], c[200];
    snprintf(a, sizeof a, "%s.weight", mod);
    snprintf(c, sizeof c, "%s.bias", mod);
    MT_TRY(vec(w, a, n, 0, wt, err));
    return vec(w, c, n, 0, b, err);
}

/* a float tensor prefix+name with the given shape, as owned float32 (NULL and
 * MT_OK when optional and absent) */
static int read_shaped(mt_w2v *w, const char *name, int ndim, const int64_t *shape, int optional, float **out,
                       mt_err *err) {
    char path[320];
    snprintf(path, sizeof path, "%s%s", w->e.prefix, name);
    *out = NULL;
    if (optional && !mt_safetensors_get(w->e.st, path)) return MT_OK;
    const mt_tensor_view *t = NULL;
    MT_TRY(mt_safetensors_expect(w->e.st, path, -1, ndim, shape, &t, err));
    size_t n = mt_tensor_numel(t);
    float *v = mt_enc_own(&w->e, n * sizeof *v);
    if (!v) return mt_seterr(err, MT_ENOMEM, "out of memory");
    MT_TRY(mt_safetensors_read_f32(w->e.st, path, v, n, 0, err));
    *out = v;
    return MT_OK;
}

typedef struct conv_cfg {
    int n, kind, bias;
    int dim[W2V_MAX_CONV], ker[W2V_MAX_CONV], str[W2V_MAX_CONV];
} conv_cfg;

static int read_conv_cfg(json_t *c, conv_cfg *cc, const char *norm, mt_err *err) {
    MT_TRY(cfg_int_array(c, "conv_dim", cc->dim, cc->n, err));
    MT_TRY(cfg_int_array(c, "conv_kernel", cc->ker, cc->n, err));
    MT_TRY(cfg_int_array(c, "conv_stride", cc->str, cc->n, err));
    cc->kind = !strcmp(norm, "group") ? NORM_GROUP : !strcmp(norm, "layer") ? NORM_LAYER : -1;
    if (cc->kind < 0)
        return mt_seterr(err, MT_EFORMAT, "config.json: feat_extract_norm '%s' is not 'group' or 'layer'", norm);
    long long ratio = 1;
    for (int i = 0; i < cc->n; i++) ratio *= cc->str[i];
    if (ratio > 1 << 20) return mt_seterr(err, MT_EFORMAT, "config.json: the conv strides multiply to %lld", ratio);
    return MT_OK;
}

static int load_convs(mt_w2v *w, const conv_cfg *cc, mt_err *err) {
    int n = cc->n, kind = cc->kind, bias = cc->bias;
    const int *dim = cc->dim, *ker = cc->ker, *str = cc->str;
    long long ratio = 1;
    for (int i = 0; i < n; i++) {
        w2v_conv *cv = &w->conv[i];
        int cin = i ? dim[i - 1] : 1;
        char name[160];
        snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.conv.weight", i);
        int64_t shape[3] = {dim[i], cin, ker[i]};
        float *wt = NULL, *b = NULL;
        MT_TRY(read_shaped(w, name, 3, shape, 0, &wt, err));
        snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.conv.bias", i);
        int64_t bs[1] = {dim[i]};
        if (bias) MT_TRY(read_shaped(w, name, 1, bs, 0, &b, err));
        mt_conv1d_shape s = {cin, dim[i], ker[i], str[i], 0, 1, 1, 0, 0};
        MT_TRY(mt_conv1d_init(&cv->c, &s, wt, MT_CONV_W_OIK, b, err));
        cv->norm = kind == NORM_LAYER || i == 0 ? kind : NORM_NONE;
        if (cv->norm) {
            snprintf(name, sizeof name, "feature_extractor.conv_layers.%d.layer_norm", i);
            MT_TRY(ln_pair(w, name, (size_t)dim[i], &cv->nw, &cv->nb, err));
        }
        ratio *= str[i];
    }
    w->info.ratio = (int)ratio;
    w->info.conv_out = dim[n - 1];
    w->n_conv = n;
    return MT_OK;
}

/* the position conv: weight norm over dim 2 of torch's [H, H/G, K] folded */
static int load_pos(mt_w2v *w, int H, int K, int G, mt_err *err) {
    if (K < 1 || G < 1 || H % G)
        return mt_seterr(err, MT_EFORMAT, "config.json: num_conv_pos_embeddings %d / num_conv_pos_embedding_groups %d "
                         "do not fit hidden_size %d", K, G, H);
    const char *gname = "encoder.pos_conv_embed.conv.weight_g", *vname = "encoder.pos_conv_embed.conv.weight_v";
    char probe[320];
    snprintf(probe, sizeof probe, "%s%s", w->e.prefix, gname);
    if (!mt_safetensors_get(w->e.st, probe)) {
        gname = "encoder.pos_conv_embed.conv.parametrizations.weight.original0";
        vname = "encoder.pos_conv_embed.conv.parametrizations.weight.original1";
    }
    int64_t gs[3] = {1, 1, K}, vs[3] = {H, H / G, K}, bs[1] = {H};
    float *g = NULL, *v = NULL, *b = NULL;
    MT_TRY(read_shaped(w, gname, 3, gs, 0, &g, err));
    MT_TRY(read_shaped(w, vname, 3, vs, 0, &v, err));
    MT_TRY(read_shaped(w, "encoder.pos_conv_embed.conv.bias", 1, bs, 0, &b, err));
    size_t inner = (size_t)(H / G);
    for (int k = 0; k < K; k++) {
        double ss = 0;
        for (size_t o = 0; o < (size_t)H; o++)
            for (size_t c = 0; c < inner; c++) {
                double x = v[(o * inner + c) * (size_t)K + (size_t)k];
                ss += x * x;
            }
        float scale = (float)(g[k] / sqrt(ss));
        for (size_t o = 0; o < (size_t)H; o++)
            for (size_t c = 0; c < inner; c++) v[(o * inner + c) * (size_t)K + (size_t)k] *= scale;
    }
    mt_conv1d_shape s = {H, H, K, 1, K / 2, 1, G, 0, 0};
    MT_TRY(mt_conv1d_init(&w->pos, &s, v, MT_CONV_W_OIK, b, err));
    w->pos_cut = K % 2 == 0;
    return MT_OK;
}

/* a special token of tokenizer_config.json: a string or {"content": ...} */
static char *tok_special(json_t *tc, const char *key, const char *def) {
    json_t *v = tc ? json_object_get(tc, key) : NULL;
    if (json_is_object(v)) v = json_object_get(v, "content");
    const char *s = json_is_string(v) ? json_string_value(v) : def;
    return s ? strdup(s) : NULL;
}

static int load_tokenizer(mt_w2v *w, const char *dir, int vocab, mt_err *err) {
    char path[640];
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    json_error_t je;
    json_t *v = json_load_file(path, 0, &je);
    if (!v) return mt_seterr(err, MT_ENOTFOUND, "%s: %s", path, je.text);
    int rc = MT_OK;
    if (!json_is_object(v)) {
        rc = mt_seterr(err, MT_EFORMAT, "%s: not a JSON object of token -> id", path);
        goto out;
    }
    /* a nested (per-language) vocabulary: mlx-audio's mms takes "eng", "en", else the first */
    if (json_object_size(v) && json_is_object(json_object_iter_value(json_object_iter(v)))) {
        json_t *l = json_object_get(v, "eng");
        if (!l) l = json_object_get(v, "en");
        if (!l) l = json_object_iter_value(json_object_iter(v));
        json_incref(l);
        json_decref(v);
        v = l;
    }
    int n = vocab;
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= 1 << 24) {
            rc = mt_seterr(err, MT_EFORMAT, "%s: token '%s' has no id in 0..%d", path, key, (1 << 24) - 1);
            goto out;
        }
        if (json_integer_value(val) >= n) n = (int)json_integer_value(val) + 1;
    }
    w->tok = calloc((size_t)n, sizeof *w->tok);
    if (!w->tok) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
    w->n_tok = n;
    json_object_foreach(v, key, val) {
        int id = (int)json_integer_value(val);
        free(w->tok[id]);   /* a repeated id: the last token wins, as {v: k} does */
        if (!(w->tok[id] = strdup(key))) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
    }
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *tc = json_load_file(path, 0, &je);   /* optional: the tokenizer's defaults */
    if (tc && !json_is_object(tc)) { json_decref(tc); tc = NULL; }
    w->pad = tok_special(tc, "pad_token", "<pad>");
    w->unk = tok_special(tc, "unk_token", "<unk>");
    w->delim = tok_special(tc, "word_delimiter_token", "|");
    json_t *lc = tc ? json_object_get(tc, "do_lower_case") : NULL, *cu = tc ? json_object_get(tc, "clean_up_tokenization_spaces") : NULL;
    w->lower = json_is_true(lc);
    w->cleanup = json_is_true(cu);
    json_decref(tc);
    if (!w->pad || !w->unk || !w->delim) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
    /* the blank is the pad token's id (mlx-audio: 0, the pad id of every released vocabulary) */
    for (int i = 0; i < n; i++)
        if (w->tok[i] && !strcmp(w->tok[i], w->pad)) {
            w->info.blank = i;
            break;
        }
out:
    json_decref(v);
    return rc;
}

void mt_w2v_free(mt_w2v *w) {
    if (!w) return;
    for (int i = 0; i < w->n_conv; i++) mt_conv1d_free(&w->conv[i].c);
    mt_conv1d_free(&w->pos);
    for (size_t i = 0; i < w->e.n_owned; i++) free(w->e.owned[i]);
    free(w->e.owned);
    free(w->e.layers);
    mt_safetensors_free(w->e.st);
    for (int i = 0; i < w->n_tok; i++) free(w->tok[i]);
    free(w->tok);
    free(w->pad);
    free(w->unk);
    free(w->delim);
    free(w);
}

const mt_w2v_info *mt_w2v_info_of(const mt_w2v *w) { return &w->info; }

static int load_body(mt_w2v *w, const char *dir, const mt_config *cfg, mt_err *err) {
    json_t *c = mt_config_json(cfg);
    mt_encoder *e = &w->e;
    const char *mt = mt_config_model_type(cfg);
    int hubert = mt && !strcmp(mt, "hubert");
    const char *nan = mt_config_nan_key(cfg);
    if (nan) return mt_seterr(err, MT_EFORMAT, "config.json: '%s' is NaN", nan);
    int H, L, NH, F, V, nconv, K, G, stable = 0, bias = 0, fpln = 1, bn = 0, adapter = 0;
    double eps;
    MT_TRY(mt_cfg_count(c, "hidden_size", 768, &H, 0, err));
    MT_TRY(mt_cfg_count(c, "num_hidden_layers", 12, &L, 0, err));
    MT_TRY(mt_cfg_count(c, "num_attention_heads", 12, &NH, 0, err));
    MT_TRY(mt_cfg_count(c, "intermediate_size", 3072, &F, 0, err));
    MT_TRY(mt_cfg_count(c, "vocab_size", 32, &V, 0, err));
    MT_TRY(mt_cfg_count(c, "num_feat_extract_layers", 7, &nconv, 0, err));
    MT_TRY(mt_cfg_count(c, "num_conv_pos_embeddings", 128, &K, 0, err));
    MT_TRY(mt_cfg_count(c, "num_conv_pos_embedding_groups", 16, &G, 0, err));
    MT_TRY(mt_cfg_real(c, "layer_norm_eps", 1e-5, &eps, 0, MT_CFG_POS, err));
    MT_TRY(mt_config_get_bool(cfg, "do_stable_layer_norm", 0, &stable, err));
    MT_TRY(mt_config_get_bool(cfg, "conv_bias", 0, &bias, err));
    MT_TRY(mt_config_get_bool(cfg, "feat_proj_layer_norm", 1, &fpln, err));
    MT_TRY(mt_config_get_bool(cfg, "conv_pos_batch_norm", 0, &bn, err));
    MT_TRY(mt_config_get_bool(cfg, "add_adapter", 0, &adapter, err));
    if (!hubert) fpln = 1;   /* Wav2Vec2FeatureProjection always normalizes */
    if (nconv > W2V_MAX_CONV)
        return mt_seterr(err, MT_EFORMAT, "config.json: num_feat_extract_layers %d (at most %d)", nconv, W2V_MAX_CONV);
    if (H % NH)
        return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size %d is not a multiple of num_attention_heads %d", H, NH);
    const char *acts[2] = {mt_config_get_str(cfg, "hidden_act", "gelu"), mt_config_get_str(cfg, "feat_extract_activation", "gelu")};
    for (int i = 0; i < 2; i++)
        if (strcmp(acts[i], "gelu"))
            return mt_seterr(err, MT_EUNSUPPORTED, "config.json: activation '%s' (only gelu is run)", acts[i]);
    json_t *ad = json_object_get(c, "adapter_attn_dim");
    if (bn || adapter || (ad && !json_is_null(ad)))
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: %s is not supported",
                         bn ? "conv_pos_batch_norm" : adapter ? "add_adapter" : "adapter_attn_dim (MMS adapters)");
    w->eps = (float)eps;
    w->info = (mt_w2v_info){H, L, NH, V, 0, 0, stable, 0, 1};
    mt_encoder_hp *hp = &e->hp;
    hp->n_layers = L;
    hp->hidden = H;
    hp->n_heads = NH;
    hp->head_dim = H / NH;
    hp->inter = F;
    hp->vocab = V;
    hp->eps = w->eps;
    hp->act = MT_ENC_ACT_GELU;
    hp->pre_norm = stable;

    conv_cfg cc = {.n = nconv, .bias = bias};
    MT_TRY(read_conv_cfg(c, &cc, mt_config_get_str(cfg, "feat_extract_norm", "group"), err));

    w->stage = 1;   /* the messages of the open name the file */
    MT_TRY(mt_safetensors_open_dir(&e->st, dir, err));
    w->stage = 2;
    /* the base model's prefix: transformers' ("wav2vec2." / "hubert."), or none */
    static const char *const pre[] = {"wav2vec2.", "hubert.", ""};
    for (size_t i = 0; i < sizeof pre / sizeof *pre; i++) {
        char probe[200];
        snprintf(probe, sizeof probe, "%sfeature_projection.projection.weight", pre[i]);
        snprintf(e->prefix, sizeof e->prefix, "%s", pre[i]);
        if (mt_safetensors_get(e->st, probe)) break;
    }
    MT_TRY(load_convs(w, &cc, err));
    size_t C = (size_t)w->info.conv_out;
    if (fpln) MT_TRY(ln_pair(w, "feature_projection.layer_norm", C, &w->fp_ln_w, &w->fp_ln_b, err));
    MT_TRY(mt_enc_bind(e, &w->proj, "feature_projection.projection", (size_t)H, C, 1, err));
    MT_TRY(load_pos(w, H, K, G, err));
    MT_TRY(ln_pair(w, "encoder.layer_norm", (size_t)H, &w->enc_ln_w, &w->enc_ln_b, err));
    if (!(e->layers = calloc((size_t)L, sizeof *e->layers))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (int l = 0; l < L; l++) {
        mt_enc_layer *ly = &e->layers[l];
        char b[160];
        mt_linear q, k, v;
#define MOD(s) (snprintf(b, sizeof b, "encoder.layers.%d.%s", l, s), b)
        MT_TRY(mt_enc_bind(e, &q, MOD("attention.q_proj"), (size_t)H, (size_t)H, 1, err));
        MT_TRY(mt_enc_bind(e, &k, MOD("attention.k_proj"), (size_t)H, (size_t)H, 1, err));
        MT_TRY(mt_enc_bind(e, &v, MOD("attention.v_proj"), (size_t)H, (size_t)H, 1, err));
        MT_TRY(mt_enc_bind(e, &ly->o, MOD("attention.out_proj"), (size_t)H, (size_t)H, 1, err));
        MT_TRY(mt_enc_bind(e, &ly->up, MOD("feed_forward.intermediate_dense"), (size_t)F, (size_t)H, 1, err));
        MT_TRY(mt_enc_bind(e, &ly->down, MOD("feed_forward.output_dense"), (size_t)H, (size_t)F, 1, err));
        MT_TRY(ln_pair(w, MOD("layer_norm"), (size_t)H, &ly->ln1_w, &ly->ln1_b, err));
        MT_TRY(ln_pair(w, MOD("final_layer_norm"), (size_t)H, &ly->ln2_w, &ly->ln2_b, err));
#undef MOD
        mt_linear parts[3] = {q, k, v};
        MT_TRY(mt_enc_stack(e, &ly->qkv, parts, 3, err));
    }
    char saved[32];
    snprintf(saved, sizeof saved, "%s", e->prefix);
    e->prefix[0] = 0;   /* the head sits beside the base model */
    int rc = mt_enc_bind(e, &w->head, "lm_head", (size_t)V, (size_t)H, 1, err);
    snprintf(e->prefix, sizeof e->prefix, "%s", saved);
    MT_TRY(rc);
    w->stage = 3;
    MT_TRY(load_tokenizer(w, dir, V, err));
    if (w->info.blank >= V)
        return mt_seterr(err, MT_EFORMAT, "vocab.json: the pad token '%s' (id %d) is beyond vocab_size %d", w->pad,
                         w->info.blank, V);
    /* preprocessor_config.json: do_normalize (mlx-audio's generate always normalizes) */
    char path[640];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    json_error_t je;
    json_t *pc = json_load_file(path, 0, &je);
    if (pc && json_is_object(pc) && json_is_boolean(json_object_get(pc, "do_normalize")))
        w->info.do_normalize = json_is_true(json_object_get(pc, "do_normalize"));
    json_decref(pc);
    return MT_OK;
}

int mt_w2v_load(mt_w2v **out, const char *dir, const mt_config *cfg, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_w2v *w = calloc(1, sizeof *w);
    if (!w) return mt_seterr(err, MT_ENOMEM, "out of memory");
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    w->e.cfg = (mt_config *)cfg;
    w->e.pool = pool;
    int rc = load_body(w, dir, cfg, err);
    w->e.cfg = NULL;
    if (rc) {   /* name the file: tokenizer messages have their path already */
        if (w->stage == 2 && mt_safetensors_nfiles(w->e.st) == 1) mt_preferr(err, "%s", mt_safetensors_file(w->e.st, 0));
        else if (w->stage == 2) mt_preferr(err, "%s: weights", dir);
        else if (w->stage == 0) mt_preferr(err, "%s", dir);
        mt_w2v_free(w);
        return rc;
    }
    *out = w;
    return MT_OK;
}

/* ---------------------------------------------------------------- forward */

size_t mt_w2v_frames(const mt_w2v *w, size_t n) {
    size_t T = n;
    for (int i = 0; i < w->n_conv && T; i++) T = mt_conv1d_out_len(&w->conv[i].c.s, T);
    return T;
}

void mt_w2v_features(const mt_w2v *w, const float *audio, size_t n, float *feats) {
    if (!w->info.do_normalize || !n) {
        if (n) memmove(feats, audio, n * sizeof *feats);
        return;
    }
    /* numpy: x.mean() and x.var() of float32 data give float32; the rest in float32 */
    double s = 0, ss = 0;
    for (size_t i = 0; i < n; i++) s += audio[i];
    float mean = (float)(s / (double)n);
    for (size_t i = 0; i < n; i++) {
        double d = (double)(audio[i] - mean);
        ss += d * d;
    }
    float var = (float)(ss / (double)n);
    float den = sqrtf(var + 1e-7f);
    for (size_t i = 0; i < n; i++) feats[i] = (audio[i] - mean) / den;
}

static void transpose(const float *x, size_t R, size_t C, float *y) {   /* y[C, R] = x[R, C]^T */
    for (size_t r = 0; r < R; r++)
        for (size_t c = 0; c < C; c++) y[c * R + r] = x[r * C + c];
}

/* the conv stack: feats[n] -> out[T, C] (frames first) */
static int conv_stack(mt_w2v *w, const float *feats, size_t n, float *out, mt_err *err) {
    mt_pool *pool = w->e.pool;
    size_t T = n, maxsz[2] = {1, 1};   /* even layers write a, odd ones b */
    for (int i = 0; i < w->n_conv; i++) {
        T = mt_conv1d_out_len(&w->conv[i].c.s, T);
        size_t sz = T * (size_t)w->conv[i].c.s.c_out;
        maxsz[i % 2] = sz > maxsz[i % 2] ? sz : maxsz[i % 2];
    }
    float *a = malloc(maxsz[0] * sizeof *a), *b = malloc(maxsz[1] * sizeof *b);
    int rc = MT_OK;
    if (!a || !b) {
        rc = mt_seterr(err, MT_ENOMEM, "out of memory for the feature encoder (%zu samples)", n);
        goto done;
    }
    const float *x = feats;
    T = n;
    for (int i = 0; i < w->n_conv && !rc; i++) {
        w2v_conv *cv = &w->conv[i];
        float *y = i % 2 ? b : a;
        if ((rc = mt_conv1d_forward(&cv->c, x, T, y, pool, err))) break;
        T = mt_conv1d_out_len(&cv->c.s, T);
        cnorm_ctx k = {y, (size_t)cv->c.s.c_out, T, cv->nw, cv->nb, 1e-5f};   /* nn.GroupNorm / nn.LayerNorm eps */
        if (cv->norm == NORM_GROUP) mt_pool_for(pool, k.C, 1, gnorm_task, &k);
        else if (cv->norm == NORM_LAYER) mt_pool_for(pool, T, 16, lnorm_task, &k);
        else mt_pool_for(pool, k.C, 1, gelu_task, &k);
        x = y;
    }
    if (!rc) transpose(x, (size_t)w->info.conv_out, T, out);
done:
    free(a);
    free(b);
    return rc;
}

int mt_w2v_forward(mt_w2v *w, const float *feats, size_t n, float *conv_out, float *hidden, float *logits,
                   mt_err *err) {
    mt_encoder *e = &w->e;
    size_t T = mt_w2v_frames(w, n);
    if (!T)
        return mt_seterr(err, MT_EINVAL, "%zu samples are too short for the feature encoder (one frame is %d)", n,
                         w->info.ratio);
    size_t H = (size_t)w->info.hidden, F = (size_t)e->hp.inter, C = (size_t)w->info.conv_out;
    int nth = mt_pool_size(e->pool);
    if (nth < 1) nth = 1;
    size_t wide = F > 3 * H ? F : 3 * H, per = F > H ? F : H;
    per = per > C ? per : C;
    size_t Tp = T + 1;   /* the position conv's output may be one frame longer */
    float *cv = malloc(T * C * sizeof(float)), *x = malloc(T * H * sizeof(float));
    float *big = malloc(T * (wide > C ? wide : C) * sizeof(float));
    float *tmp = malloc(Tp * H * sizeof(float)), *ctx = malloc(Tp * H * sizeof(float));
    float *work = malloc((size_t)nth * (per + MT_LINEAR_WORK_SLACK) * sizeof(float));
    size_t nview = mt_enc_view_floats(e);
    float *vbuf = nview && T >= 64 ? malloc(nview * sizeof(float)) : NULL;   /* NULL: packed kernels */
    int rc = MT_OK;
    if (!cv || !x || !big || !tmp || !ctx || !work || (nview && T >= 64 && !vbuf)) {
        rc = mt_seterr(err, MT_ENOMEM, "out of memory for %zu frames", T);
        goto done;
    }
    if ((rc = conv_stack(w, feats, n, cv, err))) goto done;
    if (conv_out) memcpy(conv_out, cv, T * C * sizeof *cv);
    /* feature projection */
    const float *pin = cv;
    if (w->fp_ln_w) {
        rows_ctx k = {cv, NULL, big, w->fp_ln_w, w->fp_ln_b, C, w->eps, 0};
        rows_run(e->pool, T, &k);
        pin = big;
    }
    mt_enc_linear(e, &w->proj, pin, T, x, work);
    /* position embedding: x += GELU(conv(x)) over the frames */
    transpose(x, T, H, tmp);
    if ((rc = mt_conv1d_forward(&w->pos, tmp, T, ctx, e->pool, err))) goto done;
    {
        size_t To = mt_conv1d_out_len(&w->pos.s, T);   /* T + 1 for an even kernel, then cut */
        for (size_t h = 0; h < H; h++) {
            float *r = ctx + h * To;
            mt_enc_act(MT_ENC_ACT_GELU, r, T);
            for (size_t t = 0; t < T; t++) x[t * H + h] += r[t];
        }
    }
    if (!w->info.stable) {
        rows_ctx k = {x, NULL, x, w->enc_ln_w, w->enc_ln_b, H, w->eps, 0};
        rows_run(e->pool, T, &k);
    }
    size_t lens[1] = {T};
    for (int L = 0; L < e->hp.n_layers && !rc; L++) {
        mt_enc_layer view;
        const mt_enc_layer *ly = mt_enc_layer_view(e, &e->layers[L], T, &view, vbuf);
        const float *ain = x;
        if (w->info.stable) {
            rows_ctx k = {x, NULL, tmp, ly->ln1_w, ly->ln1_b, H, w->eps, 0};
            rows_run(e->pool, T, &k);
            ain = tmp;
        }
        mt_enc_linear(e, &ly->qkv, ain, T, big, work);
        if ((rc = mt_enc_attention(e, big, ctx, lens, 1, 0, err))) break;
        mt_enc_linear(e, &ly->o, ctx, T, tmp, work);
        const float *fin;
        if (w->info.stable) {   /* x += attn; ctx = LN2(x) */
            rows_ctx k = {x, tmp, ctx, ly->ln2_w, ly->ln2_b, H, w->eps, 0};
            rows_run(e->pool, T, &k);
            fin = ctx;
        } else {                /* x = LN1(x + attn) */
            rows_ctx k = {x, tmp, x, ly->ln1_w, ly->ln1_b, H, w->eps, 0};
            rows_run(e->pool, T, &k);
            fin = x;
        }
        mt_enc_linear(e, &ly->up, fin, T, big, work);
        rows_ctx ga = {big, NULL, NULL, NULL, NULL, F, 0, 1};
        rows_run(e->pool, T, &ga);
        mt_enc_linear(e, &ly->down, big, T, tmp, work);
        rows_ctx k = {x, tmp, w->info.stable ? NULL : x, ly->ln2_w, ly->ln2_b, H, w->eps, 0};
        rows_run(e->pool, T, &k);   /* stable: x += ff; post-LN: x = LN2(x + ff) */
    }
    if (rc) goto done;
    if (w->info.stable) {
        rows_ctx k = {x, NULL, x, w->enc_ln_w, w->enc_ln_b, H, w->eps, 0};
        rows_run(e->pool, T, &k);
    }
    if (hidden) memcpy(hidden, x, T * H * sizeof *x);
    mt_enc_linear(e, &w->head, x, T, logits, work);
done:
    free(cv);
    free(x);
    free(big);
    free(tmp);
    free(ctx);
    free(work);
    free(vbuf);
    return rc;
}

/* ---------------------------------------------------------------- CTC text */

/* the token of id (the tokenizer's unk for ids without one) */
static const char *tok_of(const mt_w2v *w, int id) {
    return id >= 0 && id < w->n_tok && w->tok[id] ? w->tok[id] : w->unk;
}

typedef struct w2v_char {
    const char *s;          /* the token, or " " for the word delimiter */
    int start, end;         /* frames [start, end) */
} w2v_char;

static int is_space_char(const char *s) { return !strcmp(s, " "); }

/* text += s; *len / *cap of a malloc'd buffer */
static int append(char **buf, size_t *len, size_t *cap, const char *s, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t nc = (*len + n + 1) * 2;
        char *p = realloc(*buf, nc);
        if (!p) return -1;
        *buf = p;
        *cap = nc;
    }
    memcpy(*buf + *len, s, n);
    *len += n;
    (*buf)[*len] = 0;
    return 0;
}

/* tokenization_utils_base.clean_up_tokenization, in place */
static void cleanup_spaces(char *s) {
    static const char *const pat[][2] = {{" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
                                          {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"},
                                          {" 're", "'re"}};
    for (size_t p = 0; p < sizeof pat / sizeof *pat; p++) {   /* str.replace: left to right, no overlaps */
        size_t fl = strlen(pat[p][0]), tl = strlen(pat[p][1]);
        char *r = s, *q = s;
        while (*r) {
            if (!strncmp(r, pat[p][0], fl)) {
                memmove(q, pat[p][1], tl);
                q += tl;
                r += fl;
            } else {
                *q++ = *r++;
            }
        }
        *q = 0;
    }
}

/* Python's str.strip() for the ASCII whitespace a CTC vocabulary yields */
static char *strip_dup(const char *s) {
    while (*s && isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) n--;
    char *o = malloc(n + 1);
    if (o) {
        memcpy(o, s, n);
        o[n] = 0;
    }
    return o;
}

int mt_w2v_decode(const mt_w2v *w, const int32_t *ids, const int32_t *first, const int32_t *last, size_t k,
                  const float *logits, double duration, int words, mt_stt_result *res, mt_err *err) {
    size_t V = (size_t)w->info.vocab;
    w2v_char *ch = malloc((k ? k : 1) * sizeof *ch);
    char *raw = NULL, *tx = NULL;
    size_t len = 0, cap = 0, nch = 0;
    int rc = MT_OK;
    if (!ch) return mt_seterr(err, MT_ENOMEM, "out of memory");
    /* groupby over the frames' tokens, pad dropped, the delimiter as a space: the
     * CTC runs, except that adjacent runs of ids with one token (ids without a
     * token are all the unk token) are one group, as groupby sees them */
    for (size_t i = 0; i < k; i++) {
        const char *s = tok_of(w, ids[i]);
        if (!strcmp(s, w->pad)) continue;   /* a pad token at another id than the blank */
        s = !strcmp(s, w->delim) ? " " : s;
        if (nch && ch[nch - 1].end == first[i] && !strcmp(tok_of(w, ids[i - 1]), tok_of(w, ids[i])))
            ch[nch - 1].end = last[i] + 1;
        else
            ch[nch++] = (w2v_char){s, first[i], last[i] + 1};
    }
    if (append(&raw, &len, &cap, "", 0)) goto oom;
    for (size_t i = 0; i < nch; i++)
        if (append(&raw, &len, &cap, ch[i].s, strlen(ch[i].s))) goto oom;
    if (!(tx = strip_dup(raw))) goto oom;
    if (w->lower)
        for (char *p = tx; *p; p++) *p = (char)tolower((unsigned char)*p);
    if (w->cleanup) cleanup_spaces(tx);
    res->text = tx;
    res->language[0] = 0;
    res->duration = duration;
    if (!(res->segs = calloc(1, sizeof *res->segs))) goto oom;
    res->n_segs = 1;
    mt_stt_segment *sg = &res->segs[0];
    sg->start = 0;
    sg->end = duration;
    if (!(sg->text = strdup(tx))) goto oom;
    if (words) {
        /* _get_word_offsets: runs of non-space chars */
        double sec = (double)w->info.ratio / W2V_RATE;
        size_t nw = 0;
        for (size_t i = 0; i < nch; i++)
            if (!is_space_char(ch[i].s) && (i == 0 || is_space_char(ch[i - 1].s))) nw++;
        sg->words = calloc(nw ? nw : 1, sizeof *sg->words);
        if (!sg->words) goto oom;
        for (size_t i = 0; i < nch;) {
            if (is_space_char(ch[i].s)) {
                i++;
                continue;
            }
            size_t j = i, wl = 0, wc = 0;
            char *word = NULL;
            while (j < nch && !is_space_char(ch[j].s)) j++;
            /* Whisper's convention, which the subtitle writers join words by: a leading space */
            if (append(&word, &wl, &wc, " ", 1)) goto oom;
            for (size_t q = i; q < j; q++)
                if (append(&word, &wl, &wc, ch[q].s, strlen(ch[q].s))) {
                    free(word);
                    goto oom;
                }
            mt_stt_word *wd = &sg->words[sg->n_words++];
            wd->word = word;
            wd->start = ch[i].start * sec;
            wd->end = ch[j - 1].end * sec;
            if (logits) {   /* mean arg-max probability over the word's frames */
                double ps = 0;
                for (int t = ch[i].start; t < ch[j - 1].end; t++) {
                    const float *r = logits + (size_t)t * V;
                    float mx = r[0];
                    for (size_t v = 1; v < V; v++) mx = r[v] > mx ? r[v] : mx;
                    double z = 0;
                    for (size_t v = 0; v < V; v++) z += exp((double)r[v] - mx);
                    ps += 1.0 / z;
                }
                wd->probability = ps / (ch[j - 1].end - ch[i].start);
            }
            i = j;
        }
    }
    free(ch);
    free(raw);
    return MT_OK;
oom:
    rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!res->text) free(tx);
    free(ch);
    free(raw);
    return rc;
}

/* ---------------------------------------------------------------- the family */

static int fam_load(void **self, const char *dir, const mt_config *cfg, mt_pool *pool, mt_err *err) {
    mt_w2v *w = NULL;
    MT_TRY(mt_w2v_load(&w, dir, cfg, pool, err));
    *self = w;
    return MT_OK;
}

/* Audio longer than this runs in windows (below) unless chunk_s says otherwise:
 * the whole-clip forward holds about 1.5 x 4 x conv_dim[0] / stride[0] bytes
 * per sample in the first conv layers (~10 MB a second for wav2vec2-base). */
#define W2V_WHOLE_MAX_S 120.0
#define W2V_AUTO_CHUNK_S 30.0

/* Python's round(): half to even */
static double round_even(double x) {
    double r = floor(x + 0.5);
    if (r - x == 0.5 && fmod(r, 2.0) != 0) r -= 1.0;
    return r;
}

/* The frames' logits of audio[n] in windows, as transformers' ASR pipeline
 * runs a CTC model with chunk_length_s = chunk_s and stride_length_s =
 * chunk_s / 6: windows of chunk_len samples every chunk_len - 2 stride, each
 * normalized and run on its own; of each window's frames those outside its
 * left / right stride (none at the audio's ends) are kept, in order.
 * *lg (malloc'd) [*T, vocab]. */
static int run_chunked(mt_w2v *w, const float *audio, size_t n, double chunk_s, const mt_asr_opts *o, float **lg,
                       size_t *Tout, mt_err *err) {
    double ratio = w->info.ratio, dur = (double)n / W2V_RATE;
    size_t V = (size_t)w->info.vocab;
    size_t clen = (size_t)(round_even(chunk_s * W2V_RATE / ratio) * ratio);
    size_t st = (size_t)(round_even(chunk_s / 6 * W2V_RATE / ratio) * ratio);
    if (clen < 2 * st + (size_t)w->info.ratio || !mt_w2v_frames(w, clen))
        return mt_seterr(err, MT_EINVAL, "chunk length %g s is too short for this model", chunk_s);
    size_t step = clen - 2 * st, cap = 0, T = 0;
    float *out = NULL, *f = malloc(clen * sizeof *f), *cl = malloc(mt_w2v_frames(w, clen) * V * sizeof *cl);
    int rc = MT_OK;
    if (!f || !cl) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t s0 = 0; !rc && s0 < n; s0 += step) {
        size_t end = s0 + clen < n ? s0 + clen : n, len = end - s0;
        int last = s0 + clen >= n;
        size_t sl = s0 ? st : 0, sr = last ? 0 : st;
        if (len > sl) {
            if (o->progress) o->progress(o->progress_user, (double)s0 / W2V_RATE, dur);
            size_t Tc = mt_w2v_frames(w, len);
            /* rescale_stride: the kept frames [left, token_n - right) */
            long tn = (long)round_even((double)len / ratio);
            long left = (long)round_even((double)sl / (double)len * (double)tn);
            long right = tn - (long)round_even((double)sr / (double)len * (double)tn);
            if (right > (long)Tc) right = (long)Tc;
            if (Tc && right > left) {
                mt_w2v_features(w, audio + s0, len, f);
                if ((rc = mt_w2v_forward(w, f, len, NULL, NULL, cl, err))) break;
                size_t keep = (size_t)(right - left);
                if (T + keep > cap) {
                    size_t nc = (T + keep) * 2;
                    float *p = realloc(out, nc * V * sizeof *p);
                    if (!p) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); break; }
                    out = p;
                    cap = nc;
                }
                memcpy(out + T * V, cl + (size_t)left * V, keep * V * sizeof *out);
                T += keep;
            }
        }
        if (last) break;
    }
    free(f);
    free(cl);
    if (rc) {
        free(out);
        return rc;
    }
    *lg = out;
    *Tout = T;
    return MT_OK;
}

static int fam_transcribe(void *self, const float *audio, size_t n, const mt_asr_opts *o, mt_stt_result *res,
                          mt_err *err) {
    mt_w2v *w = self;
    double dur = (double)n / W2V_RATE;
    size_t V = (size_t)w->info.vocab, T = 0;
    double chunk = o->chunk_s > 0 ? o->chunk_s : dur > W2V_WHOLE_MAX_S ? W2V_AUTO_CHUNK_S : 0;
    float *lg = NULL;
    int rc = MT_OK;
    if (o->progress) o->progress(o->progress_user, 0, dur);
    if (chunk > 0 && chunk < dur) {
        MT_TRY(run_chunked(w, audio, n, chunk, o, &lg, &T, err));
    } else if ((T = mt_w2v_frames(w, n))) {   /* the whole clip, as mlx-audio runs it */
        float *f = malloc(n * sizeof *f);
        lg = malloc(T * V * sizeof *lg);
        if (!f || !lg) rc = mt_seterr(err, MT_ENOMEM, "out of memory for %zu samples", n);
        if (!rc) {
            mt_w2v_features(w, audio, n, f);
            rc = mt_w2v_forward(w, f, n, NULL, NULL, lg, err);
        }
        free(f);
    }
    int32_t *ids = rc ? NULL : malloc(3 * (T ? T : 1) * sizeof *ids);
    if (!rc && !ids) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) {   /* T == 0 (shorter than one frame): an empty transcript */
        size_t k = mt_ctc_greedy(lg, T, V, w->info.blank, ids, ids + T, ids + 2 * T);
        rc = mt_w2v_decode(w, ids, ids + T, ids + 2 * T, k, lg, dur, o->word_timestamps, res, err);
    }
    if (!rc && o->progress) o->progress(o->progress_user, dur, dur);
    free(lg);
    free(ids);
    return rc;
}

static void fam_free(void *self) { mt_w2v_free(self); }

static const char *const w2v_types[] = {"wav2vec2", "hubert", NULL};

const mt_asr_family mt_asr_wav2vec2 = {
    .name = "wav2vec2",
    .model_types = w2v_types,
    .caps = MT_ASR_SEGMENTS | MT_ASR_WORDS,
    .summary = "Wav2Vec2 / HuBERT CTC (greedy; character and word timestamps from the CTC frames)",
    .claims = NULL,
    .load = fam_load,
    .transcribe = fam_transcribe,
    .free = fam_free,
};
