/* test_audio.c - lib/audio: file decoding (WAV/FLAC/OGG/MP3) against what
 * soundfile decodes, error messages for missing/broken/empty files, raw PCM
 * and its duration limit, soxr resampling of a sine, the Slaney mel filters
 * against whisper's mel_filters.npz and log_mel_spectrogram against
 * openai-whisper goldens (tests/gen/gen_audio_goldens.py). */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/audio.h"
#include "audio/mel.h"
#include "check.h"
#include "core/file.h"
#include "core/pool.h"

#define DIR "tests/data/audio/"

static json_t *G;   /* goldens.json */

static float *read_f32(const char *name, size_t *n) {
    char path[512];
    snprintf(path, sizeof path, DIR "%s", name);
    char *buf = NULL;
    size_t len = 0;
    mt_err err;
    if (mt_read_file(path, &buf, &len, &err) != MT_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return NULL;
    }
    *n = len / sizeof(float);
    return (float *)buf;
}

/* mirror of gen_signal() in the generator */
static float *gen_signal(const char *kind, size_t n) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    if (strcmp(kind, "one") == 0) {
        x[0] = 0.25f;
        return x;
    }
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        double t = (double)i / 16000.0;
        double env = 0.3 + 0.7 * fabs(sin(2.0 * M_PI * 0.5 * t));
        s = s * 1664525u + 1013904223u;
        double noise = (double)(s >> 8) / 16777216.0 - 0.5;
        x[i] = (float)(0.5 * env * sin(2.0 * M_PI * (100.0 * t + 100.0 * t * t)) + 0.05 * noise);
    }
    return x;
}

static int near_rel(double a, double b, double rel) { return fabs(a - b) <= rel * (fabs(b) + 1e-9); }

static void test_filters(void) {
    mt_err err;
    mt_mel *m = NULL;
    CHECK(mt_mel_new(&m, 64, &err) == MT_EINVAL && m == NULL);
    const int sizes[] = {80, 128};
    for (int s = 0; s < 2; s++) {
        int nm = sizes[s];
        CHECK_OK(mt_mel_new(&m, nm, &err), &err);
        if (!m) continue;
        char key[8];
        snprintf(key, sizeof key, "%d", nm);
        size_t n = 0;
        float *g = read_f32(json_string_value(json_object_get(json_object_get(G, "filters"), key)), &n);
        CHECK_EQ_INT(n, (size_t)nm * 201);
        if (g && n == (size_t)nm * 201) {
            const float *f = mt_mel_filters(m);
            double md = 0;
            int nz = 0;
            for (size_t i = 0; i < n; i++) {
                double d = fabs((double)f[i] - g[i]);
                if (d > md) md = d;
                nz += g[i] != 0;
            }
            if (getenv("TEST_VERBOSE")) fprintf(stderr, "filters %d: max diff %.3g\n", nm, md);
            CHECK_MSG(md <= 1e-6, "filters %d: max diff %g", nm, md);
            CHECK(nz > nm);   /* a real bank, not zeros */
        }
        free(g);
        mt_mel_free(m);
        m = NULL;
    }
    mt_mel_free(NULL);
}

