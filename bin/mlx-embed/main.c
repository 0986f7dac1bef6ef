/* mlx-embed - sentence embeddings for a JSONL corpus, as a Unix filter.
 *   mlx-embed -m MODEL < records.jsonl                   {"id","embedding":[...]} per record
 *   mlx-embed -m MODEL --output vecs.npy < records.jsonl {"id","row"} per record, matrix in vecs.npy */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/blas.h"
#include "core/cpu.h"
#include "core/cli.h"
#include "core/jsonl.h"
#include "embed/embed.h"
#include "io/hub.h"

static const char usage[] =
    "usage: mlx-embed -m MODEL [options] < records.jsonl\n"
    "\n"
    "Records {\"id\", \"text\"} (or plain lines with --text) -> {\"id\", \"embedding\": [...]}.\n"
    "MODEL is a folder (sentence-transformers or mlx-community layout) or a Hugging Face repo id.\n"
    "\n"
    "  -o, --output FILE        write the vectors to FILE as one matrix; stdout gets {\"id\",\"row\"}\n"
    "      --format F           npy (default), f32 or f16 (raw little-endian rows, no header)\n"
    "      --dims N             keep the first N dimensions and re-normalize (Matryoshka)\n"
    "      --prompt-name NAME   prepend the model's prompt NAME (config_sentence_transformers.json)\n"
    "      --prefix TEXT        prepend TEXT to every text\n"
    "      --max-seq N          truncate inputs to N tokens (default: the model's max_seq_length)\n"
    "      --batch-tokens N     tokens per forward batch (default 4096)\n"
    "      --text               stdin holds one plain-text record per line\n"
    "      --rerank             cross-encoder: {\"id\",\"query\",\"documents\":[...]} -> {\"id\",\"scores\":[...]}\n"
    "      --tokens             output the token ids (\"ids\") instead of embeddings\n"
    "  -t, --threads N          default: all cores\n"
    "      --revision REV       hub revision (default main)\n"
    "  -q, --quiet              nothing on stderr but fatal errors\n"
    "  -h, --help  --version\n"
    "\n"
    "Exit status: 0 all records done, 3 some records failed, 2 usage error, 1 fatal error.\n";

typedef struct job {
    mt_embedder *m;
    mt_pool *pool;
    const char *prefix;
    size_t dims;              /* output dims (<= m->dim) */
    size_t batch_tokens;
    mt_npy *npy;
    size_t next_row;
    int fatal;
    mt_err fatal_err;
    int tokens_only;          /* --tokens: report the token ids, run no model */
} job;

typedef struct item {
    const char *text;
    size_t len;
    int32_t *ids;
    size_t n;
    int truncated, rc;
    mt_err err;
} item;

typedef struct tok_ctx { job *j; item *it; } tok_ctx;

static void tok_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    tok_ctx *t = c;
    for (size_t i = b; i < e; i++) {
        item *it = &t->it[i];
        if (it->rc) continue;
        it->rc = mt_embedder_tokenize(t->j->m, t->j->prefix, it->text, it->len, &it->ids, &it->n, &it->truncated,
                                      &it->err);
    }
}

static const item *sort_items;
static int by_len(const void *a, const void *b) {
    size_t x = sort_items[*(const size_t *)a].n, y = sort_items[*(const size_t *)b].n;
    return x < y ? -1 : x > y ? 1 : (*(const size_t *)a < *(const size_t *)b ? -1 : 1);
}

