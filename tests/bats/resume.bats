#!/usr/bin/env bats
# The record-keeping promises shared by every program (lib/core/jsonl.c,
# lib/core/resume.c), through mlx-gen: error records always carry "error" as
# valid UTF-8; --resume ends with one line per id in input order for native
# and OpenAI lines, reports duplicate ids, locks its file, refuses its input.

bats_require_minimum_version 1.5.0
load helpers

setup() {
  B=${MT_BUILD:-build}
  GEN="$B/bin/mlx-gen"
  M=tests/data/models/llama-tiny
  T="$BATS_TEST_TMPDIR"
}

long_nonascii() { python3 -c 'print("é" * 300)' 2>/dev/null || printf 'é%.0s' $(seq 1 300); }

@test "an error message cut at its size limit keeps the error field and valid UTF-8 (native line)" {
  k=$(long_nonascii)
  printf '{"id":"a","prompt":"x","max_tokens":2,"logit_bias":{"%s":1}}\n' "$k" > "$T/in.jsonl"
  run --separate-stderr "$GEN" -m "$M" -q < "$T/in.jsonl"
  [ "$status" -eq 3 ]
  echo "$output" | jq -e '.id == "a" and (.error | type == "string") and (.error | startswith("line 1: \"logit_bias\""))'
  # and --resume retries it instead of counting it as answered
  run --separate-stderr "$GEN" -m "$M" --resume "$T/out.jsonl" < "$T/in.jsonl"
  run --separate-stderr "$GEN" -m "$M" --resume "$T/out.jsonl" < "$T/in.jsonl"
  [[ "$stderr" == *"0 answered before, 0 skipped, 1 run"* ]]
  [ "$(wc -l < "$T/out.jsonl")" -eq 1 ]
}

@test "an OpenAI line's long non-ASCII error keeps the Batch API error shape" {
  u=$(long_nonascii)
  printf '{"custom_id":"c1","method":"POST","url":"/v1/%s","body":{"messages":[]}}\n' "$u" > "$T/in.jsonl"
  run --separate-stderr "$GEN" -m "$M" -q < "$T/in.jsonl"
  [ "$status" -eq 3 ]
  echo "$output" | jq -e '.custom_id == "c1" and .response == null and (.error.message | test("not supported|OpenAI"))'
}

@test "--resume with OpenAI lines: answers (error: null) are not run again" {
  for i in 1 2 3; do
    printf '{"custom_id":"q%d","method":"POST","url":"/v1/completions","body":{"prompt":"x%d","max_tokens":2}}\n' "$i" "$i"
  done > "$T/in.jsonl"
  printf '%s\n' '{"custom_id":"bad","method":"POST","url":"/v1/nope","body":{}}' >> "$T/in.jsonl"
  run --separate-stderr "$GEN" -m "$M" --resume "$T/out.jsonl" < "$T/in.jsonl"
  [ "$status" -eq 3 ]
  [[ "$stderr" == *"0 answered before, 0 skipped, 4 run"* ]]
  for r in 2 3; do
    run --separate-stderr "$GEN" -m "$M" --resume "$T/out.jsonl" < "$T/in.jsonl"
    [ "$status" -eq 3 ]
    [[ "$stderr" == *"3 answered before, 3 skipped, 1 run"* ]]
  done
  # one line per custom_id, in input order; the failing one holds its (latest) error
  [ "$(jq -r .custom_id "$T/out.jsonl" | tr '\n' ' ')" = "q1 q2 q3 bad " ]
  jq -e 'select(.custom_id == "bad") | .error.message | test("^line 4: ")' "$T/out.jsonl"
}

@test "--resume: a record failing on every run keeps one line, and the file stays in input order" {
  printf '%s\n' '{"id":1,"prompt":"a","max_tokens":2}' '{"id":2,"prompt":"b","max_tokens":2,"top_k":-5}' \
    '{"id":3,"prompt":"c","max_tokens":2}' > "$T/in.jsonl"
  for r in 1 2 3; do "$GEN" -m "$M" -q --resume "$T/out.jsonl" < "$T/in.jsonl" || [ $? -eq 3 ]; done
  [ "$(jq -r .id "$T/out.jsonl" | tr '\n' ' ')" = "1 2 3 " ]
  [ "$(jq -r 'select(.error) | .id' "$T/out.jsonl")" = 2 ]
}

