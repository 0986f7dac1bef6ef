/* tts.c - voice specs, chunked synthesis and audio output for mlx-tts (see tts.h). */
#include "tts/tts.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sndfile.h>

#include "core/file.h"
#include "io/config.h"
#include "text/g2p.h"

int mt_tts_family(const char *dir, int *family, mt_err *err) {
    mt_config *cfg = NULL;
    *family = MT_TTS_KOKORO;
    MT_TRY(mt_config_load(&cfg, dir, err));
    const char *t = mt_config_model_type(cfg);
    int rc = MT_OK;
    if (t && (!strcmp(t, "llama") || !strcmp(t, "orpheus"))) *family = MT_TTS_ORPHEUS;
    else if (t && strcmp(t, "kokoro"))
        rc = mt_seterr(err, MT_EUNSUPPORTED, "%s: model_type '%s' is not a speech model mlx-tts runs (kokoro; llama or "
                       "orpheus: Orpheus)", dir, t);
    mt_config_free(cfg);
    return rc;
}

/* A float32 little-endian C-order .npy of 1 to 3 dimensions: [rows, 1, W], [rows, W] or [W]. */
static int npy_voice(const char *path, size_t W, float **pack, size_t *rows, mt_err *err) {
    char *buf = NULL;
    size_t len = 0;
    MT_TRY(mt_read_file_max(path, (size_t)1 << 30, &buf, &len, err));
    int rc = MT_EFORMAT;
    size_t dims[4], nd = 0;
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6)) goto bad;
    size_t hl, off;
    if (buf[6] == 1) { hl = (unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8; off = 10; }
    else if ((buf[6] == 2 || buf[6] == 3) && len >= 12) {
        hl = (unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8 | (size_t)(unsigned char)buf[10] << 16 |
             (size_t)(unsigned char)buf[11] << 24;
        off = 12;
    } else goto bad;
    if (hl > len - off) goto bad;
    char hdr[1024];
    if (hl >= sizeof hdr) goto bad;
    memcpy(hdr, buf + off, hl);
    hdr[hl] = 0;
    if (!strstr(hdr, "'descr': '<f4'") || !strstr(hdr, "'fortran_order': False")) {
        mt_seterr(err, MT_EFORMAT, "%s: a voice .npy must hold little-endian float32 in C order", path);
        goto out;
    }
    char *sh = strstr(hdr, "'shape': (");
    if (!sh) goto bad;
    for (char *p = sh + 10; *p && *p != ')';) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *e;
        unsigned long long d = strtoull(p, &e, 10);
        if (e == p || nd == 4 || d > ((size_t)1 << 30)) goto bad;
        dims[nd++] = (size_t)d;
        p = e;
    }
    size_t r = 0;
    if (nd == 1 && dims[0] == W) r = 1;
    else if (nd == 2 && dims[1] == W) r = dims[0];
    else if (nd == 3 && dims[1] == 1 && dims[2] == W) r = dims[0];
    if (!r) {
        char s[96] = "";
        for (size_t i = 0; i < nd; i++)
            snprintf(s + strlen(s), sizeof s - strlen(s), "%s%zu", i ? ", " : "", dims[i]);
        mt_seterr(err, MT_EFORMAT, "%s: voice shape [%s], the model needs [rows, 1, %zu], [rows, %zu] or [%zu]",
                  path, s, W, W, W);
        goto out;
    }
    off += hl;
    if ((len - off) / sizeof(float) / W < r) goto bad;
    *pack = malloc(r * W * sizeof(float));
    if (!*pack) { rc = mt_seterr(err, MT_ENOMEM, "out of memory"); goto out; }
    memcpy(*pack, buf + off, r * W * sizeof(float));
    for (size_t i = 0; i < r * W; i++)
        if (!isfinite((*pack)[i])) {
            free(*pack);
            *pack = NULL;
            mt_seterr(err, MT_EFORMAT, "%s: the voice holds a value that is not finite", path);
            goto out;
        }
    *rows = r;
    rc = MT_OK;
    goto out;
bad:
    mt_seterr(err, MT_EFORMAT, "%s: not a .npy voice file", path);
out:
    free(buf);
    return rc;
}

