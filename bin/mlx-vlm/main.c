/* mlx-vlm - image + text to text for MLX-format vision-language models, as a Unix filter.
 *   one-shot: mlx-vlm -m MODEL --image FILE -p "prompt"     (streams text to stdout)
 *   batch:    mlx-vlm -m MODEL < records.jsonl              (one answer line per record)
 * The generation options, the record loop, batching, resuming and scoring are mlx-gen's
 * (gen/genopts.h, gen/request.h); the images go through gen/vlm_job.h. */
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
#include "gen/vlm_job.h"
#include "io/hub.h"
#include "kv/prefix.h"
#include "models/vlm.h"
#include "text/prompter.h"

static const char usage_fmt[] =
    "usage: mlx-vlm -m MODEL --image FILE -p PROMPT [options]   answer about an image, streaming to stdout\n"
    "       mlx-vlm -m MODEL [options] < records.jsonl            one answer line per record\n"
    "\n"
    "MODEL is a vision-language model folder (mlx-community layout: idefics3 / SmolVLM) or a\n"
    "Hugging Face repo id found in the HF cache.  Records: {\"id\", \"image\": FILE|[FILES], \"prompt\"},\n"
    "{\"id\", \"messages\"} with OpenAI content parts ({\"type\": \"image_url\", \"image_url\": {\"url\": ...}}),\n"
    "or OpenAI Batch API request lines.  FILE: a path, a data:image/...;base64 URL, or \"-\" for the\n"
    "image given on stdin with --image - (one-shot only).  Options below may also be given per record.\n"
    "\n"
    "  -p, --prompt TEXT        the question (one-shot); the chat template is applied\n"
    "      --image FILE         an image for -p (repeatable; \"-\" reads it from stdin)\n"
    "      --system TEXT        a system message for -p\n"
    "      --image-cache-mb N   keep the encodings of up to N MB of images, so an image that comes\n"
    "                           again is not encoded again (default 256; 0 = off)\n"
    "      --max-pixels N       refuse images above N pixels (default 89478485, Pillow's limit)\n"
    "%s"
    "      --no-generation-prompt  default add_generation_prompt=false for messages\n"
    "      --revision REV       hub revision (default main)\n"
    "  -q, --quiet              nothing on stderr but fatal errors\n"
    "  -h, --help  --version\n"
    "\n"
    "Exit status: 0 all records done, 3 some records failed, 2 usage error, 1 fatal error.\n";

static int stream_out(void *user, const char *piece, size_t len) {
    (void)user;
    return fwrite(piece, 1, len, stdout) != len || fflush(stdout) != 0;
}

/* -p with --image: one answer, streamed. */
static int one_shot(mt_gen_job *g, const char *prompt, const char *const *images, size_t n_images, const char *system,
                    int quiet, mt_err *err) {
    /* the images as the record's "image": vlm_job puts them before or after the text as the
     * family's mlx-vlm message format does (Qwen2-VL: after) */
    json_t *imgs = json_array();
    for (size_t i = 0; i < n_images; i++) json_array_append_new(imgs, json_string(images[i]));
    json_t *text = json_string(prompt);
    if (!text) {
        json_decref(imgs);
        return mt_seterr(err, MT_EUSAGE, "the prompt is not valid UTF-8");
    }
    json_t *rec = json_pack("{s:[],s:o}", "messages", "image", imgs), *msgs = json_object_get(rec, "messages");
    if (system) json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", system));
    json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "user", "content", text));
    int32_t *ids = NULL;
    size_t n = 0;
    mt_gen_result res;
    mt_gen_request req = {.gp = g->defaults, .prompt_rec = rec};
    char *save = NULL;
    int agp = g->add_generation_prompt;
    g->add_generation_prompt = 1;
    int rc = mt_gen_record_prepare(g, rec, 1, &req, &ids, &n, &save, err);
    g->add_generation_prompt = agp;
    if (!rc) rc = mt_generate(g->model, g->pr->tok, ids, n, &req.gp, stream_out, NULL, &res, err);
    free(save);
    if (!rc) {
        fputc('\n', stdout);
        if (!quiet)
            fprintf(stderr, "Prompt: %zu tokens, %.3f tokens-per-sec\nGeneration: %zu tokens, %.3f tokens-per-sec\n",
                    res.prompt_tokens, res.prefill_s > 0 ? res.prompt_tokens / res.prefill_s : 0, res.n_tokens,
                    res.decode_s > 0 ? res.n_tokens / res.decode_s : 0);
        mt_gen_result_free(&res);
    }
    mt_gen_request_free(&req);
    free(ids);
    json_decref(rec);
    return rc;
}

