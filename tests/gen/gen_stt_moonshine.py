#!/usr/bin/env python3
"""gen_stt_moonshine.py - the tiny Moonshine fixtures and goldens for
tests/unit/test_stt_moonshine.c.

Reference: mlx-audio 0.6.2 (mlx_audio/stt/models/moonshine), mlx 0.32.4, run
from /work/venv-tts.  The model is mlx-audio's Model with random weights
(seeded), written in the layout mlx-audio loads:

  tests/data/stt/moonshine/tiny     float32, the transformers layout that
                                UsefulSensors/moonshine-* publish ("model."
                                prefix, torch Conv1d weights [out, in, k]),
                                tied output (tie_word_embeddings true)
  tests/data/stt/moonshine/tiny-q4  the same model through mlx-audio's convert
                                quantization (nn.quantize, group 64, 4 bits,
                                every Linear / Embedding whose input width is
                                a multiple of 64), saved as convert saves it
                                (no "model." prefix) except that the conv
                                weights are written back in torch layout:
                                Model.sanitize transposes every 3-D conv
                                weight on load, so the mlx layout convert
                                writes would not load in mlx-audio itself.

Both folders are loaded back through mlx_audio.stt.utils.load_model and run
with Model.generate (greedy, float32 audio).  The tokenizer is the real
Moonshine tokenizer.json shipped in the pip package useful-moonshine-onnx
(MIT licence; committed zstd-compressed), the vocabulary of the tiny model
its first 512 ids.

Clips (16-kHz mono s16 WAV; samples / 32768 on both sides):
  speech  tests/data/audio/speech_s16_mono_16k.wav (1.3 s, already in the repo)
  espeak  espeak-ng "The quick brown fox ..." resampled 22050 -> 16000 Hz
  noise   seeded Gaussian noise, 1.5 s
  long    built in the test from the others (see long_clip()), transcribed
          with chunk_s = 2.5 so that it is cut into chunks at the quietest
          20-ms frame of each window's last third (chunks(), mirrored in
          moonshine.c); mlx-audio runs on each chunk.

Goldens (tests/data/stt/moonshine/golden/): goldens.json (per model and clip: the
token ids of each chunk, the text, the chunk bounds, max_tokens; "cli": the
text of generate() with its defaults for tests/bats/stt_moonshine.bats), and for the
first chunk of speech / espeak / noise the conv front-end output
(feat_<clip>.f32.zst, [frames, hidden]) and the encoder output
(enc_<clip>.f32.zst) of the float model.

Run:    /work/venv-tts/bin/python tests/gen/gen_stt_moonshine.py   (from the repo root)
Needs:  pip download useful-moonshine-onnx --no-deps, unzipped at $MOONSHINE_ONNX
        (default /tmp/moon), and espeak-ng.
"""
import json
import os
import shutil
import subprocess
import tempfile
import wave

import numpy as np
import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten
from scipy.signal import resample_poly

from mlx_audio.stt.models.moonshine.moonshine import Model
from mlx_audio.stt.models.moonshine.config import ModelConfig
from mlx_audio.stt.utils import load_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests/data/stt/moonshine")
ONNX = os.environ.get("MOONSHINE_ONNX", "/tmp/moon")
TOKJSON = os.path.join(ONNX, "moonshine_onnx/assets/tokenizer.json")

CONFIG = {
    "architectures": ["MoonshineForConditionalGeneration"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 1,
    "decoder_hidden_act": "silu",
    "decoder_num_attention_heads": 4,
    "decoder_num_hidden_layers": 2,
    "decoder_num_key_value_heads": 4,
    "decoder_start_token_id": 1,
    "encoder_hidden_act": "gelu",
    "encoder_num_attention_heads": 4,
    "encoder_num_hidden_layers": 2,
    "encoder_num_key_value_heads": 4,
    "eos_token_id": 2,
    "hidden_size": 64,
    "initializer_range": 0.02,
    "intermediate_size": 64,
    "is_encoder_decoder": True,
    "max_position_embeddings": 512,
    "model_type": "moonshine",
    "pad_head_dim_to_multiple_of": None,
    "pad_token_id": 2,
    "partial_rotary_factor": 0.9,
    "rope_scaling": None,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
    "use_cache": True,
    "vocab_size": 512,
}

TOKCFG = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "unk_token": "<unk>",
    "clean_up_tokenization_spaces": False,
    "model_max_length": 1000000000000000019884624838656,
}

SR = 16000
FRAME = 320            # 20 ms: the cut search's energy frames
MIN_SAMPLES = 895      # the shortest input the conv stack accepts (conv3 gives >= 1 frame)
MAX_TOKENS = 40        # per chunk in the goldens (the default, 200, would only repeat)
LONG_CHUNK_S = 2.5
EOS_SCALE = float(os.environ.get("EOS_SCALE", "2.5"))
DEC_QK_SCALE = float(os.environ.get("DEC_QK_SCALE", "4.0"))
SEED = int(os.environ.get("SEED", "5"))
DEC_OUT_SCALE = float(os.environ.get("DEC_OUT_SCALE", "8.0"))


