#!/bin/sh
# parallel-ssh.sh - one mlx-tools filter over many hosts with GNU parallel and ssh.
#
#   parallel-ssh.sh -S SSHLOGINFILE -i INPUT [-m MODEL] [-k KVFILE] [-r REMOTE]
#                   [-b BLOCK | -j JOBLOG [-l N]] -- PROG [ARGS...] > OUTPUT
#
#   -S FILE    GNU parallel --sshloginfile: one host a line, "[slots/]host" or
#              "[slots/]ssh-command host" (e.g. "4/node1", "8/ssh -p 2222 node2"; ":" is
#              this machine).  Give the slots: with -t 1 per job, slots = cores.
#   -i FILE    the input, a JSONL file (a regular file: --pipepart seeks in it).  Give
#              every record an "id" (or "custom_id"): a job sees a part of the input, and
#              a record without one would get its line number within that part.
#   -m DIR     a model folder, rsync'd once per host to REMOTE/models/NAME (a second run
#              copies nothing); PROG gets "-m REMOTE/models/NAME".  Symbolic links are
#              copied as the files they point to, so a Hugging Face cache snapshot folder
#              ($HF_HOME/hub/models--ORG--NAME/snapshots/REV) works.
#   -k FILE    a KV-state file from a first stage (mlx-kvpack build, mlx-gen
#              --save-prompt-cache), rsync'd once per host to REMOTE/kv/NAME; PROG gets
#              "--prompt-cache REMOTE/kv/NAME".
#   -r DIR     the folder on every host for models, KV files and work files (default
#              mlx-cluster, under the remote home).
#   -b SIZE    --pipepart block size (default -3: three blocks per job slot; positive:
#              bytes, with K/M/G suffixes).  The answers are written as they come, in
#              input order (--keep-order).  A job that fails (a host lost, a process
#              killed) leaves its block unanswered: the exit status is 1 and the output
#              incomplete; rerun, or use -j.
#   -j JOBLOG  a resumable run: INPUT is split once into chunks of N records (-l, default
#              100) under JOBLOG.d/, each chunk is a job (shipped to its host with
#              --transferfile, answered there, its answers kept in JOBLOG.d/out/SEQ),
#              and the same command run again reruns only the chunks that failed or did
#              not run (--joblog JOBLOG --resume-failed).  The output is written once
#              every chunk succeeded.  Remove JOBLOG and JOBLOG.d to start over.
#              (GNU parallel's --resume-failed cannot be used with --pipepart: the rerun
#              jobs are handed other blocks than the ones that failed.)
#
# Environment: SSH, the ssh command for parallel and rsync (default ssh; e.g.
# "ssh -F ~/.ssh/cluster_config"); PARALLEL_OPTS, more options for parallel
# (e.g. "--retries 2").  PROG must be installed on every host (a path or a name on
# the remote PATH); use ARGS "-t 1" when a host runs several jobs (slots) at once.
#
# Examples:
#   jq -c '. + {id: input_line_number}' docs.jsonl > in.jsonl      # ids first
#   parallel-ssh.sh -S hosts -i in.jsonl -m ~/models/bge-small -- mlx-embed -q -t 1 > vectors.jsonl
#   parallel-ssh.sh -S hosts -i chats.jsonl -m ~/models/qwen3 -k cache/system.kv.zst \
#       -j run1.joblog -- mlx-gen -q -t 1 --reproducible > answers.jsonl   # again after a failure
set -eu

me=parallel-ssh.sh
die() { echo "$me: $*" >&2; exit 1; }
usage() { sed -n '4,5p' "$0" | sed 's/^# *//' >&2; exit 2; }

SSH=${SSH:-ssh}
slf=; input=; model=; kv=; remote=mlx-cluster; block=-3; joblog=; chunk=100
while getopts S:i:m:k:r:b:j:l:h o; do
  case $o in
    S) slf=$OPTARG ;; i) input=$OPTARG ;; m) model=${OPTARG%/} ;; k) kv=$OPTARG ;;
    r) remote=${OPTARG%/} ;; b) block=$OPTARG ;; j) joblog=$OPTARG ;; l) chunk=$OPTARG ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] && [ -n "$slf" ] && [ -n "$input" ] || usage
[ -f "$slf" ] || die "$slf: no such sshloginfile"
[ -f "$input" ] || die "$input: not a regular file"
[ -z "$model" ] || [ -d "$model" ] || die "$model: not a folder"
[ -z "$kv" ] || [ -f "$kv" ] || die "$kv: no such file"
command -v parallel > /dev/null || die "GNU parallel is not installed"
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$(pwd)/$1" ;; esac; }
slf=$(abs "$slf"); input=$(abs "$input")

