#!/usr/bin/env bats
# Gated DeltaNet models (qwen3_next, qwen3_5: linear attention with a recurrent state per
# sequence beside the K/V rows of their full-attention layers).  The state carries the
# whole prefix: prefill in chunks must give the tokens of one pass, batched sequences must
# each keep their own state, and what cannot be rewound (speculation, prompt-cache files)
# is refused in one line.

bats_require_minimum_version 1.5.0

setup_file() {
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
  DN=""
  for d in tests/data/models/*/; do
    case "$(jq -r .model_type "$d/config.json")" in qwen3_next|qwen3_5|qwen3_5_moe) DN="$DN ${d%/}" ;; esac
  done
  export DN
  export RECS="$BATS_FILE_TMPDIR/recs.jsonl"
  python3 - "$RECS" <<'PY'
import json, random, sys
random.seed(11)
words = "def return self value list file import class for in if else".split()
with open(sys.argv[1], "w") as f:
    for i in range(9):
        f.write(json.dumps({"id": "r%d" % i, "max_tokens": random.choice([1, 3, 9, 20]),
                            "prompt": " ".join(random.choice(words) for _ in range(random.randint(1, 30)))}) + "\n")
PY
}

@test "the deltanet fixtures are there (qwen3_next and qwen3_5, float and quantized)" {
  [ "$(echo $DN | wc -w)" -ge 6 ]
  [[ " $DN " == *"/qwen3next-tiny "* ]]
  [[ " $DN " == *"/qwen3_5-tiny "* ]]
}

@test "prefill in chunks (--prefill-step-size 1, 3, 7) gives the tokens of one pass" {
  for d in $DN; do
    "$GEN" -m "$d" -q --reproducible --ids -t 2 < "$RECS" > "$BATS_TEST_TMPDIR/one"
    for s in 1 3 7; do
      "$GEN" -m "$d" -q --reproducible --ids -t 2 --prefill-step-size $s < "$RECS" > "$BATS_TEST_TMPDIR/s$s"
      if ! cmp -s "$BATS_TEST_TMPDIR/one" "$BATS_TEST_TMPDIR/s$s"; then
        echo "$d: --prefill-step-size $s differs"; diff "$BATS_TEST_TMPDIR/one" "$BATS_TEST_TMPDIR/s$s"; return 1
      fi
    done
  done
}

@test "--batch 4 --reproducible equals one by one: each sequence keeps its own state" {
  for d in $DN; do
    "$GEN" -m "$d" -q --reproducible --ids -t 2 --batch 1 < "$RECS" > "$BATS_TEST_TMPDIR/b1"
    "$GEN" -m "$d" -q --reproducible --ids -t 2 --batch 4 < "$RECS" > "$BATS_TEST_TMPDIR/b4"
    cmp "$BATS_TEST_TMPDIR/b1" "$BATS_TEST_TMPDIR/b4"
    # and the answers depend on the prompt (the state is not shared or leaked between records)
    [ "$(jq -c .ids "$BATS_TEST_TMPDIR/b1" | sort -u | wc -l)" -ge 5 ]
    "$GEN" -m "$d" -q --reproducible --ids -t 2 --batch 4 --max-kv-size 16 < "$RECS" > "$BATS_TEST_TMPDIR/m4"
    "$GEN" -m "$d" -q --reproducible --ids -t 2 --batch 1 --max-kv-size 16 < "$RECS" > "$BATS_TEST_TMPDIR/m1"
    cmp "$BATS_TEST_TMPDIR/m1" "$BATS_TEST_TMPDIR/m4"
  done
}

@test "a record's answer does not depend on the record before it (the state is reset)" {
  d=tests/data/models/qwen3_5-tiny
  tail -n 1 "$RECS" > "$BATS_TEST_TMPDIR/last"
  "$GEN" -m "$d" -q --reproducible --ids -t 2 < "$BATS_TEST_TMPDIR/last" | jq -c .ids > "$BATS_TEST_TMPDIR/alone"
  "$GEN" -m "$d" -q --reproducible --ids -t 2 < "$RECS" | tail -n 1 | jq -c .ids > "$BATS_TEST_TMPDIR/after"
  cmp "$BATS_TEST_TMPDIR/alone" "$BATS_TEST_TMPDIR/after"
}

@test "--score: token logprobs equal log-softmax of the mlx-lm logits (1e-3)" {
  for d in $DN; do
    run --separate-stderr "$GEN" -m "$d" --score -q <<< "$(jq -c '{ids: .prompt}' "$d/golden.json")"
    [ "$status" -eq 0 ]
    echo "$output" > "$BATS_TEST_TMPDIR/ours.json"
    jq -e --slurpfile o "$BATS_TEST_TMPDIR/ours.json" '
      .prompt as $p | [range(0; ($p | length) - 1) as $i | .logits[$i] as $row |
        ($row | max) as $m | (($row | map(. - $m | exp) | add | log) + $m) as $lse |
        ($row[$p[$i + 1]] - $lse)] as $want |
      $o[0].logprobs as $got | ($want | length) == ($got | length) and
      ([range(0; $want | length) | (($want[.] - $got[.]) | fabs) < 1e-3 * (1 + ($want[.] | fabs))] | all)' \
      "$d/golden.json" || { echo "$d: scores differ"; return 1; }
  done
}

@test "speculative decoding and prompt-cache files are refused in one line (a state cannot be rewound)" {
  d=tests/data/models/qwen3next-tiny
  run --separate-stderr "$GEN" -m "$d" -q --prompt-lookup 3 <<< '{"prompt":"def main","max_tokens":4}'
  [ "$status" -eq 3 ]
  [[ "$output" == *"recurrent layers cannot be rolled back"* ]]
  run --separate-stderr "$GEN" -m "$d" -q --draft-model tests/data/models/qwen3next-tiny-4bit <<< '{"prompt":"def","max_tokens":4}'
  [ "$status" -eq 3 ]
  [[ "$output" == *"recurrent layers cannot be rolled back"* ]]
  run --separate-stderr "$GEN" -m "$d" -q --save-prompt-cache "$BATS_TEST_TMPDIR/pc.safetensors" <<< '{"prompt":"def","max_tokens":2}'
  [ "$status" -eq 3 ]
  [[ "$output" == *"prompt-cache files of models with recurrent layers are not supported"* ]]
  [ ! -e "$BATS_TEST_TMPDIR/pc.safetensors" ]
}
