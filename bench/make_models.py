#!/usr/bin/env python3
"""make_models.py - benchmark models: random weights with the real shapes of
Llama-3.2-1B and Qwen3-0.6B, built with mlx-lm's model classes (random init,
float16), quantized by mlx-lm to MLX affine 4-bit (group 64 and 32) and 8-bit
(group 64) or, on request (--variants), to the fp modes mxfp4 / nvfp4 / mxfp8, saved under bench/models/<name>-<variant>/ with the shared
Llama-3.1 / Qwen3 tokenizer.  bench/make_gguf.py writes the llama.cpp files.

usage: python3 bench/make_models.py [--out bench/models] [--models llama1b,qwen06b]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import mlx.core as mx
import mlx.nn as nn
from mlx.utils import tree_flatten, tree_map
from mlx_lm.utils import quantize_model, save_config, save_model

CONFIGS = {
    # values from meta-llama/Llama-3.2-1B config.json
    "llama1b": {
        "model_type": "llama", "architectures": ["LlamaForCausalLM"],
        "hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
        "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 64,
        "vocab_size": 128256, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "max_position_embeddings": 131072, "tie_word_embeddings": True,
        "attention_bias": False, "mlp_bias": False,
        "bos_token_id": 128000, "eos_token_id": 128001, "torch_dtype": "float16",
        "_tokenizer": "llama3_1",
    },
    # values from Qwen/Qwen3-0.6B config.json
    "qwen06b": {
        "model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"],
        "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
        "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
        "vocab_size": 151936, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "max_position_embeddings": 40960, "tie_word_embeddings": True,
        "attention_bias": False, "bos_token_id": 151643, "eos_token_id": 151645,
        "torch_dtype": "float16", "_tokenizer": "qwen3",
    },
}

VARIANTS = {"q4g64": (4, 64, "affine"), "q4g32": (4, 32, "affine"), "q8g64": (8, 64, "affine"),
            "mxfp4": (4, 32, "mxfp4"), "nvfp4": (4, 16, "nvfp4"), "mxfp8": (8, 32, "mxfp8")}
TOKDIR = "/work/shared/fixtures/tokenizers"


def build(name, cfg, seed):
    import importlib
    mod = importlib.import_module("mlx_lm.models." + cfg["model_type"])
    args = mod.ModelArgs.from_dict(cfg)
    mx.random.seed(seed)
    model = mod.Model(args)
    # default inits: Linear U(-1/sqrt(in), 1/sqrt(in)), Embedding N(0,1); shrink the
    # embedding so activations stay in a sane range, norms stay at 1
    params = dict(tree_flatten(model.parameters()))
    for k, v in params.items():
        if "embed_tokens" in k:
            params[k] = v * 0.02
    model.load_weights(list(params.items()))
    model.set_dtype(mx.float16)
    mx.eval(model.parameters())
    return model


def tokenizer_files(cfg, dst):
    src = os.path.join(TOKDIR, cfg["_tokenizer"])
    for f in os.listdir(src):
        p = os.path.join(src, f)
        if f.endswith(".zst"):
            subprocess.run(["zstd", "-dqf", p, "-o", os.path.join(dst, f[:-4])], check=True)
        else:
            shutil.copy(p, os.path.join(dst, f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "models"))
    ap.add_argument("--models", default="llama1b,qwen06b")
    ap.add_argument("--variants", default="q4g64,q4g32,q8g64")
    a = ap.parse_args()
    for name in a.models.split(","):
        cfg = CONFIGS[name]
        for var in a.variants.split(","):
            dst = os.path.join(a.out, f"{name}-{var}")
            if os.path.exists(os.path.join(dst, "model.safetensors")):
                print("exists:", dst)
                continue
            bits, gs, mode = VARIANTS[var]
            model = build(name, cfg, seed=1)  # same seed: the same float weights in every variant
            conf = {k: v for k, v in cfg.items() if not k.startswith("_")}
            model, conf = quantize_model(model, conf, group_size=gs, bits=bits, mode=mode)
            os.makedirs(dst, exist_ok=True)
            save_model(dst, model)
            save_config(conf, os.path.join(dst, "config.json"))
            tokenizer_files(cfg, dst)
            print("wrote", dst, flush=True)
            del model


if __name__ == "__main__":
    main()
