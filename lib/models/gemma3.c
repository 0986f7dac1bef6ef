/* gemma3.c - Gemma 3 (model_type "gemma3"): the SigLIP tower of vit.h, the
 * average-pool + soft-embedding-norm projector, the gemma3_text decoder.
 *
 * As mlx-vlm 0.7.10 runs it (models/gemma3/{gemma3,vision,language}.py):
 *   - tensors: vision_tower.vision_model.*, multi_modal_projector.{mm_input_projection_weight
 *     [vision hidden, text hidden] (a bare matrix, x @ W, never quantized), mm_soft_emb_norm.weight},
 *     language_model.model.*; the output head is always the embedding (LanguageModel.sanitize
 *     overwrites language_model.lm_head.weight with embed_tokens whatever the folder holds);
 *   - the tower: position ids 0..n-1, MLP nn.GELU(approx="precise") = the tanh form,
 *     post_layernorm with LayerNorm's default eps 1e-5 (not the config's);
 *   - projector: the p x p patch grid (p = image_size / patch_size) average-pooled with
 *     kernel = stride = p / sqrt(text_config.mm_tokens_per_image) (mlx-vlm's TextConfig
 *     default 256; a top-level mm_tokens_per_image is not read), then RMSNorm with weight
 *     (1 + w) and the vision layer_norm_eps, then x @ W;
 *   - the rows are divided by sqrt(config.hidden_size), the TOP-LEVEL hidden_size with
 *     mlx-vlm's ModelConfig default 2048 when config.json has none (the real gemma-3 configs
 *     have none: the text hidden size is not used), float32 division; the decoder then
 *     multiplies every embedding by sqrt(text hidden) rounded to bfloat16 (gemma3_text's
 *     embed_scale), so an image row is f * bf16(sqrt(H)) / sqrt(hidden_size);
 *   - the text model: mlx-vlm's defaults (8 heads, 4 kv heads, head_dim 256, window 1024,
 *     sliding_window_pattern 6, vocab 262208, eps 1e-6, query_pre_attn_scalar 256), global
 *     RoPE base 1e6 (mlx-vlm reads rope_global_base_freq, which HF configs lack; rope_theta
 *     is the decoder's key, defaulted to 1e6 here), local base rope_local_base_freq;
 *     causal attention with sliding windows: the 4-D mask get_input_embeddings returns is
 *     never passed to the language model on the generate path (HF's bidirectional attention
 *     inside image blocks is NOT what mlx-vlm does).
 *   - the prompt: Gemma 3's chat template writes <bos>, and mlx-vlm tokenizes it with
 *     add_special_tokens=True too (should_add_special_tokens asks the processor for a chat
 *     template, and Gemma3Processor.from_pretrained never gives it one), so with a tokenizer
 *     that adds <bos> (the real ones do) the ids start <bos><bos>;
 * Not matched: text tokens equal to config.pad_token_id (default 0) get a zero embedding in
 * mlx-vlm; here they keep theirs (a prompt holds no <pad> unless written on purpose).
 * ref: mlx_vlm/models/gemma3/gemma3.py (Gemma3MultiModalProjector, prepare_inputs_for_multimodal) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/encoder.h"
#include "models/vit.h"
#include "models/vlm.h"
#include "tensor/linear.h"

typedef struct gemma3 {
    mt_vit *vit;
    const float *norm_w;   /* mm_soft_emb_norm.weight [D] */
    float *proj_t;         /* mm_input_projection_weight transposed: [text hidden, D] */
    mt_linear proj;        /* over proj_t */
    float norm_eps;
    float divisor;         /* sqrtf(config hidden_size) */
    int pps, tps, k;       /* patches per side, tokens per side, pool kernel */
} gemma3;

static void g3_free(mt_vlm *v) {
    gemma3 *s = v->state;
    if (!s) return;
    mt_vit_free(s->vit);
    free((void *)s->norm_w);
    free(s->proj_t);
    free(s);
    v->state = NULL;
}

static int read_vec(mt_vlm *v, const char *name, size_t n, float **out, mt_err *err) {
    const mt_tensor_view *t = mt_safetensors_get(v->st, name);
    if (!t) return mt_seterr(err, MT_ENOTFOUND, "tensor '%s' not found", name);
    if (mt_tensor_numel(t) != n)
        return mt_seterr(err, MT_EFORMAT, "tensor '%s' has %zu values, expected %zu", name, (size_t)mt_tensor_numel(t), n);
    float *p = malloc(n * sizeof *p);
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
    int rc = mt_safetensors_read_f32(v->st, name, p, n, 0, err);
    if (rc) { free(p); return rc; }
    *out = p;
    return MT_OK;
}

#define G3_TEXT_DEFAULTS                                                                                             \
    "{\"model_type\": \"gemma3_text\", \"num_attention_heads\": 8, \"num_key_value_heads\": 4, \"head_dim\": 256, " \
    "\"rms_norm_eps\": 1e-6, \"vocab_size\": 262208, \"rope_theta\": 1000000.0, \"rope_local_base_freq\": 10000.0, " \
    "\"query_pre_attn_scalar\": 256, \"sliding_window\": 1024, \"sliding_window_pattern\": 6, "                     \
    "\"max_position_embeddings\": 4096}"

