/* structured.c - a job's structured-output constraints: record fields and command-line
 * options to GBNF text (gen/json_schema.h), compiled once per distinct text. */
#include "gen/structured.h"
#include "core/file.h"
#include "gen/json_schema.h"
#include "gen/request.h"

#include <stdio.h>

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    char *gbnf;
    mt_grammar *g;
    mt_grammar_tokens *gt;
    size_t users;              /* records holding it (mt_gen_grammars_for .. _release) */
    uint64_t used;             /* when it was last handed out (a counter) */
} entry;

struct mt_gen_grammars {
    const mt_tokenizer *tok;
    size_t vocab;
    int32_t *eos;
    size_t n_eos;
    mt_tokvocab *v;            /* built with the first grammar */
    entry *e;
    size_t n, cap;             /* entries held (past MT_GEN_GRAMMARS_MAX only while all are in use) */
    uint64_t clock;
    char *def;                 /* the command line's GBNF text, or NULL */
    uint64_t dropped_misses, dropped_hits;
};

int mt_gen_grammars_new(mt_gen_grammars **out, const mt_tokenizer *tok, size_t model_vocab, const int32_t *eos,
                        size_t n_eos, mt_err *err) {
    mt_gen_grammars *g = calloc(1, sizeof *g);
    if (!g) return mt_seterr(err, MT_ENOMEM, "out of memory");
    g->tok = tok;
    g->vocab = model_vocab;
    if (n_eos) {
        g->eos = malloc(n_eos * sizeof *g->eos);
        if (!g->eos) { free(g); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
        memcpy(g->eos, eos, n_eos * sizeof *eos);
    }
    g->n_eos = n_eos;
    *out = g;
    return MT_OK;
}

static void entry_free(entry *e) {
    mt_grammar_tokens_free(e->gt);
    mt_grammar_free(e->g);
    free(e->gbnf);
    memset(e, 0, sizeof *e);
}

void mt_gen_grammars_free(mt_gen_grammars *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n; i++) entry_free(&g->e[i]);
    free(g->e);
    mt_tokvocab_free(g->v);
    free(g->eos);
    free(g->def);
    free(g);
}

int mt_gen_grammars_set_default(mt_gen_grammars *g, const char *schema_file, const char *regex,
                                const char *grammar_file, mt_err *err) {
    if (!!schema_file + !!regex + !!grammar_file > 1)
        return mt_seterr(err, MT_EUSAGE, "--json-schema, --regex and --grammar exclude each other");
    char *text = NULL;
    size_t n = 0;
    if (schema_file) {
        json_error_t je;
        json_t *s = json_load_file(schema_file, JSON_REJECT_DUPLICATES, &je);
        if (!s && je.line < 1) return mt_seterr(err, MT_EINVAL, "--json-schema %s: %s", schema_file, je.text);
        if (!s) return mt_seterr(err, MT_EINVAL, "--json-schema %s: line %d: %s", schema_file, je.line, je.text);
        /* a whole response_format object, or the "json_schema" member of one, or a bare schema */
        json_t *inner = json_object_get(s, "json_schema");
        int rc;
        if (json_is_string(json_object_get(s, "type")) && (inner || !strcmp(json_string_value(json_object_get(s, "type")), "json_object")) &&
            !json_object_get(s, "properties"))
            rc = mt_response_format_gbnf(s, &text, err);
        else if (json_is_object(json_object_get(s, "schema")) && json_object_get(s, "name"))
            rc = mt_json_schema_to_gbnf(json_object_get(s, "schema"), &text, err);
        else
            rc = mt_json_schema_to_gbnf(s, &text, err);
        json_decref(s);
        if (rc) return mt_preferr(err, "--json-schema %s", schema_file);
    } else if (regex) {
        MT_TRY(mt_regex_to_gbnf(regex, strlen(regex), &text, err) ? mt_preferr(err, "--regex") : MT_OK);
    } else if (grammar_file) {
        MT_TRY(mt_read_file(grammar_file, &text, &n, err) ? mt_preferr(err, "--grammar %s", grammar_file) : MT_OK);
        if (memchr(text, 0, n)) {
            free(text);
            return mt_seterr(err, MT_EINVAL, "--grammar %s: the file holds a NUL byte", grammar_file);
        }
    }
    free(g->def);
    g->def = text;
    if (!text) return MT_OK;
    mt_grammar_tokens *gt;   /* compile now: a bad grammar stops the run before any record */
    int rc = mt_gen_grammars_for(g, NULL, &gt, err);
    if (rc && grammar_file) return mt_preferr(err, "--grammar %s", grammar_file);
    mt_gen_grammars_release(g, gt);
    return rc;
}

/* Drop the least recently used entry no record holds, when there are too many. */
static void evict(mt_gen_grammars *g) {
    if (g->n < MT_GEN_GRAMMARS_MAX) return;
    size_t best = g->n;
    for (size_t i = 0; i < g->n; i++)
        if (!g->e[i].users && (best == g->n || g->e[i].used < g->e[best].used)) best = i;
    if (best == g->n) return;
    mt_grammar_tokens_stats st;
    mt_grammar_tokens_stats_get(g->e[best].gt, &st);
    g->dropped_misses += st.misses;
    g->dropped_hits += st.hits;
    entry_free(&g->e[best]);
    g->e[best] = g->e[--g->n];
}

