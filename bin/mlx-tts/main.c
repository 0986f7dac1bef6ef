/* mlx-tts - text to speech with Kokoro-82M or Orpheus (+ SNAC), as a Unix filter.
 *   mlx-tts -m MODEL -o DIR < records.jsonl     DIR/<id>.wav per record, {"id","file",...} per record
 *   mlx-tts -m MODEL -p TEXT -o out.wav          one text
 *   mlx-tts -m MODEL --raw s16le < in.jsonl | aplay -r 24000 -f S16_LE */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blas.h"
#include "core/cli.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "core/sig.h"
#include "io/hub.h"
#include "tts/job.h"
#include "tts/tts.h"

#define PROG "mlx-tts"

static const char usage[] =
    "usage: mlx-tts -m MODEL -o DIR [options] < records.jsonl\n"
    "       mlx-tts -m MODEL -p TEXT -o FILE [options]\n"
    "       mlx-tts -m MODEL --raw s16le|f32le [options] < records.jsonl > audio.pcm\n"
    "\n"
    "Records {\"id\", \"text\" | \"phonemes\", \"voice\", \"speed\", \"lang\"} (or plain lines with --text)\n"
    "-> DIR/<id>.wav and {\"id\", \"file\", \"seconds\", \"samples\", \"sample_rate\", \"phonemes\", \"rtf\"}.\n"
    "MODEL is a Kokoro folder (config.json, *.safetensors, voices/), an Orpheus folder (model_type\n"
    "llama; its SNAC codec in snac_24khz/, snac/, codec/ or --codec) or a Hugging Face repo id.\n"
    "\n"
    "  -o, --output DIR         one audio file per record in DIR (created), named by id (atomic);\n"
    "                           with -p: the file itself\n"
    "  -p, --prompt TEXT        speak TEXT (one record)\n"
    "      --format F           wav (default; 16-bit PCM), flac or ogg (Vorbis)\n"
    "      --raw FMT            s16le or f32le: raw 24 kHz mono PCM on stdout, records in order\n"
    "                           (no files, no JSONL unless --resume)\n"
    "      --voice V            NAME (voices/NAME.safetensors), a blend NAME:W,NAME:W (weights\n"
    "                           normalized), or a .safetensors / .npy file (default af_heart)\n"
    "      --speed X            speaking rate in [0.5, 2] (default 1)\n"
    "      --lang L             espeak-ng language (default en-us)\n"
    "      --seed N             seed of the harmonic source's noise (default 0)\n"
    "      --deterministic      no noise at all in the harmonic source (zero phases); Orpheus:\n"
    "                           greedy decoding and no codec noise\n"
    "      --codec DIR          Orpheus: the SNAC 24 kHz codec folder\n"
    "      --temp X, --top-p X  Orpheus sampling (default 0.6, 0.8; repetition penalty 1.3)\n"
    "      --max-tokens N       Orpheus: tokens per line of text (default 1200)\n"
    "      --int8               Kokoro: the decoder's convolutions in int8 (about 1.5x faster;\n"
    "                           close to, not equal to, the float output)\n"
    "      --text               stdin holds one plain-text record per line\n"
    "      --reproducible       JSONL answers without \"rtf\" (it depends on the run)\n"
    "      --resume FILE        append the answers to FILE, skipping ids already answered there\n"
    "      --shard K/N          handle only the records at positions K, K+N, ... (0-based)\n"
    "  -t, --threads N          default: all cores\n"
    "      --revision REV       hub revision (default main)\n"
    "  -q, --quiet              nothing on stderr but fatal errors\n"
    "  -h, --help  --version\n"
    "\n"
    "Exit status: 0 all records done, 3 some records failed, 2 usage error, 1 fatal error,\n"
    "130 interrupted, 141 the reader of stdout went away (temporary files removed).\n";

static int usage_error(const char *msg) {
    fprintf(stderr, PROG ": %s\n", msg);
    return MT_EXIT_USAGE;
}

enum { O_FORMAT = 256, O_RAW, O_VOICE, O_SPEED, O_LANG, O_SEED, O_DET, O_TEXT, O_REPRO, O_RESUME, O_SHARD, O_REV,
       O_VERSION, O_CODEC, O_TEMP, O_TOPP, O_MAXTOK, O_INT8 };

