#!/usr/bin/env python3
"""Goldens for KV-cache quantization (mlx-lm's QuantizedKVCache through generate_step's
kv_bits / kv_group_size / quantized_kv_start).

The shared fixtures under tests/data/models have head_dim 16, which no KV group size
(32, 64, 128) divides, so this script builds its own tiny random-weight models with the
fixture recipe of gen_llm_fixtures.py (build()): tests/data/kvquant/<name>/ holding
config.json and model.safetensors:
  llama-hd64        llama, head_dim 64 (4 query heads, 2 kv heads), float32
  qwen3-hd128       qwen3, head_dim 128 (2 query heads, 1 kv head), float32
  qwen3-hd128-4bit  the same weights quantized (affine 4-bit, group 64)
and tests/data/kvquant/golden.json:
  prompt; per model: greedy (no KV quantization) and cases [{bits, group, start, step,
  greedy, min_margin}] from generate_step(prompt, model, max_tokens=N, kv_bits=bits,
  kv_group_size=group, quantized_kv_start=start, prefill_step_size=step, argmax), and
  "logits": the first step's log-probabilities (generate_step's logprobs, float32) of the
  case bits 4, group 32, start 0, step 4.
Seeds are tried until every case's top-1/top-2 gap on its greedy path is >= MARGIN.

usage: tests/gen/gen_kvquant_goldens.py
"""
import json, os, pathlib, shutil, sys
import mlx.core as mx
from mlx_lm.utils import load_model, save_model, save_config, quantize_model
from mlx_lm.generate import generate_step

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gen_llm_fixtures import build  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "data", "kvquant")
BASE = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=128, num_attention_heads=4,
            num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=384, rope_theta=10000.0,
            max_position_embeddings=512, torch_dtype="float32", bos_token_id=1, eos_token_id=2)
QWEN = dict(BASE, num_attention_heads=2, num_key_value_heads=1)
MODELS = {
    "llama-hd64": (dict(BASE, model_type="llama", tie_word_embeddings=False, head_dim=64), None),
    "qwen3-hd128": (dict(QWEN, model_type="qwen3", tie_word_embeddings=True, head_dim=128), None),
    "qwen3-hd128-4bit": (dict(QWEN, model_type="qwen3", tie_word_embeddings=True, head_dim=128), (4, 64)),
}
PROMPT = [1, 17, 200, 45, 99, 3, 250, 7, 128, 64, 300, 5, 77, 150, 9, 31, 222, 18]
N = 16
# (bits, group, quantized_kv_start, prefill_step_size): start 0; 7, reached inside the
# prompt (after the second chunk of 4); 22, reached only while decoding
CASES = [(b, g, s, p) for b in (8, 4) for g in (32, 64) for s in (0, 7, 22) for p in (4, 2048)]
CASES += [(4, 128, 0, 4), (2, 32, 7, 4), (3, 64, 0, 5), (6, 32, 0, 4)]
MARGIN = 0.02


def run(model, **kw):
    toks, margin, first = [], 1e9, None
    for t, lp in generate_step(mx.array(PROMPT), model, max_tokens=N, sampler=lambda x: mx.argmax(x, axis=-1), **kw):
        toks.append(int(t))
        if first is None:
            first = lp.astype(mx.float32)
        top = mx.sort(lp.reshape(-1))[-2:]
        margin = min(margin, float(top[1] - top[0]))
    return toks, margin, first


def golden(name, path, hd):
    model, _ = load_model(pathlib.Path(path))
    full, m0, _ = run(model)
    out = {"greedy": full, "min_margin": m0, "cases": []}
    worst = m0
    for bits, g, s, p in CASES:
        if hd % g:
            continue
        toks, m, first = run(model, kv_bits=bits, kv_group_size=g, quantized_kv_start=s, prefill_step_size=p)
        if (bits, g, s, p) != (3, 64, 0, 5) and bits >= 4:
            worst = min(worst, m)
        c = {"bits": bits, "group": g, "start": s, "step": p, "greedy": toks, "min_margin": m,
             "differs_from_float": toks != full}
        if (bits, g, s, p) == (4, 32, 0, 4):
            out["logits"] = [float(x) for x in first.tolist()]
        out["cases"].append(c)
    return out, worst


def main():
    os.makedirs(OUT, exist_ok=True)
    res = {"prompt": PROMPT, "max_tokens": N, "models": {}}
    for name, (cfg, q) in MODELS.items():
        path = os.path.join(OUT, name)
        for seed in range(40):
            model = build(cfg, seed)
            c = dict(cfg)
            if q:
                model, c = quantize_model(model, c, q[1], q[0])
            if os.path.exists(path):
                shutil.rmtree(path)
            os.makedirs(path)
            save_model(path, model)
            save_config(c, os.path.join(path, "config.json"))
            g, worst = golden(name, path, cfg["head_dim"])
            if worst >= MARGIN and len(set(g["greedy"])) >= 6:
                break
        else:
            sys.exit(f"{name}: no seed gave comfortable margins")
        for f in os.listdir(path):
            if f not in ("config.json", "model.safetensors"):
                os.remove(os.path.join(path, f))
        res["models"][name] = g
        print(name, "seed", seed, "worst margin", round(worst, 4),
              "cases differing from float:", sum(c["differs_from_float"] for c in g["cases"]), "/", len(g["cases"]))
    json.dump(res, open(os.path.join(OUT, "golden.json"), "w"))


if __name__ == "__main__":
    main()
