/* orpheus.c - Orpheus TTS: prompt ids, generation through the shared loop, the token ->
 * SNAC code mapping, decoding, and the segment loop.
 *
 * ref: mlx_audio/tts/models/llama/llama.py (mlx-audio 0.6.2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "gen/generate.h"
#include "tts/orpheus.h"

void mt_orpheus_opts_default(mt_orpheus_opts *o) {
    memset(o, 0, sizeof *o);
    o->temp = 0.6f;
    o->top_p = 0.8f;
    o->repetition_penalty = 1.3f;
    o->repetition_context_size = 20;
    o->max_tokens = 1200;
    o->kv_f16 = -1;
}

static int has_config(const char *dir) {
    char p[4200];
    struct stat sb;
    return snprintf(p, sizeof p, "%s/config.json", dir) < (int)sizeof p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* tokenizer_config.json's eos_token (a string or {"content": ...}) as an id, or -1 */
static int32_t eos_of(const mt_prompter *p) {
    json_t *e = p->tok_config ? json_object_get(p->tok_config, "eos_token") : NULL;
    if (json_is_object(e)) e = json_object_get(e, "content");
    return json_is_string(e) ? mt_tokenizer_token_to_id(p->tok, json_string_value(e)) : -1;
}

int mt_orpheus_load(mt_orpheus **out, const char *dir, const char *codec_dir, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_orpheus *o = calloc(1, sizeof *o);
    if (!o) return mt_seterr(err, MT_ENOMEM, "out of memory");
    char cd[4096];
    int rc = mt_model_load(&o->lm, dir, pool, err);
    if (!rc && o->lm->hp.vocab <= MT_ORPHEUS_AUDIO0 + 6 * MT_ORPHEUS_BOOK)
        rc = mt_seterr(err, MT_EFORMAT, "%s: vocabulary of %d tokens has no room for Orpheus' audio tokens (%d..)", dir,
                       o->lm->hp.vocab, MT_ORPHEUS_AUDIO0);
    if (!rc) rc = mt_prompter_open(&o->text, dir, err);
    if (!rc && !codec_dir) {
        static const char *const sub[] = {"snac_24khz", "snac", "codec"};
        for (size_t i = 0; i < sizeof sub / sizeof *sub && !codec_dir; i++) {
            if (snprintf(cd, sizeof cd, "%s/%s", dir, sub[i]) < (int)sizeof cd && has_config(cd)) codec_dir = cd;
        }
        if (!codec_dir)
            rc = mt_seterr(err, MT_ENOTFOUND,
                           "%s: no SNAC codec folder (snac_24khz/, snac/ or codec/ with a config.json); give one with --codec DIR",
                           dir);
    }
    if (!rc) rc = mt_snac_load(&o->codec, codec_dir, pool, err);
    if (rc) {
        mt_orpheus_free(o);
        return rc;
    }
    o->eos_tok = eos_of(o->text);
    *out = o;
    return MT_OK;
}

void mt_orpheus_free(mt_orpheus *o) {
    if (!o) return;
    mt_model_free(o->lm);
    mt_prompter_free(o->text);
    mt_snac_free(o->codec);
    free(o);
}

int mt_orpheus_sample_rate(const mt_orpheus *o) { return mt_snac_get_info(o->codec)->sample_rate; }

