#!/bin/sh
# bench/stt/parakeet.sh - Parakeet speed: ours (mlx-stt) against mlx-audio's
# Model.generate on the same weights, and ours on Parakeet-shaped weights
# against ours on Whisper-base-shaped weights.  Random weights throughout (no
# model hub here; the speed of a dense model does not depend on its values).
# Prints the real-time factor (seconds of compute per second of audio) of
# each run and the ratios.  Needs a quiet machine: do not read the numbers of
# a run that shared the cores.
#
#   bench/stt/parakeet.sh [make|run|all]        (default: all)
#
# Shapes: the published nvidia/parakeet-tdt-0.6b-v2 (mlx-community/
# parakeet-tdt-0.6b-v2), written out below as config.json from its model card
# and NeMo config: 128 mel features (n_fft 512, 25 ms window, 10 ms hop,
# per_feature normalisation), a FastConformer encoder of 24 layers, d_model
# 1024, 8 heads, feed-forward 4096, conv kernel 9, 8x dw_striding subsampling
# with 256 channels, no biases, relative positions; a TDT decoder: 2-layer
# LSTM prediction network of 640, joint 640 (relu), 1024 SentencePiece pieces
# + blank, durations 0..4, at most 10 symbols per frame.  The weights are
# mlx's default init saved in bfloat16 (as mlx-community's folder), except the
# joint's output bias, which favours the blank a little so the decoder emits
# a realistic few tokens per second rather than 10 per frame (mlx-audio's
# decode loop and ours both cost per emitted token).
# Whisper-base shapes (for the family comparison): 80 mels, 6+6 layers of
# 512, 8 heads, float16 (mlx-community/whisper-base-mlx layout), greedy
# decoding without temperature fallback; random weights make the decoder run
# to its 224-token limit per 30-s window, so that figure is an upper bound.
#
# Both sides: 2 threads (mlx-stt -t 2; for mlx, OMP/OPENBLAS/VECLIB set to 2
# - mlx's CPU backend uses its own thread pool and may use more cores), the
# same 16-kHz WAV, mlx-audio's default long-audio chunking for Parakeet
# (chunk_duration 30 s, overlap 2 s: the CLI default), the model loaded
# before timing (mlx-audio: load_model outside the timed generate, after a
# 1-s warm-up; ours: the "rtf" of mlx-stt's JSONL answer, the lower of two
# runs after an untimed one).
#
# Environment: BENCH_DIR (folders and audio, default /work/models-local/
# bench-parakeet; never committed), AUDIO (a 16-kHz mono WAV; default: 60 s
# of espeak-ng speech made here), MLX_STT (default build/bin/mlx-stt), PY
# (python with mlx-audio 0.6.2, default /work/venv-tts/bin/python),
# PK_MODEL / WH_MODEL (use these folders instead of making the random ones:
# e.g. PK_MODEL=tests/data/stt/parakeet/tdt for a smoke test), SKIP_WHISPER=1.
set -eu
cd "$(dirname "$0")/../.."
what=${1:-all}
BENCH_DIR=${BENCH_DIR:-/work/models-local/bench-parakeet}
MLX_STT=${MLX_STT:-build/bin/mlx-stt}
PY=${PY:-/work/venv-tts/bin/python}
PK_MODEL=${PK_MODEL:-$BENCH_DIR/parakeet-tdt-0.6b-v2-random}
WH_MODEL=${WH_MODEL:-$BENCH_DIR/whisper-base-random}
AUDIO=${AUDIO:-$BENCH_DIR/speech60.wav}
export OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 VECLIB_MAXIMUM_THREADS=2 MT_THREADS=2
mkdir -p "$BENCH_DIR"

