#!/usr/bin/env python3
"""gen_stt_wav2vec2.py - tiny random-weight Wav2Vec2 / HuBERT CTC folders and
their goldens for tests/unit/test_stt_wav2vec2.c.

References:
  * wav2vec2 folders: mlx-audio 0.6.2 (/work/venv-tts).  Its CTC model is
    mlx_audio.stt.models.mms.Model (Wav2Vec2Model of models/wav2vec/wav2vec.py
    plus lm_head); model_type "wav2vec2" itself is not in mlx-audio's remapping,
    so the goldens load the folder with load_model(dir, model_type="mms"), the
    way mlx-audio runs every Wav2Vec2ForCTC checkpoint.  Features come from
    mlx-audio's Wav2Vec2FeatureExtractor (models/wav2vec/feature_extractor.py:
    (x - mean) / sqrt(var + 1e-7), float32, when do_normalize).
  * hubert folder: transformers 5.25 HubertForCTC with torch on the CPU, float32
    (/work/venv-mlx, read only; mlx-audio has no HuBERT).  Run this script with
    /work/venv-tts/bin/python; it calls /work/venv-mlx/bin/python for HuBERT
    (this file with --hubert).
  * text, char and word offsets: transformers' Wav2Vec2CTCTokenizer.decode of
    the per-frame arg-max ids (output_char_offsets / output_word_offsets), as
    the ASR pipeline does; times = offset * prod(conv_stride) / 16000.

Folders (tests/data/stt/wav2vec2/): the weights are written as transformers saves
them (torch conv layouts [out, in, k], "wav2vec2." / "hubert." prefixes,
lm_head), which is the layout mlx-audio's sanitize expects:
  w2v-base    post-LN encoder, group-norm first conv, no conv bias, even
              positional kernel (the same-pad cut), weight_g / weight_v names
  w2v-stable  pre-LN ("StableLayerNorm") encoder, layer-norm convs with bias,
              odd positional kernel, parametrizations.weight.original0/1 names
  w2v-base-q4 w2v-base with every Linear MLX-quantized (group 64, 4 bits: what
              mlx-audio's apply_quantization + nn.quantize make of it; convs
              stay float, as mlx's Conv1d has no to_quantized)
  hubert      HubertForCTC, post-LN, no feature-projection LayerNorm
Clips (rebuilt by the C test the same way): the committed speech wav
(tests/data/audio/speech_s16_mono_16k.wav), 2 s of LCG noise, and a 9.3-s
clip of the speech four times with noise between (long audio: no chunking in
mlx-audio, so the whole clip is one forward pass).

golden/pipeline.json (w2v-base, w2v-stable, hubert): transformers' ASR pipeline
(torch CPU) on the long clip, whole and with chunk_length_s = 2 (stride 1/6
of it) and word timestamps: the reference of our windowed long-audio path
(mlx-audio does not chunk).  Its whole-clip text equals mlx-audio's on every
folder (the second peer agrees).

Run: /work/venv-tts/bin/python tests/gen/gen_stt_wav2vec2.py   (repo root;
     --pipeline with /work/venv-mlx/bin/python redoes only pipeline.json)
"""
import json
import os
import shutil
import subprocess
import sys
import wave

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests/data/stt/wav2vec2")

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U",
         "M", "W", "C", "F", "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z"]

BASE = dict(
    model_type="wav2vec2", architectures=["Wav2Vec2ForCTC"], vocab_size=32, hidden_size=64,
    num_hidden_layers=2, num_attention_heads=4, intermediate_size=128, hidden_act="gelu",
    layer_norm_eps=1e-5, feat_extract_norm="group", feat_extract_activation="gelu",
    conv_dim=[32, 32, 32, 32, 32, 32, 64], conv_stride=[5, 2, 2, 2, 2, 2, 2], conv_kernel=[10, 3, 3, 3, 3, 2, 2],
    conv_bias=False, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, num_feat_extract_layers=7,
    do_stable_layer_norm=False, pad_token_id=0, bos_token_id=1, eos_token_id=2, ctc_loss_reduction="sum")
STABLE = dict(BASE, hidden_size=32, num_attention_heads=2, intermediate_size=64, feat_extract_norm="layer",
              conv_bias=True, conv_dim=[16, 16, 16, 16, 16, 16, 32], num_conv_pos_embeddings=15,
              num_conv_pos_embedding_groups=2, do_stable_layer_norm=True, layer_norm_eps=1e-5)
HUBERT = dict(BASE, model_type="hubert", architectures=["HubertForCTC"], hidden_size=32, num_attention_heads=2,
              intermediate_size=64, conv_dim=[16, 16, 16, 16, 16, 16, 32], num_conv_pos_embeddings=16,
              num_conv_pos_embedding_groups=2, feat_proj_layer_norm=False, conv_bias=False)
