/* transcribe.c - openai-whisper transcribe() in C: log-mel of the whole input
 * (+30 s of padding), language detection on the first window, the seek loop
 * over clip_timestamps (or the energy VAD's regions), decode with temperature
 * fallback, the no-speech skip, segments cut at consecutive timestamp tokens
 * (single-timestamp endings), word timestamps, hallucination_silence_threshold,
 * and the prompt carried from previous windows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/mel.h"
#include "stt/stt_int.h"
#if __has_include("stt/vad.h")
#include "stt/vad.h"
#define HAVE_VAD 1
#endif

void mt_stt_opts_default(mt_stt_opts *o)
{
    memset(o, 0, sizeof *o);
    static const double temps[] = {0.0, 0.2, 0.4, 0.6, 0.8, 1.0};
    memcpy(o->temperatures, temps, sizeof temps);
    o->n_temperatures = 6;
    o->best_of = 5;
    o->patience = 1.0;
    o->length_penalty = -1;
    o->suppress_tokens = "-1";
    o->suppress_blank = 1;
    o->max_initial_timestamp = 1.0;
    o->condition_on_previous_text = 1;
    o->compression_ratio_threshold = 2.4;
    o->logprob_threshold = -1.0;
    o->no_speech_threshold = 0.6;
    o->prepend_punctuations = "\"'\xe2\x80\x9c\xc2\xbf([{-";
    o->append_punctuations = "\"'.\xe3\x80\x82,\xef\xbc\x8c!\xef\xbc\x81?\xef\xbc\x9f:\xef\xbc\x9a\xe2\x80\x9d)]}\xe3\x80\x81";
    o->vad_threshold_db = -45;
}

int mt_stt_set_temperatures(mt_stt_opts *o, double t0, double inc, mt_err *err)
{
    int n = 0;
    if (inc > 0) {
        double cnt = ceil((1.0 + 1e-6 - t0) / inc);
        if (cnt > MT_STT_MAX_TEMPS)
            return mt_seterr(err, MT_EINVAL, "a temperature increment of %g gives more than %d temperatures", inc,
                             MT_STT_MAX_TEMPS);
        for (int i = 0; i < (int)cnt; i++) o->temperatures[n++] = t0 + i * inc;
    }
    if (!n) o->temperatures[n++] = t0;
    o->n_temperatures = n;
    return MT_OK;
}

static void seg_clear(mt_stt_segment *s)
{
    free(s->text);
    free(s->tokens);
    for (size_t i = 0; i < s->n_words; i++) free(s->words[i].word);
    free(s->words);
    memset(s, 0, sizeof *s);
}

void mt_stt_result_free(mt_stt_result *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->n_segs; i++) seg_clear(&r->segs[i]);
    free(r->segs);
    free(r->text);
    memset(r, 0, sizeof *r);
}

int mt_stt_detect_language(mt_whisper *w, const mt_wtok *tok, const float *xa, double *probs, mt_err *err)
{
    if (!tok->multilingual) {
        mt_seterr(err, MT_EINVAL, "this model doesn't have language tokens so it can't perform lang id");
        return -1;
    }
    const mt_whisper_hp *hp = mt_whisper_hparams(w);
    int V = hp->n_vocab;
    float *logits = malloc((size_t)V * sizeof *logits);
    if (!logits) {
        mt_seterr(err, MT_ENOMEM, "transcribe: out of memory");
        return -1;
    }
    mt_whisper_dec *d = NULL;
    int rc = mt_whisper_dec_new(&d, w, xa, 1, err);
    if (!rc) rc = mt_whisper_dec_step(d, &tok->sot, 1, 0, logits, err);
    mt_whisper_dec_free(d);
    if (rc) {
        free(logits);
        return -1;
    }
    const float *x = logits + tok->lang_begin;
    int best = 0;
    for (int i = 1; i < tok->n_langs; i++) if (x[i] > x[best]) best = i;
    double s = 0;
    for (int i = 0; i < tok->n_langs; i++) s += exp((double)x[i] - x[best]);
    if (probs)
        for (int i = 0; i < tok->n_langs; i++) probs[i] = (double)(float)(exp((double)x[i] - x[best]) / s);
    free(logits);
    return best;
}

/* ---- growable arrays --------------------------------------------------------- */

