#!/usr/bin/env bats
# mlx-gen --numerics (and mlx-kvpack build --numerics): mlx-lm's own greedy tokens through the
# CLI on the bundled bfloat16 model (goldens: tests/gen/gen_numerics_goldens.py), the same
# bits whatever the batch, prompt chunking and threads, float32 models unchanged, usage errors.

bats_require_minimum_version 1.5.0

setup_file() {
  export B=${MT_BUILD:-build}
  export GEN="$PWD/$B/bin/mlx-gen" KV="$PWD/$B/bin/mlx-kvpack"
  export M=models/tinydocs-22m-4bit T="$BATS_FILE_TMPDIR"
  # the golden runs of the bundled model as records: {"id", "ids", "max_tokens"}, and the ids
  # mlx-lm generated up to (not including) its first EOS (id 0), where mlx-gen stops
  jq -c '.real[] | select(.path == "models/tinydocs-22m-4bit") | .runs | to_entries[]
         | {id: .key, ids: .value.prompt, max_tokens: (.value.tokens | length)}' \
     tests/data/numerics/goldens.json > "$T/recs.jsonl"
  jq -c '.real[] | select(.path == "models/tinydocs-22m-4bit") | .runs | to_entries[]
         | {id: .key, ids: (.value.tokens | (index(0) // length) as $e | .[0:$e])}' \
     tests/data/numerics/goldens.json > "$T/want.jsonl"
}

@test "--numerics mlx: mlx_lm.generate's greedy ids on the bundled bfloat16 model; the default differs" {
  [ "$(wc -l < "$T/recs.jsonl")" -eq 4 ]
  run --separate-stderr "$GEN" -q -t 2 -m "$M" --numerics mlx --ids < "$T/recs.jsonl"
  [ "$status" -eq 0 ]
  diff <(echo "$output" | jq -c '{id: (.id | tonumber? // .), ids}') "$T/want.jsonl"
  run --separate-stderr "$GEN" -q -t 2 -m "$M" --ids < "$T/recs.jsonl"
  [ "$status" -eq 0 ]
  ! diff <(echo "$output" | jq -c '{id: (.id | tonumber? // .), ids}') "$T/want.jsonl" > /dev/null
}

@test "--numerics mlx: the same ids and log-probabilities whatever the batch, prefill chunks and threads" {
  "$GEN" -q -t 2 -m "$M" --numerics mlx --ids --logprobs 3 --reproducible < "$T/recs.jsonl" > "$T/a.jsonl"
  "$GEN" -q -t 1 -m "$M" --numerics mlx --ids --logprobs 3 --reproducible --batch 4 --prefill-step-size 2 \
    < "$T/recs.jsonl" > "$T/b.jsonl"
  [ -s "$T/a.jsonl" ]
  cmp "$T/a.jsonl" "$T/b.jsonl"
  # log-probabilities are bfloat16 values (8 significant bits), as mlx-lm's
  jq -e '[.logprobs[].top[][1] | fabs | if . == 0 then true
         else (log2 | floor) as $e | (. * pow(2; 7 - $e)) | . == floor end] | all' "$T/a.jsonl" > /dev/null
}

@test "--numerics mlx changes nothing for a float32 model" {
  r='{"id":1,"ids":[1,17,200,45,99,3,250],"max_tokens":12}'
  a=$("$GEN" -q -t 2 -m tests/data/models/llama-tiny-4bit --ids --logprobs 2 --reproducible <<< "$r")
  b=$("$GEN" -q -t 2 -m tests/data/models/llama-tiny-4bit --numerics mlx --ids --logprobs 2 --reproducible <<< "$r")
  [ "$(echo "$a" | jq '.ids | length')" -eq 12 ]
  [ "$a" = "$b" ]
}

@test "--score with --numerics mlx scores from mlx-lm's logits; --numerics f32 is the default" {
  rec='{"text": "The apt command installs packages from the Debian archive."}'
  f=$(echo "$rec" | "$GEN" -q -t 2 -m "$M" --score | jq -c .logprobs)
  g=$(echo "$rec" | "$GEN" -q -t 2 -m "$M" --score --numerics f32 | jq -c .logprobs)
  x=$(echo "$rec" | "$GEN" -q -t 2 -m "$M" --score --numerics mlx | jq -c .logprobs)
  [ "$f" = "$g" ]
  [ "$x" != null ] && [ "$x" != "$f" ]
}

@test "--numerics: a bad value and --int8 with mlx are usage errors; mlx-kvpack build takes it" {
  run --separate-stderr "$GEN" -m "$M" -p hi --numerics bf16
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"--numerics: 'bf16' is not f32 or mlx"* ]]
  run --separate-stderr "$GEN" -m "$M" -p hi --numerics mlx --int8
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"--int8 does not go with --numerics mlx"* ]]
  run --separate-stderr "$KV" inspect --numerics mlx x.kv.zst
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"--numerics goes with build"* ]]
  # a cache built with mlx's numerics continues into mlx-lm's tokens
  head -n 1 "$T/recs.jsonl" | jq -c '{id, ids: .ids[0:4]}' | "$KV" build -q -m "$M" --numerics mlx -o "$T/p.kv.zst"
  run --separate-stderr "$GEN" -q -t 2 -m "$M" --numerics mlx --ids --prompt-cache "$T/p.kv.zst" \
      < <(head -n 1 "$T/recs.jsonl" | jq -c '.ids |= .[4:]')
  [ "$status" -eq 0 ]
  [ "$(echo "$output" | jq -c .ids)" = "$(head -n 1 "$T/want.jsonl" | jq -c .ids)" ]
  grep -q -- '\\-\\-numerics' man/mlx-gen.1
}
