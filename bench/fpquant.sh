#!/bin/sh
# bench/fpquant.sh - decode speed of MLX's fp weight modes against affine 4-bit on
# a Qwen3-0.6B-shaped random model: bench/make_models.py writes qwen06b-<variant>
# (the same float16 weights quantized each way; not committed) when missing,
# bench_gen times each, the variants alternating run by run for REPS rounds;
# prints every JSON line, then per variant the median decode tokens/s and its
# ratio to the first variant.  Run it only on a quiet machine
# (/proc/pressure/cpu).
# Environment: BUILD (build), THREADS (2), PP (32), TG (64), REPS (3),
# VARIANTS ("q4g64 mxfp4"), PY (/work/venv-mlx/bin/python: a python with mlx-lm),
# OUT (bench/out/fpquant.jsonl).
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
PP=${PP:-32}
TG=${TG:-64}
REPS=${REPS:-3}
VARIANTS=${VARIANTS:-"q4g64 mxfp4"}
PY=${PY:-/work/venv-mlx/bin/python}
OUT=${OUT:-bench/out/fpquant.jsonl}
. bench/common.sh
build_bench

for v in $VARIANTS; do
    [ -f "bench/models/qwen06b-$v/model.safetensors" ] ||
        "$PY" bench/make_models.py --models qwen06b --variants "$v" >&2
done
: >"$OUT"
echo "{\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$OUT"
for r in $(seq "$REPS"); do
    for v in $VARIANTS; do
        printf '{"variant":"%s","rep":%d}\n' "$v" "$r" >>"$OUT"
        bench/bin/bench_gen "bench/models/qwen06b-$v" "$THREADS" "$PP" "$TG" 0 >>"$OUT"
        tail -1 "$OUT" >&2
    done
done
echo "{\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$OUT"
python3 - "$OUT" $VARIANTS <<'PYEOF'
import json, statistics, sys
runs, cur = {}, None
for line in open(sys.argv[1]):
    o = json.loads(line)
    if "variant" in o:
        cur = o["variant"]
    elif "tg_tps" in o and cur:
        runs.setdefault(cur, []).append(o["tg_tps"])
base = statistics.median(runs[sys.argv[2]])
for v in sys.argv[2:]:
    m = statistics.median(runs[v])
    print(f"{v:8s} decode {m:8.2f} tok/s (median of {len(runs[v])})  ratio to {sys.argv[2]}: {m / base:.3f}")
PYEOF
