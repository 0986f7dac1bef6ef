/* hubserver.c - a tiny fake Hugging Face hub for tests (never the internet).
 *
 *   hubserver ROOT PORTFILE
 *
 * Listens on 127.0.0.1 on a kernel-chosen port, written to PORTFILE, and serves
 *   HEAD/GET /<org>/<name>/resolve/<rev>/<file>   ROOT/<org>/<name>/<file>
 *   GET /api/models/<org>/<name>/revision/<rev>    {"id","sha","siblings":[{"rfilename"}]}
 * <rev> is "main" or the repo's commit (ROOT/<org>/<name>/.sha, else a hash of
 * "org/name").  Files get ETag, X-Repo-Commit, Content-Length and Range (206 /
 * 416) support; *.safetensors answer like LFS files: 302 to another host
 * (http://localhost:PORT/_cdn/...) with
 * X-Linked-Etag and X-Linked-Size.  Missing things are 404 with X-Error-Code.
 * One connection at a time, HTTP/1.1, Connection: close.
 *
 * Test knobs (environment):
 *   HUBSERVER_CUT=N        close the first file body after N bytes ...
 *   HUBSERVER_CUT_TIMES=K  ... for the first K file bodies (default 1)
 *   HUBSERVER_STALL=N      send N bytes of a file body, then go silent until the client hangs up ...
 *   HUBSERVER_STALL_TIMES=K ... for the first K file bodies (default 1)
 *   HUBSERVER_FAIL=S       answer 500 to every request whose path contains S
 *   HUBSERVER_NORANGE=1    ignore Range headers (answer 200 with the whole file)
 *   HUBSERVER_STATS=FILE   after each request, rewrite FILE with counters
 *                          (requests, head, get, api, range, cut, stall, auth, cdn_auth,
 *                          last_range, last_auth: the token after "Bearer ")
 *   HUBSERVER_IDLE=S       exit after S seconds without a connection (default 30)
 * It also exits when its parent dies, and on SIGTERM. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "hub_etag.h"

typedef struct stats {
    long requests, head, get, api, range, cut, stall;
    long auth, cdn_auth;          /* requests with an Authorization header (to /_cdn: must stay 0) */
    char last_range[64];
    char last_auth[128];
} stats;

static const char *root;
static const char *stats_path;
static long cut_n = -1, cut_times = 1, stall_n = -1, stall_times = 1, no_range;
static stats st;
static int port; /* ours; "localhost:port" plays the CDN, a host other than 127.0.0.1 */

static void write_stats(void) {
    if (!stats_path) return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", stats_path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "requests %ld\nhead %ld\nget %ld\napi %ld\nrange %ld\ncut %ld\nstall %ld\nauth %ld\n"
            "cdn_auth %ld\nlast_range %s\nlast_auth %s\n",
            st.requests, st.head, st.get, st.api, st.range, st.cut, st.stall, st.auth, st.cdn_auth,
            st.last_range[0] ? st.last_range : "-", st.last_auth[0] ? st.last_auth : "-");
    fclose(f);
    rename(tmp, stats_path);
}

static int send_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) { if (errno == EINTR) continue; return -1; }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void respond(int fd, int code, const char *reason, const char *extra, const char *body, size_t blen,
                    int head) {
    char h[2048];
    int n = snprintf(h, sizeof h,
                     "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n", code, reason, blen,
                     extra ? extra : "");
    send_all(fd, h, (size_t)n);
    if (!head && blen) send_all(fd, body, blen);
}

static void not_found(int fd, const char *code, const char *commit, int head) {
    char extra[256];
    snprintf(extra, sizeof extra, "X-Error-Code: %s\r\n%s%s%s", code, commit ? "X-Repo-Commit: " : "",
             commit ? commit : "", commit ? "\r\n" : "");
    const char *msg = "not found\n";
    respond(fd, 404, "Not Found", extra, msg, strlen(msg), head);
}

static int url_decode(char *s) {
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '%') {
            if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2])) return -1;
            char hx[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(hx, NULL, 16);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = 0;
    return 0;
}

static char *read_whole(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) { fclose(f); return NULL; }
    char *b = malloc((size_t)sb.st_size + 1);
    if (b && fread(b, 1, (size_t)sb.st_size, f) != (size_t)sb.st_size) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[sb.st_size] = 0; *len = (size_t)sb.st_size; }
    return b;
}

