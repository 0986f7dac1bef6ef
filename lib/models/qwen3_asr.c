/* qwen3_asr.c - Qwen3-ASR (config.json model_type "qwen3_asr"): an audio encoder in the
 * Qwen3-Omni style feeding a Qwen3 text decoder, as mlx-audio 0.6.2 runs it.
 *
 *   - features: WhisperFeatureExtractor with padding="longest" and no truncation on one input
 *     = Whisper's log-mel (audio/mel.h) of the audio alone (no 30-s pad): n / 160 frames, the
 *     max - 8 clamp over those frames; every frame valid;
 *   - encoder: the frames cut into chunks of 2 * n_window (100), the last shorter; every chunk
 *     zero-padded to the longest; per chunk three Conv2d 3x3 stride 2 pad 1 (freq x time, 1 ->
 *     C -> C -> C channels, GELU after each), rows (time) of [C x freq] -> conv_out (no bias),
 *     plus the sinusoidal position of the row inside its chunk (sin | cos, 10000^(-j/(D/2-1)));
 *     the valid rows of all chunks concatenated (valid counts from the reference's fixed rule:
 *     13 per full 100 frames); then the layers attend inside windows of
 *     (longest chunk's rows) * (n_window_infer / (2 n_window)) rows (block-diagonal mask),
 *     pre-LayerNorm blocks (eps 1e-5; q/k/v/out with biases; fc1 GELU fc2), ln_post,
 *     proj1 GELU proj2 -> the decoder's hidden size.  GELU is the exact (erf) one;
 *   - prompt: "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|audio_start|>" + one
 *     <|audio_pad|> per encoder row + "<|audio_end|><|im_end|>\n<|im_start|>assistant\n", then
 *     "language X<asr_text>" when a language is given (X as support_languages spells it,
 *     matched without case; an ISO code of the eleven languages becomes its name, which the
 *     reference does not do), tokenized by tokenizer.json; the pad tokens' embeddings replaced
 *     by the encoder rows (models/model.h mt_embed_inject);
 *   - decoder: the shared qwen3 decoder (thinker_config.text_config, or text_config; mlx-audio's
 *     TextConfig defaults; RoPE plain, whatever rope_scaling says, as mlx-audio's nn.RoPE);
 *     greedy until <|im_end|> / <|endoftext|> / the tokenizer's eos, or the token budget
 *     (shared by all chunks, as generate() shares max_tokens); text decoded without special
 *     tokens; without a language the output's "language X<asr_text>" prefix is split off;
 *   - long audio: split_audio_into_chunks (chunk_duration 1200 s; cuts at the quietest 100-ms
 *     window within 5 s of the limit, at least 1 s per chunk; chunks under 1 s zero-padded),
 *     one segment per chunk (start = its offset, end = the next chunk's offset or the audio's
 *     duration), the texts joined with " ".
 * ref: mlx_audio/stt/models/qwen3_asr/{qwen3_asr,config}.py,
 *      transformers models/whisper/feature_extraction_whisper.py */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audio/mel.h"
#include "models/encoder.h"
#include "models/model.h"
#include "models/qwen3_asr.h"
#include "tensor/linear.h"
#include "tensor/ops.h"
#include "text/tokenizer.h"

#define QA_RATE 16000
#define QA_DEFAULT_CHUNK_S 1200.0
#define QA_DEFAULT_MAX_TOKENS 8192
#define QA_MAX_EOS 4

typedef struct qa_layer {
    mt_linear qkv, o, fc1, fc2;
    const float *ln1w, *ln1b, *ln2w, *ln2b;
} qa_layer;

struct mt_qwen3_asr {
    mt_encoder e;              /* prefix "audio_tower.": binding helpers, hp for the shared attention */
    mt_config *cfg;
    mt_safetensors *st;
    mt_pool *pool;             /* borrowed */
    int n_mels, D, heads, ffn, n_layers, out_dim, n_window, n_window_infer, C, F3, max_pos;
    float *cw[3], *cb[3];      /* conv kernels [C][3][3][Cin] (MLX layout), biases [C] */
    mt_linear conv_out, proj1, proj2;
    float *pos;                /* [max_pos, D] */
    qa_layer *L;
    const float *lnpw, *lnpb;
    mt_model *lm;
    mt_tokenizer *tok;
    mt_mel *mel;
    int32_t audio_id;
    int32_t eos[QA_MAX_EOS];
    int n_eos;
    char **langs;              /* support_languages */
    size_t n_langs;
};

/* ---- configuration ---- */

static int acfg_int(json_t *ac, const char *key, int def, int *out, mt_err *err) {
    int rc = mt_cfg_count(ac, key, def, out, 0, err);
    if (rc) mt_preferr(err, "config.json audio_config");
    return rc;
}

