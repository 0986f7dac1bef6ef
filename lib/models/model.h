/* model.h - a loaded language model and its KV cache.
 *
 * mt_model_load() opens a model folder: config.json picks the family through
 * the registry (keyed by model_type), the family reads its hyper-parameters
 * and binds its tensors (borrowed from the mmapped safetensors; shapes are
 * checked, so a wrong checkpoint is an error, not a crash). */
#ifndef MT_MODEL_H
#define MT_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "core/err.h"
#include "core/pool.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "tensor/linear.h"

enum { MT_ACT_SILU = 0, MT_ACT_GELU, MT_ACT_GELU_TANH, MT_ACT_RELU2 /* relu(x)^2, plain MLPs (nemotron) */ };
enum { MT_NORM_RMS = 0, MT_NORM_RMS_P1 /* weight 1 + w (gemma) */, MT_NORM_LAYER /* LayerNorm w, b */,
       MT_NORM_LAYER_P1 /* LayerNorm 1 + w, b (nemotron) */ };
/* Where the norms sit in a block:
 *   PRE      x += attn(n1(x)); x += mlp(n2(x))                 (llama; n1 input_layernorm, n2 post_attention_layernorm)
 *   SANDWICH x += n2(attn(n1(x))); x += n4(mlp(n3(x)))         (gemma2/3; + pre/post_feedforward_layernorm)
 *   POST     x += n2(attn(x)); x += n4(mlp(x))                 (olmo2) */
/*   PARALLEL x += attn(n1(x)) + mlp(n1(x))                    (phi, cohere, gptj: one norm, both branches)
 *   PARALLEL2 x += attn(n1(x)) + mlp(n2(x))                   (gpt_neox: a norm per branch) */
enum { MT_BLOCK_PRE = 0, MT_BLOCK_SANDWICH, MT_BLOCK_POST, MT_BLOCK_PARALLEL, MT_BLOCK_PARALLEL2 };
enum { MT_MLP_GATED = 0 /* gate_proj, up_proj, down_proj */, MT_MLP_GATED_FUSED /* gate_up_proj (phi3) */,
       MT_MLP_PLAIN /* c_fc, c_proj (starcoder2) */ };
enum { MT_MOE_SOFTMAX = 0, MT_MOE_SIGMOID, MT_MOE_SPARSEMIXER };   /* mt_decoder_hp.moe_score */
enum { MT_QKNORM_NONE = 0, MT_QKNORM_HEAD /* per head (qwen3, gemma3) */, MT_QKNORM_FULL /* whole projection (olmo2) */,
       MT_QKNORM_HEAD_EACH /* per head, each head its own weights [heads, head_dim] (cohere; stablelm binds its own) */ };

