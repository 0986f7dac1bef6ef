/* gemma3n.c - Gemma 3n's text model (model_type "gemma3n"), as mlx-lm 0.32 runs it.
 *
 * The folder is the multimodal checkpoint: config.json holds the text model under
 * "text_config" and the weights live under model.language_model.* (mlx-lm's sanitize drops
 * model.vision_tower / audio_tower / embed_audio / embed_vision; they are never asked for here).
 * What differs from a llama-like decoder, all in this file's own forward pass (mt_model.forward)
 * over the shared blocks (linears, norms, the KV cache and mt_dec_attend's attention):
 *   - AltUp: altup_num_inputs residual streams.  Stream 0 is the scaled embedding, stream i
 *     altup_projections[i-1] of it rescaled to its RMS magnitude (the ratio target / max(mag,
 *     float32 min), mlx-lm's guard, which never bites).  Each layer predicts every stream from
 *     all of them (coefficients prediction_coefs(tanh(modality_router(router_norm(x_active) / H))),
 *     the weights clipped to +-altup_coef_clip), runs the block on the active prediction, and
 *     corrects every stream by (1 + correction_coefs(router of the block output)) times the
 *     innovation (block output - active prediction); at the end streams 1.. go through
 *     altup_unembed_projections with the same renormalisation and the streams are averaged.
 *   - LAuReL: the normed active prediction plus post_laurel_norm(linear_right(linear_left(.)));
 *     the attention residual and it are mixed as (x + attn + laurel) * 2^-0.5.
 *   - the block: attention with q/k norms (weighted) and a v norm without a weight, scale 1,
 *     sliding / full layers (layer_types) with rope_local_base_freq / rope_theta (no scaling:
 *     mlx-lm's nn.RoPE ignores rope_scaling); MLP gate/up/down, per-layer intermediate sizes
 *     (intermediate_size may be a list), GELU-tanh, or gelu_topk where
 *     activation_sparsity_pattern[l] > 0: the gate row cut at mean + std * sqrt(2) *
 *     erfinv(2 s - 1) (population std) before the GELU; sandwich norms.
 *   - per-layer inputs (the shared models/ple.c): embed_tokens_per_layer (ids >= vocab_size_per_layer_input read row 0)
 *     times sqrt(hidden_size_per_layer_input), plus per_layer_projection_norm(
 *     per_layer_model_projection(embedding) / sqrt(H)), times 2^-0.5; each layer gates the
 *     corrected active stream (times correct_output_scale when altup_correct_scale) with
 *     gelu(per_layer_input_gate(.)) * its slice, projects it back (per_layer_projection,
 *     post_per_layer_input_norm) and adds it to streams 1..
 *   - KV sharing: the last num_kv_shared_layers layers compute no K/V; they attend to the cache
 *     of the last earlier layer of their type (as it stands after that layer wrote this call's
 *     rows), at the call's positions (mt_layer.kv_from: their cache keeps no rows).  (mlx-lm's
 *     call without a cache, model(ids), lets them compute their own K/V instead; generation
 *     always has the cache, and that is what this forward computes.)
 *   - embeddings times sqrt(H), the embedding as the output head, final_logit_softcapping.
 * mlx-lm's gemma3n makes its own caches (make_cache): --max-kv-size changes nothing (own_cache).
 * Prompt-cache files are refused: mlx-lm's file holds only the non-shared layers.
 * ref: mlx_lm/models/gemma3n.py */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/decoder_int.h"
#include "models/kvcache_int.h"
#include "models/model.h"
#include "models/ple.h"
#include "tensor/ops.h"

typedef struct g3n_layer {
    mt_linear router, laurel_l, laurel_r;
    mt_norm router_norm, laurel_norm;
    float *pred;         /* prediction_coefs [n * n, n], clipped */
    float *corr;         /* correction_coefs [n, n], clipped */
    float *out_scale;    /* correct_output_scale [H] */
    float std_mult;      /* gelu_topk's cut in standard deviations (sparse only) */
    int sparse;
    size_t inter;
} g3n_layer;

