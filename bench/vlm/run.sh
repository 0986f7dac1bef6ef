#!/bin/sh
# bench/vlm/run.sh - image + text -> text on one machine, one run: mlx-vlm (ours, C) against
# llama.cpp's multimodal CLI (llama-mtmd-cli, GGUF of the same weights) and Python mlx-vlm
# 0.7.10 (mlx's CPU backend), 2 threads, the same fixed image and prompt, greedy, TG tokens
# (eos ignored everywhere).  Per engine: the image encode time (vision tower + connector, all
# tiles; preprocessing not included), the prompt tokens/s (the language model over the whole
# prompt, text and image tokens, after the encode), the generation tokens/s and the peak RSS.
#
# Models (bench/vlm/make_models.py, made when missing, into bench/models/vlm/): the SmolVLM-256M
# shape with random weights (tests/gen/gen_vlm_idefics3.py --full: SigLIP-B/16-512 + the
# 30-layer SmolLM2-135M, the real configs) as an HF float32 folder; ours and mlx-vlm read the
# mlx_vlm.convert of it, 4-bit group 64 (the vision tower stays float32, as mlx-vlm leaves it);
# llama.cpp reads convert_hf_to_gguf.py of the same folder, the text model quantized with
# llama-quantize --pure Q4_0 (every matrix 4-bit, 4.5 bits a weight like MLX's q4 g64) and
# the mmproj (vision tower + connector) in f16 as ggml-org ships SmolVLM (LLAMA_F32=1 adds
# a run with an f32 mmproj, the precision of the MLX folder's tower).
# Image: bench/models/vlm/photo.png, 640x480, made deterministically; both processors resize
# it to 2048x1536 (size.longest_edge 2048) and cut 4x3 tiles of 512 + the global image: 13
# images of 64 tokens.
#
# Quiet machine (as bench/tts/run.sh): before each run the script waits (up to QUIET_WAIT s) for
# /proc/pressure/cpu "some" avg10 < MAX_PRESSURE (5%); a run whose stalled share (the "some"
# total's growth over its wall time) exceeds MAX_STALL % (5) is redone, up to 3 times, else
# marked contended.  Engines alternate within a round; ROUNDS rounds; the table gives the
# median and the range per engine, and the ratios of ours to each peer.
#
#   sh bench/vlm/run.sh   environment:
#     SHAPE        smolvlm (default), or qwen25vl3b (bench/vlm/make_qwen.py: a 7.5 GB float16
#                  HF folder, 3.3 GB MLX q4, 1.9 + 1.3 GB GGUF; without mlx-vlm, see below)
#     ENGINES      "ours llama mlxvlm"; also ours-int8 (ours with --int8) and llama-f32
#                  (LLAMA_F32=1 adds it: an f32 mmproj)
#     ROUNDS (3), ROUND1_ONLY (engines run in the first round only, e.g. "mlxvlm ours-int8"),
#     THREADS (2), TG (128), QUIET_WAIT (120: the most seconds the gate waits), MAX_PRESSURE,
#     MAX_STALL, MLXVLM_FULL / MLXVLM_TILES / MLXVLM_PREFILL / MLXVLM_GEN (below), BUILD (build),
#     OUT (bench/out/vlm-SHAPE.jsonl), MLXVLM_PY (/work/venv-mlxvlm/bin/python), TORCH_PY (a
#     python with torch for the GGUF conversion: /work/venv-mlx/bin/python), LABEL (a note
#     printed with the table, e.g. "dry run under load")
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
TG=${TG:-128}
MAX_PRESSURE=${MAX_PRESSURE:-5}
MAX_STALL=${MAX_STALL:-5}
MPY=${MLXVLM_PY:-/work/venv-mlxvlm/bin/python}
export TORCH_PY=${TORCH_PY:-/work/venv-mlx/bin/python}
SHAPE=${SHAPE:-smolvlm}
OUT=${OUT:-bench/out/vlm-$SHAPE.jsonl}
D=bench/models/vlm
IMG=$D/photo.png
PROMPT="Describe this image in detail."
case $SHAPE in
  smolvlm) MLX=$D/smolvlm-256m-q4; GGUF=$D/smolvlm-256m-Q4_0.gguf; MMPROJ=$D/mmproj-smolvlm-256m ;;
  qwen25vl3b)
    MLX=$D/qwen25vl3b-q4; GGUF=$D/qwen25vl3b-Q4_0.gguf; MMPROJ=$D/mmproj-qwen25vl3b
    # Python mlx-vlm would encode the whole image at once (no tiles to cut down to): ~2 TFLOP
    # through the reference BLAS, a quarter of an hour a run; left out unless ENGINES names it
    ENGINES=${ENGINES:-"ours llama"} ;;
  *) echo "bench/vlm: SHAPE is smolvlm or qwen25vl3b" >&2; exit 2 ;;
