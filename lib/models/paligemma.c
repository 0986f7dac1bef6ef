/* paligemma.c - PaliGemma (model_type "paligemma"): the SigLIP tower of vit.h, one
 * linear projector, a gemma text decoder that sees the whole prompt at once.
 *
 * As mlx-vlm 0.7.10 runs it (models/paligemma/{paligemma,vision,language}.py,
 * processing_paligemma.py, generate/ar.py):
 *   - tensors: vision_tower.vision_model.*, multi_modal_projector.linear.{weight,bias}
 *     [projection_dim, vision hidden], language_model.model.* (no lm_head: the embedding);
 *   - the tower: position ids 0..n-1, MLP nn.GELU(approx="precise") = the tanh form,
 *     post_layernorm with LayerNorm's default eps 1e-5;
 *   - rows = linear(tower) / sqrt(config.hidden_size) (the top-level key, mlx-vlm's default
 *     2048; the real configs set it to the text hidden size), float32 division; the decoder
 *     multiplies every embedding by sqrt(text hidden) in float32 (gemma's embed_scale);
 *   - the text model: mlx-vlm's own gemma (TextConfig defaults: hidden 2048, 18 layers, 16
 *     heads and kv heads, intermediate 8192, vocab 256000, eps 1e-6, rope_theta 1e4), head_dim
 *     = hidden_size / num_attention_heads, MLP activation from hidden_activation (else
 *     hidden_act, default gelu_pytorch_tanh): "gelu" is the erf GELU, the tanh names are
 *     nn.GELU(approx="precise") (the tanh form; mlx-lm's gemma, and so the registry's, always
 *     uses the erf one, so this family sets the activation after loading);
 *   - attention: use_bidirectional_attention defaults to true when the config has none (or
 *     null), and then the language model gets no mask at all and generate prefills the
 *     whole prompt in one call (chunked_prefill_policy): every prompt token, text included,
 *     sees every other (the decoder's bidirectional mode, and mt_generate's one-call prefill
 *     for it); with use_bidirectional_attention false it is causal;
 *   - the prompt: no chat template; "<image>" per image + the text, expanded to
 *     "<image>" x image_seq_length + <bos> + text + "\n", tokenized without adding <bos>
 *     (the processor sets add_bos_token False); mlx-vlm's vision tower keeps only the first
 *     image of a batch, so one image per record (vlm_job refuses more).
 * Refused: a text model other than gemma (PaliGemma 2's gemma2 runs other attention code in
 * mlx-vlm, not checked here).
 * Not matched: text tokens equal to config.pad_token_id (default 0) get a zero embedding
 * in mlx-vlm; here they keep theirs.
 * ref: mlx_vlm/models/paligemma/paligemma.py (PaliGemmaMultiModalProjector,
 *      _prepare_inputs_for_multimodal) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/encoder.h"
#include "models/vit.h"
#include "models/vlm.h"
#include "tensor/linear.h"

typedef struct paligemma {
    mt_vit *vit;
    mt_linear proj;    /* [projection_dim = text hidden, D] with bias */
    float divisor;     /* sqrtf(config hidden_size) */
} paligemma;

static void pg_free(mt_vlm *v) {
    paligemma *s = v->state;
    if (!s) return;
    mt_vit_free(s->vit);
    free(s);
    v->state = NULL;
}

#define PG_TEXT_DEFAULTS                                                                                            \
    "{\"model_type\": \"gemma\", \"hidden_size\": 2048, \"num_hidden_layers\": 18, \"intermediate_size\": 8192, " \
    "\"num_attention_heads\": 16, \"vocab_size\": 256000, \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0, "      \
    "\"max_position_embeddings\": 4096}"

