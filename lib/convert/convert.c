/* convert.c - mlx_lm.convert in C: plan (which tensors, which dtype, which
 * modules quantized with which parameters), then write shards, config.json,
 * the index, tokenizer files and a model card into a temporary folder that is
 * renamed to the destination at the end. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "convert/convert.h"

#include <ctype.h>
#include <dirent.h>
#include <fnmatch.h>
#include <pcre2.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "convert/calib.h"
#include "core/file.h"
#include "core/pool.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "io/st_write.h"
#include "tensor/quant.h"

/* ---------------- module tree order ---------------- */

/* Leaf modules of one decoder layer in mlx_lm's definition order. */
static const char *const layer_order[] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.qkv_proj", "self_attn.o_proj",
    "self_attn.q_norm", "self_attn.k_norm", "mlp.gate_up_proj", "mlp.gate_proj", "mlp.down_proj", "mlp.up_proj",
    "mlp.c_fc", "mlp.c_proj", "input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
    "post_feedforward_layernorm", NULL};
/* gemma2 defines its norms in another order. */
static const char *const layer_order_gemma2[] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
    "mlp.down_proj", "mlp.up_proj", "input_layernorm", "pre_feedforward_layernorm",
    "post_feedforward_layernorm", "post_attention_layernorm", NULL};

static const char *const layer_order_mixtral[] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "block_sparse_moe.gate",
    "block_sparse_moe.switch_mlp.gate_proj", "block_sparse_moe.switch_mlp.up_proj",
    "block_sparse_moe.switch_mlp.down_proj", "input_layernorm", "post_attention_layernorm", NULL};
static const char *const layer_order_qwen3_moe[] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "self_attn.q_norm",
    "self_attn.k_norm", "input_layernorm", "post_attention_layernorm", "mlp.gate", "mlp.switch_mlp.gate_proj",
    "mlp.switch_mlp.up_proj", "mlp.switch_mlp.down_proj", "mlp.gate_proj", "mlp.down_proj", "mlp.up_proj", NULL};

/* helium defines its MLP's projections gate, up, down */
static const char *const layer_order_helium[] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
    "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm", NULL};
/* phi, cohere (cohere2: without the q/k norms), internlm2, minicpm, olmo (ai2 layout) */
static const char *const layer_order_phi[] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.dense", "input_layernorm", "mlp.fc1",
    "mlp.fc2", NULL};
static const char *const layer_order_cohere[] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "self_attn.q_norm",
    "self_attn.k_norm", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm", NULL};
static const char *const layer_order_internlm2[] = {
    "attention.wqkv", "attention.wo", "feed_forward.w1", "feed_forward.w2", "feed_forward.w3", "attention_norm",
    "ffn_norm", NULL};
static const char *const layer_order_olmo[] = {"ff_proj", "ff_out", "att_norm", "ff_norm", "att_proj", "attn_out", NULL};
/* exaone: GPT-style names */
static const char *const layer_order_exaone[] = {
    "ln_1", "attn.attention.q_proj", "attn.attention.k_proj", "attn.attention.v_proj", "attn.attention.out_proj",
    "ln_2", "mlp.c_fc_0", "mlp.c_fc_1", "mlp.c_proj", NULL};
/* glm4: its four norms */
static const char *const layer_order_glm4[] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_up_proj",
    "mlp.down_proj", "input_layernorm", "post_attention_layernorm", "post_self_attn_layernorm",
    "post_mlp_layernorm", NULL};

/* gemma4_text (and gemma4's language_model): its modules, then the layer's own parameters
 * (entries naming a parameter, "router.scale", match the whole path when no module does) */
static const char *const layer_order_gemma4[] = {
    "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "self_attn.q_norm",
    "self_attn.k_norm", "mlp.gate_proj", "mlp.down_proj", "mlp.up_proj", "input_layernorm",
    "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm", "router.proj",
    "router.scale", "router.per_expert_scale", "experts.switch_glu.gate_proj", "experts.switch_glu.up_proj",
    "experts.switch_glu.down_proj", "post_feedforward_layernorm_1", "post_feedforward_layernorm_2",
    "pre_feedforward_layernorm_2", "per_layer_input_gate", "per_layer_projection", "post_per_layer_input_norm",
    "layer_scalar", NULL};

static const char *const *layer_table(const char *model_type) {
    if (!model_type) return layer_order;
    if (!strcmp(model_type, "gemma4_text") || !strcmp(model_type, "gemma4")) return layer_order_gemma4;
    if (!strcmp(model_type, "helium")) return layer_order_helium;
    if (!strcmp(model_type, "glm4")) return layer_order_glm4;
    if (!strcmp(model_type, "exaone")) return layer_order_exaone;
    if (!strcmp(model_type, "phi")) return layer_order_phi;
    if (!strcmp(model_type, "cohere") || !strcmp(model_type, "cohere2")) return layer_order_cohere;
    if (!strcmp(model_type, "internlm2")) return layer_order_internlm2;
    if (!strcmp(model_type, "minicpm")) return layer_order_helium;   /* gate, up, down too */
    if (!strcmp(model_type, "olmo")) return layer_order_olmo;
    if (!strcmp(model_type, "gemma2")) return layer_order_gemma2;
    if (!strcmp(model_type, "mixtral")) return layer_order_mixtral;
    if (!strcmp(model_type, "qwen3_moe")) return layer_order_qwen3_moe;
    return layer_order;
}

/* The top-level modules: embedding, the blocks' prefix, final norm, head (head_first: defined
 * before the final norm), where a family names them otherwise than llama. */
typedef struct top_names { const char *mt, *emb, *lay, *fin, *head; int head_first; } top_names;
static const top_names tops[] = {
    {NULL, "model.embed_tokens", "model.layers.", "model.norm", "lm_head", 0},
    {"exaone", "transformer.wte", "transformer.h.", "transformer.ln_f", "lm_head", 0},
    {"phi", "model.embed_tokens", "model.layers.", "model.final_layernorm", "lm_head", 0},
    {"internlm2", "model.tok_embeddings", "model.layers.", "model.norm", "output", 0},
    {"olmo", "model.transformer.wte", "model.transformer.blocks.", "model.transformer.norm", "model.transformer.ff_out", 1},
    {"gemma4", "language_model.model.embed_tokens", "language_model.model.layers.", "language_model.model.norm",
     "language_model.lm_head", 0},
};
static const top_names *tops_of(const char *model_type) {
    for (size_t i = 1; model_type && i < sizeof tops / sizeof *tops; i++)
        if (!strcmp(tops[i].mt, model_type)) return &tops[i];
    return &tops[0];
}

typedef struct name_key {
    int top;            /* 0 embed, 1 layers, 2 norm, 3 lm_head, 4 other */
    long layer;
    int leaf;           /* index in the layer table, 1000 = unknown */
    const char *rest;   /* module path for unknown parts */
    size_t rest_len;
    int param;          /* weight, scales, biases, bias, other */
    const char *pname;
} name_key;

static void name_key_of(const char *name, const char *model_type, name_key *k) {
    memset(k, 0, sizeof *k);
    const char *dot = strrchr(name, '.');
    const char *mod_end = dot ? dot : name + strlen(name);
    k->pname = dot ? dot + 1 : name;
    static const char *const params[] = {"weight", "scales", "biases", "bias"};
    k->param = 4;
    for (int i = 0; i < 4; i++)
        if (!strcmp(k->pname, params[i])) k->param = i;
    k->rest = name;
    k->rest_len = (size_t)(mod_end - name);
    k->leaf = 1000;
    size_t ml = k->rest_len;
    const top_names *tn = tops_of(model_type);
    const char *emb = tn->emb, *lay = tn->lay, *fin = tn->fin, *head = tn->head;
    size_t ll0 = strlen(lay);
    if (ml == strlen(emb) && !strncmp(name, emb, ml)) {
        k->top = 0;
    } else if (!strncmp(name, lay, ll0) && isdigit((unsigned char)name[ll0])) {
        k->top = 1;
        char *e;
        k->layer = strtol(name + ll0, &e, 10);
        if (*e == '.' && e < mod_end) {
            const char *leaf = e + 1;
            size_t ll = (size_t)(mod_end - leaf);
            const char *const *tab = layer_table(model_type);
            for (int i = 0; tab[i]; i++)
                if (strlen(tab[i]) == ll && !strncmp(tab[i], leaf, ll)) k->leaf = i;
            k->rest = leaf;
            k->rest_len = ll;
        }
        if (k->leaf == 1000 && *e == '.') {   /* a parameter the table names by its whole path */
            const char *const *tab = layer_table(model_type);
            for (int i = 0; tab[i]; i++)
                if (!strcmp(tab[i], e + 1)) k->leaf = i;
        }
    } else if (ml == strlen(fin) && !strncmp(name, fin, ml)) {
        k->top = tn->head_first ? 3 : 2;
    } else if (ml == strlen(head) && !strncmp(name, head, ml)) {
        k->top = tn->head_first ? 2 : 3;
    } else {
        k->top = 4;
    }
}

