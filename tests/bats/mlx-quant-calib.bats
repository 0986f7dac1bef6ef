#!/usr/bin/env bats
# mlx-quant convert --calibrate: same files and sizes as the plain conversion,
# different (calibrated) weights, runs in mlx-gen; bad combinations refused.

setup_file() {
  export MQ="$PWD/${MT_BUILD:-build}/bin/mlx-quant"
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
  export TD="$BATS_FILE_TMPDIR"
}

@test "convert --calibrate keeps the format and size, changes the weights, runs in mlx-gen" {
  "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/p" -q --bits 3 --group-size 32 --quiet
  "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/c" -q --bits 3 --group-size 32 --quiet \
    --calibrate tests/data/calib/calib.txt --calib-tokens 200
  cmp "$TD/p/config.json" "$TD/c/config.json"
  cmp "$TD/p/model.safetensors.index.json" "$TD/c/model.safetensors.index.json"
  [ "$(stat -c %s "$TD/p/model.safetensors")" = "$(stat -c %s "$TD/c/model.safetensors")" ]
  ! cmp -s "$TD/p/model.safetensors" "$TD/c/model.safetensors"
  # same header (names, dtypes, shapes, offsets)
  hp=$(head -c 8 "$TD/p/model.safetensors" | od -An -tu8 | tr -d ' ')
  [ "$(head -c $((8 + hp)) "$TD/p/model.safetensors" | sha256sum)" = "$(head -c $((8 + hp)) "$TD/c/model.safetensors" | sha256sum)" ]
  [ -x "$GEN" ] || skip "mlx-gen not built"
  out=$("$GEN" -m "$TD/c" -p "def main():" -n 8 --ids -q 2>/dev/null | head -c 4000)
  [ -n "$out" ]
}

@test "convert --calibrate needs -q and refuses --gpu-rules; bad --calib-tokens is a usage error" {
  run "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/x1" --calibrate tests/data/calib/calib.txt --quiet
  [ "$status" -eq 1 ]
  [[ "$output" == *"--calibrate needs -q"* ]]
  run "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/x2" -q --gpu-rules --calibrate tests/data/calib/calib.txt --quiet
  [ "$status" -eq 1 ]
  run "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/x3" -q --calibrate tests/data/calib/calib.txt --calib-tokens 0
  [ "$status" -eq 2 ]
  run "$MQ" convert -m tests/data/models/llama-tiny -o "$TD/x4" -q --calibrate "$TD/missing.txt" --quiet
  [ "$status" -eq 1 ]
  [ ! -e "$TD/x4" ]
}
