#!/usr/bin/env bats
# mlx-gen generation through the CLI against mlx-lm (tests/gen/gen_llm_fixtures.py):
# for every fixture model (each family, float / 4-bit / 8-bit), a text prompt and a chat
# give the same 16 greedy token ids and the same text as mlx_lm.stream_generate.
# (One known difference in text: mlx-lm's BPE streaming detokenizer turns a NUL byte
# into "\u0100" (its byte-level alphabet character) except at the very end; we emit
# the NUL byte, as HF decode does.  The comparison maps that character back.)

bats_require_minimum_version 1.5.0

setup_file() {
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
}

@test "greedy ids and text equal mlx-lm for every fixture model (text prompt and chat)" {
  n=0
  for d in tests/data/models/*/; do
    [ -f "$d/golden.json" ] || continue
    n=$((n + 1))
    want=$(jq -c '.cli | [[.text, (.text_out | gsub("\u0100"; "\u0000"))], [.chat, (.chat_out | gsub("\u0100"; "\u0000"))]]' "$d/golden.json")
    got=$(jq -c '.cli | {id: "t", prompt: .text_prompt}, {id: "c", messages: .chat_messages}' "$d/golden.json" \
          | "$GEN" -m "$d" --ids -n 16 -q -t 2 | jq -c -s 'map([.ids, .text])')
    if [ "$got" != "$want" ]; then
      echo "$d: got  $got"; echo "$d: want $want"; return 1
    fi
  done
  [ "$n" -ge 48 ]
}

@test "one-shot -p streams text and a newline; stats on stderr unless -q" {
  d=tests/data/models/llama-tiny
  want=$(jq -r '.cli.text_out' "$d/golden.json")
  run --separate-stderr "$GEN" -m "$d" -p "$(jq -r .cli.text_prompt "$d/golden.json")" -n 16
  [ "$status" -eq 0 ]
  [ "$output" = "$want" ]
  [[ "$stderr" == *"Prompt: "*" tokens, "*"Generation: 16 tokens"* ]]
  run --separate-stderr "$GEN" -m "$d" -p "x" -n 4 -q
  [ -z "$stderr" ]
}

@test "--chat -p applies the template like a messages record" {
  d=tests/data/models/qwen3-tiny
  want=$(jq -r '.cli.chat_out' "$d/golden.json")
  run --separate-stderr "$GEN" -m "$d" --chat -p "Say hello in JSON." -n 16 -q
  [ "$status" -eq 0 ]
  [ "$output" = "$want" ]
}

@test "max_tokens, stop strings and finish_reason per record" {
  d=tests/data/models/llama-tiny
  full=$(jq -r '.cli.text_out' "$d/golden.json")
  stop="${full:6:3}"   # a stop string from the middle of the greedy text cuts it there
  printf '%s\n' '{"id":1,"prompt":"def main():\n    return","max_tokens":3}' \
    "$(jq -cn --arg s "$stop" '{id:2,prompt:"def main():\n    return",max_tokens:16,stop:[$s]}')" \
    '{"id":3,"prompt":"def main():\n    return","max_tokens":0}' > "$BATS_TEST_TMPDIR/in.jsonl"
  run --separate-stderr "$GEN" -m "$d" -q < "$BATS_TEST_TMPDIR/in.jsonl"
  [ "$status" -eq 0 ]
  [ "$(echo "$output" | sed -n 1p | jq -r '[.finish_reason, .completion_tokens] | join(",")')" = "length,3" ]
  [ "$(echo "$output" | sed -n 2p | jq -r .finish_reason)" = "stop" ]
  [ "$(echo "$output" | sed -n 2p | jq -r .text)" = "${full%%"$stop"*}" ]
  [ "$(echo "$output" | sed -n 3p | jq -r '[.text, .completion_tokens] | join(",")')" = ",0" ]
}

@test "sampling: same seed, same text; another seed differs; bad options are record errors" {
  d=tests/data/models/llama-tiny
  printf '%s\n' '{"id":1,"prompt":"hello","max_tokens":24,"temperature":1.0,"top_p":0.9,"seed":7}' \
    '{"id":2,"prompt":"hello","max_tokens":24,"temperature":1.0,"top_p":0.9,"seed":7}' \
    '{"id":3,"prompt":"hello","max_tokens":24,"temperature":1.0,"top_p":0.9,"seed":8}' \
    '{"id":4,"prompt":"hello","top_k":100000}' \
    '{"id":5,"prompt":"hello","temperature":"hot"}' > "$BATS_TEST_TMPDIR/in.jsonl"
  run --separate-stderr "$GEN" -m "$d" -q < "$BATS_TEST_TMPDIR/in.jsonl"
  [ "$status" -eq 3 ]
  t1=$(echo "$output" | sed -n 1p | jq .text)
  [ "$t1" = "$(echo "$output" | sed -n 2p | jq .text)" ]
  [ "$t1" != "$(echo "$output" | sed -n 3p | jq .text)" ]
  echo "$output" | sed -n 4p | jq -e '.error | test("top_k")'
  echo "$output" | sed -n 5p | jq -e '.error == "line 5: \"temperature\" must be a number"'
}

@test "OpenAI batch request lines get Batch API response lines" {
  d=tests/data/models/qwen3-tiny
  printf '%s\n' '{"custom_id":"req-1","method":"POST","url":"/v1/chat/completions","body":{"model":"x","messages":[{"role":"user","content":"Say hello in JSON."}],"max_tokens":16}}' \
    '{"custom_id":"req-2","method":"POST","url":"/v1/completions","body":{"model":"x","prompt":"def main():\n    return","max_tokens":5}}' \
    '{"custom_id":"req-3","method":"POST","url":"/v1/embeddings","body":{}}' > "$BATS_TEST_TMPDIR/in.jsonl"
  run --separate-stderr "$GEN" -m "$d" -q < "$BATS_TEST_TMPDIR/in.jsonl"
  [ "$status" -eq 3 ]
  l1=$(echo "$output" | sed -n 1p)
  [ "$(echo "$l1" | jq -r .custom_id)" = "req-1" ]
  [ "$(echo "$l1" | jq -r .response.status_code)" = 200 ]
  [ "$(echo "$l1" | jq -r .response.body.object)" = "chat.completion" ]
  [ "$(echo "$l1" | jq -r '.response.body.choices[0].message.content')" = "$(jq -r .cli.chat_out "$d/golden.json")" ]
  [ "$(echo "$l1" | jq -r .response.body.usage.completion_tokens)" = 16 ]
  [ "$(echo "$l1" | jq -r .error)" = null ]
  [ "$(echo "$output" | sed -n 2p | jq -r '.response.body.choices[0].finish_reason')" = length ]
  # a failing request line gets the Batch API's failed-request shape
  echo "$output" | sed -n 3p | jq -e '.custom_id == "req-3" and .response == null and .error.code == "invalid_request"
    and (.error.message | test("^line 3: .*not supported"))'
}

@test "a model folder with a broken checkpoint is a one-line fatal error" {
  t="$BATS_TEST_TMPDIR/broken"; mkdir -p "$t"
  cp tests/data/models/llama-tiny/*.json "$t/"
  rm -f "$t/model.safetensors.index.json"
  head -c 1000 tests/data/models/llama-tiny/model.safetensors > "$t/model.safetensors"
  run --separate-stderr "$GEN" -m "$t" -p hi
  [ "$status" -eq 1 ]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  [[ "$stderr" == *"model.safetensors"* ]]
  jq '.model_type = "nosuchfamily"' tests/data/models/llama-tiny/config.json > "$t/config.json"
  cp tests/data/models/llama-tiny/model.safetensors "$t/"
  run --separate-stderr "$GEN" -m "$t" -p hi
  [ "$status" -eq 1 ]
  [[ "$stderr" == *'model_type "nosuchfamily" is not supported'* ]]
}

@test "--batch N gives each record the tokens it gets alone (greedy), in input order" {
  for d in tests/data/models/llama-tiny-4bit tests/data/models/gemma3-tiny tests/data/models/qwen3moe-tiny-8bit tests/data/models/phi3-tiny; do
    for i in $(seq 1 11); do
      printf '{"id":%d,"prompt":"def f%d(x):","max_tokens":%d}\n' "$i" "$i" $((3 + i % 6))
    done > "$BATS_TEST_TMPDIR/in.jsonl"
    one=$("$GEN" -m "$d" --ids -q < "$BATS_TEST_TMPDIR/in.jsonl" | jq -c '[.id, .ids, .text]')
    four=$("$GEN" -m "$d" --ids -q --batch 4 < "$BATS_TEST_TMPDIR/in.jsonl" | jq -c '[.id, .ids, .text]')
    [ "$one" = "$four" ]
    [ "$(echo "$four" | jq -s -c 'map(.[0])')" = "[1,2,3,4,5,6,7,8,9,10,11]" ]
  done
}

@test "--score: token logprobs equal log-softmax of the mlx-lm logits (1e-3), every fixture model" {
  n=0
  for d in tests/data/models/*/; do
    [ -f "$d/golden.json" ] || continue
    # dynamic NTK RoPE: the base depends on the call's length, and --score runs one token less
    case "$d" in *dynrope*) continue ;; esac
    n=$((n + 1))
    run --separate-stderr "$GEN" -m "$d" --score -q <<< "$(jq -c '{ids: .prompt}' "$d/golden.json")"
    [ "$status" -eq 0 ] || { echo "$d: $stderr"; return 1; }
    echo "$output" > "$BATS_TEST_TMPDIR/ours.json"
    # (random tiny models have logits in the tens: the bound is relative, as for the logits)
    jq -e --slurpfile o "$BATS_TEST_TMPDIR/ours.json" '
      .prompt as $p | [range(0; ($p | length) - 1) as $i | .logits[$i] as $row |
        ($row | max) as $m | (($row | map(. - $m | exp) | add | log) + $m) as $lse |
        ($row[$p[$i + 1]] - $lse)] as $want |
      $o[0].logprobs as $got | ($want | length) == ($got | length) and
      ([range(0; $want | length) | (($want[.] - $got[.]) | fabs) < 1e-3 * (1 + ($want[.] | fabs))] | all) and
      (($o[0].sum - ($want | add)) | fabs) < 1e-3 * (1 + ($want | map(fabs) | add))' "$d/golden.json" > /dev/null \
      || { echo "$d: --score differs from the golden logits"; return 1; }
  done
  [ "$n" -ge 45 ]
}

