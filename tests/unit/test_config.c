/* test_config.c - config.json access and the MLX quantization rules
 * (tests/data/config/). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "io/config.h"

#define D "tests/data/config/"

static mt_config *load(const char *p) {
    mt_err err = {0};
    mt_config *c = NULL;
    CHECK_OK(mt_config_load(&c, p, &err), &err);
    return c;
}

/* An in-memory safetensors image with one U8 [1] tensor per name. */
static unsigned char *image(const char *const *names, int n, size_t *len) {
    char hdr[4096];
    size_t h = 0;
    h += (size_t)snprintf(hdr + h, sizeof hdr - h, "{");
    for (int i = 0; i < n; i++)
        h += (size_t)snprintf(hdr + h, sizeof hdr - h, "%s\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                              i ? "," : "", names[i], i, i + 1);
    h += (size_t)snprintf(hdr + h, sizeof hdr - h, "}");
    *len = 8 + h + (size_t)n;
    unsigned char *b = calloc(1, *len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, hdr, h);
    return b;
}

static void test_access(void) {
    mt_err err = {0};
    mt_config *c = load(D "overrides");
    if (!c) return;
    CHECK_STR(mt_config_model_type(c), "qwen3");
    CHECK(json_is_object(mt_config_json(c)));
    long long v = 0;
    CHECK_OK(mt_config_get_int(c, "hidden_size", 0, &v, &err), &err);
    CHECK_EQ_INT(v, 1024);
    CHECK_OK(mt_config_get_int(c, "intermediate_size", 0, &v, &err), &err);   /* 3072.0 */
    CHECK_EQ_INT(v, 3072);
    CHECK_OK(mt_config_get_int(c, "text_config.hidden_size", 0, &v, &err), &err);
    CHECK_EQ_INT(v, 2048);
    CHECK_OK(mt_config_get_int(c, "num_key_value_heads", 8, &v, &err), &err);  /* absent -> default */
    CHECK_EQ_INT(v, 8);
    CHECK_OK(mt_config_get_int(c, "rope_scaling", -1, &v, &err), &err);        /* null -> default */
    CHECK_EQ_INT(v, -1);
    CHECK_EQ_INT(mt_config_get_int(c, "model_type", 0, &v, &err), MT_EFORMAT);
    CHECK(strstr(err.msg, "'model_type' must be an integer") != NULL);
    CHECK(strstr(err.msg, "config.json") != NULL);
    CHECK_EQ_INT(mt_config_get_int(c, "rms_norm_eps", 0, &v, &err), MT_EFORMAT);
    CHECK_EQ_INT(mt_config_get_int(c, "text_config.rope_theta", 0, &v, &err), MT_EFORMAT);
    double d = 0;
    CHECK_OK(mt_config_get_float(c, "rms_norm_eps", 0, &d, &err), &err);
    CHECK(d == 1e-6);
    CHECK_OK(mt_config_get_float(c, "rope_theta", 0, &d, &err), &err);       /* integer accepted */
    CHECK(d == 1e6);
    CHECK_OK(mt_config_get_float(c, "text_config.rope_theta", 0, &d, &err), &err);
    CHECK(d == 10000.5);
    CHECK_EQ_INT(mt_config_get_float(c, "torch_dtype", 0, &d, &err), MT_EFORMAT);
    int b = -1;
    CHECK_OK(mt_config_get_bool(c, "tie_word_embeddings", 0, &b, &err), &err);
    CHECK_EQ_INT(b, 1);
    CHECK_OK(mt_config_get_bool(c, "use_sliding_window", 1, &b, &err), &err);
    CHECK_EQ_INT(b, 0);
    CHECK_OK(mt_config_get_bool(c, "attention_bias", 1, &b, &err), &err);
    CHECK_EQ_INT(b, 1);
    CHECK_EQ_INT(mt_config_get_bool(c, "torch_dtype", 0, &b, &err), MT_EFORMAT);
    CHECK_STR(mt_config_get_str(c, "torch_dtype", NULL), "bfloat16");
    CHECK_STR(mt_config_get_str(c, "layer_types.1", NULL), "sliding_attention");
    CHECK(mt_config_get_str(c, "layer_types.2", NULL) == NULL);
    CHECK(mt_config_get_str(c, "layer_types.x", NULL) == NULL);
    CHECK_STR(mt_config_get_str(c, "hidden_size", "dflt"), "dflt");
    CHECK(mt_config_get(c, "text_config.hidden_size.x") == NULL);
    CHECK(mt_config_get(c, "text_config..hidden_size") == NULL);
    CHECK(mt_config_get(c, "") == NULL);
    mt_config_free(c);
    mt_config_free(NULL);

    /* loading a file directly, and failures */
    c = load(D "none/config.json");
    CHECK_STR(c ? mt_config_model_type(c) : NULL, "mistral");
    mt_config_free(c);
    static const struct { const char *p; int code; const char *msg; } bad[] = {
        {D "bad/invalid.json", MT_EFORMAT, "invalid JSON at line 2"},
        {D "bad/array.json", MT_EFORMAT, "not a JSON object"},
        {D "bad/duplicate.json", MT_EFORMAT, "duplicate"},
        {D "missing_dir", MT_ENOTFOUND, "missing_dir"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c = NULL;
        int rc = mt_config_load(&c, bad[i].p, &err);
        CHECK_MSG(rc == bad[i].code, "%s: rc %d (%s)", bad[i].p, rc, err.msg);
        CHECK_MSG(strstr(err.msg, bad[i].msg) != NULL, "%s: '%s'", bad[i].p, err.msg);
        CHECK(c == NULL);
    }
}

#define QF(c, st, path) (q = -1, memset(&qp, 0, sizeof qp), mt_config_quant_for(c, st, path, &q, &qp, &err))

static void test_quant(void) {
    mt_err err = {0};
    int q;
    mt_quant_params qp;
    mt_config *c = load(D "overrides");
    if (!c) return;
    /* without weights: overrides and top level */
    CHECK_OK(QF(c, NULL, "model.layers.0.mlp.down_proj"), &err);
    CHECK(q == 1 && qp.bits == 6 && qp.group_size == 32 && qp.mode == MT_QMODE_AFFINE);
    CHECK_OK(QF(c, NULL, "model.embed_tokens"), &err);                  /* group_size null -> 64 */
    CHECK(q == 1 && qp.bits == 8 && qp.group_size == 64 && qp.mode == MT_QMODE_AFFINE);
    CHECK_OK(QF(c, NULL, "model.layers.0.self_attn.q_norm"), &err);     /* false */
    CHECK_EQ_INT(q, 0);
    CHECK_OK(QF(c, NULL, "model.layers.1.mlp.experts"), &err);
    CHECK(q == 1 && qp.mode == MT_QMODE_MXFP4 && qp.group_size == 32 && qp.bits == 4);
    CHECK_OK(QF(c, NULL, "model.layers.1.self_attn.q_proj"), &err);     /* top level */
    CHECK(q == 1 && qp.bits == 4 && qp.group_size == 64 && qp.mode == MT_QMODE_AFFINE);
    CHECK_OK(QF(c, NULL, "bits"), &err);                                /* reserved key, not a module */
    CHECK(q == 1 && qp.bits == 4);
    int dq = -1;
    CHECK_OK(mt_config_quant_default(c, &dq, &qp, &err), &err);
    CHECK(dq == 1 && qp.bits == 4 && qp.group_size == 64);

    /* with weights: the ".scales" rule */
    static const char *const names[] = {"model.layers.0.mlp.down_proj.scales", "model.embed_tokens.scales",
                                        "model.layers.0.self_attn.q_norm.scales",
                                        "model.layers.1.self_attn.q_proj.scales"};
    size_t len;
    unsigned char *img = image(names, 4, &len);
    mt_safetensors *st = NULL;
    CHECK_OK(mt_safetensors_open_mem(&st, img, len, "mem", &err), &err);
    CHECK_OK(QF(c, st, "model.layers.0.mlp.down_proj"), &err);
    CHECK(q == 1 && qp.bits == 6);
    CHECK_OK(QF(c, st, "model.layers.1.self_attn.q_proj"), &err);
    CHECK(q == 1 && qp.bits == 4);
    CHECK_OK(QF(c, st, "model.layers.0.self_attn.q_norm"), &err);       /* false wins over scales */
    CHECK_EQ_INT(q, 0);
    CHECK_OK(QF(c, st, "lm_head"), &err);                               /* no lm_head.scales */
    CHECK_EQ_INT(q, 0);
    CHECK_OK(QF(c, st, "model.layers.1.mlp.experts"), &err);            /* override but no scales */
    CHECK_EQ_INT(q, 0);
    mt_safetensors_free(st);
    free(img);
    mt_config_free(c);

    c = load(D "config_only");
    CHECK_OK(QF(c, NULL, "model.layers.0.mlp.up_proj"), &err);
    CHECK(q == 1 && qp.bits == 8 && qp.group_size == 32 && qp.mode == MT_QMODE_AFFINE);
    mt_config_free(c);

    c = load(D "null_group");
    CHECK_OK(QF(c, NULL, "model.layers.3.mlp.up_proj"), &err);
    CHECK(q == 1 && qp.bits == 3 && qp.group_size == 64);
    CHECK_OK(QF(c, NULL, "model.layers.0.mlp.down_proj"), &err);
    CHECK(q == 1 && qp.bits == 6 && qp.group_size == 64);
    mt_config_free(c);

    c = load(D "none");
    CHECK_OK(QF(c, NULL, "model.layers.0.mlp.down_proj"), &err);
    CHECK_EQ_INT(q, 0);
    dq = -1;
    CHECK_OK(mt_config_quant_default(c, &dq, &qp, &err), &err);
    CHECK_EQ_INT(dq, 0);
    mt_config_free(c);

    c = load(D "mxfp4");
    CHECK_OK(QF(c, NULL, "model.layers.0.mlp.experts.gate_proj"), &err);
    CHECK(q == 1 && qp.mode == MT_QMODE_MXFP4 && qp.bits == 4 && qp.group_size == 32);
    mt_config_free(c);

    c = load(D "nvfp4");
    CHECK_OK(QF(c, NULL, "x"), &err);
    CHECK(q == 1 && qp.mode == MT_QMODE_NVFP4 && qp.bits == 4 && qp.group_size == 16);
    mt_config_free(c);

    c = load(D "vlm");
    CHECK_OK(QF(c, NULL, "language_model.model.layers.0.mlp.down_proj"), &err);
    CHECK(q == 1 && qp.bits == 5 && qp.group_size == 64);
    mt_config_free(c);

    c = load(D "awq");
    CHECK_EQ_INT(QF(c, NULL, "model.layers.0.mlp.down_proj"), MT_EUNSUPPORTED);
    CHECK(strstr(err.msg, "'awq'") != NULL);
    mt_config_free(c);

    static const struct { const char *p; int code; const char *msg; } bad[] = {
        {D "bad/bits7.json", MT_EUNSUPPORTED, "bits 7, group size 64"},
        {D "bad/mode.json", MT_EUNSUPPORTED, "unknown quantization mode 'int4'"},
        {D "bad/bits_string.json", MT_EFORMAT, "'bits' must be a positive integer"},
        {D "bad/override_type.json", MT_EFORMAT, "quantization['model.layers.0.mlp'] must be an object or false"},
        {D "bad/override_group.json", MT_EUNSUPPORTED, "quantization['model.layers.0.mlp']"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        c = load(bad[i].p);
        if (!c) continue;
        int rc = QF(c, NULL, "model.layers.0.mlp");
        CHECK_MSG(rc == bad[i].code, "%s: rc %d (%s)", bad[i].p, rc, err.msg);
        CHECK_MSG(strstr(err.msg, bad[i].msg) != NULL, "%s: '%s'", bad[i].p, err.msg);
        CHECK_EQ_INT(q, 0);
        mt_config_free(c);
    }
}

/* what Python's json module writes but JSON forbids: NaN, Infinity, huge integers */
static void test_python_json(void) {
    mt_err err = {0};
    mt_config *c = load(D "python_json");
    if (!c) return;
    long long v = 0;
    double d = 0;
    CHECK_OK(mt_config_get_int(c, "hidden_size", 0, &v, &err), &err);
    CHECK_EQ_INT(v, 64);
    CHECK(json_is_integer(mt_config_get(c, "hidden_size")));
    CHECK_OK(mt_config_get_float(c, "final_logit_softcapping", 0, &d, &err), &err);
    CHECK(d > 1e308);
    CHECK_OK(mt_config_get_float(c, "neg", 0, &d, &err), &err);
    CHECK(d < -1e308);
    CHECK_OK(mt_config_get_float(c, "eps", 0.5, &d, &err), &err);      /* NaN -> null -> default */
    CHECK(d == 0.5);
    CHECK_OK(mt_config_get_float(c, "max_len", 0, &d, &err), &err);
    CHECK(d > 9.9e29 && d < 1.1e30);
    CHECK_EQ_INT(mt_config_get_int(c, "max_len", 0, &v, &err), MT_EFORMAT);
    CHECK_STR(mt_config_get_str(c, "s", NULL), "NaN Infinity \"NaN\" \\\\");
    CHECK_OK(mt_config_get_float(c, "nested.v.1", 0, &d, &err), &err);
    CHECK(d == 2.5);
    CHECK(json_is_null(mt_config_get(c, "nested.v.2")));
    /* where the first NaN was: model loaders refuse such a config, naming the key */
    CHECK_STR(mt_config_nan_key(c), "eps");
    mt_config_free(c);
    static const struct { const char *text, *key; } nans[] = {
        {"{\"a\": 1, \"b\": {\"c\": [1, NaN]}, \"d\": NaN}", "b.c.1"},
        {"{\"rope_scaling\": {\"type\": \"linear\", \"factor\": NaN}}", "rope_scaling.factor"},
        {"{\"s\": \"NaN\", \"t\": \"@NaN@\", \"big\": 100000000000000000000000, \"x\": NaN}", "x"},
        {"{\"s\": \"NaN\", \"i\": Infinity}", NULL},
        {"{\"eps\": 1e-5}", NULL},
        /* transformers >= 5's tagged non-finite floats */
        {"{\"a\": [0, {\"__float__\": \"Infinity\"}], \"b\": {\"c\": {\"__float__\": \"NaN\"}}}", "b.c"},
        {"{\"t\": [0.0, {\"__float__\": \"Infinity\"}], \"u\": {\"__float__\": \"-Infinity\"}}", NULL},
    };
    for (size_t i = 0; i < sizeof nans / sizeof *nans; i++) {
        mt_err err2 = {0};
        c = NULL;
        CHECK_OK(mt_config_parse(&c, nans[i].text, strlen(nans[i].text), NULL, &err2), &err2);
        if (!c) continue;
        if (nans[i].key) CHECK_STR(mt_config_nan_key(c), nans[i].key);
        else CHECK_MSG(mt_config_nan_key(c) == NULL, "#%zu: '%s'", i, mt_config_nan_key(c));
        mt_config_free(c);
    }
    /* the tags become the values they stand for; other objects stay */
    static const char tagged[] = "{\"t\": [0.0, {\"__float__\": \"Infinity\"}], \"u\": {\"__float__\": \"-Infinity\"},"
                                 " \"w\": {\"__float__\": \"Infinity\", \"x\": 1}, \"y\": {\"__float__\": \"big\"}}";
    c = NULL;
    CHECK_OK(mt_config_parse(&c, tagged, strlen(tagged), NULL, &err), &err);
    if (c) {
        CHECK_OK(mt_config_get_float(c, "t.1", 0, &d, &err), &err);
        CHECK(d > 1e308);
        CHECK_OK(mt_config_get_float(c, "u", 0, &d, &err), &err);
        CHECK(d < -1e308);
        CHECK(json_is_object(mt_config_get(c, "w")) && json_is_object(mt_config_get(c, "y")));
        mt_config_free(c);
    }
    /* a bare NaN (found by fuzz_config): refused as not an object, nothing leaked (make asan) */
    mt_err err3 = {0};
    c = NULL;
    CHECK(mt_config_parse(&c, " NaN", 4, NULL, &err3) == MT_EFORMAT && c == NULL && strstr(err3.msg, "not a JSON object"));
}

int main(void) {
    test_python_json();
    test_access();
    test_quant();
    return check_report("config");
}
