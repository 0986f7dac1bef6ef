/* genopts.c - the generation options mlx-gen and mlx-vlm share (genopts.h). */
#include "gen/genopts.h"

#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/cpu.h"
#include "gen/request.h"
#include "models/model.h"

const char mt_genopts_usage[] =
    "  -n, --max-tokens N       default 256\n"
    "      --temp T             0 = greedy (default)\n"
    "      --top-p P  --top-k K  --min-p P  --min-tokens-to-keep N\n"
    "      --xtc-probability P  --xtc-threshold T\n"
    "      --repetition-penalty P  --presence-penalty P  --frequency-penalty P\n"
    "      --seed N             default 0\n"
    "      --stop TEXT          stop string (repeatable); not emitted\n"
    "      --ids                add the generated token ids (\"ids\") to each answer\n"
    "      --logprobs K         add each generated token's logprob and its top-K alternatives\n"
    "      --batch N|auto       decode up to N records together (batched products), continuously: a\n"
    "                           finished record's slot takes the next record at once; answers keep\n"
    "                           input order.  auto: 16, fewer when their KV caches would not fit\n"
    "      --batch-invariant    with --batch, each record's tokens computed exactly as alone, so its\n"
    "                           answer never depends on its neighbours (greedy or seeded; implied\n"
    "                           by --reproducible); batched decode takes about 1.4x longer\n"
    "      --json-schema FILE   structured output: every answer is a JSON document valid under this\n"
    "                           schema (or an OpenAI response_format object); per record:\n"
    "                           \"response_format\" (json_schema / json_object / text), \"json_schema\"\n"
    "      --regex RE           every answer matches RE whole; per record: \"regex\"\n"
    "      --grammar FILE       every answer is a sentence of this GBNF grammar (llama.cpp's syntax);\n"
    "                           per record: \"grammar\" (GBNF text)\n"
    "      --lockstep           the older schedule: N records start together and the next N wait\n"
    "                           for the slowest (for comparison)\n"
    "      --score              {\"text\"|\"ids\"} -> each token's logprob given its prefix, sum, perplexity\n"
    "      --resume FILE        append answers to FILE, skipping ids already answered there\n"
    "      --shard K/N          handle only the records at positions K, K+N, K+2N, ... (0-based;\n"
    "                           N processes with K = 0..N-1 split one input, see mlx-tools-cluster(7))\n"
    "      --reproducible       answers that depend on their record alone, so runs and merged shards\n"
    "                           compare byte for byte: no prefill_tps, decode_tps, cached_tokens\n"
    "                           (OpenAI lines: created), no prefix reuse across records (a prefix\n"
    "                           computed in other chunks differs in the last float bits), and\n"
    "                           --batch-invariant\n"
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
    "      --prompt-lookup N    speculative decoding without a draft: up to N tokens copied from an\n"
    "                           earlier match of the last 3..1 tokens (1..64; \"prompt_lookup\")\n"
    "  -t, --threads N          default: all cores\n";

enum { O_TEMP = 1000, O_TOPP, O_TOPK, O_MINP, O_MINKEEP, O_XTCP, O_XTCT, O_REP, O_PRES, O_FREQ, O_SEED, O_STOP,
       O_IDS, O_LOGPROBS, O_BATCH, O_SCORE, O_RESUME, O_MAXKV, O_PREFILL, O_INT8, O_KVTYPE, O_PCACHE, O_SAVECACHE,
       O_PREFIXMB, O_KVBITS, O_KVGROUP, O_KVSTART, O_SAVEAFTER, O_SHARD, O_REPRO, O_NUMERICS, O_LOCKSTEP, O_BINV, O_JSCHEMA, O_REGEX, O_GRAMMAR, O_LOOKUP };

