#!/bin/sh
# bench/stt/voxtral.sh - Voxtral: ours (lib/models/voxtral.c through bench/stt/voxtral_run.c,
# or `mlx-stt -m DIR FILE` once mlx-stt runs non-Whisper folders: set OURS=mlx-stt) against
# mlx-audio 0.6.2's Model.generate on the same folder and clip, both on 2 cores (taskset; ours
# with a pool of 2 threads and single-threaded OpenBLAS), printing each side's real-time factor
# (transcription time / audio duration, load apart) and the ratio.
#
# The folder: Voxtral-Mini-3B-2507's published configuration with random weights, bfloat16
# (bench/stt/voxtral_make.py documents it: Whisper-large-v3-style audio encoder 1280 x 32
# layers, 20 heads, ffn 5120; projector 5120 -> 3072 -> 3072; Llama decoder 3072 x 30 layers,
# 32/8 heads of 128, ffn 8192, vocab 131072, rope_theta 1e8), about 9.4 GB; or its projector and
# text decoder MLX-quantized with BITS=4 or 8 (mlx_audio.convert, group 64).  On a 24-GiB
# machine the bf16 folder fits one side at a time (the sides run one after the other);
# AUDIO_LAYERS / TEXT_LAYERS scale the depth down when memory or time forbid (say so with the
# numbers).  Random weights rarely emit EOS, so both sides decode exactly MAX_TOKENS tokens
# (the JSON lines show the counts): the numbers measure features + encoder + projector +
# prefill of the 375 audio rows per 30 s + MAX_TOKENS decode steps.
#
#   bench/stt/voxtral.sh            (make the folder once, then run both)
#
# Environment: BUILD (build dir, default build), WORK (folder + clip, default
# /work/models-local/voxtral-bench), BITS (0, 4, 8; default 0), SECONDS_ (clip length, default
# 30; above 30 s the clip is several chunks in one prompt), MAX_TOKENS (default 64), LANGUAGE
# (default en, mlx-audio's), THREADS (default 2), CPUS (taskset list, default 0,1),
# AUDIO_LAYERS (default 32), TEXT_LAYERS (default 30), PY (default /work/venv-voxtral/bin/python:
# mlx-audio 0.6.2 + mistral_common, which VoxtralProcessor needs), MODEL / CLIP (use this
# folder / WAV instead of making them), OURS (voxtral_run, default, or mlx-stt).
# PEER_TIMEOUT (seconds for the mlx-audio side, default 7200: mlx's CPU backend is slow on
# bfloat16 products; a smoke run with 1 + 1 layers took it ~2 minutes for a 5-s clip).
# Do not time on a busy machine.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
BITS=${BITS:-0}
AL=${AUDIO_LAYERS:-32}
TL=${TEXT_LAYERS:-30}
WORK=${WORK:-/work/models-local/voxtral-bench$([ "$AL$TL" = 3230 ] || echo "-a$AL-t$TL")}
PY=${PY:-/work/venv-voxtral/bin/python}
THREADS=${THREADS:-2}
CPUS=${CPUS:-0,1}
MAX_TOKENS=${MAX_TOKENS:-64}
LANGUAGE=${LANGUAGE:-en}
SECS=${SECONDS_:-30}
OURS=${OURS:-voxtral_run}
PKGS="jansson libpcre2-8 libutf8proc libzstd libcurl openblas sndfile soxr fftw3f zlib espeak-ng libpng libjpeg"   # the Makefile's

if [ -z "${MODEL:-}" ] || [ -z "${CLIP:-}" ]; then
    out=$(HF_HUB_OFFLINE=1 "$PY" bench/stt/voxtral_make.py "$WORK" --bits "$BITS" --seconds "$SECS" \
          --audio-layers "$AL" --text-layers "$TL" | tail -2)
    MODEL=${MODEL:-$(echo "$out" | sed -n 1p)}
    CLIP=${CLIP:-$(echo "$out" | sed -n 2p)}
fi

make -s -j2 BUILD="$BUILD" "$BUILD/libmlxtools.a" >/dev/null
echo "# Voxtral, $(basename "$MODEL") ($MODEL), clip $CLIP, max_tokens $MAX_TOKENS, cpus $CPUS, $(date -u +%FT%TZ)"
if [ "$OURS" = mlx-stt ]; then
    make -s -j2 BUILD="$BUILD" "$BUILD/bin/mlx-stt" >/dev/null
    t0=$(date +%s.%N)
    OPENBLAS_NUM_THREADS=1 taskset -c "$CPUS" "$BUILD/bin/mlx-stt" -t "$THREADS" -m "$MODEL" --language "$LANGUAGE" \
        "$CLIP" >/dev/null
    t1=$(date +%s.%N)
    ours=$(python3 -c "import sys, soundfile; d = soundfile.info(sys.argv[3]).duration; t = float(sys.argv[2]) - float(sys.argv[1]); \
print('{\"impl\": \"ours (mlx-stt, load included)\", \"audio_s\": %.3f, \"transcribe_s\": %.3f, \"rtf\": %.4f, \"tokens\": null}' % (d, t, t / d))" \
        "$t0" "$t1" "$CLIP")
else
    mkdir -p "$BUILD/bench"
    cc -std=c17 -D_GNU_SOURCE -O3 -march=x86-64-v3 -Ilib $(pkg-config --cflags $PKGS) bench/stt/voxtral_run.c \
        "$BUILD/libmlxtools.a" $(pkg-config --libs $PKGS) -lm -lpthread -o "$BUILD/bench/voxtral_run"
    ours=$(OPENBLAS_NUM_THREADS=1 taskset -c "$CPUS" "$BUILD/bench/voxtral_run" "$MODEL" "$CLIP" "$THREADS" "$MAX_TOKENS" \
           "$LANGUAGE")
fi
echo "$ours"
peer=$(HF_HUB_OFFLINE=1 timeout "${PEER_TIMEOUT:-7200}" taskset -c "$CPUS" "$PY" bench/stt/voxtral_peer.py "$MODEL" "$CLIP" "$MAX_TOKENS" "$LANGUAGE" \
       2>/dev/null)
echo "$peer"
python3 - "$ours" "$peer" <<'PYEOF'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"RTF ours {o['rtf']:.4f} ({o['tokens']} tokens), mlx-audio {p['rtf']:.4f} ({p['tokens']} tokens), "
      f"ours / mlx-audio = {o['rtf'] / p['rtf']:.2f} (below 1: ours faster)")
PYEOF
