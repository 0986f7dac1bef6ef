/* kokoro_prosody.c - Kokoro's predictor and text encoder: the duration encoder
 * (n_layer x [BiLSTM over [x, style], AdaLayerNorm]), the duration head (BiLSTM,
 * duration_proj, sigmoid sum / speed, rounded and clipped to [1, 100] frames as
 * mlx-audio does), F0 / N (shared BiLSTM, two AdainResBlk1d branches, 1x1 projections)
 * and the acoustic text encoder (embedding, n_layer x [weight-normed conv, channel
 * LayerNorm, leaky ReLU 0.2], BiLSTM).
 *
 * ref: mlx_audio/tts/models/kokoro/modules.py (DurationEncoder, ProsodyPredictor,
 *      TextEncoder, AdaLayerNorm), kokoro.py (Model.__call__). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "models/kokoro_int.h"
#include "tensor/norm_ada.h"

int kk_prosody_load(kk_loader *L, mt_kokoro *k) {
    int H = k->H, S = k->S, h2 = H / 2;
    char nm[160];
    for (int i = 0; i < k->n_layer; i++) {
        kk_fmt(nm, sizeof nm, "predictor.text_encoder.lstms.%d", 2 * i);
        MT_TRY(kk_lstm_load(L, nm, H + S, h2, &k->dur_lstm[i]));
        kk_fmt(nm, sizeof nm, "predictor.text_encoder.lstms.%d.fc", 2 * i + 1);
        MT_TRY(kk_linear_load(L, nm, S, 2 * H, 1, &k->dur_ln[i]));
    }
    MT_TRY(kk_lstm_load(L, "predictor.lstm", H + S, h2, &k->pred_lstm));
    MT_TRY(kk_linear_load(L, "predictor.duration_proj.linear_layer", H, k->max_dur, 1, &k->dur_proj));
    MT_TRY(kk_lstm_load(L, "predictor.shared", H + S, h2, &k->shared));
    static const char *const br[2] = {"F0", "N"};
    for (int b = 0; b < 2; b++) {
        kk_resblk *blk = b ? k->nn : k->f0;
        kk_fmt(nm, sizeof nm, "predictor.%s.0", br[b]);
        MT_TRY(kk_resblk_load(L, nm, H, H, S, 0, &blk[0]));
        kk_fmt(nm, sizeof nm, "predictor.%s.1", br[b]);
        MT_TRY(kk_resblk_load(L, nm, H, h2, S, 1, &blk[1]));
        kk_fmt(nm, sizeof nm, "predictor.%s.2", br[b]);
        MT_TRY(kk_resblk_load(L, nm, h2, h2, S, 0, &blk[2]));
        mt_conv1d_shape ps = {h2, 1, 1, 1, 0, 1, 1, 0, 0};
        kk_fmt(nm, sizeof nm, "predictor.%s_proj", br[b]);
        MT_TRY(kk_plain_conv_load(L, nm, &ps, b ? &k->n_proj : &k->f0_proj));
    }
    /* text encoder */
    MT_TRY(kk_read(L, "text_encoder.embedding.weight", 2, (int64_t[]){k->n_token, H}, &k->emb));
    for (int i = 0; i < k->n_layer; i++) {
        mt_conv1d_shape cs = {H, H, k->ksize, 1, (k->ksize - 1) / 2, 1, 1, 0, 0};
        char n2[160];
        kk_fmt(nm, sizeof nm, "text_encoder.cnn.%d.0", i);
        MT_TRY(kk_wconv_load(L, nm, &cs, 1, &k->cnn[i]));
        kk_fmt(nm, sizeof nm, "text_encoder.cnn.%d.1.gamma", i);
        kk_fmt(n2, sizeof n2, "text_encoder.cnn.%d.1.beta", i);
        MT_TRY(kk_ln_load(L, nm, n2, H, &k->cnn_ln[i]));
    }
    return kk_lstm_load(L, "text_encoder.lstm", H, h2, &k->te_lstm);
}

void kk_prosody_free(mt_kokoro *k) {
    for (int i = 0; i < KK_MAX_LAYERS; i++) {
        mt_lstm_free(&k->dur_lstm[i]);
        kk_linear_free(&k->dur_ln[i]);
        mt_conv1d_free(&k->cnn[i]);
        kk_ln_free(&k->cnn_ln[i]);
    }
    mt_lstm_free(&k->pred_lstm);
    mt_lstm_free(&k->shared);
    kk_linear_free(&k->dur_proj);
    for (int i = 0; i < 3; i++) {
        kk_resblk_free(&k->f0[i]);
        kk_resblk_free(&k->nn[i]);
    }
    mt_conv1d_free(&k->f0_proj);
    mt_conv1d_free(&k->n_proj);
    free(k->emb);
    k->emb = NULL;
    mt_lstm_free(&k->te_lstm);
}

