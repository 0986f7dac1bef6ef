/* test_snac.c - the SNAC decoder (audio/snac.h) against mlx-audio 0.6.2 on the tiny
 * random-weight 24 kHz-layout codec tests/data/snac-tiny (tests/gen/gen_orpheus_fixtures.py):
 * three fixed code sequences (1, 3, 5 frames) decoded with the noise blocks off, each
 * waveform's length equal and SNR >= 40 dB; then seeded noise (reproducible, different),
 * out-of-range codes, and broken folders. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "audio/snac.h"
#include "check.h"
#include "core/pool.h"
#include "io/safetensors.h"

#define DIR "tests/data/snac-tiny"

static double snr_db(const float *got, const float *ref, size_t n) {
    double sig = 0, noise = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        sig += (double)ref[i] * ref[i];
        noise += d * d;
    }
    return noise > 0 ? 10 * log10(sig / noise) : INFINITY;
}

/* A golden tensor as a malloc'd copy (float32 or int32). */
static void *gold(const mt_safetensors *g, const char *name, size_t *n) {
    const mt_tensor_view *t = mt_safetensors_get(g, name);
    if (!t) return NULL;
    *n = mt_tensor_numel(t);
    void *p = malloc(t->nbytes + 1);
    if (p) memcpy(p, t->data, t->nbytes);
    return p;
}

static void case_decode(const mt_snac *s, const mt_safetensors *g, const char *cs) {
    char nm[64];
    int32_t *codes[3] = {0};
    size_t n[3] = {0}, nw = 0;
    for (int i = 0; i < 3; i++) {
        snprintf(nm, sizeof nm, "%s.codes%d", cs, i);
        codes[i] = gold(g, nm, &n[i]);
        CHECK_MSG(codes[i] != NULL, "%s missing", nm);
    }
    snprintf(nm, sizeof nm, "%s.wav", cs);
    float *ref = gold(g, nm, &nw), *wav = NULL;
    CHECK(ref != NULL);
    if (codes[0] && codes[1] && codes[2] && ref) {
        mt_err e = {0};
        size_t len = 0;
        CHECK_OK(mt_snac_decode(s, (const int32_t *const *)codes, n[0], NULL, &wav, &len, &e), &e);
        CHECK_EQ_INT(len, nw);
        CHECK_EQ_INT(mt_snac_out_len(s, n[0]), nw);
        if (wav && len == nw) {
            double db = snr_db(wav, ref, nw);
            printf("snac case %s: %zu frames, %zu samples, SNR %.1f dB\n", cs, n[0], nw, db);
            CHECK_MSG(db >= 40, "case %s: SNR %.1f dB < 40", cs, db);
        }
        /* seeded noise: reproducible, not the noiseless waveform */
        float *w1 = NULL, *w2 = NULL;
        size_t l1 = 0, l2 = 0;
        mt_snac_opts o = {.noise = 1, .seed = 7};
        CHECK_OK(mt_snac_decode(s, (const int32_t *const *)codes, n[0], &o, &w1, &l1, &e), &e);
        CHECK_OK(mt_snac_decode(s, (const int32_t *const *)codes, n[0], &o, &w2, &l2, &e), &e);
        CHECK(w1 && w2 && l1 == nw && l2 == nw && memcmp(w1, w2, nw * sizeof *w1) == 0);
        if (w1 && wav && l1 == len) CHECK(snr_db(w1, wav, nw) < 60);
        free(w1);
        free(w2);
    }
    free(wav);
    free(ref);
    for (int i = 0; i < 3; i++) free(codes[i]);
}

