/* job.h - mlx-embed's record handlers for the batched JSONL loop
 * (mt_jsonl_run_batch): {"text"} -> {"embedding": [...]} (or {"row": N} with
 * the vector appended to a matrix file, or {"ids": [...]} with --tokens), and
 * {"query", "documents"} -> {"scores": [...]} for cross-encoders.
 *
 * A record whose vector or scores hold a NaN or an infinity fails with
 * "model produced non-finite values (corrupt weights?)"; the run goes on.
 * A failure to write the matrix is fatal: the handler sets job->fatal and
 * job->fatal_err and fails the records of that batch (and of any later batch,
 * without running the model) with MT_EFATAL, which ends the record loop. */
#ifndef MT_EMBED_JOB_H
#define MT_EMBED_JOB_H

#include <stddef.h>
#include <jansson.h>
#include "core/err.h"
#include "core/pool.h"
#include "embed/embed.h"

typedef struct mt_embed_job {
    /* set by the caller (mt_embed_job_init fills prefix and dims) */
    mt_embedder *m;          /* borrowed */
    mt_pool *pool;           /* borrowed: texts are tokenized over it (may be NULL) */
    const char *prefix;      /* prepended to every text; borrowed, may be NULL */
    size_t dims;             /* output dimensions, 1..m->dim: the first dims, re-normalized */
    size_t batch_tokens;     /* tokens per forward batch (at least one sequence per batch) */
    int tokens_only;         /* answer {"ids"} and run no model */
    mt_npy *npy;             /* borrowed; non-NULL: vectors go there, answers carry "row" */
    /* state */
    size_t next_row;         /* the next matrix row */
    int fatal;               /* writing the matrix failed */
    mt_err fatal_err;
} mt_embed_job;

/* Resolve the text prefix and the output dimensions of a job whose m is set:
 * prefix (if non-NULL) wins, else prompt_name's prompt (MT_EUSAGE when the
 * model has none of that name), else the model's default prompt; dims 0 means
 * the model's (MT_EUSAGE above it). */
int mt_embed_job_init(mt_embed_job *j, const char *prompt_name, const char *prefix, size_t dims, mt_err *err);

/* mt_batch_fn handlers; user is the mt_embed_job. */
void mt_embed_batch(void *user, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                    mt_err *errs);
void mt_rerank_batch(void *user, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                     mt_err *errs);

/* One rerank record: {"query", "documents": [strings]} -> {"scores": [...]} in
 * document order (a number per document, or a list for several labels), plus
 * "truncated": true when a pair was cut to max_seq.  Errors: MT_EINVAL for a
 * malformed record, MT_EUNSUPPORTED without a classification head, MT_EFORMAT
 * for non-finite scores. */
int mt_rerank_record(mt_embed_job *j, json_t *rec, json_t **out, mt_err *err);

/* MT_OK when v[0..n) are all finite, else MT_EFORMAT with the message above. */
int mt_embed_check_finite(const float *v, size_t n, mt_err *err);

#endif
