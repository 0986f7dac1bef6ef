"""gpt_oss fixtures (mlx_lm/models/gpt_oss.py): attention sinks (a learned logit per query
head in every softmax's denominator), alternating sliding / full layers (layer_types; mlx-lm
keeps the sliding layers in a RotatingKVCache of sliding_window slots), q/k/v/o biases, yarn
RoPE, and its mixture of experts: a router with a bias, top-k of its logits then a softmax
over them, experts with biases and the clamped SwiGLU (gate <= 7, up in [-7, 7],
(up + 1) * gate * sigmoid(1.702 * gate)).  The weights are spread so that the sinks are
non-zero, the expert biases non-zero, and some gate / up values pass the clamp."""
import mlx.core as mx

_BASE = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=64, num_attention_heads=4,
             num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5, vocab_size=384,
             rope_theta=150000.0, max_position_embeddings=512, torch_dtype="float32",
             bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)

FAMILIES = {
    "gptoss-tiny": dict(_BASE, model_type="gpt_oss", num_local_experts=4, num_experts_per_tok=2,
                        sliding_window=4, layer_types=["sliding_attention", "full_attention"],
                        rope_scaling={"rope_type": "yarn", "factor": 8.0, "beta_fast": 32.0,
                                      "beta_slow": 1.0, "original_max_position_embeddings": 64,
                                      "truncate": False}),
}


def SPREAD(cfg, k, v):
    if cfg.get("model_type") != "gpt_oss":
        return None
    if k.endswith("self_attn.sinks"):
        return 1.5 * mx.random.normal(v.shape)
    if ".experts." in k and k.endswith(".bias"):
        return 0.5 * mx.random.normal(v.shape)
    if ".experts." in k and (".gate_proj." in k or ".up_proj." in k):
        return v * 8.0   # some activations beyond the clamp (limit 7)
    if k.endswith("router.bias"):
        return 0.5 * mx.random.normal(v.shape)
    return None

# mlx-community ships gpt-oss in MXFP4: that form too, beside the affine ones
QUANT = {"gptoss-tiny": [(4, 32, "affine"), (8, 64, "affine"), (4, 32, "mxfp4")]}
