/* structured.h - structured output for generation jobs: the constraint a record asks for
 * (a JSON schema, any JSON object, a regular expression or a GBNF grammar), compiled once
 * per distinct grammar against the model's vocabulary and shared by every sequence that
 * uses it (gen/constrain.h does the token-level work).
 *
 * Where a constraint comes from, first match wins:
 *   the record: "response_format" (OpenAI: {"type": "json_schema", "json_schema": {"schema":
 *     ...}}, {"type": "json_object"}, {"type": "text"} = none), or the native shortcuts
 *     "json_schema" (a schema), "regex" (a string), "grammar" (GBNF text);
 *   the command line: --json-schema FILE, --regex RE, --grammar FILE.
 * Every form becomes GBNF text (gen/json_schema.h); the job keeps the compiled grammars
 * keyed by that text. */
#ifndef MT_GEN_STRUCTURED_H
#define MT_GEN_STRUCTURED_H

#include <jansson.h>
#include "core/err.h"
#include "gen/constrain.h"

#define MT_GEN_GRAMMARS_MAX 64

typedef struct mt_gen_grammars mt_gen_grammars;

/* The job's grammars for a model of model_vocab ids whose end-of-sequence ids are eos[0..n_eos)
 * (the tokenizer is read when the first grammar is compiled, so it must outlive *g). */
int  mt_gen_grammars_new(mt_gen_grammars **g, const mt_tokenizer *tok, size_t model_vocab, const int32_t *eos,
                         size_t n_eos, mt_err *err);
void mt_gen_grammars_free(mt_gen_grammars *g);   /* NULL ok */

/* The command line's constraint (at most one of the three; NULL for the others): the GBNF
 * text of a --json-schema file, a --regex or a --grammar file becomes the default of
 * every record.  Errors name the option and the file. */
int  mt_gen_grammars_set_default(mt_gen_grammars *g, const char *schema_file, const char *regex,
                                 const char *grammar_file, mt_err *err);

/* The compiled grammar record rec asks for (its own fields, else the default; *gt = NULL for
 * none; rec NULL: the default), owned by g and held for the record until
 * mt_gen_grammars_release.  Past MT_GEN_GRAMMARS_MAX grammars the least recently used one no
 * record holds is dropped.  Errors name the field. */
int  mt_gen_grammars_for(mt_gen_grammars *g, json_t *rec, mt_grammar_tokens **gt, mt_err *err);
void mt_gen_grammars_release(mt_gen_grammars *g, const mt_grammar_tokens *gt);   /* NULL ok */

/* 1 when text[0..n) is a complete sentence of gt's grammar (gt from mt_gen_grammars_for on g):
 * the answer validates, checked by the same automaton that constrained it. */
int  mt_gen_grammar_valid(const mt_gen_grammars *g, const mt_grammar_tokens *gt, const char *text, size_t n);

/* Totals over the job's grammars so far: masks computed by a walk and served from the cache. */
void mt_gen_grammars_stats(const mt_gen_grammars *g, uint64_t *misses, uint64_t *hits);

/* One line on a job's structured output (its answers under a grammar, how many the grammar
 * ended and how many of those the automaton accepts, mask computations and cache hits, and
 * the masking time per token and as a share of decoding) into buf; 0 when no answer used a
 * grammar. */
struct mt_gen_job;
int  mt_gen_structured_summary(const struct mt_gen_job *j, char *buf, size_t cap);

#endif
