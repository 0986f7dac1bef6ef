#!/usr/bin/env python3
"""Tiny random-weight Orpheus (llama backbone) and SNAC 24 kHz folders, with goldens
from mlx-audio 0.6.2 (run with /work/venv-tts/bin/python from the repository root).

Writes
  tests/data/snac-tiny/       config.json (the 24 kHz layout with reduced widths),
                              model.safetensors, golden.safetensors (codes -> waveform)
  tests/data/orpheus-tiny/    model/ (config.json, model.safetensors (float16), tokenizer.json,
                              tokenizer_config.json), golden.json (prompt ids, greedy ids,
                              first-step logits at probe ids, the waveforms' names per
                              segment), golden.safetensors (the distinct waveforms)

The SNAC noise blocks are zeroed for every golden (mlx-audio draws mx.random.normal
there; our deterministic mode leaves the noise out).  The LLM's embedding is shaped
so that greedy decoding with mlx-audio's repetition penalty (1.3 over 20 tokens)
walks a cycle of 21 audio tokens, each in the range of its slot of the 7-token frame,
after a start-of-speech token: the end-to-end waveform then decodes valid codes.
The Python reference runs in float32 on the float16-stored weights (what the C
decoder computes by default).
"""
import json
import os
import sys
from pathlib import Path

import numpy as np
import mlx.core as mx
from mlx.utils import tree_flatten

ROOT = Path(__file__).resolve().parents[2]
SNAC_DIR = ROOT / "tests/data/snac-tiny"
ORPH_DIR = ROOT / "tests/data/orpheus-tiny/model"
GOLD_DIR = ROOT / "tests/data/orpheus-tiny"

SNAC_CFG = {
    "sampling_rate": 24000, "encoder_dim": 2, "encoder_rates": [2, 4, 8, 8],
    "latent_dim": None, "decoder_dim": 32, "decoder_rates": [8, 8, 4, 2],
    "attn_window_size": None, "codebook_size": 4096, "codebook_dim": 8,
    "vq_strides": [4, 2, 1], "noise": True, "depthwise": True,
}

AUDIO0 = 128266      # first audio token
SOS, EOS_SPEECH = 128257, 128258
SOH, EOT, EOH, BOS = 128259, 128009, 128260, 128000
VOCAB = 156940


def no_noise():
    from mlx_audio.codec.models.snac import layers
    layers.NoiseBlock.__call__ = lambda self, x: x


# ---------------------------------------------------------------- SNAC
def make_snac(rng):
    from mlx_audio.codec.models.snac.snac import SNAC
    m = SNAC(**SNAC_CFG)
    w = {}
    for k, v in tree_flatten(m.parameters()):
        shp = v.shape
        if k.endswith(".alpha"):
            a = rng.uniform(0.5, 1.5, shp)
        elif k.endswith(".weight_g"):
            a = rng.uniform(0.5, 1.5, shp)
        elif k.endswith(".weight_v"):
            a = rng.uniform(-1, 1, shp)
        elif k.endswith(".bias"):
            a = rng.normal(0, 0.1, shp)
        elif k.endswith("codebook.weight"):
            a = rng.normal(0, 1, shp)
        else:
            a = rng.normal(0, 0.2, shp)
        w[k] = mx.array(a.astype(np.float32))
    m.load_weights(list(w.items()))
    return m, w


def snac_goldens(m, rng):
    out = {}
    for name, frames in (("a", 1), ("b", 3), ("c", 5)):
        codes = [rng.integers(0, 4096, (1, frames * n)).astype(np.int32) for n in (1, 2, 4)]
        wav = m.decode([mx.array(c) for c in codes])
        mx.eval(wav)
        for i, c in enumerate(codes):
            out[f"{name}.codes{i}"] = mx.array(c[0])
        out[f"{name}.wav"] = wav[0, :, 0].astype(mx.float32)
    return out


