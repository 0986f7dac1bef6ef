#!/usr/bin/env bats
# mlx-stt on the tiny random Qwen3-ASR folders (tests/data/stt/qwen3_asr):
# the text, language and segments of mlx-audio's generate() for the same clip
# and options (golden/goldens.json, tests/gen/gen_stt_qwen3_asr.py), through
# --raw, files and records; the options Qwen3-ASR refuses.  The stages and
# token ids are checked in tests/unit/test_stt_qwen3_asr.c.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
  export STT="$PWD/${MT_BUILD:-build}/bin/mlx-stt"
  export D="$PWD/tests/data/stt/qwen3_asr"
  export G="$D/golden/goldens.json"
  export TD="$BATS_FILE_TMPDIR"
}

# golden MODEL NAME FIELD
golden() { jq -c --arg m "$1" --arg n "$2" ".cases[] | select(.model == \$m and .name == \$n) | $3" "$G"; }

# raw MODEL NAME [mlx-stt options]: the clip's PCM through --raw, json out
raw() {
  local m=$1 n=$2 dir
  shift 2
  [ "$m" = f32 ] && dir="$D/tiny" || dir="$D/tiny-4bit"
  zstd -dcq "$D/$(golden "$m" "$n" .clip | tr -d '"')" |
    "$STT" -q -t 2 -m "$dir" --raw --rate 16000 --format s16le -f json \
      --max-tokens "$(golden "$m" "$n" .max_tokens)" "$@"
}

@test "qwen3_asr: transcripts equal mlx-audio's generate() (float and 4-bit, speech, noise, a padded short clip)" {
  for m in f32 q4; do
    for n in speech fox noise short; do
      run -0 raw $m $n
      [ "$(jq -c .text <<< "$output")" = "$(golden $m $n .text)" ] || { echo "$m $n: $output"; false; }
    done
  done
}

@test "qwen3_asr: a language given is used, and reported" {
  run -0 raw f32 fox_en --language english
  [ "$(jq -c .text <<< "$output")" = "$(golden f32 fox_en .text)" ]
  [ "$(jq -r .language <<< "$output")" = english ]
}

@test "qwen3_asr: long audio in chunks (--chunk-length 4): six segments at the reference's cut points" {
  run -0 raw q4 long --chunk-length 4
  [ "$(jq -c .text <<< "$output")" = "$(golden q4 long .text)" ]
  [ "$(jq '.segments | length' <<< "$output")" = "$(golden q4 long '.segments | length')" ]
  [ "$(jq -c '[.segments[] | [.start, .end]]' <<< "$output")" = "$(golden q4 long '[.segments[] | [.start, .end]]')" ]
}

@test "qwen3_asr: records on stdin; a bad record does not stop the batch" {
  W="$PWD/tests/data/audio/speech_s16_mono_16k.wav"
  run -3 "$STT" -q -t 2 -m "$D/tiny" --max-tokens 24 --reproducible <<EOF2
{"id": "a", "audio": "$W"}
{"id": "b", "audio": "$TD/missing.wav"}
{"id": "c", "audio": "$W", "prompt": "hello"}
{"id": "d", "audio": "$W"}
EOF2
  [ "${#lines[@]}" -eq 4 ]
  [ "$(jq -c .text <<< "${lines[0]}")" = "$(golden f32 speech .text)" ]
  for k in 1 2; do jq -e .error <<< "${lines[$k]}" > /dev/null; done
  jq -r .error <<< "${lines[2]}" | grep -q 'Whisper option'
  [ "$(jq -c .text <<< "${lines[3]}")" = "$(golden f32 speech .text)" ]
}

@test "qwen3_asr: Whisper options, translate and word timestamps are refused (exit 2, one line)" {
  for opt in "--beam-size 5" "--temperature 0.5" "--initial-prompt hi" "--task translate" "--word-timestamps"; do
    run --separate-stderr "$STT" -q -m "$D/tiny" $opt "$PWD/tests/data/audio/speech_s16_mono_16k.wav"
    [ "$status" -eq 2 ] || { echo "$opt: $status $stderr"; false; }
    [ "$(echo "$stderr" | wc -l)" -eq 1 ]
    [[ "$stderr" == *qwen3_asr* ]]
  done
}
