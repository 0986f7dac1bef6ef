/* test_orpheus.c - Orpheus (tts/orpheus.h) against mlx-audio 0.6.2 on the tiny random-weight
 * folders tests/data/orpheus-tiny + tests/data/snac-tiny (tests/gen/gen_orpheus_fixtures.py):
 * prompt ids, the first step's logits at probe ids, greedy ids (repetition penalty 1.3 over
 * 20 tokens, as mlx-audio's defaults) identical for three prompts (one of two segments), and
 * the end-to-end waveforms (SNR >= 40 dB); then the token -> code mapping, seeded sampling
 * and a missing codec. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "core/pool.h"
#include "io/safetensors.h"
#include "tts/orpheus.h"
#include "tts/tts.h"

#define DIR "tests/data/orpheus-tiny/model"
#define GOLD "tests/data/orpheus-tiny"
#define CODEC "tests/data/snac-tiny"

static double snr_db(const float *got, const float *ref, size_t n) {
    double sig = 0, noise = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        sig += (double)ref[i] * ref[i];
        noise += d * d;
    }
    return noise > 0 ? 10 * log10(sig / noise) : INFINITY;
}

static int ids_equal(const int32_t *a, size_t n, json_t *arr, size_t from) {
    if (json_array_size(arr) != from + n) return 0;
    for (size_t i = 0; i < n; i++)
        if (json_integer_value(json_array_get(arr, from + i)) != a[i]) return 0;
    return 1;
}

static void run_case(mt_orpheus *o, json_t *run, json_t *probe, const mt_safetensors *g, int ri, int max_tokens) {
    mt_err e = {0};
    const char *voice = json_string_value(json_object_get(run, "voice"));
    const char *text = json_string_value(json_object_get(run, "text"));
    json_t *seqs = json_object_get(run, "sequences");
    /* segments of the text, as mt_orpheus_synth cuts it */
    char *t = strdup(text), *save = NULL;
    size_t si = 0;
    for (char *seg = strtok_r(t, "\n", &save); seg; seg = strtok_r(NULL, "\n", &save), si++) {
        int32_t *ids = NULL, *gen = NULL;
        size_t n = 0, ng = 0;
        CHECK_OK(mt_orpheus_prompt(o, voice, seg, &ids, &n, &e), &e);
        json_t *seq = json_array_get(seqs, si);
        int ok = seq && ids && json_array_size(seq) > n;
        for (size_t i = 0; ok && i < n; i++) ok = json_integer_value(json_array_get(seq, i)) == ids[i];
        CHECK_MSG(ok, "run %d segment %zu: prompt ids differ", ri, si);
        if (si == 0) {   /* prompt ids as prepare_input_ids, and the first step's logits */
            json_t *pi = json_object_get(run, "prompt_ids");
            CHECK_MSG(ids && ids_equal(ids, n, pi, 0), "run %d: prompt ids differ from prepare_input_ids", ri);
            mt_kvcache *c = NULL;
            float *lg = malloc((size_t)o->lm->hp.vocab * sizeof *lg);
            CHECK_OK(mt_kvcache_new(&c, o->lm, &e), &e);
            if (c && lg && ids) {
                CHECK_OK(mt_model_forward(o->lm, c, ids, n, lg, 0, &e), &e);
                json_t *pl = json_object_get(run, "probe_logits");
                double worst = 0;
                for (size_t k = 0; k < json_array_size(probe); k++) {
                    double d = fabs(lg[json_integer_value(json_array_get(probe, k))] -
                                    json_real_value(json_array_get(pl, k)));
                    if (d > worst) worst = d;
                }
                CHECK_MSG(worst < 1e-4, "run %d: probe logits differ by %g", ri, worst);
            }
            free(lg);
            mt_kvcache_free(c);
        }
        mt_orpheus_opts op;
        mt_orpheus_opts_default(&op);
        op.temp = 0;
        op.max_tokens = max_tokens;
        op.kv_f16 = 0;
        if (ids) {
            CHECK_OK(mt_orpheus_generate(o, ids, n, &op, &gen, &ng, &e), &e);
            CHECK_MSG(gen && ids_equal(gen, ng, seq, n), "run %d segment %zu: greedy ids differ (%zu generated)", ri, si,
                      ng);
        }
        free(ids);
        free(gen);
    }
    CHECK_EQ_INT(si, json_array_size(seqs));
    free(t);
    /* end to end: the segments' waveforms joined */
    mt_orpheus_opts op;
    mt_orpheus_opts_default(&op);
    op.temp = 0;
    op.max_tokens = max_tokens;
    op.kv_f16 = 0;
    float *wav = NULL;
    size_t len = 0, want = 0;
    CHECK_OK(mt_orpheus_synth(o, text, voice, &op, &wav, &len, &e), &e);
    float *ref = NULL;
    json_t *names = json_object_get(run, "wavs");
    for (size_t k = 0; k < json_array_size(names); k++) {
        const mt_tensor_view *v = mt_safetensors_get(g, json_string_value(json_array_get(names, k)));
        if (!v) break;
        size_t m = mt_tensor_numel(v);
        float *r2 = realloc(ref, (want + m) * sizeof *ref);
        if (!r2) break;
        ref = r2;
        memcpy(ref + want, v->data, m * sizeof *ref);
        want += m;
    }
    CHECK_MSG(wav && len == want && want > 0, "run %d: %zu samples, expected %zu", ri, len, want);
    if (wav && len == want && want) {
        double db = snr_db(wav, ref, want);
        printf("orpheus run %d: %zu samples, SNR %.1f dB\n", ri, want, db);
        CHECK_MSG(db >= 40, "run %d: SNR %.1f dB", ri, db);
    }
    free(wav);
    free(ref);
}

