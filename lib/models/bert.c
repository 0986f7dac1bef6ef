/* bert.c - the BERT-shaped encoder: embeddings (word + position + token type,
 * LayerNorm), post-LN layers (self-attention, GELU MLP), optional pooler and
 * sequence-classification head; families bert, roberta and xlm-roberta; and
 * the helpers the other encoder families share (binding, attention, linear).
 * F16/BF16 weights are expanded to F32 once at load so every product is one
 * BLAS call; MLX-quantized weights stay packed (mt_linear_forward).
 * ref: transformers models/bert/modeling_bert.py, models/roberta/modeling_roberta.py. */
#include "models/encoder.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/blas.h"
#include "models/model.h"
#include "tensor/ops.h"

void *mt_enc_own(mt_encoder *e, size_t bytes) {
    if (e->n_owned == e->cap_owned) {
        size_t nc = e->cap_owned ? e->cap_owned * 2 : 64;
        void **p = realloc(e->owned, nc * sizeof *p);
        if (!p) return NULL;
        e->owned = p;
        e->cap_owned = nc;
    }
    void *b = malloc(bytes ? bytes : 1);
    if (b) e->owned[e->n_owned++] = b;
    return b;
}

static void *own(mt_encoder *e, size_t bytes) { return mt_enc_own(e, bytes); }

int mt_enc_bind(mt_encoder *e, mt_linear *l, const char *name, size_t out, size_t in, int need_bias, mt_err *err) {
    char path[320];
    snprintf(path, sizeof path, "%s%s", e->prefix, name);
    MT_TRY(mt_linear_bind(l, e->st, e->cfg, path, out, in, need_bias, err));
    if (l->bias && l->bdt != MT_F32) {
        float *b = own(e, l->out * sizeof(float));
        if (!b) return mt_seterr(err, MT_ENOMEM, "out of memory expanding '%s'", path);
        mt_convert_to_f32(b, l->bias, l->bdt, l->out);
        l->bias = b;
        l->bdt = MT_F32;
    }
    if (l->quantized || l->wdt == MT_F32) return MT_OK;   /* packed codes run as they are */
    float *w = own(e, l->out * l->in * sizeof(float));
    if (!w) return mt_seterr(err, MT_ENOMEM, "out of memory expanding '%s'", path);
    for (size_t r = 0; r < l->out; r++) mt_linear_row(l, r, w + r * l->in);
    l->wdt = MT_F32;
    l->w = w;
    return MT_OK;
}

static int bind_f32(mt_encoder *e, mt_linear *l, const char *name, size_t out, size_t in, int need_bias, mt_err *err) {
    return mt_enc_bind(e, l, name, out, in, need_bias, err);
}

static size_t dtype_size(mt_dtype t) { return t == MT_F32 ? 4 : 2; }

int mt_enc_stack(mt_encoder *e, mt_linear *dst, const mt_linear *parts, int n, mt_err *err) {
    const mt_linear *p0 = &parts[0];
    size_t out = 0, wrow, srow = 0;
    int any_bias = 0;
    for (int i = 0; i < n; i++) {
        const mt_linear *p = &parts[i];
        if (p->in != p0->in || p->quantized != p0->quantized || p->wdt != p0->wdt ||
            (p->quantized && (p->bits != p0->bits || p->group_size != p0->group_size || p->sdt != p0->sdt ||
                              p->mode != p0->mode)))
            return mt_seterr(err, MT_EFORMAT, "projections to fuse differ in shape or storage");
        out += p->out;
        any_bias |= p->bias != NULL;
    }
    *dst = *p0;
    dst->out = out;
    if (p0->quantized) {
        wrow = p0->in * (size_t)p0->bits / 32 * 4;
        srow = p0->in / (size_t)p0->group_size * mt_dtype_size(p0->sdt);   /* fp modes: 1 byte */
    } else {
        wrow = p0->in * dtype_size(p0->wdt);
    }
    char *w = own(e, out * wrow), *sc = NULL, *bi = NULL;
    float *b = any_bias ? own(e, out * sizeof(float)) : NULL;
    if (p0->quantized) {
        sc = own(e, out * srow);
        bi = p0->biases ? own(e, out * srow) : NULL;   /* the fp modes have none */
    }
    if (!w || (any_bias && !b) || (p0->quantized && (!sc || (p0->biases && !bi))))
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    size_t r = 0;
    for (int i = 0; i < n; i++) {
        const mt_linear *p = &parts[i];
        memcpy(w + r * wrow, p->w, p->out * wrow);
        if (p0->quantized) {
            memcpy(sc + r * srow, p->scales, p->out * srow);
            if (bi) memcpy(bi + r * srow, p->biases, p->out * srow);
        }
        if (b) {
            if (p->bias) mt_convert_to_f32(b + r, p->bias, p->bdt, p->out);
            else memset(b + r, 0, p->out * sizeof(float));
        }
        r += p->out;
    }
    dst->w = w;
    dst->scales = sc;
    dst->biases = bi;
    dst->bias = b;
    dst->bdt = MT_F32;
    return MT_OK;
}

