/* request.h - a generation request read from one JSONL record, and its answer.
 *
 * Two record forms:
 *   native:  {"id", "prompt"|"text"|"messages", options...}  ->
 *            {"id", "text", "finish_reason", "prompt_tokens", "completion_tokens",
 *             "prefill_tps", "decode_tps"[, "cached_tokens"]} (the last three left out
 *            when req.reproducible)
 *   OpenAI Batch API request lines: {"custom_id", "method", "url": "/v1/chat/completions"
 *            (or "/v1/completions"), "body": {"messages"|"prompt", options...}}  ->
 *            the Batch API output line {"id", "custom_id", "response": {"status_code",
 *            "request_id", "body": chat.completion | text_completion}, "error": null}
 * Options (top level for native records, in "body" for OpenAI lines), each
 * overriding the command line: max_tokens (max_completion_tokens), temperature
 * (temp), top_p, top_k, min_p, min_tokens_to_keep, xtc_probability,
 * xtc_threshold, repetition_penalty, repetition_context_size, presence_penalty,
 * presence_context_size, frequency_penalty, frequency_context_size, logit_bias
 * ({"id": bias}), seed, stop (a string or a list of strings), max_kv_size,
 * prefill_step_size, ids (token ids instead of text: no tokenizer, no template),
 * prompt_cache (a KV-state file to continue from), save_prompt_cache (where
 * to write the KV state after the prompt), save_prompt_cache_after ("prompt" or "generation":
 * the prompt and the generated tokens), num_draft_tokens and prompt_lookup (speculative
 * decoding, gen/speculative.h; 0 = off; native answers then add draft_tokens and
 * accepted_tokens unless reproducible); native records
 * also take return_ids (bool) and logprobs (K: the top-K alternatives of each
 * generated token, as "logprobs": [{"id", "logprob", "top": [[id, logprob]...]}]). */
#ifndef MT_REQUEST_H
#define MT_REQUEST_H

#include <jansson.h>
#include "gen/generate.h"
#include "text/prompter.h"

typedef struct mt_gen_request {
    mt_gen_params gp;          /* defaults + this record's options */
    json_t *prompt_rec;        /* borrowed: the object holding prompt/messages */
    int openai;                /* 1 chat, 2 completions, 0 native */
    int return_ids;            /* native: add "ids" (the generated token ids) to the answer */
    const char *custom_id;     /* borrowed */
    int reproducible;          /* leave out what depends on the run, not the record: prefill_tps,
                                  decode_tps, cached_tokens (OpenAI: created, prompt_tokens_details) */
    /* owned storage behind gp's pointers */
    mt_embed_inject *inject;   /* image rows (multimodal jobs): one malloc'd block, the rows after the struct */
    char **stop;
    int32_t *bias_ids;
    float *bias_vals;
    struct mt_gen_grammars *grammars;  /* holds gp.grammar (released with the request) */
} mt_gen_request;

/* Fill req from rec over the defaults (copied).  rec stays borrowed. */
int mt_gen_request_parse(mt_gen_request *req, json_t *rec, const mt_gen_params *defaults, int return_ids,
                         mt_err *err);
void mt_gen_request_free(mt_gen_request *req);

/* The output object for a finished request (line_no makes OpenAI ids unique). */
json_t *mt_gen_request_answer(const mt_gen_request *req, const mt_gen_result *res, const char *model_name,
                              size_t line_no);

/* What the JSONL handlers below need. */
typedef struct mt_gen_job {
    mt_model *model;
    const mt_prompter *pr;
    const char *model_name;
    mt_gen_params defaults;
    int add_generation_prompt;   /* default for "messages" records */
    int return_ids;              /* default for "return_ids" */
    /* prompt caches (gen/pcache.h): records may name "prompt_cache" / "save_prompt_cache" */
    struct mt_gen_caches *caches;      /* NULL: those fields are refused */
    const char *prompt_cache;          /* --prompt-cache FILE: the default "prompt_cache" */
    const char *save_cache;            /* --save-prompt-cache: a file (one record) or, with save_dir, a
                                          folder of <id>.kv.zst files */
    int save_dir;
    int save_level;                    /* zstd level of saved caches (default 3) */
    int save_after_generation;         /* default "save_prompt_cache_after": 1 "generation", 0 "prompt" */
    size_t saved;                      /* records saved to save_cache (a file takes one) */
    int reproducible;                  /* --reproducible: answers without run-dependent fields
                                          (mt_gen_request.reproducible) */
    int score_kv_f16;                  /* --score: KV rows f16 (1), f32 (0), or -1: f32 (quantized: the model's) */
    /* multimodal models (gen/vlm_job.h): turns a record holding images into its ids and the rows
     * of its image tokens (*inj one malloc'd block, its rows after it; NULL for a record without images);
     * NULL: text only.  Prompt caches do not combine with images. */
    int (*media)(void *user, const mt_prompter *pr, json_t *rec, int agp, int32_t **ids, size_t *n,
                 mt_embed_inject **inj, mt_err *err);
    void *media_user;
    size_t batch;                      /* mt_gen_stream_handler: sequences decoding together (0: 1) */
    struct mt_gen_grammars *grammars;  /* structured output (gen/structured.h); NULL: refused */
    size_t gram_answers, gram_ended, gram_valid, gram_tokens;   /* answers under a grammar, those it
                                          ended (eos), those the automaton accepts, their tokens */
    double gram_s, gram_decode_s;      /* time masking, and those answers' decode time */
    size_t decode_steps, decode_rows;  /* mt_gen_stream_handler counts its batched decode steps and the
                                          sequences they advanced (mean batch = rows / steps) */
} mt_gen_job;

/* What a record runs: its ids (after the cached prefix of its "prompt_cache" or the job's
 * --prompt-cache, set in req->gp.prefix), and in *save (malloc'd, or NULL) where its state
 * goes ("save_prompt_cache" or the job's --save-prompt-cache; req->gp.snapshot set). */
int mt_gen_record_prepare(mt_gen_job *j, json_t *rec, size_t lineno, mt_gen_request *req, int32_t **ids, size_t *n,
                          char **save, mt_err *err);
/* Count a finished record's structured-output figures into the job (j->gram_*). */
void mt_gen_record_tally(mt_gen_job *j, const mt_gen_request *req, const mt_gen_result *res);
/* Write a finished record's state after its prompt to path. */
int mt_gen_record_save(mt_gen_job *j, const char *path, const mt_gen_result *res, mt_err *err);

/* mt_batch_fn for generation: the records of one batch decode together. */
void mt_gen_batch_handler(void *job, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                          mt_err *errs);
/* mt_stream_fn for generation with continuous batching (gen/cbatch.c): up to j->batch records
 * decode together, and a finished record's slot takes the next record at once. */
int mt_gen_stream_handler(void *job, mt_jsonl_stream *s, mt_err *err);
/* --batch auto: 16, or fewer when that many KV caches of full-length sequences (prompt + max_tokens,
 * within the model's context) would not fit in half of mem_available bytes (0: unknown); >= 1. */
size_t mt_gen_batch_auto(const mt_model *m, const mt_gen_params *gp, size_t mem_available);
/* mt_batch_fn for --score: {"text"|"prompt"|"messages"|"ids"} -> {"n", "ids", "logprobs" (for
 * tokens 2..n, each given its prefix), "sum", "ppl" (null past a double)}; non-finite logits fail the
 * record ("model produced non-finite logits at token N ..."). */
void mt_score_handler(void *job, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                      mt_err *errs);

#endif
