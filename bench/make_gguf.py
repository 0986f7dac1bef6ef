#!/usr/bin/env python3
"""make_gguf.py - the benchmark models of make_models.py as GGUF files for
llama.cpp, from the same weights:
  <name>-q4g32  -> <name>-Q4_1.gguf  lossless: MLX 4-bit group-32 affine with f16
                   scale/bias is exactly GGUF Q4_1 (block of 32, d=scale, m=bias,
                   byte j = code j | code j+16 << 4); 5.0 bits per weight
  <name>-q8g64  -> <name>-Q8_0.gguf  requantized from the dequantized MLX 8-bit
                   weights (8.5 bits per weight, like MLX q8 g64)
  <name>-q4g64  -> <name>-Q4_0.gguf  requantized from the dequantized MLX 4-bit
                   group-64 weights (4.5 bits per weight, like MLX q4 g64)
Norm weights are F32.  Llama q/k rows are permuted as llama.cpp's converter does
(rope pairs (i, i+d/2) -> (2i, 2i+1)); permuting whole rows keeps them lossless.

usage: python3 bench/make_gguf.py [--dir bench/models] [--models llama1b,qwen06b]
"""
import argparse
import json
import os

import mlx.core as mx
import numpy as np
import gguf

TT = gguf.TokenType


def tokenizer_meta(w, mdir, vocab_size, pre):
    tj = json.load(open(os.path.join(mdir, "tokenizer.json")))
    tokens = [None] * vocab_size
    types = [TT.NORMAL] * vocab_size
    for t, i in tj["model"]["vocab"].items():
        if i < vocab_size:
            tokens[i] = t
    for a in tj.get("added_tokens", []):
        if a["id"] < vocab_size:
            tokens[a["id"]] = a["content"]
            types[a["id"]] = TT.CONTROL if a.get("special") else TT.USER_DEFINED
    for i in range(vocab_size):
        if tokens[i] is None:
            tokens[i] = f"[PAD{i}]"
            types[i] = TT.UNUSED
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)


def q4_1_blocks(wq, scales, biases):
    """MLX uint32 [rows, K/8] + f16 [rows, K/32] x2 -> Q4_1 bytes [rows, K/32*20]."""
    rows = wq.shape[0]
    b = wq.view(np.uint8).reshape(rows, -1)
    codes = np.empty((rows, b.shape[1] * 2), np.uint8)
    codes[:, 0::2] = b & 15
    codes[:, 1::2] = b >> 4
    nb = codes.shape[1] // 32
    c = codes.reshape(rows, nb, 32)
    qs = c[:, :, :16] | (c[:, :, 16:] << 4)
    d = scales.astype(np.float16).view(np.uint8).reshape(rows, nb, 2)
    m = biases.astype(np.float16).view(np.uint8).reshape(rows, nb, 2)
    return np.concatenate([d, m, qs], axis=2).reshape(rows, nb * 20)


def gguf_name(k):
    k = k.replace("model.embed_tokens", "token_embd").replace("model.norm", "output_norm")
    k = k.replace("lm_head", "output")
    k = k.replace("model.layers.", "blk.")
    for a, b in [("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"),
                 ("self_attn.o_proj", "attn_output"), ("self_attn.q_norm", "attn_q_norm"),
                 ("self_attn.k_norm", "attn_k_norm"), ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"),
                 ("mlp.down_proj", "ffn_down"), ("input_layernorm", "attn_norm"),
                 ("post_attention_layernorm", "ffn_norm")]:
        k = k.replace(a, b)
    return k


def convert(mdir, out, qtype):
    cfg = json.load(open(os.path.join(mdir, "config.json")))
    arch = "llama" if cfg["model_type"] == "llama" else "qwen3"
    q = cfg["quantization"]
    W = mx.load(os.path.join(mdir, "model.safetensors")) if os.path.exists(os.path.join(mdir, "model.safetensors")) else {}
    if not W:
        idx = json.load(open(os.path.join(mdir, "model.safetensors.index.json")))
        for f in sorted(set(idx["weight_map"].values())):
            W.update(mx.load(os.path.join(mdir, f)))
    w = gguf.GGUFWriter(out, arch)
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or H // nh
    w.add_context_length(4096)
    w.add_embedding_length(H)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_rope_dimension_count(hd)
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type({"Q4_1": gguf.LlamaFileType.MOSTLY_Q4_1, "Q4_0": gguf.LlamaFileType.MOSTLY_Q4_0,
                     "Q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[qtype])
    tokenizer_meta(w, mdir, cfg["vocab_size"], "llama-bpe" if arch == "llama" else "qwen2")
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    for k in sorted(W):
        if not k.endswith(".weight"):
            continue
        base = k[: -len(".weight")]
        name = gguf_name(k)
        if base + ".scales" not in W:
            w.add_tensor(name, np.array(W[k].astype(mx.float32)))
            continue
        wq, s, b = W[k], W[base + ".scales"], W[base + ".biases"]
        perm = None
        if arch == "llama" and (base.endswith("q_proj") or base.endswith("k_proj")):
            n = nh if base.endswith("q_proj") else nkv
            perm = np.arange(wq.shape[0]).reshape(n, 2, hd // 2).swapaxes(1, 2).reshape(-1)
        if qtype == "Q4_1":
            assert q["bits"] == 4 and q["group_size"] == 32 and s.dtype == mx.float16
            data = q4_1_blocks(np.array(wq), np.array(s), np.array(b))
            if perm is not None:
                data = data[perm]
            w.add_tensor(name, np.ascontiguousarray(data), raw_dtype=gguf.GGMLQuantizationType.Q4_1)
        else:
            f = np.array(mx.dequantize(wq, s, b, group_size=q["group_size"], bits=q["bits"]).astype(mx.float32))
            if perm is not None:
                f = f[perm]
            gt = gguf.GGMLQuantizationType.Q4_0 if qtype == "Q4_0" else gguf.GGMLQuantizationType.Q8_0
            w.add_tensor(name, gguf.quants.quantize(f, gt), raw_dtype=gt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print("wrote", out, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(os.path.dirname(__file__), "models"))
    ap.add_argument("--models", default="llama1b,qwen06b")
    ap.add_argument("--types", default="Q4_1,Q4_0,Q8_0")
    a = ap.parse_args()
    for name in a.models.split(","):
        for qt in a.types.split(","):
            src = os.path.join(a.dir, f"{name}-{ {'Q4_1': 'q4g32', 'Q4_0': 'q4g64', 'Q8_0': 'q8g64'}[qt]}")
            out = os.path.join(a.dir, f"{name}-{qt}.gguf")
            if os.path.exists(out):
                print("exists:", out)
                continue
            if not os.path.isdir(src):
                print("missing:", src)
                continue
            convert(src, out, qt)


if __name__ == "__main__":
    main()
