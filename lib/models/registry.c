/* registry.c - the one table of model families, keyed by config.json model_type. */
#include <string.h>
#include "models/model.h"

extern const mt_family mt_family_llama, mt_family_mistral, mt_family_qwen2, mt_family_qwen3, mt_family_gemma,
    mt_family_gemma2, mt_family_gemma3_text, mt_family_phi3, mt_family_granite, mt_family_olmo2, mt_family_starcoder2,
    mt_family_smollm3, mt_family_mixtral, mt_family_qwen3_moe;

static const mt_family *const families[] = {
    &mt_family_llama,
    &mt_family_mistral,
    &mt_family_qwen2,
    &mt_family_qwen3,
    &mt_family_gemma,
    &mt_family_gemma2,
    &mt_family_gemma3_text,
    &mt_family_phi3,
    &mt_family_granite,
    &mt_family_olmo2,
    &mt_family_starcoder2,
    &mt_family_smollm3,
    &mt_family_mixtral,
    &mt_family_qwen3_moe,
};

const mt_family *mt_family_find(const char *model_type) {
    for (size_t i = 0; i < sizeof families / sizeof *families; i++)
        if (strcmp(families[i]->model_type, model_type) == 0) return families[i];
    return NULL;
}

size_t mt_family_count(void) { return sizeof families / sizeof *families; }

const mt_family *mt_family_at(size_t i) { return i < mt_family_count() ? families[i] : NULL; }
