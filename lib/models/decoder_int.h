/* decoder_int.h - what the decoder's two forward passes share (models/ only):
 * decoder.c (float32 activations) and decoder_mlx.c (mlx's 16-bit numerics). */
#ifndef MT_DECODER_INT_H
#define MT_DECODER_INT_H

#include "models/model.h"

/* The rows of one forward call as decoder.c plans them: row t is token tok[t] of
 * the sequence whose cache is rc[t], at position rpos[t]; its K/V go to slot[t]
 * and it attends to slots [lo[t], hi[t]) (len: the widest span); logits (or
 * final hidden states) are wanted for rows [first, T). */
typedef struct mt_dec_rows {
    mt_kvcache *const *rc;
    const size_t *rpos, *slot, *lo, *hi;
    const int32_t *tok;
    size_t T, len, first;
    mt_embed_inject *inj;          /* rows replacing some embeddings (multimodal prompts), or NULL */
    int rows1;                     /* rows of independent sequences: each computed as alone */
} mt_dec_rows;

/* One forward call as a layer's mechanism (mt_mixer, mt_ffn) sees it: the rows above plus
 * the call's shared scratch.  A mechanism allocates its own further scratch per call. */
struct mt_fwd {
    mt_model *m;
    mt_kvcache *const *rc;           /* [T] the cache of each row (rows of one cache consecutive) */
    const size_t *rpos;              /* [T] each row's position in its sequence */
    const size_t *slot, *lo, *hi;    /* [T] its K/V slot and attended slots [lo, hi) (mt_kv_plan) */
    const int32_t *tok;
    size_t T, len, first;            /* len: the widest span */
    mt_embed_inject *inj;
    int rows1;                       /* rows of independent sequences, each computed as alone */
    const float *dyn;                /* dynamic NTK: each row's RoPE frequencies [T, rot_dims/2], or NULL */
    float *work;                     /* mt_linear work area for inputs up to m->max_in (a family whose
                                        mechanism has wider linear inputs raises max_in at bind) */
};
typedef struct mt_fwd mt_fwd;
/* y[T, out] = l(x[T, in]) over rows of the call (with rows1, each row as alone). */
void mt_dec_linear(const mt_fwd *f, const mt_linear *l, const float *x, size_t T, float *y);
/* A norm over T rows of n features (RMS, RMS with 1 + w, or LayerNorm per m->hp.norm_type). */
void mt_dec_norm(const mt_model *m, const mt_norm *nm, float *out, const float *x, size_t T, size_t n);
/* Tell the calibration observer (if any) what enters layer l's module `sub` ("mlp.down_proj"). */
void mt_dec_observe(const mt_model *m, int l, const char *sub, const float *x, size_t T, size_t in);
/* A norm's weight (and bias for LayerNorm models) bound by name ("model.layers.3.input_layernorm"),
 * n features; MT_ENOTFOUND when missing. */
int  mt_dec_bind_norm(mt_model *m, const char *prefix, size_t n, mt_norm *out, mt_err *err);
void mt_dec_norm_free(mt_norm *n);
/* Stacked expert weights `path`.weight [E, out, in] (dense or MLX-quantized with .scales/.biases,
 * as mlx-lm's SwitchLinear stores them) as E mt_linear views in dst[E]. */
int  mt_dec_bind_stacked(mt_model *m, const char *path, int E, size_t out, size_t in, mt_linear *dst, mt_err *err);
/* The built-in mixture-of-experts MLP of layer l over T rows (moe_fwd.c): out[T, hidden];
 * scratch >= 2 * moe_inter + n_experts + hidden floats. */
void mt_dec_moe(const mt_fwd *f, int l, const float *x, size_t T, float *out, float *scratch);

/* The embeddings x[T, hidden] of a call's rows with inj applied: the k-th row whose token is
 * inj->token_id (k counted from inj->next) becomes inj->rows[k]; advances inj->next.  The
 * caller checked there are enough rows (mt_dec_inject_check). */
void mt_dec_inject(mt_embed_inject *inj, const int32_t *tok, size_t T, float *x, size_t H);
/* MT_EINVAL when the rows' tokens hold more inj->token_id than inj has rows left. */
int  mt_dec_inject_check(const mt_embed_inject *inj, const int32_t *tok, size_t T, mt_err *err);
/* M-RoPE (m->mrope set): the RoPE position of the row at cache position p of cache c with the
 * frequencies fr[rot_dims/2].  *pos = p for models without M-RoPE; a row in inj's position table
 * with t == h == w gets *pos = t; a row past it p + c->pos_delta.  A row whose t, h, w differ
 * gets its angles in ang[rot_dims/2] and 1 is returned: rotate with frequencies ang at
 * position 1 (the same float products mlx-vlm's apply_multimodal_rotary_pos_emb takes). */
int  mt_dec_rope_pos(const mt_model *m, const mt_embed_inject *inj, const mt_kvcache *c, size_t p, const float *fr,
                     float *ang, double *pos);

/* The slots [*j0, *j1) a query at position pos attends to in layer `layer`,
 * from its planned [lo, hi); returns 1 when some of them must still be masked
 * one by one (a rotating cache under a sliding window: slot j is masked when
 * c->slot_pos[j] + sliding_window <= pos). */
int mt_dec_row_span(const mt_model *m, int layer, const mt_kvcache *c, size_t pos, size_t lo, size_t hi,
                    size_t *j0, size_t *j1);
/* rope_scaling "dynamic": the RoPE base of a forward call after which its
 * sequence holds `end` tokens (mlx_lm DynamicNTKScalingRoPE). */
float mt_dec_dyn_base(const mt_model *m, size_t end);
/* The forward pass with mlx's numerics (decoder_mlx.c): logits [T - first,
 * vocab] of the model's dtype, or with hidden != NULL the final hidden states
 * of those rows instead. */
int mt_dec_forward_mlx(mt_model *m, const mt_dec_rows *r, float *logits, float *hidden, mt_err *err);

/* The router's k highest scores of n, highest first (ties: the lower index, as
 * mx.argpartition of the negated scores then the stable order mlx-lm gets):
 * sel[i] the expert, sc[i] its score; k <= n. */
static inline void mt_dec_topk(const float *gates, size_t n, size_t k, int *sel, float *sc) {
    for (size_t i = 0; i < k; i++) {
        int best = -1;
        for (size_t e = 0; e < n; e++) {
            int taken = 0;
            for (size_t q = 0; q < i; q++) taken |= sel[q] == (int)e;
            if (!taken && (best < 0 || gates[e] > gates[best])) best = (int)e;
        }
        sel[i] = best;
        sc[i] = gates[best];
    }
}

#endif
