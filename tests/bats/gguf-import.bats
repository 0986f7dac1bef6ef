#!/usr/bin/env bats
# mlx-quant import-gguf: the folder it writes (tests/data/gguf, made with llama.cpp's
# ggml by tests/gen/gen_gguf_import_fixtures.py), inspect --against the GGUF file, the
# round trip with export-gguf, and refused input: unsupported architecture or tensor
# type named, truncated or lying files, usage errors.  Real models: real-models.bats.

load helpers

setup_file() {
  export MQ="$PWD/${MT_BUILD:-build}/bin/mlx-quant"
  export GEN="$PWD/${MT_BUILD:-build}/bin/mlx-gen"
  export TD="$BATS_FILE_TMPDIR"
  export TINY=tests/data/gguf/tiny-mixed.gguf
}

@test "import-gguf: 32-element blocks become MLX affine group 32, K-quants the file's float type" {
  run "$MQ" import-gguf -i "$TINY" -o "$TD/tiny"
  [ "$status" -eq 0 ]
  [ -z "$output" ]
  for f in config.json model.safetensors model.safetensors.index.json tokenizer.json tokenizer_config.json README.md; do
    [ -f "$TD/tiny/$f" ]
  done
  run "$MQ" inspect "$TD/tiny"
  echo "$output" | grep -E '^model.layers.0.self_attn.q_proj.weight +U32 .* 4 +32'
  echo "$output" | grep -E '^model.layers.0.self_attn.v_proj.weight +U32 .* 5 +32'
  echo "$output" | grep -E '^model.embed_tokens.weight +U32 .* 8 +32'
  echo "$output" | grep -E '^model.layers.0.mlp.gate_proj.weight +BF16'
  echo "$output" | grep -E '^model.layers.1.self_attn.o_proj.weight +F32'
  jq -e '.quantization."model.layers.0.self_attn.v_proj" == {"group_size": 32, "bits": 5, "mode": "affine"}' "$TD/tiny/config.json"
  jq -e '.tie_word_embeddings == false and .vocab_size == 384 and .rms_norm_eps == 1e-05' "$TD/tiny/config.json"
  jq -e '.add_bos_token == true and .bos_token == "<|bos|>" and (.chat_template | length) > 0' "$TD/tiny/tokenizer_config.json"
}

@test "inspect --against FILE.gguf: which tensors hold the GGUF's values exactly" {
  [ -d "$TD/tiny" ] || "$MQ" import-gguf -i "$TINY" -o "$TD/tiny"
  run "$MQ" inspect "$TD/tiny" --against "$TINY"
  [ "$status" -eq 0 ]
  echo "$output" | grep -E '^model.layers.0.self_attn.q_proj.weight +4-bit g32 +Q4_0 +exact$'
  echo "$output" | grep -E '^model.layers.0.mlp.down_proj.weight +BF16 +Q2_K +[0-9.e-]+$'
  [ "${lines[-1]}" = "lossless: 15 of 21 tensors hold the GGUF's values exactly" ]
  # K-quants dequantized to float32 are exact too
  "$MQ" import-gguf -i "$TINY" -o "$TD/tiny32" --dtype f32
  run "$MQ" inspect "$TD/tiny32" --against "$TINY" --json
  [ "${lines[-1]}" = '{"lossless": 21, "tensors": 21}' ]
}

@test "the imported folder generates with mlx-gen, and the chat template comes along" {
  [ -d "$TD/tiny" ] || "$MQ" import-gguf -i "$TINY" -o "$TD/tiny"
  run "$GEN" -m "$TD/tiny" -p "def main" -n 8 --temp 0 -q
  [ "$status" -eq 0 ]
  echo '{"id": 1, "messages": [{"role": "user", "content": "hi"}]}' | "$GEN" -m "$TD/tiny" --tokenize > "$TD/tok.jsonl"
  jq -e '.prompt == "<|bos|>user\nhi<|eos|>\n<|bos|>assistant\n"' "$TD/tok.jsonl"
}

