/* test_kokoro_real.c - the real Kokoro-82M (local-models/Kokoro-82M, written by make kokoro)
 * against mlx-audio 0.6.2 on the same folder: tests/data/real/kokoro/goldens.safetensors
 * (tests/gen/gen_kokoro_real_goldens.py) holds, per sentence, mlx-audio's per-token
 * durations and waveform with the harmonic source's draws replaced by deterministic
 * stand-ins that this test recomputes.  Checked: durations identical; the waveform SNR over
 * all sentences (signal and error energies summed) >= 40 dB, and each sentence's >= 35 dB.
 *
 * Why not 40 dB per sentence: the harmonic source integrates F0 into phases of ~1e4 rad and
 * the generator reads the atan2 phase of the source's STFT, so F0 values one float32 ulp
 * apart already move the waveform: mlx-audio against itself with F0 nudged by one ulp gives
 * 43.8 dB on sentence 0 (tests/gen/kokoro_f0_sensitivity.py), ours with our own F0 nudged
 * 42.8, 46.3, 51.2 and 43.5 dB on the four sentences.  An F0 that is not bit-identical to
 * mlx's cannot do better than that floor, sentence by sentence.
 * Skipped with a message when the folder is absent. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/file.h"
#include "core/pool.h"
#include "models/kokoro.h"
#include "kokoro_golden.h"
#include "tts_ops_golden.h"

#define DIR "local-models/Kokoro-82M"
#define GOLD "tests/data/real/kokoro/goldens.safetensors"

static double sig_all, err_all;

static void sentence(const mt_kokoro *k, const mt_safetensors *g, int c, const char *ps, const float *pack,
                     size_t rows) {
    char cs[16];
    snprintf(cs, sizeof cs, "%d", c);
    mt_err e = {0};
    size_t nd = 0, na = 0, n = 0, len = 0;
    float *durr = gold(g, cs, "dur", &nd), *aud = gold(g, cs, "audio", &na), *wav = NULL;
    int *ids = NULL;
    mt_kokoro_trace tr = {0};
    CHECK_MSG(durr && aud, "sentence %d: goldens missing", c);
    if (!durr || !aud) goto out;
    CHECK_OK(mt_kokoro_ids(k, ps, &ids, &n, &e), &e);
    if (!ids) goto out;
    mt_kokoro_opts o = {0, 0, det_draws, NULL};
    int rc = mt_kokoro_synth(k, ids, n, mt_kokoro_voice_row(k, pack, rows, n_codepoints(ps)), 1.0f, &o, &wav, &len,
                             &tr, &e);
    CHECK_OK(rc, &e);
    if (rc) goto out;
    int same = tr.T == nd;
    for (size_t t = 0; same && t < nd; t++) same = tr.dur[t] == (int)durr[t];
    printf("  %d durations %s (%zu tokens, %zu frames)\n", c, same ? "identical" : "DIFFER", tr.T, tr.F);
    CHECK_MSG(same, "sentence %d: durations differ from mlx-audio's", c);
    CHECK_MSG(len == na, "sentence %d: %zu samples, mlx-audio %zu", c, len, na);
    if (same && len == na) {
        double snr = snr_db(wav, aud, len);
        for (size_t i = 0; i < len; i++) {
            double d = (double)wav[i] - aud[i];
            sig_all += (double)aud[i] * aud[i];
            err_all += d * d;
        }
        printf("  %d waveform: %zu samples, SNR %.1f dB against mlx-audio\n", c, len, snr);
        CHECK_MSG(snr >= 35.0, "sentence %d: SNR %.1f dB < 35", c, snr);
    }
out:
    mt_kokoro_trace_free(&tr);
    free(ids); free(wav); free(durr); free(aud);
}

/* mt_kokoro_int8: the first sentence again with the generator's convs in int8: the same
 * durations and length, waveform SNR against the float output >= 20 dB (about 28) */
static void test_int8(mt_kokoro *k, const char *phon, const float *pack, size_t rows) {
    char *ps = strndup(phon, strcspn(phon, "\n"));
    int *ids = NULL, n8 = 0;
    size_t n = 0, l0 = 0, l1 = 0;
    float *w0 = NULL, *w1 = NULL;
    mt_err e = {0};
    mt_kokoro_opts o = {0, 0, det_draws, NULL};
    const float *row = mt_kokoro_voice_row(k, pack, rows, n_codepoints(ps));
    CHECK_OK(mt_kokoro_ids(k, ps, &ids, &n, &e), &e);
    CHECK_OK(mt_kokoro_synth(k, ids, n, row, 1.0f, &o, &w0, &l0, NULL, &e), &e);
    CHECK_OK(mt_kokoro_int8(k, &n8, &e), &e);
    CHECK_OK(mt_kokoro_synth(k, ids, n, row, 1.0f, &o, &w1, &l1, NULL, &e), &e);
    CHECK_MSG(n8 > 0 && w0 && w1 && l0 == l1, "int8: %d convs converted, %zu and %zu samples", n8, l0, l1);
    if (w0 && w1 && l0 == l1) {
        double snr = snr_db(w1, w0, l0);
        printf("  int8 (%d convs): sentence 0 at SNR %.1f dB against the float output\n", n8, snr);
        CHECK_MSG(snr >= 20.0 && snr < 60.0, "int8: SNR %.1f dB", snr);
    }
    free(ps); free(ids); free(w0); free(w1);
}

int main(void) {
    if (!mt_file_exists(DIR "/config.json")) {
        printf("kokoro_real: skipped: %s missing (run make kokoro or make real-models)\n", DIR);
        return 0;
    }
    mt_err e = {0};
    mt_pool *pool = NULL;
    mt_kokoro *k = NULL;
    mt_safetensors *g = NULL;
    float *pack = NULL;
    size_t rows = 0;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    CHECK_OK(mt_safetensors_open(&g, GOLD, &e), &e);
    CHECK_OK(mt_kokoro_load(DIR, pool, &k, &e), &e);
    json_t *meta = g ? mt_safetensors_metadata(g) : NULL;
    const char *voice = json_string_value(json_object_get(meta, "voice"));
    const char *phon = json_string_value(json_object_get(meta, "phonemes"));
    CHECK_MSG(voice && phon, "goldens without voice/phonemes metadata");
    if (k && voice && phon) {
        CHECK_OK(mt_kokoro_voice_load(k, DIR, voice, &pack, &rows, &e), &e);
        char *all = strdup(phon), *save = NULL, *all2 = strdup(phon);
        int c = 0;
        for (char *ps = strtok_r(all, "\n", &save); ps && pack; ps = strtok_r(NULL, "\n", &save)) sentence(k, g, c++, ps, pack, rows);
        CHECK_MSG(c >= 4, "%d sentences in the goldens", c);
        double snr = err_all > 0 ? 10 * log10(sig_all / err_all) : INFINITY;
        printf("  all sentences: waveform SNR %.1f dB against mlx-audio\n", snr);
        CHECK_MSG(snr >= 40.0, "waveform SNR over all sentences %.1f dB < 40", snr);
        test_int8(k, all2, pack, rows);
        free(all2);
        free(all);
    }
    free(pack);
    mt_kokoro_free(k);
    mt_safetensors_free(g);
    mt_pool_free(pool);
    return check_report("test_kokoro_real");
}