static void repo_sha(const char *org, const char *name, char out[41]) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/%s/.sha", root, org, name);
    size_t n;
    char *b = read_whole(path, &n);
    if (b) {
        size_t k = 0;
        for (size_t i = 0; i < n && k < 40; i++)
            if (isxdigit((unsigned char)b[i])) out[k++] = b[i];
        out[k] = 0;
        free(b);
        if (k == 40) return;
    }
    char id[1024];
    int il = snprintf(id, sizeof id, "%s/%s", org, name);
    hub_hexhash(id, (size_t)il, 40, out);
}

static int is_lfs(const char *file) {
    size_t n = strlen(file);
    return n > 12 && strcmp(file + n - 12, ".safetensors") == 0;
}

/* --- listing --- */

typedef struct { char **v; size_t n, cap; } strlist;

static void list_files(const char *base, const char *rel, strlist *l) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s%s", base, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char r2[4096], full[8192];
        snprintf(r2, sizeof r2, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        snprintf(full, sizeof full, "%s/%s", base, r2);
        struct stat sb;
        if (stat(full, &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) list_files(base, r2, l);
        else if (S_ISREG(sb.st_mode)) {
            if (l->n == l->cap) {
                l->cap = l->cap ? l->cap * 2 : 16;
                l->v = realloc(l->v, l->cap * sizeof *l->v);
                if (!l->v) exit(1);
            }
            l->v[l->n++] = strdup(r2);
        }
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void serve_api(int fd, const char *org, const char *name, const char *rev) {
    char dir[4096], sha[41];
    snprintf(dir, sizeof dir, "%s/%s/%s", root, org, name);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) { not_found(fd, "RepositoryNotFound", NULL, 0); return; }
    repo_sha(org, name, sha);
    if (strcmp(rev, "main") != 0 && strcmp(rev, sha) != 0) { not_found(fd, "RevisionNotFound", NULL, 0); return; }
    strlist l = {0};
    list_files(dir, "", &l);
    qsort(l.v, l.n, sizeof *l.v, cmp_str);
    size_t cap = 1024, len = 0;
    for (size_t i = 0; i < l.n; i++) cap += strlen(l.v[i]) * 6 + 32;
    char *body = malloc(cap);
    if (!body) exit(1);
    len += (size_t)snprintf(body + len, cap - len, "{\"id\":\"%s/%s\",\"sha\":\"%s\",\"siblings\":[", org, name, sha);
    for (size_t i = 0; i < l.n; i++) {
        len += (size_t)snprintf(body + len, cap - len, "%s{\"rfilename\":\"", i ? "," : "");
        for (const char *p = l.v[i]; *p; p++) {
            unsigned char c = (unsigned char)*p;
            if (c == '"' || c == '\\') len += (size_t)snprintf(body + len, cap - len, "\\%c", c);
            else if (c < 0x20) len += (size_t)snprintf(body + len, cap - len, "\\u%04x", c);
            else body[len++] = (char)c;
        }
        len += (size_t)snprintf(body + len, cap - len, "\"}");
        free(l.v[i]);
    }
    len += (size_t)snprintf(body + len, cap - len, "]}");
    free(l.v);
    respond(fd, 200, "OK", "Content-Type: application/json\r\n", body, len, 0);
    free(body);
}

/* --- files --- */

static void wait_for_hangup(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    char buf[256];
    for (int i = 0; i < 100; i++) {  /* at most ~10 s */
        if (poll(&p, 1, 100) > 0) {
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0) return;
        }
    }
}

