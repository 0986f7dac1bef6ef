#!/usr/bin/env python3
"""Goldens for MLX's fp quantization modes (mxfp4, nvfp4, mxfp8): packed matrices, their
mx.dequantize (float32 and the default bfloat16) and mx.quantized_matmul with float32
activations, on this machine's mlx (CPU).

tests/data/fpquant/fpq.safetensors, per case C and mode M:
  C_M_w  U32 [rows, K*bits/32]  packed codes
  C_M_s  U8  [rows, K/g]        scale bytes (E8M0; nvfp4: E4M3)
  C_M_x  F32 [T, K]             activations
  C_M_y  F32 [T, rows]          mx.quantized_matmul(x, w, s, transpose=True, mode=M)
  C_M_ybf16, C_M_yf16           the same for x cast to bfloat16 / float16 (output of that type)
  C_M_d32 F32 [rows, K]         mx.dequantize(w, s, mode=M, dtype=float32)
  C_M_d16 BF16 [rows, K]        mx.dequantize(w, s, mode=M) (its default type)
  q_M_T_{x,w,s}                 mx.quantize of x cast to T (float32, bfloat16, float16)
Cases: "rand" (mx.quantize of normal weights; 37 rows, K 256, T 30), "odd" (nvfp4 only:
random codes, K 48, not a multiple of 32; no dequantize goldens: mlx refuses that shape there), "edge" (hand-made codes: every scale byte of interest --
E8M0 0 (2^-127), 1, 254, 255 (inf); E4M3 0, subnormals 1-7, 0x7e (448), 0x7f/0xff (NaN),
0x80 (-0) -- in their own rows, and for mxfp8 the element codes 0x7f/0xff (NaN) in one row).

Also bind.safetensors (mt_linear_bind cases, see bind_cases) and dequant.txt (sha256 of
`mlx_lm convert -d` outputs of the fp fixtures, see dequant_goldens) and convert.txt
(sha256 of `mlx_lm convert -q --q-mode` outputs, see convert_goldens).

usage: tests/gen/gen_fpquant_goldens.py
"""
import os
import numpy as np
import mlx.core as mx

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests", "data", "fpquant")
GS = {"mxfp4": 32, "nvfp4": 16, "mxfp8": 32}
BITS = {"mxfp4": 4, "nvfp4": 4, "mxfp8": 8}


def case(out, name, mode, w, s, x, deq=True):
    out[f"{name}_{mode}_w"] = w
    out[f"{name}_{mode}_s"] = s
    out[f"{name}_{mode}_x"] = x
    out[f"{name}_{mode}_y"] = mx.quantized_matmul(x, w, s, transpose=True, mode=mode)
    for t, tn in ((mx.bfloat16, "ybf16"), (mx.float16, "yf16")):   # 16-bit activations (--numerics mlx)
        out[f"{name}_{mode}_{tn}"] = mx.quantized_matmul(x.astype(t), w, s, transpose=True, mode=mode)
    if deq:
        out[f"{name}_{mode}_d32"] = mx.dequantize(w, s, mode=mode, dtype=mx.float32)
        out[f"{name}_{mode}_d16"] = mx.dequantize(w, s, mode=mode)