/* Hyper-parameters of a llama-like decoder; a family fills what differs. */
typedef struct mt_decoder_hp {
    int n_layers, hidden, n_heads, n_kv_heads, head_dim, inter, vocab;
    float norm_eps;
    int norm_type, block, mlp, qk_norm, act;
    float rope_theta;
    int rope_traditional;
    int rot_dims;           /* features rotated (<= head_dim) */
    int tie_embeddings;
    int fused_qkv;          /* self_attn.qkv_proj (phi3) */
    int attn_bias;          /* q/k/v projections have a bias (qwen2, starcoder2) */
    int o_bias, mlp_bias;   /* o_proj / MLP linears have biases */
    float attn_scale;       /* default head_dim^-0.5 */
    float embed_scale;      /* embeddings multiplied by this (gemma: sqrt(hidden)); 1 = none */
    float residual_scale;   /* branch outputs multiplied before the residual add (granite); 1 = none */
    float logits_div;       /* logits divided by this (granite logits_scaling); 1 = none */
    float attn_softcap;     /* tanh soft-capping of attention scores (gemma2); 0 = none */
    float final_softcap;    /* ... of the logits; 0 = none */
    int sliding_window;     /* window of the layers marked sliding; 0 = none */
    int bidirectional;      /* config use_bidirectional_attention (embedding models such as
                               EmbeddingGemma): the rows of one forward call on an unbounded cache
                               attend to every row of that call too (not only earlier ones), and
                               sliding layers to |i - j| < sliding_window / 2 + 1 (transformers'
                               bidirectional window); 0 (default) = causal */
    /* mixture of experts (layers with moe set): a router picks top_k of n_experts gated MLPs */
    int n_experts, top_k, moe_inter;
    int moe_softmax_first;  /* 1: softmax over all experts, then top-k (qwen3_moe); 0: top-k, then softmax (mixtral) */
    int moe_norm_topk;      /* with softmax_first: renormalize the top-k probabilities */
    /* the rest of the router (moe_fwd.c; every default 0 = mixtral / qwen3_moe as above):
     *   scores  s = softmax(logits) or sigmoid(logits) (MT_MOE_SIGMOID; implies softmax_first),
     *           or phimoe's sparsemixer (MT_MOE_SPARSEMIXER: per pick a softmax over the logits
     *           within 2 * moe_jitter (relative) of the best remaining one)
     *   select  the top_k of s + the layer's moe_sel_bias (when bound), after dropping all but the
     *           moe_topk_groups best of moe_groups equal groups of experts (a group's score: the
     *           sum of its two best); the weights are the unbiased s of the chosen
     *   renorm  (moe_norm_topk) w / max(sum(w) + moe_norm_add, moe_norm_min)
     *   scale   w * moe_scale (0 = 1)
     *   shared  + an always-on gated MLP of moe_shared_inter features (0 = none) at
     *           <prefix>.<moe_shared_name>, times sigmoid(<prefix>.<shared>_gate(x)) with
     *           moe_shared_gate (qwen2_moe)
     *   biases  moe_exp_bias: the stacked experts have biases [E, out] too */
    int moe_score;          /* MT_MOE_SOFTMAX, MT_MOE_SIGMOID, MT_MOE_SPARSEMIXER */
    float moe_jitter, moe_norm_add, moe_norm_min, moe_scale;
    int moe_groups, moe_topk_groups;
    int moe_shared_inter, moe_shared_gate, moe_exp_bias;
    /* rope_scaling "dynamic" (NTK): past dyn_max_pos positions the RoPE base grows with the
     * length the sequence has at the end of each forward call (global-RoPE layers only) */
    float dyn_factor;       /* 0 = off */
    int dyn_max_pos;
    int clip_residual;      /* gemma3_text: a float16 model's residual sums are clipped to +-65504
                               (mlx-lm's clip_residual; only the mlx numerics see it) */
    /* gated attention (qwen3_next, qwen3_5): q_proj gives each head [q | gate] (2 * head_dim rows);
     * the attention output is multiplied by sigmoid(gate) before o_proj (no mlx numerics: no_mlx) */
    int attn_out_gate;
    /* dense decoders (dense_a.c, dense_b.c) */
    int norm_nobias;        /* MT_NORM_LAYER without a bias (cohere layer_norm_bias false) */
    int lm_head_bias;       /* the output head has a bias (phi, gptj) */
    int qkv_grouped;        /* with fused_qkv: rows grouped per kv head, [its q heads, k, v] (internlm2; gpt_neox: 1 q each) */
    int tie_always;         /* with tie_embeddings: the embedding is the head even where lm_head.weight exists */
    int norm_noaffine;      /* norms without parameters (weight 1, no bias; olmo, nanochat): none is read */
    int mlp_up_first;       /* MT_MLP_GATED_FUSED rows [up | gate] instead of [gate | up] (olmo ff_proj) */
    /* hunyuan (moe.c): q/k norms applied after RoPE instead of before (float32 forward only:
     * a family that sets it sets no_mlx) */
    int qk_norm_late;
    int kv_share;           /* hunyuan's cross-layer attention: the k/v projections of each call are kept
                               for the next layer, which has none of its own when its kv_prev is set */
    /* dbrx (moe.c; float32 forward only, the family sets no_mlx) */
    float clip_qkv;         /* the fused q/k/v projection clipped to +-clip_qkv; 0 = none */
    int n_positions;        /* learned absolute position embeddings (mt_model.pos_embed) for this many
                               positions, added to the token embeddings (gpt2); 0 = none */
} mt_decoder_hp;

typedef struct mt_norm { float *w, *b; } mt_norm;   /* w == NULL: absent */

/* Tensor names: the decoder asks for llama's ("model.layers.N.self_attn.q_proj", ...); a family
 * whose checkpoint names them otherwise gives a rename table (mt_safetensors_set_renames). */

/* Mechanism files (MLA, state-space layers, gated DeltaNet, short convolutions, other MoE
 * routers...) plug into the shared decoder through these two hooks; struct mt_fwd (one
 * forward call's rows, caches and scratch) is in models/decoder_int.h.  forward reads the
 * branch input rows in[T, hidden] (after the block's pre-norm) and writes the branch output
 * out[T, hidden] (before the post-norm, residual scale and residual add); free releases
 * what the family bound into the layer's `mix` / `ffd`. */
struct mt_fwd;
typedef struct mt_mixer {   /* a token mixer in place of the built-in attention */
    const char *name;
    int  (*forward)(const struct mt_fwd *f, int layer, const float *in, float *out, mt_err *err);
    void (*free)(void *data);
} mt_mixer;
typedef mt_mixer mt_ffn;    /* an MLP in place of the built-in dense / MoE ones (same shape) */

