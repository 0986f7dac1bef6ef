#!/usr/bin/env bats
# Real-weight models imported from GGUF by `make real-models` (local-models/, never committed)
# against goldens made with mlx-lm and llama.cpp by tests/gen/gen_real_goldens.py
# (tests/data/real/<name>/): mlx-gen's greedy tokens and per-token logprobs for 3 prompts
# and 2 chats equal mlx-lm's on the same folder; the rebuilt tokenizer encodes the
# 2,617-line corpus as llama.cpp does with the GGUF file; every tensor holds the GGUF's
# values.  Each test says "skipped: run make real-models" when its model is not there.

load helpers

# logprobs may differ from mlx-lm's by float rounding only
TOL=0.01

setup_file() {
  export MQ="$PWD/${MT_BUILD:-build}/bin/mlx-quant"
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
  export TD="$BATS_FILE_TMPDIR"
}

# need NAME DIR GGUF: skip unless the imported folder and its GGUF file are there
need() {
  [ -d "local-models/$2" ] && [ -f "local-models/gguf/$3" ] || skip "skipped: run make real-models"
  [ -f "tests/data/real/$1/golden.json" ]
}

# mlx-gen on every golden case: ids equal, logprobs within TOL, same finish reason
check_cases() {
  local name=$1 dir=$2 g="tests/data/real/$1/golden.json"
  jq -c --argjson m "$(jq .max_tokens "$g")" \
    '.cases[] | (if .prompt then {prompt: .prompt} else {messages: .messages} end) + {max_tokens: $m, temperature: 0}' "$g" \
    | jq -c '{id: input_line_number} + .' > "$TD/$name.in"
  "$GEN" -m "local-models/$dir" -q --ids --logprobs 1 < "$TD/$name.in" > "$TD/$name.out"
  [ "$(wc -l < "$TD/$name.out")" -eq "$(jq '.cases | length' "$g")" ]
  local i=0
  while read -r line; do
    want=$(jq -c ".cases[$i]" "$g")
    got_ids=$(echo "$line" | jq -c '.ids')
    want_ids=$(echo "$want" | jq -c '.ids')
    [ "$got_ids" = "$want_ids" ] || { echo "case $i: ids $got_ids, mlx-lm $want_ids"; return 1; }
    [ "$(echo "$line" | jq -r .finish_reason)" = "$(echo "$want" | jq -r .finish_reason)" ] || { echo "case $i: finish"; return 1; }
    [ "$(echo "$line" | jq .prompt_tokens)" = "$(echo "$want" | jq '.prompt_ids | length')" ] || { echo "case $i: prompt"; return 1; }
    worst=$(jq -n --argjson a "$(echo "$line" | jq -c '[.logprobs[].logprob]')" --argjson b "$(echo "$want" | jq -c .logprobs)" \
      '[range($a | length) | ($a[.] - $b[.]) | fabs] | max // 0')
    awk -v w="$worst" -v t="$TOL" 'BEGIN { exit !(w <= t) }' || { echo "case $i: logprob differs by $worst"; return 1; }
    i=$((i + 1))
  done < "$TD/$name.out"
}

# the chat prompts render as transformers renders them: same token count and ids
check_prompts() {
  local name=$1 dir=$2 g="tests/data/real/$1/golden.json"
  jq -c '.cases[] | (if .prompt then {text: .prompt} else {messages: .messages} end)' "$g" \
    | jq -c '{id: input_line_number} + .' | "$GEN" -m "local-models/$dir" --tokenize -q | jq -c .ids > "$TD/$name.pids"
  jq -c '.cases[].prompt_ids' "$g" > "$TD/$name.pwant"
  diff "$TD/$name.pids" "$TD/$name.pwant"
}

check_corpus() {
  local name=$1 dir=$2
  [ "$(jq '.corpus.tokenizers_vs_llama_cpp_differ | length' "tests/data/real/$name/golden.json")" -eq 0 ]
  jq -c '{id: input_line_number, text: .}' tests/data/tokenizers/corpus.txt \
    | "$GEN" -m "local-models/$dir" --tokenize -q | jq -c .ids > "$TD/$name.ours"
  zstd -q -d -c "tests/data/real/$name/corpus_ids.jsonl.zst" | jq -c .ids > "$TD/$name.want"
  [ "$(wc -l < "$TD/$name.want")" -eq 2617 ]
  cmp "$TD/$name.ours" "$TD/$name.want"
}

