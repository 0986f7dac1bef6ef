#!/bin/sh
# bench/gpt_oss.sh - prefill and decode speed of the gpt_oss family (attention sinks,
# sliding/full layers, 32 experts top 4) on a random model of gpt-oss-20b's shape scaled
# down (bench/make_gptoss.py, made if missing): bench_gen's JSON line (prefill tokens/s
# on a PP-token prompt, greedy decode tokens/s over TG tokens, decode summed over BATCH
# sequences, peak RSS), once with the default float16 KV and once with float32 KV, after a
# check of the model's log-probabilities against mlx-lm's (bench/gptoss_check.py), and
# with PEERS=mlx the same timings from mlx-lm on this CPU (bench/peer_mlx.py).  The CPU
# pressure (/proc/pressure/cpu) is printed before and after each run: a run on a busy
# machine is not a measurement.
# Environment: BUILD (build-gptoss-bench), THREADS (2), PP (512), TG (64), BATCH (4),
# PY (/work/venv-mlx/bin/python), PEERS (empty; "mlx" adds mlx-lm), OUT (bench/out/gpt_oss.jsonl).
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-gptoss-bench}
THREADS=${THREADS:-2}
PP=${PP:-512}
TG=${TG:-64}
BATCH=${BATCH:-4}
PY=${PY:-/work/venv-mlx/bin/python}
PEERS=${PEERS-}
OUT=${OUT:-bench/out/gpt_oss.jsonl}
MODEL=bench/models/gptoss-mini-q4g64
. bench/common.sh

pressure() { head -1 /proc/pressure/cpu 2>/dev/null | sed 's/ total=.*//'; }

build_bench
[ -f "$MODEL/config.json" ] || "$PY" bench/make_gptoss.py
mkdir -p "$(dirname "$OUT")"
make -j2 BUILD="$BUILD" "$BUILD/bin/mlx-gen" >/dev/null
"$PY" bench/gptoss_check.py "$MODEL" "$BUILD/bin/mlx-gen" | tee -a "$OUT"
for kv in f16 f32; do
    echo "cpu pressure before: $(pressure)" >&2
    MT_KV=$kv bench/bin/bench_gen "$MODEL" "$THREADS" "$PP" "$TG" "$BATCH" | tee -a "$OUT"
    echo "cpu pressure after:  $(pressure)" >&2
done
case " $PEERS " in
*" mlx "*)
    echo "cpu pressure before: $(pressure)" >&2
    "$PY" bench/peer_mlx.py "$MODEL" "$PP" "$TG" | tee -a "$OUT"
    echo "cpu pressure after:  $(pressure)" >&2 ;;
esac
