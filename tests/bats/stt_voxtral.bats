#!/usr/bin/env bats
# mlx-stt on the tiny random Voxtral folders (tests/data/stt/voxtral): the text of
# mlx-audio's generate() for the same clip (goldens.json,
# tests/gen/gen_stt_voxtral.py) through files, --raw and records; long audio
# in one prompt and in --chunk-length windows; the options Voxtral refuses.
# The stages and token ids are checked in tests/unit/test_stt_voxtral.c.
# Skipped while stt/asr.c's registry does not list mt_asr_voxtral.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
  export STT="$PWD/${MT_BUILD:-build}/bin/mlx-stt"
  export D="$PWD/tests/data/stt/voxtral"
  export G="$D/goldens.json"
  export W="$PWD/tests/data/audio/speech_s16_mono_16k.wav"
  export TD="$BATS_FILE_TMPDIR"
}


# golden TAG NAME FIELD
golden() { jq -c --arg t "$1" --arg n "$2" ".[\$t][] | select(.name == \$n) | $3" "$G"; }
dir() { [ "$1" = f32 ] && echo "$D/tiny" || echo "$D/tiny-q4"; }
MAXT() { jq .max_tokens "$G"; }
# the 35-s clip: the speech file's samples (after its 44-byte header) tiled
long_pcm() { for _ in $(seq 30); do tail -c +45 "$W"; done | head -c $((35 * 16000 * 2)); }

@test "voxtral: transcripts equal mlx-audio's generate() (float and 4-bit, speech and espeak-ng clips)" {
  for t in f32 q4; do
    for n in speech espeak; do
      f=$W
      [ "$n" = espeak ] && f="$D/clip_espeak.wav"
      run -0 "$STT" -q -t 2 -m "$(dir $t)" -f json --max-tokens "$(MAXT)" --language en "$f"
      [ "$(jq -c .text <<< "$output")" = "$(golden $t $n .text)" ] || { echo "$t $n: $output"; false; }
      [ "$(jq -r .language <<< "$output")" = en ]
      [ "$(jq '.segments | length' <<< "$output")" = 1 ]
    done
  done
}

@test "voxtral: 35 s in one prompt (two chunks), or in 30-s windows (--chunk-length 30: two segments)" {
  long_pcm > "$TD/long.s16"
  run -0 "$STT" -q -t 2 -m "$D/tiny-q4" --raw --rate 16000 --format s16le -f json --max-tokens "$(MAXT)" \
    --language en < "$TD/long.s16"
  [ "$(jq -c .text <<< "$output")" = "$(golden q4 long .text)" ]
  [ "$(jq -c '[.segments[] | [.start, .end]]' <<< "$output")" = "[[0,35]]" ]
  run -0 "$STT" -q -t 2 -m "$D/tiny-q4" --raw --rate 16000 --format s16le -f json --max-tokens "$(MAXT)" \
    --language en --chunk-length 30 < "$TD/long.s16"
  [ "$(jq -c '[.segments[] | [.start, .end]]' <<< "$output")" = "[[0,30],[30,35]]" ]
}

@test "voxtral: records on stdin; a bad record does not stop the batch" {
  run -3 "$STT" -q -t 2 -m "$D/tiny" --max-tokens "$(MAXT)" --reproducible <<EOF2
{"id": "a", "audio": "$W", "language": "en"}
{"id": "b", "audio": "$TD/missing.wav"}
{"id": "c", "audio": "$W", "language": "en"}
EOF2
  [ "${#lines[@]}" -eq 3 ]
  [ "$(jq -c .text <<< "${lines[0]}")" = "$(golden f32 speech .text)" ]
  jq -e .error <<< "${lines[1]}" > /dev/null
  [ "$(jq -c .text <<< "${lines[2]}")" = "$(golden f32 speech .text)" ]
}

@test "voxtral: translate and word timestamps are refused (exit 2, one line naming voxtral)" {
  for opt in "--task translate" "--word-timestamps"; do
    run --separate-stderr "$STT" -q -m "$D/tiny" $opt "$W"
    [ "$status" -eq 2 ] || { echo "$opt: $status $stderr"; false; }
    [ "$(echo "$stderr" | wc -l)" -eq 1 ]
    [[ "$stderr" == *voxtral* ]]
  done
}

@test "voxtral: a folder without tekken.json is one line naming the file" {
  mkdir -p "$TD/notok"
  for f in config.json model.safetensors preprocessor_config.json; do ln -sf "$D/tiny/$f" "$TD/notok/$f"; done
  run --separate-stderr "$STT" -q -m "$TD/notok" "$W"
  [ "$status" -ne 0 ]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  [[ "$stderr" == *tekken.json* ]]
}
