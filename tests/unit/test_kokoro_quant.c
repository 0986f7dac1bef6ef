/* test_kokoro_quant.c - Kokoro folders in the forms mlx-community publishes, made by mlx-audio
 * from the tiny folder (tests/gen/gen_kokoro_quant_fixtures.py):
 *   kokoro-tiny-mlx  sanitized names and mlx layouts, bf16: the same weights as
 *                    kokoro-tiny/model, so every stage and the waveform must equal the
 *                    PyTorch-named folder's bit for bit (and kokoro-tiny's goldens hold);
 *   kokoro-tiny-q4   4-bit, group 64 (the style projections quantized);
 *   kokoro-tiny-q8   8-bit, group 64 per layer where the width allows and 32 elsewhere (also
 *                    ALBERT's linears, bert_encoder, duration_proj, the text encoder's
 *                    embedding).
 * Against mlx-audio running each folder: ids and durations identical, F0 within the stage
 * tolerance of test_kokoro, the waveform end to end (SNR >= 20 dB: a last-bit F0 difference
 * shifts the harmonic source's phase, see test_kokoro) and the decoder alone from mlx-audio's
 * asr/F0/N (>= 35 dB).  Then quantized folders broken in several ways (scales or biases
 * missing or misshapen, bits unsupported or not fitting the words, no quantization block, each
 * tensor's shape reversed in turn), each refused with one line. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/file.h"
#include "core/pool.h"
#include "fixture_copy.h"
#include "models/kokoro.h"
#include "kokoro_golden.h"
#include "tts_ops_golden.h"

#define PT_DIR "tests/data/kokoro-tiny/model"
#define PT_GOLD "tests/data/kokoro-tiny/goldens.safetensors"
#define MLX_DIR "tests/data/kokoro-tiny-mlx"
#define Q4_DIR "tests/data/kokoro-tiny-q4"
#define Q8_DIR "tests/data/kokoro-tiny-q8"

static const char *const PHON[3] = {"həlˈoʊ wˈɜːld!", "ðɪs ɪz ə tˈɛst.", "kəkˈɔɹoʊ, ʃˈɔɹt"};
static const int CASES[2] = {0, 2};   /* the cases the quantized folders' goldens hold */

/* One case of folder `label` against goldens g: ids, durations, F0, waveform, decoder alone. */
static void test_case(const char *label, const mt_kokoro *k, const mt_safetensors *g, int c, const float *pack,
                      size_t rows) {
    char cs[16];
    snprintf(cs, sizeof cs, "%d", c);
    mt_err e = {0};
    size_t nref = 0, n = 0;
    float *idr = gold(g, cs, "ids", &nref), *spd = gold(g, cs, "speed", NULL), *durr = gold(g, cs, "dur", NULL);
    float *f0r = gold(g, cs, "F0", NULL), *nr = gold(g, cs, "N", NULL), *asr = gold(g, cs, "asr", NULL);
    float *aud = NULL, *wav = NULL, *w2 = NULL;
    int *ids = NULL;
    mt_kokoro_trace tr;
    memset(&tr, 0, sizeof tr);
    CHECK_MSG(idr && spd && durr && f0r && nr && asr, "%s case %d: goldens missing", label, c);
    if (!(idr && spd && durr && f0r && nr && asr)) goto out;
    CHECK_OK(mt_kokoro_ids(k, PHON[c], &ids, &n, &e), &e);
    int same = ids && n == nref;
    for (size_t i = 0; same && i < n; i++) same = ids[i] == (int)idr[i];
    CHECK_MSG(same, "%s case %d: ids differ from mlx-audio's", label, c);
    if (!same) goto out;
    const float *row = mt_kokoro_voice_row(k, pack, rows, n_codepoints(PHON[c]));
    size_t len = 0, l2 = 0;
    mt_kokoro_opts o = {0, 0, det_draws, NULL};
    int rc = mt_kokoro_synth(k, ids, n, row, spd[0], &o, &wav, &len, &tr, &e);
    CHECK_OK(rc, &e);
    if (rc) goto out;
    int dsame = 1;
    size_t Fr = 0;
    for (size_t t = 0; t < tr.T; t++) {
        dsame &= tr.dur[t] == (int)durr[t];
        Fr += (size_t)durr[t];
    }
    printf("  %s %d durations %s (F = %zu, mlx-audio %zu)\n", label, c, dsame ? "identical" : "DIFFER", tr.F, Fr);
    CHECK_MSG(dsame, "%s case %d: durations differ", label, c);
    if (!dsame) goto out;
    char l[64];
    snprintf(l, sizeof l, "%s %d F0", label, c);
    check_close(l, tr.F0, f0r, 2 * Fr);
    aud = gold(g, cs, "audio", &nref);
    CHECK_MSG(aud && nref == len, "%s case %d: %zu samples, mlx-audio %zu", label, c, len, nref);
    if (!aud || nref != len) goto out;
    double snr = snr_db(wav, aud, len);
    printf("  %s %d waveform end to end: %zu samples, SNR %.1f dB\n", label, c, len, snr);
    CHECK_MSG(snr >= 20.0, "%s case %d: end-to-end SNR %.1f dB < 20", label, c, snr);
    CHECK_OK(mt_kokoro_decode(k, asr, f0r, nr, Fr, row, &o, &w2, &l2, &e), &e);
    CHECK_EQ_INT(l2, len);
    if (w2 && l2 == len) {
        snr = snr_db(w2, aud, len);
        printf("  %s %d waveform from mlx-audio's decoder inputs: SNR %.1f dB\n", label, c, snr);
        CHECK_MSG(snr >= 35.0, "%s case %d: decoder SNR %.1f dB < 35", label, c, snr);
    }
out:
    mt_kokoro_trace_free(&tr);
    free(ids); free(idr); free(spd); free(durr); free(f0r); free(nr); free(asr); free(aud); free(wav); free(w2);
}

