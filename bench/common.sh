# bench/common.sh - sourced by bench/run.sh and bench/ab.sh (from the repository
# root, with BUILD set): builds the library, bench_gen and triad, and runs the
# llama.cpp peer.

PKGS="jansson libpcre2-8 libutf8proc libzstd libcurl openblas"

build_bench() {
    make -j2 BUILD="$BUILD" "$BUILD/libmlxtools.a" >/dev/null
    mkdir -p bench/bin bench/out
    cc -std=c17 -D_GNU_SOURCE -O3 -march=x86-64-v3 -Ilib $(pkg-config --cflags $PKGS) bench/bench_gen.c \
        "$BUILD/libmlxtools.a" $(pkg-config --libs $PKGS) -lm -lpthread -o bench/bin/bench_gen
    cc -O2 -march=x86-64-v3 -pthread bench/triad.c -o bench/bin/triad
}

# The llama.cpp peer is llama.cpp's own llama-bench, built natively by
# tools/build-llama-cpp.sh (make llama-cpp; its commit, compiler and cmake flags
# are in bench/bin/llama-cpp.txt): LLAMA_BENCH defaults to bench/bin/llama-bench
# when that is there.  LLAMA_BENCH=/path/to/llama-bench names another build;
# LLAMA_BENCH= (set, empty) measures through llama-cpp-python instead.
if [ -z "${LLAMA_BENCH+set}" ] && [ -x bench/bin/llama-bench ]; then
    LLAMA_BENCH=bench/bin/llama-bench
fi
[ -z "${LLAMA_BENCH:-}" ] || export LLAMA_BENCH

# llama_peer GGUF THREADS PP TG REPS: one JSON line from llama.cpp, through a
# native llama-bench when $LLAMA_BENCH is set (REPS repetitions), else
# through llama-cpp-python.
llama_peer() {
    if [ -n "${LLAMA_BENCH:-}" ]; then
        python3 bench/peer_llamabench.py "$1" "$2" "$3" "$4" "$5"
    else
        python3 bench/peer_llama.py "$1" "$2" "$3" "$4"
    fi
}