PREPROC = {"do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
           "padding_side": "right", "padding_value": 0.0, "return_attention_mask": False, "sampling_rate": 16000}
TOKCFG = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>",
          "word_delimiter_token": "|", "do_lower_case": False, "tokenizer_class": "Wav2Vec2CTCTokenizer",
          "replace_word_delimiter_char": " "}


# ---------------------------------------------------------------- audio
def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1 and w.getframerate() == 16000
        raw = w.readframes(w.getnframes())
    return (np.frombuffer(raw, "<i2").astype(np.float32) / np.float32(32768.0)).astype(np.float32)


def lcg_noise(n, seed, amp):
    """int samples in [-amp, amp] / 32768 (exact in float32); mirrored in the C test"""
    out = np.empty(n, dtype=np.int32)
    s = seed
    for i in range(n):
        s = (s * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = ((s >> 8) % (2 * amp + 1)) - amp
    return (out.astype(np.float32) / np.float32(32768.0)).astype(np.float32)


def clips():
    sp = read_wav(os.path.join(ROOT, "tests/data/audio/speech_s16_mono_16k.wav"))
    noise = lcg_noise(32000, 777, 3000)
    gap = lcg_noise(8000, 99, 300)
    long = np.concatenate([sp, gap, sp, gap, sp, gap, sp, gap])
    return [("speech", sp), ("noise", noise), ("long", long)]


# ---------------------------------------------------------------- helpers
def zwrite(path, arr):
    raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(raw)
    subprocess.run(["zstd", "-q", "-19", "-f", "--rm", tmp, "-o", path], check=True)


def write_side_files(d, cfg):
    os.makedirs(d, exist_ok=True)
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)
    json.dump({t: i for i, t in enumerate(VOCAB)}, open(os.path.join(d, "vocab.json"), "w"))
    json.dump(TOKCFG, open(os.path.join(d, "tokenizer_config.json"), "w"), indent=2)
    json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
              open(os.path.join(d, "special_tokens_map.json"), "w"))
    json.dump(PREPROC, open(os.path.join(d, "preprocessor_config.json"), "w"), indent=2)


FEAT_STRIDE = 16   # every 16th normalized sample goes into the goldens


def hf_decode(d, argmax, ratio):
    from transformers import Wav2Vec2CTCTokenizer
    tok = Wav2Vec2CTCTokenizer.from_pretrained(d)
    out = tok.decode(argmax.tolist(), output_char_offsets=True, output_word_offsets=True)
    sec = ratio / 16000.0
    words = [{"word": w["word"], "start": w["start_offset"] * sec, "end": w["end_offset"] * sec}
             for w in out.word_offsets]
    chars = [{"char": c["char"], "start": int(c["start_offset"]), "end": int(c["end_offset"])}
             for c in out.char_offsets]
    return out.text, words, chars


def ctc_ids(argmax, blank=0):
    ids, prev = [], -1
    for t in argmax.tolist():
        if t != prev and t != blank:
            ids.append(int(t))
        prev = t
    return ids


def save_case(gdir, name, feats, conv, hidden, logits):
    zwrite(os.path.join(gdir, f"{name}.feat.f32.zst"), feats[::FEAT_STRIDE])
    zwrite(os.path.join(gdir, f"{name}.conv.f32.zst"), conv)
    zwrite(os.path.join(gdir, f"{name}.hidden.f32.zst"), hidden)
    zwrite(os.path.join(gdir, f"{name}.logits.f32.zst"), logits)


# ---------------------------------------------------------------- mlx-audio (wav2vec2)
def mlx_params_to_torch_layout(flat):
    """mlx parameter names/arrays -> the transformers checkpoint layout mlx-audio's sanitize reverses"""
    import mlx.core as mx
    out = {}
    for k, v in flat.items():
        if k.endswith(".conv.weight") or k.endswith(".conv.weight_v") or k.endswith(".conv.weight_g"):
            v = v.swapaxes(1, 2)
        out[k] = v
    return {k: mx.array(v) for k, v in out.items()}


