/* run.c - mlx-stt's per-input work: load, skip silence (--vad), transcribe,
 * write the transcript; the progress line, the JSONL record handler, and the
 * three modes' loops (files, --raw, records on stdin). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audio/mel.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "stt.h"
#include "stt/outname.h"
#include "stt/vad.h"

#define PROG "mlx-stt"

double stt_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* ---- the progress line: "\r<prefix><name> M:SS / M:SS\033[K", no newline ---- */

static void clock_fmt(double s, char *buf, size_t n) {
    long t = s > 0 ? (long)s : 0;
    snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

static void progress_cb(void *user, double pos, double total) {
    stt_job *j = user;
    char a[32], b[32];
    clock_fmt(pos, a, sizeof a);
    clock_fmt(total, b, sizeof b);
    if (j->tick) {   /* records: one progress line, the loop's, which it erases before error lines */
        mt_jsonl_tick_note(j->tick, "%s %s / %s", j->label ? j->label : "", a, b);
        return;
    }
    fprintf(stderr, "\r%s%s %s / %s\033[K", j->prefix, j->label ? j->label : "", a, b);
    fflush(stderr);
    j->drawn = 1;
}

void stt_progress_clear(stt_job *j) {
    if (!j->drawn) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    j->drawn = 0;
}

static const char *last_component(const char *path) {
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

/* ---- whole lines: a finished answer reaches the output in one write ---- */

static int put_whole(FILE *out, const char *s, size_t n, mt_err *err) {
    if (fflush(out) != 0) return mt_seterr(err, MT_EIO, "write to output failed: %s", strerror(errno));
    int fd = fileno(out);
    while (n) {
        ssize_t k = write(fd, s, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return mt_seterr(err, MT_EIO, "write to output failed: %s", strerror(errno));
        s += k;
        n -= (size_t)k;
    }
    return MT_OK;
}

static int put_json_line(FILE *out, json_t *obj, mt_err *err) {
    if (!obj) return mt_seterr(err, MT_ENOMEM, "out of memory");
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(STT_REAL_PREC));
    if (!s) return mt_seterr(err, MT_ENOMEM, "cannot encode output record");
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    line[n] = '\n';
    int rc = put_whole(out, line, n + 1, err);
    free(line);
    return rc;
}

/* A transcript in format f (not jsonl) to out in one write; json gets a newline
 * (one document per line). */
static int put_transcript(stt_job *j, FILE *out, const mt_stt_result *res, mt_err *err) {
    char *s = NULL;
    size_t n = 0;
    MT_TRY(mt_stt_render(j->fmt, res, &j->wo, &s, &n, err));
    int rc = MT_OK;
    if (j->fmt == MT_STT_JSON) {
        char *t = realloc(s, n + 2);
        if (!t) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        else {
            s = t;
            s[n++] = '\n';
        }
    }
    if (!rc) rc = put_whole(out, s, n, err);
    free(s);
    return rc;
}

/* ---- one input ---- */

/* A recogniser other than Whisper: the options it takes, the clips (--vad). */
static int asr_run(stt_job *j, const mt_audio *a, const mt_stt_opts *o, mt_stt_result *res, mt_err *err) {
    mt_asr_opts ao = {.language = o->language, .task = o->task, .word_timestamps = o->word_timestamps,
                      .max_tokens = j->max_tokens, .chunk_s = j->chunk_s};
    if (j->progress) {
        ao.progress = progress_cb;
        ao.progress_user = j;
    }
    return mt_asr_transcribe_clips(j->asr, a->pcm, a->n, o->clip_timestamps, o->n_clip, &ao, res, err);
}

int stt_run(stt_job *j, const mt_audio *a, mt_stt_opts *o, mt_stt_result *res, mt_err *err) {
    memset(res, 0, sizeof *res);
    /* English-only models transcribe English whatever --language says (the reference CLI) */
    if (!j->asr && !j->tok.multilingual) o->language = "en";
    double dur = a->rate > 0 ? (double)a->n / a->rate : 0;
    if (j->vad) {
        int nc = 0;
        int rc = mt_stt_vad(a->pcm, a->n, a->rate, j->vad_db, o->clip_timestamps, MT_STT_MAX_CLIPS, &nc);
        if (rc) return mt_seterr(err, rc, "voice activity detection: %s", mt_strstatus(rc));
        if (!nc) {   /* nothing but silence: an empty transcript */
            res->text = calloc(1, 1);
            if (!res->text) return mt_seterr(err, MT_ENOMEM, "out of memory");
            snprintf(res->language, sizeof res->language, "%s", o->language ? o->language : "");
            res->duration = dur;
            return MT_OK;
        }
        o->n_clip = nc;
        o->vad = 0;
    }
    /* an odd clip list ends at the end of the audio (reference) */
    if (o->n_clip % 2 == 1 && o->n_clip < MT_STT_MAX_CLIPS) o->clip_timestamps[o->n_clip++] = dur;
    if (j->asr) {
        int rc = asr_run(j, a, o, res, err);
        if (!rc && res->duration <= 0) res->duration = dur;
        return rc;
    }
    if (j->progress) {
        o->progress = progress_cb;
        o->progress_user = j;
    }
    int rc = mt_stt_transcribe(j->w, &j->tok, a->pcm, a->n, o, res, err);
    if (!rc && res->duration <= 0) res->duration = dur;
    return rc;
}

/* The file that names the output in an answer: the json with -f all. */
static mt_stt_format reported_format(const stt_job *j) { return j->all ? MT_STT_JSON : j->fmt; }

int stt_file(stt_job *j, const char *path, mt_stt_opts *o, mt_stt_result *res, double *rtf, char **out_path,
             mt_err *err) {
    double t0 = stt_now();
    *out_path = NULL;
    memset(res, 0, sizeof *res);
    mt_audio a = {0};
    j->label = last_component(path);
    MT_TRY(mt_audio_load(&a, path, MT_WHISPER_RATE, err));
    int rc = stt_run(j, &a, o, res, err);
    double dur = a.rate > 0 ? (double)a.n / a.rate : 0;
    mt_audio_clear(&a);
    /* -f all: txt, vtt, srt, tsv, then json (whose path is reported) */
    static const mt_stt_format every[] = {MT_STT_TXT, MT_STT_VTT, MT_STT_SRT, MT_STT_TSV, MT_STT_JSON};
    for (int k = j->all ? 0 : 4; !rc && j->outdir && k < 5; k++) {
        mt_stt_format f = j->all ? every[k] : j->fmt;
        free(*out_path);
        *out_path = mt_stt_output_path(j->outdir, path, mt_stt_format_ext(f));
        if (!*out_path) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        else rc = mt_stt_write_file_ex(*out_path, f, res, &j->wo, err);
    }
    if (rc) {
        mt_stt_result_free(res);
        free(*out_path);
        *out_path = NULL;
        if (!strstr(err->msg, path)) mt_preferr(err, "%s", path);
        return rc;
    }
    *rtf = dur > 0 ? (stt_now() - t0) / dur : 0;
    return MT_OK;
}

json_t *stt_record(stt_job *j, const mt_stt_result *res, double rtf, const char *out_path) {
    json_t *r = mt_stt_result_json_ex(res, &j->wo);
    if (!r) return NULL;
    json_t *o = json_object();
    json_object_set(o, "text", json_object_get(r, "text"));
    json_object_set(o, "language", json_object_get(r, "language"));
    json_object_set(o, "segments", json_object_get(r, "segments"));
    json_object_set_new(o, "duration", json_real(res->duration));
    if (!j->reproducible) json_object_set_new(o, "rtf", json_real(rtf));
    json_decref(r);
    if (out_path) {
        json_t *p = mt_json_string_lossy(out_path, strlen(out_path));
        if (!p || json_object_set_new(o, "output", p)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

int stt_record_fn(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err) {
    (void)lineno;
    stt_job *j = user;
    const char *path, *lang = NULL, *task = NULL, *prompt = NULL;
    if (json_object_get(rec, "audio") || !json_object_get(rec, "text"))
        MT_TRY(mt_json_get_string(rec, "audio", &path, NULL, 1, err));
    else
        MT_TRY(mt_json_get_string(rec, "text", &path, NULL, 1, err));
    if (!*path) return mt_seterr(err, MT_EINVAL, "empty \"audio\" path");
    MT_TRY(mt_json_get_string(rec, "language", &lang, NULL, 0, err));
    MT_TRY(mt_json_get_string(rec, "task", &task, NULL, 0, err));
    MT_TRY(mt_json_get_string(rec, "prompt", &prompt, NULL, 0, err));
    mt_stt_opts o = j->base;
    if (lang && j->asr) {
        if (!(j->caps & MT_ASR_LANGUAGE))
            return mt_seterr(err, MT_EINVAL, "\"language\": %s models take no language",
                             mt_asr_family_of(j->asr)->name);
        o.language = lang;
    } else if (lang) {
        if (mt_wtok_lang_index(&j->tok, lang) < 0) return mt_seterr(err, MT_EINVAL, "unknown \"language\" '%s'", lang);
        o.language = lang;
    }
    if (prompt && j->asr)
        return mt_seterr(err, MT_EINVAL, "\"prompt\" is a Whisper option (%s models take none)",
                         mt_asr_family_of(j->asr)->name);
    if (task) {
        if (!strcmp(task, "transcribe")) o.task = 0;
        else if (!strcmp(task, "translate")) o.task = 1;
        else return mt_seterr(err, MT_EINVAL, "\"task\" must be \"transcribe\" or \"translate\"");
    }
    if (prompt) o.initial_prompt = prompt;
    /* with -o: a second record of the same base name would replace the first one's file */
    char *want = NULL;
    if (j->outdir) {
        want = mt_stt_output_path(j->outdir, path, mt_stt_format_ext(reported_format(j)));
        if (!want) return mt_seterr(err, MT_ENOMEM, "out of memory");
        if (json_object_get(j->written, want)) {
            mt_seterr(err, MT_EINVAL, "%s: %s was already written for an earlier record of this run (same base name)",
                      path, want);
            free(want);
            return MT_EINVAL;
        }
    }
    mt_stt_result res;
    double rtf = 0;
    char *op = NULL;
    int rc = stt_file(j, path, &o, &res, &rtf, &op, err);   /* frees res and op when it fails */
    if (!rc && want && json_object_set_new_nocheck(j->written, want, json_true())) {
        mt_stt_result_free(&res);
        free(op);
        rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    free(want);
    if (rc) return rc;
    *out = stt_record(j, &res, rtf, op);
    mt_stt_result_free(&res);
    free(op);
    return *out ? MT_OK : mt_seterr(err, MT_EINVAL, "the transcript is not valid UTF-8");
}

/* ---- the three modes ---- */

int stt_check_outputs(const stt_job *j, char *const *paths, int n, mt_err *err) {
    if (!j->outdir) return MT_OK;
    struct stat st;
    if (stat(j->outdir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return mt_seterr(err, MT_EUSAGE, "-o %s: exists and is not a folder", j->outdir);
    } else if (errno == ENOTDIR) {
        return mt_seterr(err, MT_EUSAGE, "-o %s: a part of the path is not a folder", j->outdir);
    }
    size_t a, b;
    int rc = mt_stt_output_collision(j->outdir, (const char *const *)paths, (size_t)n,
                                     mt_stt_format_ext(reported_format(j)), &a, &b, err);
    if (rc == MT_EINVAL) {
        mt_preferr(err, "-o %s", j->outdir);
        err->code = MT_EUSAGE;
        return MT_EUSAGE;
    }
    return rc;
}

int stt_make_outdir(const char *dir, mt_err *err) {
    MT_TRY(mt_mkdirs(dir, err));
    if (access(dir, W_OK | X_OK) != 0) return mt_seterr(err, MT_EIO, "-o %s: cannot write there: %s", dir, strerror(errno));
    return MT_OK;
}

int stt_files(stt_job *j, char **paths, int n, mt_err *err) {
    int failed = 0, tty = j->progress;
    double t0 = stt_now(), audio_s = 0;
    for (int i = 0; i < n; i++) {
        mt_stt_opts o = j->base;
        mt_stt_result res;
        mt_err e = {0};
        double rtf = 0;
        char *op = NULL;
        snprintf(j->prefix, sizeof j->prefix, "%d/%d ", i + 1, n);
        int rc = stt_file(j, paths[i], &o, &res, &rtf, &op, &e);
        stt_progress_clear(j);
        int wrc = MT_OK;
        json_t *id = (j->fmt == MT_STT_JSONL && !j->outdir) ? mt_json_string_lossy(paths[i], strlen(paths[i])) : NULL;
        if (rc) {
            failed++;
            if (j->fmt == MT_STT_JSONL && !j->outdir) {
                json_t *r = id ? mt_jsonl_error_record(id, NULL, 0, e.code, e.msg) : NULL;
                wrc = put_json_line(stdout, r, err);
                json_decref(r);
            }
            if (!j->quiet || j->fmt != MT_STT_JSONL || j->outdir) fprintf(stderr, PROG ": %s\n", e.msg);
        } else {
            audio_s += res.duration;
            if (!j->outdir && j->fmt == MT_STT_JSONL) {
                json_t *r = stt_record(j, &res, rtf, NULL), *line = json_object();
                if (r && id && !json_object_set(line, "id", id) && !json_object_update(line, r))
                    wrc = put_json_line(stdout, line, err);
                else
                    wrc = mt_seterr(err, MT_ENOMEM, "%s: cannot encode the answer", paths[i]);
                json_decref(r);
                json_decref(line);
            } else if (!j->outdir) {
                wrc = put_transcript(j, stdout, &res, err);
            }
            if (wrc) mt_preferr(err, "stdout");
            mt_stt_result_free(&res);
            free(op);
        }
        json_decref(id);
        if (wrc) return -1;
        if (tty) {
            double el = stt_now() - t0, left = (i + 1 < n) ? el / (i + 1) * (n - i - 1) : 0;
            fprintf(stderr, "\r%d/%d files (%d failed), %.1f s of audio, RTF %.3f, ETA %02d:%02d\033[K", i + 1, n,
                    failed, audio_s, audio_s > 0 ? el / audio_s : 0, (int)(left / 60), (int)left % 60);
            fflush(stderr);
            j->drawn = 1;
        }
    }
    if (j->drawn) {
        fputc('\n', stderr);
        j->drawn = 0;
    }
    return failed;
}

int stt_raw(stt_job *j, int rate, int channels, int format, double max_s, int *status, mt_err *err) {
    mt_audio a = {0};
    mt_stt_result res;
    mt_stt_opts o = j->base;
    double t0 = stt_now();
    mt_err e = {0};
    *status = MT_EXIT_OK;
    j->prefix[0] = 0;
    j->label = "stdin";
    int rc = mt_audio_read_raw(&a, stdin, rate, channels, format, MT_WHISPER_RATE, max_s, &e);
    if (rc == MT_ELIMIT && max_s < 86400) {
        size_t k = strlen(e.msg);
        snprintf(e.msg + k, sizeof e.msg - k, "; --max-duration raises the limit");
    }
    if (!rc) rc = stt_run(j, &a, &o, &res, &e);
    double dur = (double)a.n / MT_WHISPER_RATE;
    mt_audio_clear(&a);
    if (rc) {
        stt_progress_clear(j);
        fprintf(stderr, PROG ": stdin: %s\n", e.msg);
        *status = MT_EXIT_PARTIAL;
        return MT_OK;
    }
    if (j->drawn) {   /* the finished progress line stays */
        fputc('\n', stderr);
        j->drawn = 0;
    }
    if (j->fmt == MT_STT_JSONL) {
        json_t *r = stt_record(j, &res, dur > 0 ? (stt_now() - t0) / dur : 0, NULL);
        rc = put_json_line(stdout, r, err);
        json_decref(r);
    } else {
        rc = put_transcript(j, stdout, &res, err);
    }
    mt_stt_result_free(&res);
    if (rc) mt_preferr(err, "stdout");
    return rc;
}

int stt_records(stt_job *j, int text_mode, const char *resume, int *status, mt_err *err) {
    mt_jsonl_opts jo = {.prog = PROG, .text_mode = text_mode, .quiet = j->quiet, .real_precision = STT_REAL_PREC,
                        .shard_k = j->shard_k, .shard_n = j->shard_n};
    FILE *out = stdout;
    mt_resume *rs = NULL;
    MT_TRY(mt_resume_begin(&rs, resume, &jo, &out, err));
    if (j->outdir && !(j->written = json_object())) {
        if (rs) mt_resume_close(rs, out, NULL);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    mt_jsonl_tick tick = {0};
    jo.tick = &tick;
    j->tick = &tick;
    mt_jsonl_stats st = {0};
    int rc = mt_jsonl_run(stdin, out, stderr, &jo, stt_record_fn, j, &st, err);
    j->tick = NULL;
    json_decref(j->written);
    j->written = NULL;
    rc = mt_resume_end(rs, out, rc, &jo, &st, stderr, err);
    *status = mt_jsonl_exit_code(0, &st);
    return rc;
}
