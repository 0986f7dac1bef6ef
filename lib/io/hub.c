/* hub.c - `-m MODEL` resolution through the Hugging Face hub cache and
 * resumable downloads with libcurl.  The on-disk layout, environment variables
 * and URL shapes follow huggingface_hub (see hub.h). */
#include "io/hub.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/file.h"

#define HUB_DEFAULT_ENDPOINT "https://huggingface.co"
#define HUB_USER_AGENT "mlx-tools/" MT_VERSION
#define HUB_API_MAX ((size_t)64 << 20)   /* cap on a JSON listing */
#define HUB_MAX_ATTEMPTS 100             /* GET attempts for one file (each resumes) */

static const char *const default_patterns[] = {
    "*.json", "*.safetensors", "*.jinja", "tokenizer.model", "*.txt", "*.tiktoken", NULL,
};

/* curl_global_init is not thread-safe on every build: run it exactly once. */
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_init_failed;
static void curl_init_once(void) { curl_init_failed = curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK; }

/* ---------------------------------------------------------------- strings */

static char *xprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* huggingface_hub's truth values: 1, ON, YES, TRUE (any case). */
static int env_true(const char *name) {
    const char *v = getenv(name);
    if (!v) return 0;
    return strcmp(v, "1") == 0 || strcasecmp(v, "on") == 0 || strcasecmp(v, "yes") == 0 ||
           strcasecmp(v, "true") == 0;
}

static long env_seconds(const char *name, long dflt) {
    const char *v = env_nonempty(name);
    if (!v) return dflt;
    char *end;
    double d = strtod(v, &end);
    if (end == v || d <= 0 || d > 86400) return dflt;
    long s = (long)(d + 0.999);
    return s < 1 ? 1 : s;
}

/* "~" and "~/x" expand to $HOME like os.path.expanduser. */
static char *expand_user(const char *p) {
    if (p[0] == '~' && (p[1] == 0 || p[1] == '/')) {
        const char *home = env_nonempty("HOME");
        if (home) return xprintf("%s%s", home, p + 1);
    }
    return strdup(p);
}

static char *trim_dup(const char *s, size_t n) {
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    return strndup(s, n);
}

/* -------------------------------------------------------------- validation */

static int id_char(int c) { return isalnum(c) || c == '.' || c == '_' || c == '-'; }
static int id_edge(int c) { return isalnum(c) || c == '_'; }

static int valid_id_part(const char *s, size_t n) {
    if (n < 1 || n > 96 || !id_edge((unsigned char)s[0]) || !id_edge((unsigned char)s[n - 1])) return 0;
    for (size_t i = 0; i < n; i++)
        if (!id_char((unsigned char)s[i])) return 0;
    return 1;
}

int mt_hub_valid_repo_id(const char *s) {
    if (!s) return 0;
    const char *slash = strchr(s, '/');
    if (!slash || strchr(slash + 1, '/')) return 0;
    if (strstr(s, "..") || strstr(s, "--")) return 0;
    size_t n = strlen(s);
    if (n >= 4 && strcmp(s + n - 4, ".git") == 0) return 0;
    return valid_id_part(s, (size_t)(slash - s)) && valid_id_part(slash + 1, strlen(slash + 1));
}

/* A relative path whose components are non-empty and not "." or "..";
 * `strict` limits bytes to [A-Za-z0-9._-] (revisions), otherwise any byte
 * >= 0x20 but DEL and backslash (repo file names). */
static int valid_relpath(const char *s, size_t maxlen, int strict) {
    size_t n = strlen(s);
    if (n == 0 || n > maxlen) return 0;
    const char *comp = s;
    for (const char *p = s;; p++) {
        if (*p == '/' || *p == 0) {
            size_t cl = (size_t)(p - comp);
            if (cl == 0 || (cl == 1 && comp[0] == '.') || (cl == 2 && comp[0] == '.' && comp[1] == '.'))
                return 0;
            if (!*p) break;
            comp = p + 1;
            continue;
        }
        unsigned char c = (unsigned char)*p;
        if (strict ? !id_char(c) : (c < 0x20 || c == 0x7f || c == '\\')) return 0;
    }
    return 1;
}

/* Names used as single path components in the cache (etags, commit shas). */
static int valid_component(const char *s, size_t maxlen) {
    size_t n = strlen(s);
    if (n == 0 || n > maxlen || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++)
        if (!id_char((unsigned char)s[i])) return 0;
    return 1;
}

static int is_commit_hash(const char *s) {
    size_t n = strlen(s);
    if (n != 40) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f')) return 0;
    return 1;
}

/* ------------------------------------------------------------- cache paths */

int mt_hub_cache_dir(char **out, mt_err *err) {
    const char *v;
    char *s = NULL;
    if ((v = env_nonempty("HF_HUB_CACHE")) || (v = env_nonempty("HUGGINGFACE_HUB_CACHE"))) {
        s = expand_user(v);
    } else if ((v = env_nonempty("HF_HOME"))) {
        char *h = expand_user(v);
        s = h ? mt_path_join(h, "hub") : NULL;
        free(h);
    } else if ((v = env_nonempty("XDG_CACHE_HOME"))) {
        char *h = expand_user(v);
        s = h ? mt_path_join(h, "huggingface/hub") : NULL;
        free(h);
    } else if ((v = env_nonempty("HOME"))) {
        s = mt_path_join(v, ".cache/huggingface/hub");
    } else {
        return mt_seterr(err, MT_ENOTFOUND, "cannot locate the hub cache: set HF_HUB_CACHE or HOME");
    }
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    *out = s;
    return MT_OK;
}

