/* job.c - mlx-tts's record handler (see job.h). */
#include "tts/job.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"
#include "core/jsonl.h"
#include "tts/tts.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int mt_tts_job_lang(mt_tts_job *j, const char *lang, mt_g2p **g, mt_err *err) {
    for (size_t i = 0; i < j->n_g2p; i++)
        if (!strcmp(j->g2p_lang[i], lang)) { *g = j->g2p[i]; return MT_OK; }
    mt_g2p *h = NULL;
    int rc = mt_g2p_open(lang, &h, err);
    if (rc == MT_ENOTFOUND || rc == MT_EINVAL) return mt_seterr(err, rc, "unknown lang '%s' (no espeak-ng voice)", lang);
    if (rc) return rc;
    if (j->n_g2p == MT_TTS_MAX_LANGS) {   /* drop the oldest */
        mt_g2p_free(j->g2p[0]);
        free(j->g2p_lang[0]);
        memmove(j->g2p, j->g2p + 1, (MT_TTS_MAX_LANGS - 1) * sizeof *j->g2p);
        memmove(j->g2p_lang, j->g2p_lang + 1, (MT_TTS_MAX_LANGS - 1) * sizeof *j->g2p_lang);
        j->n_g2p--;
    }
    char *l = strdup(lang);
    if (!l) { mt_g2p_free(h); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    j->g2p_lang[j->n_g2p] = l;
    j->g2p[j->n_g2p++] = h;
    *g = h;
    return MT_OK;
}

