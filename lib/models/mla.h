/* mla.h - multi-head latent attention (MLA) and the DeepSeek-style mixture of experts as
 * mechanisms of the shared decoder (models/ only; the families are in deepseek.c).
 *
 * MLA (mla.c), an mt_mixer: q from q_proj, or q_a_proj -> q_a_layernorm -> q_b_proj, split per
 * head into a "nope" part and a RoPE part; kv_a_proj_with_mqa gives the latent (normed by
 * kv_a_layernorm) and one shared RoPE key head.  Two forms, as mlx-lm runs them:
 *   absorbed (deepseek_v3, kimi_k2): the cache holds the normed latent (kv_lora_rank) as the
 *     key row and the rotated RoPE key (qk_rope_head_dim) as the value row, one head; a head's
 *     query is taken into the latent space by embed_q, scores are scale * (q_lat.c + q_pe.k_pe),
 *     the output is the latent mix taken out by unembed_out (stacked per-head matrices, plain or
 *     quantized: mla.py's MultiLinear), then o_proj.
 *   expanded (deepseek_v2): kv_b_proj expands the latent into per-head keys [nope | k_pe] and
 *     values (v_head_dim), which the cache holds (keys and values of different widths).
 * DeepSeek MoE (moe_ds.c), an mt_ffn: router scores by sigmoid (+ e_score_correction_bias for the
 * choice) or softmax, group-limited top-k, optional renormalization, routed_scaling_factor,
 * experts stacked as switch_mlp (dots1: experts), plus shared experts (a dense gated MLP). */
#ifndef MT_MLA_H
#define MT_MLA_H

#include "models/model.h"

typedef struct mt_mla_hp {
    int q_lora;        /* q_lora_rank; 0 = a plain q_proj */
    int kv_lora, nope, rope, vhd;
    int expanded;      /* 1: deepseek_v2's kv_b_proj form; 0: the absorbed form */
    float scale;       /* softmax scale: (nope + rope)^-0.5, times yarn's mscale(mscale_all_dim)^2 */
    int attn_bias;     /* q_a_proj, kv_a_proj_with_mqa and o_proj have biases */
    float norm_eps;    /* q_a_layernorm, kv_a_layernorm (mlx-lm fixes it: 1e-6; minicpm3 1e-5) */
    float l4_beta;     /* mistral4: queries times 1 + beta * log(1 + floor(pos / l4_orig)); 0 = none */
    float l4_orig;
} mt_mla_hp;

/* Read the MLA keys of config.json (after mt_decoder_read_hp and the family's rope source): sets
 * m->hp.head_dim (nope + rope), rot_dims (rope), traditional RoPE, and the cache geometry
 * m->kv_heads / kv_head_dim / kv_v_dim.  flags: MT_MLA_EXPANDED (deepseek_v2's form),
 * MT_MLA_MINICPM3 (with it: v_head_dim = hidden / heads, norms' epsilon 1e-5, the softmax scale
 * without yarn's mscale, RoPE not traditional; the family sets the RoPE tables itself),
 * MT_MLA_MISTRAL4 (mscale only for a yarn-type scaling, rope_interleave, the llama-4 query scale
 * from m->rope_scaling = rope_parameters). */
enum { MT_MLA_EXPANDED = 1, MT_MLA_MINICPM3 = 2, MT_MLA_MISTRAL4 = 4 };
int mt_mla_read_hp(mt_model *m, mt_mla_hp *h, int flags, mt_err *err);
/* Bind layer `layer`'s self_attn as MLA (sets L->mixer / L->mix); raises m->max_in. */
int mt_mla_bind(mt_model *m, int layer, const mt_mla_hp *h, mt_err *err);
/* Raise m->max_in to MLA's widest linear input (after mt_decoder_bind, which sets it). */
void mt_mla_max_in(mt_model *m, const mt_mla_hp *h);

enum { MT_DSMOE_SIGMOID = 0, MT_DSMOE_SOFTMAX = 1 };
typedef struct mt_dsmoe_hp {
    int n_experts, top_k, inter, n_shared;   /* n_shared 0: no shared experts */
    int n_group, topk_group;
    int scoring;        /* MT_DSMOE_* */
    int group_max;      /* groups ranked by their best score (deepseek_v2); else by the sum of the best two */
    int norm_topk;      /* renormalize the chosen weights (when top_k > 1) */
    int has_bias;       /* gate.e_score_correction_bias */
    float routed_scale;
    const char *experts;   /* the stacked experts' module under mlp: "switch_mlp" (dots1: "experts") */
    int w_unmasked;        /* softmax: weights from the scores before the group mask (mistral4) */
    int norm_any;          /* renormalize even one expert, over sum + 1e-20 (mistral4) */
} mt_dsmoe_hp;

/* Read the router keys (n_routed_experts, num_experts_per_tok, moe_intermediate_size, n_shared_experts,
 * n_group, topk_group, norm_topk_prob (default norm_def), routed_scaling_factor) into h, checked. */
int mt_dsmoe_read_hp(mt_model *m, mt_dsmoe_hp *h, int norm_def, mt_err *err);
/* Bind layer `layer`'s `mlp` as the DeepSeek MoE (sets L->ffn / L->ffd). */
int mt_dsmoe_bind(mt_model *m, int layer, const mt_dsmoe_hp *h, mt_err *err);

#endif