/* $HF_HOME (or its default), for the token file. */
static char *hf_home_dir(void) {
    const char *v;
    if ((v = env_nonempty("HF_HOME"))) return expand_user(v);
    if ((v = env_nonempty("XDG_CACHE_HOME"))) {
        char *h = expand_user(v), *s = h ? mt_path_join(h, "huggingface") : NULL;
        free(h);
        return s;
    }
    if ((v = env_nonempty("HOME"))) return mt_path_join(v, ".cache/huggingface");
    return NULL;
}

/* The token, trimmed; NULL when none or when it holds bytes unsafe in a header. */
static char *find_token(void) {
    const char *v = env_nonempty("HF_TOKEN");
    if (!v) v = env_nonempty("HUGGING_FACE_HUB_TOKEN");
    char *tok = NULL;
    if (v) {
        tok = trim_dup(v, strlen(v));
    } else {
        char *path = NULL;
        if ((v = env_nonempty("HF_TOKEN_PATH"))) path = expand_user(v);
        else {
            char *home = hf_home_dir();
            path = home ? mt_path_join(home, "token") : NULL;
            free(home);
        }
        char *buf = NULL;
        size_t n = 0;
        if (path && mt_file_exists(path) && mt_read_file_max(path, 4096, &buf, &n, NULL) == MT_OK) {
            tok = trim_dup(buf, n);
            free(buf);
        }
        free(path);
    }
    if (tok) {
        for (const char *p = tok; *p; p++)
            if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) { free(tok); return NULL; }
        if (!*tok) { free(tok); return NULL; }
    }
    return tok;
}

/* ---------------------------------------------------------------- context */

typedef struct hub_ctx {
    char *cache;       /* hub cache folder */
    char *endpoint;    /* no trailing '/' */
    char *auth;        /* "Authorization: Bearer ..." or NULL */
    int offline;
    long etag_timeout; /* seconds for HEAD / listing */
    long dl_timeout;   /* seconds a download may stall */
    const mt_hub_opts *opts;
    CURL *curl;        /* created on first network use */
} hub_ctx;

static void ctx_free(hub_ctx *c) {
    free(c->cache);
    free(c->endpoint);
    free(c->auth);
    if (c->curl) curl_easy_cleanup(c->curl);
    memset(c, 0, sizeof *c);
}

static int ctx_init(hub_ctx *c, const mt_hub_opts *opts, mt_err *err) {
    memset(c, 0, sizeof *c);
    c->opts = opts;
    c->offline = (opts && opts->offline) || env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
    c->etag_timeout = env_seconds("HF_HUB_ETAG_TIMEOUT", 10);
    c->dl_timeout = env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", 10);
    MT_TRY(mt_hub_cache_dir(&c->cache, err));
    const char *ep = env_nonempty("HF_ENDPOINT");
    c->endpoint = strdup(ep ? ep : HUB_DEFAULT_ENDPOINT);
    if (!c->endpoint) { ctx_free(c); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    size_t n = strlen(c->endpoint);
    while (n && c->endpoint[n - 1] == '/') c->endpoint[--n] = 0;
    if (strncmp(c->endpoint, "http://", 7) != 0 && strncmp(c->endpoint, "https://", 8) != 0) {
        int rc = mt_seterr(err, MT_EINVAL, "HF_ENDPOINT: not an http(s) URL: %s", c->endpoint);
        ctx_free(c);
        return rc;
    }
    char *tok = find_token();
    if (tok) {
        c->auth = xprintf("Authorization: Bearer %s", tok);
        free(tok);
        if (!c->auth) { ctx_free(c); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    }
    return MT_OK;
}

static int ctx_curl(hub_ctx *c, mt_err *err) {
    if (c->curl) return MT_OK;
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_failed) return mt_seterr(err, MT_ENET, "libcurl initialisation failed");
    c->curl = curl_easy_init();
    if (!c->curl) return mt_seterr(err, MT_ENOMEM, "libcurl: cannot create a handle");
    return MT_OK;
}

static char *storage_dir(const hub_ctx *c, const char *repo) {
    const char *slash = strchr(repo, '/');
    return xprintf("%s/models--%.*s--%s", c->cache, (int)(slash - repo), repo, slash + 1);
}

/* URL-escape each '/'-separated component of s (keep_slash) or all of s. */
static char *url_escape(CURL *curl, const char *s, int keep_slash) {
    size_t cap = strlen(s) * 3 + 1, used = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    const char *p = s;
    for (;;) {
        size_t n = keep_slash ? strcspn(p, "/") : strlen(p);
        char *e = curl_easy_escape(curl, p, (int)n);
        if (!e) { free(out); return NULL; }
        size_t el = strlen(e);
        if (used + el + 2 > cap) { curl_free(e); free(out); return NULL; }
        memcpy(out + used, e, el);
        used += el;
        curl_free(e);
        p += n;
        if (!*p) break;
        out[used++] = '/';
        p++;
    }
    out[used] = 0;
    return out;
}

/* ------------------------------------------------------------------- HTTP */

typedef struct http_resp {
    long status;
    char *commit, *etag, *linked_etag, *linked_size, *length, *location, *content_range, *error_msg;
    /* body capture (listing) */
    char *body;
    size_t len, max;
    int too_big;
    /* file download */
    int fd;
    uint64_t off;        /* bytes in the file */
    uint64_t start_off;  /* bytes in the file when the request started */
    uint64_t total;      /* expected size, 0 = unknown */
    int first_write;     /* still to see the first body byte of the final response */
    int write_errno;
    int bad_range;
    const hub_ctx *ctx;
    const char *file;    /* for progress */
} http_resp;

static void resp_clear_headers(http_resp *r) {
    char **fields[] = {&r->commit, &r->etag, &r->linked_etag, &r->linked_size, &r->length,
                       &r->location, &r->content_range, &r->error_msg};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) { free(*fields[i]); *fields[i] = NULL; }
}