typedef struct segvec {
    mt_stt_segment *v;
    size_t n, cap;
} segvec;

static mt_stt_segment *segvec_push(segvec *s)
{
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        mt_stt_segment *t = realloc(s->v, nc * sizeof *t);
        if (!t) return NULL;
        s->v = t;
        s->cap = nc;
    }
    mt_stt_segment *r = &s->v[s->n++];
    memset(r, 0, sizeof *r);
    return r;
}

typedef struct i32vec {
    int32_t *v;
    size_t n, cap;
} i32vec;

static int i32vec_add(i32vec *a, const int32_t *x, size_t n)
{
    if (a->n + n > a->cap) {
        size_t nc = a->cap ? a->cap : 256;
        while (nc < a->n + n) nc *= 2;
        int32_t *t = realloc(a->v, nc * sizeof *t);
        if (!t) return -1;
        a->v = t;
        a->cap = nc;
    }
    if (n) memcpy(a->v + a->n, x, n * sizeof *x);
    a->n += n;
    return 0;
}

/* ---- hallucination heuristics (transcribe.py) ------------------------------- */

static const char PUNCT[] = "\"'\xe2\x80\x9c\xc2\xbf([{-\"'.\xe3\x80\x82,\xef\xbc\x8c!\xef\xbc\x81?\xef\xbc\x9f:\xef\xbc\x9a\xe2\x80\x9d)]}\xe3\x80\x81";

static double word_anomaly_score(const mt_stt_word *w)
{
    double d = w->end - w->start, s = 0;
    if (w->probability < 0.15) s += 1.0;
    if (d < 0.133) s += (0.133 - d) * 15;
    if (d > 2.0) s += d - 2.0;
    return s;
}

static int is_segment_anomaly(const mt_stt_segment *s)
{
    if (!s || s->n_words == 0) return 0;
    double score = 0;
    int n = 0;
    for (size_t i = 0; i < s->n_words && n < 8; i++) {
        if (strstr(PUNCT, s->words[i].word)) continue;   /* Python's `word in punctuation` */
        score += word_anomaly_score(&s->words[i]);
        n++;
    }
    return score >= 3 || score + 0.01 >= n;
}

static const mt_stt_segment *next_words_segment(const mt_stt_segment *s, size_t n)
{
    for (size_t i = 0; i < n; i++) if (s[i].n_words) return &s[i];
    return NULL;
}

/* utils.get_end; returns 0 when there are no segments (has = 0) */
static double get_end(const mt_stt_segment *s, size_t n, int *has)
{
    *has = n > 0;
    for (size_t i = n; i-- > 0;)
        if (s[i].n_words) return s[i].words[s[i].n_words - 1].end;
    return n ? s[n - 1].end : 0;
}

static int is_blank(const char *text)
{
    char *s = stt_py_strip(text);
    int b = s && !*s;
    free(s);
    return b;
}

/* ---- transcribe ---------------------------------------------------------------- */

static int new_segment(segvec *cur, int seek, double start, double end, const int32_t *toks, size_t n,
                       const stt_dec_result *r, const mt_wtok *tok, mt_err *err)
{
    mt_stt_segment *s = segvec_push(cur);
    if (!s) return mt_seterr(err, MT_ENOMEM, "transcribe: out of memory");
    s->seek = seek;
    s->start = start;
    s->end = end;
    s->tokens = malloc((n + 1) * sizeof *s->tokens);
    if (!s->tokens) return mt_seterr(err, MT_ENOMEM, "transcribe: out of memory");
    if (n) memcpy(s->tokens, toks, n * sizeof *toks);
    s->n_tokens = n;
    int rc = mt_wtok_decode_text(tok, toks, n, &s->text, err);
    if (rc) return rc;
    s->temperature = r->temperature;
    s->avg_logprob = r->avg_logprob;
    s->compression_ratio = r->compression_ratio;
    s->no_speech_prob = r->no_speech_prob;
    return MT_OK;
}

