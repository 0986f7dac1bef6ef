#!/usr/bin/env python3
"""bench/vlm/table.py OUT.jsonl [HEAD.txt] - the markdown table of bench/vlm/run.sh: per engine
the median (min-max) over its quiet rounds (over all of them, marked 0/N, when none ran
quiet), then the ratios of ours to each peer (from medians)."""
import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if len(sys.argv) > 2 and sys.argv[2] != "-":
    print(open(sys.argv[2]).read().rstrip())
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
shape = sys.argv[3] if len(sys.argv) > 3 else "smolvlm"
title = {"smolvlm": "SmolVLM-256M shape (SigLIP-B/16-512 + SmolLM2-135M)",
         "qwen25vl3b": "Qwen2.5-VL-3B shape (bench/vlm/make_qwen.py)"}.get(shape, shape)
print(f"{title}, random weights, 4-bit; image 640x480 (bench/models/vlm/photo.png); {cpu}")
print()
by, total = {}, {}
for r in rows:
    total[r["engine"]] = total.get(r["engine"], 0) + 1
    by.setdefault(r["engine"], []).append(r)
# medians over an engine's quiet runs when it has any (its contended runs are only counted)
by = {e: ([r for r in rs if r.get("quiet")] or rs) for e, rs in by.items()}
NAMES = {"ours": "ours: mlx-tools mlx-vlm (C)", "ours-int8": "ours, --int8 (int8 activations)", "llama": "llama.cpp llama-mtmd-cli (Q4_0 + f16 mmproj)",
         "llama-f32": "llama.cpp llama-mtmd-cli (Q4_0 + f32 mmproj)", "mlx-vlm": "mlx-vlm 0.7.10 (Python, mlx CPU)"}


def med(rs, k):
    v = [r[k] for r in rs if r.get(k) is not None]
    return (statistics.median(v), min(v), max(v)) if v else None


def fmt(t, nd=2):
    if t is None:
        return "-"
    m, lo, hi = t
    return f"{m:.{nd}f} ({lo:.{nd}f}-{hi:.{nd}f})"


print("| engine | tiles (images encoded) | image tokens | prompt tokens | image encode s | encode s per tile or image | prompt tok/s "
      "| generation tok/s | gen tokens | peak RSS MB | wall s | quiet runs |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
stats = {}
for e, rs in by.items():
    enc = med(rs, "encode_s")
    tiles = rs[0].get("tiles") or 0
    per = (enc[0] / tiles, enc[1] / tiles, enc[2] / tiles) if enc and tiles else None
    p, g = med(rs, "prompt_tps"), med(rs, "gen_tps")
    stats[e] = (enc, p, g)
    print(f"| {NAMES.get(e, e)} | {tiles} | {rs[0].get('image_tokens') or '-'} | {rs[0].get('prompt_tokens')} "
          f"| {fmt(enc)} | {fmt(per)} | {fmt(p, 1)} | {fmt(g, 1)} | {rs[0].get('gen_tokens')} "
          f"| {max(r['peak_rss_mb'] for r in rs if r.get('peak_rss_mb'))} | {fmt(med(rs, 'wall_s'), 1)} "
          f"| {sum(bool(r['quiet']) for r in rs)}/{total[e]} |")
notes = []
for e, rs in by.items():
    r = rs[0]
    if r.get("encode_extrapolated"):
        notes.append(f"{NAMES.get(e, e)}: cut-down workload (bench/vlm/peers.py mlxvlm-parts): image encode = "
                     f"per-tile time x {r['tiles']} tiles (measured on {r['encode_extrapolated']}), prompt tok/s over "
                     f"the first {r.get('prefill_tokens')} prompt tokens, generation tok/s over {r['gen_tokens']} tokens.")
for n in notes:
    print()
    print(n)
bases = [b for b in ("ours", "ours-int8") if b in stats]
if bases:
    print()
    print("| ours vs peer | image encode (speed-up: peer time / ours) | prompt tok/s (ours / peer) | generation tok/s (ours / peer) |")
    print("|---|---|---|---|")
    ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
    for b in bases:
        oe, op, og = stats[b]
        for e, (pe, pp, pg) in stats.items():
            if e.startswith("ours"):
                continue
            c = " (contended runs)" if not all(any(r.get("quiet") for r in by[x]) for x in (e, b)) else ""
            print(f"| {'ours' if b == 'ours' else 'ours --int8'} vs {NAMES.get(e, e)}{c} | {ratio(pe[0], oe[0]) if pe and oe else '-'} "
                  f"| {ratio(op[0], pp[0]) if op and pp else '-'} | {ratio(og[0], pg[0]) if og and pg else '-'} |")
