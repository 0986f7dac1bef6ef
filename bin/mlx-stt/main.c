/* mlx-stt - speech-to-text as a Unix filter (Whisper, and the recognisers of
 * stt/asr.h: Parakeet, Wav2Vec2/HuBERT, Moonshine, Voxtral, Qwen3-ASR).
 *   files:  mlx-stt -m MODEL [-f srt] [-o DIR] FILE...     transcript per file (stdout or DIR)
 *   batch:  mlx-stt -m MODEL < records.jsonl               {"id","audio"} -> {"id","text","segments",...}
 *   raw:    mlx-stt -m MODEL --raw --rate 16000 --format s16le < pcm */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "audio/mel.h"
#include "core/blas.h"
#include "core/cli.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "core/sig.h"
#include "io/hub.h"
#include "stt.h"

static const char usage[] =
    "usage: mlx-stt -m MODEL [options] FILE...           transcribe audio files\n"
    "       mlx-stt -m MODEL [options] < records.jsonl   {\"id\",\"audio\"[,\"language\",\"task\",\"prompt\"]} per line\n"
    "       mlx-stt -m MODEL --raw --rate R --format s16le|f32le [--channels C] < pcm\n"
    "\n"
    "MODEL is a speech-recognition folder (mlx-community or Hugging Face layout) or a Hugging Face repo\n"
    "id: Whisper, or a model_type listed by --list-models (Parakeet, Wav2Vec2/HuBERT CTC, Moonshine,\n"
    "Voxtral, Qwen3-ASR), chosen by its config.json.  Options marked W are Whisper's decoding options.\n"
    "Audio: WAV, FLAC, OGG/Vorbis/Opus, MP3 (libsndfile), any rate and channel count.\n"
    "\n"
    "  -f, --output-format F    txt, srt, vtt, tsv, json, jsonl, or all (txt+vtt+srt+tsv+json, with -o)\n"
    "                           (default: txt for files and --raw, jsonl for records on stdin)\n"
    "  -o, --output-dir DIR     write DIR/<input basename>.<format> per input (atomic)\n"
    "      --text               stdin holds one audio path per line\n"
    "      --resume FILE        records: append answers to FILE, skipping ids already answered there\n"
    "      --shard K/N          only the records (or FILEs) at positions K, K+N, K+2N, ... (0-based;\n"
    "                           N processes with K = 0..N-1 split one job, see mlx-tools-cluster(7))\n"
    "      --reproducible       JSONL answers without \"rtf\" (it depends on the run)\n"
    "      --raw --rate R --format s16le|f32le [--channels C]   raw PCM on stdin\n"
    "      --max-duration S     --raw: refuse input longer than S seconds (default 7200)\n"
    "      --language L         spoken language (code or name; default: detect, English-only models: en)\n"
    "      --task T             transcribe (default) or translate (to English)\n"
    "  W   --temperature T      default 0\n"
    "  W   --temperature-increment-on-fallback D   default 0.2 (none: no fallback)\n"
    "  W   --best-of N          candidates when sampling (default 5)\n"
    "  W   --beam-size N        beam search at temperature 0 (default: greedy)\n"
    "  W   --patience P  --length-penalty A\n"
    "  W   --compression-ratio-threshold X  (2.4)  --logprob-threshold X  (-1.0)\n"
    "  W   --no-speech-threshold X  (0.6)          (each accepts none)\n"
    "  W   --initial-prompt TEXT  --condition-on-previous-text true|false\n"
    "  W   --suppress-tokens LIST  default -1   --without-timestamps\n"
    "      --word-timestamps    word-level timing (and the word options below)\n"
    "  W   --prepend-punctuations S  --append-punctuations S\n"
    "      --highlight-words  --max-line-width N  --max-line-count N  --max-words-per-line N\n"
    "      --clip-timestamps LIST  start,end,... seconds to transcribe\n"
    "  W   --hallucination-silence-threshold S\n"
    "      --vad [--vad-threshold DB]   skip silence found by an energy detector (default -45 dBFS)\n"
    "  W   --seed N             sampling seed (default 0)\n"
    "      --list-models        the model types mlx-stt runs and what each supports\n"
    "      --chunk-length S     not Whisper: long audio in windows of S seconds (default: the family's)\n"
    "      --max-tokens N       decoders other than Whisper's: tokens at most (default: the family's)\n"
    "  -t, --threads N          default: all cores\n"
    "      --int8               quantized models: int8 activations, integer dot products (faster, not exact)\n"
    "      --revision REV       hub revision (default main)\n"
    "  -q, --quiet              nothing on stderr but errors\n"
    "  -h, --help  --version\n"
    "\n"
    "Exit status: 0 all inputs done, 3 some inputs failed, 2 usage error, 1 fatal error,\n"
    "130 interrupted (SIGINT), 141 standard output closed (SIGPIPE).\n";