static int ends_with(const char *s, size_t n, const char *suf) {
    size_t m = strlen(suf);
    return n >= m && !memcmp(s + n - m, suf, m);
}

/* One voice (no blend): a name of the folder's voices or a file. */
static int one_voice(const mt_kokoro *k, const char *dir, const char *name, float **pack, size_t *rows,
                     mt_err *err) {
    size_t n = strlen(name), W = 2 * (size_t)mt_kokoro_style_dim(k);
    if (!n) return mt_seterr(err, MT_EINVAL, "empty voice name");
    if (ends_with(name, n, ".npy")) {
        if (!mt_file_exists(name)) return mt_seterr(err, MT_ENOTFOUND, "voice file '%s' not found", name);
        return npy_voice(name, W, pack, rows, err);
    }
    if (ends_with(name, n, ".safetensors")) {
        if (!mt_file_exists(name)) return mt_seterr(err, MT_ENOTFOUND, "voice file '%s' not found", name);
    } else {
        if (strchr(name, '/') || name[0] == '.')
            return mt_seterr(err, MT_ENOTFOUND, "unknown voice '%s'", name);
        char *p = mt_path_join(dir, "voices/");
        char *f = p ? malloc(strlen(p) + n + 13) : NULL;
        if (!f) { free(p); return mt_seterr(err, MT_ENOMEM, "out of memory"); }
        sprintf(f, "%s%s.safetensors", p, name);
        int ok = mt_file_exists(f);
        free(p);
        free(f);
        if (!ok) return mt_seterr(err, MT_ENOTFOUND, "unknown voice '%s' (no voices/%s.safetensors in the model folder)",
                                  name, name);
    }
    return mt_kokoro_voice_load(k, dir, name, pack, rows, err);
}