int mt_convert_name_cmp(const char *a, const char *b, const char *model_type) {
    name_key x, y;
    name_key_of(a, model_type, &x);
    name_key_of(b, model_type, &y);
    if (x.top != y.top) return x.top < y.top ? -1 : 1;
    if (x.layer != y.layer) return x.layer < y.layer ? -1 : 1;
    if (x.leaf != y.leaf) return x.leaf < y.leaf ? -1 : 1;
    size_t m = x.rest_len < y.rest_len ? x.rest_len : y.rest_len;
    int c = strncmp(x.rest, y.rest, m);
    if (c) return c;
    if (x.rest_len != y.rest_len) return x.rest_len < y.rest_len ? -1 : 1;
    if (x.param != y.param) return x.param < y.param ? -1 : 1;
    return strcmp(x.pname, y.pname);
}

/* ---------------- plan ---------------- */

enum { K_COPY, K_QW, K_QS, K_QB, K_DEQ };

typedef struct out_t {
    char *name;
    mt_st_entry e;
    int kind;
    const mt_tensor_view *src;      /* source tensor (weight for K_Q*, packed weight for K_DEQ) */
    const mt_tensor_view *sscales, *sbiases;   /* K_DEQ */
    int bits, gs;
    size_t rows, K;                 /* K = unpacked last-axis length */
    int mod;                        /* module index (K_Q*) */
    int mode;                       /* K_DEQ: mt_qmode of the source layer */
} out_t;

typedef struct module_q {
    char *path;
    int bits, gs;
    int mode;                       /* mt_qmode: the fp modes have one-byte scales, no biases */
    mt_dtype sdt;                   /* scales/biases dtype */
    /* cached scales+biases until written */
    void *scales, *biases;
    int pending;                    /* of scales/biases not yet written */
} module_q;

/* An MoE expert stack built from per-expert source tensors (mlx_lm sanitize:
 * experts.E.<proj>.weight -> switch_mlp.<proj>.weight, mx.stack over E). */
typedef struct vstack {
    mt_tensor_view v;               /* data = NULL until materialized */
    char *name;
    const mt_tensor_view **parts;
    size_t nparts;
} vstack;

typedef struct cv {
    const mt_convert_opts *o;
    mt_safetensors *st;
    mt_config *cfg;
    const char *model_type;
    mt_dtype target;                /* cast target; MT_DTYPE_COUNT = keep */
    out_t *out;
    size_t nout, capout;
    module_q *mods;
    size_t nmods, capmods;
    mt_pool *pool;                  /* NULL = calling thread only */
    vstack *vs;
    size_t nvs;
    mt_calib *calib;                /* --calibrate statistics, NULL = plain */
} cv;

static int push_out(cv *c, out_t *t, mt_err *err) {
    if (c->nout == c->capout) {
        size_t cap = c->capout ? c->capout * 2 : 256;
        out_t *q = realloc(c->out, cap * sizeof *q);
        if (!q) return mt_seterr(err, MT_ENOMEM, "out of memory");
        c->out = q, c->capout = cap;
    }
    t->e.name = t->name;
    c->out[c->nout++] = *t;
    return MT_OK;
}

static int push_mod(cv *c, const char *path, int bits, int gs, int mode, mt_dtype sdt, mt_err *err) {
    if (c->nmods == c->capmods) {
        size_t cap = c->capmods ? c->capmods * 2 : 64;
        module_q *q = realloc(c->mods, cap * sizeof *q);
        if (!q) return mt_seterr(err, MT_ENOMEM, "out of memory");
        c->mods = q, c->capmods = cap;
    }
    module_q *m = &c->mods[c->nmods++];
    memset(m, 0, sizeof *m);
    m->path = strdup(path);
    m->bits = bits, m->gs = gs, m->sdt = sdt, m->mode = mode;
    return m->path ? MT_OK : mt_seterr(err, MT_ENOMEM, "out of memory");
}

static size_t numel_of(const mt_tensor_view *t) { return mt_tensor_numel(t); }

static int parse_dtype_name(const char *s, mt_dtype *out) {
    if (!s) return 0;
    if (!strcmp(s, "float16")) *out = MT_F16;
    else if (!strcmp(s, "bfloat16")) *out = MT_BF16;
    else if (!strcmp(s, "float32")) *out = MT_F32;
    else return 0;
    return 1;
}

/* Names dropped by the families' sanitize(). */
static int dropped(const cv *c, const char *name, int tie) {
    if (strstr(name, "self_attn.rotary_emb.inv_freq")) return 1;
    if (tie && !strcmp(name, "lm_head.weight") && c->model_type) {
        static const char *const fams[] = {"llama",   "mistral", "qwen2",   "qwen3",
                                           "granite", "smollm3", "mixtral", "qwen3_moe", NULL};
        for (int i = 0; fams[i]; i++)
            if (!strcmp(c->model_type, fams[i])) return 1;
    }
    return 0;
}

/* mlx_lm.convert's mixed_quant_predicate_builder state. */
typedef struct recipe {
    int low, high;
    int layer_location, num_layers;
} recipe;

static int recipe_init(recipe *r, const char *name, const char *const *names, size_t n, mt_err *err) {
    r->high = 6;
    if (!strcmp(name, "mixed_2_6")) r->low = 2;
    else if (!strcmp(name, "mixed_3_4")) r->low = 3, r->high = 4;
    else if (!strcmp(name, "mixed_3_6")) r->low = 3;
    else if (!strcmp(name, "mixed_4_6")) r->low = 4;
    else return mt_seterr(err, MT_EINVAL, "invalid quant recipe '%s' (mixed_2_6, mixed_3_4, mixed_3_6, mixed_4_6)", name);
    const char *down = NULL;
    long maxl = -1;
    for (size_t i = 0; i < n; i++) {
        if (!down && strstr(names[i], "down_proj")) down = names[i];
        if (!strncmp(names[i], "model.layers.", 13) && isdigit((unsigned char)names[i][13])) {
            long l = strtol(names[i] + 13, NULL, 10);
            if (l > maxl) maxl = l;
        }
    }
    if (!down) return mt_seterr(err, MT_EINVAL, "model does not have expected keys for mixed quant (no down_proj)");
    int loc = 0, last = 0;
    const char *p = down;
    for (int idx = 0;; idx++) {
        const char *e = strchr(p, '.');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int digits = len > 0;
        for (size_t i = 0; i < len; i++)
            if (!isdigit((unsigned char)p[i])) digits = 0;
        last = idx;
        if (digits) {
            loc = idx;
            break;
        }
        if (!e) {
            loc = last;
            break;
        }
        p = e + 1;
    }
    r->layer_location = loc;
    r->num_layers = (int)(maxl + 1);
    return MT_OK;
}

