/* idefics3.c - Idefics3 / SmolVLM (model_type "idefics3", "smolvlm"): the
 * SigLIP tower of vit.h, the pixel-shuffle connector, a llama text decoder.
 *
 * As mlx-vlm 0.7 runs it:
 *   - tensors: vision_model.*, connector.modality_projection.proj.weight (no bias),
 *     language_model.{embed_tokens, layers.N.*, norm, lm_head} (no "model." level);
 *   - the tower's MLP uses nn.GELU(approx="precise"), which in mlx is the tanh
 *     approximation (not erf), its post_layernorm LayerNorm's default
 *     epsilon 1e-5 (not the config's), positions bucketed from the patch grid;
 *   - the text model: head_dim = hidden_size / num_attention_heads, rope_theta
 *     default 1e6, no rope scaling;
 *   - pixel shuffle with scale r over the s = n x n patch grid: output token
 *     (i, j) of the (n/r) x (n/r) grid is the concatenation over dy, then dx
 *     (0..r-1) of patch (i*r + dy, j*r + dx)'s hidden state; then the linear.
 * ref: mlx_vlm/models/idefics3/{idefics3,vision,language}.py */
#include <stdlib.h>
#include <string.h>

#include "models/encoder.h"
#include "models/vit.h"
#include "models/vlm.h"
#include "tensor/linear.h"

typedef struct idefics3 {
    mt_vit *vit;
    mt_linear proj;     /* [text hidden, D * r^2] */
    int r;              /* scale_factor */
} idefics3;

static void id3_free(mt_vlm *v) {
    idefics3 *s = v->state;
    if (!s) return;
    mt_vit_free(s->vit);
    free(s);
    v->state = NULL;
}

static int id3_init(mt_vlm *v, mt_err *err) {
    idefics3 *s = calloc(1, sizeof *s);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    v->state = s;
    json_t *c = mt_config_json(v->cfg);
    MT_TRY(mt_cfg_count(c, "scale_factor", 2, &s->r, 0, err));
    int tok = 49153;
    json_t *ti = json_object_get(c, "image_token_id");
    if (!json_is_integer(ti)) ti = json_object_get(c, "image_token_index");
    if (ti && !json_is_integer(ti)) return mt_seterr(err, MT_EFORMAT, "config.json: \"image_token_id\" must be an integer");
    if (ti) tok = (int)json_integer_value(ti);
    v->image_token_id = tok;
    mt_vit_spec vs = {"vision_model.", MT_ENC_ACT_GELU_TANH, 1e-5f};
    MT_TRY(mt_vit_load(&s->vit, json_object_get(c, "vision_config"), v->cfg, v->st, &vs, v->pool, err));
    const mt_vit_info *vi = mt_vit_info_of(s->vit);
    int nps = vi->image_size / vi->patch;
    if (nps % s->r)
        return mt_seterr(err, MT_EFORMAT, "config.json: scale_factor %d does not divide the %d patches per side", s->r, nps);
    mt_text_spec ts = {"text_config", "model.", "language_model.",
                       "{\"model_type\": \"llama\", \"rope_theta\": 1000000.0, \"tie_word_embeddings\": false}", 1, NULL};
    MT_TRY(mt_model_load_text(&v->lm, v->dir, &ts, v->pool, err));
    size_t in = (size_t)vi->hidden * (size_t)(s->r * s->r);
    return mt_linear_bind(&s->proj, v->st, v->cfg, "connector.modality_projection.proj", (size_t)v->lm->hp.hidden, in,
                          -1, err);
}

static size_t id3_rows(const mt_vlm *v, size_t n, int h, int w) {
    const idefics3 *s = v->state;
    const mt_vit_info *vi = mt_vit_info_of(s->vit);
    if (h != w || h % vi->patch) return 0;
    size_t side = (size_t)(h / vi->patch);
    if (side % (size_t)s->r) return 0;
    return n * (side / (size_t)s->r) * (side / (size_t)s->r);
}

static int id3_encode(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *rows, mt_err *err) {
    idefics3 *s = v->state;
    const mt_vit_info *vi = mt_vit_info_of(s->vit);
    size_t nr = id3_rows(v, n, h, w);
    if (!nr) return mt_seterr(err, MT_EINVAL, "a %dx%d image does not fit the connector (square, %d-pixel patches, "
                              "scale %d)", w, h, vi->patch, s->r);
    size_t side = (size_t)(h / vi->patch), np = side * side, D = (size_t)vi->hidden, r = (size_t)s->r;
    size_t so = side / r, K = D * r * r;
    float *hid = malloc(n * np * D * sizeof *hid);
    float *sh = malloc(nr * K * sizeof *sh);
    int nth = mt_pool_size(v->pool);
    float *work = malloc((size_t)(nth > 0 ? nth : 1) * K * sizeof *work + 64);
    int rc = (!hid || !sh || !work) ? mt_seterr(err, MT_ENOMEM, "out of memory for %zu image tiles", n) : MT_OK;
    if (!rc) rc = mt_vit_forward(s->vit, pixels, n, h, w, hid, err);
    if (!rc) {
        for (size_t t = 0; t < n; t++)
            for (size_t i = 0; i < so; i++)
                for (size_t j = 0; j < so; j++) {
                    float *o = sh + ((t * so + i) * so + j) * K;
                    for (size_t dy = 0; dy < r; dy++)
                        for (size_t dx = 0; dx < r; dx++)
                            memcpy(o + (dy * r + dx) * D, hid + (t * np + (i * r + dy) * side + j * r + dx) * D,
                                   D * sizeof *o);
                }
        mt_linear_forward(&s->proj, sh, nr, rows, mt_linear_work_align(work), v->pool);
    }
    free(hid);
    free(sh);
    free(work);
    return rc;
}

static int id3_tower(mt_vlm *v, const float *pixels, size_t n, int h, int w, float *out, mt_err *err) {
    idefics3 *s = v->state;
    return mt_vit_forward(s->vit, pixels, n, h, w, out, err);
}

const mt_vlm_family mt_vlm_family_idefics3 = {"idefics3", "<image>", 1, id3_init, id3_encode, id3_tower, id3_rows, id3_free};
const mt_vlm_family mt_vlm_family_smolvlm = {"smolvlm", "<image>", 1, id3_init, id3_encode, id3_tower, id3_rows, id3_free};
