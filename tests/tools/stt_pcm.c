/* stt_pcm - small audio helpers for the mlx-stt bats tests (no Python in CI):
 *   stt_pcm f32 < s16le.raw > f32le.raw     convert 16-bit PCM to float32
 *   stt_pcm silence SECONDS RATE > x.wav    a 16-bit mono WAV of digital silence
 *   stt_pcm pad SECONDS < s16le.raw > out   s16le with SECONDS of silence before and after (16 kHz) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put32(uint32_t v, FILE *f) { for (int i = 0; i < 4; i++) fputc((int)(v >> (8 * i)) & 255, f); }
static void put16(uint32_t v, FILE *f) { fputc((int)v & 255, f); fputc((int)(v >> 8) & 255, f); }

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
        fwrite("RIFF", 1, 4, stdout); put32(36 + 2 * n, stdout); fwrite("WAVEfmt ", 1, 8, stdout);
        put32(16, stdout); put16(1, stdout); put16(1, stdout); put32(rate, stdout); put32(rate * 2, stdout);
        put16(2, stdout); put16(16, stdout); fwrite("data", 1, 4, stdout); put32(2 * n, stdout);
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
    fprintf(stderr, "usage: stt_pcm f32 | silence SECONDS RATE | pad SECONDS\n");
    return 2;
}
