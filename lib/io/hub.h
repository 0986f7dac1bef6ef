/* hub.h - resolve `-m MODEL` to a local folder: an existing directory, or a
 * Hugging Face hub repo id looked up in (and, unless offline, downloaded into)
 * the huggingface_hub cache, laid out exactly as huggingface_hub does:
 *
 *   <cache>/models--{org}--{name}/refs/<revision>        commit sha (no newline)
 *   <cache>/models--{org}--{name}/snapshots/<sha>/<file>  -> ../../blobs/<etag>
 *   <cache>/models--{org}--{name}/blobs/<etag>           (<etag>.incomplete while downloading)
 *   <cache>/.locks/models--{org}--{name}/<etag>.lock
 *
 * <cache> is $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
 * $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
 * Network: $HF_ENDPOINT (default https://huggingface.co), files at
 * {endpoint}/{repo}/resolve/{revision}/{file}, listing at
 * {endpoint}/api/models/{repo}/revision/{revision}.  $HF_TOKEN (else the file
 * $HF_TOKEN_PATH, else $HF_HOME/token) is sent as "Authorization: Bearer".
 * $HF_HUB_OFFLINE (or $TRANSFORMERS_OFFLINE) = 1/true/yes/on: never touch the
 * network.  $HF_HUB_ETAG_TIMEOUT (default 10 s) bounds metadata requests and
 * $HF_HUB_DOWNLOAD_TIMEOUT (default 10 s) is how long a download may stall.
 *
 * The library never prints: progress goes through a callback. */
#ifndef MT_HUB_H
#define MT_HUB_H

#include <stdint.h>
#include <stdio.h>

#include "core/err.h"

/* Download progress: `file` is the repo-relative file name, `done` the bytes
 * on disk so far (resumed bytes included), `total` the file size (0 when the
 * server did not say).  The last call of a successful download has
 * done == total. */
typedef void (*mt_progress_fn)(void *user, const char *file, uint64_t done, uint64_t total);

typedef struct mt_hub_opts {
    const char *revision;                /* branch, tag or commit sha; NULL = "main" */
    int offline;                         /* non-zero: never touch the network (the env var also counts) */
    const char *const *allow_patterns;   /* NULL-terminated fnmatch globs matched against the repo path;
                                            NULL = default set: *.json *.safetensors *.jinja
                                            tokenizer.model *.txt *.tiktoken */
    mt_progress_fn progress;             /* may be NULL */
    void *progress_user;
} mt_hub_opts;

/* Resolve MODEL to a local folder.  An existing directory is returned as its
 * realpath.  Otherwise MODEL must be a repo id "org/name" (each part 1..96 of
 * [A-Za-z0-9._-], starting and ending with a letter, digit or '_', no ".." or
 * "--", not ending in ".git"); it is looked up in the cache (refs/<revision>
 * -> snapshots/<sha>, or snapshots/<revision> when the revision is a commit
 * sha).  When absent or incomplete (neither config.json nor tokenizer.json)
 * and not offline, the files matching allow_patterns are downloaded into the
 * cache, then the snapshot folder is returned.  opts may be NULL.
 * Returns MT_OK and a malloc'd *dir (caller frees).  Errors (one line):
 * MT_ENOTFOUND "MODEL: no such directory, and not a valid hub repo id",
 * MT_ENOTFOUND "org/name: not in the cache and HF_HUB_OFFLINE is set",
 * MT_ENOTFOUND/MT_ENET "org/name: file: HTTP 404 from URL", MT_ENET for
 * connection failures and timeouts, MT_EIO for local file-system failures. */
int mt_hub_resolve(const char *model, const mt_hub_opts *opts, char **dir, mt_err *err);

/* The hub cache folder from the environment (see the top of this file); it
 * need not exist.  *out is malloc'd. */
int mt_hub_cache_dir(char **out, mt_err *err);

/* Non-zero when s is a valid "org/name" repo id (rules as for mt_hub_resolve). */
int mt_hub_valid_repo_id(const char *s);

/* Download one file of a repo into the cache unless already there; resumable
 * (an existing blobs/<etag>.incomplete is continued with an HTTP Range request,
 * a cut transfer is retried from where it stopped), the size is verified and
 * the blob renamed into place atomically, then the snapshot symlink is made.
 * revision NULL means opts->revision, else "main".  opts may be NULL.
 * *local_path (malloc'd, caller frees) is the snapshot path
 * <cache>/models--org--name/snapshots/<sha>/<filename>.  When revision is not a
 * commit sha, refs/<revision> is written.  A revision given as a commit sha
 * whose file is cached needs no network; a branch is checked with a HEAD
 * request, and when the hub cannot be reached (MT_ENET, not a 404) the cached
 * file of refs/<revision> is returned if there is one.  Errors as for
 * mt_hub_resolve. */
int mt_hub_download_file(const char *repo_id, const char *revision, const char *filename,
                         const mt_hub_opts *opts, char **local_path, mt_err *err);

/* Draw a one-line progress bar for `label` on f (carriage return, no newline
 * until done >= total > 0).  For programs: pass stderr, and only when it is a
 * terminal.  total == 0 draws the byte count only. */
void mt_progress_bar_draw(FILE *f, const char *label, uint64_t done, uint64_t total);

/* A ready-made mt_progress_fn for programs: set opts.progress =
 * mt_progress_bar_cb and opts.progress_user = &bar (with bar.f = stderr, the
 * rest zeroed).  It redraws at most every 100 ms, and always at the start of a
 * file and when done == total. */
typedef struct mt_progress_bar {
    FILE *f;
    double last_t;        /* internal */
    char last_file[256];  /* internal */
} mt_progress_bar;
void mt_progress_bar_cb(void *user, const char *file, uint64_t done, uint64_t total);

#endif
