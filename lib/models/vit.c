/* vit.c - the SigLIP-style vision transformer (vit.h) over the encoder
 * helpers of encoder.h (bound linears, packed attention, row blocks).
 * ref: mlx_vlm/models/idefics3/vision.py (VisionEmbeddings, EncoderLayer, VisionModel) */
#include "models/vit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/encoder.h"
#include "models/model.h"
#include "tensor/dtype.h"
#include "tensor/ops.h"

struct mt_vit {
    mt_encoder e;          /* hp, layers and the owned buffers; st and cfg borrowed */
    mt_vit_info info;
    float post_eps;
    float *patch_w;        /* [D, p*p*C] in (ky, kx, c) order */
    const float *patch_b;  /* [D] */
    const float *post_w, *post_b;
    mt_vit_opts o;         /* CLIP / output options (all zero: SigLIP) */
    const float *cls;      /* clip: embeddings.class_embedding [D] */
    const float *pre_w, *pre_b;
    int n_run;             /* layers run (all, or up to the hidden state o.layer picks) */
};

const mt_vit_info *mt_vit_info_of(const mt_vit *v) { return &v->info; }

void mt_vit_free(mt_vit *v) {
    if (!v) return;
    for (size_t i = 0; i < v->e.n_owned; i++) free(v->e.owned[i]);
    free(v->e.owned);
    free(v->e.layers);
    free(v);
}

static int get_int(json_t *c, const char *key, int def, int *out, mt_err *err) {
    MT_TRY(mt_cfg_count(c, key, def, out, def < 0, err));
    return MT_OK;
}

/* the patch convolution as a [D, p*p*C] matrix over (ky, kx, c) patch vectors */
static int bind_patch(mt_vit *v, mt_err *err) {
    mt_encoder *e = &v->e;
    size_t D = (size_t)v->info.hidden, p = (size_t)v->info.patch, C = (size_t)v->info.channels;
    char name[200];
    snprintf(name, sizeof name, "%sembeddings.patch_embedding.weight", e->prefix);
    const mt_tensor_view *t = mt_safetensors_get(e->st, name);
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "tensor '%s' not found", name);
    int mlx = t->ndim == 4 && t->shape[0] == (int64_t)D && t->shape[1] == (int64_t)p && t->shape[2] == (int64_t)p &&
              t->shape[3] == (int64_t)C;
    int torch = t->ndim == 4 && t->shape[0] == (int64_t)D && t->shape[1] == (int64_t)C && t->shape[2] == (int64_t)p &&
                t->shape[3] == (int64_t)p;
    if (!mlx && !torch) {
        char s[96];
        mt_shape_str(s, sizeof s, t->ndim, t->shape);
        return mt_seterr(err, MT_EFORMAT, "tensor '%s' has shape %s, expected [%zu, %zu, %zu, %zu] (or PyTorch's order)",
                         name, s, D, p, p, C);
    }
    size_t K = p * p * C;
    float *raw = malloc(D * K * sizeof *raw);
    v->patch_w = mt_enc_own(e, D * K * sizeof *raw);
    if (!raw || !v->patch_w) { free(raw); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    int rc = mt_safetensors_read_f32(e->st, name, raw, D * K, 0, err);
    if (!rc) {
        if (mlx) memcpy(v->patch_w, raw, D * K * sizeof *raw);
        else
            for (size_t d = 0; d < D; d++)
                for (size_t c = 0; c < C; c++)
                    for (size_t ky = 0; ky < p; ky++)
                        for (size_t kx = 0; kx < p; kx++)
                            v->patch_w[d * K + (ky * p + kx) * C + c] = raw[((d * C + c) * p + ky) * p + kx];
    }
    free(raw);
    MT_TRY(rc);
    return mt_enc_vec(e, "embeddings.patch_embedding.bias", D, v->o.clip, &v->patch_b, err);   /* clip: none */
}

