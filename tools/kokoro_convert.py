#!/usr/bin/env python3
"""Kokoro-82M int8 ONNX -> mlx-community Kokoro folder (float32), for `make kokoro`.

Usage: kokoro_convert.py --onnx kokoro-v1.0.int8.onnx --config config.json
                         --voices voices_ja.npz --out DIR

Needs numpy only: the ONNX file is read by the small protobuf reader below (no onnx
package).  DIR gets

  config.json              kokoro-onnx's hexgrad config (vocab included) + "model_type"
  kokoro-v1_0.safetensors  the weights under the hexgrad / mlx-community names, PyTorch
                           layout (mlx-audio's Model.sanitize transposes them at load)
  voices/<name>.safetensors  one tensor "voice", float32 [510, 1, 256], per voice

What the ONNX file is
---------------------
kokoro-v1.0.int8.onnx (92,361,271 bytes) is kokoro-onnx's export of hexgrad's
Kokoro-82M v1.0 after onnxruntime's graph optimisation and dynamic int8 quantisation:
775 initializers, 3,614 nodes.  Module paths survive in the node names
(`/encoder/F0.0/conv1/Conv_quant`) and in part of the initializer names
(`encoder.bert.embeddings.word_embeddings.weight_quantized`); the export wraps the
model as `encoder` (bert, bert_encoder, text_encoder, predictor; the predictor's F0,
N, F0_proj, N_proj and shared sit directly under `/encoder/`) and `decoder.decoder`.

How each weight is recovered
----------------------------
- ConvInteger (83 weight-norm convs, the 2 noise_convs, F0_proj, N_proj): uint8 weight with a
  scalar scale and zero point, W = (q - zp) * scale.  The zero point is the node's 4th
  input (the quantiser merged equal zero points, so names do not pair up); the scale is
  found by following the node's output (Add of the int32 bias, Cast) to the Mul by the
  scale product and taking the initializer factor of that product.
- MatMulInteger (ALBERT, bert_encoder, AdaIN / AdaLayerNorm fc, duration_proj): int8
  B[in, out] with one scale and zero point per output column; weight = B^T.  The shared
  ALBERT layer runs 12 times over the same initializers (`query`, `query_1`, ...).
- Gather + DequantizeLinear (the 4 embedding tables): int8 with a scalar scale.
- DynamicQuantizeLSTM (6 bidirectional LSTMs): W[dir, in, 4H], R[dir, H, 4H] int8 with
  a scale and zero point per direction, B[dir, 8H] float; ONNX gate order i,o,f,c is
  put back to PyTorch's i,f,g,o and W, R transposed to weight_ih_l0[_reverse] [4H, in],
  weight_hh_l0[_reverse] [4H, H]; B splits into bias_ih / bias_hh.
- Float initializers: biases, LayerNorms (ALBERT's full_layer_layer_norm is an input of
  the fused SkipLayerNormalization, ffn.bias of FastGelu), text-encoder gamma/beta,
  Snake alphas, m_source.l_linear (MatMul B[9, 1], transposed), the ConvTranspose
  weights (generator.ups.0/1, the depthwise `pool` of F0.1, N.1, decode.3) and
  generator.conv_post (with the 83 above: the 89 weight-norm convs of the model).

Weight norm: the export folds every weight-norm conv to W = g * v / ||v|| (the ONNX
tensor is named after the Mul that computed it, e.g. `/decoder/decoder/encode/Mul_output_0`).
The checkpoint's (g, v) split cannot be recovered; the folder stores weight_v = W and
weight_g = ||W|| over all axes but 0 (PyTorch's weight_norm dim=0, i.e. per output
channel for Conv1d and per input channel for ConvTranspose1d), which reproduces W:
mlx-audio recomputes g * v / (||v|| + 1e-7), a relative change of 1e-7 / ||W||.
mlx-audio accepts this: it only knows the (weight_g, weight_v) pair for these convs
(ConvWeighted), and a folded `.weight` would not load into them.

Coverage (against mlx-audio 0.6.2's Kokoro parameter tree, 548 tensors, 81,763,410
values, mapped back to hub names): 546 of 548 recovered.  Not in the ONNX file:
bert.pooler.weight [768, 768] and bert.pooler.bias [768]: ALBERT's pooler, which
Kokoro never calls (it uses last_hidden_state), so the export dropped it.  They are
written as zeros, because mlx-audio's loader (`mlx_audio.tts.utils.load`, strict by
default) refuses a folder without them; the safetensors metadata says so.  Left
over in the ONNX and not written: stft.istft.stft.inverse_basis / window_sum (the
export's conv-based iSTFT basis; hexgrad's checkpoint and mlx-audio have none), the
precomputed 1/alpha of every Snake (Reciprocal_*), integer shape constants.
AdaIN's InstanceNorm affine (norm.weight / norm.bias, which hexgrad's code creates as
1 / 0): the export's instance norm is ReduceMean / Sub / Sqrt / Div with no per-channel
Mul or Add after it, and mlx-audio's tree has no such tensors, so there is nothing to
carry over.

The weights are the int8 values made float again: exactly the numbers onnxruntime
multiplies by (per tensor, 256 levels, for the convs; per output column for the
linears; per direction for the LSTMs), not hexgrad's float checkpoint, which no PyPI
package ships.

Checked (tests/gen/gen_kokoro_real_check.py, mlx-audio 0.6.2 on this folder against
onnxruntime 1.32.0, voice jf_alpha, 3 English sentences given as phonemes, mlx-audio's
random source draws zeroed as the export has none): mlx-audio loads the folder with its
default (strict) loader, all 548 tensors with the right shapes.
- Against the same ONNX graph made float (each int8 op replaced by its float op on the
  dequantized weights, the export's own wiring, no name mapping): per-token durations
  equal in all 3 sentences (largest float difference 0.004 frames); F0 SNR 75 to 85 dB,
  energy 78 to 87 dB; log magnitude before the iSTFT 34 to 35 dB, waveform SNR 11 to
  22 dB.  The rest is not traced further; the two implementations differ in places
  (mlx-audio's exact GELU in ALBERT against the export's tanh form, its zero-padded
  ReflectionPad, its own STFT of the harmonic source).
- Against the int8 graph (activations quantized at run time): durations equal in 1 of 3
  sentences; in the others one token rounds the other way (a space, 1.530 frames in
  mlx-audio against 1.467; 'A', 18.394 against 18.620).  Where the frames agree: F0 SNR
  44 dB, energy 43 dB, log magnitude 26 dB, magnitude-spectrogram SNR 16 dB; the
  waveform SNR is -2.5 dB because the harmonic source integrates F0 (9 harmonics), so a
  0.9-Hz mean F0 difference shifts the phase more and more along the utterance.
- faster-whisper tiny.en transcribes mlx-audio's audio as the input text in all 3
  ("Hello world, this is a test." / "The quick brown fox jumps over the lazy dog." /
  "How are you today?"), as it does the ONNX audio.
The export's own iSTFT returns 1.5 times torch.istft (mlx-audio equals torch.istft on
the same magnitude and phase), so kokoro-onnx's audio is 3.5 dB louder than hexgrad's and
mlx-audio's; compare after dividing it by 1.5.
"""
import argparse
import json
import math
import os
import re
import shutil
import struct
import sys

