/* test_tts.c - lib/tts on the tiny Kokoro folder (tests/data/kokoro-tiny/model): voice
 * specs (names, normalized blends, .safetensors and .npy files, wrong shapes), the
 * speakable test, chunked synthesis joined end to end, file stems, and the audio writers
 * (16-bit samples of a WAV equal to the raw s16le stream). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sndfile.h>

#include "check.h"
#include "core/file.h"
#include "text/g2p.h"
#include "tts/tts.h"

#define DIR "tests/data/kokoro-tiny/model"

/* A float32 .npy of `shape` (Python tuple text) holding v[n]. */
static void write_npy(const char *path, const char *shape, const float *v, size_t n) {
    char d[256];
    int len = snprintf(d, sizeof d, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    while ((10 + len + 1) % 64) d[len++] = ' ';
    d[len++] = '\n';
    FILE *f = fopen(path, "wb");
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(len & 0xff, f);
    fputc(len >> 8, f);
    fwrite(d, 1, (size_t)len, f);
    fwrite(v, sizeof(float), n, f);
    fclose(f);
}

int main(void) {
    mt_err err = {0};
    mt_kokoro *k = NULL;
    CHECK_OK(mt_kokoro_load(DIR, NULL, &k, &err), &err);
    if (!k) return check_report("test_tts");
    size_t W = 2 * (size_t)mt_kokoro_style_dim(k);
    char tmpl[] = "/tmp/test_tts.XXXXXX";
    char *tmp = mkdtemp(tmpl);
    CHECK(tmp != NULL);

    /* a name, its file, blends */
    float *p1 = NULL, *p2 = NULL, *p3 = NULL;
    size_t r1 = 0, r2 = 0, r3 = 0;
    CHECK_OK(mt_tts_voice(k, DIR, "af_tiny", &p1, &r1, &err), &err);
    CHECK_EQ_INT(r1, 64);
    CHECK_OK(mt_tts_voice(k, DIR, DIR "/voices/af_tiny.safetensors", &p2, &r2, &err), &err);
    CHECK(r2 == r1 && p2 && !memcmp(p1, p2, r1 * W * sizeof(float)));
    free(p2);
    CHECK_OK(mt_tts_voice(k, DIR, "af_tiny:3,af_tiny:1", &p2, &r2, &err), &err);
    int close_all = r2 == r1;
    for (size_t i = 0; close_all && i < r1 * W; i++) close_all = fabsf(p2[i] - p1[i]) <= 1e-6f * (1 + fabsf(p1[i]));
    CHECK(close_all);
    free(p2);

    /* a blend with a zero pack of weight 1:3 -> 0.75 of the voice */
    float *zero = calloc(64 * W, sizeof(float));
    char zpath[256], bpath[256], spec[600];
    snprintf(zpath, sizeof zpath, "%s/zero.npy", tmp);
    write_npy(zpath, "(64, 1, 256)", zero, 64 * W);
    snprintf(spec, sizeof spec, "af_tiny:3,%s:1", zpath);
    CHECK_OK(mt_tts_voice(k, DIR, spec, &p3, &r3, &err), &err);
    close_all = r3 == r1;
    for (size_t i = 0; close_all && i < r1 * W; i++) close_all = fabsf(p3[i] - 0.75f * p1[i]) <= 1e-6f;
    CHECK(close_all);
    free(p3);
    /* one row [256] */
    write_npy(zpath, "(256,)", p1 + 5 * W, W);
    CHECK_OK(mt_tts_voice(k, DIR, zpath, &p3, &r3, &err), &err);
    CHECK(r3 == 1 && p3 && !memcmp(p3, p1 + 5 * W, W * sizeof(float)));
    free(p3);

    /* refusals */
    p3 = (float *)1;
    CHECK_EQ_INT(mt_tts_voice(k, DIR, "nobody", &p3, &r3, &err), MT_ENOTFOUND);
    CHECK(p3 == NULL && strstr(err.msg, "unknown voice 'nobody'"));
    CHECK_EQ_INT(mt_tts_voice(k, DIR, "../voices/af_tiny", &p3, &r3, &err), MT_ENOTFOUND);
    CHECK_EQ_INT(mt_tts_voice(k, DIR, "af_tiny:0", &p3, &r3, &err), MT_EINVAL);
    CHECK_EQ_INT(mt_tts_voice(k, DIR, "af_tiny:x", &p3, &r3, &err), MT_EINVAL);
    CHECK_EQ_INT(mt_tts_voice(k, DIR, "", &p3, &r3, &err), MT_EINVAL);
    CHECK_EQ_INT(mt_tts_voice(k, DIR, ",", &p3, &r3, &err), MT_EINVAL);
    snprintf(bpath, sizeof bpath, "%s/bad.npy", tmp);
    write_npy(bpath, "(4, 1, 128)", zero, 4 * 128);
    CHECK_EQ_INT(mt_tts_voice(k, DIR, bpath, &p3, &r3, &err), MT_EFORMAT);
    CHECK(strstr(err.msg, "voice shape [4, 1, 128]") != NULL);
    snprintf(spec, sizeof spec, "af_tiny,%s", zpath);   /* 64 rows and 1 row */
    CHECK_EQ_INT(mt_tts_voice(k, DIR, spec, &p3, &r3, &err), MT_EFORMAT);
    FILE *f = fopen(bpath, "wb");
    fputs("not a numpy file", f);
    fclose(f);
    CHECK_EQ_INT(mt_tts_voice(k, DIR, bpath, &p3, &r3, &err), MT_EFORMAT);
    free(zero);

    /* speakable */
    CHECK(mt_tts_speakable("h\xc9\x99l"));
    CHECK(!mt_tts_speakable(""));
    CHECK(!mt_tts_speakable("... !?, \xe2\x80\xa6"));
    CHECK(!mt_tts_speakable("123"));

    /* chunks: a string over 510 code points equals its pieces' audio joined */
    const char *sent = "h\xc9\x99l\xcb\x88o\xca\x8a w\xcb\x88\xc9\x9c\xcb\x90ld! ";   /* 15 code points */
    char *longp = malloc(64 * strlen(sent) + 1);
    longp[0] = 0;
    for (int i = 0; i < 40; i++) strcat(longp, sent);   /* 600 code points */
    longp[strlen(longp) - 1] = 0;
    mt_kokoro_opts o = {0};
    float *wav = NULL, *wa = NULL;
    size_t n = 0, na = 0;
    CHECK_OK(mt_tts_synth(k, longp, p1, r1, 1.0f, &o, &wav, &n, &err), &err);
    mt_g2p_chunks ch;
    CHECK_OK(mt_g2p_split(longp, strlen(longp), 510, &ch, &err), &err);
    CHECK_EQ_INT(ch.n, 2);
    size_t at = 0;
    int same = 1;
    for (size_t c = 0; c < ch.n; c++) {
        CHECK_OK(mt_tts_synth(k, ch.s[c], p1, r1, 1.0f, &o, &wa, &na, &err), &err);
        same = same && at + na <= n && wa && !memcmp(wav + at, wa, na * sizeof(float));
        at += na;
        free(wa);
    }
    CHECK(same && at == n);
    mt_g2p_chunks_free(&ch);
    free(longp);
    CHECK_EQ_INT(mt_tts_synth(k, "h\xc9\x99", p1, r1, 0.4f, &o, &wa, &na, &err), MT_EINVAL);
    CHECK_EQ_INT(mt_tts_synth(k, "h\xc9\x99", p1, r1, 2.5f, &o, &wa, &na, &err), MT_EINVAL);
    CHECK_EQ_INT(mt_tts_synth(k, ", .", p1, r1, 1.0f, &o, &wa, &na, &err), MT_EINVAL);

    /* writers: the WAV's 16-bit samples are the s16le stream's */
    float pcm[5] = {0.5f, -0.25f, 2.0f, -3.0f, 0.0001f};
    char wpath[256], rpath[256];
    snprintf(wpath, sizeof wpath, "%s/a.wav", tmp);
    snprintf(rpath, sizeof rpath, "%s/a.raw", tmp);
    CHECK_OK(mt_tts_write_file(wpath, MT_TTS_WAV, pcm, 5, 24000, &err), &err);
    f = fopen(rpath, "wb");
    CHECK_OK(mt_tts_write_pcm(f, 1, pcm, 5, &err), &err);
    fclose(f);
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    CHECK_OK(mt_read_file(wpath, &a, &la, &err), &err);
    CHECK_OK(mt_read_file(rpath, &b, &lb, &err), &err);
    CHECK(la == 44 + 10 && lb == 10 && !memcmp(a + 44, b, 10));
    int16_t s[5];
    memcpy(s, b, 10);
    CHECK(s[0] == 16384 && s[1] == -8192 && s[2] == 32767 && s[3] == -32767 && s[4] == 3);
    free(a);
    free(b);
    SF_INFO info = {0};
    SNDFILE *sf = sf_open(wpath, SFM_READ, &info);
    CHECK(sf && info.samplerate == 24000 && info.channels == 1 && info.frames == 5);
    if (sf) sf_close(sf);
    f = fopen(rpath, "wb");
    CHECK_OK(mt_tts_write_pcm(f, 0, pcm, 5, &err), &err);
    fclose(f);
    CHECK_OK(mt_read_file(rpath, &b, &lb, &err), &err);
    CHECK(lb == 20 && !memcmp(b, pcm, 20));
    free(b);
    /* a path that is a folder: refused, nothing left behind */
    char dpath[256];
    snprintf(dpath, sizeof dpath, "%s/d.wav", tmp);
    CHECK(mt_mkdirs(dpath, &err) == 0);
    CHECK(mt_tts_write_file(dpath, MT_TTS_WAV, pcm, 5, 24000, &err) != 0);
    CHECK(mt_tts_format("flac") == MT_TTS_FLAC && mt_tts_format("mp3") == -1);
    CHECK_STR(mt_tts_format_ext(MT_TTS_OGG), "ogg");

    /* stems */
    char *st = mt_tts_file_stem("../a b/\xc3\xa9");
    CHECK_STR(st, "_._a_b___");
    free(st);
    st = mt_tts_file_stem("");
    CHECK_STR(st, "_");
    free(st);
    st = mt_tts_file_stem("ok-1.x_y");
    CHECK_STR(st, "ok-1.x_y");
    free(st);

    free(wav);
    free(p1);
    mt_kokoro_free(k);
    mt_remove_tree(tmp);
    return check_report("test_tts");
}
