/* test_convert.c - mlx-quant conversion against mlx_lm.convert goldens
 * (tests/data/convert/goldens.txt.zst, made by tests/gen/gen_convert_goldens.py):
 * every written safetensors file, config.json and index must be byte-identical.
 * Also: the libstdc++ hash/order emulation, Python float repr, the safetensors
 * header writer, the GPU quantize rule on an all-negative group, inspect. */
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "convert/convert.h"
#include "convert/gguf.h"
#include "convert/inspect.h"
#include "core/file.h"
#include "io/safetensors.h"
#include "io/st_write.h"

#define OK(expr) CHECK((expr) == 0)

/* ---- SHA-256 (FIPS 180-4), for comparing with the goldens ---- */
typedef struct sha256 {
    uint32_t h[8];
    unsigned char buf[64];
    size_t nbuf;
    uint64_t len;
} sha256;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(sha256 *s, const unsigned char *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    s->h[0] += a, s->h[1] += b, s->h[2] += c, s->h[3] += d, s->h[4] += e, s->h[5] += f, s->h[6] += g, s->h[7] += h;
}

static void sha_init(sha256 *s) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->nbuf = 0, s->len = 0;
}

static void sha_update(sha256 *s, const void *data, size_t n) {
    const unsigned char *p = data;
    s->len += n;
    while (n) {
        size_t k = 64 - s->nbuf < n ? 64 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, k);
        s->nbuf += k, p += k, n -= k;
        if (s->nbuf == 64) sha_block(s, s->buf), s->nbuf = 0;
    }
}

static void sha_hex(sha256 *s, char out[65]) {
    uint64_t bits = s->len * 8;
    unsigned char pad = 0x80, z = 0, lb[8];
    sha_update(s, &pad, 1);
    while (s->nbuf != 56) sha_update(s, &z, 1);
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha_update(s, lb, 8);
    for (int i = 0; i < 8; i++) sprintf(out + 8 * i, "%08x", s->h[i]);
}

static void sha_of(const void *p, size_t n, char out[65]) {
    sha256 s;
    sha_init(&s);
    sha_update(&s, p, n);
    sha_hex(&s, out);
}

static int sha_file(const char *path, char out[65]) {
    mt_mmap m;
    if (mt_mmap_open(&m, path, NULL)) return -1;
    sha_of(m.data, m.size, out);
    mt_mmap_close(&m);
    return 0;
}

