#!/usr/bin/env bats
# gemma3n (lib/models/gemma3n.c): the forward of its own over the planned rows: prefill in
# chunks, --max-kv-size (ignored, as mlx-lm's own make_cache ignores it) and the refusals.

bats_require_minimum_version 1.5.0

setup_file() {
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
  export KVP="$PWD/${MT_BUILD:-build}/bin/mlx-kvpack"
}

g3n_dirs() {
  for d in tests/data/models/*/; do
    [ -f "$d/golden.json" ] || continue
    [ "$(jq -r .model_type "$d/config.json")" = gemma3n ] && echo "${d%/}"
  done
  return 0
}

@test "gemma3n: prefill in chunks (--prefill-step-size 3, 1) and --max-kv-size 6 give mlx-lm's greedy tokens" {
  n=0
  for d in $(g3n_dirs); do
    n=$((n + 1))
    want=$(jq -c '.cli.text' "$d/golden.json")
    for opt in "--prefill-step-size 2048" "--prefill-step-size 3" "--prefill-step-size 1" "--max-kv-size 6"; do
      got=$(jq -c '.cli | {id: "t", prompt: .text_prompt}' "$d/golden.json" \
            | "$GEN" -m "$d" --ids -n 16 -q -t 2 $opt | jq -c .ids)
      [ "$got" = "$want" ] || { echo "$d $opt: got $got want $want"; return 1; }
    done
  done
  [ "$n" -ge 3 ]
}

@test "gemma3n: --batch 3 with chunked prefill answers each record as alone" {
  d=tests/data/models/gemma3n-tiny-4bit
  recs='{"id":"a","prompt":"def f(x):","max_tokens":9}
{"id":"b","prompt":"import os\nclass A:","max_tokens":3}
{"id":"c","prompt":"return self value list file import class for in if else","max_tokens":12}
{"id":"d","prompt":"x","max_tokens":7}'
  alone=$(echo "$recs" | "$GEN" -m "$d" --ids -q --temp 0 --reproducible | jq -c '[.id, .ids]')
  batch=$(echo "$recs" | "$GEN" -m "$d" --ids -q --temp 0 --reproducible --batch 3 --prefill-step-size 4 | jq -c '[.id, .ids]')
  [ "$(echo "$alone" | grep -c '^\["[a-d]",\[[0-9]')" -eq 4 ]
  [ "$alone" = "$batch" ]
}

@test "gemma3n: prompt-cache files are refused in one line, before any work" {
  d=tests/data/models/gemma3n-tiny
  run --separate-stderr "$GEN" -m "$d" -p hi -n 2 -q --save-prompt-cache "$BATS_TEST_TMPDIR/x.safetensors"
  [ "$status" -ne 0 ]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  [[ "$stderr" == *"prompt-cache files are not supported for gemma3n"* ]]
  [ ! -e "$BATS_TEST_TMPDIR/x.safetensors" ]
  run --separate-stderr "$KVP" build -m "$d" -o "$BATS_TEST_TMPDIR/kv/" <<< '{"id":"a","prompt":"hi"}'
  [ "$status" -ne 0 ]
  [[ "$output" == *"prompt-cache files are not supported for gemma3n"* ]]
}

@test "gemma3n: configs mlx-lm cannot run (or would read past an array) are refused in one line naming the key" {
  src=tests/data/models/gemma3n-tiny
  while IFS='|' read -r edit want; do
    d="$BATS_TEST_TMPDIR/v$RANDOM"; mkdir "$d"
    for f in "$src"/*; do ln -s "$PWD/$f" "$d/"; done
    rm "$d/config.json"
    jq "$edit" "$src/config.json" > "$d/config.json"
    run --separate-stderr "$GEN" -m "$d" -p hi -n 1 -q
    [ "$status" -ne 0 ] || { echo "$edit: loaded"; return 1; }
    [ "$(echo "$stderr" | wc -l)" -eq 1 ]
    [[ "$stderr" == *"$want"* ]] || { echo "$edit: $stderr"; return 1; }
  done <<'CASES'
del(.text_config)|config.json: no "text_config" object
del(.text_config.rope_theta)|text_config has no "rope_theta"
del(.text_config.altup_coef_clip)|text_config has no "altup_coef_clip"
.text_config.num_kv_shared_layers = 5|num_kv_shared_layers 5 leaves no layer with a cache of its own
.text_config.altup_active_idx = 4|altup_active_idx 4 is not one of the 4 altup_num_inputs
.text_config.layer_types = ["sliding_attention","sliding_attention","sliding_attention","sliding_attention","sliding_attention"]|must hold both sliding_attention and full_attention
.text_config.layer_types = ["full_attention","full_attention","full_attention","sliding_attention","sliding_attention"]|the 3 layers before the KV-shared ones must hold both
.text_config.activation_sparsity_pattern = [1.5, 0, 0, 0, 0]|"activation_sparsity_pattern"[0] must be at most 1 (got 1.5)
.text_config.intermediate_size = [128, 96]|"intermediate_size" must list 5 layers
.text_config.intermediate_size = [128, 96, 0, 64, 128]|"intermediate_size"[2] must be a positive integer
CASES
}
