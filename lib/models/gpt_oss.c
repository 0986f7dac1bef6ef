/* gpt_oss.c - OpenAI's gpt-oss on the shared decoder:
 *   attention  q/k/v/o with biases; a learned sink logit per query head that joins every
 *              softmax's denominator (mt_layer.sinks, honoured by all the decoder's attention
 *              paths); layers alternate sliding-window and full attention (layer_types);
 *              yarn RoPE as the config's rope_scaling gives it
 *   MLP        a mixture of experts (an mt_ffn): a router with a bias, the top-k of its
 *              logits then a softmax over them; experts with biases and the clamped SwiGLU
 *              (gate <= 7, up clipped to [-7, 7], out = (up + 1) * gate * sigmoid(1.702 gate))
 * Experts are read in mlx-lm's layout (what its sanitize writes): mlp.experts.{gate,up,down}_proj
 * .weight [E, out, in] with .bias [E, out]; the router is mlp.router (weight [E, hidden], bias).
 * With T rows in a call each chosen expert runs once over all the rows that chose it.
 * ref: mlx_lm/models/gpt_oss.py, activations.py (swiglu_oai), switch_layers.py. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/decoder_int.h"
#include "tensor/dtype.h"
#include "tensor/ops.h"

#define GOSS_ALPHA 1.702f   /* mlx-lm's SwigluOAI defaults (it does not read swiglu_limit) */
#define GOSS_LIMIT 7.0f

typedef struct goss_moe {
    int E, K;                  /* experts, experts per token */
    size_t I;                  /* expert width */
    mt_linear router;
    mt_linear *gate, *up, *down;   /* E each (one allocation), views into the stacked tensors */
} goss_moe;

static void goss_free(void *p) {
    goss_moe *g = p;
    if (!g) return;
    free(g->gate);
    free(g);
}

/* mlx-lm's swiglu_oai(gate, up) into g */
static void swiglu_oai(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float a = g[i] < GOSS_LIMIT ? g[i] : GOSS_LIMIT;
        float x = u[i] < -GOSS_LIMIT ? -GOSS_LIMIT : u[i] > GOSS_LIMIT ? GOSS_LIMIT : u[i];
        g[i] = (x + 1.0f) * (a / (1.0f + expf(-GOSS_ALPHA * a)));
    }
}

static int goss_forward(const mt_fwd *f, int l, const float *x, float *out, mt_err *err) {
    const mt_model *m = f->m;
    const goss_moe *g = m->layers[l].ffd;
    size_t T = f->T, H = (size_t)m->hp.hidden, I = g->I, E = (size_t)g->E, K = (size_t)g->K;
    /* router logits [T, E]; chosen experts and weights [T, K]; per expert: its rows, gathered
     * inputs [T, H], gate/up [T, I] each, outputs [T, H] */
    size_t nf = T * E + T * K + 2 * T * H + 2 * T * I;
    float *buf = malloc(nf * sizeof *buf);
    int *sel = malloc(T * K * sizeof *sel);
    size_t *rows = malloc(2 * T * sizeof *rows);
    if (!buf || !sel || !rows) {
        free(buf); free(sel); free(rows);
        return mt_seterr(err, MT_ENOMEM, "out of memory for the experts");
    }
    float *logit = buf, *w = logit + T * E, *xs = w + T * K, *ys = xs + T * H, *gg = ys + T * H, *uu = gg + T * I;
    size_t *slot = rows + T;   /* for each gathered row: its index t * K + k */
    mt_dec_observe(m, l, "mlp.router", x, T, H);
    mt_dec_linear(f, &g->router, x, T, logit);
    for (size_t t = 0; t < T; t++) {
        mt_dec_topk(logit + t * E, E, K, sel + t * K, w + t * K);
        mt_softmax(w + t * K, K);
    }
    memset(out, 0, T * H * sizeof *out);
    char sub[96];
    for (size_t e = 0; e < E; e++) {
        size_t n = 0;
        for (size_t t = 0; t < T; t++)
            for (size_t k = 0; k < K; k++)
                if (sel[t * K + k] == (int)e) {
                    rows[n] = t;
                    slot[n++] = t * K + k;
                }
        if (!n) continue;
        for (size_t r = 0; r < n; r++) memcpy(xs + r * H, x + rows[r] * H, H * sizeof *xs);
        if (m->on_linear_input) {
            snprintf(sub, sizeof sub, "mlp.experts.gate_proj.%zu", e);
            mt_dec_observe(m, l, sub, xs, n, H);
            snprintf(sub, sizeof sub, "mlp.experts.up_proj.%zu", e);
            mt_dec_observe(m, l, sub, xs, n, H);
        }
        mt_dec_linear(f, &g->gate[e], xs, n, gg);
        mt_dec_linear(f, &g->up[e], xs, n, uu);
        swiglu_oai(gg, uu, n * I);
        if (m->on_linear_input) {
            snprintf(sub, sizeof sub, "mlp.experts.down_proj.%zu", e);
            mt_dec_observe(m, l, sub, gg, n, I);
        }
        mt_dec_linear(f, &g->down[e], gg, n, ys);
        for (size_t r = 0; r < n; r++) mt_axpy(out + rows[r] * H, w[slot[r]], ys + r * H, H);
    }
    free(buf);
    free(sel);
    free(rows);
    return MT_OK;
}

static const mt_ffn goss_ffn = {"gpt_oss experts", goss_forward, goss_free};