typedef struct g3n {
    int n, active, correct_scale, has_clip;
    float clip;
    size_t hpl, vocab_pl, laurel_rank;
    mt_ple *ple;                         /* per-layer inputs (models/ple.h) */
    mt_linear *alt_proj, *alt_unembed;   /* [n - 1] each */
    g3n_layer *L;
    int n_layers;
    size_t *inter;                       /* per layer (from a list or the one value) */
} g3n;

static void g3n_free(void *p) {
    g3n *g = p;
    if (!g) return;
    for (int l = 0; g->L && l < g->n_layers; l++) {
        g3n_layer *L = &g->L[l];
        mt_dec_norm_free(&L->router_norm);
        mt_dec_norm_free(&L->laurel_norm);
        free(L->pred);
        free(L->corr);
        free(L->out_scale);
    }
    free(g->L);
    mt_ple_free(g->ple);
    free(g->alt_proj);
    free(g->alt_unembed);
    free(g->inter);
    free(g);
}

/* ---- loading ---- */

/* erf^-1(y) for |y| < 1 in double (bisection: erf is monotone) */
static double erfinv_d(double y) {
    double lo = -10, hi = 10;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (lo + hi);
        if (erf(mid) < y) lo = mid;
        else hi = mid;
    }
    return 0.5 * (lo + hi);
}

/* A small matrix `path`.weight [out, in] as float32 rows (dense or quantized), clipped to
 * +-clip when has_clip (mlx-lm: weight.astype(float32), then mx.clip). */
static int read_coefs(mt_model *m, const char *path, size_t out, size_t in, int has_clip, float clip, float **dst,
                      mt_err *err) {
    mt_linear l;
    MT_TRY(mt_linear_bind(&l, m->st, m->cfg, path, out, in, -1, err));
    if (!(*dst = malloc(out * in * sizeof **dst))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t r = 0; r < out; r++) mt_linear_row(&l, r, *dst + r * in);
    if (has_clip)
        for (size_t i = 0; i < out * in; i++) (*dst)[i] = fminf(fmaxf((*dst)[i], -clip), clip);
    return MT_OK;
}

static int read_vec(mt_model *m, const char *name, size_t n, float **dst, mt_err *err) {
    const mt_tensor_view *t = mt_safetensors_get(m->st, name);
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "missing tensor '%s'", name);
    if (t->ndim != 1 || (size_t)t->shape[0] != n)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s': expected shape [%zu]", name, n);
    if (!(*dst = malloc(n * sizeof **dst))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    return mt_safetensors_read_f32(m->st, name, *dst, n, 0, err);
}

static int g3n_bind_layer(mt_model *m, int i, int *bound, mt_err *err) {
    g3n *g = m->fam;
    g3n_layer *G = &g->L[i];
    mt_layer *L = &m->layers[i];
    size_t H = (size_t)m->hp.hidden, n = (size_t)g->n, I = g->inter[i];
    char p[256];
#define LIN(dst, sub, o, in) \
    do { snprintf(p, sizeof p, "model.layers.%d.%s", i, sub); MT_TRY(mt_linear_bind(dst, m->st, m->cfg, p, o, in, -1, err)); } while (0)
#define NORM(dst, sub) \
    do { snprintf(p, sizeof p, "model.layers.%d.%s", i, sub); MT_TRY(mt_dec_bind_norm(m, p, H, dst, err)); } while (0)
    G->inter = I;
    LIN(&L->gate, "mlp.gate_proj", I, H);
    LIN(&L->up, "mlp.up_proj", I, H);
    LIN(&L->down, "mlp.down_proj", H, I);
    LIN(&G->router, "altup.modality_router", n, H);
    NORM(&G->router_norm, "altup.router_norm");
    LIN(&G->laurel_l, "laurel.linear_left", g->laurel_rank, H);
    LIN(&G->laurel_r, "laurel.linear_right", H, g->laurel_rank);
    NORM(&G->laurel_norm, "laurel.post_laurel_norm");
#undef LIN
#undef NORM
    snprintf(p, sizeof p, "model.layers.%d.altup.prediction_coefs", i);
    MT_TRY(read_coefs(m, p, n * n, n, g->has_clip, g->clip, &G->pred, err));
    snprintf(p, sizeof p, "model.layers.%d.altup.correction_coefs", i);
    MT_TRY(read_coefs(m, p, n, n, g->has_clip, g->clip, &G->corr, err));
    snprintf(p, sizeof p, "model.layers.%d.altup.correct_output_scale", i);
    MT_TRY(read_vec(m, p, H, &G->out_scale, err));
    *bound = MT_BOUND_MLP;
    return MT_OK;
}

