#!/bin/sh
# bench/stt/run.sh - speech-to-text benchmark: real-time factor, wall time and
# WER of faster-whisper (CTranslate2), whisper.cpp (pywhispercpp) and ours
# (build/bin/mlx-stt) on a ~5-minute espeak-ng recording, Whisper tiny.en,
# 2 threads, greedy and beam 5.  Prints one table at the end.
#
#   bench/stt/run.sh [peers|ours|table|all]     (default: all)
#
# Environment: BENCH_AUDIO_DIR (recording + results, default
# /work/models-local/bench-audio), MODELS (default /work/models-local),
# HF_MODEL (HF-layout Whisper dir, default $MODELS/whisper-tiny.en-hf),
# OURS_MODEL (the -m folder for mlx-stt, default $HF_MODEL), OURS_Q8_MODEL
# (an MLX 8-bit folder run with --int8, default $MODELS/whisper-tiny.en-mlx-q8,
# skipped when missing), MLX_STT (default build/bin/mlx-stt), OURS_ARGS
# (extra mlx-stt flags), WHISPER_CLI (a natively built whisper.cpp
# whisper-cli: used instead of the pywhispercpp wheel, which is a generic
# build many times slower; WCPP=1 runs the wheel as well).
set -eu
cd "$(dirname "$0")/../.."
what=${1:-all}
MODELS=${MODELS:-/work/models-local}
export BENCH_AUDIO_DIR=${BENCH_AUDIO_DIR:-$MODELS/bench-audio}
HF_MODEL=${HF_MODEL:-$MODELS/whisper-tiny.en-hf}
OURS_MODEL=${OURS_MODEL:-$HF_MODEL}
MLX_STT=${MLX_STT:-build/bin/mlx-stt}
export OMP_NUM_THREADS=2
# each run is capped (PEER_TIMEOUT seconds, default 600)
P="timeout ${PEER_TIMEOUT:-600} python3 bench/stt/peers.py"

[ -f "$BENCH_AUDIO_DIR/speech5min.wav" ] || python3 bench/stt/make_audio.py

ggml() {   # ggml() TYPE -> path of the whisper.cpp model, converted once
  f="$MODELS/ggml-tiny.en-$1.bin"
  if [ ! -f "$f" ]; then
    if [ -d "$HF_MODEL" ]; then
      python3 bench/stt/to_ggml.py "$HF_MODEL" "$f" --type "$1" >&2
    else
      echo "no HF-layout Whisper dir at $HF_MODEL: cannot make $f" >&2; return 1
    fi
  fi
  echo "$f"
}

if [ "$what" = peers ] || [ "$what" = all ]; then
  for beam in 1 5; do
    for ct in int8 float32; do $P run fw --compute $ct --beam $beam || echo "fw $ct beam $beam: failed or timed out"; done
    for t in f16 q8_0; do
      m=$(ggml $t) || continue
      if [ -n "${WHISPER_CLI:-}" ]; then
        $P run wcli --model "$m" --beam $beam --bin "$WHISPER_CLI" || echo "whisper-cli $t beam $beam: failed or timed out"
      fi
      if [ -z "${WHISPER_CLI:-}" ] || [ "${WCPP:-0}" = 1 ]; then
        $P run wcpp --model "$m" --beam $beam || echo "whisper.cpp $t beam $beam: failed or timed out"
      fi
    done
  done
fi
if [ "$what" = ours ] || [ "$what" = all ]; then
  if [ -x "$MLX_STT" ]; then
    Q8=${OURS_Q8_MODEL:-$MODELS/whisper-tiny.en-mlx-q8}
    for beam in 1 5; do
      $P run ours --bin "$MLX_STT" --model "$OURS_MODEL" --beam $beam
      [ -d "$Q8" ] && OURS_ARGS="${OURS_ARGS:-} --int8" $P run ours --bin "$MLX_STT" --model "$Q8" --beam $beam
    done
  else
    echo "ours: $MLX_STT does not exist yet (make it first): skipped; the table has no ratio column values"
  fi
fi
python3 bench/stt/peers.py table
