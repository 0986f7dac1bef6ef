/* vad.c - energy voice-activity detection (see vad.h): frame RMS in dBFS
 * against a threshold, then gap merging, click removal and padding. */
#include "stt/vad.h"

#include <math.h>
#include <stdlib.h>

typedef struct region {
    size_t b, e;       /* frames [b, e) */
    size_t speech;     /* speech frames inside */
} region;

int mt_stt_vad(const float *audio, size_t n, int rate, double threshold_db, double *clips, int max_clips,
               int *n_clips) {
    if (!n_clips || !clips || rate <= 0 || max_clips < 2 || (!audio && n)) return MT_EINVAL;
    *n_clips = 0;
    size_t flen = (size_t)rate * MT_VAD_FRAME_MS / 1000;
    if (!flen) flen = 1;
    size_t nf = (n + flen - 1) / flen;
    if (!nf) return MT_OK;
    region *r = malloc(nf * sizeof *r);   /* at most one run per frame */
    if (!r) return MT_ENOMEM;
    /* power threshold: 20 log10(rms) > db  <=>  mean square > 10^(db/10) */
    double thr = pow(10.0, threshold_db / 10.0);
    size_t nr = 0;
    for (size_t f = 0; f < nf; f++) {
        size_t b = f * flen, e = b + flen < n ? b + flen : n;
        double s = 0;
        for (size_t i = b; i < e; i++) s += (double)audio[i] * audio[i];
        /* a short last frame is measured over its own length */
        int sp = s / (double)(e - b) > thr;
        if (!sp) continue;
        if (nr && r[nr - 1].e == f) {
            r[nr - 1].e = f + 1;
            r[nr - 1].speech++;
        } else {
            r[nr++] = (region){f, f + 1, 1};
        }
    }
    /* merge runs separated by short silences */
    size_t gap = ((size_t)MT_VAD_MIN_GAP_MS + MT_VAD_FRAME_MS - 1) / MT_VAD_FRAME_MS, k = 0;
    for (size_t i = 0; i < nr; i++) {
        if (k && r[i].b - r[k - 1].e < gap) {
            r[k - 1].e = r[i].e;
            r[k - 1].speech += r[i].speech;
        } else {
            r[k++] = r[i];
        }
    }
    nr = k;
    /* drop clicks */
    size_t min_sp = ((size_t)MT_VAD_MIN_SPEECH_MS + MT_VAD_FRAME_MS - 1) / MT_VAD_FRAME_MS;
    k = 0;
    for (size_t i = 0; i < nr; i++)
        if (r[i].speech >= min_sp) r[k++] = r[i];
    nr = k;
    /* pad, clip, merge overlaps (in seconds) */
    double dur = (double)n / rate, pad = MT_VAD_PAD_MS / 1000.0, fs = (double)flen / rate;
    double *t = malloc((nr ? nr : 1) * 2 * sizeof *t);
    if (!t) {
        free(r);
        return MT_ENOMEM;
    }
    size_t m = 0;
    for (size_t i = 0; i < nr; i++) {
        double a = r[i].b * fs - pad, z = r[i].e * fs + pad;
        if (a < 0) a = 0;
        if (z > dur) z = dur;
        if (m && a <= t[2 * m - 1]) {
            t[2 * m - 1] = z;
        } else {
            t[2 * m] = a;
            t[2 * m + 1] = z;
            m++;
        }
    }
    free(r);
    /* too many regions: merge across the shortest gaps */
    size_t cap = (size_t)max_clips / 2;
    while (m > cap) {
        size_t best = 1;
        for (size_t i = 2; i < m; i++)
            if (t[2 * i] - t[2 * i - 1] < t[2 * best] - t[2 * best - 1]) best = i;
        t[2 * best - 1] = t[2 * best + 1];
        for (size_t i = best; i + 1 < m; i++) {
            t[2 * i] = t[2 * i + 2];
            t[2 * i + 1] = t[2 * i + 3];
        }
        m--;
    }
    for (size_t i = 0; i < 2 * m; i++) clips[i] = t[i];
    *n_clips = (int)(2 * m);
    free(t);
    return MT_OK;
}