@test "round trip: export-gguf f32 then import-gguf gives back llama-tiny's weights" {
  "$MQ" export-gguf -m tests/data/models/llama-tiny -o "$TD/rt.gguf" --type f32
  "$MQ" import-gguf -i "$TD/rt.gguf" -o "$TD/rt"
  run "$MQ" inspect "$TD/rt" --against "$TD/rt.gguf"
  [ "${lines[-1]}" = "lossless: 21 of 21 tensors hold the GGUF's values exactly" ]
  # the same floats as the source folder, tensor by tensor
  for t in model.layers.1.self_attn.q_proj.weight model.layers.0.self_attn.k_proj.weight lm_head.weight; do
    a=$("$MQ" inspect "$TD/rt" --json | jq -r --arg t "$t" 'select(.tensor == $t) | .shape')
    b=$("$MQ" inspect tests/data/models/llama-tiny --json | jq -r --arg t "$t" 'select(.tensor == $t) | .shape')
    [ "$a" = "$b" ]
  done
  ids='{"id": 1, "ids": [1, 17, 200, 45, 99, 3, 250], "max_tokens": 6, "temperature": 0}'
  a=$(echo "$ids" | "$GEN" -m "$TD/rt" -q --logprobs 1 | jq -c '[.text, .finish_reason, .logprobs]')
  b=$(echo "$ids" | "$GEN" -m tests/data/models/llama-tiny -q --logprobs 1 | jq -c '[.text, .finish_reason, .logprobs]')
  [ "$a" = "$b" ]
  [ "$(echo "$a" | jq -r '.[1]')" = length ]
  # the tokenizer comes back too: export-gguf names llama-tiny's ByteLevel pre-tokenizer
  # "gpt-2" and its BOS-adding post-processor add_bos_token
  for m in "$TD/rt" tests/data/models/llama-tiny; do
    printf '%s\n' '{"text": "def main():\n    return 0  # 123 héllo"}' '{"text": "x = [1, 2]"}' | "$GEN" -m "$m" --tokenize -q | jq -c .ids
  done > "$TD/rt.ids"
  [ "$(sed -n 1p "$TD/rt.ids")" = "$(sed -n 3p "$TD/rt.ids")" ]
  [ "$(sed -n 2p "$TD/rt.ids")" = "$(sed -n 4p "$TD/rt.ids")" ]
  [ "$(sed -n 1p "$TD/rt.ids" | jq '.[0]')" = 1 ]
}

# fixture_import NAME [same [REF]]: tests/data/gguf/NAME.gguf is the float32 fixture
# tests/data/models/NAME as convert_hf_to_gguf.py writes it (llama.cpp reproduces the fixture's
# golden tokens on it); its import holds the GGUF's values exactly, has the fixture's config keys,
# and generates exactly as the fixture (text and top-3 logprobs); "same": model.safetensors is the
# fixture's byte for byte (no norm went through Gemma's 1 + w); REF: the folder to compare config
# and generation with instead of the fixture
fixture_import() {
  local m=$1 ref=${3:-tests/data/models/$1} k a b
  local ids='{"id": 1, "ids": [1, 17, 200, 45, 99, 3, 250, 7, 128, 64, 300, 5], "max_tokens": 12, "temperature": 0}'
  "$MQ" import-gguf -i "tests/data/gguf/$m.gguf" -o "$TD/fx-$m"
  run "$MQ" inspect "$TD/fx-$m" --against "tests/data/gguf/$m.gguf"
  [[ "${lines[-1]}" == "lossless: "*" tensors hold the GGUF's values exactly" ]]
  n=$(echo "${lines[-1]}" | awk '{print $2, $4}')
  [ "${n% *}" = "${n#* }" ]
  for k in model_type hidden_size intermediate_size num_hidden_layers num_attention_heads num_key_value_heads \
           head_dim rms_norm_eps rope_theta max_position_embeddings tie_word_embeddings vocab_size \
           attn_logit_softcapping final_logit_softcapping query_pre_attn_scalar partial_rotary_factor \
           original_max_position_embeddings rope_scaling no_rope_layer_interval; do
    a=$(jq -S -c --arg k "$k" '.[$k]' "$TD/fx-$m/config.json")
    b=$(jq -S -c --arg k "$k" '.[$k]' "$ref/config.json")
    [ "$b" = null ] || [ "$a" = "$b" ] || { echo "$m: $k $a, fixture $b"; return 1; }
  done
  if [ "${2:-}" = same ]; then
    cmp "$TD/fx-$m/model.safetensors" "tests/data/models/$m/model.safetensors"
  fi
  a=$(echo "$ids" | "$GEN" -m "$TD/fx-$m" -q --logprobs 3 | jq -c '[.text, .logprobs]')
  b=$(echo "$ids" | "$GEN" -m "$ref" -q --logprobs 3 | jq -c '[.text, .logprobs]')
  [ "$a" = "$b" ] || { echo "$m: generation differs"; return 1; }
}