typedef struct mt_layer {
    mt_norm n1, n2, n3, n4;        /* see MT_BLOCK_* */
    mt_norm q_norm, k_norm;
    mt_linear q, k, v, o, qkv, gate, up, down;  /* gate = gate_up (fused) or c_fc (plain) */
    int sliding;                   /* this layer uses the sliding window */
    int moe;                       /* MLP is a mixture of experts: router + experts[] */
    mt_linear router;              /* [n_experts, hidden] */
    mt_linear *exp_gate, *exp_up, *exp_down;   /* n_experts each, views into stacked tensors */
    mt_linear sh_gate, sh_up, sh_down, sh_sgate;  /* shared expert (sh_down.w NULL: none), its gate [1, hidden] */
    float *moe_sel_bias;           /* [n_experts] added to the scores for selection only, or NULL */
    int use_rope;
    const float *inv_freq;         /* this layer's RoPE frequencies [rot_dims/2] */
    float rope_in_scale;           /* q,k rotated features multiplied first (yarn/longrope mscale) */
    const mt_mixer *mixer;         /* set (by mt_model.bind_layer): runs instead of the attention */
    void *mix;                     /* its bound weights, freed by mixer->free */
    const mt_ffn *ffn;             /* set: runs instead of the MLP / MoE */
    void *ffd;                     /* its bound weights, freed by ffn->free */
    int no_mlp;                    /* the block has no MLP branch (a lone mixer, e.g. Mamba) */
    size_t state_floats;           /* recurrent state this layer keeps per sequence (a state-space,
                                      linear-attention or short-convolution mixer): floats of
                                      mt_kvcache.state[layer]; 0 = none (set at bind) */
    int kv_prev;                   /* hunyuan CLA (hp.kv_share): k and v are the previous layer's projections */
    /* sub-norms (bitnet): the attention output before o_proj, the gated MLP's hidden rows before
     * down_proj (w == NULL: none; the family binds them) */
    mt_norm o_in_norm, down_in_norm;
    /* attention sinks (gpt_oss) */
    float *sinks;                  /* [n_heads] learned logits joining each head's softmax denominator
                                      (owned; freed with the model); NULL = none */
    /* recurrent-state hybrids (ssm): */
    int mixer_parallel;            /* the mixer runs beside the built-in attention on the same input and
                                      adds its output to the attention's (falcon_h1) */
    /* baichuan_m1: */
    int mixer_kv;                  /* the mixer (with state) writes this layer's K/V rows too: the cache keeps them */
    /* KV sharing (gemma4, gemma3n): -1 (set by mt_decoder_bind) = the layer projects and caches its
     * own K/V; else the earlier layer whose cached K/V rows it attends over (the same sliding
     * window): it writes none, and its cache keeps none (mt_kvcache no_kv) */
    int kv_from;
    float out_scale;               /* the block's output (after every residual add and the per-layer
                                      input term) multiplied by this (gemma4 layer_scalar); 0 = none */
} mt_layer;

