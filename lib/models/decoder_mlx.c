/* decoder_mlx.c - the decoder's forward pass with mlx's numerics
 * (mt_model_set_numerics MT_NUMERICS_MLX on a float16 or bfloat16 model).
 *
 * mlx-lm computes such a model in its dtype: every op of the family's Python
 * model rounds its result to the dtype, with the accumulation types and orders
 * of mlx's CPU kernels (tensor/mlxnum.h).  This pass walks the same ops in the
 * same order, so that on mlx's CPU backend the same logits come out.  Where the
 * families of model.h differ it follows their mlx-lm model:
 *   embeddings  gather (quantized: mx.dequantize's rounding), times the family's
 *               scale as a dtype scalar (gemma sqrt(hidden), gemma3 its bfloat16
 *               rounding, granite embedding_multiplier)
 *   norms       mx.fast.rms_norm / layer_norm; gemma's 1 + w is itself rounded
 *   attention   q/k/v projections (qkv split for phi3), q/k norms, the rotated
 *               features' scale (longrope/yarn), mx.fast.rope, the cache in the
 *               dtype, the CPU fallback of mx.fast.scaled_dot_product_attention
 *               (gemma2: its own q*scale, tanh soft-cap, softmax, p@v - the same ops)
 *   residuals   x + r (granite: r * residual_multiplier first; gemma3 float16:
 *               clip_residual's float32 sum clipped to +-65504)
 *   MLPs        swiglu (silu(g)*u), gelu(g)*u (gemma), gelu_approx(g)*u
 *               (gemma2/3), gelu (starcoder2's c_fc/c_proj); mixtures of experts
 *               as mixtral.py / qwen3_moe.py: router, softmax (precise), top-k,
 *               experts, sum(y * score) accumulated in the dtype
 *   logits      the dtype's; granite's / logits_scaling, gemma2's soft-cap
 * Not reproduced exactly: the summation order of mlx's RotatingKVCache after it
 * wraps (rows are summed in position order here), a QuantizedKVCache (attention
 * on packed rows stays float32), top-k > 2 experts (their sum follows mlx's
 * argpartition order, not reproduced), and models whose tensors mix dtypes.
 * ref: mlx_lm/models/llama.py, qwen2.py, qwen3.py, gemma.py, gemma2.py,
 *      gemma3_text.py, phi3.py, granite.py, olmo2.py, starcoder2.py, smollm3.py,
 *      mixtral.py, qwen3_moe.py, switch_layers.py, rope_utils.py, base.py. */
#include "models/decoder_int.h"
#include "models/kvcache_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core/cpu.h"
#include "tensor/kernels.h"
#include "tensor/mlxnum.h"

/* ---- numerics selection ---- */

int mt_numerics_parse(const char *s) {
    if (!s) return -1;
    if (!strcmp(s, "f32")) return MT_NUMERICS_F32;
    if (!strcmp(s, "mlx")) return MT_NUMERICS_MLX;
    return -1;
}

int mt_model_mlx(const mt_model *m) { return m->numerics == MT_NUMERICS_MLX && m->act_dt != MT_F32; }

mt_dtype mt_model_logits_dtype(const mt_model *m) { return mt_model_mlx(m) ? m->act_dt : MT_F32; }

/* The RoPE type mt_rope_freqs reads from a rope_scaling object, and its factor. */
static const char *rope_type(json_t *rs, double *factor) {
    const char *type = "default";
    *factor = 1;
    if (json_is_object(rs)) {
        json_t *t = json_object_get(rs, "type");
        if (!json_is_string(t)) t = json_object_get(rs, "rope_type");
        if (json_is_string(t)) type = json_string_value(t);
        json_t *f = json_object_get(rs, "factor");
        if (json_is_number(f)) *factor = json_number_value(f);
    }
    return type;
}

