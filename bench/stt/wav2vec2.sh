#!/bin/sh
# bench/stt/wav2vec2.sh - Wav2Vec2 CTC speed: ours against mlx-audio 0.6.2 (float32 on
# mlx's CPU backend) and transformers + torch (CPU) on the same random weights with
# facebook/wav2vec2-base-960h's real shapes (bench/stt/wav2vec2_peers.py writes the
# config out: 7 convs x 512, 12 post-LN layers of 768, 12 heads, FFN 3072, position
# conv 128 taps / 16 groups, 32 characters; ~95 M parameters, float32), 2 threads
# (every engine pinned to CPUS with taskset; torch also set_num_threads, ours -t 2).
# One clip of SECONDS (default 60) of espeak-ng speech, run whole by every engine
# (mlx-audio does not chunk; ours runs whole up to 120 s).  Random weights: the text is
# gibberish, identical between engines (the script says whether it is); speed only.
#
# Figures: wall_s = features + forward + greedy decoding after loading (the Python peers
# after one warm-up on the first second; ours the whole transcription call, no warm-up),
# RTF = wall_s / audio seconds (lower is faster), and each peer's RTF over ours.
#
#   bench/stt/wav2vec2.sh          environment: SECONDS_AUDIO (60), CPUS (0,1), MODELS
#                                  (/work/models-local), BUILD (build), TTS_VENV
#                                  (/work/venv-tts: mlx-audio), TORCH_VENV (/work/venv-mlx:
#                                  transformers + torch), NO_TORCH=1 skips torch
# Ours runs through `mlx-stt -m DIR FILE` when that binary takes a wav2vec2 folder, else
# through the unit-test binary's timing mode (test_stt_wav2vec2 --time DIR FILE 2).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
MODELS=${MODELS:-/work/models-local}
SECS=${SECONDS_AUDIO:-60}
CPUS=${CPUS:-0,1}
TTS_VENV=${TTS_VENV:-/work/venv-tts}
TORCH_VENV=${TORCH_VENV:-/work/venv-mlx}
DIR=$MODELS/wav2vec2-base-960h-random
WAV=$MODELS/bench-audio/wav2vec2_${SECS}s.wav
export OMP_NUM_THREADS=2 BENCH_THREADS=2
PEERS=bench/stt/wav2vec2_peers.py

[ -f "$DIR/model.safetensors" ] || "$TTS_VENV/bin/python" $PEERS make "$DIR"
mkdir -p "$(dirname "$WAV")"
[ -f "$WAV" ] || "$TTS_VENV/bin/python" $PEERS audio "$WAV" "$SECS"
make -s -j2 BUILD="$BUILD" "$BUILD/bin/mlx-stt" "$BUILD/tests/test_stt_wav2vec2" >/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ours: mlx-stt when it runs this folder (the integrator's wiring), else the test binary
if "$BUILD/bin/mlx-stt" -m "$DIR" -t 2 "$WAV" >/dev/null 2>&1; then
  t0=$(date +%s.%N)
  taskset -c "$CPUS" "$BUILD/bin/mlx-stt" -m "$DIR" -t 2 "$WAV" > "$tmp/ours.txt"
  t1=$(date +%s.%N)
  python3 - "$t0" "$t1" "$SECS" "$tmp/ours.txt" > "$tmp/ours.json" <<'PY'
import json, sys
t0, t1, secs, f = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
print(json.dumps({"engine": "ours (mlx-stt, load included)", "wall_s": t1 - t0, "audio_s": secs,
                  "rtf": (t1 - t0) / secs, "text": open(f).read().strip()}))
PY
else
  taskset -c "$CPUS" "$BUILD/tests/test_stt_wav2vec2" --time "$DIR" "$WAV" 2 > "$tmp/raw.json"
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); j["engine"]="ours (test_stt_wav2vec2 --time)"; j["rtf"]=j["wall_s"]/j["audio_s"]; print(json.dumps(j))' "$tmp/raw.json" > "$tmp/ours.json"
fi
taskset -c "$CPUS" "$TTS_VENV/bin/python" $PEERS mlx "$DIR" "$WAV" > "$tmp/mlx.json"
if [ "${NO_TORCH:-0}" != 1 ]; then
  taskset -c "$CPUS" "$TORCH_VENV/bin/python" $PEERS torch "$DIR" "$WAV" > "$tmp/torch.json" 2>/dev/null
fi

python3 - "$tmp"/ours.json "$tmp"/mlx.json $( [ -f "$tmp/torch.json" ] && echo "$tmp/torch.json" ) <<'PY'
import itertools, json, sys
rows = [json.loads(open(f).read().strip().splitlines()[-1]) for f in sys.argv[1:]]
ours = rows[0]
print(f"wav2vec2-base-960h shapes, random weights, {ours['audio_s']:.1f} s of audio, 2 threads")
print(f"{'engine':40s} {'wall s':>8s} {'RTF':>8s} {'RTF / ours':>10s}")
for r in rows:
    print(f"{r['engine']:40s} {r['wall_s']:8.3f} {r['rtf']:8.4f} {r['rtf'] / ours['rtf']:10.2f}")
merge = lambda t: "".join(k for k, _ in itertools.groupby(t.strip()))
for r in rows[1:]:
    same = r["text"].strip() == ours["text"].strip()
    note = ""
    if not same and merge(r["text"]) == merge(ours["text"]):
        # mlx-audio hands the CTC-collapsed ids to the processor's decode, which groups
        # repeats again: a letter doubled across a blank ("LL") comes out single
        note = " (equal with doubled letters merged: mlx-audio's second grouping)"
    print(f"text {'identical to' if same else 'DIFFERS from'} ours{note}: {r['engine']}")
PY