/* intermediate_size: one count, or a list of one per layer (mlx-lm's MLP takes [layer_idx]);
 * the config then carries the largest as the decoder's "intermediate_size" */
static int read_inter(mt_model *m, g3n *g, int nl, mt_err *err) {
    json_t *c = mt_config_json(m->cfg), *is = json_object_get(c, "intermediate_size");
    if (!(g->inter = calloc((size_t)nl, sizeof *g->inter))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!json_is_array(is)) {
        int v = 0;
        MT_TRY(mt_cfg_count(c, "intermediate_size", 0, &v, 1, err));
        for (int l = 0; l < nl; l++) g->inter[l] = (size_t)v;
        return MT_OK;
    }
    if (json_array_size(is) < (size_t)nl)
        return mt_seterr(err, MT_EFORMAT, "config.json: \"intermediate_size\" must list %d layers", nl);
    size_t mx = 0;
    for (int l = 0; l < nl; l++) {
        json_t *e = json_array_get(is, (size_t)l);
        if (!json_is_integer(e) || json_integer_value(e) < 1 || json_integer_value(e) > 1000000000)
            return mt_seterr(err, MT_EFORMAT, "config.json: \"intermediate_size\"[%d] must be a positive integer", l);
        g->inter[l] = (size_t)json_integer_value(e);
        if (g->inter[l] > mx) mx = g->inter[l];
    }
    json_object_set_new(c, "intermediate_size", json_integer((json_int_t)mx));
    return MT_OK;
}

static int g3n_forward(const mt_fwd *f, float *logits, float *hidden, mt_err *err);

#define G3N_NO_MLX "AltUp streams, per-layer inputs and KV sharing (a forward of its own)"

