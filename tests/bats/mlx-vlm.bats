#!/usr/bin/env bats
# mlx-vlm as a user meets it, on the tiny SmolVLM folders of tests/data/vlm (random weights
# made with mlx-vlm 0.7.10, goldens.json from tests/gen/gen_vlm_idefics3.py): answers equal
# mlx_vlm.generate's greedy tokens for file paths, data URLs, stdin images and OpenAI content
# parts, float and 4/8-bit; batches, --resume and --score behave as in mlx-gen; bad images and
# mismatched records fail alone with one line naming the record and the image.

bats_require_minimum_version 1.5.0
load helpers

setup() {
  B=${MT_BUILD:-build}
  case $B in /*) ;; *) B="$PWD/$B" ;; esac
  VLM="$B/bin/mlx-vlm"
  D=tests/data/vlm
  M="$D/smolvlm-tiny"
  T="$BATS_TEST_TMPDIR"
}

# the record of golden case $2 of folder $1 as {"id", "image": [...], "prompt", "max_tokens": 32}
golden_record() {
  jq -c --arg d "$D" --argjson c "$2" '.cases[$c] | {id: ("c" + (.case | tostring)), image: [.images[] | $d + "/" + .],
    prompt, max_tokens: 32, return_ids: true}' "$1/goldens.json"
}
golden_tokens() { jq -c --argjson c "$2" '.cases[$c].tokens' "$1/goldens.json"; }

@test "the greedy tokens of mlx_vlm.generate on every golden case, float and 4/8-bit" {
  for f in smolvlm-tiny smolvlm-tiny-q4 smolvlm-tiny-q8; do
    for c in 0 1 2 3; do golden_record "$D/$f" $c; done > "$T/in.jsonl"
    run --separate-stderr "$VLM" -q -m "$D/$f" < "$T/in.jsonl"
    [ "$status" -eq 0 ]
    for c in 0 1 2 3; do
      got=$(echo "$output" | sed -n "$((c + 1))p" | jq -c .ids)
      [ "$got" = "$(golden_tokens "$D/$f" $c)" ] || { echo "$f case $c: $got"; false; }
    done
  done
}

@test "one-shot -p --image streams the same text as the record; --image - reads stdin; a data URL is the file" {
  img="$D/images/portrait_exif6.jpg"
  want=$(jq -r '.cases[2].text' "$M/goldens.json")
  run --separate-stderr "$VLM" -q -m "$M" --image "$img" -p "Describe this image." -n 32
  [ "$status" -eq 0 ]
  [ "$output" = "$want" ]
  run --separate-stderr "$VLM" -q -m "$M" --image - -p "Describe this image." -n 32 < "$img"
  [ "$status" -eq 0 ]
  [ "$output" = "$want" ]
  url="data:image/jpeg;base64,$(base64 -w0 "$img")"
  jq -nc --arg u "$url" '{id: "u", image: $u, prompt: "Describe this image.", max_tokens: 32}' \
    | "$VLM" -q -m "$M" | jq -e --arg w "$want" '.text == $w'
}

@test "OpenAI content parts and Batch API lines give the same answer as the native record" {
  img="$D/images/gradient.png"
  a=$(golden_record "$M" 1 | "$VLM" -q -m "$M" | jq -r .text)
  [ "$a" = "$(jq -r '.cases[1].text' "$M/goldens.json")" ]
  b=$(jq -nc --arg i "$img" '{id: "m", max_tokens: 32, messages: [{role: "user", content: [
        {type: "image_url", image_url: {url: $i}}, {type: "text", text: "What shapes are in this picture?"}]}]}' \
      | "$VLM" -q -m "$M" | jq -r .text)
  [ "$b" = "$a" ]
  c=$(jq -nc --arg i "$img" '{custom_id: "r1", method: "POST", url: "/v1/chat/completions", body: {max_tokens: 32,
        messages: [{role: "user", content: [{type: "image_url", image_url: {url: $i}},
        {type: "text", text: "What shapes are in this picture?"}]}]}}' | "$VLM" -q -m "$M")
  echo "$c" | jq -e --arg a "$a" '.custom_id == "r1" and .response.status_code == 200 and
    .response.body.choices[0].message.content == $a'
}

@test "--batch 2 answers as one by one, in input order; a repeated image is encoded once" {
  for c in 2 0 3 1 2; do golden_record "$M" $c; done > "$T/in.jsonl"
  run --separate-stderr "$VLM" -m "$M" < "$T/in.jsonl"
  [ "$status" -eq 0 ]
  one=$(echo "$output" | jq -c '{id, ids}')
  [[ "$stderr" == *"4 images encoded, 2 reused"* ]]
  run --separate-stderr "$VLM" -q -m "$M" --batch 2 < "$T/in.jsonl"
  [ "$status" -eq 0 ]
  [ "$(echo "$output" | jq -c '{id, ids}')" = "$one" ]
  [ "$(echo "$output" | jq -r .id | tr '\n' ' ')" = "c2 c0 c3 c1 c2 " ]
}

@test "bad images and mismatched records fail alone with one line naming them (exit 3)" {
  head -c 300 "$D/images/gradient.png" > "$T/cut.png"
  printf 'not an image' > "$T/text.png"
  {
    golden_record "$M" 0
    jq -nc '{id: "missing", image: "no/such.png", prompt: "x"}'
    jq -nc --arg i "$T/cut.png" '{id: "cut", image: $i, prompt: "x"}'
    jq -nc --arg i "$T/text.png" '{id: "text", image: $i, prompt: "x"}'
    jq -nc '{id: "bomb", image: "tests/data/image/bomb_50000x50000.png", prompt: "x"}'
    jq -nc --arg i "$D/images/rgba.png" '{id: "extra", image: [$i], max_tokens: 8, messages: [{role: "user", content: [
      {type: "image_url", image_url: {url: $i}}, {type: "text", text: "two?"}]}]}'
    jq -nc --arg i "$D/images/rgba.png" '{id: "literal", image: $i, prompt: "what is <image> here?"}'
    jq -nc '{id: "url", image: "https://example.com/a.png", prompt: "x"}'
    jq -nc '{id: "type", image: 7, prompt: "x"}'
    golden_record "$M" 1
  } > "$T/in.jsonl"
  run --separate-stderr "$VLM" -q -m "$M" < "$T/in.jsonl"
  [ "$status" -eq 3 ]
  [ "$(echo "$output" | wc -l)" -eq 10 ]
  want=$(jq -c '[.cases[0].tokens, .cases[1].tokens]' "$M/goldens.json")
  echo "$output" | jq -s -e --argjson w "$want" 'map(select(.id == "c0" or .id == "c1") | .ids) == $w'
  err() { echo "$output" | jq -r --arg i "$1" 'select(.id == $i) | .error'; }
  [[ "$(err missing)" == *"image 1 (no/such.png)"*"No such file"* ]]
  [[ "$(err cut)" == *"image 1"*"cut.png"* ]]
  [[ "$(err text)" == *"image 1"*"text.png"* ]]
  [[ "$(err bomb)" == *"bomb_50000x50000.png"*"pixels"* ]]
  # an "image" beside messages joins the last user message: two images here
  echo "$output" | jq -s -e 'map(select(.id == "extra"))[0].prompt_tokens > 400'
  [[ "$(err literal)" == *"more image places"* ]]
  [[ "$(err url)" == *"not fetched from URLs"* ]]
  [[ "$(err type)" == *"\"image\" must"* ]]
  for i in missing cut text bomb literal url type; do [ "$(err $i | wc -l)" -eq 1 ]; done
}

@test "a text-only model is refused by name; a VLM answers text-only records too" {
  run --separate-stderr "$VLM" -q -m models/tinydocs-22m-4bit -p hi --image "$D/images/rgba.png"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"not a vision-language model"* ]]
  run --separate-stderr "$VLM" -q -m "$M" <<< '{"id": "t", "prompt": "Hello", "max_tokens": 4}'
  [ "$status" -eq 0 ]
  echo "$output" | jq -e '.completion_tokens == 4 and .prompt_tokens > 3'
}

@test "--resume continues a cut run; --score gives the log-probabilities with the image in context" {
  for c in 0 1 2; do golden_record "$M" $c; done > "$T/in.jsonl"
  "$VLM" -q -m "$M" < "$T/in.jsonl" | jq -c '{id, ids}' > "$T/full.jsonl"
  head -n 1 "$T/in.jsonl" | "$VLM" -q -m "$M" > "$T/out.jsonl"
  run "$VLM" -q -m "$M" --resume "$T/out.jsonl" < "$T/in.jsonl"
  [ "$status" -eq 0 ]
  [ "$(jq -c '{id, ids}' "$T/out.jsonl")" = "$(cat "$T/full.jsonl")" ]
  # the score of the prompt + its greedy answer: the answer's tokens are each the argmax, so
  # their log-probabilities are the highest; with another image the same text scores differently
  s1=$(jq -nc --arg i "$D/images/tiny_grey.png" '{id: "s", image: $i, prompt: "Describe this image."}' \
       | "$VLM" -q -m "$M" --score | jq .sum)
  s2=$(jq -nc --arg i "$D/images/gradient.png" '{id: "s", image: $i, prompt: "Describe this image."}' \
       | "$VLM" -q -m "$M" --score | jq .sum)
  [ -n "$s1" ] && [ -n "$s2" ] && [ "$s1" != "$s2" ]
}

@test "usage errors exit 2 with a message" {
  run "$VLM" --image x.png
  [ "$status" -eq 2 ]
  run "$VLM" -m "$M" --image x.png
  [ "$status" -eq 2 ]
  [[ "$output" == *"--image goes with -p"* ]]
  run "$VLM" -m "$M" --temp nope
  [ "$status" -eq 2 ]
  run "$VLM" -m "$M" --prompt-cache x.kv.zst
  [ "$status" -eq 2 ]
  run "$VLM" --help
  [ "$status" -eq 0 ]
  [[ "$output" == *"--image FILE"* && "$output" == *"--top-p"* ]]
}

@test "structured output with images: every answer matches the record's regex; --batch 3 --reproducible equals one by one" {
  for c in 2 0 3 1 2 0; do golden_record "$M" $c; done \
    | jq -c '. + {regex: "(cat|dog|bird) [0-9]{1,3}", temperature: 1, seed: (.id | length), max_tokens: 16}' > "$T/in.jsonl"
  run --separate-stderr "$VLM" -m "$M" --reproducible < "$T/in.jsonl"
  [ "$status" -eq 0 ]
  [ "$(echo "$output" | jq -r .text | grep -cE '^(cat|dog|bird) [0-9]{1,3}$')" -eq 6 ]
  [[ "$stderr" == *"structured output: 6 answers, 6 ended by the grammar, 6 of them valid"* ]]
  one="$output"
  run --separate-stderr "$VLM" -q -m "$M" --reproducible --batch 3 < "$T/in.jsonl"
  [ "$output" = "$one" ]
}
