/* test_vlm_proc.c - lib/image/processor against the Python reference
 * (tests/gen/gen_vlm_proc_goldens.py: transformers' PIL-backend image processors,
 * mlx-vlm's numpy Qwen port and mlx-vlm's processors' prompt expansion).  For every
 * (config, image) case: the settings read from the config folder, the 8-bit images
 * before rescale identical (bytes or FNV-1a hashes), the split grid / crops / Qwen
 * grid identical, the float tensors within 1e-6 (in full for small cases, by sum
 * otherwise), the token count and the expanded text identical, and the reference's
 * errors (Qwen's aspect ratio limit) reproduced.  Then the settings and error paths
 * without goldens. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/file.h"
#include "image/image.h"
#include "image/processor.h"
#include "image/resize.h"

#define DIR "tests/data/vlm-proc/"

static char *gold_bin;
static size_t gold_n;

static const uint8_t *gold_at(json_t *o, size_t len) {
    if (!o) return NULL;
    size_t off = (size_t)json_integer_value(json_object_get(o, "offset"));
    size_t n = (size_t)json_integer_value(json_object_get(o, "len"));
    if (n != len || off > gold_n || gold_n - off < len) return NULL;
    return (const uint8_t *)gold_bin + off;
}

static uint64_t fnv1a64(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static int geti(json_t *o, const char *k) { return (int)json_integer_value(json_object_get(o, k)); }

typedef struct stats {
    int cases, u8_same, u8_images, f32_full, f32_sum, texts, errors;
    int u8_worst;
    double f32_worst, sum_worst;
} stats;

static void check_case(json_t *c, stats *st) {
    const char *cfg = json_string_value(json_object_get(c, "cfg"));
    const char *mt = json_string_value(json_object_get(c, "model_type"));
    const char *path = json_string_value(json_object_get(c, "image"));
    char dir[256];
    snprintf(dir, sizeof dir, DIR "cfg/%s", cfg);
    mt_err err = {0};
    mt_vlm_proc p;
    int rc = mt_vlm_proc_load(&p, dir, mt, &err);
    CHECK_MSG(rc == MT_OK, "%s: %s", cfg, err.msg);
    if (rc) return;
    mt_image img;
    rc = mt_vlm_image_load(&p, &img, path, NULL, &err);
    CHECK_MSG(rc == MT_OK, "%s: %s", path, err.msg);
    if (rc) return;
    st->cases++;
    const char *want_err = json_string_value(json_object_get(c, "error"));
    mt_vlm_images im;
    rc = mt_vlm_images_make(&p, &img, &im, &err);
    if (want_err) {
        CHECK_MSG(rc == MT_EINVAL, "%s %s: reference fails (%s), we gave %d", cfg, path, want_err, rc);
        mt_vlm_pixels px;
        CHECK(mt_vlm_preprocess(&p, &img, &px, &err) == MT_EINVAL && px.data == NULL);
        st->errors++;
        mt_image_clear(&img);
        return;
    }
    CHECK_MSG(rc == MT_OK, "%s %s: %s", cfg, path, err.msg);
    if (rc) {
        mt_image_clear(&img);
        return;
    }
    int n = geti(c, "n"), h = geti(c, "h"), w = geti(c, "w");
    CHECK_MSG(im.n == n && im.img[0].h == h && im.img[0].w == w, "%s %s: %d images %dx%d, reference %d %dx%d", cfg,
              path, im.n, im.img[0].w, im.img[0].h, n, w, h);
    CHECK_MSG(im.rows == geti(c, "rows") && im.cols == geti(c, "cols") && im.n_crops == geti(c, "n_crops"),
              "%s %s: grid %dx%d crops %d, reference %dx%d crops %d", cfg, path, im.rows, im.cols, im.n_crops,
              geti(c, "rows"), geti(c, "cols"), geti(c, "n_crops"));
    if (im.n == n && im.img[0].h == h && im.img[0].w == w) {
        size_t per = (size_t)h * w * 3;
        const uint8_t *want = gold_at(json_object_get(c, "u8"), per * n);
        json_t *hashes = json_object_get(c, "u8_fnv");
        CHECK_MSG(want || hashes, "%s %s: no u8 golden", cfg, path);
        for (int i = 0; i < n; i++) {
            int same;
            if (want) {
                int md = 0;
                for (size_t k = 0; k < per; k++) {
                    int d = abs((int)im.img[i].rgb[k] - (int)want[per * i + k]);
                    if (d > md) md = d;
                }
                if (md > st->u8_worst) st->u8_worst = md;
                same = md == 0;
                CHECK_MSG(same, "%s %s: image %d: max abs difference %d", cfg, path, i, md);
            } else {
                char got[17];
                snprintf(got, sizeof got, "%016llx", (unsigned long long)fnv1a64(im.img[i].rgb, per));
                same = !strcmp(got, json_string_value(json_array_get(hashes, (size_t)i)));
                if (!same) st->u8_worst = st->u8_worst > 1 ? st->u8_worst : 1;
                CHECK_MSG(same, "%s %s: image %d differs (hash)", cfg, path, i);
            }
            st->u8_images++;
            st->u8_same += same;
        }
    }
    mt_vlm_images_free(&im);

    mt_vlm_pixels px;
    rc = mt_vlm_preprocess(&p, &img, &px, &err);
    CHECK_MSG(rc == MT_OK, "%s %s: %s", cfg, path, err.msg);
    mt_image_clear(&img);
    if (rc) return;
    json_t *shape = json_object_get(c, "f32_shape");
    size_t nf = 1;
    for (size_t i = 0; i < json_array_size(shape); i++) nf *= (size_t)json_integer_value(json_array_get(shape, i));
    json_t *grid = json_object_get(c, "grid");
    if (p.kind == MT_PROC_QWEN2VL) {
        CHECK_EQ_INT(px.n_patches, json_integer_value(json_array_get(shape, 0)));
        CHECK_EQ_INT(px.patch_dim, json_integer_value(json_array_get(shape, 1)));
        CHECK(grid && px.grid_t == json_integer_value(json_array_get(grid, 0)) &&
              px.grid_h == json_integer_value(json_array_get(grid, 1)) &&
              px.grid_w == json_integer_value(json_array_get(grid, 2)));
    } else {
        CHECK_EQ_INT((size_t)px.n * 3 * px.h * px.w, nf);
    }
    size_t have = p.kind == MT_PROC_QWEN2VL ? px.n_patches * px.patch_dim : (size_t)px.n * 3 * px.h * px.w;
    if (have == nf) {
        const uint8_t *want = gold_at(json_object_get(c, "f32"), nf * sizeof(float));   /* not aligned */
        if (want) {
            double md = 0;
            for (size_t k = 0; k < nf; k++) {
                float wk;
                memcpy(&wk, want + k * sizeof wk, sizeof wk);
                double d = fabs((double)px.data[k] - (double)wk);
                if (d > md || d != d) md = d != d ? INFINITY : d;
            }
            CHECK_MSG(md <= 1e-6, "%s %s: float max abs difference %g", cfg, path, md);
            if (md > st->f32_worst) st->f32_worst = md;
            st->f32_full++;
        }
        /* sums: plain, absolute, and weighted by position (1 + (k mod 7919) / 7919: the order counts) */
        double s = 0, a = 0, o = 0;
        for (size_t k = 0; k < nf; k++)
            s += px.data[k], a += fabs(px.data[k]), o += px.data[k] * (1 + (double)(k % 7919) / 7919.0);
        double ws = json_real_value(json_object_get(c, "f32_sum")), wa = json_real_value(json_object_get(c, "f32_abs"));
        double wo = json_real_value(json_object_get(c, "f32_wsum"));
        double ds = fabs(s - ws) / (wa > 1 ? wa : 1), da = fabs(a - wa) / (wa > 1 ? wa : 1);
        double dw = fabs(o - wo) / (wa > 1 ? wa : 1);
        if (dw > ds) ds = dw;
        CHECK_MSG(ds <= 1e-9 && da <= 1e-9, "%s %s: float sums %.9g / %.9g / %.9g, reference %.9g / %.9g / %.9g", cfg,
                  path, s, a, o, ws, wa, wo);
        if (ds > st->sum_worst) st->sum_worst = ds;
        st->f32_sum++;
    }
    char *text = NULL;
    CHECK_OK(mt_vlm_image_text(&p, &px, &text, &err), &err);
    json_t *tg = json_object_get(c, "text");
    size_t tl = (size_t)json_integer_value(json_object_get(tg, "len"));
    const uint8_t *wt = gold_at(tg, tl);
    int same = text && wt && strlen(text) == tl && memcmp(text, wt, tl) == 0;
    CHECK_MSG(same, "%s %s: text differs (%zu bytes, reference %zu)", cfg, path, text ? strlen(text) : 0, tl);
    st->texts += same;
    /* the count agrees with the text: one token per placeholder string */
    if (text) {
        const char *tok = p.text_kind == MT_VLM_TEXT_QWEN     ? "<|image_pad|>"
                          : p.text_kind == MT_VLM_TEXT_GEMMA3 ? "<image_soft_token>"
                                                              : "<image>";
        long cnt = 0;
        for (const char *q = text; (q = strstr(q, tok)); q += strlen(tok)) cnt++;
        CHECK_MSG(cnt == mt_vlm_image_tokens(&p, &px), "%s %s: %ld tokens in the text, %ld counted", cfg, path, cnt,
                  mt_vlm_image_tokens(&p, &px));
    }
    free(text);
    mt_vlm_pixels_free(&px);
}

