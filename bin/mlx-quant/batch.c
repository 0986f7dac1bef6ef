/* batch.c - mlx-quant batch: one conversion per JSONL record, through the
 * shared record loop (error records, --resume, --shard), so a night's list of
 * models converts like any other job and spreads over hosts the same way. */
#include "batch.h"

#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "convert/convert.h"
#include "core/cli.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "io/hub.h"
#include "tensor/quant.h"

static const char batch_usage[] =
    "usage: mlx-quant batch [--resume FILE] [--shard K/N] [-t N] [--reproducible] [-q] < jobs.jsonl\n"
    "\n"
    "One conversion per record {\"id\", \"model\" (or \"hf_path\"), \"output\" (or \"mlx_path\"),\n"
    "\"quantize\", \"dequantize\", \"bits\", \"group_size\", \"dtype\", \"quant_predicate\", \"skip\",\n"
    "\"gpu_rules\", \"calibrate\", \"calib_tokens\", \"mode\" (or \"q_mode\")} (the convert options); answers\n"
    "{\"id\", \"output\", \"files\", \"bytes\", \"seconds\"}, or an error line.  --resume and --shard\n"
    "as in mlx-gen; --reproducible leaves out \"seconds\".\n";

typedef struct bjob {
    int threads, reproducible;
} bjob;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Files and bytes of the regular files directly in dir. */
static void folder_size(const char *dir, long long *files, long long *bytes) {
    *files = *bytes = 0;
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            (*files)++;
            *bytes += (long long)st.st_size;
        }
    }
    closedir(d);
}

/* The first of two spellings of a string field (convert's option and its mlx_lm alias). */
static int get_str2(json_t *rec, const char *a, const char *b, const char **out, int required, mt_err *err) {
    MT_TRY(mt_json_get_string(rec, a, out, NULL, 0, err));
    if (!*out) MT_TRY(mt_json_get_string(rec, b, out, NULL, 0, err));
    if (!*out && required) return mt_seterr(err, MT_EINVAL, "missing \"%s\"", a);
    return MT_OK;
}

static int batch_fn(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err) {
    (void)lineno;
    bjob *j = user;
    mt_convert_opts o = {0};
    const char *model = NULL, *dtype = NULL, *mode = NULL;
    long long bits = 0, gs = 0, calib_tokens = 0;
    MT_TRY(get_str2(rec, "model", "hf_path", &model, 1, err));
    MT_TRY(get_str2(rec, "output", "mlx_path", &o.dst, 1, err));
    MT_TRY(mt_json_get_bool(rec, "quantize", &o.quantize, err));
    MT_TRY(mt_json_get_bool(rec, "dequantize", &o.dequantize, err));
    MT_TRY(mt_json_get_bool(rec, "gpu_rules", &o.gpu_rules, err));
    MT_TRY(mt_json_get_int(rec, "bits", &bits, err));
    MT_TRY(mt_json_get_int(rec, "group_size", &gs, err));
    MT_TRY(mt_json_get_int(rec, "calib_tokens", &calib_tokens, err));
    MT_TRY(mt_json_get_string(rec, "dtype", &dtype, NULL, 0, err));
    MT_TRY(mt_json_get_string(rec, "quant_predicate", &o.recipe, NULL, 0, err));
    MT_TRY(mt_json_get_string(rec, "skip", &o.skip_regex, NULL, 0, err));
    MT_TRY(mt_json_get_string(rec, "calibrate", &o.calibrate, NULL, 0, err));
    MT_TRY(get_str2(rec, "mode", "q_mode", &mode, 0, err));
    if (mode && mt_qmode_parse(mode, &o.mode))
        return mt_seterr(err, MT_EINVAL, "\"mode\" must be affine, mxfp4, nvfp4 or mxfp8");
    if (bits < 0 || bits > 8) return mt_seterr(err, MT_EINVAL, "\"bits\" must be 2, 3, 4, 5, 6 or 8");
    if (gs < 0 || gs > 1024) return mt_seterr(err, MT_EINVAL, "\"group_size\" must be 32, 64 or 128");
    if (calib_tokens < 0) return mt_seterr(err, MT_EINVAL, "\"calib_tokens\" must be positive");
    if (o.recipe && !o.quantize) return mt_seterr(err, MT_EINVAL, "\"quant_predicate\" needs \"quantize\": true");
    if (dtype) {
        if (!strcmp(dtype, "f16") || !strcmp(dtype, "fp16") || !strcmp(dtype, "float16")) dtype = "float16";
        else if (!strcmp(dtype, "bf16") || !strcmp(dtype, "bfloat16")) dtype = "bfloat16";
        else if (!strcmp(dtype, "f32") || !strcmp(dtype, "fp32") || !strcmp(dtype, "float32")) dtype = "float32";
        else return mt_seterr(err, MT_EINVAL, "\"dtype\" must be float16, bfloat16 or float32");
    }
    o.bits = (int)bits;
    o.group_size = (int)gs;
    o.calib_tokens = (size_t)calib_tokens;
    o.dtype = dtype;
    o.threads = j->threads;
    /* the output's parent folders, as mlx_lm.convert makes them */
    const char *slash = strrchr(o.dst, '/');
    if (slash && slash != o.dst) {
        char *parent = strndup(o.dst, (size_t)(slash - o.dst));
        if (!parent) return mt_seterr(err, MT_ENOMEM, "out of memory");
        int mrc = mt_mkdirs(parent, err);
        free(parent);
        if (mrc) return mrc;
    }
    mt_hub_opts ho = {0};
    char *src = NULL;
    MT_TRY(mt_hub_resolve(model, &ho, &src, err));
    o.src = src;
    if (!mt_is_dir(model)) o.base_model = model;
    double t0 = now_s();
    int rc = mt_convert(&o, err);
    double dt = now_s() - t0;
    free(src);
    if (rc) return rc;
    long long files, bytes;
    folder_size(o.dst, &files, &bytes);
    *out = json_pack("{s:s,s:I,s:I}", "output", o.dst, "files", (json_int_t)files, "bytes", (json_int_t)bytes);
    if (!*out) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!j->reproducible) json_object_set_new(*out, "seconds", json_real(dt));
    return MT_OK;
}

