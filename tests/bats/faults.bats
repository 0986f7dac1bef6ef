#!/usr/bin/env bats
# Fault injection: the promises of README "Conventions shared by every
# program" under kills, full disks, closed pipes, signals and corrupt models.
# Each case states the invariant it checks:
#  - kill -9 at random points, then --resume (repeated): the answers file ends
#    equal to an uninterrupted run's output (timing fields aside), line for
#    line, and no temporary file is left;
#  - a full disk (/dev/full) or a closed stdout: a one-line fatal error and
#    exit 1 at the first failed write, not a run that goes on failing;
#  - SIGINT: exit 130, no temporary files, whole lines only; --resume finishes;
#  - a corrupt or truncated model file, also truncated under a running
#    process: a one-line error naming the file, exit 1, never a crash.

bats_require_minimum_version 1.5.0
load helpers

setup() {
  B=${MT_BUILD:-build}
  GEN="$PWD/$B/bin/mlx-gen"
  EMBED="$PWD/$B/bin/mlx-embed"
  STT="$PWD/$B/bin/mlx-stt"
  M="$PWD/tests/data/models/llama-tiny"
  T="$BATS_TEST_TMPDIR"
}

strip_timing() { jq -c 'del(.prefill_tps, .decode_tps, .cached_tokens, .rtf, .seconds, .elapsed)' "$1"; }

# kill_resume_rounds PROG_CMD... : runs "$@ --resume $T/out.jsonl < $T/in.jsonl" in the
# background and kills it with SIGKILL once a random number (STEP_MIN..STEP_MIN+STEP_RAND-1)
# of new answer lines is in the file, ROUNDS times, then runs it once to the end.
# KILLED counts the kills that hit a running process.
lines_of() { [ -f "$1" ] && wc -l < "$1" || echo 0; }
kill_resume_rounds() {
  local rounds=${ROUNDS:-6} i pid target
  RANDOM=${FAULT_SEED:-42}
  KILLED=0
  for i in $(seq 1 "$rounds"); do
    target=$(( $(lines_of "$T/out.jsonl") + ${STEP_MIN:-5} + RANDOM % ${STEP_RAND:-40} ))
    "$@" -q --resume "$T/out.jsonl" < "$T/in.jsonl" 2>/dev/null &
    pid=$!
    local_t0=$SECONDS; while kill -0 "$pid" 2>/dev/null && [ $((SECONDS - local_t0)) -lt 60 ] && [ "$(lines_of "$T/out.jsonl")" -lt "$target" ]; do sleep 0.01; done
    if kill -9 "$pid" 2>/dev/null; then KILLED=$((KILLED + 1)); fi
    wait "$pid" 2>/dev/null || true
  done
  "$@" -q --resume "$T/out.jsonl" < "$T/in.jsonl" || [ $? -eq 3 ]
}

no_leftovers() {
  ! ls -a "$1" | grep -E '\.tmp[.-]' 
}

@test "mlx-gen: kill -9 at random points, then --resume: the answers equal an uninterrupted run" {
  # a failing record first: every round runs it again, and it must still end as one line
  printf '%s\n' '{"id":"bad","prompt":"x","top_k":-1}' > "$T/in.jsonl"
  # enough records, and one thread (a core left to the polling below), that a run outlasts
  # the polling even on a busy machine
  for i in $(seq 1 1200); do printf '{"id":"g%d","prompt":"record %d says","max_tokens":24}\n' "$i" "$i"; done >> "$T/in.jsonl"
  "$GEN" -m "$M" -q -t 1 < "$T/in.jsonl" > "$T/ref.jsonl" || [ $? -eq 3 ]
  kill_resume_rounds "$GEN" -m "$M" -t 1
  [ "$KILLED" -ge 5 ]                              # the rounds were cut mid-run
  [ "$(strip_timing "$T/out.jsonl")" = "$(strip_timing "$T/ref.jsonl")" ]
  no_leftovers "$T"
}

@test "mlx-gen --batch 4: kill -9 at random points, then --resume: the same answers" {
  # enough records that a run outlasts the polling below even when the machine is busy
  for i in $(seq 1 1500); do printf '{"id":%d,"prompt":"batch %d","max_tokens":20}\n' "$i" "$i"; done > "$T/in.jsonl"
  "$GEN" -m "$M" -q -t 1 --batch 4 < "$T/in.jsonl" > "$T/ref.jsonl"
  FAULT_SEED=7 kill_resume_rounds "$GEN" -m "$M" -t 1 --batch 4
  [ "$KILLED" -ge 5 ]
  [ "$(strip_timing "$T/out.jsonl")" = "$(strip_timing "$T/ref.jsonl")" ]
  no_leftovers "$T"
}

