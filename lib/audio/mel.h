/* mel.h - Whisper's log-mel spectrogram, equal to openai-whisper's
 * log_mel_spectrogram(): STFT with a periodic Hann window of 400, hop 160,
 * n_fft 400, centered with reflect padding (torch.stft center=True), the last
 * frame dropped, |X|^2, librosa Slaney mel filters (htk=False, norm="slaney")
 * for 80 or 128 bins, log10(max(m, 1e-10)), clamped to (global max - 8), then
 * (x + 4) / 4.  FFT by FFTW3 (single precision plans made once per context). */
#ifndef MT_MEL_H
#define MT_MEL_H

#include <stddef.h>
#include "core/err.h"
#include "core/pool.h"

#define MT_WHISPER_RATE     16000
#define MT_WHISPER_NFFT     400
#define MT_WHISPER_HOP      160
#define MT_WHISPER_CHUNK_S  30
#define MT_WHISPER_NSAMPLES (MT_WHISPER_RATE * MT_WHISPER_CHUNK_S)    /* 480000 */
#define MT_WHISPER_NFRAMES  (MT_WHISPER_NSAMPLES / MT_WHISPER_HOP)    /* 3000 */

typedef struct mt_mel mt_mel;   /* filters + FFT plans; not shared between threads */

/* librosa's Slaney mel scale (htk=False): Hz -> mel and back; every mel
 * front end here (Whisper's, NeMo's in audio/nemo_mel.h) builds its filter
 * bank on it. */
double mt_mel_hz_to_slaney(double hz);
double mt_mel_slaney_to_hz(double mel);

/* n_mels: 80 or 128.  Errors: MT_EINVAL (other n_mels), MT_ENOMEM. */
int  mt_mel_new(mt_mel **out, int n_mels, mt_err *err);
void mt_mel_free(mt_mel *m);   /* accepts NULL */
/* The [n_mels, 201] filter bank (row-major), as librosa.filters.mel(sr=16000,
 * n_fft=400, n_mels) returns it. */
const float *mt_mel_filters(const mt_mel *m);

/* Log-mel of audio[n] followed by pad zeros (transcribe() pads 30 s:
 * pad = MT_WHISPER_NSAMPLES).  *out is malloc'ed [n_mels, *n_frames] row-major
 * (mel bin major, like the reference's [n_mels, T]) with
 * n_frames = (n + pad) / 160.  pool may be NULL.  Signals shorter than the
 * 200-sample reflect padding (where torch.stft would refuse) are reflected
 * repeatedly, like numpy's pad(mode="reflect").  Errors: MT_EINVAL (n + pad
 * < 160, i.e. not one frame), MT_ELIMIT, MT_ENOMEM. */
int mt_mel_compute(mt_mel *m, const float *audio, size_t n, size_t pad, mt_pool *pool,
                   float **out, size_t *n_frames, mt_err *err);

/* Copy frames [start, start + min(len, MT_WHISPER_NFRAMES)) of
 * mel[n_mels, n_frames] (clipped to n_frames) into
 * win[n_mels, MT_WHISPER_NFRAMES] and fill the rest with 0 (the reference's
 * mel[:, seek:seek+len] followed by pad_or_trim(., 3000)). */
void mt_mel_window(const float *mel, int n_mels, size_t n_frames, size_t start, size_t len, float *win);

#endif
