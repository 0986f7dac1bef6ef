"""Multi-head latent attention (deepseek_v3 / kimi_k2 absorbed form, deepseek_v2 expanded form)
and the DeepSeek-style mixture of experts (sigmoid or softmax router, group-limited top-k with the
e_score_correction_bias, shared experts, first_k_dense_replace / moe_layer_freq dense layers).

The tiny configs switch on every mechanism: q_lora_rank set (deepseek_v3, deepseek_v2) and null
(kimi_k2), minicpm3's expanded form with longrope and its scales, mistral4's llama-4 query scale
(original_max_position_embeddings 8: it grows within the prompt), yarn RoPE with mscale and mscale_all_dim (the softmax scale's mscale^2), groups > 1 with
the correction bias, dense and sparse layers.  The MultiLinear weights (embed_q, unembed_out)
are quantized along their input dimension, so the 8-bit forms use groups of 32 too."""
import mlx.core as mx

_B = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=4,
          rms_norm_eps=1e-5, vocab_size=384, rope_theta=10000.0, max_position_embeddings=512,
          torch_dtype="float32", bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
_MOE = dict(moe_intermediate_size=32, n_routed_experts=8, n_shared_experts=1, num_experts_per_tok=2,
            routed_scaling_factor=2.5, norm_topk_prob=True)
_YARN = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 128, "beta_fast": 32,
         "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 0.8}

FAMILIES = {
    "deepseek_v3-tiny": dict(_B, **_MOE, model_type="deepseek_v3", num_hidden_layers=3, q_lora_rank=32,
                             kv_lora_rank=32, qk_rope_head_dim=8, qk_nope_head_dim=32, v_head_dim=16,
                             n_group=2, topk_group=1, topk_method="noaux_tc", scoring_func="sigmoid",
                             first_k_dense_replace=1, moe_layer_freq=1, rope_scaling=_YARN),
    "kimi_k2-tiny": dict(_B, **_MOE, model_type="kimi_k2", num_hidden_layers=3, q_lora_rank=None,
                         kv_lora_rank=32, qk_rope_head_dim=16, qk_nope_head_dim=32, v_head_dim=32,
                         n_group=1, topk_group=1, topk_method="noaux_tc", scoring_func="sigmoid",
                         first_k_dense_replace=0, moe_layer_freq=2),
    "deepseek_v2-tiny": dict(_B, **dict(_MOE, norm_topk_prob=False, routed_scaling_factor=1.5),
                             model_type="deepseek_v2", num_hidden_layers=3, q_lora_rank=32, kv_lora_rank=32,
                             qk_rope_head_dim=8, qk_nope_head_dim=16, v_head_dim=16, n_group=2, topk_group=1,
                             topk_method="group_limited_greedy", first_k_dense_replace=1, moe_layer_freq=1,
                             rope_scaling=_YARN),
    "glm4_moe-tiny": dict(_B, **_MOE, model_type="glm4_moe", num_hidden_layers=3, num_key_value_heads=2,
                          head_dim=16, partial_rotary_factor=0.5, use_qk_norm=True, attention_bias=True,
                          n_group=2, topk_group=1, first_k_dense_replace=1, rope_scaling=None),
    "dots1-tiny": dict(_B, **_MOE, model_type="dots1", num_hidden_layers=3, num_key_value_heads=2, head_dim=16,
                       n_group=4, topk_group=2, first_k_dense_replace=1, scoring_func="noaux_tc"),
    "minicpm3-tiny": dict(_B, model_type="minicpm3", num_hidden_layers=2, q_lora_rank=32, kv_lora_rank=32,
                          qk_nope_head_dim=16, qk_rope_head_dim=8, scale_emb=1.5, scale_depth=1.4, dim_model_base=32,
                          rope_theta=1000000.0, max_position_embeddings=1024,
                          rope_scaling={"type": "longrope", "long_factor": [1.0, 1.5, 2.0, 4.0],
                                        "short_factor": [1.0, 1.0, 1.0, 1.0],
                                        "original_max_position_embeddings": 256}),
    "mistral4-tiny": dict(_B, **_MOE, model_type="mistral4", num_hidden_layers=3, q_lora_rank=32, kv_lora_rank=32,
                          qk_rope_head_dim=8, qk_nope_head_dim=32, v_head_dim=16, n_group=2, topk_group=1,
                          first_k_dense_replace=1,
                          rope_parameters={"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0,
                                           "original_max_position_embeddings": 8, "beta_fast": 32, "beta_slow": 1,
                                           "mscale": 1.0, "mscale_all_dim": 1.0, "llama_4_scaling_beta": 0.1}),
    "deepseek-tiny": dict(_B, **dict(_MOE, n_shared_experts=2), model_type="deepseek", num_hidden_layers=3,
                          num_key_value_heads=2, attention_bias=True, first_k_dense_replace=1, moe_layer_freq=1,
                          rope_scaling={"type": "linear", "factor": 4.0}),
}
MODULE = {"kimi_k2": "deepseek_v3"}  # mlx_lm.utils.MODEL_REMAPPING
QUANT = {n: [(4, 32, "affine"), (8, 32, "affine")] for n in FAMILIES}


def SPREAD(cfg, key, value):
    if key.endswith("e_score_correction_bias"):
        return 0.3 * mx.random.normal(value.shape)
    if key.endswith(".gate.weight"):  # a router with some conviction
        return value * 3.0
    if key.startswith("lm_head"):  # wide logits: greedy margins that survive quantization
        return value * 30.0
    return None
