"""Recurrent-state families: lfm2 (attention + gated short convolution), mamba2 (SSD),
mamba and falcon_mamba (selective scan; falcon_mamba runs on mlx-lm's mamba.py)."""
VOCAB = 384
COMMON = dict(vocab_size=VOCAB, hidden_size=64, torch_dtype="float32", bos_token_id=1, eos_token_id=2)

FAMILIES = {
    # conv, attention, conv: both layer kinds, the conv bias on, an adjusted MLP width
    "lfm2-tiny": dict(COMMON, model_type="lfm2", num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, norm_eps=1e-5, conv_bias=True, conv_L_cache=3, block_dim=64,
                      block_ff_dim=192, block_multiple_of=16, block_ffn_dim_multiplier=1.0,
                      block_auto_adjust_ff_dim=True, rope_theta=10000.0,
                      layer_types=["conv", "full_attention", "conv"], tie_word_embeddings=True),
    # 8 heads in 2 groups, dt limits that clip, untied output head
    "mamba2-tiny": dict(COMMON, model_type="mamba2", num_hidden_layers=2, num_heads=8, head_dim=16, state_size=16,
                        intermediate_size=128, n_groups=2, conv_kernel=4, use_bias=False, use_conv_bias=True,
                        layer_norm_epsilon=1e-5, time_step_limit=[0.01, 2.0], time_step_rank="auto",
                        tie_word_embeddings=False),
    "mamba-tiny": dict(COMMON, model_type="mamba", num_hidden_layers=2, intermediate_size=128, state_size=8,
                       conv_kernel=4, use_bias=False, use_conv_bias=True, time_step_rank="auto",
                       tie_word_embeddings=True),
    "falcon-mamba-tiny": dict(COMMON, model_type="falcon_mamba", num_hidden_layers=2, intermediate_size=128,
                              state_size=8, conv_kernel=4, use_bias=True, use_conv_bias=True, time_step_rank=8,
                              mixer_rms_eps=1e-6, tie_word_embeddings=False),
}
MODULE = {"falcon_mamba": "mamba"}


def SPREAD(cfg, k, v):
    import mlx.core as mx
    if k.endswith("A_log") or k.endswith(".D") or k.endswith("dt_bias"):
        return v  # keep the state's decay as the model initializes it
    if k in ("backbone.norm_f.weight", "model.embedding_norm.weight") and cfg.get("tie_word_embeddings", True):
        return v * 8.0 + 0.1 * mx.random.normal(v.shape)
    if "embeddings" in k:
        return v * (1.0 if cfg.get("tie_word_embeddings", True) else 12.0)
    return None
