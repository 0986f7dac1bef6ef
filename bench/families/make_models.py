#!/usr/bin/env python3
"""bench/families/make_models.py - random-weight models with the real shapes of three new
mechanisms, in both engines' formats from the same float weights:
  mla     DeepSeek-V2-Lite (multi-head latent attention, DeepSeek MoE with shared experts),
          scaled down: 6 layers (of 27) and 16 routed experts (of 64); every width real, plus
          DeepSeek-V2's q_lora_rank 1536 (llama.cpp takes a deepseek2 model that is not 26 or 27
          layers deep for a full V2, whose queries have a low-rank projection)
  hybrid  LFM2-350M (short convolutions + attention layers), the real config
  gptoss  gpt-oss-20b (attention sinks, sliding/full layers, 4-of-N MoE), scaled down: 4 layers
          (of 24) and 8 experts (of 32); every width real
Each is made with transformers (random init, the real tokenizer of the family from
../shared/fixtures where there is one) as an HF folder (bench/models/fam/<shape>-hf), then
  - mlx_lm.convert to MLX affine 4-bit group 64 (<shape>-q4g64): what mlx-gen reads;
  - llama.cpp's convert_hf_to_gguf.py (the build of tools/build-llama-cpp.sh) to F16, then
    llama-quantize --pure Q4_0 (<shape>-Q4_0.gguf): 4.5 bits a weight, as q4 g64.
Folders that exist are kept.  Needs torch, transformers, mlx, mlx-lm (/work/venv-mlx).

usage: python bench/families/make_models.py [--out bench/models/fam] [--shapes mla,hybrid,gptoss]
"""
import argparse, json, os, runpy, shutil, subprocess, sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
TOKDIR = os.path.abspath(os.path.join(ROOT, "..", "shared", "fixtures", "tokenizers"))
if not os.path.isdir(TOKDIR):
    TOKDIR = "/work/shared/fixtures/tokenizers"
LLAMA_SRC = os.path.join(ROOT, "build-llama-cpp", "llama_cpp_python-0.3.36", "vendor", "llama.cpp")

SHAPES = {
    "mla": dict(cls="DeepseekV2", tok="deepseek_v3", cfg=dict(
        hidden_size=2048, intermediate_size=10944, moe_intermediate_size=1408, num_hidden_layers=6,
        num_attention_heads=16, num_key_value_heads=16, n_shared_experts=2, n_routed_experts=16,
        num_experts_per_tok=6, first_k_dense_replace=1, kv_lora_rank=512, q_lora_rank=1536,
        qk_nope_head_dim=128, qk_rope_head_dim=64, v_head_dim=128, topk_method="greedy", n_group=1,
        topk_group=1, routed_scaling_factor=1.0, norm_topk_prob=False, max_position_embeddings=4096,
        rope_theta=10000.0, tie_word_embeddings=False, rms_norm_eps=1e-6),
        # DeepSeek-V2-Lite's yarn scaling as its hub config.json writes it (transformers 5 moves it to
        # rope_parameters, which mlx-lm's deepseek_v2 does not read)
        extra=dict(rope_theta=10000.0, max_position_embeddings=163840, rope_scaling={
            "type": "yarn", "factor": 40, "beta_fast": 32, "beta_slow": 1, "mscale": 0.707,
            "mscale_all_dim": 0.707, "original_max_position_embeddings": 4096})),
    "hybrid": dict(cls="Lfm2", tok="qwen3", cfg=dict(
        hidden_size=1024, intermediate_size=6656, num_hidden_layers=16, num_attention_heads=16,
        num_key_value_heads=8, conv_L_cache=3, block_auto_adjust_ff_dim=True, block_ffn_dim_multiplier=1.0,
        block_multiple_of=256, full_attn_idxs=[2, 5, 8, 10, 12, 14], max_position_embeddings=128000,
        rope_theta=1000000.0, norm_eps=1e-5, tie_word_embeddings=True),
        # keys of the hub's LFM2 config.json that transformers 5 no longer writes (mlx-lm needs them)
        extra=dict(block_dim=1024, block_ff_dim=6656, rope_theta=1000000.0)),
    "gptoss": dict(cls="GptOss", tok="gptoss", cfg=dict(
        hidden_size=2880, intermediate_size=2880, num_hidden_layers=4, num_attention_heads=64,
        num_key_value_heads=8, head_dim=64, num_local_experts=8, num_experts_per_tok=4, sliding_window=128,
        layer_types=["sliding_attention", "full_attention"] * 2, max_position_embeddings=131072,
        rope_theta=150000.0, rope_scaling={"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0,
                                           "beta_slow": 1.0, "truncate": False,
                                           "original_max_position_embeddings": 4096},
        swiglu_limit=7.0, tie_word_embeddings=False, rms_norm_eps=1e-5)),
}


def tokenizer_files(name, dst):
    src = os.path.join(TOKDIR, name)
    for f in os.listdir(src):
        p = os.path.join(src, f)
        if f.endswith(".zst"):
            subprocess.run(["zstd", "-dqf", p, "-o", os.path.join(dst, f[:-4])], check=True)
        else:
            shutil.copy(p, os.path.join(dst, f))


