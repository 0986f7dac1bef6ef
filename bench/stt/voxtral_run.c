/* voxtral_run.c - ours for bench/stt/voxtral.sh: transcribe one file with a Voxtral folder
 * as the mt_asr_voxtral family does (features, audio tower, projector, one prompt, greedy
 * decoding), with a token budget (random weights rarely stop), timing the load and the
 * transcription.  One JSON line on stdout.  Until mlx-stt runs non-Whisper folders, this is
 * the way to time ours; afterwards `mlx-stt -m DIR FILE` runs the same code.
 *
 *   voxtral_run DIR AUDIO THREADS MAX_TOKENS [LANGUAGE] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audio/audio.h"
#include "core/pool.h"
#include "models/voxtral.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int die(const mt_err *err) {
    fprintf(stderr, "%s\n", err->msg);
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s DIR AUDIO THREADS MAX_TOKENS [LANGUAGE]\n", argv[0]);
        return 2;
    }
    mt_err err = {0};
    mt_pool *pool = NULL;
    mt_audio a = {0};
    mt_voxtral *v = NULL;
    if (mt_pool_new(&pool, atoi(argv[3]), &err) || mt_audio_load(&a, argv[2], 16000, &err)) return die(&err);
    double t0 = now();
    if (mt_voxtral_load(&v, argv[1], pool, &err)) return die(&err);
    double t1 = now();
    const mt_voxtral_info *in = mt_voxtral_info_of(v);
    const char *lang = argc > 5 ? argv[5] : "en";
    float *mel = NULL, *rows = NULL;
    int32_t *prompt = NULL, *ids = NULL;
    size_t nc = 0, np = 0, ni = 0;
    char *text = NULL;
    if (mt_voxtral_features(v, a.pcm, a.n, &mel, &nc, &err)) return die(&err);
    rows = malloc(nc * (size_t)in->rows_per_chunk * (size_t)in->hidden * sizeof *rows);
    if (!rows || mt_voxtral_audio_rows(v, mel, nc, rows, &err)) return die(&err);
    double t_enc = now();
    if (mt_voxtral_prompt(v, nc, lang, &prompt, &np, &err) ||
        mt_voxtral_generate(v, prompt, np, rows, nc * (size_t)in->rows_per_chunk, atoi(argv[4]), &ids, &ni, NULL,
                            &err) ||
        mt_voxtral_detok(v, ids, ni, &text, &err))
        return die(&err);
    double t2 = now(), dur = (double)a.n / 16000.0;
    printf("{\"impl\": \"ours\", \"threads\": %s, \"audio_s\": %.3f, \"load_s\": %.3f, \"encode_s\": %.3f, "
           "\"transcribe_s\": %.3f, \"rtf\": %.4f, \"tokens\": %zu, \"prompt_tokens\": %zu, \"chunks\": %zu}\n",
           argv[3], dur, t1 - t0, t_enc - t1, t2 - t1, (t2 - t1) / dur, ni, np, nc);
    free(text);
    free(ids);
    free(prompt);
    free(rows);
    free(mel);
    mt_voxtral_free(v);
    mt_audio_clear(&a);
    mt_pool_free(pool);
    return 0;
}
