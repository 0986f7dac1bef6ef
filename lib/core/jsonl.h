/* jsonl.h - the record loop every program shares.
 *
 * Reads one JSON object per line (or, in text mode, one plain-text record per
 * line, seen by the handler as {"text": line}), calls the handler, and writes
 * one JSON object per line: the handler's output with "id" first.  "id" is the
 * record's own "id" (any JSON value) or, when absent, its 1-based line number
 * (a handler that puts "id" in its output overrides it).
 * A record that cannot be parsed or whose handler fails yields
 *   {"id": ..., "error": "line N: message"}
 * on the output and "prog: line N: message" on the error stream, and the run
 * goes on.  Blank lines are skipped.  Progress (records/s, ETA) is drawn on the
 * error stream only when it is a terminal and quiet is off. */
#ifndef MT_JSONL_H
#define MT_JSONL_H

#include <stdio.h>
#include <jansson.h>
#include "core/err.h"

/* Handler: fill *out with a new object (ownership passes to the loop) or
 * return non-zero with err set.  rec is borrowed.  MT_EFATAL (for any record
 * of a batch) ends the run: that batch's answers are not written and the loop
 * returns MT_EFATAL with the record's message (e.g. the output file cannot be
 * written: going on would only fail every later record). */
typedef int (*mt_record_fn)(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err);

/* Progress inside long records: a handler given the loop's tick (through its
 * own context) calls mt_jsonl_tick_note(tick, "line 5: 812 tokens") as it goes;
 * the note is shown after the record counts on the progress line (at most
 * every 0.25 s) while progress is drawn, and is a no-op otherwise. */
