#!/usr/bin/env bats
# mlx-gen --batch N: continuous batching.  Up to N records decode together and a finished
# record's slot takes the next record at once; answers keep input order and equal what each
# record gets alone (greedy, and seeded sampling whatever its neighbours).

bats_require_minimum_version 1.5.0

setup_file() {
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
  export M="$PWD/models/tinydocs-22m-4bit"
  export RECS="$BATS_FILE_TMPDIR/recs.jsonl"
  # prompts and answer lengths of very different sizes; some records sample with a seed
  python3 - "$RECS" <<'PY'
import json, random, sys
random.seed(7)
words = "the file option value command section output list default user".split()
with open(sys.argv[1], "w") as f:
    for i in range(24):
        r = {"id": "r%d" % i, "prompt": " ".join(random.choice(words) for _ in range(random.randint(1, 40))),
             "max_tokens": random.choice([1, 2, 5, 17, 40, 64])}
        if i % 3 == 0:
            r.update(temperature=0.9, top_p=0.95, seed=1000 + i)
        f.write(json.dumps(r) + "\n")
PY
}

@test "answers equal --batch 1 for N = 2, 5, 8 and auto, in input order" {
  "$GEN" -m "$M" -q --reproducible --ids -t 2 --batch 1 < "$RECS" > "$BATS_TEST_TMPDIR/b1"
  [ "$(wc -l < "$BATS_TEST_TMPDIR/b1")" -eq 24 ]
  [ "$(jq -r .id "$BATS_TEST_TMPDIR/b1" | tr '\n' ' ')" = "$(jq -r .id "$RECS" | tr '\n' ' ')" ]
  for b in 2 5 8 auto; do
    "$GEN" -m "$M" -q --reproducible --ids -t 2 --batch $b < "$RECS" > "$BATS_TEST_TMPDIR/b$b"
    cmp "$BATS_TEST_TMPDIR/b1" "$BATS_TEST_TMPDIR/b$b"
  done
  # the seeded records did sample (their text differs from greedy)
  jq -c 'del(.temperature, .top_p, .seed)' "$RECS" | "$GEN" -m "$M" -q --reproducible --ids -t 2 > "$BATS_TEST_TMPDIR/greedy"
  ! cmp -s "$BATS_TEST_TMPDIR/b1" "$BATS_TEST_TMPDIR/greedy"
}

@test "--batch-invariant: every log-probability bit for bit as alone; the shared kernels differ in the last bits" {
  jq -c '. + {logprobs: 2}' "$RECS" > "$BATS_TEST_TMPDIR/lp"
  "$GEN" -m "$M" -q -t 2 --batch 1 < "$BATS_TEST_TMPDIR/lp" | jq -c '[.id, .text, .logprobs]' > "$BATS_TEST_TMPDIR/one"
  "$GEN" -m "$M" -q -t 2 --batch 6 --batch-invariant < "$BATS_TEST_TMPDIR/lp" | jq -c '[.id, .text, .logprobs]' > "$BATS_TEST_TMPDIR/inv"
  "$GEN" -m "$M" -q -t 2 --batch 6 < "$BATS_TEST_TMPDIR/lp" | jq -c '[.id, .text, .logprobs]' > "$BATS_TEST_TMPDIR/fast"
  cmp "$BATS_TEST_TMPDIR/one" "$BATS_TEST_TMPDIR/inv"
  # (the test would be empty if the fast kernels were invariant too: then this flag could go)
  ! cmp -s "$BATS_TEST_TMPDIR/one" "$BATS_TEST_TMPDIR/fast"
}

@test "the same answers as the lockstep schedule, in fewer decode steps" {
  {
    echo '{"id":"long","prompt":"The configuration file","max_tokens":60}'
    for i in $(seq 1 20); do echo "{\"id\":$i,\"prompt\":\"The option $i\",\"max_tokens\":3}"; done
  } > "$BATS_TEST_TMPDIR/skew"
  run --separate-stderr "$GEN" -m "$M" --reproducible -t 2 --batch 2 < "$BATS_TEST_TMPDIR/skew"
  [ "$status" -eq 0 ]
  echo "$output" > "$BATS_TEST_TMPDIR/cont"
  # the long record decodes 59 steps; the 20 short ones share the other slot meanwhile
  [[ "$stderr" == *"mlx-gen: 59 decode steps, mean batch 1.68 of 2"* ]]
  "$GEN" -m "$M" -q --reproducible -t 2 --batch 2 --lockstep < "$BATS_TEST_TMPDIR/skew" > "$BATS_TEST_TMPDIR/lock"
  cmp "$BATS_TEST_TMPDIR/cont" "$BATS_TEST_TMPDIR/lock"
  [ "$(jq -r .id "$BATS_TEST_TMPDIR/cont" | head -1)" = long ]
}