static void test_mel(mt_pool *pool) {
    mt_err err;
    json_t *sigs = json_object_get(G, "signals");
    const char *key;
    json_t *v;
    json_object_foreach(sigs, key, v) {   /* the C generator matches the Python one */
        size_t n = (size_t)json_integer_value(json_object_get(v, "n"));
        float *x = gen_signal(json_string_value(json_object_get(v, "kind")), n);
        double s = 0, s2 = 0;
        for (size_t i = 0; i < n; i++) s += x[i], s2 += (double)x[i] * x[i];
        CHECK_MSG(near_rel(s, json_real_value(json_object_get(v, "sum")), 1e-6) &&
                      near_rel(s2, json_real_value(json_object_get(v, "sumsq")), 1e-6),
                  "signal %s differs from the generator's", key);
        free(x);
    }
    mt_mel *mels[2] = {NULL, NULL};
    CHECK_OK(mt_mel_new(&mels[0], 80, &err), &err);
    CHECK_OK(mt_mel_new(&mels[1], 128, &err), &err);
    if (!mels[0] || !mels[1]) return;
    size_t i;
    json_array_foreach(json_object_get(G, "mel"), i, v) {
        const char *sig = json_string_value(json_object_get(v, "signal"));
        json_t *sv = json_object_get(sigs, sig);
        size_t n = (size_t)json_integer_value(json_object_get(sv, "n"));
        int nm = (int)json_integer_value(json_object_get(v, "n_mels"));
        size_t pad = (size_t)json_integer_value(json_object_get(v, "pad"));
        size_t T = (size_t)json_integer_value(json_object_get(v, "n_frames"));
        float *x = gen_signal(json_string_value(json_object_get(sv, "kind")), n);
        float *mel = NULL;
        size_t nf = 0;
        mt_mel *m = mels[nm == 128];
        CHECK_OK(mt_mel_compute(m, x, n, pad, pool, &mel, &nf, &err), &err);
        CHECK_EQ_INT(nf, T);
        size_t gn = 0;
        float *g = read_f32(json_string_value(json_object_get(v, "file")), &gn);
        if (mel && g && nf == T) {
            size_t off = 0, j;
            json_t *r;
            double md = 0;
            json_array_foreach(json_object_get(v, "ranges"), j, r) {
                size_t a = (size_t)json_integer_value(json_array_get(r, 0));
                size_t b = (size_t)json_integer_value(json_array_get(r, 1));
                size_t w = b - a;
                if (off + (size_t)nm * w > gn || b > T) {
                    CHECK_MSG(0, "golden %s too short", json_string_value(json_object_get(v, "file")));
                    break;
                }
                for (int mb = 0; mb < nm; mb++)
                    for (size_t t = 0; t < w; t++) {
                        double d = fabs((double)mel[(size_t)mb * T + a + t] - g[off + (size_t)mb * w + t]);
                        if (d > md) md = d;
                    }
                off += (size_t)nm * w;
            }
            if (getenv("TEST_VERBOSE")) fprintf(stderr, "mel %s n_mels %d pad %zu: max diff %.3g\n", sig, nm, pad, md);
            CHECK_MSG(md <= 1e-4, "mel %s n_mels %d pad %zu: max abs diff %g", sig, nm, pad, md);
            CHECK_EQ_INT(off, gn);
            if (!pool || i != 0) {
                free(mel), free(g), free(x);
                continue;
            }
            /* single-threaded gives the very same numbers */
            float *m1 = NULL;
            size_t nf1 = 0;
            CHECK_OK(mt_mel_compute(m, x, n, pad, NULL, &m1, &nf1, &err), &err);
            CHECK(m1 && nf1 == T && memcmp(m1, mel, (size_t)nm * T * sizeof(float)) == 0);
            free(m1);
        }
        free(mel);
        free(g);
        free(x);
    }
    /* too short for one frame */
    float z[200] = {0};
    float *mel = NULL;
    size_t nf = 7;
    CHECK(mt_mel_compute(mels[0], z, 100, 59, pool, &mel, &nf, &err) == MT_EINVAL && !mel && nf == 0);
    CHECK(mt_mel_compute(mels[0], z, 0, 0, pool, &mel, &nf, &err) == MT_EINVAL);
    /* exactly one frame; zeros give a constant (-10 clamped -> (-10+4)/4) */
    CHECK_OK(mt_mel_compute(mels[0], z, 160, 0, pool, &mel, &nf, &err), &err);
    CHECK(nf == 1 && mel && fabsf(mel[0] + 1.5f) < 1e-6f && fabsf(mel[79] + 1.5f) < 1e-6f);
    free(mel);
    mt_mel_free(mels[0]);
    mt_mel_free(mels[1]);
}

