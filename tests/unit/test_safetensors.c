/* test_safetensors.c - the safetensors reader against files written by
 * mlx.core.save_safetensors and safetensors.numpy, model directories, and
 * deliberately broken files (tests/gen/gen_safetensors_fixtures.py). */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "io/safetensors.h"

#define D "tests/data/safetensors/"

/* The generator's value formulas, as doubles. */
static double expect(mt_dtype t, size_t i) {
    switch (t) {
    case MT_F32: case MT_F16: case MT_BF16: case MT_F64: return ((double)i - 5.0) * 0.25;
    case MT_BOOL: return i % 3 == 0;
    case MT_I8: case MT_I16: case MT_I32: case MT_I64: return (double)i * 3 - 7;
    case MT_U8: return (double)((i * 3 + 1) % 256);
    case MT_U16: return (double)((i * 3 + 1) % 65536);
    default: return (double)(i * 3 + 1);
    }
}

static double load_exact(const mt_tensor_view *t, size_t i) {
    const unsigned char *p = (const unsigned char *)t->data + i * mt_dtype_size(t->dtype);
    switch (t->dtype) {
    case MT_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case MT_U64: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
    case MT_F64: { double v; memcpy(&v, p, 8); return v; }
    case MT_BOOL: return *p;   /* must be exactly 0 or 1 */
    default: { float f; mt_convert_to_f32(&f, p, t->dtype, 1); return f; }
    }
}

typedef struct { const char *name; mt_dtype dt; int ndim; int64_t shape[3]; } spec;
static const spec specs[] = {
    {"f32", MT_F32, 3, {2, 3, 4}}, {"f16", MT_F16, 1, {5}},   {"bf16", MT_BF16, 2, {3, 2}},
    {"u32", MT_U32, 2, {4, 2}},    {"u8", MT_U8, 1, {7}},     {"i8", MT_I8, 2, {2, 5}},
    {"i32", MT_I32, 1, {3}},       {"i64", MT_I64, 2, {2, 2}}, {"bool", MT_BOOL, 1, {6}},
    {"u16", MT_U16, 1, {3}},       {"i16", MT_I16, 1, {2}},   {"u64", MT_U64, 1, {2}},
    {"scalar", MT_F32, 0, {0}},    {"empty", MT_F32, 2, {0, 3}}, {"f64", MT_F64, 1, {3}},
};

static void check_tensor(const mt_safetensors *st, const spec *s, const char *file) {
    const mt_tensor_view *t = mt_safetensors_get(st, s->name);
    CHECK_MSG(t != NULL, "%s: %s missing", file, s->name);
    if (!t) return;
    CHECK_STR(t->name, s->name);
    CHECK_MSG(t->dtype == s->dt, "%s: %s dtype %s", file, s->name, mt_dtype_name(t->dtype));
    CHECK_EQ_INT(t->ndim, s->ndim);
    for (int d = 0; d < s->ndim && d < t->ndim; d++) CHECK_EQ_INT(t->shape[d], s->shape[d]);
    size_t n = mt_tensor_numel(t);
    CHECK_EQ_INT(t->nbytes, n * mt_dtype_size(t->dtype));
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= load_exact(t, i) == expect(t->dtype, i);
    CHECK_MSG(ok, "%s: %s values", file, s->name);
    if (n) {   /* mt_convert_to_f32 agrees for the float and small-int types */
        float *f = malloc(n * sizeof *f);
        mt_convert_to_f32(f, t->data, t->dtype, n);
        int ok2 = 1;
        for (size_t i = 0; i < n; i++) ok2 &= f[i] == (float)expect(t->dtype, i);
        CHECK_MSG(ok2, "%s: %s convert_to_f32", file, s->name);
        free(f);
    }
}

