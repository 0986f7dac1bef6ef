#!/bin/sh
# bench/cbatch.sh - continuous batching against the lockstep schedule and the ideal.
#
#   sh bench/cbatch.sh [RECORDS] [BATCH] [MODEL...]
#
# For each model: RECORDS records (default 1000) with answer lengths drawn uniformly from
# 16..512 tokens (max_tokens; random-weight models never stop early, so every answer has
# its drawn length; seed 1), run three ways on the same weights and threads:
#   continuous  mlx-gen --batch BATCH              (the default schedule)
#   lockstep    mlx-gen --batch BATCH --lockstep   (the schedule before: BATCH records start
#               together and the next BATCH wait for the slowest)
#   ideal       4 x BATCH records of the mean length each, lockstep: every step decodes
#               BATCH sequences, at the same mean depth (no slot ever idle)
# and prints generated tokens/s for each, the ratios continuous/ideal and
# continuous/lockstep, peak RSS (GNU time), and /proc/pressure/cpu before and after (a
# contended round is not a measurement: run it again on a quiet machine).
# Default models: the Qwen3-0.6B and Llama-3.2-1B shapes of bench/make_models.py
# (bench/models/qwen06b-q4g64, llama1b-q4g64).  Threads: MT_THREADS (default 2).
set -eu
N=${1:-1000}
B=${2:-8}
shift 2 2>/dev/null || shift $#
MODELS=${*:-"bench/models/qwen06b-q4g64 bench/models/llama1b-q4g64"}
BUILD=${BUILD:-build}
T=${MT_THREADS:-2}
GEN=$BUILD/bin/mlx-gen
make -s -j2 BUILD="$BUILD" "$GEN" >/dev/null
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

python3 - "$N" "$B" "$TMP" <<'PY'
import json, random, sys
n, b, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
random.seed(1)
words = "the file option value command section output list default user system".split()
lens = [random.randint(16, 512) for _ in range(n)]
with open(d + "/mixed.jsonl", "w") as f:
    for i, L in enumerate(lens):
        p = " ".join(random.choice(words) for _ in range(random.randint(4, 24)))
        f.write(json.dumps({"id": i, "prompt": p, "max_tokens": L}) + "\n")
mean = round(sum(lens) / n)
with open(d + "/ideal.jsonl", "w") as f:
    for i in range(4 * b):   # four full batches, so that loading the model weighs little
        p = " ".join(random.choice(words) for _ in range(14))
        f.write(json.dumps({"id": i, "prompt": p, "max_tokens": mean}) + "\n")
print("records %d, answer tokens %d (mean %d), batch %d" % (n, sum(lens), mean, b), file=sys.stderr)
PY

pressure() { head -1 /proc/pressure/cpu 2>/dev/null | sed 's/ total=.*//'; }
stall_us() { head -1 /proc/pressure/cpu | sed 's/.*total=//'; }

# run NAME FILE ARGS...: prints "NAME tokens seconds tok/s rss_mb stall%" (stall%: the share of
# the run's wall time some task waited for a CPU, from /proc/pressure/cpu's total: a few
# percent on a quiet machine; much more means another process took cores, so the run is void)
run() {
    name=$1 file=$2
    shift 2
    s0=$(stall_us)
    /usr/bin/time -f "%e %M" -o "$TMP/time" "$GEN" -q -t "$T" "$@" < "$file" > "$TMP/out.jsonl"
    s1=$(stall_us)
    set -- $(cat "$TMP/time")
    stall=$(echo "($s1 - $s0) / ($1 * 10000)" | bc -l)
    toks=$(jq -s 'map(.completion_tokens) | add' "$TMP/out.jsonl")
    errs=$(jq -s 'map(select(.error)) | length' "$TMP/out.jsonl")
    [ "$errs" -eq 0 ] || { echo "$name: $errs records failed" >&2; exit 1; }
    echo "$name $toks $1 $(echo "$toks / $1" | bc -l) $(($2 / 1024)) $stall"
}

echo "| model | schedule | tokens | seconds | tokens/s | peak RSS MB | CPU stall % |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for M in $MODELS; do
    before=$(pressure)
    ideal=$(run ideal "$TMP/ideal.jsonl" -m "$M" --batch "$B" --lockstep)
    cont=$(run continuous "$TMP/mixed.jsonl" -m "$M" --batch "$B")
    lock=$(run lockstep "$TMP/mixed.jsonl" -m "$M" --batch "$B" --lockstep)
    after=$(pressure)
    for r in "$ideal" "$cont" "$lock"; do
        set -- $r
        printf '| %s | %s | %s | %.1f | %.2f | %s | %.1f |\n' "$(basename "$M")" "$1" "$2" "$3" "$4" "$5" "$6"
    done
    ci=$(echo "$cont" | cut -d' ' -f4)
    ii=$(echo "$ideal" | cut -d' ' -f4)
    li=$(echo "$lock" | cut -d' ' -f4)
    printf '\n%s: continuous/ideal %.3f, continuous/lockstep %.3f\n' "$(basename "$M")" \
        "$(echo "$ci / $ii" | bc -l)" "$(echo "$ci / $li" | bc -l)"
    echo "cpu pressure before: $before"
    echo "cpu pressure after:  $after"
    echo
done
