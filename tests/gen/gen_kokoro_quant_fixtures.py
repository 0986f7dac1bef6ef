#!/usr/bin/env python3
"""Kokoro folders in the forms mlx-community publishes, made by mlx-audio from the tiny folder.

tests/data/kokoro-tiny/model (gen_kokoro_fixtures.py) holds the checkpoint's PyTorch names and
layouts.  mlx-audio's convert loads such a folder (Model.sanitize renames and transposes), then
saves the model's *parameters*; the mlx-community Kokoro-82M-bf16 / -4bit / -6bit / -8bit folders
are written that way.  This script runs mlx-audio 0.6.2's own code on the tiny folder (its Decoder
widths patched by importing gen_kokoro_fixtures) and writes:

  tests/data/kokoro-tiny-mlx/   mlx_audio.tts.utils.convert without quantization: the sanitized
                                names and layouts (LSTM Wx_/Wh_/bias_ih_/bias_hh_forward|backward,
                                text-encoder LayerNorm weight/bias, conv kernels [out, k, in],
                                ConvTranspose1d [in, k, out], F0_proj/N_proj/noise_convs
                                transposed), bf16 as in the source.
  tests/data/kokoro-tiny-q4/    convert with quantize=True, q_bits=4, q_group_size=64: convert
                                quantizes each Linear/Embedding whose last dim is a multiple of 64,
                                which in this tiny model are the style projections (every
                                AdaIN1d / AdaLayerNorm fc, [2C, 128]); config.json gets
                                "quantization": {"group_size": 64, "bits": 4, "mode": "affine"}.
  tests/data/kokoro-tiny-q8/    mlx_audio.lm.convert.quantize_model (the function convert calls)
                                with bits 8, group size 32 globally and a per-layer entry
                                {"group_size": 64, "bits": 8} for every module whose input width
                                is a multiple of 64 (the style fcs): group size 64 where the dims
                                allow, 32 for the 32-wide ones, so that ALBERT's query/key/value/
                                dense/ffn, bert_encoder, duration_proj (QuantizedLinear) and
                                text_encoder.embedding (QuantizedEmbedding) are quantized too.
                                ffn_output (in 48), embedding_hidden_mapping_in and ALBERT's
                                embeddings (16 wide) and m_source (9) stay float.

Each folder has config.json, model.safetensors and voices/af_tiny.safetensors; q8 also keeps the
model.safetensors.index.json that convert writes (mlx and q4 drop it, to stay small: a single
file loads the same with or without it).  convert also copies the source's root *.safetensors (kokoro-tiny.safetensors) into the output; a
folder with both files would hold every weight twice, so that copy is removed (the real
Kokoro-82M checkpoint is a .pth, which convert does not copy).

Goldens (goldens/goldens.safetensors inside q4 and q8, a subfolder so that no loader globs it):
mlx-audio's loader (mlx_audio.tts.utils.load_model: sanitize, apply_quantization, strict
load_weights) runs the folder; float parameters (bf16 values) and the quantized layers' scales
and biases are then widened to float32, exactly, so that mlx computes in float32 as the C port
does (QuantizedLinear multiplies by scale*q + bias in float32; QuantizedEmbedding dequantizes
likewise).  The harmonic source's draws are gen_kokoro_fixtures.py's deterministic stand-ins.
Per case c in CASES (0 and 2 of gen_kokoro_fixtures.CASES: speed 1 and 1.3;
two cases keep the folders small), float32: "c.ids", "c.style", "c.speed", "c.dur",
"c.F0", "c.N" [2F], "c.asr" [H, F], "c.audio" [600 F].

The float MLX-layout folder has no goldens of its own: mlx-audio 0.6.2 cannot load the float
folder its convert writes (sanitize transposes conv kernels, F0_proj/N_proj and noise_convs again
when no tensor is quantized; load_model's strict check refuses them, printed below).  Its
parameters are checked here to be exactly those that sanitize makes of the PyTorch-named folder,
and the model run from them (load_weights without sanitize) to give kokoro-tiny's goldens bit for
bit; test_kokoro_quant compares it with kokoro-tiny/goldens.safetensors.

Run from the repository root:  /work/venv-tts/bin/python tests/gen/gen_kokoro_quant_fixtures.py
"""
import glob
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_kokoro_fixtures as G  # noqa: E402  (patches mlx-audio's Decoder widths)

import mlx.core as mx  # noqa: E402
import mlx.nn as nn  # noqa: E402
import numpy as np  # noqa: E402
from mlx.utils import tree_flatten  # noqa: E402

from mlx_audio.lm.convert import quantize_model, save_config, save_model  # noqa: E402
from mlx_audio.tts import utils as TU  # noqa: E402
from mlx_audio.tts.models.kokoro import istftnet as K  # noqa: E402
from mlx_audio.tts.models.kokoro import kokoro as KK  # noqa: E402

SRC = os.path.join("tests", "data", "kokoro-tiny", "model")
SRC_GOLD = os.path.join("tests", "data", "kokoro-tiny", "goldens.safetensors")
OUT = {n: os.path.join("tests", "data", "kokoro-tiny-" + n) for n in ("mlx", "q4", "q8")}
CASES = (0, 2)
KEEP = ("ids", "style", "speed", "dur", "F0", "N", "asr", "audio")


def drop_source_copy(out):
    p = os.path.join(out, "kokoro-tiny.safetensors")
    if os.path.exists(p):
        os.remove(p)


