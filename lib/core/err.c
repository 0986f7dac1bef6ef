/* err.c - error values and messages. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mt_seterr(mt_err *e, int code, const char *fmt, ...) {
    if (!e) return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

int mt_preferr(mt_err *e, const char *fmt, ...) {
    if (!e) return MT_EINVAL;
    char pre[256], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t n = strlen(pre);
    if (n > sizeof e->msg - 3) n = sizeof e->msg - 3;
    memcpy(e->msg, pre, n);
    e->msg[n] = ':';
    e->msg[n + 1] = ' ';
    size_t m = strnlen(old, sizeof old - 1);
    if (m > sizeof e->msg - n - 3) m = sizeof e->msg - n - 3;
    memcpy(e->msg + n + 2, old, m);
    e->msg[n + 2 + m] = 0;
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
    default: return "error";
    }
}
