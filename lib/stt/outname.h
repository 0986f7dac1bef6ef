/* outname.h - where transcripts of input files go: the file names
 * openai-whisper's command line gives them (DIR/<input basename without its
 * extension>.<ext>), and the check that no two inputs of one run would write
 * the same file (one transcript would silently replace the other). */
#ifndef MT_STT_OUTNAME_H
#define MT_STT_OUTNAME_H

#include <stddef.h>
#include "core/err.h"

/* DIR/<stem>.<ext>, where stem is input's last path component without its
 * extension (os.path.splitext: the text from the last '.', unless the name is
 * only dots up to it: ".wav" and "..wav" keep their whole name).  Bytes are
 * kept as they are (a non-UTF-8 name gives a non-UTF-8 path).  Returns a
 * malloc'd string, NULL when out of memory. */
char *mt_stt_output_path(const char *dir, const char *input, const char *ext);

/* Two inputs among inputs[0..n) whose outputs in one folder would be the same
 * file: the same stem (d1/rec.wav and d2/rec.wav, rec.wav and rec.flac, or one
 * path given twice).  Returns MT_OK and sets *first = *second = n when every
 * stem differs; otherwise MT_EINVAL with *first < *second the pair whose second
 * input comes earliest in input order and err "'A' and 'B' would both write
 * DIR/STEM.EXT" (ext as given, e.g. "srt"; any extension when several are
 * written, since they share the stem).  MT_ENOMEM.  O(n log n). */
int mt_stt_output_collision(const char *dir, const char *const *inputs, size_t n, const char *ext, size_t *first,
                            size_t *second, mt_err *err);

#endif