static int g3_init(mt_vlm *v, mt_err *err) {
    gemma3 *s = calloc(1, sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    v->state = s;
    json_t *c = mt_config_json(v->cfg), *tc = json_object_get(c, "text_config");
    int tok = 262144, hs = 2048, mm = 256;
    MT_TRY(mt_cfg_count(c, "image_token_index", tok, &tok, 0, err));
    MT_TRY(mt_cfg_count(c, "hidden_size", hs, &hs, 0, err));
    if (json_is_object(tc)) MT_TRY(mt_cfg_count(tc, "mm_tokens_per_image", mm, &mm, 0, err));
    v->image_token_id = tok;
    v->add_special = 1;   /* mlx-vlm: the template's <bos> and the tokenizer's (see vlm.h) */
    s->divisor = sqrtf((float)hs);   /* python float hs**0.5, used as a float32 scalar */
    mt_vit_spec vs = {.prefix = "vision_tower.vision_model.", .act = MT_ENC_ACT_GELU_TANH, .post_eps = 1e-5f};
    mt_vit_opts vo = {.plain_pos = 1};   /* np.arange position ids, whatever the grid */
    MT_TRY(mt_vit_load_opts(&s->vit, json_object_get(c, "vision_config"), v->cfg, v->st, &vs, &vo, v->pool, err));
    const mt_vit_info *vi = mt_vit_info_of(s->vit);
    s->norm_eps = vi->eps;
    s->pps = vi->image_size / vi->patch;
    s->tps = (int)sqrt((double)mm);   /* int(mm ** 0.5) */
    if (s->tps < 1 || s->pps % s->tps)
        return mt_seterr(err, MT_EFORMAT, "config.json: %d tokens per image do not pool a %dx%d patch grid", mm,
                         s->pps, s->pps);
    s->k = s->pps / s->tps;
    mt_text_spec ts = {.cfg_key = "text_config", .strip = "model.", .add = "language_model.model.",
                       .defaults = G3_TEXT_DEFAULTS};
    MT_TRY(mt_model_load_text(&v->lm, v->dir, &ts, v->pool, err));
    size_t D = (size_t)vi->hidden, H = (size_t)v->lm->hp.hidden;
    float *w = NULL;
    MT_TRY(read_vec(v, "multi_modal_projector.mm_soft_emb_norm.weight", D, (float **)&s->norm_w, err));
    MT_TRY(read_vec(v, "multi_modal_projector.mm_input_projection_weight", D * H, &w, err));
    s->proj_t = malloc(D * H * sizeof *s->proj_t);
    if (!s->proj_t) { free(w); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
    for (size_t m = 0; m < D; m++)
        for (size_t d = 0; d < H; d++) s->proj_t[d * D + m] = w[m * H + d];
    free(w);
    s->proj.out = H;
    s->proj.in = D;
    s->proj.w = s->proj_t;
    s->proj.wdt = MT_F32;
    return MT_OK;
}

static size_t g3_rows(const mt_vlm *v, size_t n, int h, int w) {
    const gemma3 *s = v->state;
    const mt_vit_info *vi = mt_vit_info_of(s->vit);
    if (h != vi->image_size || w != vi->image_size) return 0;
    return n * (size_t)(s->tps * s->tps);
}

static int g3_encode(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *rows, mt_err *err) {
    gemma3 *s = v->state;
    const mt_vit_info *vi = mt_vit_info_of(s->vit);
    size_t nr = g3_rows(v, n, h, w);
    if (!nr)
        return mt_seterr(err, MT_EINVAL, "a %dx%d image is not the tower's %dx%d", w, h, vi->image_size, vi->image_size);
    size_t pps = (size_t)s->pps, tps = (size_t)s->tps, k = (size_t)s->k, np = pps * pps, D = (size_t)vi->hidden;
    size_t H = v->text_hidden;
    float *hid = malloc(n * np * D * sizeof *hid);
    float *pool = malloc(nr * D * sizeof *pool);
    int nth = mt_pool_size(v->pool);
    float *work = malloc(((size_t)(nth > 0 ? nth : 1) * D + MT_LINEAR_WORK_SLACK) * sizeof *work);
    int rc = (!hid || !pool || !work) ? mt_seterr(err, MT_ENOMEM, "out of memory for %zu images", n) : MT_OK;
    if (!rc) rc = mt_vit_forward(s->vit, pixels, n, h, w, hid, err);
    if (!rc) {
        /* AvgPool2d(k, k) over the pps x pps grid, then RMSNorm(1 + w) */
        float inv = 1.0f / (float)(k * k);
        for (size_t t = 0; t < n; t++)
            for (size_t i = 0; i < tps; i++)
                for (size_t j = 0; j < tps; j++) {
                    float *o = pool + ((t * tps + i) * tps + j) * D;
                    for (size_t d = 0; d < D; d++) o[d] = 0;
                    for (size_t dy = 0; dy < k; dy++)
                        for (size_t dx = 0; dx < k; dx++) {
                            const float *x = hid + (t * np + (i * k + dy) * pps + j * k + dx) * D;
                            for (size_t d = 0; d < D; d++) o[d] += x[d];
                        }
                    double ss = 0;
                    for (size_t d = 0; d < D; d++) {
                        o[d] *= inv;
                        ss += (double)o[d] * o[d];
                    }
                    float r = 1.0f / sqrtf((float)(ss / (double)D) + s->norm_eps);
                    for (size_t d = 0; d < D; d++) o[d] = o[d] * r * (1.0f + s->norm_w[d]);
                }
        mt_linear_forward(&s->proj, pool, nr, rows, mt_linear_work_align(work), v->pool);
        for (size_t i = 0; i < nr * H; i++) rows[i] /= s->divisor;
    }
    free(hid);
    free(pool);
    free(work);
    return rc;
}

static int g3_tower(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *out, mt_err *err) {
    gemma3 *s = v->state;
    return mt_vit_forward(s->vit, pixels, n, h, w, out, err);
}

const mt_vlm_family mt_vlm_family_gemma3 = {"gemma3", "<start_of_image>", 0, g3_init, g3_encode, g3_tower, g3_rows,
                                            g3_free};
