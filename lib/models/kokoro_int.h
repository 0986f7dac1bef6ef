/* kokoro_int.h - Kokoro's weights and the blocks shared by its stages (internal to
 * lib/models/kokoro*.c).  Activations are float32: [C, T] channels-first for convs and
 * AdaIN, [T, C] for linears, LSTMs and layer norms. */
#ifndef MT_KOKORO_INT_H
#define MT_KOKORO_INT_H
#include <stddef.h>
#include "core/err.h"
#include "core/pool.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "models/kokoro.h"
#include "tensor/conv1d.h"
#include "tensor/lstm.h"

/* y = x W^T + b: W [out, in], b [out] or NULL (owned). */
typedef struct kk_linear {
    int in, out;
    float *w, *b;
} kk_linear;

/* LayerNorm over the last axis: g, b [n] (owned). */
typedef struct kk_ln {
    int n;
    float *g, *b;
} kk_ln;

/* AdaIN1d / AdaLayerNorm's style projection fc: [2C, S]. */
typedef kk_linear kk_ada;

/* AdainResBlk1d (predictor F0/N, decoder encode/decode). */
typedef struct kk_resblk {
    int din, dout, up;
    kk_ada n1, n2;
    mt_conv1d conv1, conv2;
    mt_conv1d sc;      /* 1x1, no bias, when din != dout */
    mt_conv1d pool;    /* depthwise transposed k3 s2, when up */
} kk_resblk;

/* AdaINResBlock1 (generator). */
typedef struct kk_res1 {
    int C;
    kk_ada a1[3], a2[3];
    mt_conv1d c1[3], c2[3];
    float *al1[3], *al2[3];   /* [C] snake alphas */
} kk_res1;

typedef struct kk_albert {
    int V, E, H, heads, inter, ctx, layers, groups, inner;
    float eps;
    float *word, *pos, *type;   /* [V, E], [ctx, E], [2?, E] (row 0 used) */
    kk_ln emb_ln;
    kk_linear map;              /* E -> H */
    struct kk_alayer {
        kk_linear q, k, v, dense, ffn, ffn_out;
        kk_ln attn_ln, full_ln;
    } *lay;                     /* [groups * inner] */
} kk_albert;

#define KK_MAX_LAYERS 16
#define KK_MAX_UPS 4

struct mt_kokoro {
    mt_pool *pool;
    int S, H, n_layer, max_dur, n_token, ksize;
    int vocab_n;
    uint32_t *vocab_cp;   /* [vocab_n] code points */
    int *vocab_id;        /* [vocab_n] */
    kk_albert bert;
    kk_linear bert_enc;   /* Hb -> H */
    /* predictor */
    mt_lstm dur_lstm[KK_MAX_LAYERS];  /* (H+S) -> H */
    kk_ada dur_ln[KK_MAX_LAYERS];     /* AdaLayerNorm fc [2H, S] */
    mt_lstm pred_lstm, shared;
    kk_linear dur_proj;               /* H -> max_dur */
    kk_resblk f0[3], nn[3];
    mt_conv1d f0_proj, n_proj;
    /* text encoder */
    float *emb;                       /* [n_token, H] */
    mt_conv1d cnn[KK_MAX_LAYERS];
    kk_ln cnn_ln[KK_MAX_LAYERS];
    mt_lstm te_lstm;
    /* decoder */
    int E, R, C0;
    mt_conv1d f0_conv, n_conv, asr_res;
    kk_resblk enc, dec[4];
    /* generator */
    int n_ups, n_kern, n_fft, hop, up_total;
    int ups_rate[KK_MAX_UPS];
    mt_conv1d ups[KK_MAX_UPS], noise_convs[KK_MAX_UPS], conv_post;
    kk_res1 noise_res[KK_MAX_UPS];
    kk_res1 *resblocks;               /* [n_ups * n_kern] */
    float src_w[9], src_b;            /* m_source.l_linear */
};

/* ---- loading helpers (kokoro_load.c) */
#define KK_QVIEWS 8
typedef struct kk_loader {
    const mt_safetensors *st;
    mt_err *err;
    const mt_config *cfg;   /* its "quantization" block says how packed tensors are quantized */
    int packed;             /* some tensor has .scales/.biases (mlx-audio's has_packed_quantized_weights) */
    mt_tensor_view qv[KK_QVIEWS];   /* kk_view's answers for packed tensors (a ring) */
    int qv_next;
} kk_loader;

/* A loader over st (may be NULL) and cfg, both borrowed. */
void kk_loader_init(kk_loader *L, const mt_safetensors *st, const mt_config *cfg, mt_err *err);

