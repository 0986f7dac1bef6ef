/* mlx-quant - MLX-compatible conversion and quantization (mlx_lm.convert in C),
 * dequantization and inspection of MLX model folders. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert/convert.h"
#include "core/cli.h"
#include "core/file.h"
#include "core/sig.h"
#include "convert/gguf.h"
#include "tensor/quant.h"
#include "convert/gguf_import.h"
#include "convert/inspect.h"
#include "io/hub.h"
#include "batch.h"

static const char usage[] =
    "usage: mlx-quant convert -m SRC -o DST [-q] [--bits B] [--group-size G] [--mode M]\n"
    "                 [--dtype float16|bfloat16|float32] [--quant-predicate RECIPE] [--skip REGEX]\n"
    "                 [--gpu-rules] [-d]\n"
    "       mlx-quant dequantize -m SRC -o DST [--dtype T]\n"
    "       mlx-quant inspect DIR [--against SRC|FILE.gguf] [--worst N] [--json]\n"
    "       mlx-quant export-gguf -m DIR -o FILE.gguf [--type f32|f16|q8_0|q4_0|q4_1]   (llama family)\n"
    "       mlx-quant import-gguf -i FILE.gguf -o DIR [--dtype T] [-q [--bits B] [--group-size G]]\n"
    "       mlx-quant batch [--resume FILE] [--shard K/N] < jobs.jsonl   (one convert per record;\n"
    "                 see mlx-quant batch --help)\n"
    "\n"
    "convert writes what `python -m mlx_lm convert` writes, byte for byte (tensors, config.json,\n"
    "index, shards of at most 5 GiB).  SRC is a folder or a Hugging Face repo id (HF cache).\n"
    "\n"
    "  -m, --model SRC          source model (alias --hf-path)\n"
    "  -o, --output DST         output folder, must not exist (alias --mlx-path)\n"
    "  -q, --quantize           quantize (affine, or the --mode given)\n"
    "      --bits B             2, 3, 4 (default), 5, 6, 8   (alias --q-bits)\n"
    "      --group-size G       32, 64 (default), 128        (alias --q-group-size)\n"
    "      --mode M             affine (default), mxfp4, nvfp4 or mxfp8 (alias --q-mode; the\n"
    "                           fp modes: bits / group size 4/32, 4/16, 8/32)\n"
    "      --dtype T            cast float weights (default: config torch_dtype)\n"
    "      --quant-predicate R  mixed_2_6, mixed_3_4, mixed_3_6 or mixed_4_6\n"
    "      --skip REGEX         modules whose path matches stay unquantized\n"
    "      --gpu-rules          the Metal/CUDA quantize rule (max floored at 0, ties away\n"
    "                           from zero), as mlx-community weights made on a Mac\n"
    "      --calibrate FILE     calibrated quantization: pick each group's clipping range\n"
    "                           minimizing activation-weighted error over FILE (text, or\n"
    "                           JSONL with \"text\"); same format and size\n"
    "      --calib-tokens N     calibration tokens (default 4096)\n"
    "  -d, --dequantize         back to float\n"
    "      --max-shard-gb N     shard size limit (default 5)\n"
    "  -t, --threads N          quantization threads, 1-256 (default: all cores)\n"
    "      --quiet              no progress bar\n"
    "  -h, --help  --version\n"
    "\n"
    "Exit status: 0 ok, 1 error, 2 usage error, 130 interrupted (temporary output removed).\n";

static int die_usage(const char *msg) {
    if (msg) fprintf(stderr, "mlx-quant: %s\n", msg);
    fputs("try 'mlx-quant --help'\n", stderr);
    return MT_EXIT_USAGE;
}

static char *resolve_model(const char *m, int quiet, mt_err *err) {
    mt_progress_bar bar = {0};
    bar.f = stderr;
    mt_hub_opts ho = {0};
    if (!quiet && isatty(2)) ho.progress = mt_progress_bar_cb, ho.progress_user = &bar;
    char *dir = NULL;
    if (mt_hub_resolve(m, &ho, &dir, err)) return NULL;
    return dir;
}

static int cmd_convert(int argc, char **argv, int force_deq) {
    enum { O_BITS = 256, O_GS, O_MODE, O_DTYPE, O_PRED, O_SKIP, O_GPU, O_SHARD, O_SHARDB, O_QUIET, O_CALIB, O_CALIBN };
    static const struct option lo[] = {
        {"model", 1, 0, 'm'},        {"hf-path", 1, 0, 'm'},     {"output", 1, 0, 'o'},
        {"mlx-path", 1, 0, 'o'},     {"quantize", 0, 0, 'q'},    {"dequantize", 0, 0, 'd'},
        {"bits", 1, 0, O_BITS},      {"q-bits", 1, 0, O_BITS},   {"group-size", 1, 0, O_GS},
        {"q-group-size", 1, 0, O_GS}, {"mode", 1, 0, O_MODE},    {"q-mode", 1, 0, O_MODE},
        {"dtype", 1, 0, O_DTYPE},    {"quant-predicate", 1, 0, O_PRED}, {"skip", 1, 0, O_SKIP},
        {"gpu-rules", 0, 0, O_GPU},  {"max-shard-gb", 1, 0, O_SHARD}, {"max-shard-bytes", 1, 0, O_SHARDB}, {"quiet", 0, 0, O_QUIET}, {"threads", 1, 0, 't'},
        {"calibrate", 1, 0, O_CALIB}, {"calib-tokens", 1, 0, O_CALIBN},
        {"help", 0, 0, 'h'},         {0, 0, 0, 0}};
    mt_convert_opts o = {0};
    o.dequantize = force_deq;
    const char *model = NULL;
    int quiet = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:qdht:", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 't': {
            double v;
            if (mt_cli_number(stderr, "mlx-quant", "--threads", optarg, 1, 256, &v)) return die_usage(NULL);
            o.threads = (int)v;
            break;
        }
        case 'o': o.dst = optarg; break;
        case 'q': o.quantize = 1; break;
        case 'd': o.dequantize = 1; break;
        case O_BITS: o.bits = atoi(optarg); break;
        case O_GS: o.group_size = atoi(optarg); break;
        case O_MODE:
            if (mt_qmode_parse(optarg, &o.mode)) return die_usage("--mode: affine, mxfp4, nvfp4 or mxfp8");
            break;
        case O_DTYPE: o.dtype = optarg; break;
        case O_PRED: o.recipe = optarg; break;
        case O_SKIP: o.skip_regex = optarg; break;
        case O_GPU: o.gpu_rules = 1; break;
        case O_SHARD: o.max_shard_bytes = (uint64_t)(atof(optarg) * (double)(1ull << 30)); break;
        case O_SHARDB: o.max_shard_bytes = strtoull(optarg, NULL, 10); break;
        case O_QUIET: quiet = 1; break;
        case O_CALIB: o.calibrate = optarg; break;
        case O_CALIBN: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (*end || v <= 0) return die_usage("--calib-tokens: expected a positive number");
            o.calib_tokens = (size_t)v;
            break;
        }
        case 'h': fputs(usage, stdout); return 0;
        default: return die_usage(NULL);
        }
    }
    if (optind < argc) return die_usage("unexpected argument");
    if (!model || !o.dst) return die_usage("-m SRC and -o DST are required");
    if (o.recipe && !o.quantize) return die_usage("--quant-predicate needs -q");
    if (o.dtype) {
        if (!strcmp(o.dtype, "f16") || !strcmp(o.dtype, "fp16")) o.dtype = "float16";
        else if (!strcmp(o.dtype, "bf16")) o.dtype = "bfloat16";
        else if (!strcmp(o.dtype, "f32") || !strcmp(o.dtype, "fp32")) o.dtype = "float32";
    }
    mt_err err = {0};
    char *src = resolve_model(model, quiet, &err);
    if (!src) {
        fprintf(stderr, "mlx-quant: %s\n", err.msg);
        return MT_EXIT_FATAL;
    }
    o.src = src;
    if (!mt_is_dir(model)) o.base_model = model;
    mt_progress_bar bar = {0};
    bar.f = stderr;
    if (!quiet && isatty(2)) o.progress = mt_progress_bar_cb, o.progress_user = &bar;
    int rc = mt_convert(&o, &err);
    free(src);
    if (rc) {
        fprintf(stderr, "mlx-quant: %s\n", err.msg);
        return rc == MT_EUSAGE ? MT_EXIT_USAGE : MT_EXIT_FATAL;
    }
    return 0;
}

static int cmd_inspect(int argc, char **argv) {
    static const struct option lo[] = {
        {"against", 1, 0, 'a'}, {"worst", 1, 0, 'w'}, {"json", 0, 0, 'j'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *against = NULL;
    int worst = 10, json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "a:w:jh", lo, NULL)) != -1) {
        switch (c) {
        case 'a': against = optarg; break;
        case 'w': worst = atoi(optarg); break;
        case 'j': json = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default: return die_usage(NULL);
        }
    }
    if (optind + 1 != argc) return die_usage("inspect needs exactly one DIR");
    mt_err err = {0};
    char *dir = resolve_model(argv[optind], 1, &err), *src = NULL;
    /* a GGUF file: how the folder holds its tensors (import-gguf) */
    int gguf = against && mt_file_exists(against) && !mt_is_dir(against);
    if (dir && against && !gguf) src = resolve_model(against, 1, &err);
    int rc = !dir || (against && !gguf && !src) ? MT_EIO
             : gguf                             ? mt_inspect_gguf(stdout, dir, against, json, &err)
                                                : mt_inspect(stdout, dir, src, worst, json, &err);
    free(dir);
    free(src);
    if (rc) {
        fprintf(stderr, "mlx-quant: %s\n", err.msg);
        return MT_EXIT_FATAL;
    }
    return 0;
}