@test "SmolLM2-135M-Instruct: the GGUF file is the one the goldens were made from" {
  need smollm2 SmolLM2-135M-Instruct SmolLM2-135M-Instruct.Q4_1.gguf
  [ "$(sha256sum local-models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf | cut -d' ' -f1)" = \
    "$(jq -r .gguf_sha256 tests/data/real/smollm2/golden.json)" ]
}

@test "SmolLM2-135M-Instruct: every tensor holds the GGUF's values (lossless import)" {
  need smollm2 SmolLM2-135M-Instruct SmolLM2-135M-Instruct.Q4_1.gguf
  run "$MQ" inspect local-models/SmolLM2-135M-Instruct --against local-models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = "lossless: 272 of 272 tensors hold the GGUF's values exactly" ]
}

@test "SmolLM2-135M-Instruct: greedy tokens and logprobs of 3 prompts and 2 chats equal mlx-lm's" {
  need smollm2 SmolLM2-135M-Instruct SmolLM2-135M-Instruct.Q4_1.gguf
  check_prompts smollm2 SmolLM2-135M-Instruct
  check_cases smollm2 SmolLM2-135M-Instruct
}

@test "SmolLM2-135M-Instruct: on an F32 copy of the GGUF, llama.cpp's greedy tokens were mlx-lm's (golden)" {
  need smollm2 SmolLM2-135M-Instruct SmolLM2-135M-Instruct.Q4_1.gguf
  jq -e '[.cases[] | .llama_cpp_f32_ids == .ids] | all' tests/data/real/smollm2/golden.json
}

@test "SmolLM2-135M-Instruct: the rebuilt tokenizer encodes the corpus as llama.cpp does" {
  need smollm2 SmolLM2-135M-Instruct SmolLM2-135M-Instruct.Q4_1.gguf
  check_corpus smollm2 SmolLM2-135M-Instruct
}

@test "SmolLM2-135M-Instruct: make demo-chat answers" {
  need smollm2 SmolLM2-135M-Instruct SmolLM2-135M-Instruct.Q4_1.gguf
  local b=${MT_BUILD:-build}
  run make -s --no-print-directory -o "$b/bin/mlx-gen" BUILD="$b" demo-chat
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = "Q: What is the capital of France?
A: The capital of France is Paris." ]
}

@test "Gemma 3 270M: the GGUF file is the one the goldens were made from" {
  need gemma3 gemma-3-270m gemma-3-270m-q4_k_m.gguf
  [ "$(sha256sum local-models/gguf/gemma-3-270m-q4_k_m.gguf | cut -d' ' -f1)" = \
    "$(jq -r .gguf_sha256 tests/data/real/gemma3/golden.json)" ]
}

@test "Gemma 3 270M (imported with --dtype float32): every tensor holds the GGUF's values" {
  need gemma3 gemma-3-270m gemma-3-270m-q4_k_m.gguf
  run "$MQ" inspect local-models/gemma-3-270m --against local-models/gguf/gemma-3-270m-q4_k_m.gguf
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = "lossless: 236 of 236 tensors hold the GGUF's values exactly" ]
  jq -e '.model_type == "gemma3_text" and .eos_token_id == [1, 106] and .query_pre_attn_scalar == 256' \
    local-models/gemma-3-270m/config.json
}

@test "Gemma 3 270M: greedy tokens and logprobs of 5 prompts (2 of them chats in Gemma's turn format) equal mlx-lm's" {
  need gemma3 gemma-3-270m gemma-3-270m-q4_k_m.gguf
  check_prompts gemma3 gemma-3-270m
  check_cases gemma3 gemma-3-270m
}

@test "Gemma 3 270M: on an F32 copy of the GGUF, llama.cpp's greedy tokens were mlx-lm's (golden)" {
  need gemma3 gemma-3-270m gemma-3-270m-q4_k_m.gguf
  jq -e '[.cases[] | .llama_cpp_f32_ids == .ids] | all' tests/data/real/gemma3/golden.json
}

@test "Gemma 3 270M: the rebuilt SentencePiece tokenizer encodes the corpus as llama.cpp does" {
  need gemma3 gemma-3-270m gemma-3-270m-q4_k_m.gguf
  check_corpus gemma3 gemma-3-270m
}

