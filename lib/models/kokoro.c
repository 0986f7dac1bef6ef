/* kokoro.c - Kokoro's public API: loading a folder (config.json, weights, vocabulary),
 * phonemes to ids, voice packs, and the synthesis pipeline in mlx-audio's order (ALBERT,
 * bert_encoder, durations, alignment, F0/N, text encoder, decoder).
 *
 * ref: mlx_audio/tts/models/kokoro/kokoro.py (Model.__call__, ModelConfig),
 *      pipeline.py (voice rows: pack[len(phonemes) - 1]). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "models/kokoro_int.h"

#define KK_MAX_FRAMES 100   /* mlx-audio's max_frames_per_phoneme */

static int cfg_int(const mt_config *cfg, const char *key, long long lo, long long hi, int *out, mt_err *err) {
    long long v = 0;
    if (!mt_config_get(cfg, key)) return mt_seterr(err, MT_EFORMAT, "config.json: '%s' missing", key);
    MT_TRY(mt_config_get_int(cfg, key, 0, &v, err));
    if (v < lo || v > hi)
        return mt_seterr(err, MT_EFORMAT, "config.json: '%s' = %lld outside [%lld, %lld]", key, v, lo, hi);
    *out = (int)v;
    return MT_OK;
}

/* One UTF-8 code point at s (NUL-terminated); returns its length, 0 when invalid. */
static int utf8_next(const unsigned char *s, uint32_t *cp) {
    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    int n = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (!n) return 0;
    uint32_t c = s[0] & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return n;
}

static int load_vocab(const mt_config *cfg, mt_kokoro *k, mt_err *err) {
    json_t *v = mt_config_get(cfg, "vocab");
    if (!json_is_object(v)) return mt_seterr(err, MT_EFORMAT, "config.json: 'vocab' missing or not an object");
    size_t n = json_object_size(v);
    k->vocab_cp = calloc(n ? n : 1, sizeof *k->vocab_cp);
    k->vocab_id = calloc(n ? n : 1, sizeof *k->vocab_id);
    if (!k->vocab_cp || !k->vocab_id) return mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        uint32_t cp;
        int len = utf8_next((const unsigned char *)key, &cp);
        if (!len || key[len] || !json_is_integer(val) || json_integer_value(val) < 0 ||
            json_integer_value(val) >= k->n_token)
            return mt_seterr(err, MT_EFORMAT, "config.json: vocab entry '%s' is not one character -> id below n_token", key);
        k->vocab_cp[k->vocab_n] = cp;
        k->vocab_id[k->vocab_n++] = (int)json_integer_value(val);
    }
    return MT_OK;
}

int mt_kokoro_load(const char *dir, mt_pool *pool, mt_kokoro **out, mt_err *err) {
    *out = NULL;
    mt_config *cfg = NULL;
    mt_safetensors *st = NULL;
    mt_kokoro *k = calloc(1, sizeof *k);
    if (!k) return mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
    k->pool = pool;
    int rc = mt_config_load(&cfg, dir, err);
    if (!rc) rc = cfg_int(cfg, "style_dim", 1, 1 << 14, &k->S, err);
    if (!rc) rc = cfg_int(cfg, "hidden_dim", 2, 1 << 14, &k->H, err);
    if (!rc) rc = cfg_int(cfg, "n_layer", 1, KK_MAX_LAYERS, &k->n_layer, err);
    if (!rc) rc = cfg_int(cfg, "max_dur", 1, 1 << 14, &k->max_dur, err);
    if (!rc) rc = cfg_int(cfg, "n_token", 1, 1 << 20, &k->n_token, err);
    if (!rc) rc = cfg_int(cfg, "text_encoder_kernel_size", 1, 255, &k->ksize, err);
    if (!rc && (k->H % 2 || k->ksize % 2 == 0))
        rc = mt_seterr(err, MT_EFORMAT, "config.json: hidden_dim must be even and text_encoder_kernel_size odd");
    if (!rc) rc = load_vocab(cfg, k, err);
    if (!rc) rc = mt_safetensors_open_dir(&st, dir, err);
    kk_loader L;
    kk_loader_init(&L, st, cfg, err);
    if (!rc) rc = kk_albert_load(&L, cfg, &k->bert);
    if (!rc && k->bert.V != k->n_token)
        rc = mt_seterr(err, MT_EFORMAT, "bert: %d word embeddings, config n_token %d", k->bert.V, k->n_token);
    if (!rc) rc = kk_linear_load(&L, "bert_encoder", k->bert.H, k->H, 1, &k->bert_enc);
    if (!rc) rc = kk_prosody_load(&L, k);
    if (!rc) rc = kk_decoder_load(&L, k, cfg);
    if (rc) mt_preferr(err, "%s", dir);
    mt_safetensors_free(st);
    mt_config_free(cfg);
    if (rc) {
        mt_kokoro_free(k);
        return rc;
    }
    *out = k;
    return MT_OK;
}

