"""Gated DeltaNet fixtures (linear attention with recurrent state; Qwen3-Next / Qwen3.5).

Each has 4 layers with full_attention_interval 2: DeltaNet, full (gated) attention, DeltaNet,
full -- both layer kinds, and the recurrence carried across two DeltaNet layers.  Value heads
are twice the key heads (the key-head grouping), the convolution kernel is 4, the attention
is partial-rotary with per-head q/k norms and an output gate.
  qwen3next-tiny    qwen3_next, dense MLP (num_experts 0), in_proj_qkvz / in_proj_ba
  qwen3next-asym-tiny  qwen3_next with nk 1, nv 3, dk 24, dv 8, kernel 3, 3 layers (2 linear), tied
  qwen3_5-tiny      qwen3_5, the text config nested under text_config (mlx-lm's language_model.
                    tensor names), rope_parameters with an mrope_section, split projections
  qwen3next-moe-tiny, qwen3_5moe-tiny: sparse layers with a sigmoid-gated shared expert (the
                    built-in MoE's shared-expert option)
"""
import mlx.core as mx

_SIZES = dict(hidden_size=64, num_hidden_layers=4, intermediate_size=128, num_attention_heads=4,
              num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5, vocab_size=384,
              max_position_embeddings=512, torch_dtype="float32", bos_token_id=1, eos_token_id=2,
              linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=16,
              linear_value_head_dim=16, linear_conv_kernel_dim=4, full_attention_interval=2,
              tie_word_embeddings=False)
_NEXT = dict(_SIZES, model_type="qwen3_next", rope_theta=10000.0, partial_rotary_factor=0.5,
             num_experts=0, num_experts_per_tok=2, decoder_sparse_step=1, shared_expert_intermediate_size=64,
             mlp_only_layers=[], moe_intermediate_size=32, norm_topk_prob=True)
_TEXT35 = dict(_SIZES, model_type="qwen3_5_text",
               rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
                                "mrope_section": [2, 1, 1]})

FAMILIES = {
    "qwen3next-tiny": _NEXT,
    # uneven geometry: one key head shared by 3 value heads, key and value head sizes differ
    # (24 / 8: a value width of 24, so out_proj stays unquantized in the 4/8-bit forms), kernel 3,
    # layers linear, linear, full; tied embeddings
    "qwen3next-asym-tiny": dict(_NEXT, num_hidden_layers=3, full_attention_interval=3, linear_num_key_heads=1,
                                linear_num_value_heads=3, linear_key_head_dim=24, linear_value_head_dim=8,
                                linear_conv_kernel_dim=3, partial_rotary_factor=0.25, tie_word_embeddings=True),
    "qwen3_5-tiny": dict(model_type="qwen3_5", tie_word_embeddings=False, eos_token_id=2, bos_token_id=1,
                         text_config=_TEXT35),
    "qwen3next-moe-tiny": dict(_NEXT, num_experts=4, mlp_only_layers=[2]),
    "qwen3_5moe-tiny": dict(model_type="qwen3_5_moe", tie_word_embeddings=False, eos_token_id=2, bos_token_id=1,
                            text_config=dict(_TEXT35, model_type="qwen3_5_moe_text", num_experts=4,
                                             num_experts_per_tok=2, moe_intermediate_size=32,
                                             shared_expert_intermediate_size=64, norm_topk_prob=True)),
}


def SPREAD(cfg, k, v):
    """The DeltaNet's own parameters keep sane magnitudes: a decay that neither vanishes nor
    stays at 1, a convolution of moderate taps."""
    if k.endswith("A_log"):
        return mx.log(mx.random.uniform(low=0.5, high=4.0, shape=v.shape))
    if k.endswith("dt_bias"):
        return mx.random.uniform(low=-1.0, high=1.0, shape=v.shape)
    if k.endswith("conv1d.weight"):
        return mx.random.normal(v.shape) * 0.5
    if k.endswith("linear_attn.norm.weight"):
        return v + 0.1 * mx.random.normal(v.shape)
    return None
