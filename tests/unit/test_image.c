/* test_image.c - lib/image against Pillow (tests/gen/gen_image_goldens.py):
 * decoded RGB identical for every test image (PNG variants, JPEGs, EXIF
 * orientations); resizes with every filter identical (max abs difference 0);
 * rescale + normalize within 1e-6; bombs refused; every prefix and many
 * byte flips of small files give an error or the right image, never a crash;
 * the base64 / data-URL parser. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/file.h"
#include "image/image.h"
#include "image/resize.h"

#define DIR "tests/data/image/"

static char *gold_bin;
static size_t gold_n;

static const uint8_t *gold_at(json_t *o, size_t len) {
    size_t off = (size_t)json_integer_value(json_object_get(o, "offset"));
    if (off > gold_n || gold_n - off < len) return NULL;
    return (const uint8_t *)gold_bin + off;
}

static uint64_t fnv1a64(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static int max_diff(const uint8_t *a, const uint8_t *b, size_t n) {
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > m) m = d;
    }
    return m;
}

static char *b64_encode(const uint8_t *p, size_t n) {
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc(n / 3 * 4 + 8), *q = o;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *q++ = t[v >> 18]; *q++ = t[v >> 12 & 63]; *q++ = t[v >> 6 & 63]; *q++ = t[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *q++ = t[v >> 18]; *q++ = t[v >> 12 & 63]; *q++ = '='; *q++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *q++ = t[v >> 18]; *q++ = t[v >> 12 & 63]; *q++ = t[v >> 6 & 63]; *q++ = '=';
    }
    *q = 0;
    return o;
}

/* the decoded golden of a file, as an mt_image view (pixels borrowed) */
static int golden_image(json_t *g, const char *file, mt_image *im) {
    json_t *d;
    size_t i;
    json_array_foreach(json_object_get(g, "decode"), i, d) {
        if (strcmp(json_string_value(json_object_get(d, "file")), file) != 0) continue;
        im->w = (int)json_integer_value(json_object_get(d, "w"));
        im->h = (int)json_integer_value(json_object_get(d, "h"));
        im->rgb = (uint8_t *)gold_at(d, (size_t)im->w * im->h * 3);
        return im->rgb != NULL;
    }
    return 0;
}

static void test_decode(json_t *g) {
    json_t *d;
    size_t i;
    int files = 0, same = 0, worst = 0;
    json_array_foreach(json_object_get(g, "decode"), i, d) {
        const char *file = json_string_value(json_object_get(d, "file"));
        int w = (int)json_integer_value(json_object_get(d, "w")), h = (int)json_integer_value(json_object_get(d, "h"));
        const char *hash = json_string_value(json_object_get(d, "fnv1a64"));
        const uint8_t *want = hash ? NULL : gold_at(d, (size_t)w * h * 3);
        char path[256];
        snprintf(path, sizeof path, DIR "%s", file);
        mt_image im;
        mt_err err = {0};
        int rc = mt_image_load(&im, path, NULL, &err);
        CHECK_MSG(rc == MT_OK, "%s: %s", file, err.msg);
        files++;
        if (rc != MT_OK) continue;
        CHECK_MSG(im.w == w && im.h == h, "%s: %dx%d, Pillow %dx%d", file, im.w, im.h, w, h);
        if (im.w == w && im.h == h && hash) {   /* larger images: a hash of the decoded bytes */
            char got[17];
            snprintf(got, sizeof got, "%016llx", (unsigned long long)fnv1a64(im.rgb, (size_t)w * h * 3));
            CHECK_MSG(strcmp(got, hash) == 0, "%s: decoded bytes differ from Pillow's (hash)", file);
            same += strcmp(got, hash) == 0;
        } else if (im.w == w && im.h == h && want) {
            int md = max_diff(im.rgb, want, (size_t)w * h * 3);
            CHECK_MSG(md == 0, "%s (%s): max abs difference %d", file,
                      json_string_value(json_object_get(d, "pil_mode")), md);
            if (md > worst) worst = md;
            same += md == 0;
        }
        mt_image_clear(&im);
    }
    printf("image decode: %d/%d files identical to Pillow (max abs difference %d)\n", same, files, worst);
    CHECK(files >= 37);
}

