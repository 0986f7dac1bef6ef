/* qwen3_asr_run.c - ours for bench/stt/qwen3_asr.sh: transcribe one file with a Qwen3-ASR
 * folder as mt_asr_transcribe does (chunks, greedy decoding, text), with a token budget
 * (mlx-stt has no --max-tokens, and random weights rarely stop on their own), timing the
 * load and the transcription.  One JSON line on stdout.
 *
 *   qwen3_asr_run DIR AUDIO THREADS MAX_TOKENS [LANGUAGE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audio/audio.h"
#include "core/pool.h"
#include "models/qwen3_asr.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s DIR AUDIO THREADS MAX_TOKENS [LANGUAGE]\n", argv[0]);
        return 2;
    }
    mt_err err = {0};
    mt_pool *pool = NULL;
    mt_audio a = {0};
    mt_qwen3_asr *q = NULL;
    if (mt_pool_new(&pool, atoi(argv[3]), &err) || mt_audio_load(&a, argv[2], 16000, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double t0 = now();
    if (mt_qwen3_asr_load(&q, argv[1], pool, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    double t1 = now();
    int budget = atoi(argv[4]);
    const char *lang = argc > 5 ? argv[5] : NULL;
    size_t *st = NULL, nc = 0, ntok = 0;
    int32_t *ids = malloc((size_t)budget * sizeof *ids);
    if (mt_qwen3_asr_split(a.pcm, a.n, 1200.0, &st, &nc, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    for (size_t c = 0; c < nc && (long)ntok < budget; c++) {
        size_t len = st[c + 1] - st[c], pl = len < 16000 ? 16000 : len, n = 0;
        float *x = calloc(pl, sizeof *x);
        memcpy(x, a.pcm + st[c], len * sizeof *x);
        if (mt_qwen3_asr_decode_chunk(q, x, pl, lang, budget - (int)ntok, ids, &n, NULL, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        ntok += n;
        free(x);
    }
    double t2 = now(), dur = (double)a.n / 16000.0;
    printf("{\"impl\": \"ours\", \"threads\": %s, \"audio_s\": %.3f, \"load_s\": %.3f, \"transcribe_s\": %.3f, "
           "\"rtf\": %.4f, \"tokens\": %zu, \"chunks\": %zu}\n",
           argv[3], dur, t1 - t0, t2 - t1, (t2 - t1) / dur, ntok, nc);
    free(ids);
    free(st);
    mt_qwen3_asr_free(q);
    mt_audio_clear(&a);
    mt_pool_free(pool);
    return 0;
}