static void test_valid(void) {
    mt_err err = {0};
    mt_safetensors *st = NULL;
    CHECK_OK(mt_safetensors_open(&st, D "mlx_all.safetensors", &err), &err);
    if (st) {
        CHECK_EQ_INT(mt_safetensors_count(st), 14);
        for (size_t i = 0; i < 14; i++) check_tensor(st, &specs[i], "mlx_all");
        json_t *m = mt_safetensors_metadata(st);
        CHECK(m && json_is_object(m));
        CHECK_STR(json_string_value(json_object_get(m, "format")), "mlx");
        CHECK(mt_safetensors_get(st, "nope") == NULL);
        CHECK(mt_safetensors_get(st, "f6") == NULL);
        CHECK(mt_safetensors_at(st, 14) == NULL);
        /* mlx writes keys sorted */
        CHECK_STR(mt_safetensors_at(st, 0)->name, "bf16");
        CHECK_EQ_INT(mt_safetensors_nfiles(st), 1);
        float buf[24];
        CHECK_OK(mt_safetensors_read_f32(st, "f32", buf, 24, 0, &err), &err);
        CHECK(buf[23] == 4.5f);
        CHECK(mt_safetensors_read_f32(st, "f32", buf, 23, 0, &err) == MT_EFORMAT);
        CHECK(mt_safetensors_read_f32(st, "i32", buf, 3, 0, &err) == MT_EFORMAT);
        CHECK_OK(mt_safetensors_read_f32(st, "i32", buf, 3, 1, &err), &err);
        CHECK(buf[0] == -7.0f);
        CHECK(mt_safetensors_read_f32(st, "zz", buf, 3, 1, &err) == MT_ENOTFOUND);
        const mt_tensor_view *tv = NULL;
        int64_t sh[3] = {2, 3, 4}, sh2[3] = {2, -1, 5};
        CHECK_OK(mt_safetensors_expect(st, "f32", MT_F32, 3, sh, &tv, &err), &err);
        CHECK(tv && !strcmp(tv->name, "f32"));
        CHECK_OK(mt_safetensors_expect(st, "f32", -1, -1, NULL, &tv, &err), &err);
        CHECK_EQ_INT(mt_safetensors_expect(st, "f32", MT_F32, 3, sh2, &tv, &err), MT_EFORMAT);
        CHECK_STR(err.msg, "tensor 'f32': shape [2, 3, 4], expected [2, *, 5]");
        CHECK_EQ_INT(mt_safetensors_expect(st, "f32", MT_F16, 3, sh, &tv, &err), MT_EFORMAT);
        CHECK_STR(err.msg, "tensor 'f32': dtype F32, expected F16");
        CHECK_EQ_INT(mt_safetensors_expect(st, "f32", -1, 2, NULL, &tv, &err), MT_EFORMAT);
        CHECK_STR(err.msg, "tensor 'f32': shape [2, 3, 4], expected 2 dimensions");
        CHECK_EQ_INT(mt_safetensors_expect(st, "scalar", MT_F32, 0, NULL, &tv, &err), 0);
        CHECK_EQ_INT(mt_safetensors_expect(st, "scalar", MT_F32, 1, sh, &tv, &err), MT_EFORMAT);
        CHECK_STR(err.msg, "tensor 'scalar': shape [], expected [2]");
        CHECK_EQ_INT(mt_safetensors_expect(st, "nope", -1, -1, NULL, &tv, &err), MT_ENOTFOUND);
        CHECK(tv == NULL);
        mt_safetensors_free(st);
    }
    st = NULL;
    CHECK_OK(mt_safetensors_open(&st, D "np_all.safetensors", &err), &err);
    if (st) {
        CHECK_EQ_INT(mt_safetensors_count(st), 14);
        for (size_t i = 0; i < 15; i++) {
            spec sp = specs[i];
            if (sp.dt == MT_BF16) continue;
            if (!strcmp(sp.name, "scalar")) { sp.ndim = 1; sp.shape[0] = 1; }  /* the numpy writer stores 0-d as [1] */
            check_tensor(st, &sp, "np_all");
        }
        CHECK_STR(json_string_value(json_object_get(mt_safetensors_metadata(st), "format")), "np");
        mt_safetensors_free(st);
    }
    st = NULL;
    CHECK_OK(mt_safetensors_open(&st, D "mlx_nometa.safetensors", &err), &err);
    CHECK(st && mt_safetensors_metadata(st) == NULL && mt_safetensors_count(st) == 1);
    mt_safetensors_free(st);
    mt_safetensors_free(NULL);

    st = NULL;
    CHECK_OK(mt_safetensors_open(&st, D "fp8.safetensors", &err), &err);
    if (st) {
        const mt_tensor_view *a = mt_safetensors_get(st, "e4m3"), *b = mt_safetensors_get(st, "e8m0");
        CHECK(a && a->dtype == MT_F8_E4M3 && b && b->dtype == MT_F8_E8M0);
        float f[3] = {0};
        CHECK_OK(mt_safetensors_read_f32(st, "e4m3", f, 3, 1, &err), &err);
        CHECK(f[0] == 1.0f && f[1] == -448.0f && f[2] == 0x1p-9f);
        CHECK_OK(mt_safetensors_read_f32(st, "e8m0", f, 3, 1, &err), &err);
        CHECK(f[0] == 1.0f && f[1] == 8.0f && f[2] == 0x1p-127f);
        mt_safetensors_free(st);
    }
    st = NULL;
    CHECK(mt_safetensors_open(&st, D "does_not_exist.safetensors", &err) == MT_ENOTFOUND);
    CHECK(st == NULL);
}

