#!/usr/bin/env bats
# mlx-gen on the mixture-of-experts fixtures (lib/models/moe.c, moe_fwd.c): --score against
# mlx-lm's logits, and --batch decoding (rows grouped by expert, the shared kernels) giving
# each record the greedy text it gets alone.

bats_require_minimum_version 1.5.0

setup_file() {
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
  export MOE="qwen2moe-tiny olmoe-tiny granitemoe-tiny phimoe-tiny ernie45moe-tiny bailing-tiny hunyuan-tiny hunyuancla-tiny minimax-tiny dbrx-tiny"
}

@test "--score on every MoE family: token logprobs equal log-softmax of the mlx-lm logits (1e-3)" {
  for f in $MOE; do
    d=tests/data/models/$f
    run --separate-stderr "$GEN" -m "$d" --score -q <<< "$(jq -c '{ids: .prompt}' "$d/golden.json")"
    [ "$status" -eq 0 ] || { echo "$f: exit $status: $stderr"; return 1; }
    echo "$output" > "$BATS_TEST_TMPDIR/ours.json"
    jq -e --slurpfile o "$BATS_TEST_TMPDIR/ours.json" '
      .prompt as $p | [range(0; ($p | length) - 1) as $i | .logits[$i] as $row |
        ($row | max) as $m | (($row | map(. - $m | exp) | add | log) + $m) as $lse |
        ($row[$p[$i + 1]] - $lse)] as $want |
      $o[0].logprobs as $got | ($want | length) == ($got | length) and
      ([range(0; $want | length) | (($want[.] - $got[.]) | fabs) < 1e-3] | all)' "$d/golden.json" >/dev/null ||
      { echo "$f: --score differs from mlx-lm"; return 1; }
  done
}

@test "--batch 4 (experts grouped over the batch's rows) gives every MoE family the greedy text of --batch 1" {
  for i in 1 2 3 4 5 6; do echo "{\"id\": $i, \"prompt\": \"hello world $i times\", \"max_tokens\": 12}"; done \
    > "$BATS_TEST_TMPDIR/r"
  for f in $MOE; do
    d=tests/data/models/$f
    a=$("$GEN" -m "$d" -q -t 2 --batch 1 < "$BATS_TEST_TMPDIR/r" | jq -c '[.id, .text, .completion_tokens]')
    b=$("$GEN" -m "$d" -q -t 2 --batch 4 < "$BATS_TEST_TMPDIR/r" | jq -c '[.id, .text, .completion_tokens]')
    [ "$(echo "$a" | wc -l)" -eq 6 ] || { echo "$f: $(echo "$a" | wc -l) answers"; return 1; }
    [ "$a" = "$b" ] || { echo "$f: --batch 4 differs"; return 1; }
  done
}