void mt_kokoro_free(mt_kokoro *k) {
    if (!k) return;
    free(k->vocab_cp);
    free(k->vocab_id);
    kk_albert_free(&k->bert);
    kk_linear_free(&k->bert_enc);
    kk_prosody_free(k);
    kk_decoder_free(k);
    free(k);
}

int mt_kokoro_style_dim(const mt_kokoro *k) { return k->S; }
int mt_kokoro_sample_rate(const mt_kokoro *k) { (void)k; return 24000; }
size_t mt_kokoro_max_tokens(const mt_kokoro *k) { return (size_t)k->bert.ctx; }

int mt_kokoro_ids(const mt_kokoro *k, const char *phonemes, int **ids, size_t *n, mt_err *err) {
    *ids = NULL;
    *n = 0;
    size_t len = strlen(phonemes), m = 1;
    int *v = malloc((len + 2) * sizeof(int));
    if (!v) return mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
    v[0] = 0;
    for (const unsigned char *p = (const unsigned char *)phonemes; *p;) {
        uint32_t cp;
        int l = utf8_next(p, &cp);
        if (!l) {
            free(v);
            return mt_seterr(err, MT_EINVAL, "kokoro: phonemes: invalid UTF-8 at byte %zu", (size_t)(p - (const unsigned char *)phonemes));
        }
        p += l;
        for (int i = 0; i < k->vocab_n; i++)
            if (k->vocab_cp[i] == cp) {
                v[m++] = k->vocab_id[i];
                break;
            }
    }
    v[m++] = 0;
    if (m > mt_kokoro_max_tokens(k)) {
        free(v);
        return mt_seterr(err, MT_ELIMIT, "kokoro: %zu tokens with the pads, the model takes at most %zu", m,
                         mt_kokoro_max_tokens(k));
    }
    *ids = v;
    *n = m;
    return MT_OK;
}

int mt_kokoro_voice_load(const mt_kokoro *k, const char *dir, const char *name, float **pack, size_t *rows,
                         mt_err *err) {
    *pack = NULL;
    *rows = 0;
    char path[4096];
    size_t nl = strlen(name);
    if (nl > 12 && !strcmp(name + nl - 12, ".safetensors"))
        snprintf(path, sizeof path, "%s", name);
    else if (snprintf(path, sizeof path, "%s/voices/%s.safetensors", dir, name) >= (int)sizeof path)
        return mt_seterr(err, MT_EINVAL, "kokoro: voice path too long");
    mt_safetensors *st = NULL;
    MT_TRY(mt_safetensors_open(&st, path, err));
    const mt_tensor_view *t = mt_safetensors_get(st, "voice");
    int rc = MT_OK;
    size_t w = 2 * (size_t)k->S;
    if (!t) rc = mt_seterr(err, MT_ENOTFOUND, "%s: tensor 'voice' not found", path);
    else if (t->ndim < 1 || t->ndim > 3 || t->shape[t->ndim - 1] != (int64_t)w || (t->ndim == 3 && t->shape[1] != 1) ||
             mt_tensor_numel(t) == 0)
        rc = mt_seterr(err, MT_EFORMAT, "%s: 'voice' is not [rows, 1, %zu]", path, w);
    if (!rc) {
        size_t n = mt_tensor_numel(t);
        float *p = malloc(n * sizeof(float));
        if (!p) rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
        else if ((rc = mt_safetensors_read_f32(st, "voice", p, n, 0, err))) free(p);
        else {
            *pack = p;
            *rows = n / w;
        }
    }
    mt_safetensors_free(st);
    return rc;
}

const float *mt_kokoro_voice_row(const mt_kokoro *k, const float *pack, size_t rows, size_t n_phonemes) {
    size_t r = n_phonemes < 1 ? 0 : (n_phonemes > rows ? rows : n_phonemes) - 1;
    return pack + r * 2 * (size_t)k->S;
}

void mt_kokoro_trace_free(mt_kokoro_trace *t) {
    if (!t) return;
    free(t->bert); free(t->bert_enc); free(t->d); free(t->dur); free(t->en);
    free(t->F0); free(t->N); free(t->t_en); free(t->asr); free(t->gen_x);
    memset(t, 0, sizeof *t);
}

