/* pool.c - a fixed set of worker threads woken per parallel-for by a generation counter. */
#include "core/pool.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

struct mt_pool {
    int n;                 /* threads including the caller */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen;     /* bumped for each job */
    int pending;           /* workers still running the current job */
    int quit;
    mt_pool_fn fn;
    void *ctx;
    size_t total, chunk;
};

typedef struct { mt_pool *p; int tid; } worker_arg;

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
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->gen == seen) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        run_chunk(p, tid);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
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
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
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
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->total = n;
    p->chunk = (n + nt - 1) / nt;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    run_chunk(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
