#!/usr/bin/env python3
"""Fixtures for mlx-quant import-gguf, made with llama.cpp's own ggml (the libggml-base
that llama-cpp-python ships, through ctypes: ggml_quantize_chunk and dequantize_row_*)
and gguf-py's GGUFWriter.  Output in tests/data/gguf/:

  blocks.gguf      one (2, 256) tensor per ggml type the importer reads (F32 F16 BF16 Q4_0
                   Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K) quantized by ggml from
                   random floats, each followed by "<name>.ref": ggml's dequantization (F32);
                   plus q4_0_big, a Q4_0 tensor whose bias -8d overflows float16
  tiny-mixed.gguf  a 2-layer llama (hidden 256, 4 heads / 2 kv heads, vocab 384: the
                   tokenizer of tests/data/models/llama-tiny) written as
                   convert_hf_to_gguf.py would (q/k rows permuted), one ggml type per tensor
  tiny-mixed.ref   what import-gguf must produce from it: per HF tensor name, the FNV-1a 64
                   of the float32 values MLX computes from our output (s*q + b for affine
                   layers; the stored value for dense ones), from ggml's dequantization
                   un-permuted (rounded to bfloat16 where the importer stores bfloat16);
                   then "tok <ids...> <text>" lines: tokenizers' encoding of strings with
                   llama-tiny's tokenizer.json, which the rebuilt tokenizer must repeat
  tiny-gemma3.gguf a 1-layer gemma3 (hidden 128, 4 heads / 1 kv head of 32) with a small
                   SentencePiece vocabulary (scores, byte tokens, control and user-defined
                   tokens), its norms stored as 1 + w as convert_hf_to_gguf.py writes them
  tiny-gemma3.ref  as tiny-mixed.ref (the norms' reference is w: the GGUF value minus 1),
                   the "tok" lines being llama.cpp's own tokenization of the GGUF vocabulary
                   (llama_tokenize through llama-cpp-python, BOS added, specials parsed)
  <fixture>.gguf   for qwen2-tiny, qwen3-tiny, gemma2-tiny, phi3-tiny, gemma-tiny, mixtral-tiny,
                   qwen3moe-tiny, starcoder2-tiny, olmo2-tiny, granite-tiny and smollm3-tiny of
                   tests/data/models:
                   the float32 fixture written as convert_hf_to_gguf.py writes that family
                   (GGUF names, Gemma norms + 1, the family's metadata keys and extra
                   tensors, the fixture's byte-level BPE vocabulary as a "gpt2" one), F32 so
                   that its import must give back the fixture exactly; checked here by
                   running llama.cpp on it: its greedy tokens for the fixture's prompt equal
                   the fixture's golden (mlx-lm's); where the golden cannot apply, llama.cpp
                   agrees with mlx-lm on the fixture as the GGUF describes it: qwen3moe-tiny's
                   dense layer 1 is beyond llama.cpp's qwen3moe (its first layer is compared),
                   smollm3-tiny's RoPE-less layer interval 2 is not in the format (llama.cpp
                   fixes it at 4)
  arch-mamba.gguf  a valid GGUF of an architecture the importer does not know
  type-iq4nl.gguf  a llama GGUF with one IQ4_NL tensor

Usage: /work/venv-mlx/bin/python tests/gen/gen_gguf_import_fixtures.py [FIXTURE...]  (repository root;
       naming fixtures of tests/data/models makes only their GGUF files)
"""
import ctypes
import glob
import json
import math
import os
import struct
import sys

import gguf
import numpy as np
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "tests/data/gguf")
T = gguf.GGMLQuantizationType

_lib = glob.glob(os.path.join(os.path.dirname(__import__("llama_cpp").__file__), "lib", "libggml-base.so"))[0]
GGML = ctypes.CDLL(_lib)
GGML.ggml_quantize_chunk.restype = ctypes.c_size_t
GGML.ggml_quantize_chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                     ctypes.c_int64, ctypes.c_void_p]
GGML.ggml_row_size.restype = ctypes.c_size_t
GGML.ggml_row_size.argtypes = [ctypes.c_int, ctypes.c_int64]


def ggml_quantize(x, t):
    """rows of float32 -> ggml blocks (uint8 [rows, row_bytes])"""
    x = np.ascontiguousarray(x, dtype=np.float32)
    rows, n = x.shape
    rb = GGML.ggml_row_size(int(t), n)
    out = np.zeros((rows, rb), dtype=np.uint8)
    GGML.ggml_quantize_chunk(int(t), x.ctypes.data, out.ctypes.data, 0, rows, n, None)
    return out


