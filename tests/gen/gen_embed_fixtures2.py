#!/usr/bin/env python3
"""Tiny random-weight fixtures of the newer embedding families for mlx-embed.

Same layout and golden.json as gen_embed_fixtures.py (sentence-transformers
folder + golden: texts, ids, truncated, embeddings from SentenceTransformer.encode):
  nomic-tiny       transformers NomicBertModel (RoPE, SwiGLU, post-norm), mean + Normalize,
                   prompts {"search_query": "search_query: "}; saved by transformers 5 in
                   the nomic-ai checkpoint layout (encoder.layers.N.attn.Wqkv, mlp.fc11/fc12/fc2,
                   norm1/norm2, emb_ln)
  nomic-tiny-alt   the same weights and golden under transformers' module names
                   (layers.N.self_attn.q_proj, ...) with the nomic-ai config keys
                   (n_embd, n_layer, rotary_emb_base, ...)
  modernbert-tiny  transformers ModernBertModel (pre-norm, global/local layers with a
                   sliding window of 8 tokens, two RoPE bases, GeGLU, bias-free norms,
                   final norm), cls + mean pooling, Dense, Normalize
  qwen3-tiny       transformers Qwen3Model (causal decoder, GQA, q/k norms), EOS appended,
                   lasttoken pooling + Normalize, an instruction prompt "query" (Qwen3-Embedding)
  gemma3-tiny      transformers Gemma3TextModel with use_bidirectional_attention (EmbeddingGemma:
                   sliding + full layers, two RoPE bases, q/k norms), mean pooling, two bias-free
                   Dense layers, Normalize, prompts
usage: tests/gen/gen_embed_fixtures2.py [nomic|modernbert|qwen3|gemma3 ...]
"""
import json, os, shutil, sys
import numpy as np
import torch
from safetensors.numpy import load_file, save_file
from tokenizers import processors
from transformers import (NomicBertConfig, NomicBertModel, ModernBertConfig, ModernBertModel, Qwen3Config, Qwen3Model,
                          Gemma3TextConfig, Gemma3TextModel)
from sentence_transformers import models as stm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen_embed_fixtures as g1   # noqa: E402

OUT = g1.OUT


def init_random(model, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if ("norm" in n.lower()) and n.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=gen))


def nomic():
    wp, wp_kw = g1.wordpiece_tok()
    cfg = NomicBertConfig(vocab_size=wp.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=48, max_position_embeddings=64, type_vocab_size=2, pad_token_id=0,
                          layer_norm_eps=1e-12, rope_parameters={"rope_type": "default", "rope_theta": 1000.0})
    m = NomicBertModel(cfg).eval()
    init_random(m, 11)
    d = g1.build("nomic-tiny", m, wp, wp_kw, lambda h: [stm.Pooling(h, "mean"), stm.Normalize()], 40,
                 prompts={"search_query": "search_query: ", "search_document": "search_document: "})
    g1.golden(d, prompt_name="search_query")
    # transformers 5 saves nomic_bert in the nomic-ai layout (encoder.layers.N.attn.Wqkv, ...);
    # the variant holds the same weights under transformers' module names, with the
    # nomic-ai config keys (n_embd, ...)
    o = os.path.join(OUT, "nomic-tiny-alt")
    shutil.rmtree(o, ignore_errors=True)
    shutil.copytree(d, o)
    w = load_file(os.path.join(d, "model.safetensors"))
    ow = {}
    for k, v in w.items():
        if k.startswith("encoder.layers."):
            i, rest = k.split(".")[2], ".".join(k.split(".")[3:])
            if rest == "attn.Wqkv.weight":
                for p, part in zip(("q_proj", "k_proj", "v_proj"), np.split(v, 3, 0)):
                    ow[f"layers.{i}.self_attn.{p}.weight"] = np.ascontiguousarray(part)
                continue
            for a_, b_ in (("attn.out_proj", "self_attn.o_proj"), ("mlp.fc11", "mlp.up_proj"),
                           ("mlp.fc12", "mlp.gate_proj"), ("mlp.fc2", "mlp.down_proj"),
                           ("norm1", "post_attention_layernorm"), ("norm2", "post_mlp_layernorm")):
                rest = rest.replace(a_, b_)
            ow[f"layers.{i}.{rest}"] = v
        elif k.startswith("emb_ln."):
            ow["embeddings.LayerNorm." + k.split(".")[-1]] = v
        else:
            ow[k] = v
    save_file(ow, os.path.join(o, "model.safetensors"), metadata={"format": "pt"})
    oc = {"architectures": ["NomicBertModel"], "model_type": "nomic_bert", "activation_function": "swiglu",
          "n_embd": 32, "n_layer": 2, "n_head": 4, "n_inner": 48, "n_positions": 64, "vocab_size": cfg.vocab_size,
          "type_vocab_size": 2, "layer_norm_epsilon": 1e-12, "rotary_emb_base": 1000, "rotary_emb_fraction": 1.0,
          "rotary_emb_interleaved": False, "rotary_scaling_factor": None, "prenorm": False,
          "qkv_proj_bias": False, "mlp_fc1_bias": False, "mlp_fc2_bias": False, "pad_token_id": 0}
    json.dump(oc, open(os.path.join(o, "config.json"), "w"), indent=1)
    print(o, "(transformers module names, nomic-ai config keys; golden of nomic-tiny)")