static int recipe_bits(const recipe *r, const char *path) {
    /* index = int(path.split(".")[layer_location]) if there are enough parts, else 0 */
    long index = 0;
    const char *p = path;
    int idx = 0;
    for (;;) {
        const char *e = strchr(p, '.');
        if (idx == r->layer_location) {
            index = strtol(p, NULL, 10);
            break;
        }
        if (!e) break;
        p = e + 1, idx++;
    }
    long nl = r->num_layers;
    long d = index - nl / 8;
    long mod3 = ((d % 3) + 3) % 3;
    int more = index < nl / 8 || index >= 7 * nl / 8 || mod3 == 2;
    if ((strstr(path, "v_proj") || strstr(path, "v_a_proj") || strstr(path, "v_b_proj")) && more) return r->high;
    if (strstr(path, "down_proj") && more) return r->high;
    if (strstr(path, "lm_head")) return r->high;
    return r->low;
}

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* The models' own quant_predicate (used when no recipe is given): these
 * modules get {"group_size": 64, "bits": 8}. */
static int model_predicate_8bit(const char *model_type, const char *path) {
    if (!model_type) return 0;
    if (!strcmp(model_type, "granite"))
        return has_suffix(path, "self_attn.o_proj") || has_suffix(path, "mlp.down_proj") || !strcmp(path, "lm_head");
    if (!strcmp(model_type, "qwen3_moe")) return has_suffix(path, "mlp.gate");
    if (!strcmp(model_type, "jamba")) return has_suffix(path, "feed_forward.router");
    if (!strcmp(model_type, "granitemoehybrid")) return has_suffix(path, "router.layer");   /* MoE variant */
    if (!strcmp(model_type, "lfm2_moe")) return has_suffix(path, "feed_forward.gate");
    if (!strcmp(model_type, "gemma4_text") || !strcmp(model_type, "gemma4")) return has_suffix(path, "router.proj");
    return 0;
}

/* Weights of modules mlx-lm cannot quantize (plain parameters, not a Linear): the DeepSeek-style
 * routers (MoEGate, dots1's TopkRouter) keep their float weight. */
static int plain_param(const char *model_type, const char *path) {
    static const char *const ds[] = {"deepseek", "deepseek_v2", "deepseek_v3", "kimi_k2", "glm4_moe", "dots1"};
    if (!model_type) return 0;
    for (size_t i = 0; i < sizeof ds / sizeof *ds; i++)
        if (!strcmp(model_type, ds[i])) return has_suffix(path, "mlp.gate");
    return 0;
}

/* A `.weight` matrix that is no linear layer in the family's mlx-lm model (mlx-lm quantizes
 * modules with to_quantized only): nemotron_h's router weight, a plain parameter. */
static int not_linear(const char *model_type, const char *path) {
    return model_type && !strcmp(model_type, "nemotron_h") && has_suffix(path, "mixer.gate");
}

typedef struct sort_ctx {
    const char *model_type;
} sort_ctx;

static int cmp_out(const void *a, const void *b, void *ctx) {
    const sort_ctx *s = ctx;
    return mt_convert_name_cmp(((const out_t *)a)->name, ((const out_t *)b)->name, s->model_type);
}

/* Parse "model.layers.L.<mid>.experts.E.<proj>.weight"; fills the target
 * name "model.layers.L.<mid>.switch_mlp.<proj'>.weight" and E. */
static int expert_name(const char *n, char *target, size_t tn, long *e) {
    const char *x = strstr(n, ".experts.");
    if (strncmp(n, "model.layers.", 13) || !x || !has_suffix(n, ".weight")) return 0;
    const char *d = x + 9;
    char *end;
    *e = strtol(d, &end, 10);
    if (end == d || *end != '.') return 0;
    const char *proj = end + 1;
    size_t pl = strlen(proj) - 7;
    static const char *const map[][2] = {{"w1", "gate_proj"}, {"w2", "down_proj"}, {"w3", "up_proj"},
                                         {"gate_proj", "gate_proj"}, {"down_proj", "down_proj"},
                                         {"up_proj", "up_proj"}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strlen(map[i][0]) == pl && !strncmp(proj, map[i][0], pl)) {
            snprintf(target, tn, "%.*s.switch_mlp.%s.weight", (int)(x - n), n, map[i][1]);
            return 1;
        }
    return 0;
}

/* Group expert tensors into stacks.  Returns the number of source names
 * consumed (flagged in used[]). */
static int find_stacks(cv *c, const char **names, size_t nn, char *used, mt_err *err) {
    char tgt[1024], t2[1024];
    long e;
    for (size_t i = 0; i < nn; i++) {
        if (used[i] || !expert_name(names[i], tgt, sizeof tgt, &e) || e != 0) continue;
        /* collect experts 0..E-1 of this target */
        size_t cnt = 0;
        for (size_t j = 0; j < nn; j++)
            if (expert_name(names[j], t2, sizeof t2, &e) && !strcmp(t2, tgt)) cnt++;
        vstack *nv = realloc(c->vs, (c->nvs + 1) * sizeof *nv);
        if (!nv) return mt_seterr(err, MT_ENOMEM, "out of memory");
        c->vs = nv;
        vstack *v = &c->vs[c->nvs];
        memset(v, 0, sizeof *v);
        v->parts = calloc(cnt, sizeof *v->parts);
        v->name = strdup(tgt);
        if (!v->parts || !v->name) {
            free(v->parts), free(v->name);
            return mt_seterr(err, MT_ENOMEM, "out of memory");
        }
        c->nvs++;
        v->nparts = cnt;
        for (size_t j = 0; j < nn; j++)
            if (expert_name(names[j], t2, sizeof t2, &e) && !strcmp(t2, tgt)) {
                if (e < 0 || (size_t)e >= cnt || v->parts[e])
                    return mt_seterr(err, MT_EFORMAT, "%s: experts are not numbered 0..%zu", tgt, cnt - 1);
                v->parts[e] = mt_safetensors_get(c->st, names[j]);
                used[j] = 1;
            }
        const mt_tensor_view *p0 = v->parts[0];
        if (p0->ndim + 1 > MT_ST_MAX_NDIM) return mt_seterr(err, MT_EFORMAT, "%s: rank too high", tgt);
        for (size_t k = 1; k < cnt; k++)
            if (v->parts[k]->dtype != p0->dtype || v->parts[k]->nbytes != p0->nbytes)
                return mt_seterr(err, MT_EFORMAT, "%s: experts differ in dtype or shape", tgt);
        v->v.name = v->name;
        v->v.dtype = p0->dtype;
        v->v.ndim = p0->ndim + 1;
        v->v.shape[0] = (int64_t)cnt;
        for (int d = 0; d < p0->ndim; d++) v->v.shape[d + 1] = p0->shape[d];
        v->v.nbytes = p0->nbytes * cnt;
        v->v.data = NULL;
    }
    return MT_OK;
}

static const mt_tensor_view *src_get(const cv *c, const char *name) {
    for (size_t i = 0; i < c->nvs; i++)
        if (!strcmp(c->vs[i].name, name)) return &c->vs[i].v;
    return mt_safetensors_get(c->st, name);
}

static int cmp_names(const void *a, const void *b, void *ctx) {
    const sort_ctx *s = ctx;
    return mt_convert_name_cmp(*(const char *const *)a, *(const char *const *)b, s->model_type);
}

