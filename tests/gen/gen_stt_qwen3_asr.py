#!/usr/bin/env python3
"""gen_stt_qwen3_asr.py - tiny random-weight Qwen3-ASR folders (float32 and 4-bit) made with
mlx-audio, and goldens for lib/models/qwen3_asr.c.

Run from the repo root:
    HF_HUB_OFFLINE=1 /work/venv-tts/bin/python tests/gen/gen_stt_qwen3_asr.py

Reference: mlx-audio 0.6.2 (mlx_audio/stt/models/qwen3_asr), mlx 0.32.4, transformers 5.25.0
(WhisperFeatureExtractor, numpy path: no torch), tokenizers 0.23.3.

Outputs (tests/data/stt/qwen3_asr/):
  tiny/       config.json (the HF layout mlx-community keeps: thinker_config with audio_config /
              text_config, scaled down; n_window_infer 200 so that clips of a few seconds span
              several attention windows), preprocessor_config.json (Qwen3-ASR's: 128 mels),
              tokenizer files (byte-level BPE of 400 ids + Qwen's <|endoftext|>, <|im_start|>,
              <|im_end|>, <|audio_start|>, <|audio_end|>, <|audio_pad|> (special) and <asr_text>
              (not special, as the reference's language parsing needs)), model.safetensors
              (random weights, fixed seed; every parameter of the mlx-audio model)
  tiny-4bit/  the same quantized as mlx-audio's convert does (nn.quantize group 64, 4 bits, the
              model's predicate: not the audio tower)
  clips/      the test clips as raw 16-kHz s16le (zstd): speech (tests/data/audio), two espeak-ng
              sentences resampled from 22050 Hz, noise, a 0.4-s noise burst (padded to 1 s by the
              reference), a long espeak-ng clip cut into 4-s chunks (chunk_duration=4)
  golden/     per model and clip: features of the first chunk [128, T], encoder output [N, H],
              first-step logits [V], prompt ids, greedy ids per chunk, text / language / segments
              as model.generate returns them (goldens.json + .f32.zst arrays)
"""
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import wave

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "data", "stt", "qwen3_asr")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SEED = 20261207
BASE_VOCAB = 400
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_start|>", "<|audio_end|>", "<|audio_pad|>"]
PLAIN = ["<asr_text>"]
EMBED_STD = float(os.environ.get("EMBED_STD", "0.1"))
BRANCH_GAIN = float(os.environ.get("BRANCH_GAIN", "1.0"))
VOCAB = BASE_VOCAB + len(SPECIALS) + len(PLAIN)

CONFIG = {
    "architectures": ["Qwen3ASRForConditionalGeneration"],
    "model_type": "qwen3_asr",
    "support_languages": ["Chinese", "English", "French", "German"],
    "thinker_config": {
        "model_type": "qwen3_asr_thinker",
        "audio_token_id": BASE_VOCAB + 5,
        "audio_start_token_id": BASE_VOCAB + 3,
        "audio_end_token_id": BASE_VOCAB + 4,
        "audio_config": {
            "num_mel_bins": 128, "encoder_layers": 2, "encoder_attention_heads": 4, "encoder_ffn_dim": 128,
            "d_model": 64, "activation_function": "gelu", "scale_embedding": False, "max_source_positions": 1500,
            "n_window": 50, "output_dim": 64, "n_window_infer": 200, "conv_chunksize": 500,
            "downsample_hidden_size": 16,
        },
        "text_config": {
            "model_type": "qwen3", "vocab_size": VOCAB, "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
            "hidden_act": "silu", "max_position_embeddings": 65536, "rms_norm_eps": 1e-6,
            "tie_word_embeddings": True, "rope_theta": 1000000.0, "attention_bias": False,
        },
    },
}

PREPROC = {
    "chunk_length": 30, "dither": 0.0, "feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 128,
    "hop_length": 160, "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000, "padding_side": "right",
    "padding_value": 0.0, "processor_class": "Qwen3ASRProcessor", "return_attention_mask": True,
    "sampling_rate": 16000,
}

# (name, how, language, chunk_duration, max_tokens)
CASES = [
    ("speech", "speech", None, 1200.0, 24),
    ("fox", "espeak:The quick brown fox jumps over the lazy dog.", None, 1200.0, 24),
    ("fox_en", "espeak:The quick brown fox jumps over the lazy dog.", "english", 1200.0, 24),
    ("noise", "noise:2.0", None, 1200.0, 24),
    ("short", "noise:0.4", None, 1200.0, 16),
    ("long", "espeak:Speech recognition turns sound into text. This clip is longer than one chunk, so it is "
             "cut at quiet points and every piece is transcribed alone. Then the pieces are joined.",
     None, 4.0, 60),
]


