/* qwen2vl.c - Qwen2-VL and Qwen2.5-VL (model_type "qwen2_vl", "qwen2_5_vl"): the Qwen
 * vision transformer, its patch merger, and a qwen2 text decoder with M-RoPE.
 *
 * As mlx-vlm 0.7 runs it:
 *   - input: the processor's patch rows (image/processor.h MT_PROC_QWEN2VL), one row of
 *     C*tps*p*p = 1176 values (channel, temporal, y, x) per 14x14 patch, rows in merge-block
 *     order (2x2 neighbours consecutive); grid (1, h/14, w/14);
 *   - patch embedding: Conv3d kernel = stride = (tps, p, p), no bias = a linear map of the row
 *     (MLX weight layout [D, tps, p, p, C], reordered here to the row's order);
 *   - 2-D rotary embedding in every block: head_dim/4 frequencies 1/10000^(2j/(hd/2)); pair i
 *     (of hd/2, rotate-half) turns by row * f[i] for i < hd/4, by column * f[i - hd/4] after;
 *   - blocks: x += proj(attn(n1(x))); x += mlp(n2(x)), attention per image (qwen2_vl) or, in
 *     qwen2_5_vl, per window except in the fullatt_block_indexes blocks;
 *       qwen2_vl:   LayerNorm eps 1e-6, fc1 -> GELU(approx="fast") = x*sigmoid(1.702x) -> fc2;
 *       qwen2_5_vl: RMSNorm eps 1e-6, down(silu(gate(x)) * up(x));
 *   - qwen2_5_vl windows: window_size / merge / patch (112 / 2 / 14 = 4) merged tokens per
 *     side; the merge groups are permuted into window order (windows row-major, groups
 *     row-major inside; edge windows smaller) before the blocks, the rotary angles with them,
 *     and the merger's rows permuted back;
 *   - merger: ln_q (LayerNorm eps 1e-6; qwen2_5_vl RMSNorm) per patch, 4 consecutive patches
 *     concatenated, mlp.0 -> GELU (nn.GELU(): exact erf) -> mlp.2 -> text hidden;
 *   - text model: the top-level config keys less vision_config (ModelConfig.from_dict), a
 *     qwen2 decoder (q/k/v biases, head_dim = hidden / heads), M-RoPE sections from
 *     rope_scaling.mrope_section (decoder.c; without one, rope_utils' default [24, 20, 20],
 *     which is also what a transformers-5 "rope_parameters" gets, since TextConfig has no such
 *     field), positions from get_rope_index (gen/vlm_job.c).
 * ref: mlx_vlm/models/qwen2_vl/{qwen2_vl,vision,language,config}.py,
 *      mlx_vlm/models/qwen2_5_vl/{vision,config}.py, mlx_vlm/models/rope_utils.py */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/encoder.h"
#include "models/vlm.h"
#include "tensor/linear.h"
#include "tensor/ops.h"

typedef struct qblock {
    mt_linear qkv, proj;       /* [3D, D], [D, D] (biases) */
    mt_linear fc1, fc2, up;    /* qwen2_vl: fc1 [F, D], fc2 [D, F]; qwen2_5_vl: gate, down, up */
    const float *n1w, *n1b, *n2w, *n2b;   /* b NULL: RMSNorm */
    int full;                  /* qwen2_5_vl: full attention in this block */
} qblock;

typedef struct qvl {
    mt_encoder e;              /* hp (hidden, heads, head_dim) for the shared attention; owned buffers */
    int v25;                   /* qwen2_5_vl */
    int D, F, depth, p, tps, C, merge, win;   /* win: merged tokens per window side (qwen2_5_vl) */
    size_t K;                  /* patch row length C * tps * p * p */
    float *patch_w;            /* [D, K] in the row's (c, t, y, x) order */
    qblock *blk;
    const float *lnq_w, *lnq_b;
    mt_linear m0, m2;          /* merger.mlp.0 [4D, 4D], merger.mlp.2 [text hidden, 4D] */
    float *inv_freq;           /* [head_dim / 4] */
} qvl;

static void qvl_free(mt_vlm *v) {
    qvl *s = v->state;
    if (!s) return;
    for (size_t i = 0; i < s->e.n_owned; i++) free(s->e.owned[i]);
    free(s->e.owned);
    free(s->blk);
    free(s);
    v->state = NULL;
}

