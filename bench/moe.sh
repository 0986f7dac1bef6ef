#!/bin/sh
# bench/moe.sh - the MoE MLP with rows grouped by expert against row by row.
#
#   sh bench/moe.sh [MODEL]
#
# MODEL (default bench/models/qwen2moe-bench-q4g64, made by bench/make_moe.py when missing:
# a random qwen2_moe of hidden 1024, 16 experts of 512, top 4, a gated shared expert, 4-bit)
# is timed by bench_gen twice on the same weights and threads:
#   grouped   the library as built: each chosen expert runs once over all its rows
#   rowwise   the same with lib/models/moe_fwd.c compiled -DMT_MOE_ROWWISE linked in its
#             place: every row alone, each of its experts one row at a time (the schedule
#             before the grouping)
# Each prints one JSON line (bench_gen: prefill tokens/s of a PP-token prompt, decode
# tokens/s, decode tokens/s summed over BATCH concurrent sequences); /proc/pressure/cpu
# before and after (a contended round is not a measurement).
# Environment: BUILD (build), THREADS (2), PP (128), TG (16), BATCH (8), PY (python3 with
# mlx-lm, for bench/make_moe.py).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
PP=${PP:-128}
TG=${TG:-16}
BATCH=${BATCH:-8}
PY=${PY:-python3}
MODEL=${1:-bench/models/qwen2moe-bench-q4g64}
. bench/common.sh
build_bench
cc -std=c17 -D_GNU_SOURCE -O3 -march=x86-64-v3 -Ilib $(pkg-config --cflags $PKGS) -DMT_MOE_ROWWISE \
    -c lib/models/moe_fwd.c -o bench/bin/moe_fwd_rowwise.o
cc -std=c17 -D_GNU_SOURCE -O3 -march=x86-64-v3 -Ilib $(pkg-config --cflags $PKGS) bench/bench_gen.c \
    bench/bin/moe_fwd_rowwise.o "$BUILD/libmlxtools.a" $(pkg-config --libs $PKGS) -lm -lpthread \
    -o bench/bin/bench_gen_moe_rowwise
[ -f "$MODEL/config.json" ] || "$PY" bench/make_moe.py

pressure() { head -1 /proc/pressure/cpu 2>/dev/null | sed 's/ total=.*//'; }
echo "cpu pressure before: $(pressure)"
for v in grouped rowwise; do
    bin=bench/bin/bench_gen
    [ "$v" = rowwise ] && bin=bench/bin/bench_gen_moe_rowwise
    printf '%s ' "$v"
    "$bin" "$MODEL" "$THREADS" "$PP" "$TG" "$BATCH"
done
echo "cpu pressure after: $(pressure)"
