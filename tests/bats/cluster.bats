#!/usr/bin/env bats
# The multi-host recipes of mlx-tools-cluster(7) (tools/cluster/), run for real
# over three "hosts" on this machine: network namespaces joined to the root one
# by veth pairs (169.254.X.0/24, one /30 each), each with its own sshd and its
# own disk folder (tests/cluster/hosts.sh).  GNU parallel over ssh with
# --pipepart (mlx-embed; mlx-gen from a shipped KV-state file), a resumable run
# with one host's job killed and rerun (--joblog, --resume-failed), a Slurm
# array (--shard, --resume) with one task killed and rerun, and merge.sh: each
# merged output equals the one-host output byte for byte.  Skipped where hosts
# cannot be made (not root, no network namespaces, no sshd / parallel / rsync).

bats_require_minimum_version 1.5.0
load helpers

setup_file() {
  export CL="$BATS_FILE_TMPDIR/cl"
  # GNU parallel's own files (~/.parallel) go here too
  export PARALLEL_HOME="$BATS_FILE_TMPDIR/parallel"
  local why=
  for c in parallel rsync jq; do
    command -v $c > /dev/null || why="${why:-no $c installed}"
  done
  if [ -z "$why" ]; then
    local rc=0
    timeout 120 sh tests/cluster/hosts.sh up "$CL" 3 2> "$BATS_FILE_TMPDIR/up.err" || rc=$?
    if [ $rc -eq 77 ]; then
      why=$(tail -n 1 "$BATS_FILE_TMPDIR/up.err")
    elif [ $rc -ne 0 ]; then
      cat "$BATS_FILE_TMPDIR/up.err" >&2
      return 1
    fi
  fi
  if [ -n "$why" ]; then
    echo "$why" > "$BATS_FILE_TMPDIR/skip"
  fi
}

teardown_file() {
  timeout 60 sh tests/cluster/hosts.sh down "$CL"
}

setup() {
  B=${MT_BUILD:-build}
  case $B in /*) ;; *) B="$PWD/$B" ;; esac
  GEN="$B/bin/mlx-gen"
  EMB="$B/bin/mlx-embed"
  KV="$B/bin/mlx-kvpack"
  L=tests/data/models/llama-tiny
  E=tests/data/embed/bert-tiny
  T="$BATS_TEST_TMPDIR"
  PSSH=tools/cluster/parallel-ssh.sh
  MERGE=tools/cluster/merge.sh
  export SSH="ssh -F $CL/ssh_config"
}

# the tests that need the hosts skip here when they could not be made
need_hosts() {
  if [ -f "$BATS_FILE_TMPDIR/skip" ]; then
    skip "no hosts for the cluster recipes: $(cat "$BATS_FILE_TMPDIR/skip")"
  fi
}

# hostjob HOST NAME PATTERN: the pid of a process NAME in HOST's namespace whose
# command line matches PATTERN (grep -E), or nothing
hostjob() {
  local ns p
  ns=$(sed -n "s/^\(mlxt-.*-$1\) .*/\1/p" "$CL/state")
  for p in $(ip netns pids "$ns" 2> /dev/null); do
    [ "$(cat "/proc/$p/comm" 2> /dev/null)" = "$2" ] || continue
    if tr '\0' ' ' < "/proc/$p/cmdline" 2> /dev/null | grep -Eq -- "$3"; then
      echo "$p"
      return 0
    fi
  done
}

# ids_once FILE N: FILE holds N lines with N distinct ids
ids_once() {
  [ "$(wc -l < "$1")" -eq "$2" ]
  [ "$(jq -r '.id | tojson' "$1" | sort -u | wc -l)" -eq "$2" ]
}