static int read_audio_config(mt_qwen3_asr *q, json_t *ac, mt_err *err) {
    MT_TRY(acfg_int(ac, "num_mel_bins", 128, &q->n_mels, err));
    MT_TRY(acfg_int(ac, "encoder_layers", 24, &q->n_layers, err));
    MT_TRY(acfg_int(ac, "encoder_attention_heads", 16, &q->heads, err));
    MT_TRY(acfg_int(ac, "encoder_ffn_dim", 4096, &q->ffn, err));
    MT_TRY(acfg_int(ac, "d_model", 1024, &q->D, err));
    MT_TRY(acfg_int(ac, "max_source_positions", 1500, &q->max_pos, err));
    MT_TRY(acfg_int(ac, "n_window", 50, &q->n_window, err));
    MT_TRY(acfg_int(ac, "output_dim", 2048, &q->out_dim, err));
    MT_TRY(acfg_int(ac, "n_window_infer", 800, &q->n_window_infer, err));
    MT_TRY(acfg_int(ac, "downsample_hidden_size", 480, &q->C, err));
    if (q->n_mels != 80 && q->n_mels != 128)
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json audio_config: num_mel_bins %d (80 or 128 are supported)",
                         q->n_mels);
    if (q->D % q->heads || (q->D / q->heads) % 2 || q->D < 4)
        return mt_seterr(err, MT_EFORMAT, "config.json audio_config: d_model %d does not split into %d heads", q->D,
                         q->heads);
    if (q->n_window != 50)   /* the reference's output-length rule is written for 100-frame chunks */
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json audio_config: n_window %d (the reference runs 50 only)",
                         q->n_window);
    if (q->n_window_infer / (2 * q->n_window) < 1)
        return mt_seterr(err, MT_EFORMAT, "config.json audio_config: n_window_infer %d is under 2 * n_window",
                         q->n_window_infer);
    if (q->max_pos < 13)
        return mt_seterr(err, MT_EFORMAT, "config.json audio_config: max_source_positions %d is under one chunk's 13 rows",
                         q->max_pos);
    if ((size_t)q->C * 9 > (1u << 20) || q->D > (1 << 16) || q->ffn > (1 << 18) || q->n_layers > 1024)
        return mt_seterr(err, MT_EFORMAT, "config.json audio_config: sizes out of range");
    q->F3 = (((q->n_mels + 1) / 2 + 1) / 2 + 1) / 2;
    return MT_OK;
}

static int read_languages(mt_qwen3_asr *q, json_t *top, mt_err *err) {
    json_t *a = json_object_get(top, "support_languages");
    if (!a || json_is_null(a)) return MT_OK;
    if (!json_is_array(a)) return mt_seterr(err, MT_EFORMAT, "config.json: \"support_languages\" must be a list");
    q->langs = calloc(json_array_size(a) + 1, sizeof *q->langs);
    if (!q->langs) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *s = json_array_get(a, i);
        if (!json_is_string(s))
            return mt_seterr(err, MT_EFORMAT, "config.json: \"support_languages\" must hold strings");
        if (!(q->langs[q->n_langs++] = strdup(json_string_value(s)))) return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    return MT_OK;
}

static int token_id_of(json_t *o, const char *key, int def, int32_t *out, mt_err *err) {
    int v = def;
    MT_TRY(mt_cfg_int(o, key, def, &v, 0, err));
    *out = v;
    return MT_OK;
}

/* ---- binding ---- */

static int bind_conv(mt_qwen3_asr *q, int k, int cin, mt_err *err) {
    char name[96];
    snprintf(name, sizeof name, "audio_tower.conv2d%d.weight", k + 1);
    const mt_tensor_view *t = mt_safetensors_get(q->st, name);
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "model.safetensors: tensor '%s' not found", name);
    int64_t C = q->C;
    int mlx = t->ndim == 4 && t->shape[0] == C && t->shape[1] == 3 && t->shape[2] == 3 && t->shape[3] == cin;
    int torch = t->ndim == 4 && t->shape[0] == C && t->shape[1] == cin && t->shape[2] == 3 && t->shape[3] == 3;
    if (!mlx && !torch) {
        char sh[96];
        mt_shape_str(sh, sizeof sh, t->ndim, t->shape);
        return mt_seterr(err, MT_EFORMAT, "model.safetensors: tensor '%s' has shape %s, expected [%d, 3, 3, %d]", name,
                         sh, (int)C, cin);
    }
    size_t K = 9 * (size_t)cin, n = (size_t)C * K;
    float *raw = malloc(n * sizeof *raw);
    q->cw[k] = mt_enc_own(&q->e, n * sizeof(float));
    if (!raw || !q->cw[k]) {
        free(raw);
        return mt_seterr(err, MT_ENOMEM, "out of memory");
    }
    int rc = mt_safetensors_read_f32(q->st, name, raw, n, 0, err);
    if (!rc && mlx) memcpy(q->cw[k], raw, n * sizeof *raw);
    else if (!rc)   /* [C, cin, kh, kw] -> [C, kh, kw, cin] */
        for (size_t c = 0; c < (size_t)C; c++)
            for (size_t i = 0; i < (size_t)cin; i++)
                for (size_t h = 0; h < 9; h++) q->cw[k][c * K + h * (size_t)cin + i] = raw[c * K + i * 9 + h];
    free(raw);
    if (rc) return mt_preferr(err, "model.safetensors"), rc;
    snprintf(name, sizeof name, "conv2d%d.bias", k + 1);
    const float *b = NULL;
    MT_TRY(mt_enc_vec(&q->e, name, (size_t)C, 0, &b, err));
    q->cb[k] = (float *)b;
    return MT_OK;
}