static void test_decode_paths(json_t *g) {
    mt_err err = {0};
    char *buf = NULL;
    size_t n = 0;
    mt_image want;
    CHECK(golden_image(g, "rgba_33x17.png", &want));
    CHECK_OK(mt_read_file(DIR "rgba_33x17.png", &buf, &n, &err), &err);
    mt_image im;
    CHECK_OK(mt_image_decode(&im, buf, n, NULL, &err), &err);
    CHECK(im.w == 33 && im.h == 17 && memcmp(im.rgb, want.rgb, 33 * 17 * 3) == 0);
    mt_image_clear(&im);
    char *b = b64_encode((uint8_t *)buf, n);
    size_t bl = strlen(b);
    char *url = malloc(bl + 64);
    snprintf(url, bl + 64, "data:image/png;base64,%s", b);
    CHECK_OK(mt_image_load_base64(&im, url, strlen(url), NULL, &err), &err);
    CHECK(im.w == 33 && im.h == 17 && memcmp(im.rgb, want.rgb, 33 * 17 * 3) == 0);
    mt_image_clear(&im);
    CHECK_OK(mt_image_load_base64(&im, b, bl, NULL, &err), &err);   /* bare base64 */
    CHECK(im.w == 33 && im.h == 17 && memcmp(im.rgb, want.rgb, 33 * 17 * 3) == 0);
    mt_image_clear(&im);
    /* a data URL without ;base64 and garbage */
    CHECK_EQ_INT(mt_image_load_base64(&im, "data:image/png,abc", 18, NULL, &err), MT_EINVAL);
    CHECK_EQ_INT(mt_image_load_base64(&im, "a?bc", 4, NULL, &err), MT_EINVAL);
    CHECK_EQ_INT(mt_image_load_base64(&im, "QUJD", 4, NULL, &err), MT_EUNSUPPORTED);   /* "ABC" */
    CHECK(im.rgb == NULL && im.w == 0);
    uint8_t *p = NULL;
    size_t pn = 0;
    CHECK_OK(mt_base64_payload("  data:image/jpeg;base64,QU\nJD-_", 32, 0, &p, &pn, &err), &err);
    CHECK(pn == 4 && memcmp(p, "ABC\xfb", 4) == 0);   /* "-_" = 62, 63: URL-safe alphabet */
    free(p);
    CHECK_EQ_INT(mt_base64_payload("QUJDRA=", 7, 0, &p, &pn, &err), MT_OK);
    free(p);
    CHECK_EQ_INT(mt_base64_payload("Q", 1, 0, &p, &pn, &err), MT_EINVAL);
    CHECK_EQ_INT(mt_base64_payload("QU=JD", 5, 0, &p, &pn, &err), MT_EINVAL);
    CHECK_EQ_INT(mt_base64_payload("QUJDQUJD", 8, 4, &p, &pn, &err), MT_ELIMIT);
    CHECK(p == NULL);
    /* no_exif keeps the stored orientation (13x7 stays 13x7 for orientation 6) */
    mt_image_opts o = {.no_exif = 1};
    CHECK_OK(mt_image_load(&im, DIR "exif6_13x7.jpg", &o, &err), &err);
    CHECK(im.w == 13 && im.h == 7);
    mt_image_clear(&im);
    CHECK_OK(mt_image_load(&im, DIR "exif6_13x7.jpg", NULL, &err), &err);
    CHECK(im.w == 7 && im.h == 13);
    mt_image_clear(&im);
    /* errors name the file */
    CHECK(mt_image_load(&im, DIR "missing.png", NULL, &err) != MT_OK);
    CHECK(strstr(err.msg, "missing.png") != NULL);
    CHECK_EQ_INT(mt_image_load(&im, DIR "goldens.json", NULL, &err), MT_EUNSUPPORTED);
    CHECK(strstr(err.msg, "goldens.json") != NULL && strchr(err.msg, '\n') == NULL);
    free(url);
    free(b);
    free(buf);
}

