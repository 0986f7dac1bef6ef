#!/usr/bin/env python3
"""table.py - prints bench/run.sh's results (JSON lines) as a table of ours /
llama.cpp / mlx-lm with ratios, plus the triad bandwidth and decode's share of
the bandwidth roofline (bandwidth / bytes read per decoded token: weights plus
the cached keys and values attended to).  Runs of
ours with MT_QMATH=int8 (int8 activations) get their own rows.

usage: table.py RESULTS.jsonl"""
import json
import sys


def fmt(v, nd=2):
    return "-" if v is None else f"{v:.{nd}f}"


def ratio(a, b):
    return None if a is None or not b else a / b


def main():
    rows, bw, cur = [], None, None
    for line in open(sys.argv[1]):
        line = line.strip()
        if not line.startswith("{"):
            continue
        d = json.loads(line)
        if "triad_gbs" in d:
            bw = d["triad_gbs"]
        elif "model" in d:
            cur = dict(d)
            rows.append(cur)
        elif cur is not None and "engine" in d:
            key = "ours-int8" if d["engine"] == "ours" and d.get("qmath") == "int8" else d["engine"]
            cur[key] = d
    print(f"memory bandwidth (STREAM triad, 2 threads): {fmt(bw)} GB/s")
    hdr = f"{'model':<9} {'ours':<6} {'gguf':<5} {'metric':<14} {'ours':>9} {'llama.cpp':>10} {'ratio':>6} {'mlx-lm':>9} {'ratio':>6}"
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        o, p, x = r.get("ours", {}), r.get("llama.cpp", {}), r.get("mlx-lm", {})
        metrics = [("pp%s tok/s" % o.get("pp", ""), "pp_tps", 1), ("tg%s tok/s" % o.get("tg", ""), "tg_tps", 1),
                   ("ttft s", "ttft_s", -1), ("peak RSS MiB", "rss_mb", -1)]
        for name, key, sense in metrics:
            a, b, c = o.get(key), p.get(key), x.get(key)
            # ratio > 1 means ours is better (for times and memory: peer / ours)
            rb = ratio(a, b) if sense > 0 else ratio(b, a)
            rc = ratio(a, c) if sense > 0 else ratio(c, a)
            print(f"{r['model']:<9} {r['variant']:<6} {r['gguf']:<5} {name:<14} {fmt(a):>9} {fmt(b):>10} {fmt(rb):>6} {fmt(c):>9} {fmt(rc):>6}")
        i8 = r.get("ours-int8")
        if i8:
            for name, key in [("pp%s tok/s" % i8.get("pp", ""), "pp_tps"), ("tg%s tok/s" % i8.get("tg", ""), "tg_tps")]:
                a, b = i8.get(key), p.get(key)
                print(f"{r['model']:<9} {'int8':<6} {r['gguf']:<5} {name:<14} {fmt(a):>9} {fmt(b):>10} {fmt(ratio(a, b)):>6}"
                      f"   (MT_QMATH=int8: x{fmt(ratio(a, o.get(key)))} ours float)")
        bt = o.get("batch_tps")
        if bt:
            print(f"{r['model']:<9} {r['variant']:<6} {'':<5} {'batch%d tok/s' % o.get('batch', 0):<14} {fmt(bt):>9}"
                  f"   (x{fmt(ratio(bt, o.get('tg_tps')))} our tg)")
        wb = r.get("weight_bytes")
        if wb and o.get("rss_mb") and o.get("kv_mb") is not None:
            need = wb + o["kv_mb"] * 1048576
            print(f"{r['model']:<9} {r['variant']:<6} {'':<5} {'RSS/(w+KV)':<14} {o['rss_mb'] * 1048576 / need:>9.3f}"
                  f"   (weights {wb / 1e6:.0f} MB + KV {o['kv_mb'] * 1.048576:.0f} MB; target <= 1.1)")
        if bw and wb and o.get("tg_tps"):
            # bytes read per decoded token: the weights, plus the cached keys and
            # values of the pp .. pp + tg - 1 positions attended to (mean)
            kvb = o.get("kv_pos_bytes", 0) * (o.get("pp", 0) + (o.get("tg", 1) - 1) / 2)
            roof = bw * 1e9 / (wb + kvb)
            share = [fmt(100 * e.get("tg_tps") / roof, 0) + "%" if e.get("tg_tps") else "-" for e in (o, p, x)]
            print(f"{r['model']:<9} {r['variant']:<6} {'':<5} {'tg roofline':<14} {share[0]:>9} {share[1]:>10} {'':>6} {share[2]:>9}"
                  f"   ({wb / 1e6:.0f} MB weights + {kvb / 1e6:.0f} MB KV per token -> {roof:.1f} tok/s)")
    print("ratio > 1: ours better (speed: ours/peer; time and memory: peer/ours).  "
          "Peer GGUF: Q4_0 ~ MLX q4 g64 (4.5 bpw), Q4_1 = MLX q4 g32 exactly (5.0 bpw), "
          "Q8_0 ~ MLX q8 g64 (8.5 bpw).")


if __name__ == "__main__":
    main()
