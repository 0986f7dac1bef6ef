#!/bin/sh
# bench/structured.sh - the cost of structured output per decoded token.
#
#   sh bench/structured.sh [MODEL] [RECORDS] [TOKENS]
#
# Greedy answers at batch 1 on MODEL (default bench/models/qwen06b-q4g64: the Qwen3-0.6B
# shape with Qwen's real 151,643-token vocabulary; random weights), RECORDS records
# (default 8) of up to TOKENS tokens (default 96), run twice on the same weights and
# threads: unconstrained, and under tests/data/structured/order.json (--json-schema).  The
# constrained run's summary line gives the time spent masking logits per token and as a
# share of decoding (masks computed by a trie walk on a cache miss, copied on a hit); the
# decode rates of both runs are printed beside it.  The issue's goal: masking <= 5% of a
# decode step at batch 1 on the Qwen3 shape.  /proc/pressure/cpu before and after: redo a
# contended round.  Threads: MT_THREADS (default 2).
set -eu
M=${1:-bench/models/qwen06b-q4g64}
N=${2:-8}
TOK=${3:-96}
BUILD=${BUILD:-build}
T=${MT_THREADS:-2}
GEN=$BUILD/bin/mlx-gen
make -s -j2 BUILD="$BUILD" "$GEN" >/dev/null
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for i in $(seq 1 "$N"); do
    echo "{\"id\": $i, \"prompt\": \"Order number $i as JSON:\", \"max_tokens\": $TOK}"
done > "$TMP/in.jsonl"
before=$(head -1 /proc/pressure/cpu | sed 's/ total=.*//')
"$GEN" -m "$M" -t "$T" < "$TMP/in.jsonl" > "$TMP/plain.jsonl" 2> "$TMP/plain.err"
"$GEN" -m "$M" -t "$T" --json-schema tests/data/structured/order.json < "$TMP/in.jsonl" > "$TMP/json.jsonl" 2> "$TMP/json.err"
after=$(head -1 /proc/pressure/cpu | sed 's/ total=.*//')
rate() { jq -s 'map(.completion_tokens) as $n | map(.completion_tokens / .decode_tps) as $s | ($n | add) / ($s | add)' "$1"; }
echo "model $(basename "$M"), $N records, batch 1, $T threads"
printf 'unconstrained: %.2f tokens/s decoding\n' "$(rate "$TMP/plain.jsonl")"
printf 'json schema:   %.2f tokens/s decoding (%s tokens)\n' "$(rate "$TMP/json.jsonl")" \
    "$(jq -s 'map(.completion_tokens) | add' "$TMP/json.jsonl")"
grep 'structured output' "$TMP/json.err" | sed 's/^mlx-gen: /  /'
echo "cpu pressure before: $before"
echo "cpu pressure after:  $after"
