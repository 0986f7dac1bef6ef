/* decoder.c - the shared llama-like decoder: hyper-parameters, tensor binding,
 * RoPE variants, KV cache and the forward pass.  Family files only set what
 * differs.  ref: mlx_lm/models/llama.py, qwen3.py, rope_utils.py. */
#include "models/model.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tensor/ops.h"

/* ---- config access ---- */

static int cfg_num(json_t *c, const char *key, double def, double *out, int required, mt_err *err) {
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

static int cfg_int(json_t *c, const char *key, int def, int *out, int required, mt_err *err) {
    double d = 0;
    MT_TRY(cfg_num(c, key, def, &d, required, err));
    if (d != floor(d) || d < 0 || d > 1e9) return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" must be a non-negative integer", key);
    *out = (int)d;
    return MT_OK;
}

static int cfg_bool(json_t *c, const char *key, int def, int *out, mt_err *err) {
    json_t *v = json_object_get(c, key);
    if (!v || json_is_null(v)) { *out = def; return MT_OK; }
    if (!json_is_boolean(v)) return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" must be true or false", key);
    *out = json_is_true(v);
    return MT_OK;
}

int mt_decoder_read_hp(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    mt_decoder_hp *hp = &m->hp;
    double eps = 0, theta = 0;
    MT_TRY(cfg_int(c, "num_hidden_layers", 0, &hp->n_layers, 1, err));
    MT_TRY(cfg_int(c, "hidden_size", 0, &hp->hidden, 1, err));
    MT_TRY(cfg_int(c, "num_attention_heads", 0, &hp->n_heads, 1, err));
    MT_TRY(cfg_int(c, "num_key_value_heads", hp->n_heads, &hp->n_kv_heads, 0, err));
    MT_TRY(cfg_int(c, "intermediate_size", 0, &hp->inter, 1, err));
    MT_TRY(cfg_int(c, "vocab_size", 0, &hp->vocab, 1, err));
    if (!hp->n_layers || !hp->hidden || !hp->n_heads || !hp->n_kv_heads || !hp->vocab || !hp->inter)
        return mt_seterr(err, MT_EFORMAT, "config.json: layer, head, size and vocabulary counts must be positive");
    if (hp->n_heads % hp->n_kv_heads)
        return mt_seterr(err, MT_EFORMAT, "config.json: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                         hp->n_heads, hp->n_kv_heads);
    MT_TRY(cfg_int(c, "head_dim", hp->hidden / hp->n_heads, &hp->head_dim, 0, err));
    if (!hp->head_dim || hp->head_dim % 2) return mt_seterr(err, MT_EFORMAT, "config.json: head_dim must be even and positive");
    MT_TRY(cfg_num(c, "rms_norm_eps", 1e-6, &eps, 0, err));
    MT_TRY(cfg_num(c, "rope_theta", 10000.0, &theta, 0, err));
    hp->norm_eps = (float)eps;
    hp->rope_theta = (float)theta;
    MT_TRY(cfg_bool(c, "rope_traditional", 0, &hp->rope_traditional, err));
    MT_TRY(cfg_bool(c, "tie_word_embeddings", 1, &hp->tie_embeddings, err));
    MT_TRY(cfg_bool(c, "attention_bias", 0, &hp->attn_bias, err));
    hp->rot_dims = hp->head_dim;
    hp->rope_in_scale = 1.0f;
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    hp->act = MT_ACT_SILU;
    return MT_OK;
}

/* RoPE frequencies, as mlx_lm.models.rope_utils.initialize_rope builds them. */
static int rope_init(mt_model *m, mt_err *err) {
    mt_decoder_hp *hp = &m->hp;
    json_t *c = mt_config_json(m->cfg);
    int d = hp->rot_dims, half = d / 2;
    m->inv_freq = malloc((size_t)half * sizeof(float));
    if (!m->inv_freq) return mt_seterr(err, MT_ENOMEM, "out of memory");
    /* periods ("freqs" in mlx_lm): base^(2i/d), computed in float32 like mx.arange(0, d, 2) / d */
    float *period = malloc((size_t)half * sizeof(float));
    if (!period) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (int i = 0; i < half; i++) period[i] = powf(hp->rope_theta, (float)(2 * i) / (float)d);
    json_t *rs = json_object_get(c, "rope_scaling");
    const char *type = "default";
    if (json_is_object(rs)) {
        json_t *t = json_object_get(rs, "type");
        if (!json_is_string(t)) t = json_object_get(rs, "rope_type");
        if (json_is_string(t)) type = json_string_value(t);
    }
    double factor = 1.0;
    if (json_is_object(rs) && strcmp(type, "default") != 0) {
        int rc = cfg_num(rs, "factor", 1.0, &factor, 1, err);
        if (rc) { free(period); return mt_preferr(err, "rope_scaling"); }
    }
    int rc = MT_OK;
    if (!strcmp(type, "default") || !strcmp(type, "linear")) {
        float scale = !strcmp(type, "linear") ? (float)(1.0 / factor) : 1.0f;
        for (int i = 0; i < half; i++) m->inv_freq[i] = scale / period[i];
    } else if (!strcmp(type, "llama3")) {
        double lo = 1, hi = 4, old = 8192;
        if ((rc = cfg_num(rs, "low_freq_factor", 1.0, &lo, 0, err)) ||
            (rc = cfg_num(rs, "high_freq_factor", 4.0, &hi, 0, err)) ||
            (rc = cfg_num(rs, "original_max_position_embeddings", 8192, &old, 0, err))) {
            free(period);
            return rc;
        }
        float lo_wl = (float)(old / lo), hi_wl = (float)(old / hi);
        for (int i = 0; i < half; i++) {
            float f = period[i], wl = 2.0f * (float)M_PI * f;
            float fr = wl > lo_wl ? f * (float)factor : f;
            if (wl > hi_wl && wl < lo_wl) {
                float sm = ((float)old / wl - (float)lo) / ((float)hi - (float)lo);
                fr = fr / ((1.0f - sm) / (float)factor + sm);
            }
            m->inv_freq[i] = 1.0f / fr;
        }
    } else if (!strcmp(type, "yarn") || !strcmp(type, "deepseek_yarn")) {
        double orig = 4096, bf = 32, bs = 1, ms = 1, msad = 0;
        if ((rc = cfg_num(rs, "original_max_position_embeddings", 4096, &orig, 0, err)) ||
            (rc = cfg_num(rs, "beta_fast", 32, &bf, 0, err)) || (rc = cfg_num(rs, "beta_slow", 1, &bs, 0, err)) ||
            (rc = cfg_num(rs, "mscale", 1, &ms, 0, err)) || (rc = cfg_num(rs, "mscale_all_dim", 0, &msad, 0, err))) {
            free(period);
            return rc;
        }
        double base = hp->rope_theta;
#define CORR(r) ((d * log(orig / ((r) * 2 * M_PI))) / (2 * log(base)))
        double low = floor(CORR(bf)), high = ceil(CORR(bs));
#undef CORR
        if (low < 0) low = 0;
        if (high > d - 1) high = d - 1;
        if (low == high) high += 0.001;
#define GETM(s, mm) ((s) <= 1 ? 1.0 : 0.1 * (mm) * log(s) + 1.0)
        hp->rope_in_scale = (float)(GETM(factor, ms) / GETM(factor, msad));
#undef GETM
        for (int i = 0; i < half; i++) {
            float ramp = (float)(((float)i - low) / (high - low));
            ramp = ramp < 0 ? 0 : ramp > 1 ? 1 : ramp;
            float mask = 1.0f - ramp;
            float fe = period[i], fi = (float)factor * fe;
            m->inv_freq[i] = 1.0f / ((fi * fe) / (fi * mask + fe * (1 - mask)));
        }
    } else {
        rc = mt_seterr(err, MT_EUNSUPPORTED, "config.json: rope_scaling type \"%s\" is not supported yet", type);
    }
    free(period);
    return rc;
}

/* ---- tensor binding ---- */

static int bind_norm(mt_model *m, const char *name, size_t n, float **out, mt_err *err) {
    *out = malloc(n * sizeof(float));
    if (!*out) return mt_seterr(err, MT_ENOMEM, "out of memory");
    const mt_tensor_view *t = mt_safetensors_get(m->st, name);
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
    if (t->ndim != 1 || (size_t)t->shape[0] != n)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected shape [%zu]", name, n);
    return mt_safetensors_read_f32(m->st, name, *out, n, 0, err);
}

int mt_decoder_bind(mt_model *m, mt_err *err) {
    mt_decoder_hp *hp = &m->hp;
    size_t H = (size_t)hp->hidden, qd = (size_t)hp->n_heads * hp->head_dim, kvd = (size_t)hp->n_kv_heads * hp->head_dim;
    size_t I = (size_t)hp->inter, V = (size_t)hp->vocab;
    MT_TRY(rope_init(m, err));
    MT_TRY(mt_linear_bind(&m->embed, m->st, m->cfg, "model.embed_tokens", V, H, -1, err));
    if (hp->tie_embeddings && !mt_safetensors_get(m->st, "lm_head.weight")) m->lm_head = m->embed;
    else MT_TRY(mt_linear_bind(&m->lm_head, m->st, m->cfg, "lm_head", V, H, -1, err));
    MT_TRY(bind_norm(m, "model.norm.weight", H, &m->final_norm, err));
    m->layers = calloc((size_t)hp->n_layers, sizeof *m->layers);
    if (!m->layers) return mt_seterr(err, MT_ENOMEM, "out of memory");
    char p[256], n[300];
    for (int i = 0; i < hp->n_layers; i++) {
        mt_layer *L = &m->layers[i];
#define LIN(field, sub, o, in, bias) \
    snprintf(p, sizeof p, "model.layers.%d.%s", i, sub); \
    MT_TRY(mt_linear_bind(&L->field, m->st, m->cfg, p, o, in, bias, err));
        LIN(q, "self_attn.q_proj", qd, H, hp->attn_bias ? 1 : -1);
        LIN(k, "self_attn.k_proj", kvd, H, hp->attn_bias ? 1 : -1);
        LIN(v, "self_attn.v_proj", kvd, H, hp->attn_bias ? 1 : -1);
        LIN(o, "self_attn.o_proj", H, qd, -1);
        LIN(gate, "mlp.gate_proj", I, H, -1);
        LIN(up, "mlp.up_proj", I, H, -1);
        LIN(down, "mlp.down_proj", H, I, -1);
#undef LIN
        snprintf(n, sizeof n, "model.layers.%d.input_layernorm.weight", i);
        MT_TRY(bind_norm(m, n, H, &L->attn_norm, err));
        snprintf(n, sizeof n, "model.layers.%d.post_attention_layernorm.weight", i);
        MT_TRY(bind_norm(m, n, H, &L->mlp_norm, err));
        if (hp->qk_norm) {
            snprintf(n, sizeof n, "model.layers.%d.self_attn.q_norm.weight", i);
            MT_TRY(bind_norm(m, n, (size_t)hp->head_dim, &L->q_norm, err));
            snprintf(n, sizeof n, "model.layers.%d.self_attn.k_norm.weight", i);
            MT_TRY(bind_norm(m, n, (size_t)hp->head_dim, &L->k_norm, err));
        }
    }
    m->max_in = H > qd ? H : qd;
    if (I > m->max_in) m->max_in = I;
    return MT_OK;
}

/* ---- load / free ---- */

int mt_model_load(mt_model **out, const char *dir, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_model *m = calloc(1, sizeof *m);
    if (!m) return mt_seterr(err, MT_ENOMEM, "out of memory");
    m->pool = pool;
    int rc = mt_config_load(&m->cfg, dir, err);
    if (rc) goto fail;
    const char *mt = mt_config_model_type(m->cfg);
    if (!mt) { rc = mt_seterr(err, MT_EFORMAT, "config.json: no \"model_type\""); goto fail; }
    snprintf(m->model_type, sizeof m->model_type, "%s", mt);
    const mt_family *fam = mt_family_find(mt);
    if (!fam) { rc = mt_seterr(err, MT_EUNSUPPORTED, "model_type \"%s\" is not supported", mt); goto fail; }
    if ((rc = mt_safetensors_open_dir(&m->st, dir, err))) goto fail;
    if ((rc = fam->init(m, err))) goto fail;
    *out = m;
    return MT_OK;
fail:
    mt_preferr(err, "%s", dir);
    mt_model_free(m);
    return rc;
}

void mt_model_free(mt_model *m) {
    if (!m) return;
    if (m->layers)
        for (int i = 0; i < m->hp.n_layers; i++) {
            free(m->layers[i].attn_norm);
            free(m->layers[i].mlp_norm);
            free(m->layers[i].q_norm);
            free(m->layers[i].k_norm);
        }
    free(m->layers);
    free(m->final_norm);
    free(m->inv_freq);
    mt_safetensors_free(m->st);
    mt_config_free(m->cfg);
    free(m);
}

/* ---- KV cache ---- */

int mt_kvcache_new(mt_kvcache **out, const mt_model *m, mt_err *err) {
    mt_kvcache *c = calloc(1, sizeof *c);
    if (!c) return mt_seterr(err, MT_ENOMEM, "out of memory");
    c->n_layers = m->hp.n_layers;
    c->kv_dim = (size_t)m->hp.n_kv_heads * m->hp.head_dim;
    c->k = calloc((size_t)c->n_layers, sizeof *c->k);
    c->v = calloc((size_t)c->n_layers, sizeof *c->v);
    if (!c->k || !c->v) { mt_kvcache_free(c); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    *out = c;
    return MT_OK;
}

void mt_kvcache_reset(mt_kvcache *c) { if (c) c->len = 0; }

void mt_kvcache_free(mt_kvcache *c) {
    if (!c) return;
    for (int i = 0; i < c->n_layers && c->k; i++) free(c->k[i]);
    for (int i = 0; i < c->n_layers && c->v; i++) free(c->v[i]);
    free(c->k);
    free(c->v);
    free(c);
}

static int kv_reserve(mt_kvcache *c, size_t need, mt_err *err) {
    if (need <= c->cap) return MT_OK;
    size_t cap = c->cap ? c->cap : 256;
    while (cap < need) cap *= 2;
    for (int i = 0; i < c->n_layers; i++) {
        float *k = realloc(c->k[i], cap * c->kv_dim * sizeof(float));
        if (!k) return mt_seterr(err, MT_ENOMEM, "out of memory for the KV cache (%zu positions)", cap);
        c->k[i] = k;
        float *v = realloc(c->v[i], cap * c->kv_dim * sizeof(float));
        if (!v) return mt_seterr(err, MT_ENOMEM, "out of memory for the KV cache (%zu positions)", cap);
        c->v[i] = v;
    }
    c->cap = cap;
    return MT_OK;
}

/* ---- forward ---- */

typedef struct attn_ctx {
    const mt_model *m;
    const mt_kvcache *c;
    int layer;
    const float *q;   /* [T, n_heads*hd] */
    float *out;       /* [T, n_heads*hd] */
    float *scores;    /* nthreads * (len) */
    size_t T, pos0, len;
} attn_ctx;

static void attn_heads(void *vc, size_t b, size_t e, int tid) {
    attn_ctx *a = vc;
    const mt_decoder_hp *hp = &a->m->hp;
    size_t hd = (size_t)hp->head_dim, qd = (size_t)hp->n_heads * hd, kvd = a->c->kv_dim;
    size_t group = (size_t)(hp->n_heads / hp->n_kv_heads);
    float *s = a->scores + (size_t)tid * a->len;
    const float *K = a->c->k[a->layer], *Vv = a->c->v[a->layer];
    for (size_t job = b; job < e; job++) {
        size_t t = job / (size_t)hp->n_heads, h = job % (size_t)hp->n_heads, kh = h / group;
        size_t p = a->pos0 + t;              /* absolute position of this query */
        size_t j0 = 0;
        if (a->m->layers[a->layer].sliding && hp->sliding_window > 0 && p + 1 > (size_t)hp->sliding_window)
            j0 = p + 1 - (size_t)hp->sliding_window;
        const float *qv = a->q + t * qd + h * hd;
        size_t n = p + 1 - j0;
        for (size_t j = 0; j < n; j++) s[j] = mt_dot(qv, K + (j0 + j) * kvd + kh * hd, hd) * hp->attn_scale;
        mt_softmax(s, n);
        float *o = a->out + t * qd + h * hd;
        memset(o, 0, hd * sizeof(float));
        for (size_t j = 0; j < n; j++) mt_axpy(o, s[j], Vv + (j0 + j) * kvd + kh * hd, hd);
    }
}

int mt_model_forward(mt_model *m, mt_kvcache *c, const int32_t *tok, size_t T, float *logits, int all_logits,
                     mt_err *err) {
    const mt_decoder_hp *hp = &m->hp;
    if (T == 0) return mt_seterr(err, MT_EINVAL, "no tokens to run");
    for (size_t t = 0; t < T; t++)
        if (tok[t] < 0 || tok[t] >= hp->vocab)
            return mt_seterr(err, MT_EINVAL, "token id %d outside the vocabulary (%d)", tok[t], hp->vocab);
    size_t pos0 = c->len;
    MT_TRY(kv_reserve(c, pos0 + T, err));
    size_t H = (size_t)hp->hidden, hd = (size_t)hp->head_dim, qd = (size_t)hp->n_heads * hd, kvd = c->kv_dim;
    size_t I = (size_t)hp->inter, nt = (size_t)mt_pool_size(m->pool);
    size_t len = pos0 + T;
    size_t sz_x = T * H, sz_q = T * qd, sz_kv = T * kvd, sz_i = T * I;
    size_t total = 2 * sz_x + 2 * sz_q + 2 * sz_kv + 2 * sz_i + nt * m->max_in + nt * len;
    float *buf = malloc(total * sizeof(float));
    if (!buf) return mt_seterr(err, MT_ENOMEM, "out of memory for activations");
    float *x = buf, *xn = x + sz_x, *q = xn + sz_x, *att = q + sz_q, *k = att + sz_q, *v = k + sz_kv;
    float *g = v + sz_kv, *u = g + sz_i, *work = u + sz_i, *scores = work + nt * m->max_in;

    for (size_t t = 0; t < T; t++) mt_linear_row(&m->embed, (size_t)tok[t], x + t * H);

    for (int l = 0; l < hp->n_layers; l++) {
        mt_layer *L = &m->layers[l];
        for (size_t t = 0; t < T; t++) mt_rmsnorm(xn + t * H, x + t * H, L->attn_norm, H, hp->norm_eps);
        mt_linear_forward(&L->q, xn, T, q, work, m->pool);
        mt_linear_forward(&L->k, xn, T, k, work, m->pool);
        mt_linear_forward(&L->v, xn, T, v, work, m->pool);
        for (size_t t = 0; t < T; t++) {
            float *qt = q + t * qd, *kt = k + t * kvd;
            if (L->q_norm) {
                for (int h = 0; h < hp->n_heads; h++) mt_rmsnorm(qt + h * hd, qt + h * hd, L->q_norm, hd, hp->norm_eps);
                for (int h = 0; h < hp->n_kv_heads; h++) mt_rmsnorm(kt + h * hd, kt + h * hd, L->k_norm, hd, hp->norm_eps);
            }
            if (hp->rope_in_scale != 1.0f) {
                for (int h = 0; h < hp->n_heads; h++)
                    for (int i = 0; i < hp->rot_dims; i++) qt[h * hd + i] *= hp->rope_in_scale;
                for (int h = 0; h < hp->n_kv_heads; h++)
                    for (int i = 0; i < hp->rot_dims; i++) kt[h * hd + i] *= hp->rope_in_scale;
            }
            mt_rope(qt, (size_t)hp->n_heads, hd, (size_t)hp->rot_dims, m->inv_freq, (double)(pos0 + t), hp->rope_traditional);
            mt_rope(kt, (size_t)hp->n_kv_heads, hd, (size_t)hp->rot_dims, m->inv_freq, (double)(pos0 + t), hp->rope_traditional);
        }
        memcpy(c->k[l] + pos0 * kvd, k, sz_kv * sizeof(float));
        memcpy(c->v[l] + pos0 * kvd, v, sz_kv * sizeof(float));
        attn_ctx ac = {m, c, l, q, att, scores, T, pos0, len};
        mt_pool_for(m->pool, T * (size_t)hp->n_heads, 1, attn_heads, &ac);
        mt_linear_forward(&L->o, att, T, xn, work, m->pool);
        for (size_t i = 0; i < sz_x; i++) x[i] += xn[i];

        for (size_t t = 0; t < T; t++) mt_rmsnorm(xn + t * H, x + t * H, L->mlp_norm, H, hp->norm_eps);
        mt_linear_forward(&L->gate, xn, T, g, work, m->pool);
        mt_linear_forward(&L->up, xn, T, u, work, m->pool);
        if (hp->act == MT_ACT_SILU) mt_swiglu(g, u, sz_i);
        else {
            if (hp->act == MT_ACT_GELU) mt_gelu(g, sz_i); else mt_gelu_tanh(g, sz_i);
            for (size_t i = 0; i < sz_i; i++) g[i] *= u[i];
        }
        mt_linear_forward(&L->down, g, T, xn, work, m->pool);
        for (size_t i = 0; i < sz_x; i++) x[i] += xn[i];
    }
    c->len = len;

    size_t first = all_logits ? 0 : T - 1, nl = T - first;
    for (size_t t = 0; t < nl; t++) mt_rmsnorm(xn + t * H, x + (first + t) * H, m->final_norm, H, hp->norm_eps);
    mt_linear_forward(&m->lm_head, xn, nl, logits, work, m->pool);
    free(buf);
    return MT_OK;
}