static int norm_vecs(qvl *s, const char *mod, int bias, const float **w, const float **b, mt_err *err) {
    char a[160];
    size_t D = (size_t)s->D;
    snprintf(a, sizeof a, "%s.weight", mod);
    MT_TRY(mt_enc_vec(&s->e, a, D, 0, w, err));
    *b = NULL;
    if (!bias) return MT_OK;
    snprintf(a, sizeof a, "%s.bias", mod);
    return mt_enc_vec(&s->e, a, D, 0, b, err);
}

/* the Conv3d weight [D, tps, p, p, C] (MLX) or [D, C, tps, p, p] (PyTorch) as [D, K] in row order */
static int bind_patch(qvl *s, mt_err *err) {
    const char *name = "vision_tower.patch_embed.proj.weight";
    const mt_tensor_view *t = mt_safetensors_get(s->e.st, name);
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "tensor '%s' not found", name);
    int64_t D = s->D, T = s->tps, P = s->p, C = s->C;
    int mlx = t->ndim == 5 && t->shape[0] == D && t->shape[1] == T && t->shape[2] == P && t->shape[3] == P &&
              t->shape[4] == C;
    int torch = t->ndim == 5 && t->shape[0] == D && t->shape[1] == C && t->shape[2] == T && t->shape[3] == P &&
                t->shape[4] == P;
    if (!mlx && !torch) {
        char sh[96];
        mt_shape_str(sh, sizeof sh, t->ndim, t->shape);
        return mt_seterr(err, MT_EFORMAT, "tensor '%s' has shape %s, expected [%d, %d, %d, %d, %d]", name, sh,
                         (int)D, (int)T, (int)P, (int)P, (int)C);
    }
    size_t K = s->K;
    float *raw = malloc((size_t)D * K * sizeof *raw);
    s->patch_w = mt_enc_own(&s->e, (size_t)D * K * sizeof(float));
    if (!raw || !s->patch_w) { free(raw); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    int rc = mt_safetensors_read_f32(s->e.st, name, raw, (size_t)D * K, 0, err);
    if (!rc) {
        if (torch) memcpy(s->patch_w, raw, (size_t)D * K * sizeof *raw);   /* already (c, t, y, x) */
        else
            for (int64_t d = 0; d < D; d++)
                for (int64_t c = 0; c < C; c++)
                    for (int64_t tt = 0; tt < T; tt++)
                        for (int64_t y = 0; y < P; y++)
                            for (int64_t x = 0; x < P; x++)
                                s->patch_w[(size_t)d * K + (size_t)(((c * T + tt) * P + y) * P + x)] =
                                    raw[(size_t)d * K + (size_t)((((tt * P) + y) * P + x) * C + c)];
    }
    free(raw);
    return rc;
}

static int cfg_count(json_t *c, const char *key, int def, int *out, mt_err *err) {
    return mt_cfg_count(c, key, def, out, def < 0, err);
}

