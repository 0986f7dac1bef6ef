/* test_hub.c - mt_hub_*: cache lookup, repo id checks, and downloads from the
 * fake hub tests/tools/hubserver (spawned on 127.0.0.1; never the internet)
 * serving tests/data/hub.  Everything happens under a temporary HF_HOME. */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "check.h"
#include "core/file.h"
#include "io/hub.h"
#include "../tools/hub_etag.h"

#define SHA "0123456789abcdef0123456789abcdef01234567" /* tests/data/hub/org/tiny/.sha */
#define REPO_DIR "tests/data/hub/org/tiny"

static char server_bin[PATH_MAX];
static char tmp_root[1024];
static int counter;

/* ------------------------------------------------------------ helpers */

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0) s = NULL;
    va_end(ap);
    return s;
}

static char *slurp(const char *path, size_t *n) {
    char *b = NULL;
    size_t len = 0;
    if (mt_read_file(path, &b, &len, NULL) != MT_OK) return NULL;
    if (n) *n = len;
    return b;
}

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    int ok = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return ok;
}

static void etag_of(const char *path, int digits, char *out) {
    size_t n = 0;
    char *b = slurp(path, &n);
    hub_hexhash(b ? b : "", b ? n : 0, digits, out);
    free(b);
}

/* A fresh HF_HOME under the temp root; returns the hub cache path (static). */
static const char *fresh_home(void) {
    static char cache[PATH_MAX + 64];
    char home[PATH_MAX + 32];
    snprintf(home, sizeof home, "%s/home%d", tmp_root, ++counter);
    mkdir(home, 0755);
    setenv("HF_HOME", home, 1);
    snprintf(cache, sizeof cache, "%s/hub", home);
    return cache;
}

static int count_incomplete(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 11 && strcmp(e->d_name + l - 11, ".incomplete") == 0) n++;
    }
    closedir(d);
    return n;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

/* ------------------------------------------------------------ the server */

typedef struct server {
    pid_t pid;
    int port;
    char stats[PATH_MAX];
    char endpoint[64];
} server;

