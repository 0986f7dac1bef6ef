/* npy.c - a float matrix streamed to a .npy file (format 1.0) or raw rows:
 * written to a temporary file in the target's folder, header rewritten with
 * the final row count, fsync'd and renamed into place on close.  The temporary
 * file is registered with core/sig (removed on a fatal signal) and the result
 * has the mode of any new file (0666 under the umask).
 * ref: numpy/lib/format.py (magic, header dict, 64-byte alignment). */
#include "embed/embed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "core/file.h"
#include "tensor/dtype.h"

#define NPY_HDR 128   /* magic + version + length + dict, padded: room for any row count */

struct mt_npy {
    FILE *f;
    char *path, *tmp;
    size_t cols, rows;
    int f16, raw;
    void *buf;
};

static int write_failed(mt_npy *w, mt_err *err) {
    return mt_seterr(err, MT_EIO, "%s: write failed: %s", w->path, strerror(errno ? errno : EIO));
}

static int write_header(mt_npy *w, mt_err *err) {
    char h[NPY_HDR];
    memset(h, ' ', sizeof h);
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    unsigned hl = NPY_HDR - 10;
    h[8] = (char)(hl & 0xff);
    h[9] = (char)(hl >> 8);
    char d[NPY_HDR];
    int n = snprintf(d, sizeof d, "{'descr': '<f%d', 'fortran_order': False, 'shape': (%zu, %zu), }",
                     w->f16 ? 2 : 4, w->rows, w->cols);
    if (n < 0 || n > NPY_HDR - 11) return mt_seterr(err, MT_ELIMIT, "npy header too long");
    memcpy(h + 10, d, (size_t)n);
    h[NPY_HDR - 1] = '\n';
    if (fseeko(w->f, 0, SEEK_SET) || fwrite(h, 1, sizeof h, w->f) != sizeof h || fseeko(w->f, 0, SEEK_END))
        return write_failed(w, err);
    return MT_OK;
}

int mt_npy_open(mt_npy **out, const char *path, size_t cols, int dtype_f16, int raw, mt_err *err) {
    *out = NULL;
    mt_npy *w = calloc(1, sizeof *w);
    if (!w) return mt_seterr(err, MT_ENOMEM, "out of memory");
    w->cols = cols;
    w->f16 = dtype_f16;
    w->raw = raw;
    w->path = strdup(path);
    w->buf = malloc(cols * 4 + 4);
    if (!w->path || !w->buf) {
        mt_npy_abort(w);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    int fd, rc = mt_tmp_open(path, &w->tmp, &fd, err);
    if (rc) {
        mt_npy_abort(w);
        return rc;
    }
    w->f = fdopen(fd, "w+b");
    if (!w->f) {
        close(fd);
        mt_npy_abort(w);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    if (!raw && (rc = write_header(w, err))) {
        mt_npy_abort(w);
        return rc;
    }
    *out = w;
    return MT_OK;
}

int mt_npy_append(mt_npy *w, const float *row, mt_err *err) {
    const void *src = row;
    size_t bytes = w->cols * 4;
    if (w->f16) {
        mt_convert_from_f32(w->buf, row, MT_F16, w->cols);
        src = w->buf;
        bytes = w->cols * 2;
    }
    errno = 0;
    if (fwrite(src, 1, bytes, w->f) != bytes) return write_failed(w, err);
    w->rows++;
    return MT_OK;
}

size_t mt_npy_rows(const mt_npy *w) { return w->rows; }

int mt_npy_close(mt_npy *w, mt_err *err) {
    errno = 0;
    int rc = w->raw ? MT_OK : write_header(w, err);
    if (!rc && (fflush(w->f) || fsync(fileno(w->f)))) rc = write_failed(w, err);
    if (!rc) {
        int bad = fclose(w->f);
        w->f = NULL;
        if (bad) rc = write_failed(w, err);
    }
    if (!rc && !(rc = mt_tmp_commit(w->tmp, w->path, err))) {
        free(w->tmp);
        w->tmp = NULL;
    }
    mt_npy_abort(w);
    return rc;
}

void mt_npy_abort(mt_npy *w) {
    if (!w) return;
    if (w->f) fclose(w->f);
    mt_tmp_discard(w->tmp);
    free(w->tmp);
    free(w->path);
    free(w->buf);
    free(w);
}