def chunks(x, chunk_s):
    """[start, end) sample ranges; mirrored in lib/models/moonshine.c"""
    n = len(x)
    win = int(round(chunk_s * SR))
    out = []
    s = 0
    while n - s > win:
        best, bk = None, -1
        k = 0
        while (k + 1) * FRAME <= win:
            if 3 * k * FRAME >= 2 * win:
                f = x[s + k * FRAME: s + (k + 1) * FRAME].astype(np.float64)
                e = float(np.sum(f * f))
                if best is None or e < best:
                    best, bk = e, k
            k += 1
        cut = s + bk * FRAME + FRAME // 2
        out.append((s, cut))
        s = cut
    out.append((s, n))
    return out


def read_wav(path):
    with wave.open(path) as w:
        assert w.getframerate() == SR and w.getnchannels() == 1 and w.getsampwidth() == 2
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / np.float32(32768.0)


def write_wav(path, pcm16):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm16.astype("<i2").tobytes())


def make_clips():
    d = os.path.join(OUT, "clips")
    os.makedirs(d, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        p = os.path.join(t, "e.wav")
        subprocess.run(["espeak-ng", "-w", p, "The quick brown fox jumps over the lazy dog."], check=True)
        with wave.open(p) as w:
            sr = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        assert sr == 22050
        y = resample_poly(x, 320, 441)
        write_wav(os.path.join(d, "espeak.wav"), np.clip(np.round(y), -32768, 32767))
    rng = np.random.default_rng(7)
    noise = np.clip(np.round(rng.normal(0, 3000, int(1.5 * SR))), -32768, 32767)
    write_wav(os.path.join(d, "noise.wav"), noise)


def long_clip(c):
    """espeak, 0.4 s zeros, speech, 0.25 s zeros, noise, espeak (test_stt_moonshine.c builds the same)"""
    z = lambda s: np.zeros(int(s * SR), np.float32)
    return np.concatenate([c["espeak"], z(0.4), c["speech"], z(0.25), c["noise"], c["espeak"]])


def make_float_model():
    mx.random.seed(SEED)
    cfg = ModelConfig.from_dict(CONFIG)
    m = Model(cfg)
    params = dict(tree_flatten(m.parameters()))
    # mlx's default init gives small logits with a near-uniform argmax; scale
    # the weights up so that greedy decoding follows the audio (distinct ids)
    rng = np.random.default_rng(SEED + 1)
    w = {}
    for k, v in params.items():
        a = np.array(v)
        if "norm" in k and k.endswith("weight"):
            a = (1.0 + 0.2 * rng.standard_normal(a.shape)).astype(np.float32)
        elif "norm" in k and k.endswith("bias"):
            a = (0.1 * rng.standard_normal(a.shape)).astype(np.float32)
        elif k.endswith("bias"):
            a = (0.05 * rng.standard_normal(a.shape)).astype(np.float32)
        elif "embed_tokens" in k:
            # byte-fallback rows (<0x..>, ids 3..258) and <unk>/<s> small, so that the
            # argmax picks word pieces (ids 259..511) and the text reads as text;
            # </s> in between, so that some decodes end
            a = rng.standard_normal(a.shape).astype(np.float32)
            a[:259] *= 0.05
            a[2] = rng.standard_normal(a.shape[1]) * EOS_SCALE
        elif k.startswith("decoder.layers") and ("o_proj" in k or "fc2" in k):
            a = (a * DEC_OUT_SCALE).astype(np.float32)
        elif k.startswith("decoder.layers") and ("self_attn.q_proj" in k or "self_attn.k_proj" in k):
            # sharp self-attention whose weights move with the RoPE positions
            a = (a * DEC_QK_SCALE).astype(np.float32)
        else:
            a = (a * 1.5).astype(np.float32)
        w[k] = a
    return w


def save_float(w, d):
    os.makedirs(d, exist_ok=True)
    out = {}
    for k, a in w.items():
        if k.startswith("encoder.") or k.startswith("decoder."):
            name = "model." + k
        else:
            name = k
        if "conv" in k and a.ndim == 3:
            a = np.ascontiguousarray(a.transpose(0, 2, 1))   # mlx [out, k, in] -> torch [out, in, k]
        out[name] = mx.array(a)
    mx.save_safetensors(os.path.join(d, "model.safetensors"), out, metadata={"format": "pt"})
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(TOKCFG, f, indent=2)


def save_q4(src, d):
    m = load_model(src)

    def pred(path, module):
        return hasattr(module, "to_quantized") and module.weight.shape[-1] % 64 == 0

    nn.quantize(m, 64, 4, class_predicate=pred)
    os.makedirs(d, exist_ok=True)
    out = {}
    for k, v in tree_flatten(m.parameters()):
        if "conv" in k and v.ndim == 3:
            v = v.transpose(0, 2, 1)   # back to torch layout (see the docstring)
        out[k] = v
    mx.save_safetensors(os.path.join(d, "model.safetensors"), out, metadata={"format": "mlx"})
    cfg = dict(CONFIG)
    cfg["quantization"] = {"group_size": 64, "bits": 4, "mode": "affine"}
    cfg["quantization_config"] = cfg["quantization"]
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(TOKCFG, f, indent=2)


def with_tokenizer(d):
    """a temporary copy of folder d with the plain tokenizer.json (mlx-audio's loader reads it)"""
    t = tempfile.mkdtemp()
    for f in os.listdir(d):
        if f != "tokenizer.json.zst":
            shutil.copy(os.path.join(d, f), t)
    shutil.copy(TOKJSON, os.path.join(t, "tokenizer.json"))
    return t


def zst_f32(path, a):
    raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
    subprocess.run(["zstd", "-19", "-q", "-f", "-o", path], input=raw, check=True)


def run_model(path, clips, gold_dir, dump):
    m = load_model(path)
    assert m._tokenizer is not None, "mlx-audio did not load the tokenizer"
    res = {}
    for name, x in clips.items():
        chunk_s = LONG_CHUNK_S if name == "long" else 30.0
        bounds = chunks(x, chunk_s)
        parts, texts = [], []
        for ci, (s, e) in enumerate(bounds):
            a = mx.array(x[s:e])
            if dump and ci == 0 and name != "long":
                enc = m.encoder
                h = a[None, :, None]
                h = mx.tanh(enc.conv1(h))
                h = enc.groupnorm(h)
                h = nn.gelu(enc.conv2(h))
                h = nn.gelu(enc.conv3(h))
                zst_f32(os.path.join(gold_dir, f"feat_{name}.f32.zst"), np.array(h[0]))
                zst_f32(os.path.join(gold_dir, f"enc_{name}.f32.zst"), np.array(enc(a)[0]))
            if e - s < MIN_SAMPLES:
                parts.append([])
                texts.append("")
                continue
            out = m.generate(a, max_tokens=MAX_TOKENS)
            # the ids generate() decoded: rerun its loop to record them
            ids = greedy_ids(m, a, MAX_TOKENS)
            assert m._tokenizer.decode(ids, skip_special_tokens=True).strip() == out.text
            parts.append(ids)
            texts.append(out.text)
        res[name] = {
            "chunk_s": chunk_s,
            "bounds": [[int(s), int(e)] for s, e in bounds],
            "ids": parts,
            "texts": texts,
            "text": " ".join(t for t in texts if t),
            "max_tokens": MAX_TOKENS,
        }
        print(path.split("/")[-1], name, [len(p) for p in parts], repr(res[name]["text"][:80]))
    return res


def cli_text(path, x):
    out = load_model(path).generate(mx.array(x))   # max_tokens: generate's default (200)
    print("cli", path.split("/")[-1], out.generation_tokens, repr(out.text[:60]))
    return out.text


def greedy_ids(m, audio, max_tokens):
    """Model.generate's loop (temperature 0), returning the ids instead of the text"""
    enc = m.encoder(audio)
    tokens = [m.config.decoder_start_token_id]
    cache = None
    for _ in range(max_tokens):
        hidden, cache = m.decoder(mx.array([[tokens[-1]]], dtype=mx.int32), enc, cache=cache)
        nxt = int(m._get_logits(hidden[:, -1, :]).argmax())
        if nxt == m.config.eos_token_id:
            break
        tokens.append(nxt)
    return tokens[1:]


def main():
    make_clips()
    clips = {
        "speech": read_wav(os.path.join(ROOT, "tests/data/audio/speech_s16_mono_16k.wav")),
        "espeak": read_wav(os.path.join(OUT, "clips/espeak.wav")),
        "noise": read_wav(os.path.join(OUT, "clips/noise.wav")),
    }
    clips["long"] = long_clip(clips)
    fdir, qdir = os.path.join(OUT, "tiny"), os.path.join(OUT, "tiny-q4")
    gdir = os.path.join(OUT, "golden")
    os.makedirs(gdir, exist_ok=True)
    for d in (fdir, qdir):
        shutil.rmtree(d, ignore_errors=True)
    save_float(make_float_model(), fdir)
    ftmp = with_tokenizer(fdir)
    save_q4(ftmp, qdir)
    qtmp = with_tokenizer(qdir)
    for d in (fdir, qdir):
        subprocess.run(["zstd", "-19", "-q", "-f", TOKJSON, "-o", os.path.join(d, "tokenizer.json.zst")], check=True)
    gold = {
        "reference": "mlx-audio 0.6.2, mlx " + mx.__version__,
        "hidden_size": CONFIG["hidden_size"],
        "tiny": run_model(ftmp, clips, gdir, True),
        "tiny-q4": run_model(qtmp, clips, gdir, False),
        # mlx-stt's defaults (one 30-s chunk, 200 tokens): tests/bats/stt_moonshine.bats
        "cli": {name: cli_text(d, clips[c]) for name, d, c in
                (("tiny-espeak", ftmp, "espeak"), ("tiny-q4-speech", qtmp, "speech"))},
    }
    with open(os.path.join(gdir, "goldens.json"), "w") as f:
        json.dump(gold, f, indent=1)
    shutil.rmtree(ftmp)
    shutil.rmtree(qtmp)


if __name__ == "__main__":
    main()
