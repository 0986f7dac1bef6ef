/* nemo_mel.c - NeMo / Parakeet log-mel features (see nemo_mel.h).
 * ref: mlx_audio/stt/models/parakeet/audio.py (log_mel_spectrogram),
 *      mlx_audio/dsp.py (stft, mel_filters, window functions). */
#include "audio/mel.h"
#include "audio/nemo_mel.h"

#include <fftw3.h>   /* before cblas.h, which may bring in complex.h */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* FFTW's planner is not thread-safe; plans are made under this lock. */
static pthread_mutex_t nemo_plan_mu = PTHREAD_MUTEX_INITIALIZER;

struct mt_nemo_mel {
    mt_nemo_mel_cfg c;
    int win, hop, nbins;
    float *window;      /* [n_fft]: the window centred, zeros around it */
    float *filters;     /* [features, nbins] */
    float *fin;         /* [n_fft] FFT input */
    fftwf_complex *fout;/* [nbins] */
    fftwf_plan plan;
};

/* Triangular filters with the Slaney area norm over 0 .. rate/2 (the
 * reference builds them in float32; double here, rounded once). */
static int make_filters(mt_nemo_mel *m, mt_err *err) {
    int nm = m->c.features, nb = m->nbins;
    double *fp = malloc(sizeof(double) * (size_t)(nm + 2));
    if (!fp) return mt_seterr(err, MT_ENOMEM, "nemo mel: out of memory");
    double m_lo = mt_mel_hz_to_slaney(0.0), m_hi = mt_mel_hz_to_slaney(m->c.sample_rate / 2.0);
    for (int i = 0; i < nm + 2; i++) fp[i] = mt_mel_slaney_to_hz(m_lo + (m_hi - m_lo) * i / (nm + 1));
    double nyq = (double)(m->c.sample_rate / 2);
    for (int k = 0; k < nb; k++) {
        double f = nb > 1 ? nyq * k / (nb - 1) : 0.0;
        for (int i = 0; i < nm; i++) {
            double down = (f - fp[i]) / (fp[i + 1] - fp[i]);       /* -(fp[i] - f) / diff */
            double up = (fp[i + 2] - f) / (fp[i + 2] - fp[i + 1]);
            double v = fmax(0.0, fmin(down, up));
            v *= 2.0 / (fp[i + 2] - fp[i]);
            m->filters[(size_t)i * nb + k] = (float)v;
        }
    }
    free(fp);
    return MT_OK;
}

/* mlx_audio.dsp windows (symmetric: denominator size - 1). */
static double window_at(const char *name, int n, int size) {
    double d = size > 1 ? size - 1 : 1, a = 2 * M_PI * n / d;
    if (!strcmp(name, "hamming")) return 0.54 - 0.46 * cos(a);
    if (!strcmp(name, "blackman")) return 0.42 - 0.5 * cos(a) + 0.08 * cos(2 * a);
    if (!strcmp(name, "bartlett")) return 1 - 2 * fabs(n - d / 2) / d;
    return 0.5 * (1 - cos(a));   /* hann, and the reference's fallback for unknown names */
}

void mt_nemo_mel_free(mt_nemo_mel *m) {
    if (!m) return;
    if (m->plan) {
        pthread_mutex_lock(&nemo_plan_mu);
        fftwf_destroy_plan(m->plan);
        pthread_mutex_unlock(&nemo_plan_mu);
    }
    fftwf_free(m->fin);
    fftwf_free(m->fout);
    free(m->window);
    free(m->filters);
    free(m);
}

int mt_nemo_mel_new(mt_nemo_mel **out, const mt_nemo_mel_cfg *cfg, mt_err *err) {
    *out = NULL;
    const mt_nemo_mel_cfg *c = cfg;
    if (c->sample_rate < 1000 || c->sample_rate > 1000000)
        return mt_seterr(err, MT_EINVAL, "preprocessor: sample_rate %d out of range", c->sample_rate);
    if (c->n_fft < 2 || c->n_fft > 65536)
        return mt_seterr(err, MT_EINVAL, "preprocessor: n_fft %d out of range", c->n_fft);
    if (!(c->window_size > 0 && c->window_size < 10) || !(c->window_stride > 0 && c->window_stride < 10))
        return mt_seterr(err, MT_EINVAL, "preprocessor: window_size / window_stride out of range");
    int win = (int)(c->window_size * c->sample_rate), hop = (int)(c->window_stride * c->sample_rate);
    if (win < 1 || win > c->n_fft)
        return mt_seterr(err, MT_EINVAL, "preprocessor: a window of %d samples does not fit n_fft %d", win, c->n_fft);
    if (hop < 1) return mt_seterr(err, MT_EINVAL, "preprocessor: window_stride gives a hop of %d samples", hop);
    if (c->features < 1 || c->features > c->n_fft / 2 + 1)
        return mt_seterr(err, MT_EINVAL, "preprocessor: features %d out of range (1..%d)", c->features,
                         c->n_fft / 2 + 1);
    if (c->pad_to < 0 || c->pad_to > 1L << 30) return mt_seterr(err, MT_EINVAL, "preprocessor: pad_to out of range");
    mt_nemo_mel *m = calloc(1, sizeof *m);
    if (!m) return mt_seterr(err, MT_ENOMEM, "nemo mel: out of memory");
    m->c = *c;
    m->c.window[sizeof m->c.window - 1] = 0;
    m->win = win;
    m->hop = hop;
    m->nbins = c->n_fft / 2 + 1;
    m->window = calloc((size_t)c->n_fft, sizeof(float));
    m->filters = calloc((size_t)c->features * m->nbins, sizeof(float));
    m->fin = fftwf_malloc(sizeof(float) * (size_t)c->n_fft);
    m->fout = fftwf_malloc(sizeof(fftwf_complex) * (size_t)m->nbins);
    if (!m->window || !m->filters || !m->fin || !m->fout) {
        mt_nemo_mel_free(m);
        return mt_seterr(err, MT_ENOMEM, "nemo mel: out of memory");
    }
    int left = (c->n_fft - win) / 2;
    for (int i = 0; i < win; i++) m->window[left + i] = (float)window_at(m->c.window, i, win);
    int rc = make_filters(m, err);
    if (rc) {
        mt_nemo_mel_free(m);
        return rc;
    }
    pthread_mutex_lock(&nemo_plan_mu);
    m->plan = fftwf_plan_dft_r2c_1d(c->n_fft, m->fin, m->fout, FFTW_ESTIMATE);
    pthread_mutex_unlock(&nemo_plan_mu);
    if (!m->plan) {
        mt_nemo_mel_free(m);
        return mt_seterr(err, MT_ENOMEM, "nemo mel: cannot create the FFT plan");
    }
    *out = m;
    return MT_OK;
}

