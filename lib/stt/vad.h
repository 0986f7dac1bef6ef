/* vad.h - an energy voice-activity detector for skipping silence: 30-ms
 * frames whose RMS level in dBFS exceeds a threshold are speech; speech runs
 * separated by less than 1 s of silence are merged, regions holding less than
 * 60 ms of speech are dropped (clicks), and each region is padded by 200 ms
 * on both sides (clipped to the signal).  The result is the start,end,...
 * list that mt_stt_opts.clip_timestamps takes. */
#ifndef MT_STT_VAD_H
#define MT_STT_VAD_H

#include <stddef.h>
#include "core/err.h"

#define MT_VAD_FRAME_MS      30
#define MT_VAD_MIN_SPEECH_MS 60
#define MT_VAD_MIN_GAP_MS    1000
#define MT_VAD_PAD_MS        200

/* Find the speech regions of audio[n] (mono, `rate` Hz, full scale 1.0)
 * against threshold_db (dBFS, e.g. -45).  clips receives start,end pairs in
 * seconds (ascending, non-overlapping), at most max_clips values (an even
 * number is used); when there are more regions than fit, the regions with the
 * shortest gaps between them are merged until they fit.  *n_clips is the count
 * of values written (twice the regions; 0 when there is no speech).
 * Returns MT_OK, MT_EINVAL (rate <= 0, max_clips < 2, NULL audio with
 * n > 0, NULL clips / n_clips) or MT_ENOMEM (no message: nothing else can go
 * wrong). */
int mt_stt_vad(const float *audio, size_t n, int rate, double threshold_db, double *clips, int max_clips,
               int *n_clips);

#endif
