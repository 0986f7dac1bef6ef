/* vlm.h - a vision-language model folder: vision tower + connector in front
 * of a text decoder of model.h (the same decoder families mlx-gen runs).
 *
 * mt_vlm_load() reads config.json; its model_type picks the family through
 * the VLM registry (lib/models/vlm.c).  The family binds its vision tower and
 * connector, and loads the text decoder with mt_model_load_text.  Encoding an
 * image gives the rows that replace its image tokens' embeddings (what the
 * reference scatters into the sequence), ready for mt_gen_params.inject.
 * ref: mlx_vlm/models/<family>/<family>.py (get_input_embeddings) */
#ifndef MT_VLM_H
#define MT_VLM_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/pool.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "models/model.h"

typedef struct mt_vlm mt_vlm;

typedef struct mt_vlm_family {
    const char *model_type;
    const char *placeholder;   /* what the chat template writes for an image ("<image>") */
    int image_first;           /* a prompt's images go before its text in the user message (mlx-vlm's
                                  LIST_WITH_IMAGE_FIRST), else after (LIST_WITH_IMAGE) */
    int  (*init)(mt_vlm *v, mt_err *err);
    /* n preprocessed images (C x h x w float32 each, channels first) -> rows[n_tokens, text hidden] */
    int  (*encode)(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *rows, mt_err *err);
    /* the vision tower's last hidden states alone (before the connector): out[n, patches, vision hidden] */
    int  (*tower)(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *out, mt_err *err);
    /* how many rows encode gives for n images of h x w */
    size_t (*n_rows)(const mt_vlm *v, size_t n, int h, int w);
    void (*free)(mt_vlm *v);
} mt_vlm_family;

struct mt_vlm {
    char model_type[64];
    char dir[4096];
    const mt_vlm_family *fam;
    mt_model *lm;              /* the text decoder (owned) */
    int32_t image_token_id;    /* the token whose embeddings the image rows replace */
    int add_special;           /* the prompt is tokenized with the tokenizer's special tokens (its
                                  post-processor, e.g. <bos>): mlx-vlm's should_add_special_tokens,
                                  true but for gemma3 with a processor chat template, which mlx-vlm's
                                  Gemma3Processor never has (so a Gemma 3 prompt starts <bos><bos>) */
    int image_token_prompt;    /* mlx-vlm's PROMPT_WITH_IMAGE_TOKEN (PaliGemma): no chat template; the
                                  prompt is the placeholder per image + the text, and after expansion
                                  the bos token goes right after the last image token and "\n" at the
                                  end (PaliGemmaProcessor); one image per record */
    int32_t vision_start_id;   /* M-RoPE families (the text decoder's mrope set): the token that opens
                                  an image (<|vision_start|>), which get_rope_index looks for */
    size_t text_hidden;
    mt_config *cfg;            /* the folder's config.json (owned) */
    mt_safetensors *st;        /* its tensors, plain names (owned; the decoder has its own view) */
    mt_pool *pool;             /* borrowed */
    void *state;               /* the family's */
};

/* 1 when config.json's model_type is a VLM family we run (dir a folder). */
const mt_vlm_family *mt_vlm_family_find(const char *model_type);
size_t mt_vlm_family_count(void);
const mt_vlm_family *mt_vlm_family_at(size_t i);

int  mt_vlm_load(mt_vlm **out, const char *dir, mt_pool *pool, mt_err *err);
void mt_vlm_free(mt_vlm *v);

/* rows for n images of C x h x w; *rows malloc'd [*n_rows, text_hidden] */
int mt_vlm_encode(mt_vlm *v, const float *pixels, size_t n, int h, int w, float **rows, size_t *n_rows, mt_err *err);

/* The tower alone (tests, tools): out sized as the family's tower gives. */
int mt_vlm_tower(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *out, mt_err *err);

#endif
