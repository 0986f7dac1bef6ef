/* jsonl.c - the shared JSONL record loop, progress line and field helpers. */
#include "core/jsonl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

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
    if (bad) return mt_seterr(err, MT_EIO, "write to output failed: %s", strerror(errno));
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

json_t *mt_json_string_lossy(const char *s, size_t n) {
    json_t *j = json_stringn(s, n);
    if (j) return j;
    char *b = malloc(n * 3 + 1), *o = b;
    if (!b) return NULL;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
        if (k > 0) {                      /* a valid character (NUL too: jansson writes \u0000) */
            memcpy(o, s + i, (size_t)k);
            o += k;
            i += (size_t)k;
        } else {                          /* one invalid byte -> U+FFFD */
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    j = json_stringn(b, (size_t)(o - b));
    free(b);
    return j;
}

/* OpenAI Batch API request lines are answered in the Batch API's shapes. */
static int is_openai_line(json_t *rec) {
    return json_is_object(rec) && (json_is_string(json_object_get(rec, "custom_id")) ||
                                   json_is_object(json_object_get(rec, "body")));
}

static const char *error_code_name(int code) {
    switch (code) {
    case MT_EINVAL: case MT_EFORMAT: case MT_EUSAGE: return "invalid_request";
    case MT_ELIMIT: return "limit_exceeded";
    case MT_ENOTFOUND: return "not_found";
    case MT_EUNSUPPORTED: return "unsupported";
    default: return "server_error";
    }
}

json_t *mt_jsonl_error_record(json_t *id, json_t *rec, size_t lineno, int code, const char *msg) {
    if (!msg || !*msg) msg = mt_strstatus(code ? code : MT_EINVAL);
    size_t n = strlen(msg);
    char *line = malloc(n + 32);
    if (!line) return NULL;
    int k = lineno ? snprintf(line, n + 32, "line %zu: %s", lineno, msg) : snprintf(line, n + 32, "%s", msg);
    json_t *text = mt_json_string_lossy(line, k > 0 ? (size_t)k : 0);
    free(line);
    if (!text) return NULL;
    json_t *o = json_object();
    if (is_openai_line(rec)) {
        char rid[48];
        snprintf(rid, sizeof rid, "batch_req_%zu", lineno);
        json_t *cid = json_object_get(rec, "custom_id");
        json_object_set_new(o, "id", json_string(rid));
        json_object_set(o, "custom_id", json_is_string(cid) ? cid : json_null());
        json_object_set_new(o, "response", json_null());
        json_object_set_new(o, "error", json_pack("{s:s,s:o}", "code", error_code_name(code), "message", text));
    } else {
        json_object_set(o, "id", id ? id : json_null());
        json_object_set_new(o, "error", text);
    }
    return o;
}

typedef struct progress progress;
static void progress_clear(progress *p, FILE *errf);

static int emit_error(FILE *out, FILE *errf, const mt_jsonl_opts *o, progress *pg, json_t *id, json_t *rec,
                      size_t lineno, int code, const char *msg, mt_err *err) {
    json_t *er = mt_jsonl_error_record(id, rec, lineno, code, msg);
    if (!er) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!o->quiet && errf) {
        json_t *e = json_object_get(er, "error");
        const char *t = json_is_object(e) ? json_string_value(json_object_get(e, "message")) : json_string_value(e);
        progress_clear(pg, errf);
        fprintf(errf, "%s: %s\n", o->prog ? o->prog : "mlx-tools", t ? t : "error");
    }
    int rc = mt_jsonl_write_prec(out, er, o->real_precision, err);
    json_decref(er);
    return rc;
}

struct progress {
    int on, drawn;   /* drawn: a progress line without its newline is on the terminal */
    double t0, last;
    long long total_bytes, pos;
    FILE *errf;
    const mt_jsonl_stats *st;
    char note[200];  /* progress inside the records being handled (mt_jsonl_tick_note) */
};