int mt_enc_vec(mt_encoder *e, const char *name, size_t n, int optional, const float **out, mt_err *err) {
    char path[320];
    snprintf(path, sizeof path, "%s%s", e->prefix, name);
    *out = NULL;
    if (optional && !mt_safetensors_get(e->st, path)) return MT_OK;
    float *v = own(e, n * sizeof(float));
    if (!v) return mt_seterr(err, MT_ENOMEM, "out of memory");
    MT_TRY(mt_safetensors_read_f32(e->st, path, v, n, 0, err));
    *out = v;
    return MT_OK;
}

/* A norm / bias vector as owned float32 [n]. */
static int vec_f32(mt_encoder *e, const char *name, size_t n, const float **out, mt_err *err) {
    return mt_enc_vec(e, name, n, 0, out, err);
}

/* LayerNorm weights are "weight"/"bias" (HF) or, in old checkpoints, "gamma"/"beta". */
static int ln_f32(mt_encoder *e, const char *mod, size_t n, const float **w, const float **b, mt_err *err) {
    char a[200], c[200], probe[260];
    snprintf(probe, sizeof probe, "%s%s.weight", e->prefix, mod);
    int old = !mt_safetensors_get(e->st, probe);
    snprintf(a, sizeof a, "%s.%s", mod, old ? "gamma" : "weight");
    snprintf(c, sizeof c, "%s.%s", mod, old ? "beta" : "bias");
    MT_TRY(vec_f32(e, a, n, w, err));
    return vec_f32(e, c, n, b, err);
}

int mt_enc_read_sizes(mt_encoder *e, int max_pos_default, mt_err *err) {
    json_t *c = mt_config_json(e->cfg);
    mt_encoder_hp *hp = &e->hp;
    MT_TRY(mt_cfg_check_nan(e->cfg, err));
    MT_TRY(mt_cfg_count(c, "num_hidden_layers", 0, &hp->n_layers, 1, err));
    MT_TRY(mt_cfg_count(c, "hidden_size", 0, &hp->hidden, 1, err));
    MT_TRY(mt_cfg_count(c, "num_attention_heads", 0, &hp->n_heads, 1, err));
    MT_TRY(mt_cfg_count(c, "intermediate_size", 0, &hp->inter, 1, err));
    MT_TRY(mt_cfg_count(c, "vocab_size", 0, &hp->vocab, 1, err));
    return mt_cfg_count(c, "max_position_embeddings", max_pos_default, &hp->max_pos, 0, err);
}

static int read_hp(mt_encoder *e, mt_err *err) {
    json_t *c = mt_config_json(e->cfg);
    mt_encoder_hp *hp = &e->hp;
    double eps = 1e-12;
    MT_TRY(mt_enc_read_sizes(e, 512, err));
    MT_TRY(mt_cfg_int(c, "type_vocab_size", 2, &hp->type_vocab, 0, err));
    MT_TRY(mt_cfg_real(c, "layer_norm_eps", 1e-12, &eps, 0, MT_CFG_NONNEG, err));
    hp->eps = (float)eps;
    if (hp->hidden % hp->n_heads)
        return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size %d is not a multiple of num_attention_heads %d",
                         hp->hidden, hp->n_heads);
    if (hp->n_layers > 1000 || hp->hidden > 65536 || hp->inter > 1 << 20)
        return mt_seterr(err, MT_EFORMAT, "config.json: inconsistent encoder sizes");
    hp->head_dim = hp->hidden / hp->n_heads;
    const char *act = mt_config_get_str(e->cfg, "hidden_act", "gelu");
    if (!strcmp(act, "gelu")) hp->act = MT_ENC_ACT_GELU;
    else if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_pytorch_tanh") || !strcmp(act, "gelu_fast"))
        hp->act = MT_ENC_ACT_GELU_TANH;
    else if (!strcmp(act, "relu")) hp->act = MT_ENC_ACT_RELU;
    else if (!strcmp(act, "silu") || !strcmp(act, "swish")) hp->act = MT_ENC_ACT_SILU;
    else return mt_seterr(err, MT_EUNSUPPORTED, "config.json: hidden_act \"%s\" is not supported", act);
    const char *pet = mt_config_get_str(e->cfg, "position_embedding_type", "absolute");
    if (strcmp(pet, "absolute"))
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: position_embedding_type \"%s\" is not supported", pet);
    return MT_OK;
}