enum { MT_BOUND_ATTN = 1, MT_BOUND_MLP = 2, MT_BOUND_NORMS = 4 };
typedef struct mt_model {
    char model_type[64];
    mt_decoder_hp hp;
    float *inv_freq, *inv_freq_local;  /* [rot_dims/2]: global, and local (gemma3 sliding layers) */
    float rope_in_scale;
    mt_linear embed, lm_head;      /* lm_head == embed when tied */
    mt_norm final_norm;
    mt_layer *layers;
    mt_config *cfg;
    mt_safetensors *st;
    mt_pool *pool;                 /* borrowed */
    size_t max_in;                 /* widest linear input: scratch sizing */
    size_t attn_block_min;         /* rows of one sequence from which attention runs in blocks
                                      as matrix products (default 16; SIZE_MAX: row by row) */
    size_t ctx_len;                /* the longest prompt the model takes: max_position_embeddings,
                                      stretched by a linear / yarn rope_scaling factor (as vLLM
                                      derives max_model_len); 0 = none (no max_position_embeddings,
                                      or dynamic NTK scaling, which serves any length) */
    char ctx_why[96];              /* where ctx_len comes from, for messages */
    json_t *rope_scaling;          /* borrowed from cfg: the scaling object the RoPE tables are built
                                      from (config "rope_scaling", or "rope_parameters" per
                                      mt_decoder_rope_source); NULL = plain RoPE */
    const char *rope_scaling_key;  /* its key, for messages */
    /* set by a family before mt_decoder_bind: called for each layer (its L->use_rope, inv_freq
     * already set) before the built-in tensors are bound; it may bind the layer its own way and
     * sets *bound to the parts it took (MT_BOUND_* bits), which mt_decoder_bind then leaves
     * alone (MT_BOUND_ATTN: q/k/v/o and the q/k norms; MT_BOUND_MLP: the MLP or MoE;
     * MT_BOUND_NORMS: the block's norms n1..n4); returns an mt_err code */
    int (*bind_layer)(struct mt_model *m, int layer, int *bound, mt_err *err);
    /* set by MoE families before mt_decoder_bind: which layers are sparse, and their module prefix */
    int (*moe_layer)(const struct mt_model *m, int layer);
    const char *moe_prefix;        /* e.g. "mlp" or "block_sparse_moe" */
    const char *moe_router;        /* the router under the prefix (NULL: "gate"; "router.layer", "gate.wg") */
    const char *moe_shared_name;   /* the shared expert under the prefix (NULL: "shared_expert") */
    const char *moe_sel_bias_name; /* the selection bias under the prefix (NULL: none; "gate.expert_bias") */
    const char *embed_name;        /* the token embedding (NULL: "model.embed_tokens"; bailing_moe:
                                      "model.word_embeddings") */
    const char *head_name;         /* the untied output head (NULL: "lm_head"; llama4_text: "output") */
    const char *final_norm_name;   /* the final norm (NULL: "model.norm"; dbrx: "transformer.norm_f") */
    /* optional observer (calibration): called with the input rows x[T, in] of every
     * dense/quantized linear layer of the decoder blocks before it runs, named by its
     * module path ("model.layers.3.mlp.down_proj"; fused modules by their own name;
     * experts as "<prefix>.switch_mlp.<proj>.<e>"); not for the embedding or lm_head; not called
     * with mlx's numerics (mt_model_set_numerics) */
    void (*on_linear_input)(void *user, const char *path, const float *x, size_t T, size_t in);
    void *hook_user;
    /* arithmetic of the forward pass (mt_model_set_numerics) */
    int numerics;                  /* MT_NUMERICS_F32 (default) or MT_NUMERICS_MLX */
    mt_dtype act_dt;               /* the type mlx-lm computes this model in: the embedding's (its
                                      scales' when quantized) if F16/BF16, else F32; F32 too when
                                      the norm weights are float32 (mlx's type promotion) */
    float *mlx_inv_freq, *mlx_inv_freq_local;  /* MLX numerics: RoPE frequencies as mx.fast.rope derives
                                      them from a base (NULL: the layer's own table, 1/freqs) */
    float rope_pos_scale;          /* MLX numerics: positions times this (linear rope_scaling) */
    float rope_local_base;         /* gemma3_text: the sliding layers' RoPE base */
    int mrope[3];                  /* M-RoPE (qwen2_vl, qwen2_5_vl: rope_scaling "mrope_section"): how many
                                      of the rot_dims/2 frequencies, in order, take a row's t, h and w
                                      position (the rest take t); all 0 = plain RoPE.  The positions
                                      come from mt_embed_inject.pos3 (prompt rows) or the cache's
                                      pos_delta (later rows); see mt_dec_rope_pos */
    const char *no_mlx;            /* set by a family whose switches decoder_mlx.c does not implement: why
                                      (mt_model_set_numerics then refuses MT_NUMERICS_MLX for 16-bit
                                      models, naming it); NULL = the mlx numerics cover the family */
    int batch_invariant;           /* mt_model_decode_batch computes each sequence's row exactly as a
                                      batch of one would (mt_linear_forward_rows1, the attention's
                                      head grouping of one row): an answer never depends on the
                                      sequences decoding beside it, at about 1.4x the time of the
                                      shared multi-row kernels at 8 rows (set it directly; 0 default) */
    /* multi-head latent attention (models/mla.c): a KV cache whose slots are not n_kv_heads x
     * head_dim keys and values alike, but kv_heads x kv_head_dim keys and kv_v_dim values
     * (deepseek_v3: the normed latent as one key head, the RoPE key part as the values); 0 = none */
    int kv_heads, kv_head_dim;
    size_t kv_v_dim;
    mt_linear pos_embed;           /* [hp.n_positions, hidden] learned positions (bound with hp.n_positions) */
    mt_norm embed_norm;            /* set by the family: a norm of the embeddings (nanochat); w == NULL: none */
    struct mt_ple *ple;            /* per-layer input embeddings (models/ple.h; gemma4): the forward pass
                                      computes them after the embedding scale and adds each layer's gated
                                      term after its MLP residual; NULL = none (freed with the model) */
    int kv_padded;                 /* the layers' K/V rows differ in width (gemma4: sliding / full head
                                      dims, k_eq_v kv heads): hp.n_kv_heads x hp.head_dim is the widest,
                                      a narrower layer writes its heads repeated and zero-padded (its mixer) */
    /* recurrent-state families (ssm): */
    int own_cache;                 /* mlx-lm's model makes its own cache (make_cache), so mlx-lm ignores
                                      --max-kv-size for it: generation does too */
    const char *layers_name;       /* the decoder blocks' module list when not "model.layers" (calibration
                                      observer paths; nemotron_h: "backbone.layers") */
    const char *const *obs_map;    /* pairs {built-in name prefix, the family's}, NULL-terminated: what the
                                      observer reports as "mlp.gate_proj" is this family's module
                                      (lfm2: "feed_forward.w1"); NULL = the built-in names */
    /* a family with a forward pass of its own (gemma3n: several residual streams): it runs the
     * call's planned rows (f->work NULL: it sizes its own scratch) and writes the logits of rows
     * [f->first, T), or with hidden != NULL their final hidden states; fam is its data, freed
     * with fam_free */
    int (*forward)(const struct mt_fwd *f, float *logits, float *hidden, mt_err *err);
    void *fam;
    void (*fam_free)(void *fam);
    const char *no_kvfile;         /* set: prompt-cache files are refused for this model (why) */
} mt_model;

