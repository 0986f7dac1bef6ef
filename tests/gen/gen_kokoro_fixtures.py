#!/usr/bin/env python3
"""A tiny random-weight Kokoro folder and its goldens, from mlx-audio's own Kokoro classes.

Builds mlx_audio.tts.models.kokoro.Model (mlx-audio 0.6.2, mlx's CPU backend, float32) with a
small config of the same structure and seeded random weights, and writes tests/data/kokoro-tiny/:

  model/                       the model folder, laid out as mlx-community/Kokoro-82M:
  config.json                  the ModelConfig keys (plbert carries embedding_size, which the real
                               config leaves at AlbertModelArgs' default 128)
  kokoro-tiny.safetensors      the weights under the checkpoint's own names and layouts (PyTorch's
                               state-dict names: LSTM weight_ih_l0..., text-encoder LayerNorm
                               gamma/beta, conv kernels [out, in, k], ConvTranspose1d [in, out, k]),
                               as the real Kokoro-82M folder has them; mlx-audio's Model.sanitize
                               maps them to its parameters (checked here: load_weights(strict))
  voices/af_tiny.safetensors   one tensor "voice" [64, 1, 256]
  goldens.safetensors          (beside model/, so that no loader globs it) per case c (0..2): "c.<what>", float32 (integers as float32):
     ids [T]            token ids incl. the two 0 pads         style [256]  voice row len(ps)-1
     speed [1]
     bert [T, Hb]       CustomAlbert's last hidden state       bert_enc [T, H]  bert_encoder(bert)
     d [T, H+S]         predictor.text_encoder (DurationEncoder) output
     dur [T]            pred_dur (after speed, round, clip)     en [H+S, F]  d^T @ alignment
     F0 [2F], N [2F]    predictor.F0Ntrain                       t_en [H, T]  text_encoder
     asr [H, F]         t_en @ alignment                        gen_x [C0, 2F]  the generator's input
     audio [600 F]      the decoder's waveform

Widths: mlx-audio's Decoder hard-codes its channel counts (1024 for encode/decode, 64 for
asr_res, 512 for the last decode block, asr_res input 512).  This script builds the same
Decoder with those four numbers as parameters (E, R, upsample_initial_channel, hidden_dim),
everything else (blocks, order, kernels, strides, the generator, the source module) being
mlx-audio's classes unchanged.  The C side reads every width from the tensors' shapes.

Randomness: the only random draws at inference are the harmonic source's (SineGen's uniform
initial phases and normal noise, SourceModuleHnNSF's unused noise branch).  While the goldens
run, mx.random.uniform and mx.random.normal are replaced by deterministic stand-ins that C
recomputes exactly (test_kokoro passes them through mt_kokoro_opts.draws):
  initial phases   phase_ini[h] = float32(h / 10), h = 0..8 (mlx-audio then zeroes h = 0)
  SineGen noise    [L, 9] row-major, element i: u = (i * 2654435761) mod 2^32,
                   float32(((u >> 8) / 2^24 - 0.5) * 3.4641016), a unit-variance uniform
  the unused branch  zeros
Zero noise is not used for the waveform golden on purpose: without noise the source is
constant over its first and last half frame (the phase interpolation clamps there) and
wherever F0 <= 10 Hz, so STFT bins 2..10 of those frames are zero up to FFT rounding and
their phases (features of noise_convs) are the rounding noise of mlx's FFT, which no other
FFT reproduces.  The model is in eval mode (no dropout).

Weights are drawn in float32, rounded to bfloat16 values and stored as BF16 (as the
mlx-community bf16 folder stores them); mlx-audio computes with the float32 copies of those
same values, so C's float32 reading is exact.

Run from the repository root:  /work/venv-tts/bin/python tests/gen/gen_kokoro_fixtures.py
"""
import json
import os

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from mlx_audio.tts.models.kokoro import istftnet as K
from mlx_audio.tts.models.kokoro import kokoro as KK

OUT = os.path.join("tests", "data", "kokoro-tiny")
MODEL = os.path.join(OUT, "model")
REAL_CONFIG = os.path.join("local-models", "Kokoro-82M", "config.json")