int mt_orpheus_prompt(const mt_orpheus *o, const char *voice, const char *text, int32_t **ids, size_t *n,
                      mt_err *err) {
    *ids = NULL;
    *n = 0;
    size_t lt = strlen(text), lv = voice && *voice ? strlen(voice) : 0;
    char *s = malloc(lv + lt + 3);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    size_t k = 0;
    if (lv) {
        memcpy(s, voice, lv);
        memcpy(s + lv, ": ", 2);
        k = lv + 2;
    }
    memcpy(s + k, text, lt);
    k += lt;
    int32_t *t = NULL;
    size_t nt = 0;
    int rc = mt_tokenizer_encode(o->text->tok, s, k, 1, &t, &nt, err);
    free(s);
    if (rc) return rc;
    int32_t *p = malloc((nt + 3) * sizeof *p);
    if (!p) {
        free(t);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    p[0] = MT_ORPHEUS_SOH;
    memcpy(p + 1, t, nt * sizeof *t);
    p[nt + 1] = MT_ORPHEUS_EOT;
    p[nt + 2] = MT_ORPHEUS_EOH;
    free(t);
    *ids = p;
    *n = nt + 3;
    return MT_OK;
}

int mt_orpheus_generate(mt_orpheus *o, const int32_t *prompt, size_t n, const mt_orpheus_opts *opts,
                        int32_t **toks, size_t *nt, mt_err *err) {
    *toks = NULL;
    *nt = 0;
    mt_gen_params gp;
    mt_gen_params_default(&gp);
    gp.max_tokens = opts->max_tokens;
    gp.sp.temp = opts->temp;
    gp.sp.top_p = opts->top_p;
    gp.sp.repetition_penalty = opts->repetition_penalty;
    gp.sp.repetition_context_size = opts->repetition_context_size;
    gp.sp.seed = opts->seed;
    gp.kv_f16 = opts->kv_f16;
    int32_t eos[2] = {MT_ORPHEUS_EOS, o->eos_tok};
    gp.eos = eos;
    gp.n_eos = o->eos_tok >= 0 ? 2 : 1;
    mt_gen_result r = {0};
    int rc = mt_generate(o->lm, o->text->tok, prompt, n, &gp, NULL, NULL, &r, err);
    if (!rc) {
        *toks = r.tokens;
        *nt = r.n_tokens;
        r.tokens = NULL;
    }
    mt_gen_result_free(&r);
    return rc;
}

int mt_orpheus_codes(const int32_t *ids, size_t n, int32_t **codes, size_t *ncodes, mt_err *err) {
    *codes = NULL;
    *ncodes = 0;
    size_t from = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == MT_ORPHEUS_SOS) from = i + 1;
    int32_t *c = malloc((n - from + 1) * sizeof *c);
    if (!c) return mt_seterr(err, MT_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = from; i < n; i++)
        if (ids[i] != MT_ORPHEUS_EOS) c[k++] = ids[i] - MT_ORPHEUS_AUDIO0;
    *ncodes = k / 7 * 7;
    *codes = c;
    return MT_OK;
}

int mt_orpheus_decode(const mt_orpheus *o, const int32_t *codes, size_t n, const mt_snac_opts *snac, float **wav,
                      size_t *len, mt_err *err) {
    *wav = NULL;
    *len = 0;
    const mt_snac_info *I = mt_snac_get_info(o->codec);
    if (!n || n % 7) return mt_seterr(err, MT_EINVAL, "%zu codes is not a positive multiple of 7", n);
    if (I->n_books != 3 || I->strides[0] != 4 || I->strides[1] != 2 || I->strides[2] != 1)
        return mt_seterr(err, MT_EUNSUPPORTED, "the codec is not SNAC's 3-codebook 24 kHz layout (vq_strides [4, 2, 1])");
    size_t F = n / 7;
    for (size_t i = 0; i < n; i++) {   /* slot j of a frame holds ids AUDIO0 + j*4096 + [0, codebook_size) */
        int32_t v = codes[i] - (int32_t)(i % 7) * MT_ORPHEUS_BOOK;
        if (v < 0 || v >= I->codebook_size)
            return mt_seterr(err, MT_EINVAL,
                             "token %d at frame %zu, slot %zu is not an audio token of that slot (ids %d..%d)",
                             codes[i] + MT_ORPHEUS_AUDIO0, i / 7, i % 7,
                             MT_ORPHEUS_AUDIO0 + (int)(i % 7) * MT_ORPHEUS_BOOK,
                             MT_ORPHEUS_AUDIO0 + (int)(i % 7) * MT_ORPHEUS_BOOK + I->codebook_size - 1);
    }
    int32_t *b = malloc(7 * F * sizeof *b);
    if (!b) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int32_t *l0 = b, *l1 = b + F, *l2 = b + 3 * F;
    for (size_t i = 0; i < F; i++) {
        const int32_t *c = codes + 7 * i;
        l0[i] = c[0];
        l1[2 * i] = c[1] - MT_ORPHEUS_BOOK;
        l1[2 * i + 1] = c[4] - 4 * MT_ORPHEUS_BOOK;
        l2[4 * i] = c[2] - 2 * MT_ORPHEUS_BOOK;
        l2[4 * i + 1] = c[3] - 3 * MT_ORPHEUS_BOOK;
        l2[4 * i + 2] = c[5] - 5 * MT_ORPHEUS_BOOK;
        l2[4 * i + 3] = c[6] - 6 * MT_ORPHEUS_BOOK;
    }
    const int32_t *layers[3] = {l0, l1, l2};
    int rc = mt_snac_decode(o->codec, layers, F, snac, wav, len, err);
    free(b);
    return rc;
}