static int qvl_init(mt_vlm *v, mt_err *err) {
    qvl *s = calloc(1, sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    v->state = s;
    s->v25 = !strcmp(v->model_type, "qwen2_5_vl");
    json_t *c = mt_config_json(v->cfg), *vc = json_object_get(c, "vision_config");
    if (!json_is_object(vc)) return mt_seterr(err, MT_EFORMAT, "config.json: no \"vision_config\" object");
    int tok = 0, vs = 0, heads = 0, win = 112, out_h = 0;
    MT_TRY(cfg_count(c, "image_token_id", 151655, &tok, err));
    MT_TRY(cfg_count(c, "vision_start_token_id", 151652, &vs, err));
    v->image_token_id = tok;
    v->vision_start_id = vs;
    MT_TRY(cfg_count(vc, "depth", 32, &s->depth, err));
    MT_TRY(cfg_count(vc, "num_heads", 16, &heads, err));
    MT_TRY(cfg_count(vc, "patch_size", 14, &s->p, err));
    MT_TRY(cfg_count(vc, "temporal_patch_size", 2, &s->tps, err));
    MT_TRY(cfg_count(vc, "in_channels", 3, &s->C, err));
    MT_TRY(cfg_count(vc, "spatial_merge_size", 2, &s->merge, err));
    if (s->v25) {
        MT_TRY(cfg_count(vc, "hidden_size", 1280, &s->D, err));
        MT_TRY(cfg_count(vc, "intermediate_size", 3420, &s->F, err));
        MT_TRY(cfg_count(vc, "out_hidden_size", 1536, &out_h, err));
        MT_TRY(cfg_count(vc, "window_size", 112, &win, err));
    } else {
        double ratio = 4;
        MT_TRY(cfg_count(vc, "embed_dim", 1280, &s->D, err));
        MT_TRY(cfg_count(vc, "hidden_size", 1536, &out_h, err));
        MT_TRY(mt_cfg_real(vc, "mlp_ratio", 4.0, &ratio, 0, MT_CFG_POS, err));
        s->F = (int)(s->D * ratio);   /* int(embed_dim * mlp_ratio) */
    }
    if (s->D % heads || (s->D / heads) % 4 || s->C > 4 || s->p > 64 || s->tps > 8 || s->merge > 8)
        return mt_seterr(err, MT_EFORMAT, "config.json vision_config: hidden %d, %d heads, patch %d x %d x %d, "
                         "merge %d do not fit together", s->D, heads, s->tps, s->p, s->p, s->merge);
    s->win = win / s->merge / s->p;
    if (s->v25 && s->win < 1)
        return mt_seterr(err, MT_EFORMAT, "config.json vision_config: window_size %d is under one merged token", win);
    s->K = (size_t)s->C * (size_t)s->tps * (size_t)s->p * (size_t)s->p;
    mt_encoder *e = &s->e;
    e->st = v->st;
    e->cfg = v->cfg;
    e->pool = v->pool;
    snprintf(e->prefix, sizeof e->prefix, "vision_tower.");
    e->hp.hidden = s->D;
    e->hp.n_heads = heads;
    e->hp.head_dim = s->D / heads;
    e->hp.n_layers = 0;   /* the encoder's own layer table is unused */
    size_t D = (size_t)s->D, F = (size_t)s->F, hd = (size_t)(s->D / heads);
    s->inv_freq = mt_enc_own(e, hd / 4 * sizeof(float));
    if (!s->inv_freq) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t j = 0; j < hd / 4; j++)   /* 1 / theta ** (arange(0, dim, 2) / dim), dim = hd / 2, float32 */
        s->inv_freq[j] = 1.0f / powf(10000.0f, (float)(2 * j) / (float)(hd / 2));
    MT_TRY(bind_patch(s, err));
    s->blk = calloc((size_t)s->depth, sizeof *s->blk);
    if (!s->blk) return mt_seterr(err, MT_ENOMEM, "out of memory");
    json_t *fa = json_object_get(vc, "fullatt_block_indexes");
    if (s->v25 && !fa) {   /* mlx-vlm's default [7, 15, 23, 31] */
        for (int l = 7; l < s->depth; l += 8) s->blk[l].full = 1;
    } else if (s->v25) {
        if (!json_is_array(fa))
            return mt_seterr(err, MT_EFORMAT, "config.json vision_config: \"fullatt_block_indexes\" must be a list");
        for (size_t i = 0; i < json_array_size(fa); i++) {
            json_t *x = json_array_get(fa, i);
            if (!json_is_integer(x))
                return mt_seterr(err, MT_EFORMAT, "config.json vision_config: \"fullatt_block_indexes\" must hold integers");
            json_int_t l = json_integer_value(x);
            if (l >= 0 && l < s->depth) s->blk[l].full = 1;   /* others never match a block, as in mlx-vlm */
        }
    }
    for (int l = 0; l < s->depth; l++) {
        qblock *B = &s->blk[l];
        char b[160];
#define MOD(x) (snprintf(b, sizeof b, "blocks.%d.%s", l, x), b)
        MT_TRY(mt_enc_bind(e, &B->qkv, MOD("attn.qkv"), 3 * D, D, 1, err));
        MT_TRY(mt_enc_bind(e, &B->proj, MOD("attn.proj"), D, D, 1, err));
        if (s->v25) {
            MT_TRY(mt_enc_bind(e, &B->fc1, MOD("mlp.gate_proj"), F, D, 1, err));
            MT_TRY(mt_enc_bind(e, &B->up, MOD("mlp.up_proj"), F, D, 1, err));
            MT_TRY(mt_enc_bind(e, &B->fc2, MOD("mlp.down_proj"), D, F, 1, err));
        } else {
            MT_TRY(mt_enc_bind(e, &B->fc1, MOD("mlp.fc1"), F, D, 1, err));
            MT_TRY(mt_enc_bind(e, &B->fc2, MOD("mlp.fc2"), D, F, 1, err));
        }
        char n1[160], n2[160];
        snprintf(n1, sizeof n1, "blocks.%d.norm1", l);
        snprintf(n2, sizeof n2, "blocks.%d.norm2", l);
#undef MOD
        MT_TRY(norm_vecs(s, n1, !s->v25, &B->n1w, &B->n1b, err));
        MT_TRY(norm_vecs(s, n2, !s->v25, &B->n2w, &B->n2b, err));
    }
    MT_TRY(norm_vecs(s, "merger.ln_q", !s->v25, &s->lnq_w, &s->lnq_b, err));
    size_t M = D * (size_t)(s->merge * s->merge);
    /* the text decoder: mlx-vlm's TextConfig defaults (qwen2_vl: untied; qwen2_5_vl: tied) */
    mt_text_spec ts = {.cfg_key = NULL, .strip = "", .add = "language_model.",
                       .defaults = s->v25 ? "{\"rope_theta\": 1000000.0, \"tie_word_embeddings\": true, "
                                            "\"max_position_embeddings\": 128000}"
                                          : "{\"rope_theta\": 1000000.0, \"tie_word_embeddings\": false, "
                                            "\"max_position_embeddings\": 40960, \"num_key_value_heads\": 8}",
                       .head_dim_from_hidden = 1, .force = "{\"model_type\": \"qwen2\"}"};
    MT_TRY(mt_model_load_text(&v->lm, v->dir, &ts, v->pool, err));
    int *ms = v->lm->mrope;
    if (!ms[0] && !ms[1] && !ms[2]) {   /* no rope_scaling.mrope_section: get_mrope_section's default */
        ms[0] = 24;
        ms[1] = ms[2] = 20;
    }
    if (out_h != v->lm->hp.hidden)
        return mt_seterr(err, MT_EFORMAT, "config.json: the merger's output width %d is not the text hidden size %d",
                         out_h, v->lm->hp.hidden);
    MT_TRY(mt_enc_bind(e, &s->m0, "merger.mlp.0", M, M, 1, err));
    return mt_enc_bind(e, &s->m2, "merger.mlp.2", (size_t)out_h, M, 1, err);
}

