/* registry.c - the one table of model families, keyed by config.json model_type. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "models/model.h"

extern const mt_family mt_family_llama, mt_family_mistral, mt_family_qwen2, mt_family_qwen3, mt_family_gemma,
    mt_family_gemma2, mt_family_gemma3_text, mt_family_gemma4_text, mt_family_gemma4, mt_family_phi3, mt_family_granite, mt_family_olmo2, mt_family_starcoder2,
    mt_family_smollm3, mt_family_mixtral, mt_family_qwen3_moe;
/* gated DeltaNet (linear attention with recurrent state) + gated attention: qwen3_next.c */
extern const mt_family mt_family_qwen3_next, mt_family_qwen3_5, mt_family_qwen3_5_moe;
/* dense llama variants from switches, group A (dense_a.c) */
extern const mt_family mt_family_phi, mt_family_cohere, mt_family_cohere2, mt_family_internlm2, mt_family_internlm3,
    mt_family_glm4, mt_family_exaone4, mt_family_ernie4_5, mt_family_olmo3, mt_family_minicpm, mt_family_exaone,
    mt_family_helium, mt_family_glm, mt_family_olmo;
/* multi-head latent attention and the DeepSeek-style mixture of experts (deepseek.c) */
extern const mt_family mt_family_deepseek_v3, mt_family_kimi_k2, mt_family_deepseek_v2, mt_family_glm4_moe,
    mt_family_dots1, mt_family_minicpm3, mt_family_mistral4, mt_family_deepseek;
/* mixture of experts: the router's options (moe.c, moe_fwd.c) */
extern const mt_family mt_family_qwen2_moe, mt_family_olmoe, mt_family_granitemoe, mt_family_phimoe,
    mt_family_ernie4_5_moe, mt_family_bailing_moe, mt_family_hunyuan, mt_family_hunyuan_v1_dense,
    mt_family_minimax, mt_family_llama4_text, mt_family_dbrx;
/* GPT-style dense decoders (dense_b.c) */
extern const mt_family mt_family_gpt_neox, mt_family_stablelm, mt_family_gpt2, mt_family_gpt_bigcode, mt_family_gptj,
    mt_family_nemotron, mt_family_seed_oss, mt_family_apertus,
    mt_family_bitnet, mt_family_nanochat, mt_family_openelm;
/* attention sinks + biased-router experts with the clamped SwiGLU */
extern const mt_family mt_family_gpt_oss;
/* recurrent-state mixers (short convolution, Mamba, Mamba-2) and their hybrids */
extern const mt_family mt_family_lfm2, mt_family_mamba2, mt_family_mamba, mt_family_falcon_mamba, mt_family_nemotron_h,
    mt_family_falcon_h1, mt_family_granitemoehybrid, mt_family_jamba;
/* lfm2's hybrid with the built-in MoE (sigmoid router, selection bias) */
extern const mt_family mt_family_lfm2_moe;
/* attention over short-convolved keys/values (per-sequence state) */
extern const mt_family mt_family_baichuan_m1;
/* several residual streams (AltUp), per-layer inputs, KV-shared layers: a forward of its own */
extern const mt_family mt_family_gemma3n;