static void test_goldens(json_t *g) {
    stats st = {0};
    json_t *c;
    size_t i;
    json_array_foreach(json_object_get(g, "cases"), i, c) check_case(c, &st);
    printf("vlm proc: %d cases (%d reference errors reproduced); %d/%d 8-bit images identical (max abs diff %d); "
           "%d float tensors in full (max abs diff %g), %d by sum (worst rel %g); %d texts identical\n",
           st.cases, st.errors, st.u8_same, st.u8_images, st.u8_worst, st.f32_full, st.f32_worst, st.f32_sum,
           st.sum_worst, st.texts);
    CHECK(st.cases >= 250);
    printf("reference: transformers %s, mlx-vlm %s, Pillow %s\n",
           json_string_value(json_object_get(g, "transformers")), json_string_value(json_object_get(g, "mlx_vlm")),
           json_string_value(json_object_get(g, "pillow")));
}

/* the settings read from the real configs */
static void test_load(void) {
    mt_err err = {0};
    mt_vlm_proc p;
    CHECK_OK(mt_vlm_proc_load(&p, DIR "cfg/smolvlm256m", "idefics3", &err), &err);
    CHECK(p.kind == MT_PROC_IDEFICS3 && p.longest_edge == 2048 && p.tile == 512 && p.image_seq_len == 64 &&
          p.resample == MT_RESAMPLE_LANCZOS && p.do_image_splitting);
    CHECK_OK(mt_vlm_proc_load(&p, DIR "cfg/idefics3_8b", "idefics3", &err), &err);
    CHECK(p.longest_edge == 1456 && p.tile == 364 && p.image_seq_len == 169);
    CHECK_OK(mt_vlm_proc_load(&p, DIR "cfg/smolvlm2_nested", "smolvlm", &err), &err);
    CHECK(p.longest_edge == 64 && p.tile == 26 && p.resample == MT_RESAMPLE_BOX && p.image_seq_len == 4);
    CHECK_OK(mt_vlm_proc_load(&p, DIR "cfg/gemma3", "gemma3", &err), &err);
    CHECK(p.kind == MT_PROC_SIGLIP && p.height == 896 && p.width == 896 && p.resample == MT_RESAMPLE_BILINEAR &&
          !p.do_pan_and_scan && p.image_seq_len == 256);
    CHECK_OK(mt_vlm_proc_load(&p, DIR "cfg/paligemma224", "paligemma", &err), &err);
    CHECK(p.height == 224 && p.resample == MT_RESAMPLE_BICUBIC && p.image_seq_len == 256);
    CHECK_OK(mt_vlm_proc_load(&p, DIR "cfg/llava15", "llava", &err), &err);
    CHECK(p.kind == MT_PROC_CLIP && p.shortest_edge == 336 && p.crop_h == 336 && p.tok_patch == 14 &&
          p.tok_additional == 1 && p.tok_select_default);
    CHECK_OK(mt_vlm_proc_load(&p, DIR "cfg/qwen2vl", "qwen2_vl", &err), &err);
    CHECK(p.kind == MT_PROC_QWEN2VL && p.patch == 14 && p.merge == 2 && p.temporal_patch == 2 &&
          p.min_pixels == 3136 && p.max_pixels == 12845056 && p.mean[0] == 0.48145466);
    CHECK_OK(mt_vlm_proc_load(&p, DIR "cfg/qwen25vl", "qwen2_5_vl", &err), &err);
    CHECK(p.min_pixels == 3136 && p.max_pixels == 40000);   /* processor_config.json's nested value wins */
    CHECK_OK(mt_vlm_proc_load(&p, DIR "cfg/qwen_min", "qwen2_vl", &err), &err);
    CHECK(p.min_pixels == 20000 && p.max_pixels == 2000000);   /* explicit min_pixels beats size.shortest_edge */
    CHECK_OK(mt_vlm_proc_load(&p, DIR "cfg/qwen_max", "qwen2_vl", &err), &err);
    CHECK(p.max_pixels == 5000 && p.mean[0] == 0.5 && p.std[2] == 0.5);   /* the port's fallbacks */

    CHECK_EQ_INT(mt_vlm_proc_load(&p, DIR "cfg/gemma3", "mllama", &err), MT_EUNSUPPORTED);
    CHECK_EQ_INT(mt_vlm_proc_load(&p, DIR "no-such-dir", "gemma3", &err), MT_ENOTFOUND);
    /* a Qwen folder without files takes the port's defaults */
    CHECK_OK(mt_vlm_proc_load(&p, DIR "no-such-dir", "qwen2_vl", &err), &err);
    CHECK(p.min_pixels == 3136 && p.max_pixels == 1003520);
}

