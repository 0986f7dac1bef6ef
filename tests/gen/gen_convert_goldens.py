#!/usr/bin/env python3
"""Goldens for mlx-quant convert: run mlx_lm.convert (mlx-lm 0.32, mlx CPU) on the
tiny float fixtures of tests/data/models/ for every bits x group size, each mixed
recipe, dtype casts and dequantize, and record sha256 of each written file plus a
short hash per tensor (for diagnostics).  Output: tests/data/convert/goldens.txt.zst

Format (one record per case):
  case <id> <source dir> <mlx-quant convert options...>
  file <name> <sha256>            model*.safetensors, config.json, model.safetensors.index.json
  t <name> <dtype> <shape> <sha256[:8]>   (in file data order)
  error                            mlx_lm refused (e.g. a recipe on a model without down_proj)
  end
Usage: python tests/gen/gen_convert_goldens.py   (from the repository root)
"""
import contextlib
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import mlx_lm.utils as mlx_utils
from mlx_lm.convert import convert

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_llm_fixtures  # noqa: E402,F401  (the family modules' set-up: mlx-lm's olmo needs theirs)

_make_shards = mlx_utils.make_shards
SHARD_BYTES = None   # set per case: a byte limit instead of mlx_lm's 5 GiB


def make_shards_bytes(weights, max_file_size_gb=mlx_utils.MAX_FILE_SIZE_GB):
    if SHARD_BYTES is None:
        return _make_shards(weights, max_file_size_gb)
    # same greedy rule as mlx_lm.utils.make_shards, with a byte limit
    shards, size = [], 0
    for k, v in weights.items():
        if not shards or size + v.nbytes > SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][k] = v
        size += v.nbytes
    return shards


mlx_utils.make_shards = make_shards_bytes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = "tests/data/models"
OUT = os.path.join(ROOT, "tests/data/convert/goldens.txt")

FAMILIES = ["llama-tiny", "llama-tied", "mistral-tiny", "qwen2-tiny", "qwen3-tiny", "gemma-tiny", "gemma2-tiny",
            "gemma3-tiny", "phi3-tiny", "starcoder2-tiny", "granite-tiny", "olmo2-tiny", "smollm3-tiny",
            "mixtral-tiny", "qwen3moe-tiny",
            # dense group A (their module orders and top-level names: lib/convert/convert.c)
            "phi-tiny", "cohere-tiny", "cohere2-tiny", "internlm2-tiny", "internlm3-tiny", "glm4-tiny", "exaone4-tiny",
            "ernie45-tiny", "olmo3-tiny", "minicpm-tiny", "exaone-tiny", "helium-tiny", "glm-tiny", "olmo-tiny"]


HF_DIR = "tests/data/convert/hf"


def make_hf_models():
    """Tiny Hugging Face checkpoints as transformers' save_pretrained writes them
    (bf16 with a "dtype" key, tied embeddings, per-expert MoE tensors), stored as
    config.json + model.safetensors.zst (the test decompresses them)."""
    import torch
    from transformers import (LlamaConfig, LlamaForCausalLM, MixtralConfig, MixtralForCausalLM, Qwen2Config,
                              Qwen2ForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM)
    common = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                  num_key_value_heads=1, vocab_size=256, max_position_embeddings=256)
    specs = [("llama-bf16", LlamaConfig, LlamaForCausalLM, dict(tie_word_embeddings=False), torch.bfloat16, {}),
             ("qwen2-tied-bf16", Qwen2Config, Qwen2ForCausalLM, dict(tie_word_embeddings=True), torch.bfloat16, {}),
             ("mixtral", MixtralConfig, MixtralForCausalLM,
              dict(num_local_experts=4, num_experts_per_tok=2, intermediate_size=64, tie_word_embeddings=False),
              torch.bfloat16, {}),
             ("qwen3_moe", Qwen3MoeConfig, Qwen3MoeForCausalLM,
              dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64, decoder_sparse_step=1,
                   head_dim=32, tie_word_embeddings=False), torch.bfloat16,
              # mlx_lm's ModelArgs needs these keys, which transformers 5 no longer writes
              {"num_experts": 4, "rope_theta": 10000.0})]
    for name, C, M, extra, dt, patch in specs:
        torch.manual_seed(0)
        d = os.path.join(ROOT, HF_DIR, name)
        shutil.rmtree(d, ignore_errors=True)
        M(C(**dict(common, **extra))).to(dt).save_pretrained(d)
        if patch:
            with open(os.path.join(d, "config.json")) as f:
                cfg = json.load(f)
            cfg.update(patch)
            with open(os.path.join(d, "config.json"), "w") as f:
                json.dump(cfg, f, indent=2)
        subprocess.run(["zstd", "-q", "-19", "-f", "--rm", os.path.join(d, "model.safetensors")], check=True)
    return [os.path.join(HF_DIR, s[0]) for s in specs]