# ---------------------------------------------------------------- tokenizer
def make_tokenizer(d):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["Hello there, how are you today?", "The quick brown fox jumps over the lazy dog.",
              "tara: speech synthesis with a small model", "zoe, leo, dan, mia and jess speak."] * 4
    tok.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=320, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    j = json.loads(tok.to_str())
    specials = {BOS: "<|begin_of_text|>", 128001: "<|end_of_text|>", EOT: "<|eot_id|>"}
    for i in range(1, 10):
        specials[128256 + i] = f"<custom_token_{i}>"
    for i, s in specials.items():   # in the model's vocabulary, so the gapped ids hold
        j["model"]["vocab"][s] = i
    # Unreachable filler entries (no merge makes them): readers bound a file's ids by its
    # entry count (mlx-tools: 2n + 1024), and the specials sit at 128000..128265.
    vocab = j["model"]["vocab"]
    alpha = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    nid = max(i for i in vocab.values() if i < BOS) + 1
    need = (128266 - 1024) // 2 + 1 - len(vocab) - len(specials)
    for a in alpha:
        for b in alpha:
            for c in alpha:
                if need <= 0:
                    break
                k = a + b + c
                if k not in vocab:
                    vocab[k] = nid
                    nid += 1
                    need -= 1
    j["added_tokens"] = [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, s in sorted(specials.items())]
    j["post_processor"] = {
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                   {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                 {"Sequence": {"id": "A", "type_id": 0}},
                 {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>", "ids": [BOS],
                                                 "tokens": ["<|begin_of_text|>"]}}}
    (d / "tokenizer.json").write_text(json.dumps(j, ensure_ascii=False, separators=(",", ":")))
    (d / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
        "eos_token": "<|eot_id|>", "model_max_length": 131072}, indent=2))


# ---------------------------------------------------------------- LLM
LLM_CFG = {
    "model_type": "llama", "hidden_size": 4, "num_hidden_layers": 2, "intermediate_size": 8,
    "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 4, "rms_norm_eps": 1e-5,
    "vocab_size": VOCAB, "rope_theta": 500000.0, "tie_word_embeddings": True,
    "max_position_embeddings": 2048, "sample_rate": 24000,
}
N_CYCLE = 21   # designed audio tokens: 3 frames


def make_llm(rng, noise):
    E = rng.normal(0, 0.3, (VOCAB, 4))
    E[:, 0] = np.minimum(np.abs(E[:, 0]), 0.3)
    E[:, 1] = np.minimum(E[:, 1], 0.2)
    E[EOH] = [0, 0.5, 0, 0]
    E[SOS] = [0.7, 0.6, 0, 0]
    cyc = []
    for k in range(N_CYCLE):
        tok = AUDIO0 + (k % 7) * 4096 + int(rng.integers(0, 4096))
        E[tok] = [1.25 - k * 0.0135, 0, rng.normal(0, noise), rng.normal(0, noise)]
        cyc.append(tok)
    w = {"model.embed_tokens.weight": E, "model.norm.weight": rng.uniform(0.9, 1.1, 4)}
    H, I, D, NH, NK = 4, 8, 4, 2, 1
    for l in range(LLM_CFG["num_hidden_layers"]):
        p = f"model.layers.{l}."
        w[p + "self_attn.q_proj.weight"] = rng.normal(0, 0.5, (NH * D, H))
        w[p + "self_attn.k_proj.weight"] = rng.normal(0, 0.5, (NK * D, H))
        w[p + "self_attn.v_proj.weight"] = rng.normal(0, 0.5, (NK * D, H))
        w[p + "self_attn.o_proj.weight"] = rng.normal(0, 0.05, (H, NH * D))
        w[p + "mlp.gate_proj.weight"] = rng.normal(0, 0.5, (I, H))
        w[p + "mlp.up_proj.weight"] = rng.normal(0, 0.5, (I, H))
        w[p + "mlp.down_proj.weight"] = rng.normal(0, 0.05, (H, I))
        w[p + "input_layernorm.weight"] = rng.uniform(0.8, 1.2, H)
        w[p + "post_attention_layernorm.weight"] = rng.uniform(0.8, 1.2, H)
    return {k: mx.array(v.astype(np.float16)) for k, v in w.items()}, cyc


def orpheus_module():
    from mlx_audio.codec.models.snac import snac as snac_mod
    snac_mod.fetch_from_hub = lambda repo: SNAC_DIR
    from mlx_audio.tts.models.llama import llama
    return llama