/* settings built in code, and the error paths */
static void test_defaults_and_errors(void) {
    mt_err err = {0};
    mt_vlm_proc p;
    uint8_t px3[3 * 6] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160, 170, 180};
    mt_image img = {3, 2, px3};
    mt_vlm_pixels out;
    CHECK_OK(mt_vlm_proc_defaults(&p, "idefics3", &err), &err);
    p.longest_edge = 40;
    p.tile = 16;
    CHECK_OK(mt_vlm_preprocess(&p, &img, &out, &err), &err);
    CHECK(out.n == 7 && out.rows == 2 && out.cols == 3 && out.h == 16 && out.w == 16);   /* 48x32 -> 3x2 + global */
    CHECK_EQ_INT(mt_vlm_image_tokens(&p, &out), 169 * 7);
    mt_vlm_pixels_free(&out);
    mt_vlm_pixels_free(&out);   /* idempotent */
    mt_vlm_pixels_free(NULL);
    p.std[1] = 0;
    CHECK_EQ_INT(mt_vlm_preprocess(&p, &img, &out, &err), MT_EINVAL);
    CHECK(out.data == NULL);
    CHECK_OK(mt_vlm_proc_defaults(&p, "gemma3", &err), &err);
    p.resample = 9;
    CHECK_EQ_INT(mt_vlm_preprocess(&p, &img, &out, &err), MT_EINVAL);
    CHECK_OK(mt_vlm_proc_defaults(&p, "qwen2_vl", &err), &err);
    p.min_pixels = 0;
    uint8_t one[3] = {1, 2, 3};
    mt_image tiny = {1, 1, one};
    CHECK_EQ_INT(mt_vlm_preprocess(&p, &tiny, &out, &err), MT_EINVAL);   /* smart_resize gives 0x0 */
    mt_image empty = {0, 0, NULL};
    CHECK_OK(mt_vlm_proc_defaults(&p, "llava", &err), &err);
    CHECK_EQ_INT(mt_vlm_preprocess(&p, &empty, &out, &err), MT_EINVAL);
    /* llava with the class defaults: 224 crop, patch 14, no extra token -> 256 */
    CHECK_OK(mt_vlm_preprocess(&p, &img, &out, &err), &err);
    CHECK(out.n == 1 && out.h == 224 && out.w == 224);
    CHECK_EQ_INT(mt_vlm_image_tokens(&p, &out), 256);
    mt_vlm_pixels_free(&out);
    CHECK_EQ_INT(mt_vlm_proc_defaults(&p, NULL, &err), MT_EINVAL);
}

