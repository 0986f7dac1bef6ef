/* audio.c - audio input for the speech programs: libsndfile decoding (from a
 * path or from memory), channel averaging to mono, libsoxr resampling, and raw
 * interleaved PCM from a stream.  Every size is bounded (at most 24 h of
 * audio, sane rates and channel counts) before memory is committed. */
#include "audio/audio.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SECONDS   (24.0 * 3600.0)
#define MIN_RATE      1000
#define MAX_RATE      1000000
#define MAX_CHANNELS  1024
#define CHUNK_FRAMES  4096

void mt_audio_clear(mt_audio *a) {
    if (!a) return;
    free(a->pcm);
    memset(a, 0, sizeof *a);
}

static int check_rate(int r, const char *what, const char *name, mt_err *err) {
    if (r < MIN_RATE || r > MAX_RATE)
        return mt_seterr(err, MT_EUNSUPPORTED, "%s: unsupported %s sample rate %d Hz (allowed %d..%d)", name, what, r,
                         MIN_RATE, MAX_RATE);
    return MT_OK;
}

/* A growable mono buffer with a cap of max samples (max_s seconds: 24 h, or
 * the raw reader's own limit). */
typedef struct {
    float *p;
    size_t n, cap, max;
    double max_s;
} monobuf;

static int mono_reserve(monobuf *b, size_t extra, const char *name, int src_rate, mt_err *err) {
    if (extra > b->max - b->n) {
        if (b->max_s >= 3600 && fmod(b->max_s, 3600) == 0)
            return mt_seterr(err, MT_ELIMIT, "%s: longer than %.0f h of audio at %d Hz (refused)", name,
                             b->max_s / 3600.0, src_rate);
        return mt_seterr(err, MT_ELIMIT, "%s: longer than %g s of audio at %d Hz (refused)", name, b->max_s, src_rate);
    }
    if (b->n + extra <= b->cap) return MT_OK;
    size_t nc = b->cap ? b->cap : 65536;
    while (nc < b->n + extra) nc = nc > SIZE_MAX / 2 ? SIZE_MAX : nc * 2;
    if (nc > b->max) nc = b->max;
    if (nc > SIZE_MAX / sizeof(float)) return mt_seterr(err, MT_ENOMEM, "%s: out of memory", name);
    float *np = realloc(b->p, nc * sizeof(float));
    if (!np) return mt_seterr(err, MT_ENOMEM, "%s: out of memory (%zu samples)", name, nc);
    b->p = np;
    b->cap = nc;
    return MT_OK;
}

int mt_audio_resample(const float *in, size_t n, int from, int to, float **out, size_t *n_out, mt_err *err) {
    *out = NULL;
    *n_out = 0;
    MT_TRY(check_rate(from, "input", "resample", err));
    MT_TRY(check_rate(to, "output", "resample", err));
    if (n == 0) return mt_seterr(err, MT_EINVAL, "resample: no samples");
    if (from == to) {
        float *c = malloc(n * sizeof(float));
        if (!c) return mt_seterr(err, MT_ENOMEM, "resample: out of memory");
        memcpy(c, in, n * sizeof(float));
        *out = c;
        *n_out = n;
        return MT_OK;
    }
    double want = (double)n * (double)to / (double)from;
    if (want > MAX_SECONDS * to + 16.0 || want + 2.0 > (double)(SIZE_MAX / sizeof(float)))
        return mt_seterr(err, MT_ELIMIT, "resample: output of %.0f samples is too long", want);
    size_t olen = (size_t)want + 1;
    float *o = malloc(olen * sizeof(float));
    if (!o) return mt_seterr(err, MT_ENOMEM, "resample: out of memory (%zu samples)", olen);
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    size_t idone = 0, odone = 0;
    soxr_error_t e = soxr_oneshot((double)from, (double)to, 1, in, n, &idone, o, olen, &odone, &io, &q, NULL);
    if (e) {
        free(o);
        return mt_seterr(err, MT_EINVAL, "resample %d -> %d Hz failed: %s", from, to, e);
    }
    if (odone == 0) {
        free(o);
        return mt_seterr(err, MT_EINVAL, "resample %d -> %d Hz: no output samples", from, to);
    }
    *out = o;
    *n_out = odone;
    return MT_OK;
}

/* Move a decoded mono signal at src_rate into *a at `rate`. Takes b->p. */
static int finish(mt_audio *a, monobuf *b, int src_rate, int channels, int rate, const char *name, mt_err *err) {
    if (b->n == 0) {
        free(b->p);
        return mt_seterr(err, MT_EFORMAT, "%s: no samples", name);
    }
    float *pcm = b->p;
    size_t n = b->n;
    if (src_rate != rate) {
        int rc = mt_audio_resample(b->p, b->n, src_rate, rate, &pcm, &n, err);
        free(b->p);
        if (rc) return mt_preferr(err, "%s", name);
    }
    a->pcm = pcm;
    a->n = n;
    a->rate = rate;
    a->src_rate = src_rate;
    a->src_channels = channels;
    return MT_OK;
}

