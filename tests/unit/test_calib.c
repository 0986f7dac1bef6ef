/* test_calib.c - calibrated quantization (convert --calibrate): on the
 * llama-tiny fixture the calibrated output has the plain output's tensors
 * (names, dtypes, shapes, sizes), loads and runs, and its activation-weighted
 * error is <= the plain one for every calibrated module and lower in total. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "convert/calib.h"
#include "convert/convert.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "models/model.h"
#include "tensor/quant.h"

#define SRC "tests/data/models/llama-tiny"
#define TXT "tests/data/calib/calib.txt"

static void rm_tree(const char *d) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
    if (system(cmd)) { /* ignore */ }
}

static double module_error(const mt_safetensors *q, const mt_safetensors *src, const char *path, const float *m,
                           size_t K, int bits, int gs) {
    char n[256];
    snprintf(n, sizeof n, "%s.weight", path);
    const mt_tensor_view *w = mt_safetensors_get(q, n), *sw = mt_safetensors_get(src, n);
    snprintf(n, sizeof n, "%s.scales", path);
    const mt_tensor_view *s = mt_safetensors_get(q, n);
    snprintf(n, sizeof n, "%s.biases", path);
    const mt_tensor_view *b = mt_safetensors_get(q, n);
    if (!w || !sw || !s || !b || sw->dtype != MT_F32) return -1;
    size_t rows = (size_t)sw->shape[0];
    if ((size_t)sw->shape[1] != K) return -1;
    float *x = malloc(rows * K * sizeof *x);
    void *wc = malloc(w->nbytes), *sc = malloc(s->nbytes), *bc = malloc(b->nbytes);
    memcpy(x, sw->data, rows * K * sizeof *x);
    memcpy(wc, w->data, w->nbytes), memcpy(sc, s->data, s->nbytes), memcpy(bc, b->data, b->nbytes);
    double e = mt_calib_error(x, m, wc, sc, bc, s->dtype, rows, K, bits, gs);
    free(x), free(wc), free(sc), free(bc);
    return e;
}

static void run_bits(int bits, int gs) {
    char tmpl[] = "/tmp/test_calib_XXXXXX";
    char *dir = mkdtemp(tmpl);
    CHECK(dir != NULL);
    if (!dir) return;
    char *plain = mt_path_join(dir, "plain"), *cal = mt_path_join(dir, "cal");
    mt_err err = {0};
    mt_convert_opts o = {0};
    o.src = SRC, o.quantize = 1, o.bits = bits, o.group_size = gs, o.threads = 1;
    o.dst = plain;
    CHECK_OK(mt_convert(&o, &err), &err);
    o.dst = cal, o.calibrate = TXT;
    CHECK_OK(mt_convert(&o, &err), &err);

    mt_calib *cb = NULL;
    CHECK_OK(mt_calib_collect(&cb, SRC, TXT, 0, NULL, &err), &err);
    CHECK(mt_calib_tokens(cb) > 50);

    mt_safetensors *sp = NULL, *sc = NULL, *ss = NULL;
    CHECK_OK(mt_safetensors_open_dir(&sp, plain, &err), &err);
    CHECK_OK(mt_safetensors_open_dir(&sc, cal, &err), &err);
    CHECK_OK(mt_safetensors_open_dir(&ss, SRC, &err), &err);
    if (sp && sc && ss && cb) {
        /* (c) same tensors, dtypes, shapes, sizes; some bytes differ */
        CHECK_EQ_INT((long long)mt_safetensors_count(sp), (long long)mt_safetensors_count(sc));
        int differ = 0;
        for (size_t i = 0; i < mt_safetensors_count(sp); i++) {
            const mt_tensor_view *a = mt_safetensors_at(sp, i), *b = mt_safetensors_get(sc, a->name);
            CHECK(b != NULL);
            if (!b) continue;
            CHECK(a->dtype == b->dtype && a->ndim == b->ndim && a->nbytes == b->nbytes);
            for (int d = 0; d < a->ndim && d < b->ndim; d++) CHECK(a->shape[d] == b->shape[d]);
            if (a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes)) differ = 1;
        }
        CHECK(differ);
        /* (b) activation-weighted error per module */
        static const char *const mods[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                           "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                           "mlp.down_proj"};
        double tp = 0, tc = 0;
        int nmod = 0;
        for (int l = 0; l < 2; l++)
            for (size_t k = 0; k < sizeof mods / sizeof *mods; k++) {
                char path[128], n[160];
                snprintf(path, sizeof path, "model.layers.%d.%s", l, mods[k]);
                snprintf(n, sizeof n, "%s.weight", path);
                const mt_tensor_view *sw = mt_safetensors_get(ss, n);
                CHECK(sw != NULL);
                if (!sw) continue;
                size_t K = (size_t)sw->shape[1];
                const float *m = mt_calib_moments(cb, path, K);
                CHECK(m != NULL);
                if (!m) continue;
                double ep = module_error(sp, ss, path, m, K, bits, gs);
                double ec = module_error(sc, ss, path, m, K, bits, gs);
                CHECK(ep > 0 && ec > 0);
                if (!(ec <= ep)) fprintf(stderr, "%s: calibrated %g > plain %g\n", path, ec, ep);
                CHECK(ec <= ep);
                tp += ep, tc += ec, nmod++;
            }
        CHECK_EQ_INT(nmod, 14);
        fprintf(stderr, "calib %d-bit g%d: weighted error plain %.6g calibrated %.6g (%.1f%% lower)\n", bits, gs,
                tp, tc, 100.0 * (1.0 - tc / tp));
        CHECK(tc < tp * 0.99);
    }
    /* (a) the calibrated output loads and runs */
    mt_model *m = NULL;
    CHECK_OK(mt_model_load(&m, cal, NULL, &err), &err);
    if (m) {
        mt_kvcache *kv = NULL;
        CHECK_OK(mt_kvcache_new(&kv, m, &err), &err);
        int32_t toks[4] = {1, 20, 30, 40};
        float *logits = malloc((size_t)m->hp.vocab * sizeof *logits);
        CHECK_OK(mt_model_forward(m, kv, toks, 4, logits, 0, &err), &err);
        int finite = 1;
        for (int i = 0; i < m->hp.vocab; i++) finite &= isfinite(logits[i]) != 0;
        CHECK(finite);
        free(logits);
        mt_kvcache_free(kv);
        mt_model_free(m);
    }
    mt_safetensors_free(sp), mt_safetensors_free(sc), mt_safetensors_free(ss);
    mt_calib_free(cb);
    rm_tree(dir);
    free(plain), free(cal);
}

