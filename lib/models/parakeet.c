/* parakeet.c - Parakeet models: configuration, weights, greedy TDT / RNN-T /
 * CTC decoding (see parakeet.h).
 * ref: mlx_audio/stt/models/parakeet/parakeet.py (ParakeetTDT, ParakeetRNNT,
 *      ParakeetCTC), rnnt.py (PredictNetwork, JointNetwork), ctc.py,
 *      tokenizer.py (0.6.2). */
#include "models/parakeet.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audio/nemo_mel.h"
#include "io/safetensors.h"
#include "models/conformer.h"
#include "tensor/linear.h"

#define PK_MAX_LSTM 16
#define PK_MAX_DUR 64
#define PK_SYMBOL_CAP 1000   /* zero-duration emissions per frame when the config sets no max_symbols */

#define T_TDT "nemo.collections.asr.models.rnnt_bpe_models.EncDecRNNTBPEModel"
#define T_HYB "nemo.collections.asr.models.hybrid_rnnt_ctc_bpe_models.EncDecHybridRNNTCTCBPEModel"
#define T_CTC "nemo.collections.asr.models.ctc_bpe_models.EncDecCTCModelBPE"

enum { ACT_RELU = 0, ACT_SIGMOID, ACT_TANH };

typedef struct pk_lstm {
    int in, H;
    float *wx, *wh, *b;   /* [4H, in], [4H, H], [4H]; gates i, f, g, o */
} pk_lstm;

struct mt_parakeet {
    int kind;
    int sample_rate, hop, sub;
    mt_nemo_mel *mel;
    mt_conformer *enc;
    mt_conformer_cfg ec;
    mt_safetensors *st;
    mt_pool *pool;
    /* vocabulary */
    size_t V;
    char **text;          /* [V] decoded pieces (U+2581 -> space) */
    char **piece;         /* [V] raw pieces */
    unsigned char *special;
    /* transducers */
    mt_linear embed;      /* [V or V+1, P] */
    int n_lstm, P;
    pk_lstm lstm[PK_MAX_LSTM];
    mt_linear j_enc, j_pred, j_out;   /* [J, d], [J, H], [n_out, J] */
    int act;
    size_t n_out;
    int durations[PK_MAX_DUR], n_dur;
    int max_symbols;      /* -1: none */
    /* CTC */
    mt_linear ctc;        /* [n_classes, d] */
};

/* ---- configuration ---- */

int mt_parakeet_claims(const mt_config *cfg) {
    const char *t = mt_config_get_str(cfg, "target", NULL);
    if (!t || strncmp(t, "nemo.collections.asr.models.", 28)) return 0;
    return json_is_object(mt_config_get(cfg, "preprocessor")) && json_is_object(mt_config_get(cfg, "encoder"));
}

static int is_special(const char *p) {
    size_t n = strlen(p);
    if (n >= 4 && !strncmp(p, "<|", 2) && !strcmp(p + n - 2, "|>")) return 1;
    return !strcmp(p, "<unk>") || !strcmp(p, "<pad>");
}

static int read_vocab(mt_parakeet *m, const mt_config *cfg, const char *key, mt_err *err) {
    json_t *a = mt_config_get(cfg, key);
    if (!json_is_array(a) || json_array_size(a) == 0)
        return mt_seterr(err, MT_EFORMAT, "config.json: '%s' must be a non-empty list of pieces", key);
    size_t V = json_array_size(a);
    if (V > 1000000) return mt_seterr(err, MT_EFORMAT, "config.json: '%s' is too long (%zu pieces)", key, V);
    m->text = calloc(V, sizeof *m->text);
    m->piece = calloc(V, sizeof *m->piece);
    m->special = calloc(V, 1);
    if (!m->text || !m->piece || !m->special) return mt_seterr(err, MT_ENOMEM, "out of memory");
    m->V = V;
    for (size_t i = 0; i < V; i++) {
        const char *p = json_string_value(json_array_get(a, i));
        if (!p) return mt_seterr(err, MT_EFORMAT, "config.json: '%s' entry %zu is not a string", key, i);
        size_t n = strlen(p);
        m->piece[i] = strdup(p);
        m->text[i] = malloc(n + 1);
        if (!m->piece[i] || !m->text[i]) return mt_seterr(err, MT_ENOMEM, "out of memory");
        size_t k = 0;
        for (size_t j = 0; j < n;) {
            if (j + 2 < n + 0 && (unsigned char)p[j] == 0xE2 && (unsigned char)p[j + 1] == 0x96 &&
                (unsigned char)p[j + 2] == 0x81) {
                m->text[i][k++] = ' ';
                j += 3;
            } else {
                m->text[i][k++] = p[j++];
            }
        }
        m->text[i][k] = 0;
        m->special[i] = (unsigned char)is_special(p);
    }
    return MT_OK;
}