static const mt_family *const families[] = {
    &mt_family_llama,
    &mt_family_mistral,
    &mt_family_qwen2,
    &mt_family_qwen3,
    &mt_family_gemma,
    &mt_family_gemma2,
    &mt_family_gemma3_text,
    &mt_family_gemma4_text,
    &mt_family_gemma4,
    &mt_family_phi3,
    &mt_family_granite,
    &mt_family_olmo2,
    &mt_family_starcoder2,
    &mt_family_smollm3,
    &mt_family_mixtral,
    &mt_family_qwen3_moe,
    /* gated DeltaNet */
    &mt_family_qwen3_next,
    &mt_family_qwen3_5,
    &mt_family_qwen3_5_moe,
    /* dense llama variants from switches, group A (dense_a.c) */
    &mt_family_phi,
    &mt_family_cohere,
    &mt_family_cohere2,
    &mt_family_internlm2,
    &mt_family_internlm3,
    &mt_family_glm4,
    &mt_family_exaone4,
    &mt_family_ernie4_5,
    &mt_family_olmo3,
    &mt_family_minicpm,
    &mt_family_exaone,
    &mt_family_helium,
    &mt_family_glm,
    &mt_family_olmo,
    /* multi-head latent attention and the DeepSeek-style mixture of experts */
    &mt_family_deepseek_v3,
    &mt_family_kimi_k2,
    &mt_family_deepseek_v2,
    &mt_family_glm4_moe,
    &mt_family_dots1,
    &mt_family_minicpm3,
    &mt_family_mistral4,
    &mt_family_deepseek,
    /* mixture of experts: the router's options (moe.c, moe_fwd.c) */
    &mt_family_qwen2_moe,
    &mt_family_olmoe,
    &mt_family_granitemoe,
    &mt_family_phimoe,
    &mt_family_ernie4_5_moe,
    &mt_family_bailing_moe,
    &mt_family_hunyuan,
    &mt_family_hunyuan_v1_dense,
    &mt_family_minimax,
    &mt_family_llama4_text,
    &mt_family_dbrx,
    /* GPT-style dense decoders: parallel blocks, learned positions, renamed tensors (dense_b.c) */
    &mt_family_gpt_neox,
    &mt_family_stablelm,
    &mt_family_gpt2,
    &mt_family_gpt_bigcode,
    &mt_family_gptj,
    &mt_family_nemotron,
    &mt_family_seed_oss,
    &mt_family_apertus,
    &mt_family_bitnet,
    &mt_family_nanochat,
    &mt_family_openelm,
    /* attention sinks + biased-router experts with the clamped SwiGLU */
    &mt_family_gpt_oss,
    /* recurrent-state mixers (short convolution, Mamba, Mamba-2) and their hybrids */
    &mt_family_lfm2,
    &mt_family_mamba2,
    &mt_family_mamba,
    &mt_family_falcon_mamba,
    &mt_family_nemotron_h,
    &mt_family_falcon_h1,
    &mt_family_granitemoehybrid,
    &mt_family_jamba,
    /* lfm2's hybrid with the built-in MoE (sigmoid router, selection bias) */
    &mt_family_lfm2_moe,
    /* attention over short-convolved keys/values (per-sequence state) */
    &mt_family_baichuan_m1,
    /* several residual streams (AltUp), per-layer inputs, KV-shared layers: a forward of its own */
    &mt_family_gemma3n,
};

const mt_family *mt_family_find(const char *model_type) {
    for (size_t i = 0; i < sizeof families / sizeof *families; i++)
        if (strcmp(families[i]->model_type, model_type) == 0) return families[i];
    return NULL;
}

size_t mt_family_count(void) { return sizeof families / sizeof *families; }

const mt_family *mt_family_at(size_t i) { return i < mt_family_count() ? families[i] : NULL; }

/* Edit distance of a and b (case-folded, '-' as '_'), capped at 64 characters. */
static size_t edit_distance(const char *a, const char *b) {
    size_t n = strlen(a), m = strlen(b);
    if (n > 64) n = 64;
    if (m > 64) m = 64;
    size_t prev[65], cur[65];
    for (size_t j = 0; j <= m; j++) prev[j] = j;
    for (size_t i = 1; i <= n; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= m; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            if (ca == '-') ca = '_';
            if (cb == '-') cb = '_';
            size_t d = prev[j - 1] + (ca != cb), up = prev[j] + 1, left = cur[j - 1] + 1;
            cur[j] = d < up ? (d < left ? d : left) : (up < left ? up : left);
        }
        memcpy(prev, cur, (m + 1) * sizeof *prev);
    }
    return prev[m];
}

/* The leading letters of a name ("qwen" of "qwen3_next", "deepseek" of "deepseek_v3"). */
static size_t stem_len(const char *s) {
    size_t i = 0;
    while (s[i] && isalpha((unsigned char)s[i])) i++;
    return i;
}

size_t mt_family_nearest(const char *model_type, const char **out, size_t n) {
    size_t nf = mt_family_count(), k = 0;
    size_t *score = malloc(nf * sizeof *score);
    if (!score) return 0;
    size_t sl = stem_len(model_type);
    for (size_t i = 0; i < nf; i++) {
        const char *f = families[i]->model_type;
        size_t fl = stem_len(f);
        int same_stem = sl >= 3 && fl == sl && !strncmp(f, model_type, sl);
        score[i] = edit_distance(model_type, f) + (same_stem ? 0 : 100);
    }
    for (; k < n && k < nf; k++) {   /* selection of the n best, stable on the registry's order */
        size_t best = SIZE_MAX;
        for (size_t i = 0; i < nf; i++)
            if (score[i] != SIZE_MAX && (best == SIZE_MAX || score[i] < score[best])) best = i;
        if (best == SIZE_MAX) break;
        out[k] = families[best]->model_type;
        score[best] = SIZE_MAX;
    }
    free(score);
    return k;
}