@test "bad records get their error line in place; the others are answered (exit 3)" {
  {
    echo '{"id":"a","prompt":"The option","max_tokens":12}'
    echo '{"id":"b","prompt":'
    echo '{"id":"c","prompt":"The file","max_tokens":-4}'
    echo '{"id":"d","prompt":"The value","max_tokens":5}'
    echo '{"id":"e","prompt":"The list","temperature":-1}'
    echo '{"id":"f","prompt":"The output","max_tokens":3}'
  } > "$BATS_TEST_TMPDIR/bad"
  run --separate-stderr "$GEN" -m "$M" --reproducible -t 2 --batch 3 < "$BATS_TEST_TMPDIR/bad"
  [ "$status" -eq 3 ]
  [ "$(echo "$output" | jq -r '.id' | tr '\n' ' ')" = "a 2 c d e f " ]
  [ "$(echo "$output" | jq -r 'if .error then "E" else "T" end' | tr -d '\n')" = "TEETET" ]
  [[ "$stderr" == *"line 2: invalid JSON"* ]]
  [[ "$stderr" == *"line 3: \"max_tokens\" must be"* ]]
  # the good records' answers are those they get alone
  grep -E '"id":"(a|d|f)"' "$BATS_TEST_TMPDIR/bad" | "$GEN" -m "$M" -q --reproducible -t 2 > "$BATS_TEST_TMPDIR/alone"
  [ "$(echo "$output" | grep -v error)" = "$(cat "$BATS_TEST_TMPDIR/alone")" ]
}

@test "every fixture family: --batch 4 --reproducible equals --batch 1 bit for bit (logprobs, seeds, rotating caches)" {
  python3 -c '
import json, random
random.seed(3)
for i in range(8):
    r = {"id": i, "prompt": "hello world " * random.randint(1, 12), "max_tokens": random.randint(1, 20), "logprobs": 1}
    if i % 2: r.update(temperature=1.0, seed=i)
    print(json.dumps(r))
' > "$BATS_TEST_TMPDIR/r"
  n=0
  for d in tests/data/models/*/; do
    [ -f "$d/config.json" ] || continue
    n=$((n + 1))
    a=$("$GEN" -m "$d" -q --reproducible -t 2 --batch 1 < "$BATS_TEST_TMPDIR/r")
    b=$("$GEN" -m "$d" -q --reproducible -t 2 --batch 4 < "$BATS_TEST_TMPDIR/r")
    [ "$a" = "$b" ] || { echo "$d differs"; return 1; }
    b=$("$GEN" -m "$d" -q --reproducible -t 2 --batch 3 --max-kv-size 16 < "$BATS_TEST_TMPDIR/r")
    a=$("$GEN" -m "$d" -q --reproducible -t 2 --batch 1 --max-kv-size 16 < "$BATS_TEST_TMPDIR/r")
    [ "$a" = "$b" ] || { echo "$d differs with --max-kv-size"; return 1; }
  done
  [ "$n" -ge 48 ]
  # the AVX2 and portable kernels too, on float, 4-bit and 8-bit weights
  for lvl in avx2 portable; do
    for d in tests/data/models/qwen3-tiny*/ tests/data/models/gemma3-tiny*/; do
      a=$(MT_CPU=$lvl "$GEN" -m "$d" -q --reproducible -t 2 --batch 1 < "$BATS_TEST_TMPDIR/r")
      b=$(MT_CPU=$lvl "$GEN" -m "$d" -q --reproducible -t 2 --batch 4 < "$BATS_TEST_TMPDIR/r")
      [ "$a" = "$b" ] || { echo "$d differs at $lvl"; return 1; }
    done
  done
}

@test "--batch takes a positive number or auto" {
  run --separate-stderr "$GEN" -m "$M" --batch 0 -p x
  [ "$status" -eq 2 ]
  run --separate-stderr "$GEN" -m "$M" --batch many -p x
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"--batch"* ]]
}

@test "speculative decoding under --reproducible: tokens and log-probabilities bit for bit the plain loop's" {
  jq -c '{id, prompt, max_tokens: 40, logprobs: 1}' "$RECS" > "$BATS_TEST_TMPDIR/in"
  "$GEN" -m "$M" -q -t 2 --reproducible < "$BATS_TEST_TMPDIR/in" | jq -c '[.id, .text, .logprobs]' > "$BATS_TEST_TMPDIR/plain"
  "$GEN" -m "$M" -q -t 2 --reproducible --batch 4 --draft-model "$PWD/models/tinydocs-5m-4bit" --num-draft-tokens 3 \
    < "$BATS_TEST_TMPDIR/in" | jq -c '[.id, .text, .logprobs]' > "$BATS_TEST_TMPDIR/draft"
  "$GEN" -m "$M" -q -t 2 --reproducible --prompt-lookup 6 < "$BATS_TEST_TMPDIR/in" | jq -c '[.id, .text, .logprobs]' \
    > "$BATS_TEST_TMPDIR/lookup"
  cmp "$BATS_TEST_TMPDIR/plain" "$BATS_TEST_TMPDIR/draft"
  cmp "$BATS_TEST_TMPDIR/plain" "$BATS_TEST_TMPDIR/lookup"
}
