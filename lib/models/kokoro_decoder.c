/* kokoro_decoder.c - Kokoro's decoder: F0/N strided convs, the AdainResBlk1d stack
 * (encode, then decode blocks fed [x, asr_res, F0, N] until the upsampling one) and the
 * iSTFTNet generator (per stage: leaky ReLU 0.1, transposed conv, the harmonic source's
 * STFT through noise_convs / noise_res added, the mean of the AdaINResBlock1s; then leaky
 * ReLU 0.01, conv_post, exp magnitude and sin phase, inverse STFT).  The last stage's
 * "ReflectionPad1d((1, 0))" is a zero sample on the left, as mlx-audio pads.
 *
 * Widths come from the tensors: E = decoder.encode's output (1024 in Kokoro-82M),
 * R = asr_res's (64), C0 = istftnet.upsample_initial_channel (512).
 *
 * ref: mlx_audio/tts/models/kokoro/istftnet.py (Decoder, Generator, SourceModuleHnNSF). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "audio/istft.h"
#include "audio/sinegen.h"
#include "models/kokoro_int.h"
#include "tensor/mlxnum.h"
#include "tensor/norm_ada.h"

/* An array of at most cap integers in [lo, hi] at config key; *n its length. */
static int cfg_ints(const mt_config *cfg, const char *key, int *v, int cap, int lo, int hi, int *n, mt_err *err) {
    json_t *a = mt_config_get(cfg, key);
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > (size_t)cap)
        return mt_seterr(err, MT_EFORMAT, "config.json: '%s' must be an array of 1 to %d integers", key, cap);
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *e = json_array_get(a, i);
        if (!json_is_integer(e) || json_integer_value(e) < lo || json_integer_value(e) > hi)
            return mt_seterr(err, MT_EFORMAT, "config.json: '%s' entries must be integers in [%d, %d]", key, lo, hi);
        v[i] = (int)json_integer_value(e);
    }
    *n = (int)json_array_size(a);
    return MT_OK;
}

static int cfg_int1(const mt_config *cfg, const char *key, int lo, int hi, int *out, mt_err *err) {
    long long v = 0;
    if (!mt_config_get(cfg, key)) return mt_seterr(err, MT_EFORMAT, "config.json: '%s' missing", key);
    MT_TRY(mt_config_get_int(cfg, key, 0, &v, err));
    if (v < lo || v > hi) return mt_seterr(err, MT_EFORMAT, "config.json: '%s' = %lld outside [%d, %d]", key, v, lo, hi);
    *out = (int)v;
    return MT_OK;
}

static int dim0(kk_loader *L, const char *name, int *out) {
    const mt_tensor_view *t = kk_view(L, name);
    if (!t) return mt_seterr(L->err, MT_ENOTFOUND, "tensor '%s' not found", name);
    if (t->ndim < 1 || t->shape[0] < 1 || t->shape[0] > (1 << 16))
        return mt_seterr(L->err, MT_EFORMAT, "tensor '%s': bad first dimension", name);
    *out = (int)t->shape[0];
    return MT_OK;
}

