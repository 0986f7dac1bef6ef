/* mel.c - Whisper's log-mel spectrogram (openai-whisper log_mel_spectrogram):
 * centered reflect-padded STFT (periodic Hann 400, hop 160) via FFTW single
 * precision, power spectrum, Slaney mel filter bank computed here the way
 * librosa.filters.mel does, log10 with the global (max - 8) floor, (x+4)/4. */
#include "audio/mel.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define NBINS (MT_WHISPER_NFFT / 2 + 1)   /* 201 */

/* FFTW's planner is not thread-safe; plan creation/destruction is serialized
 * here (the only process-wide state of this file, guarding the library). */
static pthread_mutex_t plan_mu = PTHREAD_MUTEX_INITIALIZER;

struct mt_mel {
    int n_mels;
    float *filters;        /* [n_mels, NBINS] dense, as librosa returns it */
    int *lo, *hi;          /* non-zero bin range [lo, hi) of each filter row */
    float window[MT_WHISPER_NFFT];
    fftwf_plan plan;       /* r2c of size 400, executed with per-thread buffers */
};

double mt_mel_hz_to_slaney(double f) {
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    if (f >= min_log_hz) return min_log_mel + log(f / min_log_hz) / logstep;
    return f / f_sp;
}
double mt_mel_slaney_to_hz(double m) {
    const double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
    const double logstep = log(6.4) / 27.0;
    if (m >= min_log_mel) return min_log_hz * exp(logstep * (m - min_log_mel));
    return f_sp * m;
}

/* librosa.filters.mel(sr, n_fft, n_mels, fmin=0, fmax=sr/2, htk=False, norm="slaney") */
static int make_filters(mt_mel *m, mt_err *err) {
    const int nm = m->n_mels;
    const double sr = MT_WHISPER_RATE, fmax = sr / 2.0;
    double *mel_f = malloc((size_t)(nm + 2) * sizeof(double));
    if (!mel_f) return mt_seterr(err, MT_ENOMEM, "mel filters: out of memory");
    double mmin = mt_mel_hz_to_slaney(0.0), mmax = mt_mel_hz_to_slaney(fmax);
    for (int i = 0; i < nm + 2; i++) {
        /* np.linspace: start + i * step, the last point exactly stop */
        double mel = i == nm + 1 ? mmax : mmin + (double)i * ((mmax - mmin) / (double)(nm + 1));
        mel_f[i] = mt_mel_slaney_to_hz(mel);
    }
    for (int i = 0; i < nm; i++) {
        double fd0 = mel_f[i + 1] - mel_f[i], fd1 = mel_f[i + 2] - mel_f[i + 1];
        double enorm = 2.0 / (mel_f[i + 2] - mel_f[i]);
        int lo = NBINS, hi = 0;
        for (int k = 0; k < NBINS; k++) {
            double fk = (double)k * sr / MT_WHISPER_NFFT;   /* np.fft.rfftfreq */
            double lower = -(mel_f[i] - fk) / fd0;
            double upper = (mel_f[i + 2] - fk) / fd1;
            double w = lower < upper ? lower : upper;
            if (w < 0) w = 0;
            /* librosa stores the ramp in float32, then scales by enorm */
            float wf = (float)w;
            float v = (float)((double)wf * enorm);
            m->filters[(size_t)i * NBINS + k] = v;
            if (v != 0.0f) {
                if (k < lo) lo = k;
                hi = k + 1;
            }
        }
        if (hi <= lo) lo = hi = 0;
        m->lo[i] = lo;
        m->hi[i] = hi;
    }
    free(mel_f);
    return MT_OK;
}

void mt_mel_free(mt_mel *m) {
    if (!m) return;
    if (m->plan) {
        pthread_mutex_lock(&plan_mu);
        fftwf_destroy_plan(m->plan);
        pthread_mutex_unlock(&plan_mu);
    }
    free(m->filters);
    free(m->lo);
    free(m->hi);
    free(m);
}

