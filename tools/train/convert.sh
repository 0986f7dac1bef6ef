#!/bin/sh
# Unpack the trained Hugging Face checkpoints and convert them with mlx-lm into models/.
# usage (repository root): tools/train/convert.sh PARTS_DIR
#   PARTS_DIR holds models.tar.part-* from run_device.sh.  Writes:
#   tools/train/out/hf/{target,draft}        Hugging Face layout (bf16), with the tokenizer
#   tools/train/out/mlx/tinydocs-22m-bf16     float form of the target (evaluation only)
#   tools/train/out/mlx/tinydocs-5m-bf16      float form of the draft (evaluation only)
#   models/tinydocs-22m-4bit, models/tinydocs-22m-8bit, models/tinydocs-5m-4bit  (shipped)
set -eu
parts=$1
data=tools/train/data
hf=tools/train/out/hf mlx=tools/train/out/mlx
rm -rf "$hf" "$mlx"
mkdir -p "$hf" "$mlx" models
cat "$parts"/models.tar.part-* | tar xf - -C "$hf"
for m in target draft; do
  cp "$data"/tokenizer.json "$data"/tokenizer_config.json "$data"/special_tokens_map.json "$hf/$m/"
done
conv() {  # conv SRC DEST [quantization flags]
  src=$1 dst=$2; shift 2
  rm -rf "$dst"
  python3 -m mlx_lm convert --hf-path "$src" --mlx-path "$dst" --dtype bfloat16 "$@"
  rm -f "$dst/README.md"
}
conv "$hf/target" "$mlx/tinydocs-22m-bf16"
conv "$hf/draft" "$mlx/tinydocs-5m-bf16"
conv "$hf/target" models/tinydocs-22m-4bit -q --q-bits 4 --q-group-size 64
conv "$hf/target" models/tinydocs-22m-8bit -q --q-bits 8 --q-group-size 128  # 128: keeps the three under 40 MB
conv "$hf/draft" models/tinydocs-5m-4bit -q --q-bits 4 --q-group-size 64
du -sh models/tinydocs-*