static int need(const mt_config *cfg, const char *key, mt_err *err) {
    if (!mt_config_get(cfg, key)) return mt_seterr(err, MT_EFORMAT, "config.json: '%s' is missing", key);
    return MT_OK;
}

static int read_preprocessor(mt_parakeet *m, const mt_config *cfg, mt_err *err) {
    static const char *req[] = {"preprocessor.sample_rate", "preprocessor.normalize", "preprocessor.window_size",
                                "preprocessor.window_stride", "preprocessor.window", "preprocessor.features",
                                "preprocessor.n_fft"};
    for (size_t i = 0; i < sizeof req / sizeof *req; i++) MT_TRY(need(cfg, req[i], err));
    mt_nemo_mel_cfg c;
    memset(&c, 0, sizeof c);
    MT_TRY(mt_config_get_int_in(cfg, "preprocessor.sample_rate", 16000, 1000, 1000000, &c.sample_rate, err));
    MT_TRY(mt_config_get_float(cfg, "preprocessor.window_size", 0.025, &c.window_size, err));
    MT_TRY(mt_config_get_float(cfg, "preprocessor.window_stride", 0.01, &c.window_stride, err));
    MT_TRY(mt_config_get_int_in(cfg, "preprocessor.n_fft", 512, 2, 65536, &c.n_fft, err));
    MT_TRY(mt_config_get_int_in(cfg, "preprocessor.features", 80, 1, 4096, &c.features, err));
    snprintf(c.window, sizeof c.window, "%s", mt_config_get_str(cfg, "preprocessor.window", "hann"));
    c.per_feature = !strcmp(mt_config_get_str(cfg, "preprocessor.normalize", ""), "per_feature");
    MT_TRY(mt_config_get_float(cfg, "preprocessor.preemph", 0.97, &c.preemph, err));
    MT_TRY(mt_config_get_float(cfg, "preprocessor.log_zero_guard_value", ldexp(1.0, -24), &c.log_guard, err));
    long long pad_to;
    MT_TRY(mt_config_get_int(cfg, "preprocessor.pad_to", 0, &pad_to, err));
    c.pad_to = pad_to > 0 && pad_to < (1LL << 30) ? (long)pad_to : 0;
    MT_TRY(mt_config_get_float(cfg, "preprocessor.pad_value", 0.0, &c.pad_value, err));
    int nvf = 0;
    MT_TRY(mt_config_get_bool(cfg, "preprocessor.normalize_valid_frames", 0, &nvf, err));
    if (nvf) return mt_seterr(err, MT_EUNSUPPORTED, "config.json: preprocessor.normalize_valid_frames is not supported");
    MT_TRY(mt_nemo_mel_new(&m->mel, &c, err));
    m->sample_rate = c.sample_rate;
    m->hop = mt_nemo_mel_hop(m->mel);
    return MT_OK;
}