int mt_tts_job_voice(mt_tts_job *j, const char *spec, mt_err *err) {
    if (j->voice_spec && !strcmp(j->voice_spec, spec)) return MT_OK;
    float *p = NULL;
    size_t r = 0;
    MT_TRY(mt_tts_voice(j->k, j->dir, spec, &p, &r, err));
    char *s = strdup(spec);
    if (!s) { free(p); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    free(j->voice_spec);
    free(j->pack);
    j->voice_spec = s;
    j->pack = p;
    j->rows = r;
    return MT_OK;
}

/* The file name's stem from the record's id (a string as it is, else its JSON text). */
static char *id_stem(json_t *id, size_t lineno) {
    char buf[32];
    char *txt = NULL;
    const char *s = buf;
    if (!id) snprintf(buf, sizeof buf, "%zu", lineno);
    else if (json_is_string(id)) s = json_string_value(id);
    else if (json_is_integer(id)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(id));
    else s = txt = json_dumps(id, JSON_COMPACT | JSON_ENCODE_ANY);
    char *r = s ? mt_tts_file_stem(s) : NULL;
    free(txt);
    return r;
}

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Adds path to the run's set of written files; MT_EINVAL when it is there already. */
static int claim_name(mt_tts_job *j, const char *path, mt_err *err) {
    if (2 * (j->n_names + 1) > j->cap_names) {
        size_t cap = j->cap_names ? 2 * j->cap_names : 64;
        char **t = calloc(cap, sizeof *t);
        if (!t) return mt_seterr(err, MT_ENOMEM, "out of memory");
        for (size_t i = 0; i < j->cap_names; i++) {
            if (!j->names[i]) continue;
            size_t h = (size_t)name_hash(j->names[i]) & (cap - 1);
            while (t[h]) h = (h + 1) & (cap - 1);
            t[h] = j->names[i];
        }
        free(j->names);
        j->names = t;
        j->cap_names = cap;
    }
    size_t h = (size_t)name_hash(path) & (j->cap_names - 1);
    for (; j->names[h]; h = (h + 1) & (j->cap_names - 1))
        if (!strcmp(j->names[h], path))
            return mt_seterr(err, MT_EINVAL, "%s was already written by an earlier record of this run (same id, or "
                             "ids that give the same file name)", path);
    if (!(j->names[h] = strdup(path))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    j->n_names++;
    return MT_OK;
}

static int all_space(const char *s) {
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return 0;
    return 1;
}

int mt_tts_record(void *user, json_t *rec, size_t lineno, json_t **out, mt_err *err) {
    mt_tts_job *j = user;
    const char *text = NULL, *ph_in = NULL, *voice = j->voice, *lang = j->lang;
    size_t tlen = 0, plen = 0;
    double speed = j->speed;
    MT_TRY(mt_json_get_string(rec, "text", &text, &tlen, 0, err));
    MT_TRY(mt_json_get_string(rec, "phonemes", &ph_in, &plen, 0, err));
    const char *v = NULL, *l = NULL;
    MT_TRY(mt_json_get_string(rec, "voice", &v, NULL, 0, err));
    MT_TRY(mt_json_get_string(rec, "lang", &l, NULL, 0, err));
    if (v) voice = v;
    if (l) lang = l;
    MT_TRY(mt_json_get_number(rec, "speed", &speed, err));
    if (text && ph_in) return mt_seterr(err, MT_EINVAL, "give \"text\" or \"phonemes\", not both");
    if (!text && !ph_in) return mt_seterr(err, MT_EINVAL, "no \"text\" (or \"phonemes\")");
    if (text && all_space(text)) return mt_seterr(err, MT_EINVAL, "empty text");
    if (ph_in && all_space(ph_in)) return mt_seterr(err, MT_EINVAL, "empty phonemes");
    if (j->orph && ph_in) return mt_seterr(err, MT_EINVAL, "Orpheus speaks \"text\"; \"phonemes\" are for Kokoro");
    if (j->orph && speed != 1) return mt_seterr(err, MT_EINVAL, "Orpheus has no speed; \"speed\" is for Kokoro");
    if (!(speed >= MT_TTS_SPEED_MIN && speed <= MT_TTS_SPEED_MAX))
        return mt_seterr(err, MT_EINVAL, "speed %g is outside [%g, %g]", speed, MT_TTS_SPEED_MIN, MT_TTS_SPEED_MAX);
    if (!j->orph) MT_TRY(mt_tts_job_voice(j, voice, err));
    char *ph = NULL;
    size_t phl = 0;
    if (!j->orph && text) {   /* Kokoro: phonemes from the text */
        mt_g2p *g = NULL;
        MT_TRY(mt_tts_job_lang(j, lang, &g, err));
        MT_TRY(mt_g2p_phonemize(g, text, tlen, &ph, &phl, err));
        if (!mt_tts_speakable(ph)) { free(ph); return mt_seterr(err, MT_EINVAL, "the text has nothing to speak"); }
    } else if (!j->orph) {
        if (!(ph = strdup(ph_in))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    double t0 = now_s();
    float *wav = NULL;
    size_t n = 0;
    int rc = j->orph ? mt_orpheus_synth(j->orph, text, voice, &j->oopts, &wav, &n, err)
                     : mt_tts_synth(j->k, ph, j->pack, j->rows, (float)speed, &j->opts, &wav, &n, err);
    if (!rc && !n) rc = mt_seterr(err, MT_EINVAL, "the model generated no audio codes (raise --max-tokens?)");
    double dt = now_s() - t0;
    int rate = j->orph ? mt_orpheus_sample_rate(j->orph) : mt_kokoro_sample_rate(j->k);
    char *path = NULL;
    if (!rc && j->raw) {
        rc = mt_tts_write_pcm(j->raw, j->raw_s16, wav, n, err);
        if (!rc && fflush(j->raw)) rc = mt_seterr(err, MT_EIO, "standard output: write failed");
        if (rc) {
            char m[sizeof err->msg];
            memcpy(m, err->msg, sizeof m);
            rc = mt_seterr(err, MT_EFATAL, "raw audio: %s", m);
        }
    } else if (!rc) {
        if (j->out_path) path = strdup(j->out_path);
        else {
            char *stem = id_stem(json_object_get(rec, "id"), lineno);
            const char *ext = mt_tts_format_ext(j->format);
            path = stem ? malloc(strlen(j->out_dir) + strlen(stem) + strlen(ext) + 3) : NULL;
            if (path) sprintf(path, "%s/%s.%s", j->out_dir, stem, ext);
            free(stem);
        }
        if (!path) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        else if (!(rc = claim_name(j, path, err))) rc = mt_tts_write_file(path, j->format, wav, n, rate, err);
    }
    free(wav);
    if (!rc) {
        json_t *o = json_object();
        if (path) json_object_set_new(o, "file", mt_json_string_lossy(path, strlen(path)));
        json_object_set_new(o, "seconds", json_real((double)n / rate));
        json_object_set_new(o, "samples", json_integer((json_int_t)n));
        json_object_set_new(o, "sample_rate", json_integer(rate));
        if (ph) json_object_set_new(o, "phonemes", mt_json_string_lossy(ph, strlen(ph)));
        if (!j->reproducible) json_object_set_new(o, "rtf", json_real(n ? dt * rate / (double)n : 0));
        *out = o;
    }
    free(path);
    free(ph);
    return rc;
}

void mt_tts_job_clear(mt_tts_job *j) {
    free(j->voice_spec);
    free(j->pack);
    for (size_t i = 0; i < j->n_g2p; i++) { mt_g2p_free(j->g2p[i]); free(j->g2p_lang[i]); }
    for (size_t i = 0; i < j->cap_names; i++) free(j->names[i]);
    free(j->names);
    j->names = NULL;
    j->n_names = j->cap_names = 0;
    j->voice_spec = NULL;
    j->pack = NULL;
    j->n_g2p = 0;
}
