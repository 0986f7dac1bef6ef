/* jsonl.c - the shared JSONL record loop, progress line and field helpers. */
#include "core/jsonl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int mt_jsonl_write(FILE *out, json_t *obj, mt_err *err) {
    char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!s) return mt_seterr(err, MT_ENOMEM, "cannot encode output record");
    int bad = fputs(s, out) < 0 || fputc('\n', out) == EOF;
    free(s);
    if (bad) return mt_seterr(err, MT_EIO, "write to output failed");
    return MT_OK;
}

/* Build the output line: {"id": id, ...fields of body}; a handler that sets
 * its own "id" (e.g. OpenAI batch answers) keeps it.  Steals body. */
static json_t *with_id(json_t *id, json_t *body) {
    json_t *o = json_object();
    json_t *own = json_object_get(body, "id");
    json_object_set(o, "id", own ? own : id);
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        if (strcmp(k, "id") != 0) json_object_set(o, k, v);
    }
    json_decref(body);
    return o;
}

static int emit_error(FILE *out, FILE *errf, const mt_jsonl_opts *o, json_t *id, size_t lineno,
                      const char *msg, mt_err *err) {
    char line[700];
    snprintf(line, sizeof line, "line %zu: %s", lineno, msg);
    if (!o->quiet && errf) fprintf(errf, "%s: %s\n", o->prog ? o->prog : "mlx-tools", line);
    json_t *rec = json_object();
    json_object_set(rec, "id", id);
    json_object_set_new(rec, "error", json_string(line));
    int rc = mt_jsonl_write(out, rec, err);
    json_decref(rec);
    return rc;
}

typedef struct progress {
    int on;
    double t0, last;
    long long total_bytes;
} progress;

static void progress_draw(progress *p, FILE *errf, const mt_jsonl_stats *s, long long pos, int final) {
    if (!p->on) return;
    double t = now_s();
    if (!final && t - p->last < 0.25) return;
    p->last = t;
    double el = t - p->t0;
    double rate = el > 0 ? s->records / el : 0;
    char eta[32] = "";
    if (p->total_bytes > 0 && pos > 0 && el > 0 && !final) {
        double left = (double)(p->total_bytes - pos) / ((double)pos / el);
        snprintf(eta, sizeof eta, " ETA %02d:%02d", (int)(left / 60), (int)left % 60);
    }
    fprintf(errf, "\r%zu records (%zu failed) %.1f rec/s%s\033[K%s", s->records, s->failed, rate, eta,
            final ? "\n" : "");
    fflush(errf);
}

int mt_jsonl_run(FILE *in, FILE *out, FILE *errf, const mt_jsonl_opts *o, mt_record_fn fn, void *user,
                 mt_jsonl_stats *stats, mt_err *err) {
    mt_jsonl_stats st = {0};
    size_t max_line = o->max_line ? o->max_line : ((size_t)64 << 20);
    progress pg = {0};
    pg.on = !o->quiet && errf && isatty(fileno(errf));
    pg.t0 = pg.last = now_s();
    struct stat sb;
    if (fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode)) pg.total_bytes = sb.st_size;

    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t n;
    int rc = MT_OK;
    while ((n = getline(&line, &cap, in)) >= 0) {
        lineno++;
        size_t len = (size_t)n;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        if (!o->text_mode) {
            size_t i = 0;
            while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
            if (i == len) continue;
        }
        st.records++;
        json_t *id = json_integer((json_int_t)lineno);
        json_t *rec = NULL;
        mt_err e = {0};
        int bad = 0;
        if (len > max_line) {
            bad = mt_seterr(&e, MT_ELIMIT, "record longer than %zu bytes", max_line);
        } else if (o->text_mode) {
            rec = json_object();
            json_t *s = json_stringn(line, len);
            if (!s) bad = mt_seterr(&e, MT_EINVAL, "not valid UTF-8");
            else json_object_set_new(rec, "text", s);
        } else {
            json_error_t je;
            rec = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
            if (!rec) bad = mt_seterr(&e, MT_EINVAL, "invalid JSON at column %d: %s", je.column, je.text);
            else if (!json_is_object(rec)) bad = mt_seterr(&e, MT_EINVAL, "record is not a JSON object");
            else if (json_object_get(rec, "id")) {
                json_decref(id);
                id = json_incref(json_object_get(rec, "id"));
            }
        }
        json_t *res = NULL;
        if (!bad) {
            bad = fn(user, rec, lineno, &res, &e);
            if (!bad && !json_is_object(res)) {
                json_decref(res);
                res = NULL;
                bad = mt_seterr(&e, MT_EINVAL, "internal: handler gave no object");
            }
        }
        if (bad) {
            st.failed++;
            rc = emit_error(out, errf, o, id, lineno, e.msg[0] ? e.msg : mt_strstatus(bad), err);
        } else {
            st.ok++;
            json_t *line_out = with_id(id, res);
            rc = mt_jsonl_write(out, line_out, err);
            json_decref(line_out);
        }
        json_decref(rec);
        json_decref(id);
        if (rc) break;
        if (pg.on) progress_draw(&pg, errf, &st, (long long)ftello(in), 0);
    }
    free(line);
    if (!rc && ferror(in)) rc = mt_seterr(err, MT_EIO, "read error on input");
    if (!rc && fflush(out) != 0) rc = mt_seterr(err, MT_EIO, "write to output failed");
    progress_draw(&pg, errf, &st, 0, 1);
    if (stats) *stats = st;
    return rc;
}

int mt_jsonl_exit_code(int rc, const mt_jsonl_stats *s) {
    if (rc) return MT_EXIT_FATAL;
    return s && s->failed ? MT_EXIT_PARTIAL : MT_EXIT_OK;
}

int mt_json_get_string(json_t *rec, const char *key, const char **out, size_t *len, int required, mt_err *err) {
    json_t *v = json_object_get(rec, key);
    if (!v) {
        if (required) return mt_seterr(err, MT_EINVAL, "missing \"%s\"", key);
        *out = NULL;
        if (len) *len = 0;
        return MT_OK;
    }
    if (!json_is_string(v)) return mt_seterr(err, MT_EINVAL, "\"%s\" must be a string", key);
    *out = json_string_value(v);
    if (len) *len = json_string_length(v);
    return MT_OK;
}

int mt_json_get_bool(json_t *rec, const char *key, int *out, mt_err *err) {
    json_t *v = json_object_get(rec, key);
    if (!v || json_is_null(v)) return MT_OK;
    if (!json_is_boolean(v)) return mt_seterr(err, MT_EINVAL, "\"%s\" must be true or false", key);
    *out = json_is_true(v);
    return MT_OK;
}

int mt_json_get_int(json_t *rec, const char *key, long long *out, mt_err *err) {
    json_t *v = json_object_get(rec, key);
    if (!v || json_is_null(v)) return MT_OK;
    if (!json_is_integer(v)) return mt_seterr(err, MT_EINVAL, "\"%s\" must be an integer", key);
    *out = json_integer_value(v);
    return MT_OK;
}

int mt_json_get_number(json_t *rec, const char *key, double *out, mt_err *err) {
    json_t *v = json_object_get(rec, key);
    if (!v || json_is_null(v)) return MT_OK;
    if (!json_is_number(v)) return mt_seterr(err, MT_EINVAL, "\"%s\" must be a number", key);
    *out = json_number_value(v);
    return MT_OK;
}