/* The [E, out] bias tensor `path`.bias as each expert's mt_linear bias. */
static int bind_expert_bias(mt_model *m, const char *path, int E, size_t out, mt_linear *dst, mt_err *err) {
    char name[320];
    snprintf(name, sizeof name, "%s.bias", path);
    const mt_tensor_view *b = mt_safetensors_get(m->st, name);
    if (!b) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
    if (b->ndim != 2 || b->shape[0] != E || (size_t)b->shape[1] != out ||
        (b->dtype != MT_F32 && b->dtype != MT_F16 && b->dtype != MT_BF16))
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected [%d, %zu] of F32/F16/BF16", name, E, out);
    size_t row = out * mt_dtype_size(b->dtype);
    for (int e = 0; e < E; e++) {
        dst[e].bias = (const char *)b->data + (size_t)e * row;
        dst[e].bdt = b->dtype;
    }
    return MT_OK;
}

/* layer i: its sinks and its experts (the attention projections and norms: the decoder's) */
static int goss_bind_layer(mt_model *m, int i, int *bound, mt_err *err) {
    json_t *c = mt_config_json(m->cfg);
    mt_layer *L = &m->layers[i];
    size_t H = (size_t)m->hp.hidden, nh = (size_t)m->hp.n_heads;
    char p[256];
    snprintf(p, sizeof p, "model.layers.%d.self_attn.sinks", i);
    const mt_tensor_view *s = mt_safetensors_get(m->st, p);
    if (!s) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", p);
    if (s->ndim != 1 || (size_t)s->shape[0] != nh) return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected shape [%zu]", p, nh);
    if (!(L->sinks = malloc(nh * sizeof *L->sinks))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    MT_TRY(mt_safetensors_read_f32(m->st, p, L->sinks, nh, 0, err));

    goss_moe *g = calloc(1, sizeof *g);
    if (!g) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = mt_cfg_count(c, "num_local_experts", 128, &g->E, 0, err);
    if (!rc) rc = mt_cfg_count(c, "num_experts_per_tok", 4, &g->K, 0, err);
    if (!rc && g->K > g->E)
        rc = mt_seterr(err, MT_EFORMAT, "config.json: num_experts_per_tok %d exceeds num_local_experts %d", g->K, g->E);
    if (!rc && g->E > 4096) rc = mt_seterr(err, MT_EUNSUPPORTED, "config.json: more than 4096 experts");
    g->I = (size_t)m->hp.inter;
    if (!rc) {
        snprintf(p, sizeof p, "model.layers.%d.mlp.router", i);
        rc = mt_linear_bind(&g->router, m->st, m->cfg, p, (size_t)g->E, H, 1, err);
    }
    if (!rc && !(g->gate = calloc(3 * (size_t)g->E, sizeof *g->gate))) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) {
        g->up = g->gate + g->E;
        g->down = g->up + g->E;
        static const char *const proj[3] = {"gate_proj", "up_proj", "down_proj"};
        mt_linear *dst[3] = {g->gate, g->up, g->down};
        for (int k = 0; k < 3 && !rc; k++) {
            size_t out = k < 2 ? g->I : H, in = k < 2 ? H : g->I;
            snprintf(p, sizeof p, "model.layers.%d.mlp.experts.%s", i, proj[k]);
            rc = mt_dec_bind_stacked(m, p, g->E, out, in, dst[k], err);
            if (!rc) rc = bind_expert_bias(m, p, g->E, out, dst[k], err);
        }
    }
    if (rc) {
        goss_free(g);
        return rc;
    }
    L->ffn = &goss_ffn;
    L->ffd = g;
    *bound = MT_BOUND_MLP;
    return MT_OK;
}

static int gpt_oss_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_TOP, 150000, err));   /* mlx-lm's gpt_oss defaults */
    double eps = 1e-5;
    MT_TRY(mt_cfg_real(c, "rms_norm_eps", 1e-5, &eps, 0, MT_CFG_NONNEG, err));
    m->hp.norm_eps = (float)eps;
    MT_TRY(mt_cfg_count(c, "head_dim", 64, &m->hp.head_dim, 0, err));
    m->hp.rot_dims = m->hp.head_dim;
    m->hp.tie_embeddings = 0;   /* always its own lm_head */
    m->hp.attn_bias = m->hp.o_bias = 1;
    json_t *lt = json_object_get(c, "layer_types");
    int have_lt = lt && !json_is_null(lt);
    if (!have_lt && m->hp.n_layers % 2)
        return mt_seterr(err, MT_EFORMAT, "config.json: without \"layer_types\" num_hidden_layers must be even "
                         "(sliding and full layers alternate)");
    int win = 128;
    MT_TRY(mt_cfg_count(c, "sliding_window", 128, &win, 0, err));
    m->bind_layer = goss_bind_layer;
    m->no_mlx = "its attention sinks and clamped-SwiGLU experts";
    MT_TRY(mt_decoder_bind(m, err));
    if (have_lt) return mt_decoder_layer_types(m, err);   /* sliding layers need a sliding_window */
    for (int i = 0; i < m->hp.n_layers; i++) m->layers[i].sliding = i % 2 == 0;   /* mlx-lm's default */
    m->hp.sliding_window = win;
    return MT_OK;
}

const mt_family mt_family_gpt_oss = {"gpt_oss", gpt_oss_init,
                                     "attention sinks, sliding/full layers, biased router top-k + clamped-SwiGLU experts"};
