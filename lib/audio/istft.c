/* istft.c - STFT magnitude/phase and the inverse STFT with mlx-audio's
 * semantics (see istft.h), on FFTW plans made once per mt_stft and executed
 * with per-thread buffers; frames are split over the pool.
 * ref: mlx_audio/tts/models/kokoro/istftnet.py (MLXSTFT), mlx_audio/dsp.py. */
#include "audio/istft.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* FFTW's planner is not thread-safe: plans are made under this lock. */
static pthread_mutex_t plan_mu = PTHREAD_MUTEX_INITIALIZER;

struct mt_stft {
    int n_fft, hop, bins;
    float *window;          /* [n_fft], the window padded to n_fft */
    fftwf_plan r2c, c2r;    /* executed with per-thread fftwf_malloc buffers */
};

void mt_stft_free(mt_stft *s) {
    if (!s) return;
    pthread_mutex_lock(&plan_mu);
    if (s->r2c) fftwf_destroy_plan(s->r2c);
    if (s->c2r) fftwf_destroy_plan(s->c2r);
    pthread_mutex_unlock(&plan_mu);
    free(s->window);
    free(s);
}

int mt_stft_new(mt_stft **out, int n_fft, int hop, int win_length, const float *window, mt_err *err) {
    if (!out) return mt_seterr(err, MT_EINVAL, "stft: no output");
    *out = NULL;
    if (n_fft < 2 || n_fft % 2 || n_fft > (1 << 24) || hop < 1 || win_length < 1 || win_length > n_fft)
        return mt_seterr(err, MT_EINVAL, "stft: bad sizes (n_fft %d, hop %d, window %d)", n_fft, hop, win_length);
    mt_stft *s = calloc(1, sizeof *s);
    if (!s || !(s->window = calloc((size_t)n_fft, sizeof(float)))) {
        free(s);
        return mt_seterr(err, MT_ENOMEM, "stft: out of memory");
    }
    s->n_fft = n_fft;
    s->hop = hop;
    s->bins = n_fft / 2 + 1;
    int left = (n_fft - win_length) / 2;
    for (int i = 0; i < win_length; i++)   /* hanning(win_length, periodic=True), in double */
        s->window[left + i] = window ? window[i] : (float)(0.5 * (1.0 - cos(2.0 * M_PI * i / win_length)));
    float *in = fftwf_malloc(sizeof(float) * (size_t)n_fft);
    fftwf_complex *o = fftwf_malloc(sizeof(fftwf_complex) * (size_t)s->bins);
    if (in && o) {
        pthread_mutex_lock(&plan_mu);
        s->r2c = fftwf_plan_dft_r2c_1d(n_fft, in, o, FFTW_ESTIMATE);
        s->c2r = fftwf_plan_dft_c2r_1d(n_fft, o, in, FFTW_ESTIMATE);
        pthread_mutex_unlock(&plan_mu);
    }
    fftwf_free(in);
    fftwf_free(o);
    if (!s->r2c || !s->c2r) {
        mt_stft_free(s);
        return mt_seterr(err, MT_ENOMEM, "stft: cannot create the FFT plans (n_fft %d)", n_fft);
    }
    *out = s;
    return MT_OK;
}

int mt_stft_bins(const mt_stft *s) { return s ? s->bins : 0; }

size_t mt_stft_frames(const mt_stft *s, size_t L) {
    size_t p = (size_t)(s->n_fft / 2);
    if (L <= p) return 0;
    return 1 + (L + 2 * p - (size_t)s->n_fft) / (size_t)s->hop;
}

size_t mt_istft_len(const mt_stft *s, size_t frames) { return frames ? (frames - 1) * (size_t)s->hop : 0; }

/* ------------------------------------------------------------------ per-thread buffers */

typedef struct fft_bufs {
    int n;
    float **in;
    fftwf_complex **out;
} fft_bufs;

