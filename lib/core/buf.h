/* buf.h - a growable byte buffer for building output in memory.
 * Appends never fail loudly: on allocation failure `oom` is set and later
 * appends are ignored, so callers check once at the end.  p stays
 * NUL-terminated (the terminator is not counted in n).  Owner frees p. */
#ifndef MT_BUF_H
#define MT_BUF_H

#include <stddef.h>

typedef struct mt_buf {
    char *p;
    size_t n, cap;
    int oom;
} mt_buf;

void mt_buf_put(mt_buf *b, const void *s, size_t n);
void mt_buf_str(mt_buf *b, const char *s);
void mt_buf_free(mt_buf *b);

#endif
