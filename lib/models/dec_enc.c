/* dec_enc.c - decoder embedders: a decoder of lib/models (model.h) whose
 * final hidden states (after the final norm) are pooled by the
 * sentence-transformers pipeline: qwen3 (Qwen3-Embedding: causal, last
 * token) and gemma3_text (EmbeddingGemma: use_bidirectional_attention, mean
 * pooling, Dense layers).  Each
 * sequence runs on its own from position 0, which is what the reference
 * computes for a padded batch: left padding only shifts every position by the
 * same amount, which RoPE attention does not see, and right padding is masked.
 * ref: transformers models/qwen3/modeling_qwen3.py (Qwen3Model),
 * models/gemma3/modeling_gemma3.py (Gemma3TextModel, bidirectional masks);
 * sentence_transformers Pooling lasttoken. */
#include "models/encoder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "models/model.h"

static int dec_load(mt_encoder *e, mt_err *err) {
    MT_TRY(mt_model_load(&e->dec, e->dir, e->pool, err));
    const mt_decoder_hp *d = &e->dec->hp;
    mt_encoder_hp *hp = &e->hp;
    int maxp = 32768;
    MT_TRY(mt_cfg_count(mt_config_json(e->cfg), "max_position_embeddings", 32768, &maxp, 0, err));
    hp->n_layers = d->n_layers;
    hp->hidden = d->hidden;
    hp->n_heads = d->n_heads;
    hp->head_dim = d->head_dim;
    hp->inter = d->inter;
    hp->vocab = d->vocab;
    hp->max_pos = maxp;
    hp->type_vocab = 0;
    hp->pos_offset = 0;
    /* Gemma scales the embeddings by sqrt(hidden): mlx-lm rounds the factor to
     * bfloat16, transformers keeps it in the weights' dtype; sentence-transformers
     * runs float32, so the unrounded factor is the reference here. */
    if (!strcmp(e->model_type, "gemma3_text")) e->dec->hp.embed_scale = sqrtf((float)d->hidden);
    return MT_OK;
}

int mt_enc_dec_forward(mt_encoder *e, const int32_t *ids, const size_t *lens, size_t nseq, float *hidden, mt_err *err) {
    const mt_encoder_hp *hp = &e->hp;
    size_t H = (size_t)hp->hidden, N = 0;
    for (size_t s = 0; s < nseq; s++) {
        if (lens[s] == 0 || lens[s] > (size_t)hp->max_pos)
            return mt_seterr(err, MT_EINVAL, "sequence of %zu tokens (the model takes 1..%d)", lens[s], hp->max_pos);
        N += lens[s];
    }
    for (size_t t = 0; t < N; t++)
        if (ids[t] < 0 || ids[t] >= hp->vocab) return mt_seterr(err, MT_EINVAL, "token id %d out of range", ids[t]);
    mt_kvcache *c = NULL;
    MT_TRY(mt_kvcache_new(&c, e->dec, err));
    int rc = MT_OK;
    size_t off = 0;
    for (size_t s = 0; s < nseq && !rc; s++) {
        mt_kvcache_reset(c);
        rc = mt_model_forward_hidden(e->dec, c, ids + off, lens[s], hidden + off * H, err);
        off += lens[s];
    }
    mt_kvcache_free(c);
    return rc;
}

static int no_init(mt_encoder *e, mt_err *err) {
    (void)e;
    (void)err;
    return MT_OK;
}

const mt_encoder_family mt_encoder_family_qwen3 = {"qwen3", no_init, dec_load};
/* EmbeddingGemma: gemma3_text with use_bidirectional_attention (model.h) */
const mt_encoder_family mt_encoder_family_gemma3_text = {"gemma3_text", no_init, dec_load};