static int ln(mt_encoder *e, const char *mod, size_t n, const float **w, const float **b, mt_err *err) {
    char a[160], c[160];
    snprintf(a, sizeof a, "%s.weight", mod);
    snprintf(c, sizeof c, "%s.bias", mod);
    MT_TRY(mt_enc_vec(e, a, n, 0, w, err));
    return mt_enc_vec(e, c, n, 0, b, err);
}

int mt_vit_load(mt_vit **out, json_t *vcfg, const mt_config *cfg, mt_safetensors *st, const mt_vit_spec *spec,
                mt_pool *pool, mt_err *err) {
    return mt_vit_load_opts(out, vcfg, cfg, st, spec, NULL, pool, err);
}

size_t mt_vit_rows(const mt_vit *v, int h, int w) {
    return (size_t)(h / v->info.patch) * (size_t)(w / v->info.patch) + (size_t)(v->o.clip && v->o.keep_cls);
}

#define VIT_ACT_QUICK_GELU 100   /* act_task's own: x * sigmoid(1.702 x) */

int mt_vit_load_opts(mt_vit **out, json_t *vcfg, const mt_config *cfg, mt_safetensors *st, const mt_vit_spec *spec,
                     const mt_vit_opts *opts, mt_pool *pool, mt_err *err) {
    *out = NULL;
    if (!json_is_object(vcfg)) return mt_seterr(err, MT_EFORMAT, "config.json: no \"vision_config\" object");
    mt_vit *v = calloc(1, sizeof *v);
    if (!v) return mt_seterr(err, MT_ENOMEM, "out of memory");
    mt_encoder *e = &v->e;
    if (opts) v->o = *opts;
    e->st = st;
    e->cfg = (mt_config *)cfg;
    e->pool = pool;
    snprintf(e->prefix, sizeof e->prefix, "%s", spec->prefix);
    mt_vit_info *in = &v->info;
    int rc;
    double eps = 1e-6;
    if ((rc = get_int(vcfg, "hidden_size", -1, &in->hidden, err)) || (rc = get_int(vcfg, "intermediate_size", -1, &in->inter, err)) ||
        (rc = get_int(vcfg, "num_attention_heads", -1, &in->n_heads, err)) ||
        (rc = get_int(vcfg, "num_hidden_layers", -1, &in->n_layers, err)) ||
        (rc = get_int(vcfg, "patch_size", -1, &in->patch, err)) || (rc = get_int(vcfg, "image_size", -1, &in->image_size, err)) ||
        (rc = get_int(vcfg, "num_channels", 3, &in->channels, err)) ||
        (rc = mt_cfg_real(vcfg, "layer_norm_eps", 1e-6, &eps, 0, MT_CFG_POS, err)))
        goto fail;
    in->eps = (float)eps;
    if (in->hidden % in->n_heads || in->image_size % in->patch || in->patch > 64 || in->channels > 4) {
        rc = mt_seterr(err, MT_EFORMAT, "config.json vision_config: hidden_size %d, num_attention_heads %d, image_size %d, "
                       "patch_size %d, num_channels %d do not fit together", in->hidden, in->n_heads, in->image_size,
                       in->patch, in->channels);
        goto fail;
    }
    v->post_eps = spec->post_eps > 0 ? spec->post_eps : in->eps;
    v->n_run = v->o.layer < 0 ? in->n_layers + 1 + v->o.layer : in->n_layers;
    if (v->n_run < 0 || v->o.layer > 0) {
        rc = mt_seterr(err, MT_EFORMAT, "config.json: vision feature layer %d is not one of the tower's %d hidden states",
                       v->o.layer, in->n_layers + 1);
        goto fail;
    }
    mt_encoder_hp *hp = &e->hp;
    hp->n_layers = v->n_run;
    hp->hidden = in->hidden;
    hp->n_heads = in->n_heads;
    hp->head_dim = in->hidden / in->n_heads;
    hp->inter = in->inter;
    hp->eps = in->eps;
    hp->act = v->o.quick_gelu ? VIT_ACT_QUICK_GELU : spec->act;
    hp->pre_norm = 1;
    size_t D = (size_t)in->hidden, F = (size_t)in->inter, nps = (size_t)(in->image_size / in->patch);
    if ((rc = bind_patch(v, err))) goto fail;
    if ((rc = mt_enc_bind(e, &e->pos, "embeddings.position_embedding", nps * nps + (size_t)v->o.clip, D, -1, err)))
        goto fail;
    if (v->o.clip && ((rc = mt_enc_vec(e, "embeddings.class_embedding", D, 0, &v->cls, err)) ||
                      (rc = ln(e, "pre_layrnorm", D, &v->pre_w, &v->pre_b, err))))
        goto fail;
    e->layers = calloc((size_t)(v->n_run > 0 ? v->n_run : 1), sizeof *e->layers);
    if (!e->layers) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto fail; }
    for (int l = 0; l < v->n_run; l++) {
        mt_enc_layer *L = &e->layers[l];
        char b[160];
        mt_linear q, k, vv;
#define MOD(s) (snprintf(b, sizeof b, "encoder.layers.%d.%s", l, s), b)
        if ((rc = mt_enc_bind(e, &q, MOD("self_attn.q_proj"), D, D, 1, err)) ||
            (rc = mt_enc_bind(e, &k, MOD("self_attn.k_proj"), D, D, 1, err)) ||
            (rc = mt_enc_bind(e, &vv, MOD("self_attn.v_proj"), D, D, 1, err)) ||
            (rc = mt_enc_bind(e, &L->o, MOD("self_attn.out_proj"), D, D, 1, err)) ||
            (rc = mt_enc_bind(e, &L->up, MOD("mlp.fc1"), F, D, 1, err)) ||
            (rc = mt_enc_bind(e, &L->down, MOD("mlp.fc2"), D, F, 1, err)) ||
            (rc = ln(e, MOD("layer_norm1"), D, &L->ln1_w, &L->ln1_b, err)) ||
            (rc = ln(e, MOD("layer_norm2"), D, &L->ln2_w, &L->ln2_b, err)))
            goto fail;
#undef MOD
        mt_linear parts[3] = {q, k, vv};
        if ((rc = mt_enc_stack(e, &L->qkv, parts, 3, err))) goto fail;
    }
    if (!v->o.layer && (rc = ln(e, "post_layernorm", D, &v->post_w, &v->post_b, err))) goto fail;
    *out = v;
    return MT_OK;