int mt_model_set_numerics(mt_model *m, int numerics, mt_err *err) {
    if (numerics != MT_NUMERICS_F32 && numerics != MT_NUMERICS_MLX)
        return mt_seterr(err, MT_EINVAL, "unknown numerics %d", numerics);
    mt_dtype t = !m->embed.quantized ? m->embed.wdt
                 : m->embed.mode != MT_QMODE_AFFINE ? MT_BF16   /* fp modes: mx.dequantize gives bfloat16 */
                                                    : m->embed.sdt;
    m->act_dt = t == MT_F16 || t == MT_BF16 ? t : MT_F32;
    /* mlx promotes mixed types: with float32 norm weights (a GGUF import keeps the file's
     * F32 norms beside 16-bit scales) every norm's output is float32, so are the products
     * of float32 rows, and from the first block on the residual stream; what is left of
     * the 16-bit type is the embedding rows, which the float32 path rounds as mlx does */
    char nwn[160];
    snprintf(nwn, sizeof nwn, "%s.weight", "model.norm");
    const mt_tensor_view *nw = m->st ? mt_safetensors_get(m->st, nwn) : NULL;
    if (nw && nw->dtype == MT_F32) m->act_dt = MT_F32;
    if (numerics == MT_NUMERICS_MLX && m->act_dt != MT_F32 && m->no_mlx)
        return mt_seterr(err, MT_EUNSUPPORTED, "--numerics mlx is not implemented for model_type \"%s\" (%s); "
                         "use the default f32", m->model_type, m->no_mlx);
    if (numerics == MT_NUMERICS_MLX && m->act_dt != MT_F32 && m->ple)
        return mt_seterr(err, MT_EUNSUPPORTED, "--numerics mlx is not implemented for model_type \"%s\" (per-layer "
                         "inputs); use the default f32", m->model_type);
    if (numerics == MT_NUMERICS_MLX && m->act_dt != MT_F32)
        for (int l = 0; l < m->hp.n_layers; l++)
            if (m->layers[l].kv_from >= 0 || m->layers[l].out_scale != 0.0f)
                return mt_seterr(err, MT_EUNSUPPORTED, "--numerics mlx is not implemented for model_type \"%s\" (KV-shared "
                                 "layers, layer scalars); use the default f32", m->model_type);
    if (numerics == MT_NUMERICS_MLX && m->act_dt != MT_F32)
        for (int l = 0; l < m->hp.n_layers; l++)
            if (m->layers[l].mixer || m->layers[l].ffn || m->layers[l].no_mlp)
                return mt_seterr(err, MT_EUNSUPPORTED, "--numerics mlx is not implemented for model_type \"%s\" "
                                 "(its %s layers); use the default f32", m->model_type,
                                 m->layers[l].mixer ? m->layers[l].mixer->name : m->layers[l].ffn ? m->layers[l].ffn->name : "MLP-less");
    m->numerics = numerics;
    if (numerics != MT_NUMERICS_MLX) return MT_OK;
    /* nn.RoPE(base, scale) for default, linear and dynamic scaling: frequencies from the base
     * (dynamic: per call) and positions times the scale; the others pass 1/freqs tables */
    double factor;
    const char *type = rope_type(m->rope_scaling, &factor);
    int dims = m->hp.rot_dims;
    m->rope_pos_scale = !strcmp(type, "linear") ? (float)(1.0 / factor) : 1.0f;
    if (!m->mlx_inv_freq && (!strcmp(type, "default") || !strcmp(type, "linear") || !strcmp(type, "dynamic"))) {
        m->mlx_inv_freq = malloc((size_t)dims / 2 * sizeof(float));
        if (!m->mlx_inv_freq) return mt_seterr(err, MT_ENOMEM, "out of memory");
        mt_mlx_rope_inv_freq(m->mlx_inv_freq, dims, m->hp.rope_theta);
    }
    if (m->inv_freq_local && !m->mlx_inv_freq_local) {
        m->mlx_inv_freq_local = malloc((size_t)dims / 2 * sizeof(float));
        if (!m->mlx_inv_freq_local) return mt_seterr(err, MT_ENOMEM, "out of memory");
        mt_mlx_rope_inv_freq(m->mlx_inv_freq_local, dims, m->rope_local_base);
    }
    return MT_OK;
}

/* ---- the pass ---- */