int kk_decoder_load(kk_loader *L, mt_kokoro *k, const mt_config *cfg) {
    int H = k->H, S = k->S;
    char nm[160];
    MT_TRY(dim0(L, "decoder.encode.conv1.weight_v", &k->E));
    MT_TRY(dim0(L, "decoder.asr_res.0.weight_v", &k->R));
    MT_TRY(cfg_int1(cfg, "istftnet.upsample_initial_channel", 2, 1 << 14, &k->C0, L->err));
    MT_TRY(cfg_int1(cfg, "istftnet.gen_istft_n_fft", 2, 1 << 14, &k->n_fft, L->err));
    MT_TRY(cfg_int1(cfg, "istftnet.gen_istft_hop_size", 1, 1 << 14, &k->hop, L->err));
    if (k->n_fft % 2) return mt_seterr(L->err, MT_EFORMAT, "config.json: istftnet.gen_istft_n_fft must be even");
    int ks[KK_MAX_UPS], nks = 0, nk2 = 0, nd = 0;
    int rks[8];
    MT_TRY(cfg_ints(cfg, "istftnet.upsample_rates", k->ups_rate, KK_MAX_UPS, 1, 64, &k->n_ups, L->err));
    MT_TRY(cfg_ints(cfg, "istftnet.upsample_kernel_sizes", ks, KK_MAX_UPS, 1, 256, &nks, L->err));
    MT_TRY(cfg_ints(cfg, "istftnet.resblock_kernel_sizes", rks, 8, 1, 63, &nk2, L->err));
    json_t *dl = mt_config_get(cfg, "istftnet.resblock_dilation_sizes");
    nd = json_is_array(dl) ? (int)json_array_size(dl) : -1;
    if (nks != k->n_ups || nd != nk2)
        return mt_seterr(L->err, MT_EFORMAT, "config.json: istftnet kernel/rate/dilation lists differ in length");
    k->n_kern = nk2;
    if (k->C0 % (1 << k->n_ups)) return mt_seterr(L->err, MT_EFORMAT, "config.json: upsample_initial_channel too small");
    k->up_total = k->hop;
    for (int i = 0; i < k->n_ups; i++) {
        k->up_total *= k->ups_rate[i];
        if ((ks[i] - k->ups_rate[i]) % 2 || ks[i] < k->ups_rate[i])
            return mt_seterr(L->err, MT_EFORMAT, "config.json: upsample kernel %d with rate %d", ks[i], k->ups_rate[i]);
    }
    /* decoder blocks */
    int E = k->E, R = k->R;
    mt_conv1d_shape fs = {1, 1, 3, 2, 1, 1, 1, 0, 0};
    MT_TRY(kk_wconv_load(L, "decoder.F0_conv", &fs, 1, &k->f0_conv));
    MT_TRY(kk_wconv_load(L, "decoder.N_conv", &fs, 1, &k->n_conv));
    mt_conv1d_shape as = {H, R, 1, 1, 0, 1, 1, 0, 0};
    MT_TRY(kk_wconv_load(L, "decoder.asr_res.0", &as, 1, &k->asr_res));
    MT_TRY(kk_resblk_load(L, "decoder.encode", H + 2, E, S, 0, &k->enc));
    for (int i = 0; i < 4; i++) {
        kk_fmt(nm, sizeof nm, "decoder.decode.%d", i);
        MT_TRY(kk_resblk_load(L, nm, E + 2 + R, i < 3 ? E : k->C0, S, i == 3, &k->dec[i]));
    }
    /* generator */
    k->resblocks = calloc((size_t)k->n_ups * (size_t)k->n_kern, sizeof *k->resblocks);
    if (!k->resblocks) return mt_seterr(L->err, MT_ENOMEM, "kokoro: out of memory");
    int ch = k->C0;
    for (int i = 0; i < k->n_ups; i++) {
        int cin = k->C0 >> i, cout = k->C0 >> (i + 1), u = k->ups_rate[i];
        mt_conv1d_shape us = {cin, cout, ks[i], u, (ks[i] - u) / 2, 1, 1, 1, 0};
        kk_fmt(nm, sizeof nm, "decoder.generator.ups.%d", i);
        MT_TRY(kk_wconv_load(L, nm, &us, 1, &k->ups[i]));
        for (int j = 0; j < k->n_kern; j++) {
            int dil[3], nd3 = 0;
            kk_fmt(nm, sizeof nm, "istftnet.resblock_dilation_sizes.%d", j);
            MT_TRY(cfg_ints(cfg, nm, dil, 3, 1, 64, &nd3, L->err));
            if (nd3 != 3) return mt_seterr(L->err, MT_EFORMAT, "config.json: '%s' must hold 3 dilations", nm);
            kk_fmt(nm, sizeof nm, "decoder.generator.resblocks.%d", i * k->n_kern + j);
            MT_TRY(kk_res1_load(L, nm, cout, rks[j], dil, S, &k->resblocks[i * k->n_kern + j]));
        }
        mt_conv1d_shape ns = {k->n_fft + 2, cout, 1, 1, 0, 1, 1, 0, 0};
        if (i + 1 < k->n_ups) {
            int sf = 1;
            for (int j = i + 1; j < k->n_ups; j++) sf *= k->ups_rate[j];
            ns.k = 2 * sf;
            ns.stride = sf;
            ns.pad = (sf + 1) / 2;
        }
        kk_fmt(nm, sizeof nm, "decoder.generator.noise_convs.%d", i);
        MT_TRY(kk_plain_conv_load(L, nm, &ns, &k->noise_convs[i]));
        static const int d135[3] = {1, 3, 5};
        kk_fmt(nm, sizeof nm, "decoder.generator.noise_res.%d", i);
        MT_TRY(kk_res1_load(L, nm, cout, i + 1 < k->n_ups ? 7 : 11, d135, S, &k->noise_res[i]));
        ch = cout;
    }
    mt_conv1d_shape ps = {ch, k->n_fft + 2, 7, 1, 3, 1, 1, 0, 0};
    MT_TRY(kk_wconv_load(L, "decoder.generator.conv_post", &ps, 1, &k->conv_post));
    float *w = NULL, *b = NULL;
    MT_TRY(kk_read(L, "decoder.generator.m_source.l_linear.weight", 2, (int64_t[]){1, 9}, &w));
    int rc = kk_read(L, "decoder.generator.m_source.l_linear.bias", 1, (int64_t[]){1}, &b);
    if (!rc) {
        memcpy(k->src_w, w, sizeof k->src_w);
        k->src_b = b[0];
    }
    free(w); free(b);
    return rc;
}

