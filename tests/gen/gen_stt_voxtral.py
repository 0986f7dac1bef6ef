#!/usr/bin/env python3
"""gen_stt_voxtral.py - the tiny random-weight Voxtral folders and their goldens
for tests/unit/test_stt_voxtral.c.

Reference: mlx-audio 0.6.2 (mlx_audio/stt/models/voxtral), whose generate()
builds the prompt and the features with transformers' VoxtralProcessor
(apply_transcription_request: mistral-common's encode_transcription for the
token ids, WhisperFeatureExtractor for the log-mel of the audio padded to a
multiple of 30 s), runs the audio tower on every 30-s chunk, reshapes the
frames by 4 into the projector, puts the rows in place of the [AUDIO] tokens
and decodes greedily with the Llama text model.

Environment: /work/venv-voxtral (mlx-audio 0.6.2, transformers 5.25, torch and
mlx from /work/venv-tts and /work/venv-mlx through a .pth file, plus
mistral_common 1.13.1, soundfile and soxr installed there).

Folders written (tests/data/stt/voxtral/):
  tiny/      config.json (the real Voxtral-Mini-3B-2507 keys, widths scaled
             down), model.safetensors (float32, mlx-audio's parameter names
             and layout), tekken.json (mistral-common's format: a synthetic
             byte-level BPE of 256 bytes + merges learned on a small corpus,
             100 special tokens), preprocessor_config.json
  tiny-q4/   the same converted by mlx_audio.convert (quantize, group 64,
             4 bits; the audio tower stays float as model_quant_predicate says),
             its two conv weights then stored in PyTorch's [out, in, k] order
  goldens.json + *.f32.zst (raw little-endian float32, zstd)
Clips: tests/data/audio/speech_s16_mono_16k.wav, an espeak-ng clip
(voxtral/clip_espeak.wav), seeded noise (made in the C test too: the LCG
below), and a 35-s clip = the speech file tiled (two chunks).
Run:  /work/venv-voxtral/bin/python tests/gen/gen_stt_voxtral.py  (repo root)
"""
import base64
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests/data/stt/voxtral")
SPEECH = os.path.join(ROOT, "tests/data/audio/speech_s16_mono_16k.wav")
MAX_TOKENS = 24
N_SPECIAL = 100
N_MERGES = 300

PATTERN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
           r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|"
           r"\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")

SPECIALS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
            "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]",
            "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
            "[TOOL_CONTENT]", "<SPECIAL_20>", "<SPECIAL_21>", "<SPECIAL_22>", "<SPECIAL_23>", "[AUDIO]",
            "[BEGIN_AUDIO]", "<SPECIAL_26>", "<SPECIAL_27>", "<SPECIAL_28>", "<SPECIAL_29>", "<SPECIAL_30>",
            "<SPECIAL_31>", "[ARGS]", "[CALL_ID]", "[TRANSCRIBE]"]

CORPUS = """The quick brown fox jumps over the lazy dog. Speech recognition turns sound into text.
lang:en lang:fr lang:de lang:es lang:it lang:pt lang:nl lang:hi
Hello world, this is a test of the transcription system. Numbers like 1234 and 56 are split.
She sells sea shells by the sea shore. Voxtral listens to audio and writes what it hears.
A language model predicts the next token; the encoder reads the mel spectrogram of the sound.
Bonjour le monde, ceci est un essai. Guten Tag, wie geht es Ihnen? Hola, que tal?
"""


def zwrite(path, arr):
    raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(raw)
    subprocess.run(["zstd", "-q", "-19", "-f", "--rm", tmp, "-o", path], check=True)


# ------------------------------------------------------------------ tokenizer

def train_merges(text, n):
    """Plain byte-level BPE over the pattern's pieces (the ranks tiktoken uses)."""
    import regex
    words = collections.Counter(tuple(bytes([b]) for b in p.encode()) for p in regex.findall(PATTERN, text))
    vocab = [bytes([b]) for b in range(256)]
    have = set(vocab)
    for _ in range(n):
        pairs = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        (a, b), _ = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        m = a + b
        if m not in have:
            vocab.append(m)
            have.add(m)
        nw = collections.Counter()
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and w[i] == a and w[i + 1] == b:
                    out.append(m)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            nw[tuple(out)] += c
        words = nw
    return vocab


