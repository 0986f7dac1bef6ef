#!/bin/sh
# bench/run.sh - make bench: mlx-gen against llama.cpp on the same weights, quiet-gated.
# Builds the library and the bench programs, makes the random-weight models if missing
# (bench/make_models.py: Llama-3.2-1B and Qwen3-0.6B shapes, MLX q4 g64; bench/make_gguf.py:
# GGUF Q4_0 of the same weights, both 4.5 bits a weight), builds llama.cpp's llama-bench
# natively if missing (tools/build-llama-cpp.sh, from the llama-cpp-python sdist on PyPI), then
# bench/quiet.py runs ours (float kernels, int8 activations) and llama.cpp alternating for
# ROUNDS rounds, redoing every run the CPU was not quiet for, and prints min / median / max per
# engine with the ratios.  CONTENDED=1 then measures the same with one busy neighbour process
# (bench/out/contended.jsonl) and prints both tables side by side.
# Environment: BUILD (build), THREADS (2), PP (512), TG (128), BATCH (8), ROUNDS (3),
# PAIRS ("llama1b-q4g64:Q4_0 qwen06b-q4g64:Q4_0"), ENGINES (float,int8,llama), MAX_STALL (3,
# percent), CONTENDED (0), PYTHON (python3 with mlx-lm and gguf, for making the models).
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
PP=${PP:-512}
TG=${TG:-128}
BATCH=${BATCH:-8}
ROUNDS=${ROUNDS:-3}
PAIRS=${PAIRS:-"llama1b-q4g64:Q4_0 qwen06b-q4g64:Q4_0"}
ENGINES=${ENGINES:-float,int8,llama}
MAX_STALL=${MAX_STALL:-3}
CONTENDED=${CONTENDED:-0}
PYTHON=${PYTHON:-python3}
. bench/common.sh
build_bench

models=""
for pg in $PAIRS; do
    m=${pg%%:*}
    name=${m%%-*}
    v=${m#*-}
    [ -f "bench/models/$m/config.json" ] || "$PYTHON" bench/make_models.py --models "$name" --variants "$v"
    models="$models${models:+,}$name"
done
case "$ENGINES" in *llama*)
    [ -x bench/bin/llama-bench ] || sh tools/build-llama-cpp.sh
    "$PYTHON" bench/make_gguf.py --models "$models" ;;
esac
LLAMA_BENCH=${LLAMA_BENCH:-bench/bin/llama-bench}
export LLAMA_BENCH

set -- --pairs "$PAIRS" --rounds "$ROUNDS" --threads "$THREADS" --pp "$PP" --tg "$TG" --batch "$BATCH" \
    --engines "$ENGINES" --max-stall "$MAX_STALL"
python3 bench/quiet.py "$@" --out bench/out/quiet.jsonl
if [ "$CONTENDED" = 1 ]; then
    python3 bench/quiet.py "$@" --neighbours 1 --out bench/out/contended.jsonl
    python3 bench/quiet.py --table bench/out/quiet.jsonl bench/out/contended.jsonl
fi
