/* snac.c - SNAC's decoder: codebook lookup and projection, the upsampling blocks,
 * folded weight norm; the convolutions and snake are tensor/conv1d and
 * tensor/norm_ada.  Activations are channels-first [C, T].
 *
 * ref: mlx_audio/codec/models/snac/{snac.py,vq.py,layers.py} (mlx-audio 0.6.2). */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "audio/snac.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "tensor/conv1d.h"
#include "tensor/norm_ada.h"

typedef struct sn_unit {       /* residual unit: x + c2(snake(c1(snake(x)))) */
    float *a1, *a2;            /* [C] snake alphas */
    mt_conv1d c1, c2;          /* k7 dilated (depthwise), 1x1 */
} sn_unit;

typedef struct sn_block {
    int in, out, rate;
    float *alpha;              /* [in] */
    mt_conv1d up;              /* transposed, in -> out */
    mt_conv1d noise;           /* 1x1 out -> out, no bias (has_noise) */
    int has_noise;
    sn_unit ru[3];
} sn_block;

struct mt_snac {
    mt_snac_info info;
    mt_pool *pool;
    float *book[MT_SNAC_MAX_BOOKS];      /* [codebook_size, codebook_dim] */
    mt_conv1d proj[MT_SNAC_MAX_BOOKS];   /* out_proj: codebook_dim -> latent_dim, 1x1 */
    mt_conv1d in0, in1;                  /* depthwise k7 + 1x1, or one k7 conv (in1 unused) */
    sn_block blk[MT_SNAC_MAX_RATES];
    float *alpha_out;                    /* [last block's out] */
    mt_conv1d out;                       /* k7 -> 1 channel */
};

typedef struct sn_loader {
    const mt_safetensors *st;
    mt_err *err;
} sn_loader;

