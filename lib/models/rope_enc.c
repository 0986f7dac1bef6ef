/* rope_enc.c - the rotary encoder families: nomic_bert (post-norm BERT with
 * RoPE on q and k, SwiGLU MLP, no position table) and modernbert (pre-norm,
 * RoPE with a global and a local base, layers alternating global attention and
 * a bidirectional sliding window, GeGLU MLP, bias-free LayerNorms, final norm).
 * Packed sequences attend to themselves only, which is what the reference
 * computes for a padded batch with an attention mask (ModernBERT's unpadded
 * path included).
 * ref: transformers models/nomic_bert/modeling_nomic_bert.py (and the
 * nomic-ai checkpoint names it renames: encoder.layers.N.attn.Wqkv, mlp.fc11 /
 * fc12 / fc2, norm1 / norm2, emb_ln), models/modernbert/modeling_modernbert.py,
 * masking_utils.py (sliding_window_bidirectional_overlay: |q - k| <= window). */
#include "models/encoder.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/model.h"
#include "tensor/ops.h"

/* ---- config helpers ---- */

/* The first of keys[] present in the config: a count (positive integer, see
 * mt_cfg_count) or, with count 0, a non-negative integer; else def / required error. */
static int cfg_int_any(json_t *c, const char *const *keys, int def, int *out, int required, int count, mt_err *err) {
    for (const char *const *k = keys; *k; k++)
        if (json_object_get(c, *k) && !json_is_null(json_object_get(c, *k)))
            return count ? mt_cfg_count(c, *k, def, out, 1, err) : mt_cfg_int(c, *k, def, out, 1, err);
    if (required) return mt_seterr(err, MT_EFORMAT, "config.json: \"%s\" is missing", keys[0]);
    *out = def;
    return MT_OK;
}

/* The first of keys[] present: a number in range `kind` (mt_cfg_real). */
static int cfg_num_any(json_t *c, const char *const *keys, double def, double *out, int kind, mt_err *err) {
    for (const char *const *k = keys; *k; k++)
        if (json_object_get(c, *k) && !json_is_null(json_object_get(c, *k)))
            return mt_cfg_real(c, *k, def, out, 1, kind, err);
    *out = def;
    return MT_OK;
}

static int check_sizes(mt_encoder_hp *hp, mt_err *err) {
    if (hp->hidden % hp->n_heads || (hp->hidden / hp->n_heads) % 2)
        return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size %d is not an even multiple of num_attention_heads %d",
                         hp->hidden, hp->n_heads);
    if (hp->n_layers > 1000 || hp->hidden > 65536 || hp->inter > 1 << 20 || hp->type_vocab < 0 ||
        hp->type_vocab > 1 << 20)
        return mt_seterr(err, MT_EFORMAT, "config.json: inconsistent encoder sizes");
    hp->head_dim = hp->hidden / hp->n_heads;
    return MT_OK;
}

/* inv_freq[d/2] = base^(-2i/d), float32 as the reference computes it. */
static float *rope_table(mt_encoder *e, double base) {
    size_t half = (size_t)e->hp.head_dim / 2;
    float *f = mt_enc_own(e, half * sizeof(float));
    if (!f) return NULL;
    for (size_t i = 0; i < half; i++) {
        float ex = (float)(2 * i) / (float)e->hp.head_dim;
        f[i] = (float)(1.0 / pow(base, (double)ex));
    }
    return f;
}

/* theta of rope_parameters[sub] ("rope_theta"), sub NULL = the object itself. */
static int rope_params_theta(json_t *c, const char *sub, double *theta, int *found, mt_err *err) {
    json_t *rp = json_object_get(c, "rope_parameters");
    *found = 0;
    if (!json_is_object(rp)) return MT_OK;
    if (sub) rp = json_object_get(rp, sub);
    if (!json_is_object(rp)) return MT_OK;
    const char *type = json_string_value(json_object_get(rp, "rope_type"));
    if (type && strcmp(type, "default"))
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: rope_type \"%s\" is not supported", type);
    json_t *t = json_object_get(rp, "rope_theta");
    if (json_is_number(t)) {
        *theta = json_number_value(t);
        *found = 1;
        if (!(*theta > 0) || *theta > FLT_MAX)
            return mt_seterr(err, MT_EFORMAT, "config.json: \"rope_parameters%s%s.rope_theta\" must be a finite, positive number (got %g)",
                             sub ? "." : "", sub ? sub : "", *theta);
    }
    return MT_OK;
}

