"""gemma4 fixtures (mlx_lm/models/gemma4_text.py, and gemma4.py: the multimodal checkpoint whose
text side mlx-lm runs): per-layer input embeddings (PLE), KV sharing (the last
num_kv_shared_layers layers attend over the cache of the last earlier layer of their type),
sliding / full layers with different head dims (head_dim, global_head_dim), the full layers'
"proportional" partial RoPE, q/k norms, v norm without scale, attention scale 1, the double-wide
MLP of the shared layers, layer_scalar, final soft-capping; the MoE variant (like the 26B): no
PLE, attention_k_eq_v with num_global_key_value_heads, the router + GeGLU experts beside the
dense MLP with their extra norms."""
import mlx.core as mx

_ROPE = {"full_attention": {"partial_rotary_factor": 0.25, "rope_theta": 1000000.0, "rope_type": "proportional"},
         "sliding_attention": {"partial_rotary_factor": 1.0, "rope_theta": 10000.0, "rope_type": "default"}}
_TEXT = dict(model_type="gemma4_text", hidden_size=64, num_hidden_layers=4, intermediate_size=64,
             num_attention_heads=4, num_key_value_heads=2, head_dim=16, global_head_dim=32,
             rms_norm_eps=1e-6, vocab_size=384, vocab_size_per_layer_input=384, num_kv_shared_layers=2,
             hidden_size_per_layer_input=16, sliding_window=4, sliding_window_pattern=2,
             max_position_embeddings=512, final_logit_softcapping=30.0, use_double_wide_mlp=True,
             rope_parameters=_ROPE, tie_word_embeddings=True, torch_dtype="float32",
             bos_token_id=1, eos_token_id=2,
             # as the real configs list them (transformers 5 rewrites a config without them to its
             # own pattern, whose last layer is always full)
             layer_types=["sliding_attention", "full_attention", "sliding_attention", "full_attention"])
_MOE = dict(_TEXT, num_kv_shared_layers=0, hidden_size_per_layer_input=0, attention_k_eq_v=True,
            num_global_key_value_heads=1, enable_moe_block=True, num_experts=4, top_k_experts=2,
            moe_intermediate_size=32)
_TC = {k: v for k, v in _TEXT.items() if k not in ("torch_dtype", "bos_token_id", "eos_token_id", "vocab_size")}
_TC["model_type"] = "gemma4_text"

FAMILIES = {
    "gemma4-tiny": _TEXT,
    "gemma4moe-tiny": _MOE,
    "gemma4mm-tiny": dict(model_type="gemma4", vocab_size=384, text_config=_TC, torch_dtype="float32",
                          bos_token_id=1, eos_token_id=2),
}

# the soft-cap (30) crowds the top logits
MARGIN = {"gemma4-tiny": 0.02, "gemma4moe-tiny": 0.02, "gemma4mm-tiny": 0.02}


def SPREAD(cfg, k, v):
    if not cfg.get("model_type", "").startswith("gemma4"):
        return None
    if k.endswith("layer_scalar"):
        return v * (0.8 + 0.4 * mx.random.uniform(shape=v.shape))
    if k.endswith("per_expert_scale"):
        return v * (0.5 + mx.random.uniform(shape=v.shape))
    if k.endswith("router.scale"):
        return v + 0.1 * mx.random.normal(v.shape)
    if k.endswith("model.norm.weight"):
        return v * 8.0 + 0.1 * mx.random.normal(v.shape)
    if "norm" in k:
        return v + 0.1 * mx.random.normal(v.shape)
    if "embed_tokens" in k:
        return v
    return v * 5.0