static void bad_folder(const char *tag, const char *cfg, int want) {
    char dir[] = "/tmp/snac-test-XXXXXX", p[512], q[512];
    if (!mkdtemp(dir)) return;
    snprintf(p, sizeof p, "%s/config.json", dir);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(cfg, f);
        fclose(f);
    }
    snprintf(q, sizeof q, "%s/model.safetensors", dir);
    if (symlink(realpath(DIR "/model.safetensors", p) ? p : DIR "/model.safetensors", q)) {}
    mt_snac *s = NULL;
    mt_err e = {0};
    int rc = mt_snac_load(&s, dir, NULL, &e);
    CHECK_MSG(rc == want && !s, "%s: rc %d (want %d): %s", tag, rc, want, e.msg);
    CHECK_MSG(strchr(e.msg, '\n') == NULL && e.msg[0], "%s: message '%s'", tag, e.msg);
    mt_snac_free(s);
    unlink(q);
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    rmdir(dir);
}

int main(void) {
    mt_err e = {0};
    mt_pool *pool = NULL;
    mt_snac *s = NULL;
    mt_safetensors *g = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    int rc = mt_snac_load(&s, DIR, pool, &e);
    CHECK_OK(rc, &e);
    if (!rc) rc = mt_safetensors_open(&g, DIR "/golden.safetensors", &e);
    CHECK_OK(rc, &e);
    if (!rc) {
        const mt_snac_info *I = mt_snac_get_info(s);
        CHECK_EQ_INT(I->sample_rate, 24000);
        CHECK_EQ_INT(I->n_books, 3);
        CHECK(I->strides[0] == 4 && I->strides[1] == 2 && I->strides[2] == 1);
        CHECK_EQ_INT(I->latent_dim, 32);
        case_decode(s, g, "a");
        case_decode(s, g, "b");
        case_decode(s, g, "c");
        /* codes out of range, no frames */
        int32_t c0[1] = {0}, c1[2] = {0, 4096}, c2[4] = {0, 1, 2, 3};
        const int32_t *cs[3] = {c0, c1, c2};
        float *wav = NULL;
        size_t len = 0;
        CHECK(mt_snac_decode(s, cs, 1, NULL, &wav, &len, &e) == MT_EINVAL && !wav);
        CHECK(strstr(e.msg, "codebook 1: code 4096 at position 1") != NULL);
        c1[1] = -1;
        CHECK(mt_snac_decode(s, cs, 1, NULL, &wav, &len, &e) == MT_EINVAL && !wav);
        CHECK(mt_snac_decode(s, cs, 0, NULL, &wav, &len, &e) == MT_EINVAL && !wav);
    }
    /* broken folders */
    mt_snac *none = NULL;
    CHECK(mt_snac_load(&none, "tests/data/no-such-snac", NULL, &e) == MT_ENOTFOUND && !none);
    bad_folder("attention", "{\"sampling_rate\": 24000, \"encoder_dim\": 2, \"encoder_rates\": [2, 4, 8, 8],"
               " \"decoder_dim\": 32, \"decoder_rates\": [8, 8, 4, 2], \"vq_strides\": [4, 2, 1]}", MT_EUNSUPPORTED);
    bad_folder("widths", "{\"sampling_rate\": 24000, \"encoder_dim\": 2, \"encoder_rates\": [2, 4, 8, 8],"
               " \"decoder_dim\": 64, \"decoder_rates\": [8, 8, 4, 2], \"attn_window_size\": null,"
               " \"vq_strides\": [4, 2, 1]}", MT_EFORMAT);
    bad_folder("strides", "{\"sampling_rate\": 24000, \"encoder_dim\": 2, \"encoder_rates\": [2, 4, 8, 8],"
               " \"decoder_dim\": 32, \"decoder_rates\": [8, 8, 4, 2], \"attn_window_size\": null,"
               " \"vq_strides\": [4, 3, 1]}", MT_EFORMAT);
    bad_folder("json", "{\"decoder_rates\": [8, \"x\"], \"attn_window_size\": null}", MT_EFORMAT);
    mt_safetensors_free(g);
    mt_snac_free(s);
    mt_pool_free(pool);
    return check_report("test_snac");
}
