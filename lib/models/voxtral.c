/* voxtral.c - Voxtral speech recognition: the audio tower through whisper.c's
 * encoder, the projector, the shared Llama decoder (model.h) with the audio
 * rows injected, the tekken prompt, and the mt_asr_voxtral family.
 * ref: mlx_audio/stt/models/voxtral/voxtral.py (Model.generate,
 * get_audio_embeds, _merge_input_embeddings), transformers
 * VoxtralProcessor.apply_transcription_request, mistral_common
 * InstructTokenizerV7._encode_instruct_transcription and AudioEncoder. */
#include "models/voxtral.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audio/mel.h"
#include "core/file.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "models/encoder.h"
#include "models/model.h"
#include "models/whisper.h"
#include "stt/asr.h"
#include "tensor/linear.h"
#include "text/tekken.h"

#define VX_CHUNK_SAMPLES MT_WHISPER_NSAMPLES   /* 30 s at 16 kHz: mistral-common's chunk_length_s */
#define VX_DEFAULT_MAX_TOKENS 8192            /* mlx_audio.stt.generate --max-tokens */

/* TextConfig's defaults in mlx-audio's voxtral/config.py */
static const char VX_TEXT_DEFAULTS[] =
    "{\"model_type\": \"llama\", \"vocab_size\": 131072, \"hidden_size\": 3072, \"intermediate_size\": 8192,"
    " \"num_hidden_layers\": 30, \"num_attention_heads\": 32, \"num_key_value_heads\": 8, \"head_dim\": 128,"
    " \"rms_norm_eps\": 1e-5, \"rope_theta\": 100000000.0, \"tie_word_embeddings\": false,"
    " \"max_position_embeddings\": 131072}";

struct mt_voxtral {
    char *dir;
    mt_pool *pool;
    mt_config *cfg;
    mt_safetensors *st;
    mt_whisper *enc;              /* the audio tower */
    mt_model *lm;                 /* the text decoder */
    mt_linear l1, l2;             /* projector: [hidden, inter], [hidden, hidden] */
    int inter;                    /* projector input width (audio intermediate_size) */
    mt_tekken *tok;
    mt_mel *mel;
    mt_voxtral_info info;
    int32_t bos, inst, inst_end, begin_audio, transcribe;
    int32_t eos[3];
};

/* ------------------------------------------------------------------ loading */

static int special(mt_voxtral *v, const char *name, int32_t *id, mt_err *err) {
    *id = mt_tekken_special(v->tok, name);
    if (*id < 0) return mt_seterr(err, MT_EFORMAT, "tekken.json: no special token %s", name);
    return MT_OK;
}

