/* qmath_diff.c - how far the int8-activation kernels (MT_QMATH=int8) move a
 * model's outputs from the exact float kernels: greedy decoding for N steps
 * after a fixed prompt, once per arithmetic, then the int8 logits along the
 * float run's tokens (same contexts).  Prints one JSON line: the largest
 * max|l8 - lf| / max|lf| over the positions, the mean of it, how many argmax
 * agree along the float tokens, and how many free-running greedy tokens agree
 * before the first difference.
 *
 * usage: qmath_diff MODEL_DIR [steps=64] [threads=2] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "core/pool.h"
#include "gen/sample.h"
#include "models/model.h"

static int die(const mt_err *e) {
    fprintf(stderr, "qmath_diff: %s\n", e->msg);
    return 1;
}

/* Greedy run: prompt then steps tokens; logits of every position after the
 * prompt into lg[steps+1][V] (the logits that chose toks[i]); forced != NULL
 * feeds those tokens instead of the argmax. */
static int run(mt_model *m, const int32_t *prompt, size_t np, size_t steps, const int32_t *forced, int32_t *toks,
               float *lg, mt_err *e) {
    size_t V = (size_t)m->hp.vocab;
    mt_kvcache *c = NULL;
    if (mt_kvcache_new(&c, m, e)) return 1;
    int rc = mt_model_forward(m, c, prompt, np, lg, 0, e);
    for (size_t i = 0; !rc && i < steps; i++) {
        toks[i] = forced ? forced[i] : mt_argmax(lg + i * V, V);
        rc = mt_model_forward(m, c, &toks[i], 1, lg + (i + 1) * V, 0, e);
    }
    mt_kvcache_free(c);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: qmath_diff MODEL_DIR [steps=64] [threads=2]\n");
        return 2;
    }
    size_t steps = argc > 2 ? (size_t)atol(argv[2]) : 64;
    int threads = argc > 3 ? atoi(argv[3]) : 2;
    mt_err e = {0};
    mt_pool *pool = NULL;
    mt_model *m = NULL;
    if (mt_pool_new(&pool, threads, &e) || mt_model_load(&m, argv[1], pool, &e)) return die(&e);
    size_t V = (size_t)m->hp.vocab, np = 12;
    int32_t prompt[12], *tf = malloc(steps * 4), *t8 = malloc(steps * 4), *tx = malloc(steps * 4);
    for (size_t i = 0; i < np; i++) prompt[i] = (int32_t)(10 + (i * 7919) % (V > 200 ? V - 100 : V / 2));
    float *lf = malloc((steps + 1) * V * 4), *l8 = malloc((steps + 1) * V * 4);
    setenv("MT_QMATH", "float", 1);
    if (run(m, prompt, np, steps, NULL, tf, lf, &e)) return die(&e);
    setenv("MT_QMATH", "int8", 1);
    if (run(m, prompt, np, steps, NULL, t8, l8, &e)) return die(&e);
    size_t agree_free = 0;
    while (agree_free < steps && tf[agree_free] == t8[agree_free]) agree_free++;
    if (run(m, prompt, np, steps, tf, tx, l8, &e)) return die(&e);
    double worst = 0, mean = 0;
    size_t agree_forced = 0;
    for (size_t i = 0; i <= steps; i++) {
        const float *a = lf + i * V, *b = l8 + i * V;
        double d = 0, s = 0;
        for (size_t k = 0; k < V; k++) {
            d = fmax(d, fabs((double)a[k] - b[k]));
            s = fmax(s, fabs((double)a[k]));
        }
        double r = d / (s > 0 ? s : 1);
        worst = fmax(worst, r);
        mean += r / (double)(steps + 1);
        agree_forced += mt_argmax(a, V) == mt_argmax(b, V);
    }
    printf("{\"model\":\"%s\",\"steps\":%zu,\"max_rel_logit_diff\":%.4g,\"mean_rel_logit_diff\":%.4g,"
           "\"argmax_agree_forced\":\"%zu/%zu\",\"greedy_agree_free\":\"%zu/%zu\"}\n",
           argv[1], steps, worst, mean, agree_forced, steps + 1, agree_free, steps);
    mt_model_free(m);
    mt_pool_free(pool);
    free(tf); free(t8); free(tx); free(lf); free(l8);
    return 0;
}