def write_tekken(path):
    vocab = train_merges(CORPUS * 3, N_MERGES)
    specials = []
    for i in range(N_SPECIAL):
        s = SPECIALS[i] if i < len(SPECIALS) else "<SPECIAL_%d>" % i
        specials.append({"rank": i, "token_str": s, "is_control": True})
    ent = []
    for r, b in enumerate(vocab):
        try:
            ts = b.decode("utf-8")
        except UnicodeDecodeError:
            ts = None
        ent.append({"rank": r, "token_bytes": base64.b64encode(b).decode(), "token_str": ts})
    tk = {
        "config": {"pattern": PATTERN, "num_vocab_tokens": len(vocab), "default_vocab_size": N_SPECIAL + len(vocab),
                   "default_num_special_tokens": N_SPECIAL, "version": "v7"},
        "vocab": ent,
        "special_tokens": specials,
        "audio": {"sampling_rate": 16000, "frame_rate": 12.5,
                  "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400},
                  "chunk_length_s": 30.0},
    }
    with open(path, "w") as f:
        json.dump(tk, f, ensure_ascii=False)
    return N_SPECIAL + len(vocab)


# ------------------------------------------------------------------ model

def make_config(vocab):
    d_audio = 32
    audio = {"model_type": "voxtral_encoder", "hidden_size": d_audio, "num_hidden_layers": 2,
             "intermediate_size": 4 * d_audio, "num_attention_heads": 4, "num_key_value_heads": 4,
             "head_dim": d_audio // 4, "vocab_size": 51866, "num_mel_bins": 128, "encoder_layers": 2,
             "encoder_attention_heads": 4, "encoder_ffn_dim": 4 * d_audio, "d_model": d_audio,
             "max_source_positions": 1500, "activation_function": "gelu", "scale_embedding": False,
             "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0, "layerdrop": 0.0,
             "initializer_range": 0.02}
    text = {"model_type": "llama", "vocab_size": vocab, "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 100000000.0,
            "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
            "use_cache": True, "sliding_window": None, "rope_scaling": None, "attention_dropout": 0.0,
            "initializer_range": 0.02}
    return {"architectures": ["VoxtralForConditionalGeneration"], "model_type": "voxtral",
            "audio_token_id": 24, "projector_hidden_act": "gelu", "hidden_size": 64, "vocab_size": vocab,
            "audio_config": audio, "text_config": text, "torch_dtype": "float32"}


def make_weights(cfg, seed=1234):
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_audio.stt.models.voxtral.voxtral import Model, ModelConfig
    model = Model(ModelConfig.from_dict(cfg))
    rng = np.random.default_rng(seed)
    out = {}
    for k, v in tree_flatten(model.parameters()):
        shape = v.shape
        if k.endswith("norm.weight") or k.endswith("layer_norm.weight"):
            a = 1.0 + 0.1 * rng.standard_normal(shape)
        elif k.endswith(".bias"):
            a = 0.1 * rng.standard_normal(shape)
        elif "embed_positions" in k:
            a = 0.5 * rng.standard_normal(shape)
        elif "embed_tokens" in k:
            a = rng.standard_normal(shape)
        elif "lm_head" in k:
            a = 2.0 * rng.standard_normal(shape) / np.sqrt(shape[-1])
        else:
            fan_in = int(np.prod(shape[1:]))
            gain = 1.2 if k.startswith("audio_tower") else 2.0
            a = gain * rng.standard_normal(shape) / np.sqrt(fan_in)
        out[k] = mx.array(a.astype(np.float32))
    return out


# ------------------------------------------------------------------ audio

