"""GPT-style and other dense decoders (lib/models/dense_b.c, openelm.c): every mechanism a family
has is on in its tiny config (parallel blocks, partial rotary, learned positions, multi-query,
biases, per-head q/k norms, ternary weights, parameterless norms, per-layer head counts).
Sections: FAMILIES (GPT-style), SPREAD, then per group its configs and what makes mlx-lm run
here (bitnet: its Metal kernel as mlx ops; olmo is in dense_a.py)."""

# gpt2-style configs use their own key names
_GPT = dict(n_embd=64, n_head=4, n_layer=2, n_positions=512, n_ctx=512, layer_norm_epsilon=1e-5,
            vocab_size=384, torch_dtype="float32", bos_token_id=1, eos_token_id=2)

FAMILIES = {
    # parallel residual with two norms, fused qkv grouped per head, a quarter of each head rotated
    "gptneox-tiny": dict(model_type="gpt_neox", hidden_size=64, num_attention_heads=4, num_hidden_layers=2,
                         intermediate_size=256, layer_norm_eps=1e-5, vocab_size=384, rotary_emb_base=10000,
                         rotary_pct=0.25, use_parallel_residual=True, max_position_embeddings=512,
                         torch_dtype="float32", bos_token_id=1, eos_token_id=2, tie_word_embeddings=False),
    # sequential blocks, q/k/v biases, GQA, partial rotary
    "stablelm-tiny": dict(model_type="stablelm", hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                          num_hidden_layers=2, intermediate_size=128, layer_norm_eps=1e-5, vocab_size=384,
                          rope_theta=10000.0, use_qkv_bias=True, partial_rotary_factor=0.5,
                          use_parallel_residual=False, max_position_embeddings=512, torch_dtype="float32",
                          bos_token_id=1, eos_token_id=2, tie_word_embeddings=False),
    # parallel residual sharing the input norm
    "stablelm-par": dict(model_type="stablelm", hidden_size=64, num_attention_heads=4, num_key_value_heads=4,
                         num_hidden_layers=2, intermediate_size=128, layer_norm_eps=1e-5, vocab_size=384,
                         rope_theta=10000.0, use_qkv_bias=False, partial_rotary_factor=0.25,
                         use_parallel_residual=True, max_position_embeddings=512, torch_dtype="float32",
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False),
    # q/k LayerNorms with weights of their own per head (StableLM 2 12B), GQA
    "stablelm-qkln": dict(model_type="stablelm", hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                          num_hidden_layers=2, intermediate_size=128, layer_norm_eps=1e-5, vocab_size=384,
                          rope_theta=10000.0, use_qkv_bias=False, partial_rotary_factor=0.25, qk_layernorm=True,
                          use_parallel_residual=False, max_position_embeddings=512, torch_dtype="float32",
                          bos_token_id=1, eos_token_id=2, tie_word_embeddings=False),
    "gpt2-tiny": dict(_GPT, model_type="gpt2"),
    # multi-query attention (one kv head), exact GELU, its own head
    "gptbigcode-tiny": dict(_GPT, model_type="gpt_bigcode", n_inner=128, multi_query=True,
                            tie_word_embeddings=False),
    # parallel block with one norm, traditional RoPE on half of each head, head with a bias
    "gptj-tiny": dict(_GPT, model_type="gptj", rotary_dim=8),
}


def SPREAD(cfg, k, v):
    """The generator's default spread applied to the GPT names (wte, ln_f, embed_out, ...)."""
    import mlx.core as mx
    tied = cfg.get("tie_word_embeddings", True) and cfg["model_type"] in ("gpt2", "gpt_bigcode")
    emb_scale, lin_scale = (1.0, 5.0) if tied else (12.0, 2.0)
    parts = k.split(".")
    mod = parts[-2] if len(parts) > 1 else k
    final = mod in ("ln_f", "norm", "final_layer_norm")
    if mod == "act_fn":  # xIELU's learned scalars: a different activation in every layer
        return v if parts[-1] == "eps" else v + 0.3 * mx.random.normal(v.shape)
    if final and parts[-1] == "weight" and tied:
        return v * 8.0 + 0.1 * mx.random.normal(v.shape)
    if final or mod.startswith("ln_") or "layernorm" in k:
        return v + 0.1 * mx.random.normal(v.shape)
    if k == "lm_head.weight" and cfg["model_type"] == "nanochat":  # logits mostly inside the soft-cap of 15
        return v * 7.0
    if mod in ("wte", "embed_in", "embed_tokens", "lm_head", "embed_out"):
        return v * emb_scale
    return v * lin_scale

