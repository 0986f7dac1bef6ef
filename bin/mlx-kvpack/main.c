/* mlx-kvpack - KV-state (prompt-cache) files between pipeline stages.
 *   build -m MODEL -o DIR|FILE   records on stdin -> the KV state after each prompt
 *   inspect FILE...              one JSONL line per file
 *   quantize|dequantize|trim|pack|unpack IN -o OUT
 *   verify -m MODEL FILE...      the file is whole and fits the model */
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
#include "io/hub.h"
#include "kv/prefix.h"
#include "kv/kvtool.h"
#include "text/prompter.h"

static const char usage[] =
    "usage: mlx-kvpack build -m MODEL -o DIR/|FILE [options] < records.jsonl\n"
    "       mlx-kvpack inspect [-m MODEL] FILE...\n"
    "       mlx-kvpack quantize --kv-bits 8|4 [--kv-group-size 32|64|128] IN -o OUT\n"
    "       mlx-kvpack dequantize IN -o OUT\n"
    "       mlx-kvpack trim -n N IN -o OUT\n"
    "       mlx-kvpack pack [--level L] IN -o OUT      (zstd frame)\n"
    "       mlx-kvpack unpack IN -o OUT                (plain safetensors, as mlx-lm writes it)\n"
    "       mlx-kvpack verify -m MODEL FILE...\n"
    "\n"
    "A KV-state file is mlx-lm's prompt-cache safetensors (mlx_lm.cache_prompt, load_prompt_cache),\n"
    "plain or in one zstd frame (.kv.zst; `zstd -d` gives the safetensors back), with the token\n"
    "ids, the model's fingerprint and the text in its metadata.  build reads records\n"
    "{\"id\", \"prompt\"|\"messages\"} (or --text lines) and writes one file per record into DIR/ as\n"
    "<id>.kv.zst (or FILE for one record); mlx-gen --prompt-cache FILE continues from it.\n"
    "\n"
    "  -m, --model MODEL        a model folder or HF repo id (build, verify; inspect: decode the text)\n"
    "  -o, --output PATH        output file (build: a folder ending in /, or a file for one record)\n"
    "      --prompt-cache FILE  build: start from this cache (extend a prefix)\n"
    "      --kv-bits B          build, quantize: 8 or 4 (QuantizedKVCache); --kv-group-size N (64)\n"
    "      --max-kv-size N      build: a rotating cache of N tokens keeping the first 4 (mlx-lm)\n"
    "      --kv-type T          build: f16, f32 or auto (default: the model's dtype, as mlx-lm)\n"
    "      --numerics f32|mlx   build: the arithmetic of 16-bit models, as mlx-gen --numerics\n"
    "      --level L            zstd level (default 3); --plain writes plain safetensors\n"
    "  -n N                     trim: tokens to drop from the end\n"
    "      --text               build: stdin holds one plain-text prompt per line\n"
    "      --add-generation-prompt  build: render \"messages\" with the generation prompt (default off:\n"
    "                           the cache then ends where the next turn starts)\n"
    "      --shard K/N          build, inspect, verify: only the records (files) at positions K, K+N,\n"
    "                           K+2N, ... (0-based; see mlx-tools-cluster(7))\n"
    "      --resume FILE        build: the answer lines go to FILE; a rerun skips the records answered there\n"
    "      --reproducible       build: files and lines that depend on their record alone (no\n"
    "                           cached_tokens, prefill_s, prefix reuse across records)\n"
    "  -t, --threads N  -q, --quiet  -h, --help  --version\n"
    "\n"
    "Exit status: 0 all done, 3 some records/files failed, 2 usage error, 1 fatal error.\n";

typedef struct kjob {
    mt_gen_job gen;
    const char *out;
    int reproducible;
} kjob;

