#!/bin/sh
# Runs the unit-test binaries and the bats suites from the repository root and
# prints one closing line "N passed, N failed" (counting checks and bats cases).
BUILD=${BUILD:-build}
pass=0; fail=0; status=0; skips=0
if [ "${ONLY:-unit}" = unit ] || [ -z "$ONLY" ]; then
  for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    out=$("$t" 2>&1); rc=$?
    echo "$out" | grep -v -E '^[a-z_0-9]+: ([0-9]+ passed, [0-9]+ failed|skipped: .*)$' | tail -n 40
    line=$(echo "$out" | grep -E '^[a-z_0-9]+: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    skipped=$(echo "$out" | grep -E '^[a-z_0-9]+: skipped: ' | tail -n 1)
    if [ -z "$line" ] && [ -n "$skipped" ] && [ $rc -eq 0 ]; then
      # a test that needs what `make real-models` fetches, run without it (as bats' skip)
      echo "unit $skipped"; skips=$((skips + 1))
    elif [ -n "$line" ]; then
      echo "unit $line"
      p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\1/')
      f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed/\2/')
      pass=$((pass + p)); fail=$((fail + f))
    else
      echo "unit $t: no report (exit $rc)"; fail=$((fail + 1))
    fi
    [ $rc -ne 0 ] && status=1
  done
fi
if [ "${ONLY:-bats}" = bats ] || [ -z "$ONLY" ]; then
  if ls tests/bats/*.bats >/dev/null 2>&1; then
    out=$(MT_BUILD="$BUILD" bats --tap tests/bats 2>&1); rc=$?
    echo "$out" | grep -E '^not ok|^#' | head -n 60
    p=$(echo "$out" | grep -c '^ok ')
    f=$(echo "$out" | grep -c '^not ok ')
    echo "bats: $p passed, $f failed"
    pass=$((pass + p)); fail=$((fail + f))
    [ $rc -ne 0 ] && status=1
  fi
fi
[ $skips -gt 0 ] && echo "$skips unit test(s) skipped (their models are missing: make real-models)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ] && [ $status -eq 0 ]
