#!/usr/bin/env python3
"""peer_mlx.py - times mlx-lm on this CPU (mlx[cpu]) like bench_gen: load,
load-to-first-token (16 tokens), prefill tokens/s on the pp-token prompt,
greedy decode tokens/s over tg tokens, peak RSS; one JSON line.  Same prompt
ids as bench_gen.c.  (mlx's CPU backend picks its own thread count.)

usage: peer_mlx.py MODEL_DIR [pp=512] [tg=128]
"""
import json
import resource
import sys
import time

from prompt_ids import prompt_ids


def main():
    path = sys.argv[1]
    pp = int(sys.argv[2]) if len(sys.argv) > 2 else 512
    tg = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    t0 = time.perf_counter()
    import mlx.core as mx
    mx.set_default_device(mx.cpu)
    from mlx_lm.models.cache import make_prompt_cache
    from mlx_lm.utils import load_model
    from pathlib import Path
    model, _ = load_model(Path(path))
    t_load = time.perf_counter() - t0
    ids = prompt_ids(max(pp, 16))
    cache = make_prompt_cache(model)
    y = mx.argmax(model(mx.array(ids[:16])[None], cache=cache)[0, -1])
    mx.eval(y)
    t_first = time.perf_counter() - t0
    cache = make_prompt_cache(model)
    t1 = time.perf_counter()
    y = mx.argmax(model(mx.array(ids[:pp])[None], cache=cache)[0, -1])
    mx.eval(y)
    t_pp = time.perf_counter() - t1
    t1 = time.perf_counter()
    for _ in range(tg):
        y = mx.argmax(model(y.reshape(1, 1), cache=cache)[0, -1])
        mx.eval(y)
    t_tg = time.perf_counter() - t1
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"engine": "mlx-lm", "load_s": round(t_load, 3), "ttft_s": round(t_first, 3), "pp": pp,
                      "pp_tps": round(pp / t_pp, 2), "tg": tg, "tg_tps": round(tg / t_tg, 3),
                      "rss_mb": round(rss, 1)}))


if __name__ == "__main__":
    main()
