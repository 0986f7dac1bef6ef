/* file.c - file helpers: whole reads (with .zst), atomic writes, temporary
 * files and folders (registered with core/sig for removal on a fatal signal),
 * mmap (registered with core/sig for the SIGBUS report). */
#include "core/file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>
#include "core/sig.h"

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && memcmp(s + a - b, suf, b) == 0;
}

int mt_zstd_decompress(const void *src, size_t n, size_t max, char **out, size_t *len, mt_err *err) {
    ZSTD_DStream *ds = ZSTD_createDStream();
    if (!ds) return mt_seterr(err, MT_ENOMEM, "out of memory");
    ZSTD_initDStream(ds);
    size_t cap = n * 4 + 1024, used = 0;
    if (cap > max + 1) cap = max + 1;
    char *buf = malloc(cap + 1);
    int rc = MT_OK;
    if (!buf) { ZSTD_freeDStream(ds); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    ZSTD_inBuffer in = {src, n, 0};
    size_t ret = 1;
    while (in.pos < in.size || ret != 0) {
        if (used == cap) {
            if (cap > max) { rc = mt_seterr(err, MT_ELIMIT, "decompressed data larger than %zu bytes", max); break; }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            char *nb = realloc(buf, ncap + 1);
            if (!nb) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); break; }
            buf = nb; cap = ncap;
        }
        ZSTD_outBuffer o = {buf + used, cap - used, 0};
        size_t before = in.pos;
        ret = ZSTD_decompressStream(ds, &o, &in);
        if (ZSTD_isError(ret)) { rc = mt_seterr(err, MT_EFORMAT, "zstd: %s", ZSTD_getErrorName(ret)); break; }
        used += o.pos;
        if (used > max) { rc = mt_seterr(err, MT_ELIMIT, "decompressed data larger than %zu bytes", max); break; }
        if (ret != 0 && in.pos == in.size && o.pos == 0 && before == in.pos && used < cap) {
            rc = mt_seterr(err, MT_EFORMAT, "zstd: truncated frame"); break;
        }
    }
    ZSTD_freeDStream(ds);
    if (rc) { free(buf); return rc; }
    buf[used] = 0;
    *out = buf;
    if (len) *len = used;
    return MT_OK;
}

int mt_read_stream(FILE *f, const char *name, size_t max, void **out, size_t *len, mt_err *err) {
    *out = NULL;
    *len = 0;
    size_t n = 0, cap = 1 << 16;
    char *buf = malloc(cap + 1);
    if (!buf) return mt_seterr(err, MT_ENOMEM, "%s: out of memory", name);
    for (;;) {
        if (n == cap) {
            if (cap > max) { free(buf); return mt_seterr(err, MT_ELIMIT, "%s: larger than %zu bytes", name, max); }
            char *p = realloc(buf, 2 * cap + 1);
            if (!p) { free(buf); return mt_seterr(err, MT_ENOMEM, "%s: out of memory", name); }
            buf = p;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    if (ferror(f)) { free(buf); return mt_seterr(err, MT_EIO, "%s: read error", name); }
    if (n > max) { free(buf); return mt_seterr(err, MT_ELIMIT, "%s: larger than %zu bytes", name, max); }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return MT_OK;
}

int mt_read_file_max(const char *path, size_t max, char **out, size_t *len, mt_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return mt_seterr(err, errno == ENOENT ? MT_ENOTFOUND : MT_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return mt_seterr(err, MT_EIO, "%s: not a regular file", path);
    }
    size_t n = (size_t)st.st_size;
    int zst = ends_with(path, ".zst");
    if (!zst && n > max) { fclose(f); return mt_seterr(err, MT_ELIMIT, "%s: larger than %zu bytes", path, max); }
    char *buf = malloc(n + 1);
    if (!buf) { fclose(f); return mt_seterr(err, MT_ENOMEM, "%s: out of memory", path); }
    if (fread(buf, 1, n, f) != n) {
        free(buf); fclose(f);
        return mt_seterr(err, MT_EIO, "%s: short read", path);
    }
    fclose(f);
    buf[n] = 0;
    if (zst) {
        char *d; size_t dn;
        int rc = mt_zstd_decompress(buf, n, max, &d, &dn, err);
        free(buf);
        if (rc) return mt_preferr(err, "%s", path);
        buf = d; n = dn;
    }
    *out = buf;
    if (len) *len = n;
    return MT_OK;
}

int mt_read_file(const char *path, char **out, size_t *len, mt_err *err) {
    return mt_read_file_max(path, (size_t)1 << 40, out, len, err);
}

/* Six random characters for a temporary name (getrandom, else clock and pid). */
static void rand_suffix(char *out, unsigned attempt) {
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char r[6];
    if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        unsigned long long x = (unsigned long long)ts.tv_nsec * 6364136223846793005ull ^
                               (unsigned long long)getpid() << 20 ^ attempt * 1442695040888963407ull;
        for (int i = 0; i < 6; i++, x >>= 8) r[i] = (unsigned char)(x ^ (x >> 37));
    }
    for (int i = 0; i < 6; i++) out[i] = al[r[i] % (sizeof al - 1)];
    out[6] = 0;
}

int mt_tmp_open(const char *path, char **tmp, int *fd, mt_err *err) {
    *tmp = NULL;
    *fd = -1;
    struct stat st;   /* a rename over a device or a folder would replace it: refused */
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return mt_seterr(err, MT_EUSAGE, "%s: exists and is not a regular file (the output is written to a "
                         "temporary file renamed into place)", path);
    size_t pl = strlen(path);
    char *t = malloc(pl + 16);
    if (!t) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int f = -1, e = EEXIST;
    /* the fatal signals wait while the file is created and registered: a signal in between
     * would leave it behind */
    sigset_t old;
    mt_sig_hold(&old);
    for (unsigned attempt = 0; f < 0 && e == EEXIST && attempt < 100; attempt++) {
        memcpy(t, path, pl);
        memcpy(t + pl, ".tmp.", 5);
        rand_suffix(t + pl + 5, attempt);
        f = open(t, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f < 0) e = errno;
    }
    if (f >= 0) mt_sig_tmp_add(t, 0);
    mt_sig_release(&old);
    if (f < 0) {
        free(t);
        return mt_seterr(err, MT_EIO, "%s: cannot create a temporary file next to it: %s", path, strerror(e));
    }
    *tmp = t;
    *fd = f;
    return MT_OK;
}

int mt_tmp_commit(const char *tmp, const char *path, mt_err *err) {
    if (rename(tmp, path) != 0) {
        int e = errno;
        mt_tmp_discard(tmp);
        return mt_seterr(err, MT_EIO, "%s: rename: %s", path, strerror(e));
    }
    mt_sig_tmp_remove(tmp);
    return MT_OK;
}

void mt_tmp_discard(const char *tmp) {
    if (!tmp) return;
    struct stat st;
    if (lstat(tmp, &st) == 0 && S_ISDIR(st.st_mode)) mt_remove_tree(tmp);
    else unlink(tmp);
    mt_sig_tmp_remove(tmp);
}

int mt_tmpdir_make(const char *path, char **tmp, mt_err *err) {
    *tmp = NULL;
    size_t l = strlen(path) + 32;
    char *t = malloc(l);
    if (!t) return mt_seterr(err, MT_ENOMEM, "out of memory");
    snprintf(t, l, "%s.tmp-%ld", path, (long)getpid());
    mt_remove_tree(t);   /* a stale one of an earlier process with this pid */
    sigset_t old;   /* made and registered with the fatal signals held (as mt_tmp_open) */
    mt_sig_hold(&old);
    int made = mkdir(t, 0777) == 0, e = errno;
    if (made) mt_sig_tmp_add(t, 1);
    mt_sig_release(&old);
    if (!made) {
        int rc = mt_seterr(err, MT_EIO, "mkdir %s: %s", t, strerror(e));
        free(t);
        return rc;
    }
    *tmp = t;
    return MT_OK;
}

void mt_remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        unlink(dir);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        char *p = mt_path_join(dir, de->d_name);
        if (!p) continue;
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) mt_remove_tree(p);
        else unlink(p);
        free(p);
    }
    closedir(d);
    rmdir(dir);
}

