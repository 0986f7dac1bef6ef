/* llava.c - LLaVA-1.5 (model_type "llava", the llava-hf layout): a CLIP tower of
 * vit.h, the two-layer GELU projector, a llama (or qwen2) text decoder.
 *
 * As mlx-vlm 0.7.10 runs it (models/llava/{llava,vision,language}.py):
 *   - tensors: vision_tower.vision_model.* (CLIP: embeddings.class_embedding, a patch conv
 *     without bias, a position table of patches + 1 rows, pre_layrnorm, encoder layers; the
 *     post_layernorm is never used), multi_modal_projector.linear_{1,2}.{weight,bias},
 *     language_model.{model.*, lm_head};
 *   - the tower: position ids 0..n, pre_layrnorm with LayerNorm's default eps 1e-5, encoder
 *     LayerNorms with the config's layer_norm_eps (default 1e-5), MLP with nn.GELU(approx="fast")
 *     = x * sigmoid(1.702 x) (CLIP's quick_gelu); vision_feature_layer (default -2) picks
 *     hidden_states[layer] (index 0 = the embeddings after pre_layrnorm), and "default"
 *     vision_feature_select_strategy drops the class token's row ("full" keeps it); a
 *     list-valued vision_feature_layer (concatenated layers) is refused here;
 *   - projector: linear_1 -> nn.GELU() (the exact erf form) -> linear_2;
 *   - the rows replace the <image> tokens' embeddings in order, unscaled; several images
 *     give their rows one after the other;
 *   - the text model: mlx-vlm's TextConfig defaults (hidden 4096, 32 layers and heads,
 *     intermediate 11008, rms_norm_eps 1e-6, vocab 32000, rope_theta 1e4, untied), head_dim
 *     = hidden_size / num_attention_heads, kv heads = heads when absent, linear rope scaling
 *     only; causal attention;
 *   - the prompt is tokenized with special tokens (the tokenizer's <s>).
 * ref: mlx_vlm/models/llava/llava.py (LlavaMultiModalProjector, get_input_embeddings) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/encoder.h"
#include "models/vit.h"
#include "models/vlm.h"
#include "tensor/linear.h"

typedef struct llava {
    mt_vit *vit;
    mt_linear l1, l2;   /* [H, D], [H, H] with biases */
    int keep_cls;
} llava;

static void llava_free(mt_vlm *v) {
    llava *s = v->state;
    if (!s) return;
    mt_vit_free(s->vit);
    free(s);
    v->state = NULL;
}

#define LLAVA_TEXT_DEFAULTS                                                                                         \
    "{\"model_type\": \"llama\", \"hidden_size\": 4096, \"num_hidden_layers\": 32, \"intermediate_size\": 11008, " \
    "\"num_attention_heads\": 32, \"rms_norm_eps\": 1e-6, \"vocab_size\": 32000, \"rope_theta\": 10000.0, "       \
    "\"max_position_embeddings\": 4096, \"tie_word_embeddings\": false}"