int mt_tts_voice(const mt_kokoro *k, const char *dir, const char *spec, float **pack, size_t *rows, mt_err *err) {
    *pack = NULL;
    *rows = 0;
    if (!spec || !*spec) return mt_seterr(err, MT_EINVAL, "empty voice");
    if (!strchr(spec, ',') && !strchr(spec, ':')) return one_voice(k, dir, spec, pack, rows, err);
    size_t W = 2 * (size_t)mt_kokoro_style_dim(k);
    char *s = strdup(spec);
    if (!s) return mt_seterr(err, MT_ENOMEM, "out of memory");
    float *acc = NULL;
    size_t acc_rows = 0;
    double wsum = 0;
    int rc = MT_OK;
    char *save = NULL;
    for (char *part = strtok_r(s, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        double w = 1;
        char *colon = strrchr(part, ':');
        if (colon) {
            char *e;
            errno = 0;
            w = strtod(colon + 1, &e);
            if (e == colon + 1 || *e || errno || !isfinite(w) || w <= 0) {
                rc = mt_seterr(err, MT_EINVAL, "voice '%s': the weight '%s' is not a positive number", spec, colon + 1);
                break;
            }
            *colon = 0;
        }
        float *p = NULL;
        size_t r = 0;
        if ((rc = one_voice(k, dir, part, &p, &r, err))) break;
        if (!acc) {
            acc = calloc(r * W, sizeof(float));
            acc_rows = r;
            if (!acc) { free(p); rc = mt_seterr(err, MT_ENOMEM, "out of memory"); break; }
        } else if (r != acc_rows) {
            free(p);
            rc = mt_seterr(err, MT_EFORMAT, "voice '%s': '%s' has %zu rows, the first voice %zu", spec, part, r, acc_rows);
            break;
        }
        for (size_t i = 0; i < r * W; i++) acc[i] += (float)w * p[i];
        wsum += w;
        free(p);
    }
    free(s);
    if (!rc && !acc) rc = mt_seterr(err, MT_EINVAL, "voice '%s' names no voice", spec);
    if (rc) { free(acc); return rc; }
    for (size_t i = 0; i < acc_rows * W; i++) acc[i] = (float)(acc[i] / wsum);
    *pack = acc;
    *rows = acc_rows;
    return MT_OK;
}

static size_t utf8_count(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

int mt_tts_speakable(const char *ph) {
    static const char *const marks[] = {";", ":", ",", ".", "!", "?", "\xc2\xa1", "\xc2\xbf", "\xe2\x80\x94",
                                        "\xe2\x80\xa6", "\"", "\xc2\xab", "\xc2\xbb", "\xe2\x80\x9c",
                                        "\xe2\x80\x9d", " "};
    for (const unsigned char *p = (const unsigned char *)ph; *p;) {
        size_t n = *p < 0x80 ? 1 : *p < 0xE0 ? 2 : *p < 0xF0 ? 3 : 4, i;
        uint32_t cp = n == 1 ? *p : n == 2 ? *p & 0x1Fu : n == 3 ? *p & 0x0Fu : *p & 0x07u;
        for (i = 1; i < n && p[i]; i++) cp = cp << 6 | (p[i] & 0x3Fu);
        if (i < n) return 0;
        int mark = 0;
        for (size_t m = 0; m < sizeof marks / sizeof *marks && !mark; m++)
            mark = strlen(marks[m]) == n && !memcmp(marks[m], p, n);
        if (!mark && mt_g2p_vocab_id(cp) >= 0) return 1;
        p += n;
    }
    return 0;
}

int mt_tts_synth(const mt_kokoro *k, const char *ph, const float *pack, size_t rows, float speed,
                 const mt_kokoro_opts *opts, float **wav, size_t *len, mt_err *err) {
    *wav = NULL;
    *len = 0;
    if (!(speed >= MT_TTS_SPEED_MIN && speed <= MT_TTS_SPEED_MAX))
        return mt_seterr(err, MT_EINVAL, "speed %g is outside [%g, %g]", speed, MT_TTS_SPEED_MIN, MT_TTS_SPEED_MAX);
    if (!mt_tts_speakable(ph)) return mt_seterr(err, MT_EINVAL, "nothing to speak: no phoneme the model knows");
    size_t ctx = mt_kokoro_max_tokens(k), max = ctx > 2 ? ctx - 2 : 1;
    if (max > MT_G2P_MAX_PHONEMES) max = MT_G2P_MAX_PHONEMES;
    mt_g2p_chunks ch;
    MT_TRY(mt_g2p_split(ph, strlen(ph), max, &ch, err));
    mt_kokoro_opts o = opts ? *opts : (mt_kokoro_opts){0};
    float *all = NULL;
    size_t n_all = 0, spoken = 0;
    int rc = MT_OK;
    for (size_t c = 0; c < ch.n && !rc; c++) {
        int *ids = NULL;
        size_t n = 0;
        if ((rc = mt_kokoro_ids(k, ch.s[c], &ids, &n, err))) break;
        if (n <= 2) { free(ids); continue; }   /* nothing the model knows in this chunk */
        spoken++;
        const float *style = mt_kokoro_voice_row(k, pack, rows, utf8_count(ch.s[c]));
        float *w = NULL;
        size_t wl = 0;
        rc = mt_kokoro_synth(k, ids, n, style, speed, &o, &w, &wl, NULL, err);
        free(ids);
        o.seed++;
        if (rc) break;
        float *g = realloc(all, (n_all + wl) * sizeof(float));
        if (!g) { free(w); rc = mt_seterr(err, MT_ENOMEM, "out of memory"); break; }
        all = g;
        memcpy(all + n_all, w, wl * sizeof(float));
        n_all += wl;
        free(w);
    }
    mt_g2p_chunks_free(&ch);
    if (!rc && !spoken) rc = mt_seterr(err, MT_EINVAL, "nothing to speak: no phoneme the model knows");
    if (rc) { free(all); return rc; }
    *wav = all;
    *len = n_all;
    return MT_OK;
}

int mt_tts_format(const char *name) {
    if (!strcmp(name, "wav")) return MT_TTS_WAV;
    if (!strcmp(name, "flac")) return MT_TTS_FLAC;
    if (!strcmp(name, "ogg")) return MT_TTS_OGG;
    return -1;
}

const char *mt_tts_format_ext(int format) {
    return format == MT_TTS_FLAC ? "flac" : format == MT_TTS_OGG ? "ogg" : "wav";
}

static int16_t to_s16(float x) {
    if (!(x == x)) return 0;
    x = x > 1 ? 1 : x < -1 ? -1 : x;
    return (int16_t)lrintf(x * 32767.0f);
}

int mt_tts_write_file(const char *path, int format, const float *wav, size_t n, int rate, mt_err *err) {
    char *tmp = NULL;
    int fd = -1;
    MT_TRY(mt_tmp_open(path, &tmp, &fd, err));
    SF_INFO info = {.samplerate = rate, .channels = 1};
    info.format = format == MT_TTS_FLAC ? SF_FORMAT_FLAC | SF_FORMAT_PCM_16
                  : format == MT_TTS_OGG ? SF_FORMAT_OGG | SF_FORMAT_VORBIS
                                         : SF_FORMAT_WAV | SF_FORMAT_PCM_16;
    int rc = MT_OK;
    SNDFILE *sf = sf_open_fd(fd, SFM_WRITE, &info, 0);
    if (!sf) {
        rc = mt_seterr(err, MT_EIO, "%s: %s", path, sf_strerror(NULL));
        close(fd);
    } else {
        sf_count_t w = 0;
        if (format == MT_TTS_OGG) w = sf_write_float(sf, wav, (sf_count_t)n);
        else {   /* 16-bit samples converted here, the same as --raw s16le's */
            int16_t buf[4096];
            for (size_t i = 0; i < n;) {
                size_t m = n - i < 4096 ? n - i : 4096;
                for (size_t t = 0; t < m; t++) buf[t] = to_s16(wav[i + t]);
                sf_count_t got = sf_write_short(sf, buf, (sf_count_t)m);
                if (got > 0) w += got;
                if (got != (sf_count_t)m) break;
                i += m;
            }
        }
        if (w != (sf_count_t)n) rc = mt_seterr(err, MT_EIO, "%s: write failed: %s", path, sf_strerror(sf));
        if (sf_close(sf) && !rc) rc = mt_seterr(err, MT_EIO, "%s: write failed", path);
        if (close(fd) && !rc) rc = mt_seterr(err, MT_EIO, "%s: write failed: %s", path, strerror(errno));
    }
    if (rc) mt_tmp_discard(tmp);
    else rc = mt_tmp_commit(tmp, path, err);
    free(tmp);
    return rc;
}

int mt_tts_write_pcm(FILE *f, int s16, const float *wav, size_t n, mt_err *err) {
    unsigned char buf[4096];
    size_t per = s16 ? 2 : 4, k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s16) {
            uint16_t u = (uint16_t)to_s16(wav[i]);
            buf[k] = (unsigned char)(u & 0xff);
            buf[k + 1] = (unsigned char)(u >> 8);
        } else {
            uint32_t u;
            memcpy(&u, &wav[i], 4);
            for (int b = 0; b < 4; b++) buf[k + (size_t)b] = (unsigned char)(u >> (8 * b));
        }
        k += per;
        if (k == sizeof buf || i + 1 == n) {
            if (fwrite(buf, 1, k, f) != k) return mt_seterr(err, MT_EIO, "write failed: %s", strerror(errno));
            k = 0;
        }
    }
    return MT_OK;
}

char *mt_tts_file_stem(const char *id) {
    size_t n = strlen(id);
    if (n > 200) n = 200;
    char *s = malloc(n + 2);
    if (!s) return NULL;
    if (!n) { strcpy(s, "_"); return s; }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)id[i];
        s[i] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                       (c == '.' && i)
                   ? (char)c
                   : '_';
    }
    s[n] = 0;
    return s;
}
