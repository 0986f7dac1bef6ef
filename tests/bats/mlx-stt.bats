#!/usr/bin/env bats
# mlx-stt CLI on the tiny random Whisper fixtures (tests/data/whisper) and the
# audio files of tests/data/audio: every output format, -o DIR, error records
# and exit codes, --raw, --text, --resume, --vad, usage errors.  The writers
# themselves are checked byte for byte against openai-whisper in
# tests/unit/test_stt_output.c.

bats_require_minimum_version 1.5.0

setup_file() {
  export STT="$PWD/${MT_BUILD:-build}/bin/mlx-stt"
  export PCM="$PWD/${MT_BUILD:-build}/tools/stt_pcm"
  export TD="$BATS_FILE_TMPDIR"
  export A="$PWD/tests/data/audio"
  export EN="$PWD/tests/data/whisper/tiny-en-hf"
  export ML="$PWD/tests/data/whisper/tiny-ml-mlx"
  export Q4="$PWD/tests/data/whisper/tiny-ml-mlx-q4"
  export WAV="$A/speech_s16_mono_16k.wav"
  # the same transcript without the timing field
  "$STT" --temperature-increment-on-fallback none -t 2 -m "$EN" -q -f jsonl "$WAV" | jq -c 'del(.rtf, .id)' > "$TD/wav.jsonl"
  # every file format of the same input (the reference's --output_format all)
  "$STT" --temperature-increment-on-fallback none -t 2 -m "$EN" -q -f all -o "$TD/all" "$WAV"
  # model runs are slow under the sanitizers: fewer reference cases there
  SAN=0
  grep -q __asan_init "$STT" && SAN=1
  export SAN
}

# Decoding at temperature 0 only: the random models fail every threshold, and
# the reference's fallback (5 samples at each of 5 more temperatures) would
# make each run ~20x slower.
stt() { "$STT" --temperature-increment-on-fallback none -t 2 "$@"; }

# Strip the fields that vary between runs.
stable() { jq -c 'del(.rtf) | del(.id)'; }

@test "txt, srt, vtt, tsv, json and jsonl describe the same segments" {
  n=$(jq '.segments | length' "$TD/wav.jsonl")
  [ "$(jq -r .language "$TD/wav.jsonl")" = en ]
  jq -e '.duration == 1.3' "$TD/wav.jsonl"
  [ "$(ls "$TD/all" | tr '\n' ' ')" = "speech_s16_mono_16k.json speech_s16_mono_16k.srt speech_s16_mono_16k.tsv speech_s16_mono_16k.txt speech_s16_mono_16k.vtt " ]
  f="$TD/all/speech_s16_mono_16k"
  [ "$(grep -c '' "$f.txt")" -eq "$n" ]
  [ "$(grep -c -- ' --> ' "$f.srt")" -eq "$n" ]
  [ "$(grep -- ' --> ' "$f.srt" | grep -Ecvx '[0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3} --> [0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{3}')" -eq 0 ]
  [ "$n" -eq 0 ] || [ "$(head -n 1 "$f.srt")" = 1 ]
  [ "$(head -n 1 "$f.vtt")" = WEBVTT ]
  [ "$(grep -c -- ' --> ' "$f.vtt")" -eq "$n" ]
  [ "$(head -n 1 "$f.tsv")" = "$(printf 'start\tend\ttext')" ]
  # integer milliseconds = round(1000 * start)
  [ "$n" -eq 0 ] || [ "$(sed -n 2p "$f.tsv" | cut -f1)" = "$(jq '.segments[0].start * 1000 | round' "$TD/wav.jsonl")" ]
  # openai-whisper's json: text, segments, language; same content as the jsonl record
  # (floats: json has Python's repr, jsonl 16 significant digits)
  [ "$(jq -c 'keys_unsorted' "$f.json")" = '["text","segments","language"]' ]
  sel='[.segments[] | {id, seek, start, "end": .end, text, tokens, temperature}]'
  jq -c "$sel" "$f.json" > "$TD/a.json"
  jq -c "$sel" "$TD/wav.jsonl" > "$TD/b.json"
  [ "$(jq length "$TD/b.json")" -eq "$n" ]
  diff "$TD/a.json" "$TD/b.json"
  jq -e --slurpfile r "$TD/wav.jsonl" \
    '[.segments, $r[0].segments] | transpose | all((.[0].avg_logprob - .[1].avg_logprob) | fabs < 1e-9)' "$f.json"
  [ "$(jq -r .text "$f.json")" = "$(jq -r .text "$TD/wav.jsonl")" ]
  # to stdout: the same bytes (json gets a newline)
  stt -m "$EN" -q -f srt "$WAV" > "$TD/stdout.srt"
  cmp "$TD/stdout.srt" "$f.srt"
}

