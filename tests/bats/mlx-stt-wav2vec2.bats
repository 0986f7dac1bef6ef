#!/usr/bin/env bats
# mlx-stt on the tiny Wav2Vec2 / HuBERT CTC folders (tests/data/stt/wav2vec2): the
# transcript and word timestamps of the goldens (tests/gen/gen_stt_wav2vec2.py),
# the output formats, and the options these models refuse.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
  export STT="$PWD/${MT_BUILD:-build}/bin/mlx-stt"
  export D="$PWD/tests/data/stt/wav2vec2"
  export WAV="$PWD/tests/data/audio/speech_s16_mono_16k.wav"
  export TD="$BATS_FILE_TMPDIR"
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

@test "--clip-timestamps: each region transcribed alone, its times on the file's clock" {
  W="$PWD/tests/data/audio/speech_s16_mono_16k.wav"
  M="$PWD/tests/data/stt/wav2vec2/w2v-base"
  run -0 "$STT" -q -m "$M" -f json --word-timestamps --clip-timestamps 0.2,0.9 "$W"
  clip=$output
  # the same 0.7 s as raw PCM (the WAV's 44-byte header, then 0.2 s = 6400 bytes in)
  run -0 bash -c "tail -c +6445 '$W' | head -c 22400 | '$STT' -q -m '$M' --raw --rate 16000 --format s16le -f json --word-timestamps"
  raw=$output
  [ "$(jq .text <<< "$clip")" = "$(jq .text <<< "$raw")" ]
  jq -e --argjson r "$raw" '.segments[0].start == 0.2 and
      ([.segments[0].words[].start] | length) == ([$r.segments[0].words[].start] | length) and
      ([.segments[0].words[].start] | all(. >= 0.2)) and
      (.segments[0].words[0].start - 0.2 - $r.segments[0].words[0].start | fabs) < 1e-9' <<< "$clip"
}
