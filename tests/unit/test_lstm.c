/* test_lstm.c - tensor/lstm against mlx-audio's Kokoro LSTM
 * (tests/data/tts_ops/lstm.safetensors): bidirectional outputs, the forward
 * half as a unidirectional layer, with and without the pool, and the errors. */
#include <stdlib.h>
#include <string.h>
#include "core/pool.h"
#include "tensor/lstm.h"
#include "tts_ops_golden.h"

static void run_case(const mt_safetensors *st, const char *cs, mt_pool *pool) {
    size_t nhp = 0, nx = 0, ny = 0;
    float *hp = gold(st, cs, "hp", &nhp), *x = gold(st, cs, "x", &nx), *yr = gold(st, cs, "y", &ny);
    const char *names[4] = {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"};
    float *wt[2][4] = {{0}};
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < 4; i++) {
            char nm[64];
            snprintf(nm, sizeof nm, "%s%s", names[i], d ? "_reverse" : "");
            wt[d][i] = gold(st, cs, nm, NULL);
        }
    int ok = hp && nhp == 3 && x && yr;
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < 4; i++) ok = ok && wt[d][i];
    CHECK_MSG(ok, "%s: golden tensors missing", cs);
    if (ok) {
        int in = (int)hp[0], H = (int)hp[1];
        size_t T = (size_t)hp[2];
        const float *wih[2] = {wt[0][0], wt[1][0]}, *whh[2] = {wt[0][1], wt[1][1]};
        const float *bih[2] = {wt[0][2], wt[1][2]}, *bhh[2] = {wt[0][3], wt[1][3]};
        mt_err e = {0};
        mt_lstm l;
        CHECK_EQ_INT(ny, T * 2 * (size_t)H);
        CHECK_EQ_INT(nx, T * (size_t)in);
        float *y = calloc(T * 2 * (size_t)H, sizeof(float)), *yf = calloc(T * (size_t)H, sizeof(float));
        float *ref1 = calloc(T * (size_t)H, sizeof(float));
        if (y && yf && ref1 && ny == T * 2 * (size_t)H) {
            char label[64];
            CHECK_OK(mt_lstm_init(&l, in, H, 2, wih, whh, bih, bhh, &e), &e);
            CHECK_OK(mt_lstm_forward(&l, x, T, y, pool, &e), &e);
            snprintf(label, sizeof label, "%s bidir%s", cs, pool ? " (pool)" : "");
            check_close(label, y, yr, ny);
            mt_lstm_free(&l);
            CHECK_OK(mt_lstm_init(&l, in, H, 1, wih, whh, bih, bhh, &e), &e);
            CHECK_OK(mt_lstm_forward(&l, x, T, yf, pool, &e), &e);
            for (size_t t = 0; t < T; t++) memcpy(ref1 + t * (size_t)H, yr + t * 2 * (size_t)H, (size_t)H * sizeof(float));
            snprintf(label, sizeof label, "%s forward%s", cs, pool ? " (pool)" : "");
            check_close(label, yf, ref1, T * (size_t)H);
            mt_lstm_free(&l);
        }
        free(y);
        free(yf);
        free(ref1);
    }
    free(hp);
    free(x);
    free(yr);
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < 4; i++) free(wt[d][i]);
}

static void test_errors(void) {
    mt_lstm l;
    mt_err e = {0};
    float w[32] = {0};
    const float *ws[2] = {w, NULL};
    CHECK_EQ_INT(mt_lstm_init(&l, 2, 1, 3, ws, ws, NULL, NULL, &e), MT_EINVAL);
    CHECK_EQ_INT(mt_lstm_init(&l, 2, 1, 2, ws, ws, NULL, NULL, &e), MT_EINVAL);   /* no reverse weights */
    mt_lstm_free(&l);
    CHECK_OK(mt_lstm_init(&l, 2, 1, 1, ws, ws, NULL, NULL, &e), &e);
    float x[2] = {1, 2}, y[1];
    CHECK_EQ_INT(mt_lstm_forward(&l, x, 0, y, NULL, &e), MT_EINVAL);
    CHECK_OK(mt_lstm_forward(&l, x, 1, y, NULL, &e), &e);
    CHECK(y[0] == 0.0f);   /* zero weights: c = 0.5 * tanh(0) = 0 */
    mt_lstm_free(&l);
    mt_lstm_free(NULL);
}

int main(void) {
    mt_err e = {0};
    mt_safetensors *st = NULL;
    int rc = mt_safetensors_open(&st, "tests/data/tts_ops/lstm.safetensors", &e);
    CHECK_OK(rc, &e);
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    const char *cases[] = {"small", "kokoro_like", "t1"};
    if (!rc)
        for (size_t i = 0; i < 3; i++) {
            run_case(st, cases[i], NULL);
            run_case(st, cases[i], pool);
        }
    test_errors();
    mt_pool_free(pool);
    mt_safetensors_free(st);
    return check_report("test_lstm");
}