def hf_source(src, tmp):
    """A usable copy of a stored HF checkpoint: decompressed, plus a tokenizer for mlx_lm."""
    d = os.path.join(tmp, "src-" + os.path.basename(src))
    if not os.path.isdir(d):
        shutil.copytree(os.path.join(ROOT, src), d)
        subprocess.run(["zstd", "-q", "-d", "--rm", os.path.join(d, "model.safetensors.zst")], check=True)
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(ROOT, MODELS, "llama-tiny", f), d)
    return d


def cases(fam):
    for b in (2, 3, 4, 6, 8):
        for g in (32, 64, 128):
            yield dict(quantize=True, q_bits=b, q_group_size=g)
    yield dict(quantize=True, q_bits=5, q_group_size=64)
    yield dict(quantize=True)   # defaults: 4 bits, group 64
    for r in ("mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6"):
        yield dict(quantize=True, quant_predicate=r)
        yield dict(quantize=True, quant_predicate=r, q_group_size=32)
    yield dict(quantize=True, q_bits=4, q_group_size=64, dtype="bfloat16")
    yield dict(quantize=True, q_bits=3, q_group_size=32, dtype="float16")
    yield dict(dtype="bfloat16")
    yield dict(quantize=True, quant_predicate="mixed_3_6", dtype="bfloat16")


def cli_args(kw):
    a = []
    if kw.get("quantize"):
        a.append("-q")
    if kw.get("dequantize"):
        a.append("-d")
    if "q_bits" in kw:
        a += ["--bits", str(kw["q_bits"])]
    if "q_group_size" in kw:
        a += ["--group-size", str(kw["q_group_size"])]
    if "dtype" in kw:
        a += ["--dtype", kw["dtype"]]
    if "quant_predicate" in kw:
        a += ["--quant-predicate", kw["quant_predicate"]]
    if SHARD_BYTES is not None:
        a += ["--max-shard-bytes", str(SHARD_BYTES)]
    return a


def record(out, cid, src, kw, dst, real_src=None):
    out.append(" ".join(["case", cid, src] + cli_args(kw)))
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            convert(real_src or os.path.join(ROOT, src), dst, **kw)
    except Exception as e:  # mlx_lm refused
        out.append("error")
        out.append("end")
        print(cid, "error:", e, file=sys.stderr)
        return
    names = sorted(f for f in os.listdir(dst) if f.startswith("model") or f == "config.json")
    for f in names:
        with open(os.path.join(dst, f), "rb") as fh:
            out.append("file %s %s" % (f, hashlib.sha256(fh.read()).hexdigest()))
    for f in names:
        if not f.endswith(".safetensors"):
            continue
        with open(os.path.join(dst, f), "rb") as fh:
            raw = fh.read()
        n = struct.unpack("<Q", raw[:8])[0]
        h = json.loads(raw[8:8 + n])
        items = sorted((v["data_offsets"][0], k, v) for k, v in h.items() if k != "__metadata__")
        for _, k, v in items:
            b, e = v["data_offsets"]
            data = raw[8 + n + b:8 + n + e]
            out.append("t %s %s %s %s" % (k, v["dtype"], ",".join(map(str, v["shape"])),
                                          hashlib.sha256(data).hexdigest()[:8]))
    out.append("end")


def main():
    os.chdir(ROOT)
    out = []
    tmp = tempfile.mkdtemp(prefix="convert-goldens-")
    k = 0
    for fam in FAMILIES:
        for kw in cases(fam):
            k += 1
            record(out, "c%d" % k, os.path.join(MODELS, fam), kw, os.path.join(tmp, "o%d" % k))
        for q in ("4bit", "8bit"):
            src = os.path.join(MODELS, fam + "-" + q)
            if os.path.isdir(src):
                k += 1
                record(out, "c%d" % k, src, dict(dequantize=True), os.path.join(tmp, "o%d" % k))
                k += 1
                record(out, "c%d" % k, src, dict(dequantize=True, dtype="bfloat16"), os.path.join(tmp, "o%d" % k))
    global SHARD_BYTES
    for fam, kw, lim in (("llama-tiny", dict(quantize=True, q_bits=4, q_group_size=32), 30000),
                         ("qwen3-tiny", dict(), 100000),
                         ("gemma3-tiny", dict(quantize=True, quant_predicate="mixed_2_6"), 20000)):
        SHARD_BYTES = lim
        k += 1
        record(out, "c%d" % k, os.path.join(MODELS, fam), kw, os.path.join(tmp, "o%d" % k))
    SHARD_BYTES = None
    for src in make_hf_models():
        real = hf_source(src, tmp)
        for kw in (dict(quantize=True, q_bits=4, q_group_size=32), dict(quantize=True, q_bits=3, q_group_size=64),
                   dict(quantize=True, quant_predicate="mixed_3_6"), dict(dtype="float16"),
                   dict(quantize=True, q_bits=8, q_group_size=64, dtype="float32"), dict()):
            k += 1
            record(out, "c%d" % k, src, kw, os.path.join(tmp, "o%d" % k), real)
    shutil.rmtree(tmp)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")
    subprocess.run(["zstd", "-q", "-19", "-f", "--rm", OUT], check=True)
    print("cases:", k, file=sys.stderr)


if __name__ == "__main__":
    main()