static int decode_sf(mt_audio *a, SNDFILE *sf, const SF_INFO *info, const char *name, int rate, mt_err *err) {
    if (info->channels < 1 || info->channels > MAX_CHANNELS)
        return mt_seterr(err, MT_EFORMAT, "%s: bad channel count %d", name, info->channels);
    if (info->samplerate < MIN_RATE || info->samplerate > MAX_RATE)
        return mt_seterr(err, MT_EUNSUPPORTED, "%s: unsupported sample rate %d Hz (allowed %d..%d)", name,
                         info->samplerate, MIN_RATE, MAX_RATE);
    int ch = info->channels;
    monobuf b = {.max = (size_t)(MAX_SECONDS * info->samplerate), .max_s = MAX_SECONDS};
    /* SF_COUNT_MAX means "unknown length" (a stream); the cap then applies while reading */
    int known = info->frames > 0 && info->frames != SF_COUNT_MAX;
    if (known && (uint64_t)info->frames > (uint64_t)b.max)
        return mt_seterr(err, MT_ELIMIT, "%s: longer than %.0f h of audio (%.0f s, refused)", name,
                         MAX_SECONDS / 3600.0, (double)info->frames / info->samplerate);
    if (known) {
        size_t want = (size_t)info->frames;
        if (want > ((size_t)1 << 24)) want = (size_t)1 << 24;   /* do not trust the header beyond 16M up front */
        int rc = mono_reserve(&b, want, name, info->samplerate, err);
        if (rc) return rc;
    }
    float *buf = malloc((size_t)CHUNK_FRAMES * (size_t)ch * sizeof(float));
    if (!buf) {
        free(b.p);
        return mt_seterr(err, MT_ENOMEM, "%s: out of memory", name);
    }
    for (;;) {
        sf_count_t got = sf_readf_float(sf, buf, CHUNK_FRAMES);
        if (got <= 0) break;
        if (got > CHUNK_FRAMES) got = CHUNK_FRAMES;
        int rc = mono_reserve(&b, (size_t)got, name, info->samplerate, err);
        if (rc) {
            free(buf);
            free(b.p);
            return rc;
        }
        float *dst = b.p + b.n;
        if (ch == 1) {
            memcpy(dst, buf, (size_t)got * sizeof(float));
        } else {
            for (sf_count_t i = 0; i < got; i++) {
                const float *fr = buf + (size_t)i * (size_t)ch;
                double s = 0;
                for (int c = 0; c < ch; c++) s += fr[c];
                dst[i] = (float)(s / ch);
            }
        }
        /* sanitize: a decoder may hand back NaN/Inf from corrupt float data */
        for (sf_count_t i = 0; i < got; i++)
            if (!isfinite(dst[i])) dst[i] = 0.0f;
        b.n += (size_t)got;
    }
    free(buf);
    int e = sf_error(sf);
    if (e != SF_ERR_NO_ERROR && b.n == 0) {
        free(b.p);
        return mt_seterr(err, MT_EFORMAT, "%s: corrupt audio data: %s", name, sf_error_number(e));
    }
    return finish(a, &b, info->samplerate, ch, rate, name, err);
}

int mt_audio_load(mt_audio *a, const char *path, int rate, mt_err *err) {
    memset(a, 0, sizeof *a);
    MT_TRY(check_rate(rate, "output", path, err));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR) return mt_seterr(err, MT_ENOTFOUND, "%s: no such file", path);
        return mt_seterr(err, MT_EIO, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mt_seterr(err, MT_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return mt_seterr(err, MT_EIO, "%s: is a directory, not an audio file", path);
    }
    if (S_ISREG(st.st_mode) && st.st_size == 0) {
        close(fd);
        return mt_seterr(err, MT_EFORMAT, "%s: empty file (no samples)", path);
    }
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open_fd(fd, SFM_READ, &info, 0);
    if (!sf) {
        int rc = mt_seterr(err, MT_EFORMAT, "%s: not audio or corrupt (%s)", path, sf_strerror(NULL));
        close(fd);
        return rc;
    }
    int rc = decode_sf(a, sf, &info, path, rate, err);
    sf_close(sf);
    close(fd);
    return rc;
}

/* libsndfile virtual I/O over a memory buffer */
typedef struct {
    const unsigned char *p;
    sf_count_t len, pos;
} memio;