@test "parallel over ssh, --pipepart: mlx-embed on 3 hosts equals one host byte for byte; the model is on each host's disk" {
  need_hosts
  for i in $(seq 1 300); do
    printf '{"id":"e%03d","text":"record %d of the cluster test, about package %d"}\n' "$i" "$i" $((i * 7 % 97))
  done > "$T/in.jsonl"
  "$EMB" -m "$E" -q -t 1 < "$T/in.jsonl" > "$T/one.jsonl"
  PARALLEL_OPTS="--joblog $T/jobs" run --separate-stderr timeout 120 sh "$PSSH" -S "$CL/sshlogins" -i "$T/in.jsonl" \
    -m "$E" -r "$CL/node" -- "$EMB" -q -t 1
  echo "$stderr"
  [ "$status" -eq 0 ]
  printf '%s\n' "$output" > "$T/many.jsonl"
  cmp "$T/one.jsonl" "$T/many.jsonl"
  # three blocks per job slot (-b -3): 9 jobs, each host ran some
  [ "$(tail -n +2 "$T/jobs" | wc -l)" -eq 9 ]
  for h in h1 h2 h3; do
    cut -f 2 "$T/jobs" | grep -qx "$h"
    # each host has its own copy of the model, the root namespace has none: the
    # jobs read their host's copy
    diff -r "$E" "$CL/hosts/$h/models/bert-tiny"
  done
  [ -z "$(ls -A "$CL/node")" ]
}

@test "parallel over ssh: mlx-gen continues a KV-state file shipped to every host; the answers equal one host's" {
  need_hosts
  echo '{"id":"sys","prompt":"The Debian package manager installs"}' \
    | "$KV" build -q -t 1 -m "$L" -o "$T/sys.kv.zst" > /dev/null
  for i in $(seq 1 120); do
    printf '{"id":%d,"prompt":" package number %d and","max_tokens":%d}\n' "$i" "$i" $((3 + i % 5))
  done > "$T/in.jsonl"
  "$GEN" -m "$L" -q -t 1 --reproducible --prompt-cache "$T/sys.kv.zst" < "$T/in.jsonl" > "$T/one.jsonl"
  # the cache matters: without it the answers differ
  "$GEN" -m "$L" -q -t 1 --reproducible < "$T/in.jsonl" > "$T/nocache.jsonl"
  ! cmp -s "$T/one.jsonl" "$T/nocache.jsonl"
  run --separate-stderr timeout 120 sh "$PSSH" -S "$CL/sshlogins" -i "$T/in.jsonl" -b 1K \
    -m "$L" -k "$T/sys.kv.zst" -r "$CL/node" -- "$GEN" -q -t 1 --reproducible
  echo "$stderr"
  [ "$status" -eq 0 ]
  printf '%s\n' "$output" > "$T/many.jsonl"
  cmp "$T/one.jsonl" "$T/many.jsonl"
  for h in h1 h2 h3; do
    cmp "$T/sys.kv.zst" "$CL/hosts/$h/kv/sys.kv.zst"
    diff -r "$L" "$CL/hosts/$h/models/llama-tiny"
  done
}

@test "parallel over ssh, resumable (-j): a host's job killed mid-run fails its chunk; the rerun (--resume-failed) runs only it, nothing lost or doubled" {
  need_hosts
  for i in $(seq 1 240); do
    printf '{"id":"g%03d","prompt":"chunk test %d:","max_tokens":%d}\n' "$i" "$i" $((200 + i % 50))
  done > "$T/in.jsonl"
  "$GEN" -m "$L" -q -t 1 --reproducible < "$T/in.jsonl" > "$T/one.jsonl"
  sh "$PSSH" -S "$CL/sshlogins" -i "$T/in.jsonl" -j "$T/run.joblog" -l 40 -m "$L" -r "$CL/node" \
    -- "$GEN" -q -t 1 --reproducible > "$T/many.jsonl" 2> "$T/err1" &
  job=$!
  # kill h2's first job (its mlx-gen) as soon as it runs
  pid=
  for _ in $(seq 1 1500); do
    pid=$(hostjob h2 mlx-gen 'mlx-gen .*--reproducible')
    [ -n "$pid" ] && break
    sleep 0.01
  done
  [ -n "$pid" ]
  kill -9 "$pid"
  wait_bounded $job 120
  cat "$T/err1"
  [ "$WAIT_STATUS" -eq 1 ]
  grep -q 'chunk(s) [0-9]* of 6 failed' "$T/err1"
  [ ! -s "$T/many.jsonl" ]
  [ "$(tail -n +2 "$T/run.joblog" | wc -l)" -eq 6 ]
  [ "$(tail -n +2 "$T/run.joblog" | awk -F '\t' '$7 + $8 != 0' | wc -l)" -eq 1 ]
  # the same command again: the failed chunk alone runs
  run --separate-stderr timeout 120 sh "$PSSH" -S "$CL/sshlogins" -i "$T/in.jsonl" -j "$T/run.joblog" -l 40 \
    -m "$L" -r "$CL/node" -- "$GEN" -q -t 1 --reproducible
  echo "$stderr"
  [ "$status" -eq 0 ]
  [ "$(tail -n +2 "$T/run.joblog" | wc -l)" -eq 7 ]
  printf '%s\n' "$output" > "$T/many.jsonl"
  cmp "$T/one.jsonl" "$T/many.jsonl"
  ids_once "$T/many.jsonl" 240
  # and once more: nothing left to run
  run --separate-stderr timeout 120 sh "$PSSH" -S "$CL/sshlogins" -i "$T/in.jsonl" -j "$T/run.joblog" -l 40 \
    -m "$L" -r "$CL/node" -- "$GEN" -q -t 1 --reproducible
  [ "$status" -eq 0 ]
  [ "$(tail -n +2 "$T/run.joblog" | wc -l)" -eq 7 ]
  # a changed command is refused, not mixed into the answers
  run --separate-stderr timeout 120 sh "$PSSH" -S "$CL/sshlogins" -i "$T/in.jsonl" -j "$T/run.joblog" -l 40 \
    -m "$L" -r "$CL/node" -- "$GEN" -q -t 2 --reproducible
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"the command changed"* ]]
}

