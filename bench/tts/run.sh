#!/bin/sh
# bench/tts/run.sh - text to speech on the real Kokoro-82M (make kokoro), 2 threads, one
# machine, one run: mlx-tts (float, the exact path; --int8) against kokoro-onnx 0.6.1
# (onnxruntime: the int8 ONNX it ships, and the same graph made float) and, with MLX=1,
# mlx-audio 0.6.2 (float32 on mlx's CPU backend).  Every engine speaks the same LINES
# lines of tests/data/tts/roundtrip.txt with the voice jf_alpha; the figure is the
# synthesis time after loading (G2P included), the real-time factor (synthesis time /
# seconds of audio: all engines make the same lengths), the ratio to kokoro-onnx int8's
# time, and the peak RSS.
#
# Quiet machine: before each run the script waits (up to 120 s) for the CPU pressure
# (/proc/pressure/cpu "some" avg10) to fall under MAX_PRESSURE (default 5%), and each
# run records the share of its wall time that runnable tasks stalled (the "some" total's
# growth); a run that stalled more than MAX_STALL % (default 5) is redone, up to 3 times,
# and reported as contended if it never ran quiet.  Engines alternate within a round;
# ROUNDS rounds (default 3); the table gives the median and the range per engine.
#
#   bench/tts/run.sh             environment: LINES (20), ROUNDS (3), MLX (0), MLX_LINES (3),
#                                VENV (python with kokoro-onnx, onnxruntime, onnx, mlx-audio:
#                                /work/venv-tts), BUILD (build), OUT (bench/out/tts.jsonl)
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
LINES=${LINES:-20}
ROUNDS=${ROUNDS:-3}
MAX_PRESSURE=${MAX_PRESSURE:-5}
MAX_STALL=${MAX_STALL:-5}
VENV=${VENV:-/work/venv-tts}
PY=$VENV/bin/python
OUT=${OUT:-bench/out/tts.jsonl}
M=local-models/Kokoro-82M
SRC=local-models/.cache/kokoro
[ -f $M/config.json ] || { echo "bench/tts: $M missing: run make kokoro" >&2; exit 1; }
[ -x "$PY" ] || { echo "bench/tts: $PY missing (a venv with kokoro-onnx, onnxruntime, onnx)" >&2; exit 1; }
make -s -j2 BUILD="$BUILD" "$BUILD/bin/mlx-tts" >/dev/null
mkdir -p "$(dirname "$OUT")"
: > "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
head -n "$LINES" tests/data/tts/roundtrip.txt > "$tmp/lines.txt"
head -n "${MLX_LINES:-3}" tests/data/tts/roundtrip.txt > "$tmp/mlx_lines.txt"

some_total() { sed -n 's/^some .*total=\([0-9]*\)$/\1/p' /proc/pressure/cpu; }
some_avg10() { sed -n 's/^some avg10=\([0-9.]*\) .*/\1/p' /proc/pressure/cpu; }
wait_quiet() {
  i=0
  while [ $i -lt 120 ] && awk -v a="$(some_avg10)" -v m="$MAX_PRESSURE" 'BEGIN { exit !(a > m) }'; do
    sleep 1; i=$((i + 1))
  done
}

# engine NAME: one JSON line on stdout {engine, lines, audio_s, synth_s, load_s, rtf, peak_rss_mb}
engine() {
  case $1 in
    ours|ours-int8)
      flag=; [ "$1" = ours-int8 ] && flag=--int8
      rm -rf "$tmp/o"
      /usr/bin/time -f %M -o "$tmp/rss" "$BUILD/bin/mlx-tts" -m $M --voice jf_alpha --text -o "$tmp/o" -t 2 -q $flag \
        < "$tmp/lines.txt" > "$tmp/o.jsonl"
      "$PY" - "$1" "$tmp/o.jsonl" "$(cat "$tmp/rss")" <<'PYEOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[2])]
audio = sum(r["seconds"] for r in recs)
synth = sum(r["rtf"] * r["seconds"] for r in recs)
print(json.dumps({"engine": sys.argv[1], "lines": len(recs), "audio_s": round(audio, 2), "synth_s": round(synth, 2),
                  "rtf": round(synth / audio, 4), "peak_rss_mb": round(int(sys.argv[3]) / 1024)}))
PYEOF
      ;;
    onnx-int8) "$PY" bench/tts/peers.py onnx --label onnx-int8 --onnx $SRC/kokoro-v1.0.int8.onnx --voices $SRC/voices_ja.npz --config $SRC/config.json "$tmp/lines.txt" ;;
    onnx-float) "$PY" bench/tts/peers.py onnx --float --label onnx-float --onnx $SRC/kokoro-v1.0.int8.onnx --voices $SRC/voices_ja.npz --config $SRC/config.json "$tmp/lines.txt" ;;
    mlx-audio) "$PY" bench/tts/peers.py mlx --label mlx-audio --model $M "$tmp/mlx_lines.txt" ;;
  esac
}

ENGINES="ours ours-int8 onnx-int8 onnx-float"
[ "${MLX:-0}" = 1 ] && ENGINES="$ENGINES mlx-audio"
for r in $(seq 1 "$ROUNDS"); do
  for e in $ENGINES; do
    try=1
    while :; do
      wait_quiet
      p0=$(some_total); t0=$(date +%s.%N)
      line=$(engine "$e")
      p1=$(some_total); t1=$(date +%s.%N)
      stall=$(awk -v a="$p0" -v b="$p1" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e4 / (e - s) }')
      quiet=$(awk -v s="$stall" -v m="$MAX_STALL" 'BEGIN { print (s <= m) ? "True" : "False" }')
      if [ "$quiet" = True ] || [ $try -ge 3 ]; then break; fi
      echo "bench/tts: $e round $r stalled $stall% of its time: redone" >&2
      try=$((try + 1))
    done
    echo "$line" | "$PY" -c "import json,sys; d=json.loads(sys.stdin.read()); d.update(round=$r, stall_pct=$stall, quiet=$quiet); print(json.dumps(d))" | tee -a "$OUT" >&2
  done
done

"$PY" - "$OUT" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["engine"], []).append(r)
base = statistics.median(r["synth_s"] for r in by["onnx-int8"]) if "onnx-int8" in by else None
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
print(f"Kokoro-82M, {rows[0]['lines']} lines of tests/data/tts/roundtrip.txt (mlx-audio: its own line count), voice jf_alpha, 2 threads, {cpu}")
print("| engine | audio s | synthesis s (median, min-max) | RTF | time vs kokoro-onnx int8 | peak RSS MB | quiet runs |")
print("|---|---|---|---|---|---|---|")
for e, rs in by.items():
    s = [r["synth_s"] for r in rs]
    med = statistics.median(s)
    ratio = f"{med / base:.2f}x" if base and e != "mlx-audio" else "-"
    print(f"| {e} | {rs[0]['audio_s']} | {med:.2f} ({min(s):.2f}-{max(s):.2f}) | {statistics.median(r['rtf'] for r in rs):.3f} "
          f"| {ratio} | {max(r['peak_rss_mb'] for r in rs)} | {sum(r['quiet'] for r in rs)}/{len(rs)} |")
PYEOF