static int bind_all(mt_encoder *e, mt_err *err) {
    static const char *const prefixes[] = {"", "bert.", "roberta.", "model.", "xlm_roberta.", "encoder."};
    char probe[128];
    size_t np = sizeof prefixes / sizeof *prefixes, i;
    for (i = 0; i < np; i++) {
        snprintf(probe, sizeof probe, "%sembeddings.word_embeddings.weight", prefixes[i]);
        if (mt_safetensors_get(e->st, probe)) break;
    }
    if (i == np) return mt_seterr(err, MT_ENOTFOUND, "no tensor 'embeddings.word_embeddings.weight' in the weights");
    snprintf(e->prefix, sizeof e->prefix, "%s", prefixes[i]);
    mt_encoder_hp *hp = &e->hp;
    size_t H = (size_t)hp->hidden, FF = (size_t)hp->inter;
    char path[200], ppath[220];
    snprintf(path, sizeof path, "%sembeddings.word_embeddings", e->prefix);
    MT_TRY(mt_linear_bind(&e->word, e->st, e->cfg, path, (size_t)hp->vocab, H, -1, err));
    snprintf(path, sizeof path, "%sembeddings.position_embeddings", e->prefix);
    MT_TRY(mt_linear_bind(&e->pos, e->st, e->cfg, path, (size_t)hp->max_pos, H, -1, err));
    snprintf(path, sizeof path, "%sembeddings.token_type_embeddings", e->prefix);
    snprintf(ppath, sizeof ppath, "%s.weight", path);
    if (hp->type_vocab > 0 && mt_safetensors_get(e->st, ppath))
        MT_TRY(mt_linear_bind(&e->type, e->st, e->cfg, path, (size_t)hp->type_vocab, H, -1, err));
    else hp->type_vocab = 0;
    MT_TRY(ln_f32(e, "embeddings.LayerNorm", H, &e->emb_ln_w, &e->emb_ln_b, err));
    e->layers = calloc((size_t)hp->n_layers, sizeof *e->layers);
    if (!e->layers) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (int L = 0; L < hp->n_layers; L++) {
        mt_enc_layer *ly = &e->layers[L];
        mt_linear q, k, v;
        char n[160];
        snprintf(n, sizeof n, "encoder.layer.%d.attention.self.query", L);
        MT_TRY(bind_f32(e, &q, n, H, H, 1, err));
        snprintf(n, sizeof n, "encoder.layer.%d.attention.self.key", L);
        MT_TRY(bind_f32(e, &k, n, H, H, 1, err));
        snprintf(n, sizeof n, "encoder.layer.%d.attention.self.value", L);
        MT_TRY(bind_f32(e, &v, n, H, H, 1, err));
        const mt_linear parts[3] = {q, k, v};
        MT_TRY(mt_enc_stack(e, &ly->qkv, parts, 3, err));
        snprintf(n, sizeof n, "encoder.layer.%d.attention.output.dense", L);
        MT_TRY(bind_f32(e, &ly->o, n, H, H, 1, err));
        snprintf(n, sizeof n, "encoder.layer.%d.attention.output.LayerNorm", L);
        MT_TRY(ln_f32(e, n, H, &ly->ln1_w, &ly->ln1_b, err));
        snprintf(n, sizeof n, "encoder.layer.%d.intermediate.dense", L);
        MT_TRY(bind_f32(e, &ly->up, n, FF, H, 1, err));
        snprintf(n, sizeof n, "encoder.layer.%d.output.dense", L);
        MT_TRY(bind_f32(e, &ly->down, n, H, FF, 1, err));
        snprintf(n, sizeof n, "encoder.layer.%d.output.LayerNorm", L);
        MT_TRY(ln_f32(e, n, H, &ly->ln2_w, &ly->ln2_b, err));
    }
    /* optional heads: pooler (under the prefix), classifier (top level) */
    snprintf(path, sizeof path, "%spooler.dense.weight", e->prefix);
    if (mt_safetensors_get(e->st, path)) MT_TRY(bind_f32(e, &e->pooler, "pooler.dense", H, H, 1, err));
    char saved[32];
    memcpy(saved, e->prefix, sizeof saved);
    e->prefix[0] = 0;
    int rc = MT_OK;
    if (mt_safetensors_get(e->st, "classifier.out_proj.weight")) {
        e->cls_two_layer = 1;
        rc = bind_f32(e, &e->cls_dense, "classifier.dense", H, H, 1, err);
        if (!rc) rc = bind_f32(e, &e->classifier, "classifier.out_proj", 0, H, 1, err);
    } else if (mt_safetensors_get(e->st, "classifier.weight")) {
        rc = bind_f32(e, &e->classifier, "classifier", 0, H, 1, err);
    }
    memcpy(e->prefix, saved, sizeof saved);
    return rc;
}

int mt_encoder_load(mt_encoder **out, const char *dir, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_encoder *e = calloc(1, sizeof *e);
    if (!e) return mt_seterr(err, MT_ENOMEM, "out of memory");
    e->pool = pool;
    int rc = mt_config_load(&e->cfg, dir, err);
    if (!rc) {
        const char *mt = mt_config_model_type(e->cfg);
        const mt_encoder_family *f = mt ? mt_encoder_family_find(mt) : NULL;
        if (!mt) rc = mt_seterr(err, MT_EFORMAT, "config.json: no \"model_type\"");
        else if (!f) rc = mt_seterr(err, MT_EUNSUPPORTED, "model_type \"%s\" is not a supported encoder", mt);
        else {
            snprintf(e->model_type, sizeof e->model_type, "%s", mt);
            e->dir = dir;
            rc = mt_safetensors_open_dir(&e->st, dir, err);
            if (f->load) {
                if (!rc) rc = f->load(e, err);
            } else {
                if (!rc) rc = read_hp(e, err);
                if (!rc) rc = f->init(e, err);
                if (!rc) rc = bind_all(e, err);
            }
        }
    }
    e->dir = NULL;
    if (rc) {
        mt_encoder_free(e);
        return rc;
    }
    *out = e;
    return MT_OK;
}

void mt_encoder_free(mt_encoder *e) {
    if (!e) return;
    for (size_t i = 0; i < e->n_owned; i++) free(e->owned[i]);
    free(e->owned);
    free(e->layers);
    mt_model_free(e->dec);
    mt_safetensors_free(e->st);
    mt_config_free(e->cfg);
    free(e);
}

/* ---- forward ---- */

