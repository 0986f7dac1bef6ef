#!/usr/bin/env python3
"""The peers of bench/tts/run.sh, one engine per call, speaking the lines of a text file:

  peers.py onnx --onnx FILE --voices NPZ --config JSON --voice V --threads N [--float] TEXTS
      kokoro-onnx 0.6.1 (onnxruntime with N intra-op threads): Kokoro.create(line, voice,
      trim=False) per line, its own espeak-ng G2P included (trim off so that its audio has the
      length of ours; the trim itself is a cheap pass over the samples).  --float: the same
      graph with float weights and activations (tests/gen/gen_kokoro_real_check.py's
      float_graph: each int8 op replaced by its float op on the dequantized weights)
  peers.py mlx --model DIR --voice V TEXTS
      mlx-audio 0.6.2 (mlx's CPU backend, float32): the Kokoro model called per line on the
      phonemes of kokoro-onnx's G2P (which mlx-tts reproduces), so that all speak the same

Prints one JSON line: engine, lines, audio seconds, synthesis seconds (after loading; the
load time reported apart), rtf = synthesis / audio, and the process's peak RSS in MB.
"""
import argparse
import json
import resource
import sys
import time


def onnx_engine(a, lines):
    import onnxruntime as rt
    from kokoro_onnx import Kokoro
    t0 = time.time()
    so = rt.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    if a.float:
        import os
        import onnx
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "gen"))
        from gen_kokoro_real_check import float_graph
        sess = rt.InferenceSession(float_graph(onnx.load(a.onnx)).SerializeToString(), sess_options=so,
                                   providers=["CPUExecutionProvider"])
        sess._model_path = a.onnx
    else:
        sess = rt.InferenceSession(a.onnx, sess_options=so, providers=["CPUExecutionProvider"])
    k = Kokoro.from_session(sess, a.voices, vocab_config=a.config)
    load = time.time() - t0
    audio = synth = 0.0
    for line in lines:
        t = time.time()
        samples, sr = k.create(line, voice=a.voice, lang="en-us", trim=False)
        synth += time.time() - t
        audio += len(samples) / sr
    return load, audio, synth


def mlx_engine(a, lines):
    import mlx.core as mx
    from kokoro_onnx.tokenizer import Tokenizer
    from mlx_audio.tts.utils import load as load_model
    t0 = time.time()
    model = load_model(a.model)
    pack = mx.load(f"{a.model}/voices/{a.voice}.safetensors")["voice"]
    tok = Tokenizer()
    load = time.time() - t0
    audio = synth = 0.0
    for line in lines:
        t = time.time()
        ps = tok.phonemize(line, "en-us")
        out = model(ps, pack[len(ps) - 1], 1.0, return_output=True)
        n = int(out.audio.size)          # evaluates the graph
        synth += time.time() - t
        audio += n / 24000
    return load, audio, synth


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("engine", choices=["onnx", "mlx"])
    ap.add_argument("texts")
    ap.add_argument("--onnx")
    ap.add_argument("--voices")
    ap.add_argument("--config")
    ap.add_argument("--model")
    ap.add_argument("--voice", default="jf_alpha")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--float", action="store_true")
    ap.add_argument("--label")
    a = ap.parse_args()
    lines = [l.strip() for l in open(a.texts, encoding="utf-8") if l.strip()]
    load, audio, synth = (onnx_engine if a.engine == "onnx" else mlx_engine)(a, lines)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"engine": a.label or a.engine, "lines": len(lines), "audio_s": round(audio, 2),
                      "synth_s": round(synth, 2), "load_s": round(load, 2),
                      "rtf": round(synth / audio, 4) if audio else None, "peak_rss_mb": round(rss)}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
