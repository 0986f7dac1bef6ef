/* output.h - transcript writers with openai-whisper utils.py formatting:
 * txt, srt, vtt, tsv, json (openai-whisper's layout: text, segments with id,
 * seek, start, end, text, tokens, temperature, avg_logprob,
 * compression_ratio, no_speech_prob[, words], language) and the one-line JSONL
 * record mlx-stt writes in batch mode.
 * ref: openai-whisper utils.py (format_timestamp, WriteTXT, WriteVTT, WriteSRT,
 * WriteTSV, WriteJSON and SubtitlesWriter.iterate_result). */
#ifndef MT_STT_OUTPUT_H
#define MT_STT_OUTPUT_H

#include <stdio.h>
#include <jansson.h>
#include "core/err.h"
#include "stt/transcribe.h"

typedef enum { MT_STT_TXT, MT_STT_SRT, MT_STT_VTT, MT_STT_TSV, MT_STT_JSON, MT_STT_JSONL } mt_stt_format;

/* "txt" ... "jsonl" -> format; -1 when unknown. */
int mt_stt_format_parse(const char *name);
const char *mt_stt_format_ext(mt_stt_format f);   /* "txt", "srt", ... */

/* Writer options (the reference CLI's word options).  Zero / NULL options
 * are the reference defaults. */
typedef struct mt_stt_write_opts {
    /* 1: the result was made with word timestamps (every segment carries a
     * "words" list, subtitles are built from the words); 0: it was not;
     * -1 (or NULL options): 1 when any segment has words. */
    int word_timestamps;
    int max_line_width;      /* > 0: characters per subtitle line (words only) */
    int max_line_count;      /* > 0: lines per subtitle (with max_line_width) */
    int highlight_words;     /* underline each word as it is spoken (srt, vtt) */
    int max_words_per_line;  /* > 0: words per subtitle line (without max_line_width) */
    /* 1: json / jsonl segments carry only id, start, end, text (and words
     * without probability): the recognisers other than Whisper (stt/asr.h)
     * have no seek, tokens, temperature or log-probabilities to report. */
    int plain_segments;
} mt_stt_write_opts;

/* Write res in format f to out.  Errors: MT_EIO, MT_ENOMEM. */
int mt_stt_write(FILE *out, mt_stt_format f, const mt_stt_result *res, mt_err *err);
/* Write res in format f to path atomically (temp file + rename). */
int mt_stt_write_file(const char *path, mt_stt_format f, const mt_stt_result *res, mt_err *err);
/* The same with writer options (o may be NULL). */
int mt_stt_write_ex(FILE *out, mt_stt_format f, const mt_stt_result *res, const mt_stt_write_opts *o, mt_err *err);
int mt_stt_write_file_ex(const char *path, mt_stt_format f, const mt_stt_result *res, const mt_stt_write_opts *o,
                         mt_err *err);
/* Render res in format f into a malloc'ed NUL-terminated buffer *out (*len
 * bytes).  Errors: MT_ENOMEM. */
int mt_stt_render(mt_stt_format f, const mt_stt_result *res, const mt_stt_write_opts *o, char **out, size_t *len,
                  mt_err *err);
/* The reference's json layout as a new object ({"text", "segments",
 * "language"}; "words" in every segment when word timestamps are on (o) and in
 * segments whose text is empty, as the reference does).  NULL on OOM. */
json_t *mt_stt_result_json(const mt_stt_result *res);
json_t *mt_stt_result_json_ex(const mt_stt_result *res, const mt_stt_write_opts *o);

/* format_timestamp(seconds, always_include_hours, decimal_marker) into buf
 * (at least 32 bytes); negative seconds count as 0. */
const char *mt_stt_format_timestamp(double seconds, int always_include_hours, char decimal_marker, char *buf);

#endif
