#!/usr/bin/env python3
"""Goldens for --max-kv-size: greedy tokens from mlx-lm's generate_step with a
RotatingKVCache (max_kv_size, keep 4) for a few cache sizes and prefill chunk
sizes, on fixture models whose mlx-lm class has no make_cache (for those that do,
such as llama and gemma3_text, mlx-lm ignores max_kv_size).  Writes
tests/data/models/<name>/maxkv.json.

usage: tests/gen/gen_maxkv_goldens.py [NAME...]   (default: every name in NAMES)
"""
import json, os, pathlib, sys
import mlx.core as mx
from mlx_lm.utils import load_model
from mlx_lm.generate import generate_step

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMES = ["qwen3-tiny", "qwen3-tiny-4bit", "gemma2-tiny",
         "phi-tiny", "cohere-tiny", "internlm2-tiny",  # dense group A: parallel block, grouped wqkv
         "deepseek_v3-tiny", "deepseek_v2-tiny-4bit",  # latent attention
         "qwen2moe-tiny",  # MoE with a gated shared expert
         "gpt2-tiny", "gptneox-tiny",
         "qwen3moe-fpq-mxfp4", "qwen3moe-fpq-nvfp4"]  # dense group B: learned positions, parallel block
PROMPT = [1, 17, 200, 45, 99, 3, 250, 7, 128, 64, 300, 5, 77, 150, 9, 31, 222, 18]
CASES = [(8, 2048), (8, 3), (6, 4), (12, 5), (30, 2048)]


def main():
    for name in sys.argv[1:] or NAMES:
        d = pathlib.Path(ROOT) / "tests" / "data" / "models" / name
        model, _ = load_model(d)
        out = {"prompt": PROMPT, "cases": []}
        for max_kv, step in CASES:
            toks = [int(t) for t, _ in generate_step(mx.array(PROMPT), model, max_tokens=24, max_kv_size=max_kv,
                                                      prefill_step_size=step,
                                                      sampler=lambda lp: mx.argmax(lp, axis=-1))]
            full = [int(t) for t, _ in generate_step(mx.array(PROMPT), model, max_tokens=24,
                                                      sampler=lambda lp: mx.argmax(lp, axis=-1))]
            out["cases"].append({"max_kv_size": max_kv, "prefill_step_size": step, "greedy": toks,
                                 "differs_from_unbounded": toks != full})
        json.dump(out, open(d / "maxkv.json", "w"))
        print(name, [c["differs_from_unbounded"] for c in out["cases"]])


if __name__ == "__main__":
    main()
