/* file.h - whole-file reads, zstd-compressed reads, atomic writes, mmap.
 * Ownership: buffers returned through `out` are malloc'd; the caller frees. */
#ifndef MT_FILE_H
#define MT_FILE_H

#include <stddef.h>
#include "core/err.h"

/* Read a whole file; *out is NUL-terminated (not counted in *len).
 * A path ending in ".zst" is decompressed transparently. */
int mt_read_file(const char *path, char **out, size_t *len, mt_err *err);
/* Same, capped: fails with MT_ELIMIT if the (decompressed) size exceeds max. */
int mt_read_file_max(const char *path, size_t max, char **out, size_t *len, mt_err *err);
/* Decompress a zstd frame held in memory. */
int mt_zstd_decompress(const void *src, size_t n, size_t max, char **out, size_t *len, mt_err *err);

/* Write data to path atomically: a temp file in the same directory, fsync, rename. */
int mt_write_file_atomic(const char *path, const void *data, size_t n, mt_err *err);

int mt_file_exists(const char *path);
int mt_is_dir(const char *path);
/* mkdir -p */
int mt_mkdirs(const char *path, mt_err *err);
/* Join a and b with '/' into a malloc'd string (NULL on OOM). */
char *mt_path_join(const char *a, const char *b);

/* A read-only memory map of a whole file. */
typedef struct mt_mmap {
    const unsigned char *data;
    size_t size;
} mt_mmap;
int mt_mmap_open(mt_mmap *m, const char *path, mt_err *err);
void mt_mmap_close(mt_mmap *m);

#endif