static int pick_kind(const mt_config *cfg, int *kind, mt_err *err) {
    if (mt_config_get(cfg, "ternary_modules"))
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: ternary Parakeet Redux weights are not supported");
    const char *t = mt_config_get_str(cfg, "target", "");
    json_t *durs = mt_config_get(cfg, "model_defaults.tdt_durations");
    int tdt = durs && !json_is_null(durs);
    if ((!strcmp(t, T_TDT) || !strcmp(t, T_HYB)) && tdt) *kind = MT_PK_TDT;
    else if (!strcmp(t, T_TDT)) *kind = MT_PK_RNNT;
    else if (!strcmp(t, T_CTC)) *kind = MT_PK_CTC;
    else
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: target '%s'%s is not a Parakeet model mlx-stt runs "
                         "(TDT, RNN-T, hybrid TDT-CTC or CTC BPE models)", t,
                         !strcmp(t, T_HYB) ? " without tdt_durations" : "");
    if (*kind == MT_PK_TDT && strcmp(mt_config_get_str(cfg, "decoding.model_type", ""), "tdt"))
        return mt_seterr(err, MT_EFORMAT, "config.json: a TDT model needs decoding.model_type \"tdt\"");
    return MT_OK;
}

/* ---- weights ---- */

static int read_f32(const mt_safetensors *st, const char *name, int ndim, const int64_t *shape, size_t numel,
                    float **out, mt_err *err) {
    const mt_tensor_view *v;
    MT_TRY(mt_safetensors_expect(st, name, -1, ndim, shape, &v, err));
    float *p = malloc(numel * sizeof(float));
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = mt_safetensors_read_f32(st, name, p, numel, 0, err);
    if (rc) {
        free(p);
        return rc;
    }
    *out = p;
    return MT_OK;
}

