/* generate.h - one sequence's generation loop: prefill, sample, stop.
 * ref: mlx_lm/generate.py (generate_step, stream_generate). */
#ifndef MT_GENERATE_H
#define MT_GENERATE_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "gen/sample.h"
#include "models/model.h"
#include "text/tokenizer.h"

typedef struct mt_gen_params {
    int max_tokens;                 /* default 256 (mlx_lm.generate CLI: 100) */
    mt_sampler_params sp;
    const char *const *stop;        /* stop strings (not emitted), may be NULL */
    size_t n_stop;
    const int32_t *eos; size_t n_eos;  /* end-of-sequence ids (not emitted) */
    int prefill_step;               /* tokens per prefill chunk, default 512 */
    int trim_first_space;           /* drop one leading space of the text (mlx-lm BPE detokenizer) */
} mt_gen_params;

typedef struct mt_gen_result {
    char *text;                     /* malloc'd, NUL-terminated */
    size_t text_len;
    int32_t *tokens;                /* generated ids (malloc'd), eos excluded */
    size_t n_tokens;
    const char *finish_reason;      /* "stop" or "length" (static string) */
    size_t prompt_tokens;
    double prefill_s, decode_s;
} mt_gen_result;

/* Called with each new piece of text as soon as it is final (UTF-8 complete,
 * not part of a possible stop string).  Return non-zero to abort. */
typedef int (*mt_gen_text_fn)(void *user, const char *piece, size_t len);

void mt_gen_params_default(mt_gen_params *p);
int mt_generate(mt_model *m, const mt_tokenizer *tok, const int32_t *prompt, size_t n_prompt,
                const mt_gen_params *gp, mt_gen_text_fn on_text, void *user, mt_gen_result *res, mt_err *err);
void mt_gen_result_free(mt_gen_result *r);

#endif
