/* encoders.c - the table of encoder families, keyed by config.json model_type. */
#include <string.h>
#include "models/encoder.h"

extern const mt_encoder_family mt_encoder_family_bert, mt_encoder_family_roberta, mt_encoder_family_xlm_roberta,
    mt_encoder_family_nomic_bert, mt_encoder_family_modernbert, mt_encoder_family_qwen3,
    mt_encoder_family_gemma3_text;

static const mt_encoder_family *const families[] = {
    &mt_encoder_family_bert,
    &mt_encoder_family_roberta,
    &mt_encoder_family_xlm_roberta,
    &mt_encoder_family_nomic_bert,
    &mt_encoder_family_modernbert,
    &mt_encoder_family_qwen3,
    &mt_encoder_family_gemma3_text,
};

const mt_encoder_family *mt_encoder_family_find(const char *model_type) {
    for (size_t i = 0; i < sizeof families / sizeof *families; i++)
        if (strcmp(families[i]->model_type, model_type) == 0) return families[i];
    return NULL;
}