static void embed_batch(void *user, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                        mt_err *errs) {
    (void)linenos;
    job *j = user;
    mt_embedder *m = j->m;
    size_t D = m->dim;
    item *it = calloc(n, sizeof *it);
    size_t *order = malloc(n * sizeof *order);
    float *vec = malloc(n * D * sizeof(float));
    if (!it || !order || !vec) {
        for (size_t i = 0; i < n; i++) rcs[i] = mt_seterr(&errs[i], MT_ENOMEM, "out of memory");
        free(it); free(order); free(vec);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        it[i].rc = mt_json_get_string(recs[i], "text", &it[i].text, &it[i].len, 1, &it[i].err);
    }
    tok_ctx tc = {j, it};
    mt_pool_for(j->pool, n, 1, tok_task, &tc);
    size_t nv = 0;
    for (size_t i = 0; i < n; i++)
        if (!it[i].rc) order[nv++] = i;
    if (j->tokens_only) nv = 0;
    sort_items = it;
    qsort(order, nv, sizeof *order, by_len);
    /* length-sorted batches of at most batch_tokens tokens (at least one sequence) */
    int32_t *ids = NULL;
    size_t *lens = malloc((nv ? nv : 1) * sizeof *lens);
    float *out = NULL;
    for (size_t s = 0; s < nv && lens;) {
        size_t e = s, tot = 0;
        while (e < nv && (e == s || tot + it[order[e]].n <= j->batch_tokens)) tot += it[order[e++]].n;
        int32_t *ni = realloc(ids, tot * sizeof *ids);
        float *no = realloc(out, (e - s) * D * sizeof *out);
        if (!ni || !no) {
            if (ni) ids = ni;
            if (no) out = no;
            for (size_t k = s; k < nv; k++) it[order[k]].rc = mt_seterr(&it[order[k]].err, MT_ENOMEM, "out of memory");
            break;
        }
        ids = ni;
        out = no;
        size_t off = 0;
        for (size_t k = s; k < e; k++) {
            memcpy(ids + off, it[order[k]].ids, it[order[k]].n * sizeof *ids);
            lens[k - s] = it[order[k]].n;
            off += it[order[k]].n;
        }
        mt_err e2 = {0};
        int rc = mt_embedder_run(m, ids, lens, e - s, out, &e2);
        for (size_t k = s; k < e; k++) {
            if (rc) { it[order[k]].rc = rc; it[order[k]].err = e2; }
            else memcpy(vec + order[k] * D, out + (k - s) * D, D * sizeof(float));
        }
        s = e;
    }
    if (!lens)
        for (size_t k = 0; k < nv; k++) it[order[k]].rc = mt_seterr(&it[order[k]].err, MT_ENOMEM, "out of memory");
    free(ids);
    free(lens);
    free(out);
    for (size_t i = 0; i < n; i++) {
        if (it[i].rc) {
            free(it[i].ids);
            rcs[i] = it[i].rc;
            errs[i] = it[i].err;
            continue;
        }
        float *v = vec + i * D;
        json_t *o = json_object();
        if (j->tokens_only) {
            json_t *a = json_array();
            for (size_t k = 0; k < it[i].n; k++) json_array_append_new(a, json_integer(it[i].ids[k]));
            json_object_set_new(o, "ids", a);
        } else if (j->dims < D) mt_embed_normalize(v, j->dims);
        if (j->tokens_only) {
        } else if (j->npy) {
            if (!j->fatal && mt_npy_append(j->npy, v, &j->fatal_err)) j->fatal = 1;
            if (j->fatal) {
                free(it[i].ids);
                json_decref(o);
                rcs[i] = mt_seterr(&errs[i], MT_EIO, "%s", j->fatal_err.msg);
                continue;
            }
            json_object_set_new(o, "row", json_integer((json_int_t)j->next_row++));
        } else {
            json_t *a = json_array();
            for (size_t k = 0; k < j->dims; k++) json_array_append_new(a, json_real(v[k]));
            json_object_set_new(o, "embedding", a);
        }
        if (it[i].truncated) json_object_set_new(o, "truncated", json_true());
        outs[i] = o;
        free(it[i].ids);
        rcs[i] = MT_OK;
    }
    free(it);
    free(order);
    free(vec);
}