static int load_transducer(mt_parakeet *m, const mt_config *cfg, mt_err *err) {
    MT_TRY(read_vocab(m, cfg, "joint.vocabulary", err));
    int vocab_size = 0, blank_as_pad = 0, H = 0, J = 0, jenc = 0, jpred = 0, ncls = 0, extra = 0;
    MT_TRY(mt_config_get_int_in(cfg, "decoder.vocab_size", -1, 1, 1000000, &vocab_size, err));
    MT_TRY(mt_config_get_bool(cfg, "decoder.blank_as_pad", 0, &blank_as_pad, err));
    MT_TRY(mt_config_get_int_in(cfg, "decoder.prednet.pred_hidden", -1, 1, 65536, &m->P, err));
    MT_TRY(mt_config_get_int_in(cfg, "decoder.prednet.pred_rnn_layers", -1, 1, PK_MAX_LSTM, &m->n_lstm, err));
    json_t *rh = mt_config_get(cfg, "decoder.prednet.rnn_hidden_size");
    if (rh && !json_is_null(rh) && json_integer_value(rh) != 0)
        MT_TRY(mt_config_get_int_in(cfg, "decoder.prednet.rnn_hidden_size", -1, 1, 65536, &H, err));
    else
        H = m->P;
    MT_TRY(mt_config_get_int_in(cfg, "joint.jointnet.joint_hidden", -1, 1, 65536, &J, err));
    MT_TRY(mt_config_get_int_in(cfg, "joint.jointnet.encoder_hidden", -1, 1, 65536, &jenc, err));
    MT_TRY(mt_config_get_int_in(cfg, "joint.jointnet.pred_hidden", -1, 1, 65536, &jpred, err));
    MT_TRY(mt_config_get_int_in(cfg, "joint.num_classes", -1, 1, 1000000, &ncls, err));
    MT_TRY(mt_config_get_int_in(cfg, "joint.num_extra_outputs", 0, 0, PK_MAX_DUR, &extra, err));
    const char *act = mt_config_get_str(cfg, "joint.jointnet.activation", "");
    if (!strcmp(act, "relu")) m->act = ACT_RELU;
    else if (!strcmp(act, "sigmoid")) m->act = ACT_SIGMOID;
    else if (!strcmp(act, "tanh")) m->act = ACT_TANH;
    else return mt_seterr(err, MT_EFORMAT, "config.json: joint.jointnet.activation '%s' (relu, sigmoid or tanh)", act);
    m->n_out = (size_t)ncls + 1 + (size_t)extra;
    if (jenc != m->ec.d_model)
        return mt_seterr(err, MT_EFORMAT, "config.json: joint.jointnet.encoder_hidden %d != encoder.d_model %d", jenc,
                         m->ec.d_model);
    if (jpred != H)
        return mt_seterr(err, MT_EFORMAT, "config.json: joint.jointnet.pred_hidden %d != the LSTM's hidden size %d",
                         jpred, H);
    if (m->V + 1 > m->n_out)
        return mt_seterr(err, MT_EFORMAT, "config.json: %zu pieces do not fit joint.num_classes %d", m->V, ncls);
    m->max_symbols = -1;
    json_t *ms = mt_config_get(cfg, "decoding.greedy.max_symbols");
    if (ms && !json_is_null(ms)) MT_TRY(mt_config_get_int_in(cfg, "decoding.greedy.max_symbols", 0, 0, 1 << 20, &m->max_symbols, err));
    if (m->kind == MT_PK_TDT) {
        json_t *d = mt_config_get(cfg, "decoding.durations");
        size_t nd = json_array_size(d);
        if (!json_is_array(d) || nd == 0 || nd > PK_MAX_DUR)
            return mt_seterr(err, MT_EFORMAT, "config.json: decoding.durations must be a list of 1..%d integers",
                             PK_MAX_DUR);
        for (size_t i = 0; i < nd; i++) {
            json_t *x = json_array_get(d, i);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 1000000)
                return mt_seterr(err, MT_EFORMAT, "config.json: decoding.durations[%zu] is not a duration", i);
            m->durations[i] = (int)json_integer_value(x);
        }
        m->n_dur = (int)nd;
        if (m->n_out != m->V + 1 + nd)
            return mt_seterr(err, MT_EFORMAT, "config.json: the joint gives %zu outputs, not %zu pieces + blank + %zu "
                             "durations", m->n_out, m->V, nd);
    }
    const mt_safetensors *st = m->st;
    size_t rows = (size_t)vocab_size + (blank_as_pad ? 1 : 0);
    MT_TRY(mt_linear_bind(&m->embed, st, cfg, "decoder.prediction.embed", rows, (size_t)m->P, -1, err));
    for (int l = 0; l < m->n_lstm; l++) {
        pk_lstm *L = &m->lstm[l];
        L->in = l ? H : m->P;
        L->H = H;
        char name[256];
        int64_t sx[2] = {4 * (int64_t)H, L->in}, sh[2] = {4 * (int64_t)H, H}, sb[1] = {4 * (int64_t)H};
        snprintf(name, sizeof name, "decoder.prediction.dec_rnn.lstm.%d.Wx", l);
        MT_TRY(read_f32(st, name, 2, sx, 4 * (size_t)H * (size_t)L->in, &L->wx, err));
        snprintf(name, sizeof name, "decoder.prediction.dec_rnn.lstm.%d.Wh", l);
        MT_TRY(read_f32(st, name, 2, sh, 4 * (size_t)H * (size_t)H, &L->wh, err));
        snprintf(name, sizeof name, "decoder.prediction.dec_rnn.lstm.%d.bias", l);
        if (mt_safetensors_get(st, name)) {
            MT_TRY(read_f32(st, name, 1, sb, 4 * (size_t)H, &L->b, err));
        } else {
            L->b = calloc(4 * (size_t)H, sizeof(float));
            if (!L->b) return mt_seterr(err, MT_ENOMEM, "out of memory");
        }
    }
    MT_TRY(mt_linear_bind(&m->j_enc, st, cfg, "joint.enc", (size_t)J, (size_t)jenc, 1, err));
    MT_TRY(mt_linear_bind(&m->j_pred, st, cfg, "joint.pred", (size_t)J, (size_t)H, 1, err));
    MT_TRY(mt_linear_bind(&m->j_out, st, cfg, "joint.joint_net.2", m->n_out, (size_t)J, 1, err));
    return MT_OK;
}

