#!/bin/sh
# bench/families/run.sh - the new mechanisms against llama.cpp on the same weights: prefill and
# decode of an MLA + DeepSeek-MoE model, an LFM2 hybrid (short convolutions + attention) and a
# gpt-oss-shaped MoE (bench/families/make_models.py: real widths, random weights, MLX q4 g64
# for ours and llama-quantize --pure Q4_0 of the same float weights for llama.cpp, 4.5 bits a
# weight both), 2 threads.  Ours: bench_gen (PP-token prompt, then TG greedy tokens after it);
# llama.cpp: llama-bench -p PP -n 0 and -p 0 -n TG -d PP (bench/peer_llamabench.py), built by
# tools/build-llama-cpp.sh.
# Quiet machine: before each run the script waits (up to QUIET_WAIT s) for /proc/pressure/cpu
# "some" avg10 < MAX_PRESSURE (5%); a run whose stalled share (the "some" total's growth over
# its wall time) exceeds MAX_STALL % (5) is redone, up to 3 times, else kept marked contended.
# Engines alternate within a round; ROUNDS rounds; bench/families/table.py prints min / median /
# max per engine and the ratios (quiet runs only).
#   environment: SHAPES ("mla hybrid gptoss"), ROUNDS (3), THREADS (2), PP (256), TG (64), BUILD,
#   OUT (bench/out/families.jsonl), PY (/work/venv-mlx/bin/python: torch, transformers, mlx-lm)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
PP=${PP:-256}
TG=${TG:-64}
MAX_PRESSURE=${MAX_PRESSURE:-5}
MAX_STALL=${MAX_STALL:-5}
SHAPES=${SHAPES:-"mla hybrid gptoss"}
PY=${PY:-/work/venv-mlx/bin/python}
OUT=${OUT:-bench/out/families.jsonl}
D=bench/models/fam
. bench/common.sh
build_bench
sh tools/build-llama-cpp.sh
LLAMA_BENCH=${LLAMA_BENCH:-bench/bin/llama-bench}
export LLAMA_BENCH
"$PY" bench/families/make_models.py --out $D --shapes "$(echo $SHAPES | tr ' ' ,)"
mkdir -p "$(dirname "$OUT")"
: > "$OUT"

some_total() { sed -n 's/^some .*total=\([0-9]*\)$/\1/p' /proc/pressure/cpu; }
some_avg10() { sed -n 's/^some avg10=\([0-9.]*\) .*/\1/p' /proc/pressure/cpu; }
wait_quiet() {
  i=0
  while [ $i -lt "${QUIET_WAIT:-300}" ] && awk -v a="$(some_avg10)" -v m="$MAX_PRESSURE" 'BEGIN { exit !(a > m) }'; do
    sleep 1; i=$((i + 1))
  done
}
engine() {   # engine ours|llama SHAPE: one JSON line
  case $1 in
    ours) bench/bin/bench_gen "$D/$2-q4g64" "$THREADS" "$PP" "$TG" 0 ;;
    llama) "$PY" bench/peer_llamabench.py "$D/$2-Q4_0.gguf" "$THREADS" "$PP" "$TG" 1 ;;
  esac
}
for r in $(seq 1 "$ROUNDS"); do
  for s in $SHAPES; do
    for e in ours llama; do
      try=1
      while :; do
        wait_quiet
        p0=$(some_total); t0=$(date +%s.%N)
        line=$(engine $e "$s")
        p1=$(some_total); t1=$(date +%s.%N)
        stall=$(awk -v a="$p0" -v b="$p1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e4 / (e - s) }')
        quiet=$(awk -v s="$stall" -v m="$MAX_STALL" 'BEGIN { print (s <= m) ? "True" : "False" }')
        if [ "$quiet" = True ] || [ $try -ge 3 ]; then break; fi
        echo "bench/families: $e $s round $r stalled $stall% of its time: redone" >&2
        try=$((try + 1))
      done
      echo "$line" | "$PY" -c "import json,sys; d=json.loads(sys.stdin.read()); d.update(shape='$s', round=$r, stall_pct=$stall, quiet=$quiet); print(json.dumps(d))" | tee -a "$OUT" >&2
    done
  done
done
head="command: sh bench/families/run.sh (SHAPES=\"$SHAPES\" ROUNDS=$ROUNDS THREADS=$THREADS PP=$PP TG=$TG), $(date -u +%Y-%m-%dT%H:%MZ); ours $(git rev-parse --short HEAD); llama.cpp $(sed -n 's/^llama.cpp commit \([0-9a-f]*\).*/\1/p' bench/bin/llama-cpp.txt) ($(sed -n 's/^cmake flags: //p' bench/bin/llama-cpp.txt))"
"$PY" bench/families/table.py "$OUT" "$head"
