"""MLX's fp weight quantization modes (mxfp4, nvfp4, mxfp8) on a llama-style and a
qwen3-MoE-style tiny model: every Linear, the embedding (llama: untied lm_head too;
qwen3moe: tied) and the stacked experts (SwitchLinear) quantized with mlx-lm's
quantize_model(..., mode=...).  Directories: <name>-mxfp4, <name>-nvfp4, <name>-mxfp8
beside the float32 <name>."""

BASE = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=128, num_attention_heads=4,
            num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=384, rope_theta=10000.0,
            max_position_embeddings=512, torch_dtype="float32", bos_token_id=1, eos_token_id=2)

FAMILIES = {
    "llama-fpq": dict(BASE, model_type="llama", tie_word_embeddings=False),
    # one MoE layer (experts of 32 columns: nvfp4's 16-groups, mx modes' 32) and one dense layer
    "qwen3moe-fpq": dict(BASE, model_type="qwen3_moe", head_dim=16, num_experts=4, num_experts_per_tok=2,
                         decoder_sparse_step=1, mlp_only_layers=[1], moe_intermediate_size=32,
                         norm_topk_prob=True, tie_word_embeddings=True),
}

FORMS = [(4, 32, "mxfp4"), (4, 16, "nvfp4"), (8, 32, "mxfp8")]
QUANT = {name: FORMS for name in FAMILIES}


def SPREAD(cfg, key, value):
    """Logits three times the default spread (the final norm's weights): four forms of
    one seed must all keep comfortable greedy margins."""
    import mlx.core as mx
    if key != "model.norm.weight":
        return None
    base = value * 8.0 if cfg.get("tie_word_embeddings", True) else value
    return 3.0 * (base + 0.1 * mx.random.normal(value.shape))
