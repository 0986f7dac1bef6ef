# helpers.bash - shared by the bats suites (load helpers).

# wait_bounded PID [SECONDS]: wait for a background job and set WAIT_STATUS to
# its exit status; a job still running after SECONDS (default 60) is killed
# with SIGKILL (status 137), so a test that expected it to stop fails instead
# of hanging the suite.
wait_bounded() {
  local pid=$1 secs=${2:-60} wd
  ( sleep "$secs"; kill -9 "$pid" ) > /dev/null 2>&1 3>&- &
  wd=$!
  WAIT_STATUS=0
  wait "$pid" || WAIT_STATUS=$?
  kill "$wd" 2> /dev/null || true
  wait "$wd" 2> /dev/null || true
}
