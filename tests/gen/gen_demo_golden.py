#!/usr/bin/env python3
"""Golden for tests/bats/demo.bats: what mlx-lm generates greedily from the bundled models.

For each shipped model in models/ (tinydocs-22m-4bit, -8bit and the draft tinydocs-5m-4bit)
and each prompt in PROMPTS, mlx_lm.stream_generate at temperature 0 (max_tokens N) gives
the token ids and the streamed text.  The prompt is encoded with HF `tokenizers` from the
model's tokenizer.json (special tokens added unless the text starts with BOS, mlx-lm's
rule; this tokenizer has no post-processor, so nothing is added).  Also recorded: the
smallest top-1/top-2 logit margin along each greedy path, so that a failing comparison
can be told apart from a near-tie.  The model's bf16 parameters are cast to float32 first
(exact), so mlx-lm computes in float32 as mlx-gen does.  Writes tests/data/demo/golden.json.

usage: tests/gen/gen_demo_golden.py
"""
import json
import os
import pathlib

import mlx.core as mx
from mlx_lm.generate import stream_generate
from mlx_lm.utils import load
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parents[2]
MODELS = ["tinydocs-22m-4bit", "tinydocs-22m-8bit", "tinydocs-5m-4bit"]
PROMPTS = ["The best way to learn", "When the system boots,"]
N = 32


def main():
    mx.set_default_device(mx.cpu)
    out = {"max_tokens": N, "models": {}}
    for name in MODELS:
        path = ROOT / "models" / name
        model, tok = load(str(path))
        # bf16 -> float32 for the floating parameters (norms, quantization scales and biases):
        # exact for the stored values; mlx-lm then computes in float32 like mlx-gen, instead of
        # bf16 activations whose rounding makes near-ties of the greedy choice
        model.set_dtype(mx.float32)
        raw = Tokenizer.from_file(str(path / "tokenizer.json"))
        res = []
        for p in PROMPTS:
            bos = tok.bos_token
            ids = raw.encode(p, add_special_tokens=not (bos and p.startswith(bos))).ids
            gen, text = [], ""
            for r in stream_generate(model, tok, ids, max_tokens=N):
                text += r.text
                if r.finish_reason != "stop":
                    gen.append(int(r.token))
            # margins on the greedy path (full forward of prompt + generated ids)
            logits = model(mx.array([ids + gen]))[0].astype(mx.float32)
            top = mx.sort(logits[len(ids) - 1:len(ids) - 1 + len(gen)], axis=-1)[:, -2:]
            margin = float(mx.min(top[:, 1] - top[:, 0]))
            res.append({"prompt": p, "prompt_ids": ids, "ids": gen, "text": text, "min_margin": round(margin, 4)})
            print(name, repr(p + text), "margin", round(margin, 4))
        out["models"][name] = res
    d = ROOT / "tests" / "data" / "demo"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "golden.json", "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
