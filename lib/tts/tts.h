/* tts.h - what mlx-tts does around the Kokoro model (models/kokoro.h): voice specs
 * (a name, a weighted blend, a file), long phoneme strings cut and their waveforms
 * joined, and the audio written (a file through libsndfile, atomically, or raw PCM).
 *
 * Voice specs, as mlx-audio's KokoroPipeline.load_voice reads them and a weight on top:
 *   "af_bella"                    voices/af_bella.safetensors of the model folder
 *   "af_bella:0.7,af_sky:0.3"     the weighted sum of the packs, the weights divided by
 *                                 their sum (no weights: each 1, mlx-audio's mean)
 *   "path/v.safetensors"          a file with one tensor "voice"
 *   "path/v.npy"                  a float32 .npy (kokoro-onnx's voice arrays): [rows, 1, 2S],
 *                                 [rows, 2S] or one style row [2S]
 * The style row for a chunk of n phoneme code points is pack[min(n, rows) - 1]
 * (mlx-audio: pack[len(ps) - 1]).
 *
 * ref: mlx_audio/tts/models/kokoro/pipeline.py (load_voice, infer);
 *      kokoro-onnx 0.6.1 __init__.py (_prepare, speed bound). */
#ifndef MT_TTS_H
#define MT_TTS_H

#include <stdio.h>
#include <stddef.h>
#include "core/err.h"
#include "models/kokoro.h"

/* The TTS family of a model folder, from config.json's model_type as mlx-audio picks its
 * module: "kokoro" (or none) -> Kokoro (models/kokoro.h), "llama" or "orpheus" -> Orpheus
 * (tts/orpheus.h).  Errors: MT_ENOTFOUND / MT_EFORMAT (config.json missing or malformed),
 * MT_EUNSUPPORTED (another model_type). */
enum { MT_TTS_KOKORO = 0, MT_TTS_ORPHEUS = 1 };
int mt_tts_family(const char *dir, int *family, mt_err *err);

/* kokoro-onnx's bound on the speed factor. */
#define MT_TTS_SPEED_MIN 0.5
#define MT_TTS_SPEED_MAX 2.0

/* Reads a voice spec (above) for model k in folder dir: *pack malloc'd [*rows, 2S]
 * (caller frees).  Errors: MT_ENOTFOUND (no such voice), MT_EFORMAT (a file of the
 * wrong shape or type), MT_EINVAL (a malformed spec or weight), MT_ENOMEM. */
int mt_tts_voice(const mt_kokoro *k, const char *dir, const char *spec, float **pack, size_t *rows, mt_err *err);

/* Whether UTF-8 phonemes ph hold a phoneme of Kokoro's vocabulary other than its
 * punctuation marks and the space (a string of marks alone is nothing to speak). */
int mt_tts_speakable(const char *ph);

/* Synthesizes UTF-8 phonemes ph: cut by mt_g2p_split into chunks of at most
 * min(510, the model's context - 2) code points, each synthesized with its own style
 * row (opts' seed advanced by one per chunk), the waveforms joined end to end.
 * *wav malloc'd [*len].  Errors: MT_EINVAL (no phoneme the model knows, speed out of
 * range), MT_ELIMIT (a chunk longer than the model takes), MT_ENOMEM, as mt_kokoro_synth. */
int mt_tts_synth(const mt_kokoro *k, const char *ph, const float *pack, size_t rows, float speed,
                 const mt_kokoro_opts *opts, float **wav, size_t *len, mt_err *err);

enum { MT_TTS_WAV = 0, MT_TTS_FLAC, MT_TTS_OGG };
/* "wav", "flac", "ogg" -> MT_TTS_*; -1 for anything else. */
int mt_tts_format(const char *name);
const char *mt_tts_format_ext(int format);

/* Writes wav [n] at `rate` Hz, mono, to path: 16-bit PCM (WAV, FLAC; the samples of
 * mt_tts_write_pcm's s16) or Vorbis (OGG),
 * into a temporary file next to path renamed over it once complete (no partial file
 * is ever left under path).  Errors: MT_EIO, MT_EUSAGE (path is not a regular file),
 * MT_ENOMEM. */
int mt_tts_write_file(const char *path, int format, const float *wav, size_t n, int rate, mt_err *err);

/* Writes wav [n] to f as raw little-endian PCM: s16 (1) clipped to [-1, 1] and scaled
 * by 32767, or float32 (0).  Errors: MT_EIO. */
int mt_tts_write_pcm(FILE *f, int s16, const float *wav, size_t n, mt_err *err);

/* A file name from a record id: bytes outside [A-Za-z0-9._-] become '_', a leading
 * '.' becomes '_', empty gives "_", at most 200 bytes.  Malloc'd; NULL when out of memory. */
char *mt_tts_file_stem(const char *id);

#endif
