"""gemma3n fixtures (mlx_lm/models/gemma3n.py, model_type "gemma3n"): the text model of the
multimodal checkpoint in the folder form mlx-community ships (config.json with text_config,
weights under model.language_model.*; mlx-lm's sanitize drops the vision / audio towers).
Exercised: AltUp over altup_num_inputs streams (projections with the magnitude
renormalisation, predict / correct through the router with tanh, coefficient clipping
(altup_coef_clip, small here so that some coefficients clip), correct_output_scale),
LAuReL, per-layer inputs (embed_tokens_per_layer masked past vocab_size_per_layer_input,
the model projection and its norm, the per-layer gate / projection / norm into streams 1..),
KV sharing (num_kv_shared_layers: the last layers read the cache of the last earlier layer
of their type), gelu_topk (activation_sparsity_pattern non-zero on the first layers),
q/k/v norms, attention scale 1, sliding / full layers with their own RoPE bases, per-layer
intermediate sizes (a list), final_logit_softcapping."""
import mlx.core as mx

_TEXT = dict(model_type="gemma3n_text", hidden_size=64, num_hidden_layers=5,
             intermediate_size=[128, 96, 128, 64, 128], num_attention_heads=4, num_key_value_heads=2,
             head_dim=16, rms_norm_eps=1e-6, vocab_size=384, num_kv_shared_layers=2,
             vocab_size_per_layer_input=256, sliding_window=4, max_position_embeddings=512,
             rope_local_base_freq=10000.0, rope_theta=1000000.0, final_logit_softcapping=30.0,
             layer_types=["sliding_attention", "full_attention", "sliding_attention", "sliding_attention",
                          "full_attention"],
             activation_sparsity_pattern=[0.95, 0.95, 0.0, 0.0, 0.0], hidden_size_per_layer_input=32,
             altup_num_inputs=4, altup_coef_clip=0.6, altup_correct_scale=True, altup_active_idx=0,
             laurel_rank=8, bos_token_id=1, eos_token_id=2)

FAMILIES = {
    "gemma3n-tiny": dict(model_type="gemma3n", text_config=_TEXT, torch_dtype="float32",
                         bos_token_id=1, eos_token_id=2),
}


# mlx-lm's call without a cache lets the KV-shared layers use their own K/V (its `cache is not
# None` test); generation always runs with the cache: the golden logits do too
CACHED_LOGITS = {"gemma3n-tiny"}


def SPREAD(cfg, k, v):
    if cfg.get("model_type") != "gemma3n":
        return None
    if k.endswith("altup.prediction_coefs.weight"):
        return 0.5 * mx.random.normal(v.shape)
    if k.endswith("altup.correction_coefs.weight"):
        return 0.5 * mx.random.normal(v.shape)
    if k.endswith("altup.correct_output_scale"):
        return 1.0 + 0.3 * mx.random.normal(v.shape)
    if k.endswith("language_model.norm.weight"):
        return v * 8.0 + 0.1 * mx.random.normal(v.shape)
    if "norm" in k:
        return v + 0.1 * mx.random.normal(v.shape)
    if "embed_tokens" in k:
        return v
    return v * 2.0