/* One sequence's cache: per layer K rows of n_kv_heads * head_dim (kv_dim) and V rows of
 * v_dim (the same, except for multi-head latent attention models) float32 values (or IEEE float16 after mt_kvcache_set_f16), one row per slot.  Unbounded (the default): slot = position.  Bounded by
 * mt_kvcache_set_max (--max-kv-size): mlx-lm's RotatingKVCache(max_size, keep),
 * whose buffer, rotation, trimming and attention masks are reproduced exactly,
 * so the same tokens come out.
 *
 * Quantized (mt_kvcache_set_quant, mlx-lm's QuantizedKVCache; or mt_kvcache_set_turbo):
 * the cache holds float rows until the end of the first forward call (mt_model_forward,
 * mt_model_forward_hidden, mt_model_decode_batch) after which len >= qstart; then every
 * row is quantized (quantized = 1, the float k/v arrays are freed) and every later row is
 * quantized as it is written.  Packed layout, per layer l, slot-major like the float rows
 * (slot = position; unbounded caches only):
 *   MT_KVQ_AFFINE  kq[l] / vq[l]: per slot, n_kv_heads rows of head_dim*qbits/32 uint32
 *                  words, each exactly as mx.quantize packs one row of head_dim values
 *                  (LSB-first bitstream, code i at stream bits [i*bits, (i+1)*bits));
 *                  ks/kb/vs/vb[l]: per slot, n_kv_heads * (head_dim/qgroup) float32 scales
 *                  and biases (mlx's scales/biases of the head's row, group by group).  When
 *                  f16 is set (mlx: keys of a 16-bit model, scales in float16) every scale
 *                  and bias is a float16 value held as float32 (exactly representable).
 *                  Slot s, head h of layer l: kq[l] + (s*n_kv_heads + h) * head_dim*qbits/32,
 *                  ks[l] + (s*n_kv_heads + h) * (head_dim/qgroup).
 *   MT_KVQ_TURBO   kq[l] / vq[l]: per slot, n_kv_heads rows of mt_kvcache_qwords(c) =
 *                  ceil(head_dim*qbits/32) words: the codebook indices of the rotated unit
 *                  row, packed as above (a bitstream; the last word zero-padded);
 *                  ks[l] / vs[l]: per slot, n_kv_heads float32 L2 norms of the rows;
 *                  kb / vb are NULL.  Decoding also needs tsign and tcb, which
 *                  mt_kvcache_set_turbo derives from (head_dim, qbits) alone (fixed seed).
 *                  Not an mlx format (mlx-lm cannot read it). */
enum { MT_KVQ_NONE = 0, MT_KVQ_AFFINE = 1, MT_KVQ_TURBO = 2 };
typedef struct mt_kvcache {
    int n_layers;
    size_t kv_dim;                 /* n_kv_heads * head_dim */
    int n_kv_heads, head_dim;
    size_t len;                    /* tokens seen (mlx "offset") */
    size_t cap;                    /* allocated slots */
    void **k, **v;                 /* [n_layers] rows of float32, or uint16_t float16 when f16 */
    int f16;
    /* rotating mode (max_size > 0) */
    size_t max_size, keep;
    size_t bufcap;                 /* mlx keys.shape[2] (slots in the buffer, some maybe unfilled) */
    size_t idx;                    /* mlx _idx: next slot to write */
    size_t *slot_pos;              /* [cap] position held by each slot */
    size_t mlx_rows;               /* unbounded: the rows mlx-lm's KVCache buffer would have after the
                                      same calls (step-256 growth); files store that many */
    long pos_delta;                /* M-RoPE's rope_delta: a row at cache position p with no entry in a
                                      prompt's position table is rotated as position p + pos_delta
                                      (set by a forward call with mt_embed_inject.pos3; 0 otherwise;
                                      copied by mt_kvcache_copy, cleared by mt_kvcache_reset) */
    /* quantization (see above) */
    int qbits, qgroup;             /* qgroup: affine only (0 for turbo) */
    size_t qstart;                 /* mlx-lm's quantized_kv_start */
    int qscheme;                   /* MT_KVQ_NONE, MT_KVQ_AFFINE, MT_KVQ_TURBO */
    int quantized;                 /* 1 once converted: rows live in kq/ks/kb/vq/vs/vb */
    uint32_t **kq, **vq;           /* [n_layers] packed rows, [cap] slots each */
    float **ks, **kb, **vs, **vb;  /* [n_layers] scales / biases (turbo: norms in ks, vs) */
    /* turbo: the rotation's signs [head_dim] (+-1) and the Lloyd-Max codebook
     * (2^qbits centroids, ascending) with its 2^qbits - 1 decision boundaries */
    float *tsign;
    float tcb[16], tbound[15];
    /* recurrent state beside the K/V rows (layers with state_floats): state[l] holds state_n[l]
     * float32 values (NULL / 0 for layers without), all zero for an empty sequence; the layer's
     * mixer updates it in place as tokens pass.  Kept by mt_kvcache_copy, zeroed by
     * mt_kvcache_reset; a cache with state cannot be trimmed (a recurrence cannot be rewound). */
    float **state;
    size_t *state_n;
    int has_state;
    /* multi-head latent attention: values per slot (v rows); kv_dim (keys) otherwise */
    size_t v_dim;
    /* recurrent-state hybrids (ssm): no_kv[l] set = layer l has no attention (its mixer replaces
     * it), so it keeps no K/V rows (k[l], v[l] and the packed arrays stay NULL); only in caches
     * with state (which files and conversions refuse); NULL = every layer keeps rows */
    unsigned char *no_kv;
    int padded;                    /* layers of different K/V widths (mt_model.kv_padded): rows are zero-padded
                                      to the widest, so no quantization and no prompt-cache files */
} mt_kvcache;

int  mt_model_load(mt_model **out, const char *dir, mt_pool *pool, mt_err *err);
/* The text decoder of a multimodal folder (mt_model_load_text). */
typedef struct mt_text_spec {
    const char *cfg_key;       /* config.json's object holding the text config ("text_config"); NULL: the
                                  top level less "vision_config" (mlx-vlm's qwen2_vl ModelConfig.from_dict) */
    const char *strip, *add;   /* tensor names: "model.X" asked for is add + X when strip is "model."
                                  (mt_safetensors_set_prefix) */
    const char *defaults;      /* JSON object: keys set when the text config lacks them (the reference's
                                  own defaults, e.g. {"model_type": "llama", "rope_theta": 1e6}), or NULL */
    int head_dim_from_hidden;  /* 1: head_dim = hidden_size / num_attention_heads whatever the config says */
    const char *force;         /* JSON object: keys set whatever the text config says (e.g. the decoder
                                  family's {"model_type": "qwen2"}), or NULL */
} mt_text_spec;
/* Its config is the cfg_key object with the defaults, the top level's quantization (per-module
 * keys renamed the same way) and eos_token_id. */