/* mlx-audio's text.replace("\\n", "\n").replace("\\t", "\t"), malloc'd */
static char *unescape(const char *t) {
    char *s = malloc(strlen(t) + 1);
    if (!s) return NULL;
    size_t k = 0;
    for (const char *p = t; *p; p++) {
        if (p[0] == '\\' && p[1] == 'n') { s[k++] = '\n'; p++; }
        else s[k++] = *p;
    }
    s[k] = 0;
    size_t j = 0;
    for (size_t i = 0; i < k; i++) {
        if (s[i] == '\\' && s[i + 1] == 't') { s[j++] = '\t'; i++; }
        else s[j++] = s[i];
    }
    s[j] = 0;
    return s;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strchr(" \t\r\f\v", s[i])) return 0;
    return 1;
}

int mt_orpheus_synth(mt_orpheus *o, const char *text, const char *voice, const mt_orpheus_opts *opts, float **wav,
                     size_t *len, mt_err *err) {
    *wav = NULL;
    *len = 0;
    char *s = unescape(text);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    float *all = NULL;
    size_t n_all = 0, seg = 0;
    int rc = MT_OK, any = 0;
    for (char *p = s; !rc && p;) {
        char *nl = strchr(p, '\n');
        size_t L = nl ? (size_t)(nl - p) : strlen(p);
        if (!blank(p, L)) {
            any = 1;
            if (nl) *nl = 0;
            int32_t *ids = NULL, *gen = NULL, *codes = NULL;
            size_t n = 0, ng = 0, nc = 0;
            mt_orpheus_opts so = *opts;
            so.seed = opts->seed + seg;
            so.snac.seed = opts->snac.seed + seg;
            rc = mt_orpheus_prompt(o, voice, p, &ids, &n, err);
            if (!rc) rc = mt_orpheus_generate(o, ids, n, &so, &gen, &ng, err);
            if (!rc) {
                int32_t *full = realloc(ids, (n + ng + 1) * sizeof *ids);
                if (!full) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
                else {
                    ids = full;
                    memcpy(ids + n, gen, ng * sizeof *gen);
                    rc = mt_orpheus_codes(ids, n + ng, &codes, &nc, err);
                }
            }
            if (!rc && nc) {
                float *w = NULL;
                size_t wl = 0;
                rc = mt_orpheus_decode(o, codes, nc, &so.snac, &w, &wl, err);
                if (!rc) {
                    float *grown = realloc(all, (n_all + wl + 1) * sizeof *all);
                    if (!grown) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
                    else {
                        all = grown;
                        memcpy(all + n_all, w, wl * sizeof *w);
                        n_all += wl;
                    }
                }
                free(w);
            }
            if (rc) mt_preferr(err, "segment %zu", seg + 1);
            free(ids);
            free(gen);
            free(codes);
            seg++;
        }
        p = nl ? nl + 1 : NULL;
    }
    free(s);
    if (!rc && !any) rc = mt_seterr(err, MT_EINVAL, "no text to speak");
    if (rc) {
        free(all);
        return rc;
    }
    *wav = all;
    *len = n_all;
    return MT_OK;
}