static void test_dirs(void) {
    static const char *dirs[] = {D "sharded", D "globbed"};
    for (int k = 0; k < 2; k++) {
        mt_err err = {0};
        mt_safetensors *st = NULL;
        CHECK_OK(mt_safetensors_open_dir(&st, dirs[k], &err), &err);
        if (!st) continue;
        CHECK_EQ_INT(mt_safetensors_count(st), 4);
        CHECK_EQ_INT(mt_safetensors_nfiles(st), 2);
        const mt_tensor_view *t = mt_safetensors_get(st, "model.layers.1.w");
        CHECK(t && t->dtype == MT_I32 && t->shape[0] == 5 && load_exact(t, 4) == 5.0);
        t = mt_safetensors_get(st, "model.layers.0.w");
        CHECK(t && t->dtype == MT_F16 && load_exact(t, 0) == -1.25);
        t = mt_safetensors_get(st, "lm_head.weight");
        CHECK(t && t->ndim == 2 && load_exact(t, 3) == -0.5);
        CHECK(mt_safetensors_get(st, "model.embed.weight") != NULL);
        CHECK(strstr(mt_safetensors_file(st, 1), "model-00002-of-00002.safetensors") != NULL);
        CHECK_STR(json_string_value(json_object_get(mt_safetensors_metadata(st), "format")), "mlx");
        mt_safetensors_free(st);
        /* mt_safetensors_open on a directory delegates */
        st = NULL;
        CHECK_OK(mt_safetensors_open(&st, dirs[k], &err), &err);
        CHECK(st && mt_safetensors_count(st) == 4);
        mt_safetensors_free(st);
    }
    static const struct { const char *dir; int code; const char *msg; } bad[] = {
        {D "bad_dup_shards", MT_EFORMAT, "tensor 'b' appears in both"},
        {D "bad_missing_tensor", MT_EFORMAT, "tensor 'c' is listed in model-1.safetensors but missing there"},
        {D "bad_unsafe_name", MT_EFORMAT, "unsafe file name"},
        {D "bad_missing_file", MT_ENOTFOUND, "model-9.safetensors"},
    };
    for (size_t i = 0; i < 4; i++) {
        mt_err err = {0};
        mt_safetensors *st = NULL;
        int rc = mt_safetensors_open_dir(&st, bad[i].dir, &err);
        CHECK_MSG(rc == bad[i].code, "%s: rc %d (%s)", bad[i].dir, rc, err.msg);
        CHECK_MSG(strstr(err.msg, bad[i].msg) != NULL, "%s: message '%s'", bad[i].dir, err.msg);
        CHECK(st == NULL);
    }
    mt_err err = {0};
    mt_safetensors *st = NULL;
    CHECK(mt_safetensors_open_dir(&st, "tests/data", &err) == MT_ENOTFOUND);
    CHECK(strstr(err.msg, "no *.safetensors") != NULL);
}

static int code_of(const char *s) {
    if (!strcmp(s, "EFORMAT")) return MT_EFORMAT;
    if (!strcmp(s, "ELIMIT")) return MT_ELIMIT;
    if (!strcmp(s, "ENOTFOUND")) return MT_ENOTFOUND;
    return -1;
}