/* Before anything else goes to the terminal: erase a progress line drawn there. */
static void progress_clear(progress *p, FILE *errf) {
    if (p && p->on && p->drawn) {
        fputs("\r\033[K", errf);
        p->drawn = 0;
    }
}

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
    fprintf(errf, "\r%zu records (%zu failed) %.1f rec/s%s%s%s\033[K%s", s->records, s->failed, rate, eta,
            p->note[0] && !final ? " | " : "", final ? "" : p->note, final ? "\n" : "");
    p->drawn = !final;
    fflush(errf);
}

static void tick_fn(void *ctx, const char *text) {
    progress *p = ctx;
    snprintf(p->note, sizeof p->note, "%s", text);
    progress_draw(p, p->errf, p->st, p->pos, 0);
}

void mt_jsonl_tick_note(const mt_jsonl_tick *t, const char *fmt, ...) {
    if (!t || !t->fn) return;
    char buf[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    t->fn(t->ctx, buf);
}

/* One input record waiting for its answer. */
typedef struct pending {
    json_t *id, *rec, *res;
    size_t lineno;
    int rc, done;
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

/* ---- the record stream: records start and finish in any order; answers leave in input order ---- */

struct mt_jsonl_stream {
    FILE *in, *out, *errf;
    const mt_jsonl_opts *o;
    size_t max_line;
    progress pg;
    mt_jsonl_stats st;
    char *line;
    size_t cap, lineno, pos;
    pending *q;        /* ring of records read and not yet written: q[(head + i) % qcap] has ticket base + i */
    size_t qcap, head, count, base;
    int eof;
    int rc;            /* fatal (a write failed, a handler said so): nothing more is read or written */
    mt_err err;
};

static pending *ring_at(mt_jsonl_stream *s, size_t ticket) { return &s->q[(s->head + (ticket - s->base)) % s->qcap]; }

static void pending_clear(pending *p) {
    json_decref(p->res);
    json_decref(p->rec);
    json_decref(p->id);
    memset(p, 0, sizeof *p);
}

/* A new slot at the tail of the ring (grown as needed), or NULL when out of memory. */
static pending *ring_push(mt_jsonl_stream *s) {
    if (s->count == s->qcap) {
        size_t nc = s->qcap ? s->qcap * 2 : 16;
        pending *nq = calloc(nc, sizeof *nq);
        if (!nq) return NULL;
        for (size_t i = 0; i < s->count; i++) nq[i] = s->q[(s->head + i) % s->qcap];
        free(s->q);
        s->q = nq;
        s->qcap = nc;
        s->head = 0;
    }
    pending *p = &s->q[(s->head + s->count++) % s->qcap];
    memset(p, 0, sizeof *p);
    return p;
}

/* Write the finished records at the head of the ring. */
static int stream_flush(mt_jsonl_stream *s) {
    const mt_jsonl_opts *o = s->o;
    int wrote = 0;
    while (!s->rc && s->count && s->q[s->head].done) {
        pending *p = &s->q[s->head];
        int rc;
        if (p->rc) {
            s->st.failed++;
            rc = emit_error(s->out, s->errf, o, &s->pg, p->id, p->rec, p->lineno, p->rc, p->e.msg, &s->err);
        } else {
            s->st.ok++;
            json_t *line_out = with_id(p->id, p->res);
            p->res = NULL;
            rc = mt_jsonl_write_prec(s->out, line_out, o->real_precision, &s->err);
            json_decref(line_out);
        }
        if (rc) s->rc = rc;
        pending_clear(p);
        s->head = (s->head + 1) % s->qcap;
        s->count--;
        s->base++;
        wrote = 1;
    }
    if (wrote && !s->rc && fflush(s->out) != 0)
        s->rc = mt_seterr(&s->err, MT_EIO, "write to output failed: %s", strerror(errno));
    if (wrote && s->pg.on) progress_draw(&s->pg, s->errf, &s->st, s->pg.pos, 0);
    return s->rc;
}

int mt_jsonl_next(mt_jsonl_stream *s, json_t **rec, size_t *lineno, size_t *ticket) {
    const mt_jsonl_opts *o = s->o;
    ssize_t got;
    while (!s->rc && !s->eof) {
        if ((got = getline(&s->line, &s->cap, s->in)) < 0) {
            s->eof = 1;
            break;
        }
        s->lineno++;
        size_t len = (size_t)got;
        while (len && (s->line[len - 1] == '\n' || s->line[len - 1] == '\r')) len--;
        if (!o->text_mode) {
            size_t i = 0;
            while (i < len && (s->line[i] == ' ' || s->line[i] == '\t')) i++;
            if (i == len) continue;
        }
        if (o->shard_n > 1 && s->pos++ % o->shard_n != o->shard_k) {
            s->st.other_shards++;
            continue;
        }
        pending *p = ring_push(s);
        if (!p) {
            s->rc = mt_seterr(&s->err, MT_ENOMEM, "out of memory");
            break;
        }
        p->lineno = s->lineno;
        parse_record(p, s->line, len, o, s->max_line);
        if (o->skip) {
            mt_err why = {0};
            int k = o->skip(o->skip_user, p->id, p->rec, s->lineno, &why);
            if (k == MT_SKIP_DUPLICATE) {
                s->st.failed++;
                s->st.duplicates++;
                if (!o->quiet && s->errf) {
                    progress_clear(&s->pg, s->errf);
                    fprintf(s->errf, "%s: line %zu: %s\n", o->prog ? o->prog : "mlx-tools", s->lineno, why.msg);
                }
            } else if (k == MT_SKIP_ANSWERED) {
                s->st.skipped++;
            }
            if (k) {   /* the newest slot: taken back */
                pending_clear(p);
                s->count--;
                continue;
            }
        }
        s->st.records++;
        if (s->pg.on) s->pg.pos = (long long)ftello(s->in);
        if (p->rc) {   /* unparsable: answered with its error in its turn */
            p->done = 1;
            stream_flush(s);
            continue;
        }
        *rec = p->rec;
        *lineno = p->lineno;
        *ticket = s->base + s->count - 1;
        return 1;
    }
    return 0;
}

int mt_jsonl_done(mt_jsonl_stream *s, size_t ticket, json_t *out, int rc, const mt_err *e) {
    if (ticket < s->base || ticket - s->base >= s->count || ring_at(s, ticket)->done) {
        json_decref(out);
        if (!s->rc) s->rc = mt_seterr(&s->err, MT_EFATAL, "internal: record %zu answered twice", ticket);
        return s->rc;
    }
    pending *p = ring_at(s, ticket);
    p->done = 1;
    p->rc = rc;
    if (rc) {
        json_decref(out);
        if (e) p->e = *e;
        if (!p->e.msg[0]) mt_seterr(&p->e, rc, "%s", mt_strstatus(rc));
        if (rc == MT_EFATAL && !s->rc) {   /* the run cannot go on: nothing more is written */
            s->rc = MT_EFATAL;
            mt_seterr(&s->err, MT_EFATAL, "%s", p->e.msg);
        }
    } else if (!json_is_object(out)) {
        json_decref(out);
        p->rc = mt_seterr(&p->e, MT_EINVAL, "internal: handler gave no object");
    } else {
        p->res = out;
    }
    return stream_flush(s);
}

int mt_jsonl_run_stream(FILE *in, FILE *out, FILE *errf, const mt_jsonl_opts *o, mt_stream_fn fn, void *user,
                        mt_jsonl_stats *stats, mt_err *err) {
    mt_jsonl_stream s = {.in = in, .out = out, .errf = errf, .o = o};
    s.max_line = o->max_line ? o->max_line : ((size_t)64 << 20);
    s.pg.on = !o->quiet && errf && isatty(fileno(errf));
    s.pg.t0 = now_s();
    s.pg.last = s.pg.t0 - 1;   /* the first update draws at once, later ones at most every 0.25 s */
    struct stat sb;
    if (fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode)) s.pg.total_bytes = sb.st_size;
    s.pg.errf = errf;
    s.pg.st = &s.st;
    if (o->tick) *o->tick = (mt_jsonl_tick){s.pg.on ? tick_fn : NULL, &s.pg};
    mt_err herr = {0};
    int hrc = fn(user, &s, &herr);
    if (!s.rc && hrc) {
        s.rc = hrc;
        s.err = herr;
    }
    if (!s.rc && s.count)   /* a handler that returned with records unanswered */
        s.rc = mt_seterr(&s.err, MT_EFATAL, "internal: %zu records left unanswered", s.count);
    while (s.count) {
        pending_clear(&s.q[s.head]);
        s.head = (s.head + 1) % s.qcap;
        s.count--;
    }
    free(s.q);
    free(s.line);
    int rc = s.rc;
    if (rc) *err = s.err;
    if (!rc && ferror(in)) rc = mt_seterr(err, MT_EIO, "read error on input");
    if (!rc && fflush(out) != 0) rc = mt_seterr(err, MT_EIO, "write to output failed: %s", strerror(errno));
    s.pg.note[0] = 0;
    progress_draw(&s.pg, errf, &s.st, 0, 1);
    if (o->tick) *o->tick = (mt_jsonl_tick){NULL, NULL};
    if (stats) *stats = s.st;
    return rc;
}

/* mt_jsonl_run_batch: up to `batch` records pulled from the stream, handled together, answered. */
typedef struct batch_ctx {
    mt_batch_fn fn;
    void *user;
    size_t batch;
} batch_ctx;

static int batch_adapter(void *user, mt_jsonl_stream *s, mt_err *err) {
    batch_ctx *c = user;
    size_t B = c->batch;
    json_t **recs = calloc(B, sizeof *recs), **outs = calloc(B, sizeof *outs);
    size_t *lines = calloc(B, sizeof *lines), *tickets = calloc(B, sizeof *tickets);
    int *rcs = calloc(B, sizeof *rcs);
    mt_err *errs = calloc(B, sizeof *errs);
    int rc = MT_OK;
    if (!recs || !outs || !lines || !tickets || !rcs || !errs) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    while (!rc) {
        size_t n = 0;
        while (n < B && mt_jsonl_next(s, &recs[n], &lines[n], &tickets[n])) n++;
        if (!n) break;
        for (size_t i = 0; i < n; i++) {
            outs[i] = NULL;
            rcs[i] = MT_OK;
            errs[i] = (mt_err){0};
        }
        c->fn(c->user, recs, lines, n, outs, rcs, errs);
        /* a fatal record first: then none of the batch's answers is written */
        for (size_t i = 0; i < n; i++)
            if (rcs[i] == MT_EFATAL) {
                mt_jsonl_done(s, tickets[i], outs[i], rcs[i], &errs[i]);
                outs[i] = NULL;
                rcs[i] = -1;
            }
        for (size_t i = 0; i < n; i++)
            if (rcs[i] != -1) mt_jsonl_done(s, tickets[i], outs[i], rcs[i], &errs[i]);
        s->pg.note[0] = 0;
        if (s->rc) break;
    }
    free(recs); free(outs); free(lines); free(tickets); free(rcs); free(errs);
    return rc;
}

int mt_jsonl_run_batch(FILE *in, FILE *out, FILE *errf, const mt_jsonl_opts *o, size_t batch, mt_batch_fn fn,
                       void *user, mt_jsonl_stats *stats, mt_err *err) {
    batch_ctx c = {fn, user, batch ? batch : 1};
    return mt_jsonl_run_stream(in, out, errf, o, batch_adapter, &c, stats, err);
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
