#!/bin/sh
# bench/run.sh - the benchmark of issue 4 in one command (make bench): builds
# the library and bench programs, makes the random-weight models if missing
# (bench/make_models.py, bench/make_gguf.py), measures the memory bandwidth
# (triad), then per model and format runs ours (bench_gen), llama.cpp
# (llama-cpp-python, or with $LLAMA_BENCH a natively built llama-bench binary,
# bench/peer_llamabench.py) and mlx-lm back to back, and prints the table.
# Environment: BUILD (build dir, default build), THREADS (2), PP (512), TG (128),
# BATCH (8), MLX_PP/MLX_TG/MLX_TIMEOUT (mlx-lm sizes, default PP/TG, 300 s), MODELS ("llama1b qwen06b"), VARIANTS ("q4g64:Q4_0 q4g32:Q4_1 q8g64:Q8_0": MLX q4 g64 and GGUF Q4_0 are both
# 4.5 bits per weight, q4 g32 is exactly Q4_1, q8 g64 ~ Q8_0),
# PEERS ("llama mlx"; empty = ours only), INT8 (1: ours again with MT_QMATH=int8).
# bench/ab.sh runs float / int8 / llama.cpp alternating over several rounds.
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
PP=${PP:-512}
TG=${TG:-128}
BATCH=${BATCH:-8}
MODELS=${MODELS:-"llama1b qwen06b"}
VARIANTS=${VARIANTS:-"q4g64:Q4_0 q4g32:Q4_1 q8g64:Q8_0"}
PEERS=${PEERS-"llama mlx"}
INT8=${INT8:-1}
MLX_PP=${MLX_PP:-$PP}        # mlx-lm's CPU quantized matmul is slow here: allow smaller sizes
MLX_TG=${MLX_TG:-$TG}
MLX_TIMEOUT=${MLX_TIMEOUT:-300}
. bench/common.sh
build_bench

for m in $MODELS; do
    for vg in $VARIANTS; do
        v=${vg%%:*}
        [ -f "bench/models/$m-$v/config.json" ] || python3 bench/make_models.py --models "$m" --variants "$v"
    done
done
case "$PEERS" in *llama*) python3 bench/make_gguf.py --models "$(echo $MODELS | tr ' ' ,)" ;; esac

out=bench/out/results.jsonl
: >"$out"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
bench/bin/triad "$THREADS" 256 5 | tee -a "$out"
for m in $MODELS; do
    for vg in $VARIANTS; do
        v=${vg%%:*}
        g=${vg##*:}
        dir=bench/models/$m-$v
        wb=$(du -b "$dir"/*.safetensors | awk '{s += $1} END {print s}')
        echo "{\"model\":\"$m\",\"variant\":\"$v\",\"gguf\":\"$g\",\"weight_bytes\":$wb}" | tee -a "$out"
        bench/bin/bench_gen "$dir" "$THREADS" "$PP" "$TG" "$BATCH" | tee -a "$out"
        [ "$INT8" = 1 ] && MT_QMATH=int8 bench/bin/bench_gen "$dir" "$THREADS" "$PP" "$TG" "$BATCH" | tee -a "$out"
        case "$PEERS" in *llama*)
            [ -f "bench/models/$m-$g.gguf" ] &&
                llama_peer "bench/models/$m-$g.gguf" "$THREADS" "$PP" "$TG" 2 | tee -a "$out" ;;
        esac
        case "$PEERS" in *mlx*)
            r=$(timeout "$MLX_TIMEOUT" python3 bench/peer_mlx.py "$dir" "$MLX_PP" "$MLX_TG") || true
            if [ -n "$r" ]; then echo "$r" | tee -a "$out"; else echo "mlx-lm: no result within ${MLX_TIMEOUT}s"; fi ;;
        esac
    done
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
echo "CPU flags: $(grep -m1 -o 'avx512[a-z_0-9]*\|avx2\|fma\|avx_vnni\|amx[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
python3 bench/table.py "$out"