def ggml_dequantize(q, t, n):
    """ggml blocks [rows, row_bytes] -> float32 [rows, n] with ggml's dequantize_row_<type>"""
    fn = getattr(GGML, "dequantize_row_" + {T.Q2_K: "q2_K", T.Q3_K: "q3_K", T.Q4_K: "q4_K", T.Q5_K: "q5_K",
                                            T.Q6_K: "q6_K"}.get(t, t.name.lower()))
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    q = np.ascontiguousarray(q)
    y = np.zeros((q.shape[0], n), dtype=np.float32)
    for r in range(q.shape[0]):
        fn(q[r].ctypes.data, y[r].ctypes.data, n)
    # gguf-py's numpy port must agree (it is the other reference)
    assert np.array_equal(gguf.quants.dequantize(q, t).reshape(y.shape), y, equal_nan=True), t
    return y


def encode(x, t):
    """float32 rows -> (raw bytes array for GGUFWriter, dequantized float32 rows)"""
    if t == T.F32:
        return x.astype(np.float32), x.astype(np.float32)
    if t == T.F16:
        h = x.astype(np.float16)
        return h, h.astype(np.float32)
    if t == T.BF16:
        b = (x.astype(np.float32).view(np.uint32) + 0x7FFF + ((x.astype(np.float32).view(np.uint32) >> 16) & 1)) >> 16
        b = b.astype(np.uint16)
        return b.view(np.uint8).reshape(x.shape[0], -1), (b.astype(np.uint32) << 16).view(np.float32)
    q = ggml_quantize(x, t)
    return q, ggml_dequantize(q, t, x.shape[1])


def add(w, name, x, t):
    raw, deq = encode(x, t)
    if t in (T.F32, T.F16):
        w.add_tensor(name, raw)
    else:
        w.add_tensor(name, raw, raw_dtype=t)
    return deq


def fnv64_fast(a):
    """FNV-1a 64 over the float32 bytes, little-endian, row-major; -0 counted as +0 (ggml's
    0 * d is -0 for d < 0 where MLX's q*d + (-q*d) is +0)"""
    data = (np.ascontiguousarray(a, dtype=np.float32) + np.float32(0)).tobytes()
    h = 0xCBF29CE484222325
    p = 0x100000001B3
    m = 0xFFFFFFFFFFFFFFFF
    for b in data:
        h = ((h ^ b) * p) & m
    return h