static int act_of(const char *act, int *out, mt_err *err) {
    if (!strcmp(act, "silu") || !strcmp(act, "swiglu") || !strcmp(act, "swish")) *out = MT_ENC_ACT_SILU;
    else if (!strcmp(act, "gelu") || !strcmp(act, "geglu")) *out = MT_ENC_ACT_GELU;
    else if (!strcmp(act, "gelu_pytorch_tanh") || !strcmp(act, "gelu_new")) *out = MT_ENC_ACT_GELU_TANH;
    else return mt_seterr(err, MT_EUNSUPPORTED, "config.json: activation \"%s\" is not supported", act);
    return MT_OK;
}

static int find_prefix(mt_encoder *e, const char *probe, mt_err *err) {
    static const char *const prefixes[] = {"", "model.", "bert.", "nomic_bert.", "encoder.", "modernbert."};
    char p[200];
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        snprintf(p, sizeof p, "%s%s", prefixes[i], probe);
        if (mt_safetensors_get(e->st, p)) {
            snprintf(e->prefix, sizeof e->prefix, "%s", prefixes[i]);
            return MT_OK;
        }
    }
    return mt_seterr(err, MT_ENOTFOUND, "no tensor '%s' in the weights", probe);
}

static int has(mt_encoder *e, const char *name) {
    char p[320];
    snprintf(p, sizeof p, "%s%s", e->prefix, name);
    return mt_safetensors_get(e->st, p) != NULL;
}

static int bind_table(mt_encoder *e, mt_linear *l, const char *name, size_t rows, mt_err *err) {
    char p[320];
    snprintf(p, sizeof p, "%s%s", e->prefix, name);
    return mt_linear_bind(l, e->st, e->cfg, p, rows, (size_t)e->hp.hidden, -1, err);
}

static int alloc_layers(mt_encoder *e, mt_err *err) {
    e->layers = calloc((size_t)e->hp.n_layers, sizeof *e->layers);
    return e->layers ? MT_OK : mt_seterr(err, MT_ENOMEM, "out of memory");
}

/* ---- nomic_bert ---- */

