#!/usr/bin/env bats
# mlx-vlm on the tiny Qwen2-VL / Qwen2.5-VL folders of tests/data/vlm (random weights made with
# mlx-vlm 0.7.10, goldens.json from tests/gen/gen_vlm_qwen2vl.py): the answers' ids equal
# mlx_vlm.generate's greedy tokens (M-RoPE positions in the prompt, cache position + rope_delta
# in the decode steps), float and 4/8-bit, one image or two.

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

@test "qwen2_vl: the greedy tokens of mlx_vlm.generate on every golden case, float and 4/8-bit" {
  check_folders qwen2-vl-tiny qwen2-vl-tiny-q4 qwen2-vl-tiny-q8
}

@test "qwen2_5_vl (window attention): the greedy tokens of mlx_vlm.generate, float and 4/8-bit" {
  check_folders qwen2.5-vl-tiny qwen2.5-vl-tiny-q4 qwen2.5-vl-tiny-q8
}

@test "one-shot -p --image streams the golden text (Qwen2-VL puts the image after the prompt)" {
  M="$D/qwen2-vl-tiny"
  want=$(jq -r '.cases[2].text' "$M/goldens.json")
  run --separate-stderr "$VLM" -q -m "$M" --image "$D/images/portrait_exif6.jpg" -p "Describe this image." -n 32
  [ "$status" -eq 0 ]
  [ "$output" = "$want" ]
}

@test "--batch 2 decodes the sequences together, each at its own rope_delta" {
  for f in qwen2-vl-tiny qwen2.5-vl-tiny; do
    for c in 0 1 2 3; do golden_record "$D/$f" $c; done > "$T/in.jsonl"
    run --separate-stderr "$VLM" -q -m "$D/$f" --batch 2 < "$T/in.jsonl"
    [ "$status" -eq 0 ]
    for c in 0 1 2 3; do
      got=$(echo "$output" | jq -c --arg i "c$c" 'select(.id == $i) | .ids')
      [ "$got" = "$(golden_tokens "$D/$f" $c)" ] || { echo "$f case $c: $got"; false; }
    done
  done
}

@test "a text-only record runs with plain positions (mlx_vlm.generate's tokens, recorded here)" {
  # HF_HUB_OFFLINE=1 mlx_vlm.generate(model, processor, apply_chat_template(processor, config,
  #   "Tell me a story about a cat.", num_images=0), max_tokens=32, temperature=0.0)
  want1='[69,98,140,231,179,296,385,35,250,305,155,370,48,150,316,262,159,254,247,209,375,59,341,411,75,377,358,298,289,40,268,370]'
  want2='[257,60,342,60,342,60,342,60,342,60,342,60,342,60,342,60,342,60,342,60,342,60,342,36,320,273,353,54,161,107,349,13]'
  rec='{"id":"t","prompt":"Tell me a story about a cat.","max_tokens":32,"return_ids":true}'
  [ "$(echo "$rec" | "$VLM" -q -m "$D/qwen2-vl-tiny" | jq -c .ids)" = "$want1" ]
  [ "$(echo "$rec" | "$VLM" -q -m "$D/qwen2.5-vl-tiny-q4" | jq -c .ids)" = "$want2" ]
}