/* --rerank: {"id", "query", "documents": [...]} -> {"id", "scores": [...]} in document order. */
static int rerank_one(job *j, json_t *rec, json_t **out, mt_err *err) {
    const char *q;
    size_t ql;
    MT_TRY(mt_json_get_string(rec, "query", &q, &ql, 1, err));
    json_t *docs = json_object_get(rec, "documents");
    if (!json_is_array(docs)) return mt_seterr(err, MT_EINVAL, "\"documents\" must be an array of strings");
    size_t nd = json_array_size(docs), L = mt_encoder_n_labels(j->m->enc);
    if (!L) return mt_seterr(err, MT_EUNSUPPORTED, "the model has no classification head (not a cross-encoder)");
    for (size_t i = 0; i < nd; i++)
        if (!json_is_string(json_array_get(docs, i)))
            return mt_seterr(err, MT_EINVAL, "\"documents\"[%zu] is not a string", i);
    int32_t **ids = calloc(nd ? nd : 1, sizeof *ids), **types = calloc(nd ? nd : 1, sizeof *types);
    size_t *lens = calloc(nd ? nd : 1, sizeof *lens);
    float *sc = malloc((nd ? nd : 1) * L * sizeof *sc);
    int32_t *pi = NULL, *pt = NULL;
    int rc = !ids || !types || !lens || !sc ? mt_seterr(err, MT_ENOMEM, "out of memory") : MT_OK;
    int any_tr = 0;
    for (size_t i = 0; !rc && i < nd; i++) {
        json_t *d = json_array_get(docs, i);
        int tr = 0;
        rc = mt_embedder_tokenize_pair(j->m, q, ql, json_string_value(d), json_string_length(d), &ids[i], &types[i],
                                       &lens[i], &tr, err);
        if (rc) mt_preferr(err, "document %zu", i);
        any_tr |= tr;
    }
    for (size_t s = 0; !rc && s < nd;) {
        size_t e = s, tot = 0;
        while (e < nd && (e == s || tot + lens[e] <= j->batch_tokens)) tot += lens[e++];
        int32_t *a = realloc(pi, tot * sizeof *a), *b = a ? realloc(pt, tot * sizeof *b) : NULL;
        if (a) pi = a;
        if (b) pt = b;
        if (!a || !b) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); break; }
        size_t off = 0;
        for (size_t k = s; k < e; k++) {
            memcpy(pi + off, ids[k], lens[k] * sizeof *pi);
            memcpy(pt + off, types[k], lens[k] * sizeof *pt);
            off += lens[k];
        }
        rc = mt_embedder_score(j->m, pi, pt, lens + s, e - s, sc + s * L, err);
        s = e;
    }
    if (!rc) {
        json_t *arr = json_array();
        for (size_t i = 0; i < nd; i++) {
            if (L == 1) {
                json_array_append_new(arr, json_real(sc[i]));
            } else {
                json_t *row = json_array();
                for (size_t k = 0; k < L; k++) json_array_append_new(row, json_real(sc[i * L + k]));
                json_array_append_new(arr, row);
            }
        }
        *out = json_object();
        json_object_set_new(*out, "scores", arr);
        if (any_tr) json_object_set_new(*out, "truncated", json_true());
    }
    for (size_t i = 0; ids && i < nd; i++) free(ids[i]);
    for (size_t i = 0; types && i < nd; i++) free(types[i]);
    free(ids); free(types); free(lens); free(sc); free(pi); free(pt);
    return rc;
}

static void rerank_batch(void *user, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                         mt_err *errs) {
    (void)linenos;
    for (size_t i = 0; i < n; i++) rcs[i] = rerank_one(user, recs[i], &outs[i], &errs[i]);
}

static int num_arg(const char *opt, const char *s, double lo, double hi, double *out) {
    return mt_cli_number(stderr, "mlx-embed", opt, s, lo, hi, out);
}

enum { O_RERANK = 254, O_TOKENS = 255, O_TEXT = 256, O_FORMAT, O_DIMS, O_PROMPT, O_PREFIX, O_MAXSEQ, O_BT, O_REV, O_VERSION };

