/* fuzz_vlm_record.c - libFuzzer target: mlx-vlm's record parser (gen/vlm_job.h) on the
 * tiny SmolVLM folder: "image" fields, OpenAI content parts, messages, the chat template
 * with image parts, the placeholder expansion and the count checks.  Invariants: a failure
 * leaves no ids and no rows; a success has exactly as many image rows as image tokens.
 * Run from the repository root (the model folder is tests/data/vlm/smolvlm-tiny). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "gen/vlm_job.h"
#include "models/vlm.h"
#include "text/prompter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static mt_vlm *vlm;
static mt_prompter *pr;
static mt_vlm_job *job;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mt_err err;
    if (!job) {
        const char *dir = "tests/data/vlm/smolvlm-tiny";
        if (mt_vlm_load(&vlm, dir, NULL, &err) || mt_prompter_open(&pr, dir, &err) ||
            mt_vlm_job_new(&job, vlm, 16, &err))
            abort();
        mt_image_opts o = {.max_pixels = 1u << 22, .max_bytes = 1u << 20};
        mt_vlm_job_set_image_opts(job, &o);
        static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        mt_vlm_job_set_stdin_image(job, png_sig, sizeof png_sig);   /* "-": a cut PNG */
    }
    if (size > (1u << 16)) return 0;
    json_t *rec = json_loadb((const char *)data, size, 0, NULL);
    if (!json_is_object(rec)) {
        json_decref(rec);
        return 0;
    }
    int32_t *ids = NULL;
    size_t n = 0;
    mt_embed_inject *inj = NULL;
    int rc = mt_vlm_job_record(job, pr, rec, 1, &ids, &n, &inj, &err);
    if (rc != MT_OK) {
        if (ids || n || inj) abort();
    } else {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += ids[i] == vlm->image_token_id;
        /* every "<image>" of the rendered text is an image's place, so image tokens come
         * from the expansions alone */
        if (k != (inj ? inj->n : 0)) abort();
    }
    free(ids);
    free(inj);
    json_decref(rec);
    return 0;
}