int mt_nemo_mel_hop(const mt_nemo_mel *m) { return m->hop; }
int mt_nemo_mel_features(const mt_nemo_mel *m) { return m->c.features; }
const float *mt_nemo_mel_filters(const mt_nemo_mel *m) { return m->filters; }

int mt_nemo_mel_compute(mt_nemo_mel *m, const float *audio, size_t n, float **out, size_t *n_frames, mt_err *err) {
    *out = NULL;
    *n_frames = 0;
    if (n == 0) return mt_seterr(err, MT_EINVAL, "features: no audio samples");
    size_t len = n < (size_t)m->c.pad_to ? (size_t)m->c.pad_to : n;
    int nfft = m->c.n_fft, half = nfft / 2, nb = m->nbins, nm = m->c.features;
    size_t T = 1 + len / (size_t)m->hop;
    /* signal with n_fft/2 zeros on both sides, pre-emphasised */
    size_t plen = len + (size_t)nfft;
    float *x = calloc(plen, sizeof(float));
    float *pw = calloc(T * (size_t)nb, sizeof(float));
    float *mel = malloc(sizeof(float) * T * (size_t)nm);
    if (!x || !pw || !mel) {
        free(x);
        free(pw);
        free(mel);
        return mt_seterr(err, MT_ENOMEM, "features: out of memory (%zu frames)", T);
    }
    float *s = x + half;
    for (size_t i = 0; i < len; i++) s[i] = i < n ? audio[i] : (float)m->c.pad_value;
    if (m->c.preemph > 0) {
        float a = (float)m->c.preemph;
        for (size_t i = len - 1; i >= 1; i--) {
            float p = a * s[i - 1];
            s[i] = s[i] - p;
        }
    }
    for (size_t t = 0; t < T; t++) {
        const float *fr = x + t * (size_t)m->hop;
        for (int k = 0; k < nfft; k++) m->fin[k] = fr[k] * m->window[k];
        fftwf_execute(m->plan);
        float *row = pw + t * (size_t)nb;
        for (int k = 0; k < nb; k++) {
            float re = m->fout[k][0], im = m->fout[k][1];
            float mag = sqrtf(re * re + im * im);
            row[k] = mag * mag;
        }
    }
    free(x);
    /* mel[T, nm] = pw[T, nb] filters^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, nm, nb, 1.0f, pw, nb, m->filters, nb, 0.0f, mel,
                nm);
    free(pw);
    float guard = (float)m->c.log_guard;
    for (size_t i = 0; i < T * (size_t)nm; i++) mel[i] = logf(mel[i] + guard);
    if (m->c.per_feature) {
        size_t dn = T > 1 ? T - 1 : 1;
        for (int f = 0; f < nm; f++) {
            double sum = 0;
            for (size_t t = 0; t < T; t++) sum += mel[t * nm + f];
            float mean = (float)(sum / (double)T);
            double ss = 0;
            for (size_t t = 0; t < T; t++) {
                double d = (double)(mel[t * nm + f] - mean);
                ss += d * d;
            }
            float sd = (float)sqrt(ss / (double)dn) + 1e-5f;
            for (size_t t = 0; t < T; t++) mel[t * nm + f] = (mel[t * nm + f] - mean) / sd;
        }
    } else {
        size_t N = T * (size_t)nm;
        double sum = 0, ss = 0;
        for (size_t i = 0; i < N; i++) sum += mel[i];
        float mean = (float)(sum / (double)N);
        for (size_t i = 0; i < N; i++) {
            double d = (double)(mel[i] - mean);
            ss += d * d;
        }
        float sd = (float)sqrt(ss / (double)N) + 1e-5f;
        for (size_t i = 0; i < N; i++) mel[i] = (mel[i] - mean) / sd;
    }
    *out = mel;
    *n_frames = T;
    return MT_OK;
}
