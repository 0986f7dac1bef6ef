#!/usr/bin/env python3
"""make_moe.py - the MoE benchmark model: random weights in a qwen2_moe shape (hidden 1024,
16 experts of 512 features, 4 per token, a gated shared expert of 1024), built with mlx-lm's
model class like bench/make_models.py, quantized to MLX affine 4-bit (group 64), saved under
bench/models/qwen2moe-bench-q4g64/ (about 120 MB: never committed).

usage: python3 bench/make_moe.py [--out bench/models] [--layers 8]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_models import build, tokenizer_files  # noqa: E402
from mlx_lm.utils import quantize_model, save_config, save_model  # noqa: E402

CFG = {
    "model_type": "qwen2_moe", "architectures": ["Qwen2MoeForCausalLM"],
    "hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 8,
    "num_attention_heads": 16, "num_key_value_heads": 4, "vocab_size": 32000,
    "num_experts": 16, "num_experts_per_tok": 4, "moe_intermediate_size": 512,
    "shared_expert_intermediate_size": 1024, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
    "max_position_embeddings": 32768, "tie_word_embeddings": False, "torch_dtype": "float16",
    "bos_token_id": 1, "eos_token_id": 2, "_tokenizer": "qwen3",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"))
    ap.add_argument("--layers", type=int, default=8)
    a = ap.parse_args()
    cfg = dict(CFG, num_hidden_layers=a.layers)
    dst = os.path.join(a.out, "qwen2moe-bench-q4g64")
    if os.path.exists(os.path.join(dst, "model.safetensors")):
        print("exists:", dst)
        return
    model = build("qwen2moe-bench", cfg, seed=1)
    conf = {k: v for k, v in cfg.items() if not k.startswith("_")}
    model, conf = quantize_model(model, conf, group_size=64, bits=4)
    os.makedirs(dst, exist_ok=True)
    save_model(dst, model)
    save_config(conf, os.path.join(dst, "config.json"))
    tokenizer_files(cfg, dst)
    print("wrote", dst, flush=True)


if __name__ == "__main__":
    main()
