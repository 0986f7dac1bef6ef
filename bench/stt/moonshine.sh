#!/bin/sh
# bench/stt/moonshine.sh - Moonshine: ours (mlx-stt) against mlx-audio 0.6.2
# (Model.generate) on the same random-weight folders with the real shapes of
# UsefulSensors/moonshine-tiny and moonshine-base, 2 threads, real speech.
# Prints the real-time factor (transcription seconds / audio seconds; lower
# is faster) of both, their ratio (mlx-audio / ours: above 1, ours is faster)
# and whether the two transcripts agree.
#
# Configs (bench/stt/moonshine_peer.py, transformers' MoonshineConfig):
#   tiny  hidden 288, intermediate 1152, 6 encoder + 6 decoder layers, 8 heads
#         (head_dim 36, 32 rotary dims), vocab 32768, tied output   (27 M params)
#   base  hidden 416, intermediate 1664, 8 + 8 layers, 8 heads (head_dim 52,
#         46 rotary dims), vocab 32768, tied output                  (61 M params)
#   both: partial_rotary_factor 0.9, rope_theta 1e4, GELU encoder MLP, SwiGLU
#   decoder MLP, float32; random weights (seed 0), the </s> row of the
#   embedding scaled down so that both sides decode mlx-audio's default 200
#   tokens (the work of a 200-token transcript).
# Audio: moonshine_onnx/assets/beckett.wav from the pip package
# useful-moonshine-onnx (MIT; 16 kHz mono speech, ~10 s), fetched with
# `pip download` into $WORK (not committed); its tokenizer.json is the real
# Moonshine tokenizer the folders get.
#
# Timing: each side runs on CPUs 0-1 (taskset) with 2 threads (ours: -t 2;
# mlx-audio: OMP/OPENBLAS/MKL_NUM_THREADS=2); the best of REPEATS (3) runs
# after a warm-up; model loading is not timed on either side.  Ours is timed
# through JSONL records (the "rtf" field: audio decode + transcription).
#
#   bench/stt/moonshine.sh [tiny|base|all]     (default: all)
#
# Environment: WORK (default /tmp/moonshine-bench), PY (the Python with
# mlx-audio 0.6.2, default /work/venv-tts/bin/python), MLX_STT (default
# build/bin/mlx-stt), REPEATS (3), AUDIO (another 16-kHz mono s16 WAV).
# Do not run it for numbers on a busy machine.
set -eu
cd "$(dirname "$0")/../.."
what=${1:-all}
WORK=${WORK:-/tmp/moonshine-bench}
PY=${PY:-/work/venv-tts/bin/python}
MLX_STT=${MLX_STT:-build/bin/mlx-stt}
REPEATS=${REPEATS:-3}
mkdir -p "$WORK"

ONNX="$WORK/onnx"
if [ ! -f "$ONNX/moonshine_onnx/assets/tokenizer.json" ]; then
  mkdir -p "$ONNX"
  "$PY" -m pip download useful-moonshine-onnx --no-deps -q -d "$ONNX"
  (cd "$ONNX" && "$PY" -m zipfile -e useful_moonshine_onnx-*.whl .)
fi
TOK="$ONNX/moonshine_onnx/assets/tokenizer.json"
AUDIO=${AUDIO:-$ONNX/moonshine_onnx/assets/beckett.wav}
[ -x "$MLX_STT" ] || { echo "no $MLX_STT: build it first (make)" >&2; exit 1; }
"$MLX_STT" --list-models | grep -q '^moonshine ' || { echo "$MLX_STT does not run moonshine folders" >&2; exit 1; }

pin="taskset -c 0,1"
command -v taskset >/dev/null 2>&1 || pin=""

bench_one() {   # bench_one tiny|base
  dir="$WORK/moonshine-$1-random"
  [ -f "$dir/model.safetensors" ] || "$PY" bench/stt/moonshine_peer.py make "$1" "$dir" "$TOK"
  peer=$(OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 MKL_NUM_THREADS=2 $pin "$PY" bench/stt/moonshine_peer.py run \
         "$dir" "$AUDIO" "$REPEATS" 2>/dev/null | tail -n 1)
  recs=""
  i=0
  while [ $i -le "$REPEATS" ]; do   # record 0 is the warm-up
    recs="$recs{\"id\":$i,\"audio\":\"$AUDIO\"}
"
    i=$((i + 1))
  done
  ours=$(printf '%s' "$recs" | $pin "$MLX_STT" -m "$dir" -t 2 -q)
  PEER="$peer" OURS="$ours" NAME="$1" python3 - <<'EOF'
import json, os
peer = json.loads(os.environ["PEER"])
recs = [json.loads(l) for l in os.environ["OURS"].splitlines() if l.strip()]
ours = min(r["rtf"] for r in recs[1:]) if len(recs) > 1 else recs[0]["rtf"]
same = all(r.get("text") == peer["text"] for r in recs)
print(f"moonshine-{os.environ['NAME']:<5} audio {peer['audio_s']:.1f} s  tokens {peer['tokens']}  "
      f"rtf ours {ours:.4f}  mlx-audio {peer['rtf']:.4f}  ratio {peer['rtf'] / ours:.2f}x  "
      f"transcripts {'identical' if same else 'DIFFER'}")
EOF
}

case $what in
  tiny|base) bench_one "$what" ;;
  all) bench_one tiny; bench_one base ;;
  *) echo "usage: $0 [tiny|base|all]" >&2; exit 2 ;;
esac
