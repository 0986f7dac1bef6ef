/* err.h - status codes and error messages shared by the whole library.
 *
 * Every fallible function returns an int status (MT_OK = 0 on success) and,
 * when it fails, fills an mt_err (if non-NULL) with a one-line message for the
 * user.  The library never prints and never exits.  Programs map a status to
 * an exit code with mt_exit_code(). */
#ifndef MT_ERR_H
#define MT_ERR_H

#include <stddef.h>

enum mt_status {
    MT_OK = 0,
    MT_EINVAL,       /* bad argument or malformed input */
    MT_ENOMEM,       /* allocation failed */
    MT_EIO,          /* read/write/open failed */
    MT_EFORMAT,      /* a file's bytes are not what its format promises */
    MT_ENOTFOUND,    /* missing file, tensor, key, model */
    MT_EUNSUPPORTED, /* valid input we do not handle */
    MT_ELIMIT,       /* a safety limit was hit (template loops, sizes) */
    MT_ENET,         /* network / download failure */
    MT_EUSAGE,       /* command-line usage error */
    MT_EFATAL,       /* a record handler's verdict that the run cannot go on (its output
                      * cannot be written): the record loop stops at once (core/jsonl.h) */
};

typedef struct mt_err {
    int code;
    char msg[512];
} mt_err;

/* Set e (may be NULL) to code + printf-style message; returns code. */
int mt_seterr(mt_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix an existing message: "prefix: old message". Returns e->code. */
int mt_preferr(mt_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void mt_clearerr(mt_err *e);
const char *mt_strstatus(int code);

/* Exit codes shared by all programs. */
enum { MT_EXIT_OK = 0, MT_EXIT_FATAL = 1, MT_EXIT_USAGE = 2, MT_EXIT_PARTIAL = 3 };

/* Forward an error: if (expr) returns non-zero, return it. */
#define MT_TRY(expr) do { int mt__rc = (expr); if (mt__rc) return mt__rc; } while (0)

#endif
