/* vlm_job.h - the image side of a generation job (mlx-vlm): a record's images
 * turned into the placeholders of its prompt and the rows of its image tokens.
 *
 * Record forms (top level of native records, "body" of OpenAI Batch lines):
 *   {"image": IMG | [IMG...], "prompt": TEXT}   a user message of the images and the
 *       text (the family's order: SmolVLM images first), rendered with the chat
 *       template, as mlx_vlm.generate builds its prompt;
 *   {"messages": [...]} whose content parts may be {"type": "image_url",
 *       "image_url": {"url": IMG}} (or "image_url": IMG), {"type": "image", "image": IMG}
 *       or {"type": "input_image", "image_url": IMG}: each becomes the template's image
 *       part in place; an "image" field beside "messages" adds its images to the last
 *       user message (before or after its text as above).
 * IMG is a file path, a data:image/...;base64 URL, a bare base64 string, or "-" for
 * the bytes given as stdin_image (--image -).  http(s) URLs are refused (no network).
 *
 * The rendered prompt's placeholders are replaced, in order, by each image's text
 * (image/processor.h: tiles, rows, the global image), the result is tokenized, and the
 * images are preprocessed and encoded (models/vlm.h).  An image whose decoded pixels
 * were encoded before (same bytes, by a 64-bit hash of the pixels and size) is not
 * encoded again: the job keeps up to cache_mb of rows.
 * Errors name the image ("image 2 (photo.jpg): ...") and the mismatch between
 * placeholders and images. */
#ifndef MT_VLM_JOB_H
#define MT_VLM_JOB_H

#include <jansson.h>
#include "core/err.h"
#include "image/image.h"
#include "image/processor.h"
#include "models/vlm.h"
#include "text/prompter.h"

typedef struct mt_vlm_job mt_vlm_job;

/* v borrowed; the processor settings are read from v's folder. */
int  mt_vlm_job_new(mt_vlm_job **out, mt_vlm *v, double cache_mb, mt_err *err);
void mt_vlm_job_free(mt_vlm_job *j);
/* The bytes "-" stands for (borrowed; NULL: "-" is refused). */
void mt_vlm_job_set_stdin_image(mt_vlm_job *j, const void *data, size_t n);
/* image decoding options (pixel limit) */
void mt_vlm_job_set_image_opts(mt_vlm_job *j, const mt_image_opts *o);
/* How many images were encoded, and how many were found in the cache. */
void mt_vlm_job_counts(const mt_vlm_job *j, size_t *encoded, size_t *reused);

/* The mt_gen_job.media hook (user = the mt_vlm_job). */
int mt_vlm_job_record(void *user, const mt_prompter *pr, json_t *rec, int agp, int32_t **ids, size_t *n,
                      mt_embed_inject **inj, mt_err *err);

#endif
