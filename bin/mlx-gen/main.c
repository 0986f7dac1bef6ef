/* mlx-gen - text generation for MLX-format models, as a Unix filter.
 *   one-shot: mlx-gen -m MODEL -p "prompt" [--chat]      (streams text to stdout)
 *   batch:    mlx-gen -m MODEL < records.jsonl            (one answer line per record)
 *   tokens:   mlx-gen -m MODEL --tokenize | --detokenize  (no weights needed) */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blas.h"
#include "core/cli.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "core/sig.h"
#include "gen/genopts.h"
#include "gen/pcache.h"
#include "gen/request.h"
#include "gen/structured.h"
#include "gen/speculative.h"
#include "kv/prefix.h"
#include "io/hub.h"
#include "models/model.h"
#include "text/prompter.h"

static const char usage_fmt[] =
    "usage: mlx-gen -m MODEL -p PROMPT [--chat] [options]    generate, streaming to stdout\n"
    "       mlx-gen -m MODEL [options] < records.jsonl       one answer line per record\n"
    "       mlx-gen -m MODEL --tokenize|--detokenize < records.jsonl\n"
    "\n"
    "MODEL is a folder (mlx-community layout) or a Hugging Face repo id looked up in the HF\n"
    "cache ($HF_HOME/hub) and downloaded when missing.  Records: {\"id\", \"prompt\"|\"messages\"},\n"
    "or OpenAI Batch API request lines; options below may also be given per record\n"
    "(max_tokens, temperature, top_p, top_k, min_p, seed, stop, ...; see mlx-gen(1)).\n"
    "\n"
    "  -p, --prompt TEXT        one prompt from the command line\n"
    "      --chat               -p: apply the chat template (with --system TEXT)\n"
    "%s"
    "      --tokenize           {\"text\"|\"prompt\"|\"messages\"} -> {\"id\",\"prompt\",\"ids\",\"n\"}\n"
    "      --detokenize         {\"ids\"} -> {\"id\",\"text\"}  (--skip-special drops special tokens)\n"
    "      --text               stdin holds one plain-text prompt per line\n"
    "      --no-generation-prompt  default add_generation_prompt=false for messages\n"
    "      --draft-model DIR    speculative decoding: a small model with the same tokenizer proposes\n"
    "                           --num-draft-tokens K tokens (1..64, default 3; per record:\n"
    "                           \"num_draft_tokens\", 0 = off), the model checks them in one pass\n"
    "                           (greedy text unchanged; sampling keeps the model's distribution)\n"
    "      --revision REV       hub revision (default main)\n"
    "  -q, --quiet              nothing on stderr but fatal errors\n"
    "      --list-models        the model_types mlx-gen runs, with what each exercises\n"
    "  -h, --help  --version\n"
    "\n"
    "Exit status: 0 all records done, 3 some records failed, 2 usage error, 1 fatal error.\n";

typedef struct job {
    mt_prompter *pr;
    mt_gen_job gen;      /* model, defaults (gp), add_generation_prompt, return_ids */
    int agp, skip_special;
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
    *out = json_pack("{s:s%,s:o,s:I}", "prompt", text, tl, "ids", arr, "n", (json_int_t)n);
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
    *out = json_pack("{s:s%}", "text", text, tl);
    free(text);
    return *out ? MT_OK : mt_seterr(err, MT_EINVAL, "decoded text is not valid UTF-8");
}

static int stream_out(void *user, const char *piece, size_t len) {
    (void)user;
    return fwrite(piece, 1, len, stdout) != len || fflush(stdout) != 0;
}