static int build_plan(cv *c, json_t *qblock, mt_err *err) {
    const mt_convert_opts *o = c->o;
    size_t n = mt_safetensors_count(c->st);
    int tie = 0;
    MT_TRY(mt_config_get_bool(c->cfg, "tie_word_embeddings",
                              c->model_type && (!strcmp(c->model_type, "phi3") || !strcmp(c->model_type, "mixtral") ||
                                                !strcmp(c->model_type, "qwen3_moe"))
                                  ? 0
                                  : 1,
                              &tie, err));
    /* source names after sanitize, in module order */
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names) return mt_seterr(err, MT_ENOMEM, "out of memory");
    size_t nn = 0;
    for (size_t i = 0; i < n; i++) {
        const char *nm = mt_safetensors_at(c->st, i)->name;
        if (!dropped(c, nm, tie)) names[nn++] = nm;
    }
    {   /* MoE experts -> stacked switch_mlp tensors */
        char *used = calloc(nn ? nn : 1, 1);
        if (!used) {
            free(names);
            return mt_seterr(err, MT_ENOMEM, "out of memory");
        }
        int rs = find_stacks(c, names, nn, used, err);
        size_t k = 0;
        for (size_t i = 0; i < nn; i++)
            if (!used[i]) names[k++] = names[i];
        nn = k;
        free(used);
        if (rs) {
            free(names);
            return rs;
        }
        if (c->nvs) {
            const char **nn2 = realloc(names, (nn + c->nvs) * sizeof *names);
            if (!nn2) {
                free(names);
                return mt_seterr(err, MT_ENOMEM, "out of memory");
            }
            names = nn2;
            for (size_t i = 0; i < c->nvs; i++) names[nn++] = c->vs[i].name;
        }
    }
    {   /* visit modules in mlx_lm's tree order, so config entries come out in its order */
        sort_ctx sc = {c->model_type};
        qsort_r(names, nn, sizeof *names, cmp_names, &sc);
    }
    int gs_top = o->group_size ? o->group_size : mt_qmode_default_group_size(o->mode);
    int bits_top = o->bits ? o->bits : mt_qmode_default_bits(o->mode);
    recipe rc = {0};
    int rc_on = 0, status = MT_OK;
    pcre2_code *skip = NULL;
    pcre2_match_data *md = NULL;
    if (o->quantize && o->recipe) {
        status = recipe_init(&rc, o->recipe, names, nn, err);
        if (status) goto done;
        rc_on = 1;
    }
    if (o->quantize && o->skip_regex) {
        int ec;
        PCRE2_SIZE eo;
        skip = pcre2_compile((PCRE2_SPTR)o->skip_regex, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
        if (!skip) {
            status = mt_seterr(err, MT_EINVAL, "--skip: bad regular expression at offset %zu", (size_t)eo);
            goto done;
        }
        md = pcre2_match_data_create_from_pattern(skip, NULL);
        if (!md) {
            status = mt_seterr(err, MT_ENOMEM, "out of memory");
            goto done;
        }
    }
    for (size_t i = 0; i < nn && !status; i++) {
        const mt_tensor_view *t = src_get(c, names[i]);
        const char *nm = t->name;
        char path[1024];
        out_t ot;
        memset(&ot, 0, sizeof ot);
        ot.src = t;
        ot.mod = -1;
        size_t plen = strlen(nm);
        int is_weight = has_suffix(nm, ".weight");
        if (is_weight) plen -= 7;
        if (plen >= sizeof path) {
            status = mt_seterr(err, MT_EINVAL, "tensor name too long");
            break;
        }
        memcpy(path, nm, plen);
        path[plen] = 0;
        mt_dtype dt = t->dtype;
        if (c->target != MT_DTYPE_COUNT && mt_dtype_is_float(dt) && dt != MT_F64) dt = c->target;
        else if (c->target != MT_DTYPE_COUNT && dt == MT_F64) dt = c->target;

        /* source already quantized? */
        int srcq = 0;
        if (is_weight) {
            char sn[1100];
            snprintf(sn, sizeof sn, "%s.scales", path);
            srcq = mt_safetensors_get(c->st, sn) != NULL;
        }
        if (srcq && !o->dequantize) {
            status = mt_seterr(err, MT_EUNSUPPORTED, "%s is already quantized (use dequantize first)", path);
            break;
        }
        if (o->dequantize && (has_suffix(nm, ".scales") || has_suffix(nm, ".biases"))) {
            char wn[1100];
            size_t l = strlen(nm) - 7;
            snprintf(wn, sizeof wn, "%.*s.weight", (int)l, nm);
            if (mt_safetensors_get(c->st, wn)) continue;   /* consumed by K_DEQ */
        }
        if (o->dequantize && srcq) {
            char sn[1100];
            int quantized = 0;
            mt_quant_params qp;
            status = mt_config_quant_for(c->cfg, c->st, path, &quantized, &qp, err);
            if (status) break;
            if (!quantized) {
                status = mt_seterr(err, MT_EFORMAT, "%s: packed, but config.json does not quantize it", path);
                break;
            }
            int fp = qp.mode != MT_QMODE_AFFINE;   /* fp modes: one-byte scales, no biases */
            snprintf(sn, sizeof sn, "%s.scales", path);
            ot.sscales = mt_safetensors_get(c->st, sn);
            snprintf(sn, sizeof sn, "%s.biases", path);
            ot.sbiases = mt_safetensors_get(c->st, sn);
            if ((!fp && !ot.sbiases) || (fp && ot.sbiases) || t->dtype != MT_U32 || t->ndim < 2 ||
                (fp ? mt_dtype_size(ot.sscales->dtype) != 1 : !mt_dtype_is_float(ot.sscales->dtype))) {
                status = mt_seterr(err, MT_EFORMAT, "%s: malformed quantized layer", path);
                break;
            }
            ot.mode = qp.mode;
            ot.kind = K_DEQ;
            ot.bits = qp.bits, ot.gs = qp.group_size;
            ot.K = (size_t)t->shape[t->ndim - 1] * 32 / (size_t)qp.bits;
            ot.rows = numel_of(t) / (size_t)t->shape[t->ndim - 1];
            if ((size_t)ot.sscales->shape[ot.sscales->ndim - 1] * (size_t)qp.group_size != ot.K ||
                mt_tensor_numel(ot.sscales) != ot.rows * ot.K / (size_t)qp.group_size ||
                (!fp && mt_tensor_numel(ot.sbiases) != mt_tensor_numel(ot.sscales))) {
                status = mt_seterr(err, MT_EFORMAT, "%s: scales do not match bits %d group %d", path, qp.bits,
                                   qp.group_size);
                break;
            }
            /* mx.dequantize's type: the scales' (affine; a cast first casts them), bfloat16 for the
             * fp modes (their uint8 scales are not cast) */
            mt_dtype sdt = fp ? MT_BF16 : c->target != MT_DTYPE_COUNT ? c->target : ot.sscales->dtype;
            ot.name = strdup(nm);
            ot.e.dtype = sdt;
            ot.e.ndim = t->ndim;
            for (int d = 0; d < t->ndim; d++) ot.e.shape[d] = t->shape[d];
            ot.e.shape[t->ndim - 1] = (int64_t)ot.K;
            ot.e.nbytes = ot.rows * ot.K * mt_dtype_size(sdt);
            status = ot.name ? push_out(c, &ot, err) : mt_seterr(err, MT_ENOMEM, "out of memory");
            continue;
        }

        /* quantize this module? */
        int q = 0, bits = bits_top, gs = gs_top, mode = o->mode;
        json_t *entry = NULL;
        if (o->quantize && is_weight && t->ndim >= 2 && mt_dtype_is_float(t->dtype) &&
            t->shape[t->ndim - 1] % gs_top == 0 && !plain_param(c->model_type, path) &&
            !not_linear(c->model_type, path)) {
            q = 1;
            if (rc_on) {
                bits = recipe_bits(&rc, path);
                gs = gs_top;
                entry = json_object();
                json_object_set_new(entry, "group_size", o->group_size ? json_integer(o->group_size) : json_null());
                json_object_set_new(entry, "bits", json_integer(bits));
                json_object_set_new(entry, "mode", json_string("affine"));
            } else if (model_predicate_8bit(c->model_type, path)) {
                bits = 8, gs = 64, mode = MT_QMODE_AFFINE;   /* the dict has no mode: affine */
                entry = json_object();
                json_object_set_new(entry, "group_size", json_integer(64));
                json_object_set_new(entry, "bits", json_integer(8));
            }
            if (skip && pcre2_match(skip, (PCRE2_SPTR)path, PCRE2_ZERO_TERMINATED, 0, 0, md, NULL) >= 0) {
                q = 0;
                json_decref(entry);
                entry = NULL;
            }
            if (q && t->shape[t->ndim - 1] % gs != 0) {
                json_decref(entry);
                status = mt_seterr(err, MT_EINVAL, "%s: last axis %lld is not a multiple of group size %d", path,
                                   (long long)t->shape[t->ndim - 1], gs);
                break;
            }
        }
        if (!q) {
            ot.kind = K_COPY;
            ot.name = strdup(nm);
            ot.e.dtype = dt;
            ot.e.ndim = t->ndim;
            for (int d = 0; d < t->ndim; d++) ot.e.shape[d] = t->shape[d];
            ot.e.nbytes = numel_of(t) * mt_dtype_size(dt);
            status = ot.name ? push_out(c, &ot, err) : mt_seterr(err, MT_ENOMEM, "out of memory");
            continue;
        }
        if (entry) json_object_set_new(qblock, path, entry);
        status = push_mod(c, path, bits, gs, mode, dt, err);
        if (status) break;
        size_t K = (size_t)t->shape[t->ndim - 1];
        size_t rows = numel_of(t) / K;
        static const char *const sfx[3] = {"weight", "scales", "biases"};
        int nparts = mode == MT_QMODE_AFFINE ? 3 : 2;   /* the fp modes: no biases */
        for (int j = 0; j < nparts && !status; j++) {
            out_t qt;
            memset(&qt, 0, sizeof qt);
            qt.kind = K_QW + j;
            qt.src = t;
            qt.bits = bits, qt.gs = gs;
            qt.rows = rows, qt.K = K;
            qt.mod = (int)c->nmods - 1;
            size_t l = strlen(path) + 10;
            qt.name = malloc(l);
            if (!qt.name) {
                status = mt_seterr(err, MT_ENOMEM, "out of memory");
                break;
            }
            snprintf(qt.name, l, "%s.%s", path, sfx[j]);
            qt.e.ndim = t->ndim;
            for (int d = 0; d < t->ndim; d++) qt.e.shape[d] = t->shape[d];
            if (j == 0) {
                qt.e.dtype = MT_U32;
                qt.e.shape[t->ndim - 1] = (int64_t)(K * (size_t)bits / 32);
                qt.e.nbytes = rows * mt_quant_row_words(K, bits) * 4;
            } else {
                qt.e.dtype = mode == MT_QMODE_AFFINE ? dt : MT_U8;
                qt.e.shape[t->ndim - 1] = (int64_t)(K / (size_t)gs);
                qt.e.nbytes = rows * (K / (size_t)gs) * mt_dtype_size(qt.e.dtype);
            }
            status = push_out(c, &qt, err);
        }
    }
    if (!status) {
        sort_ctx sc = {c->model_type};
        qsort_r(c->out, c->nout, sizeof *c->out, cmp_out, &sc);
    }
done:
    if (md) pcre2_match_data_free(md);
    if (skip) pcre2_code_free(skip);
    free(names);
    return status;
}