/* build: one record -> one file */
static int build_fn(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err) {
    kjob *k = user;
    mt_gen_request req;
    MT_TRY(mt_gen_request_parse(&req, rec, &k->gen.defaults, 0, err));
    req.gp.max_tokens = 0;
    int32_t *ids = NULL;
    size_t n = 0;
    char *save = NULL;
    mt_gen_result res;
    int rc = mt_gen_record_prepare(&k->gen, rec, lineno, &req, &ids, &n, &save, err);
    if (!rc) rc = mt_generate(k->gen.model, k->gen.pr->tok, ids, n, &req.gp, NULL, NULL, &res, err);
    if (!rc) {
        rc = mt_gen_record_save(&k->gen, save, &res, err);
        mt_kvfile *f = NULL;
        if (!rc) rc = mt_kvfile_read(save, &f, err);
        if (!rc) {
            *out = mt_kvfile_describe(f, NULL);
            if (*out) {
                json_object_del(*out, "file");
                json_object_set_new(*out, "file", json_string(save));
                if (!k->reproducible) {
                    json_object_set_new(*out, "cached_tokens", json_integer((json_int_t)res.cached_tokens));
                    json_object_set_new(*out, "prefill_s", json_real(res.prefill_s));
                }
            }
        }
        mt_kvfile_free(f);
        mt_gen_result_free(&res);
    }
    free(save);
    free(ids);
    mt_gen_request_free(&req);
    return rc;
}

static int emit(json_t *o) {
    char *s = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    int bad = !s || printf("%s\n", s) < 0 || fflush(stdout) != 0;
    free(s);
    json_decref(o);
    return bad;
}

