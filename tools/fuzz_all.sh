#!/bin/sh
# Build every libFuzzer target and run each for $1 seconds (default 60), one after another
# (make fuzz-long).  FUZZ_ONLY="jsonl resume" limits it to those targets.
set -e
secs=${1:-60}
[ -n "$FUZZ_NO_BUILD" ] || make fuzz >/dev/null   # FUZZ_NO_BUILD=1: use the built targets
for src in tests/fuzz/fuzz_*.c; do
  if [ -n "$FUZZ_ONLY" ]; then case " $FUZZ_ONLY " in *" $(basename "$src" .c | sed 's/^fuzz_//') "*) ;; *) continue ;; esac; fi
  n=$(basename "$src" .c); short=${n#fuzz_}
  mkdir -p "tests/fuzz/corpus-$short"
  seeds="tests/fuzz/seeds/$short"; [ -d "$seeds" ] || seeds=""
  if "build-fuzz/$n" "tests/fuzz/corpus-$short" $seeds -max_total_time="$secs" -rss_limit_mb=4096 \
       -print_final_stats=1 >"build-fuzz/$n.log" 2>&1; then
    runs=$(grep -E '^stat::number_of_executed_units' "build-fuzz/$n.log" | awk '{print $2}')
    cov=$(grep -E 'cov: [0-9]+' "build-fuzz/$n.log" | tail -n 1 | sed -E 's/.*cov: ([0-9]+).*/\1/')
    echo "$n: ok, $runs runs in ${secs}s, coverage $cov, no crash"
  else
    echo "$n: FAILED, see build-fuzz/$n.log"; tail -n 30 "build-fuzz/$n.log"
  fi
done
