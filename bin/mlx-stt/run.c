/* run.c - mlx-stt's per-input work: load, skip silence (--vad), transcribe,
 * write the transcript; the JSONL record handler and the file-mode loop. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audio/mel.h"
#include "core/file.h"
#include "core/jsonl.h"
#include "stt.h"
#include "stt/vad.h"

double stt_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int stt_run(stt_job *j, const mt_audio *a, mt_stt_opts *o, mt_stt_result *res, mt_err *err) {
    memset(res, 0, sizeof *res);
    /* English-only models transcribe English whatever --language says (the reference CLI) */
    if (!j->tok.multilingual) o->language = "en";
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
    int rc = mt_stt_transcribe(j->w, &j->tok, a->pcm, a->n, o, res, err);
    if (!rc && res->duration <= 0) res->duration = dur;
    return rc;
}

/* DIR/<basename without its extension>.<ext> (os.path.splitext rules). */
static char *out_name(const char *dir, const char *path, const char *ext) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    const char *dot = strrchr(base, '.');
    if (dot) {
        const char *q = base;
        while (q < dot && *q == '.') q++;
        if (q < dot) n = (size_t)(dot - base);   /* a leading run of dots is not an extension */
    }
    size_t len = n + strlen(ext) + 2;
    char *name = malloc(len);
    if (!name) return NULL;
    snprintf(name, len, "%.*s.%s", (int)n, base, ext);
    char *p = mt_path_join(dir, name);
    free(name);
    return p;
}

int stt_file(stt_job *j, const char *path, mt_stt_opts *o, mt_stt_result *res, double *rtf, char **out_path,
             mt_err *err) {
    double t0 = stt_now();
    *out_path = NULL;
    memset(res, 0, sizeof *res);
    mt_audio a = {0};
    MT_TRY(mt_audio_load(&a, path, MT_WHISPER_RATE, err));
    int rc = stt_run(j, &a, o, res, err);
    double dur = a.rate > 0 ? (double)a.n / a.rate : 0;
    mt_audio_clear(&a);
    /* -f all: txt, vtt, srt, tsv, then json (whose path is reported) */
    static const mt_stt_format every[] = {MT_STT_TXT, MT_STT_VTT, MT_STT_SRT, MT_STT_TSV, MT_STT_JSON};
    for (int k = j->all ? 0 : 4; !rc && j->outdir && k < 5; k++) {
        mt_stt_format f = j->all ? every[k] : j->fmt;
        free(*out_path);
        *out_path = out_name(j->outdir, path, mt_stt_format_ext(f));
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
    json_object_set_new(o, "rtf", json_real(rtf));
    if (out_path) json_object_set_new(o, "output", json_string(out_path));
    json_decref(r);
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
    if (lang) {
        if (mt_wtok_lang_index(&j->tok, lang) < 0) return mt_seterr(err, MT_EINVAL, "unknown \"language\" '%s'", lang);
        o.language = lang;
    }
    if (task) {
        if (!strcmp(task, "transcribe")) o.task = 0;
        else if (!strcmp(task, "translate")) o.task = 1;
        else return mt_seterr(err, MT_EINVAL, "\"task\" must be \"transcribe\" or \"translate\"");
    }
    if (prompt) o.initial_prompt = prompt;
    mt_stt_result res;
    double rtf = 0;
    char *op = NULL;
    MT_TRY(stt_file(j, path, &o, &res, &rtf, &op, err));
    *out = stt_record(j, &res, rtf, op);
    mt_stt_result_free(&res);
    free(op);
    return *out ? MT_OK : mt_seterr(err, MT_EINVAL, "the transcript is not valid UTF-8");
}

int stt_files(stt_job *j, char **paths, int n, mt_err *err) {
    int failed = 0, tty = !j->quiet && isatty(STDERR_FILENO);
    double t0 = stt_now(), audio_s = 0;
    for (int i = 0; i < n; i++) {
        mt_stt_opts o = j->base;
        mt_stt_result res;
        mt_err e = {0};
        double rtf = 0;
        char *op = NULL;
        int rc = stt_file(j, paths[i], &o, &res, &rtf, &op, &e);
        if (tty) fputs("\r\033[K", stderr);
        if (rc) {
            failed++;
            if (j->fmt == MT_STT_JSONL && !j->outdir) {
                json_t *r = json_pack("{s:s,s:s}", "id", paths[i], "error", e.msg);
                if (r && mt_jsonl_write_prec(stdout, r, STT_REAL_PREC, err)) {
                    json_decref(r);
                    return -1;
                }
                json_decref(r);
                if (!j->quiet) fprintf(stderr, "mlx-stt: %s\n", e.msg);
            } else {
                fprintf(stderr, "mlx-stt: %s\n", e.msg);
            }
        } else {
            audio_s += res.duration;
            int wrc = MT_OK;
            if (!j->outdir && j->fmt == MT_STT_JSONL) {
                json_t *r = stt_record(j, &res, rtf, NULL), *line = json_object();
                json_object_set_new(line, "id", json_string(paths[i]));
                json_object_update(line, r);
                wrc = mt_jsonl_write_prec(stdout, line, STT_REAL_PREC, err);
                json_decref(r);
                json_decref(line);
            } else if (!j->outdir) {
                wrc = mt_stt_write_ex(stdout, j->fmt, &res, &j->wo, err);
                if (!wrc && j->fmt == MT_STT_JSON) fputc('\n', stdout);   /* one document per line */
                if (wrc) mt_preferr(err, "stdout");
            }
            mt_stt_result_free(&res);
            free(op);
            if (wrc) return -1;
        }
        if (tty) {
            double el = stt_now() - t0, left = (i + 1 < n) ? el / (i + 1) * (n - i - 1) : 0;
            fprintf(stderr, "%d/%d files (%d failed), %.1f s of audio, RTF %.3f, ETA %02d:%02d", i + 1, n, failed,
                    audio_s, audio_s > 0 ? el / audio_s : 0, (int)(left / 60), (int)left % 60);
            fflush(stderr);
        }
    }
    if (tty) fputc('\n', stderr);
    return failed;
}
