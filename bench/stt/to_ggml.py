#!/usr/bin/env python3
"""to_ggml.py - convert a Hugging Face-layout Whisper model directory
(config.json, model.safetensors, vocab.json) into whisper.cpp's legacy ggml
model file, so whisper.cpp (pywhispercpp) can be benchmarked on the very same
weights as the other engines.

File layout written (little-endian int32 unless noted):
  magic 0x67676d6c; hparams: n_vocab, n_audio_ctx, n_audio_state,
  n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head,
  n_text_layer, n_mels, ftype;
  mel filters: n_mel, n_bins, float32[n_mel * n_bins] (librosa Slaney bank,
  taken from openai-whisper's assets);
  vocabulary: count, then per token: byte length + raw bytes (GPT-2 byte-level
  strings of vocab.json decoded back to bytes), ordered by id;
  tensors: n_dims, name length, type, dims innermost first, name, data.
Tensor names follow openai-whisper (encoder.blocks.N.attn.query.weight, ...).
Types: 0 f32, 1 f16, 8 q8_0 (blocks of 32: f16 scale + 32 int8).  With
--type q8_0 the 2-D weight matrices are quantized and the file's ftype is
2000 + 7 (quantization version 2, "mostly q8_0").

Usage: python3 bench/stt/to_ggml.py HF_DIR OUT.bin [--type f16|f32|q8_0]
"""
import argparse
import json
import os
import re
import struct

import numpy as np
from safetensors import safe_open

LAYER_MAP = {
    "self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
    "self_attn.out_proj": "attn.out", "self_attn_layer_norm": "attn_ln",
    "encoder_attn.q_proj": "cross_attn.query", "encoder_attn.k_proj": "cross_attn.key",
    "encoder_attn.v_proj": "cross_attn.value", "encoder_attn.out_proj": "cross_attn.out",
    "encoder_attn_layer_norm": "cross_attn_ln",
    "fc1": "mlp.0", "fc2": "mlp.2", "final_layer_norm": "mlp_ln",
}
TOP_MAP = {
    "encoder.conv1": "encoder.conv1", "encoder.conv2": "encoder.conv2",
    "encoder.embed_positions": "encoder.positional_embedding",
    "encoder.layer_norm": "encoder.ln_post",
    "decoder.embed_positions": "decoder.positional_embedding",
    "decoder.embed_tokens": "decoder.token_embedding",
    "decoder.layer_norm": "decoder.ln",
}
KEEP_F32 = {"encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding",
            "decoder.positional_embedding"}


def openai_name(hf):
    """model.encoder.layers.3.fc1.weight -> encoder.blocks.3.mlp.0.weight; None to skip."""
    if hf.startswith("proj_out."):
        return None   # tied to the token embedding
    name = hf[len("model."):] if hf.startswith("model.") else hf
    m = re.fullmatch(r"(encoder|decoder)\.layers\.(\d+)\.(.+)\.(weight|bias)", name)
    if m:
        return f"{m.group(1)}.blocks.{m.group(2)}.{LAYER_MAP[m.group(3)]}.{m.group(4)}"
    base, leaf = name.rsplit(".", 1)
    if base in TOP_MAP:
        mapped = TOP_MAP[base]
        if mapped.endswith("positional_embedding"):
            return mapped
        return f"{mapped}.{leaf}"
    raise KeyError(f"unknown tensor {hf}")


def byte_decoder():
    """inverse of GPT-2's byte -> printable-unicode table"""
    printable = [b for b in range(256) if (33 <= b <= 126) or (161 <= b <= 172) or (174 <= b <= 255)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:
            table[chr(256 + extra)] = b
            extra += 1
    return table


def q8_0(a):
    """ggml q8_0: rows split in blocks of 32; d = max|x|/127 stored as f16, q = round(x/d)"""
    rows, cols = a.shape
    assert cols % 32 == 0, "q8_0 needs a multiple of 32 columns"
    b = a.astype(np.float32).reshape(rows, cols // 32, 32)
    amax = np.abs(b).max(axis=2, keepdims=True)
    d = amax / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1), 0.0)
    q = np.clip(np.rint(b * inv), -127, 127).astype(np.int8)
    out = np.empty((rows, cols // 32), dtype=[("d", "<f2"), ("q", "i1", (32,))])
    out["d"] = d[..., 0].astype(np.float16)
    out["q"] = q
    return out.tobytes()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf_dir")
    ap.add_argument("out")
    ap.add_argument("--type", choices=["f16", "f32", "q8_0"], default="f16")
    args = ap.parse_args()
    with open(os.path.join(args.hf_dir, "config.json")) as f:
        hp = json.load(f)
    with open(os.path.join(args.hf_dir, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    import whisper   # only for its precomputed Slaney filters (mel_filters.npz)
    n_mels = hp["num_mel_bins"]
    with np.load(os.path.join(os.path.dirname(whisper.__file__), "assets", "mel_filters.npz")) as f:
        filters = f[f"mel_{n_mels}"].astype(np.float32)

    ftype = {"f32": 0, "f16": 1, "q8_0": 2000 + 7}[args.type]
    st = safe_open(os.path.join(args.hf_dir, "model.safetensors"), "np")
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as out:
        out.write(struct.pack("<i", 0x67676D6C))
        out.write(struct.pack("<11i", hp["vocab_size"], hp["max_source_positions"], hp["d_model"],
                              hp["encoder_attention_heads"], hp["encoder_layers"], hp["max_target_positions"],
                              hp["d_model"], hp["decoder_attention_heads"], hp["decoder_layers"], n_mels, ftype))
        out.write(struct.pack("<2i", *filters.shape))
        out.write(filters.tobytes())
        dec = byte_decoder()
        toks = sorted(vocab.items(), key=lambda kv: kv[1])
        assert [i for _, i in toks] == list(range(len(toks))), "vocab ids must be 0..n-1"
        out.write(struct.pack("<i", len(toks)))
        for s, _ in toks:
            raw = bytes(dec[c] for c in s)
            out.write(struct.pack("<i", len(raw)))
            out.write(raw)
        n = 0
        for hf in st.keys():
            name = openai_name(hf)
            if name is None:
                continue
            a = st.get_tensor(hf)
            if name in ("encoder.conv1.bias", "encoder.conv2.bias"):
                a = a.reshape(a.shape[0], 1)
            nd = a.ndim
            if args.type == "f32" or nd < 2 or name in KEEP_F32:
                ttype, data = 0, a.astype("<f4").tobytes()
            elif args.type == "q8_0" and nd == 2 and a.shape[1] % 32 == 0:
                ttype, data = 8, q8_0(a)
            else:
                ttype, data = 1, a.astype("<f2").tobytes()
            bname = name.encode()
            out.write(struct.pack("<3i", nd, len(bname), ttype))
            out.write(struct.pack(f"<{nd}i", *reversed(a.shape)))
            out.write(bname)
            out.write(data)
            n += 1
    os.replace(tmp, args.out)
    print(f"{args.out}: {n} tensors, type {args.type}, {os.path.getsize(args.out) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