@test "word timestamps: words in json, subtitles shaped by the word options" {
  run --separate-stderr stt -m "$EN" -q --word-timestamps --max-words-per-line 1 --highlight-words -f all -o "$TD/w" "$WAV"
  [ "$status" -eq 0 ]
  f="$TD/w/speech_s16_mono_16k"
  jq -e '.segments | all(has("words"))' "$f.json"
  nw=$(jq '[.segments[].words | length] | add // 0' "$f.json")
  # one word per line, and each chunk starts a cue: one cue per word, underlined
  [ "$(grep -c -- ' --> ' "$f.srt")" -eq "$nw" ]
  [ "$(grep -c '^<u>.*</u>$' "$f.srt")" -eq "$nw" ]
  [ "$(grep -c '^<u>.*</u>$' "$f.vtt")" -eq "$nw" ]
}

@test "the jsonl record: id, text, language, segments, duration, rtf" {
  run --separate-stderr stt -m "$EN" -q -f jsonl "$A/speech_22k.flac"
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 1 ]
  [ "$(echo "${lines[0]}" | jq -c 'keys_unsorted')" = '["id","text","language","segments","duration","rtf"]' ]
  [ "$(echo "${lines[0]}" | jq -r .id)" = "$A/speech_22k.flac" ]
  echo "${lines[0]}" | jq -e '.rtf > 0 and .duration == 1.3'
  echo "${lines[0]}" | jq -e '.segments | all(has("id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"))'
}

@test "-o DIR writes one file per input, named after it, equal to the stdout transcript" {
  run --separate-stderr stt -m "$EN" -q -f srt -o "$TD/out" "$WAV" "$A/speech_16k.mp3"
  [ "$status" -eq 0 ]
  [ -z "$output" ]
  # no temporary files left
  [ "$(ls -A "$TD/out" | tr '\n' ' ')" = "speech_16k.srt speech_s16_mono_16k.srt " ]
  diff "$TD/out/speech_s16_mono_16k.srt" "$TD/all/speech_s16_mono_16k.srt"
  # an existing file is replaced
  echo stale > "$TD/out2.srt"; mkdir -p "$TD/o2"; cp "$TD/out2.srt" "$TD/o2/speech_s16_mono_16k.srt"
  stt -m "$EN" -q -f srt -o "$TD/o2" "$WAV"
  diff "$TD/o2/speech_s16_mono_16k.srt" "$TD/all/speech_s16_mono_16k.srt"
}

@test "a corrupt, empty or missing file among good ones: reported, skipped, exit 3" {
  run --separate-stderr stt -m "$EN" -f txt -o "$TD/mixed" "$A/corrupt.flac" "$WAV" "$TD/nope.wav" "$A/empty.wav"
  [ "$status" -eq 3 ]
  [ "$(echo "$stderr" | wc -l)" -eq 3 ]
  echo "$stderr" | grep -q "^mlx-stt: .*corrupt.flac"
  echo "$stderr" | grep -q "^mlx-stt: .*nope.wav"
  echo "$stderr" | grep -q "^mlx-stt: .*empty.wav"
  [ "$(ls -A "$TD/mixed" | tr '\n' ' ')" = "speech_s16_mono_16k.txt " ]
  # jsonl: an error record per bad file, in order
  run --separate-stderr stt -m "$EN" -q -f jsonl "$A/truncated.wav" "$WAV" "$A/text.wav"
  [ "$status" -eq 3 ]
  [ "$(echo "$output" | jq -c '[.id, has("error")]' | tr -d '\n')" = "[\"$A/truncated.wav\",true][\"$WAV\",false][\"$A/text.wav\",true]" ]
}

@test "records on stdin: {id, audio}, error records, --text, exit 3" {
  printf '{"id":"a","audio":"%s"}\n{"id":"b","audio":"%s/corrupt.flac"}\n{"id":"c"}\n\n{"id":"d","audio":"%s","task":"transcribe","prompt":"Hello."}\n' \
    "$WAV" "$A" "$A/speech_22k.flac" > "$TD/recs.jsonl"
  run --separate-stderr stt -m "$EN" < "$TD/recs.jsonl"
  [ "$status" -eq 3 ]
  [ "$(echo "$output" | jq -r '.id' | tr '\n' ' ')" = "a b c d " ]
  [ "$(echo "$output" | jq -c 'has("error")' | tr '\n' ' ')" = "false true true false " ]
  echo "$output" | sed -n 2p | jq -e '.error | test("^line 2: .*corrupt.flac")'
  diff <(echo "$output" | head -n 1 | stable) "$TD/wav.jsonl"
  [ "$(echo "$stderr" | grep -c '^mlx-stt: line')" -eq 2 ]
  # --text: one path per line, ids are line numbers
  printf '%s\n%s\n' "$WAV" "$TD/missing.wav" | { run --separate-stderr stt -m "$EN" -q --text; [ "$status" -eq 3 ]; \
    [ "$(echo "$output" | jq -c '[.id, has("error")]' | tr -d '\n')" = '[1,false][2,true]' ]; }
}