static int bind_tower(mt_qwen3_asr *q, mt_err *err) {
    mt_encoder *e = &q->e;
    e->st = q->st;
    e->cfg = q->cfg;
    e->pool = q->pool;
    snprintf(e->prefix, sizeof e->prefix, "audio_tower.");
    e->hp.hidden = q->D;
    e->hp.n_heads = q->heads;
    e->hp.head_dim = q->D / q->heads;
    size_t D = (size_t)q->D, F = (size_t)q->ffn;
    for (int k = 0; k < 3; k++) MT_TRY(bind_conv(q, k, k ? q->C : 1, err));
    MT_TRY(mt_enc_bind(e, &q->conv_out, "conv_out", D, (size_t)q->C * (size_t)q->F3, 0, err));
    q->L = calloc((size_t)q->n_layers, sizeof *q->L);
    if (!q->L) return mt_seterr(err, MT_ENOMEM, "out of memory");
    for (int l = 0; l < q->n_layers; l++) {
        qa_layer *L = &q->L[l];
        char b[128];
#define MOD(x) (snprintf(b, sizeof b, "layers.%d.%s", l, x), b)
        mt_linear qkv[3];
        MT_TRY(mt_enc_bind(e, &qkv[0], MOD("self_attn.q_proj"), D, D, 1, err));
        MT_TRY(mt_enc_bind(e, &qkv[1], MOD("self_attn.k_proj"), D, D, 1, err));
        MT_TRY(mt_enc_bind(e, &qkv[2], MOD("self_attn.v_proj"), D, D, 1, err));
        MT_TRY(mt_enc_stack(e, &L->qkv, qkv, 3, err));
        MT_TRY(mt_enc_bind(e, &L->o, MOD("self_attn.out_proj"), D, D, 1, err));
        MT_TRY(mt_enc_bind(e, &L->fc1, MOD("fc1"), F, D, 1, err));
        MT_TRY(mt_enc_bind(e, &L->fc2, MOD("fc2"), D, F, 1, err));
        MT_TRY(mt_enc_vec(e, MOD("self_attn_layer_norm.weight"), D, 0, &L->ln1w, err));
        MT_TRY(mt_enc_vec(e, MOD("self_attn_layer_norm.bias"), D, 0, &L->ln1b, err));
        MT_TRY(mt_enc_vec(e, MOD("final_layer_norm.weight"), D, 0, &L->ln2w, err));
        MT_TRY(mt_enc_vec(e, MOD("final_layer_norm.bias"), D, 0, &L->ln2b, err));
#undef MOD
    }
    MT_TRY(mt_enc_vec(e, "ln_post.weight", D, 0, &q->lnpw, err));
    MT_TRY(mt_enc_vec(e, "ln_post.bias", D, 0, &q->lnpb, err));
    MT_TRY(mt_enc_bind(e, &q->proj1, "proj1", D, D, 1, err));
    MT_TRY(mt_enc_bind(e, &q->proj2, "proj2", (size_t)q->out_dim, D, 1, err));
    /* SinusoidalPositionEmbedding, in float32 as mlx computes it */
    size_t half = D / 2;
    q->pos = mt_enc_own(e, (size_t)q->max_pos * D * sizeof(float));
    if (!q->pos) return mt_seterr(err, MT_ENOMEM, "out of memory");
    float inc = (float)(log(10000.0) / (double)(half - 1));
    for (size_t p = 0; p < (size_t)q->max_pos; p++)
        for (size_t j = 0; j < half; j++) {
            float a = (float)p * expf(-inc * (float)j);
            q->pos[p * D + j] = sinf(a);
            q->pos[p * D + half + j] = cosf(a);
        }
    return MT_OK;
}