/* The element-wise loops below are only vectorized when GCC may turn float
 * compares into blends, which -ftrapping-math (the default) forbids; nothing
 * here reads the floating-point exception flags. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-trapping-math")
#endif

/* exp(x) in float, Cephes-style range reduction + polynomial (about 1 ulp),
 * written so that loops over it vectorize. */
static inline float fexp(float x) {
    x = x < -80.0f ? -80.0f : x > 88.0f ? 88.0f : x;   /* no denormal results */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;   /* round to nearest */
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* unsigned shift: a NaN x (corrupt weights) gives a garbage scale but p is NaN, so
     * NaN comes out (for the caller to detect) and no undefined shift happens */
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float sc;
    memcpy(&sc, &bits, sizeof sc);
    return p * sc;
}

/* GELU with erf from Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7). */
static void gelu_fast(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i], a = fabsf(v) * 0.70710678118654752f;
        a = a > 6.0f ? 6.0f : a;
        float t = 1.0f / (1.0f + 0.3275911f * a);
        float y = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
        float e = 1.0f - y * fexp(-a * a);
        x[i] = 0.5f * v * (1.0f + (v < 0 ? -e : e));
    }
}

/* GELU, tanh form (0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))), with tanh from fexp:
 * tanh|y| = (1 - e) / (1 + e), e = exp(-2|y|); within 2e-7 of tanhf, and the loop vectorizes
 * (tanhf per element was a sixth of a SigLIP tower's time). */
static void gelu_tanh_fast(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i], y = 0.7978845608028654f * (v + 0.044715f * v * v * v);
        float a = fabsf(y), e = fexp(-2.0f * a), t = (1.0f - e) / (1.0f + e);
        x[i] = 0.5f * v * (1.0f + (y < 0 ? -t : t));
    }
}

/* p[n] = exp(p - max(p)); returns the sum (max and sum over 8 lanes, so
 * that both loops vectorize). */
static float softmax_exp(float *p, size_t n) {
    float mv[8], sv[8] = {0};
    size_t j = 0;
    for (int k = 0; k < 8; k++) mv[k] = -INFINITY;
    for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) mv[k] = p[j + k] > mv[k] ? p[j + k] : mv[k];
    float m = -INFINITY;
    for (int k = 0; k < 8; k++) m = mv[k] > m ? mv[k] : m;
    for (; j < n; j++) m = p[j] > m ? p[j] : m;
    for (j = 0; j < n; j++) p[j] = fexp(p[j] - m);
    for (j = 0; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; k++) sv[k] += p[j + k];
    float sum = 0.f;
    for (; j < n; j++) sum += p[j];
    for (int k = 0; k < 8; k++) sum += sv[k];
    return sum;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
/* The 4 x 16 register block both products below use:
 * acc[2u..2u+1] = sum_k a[u][k] * b[k * ldb + 0..16) for u < 4. */
static inline void mk4x16(const float *const a[4], const float *b, size_t ldb, size_t K, __m256 acc[8]) {
    for (int i = 0; i < 8; i++) acc[i] = _mm256_setzero_ps();
    for (size_t k = 0; k < K; k++) {
        const float *br = b + k * ldb;
        __m256 b0 = _mm256_loadu_ps(br), b1 = _mm256_loadu_ps(br + 8);
        for (int u = 0; u < 4; u++) {
            __m256 au = _mm256_broadcast_ss(a[u] + k);
            acc[2 * u] = _mm256_fmadd_ps(au, b0, acc[2 * u]);
            acc[2 * u + 1] = _mm256_fmadd_ps(au, b1, acc[2 * u + 1]);
        }
    }
}

/* pr[u][j] = scale * q[u] . k_j for 4 queries, keys from kt [d, L] (16 keys per
 * step, 8 accumulators in registers). */
static void scores4(const float *const q[4], const float *kt, size_t L, size_t d, float scale, float *const pr[4]) {
    size_t j = 0;
    __m256 sc = _mm256_set1_ps(scale);
    for (; j + 16 <= L; j += 16) {
        __m256 acc[8];
        mk4x16(q, kt + j, L, d, acc);
        for (int u = 0; u < 4; u++) {
            _mm256_storeu_ps(pr[u] + j, _mm256_mul_ps(acc[2 * u], sc));
            _mm256_storeu_ps(pr[u] + j + 8, _mm256_mul_ps(acc[2 * u + 1], sc));
        }
    }
    for (; j + 8 <= L; j += 8) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t x = 0; x < d; x++) {
            __m256 k0 = _mm256_loadu_ps(kt + x * L + j);
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(q[0] + x), k0, a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(q[1] + x), k0, a1);
            a2 = _mm256_fmadd_ps(_mm256_broadcast_ss(q[2] + x), k0, a2);
            a3 = _mm256_fmadd_ps(_mm256_broadcast_ss(q[3] + x), k0, a3);
        }
        _mm256_storeu_ps(pr[0] + j, _mm256_mul_ps(a0, sc));
        _mm256_storeu_ps(pr[1] + j, _mm256_mul_ps(a1, sc));
        _mm256_storeu_ps(pr[2] + j, _mm256_mul_ps(a2, sc));
        _mm256_storeu_ps(pr[3] + j, _mm256_mul_ps(a3, sc));
    }
    for (; j < L; j++)
        for (int u = 0; u < 4; u++) {
            float acc = 0.f;
            for (size_t x = 0; x < d; x++) acc = fmaf(q[u][x], kt[x * L + j], acc);
            pr[u][j] = acc * scale;
        }
}