/* Load `dir`, its voice and goldens, and run the cases. */
static void test_folder(mt_pool *pool, const char *label, const char *dir, const char *goldens) {
    mt_err e = {0};
    mt_kokoro *k = NULL;
    mt_safetensors *g = NULL;
    float *pack = NULL;
    size_t rows = 0;
    int rc = mt_kokoro_load(dir, pool, &k, &e);
    CHECK_OK(rc, &e);
    if (!rc) rc = mt_safetensors_open(&g, goldens, &e);
    CHECK_OK(rc, &e);
    if (!rc) rc = mt_kokoro_voice_load(k, dir, "af_tiny", &pack, &rows, &e);
    CHECK_OK(rc, &e);
    if (!rc)
        for (int i = 0; i < 2; i++) test_case(label, k, g, CASES[i], pack, rows);
    free(pack);
    mt_safetensors_free(g);
    mt_kokoro_free(k);
}

/* The sanitized float folder and the PyTorch-named one: every traced stage and the waveform
 * equal bit for bit, for all three phoneme strings. */
static void test_two_layouts(mt_pool *pool) {
    mt_err e = {0};
    mt_kokoro *a = NULL, *b = NULL;
    float *pack = NULL;
    size_t rows = 0;
    CHECK_OK(mt_kokoro_load(PT_DIR, pool, &a, &e), &e);
    CHECK_OK(mt_kokoro_load(MLX_DIR, pool, &b, &e), &e);
    if (a) CHECK_OK(mt_kokoro_voice_load(a, PT_DIR, "af_tiny", &pack, &rows, &e), &e);
    if (!a || !b || !pack) goto out;
    size_t H = 32, S = (size_t)mt_kokoro_style_dim(a);
    for (int c = 0; c < 3; c++) {
        int *ids = NULL;
        size_t n = 0, la = 0, lb = 0;
        float *wa = NULL, *wb = NULL;
        mt_kokoro_trace ta, tb;
        mt_kokoro_opts o = {0, 0, det_draws, NULL};
        CHECK_OK(mt_kokoro_ids(a, PHON[c], &ids, &n, &e), &e);
        const float *row = mt_kokoro_voice_row(a, pack, rows, n_codepoints(PHON[c]));
        int ra = ids ? mt_kokoro_synth(a, ids, n, row, 1.0f, &o, &wa, &la, &ta, &e) : -1;
        CHECK_OK(ra, &e);
        int rb = ids ? mt_kokoro_synth(b, ids, n, row, 1.0f, &o, &wb, &lb, &tb, &e) : -1;
        CHECK_OK(rb, &e);
        if (!ra && !rb) {
            int same = la == lb && ta.F == tb.F && !memcmp(wa, wb, la * sizeof(float)) &&
                       !memcmp(ta.dur, tb.dur, ta.T * sizeof(int)) &&
                       !memcmp(ta.d, tb.d, ta.T * (H + S) * sizeof(float)) &&
                       !memcmp(ta.F0, tb.F0, 2 * ta.F * sizeof(float)) &&
                       !memcmp(ta.N, tb.N, 2 * ta.F * sizeof(float)) &&
                       !memcmp(ta.t_en, tb.t_en, H * ta.T * sizeof(float));
            printf("  mlx layout vs PyTorch names, case %d: %zu samples, %s\n", c, la,
                   same ? "bit-identical" : "DIFFERENT");
            CHECK_MSG(same, "case %d: the two layouts differ", c);
        }
        if (!ra) mt_kokoro_trace_free(&ta);
        if (!rb) mt_kokoro_trace_free(&tb);
        free(wa); free(wb); free(ids);
    }
out:
    free(pack);
    mt_kokoro_free(a);
    mt_kokoro_free(b);
}

