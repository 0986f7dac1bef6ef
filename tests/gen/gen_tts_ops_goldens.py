#!/usr/bin/env python3
"""Goldens for the Kokoro (iSTFTNet / StyleTTS2) neural-network ops of lib/tensor and lib/audio.

Runs mlx-audio's own Kokoro op classes (mlx_audio.tts.models.kokoro, mlx-audio 0.6.2 on
mlx's CPU backend) on seeded random inputs and weights at small sizes and writes, per op,
one float32 safetensors file to tests/data/tts_ops/:

  conv1d.safetensors   ConvWeighted (weight norm, mx.conv1d and mx.conv_transpose1d) and
                       nn.Conv1d cases: padding, dilation, stride, groups, depthwise, 1x1,
                       a long sequence (several time tiles), Kokoro's `ups` transposed convs
                       and the depthwise `pool` of AdainResBlk1d (its [:, 1:] slice applied)
  lstm.safetensors     kokoro.modules.LSTM (bidirectional, batch_first), the raw torch
                       names (weight_ih_l0, ..., _reverse) as Kokoro's checkpoint has them
  norm.safetensors     AdaIN1d, AdaLayerNorm, snake (AdaINResBlock1's), leaky ReLU
  istft.safetensors    MLXSTFT.transform (magnitude, phase) and MLXSTFT.inverse
  blocks.safetensors   AdaINResBlock1 and AdainResBlk1d (with and without upsampling), the
                       ops composed as Kokoro's generator and decoder compose them
  source.safetensors   Generator.f0_upsamp + SourceModuleHnNSF with its random draws recorded
                       (uniform initial phases, the normal noise) so C can inject them

Tensor names are "<case>.<what>"; integer hyper-parameters ride as float32 tensors
"<case>.hp".  Activations are written in the layout the C API takes: [C, T] for convs and
norms, [T, C] for the LSTM and AdaLayerNorm.  Conv weights are written as the
mlx-community folder stores them after mlx-audio's sanitize (weight_v [out, k, in],
weight_g [out, 1, 1]); `ups` keeps its stored [in_x, k, out_x] layout.

Run from the repository root with a venv holding mlx-audio==0.6.2:
  /work/venv-tts/bin/python tests/gen/gen_tts_ops_goldens.py
"""
import os
import sys

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from mlx_audio.tts.models.kokoro import istftnet as K
from mlx_audio.tts.models.kokoro import modules as M

OUT = os.path.join("tests", "data", "tts_ops")
rng = np.random.default_rng(20261207)


def rnd(*shape, scale=1.0):
    return mx.array((rng.standard_normal(shape) * scale).astype(np.float32))


def f32(a):
    return np.ascontiguousarray(np.array(a, dtype=np.float32))


def save(name, d):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    mx.save_safetensors(path, {k: mx.array(f32(v)) for k, v in d.items()})
    print(path, os.path.getsize(path), "bytes,", len(d), "tensors")