int mt_kokoro_synth(const mt_kokoro *k, const int *ids, size_t T, const float *style, float speed,
                    const mt_kokoro_opts *opts, float **wav, size_t *len, mt_kokoro_trace *trace, mt_err *err) {
    *wav = NULL;
    *len = 0;
    if (trace) memset(trace, 0, sizeof *trace);
    if (!ids || !style || T < 2 || !(speed > 0.0f))
        return mt_seterr(err, MT_EINVAL, "kokoro: synth needs ids (2 or more, pads included), a style and speed > 0");
    if (T > mt_kokoro_max_tokens(k))
        return mt_seterr(err, MT_ELIMIT, "kokoro: %zu tokens, the model takes at most %zu", T, mt_kokoro_max_tokens(k));
    for (size_t t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= k->n_token)
            return mt_seterr(err, MT_EINVAL, "kokoro: token id %d outside [0, %d)", ids[t], k->n_token);
    mt_kokoro_opts o0 = {0, 0, NULL, NULL};
    if (!opts) opts = &o0;
    size_t H = (size_t)k->H, S = (size_t)k->S, W = H + S, Hb = (size_t)k->bert.H;
    const float *s_pro = style + S, *s_ac = style;
    float *bert = malloc(T * Hb * sizeof(float)), *benc = malloc(T * H * sizeof(float));
    float *d = malloc(T * W * sizeof(float)), *t_en = malloc(H * T * sizeof(float));
    int *dur = malloc(T * sizeof(int));
    float *en = NULL, *asr = NULL, *F0 = NULL, *N = NULL, *audio = NULL, *gen_x = NULL;
    int rc = MT_OK;
    if (!bert || !benc || !d || !t_en || !dur) {
        rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
        goto done;
    }
    if ((rc = kk_albert_fwd(&k->bert, ids, T, bert, k->pool, err))) goto done;
    kk_linear_fwd(&k->bert_enc, bert, T, benc, k->pool);
    if ((rc = kk_durations(k, benc, T, s_pro, speed, d, dur, err))) goto done;
    size_t F = 0;
    for (size_t t = 0; t < T; t++) F += (size_t)dur[t];   /* each in [1, 100] */
    /* alignment: frame f belongs to token tok[f]; en = d^T aligned, asr = t_en aligned */
    en = malloc(W * F * sizeof(float));
    asr = malloc(H * F * sizeof(float));
    F0 = malloc(2 * F * sizeof(float));
    N = malloc(2 * F * sizeof(float));
    if (trace) gen_x = malloc((size_t)k->C0 * 2 * F * sizeof(float));
    if (!en || !asr || !F0 || !N || (trace && !gen_x)) {
        rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory for %zu frames", F);
        goto done;
    }
    for (size_t t = 0, f = 0; t < T; t++)
        for (int r = 0; r < dur[t]; r++, f++)
            for (size_t c = 0; c < W; c++) en[c * F + f] = d[t * W + c];
    if ((rc = kk_f0n(k, en, F, s_pro, F0, N, err))) goto done;
    if ((rc = kk_text_encoder(k, ids, T, t_en, err))) goto done;
    for (size_t t = 0, f = 0; t < T; t++)
        for (int r = 0; r < dur[t]; r++, f++)
            for (size_t c = 0; c < H; c++) asr[c * F + f] = t_en[c * T + t];
    size_t n_audio = 0;
    if ((rc = kk_decoder_fwd(k, asr, F0, N, F, s_ac, opts, &audio, &n_audio, gen_x, err))) goto done;
    *wav = audio;
    *len = n_audio;
    audio = NULL;
    if (trace) {
        trace->T = T;
        trace->F = F;
        trace->bert = bert; bert = NULL;
        trace->bert_enc = benc; benc = NULL;
        trace->d = d; d = NULL;
        trace->dur = dur; dur = NULL;
        trace->en = en; en = NULL;
        trace->F0 = F0; F0 = NULL;
        trace->N = N; N = NULL;
        trace->t_en = t_en; t_en = NULL;
        trace->asr = asr; asr = NULL;
        trace->gen_x = gen_x; gen_x = NULL;
    }
done:
    free(bert); free(benc); free(d); free(t_en); free(dur); free(en); free(asr); free(F0); free(N);
    free(audio); free(gen_x);
    return rc;
}

int mt_kokoro_decode(const mt_kokoro *k, const float *asr, const float *F0, const float *N, size_t F,
                     const float *style, const mt_kokoro_opts *opts, float **wav, size_t *len, mt_err *err) {
    *wav = NULL;
    *len = 0;
    if (!asr || !F0 || !N || !style || F == 0)
        return mt_seterr(err, MT_EINVAL, "kokoro: decode needs asr, F0, N, a style and at least one frame");
    if (F > (size_t)KK_MAX_FRAMES * mt_kokoro_max_tokens(k))
        return mt_seterr(err, MT_ELIMIT, "kokoro: %zu frames, more than the model can be given", F);
    mt_kokoro_opts o0 = {0, 0, NULL, NULL};
    return kk_decoder_fwd(k, asr, F0, N, F, style, opts ? opts : &o0, wav, len, NULL, err);
}
