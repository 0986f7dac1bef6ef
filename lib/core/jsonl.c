/* jsonl.c - the shared JSONL record loop, progress line and field helpers. */
#include "core/jsonl.h"

#include <errno.h>
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

int mt_jsonl_write(FILE *out, json_t *obj, mt_err *err) { return mt_jsonl_write_prec(out, obj, 0, err); }

int mt_jsonl_write_prec(FILE *out, json_t *obj, int real_precision, mt_err *err) {
    size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY;
    if (real_precision > 0 && real_precision <= 31) flags |= JSON_REAL_PRECISION(real_precision);
    char *s = json_dumps(obj, flags);
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
    int rc = mt_jsonl_write_prec(out, rec, o->real_precision, err);
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

/* One input record waiting for its answer. */
typedef struct pending {
    json_t *id, *rec, *res;
    size_t lineno;
    int rc;
    mt_err e;
} pending;

/* Parse line (len bytes) into p->rec, or set p->rc / p->e. */
static void parse_record(pending *p, const char *line, size_t len, const mt_jsonl_opts *o, size_t max_line) {
    p->id = json_integer((json_int_t)p->lineno);
    if (len > max_line) {
        p->rc = mt_seterr(&p->e, MT_ELIMIT, "record longer than %zu bytes", max_line);
    } else if (o->text_mode) {
        json_t *s = json_stringn(line, len);
        if (!s) p->rc = mt_seterr(&p->e, MT_EINVAL, "not valid UTF-8");
        else {
            p->rec = json_object();
            json_object_set_new(p->rec, "text", s);
        }
    } else {
        json_error_t je;
        p->rec = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &je);
        if (!p->rec) p->rc = mt_seterr(&p->e, MT_EINVAL, "invalid JSON at column %d: %s", je.column, je.text);
        else if (!json_is_object(p->rec)) p->rc = mt_seterr(&p->e, MT_EINVAL, "record is not a JSON object");
        else if (json_object_get(p->rec, "id")) {
            json_decref(p->id);
            p->id = json_incref(json_object_get(p->rec, "id"));
        }
    }
}

/* Run the handler on the parsed records of a batch, then write every answer in order. */
static int flush_batch(pending *pb, size_t n, FILE *out, FILE *errf, const mt_jsonl_opts *o, mt_batch_fn fn,
                       void *user, mt_jsonl_stats *st, mt_err *err) {
    json_t *recs[n ? n : 1], *outs[n ? n : 1];
    size_t lines[n ? n : 1], map[n ? n : 1], k = 0;
    int rcs[n ? n : 1];
    mt_err *errs = calloc(n ? n : 1, sizeof *errs);
    if (!errs) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!pb[i].rc) {
            recs[k] = pb[i].rec;
            lines[k] = pb[i].lineno;
            outs[k] = NULL;
            rcs[k] = MT_OK;
            map[k++] = i;
        }
    if (k) fn(user, recs, lines, k, outs, rcs, errs);
    for (size_t j = 0; j < k; j++) {
        pending *p = &pb[map[j]];
        p->rc = rcs[j];
        p->e = errs[j];
        p->res = outs[j];
        if (!p->rc && !json_is_object(p->res)) {
            json_decref(p->res);
            p->res = NULL;
            p->rc = mt_seterr(&p->e, MT_EINVAL, "internal: handler gave no object");
        } else if (p->rc) {
            json_decref(p->res);
            p->res = NULL;
        }
    }
    free(errs);
    int rc = MT_OK;
    for (size_t i = 0; i < n; i++) {
        pending *p = &pb[i];
        if (!rc) {
            if (p->rc) {
                st->failed++;
                rc = emit_error(out, errf, o, p->id, p->lineno, p->e.msg[0] ? p->e.msg : mt_strstatus(p->rc), err);
            } else {
                st->ok++;
                json_t *line_out = with_id(p->id, p->res);
                p->res = NULL;
                rc = mt_jsonl_write_prec(out, line_out, o->real_precision, err);
                json_decref(line_out);
            }
        }
        json_decref(p->res);
        json_decref(p->rec);
        json_decref(p->id);
        memset(p, 0, sizeof *p);
    }
    if (!rc && fflush(out) != 0) rc = mt_seterr(err, MT_EIO, "write to output failed");
    return rc;
}