static int gemma3n_init(mt_model *m, mt_err *err) {
    static const mt_text_spec spec = {.cfg_key = "text_config", .strip = "model.", .add = "model.language_model."};
    MT_TRY(mt_model_use_text(m, &spec, err));
    json_t *c = mt_config_json(m->cfg);
    g3n *g = calloc(1, sizeof *g);
    if (!g) return mt_seterr(err, MT_ENOMEM, "out of memory");
    m->fam = g;
    m->fam_free = g3n_free;
    int nl = 0;
    MT_TRY(mt_cfg_count(c, "num_hidden_layers", 0, &nl, 1, err));
    g->n_layers = nl;
    MT_TRY(read_inter(m, g, nl, err));
    MT_TRY(mt_decoder_read_hp(m, err));
    mt_decoder_hp *hp = &m->hp;
    /* TextConfig's fields have no defaults: every one is required (null where mlx-lm allows None) */
    static const char *const need[] = {"head_dim", "rms_norm_eps", "num_key_value_heads", "num_kv_shared_layers",
                                       "vocab_size_per_layer_input", "sliding_window", "max_position_embeddings",
                                       "rope_local_base_freq", "rope_theta", "layer_types",
                                       "hidden_size_per_layer_input", "altup_num_inputs", "altup_active_idx",
                                       "laurel_rank", "altup_correct_scale", "altup_coef_clip",
                                       "final_logit_softcapping", "activation_sparsity_pattern"};
    for (size_t k = 0; k < sizeof need / sizeof *need; k++)
        if (!json_object_get(c, need[k]))
            return mt_seterr(err, MT_EFORMAT, "config.json: text_config has no \"%s\"%s", need[k],
                             json_object_get(c, "rope_parameters") && strstr(need[k], "rope")
                             ? " (mlx-lm reads it only there, not from the transformers-5 \"rope_parameters\")" : "");
    int nks = 0, vpl = 0, hpl = 0, n = 0, act = 0, rank = 0, cs = 0;
    double local = 10000, cap = 0, clip = 0;
    MT_TRY(mt_cfg_int(c, "num_kv_shared_layers", 0, &nks, 1, err));
    MT_TRY(mt_cfg_count(c, "vocab_size_per_layer_input", 0, &vpl, 1, err));
    MT_TRY(mt_cfg_count(c, "hidden_size_per_layer_input", 0, &hpl, 1, err));
    MT_TRY(mt_cfg_count(c, "altup_num_inputs", 0, &n, 1, err));
    MT_TRY(mt_cfg_int(c, "altup_active_idx", 0, &act, 1, err));
    MT_TRY(mt_cfg_count(c, "laurel_rank", 0, &rank, 1, err));
    MT_TRY(mt_cfg_bool(c, "altup_correct_scale", 0, &cs, err));
    MT_TRY(mt_cfg_real(c, "rope_local_base_freq", 0, &local, 1, MT_CFG_POS, err));
    MT_TRY(mt_cfg_real(c, "final_logit_softcapping", 0, &cap, 0, MT_CFG_NONNEG, err));
    MT_TRY(mt_cfg_real(c, "altup_coef_clip", 0, &clip, 0, MT_CFG_NONNEG, err));
    if (act >= n)
        return mt_seterr(err, MT_EFORMAT, "config.json: altup_active_idx %d is not one of the %d altup_num_inputs", act, n);
    if (n > 64) return mt_seterr(err, MT_EUNSUPPORTED, "config.json: altup_num_inputs %d (at most 64 here)", n);
    if (nks >= nl)
        return mt_seterr(err, MT_EFORMAT, "config.json: num_kv_shared_layers %d leaves no layer with a cache of its own "
                         "(mlx-lm cannot run such a model)", nks);
    g->n = n;
    g->active = act;
    g->correct_scale = cs;
    g->has_clip = json_is_number(json_object_get(c, "altup_coef_clip"));
    g->clip = (float)clip;
    g->hpl = (size_t)hpl;
    g->vocab_pl = (size_t)vpl;
    g->laurel_rank = (size_t)rank;
    hp->norm_type = MT_NORM_RMS;
    hp->block = MT_BLOCK_SANDWICH;
    hp->qk_norm = MT_QKNORM_HEAD;
    hp->act = MT_ACT_GELU_TANH;
    hp->attn_scale = 1.0f;
    hp->embed_scale = (float)sqrt((double)hp->hidden);   /* hidden_size ** 0.5, a float32 scalar */
    hp->tie_embeddings = hp->tie_always = 1;             /* embed_tokens.as_linear */
    hp->final_softcap = (float)cap;
    m->rope_scaling = NULL;                              /* nn.RoPE without scaling */
    if (!(g->L = calloc((size_t)nl, sizeof *g->L))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    /* activation sparsity per layer (absent or null: none) */
    json_t *asp = json_object_get(c, "activation_sparsity_pattern");
    if (asp && !json_is_null(asp) && (!json_is_array(asp) || json_array_size(asp) < (size_t)nl))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"activation_sparsity_pattern\" must list %d layers", nl);
    for (int l = 0; json_is_array(asp) && l < nl; l++) {
        json_t *e = json_array_get(asp, (size_t)l);
        if (!json_is_number(e))
            return mt_seterr(err, MT_EFORMAT, "config.json: \"activation_sparsity_pattern\"[%d] must be a number", l);
        double s = json_number_value(e);
        if (s > 1)   /* erfinv(2 s - 1) would be NaN: every logit NaN */
            return mt_seterr(err, MT_EFORMAT, "config.json: \"activation_sparsity_pattern\"[%d] must be at most 1 (got %g)",
                             l, s);
        if (s > 0) {   /* sqrt(2) * mx.erfinv(2 s - 1): erfinv of the float32 argument, products in float32 */
            float a = (float)(2.0 * s - 1.0);
            g->L[l].std_mult = (a >= 1.0f ? INFINITY : (float)erfinv_d((double)a)) * (float)sqrt(2.0);
            g->L[l].sparse = 1;
        }   /* (s <= 0: the plain GELU, as mlx-lm's `> 0` test gives) */
    }
    m->bind_layer = g3n_bind_layer;
    MT_TRY(mt_decoder_bind(m, err));
    MT_TRY(mt_decoder_layer_types(m, err));
    size_t H = (size_t)hp->hidden;
    MT_TRY(mt_ple_bind(m, (int)g->hpl, (int)g->vocab_pl, &g->ple, err));
    g->ple->mask_ids = 1;   /* ids past vocab_size_per_layer_input read row 0 */
    if (n > 1) {
        g->alt_proj = calloc((size_t)n - 1, sizeof *g->alt_proj);
        g->alt_unembed = calloc((size_t)n - 1, sizeof *g->alt_unembed);
        if (!g->alt_proj || !g->alt_unembed) return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    for (int i = 0; i + 1 < n; i++) {
        char p[128];
        snprintf(p, sizeof p, "model.altup_projections.%d", i);
        MT_TRY(mt_linear_bind(&g->alt_proj[i], m->st, m->cfg, p, H, H, -1, err));
        snprintf(p, sizeof p, "model.altup_unembed_projections.%d", i);
        MT_TRY(mt_linear_bind(&g->alt_unembed[i], m->st, m->cfg, p, H, H, -1, err));
    }
    /* layer types: both kinds must exist (mlx-lm's layer_types.index), and among the layers with
     * caches of their own too when some layers share */
    int first_shared = nl - nks, last[2] = {-1, -1}, any[2] = {0, 0};
    for (int l = 0; l < nl; l++) any[m->layers[l].sliding] = 1;
    if (!any[0] || !any[1])
        return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\" must hold both sliding_attention and "
                         "full_attention layers (mlx-lm cannot run it otherwise)");
    for (int l = 0; l < first_shared; l++) last[m->layers[l].sliding] = l;
    if (last[0] < 0 || last[1] < 0)
        return mt_seterr(err, MT_EFORMAT, "config.json: the %d layers before the KV-shared ones must hold both "
                         "sliding_attention and full_attention layers (mlx-lm cannot run it otherwise)", first_shared);
    for (int l = first_shared; l < nl; l++) m->layers[l].kv_from = last[m->layers[l].sliding];   /* KV sharing */
    /* RoPE: rope_theta for full layers, rope_local_base_freq for sliding ones */
    int half = hp->rot_dims / 2;
    if (!(m->inv_freq_local = malloc((size_t)half * sizeof(float)))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    float in_scale;
    MT_TRY(mt_rope_freqs(m->inv_freq_local, &in_scale, hp->rot_dims, (float)local, NULL, 0, 1, err));
    m->rope_local_base = (float)local;
    for (int l = 0; l < nl; l++)
        if (m->layers[l].sliding) {
            m->layers[l].inv_freq = m->inv_freq_local;
            m->layers[l].rope_in_scale = 1.0f;
        }
    for (int l = 0; l < nl; l++)
        if (g->inter[l] > m->max_in) m->max_in = g->inter[l];
    if (g->hpl > m->max_in) m->max_in = g->hpl;
    m->own_cache = 1;
    m->no_mlx = G3N_NO_MLX;
    m->no_kvfile = "gemma3n (KV-shared layers: mlx-lm's file holds the non-shared layers only)";
    m->forward = g3n_forward;
    return MT_OK;
}

/* ---- per-layer inputs (models/ple.h) ---- */

/* Layer l's per-layer input into streams 1..: the gated term of `first`[T, H] (its active
 * stream, times correct_output_scale when set; changed), added; pr: T * H floats. */
static int ple_apply(const mt_fwd *f, const g3n *g, int l, float *first, const float *pli, float **X, float *pr,
                     mt_err *err) {
    const g3n_layer *G = &g->L[l];
    size_t T = f->T, H = (size_t)f->m->hp.hidden;
    if (g->correct_scale)
        for (size_t t = 0; t < T; t++)
            for (size_t i = 0; i < H; i++) first[t * H + i] *= G->out_scale[i];
    MT_TRY(mt_ple_gate(f, g->ple, l, first, pli, T, pr, err));
    for (int s = 1; s < g->n; s++)
        for (size_t i = 0; i < T * H; i++) X[s][i] += pr[i];
    return MT_OK;
}

/* ---- forward ---- */

/* tanh(modality_router(router_norm(x) * H^-1)) into mod[T, n]; xn: T * H scratch */
static void router(const mt_fwd *f, const g3n *g, int l, const float *x, float *xn, float *mod) {
    const mt_model *m = f->m;
    const g3n_layer *G = &g->L[l];
    size_t T = f->T, H = (size_t)m->hp.hidden;
    float inv = (float)(1.0 / (double)H);
    mt_dec_norm(m, &G->router_norm, xn, x, T, H);
    for (size_t i = 0; i < T * H; i++) xn[i] *= inv;
    mt_dec_observe(m, l, "altup.modality_router", xn, T, H);
    mt_dec_linear(f, &G->router, xn, T, mod);
    for (size_t i = 0; i < T * (size_t)g->n; i++) mod[i] = tanhf(mod[i]);
}

/* RMS magnitude of each row: sqrt(mean(x^2)) */
static float rms(const float *x, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) s += x[i] * x[i];
    return sqrtf(s / (float)n);
}

