#!/usr/bin/env bats
# mlx-tts on Kokoro folders as mlx-community publishes them (tests/data/kokoro-tiny-q4: sanitized
# names, 4-bit MLX-quantized style projections; tests/gen/gen_kokoro_quant_fixtures.py).  The model
# itself is checked against mlx-audio in tests/unit/test_kokoro_quant.c; here the program loads the
# folder, speaks a record and writes its WAV.

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
  export TTS="$PWD/${MT_BUILD:-build}/bin/mlx-tts"
  export Q4="$PWD/tests/data/kokoro-tiny-q4"
  export G="$Q4/goldens/goldens.safetensors"
  export TD="$BATS_FILE_TMPDIR"
}

# golden_samples CASE: sum(CASE.dur) * 600 from the goldens' safetensors (8-byte header length,
# JSON header, float32 data).
golden_samples() {
  local n hdr a b
  n=$(od -An -tu8 -N8 "$G" | tr -d ' ')
  hdr=$(tail -c +9 "$G" | head -c "$n")
  a=$(jq ".\"$1.dur\".data_offsets[0]" <<< "$hdr")
  b=$(jq ".\"$1.dur\".data_offsets[1]" <<< "$hdr")
  od -An -tf4 -v -j $((8 + n + a)) -N $((b - a)) "$G" | tr -s ' ' '\n' | awk 'NF { s += $1 } END { printf "%d\n", s * 600 }'
}

@test "the 4-bit folder: a record spoken, its WAV as long as mlx-audio's durations" {
  printf '%s\n' '{"id":"hello","phonemes":"həlˈoʊ wˈɜːld!"}' > "$TD/ph.jsonl"
  run --separate-stderr -0 "$TTS" -m "$Q4" --voice af_tiny -t 2 -o "$TD/q4" --reproducible < "$TD/ph.jsonl"
  [ "${#lines[@]}" -eq 1 ]
  [ -z "$stderr" ]
  s=$(golden_samples 0)
  [ "$s" -eq 29400 ]
  [ "$(jq -r .id <<< "$output")" = hello ]
  [ "$(jq -r .file <<< "$output")" = "$TD/q4/hello.wav" ]
  [ "$(jq -r .samples <<< "$output")" -eq "$s" ]
  [ "$(stat -c %s "$TD/q4/hello.wav")" -eq $((44 + 2 * s)) ]
  file "$TD/q4/hello.wav" | grep -q 'WAVE audio, Microsoft PCM, 16 bit, mono 24000 Hz'
}