static sf_count_t mem_len(void *u) { return ((memio *)u)->len; }
static sf_count_t mem_seek(sf_count_t off, int whence, void *u) {
    memio *m = u;
    sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : whence == SEEK_END ? m->len : -1;
    if (base < 0) return -1;
    if ((off > 0 && base > INT64_MAX - off) || base + off < 0) return -1;
    sf_count_t np = base + off;
    if (np > m->len) np = m->len;
    m->pos = np;
    return np;
}
static sf_count_t mem_read(void *ptr, sf_count_t count, void *u) {
    memio *m = u;
    if (count <= 0 || m->pos >= m->len) return 0;
    sf_count_t k = m->len - m->pos;
    if (count < k) k = count;
    memcpy(ptr, m->p + m->pos, (size_t)k);
    m->pos += k;
    return k;
}
static sf_count_t mem_write(const void *ptr, sf_count_t count, void *u) {
    (void)ptr;
    (void)count;
    (void)u;
    return 0;
}
static sf_count_t mem_tell(void *u) { return ((memio *)u)->pos; }

int mt_audio_load_mem(mt_audio *a, const void *data, size_t len, const char *name, int rate, mt_err *err) {
    memset(a, 0, sizeof *a);
    if (!name) name = "(memory)";
    MT_TRY(check_rate(rate, "output", name, err));
    if (!data || len == 0) return mt_seterr(err, MT_EFORMAT, "%s: empty file (no samples)", name);
    if (len > (size_t)INT64_MAX) return mt_seterr(err, MT_ELIMIT, "%s: too large", name);
    memio m = {data, (sf_count_t)len, 0};
    SF_VIRTUAL_IO vio = {mem_len, mem_seek, mem_read, mem_write, mem_tell};
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open_virtual(&vio, SFM_READ, &info, &m);
    if (!sf) return mt_seterr(err, MT_EFORMAT, "%s: not audio or corrupt (%s)", name, sf_strerror(NULL));
    int rc = decode_sf(a, sf, &info, name, rate, err);
    sf_close(sf);
    return rc;
}

static float rd_s16(const unsigned char *p) {
    int16_t v = (int16_t)(uint16_t)(p[0] | (p[1] << 8));
    return (float)v / 32768.0f;
}
static float rd_f32(const unsigned char *p) {
    uint32_t u = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
    float f;
    memcpy(&f, &u, sizeof f);
    return isfinite(f) ? f : 0.0f;
}

int mt_audio_read_raw(mt_audio *a, FILE *f, int src_rate, int channels, int format, int rate, double max_seconds,
                      mt_err *err) {
    memset(a, 0, sizeof *a);
    const char *name = "raw PCM input";
    MT_TRY(check_rate(src_rate, "input", name, err));
    MT_TRY(check_rate(rate, "output", name, err));
    if (!(max_seconds >= 0)) return mt_seterr(err, MT_EINVAL, "%s: bad duration limit %g s", name, max_seconds);
    if (max_seconds == 0 || max_seconds > MAX_SECONDS) max_seconds = MAX_SECONDS;
    size_t max_frames = (size_t)(max_seconds * src_rate);
    if (channels < 1 || channels > MAX_CHANNELS)
        return mt_seterr(err, MT_EINVAL, "%s: bad channel count %d (allowed 1..%d)", name, channels, MAX_CHANNELS);
    if (format != MT_PCM_S16LE && format != MT_PCM_F32LE)
        return mt_seterr(err, MT_EINVAL, "%s: unknown sample format %d", name, format);
    size_t bps = format == MT_PCM_S16LE ? 2 : 4;
    size_t fsz = bps * (size_t)channels;
    size_t cap = fsz * CHUNK_FRAMES;
    unsigned char *buf = malloc(cap);
    if (!buf) return mt_seterr(err, MT_ENOMEM, "%s: out of memory", name);
    monobuf b = {.max = max_frames ? max_frames : 1, .max_s = max_seconds};
    size_t have = 0;   /* bytes in buf (a partial frame carried over at most) */
    int rc = MT_OK;
    for (;;) {
        size_t got = fread(buf + have, 1, cap - have, f);
        have += got;
        size_t frames = have / fsz;
        if (frames) {
            rc = mono_reserve(&b, frames, name, src_rate, err);
            if (rc) break;
            for (size_t i = 0; i < frames; i++) {
                const unsigned char *fr = buf + i * fsz;
                double s = 0;
                for (int c = 0; c < channels; c++)
                    s += bps == 2 ? rd_s16(fr + (size_t)c * 2) : rd_f32(fr + (size_t)c * 4);
                b.p[b.n + i] = (float)(s / channels);
            }
            b.n += frames;
            size_t used = frames * fsz;
            memmove(buf, buf + used, have - used);
            have -= used;
        }
        if (got == 0) break;
    }
    if (!rc && ferror(f)) rc = mt_seterr(err, MT_EIO, "%s: read error: %s", name, strerror(errno));
    if (!rc && have)
        rc = mt_seterr(err, MT_EFORMAT, "%s: ends with a partial frame (%zu of %zu bytes)", name, have, fsz);
    free(buf);
    if (rc) {
        free(b.p);
        return rc;
    }
    return finish(a, &b, src_rate, channels, rate, name, err);
}
