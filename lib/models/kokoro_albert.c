/* kokoro_albert.c - Kokoro's PL-BERT: an ALBERT encoder (embeddings of width E projected
 * to H, then num_hidden_layers applications of the shared layer groups) with one
 * utterance and no padding, so the attention mask adds nothing.  GELU is the exact erf
 * form (mlx-audio's nn.GELU).
 *
 * Tensors: bert.embeddings.{word,position,token_type}_embeddings.weight, .LayerNorm.*,
 * bert.encoder.embedding_hidden_mapping_in.*, bert.encoder.albert_layer_groups.<g>.
 * albert_layers.<j>.{attention.{query,key,value,dense,LayerNorm},ffn,ffn_output,
 * full_layer_layer_norm}.*  (bert.pooler.* is not used).
 *
 * ref: mlx_audio/tts/models/kokoro/modules.py (CustomAlbert, AlbertEncoder, AlbertLayer). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/kokoro_int.h"

static int cfg_int(const mt_config *cfg, const char *key, long long def, long long lo, long long hi, int *out,
                   mt_err *err) {
    long long v = 0;
    MT_TRY(mt_config_get_int(cfg, key, def, &v, err));
    if (v < lo || v > hi)
        return mt_seterr(err, MT_EFORMAT, "config.json: '%s' = %lld outside [%lld, %lld]", key, v, lo, hi);
    *out = (int)v;
    return MT_OK;
}

int kk_albert_load(kk_loader *L, const mt_config *cfg, kk_albert *a) {
    memset(a, 0, sizeof *a);
    double eps = 1e-12;
    MT_TRY(cfg_int(cfg, "plbert.num_hidden_layers", -1, 1, 1024, &a->layers, L->err));
    MT_TRY(cfg_int(cfg, "plbert.num_attention_heads", -1, 1, 1024, &a->heads, L->err));
    MT_TRY(cfg_int(cfg, "plbert.num_hidden_groups", 1, 1, 1024, &a->groups, L->err));
    MT_TRY(cfg_int(cfg, "plbert.inner_group_num", 1, 1, 1024, &a->inner, L->err));
    MT_TRY(mt_config_get_float(cfg, "plbert.layer_norm_eps", 1e-12, &eps, L->err));
    if (!(eps >= 0 && eps < 1)) return mt_seterr(L->err, MT_EFORMAT, "config.json: 'plbert.layer_norm_eps' out of range");
    a->eps = (float)eps;
    if (a->layers % a->groups)
        return mt_seterr(L->err, MT_EFORMAT, "config.json: plbert num_hidden_layers not a multiple of num_hidden_groups");
    const mt_tensor_view *we = kk_view(L, "bert.embeddings.word_embeddings.weight");
    const mt_tensor_view *pe = kk_view(L, "bert.embeddings.position_embeddings.weight");
    const mt_tensor_view *mp = kk_view(L, "bert.encoder.embedding_hidden_mapping_in.weight");
    const mt_tensor_view *ff = kk_view(L, "bert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight");
    if (!we || !pe || !mp || !ff)
        return mt_seterr(L->err, MT_ENOTFOUND, "tensor '%s' not found",
                         !we ? "bert.embeddings.word_embeddings.weight"
                         : !pe ? "bert.embeddings.position_embeddings.weight"
                         : !mp ? "bert.encoder.embedding_hidden_mapping_in.weight"
                               : "bert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight");
    if (we->ndim != 2 || pe->ndim != 2 || mp->ndim != 2 || ff->ndim != 2 || we->shape[0] < 1 || we->shape[1] < 1 ||
        pe->shape[0] < 2 || mp->shape[0] < 1 || ff->shape[0] < 1 || we->shape[0] > (1 << 20) ||
        we->shape[1] > (1 << 16) || pe->shape[0] > (1 << 16) || mp->shape[0] > (1 << 16) || ff->shape[0] > (1 << 18))
        return mt_seterr(L->err, MT_EFORMAT, "bert: embedding/mapping/ffn tensors are not matrices of sane size");
    a->V = (int)we->shape[0];
    a->E = (int)we->shape[1];
    a->ctx = (int)pe->shape[0];
    a->H = (int)mp->shape[0];
    a->inter = (int)ff->shape[0];
    if (a->H % a->heads)
        return mt_seterr(L->err, MT_EFORMAT, "bert: hidden size %d not divisible by %d heads", a->H, a->heads);
    MT_TRY(kk_read(L, "bert.embeddings.word_embeddings.weight", 2, (int64_t[]){a->V, a->E}, &a->word));
    MT_TRY(kk_read(L, "bert.embeddings.position_embeddings.weight", 2, (int64_t[]){a->ctx, a->E}, &a->pos));
    const mt_tensor_view *tt = kk_view(L, "bert.embeddings.token_type_embeddings.weight");
    if (tt && tt->ndim == 2 && tt->shape[0] < 1)
        return mt_seterr(L->err, MT_EFORMAT, "tensor 'bert.embeddings.token_type_embeddings.weight': no rows");
    MT_TRY(kk_read(L, "bert.embeddings.token_type_embeddings.weight", 2, (int64_t[]){-1, a->E}, &a->type));
    MT_TRY(kk_ln_load(L, "bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.bias", a->E, &a->emb_ln));
    MT_TRY(kk_linear_load(L, "bert.encoder.embedding_hidden_mapping_in", a->E, a->H, 1, &a->map));
    size_t nl = (size_t)a->groups * (size_t)a->inner;
    if (!(a->lay = calloc(nl, sizeof *a->lay))) return mt_seterr(L->err, MT_ENOMEM, "bert: out of memory");
    for (int g = 0; g < a->groups; g++)
        for (int j = 0; j < a->inner; j++) {
            struct kk_alayer *l = &a->lay[(size_t)g * (size_t)a->inner + (size_t)j];
            char p[160], n1[224], n2[224];
            kk_fmt(p, sizeof p, "bert.encoder.albert_layer_groups.%d.albert_layers.%d", g, j);
            kk_fmt(n1, sizeof n1, "%s.attention.query", p);
            MT_TRY(kk_linear_load(L, n1, a->H, a->H, 1, &l->q));
            kk_fmt(n1, sizeof n1, "%s.attention.key", p);
            MT_TRY(kk_linear_load(L, n1, a->H, a->H, 1, &l->k));
            kk_fmt(n1, sizeof n1, "%s.attention.value", p);
            MT_TRY(kk_linear_load(L, n1, a->H, a->H, 1, &l->v));
            kk_fmt(n1, sizeof n1, "%s.attention.dense", p);
            MT_TRY(kk_linear_load(L, n1, a->H, a->H, 1, &l->dense));
            kk_fmt(n1, sizeof n1, "%s.ffn", p);
            MT_TRY(kk_linear_load(L, n1, a->H, a->inter, 1, &l->ffn));
            kk_fmt(n1, sizeof n1, "%s.ffn_output", p);
            MT_TRY(kk_linear_load(L, n1, a->inter, a->H, 1, &l->ffn_out));
            kk_fmt(n1, sizeof n1, "%s.attention.LayerNorm.weight", p);
            kk_fmt(n2, sizeof n2, "%s.attention.LayerNorm.bias", p);
            MT_TRY(kk_ln_load(L, n1, n2, a->H, &l->attn_ln));
            kk_fmt(n1, sizeof n1, "%s.full_layer_layer_norm.weight", p);
            kk_fmt(n2, sizeof n2, "%s.full_layer_layer_norm.bias", p);
            MT_TRY(kk_ln_load(L, n1, n2, a->H, &l->full_ln));
        }
    return MT_OK;
}

void kk_albert_free(kk_albert *a) {
    if (!a) return;
    free(a->word); free(a->pos); free(a->type);
    kk_ln_free(&a->emb_ln);
    kk_linear_free(&a->map);
    if (a->lay)
        for (size_t i = 0; i < (size_t)a->groups * (size_t)a->inner; i++) {
            struct kk_alayer *l = &a->lay[i];
            kk_linear_free(&l->q); kk_linear_free(&l->k); kk_linear_free(&l->v);
            kk_linear_free(&l->dense); kk_linear_free(&l->ffn); kk_linear_free(&l->ffn_out);
            kk_ln_free(&l->attn_ln); kk_ln_free(&l->full_ln);
        }
    free(a->lay);
    memset(a, 0, sizeof *a);
}

/* One ALBERT layer in place on h [T, H]; w: scratch of 4*T*H + T*inter + T floats. */
static void layer_fwd(const kk_albert *a, const struct kk_alayer *l, float *h, size_t T, float *w, mt_pool *pool) {
    size_t H = (size_t)a->H, dh = H / (size_t)a->heads;
    float *q = w, *k = q + T * H, *v = k + T * H, *ctx = v + T * H, *att = ctx + T * H, *f = att + T;
    kk_linear_fwd(&l->q, h, T, q, pool);
    kk_linear_fwd(&l->k, h, T, k, pool);
    kk_linear_fwd(&l->v, h, T, v, pool);
    const float scale = sqrtf((float)dh);
    for (int hd = 0; hd < a->heads; hd++) {
        size_t o = (size_t)hd * dh;
        for (size_t i = 0; i < T; i++) {
            float mx = -INFINITY;
            for (size_t j = 0; j < T; j++) {
                float sc = 0.0f;
                for (size_t d = 0; d < dh; d++) sc += q[i * H + o + d] * k[j * H + o + d];
                att[j] = sc / scale;
                if (att[j] > mx) mx = att[j];
            }
            float sum = 0.0f;
            for (size_t j = 0; j < T; j++) sum += (att[j] = expf(att[j] - mx));
            for (size_t d = 0; d < dh; d++) ctx[i * H + o + d] = 0.0f;
            for (size_t j = 0; j < T; j++) {
                float p = att[j] / sum;
                for (size_t d = 0; d < dh; d++) ctx[i * H + o + d] += p * v[j * H + o + d];
            }
        }
    }
    /* attention output: LayerNorm(dense(ctx) + h) */
    kk_linear_fwd(&l->dense, ctx, T, q, pool);
    for (size_t i = 0; i < T * H; i++) q[i] += h[i];
    kk_ln_rows(&l->attn_ln, q, T, a->eps);
    /* ffn: gelu(ffn(a)) -> ffn_output, LayerNorm(+ a) */
    kk_linear_fwd(&l->ffn, q, T, f, pool);
    for (size_t i = 0; i < T * (size_t)a->inter; i++) f[i] = 0.5f * f[i] * (1.0f + erff(f[i] / sqrtf(2.0f)));
    kk_linear_fwd(&l->ffn_out, f, T, h, pool);
    for (size_t i = 0; i < T * H; i++) h[i] += q[i];
    kk_ln_rows(&l->full_ln, h, T, a->eps);
}

