#!/bin/sh
# make llama-cpp: llama.cpp's own binaries, built natively for this machine, as the peer of
# the benchmarks (issue 26).  The source is the llama.cpp that the llama-cpp-python sdist on
# PyPI vendors (pip download, sha256-checked; no other network access).  Built with the flags
# a performance-minded user would use: a Release build with -march=native (GGML_NATIVE=ON),
# statically linked, the CPU backend only, llama.cpp's defaults otherwise (OpenMP, the
# llamafile kernels, Q4_0 repacking).  Installed into bench/bin/ (git-ignored):
#
#   llama-bench        what bench/run.sh and bench/ab.sh run when present (bench/common.sh)
#   llama-perplexity   perplexity on a text file
#   llama-completion   text generation (this version's llama-cli needs the server build)
#   llama-mtmd-cli     image + text -> text (tools/mtmd, with --mmproj): bench/vlm/run.sh
#   llama-quantize     GGUF quantization (bench/vlm/ makes its Q4_0 text models with it)
#
# bench/bin/llama-cpp.txt records the llama.cpp commit and version, the compiler, the CPU
# (-march=native binaries run on this CPU only) and the cmake flags.  A rerun with the
# binaries in place and the same record builds nothing; FORCE=1 rebuilds.  The sdist and the
# build tree stay in build-llama-cpp/ (git-ignored), so a rebuild downloads nothing.
# Without network access to PyPI the script fails with one line saying so.
# Environment: JOBS (parallel compiles, default 2), PYTHON (default python3; runs pip),
# CC/CXX (the compilers, cmake's choice by default), FORCE=1.
set -eu
cd "$(dirname "$0")/.."

PKG_VERSION=0.3.36
SDIST=llama_cpp_python-$PKG_VERSION.tar.gz
SDIST_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
# The sdist's vendor/llama.cpp (its CHANGELOG: "update llama.cpp to ggml-org/llama.cpp@0c1e57098";
# the sdist's .git/modules/vendor/llama.cpp/HEAD has the full hash, checked below).
COMMIT=0c1e57098
TARGETS="llama-bench llama-perplexity llama-completion llama-mtmd-cli llama-quantize"
# LLAMA_CURL is gone from this llama.cpp (deprecated and ignored); LLAMA_OPENSSL=OFF is its
# successor: no HTTPS model downloads.  The tests, examples, server and unified app are not
# configured (the targets above need none of them).
CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF -DLLAMA_OPENSSL=OFF
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF"
# The sdist carries a shallow clone: git would count one commit, so the build number (the
# b-number of a llama.cpp release) is unknown, set to 0; the commit is set from the sdist.
INFO_FLAGS="-DLLAMA_BUILD_COMMIT=$COMMIT -DLLAMA_BUILD_NUMBER=0"
JOBS=${JOBS:-2}
PY=${PYTHON:-python3}
WORK=build-llama-cpp
SRC=$WORK/llama_cpp_python-$PKG_VERSION
BLD=$WORK/build
OUT=bench/bin
REC=$OUT/llama-cpp.txt

TAG=build-llama-cpp
. tools/native-host.sh
key="llama.cpp $COMMIT, from the llama-cpp-python $PKG_VERSION sdist (PyPI, sha256 $SDIST_SHA256)
compiler: $compiler
cpu: ${cpu:-unknown}; -march=native is ${march:-unknown}${wide:+ $wide} (feature set $features)
cmake flags: $(one_line "$CMAKE_FLAGS $INFO_FLAGS")
targets: $TARGETS"

exit_if_built "llama.cpp $COMMIT (llama-cpp-python $PKG_VERSION sdist)"

sh tools/deps.sh cmake build-essential >&2
mkdir -p "$WORK" "$OUT"

# The sdist, downloaded when missing (pip also prepares its metadata: a minute or two), checked.
f=$WORK/$SDIST
if [ ! -f "$f" ] || [ "$(sha "$f")" != "$SDIST_SHA256" ]; then
  rm -f "$f"
  "$PY" -m pip --version >/dev/null 2>&1 || die "pip is not installed for $PY (python3-pip; or set PYTHON)"
  say "downloading the llama-cpp-python $PKG_VERSION sdist from PyPI"
  if ! "$PY" -m pip download -q --no-deps --no-binary :all: --retries 1 --timeout 20 -d "$WORK" \
      "llama-cpp-python==$PKG_VERSION" >/dev/null 2>"$WORK/pip.err"; then
    die "PyPI is not reachable: pip download llama-cpp-python==$PKG_VERSION failed ($(grep -v '^ *$' "$WORK/pip.err" | tail -n1 | cut -c1-120))"
  fi
  [ -f "$f" ] || die "pip did not write $f"
fi
got=$(sha "$f")
[ "$got" = "$SDIST_SHA256" ] || { rm -f "$f"; die "$SDIST: sha256 $got, expected $SDIST_SHA256 (removed)"; }

head_file=$SRC/.git/modules/vendor/llama.cpp/HEAD
if [ ! -f "$head_file" ] || [ ! -f "$SRC/vendor/llama.cpp/CMakeLists.txt" ]; then
  say "extracting $SDIST"
  rm -rf "$SRC"
  tar -xzf "$f" -C "$WORK" --no-same-owner
fi
full=$(cat "$head_file")
case "$full" in "$COMMIT"*) ;; *) die "$SDIST vendors llama.cpp $full, expected $COMMIT" ;; esac
version=$(sed -n 's/^set(LLAMA_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\))$/\2/p' "$SRC/vendor/llama.cpp/CMakeLists.txt" | paste -sd. -)

# A fresh build tree when the flags, compiler or CPU changed; otherwise cmake builds what changed
# (a new target list alone keeps the tree: cmake builds only the new targets).
no_targets() { sed '/^targets: /d'; }
if [ ! -f "$BLD/.key" ] || [ "$(no_targets <"$BLD/.key")" != "$(echo "$key" | no_targets)" ]; then rm -rf "$BLD"; fi
mkdir -p "$BLD"
start=$(date +%s)
say "configuring llama.cpp $COMMIT (version $version)"
# shellcheck disable=SC2086  # the flags are words
cmake -S "$SRC/vendor/llama.cpp" -B "$BLD" $CMAKE_FLAGS $INFO_FLAGS >"$BLD/configure.log" 2>&1 ||
  { tail -n 20 "$BLD/configure.log" >&2; die "cmake configure failed (all of it in $BLD/configure.log)"; }
printf '%s\n' "$key" >"$BLD/.key"
say "building $TARGETS with -j$JOBS (several minutes on 2 cores; the log is $BLD/build.log)"
# shellcheck disable=SC2086
cmake --build "$BLD" --config Release -j "$JOBS" --target $TARGETS >"$BLD/build.log" 2>&1 ||
  { tail -n 30 "$BLD/build.log" >&2; die "the build failed (all of it in $BLD/build.log)"; }
secs=$(($(date +%s) - start))

for t in $TARGETS; do install -m 755 "$BLD/bin/$t" "$OUT/$t"; done
{
  printf '%s\n' "$key"
  echo "---"
  echo "llama.cpp commit $full, CMakeLists.txt version $version"
  "$OUT/llama-bench" --version 2>&1 | sed 's/^/llama-bench --version: /'
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${secs} s with -j$JOBS (tools/build-llama-cpp.sh)"
} >"$REC"
say "installed $TARGETS into $OUT/ (llama.cpp $COMMIT, ${secs} s); see $REC"