@test "Slurm array recipe (--shard, --resume) on 3 hosts: a task killed mid-run resumes from its own file; merge.sh gives the one-host output" {
  need_hosts
  # no ids: every task reads the whole input, so the default ids (line numbers,
  # a blank line included) are those of a one-host run
  for i in $(seq 1 300); do
    printf '{"prompt":"array task test %d:","max_tokens":%d}\n' "$i" $((300 + i % 90))
    if [ "$i" -eq 7 ]; then echo; fi
  done > "$T/in.jsonl"
  "$GEN" -m "$L" -q -t 1 --reproducible < "$T/in.jsonl" > "$T/one.jsonl"
  # task K of 3 on host h(K+1), as sbatch --array=0-2 would start it on three nodes
  task() {
    $SSH "h$(($1 + 1))" "SLURM_ARRAY_TASK_ID=$1 SLURM_ARRAY_TASK_COUNT=3 sh $PWD/tools/cluster/slurm-array.sbatch" \
      "$T/in.jsonl" "$T/out" "$GEN" -m "$PWD/$L" -q -t 1 --reproducible
  }
  for k in 0 1 2; do
    task $k > "$T/task$k.log" 2>&1 &
    eval "t$k=\$!"
  done
  # task 1 killed once its answers file has some lines
  for _ in $(seq 1 1500); do
    [ "$(cat "$T/out.1.jsonl" 2> /dev/null | wc -l)" -ge 3 ] && break
    sleep 0.01
  done
  pid=$(hostjob h2 mlx-gen 'mlx-gen .*--shard 1/3')
  [ -n "$pid" ]
  kill -9 "$pid"
  for k in 0 1 2; do
    eval "wait_bounded \$t$k 120"
    eval "st$k=$WAIT_STATUS"
  done
  cat "$T/task1.log"
  [ "$st0" -eq 0 ] && [ "$st2" -eq 0 ] && [ "$st1" -ne 0 ]
  [ "$(cat "$T/out.shards")" = 3 ]
  [ "$(wc -l < "$T/out.0.jsonl")" -eq 100 ]
  done1=$(wc -l < "$T/out.1.jsonl")
  [ "$done1" -ge 3 ] && [ "$done1" -lt 100 ]
  # the merge refuses an incomplete shard
  run --separate-stderr sh "$MERGE" shard -i "$T/in.jsonl" "$T/out.0.jsonl" "$T/out.1.jsonl" "$T/out.2.jsonl"
  [ "$status" -eq 1 ]
  [[ "$stderr" == *"shard 1"*"incomplete"* ]]
  # task 1 again (a resubmission of that task alone: SLURM_ARRAY_TASK_COUNT is 1,
  # the shard count comes from out.shards) goes on from its file
  run --separate-stderr timeout 120 $SSH h2 "SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=1 sh $PWD/tools/cluster/slurm-array.sbatch" \
    "$T/in.jsonl" "$T/out" "$GEN" -m "$PWD/$L" --reproducible -t 1
  echo "$stderr"
  [ "$status" -eq 0 ]
  before=$(echo "$stderr" | sed -n 's/.* \([0-9][0-9]*\) answered before.*/\1/p')
  # (a line cut short by the kill is dropped)
  [ "$before" -ge 2 ] && [ "$before" -ge $((done1 - 1)) ]
  [ "$(wc -l < "$T/out.1.jsonl")" -eq 100 ]
  sh "$MERGE" shard -i "$T/in.jsonl" "$T/out.0.jsonl" "$T/out.1.jsonl" "$T/out.2.jsonl" > "$T/merged.jsonl"
  cmp "$T/one.jsonl" "$T/merged.jsonl"
  # the merge by id, from the files in any order, gives the same
  sh "$MERGE" ids "$T/in.jsonl" "$T/out.2.jsonl" "$T/out.0.jsonl" "$T/out.1.jsonl" > "$T/merged2.jsonl"
  cmp "$T/one.jsonl" "$T/merged2.jsonl"
  ids_once "$T/merged.jsonl" 300
}