/* -p: one prompt, streamed. */
static int one_shot(job *j, const char *prompt, int chat, const char *system, int quiet, mt_err *err) {
    json_t *rec = chat ? json_pack("{s:[]}", "messages") : json_pack("{s:s}", "prompt", prompt);
    if (!rec) return mt_seterr(err, MT_EUSAGE, "the prompt is not valid UTF-8");
    if (chat) {
        json_t *msgs = json_object_get(rec, "messages");
        if (system) json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", system));
        json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", prompt));
    }
    int32_t *ids = NULL;
    size_t n = 0;
    mt_gen_result res;
    mt_gen_request req = {.gp = j->gen.defaults, .prompt_rec = rec};
    char *save = NULL;
    int agp = j->gen.add_generation_prompt;
    j->gen.add_generation_prompt = 1;
    int rc = mt_gen_record_prepare(&j->gen, rec, 1, &req, &ids, &n, &save, err);
    j->gen.add_generation_prompt = agp;
    if (!rc) rc = mt_generate(j->gen.model, j->pr->tok, ids, n, &req.gp, stream_out, NULL, &res, err);
    if (!rc && save) {
        rc = mt_gen_record_save(&j->gen, save, &res, err);
        if (rc) mt_gen_result_free(&res);
    }
    free(save);
    if (!rc) {
        fputc('\n', stdout);
        if (!quiet)
            fprintf(stderr, "Prompt: %zu tokens, %.3f tokens-per-sec\nGeneration: %zu tokens, %.3f tokens-per-sec\n",
                    res.prompt_tokens, res.prefill_s > 0 ? res.prompt_tokens / res.prefill_s : 0, res.n_tokens,
                    res.decode_s > 0 ? res.n_tokens / res.decode_s : 0);
        if (!quiet && mt_spec_wanted(&req.gp))
            fprintf(stderr, "Speculative: %zu of %zu proposed tokens accepted (%.1f%%)\n", res.accepted_tokens,
                    res.draft_tokens, res.draft_tokens ? 100.0 * res.accepted_tokens / res.draft_tokens : 0.0);
        mt_gen_result_free(&res);
    }
    free(ids);
    mt_gen_request_free(&req);
    json_decref(rec);
    return rc;
}

/* --draft-model: its tokenizer must be the model's (same size, same ids for a probe text), or its
 * proposals would be other tokens than they seem. */
static int same_tokenizer(const mt_prompter *pr, const char *ddir, const char *name, mt_err *err) {
    static const char probe[] = "Hello, World! The 3 files in /etc are\n\tdef f(x): return x * 2  # ok";
    mt_prompter *dp = NULL;
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int rc = mt_prompter_open(&dp, ddir, err);
    if (!rc && mt_tokenizer_vocab_size(dp->tok) != mt_tokenizer_vocab_size(pr->tok))
        rc = mt_seterr(err, MT_EINVAL, "--draft-model %s: its tokenizer has %zu tokens, the model's %zu; speculative "
                       "decoding needs the same tokenizer", name, mt_tokenizer_vocab_size(dp->tok),
                       mt_tokenizer_vocab_size(pr->tok));
    if (!rc) rc = mt_tokenizer_encode(pr->tok, probe, sizeof probe - 1, 0, &a, &na, err);
    if (!rc) rc = mt_tokenizer_encode(dp->tok, probe, sizeof probe - 1, 0, &b, &nb, err);
    if (!rc && (na != nb || memcmp(a, b, na * sizeof *a)))
        rc = mt_seterr(err, MT_EINVAL, "--draft-model %s: its tokenizer splits text differently from the model's; "
                       "speculative decoding needs the same tokenizer", name);
    free(a);
    free(b);
    mt_prompter_free(dp);
    return rc;
}

static void print_usage(FILE *f) { fprintf(f, usage_fmt, mt_genopts_usage); }