static int load_ctc(mt_parakeet *m, const mt_config *cfg, mt_err *err) {
    MT_TRY(read_vocab(m, cfg, "decoder.vocabulary", err));
    int feat_in = 0, ncls = 0;
    MT_TRY(mt_config_get_int_in(cfg, "decoder.feat_in", -1, 1, 65536, &feat_in, err));
    MT_TRY(mt_config_get_int_in(cfg, "decoder.num_classes", -1, -1, 1000000, &ncls, err));
    if (feat_in != m->ec.d_model)
        return mt_seterr(err, MT_EFORMAT, "config.json: decoder.feat_in %d != encoder.d_model %d", feat_in,
                         m->ec.d_model);
    size_t nc = (ncls <= 0 ? m->V : (size_t)ncls) + 1;
    if (nc < m->V + 1)
        return mt_seterr(err, MT_EFORMAT, "config.json: %zu pieces do not fit decoder.num_classes %d", m->V, ncls);
    m->n_out = nc;
    int64_t ws[3] = {(int64_t)nc, 1, feat_in}, bs[1] = {(int64_t)nc};
    const mt_tensor_view *w, *b;
    MT_TRY(mt_safetensors_expect(m->st, "decoder.decoder_layers.0.weight", -1, 3, ws, &w, err));
    MT_TRY(mt_safetensors_expect(m->st, "decoder.decoder_layers.0.bias", -1, 1, bs, &b, err));
    if ((w->dtype != MT_F32 && w->dtype != MT_F16 && w->dtype != MT_BF16) ||
        (b->dtype != MT_F32 && b->dtype != MT_F16 && b->dtype != MT_BF16))
        return mt_seterr(err, MT_EFORMAT, "tensor 'decoder.decoder_layers.0': expected float weights");
    memset(&m->ctc, 0, sizeof m->ctc);
    m->ctc.out = nc;
    m->ctc.in = (size_t)feat_in;
    m->ctc.wdt = w->dtype;
    m->ctc.w = w->data;
    m->ctc.bias = b->data;
    m->ctc.bdt = b->dtype;
    return MT_OK;
}

void mt_parakeet_free(mt_parakeet *m) {
    if (!m) return;
    mt_nemo_mel_free(m->mel);
    mt_conformer_free(m->enc);
    for (int l = 0; l < PK_MAX_LSTM; l++) {
        free(m->lstm[l].wx);
        free(m->lstm[l].wh);
        free(m->lstm[l].b);
    }
    for (size_t i = 0; i < m->V; i++) {
        if (m->text) free(m->text[i]);
        if (m->piece) free(m->piece[i]);
    }
    free(m->text);
    free(m->piece);
    free(m->special);
    mt_safetensors_free(m->st);
    free(m);
}

static int load_model(mt_parakeet *m, const char *dir, const mt_config *cfg, mt_err *err) {
    int rc = pick_kind(cfg, &m->kind, err);
    if (!rc) rc = read_preprocessor(m, cfg, err);
    if (!rc) rc = mt_conformer_read_cfg(cfg, &m->ec, err);
    if (!rc && m->ec.feat_in != mt_nemo_mel_features(m->mel))
        rc = mt_seterr(err, MT_EFORMAT, "config.json: encoder.feat_in %d != preprocessor.features %d", m->ec.feat_in,
                       mt_nemo_mel_features(m->mel));
    if (rc) return mt_preferr(err, "%s", dir);
    m->sub = m->ec.subsampling_factor;
    MT_TRY(mt_safetensors_open_dir(&m->st, dir, err));
    rc = mt_conformer_load(&m->enc, &m->ec, m->st, cfg, "encoder.", err);
    if (!rc) rc = m->kind == MT_PK_CTC ? load_ctc(m, cfg, err) : load_transducer(m, cfg, err);
    if (rc) {
        const char *f = mt_safetensors_nfiles(m->st) == 1 ? mt_safetensors_file(m->st, 0) : dir;
        if (strstr(err->msg, "config.json")) return mt_preferr(err, "%s", dir);
        return mt_preferr(err, "%s", f);
    }
    return MT_OK;
}

