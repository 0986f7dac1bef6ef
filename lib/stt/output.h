/* output.h - transcript writers with openai-whisper utils.py formatting:
 * txt, srt, vtt, tsv, json (openai-whisper's layout: text, segments with id,
 * seek, start, end, text, tokens, temperature, avg_logprob,
 * compression_ratio, no_speech_prob[, words], language) and the one-line JSONL
 * record mlx-stt writes in batch mode. */
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

/* Write res in format f to out.  Errors: MT_EIO. */
int mt_stt_write(FILE *out, mt_stt_format f, const mt_stt_result *res, mt_err *err);
/* Write res in format f to path atomically (temp file + rename). */
int mt_stt_write_file(const char *path, mt_stt_format f, const mt_stt_result *res, mt_err *err);
/* The reference's json layout as a new object. */
json_t *mt_stt_result_json(const mt_stt_result *res);

#endif