make_parakeet() {
  [ -f "$PK_MODEL/model.safetensors" ] && return 0
  mkdir -p "$PK_MODEL"
  "$PY" - "$PK_MODEL" <<'PY'
import json, sys
import mlx.core as mx
from mlx.utils import tree_flatten
from mlx_audio.stt.models.parakeet.parakeet import Model, ModelConfig

out = sys.argv[1]
V = 1024
vocab = ["<unk>"] + ["\u2581w%d" % i if i % 3 == 0 else "p%d" % i for i in range(1, V)]
dur = [0, 1, 2, 3, 4]
cfg = {
    "model_type": "parakeet_tdt",
    "target": "nemo.collections.asr.models.rnnt_bpe_models.EncDecRNNTBPEModel",
    "model_defaults": {"enc_hidden": 1024, "pred_hidden": 640, "joint_hidden": 640, "tdt_durations": dur},
    "sample_rate": 16000,
    "preprocessor": {"_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
                     "sample_rate": 16000, "normalize": "per_feature", "window_size": 0.025,
                     "window_stride": 0.01, "window": "hann", "features": 128, "n_fft": 512, "log": True,
                     "frame_splicing": 1, "dither": 1e-05, "pad_to": 0, "pad_value": 0.0},
    "encoder": {"_target_": "nemo.collections.asr.modules.ConformerEncoder", "feat_in": 128, "feat_out": -1,
                "n_layers": 24, "d_model": 1024, "use_bias": False, "subsampling": "dw_striding",
                "subsampling_factor": 8, "subsampling_conv_channels": 256, "causal_downsampling": False,
                "ff_expansion_factor": 4, "self_attention_model": "rel_pos", "n_heads": 8,
                "att_context_size": [-1, -1], "xscaling": False, "untie_biases": True, "pos_emb_max_len": 5000,
                "conv_kernel_size": 9, "conv_norm_type": "batch_norm"},
    "decoder": {"_target_": "nemo.collections.asr.modules.RNNTDecoder", "blank_as_pad": True, "vocab_size": V,
                "prednet": {"pred_hidden": 640, "pred_rnn_layers": 2}},
    "joint": {"_target_": "nemo.collections.asr.modules.RNNTJoint", "num_classes": V, "vocabulary": vocab,
              "num_extra_outputs": len(dur),
              "jointnet": {"joint_hidden": 640, "activation": "relu", "encoder_hidden": 1024, "pred_hidden": 640}},
    "decoding": {"strategy": "greedy_batch", "model_type": "tdt", "durations": dur, "greedy": {"max_symbols": 10}},
}
mx.random.seed(0)
BLANK_BIAS = float(__import__("os").environ.get("BLANK_BIAS", "0.5"))
model = Model(ModelConfig.from_dict(cfg))
b = model.joint.joint_net[2].bias
model.joint.joint_net[2].bias = b.at[V].add(BLANK_BIAS)
w = {k: v.astype(mx.bfloat16) for k, v in tree_flatten(model.parameters())}
mx.save_safetensors(out + "/model.safetensors", w)
json.dump(cfg, open(out + "/config.json", "w"), indent=1)
print("wrote", out, sum(v.size for v in w.values()) / 1e6, "M parameters")
PY
}

make_whisper() {
  [ -f "$WH_MODEL/weights.safetensors" ] && return 0
  mkdir -p "$WH_MODEL"
  "$PY" - "$WH_MODEL" <<'PY'
import json, sys
import numpy as np
import mlx.core as mx

out = sys.argv[1]
d, L, H, V, mels = 512, 6, 8, 51865, 80
rng = np.random.default_rng(0)
w = {}
def t(name, *shape, scale=0.02):
    w[name] = mx.array(rng.normal(0, scale, shape).astype(np.float16))
def ln(name):
    w[name + ".weight"] = mx.ones((d,), dtype=mx.float16); w[name + ".bias"] = mx.zeros((d,), dtype=mx.float16)
def attn(p):
    for k in ("query", "key", "value", "out"):
        t(f"{p}.{k}.weight", d, d)
        if k != "key": t(f"{p}.{k}.bias", d)
def mlp(p):
    t(f"{p}.mlp1.weight", 4 * d, d); t(f"{p}.mlp1.bias", 4 * d); t(f"{p}.mlp2.weight", d, 4 * d); t(f"{p}.mlp2.bias", d)
t("encoder.conv1.weight", d, 3, mels); t("encoder.conv1.bias", d)
t("encoder.conv2.weight", d, 3, d); t("encoder.conv2.bias", d)
for i in range(L):
    p = f"encoder.blocks.{i}"
    attn(p + ".attn"); ln(p + ".attn_ln"); mlp(p); ln(p + ".mlp_ln")
ln("encoder.ln_post")
t("decoder.token_embedding.weight", V, d); t("decoder.positional_embedding", 448, d)
for i in range(L):
    p = f"decoder.blocks.{i}"
    attn(p + ".attn"); ln(p + ".attn_ln"); attn(p + ".cross_attn"); ln(p + ".cross_attn_ln"); mlp(p); ln(p + ".mlp_ln")
ln("decoder.ln")
w["alignment_heads"] = mx.array(np.array([[3, 1], [4, 2], [4, 3], [4, 7], [5, 1], [5, 2], [5, 4], [5, 6]]))
mx.save_safetensors(out + "/weights.safetensors", w)
json.dump({"n_mels": mels, "n_audio_ctx": 1500, "n_audio_state": d, "n_audio_head": H, "n_audio_layer": L,
           "n_vocab": V, "n_text_ctx": 448, "n_text_state": d, "n_text_head": H, "n_text_layer": L,
           "model_type": "whisper"}, open(out + "/config.json", "w"), indent=1)
print("wrote", out)
PY
}