static void sn_fmt(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sn_fmt(char *buf, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

/* A float tensor of exactly this shape as a malloc'd float32 copy. */
static int sn_read(sn_loader *L, const char *name, int ndim, const int64_t *dims, float **out) {
    *out = NULL;
    const mt_tensor_view *t = mt_safetensors_get(L->st, name);
    if (!t) return mt_seterr(L->err, MT_ENOTFOUND, "SNAC: tensor '%s' not found", name);
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == dims[i];
    if (!ok) {
        char got[96], want[96];
        mt_shape_str(got, sizeof got, t->ndim, t->shape);
        mt_shape_str(want, sizeof want, ndim, dims);
        return mt_seterr(L->err, MT_EFORMAT, "SNAC: tensor '%s': shape %s, expected %s", name, got, want);
    }
    size_t n = mt_tensor_numel(t);
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) return mt_seterr(L->err, MT_ENOMEM, "SNAC: tensor '%s': out of memory", name);
    int rc = mt_safetensors_read_f32(L->st, name, p, n, 0, L->err);
    if (rc) {
        free(p);
        return mt_preferr(L->err, "SNAC");
    }
    *out = p;
    return MT_OK;
}

/* A weight-normed conv under `pre`: weight_v [n0, k, n2], weight_g [n0, 1, 1], bias [c_out]
 * when `bias`.  Plain convs: n0 = c_out, n2 = c_in/groups (mlx's [out, k, in]); transposed:
 * n0 = c_in, n2 = c_out (mlx-audio swaps axes 0 and 2 before conv_transpose1d). */
static int sn_wnconv(sn_loader *L, const char *pre, const mt_conv1d_shape *s, int bias, mt_conv1d *c) {
    char nm[256];
    int n0 = s->transposed ? s->c_in : s->c_out, n2 = s->transposed ? s->c_out : s->c_in / s->groups;
    float *v = NULL, *g = NULL, *b = NULL;
    int rc;
    sn_fmt(nm, sizeof nm, "%s.weight_v", pre);
    if ((rc = sn_read(L, nm, 3, (int64_t[]){n0, s->k, n2}, &v))) goto done;
    sn_fmt(nm, sizeof nm, "%s.weight_g", pre);
    if ((rc = sn_read(L, nm, 3, (int64_t[]){n0, 1, 1}, &g))) goto done;
    if (bias) {
        sn_fmt(nm, sizeof nm, "%s.bias", pre);
        if ((rc = sn_read(L, nm, 1, (int64_t[]){s->c_out}, &b))) goto done;
    }
    size_t inner = (size_t)s->k * (size_t)n2;
    for (int i = 0; i < n0; i++) {   /* w = g v / ||v||, mlx-audio's normalize_weight (no epsilon) */
        float *r = v + (size_t)i * inner;
        double ss = 0;
        for (size_t j = 0; j < inner; j++) ss += (double)r[j] * r[j];
        float nrm = sqrtf((float)ss), f = nrm > 0 ? g[i] / nrm : 0.0f;
        for (size_t j = 0; j < inner; j++) r[j] *= f;
    }
    rc = mt_conv1d_init(c, s, v, s->transposed ? MT_CONV_W_IKO : MT_CONV_W_OKI, b, L->err);
    if (rc) mt_preferr(L->err, "SNAC: %s", pre);
done:
    free(v);
    free(g);
    free(b);
    return rc;
}

static int sn_alpha(sn_loader *L, const char *pre, int C, float **a) {
    char nm[256];
    sn_fmt(nm, sizeof nm, "%s.alpha", pre);
    return sn_read(L, nm, 3, (int64_t[]){1, C, 1}, a);
}

static mt_conv1d_shape sn_shape(int c_in, int c_out, int k, int dil, int groups) {
    return (mt_conv1d_shape){.c_in = c_in, .c_out = c_out, .k = k, .stride = 1, .pad = (k - 1) * dil / 2,
                             .dilation = dil, .groups = groups};
}

/* ---------------------------------------------------------------- config */

static int cfg_int(const mt_config *cfg, const char *key, int def, int *out, mt_err *err) {
    json_t *v = mt_config_get(cfg, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return MT_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (1 << 20))
        return mt_seterr(err, MT_EFORMAT, "SNAC config.json: '%s' must be an integer in [0, 2^20]", key);
    *out = (int)json_integer_value(v);
    return MT_OK;
}

static int cfg_ints(const mt_config *cfg, const char *key, const int *def, int ndef, int max, int *out, int *n,
                    mt_err *err) {
    json_t *v = mt_config_get(cfg, key);
    if (!v) {
        memcpy(out, def, (size_t)ndef * sizeof *out);
        *n = ndef;
        return MT_OK;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return mt_seterr(err, MT_EFORMAT, "SNAC config.json: '%s' must be a non-empty list of integers", key);
    if (json_array_size(v) > (size_t)max)
        return mt_seterr(err, MT_EUNSUPPORTED, "SNAC config.json: '%s' has %zu entries, at most %d are supported",
                         key, json_array_size(v), max);
    *n = (int)json_array_size(v);
    for (int i = 0; i < *n; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) < 1 || json_integer_value(e) > 64)
            return mt_seterr(err, MT_EFORMAT, "SNAC config.json: '%s'[%d] must be an integer in [1, 64]", key, i);
        out[i] = (int)json_integer_value(e);
    }
    return MT_OK;
}

