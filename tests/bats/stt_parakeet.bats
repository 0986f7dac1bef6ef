#!/usr/bin/env bats
# mlx-stt on the tiny random Parakeet folders (tests/data/stt/parakeet: TDT,
# 4-bit TDT, RNN-T without a model_type, CTC): text and sentence segments of
# mlx-audio's generate() on the same clip (golden/*.json.zst,
# tests/gen/gen_stt_parakeet.py), words on the SentencePiece word starts, and
# the options Parakeet refuses.  Features, encoder and token ids are checked in
# tests/unit/test_stt_parakeet.c.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
  export STT="$PWD/${MT_BUILD:-build}/bin/mlx-stt"
  export D="$PWD/tests/data/stt/parakeet"
  export TD="$BATS_FILE_TMPDIR"
}

golden() { zstd -dcq "$D/$1/golden/$2.json.zst"; }

@test "parakeet: text and sentence times equal mlx-audio's (TDT, 4-bit TDT, RNN-T, CTC; speech and noise)" {
  for m in tdt tdt-q4 rnnt ctc; do
    for c in speech noise; do
      run -0 "$STT" -q -t 2 -m "$D/$m" -f json "$D/audio/$c.wav"
      g=$(golden $m $c)
      [ "$(jq -c .text <<< "$output")" = "$(jq -c .text <<< "$g")" ] || { echo "$m $c: $output"; false; }
      [ "$(jq -c '[.segments[] | [.text, .start, .end]]' <<< "$output")" = \
        "$(jq -c '[.sentences[] | [.text, .start, .end]]' <<< "$g")" ] || { echo "$m $c segments: $output"; false; }
    done
  done
}

@test "parakeet: word timestamps lie inside their segment, in order; srt and records work" {
  run -0 "$STT" -q -t 2 -m "$D/tdt" -f json --word-timestamps "$D/audio/speech.wav"
  jq -e '[.segments[] | . as $s | .words[] | (.start >= $s.start - 1e-9 and .end <= $s.end + 1e-9 and .end >= .start)] | all' <<< "$output"
  jq -e '[.segments[].words[].start] as $t | $t == ($t | sort) and ($t | length) > 0' <<< "$output"
  # the words spell the segment's text
  jq -e '.segments | all(([.words[].word] | join("")) == .text)' <<< "$output"
  run -0 "$STT" -q -t 2 -m "$D/ctc" -f srt "$D/audio/speech.wav"
  [[ "${lines[0]}" == 1 ]]
  [[ "${lines[1]}" == "00:00:00,000 --> "* ]]
  run -3 "$STT" -q -t 2 -m "$D/tdt" --reproducible <<EOF2
{"id": 1, "audio": "$D/audio/speech.wav"}
{"id": 2, "audio": "$D/audio/nothing.wav"}
EOF2
  [ "$(jq -c .text <<< "${lines[0]}")" = "$(golden tdt speech | jq -c .text)" ]
  jq -e '.error' <<< "${lines[1]}" > /dev/null
}

@test "parakeet: --language, translate and Whisper options are refused (exit 2, one line)" {
  for opt in "--language en" "--task translate" "--beam-size 2" "--condition-on-previous-text false"; do
    run --separate-stderr "$STT" -q -m "$D/tdt" $opt "$D/audio/speech.wav"
    [ "$status" -eq 2 ] || { echo "$opt: $status $stderr"; false; }
    [ "$(echo "$stderr" | wc -l)" -eq 1 ]
    [[ "$stderr" == *parakeet* ]]
  done
}

@test "parakeet: a config without model_type is claimed by its NeMo structure; a broken folder is one line" {
  jq -e 'has("model_type") | not' "$D/rnnt/config.json"
  mkdir -p "$TD/bad"
  cp "$D/tdt/model.safetensors" "$TD/bad/"
  jq '.encoder.d_model = 48' "$D/tdt/config.json" > "$TD/bad/config.json"
  run --separate-stderr "$STT" -q -m "$TD/bad" "$D/audio/speech.wav"
  [ "$status" -eq 1 ]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  [[ "$stderr" == *model.safetensors* ]] || [[ "$stderr" == *config.json* ]]
}
