#!/usr/bin/env bats
# mlx-quant convert and mlx-gen --score on the real-weight models of `make real-models`
# (local-models/, never committed) against goldens made with mlx-lm by
# tests/gen/gen_real_convert_goldens.py (tests/data/real/<name>/convert.json):
#   - the imported folder dequantized to float32, then converted to 4-bit g64, 8-bit g64
#     and mixed_3_6 (float32 scales and norms: mlx's CPU kernels are slow at 16 bits, see
#     the goldens script): every file mlx-quant writes has the bytes mlx_lm.convert writes;
#   - the log-probability of every token of tests/data/real/ppl_text.jsonl under each form
#     (mlx-gen --score --numerics mlx) equals mlx-lm's, and mlx-gen's default float32
#     path gives the same perplexity within 1%.
# Each test says "skipped: run make real-models" when its model is not there.

load helpers

# per-token logprob difference allowed with --numerics mlx (float rounding of the sums)
TOL=0.01

setup_file() {
  export MQ="$PWD/${MT_BUILD:-build}/bin/mlx-quant"
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
  export TD="$BATS_FILE_TMPDIR"
}

dir_of() { case $1 in smollm2) echo SmolLM2-135M-Instruct ;; gemma3) echo gemma-3-270m ;; esac; }
gguf_of() { case $1 in smollm2) echo SmolLM2-135M-Instruct.Q4_1.gguf ;; gemma3) echo gemma-3-270m-q4_k_m.gguf ;; esac; }

# need NAME: skip unless the imported folder and its GGUF (the one of the goldens) are there
need() {
  [ -d "local-models/$(dir_of "$1")" ] && [ -f "local-models/gguf/$(gguf_of "$1")" ] || skip "skipped: run make real-models"
  G="tests/data/real/$1/convert.json"
  [ -f "$G" ]
  [ "$(sha256sum "local-models/gguf/$(gguf_of "$1")" | cut -d' ' -f1)" = "$(jq -r .gguf_sha256 "$G")" ]
}

# form NAME FORM: the folder of that form in $TD (made once: float32 by dequantizing the
# imported folder, the others by converting float32 as the golden's "convert" says)
form() {
  local name=$1 f=$2 d="$TD/$1-$2"
  if [ "$f" = imported ]; then echo "local-models/$(dir_of "$name")"; return; fi
  if [ ! -d "$d" ]; then
    if [ "$f" = float32 ]; then
      "$MQ" dequantize -m "local-models/$(dir_of "$name")" -o "$d" --dtype float32 --quiet >&2
    else
      local src
      src=$(form "$name" float32)
      # shellcheck disable=SC2046
      "$MQ" convert -m "$src" -o "$d" --quiet $(jq -r --arg f "$f" '.forms[$f].convert | join(" ")' "$G" |
        sed 's/--q-bits/--bits/; s/--q-group-size/--group-size/') >&2
    fi
  fi
  echo "$d"
}

# same_bytes NAME FORM: every file of the golden has mlx_lm.convert's sha256
same_bytes() {
  local d
  d=$(form "$1" "$2")
  jq -r --arg f "$2" '.forms[$f].files | to_entries[] | "\(.value)  \(.key)"' "$G" > "$TD/$1-$2.sha"
  [ "$(wc -l < "$TD/$1-$2.sha")" -ge 2 ]
  (cd "$d" && sha256sum -c --quiet "$TD/$1-$2.sha")
}

# score NAME FORM [mlx-gen options]: the records of ppl_text.jsonl scored -> $TD/score.out
score() {
  local d
  d=$(form "$1" "$2")
  shift 2
  "$GEN" -m "$d" --score -q "$@" < tests/data/real/ppl_text.jsonl > "$TD/score.out"
  [ "$(wc -l < "$TD/score.out")" -eq 3 ]
  [ "$(jq -c .ids "$TD/score.out" | jq -s -c .)" = "$(jq -c .ids "$G")" ]
}

# same_logprobs NAME FORM: mlx-gen --score --numerics mlx gives mlx-lm's logprobs
same_logprobs() {
  score "$1" "$2" --numerics mlx
  worst=$(jq -s --slurpfile g "$G" --arg f "$2" \
    '[range(3) as $r | .[$r].logprobs as $a | $g[0].forms[$f].logprobs[$r] as $b
      | range($b | length) | ($a[.] - $b[.]) | fabs] | max' "$TD/score.out")
  echo "$1 $2: worst per-token difference $worst"
  awk -v w="$worst" -v t="$TOL" 'BEGIN { exit !(w <= t) }'
}