FAMILIES.update({
    # LayerNorm 1 + w with bias, relu^2 MLP, half of each head rotated, linear RoPE scaling, biases
    "nemotron-tiny": dict(model_type="nemotron", hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                          num_hidden_layers=2, intermediate_size=128, norm_eps=1e-5, vocab_size=384,
                          hidden_act="relu2", partial_rotary_factor=0.5, rope_theta=10000.0,
                          rope_scaling={"type": "linear", "factor": 2.0}, attention_bias=True, mlp_bias=True,
                          max_position_embeddings=512, torch_dtype="float32", bos_token_id=1, eos_token_id=2,
                          tie_word_embeddings=False),
    # q/k/v biases without an output bias, head_dim apart from hidden / heads
    "seedoss-tiny": dict(model_type="seed_oss", hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=24, num_hidden_layers=2, intermediate_size=128, rms_norm_eps=1e-5,
                         vocab_size=384, rope_theta=10000.0, attention_bias=True, attention_out_bias=False,
                         mlp_bias=False, max_position_embeddings=512, torch_dtype="float32", bos_token_id=1,
                         eos_token_id=2, tie_word_embeddings=False),
})

FAMILIES.update({
    # xIELU MLP (per-layer alpha_p / alpha_n / beta / eps), q/k norms per head, renamed block norms
    "apertus-tiny": dict(model_type="apertus", hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                         num_hidden_layers=2, intermediate_size=128, mlp_bias=False, attention_bias=False,
                         rms_norm_eps=1e-5, vocab_size=384, max_position_embeddings=512, rope_theta=10000.0,
                         post_norm=False, qk_norm=True, torch_dtype="float32", bos_token_id=1, eos_token_id=2,
                         tie_word_embeddings=False),
})

# BitNet b1.58: packed ternary projections.  mlx-lm multiplies them with a Metal kernel, which
# this Linux CPU lacks: the goldens come from the same arithmetic in plain mlx ops (the
# weights unpacked, x W^T times the scale, as the kernel computes it), patched in below.
FAMILIES.update({
    "bitnet-tiny": dict(model_type="bitnet", hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                        num_hidden_layers=2, intermediate_size=128, rms_norm_eps=1e-5, vocab_size=384,
                        rope_theta=10000.0, max_position_embeddings=512, torch_dtype="float32",
                        bos_token_id=1, eos_token_id=2, tie_word_embeddings=True,
                        quantization_config={"quant_method": "bitnet", "linear_class": "autobitlinear",
                                             "quantization_mode": "offline", "modules_to_not_convert": ["lm_head"]}),
})
QUANT = {"bitnet-tiny": []}  # already 1.58-bit: no affine forms
# nanochat's soft-cap of 15 crowds the top logits: no seed keeps all three forms above 0.05
# (still hundreds of times the 1e-4 the logits are compared at)
MARGIN = {"nanochat-tiny": 0.04}


def _bitlinear_on_cpu():
    import mlx.core as mx
    from mlx_lm.models import bitlinear_layers as bl

    def matmul(self, x, packed):
        shape = x.shape
        w = mx.concatenate([((packed >> (2 * i)) & 3).astype(mx.float32) - 1.0 for i in range(4)], axis=0)
        y = x.reshape(-1, shape[-1]).astype(mx.float32) @ w.T
        s = self.weight_scale.astype(mx.float32)
        y = (y / s if self.invert_weight_scales else y * s).astype(self.weight_scale.dtype)
        return y.reshape(*shape[:-1], self.out_features)

    bl.BitLinear.execute_matmul_kernel = matmul


_bitlinear_on_cpu()


def BUILD(cfg, seed):
    if cfg["model_type"] != "bitnet":
        return None
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import bitnet
    mx.random.seed(seed)
    model = bitnet.Model(bitnet.ModelArgs.from_dict(cfg))
    out = []
    for k, v in tree_flatten(model.parameters()):
        if v.dtype == mx.uint8:  # four ternary codes (0, 1, 2 = -1, 0, 1) per byte
            c = [mx.random.randint(0, 3, v.shape).astype(mx.uint8) for _ in range(4)]
            v = c[0] | (c[1] << 2) | (c[2] << 4) | (c[3] << 6)
        elif k.endswith("weight_scale"):
            v = mx.random.uniform(0.15, 0.45, v.shape)
        elif k == "model.norm.weight":
            v = v * 8.0 + 0.1 * mx.random.normal(v.shape)
        elif "norm" in k:
            v = v + 0.1 * mx.random.normal(v.shape)
        out.append((k, v))
    model.load_weights(out)
    mx.eval(model.parameters())
    return model


FAMILIES.update({
    # parameterless RMSNorms (embeddings, q/k, blocks, final), reversed RoPE, relu^2, logit soft-cap 15, GQA
    "nanochat-tiny": dict(model_type="nanochat", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, vocab_size=384, max_position_embeddings=512, intermediate_size=256,
                          rope_theta=10000.0, torch_dtype="float32", bos_token_id=1, eos_token_id=2),
})

FAMILIES.update({
    # a different number of query / kv heads (4 per kv head throughout) and MLP width in every layer
    "openelm-tiny": dict(model_type="openelm", model_dim=64, head_dim=16, num_transformer_layers=3,
                         num_query_heads=[4, 8, 4], num_kv_heads=[1, 2, 1], ffn_multipliers=[0.5, 2.0, 1.0],
                         ffn_dim_divisor=16, vocab_size=384, normalize_qk_projections=True,
                         share_input_output_layers=False, rms_norm_eps=1e-6, rope_freq_constant=10000,
                         torch_dtype="float32", bos_token_id=1, eos_token_id=2),
})
