#!/usr/bin/env bats
# mlx-stt on the tiny Wav2Vec2 / HuBERT CTC folders (tests/data/wav2vec2): the
# transcript and word timestamps of the goldens (tests/gen/gen_stt_wav2vec2.py),
# the output formats, and the options these models refuse.  Skipped while the
# mlx-stt binary does not list the family (its object must be linked in).

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
  export STT="$PWD/${MT_BUILD:-build}/bin/mlx-stt"
  export D="$PWD/tests/data/wav2vec2"
  export WAV="$PWD/tests/data/audio/speech_s16_mono_16k.wav"
  export TD="$BATS_FILE_TMPDIR"
}

setup() {
  "$STT" --list-models 2>/dev/null | grep -q '^wav2vec2 ' || skip "mlx-stt does not list the wav2vec2 family"
}

@test "the transcript is the golden text (float, 4-bit, hubert)" {
  for m in w2v-base w2v-stable w2v-base-q4 hubert; do
    want=$(jq -r '.cases[0].text' "$D/$m/golden/meta.json")
    run -0 "$STT" -t 2 -m "$D/$m" "$WAV"
    [ "$output" = "$want" ]
  done
}

@test "json: one segment over the clip, words at the CTC offsets" {
  run -0 "$STT" -t 2 -m "$D/w2v-base" --word-timestamps -f json -o "$TD/j" "$WAV"
  f="$TD/j/speech_s16_mono_16k.json"
  [ "$(jq '.segments | length' "$f")" = 1 ]
  [ "$(jq '.segments[0].end' "$f")" = 1.3 ]
  [ "$(jq -c '[.segments[0].words[] | [(.word | ltrimstr(" ")), .start, .end]]' "$f")" = \
    "$(jq -c '[.cases[0].words[] | [.word, .start, .end]]' "$D/w2v-base/golden/meta.json")" ]
}

@test "srt with word timestamps joins the words with spaces" {
  run -0 "$STT" -t 2 -m "$D/w2v-base" --word-timestamps -f srt -o "$TD/s" "$WAV"
  want=$(jq -r '.cases[0].text' "$D/w2v-base/golden/meta.json")
  grep -qxF -- "$want" "$TD/s/speech_s16_mono_16k.srt"
}

@test "a language or translate is refused with one line" {
  run -2 "$STT" -t 2 -m "$D/hubert" --language fr "$WAV"
  [ "${#lines[@]}" -eq 1 ]
  run "$STT" -t 2 -m "$D/hubert" --task translate "$WAV"
  [ "$status" -ne 0 ]
}
