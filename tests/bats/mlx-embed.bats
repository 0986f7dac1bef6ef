#!/usr/bin/env bats
# mlx-embed CLI on the tiny fixtures of tests/gen/gen_embed_fixtures.py and
# gen_embed_fixtures2.py:
# embeddings vs the sentence-transformers goldens, --output npy, --dims,
# prompts, error records, exit codes.

bats_require_minimum_version 1.5.0

setup_file() {
  export EMB="$PWD/${MT_BUILD:-build}/bin/mlx-embed"
  export TD="$BATS_FILE_TMPDIR"
  export FX="$PWD/tests/data/embed"
  jq -c '.texts | to_entries[] | {id: .key, text: .value}' "$FX/bert-tiny/golden.json" > "$TD/in.jsonl"
}

# max |a - b| over the embeddings of out.jsonl and the golden's
maxdiff() {
  jq -n --slurpfile o "$1" --slurpfile g "$2" \
    '[range(0; $o|length) as $i | range(0; $g[0].embeddings[$i]|length) as $k
      | ($o[$i].embedding[$k] - $g[0].embeddings[$i][$k]) | if . < 0 then -. else . end] | max'
}

# fixture N embedded through the CLI (with the golden's prompt name, if any):
# within 1e-4 of the golden, ids in input order, "truncated" where the golden says so
check_fixture() {
  local n=$1 pn d
  jq -c '.texts | to_entries[] | {id: .key, text: .value}' "$FX/$n/golden.json" > "$TD/in-$n.jsonl"
  pn=$(jq -r '.prompt_name // empty' "$FX/$n/golden.json")
  run --separate-stderr "$EMB" -m "$FX/$n" -q -t 2 ${pn:+--prompt-name "$pn"} < "$TD/in-$n.jsonl"
  [ "$status" -eq 0 ]
  echo "$output" > "$TD/out-$n.jsonl"
  d=$(maxdiff "$TD/out-$n.jsonl" "$FX/$n/golden.json")
  echo "$n: $d"
  jq -n --argjson d "$d" '$d <= 1e-4' | grep -qx true
  diff <(jq -c '[.id, (.truncated // false)]' "$TD/out-$n.jsonl") \
       <(jq -c '.truncated | to_entries[] | [.key, .value]' "$FX/$n/golden.json")
}

@test "embeddings match sentence-transformers within 1e-4 (float, 8-bit, 4-bit, xlm-roberta)" {
  for n in bert-tiny bert-tiny-8bit bert-tiny-4bit xlmr-tiny; do check_fixture "$n"; done
}

@test "newer families match sentence-transformers within 1e-4 (nomic_bert, modernbert, qwen3, gemma3)" {
  for n in nomic-tiny nomic-tiny-alt modernbert-tiny qwen3-tiny gemma3-tiny; do check_fixture "$n"; done
}

@test "--prompt-name query prepends the model's prompt" {
  jq -c '.texts | to_entries[] | {id: .key, text: .value}' "$FX/bert-cls-dense/golden.json" > "$TD/in-d.jsonl"
  run --separate-stderr "$EMB" -m "$FX/bert-cls-dense" -q --prompt-name query < "$TD/in-d.jsonl"
  [ "$status" -eq 0 ]
  echo "$output" > "$TD/out-d.jsonl"
  d=$(maxdiff "$TD/out-d.jsonl" "$FX/bert-cls-dense/golden.json")
  jq -n --argjson d "$d" '$d <= 1e-4' | grep -qx true
  # --prefix with the same text gives the same vectors
  run --separate-stderr "$EMB" -m "$FX/bert-cls-dense" -q --prefix "query: " < "$TD/in-d.jsonl"
  [ "$output" = "$(cat "$TD/out-d.jsonl")" ]
  # without the prompt the vectors differ
  run --separate-stderr "$EMB" -m "$FX/bert-cls-dense" -q < "$TD/in-d.jsonl"
  [ "$output" != "$(cat "$TD/out-d.jsonl")" ]
  run "$EMB" -m "$FX/bert-cls-dense" --prompt-name nope < /dev/null
  [ "$status" -eq 2 ]
}

@test "--output writes a .npy matrix and stdout carries the rows" {
  run --separate-stderr "$EMB" -m "$FX/bert-tiny" -q -o "$TD/v.npy" < "$TD/in.jsonl"
  [ "$status" -eq 0 ]
  n=$(wc -l < "$TD/in.jsonl")
  diff <(echo "$output" | jq -c '[.id, .row]') <(seq 0 $((n - 1)) | jq -c '[., .]')
  [ "$(stat -c %s "$TD/v.npy")" -eq $((128 + n * 32 * 4)) ]
  head -c 128 "$TD/v.npy" | grep -aq "'descr': '<f4', 'fortran_order': False, 'shape': ($n, 32), }"
  ! ls "$TD"/v.npy.tmp.* 2>/dev/null
  run --separate-stderr "$EMB" -m "$FX/bert-tiny" -q -o "$TD/v.f16" --format f16 --dims 8 < "$TD/in.jsonl"
  [ "$status" -eq 0 ]
  [ "$(stat -c %s "$TD/v.f16")" -eq $((n * 8 * 2)) ]
}