/* streams 1..n-1 rescaled so that each row's RMS is stream 0's (mlx-lm's target / max(mag, finfo.min)) */
static void renorm(const g3n *g, float **X, size_t T, size_t H) {
    for (size_t t = 0; t < T; t++) {
        float tgt = rms(X[0] + t * H, H);
        for (int s = 1; s < g->n; s++) {
            float *r = X[s] + t * H, mag = rms(r, H);
            float k = tgt / fmaxf(mag, -FLT_MAX);
            for (size_t i = 0; i < H; i++) r[i] *= k;
        }
    }
}

/* the MLP: down(gelu(gate(x)) * up(x)), gelu_topk's cut on sparse layers; out[T, H] */
static void mlp(const mt_fwd *f, const g3n *g, int l, const float *x, float *gb, float *ub, float *out) {
    const mt_model *m = f->m;
    const mt_layer *L = &m->layers[l];
    const g3n_layer *G = &g->L[l];
    size_t T = f->T, H = (size_t)m->hp.hidden, I = G->inter;
    mt_dec_observe(m, l, "mlp.gate_proj", x, T, H);
    mt_dec_observe(m, l, "mlp.up_proj", x, T, H);
    mt_dec_linear(f, &L->gate, x, T, gb);
    mt_dec_linear(f, &L->up, x, T, ub);
    if (G->sparse)
        for (size_t t = 0; t < T; t++) {   /* mean + std * multiplier, std with ddof 0 */
            float *r = gb + t * I;
            double s = 0, v = 0;
            for (size_t i = 0; i < I; i++) s += r[i];
            float mean = (float)(s / (double)I);
            for (size_t i = 0; i < I; i++) v += ((double)r[i] - mean) * ((double)r[i] - mean);
            float sd = (float)sqrt(v / (double)I), cut = mean + sd * G->std_mult;
            for (size_t i = 0; i < I; i++) {   /* mx.maximum(0, d): a NaN (std 0 times inf) stays NaN */
                float d = r[i] - cut;
                r[i] = d != d ? d : fmaxf(0.0f, d);
            }
        }
    mt_gelu_tanh(gb, T * I);
    for (size_t i = 0; i < T * I; i++) gb[i] *= ub[i];
    mt_dec_observe(m, l, "mlp.down_proj", gb, T, I);
    mt_dec_linear(f, &L->down, gb, T, out);
}