@test "qwen2, qwen3, gemma2: the GGUF of each float32 fixture imports back to the fixture" {
  fixture_import qwen2-tiny same
  fixture_import qwen3-tiny same
  fixture_import gemma2-tiny
}

@test "phi3: fused qkv_proj / gate_up_proj, partial rotary, LongRoPE from rope_factors_long/short" {
  fixture_import phi3-tiny same
  jq -e '.rope_scaling.type == "longrope" and .partial_rotary_factor == 0.5' "$TD/fx-phi3-tiny/config.json"
}

@test "gemma: norms back from 1 + w, no RoPE base in the file (llama.cpp's 10000), tied output" {
  fixture_import gemma-tiny
  jq -e '.tie_word_embeddings == true and .rope_theta == 10000.0' "$TD/fx-gemma-tiny/config.json"
}

@test "mixtral (llama with experts) and qwen3moe: stacked experts become switch_mlp, the router gate" {
  fixture_import mixtral-tiny same
  fixture_import qwen3moe-tiny same
  jq -e '.num_local_experts == 4 and .num_experts_per_tok == 2' "$TD/fx-mixtral-tiny/config.json"
  jq -e '.num_experts == 4 and .moe_intermediate_size == 32 and .norm_topk_prob and .mlp_only_layers == [1]' \
    "$TD/fx-qwen3moe-tiny/config.json"
  # a llama file without experts stays llama
  "$MQ" import-gguf -i "$TINY" -o "$TD/tiny-l"
  jq -e '.model_type == "llama" and .architectures == ["LlamaForCausalLM"]' "$TD/tiny-l/config.json"
}

@test "starcoder2, olmo2, granite: LayerNorm biases and c_fc/c_proj, post-branch norms, multipliers" {
  fixture_import starcoder2-tiny same
  fixture_import olmo2-tiny same
  fixture_import granite-tiny same
  jq -e '.norm_epsilon == 1e-05 and .tie_word_embeddings' "$TD/fx-starcoder2-tiny/config.json"
  for k in attention_multiplier embedding_multiplier residual_multiplier logits_scaling; do
    [ "$(jq -c ".$k" "$TD/fx-granite-tiny/config.json")" = "$(jq -c ".$k" tests/data/models/granite-tiny/config.json)" ]
  done
}

@test "smollm3: llama.cpp's fixed RoPE-less step (every 4th layer), the rest as llama's" {
  # the GGUF has no key for the fixture's no_rope_layer_interval 2: the import generates as the
  # fixture does with llama.cpp's 4 (tests/gen checks llama.cpp against mlx-lm so)
  cp -r tests/data/models/smollm3-tiny "$TD/smollm3-every4"
  jq '.no_rope_layer_interval = 4' tests/data/models/smollm3-tiny/config.json > "$TD/smollm3-every4/config.json"
  fixture_import smollm3-tiny same "$TD/smollm3-every4"
}

@test "-q: everything dequantized, then quantized as convert -q does" {
  run "$MQ" import-gguf -i "$TINY" -o "$TD/tq" -q --bits 8 --group-size 64
  [ "$status" -eq 0 ]
  jq -e '.quantization == {"group_size": 64, "bits": 8, "mode": "affine"}' "$TD/tq/config.json"
  jq -e '.torch_dtype == "bfloat16"' "$TD/tq/config.json"
  ! ls "$TD" | grep -q 'tq\.float'
}

