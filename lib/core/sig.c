/* sig.c - fatal-signal cleanup of temporary paths and the SIGBUS report for
 * memory-mapped files (see sig.h).  Process-wide by nature: the registries are
 * static tables of slots, each with an atomic state, so that registering,
 * unregistering and the handlers never lock or allocate:
 *   FREE -> BUSY (the registering thread fills it) -> LIVE -> BUSY -> FREE,
 *   LIVE -> TAKEN (a handler owns it; never freed again: the process is ending).
 * A remover that finds its slot TAKEN leaves it to the handler. */
#include "core/sig.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "core/err.h"

enum { S_FREE, S_BUSY, S_LIVE, S_TAKEN };

#define N_TMP 64
#define TMP_PATH 4096
#define N_MAP 512
#define MAP_PATH 512

typedef struct tmp_slot {
    atomic_int state;
    int is_dir;
    char path[TMP_PATH];
} tmp_slot;

typedef struct map_slot {
    atomic_int state;
    uintptr_t addr;
    size_t len;
    char path[MAP_PATH];   /* for the message only: cut when longer */
} map_slot;

static tmp_slot tmps[N_TMP];
static map_slot maps[N_MAP];
static char prog_name[64] = "mlx-tools";
static atomic_int installed, handling;

static const int cleanup_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE};

void mt_sig_hold(sigset_t *old) {
    sigset_t block;
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof cleanup_sigs / sizeof *cleanup_sigs; i++) sigaddset(&block, cleanup_sigs[i]);
    pthread_sigmask(SIG_BLOCK, &block, old);
}

void mt_sig_release(const sigset_t *old) { pthread_sigmask(SIG_SETMASK, old, NULL); }

/* ---- registries ---- */

static int claim(atomic_int *st, int from, int to) {
    int e = from;
    return atomic_compare_exchange_strong(st, &e, to);
}

int mt_sig_tmp_add(const char *path, int is_dir) {
    size_t n = strlen(path);
    if (n >= TMP_PATH) return MT_ELIMIT;
    for (int i = 0; i < N_TMP; i++) {
        if (!claim(&tmps[i].state, S_FREE, S_BUSY)) continue;
        memcpy(tmps[i].path, path, n + 1);
        tmps[i].is_dir = is_dir;
        atomic_store(&tmps[i].state, S_LIVE);
        return MT_OK;
    }
    return MT_ELIMIT;
}

void mt_sig_tmp_remove(const char *path) {
    for (int i = 0; i < N_TMP; i++) {
        if (atomic_load(&tmps[i].state) != S_LIVE || strcmp(tmps[i].path, path)) continue;
        if (!claim(&tmps[i].state, S_LIVE, S_BUSY)) continue;
        if (strcmp(tmps[i].path, path)) {          /* reused meanwhile by another path */
            atomic_store(&tmps[i].state, S_LIVE);
            continue;
        }
        atomic_store(&tmps[i].state, S_FREE);
        return;
    }
}

int mt_sig_map_add(const void *addr, size_t len, const char *path) {
    for (int i = 0; i < N_MAP; i++) {
        if (!claim(&maps[i].state, S_FREE, S_BUSY)) continue;
        maps[i].addr = (uintptr_t)addr;
        maps[i].len = len;
        size_t n = strlen(path);
        if (n >= MAP_PATH) n = MAP_PATH - 1;
        memcpy(maps[i].path, path, n);
        maps[i].path[n] = 0;
        atomic_store(&maps[i].state, S_LIVE);
        return MT_OK;
    }
    return MT_ELIMIT;
}

void mt_sig_map_remove(const void *addr) {
    for (int i = 0; i < N_MAP; i++) {
        if (atomic_load(&maps[i].state) != S_LIVE || maps[i].addr != (uintptr_t)addr) continue;
        if (!claim(&maps[i].state, S_LIVE, S_BUSY)) continue;
        if (maps[i].addr != (uintptr_t)addr) {
            atomic_store(&maps[i].state, S_LIVE);
            continue;
        }
        atomic_store(&maps[i].state, S_FREE);
        return;
    }
}

/* ---- handlers: async-signal-safe calls only ---- */

struct dirent64_k {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
};

/* Remove name (relative to dfd) and, when it is a folder, everything below it
 * (at most 8 levels; each pass re-reads the folder until it is empty, since
 * removing entries while reading may skip some). */