/* the attention of layer l on xn[T, H] into out[T, H] (before the post-attention norm) */
static int attention(const mt_fwd *f, int l, const float *xn, float *q, float *k, float *v, float *att,
                     float *out, mt_err *err) {
    const mt_model *m = f->m;
    const mt_decoder_hp *hp = &m->hp;
    const mt_layer *L = &m->layers[l];
    size_t T = f->T, H = (size_t)hp->hidden, hd = (size_t)hp->head_dim;
    size_t nh = (size_t)hp->n_heads, nkv = (size_t)hp->n_kv_heads, qd = nh * hd, kvd = nkv * hd;
    int own = L->kv_from < 0;   /* a KV-shared layer reads layer kv_from's rows and writes none */
    mt_dec_observe(m, l, "self_attn.q_proj", xn, T, H);
    mt_dec_linear(f, &L->q, xn, T, q);
    if (own) {
        mt_dec_observe(m, l, "self_attn.k_proj", xn, T, H);
        mt_dec_observe(m, l, "self_attn.v_proj", xn, T, H);
        mt_dec_linear(f, &L->k, xn, T, k);
        mt_dec_linear(f, &L->v, xn, T, v);
    } else {
        memset(k, 0, T * kvd * sizeof *k);
        memset(v, 0, T * kvd * sizeof *v);
    }
    for (size_t t = 0; t < T; t++) {
        float *qt = q + t * qd, *kt = k + t * kvd, *vt = v + t * kvd;
        double pos = (double)f->rpos[t];
        mt_dec_norm(m, &L->q_norm, qt, qt, nh, hd);
        mt_rope(qt, nh, hd, (size_t)hp->rot_dims, L->inv_freq, pos, 0);
        if (own) {
            mt_dec_norm(m, &L->k_norm, kt, kt, nkv, hd);
            for (size_t h = 0; h < nkv; h++) mt_rmsnorm(vt + h * hd, vt + h * hd, NULL, hd, hp->norm_eps);
            mt_rope(kt, nkv, hd, (size_t)hp->rot_dims, L->inv_freq, pos, 0);
        }
        if (own) mt_kv_write(f->rc[t], l, f->slot[t], kt, vt);
    }
    MT_TRY(mt_dec_attend(f, own ? l : L->kv_from, q, qd, att, err));
    mt_dec_observe(m, l, "self_attn.o_proj", att, T, qd);
    mt_dec_linear(f, &L->o, att, T, out);
    return MT_OK;
}

