#!/usr/bin/env bats
# mlx-gen on the recurrent-state families (short convolutions, Mamba, Mamba-2 and their
# hybrids): the state carried across forward calls, against mlx-lm's goldens
# (tests/gen/llm_families/ssm.py), and the features that cannot rewind a recurrence.

bats_require_minimum_version 1.5.0

setup_file() {
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
}

# the fixture folders of the families with recurrent state (baichuan_m1: its k/v convolution)
ssm_dirs() {
  for d in tests/data/models/*/; do
    [ -f "$d/golden.json" ] || continue
    case "$(jq -r .model_type "$d/config.json")" in
      lfm2|lfm2_moe|baichuan_m1|mamba|mamba2|falcon_mamba|nemotron_h|falcon_h1|granitemoehybrid|jamba) echo "${d%/}" ;;
    esac
  done
}

@test "prefill in chunks (--prefill-step-size 3, 1) gives mlx-lm's greedy tokens, as one pass does" {
  n=0
  for d in $(ssm_dirs); do
    n=$((n + 1))
    want=$(jq -c '.cli.text' "$d/golden.json")
    for step in 2048 3 1; do
      got=$(jq -c '.cli | {id: "t", prompt: .text_prompt}' "$d/golden.json" \
            | "$GEN" -m "$d" --ids -n 16 -q -t 2 --prefill-step-size "$step" | jq -c .ids)
      [ "$got" = "$want" ] || { echo "$d step $step: got $got want $want"; return 1; }
    done
  done
  [ "$n" -ge 12 ]
}

@test "--score: token logprobs equal log-softmax of the mlx-lm logits (1e-3), also in chunks" {
  for d in $(ssm_dirs); do
    for step in 2048 5; do
      run --separate-stderr "$GEN" -m "$d" --score -q --prefill-step-size "$step" <<< "$(jq -c '{ids: .prompt}' "$d/golden.json")"
      [ "$status" -eq 0 ]
      echo "$output" > "$BATS_TEST_TMPDIR/ours.json"
      jq -e --slurpfile o "$BATS_TEST_TMPDIR/ours.json" '
        .prompt as $p | [range(0; ($p | length) - 1) as $i | .logits[$i] as $row |
          ($row | max) as $m | (($row | map(. - $m | exp) | add | log) + $m) as $lse |
          ($row[$p[$i + 1]] - $lse)] as $want |
        $o[0].logprobs as $got | ($want | length) == ($got | length) and
        ([range(0; $want | length) | (($want[.] - $got[.]) | fabs) < 1e-3] | all)' "$d/golden.json" >/dev/null \
        || { echo "$d step $step: $output"; return 1; }
    done
  done
}

@test "--max-kv-size changes nothing (mlx-lm's make_cache ignores it for these models)" {
  for d in $(ssm_dirs); do
    want=$(jq -c '.cli.text' "$d/golden.json")
    got=$(jq -c '.cli | {id: "t", prompt: .text_prompt}' "$d/golden.json" \
          | "$GEN" -m "$d" --ids -n 16 -q -t 2 --max-kv-size 6 | jq -c .ids)
    [ "$got" = "$want" ] || { echo "$d: got $got want $want"; return 1; }
  done
}

@test "mixed prompt lengths decoding together keep one state per sequence (--batch 3 = alone)" {
  for d in tests/data/models/lfm2-tiny tests/data/models/mamba2-tiny-4bit tests/data/models/mamba-tiny; do
    printf '%s\n' '{"id":1,"prompt":"def f(x):","max_tokens":9}' '{"id":2,"prompt":"a","max_tokens":12}' \
      '{"id":3,"prompt":"import os\nimport sys\n\nclass A:","max_tokens":5}' '{"id":4,"prompt":"x = 1","max_tokens":7}' \
      > "$BATS_TEST_TMPDIR/r"
    a=$("$GEN" -m "$d" -q --ids -t 2 --batch 1 < "$BATS_TEST_TMPDIR/r" | jq -c .ids)
    b=$("$GEN" -m "$d" -q --ids -t 2 --batch 3 < "$BATS_TEST_TMPDIR/r" | jq -c .ids)
    [ "$a" = "$b" ] || { echo "$d: $a vs $b"; return 1; }
    # each equals the record run on its own
    one=$(sed -n 3p "$BATS_TEST_TMPDIR/r" | "$GEN" -m "$d" -q --ids -t 2 | jq -c .ids)
    [ "$one" = "$(echo "$a" | sed -n 3p)" ]
  done
}

@test "speculative decoding and prompt-cache files refuse recurrent models with one clear line" {
  d=tests/data/models/mamba2-tiny
  run --separate-stderr "$GEN" -m "$d" -q -p "hello" -n 4 --prompt-lookup 3
  [ "$status" -ne 0 ]
  [[ "$stderr" == *"recurrent layers cannot be rolled back"* ]]
  [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
  run --separate-stderr "$GEN" -m tests/data/models/lfm2-tiny -q -p "hello" -n 4 --draft-model tests/data/models/lfm2-tiny-4bit
  [ "$status" -ne 0 ]
  [[ "$stderr" == *"recurrent layers cannot be rolled back"* ]]
  [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
  run --separate-stderr "$GEN" -m "$d" -q -p "hello" -n 4 --save-prompt-cache "$BATS_TEST_TMPDIR/p.kv.zst"
  [ "$status" -ne 0 ]
  [[ "$stderr" == *"prompt-cache files of models with recurrent layers are not supported"* ]]
  [ ! -e "$BATS_TEST_TMPDIR/p.kv.zst" ]
  "$GEN" -m tests/data/models/llama-tiny -q -p "hello" -n 2 --save-prompt-cache "$BATS_TEST_TMPDIR/l.kv.zst" >/dev/null
  run --separate-stderr "$GEN" -m "$d" -q -p "hello" -n 4 --prompt-cache "$BATS_TEST_TMPDIR/l.kv.zst"
  [ "$status" -ne 0 ]
  [[ "$stderr" == *"prompt-cache files of models with recurrent layers are not supported"* ]]
  [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
}

@test "the shared prefix cache reuses recurrent state only where no rollback is needed" {
  d=tests/data/models/lfm2-tiny
  printf '%s\n' '{"id":1,"prompt":"def main():","max_tokens":6}' '{"id":2,"prompt":"def main():\n    return","max_tokens":6}' \
    '{"id":3,"prompt":"def main():","max_tokens":6}' '{"id":4,"prompt":"def mai","max_tokens":6}' > "$BATS_TEST_TMPDIR/r"
  a=$("$GEN" -m "$d" -q --ids -t 2 < "$BATS_TEST_TMPDIR/r" | jq -c .ids)
  b=$("$GEN" -m "$d" -q --ids -t 2 --prefix-cache-mb 16 < "$BATS_TEST_TMPDIR/r" | jq -c .ids)
  [ "$a" = "$b" ]
}

@test "--kv-bits: nothing to quantize in recurrent-only models (as mlx-lm); hybrids quantize their attention" {
  for d in tests/data/models/mamba-tiny tests/data/models/mamba2-tiny tests/data/models/falcon-mamba-tiny-4bit; do
    want=$(jq -c '.cli.text' "$d/golden.json")
    for b in 4 8 3; do
      got=$(jq -c '.cli | {id: "t", prompt: .text_prompt}' "$d/golden.json" \
            | "$GEN" -m "$d" --ids -n 16 -q -t 2 --kv-bits "$b" --quantized-kv-start 0 | jq -c .ids)
      [ "$got" = "$want" ] || { echo "$d --kv-bits $b: got $got want $want"; return 1; }
    done
  done
  for d in tests/data/models/lfm2-tiny tests/data/models/nemotron-h-tiny tests/data/models/falcon-h1-tiny; do
    run --separate-stderr "$GEN" -m "$d" -q -p "def main():" -n 8 --kv-bits 3
    [ "$status" -eq 0 ]
    [ -n "$output" ]
  done
}

@test "a block pattern with an unknown kind is refused at load with one line naming the layer" {
  cp -r tests/data/models/nemotron-h-tiny "$BATS_TEST_TMPDIR/nem"
  jq '.hybrid_override_pattern = "M*XM"' tests/data/models/nemotron-h-tiny/config.json > "$BATS_TEST_TMPDIR/nem/config.json"
  run --separate-stderr "$GEN" -m "$BATS_TEST_TMPDIR/nem" -q -p "hi" -n 2
  [ "$status" -ne 0 ]
  [[ "$stderr" == *"layer 2's block type is not one of M, *, -, E"* ]]
  [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
}

@test "mlx-quant convert makes mlx-lm's 4-bit forms (routers 8-bit where mlx-lm says; plain parameters left alone)" {
  QUANT="$PWD/${MT_BUILD:-build}/bin/mlx-quant"
  for f in jamba-tiny nemotron-h-moe granitemoehybrid-moe mamba2-tiny lfm2-tiny lfm2moe-tiny falcon-mamba-tiny; do
    out="$BATS_TEST_TMPDIR/$f"
    "$QUANT" convert -m "tests/data/models/$f" -o "$out" -q --bits 4 --group-size 32 >/dev/null
    [ "$(jq -cS .quantization "$out/config.json")" = "$(jq -cS .quantization "tests/data/models/$f-4bit/config.json")" ] \
      || { echo "$f: quantization block differs"; return 1; }
    want=$(jq -c '.cli.text' "tests/data/models/$f-4bit/golden.json")
    got=$(jq -c '.cli | {id: "t", prompt: .text_prompt}' "tests/data/models/$f-4bit/golden.json" \
          | "$GEN" -m "$out" --ids -n 16 -q -t 2 | jq -c .ids)
    [ "$got" = "$want" ] || { echo "$f: got $got want $want"; return 1; }
  done
}

@test "--kv-bits on hybrids with head_dim 64: mlx-lm's greedy tokens (attention quantized; falcon_h1's CacheList not)" {
  g=tests/data/ssm/kvbits.json
  n=0
  for name in $(jq -r '.models | keys[]' "$g"); do
    d=tests/data/ssm/$name
    rec=$(jq -c '{id: 1, ids: .prompt, max_tokens: .max_tokens}' "$g")
    got=$(echo "$rec" | "$GEN" -m "$d" -q --ids -t 2 | jq -c .ids)
    [ "$got" = "$(jq -c --arg m "$name" '.models[$m].greedy' "$g")" ] || { echo "$name plain: $got"; return 1; }
    for i in $(seq 0 $(($(jq --arg m "$name" '.models[$m].cases | length' "$g") - 1))); do
      c=$(jq -c --arg m "$name" ".models[\$m].cases[$i]" "$g")
      got=$(echo "$rec" | "$GEN" -m "$d" -q --ids -t 2 --kv-bits "$(jq .bits <<< "$c")" \
            --kv-group-size "$(jq .group <<< "$c")" --quantized-kv-start "$(jq .start <<< "$c")" | jq -c .ids)
      [ "$got" = "$(jq -c .greedy <<< "$c")" ] || { echo "$name $c: got $got"; return 1; }
      n=$((n + 1))
    done
  done
  [ "$n" -ge 9 ]
}
