/* baichuan_m1.c - Baichuan-M1: llama blocks whose attention convolves its keys and values over
 * time before RoPE.
 *
 * Attention: the fused W_pack gives [q (hidden) | k | v]; per kv head h the keys become
 * w0[h] * k[t-1] + w1[h] * k[t] (conv_k; the values likewise with conv_v), where k[t-1] is the
 * previous token's raw key (zeros before the first): the sequence's state keeps the last raw
 * k and v rows (mt_kvcache.state).  Then RoPE on q and the convolved k, and attention, over
 * `sliding_window` positions in the layers sliding_window_layers lists.  Those layers may have
 * their own head counts (num_swa_attention_heads / num_swa_key_value_heads; head_dim is
 * hidden / heads, so the query heads must match for the cache to share one head_dim): the
 * cache holds the most kv heads of any layer, a layer with fewer writes each of its kv heads
 * repeated (the query heads of a group still meet their own head).  An untied, unquantized
 * lm_head has its rows scaled to unit norm at load (mlx-lm's sanitize).
 * mlx-lm makes its own cache (own_cache): --max-kv-size changes nothing.
 * ref: mlx_lm/models/baichuan_m1.py. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/decoder_int.h"
#include "models/kvcache_int.h"
#include "tensor/ops.h"

typedef struct bm1_attn {
    mt_linear pack, o;
    size_t nkv;            /* this layer's kv heads */
    float *ck, *cv;        /* [nkv, 2]: tap 0 (previous token), tap 1 (this token) */
    float *head;           /* layer 0 only: the normalized lm_head rows (owned), or NULL */
} bm1_attn;

static void bm1_free(void *d) {
    bm1_attn *a = d;
    if (!a) return;
    free(a->ck);
    free(a->head);
    free(a);
}

/* dst[nkv * hd] = w0 * prev + w1 * cur per head */
static void bm1_conv(const float *w, const float *prev, const float *cur, size_t nkv, size_t hd, float *dst) {
    for (size_t h = 0; h < nkv; h++)
        for (size_t d = 0; d < hd; d++)
            dst[h * hd + d] = prev[h * hd + d] * w[2 * h] + cur[h * hd + d] * w[2 * h + 1];
}

static int bm1_forward(const mt_fwd *f, int l, const float *in, float *out, mt_err *err) {
    const mt_model *m = f->m;
    const mt_layer *L = &m->layers[l];
    const bm1_attn *a = L->mix;
    size_t T = f->T, H = (size_t)m->hp.hidden, hd = (size_t)m->hp.head_dim, NQ = (size_t)m->hp.n_heads;
    size_t NKV = (size_t)m->hp.n_kv_heads, nkv = a->nkv, kvd = nkv * hd, r = NKV / nkv;
    size_t W = H + 2 * kvd;
    float *qkv = malloc((T * W + T * NQ * hd + 2 * NKV * hd + 2 * kvd) * sizeof *qkv);
    if (!qkv) return mt_seterr(err, MT_ENOMEM, "out of memory");
    float *att = qkv + T * W, *kc = att + T * NQ * hd, *vc = kc + NKV * hd, *kk = vc + NKV * hd, *vv = kk + kvd;
    mt_dec_observe(m, l, "self_attn.W_pack", in, T, H);
    mt_dec_linear(f, &a->pack, in, T, qkv);
    for (size_t t = 0; t < T; t++) {
        float *q = qkv + t * W, *k = q + H, *v = k + kvd;
        float *st = f->rc[t]->state[l];   /* [raw k | raw v] of the sequence's previous token */
        bm1_conv(a->ck, st, k, nkv, hd, kk);
        bm1_conv(a->cv, st + kvd, v, nkv, hd, vv);
        memcpy(st, k, 2 * kvd * sizeof *st);
        mt_rope(q, NQ, hd, (size_t)m->hp.rot_dims, L->inv_freq, (double)f->rpos[t], m->hp.rope_traditional);
        mt_rope(kk, nkv, hd, (size_t)m->hp.rot_dims, L->inv_freq, (double)f->rpos[t], m->hp.rope_traditional);
        for (size_t j = 0; j < NKV; j++) {
            memcpy(kc + j * hd, kk + (j / r) * hd, hd * sizeof *kc);
            memcpy(vc + j * hd, vv + (j / r) * hd, hd * sizeof *vc);
        }
        mt_kv_write(f->rc[t], l, f->slot[t], kc, vc);
    }
    int rc = mt_dec_attend(f, l, qkv, W, att, err);
    if (!rc) {
        mt_dec_observe(m, l, "self_attn.o_proj", att, T, NQ * hd);
        mt_dec_linear(f, &a->o, att, T, out);
    }
    free(qkv);
    return rc;
}