/* ---------------- tensor data ---------------- */

#define CHUNK_ELEMS ((size_t)1 << 20)

static int cast_into(void *dst, const mt_tensor_view *t, mt_dtype dt, mt_err *err) {
    size_t n = numel_of(t);
    if (t->dtype == dt) {
        memcpy(dst, t->data, t->nbytes);
        return MT_OK;
    }
    if (!mt_dtype_is_float(t->dtype) || (dt != MT_F32 && dt != MT_F16 && dt != MT_BF16))
        return mt_seterr(err, MT_EUNSUPPORTED, "%s: cannot cast %s to %s", t->name, mt_dtype_name(t->dtype),
                         mt_dtype_name(dt));
    float *tmp = malloc((n < CHUNK_ELEMS ? n : CHUNK_ELEMS) * sizeof *tmp + 1);
    if (!tmp) return mt_seterr(err, MT_ENOMEM, "out of memory");
    size_t es = mt_dtype_size(t->dtype), ds = mt_dtype_size(dt);
    for (size_t i = 0; i < n; i += CHUNK_ELEMS) {
        size_t m = n - i < CHUNK_ELEMS ? n - i : CHUNK_ELEMS;
        mt_convert_to_f32(tmp, (const char *)t->data + i * es, t->dtype, m);
        mt_convert_from_f32((char *)dst + i * ds, tmp, dt, m);
    }
    free(tmp);
    return MT_OK;
}

typedef struct qjob {
    const out_t *t;
    const float *moments;           /* E[x^2] [K] when calibrated, else NULL */
    mt_dtype dt;
    uint32_t *w;
    void *scales, *biases;
    int gpu, failed;
    int mode;                       /* mt_qmode */
    int unit_rows;                  /* baichuan_m1's lm_head: rows scaled to unit norm first (its sanitize) */
} qjob;

/* mlx-lm's baichuan_m1 sanitize of an unquantized lm_head: each row divided by (its L2 norm +
 * 1e-7) in float32, then back in the weights' type dt. */
static void unit_rows(float *x, size_t m, size_t K, mt_dtype dt) {
    for (size_t r = 0; r < m; r++) {
        float *row = x + r * K, s = 0;
        for (size_t i = 0; i < K; i++) s += row[i] * row[i];
        float den = sqrtf(s) + 1e-7f;
        for (size_t i = 0; i < K; i++) {
            float v = row[i] / den;
            row[i] = dt == MT_F16 ? mt_round_f16(v) : dt == MT_BF16 ? mt_round_bf16(v) : v;
        }
    }
}

static void quantize_rows(void *ctx, size_t begin, size_t end, int tid) {
    (void)tid;
    qjob *j = ctx;
    const out_t *t = j->t;
    size_t K = t->K, G = K / (size_t)t->gs;
    size_t chunk_rows = CHUNK_ELEMS / 4 / K ? CHUNK_ELEMS / 4 / K : 1;
    size_t wrow = mt_quant_row_words(K, t->bits), ds = mt_dtype_size(j->dt), es = mt_dtype_size(t->src->dtype);
    float *x = malloc(chunk_rows * K * sizeof *x);
    if (!x) {
        j->failed = MT_ENOMEM;
        return;
    }
    for (size_t r = begin; r < end; r += chunk_rows) {
        size_t m = end - r < chunk_rows ? end - r : chunk_rows;
        mt_convert_to_f32(x, (const char *)t->src->data + r * K * es, t->src->dtype, m * K);
        if (j->unit_rows) unit_rows(x, m, K, t->src->dtype);
        if (j->mode != MT_QMODE_AFFINE) {   /* one-byte scales, no biases */
            if (mt_quantize_fp((uint8_t *)(j->w + r * wrow), (uint8_t *)j->scales + r * G, j->dt, x, m, K, j->mode, NULL))
                j->failed = MT_EINVAL;
            continue;
        }
        if (j->moments ? mt_calib_quantize(j->w + r * wrow, (char *)j->scales + r * G * ds,
                                           (char *)j->biases + r * G * ds, j->dt, x, j->moments, m, K, t->bits,
                                           t->gs, NULL)
                       : mt_quantize_affine(j->w + r * wrow, (char *)j->scales + r * G * ds,
                                            (char *)j->biases + r * G * ds, j->dt, x, m, K, t->bits, t->gs, j->gpu,
                                            NULL))
            j->failed = MT_EINVAL;
    }
    free(x);
}

/* Quantize module m's source weight; any of w/scales/biases may be NULL
 * (computed into scratch and dropped).  Rows are spread over the pool. */
static int quantize_module(cv *c, const out_t *t, void *w, void *scales, void *biases, mt_err *err) {
    size_t K = t->K, rows = t->rows, G = K / (size_t)t->gs;
    mt_dtype dt = c->mods[t->mod].sdt;   /* the (cast) weight dtype */
    if (dt != MT_F32 && dt != MT_F16 && dt != MT_BF16)
        return mt_seterr(err, MT_EUNSUPPORTED, "%s: cannot quantize %s weights", t->src->name, mt_dtype_name(dt));
    int mode = c->mods[t->mod].mode, fp = mode != MT_QMODE_AFFINE;
    size_t wbytes = rows * mt_quant_row_words(K, t->bits) * 4, sbytes = rows * G * (fp ? 1 : mt_dtype_size(dt));
    void *wb = w ? NULL : malloc(wbytes ? wbytes : 1);
    void *sb = scales ? NULL : malloc(sbytes ? sbytes : 1);
    void *bb = biases || fp ? NULL : malloc(sbytes ? sbytes : 1);
    int rc = MT_OK;
    if ((!w && !wb) || (!scales && !sb) || (!fp && !biases && !bb)) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    if (!rc) {
        const float *mom = c->calib && !fp ? mt_calib_moments(c->calib, c->mods[t->mod].path, K) : NULL;
        qjob j = {t, mom, dt, w ? w : wb, scales ? scales : sb, biases ? biases : bb, c->o->gpu_rules, 0, mode,
                  c->model_type && !strcmp(c->model_type, "baichuan_m1") && !strcmp(c->mods[t->mod].path, "lm_head")};
        mt_pool_for(c->pool, rows, 16, quantize_rows, &j);
        if (j.failed) rc = mt_seterr(err, j.failed, "%s: quantization failed", t->src->name);
    }
    free(wb), free(sb), free(bb);
    return rc;
}