#define PROG "mlx-stt"

static int num_arg(const char *opt, const char *s, double lo, double hi, double *out) {
    return mt_cli_number(stderr, PROG, opt, s, lo, hi, out);
}

static int is_none(const char *s) { return !strcmp(s, "none") || !strcmp(s, "None"); }

/* "0,10.5,20" -> values; 1 (message printed) when malformed. */
static int parse_list(const char *opt, const char *s, double *v, int cap, int *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        double x = strtod(p, &end);
        if (end == p || (*end && *end != ',') || !(x >= 0) || !isfinite(x) || *n == cap) {
            fprintf(stderr, PROG ": %s: '%s' is not a list of at most %d non-negative numbers\n", opt, s, cap);
            return 1;
        }
        v[(*n)++] = x;
        p = *end ? end + 1 : end;
    }
    return 0;
}

static int parse_bool(const char *opt, const char *s, int *out) {
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "1")) *out = 1;
    else if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "0")) *out = 0;
    else {
        fprintf(stderr, PROG ": %s: '%s' is not true or false\n", opt, s);
        return 1;
    }
    return 0;
}

enum { O_TEXT = 256, O_RESUME, O_RAW, O_RATE, O_FORMAT, O_CHANNELS, O_LANG, O_TASK, O_TEMP, O_TINC, O_BEST, O_BEAM,
       O_PAT, O_LP, O_CRT, O_LPT, O_NST, O_PROMPT, O_COND, O_SUPP, O_NOTS, O_WORDS, O_PREP, O_APP, O_HL, O_MLW, O_MLC,
       O_MWPL, O_CLIP, O_HST, O_VAD, O_VADT, O_SEED, O_REV, O_VERSION, O_INT8, O_MAXDUR, O_SHARD, O_REPRO, O_LIST, O_CHUNK, O_MAXTOK };

/* Whisper's decoding options: refused with the other recognisers. */
static const int whisper_only[] = {O_TEMP, O_TINC, O_BEST, O_BEAM, O_PAT, O_LP, O_CRT, O_LPT, O_NST, O_PROMPT,
                                   O_COND, O_SUPP, O_NOTS, O_PREP, O_APP, O_HST, O_SEED};

static void list_models(void) {
    printf("%-14s %-10s %-5s %-9s %s\n", "model_type", "timestamps", "words", "languages", "translate");
    printf("%-14s %-10s %-5s %-9s %s\n", "whisper", "segments", "yes", "99", "yes");
    size_t n;
    const mt_asr_family *const *fs = mt_asr_families(&n);
    for (size_t i = 0; i < n; i++)
        for (const char *const *t = fs[i]->model_types; t && *t; t++)
            printf("%-14s %-10s %-5s %-9s %s\n", *t, fs[i]->caps & MT_ASR_SEGMENTS ? "segments" : "none",
                   fs[i]->caps & MT_ASR_WORDS ? "yes" : "no", fs[i]->caps & MT_ASR_LANGUAGE ? "option" : "model's",
                   fs[i]->caps & MT_ASR_TRANSLATE ? "yes" : "no");
}