@test "--dims truncates and re-normalizes" {
  run --separate-stderr "$EMB" -m "$FX/bert-tiny" -q --dims 8 < "$TD/in.jsonl"
  [ "$status" -eq 0 ]
  echo "$output" | jq -e '(.embedding | length) == 8 and ((.embedding | map(. * .) | add) - 1 | fabs) < 1e-5' > /dev/null
  run "$EMB" -m "$FX/bert-tiny" --dims 33 < /dev/null
  [ "$status" -eq 2 ]
}

@test "small --batch-tokens batches keep input order and values" {
  run --separate-stderr "$EMB" -m "$FX/bert-tiny" -q --batch-tokens 7 < "$TD/in.jsonl"
  [ "$status" -eq 0 ]
  echo "$output" > "$TD/small.jsonl"
  d=$(maxdiff "$TD/small.jsonl" "$FX/bert-tiny/golden.json")
  jq -n --argjson d "$d" '$d <= 1e-4' | grep -qx true
}

@test "bad and empty records give error records, the batch goes on, exit 3" {
  printf '{"id":"a","text":"hello"}\n{"id":"b","text":""}\nnot json\n{"id":"c"}\n{"id":"d","text":"   "}\n{"id":"e","text":"world"}\n' > "$TD/bad.jsonl"
  run --separate-stderr "$EMB" -m "$FX/bert-tiny" < "$TD/bad.jsonl"
  [ "$status" -eq 3 ]
  diff <(echo "$output" | jq -c '[.id, has("embedding"), has("error")]') - <<'X'
["a",true,false]
["b",false,true]
[3,false,true]
["c",false,true]
["d",false,true]
["e",true,false]
X
  echo "$output" | grep -q '"error":"line 2: empty text"'
  [[ "$stderr" == *"mlx-embed: line 2: empty text"* ]]
}

@test "--text reads plain lines; ids are line numbers" {
  run --separate-stderr "$EMB" -m "$FX/bert-tiny" -q --text <<< $'first line\nsecond line'
  [ "$status" -eq 0 ]
  [ "$(echo "$output" | jq -c '.id')" = $'1\n2' ]
  run --separate-stderr "$EMB" -m "$FX/bert-tiny" -q --tokens --text <<< 'hello world'
  echo "$output" | jq -e '.ids[0] == 2 and .ids[-1] == 3' > /dev/null
}

@test "usage errors exit 2, a missing model exits 1" {
  run "$EMB" < /dev/null
  [ "$status" -eq 2 ]
  run "$EMB" -m "$FX/bert-tiny" --format f64 -o x < /dev/null
  [ "$status" -eq 2 ]
  run "$EMB" -m "$FX/bert-tiny" --format f32 < /dev/null
  [ "$status" -eq 2 ]
  run "$EMB" -m "$TD/nope" < /dev/null
  [ "$status" -eq 1 ]
  run "$EMB" --help
  [ "$status" -eq 0 ]
}

@test "--rerank scores documents in order like CrossEncoder.predict" {
  for n in ce-bert ce-xlmr; do
    jq -c '{id: "q1", query, documents}' "$FX/$n/golden.json" > "$TD/rr.jsonl"
    printf '{"id":"bad","query":"x","documents":"nope"}\n' >> "$TD/rr.jsonl"
    run --separate-stderr "$EMB" -m "$FX/$n" -q --rerank < "$TD/rr.jsonl"
    [ "$status" -eq 3 ]
    echo "$output" | head -1 > "$TD/rr.out"
    jq -n --slurpfile o "$TD/rr.out" --slurpfile g "$FX/$n/golden.json" \
      '[range(0; $g[0].scores|length) as $i | ([$o[0].scores[$i]] | flatten) as $a | ([$g[0].scores[$i]] | flatten) as $b
        | range(0; $a|length) as $k | ($a[$k] - $b[$k]) | if . < 0 then -. else . end] | max <= 1e-4' | grep -qx true
    echo "$output" | tail -1 | jq -e '.id == "bad" and (.error | test("documents"))' > /dev/null
  done
  run "$EMB" -m "$FX/bert-tiny" --rerank < /dev/null
  [ "$status" -eq 1 ]
}