static int dequant_into(cv *c, const out_t *t, void *dst, mt_err *err) {
    (void)c;
    if (t->mode != MT_QMODE_AFFINE) {   /* e * s rounded to bfloat16, row by row */
        size_t K = t->K, rb = K * (size_t)t->bits / 8, G = K / (size_t)t->gs;
        float *x = malloc(K * sizeof *x);
        if (!x) return mt_seterr(err, MT_ENOMEM, "out of memory");
        int rc = MT_OK;
        for (size_t r = 0; r < t->rows && !rc; r++) {
            rc = mt_qfp_row_f32(x, (const uint8_t *)t->src->data + r * rb, (const uint8_t *)t->sscales->data + r * G,
                                t->mode, K, 1);
            if (rc) rc = mt_seterr(err, rc, "%s: bad fp quantized layer", t->name);
            else rc = mt_convert_from_f32((char *)dst + r * K * 2, x, MT_BF16, K);
        }
        free(x);
        return rc;
    }
    size_t K = t->K, rows = t->rows, G = K / (size_t)t->gs;
    mt_dtype sdt = t->sscales->dtype, odt = t->e.dtype;
    size_t chunk_rows = CHUNK_ELEMS / K ? CHUNK_ELEMS / K : 1;
    size_t wrow = mt_quant_row_words(K, t->bits), ss = mt_dtype_size(sdt), os = mt_dtype_size(odt);
    float *x = malloc(chunk_rows * K * sizeof *x);
    float *sf = malloc(chunk_rows * G * sizeof *sf * 2);
    void *sc = malloc(chunk_rows * G * 2 * 4);
    int rc = MT_OK;
    if (!x || !sf || !sc) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    for (size_t r = 0; r < rows && !rc; r += chunk_rows) {
        size_t m = rows - r < chunk_rows ? rows - r : chunk_rows;
        const void *s = (const char *)t->sscales->data + r * G * ss;
        const void *b = (const char *)t->sbiases->data + r * G * ss;
        mt_dtype use = sdt;
        if (odt != sdt) {
            /* mlx_lm casts scales/biases to the target dtype before dequantizing */
            mt_convert_to_f32(sf, s, sdt, m * G);
            mt_convert_to_f32(sf + m * G, b, sdt, m * G);
            mt_convert_from_f32(sc, sf, odt, m * G);
            mt_convert_from_f32((char *)sc + m * G * os, sf + m * G, odt, m * G);
            s = sc, b = (char *)sc + m * G * os, use = odt;
        }
        uint32_t *wcopy = malloc(m * wrow * 4);
        if (!wcopy) {
            rc = mt_seterr(err, MT_ENOMEM, "out of memory");
            break;
        }
        memcpy(wcopy, (const char *)t->src->data + r * wrow * 4, m * wrow * 4);
        rc = mt_dequantize_affine(x, wcopy, s, b, use, m, K, t->bits, t->gs, err);
        free(wcopy);
        if (!rc) mt_convert_from_f32((char *)dst + r * K * os, x, odt, m * K);
    }
    free(x), free(sf), free(sc);
    return rc;
}

/* Drop the source pages of a tensor from this process (they stay in the page
 * cache and fault back in if read again): keeps resident memory near one
 * tensor while streaming through a model larger than RAM. */
static void release_pages(const void *p, size_t n) {
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0 || n == 0) return;
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(ps - 1);
    uintptr_t e = ((uintptr_t)p + n + (uintptr_t)ps - 1) & ~(uintptr_t)(ps - 1);
    madvise((void *)a, e - a, MADV_DONTNEED);
}

static int fill_inner(cv *c, out_t *t, void *dst, mt_err *err);

/* Stacked sources are assembled just for the tensor being written. */
static int fill(void *user, size_t idx, void *dst, mt_err *err) {
    cv *c = user;
    out_t *t = &c->out[idx];
    vstack *v = NULL;
    for (size_t i = 0; i < c->nvs && t->src; i++)
        if (t->src == &c->vs[i].v) v = &c->vs[i];
    if (!v) {
        int rc = fill_inner(c, t, dst, err);
        if (!rc && t->src && t->src->data) release_pages(t->src->data, t->src->nbytes);
        return rc;
    }
    unsigned char *buf = malloc(v->v.nbytes ? v->v.nbytes : 1);
    if (!buf) return mt_seterr(err, MT_ENOMEM, "out of memory (%zu bytes for '%s')", v->v.nbytes, v->name);
    for (size_t k = 0; k < v->nparts; k++) {
        memcpy(buf + k * v->parts[k]->nbytes, v->parts[k]->data, v->parts[k]->nbytes);
        release_pages(v->parts[k]->data, v->parts[k]->nbytes);
    }
    v->v.data = buf;
    int rc = fill_inner(c, t, dst, err);
    v->v.data = NULL;
    free(buf);
    return rc;
}

static int fill_inner(cv *c, out_t *t, void *dst, mt_err *err) {
    int rc = MT_OK;
    switch (t->kind) {
    case K_COPY: rc = cast_into(dst, t->src, t->e.dtype, err); break;
    case K_DEQ: rc = dequant_into(c, t, dst, err); break;
    case K_QW: {
        module_q *m = &c->mods[t->mod];
        if (!m->scales && m->pending == 0) {
            /* compute scales/biases on the way and keep them for later */
            int fp = m->mode != MT_QMODE_AFFINE;
            size_t sz = t->rows * (t->K / (size_t)t->gs) * (fp ? 1 : mt_dtype_size(m->sdt));
            m->scales = malloc(sz ? sz : 1);
            m->biases = fp ? NULL : malloc(sz ? sz : 1);
            if (!m->scales || (!fp && !m->biases)) return mt_seterr(err, MT_ENOMEM, "out of memory");
            m->pending = fp ? 1 : 2;
            rc = quantize_module(c, t, dst, m->scales, m->biases, err);
        } else {
            rc = quantize_module(c, t, dst, NULL, NULL, err);
        }
        break;
    }
    case K_QS:
    case K_QB: {
        module_q *m = &c->mods[t->mod];
        if (!m->scales && m->pending == 0) {
            int fp = m->mode != MT_QMODE_AFFINE;
            m->scales = malloc(t->e.nbytes ? t->e.nbytes : 1);
            m->biases = fp ? NULL : malloc(t->e.nbytes ? t->e.nbytes : 1);
            if (!m->scales || (!fp && !m->biases)) return mt_seterr(err, MT_ENOMEM, "out of memory");
            m->pending = fp ? 1 : 2;
            rc = quantize_module(c, t, NULL, m->scales, m->biases, err);
            if (rc) return rc;
        }
        memcpy(dst, t->kind == K_QS ? m->scales : m->biases, t->e.nbytes);
        if (t->kind == K_QS) {
            free(m->scales);
            m->scales = NULL;
        } else {
            free(m->biases);
            m->biases = NULL;
        }
        m->pending--;
        if (m->pending == 0) m->pending = -1;   /* done: never cache again */
        break;
    }
    }
    if (!rc && t->kind == K_DEQ) {
        release_pages(t->sscales->data, t->sscales->nbytes);
        if (t->sbiases) release_pages(t->sbiases->data, t->sbiases->nbytes);
    }
    return rc;
}

/* ---------------- files ---------------- */

