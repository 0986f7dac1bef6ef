/* mlx-gen - text generation front end.  This version does the tokenizer jobs:
 * --tokenize (records -> prompt text and token ids) and --detokenize
 * (ids -> text), over the shared JSONL loop. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/jsonl.h"
#include "io/hub.h"
#include "text/prompter.h"

static const char usage[] =
    "usage: mlx-gen -m MODEL --tokenize   [options] < records.jsonl\n"
    "       mlx-gen -m MODEL --detokenize [options] < ids.jsonl\n"
    "\n"
    "MODEL is a folder (a model, or one holding only tokenizer files) or a Hugging Face\n"
    "repo id looked up in the HF cache ($HF_HOME/hub) and downloaded when missing.\n"
    "\n"
    "  --tokenize            {\"text\"|\"prompt\"|\"messages\"} -> {\"id\",\"prompt\",\"ids\",\"n\"}\n"
    "  --detokenize          {\"ids\"} -> {\"id\",\"text\"}\n"
    "  -p, --prompt TEXT     one record from the command line instead of stdin\n"
    "      --text            stdin holds one plain-text record per line\n"
    "      --no-generation-prompt  default add_generation_prompt=false for messages\n"
    "      --skip-special    --detokenize: drop special tokens\n"
    "      --revision REV    hub revision (default main)\n"
    "  -q, --quiet           no progress or per-record messages on stderr\n"
    "  -h, --help            this help;  --version  the version\n"
    "\n"
    "Exit status: 0 all records done, 3 some records failed, 2 usage error, 1 fatal error.\n";

typedef struct job {
    mt_prompter *pr;
    int agp;
    int skip_special;
} job;

static int tokenize_fn(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err) {
    (void)lineno;
    job *j = user;
    char *text;
    size_t tl, n;
    int32_t *ids;
    MT_TRY(mt_prompter_encode(j->pr, rec, j->agp, -1, &text, &tl, &ids, &n, err));
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, json_integer(ids[i]));
    *out = json_object();
    json_object_set_new(*out, "prompt", json_stringn(text, tl));
    json_object_set_new(*out, "ids", arr);
    json_object_set_new(*out, "n", json_integer((json_int_t)n));
    free(text);
    free(ids);
    return MT_OK;
}

static int detokenize_fn(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err) {
    (void)lineno;
    job *j = user;
    json_t *a = json_object_get(rec, "ids");
    if (!json_is_array(a)) return mt_seterr(err, MT_EINVAL, "record needs \"ids\": an array of token ids");
    size_t n = json_array_size(a), vocab = mt_tokenizer_vocab_size(j->pr->tok);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || (size_t)json_integer_value(v) >= vocab) {
            free(ids);
            return mt_seterr(err, MT_EINVAL, "\"ids\"[%zu] is not a token id (0..%zu)", i, vocab - 1);
        }
        ids[i] = (int32_t)json_integer_value(v);
    }
    int skip = j->skip_special;
    int rc = mt_json_get_bool(rec, "skip_special_tokens", &skip, err);
    char *text = NULL;
    size_t tl = 0;
    if (!rc) rc = mt_tokenizer_decode(j->pr->tok, ids, n, skip, &text, &tl, err);
    free(ids);
    if (rc) return rc;
    *out = json_object();
    json_t *s = json_stringn(text, tl);
    free(text);
    if (!s) return mt_seterr(err, MT_EINVAL, "decoded text is not valid UTF-8");
    json_object_set_new(*out, "text", s);
    return MT_OK;
}

static void draw_progress(void *user, const char *file, uint64_t done, uint64_t total) {
    (void)user;
    mt_progress_bar_draw(stderr, file, done, total);
}

int main(int argc, char **argv) {
    enum { O_TOK = 256, O_DETOK, O_TEXT, O_NOGP, O_SKIP, O_VERSION, O_REV };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'}, {"prompt", required_argument, 0, 'p'},
        {"tokenize", no_argument, 0, O_TOK}, {"detokenize", no_argument, 0, O_DETOK},
        {"text", no_argument, 0, O_TEXT}, {"no-generation-prompt", no_argument, 0, O_NOGP},
        {"skip-special", no_argument, 0, O_SKIP}, {"revision", required_argument, 0, O_REV},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {"version", no_argument, 0, O_VERSION},
        {0, 0, 0, 0}};
    const char *model = NULL, *prompt = NULL, *revision = NULL;
    int mode = 0, quiet = 0, text_mode = 0, c;
    job j = {.agp = 1};
    while ((c = getopt_long(argc, argv, "m:p:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'p': prompt = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        case O_VERSION: printf("mlx-gen %s\n", MT_VERSION); return 0;
        case O_TOK: case O_DETOK:
            if (mode && mode != c) { fprintf(stderr, "mlx-gen: --tokenize and --detokenize exclude each other\n"); return MT_EXIT_USAGE; }
            mode = c; break;
        case O_TEXT: text_mode = 1; break;
        case O_NOGP: j.agp = 0; break;
        case O_SKIP: j.skip_special = 1; break;
        case O_REV: revision = optarg; break;
        default: fputs("Try 'mlx-gen --help'.\n", stderr); return MT_EXIT_USAGE;
        }
    }
    if (optind < argc) { fprintf(stderr, "mlx-gen: unexpected argument '%s'\n", argv[optind]); return MT_EXIT_USAGE; }
    if (!model) { fprintf(stderr, "mlx-gen: no model: give -m MODEL (see --help)\n"); return MT_EXIT_USAGE; }
    if (!mode) {
        fprintf(stderr, "mlx-gen: text generation is not in this version yet; use --tokenize or --detokenize\n");
        return MT_EXIT_USAGE;
    }
    if (prompt && (mode != O_TOK || text_mode)) {
        fprintf(stderr, "mlx-gen: -p goes with --tokenize and without --text\n");
        return MT_EXIT_USAGE;
    }

    mt_err err = {0};
    mt_hub_opts hopts = {.revision = revision};
    if (!quiet && isatty(STDERR_FILENO)) hopts.progress = draw_progress;
    char *dir = NULL;
    if (mt_hub_resolve(model, &hopts, &dir, &err) || mt_prompter_open(&j.pr, dir, &err)) {
        fprintf(stderr, "mlx-gen: %s\n", err.msg);
        free(dir);
        return MT_EXIT_FATAL;
    }
    free(dir);

    FILE *in = stdin;
    char *pbuf = NULL;
    if (prompt) {
        json_t *r = json_pack("{s:s}", "text", prompt);
        pbuf = r ? json_dumps(r, JSON_COMPACT) : NULL;
        json_decref(r);
        if (!pbuf) { fprintf(stderr, "mlx-gen: -p: the prompt is not valid UTF-8\n"); mt_prompter_free(j.pr); return MT_EXIT_USAGE; }
        in = fmemopen(pbuf, strlen(pbuf), "r");
    }
    mt_jsonl_opts o = {.prog = "mlx-gen", .text_mode = text_mode, .quiet = quiet};
    mt_jsonl_stats st;
    int rc = mt_jsonl_run(in, stdout, stderr, &o, mode == O_TOK ? tokenize_fn : detokenize_fn, &j, &st, &err);
    if (rc) fprintf(stderr, "mlx-gen: %s\n", err.msg);
    if (prompt) fclose(in);
    free(pbuf);
    mt_prompter_free(j.pr);
    if (fclose(stdout) != 0 && !rc) { fprintf(stderr, "mlx-gen: write error on stdout\n"); return MT_EXIT_FATAL; }
    return mt_jsonl_exit_code(rc, &st);
}
