/* resume.c - --resume FILE: the answers file shared by every program's record
 * loop (the rule is stated once, in jsonl.h).  Keys are the compact JSON
 * encodings of a record's custom_id or id, held in one open-addressing table;
 * the answers themselves stay in FILE and are addressed by offset. */
#include "core/jsonl.h"
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct rkey {
    char *key;            /* NULL: empty slot */
    size_t input_line;    /* line of this input holding the key; 0 = not in this input */
    int answered;         /* FILE held an answer when the run began */
    off_t off;            /* mt_resume_close: the winning line of FILE */
    size_t len;
    int win;              /* 0 none, 1 error line, 2 answer line */
    size_t file_order;    /* first appearance in FILE (1-based); 0 = never */
} rkey;

struct mt_resume {
    char *path;
    int fd;               /* FILE, opened read-write, holding the lock */
    rkey *tab;
    size_t cap, n;
    size_t *order;        /* table slots in input order */
    size_t n_order, cap_order;
    size_t n_answered;
    size_t file_seq;      /* mt_resume_close: keys met so far in FILE */
    rkey *odd;            /* mt_resume_close: lines of FILE with no key (off, len), kept at the end */
    size_t n_odd, cap_odd;
};

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* The slot of key (inserting it, taking ownership, when absent); SIZE_MAX when out of memory. */
static size_t slot_of(mt_resume *r, char *key, int *fresh) {
    if (2 * (r->n + 1) > r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 1024;
        rkey *nt = calloc(nc, sizeof *nt);
        if (!nt) { free(key); return SIZE_MAX; }
        size_t *remap = r->n_order ? malloc(r->cap * sizeof *remap) : NULL;
        if (r->n_order && !remap) { free(nt); free(key); return SIZE_MAX; }
        for (size_t i = 0; i < r->cap; i++) {
            if (!r->tab[i].key) continue;
            size_t j = hash_str(r->tab[i].key) & (nc - 1);
            while (nt[j].key) j = (j + 1) & (nc - 1);
            nt[j] = r->tab[i];
            if (remap) remap[i] = j;
        }
        for (size_t k = 0; k < r->n_order; k++) r->order[k] = remap[r->order[k]];
        free(remap);
        free(r->tab);
        r->tab = nt;
        r->cap = nc;
    }
    size_t j = hash_str(key) & (r->cap - 1);
    while (r->tab[j].key) {
        if (!strcmp(r->tab[j].key, key)) { free(key); *fresh = 0; return j; }
        j = (j + 1) & (r->cap - 1);
    }
    r->tab[j].key = key;
    r->n++;
    *fresh = 1;
    return j;
}