/* o[u][0..d) = r[u] * sum_j pr[u][j] v_j for 4 queries (o[u] NULL: skipped),
 * v from vv [L, d], 16 features per step. */
static void pv4(const float *const pr[4], const float *vv, size_t L, size_t d, const float r[4], float *const o[4]) {
    size_t x = 0;
    for (; x + 16 <= d; x += 16) {
        __m256 acc[8];
        mk4x16(pr, vv + x, d, L, acc);
        for (int u = 0; u < 4; u++)
            if (o[u]) {
                __m256 ru = _mm256_set1_ps(r[u]);
                _mm256_storeu_ps(o[u] + x, _mm256_mul_ps(acc[2 * u], ru));
                _mm256_storeu_ps(o[u] + x + 8, _mm256_mul_ps(acc[2 * u + 1], ru));
            }
    }
    for (; x < d; x++)
        for (int u = 0; u < 4; u++)
            if (o[u]) {
                float acc = 0.f;
                for (size_t j = 0; j < L; j++) acc = fmaf(pr[u][j], vv[j * d + x], acc);
                o[u][x] = acc * r[u];
            }
}
#define MT_ENC_AVX2 1
#endif

typedef struct attn_ctx {
    const mt_encoder *e;
    const float *qkv;        /* [N, 3H] */
    float *ctx;              /* [N, H] */
    const size_t *lens, *offs;
    float *scratch;          /* per thread: `lmax` floats (Kt, V, scores) */
    size_t lmax;
    int window;
} attn_ctx;

/* One (sequence, head) per task.  K is gathered transposed ([d, L]) and V
 * contiguous ([L, d]) into the thread's scratch, so that both the scores
 * (s[0..L) += q[x] * Kt[x][0..L)) and the output (o += p[j] * V[j]) are
 * unit-stride loops the compiler vectorizes.  Keys outside a sliding window
 * get a score of -inf (their weight underflows to < 1e-34). */
static void attn_task(void *c, size_t b, size_t end, int tid) {
    attn_ctx *a = c;
    const mt_encoder_hp *hp = &a->e->hp;
    size_t H = (size_t)hp->hidden, d = (size_t)hp->head_dim, nh = (size_t)hp->n_heads;
    float scale = 1.0f / sqrtf((float)d);
    float *kt = a->scratch + (size_t)tid * a->lmax;
    for (size_t t = b; t < end; t++) {
        size_t s = t / nh, h = t % nh, L = a->lens[s], off = a->offs[s];
        float *vv = kt + d * L, *p = vv + d * L;
        const float *base = a->qkv + off * 3 * H;
        for (size_t j = 0; j < L; j++) {
            const float *k = base + j * 3 * H + H + h * d, *v = k + H;
            for (size_t x = 0; x < d; x++) kt[x * L + j] = k[x];
            memcpy(vv + j * d, v, d * sizeof(float));
        }
        /* four queries at a time: each K^T / V load feeds four accumulators */
        for (size_t i = 0; i < L; i += 4) {
            const float *q[4];
            float *pr[4];
            for (int u = 0; u < 4; u++) {
                size_t qi = i + (size_t)u < L ? i + (size_t)u : L - 1;
                q[u] = base + qi * 3 * H + h * d;
                pr[u] = p + (size_t)u * L;
            }
            size_t j = 0;
#ifdef MT_ENC_AVX2
            scores4(q, kt, L, d, scale, pr);
#else
            size_t j = 0;
            for (; j + 16 <= L; j += 16) {
                float acc[4][16] = {{0}};
                for (size_t x = 0; x < d; x++) {
                    const float *kr = kt + x * L + j;
                    for (int u = 0; u < 4; u++) {
                        float qx = q[u][x];
                        for (int k = 0; k < 16; k++) acc[u][k] = fmaf(qx, kr[k], acc[u][k]);
                    }
                }
                for (int u = 0; u < 4; u++)
                    for (int k = 0; k < 16; k++) pr[u][j + k] = acc[u][k] * scale;
            }
            for (; j < L; j++)
                for (int u = 0; u < 4; u++) {
                    float acc = 0.f;
                    for (size_t x = 0; x < d; x++) acc = fmaf(q[u][x], kt[x * L + j], acc);
                    pr[u][j] = acc * scale;
                }
#endif
            if (a->window > 0)
                for (int u = 0; u < 4; u++) {
                    size_t qi = i + (size_t)u < L ? i + (size_t)u : L - 1, w = (size_t)a->window;
                    for (j = 0; j < L; j++)
                        if ((j > qi ? j - qi : qi - j) > w) pr[u][j] = -INFINITY;
                }
            float r[4];
            for (int u = 0; u < 4; u++) r[u] = 1.0f / softmax_exp(pr[u], L);
#ifdef MT_ENC_AVX2
            float *o[4];
            for (int u = 0; u < 4; u++) o[u] = i + (size_t)u < L ? a->ctx + (off + i + (size_t)u) * H + h * d : NULL;
            pv4((const float *const *)pr, vv, L, d, r, o);
            (void)j;
#else
            size_t x = 0;
            for (; x + 16 <= d; x += 16) {
                float acc[4][16] = {{0}};
                for (j = 0; j < L; j++) {
                    const float *v = vv + j * d + x;
                    for (int u = 0; u < 4; u++) {
                        float w = pr[u][j];
                        for (int k = 0; k < 16; k++) acc[u][k] = fmaf(w, v[k], acc[u][k]);
                    }
                }
                for (int u = 0; u < 4 && i + (size_t)u < L; u++) {
                    float *o = a->ctx + (off + i + (size_t)u) * H + h * d + x;
                    for (int k = 0; k < 16; k++) o[k] = acc[u][k] * r[u];
                }
            }
            for (; x < d; x++)
                for (int u = 0; u < 4 && i + (size_t)u < L; u++) {
                    float acc = 0.f;
                    for (j = 0; j < L; j++) acc = fmaf(pr[u][j], vv[j * d + x], acc);
                    a->ctx[(off + i + (size_t)u) * H + h * d + x] = acc * r[u];
                }
#endif
        }
    }
}

