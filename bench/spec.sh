#!/bin/sh
# bench/spec.sh - speculative decoding on the bundled pair: mlx-gen with
# models/tinydocs-22m-4bit alone, with models/tinydocs-5m-4bit as draft
# (--draft-model, K = each of KS), and with prompt lookup (--prompt-lookup N)
# on a rewriting job, all greedy, in one invocation each over the same
# records.  Prints per configuration the decode tokens/s (the answers'
# completion tokens over their decode seconds, summed over the records), the
# acceptance rate (accepted / proposed tokens) and the ratio to the model
# alone, and checks that every text equals the model alone's (temp 0).
# PEER=1 (default 0: mlx's CPU backend is slow here) adds mlx-lm's own
# speculative generation (python -m mlx_lm generate --draft-model) on the
# same models and prompts, its "Generation: ... tokens-per-sec" lines
# (mlx's CPU backend picks its own threads: the thread count is not the same).
# Environment: BUILD (build), THREADS (2), N (max tokens, 128), KS ("2 3 4"),
# LOOKUP (8), REPS (1), PEER, MLX_PY (/work/venv-mlx/bin/python).
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
THREADS=${THREADS:-2}
N=${N:-128}
KS=${KS:-"2 3 4"}
LOOKUP=${LOOKUP:-8}
REPS=${REPS:-1}
MLX_PY=${MLX_PY:-/work/venv-mlx/bin/python}
PEER=${PEER:-0}
M=models/tinydocs-22m-4bit
D=models/tinydocs-5m-4bit
GEN=$BUILD/bin/mlx-gen
make -j2 BUILD="$BUILD" "$GEN" >/dev/null
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# continuation prompts (the draft's job) and a rewriting job (prompt lookup's)
cat >"$OUT/cont.jsonl" <<'EOF'
{"id":"c1","prompt":"The apt command installs packages. To install a package"}
{"id":"c2","prompt":"Configuration files are kept under /etc. When a package is upgraded,"}
{"id":"c3","prompt":"# Installing\n\nRun the following command to build the project:\n\n"}
{"id":"c4","prompt":"The kernel loads modules on demand. A module"}
EOF
cat >"$OUT/rewrite.jsonl" <<'EOF'
{"id":"r1","prompt":"Rewrite the following text in plain words.\n\nText: The daemon reads its configuration file at start-up and writes its log to /var/log/daemon.log. To reload the configuration, send it the HUP signal; to stop it, send it the TERM signal. The configuration file lists the ports the daemon listens on and the users allowed to connect.\n\nRewritten: The daemon reads its configuration file"}
{"id":"r2","prompt":"Summarise the following section.\n\nSection: The package manager keeps a database of installed packages under /var/lib/dpkg. Each package lists its files, its dependencies and the scripts run when it is installed or removed. The database is updated when a package is installed, upgraded or removed.\n\nSummary: The package manager keeps a database of installed packages"}
EOF

# run NAME FILE ARGS...: answers into $OUT/NAME.jsonl, one summary line
run() {
    name=$1; file=$2; shift 2
    : >"$OUT/$name.jsonl"
    for r in $(seq "$REPS"); do
        "$GEN" -m "$M" -q -t "$THREADS" -n "$N" --ids --prefix-cache-mb 0 "$@" <"$OUT/$file.jsonl" >>"$OUT/$name.jsonl"
    done
    jq -s -r --arg name "$name" '
        (map(.completion_tokens) | add) as $n |
        (map(.completion_tokens / .decode_tps) | add) as $s |
        (map(.draft_tokens // 0) | add) as $p | (map(.accepted_tokens // 0) | add) as $a |
        "\($name)\t\($n / $s * 10 | round / 10)\t\(if $p > 0 then ($a / $p * 1000 | round / 10 | tostring) + "%" else "-" end)\t\($a)/\($p)"' \
        "$OUT/$name.jsonl"
}

tps() { echo "$1" | cut -f2; }
same() {
    if [ "$(jq -c '[.id, .ids]' "$OUT/$1.jsonl")" = "$(jq -c '[.id, .ids]' "$OUT/$2.jsonl")" ]; then echo same; else echo DIFFERENT; fi
}

echo "load: $(cut -d' ' -f1-3 /proc/loadavg); threads $THREADS; $N tokens; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
printf 'config\ttok/s\taccept\taccepted/proposed\tratio\ttext\n'
base=$(run target cont)
printf '%s\t1.00\t-\n' "$base"
for k in $KS; do
    l=$(run "draft-k$k" cont --draft-model "$D" --num-draft-tokens "$k")
    printf '%s\t%.2f\t%s\n' "$l" "$(echo "$(tps "$l") $(tps "$base")" | awk '{print $1 / $2}')" "$(same "draft-k$k" target)"
done
l=$(run "lookup-$LOOKUP" cont --prompt-lookup "$LOOKUP")
printf '%s\t%.2f\t%s\n' "$l" "$(echo "$(tps "$l") $(tps "$base")" | awk '{print $1 / $2}')" "$(same "lookup-$LOOKUP" target)"
echo "rewriting job:"
rbase=$(run rewrite-target rewrite)
printf '%s\t1.00\t-\n' "$rbase"
l=$(run "rewrite-lookup-$LOOKUP" rewrite --prompt-lookup "$LOOKUP")
printf '%s\t%.2f\t%s\n' "$l" "$(echo "$(tps "$l") $(tps "$rbase")" | awk '{print $1 / $2}')" "$(same "rewrite-lookup-$LOOKUP" rewrite-target)"
l=$(run "rewrite-draft-k3" rewrite --draft-model "$D" --num-draft-tokens 3)
printf '%s\t%.2f\t%s\n' "$l" "$(echo "$(tps "$l") $(tps "$rbase")" | awk '{print $1 / $2}')" "$(same "rewrite-draft-k3" rewrite-target)"

if [ "$PEER" = 1 ]; then
    echo "mlx-lm (mlx_lm generate, CPU backend, its own threads), decode tokens/s per prompt:"
    for k in 0 $KS; do
        jq -r '.prompt | @base64' "$OUT/cont.jsonl" | while IFS= read -r p; do
            if [ "$k" = 0 ]; then set -- ; else set -- --draft-model "$D" --num-draft-tokens "$k"; fi
            p=$(printf '%s' "$p" | base64 -d)
            "$MLX_PY" -m mlx_lm generate --model "$M" --prompt "$p" --max-tokens "$N" --temp 0 \
                --ignore-chat-template "$@" 2>&1 | sed -n 's/^Generation: .*, \([0-9.]*\) tokens-per-sec/\1/p'
        done | awk -v k="$k" '{s += $1; n++} END {if (n) printf "mlx-lm %s\t%.1f (mean of %d)\n", k ? "draft-k" k : "target", s / n, n}'
    done
fi
