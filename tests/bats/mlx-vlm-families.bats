#!/usr/bin/env bats
# mlx-vlm on the tiny Gemma 3, LLaVA-1.5 and PaliGemma folders of tests/data/vlm (random weights
# made with mlx-vlm 0.7.10, goldens.json from tests/gen/gen_vlm_{gemma3,llava,paligemma}.py): the
# answers' ids equal mlx_vlm.generate's greedy tokens, float and 4/8-bit.

bats_require_minimum_version 1.5.0
load helpers

setup() {
  B=${MT_BUILD:-build}
  case $B in /*) ;; *) B="$PWD/$B" ;; esac
  VLM="$B/bin/mlx-vlm"
  D=tests/data/vlm
  T="$BATS_TEST_TMPDIR"
}

golden_record() {
  jq -c --arg d "$D" --argjson c "$2" '.cases[$c] | {id: ("c" + (.case | tostring)), image: [.images[] | $d + "/" + .],
    prompt, max_tokens: 32, return_ids: true}' "$1/goldens.json"
}
golden_tokens() { jq -c --argjson c "$2" '.cases[$c].tokens' "$1/goldens.json"; }

check_folders() {
  for f in "$@"; do
    for c in 0 1 2 3; do golden_record "$D/$f" $c; done > "$T/in.jsonl"
    run --separate-stderr "$VLM" -q -m "$D/$f" < "$T/in.jsonl"
    [ "$status" -eq 0 ] || { echo "$f: $stderr"; false; }
    [ -z "$stderr" ]
    for c in 0 1 2 3; do
      got=$(echo "$output" | sed -n "$((c + 1))p" | jq -c .ids)
      [ "$got" = "$(golden_tokens "$D/$f" $c)" ] || { echo "$f case $c: $got"; false; }
    done
  done
}

@test "gemma3: the greedy tokens of mlx_vlm.generate on every golden case (one image, two), float and 4/8-bit" {
  check_folders gemma3-tiny gemma3-tiny-q4 gemma3-tiny-q8
}

@test "gemma3 with pan & scan (the image, then its crops, each 256 tokens): mlx_vlm.generate's greedy tokens" {
  check_folders gemma3-tiny-pas
}

@test "llava: the greedy tokens of mlx_vlm.generate on every golden case (one image, two), float and 4/8-bit" {
  check_folders llava-tiny llava-tiny-q4 llava-tiny-q8
}

@test "paligemma (no chat template, bidirectional prefill): the greedy tokens of mlx_vlm.generate, float and 4/8-bit" {
  check_folders paligemma-tiny paligemma-tiny-q4 paligemma-tiny-q8
}

@test "--batch 2 gives every family's golden tokens" {
  for f in gemma3-tiny llava-tiny-q4 paligemma-tiny-q8; do
    for c in 0 1 2 3; do golden_record "$D/$f" $c; done > "$T/in.jsonl"
    run --separate-stderr "$VLM" -q -m "$D/$f" --batch 2 < "$T/in.jsonl"
    [ "$status" -eq 0 ] || { echo "$f: $stderr"; false; }
    for c in 0 1 2 3; do
      got=$(echo "$output" | jq -c --arg i "c$c" 'select(.id == $i) | .ids')
      [ "$got" = "$(golden_tokens "$D/$f" $c)" ] || { echo "$f case $c: $got"; false; }
    done
  done
}

@test "one-shot -p --image streams the golden text (PaliGemma: <image>s, <bos>, the prompt, a newline)" {
  M="$D/paligemma-tiny"
  want=$(jq -r '.cases[1].text' "$M/goldens.json")
  run --separate-stderr "$VLM" -q -m "$M" --image "$D/images/gradient.png" -p "What shapes are in this picture?" -n 32
  [ "$status" -eq 0 ] || { echo "$stderr"; false; }
  [ "$output" = "$want" ]
}

@test "paligemma takes one image per record, as mlx-vlm does" {
  rec=$(jq -nc --arg d "$D" '{image: [$d + "/images/gradient.png", $d + "/images/rgba.png"], prompt: "caption en"}')
  run --separate-stderr "$VLM" -q -m "$D/paligemma-tiny" <<< "$rec"
  [ "$status" -ne 0 ] || echo "$output" | jq -e '.error' > /dev/null
  [[ "$stderr$output" == *"one image per prompt"* ]]
}
