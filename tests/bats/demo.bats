#!/usr/bin/env bats
# The bundled models (models/, trained by tools/train/): each loads in mlx-gen and generates,
# greedily, the same token ids and text as mlx-lm (tests/gen/gen_demo_golden.py ->
# tests/data/demo/golden.json); the target's text is readable English; the models fit the
# size budget.

bats_require_minimum_version 1.5.0

setup_file() {
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
  export GOLD="$PWD/tests/data/demo/golden.json"
}

@test "every bundled model (target 4-bit, 8-bit, draft 4-bit) gives mlx-lm's greedy ids and text" {
  n=0
  for m in $(jq -r '.models | keys[]' "$GOLD"); do
    [ -f "models/$m/config.json" ]
    want=$(jq -c --arg m "$m" '.models[$m] | map([.ids, .text])' "$GOLD")
    got=$(jq -c --arg m "$m" '.models[$m] | to_entries[] | {id: .key, prompt: .value.prompt}' "$GOLD" \
          | "$GEN" -m "models/$m" --ids -n "$(jq .max_tokens "$GOLD")" -q -t 2 | jq -c -s 'map([.ids, .text])')
    if [ "$got" != "$want" ]; then
      echo "$m: got  $got"; echo "$m: want $want"; return 1
    fi
    n=$((n + 1))
  done
  [ "$n" -eq 3 ]
}

@test "the demo command (-p, temperature 0) prints the golden continuation, twice the same" {
  m=tinydocs-22m-4bit
  p=$(jq -r --arg m $m '.models[$m][0].prompt' "$GOLD")
  want=$(jq -r --arg m $m '.models[$m][0].text' "$GOLD")
  run --separate-stderr "$GEN" -m "models/$m" -p "$p" -n "$(jq .max_tokens "$GOLD")" -q
  [ "$status" -eq 0 ]
  [ "$output" = "$want" ]
  first=$output
  run --separate-stderr "$GEN" -m "models/$m" -p "$p" -n "$(jq .max_tokens "$GOLD")" -q --temp 0
  [ "$output" = "$first" ]
}

@test "the target's greedy text is readable: mostly plain words" {
  m=tinydocs-22m-4bit
  txt=$("$GEN" -m "models/$m" -p "$(jq -r --arg m $m '.models[$m][1].prompt' "$GOLD")" -n 40 -q -t 2)
  words=$(printf '%s' "$txt" | tr -s ' \n' '\n\n' | grep -c .)
  alpha=$(printf '%s' "$txt" | tr -s ' \n' '\n\n' | grep -c -E "^[A-Za-z][a-z]*[.,;:]?$")
  echo "text: $txt ($alpha of $words words alphabetic)"
  [ "$words" -ge 10 ]
  [ $((alpha * 100)) -ge $((words * 70)) ]
}

@test "the bundled models stay under 40 MB together" {
  total=$(du -cb models/*/ | tail -1 | cut -f1)
  echo "models/: $total bytes"
  [ "$total" -lt 40000000 ]
}

@test "--int8 selects the int8 kernels: same as MT_QMATH=int8, different logprobs from the float path" {
  rec='{"id":1,"text":"When the system boots, the kernel loads the modules it needs."}'
  f=$(echo "$rec" | "$GEN" -m models/tinydocs-22m-4bit --score -q -t 2 | jq -c .logprobs)
  a=$(echo "$rec" | "$GEN" -m models/tinydocs-22m-4bit --score --int8 -q -t 2 | jq -c .logprobs)
  b=$(echo "$rec" | MT_QMATH=int8 "$GEN" -m models/tinydocs-22m-4bit --score -q -t 2 | jq -c .logprobs)
  [ "$f" != null ] && [ -n "$f" ]
  [ "$a" = "$b" ]
  [ "$a" != "$f" ]
  # close to the float path all the same: mean |difference| of the token logprobs below 0.2
  d=$(jq -n --argjson f "$f" --argjson a "$a" '[range(0; $f|length) | (($f[.] - $a[.])|fabs)] | add / length')
  awk -v d="$d" 'BEGIN { exit !(d < 0.2) }'
}

@test "--kv-type f16, f32 and auto generate the same greedy text; a bad type is a usage error" {
  p='When the system boots,'
  a=$("$GEN" -m models/tinydocs-22m-4bit -p "$p" -n 40 -q -t 2 --kv-type f32)
  b=$("$GEN" -m models/tinydocs-22m-4bit -p "$p" -n 40 -q -t 2 --kv-type f16)
  c=$("$GEN" -m models/tinydocs-22m-4bit -p "$p" -n 40 -q -t 2)
  [ -n "$a" ]
  [ "$a" = "$b" ]
  [ "$a" = "$c" ]
  run -2 "$GEN" -m models/tinydocs-22m-4bit -p "$p" --kv-type q4
  [[ "$output" == *"--kv-type: 'q4' is not f16, f32 or auto"* ]]
}
