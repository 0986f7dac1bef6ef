/* pool.h - the library's one thread pool: a parallel for over [0, n).
 * A NULL pool runs everything on the calling thread. */
#ifndef MT_POOL_H
#define MT_POOL_H

#include <stddef.h>
#include "core/err.h"

typedef struct mt_pool mt_pool;

/* fn(ctx, begin, end, tid) runs on a contiguous chunk; tid in [0, nthreads). */
typedef void (*mt_pool_fn)(void *ctx, size_t begin, size_t end, int tid);

/* nthreads <= 0: the number of online CPUs (or $MT_THREADS when set). */
int mt_pool_new(mt_pool **out, int nthreads, mt_err *err);
void mt_pool_free(mt_pool *p);
int mt_pool_size(const mt_pool *p);
/* Split [0, n) into at most nthreads chunks of at least `grain` items and run
 * them; returns when all are done.  Not reentrant: call from one thread. */
void mt_pool_for(mt_pool *p, size_t n, size_t grain, mt_pool_fn fn, void *ctx);

#endif
