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
            "mixtral-tiny", "qwen3moe-tiny"]


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


def record(out, cid, src, kw, dst):
    out.append(" ".join(["case", cid, src] + cli_args(kw)))
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            convert(os.path.join(ROOT, src), dst, **kw)
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
    shutil.rmtree(tmp)
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")
    subprocess.run(["zstd", "-q", "-19", "-f", "--rm", OUT], check=True)
    print("cases:", k, file=sys.stderr)


if __name__ == "__main__":
    main()