static size_t qvl_rows(const mt_vlm *v, size_t n, int h, int w) {
    const qvl *s = v->state;
    int f = s->p * s->merge;
    if (h <= 0 || w <= 0 || h % f || w % f) return 0;
    return n * (size_t)(h / f) * (size_t)(w / f);
}

/* ---- the tower ---- */

typedef struct rows_ctx {
    const qvl *s;
    float *x, *out;        /* norm: out = n(x); act: x in place */
    const float *add;      /* x += add first (norm tasks), or the up rows (SwiGLU) */
    const float *w, *b;
    int what;              /* 0 norm, 1 QuickGELU, 2 SwiGLU, 3 GELU (erf) */
    size_t width;
} rows_ctx;

static void rows_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    rows_ctx *k = c;
    size_t W = k->width;
    for (size_t t = b; t < e; t++) {
        float *x = k->x + t * W;
        if (k->what == 0) {
            if (k->add)
                for (size_t i = 0; i < W; i++) x[i] += k->add[t * W + i];
            if (!k->out) continue;
            if (k->b) mt_layernorm(k->out + t * W, x, k->w, k->b, W, 1e-6f);
            else mt_rmsnorm(k->out + t * W, x, k->w, W, 1e-6f);
        } else if (k->what == 1) {
            for (size_t i = 0; i < W; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));   /* x * sigmoid(1.702 x) */
        } else if (k->what == 2) {
            const float *u = k->add + t * W;
            for (size_t i = 0; i < W; i++) x[i] = x[i] / (1.0f + expf(-x[i])) * u[i];
        } else {
            mt_gelu(x, W);
        }
    }
}

static void rows_run(const qvl *s, rows_ctx *k, size_t N) {
    k->s = s;
    mt_pool_for(s->e.pool, N, 8, rows_task, k);
}

/* One image of gh x gw patches: rows[N, K] -> hid[N, D] (the last block's output, in the
 * input's patch order when perm is NULL; else in window order, perm[g] = the merge group at
 * window position g). */
