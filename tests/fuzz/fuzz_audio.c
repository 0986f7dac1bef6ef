/* fuzz_audio.c - libFuzzer target: libsndfile decoding from memory
 * (mt_audio_load_mem) through mono mixing and resampling to 16 kHz, then the
 * log-mel of a short prefix of what decoded. */
#include <stdint.h>
#include <stdlib.h>

#include "audio/audio.h"
#include "audio/mel.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
const char *__lsan_default_suppressions(void);

/* libsndfile's Ogg/Vorbis open path leaks libvorbis state on some corrupt
 * headers (inside the system libraries, not here): keep LeakSanitizer on for
 * our code and quiet for those. */
const char *__lsan_default_suppressions(void) {
    return "leak:libvorbis.so\nleak:libsndfile.so\nleak:libogg.so\nleak:libmpg123.so\nleak:libFLAC.so\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;   /* keep decoded lengths (and soxr work) bounded */
    mt_err err;
    mt_audio a;
    if (mt_audio_load_mem(&a, data, size, "fuzz", 16000, &err) != MT_OK) {
        if (a.pcm || a.n) abort();     /* failure leaves the struct empty */
        return 0;
    }
    if (!a.pcm || a.n == 0 || a.rate != 16000 || a.src_channels < 1) abort();
    mt_mel *m = NULL;
    if (mt_mel_new(&m, 80, &err) == MT_OK) {
        size_t n = a.n < 16000 ? a.n : 16000;
        float *mel = NULL;
        size_t nf = 0;
        if (mt_mel_compute(m, a.pcm, n, 160, NULL, &mel, &nf, &err) == MT_OK && nf != (n + 160) / 160) abort();
        free(mel);
        mt_mel_free(m);
    }
    mt_audio_clear(&a);
    return 0;
}