int kk_durations(const mt_kokoro *k, const float *benc, size_t T, const float *s, float speed, float *d, int *dur,
                 mt_err *err) {
    size_t H = (size_t)k->H, S = (size_t)k->S, W = H + S;
    float *y = malloc(T * H * sizeof(float)), *gb = malloc(2 * H * sizeof(float));
    float *p = malloc(T * (size_t)k->max_dur * sizeof(float));
    int rc = MT_OK;
    if (!y || !gb || !p) {
        rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
        goto done;
    }
    for (size_t t = 0; t < T; t++) {
        memcpy(d + t * W, benc + t * H, H * sizeof(float));
        memcpy(d + t * W + H, s, S * sizeof(float));
    }
    for (int i = 0; i < k->n_layer; i++) {
        if ((rc = mt_lstm_forward(&k->dur_lstm[i], d, T, y, k->pool, err))) goto done;
        mt_ada_style(gb, k->dur_ln[i].w, k->dur_ln[i].b, s, S, 2 * H);
        mt_ada_layernorm(y, y, gb, T, H, 1e-5f, k->pool);
        for (size_t t = 0; t < T; t++) memcpy(d + t * W, y + t * H, H * sizeof(float));
    }
    if ((rc = mt_lstm_forward(&k->pred_lstm, d, T, y, k->pool, err))) goto done;
    kk_linear_fwd(&k->dur_proj, y, T, p, k->pool);
    for (size_t t = 0; t < T; t++) {
        float sum = 0.0f;
        for (int j = 0; j < k->max_dur; j++) sum += 1.0f / (1.0f + expf(-p[t * (size_t)k->max_dur + (size_t)j]));
        float v = sum / speed;
        if (isnan(v)) v = 1.0f;
        else if (isinf(v)) v = v > 0 ? 100.0f : 1.0f;
        v = rintf(v);
        dur[t] = v < 1.0f ? 1 : v > 100.0f ? 100 : (int)v;
    }
done:
    free(y); free(gb); free(p);
    return rc;
}

/* One F0 or N branch: out [2F] from x [H, F]. */
static int branch(const mt_kokoro *k, const kk_resblk *blk, const mt_conv1d *proj, const float *x, size_t F,
                  const float *s, float *out, mt_err *err) {
    size_t H = (size_t)k->H;
    float *a = malloc(H * 2 * F * sizeof(float)), *b = malloc(H * 2 * F * sizeof(float));
    int rc = MT_OK;
    if (!a || !b) rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
    if (!rc) rc = kk_resblk_fwd(&blk[0], x, F, s, k->S, a, k->pool, err);
    if (!rc) rc = kk_resblk_fwd(&blk[1], a, F, s, k->S, b, k->pool, err);
    if (!rc) rc = kk_resblk_fwd(&blk[2], b, 2 * F, s, k->S, a, k->pool, err);
    if (!rc) rc = mt_conv1d_forward(proj, a, 2 * F, out, k->pool, err);
    free(a); free(b);
    return rc;
}

int kk_f0n(const mt_kokoro *k, const float *en, size_t F, const float *s, float *F0, float *N, mt_err *err) {
    size_t H = (size_t)k->H, W = H + (size_t)k->S;
    float *xt = malloc(F * W * sizeof(float)), *y = malloc(F * H * sizeof(float)), *x = malloc(H * F * sizeof(float));
    int rc = MT_OK;
    if (!xt || !y || !x) {
        rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
        goto done;
    }
    for (size_t c = 0; c < W; c++)
        for (size_t f = 0; f < F; f++) xt[f * W + c] = en[c * F + f];
    if ((rc = mt_lstm_forward(&k->shared, xt, F, y, k->pool, err))) goto done;
    for (size_t c = 0; c < H; c++)
        for (size_t f = 0; f < F; f++) x[c * F + f] = y[f * H + c];
    if ((rc = branch(k, k->f0, &k->f0_proj, x, F, s, F0, err))) goto done;
    rc = branch(k, k->nn, &k->n_proj, x, F, s, N, err);
done:
    free(xt); free(y); free(x);
    return rc;
}

int kk_text_encoder(const mt_kokoro *k, const int *ids, size_t T, float *t_en, mt_err *err) {
    size_t H = (size_t)k->H;
    float *x = malloc(H * T * sizeof(float)), *y = malloc(H * T * sizeof(float)), *r = malloc(H * sizeof(float));
    int rc = MT_OK;
    if (!x || !y || !r) {
        rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
        goto done;
    }
    for (size_t t = 0; t < T; t++)
        for (size_t c = 0; c < H; c++) x[c * T + t] = k->emb[(size_t)ids[t] * H + c];
    for (int i = 0; i < k->n_layer; i++) {
        if ((rc = mt_conv1d_forward(&k->cnn[i], x, T, y, k->pool, err))) goto done;
        for (size_t t = 0; t < T; t++) {   /* LayerNorm over the channels of step t */
            for (size_t c = 0; c < H; c++) r[c] = y[c * T + t];
            kk_ln_rows(&k->cnn_ln[i], r, 1, 1e-5f);
            for (size_t c = 0; c < H; c++) x[c * T + t] = r[c];
        }
        mt_leaky_relu(x, H * T, 0.2f);
    }
    for (size_t t = 0; t < T; t++)
        for (size_t c = 0; c < H; c++) y[t * H + c] = x[c * T + t];
    if ((rc = mt_lstm_forward(&k->te_lstm, y, T, x, k->pool, err))) goto done;
    for (size_t t = 0; t < T; t++)
        for (size_t c = 0; c < H; c++) t_en[c * T + t] = x[t * H + c];
done:
    free(x); free(y); free(r);
    return rc;
}