static void test_broken(void) {
    json_error_t je;
    json_t *man = json_load_file(D "broken/manifest.json", 0, &je);
    CHECK(json_is_array(man) && json_array_size(man) >= 20);
    size_t i;
    json_t *c;
    int n = 0;
    json_array_foreach(man, i, c) {
        const char *file = json_string_value(json_object_get(c, "file"));
        const char *msg = json_string_value(json_object_get(c, "msg"));
        int code = code_of(json_string_value(json_object_get(c, "code")));
        char path[256];
        snprintf(path, sizeof path, D "broken/%s", file);
        mt_err err = {0};
        mt_safetensors *st = NULL;
        int rc = mt_safetensors_open(&st, path, &err);
        CHECK_MSG(rc == code, "%s: rc %d, want %d (%s)", file, rc, code, err.msg);
        CHECK_MSG(strstr(err.msg, msg) != NULL, "%s: message '%s' lacks '%s'", file, err.msg, msg);
        CHECK_MSG(strstr(err.msg, file) != NULL, "%s: message '%s' does not name the file", file, err.msg);
        CHECK(st == NULL);
        n++;
    }
    CHECK(n >= 20);
    json_decref(man);
}

/* A header length over the limit, in a sparse file (no real disk use). */
static void test_limit(void) {
    char path[] = "/tmp/mt_st_limit_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    uint64_t hlen = (uint64_t)MT_ST_MAX_HEADER + 1;
    unsigned char h[8];
    for (int i = 0; i < 8; i++) h[i] = (unsigned char)(hlen >> (8 * i));
    CHECK(write(fd, h, 8) == 8);
    CHECK(ftruncate(fd, (off_t)(hlen + 64)) == 0);
    close(fd);
    mt_err err = {0};
    mt_safetensors *st = NULL;
    CHECK_EQ_INT(mt_safetensors_open(&st, path, &err), MT_ELIMIT);
    CHECK(strstr(err.msg, "exceeds the limit") != NULL);
    unlink(path);
}