typedef struct fwd {
    mt_model *m;
    const mt_dec_rows *r;
    mt_dtype t;
    float *work;            /* nthreads * MT_LINEAR_MLX_WORK(max_in) */
    float *scores;          /* nthreads * (len + head_dim) */
    unsigned char *mask;    /* nthreads * len */
    int layer;
    const float *q;         /* rows of stride qs */
    size_t qs;
    float *att;             /* [T, n_heads * head_dim] */
} fwd;

/* (mlx's numerics compute every row alike whatever the batch, as mlx does: mt_dec_rows.rows1
 * needs nothing more here) */
static void lin(fwd *f, const mt_linear *l, const float *x, size_t T, float *y) {
    mt_linear_forward_mlx(l, x, T, y, f->t, f->work, f->m->pool);
}

static void norm(const fwd *f, const mt_norm *nm, float *out, const float *x, size_t rows, size_t n) {
    const mt_model *m = f->m;
    for (size_t i = 0; i < rows; i++) {
        if (m->hp.norm_type == MT_NORM_LAYER)
            mt_mlx_layernorm(out + i * n, x + i * n, nm->w, nm->b, n, m->hp.norm_eps, f->t);
        else mt_mlx_rmsnorm(out + i * n, x + i * n, nm->w, n, m->hp.norm_eps, f->t);
    }
}

/* x += r, as the family adds a branch to the residual stream */
static void residual(const fwd *f, float *x, float *r, size_t n) {
    const mt_decoder_hp *hp = &f->m->hp;
    if (hp->residual_scale != 1.0f) mt_mlx_mul_s(r, n, hp->residual_scale, f->t);
    if (hp->clip_residual && f->t == MT_F16) {   /* gemma3's clip_residual */
        for (size_t i = 0; i < n; i++) {
            float s = x[i] + r[i];
            x[i] = mt_round_to(s > 65504.0f ? 65504.0f : s < -65504.0f ? -65504.0f : s, MT_F16);
        }
    } else mt_mlx_add(x, r, n, f->t);
}

/* Jobs (row t, query head h): mlx's attention over the row's slots. */
static void attn_jobs(void *vc, size_t b, size_t e, int tid) {
    fwd *f = vc;
    const mt_model *m = f->m;
    const mt_decoder_hp *hp = &m->hp;
    const mt_dec_rows *r = f->r;
    size_t nh = (size_t)hp->n_heads, hd = (size_t)hp->head_dim, qd = nh * hd, kvd = r->rc[0]->kv_dim;
    size_t group = nh / (size_t)hp->n_kv_heads;
    float *s = f->scores + (size_t)tid * (r->len + hd);
    unsigned char *mask = f->mask + (size_t)tid * r->len;
    for (size_t job = b; job < e; job++) {
        size_t t = job / nh, h = job % nh, kh = h / group, j0, j1, p = r->rpos[t];
        const mt_kvcache *kc = r->rc[t];
        int win = mt_dec_row_span(m, f->layer, kc, p, r->lo[t], r->hi[t], &j0, &j1);
        const float *q = f->q + t * f->qs + h * hd;
        float *out = f->att + t * qd + h * hd;
        if (kc->quantized) {   /* packed rows: float32 attention, rounded (not mlx's arithmetic) */
            mt_kvq_span sp;
            size_t H = (size_t)kc->n_kv_heads, nw = mt_kvcache_qwords(kc);
            int turbo = kc->qscheme == MT_KVQ_TURBO;
            size_t ns = turbo ? 1 : (size_t)(kc->head_dim / kc->qgroup), w = (j0 * H + kh) * nw, o = (j0 * H + kh) * ns;
            sp = (mt_kvq_span){.kw = kc->kq[f->layer] + w, .vw = kc->vq[f->layer] + w, .ks = kc->ks[f->layer] + o,
                               .vs = kc->vs[f->layer] + o, .kb = turbo ? NULL : kc->kb[f->layer] + o,
                               .vb = turbo ? NULL : kc->vb[f->layer] + o, .wstride = H * nw, .sstride = H * ns,
                               .bits = kc->qbits, .group = kc->qgroup, .cb = turbo ? kc->tcb : NULL,
                               .sign = turbo ? kc->tsign : NULL};
            mt_k_attn_kvq(mt_cpu_level(), q, 1, &sp, j1 - j0, hd, hp->attn_scale, hp->attn_softcap, out, s);
            mt_mlx_round(out, hd, f->t);
            continue;
        }
        if (win)
            for (size_t j = j0; j < j1; j++) mask[j - j0] = kc->slot_pos[j] + (size_t)hp->sliding_window > p;
        mt_dtype kdt = mt_kv_dtype(kc);
        size_t off = j0 * kvd + kh * hd;
        mt_mlx_attn_head(q, (const char *)kc->k[f->layer] + off * mt_dtype_size(kdt),
                         (const char *)kc->v[f->layer] + off * mt_dtype_size(kdt), kdt, kvd, j1 - j0, hd,
                         hp->attn_scale, hp->attn_softcap, win ? mask : NULL, f->t, out, s);
    }
}

