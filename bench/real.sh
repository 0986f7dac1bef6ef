#!/bin/sh
# bench/real.sh - the real-weight models of `make real-models`, ours against mlx-lm and
# llama.cpp on the same weights.
#
#   sh bench/real.sh ppl     perplexity of tests/data/real/ppl_text.jsonl (3 records, about
#                            700 tokens) under each form of each model: mlx-gen --score
#                            beside mlx-lm's figure from the goldens (tests/gen/
#                            gen_real_convert_goldens.py) and llama.cpp's on the original
#                            GGUF (same ids); the forms as tests/bats/real-convert.bats
#                            makes them: the import, float32 (dequantized), q4g64, q8g64
#                            and mixed_3_6 (mlx-quant convert from float32)
#   sh bench/real.sh speed   prefill and decode speed through bench/ab.sh (alternating
#                            engines, REPS rounds; llama.cpp's own llama-bench from
#                            make llama-cpp when built):
#     smollm2-q4g32  SmolLM2-135M-Instruct imported losslessly (MLX q4 g32 = the GGUF's Q4_1,
#                    the embeddings Q8_0 = q8 g32) vs the Q4_1 GGUF itself: same bytes
#     gemma3-q4g64   Gemma 3 270M converted to MLX q4 g64 (4.5 bpw) vs the original Q4_K_M
#                    GGUF (its own mix of Q4_K/Q6_K/Q5_0/Q8_0): same model, close bits
#   CPU pressure (/proc/pressure/cpu) is printed before and after: measure only on a quiet
#   machine and redo a run whose pressure rose.  Environment as bench/ab.sh (REPS, PP, TG,
#   THREADS, BUILD, OUT: bench/out/real.jsonl).
# The converted forms are kept in bench/models/real-* (git-ignored).
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
MQ=$BUILD/bin/mlx-quant
GEN=$BUILD/bin/mlx-gen
S=local-models/SmolLM2-135M-Instruct
G=local-models/gemma-3-270m
[ -d "$S" ] && [ -d "$G" ] || { echo "bench/real.sh: run make real-models first" >&2; exit 1; }
mkdir -p bench/models bench/out

# form NAME SRC FORM: bench/models/real-NAME-FORM, made once as real-convert.bats makes it
form() {
    d=bench/models/real-$1-$3
    case $3 in
    imported) echo "$2"; return ;;
    float32) [ -d "$d" ] || "$MQ" dequantize -m "$2" -o "$d" --dtype float32 --quiet >&2 ;;
    q4g64) [ -d "$d" ] || "$MQ" convert -m "$(form "$1" "$2" float32)" -o "$d" -q --bits 4 --group-size 64 --dtype float32 --quiet >&2 ;;
    q8g64) [ -d "$d" ] || "$MQ" convert -m "$(form "$1" "$2" float32)" -o "$d" -q --bits 8 --group-size 64 --dtype float32 --quiet >&2 ;;
    mixed_3_6) [ -d "$d" ] || "$MQ" convert -m "$(form "$1" "$2" float32)" -o "$d" -q --quant-predicate mixed_3_6 --dtype float32 --quiet >&2 ;;
    esac
    echo "$d"
}

ppl() {
    printf '| model | form | bits/weight | mlx-gen ppl | mlx-lm ppl | llama.cpp on the GGUF |\n|---|---|---|---|---|---|\n'
    for m in smollm2 gemma3; do
        src=$S; [ $m = gemma3 ] && src=$G
        g=tests/data/real/$m/convert.json
        for f in imported float32 q4g64 q8g64 mixed_3_6; do
            d=$(form $m "$src" $f)
            bpw=$("$MQ" inspect "$d" | tail -1 | sed -n 's/.*, \([0-9.]*\) bits per weight.*/\1/p')
            ours=$("$GEN" -m "$d" --score -q < tests/data/real/ppl_text.jsonl | jq -s '(map(.sum) | add) as $s | (map(.logprobs | length) | add) as $n | -($s / $n) | exp')
            want=$(jq --arg f $f '.forms[$f].ppl' "$g")
            ll=$([ $f = imported ] && jq '.llama_cpp.ppl' "$g" || echo "")
            printf '| %s | %s | %s | %.3f | %.3f | %s |\n' "$m" "$f" "$bpw" "$ours" "$want" "${ll:+$(printf '%.3f' "$ll")}"
        done
    done
}

speed() {
    ln -sfn "$PWD/$S" bench/models/smollm2-q4g32
    ln -sfn "$PWD/local-models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf" bench/models/smollm2-Q4_1.gguf
    ln -sfn "$PWD/local-models/gguf/gemma-3-270m-q4_k_m.gguf" bench/models/gemma3-Q4_K_M.gguf
    if [ ! -d bench/models/gemma3-q4g64 ]; then
        "$MQ" convert -m "$(form gemma3 "$G" float32)" -o bench/models/gemma3-q4g64 -q --bits 4 --group-size 64 --dtype bfloat16 --quiet
    fi
    echo "cpu pressure before: $(head -1 /proc/pressure/cpu)"
    PAIRS="smollm2-q4g32:Q4_1 gemma3-q4g64:Q4_K_M" OUT=${OUT:-bench/out/real.jsonl} sh bench/ab.sh
    echo "cpu pressure after: $(head -1 /proc/pressure/cpu)"
}

case ${1:-} in
ppl) ppl ;;
speed) speed ;;
*) echo "usage: sh bench/real.sh ppl|speed" >&2; exit 2 ;;
esac