/* the PNG colour keys transformers' convert_to_rgb whitens */
static void test_color_key(void) {
    const struct {
        const char *file;
        int has;
        unsigned char key[3];
    } cases[] = {
        {DIR "trns_l8_9x6.png", 1, {60, 60, 60}},      {DIR "trns_rgb8_9x6.png", 1, {60, 30, 195}},
        {DIR "trns_psimple_9x6.png", 1, {70, 80, 90}}, {DIR "trns_pmulti_9x6.png", 0, {0, 0, 0}},
        {DIR "trns_bilevel_9x6.png", 0, {0, 0, 0}},    {DIR "trns_i16_9x6.png", 0, {0, 0, 0}},
        {"tests/data/image/palette_trns_17x5.png", 1, {124, 147, 121}},
        {"tests/data/image/rgba_33x17.png", 0, {0, 0, 0}}, {"tests/data/image/tiny_3x7.jpg", 0, {0, 0, 0}},
    };
    mt_err err = {0};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *buf = NULL;
        size_t n = 0;
        CHECK_OK(mt_read_file(cases[i].file, &buf, &n, &err), &err);
        unsigned char key[3] = {0, 0, 0};
        int has = mt_vlm_color_key(buf, n, key);
        CHECK_MSG(has == cases[i].has && (!has || memcmp(key, cases[i].key, 3) == 0), "%s: %d (%d,%d,%d)",
                  cases[i].file, has, key[0], key[1], key[2]);
        for (size_t k = 0; k < n; k++) mt_vlm_color_key(buf, k, key);   /* every prefix: no overread */
        free(buf);
    }
    CHECK(mt_vlm_color_key(NULL, 0, (unsigned char[3]){0}) == 0);
    /* a config with do_convert_rgb false keeps the key's pixels; NULL settings too */
    mt_vlm_proc p;
    mt_image a, b;
    CHECK_OK(mt_vlm_proc_defaults(&p, "llava", &err), &err);
    CHECK_OK(mt_vlm_image_load(&p, &a, DIR "trns_rgb8_9x6.png", NULL, &err), &err);
    CHECK_OK(mt_vlm_image_load(NULL, &b, DIR "trns_rgb8_9x6.png", NULL, &err), &err);
    int white = 0, keyed = 0;
    for (int i = 0; a.rgb && b.rgb && i < a.w * a.h; i++) {
        white += a.rgb[3 * i] == 255 && a.rgb[3 * i + 1] == 255 && a.rgb[3 * i + 2] == 255;
        keyed += b.rgb[3 * i] == 60 && b.rgb[3 * i + 1] == 30 && b.rgb[3 * i + 2] == 195;
    }
    CHECK(keyed > 0 && white == keyed);
    mt_image_clear(&a);
    mt_image_clear(&b);
    CHECK_EQ_INT(mt_vlm_image_load(&p, &a, DIR "no-such.png", NULL, &err), MT_ENOTFOUND);
    CHECK(a.rgb == NULL && strstr(err.msg, "no-such.png"));
}