import numpy as np

# ---------------------------------------------------------------- ONNX protobuf reader
# Field numbers from onnx.proto: ModelProto.graph=7; GraphProto.node=1,
# initializer=5; NodeProto.input=1, output=2, name=3, op_type=4;
# TensorProto.dims=1, data_type=2, float_data=4, int32_data=5, int64_data=7, name=8,
# raw_data=9, double_data=10, data_location=14.
_ONNX_DT = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16,
            6: np.int32, 7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64,
            12: np.uint32, 13: np.uint64}


def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        if c < 0x80:
            return r, i
        s += 7


def _fields(b):
    """Yield (field, wire_type, value) of one message; value is int or memoryview."""
    i, n = 0, len(b)
    while i < n:
        key, i = _varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            ln, i = _varint(b, i)
            v, i = b[i:i + ln], i + ln
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"onnx: unsupported protobuf wire type {wt}")
        if i > n:
            raise ValueError("onnx: truncated protobuf message")
        yield f, wt, v


def _packed_varints(v, wt):
    if wt == 0:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = _varint(v, i)
        out.append(x)
    return out


def _tensor(b):
    dims, dt, name, raw = [], 0, "", None
    floats, ints = [], []
    for f, wt, v in _fields(b):
        if f == 1:
            dims += _packed_varints(v, wt)
        elif f == 2:
            dt = v
        elif f == 8:
            name = bytes(v).decode()
        elif f == 9:
            raw = bytes(v)
        elif f == 4:
            floats.append(np.frombuffer(bytes(v), "<f4") if wt == 2 else
                          np.frombuffer(bytes(v), "<f4"))
        elif f in (5, 7):
            ints += [x - (1 << 64) if x >= 1 << 63 else x for x in _packed_varints(v, wt)]
        elif f == 14 and v == 1:
            raise ValueError(f"onnx: tensor {name} has external data (not supported)")
    if dt not in _ONNX_DT:
        raise ValueError(f"onnx: tensor {name}: data type {dt} not supported")
    t = np.dtype(_ONNX_DT[dt]).newbyteorder("<")
    if raw is not None:
        a = np.frombuffer(raw, t)
    elif floats:
        a = np.concatenate(floats).astype(t)
    else:
        a = np.array(ints, dtype=np.int64).astype(t)
    if a.size != int(np.prod(dims, dtype=np.int64)):
        raise ValueError(f"onnx: tensor {name}: {a.size} values for shape {dims}")
    return name, a.reshape(dims).astype(t.newbyteorder("="))


