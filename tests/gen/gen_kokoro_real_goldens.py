#!/usr/bin/env python3
"""Goldens from mlx-audio on the real Kokoro-82M folder that `make kokoro` writes.

Loads local-models/Kokoro-82M with mlx-audio 0.6.2 (`mlx_audio.tts.utils.load`, float32 on
mlx's CPU backend) and synthesizes the sentences below from their phonemes (kokoro-onnx's
G2P output for the text, so that no G2P is in the loop) with the voice jf_alpha, style row
pack[len(phonemes) - 1] as mlx-audio picks it, speed 1.

The harmonic source's random draws are replaced by the stand-ins of gen_kokoro_fixtures.py,
which C recomputes exactly (initial phases h / 10, the hashed unit-variance noise), so the
waveform is a deterministic function of the weights and the phonemes.

Writes tests/data/real/kokoro/goldens.safetensors: per sentence c, "c.dur" (per-token
durations, float32 holding integers) and "c.audio" (the waveform, float16: its rounding is
~70 dB below the signal, far under the 40 dB the test asks).  About 300 KB; the weights stay
out of the repository (make kokoro fetches them).

Run from the repository root after `make kokoro`:
  /work/venv-tts/bin/python tests/gen/gen_kokoro_real_goldens.py
"""
import os
import sys

import mlx.core as mx
import numpy as np

MODEL = os.path.join("local-models", "Kokoro-82M")
OUT = os.path.join("tests", "data", "real", "kokoro", "goldens.safetensors")
VOICE = "jf_alpha"
SENTENCES = [
    "həlˈO wˈɜɹld. ðɪs ɪz ɐ tˈɛst.",
    "ðə kwˈɪk bɹˈWn fˈɑks ʤˈʌmps ˈOvəɹ ðə lˈAzi dˈɔɡ.",
    "hˌW ɑɹ ju tədˈA?",
    "ðə mˈitɪŋ ɪz æt θɹˈi fˈɔɹɾi, ɪn ɹˈum twˈɛlv.",
]


def hash_noise(n):
    i = np.arange(n, dtype=np.uint64)
    u = (i * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
    x = (u >> np.uint64(8)).astype(np.float32) / np.float32(16777216.0)
    return (x - np.float32(0.5)) * np.float32(3.4641016)


def main():
    if not os.path.isdir(MODEL):
        sys.exit(f"{MODEL} missing: run make kokoro first")
    from mlx_audio.tts.utils import load

    def det_uniform(low=0.0, high=1.0, shape=(), **k):
        shape = tuple(shape)
        assert shape[-1] == 9, shape
        return mx.broadcast_to(mx.array((np.arange(9) / 10).astype(np.float32)), shape)

    def det_normal(shape=(), **k):
        shape = tuple(shape)
        if shape[-1] != 9:
            return mx.zeros(shape)
        return mx.array(hash_noise(int(np.prod(shape))).reshape(shape))

    model = load(MODEL)         # (its initializers draw before the stand-ins go in)
    mx.random.uniform, mx.random.normal = det_uniform, det_normal
    pack = mx.load(f"{MODEL}/voices/{VOICE}.safetensors")["voice"]
    gold = {}
    for c, ps in enumerate(SENTENCES):
        unknown = [ch for ch in ps if ch not in model.vocab]
        if unknown:
            sys.exit(f"sentence {c}: phonemes not in the vocabulary: {unknown}")
        out = model(ps, pack[len(ps) - 1], 1.0, return_output=True)
        a = np.array(out.audio, dtype=np.float32).reshape(-1)
        gold[f"{c}.dur"] = mx.array(np.array(out.pred_dur, dtype=np.float32).reshape(-1))
        gold[f"{c}.audio"] = mx.array(a).astype(mx.float16)
        print(f"sentence {c}: {a.size} samples, peak {np.abs(a).max():.3f}")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    mx.save_safetensors(OUT, gold, metadata={"voice": VOICE, "phonemes": "\n".join(SENTENCES)})


if __name__ == "__main__":
    main()