make_audio() {
  [ -f "$AUDIO" ] && return 0
  "$PY" - "$AUDIO" <<'PY'
import subprocess, sys, tempfile, wave
import numpy as np
from scipy.signal import resample_poly
text = ("The quarterly report shows that sales grew by twelve percent in the northern region. "
        "Please remember to lock the back door before you leave the office tonight. "
        "The weather today is sunny with a light breeze from the west. ") * 6
with tempfile.NamedTemporaryFile(suffix=".wav") as f:
    subprocess.run(["espeak-ng", "-w", f.name, text], check=True)
    with wave.open(f.name) as w:
        rate = w.getframerate(); x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float64)
g = np.gcd(rate, 16000)
y = resample_poly(x, 16000 // g, rate // g)[:60 * 16000]
with wave.open(sys.argv[1], "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(16000)
    w.writeframes(np.clip(np.round(y), -32768, 32767).astype("<i2").tobytes())
print("wrote", sys.argv[1], len(y) / 16000, "s")
PY
}

# seconds of audio in a WAV
dur() { "$PY" -c "import wave,sys; w=wave.open(sys.argv[1]); print(w.getnframes()/w.getframerate())" "$1"; }

# ours: the "rtf" mlx-stt reports in its JSONL answer (transcription time per
# second of audio, the model already loaded); the lower of two runs after an
# untimed one that brings the weights into the page cache
ours_once() {  # ours_once MODEL WAV [flags]
  m=$1; a=$2; shift 2
  "$MLX_STT" -q -t 2 -m "$m" -f jsonl "$@" "$a" | sed -n 's/.*"rtf":\([0-9.eE+-]*\).*/\1/p'
}
ours_rtf() {
  ours_once "$@" >/dev/null
  x=$(ours_once "$@"); y=$(ours_once "$@")
  if [ "$(echo "$x < $y" | bc -l)" = 1 ]; then echo "$x"; else echo "$y"; fi
}

ref_rtf() {  # mlx-audio: load, warm up on 1 s, time generate on the clip
  "$PY" - "$1" "$2" <<'PY'
import sys, time
import numpy as np
import mlx.core as mx
from mlx_audio.stt.utils import load_model
from mlx_audio.stt.utils import load_audio
m = load_model(sys.argv[1])
audio = load_audio(sys.argv[2], 16000)
m.generate(audio[:16000], chunk_duration=30.0, overlap_duration=2.0)
t = time.perf_counter()
r = m.generate(audio, chunk_duration=30.0, overlap_duration=2.0)
el = time.perf_counter() - t
print("%.4f %d" % (el / (audio.shape[0] / 16000), len([x for s in r.sentences for x in s.tokens])))
PY
}

if [ "$what" = make ] || [ "$what" = all ]; then
  make_audio
  make_parakeet
  [ "${SKIP_WHISPER:-0}" = 1 ] || make_whisper
fi
if [ "$what" = run ] || [ "$what" = all ]; then
  [ -x "$MLX_STT" ] || { echo "no $MLX_STT: make first" >&2; exit 1; }
  D=$(dur "$AUDIO")
  echo "audio: $AUDIO ($D s); threads: 2"
  ours=$(ours_rtf "$PK_MODEL" "$AUDIO")
  set -- $(ref_rtf "$PK_MODEL" "$AUDIO")
  ref=$1
  printf 'parakeet  ours (mlx-stt)      RTF %.4f\n' "$ours"
  printf 'parakeet  mlx-audio generate  RTF %.4f   (%s tokens)\n' "$ref" "$2"
  printf 'parakeet  speed-up over mlx-audio: %.2fx\n' "$(echo "$ref / $ours" | bc -l)"
  if [ "${SKIP_WHISPER:-0}" != 1 ]; then
    wr=$(ours_rtf "$WH_MODEL" "$AUDIO" --temperature-increment-on-fallback none)
    printf 'whisper-base shapes, ours  RTF %.4f   (random weights: 224 tokens per window, an upper bound)\n' "$wr"
    printf 'parakeet-0.6b / whisper-base (ours): %.2fx the time per second of audio\n' "$(echo "$ours / $wr" | bc -l)"
  fi
fi
