/* test_vad.c - the energy VAD on synthetic signals: tone bursts between
 * silences (with a faint noise floor) must come back as padded regions within
 * 50 ms of the truth; short gaps merge, clicks are dropped, too many regions
 * merge to fit, bad arguments fail. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "stt/vad.h"

typedef struct burst { double a, z, amp; } burst;

static float *synth(int rate, double dur, const burst *b, size_t nb, size_t *n) {
    *n = (size_t)(dur * rate);
    float *x = malloc(*n * sizeof *x);
    uint32_t s = 12345;
    for (size_t i = 0; i < *n; i++) {
        s = s * 1664525u + 1013904223u;
        double t = (double)i / rate, v = 0.001 * ((double)(s >> 8) / (1 << 24) * 2 - 1);   /* ~-65 dBFS noise */
        for (size_t k = 0; k < nb; k++)
            if (t >= b[k].a && t < b[k].z) v += b[k].amp * sin(2 * M_PI * 440 * t) + 0.5 * b[k].amp * sin(2 * M_PI * 1234 * t);
        x[i] = (float)v;
    }
    return x;
}

static void expect(const double *got, int ng, const double *want, int nw) {
    CHECK_EQ_INT(ng, nw);
    for (int i = 0; i < ng && i < nw; i++)
        CHECK_MSG(fabs(got[i] - want[i]) <= 0.05, "clip[%d] = %.3f, want %.3f", i, got[i], want[i]);
}

int main(void) {
    double c[64];
    int nc = -1;
    for (int ri = 0; ri < 2; ri++) {
        int rate = ri ? 44100 : 16000;
        burst b[] = {{1.0, 2.5, 0.3}, {5.0, 5.7, 0.2}, {6.2, 7.0, 0.05}, {9.0, 9.02, 0.5}, {11.0, 11.9, 0.3}};
        size_t n;
        float *x = synth(rate, 12.0, b, 5, &n);
        CHECK_EQ_INT(mt_stt_vad(x, n, rate, -45, c, 64, &nc), MT_OK);
        double want[] = {0.8, 2.7, 4.8, 7.2, 10.8, 12.0};
        expect(c, nc, want, 6);
        /* a threshold above the bursts' level finds nothing */
        CHECK_EQ_INT(mt_stt_vad(x, n, rate, -5, c, 64, &nc), MT_OK);
        CHECK_EQ_INT(nc, 0);
        /* a higher threshold loses the quiet burst (0.05 amplitude, about -30 dBFS) */
        CHECK_EQ_INT(mt_stt_vad(x, n, rate, -25, c, 64, &nc), MT_OK);
        double want2[] = {0.8, 2.7, 4.8, 5.9, 10.8, 12.0};
        expect(c, nc, want2, 6);
        /* room for two regions: the closest ones merge */
        CHECK_EQ_INT(mt_stt_vad(x, n, rate, -45, c, 4, &nc), MT_OK);
        double want3[] = {0.8, 7.2, 10.8, 12.0};
        expect(c, nc, want3, 4);
        CHECK_EQ_INT(mt_stt_vad(x, n, rate, -45, c, 3, &nc), MT_OK);   /* odd capacity: one region */
        double want4[] = {0.8, 12.0};
        expect(c, nc, want4, 2);
        free(x);
    }
    /* speech from the first sample; padding clipped at 0 */
    burst b0[] = {{0.0, 0.5, 0.3}};
    size_t n;
    float *x = synth(16000, 3.0, b0, 1, &n);
    CHECK_EQ_INT(mt_stt_vad(x, n, 16000, -45, c, 64, &nc), MT_OK);
    double want[] = {0.0, 0.7};
    expect(c, nc, want, 2);
    /* silence only; empty input */
    for (size_t i = 0; i < n; i++) x[i] = 0;
    CHECK_EQ_INT(mt_stt_vad(x, n, 16000, -45, c, 64, &nc), MT_OK);
    CHECK_EQ_INT(nc, 0);
    CHECK_EQ_INT(mt_stt_vad(x, 0, 16000, -45, c, 64, &nc), MT_OK);
    CHECK_EQ_INT(nc, 0);
    CHECK_EQ_INT(mt_stt_vad(x, n, 0, -45, c, 64, &nc), MT_EINVAL);
    CHECK_EQ_INT(mt_stt_vad(x, n, 16000, -45, c, 1, &nc), MT_EINVAL);
    CHECK_EQ_INT(mt_stt_vad(NULL, 5, 16000, -45, c, 64, &nc), MT_EINVAL);
    free(x);
    return check_report("vad");
}