static void resp_free(http_resp *r) {
    resp_clear_headers(r);
    free(r->body);
    r->body = NULL;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *user) {
    http_resp *r = user;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* a new response (redirects, 100-continue): forget the previous one */
        resp_clear_headers(r);
        const char *sp = memchr(buf, ' ', n);
        r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        r->first_write = 1;
        return n;
    }
    const char *colon = memchr(buf, ':', n);
    if (!colon) return n;
    size_t kl = (size_t)(colon - buf);
    static const struct { const char *name; size_t off; } keys[] = {
        {"x-repo-commit", offsetof(http_resp, commit)},
        {"etag", offsetof(http_resp, etag)},
        {"x-linked-etag", offsetof(http_resp, linked_etag)},
        {"x-linked-size", offsetof(http_resp, linked_size)},
        {"content-length", offsetof(http_resp, length)},
        {"location", offsetof(http_resp, location)},
        {"content-range", offsetof(http_resp, content_range)},
        {"x-error-message", offsetof(http_resp, error_msg)},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (strlen(keys[i].name) == kl && strncasecmp(buf, keys[i].name, kl) == 0) {
            char **slot = (char **)((char *)r + keys[i].off);
            free(*slot);
            *slot = trim_dup(colon + 1, n - kl - 1);
            break;
        }
    }
    return n;
}

static size_t on_body_mem(char *buf, size_t size, size_t nitems, void *user) {
    http_resp *r = user;
    size_t n = size * nitems;
    if (r->status >= 300) return n; /* error pages are not kept */
    if (r->len + n > r->max) { r->too_big = 1; return 0; }
    char *nb = realloc(r->body, r->len + n + 1);
    if (!nb) return 0;
    memcpy(nb + r->len, buf, n);
    r->body = nb;
    r->len += n;
    r->body[r->len] = 0;
    return n;
}

static void progress(const http_resp *r) {
    const mt_hub_opts *o = r->ctx->opts;
    if (o && o->progress) o->progress(o->progress_user, r->file, r->off, r->total);
}

static size_t on_body_file(char *buf, size_t size, size_t nitems, void *user) {
    http_resp *r = user;
    size_t n = size * nitems;
    if (r->status >= 300 || r->status < 200) return n; /* error body: discard */
    if (r->first_write) {
        r->first_write = 0;
        if (r->status == 200 && r->off > 0) {
            /* the server ignored our Range: start the file over */
            if (ftruncate(r->fd, 0) != 0 || lseek(r->fd, 0, SEEK_SET) != 0) { r->write_errno = errno; return 0; }
            r->off = r->start_off = 0;
        } else if (r->status == 206) {
            unsigned long long a = 0;
            if (!r->content_range || sscanf(r->content_range, "bytes %llu-", &a) != 1 || a != r->off) {
                r->bad_range = 1;
                return 0;
            }
        }
    }
    if (r->total && r->off + n > r->total) { r->bad_range = 2; return 0; }
    const char *p = buf;
    size_t left = n;
    while (left) {
        ssize_t w = write(r->fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            r->write_errno = errno;
            return 0;
        }
        p += w;
        left -= (size_t)w;
    }
    r->off += n;
    progress(r);
    return n;
}

/* Common request setup; `hdrs` receives the header list (caller frees). */
static int setup(hub_ctx *c, const char *url, http_resp *r, struct curl_slist **hdrs, char *errbuf,
                 mt_err *err) {
    MT_TRY(ctx_curl(c, err));
    CURL *h = c->curl;
    curl_easy_reset(h);
    struct curl_slist *l = curl_slist_append(NULL, "Accept-Encoding: identity");
    if (l && c->auth) {
        struct curl_slist *l2 = curl_slist_append(l, c->auth);
        if (!l2) { curl_slist_free_all(l); l = NULL; } else l = l2;
    }
    if (!l) return mt_seterr(err, MT_ENOMEM, "out of memory");
    *hdrs = l;
    errbuf[0] = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
    curl_easy_setopt(h, CURLOPT_USERAGENT, HUB_USER_AGENT);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->etag_timeout);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    return MT_OK;
}