int cmd_batch(int argc, char **argv) {
    enum { O_RESUME = 256, O_SHARD, O_REPRO };
    static const struct option lo[] = {
        {"resume", 1, 0, O_RESUME}, {"shard", 1, 0, O_SHARD}, {"reproducible", 0, 0, O_REPRO},
        {"threads", 1, 0, 't'},     {"quiet", 0, 0, 'q'},      {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    const char *resume = NULL;
    bjob j = {0};
    mt_jsonl_opts o = {.prog = "mlx-quant"};
    int c;
    double v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:qh", lo, NULL)) != -1) {
        switch (c) {
        case O_RESUME: resume = optarg; break;
        case O_SHARD:
            if (mt_cli_shard(stderr, "mlx-quant", optarg, &o.shard_k, &o.shard_n)) return MT_EXIT_USAGE;
            break;
        case O_REPRO: j.reproducible = 1; break;
        case 't':
            if (mt_cli_number(stderr, "mlx-quant", "--threads", optarg, 1, 256, &v)) return MT_EXIT_USAGE;
            j.threads = (int)v;
            break;
        case 'q': o.quiet = 1; break;
        case 'h': fputs(batch_usage, stdout); return 0;
        default: fputs("try 'mlx-quant batch --help'\n", stderr); return MT_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "mlx-quant batch: records come on stdin, not as arguments ('%s')\n", argv[optind]);
        return MT_EXIT_USAGE;
    }
    mt_err err = {0};
    mt_jsonl_stats st = {0};
    FILE *out = stdout;
    mt_resume *rs = NULL;
    int rc = mt_resume_begin(&rs, resume, &o, &out, &err);
    if (!rc) rc = mt_jsonl_run(stdin, out, stderr, &o, batch_fn, &j, &st, &err);
    rc = mt_resume_end(rs, out, rc, &o, &st, stderr, &err);
    if (rc) {
        fprintf(stderr, "mlx-quant batch: %s\n", err.msg[0] ? err.msg : mt_strstatus(rc));
        return MT_EXIT_FATAL;
    }
    return mt_jsonl_exit_code(rc, &st);
}