static const struct option LONG[] = {
    {"max-tokens", 1, 0, 'n'}, {"threads", 1, 0, 't'},
    {"temp", 1, 0, O_TEMP}, {"top-p", 1, 0, O_TOPP}, {"top-k", 1, 0, O_TOPK}, {"min-p", 1, 0, O_MINP},
    {"min-tokens-to-keep", 1, 0, O_MINKEEP}, {"xtc-probability", 1, 0, O_XTCP}, {"xtc-threshold", 1, 0, O_XTCT},
    {"repetition-penalty", 1, 0, O_REP}, {"presence-penalty", 1, 0, O_PRES}, {"frequency-penalty", 1, 0, O_FREQ},
    {"seed", 1, 0, O_SEED}, {"stop", 1, 0, O_STOP}, {"ids", 0, 0, O_IDS}, {"logprobs", 1, 0, O_LOGPROBS},
    {"batch", 1, 0, O_BATCH}, {"score", 0, 0, O_SCORE}, {"resume", 1, 0, O_RESUME}, {"max-kv-size", 1, 0, O_MAXKV},
    {"prefill-step-size", 1, 0, O_PREFILL}, {"int8", 0, 0, O_INT8}, {"kv-type", 1, 0, O_KVTYPE},
    {"prompt-cache", 1, 0, O_PCACHE}, {"save-prompt-cache", 1, 0, O_SAVECACHE},
    {"save-after-generation", 0, 0, O_SAVEAFTER}, {"prefix-cache-mb", 1, 0, O_PREFIXMB}, {"kv-bits", 1, 0, O_KVBITS},
    {"kv-group-size", 1, 0, O_KVGROUP}, {"quantized-kv-start", 1, 0, O_KVSTART}, {"shard", 1, 0, O_SHARD},
    {"reproducible", 0, 0, O_REPRO}, {"numerics", 1, 0, O_NUMERICS}, {"lockstep", 0, 0, O_LOCKSTEP},
    {"batch-invariant", 0, 0, O_BINV}, {"json-schema", 1, 0, O_JSCHEMA}, {"regex", 1, 0, O_REGEX},
    {"grammar", 1, 0, O_GRAMMAR},
    {"prompt-lookup", 1, 0, O_LOOKUP},
};

const struct option *mt_genopts_long(size_t *n) {
    *n = sizeof LONG / sizeof LONG[0];
    return LONG;
}

struct option *mt_genopts_table(const struct option *own, size_t n_own) {
    size_t n;
    const struct option *l = mt_genopts_long(&n);
    struct option *t = calloc(n_own + n + 1, sizeof *t);
    if (!t) return NULL;
    memcpy(t, own, n_own * sizeof *t);
    memcpy(t + n_own, l, n * sizeof *t);
    return t;
}

void mt_genopts_init(mt_genopts *o) {
    memset(o, 0, sizeof *o);
    mt_gen_params_default(&o->gp);
    o->batch = 1;
    o->kv_start = -1;
    o->numerics = MT_NUMERICS_F32;
    o->prefix_mb = 512;
}