/* One line describing a failed transfer. */
static int transfer_error(mt_err *err, const char *prefix, const char *url, CURLcode cc, const char *errbuf) {
    const char *why = errbuf && errbuf[0] ? errbuf : curl_easy_strerror(cc);
    char line[300];
    snprintf(line, sizeof line, "%s", why);
    for (char *p = line; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    size_t n = strlen(line);
    while (n && line[n - 1] == ' ') line[--n] = 0;
    if (cc == CURLE_OPERATION_TIMEDOUT)
        return mt_seterr(err, MT_ENET, "%s: timed out fetching %s (%s)", prefix, url, line);
    return mt_seterr(err, MT_ENET, "%s: cannot fetch %s: %s", prefix, url, line);
}

static int http_status_error(mt_err *err, const char *prefix, const char *url, const http_resp *r,
                             int have_token) {
    int code = (r->status == 404 || r->status == 401 || r->status == 403) ? MT_ENOTFOUND : MT_ENET;
    const char *hint = "";
    if ((r->status == 401 || r->status == 403) && !have_token)
        hint = " (missing, private or gated repo: set HF_TOKEN)";
    if (r->error_msg && r->error_msg[0])
        return mt_seterr(err, code, "%s: HTTP %ld from %s: %.200s%s", prefix, r->status, url, r->error_msg, hint);
    return mt_seterr(err, code, "%s: HTTP %ld from %s%s", prefix, r->status, url, hint);
}

/* Resolve `location` against `base`: *next (malloc'd) and whether it stays
 * on the same host.  Returns 0 or -1. */
static int redirect_target(const char *base, const char *location, char **next, int *same) {
    CURLU *u = curl_url();
    char *h1 = NULL, *h2 = NULL, *n = NULL;
    int ok = u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &h1, 0) == CURLUE_OK &&
             curl_url_set(u, CURLUPART_URL, location, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &h2, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_URL, &n, 0) == CURLUE_OK;
    if (ok) {
        *same = strcasecmp(h1, h2) == 0;
        *next = strdup(n);
        ok = *next != NULL;
    }
    curl_url_cleanup(u);
    curl_free(h1);
    curl_free(h2);
    curl_free(n);
    return ok ? 0 : -1;
}

/* HEAD url, following only same-host redirects like huggingface_hub;
 * headers of the last response end up in r. */
static int http_head(hub_ctx *c, const char *url, const char *prefix, http_resp *r, mt_err *err) {
    char errbuf[CURL_ERROR_SIZE];
    char *cur = strdup(url);
    if (!cur) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = MT_OK;
    for (int hop = 0;; hop++) {
        struct curl_slist *hdrs = NULL;
        if ((rc = setup(c, cur, r, &hdrs, errbuf, err))) break;
        curl_easy_setopt(c->curl, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, c->etag_timeout);
        r->status = 0;
        CURLcode cc = curl_easy_perform(c->curl);
        curl_slist_free_all(hdrs);
        if (cc != CURLE_OK) { rc = transfer_error(err, prefix, cur, cc, errbuf); break; }
        if (r->status >= 300 && r->status < 400 && r->location && r->location[0]) {
            /* follow redirects that stay on the same host (like huggingface_hub);
             * for another host (a CDN) this very response carries the metadata */
            char *next = NULL;
            int same = 0;
            if (redirect_target(cur, r->location, &next, &same) != 0) {
                rc = mt_seterr(err, MT_ENET, "%s: bad redirect from %s", prefix, cur);
                break;
            }
            if (same) {
                if (hop >= 10) { free(next); rc = mt_seterr(err, MT_ENET, "%s: too many redirects from %s", prefix, url); break; }
                free(cur);
                cur = next;
                continue;
            }
            free(next);
        }
        if (r->status >= 400 || r->status < 200) rc = http_status_error(err, prefix, cur, r, c->auth != NULL);
        break;
    }
    free(cur);
    return rc;
}

/* GET url into memory (at most max bytes). */
static int http_get_mem(hub_ctx *c, const char *url, const char *prefix, size_t max, http_resp *r,
                        mt_err *err) {
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *hdrs = NULL;
    MT_TRY(setup(c, url, r, &hdrs, errbuf, err));
    r->max = max;
    curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body_mem);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME, c->dl_timeout);
    CURLcode cc = curl_easy_perform(c->curl);
    curl_slist_free_all(hdrs);
    if (r->too_big) return mt_seterr(err, MT_ELIMIT, "%s: %s: response larger than %zu bytes", prefix, url, max);
    if (cc != CURLE_OK) return transfer_error(err, prefix, url, cc, errbuf);
    if (r->status < 200 || r->status >= 300) return http_status_error(err, prefix, url, r, c->auth != NULL);
    if (!r->body) {
        r->body = strdup("");
        if (!r->body) return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    return MT_OK;
}

static int transient(CURLcode cc) {
    return cc == CURLE_PARTIAL_FILE || cc == CURLE_RECV_ERROR || cc == CURLE_SEND_ERROR ||
           cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_GOT_NOTHING || cc == CURLE_COULDNT_CONNECT ||
           cc == CURLE_HTTP2 || cc == CURLE_HTTP2_STREAM || cc == CURLE_SSL_CONNECT_ERROR;
}

/* Download url into `incomplete` (resuming what it holds), verify the size
 * and rename it to `blob`.  total 0 = size unknown. */