@test "--logprobs K lists the chosen token and its top-K alternatives, best first" {
  d=tests/data/models/qwen3-tiny
  run --separate-stderr "$GEN" -m "$d" -q --logprobs 3 <<< '{"prompt":"hello","max_tokens":4}'
  [ "$status" -eq 0 ]
  echo "$output" | jq -e '(.logprobs | length) == 4 and all(.logprobs[]; (.top | length) == 3 and
    .top[0][0] == .id and .top[0][1] >= .top[1][1] and .top[1][1] >= .top[2][1] and .logprob <= 0)'
}

@test "--resume: a killed run loses nothing and duplicates nothing" {
  d=tests/data/models/llama-tiny
  for i in $(seq 1 12); do printf '{"id":"r%d","prompt":"x%d","max_tokens":3}\n' "$i" "$i"; done > "$BATS_TEST_TMPDIR/in.jsonl"
  out="$BATS_TEST_TMPDIR/out.jsonl"
  head -5 "$BATS_TEST_TMPDIR/in.jsonl" | "$GEN" -m "$d" -q --resume "$out"
  printf '%s\n' '{"id":"r7","error":"line 7: failed before"}' >> "$out"   # failed records are retried
  printf '{"id":"r6","text":"half a li' >> "$out"          # killed in the middle of a write
  run --separate-stderr "$GEN" -m "$d" --resume "$out" < "$BATS_TEST_TMPDIR/in.jsonl"
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"5 answered before, 5 skipped, 7 run, 0 duplicate ids"* ]]
  # in the end: one line per id, in input order, the same lines as an uninterrupted run
  [ "$(jq -r .id "$out" | tr '\n' ' ')" = "r1 r2 r3 r4 r5 r6 r7 r8 r9 r10 r11 r12 " ]
  "$GEN" -m "$d" -q < "$BATS_TEST_TMPDIR/in.jsonl" > "$BATS_TEST_TMPDIR/fresh.jsonl"
  [ "$(jq -c 'del(.prefill_tps, .decode_tps, .cached_tokens)' "$out")" = "$(jq -c 'del(.prefill_tps, .decode_tps, .cached_tokens)' "$BATS_TEST_TMPDIR/fresh.jsonl")" ]
}