fail:
    mt_vit_free(v);
    return rc;
}

void mt_vit_position_ids(int nps, int nh, int nw, int *ids) {
    /* mx.arange(1/nps, 1.0, 1/nps): ceil((1 - 1/nps) / (1/nps)) values in double, accumulated in float32 */
    double st = 1.0 / nps;
    int nb = (int)ceil((1.0 - st) / st);
    float *bd = malloc((size_t)(nb > 0 ? nb : 1) * sizeof *bd);
    int *bh = malloc((size_t)(nh + nw) * sizeof *bh), *bw = bh + nh;
    if (!bd || !bh) {   /* identity on failure (the full-grid answer) */
        for (int i = 0; i < nh * nw; i++) ids[i] = (i / nw) * nps + i % nw;
        free(bd);
        free(bh);
        return;
    }
    float acc = (float)st, stf = (float)st;
    for (int k = 0; k < nb; k++) {
        bd[k] = acc;
        acc += stf;
    }
    const float top = (float)(1.0 - 1e-6);
    for (int a = 0; a < 2; a++) {
        int n = a ? nw : nh, *out = a ? bw : bh;
        for (int i = 0; i < n; i++) {
            float f = (float)i / (float)n;
            if (f > top) f = top;
            int c = 0;
            for (int k = 0; k < nb; k++) c += f >= bd[k];
            out[i] = c;
        }
    }
    for (int y = 0; y < nh; y++)
        for (int x = 0; x < nw; x++) ids[y * nw + x] = bh[y] * nps + bw[x];
    free(bd);
    free(bh);
}