int  mt_model_load_text(mt_model **out, const char *dir, const mt_text_spec *spec, mt_pool *pool, mt_err *err);
/* For a family whose own config.json nests (or may nest) its text model (qwen3_5): from its init,
 * before anything else, replace m->cfg by the text config spec picks and read tensors through its
 * prefix, as mt_model_load_text does. */
int  mt_model_use_text(mt_model *m, const mt_text_spec *spec, mt_err *err);
void mt_model_free(mt_model *m);

/* The arithmetic of the forward pass.
 *   MT_NUMERICS_F32  (the default) every activation in float32 (more accurate than mlx-lm
 *                    for 16-bit models; the same as it for float32 models up to summation order)
 *   MT_NUMERICS_MLX  a 16-bit model (act_dt F16/BF16) computes as mlx-lm does on mlx's CPU
 *                    backend: activations rounded to the model's dtype after every op where mlx
 *                    rounds, mlx's accumulation types and orders, its exp/sin/cos/erf, logits of
 *                    the dtype (tensor/mlxnum.h, models/decoder_mlx.c).  For a float32 model it
 *                    changes nothing.
 * The KV cache keeps whatever type it was given (MLX numerics: float16 for float16 models; a
 * bfloat16 model's values are exact in a float32 cache).  Only while no forward pass runs. */
enum { MT_NUMERICS_F32 = 0, MT_NUMERICS_MLX = 1 };
/* "f32" -> MT_NUMERICS_F32, "mlx" -> MT_NUMERICS_MLX, else -1 */
int  mt_numerics_parse(const char *s);
int  mt_model_set_numerics(mt_model *m, int numerics, mt_err *err);
/* 1 when the forward pass runs with mlx's 16-bit numerics (MLX numerics on a 16-bit model) */
int  mt_model_mlx(const mt_model *m);
/* The type the logits' values have: act_dt with mlx's numerics, else F32 (a sampler rounds
 * its log-probabilities to it as mlx-lm's do). */
mt_dtype mt_model_logits_dtype(const mt_model *m);

int  mt_kvcache_new(mt_kvcache **out, const mt_model *m, mt_err *err);
/* The same from the geometry alone (a cache read from a file without its model). */
int  mt_kvcache_new_geom(mt_kvcache **out, int n_layers, int n_kv_heads, int head_dim, mt_err *err);
/* Value rows of v_dim values instead of kv_dim (multi-head latent attention caches); only on an
 * empty, unquantized cache. */
int  mt_kvcache_set_vdim(mt_kvcache *c, size_t v_dim, mt_err *err);
void mt_kvcache_reset(mt_kvcache *c);
/* Bound the cache to max_size slots, keeping the first `keep` tokens (mlx-lm
 * uses keep 4 for --max-kv-size).  Only on an empty cache; max_size > keep. */
int  mt_kvcache_set_max(mt_kvcache *c, size_t max_size, size_t keep, mt_err *err);
/* Store keys/values as float16 (on = 1; halves the cache's memory and the bytes
 * attention reads per token; values round to float16 as llama.cpp's default
 * f16 cache does) or float32 (on = 0, the default).  Only on an empty cache. */
int  mt_kvcache_set_f16(mt_kvcache *c, int on, mt_err *err);
/* 1 when the model's unquantized tensors are 16-bit (F16/BF16: mlx-lm then
 * computes and caches keys/values in 16 bits, so a float16 cache is the
 * default), 0 for float32 models (float32 cache).  With mlx's numerics: 1 for
 * float16 models only (a bfloat16 model's keys and values, already bfloat16
 * values, are exact in a float32 cache, not always in a float16 one). */
int  mt_model_kv_f16(const mt_model *m);
void mt_kvcache_free(mt_kvcache *c);
/* A deep copy of src (its mode, rows and bookkeeping): a snapshot to continue from. */
int  mt_kvcache_copy(mt_kvcache **out, const mt_kvcache *src, mt_err *err);
/* mlx-lm's trim: drop the last n tokens (at most len); returns how many were dropped.  A
 * rotating cache that has wrapped (len >= max_size), and a cache with recurrent state, are not
 * trimmable and return 0. */
int    mt_kvcache_trimmable(const mt_kvcache *c);
size_t mt_kvcache_trim(mt_kvcache *c, size_t n);
/* The slots that hold state (what mlx-lm's `state` returns): len for an unbounded cache,
 * min(len, buffer length) for a rotating one. */
size_t mt_kvcache_slots(const mt_kvcache *c);
/* Bytes of K/V state (2 * layers * slots * kv_dim * element size; quantized: the packed
 * words plus the scales and biases as mlx stores them, 2 bytes each when f16, else 4;
 * turbo: the words plus a 4-byte norm per head row). */