int mt_parakeet_load(mt_parakeet **out, const char *dir, const mt_config *cfg, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_parakeet *m = calloc(1, sizeof *m);
    if (!m) return mt_seterr(err, MT_ENOMEM, "out of memory");
    m->pool = pool;
    mt_err tmp = {0};
    if (!err) err = &tmp;
    int rc = load_model(m, dir, cfg, err);
    if (rc) {
        mt_parakeet_free(m);
        return rc;
    }
    *out = m;
    return MT_OK;
}

int mt_parakeet_kind(const mt_parakeet *m) { return m->kind; }
int mt_parakeet_sample_rate(const mt_parakeet *m) { return m->sample_rate; }
size_t mt_parakeet_n_mels(const mt_parakeet *m) { return (size_t)m->ec.feat_in; }
size_t mt_parakeet_d_model(const mt_parakeet *m) { return (size_t)m->ec.d_model; }
size_t mt_parakeet_vocab_size(const mt_parakeet *m) { return m->V; }
const char *mt_parakeet_piece(const mt_parakeet *m, int32_t id) {
    return id >= 0 && (size_t)id < m->V ? m->piece[id] : NULL;
}

/* ---- running ---- */

int mt_parakeet_features(mt_parakeet *m, const float *audio, size_t n, float **feat, size_t *T, mt_err *err) {
    return mt_nemo_mel_compute(m->mel, audio, n, feat, T, err);
}

int mt_parakeet_encode(mt_parakeet *m, const float *feat, size_t T, float **enc, size_t *Tn, mt_err *err) {
    *enc = NULL;
    *Tn = 0;
    if (T == 0) return mt_seterr(err, MT_EINVAL, "encoder: no frames");
    size_t n = mt_conformer_out_len(m->enc, T);
    float *y = malloc(sizeof(float) * n * (size_t)m->ec.d_model);
    if (!y) return mt_seterr(err, MT_ENOMEM, "encoder: out of memory (%zu frames)", n);
    int rc = mt_conformer_forward(m->enc, feat, T, y, m->pool, err);
    if (rc) {
        free(y);
        return rc;
    }
    *enc = y;
    *Tn = n;
    return MT_OK;
}

/* Growable token list. */
typedef struct tok_list {
    mt_pk_token *v;
    size_t n, cap;
} tok_list;

static int tok_push(tok_list *l, const mt_parakeet *m, int32_t id, double start, double duration, mt_err *err) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        mt_pk_token *p = realloc(l->v, cap * sizeof *p);
        if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
        l->v = p;
        l->cap = cap;
    }
    mt_pk_token *t = &l->v[l->n++];
    t->id = id;
    t->text = m->text[id];
    t->start = start;
    t->duration = duration;
    t->end = start + duration;
    return MT_OK;
}

/* Seconds of encoder frame t, as the reference computes them. */
static double frame_s(const mt_parakeet *m, long t) {
    return (double)(t * m->sub) / (double)m->sample_rate * (double)m->hop;
}

static size_t argmax_range(const float *x, size_t n) {
    size_t b = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[b]) b = i;
    return b;
}

static float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Prediction network step: token (blank: a zero embedding) and state
 * h, c [n_lstm][H] -> new state nh, nc and output g = nh[last]. */
static void predict(const mt_parakeet *m, int32_t token, const float *h, const float *c, float *nh, float *nc,
                    float *x, float *z) {
    size_t P = (size_t)m->P;
    if (token < 0 || (size_t)token >= m->V || (size_t)token >= m->embed.out) memset(x, 0, P * sizeof(float));
    else mt_linear_row(&m->embed, (size_t)token, x);
    const float *in = x;
    for (int l = 0; l < m->n_lstm; l++) {
        const pk_lstm *L = &m->lstm[l];
        size_t H = (size_t)L->H;
        memcpy(z, L->b, 4 * H * sizeof(float));
        cblas_sgemv(CblasRowMajor, CblasNoTrans, 4 * L->H, L->in, 1.0f, L->wx, L->in, in, 1, 1.0f, z, 1);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, 4 * L->H, L->H, 1.0f, L->wh, L->H, h + l * H, 1, 1.0f, z, 1);
        float *hh = nh + l * H, *cc = nc + l * H;
        for (size_t k = 0; k < H; k++) {
            float ig = sigm(z[k]), fg = sigm(z[H + k]), gg = tanhf(z[2 * H + k]), og = sigm(z[3 * H + k]);
            cc[k] = fg * c[l * H + k] + ig * gg;
            hh[k] = og * tanhf(cc[k]);
        }
        in = hh;
    }
}

