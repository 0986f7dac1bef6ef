#!/bin/sh
# make whisper-cpp: whisper.cpp's own whisper-cli, built natively for this machine, as the
# peer of the speech-to-text benchmark (bench/stt/run.sh, WHISPER_CLI; issue 26).  The
# pywhispercpp wheel on PyPI is a generic build, many times slower than a native one, so the
# benchmark runs this binary instead.  The source is the whisper.cpp that the pywhispercpp
# sdist on PyPI vendors (pip download, sha256-checked; no other network access).  Built the
# way a performance-minded user would: a Release build with -march=native (GGML_NATIVE=ON),
# statically linked, the CPU backend only, whisper.cpp's defaults otherwise (OpenMP, no BLAS).
# Installed into bench/bin/ (git-ignored):
#
#   whisper-cli        what bench/stt/run.sh runs when WHISPER_CLI names it
#
# bench/bin/whisper-cpp.txt records the whisper.cpp version (the sdist has no .git: the
# vendored tree is identified by the sdist's sha256 and whisper.cpp's CMakeLists version), the
# compiler, the CPU (-march=native binaries run on this CPU only) and the cmake flags.  A rerun
# with the binary in place and the same record builds nothing; FORCE=1 rebuilds.  The sdist and
# the build tree stay in build-whisper-cpp/ (git-ignored), so a rebuild downloads nothing.
# Without network access to PyPI the script fails with one line saying so.
# Environment: JOBS (parallel compiles, default 2), NICE (niceness of the compile, default 10),
# PYTHON (default python3; runs pip), CC/CXX, EXTRA_CMAKE_FLAGS (e.g. "-DGGML_BLAS=ON
# -DGGML_BLAS_VENDOR=OpenBLAS", recorded with the rest), FORCE=1.
set -eu
cd "$(dirname "$0")/.."

PKG_VERSION=1.5.1
SDIST=pywhispercpp-$PKG_VERSION.tar.gz
SDIST_SHA256=5df897e5dd9d9f16804fc937bd85b9f5880a0b29a55f8843585e0e03d76195e5
# whisper.cpp's own version in the vendored CMakeLists.txt (checked below)
WVERSION=1.8.5
TARGETS="whisper-cli"
CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF
-DWHISPER_BUILD_TESTS=OFF -DWHISPER_BUILD_EXAMPLES=ON -DWHISPER_BUILD_SERVER=OFF
-DWHISPER_SDL2=OFF -DWHISPER_CURL=OFF -DWHISPER_FFMPEG=OFF ${EXTRA_CMAKE_FLAGS:-}"
JOBS=${JOBS:-2}
NICE=${NICE:-10}
PY=${PYTHON:-python3}
WORK=build-whisper-cpp
SRC=$WORK/pywhispercpp-$PKG_VERSION
BLD=$WORK/build
OUT=bench/bin
REC=$OUT/whisper-cpp.txt

TAG=build-whisper-cpp
. tools/native-host.sh
key="whisper.cpp $WVERSION, from the pywhispercpp $PKG_VERSION sdist (PyPI, sha256 $SDIST_SHA256; no git commit in the sdist)
compiler: $compiler
cpu: ${cpu:-unknown}; -march=native is ${march:-unknown}${wide:+ $wide} (feature set $features)
cmake flags: $(one_line "$CMAKE_FLAGS")
targets: $TARGETS"

exit_if_built "whisper.cpp $WVERSION (pywhispercpp $PKG_VERSION sdist)"

sh tools/deps.sh cmake build-essential >&2
mkdir -p "$WORK" "$OUT"

# The sdist, downloaded when missing, checked.  --no-binary names pywhispercpp alone: its build
# dependencies (cmake, ninja, ...) come as wheels while pip prepares the metadata.
f=$WORK/$SDIST
if [ ! -f "$f" ] || [ "$(sha "$f")" != "$SDIST_SHA256" ]; then
  rm -f "$f"
  "$PY" -m pip --version >/dev/null 2>&1 || die "pip is not installed for $PY (python3-pip; or set PYTHON)"
  say "downloading the pywhispercpp $PKG_VERSION sdist from PyPI"
  if ! "$PY" -m pip download -q --no-deps --no-binary pywhispercpp --retries 1 --timeout 20 -d "$WORK" \
      "pywhispercpp==$PKG_VERSION" >/dev/null 2>"$WORK/pip.err"; then
    die "PyPI is not reachable: pip download pywhispercpp==$PKG_VERSION failed ($(grep -v '^ *$' "$WORK/pip.err" | tail -n1 | cut -c1-120))"
  fi
  [ -f "$f" ] || die "pip did not write $f"
fi
got=$(sha "$f")
[ "$got" = "$SDIST_SHA256" ] || { rm -f "$f"; die "$SDIST: sha256 $got, expected $SDIST_SHA256 (removed)"; }

cml=$SRC/whisper.cpp/CMakeLists.txt
if [ ! -f "$cml" ]; then
  say "extracting $SDIST"
  rm -rf "$SRC"
  tar -xzf "$f" -C "$WORK" --no-same-owner
fi
got=$(sed -n 's/^project("whisper.cpp" VERSION \([0-9.]*\))$/\1/p' "$cml")
[ "$got" = "$WVERSION" ] || die "$SDIST vendors whisper.cpp $got, expected $WVERSION"
ggml=$(sed -n 's/^set(GGML_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\))$/\2/p' "$SRC/whisper.cpp/ggml/CMakeLists.txt" | paste -sd. -)

no_targets() { sed '/^targets: /d'; }
if [ ! -f "$BLD/.key" ] || [ "$(no_targets <"$BLD/.key")" != "$(echo "$key" | no_targets)" ]; then rm -rf "$BLD"; fi
mkdir -p "$BLD"
start=$(date +%s)
say "configuring whisper.cpp $WVERSION (ggml $ggml)"
# shellcheck disable=SC2086  # the flags are words
cmake -S "$SRC/whisper.cpp" -B "$BLD" $CMAKE_FLAGS >"$BLD/configure.log" 2>&1 ||
  { tail -n 20 "$BLD/configure.log" >&2; die "cmake configure failed (all of it in $BLD/configure.log)"; }
printf '%s\n' "$key" >"$BLD/.key"
say "building $TARGETS with -j$JOBS at nice $NICE (a few minutes on 2 cores; the log is $BLD/build.log)"
# shellcheck disable=SC2086
nice -n "$NICE" cmake --build "$BLD" --config Release -j "$JOBS" --target $TARGETS >"$BLD/build.log" 2>&1 ||
  { tail -n 30 "$BLD/build.log" >&2; die "the build failed (all of it in $BLD/build.log)"; }
secs=$(($(date +%s) - start))

for t in $TARGETS; do install -m 755 "$BLD/bin/$t" "$OUT/$t"; done
{
  printf '%s\n' "$key"
  echo "---"
  echo "whisper.cpp CMakeLists.txt version $WVERSION, ggml $ggml"
  echo "ggml CPU options (CMakeCache.txt): $(grep -E '^GGML_(NATIVE|OPENMP|BLAS|BLAS_VENDOR|CPU_REPACK|LLAMAFILE):' "$BLD/CMakeCache.txt" | sed 's/:[A-Z]*=/=/' | tr '\n' ' ' | sed 's/ $//')"
  echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${secs} s with -j$JOBS (tools/build-whisper-cpp.sh)"
} >"$REC"
say "installed $TARGETS into $OUT/ (whisper.cpp $WVERSION, ${secs} s); see $REC"
