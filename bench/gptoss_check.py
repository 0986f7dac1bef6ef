#!/usr/bin/env python3
"""gptoss_check.py - the benchmark model against mlx-lm before timing it: the log-probability
of each next token of an N-token pseudo-random prompt (past the 128-token sliding window) from
mlx-lm's gpt_oss in float32 (the quantized weights' scales widened, so that only summation
order differs) against `mlx-gen --score` on the same ids; prints one JSON line with the
largest difference (about 3e-4 at N = 300).

usage: gptoss_check.py MODEL_DIR MLX_GEN [N=300]
"""
import json
import pathlib
import random
import subprocess
import sys

import mlx.core as mx
from mlx_lm.utils import load_model


def main():
    d, gen = pathlib.Path(sys.argv[1]), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    model, _ = load_model(d)
    model.set_dtype(mx.float32)
    rnd = random.Random(3)
    ids = [1] + [rnd.randrange(100, 30000) for _ in range(n - 1)]
    lg = model(mx.array([ids]))[0].astype(mx.float32)
    lp = lg - mx.logsumexp(lg, axis=-1, keepdims=True)
    want = [float(lp[i, ids[i + 1]]) for i in range(n - 1)]
    out = subprocess.run([gen, "-m", str(d), "--score", "-q"], input=json.dumps({"ids": ids}) + "\n",
                         capture_output=True, text=True, check=True).stdout
    got = json.loads(out)["logprobs"]
    diff = max(abs(a - b) for a, b in zip(want, got))
    print(json.dumps({"check": "mlx-lm float32 logprobs", "tokens": n, "max_abs_diff": diff,
                      "ok": len(got) == len(want) and diff < 1e-2}))


if __name__ == "__main__":
    main()