/* ------------------------------------------------------------------ corrupt folders */

static char *replace(const char *s, size_t n, const char *from, const char *to, size_t *outn) {
    const char *hit = memmem(s, n, from, strlen(from));
    if (!hit) return NULL;
    size_t a = (size_t)(hit - s), fl = strlen(from), tl = strlen(to);
    char *o = malloc(n - fl + tl + 1);
    if (!o) return NULL;
    memcpy(o, s, a);
    memcpy(o + a, to, tl);
    memcpy(o + a + tl, hit + fl, n - a - fl);
    *outn = n - fl + tl;
    o[*outn] = 0;
    return o;
}

/* A copy of the q4 folder whose `file` holds `src` with `from` replaced by `to`; loading it
 * must fail with one line (containing `want`). */
static void corrupt(mt_pool *pool, const char *what, const char *file, const char *src, size_t n, const char *from,
                    const char *to, const char *want) {
    size_t nb = 0;
    char *bytes = replace(src, n, from, to, &nb);
    CHECK_MSG(bytes != NULL, "%s: '%s' not in %s", what, from, file);
    const char *skip[] = {file, NULL};
    char *dir = bytes ? fixture_copy(Q4_DIR, "kokoro_q_bad", skip) : NULL;
    CHECK(!bytes || dir != NULL);
    if (!dir) {
        free(bytes);
        return;
    }
    char *p = mt_path_join(dir, file);
    FILE *f = p ? fopen(p, "wb") : NULL;
    CHECK(f && fwrite(bytes, 1, nb, f) == nb);
    if (f) fclose(f);
    mt_kokoro *k = NULL;
    mt_err e = {0};
    int rc = mt_kokoro_load(dir, pool, &k, &e);
    CHECK_MSG(rc != 0 && k == NULL, "%s: loaded", what);
    CHECK_MSG(e.msg[0] && !strchr(e.msg, '\n') && strstr(e.msg, want), "%s: message '%s'", what, e.msg);
    printf("  corrupt (%s): %s\n", what, e.msg);
    mt_kokoro_free(k);
    free(p);
    free(bytes);
    fixture_copy_free(dir);
}

/* Every rank-2/3 tensor of the q4 folder in turn with its shape reversed in the header (same
 * numel and header length): the load fails with one line or the reversed shape is the same. */
static void test_shape_sweep(mt_pool *pool, const char *w, size_t nw) {
    const char *skip[] = {"model.safetensors", NULL};
    char *dir = fixture_copy(Q4_DIR, "kokoro_q_sweep", skip);
    CHECK(dir != NULL);
    if (!dir || nw < 8) {
        fixture_copy_free(dir);
        return;
    }
    uint64_t hl = 0;
    memcpy(&hl, w, 8);
    char *buf = malloc(nw), *path = mt_path_join(dir, "model.safetensors");
    size_t tried = 0, refused = 0, bad_msg = 0;
    const char *end = w + 8 + (hl < nw - 8 ? hl : nw - 8);
    for (const char *p = w + 8; buf && path && (p = memmem(p, (size_t)(end - p), "\"shape\":[", 9)); p += 9) {
        const char *a = p + 9, *b = memchr(a, ']', (size_t)(end - a));
        if (!b || !memchr(a, ',', (size_t)(b - a))) continue;
        char nums[64], out[64], *parts[4];
        size_t L = (size_t)(b - a), o = 0;
        if (L >= sizeof nums) continue;
        memcpy(nums, a, L);
        nums[L] = 0;
        int np = 0;
        for (char *t = strtok(nums, ","); t && np < 4; t = strtok(NULL, ",")) parts[np++] = t;
        for (int i = np - 1; i >= 0; i--) o += (size_t)snprintf(out + o, sizeof out - o, "%s%s", parts[i], i ? "," : "");
        if (o != L || !memcmp(out, a, L)) continue;
        memcpy(buf, w, nw);
        memcpy(buf + (a - w), out, L);
        FILE *f = fopen(path, "wb");
        if (!f) break;
        fwrite(buf, 1, nw, f);
        fclose(f);
        mt_kokoro *k = NULL;
        mt_err e = {0};
        tried++;
        if (mt_kokoro_load(dir, pool, &k, &e)) {
            refused++;
            if (!e.msg[0] || strchr(e.msg, '\n')) bad_msg++;
        }
        mt_kokoro_free(k);
    }
    printf("  q4 shape sweep: %zu tensors reversed, %zu refused, %zu without a one-line message\n", tried, refused,
           bad_msg);
    CHECK(tried > 100);
    CHECK_EQ_INT(refused, tried);
    CHECK_EQ_INT(bad_msg, 0);
    free(buf);
    free(path);
    fixture_copy_free(dir);
}