E_DEC, R_DEC = 32, 8          # the Decoder's 1024 and 64

rng = np.random.default_rng(20261208)


def decoder_init(self, dim_in, style_dim, dim_out, resblock_kernel_sizes, upsample_rates,
                 upsample_initial_channel, resblock_dilation_sizes, upsample_kernel_sizes,
                 gen_istft_n_fft, gen_istft_hop_size):
    """mlx-audio's Decoder.__init__ with its fixed widths as parameters."""
    nn.Module.__init__(self)
    E, R = E_DEC, R_DEC
    self.encode = K.AdainResBlk1d(dim_in + 2, E, style_dim, conv_type=mx.conv1d)
    self.decode = [K.AdainResBlk1d(E + 2 + R, E, style_dim, conv_type=mx.conv1d) for _ in range(3)]
    self.decode.append(K.AdainResBlk1d(E + 2 + R, upsample_initial_channel, style_dim, upsample=True,
                                       conv_type=mx.conv1d))
    self.F0_conv = K.ConvWeighted(1, 1, kernel_size=3, stride=2, padding=1, groups=1)
    self.N_conv = K.ConvWeighted(1, 1, kernel_size=3, stride=2, padding=1, groups=1)
    self.asr_res = [K.ConvWeighted(dim_in, R, kernel_size=1, padding=0)]
    self.generator = K.Generator(style_dim, resblock_kernel_sizes, upsample_rates, upsample_initial_channel,
                                 resblock_dilation_sizes, upsample_kernel_sizes, gen_istft_n_fft,
                                 gen_istft_hop_size)


K.Decoder.__init__ = decoder_init


def config():
    vocab = json.load(open(REAL_CONFIG))["vocab"] if os.path.exists(REAL_CONFIG) else None
    if vocab is None:
        raise SystemExit("need %s for the real vocabulary" % REAL_CONFIG)
    return {
        "model_type": "kokoro",
        "istftnet": {"upsample_kernel_sizes": [20, 12], "upsample_rates": [10, 6], "gen_istft_hop_size": 5,
                     "gen_istft_n_fft": 20, "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
                     "resblock_kernel_sizes": [3, 7, 11], "upsample_initial_channel": 32},
        "dim_in": 64, "dropout": 0.2, "hidden_dim": 32, "max_conv_dim": 512, "max_dur": 8,
        "multispeaker": True, "n_layer": 3, "n_mels": 80, "n_token": 178, "style_dim": 128,
        "text_encoder_kernel_size": 5,
        "plbert": {"hidden_size": 32, "num_attention_heads": 2, "intermediate_size": 48,
                   "max_position_embeddings": 64, "num_hidden_layers": 3, "dropout": 0.1,
                   "embedding_size": 16},
        "vocab": vocab,
    }


