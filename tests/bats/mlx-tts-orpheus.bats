#!/usr/bin/env bats
# mlx-tts on the tiny random Orpheus folder (tests/data/orpheus-tiny/model) with the tiny SNAC
# codec (tests/data/snac-tiny): the family picked from config.json, --codec or a codec
# subfolder, greedy (--deterministic) output as long as mlx-audio's, raw PCM, seeded
# sampling, error records.  The numbers themselves are checked against mlx-audio in
# tests/unit/test_orpheus.c and test_snac.c.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
  export TTS="$PWD/${MT_BUILD:-build}/bin/mlx-tts"
  export M="$PWD/tests/data/orpheus-tiny/model"
  export C="$PWD/tests/data/snac-tiny"
  export TD="$BATS_FILE_TMPDIR"
}

orph() { "$TTS" -m "$M" --codec "$C" -t 2 "$@"; }

@test "greedy -p: one WAV as long as mlx-audio's waveform (7 frames, 14411 samples at 24 kHz)" {
  run --separate-stderr orph -p "Hello there, how are you today?" --voice tara --deterministic \
    --max-tokens 50 --reproducible -o "$TD/a.wav"
  [ "$status" -eq 0 ]
  [ "$output" = "{\"id\":1,\"file\":\"$TD/a.wav\",\"seconds\":0.600458333,\"samples\":14411,\"sample_rate\":24000}" ]
  [ -z "$stderr" ]
  [ -s "$TD/a.wav" ]
}

@test "--raw f32le: the samples on stdout, the same bytes run after run" {
  orph -p "Hello" --deterministic --max-tokens 50 --raw f32le > "$TD/r1.pcm"
  orph -p "Hello" --deterministic --max-tokens 50 --raw f32le > "$TD/r2.pcm"
  [ "$(stat -c %s "$TD/r1.pcm")" -eq $((14411 * 4)) ]
  cmp "$TD/r1.pcm" "$TD/r2.pcm"
}

@test "a codec subfolder (snac/) needs no --codec; without either it is a fatal error naming --codec" {
  mkdir -p "$TD/om"
  for f in "$M"/*; do ln -sf "$f" "$TD/om/"; done
  run --separate-stderr "$TTS" -m "$TD/om" -p "Hi" -o "$TD/x.wav"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"no SNAC codec folder"*"--codec DIR"* ]]
  ln -sfn "$C" "$TD/om/snac"
  run --separate-stderr "$TTS" -m "$TD/om" -p "Hi" --deterministic --max-tokens 22 -o "$TD/x.wav"
  [ "$status" -eq 0 ]
  [[ "$output" == *'"samples":6219,"sample_rate":24000'* ]]
}

@test "records: text lines as segments, error records for phonemes, speed and empty text; exit 3" {
  printf '%s\n' '{"id":"a","text":"Speech synthesis\\nwith two lines.","voice":"zoe"}' '{"id":"b","phonemes":"x"}' \
    '{"id":"c","text":"x","speed":1.5}' '{"id":"d","text":"  "}' > "$TD/recs.jsonl"
  run --separate-stderr orph --deterministic --max-tokens 50 --reproducible -o "$TD/recs" < "$TD/recs.jsonl"
  [ "$status" -eq 3 ]
  [ "${lines[0]}" = "{\"id\":\"a\",\"file\":\"$TD/recs/a.wav\",\"seconds\":1.20091667,\"samples\":28822,\"sample_rate\":24000}" ]
  [ "${lines[1]}" = '{"id":"b","error":"line 2: Orpheus speaks \"text\"; \"phonemes\" are for Kokoro"}' ]
  [ "${lines[2]}" = '{"id":"c","error":"line 3: Orpheus has no speed; \"speed\" is for Kokoro"}' ]
  [ "${lines[3]}" = '{"id":"d","error":"line 4: empty text"}' ]
  [ "$(grep -c . <<< "$stderr")" -eq 3 ]
}

@test "seeded sampling: the same seed gives the same answers and audio" {
  for i in 1 2; do
    s=0; orph -p "Hello" --seed 5 --max-tokens 40 --raw s16le > "$TD/s$i.pcm" 2> "$TD/s$i.err" || s=$?
    echo "$s" > "$TD/s$i.st"
  done
  cmp "$TD/s1.pcm" "$TD/s2.pcm"
  cmp "$TD/s1.err" "$TD/s2.err"
  cmp "$TD/s1.st" "$TD/s2.st"
}

@test "--codec with a Kokoro folder is a usage error" {
  run --separate-stderr "$TTS" -m "$PWD/tests/data/kokoro-tiny/model" --codec "$C" -p hi -o "$TD/k.wav"
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"--codec is for Orpheus models"* ]]
}