static int load_inner(mt_voxtral *v, const char *dir, mt_err *err) {
    MT_TRY(mt_config_load(&v->cfg, dir, err));
    const mt_config *c = v->cfg;
    mt_whisper_hp hp = {0};
    int ffn = 0;
    MT_TRY(mt_config_get_int_in(c, "audio_config.num_mel_bins", 128, 1, 1024, &hp.n_mels, err));
    MT_TRY(mt_config_get_int_in(c, "audio_config.max_source_positions", 1500, 1, 1 << 20, &hp.n_audio_ctx, err));
    MT_TRY(mt_config_get_int_in(c, "audio_config.d_model", 1280, 4, 1 << 16, &hp.n_audio_state, err));
    MT_TRY(mt_config_get_int_in(c, "audio_config.encoder_attention_heads", 20, 1, 1 << 12, &hp.n_audio_head, err));
    MT_TRY(mt_config_get_int_in(c, "audio_config.encoder_layers", 32, 0, 1 << 10, &hp.n_audio_layer, err));
    MT_TRY(mt_config_get_int_in(c, "audio_config.encoder_ffn_dim", 5120, 1, 1 << 20, &ffn, err));
    MT_TRY(mt_config_get_int_in(c, "audio_config.intermediate_size", 5120, 1, 1 << 20, &v->inter, err));
    int atok = 0;
    MT_TRY(mt_config_get_int_in(c, "audio_token_id", 24, 0, 1 << 30, &atok, err));
    int d = hp.n_audio_state;
    if (ffn != 4 * d)
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: audio_config.encoder_ffn_dim %d is not 4 x d_model %d",
                         ffn, d);
    if (d % hp.n_audio_head)
        return mt_seterr(err, MT_EFORMAT, "config.json: audio_config.d_model %d not divisible by %d heads", d,
                         hp.n_audio_head);
    if (2 * hp.n_audio_ctx != MT_WHISPER_NFRAMES)
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: audio_config.max_source_positions %d: a 30-s chunk "
                         "gives %d encoder frames", hp.n_audio_ctx, MT_WHISPER_NFRAMES / 2);
    if (v->inter % d || ((long long)hp.n_audio_ctx * d) % v->inter)
        return mt_seterr(err, MT_EFORMAT, "config.json: audio_config.intermediate_size %d does not group whole "
                         "encoder frames of %d", v->inter, d);
    if (hp.n_mels != 80 && hp.n_mels != 128)
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: audio_config.num_mel_bins %d (80 or 128)", hp.n_mels);

    char *tp = mt_path_join(dir, "tekken.json");
    if (!tp) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = mt_file_exists(tp) ? mt_tekken_load(&v->tok, tp, err)
                                : mt_seterr(err, MT_ENOTFOUND, "%s: not found (Voxtral's tokenizer)", tp);
    free(tp);
    MT_TRY(rc);
    MT_TRY(special(v, "<s>", &v->bos, err));
    MT_TRY(special(v, "[INST]", &v->inst, err));
    MT_TRY(special(v, "[/INST]", &v->inst_end, err));
    MT_TRY(special(v, "[BEGIN_AUDIO]", &v->begin_audio, err));
    MT_TRY(special(v, "[TRANSCRIBE]", &v->transcribe, err));
    MT_TRY(special(v, "</s>", &v->eos[0], err));
    v->eos[1] = v->inst_end;
    MT_TRY(special(v, "<pad>", &v->eos[2], err));
    int32_t at = mt_tekken_special(v->tok, "[AUDIO]");
    if (at != atok)
        return mt_seterr(err, MT_EFORMAT, "tekken.json: [AUDIO] is id %d, config.json's audio_token_id is %d",
                         (int)at, atok);

    MT_TRY(mt_safetensors_open_dir(&v->st, dir, err));
    MT_TRY(mt_whisper_load_encoder(&v->enc, dir, "audio_tower.", &hp, v->pool, err));
    mt_text_spec ts = {.cfg_key = "text_config", .strip = "", .add = "language_model.", .defaults = VX_TEXT_DEFAULTS};
    MT_TRY(mt_model_load_text(&v->lm, dir, &ts, v->pool, err));
    size_t H = (size_t)v->lm->hp.hidden;
    MT_TRY(mt_linear_bind(&v->l1, v->st, c, "multi_modal_projector.linear_1", H, (size_t)v->inter, 0, err));
    MT_TRY(mt_linear_bind(&v->l2, v->st, c, "multi_modal_projector.linear_2", H, H, 0, err));
    if ((size_t)v->lm->hp.vocab < mt_tekken_vocab_size(v->tok))
        return mt_seterr(err, MT_EFORMAT, "config.json: text_config.vocab_size %d is smaller than tekken.json's %zu",
                         v->lm->hp.vocab, mt_tekken_vocab_size(v->tok));
    MT_TRY(mt_mel_new(&v->mel, hp.n_mels, err));
    v->info = (mt_voxtral_info){.n_mels = hp.n_mels, .n_frames = MT_WHISPER_NFRAMES, .enc_ctx = hp.n_audio_ctx,
                                .enc_dim = d, .rows_per_chunk = (int)((long long)hp.n_audio_ctx * d / v->inter),
                                .hidden = (int)H, .vocab = v->lm->hp.vocab, .audio_token = atok};
    return MT_OK;
}

int mt_voxtral_load(mt_voxtral **out, const char *dir, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_voxtral *v = calloc(1, sizeof *v);
    if (!v) return mt_seterr(err, MT_ENOMEM, "out of memory");
    v->pool = pool;
    int rc = (v->dir = strdup(dir)) ? load_inner(v, dir, err) : mt_seterr(err, MT_ENOMEM, "out of memory");
    if (rc) {
        mt_preferr(err, "voxtral model '%s'", dir);
        mt_voxtral_free(v);
        return rc;
    }
    *out = v;
    return MT_OK;
}

void mt_voxtral_free(mt_voxtral *v) {
    if (!v) return;
    mt_mel_free(v->mel);
    mt_tekken_free(v->tok);
    mt_model_free(v->lm);
    mt_whisper_free(v->enc);
    mt_safetensors_free(v->st);
    mt_config_free(v->cfg);
    free(v->dir);
    free(v);
}

const mt_voxtral_info *mt_voxtral_info_of(const mt_voxtral *v) { return &v->info; }

/* ------------------------------------------------------------------ audio side */