/* snprintf for tensor and config names (a name cut at n - 1 bytes is simply not found). */
void kk_fmt(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Dims of tensor `name` (NULL when absent).  For an MLX-quantized tensor (uint32 words with
 * .scales beside) the view's shape is the dequantized one, [rows, words * 32 / bits]; such a
 * view stays valid for the next KK_QVIEWS - 1 calls. */
const mt_tensor_view *kk_view(kk_loader *L, const char *name);
/* A malloc'd float32 copy of `name`, checked to have ndim dims equal to dims (entries < 0:
 * any); an MLX-quantized `name` (X.weight with X.scales, X.biases) is dequantized in float32.
 * Errors: MT_ENOTFOUND, MT_EFORMAT, MT_EUNSUPPORTED, MT_ENOMEM. */
int kk_read(kk_loader *L, const char *name, int ndim, const int64_t *dims, float **out);
int kk_linear_load(kk_loader *L, const char *pre, int in, int out, int bias, kk_linear *l);
int kk_ln_load(kk_loader *L, const char *wname, const char *bname, int n, kk_ln *l);
int kk_lstm_load(kk_loader *L, const char *pre, int in, int hidden, mt_lstm *l);
/* Weight-normed conv pre.weight_v/weight_g/bias with shape s, the kernel in PyTorch's layout or
 * mlx's (told apart by shape, as mlx-audio's sanitize does); bias optional when has_bias = 0. */
int kk_wconv_load(kk_loader *L, const char *pre, const mt_conv1d_shape *s, int has_bias, mt_conv1d *c);
/* Plain conv pre.weight/bias (F0_proj, N_proj, noise_convs), either layout. */
int kk_plain_conv_load(kk_loader *L, const char *pre, const mt_conv1d_shape *s, mt_conv1d *c);
int kk_resblk_load(kk_loader *L, const char *pre, int din, int dout, int S, int up, kk_resblk *b);
int kk_res1_load(kk_loader *L, const char *pre, int C, int k, const int dil[3], int S, kk_res1 *b);
void kk_linear_free(kk_linear *l);
void kk_ln_free(kk_ln *l);
void kk_resblk_free(kk_resblk *b);
void kk_res1_free(kk_res1 *b);

/* ---- blocks (kokoro_nn.c) */
/* y [T, out] = x [T, in] W^T + b (rows split over the pool). */
void kk_linear_fwd(const kk_linear *l, const float *x, size_t T, float *y, mt_pool *pool);
/* LayerNorm of each of the T rows of x [T, n] in place. */
void kk_ln_rows(const kk_ln *l, float *x, size_t T, float eps);
/* AdainResBlk1d: y [dout, T or 2T] from x [din, T]; s [S]. */
int kk_resblk_fwd(const kk_resblk *b, const float *x, size_t T, const float *s, int S, float *y, mt_pool *pool,
                  mt_err *err);
/* AdaINResBlock1 in place on x [C, T]. */
int kk_res1_fwd(const kk_res1 *b, float *x, size_t T, const float *s, int S, mt_pool *pool, mt_err *err);

/* ---- stages */
int kk_albert_load(kk_loader *L, const mt_config *cfg, kk_albert *a);
void kk_albert_free(kk_albert *a);
/* out [T, H] */
int kk_albert_fwd(const kk_albert *a, const int *ids, size_t T, float *out, mt_pool *pool, mt_err *err);

int kk_decoder_load(kk_loader *L, mt_kokoro *k, const mt_config *cfg);
void kk_decoder_free(mt_kokoro *k);
/* *audio malloc'd [*n] (600 F for Kokoro's settings) from asr [H, F], F0, N [2F], style [S]
 * (the acoustic half); gen_x [C0, 2F] (may be NULL) receives the generator's input. */
int kk_decoder_fwd(const mt_kokoro *k, const float *asr, const float *F0, const float *N, size_t F,
                   const float *style, const mt_kokoro_opts *opts, float **audio, size_t *n, float *gen_x,
                   mt_err *err);
/* ---- predictor and text encoder (kokoro_prosody.c) */
int kk_prosody_load(kk_loader *L, mt_kokoro *k);
void kk_prosody_free(mt_kokoro *k);
/* d [T, H+S] (duration encoder output) and dur [T] from benc [T, H] and the prosody style s [S]. */
int kk_durations(const mt_kokoro *k, const float *benc, size_t T, const float *s, float speed, float *d, int *dur,
                 mt_err *err);
/* F0, N [2F] from en [H+S, F]. */
int kk_f0n(const mt_kokoro *k, const float *en, size_t F, const float *s, float *F0, float *N, mt_err *err);
/* t_en [H, T] */
int kk_text_encoder(const mt_kokoro *k, const int *ids, size_t T, float *t_en, mt_err *err);

#endif
