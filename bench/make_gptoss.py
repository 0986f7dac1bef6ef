#!/usr/bin/env python3
"""make_gptoss.py - a benchmark model shaped like gpt-oss-20b, scaled down: the same
mechanisms and ratios (32 experts, top 4, biases everywhere, 64-wide heads in groups of 8
per kv head, alternating 128-token sliding and full layers, yarn RoPE with factor 32,
random non-zero attention sinks) at hidden 1024, expert width 512, 6 layers and a 32,000-token
vocabulary.  Random weights from mlx-lm's gpt_oss classes (float16), quantized by mlx-lm to
affine 4-bit group 64 (its gpt_oss quant_predicate keeps the routers at 8 bits group 64),
saved to bench/models/gptoss-mini-q4g64/ (about 200 MB; not committed) with the Llama 2
tokenizer (32k: the vocabulary's size) so that mlx-gen runs it too.

usage: python3 bench/make_gptoss.py [--out bench/models]
"""
import argparse
import os
import shutil
import subprocess

import mlx.core as mx
from mlx.utils import tree_flatten
from mlx_lm.utils import quantize_model, save_config, save_model

CONFIG = {
    "model_type": "gpt_oss", "architectures": ["GptOssForCausalLM"],
    "hidden_size": 1024, "intermediate_size": 512, "num_hidden_layers": 6,
    "num_attention_heads": 16, "num_key_value_heads": 2, "head_dim": 64,
    "num_local_experts": 32, "num_experts_per_tok": 4, "vocab_size": 32000,
    "rms_norm_eps": 1e-5, "rope_theta": 150000.0, "sliding_window": 128,
    "layer_types": ["sliding_attention", "full_attention"] * 3,
    "rope_scaling": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                     "original_max_position_embeddings": 4096, "truncate": False},
    "max_position_embeddings": 131072, "tie_word_embeddings": False, "attention_bias": True,
    "swiglu_limit": 7.0, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float16",
}


TOKDIR = "/work/shared/fixtures/tokenizers/llama2"


def tokenizer_files(dst):
    for f in os.listdir(TOKDIR):
        p = os.path.join(TOKDIR, f)
        if f.endswith(".zst"):
            subprocess.run(["zstd", "-dqf", p, "-o", os.path.join(dst, f[:-4])], check=True)
        else:
            shutil.copy(p, os.path.join(dst, f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"))
    a = ap.parse_args()
    dst = os.path.join(a.out, "gptoss-mini-q4g64")
    if os.path.exists(os.path.join(dst, "config.json")):
        if not os.path.exists(os.path.join(dst, "tokenizer.json")):
            tokenizer_files(dst)
        print("exists:", dst)
        return
    from mlx_lm.models import gpt_oss
    mx.random.seed(1)
    model = gpt_oss.Model(gpt_oss.ModelArgs.from_dict(CONFIG))
    params = dict(tree_flatten(model.parameters()))
    for k, v in params.items():
        if "embed_tokens" in k:
            params[k] = v * 0.02
        elif k.endswith("sinks") or (".experts." in k and k.endswith("bias")):
            params[k] = 0.5 * mx.random.normal(v.shape)
    model.load_weights(list(params.items()))
    model.set_dtype(mx.float16)
    mx.eval(model.parameters())
    model, conf = quantize_model(model, dict(CONFIG), group_size=64, bits=4)
    os.makedirs(dst, exist_ok=True)
    save_model(dst, model)
    save_config(conf, os.path.join(dst, "config.json"))
    tokenizer_files(dst)
    print("wrote", dst, flush=True)


if __name__ == "__main__":
    main()