/* The key of a record or answer line: its custom_id (OpenAI lines) or its id, JSON-encoded. */
static char *record_key(json_t *id, json_t *rec) {
    json_t *cid = rec ? json_object_get(rec, "custom_id") : NULL;
    json_t *k = json_is_string(cid) ? cid : id;
    return k ? json_dumps(k, JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
}

static int line_answers(json_t *j) {
    json_t *e = json_object_get(j, "error");
    return !e || json_is_null(e);
}

/* Calls fn(r, line, len, off, lineno) for each whole line of the file behind fd
 * from the start; returns the offset after the last whole line in *good. */
typedef int (*line_fn)(mt_resume *r, const char *line, size_t len, off_t off, size_t lineno, mt_err *err);

static int scan_lines(mt_resume *r, line_fn fn, off_t *good, mt_err *err) {
    int fd2 = dup(r->fd);
    FILE *f = fd2 >= 0 ? fdopen(fd2, "r") : NULL;
    if (!f) {
        if (fd2 >= 0) close(fd2);
        return mt_seterr(err, MT_EIO, "%s: %s", r->path, strerror(errno));
    }
    rewind(f);
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    off_t off = 0;
    ssize_t got;
    int rc = MT_OK;
    while (!rc && (got = getline(&line, &cap, f)) >= 0) {
        if (line[got - 1] != '\n') break;   /* partial last line */
        lineno++;
        rc = fn(r, line, (size_t)got - 1, off, lineno, err);
        off += got;
    }
    if (!rc && ferror(f)) rc = mt_seterr(err, MT_EIO, "%s: read error", r->path);
    free(line);
    fclose(f);
    *good = off;
    return rc;
}

enum { LINE_BLANK, LINE_ANSWER, LINE_OTHER };

/* What a line of FILE is: blank, an answer line (a JSON object with an id or a
 * custom_id: then *slot is its key's slot, inserted when new, and *ok whether
 * it answers the key) or anything else.  -1 when out of memory (err set). */
static int classify(mt_resume *r, const char *line, size_t len, size_t *slot, int *ok, mt_err *err) {
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) i++;
    if (i == len) return LINE_BLANK;
    json_t *j = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
    json_t *id = json_object_get(j, "id");
    if (!json_is_object(j) || (!id && !json_is_string(json_object_get(j, "custom_id")))) {
        json_decref(j);
        return LINE_OTHER;
    }
    int fresh;
    *ok = line_answers(j);
    *slot = slot_of(r, record_key(id, j), &fresh);
    json_decref(j);
    if (*slot == SIZE_MAX) {
        mt_seterr(err, MT_ENOMEM, "out of memory");
        return -1;
    }
    return LINE_ANSWER;
}

static int open_line(mt_resume *r, const char *line, size_t len, off_t off, size_t lineno, mt_err *err) {
    (void)off;
    size_t s;
    int ok, kind = classify(r, line, len, &s, &ok, err);
    if (kind < 0) return MT_ENOMEM;
    if (kind == LINE_OTHER)
        return mt_seterr(err, MT_EINVAL,
                         "%s line %zu: not an answer line (a JSON object with an \"id\"); not resuming into it",
                         r->path, lineno);
    if (kind == LINE_ANSWER && ok && !r->tab[s].answered) {
        r->tab[s].answered = 1;
        r->n_answered++;
    }
    return MT_OK;
}

