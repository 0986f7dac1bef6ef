#!/usr/bin/env bats
# --shard K/N (lib/core/jsonl.c, every program): N processes over one input
# handle disjoint records whose round-robin merge is the one-process output
# byte for byte (with --reproducible where answers carry timings); blank lines
# do not count, --text lines do; ids stay global; --resume with --shard runs
# only the shard's own unanswered records; bad values are usage errors.
# The multi-host recipes built on this are in cluster.bats.

bats_require_minimum_version 1.5.0
load helpers

setup() {
  B=${MT_BUILD:-build}
  case $B in /*) ;; *) B="$PWD/$B" ;; esac
  GEN="$B/bin/mlx-gen"
  EMB="$B/bin/mlx-embed"
  STT="$B/bin/mlx-stt"
  KV="$B/bin/mlx-kvpack"
  L=tests/data/models/llama-tiny
  T="$BATS_TEST_TMPDIR"
}

# gen_input FILE N: N generation records with a blank line after the 4th
gen_input() {
  for i in $(seq 1 "$2"); do
    printf '{"id":"r%02d","prompt":"record %d says hello","max_tokens":%d}\n' "$i" "$i" $((2 + i % 3))
    if [ "$i" -eq 4 ]; then echo; fi
  done > "$1"
}

# rr OUT FILES...: the round-robin merge (each shard's file holds positions K, K+N, ...)
rr() { local o=$1; shift; paste -d '\n' "$@" | sed '/^$/d' > "$o"; }

@test "mlx-gen: 3 shards are disjoint and merge to the one-process output byte for byte" {
  gen_input "$T/in.jsonl" 11
  "$GEN" -m "$L" -q --reproducible < "$T/in.jsonl" > "$T/all.jsonl"
  for k in 0 1 2; do "$GEN" -m "$L" -q --reproducible --shard $k/3 < "$T/in.jsonl" > "$T/s$k.jsonl"; done
  [ "$(wc -l < "$T/s0.jsonl")" -eq 4 ]
  [ "$(wc -l < "$T/s1.jsonl")" -eq 4 ]
  [ "$(wc -l < "$T/s2.jsonl")" -eq 3 ]
  # disjoint ids covering the input
  [ "$(cat "$T"/s?.jsonl | jq -r .id | sort | uniq -d | wc -l)" -eq 0 ]
  [ "$(cat "$T"/s?.jsonl | jq -r .id | sort | tr '\n' ' ')" = "$(jq -r .id "$T/in.jsonl" | sort | tr '\n' ' ')" ]
  # position 4 (the 5th record, after the blank line) goes to shard 1
  [ "$(sed -n 2p "$T/s1.jsonl" | jq -r .id)" = r05 ]
  rr "$T/merged.jsonl" "$T/s0.jsonl" "$T/s1.jsonl" "$T/s2.jsonl"
  cmp "$T/merged.jsonl" "$T/all.jsonl"
  # no run-dependent field is left
  ! grep -q '_tps\|cached_tokens' "$T/all.jsonl"
}

@test "mlx-gen: --shard 0/1 is the whole input; ids without \"id\" stay the global line numbers" {
  printf '{"prompt":"a","max_tokens":2}\n\n{"prompt":"b","max_tokens":2}\n{"prompt":"c","max_tokens":2}\n' > "$T/in.jsonl"
  "$GEN" -m "$L" -q --reproducible < "$T/in.jsonl" > "$T/all.jsonl"
  "$GEN" -m "$L" -q --reproducible --shard 0/1 < "$T/in.jsonl" > "$T/one.jsonl"
  cmp "$T/all.jsonl" "$T/one.jsonl"
  run "$GEN" -m "$L" -q --reproducible --shard 1/2 < "$T/in.jsonl"
  [ "$status" -eq 0 ]
  [ "$output" = "$(sed -n 2p "$T/all.jsonl")" ]
  [ "$(echo "$output" | jq .id)" -eq 3 ]
}

@test "mlx-gen --text: every line is a record, blank ones too, for the shard position" {
  printf 'alpha\n\nbeta\ngamma\n' > "$T/in.txt"
  "$GEN" -m "$L" -q --reproducible --text -n 2 < "$T/in.txt" > "$T/all.jsonl"
  "$GEN" -m "$L" -q --reproducible --text -n 2 --shard 0/2 < "$T/in.txt" > "$T/s0.jsonl"
  "$GEN" -m "$L" -q --reproducible --text -n 2 --shard 1/2 < "$T/in.txt" > "$T/s1.jsonl"
  [ "$(jq -c .id "$T/s0.jsonl" | tr '\n' ' ')" = "1 3 " ]
  [ "$(jq -c .id "$T/s1.jsonl" | tr '\n' ' ')" = "2 4 " ]
  rr "$T/m.jsonl" "$T/s0.jsonl" "$T/s1.jsonl"
  cmp "$T/m.jsonl" "$T/all.jsonl"
}

@test "--shard with --resume: a killed shard resumes its own records only, nothing lost or duplicated" {
  gen_input "$T/in.jsonl" 12
  "$GEN" -m "$L" -q --reproducible < "$T/in.jsonl" > "$T/all.jsonl"
  # shard 1/3 ran its first two records, then died mid-write
  "$GEN" -m "$L" -q --reproducible --shard 1/3 < "$T/in.jsonl" | head -n 2 > "$T/r1.jsonl"
  printf '{"id":"r0' >> "$T/r1.jsonl"
  run --separate-stderr "$GEN" -m "$L" --reproducible --shard 1/3 --resume "$T/r1.jsonl" < "$T/in.jsonl"
  [ "$status" -eq 0 ]
  [[ "$stderr" == *"2 answered before, 2 skipped, 2 run, 0 duplicate ids, shard 1/3 (8 records of other shards passed over)"* ]]
  for k in 0 2; do "$GEN" -m "$L" -q --reproducible --shard $k/3 --resume "$T/r$k.jsonl" < "$T/in.jsonl"; done
  [ "$(cat "$T"/r?.jsonl | jq -r .id | sort | uniq -d | wc -l)" -eq 0 ]
  rr "$T/m.jsonl" "$T/r0.jsonl" "$T/r1.jsonl" "$T/r2.jsonl"
  cmp "$T/m.jsonl" "$T/all.jsonl"
  # a rerun of a finished shard runs nothing
  run --separate-stderr "$GEN" -m "$L" --shard 2/3 --resume "$T/r2.jsonl" < "$T/in.jsonl"
  [[ "$stderr" == *"4 answered before, 4 skipped, 0 run"* ]]
}

@test "mlx-embed: shards merge to the one-process output (JSONL); error records keep their place" {
  for i in $(seq 1 20); do printf '{"id":%d,"text":"%s"}\n' "$i" "$(printf 'word%.0s ' $(seq 1 "$i"))"; done > "$T/in.jsonl"
  printf '{"id":21,"text":5}\nnot json\n' >> "$T/in.jsonl"
  run "$EMB" -m tests/data/embed/bert-tiny -q < "$T/in.jsonl"
  [ "$status" -eq 3 ]
  echo "$output" > "$T/all.jsonl"
  for k in 0 1 2 3; do
    run "$EMB" -m tests/data/embed/bert-tiny -q --shard $k/4 < "$T/in.jsonl"
    echo "$output" > "$T/s$k.jsonl"
  done
  rr "$T/m.jsonl" "$T"/s0.jsonl "$T"/s1.jsonl "$T"/s2.jsonl "$T"/s3.jsonl
  cmp "$T/m.jsonl" "$T/all.jsonl"
  grep -q '"id":22,"error":"line 22: invalid JSON' "$T/s1.jsonl"
}

@test "mlx-stt: FILE lists and records are sharded; --reproducible drops rtf" {
  EN=tests/data/whisper/tiny-en-hf
  A=tests/data/audio
  files="$A/speech_s16_mono_16k.wav $A/speech_22k.flac $A/corrupt.flac $A/speech_22k.ogg"
  run --separate-stderr "$STT" -m "$EN" -q -f jsonl --reproducible --temperature-increment-on-fallback none $files
  [ "$status" -eq 3 ]
  echo "$output" > "$T/all.jsonl"
  ! grep -q '"rtf"' "$T/all.jsonl"
  run --separate-stderr "$STT" -m "$EN" -q -f jsonl --reproducible --temperature-increment-on-fallback none --shard 0/2 $files
  [ "$status" -eq 3 ]
  echo "$output" > "$T/f0.jsonl"
  run --separate-stderr "$STT" -m "$EN" -q -f jsonl --reproducible --temperature-increment-on-fallback none --shard 1/2 $files
  [ "$status" -eq 0 ]
  echo "$output" > "$T/f1.jsonl"
  [ "$(jq -r .id "$T/f0.jsonl" | tr '\n' ' ')" = "$A/speech_s16_mono_16k.wav $A/corrupt.flac " ]
  rr "$T/m.jsonl" "$T/f0.jsonl" "$T/f1.jsonl"
  cmp "$T/m.jsonl" "$T/all.jsonl"
  # records on stdin
  for f in $files; do printf '{"audio":"%s"}\n' "$f"; done > "$T/in.jsonl"
  run --separate-stderr "$STT" -m "$EN" -q --reproducible --temperature-increment-on-fallback none < "$T/in.jsonl"
  echo "$output" > "$T/rall.jsonl"
  for k in 0 1; do
    run --separate-stderr "$STT" -m "$EN" -q --reproducible --temperature-increment-on-fallback none --shard $k/2 < "$T/in.jsonl"
    echo "$output" > "$T/r$k.jsonl"
  done
  rr "$T/rm.jsonl" "$T/r0.jsonl" "$T/r1.jsonl"
  cmp "$T/rm.jsonl" "$T/rall.jsonl"
  run "$STT" -m "$EN" --raw --rate 16000 --format s16le --shard 0/2 < /dev/null
  [ "$status" -eq 2 ]
}

@test "mlx-kvpack: build and inspect take --shard; shards write disjoint files; build --resume" {
  printf '{"id":"a","prompt":"one"}\n{"id":"b","prompt":"two"}\n{"id":"c","prompt":"three"}\n' > "$T/in.jsonl"
  "$KV" build -m "$L" -o "$T/all/" -q --reproducible < "$T/in.jsonl" > "$T/all.jsonl"
  ! grep -q 'prefill_s\|cached_tokens' "$T/all.jsonl"
  "$KV" build -m "$L" -o "$T/s0/" -q --reproducible --shard 0/2 < "$T/in.jsonl" > "$T/s0.jsonl"
  "$KV" build -m "$L" -o "$T/s1/" -q --reproducible --shard 1/2 < "$T/in.jsonl" > "$T/s1.jsonl"
  [ "$(ls "$T/s0" | tr '\n' ' ')" = "a.kv.zst c.kv.zst " ]
  [ "$(ls "$T/s1")" = "b.kv.zst" ]
  for f in a b c; do d=s0; [ $f = b ] && d=s1; cmp "$T/all/$f.kv.zst" "$T/$d/$f.kv.zst"; done
  rr "$T/m.jsonl" "$T/s0.jsonl" "$T/s1.jsonl"
  diff <(sed "s|$T/s[01]/|X/|" "$T/m.jsonl") <(sed "s|$T/all/|X/|" "$T/all.jsonl")
  run "$KV" inspect --shard 1/2 "$T"/all/a.kv.zst "$T"/all/b.kv.zst "$T"/all/c.kv.zst
  [ "$status" -eq 0 ]
  [ "$(echo "$output" | jq -r .file)" = "$T/all/b.kv.zst" ]
  # build --resume with --shard: a rerun builds nothing
  run --separate-stderr "$KV" build -m "$L" -o "$T/r/" --reproducible --shard 0/2 --resume "$T/r.jsonl" < "$T/in.jsonl"
  [[ "$stderr" == *"0 answered before, 0 skipped, 2 run, 0 duplicate ids, shard 0/2 (1 records of other shards passed over)"* ]]
  rm "$T/r/a.kv.zst"
  run --separate-stderr "$KV" build -m "$L" -o "$T/r/" --reproducible --shard 0/2 --resume "$T/r.jsonl" < "$T/in.jsonl"
  [[ "$stderr" == *"2 answered before, 2 skipped, 0 run"* ]]
  [ ! -e "$T/r/a.kv.zst" ]
  [ "$(jq -r .id "$T/r.jsonl" | tr '\n' ' ')" = "a c " ]
  run "$KV" pack --resume "$T/r.jsonl" "$T/all/a.kv.zst" -o "$T/x.kv.zst"
  [ "$status" -eq 2 ]
  run "$KV" pack --shard 0/2 "$T/all/a.kv.zst" -o "$T/x.kv.zst"
  [ "$status" -eq 2 ]
}

@test "bad --shard values are usage errors naming the value" {
  for v in 3/3 -1/2 1/0 a/b 1 1/2/3 "" 0/1000001 " 1/2"; do
    run --separate-stderr "$GEN" -m "$L" --shard "$v" < /dev/null
    [ "$status" -eq 2 ]
    [[ "$stderr" == *"--shard: '$v' is not K/N"* ]]
  done
  run --separate-stderr "$EMB" -m tests/data/embed/bert-tiny --shard 2/2 < /dev/null
  [ "$status" -eq 2 ]
  run --separate-stderr "$GEN" -m "$L" -p hi --shard 0/2
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"--shard go with records on stdin"* ]]
}