def build_mlx(cfg, seed, stable_names):
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten
    from mlx_audio.stt.models.mms import Model, ModelConfig
    mx.random.seed(seed)
    m = Model(ModelConfig.from_dict(cfg))
    flat = dict(tree_flatten(m.parameters()))
    rng = np.random.default_rng(seed)
    for k, v in list(flat.items()):
        if "norm" in k and k.endswith(".weight"):
            flat[k] = mx.array((1.0 + 0.2 * rng.standard_normal(v.shape)).astype(np.float32))
        elif "norm" in k and k.endswith(".bias"):
            flat[k] = mx.array((0.1 * rng.standard_normal(v.shape)).astype(np.float32))
        elif k.endswith(".bias"):
            flat[k] = mx.array((0.05 * rng.standard_normal(v.shape)).astype(np.float32))
    # the output head: wider spread so that frames pick several letters, and a
    # blank bias so that blanks separate them (non-trivial CTC ids)
    H, V = cfg["hidden_size"], cfg["vocab_size"]
    flat["lm_head.weight"] = mx.array((rng.standard_normal((V, H)) * 1.5 / np.sqrt(H)).astype(np.float32))
    b = (0.3 * rng.standard_normal(V)).astype(np.float32)
    b[0] += 1.0
    b[4] += 1.0
    flat["lm_head.bias"] = mx.array(b)
    m.load_weights(list(flat.items()))
    torch_layout = mlx_params_to_torch_layout({k: np.array(v) for k, v in flat.items()})
    if stable_names:   # transformers 5's weight-norm parametrization names
        ren = {}
        for k, v in torch_layout.items():
            k = k.replace(".conv.weight_g", ".conv.parametrizations.weight.original0")
            k = k.replace(".conv.weight_v", ".conv.parametrizations.weight.original1")
            ren[k] = v
        torch_layout = ren
    return m, torch_layout


def run_mlx_goldens(d, gdir, quant_of=None):
    import mlx.core as mx
    from mlx_audio.stt.utils import load_model
    from mlx_audio.stt.models.wav2vec.feature_extractor import Wav2Vec2FeatureExtractor
    m = load_model(d, model_type="mms")
    cfg = json.load(open(os.path.join(d, "config.json")))
    fe = Wav2Vec2FeatureExtractor.from_dict(dict(json.load(open(os.path.join(d, "preprocessor_config.json")))))
    ratio = int(np.prod(cfg["conv_stride"]))
    meta = {"reference": "mlx-audio 0.6.2 (mlx_audio.stt.models.mms.Model, loaded with model_type='mms')",
            "feat_stride": FEAT_STRIDE, "ratio": ratio, "cases": []}
    for name, audio in clips():
        feats = fe(audio, sampling_rate=16000, return_tensors="np")["input_values"][0].astype(np.float32)
        x = mx.array(feats)[None]
        conv = m.wav2vec2.feature_extractor(x).transpose(0, 2, 1)
        out = m.wav2vec2(x)
        logits = m.lm_head(out.last_hidden_state)
        mx.eval(conv, out.last_hidden_state, logits)
        conv, hidden, logits = np.array(conv[0]), np.array(out.last_hidden_state[0]), np.array(logits[0])
        am = logits.argmax(-1)
        ids = [int(t) for t in m._ctc_decode(mx.array(logits)[None])[0]]
        assert ids == ctc_ids(am)
        text, words, chars = hf_decode(d, am, ratio)
        gen = m.generate(mx.array(audio))   # mlx-audio's own path (normalization and text differ; see README)
        save_case(gdir, name, feats, conv, hidden, logits)
        meta["cases"].append({"name": name, "n": len(audio), "frames": int(logits.shape[0]), "ids": ids,
                              "argmax": [int(t) for t in am], "text": text, "words": words,
                              "mlx_audio_generate_text": gen.text})
        print(f"{os.path.basename(d)} {name}: {len(ids)} ids, {len(set(ids))} distinct, text {text!r}")
    json.dump(meta, open(os.path.join(gdir, "meta.json"), "w"), indent=1)


def make_mlx_folder(name, cfg, seed, stable_names=False, quant=False):
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    cfg = dict(cfg)
    m, weights = build_mlx(cfg, seed, stable_names)
    if quant:
        nn.quantize(m, group_size=64, bits=4,
                    class_predicate=lambda p, mod: isinstance(mod, nn.Linear) and mod.weight.shape[-1] % 64 == 0)
        flat = {k: np.array(v) for k, v in tree_flatten(m.parameters())}
        weights = mlx_params_to_torch_layout(flat)
        cfg["quantization"] = {"group_size": 64, "bits": 4}
    write_side_files(d, cfg)
    mx.save_safetensors(os.path.join(d, "model.safetensors"), weights, metadata={"format": "pt"})
    gdir = os.path.join(d, "golden")
    os.makedirs(gdir, exist_ok=True)
    run_mlx_goldens(d, gdir)