@test "usage errors exit 2; an existing output folder is refused" {
  run "$MQ" import-gguf -o "$TD/x"
  [ "$status" -eq 2 ]
  [[ "$output" == *"import-gguf needs -i FILE.gguf -o DIR"* ]]
  run "$MQ" import-gguf -i "$TINY" -o "$TD/x" --bits 4
  [ "$status" -eq 2 ]
  run "$MQ" import-gguf -i "$TINY" -o "$TD/x" --dtype float8
  [ "$status" -eq 2 ]
  mkdir -p "$TD/exists"
  run "$MQ" import-gguf -i "$TINY" -o "$TD/exists"
  [ "$status" -eq 1 ]
  [[ "$output" == *"already exists"* ]]
}

@test "an unsupported architecture or tensor type is named" {
  run "$MQ" import-gguf -i tests/data/gguf/arch-mamba.gguf -o "$TD/m"
  [ "$status" -eq 1 ]
  [[ "$output" == *"GGUF architecture 'mamba' is not supported (supported: llama, qwen2, qwen3, gemma, gemma2, gemma3, phi3, qwen3moe, starcoder2, olmo2, granite, smollm3)"* ]]
  run "$MQ" import-gguf -i tests/data/gguf/type-iq4nl.gguf -o "$TD/m"
  [ "$status" -eq 1 ]
  [[ "$output" == *"tensor 'token_embd.weight' has type IQ4_NL, which is not supported"* ]]
  [ ! -e "$TD/m" ]
  ! ls "$TD" | grep -q '^m\.tmp'
}

@test "truncated or lying GGUF files are refused with a clear error, leaving nothing" {
  head -c 900000 "$TINY" > "$TD/trunc.gguf"
  run "$MQ" import-gguf -i "$TD/trunc.gguf" -o "$TD/t1"
  [ "$status" -eq 1 ]
  [[ "$output" == *"runs past the end of the file"* ]]
  head -c 5000 "$TINY" > "$TD/trunc2.gguf"
  run "$MQ" import-gguf -i "$TD/trunc2.gguf" -o "$TD/t1"
  [ "$status" -eq 1 ]
  [[ "$output" == *"tokenizer.ggml.token_type: array of 384 elements runs past the end of the file"* ]]
  head -c 8000 "$TINY" > "$TD/trunc3.gguf"
  run "$MQ" import-gguf -i "$TD/trunc3.gguf" -o "$TD/t1"
  [ "$status" -eq 1 ]
  [[ "$output" == *"truncated: metadata key at byte 7979 needs 27 bytes, 21 left"* ]]
  # tensor count (bytes 8-15) far beyond what the file can hold
  cp "$TINY" "$TD/lie1.gguf"
  printf '\377\377\377\377\377\377\000\000' | dd of="$TD/lie1.gguf" bs=1 seek=8 conv=notrunc 2>/dev/null
  run "$MQ" import-gguf -i "$TD/lie1.gguf" -o "$TD/t1"
  [ "$status" -eq 1 ]
  [[ "$output" == *"tensor count 281474976710655 is more than the file can hold"* ]]
  # the first key's length (bytes 24-31) past the end of the file
  cp "$TINY" "$TD/lie2.gguf"
  printf '\000\000\000\000\000\001\000\000' | dd of="$TD/lie2.gguf" bs=1 seek=24 conv=notrunc 2>/dev/null
  run "$MQ" import-gguf -i "$TD/lie2.gguf" -o "$TD/t1"
  [ "$status" -eq 1 ]
  [[ "$output" == *"truncated: metadata key"* ]]
  run "$MQ" import-gguf -i tests/data/models/llama-tiny/model.safetensors -o "$TD/t1"
  [ "$status" -eq 1 ]
  [[ "$output" == *"not a GGUF file"* ]]
  run "$MQ" import-gguf -i "$TD/nonexistent.gguf" -o "$TD/t1"
  [ "$status" -eq 1 ]
  [ ! -e "$TD/t1" ]
  ! ls "$TD" | grep -q '^t1\.tmp'
}