static void bufs_free(fft_bufs *b) {
    for (int i = 0; i < b->n; i++) {
        if (b->in) fftwf_free(b->in[i]);
        if (b->out) fftwf_free(b->out[i]);
    }
    free(b->in);
    free(b->out);
}

static int bufs_new(fft_bufs *b, const mt_stft *s, mt_pool *pool, mt_err *err) {
    b->n = pool ? mt_pool_size(pool) : 1;
    if (b->n < 1) b->n = 1;
    b->in = calloc((size_t)b->n, sizeof *b->in);
    b->out = calloc((size_t)b->n, sizeof *b->out);
    int ok = b->in && b->out;
    for (int i = 0; ok && i < b->n; i++) {
        b->in[i] = fftwf_malloc(sizeof(float) * (size_t)s->n_fft);
        b->out[i] = fftwf_malloc(sizeof(fftwf_complex) * (size_t)s->bins);
        ok = b->in[i] && b->out[i];
    }
    if (!ok) {
        bufs_free(b);
        return mt_seterr(err, MT_ENOMEM, "stft: out of memory");
    }
    return MT_OK;
}

/* ------------------------------------------------------------------ forward */

typedef struct fwd_job {
    const mt_stft *s;
    const float *x;
    size_t L, frames;
    float *mag, *phase;
    fft_bufs b;
} fwd_job;

/* padded[i], i in [0, L + n_fft): x reflect-padded by n_fft/2 */
static inline float reflect_at(const float *x, size_t L, long long i, long long p) {
    long long j = i - p;
    if (j < 0) j = -j;
    else if (j >= (long long)L) j = 2 * ((long long)L - 1) - j;
    return x[j];
}

static void fwd_run(void *ctx, size_t begin, size_t end, int tid) {
    const fwd_job *J = ctx;
    const mt_stft *s = J->s;
    float *in = J->b.in[tid];
    fftwf_complex *o = J->b.out[tid];
    long long p = s->n_fft / 2;
    for (size_t f = begin; f < end; f++) {
        long long st = (long long)f * s->hop;
        for (int i = 0; i < s->n_fft; i++) in[i] = reflect_at(J->x, J->L, st + i, p) * s->window[i];
        fftwf_execute_dft_r2c(s->r2c, in, o);
        /* the DC and Nyquist bins are real: +0, never FFTW's occasional -0, so
         * that a negative one has phase +pi as with mlx's FFT */
        o[0][1] = 0.0f;
        o[s->bins - 1][1] = 0.0f;
        for (int k = 0; k < s->bins; k++) {
            float re = o[k][0], im = o[k][1];
            if (J->mag) J->mag[(size_t)k * J->frames + f] = hypotf(re, im);
            if (J->phase) J->phase[(size_t)k * J->frames + f] = atan2f(im, re);
        }
    }
}

int mt_stft_forward(const mt_stft *s, const float *x, size_t L, float *mag, float *phase, mt_pool *pool,
                    mt_err *err) {
    if (!s || !x) return mt_seterr(err, MT_EINVAL, "stft: missing argument");
    size_t frames = mt_stft_frames(s, L);
    if (!frames)
        return mt_seterr(err, MT_EINVAL, "stft: %zu samples are too short for n_fft %d (reflect padding)", L,
                         s->n_fft);
    fwd_job J = {.s = s, .x = x, .L = L, .frames = frames, .mag = mag, .phase = phase};
    MT_TRY(bufs_new(&J.b, s, pool, err));
    mt_pool_for(pool, frames, 64, fwd_run, &J);
    bufs_free(&J.b);
    return MT_OK;
}

/* ------------------------------------------------------------------ inverse */

typedef struct inv_job {
    const mt_stft *s;
    const float *mag, *phase;
    size_t frames;
    float *fr;        /* [frames, n_fft]: windowed inverse FFT of each frame */
    float *pc;        /* [bins, frames]: unwrapped phase */
    fft_bufs b;
} inv_job;