int main(int argc, char **argv) {
    mt_blas_init(argv);
    /* a synthesis mallocs and frees its activations layer by layer (megabytes each): keep
     * them in the heap for reuse instead of fresh mmaps, each page faulted in again */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    static const struct option lo[] = {
        {"model", 1, 0, 'm'}, {"output", 1, 0, 'o'}, {"prompt", 1, 0, 'p'}, {"format", 1, 0, O_FORMAT},
        {"raw", 1, 0, O_RAW}, {"voice", 1, 0, O_VOICE}, {"speed", 1, 0, O_SPEED}, {"lang", 1, 0, O_LANG},
        {"seed", 1, 0, O_SEED}, {"deterministic", 0, 0, O_DET}, {"text", 0, 0, O_TEXT},
        {"reproducible", 0, 0, O_REPRO}, {"resume", 1, 0, O_RESUME}, {"shard", 1, 0, O_SHARD},
        {"threads", 1, 0, 't'}, {"revision", 1, 0, O_REV}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},
        {"version", 0, 0, O_VERSION}, {"codec", 1, 0, O_CODEC}, {"temp", 1, 0, O_TEMP}, {"top-p", 1, 0, O_TOPP},
        {"max-tokens", 1, 0, O_MAXTOK}, {"int8", 0, 0, O_INT8}, {0, 0, 0, 0}};
    const char *model = NULL, *output = NULL, *prompt = NULL, *format = NULL, *raw = NULL, *resume = NULL,
               *revision = NULL, *codec = NULL;
    mt_tts_job j = {.voice = "af_heart", .lang = "en-us", .speed = 1, .opts = {.random = 1}};
    int quiet = 0, text_mode = 0, threads = 0, voice_given = 0, int8 = 0, c;
    size_t shard_k = 0, shard_n = 0;
    mt_orpheus_opts_default(&j.oopts);
    double v;
    while ((c = getopt_long(argc, argv, "m:o:p:t:qh", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model = optarg; break;
        case 'o': output = optarg; break;
        case 'p': prompt = optarg; break;
        case O_FORMAT: format = optarg; break;
        case O_RAW: raw = optarg; break;
        case O_VOICE: j.voice = optarg; voice_given = 1; break;
        case O_SPEED:
            bad = mt_cli_number(stderr, PROG, "--speed", optarg, MT_TTS_SPEED_MIN, MT_TTS_SPEED_MAX, &j.speed);
            break;
        case O_LANG: j.lang = optarg; break;
        case O_SEED: bad = mt_cli_number(stderr, PROG, "--seed", optarg, 0, 9007199254740991.0, &v);
            j.opts.seed = (uint64_t)v; break;
        case O_DET: j.opts.random = 0; break;
        case O_INT8: int8 = 1; break;
        case O_TEXT: text_mode = 1; break;
        case O_REPRO: j.reproducible = 1; break;
        case O_RESUME: resume = optarg; break;
        case O_SHARD: bad = mt_cli_shard(stderr, PROG, optarg, &shard_k, &shard_n); break;
        case 't': bad = mt_cli_number(stderr, PROG, "--threads", optarg, 1, 256, &v); threads = (int)v; break;
        case O_REV: revision = optarg; break;
        case O_CODEC: codec = optarg; break;
        case O_TEMP: bad = mt_cli_number(stderr, PROG, "--temp", optarg, 0, 100, &v); j.oopts.temp = (float)v; break;
        case O_TOPP: bad = mt_cli_number(stderr, PROG, "--top-p", optarg, 0, 1, &v); j.oopts.top_p = (float)v; break;
        case O_MAXTOK: bad = mt_cli_number(stderr, PROG, "--max-tokens", optarg, 1, 1e6, &v);
            j.oopts.max_tokens = (int)v; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        case O_VERSION: printf(PROG " %s\n", MT_VERSION); return 0;
        default: bad = 1;
        }
        if (bad) { fputs("Try '" PROG " --help'.\n", stderr); return MT_EXIT_USAGE; }
    }
    if (optind < argc) { fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]); return MT_EXIT_USAGE; }
    if (!model) return usage_error("no model: give -m MODEL (see --help)");
    if (raw && strcmp(raw, "s16le") && strcmp(raw, "f32le")) return usage_error("--raw must be s16le or f32le");
    if (raw && (output || format)) return usage_error("--raw goes with neither -o nor --format");
    if (!raw && !output) return usage_error("no output: give -o DIR (or -o FILE with -p, or --raw)");
    if (prompt && (text_mode || resume || shard_n)) return usage_error("-p goes with none of --text, --resume, --shard");
    if (format && mt_tts_format(format) < 0) return usage_error("--format must be wav, flac or ogg");
    j.format = format ? mt_tts_format(format) : MT_TTS_WAV;
    if (prompt && output && !format) {   /* -p: the format from the file's extension */
        const char *dot = strrchr(output, '.');
        if (dot && mt_tts_format(dot + 1) >= 0) j.format = mt_tts_format(dot + 1);
    }
    if (raw) { j.raw = stdout; j.raw_s16 = !strcmp(raw, "s16le"); }
    if (prompt) j.out_path = output; else j.out_dir = output;

    mt_sig_install(PROG);   /* SIGINT/SIGTERM/SIGHUP/SIGPIPE: temp files removed, exit 128+N */
    mt_err err = {0};
    mt_hub_opts hopts = {.revision = revision};
    mt_progress_bar bar = {.f = stderr};
    if (!quiet && isatty(STDERR_FILENO)) { hopts.progress = mt_progress_bar_cb; hopts.progress_user = &bar; }
    char *dir = NULL;
    mt_pool *pool = NULL;
    mt_kokoro *k = NULL;
    mt_orpheus *orph = NULL;
    mt_g2p *g = NULL;
    int family = MT_TTS_KOKORO;
    int rc = mt_hub_resolve(model, &hopts, &dir, &err);
    if (!rc) rc = mt_pool_new(&pool, threads, &err);
    if (!rc) mt_blas_threads(1);   /* the model splits its products over the pool itself */
    if (!rc) rc = mt_tts_family(dir, &family, &err);
    if (!rc && family == MT_TTS_ORPHEUS) {
        j.oopts.seed = j.opts.seed;
        j.oopts.snac = (mt_snac_opts){.noise = j.opts.random, .seed = j.opts.seed};
        if (!j.opts.random) j.oopts.temp = 0;
        if (!voice_given) j.voice = NULL;   /* no "voice: " prefix */
        rc = mt_orpheus_load(&orph, dir, codec, pool, &err);
        j.orph = orph;
    } else if (!rc && codec) {
        rc = mt_seterr(&err, MT_EUSAGE, "--codec is for Orpheus models; %s is a Kokoro folder", model);
    } else if (!rc) {
        rc = mt_kokoro_load(dir, pool, &k, &err);
        if (!rc && int8) rc = mt_kokoro_int8(k, NULL, &err);
    }
    if (!rc && int8 && orph) rc = mt_seterr(&err, MT_EUSAGE, "--int8 is for Kokoro models; %s is an Orpheus folder", model);
    j.k = k;
    j.dir = dir;
    if (!rc && !orph && (rc = mt_tts_job_lang(&j, j.lang, &g, &err))) {
        char m[sizeof err.msg];
        memcpy(m, err.msg, sizeof m);
        rc = mt_seterr(&err, MT_EUSAGE, "--lang: %s", m);
    }
    if (!rc && !orph && voice_given && (rc = mt_tts_job_voice(&j, j.voice, &err))) {   /* the default is loaded when used */
        char m[sizeof err.msg];
        memcpy(m, err.msg, sizeof m);
        rc = mt_seterr(&err, rc == MT_ENOMEM ? rc : MT_EUSAGE, "--voice: %s", m);
    }
    if (!rc && j.out_dir) rc = mt_mkdirs(j.out_dir, &err);

    mt_jsonl_stats st = {0};
    FILE *out = stdout, *jsonl = stdout;
    mt_resume *rs = NULL;
    mt_jsonl_opts o = {.prog = PROG, .text_mode = text_mode, .quiet = quiet, .real_precision = 9,
                       .shard_k = shard_k, .shard_n = shard_n};
    if (!rc) rc = mt_resume_begin(&rs, resume, &o, &out, &err);
    if (!rc && raw && out == stdout && !(jsonl = out = fopen("/dev/null", "w")))
        rc = mt_seterr(&err, MT_EIO, "/dev/null: %s", strerror(errno));
    if (!rc) {
        FILE *in = stdin;
        char *line = NULL;
        if (prompt) {   /* one record, read from memory */
            json_t *r = json_pack("{s:s}", "text", prompt);
            line = r ? json_dumps(r, JSON_COMPACT) : NULL;
            json_decref(r);
            in = line ? fmemopen(line, strlen(line), "r") : NULL;
            if (!in) rc = mt_seterr(&err, MT_ENOMEM, "out of memory");
        }
        if (!rc) rc = mt_jsonl_run(in, out, stderr, &o, mt_tts_record, &j, &st, &err);
        int e = errno;
        if (rc == MT_EIO && ferror(out))
            mt_seterr(&err, MT_EIO, "%s: write failed: %s", resume ? resume : "standard output", strerror(e ? e : EIO));
        if (prompt && in) fclose(in);
        free(line);
    }
    rc = mt_resume_end(rs, out, rc, &o, &st, stderr, &err);
    if (raw && !resume && jsonl != stdout && jsonl) fclose(jsonl);
    mt_tts_job_clear(&j);
    mt_kokoro_free(k);
    mt_orpheus_free(orph);
    mt_pool_free(pool);
    free(dir);
    if (!rc && fflush(stdout) != 0)
        rc = mt_seterr(&err, MT_EIO, "standard output: write failed: %s", strerror(errno));
    if (rc) {
        fprintf(stderr, PROG ": %s\n", err.msg[0] ? err.msg : mt_strstatus(rc));
        return rc == MT_EUSAGE ? MT_EXIT_USAGE : MT_EXIT_FATAL;
    }
    return mt_jsonl_exit_code(rc, &st);
}