int main(int argc, char **argv) {
    enum { O_VERSION = 256, O_PCACHE, O_KVBITS, O_KVGROUP, O_MAXKV, O_KVTYPE, O_LEVEL, O_PLAIN, O_TEXT, O_AGP, O_SHARD,
           O_REPRO, O_RESUME, O_NUMERICS };
    static const struct option lo[] = {
        {"model", 1, 0, 'm'}, {"output", 1, 0, 'o'}, {"threads", 1, 0, 't'}, {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'h'}, {"version", 0, 0, O_VERSION}, {"prompt-cache", 1, 0, O_PCACHE},
        {"kv-bits", 1, 0, O_KVBITS}, {"kv-group-size", 1, 0, O_KVGROUP}, {"max-kv-size", 1, 0, O_MAXKV},
        {"kv-type", 1, 0, O_KVTYPE}, {"level", 1, 0, O_LEVEL}, {"plain", 0, 0, O_PLAIN}, {"text", 0, 0, O_TEXT},
        {"add-generation-prompt", 0, 0, O_AGP}, {"shard", 1, 0, O_SHARD}, {"reproducible", 0, 0, O_REPRO},
        {"resume", 1, 0, O_RESUME}, {"numerics", 1, 0, O_NUMERICS}, {0, 0, 0, 0}};
    mt_blas_init(argv);
    mt_sig_install("mlx-kvpack");
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? MT_EXIT_USAGE : 0;
    }
    if (!strcmp(argv[1], "--version")) { printf("mlx-kvpack %s\n", MT_VERSION); return 0; }
    const char *cmd = argv[1];
    static const char *const cmds[] = {"build", "inspect", "quantize", "dequantize", "trim", "pack", "unpack", "verify"};
    int ci = -1;
    for (int i = 0; i < 8; i++)
        if (!strcmp(cmd, cmds[i])) ci = i;
    if (ci < 0) { fprintf(stderr, "mlx-kvpack: unknown command '%s' (see --help)\n", cmd); return MT_EXIT_USAGE; }
    const char *model = NULL, *out = NULL, *resume = NULL;
    int threads = 0, quiet = 0, level = 3, text_mode = 0, c, bad = 0, numerics = -1;
    double v;
    kjob k = {0};
    mt_gen_params *gp = &k.gen.defaults;
    mt_gen_params_default(gp);
    mt_kvop op = {.group = 64, .level = 3};
    int have_n = 0;
    size_t shard_k = 0, shard_n = 0;
    optind = 2;
    while ((c = getopt_long(argc, argv, "m:o:t:n:qh", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case 't': bad = mt_cli_number(stderr, "mlx-kvpack", "--threads", optarg, 1, 256, &v); threads = (int)v; break;
        case 'n': bad = mt_cli_number(stderr, "mlx-kvpack", "-n", optarg, 0, 1e12, &v); op.n = (size_t)v; have_n = 1; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        case O_VERSION: printf("mlx-kvpack %s\n", MT_VERSION); return 0;
        case O_PCACHE: k.gen.prompt_cache = optarg; break;
        case O_KVBITS:
            bad = mt_cli_number(stderr, "mlx-kvpack", "--kv-bits", optarg, 2, 8, &v);
            op.bits = gp->kv_bits = (int)v;
            if (!bad && v != 8 && v != 4 && v != 6 && v != 5 && v != 3 && v != 2) {
                fprintf(stderr, "mlx-kvpack: --kv-bits: %s is not 8, 6, 5, 4, 3 or 2\n", optarg);
                bad = 1;
            }
            break;
        case O_KVGROUP:
            bad = mt_cli_number(stderr, "mlx-kvpack", "--kv-group-size", optarg, 32, 128, &v);
            op.group = gp->kv_group_size = (int)v;
            if (!bad && v != 32 && v != 64 && v != 128) { fprintf(stderr, "mlx-kvpack: --kv-group-size: %s is not 32, 64 or 128\n", optarg); bad = 1; }
            break;
        case O_MAXKV: bad = mt_cli_number(stderr, "mlx-kvpack", "--max-kv-size", optarg, 5, 1 << 30, &v); gp->max_kv_size = (int)v; break;
        case O_KVTYPE:
            if (!strcmp(optarg, "f16")) gp->kv_f16 = 1;
            else if (!strcmp(optarg, "f32")) gp->kv_f16 = 0;
            else if (!strcmp(optarg, "auto")) gp->kv_f16 = -1;
            else { fprintf(stderr, "mlx-kvpack: --kv-type: '%s' is not f16, f32 or auto\n", optarg); bad = 1; }
            break;
        case O_LEVEL: bad = mt_cli_number(stderr, "mlx-kvpack", "--level", optarg, 1, 19, &v); level = (int)v; break;
        case O_PLAIN: level = -1; break;
        case O_TEXT: text_mode = 1; break;
        case O_AGP: k.gen.add_generation_prompt = 1; break;
        case O_SHARD: bad = mt_cli_shard(stderr, "mlx-kvpack", optarg, &shard_k, &shard_n); break;
        case O_REPRO: k.reproducible = 1; break;
        case O_RESUME: resume = optarg; break;
        case O_NUMERICS:
            if ((numerics = mt_numerics_parse(optarg)) < 0) {
                fprintf(stderr, "mlx-kvpack: --numerics: '%s' is not f32 or mlx\n", optarg);
                bad = 1;
            }
            break;
        default: bad = 1;
        }
        if (bad) { fputs("Try 'mlx-kvpack --help'.\n", stderr); return MT_EXIT_USAGE; }
    }
    op.level = level < 0 ? 3 : level;
    const char *name = cmds[ci];
    int nfiles = argc - optind;
    int needs_model = ci == 0 || ci == 7, one_in = ci >= 2 && ci <= 6;
    if (needs_model && !model) { fprintf(stderr, "mlx-kvpack %s: give -m MODEL\n", name); return MT_EXIT_USAGE; }
    if ((ci == 0 || one_in) && !out) { fprintf(stderr, "mlx-kvpack %s: give -o OUTPUT\n", name); return MT_EXIT_USAGE; }
    if (one_in && nfiles != 1) { fprintf(stderr, "mlx-kvpack %s: give one input file\n", name); return MT_EXIT_USAGE; }
    if ((ci == 1 || ci == 7) && nfiles < 1) { fprintf(stderr, "mlx-kvpack %s: give one or more files\n", name); return MT_EXIT_USAGE; }
    if (ci == 0 && nfiles) { fprintf(stderr, "mlx-kvpack build: records come on stdin, not as arguments\n"); return MT_EXIT_USAGE; }
    if (shard_n && one_in) { fprintf(stderr, "mlx-kvpack %s: --shard goes with build, inspect and verify\n", name); return MT_EXIT_USAGE; }
    if (resume && ci) { fprintf(stderr, "mlx-kvpack %s: --resume goes with build\n", name); return MT_EXIT_USAGE; }
    if (k.reproducible && ci) { fprintf(stderr, "mlx-kvpack %s: --reproducible goes with build\n", name); return MT_EXIT_USAGE; }
    if (numerics >= 0 && ci) { fprintf(stderr, "mlx-kvpack %s: --numerics goes with build\n", name); return MT_EXIT_USAGE; }
    if (ci == 2 && !op.bits) { fprintf(stderr, "mlx-kvpack quantize: give --kv-bits 8 or 4\n"); return MT_EXIT_USAGE; }
    if (ci == 2 && op.bits == 3) { fprintf(stderr, "mlx-kvpack quantize: 3-bit rotated caches have no mlx-lm layout; use 8 or 4\n"); return MT_EXIT_USAGE; }
    if (ci == 4 && !have_n) { fprintf(stderr, "mlx-kvpack trim: give -n N\n"); return MT_EXIT_USAGE; }
    if (ci == 0 && gp->kv_bits == 3) { fprintf(stderr, "mlx-kvpack build: 3-bit rotated caches have no mlx-lm layout; use 8 or 4\n"); return MT_EXIT_USAGE; }
    if (ci == 0 && gp->kv_bits && gp->max_kv_size) { fprintf(stderr, "mlx-kvpack build: --kv-bits does not go with --max-kv-size\n"); return MT_EXIT_USAGE; }

    mt_err err = {0};
    int rc = MT_OK, failed = 0;
    if (one_in) {
        op.kind = ci == 2 ? MT_KVOP_QUANTIZE : ci == 3 ? MT_KVOP_DEQUANTIZE : ci == 4 ? MT_KVOP_TRIM
                : ci == 5 ? MT_KVOP_PACK : MT_KVOP_UNPACK;
        json_t *rep = NULL;
        rc = mt_kvfile_apply(argv[optind], out, &op, &rep, &err);
        if (rc) { fprintf(stderr, "mlx-kvpack %s: %s\n", name, err.msg); return rc == MT_EUSAGE ? MT_EXIT_USAGE : MT_EXIT_FATAL; }
        if (emit(rep)) { fprintf(stderr, "mlx-kvpack: write error on stdout\n"); return MT_EXIT_FATAL; }
        return 0;
    }
    /* commands that may need the model */
    char *dir = NULL;
    mt_prompter *pr = NULL;
    mt_pool *pool = NULL;
    mt_hub_opts hopts = {0};
    if (model) rc = mt_hub_resolve(model, &hopts, &dir, &err);
    if (!rc && model) rc = mt_prompter_open(&pr, dir, &err);
    if (!rc && (ci == 0 || ci == 7)) {
        rc = mt_pool_new(&pool, threads, &err);
        if (!rc) mt_blas_threads(1);
        if (!rc) rc = mt_model_load(&k.gen.model, dir, pool, &err);
        if (!rc && numerics > 0) rc = mt_model_set_numerics(k.gen.model, numerics, &err);
        if (!rc) rc = mt_gen_caches_new(&k.gen.caches, k.gen.model, dir, model, &err);
    }
    free(dir);
    if (rc) {
        fprintf(stderr, "mlx-kvpack %s: %s\n", name, err.msg);
        rc = MT_EXIT_FATAL;
        goto done;
    }
    if (ci == 1 || ci == 7) {
        for (int i = optind; i < argc; i++) {
            if (!mt_shard_mine((size_t)(i - optind), shard_k, shard_n)) continue;
            mt_kvfile *f = NULL;
            const mt_kvfile *vf;
            const mt_kvcache *vc;
            mt_err e = {0};
            int r = ci == 1 ? mt_kvfile_read(argv[i], &f, &e) : mt_gen_caches_get(k.gen.caches, argv[i], &vf, &vc, &e);
            json_t *o;
            if (r) {
                if (!quiet) fprintf(stderr, "mlx-kvpack %s: %s\n", name, e.msg);
                o = json_pack("{s:s,s:s%}", "file", argv[i], "error", e.msg, strlen(e.msg));
                failed++;
            } else if (ci == 1) {
                o = mt_kvfile_describe(f, pr ? pr->tok : NULL);
            } else {
                o = json_pack("{s:s,s:b,s:I,s:b}", "file", argv[i], "ok", 1, "tokens", (json_int_t)vc->len,
                              "fingerprint_checked", vf->fingerprint != NULL);
            }
            mt_kvfile_free(f);
            if (emit(o)) { fprintf(stderr, "mlx-kvpack: write error on stdout\n"); rc = MT_EXIT_FATAL; goto done; }
        }
        rc = failed ? MT_EXIT_PARTIAL : 0;
        goto done;
    }
    /* build */
    k.gen.pr = pr;
    k.gen.model_name = model;
    gp->eos = pr->eos_ids;
    gp->n_eos = pr->n_eos;
    gp->kv_start = 0;   /* quantize from the start (mlx_lm.cache_prompt's --quantized-kv-start applies to long prompts) */
    k.gen.save_cache = out;
    size_t ol = strlen(out);
    k.gen.save_dir = ol && out[ol - 1] == '/';
    k.gen.save_level = level;
    if (k.gen.save_dir && mt_mkdirs(out, &err)) {
        fprintf(stderr, "mlx-kvpack build: %s\n", err.msg);
        rc = MT_EXIT_FATAL;
        goto done;
    }
    {
        /* records sharing a prefix compute it once (not with --reproducible: a prefix
         * computed in other chunks differs in the last float bits) */
        mt_prefix_store *store = NULL;
        if (!k.reproducible && mt_prefix_store_new(&store, (size_t)512 << 20, &err)) {
            fprintf(stderr, "mlx-kvpack build: %s\n", err.msg);
            rc = MT_EXIT_FATAL;
            goto done;
        }
        gp->store = store;
        mt_jsonl_tick tick = {0};
        mt_jsonl_opts o = {.prog = "mlx-kvpack", .text_mode = text_mode, .quiet = quiet, .tick = &tick,
                           .shard_k = shard_k, .shard_n = shard_n};
        gp->tick = &tick;
        mt_jsonl_stats st = {0};
        FILE *jout = stdout;
        mt_resume *rs = NULL;
        rc = mt_resume_begin(&rs, resume, &o, &jout, &err);
        if (!rc) rc = mt_jsonl_run(stdin, jout, stderr, &o, build_fn, &k, &st, &err);
        rc = mt_resume_end(rs, jout, rc, &o, &st, stderr, &err);
        if (rc) {
            fprintf(stderr, "mlx-kvpack build: %s\n", err.msg);
            rc = MT_EXIT_FATAL;
        } else
            rc = mt_jsonl_exit_code(0, &st);
        mt_prefix_store_free(store);
    }
done:
    mt_gen_caches_free(k.gen.caches);
    mt_model_free(k.gen.model);
    mt_pool_free(pool);
    mt_prompter_free(pr);
    if (fclose(stdout) != 0 && !rc) { fprintf(stderr, "mlx-kvpack: write error on stdout\n"); return MT_EXIT_FATAL; }
    return rc;
}