def make_mlx_and_q4():
    for name, kw in (("mlx", {}), ("q4", {"quantize": True, "q_bits": 4, "q_group_size": 64})):
        shutil.rmtree(OUT[name], ignore_errors=True)
        TU.convert(SRC, OUT[name], **kw)
        drop_source_copy(OUT[name])
        os.remove(os.path.join(OUT[name], "model.safetensors.index.json"))


def make_q8():
    """convert's steps with quantize_model called directly (convert's own predicate keeps only
    layers whose input is a multiple of 64)."""
    out = OUT["q8"]
    shutil.rmtree(out, ignore_errors=True)
    model, config = TU.fetch_from_hub(Path(SRC), lazy=True)
    g64 = {"group_size": 64, "bits": 8, "mode": "affine"}

    def pred(path, m):
        return dict(g64) if m.weight.shape[-1] % 64 == 0 else True

    model, config = quantize_model(model, config, 32, 8, quant_predicate=pred)
    os.makedirs(os.path.join(out, "voices"), exist_ok=True)
    shutil.copy(os.path.join(SRC, "voices", "af_tiny.safetensors"), os.path.join(out, "voices"))
    save_model(Path(out), model, donate_model=True)
    save_config(config, config_path=Path(out) / "config.json")


def widen(model):
    """bf16 parameters (values and the quantized layers' scales/biases) to float32, exactly."""
    model.apply(lambda a: a.astype(mx.float32) if a.dtype in (mx.bfloat16, mx.float16) else a)
    mx.eval(model.parameters())


def run_cases(model, cfg, voice):
    rec = {}
    orig_call = K.Generator.__call__

    def gen_call(self, x, s, f0):
        rec["gen_x"] = np.array(x[0])
        return orig_call(self, x, s, f0)

    def det_uniform(low=0.0, high=1.0, shape=(), **k):
        shape = tuple(shape)
        assert shape[-1] == 9, shape
        return mx.broadcast_to(mx.array((np.arange(9) / 10).astype(np.float32)), shape)

    def det_normal(shape=(), **k):
        shape = tuple(shape)
        if shape[-1] != 9:
            return mx.zeros(shape)
        return mx.array(G.hash_noise(int(np.prod(shape))).reshape(shape))

    K.Generator.__call__ = gen_call
    orig_u, orig_n = mx.random.uniform, mx.random.normal
    mx.random.uniform, mx.random.normal = det_uniform, det_normal
    gold = {}
    try:
        for ci in CASES:
            ps, speed = G.CASES[ci]
            style = mx.array(voice[len(ps) - 1])
            g = G.run_case(model, cfg, ps, style, speed, rec)
            for k in KEEP:
                gold["%d.%s" % (ci, k)] = np.asarray(g[k], np.float32)
    finally:
        mx.random.uniform, mx.random.normal = orig_u, orig_n
        K.Generator.__call__ = orig_call
    return gold


def voice_of(out):
    return np.array(mx.load(os.path.join(out, "voices", "af_tiny.safetensors"))["voice"].astype(mx.float32))


def goldens_quant(name):
    out = OUT[name]
    model = TU.load_model(Path(out))          # mlx-audio's loader, strict
    cfg = json.load(open(os.path.join(out, "config.json")))
    widen(model)
    q = [k for k, v in tree_flatten(model.parameters()) if k.endswith(".scales")]
    print("%s: %d quantized modules, e.g. %s" % (name, len(q), sorted(q)[:3]))
    gold = run_cases(model, cfg, voice_of(out))
    os.makedirs(os.path.join(out, "goldens"), exist_ok=True)
    mx.save_safetensors(os.path.join(out, "goldens", "goldens.safetensors"), {k: mx.array(v) for k, v in gold.items()})


def check_mlx():
    out = OUT["mlx"]
    try:
        TU.load_model(Path(out))
        print("mlx: mlx-audio's loader accepted the float MLX-layout folder")
    except Exception as e:  # expected with mlx-audio 0.6.2
        print("mlx: mlx-audio's loader refuses its own float folder: %s" % str(e)[:160])
    cfg = json.load(open(os.path.join(out, "config.json")))
    model = KK.Model(KK.ModelConfig.from_dict(cfg))
    model.eval()
    w = mx.load(os.path.join(out, "model.safetensors"))
    # the saved parameters are what sanitize makes of the PyTorch-named folder
    src = mx.load(os.path.join(SRC, "kokoro-tiny.safetensors"))
    san = model.sanitize(src)
    assert set(san) == set(w), set(san) ^ set(w)
    for k in w:
        assert w[k].shape == san[k].shape and np.array_equal(np.array(w[k].astype(mx.float32)),
                                                             np.array(san[k].astype(mx.float32))), k
    model.load_weights(list(w.items()), strict=True)
    widen(model)
    gold = run_cases(model, cfg, voice_of(out))
    ref = mx.load(SRC_GOLD)
    for k, v in gold.items():
        assert np.array_equal(v, np.array(ref[k])), k
    print("mlx: parameters = sanitize(kokoro-tiny); goldens identical to kokoro-tiny's")


def main():
    make_mlx_and_q4()
    make_q8()
    check_mlx()
    goldens_quant("q4")
    goldens_quant("q8")
    for n, d in OUT.items():
        tot = 0
        for p in sorted(glob.glob(os.path.join(d, "**"), recursive=True)):
            if os.path.isfile(p):
                tot += os.path.getsize(p)
                print(p, os.path.getsize(p))
        print("%s: %d bytes" % (n, tot))


if __name__ == "__main__":
    main()
