/* err.c - error values and messages. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* A message cut to fit its buffer must not end inside a UTF-8 character: drop
 * the bytes of an incomplete last sequence (s holds n bytes, NUL at s[n]). */
static void clip_utf8(char *s, size_t n) {
    size_t i = n, k = 0;
    while (i > 0 && k < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--, k++;
    if (i == 0) return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (want > 1 && k + 1 < want) s[i - 1] = 0;
}

int mt_seterr(mt_err *e, int code, const char *fmt, ...) {
    if (!e) return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof e->msg) clip_utf8(e->msg, sizeof e->msg - 1);
    return code;
}

int mt_preferr(mt_err *e, const char *fmt, ...) {
    if (!e) return MT_EINVAL;
    char pre[256], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    int np = vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    if (np >= (int)sizeof pre) clip_utf8(pre, sizeof pre - 1);
    memcpy(old, e->msg, sizeof old);
    size_t n = strlen(pre);
    if (n > sizeof e->msg - 3) {
        n = sizeof e->msg - 3;
        pre[n] = 0;
        clip_utf8(pre, n);
        n = strlen(pre);
    }
    memcpy(e->msg, pre, n);
    e->msg[n] = ':';
    e->msg[n + 1] = ' ';
    size_t m = strnlen(old, sizeof old - 1);
    if (m > sizeof e->msg - n - 3) m = sizeof e->msg - n - 3;
    memcpy(e->msg + n + 2, old, m);
    e->msg[n + 2 + m] = 0;
    clip_utf8(e->msg, n + 2 + m);
    return e->code;
}

void mt_clearerr(mt_err *e) {
    if (!e) return;
    e->code = MT_OK;
    e->msg[0] = 0;
}

const char *mt_strstatus(int code) {
    switch (code) {
    case MT_OK: return "ok";
    case MT_EINVAL: return "invalid input";
    case MT_ENOMEM: return "out of memory";
    case MT_EIO: return "I/O error";
    case MT_EFORMAT: return "bad format";
    case MT_ENOTFOUND: return "not found";
    case MT_EUNSUPPORTED: return "unsupported";
    case MT_ELIMIT: return "limit exceeded";
    case MT_ENET: return "network error";
    case MT_EUSAGE: return "usage error";
    case MT_EFATAL: return "fatal error";
    default: return "error";
    }
}
