#!/usr/bin/env python3
"""bench/families/table.py OUT.jsonl HEADER - the table of bench/families/run.sh: per shape and
engine, prefill and decode tokens/s over the quiet runs (min / median / max), and ours / llama.cpp
of the medians.  Contended runs (stall above the limit after three tries) are counted, not used."""
import json, statistics, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(sys.argv[2] if len(sys.argv) > 2 else "")
print()
print("| shape | engine | prefill t/s (min / median / max) | decode t/s (min / median / max) | quiet runs | CPU stall % (max) |")
print("|---|---|---|---|---|---|")
med = {}
for shape in dict.fromkeys(r["shape"] for r in rows):
    for eng in ("ours", "llama.cpp"):
        rs = [r for r in rows if r["shape"] == shape and r["engine"] == eng]
        q = [r for r in rs if r["quiet"]]
        if not q:
            print(f"| {shape} | {eng} | - | - | 0 of {len(rs)} | - |")
            continue
        pp = sorted(r["pp_tps"] for r in q)
        tg = sorted(r["tg_tps"] for r in q)
        med[shape, eng] = (statistics.median(pp), statistics.median(tg))
        print(f"| {shape} | {eng} | {pp[0]:.1f} / {statistics.median(pp):.1f} / {pp[-1]:.1f} | "
              f"{tg[0]:.2f} / {statistics.median(tg):.2f} / {tg[-1]:.2f} | {len(q)} of {len(rs)} | "
              f"{max(r['stall_pct'] for r in q):.1f} |")
print()
for shape in dict.fromkeys(r["shape"] for r in rows):
    if (shape, "ours") in med and (shape, "llama.cpp") in med:
        o, l = med[shape, "ours"], med[shape, "llama.cpp"]
        print(f"{shape}: ours / llama.cpp prefill {o[0] / l[0]:.2f}x, decode {o[1] / l[1]:.2f}x")
