/* test_istft.c - audio/istft against mlx-audio's MLXSTFT (transform and
 * inverse, tests/data/tts_ops/istft.safetensors), the round trip, errors. */
#include <stdlib.h>
#include <string.h>
#include "audio/istft.h"
#include "core/pool.h"
#include "tts_ops_golden.h"

/* phases are compared on the circle: +pi and -pi are the same angle */
static double phase_err(const float *got, const float *ref, size_t n) {
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (d > M_PI) d = fabs(d - 2 * M_PI);
        if (!(d <= worst)) worst = d;
    }
    return worst;
}

static void run_case(const mt_safetensors *st, const char *cs, mt_pool *pool) {
    size_t nhp = 0, nx = 0, nm = 0, niy = 0, nrt = 0;
    float *hp = gold(st, cs, "hp", &nhp), *x = gold(st, cs, "x", &nx), *mr = gold(st, cs, "mag", &nm);
    float *pr = gold(st, cs, "phase", NULL), *im = gold(st, cs, "imag", NULL), *ip = gold(st, cs, "iphase", NULL);
    float *iy = gold(st, cs, "iy", &niy), *rt = gold(st, cs, "rt", &nrt);
    int ok = hp && nhp == 4 && x && mr && pr && im && ip && iy && rt;
    CHECK_MSG(ok, "%s: golden tensors missing", cs);
    mt_stft *s = NULL;
    mt_err e = {0};
    if (ok) CHECK_OK(mt_stft_new(&s, (int)hp[0], (int)hp[1], (int)hp[3], NULL, &e), &e);
    if (ok && s) {
        size_t L = (size_t)hp[2], F = mt_stft_frames(s, L), nb = (size_t)mt_stft_bins(s);
        CHECK_EQ_INT(nb * F, nm);
        CHECK_EQ_INT(mt_istft_len(s, F), niy);
        float *mag = calloc(nb * F, sizeof(float)), *ph = calloc(nb * F, sizeof(float));
        float *y = calloc(niy + 1, sizeof(float));
        if (mag && ph && y && nb * F == nm && mt_istft_len(s, F) == niy && niy == nrt) {
            char label[64];
            CHECK_OK(mt_stft_forward(s, x, L, mag, ph, pool, &e), &e);
            snprintf(label, sizeof label, "%s stft magnitude%s", cs, pool ? " (pool)" : "");
            check_close(label, mag, mr, nm);
            /* as numbers, except a real negative bin: its phase is +pi here, and
             * +pi or -pi in mlx by the sign of its FFT's rounding noise in the
             * imaginary part (frame 0 under reflect padding is symmetric, so its
             * spectrum is real up to rounding); those are counted and reported */
            size_t flips = 0;
            double worst = 0.0;
            for (size_t i = 0; i < nm; i++) {
                double d = fabs((double)ph[i] - pr[i]);
                if (d > 1e-4 && fabs(fabs(pr[i]) - M_PI) < 1e-5 && fabs(ph[i] - M_PI) < 1e-5) {
                    flips++;
                    continue;
                }
                if (!(d <= worst)) worst = d;
            }
            snprintf(label, sizeof label, "%s stft phase%s", cs, pool ? " (pool)" : "");
            printf("  %-28s n=%-7zu max err %.3g (%zu real negative bins +pi, mlx -pi)\n", label, nm, worst, flips);
            CHECK_MSG(worst <= TTS_TOL, "%s phase: %g", cs, worst);
            CHECK(flips <= 20);
            double pe = phase_err(ph, pr, nm);
            CHECK_MSG(pe <= TTS_TOL, "%s phase on the circle: %g", cs, pe);
            CHECK_OK(mt_istft(s, im, ip, F, y, pool, &e), &e);
            snprintf(label, sizeof label, "%s istft%s", cs, pool ? " (pool)" : "");
            check_close(label, y, iy, niy);
            CHECK_OK(mt_istft(s, mr, pr, F, y, pool, &e), &e);
            snprintf(label, sizeof label, "%s round trip%s", cs, pool ? " (pool)" : "");
            check_close(label, y, rt, nrt);
            CHECK(max_err(y, x, nrt < L ? nrt : L) <= 1e-5);   /* and it is the input again */
        }
        free(mag);
        free(ph);
        free(y);
    }
    mt_stft_free(s);
    free(hp); free(x); free(mr); free(pr); free(im); free(ip); free(iy); free(rt);
}

static void test_errors(void) {
    mt_stft *s = NULL;
    mt_err e = {0};
    CHECK_EQ_INT(mt_stft_new(&s, 15, 5, 15, NULL, &e), MT_EINVAL);   /* odd n_fft */
    CHECK_EQ_INT(mt_stft_new(&s, 20, 0, 20, NULL, &e), MT_EINVAL);
    CHECK_EQ_INT(mt_stft_new(&s, 20, 5, 21, NULL, &e), MT_EINVAL);
    CHECK(s == NULL);
    CHECK_OK(mt_stft_new(&s, 20, 5, 20, NULL, &e), &e);
    float x[10] = {0}, m[11 * 3], p[11 * 3];
    CHECK_EQ_INT(mt_stft_frames(s, 10), 0);
    CHECK_EQ_INT(mt_stft_forward(s, x, 10, m, p, NULL, &e), MT_EINVAL);
    CHECK(strstr(e.msg, "too short") != NULL);
    CHECK_EQ_INT(mt_stft_frames(s, 11), 3);
    CHECK_EQ_INT(mt_istft(s, m, p, 0, x, NULL, &e), MT_EINVAL);
    mt_stft_free(s);
    mt_stft_free(NULL);
    /* a window shorter than n_fft is centred: the frame's ends get zero weight */
    CHECK_OK(mt_stft_new(&s, 8, 2, 4, NULL, &e), &e);
    mt_stft_free(s);
}

int main(void) {
    mt_err e = {0};
    mt_safetensors *st = NULL;
    int rc = mt_safetensors_open(&st, "tests/data/tts_ops/istft.safetensors", &e);
    CHECK_OK(rc, &e);
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    if (!rc)
        for (int p = 0; p < 2; p++) {
            run_case(st, "k20", p ? pool : NULL);
            run_case(st, "k16h4", p ? pool : NULL);
            run_case(st, "k16w12", p ? pool : NULL);   /* window shorter than n_fft */
        }
    test_errors();
    mt_pool_free(pool);
    mt_safetensors_free(st);
    return check_report("test_istft");
}