size_t mt_kvcache_bytes(const mt_kvcache *c);
/* Restoring a saved state: mt_kvcache_reserve makes room for n slots (contents undefined),
 * the caller writes the rows of slots [0, nslots) into k[l]/v[l] (quantized caches: into
 * kq/ks/kb/vq/vs/vb[l], see mt_kvcache_mark_quantized), then mt_kvcache_restore
 * sets offset (tokens seen) and, for a rotating cache (after mt_kvcache_set_max), the
 * buffer length nslots and next write slot idx (mlx's keys.shape[2] and _idx); the slot
 * positions follow from the ring.  An inconsistent state is MT_EFORMAT. */
int  mt_kvcache_reserve(mt_kvcache *c, size_t n, mt_err *err);
int  mt_kvcache_restore(mt_kvcache *c, size_t offset, size_t nslots, size_t idx, mt_err *err);
/* KV quantization as mlx-lm's generate_step(kv_bits=bits, kv_group_size=group,
 * quantized_kv_start=start): affine (MT_KVQ_AFFINE), bits 2, 3, 4, 5, 6 or 8, group 32,
 * 64 or 128 dividing head_dim.  Only on an empty, unbounded cache (mlx-lm's
 * RotatingKVCache cannot be quantized).  Attention then runs on the packed rows as
 * mlx-lm's quantized_scaled_dot_product_attention: scores (q*scale).deq(K) in float32,
 * softmax, p.deq(V). */
int  mt_kvcache_set_quant(mt_kvcache *c, int bits, int group, size_t start, mt_err *err);
/* The rotation + scalar scheme (MT_KVQ_TURBO), bits 3 or 4, from the first forward
 * call on (qstart 0): per token and kv head the row's L2 norm and the indices of its
 * unit vector, rotated by a randomized Hadamard transform (fixed signs; head_dim split
 * into descending power-of-two blocks), in a Lloyd-Max codebook for one coordinate of
 * a random unit vector in head_dim dimensions.  No QJL residual.  Only on an empty,
 * unbounded cache. */
int  mt_kvcache_set_turbo(mt_kvcache *c, int bits, mt_err *err);
/* For a reader of saved quantized state: after mt_kvcache_set_quant (or _set_turbo) on
 * an empty cache, store packed rows from now on (quantized = 1); then mt_kvcache_reserve
 * allocates kq/ks/kb/vq/vs/vb, the caller fills slots [0, n) and calls mt_kvcache_restore. */
int  mt_kvcache_mark_quantized(mt_kvcache *c, mt_err *err);
/* uint32 words of one packed head row (affine and turbo) */
size_t mt_kvcache_qwords(const mt_kvcache *c);

/* Rows that replace token embeddings in a prompt (a multimodal model's image features):
 * the k-th occurrence of token_id in the prompt gets rows[k * hidden .. (k + 1) * hidden),
 * before the family's embedding scale (gemma multiplies them too).  next counts the rows
 * used so far; each forward call advances it. */
typedef struct mt_embed_inject {
    int32_t token_id;
    const float *rows;   /* [n, hidden] */
    size_t n, next;
    /* M-RoPE (models with mt_model.mrope): the prompt's (t, h, w) positions, pos3[3 * p + 0..2] for
     * the row at cache position p < n_pos, as mlx-vlm's get_rope_index gives them; rows past the
     * table are at p + rope_delta (for every section), and every forward call with a table sets its
     * caches' pos_delta to rope_delta so the decode steps after it follow.  NULL = plain positions. */
    const int32_t *pos3;
    size_t n_pos;
    long rope_delta;
} mt_embed_inject;

/* Run T tokens at positions cache->len.. and append them to the cache.
 * logits: [T, vocab] when all_logits, else [vocab] for the last token only. */
int mt_model_forward(mt_model *m, mt_kvcache *cache, const int32_t *tokens, size_t T, float *logits,
                     int all_logits, mt_err *err);

/* mt_model_forward with inj (may be NULL) applied to the embeddings.  More occurrences of
 * inj->token_id than rows left is MT_EINVAL before anything runs. */
int mt_model_forward_inject(mt_model *m, mt_kvcache *cache, const int32_t *tokens, size_t T, float *logits,
                            int all_logits, mt_embed_inject *inj, mt_err *err);

/* As mt_model_forward, but writes the final hidden states (after the final
 * norm, before the output head) of all T tokens: hidden [T, hidden_size]
 * (decoder embedders: last-token or mean pooling on top). */
int mt_model_forward_hidden(mt_model *m, mt_kvcache *cache, const int32_t *tokens, size_t T, float *hidden,
                            mt_err *err);

/* One decoding step for B sequences at once: token tokens[b] is appended to
 * caches[b] (all distinct); logits [B, vocab].  The linear layers run as one
 * [B, hidden] product, attention per sequence. */
/* Speculative decoding's verifying pass: tok[0..T) after the cache's tokens, the logits of every
 * row (T * vocab).  With m->batch_invariant each row is computed exactly as a decode step of
 * that one token would compute it (bit for bit), so greedy speculation gives the plain loop's
 * tokens; otherwise as mt_model_forward with all logits (the multi-row kernels). */
int mt_model_verify(mt_model *m, mt_kvcache *c, const int32_t *tok, size_t T, float *logits, mt_err *err);
int mt_model_decode_batch(mt_model *m, mt_kvcache **caches, const int32_t *tokens, size_t B, float *logits,
                          mt_err *err);