int main(void) {
    mt_err err = {0};
    /* range quantizer: NULL ranges = the plain CPU rule, bit for bit */
    {
        float x[2 * 64];
        for (int i = 0; i < 128; i++) x[i] = sinf((float)i * 0.37f) * (1.0f + (float)(i % 7));
        uint32_t w1[2 * 8], w2[2 * 8];
        uint16_t s1[2], b1[2], s2[2], b2[2];
        CHECK_OK(mt_quantize_affine(w1, s1, b1, MT_BF16, x, 2, 64, 4, 64, 0, &err), &err);
        CHECK_OK(mt_quantize_affine_range(w2, s2, b2, MT_BF16, x, NULL, NULL, 2, 64, 4, 64, &err), &err);
        CHECK(!memcmp(w1, w2, sizeof w1) && !memcmp(s1, s2, sizeof s1) && !memcmp(b1, b2, sizeof b1));
        float lo[2] = {-2.0f, -1.0f}, hi[2] = {2.0f, 1.0f};
        CHECK_OK(mt_quantize_affine_range(w2, s2, b2, MT_BF16, x, lo, hi, 2, 64, 4, 64, &err), &err);
        float d[128];
        CHECK_OK(mt_dequantize_affine(d, w2, s2, b2, MT_BF16, 2, 64, 4, 64, &err), &err);
        float dmax = 0;
        for (int i = 0; i < 128; i++) dmax = fabsf(d[i]) > dmax ? fabsf(d[i]) : dmax;
        /* clamped to the range, give or take the one step that MLX's rule moves an
         * end by so that zero is a code (x itself reaches 7) */
        CHECK(dmax <= 2.0f + 2.0f / 7.0f + 1e-3f);
        CHECK(mt_quantize_affine_range(w2, s2, b2, MT_BF16, x, lo, hi, 2, 64, 7, 64, &err) != MT_OK);
    }
    run_bits(4, 64);
    run_bits(3, 32);
    /* bad option combination */
    mt_convert_opts o = {0};
    o.src = SRC, o.dst = "/tmp/test_calib_never", o.calibrate = TXT;
    CHECK(mt_convert(&o, &err) == MT_EINVAL);
    return check_report("calib");
}