/* malformed config files */
static void test_bad_configs(void) {
    const char *base = "build-proc-test-vlm-proc.tmp";
    mt_err err = {0};
    char path[512];
    const struct {
        const char *json;
        int rc;
    } cases[] = {
        {"{\"size\": {\"longest_edge\": \"big\"}}", MT_EFORMAT},
        {"{\"resample\": 1.5}", MT_EFORMAT},
        {"{\"image_mean\": [0.5, 0.5]}", MT_EFORMAT},
        {"{\"max_image_size\": 7}", MT_EFORMAT},
        {"{\"max_image_size\": {\"longest_edge\": 0}}", MT_OK},   /* 0 = absent: the default */
        {"{\"max_image_size\": {\"longest_edge\": -5}}", MT_EINVAL},
        {"{\"size\": {\"height\": 10}}", MT_EUNSUPPORTED},
        {"{\"resample\": 6}", MT_EINVAL},
        {"[1, 2]", MT_EFORMAT},
        {"{\"size\": ", MT_EFORMAT},
        {"{\"size\": null, \"resample\": null, \"image_std\": 0.25}", MT_OK},
    };
    mt_mkdirs(base, &err);
    snprintf(path, sizeof path, "%s/preprocessor_config.json", base);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        CHECK_OK(mt_write_file_atomic(path, cases[i].json, strlen(cases[i].json), &err), &err);
        mt_vlm_proc p;
        int rc = mt_vlm_proc_load(&p, base, "idefics3", &err);
        CHECK_MSG(rc == cases[i].rc, "%s: %d (%s), want %d", cases[i].json, rc, err.msg, cases[i].rc);
        if (rc == MT_OK && i == sizeof cases / sizeof *cases - 1) CHECK(p.std[0] == 0.25 && p.longest_edge == 1456);
    }
    mt_remove_tree(base);
}

int main(void) {
    mt_err err = {0};
    char *js = NULL;
    size_t jn = 0;
    CHECK_OK(mt_read_file(DIR "goldens.json", &js, &jn, &err), &err);
    CHECK_OK(mt_read_file(DIR "goldens.bin.zst", &gold_bin, &gold_n, &err), &err);
    json_error_t je;
    json_t *g = js ? json_loadb(js, jn, 0, &je) : NULL;
    CHECK(g != NULL);
    if (g && gold_bin) {
        CHECK_EQ_INT(gold_n, json_integer_value(json_object_get(g, "bin_size")));
        test_goldens(g);
    }
    test_load();
    test_defaults_and_errors();
    test_bad_configs();
    test_color_key();
    json_decref(g);
    free(js);
    free(gold_bin);
    return check_report("test_vlm_proc");
}