int mt_enc_attention(const mt_encoder *e, const float *qkv, float *ctx, const size_t *lens, size_t nseq, int window,
                     mt_err *err) {
    size_t lmax = 0;
    for (size_t s = 0; s < nseq; s++) lmax = lens[s] > lmax ? lens[s] : lmax;
    int nth = mt_pool_size(e->pool);
    if (nth < 1) nth = 1;
    size_t per = lmax * (2 * (size_t)e->hp.head_dim + 4);
    size_t *offs = malloc((nseq + 1) * sizeof *offs);
    float *scratch = malloc((size_t)nth * per * sizeof(float));
    if (!offs || !scratch) {
        free(offs);
        free(scratch);
        return mt_seterr(err, MT_ENOMEM, "out of memory for attention");
    }
    size_t off = 0;
    for (size_t s = 0; s < nseq; s++) {
        offs[s] = off;
        off += lens[s];
    }
    attn_ctx ac = {e, qkv, ctx, lens, offs, scratch, per, window};
    mt_pool_for(e->pool, nseq * (size_t)e->hp.n_heads, 1, attn_task, &ac);
    free(offs);
    free(scratch);
    return MT_OK;
}

void mt_enc_act(int act, float *x, size_t n) {
    switch (act) {
    case MT_ENC_ACT_GELU: gelu_fast(x, n); break;
    case MT_ENC_ACT_GELU_TANH: gelu_tanh_fast(x, n); break;
    case MT_ENC_ACT_SILU: mt_silu(x, n); break;
    default:
        for (size_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
    }
}

typedef struct rows_ctx {
    const mt_encoder *e;
    float *x;                /* [N, H] in/out */
    const float *add;        /* [N, H] residual branch */
    const float *w, *b;
    int act;                 /* -1: residual + LN; else activation on [N, width] */
    size_t width;
} rows_ctx;

static void rows_task(void *c, size_t b, size_t end, int tid) {
    (void)tid;
    rows_ctx *r = c;
    size_t H = (size_t)r->e->hp.hidden;
    if (r->act < 0) {
        for (size_t t = b; t < end; t++) {
            float *x = r->x + t * H;
            const float *a = r->add + t * H;
            for (size_t i = 0; i < H; i++) x[i] += a[i];
            mt_layernorm(x, x, r->w, r->b, H, r->e->hp.eps);
        }
        return;
    }
    for (size_t t = b; t < end; t++) mt_enc_act(r->act, r->x + t * r->width, r->width);
}

/* y[T, out] = x W^T + b on the calling thread: F32 weights as one sgemm with
 * the bias rows laid down first; packed / other weights through
 * mt_linear_forward (pool may be NULL). */
static void linear_rows(const mt_linear *l, const float *x, size_t T, float *y, float *work, mt_pool *pool) {
    if (l->quantized || l->wdt != MT_F32 || (l->bias && l->bdt != MT_F32) || T < 2) {
        mt_linear_forward(l, x, T, y, work, pool);
        return;
    }
    float beta = 0.0f;
    if (l->bias) {
        for (size_t t = 0; t < T; t++) memcpy(y + t * l->out, l->bias, l->out * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)l->out, (int)l->in, 1.0f, x, (int)l->in,
                (const float *)l->w, (int)l->in, beta, y, (int)l->out);
}

/* Whether the products may be split over the pool's threads: only when
 * OpenBLAS itself runs one thread (programs set that with mt_blas_threads(1);
 * then each pool thread calls sgemm on its own rows, and no BLAS thread spins
 * while the pool works). */
static int split_rows(const mt_encoder *e) { return mt_blas_pool_splits(e->pool); }

/* Float32 products run in blocks of ENC_ROWS rows, the last block padded with zero rows:
 * OpenBLAS computes a row of a block the same way wherever the block sits, but the rows of
 * a short or ragged product (its edge kernels) by other code, in another order.  With
 * fixed blocks a token's result does not depend on how many tokens share its batch, so
 * a record's vector is the same bytes in any batch (--resume, shards, --batch-tokens). */
#define ENC_ROWS 64

typedef struct lin_ctx {
    const mt_linear *l;
    const float *x;
    float *y;
    size_t T;
    int failed;
} lin_ctx;

static void lin_task(void *c, size_t b, size_t end, int tid) {
    (void)tid;
    lin_ctx *k = c;
    const mt_linear *l = k->l;
    for (size_t blk = b; blk < end; blk++) {
        size_t r0 = blk * ENC_ROWS, n = k->T - r0 < ENC_ROWS ? k->T - r0 : ENC_ROWS;
        if (n == ENC_ROWS) {
            linear_rows(l, k->x + r0 * l->in, n, k->y + r0 * l->out, NULL, NULL);
            continue;
        }
        float *xp = calloc(ENC_ROWS * (l->in + l->out), sizeof(float));
        if (!xp) {
            k->failed = 1;
            continue;
        }
        float *yp = xp + ENC_ROWS * l->in;
        memcpy(xp, k->x + r0 * l->in, n * l->in * sizeof(float));
        linear_rows(l, xp, ENC_ROWS, yp, NULL, NULL);
        memcpy(k->y + r0 * l->out, yp, n * l->out * sizeof(float));
        free(xp);
    }
}

void mt_enc_linear(const mt_encoder *e, const mt_linear *l, const float *x, size_t T, float *y, float *work) {
    int f32 = !l->quantized && l->wdt == MT_F32 && !(l->bias && l->bdt != MT_F32);
    if (f32 && T >= 2) {
        lin_ctx k = {l, x, y, T, 0};
        size_t nb = (T + ENC_ROWS - 1) / ENC_ROWS;
        mt_pool_for(split_rows(e) ? e->pool : NULL, nb, 1, lin_task, &k);
        if (!k.failed) return;
        /* out of memory for a padded block: the whole product at once (not batch-invariant) */
    }
    linear_rows(l, x, T, y, work, e->pool);
}

/* ---- quantized layers: dequantized per batch ---- */

#define VIEW_MIN_T 64

size_t mt_enc_view_floats(const mt_encoder *e) {
    size_t best = 0;
    for (int L = 0; L < e->hp.n_layers; L++) {
        const mt_enc_layer *ly = &e->layers[L];
        const mt_linear *ls[4] = {&ly->qkv, &ly->o, &ly->up, &ly->down};
        size_t n = 0;
        for (int i = 0; i < 4; i++)
            if (ls[i]->quantized) n += ls[i]->out * ls[i]->in;
        best = n > best ? n : best;
    }
    return best;
}

typedef struct deq_ctx {
    const mt_linear *l;
    float *w;
} deq_ctx;

static void deq_task(void *c, size_t b, size_t end, int tid) {
    (void)tid;
    deq_ctx *k = c;
    for (size_t r = b; r < end; r++) mt_linear_row_f32(k->l, r, k->w + r * k->l->in);
}

const mt_enc_layer *mt_enc_layer_view(const mt_encoder *e, const mt_enc_layer *ly, size_t T, mt_enc_layer *tmp,
                                      float *buf) {
    if (!buf || T < VIEW_MIN_T) return ly;
    *tmp = *ly;
    mt_linear *ls[4] = {&tmp->qkv, &tmp->o, &tmp->up, &tmp->down};
    int any = 0;
    for (int i = 0; i < 4; i++) {
        mt_linear *l = ls[i];
        if (!l->quantized) continue;
        deq_ctx k = {l, buf};
        mt_pool_for(e->pool, l->out, 16, deq_task, &k);
        l->quantized = 0;
        l->wdt = MT_F32;
        l->w = buf;
        l->scales = l->biases = NULL;
        buf += l->out * l->in;
        any = 1;
    }
    return any ? tmp : ly;
}

int mt_enc_check_input(const mt_encoder *e, const int32_t *ids, const int32_t *type_ids, const size_t *lens,
                       size_t nseq, size_t maxlen, size_t *ntok, mt_err *err) {
    const mt_encoder_hp *hp = &e->hp;
    size_t N = 0;
    for (size_t s = 0; s < nseq; s++) {
        if (lens[s] == 0 || lens[s] > maxlen)
            return mt_seterr(err, MT_EINVAL, "sequence of %zu tokens (the model takes 1..%zu)", lens[s], maxlen);
        N += lens[s];
    }
    for (size_t t = 0; t < N; t++) {
        if (ids[t] < 0 || ids[t] >= hp->vocab) return mt_seterr(err, MT_EINVAL, "token id %d out of range", ids[t]);
        if (type_ids && (type_ids[t] < 0 || type_ids[t] >= (hp->type_vocab ? hp->type_vocab : 1)))
            return mt_seterr(err, MT_EINVAL, "token type id %d out of range", type_ids[t]);
    }
    *ntok = N;
    return MT_OK;
}

int mt_encoder_forward(mt_encoder *e, const int32_t *ids, const int32_t *type_ids, const size_t *lens, size_t nseq,
                       float *hidden, mt_err *err) {
    if (e->rotary) return mt_enc_rope_forward(e, ids, type_ids, lens, nseq, hidden, err);
    if (e->dec) {
        if (type_ids)
            for (size_t t = 0, n = 0; t < nseq; n += lens[t], t++)
                for (size_t i = 0; i < lens[t]; i++)
                    if (type_ids[n + i]) return mt_seterr(err, MT_EINVAL, "token type id %d out of range", type_ids[n + i]);
        return mt_enc_dec_forward(e, ids, lens, nseq, hidden, err);
    }
    const mt_encoder_hp *hp = &e->hp;
    size_t H = (size_t)hp->hidden, FF = (size_t)hp->inter, N = 0;
    int rc = mt_enc_check_input(e, ids, type_ids, lens, nseq, (size_t)(hp->max_pos - hp->pos_offset), &N, err);
    if (rc) return rc;
    int nth = mt_pool_size(e->pool);
    if (nth < 1) nth = 1;
    size_t wmax = FF > 3 * H ? FF : 3 * H;
    float *qkv = malloc(N * wmax * sizeof(float));      /* also the MLP's [N, I] */
    float *ctx = malloc(N * H * sizeof(float));
    float *tmp = malloc(N * H * sizeof(float));
    size_t per = FF > H ? FF : H;
    float *scratch = malloc((size_t)nth * per * sizeof(float));
    float *row = malloc(H * sizeof(float));
    if (!qkv || !ctx || !tmp || !scratch || !row) {
        free(qkv); free(ctx); free(tmp); free(scratch); free(row);
        return mt_seterr(err, MT_ENOMEM, "out of memory for a batch of %zu tokens", N);
    }
    float *x = hidden;
    size_t off = 0;
    for (size_t s = 0; s < nseq; s++) {
        for (size_t i = 0; i < lens[s]; i++) {
            float *xr = x + (off + i) * H;
            mt_linear_row(&e->word, (size_t)ids[off + i], xr);
            mt_linear_row(&e->pos, i + (size_t)hp->pos_offset, row);
            for (size_t k = 0; k < H; k++) xr[k] += row[k];
            if (hp->type_vocab) {
                mt_linear_row(&e->type, type_ids ? (size_t)type_ids[off + i] : 0, row);
                for (size_t k = 0; k < H; k++) xr[k] += row[k];
            }
            mt_layernorm(xr, xr, e->emb_ln_w, e->emb_ln_b, H, hp->eps);
        }
        off += lens[s];
    }
    rc = MT_OK;
    size_t nview = N >= VIEW_MIN_T ? mt_enc_view_floats(e) : 0;
    float *vbuf = nview ? malloc(nview * sizeof(float)) : NULL;   /* NULL: packed kernels */
    for (int L = 0; L < hp->n_layers && !rc; L++) {
        mt_enc_layer view;
        const mt_enc_layer *ly = mt_enc_layer_view(e, &e->layers[L], N, &view, vbuf);
        mt_enc_linear(e, &ly->qkv, x, N, qkv, scratch);
        rc = mt_enc_attention(e, qkv, ctx, lens, nseq, 0, err);
        if (rc) break;
        mt_enc_linear(e, &ly->o, ctx, N, tmp, scratch);
        rows_ctx rc1 = {e, x, tmp, ly->ln1_w, ly->ln1_b, -1, H};
        mt_pool_for(e->pool, N, 4, rows_task, &rc1);
        mt_enc_linear(e, &ly->up, x, N, qkv, scratch);
        rows_ctx ra = {e, qkv, NULL, NULL, NULL, hp->act, FF};
        mt_pool_for(e->pool, N, 4, rows_task, &ra);
        mt_enc_linear(e, &ly->down, qkv, N, tmp, scratch);
        rows_ctx rb = {e, x, tmp, ly->ln2_w, ly->ln2_b, -1, H};
        mt_pool_for(e->pool, N, 4, rows_task, &rb);
    }
    free(vbuf);
    free(qkv); free(ctx); free(tmp); free(scratch); free(row);
    return rc;
}

size_t mt_encoder_n_labels(const mt_encoder *e) { return e->classifier.out; }

int mt_encoder_classify(mt_encoder *e, const float *cls_hidden, size_t nseq, float *logits, mt_err *err) {
    if (!e->classifier.out) return mt_seterr(err, MT_ENOTFOUND, "the model has no classification head");
    size_t H = (size_t)e->hp.hidden;
    float *a = malloc(nseq * H * sizeof(float)), *work = malloc(H * sizeof(float) * 64);
    if (!a || !work) {
        free(a); free(work);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    const mt_linear *first = e->cls_two_layer ? &e->cls_dense : e->pooler.out ? &e->pooler : NULL;
    if (first) {
        mt_linear_forward(first, cls_hidden, nseq, a, work, NULL);
        for (size_t i = 0; i < nseq * H; i++) a[i] = tanhf(a[i]);
    } else {
        memcpy(a, cls_hidden, nseq * H * sizeof(float));
    }
    mt_linear_forward(&e->classifier, a, nseq, logits, work, NULL);
    free(a);
    free(work);
    return MT_OK;
}

/* ---- families ---- */

static int bert_init(mt_encoder *e, mt_err *err) {
    (void)err;
    e->hp.pos_offset = 0;
    return MT_OK;
}

/* roberta / xlm-roberta: position ids start after padding_idx (pad_token_id). */
static int roberta_init(mt_encoder *e, mt_err *err) {
    int pad = 1;
    MT_TRY(mt_cfg_int(mt_config_json(e->cfg), "pad_token_id", 1, &pad, 0, err));
    e->hp.pos_offset = pad + 1;
    if (e->hp.pos_offset >= e->hp.max_pos)
        return mt_seterr(err, MT_EFORMAT, "config.json: pad_token_id leaves no positions");
    return MT_OK;
}

const mt_encoder_family mt_encoder_family_bert = {"bert", bert_init, NULL};
const mt_encoder_family mt_encoder_family_roberta = {"roberta", roberta_init, NULL};
const mt_encoder_family mt_encoder_family_xlm_roberta = {"xlm-roberta", roberta_init, NULL};