int mt_write_fd_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        if (w == 0) { errno = EIO; return -1; }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int mt_write_file_atomic(const char *path, const void *data, size_t n, mt_err *err) {
    char *tmp;
    int fd;
    MT_TRY(mt_tmp_open(path, &tmp, &fd, err));
    int rc = MT_OK;
    if (mt_write_fd_all(fd, data, n) != 0) {
        rc = mt_seterr(err, MT_EIO, "%s: write: %s", path, strerror(errno));
        close(fd);
    } else if (fsync(fd) != 0 || close(fd) != 0) {
        rc = mt_seterr(err, MT_EIO, "%s: %s", path, strerror(errno));
    }
    if (rc) mt_tmp_discard(tmp);
    else rc = mt_tmp_commit(tmp, path, err);
    free(tmp);
    return rc;
}

int mt_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int mt_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int mt_mkdirs(const char *path, mt_err *err) {
    char *p = strdup(path);
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                int e = errno;
                int rc = mt_seterr(err, MT_EIO, "mkdir %s: %s", p, strerror(e));
                free(p);
                return rc;
            }
            *s = c;
            if (!c) break;
        }
    }
    free(p);
    return MT_OK;
}

char *mt_path_join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *r = malloc(la + lb + 2);
    if (!r) return NULL;
    memcpy(r, a, la);
    size_t o = la;
    if (la && a[la - 1] != '/') r[o++] = '/';
    memcpy(r + o, b, lb + 1);
    return r;
}

void mt_mmap_drop(const void *p, size_t n) {
    long pg = sysconf(_SC_PAGESIZE);
    if (!p || pg <= 0) return;
    uintptr_t a = ((uintptr_t)p + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1), e = ((uintptr_t)p + n) & ~((uintptr_t)pg - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_DONTNEED);
}

int mt_mmap_open(mt_mmap *m, const char *path, mt_err *err) {
    m->data = NULL; m->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return mt_seterr(err, errno == ENOENT ? MT_ENOTFOUND : MT_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mt_seterr(err, MT_EIO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) { close(fd); return MT_OK; }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return mt_seterr(err, MT_EIO, "%s: mmap: %s", path, strerror(errno));
    m->data = p;
    m->size = (size_t)st.st_size;
    mt_sig_map_add(p, m->size, path);
    return MT_OK;
}

void mt_mmap_close(mt_mmap *m) {
    if (m && m->data) {
        mt_sig_map_remove(m->data);
        munmap((void *)m->data, m->size);
    }
    if (m) { m->data = NULL; m->size = 0; }
}