esac
ENGINES=${ENGINES:-"ours llama mlxvlm"}
[ "${LLAMA_F32:-0}" = 1 ] && ENGINES="$ENGINES llama-f32"
[ -x "$MPY" ] || { echo "bench/vlm: $MPY missing (a venv with mlx-vlm 0.7.10)" >&2; exit 1; }
make -s -j2 BUILD="$BUILD" "$BUILD/bin/mlx-vlm" >/dev/null
sh tools/build-llama-cpp.sh   # llama-mtmd-cli, llama-quantize (nothing when up to date)
"$MPY" bench/vlm/make_models.py --out $D
[ "$SHAPE" = qwen25vl3b ] && "$MPY" bench/vlm/make_qwen.py $D
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

some_total() { sed -n 's/^some .*total=\([0-9]*\)$/\1/p' /proc/pressure/cpu; }
some_avg10() { sed -n 's/^some avg10=\([0-9.]*\) .*/\1/p' /proc/pressure/cpu; }
wait_quiet() {
  i=0
  while [ $i -lt "${QUIET_WAIT:-120}" ] && awk -v a="$(some_avg10)" -v m="$MAX_PRESSURE" 'BEGIN { exit !(a > m) }'; do
    sleep 1; i=$((i + 1))
  done
}

# Python mlx-vlm on this CPU: mlx-cpu's matmuls go through the reference BLAS (~2 GFLOP/s a core),
# so its whole run (13 tiles of SigLIP-B, an 892-token prefill, 128 tokens) would take most of
# an hour; by default it runs the cut-down workload of peers.py mlxvlm-parts: the encode of
# MLXVLM_TILES tiles (scaled to the image's tiles), a MLXVLM_PREFILL-token prefill of the same
# prompt and MLXVLM_GEN greedy tokens.  MLXVLM_FULL=1 runs mlx_vlm.stream_generate on the whole.
MLXVLM_TILES=${MLXVLM_TILES:-1}
MLXVLM_PREFILL=${MLXVLM_PREFILL:-128}
MLXVLM_GEN=${MLXVLM_GEN:-16}
# --perf: llama_perf_context's prompt eval / eval times; -lv 4: let libllama's info lines through;
# -c 4096: the context a user would ask for (the default is the model's trained length, 128k
# for Qwen2.5-VL: a 4.7 GB KV cache)
LLAMA_FLAGS="-n $TG --temp 0 --ignore-eos -t $THREADS -c 4096 --perf -lv 4"
# engine NAME: one JSON line on stdout (bench/vlm/peers.py)
engine() {
  case $1 in
    ours|ours-int8)
      flag=; [ "$1" = ours-int8 ] && flag=--int8
      # shellcheck disable=SC2086
      MT_VLM_TIMING=1 /usr/bin/time -f %M -o "$tmp/rss" "$BUILD/bin/mlx-vlm" -m $MLX --image $IMG \
        -p "$PROMPT" -n "$TG" -t "$THREADS" $flag > "$tmp/o.txt" 2> "$tmp/o.log"
      "$MPY" bench/vlm/peers.py parse-ours "$tmp/o.log" "$(cat "$tmp/rss")" --label "$1" ;;
    llama|llama-f32)
      mm=f16; [ "$1" = llama-f32 ] && mm=f32
      # shellcheck disable=SC2086
      /usr/bin/time -f %M -o "$tmp/rss" bench/bin/llama-mtmd-cli -m $GGUF \
        --mmproj $MMPROJ-$mm.gguf --image $IMG -p "$PROMPT" $LLAMA_FLAGS > "$tmp/l.txt" 2> "$tmp/l.log"
      "$MPY" bench/vlm/peers.py parse-llama "$tmp/l.log" "$(cat "$tmp/rss")" --label "$1" ;;
    mlxvlm)
      if [ "${MLXVLM_FULL:-0}" = 1 ]; then set -- mlxvlm --max-tokens "$TG"
      else set -- mlxvlm-parts --tiles "$MLXVLM_TILES" --prefill "$MLXVLM_PREFILL" --gen "$MLXVLM_GEN"; fi
      /usr/bin/time -f %M -o "$tmp/rss" "$MPY" bench/vlm/peers.py "$@" --model $MLX --image $IMG \
        --prompt "$PROMPT" > "$tmp/m.json" 2> "$tmp/m.log"
      "$MPY" -c "import json,sys; d=json.load(open(sys.argv[1])); d['peak_rss_mb']=round(int(sys.argv[2])/1024); print(json.dumps(d))" \
        "$tmp/m.json" "$(cat "$tmp/rss")" ;;
  esac
}