def bf16_round(a):
    """float32 values rounded to the nearest bfloat16 (ties to even), kept as float32."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32)


def randomize(model):
    """Seeded random weights of sensible scale for every parameter."""
    flat = dict(nn.utils.tree_flatten(model.parameters()))
    new = {}
    for k, v in sorted(flat.items()):
        shape = v.shape
        if k.endswith("weight_g") and k.startswith("decoder.generator.conv_post"):
            a = rng.uniform(0.05, 0.1, shape)        # keeps exp(magnitude) of the tiny net sane
        elif k.endswith("weight_g") and k.startswith("decoder.generator"):
            a = rng.uniform(0.2, 0.5, shape)
        elif k.endswith("weight_g"):
            a = rng.uniform(0.5, 1.5, shape)
        elif ".alpha" in k:
            a = rng.uniform(0.5, 2.0, shape)
        elif k.endswith("LayerNorm.weight") or k.endswith("layer_norm.weight") or \
                (k.startswith("text_encoder.cnn") and k.endswith(".weight") and len(shape) == 1):
            a = 1.0 + 0.1 * rng.standard_normal(shape)
        elif k.endswith("bias") or "bias_" in k:
            a = 0.1 * rng.standard_normal(shape)
        elif "embeddings" in k or k.endswith("embedding.weight"):
            a = rng.standard_normal(shape) * 0.5
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
            a = rng.standard_normal(shape) / np.sqrt(max(fan_in, 1))
        new[k] = bf16_round(a.astype(np.float32))
    # F0 in a voiced range (the source's threshold is 10 Hz): about 150 +- 20 Hz
    new["predictor.F0_proj.bias"] = bf16_round(new["predictor.F0_proj.bias"] * 0 + 150.0)
    new["predictor.F0_proj.weight"] = bf16_round(new["predictor.F0_proj.weight"] * 4.0)
    # durations: bias the projection so that tokens get 1..7 frames rather than all ~max_dur/2
    b = new["predictor.duration_proj.linear_layer.bias"]
    new["predictor.duration_proj.linear_layer.bias"] = bf16_round(b - 0.5)
    w = new["predictor.duration_proj.linear_layer.weight"]
    new["predictor.duration_proj.linear_layer.weight"] = bf16_round(w * 16.0)
    return new


LSTM_NAMES = {"Wx_forward": "weight_ih_l0", "Wh_forward": "weight_hh_l0", "bias_ih_forward": "bias_ih_l0",
              "bias_hh_forward": "bias_hh_l0", "Wx_backward": "weight_ih_l0_reverse",
              "Wh_backward": "weight_hh_l0_reverse", "bias_ih_backward": "bias_ih_l0_reverse",
              "bias_hh_backward": "bias_hh_l0_reverse"}


def to_checkpoint(params):
    """mlx-audio's parameter names/layouts -> the checkpoint's (the inverse of Model.sanitize)."""
    out = {}
    for k, a in params.items():
        base, last = k.rsplit(".", 1)
        if last in LSTM_NAMES:
            out[base + "." + LSTM_NAMES[last]] = a
        elif k.startswith("text_encoder.cnn") and a.ndim == 1 and k.split(".")[3] == "1":
            out[base + (".gamma" if last == "weight" else ".beta")] = a
        elif last == "weight_v" or ("noise_convs" in k and last == "weight") or \
                k.endswith("F0_proj.weight") or k.endswith("N_proj.weight"):
            out[k] = np.ascontiguousarray(a.transpose(0, 2, 1))
        else:
            out[k] = a
    return out


def save_st(path, d, dtype):
    arrs = {}
    for k, v in d.items():
        arrs[k] = mx.array(np.asarray(v, dtype=np.float32))
        if dtype is not None:
            arrs[k] = arrs[k].astype(dtype)
    mx.save_safetensors(path, arrs)


def hash_noise(n):
    """The deterministic stand-in for SineGen's normal noise (see the module comment)."""
    i = np.arange(n, dtype=np.uint64)
    u = (i * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    x = (u >> np.uint64(8)).astype(np.float32) / np.float32(16777216.0)
    return (x - np.float32(0.5)) * np.float32(3.4641016)


CASES = [("həlˈoʊ wˈɜːld!", 1.0), ("ðɪs ɪz ə tˈɛst.", 1.0), ("kəkˈɔɹoʊ, ʃˈɔɹt", 1.3)]


def run_case(model, cfg, ps, style, speed, rec):
    vocab = cfg["vocab"]
    ids = [0] + [vocab[c] for c in ps if c in vocab] + [0]
    input_ids = mx.array([ids])
    T = len(ids)
    text_mask = mx.zeros((1, T), dtype=mx.bool_)
    bert_dur, _ = model.bert(input_ids, attention_mask=(~text_mask).astype(mx.int32))
    d_en = model.bert_encoder(bert_dur).transpose(0, 2, 1)
    s = style[:, 128:]
    d = model.predictor.text_encoder(d_en, s, mx.array([T]), text_mask)
    x, _ = model.predictor.lstm(d)
    duration = mx.sigmoid(model.predictor.duration_proj(x)).sum(axis=-1) / speed
    raw = np.array(duration[0])
    frac = np.abs(raw - np.floor(raw) - 0.5)
    out = model(ps, style, speed=speed, return_output=True)
    pred_dur = np.array(out.pred_dur)
    audio = np.array(out.audio).reshape(-1)
    F = int(pred_dur.sum())
    aln = np.zeros((T, F), np.float32)
    j = 0
    for i, n in enumerate(pred_dur):
        aln[i, j:j + n] = 1
        j += n
    aln = mx.array(aln)[None]
    en = d.transpose(0, 2, 1) @ aln
    F0, N = model.predictor.F0Ntrain(en, s)
    t_en = model.text_encoder(input_ids, mx.array([T]), text_mask)
    asr = t_en @ aln
    g = {"ids": np.array(ids, np.float32), "style": np.array(style[0]), "speed": np.array([speed], np.float32),
         "bert": np.array(bert_dur[0]), "bert_enc": np.array(d_en[0].T), "d": np.array(d[0]),
         "dur": pred_dur.astype(np.float32), "en": np.array(en[0]), "F0": np.array(F0[0]), "N": np.array(N[0]),
         "t_en": np.array(t_en[0]), "asr": np.array(asr[0]), "gen_x": rec["gen_x"], "audio": audio}
    print("case %r: T=%d F=%d dur=%s audio=%d min|frac-.5|=%.3g" % (ps, T, F, pred_dur.tolist(), audio.size,
                                                                     frac.min()))
    assert audio.size == 600 * F
    return g


def main():
    cfg = config()
    os.makedirs(os.path.join(MODEL, "voices"), exist_ok=True)
    model = KK.Model(KK.ModelConfig.from_dict(cfg))
    model.eval()
    params = randomize(model)
    ckpt = to_checkpoint(params)
    # the folder's weights go through mlx-audio's own sanitize, strictly
    san = model.sanitize({k: mx.array(v) for k, v in ckpt.items()})
    assert set(san) == set(params), set(san) ^ set(params)
    for k in params:
        assert san[k].shape == tuple(params[k].shape), (k, san[k].shape, params[k].shape)
        assert np.array_equal(np.array(san[k]), params[k]), k
    model.load_weights(list(san.items()), strict=True)
    mx.eval(model.parameters())

    with open(os.path.join(MODEL, "config.json"), "w") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)
    save_st(os.path.join(MODEL, "kokoro-tiny.safetensors"), ckpt, mx.bfloat16)
    voice = bf16_round(rng.standard_normal((64, 1, 256)).astype(np.float32) * 0.5)
    save_st(os.path.join(MODEL, "voices", "af_tiny.safetensors"), {"voice": voice}, mx.bfloat16)

    rec = {}
    orig_call = K.Generator.__call__

    def gen_call(self, x, s, f0):
        rec["gen_x"] = np.array(x[0])
        return orig_call(self, x, s, f0)

    K.Generator.__call__ = gen_call
    orig_u, orig_n = mx.random.uniform, mx.random.normal
    def det_uniform(low=0.0, high=1.0, shape=(), **k):
        shape = tuple(shape)
        assert shape[-1] == 9, shape
        return mx.broadcast_to(mx.array((np.arange(9) / 10).astype(np.float32)), shape)

    def det_normal(shape=(), **k):
        shape = tuple(shape)
        if shape[-1] != 9:
            return mx.zeros(shape)
        return mx.array(hash_noise(int(np.prod(shape))).reshape(shape))

    mx.random.uniform, mx.random.normal = det_uniform, det_normal
    gold = {}
    try:
        for ci, (ps, speed) in enumerate(CASES):
            style = mx.array(voice[len(ps) - 1])      # [1, 256]
            g = run_case(model, cfg, ps, style, speed, rec)
            for k, v in g.items():
                gold["%d.%s" % (ci, k)] = v
    finally:
        mx.random.uniform, mx.random.normal = orig_u, orig_n
        K.Generator.__call__ = orig_call
    save_st(os.path.join(OUT, "goldens.safetensors"), gold, None)
    for root, _, files in os.walk(OUT):
        for fn in files:
            p = os.path.join(root, fn)
            print(p, os.path.getsize(p))


if __name__ == "__main__":
    main()
