/* mlx-embed - sentence embeddings for a JSONL corpus, as a Unix filter.
 *   mlx-embed -m MODEL < records.jsonl                   {"id","embedding":[...]} per record
 *   mlx-embed -m MODEL --output vecs.npy < records.jsonl {"id","row"} per record, matrix in vecs.npy */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blas.h"
#include "core/cli.h"
#include "core/jsonl.h"
#include "core/sig.h"
#include "embed/embed.h"
#include "embed/job.h"
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
    "      --resume FILE        append the answers to FILE, skipping ids already answered there\n"
    "      --shard K/N          handle only the records at positions K, K+N, K+2N, ... (0-based;\n"
    "                           N processes with K = 0..N-1 split one input, see mlx-tools-cluster(7))\n"
    "  -t, --threads N          default: all cores\n"
    "      --revision REV       hub revision (default main)\n"
    "  -q, --quiet              nothing on stderr but fatal errors\n"
    "  -h, --help  --version\n"
    "\n"
    "Exit status: 0 all records done, 3 some records failed, 2 usage error, 1 fatal error,\n"
    "130 interrupted, 141 the reader of stdout went away (temporary files removed).\n";

typedef struct prog {
    mt_embed_job job;
    int rerank;
} prog;

/* The loop's handler: the library's.  A failed write of the matrix fails the
 * batch with MT_EFATAL, which ends the loop at once (then the temporary file
 * is removed below, one line on stderr, exit 1). */
static void batch_fn(void *user, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                     mt_err *errs) {
    prog *p = user;
    (p->rerank ? mt_rerank_batch : mt_embed_batch)(&p->job, recs, linenos, n, outs, rcs, errs);
}

static int num_arg(const char *opt, const char *s, double lo, double hi, double *out) {
    return mt_cli_number(stderr, "mlx-embed", opt, s, lo, hi, out);
}

static int usage_error(const char *msg) {
    fprintf(stderr, "mlx-embed: %s\n", msg);
    return MT_EXIT_USAGE;
}

enum { O_RERANK = 254, O_TOKENS = 255, O_TEXT = 256, O_FORMAT, O_DIMS, O_PROMPT, O_PREFIX, O_MAXSEQ, O_BT, O_REV,
       O_RESUME, O_SHARD, O_VERSION };