/* x[rows, hd] *= s on the first rot features of each head (x.at[..., :dims].multiply) */
static void scale_rot(float *x, size_t heads, size_t hd, int rot, float s, mt_dtype t) {
    if (s == 1.0f) return;
    for (size_t h = 0; h < heads; h++) mt_mlx_mul_s(x + h * hd, (size_t)rot, s, t);
}

/* Mixture of experts for T rows, out[T, H] (mixtral.py, qwen3_moe.py, SwitchGLU).
 * scratch: 2*moe_inter + n_experts + 2*H floats. */
static void moe(fwd *f, const mt_layer *L, const float *x, size_t T, float *out, float *scratch) {
    const mt_decoder_hp *hp = &f->m->hp;
    mt_dtype t = f->t;
    size_t H = (size_t)hp->hidden, I = (size_t)hp->moe_inter, E = (size_t)hp->n_experts, K = (size_t)hp->top_k;
    float *gates = scratch, *gg = gates + E, *uu = gg + I, *y = uu + I;
    int sel[64];
    float sc[64];
    for (size_t r = 0; r < T; r++) {
        const float *xt = x + r * H;
        lin(f, &L->router, xt, 1, gates);
        if (hp->moe_softmax_first) mt_mlx_softmax(gates, E, t);
        mt_dec_topk(gates, E, K, sel, sc);
        if (!hp->moe_softmax_first) mt_mlx_softmax(sc, K, t);
        else if (hp->moe_norm_topk) {   /* scores / sum(scores), the sum in the dtype */
            float s = 0;
            for (size_t k = 0; k < K; k++) s = mt_round_to(s + sc[k], t);
            for (size_t k = 0; k < K; k++) sc[k] = mt_round_to(sc[k] / s, t);
        }
        float *ot = out + r * H;
        for (size_t i = 0; i < H; i++) ot[i] = 0;
        for (size_t k = 0; k < K; k++) {
            int e = sel[k];
            lin(f, &L->exp_gate[e], xt, 1, gg);
            lin(f, &L->exp_up[e], xt, 1, uu);
            mt_mlx_swiglu(gg, uu, I, t);
            lin(f, &L->exp_down[e], gg, 1, y);
            for (size_t i = 0; i < H; i++) ot[i] = mt_round_to(ot[i] + mt_round_to(y[i] * sc[k], t), t);
        }
    }
}