static void test_bombs(void) {
    mt_image im;
    mt_err err = {0};
    CHECK_EQ_INT(mt_image_load(&im, DIR "bomb_50000x50000.png", NULL, &err), MT_ELIMIT);
    CHECK(strstr(err.msg, "50000x50000") != NULL);
    CHECK_EQ_INT(mt_image_load(&im, DIR "bomb_60000x60000.jpg", NULL, &err), MT_ELIMIT);
    CHECK(strstr(err.msg, "60000x60000") != NULL);
    mt_image_opts o = {.max_pixels = 64 * 48 - 1};
    CHECK_EQ_INT(mt_image_load(&im, DIR "rgb_64x48.png", &o, &err), MT_ELIMIT);
    CHECK_EQ_INT(mt_image_load(&im, DIR "baseline_64x48.jpg", &o, &err), MT_ELIMIT);
    o.max_pixels = 64 * 48;
    CHECK_OK(mt_image_load(&im, DIR "rgb_64x48.png", &o, &err), &err);
    mt_image_clear(&im);
    mt_image_opts ob = {.max_bytes = 100};
    CHECK_EQ_INT(mt_image_load(&im, DIR "rgb_64x48.png", &ob, &err), MT_ELIMIT);
    CHECK(im.rgb == NULL);
}

/* every prefix and byte flips of a file: an error, or (prefixes) exactly the full
 * image (a PNG missing only its IEND decodes, as in Pillow); never a crash */
static void test_corrupt(const char *file) {
    char path[256], *buf = NULL;
    size_t n = 0;
    mt_err err = {0};
    snprintf(path, sizeof path, DIR "%s", file);
    CHECK_OK(mt_read_file(path, &buf, &n, &err), &err);
    mt_image full;
    CHECK_OK(mt_image_decode(&full, buf, n, NULL, &err), &err);
    int errors = 0, whole = 0, wrong = 0, multiline = 0;
    for (size_t k = 0; k < n; k++) {
        uint8_t *cp = malloc(k ? k : 1);   /* exact-size copy: ASan sees any overread */
        memcpy(cp, buf, k);
        mt_image im;
        int rc = mt_image_decode(&im, cp, k, NULL, &err);
        if (rc != MT_OK) {
            errors++;
            if (strchr(err.msg, '\n') || !err.msg[0]) multiline++;
        } else if (im.w == full.w && im.h == full.h && memcmp(im.rgb, full.rgb, (size_t)im.w * im.h * 3) == 0) {
            whole++;
        } else {
            wrong++;
        }
        mt_image_clear(&im);
        free(cp);
    }
    CHECK_MSG(wrong == 0 && multiline == 0, "%s: %d prefixes decoded wrongly, %d bad messages", file, wrong, multiline);
    CHECK_MSG(errors >= (int)n - 16, "%s: only %d of %zu prefixes refused", file, errors, n);
    int ok = 0, bad = 0;
    uint8_t *cp = malloc(n);
    for (size_t k = 0; k < n; k++) {
        for (int f = 0; f < 2; f++) {
            memcpy(cp, buf, n);
            cp[k] ^= f ? 0xFF : 0x01 << (k % 8);
            mt_image im;
            if (mt_image_decode(&im, cp, n, NULL, &err) == MT_OK) {
                ok++;
                if (!im.rgb || im.w < 1 || im.h < 1) bad++;
            }
            mt_image_clear(&im);
        }
    }
    CHECK(bad == 0);
    printf("image corrupt %s: %zu prefixes (%d refused, %d the whole image), %zu flips (%d still decode)\n", file,
           n, errors, whole, 2 * n, ok);
    free(cp);
    mt_image_clear(&full);
    free(buf);
}