int main(int argc, char **argv) {
    mt_blas_init(argv);
    mt_sig_install("mlx-embed");
    static const struct option lo[] = {
        {"model", 1, 0, 'm'}, {"output", 1, 0, 'o'}, {"format", 1, 0, O_FORMAT}, {"dims", 1, 0, O_DIMS},
        {"prompt-name", 1, 0, O_PROMPT}, {"prefix", 1, 0, O_PREFIX}, {"max-seq", 1, 0, O_MAXSEQ},
        {"batch-tokens", 1, 0, O_BT}, {"text", 0, 0, O_TEXT}, {"tokens", 0, 0, O_TOKENS}, {"rerank", 0, 0, O_RERANK},
        {"threads", 1, 0, 't'}, {"revision", 1, 0, O_REV}, {"resume", 1, 0, O_RESUME},
        {"shard", 1, 0, O_SHARD}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, {"version", 0, 0, O_VERSION}, {0, 0, 0, 0}};
    const char *model = NULL, *output = NULL, *format = "npy", *prompt_name = NULL, *prefix = NULL, *revision = NULL,
               *resume = NULL;
    int quiet = 0, text_mode = 0, threads = 0, tokens_only = 0, rerank = 0, c;
    size_t dims = 0, max_seq = 0, batch_tokens = 4096, shard_k = 0, shard_n = 0;
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
        case O_RESUME: resume = optarg; break;
        case O_SHARD: bad = mt_cli_shard(stderr, "mlx-embed", optarg, &shard_k, &shard_n); break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        case O_VERSION: printf("mlx-embed %s\n", MT_VERSION); return 0;
        default: bad = 1;
        }
        if (bad) { fputs("Try 'mlx-embed --help'.\n", stderr); return MT_EXIT_USAGE; }
    }
    if (optind < argc) { fprintf(stderr, "mlx-embed: unexpected argument '%s'\n", argv[optind]); return MT_EXIT_USAGE; }
    if (!model) return usage_error("no model: give -m MODEL (see --help)");
    int raw = strcmp(format, "npy") != 0, f16 = !strcmp(format, "f16");
    if (raw && !f16 && strcmp(format, "f32")) return usage_error("--format must be npy, f32 or f16");
    if (raw && !output) return usage_error("--format goes with --output");
    if (rerank && (output || tokens_only || text_mode || dims || prompt_name || prefix))
        return usage_error("--rerank goes with none of --output, --tokens, --text, --dims, --prompt-name, --prefix");
    if (tokens_only && output) return usage_error("--tokens does not go with --output");
    if (prompt_name && prefix) return usage_error("--prompt-name and --prefix exclude each other");
    if (resume && output) return usage_error("--resume goes with the JSONL output, not --output");

    mt_err err = {0};
    mt_hub_opts hopts = {.revision = revision};
    mt_progress_bar bar = {.f = stderr};
    if (!quiet && isatty(STDERR_FILENO)) { hopts.progress = mt_progress_bar_cb; hopts.progress_user = &bar; }
    char *dir = NULL;
    prog p = {.job = {.batch_tokens = batch_tokens, .tokens_only = tokens_only}, .rerank = rerank};
    int rc = mt_hub_resolve(model, &hopts, &dir, &err);
    if (!rc) rc = mt_pool_new(&p.job.pool, threads, &err);
    if (!rc) rc = mt_embedder_open(&p.job.m, dir, p.job.pool, max_seq, &err);
    /* encoders split their products over the pool themselves, and decoder
     * embedders through tensor/linear.c: single-threaded OpenBLAS per pool thread */
    if (!rc) mt_blas_threads(1);
    free(dir);
    if (!rc) rc = mt_embed_job_init(&p.job, prompt_name, prefix, dims, &err);
    if (!rc && rerank && !mt_encoder_n_labels(p.job.m->enc))
        rc = mt_seterr(&err, MT_EUNSUPPORTED, "--rerank: the model has no classification head (not a cross-encoder)");
    if (!rc && output) rc = mt_npy_open(&p.job.npy, output, p.job.dims, f16, raw, &err);
    mt_jsonl_stats st = {0};
    FILE *out = stdout;
    mt_resume *rs = NULL;
    mt_jsonl_opts o = {.prog = "mlx-embed", .text_mode = text_mode, .quiet = quiet, .real_precision = 9,
                       .shard_k = shard_k, .shard_n = shard_n};
    if (!rc) rc = mt_resume_begin(&rs, resume, &o, &out, &err);
    if (!rc) {
        rc = mt_jsonl_run_batch(stdin, out, stderr, &o, rerank ? 1 : 256, batch_fn, &p, &st, &err);
        int e = errno;
        if (rc == MT_EIO && ferror(out))
            mt_seterr(&err, MT_EIO, "%s: write failed: %s", resume ? resume : "standard output", strerror(e ? e : EIO));
        if (p.job.npy && rc) mt_npy_abort(p.job.npy);
        else if (p.job.npy) rc = mt_npy_close(p.job.npy, &err);
    }
    rc = mt_resume_end(rs, out, rc, &o, &st, stderr, &err);
    mt_embedder_free(p.job.m);
    mt_pool_free(p.job.pool);
    if (!rc && fflush(stdout) != 0)
        rc = mt_seterr(&err, MT_EIO, "standard output: write failed: %s", strerror(errno));
    if (rc) {
        fprintf(stderr, "mlx-embed: %s\n", err.msg[0] ? err.msg : mt_strstatus(rc));
        return rc == MT_EUSAGE ? MT_EXIT_USAGE : MT_EXIT_FATAL;
    }
    return mt_jsonl_exit_code(rc, &st);
}
