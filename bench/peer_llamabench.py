#!/usr/bin/env python3
"""peer_llamabench.py - llama.cpp measured by its own llama-bench binary (a
native build named by $LLAMA_BENCH or --bin), printed as one JSON line in
bench_gen's schema: prefill tokens/s on a pp-token prompt, decode tokens/s
over tg tokens after that prompt (llama-bench -d pp: the same context depth as
bench_gen's decode), peak RSS of the llama-bench process.  llama-bench reports
no load or first-token time, and its CPU time is not separable from its
model loads, so none is given.  The KV cache is llama.cpp's default (f16).

usage: peer_llamabench.py MODEL.gguf [threads=2] [pp=512] [tg=128] [reps=2] [--bin PATH]
"""
import argparse
import json
import os
import resource
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("threads", nargs="?", type=int, default=2)
    ap.add_argument("pp", nargs="?", type=int, default=512)
    ap.add_argument("tg", nargs="?", type=int, default=128)
    ap.add_argument("reps", nargs="?", type=int, default=2)
    ap.add_argument("--bin", default=os.environ.get("LLAMA_BENCH", ""))
    a = ap.parse_args()
    exe, path, threads, pp, tg, reps = a.bin, a.model, a.threads, a.pp, a.tg, a.reps
    if not exe or not os.path.exists(exe):
        sys.exit("peer_llamabench: set LLAMA_BENCH to a llama-bench binary")
    res = {}
    for name, extra in (("pp", ["-p", str(pp), "-n", "0"]), ("tg", ["-p", "0", "-n", str(tg), "-d", str(pp)])):
        p = subprocess.run([exe, "-m", path, "-t", str(threads), "-r", str(reps), "-o", "jsonl"] + extra,
                           capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit(f"peer_llamabench: {exe} failed: {p.stderr.strip()[-400:]}")
        rows = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
        res[name] = rows[-1]
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    print(json.dumps({"engine": "llama.cpp", "via": "llama-bench " + res["pp"].get("build_commit", "?"),
                      "threads": threads, "load_s": None, "ttft_s": None,
                      "pp": pp, "pp_tps": round(res["pp"]["avg_ts"], 2), "pp_sd": round(res["pp"]["stddev_ts"], 2),
                      "pp_cpu_s": None, "tg": tg, "tg_tps": round(res["tg"]["avg_ts"], 3),
                      "tg_sd": round(res["tg"]["stddev_ts"], 3), "tg_cpu_s": None,
                      "type_k": res["tg"].get("type_k"), "rss_mb": round(rss, 1)}))


if __name__ == "__main__":
    main()
