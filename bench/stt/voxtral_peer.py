#!/usr/bin/env python3
"""voxtral_peer.py - mlx-audio 0.6.2's side of bench/stt/voxtral.sh: load the folder with
mlx_audio.stt.load (VoxtralProcessor from tekken.json + preprocessor_config.json), then time
Model.generate on the clip (features, audio tower, projector, prefill, greedy decoding up to
MAX_TOKENS; random weights rarely stop early).  One JSON line on stdout.

Usage: python voxtral_peer.py DIR AUDIO MAX_TOKENS [LANGUAGE]
Run with /work/venv-voxtral/bin/python; mlx's CPU threads follow the caller's taskset.
"""
import json
import sys
import time

import soundfile as sf


def main():
    d, audio, max_tokens = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lang = sys.argv[4] if len(sys.argv) > 4 else "en"
    from mlx_audio.stt.utils import load
    t0 = time.time()
    model = load(d)
    t1 = time.time()
    out = model.generate(audio, language=lang, max_tokens=max_tokens)
    t2 = time.time()
    dur = sf.info(audio).frames / 16000.0
    print(json.dumps({"impl": "mlx-audio", "audio_s": round(dur, 3), "load_s": round(t1 - t0, 3),
                      "transcribe_s": round(t2 - t1, 3), "rtf": round((t2 - t1) / dur, 4),
                      "tokens": out.generation_tokens, "prompt_tokens": out.prompt_tokens}))


if __name__ == "__main__":
    main()
