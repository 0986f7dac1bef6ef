#!/bin/bash
# bench/contention.sh - mlx-gen when the cores are shared: the same generation job with
# 0, 2 and 6 busy neighbours (shell loops, one core's worth each) on the machine, with
# the default threads (all cores) and with -t 1, for this build and, with BIN_B=path, a
# second mlx-gen binary (e.g. an older commit), runs alternating.  A thread pool that
# waits for every thread at each of the thousands of parallel-fors of a decode
# collapses when a neighbour takes its cores (llama.cpp's spinning OpenMP barriers do);
# ours hands the chunks of a thread that is not running to the ones that are.
#
#   bench/contention.sh                      (BUILD=build, ROUNDS=3)
#
# Jobs: tiny = 60 records x 8 tokens on tests/data/models/llama-tiny (a decode made of
# tiny products, the worst case for synchronisation); qwen = 4 records x 32 tokens on
# bench/models/qwen06b-q4g64 (Qwen3-0.6B shape, bench/make_models.py) when present.
# The no-neighbour rounds first wait for a quiet CPU (/proc/pressure/cpu some avg10 <=
# QUIET, default 3).  Prints min / median wall seconds per binary, job, neighbours and
# threads; raw lines in bench/out/contention.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-3}
QUIET=${QUIET:-3}
OUT=${OUT:-bench/out/contention.jsonl}
make -s -j2 BUILD="$BUILD" "$BUILD/bin/mlx-gen"
mkdir -p bench/out
: > "$OUT"
W=$(mktemp -d)
NB=()
cleanup() { for p in "${NB[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
BINS=("A:$BUILD/bin/mlx-gen")
[ -n "${BIN_B:-}" ] && BINS+=("B:$BIN_B")
for i in $(seq 1 60); do printf '{"id":%d,"prompt":"record %d","max_tokens":8}\n' "$i" "$i"; done > "$W/tiny.jsonl"
for i in 1 2 3 4; do printf '{"id":%d,"prompt":"Question %d: how do I install a package?","max_tokens":32}\n' "$i" "$i"; done > "$W/qwen.jsonl"
JOBS="tiny:tests/data/models/llama-tiny"
[ -f bench/models/qwen06b-q4g64/config.json ] && JOBS="$JOBS qwen:bench/models/qwen06b-q4g64"

quiet() {
  local t=0
  while [ "$t" -lt 120 ]; do
    awk -v q="$QUIET" '/^some/{split($2, a, "="); exit !(a[2] <= q)}' /proc/pressure/cpu && return
    sleep 1; t=$((t + 1))
  done
}
now() { date +%s.%N; }

for ((r = 1; r <= ROUNDS; r++)); do
  for nb in 0 2 6; do
    [ "$nb" -eq 0 ] && quiet
    NB=()
    for ((i = 0; i < nb; i++)); do ( while :; do :; done ) & NB+=($!); done
    for job in $JOBS; do
      name=${job%%:*}; model=${job#*:}
      for th in default 1; do
        for b in "${BINS[@]}"; do
          tag=${b%%:*}; bin=${b#*:}
          targs=(); [ "$th" = 1 ] && targs=(-t 1)
          t0=$(now)
          timeout 600 "$bin" -m "$model" -q "${targs[@]}" < "$W/$name.jsonl" > /dev/null || true
          printf '{"bin":"%s","job":"%s","neighbours":%d,"threads":"%s","round":%d,"wall_s":%s}\n' "$tag" "$name" "$nb" "$th" "$r" \
            "$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.3f", b-a}')" | tee -a "$OUT"
        done
      done
    done
    for p in "${NB[@]}"; do kill "$p" 2>/dev/null || true; done
    NB=()
  done
done

jq -rs '
  def med: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  "| binary | job | busy neighbours | threads | wall s min / median |", "|---|---|---|---|---|",
  (group_by([.bin, .job, .neighbours, .threads])[] | map(.wall_s) as $w
   | "| \(.[0].bin) | \(.[0].job) | \(.[0].neighbours) | \(.[0].threads) | \($w | min) / \($w | med) |")' "$OUT"
