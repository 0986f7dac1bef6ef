#!/usr/bin/env python3
"""Goldens for --kv-bits on the recurrent-state hybrids: mlx-lm quantizes only their attention
layers' caches (KVCache.to_quantized; ArraysCache has none, nor has falcon_h1's CacheList of both,
so its answers do not change).  The shared fixtures have head_dim
16, which no KV group size divides, so this builds tiny hybrids with head_dim 64 (the fixture
recipe of gen_llm_fixtures.py, build()) under tests/data/ssm/<name>/ (config.json,
model.safetensors, the tiny tokenizer) and writes tests/data/ssm/kvbits.json: the prompt and,
per model, greedy (no KV quantization) and cases [{bits, group, start, greedy}] from
generate_step(prompt, model, max_tokens=N, kv_bits, kv_group_size, quantized_kv_start, argmax).
Seeds are tried until every greedy path's top-1/top-2 gap is >= MARGIN.

usage: tests/gen/gen_ssm_kvbits.py   (mlx, mlx-lm 0.32)
"""
import json, os, pathlib, shutil, sys
import mlx.core as mx
from mlx_lm.utils import load_model, save_model, save_config
from mlx_lm.generate import generate_step

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_llm_fixtures as g  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "data", "ssm")
FAM = g.FAMILIES
MODELS = {
    "lfm2-hd64": dict(FAM["lfm2-tiny"], hidden_size=128, block_dim=128, num_attention_heads=2, num_key_value_heads=1,
                      num_hidden_layers=2, layer_types=["conv", "full_attention"], block_ff_dim=96),
    "falcon-h1-hd64": dict(FAM["falcon-h1-tiny"], head_dim=64, num_attention_heads=2, num_key_value_heads=1),
    "nemotron-h-hd64": dict(FAM["nemotron-h-tiny"], head_dim=64, num_attention_heads=2, num_key_value_heads=1),
}
CASES = [(4, 32, 0), (8, 64, 0), (4, 64, 5)]
PROMPT = g.PROMPT
N = 16
MARGIN = 0.02


def greedy(model, **kw):
    toks, margin = [], 1e9
    for t, lp in generate_step(mx.array(PROMPT), model, max_tokens=N, sampler=lambda lp: mx.argmax(lp, axis=-1), **kw):
        toks.append(int(t))
        top = mx.sort(lp.reshape(-1))[-2:]
        margin = min(margin, float(top[1] - top[0]))
    return toks, margin


def main():
    g.make_tokenizer()
    out = {"prompt": PROMPT, "max_tokens": N, "models": {}}
    for name, cfg in MODELS.items():
        path = os.path.join(OUT, name)
        for seed in range(20):
            model = g.build(cfg, seed, None)
            if os.path.exists(path):
                shutil.rmtree(path)
            os.makedirs(path)
            save_model(path, model)
            save_config(dict(cfg), os.path.join(path, "config.json"))
            for f in ("tokenizer.json", "tokenizer_config.json"):
                shutil.copy(os.path.join(g.TOK, f), path)
            model, _ = load_model(pathlib.Path(path))
            plain, m0 = greedy(model)
            cases, worst = [], m0
            for bits, group, start in CASES:
                toks, m = greedy(model, kv_bits=bits, kv_group_size=group, quantized_kv_start=start)
                cases.append({"bits": bits, "group": group, "start": start, "greedy": toks})
                worst = min(worst, m)
            if worst >= MARGIN and len(set(plain)) >= 6:
                out["models"][name] = {"greedy": plain, "cases": cases}
                print(name, "seed", seed, "margin", round(worst, 4))
                break
        else:
            sys.exit(f"{name}: no seed gave comfortable margins")
    json.dump(out, open(os.path.join(OUT, "kvbits.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