static int pg_init(mt_vlm *v, mt_err *err) {
    paligemma *s = calloc(1, sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    v->state = s;
    json_t *c = mt_config_json(v->cfg), *tc = json_object_get(c, "text_config");
    int tok = 257152, hs = 2048;
    MT_TRY(mt_cfg_count(c, "image_token_index", tok, &tok, 0, err));
    MT_TRY(mt_cfg_count(c, "hidden_size", hs, &hs, 0, err));
    v->image_token_id = tok;
    v->add_special = 0;
    v->image_token_prompt = 1;
    s->divisor = sqrtf((float)hs);
    /* the text config as mlx-vlm's ModelConfig.from_dict completes it: its TextConfig defaults,
     * the top-level keys the text config lacks, use_bidirectional_attention true when unset
     * or null, num_key_value_heads = num_attention_heads when unset */
    json_t *t = json_is_object(tc) ? tc : NULL, *defs = json_loads(PG_TEXT_DEFAULTS, 0, NULL);
    if (!defs) return mt_seterr(err, MT_ENOMEM, "out of memory");
    static const char *const lift[] = {"hidden_size", "num_hidden_layers", "intermediate_size", "num_attention_heads",
                                       "num_key_value_heads", "vocab_size", "head_dim", "rms_norm_eps", "rope_theta",
                                       "max_position_embeddings", "hidden_activation"};
    for (size_t i = 0; i < sizeof lift / sizeof lift[0]; i++)
        if (json_object_get(c, lift[i])) json_object_set(defs, lift[i], json_object_get(c, lift[i]));
    const char *tmt = t ? json_string_value(json_object_get(t, "model_type")) : NULL;
    if (tmt && strcmp(tmt, "gemma")) {
        json_decref(defs);
        return mt_seterr(err, MT_EUNSUPPORTED, "config.json: a paligemma text model of type \"%s\" (PaliGemma 2's "
                         "gemma2 is not checked against mlx-vlm here; gemma is)", tmt);
    }
    json_t *heads = t ? json_object_get(t, "num_attention_heads") : NULL;
    if (!json_is_integer(heads)) heads = json_object_get(defs, "num_attention_heads");
    if (!json_object_get(defs, "num_key_value_heads")) json_object_set(defs, "num_key_value_heads", heads);
    json_object_set_new(defs, "use_bidirectional_attention", json_true());
    json_t *bd = t ? json_object_get(t, "use_bidirectional_attention") : NULL;
    json_t *kv = t ? json_object_get(t, "num_key_value_heads") : NULL;
    json_t *force = json_object();
    if (bd && json_is_null(bd)) json_object_set_new(force, "use_bidirectional_attention", json_true());
    if (kv && json_is_null(kv)) json_object_set(force, "num_key_value_heads", heads);
    const char *act = t ? json_string_value(json_object_get(t, "hidden_activation")) : NULL;
    if (!act && t) act = json_string_value(json_object_get(t, "hidden_act"));
    if (!act) act = json_string_value(json_object_get(defs, "hidden_activation"));
    if (!act) act = "gelu_pytorch_tanh";
    int tanh_act = !strcmp(act, "gelu_pytorch_tanh") || !strcmp(act, "gelu_new") || !strcmp(act, "gelu_fast") ||
                   !strcmp(act, "tanh");
    char *ds = json_dumps(defs, JSON_COMPACT), *fs = json_dumps(force, JSON_COMPACT);
    json_decref(defs);
    json_decref(force);
    int rc = !ds || !fs ? mt_seterr(err, MT_ENOMEM, "out of memory") : MT_OK;
    if (!rc && !tanh_act && strcmp(act, "gelu"))
        rc = mt_seterr(err, MT_EUNSUPPORTED, "config.json: hidden activation \"%s\" (mlx-vlm's paligemma takes gelu "
                       "or the tanh forms)", act);
    mt_vit_spec vs = {.prefix = "vision_tower.vision_model.", .act = MT_ENC_ACT_GELU_TANH, .post_eps = 1e-5f};
    mt_vit_opts vo = {.plain_pos = 1};
    if (!rc) rc = mt_vit_load_opts(&s->vit, json_object_get(c, "vision_config"), v->cfg, v->st, &vs, &vo, v->pool, err);
    mt_text_spec ts = {.cfg_key = "text_config", .strip = "", .add = "language_model.", .defaults = ds,
                       .head_dim_from_hidden = 1, .force = fs};
    if (!rc) rc = mt_model_load_text(&v->lm, v->dir, &ts, v->pool, err);
    free(ds);
    free(fs);
    MT_TRY(rc);
    v->lm->hp.act = tanh_act ? MT_ACT_GELU_TANH : MT_ACT_GELU;
    size_t D = (size_t)mt_vit_info_of(s->vit)->hidden, H = (size_t)v->lm->hp.hidden;
    return mt_linear_bind(&s->proj, v->st, v->cfg, "multi_modal_projector.linear", H, D, 1, err);
}

static size_t pg_rows(const mt_vlm *v, size_t n, int h, int w) {
    const paligemma *s = v->state;
    const mt_vit_info *vi = mt_vit_info_of(s->vit);
    if (h != vi->image_size || w != vi->image_size) return 0;
    return n * mt_vit_rows(s->vit, h, w);
}

static int pg_encode(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *rows, mt_err *err) {
    paligemma *s = v->state;
    const mt_vit_info *vi = mt_vit_info_of(s->vit);
    size_t nr = pg_rows(v, n, h, w);
    if (!nr)
        return mt_seterr(err, MT_EINVAL, "a %dx%d image is not the tower's %dx%d", w, h, vi->image_size, vi->image_size);
    size_t D = (size_t)vi->hidden, H = v->text_hidden;
    float *hid = malloc(nr * D * sizeof *hid);
    int nth = mt_pool_size(v->pool);
    float *work = malloc(((size_t)(nth > 0 ? nth : 1) * D + MT_LINEAR_WORK_SLACK) * sizeof *work);
    int rc = (!hid || !work) ? mt_seterr(err, MT_ENOMEM, "out of memory for %zu images", n) : MT_OK;
    if (!rc) rc = mt_vit_forward(s->vit, pixels, n, h, w, hid, err);
    if (!rc) {
        mt_linear_forward(&s->proj, hid, nr, rows, mt_linear_work_align(work), v->pool);
        for (size_t i = 0; i < nr * H; i++) rows[i] /= s->divisor;
    }
    free(hid);
    free(work);
    return rc;
}

static int pg_tower(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *out, mt_err *err) {
    paligemma *s = v->state;
    return mt_vit_forward(s->vit, pixels, n, h, w, out, err);
}

const mt_vlm_family mt_vlm_family_paligemma = {"paligemma", "<image>", 1, pg_init, pg_encode, pg_tower, pg_rows,
                                               pg_free};