/* ---- for family files ---- */
typedef int (*mt_family_init_fn)(mt_model *m, mt_err *err);
typedef struct mt_family {
    const char *model_type;
    mt_family_init_fn init;
    const char *summary;   /* what the family exercises, one line for --list-models (NULL: none) */
} mt_family;
const mt_family *mt_family_find(const char *model_type);
/* Up to n registered model_types closest to model_type (prefix or substring matches first, then
 * by edit distance), best first, into out[]; returns how many. */
size_t mt_family_nearest(const char *model_type, const char **out, size_t n);
size_t mt_family_count(void);
const mt_family *mt_family_at(size_t i);
/* Shared loader of the llama-like decoder.  read_hp reads the common
 * hyper-parameters and sets llama defaults; the family adjusts m->hp; bind
 * computes RoPE tables and binds tensors with the HF/MLX names
 * (model.layers.N.self_attn.q_proj, ...) that the hp choose, checking shapes.
 * After bind a family may still change per-layer fields (sliding, use_rope,
 * inv_freq). */
int mt_decoder_read_hp(mt_model *m, mt_err *err);
int mt_decoder_bind(mt_model *m, mt_err *err);
/* Where the family's mlx-lm model (0.32) takes the RoPE base (hp.rope_theta) and scaling
 * (m->rope_scaling) from; call after read_hp.  transformers >= 5 writes both under
 * "rope_parameters" instead of "rope_theta" / "rope_scaling", and mlx-lm reads that only
 * where its ModelArgs says so:
 *   MT_ROPE_TOP       top-level "rope_theta" (else def, mlx-lm's default for the family) and
 *                     "rope_scaling" only; "rope_parameters" is not read (read_hp does this
 *                     with def 10000, llama's default)
 *   MT_ROPE_REQUIRED  the same, but without "rope_theta" the config is refused, as mlx-lm's
 *                     ModelArgs (no default) refuses it (granite, qwen3_moe)
 *   MT_ROPE_PARAMS    qwen3: a non-empty "rope_parameters" fills what the top level lacks (the
 *                     base from its rope_theta; the scaling is the object itself, its rope_type
 *                     naming the kind); no base anywhere is refused */
enum { MT_ROPE_TOP = 0, MT_ROPE_REQUIRED, MT_ROPE_PARAMS };
int mt_decoder_rope_source(mt_model *m, int how, double def, mt_err *err);
/* Sliding-window layers as mlx-lm's llama model reads them (llama, mistral, smollm3): a layer
 * slides when "layer_types" marks it "sliding_attention", over "sliding_window" positions (a
 * bare sliding_window changes nothing).  After bind. */
int mt_decoder_layer_types(mt_model *m, mt_err *err);
/* granite's multipliers (granite, granitemoe, granitemoehybrid): embedding_multiplier,
 * residual_multiplier, attention_multiplier (the attention scale) and logits_scaling (a divisor,
 * not 0), each default 1, into hp.embed_scale / residual_scale / attn_scale / logits_div. */
int mt_granite_scales(mt_model *m, mt_err *err);
/* Bind layer i's MLP as a mixture of experts (moe_fwd.c): router `<prefix>.gate` (or
 * m->moe_router), the stacked expert weights `<prefix>.switch_mlp.{gate,up,down}_proj`
 * ([E, out, in], dense or MLX-quantized; with hp.moe_exp_bias their biases [E, out]), as
 * mlx-lm's SwitchGLU stores them, and what the hp's router options name (shared expert,
 * selection bias).  A router option the mlx numerics do not implement sets m->no_mlx. */
int mt_decoder_bind_moe(mt_model *m, int layer, const char *prefix, mt_err *err);
/* RoPE frequencies for `dims` rotated features as mlx_lm's initialize_rope
 * builds them from a rope_scaling object (NULL = default); *in_scale gets the
 * factor q and k are multiplied by first (1 when none). inv_freq[dims/2]. */
int mt_rope_freqs(float *inv_freq, float *in_scale, int dims, float base, json_t *rope_scaling,
                  double max_pos, double orig_max_pos, mt_err *err);
/* config.json accessors with type checks and messages naming the key. */
int mt_cfg_num(json_t *c, const char *key, double def, double *out, int required, mt_err *err);
int mt_cfg_int(json_t *c, const char *key, int def, int *out, int required, mt_err *err);
int mt_cfg_bool(json_t *c, const char *key, int def, int *out, mt_err *err);
/* Checked hyper-parameters (the default too), refused at load with a message naming
 * config.json and the key: mt_cfg_count an integer in [1, 1e9]; mt_cfg_real a number
 * within float range that is also >= 0 (MT_CFG_NONNEG: norm epsilons, soft-caps) or
 * > 0 (MT_CFG_POS: RoPE bases, position counts, scales). */
enum { MT_CFG_FINITE = 0, MT_CFG_NONNEG, MT_CFG_POS };
int mt_cfg_count(json_t *c, const char *key, int def, int *out, int required, mt_err *err);
int mt_cfg_real(json_t *c, const char *key, double def, double *out, int required, int kind, mt_err *err);
/* Refuse a config.json that holds a NaN (mt_config_nan_key), naming its key. */
int mt_cfg_check_nan(const mt_config *cfg, mt_err *err);

#endif
