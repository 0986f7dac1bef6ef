#!/usr/bin/env python3
"""bench/vlm/make_qwen.py - the Qwen2.5-VL-3B-shaped random-weight model of bench/vlm/run.sh
(SHAPE=qwen25vl3b), run with the mlx-vlm venv; the GGUF step runs bench/vlm/convert_gguf.py
with TORCH_PY.

Shape: Qwen2.5-VL-3B-Instruct's config (vision: 32 blocks of 1280, 16 heads, SwiGLU 3420,
window 112 px with full attention in blocks 7/15/23/31, merger to 2048; text: 36 layers of
2048, 16 heads / 2 KV heads of 128, SwiGLU 11008, M-RoPE [16, 24, 24]) and its preprocessor
(min_pixels 3136, max_pixels 12845056).  Differences: the lm_head is untied (a tied random head
only repeats its input token; the compute is the same), and the vocabulary is the test
tokenizer of tests/gen/gen_vlm_qwen2vl.py (400 BPE ids) padded with unreachable filler
entries to 151643 ids, then Qwen's 14 special tokens: 151657 ids (the real embedding has
151936 rows).  Weights: float16, drawn tensor by tensor (fixed seed) and written in shards so
that the 3.75 B parameters never sit in memory at once.

  qwen25vl3b-hf/              HF-layout float16 folder
  qwen25vl3b-q4/              mlx_vlm.convert, 4-bit group 64 (ours and mlx-vlm)
  qwen25vl3b-f16.gguf -> qwen25vl3b-Q4_0.gguf (llama-quantize --pure), mmproj-qwen25vl3b-f16.gguf
"""
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "gen"))
SEED = 20261209
BASE = 151643


def say(*a):
    print("bench/vlm:", *a, file=sys.stderr, flush=True)


def tokenizer():
    import gen_vlm_qwen2vl as gen
    from tokenizers import AddedToken, Tokenizer
    tok = gen.build_tokenizer()   # 400 BPE + 14 specials at 400..413
    j = json.loads(tok.to_str())
    j["added_tokens"] = []
    vocab = j["model"]["vocab"]
    for i in range(len(vocab), BASE):
        vocab[f"<unused_{i}>"] = i
    tok = Tokenizer.from_str(json.dumps(j))
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in gen.SPECIALS])
    for i, s in enumerate(gen.SPECIALS):
        assert tok.token_to_id(s) == BASE + i, s
    return tok


def config(gen):
    ids = {s: BASE + i for i, s in enumerate(gen.SPECIALS)}
    c = gen.hf_config("qwen2_5_vl")
    c.update(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
             num_key_value_heads=2, max_window_layers=36, vocab_size=BASE + len(gen.SPECIALS),
             max_position_embeddings=128000, rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
             bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], torch_dtype="float16",
             image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
             vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
             vision_token_id=ids["<|vision_pad|>"])
    c["vision_config"].update(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16,
                              out_hidden_size=2048, fullatt_block_indexes=[7, 15, 23, 31])
    return c