static int read_eos(mt_qwen3_asr *q, const char *dir) {
    const char *names[] = {"<|im_end|>", "<|endoftext|>"};
    for (int i = 0; i < 2; i++) {
        int32_t id = mt_tokenizer_token_to_id(q->tok, names[i]);
        if (id >= 0) q->eos[q->n_eos++] = id;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *tc = json_load_file(path, 0, NULL);
    json_t *eos = tc ? json_object_get(tc, "eos_token") : NULL;
    if (json_is_object(eos)) eos = json_object_get(eos, "content");
    if (json_is_string(eos)) {
        int32_t id = mt_tokenizer_token_to_id(q->tok, json_string_value(eos));
        int seen = 0;
        for (int i = 0; i < q->n_eos; i++) seen |= q->eos[i] == id;
        if (id >= 0 && !seen && q->n_eos < QA_MAX_EOS) q->eos[q->n_eos++] = id;
    }
    json_decref(tc);
    return MT_OK;
}

int mt_qwen3_asr_load(mt_qwen3_asr **out, const char *dir, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_qwen3_asr *q = calloc(1, sizeof *q);
    if (!q) return mt_seterr(err, MT_ENOMEM, "out of memory");
    q->pool = pool;
    int rc = mt_config_load(&q->cfg, dir, err);
    if (!rc) rc = mt_cfg_check_nan(q->cfg, err);
    json_t *top = rc ? NULL : mt_config_json(q->cfg);
    json_t *th = top ? json_object_get(top, "thinker_config") : NULL;
    if (!rc && th && !json_is_object(th)) rc = mt_seterr(err, MT_EFORMAT, "config.json: \"thinker_config\" must be an object");
    json_t *src = th ? th : top;
    json_t *ac = src ? json_object_get(src, "audio_config") : NULL;
    if (!rc && ac && !json_is_object(ac)) rc = mt_seterr(err, MT_EFORMAT, "config.json: \"audio_config\" must be an object");
    json_t *empty = json_object();
    if (!rc && !empty) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) rc = read_audio_config(q, ac ? ac : empty, err);
    json_decref(empty);
    if (!rc) rc = token_id_of(src, "audio_token_id", 151676, &q->audio_id, err);
    if (!rc) rc = read_languages(q, top, err);
    if (!rc) rc = mt_safetensors_open_dir(&q->st, dir, err);
    if (!rc) rc = bind_tower(q, err);
    if (!rc) {
        /* the text decoder: mlx-audio's TextConfig defaults, RoPE without scaling */
        json_t *tc = th ? json_object_get(th, "text_config") : NULL;
        mt_text_spec ts = {.cfg_key = tc ? "thinker_config.text_config" : "text_config", .strip = "", .add = "",
                           .defaults = "{\"vocab_size\": 151936, \"hidden_size\": 2048, \"intermediate_size\": 6144, "
                                       "\"num_hidden_layers\": 28, \"num_attention_heads\": 16, "
                                       "\"num_key_value_heads\": 8, \"head_dim\": 128, \"rms_norm_eps\": 1e-6, "
                                       "\"max_position_embeddings\": 65536, \"tie_word_embeddings\": true, "
                                       "\"rope_theta\": 1000000.0, \"attention_bias\": false}",
                           .force = "{\"model_type\": \"qwen3\", \"rope_scaling\": null, \"rope_parameters\": null}"};
        rc = mt_model_load_text(&q->lm, dir, &ts, pool, err);
    }
    if (!rc && q->lm->hp.hidden != q->out_dim)
        rc = mt_seterr(err, MT_EFORMAT, "%s/config.json: audio_config output_dim %d is not the text hidden size %d", dir,
                       q->out_dim, q->lm->hp.hidden);
    if (!rc && (q->audio_id < 0 || q->audio_id >= q->lm->hp.vocab))
        rc = mt_seterr(err, MT_EFORMAT, "%s/config.json: audio_token_id %d is outside the vocabulary of %d", dir,
                       (int)q->audio_id, q->lm->hp.vocab);
    if (!rc) {
        char path[4096];
        snprintf(path, sizeof path, "%s/tokenizer.json", dir);
        rc = mt_tokenizer_load(&q->tok, path, err);
    }
    if (!rc) rc = read_eos(q, dir);
    if (!rc) rc = mt_mel_new(&q->mel, q->n_mels, err);
    if (rc) {
        if (err && !strstr(err->msg, dir)) mt_preferr(err, "%s", dir);
        mt_qwen3_asr_free(q);
        return rc;
    }
    *out = q;
    return MT_OK;
}

void mt_qwen3_asr_free(mt_qwen3_asr *q) {
    if (!q) return;
    for (size_t i = 0; i < q->e.n_owned; i++) free(q->e.owned[i]);
    free(q->e.owned);
    free(q->L);
    mt_model_free(q->lm);
    mt_tokenizer_free(q->tok);
    mt_mel_free(q->mel);
    for (size_t i = 0; i < q->n_langs; i++) free(q->langs[i]);
    free(q->langs);
    mt_safetensors_free(q->st);
    mt_config_free(q->cfg);
    free(q);
}

void mt_qwen3_asr_dims(const mt_qwen3_asr *q, int *n_mels, int *hidden, int *vocab) {
    if (n_mels) *n_mels = q->n_mels;
    if (hidden) *hidden = q->lm->hp.hidden;
    if (vocab) *vocab = q->lm->hp.vocab;
}

/* ---- features ---- */

int mt_qwen3_asr_features(mt_qwen3_asr *q, const float *audio, size_t n, float **mel, size_t *T, mt_err *err) {
    *mel = NULL;
    *T = 0;
    if (n < MT_WHISPER_HOP) return mt_seterr(err, MT_EINVAL, "audio of %zu samples is under one 10-ms frame", n);
    return mt_mel_compute(q->mel, audio, n, 0, q->pool, mel, T, err);
}

/* ---- encoder ---- */