int main(int argc, char **argv) {
    static const struct option lo[] = {
        {"model", 1, 0, 'm'}, {"output-format", 1, 0, 'f'}, {"output-dir", 1, 0, 'o'}, {"threads", 1, 0, 't'},
        {"text", 0, 0, O_TEXT}, {"resume", 1, 0, O_RESUME}, {"raw", 0, 0, O_RAW}, {"rate", 1, 0, O_RATE},
        {"format", 1, 0, O_FORMAT}, {"channels", 1, 0, O_CHANNELS}, {"language", 1, 0, O_LANG},
        {"task", 1, 0, O_TASK}, {"temperature", 1, 0, O_TEMP}, {"temperature-increment-on-fallback", 1, 0, O_TINC},
        {"best-of", 1, 0, O_BEST}, {"beam-size", 1, 0, O_BEAM}, {"patience", 1, 0, O_PAT},
        {"length-penalty", 1, 0, O_LP}, {"compression-ratio-threshold", 1, 0, O_CRT},
        {"logprob-threshold", 1, 0, O_LPT}, {"no-speech-threshold", 1, 0, O_NST}, {"initial-prompt", 1, 0, O_PROMPT},
        {"condition-on-previous-text", 1, 0, O_COND}, {"suppress-tokens", 1, 0, O_SUPP},
        {"without-timestamps", 0, 0, O_NOTS}, {"word-timestamps", 0, 0, O_WORDS},
        {"prepend-punctuations", 1, 0, O_PREP}, {"append-punctuations", 1, 0, O_APP},
        {"highlight-words", 0, 0, O_HL}, {"max-line-width", 1, 0, O_MLW}, {"max-line-count", 1, 0, O_MLC},
        {"max-words-per-line", 1, 0, O_MWPL}, {"clip-timestamps", 1, 0, O_CLIP},
        {"hallucination-silence-threshold", 1, 0, O_HST}, {"vad", 0, 0, O_VAD}, {"vad-threshold", 1, 0, O_VADT},
        {"seed", 1, 0, O_SEED}, {"revision", 1, 0, O_REV}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},
        {"version", 0, 0, O_VERSION}, {"int8", 0, 0, O_INT8}, {"max-duration", 1, 0, O_MAXDUR},
        {"shard", 1, 0, O_SHARD}, {"reproducible", 0, 0, O_REPRO}, {"list-models", 0, 0, O_LIST},
        {"chunk-length", 1, 0, O_CHUNK}, {"max-tokens", 1, 0, O_MAXTOK}, {0, 0, 0, 0}};
    mt_blas_init(argv);
    stt_job j = {.vad_db = -45, .wo = {.word_timestamps = 0}};
    mt_stt_opts *o = &j.base;
    mt_stt_opts_default(o);
    const char *model = NULL, *format = NULL, *resume = NULL, *revision = NULL, *pcm = NULL, *lang = NULL;
    const char *wonly = NULL;   /* a Whisper-only option given (its name) */
    int text_mode = 0, raw = 0, rate = 0, channels = 1, threads = 0, int8 = 0, c;
    double temp = 0, tinc = 0.2, v, max_s = 0;
    opterr = 0;   /* our own one-line messages, named mlx-stt whatever argv[0] is */
    while ((c = getopt_long(argc, argv, ":m:f:o:t:qh", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': model = optarg; break;
        case 'f': format = optarg; break;
        case 'o': j.outdir = optarg; break;
        case 't': bad = num_arg("--threads", optarg, 1, 256, &v); threads = (int)v; break;
        case 'q': j.quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        case O_VERSION: printf(PROG " %s\n", MT_VERSION); return 0;
        case O_LIST: list_models(); return 0;
        case O_CHUNK: bad = num_arg("--chunk-length", optarg, 0.5, 86400, &j.chunk_s); break;
        case O_MAXTOK: bad = num_arg("--max-tokens", optarg, 1, 1e7, &v); j.max_tokens = (int)v; break;
        case O_INT8: int8 = 1; break;
        case O_TEXT: text_mode = 1; break;
        case O_RESUME: resume = optarg; break;
        case O_SHARD: bad = mt_cli_shard(stderr, PROG, optarg, &j.shard_k, &j.shard_n); break;
        case O_REPRO: j.reproducible = 1; break;
        case O_RAW: raw = 1; break;
        case O_RATE: bad = num_arg("--rate", optarg, 1000, 768000, &v); rate = (int)v; break;
        case O_FORMAT: pcm = optarg; break;
        case O_CHANNELS: bad = num_arg("--channels", optarg, 1, 64, &v); channels = (int)v; break;
        case O_LANG: lang = optarg; break;
        case O_TASK:
            if (!strcmp(optarg, "transcribe")) o->task = 0;
            else if (!strcmp(optarg, "translate")) o->task = 1;
            else { fprintf(stderr, PROG ": --task must be transcribe or translate\n"); bad = 1; }
            break;
        case O_TEMP: bad = num_arg("--temperature", optarg, 0, 100, &temp); break;
        case O_TINC:
            if (is_none(optarg)) tinc = 0;
            else bad = num_arg("--temperature-increment-on-fallback", optarg, 1e-3, 100, &tinc);
            break;
        case O_BEST: bad = num_arg("--best-of", optarg, 1, 64, &v); o->best_of = (int)v; break;
        case O_BEAM: bad = num_arg("--beam-size", optarg, 1, 64, &v); o->beam_size = (int)v; break;
        case O_PAT: bad = num_arg("--patience", optarg, 1e-6, 100, &o->patience); break;
        case O_LP: bad = num_arg("--length-penalty", optarg, 0, 100, &o->length_penalty); break;
        case O_CRT:
            if (is_none(optarg)) o->compression_ratio_threshold = 0;
            else bad = num_arg("--compression-ratio-threshold", optarg, 1e-6, 1e6, &o->compression_ratio_threshold);
            break;
        case O_LPT:
            if (is_none(optarg)) o->logprob_threshold = NAN;
            else bad = num_arg("--logprob-threshold", optarg, -1e6, 1e6, &o->logprob_threshold);
            break;
        case O_NST:
            if (is_none(optarg)) o->no_speech_threshold = NAN;
            else bad = num_arg("--no-speech-threshold", optarg, 0, 1, &o->no_speech_threshold);
            break;
        case O_PROMPT: o->initial_prompt = optarg; break;
        case O_COND: bad = parse_bool("--condition-on-previous-text", optarg, &o->condition_on_previous_text); break;
        case O_SUPP: o->suppress_tokens = optarg; break;
        case O_NOTS: o->without_timestamps = 1; break;
        case O_WORDS: o->word_timestamps = 1; break;
        case O_PREP: o->prepend_punctuations = optarg; break;
        case O_APP: o->append_punctuations = optarg; break;
        case O_HL: j.wo.highlight_words = 1; break;
        case O_MLW: bad = num_arg("--max-line-width", optarg, 1, 1e6, &v); j.wo.max_line_width = (int)v; break;
        case O_MLC: bad = num_arg("--max-line-count", optarg, 1, 1e6, &v); j.wo.max_line_count = (int)v; break;
        case O_MWPL: bad = num_arg("--max-words-per-line", optarg, 1, 1e6, &v); j.wo.max_words_per_line = (int)v; break;
        case O_CLIP: bad = parse_list("--clip-timestamps", optarg, o->clip_timestamps, MT_STT_MAX_CLIPS - 1, &o->n_clip); break;
        case O_HST: bad = num_arg("--hallucination-silence-threshold", optarg, 0, 1e6, &o->hallucination_silence_threshold); break;
        case O_VAD: j.vad = 1; break;
        case O_VADT: bad = num_arg("--vad-threshold", optarg, -200, 0, &j.vad_db); break;
        case O_SEED: bad = num_arg("--seed", optarg, 0, 9007199254740992.0, &v); o->seed = (uint64_t)v; break;
        case O_REV: revision = optarg; break;
        case O_MAXDUR: bad = num_arg("--max-duration", optarg, 1, 86400, &max_s); break;
        case ':': fprintf(stderr, PROG ": option '%s' needs a value\n", argv[optind - 1]); bad = 1; break;
        default:
            if (optopt && optopt < 256) fprintf(stderr, PROG ": unknown option '-%c'\n", optopt);
            else fprintf(stderr, PROG ": unknown option '%s'\n", argv[optind - 1]);
            bad = 1;
        }
        if (bad) { fputs("Try 'mlx-stt --help'.\n", stderr); return MT_EXIT_USAGE; }
        for (size_t i = 0; i < sizeof whisper_only / sizeof *whisper_only; i++)
            for (const struct option *p = lo; p->name && c == whisper_only[i]; p++)
                if (p->val == c) wonly = p->name;
    }
#define USAGE(...) do { fprintf(stderr, PROG ": " __VA_ARGS__); fputc('\n', stderr); return MT_EXIT_USAGE; } while (0)
    int nfiles = argc - optind;
    if (!model) USAGE("no model: give -m MODEL (see --help)");
    j.all = format && !strcmp(format, "all");
    int fmt = j.all ? MT_STT_JSON : format ? mt_stt_format_parse(format) : -1;
    if (format && fmt < 0) USAGE("-f must be txt, srt, vtt, tsv, json, jsonl or all");
    if (j.all && !j.outdir) USAGE("-f all writes files: give -o DIR");
    int records = !nfiles && !raw;
    if (fmt < 0) fmt = records ? MT_STT_JSONL : MT_STT_TXT;
    j.fmt = (mt_stt_format)fmt;
    if (raw && nfiles) USAGE("--raw reads stdin: no FILE arguments");
    if (raw && (!rate || !pcm)) USAGE("--raw needs --rate R and --format s16le|f32le");
    if (!raw && (rate || pcm || channels != 1 || max_s)) USAGE("--rate, --format, --channels and --max-duration go with --raw");
    if (pcm && strcmp(pcm, "s16le") && strcmp(pcm, "f32le")) USAGE("--format must be s16le or f32le");
    if (raw && j.outdir) USAGE("--raw writes to stdout: no -o");
    if (raw && j.shard_n) USAGE("--shard goes with FILEs or records on stdin, not --raw");
    if ((text_mode || resume) && !records) USAGE("--text and --resume go with records on stdin (no FILE, no --raw)");
    if (records && j.outdir && fmt == MT_STT_JSONL) USAGE("-o with records on stdin needs -f txt|srt|vtt|tsv|json");
    if (records && !j.outdir && fmt != MT_STT_JSONL) USAGE("-f %s with records on stdin needs -o DIR", format);
    if (!o->word_timestamps && (j.wo.highlight_words || j.wo.max_line_width || j.wo.max_line_count || j.wo.max_words_per_line))
        USAGE("--highlight-words, --max-line-width, --max-line-count and --max-words-per-line need --word-timestamps");
    if (j.vad && o->n_clip) USAGE("--vad and --clip-timestamps exclude each other");
    if (o->n_clip) {
        for (int i = 1; i < o->n_clip; i++)
            if (o->clip_timestamps[i] < o->clip_timestamps[i - 1]) USAGE("--clip-timestamps must not decrease");
        if (o->n_clip == 1 && o->clip_timestamps[0] == 0) o->n_clip = 0;   /* "0": the whole file */
    }
    if (o->suppress_tokens) {
        for (const char *p = o->suppress_tokens; *p; p++)
            if (!strchr("0123456789,- ", *p)) USAGE("--suppress-tokens must be comma-separated token ids");
    }
    mt_err err = {0};
    if (mt_stt_set_temperatures(o, temp, tinc, &err)) USAGE("--temperature-increment-on-fallback: %s", err.msg);
    j.wo.word_timestamps = o->word_timestamps;
    /* -o: a folder, and one output name per input, before any work */
    if (stt_check_outputs(&j, argv + optind, nfiles, &err)) USAGE("%s", err.msg);
    mt_sig_install(PROG);   /* SIGINT/SIGTERM/SIGHUP/SIGPIPE: temp files removed, exit 128+N */
    mt_hub_opts hopts = {.revision = revision};
    mt_progress_bar bar = {.f = stderr};
    j.progress = !j.quiet && isatty(STDERR_FILENO);
    if (j.progress) { hopts.progress = mt_progress_bar_cb; hopts.progress_user = &bar; }
    char *dir = NULL;
    mt_pool *pool = NULL;
    int usage_err = 0, tok_open = 0;
    int rc = mt_hub_resolve(model, &hopts, &dir, &err);
    if (!rc) rc = mt_pool_new(&pool, threads, &err);
    if (!rc) mt_blas_threads(1); /* the model splits its products over the pool itself */
    /* --int8: the quantized linears' arithmetic (mt_linear_qmath reads it;
     * set before loading: the model prepares its int8 path at load) */
    if (!rc && int8 && setenv("MT_QMATH", "int8", 1)) rc = mt_seterr(&err, MT_ENOMEM, "out of memory");
    const mt_asr_family *fam = NULL;
    if (!rc) rc = mt_asr_detect(dir, &fam, &err);
    if (!rc && fam) {
        /* a recogniser other than Whisper: only the options it can honour */
        j.caps = fam->caps;
        usage_err = 1;
        if (wonly) rc = mt_seterr(&err, MT_EUSAGE, "--%s is a Whisper option; %s is a %s model", wonly, model, fam->name);
        else if (lang && !(fam->caps & MT_ASR_LANGUAGE))
            rc = mt_seterr(&err, MT_EUSAGE, "--language: %s models take no language (%s)", fam->name, model);
        else if (o->task == 1 && !(fam->caps & MT_ASR_TRANSLATE))
            rc = mt_seterr(&err, MT_EUSAGE, "--task translate: %s models only transcribe (%s)", fam->name, model);
        else if (o->word_timestamps && !(fam->caps & MT_ASR_WORDS))
            rc = mt_seterr(&err, MT_EUSAGE, "--word-timestamps: %s models give no word times (%s)", fam->name, model);
        else
            usage_err = 0;
        if (!rc) rc = mt_asr_load(&j.asr, dir, pool, &err);
        o->language = lang;
        j.wo.plain_segments = 1;
    } else if (!rc && (j.chunk_s || j.max_tokens)) {
        rc = mt_seterr(&err, MT_EUSAGE, "--%s is not a Whisper option (Whisper decodes 30-s windows)",
                       j.chunk_s ? "chunk-length" : "max-tokens");
        usage_err = 1;
    } else if (!rc) {
        rc = mt_whisper_load(&j.w, dir, pool, &err);
        if (!rc) rc = mt_wtok_open(&j.tok, dir, mt_whisper_hparams(j.w)->n_vocab, NULL, &err);
        tok_open = !rc;
    }
    free(dir);
    if (!rc && lang && !fam) {
        if (mt_wtok_lang_index(&j.tok, lang) < 0) {
            rc = mt_seterr(&err, MT_EUSAGE, "--language: unknown language '%s'", lang);
            usage_err = 1;
        } else if (!j.tok.multilingual && strcmp(lang, "en") && strcasecmp(lang, "english")) {
            if (!j.quiet) fprintf(stderr, PROG ": %s is an English-only model; using English instead of '%s'\n", model, lang);
        }
        o->language = lang;
    }
    if (!rc && !fam && o->task == 1 && !j.tok.multilingual) {
        rc = mt_seterr(&err, MT_EUSAGE, "--task translate: %s is an English-only model", model);
        usage_err = 1;
    }
    if (!rc && j.outdir) rc = stt_make_outdir(j.outdir, &err);
    int status = MT_EXIT_OK;
    if (!rc && raw) {
        rc = stt_raw(&j, rate, channels, strcmp(pcm, "s16le") ? MT_PCM_F32LE : MT_PCM_S16LE,
                     max_s ? max_s : STT_RAW_MAX_DEFAULT, &status, &err);
    } else if (!rc && nfiles) {
        /* --shard: the FILEs at positions K, K+N, ... (argv is ours to reorder) */
        int mine = 0;
        for (int i = 0; i < nfiles; i++)
            if (mt_shard_mine((size_t)i, j.shard_k, j.shard_n)) argv[optind + mine++] = argv[optind + i];
        int failed = stt_files(&j, argv + optind, mine, &err);
        if (failed < 0) rc = err.code ? err.code : MT_EIO;
        else if (failed) status = MT_EXIT_PARTIAL;
    } else if (!rc) {
        rc = stt_records(&j, text_mode, resume, &status, &err);
    }
    if (tok_open) mt_wtok_close(&j.tok);
    mt_whisper_free(j.w);
    mt_asr_free(j.asr);
    mt_pool_free(pool);
    if (rc) {
        fprintf(stderr, PROG ": %s\n", err.msg[0] ? err.msg : mt_strstatus(rc));
        return usage_err ? MT_EXIT_USAGE : MT_EXIT_FATAL;
    }
    if (fclose(stdout) != 0) { fprintf(stderr, PROG ": write error on stdout\n"); return MT_EXIT_FATAL; }
    return status;
}