/* Joint network: out[n_out] = W act(encp + predp) + b. */
static void joint(const mt_parakeet *m, const float *encp, const float *predp, float *hbuf, float *out) {
    size_t J = m->j_enc.out;
    for (size_t k = 0; k < J; k++) {
        float v = encp[k] + predp[k];
        if (m->act == ACT_RELU) v = v > 0 ? v : 0;
        else if (m->act == ACT_SIGMOID) v = sigm(v);
        else v = tanhf(v);
        hbuf[k] = v;
    }
    mt_linear_forward(&m->j_out, hbuf, 1, out, NULL, NULL);
}

static int decode_transducer(mt_parakeet *m, const float *enc, size_t Tn, tok_list *out, mt_err *err) {
    size_t H = (size_t)m->lstm[m->n_lstm - 1].H, L = (size_t)m->n_lstm, J = m->j_enc.out, P = (size_t)m->P;
    size_t zn = 4 * (H > P ? H : P);
    size_t need = Tn * J + 4 * L * H + P + zn + 2 * J + m->n_out;
    float *buf = calloc(need, sizeof(float));
    if (!buf) return mt_seterr(err, MT_ENOMEM, "decoder: out of memory");
    float *encp = buf, *h = encp + Tn * J, *c = h + L * H, *nh = c + L * H, *nc = nh + L * H;
    float *x = nc + L * H, *z = x + P, *predp = z + zn, *hb = predp + J, *lo = hb + J;
    mt_linear_forward(&m->j_enc, enc, Tn, encp, NULL, m->pool);
    int32_t blank = (int32_t)m->V, last = blank;
    /* the prediction for (last, state): recomputed only when a token is emitted */
    predict(m, last, h, c, nh, nc, x, z);
    mt_linear_forward(&m->j_pred, nh + (L - 1) * H, 1, predp, NULL, NULL);
    long time = 0, T = (long)Tn;
    int new_symbols = 0, rc = MT_OK;
    int cap = m->max_symbols >= 0 ? m->max_symbols : PK_SYMBOL_CAP;
    while (time < T && !rc) {
        joint(m, encp + (size_t)time * J, predp, hb, lo);
        if (m->kind == MT_PK_TDT) {
            int32_t tok = (int32_t)argmax_range(lo, m->V + 1);
            int dec = (int)argmax_range(lo + m->V + 1, (size_t)m->n_dur);
            int dur = m->durations[dec];
            if (tok != blank) {
                last = tok;
                memcpy(h, nh, L * H * sizeof(float));
                memcpy(c, nc, L * H * sizeof(float));
                if (!m->special[tok]) rc = tok_push(out, m, tok, frame_s(m, time), frame_s(m, dur), err);
                predict(m, last, h, c, nh, nc, x, z);
                mt_linear_forward(&m->j_pred, nh + (L - 1) * H, 1, predp, NULL, NULL);
            }
            time += dur;
            new_symbols++;
            if (dur != 0) new_symbols = 0;
            else if (cap <= new_symbols) {
                time++;
                new_symbols = 0;
            }
        } else {
            int32_t tok = (int32_t)argmax_range(lo, m->n_out);
            if (tok != blank) {
                last = tok;
                memcpy(h, nh, L * H * sizeof(float));
                memcpy(c, nc, L * H * sizeof(float));
                if ((size_t)tok < m->V && !m->special[tok])
                    rc = tok_push(out, m, tok, frame_s(m, time), frame_s(m, 1), err);
                predict(m, last, h, c, nh, nc, x, z);
                mt_linear_forward(&m->j_pred, nh + (L - 1) * H, 1, predp, NULL, NULL);
                new_symbols++;
                if (cap <= new_symbols) {
                    time++;
                    new_symbols = 0;
                }
            } else {
                time++;
                new_symbols = 0;
            }
        }
    }
    free(buf);
    return rc;
}