int mt_stt_transcribe(mt_whisper *w, const mt_wtok *tok, const float *audio, size_t n, const mt_stt_opts *o,
                      mt_stt_result *res, mt_err *err)
{
    memset(res, 0, sizeof *res);
    const mt_whisper_hp *hp = mt_whisper_hparams(w);
    if (hp->n_vocab != tok->n_vocab)
        return mt_seterr(err, MT_EINVAL, "tokenizer (%d ids) does not match the model (%d ids)", tok->n_vocab, hp->n_vocab);
    if (o->task != 0 && o->task != 1) return mt_seterr(err, MT_EINVAL, "task must be transcribe or translate");
    if (o->task == 1 && !tok->multilingual)
        return mt_seterr(err, MT_EINVAL, "translate needs a multilingual model (this one is English-only)");
    if (o->n_temperatures < 1 || o->n_temperatures > MT_STT_MAX_TEMPS)
        return mt_seterr(err, MT_EINVAL, "between 1 and %d temperatures are needed", MT_STT_MAX_TEMPS);
    for (int i = 0; i < o->n_temperatures; i++)
        if (!(o->temperatures[i] >= 0)) return mt_seterr(err, MT_EINVAL, "temperature must be >= 0");
    if (o->beam_size < 0 || o->best_of < 0) return mt_seterr(err, MT_EINVAL, "beam_size and best_of must be >= 0");
    if (o->length_penalty >= 0 && o->length_penalty > 1)
        return mt_seterr(err, MT_EINVAL, "length_penalty (alpha) should be a value between 0 and 1");
    if (o->n_clip < 0 || o->n_clip > MT_STT_MAX_CLIPS) return mt_seterr(err, MT_EINVAL, "too many clip timestamps");
    if (hp->n_audio_ctx <= 0 || MT_WHISPER_NFRAMES % hp->n_audio_ctx)
        return mt_seterr(err, MT_EUNSUPPORTED, "n_audio_ctx %d does not divide %d frames", hp->n_audio_ctx, MT_WHISPER_NFRAMES);

    int lang = -1;
    if (o->language && *o->language) {
        lang = mt_wtok_lang_index(NULL, o->language);
        if (lang < 0 || (tok->multilingual && lang >= tok->n_langs))
            return mt_seterr(err, MT_EINVAL, "unsupported language: %s", o->language);
    }

    int rc = MT_OK;
    mt_mel *mm = NULL;
    float *mel = NULL, *win = NULL, *xa = NULL;
    int32_t *suppress = NULL, *iprompt = NULL;
    size_t n_suppress = 0, n_iprompt = 0;
    segvec all = {0}, cur = {0};
    i32vec all_tokens = {0};
    stt_dec_result dr = {0};
    double clips[MT_STT_MAX_CLIPS + 2];
    int n_clips = o->n_clip;
    memcpy(clips, o->clip_timestamps, sizeof(double) * (size_t)o->n_clip);
    int no_clip_at_all = 0;
    if (o->vad) {
#ifdef HAVE_VAD
        int nc = 0;
        if (mt_stt_vad(audio, n, MT_WHISPER_RATE, o->vad_threshold_db, clips, MT_STT_MAX_CLIPS, &nc))
            return mt_seterr(err, MT_ENOMEM, "vad: out of memory");
        n_clips = nc;
        if (nc == 0) no_clip_at_all = 1;
#else
        return mt_seterr(err, MT_EUNSUPPORTED, "this build has no VAD");
#endif
    }

    size_t n_frames = 0;
    int n_mels = hp->n_mels, stride = MT_WHISPER_NFRAMES / hp->n_audio_ctx;
    double time_precision = stride * (double)MT_WHISPER_HOP / MT_WHISPER_RATE;
    if ((rc = mt_mel_new(&mm, n_mels, err))) goto done;
    if ((rc = mt_mel_compute(mm, audio, n, MT_WHISPER_NSAMPLES, NULL, &mel, &n_frames, err))) goto done;
    long content_frames = (long)n_frames - MT_WHISPER_NFRAMES;
    double content_duration = (double)content_frames * MT_WHISPER_HOP / MT_WHISPER_RATE;
    res->duration = (double)n / MT_WHISPER_RATE;
    win = malloc((size_t)n_mels * MT_WHISPER_NFRAMES * sizeof *win);
    xa = malloc((size_t)hp->n_audio_ctx * hp->n_audio_state * sizeof *xa);
    if (!win || !xa) { rc = mt_seterr(err, MT_ENOMEM, "transcribe: out of memory"); goto done; }

    if (lang < 0) {
        if (!tok->multilingual) lang = 0;
        else {
            mt_mel_window(mel, n_mels, n_frames, 0, MT_WHISPER_NFRAMES, win);
            if ((rc = mt_whisper_encode(w, win, xa, err))) goto done;
            mt_err e2 = {0};
            int best = mt_stt_detect_language(w, tok, xa, NULL, &e2);
            if (best < 0) {
                rc = e2.code ? e2.code : MT_EINVAL;
                if (err) *err = e2;
                goto done;
            }
            lang = best;
        }
    }
    snprintf(res->language, sizeof res->language, "%s", mt_wtok_lang_code(lang));
    int dec_lang = tok->multilingual ? lang : -1;

    if ((rc = stt_suppress_tokens(tok, o->suppress_tokens, &suppress, &n_suppress, err))) goto done;

    /* seek clips */
    long pts[MT_STT_MAX_CLIPS + 2];
    int np = 0;
    for (int i = 0; i < n_clips; i++) pts[np++] = (long)stt_round_half_even(clips[i] * 100.0);
    if (np == 0 && !no_clip_at_all) pts[np++] = 0;
    if (np % 2 == 1) pts[np++] = content_frames;
    int n_pairs = np / 2;

    if (o->initial_prompt) {
        char *st = stt_py_strip(o->initial_prompt);
        char *sp = st ? malloc(strlen(st) + 2) : NULL;
        if (!sp) { free(st); rc = mt_seterr(err, MT_ENOMEM, "transcribe: out of memory"); goto done; }
        sprintf(sp, " %s", st);
        free(st);
        rc = mt_wtok_encode(tok, sp, &iprompt, &n_iprompt, err);
        free(sp);
        if (rc) goto done;
        if (i32vec_add(&all_tokens, iprompt, n_iprompt)) { rc = mt_seterr(err, MT_ENOMEM, "transcribe: out of memory"); goto done; }
    }

    uint64_t rng[4];
    stt_rng_seed(rng, o->seed);
    size_t prompt_reset_since = 0;
    double last_speech = 0.0;
    int clip_idx = 0;
    long seek = n_pairs ? pts[0] : 0;
    double hst = o->hallucination_silence_threshold;
    while (clip_idx < n_pairs) {
        long cs = pts[2 * clip_idx], ce = pts[2 * clip_idx + 1];
        if (seek < cs) seek = cs;
        if (seek >= ce) {
            clip_idx++;
            if (clip_idx < n_pairs) seek = pts[2 * clip_idx];
            continue;
        }
        double time_offset = (double)seek * MT_WHISPER_HOP / MT_WHISPER_RATE;
        double window_end_time = (double)(seek + MT_WHISPER_NFRAMES) * MT_WHISPER_HOP / MT_WHISPER_RATE;
        long segment_size = MT_WHISPER_NFRAMES;
        if (content_frames - seek < segment_size) segment_size = content_frames - seek;
        if (ce - seek < segment_size) segment_size = ce - seek;
        if (segment_size <= 0) {   /* a clip that ends after the audio: nothing left to decode in it */
            clip_idx++;
            if (clip_idx < n_pairs) seek = pts[2 * clip_idx];
            continue;
        }
        double segment_duration = (double)segment_size * MT_WHISPER_HOP / MT_WHISPER_RATE;
        if (seek < 0 || (size_t)seek > n_frames) { rc = mt_seterr(err, MT_EINVAL, "clip timestamps out of range"); goto done; }
        if (o->progress) o->progress(o->progress_user, time_offset < res->duration ? time_offset : res->duration,
                                     res->duration);
        mt_mel_window(mel, n_mels, n_frames, (size_t)seek, segment_size > 0 ? (size_t)segment_size : 0, win);
        if ((rc = mt_whisper_encode(w, win, xa, err))) goto done;

        /* decode_with_fallback */
        for (int ti = 0; ti < o->n_temperatures; ti++) {
            double tt = o->temperatures[ti];
            stt_dec_opts d = {
                .lang = dec_lang, .task = o->task, .temperature = tt,
                .best_of = tt > 0 ? o->best_of : 0, .beam_size = tt > 0 ? 0 : o->beam_size,
                .patience = o->patience, .has_length_penalty = o->length_penalty >= 0,
                .length_penalty = o->length_penalty,
                .prompt = all_tokens.v + prompt_reset_since, .n_prompt = all_tokens.n - prompt_reset_since,
                .suppress = suppress, .n_suppress = n_suppress, .suppress_blank = o->suppress_blank,
                .without_timestamps = o->without_timestamps, .max_initial_timestamp = o->max_initial_timestamp,
                .rng = rng,
            };
            stt_dec_result_free(&dr);
            if ((rc = stt_decode_window(w, tok, xa, &d, &dr, err))) goto done;
            int fb = 0;
            if (o->compression_ratio_threshold > 0 && dr.compression_ratio > o->compression_ratio_threshold) fb = 1;
            if (!isnan(o->logprob_threshold) && dr.avg_logprob < o->logprob_threshold) fb = 1;
            if (!isnan(o->no_speech_threshold) && dr.no_speech_prob > o->no_speech_threshold &&
                !isnan(o->logprob_threshold) && dr.avg_logprob < o->logprob_threshold)
                fb = 0;
            if (!fb) break;
        }

        if (!isnan(o->no_speech_threshold)) {
            int skip = dr.no_speech_prob > o->no_speech_threshold;
            if (!isnan(o->logprob_threshold) && dr.avg_logprob > o->logprob_threshold) skip = 0;
            if (skip) {
                seek += segment_size;
                continue;
            }
        }

        long previous_seek = seek;
        for (size_t i = 0; i < cur.n; i++) seg_clear(&cur.v[i]);
        cur.n = 0;
        const int32_t *tk = dr.tokens;
        size_t nt = dr.n_tokens;
        int32_t tb = tok->timestamp_begin;
        int single_end = nt >= 2 && tk[nt - 2] < tb && tk[nt - 1] >= tb;
        size_t n_slices = 0;
        size_t *slices = malloc((nt + 1) * sizeof *slices);
        if (!slices) { rc = mt_seterr(err, MT_ENOMEM, "transcribe: out of memory"); goto done; }
        for (size_t i = 0; i + 1 < nt; i++)
            if (tk[i] >= tb && tk[i + 1] >= tb) slices[n_slices++] = i + 1;
        if (n_slices > 0) {
            if (single_end) slices[n_slices++] = nt;
            size_t last_slice = 0;
            for (size_t k = 0; k < n_slices; k++) {
                const int32_t *sl = tk + last_slice;
                size_t sn = slices[k] - last_slice;
                double st = time_offset + (sl[0] - tb) * time_precision;
                double en = time_offset + (sl[sn - 1] - tb) * time_precision;
                if ((rc = new_segment(&cur, (int)seek, st, en, sl, sn, &dr, tok, err))) { free(slices); goto done; }
                last_slice = slices[k];
            }
            free(slices);
            if (single_end) seek += segment_size;
            else seek += (long)(tk[last_slice - 1] - tb) * stride;
        } else {
            double duration = segment_duration;
            int32_t last_ts = -1;
            for (size_t i = 0; i < nt; i++) if (tk[i] >= tb) last_ts = tk[i];
            if (last_ts >= 0 && last_ts != tb) duration = (last_ts - tb) * time_precision;
            free(slices);
            if ((rc = new_segment(&cur, (int)seek, time_offset, time_offset + duration, tk, nt, &dr, tok, err))) goto done;
            seek += segment_size;
        }

        if (o->word_timestamps) {
            if ((rc = stt_add_word_timestamps(w, tok, tok->multilingual ? lang : -1, o->task, xa, cur.v, cur.n, (int)segment_size,
                                              o->prepend_punctuations, o->append_punctuations, last_speech, err)))
                goto done;
            int has;
            if (!single_end) {
                double lwe = get_end(cur.v, cur.n, &has);
                if (has && lwe > time_offset) seek = (long)stt_round_half_even(lwe * 100.0);
            }
            if (hst > 0) {
                if (!single_end) {
                    double lwe = get_end(cur.v, cur.n, &has);
                    if (has && lwe > time_offset) {
                        if (window_end_time - lwe > hst) seek = (long)stt_round_half_even(lwe * 100.0);
                        else seek = previous_seek + segment_size;
                    }
                }
                const mt_stt_segment *first = next_words_segment(cur.v, cur.n);
                if (first && is_segment_anomaly(first)) {
                    double gap = first->start - time_offset;
                    if (gap > hst) {
                        seek = previous_seek + (long)stt_round_half_even(gap * 100.0);
                        continue;
                    }
                }
                double hal_last_end = last_speech;
                for (size_t si = 0; si < cur.n; si++) {
                    mt_stt_segment *sg = &cur.v[si];
                    if (!sg->n_words) continue;
                    if (is_segment_anomaly(sg)) {
                        const mt_stt_segment *nx = next_words_segment(cur.v + si + 1, cur.n - si - 1);
                        double hal_next_start = nx ? nx->words[0].start : time_offset + segment_duration;
                        int before = sg->start - hal_last_end > hst || sg->start < hst || sg->start - time_offset < 2.0;
                        int after = hal_next_start - sg->end > hst || is_segment_anomaly(nx) || window_end_time - sg->end < 2.0;
                        if (before && after) {
                            double m = time_offset + 1 > sg->start ? time_offset + 1 : sg->start;
                            seek = (long)stt_round_half_even(m * 100.0);
                            if (content_duration - sg->end < hst) seek = content_frames;
                            for (size_t k = si; k < cur.n; k++) seg_clear(&cur.v[k]);
                            cur.n = si;
                            break;
                        }
                    }
                    hal_last_end = sg->end;
                }
            }
            double lwe = get_end(cur.v, cur.n, &has);
            if (has) last_speech = lwe;
        }

        for (size_t i = 0; i < cur.n; i++) {
            mt_stt_segment *sg = &cur.v[i];
            if (sg->start == sg->end || is_blank(sg->text)) {
                sg->text[0] = 0;
                sg->n_tokens = 0;
                for (size_t k = 0; k < sg->n_words; k++) free(sg->words[k].word);
                sg->n_words = 0;
            }
        }
        for (size_t i = 0; i < cur.n; i++) {
            mt_stt_segment *sg = segvec_push(&all);
            if (!sg) { rc = mt_seterr(err, MT_ENOMEM, "transcribe: out of memory"); goto done; }
            *sg = cur.v[i];
            sg->id = (int)(all.n - 1);
            memset(&cur.v[i], 0, sizeof cur.v[i]);
            if (i32vec_add(&all_tokens, sg->tokens, sg->n_tokens)) { rc = mt_seterr(err, MT_ENOMEM, "transcribe: out of memory"); goto done; }
        }
        cur.n = 0;
        if (!o->condition_on_previous_text || dr.temperature > 0.5) prompt_reset_since = all_tokens.n;
    }

    if ((rc = mt_wtok_decode(tok, all_tokens.v + n_iprompt, all_tokens.n - n_iprompt, &res->text, err))) goto done;
    res->segs = all.v;
    res->n_segs = all.n;
    all.v = NULL;
    all.n = 0;
    if (o->progress) o->progress(o->progress_user, res->duration, res->duration);

done:
    for (size_t i = 0; i < all.n; i++) seg_clear(&all.v[i]);
    free(all.v);
    for (size_t i = 0; i < cur.n; i++) seg_clear(&cur.v[i]);
    free(cur.v);
    free(all_tokens.v);
    stt_dec_result_free(&dr);
    free(suppress);
    free(iprompt);
    free(mel);
    free(win);
    free(xa);
    mt_mel_free(mm);
    if (rc) mt_stt_result_free(res);
    return rc;
}
