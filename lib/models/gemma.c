/* gemma.c - gemma, gemma2, gemma3_text: RMSNorm with weight (1 + w), embeddings
 * scaled by sqrt(hidden), GELU-gated MLP, tied output head; gemma2/3 put a norm
 * before and after each branch; gemma2 soft-caps attention scores and logits;
 * gemma3 adds per-head q/k norms and alternates sliding-window layers (local
 * RoPE base) with global ones.  mlx-lm's gemma2 has no sliding window: neither
 * do we, to stay token-identical with it.
 * ref: mlx_lm/models/gemma.py, gemma2.py, gemma3_text.py. */
#include <math.h>
#include <stdlib.h>
#include "models/model.h"
#include "tensor/dtype.h"

static int gemma_common(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    m->hp.norm_type = MT_NORM_RMS_P1;
    m->hp.embed_scale = sqrtf((float)m->hp.hidden);
    m->hp.tie_embeddings = 1;
    return MT_OK;
}

static int gemma_init(mt_model *m, mt_err *err) {
    MT_TRY(gemma_common(m, err));
    m->hp.act = MT_ACT_GELU;
    return mt_decoder_bind(m, err);
}

static int gemma2_init(mt_model *m, mt_err *err) {
    MT_TRY(gemma_common(m, err));
    json_t *c = mt_config_json(m->cfg);
    double qpas = 144, acap = 50, fcap = 30;
    MT_TRY(mt_cfg_real(c, "query_pre_attn_scalar", 144.0, &qpas, 0, MT_CFG_POS, err));
    MT_TRY(mt_cfg_real(c, "attn_logit_softcapping", 50.0, &acap, 0, MT_CFG_NONNEG, err));
    MT_TRY(mt_cfg_real(c, "final_logit_softcapping", 30.0, &fcap, 0, MT_CFG_NONNEG, err));
    m->hp.act = MT_ACT_GELU_TANH;
    m->hp.block = MT_BLOCK_SANDWICH;
    m->hp.attn_scale = (float)(1.0 / sqrt(qpas));
    m->hp.attn_softcap = (float)acap;
    m->hp.final_softcap = (float)fcap;
    return mt_decoder_bind(m, err);
}

static int gemma3_init(mt_model *m, mt_err *err) {
    MT_TRY(gemma_common(m, err));
    json_t *c = mt_config_json(m->cfg);
    double qpas = 256, local = 10000;
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_TOP, 1e6, err));   /* mlx-lm's gemma3_text default base */
    int window = 512, pattern = 6;
    MT_TRY(mt_cfg_real(c, "query_pre_attn_scalar", 256.0, &qpas, 0, MT_CFG_POS, err));
    MT_TRY(mt_cfg_real(c, "rope_local_base_freq", 10000.0, &local, 0, MT_CFG_POS, err));
    MT_TRY(mt_cfg_int(c, "sliding_window", 512, &window, 0, err));
    MT_TRY(mt_cfg_int(c, "sliding_window_pattern", 6, &pattern, 0, err));
    if (pattern < 1) return mt_seterr(err, MT_EFORMAT, "config.json: sliding_window_pattern must be positive");
    /* mlx-lm takes the global layers' mask from layer pattern - 1, which must exist (a
     * transformers-5 config writes the pattern as "_sliding_window_pattern", which mlx-lm
     * does not read: its default 6 applies) */
    if (pattern > m->hp.n_layers && json_is_number(json_object_get(c, "sliding_window_pattern")))
        return mt_seterr(err, MT_EFORMAT, "config.json: sliding_window_pattern %d exceeds num_hidden_layers %d "
                         "(mlx-lm cannot run such a model)", pattern, m->hp.n_layers);
    if (pattern > m->hp.n_layers)
        return mt_seterr(err, MT_EFORMAT, "config.json: no \"sliding_window_pattern\": mlx-lm's default 6 exceeds "
                         "num_hidden_layers %d (it does not read the transformers-5 \"_sliding_window_pattern\" or "
                         "\"layer_types\")", m->hp.n_layers);
    /* the embedding scale is rounded to bfloat16 first, as mlx-lm does */
    m->hp.embed_scale = mt_bf16_to_f32(mt_f32_to_bf16(sqrtf((float)m->hp.hidden)));
    m->hp.tie_embeddings = 1;   /* unless lm_head.weight exists (bind checks) */
    m->hp.act = MT_ACT_GELU_TANH;
    m->hp.block = MT_BLOCK_SANDWICH;
    m->hp.qk_norm = MT_QKNORM_HEAD;
    m->hp.attn_scale = (float)(1.0 / sqrt(qpas));
    m->hp.sliding_window = window;
    m->hp.clip_residual = 1;
    m->rope_local_base = (float)local;
    MT_TRY(mt_decoder_bind(m, err));
    int half = m->hp.rot_dims / 2;
    m->inv_freq_local = malloc((size_t)half * sizeof(float));
    if (!m->inv_freq_local) return mt_seterr(err, MT_ENOMEM, "out of memory");
    float in_scale;
    MT_TRY(mt_rope_freqs(m->inv_freq_local, &in_scale, m->hp.rot_dims, (float)local, NULL, 0, 1, err));
    for (int i = 0; i < m->hp.n_layers; i++) {
        mt_layer *L = &m->layers[i];
        L->sliding = (i + 1) % pattern != 0;
        if (L->sliding) {
            L->inv_freq = m->inv_freq_local;
            L->rope_in_scale = 1.0f;
        }
    }
    return MT_OK;
}

const mt_family mt_family_gemma = {"gemma", gemma_init, "RMSNorm 1+w, GELU-tanh gated MLP, embeddings scaled by sqrt(hidden)"};
const mt_family mt_family_gemma2 = {"gemma2", gemma2_init, "sandwich norms, attention and final logit soft-capping, alternating sliding layers"};
const mt_family mt_family_gemma3_text = {"gemma3_text", gemma3_init, "sandwich norms, per-head q/k norms, local/global RoPE bases, sliding pattern"};
