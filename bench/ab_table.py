#!/usr/bin/env python3
"""ab_table.py - medians of bench/ab.sh's alternating runs: per model, ours
(float kernels), ours (int8 activations) and llama.cpp; prefill and decode
tokens/s by wall clock and per CPU-second (process CPU time, all threads),
ratios to llama.cpp, and decode's share of the bandwidth roofline (triad
bandwidth / bytes read per decoded token: weights plus the cached keys and
values attended to; the higher of the triad runs).

With --best, each figure is the engine's best run instead of the median: on
a shared host whose neighbours load memory and clocks, the least disturbed run
is the steadier estimate of what the code costs (every engine gets the same).

usage: ab_table.py AB.jsonl [--best]"""
import json
import statistics
import sys


BEST = "--best" in sys.argv[2:]


def med(xs):
    """The median (or with --best the highest) of the values given."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return max(xs) if BEST else statistics.median(xs)


def fmt(v, nd=2):
    return "-" if v is None else f"{v:.{nd}f}"


def tg_kv_bytes(runs):
    """Bytes of cached keys/values a decode step reads, averaged over the tg
    run: it attends to pp .. pp + tg - 1 earlier positions (the same for every
    engine: same model dimensions, float16 caches)."""
    for d in runs:
        if d.get("kv_pos_bytes") and d.get("pp") is not None and d.get("tg"):
            return d["kv_pos_bytes"] * (d["pp"] + (d["tg"] - 1) / 2)
    return 0


def main():
    runs, bw, cur, loads = {}, [], None, []
    for line in open(sys.argv[1]):
        line = line.strip()
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        if "triad_gbs" in d:
            bw.append(d["triad_gbs"])
        elif "load" in d:
            loads.append(d["load"])
        elif "model" in d:
            cur = d
            runs.setdefault(d["model"], {"meta": d})
        elif cur is not None and "engine" in d:
            key = d["engine"] if d["engine"] != "ours" else "ours-" + d.get("qmath", "float")
            runs[cur["model"]].setdefault(key, []).append(d)
    bwm = max(bw) if bw else None
    print(f"statistic: {'best run' if BEST else 'median'} of each engine's runs")
    print(f"memory bandwidth (STREAM triad): {fmt(bwm)} GB/s (runs: {', '.join(fmt(b) for b in bw)}); load: {' -> '.join(loads)}")
    engines = ["ours-float", "ours-int8", "llama.cpp"]
    hdr = f"{'model':<15} {'metric':<16}" + "".join(f"{e:>12}" for e in engines) + f"{'f/llama':>9}{'i8/llama':>9}{'i8/f':>7}"
    print(hdr)
    print("-" * len(hdr))
    for m, r in runs.items():
        meta = r["meta"]
        n = min(len(r.get(e, [])) for e in engines if e in r)
        def metric(e, f):
            return med([f(d) for d in r.get(e, [])])
        rows = [("pp tok/s (wall)", lambda d: d.get("pp_tps")),
                ("pp tok/CPU-s", lambda d: d["pp"] / d["pp_cpu_s"] if d.get("pp_cpu_s") else None),
                ("tg tok/s (wall)", lambda d: d.get("tg_tps")),
                ("tg tok/CPU-s", lambda d: d["tg"] / d["tg_cpu_s"] if d.get("tg_cpu_s") else None)]
        for name, f in rows:
            v = [metric(e, f) for e in engines]
            rat = [v[0] / v[2] if v[0] and v[2] else None, v[1] / v[2] if v[1] and v[2] else None,
                   v[1] / v[0] if v[0] and v[1] else None]
            print(f"{m:<15} {name:<16}" + "".join(f"{fmt(x):>12}" for x in v) + "".join(f"{fmt(x):>9}" for x in rat[:2]) + f"{fmt(rat[2]):>7}")
        for name, bf, tf in [("batch tok/s", lambda d: d.get("batch_tps") or None, lambda d: d.get("tg_tps")),
                             ("batch tok/CPU-s",
                              lambda d: max(d["tg"] // 4, 1) * d["batch"] / d["batch_cpu_s"] if d.get("batch_cpu_s") else None,
                              lambda d: d["tg"] / d["tg_cpu_s"] if d.get("tg_cpu_s") else None)]:
            bt = [metric(e, bf) for e in engines[:2]]
            tg = [metric(e, tf) for e in engines[:2]]
            if any(bt):
                print(f"{m:<15} {name:<16}" + "".join(f"{fmt(x):>12}" for x in bt) +
                      f"   (x{fmt(bt[0] / tg[0] if bt[0] and tg[0] else None)}, x{fmt(bt[1] / tg[1] if bt[1] and tg[1] else None)} own tg)")
        wb = meta.get("weight_bytes")
        if bwm and wb:
            kvb = tg_kv_bytes(r.get("ours-float", []) + r.get("ours-int8", []))
            roof = bwm * 1e9 / (wb + kvb)
            sh = [metric(e, lambda d: d.get("tg_tps")) for e in engines]
            print(f"{m:<15} {'tg roofline':<16}" + "".join(f"{fmt(100 * s / roof, 0) + '%' if s else '-':>12}" for s in sh) +
                  f"   ({wb / 1e6:.0f} MB weights + {kvb / 1e6:.0f} MB KV per token -> {roof:.1f} tok/s; {n} runs each)")
    print("ratios > 1: the first named is faster.  GGUF Q4_0 ~ MLX q4 g64 (4.5 bpw); Q4_1 = MLX q4 g32 exactly (5.0 bpw).")


if __name__ == "__main__":
    main()
