#!/usr/bin/env python3
"""voxtral_make.py - the folder and clip for bench/stt/voxtral.sh: Voxtral-Mini-3B-2507's
published configuration with random weights (never a trained checkpoint), in the layout
mlx-audio 0.6.2 loads (its parameter names, MLX conv layout, bfloat16 like the published
weights), a synthetic tekken.json of the real size (1000 special tokens with the real names
at the ids Voxtral uses, 130072 ordinary tokens: the 256 bytes, then letter pairs and
triples) and WhisperFeatureExtractor's preprocessor_config.json; a speech clip made with
espeak-ng and tiled to the asked length.

The configuration (mistralai/Voxtral-Mini-3B-2507 config.json):
  audio_config: Whisper-large-v3-style encoder, hidden_size 1280, 32 layers, 20 heads (64),
                intermediate_size 5120, 128 mels, max_source_positions 1500
  projector:    5120 (4 frames x 1280) -> 3072 -> 3072, GELU, no biases
  text_config:  llama, hidden 3072, 30 layers, 32 heads / 8 KV heads of 128, intermediate 8192,
                vocab 131072, rope_theta 1e8, rms_norm_eps 1e-5, untied lm_head
  audio_token_id 24
--audio-layers / --text-layers scale the depth down (written as both the published key and
the key mlx-audio reads: num_hidden_layers + encoder_layers).  --bits 4 or 8: the folder is
then converted by mlx_audio.convert (group 64; the audio tower stays bfloat16).

Usage: python bench/stt/voxtral_make.py OUTDIR [--bits 0|4|8] [--seconds 30]
                                              [--audio-layers 32] [--text-layers 30]
Run with /work/venv-voxtral/bin/python (mlx-audio, mistral_common, soundfile, soxr).
"""
import argparse
import base64
import itertools
import json
import os
import shutil
import string
import subprocess
import tempfile

import numpy as np

SPECIALS = {0: "<unk>", 1: "<s>", 2: "</s>", 3: "[INST]", 4: "[/INST]", 5: "[AVAILABLE_TOOLS]",
            6: "[/AVAILABLE_TOOLS]", 7: "[TOOL_RESULTS]", 8: "[/TOOL_RESULTS]", 9: "[TOOL_CALLS]", 10: "[IMG]",
            11: "<pad>", 12: "[IMG_BREAK]", 13: "[IMG_END]", 14: "[PREFIX]", 15: "[MIDDLE]", 16: "[SUFFIX]",
            17: "[SYSTEM_PROMPT]", 18: "[/SYSTEM_PROMPT]", 19: "[TOOL_CONTENT]", 24: "[AUDIO]",
            25: "[BEGIN_AUDIO]", 32: "[ARGS]", 33: "[CALL_ID]", 34: "[TRANSCRIBE]"}
PATTERN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
           r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|"
           r"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def config(audio_layers, text_layers):
    audio = {"activation_dropout": 0.0, "activation_function": "gelu", "attention_dropout": 0.0, "dropout": 0.0,
             "head_dim": 64, "hidden_size": 1280, "initializer_range": 0.02, "intermediate_size": 5120,
             "layerdrop": 0.0, "max_source_positions": 1500, "model_type": "voxtral_encoder",
             "num_attention_heads": 20, "num_hidden_layers": audio_layers, "num_key_value_heads": 20,
             "num_mel_bins": 128, "scale_embedding": False, "vocab_size": 51866}
    if audio_layers != 32:
        audio["encoder_layers"] = audio_layers
    text = {"attention_bias": False, "attention_dropout": 0.0, "head_dim": 128, "hidden_act": "silu",
            "hidden_size": 3072, "initializer_range": 0.02, "intermediate_size": 8192,
            "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama", "num_attention_heads": 32,
            "num_hidden_layers": text_layers, "num_key_value_heads": 8, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
            "rope_scaling": None, "rope_theta": 100000000.0, "sliding_window": None, "use_cache": True,
            "vocab_size": 131072}
    return {"architectures": ["VoxtralForConditionalGeneration"], "audio_config": audio, "audio_token_id": 24,
            "hidden_size": 3072, "model_type": "voxtral", "projector_hidden_act": "gelu", "text_config": text,
            "torch_dtype": "bfloat16", "vocab_size": 131072}


