#!/bin/sh
# merge.sh - put the answers of a job split over hosts back in input order.
#
#   merge.sh shard [-i INPUT] [--text] OUT.0 OUT.1 ... OUT.(N-1) > merged.jsonl
#   merge.sh ids [--text] INPUT OUT... > merged.jsonl
#
# shard: the outputs of N processes run with --shard K/N (K = 0..N-1) over the
#   same input, given in K order.  Shard K answered the records at positions
#   K, K+N, K+2N, ... in input order, one line each, so a round-robin of the
#   files is the one-process output; it streams (paste + sed), any size.  The
#   files' line counts are checked first (shard K holds as many lines as shard
#   0 or one fewer, never more): a shard cut short (killed, not yet resumed)
#   is reported instead of merging out of order.  With -i INPUT the total is
#   checked against INPUT's records (non-blank lines; every line with --text).
#   It needs one line per record: with duplicate ids under --resume (the
#   duplicates are not run) use "ids".
#
# ids: any outputs (shards, --pipepart jobs, chunk files, in any order) matched
#   to INPUT by key: a record's "custom_id", else its "id", else its line
#   number (every line is a record with --text, keyed by its line number).
#   Lines are written as they are (bytes unchanged), in input order; a key
#   given twice in the input takes the answers for it in the order they come
#   in OUT...  Records with no answer, and answers no record asks for, are
#   reported on stderr and make the exit status 1 (the merged lines are still
#   written).  It holds the answers in memory (awk), and needs jq.
set -eu

usage() {
  sed -n '3,4p' "$0" | sed 's/^# *//' >&2
  exit 2
}

# records in a file: non-blank lines (every line with --text)
count_records() {
  if [ "$2" = 1 ]; then wc -l < "$1"; else grep -c '[^[:space:]]' "$1" || true; fi
}

mode=${1:-}; [ $# -gt 0 ] && shift
case $mode in
shard)
  input=; text=0
  while [ $# -gt 0 ]; do
    case $1 in
      -i) input=$2; shift 2 ;;
      --text) text=1; shift ;;
      --) shift; break ;;
      -*) usage ;;
      *) break ;;
    esac
  done
  [ $# -gt 0 ] || usage
  first=; total=0; k=0
  for f in "$@"; do
    [ -f "$f" ] || { echo "merge.sh: $f: no such file (shard $k)" >&2; exit 1; }
    n=$(wc -l < "$f")
    [ -n "$first" ] || first=$n
    if [ "$n" -gt "$first" ] || [ "$n" -lt $((first - 1)) ]; then
      echo "merge.sh: $f (shard $k) has $n lines, shard 0 has $first: a shard is incomplete (rerun it with --resume) or the files are not in shard order" >&2
      exit 1
    fi
    total=$((total + n)); k=$((k + 1))
  done
  # after a shard with one line fewer, every later shard has one fewer too
  k=0; short=0
  for f in "$@"; do
    n=$(wc -l < "$f")
    if [ "$n" -lt "$first" ]; then short=1
    elif [ $short = 1 ]; then
      echo "merge.sh: $f (shard $k) has more lines than an earlier shard: a shard is incomplete or the files are not in shard order" >&2
      exit 1
    fi
    k=$((k + 1))
  done
  if [ -n "$input" ]; then
    want=$(count_records "$input" $text)
    [ "$total" -eq "$want" ] || {
      echo "merge.sh: the shards hold $total lines, $input has $want records" >&2
      exit 1
    }
  fi
  # one line of each shard in turn; an exhausted shard gives an empty line
  paste -d '\n' "$@" | sed '/^$/d'
  ;;
ids)
  text=0
  [ "${1:-}" = --text ] && { text=1; shift; }
  [ $# -ge 2 ] || usage
  command -v jq > /dev/null || { echo "merge.sh: ids needs jq" >&2; exit 1; }
  input=$1; shift
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  trap 'exit 1' INT TERM HUP
  # the input's keys, one per record, as compact JSON ("?" for a line that is not JSON)
  jq -R -n -r --argjson text $text '
    foreach inputs as $l (0; . + 1;
      if $text == 1 then tojson
      elif ($l | test("^\\s*$")) then empty
      else . as $n | ($l | try (fromjson | if type == "object" then (.custom_id // .id // $n) else $n end) catch $n) | tojson
      end)' "$input" > "$tmp/keys"
  # each answer line after its key and a tab (the line itself is kept byte for byte)
  for f in "$@"; do
    jq -R -r 'try (fromjson | .custom_id // .id | tojson) catch "?"' "$f" > "$tmp/k"
    paste "$tmp/k" "$f" >> "$tmp/answers"
  done
  [ -f "$tmp/answers" ] || : > "$tmp/answers"
  awk -F '\t' '
    NR == FNR { k = $1; n[k]++; a[k, n[k]] = substr($0, length(k) + 2); next }
    { k = $0; u[k]++
      if (u[k] <= n[k]) print a[k, u[k]]
      else { printf "merge.sh: no answer for the record with key %s (record %d)\n", k, FNR > "/dev/stderr"; bad = 1 } }
    END {
      for (k in n) if (n[k] > u[k] + 0) {
        printf "merge.sh: %d answer(s) with key %s that no record of the input asks for\n", n[k] - u[k], k > "/dev/stderr"; bad = 1 }
      exit bad
    }' "$tmp/answers" "$tmp/keys"
  ;;
*) usage ;;
esac
