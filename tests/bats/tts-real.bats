#!/usr/bin/env bats
# mlx-tts on the real Kokoro-82M (make kokoro) heard by mlx-stt on the real Whisper tiny.en
# (make whisper-tiny-en): the 50 sentences of tests/data/tts/roundtrip.txt, spoken with the
# voice jf_alpha and transcribed, come back with a word error rate of at most 10%
# (tests/tools/wer.awk: lower case, punctuation dropped; the figure and every differing
# line are printed with --verbose-run / on failure), with the float path and with --int8.
# Skipped with a message when either folder is missing.  (Exactness against mlx-audio on these weights: test_kokoro_real.)

setup_file() {
  export TTS="$PWD/${MT_BUILD:-build}/bin/mlx-tts"
  export STT="$PWD/${MT_BUILD:-build}/bin/mlx-stt"
  export TD="$BATS_FILE_TMPDIR"
}

need() {
  [ -f local-models/Kokoro-82M/config.json ] || skip "skipped: run make kokoro"
  [ -f local-models/whisper-tiny.en-mlx/config.json ] || skip "skipped: run make whisper-tiny-en"
}

# round_trip DIR [mlx-tts flags]: speak, transcribe, check WER <= 10%
round_trip() {
  local d="$TD/$1"; shift
  "$TTS" -m local-models/Kokoro-82M --voice jf_alpha --text -o "$d" --reproducible -q "$@" \
    < tests/data/tts/roundtrip.txt > "$d.jsonl"
  [ "$(wc -l < "$d.jsonl")" -eq 50 ]
  [ "$(jq -r .file "$d.jsonl" | wc -l)" -eq 50 ]
  "$STT" -m local-models/whisper-tiny.en-mlx -f txt -o "$d.txt" -q $(jq -r .file "$d.jsonl")
  for i in $(seq 1 50); do tr '\n' ' ' < "$d.txt/$i.txt"; echo; done > "$d.hyp"
  run awk -f tests/tools/wer.awk tests/data/tts/roundtrip.txt "$d.hyp"
  echo "$output"
  [ "$status" -eq 0 ]
  wer=$(echo "$output" | sed -n 's/^WER \([0-9.]*\)%.*/\1/p')
  [ -n "$wer" ]
  awk -v w="$wer" 'BEGIN { exit !(w <= 10) }'
}

@test "round trip: 50 sentences spoken by mlx-tts, transcribed by mlx-stt tiny.en, WER <= 10%" {
  need
  round_trip float
}

@test "round trip with --int8: WER <= 10%" {
  need
  round_trip int8 --int8
}

@test "wer.awk: counts substitutions, insertions and deletions, and refuses unequal line counts" {
  printf 'the cat sat\none two three four\n' > "$TD/r.txt"
  printf 'The cat, sat!\none 2 three four five\n' > "$TD/h.txt"
  run awk -f tests/tools/wer.awk "$TD/r.txt" "$TD/h.txt"
  [ "$status" -eq 0 ]
  [[ "$output" == *"WER 28.6% (2 edits / 7 reference words, 2 lines)"* ]]
  printf 'x\n' > "$TD/h1.txt"
  run awk -f tests/tools/wer.awk "$TD/r.txt" "$TD/h1.txt"
  [ "$status" -eq 1 ]
  [[ "$output" == *"2 reference lines, 1 hypothesis lines"* ]]
}