def tekken(path):
    toks = [bytes([b]) for b in range(256)]
    letters = string.ascii_letters
    for n in (2, 3):
        for t in itertools.product(letters, repeat=n):
            toks.append("".join(t).encode())
            if len(toks) == 130072:
                break
        if len(toks) == 130072:
            break
    vocab = [{"rank": r, "token_bytes": base64.b64encode(b).decode(), "token_str": None} for r, b in enumerate(toks)]
    specials = [{"rank": i, "token_str": SPECIALS.get(i, "<SPECIAL_%d>" % i), "is_control": True}
                for i in range(1000)]
    with open(path, "w") as f:
        json.dump({"config": {"pattern": PATTERN, "num_vocab_tokens": len(vocab), "default_vocab_size": 131072,
                              "default_num_special_tokens": 1000, "version": "v7"},
                   "vocab": vocab, "special_tokens": specials,
                   "audio": {"sampling_rate": 16000, "frame_rate": 12.5,
                             "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400},
                             "chunk_length_s": 30.0}}, f)


def weights(cfg, out):
    """Random bfloat16 weights, written in shards of about 2 GB."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_audio.stt.models.voxtral.voxtral import Model, ModelConfig
    mc = ModelConfig.from_dict(cfg)
    if "encoder_layers" in cfg["audio_config"]:
        mc.audio_config.encoder_layers = cfg["audio_config"]["encoder_layers"]
    model = Model(mc)
    params = tree_flatten(model.parameters())
    shards, cur, size = [], {}, 0
    mx.random.seed(0)
    for k, v in params:
        if k.endswith("norm.weight"):
            a = mx.ones(v.shape, dtype=mx.bfloat16)
        else:
            a = (mx.random.normal(v.shape) * 0.02).astype(mx.bfloat16)
        cur[k] = a
        size += a.nbytes
        if size > 2e9:
            shards.append(cur)
            cur, size = {}, 0
    if cur:
        shards.append(cur)
    index = {"metadata": {"total_size": 0}, "weight_map": {}}
    for s, sh in enumerate(shards):
        name = "model-%05d-of-%05d.safetensors" % (s + 1, len(shards))
        mx.eval(sh)
        mx.save_safetensors(os.path.join(out, name), sh, metadata={"format": "mlx"})
        for k, a in sh.items():
            index["weight_map"][k] = name
            index["metadata"]["total_size"] += a.nbytes
        del sh
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)


def clip(path, seconds):
    import soundfile as sf
    import soxr
    text = ("The quarterly report shows that sales grew by twelve percent in the northern region. "
            "Please remember to lock the back door before you leave the office tonight. "
            "Our team will meet again on Thursday morning to review the new design.")
    with tempfile.TemporaryDirectory() as td:
        raw = os.path.join(td, "e.wav")
        subprocess.run(["espeak-ng", "-w", raw, text], check=True)
        d, sr = sf.read(raw, dtype="float32")
    d = soxr.resample(d, sr, 16000, quality="HQ")
    d = np.resize(d, int(seconds * 16000))
    sf.write(path, np.clip(np.round(d * 32768.0), -32768, 32767).astype(np.int16), 16000, subtype="PCM_16")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--bits", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--audio-layers", type=int, default=32)
    ap.add_argument("--text-layers", type=int, default=30)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    base = os.path.join(a.out, "model-bf16")
    if not os.path.exists(os.path.join(base, "model.safetensors.index.json")):
        os.makedirs(base, exist_ok=True)
        cfg = config(a.audio_layers, a.text_layers)
        with open(os.path.join(base, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2)
        with open(os.path.join(base, "preprocessor_config.json"), "w") as f:
            json.dump({"chunk_length": 30, "dither": 0.0, "feature_extractor_type": "WhisperFeatureExtractor",
                       "feature_size": 128, "hop_length": 160, "n_fft": 400, "n_samples": 480000,
                       "nb_max_frames": 3000, "padding_side": "right", "padding_value": 0.0,
                       "processor_class": "VoxtralProcessor", "return_attention_mask": False,
                       "sampling_rate": 16000}, f, indent=2)
        tekken(os.path.join(base, "tekken.json"))
        weights(cfg, base)
    model = base
    if a.bits:
        model = os.path.join(a.out, "model-q%d" % a.bits)
        if not os.path.exists(os.path.join(model, "config.json")):
            from mlx_audio.convert import convert
            shutil.rmtree(model, ignore_errors=True)
            convert(base, model, quantize=True, q_group_size=64, q_bits=a.bits, model_domain="stt")
    cp = os.path.join(a.out, "clip_%gs.wav" % a.seconds)
    if not os.path.exists(cp):
        clip(cp, a.seconds)
    print(model)
    print(cp)


if __name__ == "__main__":
    main()
