/* test_adain_blocks.c - the ops composed as Kokoro composes them, against
 * mlx-audio's AdaINResBlock1 (generator: AdaIN, snake, dilated weight-normed
 * convs, residuals) and AdainResBlk1d (decoder / predictor: AdaIN, leaky ReLU,
 * the depthwise transposed-conv upsampling with its first sample dropped, the
 * nearest-upsampled 1x1 shortcut, /sqrt 2), tests/data/tts_ops/blocks.safetensors. */
#include <stdlib.h>
#include <string.h>
#include "core/pool.h"
#include "tensor/conv1d.h"
#include "tensor/norm_ada.h"
#include "tts_ops_golden.h"

static const mt_safetensors *ST;
static mt_pool *POOL;
static int FAILED;

/* y = conv(x) with the weight-normed kernel stored under pre; returns T_out or 0 */
static size_t conv(const char *pre, int cin, int cout, int k, int stride, int pad, int dil, int groups, int transposed,
                   const float *x, size_t T, float *y) {
    float *v = gold(ST, pre, "v", NULL), *g = gold(ST, pre, "g", NULL), *b = gold(ST, pre, "b", NULL);
    mt_conv1d_shape s = {cin, cout, k, stride, pad, dil, groups, transposed, 0};
    mt_conv1d c;
    mt_err e = {0};
    size_t To = 0;
    if (v && g && !mt_conv1d_init_wn(&c, &s, v, g, MT_CONV_W_OKI, b, &e)) {
        if (!mt_conv1d_forward(&c, x, T, y, POOL, &e)) To = mt_conv1d_out_len(&s, T);
        mt_conv1d_free(&c);
    }
    if (!To) {
        FAILED++;
        fprintf(stderr, "%s: %s\n", pre, e.msg[0] ? e.msg : "weights missing");
    }
    free(v); free(g); free(b);
    return To;
}

static void adain(const char *pre, float *x, size_t C, size_t T, const float *s, size_t S) {
    float *W = gold(ST, pre, "fc_w", NULL), *b = gold(ST, pre, "fc_b", NULL), *gb = malloc(2 * C * sizeof(float));
    if (W && b && gb) {
        mt_ada_style(gb, W, b, s, S, 2 * C);
        mt_adain1d(x, x, gb, C, T, 1e-5f, POOL);
    } else
        FAILED++;
    free(W); free(b); free(gb);
}

/* snake with the alphas stored as res1.<what> */
static void snake(const char *what, float *x, size_t C, size_t T) {
    size_t n = 0;
    float *al = gold(ST, "res1", what, &n);
    if (al && n == C)
        mt_snake(x, al, C, T, POOL);
    else
        FAILED++;
    free(al);
}

static void test_res1(void) {
    size_t nhp = 0;
    float *hp = gold(ST, "res1", "hp", &nhp), *x = gold(ST, "res1", "x", NULL), *s = gold(ST, "res1", "s", NULL);
    float *yr = gold(ST, "res1", "y", NULL);
    CHECK(hp && nhp == 4 && x && s && yr);
    if (!(hp && nhp == 4 && x && s && yr)) return;
    size_t S = (size_t)hp[0], C = (size_t)hp[1], T = (size_t)hp[2];
    int k = (int)hp[3], dil[3] = {1, 3, 5};
    float *xt = malloc(C * T * sizeof(float)), *t2 = malloc(C * T * sizeof(float));
    FAILED = 0;
    for (int i = 0; i < 3 && xt && t2; i++) {
        char pre[64];
        memcpy(xt, x, C * T * sizeof(float));
        snprintf(pre, sizeof pre, "res1.adain1.%d", i);
        adain(pre, xt, C, T, s, S);
        snprintf(pre, sizeof pre, "alpha1.%d", i);
        snake(pre, xt, C, T);
        snprintf(pre, sizeof pre, "res1.convs1.%d", i);
        conv(pre, (int)C, (int)C, k, 1, dil[i] * (k - 1) / 2, dil[i], 1, 0, xt, T, t2);
        snprintf(pre, sizeof pre, "res1.adain2.%d", i);
        adain(pre, t2, C, T, s, S);
        snprintf(pre, sizeof pre, "alpha2.%d", i);
        snake(pre, t2, C, T);
        snprintf(pre, sizeof pre, "res1.convs2.%d", i);
        conv(pre, (int)C, (int)C, k, 1, (k - 1) / 2, 1, 1, 0, t2, T, xt);
        for (size_t j = 0; j < C * T; j++) x[j] = xt[j] + x[j];
    }
    CHECK_EQ_INT(FAILED, 0);
    check_close("AdaINResBlock1", x, yr, C * T);
    free(xt); free(t2); free(hp); free(x); free(s); free(yr);
}