static int nomic_load(mt_encoder *e, mt_err *err) {
    json_t *c = mt_config_json(e->cfg);
    mt_encoder_hp *hp = &e->hp;
    static const char *const k_h[] = {"hidden_size", "n_embd", NULL}, *const k_l[] = {"num_hidden_layers", "n_layer", NULL},
                             *const k_nh[] = {"num_attention_heads", "n_head", NULL},
                             *const k_ff[] = {"intermediate_size", "n_inner", NULL}, *const k_v[] = {"vocab_size", NULL},
                             *const k_p[] = {"max_position_embeddings", "n_positions", NULL},
                             *const k_t[] = {"type_vocab_size", NULL},
                             *const k_eps[] = {"layer_norm_eps", "layer_norm_epsilon", NULL},
                             *const k_th[] = {"rope_theta", "rotary_emb_base", NULL};
    MT_TRY(mt_cfg_check_nan(e->cfg, err));
    MT_TRY(cfg_int_any(c, k_h, 0, &hp->hidden, 1, 1, err));
    MT_TRY(cfg_int_any(c, k_l, 0, &hp->n_layers, 1, 1, err));
    MT_TRY(cfg_int_any(c, k_nh, 0, &hp->n_heads, 1, 1, err));
    MT_TRY(cfg_int_any(c, k_ff, 4 * hp->hidden, &hp->inter, 0, 1, err));
    MT_TRY(cfg_int_any(c, k_v, 0, &hp->vocab, 1, 1, err));
    MT_TRY(cfg_int_any(c, k_p, 2048, &hp->max_pos, 0, 1, err));
    MT_TRY(cfg_int_any(c, k_t, 2, &hp->type_vocab, 0, 0, err));
    double eps, theta;
    MT_TRY(cfg_num_any(c, k_eps, 1e-12, &eps, MT_CFG_NONNEG, err));
    MT_TRY(cfg_num_any(c, k_th, 1000.0, &theta, MT_CFG_POS, err));
    int found;
    double t2;
    MT_TRY(rope_params_theta(c, NULL, &t2, &found, err));
    if (found) theta = t2;
    hp->eps = (float)eps;
    MT_TRY(check_sizes(hp, err));
    const char *act = mt_config_get_str(e->cfg, "hidden_act", NULL);
    if (!act) act = mt_config_get_str(e->cfg, "activation_function", "silu");
    MT_TRY(act_of(act, &hp->act, err));
    /* options of the nomic-ai configuration that change the math */
    double frac = 1.0;
    MT_TRY(mt_cfg_num(c, "rotary_emb_fraction", 1.0, &frac, 0, err));
    int inter = 0, prenorm = 0;
    MT_TRY(mt_cfg_bool(c, "rotary_emb_interleaved", 0, &inter, err));
    MT_TRY(mt_cfg_bool(c, "prenorm", 0, &prenorm, err));
    json_t *sc = json_object_get(c, "rotary_scaling_factor");
    if (frac != 1.0 || inter || prenorm || (sc && !json_is_null(sc)))
        return mt_seterr(err, MT_EUNSUPPORTED,
                         "config.json: nomic_bert with partial/interleaved/scaled rotary or prenorm is not supported");
    if (!(e->inv_freq = rope_table(e, theta))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    hp->pos_offset = 0;
    hp->pre_norm = 0;
    hp->gated = 1;
    e->rotary = 1;

    MT_TRY(find_prefix(e, "embeddings.word_embeddings.weight", err));
    int orig = has(e, "encoder.layers.0.attn.Wqkv.weight");   /* nomic-ai (remote code) names */
    size_t H = (size_t)hp->hidden, FF = (size_t)hp->inter;
    MT_TRY(bind_table(e, &e->word, "embeddings.word_embeddings", (size_t)hp->vocab, err));
    if (hp->type_vocab > 0 && has(e, "embeddings.token_type_embeddings.weight"))
        MT_TRY(bind_table(e, &e->type, "embeddings.token_type_embeddings", (size_t)hp->type_vocab, err));
    else hp->type_vocab = 0;
    const char *eln = orig ? "emb_ln" : "embeddings.LayerNorm";
    char n[200], n2[200];
    snprintf(n, sizeof n, "%s.weight", eln);
    snprintf(n2, sizeof n2, "%s.bias", eln);
    MT_TRY(mt_enc_vec(e, n, H, 0, &e->emb_ln_w, err));
    MT_TRY(mt_enc_vec(e, n2, H, 1, &e->emb_ln_b, err));
    MT_TRY(alloc_layers(e, err));
    for (int L = 0; L < hp->n_layers; L++) {
        mt_enc_layer *ly = &e->layers[L];
        const char *lp = orig ? "encoder.layers" : "layers";
        if (orig) {
            snprintf(n, sizeof n, "%s.%d.attn.Wqkv", lp, L);
            MT_TRY(mt_enc_bind(e, &ly->qkv, n, 3 * H, H, 0, err));
            snprintf(n, sizeof n, "%s.%d.attn.out_proj", lp, L);
            MT_TRY(mt_enc_bind(e, &ly->o, n, H, H, 0, err));
        } else {
            mt_linear p[3];
            static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
            for (int j = 0; j < 3; j++) {
                snprintf(n, sizeof n, "%s.%d.self_attn.%s", lp, L, qkv[j]);
                MT_TRY(mt_enc_bind(e, &p[j], n, H, H, 0, err));
            }
            MT_TRY(mt_enc_stack(e, &ly->qkv, p, 3, err));
            snprintf(n, sizeof n, "%s.%d.self_attn.o_proj", lp, L);
            MT_TRY(mt_enc_bind(e, &ly->o, n, H, H, 0, err));
        }
        mt_linear gu[2];   /* [act(gate) ; up] */
        snprintf(n, sizeof n, "%s.%d.mlp.%s", lp, L, orig ? "fc12" : "gate_proj");
        MT_TRY(mt_enc_bind(e, &gu[0], n, FF, H, 0, err));
        snprintf(n, sizeof n, "%s.%d.mlp.%s", lp, L, orig ? "fc11" : "up_proj");
        MT_TRY(mt_enc_bind(e, &gu[1], n, FF, H, 0, err));
        MT_TRY(mt_enc_stack(e, &ly->up, gu, 2, err));
        snprintf(n, sizeof n, "%s.%d.mlp.%s", lp, L, orig ? "fc2" : "down_proj");
        MT_TRY(mt_enc_bind(e, &ly->down, n, H, FF, 0, err));
        const char *n1 = orig ? "norm1" : "post_attention_layernorm", *nn2 = orig ? "norm2" : "post_mlp_layernorm";
        snprintf(n, sizeof n, "%s.%d.%s.weight", lp, L, n1);
        MT_TRY(mt_enc_vec(e, n, H, 0, &ly->ln1_w, err));
        snprintf(n, sizeof n, "%s.%d.%s.bias", lp, L, n1);
        MT_TRY(mt_enc_vec(e, n, H, 1, &ly->ln1_b, err));
        snprintf(n, sizeof n, "%s.%d.%s.weight", lp, L, nn2);
        MT_TRY(mt_enc_vec(e, n, H, 0, &ly->ln2_w, err));
        snprintf(n, sizeof n, "%s.%d.%s.bias", lp, L, nn2);
        MT_TRY(mt_enc_vec(e, n, H, 1, &ly->ln2_b, err));
        ly->inv_freq = e->inv_freq;
        ly->window = 0;
    }
    return MT_OK;
}

/* ---- modernbert ---- */

static int modernbert_load(mt_encoder *e, mt_err *err) {
    json_t *c = mt_config_json(e->cfg);
    mt_encoder_hp *hp = &e->hp;
    MT_TRY(mt_enc_read_sizes(e, 8192, err));
    hp->type_vocab = 0;
    double eps = 1e-5;
    MT_TRY(mt_cfg_real(c, "norm_eps", 1e-5, &eps, 0, MT_CFG_NONNEG, err));
    hp->eps = (float)eps;
    MT_TRY(check_sizes(hp, err));
    MT_TRY(act_of(mt_config_get_str(e->cfg, "hidden_activation", "gelu"), &hp->act, err));
    int local = 128, every = 3;
    MT_TRY(mt_cfg_int(c, "local_attention", 128, &local, 0, err));
    MT_TRY(mt_cfg_int(c, "global_attn_every_n_layers", 3, &every, 0, err));
    if (local < 2 || every < 1) return mt_seterr(err, MT_EFORMAT, "config.json: bad local_attention");
    double gtheta = 160000.0, ltheta = 10000.0;
    int found;
    MT_TRY(mt_cfg_real(c, "global_rope_theta", gtheta, &gtheta, 0, MT_CFG_POS, err));
    json_t *lt = json_object_get(c, "local_rope_theta");
    if (lt && json_is_null(lt)) ltheta = gtheta;   /* older configs: null = the global base */
    else MT_TRY(mt_cfg_real(c, "local_rope_theta", ltheta, &ltheta, 0, MT_CFG_POS, err));
    double t;
    MT_TRY(rope_params_theta(c, "full_attention", &t, &found, err));
    if (found) gtheta = t;
    MT_TRY(rope_params_theta(c, "sliding_attention", &t, &found, err));
    if (found) ltheta = t;
    if (!(e->inv_freq = rope_table(e, gtheta)) || !(e->inv_freq_local = rope_table(e, ltheta)))
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    json_t *types = json_object_get(c, "layer_types");
    if (types && !json_is_null(types) && (!json_is_array(types) || json_array_size(types) != (size_t)hp->n_layers))
        return mt_seterr(err, MT_EFORMAT, "config.json: layer_types does not list every layer");
    hp->pos_offset = 0;
    hp->pre_norm = 1;
    hp->gated = 1;
    e->rotary = 1;

    MT_TRY(find_prefix(e, "embeddings.tok_embeddings.weight", err));
    size_t H = (size_t)hp->hidden, FF = (size_t)hp->inter;
    MT_TRY(bind_table(e, &e->word, "embeddings.tok_embeddings", (size_t)hp->vocab, err));
    MT_TRY(mt_enc_vec(e, "embeddings.norm.weight", H, 0, &e->emb_ln_w, err));
    MT_TRY(mt_enc_vec(e, "embeddings.norm.bias", H, 1, &e->emb_ln_b, err));
    MT_TRY(mt_enc_vec(e, "final_norm.weight", H, 0, &e->final_w, err));
    MT_TRY(mt_enc_vec(e, "final_norm.bias", H, 1, &e->final_b, err));
    MT_TRY(alloc_layers(e, err));
    char n[200];
    for (int L = 0; L < hp->n_layers; L++) {
        mt_enc_layer *ly = &e->layers[L];
        int sliding = L % every != 0;
        if (json_is_array(types)) {
            const char *ty = json_string_value(json_array_get(types, (size_t)L));
            if (!ty || (strcmp(ty, "sliding_attention") && strcmp(ty, "full_attention")))
                return mt_seterr(err, MT_EUNSUPPORTED, "config.json: layer type of layer %d is not supported", L);
            sliding = !strcmp(ty, "sliding_attention");
        }
        ly->window = sliding ? local / 2 : 0;
        ly->inv_freq = sliding ? e->inv_freq_local : e->inv_freq;
        snprintf(n, sizeof n, "layers.%d.attn.Wqkv", L);
        MT_TRY(mt_enc_bind(e, &ly->qkv, n, 3 * H, H, 0, err));
        snprintf(n, sizeof n, "layers.%d.attn.Wo", L);
        MT_TRY(mt_enc_bind(e, &ly->o, n, H, H, 0, err));
        snprintf(n, sizeof n, "layers.%d.mlp.Wi", L);
        MT_TRY(mt_enc_bind(e, &ly->up, n, 2 * FF, H, 0, err));
        snprintf(n, sizeof n, "layers.%d.mlp.Wo", L);
        MT_TRY(mt_enc_bind(e, &ly->down, n, H, FF, 0, err));
        snprintf(n, sizeof n, "layers.%d.attn_norm.weight", L);   /* absent in layer 0: identity */
        MT_TRY(mt_enc_vec(e, n, H, 1, &ly->ln1_w, err));
        snprintf(n, sizeof n, "layers.%d.attn_norm.bias", L);
        MT_TRY(mt_enc_vec(e, n, H, 1, &ly->ln1_b, err));
        snprintf(n, sizeof n, "layers.%d.mlp_norm.weight", L);
        MT_TRY(mt_enc_vec(e, n, H, 0, &ly->ln2_w, err));
        snprintf(n, sizeof n, "layers.%d.mlp_norm.bias", L);
        MT_TRY(mt_enc_vec(e, n, H, 1, &ly->ln2_b, err));
    }
    return MT_OK;
}

/* ---- forward ---- */

typedef struct rope_ctx {
    const mt_encoder *e;
    float *qkv;                   /* [N, 3H] */
    const size_t *pos;            /* position of each token in its sequence */
    const float *inv_freq;
} rope_ctx;

static void rope_task(void *c, size_t b, size_t end, int tid) {
    (void)tid;
    rope_ctx *r = c;
    size_t H = (size_t)r->e->hp.hidden, nh = (size_t)r->e->hp.n_heads, d = (size_t)r->e->hp.head_dim;
    for (size_t t = b; t < end; t++) {
        float *q = r->qkv + t * 3 * H;
        mt_rope(q, nh, d, d, r->inv_freq, (double)r->pos[t], 0);
        mt_rope(q + H, nh, d, d, r->inv_freq, (double)r->pos[t], 0);
    }
}

typedef struct norm_ctx {
    const mt_encoder *e;
    float *x;                     /* [N, H] in/out (residual stream) */
    const float *add;             /* NULL or [N, H] added first */
    float *out;                   /* NULL: normalize x in place; else out = norm(x) */
    const float *w, *b;           /* w NULL: copy (identity norm) */
} norm_ctx;

static void norm_task(void *c, size_t b, size_t end, int tid) {
    (void)tid;
    norm_ctx *r = c;
    size_t H = (size_t)r->e->hp.hidden;
    for (size_t t = b; t < end; t++) {
        float *x = r->x + t * H, *o = r->out ? r->out + t * H : x;
        if (r->add)
            for (size_t i = 0; i < H; i++) x[i] += r->add[t * H + i];
        if (r->w) mt_layernorm(o, x, r->w, r->b, H, r->e->hp.eps);
        else if (o != x) memcpy(o, x, H * sizeof(float));
    }
}

typedef struct glu_ctx {
    const mt_encoder *e;
    const float *ab;              /* [N, 2F] */
    float *g;                     /* [N, F] */
    float *tmp;                   /* per thread [F] */
} glu_ctx;

static void glu_task(void *c, size_t b, size_t end, int tid) {
    glu_ctx *r = c;
    size_t F = (size_t)r->e->hp.inter;
    float *a = r->tmp + (size_t)tid * F;
    for (size_t t = b; t < end; t++) {
        memcpy(a, r->ab + t * 2 * F, F * sizeof(float));
        mt_enc_act(r->e->hp.act, a, F);
        const float *u = r->ab + t * 2 * F + F;
        float *g = r->g + t * F;
        for (size_t i = 0; i < F; i++) g[i] = a[i] * u[i];
    }
}

int mt_enc_rope_forward(mt_encoder *e, const int32_t *ids, const int32_t *type_ids, const size_t *lens, size_t nseq,
                        float *hidden, mt_err *err) {
    const mt_encoder_hp *hp = &e->hp;
    size_t H = (size_t)hp->hidden, FF = (size_t)hp->inter, N = 0;
    int rc = mt_enc_check_input(e, ids, type_ids, lens, nseq, (size_t)hp->max_pos, &N, err);
    if (rc) return rc;
    int nth = mt_pool_size(e->pool);
    if (nth < 1) nth = 1;
    size_t wide = 2 * FF > 3 * H ? 2 * FF : 3 * H, per = FF > H ? FF : H;
    float *big = malloc(N * wide * sizeof(float));     /* qkv [N, 3H] / MLP [N, 2F] */
    float *g = malloc(N * FF * sizeof(float));
    float *ctx = malloc(N * H * sizeof(float)), *tmp = malloc(N * H * sizeof(float));
    float *work = malloc((size_t)nth * per * sizeof(float)), *row = malloc(H * sizeof(float));
    size_t *pos = malloc(N * sizeof *pos);
    if (!big || !g || !ctx || !tmp || !work || !row || !pos) {
        free(big); free(g); free(ctx); free(tmp); free(work); free(row); free(pos);
        return mt_seterr(err, MT_ENOMEM, "out of memory for a batch of %zu tokens", N);
    }
    float *x = hidden;
    size_t t = 0;
    for (size_t s = 0; s < nseq; s++)
        for (size_t i = 0; i < lens[s]; i++, t++) {
            pos[t] = i;
            float *xr = x + t * H;
            mt_linear_row(&e->word, (size_t)ids[t], xr);
            if (hp->type_vocab) {
                mt_linear_row(&e->type, type_ids ? (size_t)type_ids[t] : 0, row);
                for (size_t k = 0; k < H; k++) xr[k] += row[k];
            }
            mt_layernorm(xr, xr, e->emb_ln_w, e->emb_ln_b, H, hp->eps);
        }
    rc = MT_OK;
    size_t nview = mt_enc_view_floats(e);
    float *vbuf = nview && N >= 64 ? malloc(nview * sizeof(float)) : NULL;   /* NULL: packed kernels */
    for (int L = 0; L < hp->n_layers && !rc; L++) {
        mt_enc_layer view;
        const mt_enc_layer *ly = mt_enc_layer_view(e, &e->layers[L], N, &view, vbuf);
        const float *in = x;
        if (hp->pre_norm && ly->ln1_w) {
            norm_ctx nc = {e, x, NULL, tmp, ly->ln1_w, ly->ln1_b};
            mt_pool_for(e->pool, N, 8, norm_task, &nc);
            in = tmp;
        }
        mt_enc_linear(e, &ly->qkv, in, N, big, work);
        rope_ctx rcx = {e, big, pos, ly->inv_freq};
        mt_pool_for(e->pool, N, 8, rope_task, &rcx);
        rc = mt_enc_attention(e, big, ctx, lens, nseq, ly->window, err);
        if (rc) break;
        mt_enc_linear(e, &ly->o, ctx, N, tmp, work);
        if (hp->pre_norm) {
            norm_ctx nc = {e, x, tmp, ctx, ly->ln2_w, ly->ln2_b};   /* x += attn; ctx = n2(x) */
            mt_pool_for(e->pool, N, 8, norm_task, &nc);
            in = ctx;
        } else {
            norm_ctx nc = {e, x, tmp, NULL, ly->ln1_w, ly->ln1_b};  /* x = n1(x + attn) */
            mt_pool_for(e->pool, N, 8, norm_task, &nc);
            in = x;
        }
        mt_enc_linear(e, &ly->up, in, N, big, work);
        glu_ctx gc = {e, big, g, work};
        mt_pool_for(e->pool, N, 4, glu_task, &gc);
        mt_enc_linear(e, &ly->down, g, N, tmp, work);
        norm_ctx nc = {e, x, tmp, NULL, hp->pre_norm ? NULL : ly->ln2_w, ly->ln2_b};
        mt_pool_for(e->pool, N, 8, norm_task, &nc);
    }
    if (!rc && e->final_w) {
        norm_ctx nc = {e, x, NULL, NULL, e->final_w, e->final_b};
        mt_pool_for(e->pool, N, 8, norm_task, &nc);
    }
    free(vbuf);
    free(big); free(g); free(ctx); free(tmp); free(work); free(row); free(pos);
    return rc;
}

static int no_init(mt_encoder *e, mt_err *err) {
    (void)e;
    (void)err;
    return MT_OK;
}

const mt_encoder_family mt_encoder_family_nomic_bert = {"nomic_bert", no_init, nomic_load};
const mt_encoder_family mt_encoder_family_modernbert = {"modernbert", no_init, modernbert_load};