static int tower_one(const qvl *s, const float *px, int gh, int gw, float *hid, size_t *perm, mt_err *err) {
    const mt_encoder *e = &s->e;
    size_t N = (size_t)gh * (size_t)gw, D = (size_t)s->D, F = (size_t)s->F, K = s->K;
    size_t hd = (size_t)e->hp.head_dim, nh = (size_t)e->hp.n_heads, half = hd / 2, q4 = hd / 4;
    size_t m = (size_t)s->merge, mu = m * m, G = N / mu, lh = (size_t)gh / m, lw = (size_t)gw / m;
    int nth = mt_pool_size(e->pool);
    if (nth < 1) nth = 1;
    size_t wide = 3 * D > 2 * F ? 3 * D : 2 * F, maxin = K > F ? K : F;
    wide = wide > K ? wide : K;   /* big holds the patch rows first */
    float *big = malloc(N * wide * sizeof(float)), *tmp = malloc(N * D * sizeof(float));
    float *ctx = malloc(N * D * sizeof(float)), *ang = malloc(N * half * sizeof(float));
    float *work = malloc(((size_t)nth * maxin + MT_LINEAR_WORK_SLACK) * sizeof(float));
    size_t *order = malloc(G * sizeof *order), *wl = malloc((G + 1) * sizeof *wl);
    int rc = MT_OK;
    if (!big || !tmp || !ctx || !ang || !work || !order || !wl) {
        rc = mt_seterr(err, MT_ENOMEM, "out of memory for %zu image patches", N);
        goto done;
    }
    float *wk = mt_linear_work_align(work);
    /* window order of the merge groups (qwen2_5_vl), and each window's length in patches */
    size_t nwin = 0;
    if (perm) {
        size_t W = (size_t)s->win, k = 0;
        for (size_t wy = 0; wy < lh; wy += W)
            for (size_t wx = 0; wx < lw; wx += W) {
                size_t c0 = k;
                for (size_t y = wy; y < wy + W && y < lh; y++)
                    for (size_t x = wx; x < wx + W && x < lw; x++) order[k++] = y * lw + x;
                wl[nwin++] = (k - c0) * mu;
            }
        memcpy(perm, order, G * sizeof *order);
    } else {
        for (size_t g = 0; g < G; g++) order[g] = g;
    }
    /* patch embedding of the rows in (window) order: [N, K] x [D, K]^T */
    for (size_t g = 0; g < G; g++)
        memcpy(big + g * mu * K, px + order[g] * mu * K, mu * K * sizeof(float));
    mt_linear pl = {0};
    pl.out = D;
    pl.in = K;
    pl.w = s->patch_w;
    pl.wdt = MT_F32;
    float *x = hid;
    mt_enc_linear(e, &pl, big, N, x, wk);
    /* rotary angles: patch (r, c) of merge group (gy, gx) is at row gy*m + r, column gx*m + c */
    for (size_t g = 0; g < G; g++)
        for (size_t u = 0; u < mu; u++) {
            size_t o = order[g], row = (o / lw) * m + u / m, col = (o % lw) * m + u % m;
            float *a = ang + (g * mu + u) * half;
            for (size_t j = 0; j < q4; j++) {
                a[j] = (float)row * s->inv_freq[j];
                a[q4 + j] = (float)col * s->inv_freq[j];
            }
        }
    size_t whole = N;
    for (int l = 0; l < s->depth && !rc; l++) {
        const qblock *B = &s->blk[l];
        rows_ctx n1 = {.x = x, .out = tmp, .w = B->n1w, .b = B->n1b, .what = 0, .width = D};
        rows_run(s, &n1, N);
        mt_enc_linear(e, &B->qkv, tmp, N, big, wk);
        for (size_t t = 0; t < N; t++) {   /* q and k of every head turn by the patch's angles */
            mt_rope(big + t * 3 * D, nh, hd, hd, ang + t * half, 1.0, 0);
            mt_rope(big + t * 3 * D + D, nh, hd, hd, ang + t * half, 1.0, 0);
        }
        int windowed = perm && !B->full;
        rc = mt_enc_attention(e, big, ctx, windowed ? wl : &whole, windowed ? nwin : 1, 0, err);
        if (rc) break;
        mt_enc_linear(e, &B->proj, ctx, N, tmp, wk);
        rows_ctx n2 = {.x = x, .add = tmp, .out = ctx, .w = B->n2w, .b = B->n2b, .what = 0, .width = D};
        rows_run(s, &n2, N);   /* x += attn; ctx = n2(x) */
        mt_enc_linear(e, &B->fc1, ctx, N, big, wk);
        if (s->v25) {
            float *up = big + N * F;
            mt_enc_linear(e, &B->up, ctx, N, up, wk);
            rows_ctx a = {.x = big, .add = up, .what = 2, .width = F};
            rows_run(s, &a, N);
        } else {
            rows_ctx a = {.x = big, .what = 1, .width = F};
            rows_run(s, &a, N);
        }
        mt_enc_linear(e, &B->fc2, big, N, tmp, wk);
        rows_ctx r = {.x = x, .add = tmp, .what = 0, .width = D};
        rows_run(s, &r, N);
    }
done:
    free(big); free(tmp); free(ctx); free(ang); free(work); free(order); free(wl);
    return rc;
}