def build_tokenizer():
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    corpus = os.path.join(ROOT, "tests", "data", "tokenizers", "corpus.txt")
    lines = [json.loads(l) for l in open(corpus, encoding="utf-8")]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern=__import__("tokenizers").Regex(
            r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"),
            behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tr = trainers.BpeTrainer(vocab_size=BASE_VOCAB, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                             show_progress=False)
    tok.train_from_iterator(lines, tr)
    assert tok.get_vocab_size() == BASE_VOCAB, tok.get_vocab_size()
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in SPECIALS])
    tok.add_tokens([AddedToken(s, normalized=False, special=False) for s in PLAIN])
    for i, s in enumerate(SPECIALS + PLAIN):
        assert tok.token_to_id(s) == BASE_VOCAB + i, s
    return tok


def write_tokenizer_files(tok, out):
    tok.save(os.path.join(out, "tokenizer.json"))
    added = {}
    for s in SPECIALS + PLAIN:
        added[str(tok.token_to_id(s))] = {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": s in SPECIALS}
    cfg = {"add_prefix_space": False, "added_tokens_decoder": added, "additional_special_tokens": SPECIALS[1:],
           "bos_token": None, "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>", "errors": "replace",
           "model_max_length": 65536, "pad_token": "<|endoftext|>", "split_special_tokens": False,
           "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": None}
    json.dump(cfg, open(os.path.join(out, "tokenizer_config.json"), "w"), indent=2)


def random_weights(model, seed):
    """Every parameter (names sorted, one Generator): norm weights 1 + 0.1N, biases 0.02N, conv
    kernels N(0, 1/fan_in), token embeddings N(0, EMBED_STD^2), the text layers' o_proj / down_proj
    N(0, BRANCH_GAIN^2/fan_in) (with the tied head, a residual stream dominated by the input
    embedding makes greedy decoding repeat its input token), other matrices N(0, 1/fan_in)."""
    from mlx.utils import tree_flatten
    rng = np.random.default_rng(seed)
    out = {}
    for name, p in sorted(tree_flatten(model.parameters()), key=lambda kv: kv[0]):
        shape = tuple(p.shape)
        z = rng.standard_normal(shape)
        leaf = name.rsplit(".", 2)
        if name.endswith(".bias"):
            w = 0.02 * z
        elif ("norm" in leaf[-2] or "ln_post" in leaf[-2]) and name.endswith(".weight"):
            w = 1.0 + 0.1 * z
        elif "embed_tokens" in name:
            w = EMBED_STD * z
        elif name.startswith("model.layers.") and ("o_proj" in name or "down_proj" in name):
            w = BRANCH_GAIN * z / math.sqrt(shape[-1])
        elif "conv2d" in name:   # MLX layout [out, kh, kw, in]
            w = z / math.sqrt(shape[1] * shape[2] * shape[3])
        else:
            assert len(shape) == 2, name
            w = z / math.sqrt(shape[-1])
        out[name] = w.astype(np.float32)
    return out


def s16(x):
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def make_clip(how, rng):
    if how == "speech":
        w = wave.open(os.path.join(ROOT, "tests", "data", "audio", "speech_s16_mono_16k.wav"))
        return np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).copy()
    if how.startswith("noise:"):
        n = int(float(how[6:]) * 16000)
        return s16(0.1 * rng.standard_normal(n))
    text = how[len("espeak:"):]
    with tempfile.TemporaryDirectory() as td:
        p = os.path.join(td, "e.wav")
        subprocess.run(["espeak-ng", "-w", p, text], check=True)
        w = wave.open(p)
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        sr = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64) / 32768.0
    from scipy.signal import resample_poly
    g = math.gcd(16000, sr)
    y = resample_poly(x, 16000 // g, sr // g)
    return s16(y)


def write_zst(path, data):
    raw = path[:-4]
    open(raw, "wb").write(data)
    subprocess.run(["zstd", "-q", "-19", "-f", "--rm", raw, "-o", path], check=True)


def run_case(model, name, clip, pcm, language, chunk_duration, max_tokens, gdir, label):
    import mlx.core as mx
    from mlx_audio.stt.models.qwen3_asr.qwen3_asr import split_audio_into_chunks
    audio = pcm.astype(np.float32) / 32768.0
    chunks = split_audio_into_chunks(audio, sr=16000, chunk_duration=chunk_duration, min_chunk_duration=1.0)
    # first chunk: features, encoder output, prompt, first-step logits
    c0 = chunks[0][0]
    feats, fmask, n_audio = model._preprocess_audio(c0)
    enc = model.get_audio_features(feats, fmask)
    mx.eval(enc)
    ids = model._build_prompt(n_audio, language, None)
    logits = model(ids, input_features=feats, feature_attention_mask=fmask)[0, -1]
    mx.eval(logits)
    tag = f"{label}_{name}"
    feat = f"golden/{clip}_feat.f32.zst"   # the same for both models
    if not os.path.exists(os.path.join(OUT, feat)):
        write_zst(os.path.join(OUT, feat), np.asarray(feats[0], dtype=np.float32).tobytes())
    write_zst(os.path.join(gdir, f"{tag}_enc.f32.zst"), np.asarray(enc, dtype=np.float32).tobytes())
    write_zst(os.path.join(gdir, f"{tag}_logits.f32.zst"), np.asarray(logits, dtype=np.float32).tobytes())
    # greedy ids per chunk, with the token budget shared as generate() shares it
    ids_per_chunk = []
    remaining = max_tokens
    for ch, _ in chunks:
        if remaining <= 0:
            break
        got = [int(t) for t, _ in model.stream_generate(ch, max_tokens=remaining, language=language)]
        ids_per_chunk.append(got)
        remaining -= len(got)
    res = model.generate(audio, max_tokens=max_tokens, language=language, chunk_duration=chunk_duration)
    return {
        "name": name, "model": label, "clip": f"clips/{clip}.s16.zst", "n_samples": int(len(pcm)),
        "language_opt": language, "chunk_duration": chunk_duration, "max_tokens": max_tokens,
        "chunks": [[float(off), int(len(c))] for c, off in chunks],
        "feat": feat, "feat_shape": list(feats[0].shape),
        "enc": f"golden/{tag}_enc.f32.zst", "enc_shape": list(enc.shape),
        "logits": f"golden/{tag}_logits.f32.zst",
        "prompt_ids": [int(i) for i in np.asarray(ids)[0]],
        "ids": ids_per_chunk,
        "text": res.text,
        "language": list(res.language),
        "segments": [{"text": s["text"], "start": float(s["start"]), "end": float(s["end"]),
                      "language": s["language"]} for s in res.segments],
    }


def main():
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten
    from mlx_audio.stt.utils import load_model

    if os.path.isdir(OUT):
        for sub in ("tiny", "tiny-4bit", "clips", "golden"):
            shutil.rmtree(os.path.join(OUT, sub), ignore_errors=True)
    tiny, q4 = os.path.join(OUT, "tiny"), os.path.join(OUT, "tiny-4bit")
    cdir, gdir = os.path.join(OUT, "clips"), os.path.join(OUT, "golden")
    for d in (tiny, q4, cdir, gdir):
        os.makedirs(d, exist_ok=True)

    tok = build_tokenizer()
    from mlx_audio.stt.models.qwen3_asr.config import ModelConfig
    from mlx_audio.stt.models.qwen3_asr.qwen3_asr import Model
    m = Model(ModelConfig.from_dict(json.loads(json.dumps(CONFIG))))
    w = random_weights(m._model, SEED)
    mx.save_safetensors(os.path.join(tiny, "model.safetensors"), {k: mx.array(v) for k, v in w.items()},
                        metadata={"format": "mlx"})
    for d in (tiny, q4):
        write_tokenizer_files(tok, d)
        json.dump(PREPROC, open(os.path.join(d, "preprocessor_config.json"), "w"), indent=2)
    json.dump(CONFIG, open(os.path.join(tiny, "config.json"), "w"), indent=2)

    # 4-bit: mlx-audio's quantize_model on the loaded float model
    fm = load_model(tiny)
    inner = fm._model

    def pred(path, module):
        if not hasattr(module, "to_quantized") or module.weight.shape[-1] % 64:
            return False
        return inner.model_quant_predicate(path, module)

    nn.quantize(inner, 64, 4, mode="affine", class_predicate=pred)
    qw = dict(tree_flatten(inner.parameters()))
    mx.save_safetensors(os.path.join(q4, "model.safetensors"), qw, metadata={"format": "mlx"})
    qcfg = dict(CONFIG)
    qcfg["quantization"] = {"group_size": 64, "bits": 4, "mode": "affine"}
    qcfg["quantization_config"] = qcfg["quantization"]
    json.dump(qcfg, open(os.path.join(q4, "config.json"), "w"), indent=2)

    rng = np.random.default_rng(SEED + 1)
    clips, clip_name = {}, {}
    for name, how, *_ in CASES:
        if how not in clips:
            clips[how] = make_clip(how, rng)
            clip_name[how] = name
            write_zst(os.path.join(cdir, f"{name}.s16.zst"), clips[how].astype("<i2").tobytes())

    cases = []
    for label, folder in (("f32", tiny), ("q4", q4)):
        model = load_model(folder)
        for name, how, lang, cd, mt in CASES:
            c = run_case(model, name, clip_name[how], clips[how], lang, cd, mt, gdir, label)
            print(label, name, c["ids"], repr(c["text"]), c["language"], file=sys.stderr)
            cases.append(c)
    meta = {"generator": "tests/gen/gen_stt_qwen3_asr.py", "mlx_audio": "0.6.2", "mlx": mx.__version__,
            "cases": cases}
    json.dump(meta, open(os.path.join(gdir, "goldens.json"), "w"), indent=1, ensure_ascii=False)
    tot = 0
    for dp, _, fs in os.walk(OUT):
        tot += sum(os.path.getsize(os.path.join(dp, f)) for f in fs)
    print(f"total {tot} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
