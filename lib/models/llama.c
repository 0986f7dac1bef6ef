/* llama.c - the llama family and its close relatives that differ only in
 * hyper-parameters: llama (Llama 2/3.x, SmolLM2, TinyLlama), mistral (mlx-lm
 * maps it to llama), qwen2 (q/k/v bias), qwen3 (per-head q/k RMSNorm).
 * ref: mlx_lm/models/llama.py, qwen2.py, qwen3.py. */
#include "models/model.h"

/* Sliding-window layers: mt_decoder_layer_types (layer_types + sliding_window, as in mlx-lm). */
static int llama_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_bind(m, err));
    return mt_decoder_layer_types(m, err);
}

static int qwen2_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_TOP, 1e6, err));   /* mlx-lm's qwen2 default base */
    m->hp.attn_bias = 1;
    return mt_decoder_bind(m, err);
}

static int qwen3_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    MT_TRY(mt_decoder_rope_source(m, MT_ROPE_PARAMS, 0, err));   /* reads transformers-5 rope_parameters */
    m->hp.qk_norm = 1;
    return mt_decoder_bind(m, err);
}

const mt_family mt_family_llama = {"llama", llama_init, "the reference decoder: GQA, RoPE (llama3, yarn, linear, dynamic), layer_types sliding window"};
const mt_family mt_family_mistral = {"mistral", llama_init, "llama with a sliding window"};
const mt_family mt_family_qwen2 = {"qwen2", qwen2_init, "q/k/v biases"};
const mt_family mt_family_qwen3 = {"qwen3", qwen3_init, "per-head q/k RMSNorm"};