typedef struct mt_jsonl_tick {
    void (*fn)(void *ctx, const char *text);
    void *ctx;
} mt_jsonl_tick;
void mt_jsonl_tick_note(const mt_jsonl_tick *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

typedef struct mt_jsonl_opts {
    const char *prog;     /* program name for stderr lines */
    int text_mode;        /* --text: each line is a plain-text record */
    int quiet;            /* -q: no progress, no per-record stderr lines */
    size_t max_line;      /* bytes; 0 = 64 MiB */
    int real_precision;   /* significant digits of floats in the output; 0 = 17 (round-trips doubles) */
    /* optional (--resume): called for every record in input order (rec is NULL
     * for a line that failed to parse); returns MT_SKIP_RUN, MT_SKIP_ANSWERED
     * (passed over silently, counted in stats.skipped) or MT_SKIP_DUPLICATE (its
     * key was already seen in this input: not run, nothing written, "line N:
     * <why>" on the error stream, counted in stats.failed and stats.duplicates) */
    int (*skip)(void *skip_user, json_t *id, json_t *rec, size_t lineno, mt_err *why);
    void *skip_user;
    /* optional: set by the loop while it runs (fn NULL when no progress is drawn)
     * and cleared when it returns */
    mt_jsonl_tick *tick;
    /* --shard K/N (shard_n 0 = off): only the records whose 0-based position
     * among the input's records (non-blank lines; every line in text mode) is
     * K mod N are handled; the others are passed over unparsed, write nothing
     * and are counted in stats.other_shards.  Line numbers (and so default
     * ids) stay those of the whole input. */
    size_t shard_k, shard_n;
} mt_jsonl_opts;

enum { MT_SKIP_RUN = 0, MT_SKIP_ANSWERED = 1, MT_SKIP_DUPLICATE = 2 };

typedef struct mt_jsonl_stats {
    size_t records, ok, failed, skipped, duplicates, other_shards;
} mt_jsonl_stats;

/* Runs the loop to end of input.  Returns MT_OK, or non-zero with err set on a
 * fatal problem (read error, output write error).  Per-record failures are
 * counted in stats, not returned. */
int mt_jsonl_run(FILE *in, FILE *out, FILE *errf, const mt_jsonl_opts *opts,
                 mt_record_fn fn, void *user, mt_jsonl_stats *stats, mt_err *err);

/* Batch handler: records recs[0..n) (borrowed) with their line numbers; fill
 * outs[i] (ownership passes to the loop) with rcs[i] = MT_OK, or set rcs[i]
 * and errs[i].  Records that failed to parse never reach the handler. */
typedef void (*mt_batch_fn)(void *user, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                            mt_err *errs);

/* As mt_jsonl_run, but hands up to `batch` records at a time to fn; answers
 * are written in input order. */
int mt_jsonl_run_batch(FILE *in, FILE *out, FILE *errf, const mt_jsonl_opts *opts, size_t batch, mt_batch_fn fn,
                       void *user, mt_jsonl_stats *stats, mt_err *err);

/* Continuous handlers (generation with continuous batching): the handler runs its own
 * schedule, pulling records from the stream as it has room and answering each when it is
 * finished, in any order; the loop writes the answers in input order as soon as every earlier
 * record is answered (and flushes the output then).
 *   mt_jsonl_next: 1 with the next record to start (*rec borrowed until it is answered), its
 *     line number and its ticket; 0 at the end of input or after a fatal error.  Records that
 *     fail to parse, are skipped (--resume) or belong to other shards never reach the handler.
 *   mt_jsonl_done: the answer for ticket: out (stolen) with rc MT_OK, or rc and e (e may be
 *     NULL).  MT_EFATAL ends the run: nothing more is written (answers held back for earlier
 *     records included).  Returns MT_OK, or non-zero when the run cannot go on (the handler
 *     should then return; the loop reports why).
 * The handler returns MT_OK after answering every record it started, or non-zero with err set
 * (fatal). */
typedef struct mt_jsonl_stream mt_jsonl_stream;
int mt_jsonl_next(mt_jsonl_stream *s, json_t **rec, size_t *lineno, size_t *ticket);
int mt_jsonl_done(mt_jsonl_stream *s, size_t ticket, json_t *out, int rc, const mt_err *e);
typedef int (*mt_stream_fn)(void *user, mt_jsonl_stream *s, mt_err *err);
int mt_jsonl_run_stream(FILE *in, FILE *out, FILE *errf, const mt_jsonl_opts *opts, mt_stream_fn fn, void *user,
                        mt_jsonl_stats *stats, mt_err *err);

/* Write obj as one compact line (UTF-8, key order kept); real_precision as in mt_jsonl_opts. */
int mt_jsonl_write(FILE *out, json_t *obj, mt_err *err);
int mt_jsonl_write_prec(FILE *out, json_t *obj, int real_precision, mt_err *err);

/* The one builder of error records: {"id": id, "error": "line N: msg"} (no
 * "line N: " when lineno is 0), or, for an OpenAI Batch API request line (rec
 * has "custom_id" or "body"), the Batch API's failed-request shape
 *   {"id": "batch_req_N", "custom_id": ..., "response": null,
 *    "error": {"code": "invalid_request"|..., "message": "line N: msg"}}.
 * The message is made valid UTF-8 (invalid bytes become U+FFFD), so the
 * "error" field is always there.  id and rec are borrowed (either may be NULL);
 * returns a new object, NULL only when out of memory. */
json_t *mt_jsonl_error_record(json_t *id, json_t *rec, size_t lineno, int code, const char *msg);

/* A JSON string from bytes that may not be UTF-8 (file names, messages):
 * invalid bytes become U+FFFD.  New reference; NULL only when out of memory. */
json_t *mt_json_string_lossy(const char *s, size_t n);

/* --resume FILE: answers accumulate in FILE across runs, one line per record.
 *
 * The rule, the same for every program and for native and OpenAI lines:
 *  - a record's key is its "custom_id" (OpenAI lines) or its "id";
 *  - a line of FILE answers its key when its "error" is absent or null; an
 *    error line does not, so that record runs again;
 *  - mt_resume_open locks FILE (a second run on the same FILE fails at once),
 *    refuses a FILE that is this process's standard input, cuts a partial last
 *    line (a run killed mid-write), and refuses a FILE holding a line that is
 *    not a JSON object with an id;
 *  - records run in input order and their lines are appended as they finish,
 *    so a killed run loses nothing finished;
 *  - a key seen twice in the input: the later record is reported and not run;
 *  - mt_resume_close (after the run) rewrites FILE atomically to one line per
 *    key: an answer if there is one, else the latest error; keys of this input
 *    in input order, then keys FILE holds that this input lacks, in file order.
 * mt_resume_open sets *out to the append stream and *n_done to the number of
 * keys already answered. */
typedef struct mt_resume mt_resume;
int mt_resume_open(mt_resume **r, const char *path, FILE **out, size_t *n_done, mt_err *err);
int mt_resume_skip(void *r, json_t *id, json_t *rec, size_t lineno, mt_err *why);   /* for mt_jsonl_opts.skip */
/* Closes out (the stream mt_resume_open gave), compacts FILE as above, releases
 * the lock and frees r (also on failure).  r may be NULL (then out is closed). */
int mt_resume_close(mt_resume *r, FILE *out, mt_err *err);
void mt_resume_free(mt_resume *r);   /* without compaction (closes the lock) */

/* The programs' --resume glue.  mt_resume_begin: path NULL sets *r = NULL and
 * *out = stdout; else opens path (mt_resume_open) and points o->skip at it.
 * mt_resume_end, after the run whose status is rc: unless o->quiet, one line
 * "PROG: PATH: N answered before, N skipped, N run, N duplicate ids" on errf,
 * then mt_resume_close.  Returns rc, or the close's failure (err set) when rc
 * was MT_OK; r NULL returns rc. */
int mt_resume_begin(mt_resume **r, const char *path, mt_jsonl_opts *o, FILE **out, mt_err *err);
int mt_resume_end(mt_resume *r, FILE *out, int rc, const mt_jsonl_opts *o, const mt_jsonl_stats *st, FILE *errf,
                  mt_err *err);

/* Exit code for a finished run: 0 all ok, 3 some failed, 1 fatal. */
int mt_jsonl_exit_code(int rc, const mt_jsonl_stats *stats);

/* Typed field access with messages naming the field; *out borrowed. */
int mt_json_get_string(json_t *rec, const char *key, const char **out, size_t *len, int required, mt_err *err);
int mt_json_get_bool(json_t *rec, const char *key, int *out, mt_err *err);       /* leaves *out when absent */
int mt_json_get_int(json_t *rec, const char *key, long long *out, mt_err *err);  /* leaves *out when absent */
int mt_json_get_number(json_t *rec, const char *key, double *out, mt_err *err);  /* leaves *out when absent */

#endif
