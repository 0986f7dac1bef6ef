#!/usr/bin/env bats
# mlx-gen speculative decoding through the CLI: --draft-model / --num-draft-tokens and
# --prompt-lookup give the plain greedy text on the bundled pair (models/tinydocs-22m-4bit,
# draft models/tinydocs-5m-4bit), per-record options in JSONL (also with --batch), the
# counts in the answers, and the refusals as one-line messages.

bats_require_minimum_version 1.5.0

setup_file() {
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
  export M=models/tinydocs-22m-4bit D=models/tinydocs-5m-4bit
  export P="The apt command installs packages. To install a package"
  export R="Rewrite the following text. Text: The daemon reads its configuration file at start-up and writes its log to /var/log/daemon.log. To reload the configuration, send it the HUP signal. Rewritten: The daemon reads"
}

@test "-p with --draft-model, K 1..8, and --prompt-lookup: the plain greedy text" {
  want=$("$GEN" -m "$M" -p "$P" -n 48 -q -t 2)
  [ -n "$want" ]
  for k in 1 3 8; do
    run --separate-stderr "$GEN" -m "$M" --draft-model "$D" --num-draft-tokens "$k" -p "$P" -n 48 -q -t 2
    [ "$status" -eq 0 ]
    [ "$output" = "$want" ]
  done
  run --separate-stderr "$GEN" -m "$M" --draft-model "$D" -p "$P" -n 48 -t 2   # default K 3, stats on stderr
  [ "$status" -eq 0 ]
  [ "$output" = "$want" ]
  [[ "$stderr" == *"Generation: 48 tokens"*"Speculative: "*" proposed tokens accepted"* ]]
  want=$("$GEN" -m "$M" -p "$R" -n 40 -q -t 2)
  run --separate-stderr "$GEN" -m "$M" --prompt-lookup 6 -p "$R" -n 40 -q -t 2
  [ "$status" -eq 0 ]
  [ "$output" = "$want" ]
}

@test "JSONL: per-record num_draft_tokens / prompt_lookup (0 = off), counts in the answers, --batch 4" {
  for r in "$P" "$R"; do
    for o in '{}' '{"num_draft_tokens":0}' '{"num_draft_tokens":2}' '{"num_draft_tokens":5,"stop":["the"]}' \
             '{"prompt_lookup":4}' '{"prompt_lookup":0,"num_draft_tokens":0}' '{"logprobs":3,"num_draft_tokens":4}'; do
      jq -cn --arg p "$r" --argjson o "$o" '{prompt: $p, max_tokens: 32} + $o'
    done
  done > "$BATS_TEST_TMPDIR/in.jsonl"
  jq -c 'del(.num_draft_tokens, .prompt_lookup)' "$BATS_TEST_TMPDIR/in.jsonl" > "$BATS_TEST_TMPDIR/plain.jsonl"
  want=$("$GEN" -m "$M" -q -t 2 --ids < "$BATS_TEST_TMPDIR/plain.jsonl" | jq -c '[.ids, .text, .finish_reason, ([.logprobs[]?.top[][0]])]')
  for b in 1 4; do
    run --separate-stderr "$GEN" -m "$M" --draft-model "$D" --num-draft-tokens 3 --batch "$b" -q -t 2 --ids \
      < "$BATS_TEST_TMPDIR/in.jsonl"
    [ "$status" -eq 0 ]
    got=$(echo "$output" | jq -c '[.ids, .text, .finish_reason, ([.logprobs[]?.top[][0]])]')
    [ "$got" = "$want" ]
    # the counts only where speculation ran (0 turns it off), accepted <= proposed
    [ "$(echo "$output" | jq -s -c 'map(has("draft_tokens"))')" = '[true,false,true,true,true,false,true,true,false,true,true,true,false,true]' ]
    echo "$output" | jq -e -s 'map(select(has("draft_tokens")) | .accepted_tokens <= .draft_tokens) | all'
  done
  # --reproducible leaves the counts out
  run --separate-stderr "$GEN" -m "$M" --draft-model "$D" --reproducible -q -t 2 < "$BATS_TEST_TMPDIR/in.jsonl"
  [ "$status" -eq 0 ]
  echo "$output" | jq -e -s 'map(has("draft_tokens") | not) | all'
}

@test "prompt lookup on a rewriting record keeps proposals" {
  run --separate-stderr "$GEN" -m "$M" -q -t 2 < <(jq -cn --arg p "$R" '{prompt: $p, max_tokens: 40, prompt_lookup: 8}')
  [ "$status" -eq 0 ]
  echo "$output" | jq -e '.draft_tokens > 0 and .accepted_tokens > 0'
}

@test "--max-kv-size: speculation until the rotating cache fills, then plain steps; the same text" {
  want=$("$GEN" -m "$M" -p "$P" -n 64 -q -t 2 --max-kv-size 32)
  run --separate-stderr "$GEN" -m "$M" --draft-model "$D" --max-kv-size 32 -p "$P" -n 64 -q -t 2
  [ "$status" -eq 0 ]
  [ "$output" = "$want" ]
}