int mt_voxtral_features(mt_voxtral *v, const float *audio, size_t n, float **mel, size_t *n_chunks, mt_err *err) {
    *mel = NULL;
    *n_chunks = 0;
    if (!n) return mt_seterr(err, MT_EINVAL, "voxtral: empty audio");
    size_t nc = (n + VX_CHUNK_SAMPLES - 1) / VX_CHUNK_SAMPLES;
    float *full = NULL;
    size_t nf = 0;
    MT_TRY(mt_mel_compute(v->mel, audio, n, nc * VX_CHUNK_SAMPLES - n, v->pool, &full, &nf, err));
    size_t F = (size_t)v->info.n_frames, M = (size_t)v->info.n_mels;
    float *out = malloc(nc * M * F * sizeof *out);
    if (!out) {
        free(full);
        return mt_seterr(err, MT_ENOMEM, "out of memory for the features");
    }
    for (size_t c = 0; c < nc; c++) mt_mel_window(full, (int)M, nf, c * F, F, out + c * M * F);
    free(full);
    *mel = out;
    *n_chunks = nc;
    return MT_OK;
}

int mt_voxtral_encode(mt_voxtral *v, const float *mel, float *enc, mt_err *err) {
    return mt_whisper_encode(v->enc, mel, enc, err);
}

int mt_voxtral_audio_rows(mt_voxtral *v, const float *mel, size_t n_chunks, float *rows, mt_err *err) {
    const mt_voxtral_info *in = &v->info;
    size_t R = (size_t)in->rows_per_chunk, H = (size_t)in->hidden, MF = (size_t)in->n_mels * (size_t)in->n_frames;
    float *enc = malloc((size_t)in->enc_ctx * (size_t)in->enc_dim * sizeof *enc), *mid = malloc(R * H * sizeof *mid);
    int rc = enc && mid ? MT_OK : mt_seterr(err, MT_ENOMEM, "out of memory for the audio encoder");
    for (size_t c = 0; c < n_chunks && !rc; c++) {
        rc = mt_whisper_encode(v->enc, mel + c * MF, enc, err);
        if (rc) break;
        /* [enc_ctx, d] read as [R, inter]: consecutive frames side by side */
        mt_linear_forward(&v->l1, enc, R, mid, NULL, v->pool);
        mt_enc_act(MT_ENC_ACT_GELU, mid, R * H);
        mt_linear_forward(&v->l2, mid, R, rows + c * R * H, NULL, v->pool);
    }
    free(enc);
    free(mid);
    return rc;
}

/* ------------------------------------------------------------------ text side */

int mt_voxtral_prompt(mt_voxtral *v, size_t n_chunks, const char *language, int32_t **ids, size_t *n, mt_err *err) {
    *ids = NULL;
    *n = 0;
    int32_t *lang = NULL;
    size_t nl = 0;
    if (language && *language) {
        char s[64];
        snprintf(s, sizeof s, "lang:%.40s", language);   /* no space, as mistral-common writes it */
        MT_TRY(mt_tekken_encode(v->tok, s, strlen(s), &lang, &nl, err));
    }
    size_t na = n_chunks * (size_t)v->info.rows_per_chunk, len = 3 + na + 1 + nl + 1;
    int32_t *p = malloc(len * sizeof *p);
    if (!p) {
        free(lang);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    size_t k = 0;
    p[k++] = v->bos;
    p[k++] = v->inst;
    p[k++] = v->begin_audio;
    for (size_t i = 0; i < na; i++) p[k++] = v->info.audio_token;
    p[k++] = v->inst_end;
    for (size_t i = 0; i < nl; i++) p[k++] = lang[i];
    p[k++] = v->transcribe;
    free(lang);
    *ids = p;
    *n = k;
    return MT_OK;
}

static int argmax(const float *x, size_t n) {
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return (int)b;
}

int mt_voxtral_generate(mt_voxtral *v, const int32_t *prompt, size_t n_prompt, const float *rows, size_t n_rows,
                        int max_tokens, int32_t **out, size_t *n_out, float *first_logits, mt_err *err) {
    *out = NULL;
    *n_out = 0;
    size_t V = (size_t)v->info.vocab;
    mt_kvcache *kv = NULL;
    float *lg = malloc(V * sizeof *lg);
    int32_t *ids = malloc((size_t)(max_tokens > 0 ? max_tokens : 1) * sizeof *ids);
    int rc = lg && ids ? MT_OK : mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) rc = mt_kvcache_new(&kv, v->lm, err);
    if (!rc) {
        mt_embed_inject inj = {.token_id = v->info.audio_token, .rows = rows, .n = n_rows};
        rc = mt_model_forward_inject(v->lm, kv, prompt, n_prompt, lg, 0, &inj, err);
        if (!rc && first_logits) memcpy(first_logits, lg, V * sizeof *lg);
    }
    size_t k = 0;
    while (!rc && (int)k < max_tokens) {
        int32_t t = (int32_t)argmax(lg, V);
        if (t == v->eos[0] || t == v->eos[1] || t == v->eos[2]) break;
        ids[k++] = t;
        if ((int)k == max_tokens) break;
        rc = mt_model_forward(v->lm, kv, &t, 1, lg, 0, err);
    }
    mt_kvcache_free(kv);
    free(lg);
    if (rc) {
        free(ids);
        return rc;
    }
    *out = ids;
    *n_out = k;
    return MT_OK;
}