static int check_size(const mt_vlm *v, size_t n, int h, int w, mt_err *err) {
    const qvl *s = v->state;
    if (!qvl_rows(v, n, h, w))
        return mt_seterr(err, MT_EINVAL, "a %dx%d image is not a multiple of %d pixels (patch %d x merge %d)", w, h,
                         s->p * s->merge, s->p, s->merge);
    return MT_OK;
}

static int qvl_encode(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *rows, mt_err *err) {
    qvl *s = v->state;
    MT_TRY(check_size(v, n, h, w, err));
    int gh = h / s->p, gw = w / s->p;
    size_t N = (size_t)gh * (size_t)gw, D = (size_t)s->D, mu = (size_t)(s->merge * s->merge), G = N / mu;
    size_t M = D * mu, Ht = v->text_hidden;
    int nth = mt_pool_size(v->pool);
    float *hid = malloc(N * D * sizeof *hid), *nx = malloc(N * D * sizeof *nx), *h1 = malloc(G * M * sizeof *h1);
    float *o = malloc(G * Ht * sizeof *o);
    float *work = malloc(((size_t)(nth > 0 ? nth : 1) * M + MT_LINEAR_WORK_SLACK) * sizeof *work);
    size_t *perm = s->v25 ? malloc(G * sizeof *perm) : NULL;
    int rc = (!hid || !nx || !h1 || !o || !work || (s->v25 && !perm)) ? mt_seterr(err, MT_ENOMEM, "out of memory")
                                                                       : MT_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = tower_one(s, pixels + i * N * s->K, gh, gw, hid, perm, err);
        if (rc) break;
        /* merger: ln_q per patch; 4 neighbours = one row of [G, 4D]; mlp.0, GELU, mlp.2 */
        rows_ctx ln = {.x = hid, .out = nx, .w = s->lnq_w, .b = s->lnq_b, .what = 0, .width = D};
        rows_run(s, &ln, N);
        mt_enc_linear(&s->e, &s->m0, nx, G, h1, mt_linear_work_align(work));
        rows_ctx g = {.x = h1, .what = 3, .width = M};
        rows_run(s, &g, G);
        mt_enc_linear(&s->e, &s->m2, h1, G, o, mt_linear_work_align(work));
        float *dst = rows + i * G * Ht;
        for (size_t k = 0; k < G; k++)   /* back from window order */
            memcpy(dst + (perm ? perm[k] : k) * Ht, o + k * Ht, Ht * sizeof *o);
    }
    free(hid); free(nx); free(h1); free(o); free(work); free(perm);
    return rc;
}

/* the last block's output [n, patches, D] in the input's patch order */
static int qvl_tower(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *out, mt_err *err) {
    qvl *s = v->state;
    MT_TRY(check_size(v, n, h, w, err));
    int gh = h / s->p, gw = w / s->p;
    size_t N = (size_t)gh * (size_t)gw, D = (size_t)s->D, mu = (size_t)(s->merge * s->merge), G = N / mu;
    size_t *perm = s->v25 ? malloc(G * sizeof *perm) : NULL;
    float *tmp = s->v25 ? malloc(N * D * sizeof *tmp) : NULL;
    if (s->v25 && (!perm || !tmp)) { free(perm); free(tmp); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    int rc = MT_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        float *dst = out + i * N * D;
        rc = tower_one(s, pixels + i * N * s->K, gh, gw, s->v25 ? tmp : dst, perm, err);
        if (!rc && perm)
            for (size_t k = 0; k < G; k++) memcpy(dst + perm[k] * mu * D, tmp + k * mu * D, mu * D * sizeof *tmp);
    }
    free(perm);
    free(tmp);
    return rc;
}

/* mlx-vlm's prompt_utils MODEL_CONFIG: qwen2_vl LIST_WITH_IMAGE (image after the text),
 * qwen2_5_vl LIST_WITH_IMAGE_FIRST */
const mt_vlm_family mt_vlm_family_qwen2_vl = {"qwen2_vl", "<|image_pad|>", 0, qvl_init, qvl_encode, qvl_tower,
                                              qvl_rows, qvl_free};
const mt_vlm_family mt_vlm_family_qwen2_5_vl = {"qwen2_5_vl", "<|image_pad|>", 1, qvl_init, qvl_encode, qvl_tower,
                                                qvl_rows, qvl_free};
