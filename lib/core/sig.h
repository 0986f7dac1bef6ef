/* sig.h - the one process-wide signal facility of every program.
 *
 * This module is the deliberate exception to the library's "no global mutable
 * state" rule: signal dispositions belong to the process, so its registries
 * are fixed-size static tables shared by all threads (lock-free slots with
 * atomic states; no malloc, no locks in the handlers).
 *
 *  - Temporary paths.  mt_sig_tmp_add registers a temp file (is_dir 0) or a
 *    temp folder (is_dir 1, removed recursively); on SIGINT, SIGTERM, SIGHUP
 *    or SIGPIPE the handler removes every registered path with
 *    async-signal-safe calls only (unlinkat, openat, getdents64, rmdir), then
 *    restores the default action and re-raises the signal, so the process
 *    ends "killed by signal" (a shell shows 128+N: 130 for SIGINT, 141 for
 *    SIGPIPE).  A signal ignored when mt_sig_install runs stays ignored
 *    (nohup, background jobs of non-interactive shells).
 *  - Memory maps.  mt_sig_map_add registers a mapped file; a SIGBUS inside a
 *    registered range (the file was truncated under the process) prints
 *    "PROG: FILE: the file changed or was truncated while mapped (SIGBUS)"
 *    with write(2), removes the temp paths and exits with status 1 (_exit).
 *    A SIGBUS elsewhere gets the default action.
 *
 * The registries work whether or not mt_sig_install was called (tests and
 * library users that keep their own handlers simply get no cleanup).  Adding
 * is best effort: a full table or an over-long path returns MT_ELIMIT and the
 * path is just not cleaned up on a signal. */
#ifndef MT_SIG_H
#define MT_SIG_H

#include <signal.h>
#include <stddef.h>

/* Install the handlers (idempotent); prog names the program in the SIGBUS
 * line (copied).  Returns MT_OK or MT_EIO when sigaction fails. */
int mt_sig_install(const char *prog);

/* Register / unregister a temporary path (compared by string).  Unregister
 * after the rename into place (a signal in between finds nothing to remove)
 * or after removing it yourself. */
int mt_sig_tmp_add(const char *path, int is_dir);
void mt_sig_tmp_remove(const char *path);

/* Hold the signals whose handler removes the temporary paths (SIGINT, SIGTERM, SIGHUP,
 * SIGPIPE) in this thread, *old getting the mask to give back to mt_sig_release: what runs in
 * between (creating a temporary path and registering it) is not split by one. */
void mt_sig_hold(sigset_t *old);
void mt_sig_release(const sigset_t *old);

/* Register / unregister the mapping [addr, addr + len) of file path
 * (unregister before munmap). */
int mt_sig_map_add(const void *addr, size_t len, const char *path);
void mt_sig_map_remove(const void *addr);

#endif