def make_hf(out):
    import gen_vlm_qwen2vl as gen
    from mlx.utils import tree_flatten
    from safetensors.numpy import save_file
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    tok = tokenizer()
    gen.write_tokenizer_files(tok, tmp)
    cfg = json.load(open(os.path.join(tmp, "tokenizer_config.json")))
    cfg["added_tokens_decoder"] = {str(BASE + i): {"content": s, "lstrip": False, "normalized": False, "rstrip": False,
                                                   "single_word": False, "special": True}
                                   for i, s in enumerate(gen.SPECIALS)}
    json.dump(cfg, open(os.path.join(tmp, "tokenizer_config.json"), "w"), indent=2)
    c = config(gen)
    json.dump(c, open(os.path.join(tmp, "config.json"), "w"), indent=2)
    pp = gen.preprocessor_config("qwen2_5_vl")
    pp.update(min_pixels=3136, max_pixels=12845056)
    json.dump(pp, open(os.path.join(tmp, "preprocessor_config.json"), "w"), indent=2)
    json.dump({"processor_class": pp["processor_class"]}, open(os.path.join(tmp, "processor_config.json"), "w"), indent=2)
    json.dump({"bos_token_id": BASE, "eos_token_id": [BASE + 2, BASE], "pad_token_id": BASE},
              open(os.path.join(tmp, "generation_config.json"), "w"), indent=2)
    model = gen.make_mlx_model(json.loads(json.dumps(c)))   # lazy parameters: shapes only
    rng = np.random.default_rng(SEED)
    shard, size, n, wmap = {}, 0, 0, {}

    def flush():
        nonlocal shard, size, n
        if shard:
            name = f"model-{n:05d}.safetensors"
            save_file(shard, os.path.join(tmp, name), metadata={"format": "pt"})
            for k in shard:
                wmap[k] = name
            n += 1
            shard, size = {}, 0

    for name, p in sorted(tree_flatten(model.parameters()), key=lambda kv: kv[0]):
        shape = tuple(p.shape)
        z = rng.standard_normal(shape, dtype=np.float32)
        leaf = name.rsplit(".", 2)
        if name.endswith(".bias"):
            z *= 0.02
        elif ("norm" in leaf[-2] or "ln_q" in leaf[-2]) and name.endswith(".weight"):
            z = 1.0 + 0.1 * z
        elif "embed_tokens" in name:
            pass
        elif "lm_head" in name:
            z *= 3.0 / math.sqrt(shape[-1])
        elif "patch_embed" in name:
            z /= math.sqrt(np.prod(shape[1:]))
        else:
            z /= math.sqrt(shape[-1])
        hf = gen.to_hf_names({name: z.astype(np.float16)})
        del z
        for k, v in hf.items():
            shard[k] = v
            size += v.nbytes
        if size > 1.5e9:
            flush()
    flush()
    json.dump({"metadata": {}, "weight_map": wmap}, open(os.path.join(tmp, "model.safetensors.index.json"), "w"), indent=2)
    os.rename(tmp, out)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "bench", "models", "vlm")
    torch_py = os.environ.get("TORCH_PY", "/work/venv-mlx/bin/python")
    quantize = os.path.join(ROOT, "bench", "bin", "llama-quantize")
    os.makedirs(out, exist_ok=True)
    hf = os.path.join(out, "qwen25vl3b-hf")
    if not os.path.exists(os.path.join(hf, "config.json")):
        make_hf(hf)
        say("wrote", hf)
    q4 = os.path.join(out, "qwen25vl3b-q4")
    if not os.path.exists(os.path.join(q4, "config.json")):
        from mlx_vlm.convert import convert
        shutil.rmtree(q4, ignore_errors=True)
        convert(hf, mlx_path=q4, quantize=True, q_group_size=64, q_bits=4, dtype="float16")
        readme = os.path.join(q4, "README.md")
        if os.path.exists(readme):
            os.remove(readme)
        say("wrote", q4)
    os.environ["GGUF_PRE"] = "qwen2"
    conv = [torch_py, os.path.join(os.path.dirname(os.path.abspath(__file__)), "convert_gguf.py"), hf]
    f16 = os.path.join(out, "qwen25vl3b-f16.gguf")
    q40 = os.path.join(out, "qwen25vl3b-Q4_0.gguf")
    if not os.path.exists(q40):
        if not os.path.exists(f16):
            subprocess.run(conv + ["--outtype", "f16", "--outfile", f16], check=True)
        subprocess.run([quantize, "--pure", f16, q40, "Q4_0", "2"], check=True, stdout=subprocess.DEVNULL)
        os.remove(f16)
        say("wrote", q40)
    mm = os.path.join(out, "mmproj-qwen25vl3b-f16.gguf")
    if not os.path.exists(mm):
        subprocess.run(conv + ["--mmproj", "--outtype", "f16", "--outfile", mm], check=True)


if __name__ == "__main__":
    main()
