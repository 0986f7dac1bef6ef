/* asr.c - the speech-recogniser registry (keyed by config.json's model_type,
 * as mlx-audio's loader maps it), the dispatch, and the shared CTC decoder. */
#include <stdlib.h>
#include <string.h>

#include "stt/asr.h"

/* Each family file defines one of these; the table below is the registry
 * (its references are what pull the family into a program linked against the
 * static library). */
extern const mt_asr_family mt_asr_parakeet;
extern const mt_asr_family mt_asr_wav2vec2;
extern const mt_asr_family mt_asr_moonshine;
extern const mt_asr_family mt_asr_voxtral;
extern const mt_asr_family mt_asr_qwen3_asr;

struct mt_asr {
    const mt_asr_family *fam;
    void *self;
};

static const mt_asr_family *const families[] = {
    &mt_asr_parakeet,
    &mt_asr_wav2vec2,
    &mt_asr_moonshine,
    &mt_asr_voxtral,
    &mt_asr_qwen3_asr,
};

const mt_asr_family *const *mt_asr_families(size_t *n) {
    *n = sizeof families / sizeof *families;
    return families;
}

static int takes(const mt_asr_family *f, const char *mt) {
    for (const char *const *p = f->model_types; p && *p; p++)
        if (!strcmp(*p, mt)) return 1;
    return 0;
}

static int find(const mt_config *c, const char *dir, const mt_asr_family **fam, mt_err *err) {
    size_t n;
    const mt_asr_family *const *fs = mt_asr_families(&n);
    const char *mt = mt_config_model_type(c);
    *fam = NULL;
    if (mt && !strcmp(mt, "whisper")) return MT_OK;
    if (mt) {
        for (size_t i = 0; i < n; i++)
            if (takes(fs[i], mt)) {
                *fam = fs[i];
                return MT_OK;
            }
    } else {
        for (size_t i = 0; i < n; i++)
            if (fs[i]->claims && fs[i]->claims(c)) {
                *fam = fs[i];
                return MT_OK;
            }
        /* no model_type: Whisper's keys (mlx-whisper or transformers layout) */
        if (mt_config_get(c, "n_audio_state") || mt_config_get(c, "d_model")) return MT_OK;
    }
    char known[512] = "whisper";
    for (size_t i = 0; i < n; i++)
        for (const char *const *p = fs[i]->model_types; p && *p; p++) {
            size_t k = strlen(known);
            snprintf(known + k, sizeof known - k, ", %s", *p);
        }
    if (mt)
        return mt_seterr(err, MT_EUNSUPPORTED, "%s: model_type '%s' is not a speech recogniser mlx-stt runs (it runs: %s)",
                         dir, mt, known);
    return mt_seterr(err, MT_EUNSUPPORTED,
                     "%s: config.json names no model_type and is not a Whisper config (mlx-stt runs: %s)", dir, known);
}

int mt_asr_detect(const char *dir, const mt_asr_family **fam, mt_err *err) {
    mt_config *c = NULL;
    MT_TRY(mt_config_load(&c, dir, err));
    int rc = find(c, dir, fam, err);
    mt_config_free(c);
    return rc;
}

int mt_asr_load(mt_asr **out, const char *dir, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_config *c = NULL;
    MT_TRY(mt_config_load(&c, dir, err));
    const mt_asr_family *f = NULL;
    int rc = find(c, dir, &f, err);
    if (!rc && !f) rc = mt_seterr(err, MT_EINVAL, "%s: a Whisper folder (load it with mt_whisper_load)", dir);
    mt_asr *a = NULL;
    if (!rc && !(a = calloc(1, sizeof *a))) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) {
        a->fam = f;
        rc = f->load(&a->self, dir, c, pool, err);
        if (rc) {
            free(a);
            a = NULL;
        }
    }
    mt_config_free(c);
    *out = a;
    return rc;
}

void mt_asr_free(mt_asr *a) {
    if (!a) return;
    a->fam->free(a->self);
    free(a);
}

const mt_asr_family *mt_asr_family_of(const mt_asr *a) { return a->fam; }

