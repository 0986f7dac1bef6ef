#!/bin/sh
# run.sh - build bench_tokenize against the library and compare its encode
# throughput with HF tokenizers (one thread, per-line encode and encode_batch)
# on every test tokenizer. Figures are per CPU-second of the single thread.  Every run goes
# through bench/quiet.py's gate (redone while the CPU is not quiet: stall over MAX_STALL % with
# other processes busy; its JSON line on stderr).
# Usage: BUILD=build PYTHON=python3 sh bench/tokenize/run.sh [reps]   (from the repository root)
set -e
REPS=${1:-3}
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-python3}
GATE="python3 bench/quiet.py --max-stall ${MAX_STALL:-3} --gate --"
make -s BUILD="$BUILD" "$BUILD/libmlxtools.a"
PKGS="jansson libpcre2-8 libutf8proc libzstd"
cc -O3 -march=x86-64-v3 -std=c17 -D_GNU_SOURCE -Ilib $(pkg-config --cflags $PKGS) bench/tokenize/bench_tokenize.c \
   "$BUILD/libmlxtools.a" $(pkg-config --libs $PKGS) -lm -lpthread -o "$BUILD/bench_tokenize"
CORPUS=tests/data/tokenizers/corpus.txt
printf '%-16s %9s %9s %9s %7s %7s %11s %11s\n' tokenizer ours_MB/s hf_MB/s hfbatch ratio ratio_b ours_tok/s hf_tok/s
for d in tests/data/tokenizers/*/tokenizer.json.zst; do
  name=$(basename "$(dirname "$d")")
  ours=$($GATE "$BUILD/bench_tokenize" "$d" $CORPUS "$REPS")
  omb=$(echo "$ours" | awk '{for(i=1;i<=NF;i++) if($i=="MB/s") print $(i+1)}')
  otk=$(echo "$ours" | awk '{for(i=1;i<=NF;i++) if($i=="tokens/s") print $(i+1)}')
  hf=$($GATE env RAYON_NUM_THREADS=1 "$PYTHON" bench/tokenize/hf_bench.py "$d" $CORPUS "$REPS")
  hfs=$(echo "$hf" | awk '{print $3}'); htk=$(echo "$hf" | awk '{print $5}'); hfb=$(echo "$hf" | awk '{print $8}')
  printf '%-16s %9s %9s %9s %7.2f %7.2f %11s %11s\n' "$name" "$omb" "$hfs" "$hfb" \
    "$(echo "$omb / $hfs" | bc -l)" "$(echo "$omb / $hfb" | bc -l)" "$otk" "$htk"
done