static int cmd_gguf(int argc, char **argv) {
    static const struct option lo[] = {
        {"model", 1, 0, 'm'}, {"output", 1, 0, 'o'}, {"type", 1, 0, 't'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *model = NULL, *out = NULL, *ty = "f16";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:o:t:h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': out = optarg; break;
        case 't': ty = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: return die_usage(NULL);
        }
    }
    mt_ggml_type t;
    if (!model || !out || optind < argc) return die_usage("export-gguf needs -m DIR -o FILE");
    if (mt_ggml_type_parse(ty, &t)) return die_usage("--type: f32, f16, q8_0, q4_0 or q4_1");
    mt_err err = {0};
    char *dir = resolve_model(model, 1, &err);
    int rc = dir ? mt_export_gguf(dir, out, t, &err) : MT_EIO;
    free(dir);
    if (rc) {
        fprintf(stderr, "mlx-quant: %s\n", err.msg);
        return MT_EXIT_FATAL;
    }
    return 0;
}

static int cmd_import(int argc, char **argv) {
    enum { O_BITS = 256, O_GS, O_DTYPE, O_QUIET };
    static const struct option lo[] = {
        {"input", 1, 0, 'i'},      {"output", 1, 0, 'o'},     {"quantize", 0, 0, 'q'}, {"bits", 1, 0, O_BITS},
        {"q-bits", 1, 0, O_BITS},  {"group-size", 1, 0, O_GS}, {"q-group-size", 1, 0, O_GS},
        {"dtype", 1, 0, O_DTYPE},  {"threads", 1, 0, 't'},    {"quiet", 0, 0, O_QUIET}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    mt_import_gguf_opts o = {0};
    int quiet = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "i:o:qt:h", lo, NULL)) != -1) {
        switch (c) {
        case 'i': o.src = optarg; break;
        case 'o': o.dst = optarg; break;
        case 'q': o.quantize = 1; break;
        case O_BITS: o.bits = atoi(optarg); break;
        case O_GS: o.group_size = atoi(optarg); break;
        case O_DTYPE: o.dtype = optarg; break;
        case O_QUIET: quiet = 1; break;
        case 't': {
            double v;
            if (mt_cli_number(stderr, "mlx-quant", "--threads", optarg, 1, 256, &v)) return die_usage(NULL);
            o.threads = (int)v;
            break;
        }
        case 'h': fputs(usage, stdout); return 0;
        default: return die_usage(NULL);
        }
    }
    if (optind < argc) return die_usage("unexpected argument");
    if (!o.src || !o.dst) return die_usage("import-gguf needs -i FILE.gguf -o DIR");
    if ((o.bits || o.group_size) && !o.quantize) return die_usage("--bits and --group-size need -q");
    if (o.dtype) {
        if (!strcmp(o.dtype, "f16") || !strcmp(o.dtype, "fp16")) o.dtype = "float16";
        else if (!strcmp(o.dtype, "bf16")) o.dtype = "bfloat16";
        else if (!strcmp(o.dtype, "f32") || !strcmp(o.dtype, "fp32")) o.dtype = "float32";
        if (strcmp(o.dtype, "float16") && strcmp(o.dtype, "bfloat16") && strcmp(o.dtype, "float32"))
            return die_usage("--dtype: float16, bfloat16 or float32");
    }
    mt_progress_bar bar = {0};
    bar.f = stderr;
    if (!quiet && isatty(2)) o.progress = mt_progress_bar_cb, o.progress_user = &bar;
    mt_err err = {0};
    int rc = mt_import_gguf(&o, &err);
    if (rc) {
        fprintf(stderr, "mlx-quant: %s\n", err.msg);
        return rc == MT_EUSAGE ? MT_EXIT_USAGE : MT_EXIT_FATAL;
    }
    return 0;
}

int main(int argc, char **argv) {
    mt_sig_install("mlx-quant");
    if (argc < 2) return die_usage("a subcommand is required (convert, dequantize, inspect, export-gguf, import-gguf)");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("mlx-quant %s\n", MT_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "convert")) return cmd_convert(argc - 1, argv + 1, 0);
    if (!strcmp(cmd, "dequantize")) return cmd_convert(argc - 1, argv + 1, 1);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "export-gguf")) return cmd_gguf(argc - 1, argv + 1);
    if (!strcmp(cmd, "import-gguf")) return cmd_import(argc - 1, argv + 1);
    if (!strcmp(cmd, "batch")) return cmd_batch(argc - 1, argv + 1);
    return die_usage("unknown subcommand");
}