class Node:
    __slots__ = ("name", "op", "inputs", "outputs")

    def __init__(self, b):
        self.inputs, self.outputs, self.name, self.op = [], [], "", ""
        for f, _, v in _fields(b):
            if f == 1:
                self.inputs.append(bytes(v).decode())
            elif f == 2:
                self.outputs.append(bytes(v).decode())
            elif f == 3:
                self.name = bytes(v).decode()
            elif f == 4:
                self.op = bytes(v).decode()


def read_onnx(path):
    with open(path, "rb") as fh:
        data = memoryview(fh.read())
    graph = None
    for f, wt, v in _fields(data):
        if f == 7 and wt == 2:
            graph = v
    if graph is None:
        raise ValueError(f"{path}: no graph")
    inits, nodes = {}, []
    for f, wt, v in _fields(graph):
        if f == 1:
            nodes.append(Node(v))
        elif f == 5:
            name, a = _tensor(v)
            inits[name] = a
    return inits, nodes


# ---------------------------------------------------------------- mapping
def module_path(node_name):
    """'/encoder/text_encoder/cnn.0/cnn.0.0/Conv_quant' -> 'text_encoder.cnn.0.0'."""
    parts = node_name.strip("/").split("/")[:-1]
    out = []
    for p in parts:
        p = re.sub(r"_\d+$", "", p)          # repeated calls: query_1 -> query
        if out and p.startswith(out[-1] + "."):
            out[-1] = p                       # 'cnn.0' then 'cnn.0.0' -> 'cnn.0.0'
        else:
            out.append(p)
    if out[:1] == ["encoder"]:
        rest = out[1:]
        if rest and rest[0] not in ("bert", "bert_encoder", "text_encoder", "predictor"):
            rest = ["predictor"] + rest       # F0.*, N.*, F0_proj, N_proj, shared
        return ".".join(rest)
    if out[:2] == ["decoder", "decoder"]:
        return ".".join(["decoder"] + out[2:])
    raise ValueError(f"node {node_name}: unknown module path")


def hub_name(init_name):
    """ONNX initializer name with PyTorch path -> hub name (None if not one)."""
    if init_name.startswith("encoder."):
        return init_name[len("encoder."):]
    if init_name.startswith("decoder.decoder."):
        return "decoder." + init_name[len("decoder.decoder."):]
    return None


def weight_normed(module):
    # every Conv1d / ConvTranspose1d in Kokoro is weight-normed except these
    return not (".noise_convs." in module or module.endswith(("F0_proj", "N_proj")))


LSTM_GATES = [0, 2, 3, 1]   # PyTorch i,f,g,o taken from ONNX i,o,f,c