static long floordiv(long a, long b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* _get_feat_extract_output_lengths (its 100 / 13 are fixed numbers in the reference) */
static size_t cnn_rows(size_t len) {
    long leave = (long)(len % 100);
    long f = floordiv(leave - 1, 2) + 1;
    long o = floordiv(floordiv(f - 1, 2) + 1 - 1, 2) + 1 + (long)(len / 100) * 13;
    return o > 0 ? (size_t)o : 0;
}

size_t mt_qwen3_asr_audio_rows(size_t T) { return cnn_rows(T); }

typedef struct rows_ctx {
    float *x, *out;
    const float *add, *w, *b;
    int what;                  /* 0: out = LayerNorm(x (+= add)); 1: GELU in place; 2: x += add */
    size_t width;
} rows_ctx;

static void rows_task(void *c, size_t b, size_t e, int tid) {
    (void)tid;
    rows_ctx *k = c;
    size_t W = k->width;
    for (size_t t = b; t < e; t++) {
        float *x = k->x + t * W;
        if (k->what == 1) {
            mt_gelu(x, W);
            continue;
        }
        if (k->add)
            for (size_t i = 0; i < W; i++) x[i] += k->add[t * W + i];
        if (k->what == 0) mt_layernorm(k->out + t * W, x, k->w, k->b, W, 1e-5f);
    }
}

static void rows_run(const mt_qwen3_asr *q, rows_ctx *k, size_t N) { mt_pool_for(q->pool, N, 4, rows_task, k); }

/* one Conv2d 3x3 stride 2 pad 1 over in[H][W][cin] -> out[Ho][Wo][C] with GELU; col is scratch
 * of Ho*Wo*9*cin floats */
static void conv_gelu(const mt_qwen3_asr *q, int k, const float *in, size_t H, size_t W, size_t cin, float *out,
                      float *col, float *work) {
    size_t Ho = (H - 1) / 2 + 1, Wo = (W - 1) / 2 + 1, K = 9 * cin;
    for (size_t ho = 0; ho < Ho; ho++)
        for (size_t wo = 0; wo < Wo; wo++) {
            float *r = col + (ho * Wo + wo) * K;
            for (int kh = 0; kh < 3; kh++)
                for (int kw = 0; kw < 3; kw++) {
                    long h = 2 * (long)ho + kh - 1, w = 2 * (long)wo + kw - 1;
                    float *d = r + (size_t)(kh * 3 + kw) * cin;
                    if (h < 0 || w < 0 || h >= (long)H || w >= (long)W) memset(d, 0, cin * sizeof *d);
                    else memcpy(d, in + ((size_t)h * W + (size_t)w) * cin, cin * sizeof *d);
                }
        }
    mt_linear l = {0};
    l.out = (size_t)q->C;
    l.in = K;
    l.w = q->cw[k];
    l.wdt = MT_F32;
    l.bias = q->cb[k];
    l.bdt = MT_F32;
    mt_enc_linear(&q->e, &l, col, Ho * Wo, out, work);
    rows_ctx g = {.x = out, .what = 1, .width = (size_t)q->C};
    rows_run(q, &g, Ho * Wo);
}

int mt_qwen3_asr_encode(mt_qwen3_asr *q, const float *mel, size_t T, float **outp, size_t *Np, mt_err *err) {
    *outp = NULL;
    *Np = 0;
    if (T == 0) return mt_seterr(err, MT_EINVAL, "no feature frames to encode");
    const size_t cs = 2 * (size_t)q->n_window, nch = (T + cs - 1) / cs;
    const size_t Wp = nch > 1 ? cs : T;   /* every chunk padded to the longest */
    const size_t M = (size_t)q->n_mels, C = (size_t)q->C, D = (size_t)q->D, F = (size_t)q->ffn;
    const size_t H1 = (M - 1) / 2 + 1, W1 = (Wp - 1) / 2 + 1, H2 = (H1 - 1) / 2 + 1, W2 = (W1 - 1) / 2 + 1;
    const size_t H3 = (H2 - 1) / 2 + 1, W3 = (W2 - 1) / 2 + 1, F3 = (size_t)q->F3;
    const size_t N = cnn_rows(T), rows_max = cnn_rows(Wp);
    if (H3 != F3 || rows_max > W3 || rows_max > (size_t)q->max_pos)
        return mt_seterr(err, MT_EINVAL, "internal: encoder shapes do not agree");
    const size_t win = rows_max * (size_t)(q->n_window_infer / (2 * q->n_window));
    size_t maxin = 9 * C > C * F3 ? 9 * C : C * F3;
    if (F > maxin) maxin = F;
    if (D > maxin) maxin = D;
    int nth = mt_pool_size(q->pool);
    if (nth < 1) nth = 1;
    size_t wide = 3 * D > F ? 3 * D : F;
    size_t colsz = H1 * W1 * 9 > H2 * W2 * 9 * C ? H1 * W1 * 9 : H2 * W2 * 9 * C;
    float *chunk = malloc(M * Wp * sizeof(float)), *col = malloc(colsz * sizeof(float));
    float *a1 = malloc(H1 * W1 * C * sizeof(float)), *a2 = malloc(H2 * W2 * C * sizeof(float));
    float *a3 = malloc(H3 * W3 * C * sizeof(float)), *flat = malloc(W3 * C * F3 * sizeof(float));
    float *ro = malloc(W3 * D * sizeof(float));
    float *x = malloc((N ? N : 1) * D * sizeof(float)), *tmp = malloc((N ? N : 1) * D * sizeof(float));
    float *ctx = malloc((N ? N : 1) * D * sizeof(float)), *big = malloc((N ? N : 1) * wide * sizeof(float));
    float *out = malloc((N ? N : 1) * (size_t)q->out_dim * sizeof(float));
    float *work = malloc(((size_t)nth * maxin + MT_LINEAR_WORK_SLACK) * sizeof(float));
    size_t nwin = N / win + (N % win != 0);
    size_t *wl = malloc((nwin ? nwin : 1) * sizeof *wl);
    int rc = MT_OK;
    if (!chunk || !col || !a1 || !a2 || !a3 || !flat || !ro || !x || !tmp || !ctx || !big || !out || !work || !wl) {
        rc = mt_seterr(err, MT_ENOMEM, "out of memory encoding %zu feature frames", T);
        goto done;
    }
    float *wk = mt_linear_work_align(work);
    size_t row = 0;
    for (size_t c = 0; c < nch; c++) {
        size_t t0 = c * cs, len = T - t0 < cs ? T - t0 : cs;
        for (size_t f = 0; f < M; f++) {   /* [freq][time] with one channel */
            memcpy(chunk + f * Wp, mel + f * T + t0, len * sizeof(float));
            memset(chunk + f * Wp + len, 0, (Wp - len) * sizeof(float));
        }
        conv_gelu(q, 0, chunk, M, Wp, 1, a1, col, wk);
        conv_gelu(q, 1, a1, H1, W1, C, a2, col, wk);
        conv_gelu(q, 2, a2, H2, W2, C, a3, col, wk);
        for (size_t t = 0; t < W3; t++)   /* row t: [C x freq], channel major */
            for (size_t ch = 0; ch < C; ch++)
                for (size_t f = 0; f < F3; f++) flat[t * C * F3 + ch * F3 + f] = a3[(f * W3 + t) * C + ch];
        mt_enc_linear(&q->e, &q->conv_out, flat, W3, ro, wk);
        size_t valid = cnn_rows(len);
        for (size_t t = 0; t < valid; t++, row++)
            for (size_t i = 0; i < D; i++) x[row * D + i] = ro[t * D + i] + q->pos[t * D + i];
    }
    if (row != N) {
        rc = mt_seterr(err, MT_EINVAL, "internal: %zu encoder rows, expected %zu", row, N);
        goto done;
    }
    for (size_t w = 0; w < nwin; w++) wl[w] = (w + 1) * win <= N ? win : N - w * win;
    for (int l = 0; l < q->n_layers && !rc; l++) {
        const qa_layer *L = &q->L[l];
        rows_ctx n1 = {.x = x, .out = tmp, .w = L->ln1w, .b = L->ln1b, .what = 0, .width = D};
        rows_run(q, &n1, N);
        mt_enc_linear(&q->e, &L->qkv, tmp, N, big, wk);
        rc = mt_enc_attention(&q->e, big, ctx, wl, nwin, 0, err);
        if (rc) break;
        mt_enc_linear(&q->e, &L->o, ctx, N, tmp, wk);
        rows_ctx n2 = {.x = x, .add = tmp, .out = ctx, .w = L->ln2w, .b = L->ln2b, .what = 0, .width = D};
        rows_run(q, &n2, N);   /* x += attn; ctx = n2(x) */
        mt_enc_linear(&q->e, &L->fc1, ctx, N, big, wk);
        rows_ctx g = {.x = big, .what = 1, .width = F};
        rows_run(q, &g, N);
        mt_enc_linear(&q->e, &L->fc2, big, N, tmp, wk);
        rows_ctx r = {.x = x, .add = tmp, .what = 2, .width = D};
        rows_run(q, &r, N);
    }
    if (!rc) {
        rows_ctx lp = {.x = x, .out = tmp, .w = q->lnpw, .b = q->lnpb, .what = 0, .width = D};
        rows_run(q, &lp, N);
        mt_enc_linear(&q->e, &q->proj1, tmp, N, ctx, wk);
        rows_ctx g = {.x = ctx, .what = 1, .width = D};
        rows_run(q, &g, N);
        mt_enc_linear(&q->e, &q->proj2, ctx, N, out, wk);
        *outp = out;
        *Np = N;
        out = NULL;
    }
done:
    free(chunk); free(col); free(a1); free(a2); free(a3); free(flat); free(ro);
    free(x); free(tmp); free(ctx); free(big); free(out); free(work); free(wl);
    return rc;
}

/* ---- prompt and decoding ---- */

/* The language as the prompt names it: a support_languages entry matched without case (the
 * reference), else an ISO 639 code of the model card's languages as its English name (mlx-stt's
 * --language takes codes; the reference would pass "en" through as is), else as given. */
static const char *qa_language(const mt_qwen3_asr *q, const char *language) {
    static const char *const codes[][2] = {{"zh", "Chinese"}, {"yue", "Cantonese"}, {"en", "English"},
                                           {"de", "German"},  {"es", "Spanish"},    {"fr", "French"},
                                           {"it", "Italian"}, {"pt", "Portuguese"}, {"ru", "Russian"},
                                           {"ko", "Korean"},  {"ja", "Japanese"}};
    for (size_t i = 0; i < q->n_langs; i++)
        if (!strcasecmp(q->langs[i], language)) return q->langs[i];
    for (size_t c = 0; c < sizeof codes / sizeof *codes; c++)
        if (!strcasecmp(codes[c][0], language)) {
            for (size_t i = 0; i < q->n_langs; i++)
                if (!strcasecmp(q->langs[i], codes[c][1])) return q->langs[i];
            return codes[c][1];
        }
    return language;
}

int mt_qwen3_asr_prompt(mt_qwen3_asr *q, size_t n_audio, const char *language, int32_t **ids, size_t *n,
                        mt_err *err) {
    *ids = NULL;
    *n = 0;
    static const char head[] = "<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|audio_start|>";
    static const char pad[] = "<|audio_pad|>";
    static const char tail[] = "<|audio_end|><|im_end|>\n<|im_start|>assistant\n";
    const char *lang = language;
    if (language) {
        if (strlen(language) > 200) return mt_seterr(err, MT_EINVAL, "language '%.40s...' is too long", language);
        lang = qa_language(q, language);
    }
    size_t cap = sizeof head + n_audio * (sizeof pad - 1) + sizeof tail + (lang ? strlen(lang) + 32 : 0);
    char *p = malloc(cap);
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory for a prompt of %zu audio tokens", n_audio);
    size_t k = 0;
    memcpy(p, head, sizeof head - 1);
    k += sizeof head - 1;
    for (size_t i = 0; i < n_audio; i++, k += sizeof pad - 1) memcpy(p + k, pad, sizeof pad - 1);
    memcpy(p + k, tail, sizeof tail - 1);
    k += sizeof tail - 1;
    if (lang) k += (size_t)snprintf(p + k, cap - k, "language %s<asr_text>", lang);
    int rc = mt_tokenizer_encode(q->tok, p, k, 1, ids, n, err);
    free(p);
    return rc;
}

static int is_eos(const mt_qwen3_asr *q, int32_t id) {
    for (int i = 0; i < q->n_eos; i++)
        if (q->eos[i] == id) return 1;
    return 0;
}

static int32_t argmax(const float *x, size_t n) {
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return (int32_t)b;
}

int mt_qwen3_asr_decode_chunk(mt_qwen3_asr *q, const float *audio, size_t n, const char *language, int max_tokens,
                              int32_t *ids, size_t *n_ids, float *first_logits, mt_err *err) {
    *n_ids = 0;
    float *mel = NULL, *enc = NULL, *logits = NULL;
    int32_t *prompt = NULL;
    size_t T = 0, N = 0, np = 0, V = (size_t)q->lm->hp.vocab;
    mt_kvcache *kv = NULL;
    int rc = mt_qwen3_asr_features(q, audio, n, &mel, &T, err);
    if (!rc) rc = mt_qwen3_asr_encode(q, mel, T, &enc, &N, err);
    if (!rc) rc = mt_qwen3_asr_prompt(q, N, language, &prompt, &np, err);
    if (!rc) {
        size_t k = 0;
        for (size_t i = 0; i < np; i++) k += prompt[i] == q->audio_id;
        if (k != N)
            rc = mt_seterr(err, MT_EFORMAT, "tokenizer.json: the prompt holds %zu audio pad tokens (id %d), not %zu", k,
                           (int)q->audio_id, N);
    }
    if (!rc && !(logits = malloc(V * sizeof *logits))) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) rc = mt_kvcache_new(&kv, q->lm, err);
    if (!rc) {
        mt_embed_inject inj = {.token_id = q->audio_id, .rows = enc, .n = N};
        rc = mt_model_forward_inject(q->lm, kv, prompt, np, logits, 0, &inj, err);
    }
    for (int i = 0; !rc && i < max_tokens; i++) {
        if (i == 0 && first_logits) memcpy(first_logits, logits, V * sizeof *logits);
        int32_t t = argmax(logits, V);
        if (is_eos(q, t)) break;
        ids[(*n_ids)++] = t;
        if (i + 1 < max_tokens) rc = mt_model_forward(q->lm, kv, &t, 1, logits, 0, err);
    }
    mt_kvcache_free(kv);
    free(mel); free(enc); free(logits); free(prompt);
    return rc;
}