@test "generation_config.json eos lists stop generation (the eos token is not emitted)" {
  t="$BATS_TEST_TMPDIR/m"; mkdir -p "$t"; cp tests/data/models/llama-tiny/* "$t/"
  ids=$(jq -c .cli.text "$t/golden.json")
  third=$(echo "$ids" | jq '.[2]')
  printf '{"eos_token_id": [383, %s]}\n' "$third" > "$t/generation_config.json"
  run --separate-stderr "$GEN" -m "$t" --ids -q <<< "$(jq -c '{prompt: .cli.text_prompt, max_tokens: 16}' "$t/golden.json")"
  [ "$status" -eq 0 ]
  [ "$(echo "$output" | jq -c .ids)" = "$(echo "$ids" | jq -c '.[0:2]')" ]
  [ "$(echo "$output" | jq -r .finish_reason)" = stop ]
}

@test "sampling with a seed gives the same text at any batch size" {
  d=tests/data/models/qwen3-tiny-4bit
  for i in $(seq 1 7); do
    printf '{"id":%d,"prompt":"s%d","max_tokens":12,"temperature":0.9,"top_k":50,"min_p":0.02,"seed":%d}\n' "$i" "$i" "$((i * 11))"
  done > "$BATS_TEST_TMPDIR/in.jsonl"
  one=$("$GEN" -m "$d" -q < "$BATS_TEST_TMPDIR/in.jsonl" | jq -c '[.id, .text]')
  three=$("$GEN" -m "$d" -q --batch 3 < "$BATS_TEST_TMPDIR/in.jsonl" | jq -c '[.id, .text]')
  seven=$("$GEN" -m "$d" -q --batch 7 < "$BATS_TEST_TMPDIR/in.jsonl" | jq -c '[.id, .text]')
  [ "$one" = "$three" ]
  [ "$one" = "$seven" ]
}
