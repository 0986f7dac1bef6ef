#!/usr/bin/env bats
# mlx-stt CLI on the tiny random Whisper fixtures (tests/data/whisper) and the
# audio files of tests/data/audio: every output format, -o DIR, error records
# and exit codes, --raw, --text, --resume, --vad, usage errors.  The writers
# themselves are checked byte for byte against openai-whisper in
# tests/unit/test_stt_output.c.

bats_require_minimum_version 1.5.0
load helpers

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

@test "--resume: an error line is retried and replaced; the file ends with one line per id, in input order" {
  T=$BATS_TEST_TMPDIR
  printf '{"id":"b","audio":"%s"}\n{"id":"a","audio":"%s"}\n' "$T/later.wav" "$WAV" > "$T/r.jsonl"
  run --separate-stderr stt -m "$EN" -q --resume "$T/ans.jsonl" < "$T/r.jsonl"
  [ "$status" -eq 3 ]
  [ "$(jq -c '[.id, has("error")]' "$T/ans.jsonl" | tr -d '\n')" = '["b",true]["a",false]' ]
  cp "$A/speech_22k.flac" "$T/later.wav"
  run --separate-stderr stt -m "$EN" -q --resume "$T/ans.jsonl" < "$T/r.jsonl"
  [ "$status" -eq 0 ]
  [ "$(jq -c '[.id, has("error")]' "$T/ans.jsonl" | tr -d '\n')" = '["b",false]["a",false]' ]
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

@test "--raw: input longer than --max-duration (default 2 h) is refused as soon as it passes the limit" {
  run --separate-stderr timeout 30 "$STT" -m "$EN" -q --raw --rate 16000 --format s16le --max-duration 5 < /dev/zero
  [ "$status" -eq 3 ]
  [ -z "$output" ]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  echo "$stderr" | grep -q '^mlx-stt: stdin: .*longer than 5 s of audio.*--max-duration'
  # the default limit (at 1 kHz: 14 MB of input before it is refused)
  run --separate-stderr timeout 60 "$STT" -m "$EN" -q --raw --rate 1000 --format s16le < /dev/zero
  [ "$status" -eq 3 ]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  echo "$stderr" | grep -q '^mlx-stt: stdin: .*longer than 2 h of audio at 1000 Hz'
  # under the limit: transcribed
  tail -c +45 "$WAV" > "$BATS_TEST_TMPDIR/s16.raw"
  run --separate-stderr "$STT" -m "$EN" -q --temperature-increment-on-fallback none --raw --rate 16000 \
      --format s16le --max-duration 2 -f jsonl < "$BATS_TEST_TMPDIR/s16.raw"
  [ "$status" -eq 0 ]
  diff <(echo "$output" | stable) "$TD/wav.jsonl"
}

@test "files: each finished answer is on the output, whole and flushed, before the next input is read" {
  T=$BATS_TEST_TMPDIR
  mkfifo "$T/never.wav"   # opening it blocks: the run stays on the second input until killed
  for f in jsonl srt; do
    "$STT" -m "$EN" -q -t 2 --temperature-increment-on-fallback none -f $f "$WAV" "$T/never.wav" > "$T/out.$f" 2> "$T/err.$f" &
    pid=$!
    for i in $(seq 150); do [ -s "$T/out.$f" ] && break; sleep 0.2; done
    sleep 0.2
    kill -TERM $pid
    wait_bounded "$pid"; st=$WAIT_STATUS
    [ "$st" -eq 143 ]
    [ -s "$T/out.$f" ]
    [ "$(tail -c 1 "$T/out.$f" | od -An -c | tr -d ' ')" = '\n' ]
  done
  [ "$(wc -l < "$T/out.jsonl")" -eq 1 ]
  diff <(stable < "$T/out.jsonl") "$TD/wav.jsonl"
  [ "$(jq -r .id "$T/out.jsonl")" = "$WAV" ]
  cmp "$T/out.srt" "$TD/all/speech_s16_mono_16k.srt"
}

@test "SIGINT: exit 130, finished answers kept for --resume; a closed stdout pipe: 141" {
  T=$BATS_TEST_TMPDIR
  mkfifo "$T/in"
  # env: SIGINT back to its default (background jobs of a non-interactive shell ignore it)
  env --default-signal=INT "$STT" -m "$EN" -q -t 2 --temperature-increment-on-fallback none \
      --resume "$T/ans.jsonl" < "$T/in" &
  pid=$!
  exec 8> "$T/in"
  printf '{"id":1,"audio":"%s"}\n' "$WAV" >&8   # the run waits for more input
  for i in $(seq 150); do [ -s "$T/ans.jsonl" ] && break; sleep 0.2; done
  kill -INT "$pid"
  wait_bounded "$pid"; st=$WAIT_STATUS
  exec 8>&-
  [ "$st" -eq 130 ]
  [ "$(jq -r .id "$T/ans.jsonl")" = 1 ]
  printf '{"id":1,"audio":"%s"}\n{"id":2,"audio":"%s"}\n' "$WAV" "$A/speech_22k.flac" > "$T/r.jsonl"
  run --separate-stderr stt -m "$EN" --resume "$T/ans.jsonl" < "$T/r.jsonl"
  [ "$status" -eq 0 ]
  echo "$stderr" | grep -q '1 answered before, 1 skipped, 1 run'
  [ "$(jq -r .id "$T/ans.jsonl" | tr '\n' ' ')" = "1 2 " ]
  set +e
  stt -m "$EN" -q -f jsonl "$WAV" "$WAV" "$WAV" | head -c 1 > /dev/null
  st=${PIPESTATUS[0]}
  set -e
  [ "$st" -eq 141 ]
}

@test "-o DIR: inputs that would write the same file are refused before any work (exit 2)" {
  T=$BATS_TEST_TMPDIR
  mkdir "$T/d1" "$T/d2"
  cp "$WAV" "$T/d1/rec.wav"; cp "$WAV" "$T/d2/rec.wav"; cp "$A/speech_22k.flac" "$T/d2/rec.flac"
  run --separate-stderr stt -m "$EN" -f srt -o "$T/out" "$T/d1/rec.wav" "$T/d2/rec.wav"
  [ "$status" -eq 2 ]
  [ "$stderr" = "mlx-stt: -o $T/out: '$T/d1/rec.wav' and '$T/d2/rec.wav' would both write $T/out/rec.srt" ]
  [ ! -e "$T/out" ]
  # before the model is even looked at; the same with other extensions, -f all, one path twice
  run --separate-stderr "$STT" -m "$T/no-model" -f all -o "$T/out" "$WAV" "$T/d1/rec.wav" "$T/d2/rec.flac"
  [ "$status" -eq 2 ]
  echo "$stderr" | grep -q "^mlx-stt: -o $T/out: '$T/d1/rec.wav' and '$T/d2/rec.flac' would both write $T/out/rec.json$"
  run --separate-stderr stt -m "$EN" -f txt -o "$T/out" "$WAV" "$WAV"
  [ "$status" -eq 2 ]
  # records on stdin: the second record of a name is an error record; the first one's file stays
  printf '{"id":1,"audio":"%s"}\n{"id":2,"audio":"%s"}\n' "$T/d1/rec.wav" "$T/d2/rec.flac" |
    { run --separate-stderr stt -m "$EN" -f srt -o "$T/out"; [ "$status" -eq 3 ];
      [ "$(echo "$output" | jq -c '[.id, has("error")]' | tr -d '\n')" = '[1,false][2,true]' ];
      echo "$output" | sed -n 2p | jq -e '.error | test("^line 2: .*rec.srt was already written")'; }
  cmp "$T/out/rec.srt" "$TD/all/speech_s16_mono_16k.srt"
}

@test "-o naming an existing file (or a path through one) is a usage error before any work" {
  T=$BATS_TEST_TMPDIR
  echo keep > "$T/file"
  for o in "$T/file" "$T/file/sub"; do
    run --separate-stderr stt -m "$EN" -f srt -o "$o" "$WAV" "$A/speech_22k.flac"
    [ "$status" -eq 2 ]
    [ -z "$output" ]
    [ "$(echo "$stderr" | wc -l)" -eq 1 ]
    echo "$stderr" | grep -q "^mlx-stt: -o $o: "
    printf '{"audio":"%s"}\n' "$WAV" | { run --separate-stderr stt -m "$EN" -f srt -o "$o"; [ "$status" -eq 2 ]; }
  done
  [ "$(cat "$T/file")" = keep ]
}

@test "file names that are not UTF-8: one record each, with an id (invalid bytes as U+FFFD)" {
  T=$BATS_TEST_TMPDIR
  good=$(printf 'caf\351.wav'); gone=$(printf 'gone\377.wav')
  cp "$WAV" "$T/$good"
  run --separate-stderr stt -m "$EN" -q -f jsonl "$T/$good" "$T/$gone" "$WAV"
  [ "$status" -eq 3 ]
  [ "${#lines[@]}" -eq 3 ]
  [ "$(echo "${lines[0]}" | jq -r .id)" = "$T/$(printf 'caf\357\277\275.wav')" ]
  diff <(echo "${lines[0]}" | stable) "$TD/wav.jsonl"
  [ "$(echo "${lines[1]}" | jq -r .id)" = "$T/$(printf 'gone\357\277\275.wav')" ]
  echo "${lines[1]}" | jq -e '.error | test("no such file")'
  [ "$(echo "${lines[2]}" | jq -r .id)" = "$WAV" ]
  # -o keeps the name's bytes for the file itself
  run --separate-stderr stt -m "$EN" -q -f txt -o "$T/o" "$T/$good"
  [ "$status" -eq 0 ]
  [ -f "$T/o/$(printf 'caf\351.txt')" ]
}

@test "on a terminal: progress within each file on its own line; error lines never share it" {
  command -v script > /dev/null || skip "no script(1)"
  T=$BATS_TEST_TMPDIR
  # script(1) gives the program a terminal; stdout goes to a file, stderr is the terminal
  script -qec "'$STT' -m '$EN' -t 2 --temperature-increment-on-fallback none -f jsonl '$WAV' '$T/nope.wav' '$A/speech_22k.flac' > '$T/out.jsonl'" "$T/tty.log" > /dev/null && st=0 || st=$?
  [ "$st" -eq 3 ]
  [ "$(wc -l < "$T/out.jsonl")" -eq 3 ]
  # what the terminal shows: per line, the text after the last carriage return
  sed 's/\r$//' "$T/tty.log" | awk -F'\r' '{ print $NF }' | sed 's/\x1b\[K//g' > "$T/screen"
  cat "$T/screen"
  grep -a -q "speech_s16_mono_16k.wav 0:0[01] / 0:01" "$T/tty.log"
  grep -a -q "3/3 speech_22k.flac 0:0[01] / 0:01" "$T/tty.log"
  grep -a -qx "mlx-stt: $T/nope.wav: no such file" "$T/screen"
  grep -a -q "^3/3 files (1 failed)" "$T/screen"
  # the last line drawn is ended by a newline
  grep -a -q $'\r3/3 files (1 failed)[^\r]*\033\\[K\r$' "$T/tty.log"
  # records: the loop's own lines start clean too
  printf '{"id":1,"audio":"%s"}\n{"id":2,"audio":"%s"}\n' "$WAV" "$T/nope.wav" > "$T/r.jsonl"
  script -qec "'$STT' -m '$EN' -t 2 --temperature-increment-on-fallback none < '$T/r.jsonl' > '$T/out2.jsonl'" "$T/tty2.log" > /dev/null || true
  grep -a -q "speech_s16_mono_16k.wav 0:0[01] / 0:01" "$T/tty2.log"
  sed 's/\r$//' "$T/tty2.log" | awk -F'\r' '{ print $NF }' | sed 's/\x1b\[K//g' > "$T/screen2"
  grep -a -qx "mlx-stt: line 2: $T/nope.wav: no such file" "$T/screen2"
  # -q: nothing drawn
  script -qec "'$STT' -m '$EN' -q -t 2 --temperature-increment-on-fallback none '$WAV' > /dev/null" "$T/tty3.log" > /dev/null
  ! grep -a -q " / 0:01" "$T/tty3.log"
}

@test "the man page names every option of --help and the exit statuses" {
  run "$STT" --help
  for opt in $(echo "$output" | grep -o -- '--[a-z0-9-]*' | sort -u); do
    grep -q -- "$(echo "$opt" | sed 's/-/\\\\-/g')" man/mlx-stt.1 || { echo "man page lacks $opt"; false; }
  done
  for st in 0 1 2 3 130 141; do sed -n '/^\.SH EXIT STATUS/,/^\.SH ENV/p' man/mlx-stt.1 | grep -qx "\.B $st"; done
  grep -q 'U+FFFD' man/mlx-stt.1
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
              "--bogus $WAV" "--max-duration 10 $WAV" "--raw --rate 16000 --format s16le --max-duration 0"; do
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

@test "a folder of another model type: one line naming it and the types mlx-stt runs, exit 1" {
  mkdir -p "$TD/llm"
  echo '{"model_type": "llama", "hidden_size": 8}' > "$TD/llm/config.json"
  run --separate-stderr "$STT" -m "$TD/llm" "$WAV"
  [ "$status" -eq 1 ]
  [ "$(echo "$stderr" | wc -l)" -eq 1 ]
  echo "$stderr" | grep -q "model_type 'llama' is not a speech recogniser mlx-stt runs (it runs: whisper"
  echo '{"hidden_size": 8}' > "$TD/llm/config.json"
  run --separate-stderr "$STT" -m "$TD/llm" "$WAV"
  [ "$status" -eq 1 ]
  echo "$stderr" | grep -q "names no model_type and is not a Whisper config"
  run "$STT" --list-models
  [ "$status" -eq 0 ]
  echo "$output" | grep -q '^whisper '
}