def modernbert():
    wp, wp_kw = g1.wordpiece_tok()
    cfg = ModernBertConfig(vocab_size=wp.get_vocab_size(), hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                           intermediate_size=40, max_position_embeddings=128, pad_token_id=0, bos_token_id=2,
                           eos_token_id=3, cls_token_id=2, sep_token_id=3, local_attention=8,
                           global_attn_every_n_layers=3, global_rope_theta=160000.0, local_rope_theta=10000.0,
                           norm_eps=1e-5, hidden_activation="gelu", attn_implementation="eager")
    m = ModernBertModel(cfg).eval()
    init_random(m, 12)
    d = g1.build("modernbert-tiny", m, wp, wp_kw,
                 lambda h: [stm.Pooling(h, ("cls", "mean")), stm.Dense(2 * h, 20, activation_function=torch.nn.Tanh()),
                            stm.Normalize()], 48)
    g1.golden(d)


def qwen3():
    """Qwen3-Embedding shape: causal Qwen3Model, EOS appended by the tokenizer,
    last-token pooling, Normalize, an instruction prompt for queries."""
    wp, wp_kw = g1.wordpiece_tok()
    wp.post_processor = processors.TemplateProcessing(single="$A [SEP]", pair="$A [SEP] $B [SEP]",
                                                      special_tokens=[("[SEP]", 3)])
    cfg = Qwen3Config(vocab_size=wp.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=8, intermediate_size=48, max_position_embeddings=128,
                      rms_norm_eps=1e-6, tie_word_embeddings=True, pad_token_id=0, eos_token_id=3,
                      rope_parameters={"rope_type": "default", "rope_theta": 1000000.0})
    m = Qwen3Model(cfg).eval()
    init_random(m, 13)
    d = g1.build("qwen3-tiny", m, wp, wp_kw, lambda h: [stm.Pooling(h, "lasttoken"), stm.Normalize()], 48,
                 prompts={"query": "Instruct: find\nQuery:",
                          "document": ""})
    g1.golden(d, prompt_name="query")
    # as the published checkpoints: "model." names (Qwen3ForCausalLM with tied embeddings) and a
    # top-level rope_theta; the reference loads both forms to the same weights
    p = os.path.join(d, "model.safetensors")
    w = load_file(p)
    save_file({"model." + k: v for k, v in w.items()}, p, metadata={"format": "pt"})
    c = json.load(open(os.path.join(d, "config.json")))
    c["rope_theta"] = 1000000.0
    json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=1)


def gemma3():
    """EmbeddingGemma shape: Gemma3TextModel with use_bidirectional_attention (every token
    sees the whole text; sliding layers |i - j| < sliding_window / 2 + 1), mean pooling,
    two bias-free Dense layers, Normalize, prompts.  hidden 64: sqrt(hidden) = 8 is exact
    in bfloat16, so the embedding scale is the same whether rounded (mlx-lm) or not."""
    wp, wp_kw = g1.wordpiece_tok()
    cfg = Gemma3TextConfig(vocab_size=wp.get_vocab_size(), hidden_size=48, intermediate_size=96, num_hidden_layers=3,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=128,
                           rms_norm_eps=1e-6, sliding_window=8, query_pre_attn_scalar=16,
                           layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                           use_bidirectional_attention=True, pad_token_id=0, bos_token_id=2, eos_token_id=3,
                           hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
                           rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
                                            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}})
    m = Gemma3TextModel(cfg).eval()
    init_random(m, 14)
    d = g1.build("gemma3-tiny", m, wp, wp_kw,
                 lambda h: [stm.Pooling(h, "mean"),
                            stm.Dense(h, 96, bias=False, activation_function=torch.nn.Identity()),
                            stm.Dense(96, h, bias=False, activation_function=torch.nn.Identity()),
                            stm.Normalize()], 48,
                 prompts={"query": "task: search result | query: ", "document": "title: none | text: "})
    g1.golden(d, prompt_name="query")
    # as the published EmbeddingGemma checkpoint: "model." names and the flat config keys
    # (rope_theta, rope_local_base_freq, sliding_window_pattern) next to transformers' own
    p = os.path.join(d, "model.safetensors")
    w = load_file(p)
    save_file({("model." + k if not k.startswith("model.") else k): v for k, v in w.items()}, p,
              metadata={"format": "pt"})
    c = json.load(open(os.path.join(d, "config.json")))
    c.update({"rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "sliding_window_pattern": 2})
    json.dump(c, open(os.path.join(d, "config.json"), "w"), indent=1)
    print("layer_types", c.get("layer_types"), "sliding_window", c.get("sliding_window"))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    todo = sys.argv[1:] or ["nomic", "modernbert", "qwen3", "gemma3"]
    for t in todo:
        {"nomic": nomic, "modernbert": modernbert, "qwen3": qwen3, "gemma3": gemma3}[t]()


if __name__ == "__main__":
    main()