for r in $(seq 1 "$ROUNDS"); do
  for e in $ENGINES; do
    case " ${ROUND1_ONLY:-} " in *" $e "*) [ "$r" -gt 1 ] && continue ;; esac
    try=1
    while :; do
      wait_quiet
      p0=$(some_total); t0=$(date +%s.%N)
      line=$(engine "$e") || { echo "bench/vlm: $e failed; its stderr:" >&2; tail -n 5 "$tmp"/*.log >&2; exit 1; }
      p1=$(some_total); t1=$(date +%s.%N)
      stall=$(awk -v a="$p0" -v b="$p1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e4 / (e - s) }')
      wall=$(awk -v s="$t0" -v e="$t1" 'BEGIN { printf "%.1f", e - s }')
      quiet=$(awk -v s="$stall" -v m="$MAX_STALL" 'BEGIN { print (s <= m) ? "True" : "False" }')
      if [ "$quiet" = True ] || [ $try -ge 3 ]; then break; fi
      echo "bench/vlm: $e round $r stalled $stall% of its time: redone" >&2
      try=$((try + 1))
    done
    echo "$line" | "$MPY" -c "import json,sys; d=json.loads(sys.stdin.read()); d.update(round=$r, wall_s=$wall, stall_pct=$stall, quiet=$quiet); print(json.dumps(d))" | tee -a "$OUT" >&2
  done
done

{
  echo "command: sh bench/vlm/run.sh (SHAPE=$SHAPE ROUNDS=$ROUNDS THREADS=$THREADS TG=$TG ENGINES=\"$ENGINES\"), $(date -u +%Y-%m-%dT%H:%MZ)${LABEL:+; $LABEL}"
  echo "llama.cpp: $(sed -n 's/^llama.cpp commit \([0-9a-f]*\).*/\1/p' bench/bin/llama-cpp.txt) ($(sed -n 's/^cmake flags: //p' bench/bin/llama-cpp.txt)); llama-mtmd-cli $LLAMA_FLAGS"
  echo "ours: mlx-vlm $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- lib bin 2>/dev/null || echo '+changes'), -t $THREADS -n $TG; mlx-vlm (Python): $("$MPY" -c 'import mlx_vlm, mlx.core as mx; print(mlx_vlm.__version__, "mlx", mx.__version__)' 2>/dev/null)$([ "${MLXVLM_FULL:-0}" = 1 ] || echo ", cut down: $MLXVLM_TILES tile(s) encoded, $MLXVLM_PREFILL-token prefill, $MLXVLM_GEN tokens")"
} > "$tmp/head.txt"
"$MPY" bench/vlm/table.py "$OUT" "$tmp/head.txt" "$SHAPE"