int mt_mel_new(mt_mel **out, int n_mels, mt_err *err) {
    *out = NULL;
    if (n_mels != 80 && n_mels != 128)
        return mt_seterr(err, MT_EINVAL, "mel: n_mels must be 80 or 128 (got %d)", n_mels);
    mt_mel *m = calloc(1, sizeof *m);
    if (!m) return mt_seterr(err, MT_ENOMEM, "mel: out of memory");
    m->n_mels = n_mels;
    m->filters = calloc((size_t)n_mels * NBINS, sizeof(float));
    m->lo = calloc((size_t)n_mels, sizeof(int));
    m->hi = calloc((size_t)n_mels, sizeof(int));
    if (!m->filters || !m->lo || !m->hi) {
        mt_mel_free(m);
        return mt_seterr(err, MT_ENOMEM, "mel: out of memory");
    }
    int rc = make_filters(m, err);
    if (rc) {
        mt_mel_free(m);
        return rc;
    }
    /* torch.hann_window(400), periodic */
    for (int k = 0; k < MT_WHISPER_NFFT; k++)
        m->window[k] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * k / MT_WHISPER_NFFT));
    float *in = fftwf_malloc(sizeof(float) * MT_WHISPER_NFFT);
    fftwf_complex *o = fftwf_malloc(sizeof(fftwf_complex) * NBINS);
    if (in && o) {
        pthread_mutex_lock(&plan_mu);
        m->plan = fftwf_plan_dft_r2c_1d(MT_WHISPER_NFFT, in, o, FFTW_ESTIMATE);
        pthread_mutex_unlock(&plan_mu);
    }
    fftwf_free(in);
    fftwf_free(o);
    if (!m->plan) {
        mt_mel_free(m);
        return mt_seterr(err, MT_ENOMEM, "mel: cannot create the FFT plan");
    }
    *out = m;
    return MT_OK;
}

const float *mt_mel_filters(const mt_mel *m) { return m->filters; }

/* Index into the zero-extended signal of length L after reflecting i into
 * [0, L) (numpy's repeated reflection, so any L >= 1 works). */
static size_t reflect_idx(long long i, long long L) {
    if (L == 1) return 0;
    long long period = 2 * (L - 1);
    i %= period;
    if (i < 0) i += period;
    if (i >= L) i = period - i;
    return (size_t)i;
}

typedef struct {
    const mt_mel *m;
    const float *audio;
    size_t n, L, T;
    float *out;
    float **fin;           /* per-thread FFT input [400] */
    fftwf_complex **fout;  /* per-thread FFT output [201] */
    float **pow;           /* per-thread power [201] */
    float *tmax;           /* per-thread running max of log10 */
} mel_job;

static void mel_frames(void *ctx, size_t begin, size_t end, int tid) {
    mel_job *j = ctx;
    const mt_mel *m = j->m;
    float *in = j->fin[tid];
    fftwf_complex *fo = j->fout[tid];
    float *pw = j->pow[tid];
    float mx = j->tmax[tid];
    const long long L = (long long)j->L, half = MT_WHISPER_NFFT / 2;
    for (size_t t = begin; t < end; t++) {
        long long s0 = (long long)t * MT_WHISPER_HOP - half;
        if (s0 >= 0 && s0 + MT_WHISPER_NFFT <= (long long)j->n) {
            const float *a = j->audio + s0;
            for (int k = 0; k < MT_WHISPER_NFFT; k++) in[k] = a[k] * m->window[k];
        } else {
            for (int k = 0; k < MT_WHISPER_NFFT; k++) {
                size_t idx = reflect_idx(s0 + k, L);
                float x = idx < j->n ? j->audio[idx] : 0.0f;
                in[k] = x * m->window[k];
            }
        }
        fftwf_execute_dft_r2c(m->plan, in, fo);
        for (int k = 0; k < NBINS; k++) pw[k] = fo[k][0] * fo[k][0] + fo[k][1] * fo[k][1];
        for (int i = 0; i < m->n_mels; i++) {
            const float *f = m->filters + (size_t)i * NBINS;
            float s = 0.0f;
            for (int k = m->lo[i]; k < m->hi[i]; k++) s += f[k] * pw[k];
            float v = log10f(s > 1e-10f ? s : 1e-10f);
            if (v > mx) mx = v;
            j->out[(size_t)i * j->T + t] = v;
        }
    }
    j->tmax[tid] = mx;
}

