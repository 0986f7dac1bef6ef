#!/usr/bin/env python3
"""qwen3_asr_make.py - the Qwen3-ASR benchmark folder: Qwen3-ASR-0.6B's real configuration
with random weights, in the layout mlx-community's conversions have (mlx-audio 0.6.2), and a
speech clip.

The configuration (Qwen/Qwen3-ASR-0.6B config.json, thinker_config):
  audio_config: num_mel_bins 128, d_model 896, encoder_layers 18, encoder_attention_heads 14,
                encoder_ffn_dim 3584, downsample_hidden_size 480, output_dim 1024,
                n_window 50, n_window_infer 800, conv_chunksize 500, max_source_positions 1500
  text_config:  qwen3, vocab_size 151936, hidden_size 1024, intermediate_size 3072,
                num_hidden_layers 28, num_attention_heads 16, num_key_value_heads 8, head_dim 128,
                rope_theta 1e6, rms_norm_eps 1e-6, tie_word_embeddings true
  audio_token_id 151676, audio_start_token_id 151669, audio_end_token_id 151670
Weights: random (fixed seed), bfloat16 (the published dtype); with --bits 8 (or 4) the text
decoder is quantized as mlx-audio's convert does it (group 64; not the audio tower), which is
what mlx-community/Qwen3-ASR-0.6B-8bit holds.  Tokenizer: Qwen3's tokenizer.json
(/work/shared/fixtures/tokenizers/qwen3) with the audio special tokens added at Qwen3-ASR's ids
(fillers for the ids between) and <asr_text> as a plain added token.
Clip: espeak-ng sentences resampled to 16 kHz, --seconds long (default 30), s16 WAV.

Usage: /work/venv-tts/bin/python bench/stt/qwen3_asr_make.py OUT_DIR [--bits 0|4|8] [--seconds 30]
Writes OUT_DIR/model (the folder) and OUT_DIR/clip.wav.  Never committed.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import wave

import numpy as np

FIXTURE = "/work/shared/fixtures/tokenizers/qwen3"

CONFIG = {
    "architectures": ["Qwen3ASRForConditionalGeneration"],
    "model_type": "qwen3_asr",
    "support_languages": ["Chinese", "English", "Cantonese", "German", "Spanish", "French", "Italian",
                          "Portuguese", "Russian", "Korean", "Japanese"],
    "thinker_config": {
        "model_type": "qwen3_asr_thinker",
        "audio_token_id": 151676, "audio_start_token_id": 151669, "audio_end_token_id": 151670,
        "audio_config": {
            "num_mel_bins": 128, "d_model": 896, "encoder_layers": 18, "encoder_attention_heads": 14,
            "encoder_ffn_dim": 3584, "downsample_hidden_size": 480, "output_dim": 1024, "n_window": 50,
            "n_window_infer": 800, "conv_chunksize": 500, "max_source_positions": 1500,
            "activation_function": "gelu", "scale_embedding": False,
        },
        "text_config": {
            "model_type": "qwen3", "vocab_size": 151936, "hidden_size": 1024, "intermediate_size": 3072,
            "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
            "max_position_embeddings": 65536, "rope_theta": 1000000, "rms_norm_eps": 1e-6,
            "tie_word_embeddings": True, "hidden_act": "silu",
            "rope_scaling": {"rope_type": "default", "mrope_section": [24, 20, 20], "interleaved": True},
        },
    },
}

PREPROC = {"chunk_length": 30, "dither": 0.0, "feature_extractor_type": "WhisperFeatureExtractor",
           "feature_size": 128, "hop_length": 160, "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000,
           "padding_side": "right", "padding_value": 0.0, "return_attention_mask": True, "sampling_rate": 16000}

SENTENCES = [
    "The quarterly report shows that sales grew by twelve percent in the northern region.",
    "Please remember to lock the back door before you leave the office tonight.",
    "Our team will meet again on Thursday morning to review the new design.",
    "The train to the city was delayed because of heavy snow on the tracks.",
    "She opened the window and listened to the birds singing in the garden.",
]


def tokenizer(out):
    from tokenizers import AddedToken, Tokenizer
    raw = subprocess.run(["zstd", "-dc", os.path.join(FIXTURE, "tokenizer.json.zst")], check=True,
                         capture_output=True).stdout
    tok = Tokenizer.from_str(raw.decode("utf-8"))
    n = tok.get_vocab_size()
    assert n <= 151669, n
    fill = [f"<|reserved_{i}|>" for i in range(n, 151669)]
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in fill])
    names = ["<|audio_start|>", "<|audio_end|>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>",
             "<tts_text_bos_single>", "<|reserved_151675|>", "<|audio_pad|>"]
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in names])
    assert tok.token_to_id("<|audio_pad|>") == 151676
    tok.add_tokens([AddedToken("<asr_text>", normalized=False, special=False)])
    tok.save(os.path.join(out, "tokenizer.json"))
    cfg = json.load(open(os.path.join(FIXTURE, "tokenizer_config.json")))
    cfg.pop("added_tokens_decoder", None)
    cfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    cfg["eos_token"] = "<|im_end|>"
    json.dump(cfg, open(os.path.join(out, "tokenizer_config.json"), "w"), indent=1)


def clip(path, seconds):
    from scipy.signal import resample_poly
    parts, total, i = [], 0, 0
    with tempfile.TemporaryDirectory() as td:
        while total < seconds * 16000:
            p = os.path.join(td, "s.wav")
            subprocess.run(["espeak-ng", "-w", p, SENTENCES[i % len(SENTENCES)]], check=True)
            w = wave.open(p)
            x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768.0
            sr = w.getframerate()
            g = math.gcd(16000, sr)
            y = resample_poly(x, 16000 // g, sr // g)
            parts.append(np.concatenate([y, np.zeros(4000)]))
            total += len(parts[-1])
            i += 1
    y = np.concatenate(parts)[: seconds * 16000]
    w = wave.open(path, "wb")
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(16000)
    w.writeframes(np.clip(np.round(y * 32767), -32768, 32767).astype("<i2").tobytes())
    w.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--bits", type=int, default=0)
    ap.add_argument("--seconds", type=int, default=30)
    a = ap.parse_args()
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten
    from mlx_audio.stt.models.qwen3_asr.config import ModelConfig
    from mlx_audio.stt.models.qwen3_asr.qwen3_asr import Model

    d = os.path.join(a.out, "model")
    os.makedirs(d, exist_ok=True)
    tokenizer(d)
    json.dump(PREPROC, open(os.path.join(d, "preprocessor_config.json"), "w"), indent=1)
    m = Model(ModelConfig.from_dict(json.loads(json.dumps(CONFIG))))
    inner = m._model
    rng = np.random.default_rng(1234)
    ws = []
    for name, p in tree_flatten(inner.parameters()):
        shape = tuple(p.shape)
        if name.endswith(".bias"):
            v = 0.02 * rng.standard_normal(shape, dtype=np.float32)
        elif name.endswith("norm.weight") or "ln_post" in name or "layer_norm" in name:
            v = 1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)
        else:
            fan = shape[-1] if len(shape) == 2 else int(np.prod(shape[1:]))
            v = rng.standard_normal(shape, dtype=np.float32) / math.sqrt(fan)
        ws.append((name, mx.array(v).astype(mx.bfloat16)))
    inner.load_weights(ws)
    cfg = json.loads(json.dumps(CONFIG))
    if a.bits:
        def pred(path, module):
            if not hasattr(module, "to_quantized") or module.weight.shape[-1] % 64:
                return False
            return inner.model_quant_predicate(path, module)
        nn.quantize(inner, 64, a.bits, mode="affine", class_predicate=pred)
        cfg["quantization"] = {"group_size": 64, "bits": a.bits, "mode": "affine"}
        cfg["quantization_config"] = cfg["quantization"]
    mx.save_safetensors(os.path.join(d, "model.safetensors"), dict(tree_flatten(inner.parameters())),
                        metadata={"format": "mlx"})
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=1)
    clip(os.path.join(a.out, "clip.wav"), a.seconds)
    print(f"{d} and {a.out}/clip.wav written", file=sys.stderr)


if __name__ == "__main__":
    main()