int mt_asr_transcribe(mt_asr *a, const float *audio, size_t n, const mt_asr_opts *o, mt_stt_result *res,
                      mt_err *err) {
    memset(res, 0, sizeof *res);
    const mt_asr_family *f = a->fam;
    if (o->task == 1 && !(f->caps & MT_ASR_TRANSLATE))
        return mt_seterr(err, MT_EINVAL, "task translate: %s models only transcribe", f->name);
    if (o->word_timestamps && !(f->caps & MT_ASR_WORDS))
        return mt_seterr(err, MT_EINVAL, "word timestamps: %s models do not give them", f->name);
    return f->transcribe(a->self, audio, n, o, res, err);
}

size_t mt_ctc_greedy(const float *logits, size_t T, size_t V, int blank, int32_t *ids, int32_t *first,
                     int32_t *last) {
    size_t k = 0;
    int prev = -1;
    for (size_t t = 0; t < T; t++) {
        const float *row = logits + t * V;
        int best = 0;
        for (size_t v = 1; v < V; v++)
            if (row[v] > row[best]) best = (int)v;
        if (best != prev && best != blank) {
            ids[k] = best;
            if (first) first[k] = (int32_t)t;
            if (last) last[k] = (int32_t)t;
            k++;
        } else if (best == prev && best != blank && last) {
            last[k - 1] = (int32_t)t;
        }
        prev = best;
    }
    return k;
}

/* ---- transcription of clips (voice activity regions) ---- */

typedef struct clip_progress {
    mt_stt_progress_fn fn;
    void *user;
    double offset, total;
} clip_progress;

static void clip_progress_cb(void *user, double pos, double total) {
    (void)total;
    clip_progress *c = user;
    c->fn(c->user, c->offset + pos, c->total);
}

/* Append src's segments to dst, times shifted by off seconds; src is emptied. */
static int append_shifted(mt_stt_result *dst, mt_stt_result *src, double off, mt_err *err) {
    if (!src->n_segs) return MT_OK;
    mt_stt_segment *s = realloc(dst->segs, (dst->n_segs + src->n_segs) * sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    dst->segs = s;
    for (size_t i = 0; i < src->n_segs; i++) {
        mt_stt_segment *g = &s[dst->n_segs];
        *g = src->segs[i];
        g->id = (int)dst->n_segs;
        g->start += off;
        g->end += off;
        for (size_t w = 0; w < g->n_words; w++) {
            g->words[w].start += off;
            g->words[w].end += off;
        }
        dst->n_segs++;
    }
    free(src->segs);
    src->segs = NULL;
    src->n_segs = 0;
    return MT_OK;
}

static int append_text(mt_stt_result *dst, const char *t, mt_err *err) {
    if (!t || !*t) return MT_OK;
    size_t a = dst->text ? strlen(dst->text) : 0, b = strlen(t);
    char *s = realloc(dst->text, a + b + 2);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (a) s[a++] = ' ';
    memcpy(s + a, t, b + 1);
    dst->text = s;
    return MT_OK;
}

int mt_asr_transcribe_clips(mt_asr *a, const float *audio, size_t n, const double *clips, int n_clip,
                            const mt_asr_opts *o, mt_stt_result *res, mt_err *err) {
    if (n_clip <= 0) return mt_asr_transcribe(a, audio, n, o, res, err);
    memset(res, 0, sizeof *res);
    const double rate = 16000.0, dur = (double)n / rate;
    clip_progress cp = {.fn = o->progress, .user = o->progress_user, .total = dur};
    int rc = MT_OK;
    for (int k = 0; !rc && k < n_clip; k += 2) {
        double t0 = clips[k], t1 = k + 1 < n_clip ? clips[k + 1] : dur;
        size_t i0 = (size_t)(t0 * rate), i1 = (size_t)(t1 * rate);
        if (i1 > n) i1 = n;
        if (i0 >= i1) continue;
        mt_asr_opts oc = *o;
        if (o->progress) {
            cp.offset = (double)i0 / rate;
            oc.progress = clip_progress_cb;
            oc.progress_user = &cp;
        }
        mt_stt_result part;
        rc = mt_asr_transcribe(a, audio + i0, i1 - i0, &oc, &part, err);
        if (!rc) {
            if (!res->language[0]) memcpy(res->language, part.language, sizeof res->language);
            rc = append_text(res, part.text, err);
        }
        if (!rc) rc = append_shifted(res, &part, (double)i0 / rate, err);
        mt_stt_result_free(&part);
    }
    if (!rc && !res->text && !(res->text = calloc(1, 1))) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    res->duration = dur;
    return rc;
}
