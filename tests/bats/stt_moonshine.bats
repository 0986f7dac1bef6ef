#!/usr/bin/env bats
# mlx-stt on the tiny random Moonshine folders (tests/data/stt/moonshine): the
# transcript of mlx-audio's generate() with its defaults (goldens.json "cli",
# tests/gen/gen_stt_moonshine.py), the one segment spanning the clip, the
# options Moonshine refuses, and a broken folder.  The stages and token ids
# are checked in tests/unit/test_stt_moonshine.c.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
  export STT="$PWD/${MT_BUILD:-build}/bin/mlx-stt"
  export D="$PWD/tests/data/stt/moonshine"
  export G="$D/golden/goldens.json"
  export TD="$BATS_FILE_TMPDIR"
}

@test "moonshine: txt transcript equals mlx-audio's (float folder)" {
  run -0 "$STT" -t 2 -q -m "$D/tiny" "$D/clips/espeak.wav"
  [ "$output" = "$(jq -r '.cli["tiny-espeak"]' "$G")" ]
}

@test "moonshine: json of the 4-bit folder, one segment over the clip" {
  run -0 "$STT" -t 2 -q -m "$D/tiny-q4" -f json "$PWD/tests/data/audio/speech_s16_mono_16k.wav"
  [ "$(jq -r .text <<< "$output")" = "$(jq -r '.cli["tiny-q4-speech"]' "$G")" ]
  [ "$(jq '.segments | length' <<< "$output")" = 1 ]
  [ "$(jq '.segments[0].start' <<< "$output")" = 0 ]
  [ "$(jq '.segments[0].end' <<< "$output")" = 1.3 ]
}

@test "moonshine: records on stdin" {
  run -0 "$STT" -t 2 -q -m "$D/tiny" --reproducible <<< "{\"id\":\"e\",\"audio\":\"$D/clips/espeak.wav\"}"
  [ "$(jq -r .id <<< "$output")" = e ]
  [ "$(jq -r .text <<< "$output")" = "$(jq -r '.cli["tiny-espeak"]' "$G")" ]
  [ "$(jq '.segments | length' <<< "$output")" = 1 ]
}

@test "moonshine: translate and word timestamps are refused" {
  run "$STT" -q -m "$D/tiny" --task translate "$D/clips/espeak.wav"
  [ "$status" -ne 0 ]
  [[ "$output" == *moonshine* ]]
  run "$STT" -q -m "$D/tiny" --word-timestamps "$D/clips/espeak.wav"
  [ "$status" -ne 0 ]
  [[ "$output" == *moonshine* ]]
}

@test "moonshine: a folder whose config disagrees with its weights: one line naming the file" {
  mkdir -p "$TD/bad"
  cp "$D/tiny/model.safetensors" "$D/tiny/tokenizer.json.zst" "$TD/bad/"
  jq '.vocab_size = 600' "$D/tiny/config.json" > "$TD/bad/config.json"
  run "$STT" -q -m "$TD/bad" "$D/clips/espeak.wav"
  [ "$status" -ne 0 ]
  [ "${#lines[@]}" -eq 1 ]
  [[ "$output" == *model.safetensors*embed_tokens* ]]
}