int main(int argc, char **argv) {
    mt_blas_init(argv);
    static const struct option lo[] = {
        {"model", 1, 0, 'm'}, {"output", 1, 0, 'o'}, {"format", 1, 0, O_FORMAT}, {"dims", 1, 0, O_DIMS},
        {"prompt-name", 1, 0, O_PROMPT}, {"prefix", 1, 0, O_PREFIX}, {"max-seq", 1, 0, O_MAXSEQ},
        {"batch-tokens", 1, 0, O_BT}, {"text", 0, 0, O_TEXT}, {"tokens", 0, 0, O_TOKENS}, {"rerank", 0, 0, O_RERANK}, {"threads", 1, 0, 't'}, {"revision", 1, 0, O_REV},
        {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, {"version", 0, 0, O_VERSION}, {0, 0, 0, 0}};
    const char *model = NULL, *output = NULL, *format = "npy", *prompt_name = NULL, *prefix = NULL, *revision = NULL;
    int quiet = 0, text_mode = 0, threads = 0, tokens_only = 0, rerank = 0, c;
    size_t dims = 0, max_seq = 0, batch_tokens = 4096;
    double v;
    while ((c = getopt_long(argc, argv, "m:o:t:qh", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': output = optarg; break;
        case O_FORMAT: format = optarg; break;
        case O_DIMS: bad = num_arg("--dims", optarg, 1, 1 << 20, &v); dims = (size_t)v; break;
        case O_PROMPT: prompt_name = optarg; break;
        case O_PREFIX: prefix = optarg; break;
        case O_MAXSEQ: bad = num_arg("--max-seq", optarg, 1, 1 << 20, &v); max_seq = (size_t)v; break;
        case O_BT: bad = num_arg("--batch-tokens", optarg, 1, 1 << 24, &v); batch_tokens = (size_t)v; break;
        case O_TEXT: text_mode = 1; break;
        case O_TOKENS: tokens_only = 1; break;
        case O_RERANK: rerank = 1; break;
        case 't': bad = num_arg("--threads", optarg, 1, 256, &v); threads = (int)v; break;
        case O_REV: revision = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        case O_VERSION: printf("mlx-embed %s\n", MT_VERSION); return 0;
        default: bad = 1;
        }
        if (bad) { fputs("Try 'mlx-embed --help'.\n", stderr); return MT_EXIT_USAGE; }
    }
    if (optind < argc) { fprintf(stderr, "mlx-embed: unexpected argument '%s'\n", argv[optind]); return MT_EXIT_USAGE; }
    if (!model) { fprintf(stderr, "mlx-embed: no model: give -m MODEL (see --help)\n"); return MT_EXIT_USAGE; }
    int raw = 0, f16 = 0;
    if (!strcmp(format, "f32")) raw = 1;
    else if (!strcmp(format, "f16")) raw = f16 = 1;
    else if (strcmp(format, "npy")) { fprintf(stderr, "mlx-embed: --format must be npy, f32 or f16\n"); return MT_EXIT_USAGE; }
    if (strcmp(format, "npy") && !output) { fprintf(stderr, "mlx-embed: --format goes with --output\n"); return MT_EXIT_USAGE; }
    if (rerank && (output || tokens_only || text_mode || dims || prompt_name || prefix)) {
        fprintf(stderr, "mlx-embed: --rerank goes with none of --output, --tokens, --text, --dims, --prompt-name, --prefix\n");
        return MT_EXIT_USAGE;
    }
    if (tokens_only && output) { fprintf(stderr, "mlx-embed: --tokens does not go with --output\n"); return MT_EXIT_USAGE; }
    if (prompt_name && prefix) { fprintf(stderr, "mlx-embed: --prompt-name and --prefix exclude each other\n"); return MT_EXIT_USAGE; }

    mt_err err = {0};
    mt_hub_opts hopts = {.revision = revision};
    mt_progress_bar bar = {.f = stderr};
    if (!quiet && isatty(STDERR_FILENO)) { hopts.progress = mt_progress_bar_cb; hopts.progress_user = &bar; }
    char *dir = NULL;
    job j = {.batch_tokens = batch_tokens, .tokens_only = tokens_only};
    int rc = mt_hub_resolve(model, &hopts, &dir, &err);
    if (!rc) rc = mt_pool_new(&j.pool, threads, &err);
    if (!rc) rc = mt_embedder_open(&j.m, dir, j.pool, max_seq, &err);
    /* encoders split their products over the pool themselves, and decoder
     * embedders through tensor/linear.c: single-threaded OpenBLAS per pool thread */
    if (!rc) mt_blas_threads(1);
    free(dir);
    int usage_err = 0;
    if (!rc) {
        j.prefix = prefix ? prefix : j.m->default_prompt;
        if (prompt_name && !(j.prefix = mt_embedder_prompt(j.m, prompt_name))) {
            rc = mt_seterr(&err, MT_EUSAGE, "--prompt-name %s: the model has no such prompt", prompt_name);
            usage_err = 1;
        }
        j.dims = dims ? dims : j.m->dim;
        if (!rc && j.dims > j.m->dim) {
            rc = mt_seterr(&err, MT_EUSAGE, "--dims %zu: the model gives %zu dimensions", dims, j.m->dim);
            usage_err = 1;
        }
    }
    if (!rc && rerank && !mt_encoder_n_labels(j.m->enc))
        rc = mt_seterr(&err, MT_EUNSUPPORTED, "--rerank: the model has no classification head (not a cross-encoder)");
    if (!rc && output) rc = mt_npy_open(&j.npy, output, j.dims, f16, raw, &err);
    mt_jsonl_stats st = {0};
    if (!rc) {
        mt_jsonl_opts o = {.prog = "mlx-embed", .text_mode = text_mode, .quiet = quiet, .real_precision = 9};
        rc = mt_jsonl_run_batch(stdin, stdout, stderr, &o, rerank ? 1 : 256, rerank ? rerank_batch : embed_batch, &j,
                                &st, &err);
        if (!rc && j.fatal) rc = mt_seterr(&err, j.fatal_err.code, "%s", j.fatal_err.msg);
        if (j.npy) {
            if (rc) mt_npy_abort(j.npy);
            else rc = mt_npy_close(j.npy, &err);
        }
    }
    mt_embedder_free(j.m);
    mt_pool_free(j.pool);
    if (rc) {
        fprintf(stderr, "mlx-embed: %s\n", err.msg[0] ? err.msg : mt_strstatus(rc));
        return usage_err ? MT_EXIT_USAGE : MT_EXIT_FATAL;
    }
    return mt_jsonl_exit_code(rc, &st);
}