# q WORD: WORD quoted for the remote shell
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
# rq PATH: a remote path as a shell word, under the remote home when relative
rq() { case $1 in /*) q "$1" ;; *) printf '"$HOME"/%s' "$(q "$1")" ;; esac; }

# the job's command line, run by the remote shell
cmd=
for w in "$@"; do cmd="$cmd${cmd:+ }$(q "$w")"; done
[ -z "$model" ] || cmd="$cmd -m $(rq "$remote/models/${model##*/}")"
[ -z "$kv" ] || cmd="$cmd --prompt-cache $(rq "$remote/kv/${kv##*/}")"

# --- ship the model folder and the KV file once to each host (rsync: only what changed)
if [ -n "$model$kv" ]; then
  pids=
  # sshloginfile lines: "[slots/]host" or "[slots/]ssh-command ... host"; ":" is here
  sed -e 's/#.*//' -e 's|^[0-9][0-9]*/||' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$slf" \
    | grep -v '^:\{0,1\}$' | sort -u > "${TMPDIR:-/tmp}/$me.$$.hosts"
  while read -r line; do
    host=${line##* }; sshc=${line% *}; [ "$sshc" = "$line" ] && sshc=$SSH
    (
      $sshc "$host" "mkdir -p $(q "$remote")/models $(q "$remote")/kv" < /dev/null
      [ -z "$model" ] || rsync -rtL --delete -e "$sshc" "$model/" "$host:$remote/models/${model##*/}/"
      [ -z "$kv" ] || rsync -tL -e "$sshc" "$kv" "$host:$remote/kv/${kv##*/}"
    ) || { echo "$me: $host: copying the model / KV file failed" >&2; exit 1; } &
    pids="$pids $!"
  done < "${TMPDIR:-/tmp}/$me.$$.hosts"
  rm -f "${TMPDIR:-/tmp}/$me.$$.hosts"
  failed=0
  for p in $pids; do wait "$p" || failed=1; done
  [ $failed = 0 ] || die "the model / KV file did not reach every host"
fi

# --- one pass over the input, the blocks answered in parallel, the answers in input order
if [ -z "$joblog" ]; then
  st=0
  # shellcheck disable=SC2086
  parallel --ssh "$SSH" --sshloginfile "$slf" --pipepart -a "$input" --block "$block" \
    --keep-order ${PARALLEL_OPTS:-} "$cmd" || st=$?
  [ $st = 0 ] || die "$st job(s) failed (exit 3: some records have error lines; others: the job died): the output lacks their blocks; rerun, or use -j JOBLOG"
  exit 0
fi

# --- a resumable run: the input split once into chunks, one job each
joblog=$(abs "$joblog"); S=$joblog.d
mkdir -p "$S/out"
sum=$(cksum < "$input")
if [ -f "$S/input.cksum" ]; then
  [ "$(cat "$S/input.cksum")" = "$sum" ] && [ "$(cat "$S/chunk")" = "$chunk" ] \
    || die "$input or -l changed since $joblog was started: remove $joblog and $S to start over"
  [ "$(cat "$S/command")" = "$cmd" ] \
    || die "the command changed since $joblog was started: remove $joblog and $S to start over"
else
  rm -rf "$S/chunks" && mkdir "$S/chunks"
  split -l "$chunk" -a 6 -d "$input" "$S/chunks/c."
  printf '%s\n' "$cmd" > "$S/command"
  echo "$chunk" > "$S/chunk"
  echo "$sum" > "$S/input.cksum"
fi
n=$(ls "$S/chunks" | wc -l)
st=0
# shellcheck disable=SC2086
(cd "$S/chunks" && ls | parallel --ssh "$SSH" --sshloginfile "$slf" \
  --workdir "$remote/work/$(hostname).$$" --transferfile {} --cleanup \
  --joblog "$joblog" --resume-failed --results "$S/out/{#}" ${PARALLEL_OPTS:-} "$cmd < {}") \
  || st=$?
# every chunk's latest run succeeded (exit 0, no signal)?
bad=$(awk -F '\t' -v n="$n" 'NR > 1 { e[$1] = $7 + $8 }
  END { for (i = 1; i <= n; i++) if (!(i in e) || e[i] != 0) printf " %d", i }' "$joblog")
[ -z "$bad" ] || die "chunk(s)$bad of $n failed or did not run (exit status $st): run the same command again to rerun them (joblog $joblog)"
i=1
while [ $i -le "$n" ]; do cat "$S/out/$i"; i=$((i + 1)); done
