#!/usr/bin/env bats
# mlx-tts CLI on the tiny random Kokoro folder (tests/data/kokoro-tiny): JSONL in, audio
# files out, lengths from the goldens (the model itself is checked against mlx-audio in
# tests/unit/test_kokoro.c), --raw, voices and blends, error records, --resume, --shard,
# atomic files, -p.  One test on the real Kokoro-82M weights when `make kokoro` has run.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
  export TTS="$PWD/${MT_BUILD:-build}/bin/mlx-tts"
  export M="$PWD/tests/data/kokoro-tiny/model"
  export G="$PWD/tests/data/kokoro-tiny/goldens.safetensors"
  export TD="$BATS_FILE_TMPDIR"
  export REAL="$PWD/local-models/Kokoro-82M"
}

tts() { "$TTS" -m "$M" --voice af_tiny -t 2 "$@"; }

# golden_samples CASE: sum(CASE.dur) * 600, read from the goldens' safetensors
# (8-byte header length, JSON header, float32 data).
golden_samples() {
  local n hdr a b
  n=$(od -An -tu8 -N8 "$G" | tr -d ' ')
  hdr=$(tail -c +9 "$G" | head -c "$n")
  a=$(jq ".\"$1.dur\".data_offsets[0]" <<< "$hdr")
  b=$(jq ".\"$1.dur\".data_offsets[1]" <<< "$hdr")
  od -An -tf4 -v -j $((8 + n + a)) -N $((b - a)) "$G" | tr -s ' ' '\n' | awk 'NF { s += $1 } END { printf "%d\n", s * 600 }'
}