static void serve_file(int fd, const char *org, const char *name, const char *rev, const char *file, int head,
                       const char *range, int cdn) {
    char dir[4096], path[8192], sha[41];
    snprintf(dir, sizeof dir, "%s/%s/%s", root, org, name);
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) { not_found(fd, "RepositoryNotFound", NULL, head); return; }
    repo_sha(org, name, sha);
    if (!cdn && strcmp(rev, "main") != 0 && strcmp(rev, sha) != 0) {
        not_found(fd, "RevisionNotFound", NULL, head);
        return;
    }
    snprintf(path, sizeof path, "%s/%s", dir, file);
    size_t len;
    char *data = read_whole(path, &len);
    if (!data) { not_found(fd, "EntryNotFound", cdn ? NULL : sha, head); return; }
    char etag[65], lfs_etag[65];
    hub_hexhash(data, len, 40, etag);
    hub_hexhash(data, len, 64, lfs_etag);
    char extra[1024];
    if (!cdn && is_lfs(file)) {
        snprintf(extra, sizeof extra,
                 "Location: http://localhost:%d/_cdn/%s/%s/%s\r\nX-Repo-Commit: %s\r\nETag: \"%s\"\r\nX-Linked-Etag: \"%s\"\r\n"
                 "X-Linked-Size: %zu\r\n",
                 port, org, name, file, sha, etag, lfs_etag, len);
        respond(fd, 302, "Found", extra, NULL, 0, head);
        free(data);
        return;
    }
    int n = 0;
    if (!cdn) n = snprintf(extra, sizeof extra, "X-Repo-Commit: %s\r\n", sha);
    n += snprintf(extra + n, sizeof extra - (size_t)n, "ETag: \"%s\"\r\nAccept-Ranges: bytes\r\n",
                  cdn ? lfs_etag : etag);
    size_t a = 0, b = len ? len - 1 : 0;
    int partial = 0;
    if (range && !no_range) {
        unsigned long long ra, rb;
        int k = sscanf(range, "bytes=%llu-%llu", &ra, &rb);
        if (k >= 1) {
            if (ra >= len) {
                snprintf(extra + n, sizeof extra - (size_t)n, "Content-Range: bytes */%zu\r\n", len);
                respond(fd, 416, "Range Not Satisfiable", extra, NULL, 0, head);
                free(data);
                return;
            }
            a = ra;
            if (k == 2 && rb < len && rb >= ra) b = rb;
            partial = 1;
            n += snprintf(extra + n, sizeof extra - (size_t)n, "Content-Range: bytes %zu-%zu/%zu\r\n", a, b, len);
        }
    }
    size_t blen = len ? b - a + 1 : 0;
    char h[2048];
    int hl = snprintf(h, sizeof h, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                      partial ? 206 : 200, partial ? "Partial Content" : "OK", blen, extra);
    send_all(fd, h, (size_t)hl);
    if (!head) {
        if (stall_n >= 0 && stall_times > 0 && (size_t)stall_n < blen) {
            stall_times--;
            st.stall++;
            write_stats();
            send_all(fd, data + a, (size_t)stall_n);
            wait_for_hangup(fd);
        } else if (cut_n >= 0 && cut_times > 0 && (size_t)cut_n < blen) {
            cut_times--;
            st.cut++;
            write_stats();
            send_all(fd, data + a, (size_t)cut_n);
        } else {
            send_all(fd, data + a, blen);
        }
    }
    free(data);
}

/* Split "/a/b/c" into decoded components; rejects ".", "..", empty and dot-files. */
static int split_path(char *p, char **comp, int max) {
    int n = 0;
    if (*p != '/') return -1;
    p++;
    while (*p) {
        if (n == max) return -1;
        char *s = p;
        char *e = strchr(p, '/');
        if (e) { *e = 0; p = e + 1; } else p += strlen(p);
        if (url_decode(s) != 0 || !*s || s[0] == '.' || strchr(s, '/')) return -1;
        comp[n++] = s;
    }
    return n;
}

