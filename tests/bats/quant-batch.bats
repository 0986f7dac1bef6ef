#!/usr/bin/env bats
# mlx-quant batch: one conversion per JSONL record through the shared record
# loop: the folders equal `mlx-quant convert`'s byte for byte, a bad record is
# an error line and the others go on, --resume skips converted records and
# --shard splits a list over processes.

bats_require_minimum_version 1.5.0
load helpers

setup() {
  B=${MT_BUILD:-build}
  case $B in /*) ;; *) B="$PWD/$B" ;; esac
  Q="$B/bin/mlx-quant"
  L="$PWD/tests/data/models/llama-tiny"
  T="$BATS_TEST_TMPDIR"
}

jobs() {
  printf '{"id":"q4","model":"%s","output":"%s/out/q4","quantize":true,"bits":4,"group_size":32}\n' "$L" "$T"
  printf '{"id":"missing","model":"%s/nope","output":"%s/out/x"}\n' "$T" "$T"
  printf '{"id":"q8","hf_path":"%s","mlx_path":"%s/out/q8","quantize":true,"bits":8}\n' "$L" "$T"
  printf '{"id":"bf16","model":"%s","output":"%s/out/bf16","dtype":"bf16"}\n' "$L" "$T"
  printf '{"id":"badbits","model":"%s","output":"%s/out/b","quantize":true,"bits":"4"}\n' "$L" "$T"
}

@test "batch: each record converts as mlx-quant convert does; bad records are error lines" {
  jobs > "$T/jobs.jsonl"
  run --separate-stderr "$Q" batch -q --reproducible < "$T/jobs.jsonl"
  [ "$status" -eq 3 ]
  [ "$(echo "$output" | wc -l)" -eq 5 ]
  echo "$output" | jq -se 'map(select(.id == "q4"))[0] | .files >= 3 and .bytes > 0 and (has("seconds") | not)'
  echo "$output" | jq -se 'map(select(.id == "missing"))[0] | .error | startswith("line 2: ")'
  echo "$output" | jq -se 'map(select(.id == "badbits"))[0] | .error == "line 5: \"bits\" must be an integer"'
  "$Q" convert -m "$L" -o "$T/ref-q4" -q --bits 4 --group-size 32 --quiet
  "$Q" convert -m "$L" -o "$T/ref-q8" -q --bits 8 --quiet
  "$Q" convert -m "$L" -o "$T/ref-bf16" --dtype bfloat16 --quiet
  for f in q4 q8 bf16; do
    for x in "$T/ref-$f"/*; do cmp "$x" "$T/out/$f/$(basename "$x")"; done
  done
}

@test "batch --resume: a rerun converts only what failed; --shard splits the list" {
  jobs > "$T/jobs.jsonl"
  run --separate-stderr "$Q" batch --resume "$T/done.jsonl" < "$T/jobs.jsonl"
  [ "$status" -eq 3 ]
  [[ "$stderr" == *"0 answered before, 0 skipped, 5 run"* ]]
  run --separate-stderr "$Q" batch --resume "$T/done.jsonl" < "$T/jobs.jsonl"
  [[ "$stderr" == *"3 answered before, 3 skipped, 2 run"* ]]
  [ "$(jq -r .id "$T/done.jsonl" | tr '\n' ' ')" = "q4 missing q8 bf16 badbits " ]
  # two shards of a fresh list: disjoint, together everything
  sed "s|/out/|/sh/|" "$T/jobs.jsonl" > "$T/jobs2.jsonl"
  run --separate-stderr "$Q" batch -q --shard 0/2 < "$T/jobs2.jsonl"
  [ "$(echo "$output" | jq -r .id | tr '\n' ' ')" = "q4 q8 badbits " ]
  run --separate-stderr "$Q" batch -q --shard 1/2 < "$T/jobs2.jsonl"
  [ "$(echo "$output" | jq -r .id | tr '\n' ' ')" = "missing bf16 " ]
  [ -d "$T/sh/q4" ] && [ -d "$T/sh/q8" ] && [ -d "$T/sh/bf16" ]
  run "$Q" batch --shard 2/2 < /dev/null
  [ "$status" -eq 2 ]
  run "$Q" batch extra < /dev/null
  [ "$status" -eq 2 ]
}