static void test_blk(const char *cs) {
    size_t nhp = 0;
    float *hp = gold(ST, cs, "hp", &nhp), *x = gold(ST, cs, "x", NULL), *s = gold(ST, cs, "s", NULL);
    float *yr = gold(ST, cs, "y", NULL);
    CHECK(hp && nhp == 5 && x && s && yr);
    if (!(hp && nhp == 5 && x && s && yr)) return;
    size_t S = (size_t)hp[0], ci = (size_t)hp[1], co = (size_t)hp[2], T = (size_t)hp[4];
    int up = (int)hp[3];
    size_t T2 = up ? 2 * T : T;
    float *a = malloc(ci * (2 * T + 1) * sizeof(float)), *b = malloc(ci * (2 * T + 1) * sizeof(float));
    float *r = malloc(co * T2 * sizeof(float)), *sc = malloc(ci * T2 * sizeof(float));
    float *scc = malloc(co * T2 * sizeof(float));
    char pre[64];
    FAILED = 0;
    if (a && b && r && sc && scc) {
        /* residual: norm1, leaky 0.2, [pool: depthwise transposed conv, drop sample 0], conv1, norm2, leaky, conv2 */
        memcpy(a, x, ci * T * sizeof(float));
        snprintf(pre, sizeof pre, "%s.norm1", cs);
        adain(pre, a, ci, T, s, S);
        mt_leaky_relu(a, ci * T, 0.2f);
        const float *in = a;
        if (up) {
            snprintf(pre, sizeof pre, "%s.pool", cs);
            size_t To = conv(pre, (int)ci, (int)ci, 3, 2, 0, 1, (int)ci, 1, a, T, b);
            CHECK_EQ_INT(To, 2 * T + 1);
            for (size_t c = 0; c < ci; c++) memmove(a + c * T2, b + c * To + 1, T2 * sizeof(float));
        }
        snprintf(pre, sizeof pre, "%s.conv1", cs);
        conv(pre, (int)ci, (int)co, 3, 1, 1, 1, 1, 0, in, T2, r);
        snprintf(pre, sizeof pre, "%s.norm2", cs);
        adain(pre, r, co, T2, s, S);
        mt_leaky_relu(r, co * T2, 0.2f);
        snprintf(pre, sizeof pre, "%s.conv2", cs);
        conv(pre, (int)co, (int)co, 3, 1, 1, 1, 1, 0, r, T2, b);
        /* shortcut: nearest x2, 1x1 conv when the widths differ */
        for (size_t c = 0; c < ci; c++)
            for (size_t t = 0; t < T2; t++) sc[c * T2 + t] = x[c * T + (up ? t / 2 : t)];
        const float *shortcut = sc;
        if (ci != co) {
            snprintf(pre, sizeof pre, "%s.conv1x1", cs);
            conv(pre, (int)ci, (int)co, 1, 1, 0, 1, 1, 0, sc, T2, scc);
            shortcut = scc;
        }
        const float r2 = sqrtf(2.0f);
        for (size_t j = 0; j < co * T2; j++) r[j] = (b[j] + shortcut[j]) / r2;
        CHECK_EQ_INT(FAILED, 0);
        check_close(up ? "AdainResBlk1d (upsample)" : "AdainResBlk1d", r, yr, co * T2);
    }
    free(a); free(b); free(r); free(sc); free(scc); free(hp); free(x); free(s); free(yr);
}

int main(void) {
    mt_err e = {0};
    mt_safetensors *st = NULL;
    int rc = mt_safetensors_open(&st, "tests/data/tts_ops/blocks.safetensors", &e);
    CHECK_OK(rc, &e);
    CHECK_OK(mt_pool_new(&POOL, 2, &e), &e);
    ST = st;
    if (!rc) {
        test_res1();
        test_blk("blk_up");
        test_blk("blk");
    }
    mt_pool_free(POOL);
    mt_safetensors_free(st);
    return check_report("test_adain_blocks");
}
