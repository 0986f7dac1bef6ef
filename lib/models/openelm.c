/* openelm.c - OpenELM: every layer its own number of query and kv heads and its own MLP width.
 *
 * The cache and the shared attention are sized for the widest layer (hp.n_heads, hp.n_kv_heads:
 * the largest counts); a narrower layer's mixer fills the heads it lacks with zeros (zero keys
 * and values: those heads attend to nothing that reaches the output, which takes only the
 * layer's own heads).  This needs the same query heads per kv head in every layer (OpenELM's
 * configs have it), which init checks.  Attention: fused qkv_proj ([q | k | v] by head),
 * RMSNorm of q and k per head, RoPE, out_proj; MLP: proj_1 = [gate | up], SwiGLU, proj_2.
 * ref: mlx_lm/models/openelm.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/decoder_int.h"
#include "models/kvcache_int.h"
#include "tensor/ops.h"

typedef struct elm_attn { mt_linear qkv, out; mt_norm qn, kn; size_t nq, nkv; } elm_attn;
typedef struct elm_ffn { mt_linear p1, p2; size_t I; } elm_ffn;

static void elm_attn_free(void *d) {
    elm_attn *a = d;
    if (!a) return;
    mt_dec_norm_free(&a->qn);
    mt_dec_norm_free(&a->kn);
    free(a);
}

static int elm_attn_forward(const mt_fwd *f, int l, const float *in, float *out, mt_err *err) {
    const mt_model *m = f->m;
    const mt_layer *L = &m->layers[l];
    const elm_attn *a = L->mix;
    size_t T = f->T, hd = (size_t)m->hp.head_dim, NQ = (size_t)m->hp.n_heads * hd, NKV = (size_t)m->hp.n_kv_heads * hd;
    size_t qd = a->nq * hd, kvd = a->nkv * hd, W = qd + 2 * kvd;
    float *qkv = malloc((T * W + T * 2 * NQ + 2 * NKV) * sizeof *qkv);
    if (!qkv) return mt_seterr(err, MT_ENOMEM, "out of memory");
    float *q = qkv + T * W, *att = q + T * NQ, *k = att + T * NQ, *v = k + NKV;
    mt_dec_observe(m, l, "attn.qkv_proj", in, T, m->hp.hidden);
    mt_dec_linear(f, &a->qkv, in, T, qkv);
    memset(q, 0, T * NQ * sizeof *q);
    memset(k, 0, 2 * NKV * sizeof *k);
    for (size_t t = 0; t < T; t++) {
        const float *r = qkv + t * W;
        float *qt = q + t * NQ;
        memcpy(qt, r, qd * sizeof *qt);
        memcpy(k, r + qd, kvd * sizeof *k);
        memcpy(v, r + qd + kvd, kvd * sizeof *v);
        if (a->qn.w) {
            mt_dec_norm(m, &a->qn, qt, qt, a->nq, hd);
            mt_dec_norm(m, &a->kn, k, k, a->nkv, hd);
        }
        mt_rope(qt, a->nq, hd, (size_t)m->hp.rot_dims, L->inv_freq, (double)f->rpos[t], m->hp.rope_traditional);
        mt_rope(k, a->nkv, hd, (size_t)m->hp.rot_dims, L->inv_freq, (double)f->rpos[t], m->hp.rope_traditional);
        mt_kv_write(f->rc[t], l, f->slot[t], k, v);
    }
    int rc = mt_dec_attend(f, l, q, NQ, att, err);
    if (!rc) {
        for (size_t t = 1; t < T; t++) memmove(att + t * qd, att + t * NQ, qd * sizeof *att);   /* the layer's own heads */
        mt_dec_observe(m, l, "attn.out_proj", att, T, qd);
        mt_dec_linear(f, &a->out, att, T, out);
    }
    free(qkv);
    return rc;
}

