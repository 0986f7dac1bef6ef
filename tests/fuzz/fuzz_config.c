/* fuzz_config.c - libFuzzer target: config.json parsing, typed getters and the
 * quantization rules on arbitrary text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_err err;
    mt_config *c = NULL;
    if (mt_config_parse(&c, (const char *)data, size, "fuzz", &err) != MT_OK) return 0;
    static const char *const keys[] = {"hidden_size", "text_config.hidden_size", "layer_types.0", "a.b.c",
                                       "quantization.bits", "rope_theta", "tie_word_embeddings", "x..y", ""};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        long long v;
        double d;
        int b;
        mt_config_get_int(c, keys[i], 0, &v, &err);
        mt_config_get_float(c, keys[i], 0, &d, &err);
        mt_config_get_bool(c, keys[i], 0, &b, &err);
        mt_config_get_str(c, keys[i], NULL);
    }
    mt_config_model_type(c);
    int q;
    mt_quant_params qp;
    mt_config_quant_default(c, &q, &qp, &err);
    mt_config_quant_for(c, NULL, "model.layers.0.mlp.down_proj", &q, &qp, &err);
    /* every key of the quantization blocks as a module path */
    static const char *const blocks[] = {"quantization", "quantization_config"};
    for (int k = 0; k < 2; k++) {
        json_t *blk = json_object_get(mt_config_json(c), blocks[k]);
        const char *key;
        json_t *val;
        if (json_is_object(blk))
            json_object_foreach(blk, key, val) {
                if (mt_config_quant_for(c, NULL, key, &q, &qp, &err) == MT_OK && q &&
                    mt_quant_params_check(&qp, NULL) != MT_OK)
                    abort();   /* reported params are always valid */
            }
    }
    mt_config_free(c);
    return 0;
}