static int read_info(const mt_config *cfg, mt_snac_info *I, mt_err *err) {
    static const int def_enc[] = {3, 3, 7, 7}, def_dec[] = {7, 7, 3, 3}, def_vq[] = {8, 4, 2, 1};
    int enc_dim = 0, enc_rates[MT_SNAC_MAX_RATES], n_enc = 0, attn;
    MT_TRY(cfg_int(cfg, "sampling_rate", 44100, &I->sample_rate, err));
    MT_TRY(cfg_int(cfg, "encoder_dim", 64, &enc_dim, err));
    MT_TRY(cfg_ints(cfg, "encoder_rates", def_enc, 4, MT_SNAC_MAX_RATES, enc_rates, &n_enc, err));
    MT_TRY(cfg_int(cfg, "latent_dim", enc_dim << n_enc, &I->latent_dim, err));
    MT_TRY(cfg_int(cfg, "decoder_dim", 1536, &I->decoder_dim, err));
    MT_TRY(cfg_ints(cfg, "decoder_rates", def_dec, 4, MT_SNAC_MAX_RATES, I->rates, &I->n_rates, err));
    MT_TRY(cfg_int(cfg, "codebook_size", 4096, &I->codebook_size, err));
    MT_TRY(cfg_int(cfg, "codebook_dim", 8, &I->codebook_dim, err));
    MT_TRY(cfg_ints(cfg, "vq_strides", def_vq, 4, MT_SNAC_MAX_BOOKS, I->strides, &I->n_books, err));
    json_t *a = mt_config_get(cfg, "attn_window_size");
    attn = !a || !json_is_null(a);   /* SNAC's default is 32 */
    if (attn)
        return mt_seterr(err, MT_EUNSUPPORTED,
                         "SNAC config.json: local attention (attn_window_size) is not supported; the 24 kHz codec has none");
    json_t *nz = mt_config_get(cfg, "noise"), *dw = mt_config_get(cfg, "depthwise");
    I->noise = nz ? json_is_true(nz) : 1;
    I->depthwise = dw ? json_is_true(dw) : 1;
    if (I->sample_rate < 1000 || !I->latent_dim || !I->codebook_size || !I->codebook_dim)
        return mt_seterr(err, MT_EFORMAT, "SNAC config.json: sampling_rate, latent_dim, codebook_size and codebook_dim must be positive");
    if (I->decoder_dim >> I->n_rates < 1 || I->decoder_dim % (1 << I->n_rates))
        return mt_seterr(err, MT_EFORMAT, "SNAC config.json: decoder_dim %d is not divisible by 2^%d", I->decoder_dim,
                         I->n_rates);
    for (int i = 0; i < I->n_books; i++)
        if (I->strides[0] % I->strides[i])
            return mt_seterr(err, MT_EFORMAT, "SNAC config.json: vq_strides[%d] = %d does not divide vq_strides[0] = %d",
                             i, I->strides[i], I->strides[0]);
    return MT_OK;
}

/* ---------------------------------------------------------------- loading */

static int load_block(sn_loader *L, int idx, sn_block *B, int depthwise, int noise) {
    char pre[160], nm[200];
    int in = B->in, out = B->out, r = B->rate;
    sn_fmt(pre, sizeof pre, "decoder.model.layers.%d.block.layers", idx);
    sn_fmt(nm, sizeof nm, "%s.0", pre);
    MT_TRY(sn_alpha(L, nm, in, &B->alpha));
    mt_conv1d_shape up = {.c_in = in, .c_out = out, .k = 2 * r, .stride = r, .pad = (r + 1) / 2, .dilation = 1,
                          .groups = 1, .transposed = 1, .out_pad = 1};   /* mlx-audio's groups -> output_padding */
    sn_fmt(nm, sizeof nm, "%s.1", pre);
    MT_TRY(sn_wnconv(L, nm, &up, 1, &B->up));
    int j = 2;
    if (noise) {
        mt_conv1d_shape ns = sn_shape(out, out, 1, 1, 1);
        sn_fmt(nm, sizeof nm, "%s.2.linear", pre);
        MT_TRY(sn_wnconv(L, nm, &ns, 0, &B->noise));
        B->has_noise = 1;
        j = 3;
    }
    static const int dil[3] = {1, 3, 9};
    for (int u = 0; u < 3; u++, j++) {
        sn_unit *U = &B->ru[u];
        mt_conv1d_shape s1 = sn_shape(out, out, 7, dil[u], depthwise ? out : 1), s2 = sn_shape(out, out, 1, 1, 1);
        sn_fmt(nm, sizeof nm, "%s.%d.block.layers.0", pre, j);
        MT_TRY(sn_alpha(L, nm, out, &U->a1));
        sn_fmt(nm, sizeof nm, "%s.%d.block.layers.1", pre, j);
        MT_TRY(sn_wnconv(L, nm, &s1, 1, &U->c1));
        sn_fmt(nm, sizeof nm, "%s.%d.block.layers.2", pre, j);
        MT_TRY(sn_alpha(L, nm, out, &U->a2));
        sn_fmt(nm, sizeof nm, "%s.%d.block.layers.3", pre, j);
        MT_TRY(sn_wnconv(L, nm, &s2, 1, &U->c2));
    }
    return MT_OK;
}

