#!/usr/bin/env bats
# mlx-embed CLI on the tiny fixtures of tests/gen/gen_embed_fixtures.py and
# gen_embed_fixtures2.py:
# embeddings vs the sentence-transformers goldens, --output npy, --dims,
# prompts, error records, exit codes.

bats_require_minimum_version 1.5.0
load helpers

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

# copy of fixture $1 in folder $2 whose word-embedding row of token $3 is NaN
nan_fixture() {
  cp -r "$FX/$1" "$2"
  local f="$2/model.safetensors" hl off h
  hl=$(head -c 8 "$f" | od -An -tu8 | tr -d ' ')
  off=$(dd if="$f" bs=1 skip=8 count="$hl" 2>/dev/null |
        jq 'to_entries[] | select(.key | endswith("word_embeddings.weight")) | .value.data_offsets[0]')
  h=$(jq .hidden_size "$2/config.json")
  printf '\000\000\300\177' | dd of="$f" bs=1 seek=$((8 + hl + off + $3 * h * 4)) conv=notrunc 2>/dev/null
}

teardown() {
  if [ -n "${MNT:-}" ]; then umount "$MNT" 2>/dev/null || true; MNT=; fi
}

@test "non-finite embeddings (NaN weights) fail their record with an error record, exit 3" {
  # token 50 ('h') gets a NaN embedding row: texts with an h fail, the others do not
  nan_fixture bert-tiny "$TD/nan-bert" 50
  printf '{"id":"a","text":"good morning"}\n{"id":"b","text":"hello world"}\n{"id":"c","text":"a cat"}\n' > "$TD/nan.jsonl"
  run --separate-stderr "$EMB" -m "$TD/nan-bert" < "$TD/nan.jsonl"
  [ "$status" -eq 3 ]
  diff <(echo "$output" | jq -c '[.id, (.embedding | length), .error]') - <<'X'
["a",32,null]
["b",0,"line 2: model produced non-finite values (corrupt weights?)"]
["c",32,null]
X
  [[ "$stderr" == *"mlx-embed: line 2: model produced non-finite values (corrupt weights?)"* ]]
  # --output: no NaN row in the matrix, rows stay consecutive
  run --separate-stderr "$EMB" -m "$TD/nan-bert" -q -o "$TD/nan.npy" --format f32 < "$TD/nan.jsonl"
  [ "$status" -eq 3 ]
  [ "$(echo "$output" | jq -c '[.id, .row]' | tr '\n' ' ')" = '["a",0] ["b",null] ["c",1] ' ]
  [ "$(stat -c %s "$TD/nan.npy")" -eq $((2 * 32 * 4)) ]
  # --rerank: a pair holding the token gives NaN scores
  nan_fixture ce-bert "$TD/nan-ce" 50
  printf '{"id":"q1","query":"good","documents":["morning","cat"]}\n{"id":"q2","query":"hi","documents":["x"]}\n' > "$TD/nanr.jsonl"
  run --separate-stderr "$EMB" -m "$TD/nan-ce" -q --rerank < "$TD/nanr.jsonl"
  [ "$status" -eq 3 ]
  echo "$output" | head -1 | jq -e '.id == "q1" and (.scores | length) == 2' > /dev/null
  echo "$output" | tail -1 | jq -e '.id == "q2" and (.error | test("non-finite"))' > /dev/null
}

@test "--output files get the mode of any new file (0666 under the umask)" {
  (umask 002 && "$EMB" -m "$FX/bert-tiny" -q -o "$TD/m.npy" < "$TD/in.jsonl" > /dev/null)
  [ "$(stat -c %a "$TD/m.npy")" = 664 ]
  (umask 077 && "$EMB" -m "$FX/bert-tiny" -q -o "$TD/m2.npy" < "$TD/in.jsonl" > /dev/null)
  [ "$(stat -c %a "$TD/m2.npy")" = 600 ]
}

@test "a full disk is fatal at once: one line naming the file, exit 1, nothing left behind" {
  for i in $(seq 1 3000); do echo "{\"id\":$i,\"text\":\"text number $i\"}"; done > "$TD/big.jsonl"
  # the JSONL answers on a full device
  run --separate-stderr sh -c '"$0" -m "$1" < "$2" > /dev/full' "$EMB" "$FX/bert-tiny" "$TD/big.jsonl"
  [ "$status" -eq 1 ]
  [ "$stderr" = "mlx-embed: standard output: write failed: No space left on device" ]
  # the matrix on a full filesystem (a 64 KiB tmpfs; needs root)
  mkdir -p "$TD/full"
  mount -t tmpfs -o size=64k tmpfs "$TD/full" 2>/dev/null || skip "cannot mount a tmpfs here"
  MNT="$TD/full"
  run --separate-stderr "$EMB" -m "$FX/bert-tiny" -o "$TD/full/v.npy" < "$TD/big.jsonl"
  [ "$status" -eq 1 ]
  [ "$stderr" = "mlx-embed: $TD/full/v.npy: write failed: No space left on device" ]
  [ -z "$(ls -A "$TD/full")" ]
  [ "$(echo "$output" | grep -c error)" -eq 0 ]
}

