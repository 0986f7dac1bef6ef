#!/usr/bin/env bats
# tests/tools/hubserver, the fake Hugging Face hub that test_hub (and program
# tests using -m org/name) talk to instead of the internet.  Usage pattern:
#   hubserver tests/data/hub PORTFILE &  ->  HF_ENDPOINT=http://127.0.0.1:$(cat PORTFILE)

SHA=0123456789abcdef0123456789abcdef01234567

setup() {
  command -v curl >/dev/null || skip "no curl"
  SRV="$PWD/${MT_BUILD:-build}/tools/hubserver"
  PORTFILE="$BATS_TEST_TMPDIR/port"
  PID=
}

start() {
  HUBSERVER_IDLE=${IDLE:-10} "$SRV" tests/data/hub "$PORTFILE" 3>&- &
  PID=$!
  for _ in $(seq 200); do [ -s "$PORTFILE" ] && break; sleep 0.02; done
  URL="http://127.0.0.1:$(cat "$PORTFILE")"
}

teardown() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
}

@test "hubserver: a file with the hub's headers" {
  start
  run curl -sSI --noproxy '*' "$URL/org/tiny/resolve/main/config.json"
  [ "$status" -eq 0 ]
  [[ "$output" == *"HTTP/1.1 200"* ]]
  [[ "$output" == *"X-Repo-Commit: $SHA"* ]]
  [[ "$output" == *'ETag: "'* ]]
  [[ "$output" == *"Content-Length: 94"* ]]
  run curl -sS --noproxy '*' "$URL/org/tiny/resolve/$SHA/config.json"
  [ "$output" = "$(cat tests/data/hub/org/tiny/config.json)" ]
}

@test "hubserver: LFS files redirect to another host with X-Linked-Etag/Size" {
  start
  run curl -sSI --noproxy '*' "$URL/org/tiny/resolve/main/model.safetensors"
  [[ "$output" == *"HTTP/1.1 302"* ]]
  [[ "$output" == *"X-Linked-Size: 24080"* ]]
  [[ "$output" == *"Location: http://localhost:"*"/_cdn/org/tiny/model.safetensors"* ]]
  curl -sSL --noproxy '*' "$URL/org/tiny/resolve/main/model.safetensors" -o "$BATS_TEST_TMPDIR/m"
  cmp "$BATS_TEST_TMPDIR/m" tests/data/hub/org/tiny/model.safetensors
}

@test "hubserver: byte ranges, 416 past the end, 404 with X-Error-Code" {
  start
  run curl -sS --noproxy '*' -r 10-19 "$URL/org/tiny/resolve/main/config.json"
  [ "$output" = "$(dd if=tests/data/hub/org/tiny/config.json bs=1 skip=10 count=10 2>/dev/null)" ]
  run curl -s --noproxy '*' -o /dev/null -w '%{http_code}' -r 999- "$URL/org/tiny/resolve/main/config.json"
  [ "$output" = 416 ]
  run curl -sSI --noproxy '*' "$URL/org/tiny/resolve/main/nope.json"
  [[ "$output" == *"HTTP/1.1 404"* ]]
  [[ "$output" == *"X-Error-Code: EntryNotFound"* ]]
  run curl -sSI --noproxy '*' "$URL/org/tiny/resolve/v9/config.json"
  [[ "$output" == *"X-Error-Code: RevisionNotFound"* ]]
  run curl -sSI --noproxy '*' "$URL/org/tiny/resolve/main/.sha"
  [[ "$output" == *"HTTP/1.1 404"* ]]
}

@test "hubserver: repo listing" {
  command -v jq >/dev/null || skip "no jq"
  start
  run sh -c "curl -sS --noproxy '*' '$URL/api/models/org/tiny/revision/main' | jq -r '.sha, (.siblings | map(.rfilename) | join(\" \"))'"
  [ "${lines[0]}" = "$SHA" ]
  [ "${lines[1]}" = "README.md config.json model.safetensors sub/notes.txt tokenizer.json" ]
}

@test "hubserver: exits by itself when idle" {
  IDLE=1 start
  sleep 1.5
  run kill -0 "$PID"
  [ "$status" -ne 0 ]
}
