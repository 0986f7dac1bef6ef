"""Dense llama variants made of the shared decoder's switches, group A (lib/models/dense_a.c):
phi, cohere, cohere2, internlm2, internlm3, glm4, exaone4, ernie4_5, olmo3, minicpm, exaone, helium, glm.
Every mechanism is active in the tiny configs: phi's parallel block and partial rotary,
cohere's per-head q/k LayerNorm (weights spread around 1), cohere2's sliding/global (no RoPE)
layers, internlm2's grouped wqkv with a linear RoPE scaling, exaone4's LLLG pattern, olmo3's
default layer_types (every 4th layer full) with a scaled RoPE on the full layer only, minicpm's
three scales."""
import sys, types
import mlx.core as mx

# mlx-lm's olmo module exits unless ai2-olmo is installed, which it only probes for (never uses)
sys.modules.setdefault("hf_olmo", types.ModuleType("hf_olmo"))


def _olmo_additive_mask(h, cache=None, window_size=None, return_array=False):
    """mlx-lm 0.32's olmo adds the mask to its scores itself (scores += mask), but the shared
    create_attention_mask gives it the string "causal" (or a boolean array): its prefill cannot
    run.  The goldens use the additive causal mask that code means (0 allowed, -inf masked)."""
    from mlx_lm.models.base import create_attention_mask
    m = create_attention_mask(h, cache, window_size=window_size, return_array=True)
    return None if m is None else mx.where(m, 0.0, -mx.inf)


import mlx_lm.models.olmo as _olmo  # noqa: E402
_olmo.create_attention_mask = _olmo_additive_mask

BASE = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=128, num_attention_heads=4,
            num_key_value_heads=2, rms_norm_eps=1e-5, vocab_size=384, rope_theta=10000.0,
            max_position_embeddings=512, torch_dtype="float32", bos_token_id=1, eos_token_id=2)

FAMILIES = {
    "phi-tiny": dict(BASE, model_type="phi", partial_rotary_factor=0.5, layer_norm_eps=1e-5,
                     tie_word_embeddings=False),
    "cohere-tiny": dict(BASE, model_type="cohere", use_qk_norm=True, layer_norm_bias=False, logit_scale=2.0,
                        attention_bias=True, layer_norm_eps=1e-5, tie_word_embeddings=True),
    "cohere2-tiny": dict(BASE, model_type="cohere2", num_hidden_layers=4, head_dim=16, sliding_window=4,
                         sliding_window_pattern=2, logit_scale=2.0, layer_norm_eps=1e-5,
                         tie_word_embeddings=True),
    "internlm2-tiny": dict(BASE, model_type="internlm2", bias=True, tie_word_embeddings=False,
                           rope_scaling={"type": "linear", "factor": 2.0}),
    "internlm3-tiny": dict(BASE, model_type="internlm3", qkv_bias=True, bias=True, head_dim=24,
                           tie_word_embeddings=False, rope_scaling={"rope_type": "linear", "factor": 2.0}),
    "glm4-tiny": dict(BASE, model_type="glm4", head_dim=16, partial_rotary_factor=0.5, attention_bias=True,
                      tie_word_embeddings=False),
    "exaone4-tiny": dict(BASE, model_type="exaone4", num_hidden_layers=4, head_dim=16, sliding_window=3,
                         sliding_window_pattern="LLLG", rope_scaling=None, tie_word_embeddings=False,
                         # (for transformers' config class, which the tokenizer loader builds: it cannot
                         # derive layer_types from a string pattern; mlx-lm reads only the pattern)
                         layer_types=["sliding_attention"] * 3 + ["full_attention"]),
    "ernie45-tiny": dict(BASE, model_type="ernie4_5", head_dim=16, use_bias=True, tie_word_embeddings=False),
    "olmo3-tiny": dict(BASE, model_type="olmo3", num_hidden_layers=4, sliding_window=4,
                       rope_scaling={"rope_type": "linear", "factor": 2.0}, tie_word_embeddings=False),
    "minicpm-tiny": dict(BASE, model_type="minicpm", scale_emb=2.0, scale_depth=1.4, dim_model_base=16,
                         tie_word_embeddings=False),
    "exaone-tiny": dict(BASE, model_type="exaone", num_layers=2, layer_norm_epsilon=1e-5, attention_bias=True,
                        mlp_bias=True, tie_word_embeddings=False),
    # tied: mlx-lm's helium still has (and saves) an lm_head, which it does not use
    "helium-tiny": dict(BASE, model_type="helium", head_dim=16, attention_bias=True, mlp_bias=True,
                        tie_word_embeddings=True),
    "glm-tiny": dict(BASE, model_type="glm", head_dim=24, attention_bias=True, tie_word_embeddings=True),
    # OLMo 1 (ai2 layout): its own keys, no kv-head count, no norm weights
    "olmo-tiny": dict(model_type="olmo", d_model=64, n_layers=2, n_heads=4, mlp_hidden_size=256, vocab_size=384,
                      embedding_size=384, rope_theta=10000.0, weight_tying=False, max_position_embeddings=512,
                      torch_dtype="float32", bos_token_id=1, eos_token_id=2, tie_word_embeddings=False),
}


def SPREAD(cfg, k, v):
    # cohere's LayerNorm2D q/k weights start at zero: spread them around 1
    if cfg["model_type"] == "cohere" and (k.endswith("q_norm.weight") or k.endswith("k_norm.weight")):
        return 1.0 + 0.3 * mx.random.normal(v.shape)
    # internlm2 names its embedding and head otherwise: the spread the generator gives llama's
    if (cfg["model_type"] == "internlm2" and (k == "output.weight" or k == "model.tok_embeddings.weight")) or \
            (cfg["model_type"] == "exaone" and k == "transformer.wte.weight") or \
            (cfg["model_type"] == "olmo" and k in ("model.transformer.wte.weight", "model.transformer.ff_out.weight")):
        return v * 12.0
    # minicpm divides the head's input by hidden_size / dim_model_base (4 here): a wider head
    if cfg["model_type"] == "minicpm" and k == "lm_head.weight":
        return v * 48.0
    return None