static int llava_init(mt_vlm *v, mt_err *err) {
    llava *s = calloc(1, sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    v->state = s;
    json_t *c = mt_config_json(v->cfg), *vc = json_object_get(c, "vision_config");
    int tok = 32000, layer = -2;
    MT_TRY(mt_cfg_count(c, "image_token_index", tok, &tok, 0, err));
    v->image_token_id = tok;
    v->add_special = 1;
    json_t *fl = json_object_get(c, "vision_feature_layer");
    if (fl && !json_is_null(fl) && !json_is_integer(fl))
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: \"vision_feature_layer\" must be one integer here "
                         "(a list of layers is not supported)");
    if (json_is_integer(fl)) layer = (int)json_integer_value(fl);
    const char *strat = "default";
    json_t *st = json_object_get(c, "vision_feature_select_strategy");
    if (json_is_string(st)) strat = json_string_value(st);
    if (strcmp(strat, "default") && strcmp(strat, "full"))
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: vision_feature_select_strategy \"%s\"", strat);
    const char *vt = json_is_object(vc) ? json_string_value(json_object_get(vc, "model_type")) : NULL;
    if (!vt) vt = "clip_vision_model";
    if (strcmp(vt, "clip_vision_model") && strcmp(vt, "siglip_vision_model"))
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: vision_config model_type \"%s\" (mlx-vlm's llava takes "
                         "clip_vision_model or siglip_vision_model)", vt);
    int clip = !strcmp(vt, "clip_vision_model");
    s->keep_cls = clip && !strcmp(strat, "full");
    /* mlx-vlm's llava VisionConfig defaults layer_norm_eps to 1e-5 (vit.c's own default is 1e-6) */
    json_t *vcd = json_is_object(vc) ? json_deep_copy(vc) : json_object();
    if (!json_object_get(vcd, "layer_norm_eps")) json_object_set_new(vcd, "layer_norm_eps", json_real(1e-5));
    static const char *const vdef[][2] = {{"num_hidden_layers", "24"}, {"hidden_size", "1024"},
                                          {"intermediate_size", "4096"}, {"num_attention_heads", "16"},
                                          {"image_size", "336"}, {"patch_size", "14"}};
    for (size_t i = 0; i < sizeof vdef / sizeof vdef[0]; i++)
        if (!json_object_get(vcd, vdef[i][0])) json_object_set_new(vcd, vdef[i][0], json_integer(atoi(vdef[i][1])));
    mt_vit_spec vs = {.prefix = "vision_tower.vision_model.", .act = MT_ENC_ACT_GELU_TANH, .post_eps = 1e-5f};
    mt_vit_opts vo = {.clip = clip, .pre_eps = 1e-5f, .keep_cls = s->keep_cls, .layer = layer, .plain_pos = 1,
                      .quick_gelu = 1};
    int rc = mt_vit_load_opts(&s->vit, vcd, v->cfg, v->st, &vs, &vo, v->pool, err);
    json_decref(vcd);
    MT_TRY(rc);
    json_t *tc = json_object_get(c, "text_config");
    const char *tmt = json_is_object(tc) ? json_string_value(json_object_get(tc, "model_type")) : NULL;
    if (tmt && strcmp(tmt, "llama") && strcmp(tmt, "qwen2"))
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: a llava text model of type \"%s\" (mlx-vlm's llava "
                         "takes llama or qwen2)", tmt);
    mt_text_spec ts = {.cfg_key = "text_config", .strip = "", .add = "language_model.", .defaults = LLAVA_TEXT_DEFAULTS,
                       .head_dim_from_hidden = 1};
    MT_TRY(mt_model_load_text(&v->lm, v->dir, &ts, v->pool, err));
    size_t D = (size_t)mt_vit_info_of(s->vit)->hidden, H = (size_t)v->lm->hp.hidden;
    MT_TRY(mt_linear_bind(&s->l1, v->st, v->cfg, "multi_modal_projector.linear_1", H, D, 1, err));
    return mt_linear_bind(&s->l2, v->st, v->cfg, "multi_modal_projector.linear_2", H, H, 1, err);
}

static size_t llava_rows(const mt_vlm *v, size_t n, int h, int w) {
    const llava *s = v->state;
    const mt_vit_info *vi = mt_vit_info_of(s->vit);
    if (h != vi->image_size || w != vi->image_size) return 0;
    return n * mt_vit_rows(s->vit, h, w);
}

static int llava_encode(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *rows, mt_err *err) {
    llava *s = v->state;
    const mt_vit_info *vi = mt_vit_info_of(s->vit);
    size_t nr = llava_rows(v, n, h, w);
    if (!nr)
        return mt_seterr(err, MT_EINVAL, "a %dx%d image is not the tower's %dx%d", w, h, vi->image_size, vi->image_size);
    size_t D = (size_t)vi->hidden, H = v->text_hidden, wmax = D > H ? D : H;
    float *hid = malloc(nr * D * sizeof *hid), *mid = malloc(nr * H * sizeof *mid);
    int nth = mt_pool_size(v->pool);
    float *work = malloc(((size_t)(nth > 0 ? nth : 1) * wmax + MT_LINEAR_WORK_SLACK) * sizeof *work);
    int rc = (!hid || !mid || !work) ? mt_seterr(err, MT_ENOMEM, "out of memory for %zu images", n) : MT_OK;
    if (!rc) rc = mt_vit_forward(s->vit, pixels, n, h, w, hid, err);
    if (!rc) {
        mt_linear_forward(&s->l1, hid, nr, mid, mt_linear_work_align(work), v->pool);
        for (size_t i = 0; i < nr * H; i++)   /* mlx's nn.GELU(): x * (1 + erf(x / sqrt(2))) / 2 */
            mid[i] = mid[i] * (1.0f + erff(mid[i] / 1.41421356237309504880f)) / 2.0f;
        mt_linear_forward(&s->l2, mid, nr, rows, mt_linear_work_align(work), v->pool);
    }
    free(hid);
    free(mid);
    free(work);
    return rc;
}

static int llava_tower(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *out, mt_err *err) {
    llava *s = v->state;
    return mt_vit_forward(s->vit, pixels, n, h, w, out, err);
}

const mt_vlm_family mt_vlm_family_llava = {"llava", "<image>", 0, llava_init, llava_encode, llava_tower, llava_rows,
                                           llava_free};
