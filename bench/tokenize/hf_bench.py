#!/usr/bin/env python3
"""hf_bench.py - HF `tokenizers` encode throughput on the test corpus, one
thread (RAYON_NUM_THREADS=1): per-line encode and encode_batch.
Usage: RAYON_NUM_THREADS=1 python3 hf_bench.py tokenizer.json[.zst] corpus.txt reps
Prints: single MB/s tokens/s and batch MB/s tokens/s, by process CPU time
(robust on a busy machine; with one Rayon thread CPU time is the work done)."""
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
from tokenizers import Tokenizer  # noqa: E402


def main():
    path, corpus, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    raw = subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout if path.endswith(".zst") \
        else open(path, "rb").read()
    tok = Tokenizer.from_str(raw.decode("utf-8"))
    tok.no_truncation()
    tok.no_padding()
    lines = [json.loads(l) for l in open(corpus, encoding="utf-8")]
    nbytes = sum(len(l.encode("utf-8")) for l in lines)
    t0 = time.process_time(); toks = 0
    for _ in range(reps):
        for l in lines:
            toks += len(tok.encode(l, add_special_tokens=True).ids)
    dt = time.process_time() - t0
    t0 = time.process_time(); btoks = 0
    for _ in range(reps):
        for e in tok.encode_batch(lines, add_special_tokens=True):
            btoks += len(e.ids)
    bdt = time.process_time() - t0
    print(f"single MB/s {nbytes * reps / dt / 1e6:.2f} tokens/s {toks / dt:.0f} "
          f"batch MB/s {nbytes * reps / bdt / 1e6:.2f} tokens/s {btoks / bdt:.0f}")


if __name__ == "__main__":
    main()