@test "--resume skips what is answered and appends the rest" {
  printf '{"id":1,"audio":"%s"}\n{"id":2,"audio":"%s"}\n' "$WAV" "$A/speech_22k.ogg" > "$TD/r.jsonl"
  head -n 1 "$TD/r.jsonl" | stt -m "$EN" -q > "$TD/ans.jsonl"
  run --separate-stderr stt -m "$EN" --resume "$TD/ans.jsonl" < "$TD/r.jsonl"
  [ "$status" -eq 0 ]
  [ "$(jq -r .id "$TD/ans.jsonl" | tr '\n' ' ')" = "1 2 " ]
  echo "$stderr" | grep -q '1 answered before, 1 skipped'
}

@test "--raw s16le and f32le give the file's transcript" {
  tail -c +45 "$WAV" > "$TD/s16.raw"
  run --separate-stderr stt -m "$EN" -q --raw --rate 16000 --format s16le -f jsonl < "$TD/s16.raw"
  [ "$status" -eq 0 ]
  diff <(echo "$output" | stable) "$TD/wav.jsonl"
  "$PCM" f32 < "$TD/s16.raw" > "$TD/f32.raw"
  run --separate-stderr stt -m "$EN" -q --raw --rate 16000 --format f32le -f jsonl < "$TD/f32.raw"
  [ "$status" -eq 0 ]
  diff <(echo "$output" | stable) "$TD/wav.jsonl"
  # stereo interleaved at 8 kHz is accepted; a partial frame is an input error (3)
  run --separate-stderr stt -m "$EN" -q --raw --rate 8000 --channels 2 --format s16le < "$TD/s16.raw"
  [ "$status" -eq 0 ]
  printf 'abc' | { run --separate-stderr stt -m "$EN" -q --raw --rate 16000 --format s16le; [ "$status" -eq 3 ]; \
    echo "$stderr" | grep -q '^mlx-stt: stdin: '; }
}

@test "--vad: silence gives an empty transcript; speech between silences is transcribed" {
  "$PCM" silence 3 16000 > "$TD/silence.wav"
  run --separate-stderr stt -m "$EN" -q --vad -f jsonl "$TD/silence.wav"
  [ "$status" -eq 0 ]
  echo "$output" | jq -e '.text == "" and (.segments | length) == 0 and .duration == 3'
  tail -c +45 "$WAV" | "$PCM" pad 5 > "$TD/padded.raw"
  run --separate-stderr stt -m "$EN" -q --vad --raw --rate 16000 --format s16le -f jsonl < "$TD/padded.raw"
  [ "$status" -eq 0 ]
  echo "$output" | jq -e '.duration > 11'
}

@test "multilingual model: --language and --task translate; quantized model runs" {
  run --separate-stderr stt -m "$ML" -q --language de --task translate -f jsonl "$WAV"
  [ "$status" -eq 0 ]
  echo "$output" | jq -e '.language == "de"'
  run --separate-stderr stt -m "$ML" -q -f jsonl "$WAV"
  [ "$status" -eq 0 ]
  echo "$output" | jq -e '.language | length > 0'
  run --separate-stderr stt -m "$Q4" -q --language en -f txt "$WAV"
  [ "$status" -eq 0 ]
}