@test "mlx-gen: SIGINT exits 130 leaving whole lines; --resume then completes the run" {
  for i in $(seq 1 400); do printf '{"id":%d,"prompt":"p%d","max_tokens":24}\n' "$i" "$i"; done > "$T/in.jsonl"
  "$GEN" -m "$M" -q < "$T/in.jsonl" > "$T/ref.jsonl"
  # (a background job of a non-interactive shell starts with SIGINT ignored: restore it)
  env --default-signal=INT "$GEN" -m "$M" -q --resume "$T/out.jsonl" < "$T/in.jsonl" &
  pid=$!
  local_t0=$SECONDS; while kill -0 "$pid" 2>/dev/null && [ $((SECONDS - local_t0)) -lt 60 ] && [ "$(lines_of "$T/out.jsonl")" -lt 20 ]; do sleep 0.01; done
  kill -INT "$pid"
  wait_bounded "$pid"; rc=$WAIT_STATUS
  [ "$rc" -eq 130 ]
  [ -z "$(tail -c 1 "$T/out.jsonl" | tr -d '\n')" ]      # ends with a newline: no cut line
  jq -e . "$T/out.jsonl" > /dev/null
  "$GEN" -m "$M" -q --resume "$T/out.jsonl" < "$T/in.jsonl"
  [ "$(strip_timing "$T/out.jsonl")" = "$(strip_timing "$T/ref.jsonl")" ]
  no_leftovers "$T"
}

@test "mlx-gen: a full disk (/dev/full) is one fatal error at the first write, exit 1" {
  for i in $(seq 1 20); do printf '{"id":%d,"prompt":"p%d","max_tokens":4}\n' "$i" "$i"; done > "$T/in.jsonl"
  run --separate-stderr bash -c '"$0" -m "$1" < "$2" > /dev/full' "$GEN" "$M" "$T/in.jsonl"
  [ "$status" -eq 1 ]
  [ "$(echo "$stderr" | grep -c .)" -eq 1 ]
  [[ "$stderr" == *"write"* ]]
}

@test "mlx-gen: a closed stdout is an error, not a crash; a reader that goes away ends the run (141)" {
  run --separate-stderr bash -c '"$0" -m "$1" -q <<< "{\"prompt\":\"a\",\"max_tokens\":2}" >&-' "$GEN" "$M"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"write"* || "$stderr" == *"stdout"* ]]
  for i in $(seq 1 400); do printf '{"id":%d,"prompt":"p%d","max_tokens":30}\n' "$i" "$i"; done > "$T/in.jsonl"
  set +e
  "$GEN" -m "$M" -q < "$T/in.jsonl" | head -c 100 > /dev/null
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" -eq 141 ]
}