static int elm_ffn_forward(const mt_fwd *f, int l, const float *in, float *out, mt_err *err) {
    const elm_ffn *p = f->m->layers[l].ffd;
    size_t T = f->T, I = p->I;
    float *h = malloc(T * 2 * I * sizeof *h);
    if (!h) return mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_dec_observe(f->m, l, "ffn.proj_1", in, T, f->m->hp.hidden);
    mt_dec_linear(f, &p->p1, in, T, h);
    for (size_t t = 0; t < T; t++) {   /* rows [gate | up] -> silu(gate) * up, compacted */
        mt_swiglu(h + t * 2 * I, h + t * 2 * I + I, I);
        memmove(h + t * I, h + t * 2 * I, I * sizeof *h);
    }
    mt_dec_observe(f->m, l, "ffn.proj_2", h, T, I);
    mt_dec_linear(f, &p->p2, h, T, out);
    free(h);
    return MT_OK;
}

static const mt_mixer elm_mixer = {"openelm-attention", elm_attn_forward, elm_attn_free};
static const mt_ffn elm_mlp = {"openelm-mlp", elm_ffn_forward, free};

/* the config's list `key` of n numbers, entry i */
static int list_at(json_t *c, const char *key, int n, int i, double *out, mt_err *err) {
    json_t *a = json_object_get(c, key);
    if (!json_is_array(a) || json_array_size(a) != (size_t)n)
        return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" must list %d numbers (one per layer)", key, n);
    json_t *e = json_array_get(a, (size_t)i);
    if (!json_is_number(e) || !(json_number_value(e) > 0) || json_number_value(e) > 1e6)
        return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\"[%d] must be a positive number", key, i);
    *out = json_number_value(e);
    return MT_OK;
}

/* mlx-lm's make_divisible(v, divisor) */
static size_t divisible(double v, int d) {
    double nv = floor((double)(long long)(v + d / 2.0) / d) * d;
    if (nv < d) nv = d;
    if (nv < 0.9 * v) nv += d;
    return (size_t)nv;
}

static int elm_dims(mt_model *m, int i, size_t *nq, size_t *nkv, size_t *I, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    double q = 0, kv = 0, mult = 0, div = 8;
    MT_TRY(list_at(c, "num_query_heads", m->hp.n_layers, i, &q, err));
    MT_TRY(list_at(c, "num_kv_heads", m->hp.n_layers, i, &kv, err));
    MT_TRY(list_at(c, "ffn_multipliers", m->hp.n_layers, i, &mult, err));
    MT_TRY(mt_cfg_real(c, "ffn_dim_divisor", 8, &div, 1, MT_CFG_POS, err));
    if (q != floor(q) || kv != floor(kv) || div != floor(div) || div > 1e6)
        return mt_seterr(err, MT_EFORMAT, "config.json: layer %d: head counts and ffn_dim_divisor must be integers", i);
    *nq = (size_t)q;
    *nkv = (size_t)kv;
    *I = divisible(mult * m->hp.hidden, (int)div);
    return MT_OK;
}