static int download_blob(hub_ctx *c, const char *url, const char *prefix, const char *file,
                         const char *incomplete, const char *blob, uint64_t total, mt_err *err) {
    int fd = open(incomplete, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return mt_seterr(err, MT_EIO, "%s: %s: %s", prefix, incomplete, strerror(errno));
    http_resp r;
    memset(&r, 0, sizeof r);
    r.fd = fd;
    r.ctx = c;
    r.file = file;
    r.total = total;
    int rc = MT_OK;
    struct stat st;
    if (fstat(fd, &st) != 0) { rc = mt_seterr(err, MT_EIO, "%s: %s: %s", prefix, incomplete, strerror(errno)); goto out; }
    r.off = (uint64_t)st.st_size;
    if (total && r.off > total) r.off = 0; /* not a prefix of this blob */
    if (ftruncate(fd, (off_t)r.off) != 0 || lseek(fd, (off_t)r.off, SEEK_SET) < 0) {
        rc = mt_seterr(err, MT_EIO, "%s: %s: %s", prefix, incomplete, strerror(errno));
        goto out;
    }
    progress(&r);
    int stalled = 0;
    for (int attempt = 0; !(total && r.off == total); attempt++) {
        char errbuf[CURL_ERROR_SIZE];
        struct curl_slist *hdrs = NULL;
        if ((rc = setup(c, url, &r, &hdrs, errbuf, err))) goto out;
        char range[48];
        if (r.off) {
            snprintf(range, sizeof range, "%llu-", (unsigned long long)r.off);
            curl_easy_setopt(c->curl, CURLOPT_RANGE, range);
        }
        curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body_file);
        curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &r);
        curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c->curl, CURLOPT_LOW_SPEED_TIME, c->dl_timeout);
        r.start_off = r.off;
        r.status = 0;
        r.first_write = 1;
        r.bad_range = 0;
        CURLcode cc = curl_easy_perform(c->curl);
        curl_slist_free_all(hdrs);
        if (r.write_errno) {
            rc = mt_seterr(err, MT_EIO, "%s: %s: %s", prefix, incomplete, strerror(r.write_errno));
            goto out;
        }
        if (r.bad_range) {
            rc = mt_seterr(err, MT_ENET, "%s: %s: %s", prefix, url,
                           r.bad_range == 1 ? "server answered a different byte range"
                                            : "server sent more bytes than announced");
            goto out;
        }
        int progressed = r.off > r.start_off;
        if (cc == CURLE_OK && (r.status == 200 || r.status == 206)) {
            if (!total) break;          /* size unknown: what we got is the file */
            if (r.off == total) break;
            if (!progressed && ++stalled >= 2) {
                rc = mt_seterr(err, MT_ENET, "%s: %s: got %llu of %llu bytes", prefix, url,
                               (unsigned long long)r.off, (unsigned long long)total);
                goto out;
            }
        } else if (r.status == 416 && r.off > 0) {
            /* our partial file does not fit the server's: start over */
            if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
                rc = mt_seterr(err, MT_EIO, "%s: %s: %s", prefix, incomplete, strerror(errno));
                goto out;
            }
            r.off = 0;
            if (++stalled >= 2) { rc = http_status_error(err, prefix, url, &r, c->auth != NULL); goto out; }
        } else if (cc == CURLE_OK && (r.status == 408 || r.status == 429 || r.status == 502 ||
                                      r.status == 503 || r.status == 504)) {
            /* busy or flaky: one more try after a pause */
            if (++stalled >= 2) { rc = http_status_error(err, prefix, url, &r, c->auth != NULL); goto out; }
            sleep(1);
        } else if (cc == CURLE_OK || !transient(cc)) {
            if (cc == CURLE_OK) rc = http_status_error(err, prefix, url, &r, c->auth != NULL);
            else rc = transfer_error(err, prefix, url, cc, errbuf);
            goto out;
        } else {
            /* cut or stalled transfer: resume if it moved, else one more try */
            if (progressed) stalled = 0;
            else if (++stalled >= 2) { rc = transfer_error(err, prefix, url, cc, errbuf); goto out; }
            else usleep(250 * 1000);
        }
        if (attempt + 1 >= HUB_MAX_ATTEMPTS) {
            rc = mt_seterr(err, MT_ENET, "%s: %s: giving up after %d attempts", prefix, url, HUB_MAX_ATTEMPTS);
            goto out;
        }
    }
    if (fstat(fd, &st) != 0) { rc = mt_seterr(err, MT_EIO, "%s: %s: %s", prefix, incomplete, strerror(errno)); goto out; }
    if (total && (uint64_t)st.st_size != total) {
        rc = mt_seterr(err, MT_ENET, "%s: size mismatch: got %llu bytes, expected %llu", prefix,
                       (unsigned long long)st.st_size, (unsigned long long)total);
        goto out;
    }
    if (!total) {
        r.total = r.off = (uint64_t)st.st_size;
        progress(&r);
    }
    if (fsync(fd) != 0) { rc = mt_seterr(err, MT_EIO, "%s: %s: %s", prefix, incomplete, strerror(errno)); goto out; }
    int cfd = fd;
    fd = -1;
    if (close(cfd) != 0) { rc = mt_seterr(err, MT_EIO, "%s: %s: %s", prefix, incomplete, strerror(errno)); goto out; }
    if (rename(incomplete, blob) != 0) rc = mt_seterr(err, MT_EIO, "%s: %s: %s", prefix, blob, strerror(errno));
out:
    if (fd >= 0) close(fd);
    resp_free(&r);
    return rc;
}

/* ------------------------------------------------------------ cache files */

static char *dirname_dup(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? strndup(p, (size_t)(s - p)) : strdup(".");
}

/* Read refs/<revision>; NULL when absent or not a plausible commit. */
static char *read_ref(const char *storage, const char *revision) {
    char *path = xprintf("%s/refs/%s", storage, revision);
    char *buf = NULL, *sha = NULL;
    size_t n;
    if (path && mt_file_exists(path) && mt_read_file_max(path, 1024, &buf, &n, NULL) == MT_OK) {
        sha = trim_dup(buf, n);
        if (sha && !valid_component(sha, 128)) { free(sha); sha = NULL; }
        free(buf);
    }
    free(path);
    return sha;
}