int mt_dec_forward_mlx(mt_model *m, const mt_dec_rows *r, float *logits, float *hidden, mt_err *err) {
    const mt_decoder_hp *hp = &m->hp;
    mt_dtype t = m->act_dt;
    size_t T = r->T, H = (size_t)hp->hidden, hd = (size_t)hp->head_dim, nh = (size_t)hp->n_heads;
    size_t qd = nh * hd, kvd = r->rc[0]->kv_dim, I = (size_t)hp->inter, nt = (size_t)mt_pool_size(m->pool);
    size_t qkvd = qd + 2 * kvd, I2 = hp->mlp == MT_MLP_GATED_FUSED ? 2 * I : I;
    size_t sz_x = T * H, sz_i = T * I2;
    size_t moe_need = 2 * (size_t)hp->moe_inter + (size_t)hp->n_experts + 2 * H;
    if (hp->n_experts && sz_i < moe_need) sz_i = moe_need;
    size_t wk = MT_LINEAR_MLX_WORK(m->max_in > H ? m->max_in : H);
    size_t total = 3 * sz_x + T * qkvd + T * qd + 2 * sz_i + nt * wk + nt * (r->len + hd);
    float *buf = malloc(total * sizeof(float));
    unsigned char *mask = malloc(nt * (r->len ? r->len : 1));
    size_t half = (size_t)hp->rot_dims / 2;
    float *inv = malloc((T * half + 1) * sizeof(float));   /* per row: the frequencies of dynamic RoPE */
    if (!buf || !mask || !inv) {
        free(buf); free(mask); free(inv);
        return mt_seterr(err, MT_ENOMEM, "out of memory for activations");
    }
    float *x = buf, *xn = x + sz_x, *br = xn + sz_x, *qkv = br + sz_x, *att = qkv + T * qkvd;
    float *g = att + T * qd, *u = g + sz_i, *work = u + sz_i, *scores = work + nt * wk;
    fwd f = {m, r, t, work, scores, mask, 0, NULL, 0, att};
    if (hp->dyn_factor > 0)
        for (size_t i = 0; i < T; i++) {
            size_t end = r->rpos[i] + 1;
            for (size_t v = i + 1; v < T && r->rc[v] == r->rc[i]; v++) end = r->rpos[v] + 1;
            mt_mlx_rope_inv_freq(inv + i * half, hp->rot_dims, mt_dec_dyn_base(m, end));
        }

    for (size_t i = 0; i < T; i++) mt_linear_row(&m->embed, (size_t)r->tok[i], x + i * H);
    if (r->inj) {   /* the features land in an array of the embeddings' type (the gathered rows are already) */
        mt_dec_inject(r->inj, r->tok, T, x, H);
        mt_mlx_round(x, sz_x, t);
    }
    if (hp->embed_scale != 1.0f) mt_mlx_mul_s(x, sz_x, hp->embed_scale, t);

    for (int l = 0; l < hp->n_layers; l++) {
        mt_layer *L = &m->layers[l];
        const float *ain = x;
        if (L->n1.w) { norm(&f, &L->n1, xn, x, T, H); ain = xn; }
        size_t qs;
        float *q, *k, *v;
        if (hp->fused_qkv) {   /* mx.split of the fused projection: the same values */
            lin(&f, &L->qkv, ain, T, qkv);
            qs = qkvd; q = qkv; k = qkv + qd; v = qkv + qd + kvd;
        } else {
            qs = qd; q = qkv; k = qkv + T * qd; v = k + T * kvd;
            lin(&f, &L->q, ain, T, q);
            lin(&f, &L->k, ain, T, k);
            lin(&f, &L->v, ain, T, v);
        }
        size_t ks = hp->fused_qkv ? qkvd : kvd;
        int local = m->inv_freq_local && L->inv_freq == m->inv_freq_local;
        /* M-RoPE (mlx-vlm's MRoPERotaryEmbedding): 1 / base ** (arange(0, d, 2) / d), the layer's table */
        int mrope = m->mrope[0] || m->mrope[1] || m->mrope[2];
        const float *fr = local ? m->mlx_inv_freq_local : m->mlx_inv_freq && !mrope ? m->mlx_inv_freq : L->inv_freq;
        float pscale = local || !m->mlx_inv_freq || mrope ? 1.0f : m->rope_pos_scale;
        for (size_t i = 0; i < T; i++) {
            float *qt = q + i * qs, *kt = k + i * ks;
            if (hp->qk_norm == MT_QKNORM_HEAD) {
                norm(&f, &L->q_norm, qt, qt, nh, hd);
                norm(&f, &L->k_norm, kt, kt, (size_t)hp->n_kv_heads, hd);
            } else if (hp->qk_norm == MT_QKNORM_FULL) {
                norm(&f, &L->q_norm, qt, qt, 1, qd);
                norm(&f, &L->k_norm, kt, kt, 1, kvd);
            }
            if (L->use_rope) {
                const float *fi = hp->dyn_factor > 0 && !local ? inv + i * half : fr;
                float ang[512];   /* M-RoPE: the row's angles at position 1 (mt_dec_rope_pos) */
                double mp;
                int sel = mt_dec_rope_pos(m, r->inj, r->rc[i], r->rpos[i], fi, ang, &mp);
                if (sel) fi = ang;
                float pos = sel ? 1.0f : (float)mp * pscale;
                scale_rot(qt, nh, hd, hp->rot_dims, L->rope_in_scale, t);
                scale_rot(kt, (size_t)hp->n_kv_heads, hd, hp->rot_dims, L->rope_in_scale, t);
                mt_mlx_rope(qt, nh, hd, (size_t)hp->rot_dims, fi, pos, hp->rope_traditional, t);
                mt_mlx_rope(kt, (size_t)hp->n_kv_heads, hd, (size_t)hp->rot_dims, fi, pos, hp->rope_traditional, t);
            }
            mt_kv_write(r->rc[i], l, r->slot[i], kt, v + i * ks);
        }
        f.layer = l;
        f.q = q;
        f.qs = qs;
        mt_pool_for(m->pool, T * nh, 1, attn_jobs, &f);
        lin(&f, &L->o, att, T, br);
        if (hp->block != MT_BLOCK_PRE) norm(&f, &L->n2, br, br, T, H);
        residual(&f, x, br, sz_x);

        const mt_norm *pre = hp->block == MT_BLOCK_PRE ? &L->n2 : hp->block == MT_BLOCK_SANDWICH ? &L->n3 : NULL;
        const float *min = x;
        if (pre) { norm(&f, pre, xn, x, T, H); min = xn; }
        if (L->moe) moe(&f, L, min, T, br, g);
        else {
            lin(&f, &L->gate, min, T, g);
            float *hid = g;
            if (hp->mlp == MT_MLP_GATED || hp->mlp == MT_MLP_GATED_FUSED) {
                float *gg = g, *uu = u;
                if (hp->mlp == MT_MLP_GATED) lin(&f, &L->up, min, T, u);
                else {   /* gate_up rows: [gate | up] */
                    for (size_t i = 0; i < T; i++) memcpy(u + i * I, g + i * 2 * I, I * sizeof(float));
                    for (size_t i = 0; i < T; i++) memmove(g + i * I, g + i * 2 * I + I, I * sizeof(float));
                    gg = u; uu = g;
                }
                if (hp->act == MT_ACT_SILU) mt_mlx_swiglu(gg, uu, T * I, t);
                else {
                    if (hp->act == MT_ACT_GELU) mt_mlx_gelu(gg, T * I, t);
                    else mt_mlx_gelu_approx(gg, T * I, t);
                    mt_mlx_mul(gg, uu, T * I, t);
                }
                hid = gg;
            } else if (hp->act == MT_ACT_SILU) mt_mlx_silu(g, T * I, t);
            else if (hp->act == MT_ACT_GELU) mt_mlx_gelu(g, T * I, t);
            else mt_mlx_gelu_approx(g, T * I, t);
            lin(&f, &L->down, hid, T, br);
        }
        if (L->n4.w) norm(&f, &L->n4, br, br, T, H);
        residual(&f, x, br, sz_x);
    }
    int rc = MT_OK;
    for (size_t i = 0; i < T && !rc; i++)   /* mlx-lm's maybe_quantize_kv_cache after the model call */
        if (i == 0 || r->rc[i] != r->rc[i - 1]) rc = mt_kv_maybe_quantize(r->rc[i], err);
    size_t nl = T - r->first;
    if (!rc && hidden) norm(&f, &m->final_norm, hidden, x + r->first * H, nl, H);
    else if (!rc) {
        norm(&f, &m->final_norm, xn, x + r->first * H, nl, H);
        lin(&f, &m->lm_head, xn, nl, logits);
        size_t n = nl * (size_t)hp->vocab;
        if (hp->logits_div != 1.0f) mt_mlx_div_s(logits, n, hp->logits_div, t);
        if (hp->final_softcap > 0) {
            mt_mlx_div_s(logits, n, hp->final_softcap, t);
            mt_mlx_tanh(logits, n, t);
            mt_mlx_mul_s(logits, n, hp->final_softcap, t);
        }
    }
    free(buf);
    free(mask);
    free(inv);
    return rc;
}