/* ParakeetCTC.decode: arg-max per frame of the log-softmax; blanks are
 * skipped without ending a run, so a token repeated across blanks is kept
 * once; a token ends where the next one starts, the last one after the last
 * non-blank frame. */
static int decode_ctc(mt_parakeet *m, const float *enc, size_t Tn, tok_list *out, mt_err *err) {
    size_t nc = m->n_out;
    float *lg = malloc(sizeof(float) * Tn * nc);
    int32_t *best = malloc(sizeof(int32_t) * (Tn ? Tn : 1));
    if (!lg || !best) {
        free(lg);
        free(best);
        return mt_seterr(err, MT_ENOMEM, "decoder: out of memory");
    }
    mt_linear_forward(&m->ctc, enc, Tn, lg, NULL, m->pool);
    for (size_t t = 0; t < Tn; t++) {
        float *r = lg + t * nc;
        float mx = r[0];
        for (size_t k = 1; k < nc; k++)
            if (r[k] > mx) mx = r[k];
        float s = 0;
        for (size_t k = 0; k < nc; k++) s += expf(r[k] - mx);
        float lse = mx + logf(s);
        for (size_t k = 0; k < nc; k++) r[k] -= lse;
        best[t] = (int32_t)argmax_range(r, nc);
    }
    free(lg);
    int32_t blank = (int32_t)m->V, prev = -1;
    long start = 0;
    int rc = MT_OK;
    for (size_t t = 0; t < Tn && !rc; t++) {
        int32_t k = best[t];
        if (k == blank || k == prev) continue;
        if (prev != -1 && (size_t)prev < m->V && !m->special[prev]) {
            double s = frame_s(m, start), e = frame_s(m, (long)t);
            rc = tok_push(out, m, prev, s, e - s, err);
        }
        start = (long)t;
        prev = k;
    }
    if (!rc && prev != -1 && (size_t)prev < m->V && !m->special[prev]) {
        long last_nb = (long)Tn - 1;
        for (long t = (long)Tn - 1; t > start; t--)
            if (best[t] != blank) {
                last_nb = t;
                break;
            }
        double s = frame_s(m, start), e = frame_s(m, last_nb + 1);
        rc = tok_push(out, m, prev, s, e - s, err);
    }
    free(best);
    return rc;
}

int mt_parakeet_decode(mt_parakeet *m, const float *enc, size_t Tn, mt_pk_token **toks, size_t *n, mt_err *err) {
    *toks = NULL;
    *n = 0;
    tok_list l = {0};
    int rc = Tn == 0 ? MT_OK
             : m->kind == MT_PK_CTC ? decode_ctc(m, enc, Tn, &l, err)
                                    : decode_transducer(m, enc, Tn, &l, err);
    if (rc) {
        free(l.v);
        return rc;
    }
    *toks = l.v;
    *n = l.n;
    return MT_OK;
}

int mt_parakeet_run(mt_parakeet *m, const float *audio, size_t n, mt_pk_token **toks, size_t *ntok, mt_err *err) {
    *toks = NULL;
    *ntok = 0;
    float *feat = NULL, *enc = NULL;
    size_t T = 0, Tn = 0;
    int rc = mt_parakeet_features(m, audio, n, &feat, &T, err);
    if (!rc) rc = mt_parakeet_encode(m, feat, T, &enc, &Tn, err);
    free(feat);
    if (!rc) rc = mt_parakeet_decode(m, enc, Tn, toks, ntok, err);
    free(enc);
    return rc;
}