static int write_ref(const char *storage, const char *revision, const char *sha, mt_err *err) {
    char *cur = read_ref(storage, revision);
    int same = cur && strcmp(cur, sha) == 0;
    free(cur);
    if (same) return MT_OK;
    char *path = xprintf("%s/refs/%s", storage, revision);
    char *dir = path ? dirname_dup(path) : NULL;
    int rc = (!path || !dir) ? mt_seterr(err, MT_ENOMEM, "out of memory") : mt_mkdirs(dir, err);
    if (!rc) rc = mt_write_file_atomic(path, sha, strlen(sha), err);
    free(dir);
    free(path);
    return rc;
}

/* snapshots/<sha>/<file> -> ../../blobs/<etag> (one more ../ per '/' in file). */
static int make_pointer(const char *pointer, const char *file, const char *etag, mt_err *err) {
    size_t depth = 2;
    for (const char *p = file; *p; p++) depth += *p == '/';
    size_t cap = depth * 3 + strlen(etag) + 8;
    char *target = malloc(cap), *dir = dirname_dup(pointer), *tmp = xprintf("%s.mtlink%ld", pointer, (long)getpid());
    int rc = MT_OK;
    if (!target || !dir || !tmp) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
    target[0] = 0;
    for (size_t i = 0; i < depth; i++) strcat(target, "../");
    strcat(target, "blobs/");
    strcat(target, etag);
    if ((rc = mt_mkdirs(dir, err))) goto out;
    unlink(tmp);
    if (symlink(target, tmp) != 0) { rc = mt_seterr(err, MT_EIO, "symlink %s: %s", tmp, strerror(errno)); goto out; }
    if (rename(tmp, pointer) != 0) {
        rc = mt_seterr(err, MT_EIO, "%s: %s", pointer, strerror(errno));
        unlink(tmp);
    }
out:
    free(target);
    free(dir);
    free(tmp);
    return rc;
}

/* Best effort, like huggingface_hub: mark the cache for backup tools
 * (https://bford.info/cachedir/). */
static void tag_cache_dir(const char *cache) {
    char *tag = mt_path_join(cache, "CACHEDIR.TAG");
    if (tag && !mt_file_exists(tag) && mt_mkdirs(cache, NULL) == MT_OK) {
        static const char content[] = "Signature: 8a477f597d28d172789f06886806bc55\n"
                                      "# This file is a cache directory tag (a Hugging Face hub cache).\n"
                                      "# For information about cache directory tags, see:\n"
                                      "#\thttps://bford.info/cachedir/\n";
        mt_write_file_atomic(tag, content, sizeof content - 1, NULL);
    }
    free(tag);
}

static int file_size(const char *path, uint64_t *size) {
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    *size = (uint64_t)st.st_size;
    return 1;
}

/* ------------------------------------------------------------ one file */

static int hub_file(hub_ctx *c, const char *repo, const char *rev, const char *file, char **out, mt_err *err) {
    char *storage = storage_dir(c, repo), *prefix = xprintf("%s: %s", repo, file);
    char *pointer = NULL, *commit = NULL, *url = NULL, *erev = NULL, *efile = NULL, *etag = NULL;
    char *blob = NULL, *incomplete = NULL, *lockdir = NULL, *lockpath = NULL;
    int lockfd = -1, rc = MT_OK;
    http_resp r;
    memset(&r, 0, sizeof r);
    if (!storage || !prefix) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }

    /* 1. already in the cache? */
    commit = is_commit_hash(rev) ? strdup(rev) : c->offline ? read_ref(storage, rev) : NULL;
    if (commit) {
        pointer = xprintf("%s/snapshots/%s/%s", storage, commit, file);
        if (!pointer) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
        if (mt_file_exists(pointer)) { *out = pointer; pointer = NULL; goto out; }
        free(pointer);
        pointer = NULL;
        free(commit);
        commit = NULL;
    }
    if (c->offline) {
        rc = mt_seterr(err, MT_ENOTFOUND, "%s: not in the cache and HF_HUB_OFFLINE is set", prefix);
        goto out;
    }

    /* 2. metadata */
    if ((rc = ctx_curl(c, err))) goto out;
    erev = url_escape(c->curl, rev, 0);
    efile = url_escape(c->curl, file, 1);
    if (!erev || !efile) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
    url = xprintf("%s/%s/resolve/%s/%s", c->endpoint, repo, erev, efile);
    if (!url) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
    if ((rc = http_head(c, url, prefix, &r, err))) {
        /* hub unreachable (not: file missing): like huggingface_hub, fall back
         * to what the cache holds for this revision */
        if (rc == MT_ENET && (commit = read_ref(storage, rev)) &&
            (pointer = xprintf("%s/snapshots/%s/%s", storage, commit, file)) && mt_file_exists(pointer)) {
            rc = MT_OK;
            mt_clearerr(err);
            goto done;
        }
        goto out;
    }
    const char *et = r.linked_etag ? r.linked_etag : r.etag;
    if (!r.commit || !valid_component(r.commit, 128)) {
        rc = mt_seterr(err, MT_ENET, "%s: no valid X-Repo-Commit header from %s", prefix, url);
        goto out;
    }
    if (et && strncmp(et, "W/", 2) == 0) et += 2;
    size_t el = et ? strlen(et) : 0;
    if (el >= 2 && et[0] == '"' && et[el - 1] == '"') et++, el -= 2;
    etag = et ? strndup(et, el) : NULL;
    if (!etag || !valid_component(etag, 256)) {
        rc = mt_seterr(err, MT_ENET, "%s: no valid ETag header from %s", prefix, url);
        goto out;
    }
    uint64_t total = 0;
    const char *sz = r.linked_size ? r.linked_size : (r.status < 300 ? r.length : NULL);
    if (sz) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(sz, &end, 10);
        if (errno || end == sz || *end || sz[0] == '-') {
            rc = mt_seterr(err, MT_ENET, "%s: bad size header from %s", prefix, url);
            goto out;
        }
        total = v;
    }
    commit = strdup(r.commit);
    if (!commit) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
    tag_cache_dir(c->cache);
    if (strcmp(rev, commit) != 0 && (rc = write_ref(storage, rev, commit, err))) goto out;

    pointer = xprintf("%s/snapshots/%s/%s", storage, commit, file);
    blob = xprintf("%s/blobs/%s", storage, etag);
    incomplete = xprintf("%s/blobs/%s.incomplete", storage, etag);
    if (!pointer || !blob || !incomplete) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
    if (mt_file_exists(pointer)) goto done;

    /* 3. the blob, under a lock shared with huggingface_hub */
    uint64_t have;
    if (!file_size(blob, &have) || (total && have != total)) {
        const char *base = strrchr(storage, '/') + 1;
        lockdir = xprintf("%s/.locks/%s", c->cache, base);
        lockpath = lockdir ? xprintf("%s/%s.lock", lockdir, etag) : NULL;
        char *blobdir = xprintf("%s/blobs", storage);
        if (!lockpath || !blobdir) { free(blobdir); rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
        rc = mt_mkdirs(lockdir, err);
        if (!rc) rc = mt_mkdirs(blobdir, err);
        free(blobdir);
        if (rc) goto out;
        lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0) {
            rc = mt_seterr(err, MT_EIO, "%s: %s: %s", prefix, lockpath, strerror(errno));
            goto out;
        }
        if (!file_size(blob, &have) || (total && have != total)) {
            char *dl = xprintf("%s/%s/resolve/%s/%s", c->endpoint, repo, commit, efile);
            if (!dl) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
            rc = download_blob(c, dl, prefix, file, incomplete, blob, total, err);
            free(dl);
            if (rc) goto out;
        }
    }
    if ((rc = make_pointer(pointer, file, etag, err))) goto out;
