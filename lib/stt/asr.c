/* asr.c - the speech-recogniser registry (keyed by config.json's model_type,
 * as mlx-audio's loader maps it), the dispatch, and the shared CTC decoder. */
#include <stdlib.h>
#include <string.h>

#include "stt/asr.h"

/* Each family file defines one of these.  Weak references: a family whose
 * file is not in the build is simply absent from the registry. */
extern const mt_asr_family mt_asr_parakeet __attribute__((weak));
extern const mt_asr_family mt_asr_wav2vec2 __attribute__((weak));
extern const mt_asr_family mt_asr_moonshine __attribute__((weak));
extern const mt_asr_family mt_asr_voxtral __attribute__((weak));
extern const mt_asr_family mt_asr_qwen3_asr __attribute__((weak));

struct mt_asr {
    const mt_asr_family *fam;
    void *self;
};

const mt_asr_family *const *mt_asr_families(size_t *n) {
    static const mt_asr_family *list[8];
    const mt_asr_family *all[] = {&mt_asr_parakeet, &mt_asr_wav2vec2, &mt_asr_moonshine, &mt_asr_voxtral,
                                  &mt_asr_qwen3_asr};
    size_t k = 0;
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (all[i]) list[k++] = all[i];
    *n = k;
    return list;
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