static void test_corrupt(mt_pool *pool) {
    mt_err e = {0};
    char *cfg = NULL, *w = NULL;
    size_t nc = 0, nw = 0;
    CHECK_OK(mt_read_file(Q4_DIR "/config.json", &cfg, &nc, &e), &e);
    CHECK_OK(mt_read_file(Q4_DIR "/model.safetensors", &w, &nw, &e), &e);
    if (!cfg || !w) goto out;
    const char *ST = "model.safetensors", *fc = "decoder.decode.0.norm1.fc";
    char from[160], to[160];
    snprintf(from, sizeof from, "\"%s.scales\"", fc);
    snprintf(to, sizeof to, "\"%s.scaleX\"", fc);
    corrupt(pool, "scales missing", ST, w, nw, from, to, ".scales' is missing");
    snprintf(from, sizeof from, "\"%s.biases\"", fc);
    snprintf(to, sizeof to, "\"%s.biaseX\"", fc);
    corrupt(pool, "biases missing", ST, w, nw, from, to, ".biases' is missing");
    snprintf(from, sizeof from, "\"%s.scales\":{\"data_offsets\"", fc);
    const char *hit = memmem(w, nw, from, strlen(from));
    CHECK(hit != NULL);
    if (hit) {   /* the scales' shape [84,2] stored as [2,84] */
        const char *sh = memmem(hit, nw - (size_t)(hit - w), "\"shape\":[84,2]", 14);
        CHECK(sh != NULL);
        if (sh) {
            char *w2 = malloc(nw);
            if (w2) {
                memcpy(w2, w, nw);
                memcpy(w2 + (sh - w), "\"shape\":[2,84]", 14);
                corrupt(pool, "scales of the wrong shape", ST, w2, nw, "\"shape\":[2,84]", "\"shape\":[2,84]",
                        "expected [84, 2]");
                free(w2);
            }
        }
    }
    corrupt(pool, "unsupported bits", "config.json", cfg, nc, "\"bits\": 4", "\"bits\": 7", "bits");
    corrupt(pool, "bits that do not fit the shapes", "config.json", cfg, nc, "\"bits\": 4", "\"bits\": 8",
            "8-bit groups of 64");
    {
        size_t n2 = 0;
        char *c2 = replace(cfg, nc, "\"quantization\"", "\"quantizatioX\"", &n2);
        CHECK(c2 != NULL);
        if (c2) corrupt(pool, "no quantization block", "config.json", c2, n2, "\"quantization_config\"",
                        "\"quantization_confiX\"", "does not cover");
        free(c2);
    }
    snprintf(from, sizeof from, "\"%s.scales\":{\"data_offsets\"", fc);
    hit = memmem(w, nw, from, strlen(from));
    if (hit) {   /* a float weight beside scales: the weight's dtype U32 -> F32 (same size) */
        snprintf(from, sizeof from, "\"%s.weight\":{\"data_offsets\"", fc);
        const char *wt = memmem(w, nw, from, strlen(from));
        const char *dt = wt ? memmem(wt, nw - (size_t)(wt - w), "\"dtype\":\"U32\"", 13) : NULL;
        CHECK(dt != NULL);
        if (dt) {
            char *w2 = malloc(nw);
            if (w2) {
                memcpy(w2, w, nw);
                memcpy(w2 + (dt - w), "\"dtype\":\"F32\"", 13);
                corrupt(pool, "scales beside a float weight", ST, w2, nw, "\"dtype\":\"F32\"", "\"dtype\":\"F32\"",
                        "not uint32-packed");
                free(w2);
            }
        }
    }
    test_shape_sweep(pool, w, nw);
out:
    free(cfg);
    free(w);
}

int main(void) {
    mt_err e = {0};
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &e), &e);
    test_two_layouts(pool);
    test_folder(pool, "mlx", MLX_DIR, PT_GOLD);
    test_folder(pool, "q4", Q4_DIR, Q4_DIR "/goldens/goldens.safetensors");
    test_folder(pool, "q8", Q8_DIR, Q8_DIR "/goldens/goldens.safetensors");
    test_corrupt(pool);
    mt_pool_free(pool);
    return check_report("test_kokoro_quant");
}