done:
    *out = pointer;
    pointer = NULL;
out:
    if (lockfd >= 0) close(lockfd);
    resp_free(&r);
    free(storage); free(prefix); free(pointer); free(commit); free(url); free(erev); free(efile);
    free(etag); free(blob); free(incomplete); free(lockdir); free(lockpath);
    return rc;
}

static int check_file_args(const char *repo, const char *rev, const char *file, mt_err *err) {
    if (!mt_hub_valid_repo_id(repo))
        return mt_seterr(err, MT_EINVAL, "%s: not a valid hub repo id", repo ? repo : "(null)");
    if (!valid_relpath(rev, 255, 1)) return mt_seterr(err, MT_EINVAL, "%s: invalid revision '%s'", repo, rev);
    if (!file || !valid_relpath(file, 1024, 0))
        return mt_seterr(err, MT_EINVAL, "%s: invalid file name '%s'", repo, file ? file : "(null)");
    return MT_OK;
}

int mt_hub_download_file(const char *repo_id, const char *revision, const char *filename,
                         const mt_hub_opts *opts, char **local_path, mt_err *err) {
    const char *rev = revision ? revision : (opts && opts->revision) ? opts->revision : "main";
    MT_TRY(check_file_args(repo_id, rev, filename, err));
    hub_ctx c;
    MT_TRY(ctx_init(&c, opts, err));
    int rc = hub_file(&c, repo_id, rev, filename, local_path, err);
    ctx_free(&c);
    return rc;
}

/* ------------------------------------------------------------- resolve */

static int snapshot_complete(const char *snap) {
    char *a = mt_path_join(snap, "config.json"), *b = mt_path_join(snap, "tokenizer.json");
    int ok = (a && mt_file_exists(a)) || (b && mt_file_exists(b));
    free(a);
    free(b);
    return ok;
}

static int real_dup(const char *path, char **out, mt_err *err) {
    char *r = realpath(path, NULL);
    if (!r) return mt_seterr(err, errno == ENOMEM ? MT_ENOMEM : MT_EIO, "%s: %s", path, strerror(errno));
    *out = r;
    return MT_OK;
}

