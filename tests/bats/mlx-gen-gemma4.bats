#!/usr/bin/env bats
# mlx-gen on Gemma 4's text models (gemma4_text, and the multimodal "gemma4" folder's text side):
# per-layer inputs, KV-shared layers and the per-layer K/V widths across chunked prefill and the
# options that touch the cache, against mlx-lm's goldens (tests/gen/llm_families/gemma4.py).

bats_require_minimum_version 1.5.0

setup_file() {
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
}

gemma4_dirs() {
  for d in tests/data/models/gemma4*/; do
    [ -f "$d/golden.json" ] && echo "${d%/}"
  done
}

@test "prefill in chunks (--prefill-step-size 3, 1) and --max-kv-size (ignored, as mlx-lm) give mlx-lm's tokens" {
  n=0
  for d in $(gemma4_dirs); do
    n=$((n + 1))
    want=$(jq -c '.cli.text' "$d/golden.json")
    for opt in "--prefill-step-size 2048" "--prefill-step-size 3" "--prefill-step-size 1" "--max-kv-size 6"; do
      got=$(jq -c '.cli | {id: "t", prompt: .text_prompt}' "$d/golden.json" \
            | "$GEN" -m "$d" --ids -n 16 -q -t 2 $opt | jq -c .ids)
      [ "$got" = "$want" ] || { echo "$d $opt: got $got want $want"; return 1; }
    done
  done
  [ "$n" -eq 9 ]
}

@test "the multimodal folder (gemma4) answers as its text model (gemma4_text)" {
  for q in "" -4bit -8bit; do
    a=$("$GEN" -m "tests/data/models/gemma4-tiny$q" -q --ids -n 12 <<< '{"id":1,"ids":[1,17,200,45]}' | jq -c .ids)
    b=$("$GEN" -m "tests/data/models/gemma4mm-tiny$q" -q --ids -n 12 <<< '{"id":1,"ids":[1,17,200,45]}' | jq -c .ids)
    [ -n "$a" ] && [ "$a" = "$b" ]
  done
}

@test "KV quantization and prompt-cache files are refused in one line" {
  d=tests/data/models/gemma4-tiny
  for opt in "--kv-bits 4" "--kv-bits 8" "--kv-bits 3"; do
    run --separate-stderr "$GEN" -m "$d" -q $opt <<< '{"id":1,"ids":[1,2,3],"max_tokens":2}'
    [ "$status" -eq 3 ]
    [ "$(jq -r .error <<< "$output" | grep -c 'RotatingKVCache\|different widths (gemma4)')" -eq 1 ]
  done
  run --separate-stderr "$GEN" -m "$d" -q --save-prompt-cache "$BATS_TEST_TMPDIR/p.kv" <<< '{"id":1,"ids":[1,2,3],"max_tokens":2}'
  [ "$status" -eq 3 ]
  [[ "$(jq -r .error <<< "$output")" == *"KV-shared layers or K/V rows of different widths (gemma4)"* ]]
  [ ! -e "$BATS_TEST_TMPDIR/p.kv" ]
}

@test "speculative decoding and --batch keep the plain loop's greedy tokens" {
  d=tests/data/models/gemma4-tiny
  recs='{"id":1,"ids":[1,17,200,45,99],"max_tokens":16}
{"id":2,"ids":[1,5,6],"max_tokens":16}
{"id":3,"ids":[1,300,5,77,150,9],"max_tokens":16}'
  want=$("$GEN" -m "$d" -q --ids <<< "$recs" | jq -c .ids)
  for opt in "--batch 3" "--prompt-lookup 2" "--draft-model tests/data/models/gemma4-tiny-8bit"; do
    got=$("$GEN" -m "$d" -q --ids $opt <<< "$recs" | jq -c .ids)
    [ "$got" = "$want" ] || { echo "$opt: $got vs $want"; return 1; }
  done
}

@test "mlx-quant convert reproduces the committed mlx-lm 4-bit and 8-bit folders byte for byte" {
  # module order (layer_scalar and the router's own parameters last in their modules), the
  # router's 8-bit override, mlx-lm's parameter count (leaf modules only) in the index
  for f in gemma4-tiny gemma4moe-tiny gemma4mm-tiny; do
    for q in "4 32" "8 64"; do
      set -- $q
      out="$BATS_TEST_TMPDIR/$f-$1"
      "$PWD/${MT_BUILD:-build}/bin/mlx-quant" convert -m "tests/data/models/$f" -o "$out" -q --bits "$1" --group-size "$2" --quiet
      for b in model.safetensors model.safetensors.index.json config.json; do
        cmp "$out/$b" "tests/data/models/$f-$1bit/$b" || { echo "$f $1-bit: $b differs"; return 1; }
      done
    done
  done
}