int mt_voxtral_detok(mt_voxtral *v, const int32_t *ids, size_t n, char **text, mt_err *err) {
    return mt_tekken_decode(v->tok, ids, n, text, err);
}

/* ------------------------------------------------------------------ the family */

/* One request over audio[n] (whole chunks): its text. */
static int transcribe_span(mt_voxtral *v, const float *audio, size_t n, const char *lang, int max_tokens,
                           char **text, mt_err *err) {
    *text = NULL;
    float *mel = NULL, *rows = NULL;
    int32_t *prompt = NULL, *ids = NULL;
    size_t nc = 0, np = 0, ni = 0;
    int rc = mt_voxtral_features(v, audio, n, &mel, &nc, err);
    size_t nr = nc * (size_t)v->info.rows_per_chunk;
    if (!rc && !(rows = malloc(nr * (size_t)v->info.hidden * sizeof *rows)))
        rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) rc = mt_voxtral_audio_rows(v, mel, nc, rows, err);
    free(mel);
    if (!rc) rc = mt_voxtral_prompt(v, nc, lang, &prompt, &np, err);
    if (!rc) rc = mt_voxtral_generate(v, prompt, np, rows, nr, max_tokens, &ids, &ni, NULL, err);
    if (!rc) rc = mt_voxtral_detok(v, ids, ni, text, err);
    free(rows);
    free(prompt);
    free(ids);
    return rc;
}

static int vx_load(void **self, const char *dir, const mt_config *cfg, mt_pool *pool, mt_err *err) {
    (void)cfg;
    return mt_voxtral_load((mt_voxtral **)self, dir, pool, err);
}

static void vx_free(void *self) { mt_voxtral_free(self); }

/* Default: the whole audio in one request (mlx-audio's generate), one
 * segment over it.  o->chunk_s > 0: windows of that many seconds (rounded up
 * to whole 30-s chunks) transcribed one by one, one segment each. */
static int vx_transcribe(void *self, const float *audio, size_t n, const mt_asr_opts *o, mt_stt_result *res,
                         mt_err *err) {
    mt_voxtral *v = self;
    const char *lang = o->language ? o->language : "en";   /* mlx-audio's default */
    if (!strcmp(lang, "auto")) lang = NULL;
    int max_tokens = o->max_tokens > 0 ? o->max_tokens : VX_DEFAULT_MAX_TOKENS;
    res->duration = (double)n / MT_WHISPER_RATE;
    snprintf(res->language, sizeof res->language, "%s", lang ? lang : "");
    size_t win = n;
    if (o->chunk_s > 0) {
        double c = ceil(o->chunk_s / MT_WHISPER_CHUNK_S);
        win = (size_t)(c < 1 ? 1 : c > 1e6 ? 1e6 : c) * VX_CHUNK_SAMPLES;
    }
    size_t nw = n ? (n + win - 1) / win : 0;
    res->text = strdup("");
    res->segs = calloc(nw ? nw : 1, sizeof *res->segs);
    if (!res->text || !res->segs) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t w = 0; w < nw; w++) {
        size_t s = w * win, e = s + win < n ? s + win : n;
        char *t = NULL;
        MT_TRY(transcribe_span(v, audio + s, e - s, lang, max_tokens, &t, err));
        mt_stt_segment *sg = &res->segs[res->n_segs++];
        sg->id = (int)w;
        sg->start = (double)s / MT_WHISPER_RATE;
        sg->end = (double)e / MT_WHISPER_RATE;
        sg->text = t;
        size_t a = strlen(res->text), b = strlen(t);
        char *nt = realloc(res->text, a + b + 1);
        if (!nt) return mt_seterr(err, MT_ENOMEM, "out of memory");
        memcpy(nt + a, t, b + 1);
        res->text = nt;
        if (o->progress) o->progress(o->progress_user, sg->end, res->duration);
    }
    return MT_OK;
}

static const char *const VX_TYPES[] = {"voxtral", NULL};

const mt_asr_family mt_asr_voxtral = {
    .name = "voxtral",
    .model_types = VX_TYPES,
    .caps = MT_ASR_SEGMENTS | MT_ASR_LANGUAGE,
    .summary = "Voxtral (Mistral): Whisper-style audio encoder + Llama decoder, greedy, 30-s chunks in one prompt",
    .load = vx_load,
    .transcribe = vx_transcribe,
    .free = vx_free,
};