static int load_all(mt_snac *s, sn_loader *L) {
    const mt_snac_info *I = &s->info;
    char nm[160];
    for (int i = 0; i < I->n_books; i++) {
        sn_fmt(nm, sizeof nm, "quantizer.quantizers.%d.codebook.weight", i);
        MT_TRY(sn_read(L, nm, 2, (int64_t[]){I->codebook_size, I->codebook_dim}, &s->book[i]));
        sn_fmt(nm, sizeof nm, "quantizer.quantizers.%d.out_proj", i);
        mt_conv1d_shape ps = sn_shape(I->codebook_dim, I->latent_dim, 1, 1, 1);
        MT_TRY(sn_wnconv(L, nm, &ps, 1, &s->proj[i]));
    }
    int idx = 0;
    if (I->depthwise) {
        mt_conv1d_shape s0 = sn_shape(I->latent_dim, I->latent_dim, 7, 1, I->latent_dim),
                        s1 = sn_shape(I->latent_dim, I->decoder_dim, 1, 1, 1);
        MT_TRY(sn_wnconv(L, "decoder.model.layers.0", &s0, 1, &s->in0));
        MT_TRY(sn_wnconv(L, "decoder.model.layers.1", &s1, 1, &s->in1));
        idx = 2;
    } else {
        mt_conv1d_shape s0 = sn_shape(I->latent_dim, I->decoder_dim, 7, 1, 1);
        MT_TRY(sn_wnconv(L, "decoder.model.layers.0", &s0, 1, &s->in0));
        idx = 1;
    }
    int ch = I->decoder_dim;
    for (int b = 0; b < I->n_rates; b++, idx++) {
        sn_block *B = &s->blk[b];
        B->in = ch;
        B->out = ch / 2;
        B->rate = I->rates[b];
        ch /= 2;
        MT_TRY(load_block(L, idx, B, I->depthwise, I->noise));
    }
    sn_fmt(nm, sizeof nm, "decoder.model.layers.%d", idx);
    MT_TRY(sn_alpha(L, nm, ch, &s->alpha_out));
    sn_fmt(nm, sizeof nm, "decoder.model.layers.%d", idx + 1);
    mt_conv1d_shape so = sn_shape(ch, 1, 7, 1, 1);
    return sn_wnconv(L, nm, &so, 1, &s->out);
}

int mt_snac_load(mt_snac **out, const char *dir, mt_pool *pool, mt_err *err) {
    *out = NULL;
    mt_config *cfg = NULL;
    mt_safetensors *st = NULL;
    mt_snac *s = calloc(1, sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "SNAC: out of memory");
    s->pool = pool;
    int rc = mt_config_load(&cfg, dir, err);
    if (!rc) rc = read_info(cfg, &s->info, err);
    if (!rc) rc = mt_safetensors_open_dir(&st, dir, err);
    if (!rc) {
        sn_loader L = {st, err};
        rc = load_all(s, &L);
    }
    mt_config_free(cfg);
    mt_safetensors_free(st);
    if (rc) {
        mt_snac_free(s);
        return mt_preferr(err, "%s", dir);
    }
    *out = s;
    return MT_OK;
}