/* ---- helpers ---- */
static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}
static void rm_rf(const char *dir) {
    if (mt_file_exists(dir) || mt_is_dir(dir)) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_sha(void) {
    char h[65];
    sha_of("abc", 3, h);
    CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void test_hash_order(void) {
    /* values printed by std::hash<std::string> (libstdc++, x86-64) */
    CHECK(mt_stl_string_hash("", 0) == 6142509188972423790ull);
    CHECK(mt_stl_string_hash("a", 1) == 4993892634952068459ull);
    CHECK(mt_stl_string_hash("abcdefgh", 8) == 8664279048047335611ull);
    CHECK(mt_stl_string_hash("model.layers.0.mlp.down_proj.weight", 35) == 1305347305664948341ull);
    CHECK(mt_stl_string_hash("lm_head.scales", 14) == 7692224551557125520ull);
    /* a single element, then the order of an unordered_map of 3 */
    const char *one[] = {"x"};
    size_t o1[1] = {9};
    OK(mt_st_mlx_order(one, 1, o1, NULL));
    CHECK(o1[0] == 0);
}

static void test_float_repr(void) {
    static const struct {
        double d;
        const char *s;
    } cases[] = {{1e-05, "1e-05"},  {10000.0, "10000.0"}, {0.02, "0.02"},   {1e16, "1e+16"},
                 {1.5e-07, "1.5e-07"}, {0.0001, "0.0001"}, {123456789.125, "123456789.125"},
                 {1e15, "1000000000000000.0"}, {-2.5, "-2.5"}, {0.1 + 0.2, "0.30000000000000004"},
                 {500000.0, "500000.0"}, {1.25e+22, "1.25e+22"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char buf[64];
        mt_py_float_repr(cases[i].d, buf, sizeof buf);
        CHECK_STR(buf, cases[i].s);
    }
    json_t *v = json_pack("{s:i, s:{s:[]}, s:{}, s:s}", "b", 1, "a", "x", "c", "s", "é\n");
    char *out;
    size_t n;
    OK(mt_pyjson_dump(v, 1, &out, &n, NULL));
    CHECK_STR(out, "{\n    \"a\": {\n        \"x\": []\n    },\n    \"b\": 1,\n    \"c\": {},\n    \"s\": \"\\u00e9\\n\"\n}");
    free(out);
    json_decref(v);
}

static void test_header(void) {
    mt_st_entry e[2] = {{.name = "b", .dtype = MT_F32, .ndim = 1, .shape = {2}, .nbytes = 8},
                        {.name = "a\"", .dtype = MT_U32, .ndim = 2, .shape = {1, 1}, .nbytes = 4}};
    size_t order[2] = {1, 0};
    const char *meta[] = {"format", "mlx"};
    char *h;
    size_t n;
    OK(mt_st_header(e, 2, order, meta, 1, &h, &n, NULL));
    CHECK_STR(h, "{\"__metadata__\":{\"format\":\"mlx\"},\"a\\\"\":{\"data_offsets\":[0,4],\"dtype\":\"U32\",\"shape\":[1,1]},"
                 "\"b\":{\"data_offsets\":[4,12],\"dtype\":\"F32\",\"shape\":[2]}}");
    free(h);
    e[0].nbytes = 7;
    mt_err err = {0};
    CHECK(mt_st_header(e, 2, order, meta, 1, &h, &n, &err) == MT_EINVAL);
}

/* ---- goldens ---- */
typedef struct gcase {
    char id[32], src[256];
    char *args[16];
    int nargs;
} gcase;

static int opts_from_args(gcase *g, mt_convert_opts *o) {
    memset(o, 0, sizeof *o);
    for (int i = 0; i < g->nargs; i++) {
        const char *a = g->args[i], *v = i + 1 < g->nargs ? g->args[i + 1] : "";
        if (!strcmp(a, "-q")) o->quantize = 1;
        else if (!strcmp(a, "-d")) o->dequantize = 1;
        else if (!strcmp(a, "--bits")) o->bits = atoi(v), i++;
        else if (!strcmp(a, "--group-size")) o->group_size = atoi(v), i++;
        else if (!strcmp(a, "--dtype")) o->dtype = v, i++;
        else if (!strcmp(a, "--quant-predicate")) o->recipe = v, i++;
        else if (!strcmp(a, "--max-shard-bytes")) o->max_shard_bytes = strtoull(v, NULL, 10), i++;
        else return -1;
    }
    return 0;
}

/* Explain a safetensors mismatch: first differing tensor line. */
static void diagnose(const char *path, char **tlines, int nt) {
    mt_safetensors *st;
    if (mt_safetensors_open(&st, path, NULL)) {
        fprintf(stderr, "  cannot open %s\n", path);
        return;
    }
    size_t n = mt_safetensors_count(st);
    /* our tensors in data order */
    const mt_tensor_view **v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = mt_safetensors_at(st, i);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if ((const char *)v[j]->data < (const char *)v[i]->data) {
                const mt_tensor_view *t = v[i];
                v[i] = v[j], v[j] = t;
            }
    if ((int)n != nt) fprintf(stderr, "  %zu tensors, golden %d\n", n, nt);
    for (size_t i = 0; i < n && (int)i < nt; i++) {
        char h[65], shape[128], line[600];
        sha_of(v[i]->data, v[i]->nbytes, h);
        h[8] = 0;
        shape[0] = 0;
        for (int d = 0; d < v[i]->ndim; d++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), d ? ",%lld" : "%lld",
                     (long long)v[i]->shape[d]);
        snprintf(line, sizeof line, "t %s %s %s %s", v[i]->name, mt_dtype_name(v[i]->dtype), shape, h);
        if (strcmp(line, tlines[i])) {
            fprintf(stderr, "  data position %zu: ours '%s'\n                 golden '%s'\n", i, line, tlines[i]);
            break;
        }
    }
    free(v);
    mt_safetensors_free(st);
}

/* A stored HF checkpoint (config + model.safetensors.zst) unpacked into tmp. */
static const char *unpack_source(const char *src, const char *tmp, char *buf, size_t n) {
    char p[700];
    snprintf(p, sizeof p, "%s/model.safetensors.zst", src);
    if (!mt_file_exists(p)) return src;
    const char *base = strrchr(src, '/');
    snprintf(buf, n, "%s/src-%s", tmp, base ? base + 1 : src);
    if (mt_is_dir(buf)) return buf;
    if (mt_mkdirs(buf, NULL)) return src;
    static const char *const files[] = {"config.json", "generation_config.json", "model.safetensors.zst"};
    for (int i = 0; i < 3; i++) {
        char in[700], out[700], *data;
        size_t len;
        snprintf(in, sizeof in, "%s/%s", src, files[i]);
        snprintf(out, sizeof out, "%s/%s", buf, files[i]);
        if (i == 2) out[strlen(out) - 4] = 0;   /* drop .zst: mt_read_file decompresses */
        if (!mt_file_exists(in)) continue;
        if (mt_read_file(in, &data, &len, NULL)) return src;
        mt_write_file_atomic(out, data, len, NULL);
        free(data);
    }
    return buf;
}

static void test_goldens(void) {
    char *text;
    size_t len;
    mt_err err = {0};
    if (mt_read_file("tests/data/convert/goldens.txt.zst", &text, &len, &err)) {
        CHECK(0 && "goldens missing");
        return;
    }
    char tmp[256];
    snprintf(tmp, sizeof tmp, "/tmp/mt-test-convert-%ld", (long)getpid());
    rm_rf(tmp);
    OK(mt_mkdirs(tmp, NULL));
    int ncase = 0, nexact = 0, nerr_expected = 0;
    char *save = NULL;
    char *line = strtok_r(text, "\n", &save);
    while (line) {
        if (strncmp(line, "case ", 5)) {
            line = strtok_r(NULL, "\n", &save);
            continue;
        }
        gcase g = {0};
        char *ls = NULL, *tok = strtok_r(line + 5, " ", &ls);
        snprintf(g.id, sizeof g.id, "%s", tok);
        tok = strtok_r(NULL, " ", &ls);
        snprintf(g.src, sizeof g.src, "%s", tok ? tok : "");
        while ((tok = strtok_r(NULL, " ", &ls)) && g.nargs < 16) g.args[g.nargs++] = tok;
        /* collect body */
        char *files[64][2];
        int nf = 0, want_err = 0, nt = 0, cap = 256;
        char **tl = malloc((size_t)cap * sizeof *tl);
        while ((line = strtok_r(NULL, "\n", &save)) && strcmp(line, "end")) {
            if (!strcmp(line, "error")) want_err = 1;
            else if (!strncmp(line, "file ", 5) && nf < 64) {
                char *sp = strchr(line + 5, ' ');
                if (sp) *sp = 0, files[nf][0] = line + 5, files[nf][1] = sp + 1, nf++;
            } else if (!strncmp(line, "t ", 2)) {
                if (nt == cap) tl = realloc(tl, (size_t)(cap *= 2) * sizeof *tl);
                tl[nt++] = line;
            }
        }
        ncase++;
        mt_convert_opts o;
        if (opts_from_args(&g, &o)) {
            CHECK(0 && "unknown option in goldens");
            free(tl);
            continue;
        }
        char dst[512];
        snprintf(dst, sizeof dst, "%s/%s", tmp, g.id);
        char unpacked[600];
        o.src = unpack_source(g.src, tmp, unpacked, sizeof unpacked);
        o.dst = dst;
        mt_clearerr(&err);
        int rc = mt_convert(&o, &err);
        if (want_err) {
            CHECK(rc != 0);
            CHECK(!mt_file_exists(dst));
            if (rc) nerr_expected++;
            free(tl);
            line = strtok_r(NULL, "\n", &save);
            continue;
        }
        if (rc) {
            fprintf(stderr, "case %s (%s): %s\n", g.id, g.src, err.msg);
            OK(rc);
            free(tl);
            line = strtok_r(NULL, "\n", &save);
            continue;
        }
        int same = 1;
        for (int i = 0; i < nf; i++) {
            char p[700], h[65];
            snprintf(p, sizeof p, "%s/%s", dst, files[i][0]);
            if (sha_file(p, h) || strcmp(h, files[i][1])) {
                same = 0;
                fprintf(stderr, "case %s %s", g.id, g.src);
                for (int a = 0; a < g.nargs; a++) fprintf(stderr, " %s", g.args[a]);
                fprintf(stderr, ": %s differs\n", files[i][0]);
                if (!strcmp(files[i][0], "model.safetensors")) diagnose(p, tl, nt);
            }
        }
        CHECK(same);
        nexact += same;
        rm_rf(dst);
        free(tl);
        line = strtok_r(NULL, "\n", &save);
    }
    fprintf(stderr, "convert goldens: %d/%d cases byte-identical (%d expected refusals)\n", nexact + nerr_expected,
            ncase, nerr_expected);
    CHECK(ncase > 400);
    rm_rf(tmp);
    free(text);
}

/* ---- GPU rule on an all-negative group ---- */
static int fill_w(void *user, size_t idx, void *dst, mt_err *err) {
    (void)err;
    (void)idx;
    memcpy(dst, user, 2 * 32 * 4);
    return 0;
}

static void test_gpu_rules(void) {
    char tmp[256], src[300], cfgp[320], d0[300], d1[300];
    snprintf(tmp, sizeof tmp, "/tmp/mt-test-gpurule-%ld", (long)getpid());
    rm_rf(tmp);
    snprintf(src, sizeof src, "%s/src", tmp);
    OK(mt_mkdirs(src, NULL));
    float w[2][32];
    for (int i = 0; i < 32; i++) {
        w[0][i] = -1.0f + 0.5f * (float)i / 31.0f;   /* all negative: [-1, -0.5] */
        w[1][i] = -1.0f + 2.0f * (float)i / 31.0f;   /* mixed signs */
    }
    mt_st_entry e = {.name = "model.layers.0.mlp.up_proj.weight", .dtype = MT_F32, .ndim = 2, .shape = {2, 32},
                     .nbytes = sizeof w};
    char stp[320];
    snprintf(stp, sizeof stp, "%s/model.safetensors", src);
    const char *meta[] = {"format", "mlx"};
    OK(mt_st_write(stp, &e, 1, NULL, meta, 1, fill_w, w, NULL));
    snprintf(cfgp, sizeof cfgp, "%s/config.json", src);
    const char *cfg = "{\"model_type\": \"llama\", \"torch_dtype\": \"float32\"}";
    OK(mt_write_file_atomic(cfgp, cfg, strlen(cfg), NULL));
    float sc[2][2], bi[2][2];
    for (int rule = 0; rule < 2; rule++) {
        char *dst = rule ? d1 : d0;
        snprintf(dst, 300, "%s/out%d", tmp, rule);
        mt_convert_opts o = {.src = src, .dst = dst, .quantize = 1, .bits = 4, .group_size = 32, .gpu_rules = rule};
        mt_err err = {0};
        OK(mt_convert(&o, &err));
        mt_safetensors *st;
        OK(mt_safetensors_open_dir(&st, dst, NULL));
        OK(mt_safetensors_read_f32(st, "model.layers.0.mlp.up_proj.scales", sc[rule], 2, 0, NULL));
        OK(mt_safetensors_read_f32(st, "model.layers.0.mlp.up_proj.biases", bi[rule], 2, 0, NULL));
        mt_safetensors_free(st);
    }
    /* CPU: max = -0.5, step (max-min)/15 = 1/30, edge = min = -1 -> q0 = -30, scale = -1/-30.
     * GPU: max floored at 0 -> step 1/15, q0 = -15, scale = -1/-15.  Bias = -1 for both. */
    volatile float m1 = -1.0f, m30 = -30.0f, m15 = -15.0f;
    CHECK(sc[0][0] == m1 / m30);
    CHECK(sc[1][0] == m1 / m15);
    CHECK(bi[0][0] == -1.0f && bi[1][0] == -1.0f);
    /* a group with both signs is quantized the same way by both rules */
    CHECK(sc[0][1] == sc[1][1] && bi[0][1] == bi[1][1]);

    /* inspect --against: the CPU rule has the smaller error on this model */
    char rep[400];
    snprintf(rep, sizeof rep, "%s/report.txt", tmp);
    FILE *f = fopen(rep, "w");
    mt_err err = {0};
    OK(mt_inspect(f, d0, src, 5, 1, &err));
    fclose(f);
    char *txt;
    size_t n;
    OK(mt_read_file(rep, &txt, &n, NULL));
    CHECK(strstr(txt, "\"layer\": \"model.layers.0.mlp.up_proj\", \"bits\": 4, \"group_size\": 32") != NULL);
    CHECK(strstr(txt, "\"worst\": [\"model.layers.0.mlp.up_proj\"]") != NULL);
    free(txt);
    rm_rf(tmp);
}

/* ---- GGUF export: a minimal reader, then per-tensor data vs gguf-py's quantizers ---- */
typedef struct rd {
    const unsigned char *p;
    size_t n, i;
    int bad;
} rd;
static uint64_t rd_u(rd *r, int bytes) {
    uint64_t v = 0;
    if (r->i + (size_t)bytes > r->n) {
        r->bad = 1;
        return 0;
    }
    for (int k = 0; k < bytes; k++) v |= (uint64_t)r->p[r->i + (size_t)k] << (8 * k);
    r->i += (size_t)bytes;
    return v;
}
static void rd_skip_val(rd *r, uint32_t type, int depth) {
    static const int sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (r->bad || depth > 2 || type > 12) {
        r->bad = 1;
        return;
    }
    if (type == 8) {
        uint64_t l = rd_u(r, 8);
        if (l > r->n - r->i) r->bad = 1;
        else r->i += (size_t)l;
    } else if (type == 9) {
        uint32_t et = (uint32_t)rd_u(r, 4);
        uint64_t cnt = rd_u(r, 8);
        for (uint64_t k = 0; k < cnt && !r->bad; k++) rd_skip_val(r, et, depth + 1);
    } else {
        r->i += (size_t)sz[type];
        if (r->i > r->n) r->bad = 1;
    }
}

static size_t ggml_bytes(uint32_t type, uint64_t ne0, uint64_t rows) {
    switch (type) {
    case 0: return (size_t)(ne0 * rows * 4);
    case 1: return (size_t)(ne0 * rows * 2);
    case 2: return (size_t)(ne0 / 32 * 18 * rows);
    case 3: return (size_t)(ne0 / 32 * 20 * rows);
    case 8: return (size_t)(ne0 / 32 * 34 * rows);
    }
    return 0;
}

/* Compare the tensors of a GGUF file with golden lines "t name type sha". */
static int check_gguf(const char *path, char **tl, int nt) {
    mt_mmap m;
    if (mt_mmap_open(&m, path, NULL)) return 0;
    rd r = {m.data, m.size, 0, 0};
    int ok = rd_u(&r, 4) == 0x46554747u && rd_u(&r, 4) == 3;
    uint64_t ntens = rd_u(&r, 8), nkv = rd_u(&r, 8);
    int have_vocab = 0;
    for (uint64_t k = 0; k < nkv && !r.bad; k++) {
        uint64_t kl = rd_u(&r, 8);
        if (kl > r.n - r.i) {
            r.bad = 1;
            break;
        }
        if (kl == 21 && !memcmp(r.p + r.i, "tokenizer.ggml.tokens", 21)) have_vocab = 1;
        r.i += (size_t)kl;
        rd_skip_val(&r, (uint32_t)rd_u(&r, 4), 0);
    }
    ok = ok && have_vocab && (int)ntens == nt;
    char(*names)[128] = calloc(ntens ? ntens : 1, sizeof *names);
    uint32_t *types = calloc(ntens ? ntens : 1, sizeof *types);
    uint64_t *offs = calloc(ntens ? ntens : 1, sizeof *offs), *sizes = calloc(ntens ? ntens : 1, sizeof *sizes);
    for (uint64_t t = 0; t < ntens && !r.bad && ok; t++) {
        uint64_t l = rd_u(&r, 8);
        if (l >= 128 || l > r.n - r.i) {
            r.bad = 1;
            break;
        }
        memcpy(names[t], r.p + r.i, (size_t)l);
        r.i += (size_t)l;
        uint32_t nd = (uint32_t)rd_u(&r, 4);
        uint64_t ne0 = 1, rows = 1;
        for (uint32_t d = 0; d < nd && d < 4; d++) {
            uint64_t v = rd_u(&r, 8);
            if (d == 0) ne0 = v;
            else rows *= v;
        }
        types[t] = (uint32_t)rd_u(&r, 4);
        offs[t] = rd_u(&r, 8);
        sizes[t] = ggml_bytes(types[t], ne0, rows);
    }
    size_t data0 = (r.i + 31) / 32 * 32;
    for (int g = 0; g < nt && ok && !r.bad; g++) {
        char name[128], sha[65], h[65];
        unsigned type;
        if (sscanf(tl[g], "t %127s %u %64s", name, &type, sha) != 3) {
            ok = 0;
            break;
        }
        int found = 0;
        for (uint64_t t = 0; t < ntens; t++) {
            if (strcmp(names[t], name)) continue;
            found = 1;
            if (types[t] != type || data0 + offs[t] + sizes[t] > m.size) {
                fprintf(stderr, "  %s: type %u, golden %u\n", name, types[t], type);
                ok = 0;
                break;
            }
            sha_of(m.data + data0 + offs[t], sizes[t], h);
            if (strcmp(h, sha)) {
                fprintf(stderr, "  %s: data differs\n", name);
                ok = 0;
            }
        }
        if (!found) ok = 0;
    }
    free(names), free(types), free(offs), free(sizes);
    mt_mmap_close(&m);
    return ok && !r.bad;
}

static void test_gguf(void) {
    char *text;
    size_t len;
    if (mt_read_file("tests/data/convert/gguf_goldens.txt", &text, &len, NULL)) {
        CHECK(0 && "gguf goldens missing");
        return;
    }
    char tmp[256];
    snprintf(tmp, sizeof tmp, "/tmp/mt-test-gguf-%ld", (long)getpid());
    rm_rf(tmp);
    OK(mt_mkdirs(tmp, NULL));
    int ncase = 0, nok = 0;
    char *save = NULL, *line = strtok_r(text, "\n", &save);
    while (line) {
        char model[256] = "", type[16] = "", label[64] = "", stsha[65] = "";
        int k = sscanf(line, "case %255s %15s %63s %64s", model, type, label, stsha);
        char **tl = malloc(512 * sizeof *tl);
        int nt = 0;
        while ((line = strtok_r(NULL, "\n", &save)) && strcmp(line, "end"))
            if (!strncmp(line, "t ", 2) && nt < 512) tl[nt++] = line;
        if (k < 2) {
            free(tl);
            line = strtok_r(NULL, "\n", &save);
            continue;
        }
        ncase++;
        char src[512], out[600];
        snprintf(src, sizeof src, "%s", model);
        if (k == 4) {   /* lossless case: our own f16 q4 g32 conversion (identical to mlx_lm's) */
            snprintf(src, sizeof src, "%s/mlx-q4", tmp);
            mt_convert_opts o = {.src = model, .dst = src, .quantize = 1, .bits = 4, .group_size = 32, .dtype = "float16"};
            OK(mt_convert(&o, NULL));
            char p[600], h[65];
            snprintf(p, sizeof p, "%s/model.safetensors", src);
            CHECK(sha_file(p, h) == 0 && !strcmp(h, stsha));
        }
        mt_ggml_type t;
        OK(mt_ggml_type_parse(type, &t));
        snprintf(out, sizeof out, "%s/%d.gguf", tmp, ncase);
        mt_err err = {0};
        int rc = mt_export_gguf(src, out, t, &err);
        if (rc) fprintf(stderr, "gguf %s %s: %s\n", model, type, err.msg);
        int same = !rc && check_gguf(out, tl, nt);
        if (!same) fprintf(stderr, "gguf case %s %s %s differs\n", model, type, label);
        CHECK(same);
        nok += same;
        free(tl);
        line = strtok_r(NULL, "\n", &save);
    }
    fprintf(stderr, "gguf goldens: %d/%d cases identical to gguf-py quantizers\n", nok, ncase);
    CHECK(ncase >= 16);
    /* not the llama family */
    mt_err err = {0};
    char out[600];
    snprintf(out, sizeof out, "%s/x.gguf", tmp);
    CHECK(mt_export_gguf("tests/data/models/qwen3-tiny", out, MT_GGML_F16, &err) == MT_EUNSUPPORTED);
    rm_rf(tmp);
    free(text);
}

int main(void) {
    test_sha();
    test_hash_order();
    test_float_repr();
    test_header();
    test_gpu_rules();
    test_gguf();
    test_goldens();
    return check_report("convert");
}