int mt_convert_write_text(const char *dir, const char *name, const char *text, size_t n, mt_err *err) {
    char *p = mt_path_join(dir, name);
    if (!p) return mt_seterr(err, MT_ENOMEM, "out of memory");
    FILE *f = fopen(p, "wb");
    int rc = MT_OK;
    if (!f || fwrite(text, 1, n, f) != n) rc = mt_seterr(err, MT_EIO, "%s: cannot write", p);
    if (f && fclose(f) != 0 && !rc) rc = mt_seterr(err, MT_EIO, "%s: cannot write", p);
    free(p);
    return rc;
}

static int copy_file(const char *src, const char *dst, mt_err *err) {
    FILE *in = fopen(src, "rb");
    if (!in) return mt_seterr(err, MT_EIO, "%s: cannot open", src);
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fclose(in);
        return mt_seterr(err, MT_EIO, "%s: cannot create", dst);
    }
    char buf[65536];
    size_t k;
    int rc = MT_OK;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, k, out) != k) {
            rc = mt_seterr(err, MT_EIO, "%s: write failed", dst);
            break;
        }
    if (ferror(in)) rc = mt_seterr(err, MT_EIO, "%s: read failed", src);
    fclose(in);
    if (fclose(out) != 0 && !rc) rc = mt_seterr(err, MT_EIO, "%s: write failed", dst);
    return rc;
}

/* Tokenizer, chat template, generation config and *.py files of the source. */
static const char *const side_files[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                         "added_tokens.json", "tokenizer.model", "vocab.json", "merges.txt",
                                         "vocab.txt", "chat_template.jinja", "chat_template.json",
                                         "generation_config.json", "*.tiktoken", "*.py", NULL};

static int copy_side_files(const char *src, const char *dst, mt_err *err) {
    DIR *d = opendir(src);
    if (!d) return mt_seterr(err, MT_EIO, "%s: cannot list", src);
    struct dirent *de;
    int rc = MT_OK;
    while (!rc && (de = readdir(d))) {
        int want = 0;
        for (int i = 0; side_files[i] && !want; i++) want = fnmatch(side_files[i], de->d_name, 0) == 0;
        if (!want) continue;
        char *a = mt_path_join(src, de->d_name), *b = mt_path_join(dst, de->d_name);
        if (!a || !b) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        else if (!mt_is_dir(a)) rc = copy_file(a, b, err);
        free(a), free(b);
    }
    closedir(d);
    if (rc) return rc;
    /* additional_chat_templates/ */
    char *sd = mt_path_join(src, "additional_chat_templates");
    if (!sd) return mt_seterr(err, MT_ENOMEM, "out of memory");
    if (mt_is_dir(sd)) {
        char *dd = mt_path_join(dst, "additional_chat_templates");
        rc = dd ? mt_mkdirs(dd, err) : mt_seterr(err, MT_ENOMEM, "out of memory");
        DIR *e = rc ? NULL : opendir(sd);
        while (e && !rc && (de = readdir(e))) {
            if (fnmatch("*.jinja", de->d_name, 0)) continue;
            char *a = mt_path_join(sd, de->d_name), *b = mt_path_join(dd, de->d_name);
            rc = (a && b) ? copy_file(a, b, err) : mt_seterr(err, MT_ENOMEM, "out of memory");
            free(a), free(b);
        }
        if (e) closedir(e);
        free(dd);
    }
    free(sd);
    return rc;
}

/* config.json as mlx_lm writes it. */
static int write_config(cv *c, const char *dir, json_t *qblock, mt_err *err) {
    json_t *cfg = json_deep_copy(mt_config_json(c->cfg));
    if (!cfg) return mt_seterr(err, MT_ENOMEM, "out of memory");
    /* load_config: generation_config.json's eos_token_id (when truthy) wins */
    char *gp = mt_path_join(c->o->src, "generation_config.json");
    if (gp && mt_file_exists(gp)) {
        json_t *g = json_load_file(gp, 0, NULL);
        json_t *eos = g ? json_object_get(g, "eos_token_id") : NULL;
        int truthy = eos && !json_is_null(eos) && !json_is_false(eos) &&
                     !(json_is_integer(eos) && json_integer_value(eos) == 0) &&
                     !(json_is_array(eos) && json_array_size(eos) == 0);
        if (truthy) json_object_set(cfg, "eos_token_id", eos);
        json_decref(g);
    }
    free(gp);
    json_object_del(cfg, "_name_or_path");
    json_object_del(cfg, "vision_config");
    if (c->o->dequantize) {
        json_object_del(cfg, "quantization");
        json_object_del(cfg, "quantization_config");
    }
    if (qblock) {
        json_object_set(cfg, "quantization", qblock);
        json_object_set(cfg, "quantization_config", qblock);
    } else if (json_object_get(cfg, "quantization")) {
        json_object_set(cfg, "quantization_config", json_object_get(cfg, "quantization"));
    }
    char *txt;
    size_t len;
    int rc = mt_pyjson_dump(cfg, 1, &txt, &len, err);
    json_decref(cfg);
    if (rc) return rc;
    rc = mt_convert_write_text(dir, "config.json", txt, len, err);
    free(txt);
    return rc;
}