int main(void) {
    mt_err e = {0};
    mt_pool *pool = NULL;
    mt_orpheus *o = NULL;
    mt_safetensors *g = NULL;
    json_error_t je;
    json_t *gold = json_load_file(GOLD "/golden.json", 0, &je);
    CHECK(gold != NULL);
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    int rc = mt_orpheus_load(&o, DIR, CODEC, pool, &e);
    CHECK_OK(rc, &e);
    if (!rc) rc = mt_safetensors_open(&g, GOLD "/golden.safetensors", &e);
    CHECK_OK(rc, &e);
    if (!rc && gold) {
        CHECK_EQ_INT(mt_orpheus_sample_rate(o), 24000);
        CHECK_EQ_INT(o->eos_tok, MT_ORPHEUS_EOT);
        json_t *runs = json_object_get(gold, "runs");
        int mx = (int)json_integer_value(json_object_get(gold, "max_tokens"));
        for (size_t i = 0; i < json_array_size(runs); i++)
            run_case(o, json_array_get(runs, i), json_object_get(gold, "probe_ids"), g, (int)i, mx);
        /* seeded sampling: reproducible */
        mt_orpheus_opts op;
        mt_orpheus_opts_default(&op);
        op.max_tokens = 30;
        op.seed = 3;
        int32_t *ids = NULL, *g1 = NULL, *g2 = NULL;
        size_t n = 0, n1 = 0, n2 = 0;
        CHECK_OK(mt_orpheus_prompt(o, "tara", "Hi", &ids, &n, &e), &e);
        CHECK_OK(mt_orpheus_generate(o, ids, n, &op, &g1, &n1, &e), &e);
        CHECK_OK(mt_orpheus_generate(o, ids, n, &op, &g2, &n2, &e), &e);
        CHECK(g1 && g2 && n1 == n2 && n1 == 30 && !memcmp(g1, g2, n1 * sizeof *g1));
        free(ids);
        free(g1);
        free(g2);
        /* nothing to speak */
        float *wav = NULL;
        size_t len = 0;
        CHECK(mt_orpheus_synth(o, " \n\\n\t", NULL, &op, &wav, &len, &e) == MT_EINVAL && !wav);
        /* codes out of their slot's range */
        int32_t bad[7] = {0, 4096, 2 * 4096, 3 * 4096, 4 * 4096, 5 * 4096, 5 * 4096};
        CHECK(mt_orpheus_decode(o, bad, 7, NULL, &wav, &len, &e) == MT_EINVAL && !wav);
        CHECK(mt_orpheus_decode(o, bad, 6, NULL, &wav, &len, &e) == MT_EINVAL && !wav);
        bad[6] = 6 * 4096;
        CHECK_OK(mt_orpheus_decode(o, bad, 7, NULL, &wav, &len, &e), &e);
        CHECK(wav && len > 0);
        free(wav);
    }
    /* parse_output: after the last start of speech, end of speech dropped, cut to 7s */
    {
        int32_t ids[] = {5, MT_ORPHEUS_SOS, 9, MT_ORPHEUS_SOS, MT_ORPHEUS_AUDIO0 + 1, MT_ORPHEUS_EOS,
                         MT_ORPHEUS_AUDIO0 + 2, MT_ORPHEUS_AUDIO0 + 3, MT_ORPHEUS_AUDIO0 + 4, MT_ORPHEUS_AUDIO0 + 5,
                         MT_ORPHEUS_AUDIO0 + 6, MT_ORPHEUS_AUDIO0 + 7, MT_ORPHEUS_AUDIO0 + 8, MT_ORPHEUS_EOS};
        int32_t *c = NULL;
        size_t nc = 0;
        CHECK_OK(mt_orpheus_codes(ids, sizeof ids / sizeof *ids, &c, &nc, &e), &e);
        CHECK_EQ_INT(nc, 7);
        CHECK(c && c[0] == 1 && c[6] == 7);
        free(c);
        int32_t none[] = {1, 2, 3};
        CHECK_OK(mt_orpheus_codes(none, 3, &c, &nc, &e), &e);
        CHECK_EQ_INT(nc, 0);
        free(c);
    }
    /* no codec folder */
    mt_orpheus *o2 = NULL;
    CHECK(mt_orpheus_load(&o2, DIR, NULL, pool, &e) == MT_ENOTFOUND && !o2);
    CHECK(strstr(e.msg, "--codec") != NULL);
    int fam = -1;
    CHECK_OK(mt_tts_family(DIR, &fam, &e), &e);
    CHECK_EQ_INT(fam, MT_TTS_ORPHEUS);
    CHECK_OK(mt_tts_family("tests/data/kokoro-tiny/model", &fam, &e), &e);
    CHECK_EQ_INT(fam, MT_TTS_KOKORO);
    CHECK(mt_tts_family("tests/data/models/gemma-tiny", &fam, &e) == MT_EUNSUPPORTED);
    CHECK(strstr(e.msg, "'gemma'") != NULL);
    mt_safetensors_free(g);
    mt_orpheus_free(o);
    mt_pool_free(pool);
    json_decref(gold);
    return check_report("test_orpheus");
}