static int g3n_forward(const mt_fwd *f0, float *logits, float *hidden, mt_err *err) {
    mt_model *m = f0->m;
    const g3n *g = m->fam;
    const mt_decoder_hp *hp = &m->hp;
    size_t T = f0->T, H = (size_t)hp->hidden, n = (size_t)g->n, nl = (size_t)hp->n_layers;
    size_t qd = (size_t)hp->n_heads * hp->head_dim, kvd = (size_t)hp->n_kv_heads * hp->head_dim;
    size_t I = (size_t)hp->inter, LH = nl * g->hpl, R = g->laurel_rank, nt = (size_t)mt_pool_size(m->pool);
    /* X: n streams, P: n predictions, then scratch */
    size_t sz = 2 * n * T * H + T * LH + 6 * T * H + T * qd * 2 + 2 * T * kvd + 2 * T * I + T * R +
                T * n * (n * n + 1) + nt * m->max_in + MT_LINEAR_WORK_SLACK + 64;
    float *buf = malloc(sz * sizeof *buf);
    if (!buf) return mt_seterr(err, MT_ENOMEM, "out of memory for activations");
    float *X[64], *P[64], *p = buf;
    for (size_t s = 0; s < n; s++) { X[s] = p; p += T * H; }
    for (size_t s = 0; s < n; s++) { P[s] = p; p += T * H; }
    float *pli = p; p += T * LH;
    float *xn = p; p += T * H;
    float *lau = p; p += T * H;
    float *br = p; p += T * H;
    float *al = p; p += T * H;
    float *first = p; p += T * H;
    float *pr = p; p += T * H;
    float *q = p; p += T * qd;
    float *att = p; p += T * qd;
    float *k = p; p += T * kvd;
    float *v = p; p += T * kvd;
    float *gb = p; p += T * I;
    float *ub = p; p += T * I;
    float *ll = p; p += T * R;
    float *mod = p; p += T * n;
    float *cf = p; p += T * n * n;
    mt_fwd fw = *f0;
    fw.work = mt_linear_work_align(p);
    const mt_fwd *f = &fw;
    int r = MT_OK;
    float s2 = (float)pow(2.0, -0.5);

    /* embeddings, per-layer inputs, the streams */
    for (size_t t = 0; t < T; t++) mt_linear_row(&m->embed, (size_t)f->tok[t], X[0] + t * H);
    for (size_t i = 0; i < T * H; i++) X[0][i] *= hp->embed_scale;
    if ((r = mt_ple_inputs(f, g->ple, f->tok, X[0], T, pli, err))) goto out;
    for (size_t s = 1; s < n; s++) mt_dec_linear(f, &g->alt_proj[s - 1], X[0], T, X[s]);
    renorm(g, X, T, H);

    for (int l = 0; l < (int)nl; l++) {
        const mt_layer *L = &m->layers[l];
        const g3n_layer *G = &g->L[l];
        /* predict: P[j] = X[j] + sum_i coef[j n + i] X[i], coef = pred(mod) */
        router(f, g, l, X[g->active], xn, mod);
        for (size_t t = 0; t < T; t++)
            for (size_t o = 0; o < n * n; o++) {
                float s = 0;
                for (size_t i = 0; i < n; i++) s += mod[t * n + i] * G->pred[o * n + i];
                cf[t * n * n + o] = s;
            }
        for (size_t j = 0; j < n; j++)
            for (size_t t = 0; t < T; t++) {
                const float *c = cf + t * n * n + j * n;
                float *o = P[j] + t * H;
                for (size_t e = 0; e < H; e++) {
                    float s = 0;
                    for (size_t i = 0; i < n; i++) s += X[i][t * H + e] * c[i];
                    o[e] = s + X[j][t * H + e];
                }
            }
        const float *ap = P[g->active];
        mt_dec_norm(m, &L->n1, xn, ap, T, H);
        /* LAuReL */
        mt_dec_observe(m, l, "laurel.linear_left", xn, T, H);
        mt_dec_linear(f, &G->laurel_l, xn, T, ll);
        mt_dec_observe(m, l, "laurel.linear_right", ll, T, R);
        mt_dec_linear(f, &G->laurel_r, ll, T, lau);
        mt_dec_norm(m, &G->laurel_norm, lau, lau, T, H);
        for (size_t i = 0; i < T * H; i++) lau[i] += xn[i];
        /* attention */
        if ((r = attention(f, l, xn, q, k, v, att, br, err))) goto out;
        mt_dec_norm(m, &L->n2, br, br, T, H);
        for (size_t i = 0; i < T * H; i++) al[i] = ((ap[i] + br[i]) + lau[i]) * s2;
        /* MLP */
        mt_dec_norm(m, &L->n3, xn, al, T, H);
        mlp(f, g, l, xn, gb, ub, br);
        mt_dec_norm(m, &L->n4, br, br, T, H);
        for (size_t i = 0; i < T * H; i++) al[i] += br[i];
        /* correct: X[i] = P[i] + (al - P[active]) * (corr(mod) + 1)[i] */
        router(f, g, l, al, xn, mod);
        for (size_t t = 0; t < T; t++)
            for (size_t i = 0; i < n; i++) {
                float s = 0;
                for (size_t kk = 0; kk < n; kk++) s += mod[t * n + kk] * G->corr[i * n + kk];
                cf[t * n + i] = s + 1.0f;
            }
        for (size_t i = 0; i < n; i++)
            for (size_t t = 0; t < T; t++) {
                float c = cf[t * n + i];
                const float *a = al + t * H, *pa = P[g->active] + t * H, *pi = P[i] + t * H;
                float *o = X[i] + t * H;
                for (size_t e = 0; e < H; e++) o[e] = (a[e] - pa[e]) * c + pi[e];
            }
        memcpy(first, X[g->active], T * H * sizeof *first);
        if ((r = ple_apply(f, g, l, first, pli, X, pr, err))) goto out;
    }

    /* streams back to one: unembed projections, renormalised, averaged */
    {
        size_t fr = f->first, nr = T - fr;
        float *Y[64];
        Y[0] = X[0] + fr * H;
        for (size_t s = 1; s < n; s++) {
            Y[s] = P[s];
            mt_dec_linear(f, &g->alt_unembed[s - 1], X[s] + fr * H, nr, P[s]);
        }
        renorm(g, Y, nr, H);
        for (size_t i = 0; i < nr * H; i++) {
            float s = 0;
            for (size_t j = 0; j < n; j++) s += Y[j][i];
            xn[i] = s / (float)n;
        }
        if (hidden) {
            mt_dec_norm(m, &m->final_norm, hidden, xn, nr, H);
            goto out;
        }
        mt_dec_norm(m, &m->final_norm, br, xn, nr, H);
        mt_dec_linear(f, &m->lm_head, br, nr, logits);
        size_t V = (size_t)hp->vocab;
        if (hp->final_softcap > 0)
            for (size_t i = 0; i < nr * V; i++) logits[i] = tanhf(logits[i] / hp->final_softcap) * hp->final_softcap;
    }
out:
    free(buf);
    return r;
}

const mt_family mt_family_gemma3n = {"gemma3n", gemma3n_init,
                                     "Gemma 3n text: AltUp streams, LAuReL, per-layer inputs, KV-shared layers, gelu_topk sparsity"};