def convert(onnx_path):
    inits, nodes = read_onnx(onnx_path)
    prod = {o: n for n in nodes for o in n.outputs}
    cons = {}
    for n in nodes:
        for i in n.inputs:
            cons.setdefault(i, []).append(n)

    def init(name):
        if name not in inits:
            raise ValueError(f"initializer {name!r} missing")
        return inits[name]

    def weight_scale(node):
        """The weight's scale of a ConvInteger / MatMulInteger: follow the integer output
        (Add of the int32 bias, Cast) to the Mul by x_scale * w_scale."""
        x = node.outputs[0]
        for _ in range(4):
            nxt = cons.get(x, [])
            if len(nxt) != 1:
                break
            m = nxt[0]
            if m.op == "Mul":
                other = [i for i in m.inputs if i != x][0]
                p = prod.get(other)
                if p is None or p.op != "Mul":
                    break
                ws = [i for i in p.inputs if i in inits]
                if len(ws) != 1:
                    break
                return init(ws[0])
            if m.op not in ("Add", "Cast"):
                break
            x = m.outputs[0]
        raise ValueError(f"{node.name}: cannot find the weight scale")

    out = {}
    used = set()

    def put(name, a):
        if name in out:
            if out[name].shape != a.shape or not np.array_equal(out[name], a):
                raise ValueError(f"{name}: two different values")
            return
        out[name] = np.ascontiguousarray(a, dtype=np.float32)

    def put_conv(module, w):
        if weight_normed(module):
            # exactly rounded sum of squares (each square of a float32 is exact in
            # float64): the same g bit for bit whatever numpy's summation order
            rows = (w.astype(np.float64) ** 2).reshape(w.shape[0], -1)
            g = np.sqrt(np.array([math.fsum(r) for r in rows.tolist()]))
            g = g.astype(np.float32).reshape((-1,) + (1,) * (w.ndim - 1))
            put(module + ".weight_g", g)
            put(module + ".weight_v", w)
        else:
            put(module + ".weight", w)

    for n in nodes:
        if n.op == "ConvInteger":
            q, zp = init(n.inputs[1]), init(n.inputs[3])
            sc = weight_scale(n)
            if sc.ndim == 1 and sc.size > 1:
                sc = sc.reshape(-1, *([1] * (q.ndim - 1)))
                zp = zp.reshape(-1, *([1] * (q.ndim - 1)))
            w = (q.astype(np.float32) - zp.astype(np.float32)) * sc.astype(np.float32)
            put_conv(module_path(n.name), w)
            used.update(n.inputs[1:2] + n.inputs[3:4])
        elif n.op in ("Conv", "ConvTranspose") and n.inputs[1] in inits:
            if ".stft" in module_path(n.name):
                continue                          # the export's STFT basis, no parameter
            put_conv(module_path(n.name), init(n.inputs[1]))
            used.add(n.inputs[1])
        elif n.op == "MatMulInteger" and n.inputs[1] in inits:
            q, zp = init(n.inputs[1]), init(n.inputs[3])
            sc = weight_scale(n)
            w = (q.astype(np.float32) - zp.astype(np.float32)) * sc.astype(np.float32)
            put(module_path(n.name) + ".weight", w.T)
            used.update(n.inputs[1:2] + n.inputs[3:4])
        elif n.op == "MatMul" and n.inputs[1] in inits:
            put(module_path(n.name) + ".weight", init(n.inputs[1]).T)
            used.add(n.inputs[1])
        elif n.op == "Gather" and n.inputs[0] in inits and init(n.inputs[0]).ndim == 2:
            dq = [c for c in cons.get(n.outputs[0], []) if c.op == "DequantizeLinear"]
            q = init(n.inputs[0])
            if len(dq) != 1:
                raise ValueError(f"{n.name}: no DequantizeLinear after the Gather")
            sc = init(dq[0].inputs[1])
            zp = init(dq[0].inputs[2]) if len(dq[0].inputs) > 2 and dq[0].inputs[2] else 0
            if np.ndim(sc) != 0:
                raise ValueError(f"{n.name}: per-axis embedding scale not handled")
            w = (q.astype(np.float32) - np.float32(zp)) * sc.astype(np.float32)
            put(module_path(n.name) + ".weight", w)
            used.add(n.inputs[0])
        elif n.op == "DynamicQuantizeLSTM":
            mod = module_path(n.name)
            W, R, B = init(n.inputs[1]), init(n.inputs[2]), init(n.inputs[3])
            ws, wz = init(n.inputs[8]), init(n.inputs[9])
            rs, rz = init(n.inputs[10]), init(n.inputs[11])
            ndir, H = W.shape[0], R.shape[1]
            if ws.shape != (ndir,) or rs.shape != (ndir,):
                raise ValueError(f"{n.name}: per-channel LSTM scales not handled")

            def gates(a):   # [..., 4H] in i,o,f,c -> i,f,g,o along the last axis
                return np.concatenate([a[..., k * H:(k + 1) * H] for k in LSTM_GATES], -1)
            for d, suf in enumerate(["", "_reverse"][:ndir]):
                wd = (W[d].astype(np.float32) - np.float32(wz[d])) * np.float32(ws[d])
                rd = (R[d].astype(np.float32) - np.float32(rz[d])) * np.float32(rs[d])
                put(f"{mod}.weight_ih_l0{suf}", gates(wd).T)
                put(f"{mod}.weight_hh_l0{suf}", gates(rd).T)
                put(f"{mod}.bias_ih_l0{suf}", gates(B[d, :4 * H]))
                put(f"{mod}.bias_hh_l0{suf}", gates(B[d, 4 * H:]))
            used.update(n.inputs[1:4])

    # float initializers that keep their PyTorch names
    for name, a in inits.items():
        h = hub_name(name)
        if h is None or a.dtype != np.float32 or name in used:
            continue
        if re.search(r"_(scale|zero_point|quantized)$", name) or ".stft." in h:
            continue
        put(h, a)
    return out, inits, used


