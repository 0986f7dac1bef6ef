#!/usr/bin/env python3
"""qwen3_asr_peer.py - mlx-audio's side of bench/stt/qwen3_asr.sh: load a Qwen3-ASR folder with
mlx_audio.stt.load, transcribe one WAV with model.generate (greedy, max_tokens, chunk_duration
1200 s: the defaults but the budget), and print one JSON line with the timings.  A 1-s warm-up
call runs first (mlx compiles nothing ahead, but its first call allocates).

Usage: /work/venv-tts/bin/python bench/stt/qwen3_asr_peer.py DIR AUDIO MAX_TOKENS [LANGUAGE]
"""
import json
import sys
import time
import wave

import numpy as np


def main():
    d, path, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lang = sys.argv[4] if len(sys.argv) > 4 else None
    w = wave.open(path)
    assert w.getframerate() == 16000 and w.getnchannels() == 1 and w.getsampwidth() == 2
    audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    import mlx.core as mx
    from mlx_audio.stt.utils import load_model
    t0 = time.perf_counter()
    model = load_model(d)
    t1 = time.perf_counter()
    model.generate(np.zeros(16000, dtype=np.float32), max_tokens=2, language=lang)
    mx.clear_cache()
    t2 = time.perf_counter()
    res = model.generate(audio, max_tokens=budget, language=lang)
    t3 = time.perf_counter()
    dur = len(audio) / 16000.0
    print(json.dumps({"impl": "mlx-audio", "mlx": mx.__version__, "audio_s": round(dur, 3),
                      "load_s": round(t1 - t0, 3), "transcribe_s": round(t3 - t2, 3),
                      "rtf": round((t3 - t2) / dur, 4), "tokens": res.generation_tokens,
                      "chunks": len(res.segments)}))


if __name__ == "__main__":
    main()