@test "mlx-gen: corrupt model files are one-line errors naming the file" {
  d="$T/m"; mkdir -p "$d"; cp "$M"/* "$d/"
  st=$(ls "$d"/*.safetensors | head -1)
  # truncated weights
  head -c 1000 "$st" > "$st.cut" && mv "$st.cut" "$st"
  run --separate-stderr "$GEN" -m "$d" <<< '{"prompt":"a","max_tokens":2}'
  [ "$status" -eq 1 ]
  [ "$(echo "$stderr" | grep -c .)" -eq 1 ]
  [[ "$stderr" == *"$(basename "$st")"* ]]
  # garbage config.json
  cp "$M"/* "$d/"; printf 'not json{' > "$d/config.json"
  run --separate-stderr "$GEN" -m "$d" <<< '{"prompt":"a","max_tokens":2}'
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"config.json"* ]]
}

@test "mlx-gen: weights truncated under the running process: a message, exit 1, no silent SIGBUS" {
  d="$T/m"; mkdir -p "$d"; cp "$M"/* "$d/"
  st=$(ls "$d"/*.safetensors | head -1)
  mkfifo "$T/fifo"
  "$GEN" -m "$d" -q < "$T/fifo" > "$T/out.jsonl" 2> "$T/err.txt" &
  pid=$!
  exec 7> "$T/fifo"
  echo '{"id":1,"prompt":"a","max_tokens":2}' >&7
  for i in $(seq 1 100); do [ -s "$T/out.jsonl" ] && break; sleep 0.05; done
  truncate -s 4096 "$st"
  echo '{"id":2,"prompt":"b","max_tokens":2}' >&7
  exec 7>&-
  wait_bounded "$pid"; rc=$WAIT_STATUS
  cat "$T/err.txt"
  [ "$rc" -eq 1 ]
  grep -q "$(basename "$st"): the file changed or was truncated while mapped" "$T/err.txt"
}

@test "mlx-stt records: kill -9 at random points, then --resume: the answers equal an uninterrupted run" {
  A="$PWD/tests/data/audio"
  EN="$PWD/tests/data/whisper/tiny-en-hf"
  printf '{"id":"missing","audio":"%s"}\n' "$T/nope.wav" > "$T/in.jsonl"   # fails on every round
  for i in $(seq 1 36); do
    case $((i % 3)) in 0) f=speech_s16_mono_16k.wav ;; 1) f=speech_22k.ogg ;; 2) f=speech_22k.flac ;; esac
    printf '{"id":"a%d","audio":"%s"}\n' "$i" "$A/$f"
  done >> "$T/in.jsonl"
  "$STT" --temperature-increment-on-fallback none -t 2 -m "$EN" -q < "$T/in.jsonl" > "$T/ref.jsonl" || [ $? -eq 3 ]
  ROUNDS=5 STEP_MIN=2 STEP_RAND=6 FAULT_SEED=3 kill_resume_rounds "$STT" --temperature-increment-on-fallback none -t 2 -m "$EN"
  [ "$KILLED" -ge 4 ]
  [ "$(strip_timing "$T/out.jsonl")" = "$(strip_timing "$T/ref.jsonl")" ]
  no_leftovers "$T"
}

@test "mlx-stt FILE...: a full disk is one fatal error; SIGINT leaves no temporary files in -o DIR" {
  A="$PWD/tests/data/audio"
  EN="$PWD/tests/data/whisper/tiny-en-hf"
  run --separate-stderr bash -c '"$0" --temperature-increment-on-fallback none -m "$1" -f jsonl "$2" "$2" "$2" > /dev/full' \
    "$STT" "$EN" "$A/speech_s16_mono_16k.wav"
  [ "$status" -eq 1 ]
  [ "$(echo "$stderr" | grep -c .)" -eq 1 ]
  mkdir -p "$T/wavs" "$T/subs"
  for i in $(seq 1 60); do ln -s "$A/speech_22k.flac" "$T/wavs/r$i.flac"; done
  env --default-signal=INT "$STT" --temperature-increment-on-fallback none -t 2 -m "$EN" -q -f srt -o "$T/subs" "$T"/wavs/*.flac &
  pid=$!
  local_t0=$SECONDS; while kill -0 "$pid" 2>/dev/null && [ $((SECONDS - local_t0)) -lt 60 ] && [ "$(ls "$T/subs" | wc -l)" -lt 3 ]; do sleep 0.01; done
  kill -INT "$pid"
  wait_bounded "$pid"; rc=$WAIT_STATUS
  [ "$rc" -eq 130 ]
  no_leftovers "$T/subs"
  for f in "$T"/subs/*.srt; do [ -s "$f" ]; done
}

@test "mlx-embed: kill -9 at random points, then --resume: the answers equal an uninterrupted run" {
  for i in $(seq 1 6000); do
    printf '{"id":"e%d","text":"document %d is about pipes and %d filters"}\n' "$i" "$i" "$((i * 7))"
  done > "$T/in.jsonl"
  printf '%s\n' '{"id":"nontext","text":5}' | cat - "$T/in.jsonl" > "$T/in2.jsonl" && mv "$T/in2.jsonl" "$T/in.jsonl"
  "$EMBED" -m tests/data/embed/bert-tiny -q < "$T/in.jsonl" > "$T/ref.jsonl" || [ $? -eq 3 ]
  ROUNDS=5 STEP_MIN=100 STEP_RAND=900 FAULT_SEED=11 kill_resume_rounds "$EMBED" -m tests/data/embed/bert-tiny
  [ "$KILLED" -ge 4 ]
  cmp "$T/out.jsonl" "$T/ref.jsonl"
  no_leftovers "$T"
}

@test "mlx-embed: a full disk, a non-file as -o, and SIGINT leave no temporary file and no half-written matrix" {
  for i in $(seq 1 6000); do printf '{"id":%d,"text":"text %d"}\n' "$i" "$i"; done > "$T/in.jsonl"
  # a full standard output: one fatal error at the first failed write
  run --separate-stderr bash -c '"$0" -m tests/data/embed/bert-tiny < "$1" > /dev/full' "$EMBED" "$T/in.jsonl"
  [ "$status" -eq 1 ]
  [ "$(echo "$stderr" | grep -c .)" -eq 1 ]
  # -o naming something that is not a regular file (a FIFO here; a device such as /dev/full
  # likewise): refused before any work, since a rename into place would replace it
  mkfifo "$T/fifo.npy"
  run --separate-stderr "$EMBED" -m tests/data/embed/bert-tiny -o "$T/fifo.npy" < "$T/in.jsonl"
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"fifo.npy: exists and is not a regular file"* ]]
  [ -p "$T/fifo.npy" ]
  ! ls "$T" | grep -q 'fifo.npy.tmp' 
  mkdir -p "$T/o"
  env --default-signal=INT "$EMBED" -m tests/data/embed/bert-tiny -q -o "$T/o/m.npy" < "$T/in.jsonl" > "$T/o/rows.jsonl" &
  pid=$!
  local_t0=$SECONDS; while kill -0 "$pid" 2>/dev/null && [ $((SECONDS - local_t0)) -lt 60 ] && [ "$(lines_of "$T/o/rows.jsonl")" -lt 300 ]; do sleep 0.01; done
  kill -INT "$pid"
  wait_bounded "$pid"; rc=$WAIT_STATUS
  [ "$rc" -eq 130 ]
  [ ! -e "$T/o/m.npy" ]
  no_leftovers "$T/o"
}
