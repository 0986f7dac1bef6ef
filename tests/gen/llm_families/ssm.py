"""Recurrent-state families: lfm2 (attention + gated short convolution; lfm2_moe: the same with
sigmoid-routed experts after num_dense_layers dense layers), mamba2 (SSD),
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
    # lfm2_moe: conv + dense MLP, attention + experts, conv + experts; 4 experts, top 2, the
    # selection bias on, renormalized and scaled
    "lfm2moe-tiny": dict(COMMON, model_type="lfm2_moe", num_hidden_layers=3, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=512, norm_eps=1e-5, conv_bias=False,
                         conv_L_cache=3, intermediate_size=128, moe_intermediate_size=32, num_experts=4,
                         num_experts_per_tok=2, norm_topk_prob=True, use_expert_bias=True, num_dense_layers=1,
                         routed_scaling_factor=1.5, rope_theta=10000.0,
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
    # Mamba-2, attention (no RoPE), ReLU^2 MLP, Mamba-2; gated norm over 2 groups
    "nemotron-h-tiny": dict(COMMON, model_type="nemotron_h", hybrid_override_pattern="M*-M", intermediate_size=128,
                            max_position_embeddings=512, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                            attention_bias=False, mamba_num_heads=8, mamba_head_dim=16, mamba_proj_bias=False,
                            ssm_state_size=16, conv_kernel=4, n_groups=2, mlp_bias=False, layer_norm_epsilon=1e-5,
                            use_bias=False, use_conv_bias=True, tie_word_embeddings=False),
    # routed ReLU^2 experts: 8 in 2 groups (top group 1), top 2, renormalized and scaled, a shared expert
    "nemotron-h-moe": dict(COMMON, model_type="nemotron_h", hybrid_override_pattern="ME*E", intermediate_size=128,
                           max_position_embeddings=512, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                           attention_bias=False, mamba_num_heads=8, mamba_head_dim=16, mamba_proj_bias=False,
                           ssm_state_size=16, conv_kernel=4, n_groups=1, mlp_bias=False, layer_norm_epsilon=1e-5,
                           use_bias=False, use_conv_bias=True, tie_word_embeddings=False, n_routed_experts=8,
                           num_experts_per_tok=2, n_group=2, topk_group=1, norm_topk_prob=True,
                           routed_scaling_factor=2.5, moe_intermediate_size=32, n_shared_experts=1,
                           moe_shared_expert_intermediate_size=64),
    # the same with a latent space for the experts
    "nemotron-h-latent": dict(COMMON, model_type="nemotron_h", hybrid_override_pattern="M*E", intermediate_size=128,
                              max_position_embeddings=512, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                              attention_bias=False, mamba_num_heads=8, mamba_head_dim=16, mamba_proj_bias=False,
                              ssm_state_size=16, conv_kernel=4, n_groups=1, mlp_bias=False, layer_norm_epsilon=1e-5,
                              use_bias=False, use_conv_bias=True, tie_word_embeddings=False, n_routed_experts=4,
                              num_experts_per_tok=2, n_group=1, topk_group=1, norm_topk_prob=False,
                              routed_scaling_factor=1.5, moe_intermediate_size=32, n_shared_experts=1,
                              moe_shared_expert_intermediate_size=64, moe_latent_size=32),
    # attention + Mamba-2 in parallel, gated RMSNorm, tied head with its multipliers
    "falcon-h1-tiny": dict(COMMON, model_type="falcon_h1", num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=16, intermediate_size=128, mamba_n_heads=8, mamba_d_head=16,
                           mamba_d_ssm=128, mamba_d_state=16, mamba_n_groups=2, mamba_d_conv=4, mamba_rms_norm=True,
                           mamba_norm_before_gate=False, mamba_conv_bias=True, rope_theta=10000.0,
                           max_position_embeddings=512, rms_norm_eps=1e-5, tie_word_embeddings=True,
                           embedding_multiplier=0.5, lm_head_multiplier=1.0),
    # no gated norm (y * silu(z)), biases on the projections, untied head
    "falcon-h1-nonorm": dict(COMMON, model_type="falcon_h1", num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, head_dim=16, intermediate_size=128, mamba_n_heads=4,
                             mamba_d_head=16, mamba_d_ssm=64, mamba_d_state=8, mamba_n_groups=1, mamba_d_conv=3,
                             mamba_rms_norm=False, mamba_proj_bias=True, projectors_bias=True, attention_bias=True,
                             mlp_bias=True, rope_theta=10000.0, max_position_embeddings=512, rms_norm_eps=1e-5,
                             tie_word_embeddings=False),
    # dense variant: granite multipliers, Mamba-2 and attention layers, RoPE
    "granitemoehybrid-tiny": dict(COMMON, model_type="granitemoehybrid", num_hidden_layers=3, intermediate_size=128,
                                  max_position_embeddings=512, num_attention_heads=4, num_key_value_heads=2,
                                  attention_bias=False, embedding_multiplier=2.0, attention_multiplier=0.25,
                                  logits_scaling=1.5, residual_multiplier=0.8,
                                  layer_types=["mamba", "attention", "mamba"], rms_norm_eps=1e-5,
                                  mamba_n_heads=8, mamba_d_head=16, mamba_proj_bias=False, mamba_d_state=16,
                                  mamba_d_conv=4, mamba_n_groups=2, mamba_conv_bias=True,
                                  position_embedding_type="rope", rope_theta=10000.0, tie_word_embeddings=False,
                                  num_local_experts=0, num_experts_per_tok=0),
    # attention at layer 1 of 2-layer periods, experts on odd layers (4 experts, top 2), normalized dt/B/C
    "jamba-tiny": dict(COMMON, model_type="jamba", num_hidden_layers=4, intermediate_size=128, num_attention_heads=4,
                       num_key_value_heads=2, attn_layer_offset=1, attn_layer_period=2, expert_layer_offset=1,
                       expert_layer_period=2, mamba_d_conv=4, mamba_d_state=8, mamba_expand=2, num_experts=4,
                       num_experts_per_tok=2, rms_norm_eps=1e-6, max_position_embeddings=512, mamba_dt_rank="auto",
                       mamba_proj_bias=False, mamba_conv_bias=True, tie_word_embeddings=True),
    # MoE variant: 4 experts, top 2, plus the shared MLP; attention without RoPE
    "granitemoehybrid-moe": dict(COMMON, model_type="granitemoehybrid", num_hidden_layers=2, intermediate_size=64,
                                 max_position_embeddings=512, num_attention_heads=4, num_key_value_heads=2,
                                 attention_bias=False, embedding_multiplier=2.0, attention_multiplier=0.25,
                                 logits_scaling=1.5, residual_multiplier=0.8, layer_types=["attention", "mamba"],
                                 rms_norm_eps=1e-5, mamba_n_heads=8, mamba_d_head=16, mamba_proj_bias=True,
                                 mamba_d_state=8, mamba_d_conv=3, mamba_n_groups=1, mamba_conv_bias=True,
                                 position_embedding_type="nope", tie_word_embeddings=True, num_local_experts=4,
                                 num_experts_per_tok=2, shared_intermediate_size=64),
}
MODULE = {"falcon_mamba": "mamba"}
QUANT = {"falcon-h1-nonorm": [(4, 32, "affine")]}


def SPREAD(cfg, k, v):
    import mlx.core as mx
    if k.endswith("e_score_correction_bias"):
        return 0.05 * mx.random.normal(v.shape)  # a correction that matters for the choice only
    if k.endswith("feed_forward.expert_bias"):
        return 0.1 * mx.random.normal(v.shape)  # stored as zeros; a bias that changes the choice
    if cfg["model_type"] == "lfm2_moe" and k.endswith("feed_forward.gate.weight"):
        return v  # sigmoid scores that do not saturate
    if k.endswith("mixer.gate.weight"):
        return 0.3 * mx.random.normal(v.shape)  # mlx-lm initializes the router to zeros
    if k.endswith("A_log") or k.endswith(".D") or k.endswith("dt_bias"):
        return v  # keep the state's decay as the model initializes it
    if k in ("backbone.norm_f.weight", "model.embedding_norm.weight", "model.final_layernorm.weight") and cfg.get("tie_word_embeddings", True):
        return v * 8.0 + 0.1 * mx.random.normal(v.shape)
    if "embeddings" in k:
        return v * (1.0 if cfg.get("tie_word_embeddings", True) else 12.0)
    return None