int main(int argc, char **argv) {
    enum { O_IMAGE = 256, O_SYSTEM, O_CACHEMB, O_MAXPIX, O_NOGP, O_REV, O_VERSION };
    static const struct option own[] = {
        {"model", 1, 0, 'm'}, {"prompt", 1, 0, 'p'}, {"image", 1, 0, O_IMAGE}, {"system", 1, 0, O_SYSTEM},
        {"image-cache-mb", 1, 0, O_CACHEMB}, {"max-pixels", 1, 0, O_MAXPIX}, {"no-generation-prompt", 0, 0, O_NOGP},
        {"revision", 1, 0, O_REV}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, {"version", 0, 0, O_VERSION}};
    mt_blas_init(argv);
    mt_sig_install("mlx-vlm");
    struct option *lo = mt_genopts_table(own, sizeof own / sizeof own[0]);
    if (!lo) { fprintf(stderr, "mlx-vlm: out of memory\n"); return MT_EXIT_FATAL; }
    const char *model = NULL, *prompt = NULL, *system = NULL, *revision = NULL, *images[64];
    size_t n_images = 0;
    int quiet = 0, agp = 1, c;
    double cache_mb = 256, max_pixels = 0;
    mt_genopts go;
    mt_genopts_init(&go);
    while ((c = getopt_long(argc, argv, "m:p:qh" MT_GENOPTS_SHORT, lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model = optarg; break;
        case 'p': prompt = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': printf(usage_fmt, mt_genopts_usage); free(lo); return 0;
        case O_VERSION: printf("mlx-vlm %s\n", MT_VERSION); free(lo); return 0;
        case O_IMAGE:
            if (n_images == 64) { fprintf(stderr, "mlx-vlm: at most 64 --image\n"); free(lo); return MT_EXIT_USAGE; }
            images[n_images++] = optarg;
            break;
        case O_SYSTEM: system = optarg; break;
        case O_CACHEMB: bad = mt_cli_number(stderr, "mlx-vlm", "--image-cache-mb", optarg, 0, 1 << 24, &cache_mb); break;
        case O_MAXPIX: bad = mt_cli_number(stderr, "mlx-vlm", "--max-pixels", optarg, 1, 1e12, &max_pixels); break;
        case O_NOGP: agp = 0; break;
        case O_REV: revision = optarg; break;
        default: bad = mt_genopts_parse(&go, c, optarg, stderr, "mlx-vlm") <= 0;
        }
        if (bad) { fputs("Try 'mlx-vlm --help'.\n", stderr); free(lo); return MT_EXIT_USAGE; }
    }
    free(lo);
    if (mt_genopts_finish(&go, stderr, "mlx-vlm")) return MT_EXIT_USAGE;
    if (optind < argc) { fprintf(stderr, "mlx-vlm: unexpected argument '%s'\n", argv[optind]); return MT_EXIT_USAGE; }
    if (!model) { fprintf(stderr, "mlx-vlm: no model: give -m MODEL (see --help)\n"); return MT_EXIT_USAGE; }
    if (n_images && !prompt) { fprintf(stderr, "mlx-vlm: --image goes with -p (records name their images)\n"); return MT_EXIT_USAGE; }
    if (system && !prompt) { fprintf(stderr, "mlx-vlm: --system goes with -p\n"); return MT_EXIT_USAGE; }
    if (prompt && (go.resume || go.shard_n || go.score)) {
        fprintf(stderr, "mlx-vlm: --resume, --shard and --score go with records on stdin, not -p\n");
        return MT_EXIT_USAGE;
    }
    if (go.prompt_cache || go.save_cache) {
        fprintf(stderr, "mlx-vlm: prompt caches do not go with images yet (--prompt-cache, --save-prompt-cache)\n");
        return MT_EXIT_USAGE;
    }
    int stdin_image = 0;
    for (size_t i = 0; i < n_images; i++) stdin_image += !strcmp(images[i], "-");
    if (stdin_image > 1) { fprintf(stderr, "mlx-vlm: --image - may be given once\n"); return MT_EXIT_USAGE; }

    mt_err err = {0};
    mt_hub_opts hopts = {.revision = revision};
    mt_progress_bar bar = {.f = stderr};
    if (!quiet && isatty(STDERR_FILENO)) { hopts.progress = mt_progress_bar_cb; hopts.progress_user = &bar; }
    char *dir = NULL;
    mt_pool *pool = NULL;
    mt_prompter *pr = NULL;
    mt_vlm *vlm = NULL;
    mt_vlm_job *vj = NULL;
    mt_gen_job g = {0};
    void *img_bytes = NULL;
    size_t img_n = 0;
    int rc = mt_hub_resolve(model, &hopts, &dir, &err);
    if (!rc && stdin_image) rc = mt_read_stream(stdin, "stdin", (size_t)1 << 28, &img_bytes, &img_n, &err);
    if (!rc) rc = mt_prompter_open(&pr, dir, &err);
    if (!rc) rc = mt_pool_new(&pool, go.threads, &err);
    if (!rc) mt_blas_threads(1);   /* products are split over the pool (tensor/linear.c) */
    if (!rc) rc = mt_vlm_load(&vlm, dir, pool, &err);
    if (!rc) rc = mt_model_set_numerics(vlm->lm, go.numerics, &err);
    if (!rc) rc = mt_vlm_job_new(&vj, vlm, cache_mb, &err);
    free(dir);
    if (!rc) {
        mt_image_opts io = {.max_pixels = (uint64_t)max_pixels};
        mt_vlm_job_set_image_opts(vj, &io);
        if (img_bytes) mt_vlm_job_set_stdin_image(vj, img_bytes, img_n);
    }
    mt_prefix_store *store = NULL;
    if (!rc) {
        g.model = vlm->lm;
        g.pr = pr;
        g.model_name = model;
        g.defaults = go.gp;
        g.defaults.eos = pr->eos_ids;
        g.defaults.n_eos = pr->n_eos;
        g.defaults.trim_first_space = 0;   /* mlx-vlm's BPE detokenizer keeps a leading space (trim_space=False) */
        g.add_generation_prompt = agp;
        g.return_ids = go.return_ids;
        g.reproducible = go.reproducible;
        g.score_kv_f16 = go.gp.kv_f16 >= 0 ? go.gp.kv_f16 : -1;
        g.media = mt_vlm_job_record;
        g.media_user = vj;
        /* the text-only records of a job still share their prompt prefixes */
        if (!prompt && go.prefix_mb > 0 && !go.reproducible && !go.score) {
            rc = mt_prefix_store_new(&store, (size_t)(go.prefix_mb * 1e6), &err);
            g.defaults.store = store;
        }
        if (!rc) rc = mt_sampler_params_check(&g.defaults.sp, (size_t)vlm->lm->hp.vocab, &err);
        if (!rc && !go.score)   /* structured output (gen/structured.h) */
            rc = mt_gen_grammars_new(&g.grammars, pr->tok, (size_t)vlm->lm->hp.vocab, pr->eos_ids, pr->n_eos, &err);
        if (!rc && !go.score) rc = mt_gen_grammars_set_default(g.grammars, go.schema_file, go.regex, go.grammar_file, &err);
    }
    mt_jsonl_stats st = {0};
    int fatal = rc != 0;
    if (!rc && prompt) {
        rc = one_shot(&g, prompt, images, n_images, system, quiet, &err);
        fatal = rc != 0;
    } else if (!rc) {
        mt_jsonl_tick tick = {0};
        mt_jsonl_opts o = {.prog = "mlx-vlm", .quiet = quiet, .tick = &tick, .shard_k = go.shard_k,
                           .shard_n = go.shard_n};
        g.defaults.tick = &tick;
        FILE *out = stdout;
        mt_resume *rs = NULL;
        rc = mt_resume_begin(&rs, go.resume, &o, &out, &err);
        g.batch = mt_genopts_batch(&go, vlm->lm);
        vlm->lm->batch_invariant = go.batch_invariant;
        if (!rc && go.score)
            rc = mt_jsonl_run_batch(stdin, out, stderr, &o, 1, mt_score_handler, &g, &st, &err);
        else if (!rc && go.lockstep)
            rc = mt_jsonl_run_batch(stdin, out, stderr, &o, g.batch, mt_gen_batch_handler, &g, &st, &err);
        else if (!rc)
            rc = mt_jsonl_run_stream(stdin, out, stderr, &o, mt_gen_stream_handler, &g, &st, &err);
        rc = mt_resume_end(rs, out, rc, &o, &st, stderr, &err);
        fatal = rc != 0;
        if (!quiet && !fatal && vj) {
            size_t enc, reused;
            mt_vlm_job_counts(vj, &enc, &reused);
            fprintf(stderr, "mlx-vlm: %zu images encoded, %zu reused\n", enc, reused);
        }
    }
    if (fatal) fprintf(stderr, "mlx-vlm: %s\n", err.msg);
    char gsum[400];
    if (!quiet && mt_gen_structured_summary(&g, gsum, sizeof gsum)) fprintf(stderr, "mlx-vlm: %s\n", gsum);
    mt_gen_grammars_free(g.grammars);
    mt_prefix_store_free(store);
    mt_vlm_job_free(vj);
    mt_vlm_free(vlm);
    mt_pool_free(pool);
    mt_prompter_free(pr);
    free(img_bytes);
    if (fclose(stdout) != 0 && !fatal) { fprintf(stderr, "mlx-vlm: write error on stdout\n"); return MT_EXIT_FATAL; }
    if (fatal) return err.code == MT_EUSAGE ? MT_EXIT_USAGE : MT_EXIT_FATAL;
    return mt_jsonl_exit_code(0, &st);
}