int mt_resume_open(mt_resume **out_r, const char *path, FILE **out, size_t *n_done, mt_err *err) {
    *out_r = NULL;
    *out = NULL;
    mt_resume *r = calloc(1, sizeof *r);
    if (!r || !(r->path = strdup(path))) {
        free(r);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    r->fd = -1;
    r->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (r->fd < 0) {
        int e = errno;
        mt_resume_free(r);
        return mt_seterr(err, MT_EIO, "%s: %s", path, strerror(e));
    }
    struct stat a, b;
    if (fstat(r->fd, &a) == 0 && fstat(STDIN_FILENO, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
        mt_resume_free(r);
        return mt_seterr(err, MT_EUSAGE, "--resume %s: that is the input; give the file the answers go to", path);
    }
    if (!S_ISREG(a.st_mode)) {
        mt_resume_free(r);
        return mt_seterr(err, MT_EUSAGE, "--resume %s: not a regular file", path);
    }
    if (flock(r->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        mt_resume_free(r);
        if (e == EWOULDBLOCK)
            return mt_seterr(err, MT_EIO, "--resume %s: another run is using this file (locked)", path);
        return mt_seterr(err, MT_EIO, "--resume %s: cannot lock: %s", path, strerror(e));
    }
    off_t good = 0;
    int rc = scan_lines(r, open_line, &good, err);
    if (!rc && good != a.st_size && ftruncate(r->fd, good) != 0)
        rc = mt_seterr(err, MT_EIO, "%s: cannot cut a partial last line: %s", path, strerror(errno));
    if (!rc && !(*out = fopen(path, "a"))) rc = mt_seterr(err, MT_EIO, "%s: %s", path, strerror(errno));
    if (rc) {
        mt_resume_free(r);
        return rc;
    }
    if (n_done) *n_done = r->n_answered;
    *out_r = r;
    return MT_OK;
}

int mt_resume_skip(void *user, json_t *id, json_t *rec, size_t lineno, mt_err *why) {
    mt_resume *r = user;
    char *k = record_key(id, rec);
    if (!k) return MT_SKIP_RUN;
    int fresh;
    size_t s = slot_of(r, k, &fresh);
    if (s == SIZE_MAX) return MT_SKIP_RUN;
    rkey *e = &r->tab[s];
    if (e->input_line) {
        if (!rec) return MT_SKIP_RUN;   /* a line that failed to parse: answered by its error record */
        mt_seterr(why, MT_EINVAL, "duplicate id %.200s (first at line %zu): not run", e->key, e->input_line);
        return MT_SKIP_DUPLICATE;
    }
    if (r->n_order == r->cap_order) {
        size_t nc = r->cap_order ? r->cap_order * 2 : 1024;
        size_t *no = realloc(r->order, nc * sizeof *no);
        if (!no) return e->answered ? MT_SKIP_ANSWERED : MT_SKIP_RUN;
        r->order = no;
        r->cap_order = nc;
    }
    e->input_line = lineno;
    r->order[r->n_order++] = s;
    return e->answered ? MT_SKIP_ANSWERED : MT_SKIP_RUN;
}

/* mt_resume_close's pass over FILE: the winning line of each key; keys new to
 * the table (lines appended by this run are all in it already) are added. */
static int close_line(mt_resume *r, const char *line, size_t len, off_t off, size_t lineno, mt_err *err) {
    (void)lineno;
    size_t s;
    int ok, kind = classify(r, line, len, &s, &ok, err);
    if (kind < 0) return MT_ENOMEM;
    if (kind == LINE_BLANK) return MT_OK;   /* dropped */
    if (kind == LINE_OTHER) {               /* not ours (open refused such files): kept, never lost */
        if (r->n_odd == r->cap_odd) {
            size_t nc = r->cap_odd ? r->cap_odd * 2 : 16;
            rkey *no = realloc(r->odd, nc * sizeof *no);
            if (!no) return mt_seterr(err, MT_ENOMEM, "out of memory");
            r->odd = no;
            r->cap_odd = nc;
        }
        r->odd[r->n_odd++] = (rkey){.off = off, .len = len + 1};
        return MT_OK;
    }
    rkey *e = &r->tab[s];
    if (!e->file_order) e->file_order = ++r->file_seq;
    if (ok || e->win < 2) {   /* an answer beats any error; a later line beats an earlier one of its kind */
        e->off = off;
        e->len = len + 1;
        e->win = ok ? 2 : 1;
    }
    return MT_OK;
}

static int cmp_file_order(const void *a, const void *b) {
    const rkey *x = *(rkey *const *)a, *y = *(rkey *const *)b;
    return (x->file_order > y->file_order) - (x->file_order < y->file_order);
}

static int copy_line(int from, int to, const rkey *e, char **buf, size_t *cap) {
    if (e->len > *cap) {
        char *nb = realloc(*buf, e->len);
        if (!nb) return -1;
        *buf = nb;
        *cap = e->len;
    }
    if (pread(from, *buf, e->len, e->off) != (ssize_t)e->len) return -1;
    return mt_write_fd_all(to, *buf, e->len);
}

static int compact(mt_resume *r, mt_err *err) {
    off_t good;
    r->file_seq = 0;
    r->n_odd = 0;
    MT_TRY(scan_lines(r, close_line, &good, err));
    rkey **rest = malloc((r->n ? r->n : 1) * sizeof *rest);
    if (!rest) return mt_seterr(err, MT_ENOMEM, "out of memory");
    char *tmp = NULL;
    int fd = -1;
    int rc = mt_tmp_open(r->path, &tmp, &fd, err);   /* registered for removal on a fatal signal */
    char *buf = NULL;
    size_t cap = 0, n_rest = 0;
    for (size_t k = 0; !rc && k < r->n_order; k++) {
        rkey *e = &r->tab[r->order[k]];
        if (e->win && copy_line(r->fd, fd, e, &buf, &cap)) rc = mt_seterr(err, MT_EIO, "%s: %s", tmp, strerror(errno));
        e->win = 0;   /* written */
    }
    for (size_t i = 0; !rc && i < r->cap; i++)
        if (r->tab[i].key && r->tab[i].win) rest[n_rest++] = &r->tab[i];
    if (!rc && n_rest) qsort(rest, n_rest, sizeof *rest, cmp_file_order);
    for (size_t i = 0; !rc && i < n_rest; i++)
        if (copy_line(r->fd, fd, rest[i], &buf, &cap)) rc = mt_seterr(err, MT_EIO, "%s: %s", tmp, strerror(errno));
    for (size_t i = 0; !rc && i < r->n_odd; i++)
        if (copy_line(r->fd, fd, &r->odd[i], &buf, &cap)) rc = mt_seterr(err, MT_EIO, "%s: %s", tmp, strerror(errno));
    struct stat st;
    if (!rc && fstat(r->fd, &st) == 0 && fchmod(fd, st.st_mode & 07777) != 0)
        rc = mt_seterr(err, MT_EIO, "%s: %s", tmp, strerror(errno));
    if (!rc && fsync(fd) != 0) rc = mt_seterr(err, MT_EIO, "%s: %s", tmp, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && !rc) rc = mt_seterr(err, MT_EIO, "%s: %s", tmp, strerror(errno));
    if (!rc) rc = mt_tmp_commit(tmp, r->path, err);
    else mt_tmp_discard(tmp);
    free(buf);
    free(rest);
    free(tmp);
    return rc;
}

int mt_resume_close(mt_resume *r, FILE *out, mt_err *err) {
    int rc = MT_OK;
    if (out && fclose(out) != 0) rc = mt_seterr(err, MT_EIO, "%s: write failed: %s", r ? r->path : "output", strerror(errno));
    if (!rc && r) rc = compact(r, err);
    mt_resume_free(r);
    return rc;
}

void mt_resume_free(mt_resume *r) {
    if (!r) return;
    if (r->fd >= 0) close(r->fd);
    for (size_t i = 0; i < r->cap; i++) free(r->tab[i].key);
    free(r->tab);
    free(r->order);
    free(r->odd);
    free(r->path);
    free(r);
}

int mt_resume_begin(mt_resume **r, const char *path, mt_jsonl_opts *o, FILE **out, mt_err *err) {
    *r = NULL;
    *out = stdout;
    if (!path) return MT_OK;
    MT_TRY(mt_resume_open(r, path, out, NULL, err));
    o->skip = mt_resume_skip;
    o->skip_user = *r;
    return MT_OK;
}

/* ", shard K/N (M records of other shards passed over)" when sharded */
typedef struct { char s[96]; } note_buf;
static note_buf shard_note(const mt_jsonl_opts *o, const mt_jsonl_stats *st) {
    note_buf b = {""};
    if (o->shard_n > 1)
        snprintf(b.s, sizeof b.s, ", shard %zu/%zu (%zu records of other shards passed over)", o->shard_k, o->shard_n,
                 st->other_shards);
    return b;
}

int mt_resume_end(mt_resume *r, FILE *out, int rc, const mt_jsonl_opts *o, const mt_jsonl_stats *st, FILE *errf,
                  mt_err *err) {
    if (!r) return rc;
    if (!rc && !o->quiet && errf)
        fprintf(errf, "%s: %s: %zu answered before, %zu skipped, %zu run, %zu duplicate ids%s\n",
                o->prog ? o->prog : "mlx-tools", r->path, r->n_answered, st->skipped, st->records, st->duplicates,
                shard_note(o, st).s);
    mt_err ce = {0};
    int crc = mt_resume_close(r, out, &ce);
    if (crc && !rc) {
        if (err) *err = ce;
        rc = crc;
    }
    return rc;
}