static int elm_bind_layer(mt_model *m, int i, int *bound, mt_err *err) {
    mt_layer *L = &m->layers[i];
    size_t H = (size_t)m->hp.hidden, hd = (size_t)m->hp.head_dim, nq, nkv, I;
    MT_TRY(elm_dims(m, i, &nq, &nkv, &I, err));
    elm_attn *a = calloc(1, sizeof *a);
    elm_ffn *p = calloc(1, sizeof *p);
    if (!a || !p) { free(a); free(p); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    L->mixer = &elm_mixer;
    L->mix = a;
    L->ffn = &elm_mlp;
    L->ffd = p;
    a->nq = nq;
    a->nkv = nkv;
    p->I = I;
    char path[256];
#define ELM_LIN(dst, sub, o, n) \
    do { snprintf(path, sizeof path, "model.layers.%d.%s", i, sub); \
         MT_TRY(mt_linear_bind(dst, m->st, m->cfg, path, o, n, -1, err)); } while (0)
    ELM_LIN(&a->qkv, "attn.qkv_proj", (nq + 2 * nkv) * hd, H);
    ELM_LIN(&a->out, "attn.out_proj", H, nq * hd);
    ELM_LIN(&p->p1, "ffn.proj_1", 2 * I, H);
    ELM_LIN(&p->p2, "ffn.proj_2", H, I);
#undef ELM_LIN
    int qkn = 1;
    MT_TRY(mt_cfg_bool(mt_config_json(m->cfg), "normalize_qk_projections", 1, &qkn, err));
    if (qkn) {
        snprintf(path, sizeof path, "model.layers.%d.attn.q_norm", i);
        MT_TRY(mt_dec_bind_norm(m, path, hd, &a->qn, err));
        snprintf(path, sizeof path, "model.layers.%d.attn.k_norm", i);
        MT_TRY(mt_dec_bind_norm(m, path, hd, &a->kn, err));
    }
    *bound = MT_BOUND_ATTN | MT_BOUND_MLP;
    return MT_OK;
}

static const char *const elm_names[] = {
    "model.layers", "transformer.layers", "input_layernorm", "attn_norm", "post_attention_layernorm", "ffn_norm",
    "model.embed_tokens", "transformer.token_embeddings", "model.norm", "transformer.norm", NULL};

static int openelm_init(mt_model *m, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    int n = 0, dim = 0, hd = 0;
    MT_TRY(mt_cfg_count(c, "num_transformer_layers", 0, &n, 1, err));
    MT_TRY(mt_cfg_count(c, "model_dim", 0, &dim, 1, err));
    MT_TRY(mt_cfg_count(c, "head_dim", 0, &hd, 1, err));
    m->hp.n_layers = n;
    m->hp.hidden = dim;
    /* the widest layer sizes the cache and the shared attention; every layer the same group size */
    size_t mq = 0, mkv = 0, mI = 0, group = 0;
    for (int i = 0; i < n; i++) {
        size_t nq, nkv, I;
        MT_TRY(elm_dims(m, i, &nq, &nkv, &I, err));
        if (nq % nkv || (group && nq / nkv != group))
            return mt_seterr(err, MT_EUNSUPPORTED, "config.json: layer %d has %zu query heads for %zu kv heads: only the "
                             "same number of query heads per kv head in every layer is supported", i, nq, nkv);
        group = nq / nkv;
        if (nq > mq) mq = nq;
        if (nkv > mkv) mkv = nkv;
        if (I > mI) mI = I;
    }
    const char *keys[] = {"hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                          "intermediate_size"};
    size_t vals[] = {(size_t)dim, (size_t)n, mq, mkv, mI};
    for (int k = 0; k < 5; k++)
        if (json_object_set_new(c, keys[k], json_integer((json_int_t)vals[k]))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    MT_TRY(mt_decoder_read_hp(m, err));
    m->hp.head_dim = m->hp.rot_dims = hd;
    double base = 10000;
    MT_TRY(mt_cfg_real(c, "rope_freq_constant", 10000, &base, 0, MT_CFG_POS, err));
    m->hp.rope_theta = (float)base;
    m->rope_scaling = NULL;
    MT_TRY(mt_cfg_bool(c, "share_input_output_layers", 1, &m->hp.tie_embeddings, err));
    m->hp.attn_bias = m->hp.o_bias = m->hp.mlp_bias = 0;
    m->bind_layer = elm_bind_layer;
    m->no_mlx = "openelm's per-layer head counts are not in the mlx numerics";
    mt_safetensors_set_renames(m->st, elm_names);
    return mt_decoder_bind(m, err);
}

const mt_family mt_family_openelm = {"openelm", openelm_init, "per-layer head counts and MLP widths (a mixer over the widest layer's cache)"};
