/* lstm.c - one LSTM layer (see lstm.h): the input projections of every step
 * as one sgemm split over the pool, then the recurrence (sgemv + gates) per
 * direction, the two directions as two pool jobs.
 * ref: mlx_audio/tts/models/kokoro/modules.py (LSTM). */
#include "tensor/lstm.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LSTM_COL_BLOCK 128   /* gate rows per projection job */

int mt_lstm_init(mt_lstm *l, int in, int hidden, int dirs, const float *const w_ih[], const float *const w_hh[],
                 const float *const b_ih[], const float *const b_hh[], mt_err *err) {
    if (!l) return mt_seterr(err, MT_EINVAL, "lstm: no lstm");
    memset(l, 0, sizeof *l);
    if (in < 1 || hidden < 1 || (dirs != 1 && dirs != 2) || (size_t)hidden > (SIZE_MAX / 64) / (size_t)in ||
        hidden > (1 << 24))
        return mt_seterr(err, MT_EINVAL, "lstm: bad sizes (in %d, hidden %d, directions %d)", in, hidden, dirs);
    if (!w_ih || !w_hh) return mt_seterr(err, MT_EINVAL, "lstm: missing weights");
    size_t H4 = 4 * (size_t)hidden;
    l->in = in;
    l->hidden = hidden;
    l->dirs = dirs;
    for (int d = 0; d < dirs; d++) {
        if (!w_ih[d] || !w_hh[d]) {
            mt_lstm_free(l);
            return mt_seterr(err, MT_EINVAL, "lstm: missing weights of direction %d", d);
        }
        l->w_ih[d] = malloc(H4 * (size_t)in * sizeof(float));
        l->w_hh[d] = malloc(H4 * (size_t)hidden * sizeof(float));
        l->bias[d] = malloc(H4 * sizeof(float));
        if (!l->w_ih[d] || !l->w_hh[d] || !l->bias[d]) {
            mt_lstm_free(l);
            return mt_seterr(err, MT_ENOMEM, "lstm: out of memory");
        }
        memcpy(l->w_ih[d], w_ih[d], H4 * (size_t)in * sizeof(float));
        memcpy(l->w_hh[d], w_hh[d], H4 * (size_t)hidden * sizeof(float));
        for (size_t i = 0; i < H4; i++)
            l->bias[d][i] = (b_ih && b_ih[d] ? b_ih[d][i] : 0.0f) + (b_hh && b_hh[d] ? b_hh[d][i] : 0.0f);
    }
    return MT_OK;
}

void mt_lstm_free(mt_lstm *l) {
    if (!l) return;
    for (int d = 0; d < 2; d++) {
        free(l->w_ih[d]);
        free(l->w_hh[d]);
        free(l->bias[d]);
        l->w_ih[d] = l->w_hh[d] = l->bias[d] = NULL;
    }
}

typedef struct lstm_job {
    const mt_lstm *l;
    const float *x;
    float *y;
    size_t T, nblk;
    float *xp[2];     /* [T, 4H] per direction */
    float *state[2];  /* [6H] per direction: h, c, z (4H) */
} lstm_job;

/* xp[d][:, n0:n1] = x W_ih[d][n0:n1]^T + bias[d][n0:n1] */
static void proj_run(void *ctx, size_t begin, size_t end, int tid) {
    (void)tid;
    const lstm_job *J = ctx;
    const mt_lstm *l = J->l;
    size_t H4 = 4 * (size_t)l->hidden;
    for (size_t jb = begin; jb < end; jb++) {
        size_t d = jb / J->nblk, n0 = (jb % J->nblk) * LSTM_COL_BLOCK;
        size_t n1 = n0 + LSTM_COL_BLOCK < H4 ? n0 + LSTM_COL_BLOCK : H4;
        float *out = J->xp[d] + n0;
        for (size_t t = 0; t < J->T; t++) memcpy(out + t * H4, l->bias[d] + n0, (n1 - n0) * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)J->T, (int)(n1 - n0), l->in, 1.0f, J->x, l->in,
                    l->w_ih[d] + n0 * (size_t)l->in, l->in, 1.0f, out, (int)H4);
    }
}

static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

static void rec_run(void *ctx, size_t begin, size_t end, int tid) {
    (void)tid;
    const lstm_job *J = ctx;
    const mt_lstm *l = J->l;
    size_t H = (size_t)l->hidden, H4 = 4 * H, ldy = (size_t)l->dirs * H;
    for (size_t d = begin; d < end; d++) {
        float *h = J->state[d], *c = h + H, *z = c + H;
        memset(h, 0, 2 * H * sizeof(float));
        for (size_t s = 0; s < J->T; s++) {
            size_t t = d ? J->T - 1 - s : s;
            memcpy(z, J->xp[d] + t * H4, H4 * sizeof(float));
            if (s) cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)H4, (int)H, 1.0f, l->w_hh[d], (int)H, h, 1, 1.0f, z, 1);
            float *yo = J->y + t * ldy + d * H;
            for (size_t i = 0; i < H; i++) {
                float ig = sigm(z[i]), fg = sigm(z[H + i]), gg = tanhf(z[2 * H + i]), og = sigm(z[3 * H + i]);
                c[i] = fg * c[i] + ig * gg;
                h[i] = og * tanhf(c[i]);
                yo[i] = h[i];
            }
        }
    }
}

int mt_lstm_forward(const mt_lstm *l, const float *x, size_t T, float *y, mt_pool *pool, mt_err *err) {
    if (!l || !l->w_ih[0] || !x || !y) return mt_seterr(err, MT_EINVAL, "lstm: missing argument");
    if (T == 0) return mt_seterr(err, MT_EINVAL, "lstm: empty sequence");
    size_t H = (size_t)l->hidden, H4 = 4 * H;
    if (T > (size_t)INT32_MAX || T > SIZE_MAX / sizeof(float) / H4 / 2)
        return mt_seterr(err, MT_EINVAL, "lstm: sequence of %zu steps too long", T);
    lstm_job J = {.l = l, .x = x, .y = y, .T = T, .nblk = (H4 + LSTM_COL_BLOCK - 1) / LSTM_COL_BLOCK};
    int rc = MT_OK;
    for (int d = 0; d < l->dirs && !rc; d++) {
        J.xp[d] = malloc(T * H4 * sizeof(float));
        J.state[d] = malloc(6 * H * sizeof(float));
        if (!J.xp[d] || !J.state[d]) rc = mt_seterr(err, MT_ENOMEM, "lstm: out of memory");
    }
    if (!rc) {
        mt_pool_for(pool, (size_t)l->dirs * J.nblk, 1, proj_run, &J);
        mt_pool_for(pool, (size_t)l->dirs, 1, rec_run, &J);
    }
    for (int d = 0; d < 2; d++) {
        free(J.xp[d]);
        free(J.state[d]);
    }
    return rc;
}
