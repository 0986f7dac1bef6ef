/* stt_pcm - small audio helpers for the mlx-stt bats tests (no Python in CI):
 *   stt_pcm f32 < s16le.raw > f32le.raw     convert 16-bit PCM to float32
 *   stt_pcm silence SECONDS RATE > x.wav    a 16-bit mono WAV of digital silence
 *   stt_pcm pad SECONDS < s16le.raw > out   s16le with SECONDS of silence before and after (16 kHz)
 *   stt_pcm synth SECONDS SEED > x.wav      tests/gen/gen_stt_goldens.py's synth_audio() as a 16-bit
 *                                           16-kHz WAV (its samples are int16 values / 32768) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put32(uint32_t v, FILE *f) { for (int i = 0; i < 4; i++) fputc((int)(v >> (8 * i)) & 255, f); }
static void put16(uint32_t v, FILE *f) { fputc((int)v & 255, f); fputc((int)(v >> 8) & 255, f); }

static void wav_header(uint32_t rate, uint32_t n) {
    fwrite("RIFF", 1, 4, stdout); put32(36 + 2 * n, stdout); fwrite("WAVEfmt ", 1, 8, stdout);
    put32(16, stdout); put16(1, stdout); put16(1, stdout); put32(rate, stdout); put32(rate * 2, stdout);
    put16(2, stdout); put16(16, stdout); fwrite("data", 1, 4, stdout); put32(2 * n, stdout);
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "f32")) {
        unsigned char b[2];
        while (fread(b, 1, 2, stdin) == 2) {
            float x = (float)(int16_t)(b[0] | b[1] << 8) / 32768.0f;
            fwrite(&x, 4, 1, stdout);
        }
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "silence")) {
        uint32_t rate = (uint32_t)atoi(argv[3]), n = (uint32_t)(atof(argv[2]) * rate);
        wav_header(rate, n);
        for (uint32_t i = 0; i < n; i++) put16(0, stdout);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "pad")) {
        long n = (long)(atof(argv[2]) * 16000);
        for (long i = 0; i < n; i++) put16(0, stdout);
        int c;
        while ((c = getchar()) != EOF) putchar(c);
        for (long i = 0; i < n; i++) put16(0, stdout);
        return 0;
    }
    if (argc == 4 && !strcmp(argv[1], "synth")) {
        static const int pattern[16] = {1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0, 1};
        uint32_t n = (uint32_t)atoi(argv[2]) * 16000;
        uint64_t state = (uint64_t)atoll(argv[3]);
        wav_header(16000, n);
        for (uint32_t i = 0; i < n; i++) {
            state = (state * 1103515245u + 12345u) & 0x7FFFFFFF;
            int noise = (int)((state >> 8) % 2001) - 1000;
            uint32_t sec = i / 16000, half = (40 + (sec * 7) % 60) / 2;
            int sq = (i / half) % 2 == 0 ? 6000 : -6000;
            put16((uint32_t)(uint16_t)(int16_t)(noise + (pattern[sec % 16] ? sq : 0)), stdout);
        }
        return 0;
    }
    fprintf(stderr, "usage: stt_pcm f32 | silence SECONDS RATE | pad SECONDS | synth SECONDS SEED\n");
    return 2;
}
