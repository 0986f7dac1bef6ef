/* pool.c - a fixed set of worker threads that run one parallel-for at a time.
 *
 * Workers and the caller first spin on atomics (with a CPU pause, yielding
 * the CPU now and then) and only then sleep on a condition variable.  A
 * decode step posts hundreds of short jobs; waking a sleeping thread costs
 * tens to hundreds of microseconds (on virtual machines the idle CPU itself
 * must be woken), which on a 2-core machine made the second thread nearly
 * useless for matrix-vector products.  The spin time is bounded ($MT_SPIN_US,
 * default 1000 microseconds; 0 = always sleep), so an idle pool costs no CPU.
 *
 * A job's chunks are claimed, not assigned: the caller and the workers take
 * the next unclaimed chunk from one atomic word until none is left, so a
 * worker that the scheduler has not run yet (more busy threads than cores:
 * several processes per host, a neighbour's build) delays nothing; its chunks
 * are done by whoever is running.  With every thread on a core each takes one
 * chunk, as a fixed split would.  The claim word holds the job's generation
 * with the next chunk index, and the job's description lives in one of two
 * slots (by generation parity), so a worker that wakes after its job ended
 * fails its claim and never runs a stale or half-written job. */
#include "core/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_US_DEFAULT 1000
#define YIELD_AFTER_NS 50000 /* spinning longer than this also yields the CPU */

/* One job's description, written by the caller before the job is posted and
 * left alone until two jobs later (fields atomic: a late worker may read them
 * while they are rewritten, and then fails its claim). */
typedef struct pool_job {
    _Atomic(mt_pool_fn) fn;
    _Atomic(void *) ctx;
    atomic_size_t total, chunk, nchunks;
    _Alignas(64) atomic_size_t done;   /* chunks finished (own cache line: both threads add to it) */
} pool_job;

#define CLAIM_IDX_BITS 16  /* chunk index in the claim word's low bits (<= 256 chunks) */

struct mt_pool {
    int n;                 /* threads including the caller */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    /* each on its own cache line: idle workers spin reading gen while the
     * running threads claim chunks and count finished ones */
    _Alignas(64) atomic_ulong gen;      /* bumped for each job (and at quit) */
    _Alignas(64) _Atomic uint64_t claim; /* (generation << CLAIM_IDX_BITS) | next chunk to claim */
    _Alignas(64) pool_job jobs[2];      /* the job of generation g is jobs[g & 1] */
    atomic_int quit;
    int sleepers;          /* workers in pthread_cond_wait (under mu) */
    int caller_sleeps;     /* the caller waits on `done` (under mu) */
    long spin_ns;
};

typedef struct { mt_pool *p; int tid; } worker_arg;

static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Spin until cond(p, arg) holds or spin_ns pass; returns 1 if it holds. */
static int spin_until(const mt_pool *p, int (*cond)(const mt_pool *, unsigned long), unsigned long arg) {
    if (p->spin_ns <= 0) return cond(p, arg);
    long t0 = 0;
    for (unsigned i = 0;; i++) {
        if (cond(p, arg)) return 1;
        CPU_RELAX();
        if ((i & 63) == 63) {
            long t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > p->spin_ns) return cond(p, arg);
            else if (t - t0 > YIELD_AFTER_NS) sched_yield();
        }
    }
}

static int new_job(const mt_pool *p, unsigned long seen) {
    return atomic_load_explicit(&p->gen, memory_order_acquire) != seen;
}

/* cond for the caller of job g: every chunk finished */
static int all_done(const mt_pool *p, unsigned long g) {
    const pool_job *j = &p->jobs[g & 1];
    return atomic_load_explicit(&j->done, memory_order_acquire) ==
           atomic_load_explicit(&j->nchunks, memory_order_relaxed);
}

/* Claim and run chunks of job g until none is left (or g has ended).
 * Returns 1 when this thread finished the job's last chunk. */
static int run_chunks(mt_pool *p, unsigned long g, int tid) {
    pool_job *j = &p->jobs[g & 1];
    const uint64_t tag = (uint64_t)g << CLAIM_IDX_BITS, mask = ((uint64_t)1 << CLAIM_IDX_BITS) - 1;
    int last = 0;
    for (;;) {
        /* read the description first: a successful claim below proves job g
         * was still running, so what was read is job g's (see the top) */
        mt_pool_fn fn = atomic_load_explicit(&j->fn, memory_order_relaxed);
        void *ctx = atomic_load_explicit(&j->ctx, memory_order_relaxed);
        size_t total = atomic_load_explicit(&j->total, memory_order_relaxed);
        size_t chunk = atomic_load_explicit(&j->chunk, memory_order_relaxed);
        size_t nchunks = atomic_load_explicit(&j->nchunks, memory_order_relaxed);
        uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
        if ((c & ~mask) != tag || (c & mask) >= nchunks) return last;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1, memory_order_acq_rel, memory_order_acquire))
            continue;
        size_t b = (size_t)(c & mask) * chunk, e = b + chunk > total ? total : b + chunk;
        fn(ctx, b, e, tid);
        last = atomic_fetch_add_explicit(&j->done, 1, memory_order_acq_rel) + 1 == nchunks;
    }
}