def edge(mode, rng, rows=12, K=128):
    g, bits = GS[mode], BITS[mode]
    if bits == 4:
        w = rng.integers(0, 2**32, size=(rows, K * bits // 32), dtype=np.uint64).astype(np.uint32)
    else:
        b = rng.integers(0, 256, size=(rows, K), dtype=np.uint8)
        b[(b & 0x7F) == 0x7F] = 0x41            # no NaN codes ...
        b[5, 3], b[5, 40] = 0x7F, 0xFF          # ... except in row 5
        b[6, :] = np.arange(K, dtype=np.uint8)  # subnormal and small codes (0x00-0x7f but 0x7f)
        b[6, 0x7F % K] = 0x7E
        w = b.view(np.uint32).reshape(rows, K // 4)
    ng = K // g
    if mode == "nvfp4":
        s = rng.integers(0x30, 0x50, size=(rows, ng), dtype=np.uint8)
        s[0, :] = 0x00
        s[1, :] = np.arange(ng) % 7 + 1         # subnormal E4M3 scales
        s[2, :] = 0x7E
        s[3, 0] = 0x7F
        s[4, 1] = 0xFF
        s[7, :] = 0x80
        s[8, :] = 0xFE
    else:
        s = rng.integers(118, 130, size=(rows, ng), dtype=np.uint8)
        s[0, :] = 0
        s[1, :] = 1
        s[2, :] = 254
        s[3, 0] = 255
        s[4, 2] = 255
        s[8, :] = 253
    x = rng.standard_normal((5, K)).astype(np.float32)
    x[4, :] = 1e-30                              # tiny activations: products in the subnormal range
    return mx.array(w), mx.array(s), mx.array(x)


def write_st(path, tensors):
    """A safetensors file by hand (mx.save_safetensors cannot write the F8 dtype names):
    tensors = [(name, dtype string, shape, bytes)]."""
    import json, struct
    hdr, off, data = {}, 0, b""
    for name, dt, shape, raw in tensors:
        hdr[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        data += raw
    h = json.dumps(hdr, separators=(",", ":")).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def bind_cases(rng):
    """bind.safetensors: modules for mt_linear_bind with config {"quantization": {"group_size": 32,
    "bits": 4, "mode": "mxfp4", "nv": {"group_size": 16, "bits": 4, "mode": "nvfp4"}, "nvg": (same)}}:
    u8 (U8 scales), e8m0 (F8_E8M0 scales), f16 (F16 scales: refused), bias (has .biases:
    refused), nv (nvfp4, F8_E4M3 scales), nvg (nvfp4 with a .global_scale: refused)."""
    w = rng.integers(0, 2**32, size=(4, 8), dtype=np.uint64).astype(np.uint32).tobytes()
    s2 = np.full((4, 2), 127, dtype=np.uint8).tobytes()
    s4 = np.full((4, 4), 0x38, dtype=np.uint8).tobytes()
    t = []
    for m in ("u8", "e8m0", "f16", "bias"):
        t.append((f"{m}.weight", "U32", (4, 8), w))
    t += [("u8.scales", "U8", (4, 2), s2), ("e8m0.scales", "F8_E8M0", (4, 2), s2),
          ("f16.scales", "F16", (4, 2), np.ones((4, 2), np.float16).tobytes()),
          ("bias.scales", "U8", (4, 2), s2), ("bias.biases", "U8", (4, 2), s2)]
    for m in ("nv", "nvg"):
        t += [(f"{m}.weight", "U32", (4, 8), w), (f"{m}.scales", "F8_E4M3", (4, 4), s4)]
    t.append(("nvg.global_scale", "F32", (1,), np.ones(1, np.float32).tobytes()))
    write_st(os.path.join(OUT, "bind.safetensors"), t)


DEQ_CASES = [("llama-fpq-mxfp4", ""), ("qwen3moe-fpq-nvfp4", ""), ("llama-fpq-mxfp8", ""),
             ("qwen3moe-fpq-mxfp4", "float16")]


def dequant_goldens():
    """dequant.txt: sha256 of what `mlx_lm convert -d [--dtype T]` writes for fp-quantized
    fixtures (one line per file: <fixture> <dtype or -> <file> <sha256>)."""
    import hashlib, subprocess, sys, tempfile
    lines = []
    for name, dt in DEQ_CASES:
        dst = os.path.join(tempfile.mkdtemp(prefix="fpq-deq-"), "o")
        cmd = [sys.executable, "-m", "mlx_lm", "convert", "--hf-path", os.path.join(ROOT, "tests", "data", "models", name),
               "--mlx-path", dst, "-d"] + (["--dtype", dt] if dt else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for f in ("config.json", "model.safetensors", "model.safetensors.index.json"):
            with open(os.path.join(dst, f), "rb") as fh:
                lines.append(f"{name} {dt or '-'} {f} {hashlib.sha256(fh.read()).hexdigest()}")
    with open(os.path.join(OUT, "dequant.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def quant_cases(out, rng):
    """q_<mode>_<dtype>_{x,w,s}: mx.quantize of x (float32 values of that dtype) in each mode:
    normal rows of several magnitudes, a zero row, exact E2M1 ties, tiny and large values."""
    rows, K = 12, 128
    base = rng.standard_normal((rows, K)).astype(np.float32)
    base *= np.array([1e-3, 1e-2, 0.1, 1, 10, 100, 1e4, 1, 1, 1, 1e-30, 1], np.float32)[:, None]
    base[7, :] = 0.0
    ties = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0], np.float32)
    base[8, :] = np.tile(np.concatenate([ties, -ties]), K // 16)   # group max 6: scale 1, exact midpoints
    base[9, :] = base[8, :] * 0.5 ** 10
    for dt, dn in ((mx.float32, "float32"), (mx.bfloat16, "bfloat16"), (mx.float16, "float16")):
        x = mx.array(base).astype(dt)
        for mode in ("mxfp4", "nvfp4", "mxfp8"):
            w, sc = mx.quantize(x, mode=mode)
            out[f"q_{mode}_{dn}_x"] = x.astype(mx.float32)
            out[f"q_{mode}_{dn}_w"] = w
            out[f"q_{mode}_{dn}_s"] = sc


CONV_CASES = [("llama-fpq", "mxfp4", ""), ("llama-fpq", "nvfp4", ""), ("llama-fpq", "mxfp8", ""),
              ("qwen3moe-fpq", "mxfp4", ""), ("qwen3moe-fpq", "nvfp4", "bfloat16"),
              ("qwen3moe-fpq", "mxfp8", "float16"), ("llama-tiny", "mxfp4", "bfloat16")]


def convert_goldens():
    """convert.txt: sha256 of what `mlx_lm convert -q --q-mode M [--dtype T]` writes
    (<fixture> <mode> <dtype or -> <file> <sha256>)."""
    import hashlib, subprocess, sys, tempfile
    lines = []
    for name, mode, dt in CONV_CASES:
        dst = os.path.join(tempfile.mkdtemp(prefix="fpq-conv-"), "o")
        cmd = [sys.executable, "-m", "mlx_lm", "convert", "--hf-path", os.path.join(ROOT, "tests", "data", "models", name),
               "--mlx-path", dst, "-q", "--q-mode", mode] + (["--dtype", dt] if dt else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for f in ("config.json", "model.safetensors", "model.safetensors.index.json"):
            with open(os.path.join(dst, f), "rb") as fh:
                lines.append(f"{name} {mode} {dt or '-'} {f} {hashlib.sha256(fh.read()).hexdigest()}")
    with open(os.path.join(OUT, "convert.txt"), "w") as fh:
        fh.write("\n".join(lines) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    out = {}
    for mode in ("mxfp4", "nvfp4", "mxfp8"):
        W = mx.array(rng.standard_normal((37, 256)).astype(np.float32) * 0.05)
        w, s = mx.quantize(W, mode=mode)
        case(out, "rand", mode, w, s, mx.array(rng.standard_normal((30, 256)).astype(np.float32)))
        case(out, "edge", mode, *edge(mode, rng))
    # mx.quantize / mx.dequantize refuse nvfp4 rows of 48; quantized_matmul takes them
    w = rng.integers(0, 2**32, size=(21, 6), dtype=np.uint64).astype(np.uint32)
    s = rng.integers(0x30, 0x50, size=(21, 3), dtype=np.uint8)
    case(out, "odd", "nvfp4", mx.array(w), mx.array(s), mx.array(rng.standard_normal((9, 48)).astype(np.float32)),
         deq=False)
    quant_cases(out, np.random.default_rng(11))
    mx.save_safetensors(os.path.join(OUT, "fpq.safetensors"), out)
    bind_cases(rng)
    dequant_goldens()
    convert_goldens()
    print("wrote", os.path.join(OUT, "fpq.safetensors"), len(out), "tensors")


if __name__ == "__main__":
    main()
