#!/usr/bin/env python3
"""Goldens for mlx-quant export-gguf: the bytes each GGUF tensor must hold, from
llama.cpp's reference quantizers as ported in the `gguf` pip package (gguf.quants),
after convert_hf_to_gguf.py's q/k row permutation.  Also the lossless MLX 4-bit
group-32 -> Q4_1 case (scales -> d, biases -> m, same codes), on a float16 model
made by mlx_lm.convert.  Output: tests/data/convert/gguf_goldens.txt

Lines:  case <model dir> <type>   then   t <gguf name> <ggml type id> <sha256 of data>   then end
Usage: python tests/gen/gen_gguf_goldens.py   (from the repository root)

Check with llama.cpp (pip llama-cpp-python), not part of CI:
  python tests/gen/gen_gguf_goldens.py --llama-cpp build/bin
exports llama-tiny (f32, f16, q8_0) and an MLX f16 q4 g32 conversion (q4_1) with
build/bin/mlx-quant, runs llama.cpp greedily on the prompt ids and prints its
tokens next to build/bin/mlx-gen's.
"""
import contextlib
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import tempfile

import gguf
import numpy as np
from gguf.quants import quantize
from mlx_lm.convert import convert

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests/data/convert/gguf_goldens.txt")
NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
         "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
         "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
T = gguf.GGMLQuantizationType
TYPES = {"f32": T.F32, "f16": T.F16, "q8_0": T.Q8_0, "q4_0": T.Q4_0, "q4_1": T.Q4_1}


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        dt = {"F32": np.float32, "F16": np.float16, "U32": np.uint32}[v["dtype"]]
        out[k] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=dt).reshape(v["shape"])
    return out


def gname(p):
    if p == "model.embed_tokens":
        return "token_embd.weight"
    if p == "model.norm":
        return "output_norm.weight"
    if p == "lm_head":
        return "output.weight"
    parts = p.split(".")
    return "blk.%s.%s.weight" % (parts[2], NAMES[".".join(parts[3:])])


def permute(w, n_head):  # convert_hf_to_gguf.py LlamaModel.permute
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def rows(p, w, cfg):
    if p.endswith("q_proj"):
        return permute(w, cfg["num_attention_heads"])
    if p.endswith("k_proj"):
        return permute(w, cfg.get("num_key_value_heads", cfg["num_attention_heads"]))
    return w


def float_case(out, model, tname):
    cfg = json.load(open(os.path.join(ROOT, model, "config.json")))
    w = load(os.path.join(ROOT, model, "model.safetensors"))
    out.append("case %s %s" % (model, tname))
    for k in sorted(w):
        p = k[:-len(".weight")]
        x = rows(p, w[k].astype(np.float32), cfg)
        qt = T.F32 if x.ndim == 1 else TYPES[tname]
        data = x.tobytes() if qt == T.F32 else x.astype(np.float16).tobytes() if qt == T.F16 else quantize(x, qt).tobytes()
        out.append("t %s %d %s" % (gname(p), int(qt), hashlib.sha256(data).hexdigest()))
    out.append("end")


def q41_case(out, src, label):
    tmp = tempfile.mkdtemp()
    dst = os.path.join(tmp, "m")
    with contextlib.redirect_stdout(io.StringIO()):
        convert(os.path.join(ROOT, src), dst, quantize=True, q_bits=4, q_group_size=32, dtype="float16")
    cfg = json.load(open(os.path.join(dst, "config.json")))
    w = load(os.path.join(dst, "model.safetensors"))
    st_sha = hashlib.sha256(open(os.path.join(dst, "model.safetensors"), "rb").read()).hexdigest()
    out.append("case %s q4_1 %s %s" % (src, label, st_sha))
    for k in sorted(w):
        if not k.endswith(".weight"):
            continue
        p = k[:-len(".weight")]
        if p + ".scales" in w:
            q = w[k]
            codes = ((q[..., None] >> (np.arange(8, dtype=np.uint32) * 4)) & 15).astype(np.uint8).reshape(q.shape[0], -1)
            s, b = w[p + ".scales"], w[p + ".biases"]
            codes, s, b = rows(p, codes, cfg), rows(p, s, cfg), rows(p, b, cfg)
            nb = codes.shape[1] // 32
            c = codes.reshape(-1, nb, 2, 16)
            qs = c[..., 0, :] | (c[..., 1, :] << 4)
            blk = np.concatenate([s.reshape(-1, nb, 1).view(np.uint8), b.reshape(-1, nb, 1).view(np.uint8),
                                  qs], axis=-1)
            out.append("t %s %d %s" % (gname(p), int(T.Q4_1), hashlib.sha256(blk.tobytes()).hexdigest()))
        else:
            x = w[k].astype(np.float32)
            out.append("t %s %d %s" % (gname(p), int(T.F32), hashlib.sha256(x.tobytes()).hexdigest()))
    out.append("end")
    shutil.rmtree(tmp)


def main():
    out = []
    for model in ("tests/data/models/llama-tiny", "tests/data/models/llama-tied", "tests/data/models/mistral-tiny"):
        for t in TYPES:
            float_case(out, model, t)
    q41_case(out, "tests/data/models/llama-tiny", "mlx-f16-q4g32")
    with open(OUT, "w") as f:
        f.write("\n".join(out) + "\n")


def llama_cpp_check(bindir):
    import llama_cpp
    tmp = tempfile.mkdtemp()
    mq, gen = os.path.join(bindir, "mlx-quant"), os.path.join(bindir, "mlx-gen")
    src = os.path.join(ROOT, "tests/data/models/llama-tiny")
    q4 = os.path.join(tmp, "q4")
    subprocess.run([mq, "convert", "-m", src, "-o", q4, "-q", "--bits", "4", "--group-size", "32",
                    "--dtype", "float16", "--quiet"], check=True)
    rec = json.dumps({"id": 1, "prompt": "def main():", "max_tokens": 12})

    def mlx_gen(model):
        out = subprocess.run([gen, "-m", model, "--ids", "-q"], input=rec + "\n", capture_output=True, text=True,
                             check=True).stdout
        return json.loads(out)["ids"]

    ids = json.loads(subprocess.run([gen, "-m", src, "--tokenize", "-q"], input=json.dumps(
        {"id": 1, "text": "def main():"}) + "\n", capture_output=True, text=True, check=True).stdout)["ids"]
    for t, model in (("f32", src), ("f16", src), ("q8_0", src), ("q4_1", q4)):
        path = os.path.join(tmp, t + ".gguf")
        subprocess.run([mq, "export-gguf", "-m", model, "-o", path, "--type", t], check=True)
        llm = llama_cpp.Llama(model_path=path, n_ctx=64, verbose=False)
        got = []
        for tok in llm.generate(ids, temp=0.0, top_k=1, repeat_penalty=1.0):
            got.append(tok)
            if len(got) == 12:
                break
        want = mlx_gen(model)
        same = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), len(want))
        print("%-5s llama.cpp %s\n      mlx-gen   %s   (%d/12 leading tokens equal)" % (t, got, want, same))
    shutil.rmtree(tmp)


if __name__ == "__main__":
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "--llama-cpp":
        llama_cpp_check(sys.argv[2])
    else:
        main()