int mt_genopts_parse(mt_genopts *o, int c, const char *arg, FILE *errf, const char *prog) {
    mt_gen_params *gp = &o->gp;
    mt_sampler_params *sp = &gp->sp;
    double v;
    int bad = 0;
#define NUM(opt, lo, hi) (bad = mt_cli_number(errf, prog, opt, arg, lo, hi, &v))
    switch (c) {
    case 'n': NUM("--max-tokens", 0, 1 << 24); gp->max_tokens = (int)v; break;
    case 't': NUM("--threads", 1, 256); o->threads = (int)v; break;
    case O_TEMP: NUM("--temp", 0, 1e6); sp->temp = (float)v; break;
    case O_TOPP: NUM("--top-p", 0, 1); sp->top_p = (float)v; break;
    case O_TOPK: NUM("--top-k", 0, 1 << 30); sp->top_k = (int)v; break;
    case O_MINP: NUM("--min-p", 0, 1); sp->min_p = (float)v; break;
    case O_MINKEEP: NUM("--min-tokens-to-keep", 1, 1 << 30); sp->min_tokens_to_keep = (int)v; break;
    case O_XTCP: NUM("--xtc-probability", 0, 1); sp->xtc_probability = (float)v; break;
    case O_XTCT: NUM("--xtc-threshold", 0, 0.5); sp->xtc_threshold = (float)v; break;
    case O_REP: NUM("--repetition-penalty", 0, 1e6); sp->repetition_penalty = (float)v; break;
    case O_PRES: NUM("--presence-penalty", -1e6, 1e6); sp->presence_penalty = (float)v; break;
    case O_FREQ: NUM("--frequency-penalty", -1e6, 1e6); sp->frequency_penalty = (float)v; break;
    case O_SEED: NUM("--seed", 0, 9007199254740992.0); sp->seed = (uint64_t)v; break;
    case O_IDS: o->return_ids = 1; break;
    case O_LOGPROBS: NUM("--logprobs", 0, 1000); gp->logprobs = (int)v; break;
    case O_BATCH:
        if (!strcmp(arg, "auto")) o->batch = 0;
        else {
            NUM("--batch", 1, 4096);
            o->batch = (int)v;
        }
        break;
    case O_LOCKSTEP: o->lockstep = 1; break;
    case O_BINV: o->batch_invariant = 1; break;
    case O_JSCHEMA: o->schema_file = arg; break;
    case O_REGEX: o->regex = arg; break;
    case O_GRAMMAR: o->grammar_file = arg; break;
    case O_SCORE: o->score = 1; break;
    case O_RESUME: o->resume = arg; break;
    case O_SHARD: bad = mt_cli_shard(errf, prog, arg, &o->shard_k, &o->shard_n); break;
    case O_REPRO: o->reproducible = o->batch_invariant = 1; break;
    /* the kernels read MT_QMATH (tensor/linear.h): setting it here selects the int8 path for
     * every quantized matrix of this process */
    case O_INT8: setenv("MT_QMATH", "int8", 1); o->int8 = 1; break;
    case O_NUMERICS:
        if ((o->numerics = mt_numerics_parse(arg)) < 0) {
            fprintf(errf, "%s: --numerics: '%s' is not f32 or mlx\n", prog, arg);
            bad = 1;
        }
        break;
    case O_KVTYPE:
        if (!strcmp(arg, "f16")) gp->kv_f16 = 1;
        else if (!strcmp(arg, "f32")) gp->kv_f16 = 0;
        else if (!strcmp(arg, "auto")) gp->kv_f16 = -1;
        else { fprintf(errf, "%s: --kv-type: '%s' is not f16, f32 or auto\n", prog, arg); bad = 1; }
        break;
    case O_PCACHE: o->prompt_cache = arg; break;
    case O_SAVECACHE: o->save_cache = arg; break;
    case O_SAVEAFTER: o->save_after_generation = 1; break;
    case O_PREFIXMB: bad = mt_cli_number(errf, prog, "--prefix-cache-mb", arg, 0, 1 << 24, &o->prefix_mb); break;
    case O_KVBITS:
        NUM("--kv-bits", 2, 8);
        gp->kv_bits = (int)v;
        if (!bad && (v != 8 && v != 4 && v != 3 && v != 2 && v != 5 && v != 6)) {
            fprintf(errf, "%s: --kv-bits: %s is not 8, 6, 5, 4, 3 or 2\n", prog, arg);
            bad = 1;
        }
        break;
    case O_KVGROUP:
        NUM("--kv-group-size", 32, 128);
        gp->kv_group_size = (int)v;
        if (!bad && v != 32 && v != 64 && v != 128) {
            fprintf(errf, "%s: --kv-group-size: %s is not 32, 64 or 128\n", prog, arg);
            bad = 1;
        }
        break;
    case O_KVSTART: NUM("--quantized-kv-start", 0, 1 << 30); o->kv_start = (int)v; break;
    case O_MAXKV: NUM("--max-kv-size", 5, 1 << 30); gp->max_kv_size = (int)v; break;
    case O_PREFILL: NUM("--prefill-step-size", 1, 1 << 30); gp->prefill_step = (int)v; break;
    case O_LOOKUP: NUM("--prompt-lookup", 1, 64); gp->prompt_lookup = (int)v; break;
    case O_STOP:
        if (gp->n_stop == 64) { fprintf(errf, "%s: at most 64 --stop strings\n", prog); return -1; }
        o->stops[gp->n_stop++] = arg;
        break;
    default: return 0;
    }
#undef NUM
    return bad ? -1 : 1;
}

int mt_genopts_finish(mt_genopts *o, FILE *errf, const char *prog) {
    mt_gen_params *gp = &o->gp;
    gp->stop = o->stops;
    gp->kv_start = o->kv_start >= 0 ? o->kv_start : 5000;   /* mlx_lm.generate's default */
    if (gp->kv_bits > 0 && gp->max_kv_size > 0) {
        fprintf(errf, "%s: --kv-bits does not go with --max-kv-size (a rotating cache cannot be quantized, as in mlx-lm)\n",
                prog);
        return 1;
    }
    if (o->int8 && o->numerics == MT_NUMERICS_MLX) {
        fprintf(errf, "%s: --int8 does not go with --numerics mlx (mlx computes in the model's dtype)\n", prog);
        return 1;
    }
    return 0;
}

size_t mt_genopts_batch(const mt_genopts *o, const mt_model *m) {
    if (o->batch > 0) return (size_t)o->batch;
    return mt_gen_batch_auto(m, &o->gp, mt_mem_available());
}
