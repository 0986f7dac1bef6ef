#!/bin/sh
# bench/stt/qwen3_asr.sh - Qwen3-ASR: ours (lib/models/qwen3_asr.c through bench/stt/qwen3_asr_run.c)
# against mlx-audio 0.6.2's model.generate on the same folder and clip, both on 2 cores
# (taskset; ours with a pool of 2 threads and single-threaded OpenBLAS), printing each side's
# real-time factor (transcription time / audio duration; load time apart) and the ratio.
#
# The folder: Qwen3-ASR-0.6B's real configuration with random weights (bench/stt/qwen3_asr_make.py
# documents it: audio encoder d_model 896 x 18 layers, 14 heads, ffn 3584, conv width 480,
# windows of 104 rows; Qwen3 decoder 1024 x 28 layers, 16/8 heads of 128, ffn 3072, vocab 151936,
# tied), bfloat16, or its text decoder MLX-quantized with BITS=8 (mlx-community's -8bit form) or 4.
# Random weights rarely emit EOS, so both sides decode exactly MAX_TOKENS tokens (the JSON lines
# show the counts): the numbers measure the encoder + prefill + MAX_TOKENS decode steps.
#
#   bench/stt/qwen3_asr.sh            (make the folder once, then run both)
#
# Environment: BUILD (build dir, default build), WORK (folder + clip, default
# /work/models-local/qwen3-asr-bench; BITS=8 -> ...-q8), BITS (0, 4, 8; default 0), SECONDS_
# (clip length, default 30), MAX_TOKENS (default 64), LANGUAGE (default: none, detection), THREADS
# (default 2), CPUS (taskset list, default 0,1), PY (default /work/venv-tts/bin/python),
# MODEL / CLIP (use this folder / WAV instead of making them).  Do not time on a busy machine.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BITS=${BITS:-0}
WORK=${WORK:-/work/models-local/qwen3-asr-bench$([ "$BITS" = 0 ] || echo "-q$BITS")}
PY=${PY:-/work/venv-tts/bin/python}
THREADS=${THREADS:-2}
CPUS=${CPUS:-0,1}
MAX_TOKENS=${MAX_TOKENS:-64}
LANGUAGE=${LANGUAGE:-}
PKGS="jansson libpcre2-8 libutf8proc libzstd libcurl openblas sndfile soxr fftw3f zlib espeak-ng libpng libjpeg"   # the Makefile's

MODEL=${MODEL:-$WORK/model}
CLIP=${CLIP:-$WORK/clip.wav}
if [ ! -f "$MODEL/model.safetensors" ] || [ ! -f "$CLIP" ]; then
    HF_HUB_OFFLINE=1 "$PY" bench/stt/qwen3_asr_make.py "$WORK" --bits "$BITS" --seconds "${SECONDS_:-30}"
fi

make -s -j2 BUILD="$BUILD" "$BUILD/libmlxtools.a" >/dev/null
mkdir -p bench/bin
cc -std=c17 -D_GNU_SOURCE -O3 -march=x86-64-v3 -Ilib $(pkg-config --cflags $PKGS) bench/stt/qwen3_asr_run.c \
    "$BUILD/libmlxtools.a" $(pkg-config --libs $PKGS) -lm -lpthread -o bench/bin/qwen3_asr_run

echo "# Qwen3-ASR, $(basename "$MODEL") ($MODEL), clip $CLIP, max_tokens $MAX_TOKENS, cpus $CPUS, $(date -u +%FT%TZ)"
ours=$(OPENBLAS_NUM_THREADS=1 taskset -c "$CPUS" bench/bin/qwen3_asr_run "$MODEL" "$CLIP" "$THREADS" "$MAX_TOKENS" $LANGUAGE)
echo "$ours"
peer=$(HF_HUB_OFFLINE=1 taskset -c "$CPUS" "$PY" bench/stt/qwen3_asr_peer.py "$MODEL" "$CLIP" "$MAX_TOKENS" $LANGUAGE 2>/dev/null)
echo "$peer"
python3 - "$ours" "$peer" <<'PYEOF'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"RTF ours {o['rtf']:.4f} ({o['tokens']} tokens), mlx-audio {p['rtf']:.4f} ({p['tokens']} tokens), "
      f"ours / mlx-audio = {o['rtf'] / p['rtf']:.2f} (below 1: ours faster)")
PYEOF