int main(int argc, char **argv) {
    enum { O_TOK = 256, O_DETOK, O_TEXT, O_NOGP, O_SKIP, O_VERSION, O_REV, O_CHAT, O_SYSTEM, O_SCORE_MODE, O_DRAFT, O_NDRAFT, O_LIST };
    static const struct option own[] = {
        {"model", 1, 0, 'm'}, {"prompt", 1, 0, 'p'},
        {"tokenize", 0, 0, O_TOK}, {"detokenize", 0, 0, O_DETOK}, {"text", 0, 0, O_TEXT},
        {"no-generation-prompt", 0, 0, O_NOGP}, {"skip-special", 0, 0, O_SKIP}, {"revision", 1, 0, O_REV},
        {"chat", 0, 0, O_CHAT}, {"system", 1, 0, O_SYSTEM}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},
        {"version", 0, 0, O_VERSION}, {"draft-model", 1, 0, O_DRAFT},
        {"num-draft-tokens", 1, 0, O_NDRAFT}, {"list-models", 0, 0, O_LIST}};
    mt_blas_init(argv);
    mt_sig_install("mlx-gen");   /* SIGINT/SIGTERM: temp files removed, exit 128+N; SIGBUS on a cut model file: a message */
    struct option *lo = mt_genopts_table(own, sizeof own / sizeof own[0]);
    if (!lo) { fprintf(stderr, "mlx-gen: out of memory\n"); return MT_EXIT_FATAL; }
    const char *model = NULL, *prompt = NULL, *revision = NULL, *system = NULL, *draft = NULL;
    int mode = 0, quiet = 0, text_mode = 0, chat = 0, c, ndraft = 0;
    job j = {.agp = 1};
    mt_genopts go;
    mt_genopts_init(&go);
    mt_gen_params *gp = &go.gp;
    mt_sampler_params *sp = &gp->sp;
    while ((c = getopt_long(argc, argv, "m:p:qh" MT_GENOPTS_SHORT, lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model = optarg; break;
        case 'p': prompt = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': print_usage(stdout); free(lo); return 0;
        case O_VERSION: printf("mlx-gen %s\n", MT_VERSION); free(lo); return 0;
        case O_LIST:
            for (size_t i = 0; i < mt_family_count(); i++)
                printf("%-20s %s\n", mt_family_at(i)->model_type, mt_family_at(i)->summary ? mt_family_at(i)->summary : "");
            free(lo);
            return 0;
        case O_TOK: case O_DETOK:
            if (mode && mode != c) { fprintf(stderr, "mlx-gen: --tokenize, --detokenize and --score exclude each other\n"); free(lo); return MT_EXIT_USAGE; }
            mode = c; break;
        case O_TEXT: text_mode = 1; break;
        case O_NOGP: j.agp = 0; break;
        case O_SKIP: j.skip_special = 1; break;
        case O_REV: revision = optarg; break;
        case O_CHAT: chat = 1; break;
        case O_SYSTEM: system = optarg; break;
        case O_DRAFT: draft = optarg; break;
        case O_NDRAFT: {
            double v = 0;
            bad = mt_cli_number(stderr, "mlx-gen", "--num-draft-tokens", optarg, 1, 64, &v);
            ndraft = (int)v;
            break;
        }
        default: {
            int r = mt_genopts_parse(&go, c, optarg, stderr, "mlx-gen");
            bad = r <= 0;
            if (r > 0 && go.score && mode && mode != O_SCORE_MODE) {
                fprintf(stderr, "mlx-gen: --tokenize, --detokenize and --score exclude each other\n");
                free(lo);
                return MT_EXIT_USAGE;
            }
            if (r > 0 && go.score) mode = O_SCORE_MODE;
        }
        }
        if (bad) { fputs("Try 'mlx-gen --help'.\n", stderr); free(lo); return MT_EXIT_USAGE; }
    }
    free(lo);
    if (mt_genopts_finish(&go, stderr, "mlx-gen")) return MT_EXIT_USAGE;
    int numerics = go.numerics, threads = go.threads;
    double prefix_mb = go.prefix_mb;
    const char *resume = go.resume;
    size_t shard_k = go.shard_k, shard_n = go.shard_n;
    j.gen.defaults = go.gp;
    gp = &j.gen.defaults;
    sp = &gp->sp;
    j.gen.return_ids = go.return_ids;
    j.gen.reproducible = go.reproducible;
    j.gen.prompt_cache = go.prompt_cache;
    j.gen.save_cache = go.save_cache;
    j.gen.save_after_generation = go.save_after_generation;
    if (j.gen.save_cache) {
        size_t sl = strlen(j.gen.save_cache);
        j.gen.save_dir = sl && j.gen.save_cache[sl - 1] == '/';
    }
    j.gen.save_level = 3;
    /* --score keeps its float32 cache unless --kv-type or --kv-bits says otherwise */
    j.gen.score_kv_f16 = gp->kv_f16 >= 0 ? gp->kv_f16 : -1;
    if (optind < argc) { fprintf(stderr, "mlx-gen: unexpected argument '%s'\n", argv[optind]); return MT_EXIT_USAGE; }
    if (!model) { fprintf(stderr, "mlx-gen: no model: give -m MODEL (see --help)\n"); return MT_EXIT_USAGE; }
    if (prompt && (text_mode || mode == O_DETOK)) { fprintf(stderr, "mlx-gen: -p does not go with --text or --detokenize\n"); return MT_EXIT_USAGE; }
    if ((chat || system) && !prompt) { fprintf(stderr, "mlx-gen: --chat and --system go with -p\n"); return MT_EXIT_USAGE; }
    if ((resume || shard_n) && prompt) { fprintf(stderr, "mlx-gen: --resume and --shard go with records on stdin, not -p\n"); return MT_EXIT_USAGE; }
    int need_model = mode != O_TOK && mode != O_DETOK;
    if (ndraft && !draft) { fprintf(stderr, "mlx-gen: --num-draft-tokens goes with --draft-model\n"); return MT_EXIT_USAGE; }
    if (draft) gp->num_draft = ndraft ? ndraft : 3;   /* mlx_lm.generate's default */

    mt_err err = {0};
    mt_hub_opts hopts = {.revision = revision};
    mt_progress_bar bar = {.f = stderr};
    if (!quiet && isatty(STDERR_FILENO)) { hopts.progress = mt_progress_bar_cb; hopts.progress_user = &bar; }
    char *dir = NULL;
    mt_pool *pool = NULL;
    int rc = mt_hub_resolve(model, &hopts, &dir, &err);
    if (!rc) rc = mt_prompter_open(&j.pr, dir, &err);
    if (!rc && need_model) rc = mt_pool_new(&pool, threads, &err);
    if (!rc && need_model) mt_blas_threads(1); /* products are split over the pool (tensor/linear.c) */
    if (!rc && need_model) rc = mt_model_load(&j.gen.model, dir, pool, &err);
    if (!rc && need_model) rc = mt_model_set_numerics(j.gen.model, numerics, &err);
    mt_model *draft_m = NULL;
    if (!rc && need_model && draft && mode != O_SCORE_MODE) {
        char *ddir = NULL;
        rc = mt_hub_resolve(draft, &hopts, &ddir, &err);
        if (!rc) rc = mt_model_load(&draft_m, ddir, pool, &err);
        if (!rc) rc = mt_model_set_numerics(draft_m, numerics, &err);
        if (!rc && draft_m->hp.vocab != j.gen.model->hp.vocab)
            rc = mt_seterr(&err, MT_EINVAL, "--draft-model %s: its vocabulary (%d tokens) differs from the model's (%d); "
                           "speculative decoding needs the same tokenizer", draft, draft_m->hp.vocab,
                           j.gen.model->hp.vocab);
        if (!rc) rc = same_tokenizer(j.pr, ddir, draft, &err);
        free(ddir);
        gp->draft = draft_m;
    }
    if (!rc && need_model && mode != O_SCORE_MODE) rc = mt_gen_caches_new(&j.gen.caches, j.gen.model, dir, model, &err);
    if (!rc && j.gen.save_dir) rc = mt_mkdirs(j.gen.save_cache, &err);
    free(dir);
    mt_prefix_store *store = NULL;
    if (!rc && need_model && mode != O_SCORE_MODE && !prompt && prefix_mb > 0 && !j.gen.reproducible) {
        rc = mt_prefix_store_new(&store, (size_t)(prefix_mb * 1e6), &err);
        gp->store = store;
    }
    if (!rc && need_model) {
        j.gen.pr = j.pr;
        j.gen.model_name = model;
        j.gen.add_generation_prompt = j.agp;
        gp->eos = j.pr->eos_ids;
        gp->n_eos = j.pr->n_eos;
        gp->trim_first_space = j.pr->trim_first_space;
        j.gen.batch = mt_genopts_batch(&go, j.gen.model);
        if (!rc && mode != O_SCORE_MODE)
            rc = mt_gen_grammars_new(&j.gen.grammars, j.pr->tok, (size_t)j.gen.model->hp.vocab, j.pr->eos_ids, j.pr->n_eos,
                                     &err);
        if (!rc && mode != O_SCORE_MODE)
            rc = mt_gen_grammars_set_default(j.gen.grammars, go.schema_file, go.regex, go.grammar_file, &err);
        j.gen.model->batch_invariant = go.batch_invariant;
        if (!rc) rc = mt_sampler_params_check(sp, (size_t)j.gen.model->hp.vocab, &err);
    }
    mt_jsonl_stats st = {0};
    int fatal = rc != 0;
    if (!rc && prompt && need_model && mode != O_SCORE_MODE) {
        rc = one_shot(&j, prompt, chat, system, quiet, &err);
        fatal = rc != 0;
    } else if (!rc) {
        FILE *in = stdin;
        char *pbuf = NULL;
        if (prompt) {   /* --tokenize -p */
            json_t *r = json_pack("{s:s}", "text", prompt);
            pbuf = r ? json_dumps(r, JSON_COMPACT) : NULL;
            json_decref(r);
            in = pbuf ? fmemopen(pbuf, strlen(pbuf), "r") : NULL;
            if (!in) { free(pbuf); fprintf(stderr, "mlx-gen: -p: the prompt is not valid UTF-8\n"); return MT_EXIT_USAGE; }
        }
        mt_jsonl_tick tick = {0};   /* progress inside long records (tokens generated) */
        mt_jsonl_opts o = {.prog = "mlx-gen", .text_mode = text_mode, .quiet = quiet, .tick = &tick,
                           .shard_k = shard_k, .shard_n = shard_n};
        gp->tick = &tick;
        FILE *out = stdout;
        mt_resume *rs = NULL;
        rc = mt_resume_begin(&rs, resume, &o, &out, &err);
        if (!rc && (mode == O_TOK || mode == O_DETOK))
            rc = mt_jsonl_run(in, out, stderr, &o, mode == O_TOK ? tokenize_fn : detokenize_fn, &j, &st, &err);
        else if (!rc && mode == O_SCORE_MODE)
            rc = mt_jsonl_run_batch(in, out, stderr, &o, 1, mt_score_handler, &j.gen, &st, &err);
        else if (!rc && go.lockstep)
            rc = mt_jsonl_run_batch(in, out, stderr, &o, j.gen.batch, mt_gen_batch_handler, &j.gen, &st, &err);
        else if (!rc) {
            rc = mt_jsonl_run_stream(in, out, stderr, &o, mt_gen_stream_handler, &j.gen, &st, &err);
            if (!quiet && j.gen.batch > 1 && j.gen.decode_steps)
                fprintf(stderr, "mlx-gen: %zu decode steps, mean batch %.2f of %zu\n", j.gen.decode_steps,
                        (double)j.gen.decode_rows / (double)j.gen.decode_steps, j.gen.batch);
        }
        rc = mt_resume_end(rs, out, rc, &o, &st, stderr, &err);
        fatal = rc != 0;
        if (prompt) fclose(in);
        free(pbuf);
    }
    if (fatal) fprintf(stderr, "mlx-gen: %s\n", err.msg);
    char gsum[400];
    if (!quiet && mt_gen_structured_summary(&j.gen, gsum, sizeof gsum)) fprintf(stderr, "mlx-gen: %s\n", gsum);
    mt_gen_grammars_free(j.gen.grammars);
    mt_prefix_store_free(store);
    mt_gen_caches_free(j.gen.caches);
    mt_model_free(j.gen.model);
    mt_model_free(draft_m);
    mt_pool_free(pool);
    mt_prompter_free(j.pr);
    if (fclose(stdout) != 0 && !fatal) { fprintf(stderr, "mlx-gen: write error on stdout\n"); return MT_EXIT_FATAL; }
    if (fatal) return err.code == MT_EUSAGE ? MT_EXIT_USAGE : MT_EXIT_FATAL;
    return mt_jsonl_exit_code(0, &st);
}