@test "merge.sh ids: input order by key, duplicate keys in order, missing and extra answers reported" {
  printf '%s\n' '{"id":"a","x":1}' '' '{"x":2}' '{"id":"a","x":3}' '{"custom_id":"c","body":{}}' '{"id":5}' > "$T/in.jsonl"
  printf '%s\n' '{"id":"a","v":1}' '{"id":3,"v":2}' > "$T/o1"
  printf '%s\n' '{"id":"batch_req_1","custom_id":"c","response":{}}' '{"id":"a","v":3}' '{"id":"zz"}' > "$T/o2"
  run --separate-stderr sh "$MERGE" ids "$T/in.jsonl" "$T/o2" "$T/o1"
  [ "$status" -eq 1 ]
  [ "${lines[0]}" = '{"id":"a","v":3}' ]
  [ "${lines[1]}" = '{"id":3,"v":2}' ]
  [ "${lines[2]}" = '{"id":"a","v":1}' ]
  [ "${lines[3]}" = '{"id":"batch_req_1","custom_id":"c","response":{}}' ]
  [ "${#lines[@]}" -eq 4 ]
  [[ "$stderr" == *'no answer for the record with key 5'* ]]
  [[ "$stderr" == *'key "zz" that no record'* ]]
  # --text: every line is a record keyed by its line number
  printf 'one\n\nthree\n' > "$T/t.txt"
  printf '%s\n' '{"id":3,"t":"three"}' '{"id":2,"t":""}' '{"id":1,"t":"one"}' > "$T/t.out"
  run --separate-stderr sh "$MERGE" ids --text "$T/t.txt" "$T/t.out"
  [ "$status" -eq 0 ]
  [ "$output" = "$(printf '%s\n' '{"id":1,"t":"one"}' '{"id":2,"t":""}' '{"id":3,"t":"three"}')" ]
}

@test "merge.sh shard: round-robin of shard files; shards out of order or short are refused" {
  printf '%s\n' 1 4 7 > "$T/s0"; printf '%s\n' 2 5 > "$T/s1"; printf '%s\n' 3 6 > "$T/s2"
  run sh "$MERGE" shard "$T/s0" "$T/s1" "$T/s2"
  [ "$status" -eq 0 ]
  [ "$output" = "$(seq 1 7)" ]
  seq 1 7 > "$T/in"
  run sh "$MERGE" shard -i "$T/in" "$T/s0" "$T/s1" "$T/s2"
  [ "$status" -eq 0 ]
  run sh "$MERGE" shard -i "$T/in" "$T/s0" "$T/s1"
  [ "$status" -eq 1 ]
  run sh "$MERGE" shard "$T/s1" "$T/s0" "$T/s2"
  [ "$status" -eq 1 ]
  printf '%s\n' 2 > "$T/s1"
  run sh "$MERGE" shard "$T/s0" "$T/s1" "$T/s2"
  [ "$status" -eq 1 ]
}