static void rm_tree_at(int dfd, const char *name, int depth) {
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT || depth > 8) return;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return;
    _Alignas(8) char buf[1024];
    for (int pass = 0; pass < 8; pass++) {
        int seen = 0;
        long n;
        if (lseek(fd, 0, SEEK_SET) < 0) break;
        while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
            for (long off = 0; off < n;) {
                struct dirent64_k *d = (struct dirent64_k *)(buf + off);
                off += d->reclen;
                if (d->name[0] == '.' && (!d->name[1] || (d->name[1] == '.' && !d->name[2]))) continue;
                seen = 1;
                rm_tree_at(fd, d->name, depth + 1);
            }
        }
        if (!seen) break;
    }
    close(fd);
    unlinkat(dfd, name, AT_REMOVEDIR);
}

static void remove_tmps(void) {
    int saved = errno;
    for (int i = 0; i < N_TMP; i++) {
        if (!claim(&tmps[i].state, S_LIVE, S_TAKEN)) continue;
        if (tmps[i].is_dir) rm_tree_at(AT_FDCWD, tmps[i].path, 0);
        else unlink(tmps[i].path);
    }
    errno = saved;
}

/* Default action, unblocked, raised again: the process ends by the signal. */
static void reraise(int sig) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    sigprocmask(SIG_UNBLOCK, &s, NULL);
    raise(sig);
    _exit(128 + sig);
}

/* A second fatal signal on another thread while one handler runs: wait for it to end the process. */
static void wait_for_end(void) {
    for (;;) pause();
}

static void on_cleanup(int sig, siginfo_t *si, void *uc) {
    (void)si, (void)uc;
    if (atomic_exchange(&handling, 1)) wait_for_end();
    remove_tmps();
    reraise(sig);
}

static size_t put(char *b, size_t o, size_t cap, const char *s) {
    while (*s && o < cap) b[o++] = *s++;
    return o;
}

static void on_bus(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    uintptr_t a = (uintptr_t)si->si_addr;
    const char *path = NULL;
    for (int i = 0; i < N_MAP && !path; i++) {
        if (atomic_load(&maps[i].state) != S_LIVE) continue;
        if (a < maps[i].addr || a - maps[i].addr >= maps[i].len) continue;
        if (!claim(&maps[i].state, S_LIVE, S_TAKEN)) continue;
        if (a >= maps[i].addr && a - maps[i].addr < maps[i].len) path = maps[i].path;
    }
    if (atomic_exchange(&handling, 1)) wait_for_end();
    remove_tmps();
    if (!path) reraise(sig);
    char line[sizeof prog_name + MAP_PATH + 96];
    size_t o = 0, cap = sizeof line - 1;
    o = put(line, o, cap, prog_name);
    o = put(line, o, cap, ": ");
    o = put(line, o, cap, path);
    o = put(line, o, cap, ": the file changed or was truncated while mapped (SIGBUS)");
    line[o++] = '\n';
    for (size_t w = 0; w < o;) {
        ssize_t k = write(STDERR_FILENO, line + w, o - w);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        w += (size_t)k;
    }
    _exit(1);
}

int mt_sig_install(const char *prog) {
    if (prog) {
        size_t n = strlen(prog);
        if (n >= sizeof prog_name) n = sizeof prog_name - 1;
        memcpy(prog_name, prog, n);
        prog_name[n] = 0;
    }
    if (atomic_exchange(&installed, 1)) return MT_OK;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof cleanup_sigs / sizeof *cleanup_sigs; i++) sigaddset(&sa.sa_mask, cleanup_sigs[i]);
    sigaddset(&sa.sa_mask, SIGBUS);
    for (size_t i = 0; i < sizeof cleanup_sigs / sizeof *cleanup_sigs; i++) {
        struct sigaction old;
        if (sigaction(cleanup_sigs[i], NULL, &old) != 0) return MT_EIO;
        if (!(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_IGN) continue;   /* nohup, background jobs */
        sa.sa_sigaction = on_cleanup;
        if (sigaction(cleanup_sigs[i], &sa, NULL) != 0) return MT_EIO;
    }
    sa.sa_sigaction = on_bus;
    if (sigaction(SIGBUS, &sa, NULL) != 0) return MT_EIO;
    return MT_OK;
}