typedef struct {
    float *out;
    size_t total;
    float floor_;
} fin_job;

static void mel_finish(void *ctx, size_t begin, size_t end, int tid) {
    (void)tid;
    fin_job *f = ctx;
    for (size_t i = begin; i < end; i++) {
        float v = f->out[i];
        if (v < f->floor_) v = f->floor_;
        f->out[i] = (v + 4.0f) / 4.0f;
    }
}

int mt_mel_compute(mt_mel *m, const float *audio, size_t n, size_t pad, mt_pool *pool, float **out,
                   size_t *n_frames, mt_err *err) {
    *out = NULL;
    *n_frames = 0;
    if (n > SIZE_MAX / 2 || pad > SIZE_MAX / 2) return mt_seterr(err, MT_EINVAL, "mel: input too long");
    size_t L = n + pad;
    if (L < MT_WHISPER_HOP)
        return mt_seterr(err, MT_EINVAL, "mel: %zu samples is shorter than one frame (%d)", L, MT_WHISPER_HOP);
    if (n && !audio) return mt_seterr(err, MT_EINVAL, "mel: no audio buffer");
    size_t T = L / MT_WHISPER_HOP;
    if (T > SIZE_MAX / sizeof(float) / (size_t)m->n_mels) return mt_seterr(err, MT_ELIMIT, "mel: input too long");
    float *o = malloc((size_t)m->n_mels * T * sizeof(float));
    int nth = pool ? mt_pool_size(pool) : 1;
    if (nth < 1) nth = 1;
    float **fin = calloc((size_t)nth, sizeof *fin);
    fftwf_complex **fout = calloc((size_t)nth, sizeof *fout);
    float **pw = calloc((size_t)nth, sizeof *pw);
    float *tmax = malloc((size_t)nth * sizeof *tmax);
    int ok = o && fin && fout && pw && tmax;
    for (int i = 0; ok && i < nth; i++) {
        fin[i] = fftwf_malloc(sizeof(float) * MT_WHISPER_NFFT);
        fout[i] = fftwf_malloc(sizeof(fftwf_complex) * NBINS);
        pw[i] = malloc(sizeof(float) * NBINS);
        tmax[i] = -INFINITY;
        ok = fin[i] && fout[i] && pw[i];
    }
    if (ok) {
        mel_job j = {m, audio, n, L, T, o, fin, fout, pw, tmax};
        mt_pool_for(pool, T, 64, mel_frames, &j);
        float mx = -INFINITY;
        for (int i = 0; i < nth; i++)
            if (tmax[i] > mx) mx = tmax[i];
        fin_job f = {o, (size_t)m->n_mels * T, mx - 8.0f};
        mt_pool_for(pool, f.total, 16384, mel_finish, &f);
    }
    for (int i = 0; i < nth; i++) {
        if (fin) fftwf_free(fin[i]);
        if (fout) fftwf_free(fout[i]);
        if (pw) free(pw[i]);
    }
    free(fin);
    free(fout);
    free(pw);
    free(tmax);
    if (!ok) {
        free(o);
        return mt_seterr(err, MT_ENOMEM, "mel: out of memory (%zu frames)", T);
    }
    *out = o;
    *n_frames = T;
    return MT_OK;
}

void mt_mel_window(const float *mel, int n_mels, size_t n_frames, size_t start, size_t len, float *win) {
    size_t w = len < MT_WHISPER_NFRAMES ? len : MT_WHISPER_NFRAMES;
    size_t avail = start < n_frames ? n_frames - start : 0;
    if (w > avail) w = avail;
    for (int i = 0; i < n_mels; i++) {
        float *dst = win + (size_t)i * MT_WHISPER_NFRAMES;
        if (w) memcpy(dst, mel + (size_t)i * n_frames + start, w * sizeof(float));
        memset(dst + w, 0, (MT_WHISPER_NFRAMES - w) * sizeof(float));
    }
}
