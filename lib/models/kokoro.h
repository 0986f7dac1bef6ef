/* kokoro.h - Kokoro-82M text to speech (StyleTTS2 predictor + iSTFTNet decoder) on
 * float32 weights, computing what mlx-audio's Kokoro model computes.
 *
 * A folder holds config.json (mlx-audio's ModelConfig keys: plbert, istftnet, hidden_dim,
 * style_dim, n_layer, max_dur, n_token, text_encoder_kernel_size, vocab), every root-level
 * *.safetensors (bert.*, bert_encoder.*, predictor.*, text_encoder.*, decoder.*) and
 * voices/<name>.safetensors (one tensor "voice" [rows, 1, 2*style_dim]).  The weights load in
 * the three forms mlx-audio's sanitize accepts, told apart per tensor by name and shape: the
 * checkpoint's PyTorch names and layouts; mlx-audio's sanitized parameters as its convert saves
 * them (mlx-community/Kokoro-82M-bf16: LSTM Wx_/Wh_forward..., LayerNorm weight/bias, conv
 * kernels [out, k, in]); and those MLX-quantized (-4bit, -6bit, -8bit: Linear/Embedding
 * weights as affine uint32 words + .scales + .biases, bits and group size from config.json's
 * "quantization", per-layer entries included), dequantized to float32 at load.  Every width is
 * taken from the tensors' shapes and checked against the others at load; a folder whose
 * shapes disagree, or a quantized tensor without its scales/biases, of the wrong shape or of
 * unsupported bits, is refused with a one-line message.
 *
 * The forward pass, for ids [T] (the phonemes' ids wrapped in 0 pads) and a style row
 * ref_s [2*style_dim] (ref_s[:S] drives the decoder, ref_s[S:] the predictor):
 *   ALBERT -> bert_encoder -> duration encoder (BiLSTM + AdaLayerNorm) -> BiLSTM ->
 *   duration_proj -> durations (sigmoid sum / speed, rounded, clipped to [1, 100]) ->
 *   alignment -> F0 / N (shared BiLSTM, AdainResBlk1d branches) and the text encoder
 *   (CNN + BiLSTM) -> decoder (AdainResBlk1d stack, generator: transposed convs, harmonic
 *   source, AdaINResBlock1s, iSTFT) -> 600 samples at 24 kHz per duration frame.
 *
 * ref: mlx_audio/tts/models/kokoro/{kokoro,modules,istftnet}.py (mlx-audio 0.6.2). */
#ifndef MT_KOKORO_H
#define MT_KOKORO_H
#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "core/pool.h"

typedef struct mt_kokoro mt_kokoro;

/* The harmonic source's randomness (SineGen's initial phases and noise; the source's second
 * noise branch is unused, as in mlx-audio).
 *   draws != NULL: draws(user, L, H, phase_ini [H], noise [L, H]) fills them (L samples, H = 9
 *                  harmonics; phase_ini[0] is ignored); returns 0 or an MT_E* code.  Lets a
 *                  caller replay mlx-audio's recorded draws or any stream of its own.
 *   random = 0:    initial phases 0 and no noise.
 *   random = 1:    uniform [0,1) initial phases and standard normal noise from a generator
 *                  seeded with `seed` (a run is reproducible; the stream is not mlx's). */
typedef struct mt_kokoro_opts {
    int random;
    uint64_t seed;
    int (*draws)(void *user, size_t L, int H, float *phase_ini, float *noise);
    void *user;
} mt_kokoro_opts;

/* Intermediate results of one synthesis, for tests (all malloc'd, freed by
 * mt_kokoro_trace_free).  T tokens, F = sum of durations. */
typedef struct mt_kokoro_trace {
    size_t T, F;
    float *bert;      /* [T, bert hidden] ALBERT's last hidden state */
    float *bert_enc;  /* [T, H] bert_encoder */
    float *d;         /* [T, H + S] duration encoder output */
    int *dur;         /* [T] frames per token */
    float *en;        /* [H + S, F] d^T aligned */
    float *F0, *N;    /* [2F] each */
    float *t_en;      /* [H, T] text encoder */
    float *asr;       /* [H, F] t_en aligned */
    float *gen_x;     /* [C0, 2F] the generator's input */
} mt_kokoro_trace;