def blocks():
    rng = np.random.default_rng(7)
    w = gguf.GGUFWriter(os.path.join(OUT, "blocks.gguf"), "blocks")
    for t in (T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K):
        x = (rng.standard_normal((2, 256)) * rng.uniform(0.01, 3.0, (2, 1))).astype(np.float32)
        x[1, :40] += 0.7   # groups with an offset (min/max asymmetry)
        deq = add(w, t.name.lower(), x, t)
        w.add_tensor(t.name.lower() + ".ref", deq.astype(np.float32))
    # Q4_0 with d = 9000: (q-8)*d stays in float16 range for q >= 1, but -8d does not
    q = np.zeros((1, 18), dtype=np.uint8)
    q[0, 0:2] = np.frombuffer(np.float16(9000).tobytes(), dtype=np.uint8)
    q[0, 2:] = 0x99
    w.add_tensor("q4_0_big", q, raw_dtype=T.Q4_0)
    w.add_tensor("q4_0_big.ref", ggml_dequantize(q, T.Q4_0, 32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---- tiny llama ----
H, I, L, NH, NKV, V = 256, 256, 2, 4, 2, 384
TYPES = [  # per layer: q, k, v, o, gate, up, down
    (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q4_K, T.Q5_K, T.Q2_K),
    (T.F16, T.BF16, T.Q8_0, T.F32, T.Q3_K, T.Q6_K, T.Q8_0),
]


def permute(w, n_head, n_head_kv):
    """convert_hf_to_gguf.py LlamaModel.permute"""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w, n_head):
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def tiny():
    rng = np.random.default_rng(11)
    tokjs = json.load(open(os.path.join(ROOT, "tests/data/models/llama-tiny/tokenizer.json")))
    vocab = sorted(tokjs["model"]["vocab"].items(), key=lambda kv: kv[1])
    assert [i for _, i in vocab] == list(range(V))
    added = {a["id"]: a for a in tokjs["added_tokens"]}
    merges = [m if isinstance(m, str) else " ".join(m) for m in tokjs["model"]["merges"]]

    w = gguf.GGUFWriter(os.path.join(OUT, "tiny-mixed.gguf"), "llama")
    w.add_name("tiny mixed")
    w.add_block_count(L)
    w.add_context_length(512)
    w.add_embedding_length(H)
    w.add_feed_forward_length(I)
    w.add_head_count(NH)
    w.add_head_count_kv(NKV)
    w.add_rope_freq_base(10000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_dimension_count(H // NH)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list([t for t, _ in vocab])
    w.add_token_types([3 if i in added else 1 for i in range(V)])
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_chat_template("{% for m in messages %}<|bos|>{{ m['role'] }}\n{{ m['content'] }}<|eos|>\n{% endfor %}"
                        "{% if add_generation_prompt %}<|bos|>assistant\n{% endif %}")

    ref = {}   # HF name -> float32 values MLX will compute from the import
    def dense_bf16(a):
        # the file has a BF16 tensor, so its float type is bfloat16: K-quants are stored as
        # bfloat16 (round to nearest even)
        u = a.astype(np.float32).view(np.uint32)
        u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
        return u.astype(np.uint32).view(np.float32)

    def put(gname, hfname, x, t, nh=None):
        xx = permute(x, NH, nh) if nh else x
        deq = add(w, gname, xx, t)
        if nh:
            deq = unpermute(deq, NH if nh == NH else NKV)
        # K-quants become tensors of the file's float type; F32/F16/BF16 are kept as they are
        lossless = t in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.F32, T.F16, T.BF16)
        ref[hfname] = deq if lossless else dense_bf16(deq)

    put("token_embd.weight", "model.embed_tokens.weight", rng.standard_normal((V, H)).astype(np.float32) * 0.5, T.Q8_0)
    for l in range(L):
        p = f"model.layers.{l}."
        tq, tk, tv, to, tg, tu, td = TYPES[l]
        s = 1.0 / np.sqrt(H)
        put(f"blk.{l}.attn_norm.weight", p + "input_layernorm.weight", 1 + 0.1 * rng.standard_normal(H).astype(np.float32), T.F32)
        put(f"blk.{l}.attn_q.weight", p + "self_attn.q_proj.weight", rng.standard_normal((H, H)).astype(np.float32) * 3 * s, tq, NH)
        put(f"blk.{l}.attn_k.weight", p + "self_attn.k_proj.weight", rng.standard_normal((NKV * H // NH, H)).astype(np.float32) * 3 * s, tk, NKV)
        put(f"blk.{l}.attn_v.weight", p + "self_attn.v_proj.weight", rng.standard_normal((NKV * H // NH, H)).astype(np.float32) * s, tv)
        put(f"blk.{l}.attn_output.weight", p + "self_attn.o_proj.weight", rng.standard_normal((H, H)).astype(np.float32) * s, to)
        put(f"blk.{l}.ffn_norm.weight", p + "post_attention_layernorm.weight", 1 + 0.1 * rng.standard_normal(H).astype(np.float32), T.F32)
        put(f"blk.{l}.ffn_gate.weight", p + "mlp.gate_proj.weight", rng.standard_normal((I, H)).astype(np.float32) * s, tg)
        put(f"blk.{l}.ffn_up.weight", p + "mlp.up_proj.weight", rng.standard_normal((I, H)).astype(np.float32) * s, tu)
        put(f"blk.{l}.ffn_down.weight", p + "mlp.down_proj.weight", rng.standard_normal((H, I)).astype(np.float32) * s, td)
    put("output_norm.weight", "model.norm.weight", 1 + 0.1 * rng.standard_normal(H).astype(np.float32), T.F32)
    put("output.weight", "lm_head.weight", rng.standard_normal((V, H)).astype(np.float32) * 0.2, T.Q6_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    tok = Tokenizer.from_file(os.path.join(ROOT, "tests/data/models/llama-tiny/tokenizer.json"))
    with open(os.path.join(OUT, "tiny-mixed.ref"), "w") as f:
        for k in sorted(ref):
            f.write(f"t {k} {fnv64_fast(ref[k]):016x}\n")
        for s in ["def main():\n    return 0", "Hello world, 123!", "  spaces   and\ttabs\n\n", "héllo ünïcode ✓",
                  "<|bos|>user\nhi<|eos|>", "import os.path as p; x = {'a': [1, 2]}"]:
            ids = tok.encode(s, add_special_tokens=False).ids
            f.write("tok " + ",".join(map(str, ids)) + " " + json.dumps(s) + "\n")


def tiny_gemma3():
    rng = np.random.default_rng(5)
    H, I, NH, NKV, HD = 128, 128, 4, 1, 32
    # vocabulary: specials, byte tokens, "▁" pieces and their merges with descending scores
    toks, types, scores = [], [], []
    def tok(t, ty=1, sc=0.0):
        toks.append(t); types.append(ty); scores.append(sc)
    for t in ["<pad>", "<eos>", "<bos>", "<unk>"]:
        tok(t, 3, -1000.0)
    tok("<start_of_turn>", 3, -1000.0)
    tok("<end_of_turn>", 3, -1000.0)
    tok("\n\n", 4, 0.0)
    for b in range(256):
        tok(f"<0x{b:02X}>", 6, 0.0)
    pieces = ["▁", "e", "t", "a", "o", "n", "i", "h", "s", "r", "d", "l", "u", "c", "m", "w", "f", "g", "y", "p",
              "b", ",", ".", "\n", "T", "I", "é", "1", "2",
              "▁t", "he", "▁the", "in", "▁a", "er", "on", "re", "▁s", "at", "en", "▁w", "nd", "▁the▁", "is", "▁o",
              "or", "es", "▁c", "an", "▁i", "ou", "▁th", "▁an", "▁and", "ing", "▁in", "▁is", "▁of", "▁to", "ll",
              "▁wor", "▁worl", "▁world", "▁h", "▁he", "▁hel", "▁hell", "▁hello", "el", "lo", "wor", "ld"]
    for i, t in enumerate(pieces):
        tok(t, 1, -float(i))
    V = len(toks)
    w = gguf.GGUFWriter(os.path.join(OUT, "tiny-gemma3.gguf"), "gemma3")
    w.add_block_count(1)
    w.add_context_length(256)
    w.add_embedding_length(H)
    w.add_feed_forward_length(I)
    w.add_head_count(NH)
    w.add_head_count_kv(NKV)
    w.add_key_length(HD)
    w.add_value_length(HD)
    w.add_rope_freq_base(1000000.0)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_sliding_window(64)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list(toks)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(2)
    w.add_eos_token_id(1)
    w.add_unk_token_id(3)
    w.add_pad_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(False)
    ref = {}

    def put(gname, hfname, x, t, norm=False):
        xx = x + 1 if norm else x    # Gemma3Model.modify_tensors: norm weights + 1
        deq = add(w, gname, xx.astype(np.float32), t)
        ref[hfname] = deq - 1 if norm else deq

    s = 1.0 / np.sqrt(H)
    put("token_embd.weight", "model.embed_tokens.weight", rng.standard_normal((V, H)).astype(np.float32) * 0.5, T.Q8_0)
    p = "model.layers.0."
    put("blk.0.attn_norm.weight", p + "input_layernorm.weight", 0.1 * rng.standard_normal(H), T.F32, True)
    put("blk.0.post_attention_norm.weight", p + "post_attention_layernorm.weight", 0.1 * rng.standard_normal(H), T.F32, True)
    put("blk.0.ffn_norm.weight", p + "pre_feedforward_layernorm.weight", 0.1 * rng.standard_normal(H), T.F32, True)
    put("blk.0.post_ffw_norm.weight", p + "post_feedforward_layernorm.weight", 0.1 * rng.standard_normal(H), T.F32, True)
    put("blk.0.attn_q_norm.weight", p + "self_attn.q_norm.weight", 0.1 * rng.standard_normal(HD), T.F32, True)
    put("blk.0.attn_k_norm.weight", p + "self_attn.k_norm.weight", 0.1 * rng.standard_normal(HD), T.F32, True)
    put("blk.0.attn_q.weight", p + "self_attn.q_proj.weight", rng.standard_normal((NH * HD, H)) * s, T.Q5_0)
    put("blk.0.attn_k.weight", p + "self_attn.k_proj.weight", rng.standard_normal((NKV * HD, H)) * s, T.Q5_0)
    put("blk.0.attn_v.weight", p + "self_attn.v_proj.weight", rng.standard_normal((NKV * HD, H)) * s, T.Q8_0)
    put("blk.0.attn_output.weight", p + "self_attn.o_proj.weight", rng.standard_normal((H, NH * HD)) * s, T.Q4_1)
    put("blk.0.ffn_gate.weight", p + "mlp.gate_proj.weight", rng.standard_normal((I, H)) * s, T.Q5_0)
    put("blk.0.ffn_up.weight", p + "mlp.up_proj.weight", rng.standard_normal((I, H)) * s, T.Q5_0)
    put("blk.0.ffn_down.weight", p + "mlp.down_proj.weight", rng.standard_normal((H, I)) * s, T.F16)
    put("output_norm.weight", "model.norm.weight", 0.1 * rng.standard_normal(H), T.F32, True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    from llama_cpp import Llama
    llm = Llama(model_path=os.path.join(OUT, "tiny-gemma3.gguf"), vocab_only=True, verbose=False)
    with open(os.path.join(OUT, "tiny-gemma3.ref"), "w") as f:
        for k in sorted(ref):
            f.write(f"t {k} {fnv64_fast(ref[k]):016x}\n")
        for text in ["hello world", "the cat is on the mat, and the dog.", "  two  spaces\n\nand lines\n",
                     "héllo wörld ✓ 漢字", "<start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n", "Tt1.2"]:
            ids = llm.tokenize(text.encode(), add_bos=True, special=True)
            f.write("tok " + ",".join(map(str, ids)) + " " + json.dumps(text) + "\n")


def st_load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        b, e = v["data_offsets"]
        assert v["dtype"] == "F32", (path, k)
        out[k] = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=np.float32).reshape(v["shape"])
    return out


# HF module -> GGUF (gguf-py tensor_mapping.py), per family
LAYER_GG = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
            "self_attn.o_proj": "attn_output", "self_attn.q_norm": "attn_q_norm", "self_attn.k_norm": "attn_k_norm",
            "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
            "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
GEMMA_GG = dict(LAYER_GG, post_attention_layernorm="post_attention_norm", pre_feedforward_layernorm="ffn_norm",
                post_feedforward_layernorm="post_ffw_norm")


PHI3_GG = {"self_attn.qkv_proj": "attn_qkv", "self_attn.o_proj": "attn_output", "mlp.gate_up_proj": "ffn_up",
           "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}


def params_text(w, cfg, arch, head_dim=False):
    """TextModel.set_gguf_parameters for the fixtures' keys, in its order (head_dim: write
    key/value_length even when config.json has no head_dim, as the first fixtures did)"""
    H, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(H)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(NH)
    w.add_head_count_kv(cfg["num_key_value_heads"])
    assert not cfg.get("rope_scaling")
    if "rope_theta" in cfg:
        w.add_rope_freq_base(cfg["rope_theta"])
    if "rms_norm_eps" in cfg:
        w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    if "norm_epsilon" in cfg:
        w.add_layer_norm_eps(cfg["norm_epsilon"])
    if (ne := cfg.get("num_local_experts", cfg.get("num_experts"))) is not None:
        w.add_expert_count(ne)
    if "num_experts_per_tok" in cfg:
        w.add_expert_used_count(cfg["num_experts_per_tok"])
    if "head_dim" in cfg or head_dim:
        hd = cfg.get("head_dim", H // NH)
        w.add_key_length(hd)
        w.add_value_length(hd)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)


def params_common(w, cfg, arch):
    """qwen2, qwen3 (Qwen2Model/Qwen3Model: TextModel's), gemma2 (Gemma2Model: its soft-capping
    and llama.cpp's window)"""
    params_text(w, cfg, arch, head_dim=True)
    if arch == "gemma2":
        w.add_attn_logit_softcapping(cfg["attn_logit_softcapping"])
        w.add_final_logit_softcapping(cfg["final_logit_softcapping"])
        w.add_sliding_window(4096)
    return []


def params_llama(w, cfg, arch):
    """LlamaModel.set_gguf_parameters (mixtral too): TextModel's, the vocabulary size, rope
    dimensions"""
    params_text(w, cfg, arch)
    w.add_vocab_size(cfg["vocab_size"])
    w.add_rope_dimension_count(cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"]))
    return []


def params_textmodel(w, cfg, arch):
    """TextModel.set_gguf_parameters as it is (starcoder2, olmo2)"""
    params_text(w, cfg, arch)
    return []


def params_granite(w, cfg, arch):
    """GraniteModel.set_gguf_parameters: LlamaModel's (no head_dim) and the multipliers, each
    written when set"""
    assert "head_dim" not in cfg
    params_llama(w, cfg, arch)
    if cfg.get("attention_multiplier"):
        w.add_attention_scale(cfg["attention_multiplier"])
    if cfg.get("embedding_multiplier"):
        w.add_embedding_scale(cfg["embedding_multiplier"])
    if cfg.get("residual_multiplier"):
        w.add_residual_scale(cfg["residual_multiplier"])
    if cfg.get("logits_scaling"):
        w.add_logit_scale(cfg["logits_scaling"])
    return []


def params_qwen3moe(w, cfg, arch):
    """Qwen2MoeModel.set_gguf_parameters: TextModel's, the experts' width"""
    params_text(w, cfg, arch)
    w.add_expert_feed_forward_length(cfg["moe_intermediate_size"])
    return []


def params_phi3(w, cfg, arch):
    """Phi3MiniModel.set_gguf_parameters and generate_extra_tensors: no scaling type, the
    original context, rope dimensions from partial_rotary_factor, sliding window 0 when
    absent; LongRoPE as the attention factor and the rope_factors_long/short tensors"""
    H, NH = cfg["hidden_size"], cfg["num_attention_heads"]
    rs = cfg.get("rope_scaling") or {}
    orig = cfg.get("original_max_position_embeddings", rs.get("original_max_position_embeddings"))
    rope_dims = int(cfg.get("partial_rotary_factor", 1.0) * H) // NH
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_rope_scaling_orig_ctx_len(orig)
    w.add_embedding_length(H)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_head_count(NH)
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_dimension_count(rope_dims)
    w.add_rope_freq_base(cfg["rope_theta"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_sliding_window(cfg.get("sliding_window") or 0)
    if not rs.get("long_factor"):
        return []
    scale = cfg["max_position_embeddings"] / orig
    assert rs["type"] in ("su", "longrope")
    w.add_rope_scaling_attn_factors(math.sqrt(1 + math.log(scale) / math.log(orig)) if scale > 1.0 else 1.0)
    assert len(rs["long_factor"]) == len(rs["short_factor"]) == rope_dims // 2
    return [("rope_factors_long.weight", np.array(rs["long_factor"], dtype=np.float32)),
            ("rope_factors_short.weight", np.array(rs["short_factor"], dtype=np.float32))]


def params_gemma(w, cfg, arch):
    """GemmaModel.set_gguf_parameters: no RoPE base (llama.cpp's 10000). Its set_vocab also
    sets CodeGemma's FIM and end-of-turn ids (67-70, 107), which name Gemma's own tokens: left
    out here, where ids 67-107 are other tokens of the fixture's vocabulary"""
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg.get("num_key_value_heads", cfg["num_attention_heads"]))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_key_length(cfg["head_dim"])
    w.add_value_length(cfg["head_dim"])
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    assert cfg.get("rope_theta", 10000.0) == 10000.0
    return []


QWEN3MOE_GG = dict(LAYER_GG, **{"mlp.gate": "ffn_gate_inp", "mlp.switch_mlp.gate_proj": "ffn_gate_exps",
                                 "mlp.switch_mlp.up_proj": "ffn_up_exps", "mlp.switch_mlp.down_proj": "ffn_down_exps"})
MIXTRAL_GG = dict(LAYER_GG, **{"block_sparse_moe.gate": "ffn_gate_inp",
                               "block_sparse_moe.switch_mlp.gate_proj": "ffn_gate_exps",
                               "block_sparse_moe.switch_mlp.up_proj": "ffn_up_exps",
                               "block_sparse_moe.switch_mlp.down_proj": "ffn_down_exps"})

STARCODER2_GG = dict(LAYER_GG, **{"mlp.c_fc": "ffn_up", "mlp.c_proj": "ffn_down"})
OLMO2_GG = dict(LAYER_GG, post_attention_layernorm="post_attention_norm",
                post_feedforward_layernorm="post_ffw_norm")

# arch -> (parameters, HF layer module -> GGUF name, norms stored as 1 + w, q/k rows permuted)
FAMILIES = {
    "qwen2": (params_common, LAYER_GG, False, False),
    "qwen3": (params_common, LAYER_GG, False, False),
    "gemma": (params_gemma, LAYER_GG, True, False),
    "gemma2": (params_common, GEMMA_GG, True, False),
    "phi3": (params_phi3, PHI3_GG, False, False),
    "qwen3moe": (params_qwen3moe, QWEN3MOE_GG, False, False),
    "mixtral": (params_llama, MIXTRAL_GG, False, True),   # written as llama, with experts
    "starcoder2": (params_textmodel, STARCODER2_GG, False, False),
    "olmo2": (params_textmodel, OLMO2_GG, False, False),
    "granite": (params_granite, LAYER_GG, False, True),
    "smollm3": (params_llama, LAYER_GG, False, True),   # SmolLM3Model: LlamaModel's
}


def llama_cpp_greedy(path, prompt, n, n_ctx=256):
    """llama.cpp's greedy continuation of prompt (token ids) on the GGUF at path"""
    from llama_cpp import Llama
    llm = Llama(model_path=path, n_ctx=n_ctx, n_threads=2, verbose=False, logits_all=True)
    llm.eval(prompt)
    got = [int(np.argmax(llm.scores[len(prompt) - 1]))]
    for _ in range(n - 1):
        llm.eval([got[-1]])
        got.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
    return got


def gguf_of_fixture(name, family, path=None, layers=None, check=True):
    """the fixture's GGUF at path (default tests/data/gguf/<name>.gguf); layers: keep only
    the first so many blocks"""
    src = os.path.join(ROOT, "tests/data/models", name)
    cfg = json.load(open(os.path.join(src, "config.json")))
    ws = st_load(os.path.join(src, "model.safetensors"))
    if layers is not None:
        cfg["num_hidden_layers"] = layers
        ws = {k: v for k, v in ws.items() if not k.startswith("model.layers.") or int(k.split(".")[2]) < layers}
    params, table, norm_plus_one, permuted = FAMILIES[family]
    arch = "llama" if family == "mixtral" else family
    path = path or os.path.join(OUT, name + ".gguf")
    w = gguf.GGUFWriter(path, arch)
    # llama.cpp gives a model named "phi3" Phi-3's token attributes, looking up Phi-3's "</s>",
    # which the fixture's vocabulary does not have
    w.add_name("tiny fixture" if arch == "phi3" else name)
    extra = params(w, cfg, arch)
    tokjs = json.load(open(os.path.join(src, "tokenizer.json")))
    vocab = sorted(tokjs["model"]["vocab"].items(), key=lambda kv: kv[1])
    added = {a["id"] for a in tokjs["added_tokens"]}
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list([t for t, _ in vocab])
    w.add_token_types([3 if i in added else 1 for i in range(len(vocab))])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in tokjs["model"]["merges"]])
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_add_bos_token(True)
    for g, x in extra:   # generate_extra_tensors come first
        w.add_tensor(g, x)
    for k in sorted(ws, key=lambda k: (k.count("layers"), k)):
        x = ws[k]
        mod, par = k.rsplit(".", 1)
        if mod == "model.embed_tokens":
            g = "token_embd"
        elif mod == "model.norm":
            g = "output_norm"
        elif mod == "lm_head":
            g = "output"
        else:
            _, _, l, rest = mod.split(".", 3)
            g = f"blk.{l}.{table[rest]}"
        if norm_plus_one and mod.endswith("norm"):
            x = x + np.float32(1)   # Gemma*Model.modify_tensors
        if permuted and mod.endswith((".q_proj", ".k_proj")):   # LlamaModel.modify_tensors
            x = permute(x, cfg["num_attention_heads"], cfg["num_key_value_heads"] if mod.endswith(".k_proj") else None)
        w.add_tensor(f"{g}.{par}", np.ascontiguousarray(x, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if not check:
        return
    # llama.cpp runs it as the fixture: greedy tokens of the fixture's prompt
    gold = json.load(open(os.path.join(src, "golden.json")))
    # mlx-lm's SuScaledRoPE always rotates with the long factors; llama.cpp takes them when its
    # context exceeds the original one
    n_ctx = 2 * cfg.get("original_max_position_embeddings", 256) if arch == "phi3" else 256
    got = llama_cpp_greedy(path, gold["prompt"], len(gold["greedy"]), n_ctx)
    agree = next((i for i, (a, b) in enumerate(zip(got, gold["greedy"])) if a != b), len(got))
    print(f"{name}: llama.cpp greedy agrees with the fixture golden on {agree}/{len(got)} tokens")
    assert agree >= 8, name


def mlx_lm_greedy(model_dir, prompt, n):
    """mlx-lm's greedy continuation of prompt (token ids) with the model folder model_dir"""
    import mlx.core as mx
    from mlx_lm import load
    model, _ = load(model_dir)
    ids = list(prompt)
    for _ in range(n):
        ids.append(int(mx.argmax(model(mx.array([ids]))[0, -1]).item()))
    return ids[len(prompt):]


def check_as_read(name, family, what, edit, layers=None):
    """llama.cpp against mlx-lm where the fixture's golden cannot apply: mlx-lm runs the fixture
    with config.json edited (edit(cfg)) to what the GGUF tells llama.cpp, cut to its first
    layers if given (the GGUF too); both must give the same greedy tokens"""
    import shutil
    import tempfile
    import mlx.core as mx
    src = os.path.join(ROOT, "tests/data/models", name)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = json.load(open(os.path.join(src, "config.json")))
        ws = st_load(os.path.join(src, "model.safetensors"))
        path = os.path.join(OUT, name + ".gguf")
        if layers is not None:
            cfg["num_hidden_layers"] = layers
            ws = {k: v for k, v in ws.items() if not k.startswith("model.layers.") or int(k.split(".")[2]) < layers}
            path = os.path.join(tmp, "cut.gguf")
            gguf_of_fixture(name, family, path=path, layers=layers, check=False)
        edit(cfg)
        json.dump(cfg, open(os.path.join(tmp, "config.json"), "w"))
        mx.save_safetensors(os.path.join(tmp, "model.safetensors"), {k: mx.array(v) for k, v in ws.items()})
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(src, f), tmp)
        prompt = json.load(open(os.path.join(src, "golden.json")))["prompt"]
        want = mlx_lm_greedy(tmp, prompt, 32)
        got = llama_cpp_greedy(path, prompt, 32)
    agree = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), len(got))
    print(f"{name}, {what}: llama.cpp greedy agrees with mlx-lm's on {agree}/{len(got)} tokens")
    assert agree >= 8, name


def no_rope_every_4(cfg):
    cfg["no_rope_layer_interval"] = 4


def dense_layers_cut(cfg):
    cfg["mlp_only_layers"] = [l for l in cfg.get("mlp_only_layers", []) if l < cfg["num_hidden_layers"]]


def small(path, arch, tensors):
    w = gguf.GGUFWriter(path, arch)
    w.add_block_count(1)
    for name, raw, shape, t in tensors:
        w.add_tensor(name, raw, raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def bad():
    x = np.ones((1, 32), dtype=np.float32)
    small(os.path.join(OUT, "arch-mamba.gguf"), "mamba", [("token_embd.weight", x, None, None)])
    iq = np.zeros((1, 18), dtype=np.uint8)
    small(os.path.join(OUT, "type-iq4nl.gguf"), "llama", [("token_embd.weight", iq, [1, 32], T.IQ4_NL)])


# tests/data/models fixture -> general.architecture of its GGUF
FIXTURES = {"qwen2-tiny": "qwen2", "qwen3-tiny": "qwen3", "gemma2-tiny": "gemma2", "phi3-tiny": "phi3", "gemma-tiny": "gemma",
            "mixtral-tiny": "mixtral", "qwen3moe-tiny": "qwen3moe", "starcoder2-tiny": "starcoder2",
            "olmo2-tiny": "olmo2", "granite-tiny": "granite", "smollm3-tiny": "smollm3"}

if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    only = sys.argv[1:]   # fixture names: make just their GGUF files
    if not only:
        blocks()
        tiny()
        tiny_gemma3()
    for name, family in FIXTURES.items():
        if only and name not in only:
            continue
        if name == "qwen3moe-tiny":
            # layer 1 is dense (mlp_only_layers), which llama.cpp's qwen3moe cannot hold (it
            # has no ffn_gate/up/down: convert_hf_to_gguf.py would not map them); the file
            # names them as the dense families do, and llama.cpp checks the sparse layer 0
            gguf_of_fixture(name, family, check=False)
            check_as_read(name, family, "its first layer", dense_layers_cut, layers=1)
        elif name == "smollm3-tiny":
            # llama.cpp's smollm3 leaves RoPE out of every 4th layer, fixed (the GGUF has no key
            # for it); the fixture's interval 2 does not come through
            gguf_of_fixture(name, family, check=False)
            check_as_read(name, family, "RoPE left out every 4th layer", no_rope_every_4)
        else:
            gguf_of_fixture(name, family)
    if not only:
        bad()
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))