static void test_resize(json_t *g) {
    json_t *r;
    size_t i;
    int worst[6] = {0}, cases[6] = {0}, bad = 0;
    json_array_foreach(json_object_get(g, "resize"), i, r) {
        const char *src = json_string_value(json_object_get(r, "src"));
        int f = (int)json_integer_value(json_object_get(r, "filter"));
        int w = (int)json_integer_value(json_object_get(r, "w")), h = (int)json_integer_value(json_object_get(r, "h"));
        mt_image in, out;
        mt_err err = {0};
        if (!golden_image(g, src, &in) || f < 0 || f > 5) {
            CHECK_MSG(0, "bad golden entry %zu", i);
            continue;
        }
        const uint8_t *want = gold_at(r, (size_t)w * h * 3);
        CHECK_OK(mt_image_resize(&out, &in, w, h, f, &err), &err);
        if (!out.rgb || !want) continue;
        int md = max_diff(out.rgb, want, (size_t)w * h * 3);
        CHECK_MSG(md == 0, "%s %dx%d -> %dx%d %s: max abs difference %d", src, in.w, in.h, w, h,
                  mt_resample_name(f), md);
        bad += md != 0;
        if (md > worst[f]) worst[f] = md;
        cases[f]++;
        mt_image_clear(&out);
    }
    printf("image resize: %zu cases against Pillow, %d differ; max abs difference", json_array_size(json_object_get(g, "resize")), bad);
    for (int f = 0; f < 6; f++) printf(" %s %d (%d)", mt_resample_name(f), worst[f], cases[f]);
    printf("\n");
    /* argument errors */
    mt_image in = {2, 2, (uint8_t[12]){0}}, out;
    mt_err err = {0};
    CHECK_EQ_INT(mt_image_resize(&out, &in, 0, 3, 2, &err), MT_EINVAL);
    CHECK_EQ_INT(mt_image_resize(&out, &in, 3, 3, 6, &err), MT_EINVAL);
    CHECK_EQ_INT(mt_image_resize(&out, &in, 100000, 100000, 2, &err), MT_ELIMIT);
    CHECK(out.rgb == NULL);
    CHECK_STR(mt_resample_name(1), "lanczos");
}

/* Pillow <= 12 always runs the horizontal pass first (MT_RESIZE_ORDER_HFIRST) */
static void test_resize_pil12(json_t *g) {
    json_t *r;
    size_t i, n = json_array_size(json_object_get(g, "resize_pil12"));
    int bad = 0, worst = 0, differ13 = 0;
    json_array_foreach(json_object_get(g, "resize_pil12"), i, r) {
        const char *src = json_string_value(json_object_get(r, "src"));
        int f = (int)json_integer_value(json_object_get(r, "filter"));
        int w = (int)json_integer_value(json_object_get(r, "w")), h = (int)json_integer_value(json_object_get(r, "h"));
        mt_image in, out, out13;
        mt_err err = {0};
        if (!golden_image(g, src, &in)) {
            CHECK_MSG(0, "bad pil12 entry %zu", i);
            continue;
        }
        const uint8_t *want = gold_at(r, (size_t)w * h * 3);
        CHECK_OK(mt_image_resize_order(&out, &in, w, h, f, MT_RESIZE_ORDER_HFIRST, &err), &err);
        CHECK_OK(mt_image_resize(&out13, &in, w, h, f, &err), &err);
        if (!out.rgb || !out13.rgb || !want) continue;
        int md = max_diff(out.rgb, want, (size_t)w * h * 3);
        CHECK_MSG(md == 0, "Pillow 12: %s -> %dx%d %s: max abs difference %d", src, w, h, mt_resample_name(f), md);
        bad += md != 0;
        if (md > worst) worst = md;
        differ13 += memcmp(out.rgb, out13.rgb, (size_t)w * h * 3) != 0;
        mt_image_clear(&out);
        mt_image_clear(&out13);
    }
    if (n)
        printf("image resize (Pillow %s order): %zu cases, %d differ, max abs difference %d (%d differ from Pillow 13's)\n",
               json_string_value(json_object_get(g, "pil12_version")), n, bad, worst, differ13);
    mt_err err = {0};
    mt_image in = {2, 2, (uint8_t[12]){0}}, out;
    CHECK_EQ_INT(mt_image_resize_order(&out, &in, 3, 3, 2, 7, &err), MT_EINVAL);
}