# npy FILE SHAPE N: a float32 .npy of shape SHAPE (a Python tuple's text) holding N zeros.
npy() {
  local d="{'descr': '<f4', 'fortran_order': False, 'shape': $2, }"
  while [ $(( (10 + ${#d} + 1) % 64 )) -ne 0 ]; do d="$d "; done
  { printf '\223NUMPY\001\000'; printf "\\$(printf %03o $(( (${#d} + 1) % 256 )))\\$(printf %03o $(( (${#d} + 1) / 256 )))";
    printf '%s\n' "$d"; head -c $(( 4 * $3 )) /dev/zero; } > "$1"
}

@test "a JSONL batch: one WAV per record, named by id, as long as the goldens' durations" {
  printf '%s\n' '{"id":"hello","phonemes":"həlˈoʊ wˈɜːld!"}' '{"id":"this","phonemes":"ðɪs ɪz ə tˈɛst."}' \
    '{"id":"kokoro","phonemes":"kəkˈɔɹoʊ, ʃˈɔɹt","speed":1.3}' > "$TD/ph.jsonl"
  run -0 tts -o "$TD/b1" --reproducible < "$TD/ph.jsonl"
  [ "${#lines[@]}" -eq 3 ]
  i=0
  for id in hello this kokoro; do
    l=$(sed -n "$((i + 1))p" <<< "$output")
    [ "$(jq -r .id <<< "$l")" = "$id" ]
    [ "$(jq -r .file <<< "$l")" = "$TD/b1/$id.wav" ]
    [ "$(jq -r .sample_rate <<< "$l")" = 24000 ]
    s=$(golden_samples $i)
    [ "$(jq -r .samples <<< "$l")" -eq "$s" ]
    jq -e ".seconds == $s / 24000" <<< "$l"
    jq -e 'has("rtf") | not' <<< "$l"
    # 44-byte WAV header + 16-bit mono samples
    [ "$(stat -c %s "$TD/b1/$id.wav")" -eq $((44 + 2 * s)) ]
    file "$TD/b1/$id.wav" | grep -q 'WAVE audio, Microsoft PCM, 16 bit, mono 24000 Hz'
    i=$((i + 1))
  done
  # the phonemes are used as given (no G2P)
  [ "$(jq -r .phonemes <<< "${lines[1]}")" = "ðɪs ɪz ə tˈɛst." ]
  [ "$(ls "$TD/b1" | tr '\n' ' ')" = "hello.wav kokoro.wav this.wav " ]
}

@test "text records go through G2P; rtf is reported without --reproducible" {
  run -0 tts -o "$TD/t1" <<< '{"id":1,"text":"Hello world!"}'
  [ "$(jq -r .phonemes <<< "$output")" = "həlˈoʊ wˈɜːld!" ]
  jq -e '.rtf > 0' <<< "$output"
  [ -f "$TD/t1/1.wav" ]
  # the same phonemes as a phonemes record: the same audio
  run -0 tts -o "$TD/t2" --deterministic <<< '{"id":1,"text":"Hello world!"}'
  run -0 tts -o "$TD/t3" --deterministic <<< '{"id":1,"phonemes":"həlˈoʊ wˈɜːld!"}'
  cmp "$TD/t2/1.wav" "$TD/t3/1.wav"
}

@test "--text: one text per line, ids are line numbers" {
  run -0 tts -o "$TD/tx" --text --reproducible <<< $'Hello.\nGood morning.'
  [ "${#lines[@]}" -eq 2 ]
  [ "$(jq -r .id <<< "${lines[1]}")" = 2 ]
  [ -f "$TD/tx/1.wav" ] && [ -f "$TD/tx/2.wav" ]
}

@test "ids become safe file names" {
  run -0 tts -o "$TD/ids" <<< '{"id":"../a b/c","phonemes":"hˈaɪ"}'
  [ -f "$TD/ids/.._a_b_c.wav" ] || [ -f "$TD/ids/_._a_b_c.wav" ]
  [ "$(ls "$TD/ids" | wc -l)" -eq 1 ]
  [ ! -e "$TD/a b" ]
  # two ids that give one file name, or one id twice: the later record fails, the first file stays
  printf '%s\n' '{"id":"a b","phonemes":"hˈaɪ"}' '{"id":"a_b","phonemes":"həlˈoʊ"}' '{"id":"a b","phonemes":"hˈaɪ"}' > "$TD/dup.jsonl"
  run -3 --separate-stderr tts -o "$TD/dup" --reproducible < "$TD/dup.jsonl"
  [ "$(jq -r 'select(.error) | .id' <<< "$output" | tr '\n' ' ')" = "a_b a b " ]
  [[ "${lines[1]}" == *"already written by an earlier record"* ]]
  [ "$(jq -r .samples <<< "${lines[0]}")" -eq $(( ($(stat -c %s "$TD/dup/a_b.wav") - 44) / 2 )) ]
}

@test "--format flac and ogg" {
  run -0 tts -o "$TD/fl" --format flac <<< '{"id":"x","phonemes":"hˈaɪ"}'
  file "$TD/fl/x.flac" | grep -qi flac
  run -0 tts -o "$TD/og" --format ogg <<< '{"id":"x","phonemes":"hˈaɪ"}'
  file "$TD/og/x.ogg" | grep -qi ogg
  run -2 tts -o "$TD/og" --format mp3 < /dev/null
}

@test "--raw s16le and f32le: PCM on stdout, records in order, 2 or 4 bytes a sample" {
  s0=$(golden_samples 0); s2=$(golden_samples 2)
  printf '%s\n' '{"phonemes":"həlˈoʊ wˈɜːld!"}' '{"phonemes":"kəkˈɔɹoʊ, ʃˈɔɹt","speed":1.3}' > "$TD/raw.jsonl"
  tts --raw s16le --deterministic < "$TD/raw.jsonl" > "$TD/raw.s16"
  [ "$(stat -c %s "$TD/raw.s16")" -eq $((2 * (s0 + s2))) ]
  tts --raw f32le --deterministic < "$TD/raw.jsonl" > "$TD/raw.f32"
  [ "$(stat -c %s "$TD/raw.f32")" -eq $((4 * (s0 + s2))) ]
  # the first record's samples come first: the same as its WAV's data
  tts -o "$TD/rw" --deterministic -q <<< '{"id":"a","phonemes":"həlˈoʊ wˈɜːld!"}' > /dev/null
  cmp <(head -c $((2 * s0)) "$TD/raw.s16") <(tail -c +45 "$TD/rw/a.wav")
  # the reader goes away: SIGPIPE, exit 141
  for i in $(seq 30); do echo '{"phonemes":"həlˈoʊ wˈɜːld!"}'; done > "$TD/pipe.jsonl"
  run bash -c 'set -o pipefail; "$0" -m "$1" --voice af_tiny -t 2 --raw s16le < "$2" | head -c 100 > /dev/null' "$TTS" "$M" "$TD/pipe.jsonl"
  [ "$status" -eq 141 ]
  # -p with --raw
  [ "$(tts -p "Hi there" --raw f32le | wc -c)" -gt 0 ]
  run -2 tts --raw s24le < /dev/null
  run -2 tts --raw s16le -o "$TD/x" < /dev/null
}

@test "voice blends: weights are normalized; files and .npy vectors" {
  r='{"id":"v","phonemes":"həlˈoʊ wˈɜːld!"}'
  tts -q -o "$TD/v1" --deterministic <<< "$r" > /dev/null
  tts -q -o "$TD/v2" --deterministic --voice af_tiny:0.7,af_tiny:0.3 <<< "$r" > /dev/null
  tts -q -o "$TD/v3" --deterministic --voice af_tiny:2 <<< "$r" > /dev/null
  tts -q -o "$TD/v4" --deterministic --voice "$M/voices/af_tiny.safetensors" <<< "$r" > /dev/null
  cmp "$TD/v1/v.wav" "$TD/v2/v.wav"
  cmp "$TD/v1/v.wav" "$TD/v3/v.wav"
  cmp "$TD/v1/v.wav" "$TD/v4/v.wav"
  # a blend with a zero style row is another voice; a per-record voice overrides --voice
  npy "$TD/zero.npy" '(256,)' 256
  npy "$TD/zero64.npy" '(64, 1, 256)' $((64 * 256))
  run -0 tts -o "$TD/v5" --deterministic --voice "af_tiny:1,$TD/zero64.npy:1" <<< "$r"
  ! cmp -s "$TD/v1/v.wav" "$TD/v5/v.wav"
  run -0 "$TTS" -m "$M" -o "$TD/v6" --deterministic <<< "{\"id\":\"v\",\"phonemes\":\"hˈaɪ\",\"voice\":\"$TD/zero.npy\"}"
}

@test "--seed changes the noise; --deterministic and a fixed seed repeat" {
  r='{"id":"s","phonemes":"həlˈoʊ wˈɜːld!"}'
  tts -q -o "$TD/s1" --seed 1 <<< "$r" > /dev/null
  tts -q -o "$TD/s2" --seed 1 <<< "$r" > /dev/null
  tts -q -o "$TD/s3" --seed 2 <<< "$r" > /dev/null
  cmp "$TD/s1/s.wav" "$TD/s2/s.wav"
  ! cmp -s "$TD/s1/s.wav" "$TD/s3/s.wav"
}

@test "bad records: one error line each, the batch goes on, exit 3" {
  npy "$TD/bad.npy" '(3,)' 3
  cat > "$TD/bad.jsonl" << EOF
{"id":"empty","text":""}
{"id":"blank","text":"   "}
{"id":"marks","text":"... !?"}
{"id":"nophon","phonemes":"123"}
{"id":"voice","text":"hi","voice":"nobody"}
{"id":"shape","text":"hi","voice":"$TD/bad.npy"}
{"id":"slow","text":"hi","speed":0}
{"id":"neg","text":"hi","speed":-1}
{"id":"fast","text":"hi","speed":11}
{"id":"lang","text":"hi","lang":"xx-nowhere"}
{"id":"both","text":"hi","phonemes":"hˈaɪ"}
{"id":"none"}
{"id":"weight","text":"hi","voice":"af_tiny:abc"}
not json
{"id":"ok","text":"hi"}
EOF
  run -3 --separate-stderr tts -o "$TD/bad" --reproducible < "$TD/bad.jsonl"
  [ "${#lines[@]}" -eq 15 ]
  [ "$(jq -r 'select(.error) | .id' <<< "$output" | wc -l)" -eq 14 ]
  [ "${#stderr_lines[@]}" -eq 14 ]
  for want in "empty: empty text" "blank: empty text" "marks: nothing to speak" "nophon: nothing to speak" \
      "voice: unknown voice 'nobody'" "shape: voice shape \[3\]" "slow: speed 0 is outside" "neg: speed -1 is outside" \
      "fast: speed 11 is outside" "lang: unknown lang 'xx-nowhere'" "both: not both" 'none: no "text"' \
      "weight: the weight 'abc'"; do
    id=${want%%:*}
    jq -r "select(.id == \"$id\") | .error" <<< "$output" | grep -q -- "${want#*: }"
  done
  [ "$(jq -r 'select(.error == null) | .id' <<< "$output")" = ok ]
  [ "$(ls "$TD/bad")" = ok.wav ]
  # the default lang and speed are checked before any record
  run -2 tts -o "$TD/bad" --lang xx-nowhere < /dev/null
  [[ "$output" == *"--lang: unknown lang 'xx-nowhere'"* ]]
  run -2 tts -o "$TD/bad" --speed 3 < /dev/null
  run -2 "$TTS" -m "$M" -o "$TD/bad" --voice nobody < /dev/null
  [[ "$output" == *"--voice: unknown voice 'nobody'"* ]]
  run -2 "$TTS" -m "$M" -o "$TD/bad" --voice "$TD/bad.npy" < /dev/null
  # the default voice (af_heart, absent here) fails only the records that use it
  run -3 "$TTS" -m "$M" -o "$TD/bad" -q <<< '{"id":"x","text":"hi"}'
  [[ "$output" == *"unknown voice 'af_heart'"* ]]
  run -0 "$TTS" -m "$M" -o "$TD/bad" -q <<< '{"id":"x","text":"hi","voice":"af_tiny"}'
}

@test "a corrupt or missing model folder: one line, exit 1" {
  mkdir -p "$TD/corrupt/voices"
  cp "$M/config.json" "$TD/corrupt/"
  head -c 5000 "$M/kokoro-tiny.safetensors" > "$TD/corrupt/kokoro-tiny.safetensors"
  run -1 --separate-stderr "$TTS" -m "$TD/corrupt" -o "$TD/c" <<< '{"text":"hi"}'
  [ "${#stderr_lines[@]}" -eq 1 ]
  [[ "$stderr" == mlx-tts:* ]]
  [ -z "$output" ]
  run -1 "$TTS" -m "$TD/nowhere" -o "$TD/c" < /dev/null
}

@test "files are written atomically: a failed write leaves nothing behind" {
  mkdir -p "$TD/at/busy.wav"
  printf '%s\n' '{"id":"busy","phonemes":"hˈaɪ"}' '{"id":"fine","phonemes":"hˈaɪ"}' > "$TD/at.jsonl"
  run -3 --separate-stderr tts -o "$TD/at" < "$TD/at.jsonl"
  [ -d "$TD/at/busy.wav" ]
  [ -f "$TD/at/fine.wav" ]
  [ "$(ls -A "$TD/at" | tr '\n' ' ')" = "busy.wav fine.wav " ]
  [ -z "$(ls -A "$TD/at/busy.wav")" ]
  # an existing file is replaced whole
  printf 'old' > "$TD/at/fine.wav"
  run -0 tts -o "$TD/at" <<< '{"id":"fine","phonemes":"hˈaɪ"}'
  file "$TD/at/fine.wav" | grep -q WAVE
}

@test "--resume: answered ids are skipped, failed ones run again" {
  printf '%s\n' '{"id":"a","phonemes":"hˈaɪ"}' '{"id":"b","text":"hi","voice":"nobody"}' > "$TD/r.jsonl"
  run -3 tts -q -o "$TD/r" --resume "$TD/r.out" < "$TD/r.jsonl"
  [ -z "$output" ]
  [ "$(jq -r 'select(.error == null) | .id' "$TD/r.out")" = a ]
  rm "$TD/r/a.wav"
  printf '%s\n' '{"id":"a","phonemes":"hˈaɪ"}' '{"id":"b","phonemes":"hˈaɪ"}' > "$TD/r2.jsonl"
  run -0 tts -q -o "$TD/r" --resume "$TD/r.out" < "$TD/r2.jsonl"
  [ ! -e "$TD/r/a.wav" ]    # a was answered: not run again
  [ -f "$TD/r/b.wav" ]
  [ "$(jq -r .id "$TD/r.out" | tr '\n' ' ')" = "a b " ]
  [ "$(jq -r 'select(.error) | .id' "$TD/r.out")" = "" ]
}

@test "--shard K/N: the shards together write every file once" {
  for i in 1 2 3 4 5; do echo "{\"id\":\"r$i\",\"phonemes\":\"hˈaɪ\"}"; done > "$TD/sh.jsonl"
  run -0 tts -o "$TD/sh" --shard 0/2 --reproducible < "$TD/sh.jsonl"
  [ "$(jq -r .id <<< "$output" | tr '\n' ' ')" = "r1 r3 r5 " ]
  run -0 tts -o "$TD/sh" --shard 1/2 --reproducible < "$TD/sh.jsonl"
  [ "$(jq -r .id <<< "$output" | tr '\n' ' ')" = "r2 r4 " ]
  [ "$(ls "$TD/sh" | wc -l)" -eq 5 ]
}

@test "-p TEXT -o FILE: one text, the format from the extension" {
  run -0 tts -p "Hello world!" -o "$TD/one.wav" --reproducible
  [ "$(jq -r .file <<< "$output")" = "$TD/one.wav" ]
  file "$TD/one.wav" | grep -q WAVE
  run -0 tts -p "Hello world!" -o "$TD/one.flac"
  file "$TD/one.flac" | grep -qi flac
  run -3 tts -p "" -o "$TD/none.wav"
  [ ! -e "$TD/none.wav" ]
  run -2 tts -p "hi" -o "$TD/x.wav" --text
  run -2 tts -p "hi"
}

@test "texts longer than 510 phonemes are cut and the pieces joined" {
  t=$(for i in $(seq 40); do printf 'This is sentence number %d. ' "$i"; done)
  run -0 tts -o "$TD/long" --reproducible --text <<< "$t"
  n=$(jq -r '.phonemes | length' <<< "$output")
  [ "$n" -gt 510 ]
  jq -e '.samples > 0 and .samples % 600 == 0' <<< "$output"
  # a phonemes record of over 510 is cut the same way
  p=$(jq -r .phonemes <<< "$output")
  run -0 tts -o "$TD/long2" --reproducible <<< "$(jq -nc --arg p "$p" '{id:"p",phonemes:$p}')"
}

@test "usage errors: exit 2" {
  run -2 "$TTS" -o "$TD/u" < /dev/null
  run -2 tts < /dev/null
  run -2 tts -o "$TD/u" --speed 0 < /dev/null
  run -2 tts -o "$TD/u" --shard 2/2 < /dev/null
  run -0 "$TTS" --help
  [[ "$output" == *"--voice"* ]]
}

@test "the man page has every option of --help" {
  for o in $("$TTS" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    grep -q -- "$(echo "$o" | sed 's/-/\\\\-/g')" man/mlx-tts.1 || { echo "mlx-tts.1 lacks $o"; false; }
  done
}

@test "real Kokoro-82M: a sentence" {
  [ -f "$REAL/config.json" ] || skip "skipped: run make kokoro"
  v=$(ls "$REAL/voices" | head -n 1); v=${v%.safetensors}
  run -0 "$TTS" -m "$REAL" --voice "$v" -t 2 -o "$TD/real" --reproducible <<< '{"id":"s","text":"The quick brown fox jumps over the lazy dog."}'
  jq -e '.seconds > 1 and .seconds < 8 and .sample_rate == 24000' <<< "$output"
  file "$TD/real/s.wav" | grep -q 'WAVE audio'
  # not silence: some 16-bit sample beyond +-1000
  od -An -td2 -v -j 44 "$TD/real/s.wav" | tr -s ' ' '\n' | awk 'NF && ($1 > 1000 || $1 < -1000) { f = 1 } END { exit !f }'
}

@test "--int8: the same durations and lengths, a different waveform; Orpheus folders refuse it" {
  echo '{"id":"a","phonemes":"həlˈoʊ wˈɜːld!"}' > "$TD/i8.jsonl"
  tts --deterministic --reproducible -o "$TD/f32" < "$TD/i8.jsonl" > "$TD/f32.out"
  tts --deterministic --reproducible --int8 -o "$TD/i8" < "$TD/i8.jsonl" > "$TD/i8.out"
  [ "$(sed 's|/f32/|/x/|' "$TD/f32.out")" = "$(sed 's|/i8/|/x/|' "$TD/i8.out")" ]
  ! cmp -s "$TD/f32/a.wav" "$TD/i8/a.wav"
  run "$TTS" -m "$PWD/tests/data/orpheus-tiny/model" --codec "$PWD/tests/data/snac-tiny" -p hi -o "$TD/x.wav" --int8
  [ "$status" -eq 2 ]
  [[ "$output" == *"--int8 is for Kokoro models"* ]]
}