void mt_snac_free(mt_snac *s) {
    if (!s) return;
    for (int i = 0; i < MT_SNAC_MAX_BOOKS; i++) {
        free(s->book[i]);
        mt_conv1d_free(&s->proj[i]);
    }
    mt_conv1d_free(&s->in0);
    mt_conv1d_free(&s->in1);
    for (int b = 0; b < MT_SNAC_MAX_RATES; b++) {
        sn_block *B = &s->blk[b];
        free(B->alpha);
        mt_conv1d_free(&B->up);
        mt_conv1d_free(&B->noise);
        for (int u = 0; u < 3; u++) {
            free(B->ru[u].a1);
            free(B->ru[u].a2);
            mt_conv1d_free(&B->ru[u].c1);
            mt_conv1d_free(&B->ru[u].c2);
        }
    }
    free(s->alpha_out);
    mt_conv1d_free(&s->out);
    free(s);
}

const mt_snac_info *mt_snac_get_info(const mt_snac *s) { return &s->info; }

size_t mt_snac_out_len(const mt_snac *s, size_t frames) {
    size_t T = frames * (size_t)s->info.strides[0];
    for (int b = 0; b < s->info.n_rates; b++) T = mt_conv1d_out_len(&s->blk[b].up.s, T);
    return T;
}

/* ---------------------------------------------------------------- decoding */