static void test_window(void) {
    enum { NM = 3, NF = 5 };
    float mel[NM * NF];
    for (int i = 0; i < NM * NF; i++) mel[i] = (float)(i + 1);
    float *win = malloc((size_t)NM * MT_WHISPER_NFRAMES * sizeof(float));
    for (size_t i = 0; i < (size_t)NM * MT_WHISPER_NFRAMES; i++) win[i] = -7.0f;
    mt_mel_window(mel, NM, NF, 2, 3000, win);   /* frames 2..4, rest zero */
    CHECK(win[0] == 3.0f && win[1] == 4.0f && win[2] == 5.0f && win[3] == 0.0f);
    CHECK(win[MT_WHISPER_NFRAMES] == 8.0f && win[2 * MT_WHISPER_NFRAMES + 2] == 15.0f);
    CHECK(win[2 * MT_WHISPER_NFRAMES + 2999] == 0.0f && win[MT_WHISPER_NFRAMES - 1] == 0.0f);
    mt_mel_window(mel, NM, NF, 1, 2, win);       /* len clips */
    CHECK(win[0] == 2.0f && win[1] == 3.0f && win[2] == 0.0f && win[MT_WHISPER_NFRAMES + 1] == 8.0f);
    mt_mel_window(mel, NM, NF, 9, 3000, win);    /* start past the end */
    int allz = 1;
    for (size_t i = 0; i < (size_t)NM * MT_WHISPER_NFRAMES; i++) allz &= win[i] == 0.0f;
    CHECK(allz);
    free(win);
}

static void test_files(void) {
    mt_err err;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(G, "files"), i, v) {
        const char *name = json_string_value(json_object_get(v, "file"));
        char path[512];
        snprintf(path, sizeof path, DIR "%s", name);
        int rate = (int)json_integer_value(json_object_get(v, "rate"));
        size_t frames = (size_t)json_integer_value(json_object_get(v, "frames"));
        double tol = json_real_value(json_object_get(v, "tol"));
        mt_audio a;
        CHECK_OK(mt_audio_load(&a, path, rate, &err), &err);
        CHECK_MSG(a.n == frames, "%s: %zu frames, soundfile %zu", name, a.n, frames);
        CHECK_EQ_INT(a.rate, rate);
        CHECK_EQ_INT(a.src_rate, rate);
        CHECK_EQ_INT(a.src_channels, json_integer_value(json_object_get(v, "channels")));
        size_t hn = 0;
        float *h = read_f32(json_string_value(json_object_get(v, "head")), &hn);
        if (a.pcm && h && hn <= a.n) {
            double md = 0, s = 0, s2 = 0;
            for (size_t k = 0; k < hn; k++) md = fmax(md, fabs((double)a.pcm[k] - h[k]));
            for (size_t k = 0; k < a.n; k++) s += a.pcm[k], s2 += (double)a.pcm[k] * a.pcm[k];
            if (getenv("TEST_VERBOSE")) fprintf(stderr, "%s: head max diff %.3g, %zu frames\n", name, md, a.n);
            CHECK_MSG(md <= tol + 1e-7, "%s: head max diff %g (tol %g)", name, md, tol);
            double gs2 = json_real_value(json_object_get(v, "sumsq"));
            CHECK_MSG(fabs(s - json_real_value(json_object_get(v, "sum"))) <= 1e-3 + tol * a.n * 0.01 &&
                          near_rel(s2, gs2, tol ? 1e-2 : 1e-6),
                      "%s: checksums %g %g", name, s, s2);
        }
        free(h);
        /* the same bytes from memory */
        char *buf = NULL;
        size_t len = 0;
        mt_audio b;
        if (mt_read_file(path, &buf, &len, &err) == MT_OK) {
            CHECK_OK(mt_audio_load_mem(&b, buf, len, name, rate, &err), &err);
            CHECK(b.n == a.n && a.pcm && b.pcm && memcmp(a.pcm, b.pcm, a.n * sizeof(float)) == 0);
            mt_audio_clear(&b);
            free(buf);
        }
        mt_audio_clear(&a);
        CHECK(a.pcm == NULL && a.n == 0);
        /* resampled to 16 kHz: the length follows the rate ratio */
        CHECK_OK(mt_audio_load(&a, path, 16000, &err), &err);
        double want = (double)frames * 16000.0 / rate;
        CHECK_MSG(fabs((double)a.n - want) <= 1.0, "%s at 16 kHz: %zu samples, want ~%.1f", name, a.n, want);
        CHECK_EQ_INT(a.rate, 16000);
        CHECK_EQ_INT(a.src_rate, rate);
        mt_audio_clear(&a);
    }
    mt_audio_clear(NULL);
}