def load_orpheus(llama, weights):
    cfg = dict(LLM_CFG, tokenizer_name=str(ORPH_DIR))
    mc = llama.ModelConfig.from_dict(cfg)
    model = llama.Model(mc)
    model.load_weights(list(weights.items()))
    model.set_dtype(mx.float32)
    seen = []
    orig = model.parse_output

    def parse(ids):
        seen.append(np.array(ids[0]).astype(np.int64).tolist())
        return orig(ids)
    model.parse_output = parse
    return model, seen


PROMPTS = [("tara", "Hello there, how are you today?"),
           (None, "The quick brown fox."),
           ("zoe", "Speech synthesis\nwith two lines.")]
E2E = ("tara", "Hello there, how are you today?")
MAX_TOKENS = 50


def valid_codes(codes):
    return len(codes) >= 14 and all(0 <= c - (i % 7) * 4096 < 4096 for i, c in enumerate(codes))


if __name__ == "__main__":
    SNAC_DIR.mkdir(parents=True, exist_ok=True)
    ORPH_DIR.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(18)
    no_noise()
    snac, sw = make_snac(rng)
    (SNAC_DIR / "config.json").write_text(json.dumps(SNAC_CFG, indent=2) + "\n")
    mx.save_safetensors(str(SNAC_DIR / "model.safetensors"), sw, metadata={"format": "mlx"})
    mx.save_safetensors(str(SNAC_DIR / "golden.safetensors"), snac_goldens(snac, rng))

    make_tokenizer(ORPH_DIR)
    llama = orpheus_module()
    for attempt in range(50):
        weights, cyc = make_llm(rng, 0.01)
        model, seen = load_orpheus(llama, weights)
        runs = []
        for voice, text in PROMPTS:
            seen.clear()
            ids_prompt = np.array(model.prepare_input_ids(text.split("\n")[0], voice)[0]).tolist()
            wavs = [np.array(r.audio) for r in model.generate(text=text, voice=voice, temperature=0.0,
                                                              max_tokens=MAX_TOKENS)]
            segs = [s[len(seen[0]) - len(s):] for s in seen]
            runs.append({"voice": voice, "text": text, "prompt_ids": ids_prompt,
                         "sequences": [list(map(int, s)) for s in seen], "wavs": wavs})
        r0 = runs[0]
        codes = model.parse_output(mx.array([r0["sequences"][0]]))[0]
        if valid_codes([int(c) for c in codes]):
            break
    else:
        sys.exit("no weights gave valid codes")
    print("attempt", attempt, "cycle", cyc)
    mx.save_safetensors(str(ORPH_DIR / "model.safetensors"), weights, metadata={"format": "mlx"})
    (ORPH_DIR / "config.json").write_text(json.dumps(LLM_CFG, indent=2) + "\n")
    # first-step logits of each prompt (the model's forward pass on the prompt ids)
    probe = list(range(0, 320, 7)) + [SOS, EOS_SPEECH, EOH] + cyc
    gold = {"max_tokens": MAX_TOKENS, "probe_ids": probe, "runs": []}
    tensors = {}
    for i, r in enumerate(runs):
        segs = []
        for s in r["sequences"]:
            segs.append(s)
        logits = model(mx.array([r["prompt_ids"]]))[0, -1]
        gold["runs"].append({"voice": r["voice"], "text": r["text"], "prompt_ids": r["prompt_ids"],
                             "sequences": segs,
                             "probe_logits": [float(x) for x in np.array(logits)[probe]]})
        names = []
        for wv in r["wavs"]:   # segments' waveforms, each stored once (the greedy cycle repeats them)
            wv = wv.astype(np.float32)
            name = next((k for k, v in tensors.items() if v.shape == wv.shape and np.array_equal(v, wv)), None)
            if name is None:
                name = f"wav{len(tensors)}"
                tensors[name] = wv
            names.append(name)
        gold["runs"][-1]["wavs"] = names
    (GOLD_DIR / "golden.json").write_text(json.dumps(gold) + "\n")
    mx.save_safetensors(str(GOLD_DIR / "golden.safetensors"), {k: mx.array(v) for k, v in tensors.items()})
    for r in gold["runs"]:
        print(r["voice"], r["text"][:20], [len(s) for s in r["sequences"]], r["sequences"][0][len(r["prompt_ids"]):][:30])
