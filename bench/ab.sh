#!/bin/sh
# bench/ab.sh - A/B of the quantized kernels on whole models: ours with the
# exact float kernels, ours with int8 activations (MT_QMATH=int8) and
# llama.cpp (llama-cpp-python) on the GGUF of the same weights, alternating
# run by run for REPS rounds, then bench/ab_table.py prints medians (wall and
# CPU-time tokens/s) and decode's share of the bandwidth roofline.
# Environment: BUILD (build), THREADS (2), PP (512), TG (128), BATCH (0),
# REPS (3), PAIRS ("llama1b-q4g64:Q4_0 qwen06b-q4g64:Q4_0 llama1b-q4g32:Q4_1"),
# PEER (1: run llama.cpp: llama-cpp-python, or $LLAMA_BENCH, a natively built
# llama-bench, through bench/peer_llamabench.py), OUT (bench/out/ab.jsonl).
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
PP=${PP:-512}
TG=${TG:-128}
BATCH=${BATCH:-0}
REPS=${REPS:-3}
PAIRS=${PAIRS:-"llama1b-q4g64:Q4_0 qwen06b-q4g64:Q4_0 llama1b-q4g32:Q4_1"}
PEER=${PEER:-1}
OUT=${OUT:-bench/out/ab.jsonl}
. bench/common.sh
build_bench

: >"$OUT"
echo "{\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$OUT"
bench/bin/triad "$THREADS" 256 5 >>"$OUT"
for r in $(seq "$REPS"); do
    for pg in $PAIRS; do
        m=${pg%%:*}
        g=${pg##*:}
        dir=bench/models/$m
        wb=$(du -b "$dir"/*.safetensors | awk '{s += $1} END {print s}')
        echo "{\"model\":\"$m\",\"gguf\":\"$g\",\"weight_bytes\":$wb,\"rep\":$r}" >>"$OUT"
        for q in float int8; do
            MT_QMATH=$q bench/bin/bench_gen "$dir" "$THREADS" "$PP" "$TG" "$BATCH" >>"$OUT"
        done
        if [ "$PEER" = 1 ] && [ -f "bench/models/${m%%-*}-$g.gguf" ]; then
            llama_peer "bench/models/${m%%-*}-$g.gguf" "$THREADS" "$PP" "$TG" 1 >>"$OUT"
        fi
        tail -3 "$OUT" >&2
    done
done
echo "{\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}" >>"$OUT"
bench/bin/triad "$THREADS" 256 5 >>"$OUT"
python3 bench/ab_table.py "$OUT"
