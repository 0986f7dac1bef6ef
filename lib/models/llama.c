/* llama.c - the llama family and its close relatives that differ only in
 * hyper-parameters: llama (Llama 2/3.x, SmolLM2, TinyLlama), mistral (mlx-lm
 * maps it to llama), qwen2 (q/k/v bias), qwen3 (per-head q/k RMSNorm).
 * ref: mlx_lm/models/llama.py, qwen2.py, qwen3.py. */
#include "models/model.h"

#include <jansson.h>
#include <string.h>

/* Sliding-window attention applies only to layers that "layer_types" marks
 * "sliding_attention" (as in mlx-lm; a bare "sliding_window" changes nothing). */
static int llama_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    json_t *c = mt_config_json(m->cfg);
    json_t *lt = json_object_get(c, "layer_types"), *sw = json_object_get(c, "sliding_window");
    if (lt && !json_is_null(lt) && (!json_is_array(lt) || json_array_size(lt) != (size_t)m->hp.n_layers))
        return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\" must list %d layers", m->hp.n_layers);
    MT_TRY(mt_decoder_bind(m, err));
    for (int i = 0; json_is_array(lt) && i < m->hp.n_layers; i++) {
        json_t *t = json_array_get(lt, (size_t)i);
        if (!json_is_string(t)) return mt_seterr(err, MT_EFORMAT, "config.json: \"layer_types\"[%d] is not a string", i);
        m->layers[i].sliding = !strcmp(json_string_value(t), "sliding_attention");
        if (m->layers[i].sliding && !(json_is_integer(sw) && json_integer_value(sw) > 0))
            return mt_seterr(err, MT_EFORMAT, "config.json: sliding layers need a positive \"sliding_window\"");
    }
    if (json_is_integer(sw) && json_integer_value(sw) > 0) m->hp.sliding_window = (int)json_integer_value(sw);
    return MT_OK;
}

static int qwen2_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    m->hp.attn_bias = 1;
    return mt_decoder_bind(m, err);
}

static int qwen3_init(mt_model *m, mt_err *err) {
    MT_TRY(mt_decoder_read_hp(m, err));
    m->hp.qk_norm = 1;
    return mt_decoder_bind(m, err);
}

const mt_family mt_family_llama = {"llama", llama_init};
const mt_family mt_family_mistral = {"mistral", llama_init};
const mt_family mt_family_qwen2 = {"qwen2", qwen2_init};
const mt_family mt_family_qwen3 = {"qwen3", qwen3_init};