static int model_card(const mt_convert_opts *o, const char *dir, mt_err *err) {
    char buf[2048];
    int n;
    if (o->base_model)
        n = snprintf(buf, sizeof buf,
                     "---\nbase_model: %s\nlibrary_name: mlx\npipeline_tag: text-generation\ntags:\n- mlx\n---\n",
                     o->base_model);
    else
        n = snprintf(buf, sizeof buf, "---\nlanguage: en\nlibrary_name: mlx\npipeline_tag: text-generation\ntags:\n- mlx\n---\n");
    return mt_convert_write_text(dir, "README.md", buf, (size_t)n, err);
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

typedef struct shard_ctx {
    const mt_convert_weights *w;
    size_t first;        /* index of the shard's first tensor in w->e */
    const char *file;
    uint64_t done, total;
} shard_ctx;

static int shard_fill(void *user, size_t idx, void *dst, mt_err *err) {
    shard_ctx *s = user;
    const mt_convert_weights *w = s->w;
    MT_TRY(w->fill(w->user, s->first + idx, dst, err));
    s->done += w->e[s->first + idx].nbytes;
    if (w->progress) w->progress(w->progress_user, s->file, s->done, s->total);
    return MT_OK;
}

/* model.safetensors.index.json: metadata, then the weight map sorted by name. */
static int write_index(const char *dir, json_t *wm, uint64_t total, uint64_t params, mt_err *err) {
    json_t *idx = json_object(), *sorted = json_object();
    json_object_set_new(idx, "metadata", json_pack("{s:I, s:I}", "total_size", (json_int_t)total, "total_parameters",
                                                   (json_int_t)params));
    size_t nk = json_object_size(wm), k = 0;
    const char **keys = malloc((nk ? nk : 1) * sizeof *keys);
    const char *key;
    json_t *v;
    int rc = MT_OK;
    if (!keys) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
    else {
        json_object_foreach(wm, key, v) keys[k++] = key;
        qsort(keys, nk, sizeof *keys, cmp_cstr);
        for (k = 0; k < nk; k++) json_object_set(sorted, keys[k], json_object_get(wm, keys[k]));
        json_object_set(idx, "weight_map", sorted);
        char *txt;
        size_t len;
        rc = mt_pyjson_dump(idx, 0, &txt, &len, err);
        if (!rc) {
            rc = mt_convert_write_text(dir, "model.safetensors.index.json", txt, len, err);
            free(txt);
        }
    }
    free(keys);
    json_decref(sorted);
    json_decref(idx);
    return rc;
}

int mt_convert_write_weights(const char *dir, const mt_convert_weights *w, mt_err *err) {
    uint64_t maxb = w->max_shard_bytes ? w->max_shard_bytes : ((uint64_t)5 << 30);
    /* greedy shards in module order */
    size_t *start = malloc((w->n + 2) * sizeof *start);
    if (!start) return mt_seterr(err, MT_ENOMEM, "out of memory");
    size_t ns = 0;
    uint64_t cur = 0, total = 0;
    for (size_t i = 0; i < w->n; i++) {
        if (ns == 0 || cur + w->e[i].nbytes > maxb) start[ns++] = i, cur = 0;
        cur += w->e[i].nbytes;
        total += w->e[i].nbytes;
    }
    start[ns] = w->n;
    json_t *wm = json_object();
    shard_ctx sc = {w, 0, NULL, 0, total};
    int rc = MT_OK;
    for (size_t s = 0; s < ns && !rc; s++) {
        char fname[64];
        if (ns > 1) snprintf(fname, sizeof fname, "model-%05zu-of-%05zu.safetensors", s + 1, ns);
        else snprintf(fname, sizeof fname, "model.safetensors");
        size_t n = start[s + 1] - start[s];
        const mt_st_entry *ents = w->e + start[s];
        const char **names = malloc((n ? n : 1) * sizeof *names);
        size_t *order = malloc((n ? n : 1) * sizeof *order);
        if (!names || !order) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        for (size_t i = 0; i < n && !rc; i++) {
            names[i] = ents[i].name;
            json_object_set_new(wm, names[i], json_string(fname));
        }
        if (!rc) rc = mt_st_mlx_order(names, n, order, err);
        char *path = mt_path_join(dir, fname);
        if (!rc && !path) rc = mt_seterr(err, MT_ENOMEM, "out of memory");
        sc.first = start[s], sc.file = fname;
        static const char *const meta[] = {"format", "mlx"};
        if (!rc) rc = mt_st_write(path, ents, n, order, meta, 1, shard_fill, &sc, err);
        free(path), free(names), free(order);
    }
    free(start);
    if (!rc) rc = write_index(dir, wm, total, w->params, err);
    json_decref(wm);
    return rc;
}

/* 1 when tensor `name`'s module (its path up to the last dot) has child modules among the
 * out[n] tensors: mlx_lm's get_total_parameters counts leaf modules' parameters only (gemma4's
 * layer_scalar, router.scale) */
static int on_inner_module(const out_t *out, size_t n, const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return 0;
    size_t ml = (size_t)(dot - name);
    for (size_t j = 0; j < n; j++) {
        const char *o = out[j].name;
        if (!strncmp(o, name, ml) && o[ml] == '.' && strchr(o + ml + 1, '.')) return 1;
    }
    return 0;
}

/* The plan's tensors through mt_convert_write_weights. */
static int write_weights(cv *c, const char *dir, mt_err *err) {
    mt_st_entry *ents = malloc((c->nout ? c->nout : 1) * sizeof *ents);
    if (!ents) return mt_seterr(err, MT_ENOMEM, "out of memory");
    uint64_t params = 0;
    for (size_t i = 0; i < c->nout; i++) {
        const out_t *t = &c->out[i];
        ents[i] = t->e;
        if (t->kind != K_QW && t->kind != K_QS && t->kind != K_QB && on_inner_module(c->out, c->nout, t->name)) continue;
        if (t->kind == K_QW) params += (uint64_t)t->rows * t->K;
        else if (t->kind != K_QS && t->kind != K_QB) {
            size_t es = mt_dtype_size(t->e.dtype);
            params += es ? t->e.nbytes / es : 0;
        }
    }
    mt_convert_weights w = {ents, c->nout, params, c->o->max_shard_bytes, fill, c, c->o->progress, c->o->progress_user};
    int rc = mt_convert_write_weights(dir, &w, err);
    free(ents);
    return rc;
}

static int has_quant_block(const mt_config *cfg) {
    return json_object_get(mt_config_json(cfg), "quantization") != NULL;
}

int mt_convert(const mt_convert_opts *o, mt_err *err) {
    if (!o || !o->src || !o->dst) return mt_seterr(err, MT_EINVAL, "source and destination are required");
    if (o->quantize && o->dequantize) return mt_seterr(err, MT_EINVAL, "choose either quantize or dequantize, not both");
    int qbits = o->bits ? o->bits : mt_qmode_default_bits(o->mode);
    int qgs = o->group_size ? o->group_size : mt_qmode_default_group_size(o->mode);
    if (o->quantize) {
        mt_quant_params qp = {qbits, qgs, o->mode};
        MT_TRY(mt_quant_params_check(&qp, err));
        if (o->mode != MT_QMODE_AFFINE && (o->recipe || o->calibrate || o->gpu_rules))
            return mt_seterr(err, MT_EINVAL, "--mode %s takes no --quant-predicate, --calibrate or --gpu-rules",
                             mt_qmode_name(o->mode));
    }
    if (o->calibrate && (!o->quantize || o->recipe || o->gpu_rules))
        return mt_seterr(err, MT_EINVAL, "--calibrate needs -q, without --quant-predicate or --gpu-rules");
    struct stat sb;
    if (lstat(o->dst, &sb) == 0)
        return mt_seterr(err, MT_EINVAL, "cannot save to %s: it already exists", o->dst);
    cv c;
    memset(&c, 0, sizeof c);
    c.o = o;
    c.target = MT_DTYPE_COUNT;
    int rc = mt_config_load(&c.cfg, o->src, err);
    if (rc) return rc;
    c.model_type = mt_config_model_type(c.cfg);
    const char *dts = o->dtype;
    if (dts && !parse_dtype_name(dts, &c.target)) {
        mt_config_free(c.cfg);
        return mt_seterr(err, MT_EINVAL, "--dtype: '%s' is not float16, bfloat16 or float32", dts);
    }
    if (!dts) {
        /* mlx_lm: config["torch_dtype"], else (absent or null) text_config["dtype"];
         * a top-level "dtype" key (transformers 5) is not consulted */
        json_t *td = json_object_get(mt_config_json(c.cfg), "torch_dtype");
        if (td && !json_is_null(td)) dts = json_string_value(td);
        else dts = mt_config_get_str(c.cfg, "text_config.dtype", NULL);
        if (!parse_dtype_name(dts, &c.target)) c.target = MT_DTYPE_COUNT;
    }
    if (o->quantize && has_quant_block(c.cfg)) {
        mt_config_free(c.cfg);
        return mt_seterr(err, MT_EUNSUPPORTED, "%s is already quantized", o->src);
    }
    rc = mt_safetensors_open_dir(&c.st, o->src, err);
    json_t *qblock = NULL;
    if (!rc && o->quantize) {
        qblock = json_object();
        json_object_set_new(qblock, "group_size", json_integer(qgs));
        json_object_set_new(qblock, "bits", json_integer(qbits));
        json_object_set_new(qblock, "mode", json_string(mt_qmode_name(o->mode)));
    }
    if (!rc) rc = build_plan(&c, qblock, err);
    if (!rc && o->threads != 1) rc = mt_pool_new(&c.pool, o->threads, err);
    if (!rc && o->calibrate) rc = mt_calib_collect(&c.calib, o->src, o->calibrate, o->calib_tokens, c.pool, err);
    /* temp folder next to dst (removed on failure and, through core/sig, on a fatal signal) */
    char *tmp = NULL;
    if (!rc) rc = mt_tmpdir_make(o->dst, &tmp, err);
    if (!rc) rc = write_weights(&c, tmp, err);
    if (!rc) rc = write_config(&c, tmp, qblock, err);
    if (!rc) rc = copy_side_files(o->src, tmp, err);
    if (!rc) rc = model_card(o, tmp, err);
    if (!rc) rc = mt_tmp_commit(tmp, o->dst, err);
    else mt_tmp_discard(tmp);
    free(tmp);
    json_decref(qblock);
    for (size_t i = 0; i < c.nout; i++) free(c.out[i].name);
    for (size_t i = 0; i < c.nmods; i++) {
        free(c.mods[i].path);
        free(c.mods[i].scales);
        free(c.mods[i].biases);
    }
    free(c.out);
    free(c.mods);
    for (size_t i = 0; i < c.nvs; i++) {
        free(c.vs[i].name);
        free(c.vs[i].parts);
    }
    free(c.vs);
    mt_calib_free(c.calib);
    mt_pool_free(c.pool);
    mt_safetensors_free(c.st);
    mt_config_free(c.cfg);
    return rc;
}