# same_ppl NAME FORM: the default float32 path's perplexity within 1% of mlx-lm's
same_ppl() {
  score "$1" "$2"
  ours=$(jq -s '[.[].sum] | add' "$TD/score.out")
  n=$(jq -s '[.[].logprobs | length] | add' "$TD/score.out")
  want=$(jq --arg f "$2" '.forms[$f].ppl' "$G")
  echo "$1 $2: ppl $(awk -v s="$ours" -v n="$n" 'BEGIN { print exp(-s / n) }'), mlx-lm $want"
  awk -v s="$ours" -v n="$n" -v w="$want" 'BEGIN { p = exp(-s / n); d = p / w - 1; exit !(d < 0.01 && d > -0.01) }'
}

@test "SmolLM2-135M-Instruct: dequantize to float32 writes mlx_lm.convert's bytes" {
  need smollm2
  same_bytes smollm2 float32
}

@test "SmolLM2-135M-Instruct: convert to 4-bit g64 writes mlx_lm.convert's bytes" {
  need smollm2
  same_bytes smollm2 q4g64
}

@test "SmolLM2-135M-Instruct: convert to 8-bit g64 writes mlx_lm.convert's bytes" {
  need smollm2
  same_bytes smollm2 q8g64
}

@test "SmolLM2-135M-Instruct: convert to mixed_3_6 writes mlx_lm.convert's bytes" {
  need smollm2
  same_bytes smollm2 mixed_3_6
}

@test "SmolLM2-135M-Instruct: --score --numerics mlx on the imported form gives mlx-lm's logprobs" {
  need smollm2
  same_logprobs smollm2 imported
}

@test "SmolLM2-135M-Instruct: --score --numerics mlx on the float32 form gives mlx-lm's logprobs" {
  need smollm2
  same_logprobs smollm2 float32
}

@test "SmolLM2-135M-Instruct: --score --numerics mlx on the q4g64 form gives mlx-lm's logprobs" {
  need smollm2
  same_logprobs smollm2 q4g64
}

@test "SmolLM2-135M-Instruct: --score --numerics mlx on the q8g64 form gives mlx-lm's logprobs" {
  need smollm2
  same_logprobs smollm2 q8g64
}

@test "SmolLM2-135M-Instruct: --score --numerics mlx on the mixed_3_6 form gives mlx-lm's logprobs" {
  need smollm2
  same_logprobs smollm2 mixed_3_6
}

@test "SmolLM2-135M-Instruct: --score (float32 path) perplexity of every form within 1% of mlx-lm's" {
  need smollm2
  for f in imported float32 q4g64 q8g64 mixed_3_6; do same_ppl smollm2 $f; done
}

@test "Gemma 3 270M: dequantize to float32 writes mlx_lm.convert's bytes" {
  need gemma3
  same_bytes gemma3 float32
}

@test "Gemma 3 270M: convert to 4-bit g64 writes mlx_lm.convert's bytes" {
  need gemma3
  same_bytes gemma3 q4g64
}

@test "Gemma 3 270M: convert to 8-bit g64 writes mlx_lm.convert's bytes" {
  need gemma3
  same_bytes gemma3 q8g64
}

@test "Gemma 3 270M: convert to mixed_3_6 writes mlx_lm.convert's bytes" {
  need gemma3
  same_bytes gemma3 mixed_3_6
}

@test "Gemma 3 270M: --score --numerics mlx on the imported form gives mlx-lm's logprobs" {
  need gemma3
  same_logprobs gemma3 imported
}

@test "Gemma 3 270M: --score --numerics mlx on the float32 form gives mlx-lm's logprobs" {
  need gemma3
  same_logprobs gemma3 float32
}

@test "Gemma 3 270M: --score --numerics mlx on the q4g64 form gives mlx-lm's logprobs" {
  need gemma3
  same_logprobs gemma3 q4g64
}

@test "Gemma 3 270M: --score --numerics mlx on the q8g64 form gives mlx-lm's logprobs" {
  need gemma3
  same_logprobs gemma3 q8g64
}

@test "Gemma 3 270M: --score --numerics mlx on the mixed_3_6 form gives mlx-lm's logprobs" {
  need gemma3
  same_logprobs gemma3 mixed_3_6
}

@test "Gemma 3 270M: --score (float32 path) perplexity of every form within 1% of mlx-lm's" {
  need gemma3
  for f in imported float32 q4g64 q8g64 mixed_3_6; do same_ppl gemma3 $f; done
}