# ---------------------------------------------------------------- writers
def write_safetensors(path, tensors, metadata=None):
    header, off, order = {}, 0, sorted(tensors)
    if metadata:
        header["__metadata__"] = metadata
    for k in order:
        a = tensors[k]
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for k in order:
            f.write(np.ascontiguousarray(tensors[k], dtype="<f4").tobytes())
        f.flush()
        os.fsync(f.fileno())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--config", required=True, help="kokoro-onnx's config.json")
    ap.add_argument("--voices", required=True, help="npz of [510, 1, 256] voice packs")
    ap.add_argument("--out", required=True, help="folder to create (replaced whole)")
    args = ap.parse_args()

    weights, inits, used = convert(args.onnx)
    # ALBERT's pooler is not in the ONNX file (Kokoro never calls it); mlx-audio's
    # loader (strict by default) wants it, so it is written as zeros
    hid = weights["bert.encoder.embedding_hidden_mapping_in.bias"].shape[0]
    for k, shape in (("bert.pooler.weight", (hid, hid)), ("bert.pooler.bias", (hid,))):
        if k in weights:
            raise SystemExit(f"{k} found in the ONNX file: update the converter")
        weights[k] = np.zeros(shape, np.float32)
    cfg = json.load(open(args.config, encoding="utf-8"))
    for k in ("istftnet", "plbert", "vocab", "n_token", "style_dim", "hidden_dim"):
        if k not in cfg:
            raise SystemExit(f"{args.config}: no {k!r}: not Kokoro's config")
    cfg = {"model_type": "kokoro", **cfg}

    voices = np.load(args.voices)
    tmp = args.out.rstrip("/") + ".new"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "voices"))
    write_safetensors(os.path.join(tmp, "kokoro-v1_0.safetensors"), weights,
                      {"format": "mlx", "source": "kokoro-v1.0.int8.onnx dequantized to float32; "
                       "bert.pooler.* are zeros (not in the ONNX file, unused by Kokoro)"})
    with open(os.path.join(tmp, "config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=4, ensure_ascii=False)
        f.write("\n")
    names = sorted(voices.files)
    for v in names:
        a = np.asarray(voices[v], dtype=np.float32)
        if a.shape != (510, 1, 256):
            raise SystemExit(f"{args.voices}: voice {v} has shape {a.shape}, expected (510, 1, 256)")
        write_safetensors(os.path.join(tmp, "voices", v + ".safetensors"), {"voice": a})
    if os.path.exists(args.out):
        shutil.rmtree(args.out)
    os.rename(tmp, args.out)
    n = sum(a.size for a in weights.values())
    print(f"kokoro_convert: {len(weights)} tensors ({n:,} values) to {args.out}/kokoro-v1_0.safetensors, "
          f"voices {', '.join(names)}", file=sys.stderr)


if __name__ == "__main__":
    main()
