"""Mixture-of-experts families on standard attention (lib/models/moe.c, moe_fwd.c): each tiny
config turns on its family's router options (shared experts and their gate, expert biases,
sigmoid scores, sparsemixer with a jitter wide enough that the band holds other experts,
renormalization) and, where the family has them, dense layers beside the sparse ones."""
import sys, os

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from gen_llm_fixtures import BASE  # noqa: E402

FAMILIES = {
    # every layer sparse in mlx-lm; shared expert gated by sigmoid(shared_expert_gate)
    "qwen2moe-tiny": dict(BASE, model_type="qwen2_moe", num_experts=4, num_experts_per_tok=2,
                          moe_intermediate_size=32, shared_expert_intermediate_size=48,
                          tie_word_embeddings=False, rope_theta=1000000.0),
    # q/k norms over the projection; attention and expert biases; renormalized top-k
    "olmoe-tiny": dict(BASE, model_type="olmoe", num_experts=4, num_experts_per_tok=2, norm_topk_prob=True,
                       intermediate_size=48,
                       attention_bias=True, mlp_bias=True, tie_word_embeddings=False),
    # granite's multipliers, router "router.layer" (top-k of the logits, then softmax)
    "granitemoe-tiny": dict(BASE, model_type="granitemoe", num_local_experts=4, num_experts_per_tok=2,
                            intermediate_size=48,
                            logits_scaling=0.5, attention_multiplier=0.25, embedding_multiplier=2.0,
                            residual_multiplier=1.2, attention_bias=False, tie_word_embeddings=False),
    # sparsemixer (jitter 0.3: several experts within the band), LayerNorms, lm_head bias, longrope
    "phimoe-tiny": dict(BASE, model_type="phimoe", num_local_experts=4, num_experts_per_tok=2,
                        router_jitter_noise=0.3, max_position_embeddings=4096, tie_word_embeddings=False,
                        original_max_position_embeddings=256,
                        rope_scaling={"type": "longrope", "long_factor": [1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0],
                                      "short_factor": [1.0] * 8, "long_mscale": 1.2, "short_mscale": 1.0}),
    # sigmoid scores renormalized, 2 shared experts (no gate), biases everywhere, layer 0 dense
    "ernie45moe-tiny": dict(BASE, model_type="ernie4_5_moe", num_hidden_layers=3, moe_num_experts=4, moe_k=2,
                            moe_intermediate_size=32, moe_num_shared_experts=2, moe_layer_start_index=1,
                            moe_gate_act="sigmoid", use_bias=True, tie_word_embeddings=False),
    # sigmoid scores + a selection bias, 4 groups of 2 experts (2 kept), renormalized, scaled 2.5;
    # a shared expert; fused q/k/v with biases, half rotary, q/k norms; layer 0 dense
    "bailing-tiny": dict(BASE, model_type="bailing_moe", num_hidden_layers=3, num_experts=8, num_experts_per_tok=2,
                         moe_intermediate_size=32, num_shared_experts=1, first_k_dense_replace=1,
                         norm_topk_prob=True, use_qk_norm=True, use_qkv_bias=True, partial_rotary_factor=0.5,
                         moe_router_enable_expert_bias=True, routed_scaling_factor=2.5, score_function="sigmoid",
                         n_group=4, topk_group=2, tie_word_embeddings=False),
    # q/k norms after RoPE, alpha-scaled RoPE base, router gate.wg, a shared MLP, attention biases
    "hunyuan-tiny": dict(BASE, model_type="hunyuan", num_experts=4, moe_topk=2, num_shared_expert=1,
                         use_mixed_mlp_moe=True, moe_intermediate_size=32, intermediate_size=48,
                         use_qk_norm=True, use_cla=False, cla_share_factor=2, attention_bias=True,
                         rope_scaling={"alpha": 1000.0, "factor": 1.0, "type": "dynamic"}),
    # cross-layer attention: layers 1 and 3 reuse the k/v projections of layers 0 and 2
    "hunyuancla-tiny": dict(BASE, model_type="hunyuan", num_hidden_layers=4, num_experts=4, moe_topk=2,
                            num_shared_expert=1, use_mixed_mlp_moe=False, moe_intermediate_size=32,
                            use_qk_norm=True, use_cla=True, cla_share_factor=2, attention_bias=False,
                            rope_scaling={"alpha": 1.0, "factor": 1.0, "type": "dynamic"}),
    # its own names and keys; one module per expert; bias-free LayerNorms; q/k/v clipped to +-2
    "dbrx-tiny": dict(model_type="dbrx", d_model=64, n_layers=2, n_heads=4, vocab_size=BASE["vocab_size"],
                      attn_config={"kv_n_heads": 2, "clip_qkv": 2.0, "rope_theta": 10000.0},
                      ffn_config={"ffn_hidden_size": 32, "moe_num_experts": 4, "moe_top_k": 2},
                      tie_word_embeddings=False, torch_dtype="float32", bos_token_id=1, eos_token_id=2),
    "hunyuandense-tiny": dict(BASE, model_type="hunyuan_v1_dense", use_qk_norm=True, tie_word_embeddings=False,
                              rope_scaling={"alpha": 50.0, "factor": 1.0, "type": "dynamic"}),
    # sigmoid scores, selection by score + e_score_correction_bias, renormalized; q/k norms over
    # the projection, rotary_dim 8 of head_dim 16
    "minimax-tiny": dict(BASE, model_type="minimax", num_local_experts=4, num_experts_per_tok=2,
                         shared_intermediate_size=0, rotary_dim=8, use_qk_norm=True, tie_word_embeddings=False),
    # mlx-lm's llama4_text is dense: RoPE in layer 0 only (no_rope_layers), weightless q/k norms,
    # the MLP under feed_forward (intermediate_size_mlp), the head named "output"
    "llama4text-tiny": dict(BASE, model_type="llama4_text", intermediate_size_mlp=96, head_dim=16,
                            no_rope_layers=[1, 0], use_qk_norm=True, tie_word_embeddings=False),
}


def SPREAD(cfg, key, value):
    """bailing_moe, minimax: a selection bias that matters (it is stored as zeros); bailing_moe: the
    embedding spread of the others (its embedding is model.word_embeddings).
    phimoe: sparsemixer gives a pick the weight of its band alone, so a near-tie between
    the second and third expert flips an O(1) part of the output (float rounding then decides
    it): a 20x wider router keeps the experts' logits apart."""
    if cfg["model_type"] == "phimoe" and key.endswith("block_sparse_moe.gate.weight"):
        return value * 20.0
    if cfg["model_type"] == "dbrx" and key == "transformer.wte.weight":
        return value * 12.0   # the spread of an embedding
    if cfg["model_type"] == "llama4_text" and key == "output.weight":
        return value * 12.0   # the spread of an lm_head
    if cfg["model_type"] == "minimax" and key.endswith("e_score_correction_bias"):
        import mlx.core as mx
        return 0.2 * mx.random.normal(value.shape)
    if cfg["model_type"] == "bailing_moe":   # names the default spread does not know
        import mlx.core as mx
        if key.endswith("gate.expert_bias"):
            return 0.2 * mx.random.normal(value.shape)
        if key == "model.word_embeddings.weight":
            return value * 12.0
    return None