static int matches(const char *name, const char *const *pats) {
    for (; *pats; pats++) {
        const char *p = *pats;
        size_t n = strlen(p);
        if (n && p[n - 1] == '/') {           /* "dir/" means everything below it */
            if (strncmp(name, p, n) == 0) return 1;
        } else if (fnmatch(p, name, 0) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Fetch the listing of repo@rev and download the matching files. */
static int download_snapshot(hub_ctx *c, const char *repo, const char *rev, char **snap, mt_err *err) {
    char *erev = NULL, *url = NULL, *sha = NULL, *storage = NULL;
    json_t *root = NULL;
    http_resp r;
    memset(&r, 0, sizeof r);
    int rc = ctx_curl(c, err);
    if (rc) return rc;
    const char *const *pats = c->opts && c->opts->allow_patterns ? c->opts->allow_patterns : default_patterns;
    erev = url_escape(c->curl, rev, 0);
    url = erev ? xprintf("%s/api/models/%s/revision/%s", c->endpoint, repo, erev) : NULL;
    storage = storage_dir(c, repo);
    if (!url || !storage) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
    if ((rc = http_get_mem(c, url, repo, HUB_API_MAX, &r, err))) goto out;
    json_error_t je;
    root = json_loadb(r.body, r.len, 0, &je);
    json_t *jsha = root ? json_object_get(root, "sha") : NULL;
    json_t *sibs = root ? json_object_get(root, "siblings") : NULL;
    if (!json_is_string(jsha) || !json_is_array(sibs) || !valid_component(json_string_value(jsha), 128)) {
        rc = mt_seterr(err, MT_EFORMAT, "%s: unexpected repo listing from %s", repo, url);
        goto out;
    }
    sha = strdup(json_string_value(jsha));
    if (!sha) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
    /* config.json and tokenizer.json mark a snapshot as usable, so they come
     * last: an interrupted download is then never mistaken for a complete one */
    for (int pass = 0; pass < 2; pass++) {
        size_t i;
        json_t *s;
        json_array_foreach(sibs, i, s) {
            const char *name = json_string_value(json_object_get(s, "rfilename"));
            if (!name || !matches(name, pats)) continue;
            int marker = strcmp(name, "config.json") == 0 || strcmp(name, "tokenizer.json") == 0;
            if (marker != pass) continue;
            if (!valid_relpath(name, 1024, 0)) {
                rc = mt_seterr(err, MT_EFORMAT, "%s: unsafe file name in the repo listing: %.100s", repo, name);
                goto out;
            }
            char *local = NULL;
            if ((rc = hub_file(c, repo, sha, name, &local, err))) goto out;
            free(local);
        }
    }
    if (strcmp(rev, sha) != 0 && (rc = write_ref(storage, rev, sha, err))) goto out;
    *snap = xprintf("%s/snapshots/%s", storage, sha);
    if (!*snap) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
out:
    json_decref(root);
    resp_free(&r);
    free(erev); free(url); free(sha); free(storage);
    return rc;
}

int mt_hub_resolve(const char *model, const mt_hub_opts *opts, char **dir, mt_err *err) {
    if (!model || !*model) return mt_seterr(err, MT_EINVAL, "empty model name");
    if (mt_is_dir(model)) return real_dup(model, dir, err);
    if (!mt_hub_valid_repo_id(model))
        return mt_seterr(err, MT_ENOTFOUND, "%s: no such directory, and not a valid hub repo id", model);
    const char *rev = opts && opts->revision ? opts->revision : "main";
    if (!valid_relpath(rev, 255, 1)) return mt_seterr(err, MT_EINVAL, "%s: invalid revision '%s'", model, rev);
    hub_ctx c;
    MT_TRY(ctx_init(&c, opts, err));
    char *storage = storage_dir(&c, model), *sha = NULL, *snap = NULL;
    int rc = MT_OK;
    if (!storage) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
    sha = is_commit_hash(rev) ? strdup(rev) : read_ref(storage, rev);
    if (sha) {
        snap = xprintf("%s/snapshots/%s", storage, sha);
        if (!snap) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
        if (mt_is_dir(snap) && snapshot_complete(snap)) { rc = real_dup(snap, dir, err); goto out; }
        free(snap);
        snap = NULL;
    }
    if (c.offline) {
        rc = mt_seterr(err, MT_ENOTFOUND, "%s: not in the cache and HF_HUB_OFFLINE is set", model);
        goto out;
    }
    if ((rc = download_snapshot(&c, model, rev, &snap, err))) goto out;
    if (!mt_is_dir(snap) || !snapshot_complete(snap)) {
        rc = mt_seterr(err, MT_ENOTFOUND, "%s: revision %s has neither config.json nor tokenizer.json", model, rev);
        goto out;
    }
    rc = real_dup(snap, dir, err);
out:
    free(storage);
    free(sha);
    free(snap);
    ctx_free(&c);
    return rc;
}

/* ---------------------------------------------------------- progress bar */

static void human(uint64_t n, char *buf, size_t cap) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 5) v /= 1024, u++;
    if (u == 0) snprintf(buf, cap, "%llu B", (unsigned long long)n);
    else snprintf(buf, cap, "%.1f %s", v, units[u]);
}

void mt_progress_bar_draw(FILE *f, const char *label, uint64_t done, uint64_t total) {
    enum { LABEL = 28, WIDTH = 24 };
    char lab[LABEL + 1], d[32], t[32];
    size_t ll = label ? strlen(label) : 0;
    if (ll <= LABEL) snprintf(lab, sizeof lab, "%s", label ? label : "");
    else snprintf(lab, sizeof lab, "...%s", label + ll - (LABEL - 3));
    human(done, d, sizeof d);
    if (total) {
        double frac = done >= total ? 1.0 : (double)done / (double)total;
        int fill = (int)(frac * WIDTH);
        char bar[WIDTH + 1];
        for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : ' ';
        bar[WIDTH] = 0;
        human(total, t, sizeof t);
        fprintf(f, "\r%-*s %3d%% [%s] %s / %s\033[K", LABEL, lab, (int)(frac * 100), bar, d, t);
        if (done >= total) fputc('\n', f);
    } else {
        fprintf(f, "\r%-*s %s\033[K", LABEL, lab, d);
    }
    fflush(f);
}

void mt_progress_bar_cb(void *user, const char *file, uint64_t done, uint64_t total) {
    mt_progress_bar *b = user;
    if (!b || !b->f) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    double now = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    int new_file = strncmp(b->last_file, file ? file : "", sizeof b->last_file - 1) != 0;
    int last = total && done >= total;
    if (!new_file && !last && now - b->last_t < 0.1) return;
    b->last_t = now;
    snprintf(b->last_file, sizeof b->last_file, "%s", file ? file : "");
    mt_progress_bar_draw(b->f, file, done, total);
}