# ---------------------------------------------------------------- transformers (hubert)
def make_hubert(name, cfg, seed):
    import torch
    from transformers import HubertConfig, HubertForCTC, Wav2Vec2FeatureExtractor
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    torch.manual_seed(seed)
    hc = HubertConfig(**{k: v for k, v in cfg.items() if k not in ("model_type", "architectures")})
    m = HubertForCTC(hc).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for k, p in m.named_parameters():
            if "norm" in k and k.endswith(".weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif k.endswith(".bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
            elif k.endswith("weight") and p.ndim == 2:
                p.copy_(torch.randn(p.shape, generator=g) / np.sqrt(p.shape[1]))
            elif p.ndim == 3 and "pos_conv" not in k:
                p.copy_(torch.randn(p.shape, generator=g) / np.sqrt(p.shape[1] * p.shape[2]))
        H, V = cfg["hidden_size"], cfg["vocab_size"]
        m.lm_head.weight.copy_(torch.randn((V, H), generator=g) * 4.0 / np.sqrt(H))
        b = 0.3 * torch.randn(V, generator=g)
        b[0] += 1.0
        b[4] += 1.5
        m.lm_head.bias.copy_(b)
    m.save_pretrained(d, safe_serialization=True)
    cfgj = json.load(open(os.path.join(d, "config.json")))
    write_side_files(d, cfgj)
    fe = Wav2Vec2FeatureExtractor.from_pretrained(d)
    ratio = int(np.prod(cfg["conv_stride"]))
    gdir = os.path.join(d, "golden")
    os.makedirs(gdir, exist_ok=True)
    meta = {"reference": "transformers 5.25 HubertForCTC, torch float32 CPU", "feat_stride": FEAT_STRIDE,
            "ratio": ratio, "cases": []}
    for cname, audio in clips():
        feats = fe(audio, sampling_rate=16000, return_tensors="np")["input_values"][0].astype(np.float32)
        with torch.no_grad():
            x = torch.from_numpy(feats)[None]
            conv = m.hubert.feature_extractor(x).transpose(1, 2)[0].numpy()
            hidden = m.hubert(x).last_hidden_state[0].numpy()
            logits = m(x).logits[0].numpy()
        am = logits.argmax(-1)
        ids = ctc_ids(am)
        text, words, chars = hf_decode(d, am, ratio)
        save_case(gdir, cname, feats, conv, hidden, logits)
        meta["cases"].append({"name": cname, "n": len(audio), "frames": int(logits.shape[0]), "ids": ids,
                              "argmax": [int(t) for t in am], "text": text, "words": words})
        print(f"{name} {cname}: {len(ids)} ids, {len(set(ids))} distinct, text {text!r}")
    json.dump(meta, open(os.path.join(gdir, "meta.json"), "w"), indent=1)


PIPE_CHUNK_S = 2.0


def pipeline_goldens():
    """transformers' ASR pipeline (torch CPU) on the long clip: whole, and in
    windows of PIPE_CHUNK_S (stride chunk / 6) with word timestamps"""
    from transformers import pipeline
    for name in ("w2v-base", "w2v-stable", "hubert"):
        d = os.path.join(OUT, name)
        pipe = pipeline("automatic-speech-recognition", model=d, device="cpu")
        long = dict(clips())["long"]
        whole = pipe(long.copy(), return_timestamps="word")
        ch = pipe(long.copy(), chunk_length_s=PIPE_CHUNK_S, return_timestamps="word")
        words = [{"word": c["text"], "start": float(c["timestamp"][0]), "end": float(c["timestamp"][1])}
                 for c in ch["chunks"]]
        out = {"reference": "transformers 5.25 pipeline('automatic-speech-recognition'), torch float32 CPU",
               "clip": "long", "whole_text": whole["text"], "chunk_s": PIPE_CHUNK_S, "text": ch["text"],
               "words": words}
        json.dump(out, open(os.path.join(d, "golden", "pipeline.json"), "w"), indent=1)
        print(f"{name} pipeline: whole {whole['text'][:50]!r} chunked {ch['text'][:50]!r}, {len(words)} words")


def main():
    if "--hubert" in sys.argv:
        make_hubert("hubert", HUBERT, 31)
        pipeline_goldens()
        return
    if "--pipeline" in sys.argv:
        pipeline_goldens()
        return
    os.makedirs(OUT, exist_ok=True)
    make_mlx_folder("w2v-base", BASE, 11)
    make_mlx_folder("w2v-stable", STABLE, 21, stable_names=True)
    make_mlx_folder("w2v-base-q4", BASE, 11, quant=True)
    subprocess.run(["/work/venv-mlx/bin/python", os.path.abspath(__file__), "--hubert"], check=True)


if __name__ == "__main__":
    main()
