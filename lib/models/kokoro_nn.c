/* kokoro_nn.c - the blocks Kokoro's stages share: linear layers over the pool, row
 * LayerNorm, AdainResBlk1d (AdaIN, leaky ReLU 0.2, depthwise transposed-conv upsampling,
 * 1x1 shortcut, /sqrt 2) and AdaINResBlock1 (AdaIN, snake, dilated convs, residuals).
 *
 * ref: mlx_audio/tts/models/kokoro/istftnet.py (AdainResBlk1d, AdaINResBlock1). */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "models/kokoro_int.h"
#include "tensor/norm_ada.h"

typedef struct {
    const kk_linear *l;
    const float *x;
    float *y;
} lin_job;

static void lin_rows(void *ctx, size_t r0, size_t r1, int tid) {
    (void)tid;
    const lin_job *j = ctx;
    const kk_linear *l = j->l;
    size_t n = r1 - r0;
    if (!n) return;
    float *y = j->y + r0 * (size_t)l->out;
    if (l->b)
        for (size_t r = 0; r < n; r++) memcpy(y + r * (size_t)l->out, l->b, (size_t)l->out * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, l->out, l->in, 1.0f, j->x + r0 * (size_t)l->in,
                l->in, l->w, l->in, l->b ? 1.0f : 0.0f, y, l->out);
}

void kk_linear_fwd(const kk_linear *l, const float *x, size_t T, float *y, mt_pool *pool) {
    lin_job j = {l, x, y};
    if (pool && T > 1)
        mt_pool_for(pool, T, 1, lin_rows, &j);
    else
        lin_rows(&j, 0, T, 0);
}

void kk_ln_rows(const kk_ln *l, float *x, size_t T, float eps) {
    size_t n = (size_t)l->n;
    for (size_t t = 0; t < T; t++) {
        float *r = x + t * n;
        float mean = 0.0f, var = 0.0f;
        for (size_t i = 0; i < n; i++) mean += r[i];
        mean /= (float)n;
        for (size_t i = 0; i < n; i++) var += (r[i] - mean) * (r[i] - mean);
        var /= (float)n;
        float inv = 1.0f / sqrtf(var + eps);
        for (size_t i = 0; i < n; i++) r[i] = (r[i] - mean) * inv * l->g[i] + l->b[i];
    }
}

static int adain(const kk_ada *a, float *x, size_t C, size_t T, const float *s, int S, mt_pool *pool, mt_err *err) {
    float *gb = malloc(2 * C * sizeof(float));
    if (!gb) return mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
    mt_ada_style(gb, a->w, a->b, s, (size_t)S, 2 * C);
    mt_adain1d(x, x, gb, C, T, 1e-5f, pool);
    free(gb);
    return MT_OK;
}

int kk_resblk_fwd(const kk_resblk *b, const float *x, size_t T, const float *s, int S, float *y, mt_pool *pool,
                  mt_err *err) {
    size_t ci = (size_t)b->din, co = (size_t)b->dout, T2 = b->up ? 2 * T : T;
    size_t big = (ci > co ? ci : co) * (2 * T + 1);
    float *a = malloc(big * sizeof(float)), *t = malloc(big * sizeof(float));
    float *sc = malloc(ci * T2 * sizeof(float)), *scc = NULL;
    int rc = MT_OK;
    if (!a || !t || !sc) {
        rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
        goto done;
    }
    /* residual: norm1, leaky 0.2, [pool: depthwise transposed conv, sample 0 dropped], conv1, norm2, leaky, conv2 */
    memcpy(a, x, ci * T * sizeof(float));
    if ((rc = adain(&b->n1, a, ci, T, s, S, pool, err))) goto done;
    mt_leaky_relu(a, ci * T, 0.2f);
    if (b->up) {
        if ((rc = mt_conv1d_forward(&b->pool, a, T, t, pool, err))) goto done;
        size_t To = mt_conv1d_out_len(&b->pool.s, T);   /* 2T + 1 */
        for (size_t c = 0; c < ci; c++) memmove(a + c * T2, t + c * To + 1, T2 * sizeof(float));
    }
    if ((rc = mt_conv1d_forward(&b->conv1, a, T2, t, pool, err))) goto done;
    if ((rc = adain(&b->n2, t, co, T2, s, S, pool, err))) goto done;
    mt_leaky_relu(t, co * T2, 0.2f);
    if ((rc = mt_conv1d_forward(&b->conv2, t, T2, y, pool, err))) goto done;
    /* shortcut: nearest x2, 1x1 conv when the widths differ */
    for (size_t c = 0; c < ci; c++)
        for (size_t j = 0; j < T2; j++) sc[c * T2 + j] = x[c * T + (b->up ? j / 2 : j)];
    const float *shortcut = sc;
    if (ci != co) {
        if (!(scc = malloc(co * T2 * sizeof(float)))) {
            rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
            goto done;
        }
        if ((rc = mt_conv1d_forward(&b->sc, sc, T2, scc, pool, err))) goto done;
        shortcut = scc;
    }
    const float r2 = sqrtf(2.0f);
    for (size_t j = 0; j < co * T2; j++) y[j] = (y[j] + shortcut[j]) / r2;
done:
    free(a); free(t); free(sc); free(scc);
    return rc;
}

int kk_res1_fwd(const kk_res1 *b, float *x, size_t T, const float *s, int S, mt_pool *pool, mt_err *err) {
    size_t C = (size_t)b->C;
    float *xt = malloc(C * T * sizeof(float)), *t2 = malloc(C * T * sizeof(float));
    int rc = MT_OK;
    if (!xt || !t2) rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
    for (int i = 0; i < 3 && !rc; i++) {
        memcpy(xt, x, C * T * sizeof(float));
        if ((rc = adain(&b->a1[i], xt, C, T, s, S, pool, err))) break;
        mt_snake(xt, b->al1[i], C, T, pool);
        if ((rc = mt_conv1d_forward(&b->c1[i], xt, T, t2, pool, err))) break;
        if ((rc = adain(&b->a2[i], t2, C, T, s, S, pool, err))) break;
        mt_snake(t2, b->al2[i], C, T, pool);
        if ((rc = mt_conv1d_forward(&b->c2[i], t2, T, xt, pool, err))) break;
        for (size_t j = 0; j < C * T; j++) x[j] = xt[j] + x[j];
    }
    free(xt); free(t2);
    return rc;
}
