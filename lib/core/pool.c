/* pool.c - a fixed set of worker threads that run one parallel-for at a time.
 *
 * Workers and the caller first spin on atomics (with a CPU pause, yielding
 * the CPU now and then) and only then sleep on a condition variable.  A
 * decode step posts hundreds of short jobs; waking a sleeping thread costs
 * tens to hundreds of microseconds (on virtual machines the idle CPU itself
 * must be woken), which on a 2-core machine made the second thread nearly
 * useless for matrix-vector products.  The spin time is bounded ($MT_SPIN_US,
 * default 1000 microseconds; 0 = always sleep), so an idle pool costs no CPU. */
#include "core/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
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

struct mt_pool {
    int n;                 /* threads including the caller */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    atomic_ulong gen;      /* bumped for each job (and at quit) */
    atomic_int pending;    /* workers still running the current job */
    atomic_int quit;
    int sleepers;          /* workers in pthread_cond_wait (under mu) */
    int caller_sleeps;     /* the caller waits on `done` (under mu) */
    long spin_ns;
    mt_pool_fn fn;
    void *ctx;
    size_t total, chunk;
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

static int all_done(const mt_pool *p, unsigned long unused) {
    (void)unused;
    return atomic_load_explicit(&p->pending, memory_order_acquire) == 0;
}

static void run_chunk(mt_pool *p, int tid) {
    size_t b = (size_t)tid * p->chunk;
    if (b >= p->total) return;
    size_t e = b + p->chunk > p->total ? p->total : b + p->chunk;
    p->fn(p->ctx, b, e, tid);
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
        run_chunk(p, tid);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);   /* the last one out wakes a sleeping caller */
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
    mt_pool *p = calloc(1, sizeof *p);
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
    p->n = nthreads;
    const char *sp = getenv("MT_SPIN_US");
    long us = sp && *sp ? atol(sp) : SPIN_US_DEFAULT;
    if (us < 0) us = 0;
    if (us > 1000000) us = 1000000;
    p->spin_ns = us * 1000L;
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
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
    p->fn = fn;
    p->ctx = ctx;
    p->total = n;
    p->chunk = (n + nt - 1) / nt;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    post(p);
    run_chunk(p, 0);
    if (!spin_until(p, all_done, 0)) {
        pthread_mutex_lock(&p->mu);
        p->caller_sleeps = 1;
        while (!all_done(p, 0)) pthread_cond_wait(&p->done, &p->mu);
        p->caller_sleeps = 0;
        pthread_mutex_unlock(&p->mu);
    }
}
