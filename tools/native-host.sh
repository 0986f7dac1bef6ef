# shellcheck disable=SC2034,SC2154  # sets variables for the sourcing script, reads its $key / $REC / $OUT / $TARGETS
# tools/native-host.sh - sourced by tools/build-llama-cpp.sh and tools/build-whisper-cpp.sh (from
# the repository root, with TAG set to the script's name): their message helpers and what a
# -march=native build is made with and for, recorded beside the binaries and compared on reruns:
#   compiler   cc and c++ versions          march     the CPU family -march=native picks
#   features   hash of -march=native's flags wide      its wide-vector flags (+avx512f ...)
#   cpu        /proc/cpuinfo's model name
# Installs cmake and build-essential when c++ is missing.  exit_if_built WHAT: exits 0 when every
# one of $TARGETS is in $OUT and $REC's first part equals $key (the build is as it would be now),
# unless FORCE=1.

say() { echo "$TAG: $*" >&2; }
die() { say "$*"; exit 1; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
one_line() { echo "$*" | tr -s ' \n' ' ' | sed 's/ $//'; }

cc_name=${CC:-cc}
cxx_name=${CXX:-c++}
command -v "$cxx_name" >/dev/null 2>&1 || { sh tools/deps.sh cmake build-essential >&2; }
compiler="$("$cc_name" --version 2>/dev/null | head -n1) / $("$cxx_name" --version 2>/dev/null | head -n1)"
march=$("$cc_name" -march=native -Q --help=target 2>/dev/null | awk '$1 == "-march=" {print $2; exit}')
mflags=$("$cc_name" -march=native -E -v - </dev/null 2>&1 | grep -o ' -m[a-z0-9-]*' | sort -u)
features=$(echo "$mflags" | tr -d '\n' | sha256sum | cut -c1-12)
wide=$(echo "$mflags" | grep -E -e '-m(avx512|avxvnni|amx)' | sed 's/^ -m/+/' | tr '\n' ' ' | sed 's/ $//')
cpu=$(grep -m1 '^model name' /proc/cpuinfo 2>/dev/null | sed 's/^[^:]*: *//')

exit_if_built() {
  [ "${FORCE:-0}" != 1 ] && [ -f "$REC" ] && [ "$(sed '/^---$/,$d' "$REC")" = "$key" ] || return 0
  for t in $TARGETS; do [ -x "$OUT/$t" ] || return 0; done
  say "up to date: $1 in $OUT/, as $REC records (FORCE=1 rebuilds)"
  exit 0
}