# Run the CLI on gen_stt_goldens.py's synthetic audio with the reference's
# greedy settings (temperature 0, no fallback, no thresholds) and compare text,
# language, segments (ids, seeks, times, tokens) and words with openai-whisper's.
check_golden() {
  local name=$1 model=$2
  shift 2
  run --separate-stderr "$STT" -m "$model" -t 2 -q -f jsonl --temperature 0 --temperature-increment-on-fallback none \
      --compression-ratio-threshold none --logprob-threshold none --no-speech-threshold none "$@" "$TD/synth.wav"
  echo "$name: $status $stderr"
  [ "$status" -eq 0 ]
  # times to the microsecond (jsonl floats have 16 significant digits)
  local sel='def us: . * 1e6 | round;
             {text, language, segments: [.segments[] | {id, seek, start: (.start | us), "end": (.end | us), text,
              tokens, temperature, words: ((.words // []) | map({word, start: (.start | us), "end": (.end | us)}))}]}'
  echo "$output" | jq -c "$sel" > "$TD/got.json"
  jq -c --arg n "$name" ".cases[] | select(.name == \$n) | $sel" "$GOLD" > "$TD/want.json"
  [ -s "$TD/want.json" ]
  diff "$TD/got.json" "$TD/want.json"
}

@test "transcripts of the random models match openai-whisper (options reach the decoder)" {
  [ -f tests/data/stt/transcribe_golden.json.zst ] || skip "no tests/data/stt/transcribe_golden.json.zst"
  export GOLD="$TD/transcribe_golden.json"
  zstd -q -d -f tests/data/stt/transcribe_golden.json.zst -o "$GOLD"
  "$PCM" synth 45 12345 > "$TD/synth.wav"
  # the cases of the golden that exercise distinct options (those it has)
  ran=0
  # (distinct options: beam + patience, prompt, clips, language + task, words; greedy otherwise)
  cases="beam3_pat2 prompt clips translate en_words greedy_ts en_greedy"
  [ "$SAN" = 0 ] || cases="en_words"
  for c in $cases; do
    [ "$ran" -lt 5 ] || break
    jq -e --arg n $c 'any(.cases[]; .name == $n)' "$GOLD" > /dev/null || continue
    model=$(jq -r --arg n $c '.cases[] | select(.name == $n) | .model' "$GOLD")
    # transcribe() keyword arguments -> command-line options (an unknown one fails)
    args=$(jq -r --arg n $c '.cases[] | select(.name == $n) | .opts | to_entries[] |
      if .key == "language" then "--language", .value
      elif .key == "task" then "--task", .value
      elif .key == "without_timestamps" and .value then "--without-timestamps"
      elif .key == "word_timestamps" and .value then "--word-timestamps"
      elif .key == "beam_size" then "--beam-size", .value
      elif .key == "patience" then "--patience", .value
      elif .key == "length_penalty" then "--length-penalty", .value
      elif .key == "condition_on_previous_text" then "--condition-on-previous-text", .value
      elif .key == "clip_timestamps" then "--clip-timestamps", .value
      elif .key == "initial_prompt" then "--initial-prompt", .value
      else error("unmapped option \(.key)") end' "$GOLD" | tr '\n' '\036')
    IFS=$'\036' read -r -a argv <<< "$args"
    check_golden $c "$PWD/tests/data/whisper/$model" "${argv[@]}"
    ran=$((ran + 1))
  done
  [ "$ran" -ge 4 ] || { [ "$SAN" = 1 ] && [ "$ran" -eq 1 ]; }
}

@test "usage errors: one line, exit 2" {
  for args in "-f docx $WAV" "--raw $WAV" "--raw --rate 16000" "--raw --rate 16000 --format s24le" \
              "--rate 16000 $WAV" "--task summarize $WAV" "--temperature hot $WAV" "--max-line-width 20 $WAV" \
              "--vad --clip-timestamps 0,5 $WAV" "--clip-timestamps 5,x $WAV" "--resume x.jsonl $WAV" \
              "-f srt" "-o $TD/x -f jsonl" "--condition-on-previous-text maybe $WAV" "--beam-size 0 $WAV" \
              "--language klingon $WAV" "--task translate $WAV" "--temperature-increment-on-fallback 0.01 $WAV" \
              "--bogus $WAV"; do
    run --separate-stderr "$STT" -m "$EN" $args < /dev/null
    echo "$args -> $status: $stderr"
    [ "$status" -eq 2 ]
    [ -z "$output" ]
    [ "$(echo "$stderr" | grep -cv "^Try 'mlx-stt --help'")" -eq 1 ]
    echo "$stderr" | head -n 1 | grep -q '^mlx-stt: '
  done
  run --separate-stderr "$STT" "$WAV"
  [ "$status" -eq 2 ]
  [ "$stderr" = "mlx-stt: no model: give -m MODEL (see --help)" ]
}

@test "a missing model is fatal (exit 1); --help and --version" {
  run --separate-stderr "$STT" -m "$TD/no-model" "$WAV"
  [ "$status" -eq 1 ]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  run "$STT" --help
  [ "$status" -eq 0 ]
  echo "$output" | grep -q -- '--word-timestamps'
  run "$STT" --version
  [ "$output" = "mlx-stt 0.1.0" ]
}