int kk_albert_fwd(const kk_albert *a, const int *ids, size_t T, float *out, mt_pool *pool, mt_err *err) {
    if (T == 0 || T > (size_t)a->ctx)
        return mt_seterr(err, MT_ELIMIT, "kokoro: %zu tokens, ALBERT's context is %d", T, a->ctx);
    size_t E = (size_t)a->E, H = (size_t)a->H;
    float *emb = malloc(T * E * sizeof(float));
    float *w = malloc((4 * T * H + T * (size_t)a->inter + T) * sizeof(float));
    if (!emb || !w) {
        free(emb); free(w);
        return mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
    }
    for (size_t t = 0; t < T; t++) {
        if (ids[t] < 0 || ids[t] >= a->V) {
            free(emb); free(w);
            return mt_seterr(err, MT_EINVAL, "kokoro: token id %d outside [0, %d)", ids[t], a->V);
        }
        for (size_t e = 0; e < E; e++)
            emb[t * E + e] = (a->word[(size_t)ids[t] * E + e] + a->pos[t * E + e]) + a->type[e];
    }
    kk_ln_rows(&a->emb_ln, emb, T, a->eps);
    kk_linear_fwd(&a->map, emb, T, out, pool);
    int per = a->layers / a->groups;
    for (int i = 0; i < a->layers; i++) {
        int g = i / per;
        for (int j = 0; j < a->inner; j++) layer_fwd(a, &a->lay[(size_t)g * (size_t)a->inner + (size_t)j], out, T, w, pool);
    }
    free(emb); free(w);
    return MT_OK;
}
