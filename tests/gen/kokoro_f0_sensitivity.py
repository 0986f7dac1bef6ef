#!/usr/bin/env python3
"""How far mlx-audio's own Kokoro waveform moves when F0 moves by one float32 ulp.

Runs mlx-audio 0.6.2 on a Kokoro folder (default: local-models/Kokoro-82M from make kokoro)
with the deterministic source draws of gen_kokoro_real_goldens.py, once as is and once with
the predicted F0 curve multiplied by (1 +- 2^-23) (the sign alternating by a hash of the
index: about one ulp), and prints the waveform SNR between the two runs per sentence.

Why: the harmonic source integrates F0 into phases of up to ~1e4 rad, so a one-ulp change of
F0 shifts late phases by ~1e-3 rad; the generator then takes the atan2 phase of the source's
STFT as a feature, and every bin whose phase sits that close to +-pi flips by 2 pi.  The
figure printed is the floor of any float32 waveform comparison against mlx-audio that is
not bit-identical in F0 (test_kokoro_real prints ours against mlx-audio beside it).

  /work/venv-tts/bin/python tests/gen/kokoro_f0_sensitivity.py [--sentences 0,1]
"""
import argparse
import os
import sys

import mlx.core as mx
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from gen_kokoro_real_goldens import MODEL, SENTENCES, VOICE, hash_noise  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--sentences", default="0,1,2,3")
    args = ap.parse_args()
    from mlx_audio.tts.utils import load

    model = load(args.model)

    def det_uniform(low=0.0, high=1.0, shape=(), **k):
        return mx.broadcast_to(mx.array((np.arange(9) / 10).astype(np.float32)), tuple(shape))

    def det_normal(shape=(), **k):
        shape = tuple(shape)
        return mx.array(hash_noise(int(np.prod(shape))).reshape(shape)) if shape[-1] == 9 else mx.zeros(shape)

    mx.random.uniform, mx.random.normal = det_uniform, det_normal
    f0n = model.predictor.F0Ntrain
    state = {"nudge": False}

    def f0n_nudged(*a, **k):
        F0, N = f0n(*a, **k)
        if state["nudge"]:
            n = F0.size
            u = (np.arange(n, dtype=np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
            sign = np.where((u >> np.uint64(31)) != 0, 1.0, -1.0).astype(np.float32)
            F0 = F0 * mx.array((1.0 + sign * 2.0 ** -23).astype(np.float32).reshape(F0.shape))
        return F0, N

    model.predictor.F0Ntrain = f0n_nudged
    pack = mx.load(f"{args.model}/voices/{VOICE}.safetensors")["voice"]
    for c in [int(x) for x in args.sentences.split(",")]:
        ps = SENTENCES[c]
        out = []
        for nudge in (False, True):
            state["nudge"] = nudge
            r = model(ps, pack[len(ps) - 1], 1.0, return_output=True)
            out.append(np.array(r.audio, dtype=np.float64).reshape(-1))
        a, b = out
        snr = 10 * np.log10(np.sum(a ** 2) / np.sum((a - b) ** 2)) if a.shape == b.shape else float("nan")
        print(f"sentence {c}: mlx-audio against itself with F0 one ulp apart: SNR {snr:.1f} dB", flush=True)


if __name__ == "__main__":
    main()
