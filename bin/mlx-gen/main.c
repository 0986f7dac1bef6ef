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
#include "gen/pcache.h"
#include "gen/request.h"
#include "kv/prefix.h"
#include "io/hub.h"
#include "models/model.h"
#include "text/prompter.h"

static const char usage[] =
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
    "  -n, --max-tokens N       default 256\n"
    "      --temp T             0 = greedy (default)\n"
    "      --top-p P  --top-k K  --min-p P  --min-tokens-to-keep N\n"
    "      --xtc-probability P  --xtc-threshold T\n"
    "      --repetition-penalty P  --presence-penalty P  --frequency-penalty P\n"
    "      --seed N             default 0\n"
    "      --stop TEXT          stop string (repeatable); not emitted\n"
    "      --ids                add the generated token ids (\"ids\") to each answer\n"
    "      --logprobs K         add each generated token's logprob and its top-K alternatives\n"
    "      --batch N            decode N records together (batched products); answers keep input order\n"
    "      --score              {\"text\"|\"ids\"} -> each token's logprob given its prefix, sum, perplexity\n"
    "      --resume FILE        append answers to FILE, skipping ids already answered there\n"
    "      --shard K/N          handle only the records at positions K, K+N, K+2N, ... (0-based;\n"
    "                           N processes with K = 0..N-1 split one input, see mlx-tools-cluster(7))\n"
    "      --reproducible       answers that depend on their record alone, so runs and merged shards\n"
    "                           compare byte for byte: no prefill_tps, decode_tps, cached_tokens\n"
    "                           (OpenAI lines: created), no prefix reuse across records (a prefix\n"
    "                           computed in other chunks differs in the last float bits); with\n"
    "                           --batch N > 1 answers still depend on the batch's composition\n"
    "      --max-kv-size N      bound the KV cache to N tokens (rotating, keeps the first 4)\n"
    "      --prefill-step-size N  prompt tokens per forward pass (default 2048)\n"
    "      --prompt-cache FILE  continue every record from this KV-state file (mlx-kvpack build, or\n"
    "                           mlx_lm.cache_prompt's .safetensors); per record: \"prompt_cache\"\n"
    "      --save-prompt-cache PATH  write the KV state after each prompt: to PATH (one record), or\n"
    "                           with PATH ending in / to PATH<id>.kv.zst; per record: \"save_prompt_cache\"\n"
    "      --save-after-generation  save the state after generation (prompt + answer) instead\n"
    "      --prefix-cache-mb N  reuse the KV state of shared prompt prefixes across records, keeping\n"
    "                           up to N MB of snapshots (default 512; 0 = off)\n"
    "      --kv-bits B          quantize the KV cache: 8 or 4 (mlx-lm's QuantizedKVCache), or 3\n"
    "                           (rotation + Lloyd-Max codebook); --kv-group-size N (64),\n"
    "                           --quantized-kv-start N (5000, as mlx_lm.generate; 3 bits: 0)\n"
    "      --kv-type T          how the KV cache stores keys/values: f16, f32, or auto (default:\n"
    "                           f16 for models with 16-bit weights, as mlx-lm caches in the model's\n"
    "                           dtype and llama.cpp in f16; f32 for float32 models)\n"
    "      --numerics f32|mlx   arithmetic of 16-bit models: f32 (default; float32 activations, more\n"
    "                           accurate) or mlx (mlx-lm's: rounded to the model's dtype where mlx\n"
    "                           rounds, bit for bit on mlx's CPU backend; see mlx-gen(1))\n"
    "      --int8               int8 activations with integer dot products for quantized weights\n"
    "                           (faster; logits differ from mlx by a few percent; = MT_QMATH=int8)\n"
    "  -t, --threads N          default: all cores\n"
    "      --tokenize           {\"text\"|\"prompt\"|\"messages\"} -> {\"id\",\"prompt\",\"ids\",\"n\"}\n"
    "      --detokenize         {\"ids\"} -> {\"id\",\"text\"}  (--skip-special drops special tokens)\n"
    "      --text               stdin holds one plain-text prompt per line\n"
    "      --no-generation-prompt  default add_generation_prompt=false for messages\n"
    "      --revision REV       hub revision (default main)\n"
    "  -q, --quiet              nothing on stderr but fatal errors\n"
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
        mt_gen_result_free(&res);
    }
    free(ids);
    json_decref(rec);
    return rc;
}