# Qwen2.5-Coder-0.5B-Instruct comes only with REAL_MODELS=all (491 MB GGUF, 901 MB imported)
need_all() {
  [ -d "local-models/$2" ] && [ -f "local-models/gguf/$3" ] || skip "skipped: run make real-models REAL_MODELS=all"
  [ -f "tests/data/real/$1/golden.json" ]
}

QWEN_GGUF=qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf

@test "Qwen2.5-Coder-0.5B-Instruct: the GGUF file is the one the goldens were made from" {
  need_all qwen25coder Qwen2.5-Coder-0.5B-Instruct "$QWEN_GGUF"
  [ "$(sha256sum "local-models/gguf/$QWEN_GGUF" | cut -d' ' -f1)" = \
    "$(jq -r .gguf_sha256 tests/data/real/qwen25coder/golden.json)" ]
}

@test "Qwen2.5-Coder-0.5B-Instruct (imported with --dtype float32): every tensor holds the GGUF's values" {
  need_all qwen25coder Qwen2.5-Coder-0.5B-Instruct "$QWEN_GGUF"
  run "$MQ" inspect local-models/Qwen2.5-Coder-0.5B-Instruct --against "local-models/gguf/$QWEN_GGUF"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = "lossless: 291 of 291 tensors hold the GGUF's values exactly" ]
  jq -e '.model_type == "qwen2" and .eos_token_id == 151645 and .tie_word_embeddings == false
    and .rope_theta == 1000000 and .num_key_value_heads == 2' local-models/Qwen2.5-Coder-0.5B-Instruct/config.json
}

@test "Qwen2.5-Coder-0.5B-Instruct: greedy tokens and logprobs of 3 prompts and 2 chats equal mlx-lm's" {
  need_all qwen25coder Qwen2.5-Coder-0.5B-Instruct "$QWEN_GGUF"
  check_prompts qwen25coder Qwen2.5-Coder-0.5B-Instruct
  check_cases qwen25coder Qwen2.5-Coder-0.5B-Instruct
}

@test "Qwen2.5-Coder-0.5B-Instruct: on an F32 copy of the GGUF, llama.cpp's greedy tokens were mlx-lm's (golden)" {
  need_all qwen25coder Qwen2.5-Coder-0.5B-Instruct "$QWEN_GGUF"
  jq -e '[.cases[] | .llama_cpp_f32_ids == .ids] | all' tests/data/real/qwen25coder/golden.json
}

# check_corpus_known NAME DIR TEXT: the corpus as llama.cpp encodes it, except on the lines the
# golden lists (each must contain TEXT), where the ids are those `tokenizers` gives with the
# rebuilt tokenizer.json
check_corpus_known() {
  local name=$1 dir=$2 text=$3 g="tests/data/real/$1/golden.json"
  jq -e -s --argjson bad "$(jq -c .corpus.tokenizers_vs_llama_cpp_differ "$g")" --arg t "$text" \
    '[$bad[] as $i | .[$i] | contains($t)] | all' tests/data/tokenizers/corpus.txt
  jq -c '{id: input_line_number, text: .}' tests/data/tokenizers/corpus.txt \
    | "$GEN" -m "local-models/$dir" --tokenize -q | jq -c .ids > "$TD/$name.ours"
  zstd -q -d -c "tests/data/real/$name/corpus_ids.jsonl.zst" | jq -c .ids > "$TD/$name.want"
  [ "$(wc -l < "$TD/$name.want")" -eq 2617 ]
  [ "$(wc -l < "$TD/$name.ours")" -eq 2617 ]
  # the listed lines get tokenizers' ids instead of llama.cpp's
  jq -c -n --slurpfile g "$g" '[inputs] | to_entries[] | $g[0].corpus.tokenizers_ids[.key | tostring] // .value' \
    "$TD/$name.want" > "$TD/$name.want2"
  cmp "$TD/$name.ours" "$TD/$name.want2"
}

@test "Qwen2.5-Coder-0.5B-Instruct: the rebuilt tokenizer encodes the corpus as llama.cpp does, but for its </s> rule" {
  # llama.cpp makes any token spelled </s> an end-of-generation control token (a list in
  # llama-vocab.cpp), so it splits "</s>" out of text as token 128247; the GGUF marks that
  # token normal, and the rebuilt tokenizer.json encodes the text as any other: "</", "s", ">"
  need_all qwen25coder Qwen2.5-Coder-0.5B-Instruct "$QWEN_GGUF"
  check_corpus_known qwen25coder Qwen2.5-Coder-0.5B-Instruct "</s>"
}