@test "sampling with a draft: valid answers, seeded runs repeat" {
  in=$(jq -cn --arg p "$P" '{prompt: $p, max_tokens: 32, temperature: 0.8, top_p: 0.95, seed: 3}')
  a=$(echo "$in" | "$GEN" -m "$M" --draft-model "$D" -q -t 2 --ids | jq -c .ids)
  b=$(echo "$in" | "$GEN" -m "$M" --draft-model "$D" -q -t 2 --ids | jq -c .ids)
  [ "$a" = "$b" ]
  [ "$(echo "$a" | jq length)" -eq 32 ]
}

@test "errors: vocabulary mismatch, bad K, lookup without a draft model, rotating cache" {
  run --separate-stderr "$GEN" -m "$M" --draft-model tests/data/models/llama-tiny -p hi -n 4
  [ "$status" -eq 1 ]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  [[ "$stderr" == "mlx-gen: --draft-model"*"vocabulary"* ]]
  t="$BATS_TEST_TMPDIR/draft"; cp -r "$D" "$t"   # same size, other splits: no merges
  jq '.model.merges = []' "$D/tokenizer.json" > "$t/tokenizer.json"
  run --separate-stderr "$GEN" -m "$M" --draft-model "$t" -p hi -n 4
  [ "$status" -eq 1 ]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  [[ "$stderr" == *"tokenizer splits text differently"* ]]
  for k in 0 65 x; do
    run --separate-stderr "$GEN" -m "$M" --draft-model "$D" --num-draft-tokens "$k" -p hi
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--num-draft-tokens"* ]]
  done
  run --separate-stderr "$GEN" -m "$M" --num-draft-tokens 2 -p hi
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"--num-draft-tokens goes with --draft-model"* ]]
  run --separate-stderr "$GEN" -m "$M" --prompt-lookup 0 -p hi
  [ "$status" -eq 2 ]
  run --separate-stderr "$GEN" -m "$M" --draft-model "$D" --max-kv-size 6 -p "$P"   # the prompt fills the cache
  [ "$status" -eq 1 ]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  [[ "$stderr" == *"rotating KV cache"* ]]
  printf '%s\n' '{"id":1,"prompt":"hi","num_draft_tokens":2,"max_tokens":2}' '{"id":2,"prompt":"hi","num_draft_tokens":99}' \
    '{"id":3,"prompt":"hi","prompt_lookup":-1}' "{\"id\":4,\"prompt\":\"$P\",\"prompt_lookup\":2,\"max_kv_size\":6}" > "$BATS_TEST_TMPDIR/in.jsonl"
  run --separate-stderr "$GEN" -m "$M" -q -t 2 < "$BATS_TEST_TMPDIR/in.jsonl"
  [ "$status" -eq 3 ]
  echo "$output" | sed -n 1p | jq -e '.error | test("needs a draft model")'
  echo "$output" | sed -n 2p | jq -e '.error | test("num_draft_tokens")'
  echo "$output" | sed -n 3p | jq -e '.error | test("prompt_lookup")'
  echo "$output" | sed -n 4p | jq -e '.error | test("rotating")'
}

@test "--help and the man page name the options" {
  run "$GEN" --help
  [ "$status" -eq 0 ]
  for o in --draft-model --num-draft-tokens --prompt-lookup num_draft_tokens prompt_lookup; do
    [[ "$output" == *"$o"* ]]
  done
  for o in --draft-model --num-draft-tokens --prompt-lookup num_draft_tokens prompt_lookup draft_tokens accepted_tokens; do
    grep -q -- "$(echo "$o" | sed 's/-/\\\\-/g')" man/mlx-gen.1 || { echo "mlx-gen.1 lacks $o"; false; }
  done
}

@test "mlx-vlm --prompt-lookup: image records give the plain greedy tokens (M-RoPE, gemma3, llava, paligemma)" {
  VLM="$(dirname "$GEN")/mlx-vlm"
  V=tests/data/vlm
  for f in qwen2-vl-tiny qwen2.5-vl-tiny-q4 gemma3-tiny llava-tiny paligemma-tiny-q8 smolvlm-tiny; do
    jq -c --arg d "$V" '.cases[] | {id: ("c" + (.case | tostring)), image: [.images[] | $d + "/" + .], prompt,
      max_tokens: 32, return_ids: true}' "$V/$f/goldens.json" > "$BATS_TEST_TMPDIR/v.jsonl"
    want=$("$VLM" -q -m "$V/$f" < "$BATS_TEST_TMPDIR/v.jsonl" | jq -c .ids)
    run --separate-stderr "$VLM" -q -m "$V/$f" --prompt-lookup 4 < "$BATS_TEST_TMPDIR/v.jsonl"
    [ "$status" -eq 0 ]
    [ "$(echo "$output" | jq -c .ids)" = "$want" ] || { echo "$f differs"; false; }
    echo "$output" | jq -e -s 'map(.accepted_tokens) | add > 0'
  done
}