/* In-memory images: parse_header directly, many tensors through the hash. */
static void test_mem(void) {
    enum { N = 1000 };
    size_t cap = N * 96 + 64;
    char *hdr = malloc(cap);
    size_t len = 0;
    len += (size_t)snprintf(hdr + len, cap - len, "{\"__metadata__\":{\"k\":\"v\"}");
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(hdr + len, cap - len, ",\"t.%d\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                                i, 4 * (N - 1 - i), 4 * (N - i));
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    size_t n = 8 + len + 4 * N;
    unsigned char *img = malloc(n);
    for (int i = 0; i < 8; i++) img[i] = (unsigned char)((uint64_t)len >> (8 * i));
    memcpy(img + 8, hdr, len);
    for (int i = 0; i < N; i++) { int32_t v = N - 1 - i; memcpy(img + 8 + len + 4 * i, &v, 4); }
    mt_err err = {0};
    mt_tensor_view *tv = NULL;
    size_t count = 0;
    json_t *meta = NULL;
    CHECK_OK(mt_safetensors_parse_header(img, n, "mem", &tv, &count, &meta, &err), &err);
    CHECK_EQ_INT(count, N);
    CHECK(meta && json_is_object(meta));
    CHECK_STR(tv ? tv[0].name : NULL, "t.0");
    json_decref(meta);
    free(tv);
    mt_safetensors *st = NULL;
    CHECK_OK(mt_safetensors_open_mem(&st, img, n, "mem", &err), &err);
    int ok = 1;
    for (int i = 0; i < N && st; i++) {
        char name[32];
        snprintf(name, sizeof name, "t.%d", i);
        const mt_tensor_view *t = mt_safetensors_get(st, name);
        int32_t v = -1;
        if (t) memcpy(&v, t->data, 4);
        ok &= t != NULL && v == i;
        snprintf(name, sizeof name, "t.%d", i + N);
        ok &= mt_safetensors_get(st, name) == NULL;
    }
    CHECK(ok);
    mt_safetensors_free(st);
    /* every truncation of the image fails cleanly (never crashes) */
    int fails = 0;
    for (size_t k = 0; k < 8 + len; k += 7) {
        st = NULL;
        if (mt_safetensors_open_mem(&st, img, k, "mem", &err) != MT_OK) fails++;
        mt_safetensors_free(st);
    }
    CHECK_EQ_INT(fails, (int)((8 + len + 6) / 7));
    /* corrupting the header length */
    img[0] ^= 0x01;
    st = NULL;
    CHECK(mt_safetensors_open_mem(&st, img, n, "mem", &err) == MT_EFORMAT);
    free(img);
    free(hdr);
}

/* mt_safetensors_set_renames: whole dot-separated segments renamed in order, then the prefix */
static void test_renames(void) {
    static const char *const stored[] = {"model.h.1.attn.c_attn.weight", "model.h.1.self_attn.qkv_projx.weight",
                                         "model.wte.weight", "lm.model.h.0.ln_1.weight"};
    char hdr[1024];
    size_t len = (size_t)snprintf(hdr, sizeof hdr, "{");
    for (int i = 0; i < 4; i++)
        len += (size_t)snprintf(hdr + len, sizeof hdr - len, "%s\"%s\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                                i ? "," : "", stored[i], 4 * i, 4 * i + 4);
    len += (size_t)snprintf(hdr + len, sizeof hdr - len, "}");
    size_t n = 8 + len + 16;
    unsigned char *img = calloc(1, n);
    for (int i = 0; i < 8; i++) img[i] = (unsigned char)((uint64_t)len >> (8 * i));
    memcpy(img + 8, hdr, len);
    for (int i = 0; i < 4; i++) { int32_t v = i; memcpy(img + 8 + len + 4 * i, &v, 4); }
    mt_err err = {0};
    mt_safetensors *st = NULL;
    CHECK_OK(mt_safetensors_open_mem(&st, img, n, "mem", &err), &err);
    static const char *const ren[] = {"model.layers", "model.h", "self_attn.qkv_proj", "attn.c_attn",
                                      "model.embed_tokens", "model.wte", "input_layernorm", "ln_1", NULL};
    mt_safetensors_set_renames(st, ren);
    const mt_tensor_view *t = mt_safetensors_get(st, "model.layers.1.self_attn.qkv_proj.weight");
    CHECK(t && !strcmp(t->name, stored[0]));
    t = mt_safetensors_get(st, "model.embed_tokens.weight");
    CHECK(t && !strcmp(t->name, stored[2]));
    /* "qkv_projx" is another segment: not renamed, found under its own name */
    t = mt_safetensors_get(st, "model.layers.1.self_attn.qkv_projx.weight");
    CHECK(t && !strcmp(t->name, stored[1]));
    CHECK(mt_safetensors_get(st, "model.h.1.attn.c_attn.weight") != NULL);   /* stored names still work */
    CHECK(mt_safetensors_get(st, "xmodel.layers.1.self_attn.qkv_proj.weight") == NULL);
    char buf[128];
    CHECK_STR(mt_safetensors_stored_name(st, "model.layers.0.input_layernorm.weight", buf, sizeof buf),
              "model.h.0.ln_1.weight");
    CHECK(mt_safetensors_stored_name(st, "model.layers.0.input_layernorm.weight", buf, 8) == NULL);
    /* renames first, then the prefix */
    CHECK_OK(mt_safetensors_set_prefix(st, "", "lm.", &err), &err);
    t = mt_safetensors_get(st, "model.layers.0.input_layernorm.weight");
    CHECK(t && !strcmp(t->name, stored[3]));
    /* the renames alone (config.json's per-module keys): no prefix */
    CHECK_STR(mt_safetensors_renamed(st, "model.layers.0.input_layernorm", buf, sizeof buf), "model.h.0.ln_1");
    CHECK(mt_safetensors_renamed(st, "model.layers.0.input_layernorm", buf, 6) == NULL);
    /* pairs apply in order, each to what the ones before made: a swap of two names (glm4) */
    static const char *const swap[] = {"post_attention_layernorm", "post_self_attn_layernorm",
                                       "pre_feedforward_layernorm", "post_attention_layernorm", NULL};
    mt_safetensors_set_renames(st, swap);
    CHECK_STR(mt_safetensors_renamed(st, "l.0.post_attention_layernorm", buf, sizeof buf), "l.0.post_self_attn_layernorm");
    CHECK_STR(mt_safetensors_renamed(st, "l.0.pre_feedforward_layernorm", buf, sizeof buf), "l.0.post_attention_layernorm");
    mt_safetensors_set_renames(st, NULL);
    CHECK(mt_safetensors_get(st, "model.h.0.ln_1.weight") != NULL && mt_safetensors_get(st, "model.layers.0.input_layernorm.weight") == NULL);
    mt_safetensors_free(st);
    free(img);
}

int main(void) {
    test_valid();
    test_dirs();
    test_broken();
    test_limit();
    test_mem();
    test_renames();
    return check_report("safetensors");
}
