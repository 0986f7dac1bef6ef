/* audio.h - decoded audio as the speech programs need it: mono float32 at a
 * chosen rate.  Files are read with libsndfile (WAV, FLAC, OGG/Vorbis/Opus,
 * MP3, ... whatever the installed libsndfile reads), channels are averaged to
 * mono and the signal is resampled with libsoxr (high quality) when the file's
 * rate differs.  Raw PCM (s16le / f32le, interleaved) is read from a FILE*.
 * ref: openai-whisper audio.load_audio (ffmpeg -ac 1 -ar 16000 -f s16le). */
#ifndef MT_AUDIO_H
#define MT_AUDIO_H

#include <stddef.h>
#include <stdio.h>
#include "core/err.h"

typedef struct mt_audio {
    float *pcm;        /* n samples, mono, nominally in [-1, 1] */
    size_t n;
    int rate;          /* samples per second of pcm */
    int src_rate;      /* the input's own rate */
    int src_channels;  /* the input's channel count */
} mt_audio;

enum { MT_PCM_S16LE = 0, MT_PCM_F32LE = 1 };

/* Read an audio file and convert it to mono at `rate` Hz (e.g. 16000).
 * On success *a owns pcm (free with mt_audio_clear); on failure *a is empty.
 * Errors: MT_ENOTFOUND (missing file), MT_EIO (unreadable, a directory),
 * MT_EFORMAT (not audio / corrupt / empty: "no samples"), MT_EUNSUPPORTED
 * (a rate outside 1000..1000000 Hz), MT_ELIMIT (more than 24 h of audio),
 * MT_ENOMEM.  The message names the file.  Non-finite decoded samples are
 * replaced by 0. */
int  mt_audio_load(mt_audio *a, const char *path, int rate, mt_err *err);
/* Read raw interleaved PCM from f until EOF: `channels` channels at src_rate,
 * format MT_PCM_*; averaged to mono and resampled to `rate`.  A trailing
 * partial frame is an MT_EFORMAT error; zero frames is MT_EFORMAT ("no samples").
 * max_seconds (0: 24 h, the most) bounds the input: the frame that passes
 * max_seconds * src_rate frames ends the read at once with MT_ELIMIT ("longer
 * than ... (refused)"), having read at most one more chunk of 4096 frames and
 * buffered no more than the limit, so an endless stream costs little.
 * MT_EINVAL for a negative or NaN limit. */
int  mt_audio_read_raw(mt_audio *a, FILE *f, int src_rate, int channels, int format, int rate, double max_seconds,
                       mt_err *err);
/* Decode a file held in memory (as mt_audio_load does for a path); used by
 * the fuzz target.  name is only used in messages. */
int  mt_audio_load_mem(mt_audio *a, const void *data, size_t len, const char *name, int rate, mt_err *err);
/* Resample mono float in[n] from rate `from` to `to` (libsoxr, HQ, linear
 * phase, delay compensated; about n * to / from samples).  *out is malloc'ed
 * (caller frees).  from == to copies.  Errors: MT_EINVAL (n == 0),
 * MT_EUNSUPPORTED (rates outside 1000..1000000), MT_ELIMIT, MT_ENOMEM. */
int  mt_audio_resample(const float *in, size_t n, int from, int to, float **out, size_t *n_out, mt_err *err);
void mt_audio_clear(mt_audio *a);   /* frees pcm, zeroes *a; accepts an empty one */

#endif
