#!/usr/bin/env python3
"""moonshine_peer.py - the Python side of bench/stt/moonshine.sh.

  moonshine_peer.py make NAME DIR TOKENIZER_JSON
      a random-weight folder with the real shapes of UsefulSensors/moonshine-NAME
      (tiny | base), float32, in the transformers layout mlx-audio loads
      ("model." prefix, torch Conv1d weights), tied output, the real tokenizer
  moonshine_peer.py run DIR WAV [REPEATS]
      mlx-audio 0.6.2: load, one warm-up generate(), then the best of REPEATS
      timed generate() calls (greedy, max_tokens 200 = its default); prints one
      JSON line {"seconds", "audio_s", "rtf", "tokens", "text"}

The configs are the published ones (transformers' MoonshineConfig: tiny =
its defaults, base = hidden 416, intermediate 1664, 8 + 8 layers); the weights
are mlx's default initialisation scaled so that the decoder does not stop at
once (seed 0), so both sides decode the same number of tokens.
"""
import json
import os
import sys
import time
import wave

import numpy as np

CONFIGS = {
    # UsefulSensors/moonshine-tiny: 27 M parameters
    "tiny": dict(hidden_size=288, intermediate_size=1152, encoder_num_hidden_layers=6,
                 decoder_num_hidden_layers=6, encoder_num_attention_heads=8, decoder_num_attention_heads=8),
    # UsefulSensors/moonshine-base: 61 M parameters
    "base": dict(hidden_size=416, intermediate_size=1664, encoder_num_hidden_layers=8,
                 decoder_num_hidden_layers=8, encoder_num_attention_heads=8, decoder_num_attention_heads=8),
}
COMMON = {
    "architectures": ["MoonshineForConditionalGeneration"], "model_type": "moonshine",
    "attention_bias": False, "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
    "decoder_start_token_id": 1, "decoder_hidden_act": "silu", "encoder_hidden_act": "gelu",
    "encoder_num_key_value_heads": 8, "decoder_num_key_value_heads": 8, "max_position_embeddings": 512,
    "partial_rotary_factor": 0.9, "rope_theta": 10000.0, "rope_scaling": None, "tie_word_embeddings": True,
    "vocab_size": 32768, "is_encoder_decoder": True, "use_cache": True, "torch_dtype": "float32",
}


def make(name, d, tokjson):
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_audio.stt.models.moonshine.config import ModelConfig
    from mlx_audio.stt.models.moonshine.moonshine import Model
    cfg = dict(COMMON, **CONFIGS[name])
    mx.random.seed(0)
    m = Model(ModelConfig.from_dict(cfg))
    rng = np.random.default_rng(0)
    out = {}
    for k, v in tree_flatten(m.parameters()):
        a = np.array(v)
        if "embed_tokens" in k:
            a = rng.standard_normal(a.shape).astype(np.float32) * 0.5
            a[2] *= 0.1   # </s> unlikely: both sides decode the full 200 tokens
        if "conv" in k and a.ndim == 3:
            a = np.ascontiguousarray(a.transpose(0, 2, 1))
        out[("model." + k) if k.startswith(("encoder.", "decoder.")) else k] = mx.array(a)
    os.makedirs(d, exist_ok=True)
    mx.save_safetensors(os.path.join(d, "model.safetensors"), out, metadata={"format": "pt"})
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)
    json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
               "unk_token": "<unk>", "clean_up_tokenization_spaces": False},
              open(os.path.join(d, "tokenizer_config.json"), "w"), indent=2)
    with open(tokjson, "rb") as f, open(os.path.join(d, "tokenizer.json"), "wb") as g:
        g.write(f.read())
    n = sum(int(np.prod(v.shape)) for v in out.values())
    print(f"{d}: {n / 1e6:.1f} M parameters", file=sys.stderr)


def run(d, wav, repeats):
    import mlx.core as mx
    from mlx_audio.stt.utils import load_model
    with wave.open(wav) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
    m = load_model(d)
    a = mx.array(audio)
    out = m.generate(a)
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = m.generate(a)
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    secs = len(audio) / 16000
    print(json.dumps({"seconds": best, "audio_s": secs, "rtf": best / secs, "tokens": out.generation_tokens,
                      "text": out.text}))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        run(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 3)