static int compile(mt_gen_grammars *g, char *text, mt_grammar_tokens **gt, mt_err *err) {
    for (size_t i = 0; i < g->n; i++)
        if (!strcmp(g->e[i].gbnf, text)) {
            free(text);
            g->e[i].users++;
            g->e[i].used = ++g->clock;
            *gt = g->e[i].gt;
            return MT_OK;
        }
    if (!g->v) {
        int rc = mt_tokvocab_new(&g->v, g->tok, g->vocab, g->eos, g->n_eos, err);
        if (rc) { free(text); return rc; }
    }
    entry e = {.gbnf = text, .users = 1, .used = ++g->clock};
    int rc = mt_grammar_parse(&e.g, text, strlen(text), "root", err);
    if (!rc) rc = mt_grammar_tokens_new(&e.gt, e.g, g->v, err);
    if (rc) { entry_free(&e); return rc; }
    evict(g);
    if (g->n == g->cap) {
        size_t nc = g->cap ? 2 * g->cap : 8;
        entry *ne = realloc(g->e, nc * sizeof *ne);
        if (!ne) { entry_free(&e); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
        g->e = ne;
        g->cap = nc;
    }
    g->e[g->n++] = e;
    *gt = e.gt;
    return MT_OK;
}

void mt_gen_grammars_release(mt_gen_grammars *g, const mt_grammar_tokens *gt) {
    if (!g || !gt) return;
    for (size_t i = 0; i < g->n; i++)
        if (g->e[i].gt == gt && g->e[i].users) { g->e[i].users--; return; }
}

int mt_gen_grammars_for(mt_gen_grammars *g, json_t *rec, mt_grammar_tokens **gt, mt_err *err) {
    *gt = NULL;
    char *text = NULL;
    json_t *rf = rec ? json_object_get(rec, "response_format") : NULL;
    json_t *js = rec ? json_object_get(rec, "json_schema") : NULL;
    json_t *re = rec ? json_object_get(rec, "regex") : NULL;
    json_t *gr = rec ? json_object_get(rec, "grammar") : NULL;
    if (rf && json_is_null(rf)) rf = NULL;
    if (js && json_is_null(js)) js = NULL;
    if (re && json_is_null(re)) re = NULL;
    if (gr && json_is_null(gr)) gr = NULL;
    if (!!rf + !!js + !!re + !!gr > 1)
        return mt_seterr(err, MT_EINVAL, "\"response_format\", \"json_schema\", \"regex\" and \"grammar\" exclude each other");
    if (rf) {
        if (!json_is_object(rf)) return mt_seterr(err, MT_EINVAL, "\"response_format\" must be an object");
        MT_TRY(mt_response_format_gbnf(rf, &text, err) ? mt_preferr(err, "\"response_format\"") : MT_OK);
        if (!text) return MT_OK;   /* {"type": "text"} */
    } else if (js) {
        if (!json_is_object(js) && !json_is_boolean(js)) return mt_seterr(err, MT_EINVAL, "\"json_schema\" must be a schema (an object)");
        MT_TRY(mt_json_schema_to_gbnf(js, &text, err) ? mt_preferr(err, "\"json_schema\"") : MT_OK);
    } else if (re) {
        if (!json_is_string(re)) return mt_seterr(err, MT_EINVAL, "\"regex\" must be a string");
        MT_TRY(mt_regex_to_gbnf(json_string_value(re), json_string_length(re), &text, err) ? mt_preferr(err, "\"regex\"") : MT_OK);
    } else if (gr) {
        if (!json_is_string(gr)) return mt_seterr(err, MT_EINVAL, "\"grammar\" must be GBNF text (a string)");
        if (memchr(json_string_value(gr), 0, json_string_length(gr))) return mt_seterr(err, MT_EINVAL, "\"grammar\" holds a NUL character");
        if (!(text = strdup(json_string_value(gr)))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    } else if (g->def) {
        if (!(text = strdup(g->def))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    } else {
        return MT_OK;
    }
    int rc = compile(g, text, gt, err);
    if (rc && gr) return mt_preferr(err, "\"grammar\"");
    return rc;
}

int mt_gen_grammar_valid(const mt_gen_grammars *g, const mt_grammar_tokens *gt, const char *text, size_t n) {
    for (size_t i = 0; i < g->n; i++)
        if (g->e[i].gt == gt) return mt_grammar_match(g->e[i].g, text, n);
    return 0;
}

void mt_gen_grammars_stats(const mt_gen_grammars *g, uint64_t *misses, uint64_t *hits) {
    *misses = g->dropped_misses;
    *hits = g->dropped_hits;
    for (size_t i = 0; i < g->n; i++) {
        mt_grammar_tokens_stats st;
        mt_grammar_tokens_stats_get(g->e[i].gt, &st);
        *misses += st.misses;
        *hits += st.hits;
    }
}

int mt_gen_structured_summary(const mt_gen_job *j, char *buf, size_t cap) {
    if (!j->gram_answers || !j->grammars) return 0;
    uint64_t miss, hit;
    mt_gen_grammars_stats(j->grammars, &miss, &hit);
    double per = j->gram_tokens ? 1e3 * j->gram_s / (double)j->gram_tokens : 0;
    double share = j->gram_decode_s > 0 ? 100.0 * j->gram_s / j->gram_decode_s : 0;
    snprintf(buf, cap, "structured output: %zu answers, %zu ended by the grammar, %zu of them valid; masks: %llu "
             "computed, %llu from the cache; %.3f ms a token (%.1f%% of decoding)", j->gram_answers, j->gram_ended,
             j->gram_valid, (unsigned long long)miss, (unsigned long long)hit, per, share);
    return 1;
}