# ---------------------------------------------------------------- conv1d
def conv_cases():
    d = {}

    def weighted(name, cin, cout, k, T, stride=1, pad=0, dil=1, groups=1, bias=True):
        c = K.ConvWeighted(cin, cout, k, stride=stride, padding=pad, dilation=dil, groups=groups, bias=bias)
        c.weight_v = rnd(cout, k, cin // groups, scale=0.5)
        c.weight_g = mx.array(f32(rng.uniform(0.5, 2.0, (cout, 1, 1))))
        if bias:
            c.bias = rnd(cout, scale=0.3)
        x = rnd(1, cin, T)                         # [B, C, T]
        y = c(x.swapaxes(2, 1), mx.conv1d).swapaxes(2, 1)
        d[name + ".hp"] = [cin, cout, k, stride, pad, dil, groups, 0, 0]
        d[name + ".v"] = c.weight_v
        d[name + ".g"] = c.weight_g
        if bias:
            d[name + ".b"] = c.bias
        d[name + ".x"] = x[0]
        d[name + ".y"] = y[0]

    weighted("k3", 6, 5, 3, 17, pad=1)
    weighted("dil3", 8, 8, 7, 23, pad=K.get_padding(7, 3), dil=3)
    weighted("dil5k11", 4, 4, 11, 40, pad=K.get_padding(11, 5), dil=5)
    weighted("s2", 1, 1, 3, 20, stride=2, pad=1)              # F0_conv / N_conv
    weighted("s2odd", 3, 4, 3, 21, stride=2, pad=1)
    weighted("groups2", 8, 6, 3, 15, pad=1, groups=2)
    weighted("dw", 6, 6, 5, 19, pad=2, groups=6)
    weighted("pw_nobias", 7, 5, 1, 13, bias=False)            # conv1x1
    weighted("long", 24, 20, 5, 700, pad=2)                   # several time tiles
    weighted("big_k", 9, 3, 7, 30, pad=3)                     # conv_post-like

    # nn.Conv1d (noise_convs): plain weights, mlx layout [out, k, in]
    for name, cin, cout, k, s, p, T in (("noise0", 22, 8, 12, 6, 3, 61), ("noise1", 22, 8, 1, 1, 0, 30)):
        c = nn.Conv1d(cin, cout, kernel_size=k, stride=s, padding=p)
        c.weight = rnd(cout, k, cin, scale=0.3)
        c.bias = rnd(cout, scale=0.3)
        x = rnd(1, cin, T)
        y = c(x.swapaxes(2, 1)).swapaxes(2, 1)
        d[name + ".hp"] = [cin, cout, k, s, p, 1, 1, 0, 0]
        d[name + ".w"] = c.weight
        d[name + ".b"] = c.bias
        d[name + ".x"] = x[0]
        d[name + ".y"] = y[0]

    # Generator.ups: ConvWeighted(in=c/2, out=c, k, u, padding=(k-u)//2, encode=True) run by
    # mx.conv_transpose1d on an input of `c` channels; stored weight_v [c, k, c/2].
    for name, c, k, u, T in (("ups0", 8, 20, 10, 7), ("ups1", 6, 12, 6, 9)):
        m = K.ConvWeighted(c // 2, c, k, u, padding=(k - u) // 2, encode=True)
        m.weight_v = rnd(c, k, c // 2, scale=0.5)
        m.weight_g = mx.array(f32(rng.uniform(0.5, 2.0, (c, 1, 1))))
        m.bias = rnd(c // 2, scale=0.3)
        x = rnd(1, c, T)
        y = m(x.swapaxes(2, 1), mx.conv_transpose1d).swapaxes(2, 1)
        d[name + ".hp"] = [c, c // 2, k, u, (k - u) // 2, 1, 1, 1, 0]
        d[name + ".v"] = m.weight_v
        d[name + ".g"] = m.weight_g
        d[name + ".b"] = m.bias
        d[name + ".x"] = x[0]
        d[name + ".y"] = y[0]

    # AdainResBlk1d.pool: depthwise ConvWeighted(1, C, 3, stride 2, padding 0, groups C),
    # mx.conv_transpose1d, then [:, 1:, :] (T -> 2T).
    C, T = 5, 11
    m = K.ConvWeighted(1, C, kernel_size=3, stride=2, padding=0, groups=C)
    m.weight_v = rnd(C, 3, 1, scale=0.5)
    m.weight_g = mx.array(f32(rng.uniform(0.5, 2.0, (C, 1, 1))))
    m.bias = rnd(C, scale=0.3)
    x = rnd(1, C, T)
    y = m(x.swapaxes(2, 1), mx.conv_transpose1d)[:, 1:, :].swapaxes(2, 1)
    d["pool.hp"] = [C, C, 3, 2, 0, 1, C, 1, 0]
    d["pool.v"] = m.weight_v
    d["pool.g"] = m.weight_g
    d["pool.b"] = m.bias
    d["pool.x"] = x[0]
    d["pool.y"] = y[0]

    # plain mx.conv_transpose1d with dilation and groups (mlx layout [out, k, in/groups])
    for name, cin, cout, k, s, p, dl, g, T in (("tdil", 4, 6, 3, 2, 1, 2, 1, 10), ("tgrp", 6, 4, 4, 3, 2, 1, 2, 8)):
        w = rnd(cout, k, cin // g, scale=0.5)
        x = rnd(1, cin, T)
        y = mx.conv_transpose1d(x.swapaxes(2, 1), w, stride=s, padding=p, dilation=dl, groups=g).swapaxes(2, 1)
        d[name + ".hp"] = [cin, cout, k, s, p, dl, g, 1, 0]
        d[name + ".w"] = w
        d[name + ".x"] = x[0]
        d[name + ".y"] = y[0]
    save("conv1d.safetensors", d)


# ---------------------------------------------------------------- LSTM
def lstm_cases():
    d = {}
    for name, nin, H, T in (("small", 6, 4, 9), ("kokoro_like", 40, 16, 25), ("t1", 5, 3, 1)):
        m = M.LSTM(nin, H)
        s = 1.0 / np.sqrt(H)
        for dirn in ("forward", "backward"):
            setattr(m, "Wx_" + dirn, mx.array(f32(rng.uniform(-s, s, (4 * H, nin)))))
            setattr(m, "Wh_" + dirn, mx.array(f32(rng.uniform(-s, s, (4 * H, H)))))
            setattr(m, "bias_ih_" + dirn, mx.array(f32(rng.uniform(-s, s, (4 * H,)))))
            setattr(m, "bias_hh_" + dirn, mx.array(f32(rng.uniform(-s, s, (4 * H,)))))
        x = rnd(1, T, nin)
        y, _ = m(x)
        d[name + ".hp"] = [nin, H, T]
        d[name + ".x"] = x[0]
        d[name + ".y"] = y[0]                    # [T, 2H]: forward | backward
        for dirn, suf in (("forward", ""), ("backward", "_reverse")):
            d[name + ".weight_ih_l0" + suf] = getattr(m, "Wx_" + dirn)
            d[name + ".weight_hh_l0" + suf] = getattr(m, "Wh_" + dirn)
            d[name + ".bias_ih_l0" + suf] = getattr(m, "bias_ih_" + dirn)
            d[name + ".bias_hh_l0" + suf] = getattr(m, "bias_hh_" + dirn)
    save("lstm.safetensors", d)


# ---------------------------------------------------------------- norms and activations
def norm_cases():
    d = {}
    for name, S, C, T in (("adain", 8, 6, 37), ("adain2", 16, 10, 5)):
        m = K.AdaIN1d(S, C)
        m.fc.weight = rnd(2 * C, S, scale=0.3)
        m.fc.bias = rnd(2 * C, scale=0.3)
        x = rnd(1, C, T, scale=2.0) + 0.5
        s = rnd(1, S)
        y = m(x, s)
        d[name + ".hp"] = [S, C, T]
        d[name + ".fc_w"] = m.fc.weight
        d[name + ".fc_b"] = m.fc.bias
        d[name + ".s"] = s[0]
        d[name + ".x"] = x[0]
        d[name + ".y"] = y[0]
    S, C, T = 8, 12, 9
    m = M.AdaLayerNorm(S, C)
    m.fc.weight = rnd(2 * C, S, scale=0.3)
    m.fc.bias = rnd(2 * C, scale=0.3)
    x = rnd(1, T, C, scale=2.0) - 0.3              # [B, T, C], normalized over C
    s = rnd(1, S)
    y = m(x, s)
    d["adaln.hp"] = [S, C, T]
    d["adaln.fc_w"] = m.fc.weight
    d["adaln.fc_b"] = m.fc.bias
    d["adaln.s"] = s[0]
    d["adaln.x"] = x[0]
    d["adaln.y"] = y[0]
    # snake as AdaINResBlock1 computes it: x + (1/a) * sin(a*x)^2, a per channel
    C, T = 5, 33
    a = mx.array(f32(rng.uniform(0.2, 3.0, (1, C, 1))))
    x = rnd(1, C, T, scale=2.0)
    y = x + (1 / a) * (mx.sin(a * x) ** 2)
    d["snake.hp"] = [C, T]
    d["snake.alpha"] = a.reshape(-1)
    d["snake.x"] = x[0]
    d["snake.y"] = y[0]
    x = rnd(200, scale=2.0)
    d["leaky.x"] = x
    d["leaky.y01"] = K.leaky_relu(x, negative_slope=0.1)
    d["leaky.y02"] = nn.LeakyReLU(0.2)(x)
    save("norm.safetensors", d)


# ---------------------------------------------------------------- STFT / iSTFT
def istft_cases():
    d = {}
    global rng
    for name, nfft, hop, win, L in (("k20", 20, 5, 20, 300), ("k16h4", 16, 4, 16, 97), ("k16w12", 16, 4, 12, 64)):
        if win != nfft:                            # added later: its own stream, the others' draws unchanged
            saved, rng = rng, np.random.default_rng(99)
        st = K.MLXSTFT(filter_length=nfft, hop_length=hop, win_length=win)
        x = rnd(1, L, scale=0.3)
        mag, ph = st.transform(x)                  # [1, nb, frames]
        d[name + ".hp"] = [nfft, hop, L, win]
        d[name + ".x"] = x[0]
        d[name + ".mag"] = mag[0]
        d[name + ".phase"] = ph[0]
        # the Generator's inverse: magnitude exp(.), phase sin(.) of a network output
        F = 1 + L // hop
        nb = nfft // 2 + 1
        spec = mx.exp(rnd(1, nb, F, scale=0.7))
        phase = mx.sin(rnd(1, nb, F, scale=2.0))
        y = st.inverse(spec, phase)                # [1, 1, (F-1)*hop]
        d[name + ".imag"] = spec[0]
        d[name + ".iphase"] = phase[0]
        d[name + ".iy"] = y[0, 0]
        # round trip
        d[name + ".rt"] = st.inverse(mag, ph)[0, 0]
        if win != nfft:
            rng = saved
    save("istft.safetensors", d)


# ---------------------------------------------------------------- harmonic source
def source_cases():
    d = {}
    draws = []
    orig_u, orig_n = mx.random.uniform, mx.random.normal

    def rec_u(*a, **k):
        r = orig_u(*a, **k)
        draws.append(("u", r))
        return r

    def rec_n(*a, **k):
        r = orig_n(*a, **k)
        draws.append(("n", r))
        return r

    mx.random.uniform, mx.random.normal = rec_u, rec_n
    try:
        for name, F, up, sr in (("src", 12, 300, 24000), ("src_small", 7, 60, 4800)):
            m = K.SourceModuleHnNSF(sampling_rate=sr, upsample_scale=up, harmonic_num=8, voiced_threshod=10)
            m.l_linear.weight = rnd(1, 9, scale=0.5)
            m.l_linear.bias = rnd(1, scale=0.1)
            f0 = mx.array(f32(rng.uniform(60, 400, (1, F))))
            f0[0, 2] = 0.0                         # unvoiced frames
            f0[0, 5] = 8.0
            upsamp = nn.Upsample(scale_factor=up)  # Generator.f0_upsamp
            f0u = upsamp(f0[:, None].transpose(0, 2, 1))
            draws.clear()
            mx.random.seed(7)
            har, noi, uv = m(f0u)
            mx.eval(har, noi, uv)
            kinds = [k for k, _ in draws]
            assert kinds == ["u", "n", "n"], kinds
            ini = draws[0][1].reshape(-1)
            noise = draws[1][1][0]                 # [L, 9] standard normal
            sg = m.l_sin_gen
            # the sines themselves, with the same draws (SineGen alone)
            draws.clear()
            mx.random.seed(7)
            sines, uv2, _ = sg(f0u)
            mx.eval(sines)
            assert np.array_equal(np.array(draws[1][1][0]), np.array(noise))
            d[name + ".hp"] = [F, up, sr, 8, sg.sine_amp, sg.noise_std, sg.voiced_threshold]
            d[name + ".f0"] = f0[0]
            d[name + ".ini"] = ini
            d[name + ".noise"] = noise
            d[name + ".lin_w"] = m.l_linear.weight.reshape(-1)
            d[name + ".lin_b"] = m.l_linear.bias
            d[name + ".sines"] = sines[0]          # [L, 9]
            d[name + ".uv"] = uv[0, :, 0]
            d[name + ".har"] = har[0, :, 0]        # [L]
    finally:
        mx.random.uniform, mx.random.normal = orig_u, orig_n
    save("source.safetensors", d)


# ---------------------------------------------------------------- composed blocks
def wn_conv(d, pre, c):
    """random weight-normed weights for ConvWeighted c, recorded under pre"""
    c.weight_v = rnd(*c.weight_v.shape, scale=0.5)
    c.weight_g = mx.array(f32(rng.uniform(0.5, 2.0, c.weight_g.shape)))
    d[pre + ".v"] = c.weight_v
    d[pre + ".g"] = c.weight_g
    if c.bias is not None:
        c.bias = rnd(*c.bias.shape, scale=0.3)
        d[pre + ".b"] = c.bias


def adain(d, pre, m):
    m.fc.weight = rnd(*m.fc.weight.shape, scale=0.3)
    m.fc.bias = rnd(*m.fc.bias.shape, scale=0.3)
    d[pre + ".fc_w"] = m.fc.weight
    d[pre + ".fc_b"] = m.fc.bias


def block_cases():
    d = {}
    S, C, T = 8, 6, 29
    m = K.AdaINResBlock1(C, 3, (1, 3, 5), S)
    for i in range(3):
        wn_conv(d, f"res1.convs1.{i}", m.convs1[i])
        wn_conv(d, f"res1.convs2.{i}", m.convs2[i])
        adain(d, f"res1.adain1.{i}", m.adain1[i])
        adain(d, f"res1.adain2.{i}", m.adain2[i])
        m.alpha1[i] = mx.array(f32(rng.uniform(0.5, 2.0, (1, C, 1))))
        m.alpha2[i] = mx.array(f32(rng.uniform(0.5, 2.0, (1, C, 1))))
        d[f"res1.alpha1.{i}"] = m.alpha1[i].reshape(-1)
        d[f"res1.alpha2.{i}"] = m.alpha2[i].reshape(-1)
    x = rnd(1, C, T)
    s = rnd(1, S)
    d["res1.hp"] = [S, C, T, 3]
    d["res1.x"] = x[0]
    d["res1.s"] = s[0]
    d["res1.y"] = m(x, s)[0]
    for name, cin, cout, upsample, T in (("blk_up", 6, 4, True, 13), ("blk", 5, 5, False, 17)):
        m = K.AdainResBlk1d(cin, cout, S, upsample="half" if upsample else "none")
        wn_conv(d, name + ".conv1", m.conv1)
        wn_conv(d, name + ".conv2", m.conv2)
        adain(d, name + ".norm1", m.norm1)
        adain(d, name + ".norm2", m.norm2)
        if m.learned_sc:
            wn_conv(d, name + ".conv1x1", m.conv1x1)
        if upsample:
            wn_conv(d, name + ".pool", m.pool)
        x = rnd(1, cin, T)
        s = rnd(1, S)
        d[name + ".hp"] = [S, cin, cout, int(upsample), T]
        d[name + ".x"] = x[0]
        d[name + ".s"] = s[0]
        d[name + ".y"] = m(x, s)[0]
    save("blocks.safetensors", d)


def main():
    mx.set_default_device(mx.cpu)
    conv_cases()
    lstm_cases()
    norm_cases()
    istft_cases()
    source_cases()
    block_cases()
    total = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("total", total, "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