static void expect_err(const char *path, int code, const char *substr) {
    mt_err err = {0};
    mt_audio a;
    int rc = mt_audio_load(&a, path, 16000, &err);
    CHECK_MSG(rc == code, "%s: rc %d (%s), want %d", path, rc, err.msg, code);
    CHECK_MSG(strstr(err.msg, path) != NULL, "message does not name the file: %s", err.msg);
    if (substr) CHECK_MSG(strstr(err.msg, substr) != NULL, "'%s' not in: %s", substr, err.msg);
    CHECK(a.pcm == NULL && a.n == 0);
}

static void test_errors(void) {
    expect_err(DIR "no-such-file.wav", MT_ENOTFOUND, "no such file");
    expect_err(DIR "truncated.wav", MT_EFORMAT, "not audio or corrupt");
    expect_err(DIR "corrupt.flac", MT_EFORMAT, "not audio or corrupt");
    expect_err(DIR "text.wav", MT_EFORMAT, "not audio or corrupt");
    expect_err(DIR "empty.wav", MT_EFORMAT, "no samples");
    expect_err("tests/data/audio", MT_EIO, "directory");
    mt_err err;
    mt_audio a;
    CHECK(mt_audio_load_mem(&a, "", 0, "x.wav", 16000, &err) == MT_EFORMAT && strstr(err.msg, "x.wav"));
    CHECK(mt_audio_load_mem(&a, "RIFF", 4, "y.wav", 16000, &err) == MT_EFORMAT && strstr(err.msg, "y.wav"));
    CHECK(mt_audio_load(&a, DIR "speech_22k.flac", 5, &err) == MT_EUNSUPPORTED);
    /* a WAV header with no data chunk content: zero frames */
    static const unsigned char hdr[44] = {'R', 'I', 'F', 'F', 36, 0, 0, 0, 'W', 'A', 'V', 'E', 'f', 'm', 't', ' ',
                                          16, 0, 0, 0, 1, 0, 1, 0, 0x80, 0x3e, 0, 0, 0, 0x7d, 0, 0, 2, 0, 16, 0,
                                          'd', 'a', 't', 'a', 0, 0, 0, 0};
    int rc = mt_audio_load_mem(&a, hdr, sizeof hdr, "hdr.wav", 16000, &err);
    CHECK_MSG(rc == MT_EFORMAT && strstr(err.msg, "hdr.wav"), "rc %d: %s", rc, err.msg);
}

static FILE *mem_stream(const void *p, size_t n) {
    FILE *f = tmpfile();
    if (!f) return NULL;
    if (n) fwrite(p, 1, n, f);
    rewind(f);
    return f;
}