static uint64_t sn_next(uint64_t *st) {   /* splitmix64 */
    uint64_t z = (*st += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float sn_normal(uint64_t *st) {   /* Box-Muller */
    double u1 = ((sn_next(st) >> 11) + 1.0) * 0x1.0p-53, u2 = (sn_next(st) >> 11) * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* y = conv(x) into a fresh buffer; *T updated to the output length. */
static int sn_conv(const mt_conv1d *c, const float *x, size_t *T, float **y, mt_pool *pool, mt_err *err) {
    size_t To = mt_conv1d_out_len(&c->s, *T);
    *y = malloc(((size_t)c->s.c_out * To + 1) * sizeof **y);
    if (!*y) return mt_seterr(err, MT_ENOMEM, "SNAC: out of memory");
    int rc = mt_conv1d_forward(c, x, *T, *y, pool, err);
    if (rc) {
        free(*y);
        *y = NULL;
        return rc;
    }
    *T = To;
    return MT_OK;
}

/* x [C, T] += unit(x) */
static int sn_unit_fwd(const sn_unit *U, float *x, int C, size_t T, mt_pool *pool, mt_err *err) {
    size_t n = (size_t)C * T, T1 = T;
    float *a = malloc((n + 1) * sizeof *a), *b = NULL, *c = NULL;
    if (!a) return mt_seterr(err, MT_ENOMEM, "SNAC: out of memory");
    memcpy(a, x, n * sizeof *a);
    mt_snake(a, U->a1, (size_t)C, T, pool);
    int rc = sn_conv(&U->c1, a, &T1, &b, pool, err);
    if (!rc) {
        mt_snake(b, U->a2, (size_t)C, T1, pool);
        rc = sn_conv(&U->c2, b, &T1, &c, pool, err);
    }
    if (!rc)
        for (size_t i = 0; i < n; i++) x[i] += c[i];
    free(a);
    free(b);
    free(c);
    return rc;
}

/* *x [in, *T] -> [out, T'] through block B (the input buffer is freed). */
static int sn_block_fwd(const sn_block *B, float **x, size_t *T, const mt_snac_opts *o, uint64_t *rng, mt_pool *pool,
                        mt_err *err) {
    mt_snake(*x, B->alpha, (size_t)B->in, *T, pool);
    float *y = NULL;
    int rc = sn_conv(&B->up, *x, T, &y, pool, err);
    free(*x);
    *x = y;
    if (rc) return rc;
    if (B->has_noise && o && o->noise) {
        size_t T1 = *T;
        float *h = NULL;
        MT_TRY(sn_conv(&B->noise, y, &T1, &h, pool, err));
        for (size_t t = 0; t < *T; t++) {
            float n = sn_normal(rng);
            for (int c = 0; c < B->out; c++) y[(size_t)c * *T + t] += n * h[(size_t)c * *T + t];
        }
        free(h);
    }
    for (int u = 0; u < 3; u++) MT_TRY(sn_unit_fwd(&B->ru[u], y, B->out, *T, pool, err));
    return MT_OK;
}

/* The latent [latent_dim, frames * strides[0]]: codebook rows, projected, repeated. */
static int sn_latent(const mt_snac *s, const int32_t *const *codes, size_t frames, float *z, mt_err *err) {
    const mt_snac_info *I = &s->info;
    size_t T = frames * (size_t)I->strides[0], D = (size_t)I->codebook_dim, Lc = (size_t)I->latent_dim;
    for (int i = 0; i < I->n_books; i++) {
        size_t st = (size_t)I->strides[i], n = T / st;
        for (size_t t = 0; t < n; t++)
            if (codes[i][t] < 0 || codes[i][t] >= I->codebook_size)
                return mt_seterr(err, MT_EINVAL, "SNAC: codebook %d: code %d at position %zu is out of range [0, %d)", i,
                                 codes[i][t], t, I->codebook_size);
        float *e = malloc((D * n + 1) * sizeof *e), *y = NULL;
        if (!e) return mt_seterr(err, MT_ENOMEM, "SNAC: out of memory");
        for (size_t t = 0; t < n; t++)
            for (size_t d = 0; d < D; d++) e[d * n + t] = s->book[i][(size_t)codes[i][t] * D + d];
        size_t n1 = n;
        int rc = sn_conv(&s->proj[i], e, &n1, &y, s->pool, err);
        free(e);
        if (rc) return rc;
        for (size_t c = 0; c < Lc; c++)
            for (size_t t = 0; t < n; t++)
                for (size_t j = 0; j < st; j++) z[c * T + t * st + j] += y[c * n + t];
        free(y);
    }
    return MT_OK;
}

int mt_snac_decode(const mt_snac *s, const int32_t *const *codes, size_t frames, const mt_snac_opts *opts,
                   float **wav, size_t *len, mt_err *err) {
    *wav = NULL;
    *len = 0;
    const mt_snac_info *I = &s->info;
    if (!frames) return mt_seterr(err, MT_EINVAL, "SNAC: no frames to decode");
    if (frames > ((size_t)1 << 24)) return mt_seterr(err, MT_ELIMIT, "SNAC: %zu frames is too many", frames);
    size_t T = frames * (size_t)I->strides[0];
    float *x = calloc((size_t)I->latent_dim * T, sizeof *x), *y = NULL;
    if (!x) return mt_seterr(err, MT_ENOMEM, "SNAC: out of memory");
    uint64_t rng = opts ? opts->seed : 0;
    int rc = sn_latent(s, codes, frames, x, err);
    if (!rc) {
        rc = sn_conv(&s->in0, x, &T, &y, s->pool, err);
        free(x);
        x = y;
        y = NULL;
    }
    if (!rc && I->depthwise) {
        rc = sn_conv(&s->in1, x, &T, &y, s->pool, err);
        free(x);
        x = y;
        y = NULL;
    }
    for (int b = 0; !rc && b < I->n_rates; b++) rc = sn_block_fwd(&s->blk[b], &x, &T, opts, &rng, s->pool, err);
    if (!rc) {
        const sn_block *L = &s->blk[I->n_rates - 1];
        mt_snake(x, s->alpha_out, (size_t)L->out, T, s->pool);
        rc = sn_conv(&s->out, x, &T, &y, s->pool, err);
    }
    free(x);
    if (rc) return rc;
    for (size_t t = 0; t < T; t++) y[t] = tanhf(y[t]);
    *wav = y;
    *len = T;
    return MT_OK;
}