static int num_arg(const char *opt, const char *s, double lo, double hi, double *out) {
    return mt_cli_number(stderr, "mlx-gen", opt, s, lo, hi, out);
}

int main(int argc, char **argv) {
    enum { O_TOK = 256, O_DETOK, O_TEXT, O_NOGP, O_SKIP, O_VERSION, O_REV, O_CHAT, O_SYSTEM, O_TEMP, O_TOPP, O_TOPK,
           O_MINP, O_MINKEEP, O_XTCP, O_XTCT, O_REP, O_PRES, O_FREQ, O_SEED, O_STOP, O_IDS, O_LOGPROBS, O_BATCH, O_SCORE, O_RESUME, O_MAXKV, O_PREFILL, O_INT8, O_KVTYPE,
           O_PCACHE, O_SAVECACHE, O_PREFIXMB, O_KVBITS, O_KVGROUP, O_KVSTART, O_SAVEAFTER, O_SHARD, O_REPRO, O_NUMERICS };
    static const struct option lo[] = {
        {"model", 1, 0, 'm'}, {"prompt", 1, 0, 'p'}, {"max-tokens", 1, 0, 'n'}, {"threads", 1, 0, 't'},
        {"tokenize", 0, 0, O_TOK}, {"detokenize", 0, 0, O_DETOK}, {"text", 0, 0, O_TEXT},
        {"no-generation-prompt", 0, 0, O_NOGP}, {"skip-special", 0, 0, O_SKIP}, {"revision", 1, 0, O_REV},
        {"chat", 0, 0, O_CHAT}, {"system", 1, 0, O_SYSTEM}, {"temp", 1, 0, O_TEMP}, {"top-p", 1, 0, O_TOPP},
        {"top-k", 1, 0, O_TOPK}, {"min-p", 1, 0, O_MINP}, {"min-tokens-to-keep", 1, 0, O_MINKEEP},
        {"xtc-probability", 1, 0, O_XTCP}, {"xtc-threshold", 1, 0, O_XTCT}, {"repetition-penalty", 1, 0, O_REP},
        {"presence-penalty", 1, 0, O_PRES}, {"frequency-penalty", 1, 0, O_FREQ}, {"seed", 1, 0, O_SEED},
        {"stop", 1, 0, O_STOP}, {"ids", 0, 0, O_IDS}, {"logprobs", 1, 0, O_LOGPROBS}, {"batch", 1, 0, O_BATCH},
        {"score", 0, 0, O_SCORE}, {"resume", 1, 0, O_RESUME}, {"max-kv-size", 1, 0, O_MAXKV},
        {"prefill-step-size", 1, 0, O_PREFILL}, {"int8", 0, 0, O_INT8}, {"kv-type", 1, 0, O_KVTYPE},
        {"prompt-cache", 1, 0, O_PCACHE}, {"save-prompt-cache", 1, 0, O_SAVECACHE}, {"save-after-generation", 0, 0, O_SAVEAFTER}, {"prefix-cache-mb", 1, 0, O_PREFIXMB},
        {"kv-bits", 1, 0, O_KVBITS}, {"kv-group-size", 1, 0, O_KVGROUP}, {"quantized-kv-start", 1, 0, O_KVSTART},
        {"shard", 1, 0, O_SHARD}, {"reproducible", 0, 0, O_REPRO}, {"numerics", 1, 0, O_NUMERICS}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, {"version", 0, 0, O_VERSION},
        {0, 0, 0, 0}};
    mt_blas_init(argv);
    mt_sig_install("mlx-gen");   /* SIGINT/SIGTERM: temp files removed, exit 128+N; SIGBUS on a cut model file: a message */
    const char *model = NULL, *prompt = NULL, *revision = NULL, *system = NULL, *resume = NULL;
    const char *stops[64];
    int mode = 0, quiet = 0, text_mode = 0, chat = 0, threads = 0, batch = 1, c, kv_start = -1, int8 = 0;
    int numerics = MT_NUMERICS_F32;
    double prefix_mb = 512;
    size_t shard_k = 0, shard_n = 0;
    job j = {.agp = 1};
    mt_gen_params *gp = &j.gen.defaults;
    mt_gen_params_default(gp);
    mt_sampler_params *sp = &gp->sp;
    double v;
    while ((c = getopt_long(argc, argv, "m:p:n:t:qh", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model = optarg; break;
        case 'p': prompt = optarg; break;
        case 'n': bad = num_arg("--max-tokens", optarg, 0, 1 << 24, &v); gp->max_tokens = (int)v; break;
        case 't': bad = num_arg("--threads", optarg, 1, 256, &v); threads = (int)v; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        case O_VERSION: printf("mlx-gen %s\n", MT_VERSION); return 0;
        case O_TOK: case O_DETOK: case O_SCORE:
            if (mode && mode != c) { fprintf(stderr, "mlx-gen: --tokenize, --detokenize and --score exclude each other\n"); return MT_EXIT_USAGE; }
            mode = c; break;
        case O_TEXT: text_mode = 1; break;
        case O_NOGP: j.agp = 0; break;
        case O_SKIP: j.skip_special = 1; break;
        case O_REV: revision = optarg; break;
        case O_CHAT: chat = 1; break;
        case O_SYSTEM: system = optarg; break;
        case O_TEMP: bad = num_arg("--temp", optarg, 0, 1e6, &v); sp->temp = (float)v; break;
        case O_TOPP: bad = num_arg("--top-p", optarg, 0, 1, &v); sp->top_p = (float)v; break;
        case O_TOPK: bad = num_arg("--top-k", optarg, 0, 1 << 30, &v); sp->top_k = (int)v; break;
        case O_MINP: bad = num_arg("--min-p", optarg, 0, 1, &v); sp->min_p = (float)v; break;
        case O_MINKEEP: bad = num_arg("--min-tokens-to-keep", optarg, 1, 1 << 30, &v); sp->min_tokens_to_keep = (int)v; break;
        case O_XTCP: bad = num_arg("--xtc-probability", optarg, 0, 1, &v); sp->xtc_probability = (float)v; break;
        case O_XTCT: bad = num_arg("--xtc-threshold", optarg, 0, 0.5, &v); sp->xtc_threshold = (float)v; break;
        case O_REP: bad = num_arg("--repetition-penalty", optarg, 0, 1e6, &v); sp->repetition_penalty = (float)v; break;
        case O_PRES: bad = num_arg("--presence-penalty", optarg, -1e6, 1e6, &v); sp->presence_penalty = (float)v; break;
        case O_FREQ: bad = num_arg("--frequency-penalty", optarg, -1e6, 1e6, &v); sp->frequency_penalty = (float)v; break;
        case O_SEED: bad = num_arg("--seed", optarg, 0, 9007199254740992.0, &v); sp->seed = (uint64_t)v; break;
        case O_IDS: j.gen.return_ids = 1; break;
        case O_LOGPROBS: bad = num_arg("--logprobs", optarg, 0, 1000, &v); gp->logprobs = (int)v; break;
        case O_BATCH: bad = num_arg("--batch", optarg, 1, 4096, &v); batch = (int)v; break;
        case O_RESUME: resume = optarg; break;
        case O_SHARD: bad = mt_cli_shard(stderr, "mlx-gen", optarg, &shard_k, &shard_n); break;
        case O_REPRO: j.gen.reproducible = 1; break;
        /* the kernels read MT_QMATH (tensor/linear.h): setting it here selects the int8 path for
         * every quantized matrix of this process */
        case O_INT8: setenv("MT_QMATH", "int8", 1); int8 = 1; break;
        case O_NUMERICS:
            if ((numerics = mt_numerics_parse(optarg)) < 0) {
                fprintf(stderr, "mlx-gen: --numerics: '%s' is not f32 or mlx\n", optarg);
                bad = 1;
            }
            break;
        case O_KVTYPE:
            if (!strcmp(optarg, "f16")) gp->kv_f16 = 1;
            else if (!strcmp(optarg, "f32")) gp->kv_f16 = 0;
            else if (!strcmp(optarg, "auto")) gp->kv_f16 = -1;
            else { fprintf(stderr, "mlx-gen: --kv-type: '%s' is not f16, f32 or auto\n", optarg); bad = 1; }
            break;
        case O_PCACHE: j.gen.prompt_cache = optarg; break;
        case O_SAVECACHE: j.gen.save_cache = optarg; break;
        case O_SAVEAFTER: j.gen.save_after_generation = 1; break;
        case O_PREFIXMB: bad = num_arg("--prefix-cache-mb", optarg, 0, 1 << 24, &prefix_mb); break;
        case O_KVBITS:
            bad = num_arg("--kv-bits", optarg, 2, 8, &v);
            gp->kv_bits = (int)v;
            if (!bad && (v != 8 && v != 4 && v != 3 && v != 2 && v != 5 && v != 6)) {
                fprintf(stderr, "mlx-gen: --kv-bits: %s is not 8, 6, 5, 4, 3 or 2\n", optarg);
                bad = 1;
            }
            break;
        case O_KVGROUP:
            bad = num_arg("--kv-group-size", optarg, 32, 128, &v);
            gp->kv_group_size = (int)v;
            if (!bad && v != 32 && v != 64 && v != 128) { fprintf(stderr, "mlx-gen: --kv-group-size: %s is not 32, 64 or 128\n", optarg); bad = 1; }
            break;
        case O_KVSTART: bad = num_arg("--quantized-kv-start", optarg, 0, 1 << 30, &v); kv_start = (int)v; break;
        case O_MAXKV: bad = num_arg("--max-kv-size", optarg, 5, 1 << 30, &v); gp->max_kv_size = (int)v; break;
        case O_PREFILL: bad = num_arg("--prefill-step-size", optarg, 1, 1 << 30, &v); gp->prefill_step = (int)v; break;
        case O_STOP:
            if (gp->n_stop == 64) { fprintf(stderr, "mlx-gen: at most 64 --stop strings\n"); return MT_EXIT_USAGE; }
            stops[gp->n_stop++] = optarg; break;
        default: bad = 1;
        }
        if (bad) { fputs("Try 'mlx-gen --help'.\n", stderr); return MT_EXIT_USAGE; }
    }
    gp->stop = stops;
    gp->kv_start = kv_start >= 0 ? kv_start : 5000;   /* mlx_lm.generate's default */
    if (gp->kv_bits > 0 && gp->max_kv_size > 0) {
        fprintf(stderr, "mlx-gen: --kv-bits does not go with --max-kv-size (a rotating cache cannot be quantized, as in mlx-lm)\n");
        return MT_EXIT_USAGE;
    }
    if (int8 && numerics == MT_NUMERICS_MLX) {
        fprintf(stderr, "mlx-gen: --int8 does not go with --numerics mlx (mlx computes in the model's dtype)\n");
        return MT_EXIT_USAGE;
    }
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
    if (!rc && need_model && mode != O_SCORE) rc = mt_gen_caches_new(&j.gen.caches, j.gen.model, dir, model, &err);
    if (!rc && j.gen.save_dir) rc = mt_mkdirs(j.gen.save_cache, &err);
    free(dir);
    mt_prefix_store *store = NULL;
    if (!rc && need_model && mode != O_SCORE && !prompt && prefix_mb > 0 && !j.gen.reproducible) {
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
        rc = mt_sampler_params_check(sp, (size_t)j.gen.model->hp.vocab, &err);
    }
    mt_jsonl_stats st = {0};
    int fatal = rc != 0;
    if (!rc && prompt && need_model && mode != O_SCORE) {
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
        else if (!rc)
            rc = mt_jsonl_run_batch(in, out, stderr, &o, mode == O_SCORE ? 1 : (size_t)batch,
                                    mode == O_SCORE ? mt_score_handler : mt_gen_batch_handler, &j.gen, &st, &err);
        rc = mt_resume_end(rs, out, rc, &o, &st, stderr, &err);
        fatal = rc != 0;
        if (prompt) fclose(in);
        free(pbuf);
    }
    if (fatal) fprintf(stderr, "mlx-gen: %s\n", err.msg);
    mt_prefix_store_free(store);
    mt_gen_caches_free(j.gen.caches);
    mt_model_free(j.gen.model);
    mt_pool_free(pool);
    mt_prompter_free(j.pr);
    if (fclose(stdout) != 0 && !fatal) { fprintf(stderr, "mlx-gen: write error on stdout\n"); return MT_EXIT_FATAL; }
    if (fatal) return err.code == MT_EUSAGE ? MT_EXIT_USAGE : MT_EXIT_FATAL;
    return mt_jsonl_exit_code(0, &st);
}
