#!/usr/bin/env python3
"""check_real.py - mlx-stt's transcribe() against the reference implementations
on the real Whisper tiny.en (not in CI: needs the converted model and Python).

  python3 bench/stt/check_real.py [--build build] [--mlx DIR] [--pt FILE]
                                  [--audio WAV --truth JSON] [--words] [--beam N]

The C side is a small driver compiled on the fly against the static library
of the build folder (libmlx-tools.a or whatever lib*.a it holds): it reads
float32 samples and prints the segments as JSON.  The reference is
openai-whisper's transcribe() (the .pt checkpoint, and the mlx folder's
weights loaded into openai-whisper's module, which carries the same alignment
heads as the C side) and mlx_whisper.transcribe() on the mlx folder, all with
temperature 0 (no fallback, so that every side is deterministic).

Reports: whether text and token ids are identical per segment, the largest
segment-boundary difference, and the word error rate of every side against the
sentences the audio was synthesized from (espeak-ng; bench-audio/*.json).
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests/gen"))

DRIVER = r'''
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "models/whisper.h"
#include "stt/transcribe.h"
#include "stt/wtok.h"
static void jstr(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}
int main(int argc, char **argv) {
    if (argc < 4) return 2;
    FILE *f = fopen(argv[2], "rb");
    if (!f) return 2;
    fseek(f, 0, SEEK_END); long sz = ftell(f); fseek(f, 0, SEEK_SET);
    float *a = malloc(sz);
    if (fread(a, 1, sz, f) != (size_t)sz) return 2;
    fclose(f);
    mt_err err = {0};
    mt_whisper *w = NULL;
    if (mt_whisper_load(&w, argv[1], NULL, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    mt_wtok tok;
    if (mt_wtok_open(&tok, argv[1], mt_whisper_hparams(w)->n_vocab, argv[3], &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    mt_stt_opts o;
    mt_stt_opts_default(&o);
    o.n_temperatures = 1;
    o.word_timestamps = argc > 4 && atoi(argv[4]);
    o.beam_size = argc > 5 ? atoi(argv[5]) : 0;
    mt_stt_result r;
    if (mt_stt_transcribe(w, &tok, a, sz / 4, &o, &r, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    printf("{\"text\":"); jstr(r.text); printf(",\"segments\":[");
    for (size_t i = 0; i < r.n_segs; i++) {
        mt_stt_segment *s = &r.segs[i];
        printf("%s{\"start\":%.6f,\"end\":%.6f,\"avg_logprob\":%.6f,\"text\":", i ? "," : "", s->start, s->end, s->avg_logprob);
        jstr(s->text);
        printf(",\"tokens\":[");
        for (size_t k = 0; k < s->n_tokens; k++) printf("%s%d", k ? "," : "", (int)s->tokens[k]);
        printf("],\"words\":[");
        for (size_t k = 0; k < s->n_words; k++) {
            printf("%s{\"word\":", k ? "," : ""); jstr(s->words[k].word);
            printf(",\"start\":%.3f,\"end\":%.3f}", s->words[k].start, s->words[k].end);
        }
        printf("]}");
    }
    printf("]}\n");
    mt_stt_result_free(&r);
    mt_wtok_close(&tok);
    mt_whisper_free(w);
    free(a);
    return 0;
}
'''


def build_driver(build):
    libs = glob.glob(os.path.join(ROOT, build, "*.a")) + glob.glob(os.path.join(ROOT, build, "lib", "*.a"))
    if not libs:
        sys.exit(f"no static library under {build}: run make BUILD={build} first")
    pk = subprocess.run(["pkg-config", "--cflags", "--libs", "jansson", "libpcre2-8", "libutf8proc", "libzstd",
                         "libcurl", "openblas", "sndfile", "soxr", "fftw3f", "zlib"],
                        capture_output=True, text=True, check=True).stdout.split()
    d = tempfile.mkdtemp()
    src, exe = os.path.join(d, "drv.c"), os.path.join(d, "drv")
    open(src, "w").write(DRIVER)
    subprocess.run(["gcc", "-O2", "-std=c17", "-D_GNU_SOURCE", "-I" + os.path.join(ROOT, "lib"), src, "-o", exe,
                    libs[0]] + pk + ["-lm", "-lpthread"], check=True)
    return exe


def norm_words(text):
    text = text.lower().replace("-", " ")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return text.split()


def wer(ref, hyp):
    r, h = norm_words(ref), norm_words(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(h)] / max(1, len(r))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--mlx", default="/work/models-local/whisper-tiny.en-mlx")
    ap.add_argument("--pt", default="/work/models-local/whisper-tiny.en.pt")
    ap.add_argument("--audio", default="/work/models-local/bench-audio/speech5min.wav")
    ap.add_argument("--truth", default=None, help="JSON with sentences[].text (default: AUDIO with .json)")
    ap.add_argument("--seconds", type=float, default=0, help="use only the first N seconds")
    ap.add_argument("--words", action="store_true")
    ap.add_argument("--beam", type=int, default=0)
    ap.add_argument("--no-mlx-whisper", action="store_true")
    a = ap.parse_args()

    import soundfile as sf
    audio, sr = sf.read(a.audio, dtype="float32", always_2d=True)
    audio = np.ascontiguousarray(audio.mean(axis=1).astype(np.float32))
    assert sr == 16000, "16 kHz audio expected"
    if a.seconds:
        audio = audio[: int(a.seconds * 16000)]
    truth_path = a.truth or os.path.splitext(a.audio)[0] + ".json"
    truth = None
    if os.path.exists(truth_path):
        sents = json.load(open(truth_path))["sentences"]
        end = len(audio) / 16000
        truth = " ".join(s["text"] for s in sents if s["end"] <= end + 0.5)

    results = {}
    exe = build_driver(a.build)
    with tempfile.NamedTemporaryFile(suffix=".f32") as f:
        f.write(audio.tobytes())
        f.flush()
        t = time.time()
        out = subprocess.run([exe, a.mlx, f.name, os.path.join(ROOT, "share"), str(int(a.words)), str(a.beam)],
                             capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"mlx-stt driver failed: {out.stderr}")
        results["mlx-stt (C)"] = (json.loads(out.stdout), time.time() - t)

    import whisper
    from gen_stt_goldens import model_from_mlx
    kw = dict(temperature=0.0, fp16=False, word_timestamps=a.words, verbose=None)
    if a.beam:
        kw["beam_size"] = a.beam
    t = time.time()
    results["openai-whisper (mlx weights)"] = (whisper.transcribe(model_from_mlx(a.mlx), audio, **kw), time.time() - t)
    if os.path.exists(a.pt):
        t = time.time()
        results["openai-whisper (.pt)"] = (whisper.transcribe(whisper.load_model(a.pt, device="cpu"), audio, **kw),
                                           time.time() - t)
    if not a.no_mlx_whisper and not a.beam:
        import mlx_whisper
        t = time.time()
        r = mlx_whisper.transcribe(audio, path_or_hf_repo=a.mlx, temperature=0.0, word_timestamps=a.words,
                                   verbose=None, fp16=False)
        results["mlx_whisper"] = (r, time.time() - t)

    c = results["mlx-stt (C)"][0]
    print(f"audio {a.audio} ({len(audio) / 16000:.1f} s), model {a.mlx}, words={a.words}, beam={a.beam}")
    for name, (r, dt) in results.items():
        segs = r["segments"]
        line = f"{name:30s} {len(segs):3d} segments  {dt:6.1f} s"
        if truth:
            line += f"  WER {100 * wer(truth, r['text']):5.2f}%"
        if name != "mlx-stt (C)":
            same_text = r["text"] == c["text"]
            n_same = sum(1 for x, y in zip(segs, c["segments"]) if list(x["tokens"]) == y["tokens"])
            dmax = max([abs(x["start"] - y["start"]) for x, y in zip(segs, c["segments"])] +
                       [abs(x["end"] - y["end"]) for x, y in zip(segs, c["segments"])] + [0])
            line += f"  vs C: text {'identical' if same_text else 'DIFFERENT'}, tokens identical in {n_same}/{max(len(segs), len(c['segments']))} segments, max boundary diff {dmax:.3f} s"
            if a.words:
                wd = [abs(wx["start"] - wy["start"]) + abs(wx["end"] - wy["end"])
                      for x, y in zip(segs, c["segments"]) for wx, wy in zip(x.get("words", []), y["words"])]
                line += f", word times max diff {max(wd + [0]):.3f} s"
        print(line)
    if truth:
        print("C text:", c["text"][:300])
    return 0


if __name__ == "__main__":
    sys.exit(main())