/* Start hubserver; cut/stall are the HUBSERVER_CUT/HUBSERVER_STALL values or NULL. */
static int server_start(server *s, const char *cut, const char *stall) {
    char portfile[PATH_MAX];
    int id = ++counter;
    snprintf(portfile, sizeof portfile, "%s/port%d", tmp_root, id);
    snprintf(s->stats, sizeof s->stats, "%s/stats%d", tmp_root, id);
    s->pid = fork();
    if (s->pid < 0) return -1;
    if (s->pid == 0) {
        setenv("HUBSERVER_STATS", s->stats, 1);
        setenv("HUBSERVER_IDLE", "20", 1);
        if (cut) setenv("HUBSERVER_CUT", cut, 1); else unsetenv("HUBSERVER_CUT");
        if (stall) setenv("HUBSERVER_STALL", stall, 1); else unsetenv("HUBSERVER_STALL");
        execl(server_bin, server_bin, "tests/data/hub", portfile, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {  /* up to 5 s */
        FILE *f = fopen(portfile, "r");
        if (f) {
            int ok = fscanf(f, "%d", &s->port) == 1;
            fclose(f);
            if (ok) {
                snprintf(s->endpoint, sizeof s->endpoint, "http://127.0.0.1:%d", s->port);
                setenv("HF_ENDPOINT", s->endpoint, 1);
                return 0;
            }
        }
        if (waitpid(s->pid, NULL, WNOHANG) == s->pid) { s->pid = 0; return -1; }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(s->pid, SIGTERM);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

static void server_stop(server *s) {
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        s->pid = 0;
    }
}

/* A counter from the server's stats file ("key value" lines); -1 if absent. */
static long stat_get(const server *s, const char *key, char *strval, size_t cap) {
    FILE *f = fopen(s->stats, "r");
    if (!f) return -1;
    char k[64], v[128];
    long r = -1;
    while (fscanf(f, "%63s %127s", k, v) == 2) {
        if (strcmp(k, key) == 0) {
            if (strval) snprintf(strval, cap, "%s", v);
            r = strtol(v, NULL, 10);
            break;
        }
    }
    fclose(f);
    return r;
}

/* ------------------------------------------------------------ progress */

typedef struct prog {
    int calls, backwards;
    char last_file[256];
    uint64_t last_done, last_total;
    uint64_t st_done, st_total; /* last values seen for model.safetensors */
    int st_calls;
} prog;

static void on_progress(void *user, const char *file, uint64_t done, uint64_t total) {
    prog *p = user;
    if (p->calls && strcmp(p->last_file, file) == 0 && done < p->last_done) p->backwards++;
    p->calls++;
    snprintf(p->last_file, sizeof p->last_file, "%s", file);
    p->last_done = done;
    p->last_total = total;
    if (strcmp(file, "model.safetensors") == 0) {
        p->st_done = done;
        p->st_total = total;
        p->st_calls++;
    }
}

/* ------------------------------------------------------------ tests */

static void test_cache_dir(void) {
    char *d = NULL;
    mt_err e = {0};
    setenv("HF_HUB_CACHE", "/x/hubcache", 1);
    setenv("HF_HOME", "/x/hfhome", 1);
    setenv("XDG_CACHE_HOME", "/x/xdg", 1);
    CHECK_OK(mt_hub_cache_dir(&d, &e), &e);
    CHECK_STR(d, "/x/hubcache");
    free(d); d = NULL;
    unsetenv("HF_HUB_CACHE");
    CHECK_OK(mt_hub_cache_dir(&d, &e), &e);
    CHECK_STR(d, "/x/hfhome/hub");
    free(d); d = NULL;
    unsetenv("HF_HOME");
    CHECK_OK(mt_hub_cache_dir(&d, &e), &e);
    CHECK_STR(d, "/x/xdg/huggingface/hub");
    free(d); d = NULL;
    unsetenv("XDG_CACHE_HOME");
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("HOME", "/x/me", 1);
    CHECK_OK(mt_hub_cache_dir(&d, &e), &e);
    CHECK_STR(d, "/x/me/.cache/huggingface/hub");
    free(d); d = NULL;
    setenv("HF_HOME", "~/hf", 1);
    CHECK_OK(mt_hub_cache_dir(&d, &e), &e);
    CHECK_STR(d, "/x/me/hf/hub");
    free(d); d = NULL;
    if (home) { setenv("HOME", home, 1); free(home); } else unsetenv("HOME");
    unsetenv("HF_HOME");
}

static void test_existing_dir_and_ids(void) {
    mt_err e = {0};
    char *d = NULL;
    char *want = realpath("tests/data/hub", NULL);
    CHECK_OK(mt_hub_resolve("tests/data/hub", NULL, &d, &e), &e);
    CHECK_STR(d, want);
    free(d); d = NULL;
    /* a directory wins even when it also looks like a repo id */
    CHECK_OK(mt_hub_resolve("tests/data", NULL, &d, &e), &e);
    CHECK(d && strncmp(d, want, strlen(d)) == 0 && d[0] == '/');
    free(d); d = NULL;
    free(want);

    const char *good[] = {"org/tiny", "mlx-community/Qwen3-0.6B-4bit", "a_b/c.d", "A1/_x_", NULL};
    for (const char **g = good; *g; g++) CHECK_MSG(mt_hub_valid_repo_id(*g), "%s should be valid", *g);
    const char *bad[] = {"", "foo", "a/b/c", "../x", "a/..b", "-a/b", "a/b-", "a b/c", "a/b.git",
                         "a--b/c", "a/b/", "/a", "a/", ".a/b", "a/b\n", "a/b%2f", NULL};
    for (const char **b = bad; *b; b++) CHECK_MSG(!mt_hub_valid_repo_id(*b), "'%s' should be invalid", *b);
    char long_id[200];
    memset(long_id, 'a', sizeof long_id);
    long_id[0] = 'o'; long_id[1] = '/';
    long_id[99] = 0; /* name of 97 chars */
    CHECK(!mt_hub_valid_repo_id(long_id));
    long_id[98] = 0; /* 96 chars */
    CHECK(mt_hub_valid_repo_id(long_id));

    int rc = mt_hub_resolve("no/such/dir", NULL, &d, &e);
    CHECK_EQ_INT(rc, MT_ENOTFOUND);
    CHECK_STR(e.msg, "no/such/dir: no such directory, and not a valid hub repo id");
    rc = mt_hub_resolve("../evil", NULL, &d, &e);
    CHECK_STR(e.msg, "../evil: no such directory, and not a valid hub repo id");
    CHECK(d == NULL);
    mt_hub_opts o = {.revision = "../x"};
    rc = mt_hub_resolve("org/tiny", &o, &d, &e);
    CHECK_EQ_INT(rc, MT_EINVAL);
    rc = mt_hub_download_file("org/tiny", "main", "../config.json", NULL, &d, &e);
    CHECK_EQ_INT(rc, MT_EINVAL);
    rc = mt_hub_download_file("org/tiny", "main", "/etc/passwd", NULL, &d, &e);
    CHECK_EQ_INT(rc, MT_EINVAL);
    CHECK(d == NULL);
}

static void test_cache_hit_and_offline(void) {
    mt_err e = {0};
    char *d = NULL;
    const char *cache = fresh_home();
    /* a cache as huggingface_hub leaves it: refs/main, snapshot symlink -> blob */
    char *repo = fmt("%s/models--acme--cached", cache);
    char *snap = fmt("%s/snapshots/%s", repo, SHA);
    char *refs = fmt("%s/refs", repo), *blobs = fmt("%s/blobs", repo);
    char *ref = fmt("%s/main", refs), *blob = fmt("%s/abc123", blobs), *ptr = fmt("%s/config.json", snap);
    CHECK_OK(mt_mkdirs(snap, &e), &e);
    CHECK_OK(mt_mkdirs(refs, &e), &e);
    CHECK_OK(mt_mkdirs(blobs, &e), &e);
    CHECK_OK(mt_write_file_atomic(ref, SHA, 40, &e), &e);
    CHECK_OK(mt_write_file_atomic(blob, "{}", 2, &e), &e);
    CHECK(symlink("../../blobs/abc123", ptr) == 0);
    char *want = realpath(snap, NULL);

    /* no network needed: the endpoint is a closed port */
    setenv("HF_ENDPOINT", "http://127.0.0.1:1", 1);
    CHECK_OK(mt_hub_resolve("acme/cached", NULL, &d, &e), &e);
    CHECK_STR(d, want);
    free(d); d = NULL;
    mt_hub_opts o = {.revision = SHA, .offline = 1};
    CHECK_OK(mt_hub_resolve("acme/cached", &o, &d, &e), &e);
    CHECK_STR(d, want);
    free(d); d = NULL;
    char *local = NULL;
    CHECK_OK(mt_hub_download_file("acme/cached", NULL, "config.json", &o, &local, &e), &e);
    CHECK_STR(local, ptr);
    free(local); local = NULL;

    /* offline misses */
    o.revision = "v2";
    int rc = mt_hub_resolve("acme/cached", &o, &d, &e);
    CHECK_EQ_INT(rc, MT_ENOTFOUND);
    CHECK_STR(e.msg, "acme/cached: not in the cache and HF_HUB_OFFLINE is set");
    setenv("HF_HUB_OFFLINE", "1", 1);
    rc = mt_hub_resolve("acme/absent", NULL, &d, &e);
    CHECK_EQ_INT(rc, MT_ENOTFOUND);
    CHECK_STR(e.msg, "acme/absent: not in the cache and HF_HUB_OFFLINE is set");
    rc = mt_hub_download_file("acme/cached", "main", "tokenizer.json", NULL, &local, &e);
    CHECK_EQ_INT(rc, MT_ENOTFOUND);
    CHECK_STR(e.msg, "acme/cached: tokenizer.json: not in the cache and HF_HUB_OFFLINE is set");
    /* an incomplete snapshot (dangling symlink, no tokenizer.json) is a miss */
    unlink(blob);
    rc = mt_hub_resolve("acme/cached", NULL, &d, &e);
    CHECK_EQ_INT(rc, MT_ENOTFOUND);
    CHECK(d == NULL);
    setenv("HF_HUB_OFFLINE", "no", 1);
    rc = mt_hub_resolve("acme/cached", NULL, &d, &e); /* now online: the closed port fails */
    CHECK_EQ_INT(rc, MT_ENET);
    const char *pre = "acme/cached: cannot fetch http://127.0.0.1:1/api/models/acme/cached/revision/main: ";
    CHECK_MSG(strncmp(e.msg, pre, strlen(pre)) == 0 && !strchr(e.msg, '\n'), "%s", e.msg);
    unsetenv("HF_HUB_OFFLINE");
    free(d);
    free(want); free(repo); free(snap); free(refs); free(blobs); free(ref); free(blob); free(ptr);
}

static void check_pointer(const char *repo, const char *file, int digits, const char *updirs) {
    char *src = fmt("%s/%s", REPO_DIR, file);
    char etag[65];
    etag_of(src, digits, etag);
    char *ptr = fmt("%s/snapshots/%s/%s", repo, SHA, file);
    char *blob = fmt("%s/blobs/%s", repo, etag);
    char *want = fmt("%sblobs/%s", updirs, etag);
    char target[PATH_MAX];
    ssize_t n = readlink(ptr, target, sizeof target - 1);
    if (n >= 0) target[n] = 0;
    CHECK_MSG(n > 0 && strcmp(target, want) == 0, "%s -> %s, want %s", ptr, n > 0 ? target : "?", want);
    struct stat sb;
    CHECK(lstat(blob, &sb) == 0 && S_ISREG(sb.st_mode));
    CHECK_MSG(same_file(blob, src), "%s differs from %s", blob, src);
    free(src); free(ptr); free(blob); free(want);
}

static void test_download(void) {
    mt_err e = {0};
    server s = {0};
    CHECK(server_start(&s, NULL, NULL) == 0);
    if (!s.pid) return;
    const char *cache = fresh_home();
    char *repo = fmt("%s/models--org--tiny", cache);
    char *snap = fmt("%s/snapshots/%s", repo, SHA);
    prog p = {0};
    mt_hub_opts o = {.progress = on_progress, .progress_user = &p};
    char *d = NULL;
    CHECK_OK(mt_hub_resolve("org/tiny", &o, &d, &e), &e);
    char *want = realpath(snap, NULL);
    CHECK_STR(d, want);
    free(d); d = NULL;

    /* the layout, exactly */
    char *ref = fmt("%s/refs/main", repo);
    size_t rn = 0;
    char *refv = slurp(ref, &rn);
    CHECK_STR(refv, SHA);
    CHECK_EQ_INT(rn, 40);
    free(refv);
    check_pointer(repo, "config.json", 40, "../../");
    check_pointer(repo, "tokenizer.json", 40, "../../");
    check_pointer(repo, "model.safetensors", 64, "../../"); /* X-Linked-Etag, not ETag */
    check_pointer(repo, "sub/notes.txt", 40, "../../../");
    char *readme = fmt("%s/README.md", snap);
    struct stat sb;
    CHECK(lstat(readme, &sb) != 0); /* not in the default allow patterns */
    char *blobs = fmt("%s/blobs", repo);
    CHECK_EQ_INT(count_incomplete(blobs), 0);
    char st_etag[65];
    etag_of(REPO_DIR "/model.safetensors", 64, st_etag);
    char *lock = fmt("%s/.locks/models--org--tiny/%s.lock", cache, st_etag);
    CHECK(mt_file_exists(lock));
    char *tag = fmt("%s/CACHEDIR.TAG", cache);
    char *tagv = slurp(tag, NULL);
    CHECK(tagv && strncmp(tagv, "Signature: 8a477f597d28d172789f06886806bc55\n", 44) == 0);
    free(tag); free(tagv);

    /* progress: per-file increasing, ends with done == total */
    CHECK(p.calls >= 4);
    CHECK_EQ_INT(p.backwards, 0);
    CHECK(p.st_calls >= 2);
    CHECK_EQ_INT(p.st_done, 24080);
    CHECK_EQ_INT(p.st_total, 24080);
    CHECK(p.last_done == p.last_total && p.last_total > 0);

    /* second resolve: no request at all */
    long before = stat_get(&s, "requests", NULL, 0);
    CHECK(before >= 5); /* listing + HEAD/GET per file */
    CHECK_OK(mt_hub_resolve("org/tiny", NULL, &d, &e), &e);
    CHECK_STR(d, want);
    free(d); d = NULL;
    char *local = NULL;
    CHECK_OK(mt_hub_download_file("org/tiny", SHA, "model.safetensors", NULL, &local, &e), &e);
    free(local); local = NULL;
    CHECK_EQ_INT(stat_get(&s, "requests", NULL, 0), before);
    mt_hub_opts off = {.offline = 1};
    CHECK_OK(mt_hub_resolve("org/tiny", &off, &d, &e), &e);
    CHECK_STR(d, want);
    free(d); d = NULL;

    /* a file already cached by name on a branch: HEAD only, no GET */
    long gets = stat_get(&s, "get", NULL, 0);
    CHECK_OK(mt_hub_download_file("org/tiny", "main", "config.json", NULL, &local, &e), &e);
    CHECK_EQ_INT(stat_get(&s, "get", NULL, 0), gets);
    CHECK_EQ_INT(stat_get(&s, "requests", NULL, 0), before + 1);
    free(local); local = NULL;

    /* 404s are clean one-line errors */
    int rc = mt_hub_download_file("org/tiny", "main", "nope.json", NULL, &local, &e);
    CHECK_EQ_INT(rc, MT_ENOTFOUND);
    char *msg = fmt("org/tiny: nope.json: HTTP 404 from %s/org/tiny/resolve/main/nope.json", s.endpoint);
    CHECK_STR(e.msg, msg);
    free(msg);
    CHECK(local == NULL);
    rc = mt_hub_resolve("org/absent", NULL, &d, &e);
    CHECK_EQ_INT(rc, MT_ENOTFOUND);
    msg = fmt("org/absent: HTTP 404 from %s/api/models/org/absent/revision/main", s.endpoint);
    CHECK_STR(e.msg, msg);
    free(msg);
    /* a file name needing escapes */
    rc = mt_hub_download_file("org/tiny", "main", "a b#?.json", NULL, &local, &e);
    msg = fmt("org/tiny: a b#?.json: HTTP 404 from %s/org/tiny/resolve/main/a%%20b%%23%%3F.json", s.endpoint);
    CHECK_STR(e.msg, msg);
    free(msg);

    /* allow_patterns: only what is asked for */
    cache = fresh_home();
    const char *pats[] = {"config.json", NULL};
    mt_hub_opts only = {.allow_patterns = pats};
    CHECK_OK(mt_hub_resolve("org/tiny", &only, &d, &e), &e);
    char *cfg = d ? fmt("%s/config.json", d) : NULL, *tok = d ? fmt("%s/tokenizer.json", d) : NULL;
    CHECK(cfg && mt_file_exists(cfg));
    CHECK(tok && lstat(tok, &sb) != 0);
    free(cfg); free(tok); free(d); d = NULL;
    /* a listing with nothing usable */
    const char *none[] = {"*.bin", NULL};
    cache = fresh_home();
    only.allow_patterns = none;
    rc = mt_hub_resolve("org/tiny", &only, &d, &e);
    CHECK_EQ_INT(rc, MT_ENOTFOUND);
    CHECK_STR(e.msg, "org/tiny: revision main has neither config.json nor tokenizer.json");

    server_stop(&s);

    /* hub unreachable: a cached file of the branch is still served, a missing one is an error */
    cache = fresh_home();
    CHECK(server_start(&s, NULL, NULL) == 0);
    CHECK_OK(mt_hub_download_file("org/tiny", "main", "config.json", NULL, &local, &e), &e);
    free(local); local = NULL;
    server_stop(&s);
    CHECK_OK(mt_hub_download_file("org/tiny", "main", "config.json", NULL, &local, &e), &e);
    char *cached = fmt("%s/models--org--tiny/snapshots/%s/config.json", cache, SHA);
    CHECK_STR(local, cached);
    free(local); local = NULL;
    free(cached);
    rc = mt_hub_download_file("org/tiny", "main", "tokenizer.json", NULL, &local, &e);
    CHECK_EQ_INT(rc, MT_ENET);
    CHECK(local == NULL);
    free(repo); free(snap); free(want); free(ref); free(readme); free(blobs); free(lock);
}

static void test_resume(void) {
    mt_err e = {0};
    server s = {0};
    /* the server cuts the first file body after 1000 bytes */
    CHECK(server_start(&s, "1000", NULL) == 0);
    if (!s.pid) return;
    const char *cache = fresh_home();
    char *local = NULL;
    prog p = {0};
    mt_hub_opts o = {.progress = on_progress, .progress_user = &p};
    CHECK_OK(mt_hub_download_file("org/tiny", NULL, "model.safetensors", &o, &local, &e), &e);
    CHECK_MSG(local && same_file(local, REPO_DIR "/model.safetensors"), "resumed blob differs");
    char rng[128] = "";
    CHECK_EQ_INT(stat_get(&s, "cut", NULL, 0), 1);
    /* one resumed GET, sent with Range to the hub and again to the "CDN" it redirects to */
    CHECK_EQ_INT(stat_get(&s, "range", NULL, 0), 2);
    stat_get(&s, "last_range", rng, sizeof rng);
    CHECK_STR(rng, "bytes=1000-");
    CHECK_EQ_INT(p.backwards, 0);
    CHECK_EQ_INT(p.st_done, 24080);
    CHECK_EQ_INT(p.st_total, 24080);
    char *blobs = fmt("%s/models--org--tiny/blobs", cache);
    CHECK_EQ_INT(count_incomplete(blobs), 0);
    free(local); local = NULL;
    free(blobs);

    /* a partial file left by an earlier run is continued with Range */
    cache = fresh_home();
    char etag[65];
    etag_of(REPO_DIR "/model.safetensors", 64, etag);
    blobs = fmt("%s/models--org--tiny/blobs", cache);
    char *inc = fmt("%s/%s.incomplete", blobs, etag);
    size_t n = 0;
    char *data = slurp(REPO_DIR "/model.safetensors", &n);
    CHECK_OK(mt_mkdirs(blobs, &e), &e);
    CHECK_OK(mt_write_file_atomic(inc, data, 5000, &e), &e);
    CHECK_OK(mt_hub_download_file("org/tiny", "main", "model.safetensors", NULL, &local, &e), &e);
    CHECK(local && same_file(local, REPO_DIR "/model.safetensors"));
    stat_get(&s, "last_range", rng, sizeof rng);
    CHECK_STR(rng, "bytes=5000-");
    CHECK(!mt_file_exists(inc));
    free(local); local = NULL;
    free(inc);

    /* a leftover bigger than the file is discarded, not trusted */
    etag_of(REPO_DIR "/config.json", 40, etag);
    inc = fmt("%s/%s.incomplete", blobs, etag);
    CHECK_OK(mt_write_file_atomic(inc, data, 4000, &e), &e);
    long ranges = stat_get(&s, "range", NULL, 0);
    CHECK_OK(mt_hub_download_file("org/tiny", "main", "config.json", NULL, &local, &e), &e);
    CHECK(local && same_file(local, REPO_DIR "/config.json"));
    CHECK_EQ_INT(stat_get(&s, "range", NULL, 0), ranges);
    CHECK_EQ_INT(count_incomplete(blobs), 0);
    free(local); local = NULL;
    free(inc); free(blobs); free(data);
    server_stop(&s);

    /* a server that ignores Range: the leftover is dropped, not glued to a full copy */
    setenv("HUBSERVER_NORANGE", "1", 1);
    CHECK(server_start(&s, NULL, NULL) == 0);
    unsetenv("HUBSERVER_NORANGE");
    if (!s.pid) return;
    cache = fresh_home();
    blobs = fmt("%s/models--org--tiny/blobs", cache);
    etag_of(REPO_DIR "/model.safetensors", 64, etag);
    inc = fmt("%s/%s.incomplete", blobs, etag);
    CHECK_OK(mt_mkdirs(blobs, &e), &e);
    CHECK_OK(mt_write_file_atomic(inc, "garbage!garbage!", 16, &e), &e);
    p = (prog){0};
    CHECK_OK(mt_hub_download_file("org/tiny", "main", "model.safetensors", &o, &local, &e), &e);
    CHECK(local && same_file(local, REPO_DIR "/model.safetensors"));
    CHECK_EQ_INT(stat_get(&s, "range", NULL, 0), 2); /* asked, ignored */
    CHECK_EQ_INT(p.st_done, 24080);
    CHECK_EQ_INT(count_incomplete(blobs), 0);
    free(local); local = NULL;
    free(blobs); free(inc);
    server_stop(&s);

    /* every body cut after 1000 bytes: 24080 bytes arrive over 25 resumed GETs */
    setenv("HUBSERVER_CUT_TIMES", "1000", 1);
    CHECK(server_start(&s, "1000", NULL) == 0);
    unsetenv("HUBSERVER_CUT_TIMES");
    if (!s.pid) return;
    fresh_home();
    CHECK_OK(mt_hub_download_file("org/tiny", "main", "model.safetensors", NULL, &local, &e), &e);
    CHECK(local && same_file(local, REPO_DIR "/model.safetensors"));
    CHECK_EQ_INT(stat_get(&s, "cut", NULL, 0), 24);
    stat_get(&s, "last_range", rng, sizeof rng);
    CHECK_STR(rng, "bytes=24000-");
    free(local);
    server_stop(&s);
}

static void test_interrupted_and_stall(void) {
    mt_err e = {0};
    server s = {0};
    /* an interrupted resolve leaves no config.json/tokenizer.json behind, so the
     * next resolve finishes the job instead of returning a snapshot without weights */
    setenv("HUBSERVER_FAIL", "model.safetensors", 1);
    CHECK(server_start(&s, NULL, NULL) == 0);
    unsetenv("HUBSERVER_FAIL");
    if (!s.pid) return;
    const char *icache = fresh_home();
    mt_hub_opts st_only = {.allow_patterns = (const char *const[]){"*.safetensors", "*.json", NULL}};
    char *d = NULL;
    CHECK_EQ_INT(mt_hub_resolve("org/tiny", &st_only, &d, &e), MT_ENET);
    char *msg500 = fmt("org/tiny: model.safetensors: HTTP 500 from %s/org/tiny/resolve/%s/model.safetensors",
                       s.endpoint, SHA);
    CHECK_STR(e.msg, msg500);
    free(msg500);
    char *isnap = fmt("%s/models--org--tiny/snapshots/%s", icache, SHA);
    char *icfg = fmt("%s/config.json", isnap);
    struct stat sb;
    CHECK(lstat(icfg, &sb) != 0);
    mt_hub_opts off = {.offline = 1};
    CHECK_EQ_INT(mt_hub_resolve("org/tiny", &off, &d, &e), MT_ENOTFOUND);
    server_stop(&s);
    CHECK(server_start(&s, NULL, NULL) == 0);
    CHECK_OK(mt_hub_resolve("org/tiny", &st_only, &d, &e), &e);
    char *ist = fmt("%s/model.safetensors", isnap);
    CHECK(same_file(ist, REPO_DIR "/model.safetensors"));
    CHECK(mt_file_exists(icfg));
    free(d); free(isnap); free(icfg); free(ist);
    server_stop(&s);

    /* the first body never starts; with a 1 s stall limit the client gives up
     * on it and tries again (curl averages speeds over seconds, so a stall
     * after some bytes would take longer to notice: the cut tests cover resuming) */
    setenv("HF_HUB_DOWNLOAD_TIMEOUT", "1", 1);
    CHECK(server_start(&s, NULL, "0") == 0);
    if (!s.pid) return;
    fresh_home();
    char *local = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_OK(mt_hub_download_file("org/tiny", "main", "model.safetensors", NULL, &local, &e), &e);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK_MSG(secs >= 0.9 && secs < 5, "%.2f s", secs);
    CHECK(local && same_file(local, REPO_DIR "/model.safetensors"));
    CHECK_EQ_INT(stat_get(&s, "stall", NULL, 0), 1);
    CHECK_EQ_INT(stat_get(&s, "range", NULL, 0), 0);
    free(local); local = NULL;
    server_stop(&s);

    /* a server that never sends: a one-line timeout error after a second try */
    setenv("HUBSERVER_STALL_TIMES", "100", 1);
    CHECK(server_start(&s, NULL, "0") == 0);
    unsetenv("HUBSERVER_STALL_TIMES");
    if (!s.pid) return;
    const char *cache = fresh_home();
    int rc = mt_hub_download_file("org/tiny", "main", "config.json", NULL, &local, &e);
    CHECK_EQ_INT(rc, MT_ENET);
    char *pre = fmt("org/tiny: config.json: timed out fetching %s/org/tiny/resolve/%s/config.json (", s.endpoint, SHA);
    CHECK_MSG(strncmp(e.msg, pre, strlen(pre)) == 0 && !strchr(e.msg, '\n'), "%s", e.msg);
    CHECK_EQ_INT(stat_get(&s, "stall", NULL, 0), 2);
    CHECK(local == NULL);
    char *blobs = fmt("%s/models--org--tiny/blobs", cache);
    CHECK_EQ_INT(count_incomplete(blobs), 1); /* kept for a later resume */
    free(pre); free(blobs);
    server_stop(&s);
    unsetenv("HF_HUB_DOWNLOAD_TIMEOUT");
}

static void test_auth_and_concurrency(void) {
    mt_err e = {0};
    server s = {0};
    CHECK(server_start(&s, NULL, NULL) == 0);
    if (!s.pid) return;
    char v[128] = "";
    /* HF_TOKEN goes to the hub as a Bearer token, never to the CDN host */
    fresh_home();
    setenv("HF_TOKEN", "hf_secret123", 1);
    char *d = NULL;
    CHECK_OK(mt_hub_resolve("org/tiny", NULL, &d, &e), &e);
    free(d); d = NULL;
    unsetenv("HF_TOKEN");
    stat_get(&s, "last_auth", v, sizeof v);
    CHECK_STR(v, "hf_secret123");
    CHECK(stat_get(&s, "auth", NULL, 0) >= 5);
    CHECK_EQ_INT(stat_get(&s, "cdn_auth", NULL, 0), 0);
    /* else the token file in HF_HOME */
    const char *cache = fresh_home();
    char *tokfile = fmt("%.*s/token", (int)(strlen(cache) - 4), cache);
    CHECK_OK(mt_write_file_atomic(tokfile, "hf_fromfile\n", 12, &e), &e);
    char *local = NULL;
    CHECK_OK(mt_hub_download_file("org/tiny", "main", "config.json", NULL, &local, &e), &e);
    stat_get(&s, "last_auth", v, sizeof v);
    CHECK_STR(v, "hf_fromfile");
    free(local); local = NULL;
    free(tokfile);

    /* four processes fill one cache at once: the per-blob locks keep it sound */
    cache = fresh_home();
    pid_t kids[3];
    for (int i = 0; i < 3; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            char *dd = NULL;
            mt_err ee = {0};
            int rc = mt_hub_resolve("org/tiny", NULL, &dd, &ee);
            if (rc) fprintf(stderr, "child: %s\n", ee.msg);
            _exit(rc ? 1 : 0);
        }
    }
    CHECK_OK(mt_hub_resolve("org/tiny", NULL, &d, &e), &e);
    for (int i = 0; i < 3; i++) {
        int status = -1;
        if (kids[i] > 0) waitpid(kids[i], &status, 0);
        CHECK_MSG(kids[i] > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed", i);
    }
    char *repo = fmt("%s/models--org--tiny", cache), *blobs = fmt("%s/blobs", repo);
    check_pointer(repo, "model.safetensors", 64, "../../");
    check_pointer(repo, "config.json", 40, "../../");
    CHECK_EQ_INT(count_incomplete(blobs), 0);
    free(repo); free(blobs); free(d);
    server_stop(&s);
}

static void test_progress_bar(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    mt_progress_bar_draw(f, "model.safetensors", 512, 1024);
    fflush(f);
    CHECK(buf && strstr(buf, " 50% [############            ] 512 B / 1.0 KiB") && buf[0] == '\r');
    CHECK(buf && !strchr(buf, '\n'));
    mt_progress_bar_draw(f, "model.safetensors", 1024, 1024);
    fflush(f);
    CHECK(buf && strstr(buf, "100% [########################]") && buf[len - 1] == '\n');
    mt_progress_bar_draw(f, "a-very-long-name-for-a-file-in-a-repo.safetensors", 3 << 20, 0);
    fclose(f);
    CHECK(buf && strstr(buf, "...") && strstr(buf, "3.0 MiB"));
    free(buf);

    /* the throttled adapter: 1000 quick updates draw a few times, the end always */
    buf = NULL;
    f = open_memstream(&buf, &len);
    mt_progress_bar bar = {.f = f};
    for (uint64_t i = 1; i <= 1000; i++) mt_progress_bar_cb(&bar, "x.bin", i, 1000);
    fclose(f);
    int draws = 0;
    for (size_t i = 0; buf && i < len; i++) draws += buf[i] == '\r';
    CHECK_MSG(draws >= 2 && draws < 50, "%d draws", draws);
    CHECK(buf && len > 0 && buf[len - 1] == '\n' && strstr(buf, "100%"));
    free(buf);
}

int main(int argc, char **argv) {
    (void)argc;
    /* the fake hub sits next to this binary: $BUILD/tests/test_hub -> $BUILD/tools/hubserver */
    char *self = strdup(argv[0]);
    snprintf(server_bin, sizeof server_bin, "%s/../tools/hubserver", dirname(self));
    free(self);
    if (access(server_bin, X_OK) != 0) {
        const char *b = getenv("MT_BUILD");
        snprintf(server_bin, sizeof server_bin, "%s/tools/hubserver", b && *b ? b : "build");
    }
    snprintf(tmp_root, sizeof tmp_root, "%s/mt_hub_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp_root)) { perror("mkdtemp"); return 1; }
    const char *clear[] = {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                           "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HUB_ETAG_TIMEOUT",
                           "HF_HUB_DOWNLOAD_TIMEOUT", "http_proxy", "https_proxy", "HTTP_PROXY",
                           "HTTPS_PROXY", "all_proxy", "ALL_PROXY", NULL};
    for (const char **c = clear; *c; c++) unsetenv(*c);
    setenv("no_proxy", "127.0.0.1,localhost", 1);

    test_cache_dir();
    test_existing_dir_and_ids();
    test_cache_hit_and_offline();
    CHECK_MSG(access(server_bin, X_OK) == 0, "no test server at %s", server_bin);
    test_download();
    test_resume();
    test_interrupted_and_stall();
    test_auth_and_concurrency();
    test_progress_bar();

    nftw(tmp_root, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return check_report("hub");
}