static void test_raw(void) {
    mt_err err;
    mt_audio a;
    /* s16le stereo 16 kHz: (1000, -3000), (32767, 32767), (-32768, 0) */
    const unsigned char s16[] = {0xe8, 0x03, 0x48, 0xf4, 0xff, 0x7f, 0xff, 0x7f, 0x00, 0x80, 0x00, 0x00};
    FILE *f = mem_stream(s16, sizeof s16);
    CHECK_OK(mt_audio_read_raw(&a, f, 16000, 2, MT_PCM_S16LE, 16000, 0, &err), &err);
    fclose(f);
    CHECK(a.n == 3 && a.src_channels == 2 && a.rate == 16000);
    if (a.n == 3) {
        CHECK(fabsf(a.pcm[0] - (-1000.0f / 32768.0f)) < 1e-7f);
        CHECK(fabsf(a.pcm[1] - 32767.0f / 32768.0f) < 1e-7f);
        CHECK(fabsf(a.pcm[2] + 0.5f) < 1e-7f);
    }
    mt_audio_clear(&a);
    /* partial trailing frame: 12 bytes + 3 */
    unsigned char s16p[15];
    memcpy(s16p, s16, 12);
    s16p[12] = 1, s16p[13] = 2, s16p[14] = 3;
    f = mem_stream(s16p, sizeof s16p);
    int rc = mt_audio_read_raw(&a, f, 16000, 2, MT_PCM_S16LE, 16000, 0, &err);
    fclose(f);
    CHECK_MSG(rc == MT_EFORMAT && strstr(err.msg, "partial frame"), "rc %d: %s", rc, err.msg);
    CHECK(a.pcm == NULL);
    /* f32le mono */
    const float fv[4] = {0.5f, -0.25f, 1.5f, 0.0f};
    f = mem_stream(fv, sizeof fv);
    CHECK_OK(mt_audio_read_raw(&a, f, 16000, 1, MT_PCM_F32LE, 16000, 0, &err), &err);
    fclose(f);
    CHECK(a.n == 4 && a.pcm && a.pcm[0] == 0.5f && a.pcm[1] == -0.25f && a.pcm[2] == 1.5f);
    mt_audio_clear(&a);
    /* f32 with a partial frame (2 of 4 bytes) */
    f = mem_stream(fv, 6);
    CHECK(mt_audio_read_raw(&a, f, 16000, 1, MT_PCM_F32LE, 16000, 0, &err) == MT_EFORMAT);
    fclose(f);
    /* empty input, bad arguments */
    f = mem_stream(NULL, 0);
    rc = mt_audio_read_raw(&a, f, 16000, 1, MT_PCM_S16LE, 16000, 0, &err);
    CHECK_MSG(rc == MT_EFORMAT && strstr(err.msg, "no samples"), "rc %d: %s", rc, err.msg);
    rewind(f);
    CHECK(mt_audio_read_raw(&a, f, 16000, 0, MT_PCM_S16LE, 16000, 0, &err) == MT_EINVAL);
    CHECK(mt_audio_read_raw(&a, f, 16000, 1, 7, 16000, 0, &err) == MT_EINVAL);
    CHECK(mt_audio_read_raw(&a, f, 0, 1, MT_PCM_S16LE, 16000, 0, &err) == MT_EUNSUPPORTED);
    fclose(f);
    /* raw at 48 kHz resampled to 16 kHz: a third of the samples */
    size_t n48 = 4800;
    int16_t *pcm = malloc(n48 * sizeof *pcm);
    for (size_t i = 0; i < n48; i++) pcm[i] = (int16_t)lrint(16000.0 * sin(2 * M_PI * 440.0 * (double)i / 48000.0));
    f = mem_stream(pcm, n48 * sizeof *pcm);
    CHECK_OK(mt_audio_read_raw(&a, f, 48000, 1, MT_PCM_S16LE, 16000, 0, &err), &err);
    fclose(f);
    CHECK_EQ_INT(a.n, 1600);
    CHECK_EQ_INT(a.src_rate, 48000);
    mt_audio_clear(&a);
    free(pcm);
}

/* An endless stream of zero bytes (like /dev/zero) that counts what it hands out. */
static ssize_t zero_read(void *cookie, char *buf, size_t size) {
    memset(buf, 0, size);
    *(size_t *)cookie += size;
    return (ssize_t)size;
}

/* The raw reader's duration limit: exactly the limit is accepted, one frame
 * more is refused, and an endless input is refused as soon as it passes the
 * limit (not after buffering the 24-h maximum). */