@test "SIGINT: exit 130 and no temporary file left; a closed stdout pipe: 141, none left either" {
  for i in $(seq 1 600); do echo "{\"id\":$i,\"text\":\"text number $i\"}"; done > "$TD/mid.jsonl"
  mkdir -p "$TD/int"
  mkfifo "$TD/int/in"
  # env: SIGINT back to its default (background jobs of a non-interactive shell ignore it)
  env --default-signal=INT "$EMB" -m "$FX/bert-tiny" -q -o "$TD/int/v.npy" < "$TD/int/in" > "$TD/int.out" &
  pid=$!
  exec 8> "$TD/int/in"
  cat "$TD/mid.jsonl" >&8   # the run waits for more input
  for i in $(seq 100); do [ "$(wc -l < "$TD/int.out")" -ge 512 ] && break; sleep 0.05; done
  started=0; ls "$TD"/int/v.npy.tmp.* && started=1
  kill -INT "$pid"
  wait_bounded "$pid"; st=$WAIT_STATUS
  exec 8>&-
  [ "$started" -eq 1 ]
  [ "$st" -eq 130 ]
  [ "$(ls -A "$TD/int")" = in ]
  # stdout closed early: SIGPIPE ends the run, the temporary file goes too
  for i in 1 2 3 4 5 6; do cat "$TD/mid.jsonl"; done > "$TD/pipe.jsonl"
  set +e
  "$EMB" -m "$FX/bert-tiny" -q -o "$TD/int/p.npy" < "$TD/pipe.jsonl" | head -c 1 > /dev/null
  st=${PIPESTATUS[0]}
  set -e
  [ "$st" -eq 141 ]
  [ "$(ls -A "$TD/int")" = in ]
}

@test "--resume FILE: answers accumulate, ids answered before are skipped, the file ends in input order" {
  head -3 "$TD/in.jsonl" > "$TD/r1.jsonl"
  run --separate-stderr "$EMB" -m "$FX/bert-tiny" -q --resume "$TD/ans.jsonl" < "$TD/r1.jsonl"
  [ "$status" -eq 0 ]
  [ -z "$output" ]
  [ "$(wc -l < "$TD/ans.jsonl")" -eq 3 ]
  # a failing record, then the whole input
  printf '{"id":"x","text":""}\n' >> "$TD/ans-in.jsonl"
  cat "$TD/in.jsonl" "$TD/ans-in.jsonl" > "$TD/r2.jsonl"
  run --separate-stderr "$EMB" -m "$FX/bert-tiny" --resume "$TD/ans.jsonl" < "$TD/r2.jsonl"
  [ "$status" -eq 3 ]
  [[ "$stderr" == *"3 answered before, 3 skipped"* ]]
  n=$(wc -l < "$TD/in.jsonl")
  diff <(jq -c '.id' "$TD/ans.jsonl") <( (seq 0 $((n - 1)); echo '"x"') )
  # the first answers are those of the first run, kept as they were
  "$EMB" -m "$FX/bert-tiny" -q < "$TD/r1.jsonl" > "$TD/plain.jsonl"
  diff <(head -n 3 "$TD/ans.jsonl") "$TD/plain.jsonl"
  run "$EMB" -m "$FX/bert-tiny" --resume "$TD/ans.jsonl" -o "$TD/r.npy" < /dev/null
  [ "$status" -eq 2 ]
}

@test "man pages: mlx-embed(1) documents --rerank, --resume and the exit statuses; mlx-gen(1) every variable the code reads" {
  page=$(MANWIDTH=200 man -l man/mlx-embed.1 2>/dev/null) || page=$(cat man/mlx-embed.1)
  for w in -rerank -resume scores query documents non-finite 130 141 SIGPIPE; do
    [[ "$page" == *"$w"* ]] || { echo "mlx-embed(1) lacks $w"; return 1; }
  done
  # every environment variable the shared library reads is in mlx-gen(1)'s ENVIRONMENT
  env_sec=$(sed -n '/^\.SH ENVIRONMENT/,/^\.SH /p' man/mlx-gen.1)
  [ -n "$env_sec" ]
  for v in $(grep -ohE '(getenv|env_nonempty|env_true|env_seconds)\("[A-Z_]+"' lib/io/hub.c lib/core/pool.c \
               lib/core/cpu.c lib/core/blas.c lib/tensor/linear.c | sed -E 's/.*"([A-Z_]+)"/\1/' | sort -u); do
    [[ "$env_sec" == *"$v"* ]] || { echo "mlx-gen(1) ENVIRONMENT lacks $v"; return 1; }
  done
}

@test "a record's vector is the same bytes in any batch: alone, at the end of a long run, any --batch-tokens or thread count" {
  for i in $(seq 1 400); do printf '{"id":"e%d","text":"document %d is about pipes and %d filters"}\n' "$i" "$i" "$((i * 7))"; done > "$TD/bi.jsonl"
  "$EMB" -m "$FX/bert-tiny" -q < "$TD/bi.jsonl" > "$TD/bi.ref"
  for n in 1 2 3 7; do
    tail -n "$n" "$TD/bi.jsonl" | "$EMB" -m "$FX/bert-tiny" -q > "$TD/bi.$n"
    tail -n "$n" "$TD/bi.ref" | cmp - "$TD/bi.$n"
  done
  "$EMB" -m "$FX/bert-tiny" -q -t 1 < "$TD/bi.jsonl" | cmp - "$TD/bi.ref"
  "$EMB" -m "$FX/bert-tiny" -q --batch-tokens 37 < "$TD/bi.jsonl" | cmp - "$TD/bi.ref"
}