@test "--resume: duplicate ids in the input are reported, not silently skipped" {
  printf '%s\n' '{"id":"x","prompt":"a","max_tokens":2}' '{"id":"y","prompt":"b","max_tokens":2}' \
    '{"id":"x","prompt":"other","max_tokens":2}' > "$T/in.jsonl"
  run --separate-stderr "$GEN" -m "$M" --resume "$T/out.jsonl" < "$T/in.jsonl"
  [ "$status" -eq 3 ]
  [[ "$stderr" == *'line 3: duplicate id "x" (first at line 1): not run'* ]]
  [[ "$stderr" == *"1 duplicate ids"* ]]
  [ "$(jq -r .id "$T/out.jsonl" | tr '\n' ' ')" = "x y " ]
  # the same after a partial run: the duplicate is still reported
  head -1 "$T/in.jsonl" | "$GEN" -m "$M" -q --resume "$T/out2.jsonl"
  run --separate-stderr "$GEN" -m "$M" --resume "$T/out2.jsonl" < "$T/in.jsonl"
  [ "$status" -eq 3 ]
  [[ "$stderr" == *'duplicate id "x"'* ]]
}

@test "--resume pointed at the input itself is refused and the input is untouched" {
  printf '%s' '{"id":1,"prompt":"a","max_tokens":2}' > "$T/in.jsonl"   # no final newline
  cp "$T/in.jsonl" "$T/orig.jsonl"
  run --separate-stderr "$GEN" -m "$M" --resume "$T/in.jsonl" < "$T/in.jsonl"
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"that is the input"* ]]
  cmp "$T/in.jsonl" "$T/orig.jsonl"
}

@test "--resume into a file that is not an answers file is refused" {
  printf '%s\n' 'hello world' > "$T/out.jsonl"
  run --separate-stderr "$GEN" -m "$M" --resume "$T/out.jsonl" <<< '{"id":1,"prompt":"a","max_tokens":2}'
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"out.jsonl line 1: not an answer line"* ]]
  [ "$(cat "$T/out.jsonl")" = "hello world" ]
}

@test "two --resume runs on one file at once: the second fails at once, the first completes" {
  for i in $(seq 1 40); do printf '{"id":%d,"prompt":"p%d","max_tokens":8}\n' "$i" "$i"; done > "$T/in.jsonl"
  mkfifo "$T/fifo"
  "$GEN" -m "$M" -q --resume "$T/out.jsonl" < "$T/fifo" &
  pid=$!
  exec 7> "$T/fifo"
  head -1 "$T/in.jsonl" >&7
  for i in $(seq 1 50); do [ -s "$T/out.jsonl" ] && break; sleep 0.1; done
  run --separate-stderr "$GEN" -m "$M" --resume "$T/out.jsonl" < "$T/in.jsonl"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"another run is using this file"* ]]
  tail -n +2 "$T/in.jsonl" >&7
  exec 7>&-
  wait_bounded "$pid"
  [ "$WAIT_STATUS" -eq 0 ]
  [ "$(jq -r .id "$T/out.jsonl" | tr '\n' ' ')" = "$(seq 1 40 | tr '\n' ' ')" ]
}

@test "error lines on a terminal do not share the progress line" {
  command -v script >/dev/null || skip "script(1) not installed"
  # records arrive slowly, so a progress line is drawn before the bad one fails
  script -qec "(sleep 0.4; echo '{\"id\":1,\"text\":\"a\"}'; sleep 0.4; echo 'not json'; echo '{\"id\":3,\"text\":\"c\"}') \
    | $GEN -m $M --tokenize > $T/out.jsonl" /dev/null > "$T/tty.txt" || true
  grep -aq 'records' "$T/tty.txt"                       # the progress line was drawn
  # ... and erased before the error line: "\r ESC[K" right before it
  grep -aq $'\r\033\[Kmlx-gen: line 2: invalid JSON' "$T/tty.txt"
  [ "$(jq -r .id "$T/out.jsonl" | tr '\n' ' ')" = "1 2 3 " ]
}

@test "progress inside a long record on a terminal: tokens generated, on the progress line only" {
  command -v script >/dev/null || skip "script(1) not installed"
  # a generation of 300 tokens (the first note is drawn at once, later ones at most every 0.25 s)
  printf '%s\n' '{"id":1,"prompt":"x","max_tokens":300}' > "$T/in.jsonl"
  script -qec "$GEN -m $M --kv-type f32 < $T/in.jsonl > $T/out.jsonl" /dev/null > "$T/tty.txt" || true
  grep -aq 'tokens generated' "$T/tty.txt"
  jq -e '.completion_tokens > 0' "$T/out.jsonl"
  # -q: nothing at all
  script -qec "$GEN -m $M -q < $T/in.jsonl > $T/out2.jsonl" /dev/null > "$T/tty2.txt" || true
  [ ! -s "$T/tty2.txt" ]
}