void kk_decoder_free(mt_kokoro *k) {
    mt_conv1d_free(&k->f0_conv);
    mt_conv1d_free(&k->n_conv);
    mt_conv1d_free(&k->asr_res);
    kk_resblk_free(&k->enc);
    for (int i = 0; i < 4; i++) kk_resblk_free(&k->dec[i]);
    for (int i = 0; i < KK_MAX_UPS; i++) {
        mt_conv1d_free(&k->ups[i]);
        mt_conv1d_free(&k->noise_convs[i]);
        kk_res1_free(&k->noise_res[i]);
    }
    if (k->resblocks)
        for (int i = 0; i < k->n_ups * k->n_kern; i++) kk_res1_free(&k->resblocks[i]);
    free(k->resblocks);
    k->resblocks = NULL;
    mt_conv1d_free(&k->conv_post);
}

/* ---- the seeded draws (random = 1): splitmix64 -> uniform / Box-Muller normal */
static uint64_t sm64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double unif(uint64_t *s) { return (double)(sm64(s) >> 11) * (1.0 / 9007199254740992.0); }
static float normal(uint64_t *s) {
    double u = unif(s), v = unif(s);
    if (u < 1e-300) u = 1e-300;
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* The harmonic source's STFT: har22 malloc'd [n_fft + 2, *frames]. */
static int source_stft(const mt_kokoro *k, const float *F0, size_t F2, const mt_kokoro_opts *opts, float **har22,
                       size_t *frames, mt_err *err) {
    mt_sinegen_cfg sc = mt_sinegen_kokoro();
    sc.upsample = k->up_total;
    size_t L = F2 * (size_t)k->up_total;
    float *har = malloc(L * sizeof(float)), *noise = NULL, ph[9] = {0};
    mt_stft *st = NULL;
    int rc = MT_OK;
    *har22 = NULL;
    if (!har) return mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
    int drawn = opts->draws || opts->random;
    if (drawn) {
        if (!(noise = malloc(L * 9 * sizeof(float)))) {
            free(har);
            return mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
        }
        if (opts->draws) {
            if ((rc = opts->draws(opts->user, L, 9, ph, noise))) {
                free(har); free(noise);
                return mt_seterr(err, rc, "kokoro: the caller's draws failed");
            }
        } else {
            uint64_t seed = opts->seed;
            for (int h = 1; h < 9; h++) ph[h] = (float)unif(&seed);
            for (size_t i = 0; i < L * 9; i++) noise[i] = normal(&seed);
        }
        ph[0] = 0.0f;
    }
    rc = mt_harmonic_source(&sc, F0, F2, k->src_w, k->src_b, drawn ? ph : NULL, noise, har, NULL, err);
    if (!rc) rc = mt_stft_new(&st, k->n_fft, k->hop, k->n_fft, NULL, err);
    if (!rc) {
        size_t nf = mt_stft_frames(st, L), bins = (size_t)mt_stft_bins(st);
        float *o = nf ? malloc(2 * bins * nf * sizeof(float)) : NULL;
        if (!o) rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
        else if ((rc = mt_stft_forward(st, har, L, o, o + bins * nf, k->pool, err))) free(o);
        else {
            /* a bin that came out real with a negative zero imaginary part: +pi, as mlx gives
             * (frame 0 of the reflect-padded source is symmetric, so its bins are real) */
            for (size_t j = bins * nf; j < 2 * bins * nf; j++)
                if (o[j] == -(float)M_PI) o[j] = (float)M_PI;
            *har22 = o;
            *frames = nf;
        }
    }
    mt_stft_free(st);
    free(har); free(noise);
    return rc;
}

static int generator(const mt_kokoro *k, float *x, size_t T, const float *F0, size_t F2, const float *s,
                     const mt_kokoro_opts *opts, float **audio, size_t *n, mt_err *err) {
    float *har = NULL, *src = NULL, *src2 = NULL, *y = NULL, *acc = NULL, *cur = NULL;
    size_t hf = 0;
    mt_stft *st = NULL;
    int rc = source_stft(k, F0, F2, opts, &har, &hf, err);
    if (rc) return rc;
    size_t C = (size_t)k->C0;
    cur = x;
    for (int i = 0; i < k->n_ups && !rc; i++) {
        size_t co = C / 2, Tu = mt_conv1d_out_len(&k->ups[i].s, T), Ts = mt_conv1d_out_len(&k->noise_convs[i].s, hf);
        int last = i == k->n_ups - 1;
        size_t Tx = Tu + (last ? 1 : 0);
        if (Tx != Ts) {
            rc = mt_seterr(err, MT_EFORMAT, "kokoro: generator stage %d: %zu frames against the source's %zu", i, Tx, Ts);
            break;
        }
        mt_leaky_relu(cur, C * T, 0.1f);
        src = malloc(co * Ts * sizeof(float));
        y = malloc(co * Tx * sizeof(float));
        acc = malloc(co * Tx * sizeof(float));
        src2 = malloc(co * Tx * sizeof(float));
        if (!src || !y || !acc || !src2) {
            rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
            break;
        }
        if ((rc = mt_conv1d_forward(&k->noise_convs[i], har, hf, src, k->pool, err))) break;
        if ((rc = kk_res1_fwd(&k->noise_res[i], src, Ts, s, k->S, k->pool, err))) break;
        if (last) {   /* zero sample on the left of every channel */
            if ((rc = mt_conv1d_forward(&k->ups[i], cur, T, src2, k->pool, err))) break;
            for (size_t c = 0; c < co; c++) {
                y[c * Tx] = 0.0f;
                memcpy(y + c * Tx + 1, src2 + c * Tu, Tu * sizeof(float));
            }
        } else if ((rc = mt_conv1d_forward(&k->ups[i], cur, T, y, k->pool, err)))
            break;
        for (size_t j = 0; j < co * Tx; j++) y[j] = y[j] + src[j];
        for (int j = 0; j < k->n_kern && !rc; j++) {
            float *dst = j ? src2 : acc;
            memcpy(dst, y, co * Tx * sizeof(float));
            rc = kk_res1_fwd(&k->resblocks[i * k->n_kern + j], dst, Tx, s, k->S, k->pool, err);
            if (j && !rc)
                for (size_t q = 0; q < co * Tx; q++) acc[q] += src2[q];
        }
        if (rc) break;
        for (size_t q = 0; q < co * Tx; q++) acc[q] = acc[q] / (float)k->n_kern;
        if (cur != x) free(cur);
        cur = acc;
        acc = NULL;
        free(src); free(y); free(src2);
        src = y = src2 = NULL;
        C = co;
        T = Tx;
    }
    if (!rc) {
        mt_leaky_relu(cur, C * T, 0.01f);
        size_t P = (size_t)k->n_fft + 2, bins = P / 2;
        y = malloc(P * T * sizeof(float));
        if (!y) rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
        if (!rc) rc = mt_conv1d_forward(&k->conv_post, cur, T, y, k->pool, err);
        if (!rc) {
            for (size_t j = 0; j < bins * T; j++) y[j] = mt_mlx_exp(y[j]);   /* mlx's exp and sin */
            mt_mlx_sin_n(y + bins * T, y + bins * T, (P - bins) * T);
            rc = mt_stft_new(&st, k->n_fft, k->hop, k->n_fft, NULL, err);
        }
        if (!rc) {
            size_t na = mt_istft_len(st, T);
            float *a = malloc((na ? na : 1) * sizeof(float));
            if (!a) rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
            else if ((rc = mt_istft(st, y, y + bins * T, T, a, k->pool, err))) free(a);
            else {
                *audio = a;
                *n = na;
            }
        }
    }
    mt_stft_free(st);
    if (cur != x) free(cur);
    free(har); free(src); free(src2); free(y); free(acc);
    return rc;
}

int kk_decoder_fwd(const mt_kokoro *k, const float *asr, const float *F0c, const float *Nc, size_t F,
                   const float *s, const mt_kokoro_opts *opts, float **audio, size_t *n, float *gen_x, mt_err *err) {
    size_t H = (size_t)k->H, E = (size_t)k->E, R = (size_t)k->R, Wd = E + 2 + R;
    size_t big = (Wd > H + 2 ? Wd : H + 2) * 2 * F;
    float *F0 = malloc(F * sizeof(float)), *N = malloc(F * sizeof(float)), *ar = malloc(R * F * sizeof(float));
    float *xa = malloc(big * sizeof(float)), *xb = malloc(big * sizeof(float));
    int rc = MT_OK;
    *audio = NULL;
    *n = 0;
    if (!F0 || !N || !ar || !xa || !xb) {
        rc = mt_seterr(err, MT_ENOMEM, "kokoro: out of memory");
        goto done;
    }
    if (mt_conv1d_out_len(&k->f0_conv.s, 2 * F) != F) {
        rc = mt_seterr(err, MT_EFORMAT, "kokoro: F0_conv does not halve the frames");
        goto done;
    }
    if ((rc = mt_conv1d_forward(&k->f0_conv, F0c, 2 * F, F0, k->pool, err))) goto done;
    if ((rc = mt_conv1d_forward(&k->n_conv, Nc, 2 * F, N, k->pool, err))) goto done;
    memcpy(xa, asr, H * F * sizeof(float));
    memcpy(xa + H * F, F0, F * sizeof(float));
    memcpy(xa + (H + 1) * F, N, F * sizeof(float));
    if ((rc = kk_resblk_fwd(&k->enc, xa, F, s, k->S, xb, k->pool, err))) goto done;
    if ((rc = mt_conv1d_forward(&k->asr_res, asr, F, ar, k->pool, err))) goto done;
    /* xb [E, F]; each decode block takes [x, asr_res, F0, N] until the upsampling one has run */
    for (int i = 0; i < 4; i++) {
        memcpy(xa, xb, E * F * sizeof(float));
        memcpy(xa + E * F, ar, R * F * sizeof(float));
        memcpy(xa + (E + R) * F, F0, F * sizeof(float));
        memcpy(xa + (E + R + 1) * F, N, F * sizeof(float));
        if ((rc = kk_resblk_fwd(&k->dec[i], xa, F, s, k->S, xb, k->pool, err))) goto done;
    }
    /* xb [C0, 2F] */
    if (gen_x) memcpy(gen_x, xb, (size_t)k->C0 * 2 * F * sizeof(float));
    rc = generator(k, xb, 2 * F, F0c, 2 * F, s, opts, audio, n, err);
done:
    free(F0); free(N); free(ar); free(xa); free(xb);
    return rc;
}

/* ---- the int8 form */

static int conv_i8(mt_conv1d *c, int *n, mt_err *err) {
    int done = 0;
    MT_TRY(mt_conv1d_int8(c, &done, err));
    *n += done;
    return MT_OK;
}

static int res1_i8(kk_res1 *r, int *n, mt_err *err) {
    for (int i = 0; i < 3; i++) {
        MT_TRY(conv_i8(&r->c1[i], n, err));
        MT_TRY(conv_i8(&r->c2[i], n, err));
    }
    return MT_OK;
}

/* The generator's AdaINResBlock1 convs (the resblocks and the noise branches' blocks:
 * nearly all of a synthesis's products).  The decoder's 1024-channel blocks, the noise
 * convs and conv_post stay float: int8 there costs 9 dB more (waveform SNR against the
 * float output 18-19 dB instead of 27-28 on the real Kokoro-82M) for 4% more speed. */
int mt_kokoro_int8(mt_kokoro *k, int *count, mt_err *err) {
    if (!k) return mt_seterr(err, MT_EINVAL, "kokoro: missing model");
    int n = 0;
    if (count) *count = 0;
    for (int u = 0; u < k->n_ups; u++) {
        MT_TRY(res1_i8(&k->noise_res[u], &n, err));
        for (int j = 0; j < k->n_kern; j++) MT_TRY(res1_i8(&k->resblocks[u * k->n_kern + j], &n, err));
    }
    if (count) *count = n;
    return MT_OK;
}