int mt_jsonl_run_batch(FILE *in, FILE *out, FILE *errf, const mt_jsonl_opts *o, size_t batch, mt_batch_fn fn,
                       void *user, mt_jsonl_stats *stats, mt_err *err) {
    mt_jsonl_stats st = {0};
    size_t max_line = o->max_line ? o->max_line : ((size_t)64 << 20);
    if (batch == 0) batch = 1;
    progress pg = {0};
    pg.on = !o->quiet && errf && isatty(fileno(errf));
    pg.t0 = pg.last = now_s();
    struct stat sb;
    if (fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode)) pg.total_bytes = sb.st_size;
    pending *pb = calloc(batch, sizeof *pb);
    if (!pb) return mt_seterr(err, MT_ENOMEM, "out of memory");
    char *line = NULL;
    size_t cap = 0, lineno = 0, n = 0;
    ssize_t got;
    int rc = MT_OK;
    while (!rc && (got = getline(&line, &cap, in)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        if (!o->text_mode) {
            size_t i = 0;
            while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
            if (i == len) continue;
        }
        pb[n].lineno = lineno;
        parse_record(&pb[n], line, len, o, max_line);
        if (o->skip && !pb[n].rc && o->skip(o->skip_user, pb[n].id, pb[n].rec)) {
            st.skipped++;
            json_decref(pb[n].rec);
            json_decref(pb[n].id);
            memset(&pb[n], 0, sizeof pb[n]);
            continue;
        }
        st.records++;
        n++;
        if (n == batch) {
            rc = flush_batch(pb, n, out, errf, o, fn, user, &st, err);
            n = 0;
            if (pg.on) progress_draw(&pg, errf, &st, (long long)ftello(in), 0);
        }
    }
    if (!rc && n) rc = flush_batch(pb, n, out, errf, o, fn, user, &st, err);
    free(line);
    free(pb);
    if (!rc && ferror(in)) rc = mt_seterr(err, MT_EIO, "read error on input");
    if (!rc && fflush(out) != 0) rc = mt_seterr(err, MT_EIO, "write to output failed");
    progress_draw(&pg, errf, &st, 0, 1);
    if (stats) *stats = st;
    return rc;
}

/* mt_jsonl_run: batches of one through a per-record adapter. */
typedef struct single_ctx { mt_record_fn fn; void *user; } single_ctx;

static void single_adapter(void *user, json_t **recs, const size_t *linenos, size_t n, json_t **outs, int *rcs,
                           mt_err *errs) {
    single_ctx *c = user;
    for (size_t i = 0; i < n; i++) rcs[i] = c->fn(c->user, recs[i], linenos[i], &outs[i], &errs[i]);
}

int mt_jsonl_run(FILE *in, FILE *out, FILE *errf, const mt_jsonl_opts *o, mt_record_fn fn, void *user,
                 mt_jsonl_stats *stats, mt_err *err) {
    single_ctx c = {fn, user};
    return mt_jsonl_run_batch(in, out, errf, o, 1, single_adapter, &c, stats, err);
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

/* ---- --resume ---- */

struct mt_resume {
    char **keys;      /* sorted JSON encodings of answered ids */
    size_t n;
};

static int cmpstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The key of a record: its custom_id (OpenAI lines) or its id, JSON-encoded. */
static char *record_key(json_t *id, json_t *rec) {
    json_t *cid = rec ? json_object_get(rec, "custom_id") : NULL;
    json_t *k = json_is_string(cid) ? cid : id;
    return k ? json_dumps(k, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
}

int mt_resume_open(mt_resume **out_r, const char *path, FILE **out, size_t *n_done, mt_err *err) {
    *out_r = NULL;
    *out = NULL;
    mt_resume *r = calloc(1, sizeof *r);
    if (!r) return mt_seterr(err, MT_ENOMEM, "out of memory");
    FILE *f = fopen(path, "r+");
    if (f) {
        char *line = NULL;
        size_t cap = 0, cap_keys = 0;
        off_t good = 0;
        ssize_t got;
        while ((got = getline(&line, &cap, f)) >= 0) {
            if (line[got - 1] != '\n') break;      /* partial last line: cut below */
            good += got;
            json_t *j = json_loadb(line, (size_t)got, 0, NULL);
            if (json_is_object(j) && !json_object_get(j, "error") && json_object_get(j, "id")) {
                char *k = record_key(json_object_get(j, "id"), j);
                if (k) {
                    if (r->n == cap_keys) {
                        cap_keys = cap_keys ? cap_keys * 2 : 256;
                        char **nk = realloc(r->keys, cap_keys * sizeof *nk);
                        if (!nk) { free(k); json_decref(j); break; }
                        r->keys = nk;
                    }
                    r->keys[r->n++] = k;
                }
            }
            json_decref(j);
        }
        free(line);
        int bad = ftruncate(fileno(f), good) != 0;
        fclose(f);
        if (bad) { mt_resume_free(r); return mt_seterr(err, MT_EIO, "%s: cannot cut a partial last line", path); }
        if (r->n) qsort(r->keys, r->n, sizeof *r->keys, cmpstr);
    }
    *out = fopen(path, "a");
    if (!*out) { int e = errno; mt_resume_free(r); return mt_seterr(err, MT_EIO, "%s: %s", path, strerror(e)); }
    if (n_done) *n_done = r->n;
    *out_r = r;
    return MT_OK;
}

int mt_resume_skip(void *user, json_t *id, json_t *rec) {
    mt_resume *r = user;
    if (!r->n) return 0;
    char *k = record_key(id, rec);
    if (!k) return 0;
    int hit = bsearch(&k, r->keys, r->n, sizeof *r->keys, cmpstr) != NULL;
    free(k);
    return hit;
}

void mt_resume_free(mt_resume *r) {
    if (!r) return;
    for (size_t i = 0; i < r->n; i++) free(r->keys[i]);
    free(r->keys);
    free(r);
}