static void *worker(void *arg) {
    worker_arg *wa = arg;
    mt_pool *p = wa->p;
    int tid = wa->tid;
    free(wa);
    unsigned long seen = 0;
    for (;;) {
        if (!spin_until(p, new_job, seen)) {
            pthread_mutex_lock(&p->mu);
            p->sleepers++;
            while (!new_job(p, seen)) pthread_cond_wait(&p->go, &p->mu);
            p->sleepers--;
            pthread_mutex_unlock(&p->mu);
        }
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (atomic_load_explicit(&p->quit, memory_order_relaxed)) break;
        if (run_chunks(p, seen, tid)) {
            pthread_mutex_lock(&p->mu);   /* the last chunk's finisher wakes a sleeping caller */
            if (p->caller_sleeps) pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Publish a job (fields set by the caller beforehand) and wake sleepers. */
static void post(mt_pool *p) {
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_acq_rel);
    pthread_mutex_lock(&p->mu);
    if (p->sleepers) pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
}

int mt_pool_new(mt_pool **out, int nthreads, mt_err *err) {
    *out = NULL;
    if (nthreads <= 0) {
        const char *env = getenv("MT_THREADS");
        nthreads = env ? atoi(env) : 0;
        if (nthreads <= 0) nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN);
        if (nthreads <= 0) nthreads = 1;
    }
    if (nthreads > 256) nthreads = 256;
    /* over-aligned (cache-line members): aligned_alloc, not calloc */
    size_t psz = (sizeof(mt_pool) + 63) & ~(size_t)63;
    mt_pool *p = aligned_alloc(64, psz);
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
    memset(p, 0, psz);
    p->n = nthreads;
    const char *sp = getenv("MT_SPIN_US");
    long us = sp && *sp ? atol(sp) : SPIN_US_DEFAULT;
    if (us < 0) us = 0;
    if (us > 1000000) us = 1000000;
    p->spin_ns = us * 1000L;
    atomic_init(&p->gen, 0);
    atomic_init(&p->claim, 0);
    for (int i = 0; i < 2; i++) {
        atomic_init(&p->jobs[i].fn, NULL);
        atomic_init(&p->jobs[i].ctx, NULL);
        atomic_init(&p->jobs[i].total, 0);
        atomic_init(&p->jobs[i].chunk, 0);
        atomic_init(&p->jobs[i].nchunks, 0);
        atomic_init(&p->jobs[i].done, 0);
    }
    atomic_init(&p->quit, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    p->th = calloc((size_t)nthreads, sizeof *p->th);
    if (!p->th) { free(p); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    for (int i = 1; i < nthreads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) {
            wa->p = p;
            wa->tid = i;
        }
        if (!wa || pthread_create(&p->th[i], NULL, worker, wa) != 0) {
            free(wa);
            p->n = i;
            mt_pool_free(p);
            return mt_seterr(err, MT_ENOMEM, "cannot start thread %d", i);
        }
    }
    *out = p;
    return MT_OK;
}

void mt_pool_free(mt_pool *p) {
    if (!p) return;
    atomic_store_explicit(&p->quit, 1, memory_order_relaxed);
    post(p);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p->th);
    free(p);
}

int mt_pool_size(const mt_pool *p) { return p ? p->n : 1; }

void mt_pool_for(mt_pool *p, size_t n, size_t grain, mt_pool_fn fn, void *ctx) {
    if (n == 0) return;
    if (grain == 0) grain = 1;
    size_t maxchunks = (n + grain - 1) / grain;
    if (!p || p->n == 1 || maxchunks == 1) {
        fn(ctx, 0, n, 0);
        return;
    }
    size_t nt = (size_t)p->n < maxchunks ? (size_t)p->n : maxchunks;
    size_t chunk = (n + nt - 1) / nt;
    /* the caller is the only writer of gen, claim and the job slots */
    unsigned long g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
    pool_job *j = &p->jobs[g & 1];
    atomic_store_explicit(&j->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&j->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&j->total, n, memory_order_relaxed);
    atomic_store_explicit(&j->chunk, chunk, memory_order_relaxed);
    atomic_store_explicit(&j->nchunks, (n + chunk - 1) / chunk, memory_order_relaxed);
    atomic_store_explicit(&j->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->claim, (uint64_t)g << CLAIM_IDX_BITS, memory_order_release);
    post(p);   /* gen = g */
    run_chunks(p, g, 0);
    if (!spin_until(p, all_done, g)) {
        pthread_mutex_lock(&p->mu);
        p->caller_sleeps = 1;
        while (!all_done(p, g)) pthread_cond_wait(&p->done, &p->mu);
        p->caller_sleeps = 0;
        pthread_mutex_unlock(&p->mu);
    }
}