def noise_clip(n=40000, seed=99):
    """int16-valued LCG noise / 32768, mirrored in test_stt_voxtral.c"""
    out = np.empty(n, dtype=np.int32)
    s = seed
    for i in range(n):
        s = (s * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = ((s >> 8) % 16001) - 8000
    return out.astype(np.int16)


def read_s16(path):
    import soundfile as sf
    d, sr = sf.read(path, dtype="int16")
    assert sr == 16000 and d.ndim == 1
    return d


def write_s16(path, d):
    import soundfile as sf
    sf.write(path, d, 16000, subtype="PCM_16")


def espeak_clip(path):
    with tempfile.TemporaryDirectory() as td:
        raw = os.path.join(td, "e.wav")
        subprocess.run(["espeak-ng", "-w", raw, "Hello world, this is a test of speech recognition."], check=True)
        import soundfile as sf
        import soxr
        d, sr = sf.read(raw, dtype="float32")
        d = soxr.resample(d, sr, 16000, quality="HQ")
        d = np.clip(np.round(d * 32768.0), -32768, 32767).astype(np.int16)
    write_s16(path, d)


# ------------------------------------------------------------------ reference run

def run_folder(fdir, clips, gold, tag, store_arrays):
    import mlx.core as mx
    from mlx_audio.lm.generate import generate_step
    from mlx_audio.stt.utils import load
    model = load(fdir)
    cases = []
    for name, path, lang in clips:
        inputs = model._processor.apply_transcription_request(language=lang, audio=path,
                                                             model_id=model.config.model_repo)
        ids = [int(t) for t in np.array(inputs["input_ids"])[0]]
        feats = np.array(inputs["input_features"], dtype=np.float32)  # [chunks, 128, 3000]
        xf = mx.array(feats).transpose(0, 2, 1)
        enc = np.array(model.audio_tower(xf))                        # [chunks, 1500, d]
        proj = np.array(model.get_audio_embeds(xf))                  # [chunks * 375, H]
        emb = model._merge_input_embeddings(mx.array([ids]), xf)
        logits = np.array(model.language_model(input_embeddings=emb))[0, -1]
        toks = [int(t) for t, _ in model.stream_generate(input_ids=mx.array([ids]), input_features=xf,
                                                       max_tokens=MAX_TOKENS,
                                                       sampler=lambda x: mx.argmax(x, axis=-1))]
        out = model.generate(path, language=lang, max_tokens=MAX_TOKENS)
        case = {"name": name, "audio": os.path.relpath(path, ROOT), "language": lang, "prompt_ids": ids,
                "n_chunks": int(feats.shape[0]), "ids": toks, "text": out.text,
                "logits_argmax": int(np.argmax(logits))}
        base = "%s_%s" % (tag, name)
        zwrite(os.path.join(OUT, base + "_logits.f32.zst"), logits)
        case["logits"] = base + "_logits.f32.zst"
        if store_arrays:
            if name == "speech":
                zwrite(os.path.join(OUT, "feat_speech.f32.zst"), feats)
                case["features"] = "feat_speech.f32.zst"
                zwrite(os.path.join(OUT, "enc_speech.f32.zst"), enc[0])
                case["encoder"] = "enc_speech.f32.zst"
                zwrite(os.path.join(OUT, "proj_speech.f32.zst"), proj)
                case["projector"] = "proj_speech.f32.zst"
            else:
                # every 16th frame of each chunk's features, every 10th encoder row, every 5th projector row
                zwrite(os.path.join(OUT, "feat_%s_s16.f32.zst" % name), feats[:, :, ::16])
                case["features_s16"] = "feat_%s_s16.f32.zst" % name
                zwrite(os.path.join(OUT, "enc_%s_s10.f32.zst" % name), enc[:, ::10])
                case["encoder_s10"] = "enc_%s_s10.f32.zst" % name
                zwrite(os.path.join(OUT, "proj_%s_s5.f32.zst" % name), proj[::5])
                case["projector_s5"] = "proj_%s_s5.f32.zst" % name
        print(tag, name, "chunks", feats.shape[0], "prompt", len(ids), "ids", toks, repr(out.text), file=sys.stderr)
        cases.append(case)
    gold[tag] = cases


ENCODE_TEXTS = ["lang:en", "lang:fr", "lang:de", "lang:zh", "Hello world, 1234 and 56!",
                "  leading spaces\n\nand newlines\r\n", "She sells sea shells.  Voxtral's tokens: don't stop",
                "caf\u00e9 na\u00efve \u00fcber \u65e5\u672c\u8a9e \U0001F600 emoji", "tabs\tand/slashes//\n",
                "MixedCASE words ALLCAPS camelCase", ""]


def tokenizer_cases(path):
    """mistral-common's own encoding of a few texts (Tekkenizer.encode, no BOS/EOS) and its
    KEEP-policy decoding of ids with specials and broken UTF-8."""
    from mistral_common.tokens.tokenizers.base import SpecialTokenPolicy
    from mistral_common.tokens.tokenizers.tekken import Tekkenizer
    tk = Tekkenizer.from_file(path)
    enc = [{"text": t, "ids": tk.encode(t, bos=False, eos=False)} for t in ENCODE_TEXTS]
    seqs = [[1, 3, 24, 25, 4, 34], [100 + 0xC3, 3, 100 + 0x61, 100 + 0xE2, 100 + 0x82], [100 + 0xF0, 100 + 0x9F],
            [2, 11, 99, 150, 151, 152], []]
    dec = [{"ids": q, "text": tk.decode(q, special_token_policy=SpecialTokenPolicy.KEEP)} for q in seqs]
    return {"encode": enc, "decode": dec}


def main():
    import mlx.core as mx
    os.makedirs(OUT, exist_ok=True)
    fdir = os.path.join(OUT, "tiny")
    qdir = os.path.join(OUT, "tiny-q4")
    for d in (fdir, qdir):
        shutil.rmtree(d, ignore_errors=True)
    os.makedirs(fdir)
    vocab = write_tekken(os.path.join(fdir, "tekken.json"))
    cfg = make_config(vocab)
    with open(os.path.join(fdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    pre = {"chunk_length": 30, "dither": 0.0, "feature_extractor_type": "WhisperFeatureExtractor",
           "feature_size": 128, "hop_length": 160, "n_fft": 400, "n_samples": 480000, "nb_max_frames": 3000,
           "padding_side": "right", "padding_value": 0.0, "processor_class": "VoxtralProcessor",
           "return_attention_mask": False, "sampling_rate": 16000}
    with open(os.path.join(fdir, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2)
    mx.save_safetensors(os.path.join(fdir, "model.safetensors"), make_weights(cfg), metadata={"format": "mlx"})

    from mlx_audio.convert import convert
    convert(fdir, qdir, quantize=True, q_group_size=64, q_bits=4, model_domain="stt")
    # the q4 folder keeps its conv weights in the Hugging Face / PyTorch order [out, in, k]
    # (as the published checkpoint has them; mlx-audio's sanitize transposes them on load),
    # so the tests cover both layouts
    qw = os.path.join(qdir, "model.safetensors")
    w = mx.load(qw)
    for k in ("audio_tower.conv1.weight", "audio_tower.conv2.weight"):
        w[k] = mx.array(np.ascontiguousarray(np.array(w[k]).transpose(0, 2, 1)))
    mx.save_safetensors(qw, w, metadata={"format": "mlx"})

    # clips
    esp = os.path.join(OUT, "clip_espeak.wav")
    if not os.path.exists(esp):
        espeak_clip(esp)
    td = tempfile.mkdtemp()
    noise = os.path.join(td, "noise.wav")
    write_s16(noise, noise_clip())
    sp = read_s16(SPEECH)
    n_long = 35 * 16000
    longp = os.path.join(td, "long.wav")
    write_s16(longp, np.resize(sp, n_long))
    clips = [("speech", SPEECH, "en"), ("espeak", esp, "en"), ("noise", noise, "fr"), ("long", longp, "en")]
    gold = {"reference": "mlx-audio 0.6.2 (transformers 5.25 VoxtralProcessor, mistral_common 1.13.1)",
            "max_tokens": MAX_TOKENS, "tekken": tokenizer_cases(os.path.join(fdir, "tekken.json")),
            "noise": {"n": 40000, "seed": 99}, "long": {"n": n_long, "tile": os.path.relpath(SPEECH, ROOT)}}
    run_folder(fdir, clips, gold, "f32", True)
    run_folder(qdir, clips, gold, "q4", False)
    for c in gold["f32"] + gold["q4"]:
        if c["name"] in ("noise", "long"):
            c["audio"] = None
    with open(os.path.join(OUT, "goldens.json"), "w") as f:
        json.dump(gold, f, indent=1, ensure_ascii=False)
    shutil.rmtree(td)


if __name__ == "__main__":
    main()