static void test_normalize(json_t *g) {
    json_t *r;
    size_t i;
    json_array_foreach(json_object_get(g, "normalize"), i, r) {
        const char *src = json_string_value(json_object_get(r, "src"));
        int f = (int)json_integer_value(json_object_get(r, "filter"));
        int w = (int)json_integer_value(json_object_get(r, "w")), h = (int)json_integer_value(json_object_get(r, "h"));
        double mean[3], std[3], scale = json_real_value(json_object_get(r, "scale"));
        for (int c = 0; c < 3; c++) {
            mean[c] = json_number_value(json_array_get(json_object_get(r, "mean"), c));
            std[c] = json_number_value(json_array_get(json_object_get(r, "std"), c));
        }
        mt_image in, out;
        mt_err err = {0};
        CHECK(golden_image(g, src, &in));
        CHECK_OK(mt_image_resize(&out, &in, w, h, f, &err), &err);
        size_t nv = (size_t)3 * w * h;
        float *v = malloc(nv * sizeof *v);
        CHECK_OK(mt_image_to_chw(v, &out, 1, scale, 1, mean, std, &err), &err);
        const uint8_t *want = gold_at(r, nv * 4);
        double md = 0;
        size_t exact = 0;
        for (size_t k = 0; want && k < nv; k++) {
            float x;
            memcpy(&x, want + 4 * k, 4);
            double d = fabs((double)x - v[k]);
            if (d > md) md = d;
            exact += x == v[k];
        }
        CHECK_MSG(want && md <= 1e-6, "%s: max abs difference %g", src, md);
        printf("image normalize %s %dx%d %s: max abs difference %g (%zu/%zu floats bit-identical)\n", src, w, h,
               mt_resample_name(f), md, exact, nv);
        free(v);
        mt_image_clear(&out);
    }
    double z[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    mt_image in = {1, 1, (uint8_t[3]){1, 2, 3}};
    float v[3];
    mt_err err = {0};
    CHECK_EQ_INT(mt_image_to_chw(v, &in, 1, 1.0 / 255, 1, z, z, &err), MT_EINVAL);
    CHECK_OK(mt_image_to_chw(v, &in, 0, 0, 0, z, one, &err), &err);
    CHECK(v[0] == 1.0f && v[1] == 2.0f && v[2] == 3.0f);
}

static void test_exif_parser(void) {
    uint8_t le[] = {'I', 'I', 42, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0};
    CHECK_EQ_INT(mt_exif_orientation(le, sizeof le), 6);
    uint8_t be[] = {'M', 'M', 0, 42, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 3, 0, 0};
    CHECK_EQ_INT(mt_exif_orientation(be, sizeof be), 3);
    CHECK_EQ_INT(mt_exif_orientation(be, sizeof be - 5), 1);   /* entry cut */
    be[19] = 9;
    CHECK_EQ_INT(mt_exif_orientation(be, sizeof be), 1);       /* out of range */
    uint8_t huge[] = {'I', 'I', 42, 0, 0xff, 0xff, 0xff, 0xff};
    CHECK_EQ_INT(mt_exif_orientation(huge, sizeof huge), 1);
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
        test_decode(g);
        test_decode_paths(g);
        test_resize(g);
        test_resize_pil12(g);
        test_normalize(g);
    }
    test_bombs();
    test_exif_parser();
    test_corrupt("interlaced_rgb_29x19.png");
    test_corrupt("palette_trns_17x5.png");
    test_corrupt("tiny_3x7.jpg");
    test_corrupt("progressive_37x23.jpg");
    json_decref(g);
    free(js);
    free(gold_bin);
    return check_report("test_image");
}
