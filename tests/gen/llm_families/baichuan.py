"""baichuan_m1: attention over keys and values convolved over time (a per-sequence state of the
previous token's raw k/v), sliding-window layers with their own kv head count, an lm_head whose
rows mlx-lm scales to unit norm at load."""
VOCAB = 384

FAMILIES = {
    # layer 1 slides over 5 positions with 1 kv head (the full layers have 2); the conv taps random
    "baichuanm1-tiny": dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                            num_attention_heads=4, num_key_value_heads=2, num_swa_attention_heads=4,
                            num_swa_key_value_heads=1, rope_theta=10000.0, sliding_window=5,
                            sliding_window_layers=[1], conv_window=2, rms_norm_eps=1e-5,
                            max_position_embeddings=512, tie_word_embeddings=False, model_type="baichuan_m1",
                            torch_dtype="float32", bos_token_id=1, eos_token_id=2),
}


def SPREAD(cfg, k, v):
    import mlx.core as mx
    if k.endswith("conv_k") or k.endswith("conv_v"):
        return 0.5 + 0.5 * mx.random.normal(v.shape)  # stored as zeros
    if k == "model.norm.weight":
        return v * 8.0 + 0.1 * mx.random.normal(v.shape)  # the unit-norm head rows give small logits
    return None