/* ---- long audio ---- */

int mt_qwen3_asr_split(const float *audio, size_t n, double chunk_s, size_t **starts, size_t *n_chunks,
                       mt_err *err) {
    *starts = NULL;
    *n_chunks = 0;
    if (!(chunk_s > 0)) return mt_seterr(err, MT_EINVAL, "chunk length %g s: must be positive", chunk_s);
    size_t cap = 8, k = 0;
    size_t *s = malloc(cap * sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    s[k++] = 0;
    if ((double)n / QA_RATE > chunk_s) {
        const size_t maxc = (size_t)(chunk_s * QA_RATE), search = 5 * QA_RATE, ws = QA_RATE / 10;
        size_t start = 0;
        while (start < n) {
            size_t end = start + maxc < n ? start + maxc : n;
            if (end >= n) break;
            size_t s0 = end > start + search ? end - search : start;
            if (s0 < start) s0 = start;
            size_t s1 = end + search < n ? end + search : n, cut = end;
            if (s1 - s0 > ws) {   /* the quietest 100-ms window (mean square), first on ties */
                size_t best = 0;
                double bv = INFINITY;
                for (size_t i = 0; i + ws <= s1 - s0; i++) {
                    double e = 0;
                    for (size_t j = 0; j < ws; j++) {
                        float v = audio[s0 + i + j];
                        e += (double)(v * v) * (1.0 / (double)ws);
                    }
                    if (e < bv) {
                        bv = e;
                        best = i;
                    }
                }
                cut = s0 + best + ws / 2;
            }
            if (cut < start + QA_RATE) cut = start + QA_RATE;   /* at least one second */
            if (cut > n) cut = n;
            if (k + 1 >= cap) {
                size_t *g = realloc(s, 2 * cap * sizeof *s);
                if (!g) {
                    free(s);
                    return mt_seterr(err, MT_ENOMEM, "out of memory");
                }
                s = g;
                cap *= 2;
            }
            s[k++] = cut;
            start = cut;
        }
    }
    if (k == 1 || s[k - 1] < n) s[k++] = n;   /* a cut may already have reached the end */
    *starts = s;
    *n_chunks = k - 1;
    return MT_OK;
}

const char *mt_qwen3_asr_split_language(const char *text, char *lang, size_t lang_cap) {
    static const char pre[] = "language ", tag[] = "<asr_text>";
    const char *a = strstr(text, tag);
    if (!a || strncmp(text, pre, sizeof pre - 1)) {
        snprintf(lang, lang_cap, "English");
        return text;
    }
    const char *b = text + sizeof pre - 1, *e = a;
    if (b > e) b = e;
    while (b < e && isspace((unsigned char)*b)) b++;
    while (e > b && isspace((unsigned char)e[-1])) e--;
    size_t len = (size_t)(e - b);
    if (lang_cap) {
        if (len >= lang_cap) len = lang_cap - 1;
        memcpy(lang, b, len);
        lang[len] = 0;
    }
    return a + sizeof tag - 1;
}

/* ---- the family ---- */

static int qa_transcribe(void *self, const float *audio, size_t n, const mt_asr_opts *o, mt_stt_result *res,
                         mt_err *err) {
    mt_qwen3_asr *q = self;
    double total = (double)n / QA_RATE;
    res->duration = total;
    size_t *st = NULL, nc = 0;
    MT_TRY(mt_qwen3_asr_split(audio, n, o->chunk_s > 0 ? o->chunk_s : QA_DEFAULT_CHUNK_S, &st, &nc, err));
    long remaining = o->max_tokens > 0 ? o->max_tokens : QA_DEFAULT_MAX_TOKENS;
    int32_t *ids = malloc((size_t)remaining * sizeof *ids);
    float *buf = NULL;
    res->segs = calloc(nc ? nc : 1, sizeof *res->segs);
    size_t tlen = 0;
    int rc = (!ids || !res->segs) ? mt_seterr(err, MT_ENOMEM, "out of memory") : MT_OK;
    for (size_t c = 0; c < nc && !rc && remaining > 0; c++) {
        size_t a = st[c], len = st[c + 1] - st[c];
        if (o->progress) o->progress(o->progress_user, (double)a / QA_RATE, total);
        const float *x = audio + a;
        if (len < QA_RATE) {   /* pad to one second */
            free(buf);
            buf = calloc(QA_RATE, sizeof *buf);
            if (!buf) {
                rc = mt_seterr(err, MT_ENOMEM, "out of memory");
                break;
            }
            memcpy(buf, x, len * sizeof *buf);
            x = buf;
            len = QA_RATE;
        }
        size_t nid = 0;
        rc = mt_qwen3_asr_decode_chunk(q, x, len, o->language, (int)remaining, ids, &nid, NULL, err);
        if (rc) break;
        remaining -= (long)nid;
        char *text = NULL;
        rc = mt_tokenizer_decode(q->tok, ids, nid, 1, &text, NULL, err);
        if (rc) break;
        char lang[16];
        const char *body = text;
        if (!o->language) body = mt_qwen3_asr_split_language(text, lang, sizeof lang);
        else snprintf(lang, sizeof lang, "%s", o->language);
        mt_stt_segment *sg = &res->segs[res->n_segs];
        sg->id = (int)res->n_segs;
        sg->start = (double)a / QA_RATE;
        sg->end = c + 1 < nc ? (double)st[c + 1] / QA_RATE : total;
        sg->text = strdup(body);
        free(text);
        if (!sg->text) {
            rc = mt_seterr(err, MT_ENOMEM, "out of memory");
            break;
        }
        if (!res->n_segs) snprintf(res->language, sizeof res->language, "%s", lang);
        res->n_segs++;
        tlen += strlen(sg->text) + 1;
    }
    if (!rc) {   /* " ".join of the chunks' texts */
        res->text = malloc(tlen + 1);
        if (!res->text) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        else {
            size_t k = 0;
            for (size_t i = 0; i < res->n_segs; i++) {
                if (i) res->text[k++] = ' ';
                size_t l = strlen(res->segs[i].text);
                memcpy(res->text + k, res->segs[i].text, l);
                k += l;
            }
            res->text[k] = 0;
        }
    }
    if (!rc && o->progress) o->progress(o->progress_user, total, total);
    free(st);
    free(ids);
    free(buf);
    return rc;
}

static int qa_load(void **self, const char *dir, const mt_config *cfg, mt_pool *pool, mt_err *err) {
    (void)cfg;
    mt_qwen3_asr *q = NULL;
    int rc = mt_qwen3_asr_load(&q, dir, pool, err);
    *self = q;
    return rc;
}

static void qa_free(void *self) { mt_qwen3_asr_free(self); }

static const char *const qa_types[] = {"qwen3_asr", NULL};

const mt_asr_family mt_asr_qwen3_asr = {
    .name = "qwen3_asr",
    .model_types = qa_types,
    .caps = MT_ASR_SEGMENTS | MT_ASR_LANGUAGE,
    .summary = "Qwen3-ASR (audio encoder + Qwen3 decoder; 11 languages, named or detected; one segment per chunk)",
    .claims = NULL,
    .load = qa_load,
    .transcribe = qa_transcribe,
    .free = qa_free,
};