static void test_raw_limit(void) {
    mt_err err;
    mt_audio a;
    size_t n = 16001;
    int16_t *z = calloc(n, sizeof *z);
    FILE *f = mem_stream(z, 16000 * sizeof *z);
    CHECK_OK(mt_audio_read_raw(&a, f, 16000, 1, MT_PCM_S16LE, 16000, 1.0, &err), &err);
    CHECK_EQ_INT(a.n, 16000);
    mt_audio_clear(&a);
    fclose(f);
    f = mem_stream(z, n * sizeof *z);
    int rc = mt_audio_read_raw(&a, f, 16000, 1, MT_PCM_S16LE, 16000, 1.0, &err);
    CHECK_MSG(rc == MT_ELIMIT && strstr(err.msg, "longer than 1 s of audio") && !strchr(err.msg, '\n'), "rc %d: %s",
              rc, err.msg);
    CHECK(a.pcm == NULL && a.n == 0);
    fclose(f);
    free(z);
    size_t given = 0;
    f = fopencookie(&given, "r", (cookie_io_functions_t){.read = zero_read});
    rc = mt_audio_read_raw(&a, f, 48000, 2, MT_PCM_F32LE, 16000, 10.0, &err);
    CHECK_MSG(rc == MT_ELIMIT && strstr(err.msg, "longer than 10 s"), "rc %d: %s", rc, err.msg);
    /* 10 s of 48-kHz stereo float is 3.84 MB; allow one read chunk and stdio's buffer beyond it */
    CHECK_MSG(given <= (size_t)(480000 + 4096) * 8 + 65536, "read %zu bytes", given);
    fclose(f);
    /* the default (0) and hours are named in hours */
    given = 0;
    f = fopencookie(&given, "r", (cookie_io_functions_t){.read = zero_read});
    rc = mt_audio_read_raw(&a, f, 1000, 1, MT_PCM_S16LE, 1000, 3600, &err);
    CHECK_MSG(rc == MT_ELIMIT && strstr(err.msg, "longer than 1 h of audio at 1000 Hz (refused)"), "rc %d: %s", rc,
              err.msg);
    fclose(f);
    f = mem_stream(NULL, 0);
    CHECK(mt_audio_read_raw(&a, f, 16000, 1, MT_PCM_S16LE, 16000, -1, &err) == MT_EINVAL);
    CHECK(mt_audio_read_raw(&a, f, 16000, 1, MT_PCM_S16LE, 16000, NAN, &err) == MT_EINVAL);
    fclose(f);
}

static void test_resample(void) {
    mt_err err;
    /* 1 s of a 1 kHz sine (amplitude 0.8) at 44.1 kHz -> 16 kHz */
    size_t n = 44100;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(0.8 * sin(2 * M_PI * 1000.0 * (double)i / 44100.0));
    float *y = NULL;
    size_t ny = 0;
    CHECK_OK(mt_audio_resample(x, n, 44100, 16000, &y, &ny, &err), &err);
    CHECK_EQ_INT(ny, 16000);
    if (y && ny == 16000) {
        double md = 0, s2 = 0;
        for (size_t i = 400; i < ny - 400; i++) {   /* away from the edges */
            double want = 0.8 * sin(2 * M_PI * 1000.0 * (double)i / 16000.0);
            md = fmax(md, fabs(y[i] - want));
            s2 += (double)y[i] * y[i];
        }
        double rms = sqrt(s2 / (double)(ny - 800));
        if (getenv("TEST_VERBOSE")) fprintf(stderr, "resampled sine: max err %.3g rms %.6f\n", md, rms);
        CHECK_MSG(md < 1e-3, "resampled sine max error %g", md);
        CHECK_MSG(fabs(rms - 0.8 / sqrt(2.0)) < 1e-3, "resampled sine rms %g", rms);
    }
    free(y);
    /* same rate copies */
    CHECK_OK(mt_audio_resample(x, 10, 16000, 16000, &y, &ny, &err), &err);
    CHECK(ny == 10 && y && memcmp(x, y, 10 * sizeof *x) == 0);
    free(y);
    CHECK(mt_audio_resample(x, 0, 16000, 8000, &y, &ny, &err) == MT_EINVAL && y == NULL);
    CHECK(mt_audio_resample(x, 10, 16000, 0, &y, &ny, &err) != MT_OK && y == NULL);
    free(x);
}

int main(void) {
    json_error_t je;
    G = json_load_file(DIR "goldens.json", 0, &je);
    CHECK_MSG(G != NULL, "goldens.json: %s", je.text);
    if (!G) return check_report("audio");
    mt_err err;
    mt_pool *pool = NULL;
    CHECK_OK(mt_pool_new(&pool, 2, &err), &err);
    test_filters();
    test_mel(pool);
    test_window();
    test_files();
    test_errors();
    test_raw();
    test_raw_limit();
    test_resample();
    mt_pool_free(pool);
    json_decref(G);
    return check_report("audio");
}
