#!/usr/bin/env python3
"""Generate tests/data/quant/*.safetensors: MLX affine quantize/dequantize goldens.

For each scale dtype (float16, bfloat16, float32) one file affine_<dtype>.safetensors with
  x                      the input weights [ROWS, K] in that dtype
  w_<b>_<g>, scales_<b>_<g>, biases_<b>_<g>   = mx.quantize(x, group_size=g, bits=b) (CPU)
  deq_<b>_<g>            = mx.dequantize(w, scales, biases, g, b) (dtype = scales dtype)
for bits in {2,3,4,5,6,8} x group_size in {32,64,128}.
fp.safetensors holds mxfp4 / mxfp8 / nvfp4 (w, scales, deq as float32) for float32 input.

Requires mlx (pip, cpu).  Run from the repository root:  python3 tests/gen/gen_quant_goldens.py
"""
import os
import numpy as np
import mlx.core as mx

ROWS, K = 8, 256
OUT = "tests/data/quant"
# Stress mode (not committed): QUANT_STRESS_ROWS=N QUANT_OUT=/tmp/q adds N random rows of varied
# distributions; run  MT_QUANT_DIR=/tmp/q build/tests/test_quant  against it.
STRESS = int(os.environ.get("QUANT_STRESS_ROWS", "0"))
OUT = os.environ.get("QUANT_OUT", OUT)


def make_input(rng):
    x = np.zeros((ROWS, K), dtype=np.float32)
    x[0] = rng.standard_normal(K) * 0.02                      # typical weights
    x[1] = rng.standard_normal(K) * 50.0                      # large range
    x[2] = -np.abs(rng.standard_normal(K)) - 0.1              # all-negative groups
    x[3] = np.abs(rng.standard_normal(K)) + 0.3               # all-positive groups
    x[4] = 0.75                                               # constant groups
    x[4, 128:] = -1.5
    x[5] = rng.uniform(-1e-4, 1e-4, K)                        # tiny values
    x[5, :32] = 0.0                                           # an all-zero group
    x[6] = np.round(rng.standard_normal(K) * 4) / 4           # many exact ties
    x[7] = rng.standard_normal(K) * rng.uniform(1e-3, 10, K // 32).repeat(32)  # mixed per-group ranges
    x[7, 64:96] = 3.0                                         # constant positive group
    x[7, 96:128] = -2.0                                       # constant negative group
    if STRESS:
        n = STRESS
        scale = rng.choice([1e-6, 1e-3, 0.02, 1.0, 30.0, 1e4], size=(n, 1))
        kind = rng.integers(0, 4, size=(n, 1))
        r = rng.standard_normal((n, K)) * scale
        r = np.where(kind == 1, -np.abs(r), r)                              # all negative
        r = np.where(kind == 2, np.round(r / scale * 2) * scale / 2, r)    # ties
        r = np.where(kind == 3, rng.uniform(-1, 1, (n, K)) ** 5 * scale, r)  # heavy tails
        x = np.concatenate([x, r.astype(np.float32)])
    return x


def main():
    os.makedirs(OUT, exist_ok=True)
    mx.set_default_device(mx.cpu)
    rng = np.random.default_rng(20261123)
    x32 = make_input(rng)
    for dt, name in [(mx.float16, "float16"), (mx.bfloat16, "bfloat16"), (mx.float32, "float32")]:
        x = mx.array(x32).astype(dt)
        out = {"x": x}
        for bits in (2, 3, 4, 5, 6, 8):
            for g in (32, 64, 128):
                w, s, b = mx.quantize(x, group_size=g, bits=bits)
                d = mx.dequantize(w, s, b, group_size=g, bits=bits)
                assert d.dtype == dt and s.dtype == dt
                key = f"{bits}_{g}"
                out["w_" + key], out["scales_" + key], out["biases_" + key], out["deq_" + key] = w, s, b, d
        mx.eval(out)
        mx.save_safetensors(f"{OUT}/affine_{name}.safetensors", out)

    xf = mx.array(x32)
    out = {}
    for mode in ("mxfp4", "mxfp8", "nvfp4"):
        w, s = mx.quantize(xf, mode=mode)
        out["w_" + mode], out["scales_" + mode] = w, s
        out["deq_" + mode] = mx.dequantize(w, s, mode=mode, dtype=mx.float32)
    gs = mx.array(37.5, dtype=mx.float32)
    w, s = mx.quantize(xf, mode="nvfp4", global_scale=gs)
    out["w_nvfp4_gs"], out["scales_nvfp4_gs"], out["global_scale"] = w, s, gs.reshape(1)
    out["deq_nvfp4_gs"] = mx.dequantize(w, s, mode="nvfp4", global_scale=gs, dtype=mx.float32)
    mx.eval(out)
    mx.save_safetensors(f"{OUT}/fp.safetensors", out)


if __name__ == "__main__":
    main()