typedef struct norm_ctx {
    const mt_vit *v;
    float *x;
    const float *add;   /* x += add first, when set */
    float *out;         /* LayerNorm(x) here (NULL: no norm) */
    const float *w, *b;
    float eps;
} norm_ctx;

static void norm_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    norm_ctx *k = c;
    size_t H = (size_t)k->v->info.hidden;
    for (size_t t = b; t < e; t++) {
        float *x = k->x + t * H;
        if (k->add)
            for (size_t i = 0; i < H; i++) x[i] += k->add[t * H + i];
        if (k->out) mt_layernorm(k->out + t * H, x, k->w, k->b, H, k->eps);
    }
}

typedef struct act_ctx {
    float *x;
    size_t width;
    int act;
} act_ctx;

static void act_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    act_ctx *k = c;
    if (k->act == VIT_ACT_QUICK_GELU) {   /* mlx: x * sigmoid(1.702 * x) */
        for (size_t i = b * k->width; i < e * k->width; i++) k->x[i] = k->x[i] / (1.0f + expf(-1.702f * k->x[i]));
        return;
    }
    for (size_t t = b; t < e; t++) mt_enc_act(k->act, k->x + t * k->width, k->width);
}

/* patch vectors (ky, kx, c) of image i's patch (py, px) */
static void patch_vec(const float *img, int h, int w, int C, int p, int py, int px, float *out) {
    for (int ky = 0; ky < p; ky++)
        for (int kx = 0; kx < p; kx++)
            for (int c = 0; c < C; c++)
                *out++ = img[((size_t)c * (size_t)h + (size_t)(py * p + ky)) * (size_t)w + (size_t)(px * p + kx)];
}

