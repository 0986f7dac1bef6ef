#!/usr/bin/env python3
"""wav2vec2_peers.py - the pieces of bench/stt/wav2vec2.sh: a random-weight
folder with facebook/wav2vec2-base-960h's real shapes, the benchmark audio,
and one timed transcription by a peer.

  wav2vec2_peers.py make DIR            the folder (mlx-audio venv: /work/venv-tts)
  wav2vec2_peers.py audio OUT.wav SECS  espeak-ng speech, 16 kHz mono s16, SECS long
  wav2vec2_peers.py mlx DIR WAV         mlx-audio 0.6.2 (mms.Model, as it runs every
                                        Wav2Vec2ForCTC checkpoint; float32 on the CPU)
  wav2vec2_peers.py torch DIR WAV       transformers Wav2Vec2ForCTC + processor, torch CPU
                                        (/work/venv-mlx: transformers 5.25, torch 2.15)

A peer prints one JSON line: engine, load_s, wall_s (features + forward +
greedy decoding after loading, after one warm-up run on the first second),
audio_s, rtf (wall_s / audio_s), text.  Threads: $BENCH_THREADS (default 2)
for torch; the shell script pins every engine to that many CPUs with taskset.

The folder: config.json is facebook/wav2vec2-base-960h's (below, written out:
7 convs of 512 channels, kernels 10,3,3,3,3,2,2, strides 5,2,2,2,2,2,2,
group norm, no conv bias; 12 post-LN layers of 768 wide, 12 heads, FFN 3072;
position conv 128 taps in 16 groups; 32 characters), its vocab.json,
tokenizer_config.json and preprocessor_config.json; the weights are mlx-audio's
random initialization (seed 0) saved as transformers stores them (torch conv
layouts, "wav2vec2." prefix, weight_g / weight_v), float32, ~378 MB.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import wave

import numpy as np

THREADS = int(os.environ.get("BENCH_THREADS", "2"))

CONFIG = {
    "activation_dropout": 0.1, "apply_spec_augment": True, "architectures": ["Wav2Vec2ForCTC"],
    "attention_dropout": 0.1, "bos_token_id": 1, "codevector_dim": 256, "contrastive_logits_temperature": 0.1,
    "conv_bias": False, "conv_dim": [512, 512, 512, 512, 512, 512, 512], "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2], "ctc_loss_reduction": "sum", "ctc_zero_infinity": False,
    "diversity_loss_weight": 0.1, "do_stable_layer_norm": False, "eos_token_id": 2, "feat_extract_activation": "gelu",
    "feat_extract_dropout": 0.0, "feat_extract_norm": "group", "feat_proj_dropout": 0.1, "feat_quantizer_dropout": 0.0,
    "final_dropout": 0.1, "gradient_checkpointing": False, "hidden_act": "gelu", "hidden_dropout": 0.1,
    "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
    "layer_norm_eps": 1e-05, "layerdrop": 0.1, "mask_feature_length": 10, "mask_feature_prob": 0.0,
    "mask_time_length": 10, "mask_time_prob": 0.05, "model_type": "wav2vec2", "num_attention_heads": 12,
    "num_codevector_groups": 2, "num_codevectors_per_group": 320, "num_conv_pos_embedding_groups": 16,
    "num_conv_pos_embeddings": 128, "num_feat_extract_layers": 7, "num_hidden_layers": 12, "num_negatives": 100,
    "pad_token_id": 0, "proj_codevector_dim": 256, "transformers_version": "4.7.0.dev0", "vocab_size": 32,
}
VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U",
         "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]
PREPROC = {"do_normalize": True, "feature_size": 1, "padding_side": "right", "padding_value": 0.0,
           "return_attention_mask": False, "sampling_rate": 16000}
TOKCFG = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
          "do_lower_case": False, "return_attention_mask": False, "do_normalize": True,
          "word_delimiter_token": "|", "tokenizer_class": "Wav2Vec2CTCTokenizer"}

TEXT = ("The quick brown fox jumps over the lazy dog. Please call Stella and ask her to bring these things "
        "with her from the store. The weather today is sunny with a light breeze from the west. We will meet at "
        "the train station at half past nine tomorrow morning. Artificial intelligence is changing the way we "
        "write software. She sells sea shells by the sea shore. The museum opens at ten and closes at six on "
        "weekdays. Turn left at the second traffic light and park behind the library. ")


def make(d):
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_audio.stt.models.mms import Model, ModelConfig
    os.makedirs(d, exist_ok=True)
    mx.random.seed(0)
    m = Model(ModelConfig.from_dict(CONFIG))
    w = {}
    for k, v in tree_flatten(m.parameters()):
        if k.endswith(".conv.weight") or k.endswith(".conv.weight_g") or k.endswith(".conv.weight_v"):
            v = v.swapaxes(1, 2)   # mlx-audio's sanitize swaps them back
        w[k] = v
    mx.save_safetensors(os.path.join(d, "model.safetensors"), w, metadata={"format": "pt"})
    json.dump(CONFIG, open(os.path.join(d, "config.json"), "w"), indent=2)
    json.dump({t: i for i, t in enumerate(VOCAB)}, open(os.path.join(d, "vocab.json"), "w"))
    json.dump(TOKCFG, open(os.path.join(d, "tokenizer_config.json"), "w"), indent=2)
    json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
              open(os.path.join(d, "special_tokens_map.json"), "w"))
    json.dump(PREPROC, open(os.path.join(d, "preprocessor_config.json"), "w"), indent=2)


def audio(out, secs):
    from mlx_audio.stt.utils import load_audio
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "s.wav")
        subprocess.run(["espeak-ng", "-s", "160", "-w", src, TEXT * 4], check=True)
        x = np.array(load_audio(src, sr=16000))
    n = int(secs * 16000)
    while len(x) < n:
        x = np.concatenate([x, x])
    x = np.clip(x[:n], -1, 1)
    with wave.open(out, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(16000)
        f.writeframes((x * 32767).astype("<i2").tobytes())


def read_wav(path):
    with wave.open(path, "rb") as w:
        raw = w.readframes(w.getnframes())
    return (np.frombuffer(raw, "<i2").astype(np.float32) / np.float32(32768.0)).astype(np.float32)


def report(engine, load_s, wall_s, n, text):
    a = n / 16000
    print(json.dumps({"engine": engine, "load_s": load_s, "wall_s": wall_s, "audio_s": a, "rtf": wall_s / a,
                      "text": text}))


def run_mlx(d, wav):
    import mlx.core as mx
    from mlx_audio.stt.utils import load_model
    x = read_wav(wav)
    t0 = time.perf_counter()
    m = load_model(d, model_type="mms")
    load = time.perf_counter() - t0
    m.generate(mx.array(x[:16000]))   # warm-up
    t0 = time.perf_counter()
    out = m.generate(mx.array(x))
    report("mlx-audio", load, time.perf_counter() - t0, len(x), out.text)


def run_torch(d, wav):
    import torch
    from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor
    torch.set_num_threads(THREADS)
    x = read_wav(wav)
    t0 = time.perf_counter()
    m = Wav2Vec2ForCTC.from_pretrained(d).eval()
    proc = Wav2Vec2Processor.from_pretrained(d)
    load = time.perf_counter() - t0

    def once(a):
        with torch.inference_mode():
            iv = proc(a, sampling_rate=16000, return_tensors="pt").input_values
            ids = m(iv).logits.argmax(-1)[0]
            return proc.decode(ids.tolist())
    once(x[:16000])
    t0 = time.perf_counter()
    text = once(x)
    report("transformers-torch", load, time.perf_counter() - t0, len(x), text)


def main():
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2])
    elif cmd == "audio":
        audio(sys.argv[2], float(sys.argv[3]))
    elif cmd == "mlx":
        run_mlx(sys.argv[2], sys.argv[3])
    elif cmd == "torch":
        run_torch(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
