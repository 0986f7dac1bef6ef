/* file.h - whole-file reads, zstd-compressed reads, atomic writes, mmap.
 * Ownership: buffers returned through `out` are malloc'd; the caller frees. */
#ifndef MT_FILE_H
#define MT_FILE_H

#include <stddef.h>
#include <stdio.h>
#include "core/err.h"

/* Read a whole file; *out is NUL-terminated (not counted in *len).
 * A path ending in ".zst" is decompressed transparently. */
int mt_read_file(const char *path, char **out, size_t *len, mt_err *err);
/* Same, capped: fails with MT_ELIMIT if the (decompressed) size exceeds max. */
int mt_read_file_max(const char *path, size_t max, char **out, size_t *len, mt_err *err);
/* Read a stream (a pipe, stdin) to its end: *out malloc'd (NUL-terminated, the NUL not
 * counted); more than max bytes is MT_ELIMIT.  name labels the messages. */
int mt_read_stream(FILE *f, const char *name, size_t max, void **out, size_t *len, mt_err *err);
/* Decompress a zstd frame held in memory. */
int mt_zstd_decompress(const void *src, size_t n, size_t max, char **out, size_t *len, mt_err *err);

/* Write data to path atomically: a temp file in the same directory, fsync, rename.
 * The file gets the mode open(O_CREAT, 0666) gives under the umask. */
int mt_write_file_atomic(const char *path, const void *data, size_t n, mt_err *err);

/* Temporary files and folders for writers that rename into place.  Both are
 * registered with core/sig, so a fatal signal removes them.
 * mt_tmp_open: create "PATH.tmp.XXXXXX" next to path (O_EXCL, mode 0666 under
 * the umask, like any new file), open read-write on *fd; *tmp malloc'd.
 * MT_EUSAGE when path exists and is not a regular file (/dev/full, a folder):
 * the rename would replace it.
 * mt_tmpdir_make: create the folder "PATH.tmp-PID" (mode 0777 under the umask;
 * a stale one of that name is removed first); *tmp malloc'd.
 * mt_tmp_commit: rename tmp (file or folder) to path and unregister it; when the
 * rename fails, tmp is discarded.  mt_tmp_discard: remove tmp (a folder with
 * everything in it) and unregister it; accepts NULL.  Neither frees tmp. */
int mt_tmp_open(const char *path, char **tmp, int *fd, mt_err *err);
int mt_tmpdir_make(const char *path, char **tmp, mt_err *err);
int mt_tmp_commit(const char *tmp, const char *path, mt_err *err);
void mt_tmp_discard(const char *tmp);
/* rm -r (best effort; a non-folder is unlinked). */
void mt_remove_tree(const char *dir);
/* write(2) all n bytes, retrying on EINTR; 0, or -1 with errno set. */
int mt_write_fd_all(int fd, const void *data, size_t n);

int mt_file_exists(const char *path);
int mt_is_dir(const char *path);
/* mkdir -p (new folders get mode 0777 under the umask) */
int mt_mkdirs(const char *path, mt_err *err);
/* Join a and b with '/' into a malloc'd string (NULL on OOM). */
char *mt_path_join(const char *a, const char *b);

/* A read-only memory map of a whole file, registered with core/sig while open
 * (a SIGBUS in it - the file was truncated - is reported by name). */
typedef struct mt_mmap {
    const unsigned char *data;
    size_t size;
} mt_mmap;
int mt_mmap_open(mt_mmap *m, const char *path, mt_err *err);
void mt_mmap_close(mt_mmap *m);
/* A loader done with bytes [p, p + n) of such a map (a tensor it copied): the pages wholly
 * inside are dropped from the process's memory (read again from the file if touched), so
 * that loading does not hold the file and its copy at once.  Anything else: no effect. */
void mt_mmap_drop(const void *p, size_t n);

#endif