def make_hf(shape, dst):
    import torch, transformers
    spec = SHAPES[shape]
    os.makedirs(dst, exist_ok=True)
    tokenizer_files(spec["tok"], dst)
    vocab = len(json.load(open(os.path.join(dst, "tokenizer.json")))["model"]["vocab"])
    vocab = max(vocab, 1 + max(a["id"] for a in json.load(open(os.path.join(dst, "tokenizer.json")))["added_tokens"]))
    vocab = (vocab + 127) // 128 * 128
    cfg = getattr(transformers, spec["cls"] + "Config")(vocab_size=vocab, **spec["cfg"])
    torch.manual_seed(1)
    with torch.no_grad():
        model = getattr(transformers, spec["cls"] + "ForCausalLM")(cfg).to(torch.bfloat16)
        for n, p in model.named_parameters():   # transformers leaves some tensors uninitialized
            if not torch.isfinite(p).all() or p.abs().max() > 1e3:
                p.normal_(0, 0.02)
    model.save_pretrained(dst)
    if spec.get("extra"):
        c = json.load(open(os.path.join(dst, "config.json")))
        c.update(spec["extra"])
        json.dump(c, open(os.path.join(dst, "config.json"), "w"), indent=2)
    print("wrote", dst, flush=True)


def split_gptoss_experts(hf, dst):
    """transformers writes gpt-oss's experts as gate_up_proj [E, hidden, 2I] (gate and up
    interleaved along the last axis) and down_proj [E, I, hidden], with biases; mlx-lm's sanitize
    reads only the hub's MXFP4 blocks ([E, 2I, ...]).  The same weights in mlx-lm's own layout
    (experts.{gate,up,down}_proj.{weight,bias}, weights [E, out, in]) go to dst."""
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(hf):
        if not f.endswith(".safetensors"):
            if os.path.isfile(os.path.join(hf, f)):
                shutil.copy(os.path.join(hf, f), dst)
            continue
        from safetensors.torch import load_file as tload, save_file as tsave
        w, out = tload(os.path.join(hf, f)), {}
        for k, v in w.items():
            if k.endswith("experts.gate_up_proj"):
                out[k[:-len("gate_up_proj")] + "gate_proj.weight"] = v[..., ::2].transpose(1, 2).contiguous()
                out[k[:-len("gate_up_proj")] + "up_proj.weight"] = v[..., 1::2].transpose(1, 2).contiguous()
            elif k.endswith("experts.gate_up_proj_bias"):
                out[k[:-len("gate_up_proj_bias")] + "gate_proj.bias"] = v[..., ::2].contiguous()
                out[k[:-len("gate_up_proj_bias")] + "up_proj.bias"] = v[..., 1::2].contiguous()
            elif k.endswith("experts.down_proj"):
                out[k + ".weight"] = v.transpose(1, 2).contiguous()
            elif k.endswith("experts.down_proj_bias"):
                out[k[:-len("_bias")] + ".bias"] = v
            else:
                out[k] = v
        tsave(out, os.path.join(dst, f), metadata={"format": "pt"})


def make_mlx(hf, dst):
    from mlx_lm.convert import convert
    if json.load(open(os.path.join(hf, "config.json")))["model_type"] == "gpt_oss":
        split_gptoss_experts(hf, hf + "-mlxlayout")
        hf = hf + "-mlxlayout"
    convert(hf, mlx_path=dst, quantize=True, q_bits=4, q_group_size=64)
    if hf.endswith("-mlxlayout"):
        shutil.rmtree(hf)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(hf, f)):
            shutil.copy(os.path.join(hf, f), dst)
    print("wrote", dst, flush=True)


def make_gguf(hf, f16, q4):
    if not os.path.exists(f16):
        subprocess.run([sys.executable, os.path.join(LLAMA_SRC, "convert_hf_to_gguf.py"), hf, "--outtype", "f16",
                        "--outfile", f16], check=True, env=dict(os.environ, PYTHONPATH=os.path.join(LLAMA_SRC, "gguf-py")))
    subprocess.run([os.path.join(ROOT, "bench", "bin", "llama-quantize"), "--pure", f16, q4, "Q4_0"], check=True,
                   stdout=subprocess.DEVNULL)
    os.remove(f16)
    print("wrote", q4, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "models", "fam"))
    ap.add_argument("--shapes", default="mla,hybrid,gptoss")
    a = ap.parse_args()
    for s in a.shapes.split(","):
        hf, mlx = os.path.join(a.out, s + "-hf"), os.path.join(a.out, s + "-q4g64")
        q4 = os.path.join(a.out, s + "-Q4_0.gguf")
        if not os.path.exists(os.path.join(hf, "config.json")):
            make_hf(s, hf)
        if not os.path.exists(os.path.join(mlx, "config.json")):
            make_mlx(hf, mlx)
        if not os.path.exists(q4):
            make_gguf(hf, os.path.join(a.out, s + "-F16.gguf"), q4)


if __name__ == "__main__":
    main()