/* mlx_unwrap along time for bins [begin, end), float32 as mlx computes it */
static void unwrap_run(void *ctx, size_t begin, size_t end, int tid) {
    (void)tid;
    const inv_job *J = ctx;
    const float period = (float)(2.0 * M_PI), hi = (float)M_PI, lo = -(float)M_PI;
    for (size_t k = begin; k < end; k++) {
        const float *p = J->phase + k * J->frames;
        float *pc = J->pc + k * J->frames;
        float cum = 0.0f;
        pc[0] = p[0];
        for (size_t t = 1; t < J->frames; t++) {
            float dd = p[t] - p[t - 1];
            float ddmod = dd - period * floorf((dd - lo) / period);
            if (fabsf(dd - hi) < 1e-10f && dd > 0) ddmod = hi;
            float corr = ddmod - dd;
            if (fabsf(dd) < hi) corr = 0.0f;
            cum += corr;
            pc[t] = p[t] + cum;
        }
    }
}

static void inv_run(void *ctx, size_t begin, size_t end, int tid) {
    const inv_job *J = ctx;
    const mt_stft *s = J->s;
    float *out = J->b.in[tid];
    fftwf_complex *X = J->b.out[tid];
    float scale = 1.0f / (float)s->n_fft;
    for (size_t f = begin; f < end; f++) {
        for (int k = 0; k < s->bins; k++) {
            float m = J->mag[(size_t)k * J->frames + f], ph = J->pc[(size_t)k * J->frames + f];
            X[k][0] = m * cosf(ph);
            X[k][1] = m * sinf(ph);
        }
        X[0][1] = 0.0f;                    /* c2r ignores these; make it explicit */
        X[s->bins - 1][1] = 0.0f;
        fftwf_execute_dft_c2r(s->c2r, X, out);
        float *dst = J->fr + f * (size_t)s->n_fft;
        for (int i = 0; i < s->n_fft; i++) dst[i] = (out[i] * scale) * s->window[i];
    }
}

int mt_istft(const mt_stft *s, const float *mag, const float *phase, size_t frames, float *y, mt_pool *pool,
             mt_err *err) {
    if (!s || !mag || !phase || !y) return mt_seterr(err, MT_EINVAL, "istft: missing argument");
    if (frames == 0) return mt_seterr(err, MT_EINVAL, "istft: no frames");
    size_t n = (size_t)s->n_fft, hop = (size_t)s->hop;
    if (frames > (SIZE_MAX / sizeof(float) - n) / (n > hop ? n : hop) / 2)
        return mt_seterr(err, MT_EINVAL, "istft: %zu frames too many", frames);
    size_t total = (frames - 1) * hop + n;   /* before trimming */
    inv_job J = {.s = s, .mag = mag, .phase = phase, .frames = frames};
    J.fr = malloc(frames * n * sizeof(float));
    J.pc = malloc((size_t)s->bins * frames * sizeof(float));
    float *acc = calloc(total, sizeof(float)), *wsum = calloc(total, sizeof(float));
    int rc = MT_OK;
    if (!J.fr || !J.pc || !acc || !wsum) rc = mt_seterr(err, MT_ENOMEM, "istft: out of memory");
    if (!rc) rc = bufs_new(&J.b, s, pool, err);
    if (!rc) {
        mt_pool_for(pool, (size_t)s->bins, 1, unwrap_run, &J);
        mt_pool_for(pool, frames, 64, inv_run, &J);
        bufs_free(&J.b);
        for (size_t f = 0; f < frames; f++) {
            const float *src = J.fr + f * n;
            float *a = acc + f * hop, *w = wsum + f * hop;
            for (size_t i = 0; i < n; i++) {
                a[i] += src[i];
                w[i] += s->window[i] * s->window[i];
            }
        }
        size_t start = n / 2, len = mt_istft_len(s, frames);
        for (size_t t = 0; t < len; t++) {
            float d = wsum[start + t];
            y[t] = acc[start + t] / (d > 1e-10f ? d : 1.0f);
        }
    }
    free(J.fr);
    free(J.pc);
    free(acc);
    free(wsum);
    return rc;
}