void mt_kokoro_trace_free(mt_kokoro_trace *t);   /* frees the arrays; accepts NULL */

/* Load a folder.  pool (may be NULL: one thread) is borrowed for every later call and must
 * outlive *out.  The model is read-only after loading, but the pool is not reentrant: run
 * one call at a time per pool (a model loaded with a NULL pool may be shared by threads).  Errors: MT_ENOTFOUND (config.json, weights or a tensor missing),
 * MT_EFORMAT (a shape or config value that does not fit, a quantized tensor without its
 * scales/biases or not covered by config.json), MT_EUNSUPPORTED (non-float weights, a
 * quantization that is not affine or of unsupported bits / group size), MT_ENOMEM. */
int mt_kokoro_load(const char *dir, mt_pool *pool, mt_kokoro **out, mt_err *err);
void mt_kokoro_free(mt_kokoro *k);   /* accepts NULL */

int mt_kokoro_style_dim(const mt_kokoro *k);      /* S (Kokoro-82M: 128); a style row has 2S */
int mt_kokoro_sample_rate(const mt_kokoro *k);    /* 24000 */
size_t mt_kokoro_max_tokens(const mt_kokoro *k);  /* ALBERT's context, pads included */

/* The ids of a phoneme string (UTF-8): [0, vocab[c] for each code point c in the
 * vocabulary (others dropped, as mlx-audio does), 0].  *ids malloc'd (caller frees).
 * Errors: MT_EINVAL (invalid UTF-8), MT_ELIMIT (more than mt_kokoro_max_tokens). */
int mt_kokoro_ids(const mt_kokoro *k, const char *phonemes, int **ids, size_t *n, mt_err *err);

/* voices/<name>.safetensors of the folder (or `name` itself when it ends in
 * ".safetensors"): *pack malloc'd [rows, 2S].  Errors: MT_ENOTFOUND, MT_EFORMAT. */
int mt_kokoro_voice_load(const mt_kokoro *k, const char *dir, const char *name, float **pack, size_t *rows,
                         mt_err *err);
/* The row mlx-audio uses for a phoneme string of n code points: pack[min(n, rows) - 1]
 * (n >= 1). */
const float *mt_kokoro_voice_row(const mt_kokoro *k, const float *pack, size_t rows, size_t n_phonemes);

/* Synthesize ids [n] (pads included, 2 <= n <= max tokens, each < n_token) with style
 * [2S] at `speed` (> 0): *wav malloc'd [*len] float samples at 24 kHz.  opts may be NULL
 * (random = 0); trace may be NULL.  Errors: MT_EINVAL (arguments), MT_ELIMIT (too many
 * tokens or frames), MT_ENOMEM. */
int mt_kokoro_synth(const mt_kokoro *k, const int *ids, size_t n, const float *style, float speed,
                    const mt_kokoro_opts *opts, float **wav, size_t *len, mt_kokoro_trace *trace, mt_err *err);

/* The decoder stage alone: *wav malloc'd [*len] from asr [H, F] (the aligned text encoder
 * output), F0 and N [2F], and the acoustic style [S] (the first half of a style row).  Errors
 * as mt_kokoro_synth. */
int mt_kokoro_decode(const mt_kokoro *k, const float *asr, const float *F0, const float *N, size_t F,
                     const float *style, const mt_kokoro_opts *opts, float **wav, size_t *len, mt_err *err);

/* The generator's residual-block convolutions in their int8 form (tensor/conv1d.h:
 * mt_conv1d_int8): a synthesis about 1.7x faster where the CPU has AVX512-VNNI, not exact
 * (waveform SNR against the float output about 28 dB; the predictor, so durations and F0,
 * is untouched).  Call once after loading, before
 * any synthesis; *n (may be NULL) receives the number of convs converted.  Errors:
 * MT_EINVAL, MT_ENOMEM (the model then mixes both forms, still usable). */
int mt_kokoro_int8(mt_kokoro *k, int *n, mt_err *err);

#endif