static void handle(int fd) {
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req[16384];
    size_t len = 0;
    while (len < sizeof req - 1) {
        ssize_t r = recv(fd, req + len, sizeof req - 1 - len, 0);
        if (r <= 0) return;
        len += (size_t)r;
        req[len] = 0;
        if (strstr(req, "\r\n\r\n")) break;
    }
    char method[16], target[8192];
    if (sscanf(req, "%15s %8191s", method, target) != 2) { respond(fd, 400, "Bad Request", NULL, NULL, 0, 0); return; }
    int head = strcmp(method, "HEAD") == 0;
    st.requests++;
    if (head) st.head++;
    else if (strcmp(method, "GET") == 0) st.get++;
    char *range = NULL;
    for (char *l = strstr(req, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
        if (strncasecmp(l + 2, "Range:", 6) == 0) {
            char *v = l + 8;
            while (*v == ' ') v++;
            char *e = strstr(v, "\r\n");
            size_t vl = e ? (size_t)(e - v) : strlen(v);
            if (vl >= sizeof st.last_range) vl = sizeof st.last_range - 1;
            memcpy(st.last_range, v, vl);
            st.last_range[vl] = 0;
            range = st.last_range;
            st.range++;
        } else if (strncasecmp(l + 2, "Authorization:", 14) == 0) {
            char *v = l + 16;
            while (*v == ' ') v++;
            if (strncmp(v, "Bearer ", 7) == 0) v += 7;
            char *e = strstr(v, "\r\n");
            size_t vl = e ? (size_t)(e - v) : strlen(v);
            if (vl >= sizeof st.last_auth) vl = sizeof st.last_auth - 1;
            memcpy(st.last_auth, v, vl);
            st.last_auth[vl] = 0;
            st.auth++;
            if (strncmp(target, "/_cdn/", 6) == 0) st.cdn_auth++;
        }
    }
    char *q = strchr(target, '?');
    if (q) *q = 0;
    const char *fail = getenv("HUBSERVER_FAIL");
    if (fail && *fail && strstr(target, fail)) {
        write_stats();
        respond(fd, 500, "Internal Server Error", NULL, "boom\n", 5, head);
        return;
    }
    char *comp[64];
    int n = split_path(target, comp, 64);
    if (n >= 6 && strcmp(comp[0], "api") == 0 && strcmp(comp[1], "models") == 0 && strcmp(comp[4], "revision") == 0) {
        st.api++;
        write_stats();
        char rev[1024] = "";
        for (int i = 5; i < n; i++) {  /* a revision may hold '/' (sent as %2F) */
            strncat(rev, comp[i], sizeof rev - strlen(rev) - 2);
            if (i + 1 < n) strcat(rev, "/");
        }
        serve_api(fd, comp[2], comp[3], rev);
        return;
    }
    write_stats();
    if (n >= 5 && strcmp(comp[2], "resolve") == 0) {
        char file[4096] = "";
        for (int i = 4; i < n; i++) {
            strncat(file, comp[i], sizeof file - strlen(file) - 2);
            if (i + 1 < n) strcat(file, "/");
        }
        serve_file(fd, comp[0], comp[1], comp[3], file, head, range, 0);
        return;
    }
    if (n >= 4 && strcmp(comp[0], "_cdn") == 0) {
        char file[4096] = "";
        for (int i = 3; i < n; i++) {
            strncat(file, comp[i], sizeof file - strlen(file) - 2);
            if (i + 1 < n) strcat(file, "/");
        }
        serve_file(fd, comp[1], comp[2], "", file, head, range, 1);
        return;
    }
    not_found(fd, "NotFound", NULL, head);
}

static long env_long(const char *name, long dflt) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : dflt;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: hubserver ROOT PORTFILE\n");
        return 2;
    }
    root = argv[1];
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) return 0;
    signal(SIGPIPE, SIG_IGN);
    stats_path = getenv("HUBSERVER_STATS");
    cut_n = env_long("HUBSERVER_CUT", -1);
    cut_times = env_long("HUBSERVER_CUT_TIMES", 1);
    stall_n = env_long("HUBSERVER_STALL", -1);
    stall_times = env_long("HUBSERVER_STALL_TIMES", 1);
    long idle = env_long("HUBSERVER_IDLE", 30);
    no_range = env_long("HUBSERVER_NORANGE", 0);
    write_stats();

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0) { perror("socket"); return 1; }
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t al = sizeof a;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 16) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &al) != 0) {
        perror("bind");
        return 1;
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[2]);
    FILE *pf = fopen(tmp, "w");
    if (!pf) { perror(tmp); return 1; }
    port = ntohs(a.sin_port);
    fprintf(pf, "%d\n", port);
    fclose(pf);
    if (rename(tmp, argv[2]) != 0) { perror(argv[2]); return 1; }

    for (;;) {
        struct pollfd p = {ls, POLLIN, 0};
        int r = poll(&p, 1, (int)(idle * 1000));
        if (r == 0) return 0;  /* idle: nobody needs us any more */
        if (r < 0) { if (errno == EINTR) continue; return 1; }
        int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) continue;
        handle(c);
        shutdown(c, SHUT_WR);
        close(c);
    }
}