static const mt_mixer bm1_mixer = {"baichuan_m1 attention (k/v short convolution)", bm1_forward, bm1_free};

static int bm1_is_swa(const mt_model *m, int layer) {
    json_t *a = json_object_get(mt_config_json(m->cfg), "sliding_window_layers");
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (json_integer_value(v) == layer) return 1;
    return 0;
}

/* kv heads of layer i (the config is checked in init) */
static int bm1_nkv(const mt_model *m, int i) {
    json_t *c = mt_config_json(m->cfg);
    json_t *s = json_object_get(c, "num_swa_key_value_heads");
    if (bm1_is_swa(m, i) && json_integer_value(s) > 0) return (int)json_integer_value(s);
    return (int)json_integer_value(json_object_get(c, "num_key_value_heads"));
}

static int bm1_bind_layer(mt_model *m, int i, int *bound, mt_err *err) {
    mt_layer *L = &m->layers[i];
    size_t H = (size_t)m->hp.hidden, hd = (size_t)m->hp.head_dim, nkv = (size_t)bm1_nkv(m, i);
    bm1_attn *a = calloc(1, sizeof *a);
    if (!a) return mt_seterr(err, MT_ENOMEM, "out of memory");
    L->mixer = &bm1_mixer;
    L->mix = a;
    L->mixer_kv = 1;
    a->nkv = nkv;
    char p[160];
    snprintf(p, sizeof p, "model.layers.%d.self_attn.W_pack", i);
    MT_TRY(mt_linear_bind(&a->pack, m->st, m->cfg, p, H + 2 * nkv * hd, H, -1, err));
    snprintf(p, sizeof p, "model.layers.%d.self_attn.o_proj", i);
    MT_TRY(mt_linear_bind(&a->o, m->st, m->cfg, p, H, (size_t)m->hp.n_heads * hd, -1, err));
    if (!(a->ck = malloc(4 * nkv * sizeof *a->ck))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    a->cv = a->ck + 2 * nkv;
    snprintf(p, sizeof p, "model.layers.%d.self_attn.conv_k", i);
    MT_TRY(mt_safetensors_read_f32(m->st, p, a->ck, 2 * nkv, 1, err));
    snprintf(p, sizeof p, "model.layers.%d.self_attn.conv_v", i);
    MT_TRY(mt_safetensors_read_f32(m->st, p, a->cv, 2 * nkv, 1, err));
    L->state_floats = 2 * nkv * hd;
    L->sliding = bm1_is_swa(m, i);
    *bound = MT_BOUND_ATTN;
    return MT_OK;
}

/* a head count key: absent / null -> def; else a positive integer */
static int bm1_heads(json_t *c, const char *key, int def, int *out, mt_err *err) {
    json_t *v = json_object_get(c, key);
    if (!v || json_is_null(v)) { *out = def; return MT_OK; }
    return mt_cfg_count(c, key, def, out, 1, err);
}

/* mlx-lm's sanitize: an unquantized lm_head's rows divided by (their L2 norm + 1e-7), in float32,
 * back in the weights' type; the rows are kept (float32) in layer 0's mixer data. */
static int bm1_norm_head(mt_model *m, mt_err *err) {
    mt_linear *h = &m->lm_head;
    if (m->lm_head.w == m->embed.w || h->quantized || h->ternary) return MT_OK;
    size_t V = h->out, H = h->in;
    float *w = malloc(V * H * sizeof *w);
    if (!w) return mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_convert_to_f32(w, h->w, h->wdt, V * H);
    for (size_t r = 0; r < V; r++) {
        float *row = w + r * H, s = 0;
        for (size_t j = 0; j < H; j++) s += row[j] * row[j];
        float den = sqrtf(s) + 1e-7f;
        for (size_t j = 0; j < H; j++) {
            float x = row[j] / den;
            row[j] = h->wdt == MT_F16 ? mt_round_f16(x) : h->wdt == MT_BF16 ? mt_round_bf16(x) : x;
        }
    }
    ((bm1_attn *)m->layers[0].mix)->head = w;
    h->w = w;
    h->wdt = MT_F32;
    return MT_OK;
}

static int bm1_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    mt_decoder_hp *hp = &m->hp;
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_REQUIRED, 0, err));
    m->rope_scaling = NULL;   /* mlx-lm's baichuan_m1 reads no rope_scaling */
    MT_TRY(mt_cfg_bool(c, "tie_word_embeddings", 0, &hp->tie_embeddings, err));
    int heads = hp->n_heads, kvh = 0, sh = 0, skv = 0, win = 0, cw = 0, mx = 0;
    MT_TRY(mt_cfg_count(c, "num_key_value_heads", 0, &kvh, 1, err));
    MT_TRY(mt_cfg_count(c, "sliding_window", 0, &win, 1, err));
    MT_TRY(mt_cfg_count(c, "conv_window", 0, &cw, 1, err));
    if (cw != 2) return mt_seterr(err, MT_EFORMAT, "config.json: \"conv_window\" must be 2 (mlx-lm's baichuan_m1 asserts it)");
    MT_TRY(bm1_heads(c, "num_swa_attention_heads", heads, &sh, err));
    MT_TRY(bm1_heads(c, "num_swa_key_value_heads", kvh, &skv, err));
    if (hp->hidden % heads || (hp->hidden / heads) % 2)
        return mt_seterr(err, MT_EFORMAT, "config.json: hidden_size / num_attention_heads must be an even whole number");
    if (sh != heads)
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: num_swa_attention_heads %d differs from num_attention_heads %d "
                         "(sliding layers of another head size are not supported)", sh, heads);
    mx = kvh > skv ? kvh : skv;
    if (heads % kvh || heads % skv || mx % kvh || mx % skv)
        return mt_seterr(err, MT_EFORMAT, "config.json: kv head counts %d and %d must divide num_attention_heads %d and each other",
                         kvh, skv, heads);
    json_t *sl = json_object_get(c, "sliding_window_layers");
    if (!json_is_array(sl)) return mt_seterr(err, MT_EFORMAT, "config.json: \"sliding_window_layers\" must be a list");
    size_t i;
    json_t *v;
    json_array_foreach(sl, i, v) if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= hp->n_layers)
        return mt_seterr(err, MT_EFORMAT, "config.json: \"sliding_window_layers\"[%zu] is not a layer number below %d", i,
                         hp->n_layers);
    hp->head_dim = hp->rot_dims = hp->hidden / heads;
    hp->n_kv_heads = mx;
    hp->sliding_window = win;
    hp->rope_traditional = 0;
    m->own_cache = 1;
    m->no_mlx = "the keys' and values' short convolution";
    m->bind_layer = bm1_bind_layer;
    MT_TRY(mt_decoder_bind(m, err));
    return bm1_norm_head(m, err);
}

const mt_family mt_family_baichuan_m1 = {"baichuan_m1", bm1_init,
    "attention over short-convolved keys/values (per-sequence state), sliding layers with their own kv heads, unit-norm head"};