int mt_vit_forward(mt_vit *v, const float *pixels, size_t n, int h, int w, float *out, mt_err *err) {
    const mt_vit_info *in = &v->info;
    mt_encoder *e = &v->e;
    int p = in->patch, C = in->channels;
    if (n == 0 || h <= 0 || w <= 0 || h % p || w % p || h > in->image_size || w > in->image_size ||
        (v->o.clip && (h != in->image_size || w != in->image_size)))
        return mt_seterr(err, MT_EINVAL, "vision tower: a %dx%d image is not a multiple of the %d-pixel patch within %d",
                         w, h, p, in->image_size);
    size_t cl = (size_t)v->o.clip;   /* the class token's row before each image's patches */
    size_t nh = (size_t)(h / p), nw = (size_t)(w / p), np = nh * nw, S = np + cl, N = n * S;
    size_t D = (size_t)in->hidden, F = (size_t)in->inter, K = (size_t)(p * p * C);
    int nth = mt_pool_size(e->pool);
    if (nth < 1) nth = 1;
    size_t wide = F > 3 * D ? F : 3 * D, per = F > D ? F : D;
    per = per > K ? per : K;
    float *big = malloc(N * (wide > K ? wide : K) * sizeof(float));
    float *ctx = malloc(N * D * sizeof(float)), *tmp = malloc(N * D * sizeof(float));
    float *work = malloc((size_t)nth * per * sizeof(float)), *row = malloc(D * sizeof(float));
    int *pid = malloc(S * sizeof *pid);
    size_t *lens = malloc(n * sizeof *lens);
    float *xb = cl ? malloc(N * D * sizeof(float)) : NULL;   /* clip: rows with the class token */
    int rc = MT_OK;
    if (!big || !ctx || !tmp || !work || !row || !pid || !lens || (cl && !xb)) {
        rc = mt_seterr(err, MT_ENOMEM, "out of memory for %zu image patches", N);
        goto done;
    }
    /* embeddings: the patch convolution as one product over the patch vectors, + positions */
    for (size_t i = 0; i < n; i++)
        for (size_t py = 0; py < nh; py++)
            for (size_t px = 0; px < nw; px++)
                patch_vec(pixels + i * (size_t)C * (size_t)h * (size_t)w, h, w, C, p, (int)py, (int)px,
                          big + (i * np + py * nw + px) * K);
    mt_linear pl = {0};
    pl.out = D;
    pl.in = K;
    pl.w = v->patch_w;
    pl.wdt = MT_F32;
    pl.bias = v->patch_b;
    pl.bdt = MT_F32;
    float *x = cl ? xb : out;
    if (cl) {
        mt_enc_linear(e, &pl, big, n * np, ctx, work);
        for (size_t i = 0; i < n; i++) {
            memcpy(x + i * S * D, v->cls, D * sizeof *x);
            memcpy(x + (i * S + 1) * D, ctx + i * np * D, np * D * sizeof *x);
        }
    } else {
        mt_enc_linear(e, &pl, big, N, x, work);
    }
    if (cl || v->o.plain_pos)
        for (size_t t = 0; t < S; t++) pid[t] = (int)t;
    else
        mt_vit_position_ids(in->image_size / p, (int)nh, (int)nw, pid);
    for (size_t i = 0; i < n; i++) {
        lens[i] = S;
        for (size_t t = 0; t < S; t++) {
            mt_linear_row(&e->pos, (size_t)pid[t], row);
            float *xr = x + (i * S + t) * D;
            for (size_t k = 0; k < D; k++) xr[k] += row[k];
        }
    }
    if (cl) {
        norm_ctx pre = {v, x, NULL, x, v->pre_w, v->pre_b, v->o.pre_eps > 0 ? v->o.pre_eps : 1e-5f};
        mt_pool_for(e->pool, N, 8, norm_task, &pre);
    }
    size_t nview = mt_enc_view_floats(e);
    float *vbuf = nview && N >= 64 ? malloc(nview * sizeof(float)) : NULL;   /* NULL: packed kernels */
    for (int L = 0; L < v->n_run && !rc; L++) {
        mt_enc_layer view;
        const mt_enc_layer *ly = mt_enc_layer_view(e, &e->layers[L], N, &view, vbuf);
        norm_ctx n1 = {v, x, NULL, tmp, ly->ln1_w, ly->ln1_b, in->eps};
        mt_pool_for(e->pool, N, 8, norm_task, &n1);
        mt_enc_linear(e, &ly->qkv, tmp, N, big, work);
        rc = mt_enc_attention(e, big, ctx, lens, n, 0, err);
        if (rc) break;
        mt_enc_linear(e, &ly->o, ctx, N, tmp, work);
        norm_ctx n2 = {v, x, tmp, ctx, ly->ln2_w, ly->ln2_b, in->eps};   /* x += attn; ctx = ln2(x) */
        mt_pool_for(e->pool, N, 8, norm_task, &n2);
        mt_enc_linear(e, &ly->up, ctx, N, big, work);
        act_ctx ac = {big, F, e->hp.act};
        mt_pool_for(e->pool, N, 4, act_task, &ac);
        mt_enc_linear(e, &ly->down, big, N, tmp, work);
        norm_ctx n3 = {v, x, tmp, NULL, NULL, NULL, in->eps};
        mt_pool_for(e->pool, N, 8, norm_task, &n3);
    }
    free(vbuf);
    if (!rc && !v->o.layer) {
        norm_ctx pn = {v, x, NULL, x, v->post_w, v->post_b, v->post_eps};
        mt_pool_for(e->pool, N, 8, norm_task, &pn);
    }
    if (!rc && cl) {   /* each image's rows, the class token's first unless dropped */
        size_t keep = v->o.keep_cls ? S : np, skip = S - keep;
        for (size_t i = 0; i < n; i++) memcpy(out + i * keep * D, x + (i * S + skip) * D, keep * D * sizeof *out);
    }
done:
    free(big); free(ctx); free(tmp); free(work); free(row); free(pid); free(lens); free(xb);
    return rc;
}
